/* densenet.c — torchvision DenseNet-201, a truncated feature extractor with torchvision's
 * state-dict names (see densenet.h). */
#include "nn/backbones/densenet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  int growth, bn_size, init_features;
  int blocks[4];
} dn_arch;

static const dn_arch DN_ARCHS[] = {
    {"densenet201", 32, 4, 64, {6, 12, 48, 32}},
};

/* levels in forward order */
enum { L_RELU0, L_POOL0, L_DB1, L_TR1, L_DB2, L_TR2, L_DB3, L_TR3, L_DB4, L_NORM5, NLEVELS };
static const char *const DN_LEVELS[NLEVELS] = {
    "features.relu0",       "features.pool0",       "features.denseblock1", "features.transition1",
    "features.denseblock2", "features.transition2", "features.denseblock3", "features.transition3",
    "features.denseblock4", "features.norm5"};
static const int DN_STRIDE[NLEVELS] = {2, 4, 4, 8, 8, 16, 16, 32, 32, 32};
#define DN_TAPS_HELP                                                                                      \
  "features.relu0, features.pool0, features.denseblock1..4, features.transition1..3, features.norm5"

typedef struct {
  const dn_arch *a;
  int ntaps;
  int level[NLEVELS];          /* level of tap i */
  int last;                    /* highest level built */
  int64_t channels[NLEVELS];   /* output channels per level */
} dn_ctx;

static vg_nn_module *dn_conv(int64_t in, int64_t out, int k, int stride, uint64_t seed) {
  vg_nn_module *c = vg_nn_conv2d_new(in, out, k, k,
                                     (vg_nn_conv2d_opts){.sh = stride, .sw = stride, .ph = k / 2, .pw = k / 2,
                                                         .no_bias = true},
                                     seed);
  /* torchvision: nn.init.kaiming_normal_(weight) (fan_in, gain sqrt 2) */
  if (c && vg_init_kaiming_normal(vg_nn_param(c, "weight"), 0.0, false, VG_GAIN_RELU, seed) != VG_OK) {
    vg_nn_free(c);
    return NULL;
  }
  return c;
}

static vg_nn_module *dn_bn(int64_t c) { return vg_nn_batchnorm2d_new(c, 1e-5f, 0.1f, true, true); }

/* relu(bn(x)): BN in eval mode is a per-channel affine map */
static vg_tensor *bn_relu(vg_nn_module *bn, const vg_tensor *x) { return vg_relu(vg_nn_forward(bn, x)); }

/* _DenseLayer: conv2(relu2(norm2(conv1(relu1(norm1(x)))))) -> growth new channels */
static vg_tensor *layer_forward(vg_nn_module *m, const vg_tensor *x) {
  bool nest = !vg_nn_would_record(m, 1, &x);
  if (nest) vg_scope_begin();
  vg_tensor *h = bn_relu(vg_nn_child_get(m, "norm1"), x);
  h = vg_nn_conv_bn(vg_nn_child_get(m, "conv1"), vg_nn_child_get(m, "norm2"), h, VG_ACT_RELU);
  h = vg_nn_forward(vg_nn_child_get(m, "conv2"), h);
  if (nest) vg_scope_end_keep(1, &h);
  return h;
}

/* _DenseBlock: cat(x, new_1, ..., new_N); layer k sees cat(x, new_1, ..., new_{k-1}). The
 * concatenation grows one layer at a time (BN is per channel, so this equals torchvision's
 * torch.cat of the list); without autograd only the running concatenation is kept. */
static vg_tensor *block_forward(vg_nn_module *m, const vg_tensor *x) {
  bool nest = !vg_nn_would_record(m, 1, &x);
  if (nest) vg_scope_begin();
  vg_tensor *cur = (vg_tensor *)x;
  for (int i = 0; i < m->nchildren && cur; i++) {
    vg_tensor *nw = vg_nn_forward(m->children[i].m, cur);
    cur = nw ? vg_concat(2, (vg_tensor *[]){cur, nw}, 1) : NULL;
    if (nest && cur && i + 1 < m->nchildren) vg_scope_reset_keep(1, &cur);
  }
  if (nest) vg_scope_end_keep(1, &cur);
  return cur;
}

/* _Transition: pool(conv(relu(norm(x)))) */
static vg_tensor *transition_forward(vg_nn_module *m, const vg_tensor *x) {
  bool nest = !vg_nn_would_record(m, 1, &x);
  if (nest) vg_scope_begin();
  vg_tensor *h = bn_relu(vg_nn_child_get(m, "norm"), x);
  h = vg_nn_forward(vg_nn_child_get(m, "conv"), h);
  h = vg_nn_forward(vg_nn_child_get(m, "pool"), h);
  if (nest) vg_scope_end_keep(1, &h);
  return h;
}

static vg_tensor *features_forward(vg_nn_module *m, const vg_tensor *x);

static vg_tensor *densenet_forward(vg_nn_module *m, const vg_tensor *x) {
  /* vg_nn_forward on the whole model: the last tap's map */
  dn_ctx *c = m->ctx;
  vg_tensor *outs[NLEVELS];
  if (vg_densenet_features(m, x, outs) != VG_OK) return NULL;
  return outs[c->ntaps - 1];
}

static vg_tensor *features_forward(vg_nn_module *m, const vg_tensor *x) {
  (void)m;
  (void)x;
  vg_fail(VG_ERR_ARG, "DenseNet features: run the model (vg_densenet_features), not its features module");
  return NULL;
}

static bool tree_ok(const vg_nn_module *m) {
  if (!m) return false;
  for (int i = 0; i < m->nchildren; i++)
    if (!tree_ok(m->children[i].m)) return false;
  return true;
}

static int level_by_name(const char *t) {
  for (int l = 0; l < NLEVELS; l++)
    if (!strcmp(t, DN_LEVELS[l])) return l;
  return -1;
}

vg_nn_module *vg_densenet_new(const char *name, int ntaps, const char *const *taps, uint64_t seed) {
  const dn_arch *a = NULL;
  for (size_t i = 0; i < sizeof DN_ARCHS / sizeof DN_ARCHS[0]; i++)
    if (name && !strcmp(name, DN_ARCHS[i].name)) a = &DN_ARCHS[i];
  if (!a) {
    vg_fail(VG_ERR_ARG, "vg_densenet_new: unknown backbone '%s' (densenet201)", name ? name : "(null)");
    return NULL;
  }
  if (ntaps < 1 || ntaps > NLEVELS || !taps) {
    vg_fail(VG_ERR_ARG, "backbone %s: %d taps (want 1..%d of %s)", a->name, ntaps, NLEVELS, DN_TAPS_HELP);
    return NULL;
  }
  dn_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    vg_fail(VG_ERR_NOMEM, "vg_densenet_new: out of memory");
    return NULL;
  }
  c->a = a;
  c->ntaps = ntaps;
  int prev = -1;
  for (int i = 0; i < ntaps; i++) {
    int l = taps[i] ? level_by_name(taps[i]) : -1;
    if (l < 0) {
      vg_fail(VG_ERR_ARG, "backbone %s: no tap '%s' (it offers %s)", a->name, taps[i] ? taps[i] : "(null)",
              DN_TAPS_HELP);
      free(c);
      return NULL;
    }
    if (l <= prev) {
      vg_fail(VG_ERR_ARG, "backbone %s: taps must be distinct and in forward order ('%s' after '%s')", a->name,
              taps[i], DN_LEVELS[prev]);
      free(c);
      return NULL;
    }
    c->level[i] = prev = l;
  }
  c->last = prev;
  vg_nn_module *m = vg_nn_module_new("DenseNet", densenet_forward, c, free);
  if (!m) {
    free(c);
    return NULL;
  }
  vg_nn_module *f = vg_nn_module_new("Sequential", features_forward, NULL, NULL);
  vg_nn_add_child(m, "features", f);
  if (!f) goto fail;
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  int64_t C = a->init_features;
  vg_nn_add_child(f, "conv0", dn_conv(3, C, 7, 2, s++));
  vg_nn_add_child(f, "norm0", dn_bn(C));
  vg_nn_add_child(f, "relu0", vg_nn_relu_new());
  c->channels[L_RELU0] = c->channels[L_POOL0] = C;
  if (c->last >= L_POOL0)
    vg_nn_add_child(f, "pool0", vg_nn_maxpool2d_new((vg_pool2d_opts){.kh = 3, .kw = 3, .sh = 2, .sw = 2,
                                                                      .ph = 1, .pw = 1}));
  for (int b = 0; b < 4; b++) {
    int lb = L_DB1 + 2 * b, lt = lb + 1;
    if (c->last < lb) break;
    vg_nn_module *blk = vg_nn_module_new("_DenseBlock", block_forward, NULL, NULL);
    for (int k = 0; blk && k < a->blocks[b]; k++) {
      int64_t in = C + (int64_t)k * a->growth, mid = (int64_t)a->bn_size * a->growth;
      vg_nn_module *ly = vg_nn_module_new("_DenseLayer", layer_forward, NULL, NULL);
      if (ly) {
        vg_nn_add_child(ly, "norm1", dn_bn(in));
        vg_nn_add_child(ly, "relu1", vg_nn_relu_new());
        vg_nn_add_child(ly, "conv1", dn_conv(in, mid, 1, 1, s++));
        vg_nn_add_child(ly, "norm2", dn_bn(mid));
        vg_nn_add_child(ly, "relu2", vg_nn_relu_new());
        vg_nn_add_child(ly, "conv2", dn_conv(mid, a->growth, 3, 1, s++));
      }
      char nm[24];
      snprintf(nm, sizeof nm, "denselayer%d", k + 1);
      vg_nn_add_child(blk, nm, ly);
    }
    char nm[24];
    snprintf(nm, sizeof nm, "denseblock%d", b + 1);
    vg_nn_add_child(f, nm, blk);
    C += (int64_t)a->blocks[b] * a->growth;
    c->channels[lb] = C;
    if (b == 3) {
      c->channels[L_NORM5] = C;
      if (c->last >= L_NORM5) vg_nn_add_child(f, "norm5", dn_bn(C));
      break;
    }
    if (c->last < lt) break;
    vg_nn_module *tr = vg_nn_module_new("_Transition", transition_forward, NULL, NULL);
    if (tr) {
      vg_nn_add_child(tr, "norm", dn_bn(C));
      vg_nn_add_child(tr, "relu", vg_nn_relu_new());
      vg_nn_add_child(tr, "conv", dn_conv(C, C / 2, 1, 1, s++));
      vg_nn_add_child(tr, "pool", vg_nn_avgpool2d_new((vg_pool2d_opts){.kh = 2, .kw = 2, .sh = 2, .sw = 2,
                                                                        .count_include_pad = true}));
    }
    snprintf(nm, sizeof nm, "transition%d", b + 1);
    vg_nn_add_child(f, nm, tr);
    C /= 2;
    c->channels[lt] = C;
  }
  if (!tree_ok(m)) goto fail;
  vg_nn_train(m, false);
  vg_nn_requires_grad(m, false);
  return m;
fail:
  vg_fail_prefix("vg_densenet_new(%s)", name);
  vg_nn_free(m);
  return NULL;
}

bool vg_densenet_info(const vg_nn_module *m, const char **name) {
  if (!m || m->forward != densenet_forward) return false;
  if (name) *name = ((const dn_ctx *)m->ctx)->a->name;
  return true;
}

static const dn_ctx *ctx_of(const vg_nn_module *m, int i) {
  if (!vg_densenet_info(m, NULL)) return NULL;
  const dn_ctx *c = m->ctx;
  return i >= 0 && i < c->ntaps ? c : NULL;
}

int vg_densenet_num_features(const vg_nn_module *m) {
  return vg_densenet_info(m, NULL) ? ((const dn_ctx *)m->ctx)->ntaps : 0;
}

int64_t vg_densenet_feature_channels(const vg_nn_module *m, int i) {
  const dn_ctx *c = ctx_of(m, i);
  return c ? c->channels[c->level[i]] : 0;
}

int vg_densenet_feature_stride(const vg_nn_module *m, int i) {
  const dn_ctx *c = ctx_of(m, i);
  return c ? DN_STRIDE[c->level[i]] : 0;
}

const char *vg_densenet_feature_name(const vg_nn_module *m, int i) {
  const dn_ctx *c = ctx_of(m, i);
  return c ? DN_LEVELS[c->level[i]] : NULL;
}

vg_status vg_densenet_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out) {
  if (!vg_densenet_info(m, NULL))
    return vg_fail(VG_ERR_ARG, "vg_densenet_features: not a DenseNet from vg_densenet_new");
  const dn_ctx *c = m->ctx;
  if (!x || x->ndim != 4 || x->shape[1] != 3 || (x->dtype != VG_F32 && x->dtype != VG_F16))
    return vg_fail(VG_ERR_ARG, "vg_densenet_features: want an (N, 3, H, W) f32 (or CUDA f16) input");
  vg_nn_module *f = vg_nn_child_get(m, "features");
  int k = 0;
  vg_tensor *h = vg_nn_conv_bn(vg_nn_child_get(f, "conv0"), vg_nn_child_get(f, "norm0"), x, VG_ACT_RELU);
  for (int l = L_RELU0; h; l++) {
    if (k < c->ntaps && c->level[k] == l) out[k++] = h;
    if (l == c->last) break;
    const char *child = DN_LEVELS[l + 1] + strlen("features.");
    h = vg_nn_forward(vg_nn_child_get(f, child), h);
    if (!h) return vg_fail_prefix("vg_densenet_features: %s", DN_LEVELS[l + 1]);
  }
  if (!h) return vg_fail_prefix("vg_densenet_features: stem");
  return VG_OK;
}

bool vg_densenet_ignores_key(const vg_nn_module *m, const char *key) {
  if (!vg_densenet_info(m, NULL) || !key) return false;
  if (!strncmp(key, "classifier.", 11)) return true;
  if (strncmp(key, "features.", 9)) return false;
  const char *s = key + 9, *dot = strchr(s, '.');
  size_t n = dot ? (size_t)(dot - s) : strlen(s);
  char child[32];
  if (!dot || n >= sizeof child) return false;
  memcpy(child, s, n);
  child[n] = 0;
  /* a stage of torchvision's features that this truncated model did not build */
  static const char *const STAGES[] = {"pool0", "denseblock1", "transition1", "denseblock2", "transition2",
                                       "denseblock3", "transition3", "denseblock4", "norm5"};
  for (size_t i = 0; i < sizeof STAGES / sizeof STAGES[0]; i++)
    if (!strcmp(child, STAGES[i])) return !vg_nn_child_get(vg_nn_child_get(m, "features"), child);
  return false;
}

/* ---------------------------------------------------------------- registry descriptor */
static vg_nn_module *dn_create(const vg_backbone_desc *d, int ntaps, const char *const *taps, uint64_t seed) {
  return vg_densenet_new(d->name, ntaps, taps, seed);
}
static bool dn_owns(const vg_backbone_desc *d, const vg_nn_module *m) {
  const char *nm;
  return vg_densenet_info(m, &nm) && !strcmp(nm, d->name);
}
const vg_backbone_desc vg_backbone_densenet201 = {
    .name = "densenet201", .family = "densenet", .num_params = 20013928, .taps_help = DN_TAPS_HELP,
    .create = dn_create, .owns = dn_owns, .features = vg_densenet_features,
    .num_features = vg_densenet_num_features, .feature_channels = vg_densenet_feature_channels,
    .feature_stride = vg_densenet_feature_stride, .feature_name = vg_densenet_feature_name,
    .init_philox = vg_resnet_init_philox};
