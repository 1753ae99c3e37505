/* random.cu — rand_uniform / rand_normal with Philox4x32-10, the same function as
 * tensor/cpu/random.c: element i (row-major logical index) of a tensor drawn with
 * seed s gets the same 32-bit words on both backends, so uniform numbers are
 * bit-identical; normal numbers go through logf/cosf/sqrtf, whose CUDA versions
 * differ from glibc's by a few ulp. */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/vmath.cuh"

#define THREADS 256

struct philox4 { uint32_t v[4]; };

__device__ __forceinline__ philox4 philox(uint64_t ctr, uint32_t stream, uint64_t key) {
  uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = stream, c3 = 0;
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  philox4 r = {{c0, c1, c2, c3}};
  return r;
}

__device__ __forceinline__ float u01(uint32_t u) { return (float)(u >> 8) * (1.0f / 16777216.0f); }

__global__ void k_random(vg_cu_iter it, int normal, uint64_t seed, float a, float s, char *o, int dt, int es) {
  /* it has one operand and is NOT coalesced across dims, so i is the logical index */
  VG_CU_GRID_LOOP(i, it.n) {
    int64_t off = 0, q = i;
    for (int d = it.ndim - 1; d >= 0; d--) {
      off += (q % it.shape[d]) * it.stride[0][d];
      q /= it.shape[d];
    }
    float v;
    if (!normal) v = a + (s - a) * u01(philox((uint64_t)i >> 2, 0, seed).v[i & 3]);
    else {
      philox4 r = philox((uint64_t)i >> 1, 1, seed);
      int h = (int)(i & 1) * 2;
      float u1 = ((float)(r.v[h] >> 8) + 1.0f) * (1.0f / 16777216.0f);
      float u2 = u01(r.v[h + 1]);
      v = a + s * (sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2));
    }
    vg_d_store(o + off * es, dt, v);
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
      it, c->op == VG_OP_RAND_NORMAL, (uint64_t)c->i[0], (float)c->f[0], (float)c->f[1], (char *)vg_data(t),
      (int)t->dtype, (int)vg_dtype_size(t->dtype));
  VG_CUDA_LAUNCHED(vg_op_name(c->op));
}
