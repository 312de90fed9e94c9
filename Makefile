# lstm — make builds build/lstm, build/liblstm.a, build/liblstm.so;
# make test builds and runs the tests (and the live PyTorch cross-check when
# /usr/bin/python3 can import torch); make asan runs them under ASan+UBSan.
# make NO_X86_KERNELS=1 leaves every x86 SIMD kernel out (the portable paths
# only, as on another CPU); make test-portable builds that into build-portable/
# and runs the tests there.
CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
override CFLAGS += -std=c11 -Wall -Wextra -Iinclude -Isrc -fPIC -pthread -D_GNU_SOURCE
LDFLAGS ?=
override LDLIBS += -lm -pthread
BUILD   ?= build
PREFIX  ?= /usr/local
VERSION  = 0.1.0

SRC      = $(wildcard src/*.c src/*/*.c)
ifeq ($(NO_X86_KERNELS),1)
override CFLAGS += -DLSTM_NO_X86
SRC     := $(filter-out %_avx2.c %_avx512.c,$(SRC))
endif
OBJ      = $(SRC:src/%.c=$(BUILD)/obj/%.o)
CLI_SRC  = $(filter-out cli/dist_mpi.c,$(wildcard cli/*.c))
CLI_OBJ  = $(CLI_SRC:cli/%.c=$(BUILD)/cli/%.o)
TEST_SRC = $(wildcard tests/test_*.c)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HDR      = include/lstm.h $(wildcard src/*.h src/*/*.h) $(wildcard cli/*.h)

.PHONY: all test test-portable asan fuzz install clean crosscheck bench-gemm bench-sample bench-rules bench bench-onednn python python-test mpi test-mpi
all: $(BUILD)/lstm $(BUILD)/liblstm.a $(BUILD)/liblstm.so

# The library is built with hidden visibility: only what lstm.h marks LSTM_API is exported.
$(BUILD)/obj/%.o: src/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(SANITIZE),$(SAN_FLAGS_$(notdir $*))) -fvisibility=hidden -DLSTM_BUILD -c $< -o $@
$(BUILD)/cli/%.o: cli/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/liblstm.a: $(OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/liblstm.so: $(OBJ)
	$(CC) -shared -Wl,-soname,liblstm.so.0 $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/lstm: $(CLI_OBJ) $(BUILD)/liblstm.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/liblstm.a $(LDLIBS)
$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/liblstm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/liblstm.a $(LDLIBS)

# Unit and fixture tests, then the CLI tests, then the live PyTorch cross-check.
test: all $(TEST_BIN) $(BUILD)/ab_hooks
	@BUILD=$(BUILD) CC="$(CC)" LINKFLAGS="$(LDFLAGS)" sh tests/run.sh $(TEST_BIN)

# The same tests with the x86 SIMD kernels compiled out (a stand-in for an aarch64 build);
# the Python package (built with the x86 kernels) is tested by make test only.
test-portable:
	LSTM_PYTHON_TESTS=0 $(MAKE) BUILD=build-portable NO_X86_KERNELS=1 test

crosscheck: all
	/usr/bin/python3 tools/crosscheck.py --lstm $(BUILD)/lstm

asan:
	$(MAKE) BUILD=build-asan CC=clang OPT=-O1 LSTM_PYTHON_TESTS=0 SANITIZE=1 \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" test

# Sanitized builds (asan, fuzz) add SAN_FLAGS_<file> to that file's flags: the GEMM
# micro-kernel file is compiled under ASan alone.  With UBSan, clang 14 took 146 s on its
# fully unrolled tiles (-O1 -g, in CI's ASan build, and as long again in each fuzz target's;
# 9 s with ASan alone).  ASan still checks every load and store of its tiles; gemm.c
# (packing, blocking, the portable kernel) keeps UBSan.
SAN_FLAGS_gemm_avx512 = -fno-sanitize=undefined

# Data-parallel training over Open MPI (openmpi-bin, libopenmpi-dev): build/lstm-mpi is
# the same CLI with cli/dist_mpi.c for cli/dist.c.  Never needed by all or test.
MPICC   ?= mpicc
MPI_CLI_OBJ = $(filter-out $(BUILD)/cli/dist.o,$(CLI_OBJ)) $(BUILD)/mpi/dist_mpi.o
mpi: $(BUILD)/lstm-mpi
$(BUILD)/mpi/dist_mpi.o: cli/dist_mpi.c $(HDR)
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) -DLSTM_MPI -c $< -o $@
$(BUILD)/lstm-mpi: $(MPI_CLI_OBJ) $(BUILD)/liblstm.a
	$(MPICC) $(LDFLAGS) -o $@ $(MPI_CLI_OBJ) $(BUILD)/liblstm.a $(LDLIBS)
# 1, 2 and 4 processes give the same bytes; faults; resume across process counts.
# Skips (exit 0, with a message) only when mpirun or mpicc is absent.
test-mpi: all
	@BUILD=$(BUILD) sh tests/cli_mpi.sh

# GEMM micro-benchmark (not a test): GFLOP/s per kernel on the LSTM's shapes.
bench-gemm: $(BUILD)/bench_gemm
$(BUILD)/bench_gemm: tools/bench_gemm.c $(BUILD)/liblstm.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/liblstm.a $(LDLIBS) -ldl

# Sampling micro-benchmark (not a test): µs per greedy byte, stream loop vs the sampler.
bench-sample: $(BUILD)/bench_sample
$(BUILD)/bench_sample: tools/bench_sample.c $(BUILD)/liblstm.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/liblstm.a $(LDLIBS)

# The engine's CPU rules, each A/B'd in process on this CPU (not a test): bench/rules.sh.
bench-rules: $(BUILD)/ab_hooks
$(BUILD)/ab_hooks: tools/ab_hooks.c $(BUILD)/liblstm.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/liblstm.a $(LDLIBS)

# The library's objects are compiled once for both targets (make -j2 fuzz builds them
# two at a time) and kept (named prerequisites of a static pattern rule, not intermediates).
FUZZ_TARGETS = $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_*.c))
FUZZ_OBJ     = $(SRC:src/%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_CFLAGS  = -std=c11 -g -O1 -Iinclude -Isrc -D_GNU_SOURCE -pthread -fno-sanitize-recover=undefined
fuzz: $(FUZZ_TARGETS)
$(BUILD)/fuzz/obj/%.o: src/%.c $(HDR)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined $(SAN_FLAGS_$(notdir $*)) -c $< -o $@
$(FUZZ_TARGETS): $(BUILD)/fuzz/%: fuzz/%.c $(FUZZ_OBJ) $(HDR)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJ) -lm

# Benchmarks (bench/run.sh); oneDNN is only needed for bench-onednn, never for all/test.
bench-onednn: $(BUILD)/bench/onednn_lstm
$(BUILD)/bench/onednn_lstm: bench/onednn_lstm.c $(BUILD)/liblstm.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -fopenmp -D_GNU_SOURCE -Iinclude -o $@ $< $(BUILD)/liblstm.a -ldnnl -lm -pthread
bench: all
	sh bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/lstm $(DESTDIR)$(PREFIX)/bin/lstm
	install -m 644 $(BUILD)/liblstm.a $(DESTDIR)$(PREFIX)/lib/liblstm.a
	install -m 755 $(BUILD)/liblstm.so $(DESTDIR)$(PREFIX)/lib/liblstm.so.0
	ln -sf liblstm.so.0 $(DESTDIR)$(PREFIX)/lib/liblstm.so
	install -m 644 include/lstm.h $(DESTDIR)$(PREFIX)/include/lstm.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' lstm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/lstm.pc

# The Python package, built in place (python/lstm/_lstm*.so) for /usr/bin/python3, and its tests.
python:
	cd python && env -u CFLAGS -u LDFLAGS -u CC /usr/bin/python3 setup.py build_ext --inplace
python-test: all python
	LSTM_BIN=$(BUILD)/lstm PYTHONPATH=$(CURDIR)/python /usr/bin/python3 python/tests/run.py

clean:
	rm -rf build build-asan build-portable python/build python/lstm/_lstm*.so
