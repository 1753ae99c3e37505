/* eval.h — evaluation metrics for anomaly detection, computed exactly the way the
 * reference code computes them, so numbers can be put next to published ones:
 *
 *   image / pixel AUROC   = sklearn.metrics.roc_auc_score (ties form one ROC point,
 *                           trapezoid rule)
 *   image / pixel AUPRC   = sklearn.metrics.average_precision_score (step-wise sum
 *                           of (R_k - R_{k-1}) P_k, no interpolation)
 *   F1-max                = max F1 over the precision-recall curve thresholds, the
 *                           threshold anomalib's F1AdaptiveThreshold picks
 *   AU-PRO                = MVTec AD official evaluation (pro_curve_util.compute_pro +
 *                           generic_util.trapezoid(x_max) / x_max)
 *   AU-sPRO               = MVTec LOCO official evaluation (saturated per-region
 *                           overlap, integration limits 0.01 / 0.05 / 0.1 / 0.3 / 1)
 *
 * Usage:
 *
 *   // image level: one score and one label (0 good, non-0 anomalous) per image
 *   double auroc = vg_eval_auroc(scores, labels, n);            // NaN if one class
 *   if (isnan(auroc)) fprintf(stderr, "%s\n", vg_last_error());
 *   float thr;
 *   double f1 = vg_eval_f1_max(scores, labels, n, &thr);        // predict score >= thr
 *
 *   // everything at once from N anomaly maps (H*W floats each) and N GT masks
 *   vg_eval_metrics m;
 *   if (vg_eval_summary(maps, masks, n, h, w, NULL, NULL, &m) != VG_OK)
 *     fprintf(stderr, "%s\n", vg_last_error());
 *   printf("I-AUROC %.4f P-AUROC %.4f AU-PRO %.4f\n", m.image_auroc, m.pixel_auroc, m.au_pro);
 *
 *   // pixel AUROC over a test set too large to keep: stream batches into histograms
 *   vg_eval_roc_binned *b = vg_eval_roc_binned_new(0.0f, 1.0f, 1000000);
 *   for (each batch) vg_eval_roc_binned_add(b, batch_maps, batch_masks, batch_pixels);
 *   vg_eval_binary r; double bound;
 *   vg_eval_roc_binned_result(b, &r, &bound);   // |r.auroc - exact| <= bound
 *   vg_eval_roc_binned_free(b);
 *
 * Conventions.
 *  - Labels and masks are uint8: 0 = normal, anything else = anomalous.
 *  - Scores are floats; higher = more anomalous. NaN scores are rejected
 *    (VG_ERR_NUMERIC), as sklearn rejects them; +-Inf are ordered normally. -0.0 and
 *    +0.0 are the same score (one tie group).
 *  - Undefined metrics (one class only, no GT region, no normal pixel) are NaN:
 *    the scalar functions return NaN and leave the reason in vg_last_error();
 *    the struct functions return VG_OK with the undefined fields set to NaN.
 *    Per metric: AUROC needs both classes (sklearn raises ValueError); AUPRC and
 *    F1-max need a positive (sklearn warns and returns AP 0; anomalib then picks
 *    the lowest threshold, a known bug); with no negative AUPRC = F1-max = 1.
 *  - Exact metrics sort by a two-level bucket sort on the float bit pattern: extra
 *    memory is 2 bytes per normal pixel and 2 (ROC) or 6 (PRO) bytes per anomalous
 *    pixel plus ~2 MB, O(n) time: 100M pixels take ~0.2 GB beside the inputs and
 *    ~2.7 s (ROC/PR/F1) or ~3.7 s (AU-PRO) on one core. One call takes at most
 *    2^32 - 1 scores (VG_ERR_LIMIT beyond).
 *  - All functions are thread-safe (no global state besides the per-thread error).
 */
#ifndef VG_EVAL_H
#define VG_EVAL_H
#include <stdint.h>
#include "base/status.h"

/* The integration limits MVTec LOCO's evaluation reports AU-sPRO at. */
#define VG_EVAL_SPRO_NLIMITS 5
extern const double vg_eval_spro_default_limits[VG_EVAL_SPRO_NLIMITS]; /* .01 .05 .1 .3 1 */
#define VG_EVAL_MAX_LIMITS 16
#define VG_EVAL_PRO_LIMIT 0.3 /* MVTec AD's default AU-PRO integration limit */
/* The EfficientAD paper's extra limits (its Tables 13 and 14): AU-PRO up to 5 % FPR
 * (normalised by 0.05 like AU-PRO@0.3 by 0.3), and the pixel AU-ROC up to 5 % FPR: the ROC
 * curve integrated (trapezoid, linear interpolation at 0.05) and divided by 0.05 — plain
 * normalisation, not sklearn's McClish-standardised roc_auc_score(max_fpr) (the paper's
 * Table 14 has values far below 50 %, which McClish's 0.5 + 0.5 (A - min)/(max - min)
 * cannot give for better-than-chance maps). */
#define VG_EVAL_PRO_LIMIT_5 0.05
#define VG_EVAL_PAUROC_LIMIT 0.05

/* ---- image / pixel level: exact ROC and PR metrics ---------------------------- */

/* The metrics one sorted pass over (score, label) pairs gives. */
typedef struct {
  double auroc;         /* sklearn roc_auc_score; NaN if n_pos == 0 or n_neg == 0 */
  double auprc;         /* sklearn average_precision_score; NaN if n_pos == 0 */
  double f1_max;        /* max over thresholds of 2TP / (2TP + FP + FN); NaN if n_pos == 0 */
  float f1_threshold;   /* the threshold reaching f1_max (predict anomalous if score >=
                           it); among exact ties the lowest one, as anomalib's argmax
                           over ascending thresholds; NaN if n_pos == 0 */
  int64_t n_pos, n_neg;
} vg_eval_binary;

/* All of the above in one O(n) pass. n may be ~10^8 (pixels). Errors: VG_ERR_ARG
 * (n <= 0, NULL, n >= 2^32), VG_ERR_NUMERIC (NaN score), VG_ERR_NOMEM. */
vg_status vg_eval_binary_metrics(const float *scores, const uint8_t *labels, int64_t n,
                                 vg_eval_binary *out);

/* The ROC curve (sklearn roc_curve: one point per tie group, from (0, 0)) integrated with
 * the trapezoid rule up to FPR max_fpr (0 < max_fpr <= 1; linear interpolation at the limit)
 * and divided by max_fpr: 1 for a perfect ranking, max_fpr / 2 for chance. max_fpr 1 =
 * the AUROC. NaN (reason in vg_last_error()) when undefined or on error. */
double vg_eval_partial_auroc(const float *scores, const uint8_t *labels, int64_t n, double max_fpr);

/* Scalar conveniences; NaN (reason in vg_last_error()) when undefined or on error. */
double vg_eval_auroc(const float *scores, const uint8_t *labels, int64_t n);
double vg_eval_auprc(const float *scores, const uint8_t *labels, int64_t n);
/* threshold_out may be NULL. */
double vg_eval_f1_max(const float *scores, const uint8_t *labels, int64_t n,
                      float *threshold_out);

/* ---- streaming, binned ROC / PR ---------------------------------------------- */
/* Histograms of positive and negative scores over nbins equal bins of [lo, hi]
 * (scores outside are clamped into the first / last bin). Every bin is treated as one
 * tie group, so the result is the exact metric of the scores rounded down to bin edges.
 * AUROC error: only (positive, negative) pairs in the same bin are mis-ranked (counted
 * as ties), so |binned - exact| <= 0.5 * sum_b pos_b * neg_b / (P * N), which
 * vg_eval_roc_binned_result returns as auroc_bound (typically < 1e-5 with 10^6 bins
 * and scores spread over [lo, hi]). AUPRC / F1-max have no such bound; with 10^5..10^6
 * bins they were within 1e-4 of exact in tests/test_eval.c. Memory: 16 bytes per bin.
 * f1_threshold is the lower edge of the best bin. Not thread-safe per object: use
 * one object per thread and vg_eval_roc_binned_merge. */
typedef struct vg_eval_roc_binned vg_eval_roc_binned;
vg_eval_roc_binned *vg_eval_roc_binned_new(float lo, float hi, int64_t nbins); /* NULL+error */
vg_status vg_eval_roc_binned_add(vg_eval_roc_binned *b, const float *scores,
                                 const uint8_t *labels, int64_t n);
vg_status vg_eval_roc_binned_merge(vg_eval_roc_binned *dst, const vg_eval_roc_binned *src);
/* auroc_bound may be NULL. */
vg_status vg_eval_roc_binned_result(const vg_eval_roc_binned *b, vg_eval_binary *out,
                                    double *auroc_bound);
void vg_eval_roc_binned_free(vg_eval_roc_binned *b);

/* ---- AU-PRO (MVTec AD official) ------------------------------------------------ */

/* 8-connected components of mask (h*w, non-0 = foreground), as
 * scipy.ndimage.label(mask, structure=ones((3,3))): labels[i] = 0 for background, else
 * 1..K numbered in raster order of each component's first pixel. Returns K, or -1
 * (VG_ERR_NOMEM / VG_ERR_ARG) on failure. */
int64_t vg_eval_connected_components(const uint8_t *mask, int64_t h, int64_t w,
                                     int32_t *labels);

/* AU-PRO of n anomaly maps (h*w floats each, contiguous) against n masks. GT regions are
 * the 8-connected components of each mask; for every distinct score threshold t
 * (pixels with score >= t are positive): FPR over all normal pixels of all images and
 * PRO = mean over all regions of the fraction of the region covered. The curve
 * (0,0), points..., (1,1) is integrated with the trapezoid rule up to fpr_limit (linear
 * interpolation at the limit) and divided by fpr_limit (0 < fpr_limit <= 1; MVTec
 * default VG_EVAL_PRO_LIMIT). *au_pro = NaN (VG_OK) if there is no region or no normal
 * pixel. The official code keeps FPRs in float32; this keeps them in double (the
 * results differ by < 1e-6). */
vg_status vg_eval_au_pro(const float *maps, const uint8_t *masks, int64_t n, int64_t h,
                         int64_t w, double fpr_limit, double *au_pro);

/* ---- AU-sPRO (MVTec LOCO official) ---------------------------------------------- */

/* One GT defect of MVTec LOCO: one ground-truth PNG of an image (a defect may have
 * several blobs; it is not split into connected components). */
typedef struct {
  int64_t image;         /* index of the anomaly map it belongs to */
  const uint8_t *mask;   /* h*w, non-0 = defect pixel; must not be empty */
  int64_t saturation;    /* saturation area in pixels (> 0), see vg_eval_spro_saturation */
} vg_eval_region;

/* The LOCO evaluation's saturation area of a defect, from defects_config.json's
 * saturation_threshold / relative_saturation: relative ? int(threshold * area)
 * : min(threshold, area). (A result of 0 is rejected by vg_eval_au_spro.) */
int64_t vg_eval_spro_saturation(int64_t defect_area, double saturation_threshold,
                                int relative_saturation);

/* AU-sPRO of n anomaly maps with the given defects (images without any are "good").
 * For every threshold t (pixels with score > t positive, t over all distinct scores,
 * plus max + eps and min - eps): sPRO(t) = mean over defects of
 * min(TP_area / saturation, 1); FPR(t) = positives among pixels outside every defect of
 * their image / number of such pixels. The curve is integrated (trapezoid, linear
 * interpolation at the limit, divided by the limit) for each of the nlimits fpr_limits
 * (NULL = vg_eval_spro_default_limits, nlimits = 5) into au_spro[nlimits].
 * This is the limit of the official MetricsAggregator, which samples thresholds until
 * adjacent curve points are closer than curve_max_distance (1e-3 by default), so the
 * official numbers differ from these by the resolution of that sampling (1.3e-4 at
 * most over the five limits on a 6-image 64x64 check of that procedure).
 * NaN (VG_OK) if there is no defect or no defect-free pixel. */
vg_status vg_eval_au_spro(const float *maps, int64_t n, int64_t h, int64_t w,
                          const vg_eval_region *regions, int64_t nregions,
                          const double *fpr_limits, int nlimits, double *au_spro);

/* ---- summary ------------------------------------------------------------------ */

typedef struct {
  double image_auroc, image_auprc, image_f1_max;
  float image_f1_threshold;
  double pixel_auroc, pixel_auprc, pixel_f1_max;
  float pixel_f1_threshold;
  double au_pro;                 /* MVTec official, limit 0.3 */
  double au_pro_5;               /* the same up to FPR 0.05, divided by 0.05 */
  double pixel_auroc_5;          /* pixel AU-ROC up to FPR 0.05, divided by 0.05 */
  int64_t n_images, n_anomalous_images, n_pixels, n_anomalous_pixels, n_regions;
} vg_eval_metrics;

/* The usual table from n maps (h*w each) and masks. image_scores: one score per image,
 * or NULL for the max of each map (as MVTec's evaluation). image_labels: or NULL for
 * "mask has an anomalous pixel". Undefined metrics are NaN (see conventions). */
vg_status vg_eval_summary(const float *maps, const uint8_t *masks, int64_t n, int64_t h,
                          int64_t w, const float *image_scores, const uint8_t *image_labels,
                          vg_eval_metrics *out);
#endif
