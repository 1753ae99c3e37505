/* load.c — copying torchvision/timm checkpoints (.pth zip, .safetensors) into a module by
 * state-dict name (see backbones.h). */
#include "nn/backbones/backbones.h"
#include "nn/backbones/densenet.h"
#include "nn/backbones/mobilenet.h"
#include "nn/backbones/vit.h"
#include "nn/pth.h"
#include "nn/safetensors.h"
#include "nn/state_dict.h"
#include "base/sha256.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const PREFIXES[] = {"module.", "model.", "backbone.", NULL};

/* scripts/tables/weights.json's hashes (tests/test_reproduce.c checks the two agree) */
static const struct { const char *name, *sha256; bool prefix_only; } PUBLISHED[] = {
    {"resnet18-f37072fd.pth", "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec", false},
    {"wide_resnet50_2-95faca4d.pth", "95faca4d", true},
    {"wide_resnet101_2-32ee1156.pth", "32ee1156", true},
    {"mobilenet_v3_large-8738ca79.pth", "8738ca79", true},
    {"resnext101_32x8d-8ba56ff5.pth", "8ba56ff5", true},
    {"densenet201-c1103571.pth", "c1103571", true},
};

const char *vg_published_sha256(const char *base_name, bool *prefix_only) {
  for (size_t i = 0; base_name && i < sizeof PUBLISHED / sizeof PUBLISHED[0]; i++)
    if (!strcmp(base_name, PUBLISHED[i].name)) {
      if (prefix_only) *prefix_only = PUBLISHED[i].prefix_only;
      return PUBLISHED[i].sha256;
    }
  return NULL;
}

vg_status vg_check_published_weights(const char *path) {
  const char *base = path ? strrchr(path, '/') : NULL;
  base = base ? base + 1 : path;
  bool prefix = false;
  const char *want = vg_published_sha256(base, &prefix);
  if (!want) return VG_OK;
  char hex[65];
  vg_status st = vg_sha256_file(path, hex);
  if (st != VG_OK) return st;
  if (prefix ? !strncmp(hex, want, strlen(want)) : !strcmp(hex, want)) return VG_OK;
  return vg_fail(VG_ERR_FORMAT,
                 "%s: not the published file of this name: its SHA-256 is %s, the published one %s%s (a corrupt or "
                 "different download; fetch it again, or rename the file to load other weights)",
                 path, hex, want, prefix ? "... (prefix)" : "");
}

/* keys a truncated backbone never has: ResNet fc.*, avgpool.*, layers that were not built;
 * DenseNet, MobileNetV3 and ViT likewise (their own rules) */
static bool ignored(const vg_nn_module *m, const char *key) {
  if (vg_densenet_info(m, NULL)) return vg_densenet_ignores_key(m, key);
  if (vg_mobilenet_v3_info(m, NULL)) return vg_mobilenet_v3_ignores_key(m, key);
  if (vg_vit_info(m, NULL)) return vg_vit_key_unbuilt(m, key);
  if (!vg_resnet_info(m, NULL, NULL)) return false;
  const char *dot = strchr(key, '.');
  size_t n = dot ? (size_t)(dot - key) : strlen(key);
  char first[16];
  if (n >= sizeof first) return false;
  memcpy(first, key, n);
  first[n] = 0;
  if (!strcmp(first, "fc") || !strcmp(first, "avgpool")) return true;
  return !strncmp(first, "layer", 5) && !vg_nn_child_get(m, first);
}

typedef vg_status (*fetch_fn)(void *src, int i, vg_tensor *dst);

/* torchvision's DenseNet checkpoints keep pre-0.4 names: "...denselayerN.norm.1.weight" for
 * "...denselayerN.norm1.weight" (densenet.py _load_state_dict: the regex
 * ^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$,
 * the two groups joined without the dot). The new name (malloc'd), or NULL when key does not
 * match. Applied to every key of every model: no other network has such names. */
static char *old_densenet_key(const char *key) {
  static const char *const SUFFIX[] = {"weight", "bias", "running_mean", "running_var"};
  static const char *const MOD[] = {"norm", "relu", "conv"};
  size_t n = strlen(key);
  for (size_t i = 0; i < 4; i++) {
    size_t sl = strlen(SUFFIX[i]);
    /* ".<mod>.<1|2>.<suffix>" at the end, "denselayer<digits>" right before */
    if (n < sl + 7 + 10 + 1 || strcmp(key + n - sl, SUFFIX[i])) continue;
    size_t p = n - sl;   /* start of the suffix */
    if (key[p - 1] != '.' || (key[p - 2] != '1' && key[p - 2] != '2') || key[p - 3] != '.') continue;
    size_t q = p - 3;    /* the dot before <1|2> */
    for (size_t j = 0; j < 3; j++) {
      size_t ml = strlen(MOD[j]);
      if (q < ml + 1 || strncmp(key + q - ml, MOD[j], ml) || key[q - ml - 1] != '.') continue;
      size_t d = q - ml - 1, e = d;   /* digits end at d */
      while (e > 0 && key[e - 1] >= '0' && key[e - 1] <= '9') e--;
      if (e == d || e < 10 || strncmp(key + e - 10, "denselayer", 10)) continue;
      char *r = malloc(n);
      if (!r) return NULL;
      memcpy(r, key, q);
      strcpy(r + q, key + q + 1);   /* drop the dot between <mod> and <1|2> */
      return r;
    }
  }
  return NULL;
}

static bool ends_with_nbt(const char *s) {
  size_t n = strlen(s), k = strlen(".num_batches_tracked");
  return n >= k && !strcmp(s + n - k, ".num_batches_tracked");
}

/* have[i]: stripped names; fetch copies entry i into dst (shape checked by fetch) */
static vg_status load_common(vg_nn_module *m, int n_have, const char **have, fetch_fn fetch, void *src,
                             bool strict, const char *path) {
  vg_nn_list sd = vg_nn_state_dict(m);
  const char **keep = malloc(sizeof(char *) * (size_t)(n_have + 1));
  int *keep_i = malloc(sizeof(int) * (size_t)(n_have + 1));
  char **renamed = calloc((size_t)(n_have + 1), sizeof(char *));
  int nk = 0;
  vg_status st = VG_OK;
  if (!keep || !keep_i || !renamed) st = vg_fail(VG_ERR_NOMEM, "out of memory");
  bool file_nbt = false;   /* an old checkpoint (torch < 0.4) has no num_batches_tracked */
  for (int i = 0; st == VG_OK && i < n_have; i++) {
    const char *k = have[i];
    if ((renamed[i] = old_densenet_key(k)) != NULL) k = renamed[i];
    file_nbt = file_nbt || ends_with_nbt(k);
    if (!ignored(m, k)) keep[nk] = k, keep_i[nk++] = i;
  }
  /* as torch's BatchNorm loads such a checkpoint: the missing counters keep their value */
  const char **want = malloc(sizeof(char *) * (size_t)(sd.n + 1));
  int nw = 0;
  if (st == VG_OK && !want) st = vg_fail(VG_ERR_NOMEM, "out of memory");
  for (int j = 0; st == VG_OK && j < sd.n; j++)
    if (file_nbt || !ends_with_nbt(sd.names[j]) || sd.tensors[j]->dtype == VG_F32) want[nw++] = sd.names[j];
  vg_sd_report rep = {0};
  if (st == VG_OK) st = vg_sd_match(want, (size_t)nw, keep, (size_t)nk, strict, &rep);
  /* non-strict tolerates a few missing keys, not a file that has none of the model's: a
   * wrong file (another model's checkpoint) would silently leave the weights random */
  if (st == VG_OK && !strict && nw > 0 && rep.n_missing == (size_t)nw)
    st = vg_fail(VG_ERR_FORMAT, "none of the model's %d keys (%s, ...) is in the file (%d keys, after stripping "
                 "module./model./backbone.: %s%s): not weights for this network", sd.n, sd.names[0], nk,
                 nk ? keep[0] : "none", nk > 1 ? ", ..." : "");
  for (int j = 0; st == VG_OK && j < sd.n; j++) {
    int found = -1;
    for (int i = 0; i < nk && found < 0; i++)
      if (!strcmp(keep[i], sd.names[j])) found = keep_i[i];
    if (found < 0) continue;   /* missing (not strict) */
    st = fetch(src, found, sd.tensors[j]);
    if (st != VG_OK) vg_fail_prefix("%s", sd.names[j]);
  }
  if (st != VG_OK) vg_fail_prefix("loading %s", path);
  vg_sd_report_free(&rep);
  for (int i = 0; renamed && i < n_have; i++) free(renamed[i]);
  free(renamed);
  free(want);
  free(keep);
  free(keep_i);
  vg_nn_list_free(&sd);
  return st;
}

static vg_status copy_checked(vg_tensor *dst, const vg_tensor *t) {
  if (!t) return vg_fail(VG_ERR_FORMAT, "not a tensor");
  bool same = t->ndim == dst->ndim;
  for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == dst->shape[d];
  if (!same) {
    char a[96], b[96];
    return vg_fail(VG_ERR_FORMAT, "shape %s in the checkpoint, %s in the model",
                   vg_shape_str(t, a, sizeof a), vg_shape_str(dst, b, sizeof b));
  }
  return vg_copy_(dst, t);
}

static vg_status fetch_pth(void *src, int i, vg_tensor *dst) {
  const vg_pth_dict *d = src;
  const vg_pth_entry *e = &d->entries[i];
  if (e->kind != VG_PTH_TENSOR) return vg_fail(VG_ERR_FORMAT, "not a tensor");
  return copy_checked(dst, e->tensor);
}

vg_status vg_nn_load_state_pth(vg_nn_module *m, const char *path, bool strict) {
  /* a .safetensors path (--weights of fastflow/cflow come here) is read as one, not read
   * whole into memory as a zip and refused */
  size_t pl = path ? strlen(path) : 0;
  if (pl >= 12 && !strcmp(path + pl - 12, ".safetensors")) return vg_nn_load_state_safetensors(m, path, strict);
  vg_status st = vg_check_published_weights(path);
  if (st != VG_OK) return st;
  vg_pth_opts o = {.to_f32 = true};
  vg_pth_dict *d = NULL;
  st = vg_pth_load(path, &o, &d);
  if (st != VG_OK) return st;
  st = vg_pth_strip_prefixes(d, PREFIXES);
  const char **names = malloc(sizeof(char *) * (d->count + 1));
  if (st == VG_OK && !names) st = vg_fail(VG_ERR_NOMEM, "out of memory");
  if (st == VG_OK) {
    for (size_t i = 0; i < d->count; i++) names[i] = d->entries[i].name;
    st = load_common(m, (int)d->count, names, fetch_pth, d, strict, path);
  }
  free(names);
  vg_pth_free(d);
  return st;
}

typedef struct {
  vg_st_file *f;
  const char **orig;
} st_src;

static vg_status fetch_st(void *src, int i, vg_tensor *dst) {
  st_src *s = src;
  return vg_st_get_into(s->f, s->orig[i], dst);   /* checks the shape */
}

vg_status vg_nn_load_state_safetensors(vg_nn_module *m, const char *path, bool strict) {
  vg_st_file *f = NULL;
  vg_status st = vg_st_open(path, &f);
  if (st != VG_OK) return st;
  int n = vg_st_count(f);
  const char **orig = malloc(sizeof(char *) * (size_t)(n + 1));
  const char **names = malloc(sizeof(char *) * (size_t)(n + 1));
  if (!orig || !names) st = vg_fail(VG_ERR_NOMEM, "out of memory");
  for (int i = 0; st == VG_OK && i < n; i++) {
    orig[i] = vg_st_name(f, i);
    names[i] = vg_sd_strip_prefix(orig[i], PREFIXES);
  }
  st_src s = {f, orig};
  if (st == VG_OK) st = load_common(m, n, names, fetch_st, &s, strict, path);
  free(orig);
  free(names);
  vg_st_close(f);
  return st;
}

vg_status vg_nn_load_state_file(vg_nn_module *m, const char *path, bool strict) {
  size_t n = path ? strlen(path) : 0;
  if (n >= 12 && !strcmp(path + n - 12, ".safetensors")) return vg_nn_load_state_safetensors(m, path, strict);
  return vg_nn_load_state_pth(m, path, strict);
}

vg_status vg_nn_load_state_pth_prefixed(vg_nn_module *m, const char *path, const char *const *strip,
                                        const char *optional, const char *who) {
  vg_pth_opts o = {.to_f32 = true};
  vg_pth_dict *d = NULL;
  vg_status st = vg_pth_load(path, &o, &d);
  if (st != VG_OK) {
    /* a Lightning .ckpt as the Trainer writes it: hyper_parameters, loops, callbacks ... name
     * other globals (AttributeDict, anomalib's classes); its "state_dict" entry alone is read */
    char first[512];
    snprintf(first, sizeof first, "%s", vg_last_error());
    o.state_dict_only = true;
    if ((st = vg_pth_load(path, &o, &d)) != VG_OK) return vg_fail(st, "%s", first);
  }
  vg_nn_list sd = vg_nn_state_dict(m);
  int64_t *src = malloc(sizeof *src * (size_t)(sd.n + 1));
  if (!src) { vg_nn_list_free(&sd); vg_pth_free(d); return vg_fail(VG_ERR_NOMEM, "%s: out of memory", who); }
  for (int j = 0; j < sd.n; j++) src[j] = -1;
  for (size_t i = 0; i < d->count && st == VG_OK; i++) {
    const vg_pth_entry *e = &d->entries[i];
    if (e->kind != VG_PTH_TENSOR) continue;
    const char *n = e->name;
    for (int k = 0; strip && strip[k]; k++)
      if (!strncmp(n, strip[k], strlen(strip[k]))) n += strlen(strip[k]);
    for (int j = 0; j < sd.n; j++) {
      if (strcmp(sd.names[j], n)) continue;
      if (sd.tensors[j]->dtype != VG_F32) break;   /* num_batches_tracked */
      if (!vg_same_shape(sd.tensors[j], e->tensor)) {
        char b1[96], b2[96];
        st = vg_fail(VG_ERR_FORMAT, "%s: '%s' has shape %s, the model wants %s", who, e->name,
                     vg_shape_str(e->tensor, b1, sizeof b1), vg_shape_str(sd.tensors[j], b2, sizeof b2));
      }
      src[j] = (int64_t)i;
      break;
    }
  }
  size_t ol = optional ? strlen(optional) : 0;
  for (int j = 0; j < sd.n && st == VG_OK; j++)
    if (src[j] < 0 && sd.tensors[j]->dtype == VG_F32 && !(optional && !strncmp(sd.names[j], optional, ol)))
      st = vg_fail(VG_ERR_FORMAT, "%s: '%s' missing from %s", who, sd.names[j], path);
  for (int j = 0; j < sd.n && st == VG_OK; j++)
    if (src[j] >= 0) vg_copy_(sd.tensors[j], d->entries[src[j]].tensor);
  free(src);
  vg_nn_list_free(&sd);
  vg_pth_free(d);
  return st;
}
