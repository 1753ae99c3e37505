/* random.cu — rand_uniform / rand_normal: element i (row-major logical index) gets
 * vg_philox_draw (tensor/kmath/philox.h, shared with tensor/cpu/random.c), so uniform
 * numbers are bit-identical to the CPU's; normal numbers go through logf/cosf/sqrtf,
 * whose CUDA versions differ from glibc's by a few ulp. */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/vmath.cuh"
#include "tensor/kmath/bits.h"
#include "tensor/kmath/philox.h"

#define THREADS 256

__global__ void k_random(vg_cu_iter it, int normal, uint64_t seed, float a, float s, char *o, int dt, int es) {
  /* it has one operand and is NOT coalesced across dims, so i is the logical index */
  VG_CU_GRID_LOOP(i, it.n) {
    int64_t off = vg_unravel_offset(i, it.ndim, it.shape, it.stride[0]);
    vg_d_store(o + off * es, dt, vg_philox_draw(normal, seed, (uint64_t)i, a, s));
  }
}

void vg_cu_random(const vg_opcall *c) {
  const vg_tensor *t = c->out[0];
  vg_cu_iter it;
  memset(&it, 0, sizeof it);
  it.nop = 1;
  it.n = vg_numel(t);
  it.ndim = t->ndim ? t->ndim : 1;
  it.shape[0] = 1;
  for (int d = 0; d < t->ndim; d++) {
    it.shape[d] = t->shape[d];
    it.stride[0][d] = t->stride[d];
  }
  if (it.n == 0) return;
  VG_CU_LAUNCH(k_random, vg_cu_blocks(it.n, THREADS), THREADS, 0, vg_cuda_stream())(
      it, c->op == VG_OP_RAND_NORMAL, c->p.rand.seed, (float)c->p.rand.a, (float)c->p.rand.b, (char *)vg_data(t),
      (int)t->dtype, (int)vg_dtype_size(t->dtype));
  VG_CUDA_LAUNCHED(vg_op_name(c->op));
}
