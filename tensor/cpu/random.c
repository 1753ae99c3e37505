/* random.c — rand_uniform / rand_normal on the CPU: element i (row-major logical index)
 * gets vg_philox_draw (tensor/kmath/philox.h, shared with tensor/cuda/random.cu), the
 * same on any thread count and either backend. */
#include "tensor/cpu/kernels.h"
#include "tensor/kmath/bits.h"
#include "tensor/kmath/philox.h"
#include "base/threadpool.h"

typedef struct {
  const vg_opcall *c;
  vg_tensor *out;
} rnd_ctx;

static void fill_range(void *p, int64_t b, int64_t e, int tid) {
  (void)tid;
  const rnd_ctx *r = p;
  const vg_tensor *t = r->out;
  uint64_t seed = r->c->p.rand.seed;
  float a = (float)r->c->p.rand.a, s = (float)r->c->p.rand.b;
  char *base = vg_data(t);
  size_t es = vg_dtype_size(t->dtype);
  for (int64_t i = b; i < e; i++) {
    int64_t off = vg_unravel_offset(i, t->ndim, t->shape, t->stride);   /* logical index -> storage */
    float v = vg_philox_draw(r->c->op == VG_OP_RAND_NORMAL, seed, (uint64_t)i, a, s);
    vg_store_elem(base + off * (int64_t)es, t->dtype, v);
  }
}

void vg_cpu_random(const vg_opcall *c) {
  rnd_ctx r = {c, c->out[0]};
  vg_parallel_for(vg_numel(c->out[0]), 16384, fill_range, &r);
}
