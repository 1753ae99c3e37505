/* reproduce.c — `vigil reproduce TABLE`: run a paper table's cells as `vigil train` /
 * `vigil bench` subprocesses (this binary, /proc/self/exe) into run directories, then write
 * table.md / table.json / table.svg (ours mean ± σ over seeds beside the paper). See
 * cli/reproduce.h for the cell and aggregation rules and scripts/tables/README.md for the
 * spec format. */
#include "cli/reproduce.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "base/file.h"
#include "base/parse.h"
#include "base/sha256.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXM 12      /* metrics */
#define MAXC 32      /* columns */
#define MAXR 64      /* rows */
#define MAXK 40      /* categories of a row */
#define MAXRR 8      /* rows a row averages */

typedef struct {
  const char *id, *label, *missing, *weights, *weights_flag;
  const vg_json *set, *train, *smoke_set;
  double est_s[2];         /* estimated seconds per cell: cpu, cuda (<0: none) */
} col_t;

typedef struct {
  const char *id, *label, *dataset;
  const vg_json *set, *paper, *metric_paths;   /* metric_paths: {"image_auroc": "loco.image_auroc.logical"} */
  const char *cats[MAXK];
  int ncat;
  const char *avg_rows[MAXRR];                 /* a row of means over other rows */
  int navg;
  const vg_json *only;                         /* the column ids this row applies to (NULL: all) */
} row_t;

struct vg_repro_spec {
  vg_json *doc;
  const char *name, *title, *source, *method, *kind, *dataset, *note;
  double scale;
  const char *mkey[MAXM], *mlabel[MAXM], *munavail[MAXM];
  int nm;
  col_t col[MAXC];
  int nc;
  row_t row[MAXR];
  int nr;
  const vg_json *set, *train, *smoke_train, *smoke_set, *bench, *bench_cuda, *smoke_bench;
  const vg_json *smoke_columns;   /* the columns a --smoke runs (NULL: every runnable one) */
  double est_s[2];
};

/* ---------------------------------------------------------------- numbers */

bool vg_repro_mean_std(const double *v, int n, double *mean, double *std) {
  if (n <= 0) return false;
  double s = 0;
  for (int i = 0; i < n; i++) s += v[i];
  double m = s / n, q = 0;
  for (int i = 0; i < n; i++) q += (v[i] - m) * (v[i] - m);
  *mean = m;
  *std = n > 1 ? sqrt(q / (n - 1)) : 0.0;
  return true;
}

bool vg_repro_metric(const vg_json *metrics, const char *path, double *out) {
  const vg_json *j = vg_json_get(metrics, "mean");
  if (!j) return false;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf, *dot; j && p; p = dot ? dot + 1 : NULL) {
    dot = strchr(p, '.');
    if (dot) *dot = 0;
    int64_t idx;
    if (j->type == VG_JSON_ARRAY && vg_parse_i64(p, &idx, NULL)) j = vg_json_at(j, idx);
    else j = vg_json_get(j, p);
  }
  return j && vg_json_as_double(j, out) && isfinite(*out);
}

/* ---------------------------------------------------------------- spec */

static vg_status bad(const char *name, const char *where, const char *what) {
  return vg_fail(VG_ERR_FORMAT, "%s: %s: %s", name, where, what);
}

static const char *str_or(const vg_json *o, const char *key, const char *def) {
  const char *s = vg_json_as_string(vg_json_get(o, key));
  return s ? s : def;
}

static vg_status est_of(const char *name, const char *where, const vg_json *o, double est[2]) {
  const vg_json *e = vg_json_get(o, "est_cell_s");
  if (!e) return VG_OK;
  if (e->type != VG_JSON_OBJECT) return bad(name, where, "est_cell_s: want {\"cpu\": s, \"cuda\": s}");
  const char *dev[2] = {"cpu", "cuda"};
  for (int d = 0; d < 2; d++) {
    const vg_json *v = vg_json_get(e, dev[d]);
    if (v && !vg_json_is_null(v) && (!vg_json_as_double(v, &est[d]) || est[d] < 0))
      return bad(name, where, "est_cell_s: want seconds >= 0");
  }
  return VG_OK;
}

static vg_status check_set(const char *name, const char *where, const vg_json *s) {
  if (s && s->type != VG_JSON_OBJECT) return bad(name, where, "want an object of method config keys");
  return VG_OK;
}
static vg_status check_args(const char *name, const char *where, const vg_json *a) {
  if (!a) return VG_OK;
  if (a->type != VG_JSON_ARRAY) return bad(name, where, "want an array of strings");
  for (int64_t i = 0; i < vg_json_len(a); i++)
    if (!vg_json_as_string(vg_json_at(a, i))) return bad(name, where, "want an array of strings");
  return VG_OK;
}

static bool ident_ok(const char *s) {
  if (!s || !*s || strlen(s) > 48) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("_-.+", *p)))
      return false;
  return true;
}

void vg_repro_spec_free(vg_repro_spec *s) {
  if (!s) return;
  vg_json_free(s->doc);
  free(s);
}

vg_status vg_repro_spec_parse(const char *name, const char *text, size_t len, vg_repro_spec **out) {
  *out = NULL;
  vg_repro_spec *s = calloc(1, sizeof *s);
  if (!s) return vg_fail(VG_ERR_NOMEM, "out of memory");
  vg_status st = vg_json_parse(text, len, NULL, &s->doc);
  if (st != VG_OK) { vg_fail_prefix("%s", name); free(s); return st; }
  const vg_json *d = s->doc;
  char w[160];
#define FAIL(where, what) do { st = bad(name, where, what); goto fail; } while (0)
  if (d->type != VG_JSON_OBJECT) FAIL("the spec", "want a JSON object");
  s->name = str_or(d, "table", NULL);
  if (!ident_ok(s->name)) FAIL("table", "want the table's name (letters, digits, _-.+)");
  s->title = str_or(d, "title", s->name);
  s->source = str_or(d, "source", "");
  s->note = str_or(d, "note", "");
  s->method = str_or(d, "method", NULL);
  if (!ident_ok(s->method)) FAIL("method", "want the vigil method (fastflow, cflow, efficientad, ...)");
  s->kind = str_or(d, "kind", "train");
  if (strcmp(s->kind, "train") && strcmp(s->kind, "bench")) FAIL("kind", "want \"train\" or \"bench\"");
  s->dataset = str_or(d, "dataset", "mvtec");
  s->scale = 1;
  const vg_json *sc = vg_json_get(d, "scale");
  if (sc && (!vg_json_as_double(sc, &s->scale) || !(s->scale > 0))) FAIL("scale", "want a number > 0");
  s->set = vg_json_get(d, "set");
  s->train = vg_json_get(d, "train");
  s->smoke_train = vg_json_get(d, "smoke_train");
  s->smoke_set = vg_json_get(d, "smoke_set");
  s->bench = vg_json_get(d, "bench");
  s->bench_cuda = vg_json_get(d, "bench_cuda");
  s->smoke_bench = vg_json_get(d, "smoke_bench");
  s->smoke_columns = vg_json_get(d, "smoke_columns");
  if ((st = check_set(name, "set", s->set)) || (st = check_set(name, "smoke_set", s->smoke_set)) ||
      (st = check_args(name, "train", s->train)) || (st = check_args(name, "smoke_train", s->smoke_train)) ||
      (st = check_args(name, "bench", s->bench)) || (st = check_args(name, "bench_cuda", s->bench_cuda)) ||
      (st = check_args(name, "smoke_bench", s->smoke_bench)))
    goto fail;
  s->est_s[0] = s->est_s[1] = -1;
  if ((st = est_of(name, "the spec", d, s->est_s))) goto fail;
  /* metrics */
  const vg_json *ms = vg_json_get(d, "metrics");
  if (!ms || ms->type != VG_JSON_ARRAY || vg_json_len(ms) < 1 || vg_json_len(ms) > MAXM)
    FAIL("metrics", "want an array of 1..12 {\"key\", \"label\"}");
  for (int64_t i = 0; i < vg_json_len(ms); i++) {
    const vg_json *m = vg_json_at(ms, i);
    s->mkey[i] = str_or(m, "key", NULL);
    s->mlabel[i] = str_or(m, "label", s->mkey[i]);
    s->munavail[i] = str_or(m, "unavailable", NULL);
    snprintf(w, sizeof w, "metrics[%lld].key", (long long)i);
    if (!s->mkey[i] || !*s->mkey[i]) FAIL(w, "want the metrics.json key");
    for (int64_t k = 0; k < i; k++) if (!strcmp(s->mkey[k], s->mkey[i])) FAIL(w, "the key is listed twice");
  }
  s->nm = (int)vg_json_len(ms);
  /* columns */
  const vg_json *cs = vg_json_get(d, "columns");
  if (!cs || cs->type != VG_JSON_ARRAY || vg_json_len(cs) < 1 || vg_json_len(cs) > MAXC)
    FAIL("columns", "want an array of 1..32 columns");
  for (int64_t i = 0; i < vg_json_len(cs); i++) {
    const vg_json *c = vg_json_at(cs, i);
    col_t *k = &s->col[i];
    snprintf(w, sizeof w, "columns[%lld]", (long long)i);
    if (!c || c->type != VG_JSON_OBJECT) FAIL(w, "want an object");
    k->id = str_or(c, "id", NULL);
    if (!ident_ok(k->id)) FAIL(w, "want an \"id\" (letters, digits, _-.+)");
    for (int64_t j = 0; j < i; j++) if (!strcmp(s->col[j].id, k->id)) FAIL(w, "the id is used twice");
    k->label = str_or(c, "label", k->id);
    k->missing = str_or(c, "missing", NULL);
    k->weights = str_or(c, "weights", NULL);
    k->weights_flag = str_or(c, "weights_flag", "--weights");
    k->set = vg_json_get(c, "set");
    k->train = vg_json_get(c, "train");
    k->smoke_set = vg_json_get(c, "smoke_set");
    k->est_s[0] = s->est_s[0]; k->est_s[1] = s->est_s[1];
    if ((st = check_set(name, w, k->set)) || (st = check_set(name, w, k->smoke_set)) ||
        (st = check_args(name, w, k->train)) || (st = est_of(name, w, c, k->est_s)))
      goto fail;
  }
  s->nc = (int)vg_json_len(cs);
  if (s->smoke_columns) {
    if (s->smoke_columns->type != VG_JSON_ARRAY || vg_json_len(s->smoke_columns) < 1) FAIL("smoke_columns", "want an array of column ids");
    for (int64_t j = 0; j < vg_json_len(s->smoke_columns); j++) {
      const char *id = vg_json_as_string(vg_json_at(s->smoke_columns, j));
      bool known = false;
      for (int q = 0; id && q < s->nc; q++) known |= !strcmp(s->col[q].id, id);
      if (!known) FAIL("smoke_columns", "want ids of columns");
    }
  }
  /* rows */
  const vg_json *rs = vg_json_get(d, "rows");
  if (!rs || rs->type != VG_JSON_ARRAY || vg_json_len(rs) < 1 || vg_json_len(rs) > MAXR)
    FAIL("rows", "want an array of 1..64 rows");
  for (int64_t i = 0; i < vg_json_len(rs); i++) {
    const vg_json *r = vg_json_at(rs, i);
    row_t *k = &s->row[i];
    snprintf(w, sizeof w, "rows[%lld]", (long long)i);
    if (!r || r->type != VG_JSON_OBJECT) FAIL(w, "want an object");
    k->id = str_or(r, "id", NULL);
    if (!ident_ok(k->id)) FAIL(w, "want an \"id\" (letters, digits, _-.+)");
    for (int64_t j = 0; j < i; j++) if (!strcmp(s->row[j].id, k->id)) FAIL(w, "the id is used twice");
    k->label = str_or(r, "label", k->id);
    k->dataset = str_or(r, "dataset", s->dataset);
    k->set = vg_json_get(r, "set");
    k->metric_paths = vg_json_get(r, "metric_paths");
    k->only = vg_json_get(r, "only");
    if (k->only) {
      if (k->only->type != VG_JSON_ARRAY || vg_json_len(k->only) < 1) FAIL(w, "only: want an array of column ids");
      for (int64_t j = 0; j < vg_json_len(k->only); j++) {
        const char *id = vg_json_as_string(vg_json_at(k->only, j));
        bool known = false;
        for (int q = 0; id && q < s->nc; q++) known |= !strcmp(s->col[q].id, id);
        if (!known) FAIL(w, "only: want ids of columns");
      }
    }
    if ((st = check_set(name, w, k->set)) || (st = check_set(name, w, k->metric_paths))) goto fail;
    const char *cat = str_or(r, "category", NULL);
    const vg_json *cats = vg_json_get(r, "categories"), *avg = vg_json_get(r, "mean_of_rows");
    if (!!cat + !!cats + !!avg != 1) FAIL(w, "want one of \"category\", \"categories\", \"mean_of_rows\"");
    if (cat) { k->cats[0] = cat; k->ncat = 1; }
    if (cats) {
      if (cats->type != VG_JSON_ARRAY || vg_json_len(cats) < 1 || vg_json_len(cats) > MAXK)
        FAIL(w, "categories: want an array of 1..40 names");
      for (int64_t j = 0; j < vg_json_len(cats); j++)
        if (!(k->cats[k->ncat++] = vg_json_as_string(vg_json_at(cats, j)))) FAIL(w, "categories: want names");
    }
    for (int j = 0; j < k->ncat; j++)
      if (!ident_ok(k->cats[j])) FAIL(w, "a category name must be letters, digits, _-.+");
    if (avg) {
      if (avg->type != VG_JSON_ARRAY || vg_json_len(avg) < 1 || vg_json_len(avg) > MAXRR)
        FAIL(w, "mean_of_rows: want an array of 1..8 row ids");
      for (int64_t j = 0; j < vg_json_len(avg); j++) {
        const char *id = vg_json_as_string(vg_json_at(avg, j));
        int found = -1;
        for (int64_t q = 0; id && q < i; q++) if (!strcmp(s->row[q].id, id)) found = (int)q;
        if (found < 0) FAIL(w, "mean_of_rows: want ids of rows above this one");
        k->avg_rows[k->navg++] = id;
      }
    }
    /* paper values: {"COL": [v per metric, null = none]} */
    k->paper = vg_json_get(r, "paper");
    if (k->paper) {
      if (k->paper->type != VG_JSON_OBJECT) FAIL(w, "paper: want {\"COLUMN\": [values in metric order]}");
      for (int64_t j = 0; j < vg_json_len(k->paper); j++) {
        const char *cid = vg_json_key_at(k->paper, j);
        bool known = false;
        for (int q = 0; q < s->nc; q++) known |= !strcmp(s->col[q].id, cid);
        const vg_json *a = vg_json_at(k->paper, j);
        char w2[200];
        snprintf(w2, sizeof w2, "%s.paper.%s", w, cid);
        if (!known) FAIL(w2, "no column has this id");
        if (a->type != VG_JSON_ARRAY || vg_json_len(a) != s->nm) {
          char what[96];
          snprintf(what, sizeof what, "want %d values (one per metric, null where the paper has none)", s->nm);
          FAIL(w2, what);
        }
        for (int64_t q = 0; q < s->nm; q++) {
          const vg_json *v = vg_json_at(a, q);
          double x;
          if (!vg_json_is_null(v) && !vg_json_as_double(v, &x)) FAIL(w2, "want numbers or null");
        }
      }
    }
  }
  s->nr = (int)vg_json_len(rs);
#undef FAIL
  *out = s;
  return VG_OK;
fail:
  vg_repro_spec_free(s);
  return st;
}

static bool row_has_col(const vg_repro_spec *s, int r, int c) {
  const vg_json *o = s->row[r].only;
  if (!o) return true;
  for (int64_t j = 0; j < vg_json_len(o); j++)
    if (!strcmp(vg_json_as_string(vg_json_at(o, j)), s->col[c].id)) return true;
  return false;
}
static int row_index(const vg_repro_spec *s, const char *id) {
  for (int i = 0; i < s->nr; i++) if (!strcmp(s->row[i].id, id)) return i;
  return -1;
}

bool vg_repro_spec_paper(const vg_repro_spec *s, const char *row, const char *col, const char *metric, double *out) {
  int r = row_index(s, row), m = -1;
  for (int i = 0; i < s->nm; i++) if (!strcmp(s->mkey[i], metric)) m = i;
  if (r < 0 || m < 0) return false;
  const vg_json *a = vg_json_get(s->row[r].paper, col);
  return a && vg_json_as_double(vg_json_at(a, m), out);
}

/* ---------------------------------------------------------------- cells */

typedef struct {
  int col, row;            /* the first (column, row) that needs it */
  char dataset[16], category[64];
  int seed;
  char dir[1024];          /* run directory */
  char key[2048];          /* canonical text (what makes the directory) */
} cell_t;

typedef struct {
  const vg_repro_spec *s;
  const char *out, *data, *weights, *device, *self, *penalty;
  int runs;
  bool smoke;
  cell_t *cells;
  int n, cap;
} plan_t;

/* the synthetic stand-in of a dataset/category in --smoke */
static void smoke_map(const char *dataset, const char **ds, const char **cat) {
  if (!strcmp(dataset, "loco")) { *ds = "loco"; *cat = "assembly"; }
  else { *ds = "mvtec"; *cat = "woven"; }
}

static void app(char *b, size_t cap, const char *fmt, const char *v) {
  size_t n = strlen(b);
  if (n < cap) snprintf(b + n, cap - n, fmt, v);
}

static void app_set(char *b, size_t cap, const vg_json *set) {
  for (int64_t i = 0; set && i < vg_json_len(set); i++) {
    vg_json_writer w;
    vg_jw_init(&w, 0);
    vg_jw_value(&w, vg_json_at(set, i));
    char *t = vg_jw_finish(&w, NULL);
    app(b, cap, " --set %s", vg_json_key_at(set, i));
    app(b, cap, "=%s", t ? t : "?");
    free(t);
  }
}
static void app_args(char *b, size_t cap, const vg_json *a) {
  for (int64_t i = 0; a && i < vg_json_len(a); i++) app(b, cap, " %s", vg_json_as_string(vg_json_at(a, i)));
}

/* The canonical cell text: the vigil arguments that decide the run (without paths). */
static void cell_key(const plan_t *p, int c, int r, const char *ds, const char *cat, int seed, char *b, size_t cap) {
  const vg_repro_spec *s = p->s;
  const col_t *k = &s->col[c];
  b[0] = 0;
  app(b, cap, "%s", s->kind);
  app(b, cap, " %s", s->method);
  app(b, cap, " dataset=%s", ds);
  app(b, cap, " category=%s", cat);
  app_args(b, cap, p->smoke ? s->smoke_train : s->train);
  if (!p->smoke) app_args(b, cap, k->train);
  app_set(b, cap, s->set);
  app_set(b, cap, k->set);
  app_set(b, cap, s->row[r].set);
  if (p->smoke) { app_set(b, cap, s->smoke_set); app_set(b, cap, k->smoke_set); }
  if (!strcmp(s->kind, "bench")) app_args(b, cap, p->smoke && s->smoke_bench ? s->smoke_bench : s->bench);
  if (!p->smoke && k->weights) { app(b, cap, " %s", k->weights_flag); app(b, cap, " %s", k->weights); }
  char sd[32];
  snprintf(sd, sizeof sd, "%d", seed);
  app(b, cap, " seed=%s", sd);
  if (p->smoke) app(b, cap, "%s", " smoke");
}

static vg_status plan_add(plan_t *p, int c, int r, const char *dataset, const char *category, int seed) {
  const char *ds = dataset, *cat = category;
  if (p->smoke) smoke_map(dataset, &ds, &cat);
  cell_t t = {.col = c, .row = r, .seed = seed};
  snprintf(t.dataset, sizeof t.dataset, "%s", ds);
  snprintf(t.category, sizeof t.category, "%s", cat);
  cell_key(p, c, r, ds, cat, seed, t.key, sizeof t.key);
  uint8_t h[32];
  char hex[65];
  vg_sha256_buf(t.key, strlen(t.key), h);
  vg_sha256_hex(h, hex);
  hex[12] = 0;
  snprintf(t.dir, sizeof t.dir, "%s/runs/%s/%s-%s/%s-s%d", p->out, p->s->method, ds, cat, hex, seed);
  for (int i = 0; i < p->n; i++) if (!strcmp(p->cells[i].dir, t.dir)) return VG_OK;
  if (p->n == p->cap) {
    int nc = p->cap ? 2 * p->cap : 64;
    cell_t *n = realloc(p->cells, sizeof *n * (size_t)nc);
    if (!n) return vg_fail(VG_ERR_NOMEM, "out of memory");
    p->cells = n;
    p->cap = nc;
  }
  p->cells[p->n++] = t;
  return VG_OK;
}

/* why column c runs no cells (NULL: it runs) */
static const char *col_skipped(const plan_t *p, int c) {
  const vg_repro_spec *s = p->s;
  if (s->col[c].missing) return s->col[c].missing;
  if (p->smoke && s->smoke_columns) {
    for (int64_t j = 0; j < vg_json_len(s->smoke_columns); j++)
      if (!strcmp(vg_json_as_string(vg_json_at(s->smoke_columns, j)), s->col[c].id)) return NULL;
    return "not run in --smoke (the spec's smoke_columns)";
  }
  return NULL;
}

/* every cell in the fixed order: columns, rows, categories, seeds */
static vg_status plan_build(plan_t *p) {
  const vg_repro_spec *s = p->s;
  for (int c = 0; c < s->nc; c++) {
    if (col_skipped(p, c)) continue;
    for (int r = 0; r < s->nr; r++)
      for (int k = 0; row_has_col(s, r, c) && k < s->row[r].ncat; k++)
        for (int seed = 0; seed < p->runs; seed++) {
          vg_status st = plan_add(p, c, r, s->row[r].dataset, s->row[r].cats[k], seed);
          if (st != VG_OK) return st;
        }
  }
  return VG_OK;
}

/* the run directory of (c, r, category, seed) */
static const cell_t *plan_find(const plan_t *p, int c, int r, const char *category, int seed) {
  const char *ds = p->s->row[r].dataset, *cat = category;
  if (p->smoke) smoke_map(p->s->row[r].dataset, &ds, &cat);
  char key[2048];
  cell_key(p, c, r, ds, cat, seed, key, sizeof key);
  for (int i = 0; i < p->n; i++) if (!strcmp(p->cells[i].key, key)) return &p->cells[i];
  return NULL;
}

int vg_repro_spec_cells(const vg_repro_spec *s, int runs, bool smoke) {
  plan_t p = {.s = s, .out = "", .runs = runs, .smoke = smoke};
  int n = plan_build(&p) == VG_OK ? p.n : -1;
  free(p.cells);
  return n;
}

static bool is_file(const char *p) { struct stat sb; return stat(p, &sb) == 0 && S_ISREG(sb.st_mode); }
static bool is_dir(const char *p) { struct stat sb; return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode); }

static const char *metrics_path(const cell_t *t) {
  static _Thread_local char b[1100];
  snprintf(b, sizeof b, "%s/metrics.json", t->dir);
  return b;
}

/* ---------------------------------------------------------------- inputs */

static bool uses_penalty(const vg_json *arr) {
  for (int64_t i = 0; arr && i < vg_json_len(arr); i++)
    if (!strcmp(vg_json_as_string(vg_json_at(arr, i)), "{penalty}")) return true;
  return false;
}

/* the folder a dataset kind lives in under --data ROOT, and what a category must hold */
static const char *ds_dir(const char *ds) {
  if (!strcmp(ds, "mvtec")) return "mvtec";
  if (!strcmp(ds, "loco")) return "mvtec_loco";
  if (!strcmp(ds, "visa")) return "visa";
  if (!strcmp(ds, "btad")) return "btad";
  return ds;
}

static void expected_path(const char *root, const char *ds, const char *cat, char *b, size_t cap, const char **layout) {
  if (!strcmp(ds, "visa")) {
    snprintf(b, cap, "%s/visa/split_csv/1cls.csv", root);
    *layout = "VisA: ROOT/visa/split_csv/1cls.csv + the object folders it names";
  } else if (!strcmp(ds, "btad")) {
    snprintf(b, cap, "%s/btad/%s/train/ok", root, cat);
    *layout = "BTAD: ROOT/btad/<01|02|03>/{train/ok,test/ok,test/ko,ground_truth/ko}";
  } else if (!strcmp(ds, "loco")) {
    snprintf(b, cap, "%s/mvtec_loco/%s/validation/good", root, cat);
    *layout = "MVTec LOCO: ROOT/mvtec_loco/<category>/{train/good,validation/good,test/*,ground_truth/*}";
  } else {
    snprintf(b, cap, "%s/%s/%s/train/good", root, ds_dir(ds), cat);
    *layout = "MVTec AD: ROOT/mvtec/<category>/{train/good,test/<defect>,ground_truth/<defect>}";
  }
}

/* the manifest entry of a weights file: sha256 (full, may be NULL) and prefix */
typedef struct { const char *sha, *prefix, *about; } wman_t;

static bool manifest_find(const vg_json *man, const char *file, wman_t *w) {
  const vg_json *list = vg_json_get(man, "weights");
  for (int64_t i = 0; i < vg_json_len(list); i++) {
    const vg_json *e = vg_json_at(list, i);
    const char *f = vg_json_as_string(vg_json_get(e, "file"));
    if (f && !strcmp(f, file)) {
      w->sha = vg_json_as_string(vg_json_get(e, "sha256"));
      w->prefix = vg_json_as_string(vg_json_get(e, "sha256_prefix"));
      w->about = str_or(e, "about", "");
      return true;
    }
  }
  return false;
}

/* Every input the non-finished cells need, before anything runs: the dataset folders and
 * the weights (present, and the published file by its SHA-256). Prints each problem;
 * returns how many. */
static int check_inputs(const plan_t *p, const vg_json *man) {
  int bad_n = 0;
  if (p->smoke) return 0;
  bool pen = uses_penalty(p->s->train);
  for (int c = 0; c < p->s->nc; c++) pen |= !p->s->col[c].missing && uses_penalty(p->s->col[c].train);
  if (pen && !p->penalty) {
    fprintf(stderr, "vigil reproduce: %s needs --penalty DIR (ImageNet training images for EfficientAD's penalty loss)\n", p->s->name);
    bad_n++;
  } else if (pen && !is_dir(p->penalty)) {
    fprintf(stderr, "vigil reproduce: missing penalty images: %s (a folder of ImageNet images)\n", p->penalty);
    bad_n++;
  }
  char seen[64][128];
  int nseen = 0;
  for (int i = 0; i < p->n; i++) {
    const cell_t *t = &p->cells[i];
    if (is_file(metrics_path(t))) continue;
    if (!strcmp(p->s->kind, "train")) {
      char path[2048];
      const char *layout;
      if (!p->data) {
        fprintf(stderr, "vigil reproduce: %s needs --data ROOT (%s)\n", p->s->name, p->s->dataset);
        return 1;
      }
      expected_path(p->data, t->dataset, t->category, path, sizeof path, &layout);
      bool dup = false;
      for (int k = 0; k < nseen; k++) dup |= !strcmp(seen[k], path + strlen(p->data));
      if (!dup && !(strstr(path, "1cls.csv") ? is_file(path) : is_dir(path))) {
        fprintf(stderr, "vigil reproduce: missing dataset input: %s (%s)\n", path, layout);
        bad_n++;
      }
      if (!dup && nseen < 64) snprintf(seen[nseen++], sizeof seen[0], "%s", path + strlen(p->data));
    }
    const col_t *k = &p->s->col[t->col];
    if (!k->weights) continue;
    bool dup = false;
    for (int q = 0; q < i; q++) dup |= p->s->col[p->cells[q].col].weights && !strcmp(p->s->col[p->cells[q].col].weights, k->weights);
    if (dup) continue;
    char wpath[2048];
    snprintf(wpath, sizeof wpath, "%s/%s", p->weights ? p->weights : ".", k->weights);
    wman_t w = {0};
    bool listed = manifest_find(man, k->weights, &w);
    if (!is_file(wpath)) {
      fprintf(stderr, "vigil reproduce: missing weights: %s (%s%s%s; --weights DIR holds the files by their published names)\n",
              wpath, listed ? w.about : "not in the manifest", w.sha ? ", SHA-256 " : "", w.sha ? w.sha : "");
      bad_n++;
      continue;
    }
    char hex[65];
    if ((w.sha || w.prefix) && vg_sha256_file(wpath, hex) == VG_OK) {
      bool ok = w.sha ? !strcmp(hex, w.sha) : !strncmp(hex, w.prefix, strlen(w.prefix));
      if (!ok) {
        fprintf(stderr, "vigil reproduce: %s is not the published file: SHA-256 %s, the manifest has %s%s\n", wpath, hex,
                w.sha ? w.sha : w.prefix, w.sha ? "" : "... (prefix)");
        bad_n++;
      }
    }
  }
  return bad_n;
}

/* ---------------------------------------------------------------- running */

static int run_argv(char *const argv[], const char *log) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
    execv(argv[0], argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct { char *v[160]; int n; char store[8192]; size_t used; } argv_t;

static void av_add(argv_t *a, const char *s) {
  size_t n = strlen(s) + 1;
  if (a->n >= 158 || a->used + n > sizeof a->store) return;
  memcpy(a->store + a->used, s, n);
  a->v[a->n++] = a->store + a->used;
  a->used += n;
  a->v[a->n] = NULL;
}
static void av_set(argv_t *a, const vg_json *set) {
  for (int64_t i = 0; set && i < vg_json_len(set); i++) {
    vg_json_writer w;
    vg_jw_init(&w, 0);
    vg_jw_value(&w, vg_json_at(set, i));
    char *t = vg_jw_finish(&w, NULL);
    const vg_json *v = vg_json_at(set, i);
    char kv[1200];
    /* strings go as plain text (vigil takes VALUE as JSON when it parses, else a string) */
    snprintf(kv, sizeof kv, "%s=%s", vg_json_key_at(set, i), v->type == VG_JSON_STRING ? v->str : (t ? t : ""));
    free(t);
    av_add(a, "--set");
    av_add(a, kv);
  }
}
/* "{penalty}" in a spec's arguments: --penalty DIR of the command ("" in --smoke: no penalty) */
static void av_args_p(argv_t *a, const vg_json *arr, const plan_t *p) {
  for (int64_t i = 0; arr && i < vg_json_len(arr); i++) {
    const char *v = vg_json_as_string(vg_json_at(arr, i));
    if (!strcmp(v, "{penalty}")) v = p->smoke || !p->penalty ? "" : p->penalty;
    av_add(a, v);
  }
}
#define av_args(a, arr) av_args_p(a, arr, p)


/* bench cell: the JSON lines -> metrics.json {"mean": {latency_ms, fps, throughput, params_m, gflops}} */
static vg_status bench_metrics(const cell_t *t) {
  char path[1100];
  snprintf(path, sizeof path, "%s/bench.jsonl", t->dir);
  uint8_t *buf;
  size_t n;
  vg_status st = vg_file_read_all(path, 1 << 20, &buf, &n);
  if (st != VG_OK) return st;
  double lat = NAN, thr = NAN, params = NAN, gfl = NAN, b1fps = NAN;
  int64_t thr_b = 1;   /* throughput: images/s at the largest batch (the paper's 16) */
  for (char *line = (char *)buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
    nl = strchr(line, '\n');
    size_t ln = nl ? (size_t)(nl - line) : strlen(line);
    vg_json *j;
    if (ln == 0 || vg_json_parse(line, ln, NULL, &j) != VG_OK) continue;
    int64_t b = 0;
    double v;
    vg_json_as_int64(vg_json_get(j, "batch"), &b);
    if (b == 1 && vg_json_as_double(vg_json_get(j, "mean_ms"), &v)) { lat = v; b1fps = 1000.0 / v; }
    if (b > thr_b && vg_json_as_double(vg_json_get(j, "images_s"), &v)) { thr = v; thr_b = b; }
    if (vg_json_as_double(vg_json_get(j, "trainable_params"), &v)) params = v / 1e6;
    if (vg_json_as_double(vg_json_get(j, "gflops_per_image"), &v)) gfl = v;
    vg_json_free(j);
  }
  free(buf);
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "source"); vg_jw_string(&w, "vigil bench (bench.jsonl)");
  vg_jw_key(&w, "mean");
  vg_jw_begin_object(&w);
  const char *k[5] = {"latency_ms", "fps", "throughput", "params_m", "gflops"};
  double v[5] = {lat, b1fps, thr, params, gfl};
  for (int i = 0; i < 5; i++) { vg_jw_key(&w, k[i]); if (isfinite(v[i])) vg_jw_double(&w, v[i]); else vg_jw_null(&w); }
  vg_jw_end_object(&w);
  vg_jw_end_object(&w);
  char *text = vg_jw_finish(&w, &n);
  if (!text) return vg_last_status();
  st = vg_file_write_atomic(metrics_path(t), text, n);
  free(text);
  return st;
}

static vg_status run_cell(const plan_t *p, const cell_t *t, const char *synth_root) {
  const vg_repro_spec *s = p->s;
  const col_t *k = &s->col[t->col];
  char log[1100], cfg[1100];
  snprintf(log, sizeof log, "%s.log", t->dir);
  snprintf(cfg, sizeof cfg, "%s/config.json", t->dir);
  vg_status st = vg_mkdir_parents(t->dir);
  if (st != VG_OK) return st;
  argv_t a = {.n = 0};
  av_add(&a, p->self);
  char seed[32];
  snprintf(seed, sizeof seed, "%d", t->seed);
  if (!strcmp(s->kind, "bench")) {
    if ((st = vg_mkdir_p(t->dir)) != VG_OK) return st;
    char jl[1100];
    snprintf(jl, sizeof jl, "%s/bench.jsonl", t->dir);
    unlink(jl);
    av_add(&a, "bench"); av_add(&a, s->method);
    av_set(&a, s->set); av_set(&a, k->set); av_set(&a, s->row[t->row].set);
    if (p->smoke) { av_set(&a, s->smoke_set); av_set(&a, k->smoke_set); }
    av_args(&a, p->smoke && s->smoke_bench ? s->smoke_bench : s->bench);
    if (!strcmp(p->device, "cuda")) av_args(&a, s->bench_cuda);
    if (p->smoke) { av_add(&a, "--warmup"); av_add(&a, "1"); av_add(&a, "--runs"); av_add(&a, "2"); }
    av_add(&a, "--device"); av_add(&a, p->device);
    av_add(&a, "--json"); av_add(&a, jl);
    int rc = run_argv(a.v, log);
    if (rc != 0) return vg_fail(VG_ERR_IO, "vigil bench exited with %d (log: %s)", rc, log);
    return bench_metrics(t);
  }
  av_add(&a, "train"); av_add(&a, s->method);
  av_add(&a, "--out"); av_add(&a, t->dir);
  if (is_file(cfg)) {
    /* an interrupted cell: continue it (the run directory's own resume) */
    av_add(&a, "--resume");
  } else {
    char data[1100];
    if (p->smoke) snprintf(data, sizeof data, "%s/%s", synth_root, t->dataset);
    else if (!strcmp(t->dataset, "visa")) snprintf(data, sizeof data, "%s/visa", p->data);
    else snprintf(data, sizeof data, "%s/%s", p->data, ds_dir(t->dataset));
    av_add(&a, "--data"); av_add(&a, data);
    av_add(&a, "--dataset"); av_add(&a, t->dataset);
    av_add(&a, "--category"); av_add(&a, t->category);
    av_add(&a, "--seed"); av_add(&a, seed);
    av_args(&a, p->smoke ? s->smoke_train : s->train);
    if (!p->smoke) av_args(&a, k->train);
    av_set(&a, s->set); av_set(&a, k->set); av_set(&a, s->row[t->row].set);
    if (p->smoke) { av_set(&a, s->smoke_set); av_set(&a, k->smoke_set); }
    if (!p->smoke && k->weights) {
      char w[2048];
      snprintf(w, sizeof w, "%s/%s", p->weights ? p->weights : ".", k->weights);
      av_add(&a, k->weights_flag); av_add(&a, w);
    }
  }
  av_add(&a, "--device"); av_add(&a, p->device);
  int rc = run_argv(a.v, log);
  if (rc == 0 && !is_file(metrics_path(t))) {
    argv_t b = {.n = 0};
    av_add(&b, p->self); av_add(&b, "test"); av_add(&b, "--run"); av_add(&b, t->dir);
    av_add(&b, "--no-maps"); av_add(&b, "--no-report"); av_add(&b, "--device"); av_add(&b, p->device);
    rc = run_argv(b.v, log);
  }
  if (rc != 0 || !is_file(metrics_path(t)))
    return vg_fail(VG_ERR_IO, "the cell failed (exit %d): see %s", rc, log);
  /* the cell's canonical text beside its run */
  char ct[1100];
  snprintf(ct, sizeof ct, "%s.cell.txt", t->dir);
  char line[2100];
  snprintf(line, sizeof line, "%s\n", t->key);
  vg_file_write_atomic(ct, line, strlen(line));
  return VG_OK;
}

/* ---------------------------------------------------------------- aggregation */

typedef struct {
  double mean, std, paper;
  int nseeds, done, need;      /* seeds aggregated; cells done / needed */
  bool has_ours, has_paper;
} entry_t;

/* per-seed value of (row, col, metric): false when a cell is missing */
static bool seed_value(const plan_t *p, int r, int c, int m, int seed, int depth, int *done, int *need, double *out) {
  const vg_repro_spec *s = p->s;
  const row_t *row = &s->row[r];
  if (row->navg) {
    double sum = 0;
    bool ok = depth < 4;
    for (int i = 0; i < row->navg && ok; i++) {
      double v;
      ok = seed_value(p, row_index(s, row->avg_rows[i]), c, m, seed, depth + 1, done, need, &v);
      sum += v;
    }
    *out = sum / row->navg;
    return ok;
  }
  const char *path = s->mkey[m];
  const char *ov = vg_json_as_string(vg_json_get(row->metric_paths, s->mkey[m]));
  if (row->metric_paths && vg_json_get(row->metric_paths, s->mkey[m]) && !ov) return false;   /* null: not computed */
  if (ov) path = ov;
  double sum = 0;
  bool ok = true;
  for (int k = 0; k < row->ncat; k++) {
    (*need)++;
    const cell_t *t = plan_find(p, c, r, row->cats[k], seed);
    uint8_t *buf = NULL;
    size_t n;
    vg_json *j = NULL;
    double v;
    if (t && vg_file_read_all(metrics_path(t), 64 << 20, &buf, &n) == VG_OK && vg_json_parse((char *)buf, n, NULL, &j) == VG_OK &&
        vg_repro_metric(j, path, &v)) {
      (*done)++;
      sum += v;
    } else {
      ok = false;
    }
    vg_json_free(j);
    free(buf);
  }
  *out = sum / row->ncat * s->scale;
  return ok;
}

/* the metric is not computed for this row (a null metric path, the metric's "unavailable"),
 * or the row does not apply to the column ("only"), for it or a row it averages */
static bool row_na(const vg_repro_spec *s, int r, int c, int m, int depth) {
  const row_t *row = &s->row[r];
  if (depth > 4 || s->munavail[m]) return true;
  if (row->navg) {
    for (int i = 0; i < row->navg; i++)
      if (row_na(s, row_index(s, row->avg_rows[i]), c, m, depth + 1)) return true;
    return false;
  }
  const vg_json *ov = vg_json_get(row->metric_paths, s->mkey[m]);
  return !row_has_col(s, r, c) || (ov && vg_json_is_null(ov));
}

static entry_t aggregate(const plan_t *p, int r, int c, int m) {
  entry_t e = {.mean = NAN, .std = NAN, .paper = NAN};
  e.has_paper = vg_repro_spec_paper(p->s, p->s->row[r].id, p->s->col[c].id, p->s->mkey[m], &e.paper);
  if (col_skipped(p, c) || row_na(p->s, r, c, m, 0)) return e;
  double v[64];
  for (int seed = 0; seed < p->runs && seed < 64; seed++) {
    double x;
    if (seed_value(p, r, c, m, seed, 0, &e.done, &e.need, &x)) v[e.nseeds++] = x;
  }
  e.has_ours = vg_repro_mean_std(v, e.nseeds, &e.mean, &e.std);
  return e;
}

static void fmt_num(char *b, size_t cap, double v, int prec) {
  if (isfinite(v)) snprintf(b, cap, "%.*f", prec, v);
  else snprintf(b, cap, "—");
}

static vg_status write_outputs(const plan_t *p, const char *dir) {
  const vg_repro_spec *s = p->s;
  int prec = s->scale >= 100 ? 2 : 4;
  /* markdown */
  size_t cap = 1 << 20, n = 0;
  char *md = malloc(cap);
  if (!md) return vg_fail(VG_ERR_NOMEM, "out of memory");
#define MD(...) do { if (n < cap) n += (size_t)snprintf(md + n, cap - n, __VA_ARGS__); } while (0)
  MD("# %s\n\n", s->title);
  if (p->smoke)
    MD("**SMOKE RUN — NOT THE PAPER'S SETTING.** Synthetic benchmark (`vigil synth`) mapped onto the rows, tiny "
       "schedules, random weights: the numbers only prove the plumbing; the paper column is the paper's.\n\n");
  MD("Source: %s. Method: `%s`. Seeds: %d (ours = mean ± sample σ over seeds). Δ = ours − paper.\n", s->source, s->method,
     p->runs);
  if (*s->note) MD("\nNote: %s\n", s->note);
  MD("\n| row |");
  for (int c = 0; c < s->nc; c++)
    for (int m = 0; m < s->nm; m++) MD(" %s %s: ours | paper | Δ |", s->col[c].label, s->mlabel[m]);
  MD("\n|---|");
  for (int c = 0; c < s->nc; c++)
    for (int m = 0; m < s->nm; m++) MD("---|---|---|");
  MD("\n");
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "table"); vg_jw_string(&w, s->name);
  vg_jw_key(&w, "title"); vg_jw_string(&w, s->title);
  vg_jw_key(&w, "source"); vg_jw_string(&w, s->source);
  vg_jw_key(&w, "method"); vg_jw_string(&w, s->method);
  vg_jw_key(&w, "smoke"); vg_jw_bool(&w, p->smoke);
  if (p->smoke) { vg_jw_key(&w, "setting"); vg_jw_string(&w, "SMOKE: synthetic data, tiny schedules, random weights - not the paper's setting"); }
  vg_jw_key(&w, "seeds"); vg_jw_int64(&w, p->runs);
  vg_jw_key(&w, "std"); vg_jw_string(&w, "sample standard deviation over seeds (n - 1); 0 with one seed");
  vg_jw_key(&w, "entries");
  vg_jw_begin_array(&w);
  /* svg: per row, per (column, metric) with a paper value or ours: two bars */
  size_t scap = 1 << 20, sn = 0;
  char *svg = malloc(scap);
  if (!svg) { free(md); vg_jw_discard(&w); return vg_fail(VG_ERR_NOMEM, "out of memory"); }
#define SV(...) do { if (sn < scap) sn += (size_t)snprintf(svg + sn, scap - sn, __VA_ARGS__); } while (0)
  double lo = INFINITY, hi = -INFINITY;
  entry_t *E = calloc((size_t)s->nr * s->nc * s->nm, sizeof *E);
  if (!E) { free(md); free(svg); vg_jw_discard(&w); return vg_fail(VG_ERR_NOMEM, "out of memory"); }
  int nbars = 0;
  for (int r = 0; r < s->nr; r++)
    for (int c = 0; c < s->nc; c++)
      for (int m = 0; m < s->nm; m++) {
        entry_t e = aggregate(p, r, c, m);
        E[(r * s->nc + c) * s->nm + m] = e;
        if (e.has_ours) { lo = fmin(lo, e.mean); hi = fmax(hi, e.mean); }
        if (e.has_paper) { lo = fmin(lo, e.paper); hi = fmax(hi, e.paper); }
        if (e.has_ours || e.has_paper) nbars++;
      }
  for (int r = 0; r < s->nr; r++) {
    MD("| %s |", s->row[r].label);
    for (int c = 0; c < s->nc; c++)
      for (int m = 0; m < s->nm; m++) {
        entry_t e = E[(r * s->nc + c) * s->nm + m];
        char a[48], b[48], d[48];
        fmt_num(b, sizeof b, e.has_paper ? e.paper : NAN, prec);
        fmt_num(d, sizeof d, e.has_ours && e.has_paper ? e.mean - e.paper : NAN, prec);
        if (col_skipped(p, c)) snprintf(a, sizeof a, "n/a");
        else if (e.has_ours && e.nseeds > 1) snprintf(a, sizeof a, "%.*f ± %.*f", prec, e.mean, prec, e.std);
        else if (e.has_ours) snprintf(a, sizeof a, "%.*f (1 run)", prec, e.mean);
        else if (e.need == 0) snprintf(a, sizeof a, "%s", s->munavail[m] ? "n/a" : "—");
        else snprintf(a, sizeof a, "missing %d/%d cells", e.need - e.done, e.need);
        MD(" %s | %s | %s |", a, b, d);
        vg_jw_begin_object(&w);
        vg_jw_key(&w, "row"); vg_jw_string(&w, s->row[r].id);
        vg_jw_key(&w, "column"); vg_jw_string(&w, s->col[c].id);
        vg_jw_key(&w, "metric"); vg_jw_string(&w, s->mkey[m]);
        vg_jw_key(&w, "ours_mean"); if (e.has_ours) vg_jw_double(&w, e.mean); else vg_jw_null(&w);
        vg_jw_key(&w, "ours_std"); if (e.has_ours) vg_jw_double(&w, e.std); else vg_jw_null(&w);
        vg_jw_key(&w, "seeds"); vg_jw_int64(&w, e.nseeds);
        vg_jw_key(&w, "cells_done"); vg_jw_int64(&w, e.done);
        vg_jw_key(&w, "cells_needed"); vg_jw_int64(&w, e.need);
        vg_jw_key(&w, "paper"); if (e.has_paper) vg_jw_double(&w, e.paper); else vg_jw_null(&w);
        vg_jw_key(&w, "delta"); if (e.has_ours && e.has_paper) vg_jw_double(&w, e.mean - e.paper); else vg_jw_null(&w);
        if (col_skipped(p, c)) { vg_jw_key(&w, "not_run"); vg_jw_string(&w, col_skipped(p, c)); }
        vg_jw_end_object(&w);
      }
    MD("\n");
  }
  for (int c = 0; c < s->nc; c++)
    if (col_skipped(p, c)) MD("\n%s: not run (%s).\n", s->col[c].label, col_skipped(p, c));
  for (int m = 0; m < s->nm; m++)
    if (s->munavail[m]) MD("\n%s: n/a (%s).\n", s->mlabel[m], s->munavail[m]);
  vg_jw_end_array(&w);
  vg_jw_end_object(&w);
  size_t jn;
  char *json = vg_jw_finish(&w, &jn);
  /* svg */
  if (!(lo <= hi)) { lo = 0; hi = 1; }
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  double pad = (hi - lo) * 0.05;
  lo -= pad; hi += pad;
  int W = 760, LBL = 300, BW = W - LBL - 20, lineh = 16;
  int H = 70 + nbars * (2 * lineh + 6) + 20;
  SV("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H);
  SV("<text x=\"10\" y=\"18\" font-size=\"14\">%s%s</text>\n", p->smoke ? "SMOKE (not the paper's setting): " : "", s->name);
  SV("<rect x=\"10\" y=\"28\" width=\"12\" height=\"10\" fill=\"#3366cc\"/><text x=\"26\" y=\"37\">ours (mean over seeds)</text>\n");
  SV("<rect x=\"180\" y=\"28\" width=\"12\" height=\"10\" fill=\"#999999\"/><text x=\"196\" y=\"37\">paper</text>\n");
  SV("<text x=\"%d\" y=\"37\">axis %.3g .. %.3g</text>\n", LBL, lo, hi);
  int y = 56;
  for (int r = 0; r < s->nr; r++)
    for (int c = 0; c < s->nc; c++)
      for (int m = 0; m < s->nm; m++) {
        entry_t e = E[(r * s->nc + c) * s->nm + m];
        if (!e.has_ours && !e.has_paper) continue;
        SV("<text x=\"10\" y=\"%d\">%s · %s · %s</text>\n", y + 12, s->row[r].label, s->col[c].label, s->mlabel[m]);
        double vals[2] = {e.has_ours ? e.mean : NAN, e.has_paper ? e.paper : NAN};
        const char *fill[2] = {"#3366cc", "#999999"};
        for (int b = 0; b < 2; b++) {
          if (isfinite(vals[b])) {
            double wpx = (vals[b] - lo) / (hi - lo) * BW;
            SV("<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/><text x=\"%.1f\" y=\"%d\">%.*f</text>\n", LBL,
               y + b * lineh, fmax(wpx, 1.0), lineh - 3, fill[b], LBL + fmax(wpx, 1.0) + 3, y + b * lineh + 11, prec, vals[b]);
          }
        }
        y += 2 * lineh + 6;
      }
  SV("</svg>\n");
  free(E);
  vg_status st = json ? VG_OK : vg_last_status();
  char path[1200];
  if (st == VG_OK) { snprintf(path, sizeof path, "%s/table.md", dir); st = vg_file_write_atomic(path, md, n < cap ? n : cap - 1); }
  if (st == VG_OK) { snprintf(path, sizeof path, "%s/table.json", dir); st = vg_file_write_atomic(path, json, jn); }
  if (st == VG_OK) { snprintf(path, sizeof path, "%s/table.svg", dir); st = vg_file_write_atomic(path, svg, sn < scap ? sn : scap - 1); }
  free(md); free(svg); free(json);
#undef MD
#undef SV
  return st;
}

/* ---------------------------------------------------------------- the command */

typedef struct {
  const char *data, *weights, *out, *device, *tables, *penalty;
  int runs;
  bool dry_run, smoke, list, aggregate;
  /* one cell, a local pool, a Slurm array (cli/reproduce.h) */
  bool cells, slurm, submit, cell_given, gpus_given;
  int cell, jobs, gpus_per_cell;
  const char *partition, *time, *account;
} repro_opts;

static const vg_opt repro_table[] = {
    {.name = "--data", .kind = VG_OPT_STR, .arg = "ROOT", .off = VG_OPT_AT(repro_opts, data),
     .help = "datasets root: ROOT/mvtec/<cat>, ROOT/mvtec_loco/<cat>, ROOT/visa (split_csv/1cls.csv), ROOT/btad/<01|02|03>"},
    {.name = "--weights", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(repro_opts, weights),
     .help = "folder holding the weights by their published file names (scripts/tables/weights.json)", .def = "."},
    {.name = "--runs", .kind = VG_OPT_INT, .arg = "N", .lo = 1, .hi = 64, .off = VG_OPT_AT(repro_opts, runs),
     .help = "seeds per cell (0..N-1)", .def = "1"},
    {.name = "--out", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(repro_opts, out),
     .help = "where the runs (OUT/runs/...) and the tables (OUT/<table>/table.{md,json,svg}) go", .def = "repro"},
    {.name = "--device", .kind = VG_OPT_ENUM, .arg = "cpu|cuda", .choices = "cpu|cuda", .off = VG_OPT_AT(repro_opts, device),
     .help = "where the cells train and test", .def = "cpu"},
    {.name = "--dry-run", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(repro_opts, dry_run),
     .help = "list the cells (done / to run, run directory) and the estimated time; run nothing"},
    {.name = "--aggregate", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(repro_opts, aggregate),
     .help = "write the table from the finished cells only; run nothing (unfinished cells show as missing)"},
    {.name = "--smoke", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(repro_opts, smoke),
     .help = "the table end to end on the synthetic benchmark (tiny schedules, random weights): NOT the paper's setting"},
    {.name = "--list", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(repro_opts, list),
     .help = "every table with what it needs (datasets, weights, missing backbones, hours)"},
    {.name = "--penalty", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(repro_opts, penalty),
     .help = "ImageNet images for EfficientAD's penalty loss (the tables whose spec says {penalty})"},
    {.name = "--tables", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(repro_opts, tables),
     .help = "the spec folder (default: scripts/tables of the repository this vigil was built in, or of the cwd)"},
    {.name = "--cells", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(repro_opts, cells),
     .help = "list the cells: index, done/todo, estimated seconds, device, run directory; run nothing"},
    {.name = "--cell", .kind = VG_OPT_INT, .arg = "N", .lo = 0, .hi = 1000000, .off = VG_OPT_AT(repro_opts, cell),
     .given = VG_OPT_GIVEN(repro_opts, cell_given),
     .help = "run exactly cell N (its run directory; nothing else, no aggregation); exit 2 when N is out of range"},
    {.name = "--jobs", .kind = VG_OPT_INT, .arg = "N", .lo = 1, .hi = 256, .off = VG_OPT_AT(repro_opts, jobs),
     .help = "run N cells at a time on this machine (with --device cuda and several GPUs: one GPU per cell via\n"
             "CUDA_VISIBLE_DEVICES)", .def = "1"},
    {.name = "--slurm", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(repro_opts, slurm),
     .help = "write OUT/slurm/TABLE/job.sbatch (an array over the unfinished cells, each --cell $SLURM_ARRAY_TASK_ID)\n"
             "and aggregate.sbatch (--aggregate, after the array: afterany); run nothing here"},
    {.name = "--submit", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(repro_opts, submit),
     .help = "with --slurm: submit both with sbatch ($SBATCH, else sbatch in PATH) and print the job ids"},
    {.name = "--partition", .kind = VG_OPT_STR, .arg = "P", .off = VG_OPT_AT(repro_opts, partition), .help = "with --slurm: #SBATCH --partition"},
    {.name = "--gpus-per-cell", .kind = VG_OPT_INT, .arg = "N", .lo = 0, .hi = 64, .off = VG_OPT_AT(repro_opts, gpus_per_cell),
     .given = VG_OPT_GIVEN(repro_opts, gpus_given),
     .help = "with --slurm: #SBATCH --gres=gpu:N (default 1 with --device cuda, else 0)"},
    {.name = "--time", .kind = VG_OPT_STR, .arg = "HH:MM", .off = VG_OPT_AT(repro_opts, time),
     .help = "with --slurm: the time limit per cell, HH:MM or D-HH:MM (#SBATCH --time)"},
    {.name = "--account", .kind = VG_OPT_STR, .arg = "A", .off = VG_OPT_AT(repro_opts, account), .help = "with --slurm: #SBATCH --account"},
    {0}};

const vg_cmd_spec vg_cmd_reproduce = {
    .name = "reproduce", .opts = repro_table, .max_pos = 1, .example = "fastflow-t2", .width = 14,
    .usage = "usage: vigil reproduce TABLE [--data ROOT] [--weights DIR] [--runs N] [--out DIR] [--device cpu|cuda]\n"
             "                         [--dry-run] [--smoke] [--jobs N]       |  vigil reproduce --list\n"
             "       vigil reproduce TABLE ... --cells | --cell N | --slurm [--partition P] [--gpus-per-cell N] [--time HH:MM]\n"
             "                         [--account A] [--submit]      (one cell / a Slurm job array: README, cluster)\n"
             "  runs a paper table's cells (train + test, or bench) as run directories under OUT/runs (a cell whose\n"
             "  metrics.json exists is skipped: a killed reproduction resumes), then writes OUT/TABLE/table.md, table.json\n"
             "  and table.svg: ours as mean ± sample σ over the seeds, the paper's value and Δ. Inputs are checked\n"
             "  before anything runs (dataset folders, weights by published name and SHA-256).\n",
    .footer = "exit status: 0 done, 1 a cell failed, 2 bad arguments or missing inputs\n"};

/* the spec folder: --tables, $VIGIL_TABLES, then scripts/tables above the binary or in the cwd */
static bool find_tables(const char *given, const char *self, char *out, size_t cap) {
  if (given) { snprintf(out, cap, "%s", given); return is_dir(out); }
  const char *env = getenv("VIGIL_TABLES");
  if (env && *env) { snprintf(out, cap, "%s", env); return is_dir(out); }
  char d[960];
  size_t sl = strlen(self);
  if (sl >= sizeof d) return false;
  memcpy(d, self, sl + 1);
  for (int up = 0; up < 5; up++) {
    char *sl = strrchr(d, '/');
    if (!sl) break;
    *sl = 0;
    snprintf(out, cap, "%s/scripts/tables", d);
    if (is_dir(out)) return true;
  }
  snprintf(out, cap, "scripts/tables");
  return is_dir(out);
}

static vg_status load_spec(const char *dir, const char *table, vg_repro_spec **s) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s.json", dir, table);
  uint8_t *buf;
  size_t n;
  if (!ident_ok(table)) return vg_fail(VG_ERR_ARG, "'%s' is no table name (see vigil reproduce --list)", table);
  vg_status st = vg_file_read_all(path, 4 << 20, &buf, &n);
  if (st != VG_OK) return vg_fail(st, "no table '%s' (%s; see vigil reproduce --list)", table, vg_last_error());
  st = vg_repro_spec_parse(path, (char *)buf, n, s);
  free(buf);
  return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static double hours(const vg_repro_spec *s, int dev, int runs, int *unknown) {
  plan_t p = {.s = s, .out = "", .runs = runs};
  double t = 0;
  if (plan_build(&p) == VG_OK)
    for (int i = 0; i < p.n; i++) {
      double e = s->col[p.cells[i].col].est_s[dev];
      if (e < 0) (*unknown)++; else t += e;
    }
  free(p.cells);
  return t / 3600;
}

/* the table names of the spec folder (every *.json but weights.json), sorted; -1 when unreadable */
static int table_names(const char *dir, char **names, int cap) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    size_t l = strlen(e->d_name);
    if (l > 5 && !strcmp(e->d_name + l - 5, ".json") && strcmp(e->d_name, "weights.json")) {
      names[n] = strndup(e->d_name, l - 5);
      if (names[n]) n++;
    }
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  return n;
}

static int list_tables(const char *dir) {
  char *names[256];
  int n = table_names(dir, names, 256);
  if (n < 0) { fprintf(stderr, "vigil reproduce: %s: cannot open the spec folder\n", dir); return 2; }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    vg_repro_spec *s;
    if (load_spec(dir, names[i], &s) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); rc = 1; free(names[i]); continue; }
    int unk_c = 0, unk_g = 0;
    double hc = hours(s, 0, 1, &unk_c), hg = hours(s, 1, 1, &unk_g);
    printf("%-20s %s\n", s->name, s->title);
    char dss[128] = "";
    for (int r = 0; r < s->nr; r++)
      if (s->row[r].ncat && !strstr(dss, s->row[r].dataset)) {
        app(dss, sizeof dss, "%s", *dss ? " " : "");
        app(dss, sizeof dss, "%s", s->row[r].dataset);
      }
    printf("  %-18s %s%s%s; method %s; %d cells per seed\n", "needs", !strcmp(s->kind, "bench") ? "no dataset (vigil bench)" : "datasets: ",
           !strcmp(s->kind, "bench") ? "" : dss, "", s->method, vg_repro_spec_cells(s, 1, false));
    for (int c = 0; c < s->nc; c++) {
      if (s->col[c].missing) printf("  %-18s MISSING: %s\n", s->col[c].label, s->col[c].missing);
      else if (s->col[c].weights) printf("  %-18s weights %s\n", s->col[c].label, s->col[c].weights);
    }
    char gpu[96];
    if (hg == 0 && unk_g) snprintf(gpu, sizeof gpu, "GPU hours not measured yet");
    else snprintf(gpu, sizeof gpu, "~%.2f GPU hours%s", hg, unk_g ? " (+cells without an estimate)" : "");
    printf("  %-18s ~%.1f CPU hours%s, %s per seed (estimates: scripts/tables/README.md)\n", "time", hc,
           unk_c ? " (+cells without an estimate)" : "", gpu);
    vg_repro_spec_free(s);
    free(names[i]);
  }
  return rc;
}

/* ---------------------------------------------------------------- one cell, a pool, Slurm */

/* The synthetic data a --smoke needs (the datasets of the unfinished cells in [from, to)), made
 * once: an flock on OUT/synth.lock keeps concurrent --cell tasks from writing it together
 * (vigil synth does nothing when the folder already holds it). */
static int make_synth(const plan_t *p, const char *out, int from, int to, char *synth, size_t cap) {
  snprintf(synth, cap, "%s/synth", out);
  if (!p->smoke || !strcmp(p->s->kind, "bench")) return 0;
  const char *cats[2] = {"woven", "assembly"}, *dsn[2] = {"mvtec", "loco"};
  int lock = -1, rc = 0;
  for (int k = 0; k < 2 && rc == 0; k++) {
    bool need = false;
    for (int i = from; i < to; i++) need |= !strcmp(p->cells[i].dataset, dsn[k]) && !is_file(metrics_path(&p->cells[i]));
    if (!need) continue;
    if (lock < 0) {
      char lp[1200];
      snprintf(lp, sizeof lp, "%s/synth.lock", out);
      vg_mkdir_p(out);
      lock = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (lock >= 0) while (flock(lock, LOCK_EX) < 0 && errno == EINTR) {}
    }
    char dst[1200], log[1300];
    snprintf(dst, sizeof dst, "%s/%s", synth, dsn[k]);
    snprintf(log, sizeof log, "%s/synth-%s.log", out, dsn[k]);
    vg_mkdir_p(synth);
    char *av[] = {(char *)p->self, "synth", "--out", dst, "--categories", (char *)cats[k], "--size", "64", "--train", "6",
                  "--test", "12", "--val", "4", NULL};
    if (run_argv(av, log) != 0) { fprintf(stderr, "vigil reproduce: vigil synth failed (log: %s)\n", log); rc = 1; }
  }
  if (lock >= 0) close(lock);
  return rc;
}

/* A cell under its lock (an flock on "<run dir>.lock"): a second process wanting the same
 * cell (another table's array task sharing it, a resubmitted task while the first still runs)
 * waits, then finds it done and runs nothing. *ran: whether this call ran it. */
static vg_status run_cell_locked(const plan_t *p, const cell_t *t, const char *synth, bool *ran) {
  *ran = false;
  vg_status st = vg_mkdir_parents(t->dir);
  if (st != VG_OK) return st;
  char lp[1100];
  snprintf(lp, sizeof lp, "%s.lock", t->dir);
  int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return vg_fail(VG_ERR_IO, "%s: cannot open the cell lock: %s", lp, strerror(errno));
  while (flock(fd, LOCK_EX) < 0)
    if (errno != EINTR) { int e = errno; close(fd); return vg_fail(VG_ERR_IO, "%s: cannot lock: %s", lp, strerror(e)); }
  if (!is_file(metrics_path(t))) { *ran = true; st = run_cell(p, t, synth); }
  close(fd);
  return st;
}

/* The GPUs a pool hands out (--device cuda): CUDA_VISIBLE_DEVICES's list, else nvidia-smi -L's count. */
static int gpu_list(char ids[][32], int cap) {
  const char *env = getenv("CUDA_VISIBLE_DEVICES");
  int n = 0;
  if (env) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", env);
    for (char *sv, *t = strtok_r(buf, ",", &sv); t && n < cap; t = strtok_r(NULL, ",", &sv))
      if (*t) snprintf(ids[n++], 32, "%.31s", t);
    return n;
  }
  FILE *f = popen("nvidia-smi -L 2>/dev/null", "r");
  if (!f) return 0;
  char line[512];
  while (fgets(line, sizeof line, f) && n < cap)
    if (!strncmp(line, "GPU ", 4)) { snprintf(ids[n], 32, "%d", n); n++; }
  pclose(f);
  return n;
}

/* The unfinished cells, `jobs` at a time: each in a forked child of this process (which runs
 * it as the serial loop does: vigil train + test subprocesses); with several GPUs each child
 * sees one (CUDA_VISIBLE_DEVICES = the GPU of its pool slot). Returns the failed count. */
static int run_pool(const plan_t *p, const char *synth, int jobs, int todo) {
  const vg_repro_spec *s = p->s;
  char gpus[64][32];
  int ngpu = !strcmp(p->device, "cuda") ? gpu_list(gpus, 64) : 0;
  if (ngpu > 1)
    printf("%s: %d jobs over %d GPUs (CUDA_VISIBLE_DEVICES per cell%s)\n", s->name, jobs, ngpu,
           jobs > ngpu ? "; more jobs than GPUs: some share one" : "");
  pid_t pid[256] = {0};
  int cell_of[256], failed = 0, running = 0, k = 0, next = 0;
  for (;;) {
    while (running < jobs) {
      while (next < p->n && is_file(metrics_path(&p->cells[next]))) next++;
      if (next >= p->n) break;
      int slot = 0;
      while (pid[slot]) slot++;
      const cell_t *t = &p->cells[next];
      printf("[%d/%d] %s %s %s/%s seed %d -> %s\n", ++k, todo, s->name, s->col[t->col].id, t->dataset, t->category, t->seed, t->dir);
      fflush(stdout);
      fflush(stderr);
      pid_t c = fork();
      if (c < 0) { fprintf(stderr, "vigil reproduce: fork: %s\n", strerror(errno)); failed++; next++; continue; }
      if (c == 0) {
        if (ngpu > 1) setenv("CUDA_VISIBLE_DEVICES", gpus[slot % ngpu], 1);
        bool ran;
        vg_status st = run_cell_locked(p, t, synth, &ran);
        if (st != VG_OK) fprintf(stderr, "vigil reproduce: cell %d: %s\n", next, vg_last_error());
        _exit(st == VG_OK ? 0 : 1);
      }
      pid[slot] = c;
      cell_of[slot] = next++;
      running++;
    }
    if (!running) break;
    int status;
    pid_t w = waitpid(-1, &status, 0);
    if (w < 0) { if (errno == EINTR) continue; break; }
    for (int q = 0; q < jobs; q++)
      if (pid[q] == w) {
        pid[q] = 0;
        running--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          failed++;
          if (!WIFEXITED(status)) fprintf(stderr, "vigil reproduce: cell %d: killed by signal %d\n", cell_of[q], WTERMSIG(status));
        }
      }
  }
  return failed;
}

/* a value safe inside an #SBATCH line: letters, digits, _.,:+-= */
static bool sbatch_ok(const char *v) {
  if (!v || !*v || strlen(v) > 128) return false;
  for (const char *c = v; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("_.,:+-=", *c))) return false;
  return true;
}

/* --time HH:MM or D-HH:MM -> Slurm's "HH:MM:00" / "D-HH:MM:00" (a bare "HH:MM" is MM:SS to Slurm) */
static bool slurm_time(const char *v, char *b, size_t cap) {
  if (!v) { b[0] = 0; return true; }
  unsigned d = 0, h, m;
  char tail;
  bool ok = false;
  if (strchr(v, '-')) ok = sscanf(v, "%u-%u:%u%c", &d, &h, &m, &tail) == 3;
  else ok = sscanf(v, "%u:%u%c", &h, &m, &tail) == 2;
  if (!ok || m > 59 || h > 9999 || d > 365 || (strchr(v, '-') && h > 23)) return false;
  if (strchr(v, '-')) snprintf(b, cap, "%u-%02u:%02u:00", d, h, m);
  else snprintf(b, cap, "%02u:%02u:00", h, m);
  return true;
}

/* a shell word: single-quoted */
static void sh_quote(char *b, size_t cap, const char *v) {
  size_t n = strlen(b);
  if (n + 3 >= cap) return;
  b[n++] = '\'';
  for (const char *c = v; *c && n + 6 < cap; c++) {
    if (*c == '\'') { memcpy(b + n, "'\\''", 4); n += 4; }
    else b[n++] = *c;
  }
  b[n++] = '\'';
  b[n] = 0;
}

/* an absolute path of p (realpath when it exists, else cwd/p) */
static void abs_path(const char *p, char *b, size_t cap) {
  char *r = realpath(p, NULL);
  if (r) { snprintf(b, cap, "%s", r); free(r); return; }
  char cwd[1024];
  if (p[0] == '/' || !getcwd(cwd, sizeof cwd)) snprintf(b, cap, "%s", p);
  else snprintf(b, cap, "%s/%s", cwd, p);
}

/* runs argv, its stdout into out (the first line): the exit status */
static int run_capture(char *const argv[], char *out, size_t cap) {
  int fds[2];
  out[0] = 0;
  if (pipe(fds) < 0) return -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) { close(fds[0]); close(fds[1]); return -1; }
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]); close(fds[1]);
    execvp(argv[0], argv);
    fprintf(stderr, "vigil reproduce: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fds[0], out + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (n + 1 >= cap) break;
  }
  out[n] = 0;
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* sbatch --parsable prints "ID" or "ID;CLUSTER": the id, or 0 */
static long parse_jobid(const char *out) {
  const char *p = out;
  while (*p == ' ' || *p == '\n') p++;
  char *end;
  long id = strtol(p, &end, 10);
  return end > p && (*end == 0 || *end == '\n' || *end == ';' || *end == ' ') && id > 0 ? id : 0;
}

/* Slurm's array indices must stay below MaxArraySize (1001 by default): cells past index 999 go
 * into further arrays (job-<k>.sbatch: the task id + k * 1000), the aggregate job after all. */
#define SLURM_CHUNK 1000

/* --slurm: OUT/slurm/TABLE/{job,aggregate}.sbatch; with --submit, sbatch both. Exit status. */
static int write_slurm(const repro_opts *o, const plan_t *p, const char *out, const char *tables) {
  const vg_repro_spec *s = p->s;
  char tm[64];
  if (!slurm_time(o->time, tm, sizeof tm)) {
    fprintf(stderr, "vigil reproduce: --time %s: want HH:MM or D-HH:MM\n", o->time);
    return 2;
  }
  if ((o->partition && !sbatch_ok(o->partition)) || (o->account && !sbatch_ok(o->account))) {
    fprintf(stderr, "vigil reproduce: --partition / --account: want letters, digits, _.,:+-=\n");
    return 2;
  }
  int gpus = o->gpus_given ? o->gpus_per_cell : !strcmp(o->device, "cuda");
  char aout[1100], atab[1100], dir[1300], logs[1400];
  vg_mkdir_p(out);
  abs_path(out, aout, sizeof aout);
  abs_path(tables, atab, sizeof atab);
  snprintf(dir, sizeof dir, "%s/slurm/%s", aout, s->name);
  snprintf(logs, sizeof logs, "%s/logs", dir);
  if (vg_mkdir_p(logs) != VG_OK) { fprintf(stderr, "vigil reproduce: %s\n", vg_last_error()); return 1; }
  /* the command every task runs: this vigil, the same table and inputs (absolute paths) */
  char cmd[8192] = "";
  char ab[1100];
  sh_quote(cmd, sizeof cmd, p->self);
  app(cmd, sizeof cmd, "%s", " reproduce ");
  sh_quote(cmd, sizeof cmd, s->name);
  app(cmd, sizeof cmd, "%s", " --tables ");
  sh_quote(cmd, sizeof cmd, atab);
  app(cmd, sizeof cmd, "%s", " --out ");
  abs_path(o->out, ab, sizeof ab);
  sh_quote(cmd, sizeof cmd, ab);
  const char *fl[3] = {"--data", "--weights", "--penalty"}, *fv[3] = {o->data, o->weights, o->penalty};
  for (int i = 0; i < 3; i++)
    if (fv[i]) {
      app(cmd, sizeof cmd, " %s ", fl[i]);
      abs_path(fv[i], ab, sizeof ab);
      sh_quote(cmd, sizeof cmd, ab);
    }
  char rn[32];
  snprintf(rn, sizeof rn, "%d", o->runs);
  app(cmd, sizeof cmd, " --runs %s", rn);
  app(cmd, sizeof cmd, " --device %s", o->device);
  if (o->smoke) app(cmd, sizeof cmd, "%s", " --smoke");
  char head[2048] = "", extra[512] = "";
  if (o->partition) app(extra, sizeof extra, "#SBATCH --partition=%s\n", o->partition);
  if (o->account) app(extra, sizeof extra, "#SBATCH --account=%s\n", o->account);
  app(head, sizeof head, "%s", extra);
  if (*tm) app(head, sizeof head, "#SBATCH --time=%s\n", tm);
  if (gpus > 0) { char g[32]; snprintf(g, sizeof g, "%d", gpus); app(head, sizeof head, "#SBATCH --gres=gpu:%s\n", g); }
  const char *sb = getenv("SBATCH");
  if (!sb || !*sb) sb = "sbatch";
  /* one array per SLURM_CHUNK cells that has unfinished ones: the ranges relative to the chunk */
  int nchunk = (p->n + SLURM_CHUNK - 1) / SLURM_CHUNK, todo = 0;
  size_t cap = 16384 + sizeof cmd + 4096;
  char *arr = malloc(16384), *job = malloc(cap);
  char (*jp)[1400] = calloc((size_t)(nchunk ? nchunk : 1), sizeof *jp);
  int *ntodo = calloc((size_t)(nchunk ? nchunk : 1), sizeof *ntodo);
  long *jid = calloc((size_t)(nchunk ? nchunk : 1), sizeof *jid);
  int rc = 0;
  if (!arr || !job || !jp || !ntodo || !jid) { fprintf(stderr, "vigil reproduce: out of memory\n"); rc = 1; goto out; }
  char summary[4096] = "";
  for (int k = 0; k < nchunk; k++) {
    int lo = k * SLURM_CHUNK, hi = lo + SLURM_CHUNK < p->n ? lo + SLURM_CHUNK : p->n;
    arr[0] = 0;
    for (int i = lo; i < hi; i++) {
      if (is_file(metrics_path(&p->cells[i]))) continue;
      int j = i;
      while (j + 1 < hi && !is_file(metrics_path(&p->cells[j + 1]))) j++;
      size_t l = strlen(arr);
      if (j > i) snprintf(arr + l, 16384 - l, "%s%d-%d", l ? "," : "", i - lo, j - lo);
      else snprintf(arr + l, 16384 - l, "%s%d", l ? "," : "", i - lo);
      ntodo[k] += j - i + 1;
      i = j;
    }
    if (k == 0) snprintf(jp[k], sizeof jp[k], "%s/job.sbatch", dir);
    else snprintf(jp[k], sizeof jp[k], "%s/job-%d.sbatch", dir, k);
    if (!ntodo[k] && k > 0) { unlink(jp[k]); continue; }   /* a stale script of an earlier submission */
    todo += ntodo[k];
    char cell[96];
    if (k == 0) snprintf(cell, sizeof cell, "\"$SLURM_ARRAY_TASK_ID\"");
    else snprintf(cell, sizeof cell, "\"$((SLURM_ARRAY_TASK_ID + %d))\"", lo);
    char lname[64];   /* the task's log: cell-<i>.out, past the first array cell-<offset>+<i>.out */
    if (k == 0) snprintf(lname, sizeof lname, "cell-%%a.out");
    else snprintf(lname, sizeof lname, "cell-%d+%%a.out", lo);
    snprintf(job, cap,
             "#!/bin/sh\n"
             "# %s: one array task per unfinished cell (written by vigil reproduce --slurm; %d of cells %d..%d).\n"
             "# Each task runs `vigil reproduce ... --cell N` into the shared --out; a cell already done does\n"
             "# nothing, an interrupted one resumes its run directory. Resubmit after failures or preemption:\n"
             "# rerun `vigil reproduce ... --slurm --submit` (only the unfinished cells).\n"
             "#SBATCH --job-name=vigil-%s\n"
             "#SBATCH --array=%s\n"
             "#SBATCH --output=%s/%s\n"
             "%s"
             "exec %s --cell %s\n",
             s->name, ntodo[k], lo, hi - 1, s->name, ntodo[k] ? arr : "0", logs, lname, head, cmd, cell);
    if (vg_file_write_atomic(jp[k], job, strlen(job)) != VG_OK) { fprintf(stderr, "vigil reproduce: %s\n", vg_last_error()); rc = 1; goto out; }
    chmod(jp[k], 0755);
    size_t l = strlen(summary);
    snprintf(summary + l, sizeof summary - l, "%s%s (array %s)", l ? ", " : "", jp[k], ntodo[k] ? arr : "-");
  }
  char ap[1400];
  snprintf(ap, sizeof ap, "%s/aggregate.sbatch", dir);
  /* the aggregate job needs no GPU and little time: only partition/account carry over */
  snprintf(job, cap,
           "#!/bin/sh\n"
           "# %s: the table from the finished cells (submitted with --dependency=afterany:<array job ids>)\n"
           "#SBATCH --job-name=vigil-%s-aggregate\n"
           "#SBATCH --output=%s/aggregate.out\n"
           "%s"
           "exec %s --aggregate\n",
           s->name, s->name, logs, extra, cmd);
  if (vg_file_write_atomic(ap, job, strlen(job)) != VG_OK) { fprintf(stderr, "vigil reproduce: %s\n", vg_last_error()); rc = 1; goto out; }
  chmod(ap, 0755);
  printf("%s: %d cells, %d to run: wrote %s and %s\n", s->name, p->n, todo, summary, ap);
  if (!o->submit) {
    if (todo) {
      for (int k = 0; k < nchunk; k++)
        if (ntodo[k]) printf("  j%d=$(%s --parsable %s)\n", k, sb, jp[k]);
      printf("  %s --parsable --dependency=afterany", sb);
      for (int k = 0; k < nchunk; k++)
        if (ntodo[k]) printf(":$j%d", k);
      printf(" %s\n", ap);
    } else {
      printf("  every cell is done: %s --parsable %s (or vigil reproduce ... --aggregate)\n", sb, ap);
    }
    goto out;
  }
  char got[4096], dep[4096] = "--dependency=afterany";
  char ids[1024] = "";
  for (int k = 0; k < nchunk; k++) {
    if (!ntodo[k]) continue;
    char *av[] = {(char *)sb, "--parsable", jp[k], NULL};
    int r = run_capture(av, got, sizeof got);
    jid[k] = parse_jobid(got);
    printf("  %s --parsable %s\n", sb, jp[k]);
    if (r != 0 || !jid[k]) { fprintf(stderr, "vigil reproduce: sbatch failed (exit %d): %s\n", r, got); rc = 1; goto out; }
    printf("  submitted array job %ld (%d tasks)\n", jid[k], ntodo[k]);
    size_t l = strlen(dep);
    snprintf(dep + l, sizeof dep - l, ":%ld", jid[k]);
    l = strlen(ids);
    snprintf(ids + l, sizeof ids - l, "%s%ld", l ? "," : "", jid[k]);
  }
  char *av2[] = {(char *)sb, "--parsable", todo ? dep : ap, todo ? ap : NULL, NULL};
  int r = run_capture(av2, got, sizeof got);
  long aid = parse_jobid(got);
  if (todo) printf("  %s --parsable %s %s\n", sb, dep, ap);
  else printf("  %s --parsable %s\n", sb, ap);
  if (r != 0 || !aid) { fprintf(stderr, "vigil reproduce: sbatch failed (exit %d): %s\n", r, got); rc = 1; goto out; }
  printf("  submitted aggregate job %ld%s\n", aid, todo ? " (after the array)" : "");
  printf("array_job=%s aggregate_job=%ld\n", *ids ? ids : "0", aid);
out:
  free(arr); free(job); free(jp); free(ntodo); free(jid);
  return rc;
}

/* one table: plan, dry-run or check + run + aggregate; returns the exit status */
static int run_table(const repro_opts *op, const char *tables, const char *self, const char *name, const vg_json *man) {
  repro_opts o = *op;
  int rc = 0;
  vg_repro_spec *s;
  if (load_spec(tables, name, &s) != VG_OK) { fprintf(stderr, "vigil reproduce: %s\n", vg_last_error()); return 2; }
  char out[1024];
  snprintf(out, sizeof out, "%s%s", o.out, o.smoke ? "/smoke" : "");
  plan_t p = {.s = s, .out = out, .data = o.data, .weights = o.weights, .device = o.device, .self = self, .penalty = o.penalty,
              .runs = o.runs, .smoke = o.smoke};
  int dev = !strcmp(o.device, "cuda");
  if (plan_build(&p) != VG_OK) { fprintf(stderr, "vigil reproduce: %s\n", vg_last_error()); rc = 2; goto done; }
  int todo = 0;
  for (int i = 0; i < p.n; i++) todo += !is_file(metrics_path(&p.cells[i]));
  if (o.cell_given && o.cell >= p.n) {
    fprintf(stderr, "vigil reproduce: --cell %d is out of range: %s has %d cells (0..%d; see --cells)\n", o.cell, s->name, p.n,
            p.n - 1);
    rc = 2;
    goto done;
  }
  if (o.cells) {
    printf("# %s: %d cells, %d to run%s\n# cell status est_s device run_dir\n", s->name, p.n, todo,
           o.smoke ? " [SMOKE: synthetic data, not the paper's setting]" : "");
    for (int i = 0; i < p.n; i++) {
      const cell_t *t = &p.cells[i];
      double e = o.smoke ? -1 : s->col[t->col].est_s[dev];
      char est[32];
      if (e < 0) snprintf(est, sizeof est, "?");
      else snprintf(est, sizeof est, "%.0f", e);
      printf("%d %s %s %s %s\n", i, is_file(metrics_path(t)) ? "done" : "todo", est, o.device, t->dir);
    }
    rc = 0;
    goto done;
  }
  if (o.dry_run) {
    double total = 0;
    int unknown = 0;
    printf("%s: %s%s\n", s->name, s->title, o.smoke ? "  [SMOKE: synthetic data, not the paper's setting]" : "");
    for (int c = 0; c < s->nc; c++)
      if (col_skipped(&p, c)) printf("  column %s not run: %s\n", s->col[c].label, col_skipped(&p, c));
    for (int i = 0; i < p.n; i++) {
      const cell_t *t = &p.cells[i];
      bool done = is_file(metrics_path(t));
      double e = o.smoke ? -1 : s->col[t->col].est_s[dev];   /* the estimates are for the paper's setting */
      if (!done) { if (e < 0) unknown++; else total += e; }
      char est[32];
      if (e < 0) snprintf(est, sizeof est, "?");
      else snprintf(est, sizeof est, "%.0f s", e);
      printf("  cell %4d  %-4s %-10s %-6s %-12s seed %d  ~%-8s %s\n", i, done ? "done" : "todo", s->col[t->col].id,
             t->dataset, t->category, t->seed, est, t->dir);
    }
    printf("%d cells, %d to run; estimated %.2f h on %s%s (per-cell estimates in the spec: est_cell_s, from measured "
           "step times)\n", p.n, todo, total / 3600, o.device, unknown ? " + cells without an estimate" : "");
    rc = 0;
    goto done;
  }
  if (!o.aggregate) {
    plan_t q = p;   /* --cell: only that cell's inputs */
    if (o.cell_given) { q.cells = &p.cells[o.cell]; q.n = 1; }
    if (check_inputs(&q, man)) {
      fprintf(stderr, "vigil reproduce: %s: inputs missing (above); nothing was run\n", s->name);
      rc = 2;
      goto done;
    }
  }
  if (o.slurm) { rc = write_slurm(&o, &p, out, tables); goto done; }
  char synth[1100] = "";
  if (o.cell_given) {
    /* exactly one cell: its run directory, nothing else (no aggregation) */
    const cell_t *t = &p.cells[o.cell];
    if (is_file(metrics_path(t))) { printf("%s: cell %d is done (%s)\n", s->name, o.cell, t->dir); rc = 0; goto done; }
    if (make_synth(&p, out, o.cell, o.cell + 1, synth, sizeof synth)) { rc = 1; goto done; }
    printf("%s: cell %d: %s %s/%s seed %d -> %s\n", s->name, o.cell, s->col[t->col].id, t->dataset, t->category, t->seed, t->dir);
    fflush(stdout);
    bool ran;
    if (run_cell_locked(&p, t, synth, &ran) != VG_OK) {
      fprintf(stderr, "vigil reproduce: cell %d: %s\n", o.cell, vg_last_error());
      rc = 1;
      goto done;
    }
    printf("%s: cell %d %s\n", s->name, o.cell, ran ? "done" : "was finished meanwhile by another process");
    rc = 0;
    goto done;
  }
  if (todo && !o.aggregate && make_synth(&p, out, 0, p.n, synth, sizeof synth)) { rc = 1; goto done; }
  int failed = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (o.jobs > 1 && !o.aggregate) {
    failed = run_pool(&p, synth, o.jobs, todo);
  } else {
    for (int i = 0, k = 0; i < p.n; i++) {
      const cell_t *t = &p.cells[i];
      if (is_file(metrics_path(t)) || o.aggregate) continue;
      k++;
      printf("[%d/%d] %s %s %s/%s seed %d -> %s\n", k, todo, s->name, s->col[t->col].id, t->dataset, t->category, t->seed, t->dir);
      fflush(stdout);
      bool ran;
      if (run_cell_locked(&p, t, synth, &ran) != VG_OK) { fprintf(stderr, "vigil reproduce: cell %d: %s\n", i, vg_last_error()); failed++; }
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  char tdir[1100];
  snprintf(tdir, sizeof tdir, "%s/%s", out, s->name);
  if (vg_mkdir_p(tdir) != VG_OK || write_outputs(&p, tdir) != VG_OK) {
    fprintf(stderr, "vigil reproduce: %s\n", vg_last_error());
    rc = 1;
    goto done;
  }
  printf("%s: %d cells (%d run now, %d failed) in %.1f s -> %s/table.md, table.json, table.svg%s\n", s->name, p.n,
         o.aggregate ? 0 : todo, failed, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, tdir,
         o.smoke ? " (SMOKE: not the paper's setting)" : "");
  rc = failed ? 1 : 0;
done:
  free(p.cells);
  vg_repro_spec_free(s);
  return rc;
}

int vg_cli_reproduce(int argc, char **argv) {
  repro_opts o = {.weights = NULL, .out = "repro", .device = "cpu", .runs = 1, .jobs = 1, .cell = -1};
  const char *pos[2] = {NULL, NULL};
  int npos = 0;
  int rc = vg_opts_parse(&vg_cmd_reproduce, argc, argv, &o, pos, &npos);
  if (rc >= 0) return rc;
  char self[1024];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) { fprintf(stderr, "vigil reproduce: cannot find this program (/proc/self/exe)\n"); return 2; }
  self[sl] = 0;
  char tables[1024];
  if (!find_tables(o.tables, self, tables, sizeof tables)) {
    fprintf(stderr, "vigil reproduce: no spec folder %s (give --tables DIR)\n", tables);
    return 2;
  }
  if (o.list) return list_tables(tables);
  if (!pos[0]) { fprintf(stderr, "vigil reproduce: which TABLE? (vigil reproduce --list; 'all' = every table)\n"); return 2; }
  if (o.cell_given && (!strcmp(pos[0], "all") || o.slurm || o.jobs > 1 || o.aggregate || o.dry_run || o.cells)) {
    fprintf(stderr, "vigil reproduce: --cell N runs one cell of one table (not with 'all', --slurm, --jobs, --aggregate, --dry-run, --cells)\n");
    return 2;
  }
  if (o.submit && !o.slurm) { fprintf(stderr, "vigil reproduce: --submit goes with --slurm\n"); return 2; }
  if (!o.slurm && (o.partition || o.account || o.time || o.gpus_given)) {
    fprintf(stderr, "vigil reproduce: --partition, --account, --time, --gpus-per-cell go with --slurm\n");
    return 2;
  }
  if (o.slurm && (o.aggregate || o.dry_run || o.cells || o.jobs > 1)) {
    fprintf(stderr, "vigil reproduce: --slurm writes the job scripts (not with --aggregate, --dry-run, --cells, --jobs)\n");
    return 2;
  }
  vg_json *man = NULL;
  char mp[1100];
  snprintf(mp, sizeof mp, "%s/weights.json", tables);
  uint8_t *buf;
  size_t n;
  if (vg_file_read_all(mp, 1 << 20, &buf, &n) == VG_OK) {
    if (vg_json_parse((char *)buf, n, NULL, &man) != VG_OK) fprintf(stderr, "vigil reproduce: %s\n", vg_last_error());
    free(buf);
  }
  if (strcmp(pos[0], "all")) {
    rc = run_table(&o, tables, self, pos[0], man);
  } else {
    char *names[256];
    int nn = table_names(tables, names, 256);
    for (int i = 0; i < nn; i++) {
      int r = run_table(&o, tables, self, names[i], man);
      if (r > rc) rc = r;
      free(names[i]);
    }
  }
  vg_json_free(man);
  return rc;
}
