/* checkpoint.c — save/load a module (+ optimizer state) as one safetensors file. */
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "base/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *prefixed(const char *pre, const char *name) {
  size_t n = strlen(pre) + strlen(name) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s", pre, name);
  return s;
}

vg_status vg_nn_checkpoint_save(const char *path, const vg_nn_module *m, vg_optim *o, const char *config_json) {
  return vg_nn_checkpoint_save_state(path, m, o, config_json, NULL);
}

vg_status vg_nn_checkpoint_save_state(const char *path, const vg_nn_module *m, vg_optim *o, const char *config_json,
                                      const char *run_state) {
  if (!path || !m) return vg_fail(VG_ERR_ARG, "checkpoint save: NULL path or module");
  vg_nn_list sd = vg_nn_state_dict(m);
  vg_nn_list os = o ? vg_optim_state(o) : (vg_nn_list){0};
  int n = sd.n + os.n;
  char **names = calloc((size_t)(n ? n : 1), sizeof *names);
  vg_tensor **ts = calloc((size_t)(n ? n : 1), sizeof *ts);
  char *meta = NULL;
  vg_status st = names && ts ? VG_OK : vg_fail(VG_ERR_NOMEM, "checkpoint save: out of memory");
  for (int i = 0; st == VG_OK && i < n; i++) {
    bool mod = i < sd.n;
    names[i] = prefixed(mod ? "model." : "optim.", mod ? sd.names[i] : os.names[i - sd.n]);
    ts[i] = mod ? sd.tensors[i] : os.tensors[i - sd.n];
    if (!names[i]) st = vg_fail(VG_ERR_NOMEM, "checkpoint save: out of memory");
  }
  if (st == VG_OK) {
    /* metadata: {"format": "vigil-checkpoint", "version": "1", "vigil.config": "<json>"
     *            [, "vigil.run_state": "<json>"]} */
    if (config_json) {
      vg_json *cfg = NULL;
      st = vg_json_parse(config_json, strlen(config_json), NULL, &cfg);
      if (st != VG_OK) vg_fail_prefix("checkpoint save: config is not valid JSON");
      vg_json_free(cfg);
    }
    vg_json_writer w;
    vg_jw_init(&w, 0);
    vg_jw_begin_object(&w);
    vg_jw_key(&w, "format");
    vg_jw_string(&w, "vigil-checkpoint");
    vg_jw_key(&w, "version");
    vg_jw_string(&w, "1");
    vg_jw_key(&w, "vigil.config");
    vg_jw_string(&w, config_json ? config_json : "");
    if (run_state) {
      vg_jw_key(&w, VG_CHECKPOINT_RUN_STATE);
      vg_jw_string(&w, run_state);
    }
    vg_jw_end_object(&w);
    if (st == VG_OK) {
      meta = vg_jw_finish(&w, NULL);
      if (!meta) st = vg_last_status() != VG_OK ? vg_last_status() : VG_ERR_NOMEM;
    } else {
      vg_jw_discard(&w);
    }
  }
  if (st == VG_OK) st = vg_st_save(path, n, (const char *const *)names, ts, meta);
  for (int i = 0; names && i < n; i++) free(names[i]);
  free(names);
  free(ts);
  free(meta);
  vg_nn_list_free(&sd);
  if (o) vg_nn_list_free(&os);
  return st;
}

/* checks then copies one list of named tensors from the file under a prefix */
static vg_status check_list(vg_st_file *f, const char *path, const char *pre, const vg_nn_list *l, int *matched) {
  for (int i = 0; i < l->n; i++) {
    char *name = prefixed(pre, l->names[i]);
    if (!name) return vg_fail(VG_ERR_NOMEM, "out of memory");
    int k = vg_st_find(f, name);
    vg_st_info info;
    vg_status st = VG_OK;
    if (k < 0) st = vg_fail(VG_ERR_FORMAT, "%s: checkpoint lacks %s", path, name);
    else if ((st = vg_st_info_at(f, k, &info)) == VG_OK) {
      const vg_tensor *t = l->tensors[i];
      bool same = info.ndim == t->ndim;
      for (int d = 0; same && d < t->ndim; d++) same = info.shape[d] == t->shape[d];
      if (!same) {
        char s[128];
        st = vg_fail(VG_ERR_FORMAT, "%s: %s has another shape in the checkpoint than the model's %s", path, name,
                     vg_shape_str(t, s, sizeof s));
      }
    }
    free(name);
    if (st != VG_OK) return st;
    (*matched)++;
  }
  return VG_OK;
}

static vg_status copy_list(vg_st_file *f, const char *pre, const vg_nn_list *l) {
  for (int i = 0; i < l->n; i++) {
    char *name = prefixed(pre, l->names[i]);
    if (!name) return vg_fail(VG_ERR_NOMEM, "out of memory");
    vg_status st = vg_st_get_into(f, name, l->tensors[i]);
    free(name);
    if (st != VG_OK) return st;
  }
  return VG_OK;
}

vg_status vg_nn_checkpoint_load(const char *path, vg_nn_module *m, vg_optim *o, char **config_out) {
  if (config_out) *config_out = NULL;
  if (!path || !m) return vg_fail(VG_ERR_ARG, "checkpoint load: NULL path or module");
  vg_st_file *f = NULL;
  vg_status st = vg_st_open(path, &f);
  if (st != VG_OK) return st;
  const char *fmt = vg_st_meta(f, "format");
  if (!fmt || strcmp(fmt, "vigil-checkpoint")) {
    vg_st_close(f);
    return vg_fail(VG_ERR_FORMAT, "%s: not a Vigil checkpoint (metadata format is %s%s%s)", path, fmt ? "'" : "",
                   fmt ? fmt : "missing", fmt ? "'" : "");
  }
  vg_nn_list sd = vg_nn_state_dict(m);
  vg_nn_list os = o ? vg_optim_state(o) : (vg_nn_list){0};
  int matched = 0, in_file_model = 0;
  st = check_list(f, path, "model.", &sd, &matched);
  if (st == VG_OK && o) st = check_list(f, path, "optim.", &os, &matched);
  /* unexpected: a model. (or, with an optimizer, optim.) entry nobody asked for */
  for (int i = 0; st == VG_OK && i < vg_st_count(f); i++) {
    const char *nm = vg_st_name(f, i);
    if (!strncmp(nm, "model.", 6) || (o && !strncmp(nm, "optim.", 6))) in_file_model++;
  }
  if (st == VG_OK && in_file_model != matched)
    st = vg_fail(VG_ERR_FORMAT, "%s: checkpoint has %d tensors the model%s does not (strict load)", path,
                 in_file_model - matched, o ? "/optimizer" : "");
  if (st == VG_OK) st = copy_list(f, "model.", &sd);
  if (st == VG_OK && o) st = copy_list(f, "optim.", &os);
  if (st == VG_OK && config_out) {
    const char *cfg = vg_st_meta(f, "vigil.config");
    *config_out = strdup(cfg ? cfg : "");
    if (!*config_out) st = vg_fail(VG_ERR_NOMEM, "out of memory");
  }
  vg_nn_list_free(&sd);
  if (o) vg_nn_list_free(&os);
  vg_st_close(f);
  return st;
}
