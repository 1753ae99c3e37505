/* test_reproduce.c — `vigil reproduce` (cli/reproduce.c) and the published-weights check:
 *   - mean ± sample σ, metric paths into metrics.json (dotted, array indices, null/absent);
 *   - spec parsing: each class of bad spec refused with a message naming the place;
 *   - a sample of the transcribed paper numbers (scripts/tables/<table>.json) against lines of the
 *     papers' text (inline below, as the text extraction gives them: dropped decimal points
 *     such as "353" for 35.3 are read back by the rule the transcription used);
 *   - the command on a small spec: cells enumerated and shared, inputs checked before any
 *     run (the exact path expected), aggregation over seeds (sample σ), missing cells, resume
 *     (a finished cell is not rerun) and a real --smoke run of the baseline method;
 *   - one cell (--cells, --cell N: only its run directory; out of range: exit 2; one cell from two
 *     processes at once runs once), --jobs 2 = the serial table, --slurm's job scripts (the array
 *     over the unfinished cells, --time as Slurm reads it, --submit through a stand-in sbatch; the
 *     scripts run as tasks give the serial table); tests/slurm.sh runs a real one-node Slurm;
 *   - weights: scripts/tables/weights.json = the compiled-in list, and a file under a published
 *     name with other content is refused. */
#include "tests/vgtest.h"
#include "cli/reproduce.h"
#include "base/file.h"
#include "base/sha256.h"
#include "nn/backbones/backbones.h"
#include <sys/stat.h>
#include <unistd.h>

static char g_vigil[1024], g_tmp[256];

static const char *P(const char *rel) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) & 3;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, rel);
  return buf[k];
}

static void put(const char *path, const char *text) {
  vg_mkdir_parents(path);
  FILE *f = fopen(path, "w");
  if (f) { fputs(text, f); fclose(f); }
}

static vg_json *parse(const char *text) {
  vg_json *j = NULL;
  vg_json_parse(text, strlen(text), NULL, &j);
  return j;
}

static void test_numbers(void) {
  double m = 0, s = 0;
  const double v[4] = {1, 2, 3, 4};
  VG_CHECK(vg_repro_mean_std(v, 4, &m, &s) && fabs(m - 2.5) < 1e-12 && fabs(s - sqrt(5.0 / 3.0)) < 1e-12,
           "mean 2.5, SAMPLE sigma sqrt(5/3) of 1..4 (population would be %.4f): %.6f %.6f", sqrt(1.25), m, s);
  VG_CHECK(vg_repro_mean_std(v + 2, 1, &m, &s) && m == 3 && s == 0, "one seed: sigma 0");
  VG_CHECK(!vg_repro_mean_std(v, 0, &m, &s), "no seed: false");
  vg_json *j = parse("{\"mean\": {\"image_auroc\": 0.75, \"nan\": null, \"loco\": {\"au_spro\": {\"logical\": [0.1, 0.2, 0.3, 0.4, 0.5]},"
                     " \"image_auroc\": {\"structural\": 0.9}}}, \"categories\": {\"x\": {\"image_auroc\": 0.1}}}");
  double x = -1;
  VG_CHECK(j && vg_repro_metric(j, "image_auroc", &x) && x == 0.75, "metric under mean: %g", x);
  VG_CHECK(vg_repro_metric(j, "loco.au_spro.logical.3", &x) && x == 0.4, "dotted path with an array index: %g", x);
  VG_CHECK(vg_repro_metric(j, "loco.image_auroc.structural", &x) && x == 0.9, "dotted path: %g", x);
  VG_CHECK(!vg_repro_metric(j, "nan", &x) && !vg_repro_metric(j, "absent", &x) && !vg_repro_metric(j, "loco.au_spro.logical.7", &x) &&
               !vg_repro_metric(j, "loco.au_spro.logical.-1", &x) && !vg_repro_metric(j, "loco", &x),
           "null, absent, out-of-range index, an object: no value");
  vg_json_free(j);
}

#define GOOD_HEAD "{\"table\": \"t\", \"method\": \"meanimage\", \"metrics\": [{\"key\": \"image_auroc\"}, {\"key\": \"pixel_auroc\"}], "
static void test_spec_errors(void) {
  static const struct { const char *text, *want; } C[] = {
      {"[1]", "want a JSON object"},
      {"{\"table\": \"t\", \"method\": \"m\"", "JSON"},
      {"{\"table\": \"../x\", \"method\": \"m\"}", "table"},
      {"{\"table\": \"t\", \"method\": \"m\", \"metrics\": []}", "metrics"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\", \"paper\": {\"c\": [1]}}]}",
       "rows[0].paper.c: want 2 values"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\", \"paper\": {\"zz\": [1, 2]}}]}",
       "rows[0].paper.zz: no column has this id"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\", \"paper\": {\"c\": [1, \"x\"]}}]}",
       "want numbers or null"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}, {\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\"}]}", "columns[1]: the id is used twice"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\"}, {\"id\": \"r\", \"category\": \"b\"}]}",
       "rows[1]: the id is used twice"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\", \"categories\": [\"b\"]}]}", "want one of"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"../../etc\"}]}", "category name"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"m\", \"mean_of_rows\": [\"r\"]}, {\"id\": \"r\", \"category\": \"a\"}]}",
       "mean_of_rows: want ids of rows above"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\", \"set\": [1]}], \"rows\": [{\"id\": \"r\", \"category\": \"a\"}]}", "method config keys"},
      {GOOD_HEAD "\"train\": [\"--steps\", 5], \"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\"}]}", "train"},
      {GOOD_HEAD "\"kind\": \"x\", \"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\"}]}", "kind"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\", \"est_cell_s\": {\"cpu\": -1}}], \"rows\": [{\"id\": \"r\", \"category\": \"a\"}]}", "est_cell_s"},
      {GOOD_HEAD "\"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\", \"only\": [\"q\"]}]}", "only"},
      {GOOD_HEAD "\"smoke_columns\": [\"q\"], \"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"category\": \"a\"}]}", "smoke_columns"},
  };
  for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
    vg_repro_spec *s = (vg_repro_spec *)1;
    vg_status st = vg_repro_spec_parse("spec.json", C[i].text, strlen(C[i].text), &s);
    VG_CHECK(st != VG_OK && s == NULL && strstr(vg_last_error(), C[i].want) && strstr(vg_last_error(), "spec.json"),
             "bad spec %zu refused naming '%s': %s", i, C[i].want, vg_last_error());
  }
  const char *ok = GOOD_HEAD "\"columns\": [{\"id\": \"c\"}, {\"id\": \"d\", \"missing\": \"not yet\"}], "
                   "\"rows\": [{\"id\": \"r\", \"category\": \"a\", \"paper\": {\"c\": [1.5, null]}},"
                   " {\"id\": \"q\", \"categories\": [\"a\", \"b\"]}, {\"id\": \"m\", \"mean_of_rows\": [\"r\", \"q\"]}]}";
  vg_repro_spec *s = NULL;
  VG_CHECK(vg_repro_spec_parse("ok.json", ok, strlen(ok), &s) == VG_OK && s, "a good spec parses (%s)", vg_last_error());
  double v = 0;
  VG_CHECK(s && vg_repro_spec_paper(s, "r", "c", "image_auroc", &v) && v == 1.5, "paper value (r, c, image_auroc) = 1.5");
  VG_CHECK(s && !vg_repro_spec_paper(s, "r", "c", "pixel_auroc", &v) && !vg_repro_spec_paper(s, "q", "c", "image_auroc", &v),
           "null / absent paper values: none");
  /* cells: column c only (d is missing), categories a, b shared between rows r and q */
  VG_CHECK(s && vg_repro_spec_cells(s, 1, false) == 2 && vg_repro_spec_cells(s, 3, false) == 6,
           "cells: rows sharing a category share its run (2 per seed)");
  VG_CHECK(s && vg_repro_spec_cells(s, 2, true) == 2, "smoke: categories mapped onto one synthetic category (1 per seed)");
  vg_repro_spec_free(s);
}

/* ---- the paper text (as extracted from the shared papers folder, <paper>.txt) against the specs */
static vg_repro_spec *load(const char *table) {
  char path[256];
  snprintf(path, sizeof path, "scripts/tables/%s.json", table);
  uint8_t *buf;
  size_t n;
  vg_repro_spec *s = NULL;
  if (vg_file_read_all(path, 1 << 22, &buf, &n) == VG_OK) {
    if (vg_repro_spec_parse(path, (char *)buf, n, &s) != VG_OK) fprintf(stderr, "%s\n", vg_last_error());
    free(buf);
  }
  VG_CHECK(s != NULL, "spec %s parses", table);
  return s;
}

/* numbers of a text line in order; a 3-digit integer token with no point is the extraction's
 * dropped decimal point ("353" -> 35.3), as the transcription read it */
static int numbers(const char *line, double *out, int cap) {
  int n = 0;
  for (const char *p = line; *p && n < cap;) {
    if ((*p >= '0' && *p <= '9') && (p == line || !((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z')))) {
      char *end;
      double v = strtod(p, &end);
      bool point = memchr(p, '.', (size_t)(end - p)) != NULL;
      if (!point && end - p == 3 && v >= 100 && v != 100) v /= 10;
      out[n++] = v;
      p = end;
    } else {
      p++;
    }
  }
  return n;
}

static void check_row(vg_repro_spec *s, const char *table, const char *line, int idx, const char *row, const char *col,
                      const char *metric) {
  double v[64], want = NAN, got = NAN;
  int n = numbers(line, v, 64);
  if (idx < 0) idx += n;
  if (idx >= 0 && idx < n) want = v[idx];
  bool ok = s && vg_repro_spec_paper(s, row, col, metric, &got) && fabs(got - want) < 1e-9;
  VG_CHECK(ok, "%s: (%s, %s, %s) = %g, the paper's text says %g", table, row, col, metric, got, want);
}

static void test_transcription(void) {
  vg_repro_spec *s = load("fastflow-t2");
  /* Table 2 lines: the last tuple is FastFlow */
  check_row(s, "fastflow-t2", "carpet (92.9,92.6) (98.6,97.5) (84.0,-) (-,99.1) (100.0,98.3) (98.7,98.9) (100.0,99.3) (100.0,99.4)", -2, "carpet", "cait", "image_auroc");
  check_row(s, "fastflow-t2", "carpet (92.9,92.6) (98.6,97.5) (84.0,-) (-,99.1) (100.0,98.3) (98.7,98.9) (100.0,99.3) (100.0,99.4)", -1, "carpet", "cait", "pixel_auroc");
  check_row(s, "fastflow-t2", "screw (81.3,95.7) (99.5,98.9) (99.3,-) (-,98.5) (90.7,96.7) (98.1,99.4) (99.7,98.9) (97.8,99.4)", -2, "screw", "cait", "image_auroc");
  check_row(s, "fastflow-t2", "toothbrush (100.0,98.1) (98.9,97.9) (96.1,-) (-,98.8) (97.5 ,98.1) (100.0,98.7) (95.2,99.0) (94.4 ,98.9)", -2, "toothbrush", "cait", "image_auroc");
  check_row(s, "fastflow-t2", "transistor (91.5,97.0) (81.0,94.1) (96.3,-) (-,97.5) (99.8,93.0) (100.0,96.3) (99.1 ,98.0) (99.8,97.3)", -1, "transistor", "cait", "pixel_auroc");
  check_row(s, "fastflow-t2", "AUCROC (92.1,95.7) (96.2,96.5) (94.9,-) (97.9,97.5) (97.1,96.0) (99.1,98.1) (98.3,98.6) (99.4,98.5)", -2, "mean", "cait", "image_auroc");
  /* Table 1: ResNet18 / WRN50 FastFlow rows: FPS, time, params, image AUC, pixel AUC */
  check_row(s, "fastflow-t2", "+ FastFlow 30.8 27 4.9 97.9 97.2", -2, "mean", "r18", "image_auroc");
  check_row(s, "fastflow-t2", "+ FastFlow 21.8 34 41.3 99.3 98.1", -1, "mean", "wrn50", "pixel_auroc");
  vg_repro_spec_free(s);
  s = load("fastflow-t1");
  check_row(s, "fastflow-t1", "+ FastFlow 30.8 27 4.9 97.9 97.2", 0, "fastflow", "r18", "fps");
  check_row(s, "fastflow-t1", "+ FastFlow 21.8 34 41.3 99.3 98.1", 2, "fastflow", "wrn50", "params_m");
  check_row(s, "fastflow-t1", "+ FastFlow 3.08 9 14.8 99.4 98.5", 1, "fastflow", "cait", "ad_time_ms");
  vg_repro_spec_free(s);
  s = load("fastflow-t3");
  check_row(s, "fastflow-t3", "Mean 0.78 0.79 0.90 0.97", -1, "mean", "wrn50", "pixel_auroc");
  check_row(s, "fastflow-t3", "0 0.49 0.53 0.99 0.95", -1, "01", "wrn50", "pixel_auroc");
  vg_repro_spec_free(s);
  s = load("fastflow-t5");
  check_row(s, "fastflow-t5", "3-3 74.4 98.2 97.6", -2, "3-3", "wrn50", "image_auroc");
  check_row(s, "fastflow-t5", "3-1 2.7 97.3 96.8", -1, "3-1", "r18", "pixel_auroc");
  vg_repro_spec_free(s);
  s = load("fastflow-t7");
  check_row(s, "fastflow-t7", "0.25x 10.9 98.9 98.0", -2, "0.25", "wrn50", "image_auroc");
  check_row(s, "fastflow-t7", "2.0x 82.6 99.4 98.1", -1, "2.0", "wrn50", "pixel_auroc");
  vg_repro_spec_free(s);
  s = load("fastflow-t8");
  check_row(s, "fastflow-t8", "w/o 98.9 98.2", 0, "wo", "wrn50", "image_auroc");
  check_row(s, "fastflow-t8", "w 99.4 98.5", 1, "w", "cait", "pixel_auroc");
  vg_repro_spec_free(s);
  /* CFLOW-AD Table 3 (WRN50 localization tuples; R18 localization; detection columns), in class order */
  s = load("cflow-t3");
  check_row(s, "cflow-t3", "(97.99, 81.40)", 1, "transistor", "wrn50", "au_pro");
  check_row(s, "cflow-t3", "(98.56, 91.65)", 0, "metal_nut", "wrn50", "pixel_auroc");
  check_row(s, "cflow-t3", "(98.62, 94.60)", 1, "average", "wrn50", "au_pro");
  check_row(s, "cflow-t3", "91.89", 0, "screw", "wrn50", "image_auroc");
  check_row(s, "cflow-t3", "95.80", 0, "tile", "r18", "pixel_auroc");
  check_row(s, "cflow-t3", "85.94", 0, "screw", "effb4", "image_auroc");
  vg_repro_spec_free(s);
  s = load("cflow-ablation");
  check_row(s, "cflow-ablation", "80.52±0.13", 0, "transistor", "wrn_cl8_pl3_512", "pixel_auroc");
  check_row(s, "cflow-ablation", "76.28±0.14", 0, "transistor", "wrn_uflow_512", "pixel_auroc");
  check_row(s, "cflow-ablation", "90.65±0.10", 0, "wood", "wrn_cl4_pl2_256", "pixel_auroc");
  check_row(s, "cflow-ablation", "Average 96.31 96.46 97.87 97.36 96.86 97.06 96.90 97.59 98.16", 6, "average", "r18_512", "pixel_auroc");
  vg_repro_spec_free(s);
  /* EfficientAD Tables 10..15 (S row, M row): MAD | VisA | LOCO struct, logical, mean || overall */
  s = load("efficientad-t10-15");
  check_row(s, "efficientad-t10-15", "EfficientAD-S | 98.8 | 97.5 94.1 85.8 90.0 95.4", 3, "loco_logical", "s", "image_auroc");
  check_row(s, "efficientad-t10-15", "EfficientAD-M | 98.9 | 98.0 93.9 86.8 90.3 95.7", 5, "overall", "m", "image_auprc");
  check_row(s, "efficientad-t10-15", "EfficientAD-M | 93.5 | 94.0 93.7 91.3 92.5 93.3", 2, "loco_struct", "m", "au_pro");
  check_row(s, "efficientad-t10-15", "EfficientAD-M | 784 | 759 83.2 76.5 79.8 78.0", 0, "mad", "m", "au_pro_5");
  check_row(s, "efficientad-t10-15", "EfficientAD-M | 79.4 | 86.9 82.1 353 58.7 75.0", 3, "loco_logical", "m", "pixel_auroc_5");
  check_row(s, "efficientad-t10-15", "EfficientAD-S | 65.9 | 40.4 54.0 40.2 47.1 511", 5, "overall", "s", "pixel_auprc");
  vg_repro_spec_free(s);
  s = load("efficientad-t3");
  check_row(s, "efficientad-t3", "Phard 0 09 099 0999 0.9999 0.99999 AU-ROC 949 949 0957 96.0 95.8 95.7", 6, "overall", "phard_0", "image_auroc");
  check_row(s, "efficientad-t3", "a(forgs) 05 08 09 095 0.98 0.99 AU-ROC 959 959 960 959 95.9 95.8", 8, "overall", "qa_0.9", "image_auroc");
  vg_repro_spec_free(s);
  s = load("efficientad-t4");
  check_row(s, "efficientad-t4", "PDN 93.2 22", 0, "overall", "pdn", "image_auroc");
  vg_repro_spec_free(s);
  s = load("efficientad-t16-17");
  check_row(s, "efficientad-t16-17", "EfficientAD-M 4.5 53 6.3 7.0 7.6", 4, "m", "rtx2080ti", "latency_ms");
  check_row(s, "efficientad-t16-17", "EfficientAD-S 2.2 2.5 3.9 3.8 4.5", 1, "s", "a5000", "latency_ms");
  vg_repro_spec_free(s);
}

/* ---- the command */
static char *run(const char *args, int *rc) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s reproduce %s", g_vigil, args);
  return vg_test_run(cmd, rc);
}

static void write_metrics(const char *dir, double image) {
  char path[1200], text[256];
  snprintf(path, sizeof path, "%s/metrics.json", dir);
  snprintf(text, sizeof text, "{\"mean\": {\"image_auroc\": %.17g, \"pixel_auroc\": null}}", image);
  vg_mkdir_p(dir);
  put(path, text);
}

/* the run directory of dry-run line k ("  cell K todo ... DIR") */
static bool cell_dir(const char *out, int k, char *dir, size_t cap) {
  char tag[32];
  snprintf(tag, sizeof tag, "cell %4d ", k);
  const char *l = strstr(out, tag);
  if (!l) return false;
  const char *e = strchr(l, '\n');
  const char *d = e ? e : l + strlen(l);
  while (d > l && d[-1] != ' ') d--;
  snprintf(dir, cap, "%.*s", (int)((e ? e : l + strlen(l)) - d), d);
  return true;
}

static double entry(const char *tabjson, const char *row, const char *field) {
  uint8_t *buf;
  size_t n;
  double v = NAN;
  if (vg_file_read_all(tabjson, 1 << 20, &buf, &n) != VG_OK) return v;
  vg_json *j = NULL;
  if (vg_json_parse((char *)buf, n, NULL, &j) == VG_OK) {
    const vg_json *es = vg_json_get(j, "entries");
    for (int64_t i = 0; i < vg_json_len(es); i++) {
      const vg_json *e = vg_json_at(es, i);
      if (!strcmp(vg_json_as_string(vg_json_get(e, "row")), row) && !strcmp(vg_json_as_string(vg_json_get(e, "column")), "c1") &&
          !strcmp(vg_json_as_string(vg_json_get(e, "metric")), "image_auroc"))
        vg_json_as_double(vg_json_get(e, field), &v);
    }
  }
  vg_json_free(j);
  free(buf);
  return v;
}

static void test_command(void) {
  if (!g_vigil[0]) { printf("SKIP the command checks: no vigil beside the test\n"); return; }
  put(P("tables/t.json"),
      "{\"table\": \"t\", \"title\": \"test table\", \"method\": \"meanimage\", \"dataset\": \"mvtec\", \"scale\": 100,"
      " \"metrics\": [{\"key\": \"image_auroc\"}], \"smoke_train\": [\"--val-fraction\", \"0\"],"
      " \"columns\": [{\"id\": \"c1\", \"est_cell_s\": {\"cpu\": 60}}, {\"id\": \"c2\", \"missing\": \"not supported yet\"}],"
      " \"rows\": [{\"id\": \"a\", \"category\": \"woven\", \"paper\": {\"c1\": [50]}},"
      "          {\"id\": \"b\", \"category\": \"grid\"},"
      "          {\"id\": \"both\", \"categories\": [\"woven\", \"grid\"]},"
      "          {\"id\": \"avg\", \"mean_of_rows\": [\"a\", \"b\"], \"paper\": {\"c1\": [71]}}]}");
  char args[2048];
  int rc;
  snprintf(args, sizeof args, "t --tables %s --out %s --runs 3 --dry-run", P("tables"), P("out"));
  char *o = run(args, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "6 cells, 6 to run") && strstr(o, "estimated 0.10 h") && strstr(o, "not supported yet"),
           "dry run: 2 categories x 3 seeds (rows share cells), 6 x 60 s, the missing column named:\n%s", o ? o : "");
  char dir[6][1100];
  bool all = true;
  for (int k = 0; k < 6; k++) all &= o && cell_dir(o, k, dir[k], sizeof dir[k]);
  VG_CHECK(all && strstr(dir[0], "mvtec-woven") && strstr(dir[0], "-s0") && strstr(dir[2], "-s2") && strstr(dir[3], "mvtec-grid"),
           "cells in order: woven seeds 0..2, then grid (%s, %s)", dir[0], dir[3]);
  free(o);
  if (!all) return;
  /* finished cells: woven 0.5, 0.6, 0.7; grid 0.8, 0.9 (seed 2 not done) */
  const double wv[3] = {0.5, 0.6, 0.7}, gv[2] = {0.8, 0.9};
  for (int k = 0; k < 3; k++) write_metrics(dir[k], wv[k]);
  for (int k = 0; k < 2; k++) write_metrics(dir[3 + k], gv[k]);
  /* inputs are checked before anything runs: the unfinished cell needs the dataset */
  snprintf(args, sizeof args, "t --tables %s --out %s --runs 3", P("tables"), P("out"));
  o = run(args, &rc);
  VG_CHECK(rc == 2 && o && strstr(o, "needs --data"), "no --data with a cell to run: exit 2 before any run:\n%s", o ? o : "");
  free(o);
  snprintf(args, sizeof args, "t --tables %s --out %s --runs 3 --data %s", P("tables"), P("out"), P("nodata"));
  o = run(args, &rc);
  char want[1200];
  snprintf(want, sizeof want, "missing dataset input: %s/mvtec/grid/train/good", P("nodata"));
  VG_CHECK(rc == 2 && o && strstr(o, want) && strstr(o, "nothing was run") && !strstr(o, "woven/train"),
           "a missing dataset: the exact path expected, only for the unfinished cell:\n%s", o ? o : "");
  free(o);
  char cfg[1200];
  snprintf(cfg, sizeof cfg, "%s/config.json", dir[5]);
  struct stat sb;
  VG_CHECK(stat(cfg, &sb) != 0, "nothing was started for the unfinished cell");
  /* aggregation with the missing cell */
  snprintf(args, sizeof args, "t --tables %s --out %s --runs 3 --aggregate", P("tables"), P("out"));
  o = run(args, &rc);
  const char *tj = P("out/t/table.json");
  VG_CHECK(rc == 0 && fabs(entry(tj, "a", "ours_mean") - 60) < 1e-9 && fabs(entry(tj, "a", "ours_std") - 10) < 1e-9 &&
               entry(tj, "a", "seeds") == 3 && fabs(entry(tj, "a", "delta") - 10) < 1e-9,
           "row a: 60 +- 10 (sample sigma over 3 seeds), delta 10: %g %g", entry(tj, "a", "ours_mean"), entry(tj, "a", "ours_std"));
  VG_CHECK(fabs(entry(tj, "b", "ours_mean") - 85) < 1e-9 && entry(tj, "b", "seeds") == 2 && entry(tj, "b", "cells_done") == 2 &&
               entry(tj, "b", "cells_needed") == 3,
           "row b: the 2 finished seeds only (85), 2 of 3 cells done: %g", entry(tj, "b", "ours_mean"));
  /* both / avg: per seed the mean of woven and grid (65, 75), seed 2 incomplete -> 2 seeds */
  VG_CHECK(fabs(entry(tj, "both", "ours_mean") - 70) < 1e-9 && fabs(entry(tj, "both", "ours_std") - sqrt(50.0)) < 1e-9 &&
               fabs(entry(tj, "avg", "ours_mean") - 70) < 1e-9 && fabs(entry(tj, "avg", "delta") + 1) < 1e-9,
           "rows over categories / over rows: per-seed means 65, 75 -> 70 +- 7.07; delta -1: %g %g", entry(tj, "both", "ours_mean"),
           entry(tj, "both", "ours_std"));
  free(o);
  char *md = NULL;
  uint8_t *buf;
  size_t n;
  if (vg_file_read_all(P("out/t/table.md"), 1 << 20, &buf, &n) == VG_OK) md = (char *)buf;
  VG_CHECK(md && strstr(md, "| a | 60.00 ± 10.00 | 50.00 | 10.00 |") && strstr(md, "not supported yet") && !strstr(md, "SMOKE"),
           "table.md: ours ± sigma | paper | delta, the missing column named, not labelled smoke");
  free(md);
  VG_CHECK(stat(P("out/t/table.svg"), &sb) == 0 && sb.st_size > 200, "table.svg written");
  /* all seeds missing for a row: removing woven's cells */
  for (int k = 0; k < 3; k++) {
    char mp[1200];
    snprintf(mp, sizeof mp, "%.1000s/metrics.json", dir[k]);
    unlink(mp);
  }
  o = run(args, &rc);
  VG_CHECK(rc == 0 && entry(tj, "a", "seeds") == 0 && isnan(entry(tj, "a", "ours_mean")) && entry(tj, "avg", "seeds") == 0,
           "a row without a finished seed has no value (and the rows averaging it neither)");
  free(o);
  if (vg_file_read_all(P("out/t/table.md"), 1 << 20, &buf, &n) == VG_OK) md = (char *)buf;
  VG_CHECK(md && strstr(md, "| a | missing 3/3 cells |"), "table.md says which cells are missing");
  free(md);

  /* a real smoke run (meanimage: statistics only), then resume: the finished cell is not rerun */
  snprintf(args, sizeof args, "t --tables %s --out %s --smoke", P("tables"), P("out"));
  o = run(args, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "1 cells (1 run now, 0 failed)") && strstr(o, "SMOKE"), "smoke: one synthetic cell runs:\n%s",
           o ? o : "");
  free(o);
  md = NULL;
  if (vg_file_read_all(P("out/smoke/t/table.md"), 1 << 20, &buf, &n) == VG_OK) md = (char *)buf;
  VG_CHECK(md && strstr(md, "NOT THE PAPER'S SETTING") && strstr(md, "| 50.00 |"), "smoke table: labelled, paper column filled");
  free(md);
  double first = entry(P("out/smoke/t/table.json"), "a", "ours_mean");
  snprintf(args, sizeof args, "t --tables %s --out %s --smoke --dry-run", P("tables"), P("out"));
  o = run(args, &rc);
  char d0[1100] = "";
  if (o) cell_dir(o, 0, d0, sizeof d0);
  free(o);
  char mp[1200];
  snprintf(mp, sizeof mp, "%s/metrics.json", d0);
  struct stat before, after;
  bool had = stat(mp, &before) == 0;
  snprintf(args, sizeof args, "t --tables %s --out %s --smoke", P("tables"), P("out"));
  o = run(args, &rc);
  VG_CHECK(had && rc == 0 && o && strstr(o, "1 cells (0 run now") && stat(mp, &after) == 0 && after.st_ino == before.st_ino &&
               after.st_mtime == before.st_mtime && entry(P("out/smoke/t/table.json"), "a", "ours_mean") == first && isfinite(first),
           "resume: the finished cell is not rerun (same metrics.json), same table (%g):\n%s", first, o ? o : "");
  free(o);
  /* weights: present under the published name but not the published file -> refused before any run */
  {
    uint8_t *wb;
    size_t wn;
    if (vg_file_read_all("scripts/tables/weights.json", 1 << 20, &wb, &wn) == VG_OK) {
      put(P("tables/weights.json"), (char *)wb);
      free(wb);
    }
    put(P("tables/w.json"), "{\"table\": \"w\", \"method\": \"meanimage\", \"metrics\": [{\"key\": \"image_auroc\"}],"
                            " \"columns\": [{\"id\": \"c\", \"weights\": \"resnet18-f37072fd.pth\"}], \"rows\": [{\"id\": \"r\", \"category\": \"woven\"}]}");
    vg_test_mkdirs(P("data/mvtec/woven/train/good"));
    put(P("wdir/resnet18-f37072fd.pth"), "junk");
    snprintf(args, sizeof args, "w --tables %s --out %s --data %s --weights %s", P("tables"), P("wout"), P("data"), P("wdir"));
    o = run(args, &rc);
    VG_CHECK(rc == 2 && o && strstr(o, "is not the published file") && strstr(o, "f37072fd47e89c5e") && strstr(o, "nothing was run") &&
                 !strstr(o, "missing dataset"),
             "weights under the published name with other content: exit 2 before any run, both hashes named:\n%s", o ? o : "");
    free(o);
    unlink(P("wdir/resnet18-f37072fd.pth"));
    o = run(args, &rc);
    VG_CHECK(rc == 2 && o && strstr(o, "missing weights") && strstr(o, "wdir/resnet18-f37072fd.pth") && strstr(o, "f37072fd47e89c5e"),
             "absent weights: the path expected and the published SHA-256:\n%s", o ? o : "");
    free(o);
  }
  /* a bad table name / spec error: exit 2 */
  o = run("no-such-table", &rc);
  VG_CHECK(rc == 2 && o && strstr(o, "no table 'no-such-table'"), "unknown table: exit 2 (%s)", o ? o : "");
  free(o);
  put(P("tables/bad.json"), "{\"table\": \"bad\", \"method\": \"meanimage\", \"metrics\": [{\"key\": \"x\"}], \"columns\": [{\"id\": \"c\"}], "
                            "\"rows\": [{\"id\": \"r\", \"category\": \"a\", \"paper\": {\"c\": [1, 2]}}]}");
  snprintf(args, sizeof args, "bad --tables %s --dry-run", P("tables"));
  o = run(args, &rc);
  VG_CHECK(rc == 2 && o && strstr(o, "bad.json: rows[0].paper.c: want 1 values"), "a bad spec: exit 2 naming the place (%s)", o ? o : "");
  free(o);
  /* --list over the repository's specs: every table; FastFlow's CaiT/DeiT columns runnable (issue #21) */
  o = run("--list", &rc);
  static const char *const T[] = {"fastflow-t1", "fastflow-t2", "fastflow-t3", "fastflow-t5", "fastflow-t7", "fastflow-t8",
                                  "cflow-t3", "cflow-ablation", "efficientad-t1-2", "efficientad-t3", "efficientad-t4",
                                  "efficientad-t5", "efficientad-t10-15", "efficientad-t16-17"};
  bool every = rc == 0 && o;
  for (size_t i = 0; every && i < sizeof T / sizeof T[0]; i++) every = strstr(o, T[i]) != NULL;
  VG_CHECK(every && !strstr(o, "MISSING: backbone not supported yet") && strstr(o, "weights M48_448.pth") &&
               strstr(o, "weights deit_base_distilled_patch16_384-d0272ac0.pth"),
           "--list: all 14 tables, the CaiT/DeiT columns runnable with their weights files");
  free(o);
}


/* ---- one cell, a local pool, the Slurm job scripts (issue #24) */
static char *slurp(const char *path) {
  uint8_t *buf;
  size_t n;
  return vg_file_read_all(path, 1 << 22, &buf, &n) == VG_OK ? (char *)buf : NULL;
}

/* the run directories (sub-folders of OUT/runs/METHOD/<dataset-category>/) */
static int count_runs(const char *runs) {
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "find %s -mindepth 3 -maxdepth 3 -type d 2>/dev/null | wc -l", runs);
  int rc;
  char *o = vg_test_run(cmd, &rc);
  int n = o ? atoi(o) : -1;
  free(o);
  return n;
}

/* the run directory of --cells line k ("K STATUS EST DEVICE DIR") and its status */
static bool cells_line(const char *out, int k, char *dir, size_t cap, char *status) {
  char tag[32];
  snprintf(tag, sizeof tag, "\n%d ", k);
  const char *l = out ? strstr(out, tag) : NULL;
  if (!l) return false;
  char st[16], est[16], dev[16];
  if (cap < 1024 || sscanf(l + 1, "%*d %15s %15s %15s %1023s", st, est, dev, dir) != 4) return false;
  snprintf(status, 8, "%.7s", st);
  return true;
}

static void test_cluster(void) {
  if (!g_vigil[0]) { printf("SKIP the --cell / --jobs / --slurm checks: no vigil beside the test\n"); return; }
  /* 2 rows on 2 datasets x 2 seeds = 4 smoke cells (meanimage: statistics only, fast) */
  put(P("tables/u.json"),
      "{\"table\": \"u\", \"title\": \"cluster table\", \"method\": \"meanimage\", \"scale\": 100,"
      " \"metrics\": [{\"key\": \"image_auroc\"}], \"smoke_train\": [\"--val-fraction\", \"0\"],"
      " \"columns\": [{\"id\": \"c1\", \"est_cell_s\": {\"cpu\": 30}}],"
      " \"rows\": [{\"id\": \"a\", \"category\": \"carpet\", \"paper\": {\"c1\": [50]}},"
      "          {\"id\": \"l\", \"category\": \"pushpins\", \"dataset\": \"loco\"}]}");
  char args[4096], base[2048];
  int rc;
  snprintf(base, sizeof base, "u --tables %s --out %s --smoke --runs 2", P("tables"), P("c"));
  /* --cells: index, status, estimate, device, run directory */
  snprintf(args, sizeof args, "%s --cells", base);
  char *o = run(args, &rc);
  char dir[4][1024], stt[4][8];
  bool all = rc == 0 && o && strstr(o, "4 cells, 4 to run");
  for (int k = 0; k < 4; k++) all = all && cells_line(o, k, dir[k], sizeof dir[k], stt[k]) && !strcmp(stt[k], "todo");
  VG_CHECK(all && strstr(o, "\n0 todo ? cpu ") && strstr(dir[0], "mvtec-woven") && strstr(dir[2], "loco-assembly") && !strstr(o, "\n4 "),
           "--cells: 4 lines (index todo est device dir), in the fixed order:\n%s", o ? o : "");
  free(o);
  if (!all) return;
  /* --cell out of range, or with 'all' / --jobs / --slurm: exit 2, nothing made */
  snprintf(args, sizeof args, "%s --cell 4", base);
  o = run(args, &rc);
  VG_CHECK(rc == 2 && o && strstr(o, "out of range") && strstr(o, "4 cells (0..3") && count_runs(P("c/smoke/runs")) <= 0,
           "--cell 4 of 4 cells: exit 2 naming the range, nothing run:\n%s", o ? o : "");
  free(o);
  snprintf(args, sizeof args, "all --tables %s --out %s --smoke --cell 0", P("tables"), P("c"));
  o = run(args, &rc);
  VG_CHECK(rc == 2 && o && strstr(o, "one cell of one table"), "--cell with 'all': exit 2 (%s)", o ? o : "");
  free(o);
  snprintf(args, sizeof args, "%s --cell 0 --jobs 2", base);
  o = run(args, &rc);
  VG_CHECK(rc == 2, "--cell with --jobs: exit 2");
  free(o);
  /* --cell 0: exactly that run directory, no table */
  snprintf(args, sizeof args, "%s --cell 0", base);
  o = run(args, &rc);
  char mp[1100];
  snprintf(mp, sizeof mp, "%s/metrics.json", dir[0]);
  struct stat sb;
  VG_CHECK(rc == 0 && o && strstr(o, "cell 0 done") && stat(mp, &sb) == 0 && count_runs(P("c/smoke/runs")) == 1 &&
               stat(P("c/smoke/u"), &sb) != 0,
           "--cell 0: only its run directory (%d run dirs), no aggregation:\n%s", count_runs(P("c/smoke/runs")), o ? o : "");
  free(o);
  o = run(args, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "cell 0 is done"), "--cell 0 again: done, nothing rerun (%s)", o ? o : "");
  free(o);
  /* two processes on one cell at once: it runs once (the cell lock), both succeed */
  {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "%s reproduce %s --cell 1 & %s reproduce %s --cell 1; wait", g_vigil, base, g_vigil, base);
    o = vg_test_run(cmd, &rc);
    const char *a = o ? strstr(o, "cell 1 done") : NULL;
    bool once = a && !strstr(a + 1, "cell 1 done") && (strstr(o, "cell 1 is done") || strstr(o, "finished meanwhile"));
    snprintf(mp, sizeof mp, "%s/metrics.json", dir[1]);
    VG_CHECK(rc == 0 && once && stat(mp, &sb) == 0 && count_runs(P("c/smoke/runs")) == 2,
             "the same cell from two processes at once: run once, the other waits and finds it done (rc %d, %d run dirs):\n%s", rc,
             count_runs(P("c/smoke/runs")), o ? o : "");
    free(o);
  }
  snprintf(args, sizeof args, "%s --cells", base);
  o = run(args, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "2 to run") && cells_line(o, 0, dir[0], sizeof dir[0], stt[0]) && !strcmp(stt[0], "done") &&
               cells_line(o, 2, dir[2], sizeof dir[2], stt[2]) && !strcmp(stt[2], "todo"),
           "--cells after cells 0 and 1: done, done, todo, todo:\n%s", o ? o : "");
  free(o);
  /* --jobs 2 gives the same table as a serial run */
  snprintf(args, sizeof args, "u --tables %s --out %s --smoke --runs 2", P("tables"), P("serial"));
  o = run(args, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "4 cells (4 run now, 0 failed)"), "serial run: 4 cells:\n%s", o ? o : "");
  free(o);
  snprintf(args, sizeof args, "u --tables %s --out %s --smoke --runs 2 --jobs 2", P("tables"), P("jobs"));
  o = run(args, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "4 cells (4 run now, 0 failed)") && strstr(o, "[4/4]"), "--jobs 2: 4 cells:\n%s", o ? o : "");
  free(o);
  char *ts = slurp(P("serial/smoke/u/table.json")), *tj = slurp(P("jobs/smoke/u/table.json"));
  double va = entry(P("jobs/smoke/u/table.json"), "a", "ours_mean"), vl = entry(P("jobs/smoke/u/table.json"), "l", "ours_mean");
  VG_CHECK(ts && tj && !strcmp(ts, tj) && isfinite(va) && isfinite(vl) && entry(P("jobs/smoke/u/table.json"), "a", "seeds") == 2,
           "--jobs 2: table.json identical to the serial run's, every row over 2 seeds (%g, %g)", va, vl);
  free(tj);
  /* --jobs with --device cuda and a GPU list: one GPU per pool slot (the cells themselves fail
   * without those GPUs: exit 1, or 0 on a machine that has them) */
  {
    char cmd2[4400];
    snprintf(cmd2, sizeof cmd2, "CUDA_VISIBLE_DEVICES=3,5 %s reproduce u --tables %s --out %s --smoke --runs 2 --jobs 2 --device cuda",
             g_vigil, P("tables"), P("gpu"));
    o = vg_test_run(cmd2, &rc);
    VG_CHECK((rc == 0 || rc == 1) && o && strstr(o, "2 jobs over 2 GPUs (CUDA_VISIBLE_DEVICES per cell)") && strstr(o, "[4/4]"),
             "--jobs 2 --device cuda with CUDA_VISIBLE_DEVICES=3,5: one GPU per cell:\n%s", o ? o : "");
    free(o);
  }
  /* --slurm: the array over the unfinished cells (2, 3), the time as Slurm reads it, the GPUs */
  snprintf(args, sizeof args, "%s --slurm --time 1:30 --gpus-per-cell 2 --partition gpu --account lab1", base);
  o = run(args, &rc);
  free(o);
  char *job = slurp(P("c/smoke/slurm/u/job.sbatch")), *agg = slurp(P("c/smoke/slurm/u/aggregate.sbatch"));
  VG_CHECK(rc == 0 && job && strstr(job, "#SBATCH --array=2-3\n") && strstr(job, "#SBATCH --time=01:30:00\n") &&
               strstr(job, "#SBATCH --gres=gpu:2\n") && strstr(job, "#SBATCH --partition=gpu\n") && strstr(job, "#SBATCH --account=lab1\n") &&
               strstr(job, "--cell \"$SLURM_ARRAY_TASK_ID\"") && strstr(job, "/logs/cell-%a.out") && strstr(job, "--smoke") &&
               strstr(job, "--runs 2"),
           "job.sbatch: array 2-3 (the unfinished cells), --time 01:30:00 (HH:MM, not Slurm's MM:SS), gres, --cell:\n%s", job ? job : "");
  VG_CHECK(agg && strstr(agg, "--aggregate\n") && !strstr(agg, "--cell") && !strstr(agg, "gres") && strstr(agg, "--partition=gpu"),
           "aggregate.sbatch: --aggregate, no GPU:\n%s", agg ? agg : "");
  free(job);
  free(agg);
  static const char *const bad[] = {"--slurm --time 90", "--slurm --time 1:75", "--slurm --partition 'a;b'", "--partition gpu",
                                    "--submit", "--slurm --jobs 2"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(args, sizeof args, "%s %s", base, bad[i]);
    o = run(args, &rc);
    VG_CHECK(rc == 2, "%s: exit 2 (%s)", bad[i], o ? o : "");
    free(o);
  }
  /* --submit through a stand-in sbatch (tests/slurm.sh runs a real cluster): the array job's id
   * parsed ("ID;CLUSTER" too), the aggregate job after it */
  put(P("sbatch"), "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/sbatch.log\"\n"
                   "case \"$*\" in *dependency*) echo 4243 ;; *) echo '4242;cluster' ;; esac\n");
  chmod(P("sbatch"), 0755);
  snprintf(args, sizeof args, "%s --slurm --submit", base);
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "SBATCH=%s %s reproduce %s", P("sbatch"), g_vigil, args);
  o = vg_test_run(cmd, &rc);
  char *sl = slurp(P("sbatch.log"));
  VG_CHECK(rc == 0 && o && strstr(o, "array_job=4242 aggregate_job=4243") && sl && strstr(sl, "--dependency=afterany:4242") &&
               strstr(sl, "aggregate.sbatch") && strstr(sl, "job.sbatch"),
           "--submit: both submitted, the aggregate after the array's job id:\n%s%s", o ? o : "", sl ? sl : "");
  free(o);
  free(sl);
  /* the job script itself, as a task runs it (no Slurm needed): cells 2 and 3, then the aggregate */
  for (int k = 2; k < 4; k++) {
    snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=%d sh %s", k, P("c/smoke/slurm/u/job.sbatch"));
    o = vg_test_run(cmd, &rc);
    char want[32];
    snprintf(want, sizeof want, "cell %d done", k);
    VG_CHECK(rc == 0 && o && strstr(o, want), "job.sbatch with SLURM_ARRAY_TASK_ID=%d runs that cell:\n%s", k, o ? o : "");
    free(o);
  }
  snprintf(cmd, sizeof cmd, "sh %s", P("c/smoke/slurm/u/aggregate.sbatch"));
  o = vg_test_run(cmd, &rc);
  free(o);
  char *tc = slurp(P("c/smoke/u/table.json"));
  VG_CHECK(rc == 0 && tc && ts && !strcmp(tc, ts), "cells run one by one (--cell, job.sbatch) + aggregate.sbatch: the serial run's table.json");
  free(tc);
  free(ts);
  /* past Slurm's default MaxArraySize (indices 0..1000): 20 categories x 60 seeds = 1200 cells ->
   * job.sbatch (cells 0..999) and job-1.sbatch (task id + 1000), the aggregate after both */
  {
    char spec[4096] = "{\"table\": \"big\", \"method\": \"meanimage\", \"metrics\": [{\"key\": \"image_auroc\"}],"
                      " \"columns\": [{\"id\": \"c\"}], \"rows\": [{\"id\": \"r\", \"categories\": [";
    for (int k = 0; k < 20; k++) {
      char d[1200];
      snprintf(d, sizeof d, "%s/mvtec/k%02d/train/good", P("bigdata"), k);
      vg_test_mkdirs(d);
      size_t l = strlen(spec);
      snprintf(spec + l, sizeof spec - l, "%s\"k%02d\"", k ? ", " : "", k);
    }
    strcat(spec, "]}]}");
    put(P("tables/big.json"), spec);
    unlink(P("sbatch.log"));
    snprintf(cmd, sizeof cmd, "SBATCH=%s %s reproduce big --tables %s --out %s --data %s --runs 60 --slurm --submit", P("sbatch"), g_vigil,
             P("tables"), P("big"), P("bigdata"));
    o = vg_test_run(cmd, &rc);
    char *j0 = slurp(P("big/slurm/big/job.sbatch")), *j1 = slurp(P("big/slurm/big/job-1.sbatch"));
    sl = slurp(P("sbatch.log"));
    VG_CHECK(rc == 0 && j0 && j1 && strstr(j0, "#SBATCH --array=0-999\n") && strstr(j0, "--cell \"$SLURM_ARRAY_TASK_ID\"") &&
                 strstr(j1, "#SBATCH --array=0-199\n") && strstr(j1, "--cell \"$((SLURM_ARRAY_TASK_ID + 1000))\"") &&
                 strstr(j1, "cell-1000+%a.out") && sl && strstr(sl, "--dependency=afterany:4242:4242 ") && o &&
                 strstr(o, "1200 cells, 1200 to run"),
             "1200 cells: two arrays below MaxArraySize (0-999, then 0-199 + 1000), the aggregate after both:\n%s%s", o ? o : "",
             sl ? sl : "");
    free(o); free(j0); free(j1); free(sl);
  }
  /* every cell done: the array has nothing left */
  snprintf(args, sizeof args, "%s --slurm", base);
  o = run(args, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "4 cells, 0 to run") && strstr(o, "every cell is done"), "--slurm with every cell done: no array:\n%s",
           o ? o : "");
  free(o);
}

static void test_weights(void) {
  uint8_t *buf;
  size_t n;
  vg_json *j = NULL;
  if (vg_file_read_all("scripts/tables/weights.json", 1 << 20, &buf, &n) == VG_OK) {
    vg_json_parse((char *)buf, n, NULL, &j);
    free(buf);
  }
  const vg_json *list = vg_json_get(j, "weights");
  int agree = 0, entries = (int)vg_json_len(list);
  for (int64_t i = 0; i < vg_json_len(list); i++) {
    const vg_json *e = vg_json_at(list, i);
    const char *f = vg_json_as_string(vg_json_get(e, "file")), *sha = vg_json_as_string(vg_json_get(e, "sha256")),
               *pre = vg_json_as_string(vg_json_get(e, "sha256_prefix"));
    bool prefix = false;
    const char *c = vg_published_sha256(f, &prefix);
    bool ok = sha ? c && !prefix && !strcmp(c, sha) && strlen(sha) == 64 && pre && !strncmp(sha, pre, strlen(pre))
                  : pre ? c && prefix && !strcmp(c, pre) : c == NULL;
    /* torchvision's names carry the hash prefix: it must be the manifest's */
    const char *dash = f ? strrchr(f, '-') : NULL;
    if (ok && dash && strlen(dash) == 13 && pre) ok = !strncmp(dash + 1, pre, 8);
    if (ok && f && !strncmp(f, "resnet18-", 9)) ok = sha != NULL;   /* the one full hash found */
    agree += ok;
    if (!ok) VG_CHECK(false, "weights.json entry %s agrees with the compiled-in list", f ? f : "?");
  }
  VG_CHECK(entries >= 7 && agree == entries, "weights.json (%d entries) = vg_published_sha256 (hash, prefix, or none)", entries);
  vg_json_free(j);
  /* a file under a published name with other content is refused; another name is not checked */
  vg_test_mkdirs(P("w"));
  put(P("w/resnet18-f37072fd.pth"), "not the torchvision file");
  vg_status st = vg_check_published_weights(P("w/resnet18-f37072fd.pth"));
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "not the published file") &&
               strstr(vg_last_error(), "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"),
           "published name, other content: refused naming the published hash (%s)", vg_last_error());
  st = vg_nn_load_state_pth(NULL, P("w/resnet18-f37072fd.pth"), true);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "not the published file"), "vg_nn_load_state_pth checks it first (%s)",
           vg_last_error());
  put(P("w/wide_resnet50_2-95faca4d.pth"), "x");
  VG_CHECK(vg_check_published_weights(P("w/wide_resnet50_2-95faca4d.pth")) == VG_ERR_FORMAT && strstr(vg_last_error(), "(prefix)"),
           "prefix-only entry: a file whose SHA-256 does not start with 95faca4d is refused (%s)", vg_last_error());
  put(P("w/mine.pth"), "x");
  VG_CHECK(vg_check_published_weights(P("w/mine.pth")) == VG_OK, "another name: not checked");
  VG_CHECK(vg_check_published_weights(P("w/resnet18-f37072fd.pth.bak")) == VG_OK && vg_published_sha256("x/resnet18-f37072fd.pth", NULL) == NULL,
           "only the exact base name is listed");
}

int main(int argc, char **argv) {
  (void)argc;
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  snprintf(g_tmp, sizeof g_tmp, "/tmp/vg_reproduce_%d", (int)getpid());
  vg_test_mkdirs(g_tmp);
  setenv("VIGIL_THREADS", "2", 1);
  test_numbers();
  test_spec_errors();
  test_transcription();
  test_weights();
  test_command();
  test_cluster();
  vg_test_tmp_done(g_tmp);
  return vg_test_finish();
}
