/* reduce.cu — sum / amax / amin over a dim mask, argmax over one dim.
 * One block per output element; the block walks the reduced elements with strided
 * indexing and combines in a tree. Sums accumulate in double (as the CPU backend;
 * the order differs, so results agree to f32 rounding, not bit for bit). NaN
 * propagates through amax/amin. f32 or f16 input (f16.cuh), the output in the input's
 * dtype: f16 sums accumulate in double too and round once at the end. */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/f16.cuh"
#include "tensor/kmath/bits.h"
#include "tensor/kmath/reduce.h"
#include <math.h>

#define THREADS 256

typedef struct {
  int nk, nr;
  int64_t kshape[VG_MAX_DIMS], kstride[VG_MAX_DIMS];
  int64_t rshape[VG_MAX_DIMS], rstride[VG_MAX_DIMS];
  int64_t nred;
} red_geom;

__device__ __forceinline__ double combine(int op, double a, double b) { return vg_reduce_combine(op, a, b); }

template <typename T>
__global__ void k_reduce(red_geom g, int op, const T *x, T *out, double init) {
  __shared__ double sh[THREADS];
  int64_t o = blockIdx.x, base = vg_unravel_offset(o, g.nk, g.kshape, g.kstride);
  double acc = init;
  for (int64_t r = threadIdx.x; r < g.nred; r += blockDim.x) {
    acc = combine(op, acc, (double)vg_ld(x + base + vg_unravel_offset(r, g.nr, g.rshape, g.rstride)));
  }
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) sh[threadIdx.x] = combine(op, sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) vg_st(out + o, (float)sh[0]);
}

template <typename T>
__global__ void k_argmax(int ndim, red_geom g, int64_t n, int64_t s, const T *x, int64_t *out, int64_t nout) {
  VG_CU_GRID_LOOP(o, nout) {
    int64_t off = vg_unravel_offset(o, g.nk, g.kshape, g.kstride), best = 0;
    float bv = vg_ld(x + off);
    for (int64_t i = 1; i < n && bv == bv; i++) vg_argmax_step(vg_ld(x + off + i * s), i, &bv, &best);
    out[o] = best;
  }
}

void vg_cu_reduce(const vg_opcall *c) {
  const vg_tensor *x = c->in[0];
  int64_t nout = vg_numel(c->out[0]);
  if (nout == 0) return;
  red_geom g;
  memset(&g, 0, sizeof g);
  cudaStream_t s = vg_cuda_stream();
  if (c->op == VG_OP_ARGMAX) {
    int dim = (int)c->p.argmax.dim;
    for (int d = 0; d < x->ndim; d++)
      if (d != dim) {
        g.kshape[g.nk] = x->shape[d];
        g.kstride[g.nk++] = x->stride[d];
      }
    if (vg_cu_is_half(x))
      VG_CU_LAUNCH(k_argmax<vg_half>, vg_cu_blocks(nout, THREADS), THREADS, 0, s)(
          x->ndim, g, x->shape[dim], x->stride[dim], (const vg_half *)vg_data(x), (int64_t *)vg_data(c->out[0]), nout);
    else
      VG_CU_LAUNCH(k_argmax<float>, vg_cu_blocks(nout, THREADS), THREADS, 0, s)(
          x->ndim, g, x->shape[dim], x->stride[dim], (const float *)vg_data(x), (int64_t *)vg_data(c->out[0]), nout);
    VG_CUDA_LAUNCHED("argmax");
    return;
  }
  unsigned mask = (unsigned)c->p.reduce.mask;
  g.nred = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (mask >> d & 1) {
      g.rshape[g.nr] = x->shape[d];
      g.rstride[g.nr++] = x->stride[d];
      g.nred *= x->shape[d];
    } else {
      g.kshape[g.nk] = x->shape[d];
      g.kstride[g.nk++] = x->stride[d];
    }
  }
  double init = vg_reduce_init((int)c->op);
  VG_ASSERT(nout <= 0x7fffffff);
  VG_ASSERT(c->out[0]->dtype == x->dtype);
  if (vg_cu_is_half(x))
    VG_CU_LAUNCH(k_reduce<vg_half>, (unsigned)nout, THREADS, 0, s)(g, (int)c->op, (const vg_half *)vg_data(x),
                                                                  (vg_half *)vg_data(c->out[0]), init);
  else
    VG_CU_LAUNCH(k_reduce<float>, (unsigned)nout, THREADS, 0, s)(g, (int)c->op, (const float *)vg_data(x),
                                                                (float *)vg_data(c->out[0]), init);
  VG_CUDA_LAUNCHED(vg_op_name(c->op));
}
