/* fuzz_rundir.c — libFuzzer target: what `vigil` reads from a run directory. The input is
 * written as both config.json and state.json of a scratch run directory (on /dev/shm when
 * there is one), then
 *   vg_run_config_read (cli/rundir.c: parse, the key checks, the ranges of the flags,
 *     method_config re-serialised) — on success every value must be one a new run could
 *     have written (vg_run_config_check), every string is the document's whole (no silent
 *     truncation to the fixed-size fields, no cut at a "\u0000"), and vg_run_config_write + vg_run_config_read must
 *     give the same config back (no silent truncation or mangling of a string);
 *   read_state_json / parse_state (cli/train.c, static: reached by including train.c) — the
 *     --resume state from state.json and from the checkpoint's "vigil.run_state" text.
 * A refusal must leave a message and no method_config. See tests/fuzz/README.md: link with
 * the objects of the other cli sources except main.c and train.c, and a libvigil.a built with
 * -fsanitize=fuzzer-no-link,address,undefined. */
#include "cli/train.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256], g_dir2[300];

static void put_file(const char *dir, const char *name, const uint8_t *data, size_t n) {
  FILE *f = fopen(vg_run_path(dir, name), "wb");
  if (!f) abort();
  if (n && fwrite(data, 1, n, f) != n) abort();
  fclose(f);
}

/* The string the config holds for key k of object o is the document's, whole. */
static bool same_str(const vg_json *o, const char *k, const char *got) {
  const vg_json *v = vg_json_get(o, k);
  return v && v->type == VG_JSON_STRING && v->len == strlen(got) && !memcmp(v->str, got, v->len);
}

static bool same_config(const vg_run_config *a, const vg_run_config *b) {
  if (strcmp(a->method, b->method) || strcmp(a->data.dataset, b->data.dataset) || strcmp(a->data.root, b->data.root) ||
      strcmp(a->data.category, b->data.category) || a->data.val_fraction != b->data.val_fraction ||
      a->data.split_seed != b->data.split_seed || a->data.synthetic != b->data.synthetic ||
      memcmp(&a->train, &b->train, sizeof a->train))
    return false;
  vg_json_writer w1, w2;
  vg_jw_init(&w1, 0);
  vg_jw_init(&w2, 0);
  vg_jw_value(&w1, a->method_config);
  vg_jw_value(&w2, b->method_config);
  size_t n1, n2;
  char *t1 = vg_jw_finish(&w1, &n1), *t2 = vg_jw_finish(&w2, &n2);
  bool ok = t1 && t2 && n1 == n2 && !memcmp(t1, t2, n1);
  free(t1);
  free(t2);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "%s/vigil_fuzz_rundir_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(g_dir)) abort();
    snprintf(g_dir2, sizeof g_dir2, "%s/rt", g_dir);
    if (vg_mkdir_p(g_dir2) != VG_OK) abort();
  }
  put_file(g_dir, "config.json", data, n);
  put_file(g_dir, "state.json", data, n);

  vg_run_config c;
  memset(&c, 0x5a, sizeof c);
  vg_clear_error();
  vg_status st = vg_run_config_read(g_dir, &c);
  if (st != VG_OK) {
    if (!vg_last_error()[0] || c.method_config) __builtin_trap();
  } else {
    if (!c.method_config || !c.method[0]) __builtin_trap();
    if (vg_run_config_check("fuzz", &c) != VG_OK) __builtin_trap();
    vg_json *doc;   /* no silent truncation or cut at an embedded NUL */
    if (vg_json_parse((const char *)data, n, NULL, &doc) != VG_OK) __builtin_trap();
    const vg_json *d = vg_json_get(doc, "data");
    if (!same_str(doc, "method", c.method) || !same_str(d, "dataset", c.data.dataset) ||
        !same_str(d, "root", c.data.root) || !same_str(d, "category", c.data.category))
      __builtin_trap();
    vg_json_free(doc);
    if (vg_run_config_write(g_dir2, &c) != VG_OK) __builtin_trap();   /* what was read writes back */
    vg_run_config c2;
    if (vg_run_config_read(g_dir2, &c2) != VG_OK) __builtin_trap();
    if (!same_config(&c, &c2)) __builtin_trap();
    vg_run_config_free(&c2);
  }
  vg_run_config_free(&c);

  int64_t step = -7;
  bool fb = false, fe = false;
  vg_clear_error();
  int r = read_state_json(g_dir, &step, &fb, &fe);
  if (r == 0 || (r < 0 && !vg_last_error()[0]) || (r > 0 && step < 0)) __builtin_trap();
  /* the checkpoint's copy of the run state ("vigil.run_state") goes through parse_state */
  char *t = malloc(n + 1);
  if (!t) abort();
  memcpy(t, data, n);
  t[n] = 0;
  step = -7;
  if (parse_state(t, &step, &fb, &fe) && step < 0) __builtin_trap();
  free(t);
  return 0;
}
