/* emu.cpp — a host emulator of the CUDA runtime / cuBLAS subset the backend uses, so the
 * tensor/cuda .cu sources build with g++ and run on the CPU (make CUDA_EMU=1).
 *
 * Execution. One lock serializes everything. Work submitted to any stream (launches,
 * async copies and memsets, cuBLAS calls, graph launches, event records) is queued in
 * submission order and runs when the host synchronizes (stream / device / event
 * synchronize, a synchronous copy or memset, cudaFree, a copy to pageable host memory,
 * a stream or event query), so a missing synchronization reads stale data as on a GPU;
 * copies from pageable memory are staged at the call, as the runtime does.
 * VIGIL_EMU_EAGER=1 runs every call at once (errors then surface at the launch site,
 * with VIGIL_CUDA_SYNC=1 too). Blocks of a launch run one after
 * another. The threads of a block are cooperative fibers with 64 KiB stacks (allocated
 * once, with guard pages, reused): a thread runs until it reaches a barrier
 * (__syncthreads, a warp collective) or returns, and a barrier releases when every
 * thread still running has reached it. The fast path: thread 0 of each block runs on a
 * fiber first; when it returns without reaching a barrier, the other threads of that
 * block run as plain calls on the caller's stack (a barrier in one of them is reported
 * as a divergent barrier and aborts).
 *
 * Checks a real GPU would make fail (or that hide GPU bugs on the host):
 *  - device memory is mmap'ed with a guard page right after the (256-byte rounded)
 *    allocation and one before, so an out-of-bounds access faults; the SIGSEGV handler
 *    names the kernel, block and thread (and the allocation) and aborts;
 *  - fresh allocations are filled with 0xff bytes (NaN floats, -1 integers), as GPU
 *    memory is not zeroed (VIGIL_EMU_POISON=0 turns this off);
 *  - pointer arguments of a launch and cuBLAS / memcpy / memset pointers must lie in
 *    device memory (or cudaMallocHost memory): a host pointer aborts with a message;
 *  - launch configuration limits (1024 threads, 48 KiB dynamic shared memory unless
 *    raised by cudaFuncSetAttribute, grid limits) -> cudaErrorInvalidConfiguration /
 *    cudaErrorInvalidValue from cudaGetLastError;
 *  - __trap() ends the kernel with the sticky cudaErrorLaunchFailure;
 *  - stream capture as the real runtime: work on a capturing stream is recorded as
 *    closures (arguments copied) and replayed by cudaGraphLaunch; synchronizing a
 *    capturing stream, synchronous copies/memsets, cudaMalloc/cudaFree (unless the
 *    capture or the thread is cudaStreamCaptureModeRelaxed) fail with
 *    cudaErrorStreamCaptureUnsupported and invalidate the capture; legacy-stream work
 *    while a blocking stream captures fails with cudaErrorStreamCaptureImplicit.
 * Environment: VIGIL_EMU_POISON=0, VIGIL_EMU_MEM=<bytes of "device" memory> (default
 * 16 GiB or half the host's RAM, whichever is smaller), VIGIL_EMU_REVERSE=1 (blocks, and
 * the threads of a block between barriers, run from last to first instead of first to
 * last (thread 0 still starts each block): a kernel that depends on the order, e.g. a
 * missing __syncthreads or a race between blocks, then gives other results),
 * VIGIL_EMU_TRACE=1 (a stderr line per kernel launch and cuBLAS GEMM as it is queued:
 * what a forward launches, counted without a GPU). */
#include "cuda_runtime.h"
#include "cublas_v2.h"
#include "tensor/tensor.h"
#include "tensor/cuda/vmath.cuh"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

/* The dynamic shared memory of the running launch: `extern __shared__ T s[]` in a kernel
 * is `extern thread_local T s[]`, this array (48 KiB by default, 227 KiB with
 * cudaFuncAttributeMaxDynamicSharedMemorySize, as an H100). A kernel that names its
 * dynamic shared array otherwise needs that name added here as an alias. */
#define VG_EMU_MAX_SHM (227 * 1024)
alignas(256) thread_local unsigned char s[VG_EMU_MAX_SHM];

namespace {

[[noreturn]] __attribute__((format(printf, 1, 2))) void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "vigil-emu: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fflush(stderr);
  abort();
}

std::recursive_mutex g_lock;
typedef std::lock_guard<std::recursive_mutex> guard;

thread_local cudaError_t last_error = cudaSuccess;
cudaError_t sticky_error = cudaSuccess;

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

double now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---- device memory ---- */
struct alloc_rec {
  size_t size;       /* bytes asked for */
  size_t span;       /* bytes usable (size rounded to 256) */
  char *map;         /* the mapping (with guard pages) */
  size_t maplen;
  bool pinned;       /* cudaMallocHost memory */
};
std::map<uintptr_t, alloc_rec> allocs;   /* by start address */
size_t page_size, mem_total, mem_used;
bool poison = true;
bool reverse_order;   /* VIGIL_EMU_REVERSE=1: blocks and threads run last to first */
bool trace;           /* VIGIL_EMU_TRACE=1: one stderr line per kernel launch / cuBLAS call as queued */

/* the allocation holding [p, p + n) (n = 0: p may be one past the end), or NULL */
const alloc_rec *find_alloc(const void *p, size_t n, uintptr_t *base) {
  uintptr_t a = (uintptr_t)p;
  auto it = allocs.upper_bound(a);
  if (it == allocs.begin()) return nullptr;
  --it;
  if (a - it->first > it->second.span || (n && a + n > it->first + it->second.span)) return nullptr;
  if (n == 0 && a - it->first > it->second.span) return nullptr;
  if (base) *base = it->first;
  return &it->second;
}
bool is_device(const void *p, size_t n) {
  const alloc_rec *r = find_alloc(p, n, nullptr);
  return r && !r->pinned;
}
bool is_accessible(const void *p, size_t n) { return find_alloc(p, n, nullptr) != nullptr; }

void *map_alloc(size_t size, bool pinned) {
  size_t span = (size + 255) & ~(size_t)255;
  size_t body = (span + page_size - 1) / page_size * page_size;
  size_t maplen = body + 2 * page_size;
  char *m = (char *)mmap(nullptr, maplen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  char *end = m + page_size + body;   /* the trailing guard page starts here */
  char *p = end - span;
  if (mprotect(m + page_size, body, PROT_READ | PROT_WRITE) != 0) {
    munmap(m, maplen);
    return nullptr;
  }
  if (poison && !pinned) memset(p, 0xff, span);
  allocs[(uintptr_t)p] = alloc_rec{size, span, m, maplen, pinned};
  return p;
}

/* ---- streams, events, graphs ---- */
struct capture_t;
}  // namespace

struct CUstream_st {
  unsigned flags;
  capture_t *cap;   /* non-null while capturing (status active or invalidated) */
  /* a stream that joined another stream's capture (cudaStreamWaitEvent on an event
   * recorded there): work recorded on it, and how much of it the origin has waited for */
  uint64_t cap_work, cap_joined;
};
struct CUevent_st {
  unsigned flags;
  bool recorded;   /* the record has executed */
  bool pending;    /* a record is queued */
  double t_ms;
  capture_t *cap;        /* recorded in this capture (a cross-stream dependency in it) */
  CUstream_st *cap_src;  /* ... on this stream, */
  uint64_t cap_work;     /* ... after this much of its recorded work */
};
struct CUgraph_st {
  std::vector<std::shared_ptr<std::function<void()>>> nodes;
};
struct CUgraphExec_st {
  std::vector<std::shared_ptr<std::function<void()>>> nodes;
};
struct cublasContext {
  cudaStream_t stream;
  cublasMath_t math;
  cublasPointerMode_t pmode;
};

namespace {
struct capture_t {
  cudaStream_t stream;
  cudaStreamCaptureMode mode;
  pthread_t thread;
  bool invalidated;
  CUgraph_st *graph;
  std::vector<CUstream_st *> joined;   /* other streams pulled into the capture (fork) */
};
std::set<CUstream_st *> streams;
std::set<CUevent_st *> events;
std::set<CUgraph_st *> graphs;
std::set<CUgraphExec_st *> graph_execs;
std::set<cublasContext *> handles;
std::vector<capture_t *> captures;
thread_local cudaStreamCaptureMode thread_mode = cudaStreamCaptureModeGlobal;
std::map<const void *, int> func_max_shm;
bool graph_running;   /* cudaGraphLaunch replaying: work runs, is not re-recorded */
/* Work submitted to streams waits here, in submission order (a legal schedule for any
 * streams), until a synchronizing call runs it, so a missing synchronization shows up
 * as on a GPU; VIGIL_EMU_EAGER=1 runs every call at once instead. */
std::deque<std::function<void()>> pending;
bool eager;

void flush() {
  while (!pending.empty()) {
    std::function<void()> w = std::move(pending.front());
    pending.pop_front();
    if (sticky_error == cudaSuccess) w();   /* after a fault the queued work is dropped */
  }
}

bool valid_stream(cudaStream_t s) {
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || streams.count(s);
}
capture_t *capture_of(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return nullptr;
  return s->cap;
}
void invalidate(capture_t *c) { c->invalidated = true; }

/* a potentially unsafe call (cudaMalloc, a synchronous copy, ...) while capturing */
cudaError_t unsafe_call() {
  if (thread_mode == cudaStreamCaptureModeRelaxed) return cudaSuccess;
  pthread_t me = pthread_self();
  cudaError_t e = cudaSuccess;
  for (capture_t *c : captures) {
    if (c->invalidated) continue;
    bool mine = pthread_equal(c->thread, me);
    if ((mine && c->mode != cudaStreamCaptureModeRelaxed) ||
        (!mine && thread_mode == cudaStreamCaptureModeGlobal && c->mode == cudaStreamCaptureModeGlobal)) {
      invalidate(c);
      e = cudaErrorStreamCaptureUnsupported;
    }
  }
  return e;
}

/* work submitted to stream s: recorded while it captures, else run now */
cudaError_t submit(cudaStream_t s, std::function<void()> &&work) {
  if (!valid_stream(s)) return cudaErrorInvalidResourceHandle;
  if (!graph_running) {
    if (capture_t *c = capture_of(s)) {
      if (c->invalidated) return cudaErrorStreamCaptureInvalidated;
      if (s != c->stream) s->cap_work++;
      /* one list in submission order: a legal serial schedule of the captured DAG */
      c->graph->nodes.push_back(std::make_shared<std::function<void()>>(std::move(work)));
      return cudaSuccess;
    }
    if (s == nullptr || s == cudaStreamLegacy) {   /* the legacy stream waits for blocking streams */
      cudaError_t e = cudaSuccess;
      for (capture_t *c : captures)
        if (!c->invalidated && !(c->stream->flags & cudaStreamNonBlocking)) {
          invalidate(c);
          e = cudaErrorStreamCaptureImplicit;
        }
      if (e != cudaSuccess) return e;
    }
  }
  if (eager || graph_running) work();
  else pending.push_back(std::move(work));
  return sticky_error;
}

/* synchronizing stream s (or the device when s is the legacy stream) */
cudaError_t sync_call(cudaStream_t s, bool device) {
  if (!valid_stream(s)) return cudaErrorInvalidResourceHandle;
  cudaError_t e = cudaSuccess;
  if (device) e = unsafe_call();
  else if (capture_t *c = capture_of(s)) {
    invalidate(c);
    e = cudaErrorStreamCaptureUnsupported;
  } else if (s == nullptr || s == cudaStreamLegacy) {
    for (capture_t *c : captures)
      if (!c->invalidated && !(c->stream->flags & cudaStreamNonBlocking)) {
        invalidate(c);
        e = cudaErrorStreamCaptureImplicit;
      }
  }
  if (e != cudaSuccess) return e;
  flush();
  return sticky_error;
}

/* ---- the scheduler ---- */
const size_t FIBER_STACK = 64 * 1024;
const int MAX_THREADS = 1024;
enum { T_NEW, T_RUN, T_BARRIER, T_WARP, T_DONE };
struct fiber {
  void *sp;
  int state;
#if !defined(__x86_64__)
  ucontext_t uc;
#endif
};
fiber fibers[MAX_THREADS];
char *fiber_mem;       /* MAX_THREADS stacks, each above a guard page */
void *sched_sp;        /* the scheduler's context while a fiber runs */
#if !defined(__x86_64__)
ucontext_t sched_uc;
#endif
int cur_fiber = -1;    /* the fiber running now; -1: a thread runs directly (no fiber) */
const vg_emu_launch_t *cur_launch;
bool in_kernel, block_trapped;
unsigned block_threads;
unsigned long long warp_slots[MAX_THREADS];
int sync_slots[MAX_THREADS];

struct trap_exc {};

}  // namespace

#if defined(__x86_64__)
/* vg_emu_switch(save, to): saves the callee-saved registers, mxcsr and the x87 control
 * word on the current stack, stores the stack pointer in *save, switches to `to` and
 * restores the same from there. A fresh fiber's stack holds that frame with
 * fiber_entry as the return address. */
extern "C" void vg_emu_switch(void **save, void *to);
asm(R"(
  .text
  .globl vg_emu_switch
  .type vg_emu_switch, @function
vg_emu_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size vg_emu_switch, .-vg_emu_switch
)");
#endif

namespace {
const char *kname() { return cur_launch ? cur_launch->name : "?"; }

void describe_thread(char *buf, size_t n) {
  snprintf(buf, n, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", kname(), blockIdx.x, blockIdx.y, blockIdx.z,
           threadIdx.x, threadIdx.y, threadIdx.z);
}

void set_thread_idx(unsigned t) {
  threadIdx.x = t % blockDim.x;
  threadIdx.y = (t / blockDim.x) % blockDim.y;
  threadIdx.z = t / (blockDim.x * blockDim.y);
}

[[noreturn]] void fiber_entry() {
  int me = cur_fiber;
  try {
    cur_launch->run(cur_launch->args);
  } catch (trap_exc &) {
    block_trapped = true;
  }
  fibers[me].state = T_DONE;
#if defined(__x86_64__)
  vg_emu_switch(&fibers[me].sp, sched_sp);
#else
  swapcontext(&fibers[me].uc, &sched_uc);
#endif
  fatal("a finished fiber was resumed");
}

void ensure_fibers() {
  if (fiber_mem) return;
  size_t per = FIBER_STACK + page_size;
  fiber_mem = (char *)mmap(nullptr, per * MAX_THREADS, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (fiber_mem == MAP_FAILED) fatal("cannot map the fiber stacks: %s", strerror(errno));
  for (int i = 0; i < MAX_THREADS; i++) mprotect(fiber_mem + per * i, page_size, PROT_NONE);
}

bool in_fiber_stack(uintptr_t a, int *which) {
  if (!fiber_mem) return false;
  size_t per = FIBER_STACK + page_size;
  if (a < (uintptr_t)fiber_mem || a >= (uintptr_t)fiber_mem + per * MAX_THREADS) return false;
  size_t off = a - (uintptr_t)fiber_mem;
  *which = (int)(off / per);
  return off % per < page_size;   /* in the guard page */
}

/* starts fiber t (state T_NEW) or resumes it; returns when it waits or finishes */
void resume(int t) {
  fiber &f = fibers[t];
  set_thread_idx((unsigned)t);
  cur_fiber = t;
  if (f.state == T_NEW) {
    char *top = fiber_mem + (FIBER_STACK + page_size) * (size_t)(t + 1);
#if defined(__x86_64__)
    void **sp = (void **)(top - 16);
    sp[0] = (void *)&fiber_entry;   /* return address of the first switch */
    sp[1] = nullptr;
    uint32_t csr[2] = {0, 0};
    asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(csr[0]), "=m"(csr[1]));
    void **fr = sp - 7;   /* rbp rbx r12 r13 r14 r15 and the csr word, below the return address */
    for (int i = 0; i < 7; i++) fr[i] = nullptr;
    memcpy(&fr[0], csr, 8);
    f.sp = fr;
#else
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = top - FIBER_STACK;
    f.uc.uc_stack.ss_size = FIBER_STACK;
    f.uc.uc_link = nullptr;
    makecontext(&f.uc, (void (*)())fiber_entry, 0);
#endif
  }
  f.state = T_RUN;
#if defined(__x86_64__)
  vg_emu_switch(&sched_sp, f.sp);
#else
  swapcontext(&sched_uc, &f.uc);
#endif
  cur_fiber = -1;
}

void yield(int state) {
  int me = cur_fiber;
  fibers[me].state = state;
#if defined(__x86_64__)
  vg_emu_switch(&fibers[me].sp, sched_sp);
#else
  swapcontext(&fibers[me].uc, &sched_uc);
#endif
  /* resumed: the scheduler set threadIdx and cur_fiber */
}

[[noreturn]] void divergent(const char *what) {
  char d[256];
  describe_thread(d, sizeof d);
  fatal("%s: %s reached by a thread of a block whose thread 0 returned without reaching any barrier "
        "(a divergent barrier: every thread of the block must reach it)",
        d, what);
}

/* runs the block whose blockIdx is set: thread 0 on a fiber, then the rest */
void run_block(const vg_emu_launch_t *l) {
  unsigned T = block_threads;
  block_trapped = false;
  fibers[0].state = T_NEW;
  resume(0);
  if (fibers[0].state == T_DONE) {
    /* thread 0 never waited: the others run as plain calls */
    for (unsigned i = 1; i < T && !block_trapped; i++) {
      unsigned t = reverse_order ? T - i : i;
      set_thread_idx(t);
      try {
        l->run(l->args);
      } catch (trap_exc &) {
        block_trapped = true;
      }
    }
    return;
  }
  for (unsigned t = 1; t < T; t++) fibers[t].state = T_NEW;
  for (;;) {
    for (unsigned i = 0; i < T && !block_trapped; i++) {
      unsigned t = reverse_order ? T - 1 - i : i;
      if (fibers[t].state == T_NEW || fibers[t].state == T_RUN) resume((int)t);
    }
    if (block_trapped) return;
    /* release the barriers every remaining thread of the block (or of a warp) reached */
    unsigned nbar = 0, ndone = 0;
    for (unsigned t = 0; t < T; t++) {
      if (fibers[t].state == T_BARRIER) nbar++;
      else if (fibers[t].state == T_DONE) ndone++;
    }
    if (ndone == T) return;
    bool released = false;
    if (nbar && nbar + ndone == T) {
      if (ndone) {
        unsigned t0 = 0;
        while (fibers[t0].state != T_DONE) t0++;
        set_thread_idx(t0);
        char d[256];
        describe_thread(d, sizeof d);
        fatal("%s returned while %u other threads of its block wait at __syncthreads (a divergent barrier)", d, nbar);
      }
      for (unsigned t = 0; t < T; t++) fibers[t].state = T_RUN;
      released = true;
    }
    for (unsigned w = 0; w * 32 < T; w++) {
      unsigned lo = w * 32, hi = std::min(T, lo + 32), nw = 0, nd = 0;
      for (unsigned t = lo; t < hi; t++) {
        if (fibers[t].state == T_WARP) nw++;
        else if (fibers[t].state == T_DONE) nd++;
      }
      if (nw && nw + nd == hi - lo) {
        for (unsigned t = lo; t < hi; t++)
          if (fibers[t].state == T_WARP) fibers[t].state = T_RUN;
        released = true;
      }
    }
    if (!released) {
      unsigned t0 = 0;
      while (t0 < T && fibers[t0].state != T_BARRIER && fibers[t0].state != T_WARP) t0++;
      set_thread_idx(t0);
      char d[256];
      describe_thread(d, sizeof d);
      fatal("%s: deadlock: threads of the block wait at different kinds of barrier (__syncthreads / warp "
            "collectives) that can never complete",
            d);
    }
  }
}

cudaError_t check_config(const vg_emu_launch_t *l) {
  const dim3 &g = l->grid, &b = l->block;
  if (!g.x || !g.y || !g.z || !b.x || !b.y || !b.z) return cudaErrorInvalidConfiguration;
  if (g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) return cudaErrorInvalidConfiguration;
  if (b.x > 1024 || b.y > 1024 || b.z > 64 || (unsigned long long)b.x * b.y * b.z > 1024)
    return cudaErrorInvalidConfiguration;
  int lim = 48 * 1024;
  auto it = func_max_shm.find(l->fn);
  if (it != func_max_shm.end()) lim = it->second;
  if (l->shm > (size_t)lim) return cudaErrorInvalidValue;
  return cudaSuccess;
}

void check_pointers(const vg_emu_launch_t *l) {
  for (int i = 0; i < l->nptr; i++) {
    const void *p = l->ptrs[i];
    if (p && !find_alloc(p, 0, nullptr))
      fatal("kernel %s: argument %d is %p, not device memory (a host pointer or a freed block): a GPU would "
            "fault on it",
            l->name, l->ptr_pos[i] + 1, p);
  }
}

void run_launch(const vg_emu_launch_t *l) {
  if (sticky_error != cudaSuccess) return;
  ensure_fibers();
  const vg_emu_launch_t *saved = cur_launch;
  cur_launch = l;
  in_kernel = true;
  gridDim = l->grid;
  blockDim = l->block;
  block_threads = l->block.x * l->block.y * l->block.z;
  bool trapped = false;
  for (unsigned bz = 0; bz < l->grid.z && !trapped; bz++)
    for (unsigned by = 0; by < l->grid.y && !trapped; by++)
      for (unsigned bx = 0; bx < l->grid.x && !trapped; bx++) {
        blockIdx.x = reverse_order ? l->grid.x - 1 - bx : bx;
        blockIdx.y = reverse_order ? l->grid.y - 1 - by : by;
        blockIdx.z = reverse_order ? l->grid.z - 1 - bz : bz;
        if (poison && l->shm) memset(s, 0xff, l->shm);   /* shared memory starts undefined */
        run_block(l);
        trapped = block_trapped;
      }
  in_kernel = false;
  cur_launch = saved;
  if (trapped) sticky_error = cudaErrorLaunchFailure;
}

/* ---- SIGSEGV / SIGBUS: name the kernel and the allocation ---- */
struct sigaction old_segv, old_bus;
thread_local bool altstack_set;

/* the fault handler runs on an alternate stack (a fiber's stack overflow faults too) */
void thread_init() {
  if (altstack_set) return;
  altstack_set = true;
  stack_t old;
  if (sigaltstack(nullptr, &old) == 0 && !(old.ss_flags & SS_DISABLE)) return;
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_size = 64 * 1024;
  ss.ss_sp = malloc(ss.ss_size);   /* kept for the thread's life */
  if (ss.ss_sp) sigaltstack(&ss, nullptr);
}

void fault_handler(int sig, siginfo_t *si, void *uc) {
  uintptr_t a = (uintptr_t)si->si_addr;
  char msg[1024];
  int n = 0;
  int which;
  if (in_fiber_stack(a, &which))
    n = snprintf(msg, sizeof msg, "vigil-emu: stack overflow of fiber %d (64 KiB stacks)", which);
  else if (in_kernel || cur_launch)
    n = snprintf(msg, sizeof msg, "vigil-emu: illegal memory access at %p", (void *)a);
  if (n > 0) {
    if (in_kernel)
      n += snprintf(msg + n, sizeof msg - n, " in kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", kname(), blockIdx.x,
                    blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
    /* the nearest allocation below the address (no locking: we are crashing) */
    auto it = allocs.upper_bound(a);
    if (it != allocs.begin()) {
      --it;
      if (a < (uintptr_t)it->second.map + it->second.maplen)
        n += snprintf(msg + n, sizeof msg - n, " (%+lld bytes from the start of the %zu-byte device allocation %p)",
                      (long long)(a - it->first), it->second.size, (void *)it->first);
    }
    n += snprintf(msg + n, sizeof msg - n, "\n");
    if (write(2, msg, (size_t)n) < 0) {}
  }
  struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
  sigaction(sig, old, nullptr);   /* re-fault with the previous handler */
  (void)uc;
}

/* ---- one-time setup ---- */
std::once_flag init_once;
void init() {
  std::call_once(init_once, [] {
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    const char *p = getenv("VIGIL_EMU_POISON");
    poison = !(p && p[0] == '0');
    const char *ea = getenv("VIGIL_EMU_EAGER");
    eager = ea && ea[0] == '1';
    const char *r = getenv("VIGIL_EMU_REVERSE");
    reverse_order = r && r[0] == '1';
    const char *tr = getenv("VIGIL_EMU_TRACE");
    trace = tr && tr[0] == '1';
    long pages = sysconf(_SC_PHYS_PAGES);
    size_t phys = pages > 0 ? (size_t)pages * page_size : ((size_t)16 << 30);
    mem_total = std::min((size_t)16 << 30, phys / 2);
    if (const char *m = getenv("VIGIL_EMU_MEM")) mem_total = (size_t)strtoull(m, nullptr, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
  });
}

const char *error_name(cudaError_t e) {
  switch (e) {
#define E(x) case x: return #x;
    E(cudaSuccess) E(cudaErrorInvalidValue) E(cudaErrorMemoryAllocation) E(cudaErrorInitializationError)
    E(cudaErrorCudartUnloading) E(cudaErrorInvalidConfiguration) E(cudaErrorInvalidPitchValue)
    E(cudaErrorInvalidSymbol) E(cudaErrorInvalidHostPointer) E(cudaErrorInvalidDevicePointer)
    E(cudaErrorInvalidMemcpyDirection) E(cudaErrorNotYetImplemented) E(cudaErrorInvalidDeviceFunction)
    E(cudaErrorNoDevice) E(cudaErrorInvalidDevice) E(cudaErrorInvalidKernelImage) E(cudaErrorNoKernelImageForDevice) E(cudaErrorInvalidResourceHandle)
    E(cudaErrorIllegalState) E(cudaErrorNotReady) E(cudaErrorIllegalAddress) E(cudaErrorLaunchOutOfResources)
    E(cudaErrorLaunchTimeout) E(cudaErrorAssert) E(cudaErrorIllegalInstruction) E(cudaErrorMisalignedAddress)
    E(cudaErrorLaunchFailure) E(cudaErrorNotPermitted) E(cudaErrorNotSupported)
    E(cudaErrorStreamCaptureUnsupported) E(cudaErrorStreamCaptureInvalidated) E(cudaErrorStreamCaptureMerge)
    E(cudaErrorStreamCaptureUnmatched) E(cudaErrorStreamCaptureUnjoined) E(cudaErrorStreamCaptureIsolation)
    E(cudaErrorStreamCaptureImplicit) E(cudaErrorCapturedEvent) E(cudaErrorStreamCaptureWrongThread)
    E(cudaErrorGraphExecUpdateFailure) E(cudaErrorUnknown)
#undef E
  }
  return "cudaErrorUnknown";
}

const char *error_string(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureUnjoined: return "capturing stream has unjoined work";
    case cudaErrorStreamCaptureIsolation: return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    default: return "unknown error";
  }
}

cudaError_t ret(cudaError_t e) { return set_error(e); }
}  // namespace

/* ---- kernel launch ---- */
cudaError_t vg_emu_launch(vg_emu_launch_t *l) {
  init();
  thread_init();
  guard g(g_lock);
  std::shared_ptr<void> args(l->args, l->free_args);
  cudaError_t e = check_config(l);
  if (e != cudaSuccess) return ret(e);
  if (sticky_error != cudaSuccess) return ret(sticky_error);
  if (in_kernel) fatal("kernel %s launched from device code (dynamic parallelism is not emulated)", l->name);
  check_pointers(l);
  if (trace)
    fprintf(stderr, "vigil-emu trace: kernel %s grid (%u,%u,%u) block (%u,%u,%u) shm %zu\n", l->name, l->grid.x, l->grid.y,
            l->grid.z, l->block.x, l->block.y, l->block.z, l->shm);
  /* the recorded closure owns a copy of the launch and the arguments */
  vg_emu_launch_t rec = *l;
  rec.ptrs = nullptr;
  rec.ptr_pos = nullptr;
  rec.nptr = 0;
  e = submit(l->stream, [rec, args]() mutable {
    rec.args = args.get();
    run_launch(&rec);
  });
  return ret(e);
}

void __trap(void) {
  char d[256];
  describe_thread(d, sizeof d);
  fprintf(stderr, "vigil-emu: __trap() in %s\n", d);
  if (cur_fiber < 0 && !in_kernel) fatal("__trap() outside a kernel");
  throw trap_exc();
}

void vg_emu_syncthreads(void) {
  if (!in_kernel) fatal("__syncthreads() outside a kernel");
  if (cur_fiber < 0) divergent("__syncthreads()");
  yield(T_BARRIER);
}

static unsigned linear_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

int vg_emu_syncthreads_reduce(int pred, int how) {
  if (!in_kernel) fatal("__syncthreads_*() outside a kernel");
  if (cur_fiber < 0) divergent("__syncthreads_count/and/or()");
  sync_slots[linear_tid()] = pred != 0;
  yield(T_BARRIER);
  int cnt = 0;
  for (unsigned t = 0; t < block_threads; t++)
    if (fibers[t].state != T_DONE) cnt += sync_slots[t];
  unsigned alive = 0;
  for (unsigned t = 0; t < block_threads; t++) alive += fibers[t].state != T_DONE;
  yield(T_BARRIER);   /* nobody overwrites a slot before everyone read */
  return how == 0 ? cnt : (how == 1 ? cnt == (int)alive : cnt != 0);
}
void vg_emu_syncwarp(void) {
  if (!in_kernel) fatal("__syncwarp() outside a kernel");
  if (cur_fiber < 0) divergent("__syncwarp()");
  yield(T_WARP);
}

unsigned long long vg_emu_warp_exchange(unsigned long long v, int arg, int mode, int width) {
  if (!in_kernel) fatal("warp shuffle outside a kernel");
  if (cur_fiber < 0) divergent("a warp shuffle");
  unsigned t = linear_tid(), lane = t & 31, base = t - lane;
  if (width <= 0 || width > 32 || (width & (width - 1))) width = 32;
  warp_slots[t] = v;
  yield(T_WARP);
  unsigned seg = lane & ~(unsigned)(width - 1), src = lane;
  switch (mode) {
    case VG_EMU_SHFL_IDX: src = seg + ((unsigned)arg & (unsigned)(width - 1)); break;
    case VG_EMU_SHFL_UP: src = (lane - seg) >= (unsigned)arg ? lane - (unsigned)arg : lane; break;
    case VG_EMU_SHFL_DOWN: src = (lane - seg) + (unsigned)arg < (unsigned)width ? lane + (unsigned)arg : lane; break;
    default: src = lane ^ (unsigned)arg; if ((src & ~(unsigned)(width - 1)) != seg) src = lane; break;
  }
  unsigned long long r = v;
  if (base + src < block_threads && fibers[base + src].state != T_DONE) r = warp_slots[base + src];
  yield(T_WARP);
  return r;
}

unsigned vg_emu_warp_ballot(int pred) {
  if (!in_kernel) fatal("warp vote outside a kernel");
  if (cur_fiber < 0) divergent("a warp vote");
  unsigned t = linear_tid(), base = t & ~31u;
  warp_slots[t] = pred != 0;
  yield(T_WARP);
  unsigned m = 0;
  for (unsigned l = 0; l < 32 && base + l < block_threads; l++)
    if (fibers[base + l].state != T_DONE && warp_slots[base + l]) m |= 1u << l;
  yield(T_WARP);
  return m;
}

long long clock64(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* ---- device management ---- */
cudaError_t cudaGetDeviceCount(int *count) {
  init();
  if (!count) return ret(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int *device) {
  if (!device) return ret(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : ret(cudaErrorInvalidDevice); }
/* the emulated compute capability: 9.0, or VIGIL_EMU_CC=MAJOR.MINOR */
static void emu_cc(int *major, int *minor) {
  *major = 9;
  *minor = 0;
  int a = 0, b = 0;
  const char *cc = getenv("VIGIL_EMU_CC");
  if (cc && sscanf(cc, "%d.%d", &a, &b) == 2 && a > 0 && a < 100 && b >= 0 && b < 10) { *major = a; *minor = b; }
}
cudaError_t cudaDriverGetVersion(int *version) {
  if (!version) return ret(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *version) {
  if (!version) return ret(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func) {
  if (!attr || !func) return ret(cudaErrorInvalidValue);
  const char *ni = getenv("VIGIL_EMU_NO_IMAGE");
  if (ni && ni[0] == '1') return ret(cudaErrorNoKernelImageForDevice);
  int major, minor;
  emu_cc(&major, &minor);
  memset(attr, 0, sizeof *attr);
  attr->maxThreadsPerBlock = 1024;
  attr->ptxVersion = attr->binaryVersion = 10 * major + minor;
  attr->maxDynamicSharedSizeBytes = 48 * 1024;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
  init();
  if (!p) return ret(cudaErrorInvalidValue);
  if (device != 0) return ret(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "vigil-emu (host emulation)");
  p->totalGlobalMem = mem_total;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = VG_EMU_MAX_SHM;
  p->sharedMemPerMultiprocessor = 228 * 1024;
  p->regsPerBlock = p->regsPerMultiprocessor = 65536;
  p->warpSize = 32;
  p->memPitch = (size_t)1 << 31;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->totalConstMem = 65536;
  emu_cc(&p->major, &p->minor);
  p->textureAlignment = 512;
  p->multiProcessorCount = 132;
  p->canMapHostMemory = 1;
  p->concurrentKernels = 1;
  p->unifiedAddressing = 1;
  p->memoryBusWidth = 5120;
  p->l2CacheSize = 50 << 20;
  p->maxThreadsPerMultiProcessor = 2048;
  p->managedMemory = 1;
  p->cooperativeLaunch = 1;
  p->maxBlocksPerMultiProcessor = 32;
  p->reservedSharedMemPerBlock = 1024;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
  if (!value) return ret(cudaErrorInvalidValue);
  if (device != 0) return ret(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMaxBlockDimX: *value = 1024; return cudaSuccess;
    case cudaDevAttrMaxGridDimX: *value = 0x7fffffff; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = 132; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: { int b; emu_cc(value, &b); return cudaSuccess; }
    case cudaDevAttrComputeCapabilityMinor: { int a; emu_cc(&a, value); return cudaSuccess; }
    case cudaDevAttrClockRate: *value = 1755000; return cudaSuccess;       /* kHz, as an H100 SXM */
    case cudaDevAttrMemoryClockRate: *value = 2619000; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = VG_EMU_MAX_SHM; return cudaSuccess;
  }
  return ret(cudaErrorInvalidValue);
}
cudaError_t cudaDeviceSynchronize(void) {
  init();
  guard g(g_lock);
  return ret(sync_call(nullptr, true));
}
cudaError_t cudaDeviceReset(void) {
  guard g(g_lock);
  sticky_error = cudaSuccess;
  last_error = cudaSuccess;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total) {
  init();
  guard g(g_lock);
  if (!free_b || !total) return ret(cudaErrorInvalidValue);
  *total = mem_total;
  *free_b = mem_total > mem_used ? mem_total - mem_used : 0;
  return sticky_error;
}
cudaError_t cudaGetLastError(void) {
  cudaError_t e = sticky_error != cudaSuccess ? sticky_error : last_error;
  last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return sticky_error != cudaSuccess ? sticky_error : last_error; }
const char *cudaGetErrorString(cudaError_t e) { return error_string(e); }
const char *cudaGetErrorName(cudaError_t e) { return error_name(e); }

/* ---- memory ---- */
cudaError_t cudaMalloc(void **p, size_t size) {
  init();
  guard g(g_lock);
  if (!p) return ret(cudaErrorInvalidValue);
  *p = nullptr;
  if (sticky_error != cudaSuccess) return ret(sticky_error);
  cudaError_t e = unsafe_call();
  if (e != cudaSuccess) return ret(e);
  if (size == 0) return cudaSuccess;
  size_t span = (size + 255) & ~(size_t)255;
  if (span < size || mem_used + span > mem_total) return ret(cudaErrorMemoryAllocation);
  void *q = map_alloc(size, false);
  if (!q) return ret(cudaErrorMemoryAllocation);
  mem_used += span;
  *p = q;
  return cudaSuccess;
}

static cudaError_t free_any(void *p, bool pinned) {
  init();
  guard g(g_lock);
  if (!p) return cudaSuccess;
  cudaError_t e = unsafe_call();
  if (e != cudaSuccess) return ret(e);
  auto it = allocs.find((uintptr_t)p);
  if (it == allocs.end() || it->second.pinned != pinned)
    return ret(pinned ? cudaErrorInvalidValue : cudaErrorInvalidDevicePointer);
  flush();   /* cudaFree / cudaFreeHost synchronize the device */
  if (!pinned) mem_used -= it->second.span;
  munmap(it->second.map, it->second.maplen);
  allocs.erase(it);
  return sticky_error;
}
cudaError_t cudaFree(void *p) { return free_any(p, false); }
cudaError_t cudaFreeHost(void *p) { return free_any(p, true); }

cudaError_t cudaMallocHost(void **p, size_t size) {
  init();
  guard g(g_lock);
  if (!p) return ret(cudaErrorInvalidValue);
  *p = nullptr;
  cudaError_t e = unsafe_call();
  if (e != cudaSuccess) return ret(e);
  if (size == 0) return cudaSuccess;
  void *q = map_alloc(size, true);
  if (!q) return ret(cudaErrorMemoryAllocation);
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int) { return cudaMallocHost(p, size); }

static cudaError_t check_copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
  bool dd = is_device(dst, n), sd = is_device(src, n);
  switch (kind) {
    case cudaMemcpyHostToHost: if (is_device(dst, 1) || is_device(src, 1)) return cudaErrorInvalidValue; break;
    case cudaMemcpyHostToDevice: if (!dd || is_device(src, 1)) return cudaErrorInvalidValue; break;
    case cudaMemcpyDeviceToHost: if (!sd || is_device(dst, 1)) return cudaErrorInvalidValue; break;
    case cudaMemcpyDeviceToDevice: if (!dd || !sd) return cudaErrorInvalidValue; break;
    case cudaMemcpyDefault:
      /* inferred from the pointers: a pointer into a device block must hold the range */
      if ((is_device(dst, 1) && !dd) || (is_device(src, 1) && !sd)) return cudaErrorInvalidValue;
      break;
    default: return cudaErrorInvalidMemcpyDirection;
  }
  return cudaSuccess;
}

static cudaError_t memcpy_impl(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s, bool sync) {
  init();
  guard g(g_lock);
  if (sticky_error != cudaSuccess) return ret(sticky_error);
  if (n == 0) return cudaSuccess;
  cudaError_t e = check_copy(dst, src, n, kind);
  if (e != cudaSuccess) {
    fprintf(stderr, "vigil-emu: cudaMemcpy%s(%p, %p, %zu, kind %d): %s\n", sync ? "" : "Async", dst, src, n, (int)kind,
            "a pointer is not in memory of the side the copy kind names (or the range overruns its allocation)");
    return ret(e);
  }
  if (sync) {
    e = unsafe_call();
    if (e == cudaSuccess) e = sync_call(nullptr, false);
    if (e != cudaSuccess) return ret(e);
    e = submit(nullptr, [=] { memmove(dst, src, n); });
    flush();
    return ret(e != cudaSuccess ? e : sticky_error);
  }
  if (!eager && valid_stream(s) && !capture_of(s)) {
    /* pageable host memory: a copy to it returns once done; a copy from it is staged
     * before the call returns (the caller may reuse the buffer), as the CUDA runtime */
    if (!is_accessible(dst, 1)) {
      e = sync_call(s, false);
      if (e != cudaSuccess) return ret(e);
      memmove(dst, src, n);
      return sticky_error;
    }
    if (!is_accessible(src, 1)) {
      std::shared_ptr<char> st((char *)malloc(n), free);
      if (!st) return ret(cudaErrorMemoryAllocation);
      memcpy(st.get(), src, n);
      return ret(submit(s, [=] { memmove(dst, st.get(), n); }));
    }
  }
  return ret(submit(s, [=] { memmove(dst, src, n); }));
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
  return memcpy_impl(dst, src, n, kind, nullptr, true);
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) {
  return memcpy_impl(dst, src, n, kind, s, false);
}

static cudaError_t memset_impl(void *p, int v, size_t n, cudaStream_t s, bool sync) {
  init();
  guard g(g_lock);
  if (sticky_error != cudaSuccess) return ret(sticky_error);
  if (n == 0) return cudaSuccess;
  if (!is_device(p, n)) {
    fprintf(stderr, "vigil-emu: cudaMemset%s(%p, %d, %zu): not (inside) a device allocation\n", sync ? "" : "Async", p,
            v, n);
    return ret(cudaErrorInvalidValue);
  }
  if (sync) {
    cudaError_t e = unsafe_call();
    if (e == cudaSuccess) e = sync_call(nullptr, false);
    if (e != cudaSuccess) return ret(e);
    e = submit(nullptr, [=] { memset(p, v, n); });
    flush();
    return ret(e != cudaSuccess ? e : sticky_error);
  }
  return ret(submit(s, [=] { memset(p, v, n); }));
}
cudaError_t cudaMemset(void *p, int v, size_t n) { return memset_impl(p, v, n, nullptr, true); }
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) { return memset_impl(p, v, n, s, false); }

/* ---- streams ---- */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *ps, unsigned int flags) {
  init();
  guard g(g_lock);
  if (!ps || (flags & ~1u)) return ret(cudaErrorInvalidValue);
  if (sticky_error != cudaSuccess) return ret(sticky_error);
  CUstream_st *s = new CUstream_st{flags, nullptr, 0, 0};
  streams.insert(s);
  *ps = s;
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *ps) { return cudaStreamCreateWithFlags(ps, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  guard g(g_lock);
  if (!s || !streams.count(s)) return ret(cudaErrorInvalidResourceHandle);
  if (s->cap) return ret(cudaErrorStreamCaptureUnsupported);
  streams.erase(s);
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  init();
  guard g(g_lock);
  return ret(sync_call(s, false));
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
  guard g(g_lock);
  if (!valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
  if (capture_t *c = capture_of(s)) {
    invalidate(c);
    return ret(cudaErrorStreamCaptureUnsupported);
  }
  flush();   /* "finished": the queued work runs now */
  return sticky_error;
}
/* Outside a capture everything already runs in submission order, so a wait is a no-op.
 * Waiting on an event recorded in a capture is a cross-stream dependency, as the real
 * runtime: a stream that is not capturing joins that capture (its work is recorded into
 * the same graph: the fork); the origin stream waiting on an event recorded on a joined
 * stream joins that stream's work back (cudaStreamEndCapture fails with
 * cudaErrorStreamCaptureUnjoined while a joined stream has work not waited for). */
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
  guard g(g_lock);
  if (!valid_stream(s) || !e || !events.count(e)) return ret(cudaErrorInvalidResourceHandle);
  capture_t *c = e->cap;   /* cleared when its capture ends */
  if (!c) return sticky_error;
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) {
    invalidate(c);
    return ret(cudaErrorStreamCaptureImplicit);
  }
  if (!s->cap) {   /* fork: s joins the capture */
    s->cap = c;
    s->cap_work = s->cap_joined = 0;
    c->joined.push_back(s);
  } else if (s->cap != c) {
    invalidate(c);
    return ret(cudaErrorStreamCaptureIsolation);
  }
  if (e->cap_src && e->cap_src != s && e->cap_work > e->cap_src->cap_joined && s == c->stream)
    e->cap_src->cap_joined = e->cap_work;   /* join: the origin waits for that stream's work */
  return sticky_error;
}

/* ---- events (timestamps from CLOCK_MONOTONIC when the work before them ran) ---- */
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *pe, unsigned int flags) {
  init();
  guard g(g_lock);
  if (!pe || (flags & ~7u)) return ret(cudaErrorInvalidValue);
  CUevent_st *e = new CUevent_st{flags, false, false, 0, nullptr, nullptr, 0};
  events.insert(e);
  *pe = e;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *pe) { return cudaEventCreateWithFlags(pe, cudaEventDefault); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  guard g(g_lock);
  if (!e || !events.count(e)) return ret(cudaErrorInvalidResourceHandle);
  capture_t *c = capture_of(s);
  if (!c) e->pending = true;
  e->cap = c;
  e->cap_src = c && s != c->stream ? s : nullptr;
  e->cap_work = c && s != c->stream ? s->cap_work + 1 : 0;   /* the record node included */
  return ret(submit(s, [e] {
    e->recorded = true;
    e->pending = false;
    e->t_ms = now_ms();
  }));
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  guard g(g_lock);
  if (!e || !events.count(e)) return ret(cudaErrorInvalidResourceHandle);
  flush();   /* "complete": the queued work runs now */
  return sticky_error;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  guard g(g_lock);
  if (!e || !events.count(e)) return ret(cudaErrorInvalidResourceHandle);
  if (e->pending) {
    cudaError_t x = unsafe_call();
    if (x != cudaSuccess) return ret(x);
    flush();
  }
  return sticky_error;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  guard g(g_lock);
  if (!ms) return ret(cudaErrorInvalidValue);
  if (!a || !b || !events.count(a) || !events.count(b)) return ret(cudaErrorInvalidResourceHandle);
  if ((a->flags | b->flags) & cudaEventDisableTiming) return ret(cudaErrorInvalidResourceHandle);
  if (a->pending || b->pending) return ret(cudaErrorNotReady);
  if (!a->recorded || !b->recorded) return ret(cudaErrorInvalidResourceHandle);
  *ms = (float)(b->t_ms - a->t_ms);
  return sticky_error;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  guard g(g_lock);
  if (!e || !events.count(e)) return ret(cudaErrorInvalidResourceHandle);
  events.erase(e);
  delete e;
  return cudaSuccess;
}

/* ---- stream capture and graphs ---- */
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode) {
  init();
  guard g(g_lock);
  if (s == nullptr || s == cudaStreamLegacy) return ret(cudaErrorStreamCaptureUnsupported);
  if (!valid_stream(s) || s == cudaStreamPerThread) return ret(cudaErrorInvalidResourceHandle);
  if ((unsigned)mode > 2) return ret(cudaErrorInvalidValue);
  if (s->cap) return ret(cudaErrorIllegalState);
  capture_t *c = new capture_t{s, mode, pthread_self(), false, new CUgraph_st};
  s->cap = c;
  captures.push_back(c);
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *pg) {
  guard g(g_lock);
  if (!pg) return ret(cudaErrorInvalidValue);
  *pg = nullptr;
  if (!valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
  capture_t *c = capture_of(s);
  if (!c) return ret(cudaErrorIllegalState);
  if (c->mode != cudaStreamCaptureModeRelaxed && !pthread_equal(c->thread, pthread_self()))
    return ret(cudaErrorStreamCaptureWrongThread);
  s->cap = nullptr;
  captures.erase(std::find(captures.begin(), captures.end(), c));
  for (CUevent_st *ev : events)
    if (ev->cap == c) ev->cap = nullptr, ev->cap_src = nullptr;
  bool unjoined = false;
  for (CUstream_st *j : c->joined) {
    if (j->cap_work > j->cap_joined) unjoined = true;
    j->cap = nullptr;
  }
  bool bad = c->invalidated || unjoined;
  CUgraph_st *gr = c->graph;
  delete c;
  if (bad) {
    delete gr;
    return ret(unjoined ? cudaErrorStreamCaptureUnjoined : cudaErrorStreamCaptureInvalidated);
  }
  graphs.insert(gr);
  *pg = gr;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *st) {
  guard g(g_lock);
  if (!st) return ret(cudaErrorInvalidValue);
  if (!valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
  if (s == nullptr || s == cudaStreamLegacy) {
    /* querying the legacy stream while a blocking stream captures is itself an error */
    for (capture_t *c : captures)
      if (!(c->stream->flags & cudaStreamNonBlocking)) return ret(cudaErrorStreamCaptureImplicit);
    *st = cudaStreamCaptureStatusNone;
    return cudaSuccess;
  }
  capture_t *c = capture_of(s);
  *st = !c ? cudaStreamCaptureStatusNone : (c->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive);
  return cudaSuccess;
}
cudaError_t cudaThreadExchangeStreamCaptureMode(enum cudaStreamCaptureMode *mode) {
  if (!mode || (unsigned)*mode > 2) return ret(cudaErrorInvalidValue);
  cudaStreamCaptureMode old = thread_mode;
  thread_mode = *mode;
  *mode = old;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *pe, cudaGraph_t gr, unsigned long long flags) {
  guard g(g_lock);
  if (!pe) return ret(cudaErrorInvalidValue);
  *pe = nullptr;
  if (!gr || !graphs.count(gr)) return ret(cudaErrorInvalidValue);
  if (flags & ~(unsigned long long)0xf) return ret(cudaErrorInvalidValue);
  CUgraphExec_st *x = new CUgraphExec_st{gr->nodes};
  graph_execs.insert(x);
  *pe = x;
  return sticky_error;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s) {
  init();
  guard g(g_lock);
  if (!x || !graph_execs.count(x)) return ret(cudaErrorInvalidResourceHandle);
  if (sticky_error != cudaSuccess) return ret(sticky_error);
  std::vector<std::shared_ptr<std::function<void()>>> nodes = x->nodes;
  return ret(submit(s, [nodes] {
    bool was = graph_running;
    graph_running = true;
    for (auto &n : nodes) {
      if (sticky_error != cudaSuccess) break;
      (*n)();
    }
    graph_running = was;
  }));
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) {
  guard g(g_lock);
  if (!x || !graph_execs.count(x)) return ret(cudaErrorInvalidResourceHandle);
  graph_execs.erase(x);
  delete x;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t gr) {
  guard g(g_lock);
  if (!gr || !graphs.count(gr)) return ret(cudaErrorInvalidResourceHandle);
  graphs.erase(gr);
  delete gr;
  return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t gr, void **nodes, size_t *n) {
  guard g(g_lock);
  if (!gr || !graphs.count(gr) || !n) return ret(cudaErrorInvalidValue);
  if (nodes)
    for (size_t i = 0; i < *n && i < gr->nodes.size(); i++) nodes[i] = gr->nodes[i].get();
  *n = gr->nodes.size();
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value) {
  guard g(g_lock);
  if (!func) return ret(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > VG_EMU_MAX_SHM) return ret(cudaErrorInvalidValue);
    func_max_shm[func] = value;
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  return ret(cudaErrorInvalidValue);
}

/* ---- cuBLAS ---- */
namespace {
/* the backend's own f16 conversions (tensor/cuda/vmath.cuh), as __half2float / __float2half_rn */
inline float half_to_float(uint16_t h) { return vg_d_half_to_float(h); }
inline uint16_t float_to_half(float f) { return vg_d_float_to_half(f); }
inline float bf16_to_float(uint16_t h) { return vg_d_bf16_to_float(h); }
inline uint16_t float_to_bf16(float f) { return vg_d_float_to_bf16(f); }
inline float round_tf32(float f) {   /* 10 mantissa bits, nearest even */
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7f800000u) == 0x7f800000u) return f;
  x += 0xfff + ((x >> 13) & 1);
  return __uint_as_float(x & 0xffffe000u);
}

enum { IN_F32, IN_F16, IN_BF16 };
enum { RND_NONE, RND_F16, RND_TF32, RND_BF16 };
inline float load_elem(const void *p, size_t i, int dt) {
  if (dt == IN_F32) return ((const float *)p)[i];
  if (dt == IN_F16) return half_to_float(((const uint16_t *)p)[i]);
  return bf16_to_float(((const uint16_t *)p)[i]);
}
inline float rnd(float v, int r) {
  switch (r) {
    case RND_F16: return half_to_float(float_to_half(v));
    case RND_TF32: return round_tf32(v);
    case RND_BF16: return bf16_to_float(float_to_bf16(v));
  }
  return v;
}

/* The GEMM packs op(A) into panels of 16 rows (p-major: panel[p*16 + i]) and op(B) into
 * panels of 6 columns (panel[p*6 + j]), zero-padded at the edges, and multiplies each
 * pair of panels into a 16 x 6 tile held in vector registers; every output element is
 * summed over p = 0..k-1 in order, in f32. */
enum { GEMM_MR = 16, GEMM_NR = 6 };
typedef float vg_v8 __attribute__((vector_size(32)));
#if defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void gemm_tile(const float *__restrict a, const float *__restrict b, int k, float (*__restrict acc)[GEMM_MR]) {
  vg_v8 c[GEMM_NR][2];
#pragma GCC unroll 6
  for (int q = 0; q < GEMM_NR; q++) c[q][0] = c[q][1] = vg_v8{0, 0, 0, 0, 0, 0, 0, 0};
  for (int p = 0; p < k; p++, a += GEMM_MR, b += GEMM_NR) {
    vg_v8 a0, a1;
    memcpy(&a0, a, 32);
    memcpy(&a1, a + 8, 32);
#pragma GCC unroll 6
    for (int q = 0; q < GEMM_NR; q++) {
      float w = b[q];
      vg_v8 wv = {w, w, w, w, w, w, w, w};
      c[q][0] += a0 * wv;
      c[q][1] += a1 * wv;
    }
  }
#pragma GCC unroll 6
  for (int q = 0; q < GEMM_NR; q++) {
    memcpy(acc[q], &c[q][0], 32);
    memcpy(acc[q] + 8, &c[q][1], 32);
  }
}

/* one column-major GEMM: C = alpha op(A) op(B) + beta C (beta == 0: C is not read) */
void gemm_one(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A, int adt,
              int lda, const void *B, int bdt, int ldb, float beta, void *C, int cdt, int ldc, int rnd_in) {
  static thread_local std::vector<float> ap, bp;
  int mp = (m + GEMM_MR - 1) / GEMM_MR, np = (n + GEMM_NR - 1) / GEMM_NR;
  ap.assign((size_t)mp * GEMM_MR * k, 0.0f);
  bp.assign((size_t)np * GEMM_NR * k, 0.0f);
  for (int i = 0; i < m; i++) {
    float *dst = &ap[(size_t)(i / GEMM_MR) * GEMM_MR * k + i % GEMM_MR];
    for (int p = 0; p < k; p++) {
      size_t at = ta == CUBLAS_OP_N ? (size_t)i + (size_t)p * lda : (size_t)p + (size_t)i * lda;
      dst[(size_t)p * GEMM_MR] = rnd(load_elem(A, at, adt), rnd_in);
    }
  }
  for (int j = 0; j < n; j++) {
    float *dst = &bp[(size_t)(j / GEMM_NR) * GEMM_NR * k + j % GEMM_NR];
    for (int p = 0; p < k; p++) {
      size_t at = tb == CUBLAS_OP_N ? (size_t)p + (size_t)j * ldb : (size_t)j + (size_t)p * ldb;
      dst[(size_t)p * GEMM_NR] = rnd(load_elem(B, at, bdt), rnd_in);
    }
  }
  float acc[GEMM_NR][GEMM_MR];
  for (int ib = 0; ib < mp; ib++) {
    int i0 = ib * GEMM_MR, ni = std::min((int)GEMM_MR, m - i0);
    for (int jb = 0; jb < np; jb++) {
      int j0 = jb * GEMM_NR, nj = std::min((int)GEMM_NR, n - j0);
      gemm_tile(ap.data() + (size_t)ib * GEMM_MR * k, bp.data() + (size_t)jb * GEMM_NR * k, k, acc);
      for (int q = 0; q < nj; q++)
        for (int i = 0; i < ni; i++) {
          size_t at = (size_t)(i0 + i) + (size_t)(j0 + q) * ldc;
          float v = alpha * acc[q][i];
          if (cdt == IN_F32) {
            float *c = (float *)C + at;
            *c = beta == 0.0f ? v : v + beta * *c;
          } else {
            uint16_t *c = (uint16_t *)C + at;
            float r = beta == 0.0f ? v : v + beta * load_elem(C, at, cdt);
            *c = cdt == IN_F16 ? float_to_half(r) : float_to_bf16(r);
          }
        }
    }
  }
}

bool valid_handle(cublasHandle_t h) { return h && handles.count(h); }

/* the last element an operand touches + 1, in elements */
size_t extent(int rows, int cols, int ld, long long stride, int batch) {
  if (rows <= 0 || cols <= 0 || batch <= 0) return 0;
  return (size_t)(cols - 1) * ld + rows + (size_t)(stride > 0 ? stride : 0) * (batch - 1);
}

cublasStatus_t gemm_batched(const char *fn, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                            int k, const float *alpha, const void *A, int adt, int lda, long long sa, const void *B,
                            int bdt, int ldb, long long sb, const float *beta, void *C, int cdt, int ldc, long long sc,
                            int batch, int rnd_in) {
  init();
  guard g(g_lock);
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (trace) fprintf(stderr, "vigil-emu trace: %s m %d n %d k %d batch %d\n", fn, m, n, k, batch);
  if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T && ta != CUBLAS_OP_C) ||
      (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T && tb != CUBLAS_OP_C))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (ta == CUBLAS_OP_C) ta = CUBLAS_OP_T;   /* real data: conjugate transpose = transpose */
  if (tb == CUBLAS_OP_C) tb = CUBLAS_OP_T;
  int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
  int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < std::max(1, arows) || ldb < std::max(1, brows) ||
      ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  if (h->pmode != CUBLAS_POINTER_MODE_HOST) fatal("%s: device pointer mode is not emulated", fn);
  float al = *alpha, be = *beta;
  bool need_ab = k > 0 && al != 0.0f;
  size_t es_a = adt == IN_F32 ? 4 : 2, es_b = bdt == IN_F32 ? 4 : 2, es_c = cdt == IN_F32 ? 4 : 2;
  if (need_ab) {
    if (!is_accessible(A, extent(arows, acols, lda, sa, batch) * es_a))
      fatal("%s: A = %p (%d x %d, lda %d, stride %lld, batch %d) is not inside a device allocation", fn, A, arows,
            acols, lda, sa, batch);
    if (!is_accessible(B, extent(brows, bcols, ldb, sb, batch) * es_b))
      fatal("%s: B = %p (%d x %d, ldb %d, stride %lld, batch %d) is not inside a device allocation", fn, B, brows,
            bcols, ldb, sb, batch);
  }
  if (!is_accessible(C, extent(m, n, ldc, sc, batch) * es_c))
    fatal("%s: C = %p (%d x %d, ldc %d, stride %lld, batch %d) is not inside a device allocation", fn, C, m, n, ldc, sc,
          batch);
  if (sticky_error != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  cudaError_t e = submit(h->stream, [=] {
    for (int b = 0; b < batch; b++) {
      const char *pa = (const char *)A + (size_t)sa * b * es_a, *pb = (const char *)B + (size_t)sb * b * es_b;
      char *pc = (char *)C + (size_t)sc * b * es_c;
      gemm_one(ta, tb, m, n, need_ab ? k : 0, al, pa, adt, lda, pb, bdt, ldb, be, pc, cdt, ldc, rnd_in);
    }
  });
  if (e != cudaSuccess) {
    set_error(e);
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  return CUBLAS_STATUS_SUCCESS;
}

int data_type(cudaDataType t) {
  switch (t) {
    case CUDA_R_32F: return IN_F32;
    case CUDA_R_16F: return IN_F16;
    case CUDA_R_16BF: return IN_BF16;
    default: return -1;
  }
}

/* the GemmEx type combinations of cuBLAS's table for f32 compute; the input rounding
 * the compute type allows (emulated as always taken) */
cublasStatus_t ex_types(cudaDataType at, cudaDataType bt, cudaDataType ct, cublasComputeType_t comp, cublasMath_t math,
                        int *adt, int *bdt, int *cdt, int *rin) {
  *adt = data_type(at);
  *bdt = data_type(bt);
  *cdt = data_type(ct);
  if (*adt < 0 || *bdt < 0 || *cdt < 0 || at != bt) return CUBLAS_STATUS_NOT_SUPPORTED;
  *rin = RND_NONE;
  switch (comp) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
      if (at == CUDA_R_32F && ct != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
      if (at != CUDA_R_32F && ct != at && ct != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
      if (at == CUDA_R_32F && comp == CUBLAS_COMPUTE_32F && (math & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH) *rin = RND_TF32;
      return CUBLAS_STATUS_SUCCESS;
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
      if (at != CUDA_R_32F || ct != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
      *rin = comp == CUBLAS_COMPUTE_32F_FAST_16F ? RND_F16 : (comp == CUBLAS_COMPUTE_32F_FAST_16BF ? RND_BF16 : RND_TF32);
      return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
}
}  // namespace

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
  init();
  guard g(g_lock);
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  cublasContext *c = new cublasContext{nullptr, CUBLAS_DEFAULT_MATH, CUBLAS_POINTER_MODE_HOST};
  handles.insert(c);
  *h = c;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  guard g(g_lock);
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handles.erase(h);
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
  guard g(g_lock);
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid_stream(s)) return CUBLAS_STATUS_INVALID_VALUE;
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream_v2(cublasHandle_t h, cudaStream_t *s) {
  guard g(g_lock);
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!s) return CUBLAS_STATUS_INVALID_VALUE;
  *s = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  guard g(g_lock);
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  unsigned base = (unsigned)mode & 0xf;
  if (base > 3 || ((unsigned)mode & ~0x1fu)) return CUBLAS_STATUS_INVALID_VALUE;
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode) {
  guard g(g_lock);
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = h->math;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t h, cublasPointerMode_t mode) {
  guard g(g_lock);
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_NOT_SUPPORTED;   /* not emulated */
  h->pmode = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t h, cublasPointerMode_t *mode) {
  guard g(g_lock);
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = h->pmode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *, size_t) {
  guard g(g_lock);
  return valid_handle(h) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
const char *cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char *cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }

static int sgemm_rounding(cublasHandle_t h) {
  return valid_handle(h) && (h->math & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH ? RND_TF32 : RND_NONE;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
  return gemm_batched("cublasSgemm", h, ta, tb, m, n, k, alpha, A, IN_F32, lda, 0, B, IN_F32, ldb, 0, beta, C, IN_F32,
                      ldc, 0, 1, sgemm_rounding(h));
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long int sa,
                                         const float *B, int ldb, long long int sb, const float *beta, float *C,
                                         int ldc, long long int sc, int batch) {
  return gemm_batched("cublasSgemmStridedBatched", h, ta, tb, m, n, k, alpha, A, IN_F32, lda, sa, B, IN_F32, ldb, sb,
                      beta, C, IN_F32, ldc, sc, batch, sgemm_rounding(h));
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                            int ldb, const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t comp,
                            cublasGemmAlgo_t) {
  int adt, bdt, cdt, rin;
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  cublasStatus_t st = ex_types(at, bt, ct, comp, h->math, &adt, &bdt, &cdt, &rin);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  return gemm_batched("cublasGemmEx", h, ta, tb, m, n, k, (const float *)alpha, A, adt, lda, 0, B, bdt, ldb, 0,
                      (const float *)beta, C, cdt, ldc, 0, 1, rin);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType at, int lda,
                                          long long int sa, const void *B, cudaDataType bt, int ldb, long long int sb,
                                          const void *beta, void *C, cudaDataType ct, int ldc, long long int sc,
                                          int batch, cublasComputeType_t comp, cublasGemmAlgo_t) {
  int adt, bdt, cdt, rin;
  if (!valid_handle(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  cublasStatus_t st = ex_types(at, bt, ct, comp, h->math, &adt, &bdt, &cdt, &rin);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  return gemm_batched("cublasGemmStridedBatchedEx", h, ta, tb, m, n, k, (const float *)alpha, A, adt, lda, sa, B, bdt,
                      ldb, sb, (const float *)beta, C, cdt, ldc, sc, batch, rin);
}
