/* test_golden.c — ops and their gradients against PyTorch (tests/fixtures/ops/golden.vgfx,
 * written by tools/gen_op_fixtures.py). Each case: forward output and the grads of
 * L = sum(out * R) for every input. Tolerance: |got - want| <= 1e-5 * (|want| + max|want|)
 * per tensor (relative to the element and to the tensor's scale). */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "tensor/tensor.h"
#include "autograd/autograd.h"

static vg_fixture *FX;

static const vg_fx_tensor *need(const char *name) {
  const vg_fx_tensor *t = vg_fixture_get(FX, name);
  if (!t) {
    printf("NOT OK missing fixture tensor %s\n", name);
    exit(1);
  }
  return t;
}

static vg_tensor *load(const char *name) {
  const vg_fx_tensor *t = need(name);
  return vg_from_data(VG_F32, t->ndim, t->shape, t->data);
}

static void compare(const char *what, const vg_tensor *got, const char *want_name, double rtol) {
  const vg_fx_tensor *w = need(want_name);
  if (!got) {
    VG_CHECK(0, "%s: no result (%s)", what, vg_last_error());
    return;
  }
  bool shape_ok = got->ndim == w->ndim;
  for (int i = 0; shape_ok && i < w->ndim; i++) shape_ok = got->shape[i] == w->shape[i];
  if (!VG_CHECK(shape_ok, "%s: shape", what)) return;
  float *buf = malloc(sizeof(float) * (size_t)(w->n ? w->n : 1));
  vg_to_host(got, VG_F32, buf);
  double scale = 0;
  for (int64_t i = 0; i < w->n; i++) scale = fmax(scale, fabs(w->data[i]));
  VG_CHECK_CLOSE(buf, w->data, w->n, rtol, rtol * scale, what);
  free(buf);
}

typedef vg_tensor *(*case_fn)(vg_tensor **in);

/* runs one case: inputs NAME.in0.., out NAME.out, grads NAME.gradK */
static void run_case(const char *name, int nin, case_fn fn, bool grads) {
  char key[128], what[160];
  vg_scope_begin();
  vg_tensor *in[4];
  for (int i = 0; i < nin; i++) {
    snprintf(key, sizeof key, "%s.in%d", name, i);
    in[i] = load(key);
    if (grads) vg_requires_grad_(in[i], true);
  }
  vg_tensor *y = fn(in);
  snprintf(key, sizeof key, "%s.out", name);
  snprintf(what, sizeof what, "%s forward", name);
  compare(what, y, key, 1e-5);
  if (grads && y) {
    snprintf(key, sizeof key, "%s.r", name);
    vg_tensor *L = vg_sum_all(vg_mul(y, load(key)));
    VG_CHECK(vg_backward(L) == VG_OK, "%s backward runs", name);
    for (int i = 0; i < nin; i++) {
      snprintf(key, sizeof key, "%s.grad%d", name, i);
      snprintf(what, sizeof what, "%s grad of input %d", name, i);
      compare(what, in[i]->grad, key, 1e-5);
    }
  }
  vg_scope_end();
}

/* ---- the cases ---- */
#define CONV(nm, ...)                                                                 \
  static vg_tensor *nm(vg_tensor **in) { return vg_conv2d(in[0], in[1], in[2], (vg_conv2d_opts){__VA_ARGS__}); }
CONV(conv_k4p3, .ph = 3, .pw = 3)
CONV(conv_k3p1, .ph = 1, .pw = 1)
CONV(conv_k4s2p1, .sh = 2, .sw = 2, .ph = 1, .pw = 1)
CONV(conv_k8p0, .ph = 0)
CONV(conv_groups, .ph = 1, .pw = 1, .groups = 3)
CONV(conv_dil, .ph = 2, .pw = 2, .dh = 2, .dw = 2)
CONV(conv_1x1, .ph = 0)
CONV(conv_s2_dw, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .groups = 4)

static vg_tensor *avgpool_k2s2p1(vg_tensor **in) {
  return vg_avg_pool2d(in[0], (vg_pool2d_opts){.kh = 2, .kw = 2, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .count_include_pad = true});
}
static vg_tensor *avgpool_k3s2p1_nopad(vg_tensor **in) {
  return vg_avg_pool2d(in[0], (vg_pool2d_opts){.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1});
}
static vg_tensor *avgpool_k3s2_ceil(vg_tensor **in) {
  return vg_avg_pool2d(in[0], (vg_pool2d_opts){.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .ceil_mode = true,
                                                .count_include_pad = true});
}
static vg_tensor *maxpool_k3s2p1(vg_tensor **in) {
  return vg_max_pool2d(in[0], (vg_pool2d_opts){.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1}, NULL);
}
static vg_tensor *maxpool_k2_ceil(vg_tensor **in) {
  return vg_max_pool2d(in[0], (vg_pool2d_opts){.kh = 2, .kw = 2, .sh = 2, .sw = 2, .ceil_mode = true}, NULL);
}
static vg_tensor *adaptive_5x3(vg_tensor **in) { return vg_adaptive_avg_pool2d(in[0], 5, 3); }
static vg_tensor *adaptive1d_4(vg_tensor **in) { return vg_adaptive_avg_pool1d(in[0], 4); }
static vg_tensor *interp_up_ac0(vg_tensor **in) { return vg_interpolate_bilinear(in[0], 13, 11, false); }
static vg_tensor *interp_up_ac1(vg_tensor **in) { return vg_interpolate_bilinear(in[0], 13, 11, true); }
static vg_tensor *interp_down_ac0(vg_tensor **in) { return vg_interpolate_bilinear(in[0], 3, 4, false); }
static vg_tensor *interp_down_ac1(vg_tensor **in) { return vg_interpolate_bilinear(in[0], 3, 4, true); }
static vg_tensor *layernorm_chw(vg_tensor **in) { return vg_layer_norm(in[0], 3, in[1], in[2], 1e-5f); }
static vg_tensor *layernorm_last(vg_tensor **in) { return vg_layer_norm(in[0], 1, in[1], in[2], 1e-5f); }
static vg_tensor *RM, *RV;
static vg_tensor *bn_train(vg_tensor **in) { return vg_batch_norm(in[0], RM, RV, in[1], in[2], true, 0.1f, 1e-5f); }
static vg_tensor *bn_eval(vg_tensor **in) { return vg_batch_norm(in[0], RM, RV, in[1], in[2], false, 0.1f, 1e-5f); }
static vg_tensor *softmax1(vg_tensor **in) { return vg_softmax(in[0], 1); }
static vg_tensor *log_softmax0(vg_tensor **in) { return vg_log_softmax(in[0], 0); }
static vg_tensor *logsumexp1(vg_tensor **in) { return vg_logsumexp(in[0], 1, (int[]){1}, false); }
static vg_tensor *var_unb(vg_tensor **in) { return vg_var(in[0], 1, (int[]){0}, true, false); }
static vg_tensor *std_b(vg_tensor **in) { return vg_std(in[0], 1, (int[]){1}, false, false); }
static vg_tensor *f_exp(vg_tensor **in) { return vg_exp(in[0]); }
static vg_tensor *f_log(vg_tensor **in) { return vg_log(in[0]); }
static vg_tensor *f_sqrt(vg_tensor **in) { return vg_sqrt(in[0]); }
static vg_tensor *f_rsqrt(vg_tensor **in) { return vg_rsqrt(in[0]); }
static vg_tensor *f_tanh(vg_tensor **in) { return vg_tanh(in[0]); }
static vg_tensor *f_sigmoid(vg_tensor **in) { return vg_sigmoid(in[0]); }
static vg_tensor *f_logsigmoid(vg_tensor **in) { return vg_logsigmoid(in[0]); }
static vg_tensor *f_softplus(vg_tensor **in) { return vg_softplus(in[0], 1, 20); }
static vg_tensor *f_softplus_b2(vg_tensor **in) { return vg_softplus(in[0], 2, 10); }
static vg_tensor *f_gelu(vg_tensor **in) { return vg_gelu(in[0]); }
static vg_tensor *f_atan(vg_tensor **in) { return vg_atan(in[0]); }
static vg_tensor *f_erf(vg_tensor **in) { return vg_erf(in[0]); }
static vg_tensor *f_leaky(vg_tensor **in) { return vg_leaky_relu(in[0], 0.2f); }
static vg_tensor *f_pow(vg_tensor **in) { return vg_pow_scalar(in[0], 1.5f); }

static const struct {
  const char *name;
  int nin;
  case_fn fn;
} CASES[] = {
    {"conv_k4p3", 3, conv_k4p3}, {"conv_k3p1", 3, conv_k3p1}, {"conv_k4s2p1", 3, conv_k4s2p1},
    {"conv_k8p0", 3, conv_k8p0}, {"conv_groups", 3, conv_groups}, {"conv_dil", 3, conv_dil},
    {"conv_1x1", 3, conv_1x1}, {"conv_s2_dw", 3, conv_s2_dw},
    {"avgpool_k2s2p1", 1, avgpool_k2s2p1}, {"avgpool_k3s2p1_nopad", 1, avgpool_k3s2p1_nopad},
    {"avgpool_k3s2_ceil", 1, avgpool_k3s2_ceil}, {"maxpool_k3s2p1", 1, maxpool_k3s2p1},
    {"maxpool_k2_ceil", 1, maxpool_k2_ceil}, {"adaptive_5x3", 1, adaptive_5x3}, {"adaptive1d_4", 1, adaptive1d_4},
    {"interp_up_ac0", 1, interp_up_ac0}, {"interp_up_ac1", 1, interp_up_ac1},
    {"interp_down_ac0", 1, interp_down_ac0}, {"interp_down_ac1", 1, interp_down_ac1},
    {"layernorm_chw", 3, layernorm_chw}, {"layernorm_last", 3, layernorm_last},
    {"softmax1", 1, softmax1}, {"log_softmax0", 1, log_softmax0}, {"logsumexp1", 1, logsumexp1},
    {"var_unb", 1, var_unb}, {"std_b", 1, std_b},
    {"exp", 1, f_exp}, {"log", 1, f_log}, {"sqrt", 1, f_sqrt}, {"rsqrt", 1, f_rsqrt}, {"tanh", 1, f_tanh},
    {"sigmoid", 1, f_sigmoid}, {"logsigmoid", 1, f_logsigmoid}, {"softplus", 1, f_softplus},
    {"softplus_b2", 1, f_softplus_b2}, {"gelu", 1, f_gelu}, {"atan", 1, f_atan}, {"erf", 1, f_erf},
    {"leaky_relu", 1, f_leaky}, {"pow_1p5", 1, f_pow},
};

int main(void) {
  FX = vg_fixture_load(vg_test_fixture("ops/golden.vgfx"));
  if (!VG_CHECK(FX != NULL, "load golden fixtures")) return vg_test_finish();
  /* the fixture's seed records (tools/fixtures.py version 3: random inputs stored as a Philox
   * seed and range) expand to the values the generator used, bit for bit */
  {
    const vg_fx_tensor *g = need("fx.philox_gen"), *d = need("fx.philox_data");
    VG_CHECK(g && d && g->n == 3 * 37 && d->n == g->n && g->ndim == 2 && g->shape[0] == 3 && g->shape[1] == 37 &&
                 !memcmp(g->data, d->data, sizeof(float) * (size_t)g->n),
             "fixture seed record == the same values stored in full (%lld values, bit for bit)",
             g ? (long long)g->n : -1LL);
  }
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) run_case(CASES[i].name, CASES[i].nin, CASES[i].fn, true);

  /* batch norm: training step updates the running stats like torch; eval uses them */
  {
    const vg_fx_tensor *m0 = need("bn.running_mean0"), *v0 = need("bn.running_var0");
    RM = vg_tensor_new(VG_F32, 1, m0->shape);
    RV = vg_tensor_new(VG_F32, 1, v0->shape);
    memcpy(vg_f32(RM), m0->data, sizeof(float) * (size_t)m0->n);
    memcpy(vg_f32(RV), v0->data, sizeof(float) * (size_t)v0->n);
    vg_tensor *m0c = vg_tensor_clone_heap(RM), *v0c = vg_tensor_clone_heap(RV);
    run_case("bn_train", 3, bn_train, true);
    compare("bn running_mean after a step", RM, "bn.running_mean1", 1e-5);
    compare("bn running_var after a step", RV, "bn.running_var1", 1e-5);
    vg_copy_(RM, m0c);
    vg_copy_(RV, v0c);
    run_case("bn_eval", 3, bn_eval, true);
    vg_tensor_free(m0c);
    vg_tensor_free(v0c);
    vg_tensor_free(RM);
    vg_tensor_free(RV);
  }

  /* quantile over 60013 elements, torch.quantile's linear interpolation. The input is not in
   * the fixture: x[i] = (((i * 2654435761) mod 2^32) >> 8) / 2^21 - 4, exact in f32, the
   * same sequence tools/gen_op_fixtures.py gave torch (ties included) */
  vg_scope_begin();
  vg_tensor *xq = vg_tensor_new(VG_F32, 1, (int64_t[]){60013});
  for (uint32_t i = 0; i < 60013; i++) ((float *)vg_data(xq))[i] = (float)((i * 2654435761u) >> 8) / 2097152.0f - 4.0f;
  static const char *qs[] = {"0.0", "0.001", "0.5", "0.9", "0.995", "0.999", "1.0"};
  for (int i = 0; i < 7; i++) {
    char key[64], what[64];
    snprintf(key, sizeof key, "quantile.q%s", qs[i]);
    snprintf(what, sizeof what, "quantile q=%s", qs[i]);
    vg_tensor *q = vg_quantile_all(xq, atof(qs[i]));
    compare(what, q ? vg_reshape(q, 1, (int64_t[]){1}) : NULL, key, 1e-6);
  }
  vg_tensor_free(xq);
  vg_scope_end();
  vg_fixture_free(FX);
  vg_scope_release();
  return vg_test_finish();
}
