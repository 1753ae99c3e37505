/* bench_table.c — `vigil bench-table FILES...|DIRS`: the cross-device latency table.
 *
 * Reads the JSON lines `vigil bench` writes (and tools/bench_gpu_torch.py's torch lines)
 * from any number of machines — files, or folders searched for *.jsonl / *.json — and merges
 * them into one table: rows = methods (EfficientAD-S, FastFlow-WRN50, ...), columns =
 * devices (a GPU by name, a CPU by model and thread count) with the dtype and, for other
 * implementations than Vigil's, the implementation (torch-eager, ...). Cells: latency =
 * mean ms of batch 1, throughput = images/s of batch 16, memory = peak reserved GPU memory
 * (CPU: peak resident set). Several records for one cell: a `--paper` protocol record
 * wins over a short one, then the latest (unix_time).
 *
 * Beside ours, the EfficientAD paper's numbers (a built-in reference set transcribed from
 * its Tables 1, 16 and 17: latency on five GPUs, throughput and memory on an RTX A6000)
 * fill columns of their own; `--reference` prints that set as JSON.
 *
 * Writes OUT/table.md (also printed), OUT/table.json, OUT/latency.svg (the paper's Figure 6
 * layout: latency per method and device, log scale) and, with --auroc, OUT/auroc_latency.svg
 * (the Figure 1 layout: AU-ROC against latency, the paper's points beside ours). */
#include <dirent.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/file.h"
#include "base/json.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "report/report.h"

/* ---- the paper's numbers (EfficientAD, Batzner et al., WACV 2024; appendix Tables 16/17
 * and main Table 1). The text extraction in ../shared/papers drops decimal points in places
 * ("53" for 5.3 in Table 17's EfficientAD-M row, "248" / "345" in DSR's, "534" in AST's):
 * each such value was set from its neighbours and is checked digit by digit against the
 * text in tests/test_bench_table.c. NaN = not given (Table 16's EfficientAD rows are not
 * legible in the extraction; PatchCore's kNN part was not measured by the authors). */
#define NA NAN
static const char *const PAPER_GPUS[5] = {"RTX A6000", "RTX A5000", "Tesla V100", "RTX 3080", "RTX 2080 Ti"};
typedef struct {
  const char *method;
  double latency[5];      /* Table 17: ms per GPU, batch 1, f16 */
  double auroc, aupro;    /* Table 1: mean image AU-ROC / AU-PRO over MVTec AD, VisA, LOCO [%] */
  double throughput;      /* Table 1: images/s on the A6000, batch 16 */
  double params_m, gflops, memory_mb;   /* Table 16 (A6000): feature extraction / network part */
} paper_row;
static const paper_row PAPER[] = {
  {"EfficientAD-S", {2.2, 2.5, 3.9, 3.8, 4.5}, 95.4, 92.5, 614, NA, NA, NA},
  {"EfficientAD-M", {4.5, 5.3, 6.3, 7.0, 7.6}, 96.0, 93.3, 269, NA, NA, NA},
  {"GCAD", {10.7, 11.7, 12.9, 13.7, 18.0}, 85.4, 88.0, 121, 65, 416, 555},
  {"SimpleNet", {12.0, 13.3, 19.2, 18.1, 21.9}, 87.9, 74.4, 194, 73, 38, 508},
  {"FastFlow", {16.5, 17.1, 26.1, 27.5, 31.0}, 90.0, 86.5, 120, 92, 85, 404},
  {"DSR", {17.2, 18.0, 24.8, 24.6, 34.5}, 90.8, 78.6, 104, 40, 267, 314},
  {"PatchCore", {32.0, 31.5, 47.1, 41.1, 53.2}, 91.1, 80.9, 76, 83, 41, 637},
  {"AST", {53.1, 53.4, 75.6, 82.3, 87.1}, 92.4, 77.2, 41, 154, 199, 618},
  {"S-T", {74.7, 81.0, 82.2, 99.6, 121.7}, 88.4, 89.7, 16, 26, 4468, 1077},
  {"PatchCore-ens", {147.6, 145.0, 229.2, 189.0, 216.9}, 92.1, 80.7, 13, 150, 159, 1335},
};
#define NPAPER ((int)(sizeof PAPER / sizeof PAPER[0]))

/* ---- options */
typedef struct {
  const char *out, *auroc_list[32];
  int nauroc;
  bool reference, no_paper;
} bt_opts;

static bool bt_auroc(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  bt_opts *b = opts;
  const char *eq = strrchr(v, '=');
  char *end = NULL;
  double x = eq ? strtod(eq + 1, &end) : NAN;
  if (!eq || eq == v || !end || *end || !(x >= 0 && x <= 100)) {
    fprintf(stderr, "vigil %s: %s '%s': want METHOD=AUROC with AUROC in [0, 100] (e.g. EfficientAD-S=95.1)\n", cmd,
            o->name, v);
    return false;
  }
  if (b->nauroc == 32) { fprintf(stderr, "vigil %s: %s: at most 32\n", cmd, o->name); return false; }
  b->auroc_list[b->nauroc++] = v;
  return true;
}

#define T bt_opts
static const vg_opt bt_table[] = {
  {.name = "--out", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, out),
   .help = "write table.md, table.json, latency.svg (and auroc_latency.svg) there", .def = "bench-table"},
  {.name = "--auroc", .kind = VG_OPT_LIST, .arg = "METHOD=AUROC", .hook = bt_auroc,
   .help = "a method's image AU-ROC [%] (e.g. from a reproduction table); repeatable:\n"
           "adds the AU-ROC vs latency chart (the paper's Figure 1 layout)"},
  {.name = "--no-paper", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, no_paper),
   .help = "leave the paper's reference numbers out"},
  {.name = "--reference", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, reference),
   .help = "print the built-in reference numbers (EfficientAD paper, Tables 1, 16, 17) as JSON and exit"},
  {0}};
#undef T

const vg_cmd_spec vg_cmd_bench_table = {
  .name = "bench-table", .opts = bt_table, .max_pos = -1, .example = "bench/results",
  .usage = "usage: vigil bench-table [options] FILE|DIR...\n"
           "  merges `vigil bench` JSON lines (and tools/bench_gpu_torch.py's) from any number of machines into one\n"
           "  table: methods x devices, latency (batch 1), throughput (batch 16) and memory, with the EfficientAD\n"
           "  paper's numbers beside (Tables 1, 16, 17). A folder is searched for *.jsonl / *.json files.\n",
  .footer = "Several records for one cell: a --paper protocol record wins, then the latest.\n"};

/* ---- records */
enum { MAX_FILES = 4096, MAX_RECS = 100000, MAX_ROWS = 256, MAX_COLS = 64 };
typedef struct {
  char row[96], col[200];
  int batch;
  bool paper_protocol;
  int64_t when;
  double mean_ms, images_s, memory_mb, params, gflops;
  char src[160];
} rec;

typedef struct {
  rec *r;
  int n, cap;
  int skipped;
  char rows[MAX_ROWS][200], cols[MAX_COLS][200];
  int nrows, ncols;
} recs;

static const char *short_backbone(const char *b) {
  if (!b) return NULL;
  if (!strcmp(b, "wide_resnet50_2")) return "WRN50";
  if (!strcmp(b, "wide_resnet101_2")) return "WRN101";
  if (!strcmp(b, "resnet18")) return "R18";
  if (!strcmp(b, "resnet50")) return "R50";
  return b;
}

/* "EfficientAD-S", "FastFlow-WRN50", "CFLOW-WRN50", "PatchCore-WRN50", else method[-backbone] */
static void row_label(const vg_json *j, char *out, size_t cap) {
  const char *m = vg_json_as_string(vg_json_get(j, "method"));
  const char *model = vg_json_as_string(vg_json_get(j, "model"));
  const char *bb = short_backbone(vg_json_as_string(vg_json_get(j, "backbone")));
  if (!m) m = "?";
  if (!strcmp(m, "efficientad")) {
    snprintf(out, cap, "EfficientAD-%c", model && (model[0] == 'm' || model[0] == 'M') ? 'M' : 'S');
    return;
  }
  static const char *const names[][2] = {{"fastflow", "FastFlow"}, {"cflow", "CFLOW"}, {"patchcore", "PatchCore"},
                                         {"padim", "PaDiM"}, {"stfpm", "STFPM"}, {"meanimage", "meanimage"}};
  const char *nice = m;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(m, names[i][0])) nice = names[i][1];
  if (bb) snprintf(out, cap, "%s-%s", nice, bb);
  else snprintf(out, cap, "%s", nice);
}

/* the device: the GPU's name without the "(sm_90, 79.1 GiB)" tail, or the CPU's model and
 * threads; then the dtype, and the implementation when it is not Vigil's */
static void col_label(const vg_json *j, char *out, size_t cap) {
  const char *dev = vg_json_as_string(vg_json_get(j, "device"));
  const char *dt = vg_json_as_string(vg_json_get(j, "dtype"));
  const char *impl = vg_json_as_string(vg_json_get(j, "impl"));
  char d[128];
  if (dev && strcmp(dev, "cpu")) {
    const char *g = vg_json_as_string(vg_json_get(j, "gpu"));
    snprintf(d, sizeof d, "%s", g ? g : "GPU");
    char *p = strstr(d, " (sm_");
    if (p) *p = 0;
  } else {
    const char *cpu = vg_json_as_string(vg_json_get(j, "cpu"));
    int64_t th = 0;
    vg_json_as_int64(vg_json_get(j, "threads"), &th);
    snprintf(d, sizeof d, "%s, %lld thr", cpu && cpu[0] ? cpu : "CPU", (long long)th);
  }
  bool tf32 = false;
  vg_json_as_bool(vg_json_get(j, "tf32"), &tf32);
  bool graph = true;
  if (!impl && dev && strcmp(dev, "cpu")) vg_json_as_bool(vg_json_get(j, "graph"), &graph);
  snprintf(out, cap, "%s %s%s%s", d, tf32 ? "tf32" : dt ? dt : "f32",
           impl ? " " : graph ? "" : " vigil-eager", impl ? impl : "");
}

static int intern(char (*tab)[200], int *n, int max, const char *s) {
  for (int i = 0; i < *n; i++)
    if (!strcmp(tab[i], s)) return i;
  if (*n == max) return -1;
  snprintf(tab[*n], 200, "%s", s);
  return (*n)++;
}

static double num(const vg_json *j, const char *k) {
  double v = NAN;
  return vg_json_as_double(vg_json_get(j, k), &v) ? v : NAN;
}

static void add_line(recs *R, const char *line, size_t len, const char *src) {
  vg_json *j = NULL;
  if (vg_json_parse(line, len, NULL, &j) != VG_OK) { R->skipped++; return; }
  const char *kind = vg_json_as_string(vg_json_get(j, "bench"));
  int64_t batch = 0;
  double mean = num(j, "mean_ms");
  /* training-step lines (`vigil bench --train`, bench/cpu.sh's torch side) are not inference timings */
  const char *mode = vg_json_as_string(vg_json_get(j, "mode"));
  if (!kind || (strcmp(kind, "vigil_bench") && strcmp(kind, "torch_bench")) || !vg_json_as_int64(vg_json_get(j, "batch"), &batch) ||
      batch < 1 || !(mean > 0) || vg_json_get(j, "error") || (mode && strcmp(mode, "infer"))) {
    if (!kind || (strcmp(kind, "vigil_bench") && strcmp(kind, "torch_bench"))) R->skipped++;
    vg_json_free(j);
    return;
  }
  if (R->n == MAX_RECS) { R->skipped++; vg_json_free(j); return; }
  if (R->n == R->cap) {
    int nc = R->cap ? 2 * R->cap : 256;
    rec *t = realloc(R->r, sizeof *t * (size_t)nc);
    if (!t) { R->skipped++; vg_json_free(j); return; }
    R->r = t;
    R->cap = nc;
  }
  rec *r = &R->r[R->n];
  memset(r, 0, sizeof *r);
  row_label(j, r->row, sizeof r->row);
  col_label(j, r->col, sizeof r->col);
  if (intern(R->rows, &R->nrows, MAX_ROWS, r->row) < 0 || intern(R->cols, &R->ncols, MAX_COLS, r->col) < 0) {
    R->skipped++;
    vg_json_free(j);
    return;
  }
  r->batch = (int)batch;
  const char *proto = vg_json_as_string(vg_json_get(j, "protocol"));
  r->paper_protocol = proto && !strcmp(proto, "paper");
  vg_json_as_int64(vg_json_get(j, "unix_time"), &r->when);
  r->mean_ms = mean;
  r->images_s = num(j, "images_s");
  r->memory_mb = num(j, "peak_device_reserved_mb");
  if (!isfinite(r->memory_mb)) r->memory_mb = num(j, "peak_rss_mb");
  r->params = num(j, "params");
  r->gflops = num(j, "gflops_per_image");
  snprintf(r->src, sizeof r->src, "%s", src);
  R->n++;
  vg_json_free(j);
}

static vg_status read_file(recs *R, const char *path) {
  uint8_t *buf = NULL;
  size_t n = 0;
  vg_status st = vg_file_read_all(path, (size_t)256 << 20, &buf, &n);
  if (st != VG_OK) return st;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t i = 0;
  while (i < n) {
    size_t e = i;
    while (e < n && buf[e] != '\n') e++;
    size_t a = i;
    while (a < e && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r')) a++;
    if (e > a && buf[a] == '{') add_line(R, (const char *)buf + a, e - a, base);
    i = e + 1;
  }
  free(buf);
  return VG_OK;
}

static bool has_ext(const char *name) {
  size_t n = strlen(name);
  return (n > 6 && !strcmp(name + n - 6, ".jsonl")) || (n > 5 && !strcmp(name + n - 5, ".json"));
}

/* files under dir (depth-limited, sorted for a stable order) */
static vg_status read_dir(recs *R, const char *dir, int depth, int *nfiles) {
  if (depth > 4) return VG_OK;
  struct dirent **ents = NULL;
  int ne = scandir(dir, &ents, NULL, alphasort);
  if (ne < 0) return vg_fail(VG_ERR_IO, "bench-table: cannot list %s", dir);
  vg_status st = VG_OK;
  for (int i = 0; i < ne; i++) {
    const char *nm = ents[i]->d_name;
    if (st == VG_OK && nm[0] != '.') {
      char p[4096];
      snprintf(p, sizeof p, "%s/%s", dir, nm);
      struct stat sb;
      if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) st = read_dir(R, p, depth + 1, nfiles);
      else if (S_ISREG(sb.st_mode) && has_ext(nm)) {
        if (++*nfiles > MAX_FILES) st = vg_fail(VG_ERR_ARG, "bench-table: more than %d files under %s", MAX_FILES, dir);
        else st = read_file(R, p);
      }
    }
    free(ents[i]);
  }
  free(ents);
  return st;
}

/* the record of (row, col, batch): the paper protocol first, then the latest */
static const rec *cell(const recs *R, const char *row, const char *col, int batch) {
  const rec *best = NULL;
  for (int i = 0; i < R->n; i++) {
    const rec *r = &R->r[i];
    if (r->batch != batch || strcmp(r->row, row) || strcmp(r->col, col)) continue;
    if (!best || (r->paper_protocol && !best->paper_protocol) ||
        (r->paper_protocol == best->paper_protocol && r->when >= best->when))
      best = r;
  }
  return best;
}

static const paper_row *paper_of(const char *row) {
  for (int i = 0; i < NPAPER; i++)
    if (!strcmp(PAPER[i].method, row)) return &PAPER[i];
  return NULL;
}

static void fmt(char *b, size_t cap, double v) {
  if (!isfinite(v)) snprintf(b, cap, "–");
  else if (v < 10) snprintf(b, cap, "%.2f", v);
  else if (v < 1000) snprintf(b, cap, "%.1f", v);
  else snprintf(b, cap, "%.0f", v);
}

typedef enum { M_LAT, M_THR, M_MEM, M_PARAMS, M_FLOPS } metric;
static double rec_value(const recs *R, const char *row, const char *col, metric m) {
  const rec *r = cell(R, row, col, m == M_THR ? 16 : 1);
  if (!r && m != M_LAT && m != M_THR) r = cell(R, row, col, 16);
  if (!r) return NAN;
  switch (m) {
    case M_LAT: return r->mean_ms;
    case M_THR: return r->images_s;
    case M_MEM: return r->memory_mb;
    case M_PARAMS: return r->params / 1e6;
    case M_FLOPS: return r->gflops;
  }
  return NAN;
}
static double paper_value(const paper_row *p, metric m, int gpu) {
  if (!p) return NAN;
  switch (m) {
    case M_LAT: return p->latency[gpu];
    case M_THR: return gpu == 0 ? p->throughput : NAN;
    case M_MEM: return gpu == 0 ? p->memory_mb : NAN;
    case M_PARAMS: return gpu == 0 ? p->params_m : NAN;
    case M_FLOPS: return gpu == 0 ? p->gflops : NAN;
  }
  return NAN;
}

typedef struct { char (*text); size_t n, cap; bool oom; } tb;
static void tb_add(tb *b, const char *fmt_, ...) __attribute__((format(printf, 2, 3)));
static void tb_add(tb *b, const char *fmt_, ...) {
  if (b->oom) return;
  va_list ap;
  va_start(ap, fmt_);
  va_list aq;
  va_copy(aq, ap);
  int k = vsnprintf(NULL, 0, fmt_, ap);
  va_end(ap);
  if (k < 0 || b->n + (size_t)k + 1 > b->cap) {
    size_t nc = (b->cap ? 2 * b->cap : 8192) + (size_t)(k > 0 ? k : 0);
    char *t = k < 0 ? NULL : realloc(b->text, nc);
    if (!t) { b->oom = true; va_end(aq); return; }
    b->text = t;
    b->cap = nc;
  }
  vsnprintf(b->text + b->n, b->cap - b->n, fmt_, aq);
  va_end(aq);
  b->n += (size_t)k;
}

/* the rows in order: ours (first-seen order), then the paper's methods we have not run */
static int row_order(const recs *R, bool paper, const char **rows) {
  int n = 0;
  for (int i = 0; i < R->nrows; i++) rows[n++] = R->rows[i];
  for (int i = 0; paper && i < NPAPER; i++) {
    bool have = false;
    for (int k = 0; k < R->nrows; k++) have |= !strcmp(R->rows[k], PAPER[i].method);
    if (!have) rows[n++] = PAPER[i].method;
  }
  return n;
}

static void md_section(tb *b, const recs *R, bool paper, metric m, const char *title) {
  static const char *const paper_src[] = {"Table 17", "Table 1", "Table 16", "Table 16", "Table 16"};
  int npg = !paper ? 0 : m == M_LAT ? 5 : 1;
  tb_add(b, "\n## %s\n\n| method |", title);
  for (int c = 0; c < R->ncols; c++) tb_add(b, " %s |", R->cols[c]);
  for (int g = 0; g < npg; g++) tb_add(b, " paper %s (%s) |", PAPER_GPUS[g], paper_src[m]);
  tb_add(b, "\n|---|");
  for (int c = 0; c < R->ncols + npg; c++) tb_add(b, "---:|");
  tb_add(b, "\n");
  const char *rows[MAX_ROWS + NPAPER];
  int nr = row_order(R, paper, rows);
  for (int i = 0; i < nr; i++) {
    tb_add(b, "| %s |", rows[i]);
    for (int c = 0; c < R->ncols; c++) {
      char v[32];
      fmt(v, sizeof v, rec_value(R, rows[i], R->cols[c], m));
      tb_add(b, " %s |", v);
    }
    const paper_row *p = paper ? paper_of(rows[i]) : NULL;
    for (int g = 0; g < npg; g++) {
      char v[32];
      fmt(v, sizeof v, paper_value(p, m, g));
      tb_add(b, " %s |", v);
    }
    tb_add(b, "\n");
  }
}

static void json_num(vg_json_writer *w, const char *k, double v) {
  vg_jw_key(w, k);
  if (isfinite(v)) vg_jw_double(w, v);
  else vg_jw_null(w);
}

static void json_reference(vg_json_writer *w) {
  vg_jw_begin_object(w);
  vg_jw_key(w, "source");
  vg_jw_string(w, "EfficientAD (Batzner et al., WACV 2024): Table 1 (A6000: AU-ROC, AU-PRO, throughput), "
                  "Table 16 (A6000: parameters, FLOPs, GPU memory), Table 17 (latency per GPU, f16, batch 1)");
  vg_jw_key(w, "gpus");
  vg_jw_begin_array(w);
  for (int g = 0; g < 5; g++) vg_jw_string(w, PAPER_GPUS[g]);
  vg_jw_end_array(w);
  vg_jw_key(w, "rows");
  vg_jw_begin_array(w);
  for (int i = 0; i < NPAPER; i++) {
    const paper_row *p = &PAPER[i];
    vg_jw_begin_object(w);
    vg_jw_key(w, "method");
    vg_jw_string(w, p->method);
    vg_jw_key(w, "latency_ms");
    vg_jw_begin_array(w);
    for (int g = 0; g < 5; g++) vg_jw_double(w, p->latency[g]);
    vg_jw_end_array(w);
    json_num(w, "image_auroc", p->auroc);
    json_num(w, "au_pro", p->aupro);
    json_num(w, "throughput_img_s", p->throughput);
    json_num(w, "params_m", p->params_m);
    json_num(w, "gflops", p->gflops);
    json_num(w, "memory_mb", p->memory_mb);
    vg_jw_end_object(w);
  }
  vg_jw_end_array(w);
  vg_jw_end_object(w);
}

static char *table_json(const recs *R, bool paper) {
  vg_json_writer w;
  vg_jw_init(&w, 1);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "devices");
  vg_jw_begin_array(&w);
  for (int c = 0; c < R->ncols; c++) vg_jw_string(&w, R->cols[c]);
  vg_jw_end_array(&w);
  vg_jw_key(&w, "rows");
  vg_jw_begin_array(&w);
  for (int i = 0; i < R->nrows; i++) {
    vg_jw_begin_object(&w);
    vg_jw_key(&w, "method");
    vg_jw_string(&w, R->rows[i]);
    vg_jw_key(&w, "cells");
    vg_jw_begin_object(&w);
    for (int c = 0; c < R->ncols; c++) {
      const rec *r1 = cell(R, R->rows[i], R->cols[c], 1), *r16 = cell(R, R->rows[i], R->cols[c], 16);
      if (!r1 && !r16) continue;
      vg_jw_key(&w, R->cols[c]);
      vg_jw_begin_object(&w);
      json_num(&w, "latency_ms", rec_value(R, R->rows[i], R->cols[c], M_LAT));
      json_num(&w, "throughput_img_s", rec_value(R, R->rows[i], R->cols[c], M_THR));
      json_num(&w, "memory_mb", rec_value(R, R->rows[i], R->cols[c], M_MEM));
      json_num(&w, "params_m", rec_value(R, R->rows[i], R->cols[c], M_PARAMS));
      json_num(&w, "gflops", rec_value(R, R->rows[i], R->cols[c], M_FLOPS));
      vg_jw_key(&w, "protocol");
      vg_jw_string(&w, (r1 ? r1 : r16)->paper_protocol ? "paper" : "short");
      vg_jw_key(&w, "source");
      vg_jw_string(&w, (r1 ? r1 : r16)->src);
      vg_jw_end_object(&w);
    }
    vg_jw_end_object(&w);
    vg_jw_end_object(&w);
  }
  vg_jw_end_array(&w);
  if (paper) {
    vg_jw_key(&w, "paper");
    json_reference(&w);
  }
  vg_jw_end_object(&w);
  return vg_jw_finish(&w, NULL);
}

static char *latency_svg(const recs *R, bool paper) {
  const char *rows[MAX_ROWS + NPAPER];
  int nr = row_order(R, paper, rows);
  int npg = paper ? 5 : 0, ns = R->ncols + npg;
  const char *series[MAX_COLS + 5];
  char pnames[5][64];
  bool hatched[MAX_COLS + 5] = {0};
  for (int c = 0; c < R->ncols; c++) series[c] = R->cols[c];
  for (int g = 0; g < npg; g++) {
    snprintf(pnames[g], sizeof pnames[g], "paper: %s f16 (Table 17)", PAPER_GPUS[g]);
    series[R->ncols + g] = pnames[g];
    hatched[R->ncols + g] = true;
  }
  double *v = malloc(sizeof(double) * (size_t)(nr * ns + 1));
  if (!v) { vg_fail(VG_ERR_NOMEM, "bench-table: out of memory"); return NULL; }
  for (int i = 0; i < nr; i++) {
    for (int c = 0; c < R->ncols; c++) v[i * ns + c] = rec_value(R, rows[i], R->cols[c], M_LAT);
    const paper_row *p = paper ? paper_of(rows[i]) : NULL;
    for (int g = 0; g < npg; g++) v[i * ns + R->ncols + g] = paper_value(p, M_LAT, g);
  }
  vg_report_bars bars = {.title = "Latency per method and device (batch 1, lower is better)",
                         .xlabel = "latency [ms], log scale", .ngroups = nr, .nseries = ns, .groups = rows,
                         .series = series, .v = v, .log_scale = true, .hatched = hatched};
  char *s = vg_report_svg_bars(&bars);
  free(v);
  return s;
}

/* AU-ROC against latency: ours (--auroc, latency on each device) and the paper's Table 1
 * points (A6000) */
static char *auroc_svg(const recs *R, const bt_opts *o, bool paper) {
  enum { MAXP = 32 * MAX_COLS + NPAPER };
  double *x = malloc(sizeof(double) * MAXP), *y = malloc(sizeof(double) * MAXP);
  char(*lab)[160] = malloc(sizeof *lab * MAXP);
  const char **labels = malloc(sizeof *labels * MAXP);
  int *ser = malloc(sizeof(int) * MAXP);
  char *s = NULL;
  if (!x || !y || !lab || !labels || !ser) { vg_fail(VG_ERR_NOMEM, "bench-table: out of memory"); goto done; }
  int n = 0;
  for (int a = 0; a < o->nauroc; a++) {
    const char *eq = strrchr(o->auroc_list[a], '=');
    char m[96];
    snprintf(m, sizeof m, "%.*s", (int)(eq - o->auroc_list[a]), o->auroc_list[a]);
    double au = strtod(eq + 1, NULL);
    for (int c = 0; c < R->ncols && n < MAXP; c++) {
      double lat = rec_value(R, m, R->cols[c], M_LAT);
      if (!isfinite(lat)) continue;
      x[n] = lat;
      y[n] = au;
      snprintf(lab[n], sizeof lab[n], "%s (%s)", m, R->cols[c]);
      labels[n] = lab[n];
      ser[n++] = 0;
    }
  }
  for (int i = 0; paper && i < NPAPER && n < MAXP; i++) {
    x[n] = PAPER[i].latency[0];
    y[n] = PAPER[i].auroc;
    snprintf(lab[n], sizeof lab[n], "%s", PAPER[i].method);
    labels[n] = lab[n];
    ser[n++] = 1;
  }
  const char *names[2] = {"ours (vigil bench)", "paper, RTX A6000 (Table 1)"};
  vg_report_scatter sc = {.title = "Image AU-ROC vs latency (batch 1)", .xlabel = "latency [ms], log scale",
                          .ylabel = "image AU-ROC [%]", .n = n, .x = x, .y = y, .labels = labels, .series = ser,
                          .nseries = 2, .series_names = names, .log_x = true};
  s = vg_report_svg_scatter(&sc);
done:
  free(x); free(y); free(lab); free(labels); free(ser);
  return s;
}

static vg_status write_text(const char *dir, const char *name, const char *text) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return vg_file_write_atomic(p, text, strlen(text));
}

int vg_cli_bench_table(int argc, char **argv) {
  bt_opts o = {.out = "bench-table"};
  const char **pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof *pos);
  int npos = 0;
  if (!pos) return 2;
  int rc = vg_opts_parse(&vg_cmd_bench_table, argc, argv, &o, pos, &npos);
  if (rc >= 0) { free(pos); return rc; }
  bool paper = !o.no_paper;
  if (o.reference) {
    vg_json_writer w;
    vg_jw_init(&w, 1);
    json_reference(&w);
    char *t = vg_jw_finish(&w, NULL);
    printf("%s\n", t ? t : "{}");
    free(t);
    free(pos);
    return 0;
  }
  if (npos == 0) {
    fprintf(stderr, "vigil bench-table: give the bench JSON files or folders (e.g. bench/results)\n");
    free(pos);
    return 2;
  }
  recs R = {0};
  vg_status st = VG_OK;
  int nfiles = 0;
  for (int i = 0; i < npos && st == VG_OK; i++) {
    struct stat sb;
    if (stat(pos[i], &sb) != 0) st = vg_fail(VG_ERR_IO, "bench-table: no such file or folder: %s", pos[i]);
    else if (S_ISDIR(sb.st_mode)) st = read_dir(&R, pos[i], 0, &nfiles);
    else st = read_file(&R, pos[i]);
  }
  rc = 1;
  if (st != VG_OK) { fprintf(stderr, "vigil bench-table: %s\n", vg_last_error()); goto done; }
  if (R.n == 0) {
    fprintf(stderr, "vigil bench-table: no benchmark records (lines with \"bench\": \"vigil_bench\" or \"torch_bench\") in %s%s\n",
            pos[0], npos > 1 ? " ..." : "");
    goto done;
  }
  if (R.skipped) fprintf(stderr, "vigil bench-table: skipped %d lines that are not benchmark records\n", R.skipped);
  tb b = {0};
  tb_add(&b, "# Latency and throughput across devices\n\n%d records, %d device column%s; `vigil bench` "
             "(EfficientAD protocol: host image to host map, mean of the timed runs).%s\n",
         R.n, R.ncols, R.ncols == 1 ? "" : "s",
         paper ? " Paper columns: EfficientAD (WACV 2024), f16 on each GPU." : "");
  md_section(&b, &R, paper, M_LAT, "Latency [ms], batch 1");
  md_section(&b, &R, paper, M_THR, "Throughput [images/s], batch 16");
  md_section(&b, &R, paper, M_MEM, "Memory [MB]: peak reserved GPU memory (CPU: peak resident set)");
  md_section(&b, &R, paper, M_PARAMS, "Parameters [millions] (paper: the networks used at inference)");
  md_section(&b, &R, paper, M_FLOPS, "GFLOPs per image (conv/matmul multiply-adds x 2)");
  if (b.oom) { fprintf(stderr, "vigil bench-table: out of memory\n"); free(b.text); goto done; }
  char *js = table_json(&R, paper), *svg = latency_svg(&R, paper), *sc = o.nauroc ? auroc_svg(&R, &o, paper) : NULL;
  if (!js || !svg || (o.nauroc && !sc)) st = vg_fail_prefix("bench-table");
  if (st == VG_OK) st = vg_mkdir_p(o.out);
  if (st == VG_OK) st = write_text(o.out, "table.md", b.text);
  if (st == VG_OK) st = write_text(o.out, "table.json", js);
  if (st == VG_OK) st = write_text(o.out, "latency.svg", svg);
  if (st == VG_OK && sc) st = write_text(o.out, "auroc_latency.svg", sc);
  if (st == VG_OK) {
    fputs(b.text, stdout);
    fprintf(stderr, "vigil bench-table: wrote %s/table.md, table.json, latency.svg%s\n", o.out,
            sc ? ", auroc_latency.svg" : "");
    rc = 0;
  } else {
    fprintf(stderr, "vigil bench-table: %s\n", vg_last_error());
  }
  free(js); free(svg); free(sc); free(b.text);
done:
  free(R.r);
  free(pos);
  return rc;
}
