/* random.c — Philox4x32-10 (Salmon et al. 2011), counter-based: element i of a tensor
 * drawn with seed s gets the numbers of counter (i / 4 block, stream), key s — the
 * same on any thread count and any backend that implements the same function. */
#include "tensor/cpu/kernels.h"
#include "base/threadpool.h"
#include <math.h>

typedef struct { uint32_t v[4]; } vg_philox4;

static vg_philox4 philox(uint64_t ctr, uint32_t stream, uint64_t key) {
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
  return (vg_philox4){{c0, c1, c2, c3}};
}

/* uniform in [0, 1) with 24 random bits */
static float u01(uint32_t u) { return (float)(u >> 8) * (1.0f / 16777216.0f); }

float vg_philox_uniform(uint64_t seed, uint64_t i) { return u01(philox(i >> 2, 0, seed).v[i & 3]); }

float vg_philox_normal(uint64_t seed, uint64_t i) {
  vg_philox4 r = philox(i >> 1, 1, seed);
  int h = (int)(i & 1) * 2;
  float u1 = ((float)(r.v[h] >> 8) + 1.0f) * (1.0f / 16777216.0f); /* (0, 1] */
  float u2 = u01(r.v[h + 1]);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2);
}

uint32_t vg_philox_u32(uint64_t seed, uint64_t i) { return philox(i >> 2, 2, seed).v[i & 3]; }

typedef struct {
  const vg_opcall *c;
  vg_tensor *out;
} rnd_ctx;

static void fill_range(void *p, int64_t b, int64_t e, int tid) {
  (void)tid;
  const rnd_ctx *r = p;
  const vg_tensor *t = r->out;
  uint64_t seed = (uint64_t)r->c->i[0];
  float a = (float)r->c->f[0], s = (float)r->c->f[1];
  char *base = vg_data(t);
  size_t es = vg_dtype_size(t->dtype);
  for (int64_t i = b; i < e; i++) {
    /* logical (row-major) index i -> storage offset */
    int64_t off = 0, q = i;
    for (int d = t->ndim - 1; d >= 0; d--) {
      off += (q % t->shape[d]) * t->stride[d];
      q /= t->shape[d];
    }
    float v = r->c->op == VG_OP_RAND_UNIFORM ? a + (s - a) * vg_philox_uniform(seed, (uint64_t)i)
                                             : a + s * vg_philox_normal(seed, (uint64_t)i);
    vg_store_elem(base + off * (int64_t)es, t->dtype, v);
  }
}

void vg_cpu_random(const vg_opcall *c) {
  rnd_ctx r = {c, c->out[0]};
  vg_parallel_for(vg_numel(c->out[0]), 16384, fill_range, &r);
}
