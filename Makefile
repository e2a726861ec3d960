# authgate build. `make` builds, `make test` runs every test, `make run` starts
# the demo, `make test SANITIZE=1` runs the suite under ASan+UBSan. Any of
# them installs missing libraries first (see DEPS_STAMP); `make deps` runs
# the full installer (compilers, valgrind, clang-format too).
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

# Every build target first makes $(DEPS_STAMP): when pkg-config cannot find
# the libraries it runs $(INSTALL_DEPS) (the same script as `make deps`), so
# `make test` works as the first command on a fresh machine. When they are
# present the script is skipped: a non-root user with the libraries never
# needs apt. The flags are read when make starts if the libraries are there;
# otherwise they are asked for again each time a recipe runs, which is after
# the stamp has installed them.
INSTALL_DEPS ?= ./scripts/install-deps.sh
DEPS_STAMP   := $(BUILD)/deps.stamp
DEPS_PRESENT := pkg-config --exists $(PKGS)
# What the tests need besides: the unit-test library, and the commands of the
# integration harness, key generation and the fuzz smoke run. Kept apart so
# that building the binaries alone (the Docker build stage) never needs them.
TEST_STAMP   := $(BUILD)/test-deps.stamp
TEST_TOOLS    = python3 openssl $(FUZZ_CC)
ifeq ($(shell $(DEPS_PRESENT) 2>/dev/null && echo yes),yes)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
else
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
endif
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

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
TOOLS    := $(BUILD)/ag-echo $(BUILD)/ag-wsbench

.PHONY: all test unit integration run deps bench fuzz conformance valgrind clean format check-format \
        install install-docs

# Where `make install` puts things; the systemd unit expects these defaults.
PREFIX  ?= /usr/local
DOCDIR  ?= $(PREFIX)/share/doc/authgate

all: $(BUILD)/authgate $(TOOLS)

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj $(DEPS_STAMP)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libauthgate.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/authgate: $(BUILD)/obj/main.o $(BUILD)/libauthgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/ag-echo: tools/echo.c | $(BUILD)/obj $(DEPS_STAMP)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(BUILD)/ag-wsbench: tools/wsbench.c | $(BUILD)/obj $(DEPS_STAMP)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libauthgate.a $(wildcard tests/unit/*.h) | $(BUILD)/tests $(TEST_STAMP)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libauthgate.a $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

# Order-only for the objects: installing packages never forces a rebuild.
# The script is a prerequisite only where it exists (the Docker build stage
# copies src/ and the Makefile alone, with the libraries preinstalled).
$(DEPS_STAMP): $(wildcard scripts/install-deps.sh)
	@mkdir -p $(@D)
	@$(DEPS_PRESENT) 2>/dev/null || $(INSTALL_DEPS)
	@$(DEPS_PRESENT) || { echo "missing build libraries: pkg-config --exists $(PKGS) fails" >&2; exit 1; }
	@touch $@

$(TEST_STAMP): $(DEPS_STAMP)
	@ok=1; pkg-config --exists check 2>/dev/null || ok=0; \
	for t in $(TEST_TOOLS); do command -v $$t >/dev/null 2>&1 || ok=0; done; \
	[ $$ok = 1 ] || $(INSTALL_DEPS)
	@pkg-config --exists check || { echo "missing the unit-test library: pkg-config --exists check fails" >&2; exit 1; }
	@touch $@

unit: $(UNIT_BIN) | $(TEST_STAMP)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; CK_DEFAULT_TIMEOUT=60 $$t; done

integration: all | $(TEST_STAMP)
	python3 tests/integration/run.py --build $(BUILD)

# The fuzz smoke run builds its own instrumented copy; once per CI run is enough.
test: all unit integration $(if $(filter 1,$(SANITIZE)),,fuzz-smoke)

run: all
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

# The binary and the operator docs (the unit's Documentation= points here).
install: all install-docs
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/authgate $(DESTDIR)$(PREFIX)/bin/authgate

install-docs:
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

clean:
	rm -rf build

format:
	clang-format -i src/*.c src/*.h tools/*.c tests/unit/*.c tests/unit/*.h fuzz/*.c fuzz/*.h

check-format:
	clang-format --dry-run --Werror src/*.c src/*.h tools/*.c tests/unit/*.c tests/unit/*.h fuzz/*.c fuzz/*.h
