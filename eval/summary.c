/* summary.c — the usual results table from maps + masks in one call. */
#include "eval/rank.h"
#include <stdlib.h>

vg_status vg_eval_summary(const float *maps, const uint8_t *masks, int64_t n, int64_t h,
                          int64_t w, const float *image_scores, const uint8_t *image_labels,
                          vg_eval_metrics *out) {
  if (!maps || !masks || !out || n <= 0 || h <= 0 || w <= 0)
    return vg_fail(VG_ERR_ARG, "eval: summary needs n, h, w > 0 maps and masks");
  const int64_t hw = h * w;
  float *score = malloc((size_t)n * sizeof *score);
  uint8_t *label = malloc((size_t)n);
  if (!score || !label) {
    free(score); free(label);
    return vg_fail(VG_ERR_NOMEM, "eval: out of memory");
  }
  memset(out, 0, sizeof *out);
  int64_t anom_px = 0;
  vg_status st = VG_OK;
  for (int64_t i = 0; i < n; i++) {
    const float *m = maps + i * hw;
    const uint8_t *g = masks + i * hw;
    float mx = m[0];
    int64_t a = 0;
    for (int64_t p = 0; p < hw; p++) {
      if (isnan(m[p])) { st = vg_fail(VG_ERR_NUMERIC, "eval: NaN in anomaly map %lld", (long long)i); goto done; }
      mx = m[p] > mx ? m[p] : mx;
      a += g[p] != 0;
    }
    score[i] = image_scores ? image_scores[i] : mx;
    label[i] = image_labels ? (image_labels[i] != 0) : (a > 0);
    anom_px += a;
  }
  vg_eval_binary img, pix;
  if ((st = vg_eval_binary_metrics(score, label, n, &img)) != VG_OK) goto done;
  if ((st = vg_eval_pixel_pass(maps, masks, n, h, w, VG_EVAL_PRO_LIMIT, &pix, &out->au_pro,
                               &out->n_regions, &out->au_pro_5, &out->pixel_auroc_5)) != VG_OK)
    goto done;
  out->image_auroc = img.auroc;
  out->image_auprc = img.auprc;
  out->image_f1_max = img.f1_max;
  out->image_f1_threshold = img.f1_threshold;
  out->pixel_auroc = pix.auroc;
  out->pixel_auprc = pix.auprc;
  out->pixel_f1_max = pix.f1_max;
  out->pixel_f1_threshold = pix.f1_threshold;
  out->n_images = n;
  out->n_anomalous_images = img.n_pos;
  out->n_pixels = n * hw;
  out->n_anomalous_pixels = anom_px;
done:
  free(score);
  free(label);
  return st;
}
