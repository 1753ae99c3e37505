/* select.cu — KTHVALUE and SORT on the GPU, with the keys, digits, quantile lerp and
 * sort keys of tensor/kmath/select.h (shared with tensor/cpu/select.c), so the results
 * are bit-identical to the CPU's. Unsigned key order is -inf < ... < +inf < NaN.
 *
 * KTHVALUE (k-th smallest of all elements; mode 1: torch.quantile's lerp between the
 * k-th and k_hi-th): a radix select in three histogram passes over the key digits
 * [31:21], [20:10], [9:0]. Each pass reads all n elements (grid-stride, per-block
 * shared histograms of 2048 u32 bins, summed into one global u64 histogram with
 * integer atomics: the counts, and so the result, do not depend on scheduling); pass
 * d counts only the elements whose higher digits equal the ones chosen so far. A
 * one-thread kernel after each pass picks the bucket holding the k-th element and
 * keeps the prefix and the remaining rank in device memory, so the host never waits.
 * The (k+1)-th key for the quantile is the same key again (a tie), the next non-empty
 * bucket of the last pass, or else one more pass taking the smallest key above it
 * (atomicMin). O(n) per pass whatever the data; up to 4 passes; no copy of a dense
 * input (any dim order). Memory: one 16 KiB state block.
 *
 * SORT (stable argsort along dim, the first `keep` indices per row): each element
 * becomes the 64-bit pair (key << 32 | index in the row), unique within a row, so any
 * correct sort of the pairs is the stable sort of the keys. (-0 gets +0's key, and
 * descending sorts ~key, exactly as select.c.) Rows of up to 4096 elements: one
 * block per row, a bitonic sort of the padded row in shared memory, indices written
 * straight out. Longer rows: tiles of 4096 sorted that way into a global buffer, then
 * merge passes of doubling width: every element finds its place in the merged run as
 * its position in its own run plus its rank in the partner run (a binary search; the
 * pairs are unique so ranks never collide), ping-ponging between two buffers of
 * nrows*len pairs (16 bytes per element in all). Rows are limited to < 2^32 elements.
 * The same tile + merge sort of raw u64 rows is vg_cu_sort_u64_rows (index.cu's
 * by-destination scatters use it).
 *
 * f16 inputs (f16.cuh): each element is widened to f32 (exact) and keyed as above, so
 * the selection and the order are the f32 ones of the same values; kthvalue's result is
 * f16 (exact for mode 0; the quantile's lerp is computed in f32 and rounded once). */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/f16.cuh"
#include "tensor/kmath/select.h"
#include <math.h>

#define THREADS 256

/* ---- KTHVALUE ---- */

#define SEL_MAXBLOCKS 512

typedef struct {
  unsigned long long hist[VG_SEL_BINS];   /* zero between passes */
  long long k;                         /* rank (1-based) left inside the chosen bucket */
  long long c_last;                    /* count of the last pass's chosen bucket */
  uint32_t prefix;                     /* digits chosen so far */
  uint32_t key;                        /* the k-th smallest key */
  uint32_t next;                       /* the (k+1)-th (quantile) */
  uint32_t minabove;                   /* min-above pass result */
  int need_min, has_nan;
} sel_state;

/* level 0..2: histogram of digit `level` over the elements matching st->prefix */
template <typename T>
__global__ void k_sel_hist(const T *x, int64_t n, int level, sel_state *st) {
  __shared__ uint32_t h[VG_SEL_BINS];
  for (int b = threadIdx.x; b < VG_SEL_BINS; b += blockDim.x) h[b] = 0;
  __syncthreads();
  const uint32_t pre = st->prefix;
  VG_CU_GRID_LOOP(i, n) {
    uint32_t k = vg_sel_key(vg_ld(x + i));
    if (level == 0) atomicAdd(&h[vg_sel_digit(k, 0)], 1u);
    else if (vg_sel_high(k, level) == pre) atomicAdd(&h[vg_sel_digit(k, level)], 1u);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < VG_SEL_BINS; b += blockDim.x)
    if (h[b]) atomicAdd(&st->hist[b], (unsigned long long)h[b]);
}

/* one thread: picks the bucket of rank k0 (level 0) or st->k, extends the prefix, clears the histogram */
__global__ void k_sel_pick(sel_state *st, int level, int want_next, long long k0) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  int nb = level == 2 ? 1024 : VG_SEL_BINS;
  int64_t k = level == 0 ? k0 : st->k;
  int b = vg_sel_pick(st->hist, nb, &k);
  if (b == nb) __trap();   /* the histogram lost elements: cannot happen */
  if (level == 0) st->has_nan = st->hist[VG_SEL_BINS - 1] > 0;
  st->k = k;
  st->c_last = (long long)st->hist[b];
  if (level < 2) {
    st->prefix = vg_sel_extend(st->prefix, level, (uint32_t)b);
  } else {
    uint32_t key = vg_sel_extend(st->prefix, 2, (uint32_t)b);
    st->key = key;
    st->need_min = 0;
    if (want_next && !vg_sel_next_key(st->hist, b, k, st->prefix, &st->next)) {
      st->need_min = 1;
      st->minabove = 0xffffffffu;
    }
  }
  for (int i = 0; i < VG_SEL_BINS; i++) st->hist[i] = 0;
}

/* smallest key above st->key, when k_sel_pick asked for it */
template <typename T>
__global__ void k_sel_minabove(const T *x, int64_t n, sel_state *st) {
  __shared__ uint32_t sh[THREADS];
  if (!st->need_min) return;   /* uniform over the grid */
  const uint32_t key = st->key;
  uint32_t m = 0xffffffffu;
  VG_CU_GRID_LOOP(i, n) {
    uint32_t k = vg_sel_key(vg_ld(x + i));
    if (k > key && k < m) m = k;
  }
  sh[threadIdx.x] = m;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s && sh[threadIdx.x + s] < sh[threadIdx.x]) sh[threadIdx.x] = sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0 && sh[0] != 0xffffffffu) atomicMin(&st->minabove, sh[0]);
}

template <typename T>
__global__ void k_sel_final(const sel_state *st, T *out, int mode, int want_next, float w) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  uint32_t next = want_next ? (st->need_min ? st->minabove : st->next) : st->key;
  vg_st(out, vg_kth_result(mode, st->has_nan, st->key, next, w));
}

template <typename T>
static void kth_run(const vg_opcall *c, const T *p, int64_t n, int64_t k, int mode, int want_next) {
  cudaStream_t s = vg_cuda_stream();
  sel_state *st = (sel_state *)vg_cuda_alloc(sizeof(sel_state));
  VG_CUDA_CHECK(cudaMemsetAsync(st, 0, sizeof(sel_state), s));
  unsigned nb = vg_cu_blocks(n, THREADS);
  if (nb > SEL_MAXBLOCKS) nb = SEL_MAXBLOCKS;
  for (int level = 0; level < 3; level++) {
    VG_CU_LAUNCH(k_sel_hist<T>, nb, THREADS, 0, s)(p, n, level, st);
    VG_CUDA_LAUNCHED("kthvalue histogram");
    VG_CU_LAUNCH(k_sel_pick, 1, 1, 0, s)(st, level, want_next, (long long)k);
    VG_CUDA_LAUNCHED("kthvalue pick");
  }
  if (want_next) {
    VG_CU_LAUNCH(k_sel_minabove<T>, nb, THREADS, 0, s)(p, n, st);
    VG_CUDA_LAUNCHED("kthvalue min above");
  }
  VG_CU_LAUNCH(k_sel_final<T>, 1, 1, 0, s)(st, (T *)vg_data(c->out[0]), mode, want_next, (float)c->p.kth.w);
  VG_CUDA_LAUNCHED("kthvalue");
  vg_cuda_free(st);   /* the stream is in order: a later kernel reusing it runs after */
}

/* p.kth: k (1-based); mode (0 k-th, 1 quantile with k_hi, w = weight) */
static void kthvalue(const vg_opcall *c) {
  const vg_tensor *x = c->in[0];
  int64_t n = vg_numel(x), k = c->p.kth.k;
  int want_next = vg_kth_want_next(&c->p.kth, n), mode = c->p.kth.mode != 0;
  VG_ASSERT((x->dtype == VG_F32 || x->dtype == VG_F16) && c->out[0]->dtype == x->dtype);
  void *tmp = NULL;
  const void *p = vg_dense_span(x) ? vg_data(x) : NULL;   /* any dim order: a multiset */
  if (!p) p = vg_cu_contig(x, &tmp);
  if (vg_cu_is_half(x)) kth_run(c, (const vg_half *)p, n, k, mode, want_next);
  else kth_run(c, (const float *)p, n, k, mode, want_next);
  vg_cuda_free(tmp);
}

/* ---- SORT ---- */

#define SORT_TILE 4096   /* pairs per shared-memory tile: 32 KiB */

typedef struct {
  int nouter;                           /* the dims other than dim, in order */
  int64_t oshape[VG_MAX_DIMS], xstride[VG_MAX_DIMS], ostride[VG_MAX_DIMS];
  int64_t xs, os;                       /* strides along dim */
  int64_t len, keep, nrows;
  int desc;
} sort_geom;

__device__ __forceinline__ void row_offsets(const sort_geom &g, int64_t r, int64_t *xoff, int64_t *ooff) {
  vg_sort_row_offsets(g.nouter, g.oshape, g.xstride, g.ostride, r, xoff, ooff);
}

/* ascending bitonic sort of s[0, P), P a power of two; all threads of the block call it */
__device__ void bitonic_sort(unsigned long long *s, int P) {
  for (int k = 2; k <= P; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int t = threadIdx.x; t < P / 2; t += blockDim.x) {
        int i = (t / j) * 2 * j + (t % j), l = i + j;
        unsigned long long a = s[i], b = s[l];
        if ((a > b) == ((i & k) == 0)) {
          s[i] = b;
          s[l] = a;
        }
      }
      __syncthreads();
    }
}

/* One block per tile (row r, tile tl: elements [tl*SORT_TILE, ...) of the row), P the
 * padded tile size. final: the row is one tile; write the first `keep` indices to out.
 * Else write the sorted pairs to buf[r*len + tl*SORT_TILE ...]. */
template <typename T>
__global__ void k_sort_tile(sort_geom g, const T *x, int64_t *out, unsigned long long *buf, int P,
                            int64_t ntiles_row, int final) {
  extern __shared__ unsigned long long s[];
  int64_t ntiles = g.nrows * ntiles_row;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    int64_t r = tile / ntiles_row, j0 = (tile % ntiles_row) * SORT_TILE;
    int64_t m = g.len - j0 < P ? g.len - j0 : P;
    int64_t xoff, ooff;
    row_offsets(g, r, &xoff, &ooff);
    for (int j = threadIdx.x; j < P; j += blockDim.x)
      s[j] = j < m ? (unsigned long long)vg_sort_key(vg_ld(x + xoff + (j0 + j) * g.xs), g.desc != 0) << 32 |
                         (unsigned long long)(j0 + j)
                   : ~0ull;
    __syncthreads();
    bitonic_sort(s, P);
    if (final) {
      for (int j = threadIdx.x; j < g.keep; j += blockDim.x) out[ooff + j * g.os] = (int64_t)(s[j] & 0xffffffffu);
    } else {
      unsigned long long *b = buf + r * g.len + j0;
      for (int j = threadIdx.x; j < m; j += blockDim.x) b[j] = s[j];
    }
    __syncthreads();   /* s is reused by the next tile */
  }
}


/* one merge pass: runs of width w in each row of src (nrows x len) merged in pairs */
__global__ void k_sort_merge(const unsigned long long *src, unsigned long long *dst, int64_t nrows, int64_t len,
                             int64_t w) {
  VG_CU_GRID_LOOP(e, nrows * len) {
    int64_t r = e / len, j = e - r * len;
    int64_t p0 = j / (2 * w) * (2 * w);
    int64_t a1 = p0 + w < len ? p0 + w : len, b1 = p0 + 2 * w < len ? p0 + 2 * w : len;
    const unsigned long long *row = src + r * len;
    unsigned long long v = row[j];
    int64_t at = j < a1 ? j + vg_lower_bound_u64(row + a1, b1 - a1, v)           /* from run A */
                        : (j - a1) + p0 + vg_lower_bound_u64(row + p0, a1 - p0, v);   /* from run B */
    dst[r * len + at] = v;
  }
}

__global__ void k_sort_write(sort_geom g, const unsigned long long *buf, int64_t *out) {
  VG_CU_GRID_LOOP(e, g.nrows * g.keep) {
    int64_t r = e / g.keep, j = e - r * g.keep, xoff, ooff;
    row_offsets(g, r, &xoff, &ooff);
    out[ooff + j * g.os] = (int64_t)(buf[r * g.len + j] & 0xffffffffu);
  }
}

/* sorts each row of buf (nrows x len) in place, one block per tile of SORT_TILE */
__global__ void k_sort_tile_u64(unsigned long long *buf, int64_t nrows, int64_t len, int P, int64_t ntiles_row) {
  extern __shared__ unsigned long long s[];
  int64_t ntiles = nrows * ntiles_row;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    int64_t r = tile / ntiles_row, j0 = (tile % ntiles_row) * SORT_TILE;
    int64_t m = len - j0 < P ? len - j0 : P;
    unsigned long long *b = buf + r * len + j0;
    for (int j = threadIdx.x; j < P; j += blockDim.x) s[j] = j < m ? b[j] : ~0ull;
    __syncthreads();
    bitonic_sort(s, P);
    for (int j = threadIdx.x; j < m; j += blockDim.x) b[j] = s[j];
    __syncthreads();
  }
}

/* merge passes over rows whose tiles of SORT_TILE are sorted; a and b hold nrows*len
 * pairs each; returns the one holding the sorted rows */
static unsigned long long *merge_rows(unsigned long long *a, unsigned long long *b, int64_t nrows, int64_t len) {
  cudaStream_t s = vg_cuda_stream();
  int64_t n = nrows * len;
  for (int64_t w = SORT_TILE; w < len; w *= 2) {
    VG_CU_LAUNCH(k_sort_merge, vg_cu_blocks(n, THREADS), THREADS, 0, s)(a, b, nrows, len, w);
    VG_CUDA_LAUNCHED("sort merge");
    unsigned long long *t = a;
    a = b;
    b = t;
  }
  return a;
}

unsigned long long *vg_cu_sort_u64_rows(unsigned long long *a, unsigned long long *tmp, int64_t nrows, int64_t len) {
  if (nrows <= 0 || len <= 1) return a;
  int P = 2;
  while (P < len && P < SORT_TILE) P <<= 1;
  int threads = P / 2 < 32 ? 32 : (P / 2 > 1024 ? 1024 : P / 2);
  int64_t ntiles_row = (len + SORT_TILE - 1) / SORT_TILE, ntiles = nrows * ntiles_row;
  unsigned nb = (unsigned)(ntiles < 65535 * 16 ? ntiles : 65535 * 16);
  VG_CU_LAUNCH(k_sort_tile_u64, nb, threads, (size_t)P * sizeof(unsigned long long), vg_cuda_stream())(a, nrows, len, P, ntiles_row);
  VG_CUDA_LAUNCHED("sort tiles");
  return merge_rows(a, tmp, nrows, len);
}

/* k_sort_tile on f32 or f16 elements */
static void sort_tiles(bool half, unsigned nb, int threads, size_t shm, const sort_geom &g, const void *x, int64_t *out,
                       unsigned long long *buf, int P, int64_t ntiles_row, int final) {
  cudaStream_t s = vg_cuda_stream();
  if (half)
    VG_CU_LAUNCH(k_sort_tile<vg_half>, nb, threads, shm, s)(g, (const vg_half *)x, out, buf, P, ntiles_row, final);
  else
    VG_CU_LAUNCH(k_sort_tile<float>, nb, threads, shm, s)(g, (const float *)x, out, buf, P, ntiles_row, final);
}

/* in[0] = x (f32 or f16, any layout); out[0] = i64 indices, x's shape with i[2] along dim;
 * i = {dim, descending, keep} */
static void sort_op(const vg_opcall *c) {
  const vg_tensor *x = c->in[0];
  vg_tensor *out = c->out[0];
  cudaStream_t s = vg_cuda_stream();
  VG_ASSERT(x->dtype == VG_F32 || x->dtype == VG_F16);
  if (out->dtype != VG_I64) VG_ABORT("sort: bad output");
  sort_geom g;
  memset(&g, 0, sizeof g);
  g.desc = c->p.sort.descending;
  g.keep = c->p.sort.keep;
  if (x->ndim == 0) {
    if (g.keep) VG_CUDA_CHECK(cudaMemsetAsync(vg_data(out), 0, sizeof(int64_t), s));
    return;
  }
  int dim = (int)c->p.sort.dim;
  g.len = x->shape[dim];
  if (g.keep > g.len) VG_ABORT("sort: bad output");
  g.nrows = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (d == dim) continue;
    g.oshape[g.nouter] = x->shape[d];
    g.xstride[g.nouter] = x->stride[d];
    g.ostride[g.nouter++] = out->stride[d];
    g.nrows *= x->shape[d];
  }
  g.xs = x->stride[dim];
  g.os = out->stride[dim];
  if (g.nrows == 0 || g.len == 0 || g.keep == 0) return;
  if (g.len >= (int64_t)0xffffffff) VG_ABORT("sort: rows of %lld elements; the CUDA sort takes < 2^32", (long long)g.len);
  const void *xp = vg_data(x);
  const bool half = vg_cu_is_half(x);
  int64_t *op = (int64_t *)vg_data(out);
  if (g.len <= SORT_TILE) {
    int P = 2;
    while (P < g.len) P <<= 1;
    int threads = P / 2 < 32 ? 32 : (P / 2 > 1024 ? 1024 : P / 2);
    unsigned nb = (unsigned)(g.nrows < 65535 * 16 ? g.nrows : 65535 * 16);
    sort_tiles(half, nb, threads, (size_t)P * sizeof(unsigned long long), g, xp, op, NULL, P, 1, 1);
    VG_CUDA_LAUNCHED("sort");
    return;
  }
  int64_t n = g.nrows * g.len, ntiles_row = (g.len + SORT_TILE - 1) / SORT_TILE, ntiles = g.nrows * ntiles_row;
  unsigned long long *a = (unsigned long long *)vg_cuda_alloc((size_t)n * sizeof(unsigned long long));
  unsigned long long *b = (unsigned long long *)vg_cuda_alloc((size_t)n * sizeof(unsigned long long));
  unsigned nb = (unsigned)(ntiles < 65535 * 16 ? ntiles : 65535 * 16);
  sort_tiles(half, nb, 1024, SORT_TILE * sizeof(unsigned long long), g, xp, op, a, SORT_TILE, ntiles_row, 0);
  VG_CUDA_LAUNCHED("sort tiles");
  unsigned long long *sorted = merge_rows(a, b, g.nrows, g.len);
  VG_CU_LAUNCH(k_sort_write, vg_cu_blocks(g.nrows * g.keep, THREADS), THREADS, 0, s)(g, sorted, op);
  VG_CUDA_LAUNCHED("sort write");
  vg_cuda_free(a);   /* the stream is in order: later kernels that reuse them run after */
  vg_cuda_free(b);
}

void vg_cu_kthvalue(const vg_opcall *c) { kthvalue(c); }
void vg_cu_sort(const vg_opcall *c) { sort_op(c); }
