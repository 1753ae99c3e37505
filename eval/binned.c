/* binned.c — streaming ROC / PR over fixed histograms (see eval.h for the error bound).
 * Bin i holds scores in [lo + i*width, lo + (i+1)*width); the bin index is monotone in
 * the score, so pairs in different bins are ranked exactly and only same-bin pairs
 * (counted as ties) can be wrong. */
#include "eval/rank.h"
#include <stdlib.h>

struct vg_eval_roc_binned {
  double lo, hi, scale;   /* bin = floor((s - lo) * scale), clamped */
  int64_t nbins;
  uint64_t *pos, *neg;    /* [nbins] */
};

vg_eval_roc_binned *vg_eval_roc_binned_new(float lo, float hi, int64_t nbins) {
  if (!(isfinite(lo) && isfinite(hi) && hi > lo) || nbins < 1 || nbins > ((int64_t)1 << 30)) {
    vg_fail(VG_ERR_ARG, "eval: binned ROC needs finite lo < hi and 1 <= nbins <= 2^30 "
            "(lo=%g hi=%g nbins=%lld)", lo, hi, (long long)nbins);
    return NULL;
  }
  vg_eval_roc_binned *b = calloc(1, sizeof *b);
  if (!b) { vg_fail(VG_ERR_NOMEM, "eval: out of memory"); return NULL; }
  b->lo = lo;
  b->hi = hi;
  b->nbins = nbins;
  b->scale = (double)nbins / ((double)hi - (double)lo);
  b->pos = calloc((size_t)nbins, sizeof(uint64_t));
  b->neg = calloc((size_t)nbins, sizeof(uint64_t));
  if (!b->pos || !b->neg) {
    vg_eval_roc_binned_free(b);
    vg_fail(VG_ERR_NOMEM, "eval: out of memory for %lld bins", (long long)nbins);
    return NULL;
  }
  return b;
}

void vg_eval_roc_binned_free(vg_eval_roc_binned *b) {
  if (!b) return;
  free(b->pos);
  free(b->neg);
  free(b);
}

vg_status vg_eval_roc_binned_add(vg_eval_roc_binned *b, const float *scores,
                                 const uint8_t *labels, int64_t n) {
  if (!b || n < 0 || (n > 0 && (!scores || !labels)))
    return vg_fail(VG_ERR_ARG, "eval: binned add: bad arguments");
  for (int64_t i = 0; i < n; i++)
    if (isnan(scores[i])) return vg_fail(VG_ERR_NUMERIC, "eval: NaN anomaly score at %lld", (long long)i);
  const double lo = b->lo, scale = b->scale, top = (double)(b->nbins - 1);
  for (int64_t i = 0; i < n; i++) {
    double x = floor(((double)scores[i] - lo) * scale);
    x = x < 0 ? 0 : x > top ? top : x;
    (labels[i] ? b->pos : b->neg)[(int64_t)x]++;
  }
  return VG_OK;
}

vg_status vg_eval_roc_binned_merge(vg_eval_roc_binned *dst, const vg_eval_roc_binned *src) {
  if (!dst || !src || dst->nbins != src->nbins || dst->lo != src->lo || dst->hi != src->hi)
    return vg_fail(VG_ERR_ARG, "eval: binned merge: histograms differ in range or bins");
  for (int64_t i = 0; i < dst->nbins; i++) {
    dst->pos[i] += src->pos[i];
    dst->neg[i] += src->neg[i];
  }
  return VG_OK;
}

vg_status vg_eval_roc_binned_result(const vg_eval_roc_binned *b, vg_eval_binary *out,
                                    double *auroc_bound) {
  if (!b || !out) return vg_fail(VG_ERR_ARG, "eval: binned result: NULL argument");
  int64_t P = 0, N = 0;
  double same = 0; /* sum_b pos_b * neg_b */
  for (int64_t i = 0; i < b->nbins; i++) {
    P += (int64_t)b->pos[i];
    N += (int64_t)b->neg[i];
    same += (double)b->pos[i] * (double)b->neg[i];
  }
  if (P + N >= ((int64_t)1 << 32))
    return vg_fail(VG_ERR_LIMIT, "eval: binned result: %lld samples, at most 2^32 - 1 supported",
                   (long long)(P + N));
  vg_roc_acc a;
  vg_roc_acc_init(&a, P, N);
  const double width = ((double)b->hi - (double)b->lo) / (double)b->nbins;
  for (int64_t i = b->nbins - 1; i >= 0; i--)
    if (b->pos[i] | b->neg[i])
      vg_roc_acc_visit(&a, (float)(b->lo + (double)i * width), (int64_t)b->pos[i],
                       (int64_t)b->neg[i], 0);
  vg_roc_acc_result(&a, out);
  if (auroc_bound) *auroc_bound = (P > 0 && N > 0) ? 0.5 * same / ((double)P * (double)N) : NAN;
  return VG_OK;
}
