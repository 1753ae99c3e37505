# Vigil — plain Makefile.  make | make test | make test-long | make SAN=1 test | make CUDA=1 | make bench
#   make install PREFIX=/usr/local [DESTDIR=...] | make uninstall | make test-install (tests/install.sh)
#   make CUDA_EMU=1 test: the CUDA backend built with g++ against a host emulator of the CUDA
#   runtime and cuBLAS (tests/cuda_emu/: a test double), so test_cuda and every test run it without a GPU
#   or the Toolkit (build dir build/cuemu).
# Sources are found by folder: every .c under the library folders goes into libvigil.a,
# every tests/test_*.c is one test program, cli/*.c make the `vigil` program.
CC      ?= cc
NVCC    ?= nvcc
SAN     ?= 0
CUDA    ?= 0
CUDA_EMU ?= 0
OPT     ?= -O2

BUILD   := build
# -fPIC: every object also goes into libvigil.so (one object set for libvigil.a, libvigil.so and the
# programs); -fno-semantic-interposition keeps the calls inside the library direct and inlinable
# as without -fPIC. CPU results are bit-identical to the non-PIC build (checked with /work/bit).
CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror=switch -MMD -MP -pthread -fno-math-errno -fPIC \
           -fno-semantic-interposition -I. $(OPT) -g
LDLIBS  := -lm -pthread
ifeq ($(SAN),1)
  BUILD   := $(BUILD)/san
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(CUDA),1)
  BUILD   := $(BUILD)/cuda
  CFLAGS  += -DVG_WITH_CUDA=1
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
  LDLIBS  += -L$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
  # A fat binary: machine code for every architecture the installed Toolkit supports from
  # Volta (sm_70) on, plus PTX of the newest so later GPUs JIT-compile it. CUDA_ARCH="86 90"
  # narrows the list (faster builds); the list is compiled into the backend, whose start-up
  # check names the GPU and the CUDA_ARCH to rebuild with when the binary has no code for it.
  CUDA_ARCH ?= $(shell $(NVCC) --list-gpu-code 2>/dev/null | sed -n 's/^sm_\([0-9][0-9]*\)$$/\1/p' | awk '$$1 >= 70' | sort -n | tr '\n' ' ')
  CUDA_ARCH_LIST := $(shell echo '$(CUDA_ARCH)' | tr ' ,' '\n\n' | sed -n 's/^sm_//; /^[0-9][0-9]*$$/p' | sort -n -u | tr '\n' ' ')
  ifeq ($(strip $(CUDA_ARCH_LIST)),)
    CUDA_ARCH_LIST := 75 80 86 89 90
  endif
  CUDA_PTX := $(lastword $(CUDA_ARCH_LIST))
  NVARCH  := $(foreach a,$(CUDA_ARCH_LIST),-gencode arch=compute_$(a),code=sm_$(a)) -gencode arch=compute_$(CUDA_PTX),code=compute_$(CUDA_PTX)
  NVFLAGS := -O3 -std=c++17 -I. -DVG_WITH_CUDA=1 $(NVARCH) --threads 0 --fmad=false -Xcompiler -Wall -Xcompiler -fPIC \
             -DVG_CUDA_ARCHS='"$(strip $(CUDA_ARCH_LIST))"'
  # objects follow the architecture list: a changed CUDA_ARCH rebuilds the .cu files
  CUDA_STAMP := $(BUILD)/.cuda_arch
  $(shell mkdir -p $(BUILD) && { [ "$$(cat $(CUDA_STAMP) 2>/dev/null)" = "$(strip $(CUDA_ARCH_LIST))" ] || echo "$(strip $(CUDA_ARCH_LIST))" > $(CUDA_STAMP); })
endif

ifeq ($(CUDA_EMU),1)
  ifeq ($(CUDA),1)
    $(error CUDA=1 and CUDA_EMU=1 exclude each other)
  endif
  BUILD   := $(BUILD)/cuemu
  CFLAGS  += -DVG_WITH_CUDA=1 -DVG_CUDA_EMU=1
  LDLIBS  += -lstdc++ -pthread
  # .cu files as host C++: the emulator's cuda_runtime.h / cublas_v2.h come first on the path
  EMUFLAGS := -std=c++17 $(OPT) -g -D_GNU_SOURCE -D__CUDACC__ -DVG_WITH_CUDA=1 -DVG_CUDA_EMU=1 \
              -I tests/cuda_emu -I. -MMD -MP -pthread -fno-math-errno -fPIC -Wall -Wno-unknown-pragmas -Wno-misleading-indentation
  ifeq ($(SAN),1)
    EMUFLAGS += -fsanitize=undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  endif
endif

# methods/*/: one folder per method, found here (a new method adds its folder + one line in methods/registry.c)
METHOD_DIRS := $(patsubst %/,%,$(sort $(dir $(wildcard methods/*/*.c))))
LIBDIRS := base tensor tensor/cpu autograd nn nn/backbones flows methods $(METHOD_DIRS) datasets datasets/image eval report bench/lib cli
# cli/*.c go into the library too (vg_cli_main, cli/cli.h), except cli/vigil.c: the program's main()
LIB_SRC := $(filter-out cli/vigil.c,$(foreach d,$(LIBDIRS),$(wildcard $(d)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
ifeq ($(CUDA),1)
  CU_SRC := $(wildcard tensor/cuda/*.cu)
  LIB_OBJ += $(CU_SRC:%.cu=$(BUILD)/%.o)
endif
ifeq ($(CUDA_EMU),1)
  CU_SRC := $(wildcard tensor/cuda/*.cu)
  LIB_OBJ += $(CU_SRC:%.cu=$(BUILD)/%.o) $(BUILD)/tests/cuda_emu/emu.o
endif
LIB     := $(BUILD)/libvigil.a

# The version lives in vigil.h (VG_VERSION_MAJOR/MINOR/PATCH); the shared library is
# libvigil.so.MAJOR.MINOR.PATCH with soname libvigil.so.MAJOR and the two usual links.
vg_ver = $(shell sed -n 's/^\#define VG_VERSION_$(1) \([0-9][0-9]*\).*/\1/p' vigil.h)
VER_MAJOR := $(call vg_ver,MAJOR)
VERSION   := $(VER_MAJOR).$(call vg_ver,MINOR).$(call vg_ver,PATCH)
SONAME    := libvigil.so.$(VER_MAJOR)
SOLIB     := $(BUILD)/libvigil.so.$(VERSION)

TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TCOMMON   := $(wildcard tests/common/*.c)
TCOMMON_O := $(TCOMMON:%.c=$(BUILD)/%.o)
ifeq ($(CUDA_EMU),1)
  TEST_BIN += $(BUILD)/tests/test_cuda_emu   # the emulator's own checks (tests/cuda_emu/selftest.cu)
endif
CLI_OBJ   := $(BUILD)/cli/vigil.o
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test test-long bench demo clean install install-headers uninstall test-install
all: $(LIB) $(SOLIB) $(BUILD)/vigil
	@if [ "$(CUDA)" = 1 ]; then echo "built with CUDA ($(CUDA_HOME))"; \
	elif [ "$(CUDA_EMU)" = 1 ]; then echo "built with the CUDA backend on the host emulator (tests/cuda_emu)"; else \
	  if command -v $(NVCC) >/dev/null 2>&1; then echo "nvcc found; 'make CUDA=1' builds the GPU backend"; \
	  else echo "no nvcc: CPU-only build"; fi; fi

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SOLIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) $^ $(LDLIBS) -o $@
	ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libvigil.so

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

ifeq ($(CUDA_EMU),1)
$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(CXX) -x c++ $(EMUFLAGS) -c $< -o $@

$(BUILD)/tests/cuda_emu/emu.o: tests/cuda_emu/emu.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(EMUFLAGS) -c $< -o $@

$(BUILD)/tests/test_cuda_emu: $(BUILD)/tests/cuda_emu/selftest.o $(BUILD)/tests/cuda_emu/emu.o
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) $^ -pthread -o $@
-include $(BUILD)/tests/cuda_emu/selftest.d
else
$(BUILD)/%.o: %.cu $(CUDA_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@
endif

# the commit `vigil bench` records (bench JSON: "vigil_commit"); cli/bench.o is rebuilt when it changes
GIT_COMMIT := $(or $(shell git describe --always --dirty --abbrev=12 2>/dev/null),unknown)
COMMIT_STAMP := $(BUILD)/.git_commit
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(COMMIT_STAMP) 2>/dev/null)" = "$(GIT_COMMIT)" ] || echo "$(GIT_COMMIT)" > $(COMMIT_STAMP); })
$(BUILD)/cli/bench.o: $(COMMIT_STAMP)
$(BUILD)/cli/bench.o: CFLAGS += -DVG_GIT_COMMIT='"$(GIT_COMMIT)"'

# ./vigil follows the plain and the CUDA=1 builds, not the sanitizer or emulator ones
# (an ASan or host-emulated binary behind ./vigil would time and run 10-100x slower)
$(BUILD)/vigil: $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@
	@if [ "$(SAN)" != 1 ] && [ "$(CUDA_EMU)" != 1 ]; then ln -sf $(BUILD)/vigil vigil 2>/dev/null || true; fi

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TCOMMON_O) $(LIB)
	$(CC) $(LDFLAGS) $< $(TCOMMON_O) $(LIB) $(LDLIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

# Each test program prints one line per check and ends with "N passed, N failed".
# test objects are built by pattern rules, which make would delete as intermediates after
# the run (an "rm ..." line after the summary, and a rebuild next time): keep them
.SECONDARY:

test: $(TEST_BIN) $(BUILD)/vigil
	@VIGIL_TEST_LONG=0 VG_LAYERING_BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN) tests/layering.sh tests/headers.sh

test-long: $(TEST_BIN) $(BUILD)/vigil
	@VIGIL_TEST_LONG=1 VG_LAYERING_BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN) tests/layering.sh tests/headers.sh

# ---- install ------------------------------------------------------------------------------
# make install PREFIX=/usr/local DESTDIR=  puts
#   BINDIR/vigil, LIBDIR/libvigil.a, LIBDIR/libvigil.so.MAJOR.MINOR.PATCH (+ the links
#   libvigil.so.MAJOR and libvigil.so), PKGCONFIGDIR/vigil.pc, and the public headers under
#   INCLUDEDIR/vigil/ in their source folders (vigil.h at its top; Cflags -I${includedir}/vigil).
# make uninstall removes exactly those files, then the directories left empty.
# Public headers: every .h of the library folders except the internal ones below (and any
# *internal.h); tensor/{cpu,cuda,kmath}/ are never installed, of cli/ only cli/cli.h. tests/headers.sh (make test)
# compiles each installed header alone against the installed tree.
PREFIX       ?= /usr/local
DESTDIR      ?=
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
HDR_DIRS     := base tensor autograd nn nn/backbones flows methods $(METHOD_DIRS) datasets datasets/image eval report
INTERNAL_HDR := tensor/internal.h tensor/op_params.h tensor/eltwise.h tensor/hd.h tensor/vmath.h tensor/optim_upd.h \
                autograd/backward.h flows/block.h eval/rank.h
PUB_HDR      := vigil.h cli/cli.h tensor/ops.def tensor/unary.def tensor/binary.def \
                $(filter-out $(INTERNAL_HDR) %internal.h,$(foreach d,$(HDR_DIRS),$(wildcard $(d)/*.h)))
INST_INC     := $(DESTDIR)$(INCLUDEDIR)/vigil
INST_LIB     := $(DESTDIR)$(LIBDIR)

# vigil.pc, written at install time (it names PREFIX); Libs.private: what libvigil.a needs
VG_PC_LINES := 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' 'Name: vigil' \
  'Description: Vigil: visual anomaly detection in C11 (tensors, autograd, nn, flows, methods, the vigil CLI)' \
  'Version: $(VERSION)' 'Libs: -L$${libdir} -lvigil' 'Libs.private: $(strip $(LDLIBS))' 'Cflags: -I$${includedir}/vigil'

install-headers:
	@for h in $(PUB_HDR); do \
	  mkdir -p "$(INST_INC)/$$(dirname $$h)" && install -m 644 "$$h" "$(INST_INC)/$$h" || exit 1; \
	done

install: $(LIB) $(SOLIB) $(BUILD)/vigil install-headers
	mkdir -p "$(DESTDIR)$(BINDIR)" "$(INST_LIB)" "$(DESTDIR)$(PKGCONFIGDIR)"
	install -m 755 $(BUILD)/vigil "$(DESTDIR)$(BINDIR)/vigil"
	install -m 644 $(LIB) "$(INST_LIB)/libvigil.a"
	install -m 755 $(SOLIB) "$(INST_LIB)/libvigil.so.$(VERSION)"
	ln -sf libvigil.so.$(VERSION) "$(INST_LIB)/$(SONAME)"
	ln -sf $(SONAME) "$(INST_LIB)/libvigil.so"
	printf '%s\n' $(VG_PC_LINES) > "$(DESTDIR)$(PKGCONFIGDIR)/vigil.pc"
	chmod 644 "$(DESTDIR)$(PKGCONFIGDIR)/vigil.pc"
	@echo "installed Vigil $(VERSION) under $(DESTDIR)$(PREFIX) (pkg-config: PKG_CONFIG_PATH=$(DESTDIR)$(PKGCONFIGDIR))"

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/vigil" "$(INST_LIB)/libvigil.a" "$(INST_LIB)/libvigil.so.$(VERSION)" \
	  "$(INST_LIB)/$(SONAME)" "$(INST_LIB)/libvigil.so" "$(DESTDIR)$(PKGCONFIGDIR)/vigil.pc"
	@for h in $(PUB_HDR); do rm -f "$(INST_INC)/$$h"; done
	@if [ -d "$(INST_INC)" ]; then find "$(INST_INC)" -depth -type d -empty -exec rmdir {} \; ; fi
	@for d in "$(DESTDIR)$(PKGCONFIGDIR)" "$(INST_LIB)" "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(INCLUDEDIR)"; do \
	  [ "$$d" = "$(DESTDIR)$(PREFIX)" ] || rmdir "$$d" 2>/dev/null || true; done

# installs into a temporary prefix, builds examples/*/ there with pkg-config only, runs the template
test-install:
	VG_INSTALL_FLAGS="BUILD=$(BUILD) SAN=$(SAN) CUDA=$(CUDA) CUDA_EMU=$(CUDA_EMU)" sh tests/install.sh

bench: $(BENCH_BIN)
	@for b in $(BENCH_BIN); do $$b || exit 1; done

# FastFlow (ResNet-18, random init) at 128 px, 100 steps of 8, on the synthetic woven category:
# train, test (metrics + HTML report); about 1 minute of 2 cores (~110 s of CPU)
demo: all
	./$(BUILD)/vigil info
	./$(BUILD)/vigil train fastflow --category woven --set input_size=128 --steps 100 --batch 8 --out runs/demo-fastflow
	@echo "report: $(CURDIR)/runs/demo-fastflow/report/report.html"

clean:
	rm -rf build vigil

-include $(LIB_OBJ:.o=.d) $(TEST_BIN:%=%.d) $(CLI_OBJ:.o=.d) $(TCOMMON_O:.o=.d) $(BENCH_BIN:%=%.d)
