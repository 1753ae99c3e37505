/* test_method_config — the method config tables (methods/config.h) and the registry
 * (methods/method.h), for EVERY registered method and EVERY field of its table, so a new
 * method or key is tested by its row alone:
 *   - the table is consistent (vg_cfg_table_ok);
 *   - the defaults written by vg_cfg_json parse back to the same bytes and the same text;
 *   - a value out of range / of the wrong type is refused by the method's constructor naming
 *     the method, the key and what it accepts; the range's own ends are accepted;
 *   - an unknown key is refused listing every key; "method" must name the method;
 *   - help (vg_cfg_print_help, `vigil train METHOD --help`) lists every key;
 *   - a real method's config.json text reads back into an identical config;
 * plus a toy table covering every field kind, and the registry's lists. */
#include "tests/vgtest.h"
#include "methods/method.h"
#include "methods/config.h"
#include "base/json.h"
#include <limits.h>
#include <math.h>

static vg_json *parse(const char *text) {
  vg_json *j = NULL;
  if (vg_json_parse(text, strlen(text), NULL, &j) != VG_OK) return NULL;
  return j;
}

/* bytes a table's members span */
static size_t span(const vg_cfg_field *f) {
  size_t n = 1;
  for (; f->key; f++) n = f->off + f->size > n ? f->off + f->size : n;
  return n;
}

/* AUTO fields: a legal value in place of the sentinel (the constructor's job) */
static void resolve_auto(const vg_cfg_field *f, void *obj) {
  for (; f->key; f++) {
    if (!(f->flags & VG_CFG_AUTO)) continue;
    char *p = (char *)obj + f->off;
    int64_t v = f->kind == VG_CFG_BOOL ? 1 : f->imul > 1 ? (f->ilo + f->imul - 1) / f->imul * f->imul : f->ilo;
    if (f->size == 4) { int32_t x = (int32_t)v; memcpy(p, &x, 4); } else memcpy(p, &v, 8);
  }
}

static bool has(const char *s, const char *sub) { return s && sub && strstr(s, sub) != NULL; }

/* config {"key": VALUE} through the method's constructor: refused naming it? */
static vg_json *one_key(const char *key, const char *value_json) {
  size_t cap = strlen(key) + strlen(value_json) + 16;
  char *text = malloc(cap);
  snprintf(text, cap, "{\"%s\": %s}", key, value_json);
  vg_json *j = parse(text);
  free(text);
  return j;
}

static void expect_refused(const vg_method_def *d, const char *key, const char *value_json, bool via_ctor) {
  vg_json *j = one_key(key, value_json);
  vg_status st;
  vg_method *m = NULL;
  if (via_ctor) {
    st = d->create(j, &m);
  } else {
    void *obj = calloc(1, span(d->config));
    vg_cfg_defaults(d->config, obj);
    st = vg_cfg_parse(d->name, d->config, j, obj);
    free(obj);
  }
  char want[96], name[64];
  snprintf(want, sizeof want, "for config key '%s': want ", key);
  snprintf(name, sizeof name, "%s: bad value", d->name);
  const char *e = vg_last_error();
  VG_CHECK(j && st == VG_ERR_ARG && !m && has(e, want) && has(e, name), "%s: %s = %.40s%s refused naming the key and its range (%.200s)",
           d->name, key, value_json, strlen(value_json) > 40 ? "..." : "", st == VG_OK ? "accepted" : e);
  vg_method_free(m);
  vg_json_free(j);
}

static void expect_accepted(const vg_method_def *d, const char *key, const char *value_json) {
  vg_json *j = one_key(key, value_json);
  void *obj = calloc(1, span(d->config));
  vg_cfg_defaults(d->config, obj);
  vg_status st = vg_cfg_parse(d->name, d->config, j, obj);
  VG_CHECK(j && st == VG_OK, "%s: %s = %.40s%s (an end of its range) accepted (%s)", d->name, key, value_json,
           strlen(value_json) > 40 ? "..." : "",
           st == VG_OK ? "ok" : vg_last_error());
  free(obj);
  vg_json_free(j);
}

/* out-of-range and wrong-type values for field f, and its range ends */
static void check_field_values(const vg_method_def *d, const vg_cfg_field *f) {
  char b[2200];
  const char *wrong_type = f->kind == VG_CFG_STR || f->kind == VG_CFG_ENUM ? "12" : "\"x\"";
  expect_refused(d, f->key, wrong_type, true);
  expect_refused(d, f->key, "null", false);
  switch (f->kind) {
  case VG_CFG_BOOL:
    expect_refused(d, f->key, "1", false);
    expect_accepted(d, f->key, "false");
    break;
  case VG_CFG_INT:
    if (f->ihi < INT64_MAX) { snprintf(b, sizeof b, "%lld", (long long)f->ihi + 1); expect_refused(d, f->key, b, true); }
    else expect_refused(d, f->key, "9223372036854775808", true);
    if (f->ilo > INT64_MIN) { snprintf(b, sizeof b, "%lld", (long long)f->ilo - 1); expect_refused(d, f->key, b, true); }
    expect_refused(d, f->key, "1.5", false);
    if (f->imul > 1 && f->ilo + 1 <= f->ihi) { snprintf(b, sizeof b, "%lld", (long long)f->ilo + 1); expect_refused(d, f->key, b, true); }
    snprintf(b, sizeof b, "%lld", (long long)f->ilo);
    if (f->imul <= 1 || f->ilo % f->imul == 0) expect_accepted(d, f->key, b);
    snprintf(b, sizeof b, "%lld", (long long)f->ihi);
    if (f->imul <= 1 || f->ihi % f->imul == 0) expect_accepted(d, f->key, b);
    break;
  case VG_CFG_NUM:
    snprintf(b, sizeof b, "%.17g", (f->flags & VG_CFG_LO_OPEN) ? f->lo : nextafter(f->lo, -INFINITY));
    expect_refused(d, f->key, b, true);
    if (!(f->flags & VG_CFG_NO_HI)) {
      snprintf(b, sizeof b, "%.17g", (f->flags & VG_CFG_HI_OPEN) ? f->hi : nextafter(f->hi, INFINITY));
      expect_refused(d, f->key, b, true);
      if (!(f->flags & VG_CFG_HI_OPEN)) { snprintf(b, sizeof b, "%.17g", f->hi); expect_accepted(d, f->key, b); }
    }
    if (!(f->flags & VG_CFG_LO_OPEN)) { snprintf(b, sizeof b, "%.17g", f->lo); expect_accepted(d, f->key, b); }
    break;
  case VG_CFG_STR: {
    size_t n = f->size < sizeof b - 3 ? f->size : sizeof b - 3;   /* strlen == size: one too long */
    b[0] = '"';
    memset(b + 1, 'a', n);
    b[n + 1] = '"';
    b[n + 2] = 0;
    if (n == f->size) expect_refused(d, f->key, b, true);
    b[n] = '"';
    b[n + 1] = 0;   /* size - 1 bytes: the longest accepted */
    expect_accepted(d, f->key, b);
    break;
  }
  case VG_CFG_ENUM:
    expect_refused(d, f->key, "\"no-such-choice\"", true);
    snprintf(b, sizeof b, "\"%s\"", f->choices[0]);
    expect_accepted(d, f->key, b);
    break;
  case VG_CFG_SET: {
    expect_refused(d, f->key, "[]", true);
    expect_refused(d, f->key, "[\"no-such-choice\"]", true);
    expect_refused(d, f->key, "\"x\"", false);
    char *p = b;
    p += sprintf(p, "[");
    for (int64_t i = 0; i <= f->ihi; i++) p += sprintf(p, "%s\"%s\"", i ? "," : "", f->choices[0]);
    sprintf(p, "]");
    expect_refused(d, f->key, b, true);   /* ihi + 1 strings */
    snprintf(b, sizeof b, "[\"%s\"]", f->choices[0]);
    if (f->ilo <= 1) expect_accepted(d, f->key, b);
    break;
  }
  }
}

/* defaults -> JSON -> parse -> JSON: the same bytes and text; every key, "method" first */
static void check_roundtrip(const vg_method_def *d) {
  size_t n = span(d->config);
  void *a = calloc(1, n), *b = calloc(1, n);
  vg_cfg_defaults(d->config, a);
  resolve_auto(d->config, a);
  char *t1 = vg_cfg_json(d->name, d->config, a);
  vg_json *j = t1 ? parse(t1) : NULL;
  memset(b, 0x01, n);   /* no defaults: the written JSON must set every member itself */
  vg_status st = j ? vg_cfg_parse(d->name, d->config, j, b) : VG_ERR_FORMAT;
  char *t2 = st == VG_OK ? vg_cfg_json(d->name, d->config, b) : NULL;
  VG_CHECK(t1 && t2 && !strcmp(t1, t2), "%s: the defaults written by vg_cfg_json read back to the same text", d->name);
  bool same = st == VG_OK;
  for (const vg_cfg_field *f = d->config; same && f->key; f++)
    if (f->kind == VG_CFG_STR) same = !strcmp((char *)a + f->off, (char *)b + f->off);
    else if (f->size == 1) same = *(bool *)((char *)a + f->off) == *(bool *)((char *)b + f->off);
    else same = !memcmp((char *)a + f->off, (char *)b + f->off, f->size);
  VG_CHECK(same, "%s: ... and to the same member values", d->name);
  int k = 0;
  bool order = j && vg_json_len(j) == vg_cfg_count(d->config) + 1 && !strcmp(vg_json_key_at(j, 0), "method");
  for (const vg_cfg_field *f = d->config; order && f->key; f++, k++) order = !strcmp(vg_json_key_at(j, k + 1), f->key);
  VG_CHECK(order && !strcmp(vg_json_as_string(vg_json_get(j, "method")), d->name),
           "%s: config JSON = \"method\" then every key in table order", d->name);
  vg_json_free(j);
  free(t1); free(t2); free(a); free(b);
}

static void check_keys(const vg_method_def *d) {
  /* unknown key: refused by the constructor, listing every key of the table */
  vg_json *j = parse("{\"no_such_key\": 1}");
  vg_method *m = NULL;
  vg_status st = d->create(j, &m);
  char head[96];
  snprintf(head, sizeof head, "%s: unknown config key 'no_such_key' (known: ", d->name);
  const char *e = vg_last_error();
  bool all = st == VG_ERR_ARG && !m && has(e, head);
  for (const vg_cfg_field *f = d->config; all && f->key; f++) all = has(e, f->key);
  VG_CHECK(all, "%s: an unknown key is refused, the message lists every key (%s)", d->name, e);
  vg_json_free(j);
  /* "method": its own name accepted, another refused */
  char text[128];
  snprintf(text, sizeof text, "{\"method\": \"%s\"}", d->name);
  j = parse(text);
  void *obj = calloc(1, span(d->config));
  VG_CHECK(vg_cfg_parse(d->name, d->config, j, obj) == VG_OK, "%s: \"method\": \"%s\" accepted", d->name, d->name);
  vg_json_free(j);
  j = parse("{\"method\": \"other\"}");
  st = vg_cfg_parse(d->name, d->config, j, obj);
  VG_CHECK(st == VG_ERR_ARG && has(vg_last_error(), "config key 'method'"), "%s: \"method\": \"other\" refused (%s)", d->name,
           vg_last_error());
  vg_json_free(j);
  j = parse("[1]");
  VG_CHECK(vg_cfg_parse(d->name, d->config, j, obj) == VG_ERR_ARG, "%s: a config that is not an object is refused", d->name);
  vg_json_free(j);
  free(obj);
  /* help lists every key with its default */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  bool ok = f && vg_method_print_config_help(f, d->name);
  if (f) fclose(f);
  for (const vg_cfg_field *g = d->config; ok && g->key; g++) {
    char def[200], line[256];
    snprintf(line, sizeof line, "  %-22s", g->key);
    ok = has(buf, line) && has(buf, vg_cfg_default_text(g, def, sizeof def)) && g->help && g->help[0] && has(buf, g->help);
    if (!ok) printf("# %s: help lacks %s\n", d->name, g->key);
  }
  VG_CHECK(ok, "%s: help lists every key with its default, range and help line", d->name);
  free(buf);
}

/* a config.json written by a real method reads back into the same config (cheap configs) */
static void check_method_json(const char *name, const char *cfg_text) {
  vg_json *j = parse(cfg_text);
  vg_method *m = NULL, *m2 = NULL;
  vg_status st = vg_method_create(name, j, &m);
  char *t1 = st == VG_OK ? m->ops->config_json(m) : NULL;
  vg_json *j1 = t1 ? parse(t1) : NULL;
  if (j1 && vg_method_create(name, j1, &m2) != VG_OK) m2 = NULL;
  char *t2 = m2 ? m2->ops->config_json(m2) : NULL;
  VG_CHECK(t1 && t2 && !strcmp(t1, t2), "%s %s: config.json text reads back to the identical text (%s)", name, cfg_text,
           st == VG_OK ? "ok" : vg_last_error());
  const vg_method_def *d = vg_method_find(name);
  VG_CHECK(d && j1 && vg_json_len(j1) == vg_cfg_count(d->config) + 1, "%s: config.json holds every key", name);
  vg_method_free(m); vg_method_free(m2);
  vg_json_free(j); vg_json_free(j1);
  free(t1); free(t2);
}

/* ------------------------------------------------------------ a toy table: every kind */
typedef struct {
  bool flag;
  int auto_flag, size;
  int64_t big;
  uint64_t seed;
  double frac, pos;
  char path[16];
  int mode;
  bool fl;
  unsigned taps;
} toy;
static const char *const MODES[] = {"s", "m", "l", NULL}, *const FL[] = {"pil", "float", NULL};
static const char *const TAPS[] = {"a", "b", "c", NULL};
static const vg_cfg_field TOY[] = {
  {"flag", VG_CFG_BOOL, VG_CFG_AT(toy, flag), .idef = true, .help = "h"},
  {"auto_flag", VG_CFG_BOOL, VG_CFG_AT(toy, auto_flag), .idef = -1, .flags = VG_CFG_AUTO, .help = "h"},
  {"size", VG_CFG_INT, VG_CFG_AT(toy, size), .idef = 64, .ilo = 16, .ihi = 512, .imul = 16, .help = "h"},
  {"big", VG_CFG_INT, VG_CFG_AT(toy, big), .idef = -5, .ilo = -10, .ihi = 1LL << 40, .help = "h"},
  {"seed", VG_CFG_INT, VG_CFG_AT(toy, seed), .idef = 7, .ilo = 0, .ihi = INT64_MAX, .help = "h"},
  {"frac", VG_CFG_NUM, VG_CFG_AT(toy, frac), .def = 0.5, .lo = 0, .hi = 1, .flags = VG_CFG_HI_OPEN, .help = "h"},
  {"pos", VG_CFG_NUM, VG_CFG_AT(toy, pos), .def = 1e-3, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI, .help = "h"},
  {"path", VG_CFG_STR, VG_CFG_AT(toy, path), .sdef = "x.pth", .help = "h"},
  {"mode", VG_CFG_ENUM, VG_CFG_AT(toy, mode), .idef = 1, .choices = MODES, .flags = VG_CFG_NOCASE, .help = "h"},
  {"resize", VG_CFG_ENUM, VG_CFG_AT(toy, fl), .idef = 0, .choices = FL, .help = "h"},
  {"taps", VG_CFG_SET, VG_CFG_AT(toy, taps), .idef = 0x6 << 1, .ilo = 1, .ihi = 3, .choices = TAPS, .shift = 1, .help = "h"},
  {NULL}};

static vg_status toy_create(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  toy t;
  vg_cfg_defaults(TOY, &t);
  return vg_cfg_parse("toy", TOY, cfg, &t);   /* never builds a method: the checks want refusals */
}

static void test_toy(void) {
  const vg_method_def d = {.name = "toy", .create = toy_create, .config = TOY};
  VG_CHECK(vg_cfg_table_ok("toy", TOY), "toy table consistent (%s)", vg_cfg_table_ok("toy", TOY) ? "ok" : vg_last_error());
  check_roundtrip(&d);
  for (const vg_cfg_field *f = TOY; f->key; f++) check_field_values(&d, f);
  toy t;
  vg_cfg_defaults(TOY, &t);
  VG_CHECK(t.flag && t.auto_flag == -1 && t.size == 64 && t.big == -5 && t.seed == 7 && t.frac == 0.5 && t.pos == 1e-3 &&
           !strcmp(t.path, "x.pth") && t.mode == 1 && !t.fl && t.taps == 0xc, "toy defaults set every member");
  vg_json *j = parse("{\"mode\": \"L\", \"resize\": \"float\", \"taps\": [\"c\", \"a\", \"c\"], \"seed\": 9223372036854775807,"
                     " \"auto_flag\": false, \"size\": 512, \"path\": \"123456789012345\"}");
  vg_status st = vg_cfg_parse("toy", TOY, j, &t);
  VG_CHECK(st == VG_OK && t.mode == 2 && t.fl && t.taps == ((1u << 1) | (1u << 3)) && t.seed == (uint64_t)INT64_MAX &&
           t.auto_flag == 0 && t.size == 512 && !strcmp(t.path, "123456789012345"),
           "toy overrides: enum (case ignored), bool enum, set (repeats once), int64 max, auto bool, 15-byte string");
  char *s = vg_cfg_json("toy", TOY, &t);
  VG_CHECK(s && has(s, "\"mode\": \"l\"") && has(s, "\"taps\": [\n    \"a\",\n    \"c\"\n  ]") &&
           has(s, "\"seed\": 9223372036854775807") && has(s, "\"resize\": \"float\""),
           "toy JSON: enum by its table spelling, the set in table order, int64 exact");
  free(s);
  vg_json_free(j);
  /* the first bad key in the object's order is the one named */
  j = parse("{\"size\": 17, \"frac\": 2}");
  st = vg_cfg_parse("toy", TOY, j, &t);
  VG_CHECK(st == VG_ERR_ARG && has(vg_last_error(), "toy: bad value 17 for config key 'size': want an integer in [16, 512], "
                                                     "a multiple of 16"),
           "the first bad key is named with its range: %s", vg_last_error());
  vg_json_free(j);
  char w[128];
  const vg_cfg_field *fr = vg_cfg_find(TOY, "frac"), *po = vg_cfg_find(TOY, "pos"), *mo = vg_cfg_find(TOY, "mode");
  VG_CHECK(!strcmp(vg_cfg_want(fr, w, sizeof w), "a number in [0, 1)"), "want: %s", w);
  VG_CHECK(!strcmp(vg_cfg_want(po, w, sizeof w), "a number > 0"), "want: %s", w);
  VG_CHECK(!strcmp(vg_cfg_want(mo, w, sizeof w), "\"s\", \"m\" or \"l\""), "want: %s", w);
  /* inconsistent tables are caught */
  static const vg_cfg_field BAD1[] = {{"size", VG_CFG_INT, VG_CFG_AT(toy, size), .idef = 8, .ilo = 16, .ihi = 512}, {NULL}};
  static const vg_cfg_field BAD2[] = {{"a", VG_CFG_BOOL, VG_CFG_AT(toy, flag), .idef = 0}, {"a", VG_CFG_BOOL, VG_CFG_AT(toy, fl), .idef = 0}, {NULL}};
  static const vg_cfg_field BAD3[] = {{"frac", VG_CFG_NUM, VG_CFG_AT(toy, size), .def = 0.5, .hi = 1}, {NULL}};
  static const vg_cfg_field BAD4[] = {{"method", VG_CFG_BOOL, VG_CFG_AT(toy, flag), .idef = 0}, {NULL}};
  static const vg_cfg_field BAD5[] = {{"s", VG_CFG_INT, VG_CFG_AT(toy, size), .idef = 20, .ilo = 16, .ihi = 512, .imul = 16}, {NULL}};
  VG_CHECK(!vg_cfg_table_ok("t", BAD1) && has(vg_last_error(), "'size'"), "table check: default outside the range");
  VG_CHECK(!vg_cfg_table_ok("t", BAD2) && has(vg_last_error(), "twice"), "table check: a key twice");
  VG_CHECK(!vg_cfg_table_ok("t", BAD3) && has(vg_last_error(), "double"), "table check: a NUM on an int member");
  VG_CHECK(!vg_cfg_table_ok("t", BAD4) && has(vg_last_error(), "reserved"), "table check: \"method\" is reserved");
  VG_CHECK(!vg_cfg_table_ok("t", BAD5), "table check: default not a multiple");
}

static void test_registry(const char *argv0) {
  const vg_method_def *const *defs = vg_method_defs();
  const char *const *names = vg_method_names();
  int n = 0;
  bool ok = true;
  for (; defs[n]; n++) ok = ok && names[n] && !strcmp(names[n], defs[n]->name) && vg_method_find(defs[n]->name) == defs[n];
  VG_CHECK(ok && n >= 4 && !names[n], "registry: %d methods, names and lookup agree", n);
  VG_CHECK(!vg_method_find("no-such-method") && !vg_method_find(NULL), "registry: an unknown name finds nothing");
  vg_method *m = NULL;
  char list[256];
  vg_method_list(list, sizeof list, ", ", false);
  VG_CHECK(vg_method_create("no-such-method", NULL, &m) == VG_ERR_ARG && !m && has(vg_last_error(), list),
           "unknown method refused, naming the registered ones (%s)", vg_last_error());
  for (int i = 0; defs[i]; i++) {
    VG_CHECK(has(list, defs[i]->name), "method list names %s", defs[i]->name);
    bool an = defs[i]->anomalib_infer && defs[i]->anomalib_load;
    VG_CHECK(an == (defs[i]->anomalib_load != NULL) && an == (defs[i]->anomalib_infer != NULL),
             "%s: anomalib import complete or absent", defs[i]->name);
  }
  /* `vigil train METHOD --help` prints the config keys */
  char vigil[1024];
  if (!vg_test_find_vigil(argv0, vigil, sizeof vigil)) { printf("SKIP vigil train METHOD --help (no vigil beside the test)\n"); return; }
  for (int i = 0; defs[i]; i++) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s train %s --help", vigil, defs[i]->name);
    int rc = -1;
    char *out = vg_test_run(cmd, &rc);
    bool all = rc == 0 && out && has(out, "--steps");
    for (const vg_cfg_field *f = defs[i]->config; all && f->key; f++) all = has(out, f->key);
    VG_CHECK(all, "vigil train %s --help: exit 0, the options and every config key", defs[i]->name);
    free(out);
  }
  /* bench records the keys flagged VG_CFG_IDENT (FastFlow: backbone; EfficientAD: model, not
   * its distillation backbone) and runs the method's bench_prepare (EfficientAD's statistics) */
  {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s bench fastflow --set input_size=32 --set flow_steps=1 --batch 1 --warmup 0 --runs 1 "
             "--threads 2 2>/dev/null", vigil);
    int rc = -1;
    char *out = vg_test_run(cmd, &rc);
    VG_CHECK(rc == 0 && has(out, "\"method\":\"fastflow\",\"backbone\":\"resnet18\",\"input\"") && !has(out, "\"model\""),
             "vigil bench fastflow: JSON names backbone (its VG_CFG_IDENT key), no model");
    free(out);
#ifndef __SANITIZE_ADDRESS__   /* PDN-S at 256: seconds here, minutes under ASan */
    snprintf(cmd, sizeof cmd, "%s bench efficientad --set out_channels=8 --batch 1 --warmup 0 --runs 1 --threads 2 2>&1",
             vigil);
    out = vg_test_run(cmd, &rc);
    VG_CHECK(rc == 0 && has(out, "\"method\":\"efficientad\",\"model\":\"s\",\"input\"") && !has(out, "\"backbone\""),
             "vigil bench efficientad: JSON names model, not the distillation backbone");
    free(out);
#else
    printf("SKIP vigil bench efficientad under ASan (slow)\n");
#endif
  }
  int rc = -1;
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s train --help", vigil);
  char *out = vg_test_run(cmd, &rc);
  bool all = rc == 0;
  for (int i = 0; all && defs[i]; i++) all = has(out, defs[i]->name);
  VG_CHECK(all, "vigil train --help names every registered method");
  free(out);
}

int main(int argc, char **argv) {
  (void)argc;
  test_toy();
  for (const vg_method_def *const *d = vg_method_defs(); *d; d++) {
    const vg_method_def *def = *d;
    VG_CHECK(def->create && def->config && vg_cfg_count(def->config) > 0, "%s: a constructor and a config table", def->name);
    VG_CHECK(vg_cfg_table_ok(def->name, def->config), "%s: config table consistent (%s)", def->name,
             vg_cfg_table_ok(def->name, def->config) ? "ok" : vg_last_error());
    check_roundtrip(def);
    check_keys(def);
    for (const vg_cfg_field *f = def->config; f->key; f++) check_field_values(def, f);
  }
  /* real methods: what config_json writes reads back (small, fast configs) */
  check_method_json("meanimage", "{\"input_size\": 32}");
  check_method_json("fastflow", "{\"input_size\": 32, \"flow_steps\": 2}");
  check_method_json("fastflow", "{\"input_size\": 32, \"flow_steps\": 1, \"resize\": \"float\", \"conv3x3_only\": false}");
  check_method_json("cflow", "{\"backbone\": \"resnet18\", \"input_size\": 32, \"layers\": [\"layer3\", \"layer2\"], "
                             "\"coupling_blocks\": 1, \"map_norm\": \"anomalib\"}");
  check_method_json("efficientad", "{\"model\": \"S\", \"out_channels\": 8}");
  test_registry(argv[0]);
  return vg_test_finish();
}
