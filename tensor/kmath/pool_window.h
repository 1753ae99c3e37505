/* kmath/pool_window.h — the pooling windows, written once for tensor/cpu/pool.c and
 * tensor/cuda/pool.cu (same bounds, divisors and order of operations, so the same bits).
 * Every H x W plane is pooled alike; strides are resolved by the front-end. Window of
 * output (oh, ow), as torch's CPU kernels:
 *   avg: h0 = oh*sh - ph, h1 = min(h0 + kh, H + ph); the divisor is that padded area
 *        (count_include_pad) or the area clamped to the input; summed over the clamp.
 *   max: h1 = min(h0 + kh, H), h0 clamped to 0; index = h*W + w of the first maximum
 *        (a NaN wins, as torch: vg_max_takes, tensor/kmath/reduce.h).
 *   adaptive: rows [floor(oh*H/OH), ceil((oh+1)*H/OH)), likewise columns. */
#ifndef VG_KMATH_POOL_WINDOW_H
#define VG_KMATH_POOL_WINDOW_H
#include <stdbool.h>
#include <stdint.h>
#include "tensor/kmath/bits.h"
#include "tensor/kmath/reduce.h"
#include "tensor/op_params.h"
#include "tensor/tensor.h"

typedef struct {
  int64_t planes, H, W, OH, OW, kh, kw, sh, sw, ph, pw;
  int include_pad;
} vg_pool_geom;

/* (host) the geometry of a pooling or resampling op: big is the input-shaped tensor (x
 * or its grad), small the output-shaped one; pp the pool params (NULL: none) */
static inline vg_pool_geom vg_pool_geom_of(const vg_tensor *big, const vg_tensor *small, const vg_pool_params *pp) {
  vg_pool_geom g;
  memset(&g, 0, sizeof g);
  int nd = big->ndim;
  g.H = big->shape[nd - 2];
  g.W = big->shape[nd - 1];
  g.OH = small->shape[nd - 2];
  g.OW = small->shape[nd - 1];
  g.planes = 1;
  for (int d = 0; d < nd - 2; d++) g.planes *= big->shape[d];
  if (pp) {
    g.kh = pp->kh; g.kw = pp->kw; g.sh = pp->sh; g.sw = pp->sw; g.ph = pp->ph; g.pw = pp->pw;
    g.include_pad = pp->count_include_pad;
  }
  return g;
}

/* avg window of output (oh, ow): clamped bounds [h0, h1) x [w0, w1) and the divisor */
static inline VG_HD float vg_avg_window(const vg_pool_geom *p, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                                        int64_t *w0, int64_t *w1) {
  int64_t hs = oh * p->sh - p->ph, ws = ow * p->sw - p->pw;
  int64_t he = vg_imin64(hs + p->kh, p->H + p->ph), we = vg_imin64(ws + p->kw, p->W + p->pw);
  int64_t pool = (he - hs) * (we - ws);
  *h0 = vg_imax64(hs, 0);
  *w0 = vg_imax64(ws, 0);
  *h1 = vg_imin64(he, p->H);
  *w1 = vg_imin64(we, p->W);
  return (float)(p->include_pad ? pool : (*h1 - *h0) * (*w1 - *w0));
}

/* max window of output (oh, ow): [h0, h1) x [w0, w1) */
static inline VG_HD void vg_max_window(const vg_pool_geom *p, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                                       int64_t *w0, int64_t *w1) {
  int64_t hs = oh * p->sh - p->ph, ws = ow * p->sw - p->pw;
  *h1 = vg_imin64(hs + p->kh, p->H);
  *w1 = vg_imin64(ws + p->kw, p->W);
  *h0 = vg_imax64(hs, 0);
  *w0 = vg_imax64(ws, 0);
}

/* adaptive window of output i along an axis resized in -> out: [start, end) */
static inline VG_HD int64_t vg_adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
static inline VG_HD int64_t vg_adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

/* an adaptive window's mean (or its share of the output grad) from the sum s */
static inline VG_HD float vg_adaptive_mean(float s, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
  return s / (float)(h1 - h0) / (float)(w1 - w0);
}
#endif
