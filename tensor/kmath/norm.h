/* kmath/norm.h — the element math of the normalization ops (softmax, log_softmax,
 * layer_norm and their backward ops), written once for tensor/cpu/norm.c and
 * tensor/cuda/norm.cu (no FMA contraction on either: C11 on the CPU, nvcc --fmad=false).
 * The kernels own the reductions (sums in double); these functions are what is done with
 * each element once the row's statistics are known.
 *
 * layer_norm does, step by step, what the composite it replaced did (vg_mean = sum * (1/n)
 * as an affine op, d = x - mean, var = mean(d d), rstd = 1 / sqrt(1 var + eps), y = d rstd
 * w + b), and its backward the composite's autograd rules in their order, so a model
 * that used it (FastFlow's LayerNorm) gets the same bits on the CPU. */
#ifndef VG_KMATH_NORM_H
#define VG_KMATH_NORM_H
#include <math.h>
#include <stdbool.h>
#include "tensor/hd.h"
#include "tensor/vmath.h"

/* ---- softmax / log_softmax along a row with max m ---- */
/* NaN-propagating max, as torch's (a NaN anywhere makes the row NaN) */
static inline VG_HD float vg_nm_max(float m, float v) { return m != m ? m : (v > m || v != v ? v : m); }
static inline VG_HD float vg_nm_shift(float v, float m) { return v - m; }
static inline VG_HD float vg_nm_exp_shifted(float v, float m) { return vg_expf(vg_nm_shift(v, m)); }   /* all -inf: NaN, as torch */
static inline VG_HD float vg_nm_softmax(float e, float sum) { return e / sum; }
static inline VG_HD float vg_nm_logsum(double sum) { return (float)log(sum); }
static inline VG_HD float vg_nm_log_softmax(float v, float m, float logsum) { return (v - m) - logsum; }
/* backward: dot = sum(g y) for softmax, gsum = sum(g) for log_softmax */
static inline VG_HD float vg_nm_softmax_bwd(float g, float y, float dot) { return y * (g - dot); }
static inline VG_HD float vg_nm_log_softmax_bwd_e(float g, float ey, float gsum) { return g - ey * gsum; }
static inline VG_HD float vg_nm_log_softmax_bwd(float g, float y, float gsum) { return vg_nm_log_softmax_bwd_e(g, vg_expf(y), gsum); }

/* ---- layer_norm ---- */
/* a mean from its double sum: vg_scale(sum, 1/n) = (1/n) (float)sum + 0 */
static inline VG_HD float vg_nm_mean(double sum, float inv_n) { return inv_n * (float)sum + 0.0f; }
static inline VG_HD float vg_nm_sq_dev(float x, float mean) {   /* d d, d = x - mean: var's terms */
  float d = x - mean;
  return d * d;
}
static inline VG_HD float vg_nm_rstd(float var, float eps) { return 1.0f / sqrtf(1.0f * var + eps); }
static inline VG_HD float vg_nm_ln_yh(float x, float mean, float rstd) { return (x - mean) * rstd; }
static inline VG_HD float vg_nm_ln_y(float x, float mean, float rstd, const float *w, const float *b, long long j) {
  float y = vg_nm_ln_yh(x, mean, rstd);
  if (w) y = y * w[j];
  if (b) y = y + b[j];
  return y;
}
/* backward, per row: gyh = g w (g without weight), d = x - mean;
 *   A = gyh rstd, gr = sum(gyh d), gs2 = (1/n) (1 (gr (-0.5 r (r r) + 0)) + 0) + 0,
 *   B = gs2 d, gd = (A + B) + B, gs1 = (1/n) sum(-gd) + 0, gx = gd + gs1 */
static inline VG_HD float vg_nm_ln_gyh(float g, const float *w, long long j) { return w ? g * w[j] : g; }
static inline VG_HD float vg_nm_ln_gr_term(float g, const float *w, long long j, float x, float mean) {   /* gyh d */
  return vg_nm_ln_gyh(g, w, j) * (x - mean);
}
static inline VG_HD float vg_nm_ln_gw_term(float g, float x, float mean, float rstd) {   /* gw's terms: g yh */
  return g * vg_nm_ln_yh(x, mean, rstd);
}
static inline VG_HD float vg_nm_ln_gs2(float gr, float rstd, float inv_n) {
  float t = -0.5f * (rstd * (rstd * rstd)) + 0.0f;
  float gve = gr * t;
  float gvar = 1.0f * gve + 0.0f;
  return inv_n * gvar + 0.0f;
}
static inline VG_HD float vg_nm_ln_gd(float gyh, float d, float rstd, float gs2) {
  float a = gyh * rstd, b = gs2 * d;
  return (a + b) + b;
}
#endif
