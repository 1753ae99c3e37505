/* random.c — rand_uniform / rand_normal on the CPU: element i (row-major logical index)
 * gets vg_philox_draw (tensor/kmath/philox.h, shared with tensor/cuda/random.cu), the
 * same on any thread count and either backend. A contiguous f32 output takes one Philox
 * block per 4 uniform / 2 normal elements (the words the elements read), in order, with
 * the same arithmetic per element: the same bits as the per-element path, 2-4x fewer
 * Philox rounds (the random init of a model is mostly this). */
#include "tensor/cpu/kernels.h"
#include "tensor/kmath/bits.h"
#include "tensor/kmath/philox.h"
#include "base/threadpool.h"

typedef struct {
  const vg_opcall *c;
  vg_tensor *out;
  bool contig_f32;
} rnd_ctx;

/* elements [b, e) of a contiguous f32 output */
static void fill_contig(float *o, bool normal, uint64_t seed, float a, float s, int64_t b, int64_t e) {
  const int per = normal ? 2 : 4;
  for (int64_t i = b; i < e;) {
    uint64_t ctr = (uint64_t)i / (uint64_t)per;
    vg_philox4 r = vg_philox(ctr, normal ? 1 : 0, seed);
    for (int64_t j = i - (int64_t)ctr * per; j < per && i < e; j++, i++) {
      if (!normal) {
        o[i] = a + (s - a) * vg_philox_u01(r.v[j]);
      } else {   /* vg_philox_normal_at on the pair (2j, 2j+1) */
        float u1 = ((float)(r.v[2 * j] >> 8) + 1.0f) * (1.0f / 16777216.0f);
        float u2 = vg_philox_u01(r.v[2 * j + 1]);
        o[i] = a + s * (sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2));
      }
    }
  }
}

static void fill_range(void *p, int64_t b, int64_t e, int tid) {
  (void)tid;
  const rnd_ctx *r = p;
  const vg_tensor *t = r->out;
  uint64_t seed = r->c->p.rand.seed;
  float a = (float)r->c->p.rand.a, s = (float)r->c->p.rand.b;
  bool normal = r->c->op == VG_OP_RAND_NORMAL;
  if (r->contig_f32) {
    fill_contig(vg_data(t), normal, seed, a, s, b, e);
    return;
  }
  char *base = vg_data(t);
  size_t es = vg_dtype_size(t->dtype);
  for (int64_t i = b; i < e; i++) {
    int64_t off = vg_unravel_offset(i, t->ndim, t->shape, t->stride);   /* logical index -> storage */
    float v = vg_philox_draw(normal, seed, (uint64_t)i, a, s);
    vg_store_elem(base + off * (int64_t)es, t->dtype, v);
  }
}

void vg_cpu_random(const vg_opcall *c) {
  rnd_ctx r = {c, c->out[0], c->out[0]->dtype == VG_F32 && vg_is_contiguous(c->out[0])};
  vg_parallel_for(vg_numel(c->out[0]), 16384, fill_range, &r);
}
