/* test_nn.c — modules against torch 1.13 (tests/fixtures/nn/modules.vgfx, written by
 * tools/gen_nn_fixtures.py): forward, input and parameter grads of L = sum(y * R) with
 * the fixture's weights, BatchNorm running stats and num_batches_tracked, state-dict
 * names identical to torch's keys; module tree behaviour (train/eval, freezing,
 * counts, look-ups, dropout seeding); initializer bounds and statistics.
 * Tolerance for values vs torch: |got - want| <= 1e-5 (|want| + max|want|). */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "nn/nn.h"
#include "tensor/opstats.h"
#include "autograd/autograd.h"
#include <string.h>

static vg_fixture *FX;

static const vg_fx_tensor *need(const char *name) {
  const vg_fx_tensor *t = vg_fixture_get(FX, name);
  if (!t) {
    printf("NOT OK missing fixture tensor %s\n", name);
    exit(1);
  }
  return t;
}

static void compare(const char *what, const vg_tensor *got, const vg_fx_tensor *w, double rtol) {
  if (!got) {
    VG_CHECK(0, "%s: no result (%s)", what, vg_last_error());
    return;
  }
  bool shape_ok = got->ndim == w->ndim;
  for (int i = 0; shape_ok && i < w->ndim; i++) shape_ok = got->shape[i] == w->shape[i];
  char b[128];
  if (!VG_CHECK(shape_ok, "%s: shape %s", what, vg_shape_str(got, b, sizeof b))) return;
  float *buf = malloc(sizeof(float) * (size_t)(w->n ? w->n : 1));
  vg_to_host(got, VG_F32, buf);
  double scale = 0;
  for (int64_t i = 0; i < w->n; i++) scale = fmax(scale, fabs(w->data[i]));
  VG_CHECK_CLOSE(buf, w->data, w->n, rtol, rtol * scale, what);
  free(buf);
}

/* t's shape equals the dims stored in fixture tensor s (torch's v.shape; 0-d: empty) */
static bool same_shape(const vg_tensor *t, const vg_fx_tensor *s) {
  if (t->ndim != s->n) return false;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] != (int64_t)s->data[d]) return false;
  return true;
}

/* copies every "<name>.p.<key>" of the fixture into the module's tensor <key>; false
 * when a torch state-dict key has no counterpart or a different shape */
static bool load_params(vg_nn_module *m, const char *name) {
  char pre[64];
  snprintf(pre, sizeof pre, "%s.p.", name);
  size_t lp = strlen(pre);
  int n = 0;
  for (int i = 0; i < FX->count; i++) {
    const vg_fx_tensor *f = &FX->t[i];
    if (strncmp(f->name, pre, lp)) continue;
    vg_tensor *t = vg_nn_get(m, f->name + lp);
    char sk[160];
    snprintf(sk, sizeof sk, "%s.shape.%s", name, f->name + lp);
    bool ok = t && same_shape(t, need(sk)) && vg_numel(t) == f->n;
    if (!VG_CHECK(ok, "%s: torch key %s has a Vigil tensor of the same shape", name, f->name + lp)) return false;
    if (t->dtype == VG_I64) ((int64_t *)vg_data(t))[0] = (int64_t)f->data[0];
    else memcpy(vg_f32(t), f->data, sizeof(float) * (size_t)f->n);
    n++;
  }
  vg_nn_list sd = vg_nn_state_dict(m);
  bool all = sd.n == n;
  vg_nn_list_free(&sd);
  return VG_CHECK(all, "%s: state dict has exactly torch's %d keys", name, n);
}

/* forward + backward of sum(y * R); `warm` extra forward calls first (no grad) */
static void run_module(const char *name, vg_nn_module *m, int warm) {
  char key[128], what[160];
  if (!m) {
    VG_CHECK(0, "%s: module built (%s)", name, vg_last_error());
    return;
  }
  if (!load_params(m, name)) {
    vg_nn_free(m);
    return;
  }
  const vg_fx_tensor *fx = need((snprintf(key, sizeof key, "%s.x", name), key));
  vg_scope_begin();
  vg_tensor *x = vg_from_data(VG_F32, fx->ndim, fx->shape, fx->data);
  for (int i = 0; i < warm; i++) {
    vg_no_grad_begin();
    vg_nn_forward(m, x);
    vg_no_grad_end();
  }
  vg_requires_grad_(x, true);
  vg_tensor *y = vg_nn_forward(m, x);
  snprintf(what, sizeof what, "%s forward", name);
  compare(what, y, need((snprintf(key, sizeof key, "%s.y", name), key)), 1e-5);
  const vg_fx_tensor *fr = need((snprintf(key, sizeof key, "%s.r", name), key));
  vg_tensor *r = vg_from_data(VG_F32, fr->ndim, fr->shape, fr->data);
  if (y) {
    vg_nn_zero_grad(m);
    vg_backward(vg_sum_all(vg_mul(y, r)));
    snprintf(what, sizeof what, "%s grad input", name);
    compare(what, x->grad, need((snprintf(key, sizeof key, "%s.gx", name), key)), 1e-5);
    vg_nn_list ps = vg_nn_named_parameters(m);
    for (int i = 0; i < ps.n; i++) {
      snprintf(what, sizeof what, "%s grad %s", name, ps.names[i]);
      compare(what, ps.tensors[i]->grad, need((snprintf(key, sizeof key, "%s.g.%s", name, ps.names[i]), key)), 1e-5);
    }
    vg_nn_list_free(&ps);
    vg_nn_list bs = vg_nn_named_buffers(m);
    for (int i = 0; i < bs.n; i++) {
      const vg_fx_tensor *w = need((snprintf(key, sizeof key, "%s.after.%s", name, bs.names[i]), key));
      snprintf(what, sizeof what, "%s buffer %s after forward", name, bs.names[i]);
      if (bs.tensors[i]->dtype == VG_I64) {
        int64_t v = ((int64_t *)vg_data(bs.tensors[i]))[0];
        VG_CHECK(bs.tensors[i]->ndim == 0 && v == (int64_t)w->data[0], "%s: %lld (torch %g)", what, (long long)v,
                 (double)w->data[0]);
      } else {
        compare(what, bs.tensors[i], w, 1e-5);
      }
    }
    vg_nn_list_free(&bs);
  }
  vg_scope_end();
  vg_nn_free(m);
}

static void test_modules(void) {
  run_module("conv_s2", vg_nn_conv2d_new(3, 4, 3, 3, (vg_nn_conv2d_opts){.sh = 2, .sw = 2, .ph = 1, .pw = 1}, 1), 0);
  run_module("conv_gdil",
             vg_nn_conv2d_new(4, 6, 3, 2,
                              (vg_nn_conv2d_opts){.sw = 2, .ph = 2, .pw = 1, .dh = 2, .groups = 2, .no_bias = true}, 2),
             0);
  run_module("conv_same", vg_nn_conv2d_new(2, 3, 4, 3, (vg_nn_conv2d_opts){.same_padding = true}, 3), 0);
  run_module("linear", vg_nn_linear_new(5, 3, true, 4), 0);
  run_module("bn_train", vg_nn_batchnorm2d_new(3, 1e-5f, 0.1f, true, true), 1);
  vg_nn_module *bn = vg_nn_batchnorm2d_new(3, 1e-5f, 0.1f, true, true);
  vg_nn_train(bn, false);
  run_module("bn_eval", bn, 0);
  run_module("bn_cma", vg_nn_batchnorm2d_new(2, 1e-5f, -1.0f, false, true), 2);
  run_module("ln_chw", vg_nn_layernorm_new(3, (int64_t[]){3, 4, 5}, 1e-5f, true), 0);
  run_module("softplus", vg_nn_softplus_new(2.0f, 5.0f), 0);
  run_module("leaky", vg_nn_leakyrelu_new(0.2f), 0);
  run_module("gelu", vg_nn_gelu_new(), 0);
  run_module("up_size", vg_nn_upsample_bilinear_new(9, 11, 0, 0, false), 0);
  run_module("up_scale_ac", vg_nn_upsample_bilinear_new(0, 0, 2, 2, true), 0);
  vg_pool2d_opts po = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .count_include_pad = true};
  run_module("avgpool", vg_nn_avgpool2d_new(po), 0);
  run_module("maxpool", vg_nn_maxpool2d_new(po), 0);
  run_module("adaptive", vg_nn_adaptive_avgpool2d_new(2, 3), 0);
}

/* ---- state-dict names ---- */
static void check_keys(const char *name, vg_nn_module *m) {
  char key[128];
  const vg_fx_tensor *k = need((snprintf(key, sizeof key, "%s.keys", name), key));
  char *want = calloc(1, (size_t)k->n + 1);
  for (int64_t i = 0; i < k->n; i++) want[i] = (char)(int)k->data[i];
  vg_nn_list sd = vg_nn_state_dict(m);
  size_t len = 0;
  for (int i = 0; i < sd.n; i++) len += strlen(sd.names[i]) + 1;
  char *got = calloc(1, len + 1);
  for (int i = 0; i < sd.n; i++) {
    if (i) strcat(got, "\n");
    strcat(got, sd.names[i]);
  }
  VG_CHECK(!strcmp(got, want), "%s: state_dict keys in torch's order (%d keys)", name, sd.n);
  if (strcmp(got, want)) printf("   got:\n%s\n   want:\n%s\n", got, want);
  bool shapes = true;
  for (int i = 0; i < sd.n; i++) {
    const vg_fx_tensor *w = need((snprintf(key, sizeof key, "%s.sd.%s", name, sd.names[i]), key));
    bool ok = w->n == vg_numel(sd.tensors[i]) &&
              same_shape(sd.tensors[i], need((snprintf(key, sizeof key, "%s.shape.%s", name, sd.names[i]), key)));
    if (!ok) printf("   shape of %s differs\n", sd.names[i]), shapes = false;
  }
  VG_CHECK(shapes, "%s: every state-dict tensor has torch's shape", name);
  vg_tensor *nbt = NULL;
  bool nbt_buf = false;
  for (int i = 0; i < sd.n; i++)
    if (strstr(sd.names[i], "num_batches_tracked")) nbt = sd.tensors[i], nbt_buf = sd.is_buffer[i];
  VG_CHECK(nbt && nbt->dtype == VG_I64 && nbt->ndim == 0 && nbt_buf,
           "%s: num_batches_tracked is an i64 0-d buffer", name);
  int64_t np = vg_nn_num_params(m, false);
  float want_np = need((snprintf(key, sizeof key, "%s.nparams", name), key))->data[0];
  VG_CHECK(np == (int64_t)want_np, "%s: %lld parameters (torch %g)", name, (long long)np, (double)want_np);
  vg_nn_list_free(&sd);
  free(got);
  free(want);
}

static void test_state_dict(void) {
  vg_nn_module *seq = vg_nn_sequential_new(
      4, (vg_nn_module *[]){vg_nn_conv2d_new(3, 4, 3, 3, (vg_nn_conv2d_opts){0}, 1), vg_nn_batchnorm2d_new(4, 1e-5f, 0.1f, true, true),
                            vg_nn_relu_new(), vg_nn_linear_new(4, 2, true, 2)});
  check_keys("seq", seq);
  vg_nn_module *inner1 = vg_nn_sequential_new(2, (vg_nn_module *[]){
      vg_nn_conv2d_new(3, 4, 3, 3, (vg_nn_conv2d_opts){.no_bias = true}, 3), vg_nn_batchnorm2d_new(4, 1e-5f, 0.1f, true, true)});
  vg_nn_module *inner2 = vg_nn_sequential_new(3, (vg_nn_module *[]){
      vg_nn_layernorm_new(3, (int64_t[]){4, 2, 2}, 1e-5f, true), vg_nn_dropout_new(0.1f, 7), vg_nn_linear_new(2, 2, true, 4)});
  vg_nn_module *nested = vg_nn_sequential_new(3, (vg_nn_module *[]){inner1, vg_nn_relu_new(), inner2});
  check_keys("nested", nested);

  /* look-ups, modes, freezing, counts */
  VG_CHECK(vg_nn_get(nested, "0.1.running_var") == vg_nn_buffer(vg_nn_child_get(inner1, "1"), "running_var") &&
               vg_nn_get(nested, "2.2.bias") && !vg_nn_get(nested, "2.2.nope") && !vg_nn_get(nested, "5.weight") &&
               !vg_nn_get(nested, "0"),
           "vg_nn_get resolves dotted names and refuses unknown ones");
  vg_nn_train(nested, false);
  bool all_eval = !nested->training && !inner1->training && !vg_nn_child_get(inner2, "1")->training;
  vg_nn_train(nested, true);
  VG_CHECK(all_eval && vg_nn_child_get(inner2, "1")->training, "train/eval is recursive");
  int64_t total = vg_nn_num_params(nested, false);
  vg_nn_requires_grad(inner1, false);
  int64_t trainable = vg_nn_num_params(nested, true);
  VG_CHECK(trainable == total - (4 * 3 * 9 + 8) && !vg_nn_get(nested, "0.0.weight")->requires_grad &&
               vg_nn_get(nested, "2.0.weight")->requires_grad,
           "freezing a sub-tree: %lld of %lld parameters trainable", (long long)trainable, (long long)total);
  /* a frozen BN in eval mode still computes; grads flow only to unfrozen params */
  vg_nn_train(inner1, false);
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){2, 3, 4, 4}, 5);
  vg_tensor *y = vg_nn_forward(nested, x);
  char b[64];
  VG_CHECK(y && y->ndim == 4 && y->shape[1] == 4 && y->shape[3] == 2, "nested Sequential forward: %s",
           y ? vg_shape_str(y, b, sizeof b) : vg_last_error());
  if (y) vg_backward(vg_sum_all(y));
  VG_CHECK(!vg_nn_get(nested, "0.0.weight")->grad && vg_nn_get(nested, "2.2.weight")->grad,
           "frozen parameters get no grad, the others do");
  vg_scope_end();
  vg_nn_free(seq);
  vg_nn_free(nested);
}

static void test_dropout(void) {
  vg_nn_module *a = vg_nn_dropout_new(0.5f, 11), *b = vg_nn_dropout_new(0.5f, 11);
  vg_scope_begin();
  vg_tensor *x = vg_full(VG_F32, 1, (int64_t[]){4096}, 1.0);
  float *y1 = vg_f32(vg_nn_forward(a, x)), *y2 = vg_f32(vg_nn_forward(a, x)), *z1 = vg_f32(vg_nn_forward(b, x));
  int same12 = 0, same1z = 0, zeros = 0, twos = 0;
  for (int i = 0; i < 4096; i++) {
    same12 += y1[i] == y2[i];
    same1z += y1[i] == z1[i];
    zeros += y1[i] == 0;
    twos += y1[i] == 2.0f;
  }
  VG_CHECK(same1z == 4096 && same12 < 3000 && zeros + twos == 4096 && abs(zeros - 2048) < 200,
           "Dropout(0.5): same seed same masks, fresh mask per call, kept values scaled by 2 (%d dropped)", zeros);
  vg_nn_train(a, false);
  VG_CHECK(vg_nn_forward(a, x) == x, "Dropout in eval mode is the identity");
  vg_scope_end();
  vg_nn_free(a);
  vg_nn_free(b);
}

/* ---- init ---- */
static void stats(const vg_tensor *t, double *mean, double *sd, double *amax) {
  const float *d = vg_f32(t);
  int64_t n = vg_numel(t);
  double s = 0, s2 = 0, m = 0;
  for (int64_t i = 0; i < n; i++) s += d[i], m = fmax(m, fabs(d[i]));
  *mean = s / n;
  for (int64_t i = 0; i < n; i++) s2 += (d[i] - *mean) * (d[i] - *mean);
  *sd = sqrt(s2 / n);
  *amax = m;
}

static void test_init(void) {
  double mean, sd, amax;
  VG_CHECK(fabs(vg_init_gain(VG_GAIN_TANH, 0) - 5.0 / 3) < 1e-15 && fabs(vg_init_gain(VG_GAIN_RELU, 0) - sqrt(2)) < 1e-15 &&
               fabs(vg_init_gain(VG_GAIN_LEAKY_RELU, 0.2) - sqrt(2 / 1.04)) < 1e-15 &&
               vg_init_gain(VG_GAIN_SELU, 0) == 0.75 && vg_init_gain(VG_GAIN_CONV, 0) == 1,
           "calculate_gain values");
  vg_nn_module *c = vg_nn_conv2d_new(32, 64, 3, 3, (vg_nn_conv2d_opts){0}, 42);
  double bound = 1 / sqrt(32 * 9.0);
  stats(vg_nn_param(c, "weight"), &mean, &sd, &amax);
  VG_CHECK(amax <= bound && amax > 0.99 * bound && fabs(sd - bound / sqrt(3)) < 0.03 * bound / sqrt(3) &&
               fabs(mean) < 0.05 * bound,
           "Conv2d weight: U(+-1/sqrt(fan_in)) = +-%.4f (max %.4f, sd %.4f, mean %.2g)", bound, amax, sd, mean);
  stats(vg_nn_param(c, "bias"), &mean, &sd, &amax);
  VG_CHECK(amax <= bound && amax > 0.5 * bound, "Conv2d bias within +-1/sqrt(fan_in) (max %.4f)", amax);
  vg_nn_module *c2 = vg_nn_conv2d_new(32, 64, 3, 3, (vg_nn_conv2d_opts){0}, 42);
  vg_nn_module *c3 = vg_nn_conv2d_new(32, 64, 3, 3, (vg_nn_conv2d_opts){0}, 43);
  VG_CHECK(!memcmp(vg_f32(vg_nn_param(c, "weight")), vg_f32(vg_nn_param(c2, "weight")), 4 * 18432) &&
               memcmp(vg_f32(vg_nn_param(c, "weight")), vg_f32(vg_nn_param(c3, "weight")), 4 * 18432) &&
               vg_f32(vg_nn_param(c, "weight"))[0] != vg_f32(vg_nn_param(c, "bias"))[0],
           "init is seeded: same seed same weights, another seed other weights");
  vg_nn_free(c), vg_nn_free(c2), vg_nn_free(c3);

  vg_tensor *t = vg_tensor_new(VG_F32, 2, (int64_t[]){200, 300});
  vg_init_xavier_uniform(t, 2.0, 1);
  stats(t, &mean, &sd, &amax);
  double a = 2.0 * sqrt(6.0 / 500);
  VG_CHECK(amax <= a && amax > 0.99 * a && fabs(sd - a / sqrt(3)) < 0.02 * a, "xavier_uniform(gain 2): bound %.4f, sd %.4f", a, sd);
  vg_init_xavier_normal(t, 1.0, 2);
  stats(t, &mean, &sd, &amax);
  VG_CHECK(fabs(sd - sqrt(2.0 / 500)) < 0.02 * sqrt(2.0 / 500), "xavier_normal: sd %.5f (want %.5f)", sd, sqrt(2.0 / 500));
  vg_init_kaiming_normal(t, 0, true, VG_GAIN_RELU, 3);
  stats(t, &mean, &sd, &amax);
  VG_CHECK(fabs(sd - sqrt(2.0 / 200)) < 0.02 * sqrt(2.0 / 200), "kaiming_normal(fan_out, relu): sd %.5f (want %.5f)", sd,
           sqrt(2.0 / 200));
  vg_init_kaiming_uniform(t, 0.1, false, VG_GAIN_LEAKY_RELU, 4);
  stats(t, &mean, &sd, &amax);
  double kb = sqrt(3.0) * sqrt(2 / 1.01) / sqrt(300.0);
  VG_CHECK(amax <= kb * (1 + 1e-6) && amax > 0.99 * kb, "kaiming_uniform(a 0.1, fan_in): bound %.5f (max %.5f)", kb, amax);
  vg_init_constant(t, 0.25);
  stats(t, &mean, &sd, &amax);
  VG_CHECK(mean == 0.25 && sd == 0, "constant_");
  vg_tensor *v = vg_tensor_new(VG_F32, 1, (int64_t[]){5});
  VG_CHECK(vg_init_xavier_uniform(v, 1, 1) == VG_ERR_ARG, "xavier on a 1-d tensor refused: %s", vg_last_error());
  vg_tensor_free(v);
  vg_tensor_free(t);

  /* orthogonal: rows or columns orthonormal (x gain) */
  int64_t shapes[3][4] = {{30, 50, 0, 0}, {50, 30, 0, 0}, {8, 4, 3, 3}};
  int nd[3] = {2, 2, 4};
  for (int k = 0; k < 3; k++) {
    vg_tensor *q = vg_tensor_new(VG_F32, nd[k], shapes[k]);
    vg_init_orthogonal(q, 1.5, 9 + k);
    int64_t r = q->shape[0], cl = vg_numel(q) / r;
    const float *d = vg_f32(q);
    bool rows = r <= cl;   /* Q Q^T = gain^2 I when rows <= cols, else Q^T Q */
    int64_t m = rows ? r : cl;
    double err = 0;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < m; j++) {
        double s = 0;
        if (rows) for (int64_t c2 = 0; c2 < cl; c2++) s += (double)d[i * cl + c2] * d[j * cl + c2];
        else for (int64_t c2 = 0; c2 < r; c2++) s += (double)d[c2 * cl + i] * d[c2 * cl + j];
        err = fmax(err, fabs(s - (i == j ? 2.25 : 0)));
      }
    char b[64];
    VG_CHECK(err < 1e-5, "orthogonal %s (gain 1.5): max |Q Q^T - gain^2 I| = %.2g", vg_shape_str(q, b, sizeof b), err);
    vg_tensor_free(q);
  }
  vg_nn_module *bn = vg_nn_batchnorm2d_new(5, 1e-5f, 0.1f, true, true);
  VG_CHECK(vg_f32(vg_nn_param(bn, "weight"))[4] == 1 && vg_f32(vg_nn_param(bn, "bias"))[4] == 0 &&
               vg_f32(vg_nn_buffer(bn, "running_var"))[4] == 1 && vg_f32(vg_nn_buffer(bn, "running_mean"))[4] == 0,
           "BatchNorm2d init: weight 1, bias 0, running_var 1, running_mean 0");
  vg_nn_free(bn);
}

static void test_errors(void) {
  VG_CHECK(!vg_nn_conv2d_new(3, 4, 3, 3, (vg_nn_conv2d_opts){.groups = 2}, 0), "Conv2d in %% groups != 0 refused: %s",
           vg_last_error());
  VG_CHECK(!vg_nn_conv2d_new(3, 4, 3, 3, (vg_nn_conv2d_opts){.same_padding = true, .sh = 2}, 0),
           "padding='same' with stride 2 refused: %s", vg_last_error());
  vg_nn_module *bn = vg_nn_batchnorm2d_new(3, 1e-5f, 0.1f, true, true);
  vg_scope_begin();
  vg_tensor *y = vg_nn_forward(bn, vg_zeros(VG_F32, 4, (int64_t[]){2, 4, 3, 3}));
  VG_CHECK(!y && strstr(vg_last_error(), "batch_norm"), "BatchNorm2d with the wrong channel count: %s", vg_last_error());
  vg_scope_end();
  vg_nn_free(bn);
}

/* vg_nn_would_record: grad mode on and an input or a parameter (children included) that
 * requires grad -> true; frozen modules on plain inputs, or no-grad mode -> false */
static void test_would_record(void) {
  vg_nn_module *seq = vg_nn_sequential_new(2, (vg_nn_module *[]){vg_nn_linear_new(4, 3, true, 1), vg_nn_relu_new()});
  vg_tensor *x = vg_tensor_new(VG_F32, 2, (int64_t[]){2, 4});
  const vg_tensor *in[2] = {x, NULL};
  bool trainable = vg_nn_would_record(seq, 2, in);
  vg_nn_requires_grad(seq, false);
  bool frozen = vg_nn_would_record(seq, 2, in);
  vg_requires_grad_(x, true);
  bool grad_input = vg_nn_would_record(seq, 2, in);
  vg_no_grad_begin();
  bool nograd = vg_nn_would_record(seq, 2, in);
  vg_no_grad_end();
  VG_CHECK(trainable && !frozen && grad_input && !nograd && !vg_nn_would_record(NULL, 0, NULL),
           "would_record: trainable child %d, frozen %d, input with grad %d, no-grad mode %d", trainable, frozen,
           grad_input, nograd);
  vg_tensor_free(x);
  vg_nn_free(seq);
}

/* Conv2d + ReLU fused (vg_nn_forward_relu, and a Sequential's Conv2d, ReLU pairs): the
 * unfused values; one conv2d op and no relu op when nothing is recorded */
static float *host_copy(const vg_tensor *t) {
  float *p = malloc(sizeof(float) * (size_t)vg_numel(t));
  vg_to_host(t, VG_F32, p);
  return p;
}

static void test_fused_relu(void) {
  vg_scope_begin();
  vg_nn_module *c1 = vg_nn_conv2d_new(3, 5, 3, 3, (vg_nn_conv2d_opts){.ph = 1, .pw = 1}, 7);
  vg_nn_module *c2 = vg_nn_conv2d_new(5, 4, 1, 1, (vg_nn_conv2d_opts){0}, 8);
  vg_nn_module *seq = vg_nn_sequential_new(4, (vg_nn_module *[]){c1, vg_nn_relu_new(), c2, vg_nn_relu_new()});
  vg_tensor *x = vg_randn(4, (int64_t[]){2, 3, 6, 7}, 9);
  vg_tensor *want = vg_relu(vg_nn_forward(c2, vg_relu(vg_nn_forward(c1, x))));
  vg_tensor *trained = vg_nn_forward(seq, x);   /* parameters require grad: recorded, unfused */
  vg_no_grad_begin();
  vg_opstats s;
  vg_opstats_start();
  vg_tensor *fused = vg_nn_forward(seq, x), *one = vg_nn_forward_relu(c1, x);
  vg_opstats_stop(&s);
  vg_nn_module *linear = vg_nn_linear_new(7, 2, true, 3);
  vg_tensor *lin = vg_nn_forward_relu(linear, x);   /* not a conv: relu(forward) */
  vg_no_grad_end();
  float *hw = host_copy(want), *hf = host_copy(fused), *ht = host_copy(trained);
  VG_CHECK(s.calls[VG_OP_CONV2D] == 3 && s.calls[VG_OP_RELU] == 0, "no grad: Sequential(conv, relu, conv, relu) and "
           "forward_relu(conv) are 3 conv2d ops, no relu op (%lld, %lld)", (long long)s.calls[VG_OP_CONV2D],
           (long long)s.calls[VG_OP_RELU]);
  VG_CHECK_CLOSE(hf, hw, vg_numel(want), 0, 0, "fused Sequential == conv, relu, conv, relu");
  VG_CHECK_CLOSE(ht, hw, vg_numel(want), 0, 0, "recorded Sequential == conv, relu, conv, relu");
  VG_CHECK(trained->requires_grad && one && lin && lin->shape[3] == 2, "recorded output requires grad; forward_relu on a Linear");
  free(hw); free(hf); free(ht);
  vg_nn_free(seq);
  vg_nn_free(linear);
  vg_scope_end();
}

int main(void) {
  test_would_record();
  test_fused_relu();
  FX = vg_fixture_load(vg_test_fixture("nn/modules.vgfx"));
  if (!VG_CHECK(FX, "load tests/fixtures/nn/modules.vgfx")) return vg_test_finish();
  test_modules();
  test_state_dict();
  test_dropout();
  test_init();
  test_errors();
  vg_fixture_free(FX);
  vg_scope_release();
  return vg_test_finish();
}
