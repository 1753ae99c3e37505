/* metrics.c — `vigil metrics`: evaluate anomaly maps written by any method against a
 * dataset's ground truth, as MVTec's official evaluation does (report/report.h).
 *
 *   vigil metrics --dataset mvtec --data /data/mvtec --category bottle --maps MAPS
 *                 [--scores scores.json] [--out metrics.json] [--report DIR]
 *
 * Maps, per test image, either
 *   MAPS/<category>/test/<defect>/<image stem>.tiff   32-bit float TIFF (MVTec's
 *       official layout; LOCO: <defect> is logical_anomalies / structural_anomalies /
 *       good; VisA: anomaly / good; BTAD: ko / ok; folder: anomaly / good, category "all")
 * or one safetensors file (--maps FILE.safetensors) holding one F32/F16 tensor per image
 * named "<category>/test/<defect>/<stem>" or "<defect>/<stem>", shape (H, W), (1, H, W)
 * or (1, 1, H, W). Maps may have any size: they are resized (bilinear) to the GT size.
 * Scores (--scores): a JSON object {"<defect>/<stem>": score} (what `vigil test` writes;
 * keys may also be "<category>/test/<defect>/<stem>"), or {"<category>": {...}} per
 * category. Without it the image score is the map's max.
 * Without --category every category folder under --data is evaluated. */
#include "cli/args.h"
#include "cli/opts.h"
#include "cli/cli.h"
#include "report/report.h"
#include "nn/safetensors.h"
#include "base/json.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* `vigil metrics`'s options (the table drives the parser and --help: cli/opts.h) */
typedef struct {
  const char *dataset, *data, *category, *maps, *scores_path, *out, *report, *overlays;
  double threshold;
  bool threshold_given;
} metrics_opts;

#define T metrics_opts
static const vg_opt metrics_table[] = {
  {.name = "--dataset", .kind = VG_OPT_STR, .arg = "KIND", .off = VG_OPT_AT(T, dataset),
   .help = "mvtec | loco | visa | btad | folder (required)"},
  {.name = "--data", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, data), .help = "dataset root (required)"},
  {.name = "--category", .kind = VG_OPT_STR, .arg = "C[,C2..]", .off = VG_OPT_AT(T, category),
   .help = "categories to evaluate (default: every category under --data)"},
  {.name = "--maps", .kind = VG_OPT_STR, .arg = "DIR|FILE", .off = VG_OPT_AT(T, maps),
   .help = "the anomaly maps: a TIFF folder or a .safetensors file (required)"},
  {.name = "--scores", .kind = VG_OPT_STR, .arg = "FILE.json", .off = VG_OPT_AT(T, scores_path),
   .help = "image scores (default: the map maxima)"},
  {.name = "--out", .kind = VG_OPT_STR, .arg = "FILE.json", .off = VG_OPT_AT(T, out), .help = "write the metrics there"},
  {.name = "--report", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, report),
   .help = "write the HTML report (heatmaps, curves) there"},
  {.name = "--overlays", .kind = VG_OPT_ENUM, .arg = "MODE", .choices = "all|grid|none",
   .off = VG_OPT_AT(T, overlays), .help = "the report's overlays: all | grid | none", .def = "all"},
  {.name = "--threshold", .kind = VG_OPT_F64, .arg = "T", .flo = -3.0e38, .fhi = 3.0e38, .off = VG_OPT_AT(T, threshold),
   .given = VG_OPT_GIVEN(T, threshold_given), .help = "the report's contour threshold on the maps"},
  {0}};
#undef T

const vg_cmd_spec vg_cmd_metrics = {
  .name = "metrics", .opts = metrics_table,
  .usage = "usage: vigil metrics --dataset mvtec|loco|visa|btad|folder --data DIR [--category C[,C2..]]\n"
           "         --maps DIR|FILE.safetensors [--scores FILE.json] [--out FILE.json] [--report DIR]\n"
           "         [--overlays all|grid|none] [--threshold T]\n"
           "  maps: DIR/<category>/test/<defect>/<stem>.tiff (float TIFF, MVTec evaluation layout)\n"
           "        or one safetensors tensor per image named <category>/test/<defect>/<stem>\n"
           "  scores: JSON {\"<defect>/<stem>\": score}; default image score = map max\n"
           "  folder datasets: DIR/{normal,abnormal,mask,normal_test}; category name 'all'\n"};

static int usage(FILE *f) { return vg_opts_usage(&vg_cmd_metrics, f); }

static bool is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Category folders of root: those with a test/ (mvtec, loco, btad) or Data/ (visa) folder. */
static int list_categories(const char *root, const char *dataset, char ***out) {
  *out = NULL;
  DIR *d = opendir(root);
  if (!d) return -1;
  int n = 0, cap = 0;
  char **v = NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/%s", root, e->d_name, !strcmp(dataset, "visa") ? "Data" : "test");
    if (!is_dir(p)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      char **t = realloc(v, (size_t)cap * sizeof *t);
      if (!t) break;
      v = t;
    }
    v[n] = strdup(e->d_name);
    if (v[n]) n++;
  }
  closedir(d);
  if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
  *out = v;
  return n;
}

static vg_status open_split(const char *dataset, const char *root, const char *cat, vg_dataset *ds) {
  vg_split_opts so = {.split = VG_SPLIT_TEST};
  if (!strcmp(dataset, "mvtec")) return vg_ds_mvtec(root, cat, &so, ds);
  if (!strcmp(dataset, "loco")) return vg_ds_loco(root, cat, &so, ds);
  if (!strcmp(dataset, "visa")) return vg_ds_visa(root, cat, &so, ds);
  if (!strcmp(dataset, "btad")) return vg_ds_btad(root, cat, &so, ds);
  if (!strcmp(dataset, "folder")) {
    char nd[4096], ad[4096], md[4096], td[4096];
    snprintf(nd, sizeof nd, "%s/normal", root);
    snprintf(ad, sizeof ad, "%s/abnormal", root);
    snprintf(md, sizeof md, "%s/mask", root);
    snprintf(td, sizeof td, "%s/normal_test", root);
    vg_folder_spec fs = {nd, ad, is_dir(md) ? md : NULL, is_dir(td) ? td : NULL};
    return vg_ds_folder(&fs, &so, ds);
  }
  return vg_fail(VG_ERR_ARG, "unknown dataset '%s' (mvtec, loco, visa, btad, folder)", dataset);
}

/* One map from the safetensors file: the first of the candidate names present. */
static vg_status st_map(vg_st_file *f, const char *file, const char *cat, const char *rel, float **data, int *h, int *w) {
  char k1[4096], k2[4096];
  snprintf(k1, sizeof k1, "%s/test/%s", cat, rel);
  snprintf(k2, sizeof k2, "%s", rel);
  const char *name = vg_st_find(f, k1) >= 0 ? k1 : vg_st_find(f, k2) >= 0 ? k2 : NULL;
  if (!name) return vg_fail(VG_ERR_IO, "%s: no map tensor named '%s' (or '%s')", file, k1, k2);
  vg_st_info info;
  vg_status st = vg_st_info_at(f, vg_st_find(f, name), &info);
  if (st != VG_OK) return st;
  for (int d = 0; d + 2 < info.ndim; d++)
    if (info.shape[d] != 1) return vg_fail(VG_ERR_FORMAT, "%s: tensor '%s' is not one map (want (H, W), (1, H, W) or (1, 1, H, W))", file, name);
  if (info.ndim < 2) return vg_fail(VG_ERR_FORMAT, "%s: tensor '%s' has %d dims (want a 2-D map)", file, name, info.ndim);
  vg_tensor *t;
  if ((st = vg_st_get(f, name, VG_F32, &t)) != VG_OK) return st;
  *h = (int)info.shape[info.ndim - 2];
  *w = (int)info.shape[info.ndim - 1];
  *data = malloc((size_t)*h * *w * sizeof **data);
  if (!*data) { vg_tensor_free(t); return vg_fail(VG_ERR_NOMEM, "out of memory"); }
  memcpy(*data, vg_f32(t), (size_t)*h * *w * sizeof **data);
  vg_tensor_free(t);
  return VG_OK;
}

/* Image score from the scores JSON: {rel: v} or {cat: {rel: v}}, keys as documented above. */
static vg_status lookup_score(const vg_json *sj, const char *file, const char *cat, const char *rel, float *out) {
  const vg_json *scope = vg_json_get(sj, cat);
  if (!scope || scope->type != VG_JSON_OBJECT) scope = sj;
  char k1[4096];
  snprintf(k1, sizeof k1, "%s/test/%s", cat, rel);
  const vg_json *v = vg_json_get(scope, rel);
  if (!v) v = vg_json_get(scope, k1);
  double d;
  if (!v || !vg_json_as_double(v, &d)) return vg_fail(VG_ERR_FORMAT, "%s: no numeric score for '%s' (key '%s' or '%s')", file, rel, rel, k1);
  *out = (float)d;
  return VG_OK;
}

int vg_cli_metrics(int argc, char **argv) {
  metrics_opts o = {0};
  vg_report_opts ro = vg_report_defaults();
  int prc = vg_opts_parse(&vg_cmd_metrics, argc, argv, &o, NULL, NULL);
  if (prc >= 0) return prc;
  const char *dataset = o.dataset, *data = o.data, *category = o.category, *maps = o.maps, *scores_path = o.scores_path;
  const char *out = o.out, *report = o.report;
  if (o.threshold_given) ro.threshold = (float)o.threshold;
  if (o.overlays) ro.overlays = o.overlays[0] == 'a' ? 0 : o.overlays[0] == 'g' ? 1 : -1;   /* all | grid | none */
  if (!dataset || !data || !maps) return usage(stderr);
  ro.dir = report;
  /* categories */
  char **cats = NULL;
  int ncat = 0;
  if (category) {
    char *c = strdup(category);
    for (char *t = strtok(c, ","); t; t = strtok(NULL, ",")) {
      char **nc = realloc(cats, (size_t)(ncat + 1) * sizeof *nc);
      if (!nc) break;
      cats = nc;
      cats[ncat++] = strdup(t);
    }
    free(c);
  } else if (!strcmp(dataset, "folder")) {
    cats = malloc(sizeof *cats);
    cats[0] = strdup("all");
    ncat = 1;
  } else {
    ncat = list_categories(data, dataset, &cats);
    if (ncat <= 0) {
      fprintf(stderr, "vigil metrics: no category folders under %s (give --category)\n", data);
      free(cats);
      return 1;
    }
  }
  bool is_st = strlen(maps) > 12 && !strcmp(maps + strlen(maps) - 12, ".safetensors");
  vg_st_file *stf = NULL;
  vg_json *sj = NULL;
  char *stext = NULL;
  vg_report_cat **res = calloc((size_t)ncat, sizeof *res);
  int nres = 0, rc = 1;
  if (is_st && vg_st_open(maps, &stf) != VG_OK) { fprintf(stderr, "vigil metrics: %s\n", vg_last_error()); goto done; }
  if (scores_path) {
    uint8_t *buf;
    size_t n;
    if (vg_image_read_file(scores_path, &buf, &n, (size_t)1 << 30) != VG_OK ||
        (stext = (char *)buf, vg_json_parse(stext, n, NULL, &sj) != VG_OK)) {
      fprintf(stderr, "vigil metrics: %s: %s\n", scores_path, vg_last_error());
      goto done;
    }
    if (sj->type != VG_JSON_OBJECT) { fprintf(stderr, "vigil metrics: %s: want a JSON object {\"<defect>/<stem>\": score}\n", scores_path); goto done; }
  }
  for (int ci = 0; ci < ncat; ci++) {
    const char *cat = cats[ci];
    bool named = strcmp(dataset, "folder") != 0;
    vg_dataset ds = {0};
    if (open_split(dataset, data, named ? cat : NULL, &ds) != VG_OK) { fprintf(stderr, "vigil metrics: %s\n", vg_last_error()); goto done; }
    float **ml = calloc((size_t)ds.n + 1, sizeof *ml);
    int *mh = calloc((size_t)ds.n + 1, sizeof *mh), *mw = calloc((size_t)ds.n + 1, sizeof *mw);
    float *sc = scores_path ? calloc((size_t)ds.n + 1, sizeof *sc) : NULL;
    vg_status st = ml && mh && mw && (!scores_path || sc) ? VG_OK : vg_fail(VG_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < ds.n && st == VG_OK; i++) {
      char rel[2048], path[8192], alt[8192];
      const char *mp = path;
      vg_sample_rel(&ds.samples[i], rel, sizeof rel);
      if (is_st) st = st_map(stf, maps, cat, rel, &ml[i], &mh[i], &mw[i]);
      else {
        snprintf(path, sizeof path, "%s/%s/test/%s.tiff", maps, cat, rel);
        struct stat sb;
        if (stat(path, &sb) != 0) {
          snprintf(alt, sizeof alt, "%s/%s/test/%s.tif", maps, cat, rel);
          if (stat(alt, &sb) == 0) mp = alt;
          else { st = vg_fail(VG_ERR_IO, "missing anomaly map %s (for test image %s)", path, ds.samples[i].image); break; }
        }
        st = vg_tiff_read_f32(mp, &ml[i], &mw[i], &mh[i]);
      }
      if (st == VG_OK && sc) st = lookup_score(sj, scores_path, cat, rel, &sc[i]);
    }
    if (st == VG_OK) {
      vg_report_input in = {.category = cat, .ds = &ds, .map_list = (const float *const *)ml, .map_hs = mh,
                            .map_ws = mw, .scores = sc};
      st = vg_report_category(&in, &ro, &res[nres]);
      if (st == VG_OK) nres++;
    }
    for (int64_t i = 0; i < ds.n && ml; i++) free(ml[i]);
    free(ml); free(mh); free(mw); free(sc);
    vg_dataset_free(&ds);
    if (st != VG_OK) { fprintf(stderr, "vigil metrics: %s: %s\n", cat, vg_last_error()); goto done; }
  }
  char *table = vg_report_table(res, nres);
  if (table) { fputs(table, stdout); free(table); }
  if (out) {
    if (vg_report_write_json(out, dataset, res, nres) != VG_OK) { fprintf(stderr, "vigil metrics: %s\n", vg_last_error()); goto done; }
    printf("metrics: %s\n", out);
  } else {
    char *j = vg_report_json(dataset, res, nres);
    if (j) { puts(j); free(j); }
  }
  if (report) {
    if (vg_report_write_html(report, dataset, res, nres) != VG_OK) { fprintf(stderr, "vigil metrics: %s\n", vg_last_error()); goto done; }
    printf("report: %s/report.html\n", report);
  }
  rc = 0;
done:
  for (int i = 0; i < nres; i++) vg_report_cat_free(res[i]);
  free(res);
  for (int i = 0; i < ncat; i++) free(cats[i]);
  free(cats);
  vg_st_close(stf);
  vg_json_free(sj);
  free(stext);
  return rc;
}
