/* mobilenet.c — torchvision mobilenet_v3_large, truncated feature extractor with
 * torchvision's state-dict names and CFLOW-AD's projection taps (see mobilenet.h). */
#include "nn/backbones/mobilenet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* torchvision _mobilenet_v3_conf("mobilenet_v3_large"): input, kernel, expanded, output,
 * SE, hardswish (else ReLU), stride (dilation 1) */
typedef struct {
  int in, k, exp, out;
  bool se, hs;
  int stride;
} bneck;

static const bneck LARGE[15] = {
    {16, 3, 16, 16, false, false, 1},   {16, 3, 64, 24, false, false, 2},   {24, 3, 72, 24, false, false, 1},
    {24, 5, 72, 40, true, false, 2},    {40, 5, 120, 40, true, false, 1},   {40, 5, 120, 40, true, false, 1},
    {40, 3, 240, 80, false, true, 2},   {80, 3, 200, 80, false, true, 1},   {80, 3, 184, 80, false, true, 1},
    {80, 3, 184, 80, false, true, 1},   {80, 3, 480, 112, true, true, 1},   {112, 3, 672, 112, true, true, 1},
    {112, 5, 672, 160, true, true, 2},  {160, 5, 960, 160, true, true, 1},  {160, 5, 960, 160, true, true, 1},
};
enum { NSTAGE = 17, MAXTAP = 2 * NSTAGE };

typedef struct {
  const vg_backbone_desc *d;
  int last;                  /* last features[K] built */
  int ntaps;
  int tap_k[MAXTAP];         /* features index of tap i */
  bool tap_proj[MAXTAP];     /* projection conv output (before BN, residual) */
  char tap_name[MAXTAP][24]; /* canonical: "features.K" / "features.K.proj" */
} mnv3_ctx;

static const char *const TAPS_HELP = "features.0 .. features.16, features.1.proj .. features.15.proj (the projection "
                                     "conv before its BN = features.K.block.J.0; CFLOW-AD's taps)";

/* torchvision _make_divisible(v, 8) */
static int make_divisible(int v) {
  int r = (v + 4) / 8 * 8;
  if (r < 8) r = 8;
  if (r < 0.9 * v) r += 8;
  return r;
}

static int stage_channels(int k) { return k == 0 ? 16 : k == 16 ? 960 : LARGE[k - 1].out; }
static int stage_stride(int k) {
  int s = 2;
  for (int i = 1; i <= k && i <= 15; i++) s *= LARGE[i - 1].stride;
  return s;
}
/* index J of the projection in features[k].block */
static int proj_index(int k) {
  const bneck *c = &LARGE[k - 1];
  return (c->exp != c->in) + 1 + c->se;
}

/* torchvision: kaiming_normal_(mode="fan_out") (gain sqrt 2), bias zeros */
static vg_nn_module *conv(int64_t in, int64_t out, int k, int stride, int groups, bool bias, uint64_t seed) {
  vg_nn_module *c = vg_nn_conv2d_new(in, out, k, k,
                                     (vg_nn_conv2d_opts){.sh = stride, .sw = stride, .ph = (k - 1) / 2,
                                                         .pw = (k - 1) / 2, .groups = groups, .no_bias = !bias},
                                     seed);
  if (!c) return NULL;
  if (vg_init_kaiming_normal(vg_nn_param(c, "weight"), 0.0, true, VG_GAIN_RELU, seed) != VG_OK ||
      (bias && vg_init_zeros(vg_nn_param(c, "bias")) != VG_OK)) {
    vg_nn_free(c);
    return NULL;
  }
  return c;
}

static vg_nn_module *bn(int64_t c) { return vg_nn_batchnorm2d_new(c, 1e-3f, 0.01f, true, true); }

/* Conv2dNormActivation: children "0" (conv), "1" (BN); the activation has no state */
static vg_nn_module *conv_bn(int64_t in, int64_t out, int k, int stride, int groups, uint64_t *seed) {
  return vg_nn_sequential_new(2, (vg_nn_module *[]){conv(in, out, k, stride, groups, false, (*seed)++), bn(out)});
}

static vg_nn_module *make_block(const bneck *c, uint64_t *seed) {
  vg_nn_module *b = vg_nn_module_new("InvertedResidual", NULL, NULL, NULL);
  vg_nn_module *seq = vg_nn_sequential_new(0, NULL);
  if (!b || !seq) {
    vg_nn_free(b);
    vg_nn_free(seq);
    return NULL;
  }
  vg_nn_add_child(b, "block", seq);
  if (c->exp != c->in) vg_nn_sequential_append(seq, conv_bn(c->in, c->exp, 1, 1, 1, seed));
  vg_nn_sequential_append(seq, conv_bn(c->exp, c->exp, c->k, c->stride, c->exp, seed));
  if (c->se) {
    int sq = make_divisible(c->exp / 4);
    vg_nn_module *se = vg_nn_module_new("SqueezeExcitation", NULL, NULL, NULL);
    if (se) {
      vg_nn_add_child(se, "fc1", conv(c->exp, sq, 1, 1, 1, true, (*seed)++));
      vg_nn_add_child(se, "fc2", conv(sq, c->exp, 1, 1, 1, true, (*seed)++));
    }
    vg_nn_sequential_append(seq, se);
  }
  vg_nn_sequential_append(seq, conv_bn(c->exp, c->out, 1, 1, 1, seed));
  return b;
}

static bool tree_ok(const vg_nn_module *m) {
  if (!m) return false;
  for (int i = 0; i < m->nchildren; i++)
    if (!tree_ok(m->children[i].m)) return false;
  return true;
}

static vg_status mnv3_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out);

static vg_tensor *mnv3_forward(vg_nn_module *m, const vg_tensor *x) {
  /* vg_nn_forward on the whole model: the last tap */
  const mnv3_ctx *c = m->ctx;
  vg_tensor *outs[MAXTAP];
  if (mnv3_features(m, x, outs) != VG_OK) return NULL;
  return outs[c->ntaps - 1];
}

bool vg_mobilenet_v3_info(const vg_nn_module *m, int *last_stage) {
  if (!m || m->forward != mnv3_forward) return false;
  if (last_stage) *last_stage = ((const mnv3_ctx *)m->ctx)->last;
  return true;
}

bool vg_mobilenet_v3_ignores_key(const vg_nn_module *m, const char *key) {
  int last;
  if (!key || !vg_mobilenet_v3_info(m, &last)) return false;
  if (!strncmp(key, "classifier.", 11) || !strncmp(key, "avgpool.", 8)) return true;
  if (strncmp(key, "features.", 9)) return false;
  const char *p = key + 9;
  if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return false;
  int k = 0;
  while (*p >= '0' && *p <= '9' && k < 1000) k = k * 10 + (*p++ - '0');
  /* a stage of torchvision's features (0..16) this model did not build */
  return *p == '.' && k > last && k < NSTAGE;
}

/* "features.K" / "features.K.proj" / "features.K.block.J.0" -> K, proj; false when not a tap */
static bool parse_tap(const char *s, int *k, bool *proj) {
  if (strncmp(s, "features.", 9)) return false;
  const char *p = s + 9;
  if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return false;
  int v = 0;
  while (*p >= '0' && *p <= '9' && v < 100) v = v * 10 + (*p++ - '0');
  if (v >= NSTAGE) return false;
  *k = v;
  if (!*p) return *proj = false, true;
  if (v < 1 || v > 15) return false;
  *proj = true;
  if (!strcmp(p, ".proj")) return true;
  char want[32];
  snprintf(want, sizeof want, ".block.%d.0", proj_index(v));
  return !strcmp(p, want);
}

static vg_nn_module *mnv3_create(const vg_backbone_desc *d, int ntaps, const char *const *taps, uint64_t seed) {
  if (ntaps > MAXTAP) {
    vg_fail(VG_ERR_ARG, "backbone %s: %d taps (at most %d)", d->name, ntaps, MAXTAP);
    return NULL;
  }
  mnv3_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    vg_fail(VG_ERR_NOMEM, "backbone %s: out of memory", d->name);
    return NULL;
  }
  c->d = d;
  int prev = -1;
  const char *prev_name = "";
  for (int i = 0; i < ntaps; i++) {
    int k;
    bool proj;
    if (!parse_tap(taps[i], &k, &proj)) {
      vg_fail(VG_ERR_ARG, "backbone %s: no tap '%s' (it offers %s)", d->name, taps[i], d->taps_help);
      free(c);
      return NULL;
    }
    int pos = 2 * k + !proj;
    if (pos <= prev) {
      vg_fail(VG_ERR_ARG, "backbone %s: taps must be distinct and in forward order ('%s' after '%s')", d->name,
              taps[i], prev_name);
      free(c);
      return NULL;
    }
    prev = pos;
    prev_name = taps[i];
    c->tap_k[i] = k;
    c->tap_proj[i] = proj;
    snprintf(c->tap_name[i], sizeof c->tap_name[i], "features.%d%s", k, proj ? ".proj" : "");
    c->last = k;
  }
  c->ntaps = ntaps;
  vg_nn_module *m = vg_nn_module_new("MobileNetV3", mnv3_forward, c, free);
  vg_nn_module *f = vg_nn_sequential_new(0, NULL);
  if (!m || !f) {
    if (!m) free(c);
    vg_nn_free(m);
    vg_nn_free(f);
    return NULL;
  }
  vg_nn_add_child(m, "features", f);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 2;
  vg_nn_sequential_append(f, conv_bn(3, 16, 3, 2, 1, &s));
  for (int k = 1; k <= c->last && k <= 15; k++) vg_nn_sequential_append(f, make_block(&LARGE[k - 1], &s));
  if (c->last == 16) vg_nn_sequential_append(f, conv_bn(160, 960, 1, 1, 1, &s));
  if (!tree_ok(m) || f->nchildren != c->last + 1) {
    vg_fail_prefix("backbone %s", d->name);
    vg_nn_free(m);
    return NULL;
  }
  vg_nn_train(m, false);
  vg_nn_requires_grad(m, false);
  return m;
}

static vg_tensor *hswish_or_relu(vg_tensor *y, bool hs) { return hs ? vg_hardswish(y) : y; }

/* Conv2dNormActivation "cb" on x: folded conv+BN (vg_nn_conv_bn) when nothing is recorded */
static vg_tensor *cba(vg_nn_module *cb, const vg_tensor *x, bool hs) {
  vg_nn_module *cv = vg_nn_child_get(cb, "0"), *b = vg_nn_child_get(cb, "1");
  return hswish_or_relu(vg_nn_conv_bn(cv, b, x, hs ? VG_ACT_NONE : VG_ACT_RELU), hs);
}

/* features[k] (k in 1..15) on x; *proj (may be NULL) gets the projection conv's output */
static vg_tensor *block_forward(vg_nn_module *blk, const bneck *c, const vg_tensor *x, vg_tensor **proj) {
  vg_nn_module *seq = vg_nn_child_get(blk, "block");
  bool nest = !vg_nn_would_record(blk, 1, &x);
  if (nest) vg_scope_begin();
  int j = 0;
  vg_tensor *y = (vg_tensor *)x;
  if (c->exp != c->in) y = cba(seq->children[j++].m, y, c->hs);
  y = cba(seq->children[j++].m, y, c->hs);
  if (c->se) {
    vg_nn_module *se = seq->children[j++].m;
    vg_tensor *s = vg_adaptive_avg_pool2d(y, 1, 1);
    s = vg_nn_forward_relu(vg_nn_child_get(se, "fc1"), s);
    s = vg_hardsigmoid(vg_nn_forward(vg_nn_child_get(se, "fc2"), s));
    y = vg_mul(y, s);
  }
  vg_nn_module *pj = seq->children[j].m;
  vg_tensor *p = NULL;
  if (proj) {
    p = vg_nn_forward(vg_nn_child_get(pj, "0"), y);
    y = vg_nn_forward(vg_nn_child_get(pj, "1"), p);
  } else {
    y = vg_nn_conv_bn(vg_nn_child_get(pj, "0"), vg_nn_child_get(pj, "1"), y, VG_ACT_NONE);
  }
  if (c->stride == 1 && c->in == c->out) y = vg_add(y, x);
  if (!y || (proj && !p)) {
    if (nest) vg_scope_end();
    return NULL;
  }
  vg_tensor *keep[2] = {y, p};
  if (nest) vg_scope_end_keep(proj ? 2 : 1, keep);
  if (proj) *proj = keep[1];
  return keep[0];
}

static vg_status mnv3_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out) {
  if (!vg_mobilenet_v3_info(m, NULL)) return vg_fail(VG_ERR_ARG, "mobilenet_v3 features: not a model of this family");
  const mnv3_ctx *c = m->ctx;
  if (!x || x->ndim != 4 || x->shape[1] != 3 || (x->dtype != VG_F32 && x->dtype != VG_F16))
    return vg_fail(VG_ERR_ARG, "%s features: want an (N, 3, H, W) f32 (or CUDA f16) input", c->d->name);
  vg_nn_module *f = vg_nn_child_get(m, "features");
  int t = 0;
  vg_tensor *h = cba(f->children[0].m, x, true);
  if (!h) return vg_fail_prefix("%s features: features.0", c->d->name);
  if (t < c->ntaps && c->tap_k[t] == 0) out[t++] = h;
  for (int k = 1; k <= c->last; k++) {
    bool want_proj = t < c->ntaps && c->tap_k[t] == k && c->tap_proj[t];
    vg_tensor *p = NULL;
    if (k <= 15) h = block_forward(f->children[k].m, &LARGE[k - 1], h, want_proj ? &p : NULL);
    else h = cba(f->children[k].m, h, true);
    if (!h) return vg_fail_prefix("%s features: features.%d", c->d->name, k);
    if (want_proj) out[t++] = p;
    if (t < c->ntaps && c->tap_k[t] == k) out[t++] = h;
  }
  return VG_OK;
}

static bool mnv3_owns(const vg_backbone_desc *d, const vg_nn_module *m) {
  return vg_mobilenet_v3_info(m, NULL) && ((const mnv3_ctx *)m->ctx)->d == d;
}
static int mnv3_num_features(const vg_nn_module *m) {
  return vg_mobilenet_v3_info(m, NULL) ? ((const mnv3_ctx *)m->ctx)->ntaps : 0;
}
static const mnv3_ctx *tap_ctx(const vg_nn_module *m, int i) {
  if (!vg_mobilenet_v3_info(m, NULL)) return NULL;
  const mnv3_ctx *c = m->ctx;
  return i >= 0 && i < c->ntaps ? c : NULL;
}
static int64_t mnv3_channels(const vg_nn_module *m, int i) {
  const mnv3_ctx *c = tap_ctx(m, i);
  return c ? stage_channels(c->tap_k[i]) : 0;
}
static int mnv3_stride(const vg_nn_module *m, int i) {
  const mnv3_ctx *c = tap_ctx(m, i);
  return c ? stage_stride(c->tap_k[i]) : 0;
}
static const char *mnv3_name(const vg_nn_module *m, int i) {
  const mnv3_ctx *c = tap_ctx(m, i);
  return c ? c->tap_name[i] : NULL;
}
/* the ResNets' test-weight scheme (backbones.h), which covers every tensor kind here (SE fc
 * weights are 4-d convs, their biases "bias") */
static vg_status mnv3_init_philox(vg_nn_module *m, uint64_t base_seed) {
  if (!vg_mobilenet_v3_info(m, NULL)) return vg_fail(VG_ERR_ARG, "mobilenet_v3 init_philox: not a model of this family");
  return vg_resnet_init_philox(m, base_seed);
}

const vg_backbone_desc vg_backbone_mobilenet_v3_large = {
    .name = "mobilenet_v3_large", .family = "mobilenet_v3", .num_params = 5483032, .taps_help = TAPS_HELP,
    .create = mnv3_create, .owns = mnv3_owns, .features = mnv3_features, .num_features = mnv3_num_features,
    .feature_channels = mnv3_channels, .feature_stride = mnv3_stride, .feature_name = mnv3_name,
    .init_philox = mnv3_init_philox};
