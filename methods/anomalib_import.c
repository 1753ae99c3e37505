/* anomalib_import.c — structural options of an anomalib checkpoint from its tensor shapes
 * (anomalib_import.h). */
#include "methods/anomalib_import.h"
#include "methods/method.h"
#include "nn/pth.h"
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tensor named `fmt` after the state_dict. / model. prefixes; NULL if absent. */
const vg_tensor *vg_anomalib_tensor(const vg_pth_dict *d, const char *fmt, ...) {
  char want[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(want, sizeof want, fmt, ap);
  va_end(ap);
  static const char *const strip[] = {"state_dict.", "model.", NULL};
  for (size_t i = 0; i < d->count; i++) {
    const vg_pth_entry *e = &d->entries[i];
    if (e->kind != VG_PTH_TENSOR || !e->tensor) continue;
    const char *n = e->name;
    for (int k = 0; strip[k]; k++)
      if (!strncmp(n, strip[k], strlen(strip[k]))) n += strlen(strip[k]);
    if (!strcmp(n, want)) return e->tensor;
  }
  return NULL;
}

int64_t vg_anomalib_dim(const vg_tensor *t, int i) { return t && i < t->ndim ? t->shape[i] : -1; }

/* Records key = json (what the checkpoint implies), or, when the user gave the key, checks
 * it with `same` (NULL = JSON text equality). why: the evidence for the message. */
vg_status vg_anomalib_put(vg_anomalib_infer *f, const char *key, const char *json, vg_anomalib_same same, const char *why) {
  const vg_json *u = f->user ? vg_json_get(f->user, key) : NULL;
  if (u) {
    bool ok;
    if (same) {
      ok = same(f, u, json);
    } else {
      vg_json_writer w;
      vg_jw_init(&w, 0);
      vg_jw_value(&w, u);
      char *t = vg_jw_finish(&w, NULL);
      ok = t && !strcmp(t, json);
      free(t);
    }
    if (!ok)
      return vg_fail(VG_ERR_ARG, "%s: the checkpoint's tensor shapes imply %s=%s (%s), but the options give another %s; "
                     "drop the option or give --set '%s=%s'", f->model, key, json, why, key, key, json);
    return VG_OK;
  }
  if (f->n >= VG_ANOMALIB_MAX_KEYS) return vg_fail(VG_ERR_ARG, "%s: too many inferred keys", f->model);
  snprintf(f->key[f->n], sizeof f->key[f->n], "%s", key);
  snprintf(f->json[f->n], sizeof f->json[f->n], "%s", json);
  f->n++;
  return VG_OK;
}

bool vg_anomalib_same_ci_string(const vg_anomalib_infer *f, const vg_json *u, const char *json) {
  (void)f;
  const char *s = vg_json_as_string(u);
  size_t n = strlen(json);
  if (!s || n < 2 || strlen(s) != n - 2) return false;
  for (size_t i = 0; i < n - 2; i++)
    if (tolower((unsigned char)s[i]) != tolower((unsigned char)json[i + 1])) return false;
  return true;
}

bool vg_anomalib_same_int(const vg_anomalib_infer *f, const vg_json *u, const char *json) {
  (void)f;
  int64_t v;
  return vg_json_as_int64(u, &v) && v == strtoll(json, NULL, 10);
}

bool vg_anomalib_same_bool(const vg_anomalib_infer *f, const vg_json *u, const char *json) {
  (void)f;
  bool b;
  return vg_json_as_bool(u, &b) && b == !strcmp(json, "true");
}

vg_status vg_anomalib_config(const char *model, const char *ckpt, const vg_json *user, vg_json **out, char *note,
                             size_t note_cap) {
  *out = NULL;
  if (note && note_cap) note[0] = 0;
  const vg_method_def *def = vg_method_find(model);
  if (!def || !def->anomalib_infer) {
    char known[256];
    return vg_fail(VG_ERR_ARG, "anomalib import: no model '%s' (%s)", model ? model : "(null)",
                   vg_method_list(known, sizeof known, ", ", true));
  }
  vg_pth_opts o = {.to_f32 = false};
  vg_pth_dict *d = NULL;
  vg_status st = vg_pth_load(ckpt, &o, &d);
  if (st != VG_OK) {   /* a Lightning checkpoint whose other entries name globals: its state_dict */
    char first[512];
    snprintf(first, sizeof first, "%s", vg_last_error());
    o.state_dict_only = true;
    if ((st = vg_pth_load(ckpt, &o, &d)) != VG_OK) return vg_fail(st, "%s", first);
  }
  vg_anomalib_infer f = {.d = d, .model = def->name, .user = user};
  st = def->anomalib_infer(&f);
  vg_pth_free(d);
  if (st != VG_OK) return st;
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  for (int64_t i = 0; user && i < vg_json_len(user); i++) {
    vg_jw_key(&w, vg_json_key_at(user, i));
    vg_jw_value(&w, vg_json_at(user, i));
  }
  size_t used = 0;
  for (int i = 0; i < f.n; i++) {
    vg_jw_key(&w, f.key[i]);
    /* the value is JSON text: parse it and write it back */
    vg_json *j = NULL;
    if (vg_json_parse(f.json[i], strlen(f.json[i]), NULL, &j) == VG_OK) vg_jw_value(&w, j);
    else vg_jw_null(&w);
    vg_json_free(j);
    if (note && used + 1 < note_cap)
      used += (size_t)snprintf(note + used, note_cap - used, "%s%s=%s", i ? ", " : "", f.key[i], f.json[i]);
  }
  if (!user || !vg_json_get(user, "resize")) {
    vg_jw_key(&w, "resize");
    vg_jw_string(&w, "float");
  }
  vg_jw_end_object(&w);
  size_t n;
  char *text = vg_jw_finish(&w, &n);
  if (!text) return vg_fail(VG_ERR_NOMEM, "anomalib import: out of memory");
  st = vg_json_parse(text, n, NULL, out);
  free(text);
  return st;
}
