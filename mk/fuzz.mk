# libFuzzer targets (issue 4). Included from the Makefile.
#   make fuzz        each target for FUZZ_SECONDS (default 60)
#   make fuzz-smoke  each target for FUZZ_SMOKE_SECONDS (default 10); part of make test
# Built with clang -fsanitize=fuzzer,address,undefined; everything lands in
# build/fuzz/. Every src/*.c but main.c is compiled with coverage
# instrumentation into one archive, so a target links whatever its module
# happens to need. Seeds live in fuzz/corpus/<target>/ (read-only to the
# fuzzer); new inputs go to build/fuzz/corpus/<target>/, crashes to
# build/fuzz/artifacts/. A crash worth keeping is minimized and copied into
# the seed directory by hand.

FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 10
# A fixed seed keeps the CI smoke run repeatable; `make fuzz FUZZ_SEED=0` explores.
FUZZ_SEED          ?= 1
FUZZ_TARGETS       := canon query bearer jwt config admit cors wsframe rqhead kmeta
FUZZ_OUT           := build/fuzz
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS         = -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) \
                      -Wall -Wextra -Wshadow -Wno-unused-parameter -pthread -Isrc -Ifuzz \
                      $(PKG_CFLAGS)
# max_len per target: tokens up to the 16 KiB cap, YAML a little over one
# page of policy, targets and queries around the default URI limit, request
# heads a few times a default header line.
FUZZ_MAXLEN_canon  := 8192
FUZZ_MAXLEN_query  := 4096
FUZZ_MAXLEN_bearer := 1024
FUZZ_MAXLEN_jwt    := 17000
FUZZ_MAXLEN_config := 16384
FUZZ_MAXLEN_admit  := 4096
FUZZ_MAXLEN_cors   := 1024
FUZZ_MAXLEN_wsframe := 4096
FUZZ_MAXLEN_rqhead := 8192
# key metadata: a few PEMs (a 2048-bit SPKI is ~450 B), a host past its 300 B cap
FUZZ_MAXLEN_kmeta  := 8192
FUZZ_RUN_FLAGS     := -seed=$(FUZZ_SEED) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

FUZZ_LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
FUZZ_LIB_OBJ := $(patsubst src/%.c,$(FUZZ_OUT)/obj/%.o,$(FUZZ_LIB_SRC))
FUZZ_BINS    := $(addprefix $(FUZZ_OUT)/fuzz_,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-smoke fuzz-build

fuzz-build: $(FUZZ_BINS)

# Library objects get coverage but no libFuzzer main. No -Werror here: a
# clang-only warning in someone else's module should not stop the fuzzers.
$(FUZZ_OUT)/obj/%.o: src/%.c $(wildcard src/*.h) | $(FUZZ_OUT)/obj $(TEST_STAMP)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OUT)/libauthgate-fuzz.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_OUT)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_OUT)/libauthgate-fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer -o $@ $< \
	    $(FUZZ_OUT)/libauthgate-fuzz.a $(PKG_LIBS) -lpthread -lm

$(FUZZ_OUT)/obj:
	mkdir -p $@

# $(1) = target, $(2) = seconds. Each target gets its own working corpus
# seeded from fuzz/corpus/<target>; a failure prints the log tail and stops.
define fuzz_one
@mkdir -p $(FUZZ_OUT)/artifacts $(FUZZ_OUT)/corpus/$(1) && echo "== fuzz_$(1) ($(2) s)" && \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
$(FUZZ_OUT)/fuzz_$(1) $(FUZZ_RUN_FLAGS) -max_total_time=$(2) -max_len=$(FUZZ_MAXLEN_$(1)) \
    -artifact_prefix=$(FUZZ_OUT)/artifacts/$(1)- $(FUZZ_OUT)/corpus/$(1) fuzz/corpus/$(1) \
    2>$(FUZZ_OUT)/fuzz_$(1).log \
|| { tail -n 60 $(FUZZ_OUT)/fuzz_$(1).log; echo "fuzz_$(1) FAILED (log: $(FUZZ_OUT)/fuzz_$(1).log)"; exit 1; }; \
grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' $(FUZZ_OUT)/fuzz_$(1).log || true

endef

fuzz: $(FUZZ_BINS)
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_one,$(t),$(FUZZ_SECONDS)))

fuzz-smoke: $(FUZZ_BINS)
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_one,$(t),$(FUZZ_SMOKE_SECONDS)))
