/* pro.c — 8-connected components and MVTec AD's official AU-PRO.
 *
 * Official algorithm (mvtec_ad_evaluation/pro_curve_util.py): every normal pixel adds
 * 1 to the false positives, every pixel of GT region r adds 1/|r| to the summed overlap;
 * pixels are taken by descending score and one curve point is kept per distinct score:
 *   FPR = FP / #normal pixels,  PRO = min(sum / #regions, 1);
 * the curve (0,0), points, (1,1) is integrated by generic_util.trapezoid up to x_max
 * and divided by x_max. Here the region id rides along each anomalous pixel as a tag
 * and the walk sums 1/|r| per tie group, so pixel AUROC / AUPRC / F1 come from the
 * same pass. */
#include "eval/rank.h"
#include <stdlib.h>

int64_t vg_eval_connected_components(const uint8_t *mask, int64_t h, int64_t w,
                                     int32_t *labels) {
  if (!mask || !labels || h <= 0 || w <= 0 || h * w >= ((int64_t)1 << 31)) {
    vg_fail(VG_ERR_ARG, "eval: connected components need 0 < h*w < 2^31 (h=%lld w=%lld)",
            (long long)h, (long long)w);
    return -1;
  }
  const int64_t hw = h * w;
  int32_t *stack = malloc((size_t)hw * sizeof *stack);
  if (!stack) {
    vg_fail(VG_ERR_NOMEM, "eval: out of memory labelling a %lldx%lld mask", (long long)h, (long long)w);
    return -1;
  }
  memset(labels, 0, (size_t)hw * sizeof *labels);
  int32_t k = 0;
  for (int64_t i = 0; i < hw; i++) {
    if (!mask[i] || labels[i]) continue;
    /* flood fill a new component; each pixel is pushed once, so hw slots suffice */
    int64_t top = 0;
    labels[i] = ++k;
    stack[top++] = (int32_t)i;
    while (top > 0) {
      int64_t p = stack[--top], y = p / w, x = p % w;
      for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        if (yy < 0 || yy >= h) continue;
        for (int64_t xx = x - 1; xx <= x + 1; xx++) {
          if (xx < 0 || xx >= w) continue;
          int64_t q = yy * w + xx;
          if (mask[q] && !labels[q]) {
            labels[q] = k;
            stack[top++] = (int32_t)q;
          }
        }
      }
    }
  }
  free(stack);
  return k;
}

void vg_trap_init(vg_trap *t, const double *lim, int n) {
  memset(t, 0, sizeof *t);
  t->n = n;
  for (int k = 0; k < n; k++) t->lim[k] = lim[k];
}

void vg_trap_point(vg_trap *t, double x, double y) {
  for (int k = 0; k < t->n; k++) {
    double L = t->lim[k];
    if (!(t->x0 < L)) continue; /* past the limit (x never decreases) */
    if (x <= L) {
      t->area[k] += 0.5 * (y + t->y0) * (x - t->x0);
    } else { /* the segment crossing x = L: interpolate y there */
      double yi = t->y0 + (y - t->y0) * (L - t->x0) / (x - t->x0);
      t->area[k] += 0.5 * (yi + t->y0) * (L - t->x0);
    }
  }
  t->x0 = x;
  t->y0 = y;
}

typedef struct {
  vg_roc_acc roc;
  vg_trap trap;    /* the PRO curve up to fpr_limit and VG_EVAL_PRO_LIMIT_5 */
  vg_trap rtrap;   /* the ROC curve up to VG_EVAL_PAUROC_LIMIT */
  double w;        /* summed overlap so far */
  double N, R;     /* normal pixels, regions */
} pro_acc;

static void pro_visit(void *ctx, float score, int64_t dpos, int64_t dneg, double dw) {
  pro_acc *a = ctx;
  vg_roc_acc_visit(&a->roc, score, dpos, dneg, dw);
  a->w += dw;
  if (a->N > 0 && a->R > 0) {
    double x = (double)a->roc.fp / a->N, y = a->w / a->R;
    vg_trap_point(&a->trap, x > 1 ? 1 : x, y > 1 ? 1 : y);
  }
  if (a->roc.P > 0 && a->roc.N > 0) vg_trap_point(&a->rtrap, (double)a->roc.fp / (double)a->roc.N, (double)a->roc.tp / (double)a->roc.P);
}

/* Pixel AUROC / AUPRC / F1 and AU-PRO in one walk (used by vg_eval_au_pro and
 * vg_eval_summary). pix and nregions may be NULL. */
vg_status vg_eval_pixel_pass(const float *maps, const uint8_t *masks, int64_t n, int64_t h,
                             int64_t w, double fpr_limit, vg_eval_binary *pix,
                             double *au_pro, int64_t *nregions, double *au_pro_5, double *pixel_auroc_5) {
  if (!maps || !masks || !au_pro || n <= 0 || h <= 0 || w <= 0 || h * w >= ((int64_t)1 << 31))
    return vg_fail(VG_ERR_ARG, "eval: AU-PRO needs n, h, w > 0 maps and masks (n=%lld h=%lld w=%lld)",
                   (long long)n, (long long)h, (long long)w);
  if (!(fpr_limit > 0 && fpr_limit <= 1))
    return vg_fail(VG_ERR_ARG, "eval: AU-PRO FPR limit %g not in (0, 1]", fpr_limit);
  const int64_t hw = h * w;
  int32_t *lab = malloc((size_t)hw * sizeof *lab);
  double *weight = NULL;
  int64_t nreg = 0, cap = 0;
  vg_rank r;
  vg_status st = vg_rank_init(&r, 1);
  if (st != VG_OK) { free(lab); return st; }
  if (!lab) { st = vg_fail(VG_ERR_NOMEM, "eval: out of memory"); goto done; }

  /* pass 1: regions and their sizes (weights hold sizes until pass 2), bucket counts */
  for (int64_t i = 0; i < n; i++) {
    const float *m = maps + i * hw;
    const uint8_t *g = masks + i * hw;
    int64_t k = vg_eval_connected_components(g, h, w, lab);
    if (k < 0) { st = vg_last_status(); goto done; }
    if (nreg + k > cap) {
      cap = 2 * (nreg + k) + 16;
      double *nw = realloc(weight, (size_t)cap * sizeof *nw);
      if (!nw) { st = vg_fail(VG_ERR_NOMEM, "eval: out of memory (regions)"); goto done; }
      weight = nw;
    }
    for (int64_t c = 0; c < k; c++) weight[nreg + c] = 0;
    for (int64_t p = 0; p < hw; p++) {
      vg_rank_count(&r, m[p], lab[p] != 0);
      if (lab[p]) weight[nreg + lab[p] - 1] += 1;
    }
    nreg += k;
  }
  if ((st = vg_rank_alloc(&r)) != VG_OK) goto done;
  for (int64_t c = 0; c < nreg; c++) weight[c] = 1.0 / weight[c];

  /* pass 2: the same entries, tagged with their global region id */
  int64_t base = 0;
  for (int64_t i = 0; i < n; i++) {
    const float *m = maps + i * hw;
    int64_t k = vg_eval_connected_components(masks + i * hw, h, w, lab);
    if (k < 0) { st = vg_last_status(); goto done; }
    for (int64_t p = 0; p < hw; p++)
      vg_rank_put(&r, m[p], lab[p] != 0, lab[p] ? (uint32_t)(base + lab[p] - 1) : 0);
    base += k;
  }

  pro_acc a;
  vg_roc_acc_init(&a.roc, r.npos, r.nneg);
  const double lims[2] = {fpr_limit, VG_EVAL_PRO_LIMIT_5}, rlim = VG_EVAL_PAUROC_LIMIT;
  vg_trap_init(&a.trap, lims, 2);
  vg_trap_init(&a.rtrap, &rlim, 1);
  a.w = 0;
  a.N = (double)r.nneg;
  a.R = (double)nreg;
  if ((st = vg_rank_walk(&r, weight, pro_visit, &a)) != VG_OK) goto done;
  if (nreg > 0 && r.nneg > 0) {
    vg_trap_point(&a.trap, 1, 1);
    *au_pro = a.trap.area[0] / fpr_limit;
    if (au_pro_5) *au_pro_5 = a.trap.area[1] / VG_EVAL_PRO_LIMIT_5;
  } else {
    *au_pro = NAN;
    if (au_pro_5) *au_pro_5 = NAN;
  }
  if (pixel_auroc_5) *pixel_auroc_5 = r.npos > 0 && r.nneg > 0 ? a.rtrap.area[0] / VG_EVAL_PAUROC_LIMIT : NAN;
  if (pix) vg_roc_acc_result(&a.roc, pix);
  if (nregions) *nregions = nreg;
done:
  vg_rank_free(&r);
  free(lab);
  free(weight);
  return st;
}

vg_status vg_eval_au_pro(const float *maps, const uint8_t *masks, int64_t n, int64_t h,
                         int64_t w, double fpr_limit, double *au_pro) {
  int64_t nreg = 0;
  vg_eval_binary pix;
  vg_status st = vg_eval_pixel_pass(maps, masks, n, h, w, fpr_limit, &pix, au_pro, &nreg, NULL, NULL);
  if (st == VG_OK && isnan(*au_pro))
    vg_fail(VG_ERR_ARG, "eval: AU-PRO undefined: %s",
            nreg == 0 ? "no anomalous region in the masks" : "no normal pixel");
  return st;
}
