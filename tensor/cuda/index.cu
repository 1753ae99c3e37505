/* index.cu — gather, scatter_add, index_select, index_add on the GPU: the twins of
 * tensor/cpu/index.c (torch semantics, i64 indices, data of any dtype, any strides;
 * the front-ends in tensor/ops_index.c have checked every index value on the host).
 *
 *   gather:       out[..i..] = x[..index[..i..]..]          one thread per out element
 *   index_select: out[o, k, :] = x[o, index[k], :]          one thread per out element
 *   scatter_add:  out = base; out[..index[..i..]..] += src[..i..]
 *                 one thread per column of index along dim, adding in index order
 *   index_add:    out = base; out[o, index[k], i] += src[o, k, i]
 *                 one thread per (o, i), adding k = 0, 1, ... in order
 *
 * Determinism: the scatters use no atomics. The CPU kernel splits the work the same
 * way (a task owns the output elements it writes and adds in index order), so every
 * output element receives the same additions in the same order on both backends and
 * the results are bit-identical, f32 included. The direct kernels above have as many
 * threads as index columns (scatter_add: numel(index) / index.shape[dim]) or (outer,
 * inner) positions (index_add: numel(base) / base.shape[dim]). When those are few
 * (< 16384) and long (> 256 sources each), e.g. the gradient of a sort of one long
 * row, a by-destination path takes over: the pairs (destination << 32 | source
 * position) of each column are sorted (vg_cu_sort_u64_rows), and one thread per
 * output element finds its run of sources by binary search and adds them in source
 * order: the same order again, with numel(out) threads, for 16 bytes per index
 * element of scratch and a sort.
 *
 * An index outside [0, size) traps the kernel (reported at the next CUDA call): the
 * front-ends never pass one, a direct op call must not either. */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/vmath.cuh"
#include "tensor/kmath/index.h"
#include "tensor/kmath/select.h"

#define THREADS 256

/* shapes and strides in elements; 0-d tensors are seen as 1-d of size 1 (as index.c) */
typedef struct {
  int nd;
  int64_t shape[VG_MAX_DIMS];          /* the iteration shape */
  int64_t xs[VG_MAX_DIMS];             /* data read (gather, index_select) or src (the adds) */
  int64_t is[VG_MAX_DIMS];             /* index (gather, scatter_add) */
  int64_t os[VG_MAX_DIMS];             /* output */
} ix_geom;

static void strides_of(const vg_tensor *t, int64_t *st) {
  st[0] = 0;
  for (int d = 0; d < t->ndim; d++) st[d] = t->stride[d];
}

template <typename T>
__global__ void k_gather(ix_geom g, int dim, int64_t size, const T *x, const int64_t *ix, T *out, int64_t n) {
  VG_CU_GRID_LOOP(i, n) {
    int64_t rem = i, xo = 0, io = 0, oo = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
      int64_t c = rem % g.shape[d];
      rem /= g.shape[d];
      io += c * g.is[d];
      oo += c * g.os[d];
      if (d != dim) xo += c * g.xs[d];
    }
    int64_t iv = ix[io];
    if ((uint64_t)iv >= (uint64_t)size) __trap();
    out[oo] = x[xo + iv * g.xs[dim]];
  }
}

/* out[k] within one select row: shape = out's shape (dim holds the K indices) */
template <typename T>
__global__ void k_index_select(ix_geom g, int dim, int64_t size, const T *x, const int64_t *ix, int64_t ist,
                               T *out, int64_t n) {
  VG_CU_GRID_LOOP(i, n) {
    int64_t rem = i, xo = 0, oo = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
      int64_t c = rem % g.shape[d];
      rem /= g.shape[d];
      oo += c * g.os[d];
      if (d != dim) xo += c * g.xs[d];
      else {
        int64_t iv = ix[c * ist];
        if ((uint64_t)iv >= (uint64_t)size) __trap();
        xo += iv * g.xs[d];
      }
    }
    out[oo] = x[xo];
  }
}

/* dst += src in dtype dt: tensor/kmath/index.h (shared with tensor/cpu/index.c) */
__device__ __forceinline__ void add_elem(char *dst, const char *src, int dt) { vg_add_elem(dst, src, dt); }

/* one thread per column (index position with dim left out); g.shape = index's shape */
__global__ void k_scatter_add(ix_geom g, int dim, int64_t size, int dt, int es, char *out, const int64_t *ix,
                              const char *src, int64_t ncol) {
  int64_t along = g.shape[dim];
  VG_CU_GRID_LOOP(col, ncol) {
    int64_t rem = col, oo = 0, io = 0, so = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
      if (d == dim) continue;
      int64_t c = rem % g.shape[d];
      rem /= g.shape[d];
      io += c * g.is[d];
      so += c * g.xs[d];
      oo += c * g.os[d];
    }
    for (int64_t j = 0; j < along; j++) {
      int64_t iv = ix[io + j * g.is[dim]];
      if ((uint64_t)iv >= (uint64_t)size) __trap();
      char *o = out + (oo + iv * g.os[dim]) * es;
      const char *s = src + (so + j * g.xs[dim]) * es;
      if (dt == VG_F32) *(float *)o += *(const float *)s;
      else add_elem(o, s, dt);
    }
  }
}

/* one thread per (outer, inner) position; g.shape = out's shape (dim is skipped) */
__global__ void k_index_add(ix_geom g, int dim, int64_t size, int dt, int es, char *out, const int64_t *ix,
                            int64_t ist, int64_t K, const char *src, int64_t n) {
  VG_CU_GRID_LOOP(t, n) {
    int64_t rem = t, oo = 0, so = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
      if (d == dim) continue;
      int64_t c = rem % g.shape[d];
      rem /= g.shape[d];
      so += c * g.xs[d];
      oo += c * g.os[d];
    }
    for (int64_t k = 0; k < K; k++) {
      int64_t iv = ix[k * ist];
      if ((uint64_t)iv >= (uint64_t)size) __trap();
      char *o = out + (oo + iv * g.os[dim]) * es;
      const char *s = src + (so + k * g.xs[dim]) * es;
      if (dt == VG_F32) *(float *)o += *(const float *)s;
      else add_elem(o, s, dt);
    }
  }
}

/* ---- the by-destination path (few, long columns) ----
 * pairs[col][j] = dest << 32 | j for each column, sorted per column: the sources of one
 * destination, in j order, are a contiguous run found by binary search. */
__global__ void k_scatter_pairs(ix_geom g, int dim, int64_t size, const int64_t *ix, unsigned long long *pairs,
                                int64_t n) {
  int64_t along = g.shape[dim];
  VG_CU_GRID_LOOP(e, n) {
    int64_t col = e / along, j = e - col * along, rem = col, io = j * g.is[dim];
    for (int d = g.nd - 1; d >= 0; d--) {
      if (d == dim) continue;
      int64_t c = rem % g.shape[d];
      rem /= g.shape[d];
      io += c * g.is[d];
    }
    int64_t iv = ix[io];
    if ((uint64_t)iv >= (uint64_t)size) __trap();
    pairs[e] = (unsigned long long)iv << 32 | (unsigned long long)j;
  }
}

/* one thread per (column, destination d along dim): adds its sources in j order */
__global__ void k_scatter_by_dest(ix_geom g, int dim, int64_t size, int dt, int es, char *out, const char *src,
                                  const unsigned long long *pairs, int64_t ncol) {
  int64_t along = g.shape[dim];
  VG_CU_GRID_LOOP(t, ncol * size) {
    int64_t col = t / size, dst = t - col * size, rem = col, oo = 0, so = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
      if (d == dim) continue;
      int64_t c = rem % g.shape[d];
      rem /= g.shape[d];
      so += c * g.xs[d];
      oo += c * g.os[d];
    }
    const unsigned long long *row = pairs + col * along;
    int64_t p = vg_lower_bound_u64(row, along, (unsigned long long)dst << 32);
    char *o = out + (oo + dst * g.os[dim]) * es;
    for (; p < along && (row[p] >> 32) == (unsigned long long)dst; p++) {
      const char *s = src + (so + (int64_t)(row[p] & 0xffffffffu) * g.xs[dim]) * es;
      if (dt == VG_F32) *(float *)o += *(const float *)s;
      else add_elem(o, s, dt);
    }
  }
}

__global__ void k_index_pairs(const int64_t *ix, int64_t ist, int64_t size, unsigned long long *pairs, int64_t K) {
  VG_CU_GRID_LOOP(k, K) {
    int64_t iv = ix[k * ist];
    if ((uint64_t)iv >= (uint64_t)size) __trap();
    pairs[k] = (unsigned long long)iv << 32 | (unsigned long long)k;
  }
}

/* one thread per output element (g.shape = out's shape): adds its sources k in order */
__global__ void k_index_add_by_dest(ix_geom g, int dim, int dt, int es, char *out, const char *src,
                                    const unsigned long long *pairs, int64_t K, int64_t n) {
  VG_CU_GRID_LOOP(t, n) {
    int64_t rem = t, oo = 0, so = 0, dst = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
      int64_t c = rem % g.shape[d];
      rem /= g.shape[d];
      oo += c * g.os[d];
      if (d != dim) so += c * g.xs[d];
      else dst = c;
    }
    int64_t p = vg_lower_bound_u64(pairs, K, (unsigned long long)dst << 32);
    char *o = out + oo * es;
    for (; p < K && (pairs[p] >> 32) == (unsigned long long)dst; p++) {
      const char *s = src + (so + (int64_t)(pairs[p] & 0xffffffffu) * g.xs[dim]) * es;
      if (dt == VG_F32) *(float *)o += *(const float *)s;
      else add_elem(o, s, dt);
    }
  }
}

/* the by-destination path when the direct one would run fewer than BYDEST_THREADS
 * threads, each adding more than BYDEST_ALONG sources in sequence */
#define BYDEST_THREADS 16384
#define BYDEST_ALONG 256

static void gather(const vg_opcall *c) {
  const vg_tensor *x = c->in[0], *ix = c->in[1];
  vg_tensor *out = c->out[0];
  int64_t n = vg_numel(out);
  if (n == 0) return;
  VG_ASSERT(ix->dtype == VG_I64 && out->dtype == x->dtype && out->ndim == ix->ndim);
  int dim = (int)c->p.dim.dim;
  ix_geom g;
  memset(&g, 0, sizeof g);
  g.nd = ix->ndim ? ix->ndim : 1;
  g.shape[0] = 1;
  for (int d = 0; d < ix->ndim; d++) g.shape[d] = ix->shape[d];
  strides_of(x, g.xs);
  strides_of(ix, g.is);
  strides_of(out, g.os);
  int64_t size = x->ndim ? x->shape[dim] : 1;
  cudaStream_t s = vg_cuda_stream();
  unsigned nb = vg_cu_blocks(n, THREADS);
  size_t es = vg_dtype_size(x->dtype);
  switch (es) {
    case 1: VG_CU_LAUNCH(k_gather<uint8_t>, nb, THREADS, 0, s)(g, dim, size, (const uint8_t *)vg_data(x), (const int64_t *)vg_data(ix), (uint8_t *)vg_data(out), n); break;
    case 2: VG_CU_LAUNCH(k_gather<uint16_t>, nb, THREADS, 0, s)(g, dim, size, (const uint16_t *)vg_data(x), (const int64_t *)vg_data(ix), (uint16_t *)vg_data(out), n); break;
    case 4: VG_CU_LAUNCH(k_gather<uint32_t>, nb, THREADS, 0, s)(g, dim, size, (const uint32_t *)vg_data(x), (const int64_t *)vg_data(ix), (uint32_t *)vg_data(out), n); break;
    default: VG_CU_LAUNCH(k_gather<uint64_t>, nb, THREADS, 0, s)(g, dim, size, (const uint64_t *)vg_data(x), (const int64_t *)vg_data(ix), (uint64_t *)vg_data(out), n); break;
  }
  VG_CUDA_LAUNCHED("gather");
}

static void index_select(const vg_opcall *c) {
  const vg_tensor *x = c->in[0], *ix = c->in[1];
  vg_tensor *out = c->out[0];
  int64_t n = vg_numel(out);
  if (n == 0) return;
  VG_ASSERT(ix->dtype == VG_I64 && ix->ndim <= 1 && out->dtype == x->dtype && x->ndim >= 1 && out->ndim == x->ndim);
  int dim = (int)c->p.dim.dim;
  ix_geom g;
  memset(&g, 0, sizeof g);
  g.nd = out->ndim;
  for (int d = 0; d < out->ndim; d++) g.shape[d] = out->shape[d];
  strides_of(x, g.xs);
  strides_of(out, g.os);
  int64_t ist = ix->ndim ? ix->stride[0] : 0;
  cudaStream_t s = vg_cuda_stream();
  unsigned nb = vg_cu_blocks(n, THREADS);
  switch (vg_dtype_size(x->dtype)) {
    case 1: VG_CU_LAUNCH(k_index_select<uint8_t>, nb, THREADS, 0, s)(g, dim, x->shape[dim], (const uint8_t *)vg_data(x), (const int64_t *)vg_data(ix), ist, (uint8_t *)vg_data(out), n); break;
    case 2: VG_CU_LAUNCH(k_index_select<uint16_t>, nb, THREADS, 0, s)(g, dim, x->shape[dim], (const uint16_t *)vg_data(x), (const int64_t *)vg_data(ix), ist, (uint16_t *)vg_data(out), n); break;
    case 4: VG_CU_LAUNCH(k_index_select<uint32_t>, nb, THREADS, 0, s)(g, dim, x->shape[dim], (const uint32_t *)vg_data(x), (const int64_t *)vg_data(ix), ist, (uint32_t *)vg_data(out), n); break;
    default: VG_CU_LAUNCH(k_index_select<uint64_t>, nb, THREADS, 0, s)(g, dim, x->shape[dim], (const uint64_t *)vg_data(x), (const int64_t *)vg_data(ix), ist, (uint64_t *)vg_data(out), n); break;
  }
  VG_CUDA_LAUNCHED("index_select");
}

static void scatter_add(const vg_opcall *c) {
  const vg_tensor *base = c->in[0], *ix = c->in[1], *src = c->in[2];
  vg_tensor *out = c->out[0];
  if (vg_numel(out) == 0) return;
  vg_cu_copy_dd(out, base);
  int64_t n = vg_numel(ix);
  if (n == 0) return;
  VG_ASSERT(ix->dtype == VG_I64 && src->dtype == out->dtype && ix->ndim == out->ndim && src->ndim == out->ndim);
  int dim = (int)c->p.dim.dim;
  ix_geom g;
  memset(&g, 0, sizeof g);
  g.nd = ix->ndim ? ix->ndim : 1;
  g.shape[0] = 1;
  for (int d = 0; d < ix->ndim; d++) g.shape[d] = ix->shape[d];
  strides_of(src, g.xs);
  strides_of(ix, g.is);
  strides_of(out, g.os);
  int64_t ncol = n / g.shape[dim], size = out->ndim ? out->shape[dim] : 1, along = g.shape[dim];
  if (ncol < BYDEST_THREADS && along > BYDEST_ALONG && along < ((int64_t)1 << 32) && size < ((int64_t)1 << 31)) {
    cudaStream_t s = vg_cuda_stream();
    unsigned long long *a = (unsigned long long *)vg_cuda_alloc((size_t)n * sizeof(unsigned long long));
    unsigned long long *b = (unsigned long long *)vg_cuda_alloc((size_t)n * sizeof(unsigned long long));
    VG_CU_LAUNCH(k_scatter_pairs, vg_cu_blocks(n, THREADS), THREADS, 0, s)(g, dim, size, (const int64_t *)vg_data(ix), a, n);
    VG_CUDA_LAUNCHED("scatter_add pairs");
    const unsigned long long *pairs = vg_cu_sort_u64_rows(a, b, ncol, along);
    VG_CU_LAUNCH(k_scatter_by_dest, vg_cu_blocks(ncol * size, THREADS), THREADS, 0, s)(
        g, dim, size, (int)out->dtype, (int)vg_dtype_size(out->dtype), (char *)vg_data(out), (const char *)vg_data(src),
        pairs, ncol);
    VG_CUDA_LAUNCHED("scatter_add");
    vg_cuda_free(a);   /* the stream is in order: a later kernel reusing them runs after */
    vg_cuda_free(b);
    return;
  }
  VG_CU_LAUNCH(k_scatter_add, vg_cu_blocks(ncol, THREADS), THREADS, 0, vg_cuda_stream())(
      g, dim, size, (int)out->dtype, (int)vg_dtype_size(out->dtype), (char *)vg_data(out), (const int64_t *)vg_data(ix),
      (const char *)vg_data(src), ncol);
  VG_CUDA_LAUNCHED("scatter_add");
}

static void index_add(const vg_opcall *c) {
  const vg_tensor *base = c->in[0], *ix = c->in[1], *src = c->in[2];
  vg_tensor *out = c->out[0];
  if (vg_numel(out) == 0) return;
  vg_cu_copy_dd(out, base);
  int64_t K = vg_numel(ix);
  if (K == 0) return;
  VG_ASSERT(ix->dtype == VG_I64 && ix->ndim <= 1 && src->dtype == out->dtype && out->ndim >= 1 && src->ndim == out->ndim);
  int dim = (int)c->p.dim.dim;
  ix_geom g;
  memset(&g, 0, sizeof g);
  g.nd = out->ndim;
  int64_t n = 1;
  for (int d = 0; d < out->ndim; d++) {
    g.shape[d] = out->shape[d];
    if (d != dim) n *= out->shape[d];
  }
  if (n == 0) return;
  strides_of(src, g.xs);
  strides_of(out, g.os);
  int64_t ist = ix->ndim ? ix->stride[0] : 0;
  if (n < BYDEST_THREADS && K > BYDEST_ALONG && K < ((int64_t)1 << 32) && out->shape[dim] < ((int64_t)1 << 31)) {
    cudaStream_t s = vg_cuda_stream();
    unsigned long long *a = (unsigned long long *)vg_cuda_alloc((size_t)K * sizeof(unsigned long long));
    unsigned long long *b = (unsigned long long *)vg_cuda_alloc((size_t)K * sizeof(unsigned long long));
    VG_CU_LAUNCH(k_index_pairs, vg_cu_blocks(K, THREADS), THREADS, 0, s)((const int64_t *)vg_data(ix), ist, out->shape[dim], a, K);
    VG_CUDA_LAUNCHED("index_add pairs");
    const unsigned long long *pairs = vg_cu_sort_u64_rows(a, b, 1, K);
    int64_t nout = vg_numel(out);
    VG_CU_LAUNCH(k_index_add_by_dest, vg_cu_blocks(nout, THREADS), THREADS, 0, s)(
        g, dim, (int)out->dtype, (int)vg_dtype_size(out->dtype), (char *)vg_data(out), (const char *)vg_data(src), pairs,
        K, nout);
    VG_CUDA_LAUNCHED("index_add");
    vg_cuda_free(a);
    vg_cuda_free(b);
    return;
  }
  VG_CU_LAUNCH(k_index_add, vg_cu_blocks(n, THREADS), THREADS, 0, vg_cuda_stream())(
      g, dim, out->shape[dim], (int)out->dtype, (int)vg_dtype_size(out->dtype), (char *)vg_data(out),
      (const int64_t *)vg_data(ix), ist, K, (const char *)vg_data(src), n);
  VG_CUDA_LAUNCHED("index_add");
}

void vg_cu_gather(const vg_opcall *c) { gather(c); }
void vg_cu_index_select(const vg_opcall *c) { index_select(c); }
void vg_cu_scatter_add(const vg_opcall *c) { scatter_add(c); }
void vg_cu_index_add(const vg_opcall *c) { index_add(c); }
