/* optim.c — the CPU backend's optimizer updates (the backend table's optim_update): the
 * element functions of tensor/optim_upd.h (shared with tensor/cuda/optim.cu) looped here
 * and compiled twice: with the FMA instruction set (fmaf inlines to vfmadd) and plain
 * (fmaf from libm, same results, slower). */
#include "tensor/cpu/kernels.h"
#include "tensor/optim_upd.h"

static inline __attribute__((always_inline)) void sgd_body(const vg_upd *u) {
  for (int64_t i = 0; i < u->n; i++) vg_sgd_elem(u, i);
}
static inline __attribute__((always_inline)) void adam_body(const vg_upd *u) {
  for (int64_t i = 0; i < u->n; i++) vg_adam_elem(u, i);
}

__attribute__((target("fma"))) static void sgd_fma(const vg_upd *u) { sgd_body(u); }
__attribute__((target("fma"))) static void adam_fma(const vg_upd *u) { adam_body(u); }
static void sgd_plain(const vg_upd *u) { sgd_body(u); }
static void adam_plain(const vg_upd *u) { adam_body(u); }

static bool have_fma(void) {
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init();
    cached = __builtin_cpu_supports("fma") ? 1 : 0;
  }
  return cached;
}

void vg_cpu_optim_update(const vg_optim_update *u) {
  const bool fma = have_fma();
  for (int k = 0; k < u->n; k++) {
    const vg_upd *e = &u->ups[k];
    switch (u->kind) {
      case VG_UPD_SGD: fma ? sgd_fma(e) : sgd_plain(e); break;
      case VG_UPD_ADAM: fma ? adam_fma(e) : adam_plain(e); break;
    }
  }
}
