/* rank.h — internal to eval/: visits (score, class) entries as tie groups in
 * descending score order, the step every exact curve metric shares.
 *
 *   vg_rank r; vg_rank_init(&r, tagged);
 *   for (...) vg_rank_count(&r, score, is_pos);        // pass 1: bucket sizes
 *   if (vg_rank_alloc(&r) != VG_OK) ...                  // NaN seen / out of memory
 *   for (...) vg_rank_put(&r, score, is_pos, tag);      // pass 2: same entries, same order
 *   vg_rank_walk(&r, weights, visit, ctx);              // groups, highest score first
 *   vg_rank_free(&r);
 *
 * A float maps to an order-preserving 32-bit key. Pass 2 scatters only the low 16 bits
 * into one of 65536 buckets (the high 16 bits), separately for positive and negative
 * entries; positives may carry a 32-bit tag (a region id) whose weight the walk sums.
 * Each bucket is then ordered by a 2-pass radix sort (small) or a 65536-bin histogram
 * (large). Memory: 2 bytes per negative, 2 (+4 tagged) per positive, ~2 MB fixed. */
#ifndef VG_EVAL_RANK_H
#define VG_EVAL_RANK_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "eval/eval.h"

#define VG_RANK_NB 65536

typedef struct {
  int tagged, nan_seen;
  int64_t npos, nneg;
  int64_t *pos_off, *neg_off;  /* [NB+1]: counts during pass 1, bucket starts after alloc */
  int64_t *pos_cur, *neg_cur;  /* [NB] fill cursors of pass 2 */
  uint16_t *pos_lo, *neg_lo;   /* [npos], [nneg] low key halves, grouped by bucket */
  uint32_t *pos_tag;           /* [npos] when tagged */
} vg_rank;

/* One tie group: its score, how many positives / negatives it holds and the summed
 * weight of its positives (weights[tag], or 1 each when weights == NULL). */
typedef void (*vg_rank_visit)(void *ctx, float score, int64_t dpos, int64_t dneg, double dw);

static inline uint32_t vg_rank_key(float s) {
  uint32_t b;
  s = (s == 0.0f) ? 0.0f : s;  /* -0 and +0 are one score */
  memcpy(&b, &s, 4);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
static inline float vg_rank_unkey(uint32_t k) {
  uint32_t b = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float s;
  memcpy(&s, &b, 4);
  return s;
}

vg_status vg_rank_init(vg_rank *r, int tagged);
static inline void vg_rank_count(vg_rank *r, float s, int pos) {
  r->nan_seen |= isnan(s);
  uint32_t hi = vg_rank_key(s) >> 16;
  if (pos) r->pos_off[hi]++; else r->neg_off[hi]++;
}
vg_status vg_rank_alloc(vg_rank *r);
static inline void vg_rank_put(vg_rank *r, float s, int pos, uint32_t tag) {
  uint32_t k = vg_rank_key(s), hi = k >> 16;
  if (pos) {
    int64_t i = r->pos_cur[hi]++;
    r->pos_lo[i] = (uint16_t)k;
    if (r->pos_tag) r->pos_tag[i] = tag;
  } else {
    r->neg_lo[r->neg_cur[hi]++] = (uint16_t)k;
  }
}
/* Reorders the buckets in place. weights: indexed by tag (tagged ranks only) or NULL. */
vg_status vg_rank_walk(vg_rank *r, const double *weights, vg_rank_visit visit, void *ctx);
void vg_rank_free(vg_rank *r);

/* ---- accumulators shared by the metric files ---- */

/* ROC / PR / F1 from the groups of a walk (roc.c). */
typedef struct {
  int64_t P, N, tp, fp;
  uint64_t auc2;   /* sum of dfp * (tp_before + tp_after) = 2 P N AUROC, exact */
  double ap;       /* sum of dtp * precision */
  double f1;
  float f1_thr;
} vg_roc_acc;
void vg_roc_acc_init(vg_roc_acc *a, int64_t P, int64_t N);
void vg_roc_acc_visit(void *ctx, float score, int64_t dpos, int64_t dneg, double dw);
void vg_roc_acc_result(const vg_roc_acc *a, vg_eval_binary *out);

/* Trapezoid integration of a streamed curve with non-decreasing x up to several
 * limits, as MVTec's generic_util.trapezoid(x, y, x_max): segments with x <= x_max in
 * full, the crossing segment up to x_max with y linearly interpolated (pro.c). */
typedef struct {
  int n;
  double lim[VG_EVAL_MAX_LIMITS], area[VG_EVAL_MAX_LIMITS];
  double x0, y0;
} vg_trap;
void vg_trap_init(vg_trap *t, const double *lim, int n);  /* starts at (0, 0) */
void vg_trap_point(vg_trap *t, double x, double y);

/* Pixel AUROC / AUPRC / F1 and AU-PRO of maps and masks in one walk (pro.c); pix,
 * nregions, au_pro_5 (AU-PRO at VG_EVAL_PRO_LIMIT_5) and pixel_auroc_5 (pixel AU-ROC up to
 * VG_EVAL_PAUROC_LIMIT) may be NULL; undefined values are NaN. */
vg_status vg_eval_pixel_pass(const float *maps, const uint8_t *masks, int64_t n, int64_t h,
                             int64_t w, double fpr_limit, vg_eval_binary *pix,
                             double *au_pro, int64_t *nregions, double *au_pro_5, double *pixel_auroc_5);
#endif
