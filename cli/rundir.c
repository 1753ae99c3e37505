/* rundir.c — run directory, config.json, dataset opening (rundir.h). */
#include "cli/rundir.h"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "datasets/image/image.h"
#include "tensor/tensor.h"

const char *vg_run_path(const char *dir, const char *name) {
  static _Thread_local char buf[4][2048];
  static _Thread_local int k;
  k = (k + 1) & 3;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

vg_status vg_run_mkdirs(const char *path) {
  char buf[2048];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || !*p) {
      char c = *p;
      *p = 0;
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return vg_fail(VG_ERR_IO, "%s: cannot create folder (%s)", buf, strerror(errno));
      *p = c;
      if (!c) break;
    }
  }
  return VG_OK;
}

vg_status vg_run_write_text(const char *path, const char *text) {
  return vg_image_write_file(path, (const uint8_t *)text, strlen(text));
}

vg_status vg_run_read_text(const char *path, char **out) {
  uint8_t *buf;
  size_t n;
  vg_status st = vg_image_read_file(path, &buf, &n, (size_t)64 << 20);
  if (st != VG_OK) return st;
  char *s = realloc(buf, n + 1);
  if (!s) { free(buf); return vg_fail(VG_ERR_NOMEM, "out of memory"); }
  s[n] = 0;
  *out = s;
  return VG_OK;
}

vg_status vg_run_config_write(const char *rundir, const vg_run_config *c) {
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "method"); vg_jw_string(&w, c->method);
  vg_jw_key(&w, "method_config"); vg_jw_value(&w, c->method_config);
  vg_jw_key(&w, "data"); vg_jw_begin_object(&w);
  vg_jw_key(&w, "dataset"); vg_jw_string(&w, c->data.dataset);
  vg_jw_key(&w, "root"); vg_jw_string(&w, c->data.root);
  vg_jw_key(&w, "category"); vg_jw_string(&w, c->data.category);
  vg_jw_key(&w, "val_fraction"); vg_jw_double(&w, c->data.val_fraction);
  vg_jw_key(&w, "split_seed"); vg_jw_int64(&w, (int64_t)c->data.split_seed);
  vg_jw_key(&w, "synthetic"); vg_jw_bool(&w, c->data.synthetic);
  vg_jw_end_object(&w);
  vg_jw_key(&w, "train"); vg_jw_begin_object(&w);
  vg_jw_key(&w, "steps"); vg_jw_int64(&w, c->train.steps);
  vg_jw_key(&w, "batch"); vg_jw_int64(&w, c->train.batch);
  vg_jw_key(&w, "workers"); vg_jw_int64(&w, c->train.workers);
  vg_jw_key(&w, "threads"); vg_jw_int64(&w, c->train.threads);
  vg_jw_key(&w, "seed"); vg_jw_int64(&w, (int64_t)c->train.seed);
  vg_jw_key(&w, "save_every"); vg_jw_int64(&w, c->train.save_every);
  vg_jw_end_object(&w);
  vg_jw_end_object(&w);
  size_t n;
  char *text = vg_jw_finish(&w, &n);
  if (!text) return vg_fail(VG_ERR_NOMEM, "config.json: cannot serialise");
  vg_status st = vg_run_write_text(vg_run_path(rundir, "config.json"), text);
  free(text);
  return st;
}

static bool get_str(const vg_json *o, const char *k, char *dst, size_t cap) {
  const char *s = vg_json_as_string(vg_json_get(o, k));
  if (!s) return false;
  snprintf(dst, cap, "%s", s);
  return true;
}

static bool get_i64(const vg_json *o, const char *k, int64_t *v) { return vg_json_as_int64(vg_json_get(o, k), v); }

vg_status vg_run_config_read(const char *rundir, vg_run_config *c) {
  memset(c, 0, sizeof *c);
  const char *path = vg_run_path(rundir, "config.json");
  char *text;
  vg_status st = vg_run_read_text(path, &text);
  if (st != VG_OK) return vg_fail_prefix("run directory %s", rundir);
  vg_json *doc;
  st = vg_json_parse(text, strlen(text), NULL, &doc);
  free(text);
  if (st != VG_OK) return vg_fail_prefix("%s", path);
  const vg_json *d = vg_json_get(doc, "data"), *t = vg_json_get(doc, "train"), *mc = vg_json_get(doc, "method_config");
  int64_t steps, batch, workers, threads, seed, save_every, split_seed;
  bool ok = get_str(doc, "method", c->method, sizeof c->method) && d && t && mc &&
            get_str(d, "dataset", c->data.dataset, sizeof c->data.dataset) &&
            get_str(d, "root", c->data.root, sizeof c->data.root) &&
            get_str(d, "category", c->data.category, sizeof c->data.category) &&
            vg_json_as_double(vg_json_get(d, "val_fraction"), &c->data.val_fraction) &&
            get_i64(d, "split_seed", &split_seed) && vg_json_as_bool(vg_json_get(d, "synthetic"), &c->data.synthetic) &&
            get_i64(t, "steps", &steps) && get_i64(t, "batch", &batch) && get_i64(t, "workers", &workers) &&
            get_i64(t, "threads", &threads) && get_i64(t, "seed", &seed) && get_i64(t, "save_every", &save_every);
  if (!ok) {
    vg_json_free(doc);
    return vg_fail(VG_ERR_FORMAT, "%s: malformed (expected method, method_config, data{dataset,root,category,val_fraction,split_seed,synthetic}, train{steps,batch,workers,threads,seed,save_every})", path);
  }
  c->data.split_seed = (uint64_t)split_seed;
  c->train = (vg_run_train){steps, (int)batch, (int)workers, (int)threads, (uint64_t)seed, save_every};
  /* keep method_config: re-serialise it into a standalone document */
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_value(&w, mc);
  size_t n;
  char *mtext = vg_jw_finish(&w, &n);
  vg_json_free(doc);
  if (!mtext) return vg_fail(VG_ERR_NOMEM, "out of memory");
  st = vg_json_parse(mtext, n, NULL, &c->method_config);
  free(mtext);
  return st;
}

void vg_run_config_free(vg_run_config *c) {
  vg_json_free(c->method_config);
  c->method_config = NULL;
}

vg_status vg_run_open_dataset(const vg_run_data *d, vg_ds_split split, vg_dataset *out) {
  vg_split_opts so = {split, d->val_fraction, d->split_seed};
  const char *cat = d->category[0] ? d->category : NULL;
  if (!strcmp(d->dataset, "mvtec")) return vg_ds_mvtec(d->root, cat, &so, out);
  if (!strcmp(d->dataset, "loco")) return vg_ds_loco(d->root, cat, &so, out);
  if (!strcmp(d->dataset, "visa")) return vg_ds_visa(d->root, cat, &so, out);
  if (!strcmp(d->dataset, "btad")) return vg_ds_btad(d->root, cat, &so, out);
  if (!strcmp(d->dataset, "folder")) {
    char nd[1100], ad[1100], md[1100], td[1100];
    snprintf(nd, sizeof nd, "%s/normal", d->root);
    snprintf(ad, sizeof ad, "%s/abnormal", d->root);
    snprintf(md, sizeof md, "%s/mask", d->root);
    snprintf(td, sizeof td, "%s/normal_test", d->root);
    struct stat sb;
    vg_folder_spec fs = {nd, ad, stat(md, &sb) == 0 ? md : NULL, stat(td, &sb) == 0 ? td : NULL};
    return vg_ds_folder(&fs, &so, out);
  }
  return vg_fail(VG_ERR_ARG, "unknown dataset kind '%s' (mvtec, loco, visa, btad, folder)", d->dataset);
}

vg_status vg_run_open_method(const char *rundir, const vg_run_config *c, bool load, vg_method **out) {
  vg_status st = vg_method_create(c->method, c->method_config, out);
  if (st != VG_OK || !load) return st;
  st = (*out)->ops->load(*out, vg_run_path(rundir, "checkpoint.safetensors"));
  if (st != VG_OK) { vg_method_free(*out); *out = NULL; }
  return st;
}

void vg_run_sample_rel(const vg_sample *s, char *buf, size_t cap) {
  const char *base = strrchr(s->image, '/');
  base = base ? base + 1 : s->image;
  char stem[512];
  snprintf(stem, sizeof stem, "%s", base);
  char *dot = strrchr(stem, '.');
  if (dot && dot != stem) *dot = 0;
  snprintf(buf, cap, "%s/%s", s->defect, stem);
}

bool vg_run_ov_set(vg_run_overrides *l, const char *key, const char *json) {
  if (strlen(key) >= sizeof l->v[0].key) return false;
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->v[i].key, key)) {
      char *d = strdup(json);
      if (!d) return false;
      free(l->v[i].json);
      l->v[i].json = d;
      return true;
    }
  if (l->n == VG_RUN_MAX_OVERRIDES || !(l->v[l->n].json = strdup(json))) return false;
  snprintf(l->v[l->n++].key, sizeof l->v[0].key, "%s", key);
  return true;
}

static char *json_quote(const char *s) {
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_string(&w, s);
  return vg_jw_finish(&w, NULL);
}

bool vg_run_ov_set_str(vg_run_overrides *l, const char *key, const char *s) {
  char *q = json_quote(s);
  bool ok = q && vg_run_ov_set(l, key, q);
  free(q);
  return ok;
}

bool vg_run_ov_set_arg(vg_run_overrides *l, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || eq - arg >= (ptrdiff_t)sizeof l->v[0].key) return false;
  char key[sizeof l->v[0].key];
  snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
  vg_json *j;
  if (vg_json_parse(eq + 1, strlen(eq + 1), NULL, &j) == VG_OK) {
    vg_json_free(j);
    return vg_run_ov_set(l, key, eq + 1);
  }
  return vg_run_ov_set_str(l, key, eq + 1);
}

bool vg_run_ov_has(const vg_run_overrides *l, const char *key) {
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->v[i].key, key)) return true;
  return false;
}

vg_status vg_run_ov_json(const vg_run_overrides *l, vg_json **out) {
  size_t cap = 16;
  char *qk[VG_RUN_MAX_OVERRIDES] = {0};
  vg_status st = VG_OK;
  for (int i = 0; i < l->n && st == VG_OK; i++) {
    if (!(qk[i] = json_quote(l->v[i].key))) st = vg_fail(VG_ERR_NOMEM, "out of memory");
    else cap += strlen(qk[i]) + strlen(l->v[i].json) + 8;
  }
  char *buf = st == VG_OK ? malloc(cap) : NULL;
  if (st == VG_OK && !buf) st = vg_fail(VG_ERR_NOMEM, "out of memory");
  if (st == VG_OK) {
    char *p = buf;
    p += sprintf(p, "{");
    for (int i = 0; i < l->n; i++) p += sprintf(p, "%s%s: %s", i ? ", " : "", qk[i], l->v[i].json);
    sprintf(p, "}");
    st = vg_json_parse(buf, strlen(buf), NULL, out);
    if (st != VG_OK) vg_fail_prefix("method config overrides");
  }
  free(buf);
  for (int i = 0; i < l->n; i++) free(qk[i]);
  return st;
}

void vg_run_ov_free(vg_run_overrides *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i].json);
  l->n = 0;
}

vg_status vg_cli_method_to(vg_method *m, const char *device, const char *dtype) {
  vg_device dev;
  vg_dtype dt;
  if (!vg_parse_device(device, &dev) || !vg_parse_dtype(dtype, &dt)) return vg_last_status();
  vg_status st = vg_method_to(m, dev, dt);
  if (st == VG_OK && (dev != VG_CPU || dt != VG_F32))
    fprintf(stderr, "vigil: %s computes on %s in %s\n", m->ops->name, dev == VG_CPU ? "cpu" : "cuda", vg_dtype_name(dt));
  return st;
}
