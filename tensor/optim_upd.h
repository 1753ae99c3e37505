/* optim_upd.h — the per-element SGD / Adam(W) updates, written once for the CPU loops
 * (tensor/cpu/optim.c) and the CUDA kernels (tensor/cuda/optim.cu), so both devices give
 * the same bits; and the optimizer's way to them: nn/optim.c fills a vg_optim_update and
 * vg_optim_update_run hands it to the backend table's optim_update entry. torch's AVX2
 * kernels fuse `a + alpha * b` (add_ with alpha) and the product-then-add of addcmul_ into
 * FMAs; mirroring that with fmaf makes the updates bit-exact with torch on the same
 * grads (test_optim checks it). */
#ifndef VG_NN_OPTIM_UPD_H
#define VG_NN_OPTIM_UPD_H
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "tensor/hd.h"

typedef struct {
  int64_t n;
  float *p, *m, *v, *vmax;
  const float *g;
  bool maximize, l2, first, nesterov;
  float decay, wd, b1, omb1, b2, omb2, nss, bc2s, eps, mom, omd, nlr;
} vg_upd;

static inline VG_HD void vg_sgd_elem(const vg_upd *u, int64_t i) {
  float *p = u->p, *buf = u->m;
  float d = u->maximize ? -u->g[i] : u->g[i];
  if (u->l2) d = fmaf(p[i], u->wd, d);                          /* d.add(p, alpha=wd) */
  if (buf) {
    if (u->first) buf[i] = d;                                    /* clone(d) */
    else buf[i] = fmaf(d, u->omd, buf[i] * u->mom);              /* buf.mul_(mom).add_(d, alpha=1-damp) */
    d = u->nesterov ? fmaf(buf[i], u->mom, d) : buf[i];
  }
  p[i] = fmaf(d, u->nlr, p[i]);                                  /* p.add_(d, alpha=-lr) */
}

static inline VG_HD void vg_adam_elem(const vg_upd *u, int64_t i) {
  float *p = u->p, *m = u->m, *v = u->v, *vmax = u->vmax;
  if (u->decay != 1.0f) p[i] = p[i] * u->decay;                  /* AdamW: p.mul_(1 - lr wd) */
  float d = u->maximize ? -u->g[i] : u->g[i];
  if (u->l2) d = fmaf(p[i], u->wd, d);                           /* Adam: grad.add(p, alpha=wd) */
  m[i] = fmaf(d, u->omb1, m[i] * u->b1);                         /* m.mul_(b1).add_(g, alpha=1-b1) */
  v[i] = fmaf(u->omb2 * d, d, v[i] * u->b2);                     /* v.mul_(b2).addcmul_(g, g, 1-b2) */
  float vv = v[i];
  if (vmax) {
    if (vv > vmax[i] || vv != vv) vmax[i] = vv;                  /* torch.maximum (NaN wins) */
    vv = vmax[i];
  }
  float denom = sqrtf(vv) / u->bc2s + u->eps;                    /* (sqrt(v) / sqrt(bc2)).add_(eps) */
  p[i] = p[i] + u->nss * m[i] / denom;                           /* p.addcdiv_(m, denom, -lr/bc1) */
}

/* One optimizer step's updates: n parameters (ups[k], pointers on one device) of one kind,
 * run in order by the backend of that device (CUDA: stream-ordered kernels). */
typedef enum { VG_UPD_SGD, VG_UPD_ADAM } vg_upd_kind;   /* ADAM: Adam and AdamW (vg_upd.decay) */
typedef struct vg_optim_update {
  vg_upd_kind kind;
  int n;
  const vg_upd *ups;
} vg_optim_update;

#ifdef __cplusplus
extern "C" {
#endif
#include "tensor/tensor.h"
/* Runs u on dev's backend (tensor/dispatch.c); aborts when dev has none. */
void vg_optim_update_run(vg_device dev, const vg_optim_update *u);
#ifdef __cplusplus
}
#endif
#endif
