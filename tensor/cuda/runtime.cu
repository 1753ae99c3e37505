/* runtime.cu — device init, the caching allocator (with per-graph pools), the stream
 * and cuBLAS handle, the CUDA backend's exec switch (the twin of tensor/cpu/backend.c:
 * every op listed, no default), host <-> device copies, and the public runtime API of
 * tensor.h's device section: synchronize, pinned host memory, allocator statistics,
 * event timers and CUDA graphs (stream capture + replay). */
#include "tensor/cuda/cuda.h"
#include "base/parse.h"
#include <pthread.h>
#include <string.h>

/* ---- state ---- */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int init_state;                 /* 0 untried, 1 ok, -1 failed */
static char init_msg[256];
static cudaStream_t stream;
static cublasHandle_t blas;
static int sync_each;
static bool tf32_on;   /* f32 GEMMs on TF32 tensor cores (VIGIL_TF32=1 / vg_cuda_set_tf32) */

/* ---- capture state ----
 * cap: the graph being captured (NULL when none). While it is set, vg_cuda_alloc takes
 * blocks for cap's pool and vg_cuda_free returns pool blocks to it (see the allocator).
 * Host <-> device copies that would wait for the stream are refused: the first refusal
 * is kept in cap_msg and vg_cuda_graph_end then fails with it. */
typedef struct blk { struct blk *next; void *p; } blk;
#define VG_NBUCKET 48
typedef struct gpool {
  blk *free_lists[VG_NBUCKET];   /* the pool's free blocks (reserved for the graph's replays) */
  size_t bytes_free;
} gpool;
struct vg_cuda_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  gpool pool;
  struct vg_cuda_graph *next_deferred;
  struct vg_cuda_graph *next_all;   /* every graph alive, so exit can release the pools */
};
static vg_cuda_graph *all_graphs;
static vg_cuda_graph *cap;
static vg_cuda_graph *deferred_free;   /* vg_cuda_graph_free called during another capture */
static char cap_msg[512];
static int cap_refused;

/* ---- concurrent branches (vg_cuda_fork / vg_cuda_branch / vg_cuda_join) ----
 * Side streams 1..VG_CU_SIDE, each with its own cuBLAS handle and workspace (concurrent
 * GEMMs must not share one), made at init unless VIGIL_CUDA_BRANCHES=0. Between fork and
 * join the current branch picks the stream ops and GEMMs go to, and freed blocks are held
 * back until the join: a block freed on one stream could otherwise be handed to another
 * stream's work while kernels of the first still use it. */
#define VG_CU_SIDE 3
#define VG_CU_BLAS_WS ((size_t)32 << 20)   /* cuBLAS workspace per handle, as torch's on sm_90 */
static cudaStream_t side[VG_CU_SIDE];
static cublasHandle_t side_blas[VG_CU_SIDE];
static void *blas_ws[VG_CU_SIDE + 1];
static cudaEvent_t fork_ev, join_ev[VG_CU_SIDE];
static bool side_on;      /* side streams made (VIGIL_CUDA_BRANCHES != 0) */
static int cur_branch;    /* 0: the main stream; k: side[k - 1] */
static bool forked;
static unsigned fork_gen;   /* counts forks */
/* A block freed while forked: br = the branch tag it was allocated with when that was
 * this branch during this fork (branch k may reuse it at once: its own stream orders the
 * reuse), else 0 (any branch might still read it: reusable after the join only). */
typedef struct { void *p; int b; struct gpool *pool; int br; } held_blk;
static held_blk *held;
static size_t held_n, held_cap;
/* the tag of the current branch in the current fork (0 when not forked) */
static int branch_tag(void) { return forked ? (int)((fork_gen & 0xffffff) * 8 + (unsigned)cur_branch + 1) : 0; }

cudaStream_t vg_cuda_stream(void) { return cur_branch ? side[cur_branch - 1] : stream; }
cublasHandle_t vg_cuda_blas(void) { return cur_branch ? side_blas[cur_branch - 1] : blas; }
/* no per-launch synchronize while capturing (it would invalidate the capture) */
bool vg_cuda_sync_each(void) { return sync_each != 0 && !cap; }
bool vg_cuda_capturing(void) { return cap != NULL; }

static void capture_refuse(const char *fmt, const char *detail) {
  if (cap_refused) return;
  cap_refused = 1;
  snprintf(cap_msg, sizeof cap_msg, fmt, detail);
}

const char *vg_cublas_error_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "alloc failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "arch mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
  }
  return "unknown cuBLAS status";
}

/* ---- caching allocator ----
 * Blocks of 2^b bytes (b >= 8). free_lists[b] holds cached blocks; live blocks are in
 * an open-addressing table (pointer -> bucket, owning graph pool) so vg_cuda_free knows
 * the size and where the block goes back to.
 *
 * Graph pools: while a graph is captured, an allocation takes a block from that graph's
 * pool (else from the global cache, else cudaMalloc) and the block belongs to the pool
 * from then on: freed (during or after the capture) it goes back to the pool's free
 * lists, never to the global cache, so the addresses baked into the graph are never
 * handed to another tensor while the graph exists. Inside one capture, blocks are
 * reused in stream order exactly as eagerly. vg_cuda_graph_free moves the pool's free
 * blocks to the global cache (still-live ones go there when freed). */
static blk *free_lists[VG_NBUCKET];
static blk *spare_nodes;
typedef struct { void *p; int bucket; gpool *pool; int br; } live_ent;   /* br: see held_blk */
static live_ent *live;
static size_t live_cap, live_n;
static size_t bytes_cached, bytes_live, bytes_graph, peak_live, peak_reserved;
static int64_t n_malloc, n_alloc_calls;

/* pinned host blocks (vg_cuda_host_alloc): the copies check a host pointer against them */
typedef struct { char *p; size_t n; } pinned_ent;
static pinned_ent *pinned;
static size_t pinned_n, pinned_cap;

static size_t hash_ptr(void *p) { return (size_t)(((uintptr_t)p >> 8) * 0x9E3779B97F4A7C15ull); }

static void live_put(void *p, int b, gpool *pool, int br);
static void live_grow(void) {
  live_ent *old = live;
  size_t oc = live_cap;
  live_cap = oc ? oc * 2 : 1024;
  live = (live_ent *)calloc(live_cap, sizeof *live);
  if (!live) VG_ABORT("out of host memory (CUDA allocator table)");
  live_n = 0;
  for (size_t i = 0; i < oc; i++)
    if (old[i].p) live_put(old[i].p, old[i].bucket, old[i].pool, old[i].br);
  free(old);
}

static void live_put(void *p, int b, gpool *pool, int br) {
  if ((live_n + 1) * 2 > live_cap) live_grow();
  size_t m = live_cap - 1, i = hash_ptr(p) & m;
  while (live[i].p) i = (i + 1) & m;
  live[i].p = p;
  live[i].bucket = b;
  live[i].pool = pool;
  live[i].br = br;
  live_n++;
}

static int live_take(void *p, gpool **pool, int *br) {
  if (!live_cap) return -1;
  size_t m = live_cap - 1, i = hash_ptr(p) & m;
  while (live[i].p && live[i].p != p) i = (i + 1) & m;
  if (!live[i].p) return -1;
  int b = live[i].bucket;
  *pool = live[i].pool;
  *br = live[i].br;
  live[i].p = NULL;
  live_n--;
  /* re-insert the rest of the cluster (backward-shift deletion done simply) */
  for (size_t j = (i + 1) & m; live[j].p; j = (j + 1) & m) {
    live_ent e = live[j];
    live[j].p = NULL;
    live_n--;
    live_put(e.p, e.bucket, e.pool, e.br);
  }
  return b;
}

static blk *node_new(void) {
  blk *k = spare_nodes;
  if (k) spare_nodes = k->next;
  else if (!(k = (blk *)malloc(sizeof *k))) VG_ABORT("out of host memory");
  return k;
}

/* pops a block of bucket b from lists (NULL when empty) */
static void *pop_block(blk **lists, int b) {
  blk *k = lists[b];
  if (!k) return NULL;
  lists[b] = k->next;
  void *p = k->p;
  k->next = spare_nodes;
  spare_nodes = k;
  return p;
}

static void push_block(blk **lists, int b, void *p) {
  blk *k = node_new();
  k->p = p;
  k->next = lists[b];
  lists[b] = k;
}

static void release_cached(void) {
  for (int b = 0; b < VG_NBUCKET; b++) {
    void *p;
    while ((p = pop_block(free_lists, b))) cudaFree(p);
  }
  bytes_cached = 0;
}

static void note_reserved(void) {
  size_t r = bytes_live + bytes_cached + bytes_graph;
  if (r > peak_reserved) peak_reserved = r;
}

/* cudaMalloc, allowed during a capture: cudaMalloc is not stream-ordered, so capture
 * treats it as "potentially unsafe"; this thread's mode is relaxed around the call */
static cudaError_t raw_malloc(void **p, size_t n) {
  if (!cap) return cudaMalloc(p, n);
  enum cudaStreamCaptureMode m = cudaStreamCaptureModeRelaxed;
  cudaThreadExchangeStreamCaptureMode(&m);
  cudaError_t e = cudaMalloc(p, n);
  cudaThreadExchangeStreamCaptureMode(&m);
  return e;
}

void *vg_cuda_alloc(size_t n) {
  int b = 8;
  while (b < VG_NBUCKET - 1 && ((size_t)1 << b) < n) b++;
  if (((size_t)1 << b) < n) VG_ABORT("CUDA allocation of %zu bytes is too large", n);
  size_t sz = (size_t)1 << b;
  pthread_mutex_lock(&lock);
  n_alloc_calls++;
  gpool *pool = cap ? &cap->pool : NULL;
  void *p = NULL;
  const int br = branch_tag();
  for (size_t i = 0; forked && i < held_n; i++)   /* this branch's own freed blocks first */
    if (held[i].br == br && held[i].b == b && held[i].pool == pool) {
      p = held[i].p;
      held[i] = held[--held_n];
      bytes_live -= sz;   /* counted live again below */
      break;
    }
  if (p) {
  } else if (pool && (p = pop_block(pool->free_lists, b))) {
    pool->bytes_free -= sz;
    bytes_graph -= sz;
  } else if ((p = pop_block(free_lists, b))) {
    bytes_cached -= sz;
  } else {
    cudaError_t e = raw_malloc(&p, sz);
    if (e != cudaSuccess && !cap) { /* give the cache back to the driver and retry once */
      (void)cudaGetLastError();
      cudaStreamSynchronize(stream);
      release_cached();
      e = cudaMalloc(&p, sz);
    }
    if (e != cudaSuccess) {
      pthread_mutex_unlock(&lock);
      VG_ABORT("%s: cudaMalloc(%zu) failed%s: %s (%zu bytes live, %zu cached)",
               e == cudaErrorMemoryAllocation ? "CUDA out of memory" : "CUDA allocation failed", sz,
               cap ? " during graph capture" : "", cudaGetErrorString(e), bytes_live, bytes_cached);
    }
    n_malloc++;
  }
  live_put(p, b, pool, br);
  bytes_live += sz;
  if (bytes_live > peak_live) peak_live = bytes_live;
  note_reserved();
  pthread_mutex_unlock(&lock);
  return p;
}

void vg_cuda_free(void *p) {
  if (!p) return;
  pthread_mutex_lock(&lock);
  gpool *pool = NULL;
  int br = 0;
  int b = live_take(p, &pool, &br);
  if (b < 0) {
    pthread_mutex_unlock(&lock);
    VG_ABORT("vg_cuda_free of %p: not a block of the CUDA allocator", p);
  }
  /* the stream is in order: work queued before this free finishes before any later
   * kernel that reuses the block (while forked, the join orders it: held until then) */
  size_t sz = (size_t)1 << b;
  if (forked) {
    if (held_n == held_cap) {
      held_cap = held_cap ? 2 * held_cap : 256;
      held = (held_blk *)realloc(held, held_cap * sizeof *held);
      if (!held) VG_ABORT("out of host memory (CUDA allocator)");
    }
    held[held_n++] = (held_blk){p, b, pool, br == branch_tag() ? br : 0};
    pthread_mutex_unlock(&lock);
    return;
  }
  if (pool) {
    push_block(pool->free_lists, b, p);
    pool->bytes_free += sz;
    bytes_graph += sz;
  } else {
    push_block(free_lists, b, p);
    bytes_cached += sz;
  }
  bytes_live -= sz;
  pthread_mutex_unlock(&lock);
}

/* the pool's free blocks to the global cache; live blocks of the pool become global ones
 * (called with the lock held) */
static void pool_release(gpool *pool) {
  for (int b = 0; b < VG_NBUCKET; b++) {
    void *p;
    while ((p = pop_block(pool->free_lists, b))) push_block(free_lists, b, p);
  }
  bytes_graph -= pool->bytes_free;
  bytes_cached += pool->bytes_free;
  pool->bytes_free = 0;
  for (size_t i = 0; i < live_cap; i++)
    if (live[i].p && live[i].pool == pool) live[i].pool = NULL;
}

void vg_cuda_sync(void) {
  if (forked) VG_ABORT("a synchronizing call between vg_cuda_fork and vg_cuda_join (join first)");
  VG_CUDA_CHECK(cudaStreamSynchronize(stream));
}

/* the held blocks back to their free lists (called with the lock held, after the join) */
static void release_held(void) {
  for (size_t i = 0; i < held_n; i++) {
    size_t sz = (size_t)1 << held[i].b;
    if (held[i].pool) {
      push_block(held[i].pool->free_lists, held[i].b, held[i].p);
      held[i].pool->bytes_free += sz;
      bytes_graph += sz;
    } else {
      push_block(free_lists, held[i].b, held[i].p);
      bytes_cached += sz;
    }
    bytes_live -= sz;
  }
  held_n = 0;
}

/* a handle on stream st with its own workspace (set before any capture: cuBLAS must
 * not allocate one while a graph is captured) */
static cublasStatus_t blas_make(cublasHandle_t *h, cudaStream_t st, void **ws) {
  cublasStatus_t e = cublasCreate(h);
  if (e != CUBLAS_STATUS_SUCCESS) return e;
  if (cudaMalloc(ws, VG_CU_BLAS_WS) != cudaSuccess) {
    (void)cudaGetLastError();
    return CUBLAS_STATUS_ALLOC_FAILED;
  }
  if ((e = cublasSetWorkspace(*h, *ws, VG_CU_BLAS_WS)) != CUBLAS_STATUS_SUCCESS) return e;
  if ((e = cublasSetMathMode(*h, tf32_on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS)
    return e;
  return cublasSetStream(*h, st);
}

/* side streams, their handles and the fork/join events; false (all on the main stream)
 * when VIGIL_CUDA_BRANCHES=0 or one of them cannot be made */
static bool side_make(void) {
  if (!vg_env_flag("VIGIL_CUDA_BRANCHES", true)) return false;
  if (cudaEventCreateWithFlags(&fork_ev, cudaEventDisableTiming) != cudaSuccess) return false;
  for (int k = 0; k < VG_CU_SIDE; k++)
    if (cudaStreamCreateWithFlags(&side[k], cudaStreamNonBlocking) != cudaSuccess ||
        cudaEventCreateWithFlags(&join_ev[k], cudaEventDisableTiming) != cudaSuccess ||
        blas_make(&side_blas[k], side[k], &blas_ws[k + 1]) != CUBLAS_STATUS_SUCCESS) {
      (void)cudaGetLastError();
      return false;
    }
  return true;
}

/* at exit: everything back to the driver (live blocks too: heap tensors never freed) */
static void cuda_atexit(void) {
  if (init_state != 1) return;
  if (cap) { /* exiting in the middle of a capture */
    cudaGraph_t g = NULL;
    if (cudaStreamEndCapture(stream, &g) == cudaSuccess && g) cudaGraphDestroy(g);
    (void)cudaGetLastError();
    cap = NULL;
  }
  cudaStreamSynchronize(stream);
  for (vg_cuda_graph *g = all_graphs; g; g = g->next_all) pool_release(&g->pool);
  release_cached();
  for (size_t i = 0; i < live_cap; i++)
    if (live[i].p) cudaFree(live[i].p);
  free(live);
  live = NULL;
  live_cap = live_n = 0;
  for (size_t i = 0; i < pinned_n; i++) cudaFreeHost(pinned[i].p);
  free(pinned);
  pinned = NULL;
  pinned_n = pinned_cap = 0;
  while (spare_nodes) {
    blk *k = spare_nodes;
    spare_nodes = k->next;
    free(k);
  }
  cublasDestroy(blas);
  if (side_on)
    for (int k = 0; k < VG_CU_SIDE; k++) {
      cublasDestroy(side_blas[k]);
      cudaStreamDestroy(side[k]);
      cudaEventDestroy(join_ev[k]);
    }
  if (side_on) cudaEventDestroy(fork_ev);
  for (int k = 0; k <= VG_CU_SIDE; k++)
    if (blas_ws[k]) cudaFree(blas_ws[k]);
  free(held);
  held = NULL;
  held_n = held_cap = 0;
  cudaStreamDestroy(stream);
  init_state = 0;
}

vg_status vg_cuda_init(void) {
  pthread_mutex_lock(&lock);
  if (init_state == 0) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      snprintf(init_msg, sizeof init_msg, "no CUDA device: %s",
               e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found 0 devices");
      (void)cudaGetLastError();
      init_state = -1;
    } else if ((e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)) != cudaSuccess) {
      snprintf(init_msg, sizeof init_msg, "CUDA stream creation failed: %s", cudaGetErrorString(e));
      init_state = -1;
    } else {
      cublasStatus_t s = cublasCreate(&blas);
      if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(init_msg, sizeof init_msg, "cublasCreate failed: %s", vg_cublas_error_name(s));
        init_state = -1;
      } else {
        /* fp32 GEMMs in fp32 (no TF32), so results match the CPU backend; VIGIL_TF32=1
         * (or vg_cuda_set_tf32) opts into TF32 tensor cores, torch's cuDNN default */
        tf32_on = vg_env_flag("VIGIL_TF32", false);
        VG_CUBLAS_CHECK(cublasSetMathMode(blas, tf32_on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        VG_CUBLAS_CHECK(cublasSetStream(blas, stream));
        /* a workspace of our own, so cuBLAS allocates none during a graph capture; when
         * that fails, cuBLAS keeps its default one */
        if (cudaMalloc(&blas_ws[0], VG_CU_BLAS_WS) != cudaSuccess) {
          (void)cudaGetLastError();
          blas_ws[0] = NULL;
        } else if (cublasSetWorkspace(blas, blas_ws[0], VG_CU_BLAS_WS) != CUBLAS_STATUS_SUCCESS) {
          cudaFree(blas_ws[0]);
          blas_ws[0] = NULL;
        }
        side_on = side_make();
        sync_each = vg_env_flag("VIGIL_CUDA_SYNC", false);
        vg_backend_register(VG_CUDA, &vg_cuda_backend);
        atexit(cuda_atexit);
        init_state = 1;
      }
    }
  }
  int st = init_state;
  pthread_mutex_unlock(&lock);
  if (st != 1) return vg_fail(VG_ERR_DEVICE, "cuda: %s", init_msg);
  return VG_OK;
}

/* ---- strided iteration setup (as tensor/cpu/iter.c) ---- */
void vg_cu_iter_init(vg_cu_iter *it, int nop, const vg_tensor *const *ops) {
  VG_ASSERT(nop >= 1 && nop <= VG_CU_MAXOP);
  const vg_tensor *o = ops[0];
  int64_t st[VG_CU_MAXOP][VG_MAX_DIMS];
  for (int k = 0; k < nop; k++) {
    if (k == 0) memcpy(st[0], o->stride, sizeof st[0]);
    else vg_broadcast_strides(ops[k], o->ndim, o->shape, st[k]);
  }
  memset(it, 0, sizeof *it);
  it->nop = nop;
  it->n = vg_numel(o);
  int nd = 0;
  for (int d = 0; d < o->ndim; d++) {
    if (o->shape[d] == 1) continue;
    if (nd > 0) { /* merge into the previous kept dim when every operand allows */
      bool ok = true;
      for (int k = 0; k < nop; k++)
        if (it->stride[k][nd - 1] != st[k][d] * o->shape[d]) ok = false;
      if (ok) {
        it->shape[nd - 1] *= o->shape[d];
        for (int k = 0; k < nop; k++) it->stride[k][nd - 1] = st[k][d];
        continue;
      }
    }
    it->shape[nd] = o->shape[d];
    for (int k = 0; k < nop; k++) it->stride[k][nd] = st[k][d];
    nd++;
  }
  if (nd == 0) {
    it->shape[0] = 1;
    nd = 1;
  }
  it->ndim = nd;
}

const void *vg_cu_contig(const vg_tensor *t, void **tmp) {
  *tmp = NULL;
  if (vg_is_contiguous(t)) return vg_data(t);
  vg_tensor h = *t;
  h.offset = 0;
  vg_contiguous_strides(t->ndim, t->shape, h.stride);
  vg_storage s = *t->storage;
  *tmp = s.data = vg_cuda_alloc((size_t)vg_numel(t) * vg_dtype_size(t->dtype) + 1);
  h.storage = &s;
  vg_cu_copy_dd(&h, t);
  return *tmp;
}

/* ---- host <-> device copies (COPY with one side on the host) ---- */
static vg_tensor host_header(const vg_tensor *like, vg_dtype dt, vg_storage *s, void *data, vg_device dev) {
  vg_tensor h = *like;
  h.dtype = dt;
  h.device = dev;
  h.offset = 0;
  h.flags = 0;
  h.requires_grad = false;
  h.grad = NULL;
  h.node = NULL;
  vg_contiguous_strides(like->ndim, like->shape, h.stride);
  memset(s, 0, sizeof *s);
  s->data = data;
  s->nbytes = (size_t)vg_numel(like) * vg_dtype_size(dt);
  s->device = dev;
  h.storage = s;
  return h;
}

static void cpu_copy(const vg_tensor *out, const vg_tensor *in) {
  const vg_tensor *ins[1] = {in};
  vg_opcall c;
  memset(&c, 0, sizeof c);
  c.op = VG_OP_COPY;
  c.nin = 1;
  c.in = ins;
  c.out[0] = (vg_tensor *)out;
  vg_backend_exec(&vg_cpu_backend, &c);
}

/* is [p, p + n) inside one vg_cuda_host_alloc block? */
static bool is_pinned(const void *p, size_t n) {
  pthread_mutex_lock(&lock);
  bool ok = false;
  for (size_t i = 0; i < pinned_n && !ok; i++)
    ok = (const char *)p >= pinned[i].p && (const char *)p + n <= pinned[i].p + pinned[i].n;
  pthread_mutex_unlock(&lock);
  return ok;
}

/* During a capture a host copy is one graph node (a cudaMemcpyAsync, no wait) when it
 * is a plain contiguous copy, same dtype and shape, from / into pinned memory; anything
 * else is refused (graph_end reports it) and a host destination is zeroed, so code that
 * reads it during the capture sees defined values. */
static const char *const refuse_fmt =
    "vg_cuda_graph: COPY %s cannot be captured: only a contiguous same-dtype copy from / into pinned "
    "memory (vg_cuda_host_alloc + vg_tensor_wrap_host) becomes a graph node; other host copies wait "
    "for the stream (vg_to_device / vg_copy_ / vg_from_host_ with a pageable or strided host tensor, "
    "vg_to_host / vg_item, and the front-ends that read device values on the host: gather, "
    "scatter_add, index_select and index_add check their indices that way, and sort / topk make their "
    "values with gather)";

static void copy_h2d(const vg_tensor *out, const vg_tensor *in) {
  if (forked) VG_ABORT("a host <-> device copy between vg_cuda_fork and vg_cuda_join (copy before or after)");
  int64_t n = vg_numel(out);
  if (n == 0) return;
  size_t es = vg_dtype_size(in->dtype);
  if (cap) {
    if (vg_is_contiguous(in) && vg_same_shape(in, out) && vg_is_contiguous(out) && out->dtype == in->dtype &&
        is_pinned(vg_data(in), (size_t)n * es))
      VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), vg_data(in), (size_t)n * es, cudaMemcpyHostToDevice, stream));
    else capture_refuse(refuse_fmt, "host->device");
    return;
  }
  /* 1. the source as a contiguous host buffer (in's dtype) */
  void *htmp = NULL;
  const void *src;
  vg_storage hs;
  if (vg_is_contiguous(in) && vg_same_shape(in, out)) src = vg_data(in);
  else {
    htmp = malloc((size_t)n * es);
    if (!htmp) VG_ABORT("out of host memory staging a copy to the GPU");
    vg_tensor h = host_header(out, in->dtype, &hs, htmp, VG_CPU);
    cpu_copy(&h, in);
    src = htmp;
  }
  /* 2. upload: straight into out when the layout and dtype match, else via staging */
  if (vg_is_contiguous(out) && out->dtype == in->dtype) {
    VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), src, (size_t)n * es, cudaMemcpyHostToDevice, stream));
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  } else {
    void *d = vg_cuda_alloc((size_t)n * es);
    VG_CUDA_CHECK(cudaMemcpyAsync(d, src, (size_t)n * es, cudaMemcpyHostToDevice, stream));
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
    vg_storage ds;
    vg_tensor dt = host_header(out, in->dtype, &ds, d, VG_CUDA);
    vg_cu_copy_dd(out, &dt);
    vg_cuda_free(d);
  }
  free(htmp);
}

static void copy_d2h(const vg_tensor *out, const vg_tensor *in) {
  if (forked) VG_ABORT("a host <-> device copy between vg_cuda_fork and vg_cuda_join (copy before or after)");
  int64_t n = vg_numel(out);
  if (n == 0) return;
  size_t es = vg_dtype_size(out->dtype);
  if (cap) {
    if (vg_is_contiguous(in) && vg_same_shape(in, out) && vg_is_contiguous(out) && out->dtype == in->dtype &&
        is_pinned(vg_data(out), (size_t)n * es)) {
      VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), vg_data(in), (size_t)n * es, cudaMemcpyDeviceToHost, stream));
    } else {
      capture_refuse(refuse_fmt, "device->host");
      if (vg_is_contiguous(out)) memset(vg_data(out), 0, (size_t)n * es);
    }
    return;
  }
  /* 1. a contiguous device buffer in out's dtype */
  void *dtmp = NULL;
  const void *src;
  if (vg_is_contiguous(in) && vg_same_shape(in, out) && in->dtype == out->dtype) src = vg_data(in);
  else {
    dtmp = vg_cuda_alloc((size_t)n * es);
    vg_storage ds;
    vg_tensor dt = host_header(out, out->dtype, &ds, dtmp, VG_CUDA);
    vg_cu_copy_dd(&dt, in);
    src = dtmp;
  }
  /* 2. download, straight into out when it is contiguous */
  if (vg_is_contiguous(out)) {
    VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), src, (size_t)n * es, cudaMemcpyDeviceToHost, stream));
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  } else {
    void *h = malloc((size_t)n * es);
    if (!h) VG_ABORT("out of host memory staging a copy from the GPU");
    VG_CUDA_CHECK(cudaMemcpyAsync(h, src, (size_t)n * es, cudaMemcpyDeviceToHost, stream));
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
    vg_storage hs;
    vg_tensor ht = host_header(out, out->dtype, &hs, h, VG_CPU);
    cpu_copy(out, &ht);
    free(h);
  }
  vg_cuda_free(dtmp);
}

/* ---- the kernel table: one kernel per op family (checked complete when registered) ---- */
static void cuda_copy(const vg_opcall *c) {
  const vg_tensor *in = c->op == VG_OP_COPY ? c->in[0] : NULL, *out = c->out[0];
  if (in && in->device == VG_CPU && out->device == VG_CPU) cpu_copy(out, in);
  else if (in && in->device == VG_CPU) copy_h2d(out, in);
  else if (in && out->device == VG_CPU) copy_d2h(out, in);
  else vg_cu_eltwise(c);
}

const vg_backend vg_cuda_backend = {
    "cuda",
    {/* VIEW */ NULL, /* COPY */ cuda_copy, /* UNARY */ vg_cu_eltwise, /* BINARY */ vg_cu_eltwise,
     /* WHERE */ vg_cu_eltwise, /* REDUCE */ vg_cu_reduce, /* MATMUL */ vg_cu_matmul, /* CONV */ vg_cu_conv,
     /* POOL */ vg_cu_pool, /* RESAMPLE */ vg_cu_pool, /* LAYOUT */ vg_cu_conv, /* INDEX */ vg_cu_index,
     /* SELECT */ vg_cu_select, /* RANDOM */ vg_cu_random},
    vg_cuda_alloc,
    vg_cuda_free};
static_assert(VG_FAM_COUNT == 14, "the CUDA kernel table lists every op family in order");

/* ---- public runtime API (tensor.h, device section) ---- */
vg_status vg_cuda_set_tf32(bool on) {
  vg_status st = vg_cuda_init();
  if (st != VG_OK) return st;
  pthread_mutex_lock(&lock);
  cublasStatus_t e = cublasSetMathMode(blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  for (int k = 0; side_on && k < VG_CU_SIDE && e == CUBLAS_STATUS_SUCCESS; k++)
    e = cublasSetMathMode(side_blas[k], on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  if (e == CUBLAS_STATUS_SUCCESS) tf32_on = on;
  pthread_mutex_unlock(&lock);
  return e == CUBLAS_STATUS_SUCCESS ? VG_OK : vg_fail(VG_ERR_DEVICE, "cuda: cublasSetMathMode: %s", vg_cublas_error_name(e));
}

bool vg_cuda_tf32(void) { return vg_cuda_init() == VG_OK && tf32_on; }

const char *vg_cuda_device_name(void) {
  static char name[320];   /* cudaDeviceProp.name is 256 */
  if (vg_cuda_init() != VG_OK) return NULL;
  pthread_mutex_lock(&lock);
  if (!name[0]) {
    int dev = 0;
    struct cudaDeviceProp p;
    if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&p, dev) == cudaSuccess)
      snprintf(name, sizeof name, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
               (double)p.totalGlobalMem / 1073741824.0);
    else
      snprintf(name, sizeof name, "unknown CUDA device");
  }
  pthread_mutex_unlock(&lock);
  return name;
}

void vg_cuda_synchronize(void) {
  if (init_state != 1) return;
  if (cap) VG_ABORT("vg_cuda_synchronize during a graph capture (the captured work has not run; end the capture first)");
  vg_cuda_sync();
}

void vg_cuda_fork(void) {
  if (init_state != 1 || !side_on) return;
  if (forked) VG_ABORT("vg_cuda_fork: already forked (branches do not nest)");
  VG_CUDA_CHECK(cudaEventRecord(fork_ev, stream));
  for (int k = 0; k < VG_CU_SIDE; k++) VG_CUDA_CHECK(cudaStreamWaitEvent(side[k], fork_ev, 0));
  pthread_mutex_lock(&lock);
  fork_gen++;
  forked = true;
  pthread_mutex_unlock(&lock);
  cur_branch = 0;
}

void vg_cuda_branch(int k) {
  if (init_state != 1 || !side_on) return;
  if (!forked) VG_ABORT("vg_cuda_branch(%d) outside vg_cuda_fork / vg_cuda_join", k);
  if (k < 0 || k > VG_CU_SIDE) VG_ABORT("vg_cuda_branch(%d): branches are 0..%d", k, VG_CU_SIDE);
  cur_branch = k;
}

void vg_cuda_join(void) {
  if (init_state != 1 || !side_on || !forked) return;
  for (int k = 0; k < VG_CU_SIDE; k++) {
    VG_CUDA_CHECK(cudaEventRecord(join_ev[k], side[k]));
    VG_CUDA_CHECK(cudaStreamWaitEvent(stream, join_ev[k], 0));
  }
  pthread_mutex_lock(&lock);
  forked = false;
  cur_branch = 0;
  release_held();
  pthread_mutex_unlock(&lock);
}

bool vg_cuda_branches(void) { return vg_cuda_init() == VG_OK && side_on; }

void *vg_cuda_host_alloc(size_t nbytes) {
  if (!nbytes) nbytes = 1;
  if (vg_cuda_init() != VG_OK) { /* no device: plain host memory does the same job */
    vg_clear_error();
    return malloc(nbytes);
  }
  void *p = NULL;
  cudaError_t e = cudaMallocHost(&p, nbytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    vg_fail(VG_ERR_NOMEM, "cuda: cudaMallocHost(%zu) failed: %s", nbytes, cudaGetErrorString(e));
    return NULL;
  }
  pthread_mutex_lock(&lock);
  if (pinned_n == pinned_cap) {
    size_t nc = pinned_cap ? pinned_cap * 2 : 16;
    pinned_ent *np = (pinned_ent *)realloc(pinned, nc * sizeof *np);
    if (!np) VG_ABORT("out of host memory");
    pinned = np;
    pinned_cap = nc;
  }
  pinned[pinned_n].p = (char *)p;
  pinned[pinned_n].n = nbytes;
  pinned_n++;
  pthread_mutex_unlock(&lock);
  return p;
}

void vg_cuda_host_free(void *p) {
  if (!p) return;
  pthread_mutex_lock(&lock);
  size_t i = 0;
  while (i < pinned_n && pinned[i].p != p) i++;
  bool was_pinned = i < pinned_n;
  if (was_pinned) pinned[i] = pinned[--pinned_n];
  pthread_mutex_unlock(&lock);
  if (was_pinned) VG_CUDA_CHECK(cudaFreeHost(p));
  else free(p);
}

vg_status vg_cuda_mem_stats_get(vg_cuda_mem_stats *s) {
  if (!s) return vg_fail(VG_ERR_ARG, "vg_cuda_mem_stats_get: NULL argument");
  vg_status st = vg_cuda_init();
  if (st != VG_OK) return st;
  pthread_mutex_lock(&lock);
  s->bytes_live = bytes_live;
  s->bytes_cached = bytes_cached;
  s->bytes_graph = bytes_graph;
  s->peak_live = peak_live;
  s->peak_reserved = peak_reserved;
  s->n_malloc = n_malloc;
  s->n_alloc_calls = n_alloc_calls;
  pthread_mutex_unlock(&lock);
  return VG_OK;
}

void vg_cuda_reset_peak(void) {
  pthread_mutex_lock(&lock);
  peak_live = bytes_live;
  peak_reserved = bytes_live + bytes_cached + bytes_graph;
  pthread_mutex_unlock(&lock);
}

void vg_cuda_empty_cache(void) {
  if (init_state != 1 || cap) return;   /* cudaFree would break a capture */
  VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  pthread_mutex_lock(&lock);
  release_cached();
  pthread_mutex_unlock(&lock);
}

/* ---- timers ---- */
struct vg_cuda_timer { cudaEvent_t a, b; };

vg_cuda_timer *vg_cuda_timer_new(void) {
  if (vg_cuda_init() != VG_OK) return NULL;
  vg_cuda_timer *t = (vg_cuda_timer *)calloc(1, sizeof *t);
  if (!t) VG_ABORT("out of host memory");
  VG_CUDA_CHECK(cudaEventCreate(&t->a));
  VG_CUDA_CHECK(cudaEventCreate(&t->b));
  return t;
}

void vg_cuda_timer_start(vg_cuda_timer *t) { if (t) VG_CUDA_CHECK(cudaEventRecord(t->a, stream)); }
void vg_cuda_timer_stop(vg_cuda_timer *t) { if (t) VG_CUDA_CHECK(cudaEventRecord(t->b, stream)); }

float vg_cuda_timer_elapsed_ms(vg_cuda_timer *t) {
  if (!t) {
    vg_fail(VG_ERR_ARG, "vg_cuda_timer_elapsed_ms: NULL timer");
    return -1.0f;
  }
  float ms = -1.0f;
  cudaError_t e = cudaEventSynchronize(t->b);
  if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, t->a, t->b);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    vg_fail(VG_ERR_DEVICE, "cuda timer: %s (were start and stop both recorded, outside a capture?)",
            cudaGetErrorString(e));
    return -1.0f;
  }
  return ms;
}

void vg_cuda_timer_free(vg_cuda_timer *t) {
  if (!t) return;
  cudaEventDestroy(t->a);
  cudaEventDestroy(t->b);
  free(t);
}

/* ---- graphs ---- */
static void graph_destroy(vg_cuda_graph *g) {   /* stream already synchronized (or nothing ran) */
  if (g->exec) cudaGraphExecDestroy(g->exec);
  if (g->graph) cudaGraphDestroy(g->graph);
  pthread_mutex_lock(&lock);
  pool_release(&g->pool);
  vg_cuda_graph **pp = &all_graphs;
  while (*pp && *pp != g) pp = &(*pp)->next_all;
  if (*pp) *pp = g->next_all;
  pthread_mutex_unlock(&lock);
  free(g);
}

vg_status vg_cuda_graph_begin(void) {
  vg_status st = vg_cuda_init();
  if (st != VG_OK) return st;
  if (cap) return vg_fail(VG_ERR_ARG, "vg_cuda_graph_begin: a capture is already running (graphs do not nest)");
  vg_cuda_graph *g = (vg_cuda_graph *)calloc(1, sizeof *g);
  if (!g) VG_ABORT("out of host memory");
  /* thread-local: this thread may not make unsafe calls (raw_malloc relaxes around
   * cudaMalloc); other threads are not affected */
  cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    free(g);
    return vg_fail(VG_ERR_DEVICE, "vg_cuda_graph_begin: cudaStreamBeginCapture failed: %s", cudaGetErrorString(e));
  }
  pthread_mutex_lock(&lock);
  g->next_all = all_graphs;
  all_graphs = g;
  cap_refused = 0;
  cap_msg[0] = 0;
  cap = g;
  pthread_mutex_unlock(&lock);
  return VG_OK;
}

vg_cuda_graph *vg_cuda_graph_end(void) {
  if (forked) VG_ABORT("vg_cuda_graph_end between vg_cuda_fork and vg_cuda_join (join first)");
  if (!cap) {
    vg_fail(VG_ERR_ARG, "vg_cuda_graph_end: no capture running (vg_cuda_graph_begin first)");
    return NULL;
  }
  vg_cuda_graph *g = cap;
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(stream, &graph);
  pthread_mutex_lock(&lock);
  cap = NULL;
  pthread_mutex_unlock(&lock);
  g->graph = graph;
  /* graphs whose free waited for this capture to end */
  while (deferred_free) {
    vg_cuda_graph *d = deferred_free;
    deferred_free = d->next_deferred;
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
    graph_destroy(d);
  }
  if (cap_refused || e != cudaSuccess || !graph) {
    if (e != cudaSuccess) (void)cudaGetLastError();
    if (cap_refused) vg_fail(VG_ERR_UNSUPPORTED, "%s", cap_msg);
    else vg_fail(VG_ERR_DEVICE, "vg_cuda_graph_end: the capture was invalidated: %s (something synchronized "
                 "or used another stream during the capture)", cudaGetErrorString(e));
    graph_destroy(g);
    return NULL;
  }
  e = cudaGraphInstantiate(&g->exec, graph, 0);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    g->exec = NULL;
    vg_fail(VG_ERR_DEVICE, "vg_cuda_graph_end: cudaGraphInstantiate failed: %s", cudaGetErrorString(e));
    graph_destroy(g);
    return NULL;
  }
  return g;
}

vg_status vg_cuda_graph_replay(vg_cuda_graph *g) {
  if (!g) return vg_fail(VG_ERR_ARG, "vg_cuda_graph_replay: NULL graph");
  if (cap) return vg_fail(VG_ERR_ARG, "vg_cuda_graph_replay: not during a capture");
  cudaError_t e = cudaGraphLaunch(g->exec, stream);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return vg_fail(VG_ERR_DEVICE, "vg_cuda_graph_replay: cudaGraphLaunch failed: %s", cudaGetErrorString(e));
  }
  if (sync_each) VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  return VG_OK;
}

void vg_cuda_graph_free(vg_cuda_graph *g) {
  if (!g) return;
  if (cap) { /* cannot wait for the stream now: freed when the running capture ends */
    g->next_deferred = deferred_free;
    deferred_free = g;
    return;
  }
  /* replays in flight finish before the pool's blocks go back to the cache */
  VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  graph_destroy(g);
}
