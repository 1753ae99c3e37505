/* norm.cu — the CUDA kernels of the norm family: softmax, log_softmax, layer_norm and their
 * fused backward ops (tensor/ops.def). One block per row (a row: the elements along the
 * softmax dim, stride `inner`, or the last N elements for layer_norm); the block's threads
 * walk the row with a stride and combine in a tree: max in f32 (NaN propagates), sums in
 * double. Element math in tensor/kmath/norm.h, the same functions as tensor/cpu/norm.c, so
 * results agree with the CPU to the summation order. The forward ops take f32 or f16
 * (f16.cuh: computed in f32, rounded once; layer_norm's weight, bias and statistics f32);
 * the backward ops f32. layer_norm's gw, gb: one thread per column, rows summed in order. */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/f16.cuh"
#include "tensor/kmath/norm.h"
#include <math.h>

#define THREADS 128

__device__ __forceinline__ double block_sum(double v, double *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

__device__ __forceinline__ float block_max(float v, float *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) sh[threadIdx.x] = vg_nm_max(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  float r = sh[0];
  __syncthreads();
  return r;
}

/* softmax / log_softmax of rows (outer, n, inner) */
template <typename T>
__global__ void k_softmax(int op, const T *x, T *out, int64_t nrows, int64_t n, int64_t inner) {
  __shared__ double sh[THREADS];
  __shared__ float shm[THREADS];
  for (int64_t row = blockIdx.x; row < nrows; row += gridDim.x) {
    int64_t base = (row / inner) * n * inner + row % inner;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = vg_nm_max(m, vg_ld(x + base + i * inner));
    m = block_max(m, shm);
    double acc = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += vg_nm_exp_shifted(vg_ld(x + base + i * inner), m);
    double s = block_sum(acc, sh);
    if (op == VG_OP_SOFTMAX) {
      float sf = (float)s;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        int64_t k = base + i * inner;
        vg_st(out + k, vg_nm_softmax(vg_nm_exp_shifted(vg_ld(x + k), m), sf));
      }
    } else {
      float ls = vg_nm_logsum(s);
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        int64_t k = base + i * inner;
        vg_st(out + k, vg_nm_log_softmax(vg_ld(x + k), m, ls));
      }
    }
  }
}

/* softmax_bwd / log_softmax_bwd: g, y -> gx (f32) */
__global__ void k_softmax_bwd(int op, const float *g, const float *y, float *out, int64_t nrows, int64_t n,
                              int64_t inner) {
  __shared__ double sh[THREADS];
  for (int64_t row = blockIdx.x; row < nrows; row += gridDim.x) {
    int64_t base = (row / inner) * n * inner + row % inner;
    double acc = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      int64_t k = base + i * inner;
      acc += op == VG_OP_SOFTMAX_BWD ? (double)(g[k] * y[k]) : (double)g[k];
    }
    float t = (float)block_sum(acc, sh);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      int64_t k = base + i * inner;
      out[k] = op == VG_OP_SOFTMAX_BWD ? vg_nm_softmax_bwd(g[k], y[k], t) : vg_nm_log_softmax_bwd(g[k], y[k], t);
    }
  }
}

/* layer_norm rows of N: y, and the rows' mean and rstd */
template <typename T>
__global__ void k_layer_norm(const T *x, const float *w, const float *b, T *y, float *mean, float *rstd, int64_t R,
                             int64_t N, float eps, float inv) {
  __shared__ double sh[THREADS];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T *xr = x + r * N;
    double acc = 0;
    for (int64_t k = threadIdx.x; k < N; k += blockDim.x) acc += vg_ld(xr + k);
    float mu = vg_nm_mean(block_sum(acc, sh), inv);
    acc = 0;
    for (int64_t k = threadIdx.x; k < N; k += blockDim.x) acc += vg_nm_sq_dev(vg_ld(xr + k), mu);
    float rs = vg_nm_rstd(vg_nm_mean(block_sum(acc, sh), inv), eps);
    for (int64_t k = threadIdx.x; k < N; k += blockDim.x) vg_st(y + r * N + k, vg_nm_ln_y(vg_ld(xr + k), mu, rs, w, b, k));
    if (threadIdx.x == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
  }
}

/* layer_norm_bwd, gx: rows of N */
__global__ void k_layer_norm_bwd_x(const float *g, const float *x, const float *w, const float *mean, const float *rstd,
                                   float *gx, int64_t R, int64_t N, float inv) {
  __shared__ double sh[THREADS];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float *gr_ = g + r * N, *xr = x + r * N;
    float *o = gx + r * N, mu = mean[r], rs = rstd[r];
    double acc = 0;
    for (int64_t k = threadIdx.x; k < N; k += blockDim.x) acc += vg_nm_ln_gr_term(gr_[k], w, k, xr[k], mu);
    float gs2 = vg_nm_ln_gs2((float)block_sum(acc, sh), rs, inv);
    acc = 0;
    for (int64_t k = threadIdx.x; k < N; k += blockDim.x) {
      o[k] = vg_nm_ln_gd(vg_nm_ln_gyh(gr_[k], w, k), xr[k] - mu, rs, gs2);
      acc += (double)-o[k];
    }
    float gs1 = vg_nm_mean((double)(float)block_sum(acc, sh), inv);
    for (int64_t k = threadIdx.x; k < N; k += blockDim.x) o[k] = o[k] + gs1;
  }
}

/* layer_norm_bwd, gw = sum over rows of g yh, gb = sum of g: one thread per column */
__global__ void k_layer_norm_bwd_wb(const float *g, const float *x, const float *mean, const float *rstd, float *gw,
                                    float *gb, int64_t R, int64_t N) {
  VG_CU_GRID_LOOP(c, N) {
    double aw = 0, ab = 0;
    for (int64_t r = 0; r < R; r++) {
      float gv = g[r * N + c];
      aw += vg_nm_ln_gw_term(gv, x[r * N + c], mean[r], rstd[r]);
      ab += gv;
    }
    if (gw) gw[c] = (float)aw;
    if (gb) gb[c] = (float)ab;
  }
}

static float *fp(const vg_tensor *t) { return (float *)vg_data(t); }   /* device f32 data */
static unsigned row_grid(int64_t rows) { return (unsigned)(rows < 65535 * 16 ? (rows < 1 ? 1 : rows) : 65535 * 16); }

static void softmax_family(const vg_opcall *c) {
  const vg_tensor *x = c->in[0];
  int d = (int)c->p.dim.dim;
  int64_t outer = 1, inner = 1, n = x->ndim ? x->shape[d] : 1;
  for (int i = 0; i < d; i++) outer *= x->shape[i];
  for (int i = d + 1; i < x->ndim; i++) inner *= x->shape[i];
  int64_t rows = outer * inner;
  if (rows * n == 0) return;
  cudaStream_t s = vg_cuda_stream();
  if (c->op == VG_OP_SOFTMAX_BWD || c->op == VG_OP_LOG_SOFTMAX_BWD) {
    VG_ASSERT(x->dtype == VG_F32 && c->in[1]->dtype == VG_F32);
    VG_CU_LAUNCH(k_softmax_bwd, row_grid(rows), THREADS, 0, s)((int)c->op, fp(x), fp(c->in[1]),
                                                              fp(c->out[0]), rows, n, inner);
  } else if (vg_cu_is_half(x)) {
    VG_CU_LAUNCH(k_softmax<vg_half>, row_grid(rows), THREADS, 0, s)(
        (int)c->op, (const vg_half *)vg_data(x), (vg_half *)vg_data(c->out[0]), rows, n, inner);
  } else {
    VG_CU_LAUNCH(k_softmax<float>, row_grid(rows), THREADS, 0, s)((int)c->op, fp(x), fp(c->out[0]), rows, n,
                                                                  inner);
  }
  VG_CUDA_LAUNCHED(vg_op_name(c->op));
}

static void layer_norm(const vg_opcall *c) {
  const vg_layer_norm_params *p = &c->p.layer_norm;
  bool bwd = c->op == VG_OP_LAYER_NORM_BWD;
  const vg_tensor *x = c->in[bwd ? 1 : 0], *w = c->in[bwd ? 3 : 1], *b = bwd ? NULL : c->in[2];
  int64_t N = 1;
  for (int i = x->ndim - (int)p->nnorm; i < x->ndim; i++) N *= x->shape[i];
  int64_t R = N ? vg_numel(x) / N : 0;
  float inv = N ? 1.0f / (float)N : NAN;
  const float *pw = w ? fp(w) : NULL, *pb = b ? fp(b) : NULL;
  const vg_tensor *stats = bwd ? c->in[2] : c->out[1];
  float *mean = (float *)fp(stats), *rstd = mean + R;
  cudaStream_t s = vg_cuda_stream();
  if (!bwd) {
    if (R == 0 || N == 0) return;   /* N == 0: nothing to normalize (no output elements) */
    if (vg_cu_is_half(x))
      VG_CU_LAUNCH(k_layer_norm<vg_half>, row_grid(R), THREADS, 0, s)(
          (const vg_half *)vg_data(x), pw, pb, (vg_half *)vg_data(c->out[0]), mean, rstd, R, N, (float)p->eps, inv);
    else
      VG_CU_LAUNCH(k_layer_norm<float>, row_grid(R), THREADS, 0, s)(fp(x), pw, pb, fp(c->out[0]), mean, rstd, R,
                                                                    N, (float)p->eps, inv);
    VG_CUDA_LAUNCHED("layer_norm");
    return;
  }
  const float *g = fp(c->in[0]);
  if (R == 0 || N == 0) {
    if (c->out[1] && N) VG_CUDA_CHECK(cudaMemsetAsync(vg_data(c->out[1]), 0, sizeof(float) * 2 * (size_t)N, s));
    return;
  }
  if (p->grad_x) {
    VG_CU_LAUNCH(k_layer_norm_bwd_x, row_grid(R), THREADS, 0, s)(g, fp(x), pw, mean, rstd, fp(c->out[0]), R, N,
                                                                 inv);
    VG_CUDA_LAUNCHED("layer_norm_bwd (x)");
  }
  if (p->grad_w || p->grad_b) {
    float *gw = p->grad_w ? fp(c->out[1]) : NULL, *gb = p->grad_b ? fp(c->out[1]) + N : NULL;
    VG_CU_LAUNCH(k_layer_norm_bwd_wb, vg_cu_blocks(N, 256), 256, 0, s)(g, fp(x), mean, rstd, gw, gb, R, N);
    VG_CUDA_LAUNCHED("layer_norm_bwd (weight, bias)");
  }
}

/* softmax, log_softmax and their backward ops (softmax_family tells them apart with no default) */
void vg_cu_softmax(const vg_opcall *c) { softmax_family(c); }
/* layer_norm and layer_norm_bwd */
void vg_cu_layer_norm(const vg_opcall *c) { layer_norm(c); }
