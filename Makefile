# jclip: GNU make. `make` builds ./jclip; `make test` is the quick tier CI runs.
PREFIX   ?= /usr/local
CC       ?= cc
CFLAGS   ?= -O2 -g
# Flags the code needs whatever CFLAGS the caller gives (make asan gives its own).
JC_FLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror=implicit-function-declaration -Werror=int-conversion -pthread -MMD -MP
JCLIP_BIN ?= jclip
CPPFLAGS += -Ilib -Ikernels -Iscripts -I/usr/include/stb
LDLIBS   += -ldl -lutf8proc -lcjson -ljpeg -lwebpdemux -lwebp -lexif -lm -lpthread
# libheif, OpenBLAS and libmicrohttpd are loaded when first needed (lib/decode/heif.c,
# lib/blas.c, cmd/serve.c); the dav1d settings constructor that lib/decode/heif.c defines
# must then be exported by hand.
LDLIBS   += -Wl,--export-dynamic-symbol=dav1d_default_settings
BUILD    ?= build

LIB_SRC    := $(sort $(wildcard lib/*.c lib/decode/*.c))
KERNEL_SRC := $(sort $(wildcard kernels/*_ref.c) kernels/dispatch.c)
ARCH       := $(shell $(CC) -dumpmachine)

# ISA flags per file, never -march=native: the binary must run on any x86-64.
ifneq ($(filter x86_64%,$(ARCH)),)
KERNEL_SRC += $(wildcard kernels/*_avx2.c kernels/*_avx512.c kernels/*_amx.c)
CPPFLAGS   += -DJC_X86_KERNELS
$(BUILD)/kernels/%_avx2.o: ISA_FLAGS := -mavx2 -mfma
$(BUILD)/kernels/%_avx512.o: ISA_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma
# the bf16 kernel, which the table takes only where the CPU has AVX512-BF16
$(BUILD)/kernels/linear_bf16_avx512.o: ISA_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq \
	-mavx512bf16 -mavx2 -mfma
$(BUILD)/kernels/%_amx.o: ISA_FLAGS := -mamx-tile -mamx-bf16
endif
# Advanced SIMD is in every aarch64 CPU: the NEON files need no flags of their own, but
# the bf16 one, whose kernel the table takes only where the CPU has FEAT_BF16.
ifneq ($(filter aarch64%,$(ARCH)),)
KERNEL_SRC += $(wildcard kernels/*_neon.c)
CPPFLAGS   += -DJC_NEON_KERNELS
$(BUILD)/kernels/linear_bf16_neon.o: ISA_FLAGS := -march=armv8.2-a+bf16
endif
CMD_SRC    := $(sort $(wildcard cmd/*.c))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o) $(KERNEL_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ    := $(CMD_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
GEN        := $(BUILD)/jclip-gen-model

# Test models are generated, never committed.
MODELS     := tests/models
TEST_CFGS  := tiny tiny12

.PHONY: all clean install test test-haswell test-best test-unit test-neon test-neon-golden test-golden test-cli test-full check-style models \
	demo bench asan valgrind
all: $(JCLIP_BIN) $(GEN)

$(JCLIP_BIN): $(CMD_OBJ) $(BUILD)/libjclip.a
	$(CC) $(JC_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libjclip.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# Defines for one build only: make valgrind gives -DJC_NO_FMA (kernels/fma_avx2.h).
JC_DEFS ?=

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(JC_DEFS) $(JC_FLAGS) $(ISA_FLAGS) $(CFLAGS) -c -o $@ $<

# The recipe of the test weights is its own object so that a unit test can check it.
$(GEN): $(BUILD)/scripts/gen-model.o $(BUILD)/scripts/recipe.o
	$(CC) $(JC_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lm

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/testutil.o $(BUILD)/scripts/recipe.o \
		$(BUILD)/scripts/photo.o $(BUILD)/libjclip.a
	@mkdir -p $(dir $@)
	$(CC) $(JC_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

# Order-only on the generator: a rebuilt generator (make asan) makes the same bytes.
$(MODELS)/%/model.safetensors: | $(GEN)
	@mkdir -p $(dir $@)
	$(GEN) $* $(MODELS)/$* >/dev/null

models: $(TEST_CFGS:%=$(MODELS)/%/model.safetensors)

# Tests run under LC_ALL=C from the top of the tree.
export LC_ALL := C

test: test-unit test-cli test-haswell test-best

# The golden conformance suite runs once per kernel table this machine can run.
GOLDEN_BIN := $(BUILD)/tests/test_golden $(BUILD)/tests/test_vision
ISAS       := ref avx2 avx512 neon

# The aarch64 runs build without sanitizers, so make asan leaves them out (NEON_TESTS=).
NEON_TESTS ?= test-neon test-neon-golden

test-unit: $(UNIT_BIN) $(JCLIP_BIN) models fuzz-replay $(NEON_TESTS)
	@set -e; for t in $(filter-out $(GOLDEN_BIN),$(UNIT_BIN)); do echo "== $$t"; $$t; done
	@set -e; for isa in $(ISAS); do \
	    JCLIP_ISA=$$isa ./$(JCLIP_BIN) info -m $(MODELS)/tiny > /dev/null 2>&1 || continue; \
	    for t in $(GOLDEN_BIN); do echo "== $$t, $$isa kernels"; JCLIP_ISA=$$isa $$t; done; \
	done

# The AVX512-BF16 kernel against tests/unit/avx512bf16_emu.h, plain C for any CPU: the
# kernel test checks its blocking and tails where no CPU at hand has the instructions.
$(BUILD)/tests/unit/linear_bf16_avx512_emu.o: kernels/linear_bf16_avx512.c tests/unit/avx512bf16_emu.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit -DJC_AVX512BF16_EMULATED $(JC_FLAGS) $(CFLAGS) -c -o $@ $<
# The AMX kernel likewise, against tests/unit/amx_emu.h.
$(BUILD)/tests/unit/linear_bf16_amx_emu.o: kernels/linear_bf16_amx.c tests/unit/amx_emu.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit -DJC_AMX_EMULATED $(JC_FLAGS) $(CFLAGS) -c -o $@ $<
BF16_EMU := $(BUILD)/tests/unit/linear_bf16_avx512_emu.o $(BUILD)/tests/unit/linear_bf16_amx_emu.o
$(BUILD)/tests/test_kernels $(BUILD)/tests/test_linear: $(BF16_EMU)

# The kernel test alone: the kernels, libm and tests/unit/minicmocka.h in place of cmocka.
$(BUILD)/tests/unit/test_kernels_alone.o: tests/unit/test_kernels.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DJC_MINICMOCKA $(JC_FLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/test_kernels_alone: $(BUILD)/tests/unit/test_kernels_alone.o $(KERNEL_SRC:%.c=$(BUILD)/%.o) $(BF16_EMU)
	$(CC) $(JC_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lm

# The NEON table, from any machine: a make for aarch64 in $(BUILD)/aarch64 builds the kernel
# test alone (so no arm64 OpenBLAS, utf8proc, cJSON or cmocka is needed), which runs under
# qemu's user-mode emulation. Its own CFLAGS: sanitizers (make asan) do not run under qemu.
ifneq ($(filter aarch64%,$(ARCH)),)
NEON_CC  ?= $(CC)
NEON_RUN ?=
NEON_LIB_RUN ?=
NEON_GOLDEN_ENV ?=
else
NEON_CC  ?= aarch64-linux-gnu-gcc
NEON_RUN ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
# The arm64 libraries are multiarch packages: their loader and ld.so.cache are under /.
NEON_LIB_RUN ?= qemu-aarch64 -L /
# Emulated, a golden run is ~300 times slower: the tiny model only, and not the 8192-id text
# (the x86 runs keep both).
NEON_GOLDEN_ENV ?= JCLIP_TEST_CONFIGS=tiny JCLIP_TEST_MAX_IDS=1024
endif
NEON_BUILD := $(BUILD)/aarch64

test-neon:
	$(MAKE) --no-print-directory CC=$(NEON_CC) BUILD=$(NEON_BUILD) CFLAGS="-O2 -g" LDFLAGS= \
		$(NEON_BUILD)/test_kernels_alone
	@echo "== $(NEON_BUILD)/test_kernels_alone$(if $(NEON_RUN), under $(NEON_RUN))"
	@$(NEON_RUN) $(NEON_BUILD)/test_kernels_alone

# The golden suites with the NEON table, built for aarch64 like the kernel test but
# with the whole library, so against the arm64 OpenBLAS, utf8proc, cJSON, cmocka and curl
# (scripts/install-deps). After test-neon: the two makes would build the same objects.
NEON_GOLDEN := $(GOLDEN_BIN:$(BUILD)/%=$(NEON_BUILD)/%)

test-neon-golden: models test-neon
	$(MAKE) --no-print-directory CC=$(NEON_CC) BUILD=$(NEON_BUILD) CFLAGS="-O2 -g" LDFLAGS= \
		$(NEON_GOLDEN)
	@set -e; for isa in neon; do for t in $(NEON_GOLDEN); do \
	    echo "== $$t, $$isa kernels$(if $(NEON_LIB_RUN), under $(NEON_LIB_RUN))"; \
	    JCLIP_ISA=$$isa $(NEON_GOLDEN_ENV) $(NEON_LIB_RUN) $$t; \
	done; done

test-cli: $(JCLIP_BIN) models
	JCLIP="$(abspath $(JCLIP_BIN))" bats tests/cli

# The batch-invariance tests (the GNU parallel byte-identity ones among them) and the golden
# suites once more on OpenBLAS's Haswell kernels, those of most AVX2-only machines, whose
# rows round by their place in a group of 12 (lib/pool.c): x86-64 only.
HASWELL_CLI := tests/cli/embed_text.bats tests/cli/embed_image.bats tests/cli/jsonl.bats
HASWELL_FILTER := do not change the output|same bytes whatever|classify --text --jsonl

test-haswell: $(UNIT_BIN) $(JCLIP_BIN) models
ifneq ($(filter x86_64%,$(ARCH)),)
	@set -e; for t in $(BUILD)/tests/test_linear $(GOLDEN_BIN); do \
	    echo "== $$t, OPENBLAS_CORETYPE=Haswell"; OPENBLAS_CORETYPE=Haswell $$t; done
	JCLIP_TEST_CORETYPE=Haswell JCLIP="$(abspath $(JCLIP_BIN))" \
		bats --filter '$(HASWELL_FILTER)' $(HASWELL_CLI)
else
	@echo "test-haswell: not an x86-64 machine"
endif

# The same once more on OpenBLAS's own pick for this CPU where the environment sets
# OPENBLAS_CORETYPE (as on machines that pin Haswell's kernels): there, on AVX-512 CPUs,
# products of few rows leave OpenBLAS for the kernels' linear_few (lib/pool.c), and a row's
# bits must still be the same whatever its batch.
test-best: $(UNIT_BIN) $(JCLIP_BIN) models
ifneq ($(OPENBLAS_CORETYPE),)
	@set -e; for t in $(BUILD)/tests/test_linear $(GOLDEN_BIN); do \
	    echo "== $$t, OPENBLAS_CORETYPE unset"; env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $$t; done
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE JCLIP="$(abspath $(JCLIP_BIN))" \
		bats --filter '$(HASWELL_FILTER)' $(HASWELL_CLI)
else
	@echo "test-best: OPENBLAS_CORETYPE is not set, so the runs above used OpenBLAS's own pick"
endif

# jclip(1)'s PIPELINES across hosts: three ssh hosts made of network namespaces of this
# machine (scripts/test-cluster). Needs root, ip and openssh-server; where the cluster cannot
# be made, scripts/test-cluster says why and exits 77, and the target is skipped, not failed.
.PHONY: test-cluster
test-cluster: $(JCLIP_BIN) models
	@echo 'scripts/test-cluster run bats tests/cluster'
	@status=0; JCLIP="$(abspath $(JCLIP_BIN))" scripts/test-cluster run bats tests/cluster || status=$$?; \
	if [ $$status -eq 77 ]; then echo "test-cluster: SKIPPED: no test cluster on this machine (reason above)"; \
	else exit $$status; fi

# The full-size (jina-clip-v1 dimensions) golden check: ~900 MB of generated weights.
test-full: $(UNIT_BIN) $(MODELS)/full/model.safetensors
	JCLIP_TEST_CONFIGS=full $(BUILD)/tests/test_recipe
	JCLIP_TEST_CONFIGS=full $(BUILD)/tests/test_vision
	JCLIP_TEST_CONFIGS=full $(BUILD)/tests/test_golden
	JCLIP_TEST_CONFIGS=full JCLIP_ISA=ref $(BUILD)/tests/test_vision

BENCH := $(BUILD)/jclip-bench

$(BENCH): $(BUILD)/scripts/bench.o $(BUILD)/scripts/photo.o $(BUILD)/libjclip.a
	$(CC) $(JC_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A report, not a test: throughput against this machine's SGEMM peak, on the full-size model.
bench: $(BENCH) jclip $(MODELS)/full/model.safetensors
	$(BENCH) $(MODELS)/full ./jclip

# The quick tier again, built with AddressSanitizer and UndefinedBehaviorSanitizer: any
# report fails the run (UBSan does not recover; a leak fails at exit). JCLIP_SANITIZED tells
# the tests that resident memory is the sanitizer's to grow (its quarantine of freed blocks).
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

asan:
	JCLIP_SANITIZED=1 $(MAKE) BUILD=build/asan JCLIP_BIN=build/asan/jclip CFLAGS="$(SAN_FLAGS)" \
		LDFLAGS="-fsanitize=address,undefined" NEON_TESTS= test

# A report, not a test: the lines of lib/, cmd/ and kernels/ that make test runs, per file and
# in all (gcov counts every process, the jclip runs of the bats suites included).
COV_BUILD := build/cov
.PHONY: coverage
# Tests that run jclip as another user (setpriv nobody) need the object directories open to
# it for their counts; a failing test still leaves a report, made after the run.
COV_MAKE := $(MAKE) BUILD=$(COV_BUILD) JCLIP_BIN=$(COV_BUILD)/jclip CFLAGS="-O1 -g --coverage" \
	LDFLAGS=--coverage NEON_TESTS=
coverage:
	rm -rf $(COV_BUILD)
	$(COV_MAKE) $(COV_BUILD)/jclip
	chmod -R a+rwX $(COV_BUILD)
	$(COV_MAKE) test || echo "coverage: make test failed; the report covers what ran"
	scripts/coverage-report $(COV_BUILD)

# Fuzzing (tests/fuzz/README.md): each tests/fuzz/fuzz_<target>.c is a libFuzzer target and
# tests/fuzz/<target>/ holds its seeds and regression inputs. fuzz-replay runs every committed
# input once through its target built like the tests, with tests/fuzz/replay.c as main (so make
# asan replays them under the sanitizers). make fuzz builds the library and the targets with
# clang and libFuzzer in build/fuzz, then fuzzes each for FUZZ_SECONDS.
FUZZ_ALL     := $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_FLAGS   := $(SAN_FLAGS) -fsanitize=fuzzer-no-link
REPLAY_BIN   := $(FUZZ_ALL:%=$(BUILD)/fuzz-replay/fuzz_%)

.PHONY: fuzz fuzz-replay
.SECONDARY: $(FUZZ_ALL:%=$(BUILD)/tests/fuzz/fuzz_%.o) $(BUILD)/tests/fuzz/replay.o

$(BUILD)/fuzz-replay/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o \
		$(BUILD)/libjclip.a
	@mkdir -p $(dir $@)
	$(CC) $(JC_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-replay: $(REPLAY_BIN)
	@set -e; for t in $(FUZZ_ALL); do $(BUILD)/fuzz-replay/fuzz_$$t tests/fuzz/$$t; done

# Linked by the make below, in which BUILD is $(FUZZ_BUILD) and CC is clang.
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libjclip.a
	$(CC) $(JC_FLAGS) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="$(FUZZ_FLAGS)" \
		$(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The CLI tests with every jclip run under valgrind's memcheck: no error in any process, and
# no definite leak in any that exited (scripts/valgrind-logs says why a killed one may have). memcheck emulates FMA lane by lane, so its jclip is built in $(VG_BUILD)
# with JC_NO_FMA (the same kernels with a separate multiply and add), and
# scripts/valgrind-jclip gives OpenBLAS its AVX kernels, which have no FMA either. The tests
# run VG_JOBS at a time (bats --jobs). VG_EXACT=1 runs the release jclip with the core type
# OpenBLAS picks instead, FMA and all: hours, the long texts most of it. VG_TESTS narrows
# the run to some .bats files.
VG_LOG_DIR := /tmp/jclip-valgrind
VG_BUILD   := build/valgrind
VG_JOBS    ?= $(shell nproc)
VG_TESTS   ?= tests/cli
ifeq ($(VG_EXACT),1)
VG_JCLIP   := $(JCLIP_BIN)
VG_MAKE    := $(JCLIP_BIN)
VG_ENV     := VG_KEEP_CORETYPE=1
else
VG_JCLIP   := $(VG_BUILD)/jclip
VG_MAKE    := BUILD=$(VG_BUILD) JCLIP_BIN=$(VG_JCLIP) JC_DEFS=-DJC_NO_FMA $(VG_JCLIP)
VG_ENV     :=
endif

valgrind: models
	$(MAKE) --no-print-directory $(VG_MAKE)
	bats tests/scripts/valgrind_logs.bats
	rm -rf $(VG_LOG_DIR) && mkdir -p $(VG_LOG_DIR) && chmod 1777 $(VG_LOG_DIR)
	$(VG_ENV) VG_LOG_DIR=$(VG_LOG_DIR) JCLIP_REAL="$(abspath $(VG_JCLIP))" \
		JCLIP="$(abspath scripts/valgrind-jclip)" bats --jobs $(VG_JOBS) $(VG_TESTS)
	scripts/valgrind-logs $(VG_LOG_DIR)

# A first run with no download: the README's zero-shot classification of four photos, and a
# search of them by a sentence, on the generated tiny model (random weights, real shapes).
# tests/cli/first_run.bats runs it as the README spells it.
demo: DEMO_PHOTOS := $(addprefix tests/golden/images/,chelsea.png rocket.jpg coffee.png astronaut.png)
demo: jclip $(MODELS)/tiny/model.safetensors
	./jclip classify -m $(MODELS)/tiny -l "cat,rocket,cup of coffee,astronaut,dog" $(DEMO_PHOTOS)
	@mkdir -p $(BUILD)/demo
	./jclip embed-image -m $(MODELS)/tiny -o $(BUILD)/demo/photos.npy $(DEMO_PHOTOS)
	./jclip similarity -m $(MODELS)/tiny --text "a rocket on the launch pad" --against $(BUILD)/demo/photos.npy --top 1
	@echo "demo: the test model's weights are random, so these labels and this match mean nothing; ./jclip download fetches jina-clip-v1"

install: jclip
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 jclip $(DESTDIR)$(PREFIX)/bin/jclip
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/

check-style:
	clang-format --dry-run --Werror cmd/*.c cmd/*.h lib/*.c lib/*.h lib/decode/*.c lib/decode/*.h kernels/*.c kernels/*.h scripts/*.c tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h

clean:
	rm -rf $(BUILD) jclip $(MODELS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
