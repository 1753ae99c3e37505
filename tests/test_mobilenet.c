/* test_mobilenet — torchvision mobilenet_v3_large through the registry (nn/backbones/mobilenet.h):
 * architecture, state-dict names and shapes, parameter count, taps (stage outputs and CFLOW-AD's
 * projection taps) with their errors, truncation, init, golden features vs torchvision (float64
 * reference, Philox weights made here and in tools/gen_mobilenet_fixtures.py by the same scheme;
 * folded and recorded paths), a torchvision .pth loading by name, and CFLOW-AD end to end with
 * `--backbone mobilenet_v3_large`. */
#include "nn/backbones/mobilenet.h"
#include "autograd/autograd.h"
#include "base/json.h"
#include "methods/cflow/cflow.h"
#include "tests/common/fixture.h"
#include "tests/vgtest.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BASE_SEED 1000
#define NAME "mobilenet_v3_large"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static vg_nn_module *make(int n, const char *const *taps, uint64_t seed) { return vg_backbone_new(NAME, n, taps, seed); }

static void registry_and_taps(void) {
  const vg_backbone_desc *d = vg_backbone_find(NAME);
  VG_CHECK(d && !strcmp(d->family, "mobilenet_v3") && d->num_params == 5483032 && d->native_size == 0,
           "registry: %s, family mobilenet_v3, 5,483,032 parameters (torchvision)", NAME);
  /* the official CFLOW-AD taps */
  const char *cf[] = {"features.6.proj", "features.12.proj", "features.15.proj"};
  vg_nn_module *m = make(3, cf, 0);
  int last = -1;
  bool ok = m && vg_backbone_of(m) == d && vg_mobilenet_v3_info(m, &last) && last == 15 &&
            vg_backbone_num_features(m) == 3;
  static const int64_t ch[3] = {40, 112, 160};
  static const int st[3] = {8, 16, 32};
  for (int i = 0; ok && i < 3; i++)
    ok = vg_backbone_feature_channels(m, i) == ch[i] && vg_backbone_feature_stride(m, i) == st[i] &&
         !strcmp(vg_backbone_feature_name(m, i), cf[i]);
  VG_CHECK(ok, "CFLOW-AD taps features.{6,12,15}.proj: 40/112/160 channels at /8, /16, /32, built up to features.15");
  VG_CHECK(m && !vg_nn_get(m, "features.16.0.weight") && vg_nn_get(m, "features.15.block.3.1.running_var") &&
               !vg_nn_child_get(m, "classifier") && !m->training && vg_nn_num_params(m, true) == 0,
           "truncated after features.15 (no features.16, no classifier); eval, frozen");
  /* the torchvision module path of the projection conv is the same tap */
  const char *alias[] = {"features.1.block.1.0", "features.4.block.3.0", "features.7.block.2.0"};
  vg_nn_module *a = make(3, alias, 0);
  VG_CHECK(a && !strcmp(vg_backbone_feature_name(a, 0), "features.1.proj") &&
               !strcmp(vg_backbone_feature_name(a, 2), "features.7.proj") && vg_backbone_feature_channels(a, 1) == 40,
           "torchvision path features.K.block.J.0 (J = the projection's index) = features.K.proj");
  vg_nn_free(a);
  vg_nn_free(m);
  /* every stage: channels and strides as torchvision */
  static const int CH[17] = {16, 16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160, 960};
  static const int ST[17] = {2, 2, 4, 4, 8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32, 32, 32};
  char nm[17][16];
  const char *all[17];
  for (int k = 0; k < 17; k++) snprintf(nm[k], sizeof nm[k], "features.%d", k), all[k] = nm[k];
  m = make(17, all, 3);
  ok = m && vg_backbone_num_features(m) == 17;
  for (int k = 0; ok && k < 17; k++) ok = vg_backbone_feature_channels(m, k) == CH[k] && vg_backbone_feature_stride(m, k) == ST[k];
  VG_CHECK(ok, "features.0..16: channels and strides as torchvision");
  vg_scope_begin();
  vg_tensor *f[17] = {0}, *x = vg_rand(4, (int64_t[]){1, 3, 64, 96}, 5);
  vg_status s = m ? vg_backbone_features(m, x, f) : VG_ERR_ARG;
  ok = s == VG_OK;
  for (int k = 0; ok && k < 17; k++)
    ok = f[k] && f[k]->shape[1] == CH[k] && f[k]->shape[2] == 64 / ST[k] && f[k]->shape[3] == 96 / ST[k];
  VG_CHECK(ok, "all 17 stage outputs at once: shapes (N, C, H/s, W/s)");
  VG_CHECK(m && vg_backbone_features(m, vg_rand(3, (int64_t[]){3, 64, 64}, 5), f) == VG_ERR_ARG,
           "3-d input refused (%s)", vg_last_error());
  vg_scope_end();
  vg_nn_free(m);
  /* errors */
  struct { int n; const char *t[2]; const char *want; } B[] = {
      {1, {"features.17"}, "features.17"},      {1, {"features.0.proj"}, "features.0.proj"},
      {1, {"features.16.proj"}, "features.16.proj"}, {1, {"features.6.block.2.0"}, "features.6.block.2.0"},
      {1, {"features.06"}, "features.06"},      {1, {"layer2"}, "layer2"},
      {1, {"features.6.proj.x"}, "features.6.proj.x"}, {2, {"features.6", "features.6.proj"}, "order"},
      {2, {"features.6", "features.6"}, "order"}, {2, {"features.12", "features.4"}, "order"},
  };
  for (size_t i = 0; i < sizeof B / sizeof B[0]; i++) {
    vg_nn_module *e = make(B[i].n, B[i].t, 0);
    VG_CHECK(!e && strstr(vg_last_error(), B[i].want), "tap list %s%s%s refused (%s)", B[i].t[0],
             B[i].n > 1 ? ", " : "", B[i].n > 1 ? B[i].t[1] : "", vg_last_error());
    vg_nn_free(e);
  }
}

static void architecture(const vg_fixture *fx) {
  const char *t16[] = {"features.16"};
  vg_nn_module *m = make(1, t16, 1);
  const vg_fx_tensor *np = fx ? vg_fixture_get(fx, "nparams") : NULL;
  int64_t p = m ? vg_nn_num_params(m, false) : -1;
  /* the classifier torchvision adds: Linear(960, 1280), Hardswish, Dropout, Linear(1280, 1000) */
  int64_t cls = 960 * 1280 + 1280 + 1280 * 1000 + 1000;
  VG_CHECK(np && p == (int64_t)np->data[1] && p + cls == (int64_t)np->data[0] && p + cls == 5483032,
           "features.0..16: %lld parameters (torchvision features %lld); + classifier = %lld (full model %lld)",
           (long long)p, np ? (long long)np->data[1] : -1LL, (long long)(p + cls), np ? (long long)np->data[0] : -1LL);
  vg_nn_list sd = vg_nn_state_dict(m);
  VG_CHECK(sd.n == 308, "%d state-dict entries (torchvision's features.*: 308)", sd.n);
  vg_nn_list_free(&sd);
  struct { const char *k; int64_t s0, s1, s2; } N[] = {
      {"features.0.0.weight", 16, 3, 3},          {"features.1.block.0.0.weight", 16, 1, 3},
      {"features.1.block.1.0.weight", 16, 16, 1}, {"features.2.block.0.0.weight", 64, 16, 1},
      {"features.2.block.1.0.weight", 64, 1, 3},  {"features.4.block.1.0.weight", 72, 1, 5},
      {"features.4.block.2.fc1.weight", 24, 72, 1}, {"features.4.block.2.fc1.bias", 24, 0, 0},
      {"features.4.block.2.fc2.weight", 72, 24, 1}, {"features.4.block.3.0.weight", 40, 72, 1},
      {"features.5.block.2.fc1.weight", 32, 120, 1}, {"features.7.block.2.0.weight", 80, 240, 1},
      {"features.11.block.2.fc1.weight", 120, 480, 1}, {"features.13.block.1.0.weight", 672, 1, 5},
      {"features.15.block.2.fc2.weight", 960, 240, 1}, {"features.16.0.weight", 960, 160, 1},
      {"features.16.1.running_var", 960, 0, 0},
  };
  bool ok = m != NULL;
  for (size_t i = 0; ok && i < sizeof N / sizeof N[0]; i++) {
    vg_tensor *t = vg_nn_get(m, N[i].k);
    ok = t && t->shape[0] == N[i].s0 && (N[i].s1 == 0 || (t->shape[1] == N[i].s1 && t->shape[2] == N[i].s2));
    if (!ok) fprintf(stderr, "# %s\n", N[i].k);
  }
  VG_CHECK(ok, "torchvision names and shapes (expand, depthwise, SE fc1/fc2, projection, features.16)");
  vg_nn_module *dw = m ? vg_nn_child_get(vg_nn_child_get(vg_nn_child_get(vg_nn_child_get(vg_nn_child_get(m, "features"), "13"), "block"), "1"), "0") : NULL;
  VG_CHECK(dw && dw->u.conv.o.groups == 672 && dw->u.conv.o.sh == 2 && dw->u.conv.o.ph == 2,
           "features.13 depthwise: groups 672, stride 2, padding 2");
  vg_nn_module *bn16 = m ? vg_nn_child_get(vg_nn_child_get(vg_nn_child_get(m, "features"), "16"), "1") : NULL;
  VG_CHECK(bn16 && fabsf(bn16->u.bn.eps - 1e-3f) == 0 && fabsf(bn16->u.bn.momentum - 0.01f) == 0,
           "BatchNorm eps 1e-3, momentum 0.01");
  /* torchvision's init: kaiming_normal fan_out, conv bias 0, BN 1 / 0 */
  vg_tensor *w = m ? vg_nn_get(m, "features.16.0.weight") : NULL;
  if (w) {
    const float *d = vg_f32(w);
    double s = 0, s2 = 0;
    int64_t n = vg_numel(w);
    for (int64_t i = 0; i < n; i++) s += d[i], s2 += (double)d[i] * d[i];
    double sdv = sqrt(s2 / (double)n - (s / (double)n) * (s / (double)n)), want = sqrt(2.0 / 960);
    VG_CHECK(fabs(sdv / want - 1) < 0.03, "conv init std %.5f ~ kaiming_normal fan_out %.5f", sdv, want);
  }
  vg_tensor *fb = m ? vg_nn_get(m, "features.15.block.2.fc1.bias") : NULL, *bw = m ? vg_nn_get(m, "features.3.block.0.1.weight") : NULL;
  VG_CHECK(fb && bw && vg_f32(fb)[7] == 0.0f && vg_f32(bw)[3] == 1.0f, "SE conv bias 0, BN weight 1");
  vg_nn_module *m2 = make(1, t16, 1), *m3 = make(1, t16, 2);
  const char *k = "features.9.block.1.0.weight";
  size_t nb = m ? (size_t)vg_numel(vg_nn_get(m, k)) * sizeof(float) : 0;
  VG_CHECK(m && m2 && m3 && !memcmp(vg_f32(vg_nn_get(m, k)), vg_f32(vg_nn_get(m2, k)), nb) &&
               memcmp(vg_f32(vg_nn_get(m, k)), vg_f32(vg_nn_get(m3, k)), nb),
           "init deterministic per seed, different across seeds");
  vg_nn_free(m2);
  vg_nn_free(m3);
  vg_nn_free(m);
}

static double rel_err(const float *got, const float *want, int64_t n, double scale) {
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= e)) e = d;
  }
  return e / scale;
}

static double worst = 0;

/* one fixture case: taps at (n, 3, h, w) with Philox input seed; folded (no_grad) or recorded */
static void golden_case(const vg_fixture *fx, const char *tag, int ntaps, const char *const *taps, int64_t n,
                        int64_t h, int64_t w, uint64_t in_seed, bool folded) {
  vg_nn_module *m = make(ntaps, taps, 0);
  if (!VG_CHECK(m && vg_backbone_init_philox(m, BASE_SEED) == VG_OK, "%s: built, Philox weights", tag)) {
    vg_nn_free(m);
    return;
  }
  vg_scope_begin();
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){n, 3, h, w});
  vg_uniform_(x, -2.0f, 2.0f, in_seed);
  vg_tensor *f[24] = {0};
  if (folded) vg_no_grad_begin();
  else vg_nn_requires_grad(m, true);
  double t0 = now();
  vg_status st = vg_backbone_features(m, x, f);
  double dt = now() - t0;
  if (folded) vg_no_grad_end();
  VG_CHECK(st == VG_OK, "%s %s: features in %.3f s%s%s", tag, folded ? "folded" : "recorded", dt, st ? ": " : "",
           st ? vg_last_error() : "");
  for (int i = 0; i < ntaps && st == VG_OK; i++) {
    char key[96];
    const vg_fx_tensor *e[5];
    static const char *const what[5] = {"shape", "maxabs", "chmean", "stride", "sub"};
    for (int j = 0; j < 5; j++) {
      snprintf(key, sizeof key, "%s.%s.%s", tag, taps[i], what[j]);
      e[j] = vg_fixture_get(fx, key);
    }
    vg_tensor *o = f[i];
    if (!VG_CHECK(e[0] && e[1] && e[2] && e[3] && e[4] && o, "%s %s: fixture entries", tag, taps[i])) continue;
    bool shape_ok = o->ndim == 4;
    for (int d = 0; d < 4 && shape_ok; d++) shape_ok = o->shape[d] == (int64_t)e[0]->data[d];
    if (!VG_CHECK(shape_ok, "%s %s: shape as torchvision's", tag, taps[i])) continue;
    const float *g = vg_f32(o);
    int64_t stride = (int64_t)e[3]->data[0], C = o->shape[1], HW = o->shape[2] * o->shape[3];
    double scale = e[1]->data[0];
    float *gs = malloc(sizeof(float) * (size_t)e[4]->n), *means = calloc((size_t)C, sizeof(float));
    for (int64_t j = 0; j < e[4]->n; j++) gs[j] = g[j * stride];
    double e_sub = rel_err(gs, e[4]->data, e[4]->n, scale), gmax = 0;
    for (int64_t c = 0; c < C; c++) {
      double s = 0;
      for (int64_t b = 0; b < o->shape[0]; b++)
        for (int64_t j = 0; j < HW; j++) {
          double v = g[(b * C + c) * HW + j];
          s += v;
          if (fabs(v) > gmax) gmax = fabs(v);
        }
      means[c] = (float)(s / (double)(o->shape[0] * HW));
    }
    double e_mean = rel_err(means, e[2]->data, C, scale), e_max = fabs(gmax - scale) / scale;
    free(gs);
    free(means);
    double e_all = fmax(e_sub, fmax(e_mean, e_max));
    if (!(e_all <= worst)) worst = e_all;
    VG_CHECK(e_all <= 1e-5, "%s %s %s: max err / max|f| (%.4f): subsample %.2e (%lld values), channel means %.2e, "
             "max|f| %.2e <= 1e-5", tag, folded ? "folded" : "recorded", taps[i], scale, e_sub, (long long)e[4]->n,
             e_mean, e_max);
  }
  if (!folded) vg_nn_requires_grad(m, false);
  vg_scope_end();
  vg_nn_free(m);
}

static void golden(const vg_fixture *fx) {
  const char *t64[] = {"features.0", "features.1", "features.3", "features.4.proj", "features.6.proj", "features.6",
                       "features.10", "features.12.proj", "features.12", "features.15.proj", "features.15",
                       "features.16"};
  const char *t72[] = {"features.2.proj", "features.6.proj", "features.12.proj", "features.15.proj", "features.16"};
  golden_case(fx, "n2_64", 12, t64, 2, 64, 64, 7, true);
  golden_case(fx, "n2_64", 12, t64, 2, 64, 64, 7, false);
  golden_case(fx, "n1_72x56", 5, t72, 1, 72, 56, 9, true);
  golden_case(fx, "n1_72x56", 5, t72, 1, 72, 56, 9, false);
  /* a single later tap gives the same values as in a longer tap list */
  const char *one[] = {"features.12.proj"};
  golden_case(fx, "n2_64", 1, one, 2, 64, 64, 7, true);
  /* full size, by hand: tools/gen_mobilenet_fixtures.py --full PATH; VIGIL_MNV3_FULL=PATH */
  const char *full = getenv("VIGIL_MNV3_FULL");
  vg_fixture *ff = full && *full ? vg_fixture_load(full) : NULL;
  if (ff) {
    const char *t256[] = {"features.6.proj", "features.12.proj", "features.15.proj", "features.16"};
    golden_case(ff, "n1_256", 4, t256, 1, 256, 256, 21, true);
    golden_case(ff, "n1_256", 4, t256, 1, 256, 256, 21, false);
    vg_fixture_free(ff);
  } else {
    printf("SKIP full-size 256x256 check (VIGIL_MNV3_FULL=%s; make it with tools/gen_mobilenet_fixtures.py --full PATH)\n",
           full ? full : "unset");
  }
  const vg_fx_tensor *c = vg_fixture_get(fx, "philox.check");
  vg_scope_begin();
  vg_tensor *u = vg_rand(1, (int64_t[]){8}, BASE_SEED);
  VG_CHECK(c && c->n == 8 && !memcmp(vg_f32(u), c->data, 8 * sizeof(float)), "vg_rand bit-identical to tools/philox.py");
  vg_scope_end();
}

/* tests/fixtures/mnv3_sd.pth: torch.save of torchvision's features.0..2 state dict (its own init) */
static void load_pth(const vg_fixture *fx) {
  const char *path = vg_test_fixture("mnv3_sd.pth");
  const char *t2[] = {"features.2"}, *t1[] = {"features.1"}, *t3[] = {"features.3"};
  vg_nn_module *m = make(1, t2, 5);
  vg_status st = m ? vg_nn_load_state_file(m, path, true) : VG_ERR_ARG;
  VG_CHECK(st == VG_OK, "torchvision state dict (features.0..2, %s) loads by name, strict%s%s", path,
           st ? ": " : "", st ? vg_last_error() : "");
  const vg_fx_tensor *want = vg_fixture_get(fx, "sd.features.2");
  vg_scope_begin();
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){1, 3, 32, 32}), *f[1] = {0};
  vg_uniform_(x, -2.0f, 2.0f, 11);
  if (st == VG_OK && want && vg_backbone_features(m, x, f) == VG_OK && vg_numel(f[0]) == want->n) {
    double mx = 0;
    for (int64_t i = 0; i < want->n; i++) mx = fmax(mx, fabs(want->data[i]));
    double e = rel_err(vg_f32(f[0]), want->data, want->n, mx);
    VG_CHECK(e <= 1e-5, "features.2 with the loaded weights vs torchvision (f32): max err / max|f| %.2e <= 1e-5", e);
  } else {
    VG_CHECK(false, "features.2 with the loaded weights: %s", vg_last_error());
  }
  vg_scope_end();
  vg_nn_free(m);
  /* a model truncated earlier: not strict ignores the extra keys; a later stage is missing */
  m = make(1, t1, 5);
  VG_CHECK(m && vg_nn_load_state_file(m, path, false) == VG_OK, "features.0..1 model: not-strict load ignores features.2");
  vg_nn_free(m);
  m = make(1, t3, 5);
  VG_CHECK(m && vg_nn_load_state_file(m, path, true) != VG_OK && strstr(vg_last_error(), "features.3"),
           "features.0..3 model, strict: the missing features.3 keys named (%s)", vg_last_error());
  vg_nn_free(m);
}

/* CFLOW built with the backbone: its encoder is the registry's mobilenet with the official taps,
 * one decoder per tap of 40 / 112 / 160 channels, fibres at /8, /16, /32 */
static void cflow_inproc(void) {
  const char *txt = "{\"backbone\": \"mobilenet_v3_large\", \"input_size\": 64, \"coupling_blocks\": 1, "
                    "\"condition_vector\": 8, \"fiber_batch\": 8}";
  vg_json *cfg = NULL;
  vg_method *m = NULL;
  vg_status st = vg_json_parse(txt, strlen(txt), NULL, &cfg);
  if (st == VG_OK) st = vg_cflow_new(cfg, &m);
  if (!VG_CHECK(st == VG_OK && m, "cflow with backbone mobilenet_v3_large builds%s%s", st ? ": " : "",
                st ? vg_last_error() : "")) {
    vg_json_free(cfg);
    return;
  }
  vg_nn_module *enc = vg_nn_child_get(vg_nn_child_get(vg_cflow_module(m), "encoder"), "feature_extractor");
  static const char *const want[3] = {"features.6.proj", "features.12.proj", "features.15.proj"};
  static const int64_t ch[3] = {40, 112, 160};
  bool ok = enc && vg_backbone_of(enc) == vg_backbone_find(NAME) && vg_cflow_num_layers(m) == 3;
  for (int l = 0; ok && l < 3; l++)
    ok = !strcmp(vg_backbone_feature_name(enc, l), want[l]) && vg_backbone_feature_channels(enc, l) == ch[l];
  VG_CHECK(ok, "cflow encoder: the registry's mobilenet_v3_large with taps features.{6,12,15}.proj (40/112/160 ch)");
  vg_scope_begin();
  vg_tensor *x = vg_rand(4, (int64_t[]){2, 3, 64, 64}, 4), *e[VG_CFLOW_MAX_LAYERS] = {0}, *c[VG_CFLOW_MAX_LAYERS] = {0};
  int64_t h[VG_CFLOW_MAX_LAYERS] = {0}, w[VG_CFLOW_MAX_LAYERS] = {0};
  st = vg_cflow_fibres(m, x, e, c, h, w);
  ok = st == VG_OK;
  for (int l = 0; ok && l < 3; l++)
    ok = h[l] == 64 / (8 << l) && w[l] == h[l] && e[l]->shape[0] == 2 * h[l] * w[l] && e[l]->shape[1] == ch[l] &&
         c[l] && c[l]->shape[1] == 8;
  VG_CHECK(ok, "cflow fibres: 8x8, 4x4, 2x2 maps of 40/112/160 channels, condition 8%s%s", st ? ": " : "",
           st ? vg_last_error() : "");
  /* the fibres are the encoder's own features (the projection conv before BN) */
  vg_tensor *f[3] = {0};
  vg_no_grad_begin();
  st = vg_backbone_features(enc, x, f);
  vg_no_grad_end();
  ok = st == VG_OK && e[1];
  if (ok) {   /* fibre (n, y, x) of tap 1 = f[1][n, :, y, x] */
    const float *fe = vg_f32(vg_contiguous(e[1])), *ff = vg_f32(f[1]);
    for (int64_t n = 0; ok && n < 2; n++)
      for (int64_t p = 0; ok && p < 16; p++)
        for (int64_t k = 0; ok && k < 112; k++) ok = fe[(n * 16 + p) * 112 + k] == ff[(n * 112 + k) * 16 + p];
  }
  VG_CHECK(ok, "cflow tap-1 fibres equal the backbone's features.12.proj values");
  vg_scope_end();
  vg_method_free(m);
  vg_json_free(cfg);
}

/* `vigil train cflow --backbone mobilenet_v3_large` on the synthetic data, a few steps */
static void cflow_cli(const char *argv0) {
  char vigil[1024], cmd[4096], out[] = "/tmp/vg_mnv3_cflow_XXXXXX";
  if (!vg_test_find_vigil(argv0, vigil, sizeof vigil)) {
    printf("SKIP cflow end to end: the vigil program is not built beside this test\n");
    return;
  }
  if (!VG_CHECK(mkdtemp(out), "cflow end to end: temp folder")) return;
  snprintf(cmd, sizeof cmd,
           "VIGIL_THREADS=2 %s train cflow --backbone mobilenet_v3_large --steps 3 --batch 2 --set input_size=128 "
           "--set fiber_batch=16 --set coupling_blocks=2 --out %s/run",
           vigil, out);
  int rc = -1;
  char *o = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 0, "vigil train cflow --backbone mobilenet_v3_large: 3 steps, test-set maps (rc %d)%s%s", rc,
           rc ? "\n" : "", rc && o ? o : "");
  free(o);
  char p[1200], cfg[8192] = {0};
  snprintf(p, sizeof p, "%s/run/config.json", out);
  FILE *fp = fopen(p, "rb");
  if (fp) {
    size_t r = fread(cfg, 1, sizeof cfg - 1, fp);
    cfg[r] = 0;
    fclose(fp);
  }
  VG_CHECK(strstr(cfg, "\"mobilenet_v3_large\"") && strstr(cfg, "\"features.6.proj\"") &&
               strstr(cfg, "\"features.12.proj\"") && strstr(cfg, "\"features.15.proj\""),
           "the run's config names the backbone and its official taps (the default layers)");
  snprintf(p, sizeof p, "%s/run/scores.json", out);
  VG_CHECK(access(p, R_OK) == 0, "the run scored the test split (scores.json)");
  /* taps of the other family refused, by name */
  snprintf(cmd, sizeof cmd, "%s train cflow --backbone mobilenet_v3_large --steps 1 --set 'layers=[\"layer2\"]' --out %s/bad",
           vigil, out);
  o = vg_test_run(cmd, &rc);
  VG_CHECK(rc != 0 && o && strstr(o, "features.6.proj"), "layers [\"layer2\"] with mobilenet_v3_large refused, naming its taps");
  free(o);
  snprintf(cmd, sizeof cmd, "%s train cflow --backbone resnet18 --steps 1 --set 'layers=[\"features.6.proj\"]' --out %s/bad2",
           vigil, out);
  o = vg_test_run(cmd, &rc);
  VG_CHECK(rc != 0 && o && strstr(o, "layer1"), "layers [\"features.6.proj\"] with resnet18 refused");
  free(o);
  vg_test_tmp_done(out);
}

int main(int argc, char **argv) {
  (void)argc;
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("mnv3_features.vgfx"));
  VG_CHECK(fx, "fixture mnv3_features.vgfx loads");
  registry_and_taps();
  architecture(fx);
  if (fx) golden(fx);
  printf("# worst feature error vs torchvision: %.2e of max|f|\n", worst);
  if (fx) load_pth(fx);
  cflow_inproc();
  cflow_cli(argv[0]);
  vg_fixture_free(fx);
  return vg_test_finish();
}
