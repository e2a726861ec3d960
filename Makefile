# authgate build. `make` builds, `make test` runs every test, `make run` starts
# the demo, `make test SANITIZE=1` runs the suite under ASan+UBSan.
CC      ?= cc
PKGS    := libmicrohttpd libcurl openssl jansson yaml-0.1
SANITIZE ?= 0

ifeq ($(SANITIZE),1)
BUILD   := build/san
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
BUILD   := build
OPT     := -O2 -g
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Werror -Wshadow -Wformat=2 \
           -Wmissing-prototypes -Wstrict-prototypes -Wcast-qual -Wpointer-arith \
           -Wno-unused-parameter -pthread -Isrc $(PKG_CFLAGS)
LDFLAGS += $(filter -fsanitize=%,$(OPT)) -pthread
LDLIBS  += $(PKG_LIBS) -lpthread -lm

SRC      := $(wildcard src/*.c)
LIB_SRC  := $(filter-out src/main.c,$(SRC))
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOLS    := $(BUILD)/ag-echo

.PHONY: all test unit integration run deps bench fuzz conformance valgrind clean format check-format

all: $(BUILD)/authgate $(TOOLS)

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libauthgate.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/authgate: $(BUILD)/obj/main.o $(BUILD)/libauthgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/ag-echo: tools/echo.c | $(BUILD)/obj
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libauthgate.a tests/unit/testutil.h | $(BUILD)/tests
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libauthgate.a $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; CK_DEFAULT_TIMEOUT=60 $$t; done

integration: all
	python3 tests/integration/run.py --build $(BUILD)

# The fuzz smoke run builds its own instrumented copy; once per CI run is enough.
test: all unit integration $(if $(filter 1,$(SANITIZE)),,fuzz-smoke)

run: deps
	$(MAKE) all
	./scripts/run-demo.sh $(BUILD)

deps:
	./scripts/install-deps.sh

# The integration subset that walks every request path, with authgate under
# valgrind: definite leaks or invalid accesses fail it.
valgrind: all
	sh tests/integration/valgrind.sh $(BUILD)

bench: all
	./bench/run.sh $(BUILD)

conformance: all
	./tests/conformance/run.sh $(BUILD)

-include mk/fuzz.mk

clean:
	rm -rf build

format:
	clang-format -i src/*.c src/*.h tools/*.c tests/unit/*.c tests/unit/*.h fuzz/*.c fuzz/*.h

check-format:
	clang-format --dry-run --Werror src/*.c src/*.h tools/*.c tests/unit/*.c tests/unit/*.h fuzz/*.c fuzz/*.h
