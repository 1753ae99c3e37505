/* spro.c — MVTec LOCO's AU-sPRO (mvtec_loco_ad_evaluation: src/metrics.py,
 * src/image.py, src/util.py).
 *
 * Official definitions: a defect (one GT channel) is positive-covered at threshold t by
 * TP_t = #{p in defect : score_p > t}; sPRO_t = min(TP_t / saturation, 1), averaged
 * over all defects of all images; FPR_t = #{p outside every defect of its image :
 * score_p > t} / #such pixels; AUC by util.trapz(x_max) / x_max.
 *
 * Exact evaluation over all thresholds: min(TP / s, 1) grows by 1/s for each of the
 * defect's s highest-scoring pixels and then stays 1, so each defect contributes its top
 * s pixels with weight 1/s (ties at the s-th score: which of the tied pixels is kept does
 * not change any group sum) and the rest of its pixels not at all. The walk over all
 * kept defect pixels and all defect-free pixels then gives every curve point. */
#include "eval/rank.h"
#include <stdlib.h>

const double vg_eval_spro_default_limits[VG_EVAL_SPRO_NLIMITS] = {0.01, 0.05, 0.1, 0.3, 1.0};

int64_t vg_eval_spro_saturation(int64_t defect_area, double saturation_threshold,
                                int relative_saturation) {
  if (relative_saturation) {   /* defined for any threshold (the loader keeps it in (0, 1]) */
    double s = saturation_threshold * (double)defect_area;
    return s > 0 ? (s < 0x1p63 ? (int64_t)s : INT64_MAX) : 0;
  }
  double t = saturation_threshold;
  return t < (double)defect_area ? (t > 0 ? (int64_t)t : 0) : defect_area;
}

typedef struct {
  vg_trap trap;
  int64_t fp;
  double w, N, R;
} spro_acc;

static void spro_visit(void *ctx, float score, int64_t dpos, int64_t dneg, double dw) {
  (void)score; (void)dpos;
  spro_acc *a = ctx;
  a->fp += dneg;
  a->w += dw;
  vg_trap_point(&a->trap, (double)a->fp / a->N, a->w / a->R);
}

static int cmp_desc(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x < y) - (x > y);
}

/* Which pixels of a defect enter the walk: all, or score > cut plus `ties` pixels == cut. */
typedef struct { int all; float cut; int64_t ties, left; } keep_rule;

static inline int keep(keep_rule *k, float s) {
  if (k->all || s > k->cut) return 1;
  if (s == k->cut && k->left > 0) { k->left--; return 1; }
  return 0;
}

vg_status vg_eval_au_spro(const float *maps, int64_t n, int64_t h, int64_t w,
                          const vg_eval_region *regions, int64_t nregions,
                          const double *fpr_limits, int nlimits, double *au_spro) {
  if (!fpr_limits) { fpr_limits = vg_eval_spro_default_limits; nlimits = VG_EVAL_SPRO_NLIMITS; }
  if (!maps || !au_spro || n <= 0 || h <= 0 || w <= 0 || nregions < 0 || (nregions && !regions) ||
      nlimits < 1 || nlimits > VG_EVAL_MAX_LIMITS)
    return vg_fail(VG_ERR_ARG, "eval: AU-sPRO: bad arguments (n=%lld h=%lld w=%lld regions=%lld limits=%d)",
                   (long long)n, (long long)h, (long long)w, (long long)nregions, nlimits);
  for (int k = 0; k < nlimits; k++)
    if (!(fpr_limits[k] > 0 && fpr_limits[k] <= 1))
      return vg_fail(VG_ERR_ARG, "eval: AU-sPRO FPR limit %g not in (0, 1]", fpr_limits[k]);
  const int64_t hw = h * w;
  for (int64_t i = 0; i < n * hw; i++)
    if (isnan(maps[i])) return vg_fail(VG_ERR_NUMERIC, "eval: NaN anomaly score in map %lld", (long long)(i / hw));

  vg_status st = VG_OK;
  uint8_t *any = malloc((size_t)hw);
  float *buf = malloc((size_t)hw * sizeof *buf);
  keep_rule *rule = malloc((size_t)(nregions ? nregions : 1) * sizeof *rule);
  double *weight = malloc((size_t)(nregions ? nregions : 1) * sizeof *weight);
  int64_t *order = malloc((size_t)(nregions ? nregions : 1) * sizeof *order); /* by image */
  int64_t *first = calloc((size_t)n + 1, sizeof *first);
  vg_rank r;
  int have_rank = 0;
  if (!any || !buf || !rule || !weight || !order || !first) {
    st = vg_fail(VG_ERR_NOMEM, "eval: out of memory (AU-sPRO)");
    goto done;
  }

  /* defects grouped by image (counting sort), each defect's cut score */
  for (int64_t d = 0; d < nregions; d++) {
    const vg_eval_region *g = regions + d;
    if (g->image < 0 || g->image >= n || !g->mask || g->saturation <= 0) {
      st = vg_fail(VG_ERR_ARG, "eval: AU-sPRO defect %lld: image %lld of %lld, saturation %lld "
                   "(must be > 0), mask %s", (long long)d, (long long)g->image, (long long)n,
                   (long long)g->saturation, g->mask ? "ok" : "NULL");
      goto done;
    }
    first[g->image + 1]++;
    const float *m = maps + g->image * hw;
    int64_t area = 0;
    for (int64_t p = 0; p < hw; p++)
      if (g->mask[p]) buf[area++] = m[p];
    if (area == 0) {
      st = vg_fail(VG_ERR_ARG, "eval: AU-sPRO defect %lld (image %lld) has an empty mask",
                   (long long)d, (long long)g->image);
      goto done;
    }
    weight[d] = 1.0 / (double)g->saturation;
    if (g->saturation >= area) {
      rule[d] = (keep_rule){1, 0, 0, 0};
    } else {
      qsort(buf, (size_t)area, sizeof *buf, cmp_desc);
      float cut = buf[g->saturation - 1];
      int64_t above = 0;
      while (buf[above] > cut) above++;
      rule[d] = (keep_rule){0, cut, g->saturation - above, 0};
    }
  }
  for (int64_t i = 0; i < n; i++) first[i + 1] += first[i];
  {
    int64_t *fill = malloc((size_t)n * sizeof *fill);
    if (!fill) { st = vg_fail(VG_ERR_NOMEM, "eval: out of memory (AU-sPRO)"); goto done; }
    memcpy(fill, first, (size_t)n * sizeof *fill);
    for (int64_t d = 0; d < nregions; d++) order[fill[regions[d].image]++] = d;
    free(fill);
  }

  if ((st = vg_rank_init(&r, 1)) != VG_OK) goto done;
  have_rank = 1;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1 && (st = vg_rank_alloc(&r)) != VG_OK) goto done;
    for (int64_t i = 0; i < n; i++) {
      const float *m = maps + i * hw;
      memset(any, 0, (size_t)hw);
      for (int64_t j = first[i]; j < first[i + 1]; j++) {
        int64_t d = order[j];
        const uint8_t *mask = regions[d].mask;
        keep_rule *k = rule + d;
        k->left = k->ties;
        for (int64_t p = 0; p < hw; p++) {
          if (!mask[p]) continue;
          any[p] = 1;
          if (keep(k, m[p])) {
            if (pass == 0) vg_rank_count(&r, m[p], 1);
            else vg_rank_put(&r, m[p], 1, (uint32_t)d);
          }
        }
      }
      for (int64_t p = 0; p < hw; p++) {
        if (any[p]) continue;
        if (pass == 0) vg_rank_count(&r, m[p], 0);
        else vg_rank_put(&r, m[p], 0, 0);
      }
    }
  }

  spro_acc a;
  vg_trap_init(&a.trap, fpr_limits, nlimits);
  a.fp = 0;
  a.w = 0;
  a.N = (double)r.nneg;
  a.R = (double)nregions;
  if (nregions == 0 || r.nneg == 0) {
    for (int k = 0; k < nlimits; k++) au_spro[k] = NAN;
    vg_fail(VG_ERR_ARG, "eval: AU-sPRO undefined: %s",
            nregions == 0 ? "no defect given" : "no defect-free pixel");
    goto done;
  }
  if ((st = vg_rank_walk(&r, weight, spro_visit, &a)) != VG_OK) goto done;
  for (int k = 0; k < nlimits; k++) au_spro[k] = a.trap.area[k] / fpr_limits[k];
done:
  if (have_rank) vg_rank_free(&r);
  free(any); free(buf); free(rule); free(weight); free(order); free(first);
  return st;
}
