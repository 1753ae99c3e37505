/* layers.c — the built-in modules: constructors (torch's parameter names, shapes and
 * default initializations) and their forward passes. */
#include "nn/nn.h"
#include <math.h>
#include <string.h>

static vg_nn_module *builtin(vg_nn_kind kind, const char *name) {
  vg_nn_module *m = vg_nn_module_new(name, NULL, NULL, NULL);
  m->kind = kind;
  return m;
}

static vg_tensor *param_new(int ndim, const int64_t *shape) { return vg_tensor_new(VG_F32, ndim, shape); }

/* splitmix64: independent seeds for the tensors of one module */
static uint64_t sub_seed(uint64_t seed, uint64_t k) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (k + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

vg_nn_module *vg_nn_sequential_new(int n, vg_nn_module *const *mods) {
  vg_nn_module *m = builtin(VG_NN_SEQUENTIAL, "Sequential");
  for (int i = 0; i < n; i++) vg_nn_sequential_append(m, mods[i]);
  return m;
}

void vg_nn_sequential_append(vg_nn_module *seq, vg_nn_module *c) {
  VG_ASSERT(seq->kind == VG_NN_SEQUENTIAL);
  char name[24];
  snprintf(name, sizeof name, "%d", seq->nchildren);
  vg_nn_add_child(seq, name, c);
}

vg_nn_module *vg_nn_identity_new(void) { return builtin(VG_NN_IDENTITY, "Identity"); }

vg_nn_module *vg_nn_conv2d_new(int64_t in, int64_t out, int kh, int kw, vg_nn_conv2d_opts o, uint64_t seed) {
  int g = o.groups ? o.groups : 1;
  if (in <= 0 || out <= 0 || kh <= 0 || kw <= 0 || g <= 0 || in % g || out % g || o.sh < 0 || o.sw < 0 ||
      o.ph < 0 || o.pw < 0 || o.dh < 0 || o.dw < 0) {
    vg_fail(VG_ERR_ARG, "Conv2d: bad arguments (in %lld, out %lld, kernel %dx%d, groups %d)", (long long)in,
            (long long)out, kh, kw, g);
    return NULL;
  }
  if (o.same_padding && ((o.sh && o.sh != 1) || (o.sw && o.sw != 1))) {
    vg_fail(VG_ERR_ARG, "Conv2d: padding='same' is not supported for strided convolutions");
    return NULL;
  }
  vg_nn_module *m = builtin(VG_NN_CONV2D, "Conv2d");
  m->u.conv.o = (vg_conv2d_opts){o.sh ? o.sh : 1, o.sw ? o.sw : 1, o.ph, o.pw, o.dh ? o.dh : 1, o.dw ? o.dw : 1, g, VG_ACT_NONE, NULL};
  m->u.conv.same = o.same_padding;
  m->u.conv.kh = kh;
  m->u.conv.kw = kw;
  vg_tensor *w = param_new(4, (int64_t[]){out, in / g, kh, kw});
  vg_tensor *b = o.no_bias ? NULL : param_new(1, &out);
  vg_init_torch_default(w, b, seed);
  vg_nn_add_param(m, "weight", w);
  if (b) vg_nn_add_param(m, "bias", b);
  return m;
}

vg_nn_module *vg_nn_linear_new(int64_t in, int64_t out, bool bias, uint64_t seed) {
  if (in <= 0 || out <= 0) {
    vg_fail(VG_ERR_ARG, "Linear: bad sizes %lld -> %lld", (long long)in, (long long)out);
    return NULL;
  }
  vg_nn_module *m = builtin(VG_NN_LINEAR, "Linear");
  vg_tensor *w = param_new(2, (int64_t[]){out, in});
  vg_tensor *b = bias ? param_new(1, &out) : NULL;
  vg_init_torch_default(w, b, seed);
  vg_nn_add_param(m, "weight", w);
  if (b) vg_nn_add_param(m, "bias", b);
  return m;
}

vg_nn_module *vg_nn_batchnorm2d_new(int64_t c, float eps, float momentum, bool affine, bool track) {
  if (c <= 0 || !(eps >= 0)) {
    vg_fail(VG_ERR_ARG, "BatchNorm2d: bad arguments (channels %lld, eps %g)", (long long)c, eps);
    return NULL;
  }
  vg_nn_module *m = builtin(VG_NN_BATCHNORM2D, "BatchNorm2d");
  m->u.bn.eps = eps;
  m->u.bn.momentum = momentum;
  m->u.bn.affine = affine;
  m->u.bn.track = track;
  if (affine) {
    vg_tensor *w = param_new(1, &c);
    vg_init_ones(w);
    vg_nn_add_param(m, "weight", w);
    vg_nn_add_param(m, "bias", param_new(1, &c));
  }
  if (track) {
    vg_nn_add_buffer(m, "running_mean", vg_tensor_new(VG_F32, 1, &c));
    vg_tensor *rv = vg_tensor_new(VG_F32, 1, &c);
    vg_init_ones(rv);
    vg_nn_add_buffer(m, "running_var", rv);
    vg_nn_add_buffer(m, "num_batches_tracked", vg_tensor_new(VG_I64, 0, NULL));
  }
  return m;
}

vg_nn_module *vg_nn_layernorm_new(int nnorm, const int64_t *shape, float eps, bool affine) {
  if (nnorm < 1 || nnorm > VG_MAX_DIMS || !(eps >= 0)) {
    vg_fail(VG_ERR_ARG, "LayerNorm: bad arguments (%d normalized dims, eps %g)", nnorm, eps);
    return NULL;
  }
  for (int i = 0; i < nnorm; i++)
    if (shape[i] <= 0) {
      vg_fail(VG_ERR_ARG, "LayerNorm: normalized shape dim %d is %lld", i, (long long)shape[i]);
      return NULL;
    }
  vg_nn_module *m = builtin(VG_NN_LAYERNORM, "LayerNorm");
  m->u.ln.nnorm = nnorm;
  m->u.ln.eps = eps;
  if (affine) {
    vg_tensor *w = param_new(nnorm, shape);
    vg_init_ones(w);
    vg_nn_add_param(m, "weight", w);
    vg_nn_add_param(m, "bias", param_new(nnorm, shape));
  }
  return m;
}

vg_nn_module *vg_nn_relu_new(void) { return builtin(VG_NN_RELU, "ReLU"); }
vg_nn_module *vg_nn_gelu_new(void) { return builtin(VG_NN_GELU, "GELU"); }

vg_nn_module *vg_nn_leakyrelu_new(float slope) {
  vg_nn_module *m = builtin(VG_NN_LEAKYRELU, "LeakyReLU");
  m->u.leaky.slope = slope;
  return m;
}

vg_nn_module *vg_nn_softplus_new(float beta, float threshold) {
  vg_nn_module *m = builtin(VG_NN_SOFTPLUS, "Softplus");
  m->u.softplus.beta = beta;
  m->u.softplus.threshold = threshold;
  return m;
}

vg_nn_module *vg_nn_dropout_new(float p, uint64_t seed) {
  if (!(p >= 0 && p <= 1)) {
    vg_fail(VG_ERR_ARG, "Dropout: probability %g not in [0, 1]", p);
    return NULL;
  }
  vg_nn_module *m = builtin(VG_NN_DROPOUT, "Dropout");
  m->u.dropout.p = p;
  m->u.dropout.seed = seed;
  return m;
}

vg_nn_module *vg_nn_upsample_bilinear_new(int64_t oh, int64_t ow, double scale_h, double scale_w, bool align_corners) {
  if (!((oh > 0 && ow > 0) || (scale_h > 0 && scale_w > 0))) {
    vg_fail(VG_ERR_ARG, "Upsample: give an output size or positive scale factors");
    return NULL;
  }
  vg_nn_module *m = builtin(VG_NN_UPSAMPLE, "Upsample");
  m->u.up.oh = oh;
  m->u.up.ow = ow;
  m->u.up.sh = scale_h;
  m->u.up.sw = scale_w;
  m->u.up.align_corners = align_corners;
  return m;
}

vg_nn_module *vg_nn_avgpool2d_new(vg_pool2d_opts o) {
  vg_nn_module *m = builtin(VG_NN_AVGPOOL2D, "AvgPool2d");
  m->u.pool.o = o;
  return m;
}

vg_nn_module *vg_nn_maxpool2d_new(vg_pool2d_opts o) {
  vg_nn_module *m = builtin(VG_NN_MAXPOOL2D, "MaxPool2d");
  m->u.pool.o = o;
  return m;
}

vg_nn_module *vg_nn_adaptive_avgpool2d_new(int64_t oh, int64_t ow) {
  vg_nn_module *m = builtin(VG_NN_ADAPTIVE_AVGPOOL2D, "AdaptiveAvgPool2d");
  m->u.adaptive.oh = oh;
  m->u.adaptive.ow = ow;
  return m;
}

/* ---- forward ---- */
/* conv2d of module m with weight w and bias b (the module's own, or folded ones) */
static vg_tensor *conv_forward_wb(vg_nn_module *m, const vg_tensor *x, const vg_tensor *w, const vg_tensor *b,
                                  vg_act act) {
  vg_conv2d_opts o = m->u.conv.o;
  o.act = act;
  /* the pack (vg_nn_conv_cache) serves the module's weight, or the folded one it holds */
  if (w != vg_nn_param(m, "weight") && !vg_conv_pack_holds(o.pack, w)) o.pack = NULL;
  if (m->u.conv.same) {
    /* torch padding="same": total = d (k - 1); left = total / 2, right = the rest */
    int th = o.dh * (m->u.conv.kh - 1), tw = o.dw * (m->u.conv.kw - 1);
    o.ph = th / 2;
    o.pw = tw / 2;
    if (th % 2 || tw % 2) {
      int64_t pads[4] = {0, tw % 2, 0, th % 2};
      x = vg_pad(x, 2, pads, 0.0f);
    }
  }
  return vg_conv2d(x, w, b, o);
}

static vg_tensor *conv_forward(vg_nn_module *m, const vg_tensor *x, vg_act act) {
  return conv_forward_wb(m, x, vg_nn_param(m, "weight"), vg_nn_param(m, "bias"), act);
}

/* Conv2d then an eval-mode BatchNorm2d as one conv2d with folded weights (one
 * conv_bn_fold op: w s[o], (b - running_mean) s + beta, s = gamma / sqrt(running_var + eps)).
 * With the conv's cache on (vg_nn_conv_cache) the folded pair and its packed forms are kept
 * in the conv's pack from one call to the next while the sources are unchanged. */
static vg_tensor *conv_bn_folded(vg_nn_module *conv, vg_nn_module *bn, const vg_tensor *x, vg_act act) {
  vg_tensor *wf, *bf;
  if (vg_conv_bn_fold_packed(conv->u.conv.o.pack, vg_nn_param(conv, "weight"), vg_nn_param(conv, "bias"),
                             vg_nn_param(bn, "weight"), vg_nn_param(bn, "bias"), vg_nn_buffer(bn, "running_mean"),
                             vg_nn_buffer(bn, "running_var"), bn->u.bn.eps, &wf, &bf) != VG_OK)
    return NULL;
  return conv_forward_wb(conv, x, wf, bf, act);
}

vg_tensor *vg_nn_conv_bn(vg_nn_module *conv, vg_nn_module *bn, const vg_tensor *x, vg_act act) {
  if (!conv || !bn || !x) return NULL;
  bool fold = conv->kind == VG_NN_CONV2D && bn->kind == VG_NN_BATCHNORM2D && !bn->training && bn->u.bn.track &&
              vg_nn_buffer(bn, "running_mean") && vg_nn_buffer(bn, "running_var") && x->ndim == 4 &&
              vg_nn_param(conv, "weight") && vg_nn_param(conv, "weight")->shape[0] == vg_nn_buffer(bn, "running_mean")->shape[0] &&
              !vg_nn_would_record(conv, 1, &x) && !vg_nn_would_record(bn, 0, NULL);
  if (fold) return conv_bn_folded(conv, bn, x, act);
  vg_tensor *y = vg_nn_forward(bn, vg_nn_forward(conv, x));
  return act == VG_ACT_RELU ? vg_relu(y) : y;
}

static vg_tensor *bn_forward(vg_nn_module *m, const vg_tensor *x) {
  if (!x) return NULL;
  if (x->ndim != 4) {
    char b[128];
    vg_fail(VG_ERR_ARG, "BatchNorm2d: expected 4-d input (N, C, H, W), got %s", vg_shape_str(x, b, sizeof b));
    return NULL;
  }
  float momentum = m->u.bn.momentum;
  vg_tensor *rm = vg_nn_buffer(m, "running_mean"), *rv = vg_nn_buffer(m, "running_var");
  if (m->training && m->u.bn.track) {
    vg_tensor *nbt_t = vg_nn_buffer(m, "num_batches_tracked");
    int64_t nbt;
    vg_to_host(nbt_t, VG_I64, &nbt);   /* a device buffer too (vg_nn_to) */
    vg_fill_(nbt_t, (double)++nbt);
    if (momentum < 0) momentum = (float)(1.0 / (double)nbt);   /* momentum=None */
  }
  return vg_batch_norm(x, rm, rv, vg_nn_param(m, "weight"), vg_nn_param(m, "bias"), m->training, momentum,
                       m->u.bn.eps);
}

static vg_tensor *upsample_forward(vg_nn_module *m, const vg_tensor *x) {
  if (!x) return NULL;
  if (x->ndim != 4) {
    char b[128];
    vg_fail(VG_ERR_ARG, "Upsample: expected 4-d input, got %s", vg_shape_str(x, b, sizeof b));
    return NULL;
  }
  int64_t oh = m->u.up.oh, ow = m->u.up.ow;
  if (oh <= 0) {
    oh = (int64_t)floor((double)x->shape[2] * m->u.up.sh);
    ow = (int64_t)floor((double)x->shape[3] * m->u.up.sw);
  }
  return vg_interpolate_bilinear(x, oh, ow, m->u.up.align_corners);
}

vg_tensor *vg_nn_forward_relu(vg_nn_module *m, const vg_tensor *x) {
  if (!m || !x) return NULL;
  if (m->kind == VG_NN_CONV2D) return conv_forward(m, x, VG_ACT_RELU);
  return vg_relu(vg_nn_forward(m, x));
}

vg_tensor *vg_nn_forward(vg_nn_module *m, const vg_tensor *x) {
  if (!m || !x) return NULL;
  switch (m->kind) {
    case VG_NN_CUSTOM:
      VG_ASSERT(m->forward && "custom module without a forward function");
      return m->forward(m, x);
    case VG_NN_SEQUENTIAL: {
      const vg_tensor *h = x;
      for (int i = 0; i < m->nchildren && h; i++) {
        vg_nn_module *ci = m->children[i].m;
        vg_nn_kind k1 = i + 1 < m->nchildren ? m->children[i + 1].m->kind : VG_NN_KIND_COUNT;
        vg_nn_kind k2 = i + 2 < m->nchildren ? m->children[i + 2].m->kind : VG_NN_KIND_COUNT;
        if (ci->kind == VG_NN_CONV2D && k1 == VG_NN_BATCHNORM2D) {   /* Conv2d, BatchNorm2d[, ReLU] */
          h = vg_nn_conv_bn(ci, m->children[i + 1].m, h, k2 == VG_NN_RELU ? VG_ACT_RELU : VG_ACT_NONE);
          i += k2 == VG_NN_RELU ? 2 : 1;
        } else if (ci->kind == VG_NN_CONV2D && k1 == VG_NN_RELU) {
          h = conv_forward(ci, h, VG_ACT_RELU);   /* Conv2d, ReLU: one op, ReLU fused */
          i++;
        } else {
          h = vg_nn_forward(ci, h);
        }
      }
      return (vg_tensor *)h;
    }
    case VG_NN_IDENTITY: return (vg_tensor *)x;
    case VG_NN_CONV2D: return conv_forward(m, x, VG_ACT_NONE);
    case VG_NN_LINEAR: return vg_linear(x, vg_nn_param(m, "weight"), vg_nn_param(m, "bias"));
    case VG_NN_BATCHNORM2D: return bn_forward(m, x);
    case VG_NN_LAYERNORM:
      return vg_layer_norm(x, m->u.ln.nnorm, vg_nn_param(m, "weight"), vg_nn_param(m, "bias"), m->u.ln.eps);
    case VG_NN_RELU: return vg_relu(x);
    case VG_NN_LEAKYRELU: return vg_leaky_relu(x, m->u.leaky.slope);
    case VG_NN_GELU: return vg_gelu(x);
    case VG_NN_SOFTPLUS: return vg_softplus(x, m->u.softplus.beta, m->u.softplus.threshold);
    case VG_NN_DROPOUT: {
      if (!m->training || m->u.dropout.p == 0) return (vg_tensor *)x;
      uint64_t s = sub_seed(m->u.dropout.seed, m->u.dropout.calls++);
      return vg_dropout(x, m->u.dropout.p, true, s);
    }
    case VG_NN_UPSAMPLE: return upsample_forward(m, x);
    case VG_NN_AVGPOOL2D: return vg_avg_pool2d(x, m->u.pool.o);
    case VG_NN_MAXPOOL2D: return vg_max_pool2d(x, m->u.pool.o, NULL);
    case VG_NN_ADAPTIVE_AVGPOOL2D: return vg_adaptive_avg_pool2d(x, m->u.adaptive.oh, m->u.adaptive.ow);
    case VG_NN_KIND_COUNT: break;
  }
  VG_ABORT("vg_nn_forward: bad module kind %d", (int)m->kind);
}
