/* report.c — per-category evaluation (maps at GT resolution), metrics JSON, text table,
 * curves and the HTML report. Policy and file layout: report.h. */
#include "report/report.h"
#include "base/file.h"
#include "base/json.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  char *rel;          /* "<defect>/<stem>" */
  char *image;        /* image path */
  char *overlay;      /* "heatmaps/<cat>/<rel>.png" when written, else NULL */
  int label;
  float score;
} rec;

struct vg_report_cat {
  char *name;
  vg_report_metrics met;
  float image_thr, pixel_thr;   /* image F1 threshold, overlay threshold */
  rec *r;
  int64_t n;
  int grid;                     /* best / worst images in the report */
  bool curves;                  /* curves/<name>_*.svg written */
};

vg_report_opts vg_report_defaults(void) {
  return (vg_report_opts){.dir = NULL, .overlays = 0, .grid = 6, .overlay_max_side = 512,
                          .threshold = NAN, .curve_bins = 2000};
}
const vg_report_metrics *vg_report_cat_metrics(const vg_report_cat *c) { return &c->met; }
const char *vg_report_cat_name(const vg_report_cat *c) { return c->name; }

void vg_report_cat_free(vg_report_cat *c) {
  if (!c) return;
  for (int64_t i = 0; i < c->n; i++) { free(c->r[i].rel); free(c->r[i].image); free(c->r[i].overlay); }
  free(c->r);
  free(c->name);
  free(c);
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0) return NULL;
  char *s = malloc((size_t)k + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)k + 1, fmt, ap);
  va_end(ap);
  return s;
}

static vg_status write_text(const char *path, const char *text) {
  vg_status st = vg_mkdir_parents(path);
  if (st == VG_OK) st = vg_image_write_file(path, (const uint8_t *)text, strlen(text));
  return st;
}

/* "<defect>/<stem>" of a sample. */
static char *sample_rel(const vg_sample *s) {
  size_t n = strlen(s->defect) + strlen(s->image) + 2;
  char *r = malloc(n);
  if (r) vg_sample_rel(s, r, n);
  return r;
}

static bool is_loco_type(const char *defect, const char *type) {
  size_t n = strlen(type);
  return !strncmp(defect, type, n) && (defect[n] == 0 || defect[n] == '/');
}

/* Decodes a GT mask as a 0/1 plane at eh x ew (PIL NEAREST when the size differs).
 * or_into: dst |= mask. *area: set pixels of this mask at eval size. */
static vg_status load_mask(const char *path, int eh, int ew, uint8_t *dst, bool or_into, int64_t *area) {
  vg_image im;
  vg_status st = vg_image_load(path, &im, NULL);
  if (st != VG_OK) return st;
  int64_t a = 0;
  for (int y = 0; y < eh; y++) {
    int sy = im.h == eh ? y : (int)((y + 0.5) * im.h / eh);
    if (sy > im.h - 1) sy = im.h - 1;
    for (int x = 0; x < ew; x++) {
      int sx = im.w == ew ? x : (int)((x + 0.5) * im.w / ew);
      if (sx > im.w - 1) sx = im.w - 1;
      size_t k = ((size_t)sy * im.w + sx) * im.c;
      int on = 0;
      int nc = im.c == 2 || im.c == 4 ? im.c - 1 : im.c;   /* colour channels, not alpha */
      for (int c = 0; c < nc; c++)
        on |= im.depth == 16 ? ((uint16_t *)im.data)[k + c] != 0 : ((uint8_t *)im.data)[k + c] != 0;
      size_t i = (size_t)y * ew + x;
      if (or_into) dst[i] |= (uint8_t)on; else dst[i] = (uint8_t)on;
      a += on;
    }
  }
  vg_image_free(&im);
  if (area) *area = a;
  return VG_OK;
}

static vg_status first_mask_size(const vg_dataset *ds, int *h, int *w) {
  for (int64_t i = 0; i < ds->n; i++) {
    if (ds->samples[i].n_masks <= 0) continue;
    vg_image im;
    vg_status st = vg_image_load(ds->samples[i].masks[0].path, &im, NULL);
    if (st != VG_OK) return st;
    *h = im.h; *w = im.w;
    vg_image_free(&im);
    return VG_OK;
  }
  *h = *w = 0;
  return VG_OK;
}

/* ---- curves --------------------------------------------------------------------- */

typedef struct { double *x, *y; int64_t n; } curve;
static void curve_free(curve *c) { free(c->x); free(c->y); c->x = c->y = NULL; c->n = 0; }
static bool curve_alloc(curve *c, int64_t n) {
  c->x = malloc((size_t)n * sizeof *c->x);
  c->y = malloc((size_t)n * sizeof *c->y);
  c->n = 0;
  return c->x && c->y;
}
static void curve_push(curve *c, double x, double y) { c->x[c->n] = x; c->y[c->n] = y; c->n++; }

static int cmp_desc(const void *a, const void *b, void *u) {
  const float *s = u;
  float x = s[*(const int64_t *)a], y = s[*(const int64_t *)b];
  return x > y ? -1 : x < y ? 1 : 0;
}

/* Exact image-level ROC (fpr, tpr) and PR (recall, precision) from n scores. */
static vg_status image_curves(const float *s, const uint8_t *lab, int64_t n, curve *roc, curve *pr) {
  int64_t *idx = malloc((size_t)n * sizeof *idx);
  if (!idx || !curve_alloc(roc, n + 2) || !curve_alloc(pr, n + 2)) {
    free(idx);
    return vg_fail(VG_ERR_NOMEM, "report: out of memory");
  }
  int64_t P = 0, N = 0;
  for (int64_t i = 0; i < n; i++) { idx[i] = i; P += lab[i] != 0; }
  N = n - P;
  qsort_r(idx, (size_t)n, sizeof *idx, cmp_desc, (void *)s);
  curve_push(roc, 0, 0);
  curve_push(pr, 0, 1);
  int64_t tp = 0, fp = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && s[idx[j]] == s[idx[i]]) { tp += lab[idx[j]] != 0; fp += lab[idx[j]] == 0; j++; }
    curve_push(roc, N ? (double)fp / N : 0, P ? (double)tp / P : 0);
    curve_push(pr, P ? (double)tp / P : 0, (double)tp / (double)(tp + fp));
    i = j;
  }
  free(idx);
  return VG_OK;
}

/* Binned pixel ROC / PR and PRO (8-connected GT regions per image) over nb equal bins of
 * [lo, hi]; thresholds at the bin edges, from the top. */
static vg_status pixel_curves(const float *maps, const uint8_t *masks, int64_t n, int h, int w, int nb,
                              curve *roc, curve *pr, curve *pro) {
  int64_t P = (int64_t)h * w;
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n * P; i++) {
    if (maps[i] < lo) lo = maps[i];
    if (maps[i] > hi) hi = maps[i];
  }
  double *pos = calloc((size_t)nb, sizeof *pos), *neg = calloc((size_t)nb, sizeof *neg);
  double *prb = calloc((size_t)nb, sizeof *prb);
  int32_t *lab = malloc((size_t)P * sizeof *lab);
  int64_t *area = NULL;
  vg_status st = VG_OK;
  if (!pos || !neg || !prb || !lab || !curve_alloc(roc, nb + 2) || !curve_alloc(pr, nb + 2) || !curve_alloc(pro, nb + 2)) {
    st = vg_fail(VG_ERR_NOMEM, "report: out of memory");
    goto done;
  }
  double span = hi > lo ? (double)hi - lo : 1.0;
  int64_t nreg = 0;
  for (int64_t im = 0; im < n; im++) {
    const float *m = maps + im * P;
    const uint8_t *g = masks + im * P;
    int64_t k = vg_eval_connected_components(g, h, w, lab);
    if (k < 0) { st = vg_last_status(); goto done; }
    int64_t *a = realloc(area, (size_t)(k + 1) * sizeof *a);
    if (!a) { st = vg_fail(VG_ERR_NOMEM, "report: out of memory"); goto done; }
    area = a;
    memset(area, 0, (size_t)(k + 1) * sizeof *area);
    for (int64_t i = 0; i < P; i++) area[lab[i]]++;
    for (int64_t i = 0; i < P; i++) {
      int b = (int)((m[i] - lo) / span * nb);
      if (b >= nb) b = nb - 1;
      if (b < 0) b = 0;
      if (g[i]) { pos[b] += 1; if (lab[i]) prb[b] += 1.0 / (double)area[lab[i]]; }
      else neg[b] += 1;
    }
    nreg += k;
  }
  double tp = 0, fp = 0, pr_sum = 0, TP = 0, TN = 0;
  for (int b = 0; b < nb; b++) { TP += pos[b]; TN += neg[b]; }
  curve_push(roc, 0, 0);
  curve_push(pr, 0, 1);
  curve_push(pro, 0, 0);
  for (int b = nb - 1; b >= 0; b--) {
    if (pos[b] == 0 && neg[b] == 0) continue;
    tp += pos[b]; fp += neg[b]; pr_sum += prb[b];
    double fpr = TN > 0 ? fp / TN : 0;
    curve_push(roc, fpr, TP > 0 ? tp / TP : 0);
    curve_push(pr, TP > 0 ? tp / TP : 0, tp + fp > 0 ? tp / (tp + fp) : 1);
    curve_push(pro, fpr, nreg ? pr_sum / (double)nreg : 0);
  }
done:
  free(pos); free(neg); free(prb); free(lab); free(area);
  return st;
}

static vg_status write_svg(const char *path, char *svg) {
  if (!svg) return vg_last_status();
  vg_status st = write_text(path, svg);
  free(svg);
  return st;
}

static vg_status write_curves(const char *dir, const char *name, const vg_eval_metrics *m, const curve *iroc,
                              const curve *ipr, const curve *proc, const curve *ppr, const curve *pro) {
  char l1[96], l2[96], path[4096];
  vg_report_series s[2];
  snprintf(l1, sizeof l1, "image AUROC %.4f", m->image_auroc);
  snprintf(l2, sizeof l2, "pixel AUROC %.4f", m->pixel_auroc);
  s[0] = (vg_report_series){l1, iroc->x, iroc->y, iroc->n};
  s[1] = (vg_report_series){l2, proc->x, proc->y, proc->n};
  snprintf(path, sizeof path, "%s/curves/%s_roc.svg", dir, name);
  vg_status st = write_svg(path, vg_report_svg_curve("ROC", "false positive rate", "true positive rate", 1.0, s, 2));
  if (st != VG_OK) return st;
  snprintf(l1, sizeof l1, "image AUPRC %.4f", m->image_auprc);
  snprintf(l2, sizeof l2, "pixel AUPRC %.4f", m->pixel_auprc);
  s[0] = (vg_report_series){l1, ipr->x, ipr->y, ipr->n};
  s[1] = (vg_report_series){l2, ppr->x, ppr->y, ppr->n};
  snprintf(path, sizeof path, "%s/curves/%s_pr.svg", dir, name);
  st = write_svg(path, vg_report_svg_curve("Precision-recall", "recall", "precision", 1.0, s, 2));
  if (st != VG_OK) return st;
  /* PRO up to the 0.3 limit, interpolated at it. */
  curve c = {0};
  if (!curve_alloc(&c, pro->n + 1)) { curve_free(&c); return vg_fail(VG_ERR_NOMEM, "report: out of memory"); }
  for (int64_t i = 0; i < pro->n; i++) {
    if (pro->x[i] <= VG_EVAL_PRO_LIMIT) { curve_push(&c, pro->x[i], pro->y[i]); continue; }
    double x0 = pro->x[i - 1], y0 = pro->y[i - 1], t = (VG_EVAL_PRO_LIMIT - x0) / (pro->x[i] - x0);
    curve_push(&c, VG_EVAL_PRO_LIMIT, y0 + t * (pro->y[i] - y0));
    break;
  }
  snprintf(l1, sizeof l1, "AU-PRO@0.3 %.4f", m->au_pro);
  s[0] = (vg_report_series){l1, c.x, c.y, c.n};
  snprintf(path, sizeof path, "%s/curves/%s_pro.svg", dir, name);
  st = write_svg(path, vg_report_svg_curve("PRO (binned)", "false positive rate", "per-region overlap",
                                           VG_EVAL_PRO_LIMIT, s, 1));
  curve_free(&c);
  return st;
}

/* ---- one category --------------------------------------------------------------- */

static double margin_of(const rec *r, float thr) {
  double t = isnan(thr) ? 0 : thr;
  return r->label ? r->score - t : t - r->score;
}
static int cmp_margin(const void *a, const void *b, void *u) {
  const vg_report_cat *c = u;
  double x = margin_of(&c->r[*(const int64_t *)a], c->image_thr);
  double y = margin_of(&c->r[*(const int64_t *)b], c->image_thr);
  return x < y ? -1 : x > y ? 1 : 0;
}
/* Record indices sorted by margin, worst (most wrong) first. */
static int64_t *margin_order(const vg_report_cat *c) {
  int64_t *o = malloc((size_t)(c->n ? c->n : 1) * sizeof *o);
  if (!o) return NULL;
  for (int64_t i = 0; i < c->n; i++) o[i] = i;
  qsort_r(o, (size_t)c->n, sizeof *o, cmp_margin, (void *)c);
  return o;
}

vg_status vg_report_category(const vg_report_input *in, const vg_report_opts *opts, vg_report_cat **out) {
  *out = NULL;
  vg_report_opts o = opts ? *opts : vg_report_defaults();
  if (o.curve_bins < 10) o.curve_bins = 2000;
  if (!in || !in->ds || (!in->maps && (!in->map_list || !in->map_hs || !in->map_ws)))
    return vg_fail(VG_ERR_ARG, "report: need a dataset listing and maps");
  const vg_dataset *ds = in->ds;
  int64_t n = ds->n;
  if (n <= 0) return vg_fail(VG_ERR_ARG, "report: the test listing is empty");
  if (in->maps && (in->map_h <= 0 || in->map_w <= 0)) return vg_fail(VG_ERR_ARG, "report: map size %dx%d", in->map_w, in->map_h);
  vg_report_cat *c = calloc(1, sizeof *c);
  if (!c) return vg_fail(VG_ERR_NOMEM, "report: out of memory");
  c->name = xstrdup(in->category && in->category[0] ? in->category : "all");
  c->r = calloc((size_t)n, sizeof *c->r);
  c->n = n;
  c->grid = o.grid < 0 ? 0 : o.grid;
  float *maps = NULL, *scores = NULL;
  uint8_t *masks = NULL, *labels = NULL, *regmask = NULL;
  int64_t *perm = NULL, *reg_img = NULL, *reg_sat = NULL;
  int64_t nreg_loco = 0;
  curve iroc = {0}, ipr = {0}, proc = {0}, ppr = {0}, pro = {0};
  vg_status st = VG_OK;
  if (!c->name || !c->r) { st = vg_fail(VG_ERR_NOMEM, "report: out of memory"); goto fail; }

  /* evaluation size */
  int eh, ew;
  if ((st = first_mask_size(ds, &eh, &ew)) != VG_OK) goto fail;
  if (eh == 0) { eh = in->maps ? in->map_h : in->map_hs[0]; ew = in->maps ? in->map_w : in->map_ws[0]; }
  int64_t P = (int64_t)eh * ew;

  /* order: LOCO puts logical, good, structural so both subsets are contiguous */
  bool loco = false;
  for (int64_t i = 0; i < n; i++)
    if (is_loco_type(ds->samples[i].defect, "logical_anomalies") || is_loco_type(ds->samples[i].defect, "structural_anomalies"))
      loco = true;
  perm = malloc((size_t)n * sizeof *perm);
  if (!perm) { st = vg_fail(VG_ERR_NOMEM, "report: out of memory"); goto fail; }
  int64_t k = 0, n_log = 0, n_good = 0, n_str = 0;
  if (loco) {
    for (int pass = 0; pass < 3; pass++)
      for (int64_t i = 0; i < n; i++) {
        const char *d = ds->samples[i].defect;
        int t = is_loco_type(d, "logical_anomalies") ? 0 : is_loco_type(d, "structural_anomalies") ? 2 : 1;
        if (t != pass) continue;
        perm[k++] = i;
        if (t == 0) n_log++; else if (t == 1) n_good++; else n_str++;
      }
  } else {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
  }

  maps = malloc((size_t)(n * P) * sizeof *maps);
  masks = calloc((size_t)(n * P), 1);
  scores = malloc((size_t)n * sizeof *scores);
  labels = malloc((size_t)n);
  if (!maps || !masks || !scores || !labels) {
    st = vg_fail(VG_ERR_NOMEM, "report: out of memory for %lld maps of %dx%d", (long long)n, ew, eh);
    goto fail;
  }
  int64_t total_masks = 0;
  for (int64_t i = 0; i < n; i++) total_masks += ds->samples[i].n_masks;
  if (loco && total_masks) {
    regmask = calloc((size_t)(total_masks * P), 1);
    reg_img = malloc((size_t)total_masks * sizeof *reg_img);
    reg_sat = malloc((size_t)total_masks * sizeof *reg_sat);
    if (!regmask || !reg_img || !reg_sat) { st = vg_fail(VG_ERR_NOMEM, "report: out of memory for LOCO masks"); goto fail; }
  }
  for (int64_t j = 0; j < n; j++) {
    const vg_sample *s = &ds->samples[perm[j]];
    rec *r = &c->r[j];
    r->rel = sample_rel(s);
    r->image = xstrdup(s->image);
    r->label = s->label != 0;
    if (!r->rel || !r->image) { st = vg_fail(VG_ERR_NOMEM, "report: out of memory"); goto fail; }
    labels[j] = (uint8_t)r->label;
    const float *src = in->maps ? in->maps + perm[j] * (int64_t)in->map_h * in->map_w : in->map_list[perm[j]];
    int mh = in->maps ? in->map_h : in->map_hs[perm[j]], mw = in->maps ? in->map_w : in->map_ws[perm[j]];
    if (!src || mh <= 0 || mw <= 0) { st = vg_fail(VG_ERR_ARG, "report: no map for %s", s->image); goto fail; }
    if (mh != eh || mw != ew) c->met.maps_resized = true;
    vg_report_resize_map(src, mh, mw, maps + j * P, eh, ew);
    float mx = -INFINITY;
    for (int64_t i = 0; i < P; i++) {
      float v = maps[j * P + i];
      if (isnan(v)) { st = vg_fail(VG_ERR_NUMERIC, "report: the map of %s holds NaN", s->image); goto fail; }
      if (v > mx) mx = v;
    }
    r->score = in->scores ? in->scores[perm[j]] : mx;
    scores[j] = r->score;
    for (int q = 0; q < s->n_masks; q++) {
      int64_t area;
      st = load_mask(s->masks[q].path, eh, ew, masks + j * P, true, &area);
      if (st != VG_OK) goto fail;
      if (regmask) {
        uint8_t *rm = regmask + nreg_loco * P;
        if ((st = load_mask(s->masks[q].path, eh, ew, rm, false, &area)) != VG_OK) goto fail;
        if (area == 0) continue;    /* empty LOCO mask: no defect to overlap */
        int64_t sat = s->masks[q].has_saturation
                          ? vg_eval_spro_saturation(area, s->masks[q].saturation_threshold, s->masks[q].relative_saturation)
                          : area;
        reg_img[nreg_loco] = j;
        reg_sat[nreg_loco] = sat > 0 ? sat : 1;
        nreg_loco++;
      }
    }
  }
  c->met.eval_h = eh;
  c->met.eval_w = ew;
  if ((st = vg_eval_summary(maps, masks, n, eh, ew, scores, labels, &c->met.m)) != VG_OK) goto fail;
  c->image_thr = c->met.m.image_f1_threshold;
  c->pixel_thr = isnan(o.threshold) ? c->met.m.pixel_f1_threshold : o.threshold;

  if (loco) {
    c->met.loco = true;
    vg_eval_region *rg = malloc((size_t)(nreg_loco ? nreg_loco : 1) * sizeof *rg);
    if (!rg) { st = vg_fail(VG_ERR_NOMEM, "report: out of memory"); goto fail; }
    for (int t = 0; t < 2; t++) {   /* logical: [0, n_log + n_good); structural: [n_log, n) */
      int64_t off = t == 0 ? 0 : n_log, cnt = t == 0 ? n_log + n_good : n_good + n_str, nr = 0;
      for (int64_t q = 0; q < nreg_loco; q++)
        if (reg_img[q] >= off && reg_img[q] < off + cnt && labels[reg_img[q]])
          rg[nr++] = (vg_eval_region){reg_img[q] - off, regmask + q * P, reg_sat[q]};
      st = vg_eval_au_spro(maps + off * P, cnt, eh, ew, rg, nr, NULL, VG_EVAL_SPRO_NLIMITS, c->met.au_spro[t]);
      if (st != VG_OK) { free(rg); goto fail; }
      vg_clear_error();
      c->met.loco_image_auroc[t] = cnt > 0 ? vg_eval_auroc(scores + off, labels + off, cnt) : NAN;
    }
    free(rg);
    for (int l = 0; l < VG_EVAL_SPRO_NLIMITS; l++)
      c->met.au_spro[2][l] = 0.5 * (c->met.au_spro[0][l] + c->met.au_spro[1][l]);
    c->met.loco_image_auroc[2] = 0.5 * (c->met.loco_image_auroc[0] + c->met.loco_image_auroc[1]);
  }

  if (o.dir) {
    char path[4096];
    if ((st = image_curves(scores, labels, n, &iroc, &ipr)) != VG_OK ||
        (st = pixel_curves(maps, masks, n, eh, ew, o.curve_bins, &proc, &ppr, &pro)) != VG_OK ||
        (st = write_curves(o.dir, c->name, &c->met.m, &iroc, &ipr, &proc, &ppr, &pro)) != VG_OK)
      goto fail;
    c->curves = true;
    /* overlays */
    bool *want = calloc((size_t)n, sizeof *want);
    int64_t *ord = margin_order(c);
    if (!want || !ord) { free(want); free(ord); st = vg_fail(VG_ERR_NOMEM, "report: out of memory"); goto fail; }
    int g = o.grid < 0 ? 0 : o.grid;
    for (int64_t j = 0; j < n; j++) {
      if (o.overlays == 0) want[j] = true;
      else if (o.overlays > 0 && (j < g || j >= n - g)) want[ord[j]] = true;
    }
    free(ord);
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n * P; i++) { if (maps[i] < lo) lo = maps[i]; if (maps[i] > hi) hi = maps[i]; }
    for (int64_t j = 0; j < n && st == VG_OK; j++) {
      if (!want[j]) continue;
      rec *r = &c->r[j];
      vg_image im, ov;
      if ((st = vg_image_load(r->image, &im, NULL)) != VG_OK) break;
      st = vg_report_overlay(&im, maps + j * P, eh, ew, lo, hi, masks + j * P, c->pixel_thr, o.overlay_max_side, &ov);
      vg_image_free(&im);
      if (st != VG_OK) { vg_fail_prefix("%s", r->image); break; }
      r->overlay = xprintf("heatmaps/%s/%s.png", c->name, r->rel);
      if (!r->overlay) st = vg_fail(VG_ERR_NOMEM, "report: out of memory");
      snprintf(path, sizeof path, "%s/%s", o.dir, r->overlay ? r->overlay : "");
      if (st == VG_OK) st = vg_mkdir_parents(path);
      if (st == VG_OK) st = vg_png_save(path, &ov);
      vg_image_free(&ov);
    }
    free(want);
    if (st != VG_OK) goto fail;
  }
  goto done;
fail:
  vg_report_cat_free(c);
  c = NULL;
done:
  curve_free(&iroc); curve_free(&ipr); curve_free(&proc); curve_free(&ppr); curve_free(&pro);
  free(maps); free(masks); free(scores); free(labels); free(regmask); free(perm); free(reg_img); free(reg_sat);
  *out = c;
  return c ? VG_OK : st;
}

/* ---- JSON / table ------------------------------------------------------------------ */

static void put(vg_json_writer *w, const char *k, double v) {
  vg_jw_key(w, k);
  if (isfinite(v)) vg_jw_double(w, v); else vg_jw_null(w);
}

/* Metric accessors shared by JSON, table and HTML (index into a fixed list). */
enum { M_IAUROC, M_IAUPRC, M_F1, M_F1T, M_PAUROC, M_PAUPRC, M_PF1, M_PF1T, M_PRO, M_PRO5, M_PAUROC5, M_COUNT };
static const char *const m_key[M_COUNT] = {"image_auroc", "image_auprc", "f1_max", "f1_threshold", "pixel_auroc",
                                           "pixel_auprc", "pixel_f1_max", "pixel_f1_threshold", "au_pro",
                                           "au_pro_5", "pixel_auroc_5"};
static double m_get(const vg_report_metrics *r, int k) {
  const vg_eval_metrics *m = &r->m;
  switch (k) {
    case M_IAUROC: return m->image_auroc;
    case M_IAUPRC: return m->image_auprc;
    case M_F1: return m->image_f1_max;
    case M_F1T: return m->image_f1_threshold;
    case M_PAUROC: return m->pixel_auroc;
    case M_PAUPRC: return m->pixel_auprc;
    case M_PF1: return m->pixel_f1_max;
    case M_PF1T: return m->pixel_f1_threshold;
    case M_PRO: return m->au_pro;
    case M_PRO5: return m->au_pro_5;
    case M_PAUROC5: return m->pixel_auroc_5;
  }
  return NAN;
}
static const char *const loco_names[3] = {"logical", "structural", "mean"};

/* Mean of finite values; NaN when none. */
static double mean_of(vg_report_cat *const *cats, int n, int k, int loco_t, int loco_l) {
  double s = 0;
  int c = 0;
  for (int i = 0; i < n; i++) {
    const vg_report_metrics *m = &cats[i]->met;
    double v = k >= 0 ? m_get(m, k) : !m->loco ? NAN : loco_l >= 0 ? m->au_spro[loco_t][loco_l] : m->loco_image_auroc[loco_t];
    if (isfinite(v)) { s += v; c++; }
  }
  return c ? s / c : NAN;
}

static void put_loco(vg_json_writer *w, vg_report_cat *const *cats, int n, const vg_report_metrics *one) {
  vg_jw_key(w, "loco");
  vg_jw_begin_object(w);
  vg_jw_key(w, "fpr_limits");
  vg_jw_begin_array(w);
  for (int l = 0; l < VG_EVAL_SPRO_NLIMITS; l++) vg_jw_double(w, vg_eval_spro_default_limits[l]);
  vg_jw_end_array(w);
  vg_jw_key(w, "au_spro");
  vg_jw_begin_object(w);
  for (int t = 0; t < 3; t++) {
    vg_jw_key(w, loco_names[t]);
    vg_jw_begin_array(w);
    for (int l = 0; l < VG_EVAL_SPRO_NLIMITS; l++) {
      double v = one ? one->au_spro[t][l] : mean_of(cats, n, -1, t, l);
      if (isfinite(v)) vg_jw_double(w, v); else vg_jw_null(w);
    }
    vg_jw_end_array(w);
  }
  vg_jw_end_object(w);
  vg_jw_key(w, "image_auroc");
  vg_jw_begin_object(w);
  for (int t = 0; t < 3; t++) put(w, loco_names[t], one ? one->loco_image_auroc[t] : mean_of(cats, n, -1, t, -1));
  vg_jw_end_object(w);
  vg_jw_end_object(w);
}

char *vg_report_json(const char *dataset, vg_report_cat *const *cats, int n) {
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "dataset");
  vg_jw_string(&w, dataset ? dataset : "");
  vg_jw_key(&w, "evaluation");
  vg_jw_string(&w, "maps bilinear-resized to the GT mask size; image score = map max unless given");
  vg_jw_key(&w, "categories");
  vg_jw_begin_object(&w);
  bool any_loco = false;
  for (int i = 0; i < n; i++) {
    const vg_report_metrics *m = &cats[i]->met;
    vg_jw_key(&w, cats[i]->name);
    vg_jw_begin_object(&w);
    for (int k = 0; k < M_COUNT; k++) put(&w, m_key[k], m_get(m, k));
    put(&w, "au_pro_fpr_limit", VG_EVAL_PRO_LIMIT);
    vg_jw_key(&w, "n_images"); vg_jw_int64(&w, m->m.n_images);
    vg_jw_key(&w, "n_anomalous_images"); vg_jw_int64(&w, m->m.n_anomalous_images);
    vg_jw_key(&w, "n_regions"); vg_jw_int64(&w, m->m.n_regions);
    vg_jw_key(&w, "eval_resolution");
    vg_jw_begin_array(&w); vg_jw_int64(&w, m->eval_h); vg_jw_int64(&w, m->eval_w); vg_jw_end_array(&w);
    vg_jw_key(&w, "maps_resized"); vg_jw_bool(&w, m->maps_resized);
    if (m->loco) { put_loco(&w, cats, n, m); any_loco = true; }
    vg_jw_end_object(&w);
  }
  vg_jw_end_object(&w);
  vg_jw_key(&w, "mean");
  vg_jw_begin_object(&w);
  for (int k = 0; k < M_COUNT; k++)
    if (k != M_F1T && k != M_PF1T) put(&w, m_key[k], mean_of(cats, n, k, 0, 0));
  if (any_loco) put_loco(&w, cats, n, NULL);
  vg_jw_end_object(&w);
  vg_jw_end_object(&w);
  return vg_jw_finish(&w, NULL);
}

vg_status vg_report_write_json(const char *path, const char *dataset, vg_report_cat *const *cats, int n) {
  char *t = vg_report_json(dataset, cats, n);
  if (!t) return vg_last_status() != VG_OK ? vg_last_status() : vg_fail(VG_ERR_NOMEM, "report: JSON");
  size_t len = strlen(t);
  char *t2 = realloc(t, len + 2);
  if (!t2) { free(t); return vg_fail(VG_ERR_NOMEM, "report: out of memory"); }
  t2[len] = '\n'; t2[len + 1] = 0;
  vg_status st = write_text(path, t2);
  free(t2);
  return st;
}

static void cell(char *b, size_t cap, double v) {
  if (isfinite(v)) snprintf(b, cap, "%.4f", v); else snprintf(b, cap, "-");
}

char *vg_report_table(vg_report_cat *const *cats, int n) {
  static const int cols[] = {M_IAUROC, M_IAUPRC, M_F1, M_PAUROC, M_PAUPRC, M_PRO};
  static const char *const head[] = {"I-AUROC", "I-AUPRC", "F1-max", "P-AUROC", "P-AUPRC", "AU-PRO"};
  size_t cap = (size_t)(n + 4) * 256;
  char *s = malloc(cap), c[32];
  if (!s) return NULL;
  size_t len = (size_t)snprintf(s, cap, "%-22s", "category");
  for (int k = 0; k < 6; k++) len += (size_t)snprintf(s + len, cap - len, " %8s", head[k]);
  len += (size_t)snprintf(s + len, cap - len, "\n");
  for (int i = 0; i <= n; i++) {
    if (i == n && n < 2) break;
    len += (size_t)snprintf(s + len, cap - len, "%-22.22s", i < n ? cats[i]->name : "mean");
    for (int k = 0; k < 6; k++) {
      cell(c, sizeof c, i < n ? m_get(&cats[i]->met, cols[k]) : mean_of(cats, n, cols[k], 0, 0));
      len += (size_t)snprintf(s + len, cap - len, " %8s", c);
    }
    len += (size_t)snprintf(s + len, cap - len, "\n");
  }
  bool any = false;
  for (int i = 0; i < n; i++) any |= cats[i]->met.loco;
  if (any) {
    len += (size_t)snprintf(s + len, cap - len, "%-22s %8s %8s %8s %8s %8s %8s\n", "LOCO (mean of log/str)",
                            "sPRO.01", "sPRO.05", "sPRO.1", "sPRO.3", "sPRO1", "I-AUROC");
    for (int i = 0; i <= n; i++) {
      if (i < n && !cats[i]->met.loco) continue;
      if (i == n && n < 2) break;
      len += (size_t)snprintf(s + len, cap - len, "%-22.22s", i < n ? cats[i]->name : "mean");
      for (int l = 0; l <= VG_EVAL_SPRO_NLIMITS; l++) {
        double v = l < VG_EVAL_SPRO_NLIMITS ? (i < n ? cats[i]->met.au_spro[2][l] : mean_of(cats, n, -1, 2, l))
                                            : (i < n ? cats[i]->met.loco_image_auroc[2] : mean_of(cats, n, -1, 2, -1));
        cell(c, sizeof c, v);
        len += (size_t)snprintf(s + len, cap - len, " %8s", c);
      }
      len += (size_t)snprintf(s + len, cap - len, "\n");
    }
  }
  return s;
}

/* ---- HTML -------------------------------------------------------------------------- */

typedef struct { char *s; size_t n, cap; bool oom; } hbuf;
static void hb_add(hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hb_add(hbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0) { b->oom = true; return; }
  if (b->n + (size_t)k + 1 > b->cap) {
    size_t nc = (b->cap ? b->cap * 2 : 8192) + (size_t)k;
    char *t = realloc(b->s, nc);
    if (!t) { b->oom = true; return; }
    b->s = t; b->cap = nc;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}
static void hb_esc(hbuf *b, const char *t) {
  for (; t && *t; t++) {
    if (*t == '<') hb_add(b, "&lt;");
    else if (*t == '>') hb_add(b, "&gt;");
    else if (*t == '&') hb_add(b, "&amp;");
    else if (*t == '"') hb_add(b, "&quot;");
    else hb_add(b, "%c", *t);
  }
}
/* A relative URL: path segments percent-encoded where needed. */
static void hb_url(hbuf *b, const char *t) {
  for (; t && *t; t++) {
    unsigned char ch = (unsigned char)*t;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("/._-~", ch))
      hb_add(b, "%c", ch);
    else hb_add(b, "%%%02X", ch);
  }
}
static void hb_num(hbuf *b, double v) {
  if (isfinite(v)) hb_add(b, "<td>%.4f</td>", v); else hb_add(b, "<td>&ndash;</td>");
}

static void html_grid(hbuf *b, const vg_report_cat *c, const int64_t *ord, int64_t from, int64_t to, int step) {
  hb_add(b, "<div class=\"grid\">\n");
  for (int64_t j = from; j != to; j += step) {
    const rec *r = &c->r[ord[j]];
    bool ok = margin_of(r, c->image_thr) >= 0;
    hb_add(b, "<figure class=\"%s\">", ok ? "ok" : "bad");
    if (r->overlay) {
      hb_add(b, "<img src=\"");
      hb_url(b, r->overlay);
      hb_add(b, "\" alt=\"");
      hb_esc(b, r->rel);
      hb_add(b, "\" loading=\"eager\">");
    }
    hb_add(b, "<figcaption>");
    hb_esc(b, r->rel);
    hb_add(b, "<br>score %.4g &middot; %s &middot; %s</figcaption></figure>\n", r->score,
           r->label ? "anomalous" : "good", ok ? "correct" : "wrong");
  }
  hb_add(b, "</div>\n");
}

vg_status vg_report_write_html(const char *dir, const char *dataset, vg_report_cat *const *cats, int n) {
  hbuf b = {0};
  char when[64];
  time_t now = time(NULL);
  struct tm tmv;
  strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime_r(&now, &tmv));
  hb_add(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Vigil report &ndash; ");
  hb_esc(&b, dataset);
  hb_add(&b, "</title>\n<style>\n"
             "body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}\n"
             "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px}\n"
             "h3{font-size:15px;margin:12px 0 6px}p.note{color:#555;font-size:13px;margin:4px 0 16px}\n"
             "table{border-collapse:collapse;font-size:13px;margin:8px 0 16px}\n"
             "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}\n"
             "td:first-child,th:first-child{text-align:left}tr.mean td{font-weight:bold;background:#f0f0f0}\n"
             ".curves img{width:360px;height:320px;margin:0 8px 8px 0;border:1px solid #ddd;background:#fff}\n"
             ".grid{display:flex;flex-wrap:wrap;gap:8px}\n"
             "figure{margin:0;width:200px;background:#fff;border:2px solid #ccc;padding:4px}\n"
             "figure.ok{border-color:#6a6}figure.bad{border-color:#c44}\n"
             "figure img{width:100%%;display:block}figcaption{font-size:11px;word-break:break-all;margin-top:3px}\n"
             ".legend span{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 4px 0 12px;border:1px solid #999}\n"
             "</style></head>\n<body data-img-ok=\"0\" data-img-total=\"0\">\n<h1>Vigil evaluation report &ndash; ");
  hb_esc(&b, dataset);
  hb_add(&b, "</h1>\n<p class=\"note\">%s. Maps are evaluated at the ground-truth mask resolution (bilinear "
             "resize when needed); image score = map maximum unless scores were given. AU-PRO: MVTec official, "
             "FPR limit 0.3. Overlays: jet map over the image<span class=\"legend\"><span style=\"background:#fff\">"
             "</span>ground truth<span style=\"background:#f0f\"></span>prediction (pixel F1-max threshold)</span></p>\n",
         when);
  hb_add(&b, "<h2>Metrics</h2>\n<table><tr><th>category</th><th>images</th><th>image AUROC</th><th>image AUPRC</th>"
             "<th>F1-max</th><th>pixel AUROC</th><th>pixel AUPRC</th><th>AU-PRO@0.3</th></tr>\n");
  static const int cols[] = {M_IAUROC, M_IAUPRC, M_F1, M_PAUROC, M_PAUPRC, M_PRO};
  bool any_loco = false;
  for (int i = 0; i <= n; i++) {
    if (i == n && n < 2) break;
    hb_add(&b, "<tr%s><td>", i == n ? " class=\"mean\"" : "");
    hb_esc(&b, i < n ? cats[i]->name : "mean");
    if (i < n) hb_add(&b, "</td><td>%lld (%lld anomalous)</td>", (long long)cats[i]->met.m.n_images,
                      (long long)cats[i]->met.m.n_anomalous_images);
    else hb_add(&b, "</td><td></td>");
    for (int k = 0; k < 6; k++) hb_num(&b, i < n ? m_get(&cats[i]->met, cols[k]) : mean_of(cats, n, cols[k], 0, 0));
    hb_add(&b, "</tr>\n");
    if (i < n) any_loco |= cats[i]->met.loco;
  }
  hb_add(&b, "</table>\n");
  if (any_loco) {
    hb_add(&b, "<h3>MVTec LOCO: AU-sPRO by FPR limit and image AUROC</h3>\n<table><tr><th>category</th><th>type</th>");
    for (int l = 0; l < VG_EVAL_SPRO_NLIMITS; l++) hb_add(&b, "<th>sPRO@%g</th>", vg_eval_spro_default_limits[l]);
    hb_add(&b, "<th>image AUROC</th></tr>\n");
    for (int i = 0; i < n; i++) {
      if (!cats[i]->met.loco) continue;
      for (int t = 0; t < 3; t++) {
        hb_add(&b, "<tr%s><td>", t == 2 ? " class=\"mean\"" : "");
        hb_esc(&b, cats[i]->name);
        hb_add(&b, "</td><td>%s</td>", loco_names[t]);
        for (int l = 0; l < VG_EVAL_SPRO_NLIMITS; l++) hb_num(&b, cats[i]->met.au_spro[t][l]);
        hb_num(&b, cats[i]->met.loco_image_auroc[t]);
        hb_add(&b, "</tr>\n");
      }
    }
    hb_add(&b, "</table>\n");
  }
  for (int i = 0; i < n; i++) {
    const vg_report_cat *c = cats[i];
    hb_add(&b, "<section>\n<h2>");
    hb_esc(&b, c->name);
    hb_add(&b, "</h2>\n<p class=\"note\">evaluated at %dx%d; image F1-max threshold %.6g; overlay threshold %.6g</p>\n",
           c->met.eval_w, c->met.eval_h, c->image_thr, c->pixel_thr);
    if (c->curves) {
      hb_add(&b, "<div class=\"curves\">");
      static const char *const kinds[] = {"roc", "pr", "pro"};
      for (int k = 0; k < 3; k++) {
        hb_add(&b, "<img src=\"curves/");
        hb_url(&b, c->name);
        hb_add(&b, "_%s.svg\" alt=\"%s curve\" width=\"360\" height=\"320\">", kinds[k], kinds[k]);
      }
      hb_add(&b, "</div>\n");
    }
    int64_t *ord = margin_order(c);
    if (!ord) { free(b.s); return vg_fail(VG_ERR_NOMEM, "report: out of memory"); }
    int64_t half = (c->n + 1) / 2;   /* fewer than 2 * grid images: split them */
    int64_t gb = c->grid < half ? c->grid : half, gw = c->grid < c->n - gb ? c->grid : c->n - gb;
    hb_add(&b, "<h3>Best %lld (largest margin to the image threshold)</h3>\n", (long long)gb);
    html_grid(&b, c, ord, c->n - 1, c->n - 1 - gb, -1);
    hb_add(&b, "<h3>Worst %lld</h3>\n", (long long)gw);
    html_grid(&b, c, ord, 0, gw, 1);
    free(ord);
    hb_add(&b, "</section>\n");
  }
  hb_add(&b, "<script>window.addEventListener('load',function(){var a=document.images,k=0;"
             "for(var i=0;i<a.length;i++)if(a[i].complete&&a[i].naturalWidth>0)k++;"
             "document.body.setAttribute('data-img-ok',k);document.body.setAttribute('data-img-total',a.length);});"
             "</script>\n</body></html>\n");
  if (b.oom) { free(b.s); return vg_fail(VG_ERR_NOMEM, "report: out of memory"); }
  char path[4096];
  snprintf(path, sizeof path, "%s/report.html", dir);
  vg_status st = write_text(path, b.s);
  free(b.s);
  return st;
}
