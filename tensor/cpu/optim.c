/* optim.c — the CPU backend's optimizer updates (the backend table's optim_update): the
 * element functions of tensor/optim_upd.h (shared with tensor/cuda/optim.cu) looped here
 * and compiled twice: with the FMA instruction set (fmaf inlines to vfmadd) and plain
 * (fmaf from libm, same results, slower). Each parameter's elements are split over the
 * thread pool; plain Adam (with or without L2, no AdamW decay, no amsgrad, not maximize: the
 * methods' optimizers) has its own loop with the fields hoisted, which the compiler vectorizes —
 * the same operations element by element (fmaf, sqrtf and division are exactly rounded in
 * any lane), so the same bits as vg_adam_elem. */
#include "tensor/cpu/kernels.h"
#include "tensor/optim_upd.h"
#include "base/threadpool.h"

/* GCC 12's -O2 cost model ("very cheap") leaves the Adam loop scalar (it would need an
 * epilogue): 9 cycles an element, the CFLOW training step's largest cost. Vectorized, the
 * loop is bound by memory. */
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")

static inline __attribute__((always_inline)) void sgd_body(const vg_upd *u, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; i++) vg_sgd_elem(u, i);
}
/* plain Adam, with or without the L2 term (Adam's weight_decay: d = g + wd p) */
static inline __attribute__((always_inline)) void adam_plain_loop(const vg_upd *u, int64_t b, int64_t e,
                                                                  const bool l2) {
  float *restrict p = u->p, *restrict m = u->m, *restrict v = u->v;
  const float *restrict g = u->g;
  const float b1 = u->b1, omb1 = u->omb1, b2 = u->b2, omb2 = u->omb2, bc2s = u->bc2s, eps = u->eps, nss = u->nss;
  const float wd = u->wd;
  for (int64_t i = b; i < e; i++) {
    float d = g[i];
    if (l2) d = fmaf(p[i], wd, d);
    float mi = fmaf(d, omb1, m[i] * b1);
    float vi = fmaf(omb2 * d, d, v[i] * b2);
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / bc2s + eps;
    p[i] = p[i] + nss * mi / denom;
  }
}

static inline __attribute__((always_inline)) void adam_body(const vg_upd *u, int64_t b, int64_t e) {
  if (u->decay == 1.0f && !u->maximize && !u->vmax) {
    if (u->l2) adam_plain_loop(u, b, e, true);
    else adam_plain_loop(u, b, e, false);
    return;
  }
  for (int64_t i = b; i < e; i++) vg_adam_elem(u, i);
}

__attribute__((target("avx2,fma"))) static void sgd_fma(const vg_upd *u, int64_t b, int64_t e) { sgd_body(u, b, e); }
__attribute__((target("avx2,fma"))) static void adam_fma(const vg_upd *u, int64_t b, int64_t e) { adam_body(u, b, e); }
static void sgd_plain(const vg_upd *u, int64_t b, int64_t e) { sgd_body(u, b, e); }
static void adam_plain(const vg_upd *u, int64_t b, int64_t e) { adam_body(u, b, e); }

static bool have_fma(void) {
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init();
    cached = __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  return cached;
}

typedef struct {
  const vg_upd *u;
  vg_upd_kind kind;
  bool fma;
} upd_job;

static void upd_range(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const upd_job *j = ctx;
  if (j->kind == VG_UPD_SGD) j->fma ? sgd_fma(j->u, b, e) : sgd_plain(j->u, b, e);
  else j->fma ? adam_fma(j->u, b, e) : adam_plain(j->u, b, e);
}

void vg_cpu_optim_update(const vg_optim_update *u) {
  const bool fma = have_fma();
  for (int k = 0; k < u->n; k++) {
    upd_job j = {.u = &u->ups[k], .kind = u->kind, .fma = fma};
    /* elements are independent: any split gives the same bits */
    vg_parallel_for(j.u->n, 1 << 15, upd_range, &j);
  }
}
