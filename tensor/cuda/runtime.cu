/* runtime.cu — device init, the caching allocator, the stream and cuBLAS handle, the
 * CUDA backend's exec switch (the twin of tensor/cpu/backend.c: every op listed, no
 * default) and host <-> device copies. */
#include "tensor/cuda/cuda.h"
#include <pthread.h>
#include <string.h>

/* ---- state ---- */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int init_state;                 /* 0 untried, 1 ok, -1 failed */
static char init_msg[256];
static cudaStream_t stream;
static cublasHandle_t blas;
static int sync_each;

cudaStream_t vg_cuda_stream(void) { return stream; }
cublasHandle_t vg_cuda_blas(void) { return blas; }
bool vg_cuda_sync_each(void) { return sync_each != 0; }

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
 * an open-addressing table (pointer -> bucket) so vg_cuda_free knows the size. */
#define VG_NBUCKET 48
typedef struct blk { struct blk *next; void *p; } blk;
static blk *free_lists[VG_NBUCKET];
static blk *spare_nodes;
typedef struct { void *p; int bucket; } live_ent;
static live_ent *live;
static size_t live_cap, live_n;
static size_t bytes_cached, bytes_live;

static size_t hash_ptr(void *p) { return (size_t)(((uintptr_t)p >> 8) * 0x9E3779B97F4A7C15ull); }

static void live_put(void *p, int b);
static void live_grow(void) {
  live_ent *old = live;
  size_t oc = live_cap;
  live_cap = oc ? oc * 2 : 1024;
  live = (live_ent *)calloc(live_cap, sizeof *live);
  if (!live) VG_ABORT("out of host memory (CUDA allocator table)");
  live_n = 0;
  for (size_t i = 0; i < oc; i++)
    if (old[i].p) live_put(old[i].p, old[i].bucket);
  free(old);
}

static void live_put(void *p, int b) {
  if ((live_n + 1) * 2 > live_cap) live_grow();
  size_t m = live_cap - 1, i = hash_ptr(p) & m;
  while (live[i].p) i = (i + 1) & m;
  live[i].p = p;
  live[i].bucket = b;
  live_n++;
}

static int live_take(void *p) {
  if (!live_cap) return -1;
  size_t m = live_cap - 1, i = hash_ptr(p) & m;
  while (live[i].p && live[i].p != p) i = (i + 1) & m;
  if (!live[i].p) return -1;
  int b = live[i].bucket;
  live[i].p = NULL;
  live_n--;
  /* re-insert the rest of the cluster (backward-shift deletion done simply) */
  for (size_t j = (i + 1) & m; live[j].p; j = (j + 1) & m) {
    live_ent e = live[j];
    live[j].p = NULL;
    live_n--;
    live_put(e.p, e.bucket);
  }
  return b;
}

static void release_cached(void) {
  for (int b = 0; b < VG_NBUCKET; b++)
    while (free_lists[b]) {
      blk *k = free_lists[b];
      free_lists[b] = k->next;
      cudaFree(k->p);
      k->next = spare_nodes;
      spare_nodes = k;
    }
  bytes_cached = 0;
}

void *vg_cuda_alloc(size_t n) {
  int b = 8;
  while (b < VG_NBUCKET - 1 && ((size_t)1 << b) < n) b++;
  if (((size_t)1 << b) < n) VG_ABORT("CUDA allocation of %zu bytes is too large", n);
  pthread_mutex_lock(&lock);
  void *p = NULL;
  if (free_lists[b]) {
    blk *k = free_lists[b];
    free_lists[b] = k->next;
    p = k->p;
    k->next = spare_nodes;
    spare_nodes = k;
    bytes_cached -= (size_t)1 << b;
  } else {
    cudaError_t e = cudaMalloc(&p, (size_t)1 << b);
    if (e != cudaSuccess) { /* give the cache back to the driver and retry once */
      (void)cudaGetLastError();
      cudaStreamSynchronize(stream);
      release_cached();
      e = cudaMalloc(&p, (size_t)1 << b);
    }
    if (e != cudaSuccess) {
      pthread_mutex_unlock(&lock);
      VG_ABORT("CUDA out of memory: cudaMalloc(%zu) failed: %s (%zu bytes live)", (size_t)1 << b,
               cudaGetErrorString(e), bytes_live);
    }
  }
  live_put(p, b);
  bytes_live += (size_t)1 << b;
  pthread_mutex_unlock(&lock);
  return p;
}

void vg_cuda_free(void *p) {
  if (!p) return;
  pthread_mutex_lock(&lock);
  int b = live_take(p);
  if (b < 0) {
    pthread_mutex_unlock(&lock);
    VG_ABORT("vg_cuda_free of %p: not a block of the CUDA allocator", p);
  }
  blk *k = spare_nodes;
  if (k) spare_nodes = k->next;
  else if (!(k = (blk *)malloc(sizeof *k))) VG_ABORT("out of host memory");
  /* the stream is in order: work queued before this free finishes before any later
   * kernel that reuses the block */
  k->p = p;
  k->next = free_lists[b];
  free_lists[b] = k;
  bytes_live -= (size_t)1 << b;
  bytes_cached += (size_t)1 << b;
  pthread_mutex_unlock(&lock);
}

void vg_cuda_sync(void) { VG_CUDA_CHECK(cudaStreamSynchronize(stream)); }

/* at exit: everything back to the driver (live blocks too: heap tensors never freed) */
static void cuda_atexit(void) {
  if (init_state != 1) return;
  cudaStreamSynchronize(stream);
  release_cached();
  for (size_t i = 0; i < live_cap; i++)
    if (live[i].p) cudaFree(live[i].p);
  free(live);
  live = NULL;
  live_cap = live_n = 0;
  while (spare_nodes) {
    blk *k = spare_nodes;
    spare_nodes = k->next;
    free(k);
  }
  cublasDestroy(blas);
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
        /* fp32 GEMMs in fp32 (no TF32), so results match the CPU backend */
        VG_CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));
        VG_CUBLAS_CHECK(cublasSetStream(blas, stream));
        const char *s_env = getenv("VIGIL_CUDA_SYNC");
        sync_each = s_env && s_env[0] == '1';
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
  vg_cpu_backend.exec(&c);
}

static void copy_h2d(const vg_tensor *out, const vg_tensor *in) {
  int64_t n = vg_numel(out);
  if (n == 0) return;
  size_t es = vg_dtype_size(in->dtype);
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
  int64_t n = vg_numel(out);
  if (n == 0) return;
  size_t es = vg_dtype_size(out->dtype);
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

/* ---- the exec switch ---- */
static void cuda_exec(const vg_opcall *c) {
  switch (c->op) {
    case VG_OP_RESHAPE: case VG_OP_PERMUTE: case VG_OP_SLICE: case VG_OP_EXPAND:
      return; /* views: the front-end made the header */
    case VG_OP_COPY: {
      const vg_tensor *in = c->in[0], *out = c->out[0];
      if (in->device == VG_CPU && out->device == VG_CPU) cpu_copy(out, in);
      else if (in->device == VG_CPU) copy_h2d(out, in);
      else if (out->device == VG_CPU) copy_d2h(out, in);
      else vg_cu_eltwise(c);
      return;
    }
    case VG_OP_FILL: case VG_OP_ARANGE:
    case VG_OP_NEG: case VG_OP_EXP: case VG_OP_LOG: case VG_OP_SQRT: case VG_OP_RSQRT: case VG_OP_ABS:
    case VG_OP_SIGN: case VG_OP_RELU: case VG_OP_LEAKY_RELU: case VG_OP_SIGMOID: case VG_OP_LOGSIGMOID:
    case VG_OP_TANH: case VG_OP_SOFTPLUS: case VG_OP_ATAN: case VG_OP_GELU: case VG_OP_POW_SCALAR:
    case VG_OP_CLAMP: case VG_OP_AFFINE: case VG_OP_SIN: case VG_OP_COS: case VG_OP_ERF:
    case VG_OP_ADD: case VG_OP_SUB: case VG_OP_MUL: case VG_OP_DIV: case VG_OP_MAXIMUM: case VG_OP_MINIMUM:
    case VG_OP_EQ: case VG_OP_NE: case VG_OP_LT: case VG_OP_LE: case VG_OP_GT: case VG_OP_GE:
    case VG_OP_WHERE:
      vg_cu_eltwise(c);
      return;
    case VG_OP_SUM: case VG_OP_AMAX: case VG_OP_AMIN: case VG_OP_ARGMAX:
      vg_cu_reduce(c);
      return;
    case VG_OP_MATMUL:
      vg_cu_matmul(c);
      return;
    case VG_OP_CONV2D: case VG_OP_CONV2D_BWD_DATA: case VG_OP_CONV2D_BWD_WEIGHT:
    case VG_OP_UNFOLD: case VG_OP_FOLD: case VG_OP_PAD: case VG_OP_CONCAT:
      vg_cu_conv(c);
      return;
    case VG_OP_AVG_POOL2D: case VG_OP_AVG_POOL2D_BWD: case VG_OP_MAX_POOL2D: case VG_OP_MAX_POOL2D_BWD:
    case VG_OP_ADAPTIVE_AVG_POOL2D: case VG_OP_ADAPTIVE_AVG_POOL2D_BWD:
    case VG_OP_INTERP_BILINEAR: case VG_OP_INTERP_BILINEAR_BWD:
      vg_cu_pool(c);
      return;
    case VG_OP_RAND_UNIFORM: case VG_OP_RAND_NORMAL:
      vg_cu_random(c);
      return;
    case VG_OP_GATHER: case VG_OP_SCATTER_ADD: case VG_OP_INDEX_SELECT: case VG_OP_INDEX_ADD:
      vg_cu_index(c);
      return;
    case VG_OP_KTHVALUE: case VG_OP_SORT:
      vg_cu_select(c);
      return;
    case VG_OP_COUNT:
      break;
  }
  VG_ABORT("cuda backend: bad op %d", (int)c->op);
}

const vg_backend vg_cuda_backend = {"cuda", cuda_exec, vg_cuda_alloc, vg_cuda_free};
