/* resnet.c — torchvision ResNet-18/50, Wide-ResNet-50-2/101-2 and ResNeXt-101 32x8d, truncated feature
 * extractors with torchvision's state-dict names (see backbones.h). */
#include "nn/backbones/backbones.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  const char *name;
  bool bottleneck;
  int blocks[4];
  int width_per_group;
  int groups;   /* of the Bottleneck's 3x3 conv (ResNeXt) */
} arch;

static const arch ARCHS[] = {
    {"resnet18", false, {2, 2, 2, 2}, 64, 1},
    {"resnet50", true, {3, 4, 6, 3}, 64, 1},
    {"wide_resnet50_2", true, {3, 4, 6, 3}, 128, 1},
    {"wide_resnet101_2", true, {3, 4, 23, 3}, 128, 1},
    {"resnext101_32x8d", true, {3, 4, 23, 3}, 8, 32},
};

typedef struct {
  const arch *a;
  unsigned mask;
  int last;              /* highest requested level: 0 = stem, 1..4 = layerK */
  int64_t channels[5];   /* output channels per level */
} resnet_ctx;

static const char *const LEVEL_NAMES[5] = {"stem", "layer1", "layer2", "layer3", "layer4"};

static vg_nn_module *gconv(int64_t in, int64_t out, int k, int stride, int groups, uint64_t seed) {
  vg_nn_module *c = vg_nn_conv2d_new(in, out, k, k,
                                     (vg_nn_conv2d_opts){.sh = stride, .sw = stride, .ph = k / 2,
                                                         .pw = k / 2, .groups = groups, .no_bias = true},
                                     seed);
  if (!c) return NULL;
  /* torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") */
  if (vg_init_kaiming_normal(vg_nn_param(c, "weight"), 0.0, true, VG_GAIN_RELU, seed) != VG_OK) {
    vg_nn_free(c);
    return NULL;
  }
  return c;
}

static vg_nn_module *conv(int64_t in, int64_t out, int k, int stride, uint64_t seed) {
  return gconv(in, out, k, stride, 0, seed);
}

static vg_nn_module *bn(int64_t c) { return vg_nn_batchnorm2d_new(c, 1e-5f, 0.1f, true, true); }

/* BasicBlock / Bottleneck forward: out = relu(main(x) + (downsample ? downsample(x) : x)) */
static vg_tensor *block_forward(vg_nn_module *m, const vg_tensor *x) {
  bool bottleneck = vg_nn_child_get(m, "conv3") != NULL;
  /* inference / frozen: the block's intermediates are freed when it returns */
  bool nest = !vg_nn_would_record(m, 1, &x);
  if (nest) vg_scope_begin();
  /* conv + BatchNorm (+ ReLU) pairs: folded into one conv2d in eval mode (vg_nn_conv_bn) */
  vg_tensor *y = vg_nn_conv_bn(vg_nn_child_get(m, "conv1"), vg_nn_child_get(m, "bn1"), x, VG_ACT_RELU);
  y = vg_nn_conv_bn(vg_nn_child_get(m, "conv2"), vg_nn_child_get(m, "bn2"), y,
                    bottleneck ? VG_ACT_RELU : VG_ACT_NONE);
  if (bottleneck) y = vg_nn_conv_bn(vg_nn_child_get(m, "conv3"), vg_nn_child_get(m, "bn3"), y, VG_ACT_NONE);
  vg_nn_module *ds = vg_nn_child_get(m, "downsample");
  const vg_tensor *id = ds ? vg_nn_forward(ds, x) : x;
  vg_tensor *out = vg_relu(vg_add(y, id));
  if (nest) vg_scope_end_keep(1, &out);
  return out;
}

static vg_nn_module *make_block(const arch *a, int64_t inplanes, int64_t planes, int stride,
                                uint64_t *seed) {
  /* torchvision: int(planes * (width_per_group / 64.)) * groups */
  int g = a->groups > 1 ? a->groups : 1;
  int64_t width = planes * a->width_per_group / 64 * g;
  int64_t out = a->bottleneck ? planes * 4 : planes;
  vg_nn_module *b = vg_nn_module_new(a->bottleneck ? "Bottleneck" : "BasicBlock", block_forward,
                                     NULL, NULL);
  if (!b) return NULL;
  if (a->bottleneck) {
    vg_nn_add_child(b, "conv1", conv(inplanes, width, 1, 1, (*seed)++));
    vg_nn_add_child(b, "bn1", bn(width));
    vg_nn_add_child(b, "conv2", gconv(width, width, 3, stride, g, (*seed)++));
    vg_nn_add_child(b, "bn2", bn(width));
    vg_nn_add_child(b, "conv3", conv(width, out, 1, 1, (*seed)++));
    vg_nn_add_child(b, "bn3", bn(out));
    vg_nn_add_child(b, "relu", vg_nn_relu_new());
  } else {
    vg_nn_add_child(b, "conv1", conv(inplanes, planes, 3, stride, (*seed)++));
    vg_nn_add_child(b, "bn1", bn(planes));
    vg_nn_add_child(b, "relu", vg_nn_relu_new());
    vg_nn_add_child(b, "conv2", conv(planes, planes, 3, 1, (*seed)++));
    vg_nn_add_child(b, "bn2", bn(planes));
  }
  if (stride != 1 || inplanes != out) {
    vg_nn_module *ds = vg_nn_sequential_new(2, (vg_nn_module *[]){
        conv(inplanes, out, 1, stride, (*seed)++), bn(out)});
    vg_nn_add_child(b, "downsample", ds);
  }
  return b;
}

static bool tree_ok(const vg_nn_module *m) {
  if (!m) return false;
  for (int i = 0; i < m->nchildren; i++)
    if (!tree_ok(m->children[i].m)) return false;
  return true;
}

static vg_tensor *resnet_forward(vg_nn_module *m, const vg_tensor *x) {
  /* vg_nn_forward on the whole model: the last requested feature map */
  resnet_ctx *c = m->ctx;
  vg_tensor *outs[5];
  if (vg_resnet_features(m, x, outs) != VG_OK) return NULL;
  int n = 0;
  for (int l = 0; l <= c->last; l++) n += (c->mask >> l) & 1u;
  return outs[n - 1];
}

vg_nn_module *vg_resnet_new(const char *name, unsigned layers_mask, uint64_t seed) {
  const arch *a = NULL;
  for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
    if (name && !strcmp(name, ARCHS[i].name)) a = &ARCHS[i];
  if (!a) {
    vg_fail(VG_ERR_ARG, "vg_resnet_new: unknown backbone '%s' (resnet18, resnet50, "
            "wide_resnet50_2, wide_resnet101_2, resnext101_32x8d)", name ? name : "(null)");
    return NULL;
  }
  if (layers_mask == 0 || layers_mask >= (1u << 5)) {
    vg_fail(VG_ERR_ARG, "vg_resnet_new: layers mask 0x%x (want a non-empty subset of stem, "
            "layer1..layer4)", layers_mask);
    return NULL;
  }
  resnet_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    vg_fail(VG_ERR_NOMEM, "vg_resnet_new: out of memory");
    return NULL;
  }
  c->a = a;
  c->mask = layers_mask;
  for (int l = 0; l < 5; l++)
    if (layers_mask & (1u << l)) c->last = l;
  vg_nn_module *m = vg_nn_module_new("ResNet", resnet_forward, c, free);
  if (!m) {
    free(c);
    return NULL;
  }
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  vg_nn_add_child(m, "conv1", vg_nn_conv2d_new(3, 64, 7, 7,
                  (vg_nn_conv2d_opts){.sh = 2, .sw = 2, .ph = 3, .pw = 3, .no_bias = true}, s));
  if (m->children[0].m)
    vg_init_kaiming_normal(vg_nn_param(m->children[0].m, "weight"), 0.0, true, VG_GAIN_RELU, s);
  s++;
  vg_nn_add_child(m, "bn1", bn(64));
  vg_nn_add_child(m, "relu", vg_nn_relu_new());
  c->channels[0] = 64;
  if (c->last >= 1)
    vg_nn_add_child(m, "maxpool", vg_nn_maxpool2d_new((vg_pool2d_opts){.kh = 3, .kw = 3, .sh = 2,
                                                                        .sw = 2, .ph = 1, .pw = 1}));
  int64_t inplanes = 64;
  for (int l = 1; l <= c->last; l++) {
    int64_t planes = 64 << (l - 1);
    vg_nn_module *layer = vg_nn_sequential_new(0, NULL);
    if (!layer) break;
    for (int b = 0; b < a->blocks[l - 1]; b++) {
      vg_nn_sequential_append(layer, make_block(a, inplanes, planes, (b == 0 && l > 1) ? 2 : 1, &s));
      inplanes = a->bottleneck ? planes * 4 : planes;
    }
    char nm[8];
    snprintf(nm, sizeof nm, "layer%d", l);
    vg_nn_add_child(m, nm, layer);
    c->channels[l] = inplanes;
  }
  if (!tree_ok(m) || m->nchildren != (c->last >= 1 ? 4 + c->last : 3)) {
    vg_fail_prefix("vg_resnet_new(%s)", name);
    vg_nn_free(m);
    return NULL;
  }
  vg_nn_train(m, false);
  vg_nn_requires_grad(m, false);
  return m;
}

bool vg_resnet_info(const vg_nn_module *m, const char **name, unsigned *layers_mask) {
  if (!m || m->forward != resnet_forward) return false;
  const resnet_ctx *c = m->ctx;
  if (name) *name = c->a->name;
  if (layers_mask) *layers_mask = c->mask;
  return true;
}

static int level_of(const resnet_ctx *c, int i) {
  for (int l = 0; l < 5; l++)
    if ((c->mask >> l) & 1u)
      if (i-- == 0) return l;
  return -1;
}

int vg_resnet_num_features(const vg_nn_module *m) {
  if (!vg_resnet_info(m, NULL, NULL)) return 0;
  return __builtin_popcount(((const resnet_ctx *)m->ctx)->mask);
}

int64_t vg_resnet_feature_channels(const vg_nn_module *m, int i) {
  if (!vg_resnet_info(m, NULL, NULL)) return 0;
  const resnet_ctx *c = m->ctx;
  int l = level_of(c, i);
  return l < 0 ? 0 : c->channels[l];
}

const char *vg_resnet_feature_name(const vg_nn_module *m, int i) {
  if (!vg_resnet_info(m, NULL, NULL)) return NULL;
  int l = level_of(m->ctx, i);
  return l < 0 ? NULL : LEVEL_NAMES[l];
}

/* a stage (Sequential of blocks); when nothing is recorded each block's output replaces
 * the previous one in place (vg_scope_reset_keep), so a stage holds one activation */
static vg_tensor *layer_forward(vg_nn_module *layer, vg_tensor *h) {
  if (!h || vg_nn_would_record(layer, 1, (const vg_tensor *const *)&h)) return vg_nn_forward(layer, h);
  vg_scope_begin();
  for (int i = 0; i < layer->nchildren && h; i++) {
    h = vg_nn_forward(layer->children[i].m, h);
    if (i + 1 < layer->nchildren) vg_scope_reset_keep(1, &h);
  }
  vg_scope_end_keep(1, &h);
  return h;
}

vg_status vg_resnet_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out) {
  if (!vg_resnet_info(m, NULL, NULL)) return vg_fail(VG_ERR_ARG, "vg_resnet_features: not a ResNet from vg_resnet_new");
  const resnet_ctx *c = m->ctx;
  if (!x || x->ndim != 4 || x->shape[1] != 3 || (x->dtype != VG_F32 && x->dtype != VG_F16))
    return vg_fail(VG_ERR_ARG, "vg_resnet_features: want an (N, 3, H, W) f32 (or CUDA f16) input");
  int n = 0;
  vg_tensor *h = vg_nn_conv_bn(vg_nn_child_get(m, "conv1"), vg_nn_child_get(m, "bn1"), x, VG_ACT_RELU);
  if (!h) return vg_fail_prefix("vg_resnet_features: stem");
  if (c->mask & 1u) out[n++] = h;
  if (c->last >= 1) h = vg_nn_forward(vg_nn_child_get(m, "maxpool"), h);
  for (int l = 1; l <= c->last; l++) {
    h = layer_forward(vg_nn_child_get(m, LEVEL_NAMES[l]), h);
    if (!h) return vg_fail_prefix("vg_resnet_features: %s", LEVEL_NAMES[l]);
    if ((c->mask >> l) & 1u) out[n++] = h;
  }
  return VG_OK;
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

vg_status vg_resnet_init_philox(vg_nn_module *m, uint64_t base_seed) {
  vg_nn_list sd = vg_nn_state_dict(m);
  vg_status st = VG_OK;
  for (int i = 0; i < sd.n && st == VG_OK; i++) {
    vg_tensor *t = sd.tensors[i];
    const char *nm = sd.names[i];
    if (t->dtype != VG_F32) continue;
    uint64_t seed = base_seed + (uint64_t)i;
    if (t->ndim == 4) {
      int64_t fan_in, fan_out;
      vg_init_fans(t, &fan_in, &fan_out);
      float b = (float)sqrt(3.0 / (double)fan_in);
      st = vg_uniform_(t, -b, b, seed);
    } else if (ends_with(nm, "running_mean") || ends_with(nm, "bias")) {
      st = vg_uniform_(t, -0.1f, 0.1f, seed);
    } else if (ends_with(nm, "running_var")) {
      st = vg_uniform_(t, 0.5f, 1.5f, seed);
    } else if (ends_with(nm, "weight")) {
      st = vg_uniform_(t, 0.5f, 1.0f, seed);
    } else {
      st = vg_fail(VG_ERR_ARG, "vg_resnet_init_philox: unexpected tensor %s", nm);
    }
  }
  vg_nn_list_free(&sd);
  return st;
}

/* ---------------------------------------------------------------- registry descriptors */
static vg_nn_module *rn_create(const vg_backbone_desc *d, int ntaps, const char *const *taps, uint64_t seed) {
  unsigned mask = 0;
  int prev = -1;
  for (int i = 0; i < ntaps; i++) {
    int l = -1;
    for (int k = 0; k < 5; k++)
      if (!strcmp(taps[i], LEVEL_NAMES[k])) l = k;
    if (l < 0) {
      vg_fail(VG_ERR_ARG, "backbone %s: no tap '%s' (it offers %s)", d->name, taps[i], d->taps_help);
      return NULL;
    }
    if (l <= prev) {
      vg_fail(VG_ERR_ARG, "backbone %s: taps must be distinct and in forward order ('%s' after '%s')",
              d->name, taps[i], LEVEL_NAMES[prev]);
      return NULL;
    }
    prev = l;
    mask |= 1u << l;
  }
  return vg_resnet_new(d->name, mask, seed);
}
static bool rn_owns(const vg_backbone_desc *d, const vg_nn_module *m) {
  const char *nm;
  return vg_resnet_info(m, &nm, NULL) && !strcmp(nm, d->name);
}
static int rn_stride(const vg_nn_module *m, int i) {
  if (!vg_resnet_info(m, NULL, NULL)) return 0;
  int l = level_of(m->ctx, i);
  return l < 0 ? 0 : 2 << l;
}
#define RESNET_DESC(ident, nparams)                                                                  \
  const vg_backbone_desc vg_backbone_##ident = {                                                    \
      .name = #ident, .family = "resnet", .num_params = nparams,                                   \
      .taps_help = "stem, layer1, layer2, layer3, layer4", .create = rn_create, .owns = rn_owns,   \
      .features = vg_resnet_features, .num_features = vg_resnet_num_features,                      \
      .feature_channels = vg_resnet_feature_channels, .feature_stride = rn_stride,                 \
      .feature_name = vg_resnet_feature_name, .init_philox = vg_resnet_init_philox}
RESNET_DESC(resnet18, 11689512);
RESNET_DESC(resnet50, 25557032);
RESNET_DESC(wide_resnet50_2, 68883240);
RESNET_DESC(wide_resnet101_2, 126886696);
RESNET_DESC(resnext101_32x8d, 88791336);
