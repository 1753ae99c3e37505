/* kmath/philox.h — Philox4x32-10 (Salmon et al. 2011), counter-based, and the numbers
 * Vigil draws from it, written once for the CPU (tensor/cpu/random.c, ops_random.c's
 * randperm through vg_philox_u32_at) and the CUDA kernels (tensor/cuda/random.cu).
 * Element i of a tensor drawn with seed s reads counter (i / 4 or i / 2, stream), key s,
 * so it is the same on any thread count and either backend: uniform numbers are
 * bit-identical; normal numbers go through logf/cosf/sqrtf, whose CUDA versions differ
 * from glibc's by a few ulp. Streams: 0 uniform, 1 normal, 2 raw u32. */
#ifndef VG_KMATH_PHILOX_H
#define VG_KMATH_PHILOX_H
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include "tensor/hd.h"

typedef struct { uint32_t v[4]; } vg_philox4;

static inline VG_HD vg_philox4 vg_philox(uint64_t ctr, uint32_t stream, uint64_t key) {
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
  vg_philox4 r = {{c0, c1, c2, c3}};
  return r;
}

/* uniform in [0, 1) with 24 random bits */
static inline VG_HD float vg_philox_u01(uint32_t u) { return (float)(u >> 8) * (1.0f / 16777216.0f); }

/* element i of seed's uniform [0, 1) stream */
static inline VG_HD float vg_philox_uniform_at(uint64_t seed, uint64_t i) {
  return vg_philox_u01(vg_philox(i >> 2, 0, seed).v[i & 3]);
}

/* element i of seed's standard normal stream (Box-Muller on one pair of words) */
static inline VG_HD float vg_philox_normal_at(uint64_t seed, uint64_t i) {
  vg_philox4 r = vg_philox(i >> 1, 1, seed);
  int h = (int)(i & 1) * 2;
  float u1 = ((float)(r.v[h] >> 8) + 1.0f) * (1.0f / 16777216.0f); /* (0, 1] */
  float u2 = vg_philox_u01(r.v[h + 1]);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2);
}

/* element i of seed's raw 32-bit stream (randperm's keys) */
static inline VG_HD uint32_t vg_philox_u32_at(uint64_t seed, uint64_t i) { return vg_philox(i >> 2, 2, seed).v[i & 3]; }

/* the value RAND_UNIFORM (uniform in [a, b)) or RAND_NORMAL (mean a, std b) stores at i */
static inline VG_HD float vg_philox_draw(bool normal, uint64_t seed, uint64_t i, float a, float b) {
  return normal ? a + b * vg_philox_normal_at(seed, i) : a + (b - a) * vg_philox_uniform_at(seed, i);
}
#endif
