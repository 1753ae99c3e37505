/* anomalib_import.c — structural options of an anomalib checkpoint from its tensor shapes
 * (anomalib_import.h). */
#include "methods/anomalib_import.h"
#include "nn/pth.h"
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 8

typedef struct {
  const vg_pth_dict *d;
  const char *model;
  const vg_json *user;
  int n;
  char key[MAX_KEYS][32];
  char json[MAX_KEYS][256];     /* the inferred value as JSON text */
  int nr;                       /* FastFlow scales: subnet input / hidden widths */
  int64_t in[8], hid[8];
} infer;

/* The tensor named `fmt` after the state_dict. / model. prefixes; NULL if absent. */
static const vg_tensor *tensor_at(const vg_pth_dict *d, const char *fmt, ...) {
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

static int64_t dim(const vg_tensor *t, int i) { return t && i < t->ndim ? t->shape[i] : -1; }

/* Records key = json (what the checkpoint implies), or, when the user gave the key, checks
 * it with `same` (NULL = JSON text equality). why: the evidence for the message. */
static vg_status put(infer *f, const char *key, const char *json, bool (*same)(const infer *f, const vg_json *user, const char *json),
                     const char *why) {
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
  if (f->n >= MAX_KEYS) return vg_fail(VG_ERR_ARG, "%s: too many inferred keys", f->model);
  snprintf(f->key[f->n], sizeof f->key[f->n], "%s", key);
  snprintf(f->json[f->n], sizeof f->json[f->n], "%s", json);
  f->n++;
  return VG_OK;
}

static bool same_ci_string(const infer *f, const vg_json *u, const char *json) {
  (void)f;
  const char *s = vg_json_as_string(u);
  size_t n = strlen(json);
  if (!s || n < 2 || strlen(s) != n - 2) return false;
  for (size_t i = 0; i < n - 2; i++)
    if (tolower((unsigned char)s[i]) != tolower((unsigned char)json[i + 1])) return false;
  return true;
}

static bool same_int(const infer *f, const vg_json *u, const char *json) {
  (void)f;
  int64_t v;
  return vg_json_as_int64(u, &v) && v == strtoll(json, NULL, 10);
}

static bool same_bool(const infer *f, const vg_json *u, const char *json) {
  (void)f;
  bool b;
  return vg_json_as_bool(u, &b) && b == !strcmp(json, "true");
}

/* hidden_ratio: the user's ratio must give every scale's hidden width (int(ratio * c_in)) */
static bool same_ratio(const infer *f, const vg_json *u, const char *json) {
  (void)json;
  double r;
  if (!vg_json_as_double(u, &r)) return false;
  for (int i = 0; i < f->nr; i++)
    if ((int64_t)(r * (double)f->in[i]) != f->hid[i]) return false;
  return true;
}

static vg_status infer_fastflow(infer *f) {
  const vg_pth_dict *d = f->d;
  const vg_tensor *n0 = tensor_at(d, "norms.0.weight");
  if (!n0 || n0->ndim != 3)
    return vg_fail(VG_ERR_FORMAT, "fastflow: norms.0.weight (C, H, W) missing: not an anomalib FastFlow checkpoint");
  int64_t c0 = dim(n0, 0), h = dim(n0, 1), w = dim(n0, 2);
  char v[256], why[256];
  vg_status st = VG_OK;
  const char *bb = c0 == 64 ? "resnet18" : c0 == 256 ? "wide_resnet50_2" : NULL;
  if (!bb)
    return vg_fail(VG_ERR_UNSUPPORTED, "fastflow: norms.0.weight has %lld channels: not resnet18 (64) or "
                   "wide_resnet50_2 (256), the backbones Vigil builds", (long long)c0);
  snprintf(v, sizeof v, "\"%s\"", bb);
  snprintf(why, sizeof why, "norms.0.weight has %lld channels", (long long)c0);
  if ((st = put(f, "backbone", v, same_ci_string, why)) != VG_OK) return st;
  if (h != w)
    return vg_fail(VG_ERR_UNSUPPORTED, "fastflow: norms.0.weight is %lldx%lld: a non-square input size (%lldx%lld), "
                   "Vigil's input is square", (long long)h, (long long)w, (long long)(4 * h), (long long)(4 * w));
  snprintf(v, sizeof v, "%lld", (long long)(4 * h));
  snprintf(why, sizeof why, "norms.0.weight is %lldx%lld at stride 4", (long long)h, (long long)w);
  if ((st = put(f, "input_size", v, same_int, why)) != VG_OK) return st;
  int steps = 0;
  while (steps < 1000 && tensor_at(d, "fast_flow_blocks.0.module_list.%d.subnet.0.weight", steps)) steps++;
  if (!steps) return vg_fail(VG_ERR_FORMAT, "fastflow: no fast_flow_blocks.0.module_list.0.subnet.0.weight");
  snprintf(v, sizeof v, "%d", steps);
  snprintf(why, sizeof why, "fast_flow_blocks.0 has %d steps", steps);
  if ((st = put(f, "flow_steps", v, same_int, why)) != VG_OK) return st;
  /* hidden widths per scale: [ratio_lo, ratio_hi) intersected over the scales */
  double lo = 0, hi = INFINITY;
  f->nr = 0;
  for (int s = 0; s < 8; s++) {
    const vg_tensor *ns = tensor_at(d, "norms.%d.weight", s);
    const vg_tensor *sw = tensor_at(d, "fast_flow_blocks.%d.module_list.0.subnet.0.weight", s);
    if (!ns || !sw) break;
    int64_t c = dim(ns, 0), cin = c - c / 2, hid = dim(sw, 0);
    if (dim(sw, 1) != cin || hid < 1)
      return vg_fail(VG_ERR_FORMAT, "fastflow: fast_flow_blocks.%d.module_list.0.subnet.0.weight has %lld input "
                     "channels, %lld expected", s, (long long)dim(sw, 1), (long long)cin);
    f->in[f->nr] = cin;
    f->hid[f->nr++] = hid;
    lo = fmax(lo, (double)hid / (double)cin);
    hi = fmin(hi, (double)(hid + 1) / (double)cin);
  }
  if (!(lo < hi))
    return vg_fail(VG_ERR_FORMAT, "fastflow: the subnets' hidden widths follow no single hidden_ratio");
  double r = lo;
  for (int i = 0; i < f->nr; i++)   /* float rounding: the smallest double that gives every width */
    while ((int64_t)(r * (double)f->in[i]) < f->hid[i]) r = nextafter(r, INFINITY);
  snprintf(v, sizeof v, "%.17g", r);
  snprintf(why, sizeof why, "fast_flow_blocks.0.module_list.0.subnet.0.weight has %lld hidden channels for %lld inputs",
           (long long)f->hid[0], (long long)f->in[0]);
  if ((st = put(f, "hidden_ratio", v, same_ratio, why)) != VG_OK) return st;
  if (steps >= 2) {
    const vg_tensor *k1 = tensor_at(d, "fast_flow_blocks.0.module_list.1.subnet.0.weight");
    int64_t k = dim(k1, 2);
    if (k != 1 && k != 3)
      return vg_fail(VG_ERR_FORMAT, "fastflow: fast_flow_blocks.0.module_list.1.subnet.0.weight has a %lldx%lld kernel "
                     "(1x1 or 3x3 expected)", (long long)k, (long long)dim(k1, 3));
    snprintf(why, sizeof why, "fast_flow_blocks.0.module_list.1.subnet.0.weight is %lldx%lld", (long long)k, (long long)k);
    if ((st = put(f, "conv3x3_only", k == 3 ? "true" : "false", same_bool, why)) != VG_OK) return st;
  }
  return VG_OK;
}

static const char *const LAYER[5] = {"", "layer1", "layer2", "layer3", "layer4"};

/* the ResNet tap (1..4) with c channels, 0 if none */
static int tap_of(bool wide, int64_t c) {
  for (int l = 1; l <= 4; l++)
    if (c == (wide ? 128LL << l : 32LL << l)) return l;
  return 0;
}

static bool same_layers(const infer *f, const vg_json *u, const char *json) {
  (void)f;
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_value(&w, u);
  char *t = vg_jw_finish(&w, NULL);
  bool ok = t && !strcmp(t, json);
  free(t);
  return ok;
}

static vg_status infer_cflow(infer *f) {
  const vg_pth_dict *d = f->d;
  int64_t C[8];
  int L = 0;
  while (L < 8 && tensor_at(d, "decoders.%d.module_list.0.subnet.0.weight", L)) {
    const vg_tensor *p = tensor_at(d, "decoders.%d.module_list.0.w_perm", L);
    const vg_tensor *g = tensor_at(d, "decoders.%d.module_list.0.global_scale", L);
    C[L] = p ? dim(p, 0) : dim(g, 1);
    if (C[L] < 2) return vg_fail(VG_ERR_FORMAT, "cflow: decoders.%d: no w_perm or global_scale to size it", L);
    L++;
  }
  if (!L) return vg_fail(VG_ERR_FORMAT, "cflow: decoders.0.module_list.0.subnet.0.weight missing: not an anomalib CFLOW checkpoint");
  char v[256], why[256];
  vg_status st;
  /* backbone: the encoder's own weights say it; else the decoders' channels */
  int wide = -1;
  if (tensor_at(d, "encoder.feature_extractor.layer1.0.conv3.weight")) wide = 1;
  else if (tensor_at(d, "encoder.feature_extractor.layer1.0.conv1.weight")) wide = 0;
  for (int l = 0; l < L && wide < 0; l++) {
    if (C[l] == 64 || C[l] == 128) wide = 0;
    if (C[l] == 1024 || C[l] == 2048) wide = 1;
  }
  if (wide < 0) {   /* 256 / 512 only: either backbone; the user's, else CFLOW's default */
    const char *ub = f->user ? vg_json_as_string(vg_json_get(f->user, "backbone")) : NULL;
    wide = !(ub && !strcmp(ub, "resnet18"));
  } else {
    snprintf(v, sizeof v, "\"%s\"", wide ? "wide_resnet50_2" : "resnet18");
    snprintf(why, sizeof why, "%s", tensor_at(d, "encoder.feature_extractor.layer1.0.conv1.weight")
                                        ? "the encoder's weights" : "the decoders' channel counts");
    if ((st = put(f, "backbone", v, same_ci_string, why)) != VG_OK) return st;
  }
  char *p = v;
  p += sprintf(p, "[");
  int prev = 0;
  for (int l = 0; l < L; l++) {
    int t = tap_of(wide, C[l]);
    if (!t || t <= prev)
      return vg_fail(VG_ERR_UNSUPPORTED, "cflow: decoders.%d has %lld channels: no %s tap after %s gives it", l,
                     (long long)C[l], wide ? "wide_resnet50_2" : "resnet18", prev ? LAYER[prev] : "the stem");
    p += sprintf(p, "%s\"%s\"", l ? "," : "", LAYER[t]);
    prev = t;
  }
  sprintf(p, "]");
  snprintf(why, sizeof why, "%d decoders of %lld%s channels", L, (long long)C[0], L > 1 ? "..." : "");
  if ((st = put(f, "layers", v, same_layers, why)) != VG_OK) return st;
  int blocks = 0;
  while (blocks < 1000 && tensor_at(d, "decoders.0.module_list.%d.subnet.0.weight", blocks)) blocks++;
  snprintf(v, sizeof v, "%d", blocks);
  snprintf(why, sizeof why, "decoders.0 has %d blocks", blocks);
  if ((st = put(f, "coupling_blocks", v, same_int, why)) != VG_OK) return st;
  const vg_tensor *s0 = tensor_at(d, "decoders.0.module_list.0.subnet.0.weight");
  int64_t cond = dim(s0, 1) - (C[0] - C[0] / 2);
  if (cond < 1) return vg_fail(VG_ERR_FORMAT, "cflow: decoders.0.module_list.0.subnet.0.weight has no condition inputs");
  snprintf(v, sizeof v, "%lld", (long long)cond);
  snprintf(why, sizeof why, "decoders.0.module_list.0.subnet.0.weight takes %lld inputs for %lld channels",
           (long long)dim(s0, 1), (long long)C[0]);
  return put(f, "condition_vector", v, same_int, why);
}

static vg_status infer_effad(infer *f) {
  const vg_pth_dict *d = f->d;
  const vg_tensor *c1 = tensor_at(d, "teacher.conv1.weight");
  if (!c1) return vg_fail(VG_ERR_FORMAT, "efficientad: teacher.conv1.weight missing: not an anomalib EfficientAd checkpoint");
  bool med = tensor_at(d, "teacher.conv5.weight") != NULL;
  char v[64], why[256];
  snprintf(why, sizeof why, "teacher.conv5.weight is %s", med ? "present" : "absent");
  vg_status st = put(f, "model", med ? "\"m\"" : "\"s\"", same_ci_string, why);
  if (st != VG_OK) return st;
  const vg_tensor *last = tensor_at(d, med ? "teacher.conv6.weight" : "teacher.conv4.weight");
  if (!last) return vg_fail(VG_ERR_FORMAT, "efficientad: no teacher.%s.weight", med ? "conv6" : "conv4");
  snprintf(v, sizeof v, "%lld", (long long)dim(last, 0));
  snprintf(why, sizeof why, "teacher.%s.weight has %lld outputs", med ? "conv6" : "conv4", (long long)dim(last, 0));
  return put(f, "out_channels", v, same_int, why);
}

vg_status vg_anomalib_config(const char *model, const char *ckpt, const vg_json *user, vg_json **out, char *note,
                             size_t note_cap) {
  *out = NULL;
  if (note && note_cap) note[0] = 0;
  bool ff = !strcmp(model, "fastflow"), cf = !strcmp(model, "cflow"), ea = !strcmp(model, "efficientad");
  if (!ff && !cf && !ea) return vg_fail(VG_ERR_ARG, "anomalib import: no model '%s' (fastflow, cflow, efficientad)", model);
  vg_pth_opts o = {.to_f32 = false};
  vg_pth_dict *d = NULL;
  vg_status st = vg_pth_load(ckpt, &o, &d);
  if (st != VG_OK) {   /* a Lightning checkpoint whose other entries name globals: its state_dict */
    char first[512];
    snprintf(first, sizeof first, "%s", vg_last_error());
    o.state_dict_only = true;
    if ((st = vg_pth_load(ckpt, &o, &d)) != VG_OK) return vg_fail(st, "%s", first);
  }
  infer f = {.d = d, .model = model, .user = user};
  st = ff ? infer_fastflow(&f) : cf ? infer_cflow(&f) : infer_effad(&f);
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
