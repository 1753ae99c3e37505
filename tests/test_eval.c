/* test_eval.c — eval/ metrics against sklearn, MVTec AD's official AU-PRO and MVTec
 * LOCO's sPRO definitions (references in tests/fixtures/eval/eval.bin, written by
 * tools/gen_eval_fixtures.py), plus degenerate inputs and the binned error bound. */
#include "tests/vgtest.h"
#include "eval/eval.h"

#define TOL 1e-6

/* ---- fixture file: b"VGEF", u32 version, u32 count, records (see the generator) ---- */
typedef struct { char name[64]; int dtype; int64_t n; void *data; } rec;
static rec recs[64];
static int nrecs;
static const int dsize[5] = {4, 8, 1, 4, 8};

static int load_fixtures(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char magic[4];
  uint32_t ver, cnt;
  int ok = fread(magic, 4, 1, f) == 1 && !memcmp(magic, "VGEF", 4) && fread(&ver, 4, 1, f) == 1 &&
           ver == 1 && fread(&cnt, 4, 1, f) == 1 && cnt <= 64;
  for (uint32_t i = 0; ok && i < cnt; i++) {
    uint16_t len;
    uint8_t dt;
    rec *r = &recs[nrecs];
    ok = fread(&len, 2, 1, f) == 1 && len < sizeof r->name && fread(r->name, len, 1, f) == 1 &&
         fread(&dt, 1, 1, f) == 1 && dt < 5 && fread(&r->n, 8, 1, f) == 1 && r->n >= 0;
    if (!ok) break;
    r->name[len] = 0;
    r->dtype = dt;
    r->data = malloc((size_t)(r->n ? r->n : 1) * dsize[dt]);
    ok = r->data && (r->n == 0 || fread(r->data, (size_t)r->n * dsize[dt], 1, f) == 1);
    nrecs++;
  }
  fclose(f);
  return ok;
}

static void *get(const char *name, int dtype, int64_t *n) {
  for (int i = 0; i < nrecs; i++)
    if (!strcmp(recs[i].name, name)) {
      if (recs[i].dtype != dtype) break;
      if (n) *n = recs[i].n;
      return recs[i].data;
    }
  fprintf(stderr, "fixture record %s missing\n", name);
  exit(1);
}

/* |got - want| <= TOL (NaN only matches NaN); tracks the max error per family. */
static int close_to(double got, double want, double *maxerr) {
  if (isnan(want) || isnan(got)) return isnan(want) && isnan(got);
  double d = fabs(got - want);
  if (d > *maxerr) *maxerr = d;
  return d <= TOL;
}

/* ---- the generator shared with tools/gen_eval_fixtures.py ---- */
static uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static void hashed_case(const int64_t *prm, float *score, uint8_t *lab) {
  uint64_t seed = (uint64_t)prm[0] << 32;
  int64_t n = prm[1], q = prm[2], thr = prm[3], off = prm[4], base = prm[5];
  for (int64_t i = 0; i < n; i++) {
    uint64_t h1 = splitmix64(seed + 2 * (uint64_t)i), h2 = splitmix64(seed + 2 * (uint64_t)i + 1);
    lab[i] = (int64_t)(h2 >> 32) < thr;
    int64_t u = q ? (int64_t)(h1 >> (64 - q)) : 0;
    score[i] = (float)(u + lab[i] * off - base) * ldexpf(1.0f, -(int)q);
  }
}

/* ref = {auroc, auprc, f1, f1 threshold, threshold is the unique argmax} */
static double err_roc, err_ap, err_f1;
static void check_binary(const char *what, const float *s, const uint8_t *l, int64_t n,
                         const double *ref) {
  vg_eval_binary b;
  vg_status st = vg_eval_binary_metrics(s, l, n, &b);
  int ok = st == VG_OK && close_to(b.auroc, ref[0], &err_roc) && close_to(b.auprc, ref[1], &err_ap) &&
           close_to(b.f1_max, ref[2], &err_f1);
  /* among F1 values equal up to rounding sklearn's argmax may pick another threshold */
  if (ref[4] != 0) ok = ok && (isnan(ref[3]) ? isnan(b.f1_threshold) : b.f1_threshold == (float)ref[3]);
  VG_CHECK(ok, "%s n=%lld: auroc %.9f (sk %.9f) ap %.9f (sk %.9f) f1 %.9f (sk %.9f) thr %g (sk %g%s)",
           what, (long long)n, b.auroc, ref[0], b.auprc, ref[1], b.f1_max, ref[2],
           b.f1_threshold, ref[3], ref[4] != 0 ? "" : ", tie");
  /* the threshold must reach the max F1 whatever the tie-break */
  if (!isnan(b.f1_threshold)) {
    int64_t tp = 0, fp = 0, P = 0;
    for (int64_t i = 0; i < n; i++) {
      P += l[i] != 0;
      if (s[i] >= b.f1_threshold) { tp += l[i] != 0; fp += l[i] == 0; }
    }
    double f1 = 2.0 * tp / (double)(tp + fp + P);
    VG_CHECK(fabs(f1 - ref[2]) <= TOL, "%s: F1 at returned threshold %.9f == max %.9f", what, f1, ref[2]);
  }
}

static void test_binary(void) {
  int64_t nx, no, nr;
  const float *s = get("bx_scores", 0, &nx);
  const uint8_t *l = get("bx_labels", 2, NULL);
  const int64_t *off = get("bx_offsets", 4, &no);
  const double *ref = get("bx_ref", 1, NULL);
  for (int64_t c = 0; c + 1 < no; c++) {
    char what[64];
    snprintf(what, sizeof what, "binary explicit %lld", (long long)c);
    check_binary(what, s + off[c], l + off[c], off[c + 1] - off[c], ref + 5 * c);
  }
  const int64_t *prm = get("bh_params", 4, &nr);
  ref = get("bh_ref", 1, NULL);
  for (int64_t c = 0; c < nr / 6; c++) {
    const int64_t *p = prm + 6 * c;
    float *hs = malloc((size_t)p[1] * sizeof *hs);
    uint8_t *hl = malloc((size_t)p[1]);
    hashed_case(p, hs, hl);
    char what[64];
    snprintf(what, sizeof what, "binary hashed seed=%lld q=%lld", (long long)p[0], (long long)p[2]);
    check_binary(what, hs, hl, p[1], ref + 5 * c);
    free(hs);
    free(hl);
  }
  VG_CHECK(err_roc <= TOL && err_ap <= TOL && err_f1 <= TOL,
           "binary vs sklearn: max |err| auroc %.3g auprc %.3g f1 %.3g", err_roc, err_ap, err_f1);
}

static void test_degenerate(void) {
  const float s[4] = {0.1f, 0.4f, 0.4f, 0.9f};
  const uint8_t neg[4] = {0, 0, 0, 0}, pos[4] = {1, 2, 255, 1}, mix[4] = {0, 1, 0, 1};
  float thr = 0;
  vg_clear_error();
  double v = vg_eval_auroc(s, neg, 4);
  VG_CHECK(isnan(v) && vg_last_status() == VG_ERR_ARG && strstr(vg_last_error(), "no positive"),
           "all-negative AUROC is NaN with a message: '%s'", vg_last_error());
  VG_CHECK(isnan(vg_eval_auprc(s, neg, 4)) && isnan(vg_eval_f1_max(s, neg, 4, &thr)) && isnan(thr),
           "all-negative AUPRC, F1 and threshold are NaN");
  v = vg_eval_auroc(s, pos, 4);
  VG_CHECK(isnan(v) && strstr(vg_last_error(), "no negative"), "all-positive AUROC is NaN: '%s'",
           vg_last_error());
  double ap = vg_eval_auprc(s, pos, 4), f1 = vg_eval_f1_max(s, pos, 4, &thr);
  VG_CHECK(ap == 1.0 && f1 == 1.0 && thr == 0.1f,
           "all-positive AUPRC = F1 = 1 at the lowest score (thr %g)", thr);
  const float sn[4] = {0.1f, NAN, 0.4f, 0.9f};
  vg_eval_binary b;
  vg_status st = vg_eval_binary_metrics(sn, mix, 4, &b);
  VG_CHECK(st == VG_ERR_NUMERIC, "NaN score rejected: '%s'", vg_last_error());
  VG_CHECK(vg_eval_binary_metrics(s, mix, 0, &b) == VG_ERR_ARG && isnan(vg_eval_auroc(s, mix, 0)),
           "n = 0 rejected");
  const float si[4] = {-INFINITY, 0.0f, INFINITY, -0.0f};
  const uint8_t li[4] = {0, 1, 1, 0};
  v = vg_eval_auroc(si, li, 4);
  VG_CHECK(v == 0.875, "+-Inf ordered, -0 tied with +0: auroc %g (want 0.875)", v);
}

static void test_components(void) {
  const int64_t *meta = get("pro_meta", 4, NULL);
  const uint8_t *masks = get("pro_masks", 2, NULL);
  const int32_t *want = get("pro0_labels", 3, NULL);
  int64_t n = meta[0], h = meta[1], w = meta[2], bad = 0, total = 0;
  int32_t *lab = malloc((size_t)(h * w) * sizeof *lab);
  for (int64_t i = 0; i < n; i++) {
    int64_t k = vg_eval_connected_components(masks + i * h * w, h, w, lab);
    int32_t kmax = 0;
    for (int64_t p = 0; p < h * w; p++) {
      bad += lab[p] != want[i * h * w + p];
      kmax = want[i * h * w + p] > kmax ? want[i * h * w + p] : kmax;
    }
    bad += k != kmax;
    total += k;
  }
  VG_CHECK(bad == 0, "8-connected labels == scipy.ndimage.label(ones(3,3)) on %lld images (%lld regions, %lld mismatches)",
           (long long)n, (long long)total, (long long)bad);
  /* two squares touching at a corner are one region; 4-adjacent rows too */
  const uint8_t m[4 * 4] = {1, 1, 0, 0,
                            1, 1, 0, 0,
                            0, 0, 1, 0,
                            0, 0, 0, 0};
  const uint8_t m2[3 * 5] = {1, 0, 0, 0, 1,
                             0, 0, 0, 0, 1,
                             0, 1, 0, 0, 0};
  int32_t l[16];
  VG_CHECK(vg_eval_connected_components(m, 4, 4, l) == 1 && l[10] == 1, "diagonal touch merges");
  VG_CHECK(vg_eval_connected_components(m2, 3, 5, l) == 3 && l[4] == 2 && l[9] == 2 && l[11] == 3,
           "separate blobs numbered in raster order");
  free(lab);
}

static void test_pro(void) {
  int64_t nm;
  const int64_t *meta = get("pro_meta", 4, &nm);
  const float *maps = get("pro_maps", 0, NULL);
  const uint8_t *masks = get("pro_masks", 2, NULL);
  const double *ref = get("pro_ref", 1, NULL);
  const double lim[4] = {0.3, 0.05, 1.0, 0.123456};
  double maxerr = 0;
  int64_t off = 0;
  for (int64_t c = 0; c < nm / 3; c++) {
    int64_t n = meta[3 * c], h = meta[3 * c + 1], w = meta[3 * c + 2];
    for (int k = 0; k < 4; k++) {
      double got = NAN;
      vg_status st = vg_eval_au_pro(maps + off, masks + off, n, h, w, lim[k], &got);
      VG_CHECK(st == VG_OK && close_to(got, ref[4 * c + k], &maxerr),
               "AU-PRO case %lld (%lldx%lldx%lld) limit %g: %.9f (official %.9f)", (long long)c,
               (long long)n, (long long)h, (long long)w, lim[k], got, ref[4 * c + k]);
    }
    off += n * h * w;
  }
  VG_CHECK(maxerr <= TOL, "AU-PRO vs official MVTec code: max |err| %.3g", maxerr);

  /* degenerate: no region -> NaN; NaN map -> error; bad limit -> error */
  float mp[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  uint8_t none[6] = {0}, all[6] = {1, 1, 1, 1, 1, 1};
  double v = 0;
  VG_CHECK(vg_eval_au_pro(mp, none, 1, 2, 3, 0.3, &v) == VG_OK && isnan(v), "AU-PRO without regions is NaN");
  VG_CHECK(vg_eval_au_pro(mp, all, 1, 2, 3, 0.3, &v) == VG_OK && isnan(v), "AU-PRO without normal pixels is NaN");
  VG_CHECK(vg_eval_au_pro(mp, none, 1, 2, 3, 0.0, &v) == VG_ERR_ARG, "AU-PRO limit 0 rejected");
  mp[2] = NAN;
  VG_CHECK(vg_eval_au_pro(mp, none, 1, 2, 3, 0.3, &v) == VG_ERR_NUMERIC, "AU-PRO NaN map rejected");
  /* perfect and constant maps */
  float perfect[6] = {0, 0, 1, 1, 0, 0}, flat[6] = {2, 2, 2, 2, 2, 2};
  uint8_t gt[6] = {0, 0, 1, 1, 0, 0};
  vg_eval_au_pro(perfect, gt, 1, 2, 3, 0.3, &v);
  VG_CHECK(fabs(v - 1) < 1e-12, "AU-PRO of a perfect map = 1 (%.12f)", v);
  vg_eval_au_pro(flat, gt, 1, 2, 3, 0.3, &v);
  VG_CHECK(fabs(v - 0.15) < 1e-12, "AU-PRO of a constant map = 0.3/2 / 0.3 ... = %.12f (want 0.15)", v);
}

static void test_summary(void) {
  const int64_t *meta = get("pro_meta", 4, NULL);
  const float *maps = get("pro_maps", 0, NULL);
  const uint8_t *masks = get("pro_masks", 2, NULL);
  const double *ref = get("sum0_ref", 1, NULL);
  vg_eval_metrics m;
  vg_status st = vg_eval_summary(maps, masks, meta[0], meta[1], meta[2], NULL, NULL, &m);
  double e = 0;
  int ok = st == VG_OK && close_to(m.image_auroc, ref[0], &e) && close_to(m.image_auprc, ref[1], &e) &&
           close_to(m.image_f1_max, ref[2], &e) && close_to(m.pixel_auroc, ref[4], &e) &&
           close_to(m.pixel_auprc, ref[5], &e) && close_to(m.pixel_f1_max, ref[6], &e) &&
           m.pixel_f1_threshold == (float)ref[7] && close_to(m.au_pro, ref[8], &e);
  VG_CHECK(ok, "summary: I-AUROC %.6f I-AP %.6f I-F1 %.6f P-AUROC %.6f P-AP %.6f P-F1 %.6f AU-PRO %.6f, "
           "max |err| vs sklearn/official %.3g", m.image_auroc, m.image_auprc, m.image_f1_max,
           m.pixel_auroc, m.pixel_auprc, m.pixel_f1_max, m.au_pro, e);
  VG_CHECK(m.n_images == meta[0] && m.n_anomalous_images == meta[0] - 1 && m.n_regions > 0 &&
           m.n_pixels == meta[0] * meta[1] * meta[2], "summary counts: %lld images, %lld anomalous, %lld regions",
           (long long)m.n_images, (long long)m.n_anomalous_images, (long long)m.n_regions);
}

static void test_spro(void) {
  int64_t nm;
  const int64_t *meta = get("spro_meta", 4, &nm);
  const float *maps = get("spro_maps", 0, NULL);
  const int64_t *rimg = get("spro_reg_img", 4, NULL), *rsat = get("spro_reg_sat", 4, NULL);
  const uint8_t *rmask = get("spro_reg_masks", 2, NULL);
  const double *ref = get("spro_ref", 1, NULL);
  double maxerr = 0;
  int64_t moff = 0, roff = 0, rmoff = 0;
  for (int64_t c = 0; c < nm / 4; c++) {
    int64_t n = meta[4 * c], h = meta[4 * c + 1], w = meta[4 * c + 2], nr = meta[4 * c + 3];
    vg_eval_region *reg = malloc((size_t)nr * sizeof *reg);
    for (int64_t r = 0; r < nr; r++)
      reg[r] = (vg_eval_region){rimg[roff + r], rmask + rmoff + r * h * w, rsat[roff + r]};
    double got[VG_EVAL_SPRO_NLIMITS];
    vg_status st = vg_eval_au_spro(maps + moff, n, h, w, reg, nr, NULL, 0, got);
    for (int k = 0; k < VG_EVAL_SPRO_NLIMITS; k++)
      VG_CHECK(st == VG_OK && close_to(got[k], ref[5 * c + k], &maxerr),
               "AU-sPRO case %lld (%lld images, %lld defects) limit %g: %.9f (LOCO %.9f)", (long long)c,
               (long long)n, (long long)nr, vg_eval_spro_default_limits[k], got[k], ref[5 * c + k]);
    moff += n * h * w;
    roff += nr;
    rmoff += nr * h * w;
    free(reg);
  }
  VG_CHECK(maxerr <= TOL, "AU-sPRO vs LOCO definition: max |err| %.3g", maxerr);
  VG_CHECK(vg_eval_spro_saturation(101, 0.3, 1) == 30 && vg_eval_spro_saturation(50, 80, 0) == 50 &&
           vg_eval_spro_saturation(50, 20, 0) == 20 && vg_eval_spro_saturation(7, 1.0, 1) == 7,
           "saturation area = int(t * area) (relative) / min(t, area)");
  /* fuzz_loco_config finding: defined (no float->int64 overflow) for any relative threshold */
  VG_CHECK(vg_eval_spro_saturation(1000, 1e300, 1) == INT64_MAX && vg_eval_spro_saturation((int64_t)1 << 40, 1e7, 1) == INT64_MAX &&
           vg_eval_spro_saturation(1000, -2, 1) == 0 && vg_eval_spro_saturation(1000, 1e300, 0) == 1000 &&
           vg_eval_spro_saturation(1000, -1e300, 0) == 0 && vg_eval_spro_saturation(1000, -1e300, 1) == 0,
           "saturation area defined for huge / negative thresholds");

  /* with saturation = area and one blob per image, sPRO is PRO: the curves agree
   * except that sPRO counts "score > t" and has no clipping, which gives the same area */
  float mp[2 * 12];
  uint8_t gt[2 * 12] = {0};
  for (int i = 0; i < 24; i++) mp[i] = (float)((i * 7) % 11) / 11.0f + (i % 5 == 0 ? 0.5f : 0.0f);
  gt[1] = gt[2] = gt[5] = gt[6] = 1;       /* image 0: one 2x2 blob (3x4 maps) */
  gt[12 + 10] = gt[12 + 11] = 1;          /* image 1: one blob */
  for (int i = 0; i < 24; i++) mp[i] += gt[i] ? 0.4f : 0.0f;
  vg_eval_region reg[2] = {{0, gt, 4}, {1, gt + 12, 2}};
  double pro = 0, sp[2] = {0}, lims[2] = {0.3, 0.7};
  vg_eval_au_pro(mp, gt, 2, 3, 4, 0.3, &pro);
  vg_status st = vg_eval_au_spro(mp, 2, 3, 4, reg, 2, lims, 2, sp);
  VG_CHECK(st == VG_OK && fabs(sp[0] - pro) < 1e-12 && pro > 0.01,
           "sPRO with saturation = area equals PRO: %.12f vs %.12f", sp[0], pro);
  reg[0].saturation = 0;
  st = vg_eval_au_spro(mp, 2, 3, 4, reg, 2, lims, 2, sp);
  VG_CHECK(st == VG_ERR_ARG, "saturation 0 rejected: '%s'", vg_last_error());
  st = vg_eval_au_spro(mp, 2, 3, 4, reg, 0, lims, 2, sp);
  VG_CHECK(st == VG_OK && isnan(sp[0]), "no defect: NaN");
}

static void test_binned(void) {
  const int64_t n = vg_test_long() ? 50000000 : 1000000;
  const int64_t prm[6] = {77, n, 22, (int64_t)(0.07 * 4294967296.0), 1 << 19, 1 << 20};
  float *s = malloc((size_t)n * sizeof *s);
  uint8_t *l = malloc((size_t)n);
  hashed_case(prm, s, l);
  float lo = s[0], hi = s[0];
  for (int64_t i = 0; i < n; i++) { lo = s[i] < lo ? s[i] : lo; hi = s[i] > hi ? s[i] : hi; }
  vg_eval_binary ex, bb, bb2;
  vg_eval_binary_metrics(s, l, n, &ex);
  const int64_t bins[2] = {100000, 1000000};
  for (int k = 0; k < 2; k++) {
    vg_eval_roc_binned *b = vg_eval_roc_binned_new(lo, hi, bins[k]);
    vg_eval_roc_binned *b1 = vg_eval_roc_binned_new(lo, hi, bins[k]);
    vg_eval_roc_binned *b2 = vg_eval_roc_binned_new(lo, hi, bins[k]);
    vg_eval_roc_binned_add(b, s, l, n);
    /* the same data in uneven batches, split over two accumulators and merged */
    for (int64_t i = 0, j = 0; i < n; i += 77777, j++)
      vg_eval_roc_binned_add(j % 2 ? b1 : b2, s + i, l + i, (n - i < 77777 ? n - i : 77777));
    vg_eval_roc_binned_merge(b1, b2);
    double bound = 0;
    vg_eval_roc_binned_result(b, &bb, &bound);
    vg_eval_roc_binned_result(b1, &bb2, NULL);
    double ea = fabs(bb.auroc - ex.auroc), ep = fabs(bb.auprc - ex.auprc), ef = fabs(bb.f1_max - ex.f1_max);
    VG_CHECK(ea <= bound * (1 + 1e-9) + 1e-12 && bound < (k ? 2e-5 : 2e-4) && ep < 1e-4 && ef < 1e-4,
             "binned %lld bins, %lld px: |auroc err| %.3g <= bound %.3g; |auprc err| %.3g; |f1 err| %.3g",
             (long long)bins[k], (long long)n, ea, bound, ep, ef);
    VG_CHECK(bb2.auroc == bb.auroc && bb2.auprc == bb.auprc && bb2.f1_max == bb.f1_max,
             "binned: batches + merge give identical results");
    vg_eval_roc_binned_free(b);
    vg_eval_roc_binned_free(b1);
    vg_eval_roc_binned_free(b2);
  }
  /* with one bin per distinct value the binned result is exact */
  const int64_t q[6] = {5, 200000, 10, 1 << 30, 200, 0};
  hashed_case(q, s, l);
  vg_eval_roc_binned *b = vg_eval_roc_binned_new(0.0f, 2048.0f / 1024.0f, 2048);
  vg_eval_roc_binned_add(b, s, l, q[1]);
  double bound = 1;
  vg_eval_roc_binned_result(b, &bb, &bound);
  vg_eval_binary_metrics(s, l, q[1], &ex);
  VG_CHECK(bound == 0 || fabs(bb.auroc - ex.auroc) <= bound, "binned bound holds on tied data");
  VG_CHECK(fabs(bb.auroc - ex.auroc) < 1e-12 && fabs(bb.auprc - ex.auprc) < 1e-12 &&
           bb.f1_threshold == ex.f1_threshold,
           "binned with bin edges on the score grid == exact (auroc %.12f vs %.12f)", bb.auroc, ex.auroc);
  vg_eval_roc_binned_free(b);
  VG_CHECK(vg_eval_roc_binned_new(1.0f, 1.0f, 10) == NULL && vg_last_status() == VG_ERR_ARG,
           "binned: empty range rejected");
  free(s);
  free(l);
}

/* The 5 % FPR metrics of the EfficientAD paper (Tables 13 / 14) against sklearn's
 * roc_auc_score(max_fpr) with McClish's standardisation undone (plain normalisation by the
 * limit) and the official AU-PRO code at x_max 0.05 (tools/gen_pauroc_fixtures.py). */
static void test_pauroc(void) {
  int64_t nl, nbx;
  const double *lim = get("pa_limits", 1, &nl);
  const double *bx_ref = get("pa_bx_ref", 1, NULL), *bh_ref = get("pa_bh_ref", 1, NULL);
  const double *sum_ref = get("pa_sum0_ref", 1, NULL);
  const float *bs = get("bx_scores", 0, NULL);
  const uint8_t *bl = get("bx_labels", 2, NULL);
  const int64_t *bo = get("bx_offsets", 4, &nbx);
  double e = 0;
  int bad = 0;
  for (int64_t c = 0; c + 1 < nbx; c++)
    for (int64_t k = 0; k < nl; k++) {
      double got = vg_eval_partial_auroc(bs + bo[c], bl + bo[c], bo[c + 1] - bo[c], lim[k]);
      if (!close_to(got, bx_ref[c * nl + k], &e)) {
        bad++;
        fprintf(stderr, "  explicit case %lld limit %g: %.12f, sklearn %.12f\n", (long long)c, lim[k], got, bx_ref[c * nl + k]);
      }
    }
  int64_t np_;
  const int64_t *prm = get("bh_params", 4, &np_);
  for (int64_t c = 0; c < np_ / 6; c++) {
    const int64_t *p = prm + 6 * c;
    float *s = malloc((size_t)p[1] * sizeof *s);
    uint8_t *l = malloc((size_t)p[1]);
    hashed_case(p, s, l);
    for (int64_t k = 0; k < nl; k++) {
      double got = vg_eval_partial_auroc(s, l, p[1], lim[k]);
      if (!close_to(got, bh_ref[c * nl + k], &e)) {
        bad++;
        fprintf(stderr, "  hashed case %lld (n %lld) limit %g: %.12f, sklearn %.12f\n", (long long)c, (long long)p[1], lim[k],
                got, bh_ref[c * nl + k]);
      }
    }
    if (c == 4) {   /* limit 1 is the AUROC */
      double a = vg_eval_auroc(s, l, p[1]), pa = vg_eval_partial_auroc(s, l, p[1], 1.0);
      VG_CHECK(fabs(a - pa) < 1e-12, "partial AUROC at limit 1 = AUROC (%.12f vs %.12f)", pa, a);
    }
    free(s);
    free(l);
  }
  VG_CHECK(bad == 0 && e <= TOL, "partial AUROC (limits 0.05 0.3 0.01 1) of %lld explicit + %lld hashed cases vs sklearn: "
           "max |err| %.3g", (long long)(nbx - 1), (long long)(np_ / 6), e);
  /* closed forms: perfect = 1, reversed = 0, all tied = limit / 2 (chance) */
  float sc[4] = {0, 1, 2, 3}, tie[4] = {1, 1, 1, 1};
  uint8_t lb[4] = {0, 0, 1, 1}, rv[4] = {1, 1, 0, 0};
  VG_CHECK(fabs(vg_eval_partial_auroc(sc, lb, 4, 0.05) - 1) < 1e-12 && fabs(vg_eval_partial_auroc(sc, rv, 4, 0.05)) < 1e-12 &&
           fabs(vg_eval_partial_auroc(tie, lb, 4, 0.05) - 0.025) < 1e-12,
           "partial AUROC@0.05: perfect 1, reversed 0, ties 0.025 (plain normalisation, not McClish)");
  VG_CHECK(isnan(vg_eval_partial_auroc(sc, (uint8_t[]){0, 0, 0, 0}, 4, 0.05)) && isnan(vg_eval_partial_auroc(sc, lb, 4, 0)) &&
           isnan(vg_eval_partial_auroc(sc, lb, 4, 1.5)), "partial AUROC: one class / limit 0 / limit > 1 give NaN");
  float nanv[4] = {0, NAN, 2, 3};
  VG_CHECK(isnan(vg_eval_partial_auroc(nanv, lb, 4, 0.05)), "partial AUROC: a NaN score gives NaN");
  /* the summary's 5 % metrics on AU-PRO case 0 */
  const int64_t *meta = get("pro_meta", 4, NULL);
  vg_eval_metrics m;
  double e2 = 0;
  vg_status st = vg_eval_summary(get("pro_maps", 0, NULL), get("pro_masks", 2, NULL), meta[0], meta[1], meta[2], NULL, NULL, &m);
  VG_CHECK(st == VG_OK && close_to(m.pixel_auroc_5, sum_ref[0], &e2) && close_to(m.au_pro_5, sum_ref[1], &e2),
           "summary: pixel_auroc_5 %.9f (sklearn %.9f), au_pro_5 %.9f (official %.9f): max |err| %.3g", m.pixel_auroc_5,
           sum_ref[0], m.au_pro_5, sum_ref[1], e2);
  /* no anomalous pixel: both NaN */
  float mp[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  uint8_t none[6] = {0};
  st = vg_eval_summary(mp, none, 1, 2, 3, NULL, NULL, &m);
  VG_CHECK(st == VG_OK && isnan(m.pixel_auroc_5) && isnan(m.au_pro_5), "summary without anomalous pixels: 5 %% metrics NaN");
}

int main(void) {
  if (!VG_CHECK(load_fixtures(vg_test_fixture("eval/eval.bin")), "load %s", vg_test_fixture("eval/eval.bin")))
    return vg_test_finish();
  bool have_pa = load_fixtures(vg_test_fixture("eval/pauroc.bin"));
  if (have_pa) test_pauroc();
  else printf("SKIP eval/pauroc.bin missing (tools/gen_pauroc_fixtures.py)\n");
  test_binary();
  test_degenerate();
  test_components();
  test_pro();
  test_summary();
  test_spro();
  test_binned();
  for (int i = 0; i < nrecs; i++) free(recs[i].data);
  return vg_test_finish();
}
