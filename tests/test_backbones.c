/* test_backbones — torchvision ResNets: architecture and state-dict names, masks and
 * truncation, eval/frozen defaults, init statistics, and golden features vs torchvision
 * 0.14 (float64 reference) with Philox weights generated here and in
 * tools/gen_backbone_fixtures.py by the same scheme (no weights stored). */
#include "nn/backbones/backbones.h"
#include "tests/common/fixture.h"
#include "tests/vgtest.h"
#include "tensor/opstats.h"
#include "autograd/autograd.h"
#include <time.h>
#include <unistd.h>
#include "nn/safetensors.h"

#define BASE_SEED 1000

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *LV[5] = {"stem", "layer1", "layer2", "layer3", "layer4"};

/* max |got - want| / max|want| over the checked values */
static double rel_err(const float *got, const float *want, int64_t n, double scale) {
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= e)) e = d;   /* NaN propagates */
  }
  return e / scale;
}

/* folded: under no_grad, where every conv + BatchNorm (+ ReLU) is one conv2d with folded
 * weights (vg_nn_conv_bn); else with the parameters requiring grad, so autograd records
 * it and BatchNorm runs as its own ops */
static void golden_case(const vg_fixture *fx, vg_nn_module *m, const char *model, const char *tag0,
                        int64_t n, int64_t hw, uint64_t in_seed, bool folded) {
  char tag[64];
  snprintf(tag, sizeof tag, "%s%s", tag0, folded ? " folded" : "");
  unsigned mask;
  vg_resnet_info(m, NULL, &mask);
  vg_scope_begin();
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){n, 3, hw, hw});
  vg_uniform_(x, -2.0f, 2.0f, in_seed);
  vg_tensor *f[5] = {0};
  double t0 = now();
  if (folded) vg_no_grad_begin();
  else vg_nn_requires_grad(m, true);   /* recorded (backbones are built frozen) */
  vg_opstats ops;
  vg_opstats_start();
  vg_status st = vg_resnet_features(m, x, f);
  vg_opstats_stop(&ops);
  if (folded) vg_no_grad_end();
  else vg_nn_requires_grad(m, false);
  double dt = now() - t0;
  VG_CHECK(folded ? ops.calls[VG_OP_SUB] == 0 && ops.calls[VG_OP_CONV_BN_FOLD] == ops.calls[VG_OP_CONV2D]
                  : ops.calls[VG_OP_SUB] == ops.calls[VG_OP_CONV2D] && ops.calls[VG_OP_CONV_BN_FOLD] == 0,
           "%s %s: %s (%lld conv2d, %lld conv_bn_fold, %lld sub ops)", model, tag,
           folded ? "every BatchNorm folded into its conv: no sub op over activations" : "BatchNorm as its own ops",
           (long long)ops.calls[VG_OP_CONV2D], (long long)ops.calls[VG_OP_CONV_BN_FOLD], (long long)ops.calls[VG_OP_SUB]);
  VG_CHECK(st == VG_OK, "%s %s: features in %.3f s (2 threads)%s%s", model, tag, dt,
           st == VG_OK ? "" : ": ", st == VG_OK ? "" : vg_last_error());
  int k = 0;
  for (int l = 0; l < 5 && st == VG_OK; l++) {
    if (!((mask >> l) & 1u)) continue;
    vg_tensor *o = f[k++];
    char key[64];
    snprintf(key, sizeof key, "%s.%s.shape", tag0, LV[l]);
    const vg_fx_tensor *shp = vg_fixture_get(fx, key);
    snprintf(key, sizeof key, "%s.%s.maxabs", tag0, LV[l]);
    const vg_fx_tensor *mx = vg_fixture_get(fx, key);
    snprintf(key, sizeof key, "%s.%s.chmean", tag0, LV[l]);
    const vg_fx_tensor *cm = vg_fixture_get(fx, key);
    snprintf(key, sizeof key, "%s.%s.stride", tag0, LV[l]);
    const vg_fx_tensor *sd = vg_fixture_get(fx, key);
    snprintf(key, sizeof key, "%s.%s.sub", tag0, LV[l]);
    const vg_fx_tensor *sub = vg_fixture_get(fx, key);
    snprintf(key, sizeof key, "%s.%s.rowmean", tag0, LV[l]);
    const vg_fx_tensor *rm = vg_fixture_get(fx, key);
    snprintf(key, sizeof key, "%s.%s.colmean", tag0, LV[l]);
    const vg_fx_tensor *cl = vg_fixture_get(fx, key);
    if (!VG_CHECK(shp && mx && cm && sd && sub && rm && cl && o, "%s %s %s: fixture entries", model, tag, LV[l]))
      continue;
    bool shape_ok = o->ndim == 4;
    for (int d = 0; d < 4 && shape_ok; d++) shape_ok = o->shape[d] == (int64_t)shp->data[d];
    if (!VG_CHECK(shape_ok, "%s %s %s: shape [%lld, %lld, %lld, %lld] as torchvision's", model, tag,
                  LV[l], (long long)o->shape[0], (long long)o->shape[1], (long long)o->shape[2],
                  (long long)o->shape[3]))
      continue;
    const float *g = vg_f32(o);
    int64_t total = vg_numel(o), stride = (int64_t)sd->data[0];
    double scale = mx->data[0];
    /* subsample */
    float *gs = malloc(sizeof(float) * (size_t)sub->n);
    for (int64_t i = 0; i < sub->n; i++) gs[i] = g[i * stride];
    double e_sub = rel_err(gs, sub->data, sub->n, scale);
    free(gs);
    /* per-channel means (every element) and max |f| */
    int64_t C = o->shape[1], HW = o->shape[2] * o->shape[3];
    float *means = calloc((size_t)C, sizeof(float));
    double gmax = 0;
    for (int64_t c = 0; c < C; c++) {
      double s = 0;
      for (int64_t b = 0; b < o->shape[0]; b++)
        for (int64_t i = 0; i < HW; i++) {
          double v = g[(b * C + c) * HW + i];
          s += v;
          if (fabs(v) > gmax) gmax = fabs(v);
        }
      means[c] = (float)(s / (double)(o->shape[0] * HW));
    }
    double e_mean = rel_err(means, cm->data, C, scale);
    free(means);
    double e_rc = rm->n == o->shape[0] * o->shape[2] && cl->n == o->shape[0] * o->shape[3]
                      ? vg_fixture_rowcol_err(g, o->shape, rm->data, cl->data) / scale
                      : INFINITY;
    double e_max = fabs(gmax - scale) / scale;
    VG_CHECK(e_sub <= 1e-4 && e_mean <= 1e-4 && e_rc <= 1e-4 && e_max <= 1e-4 && total > 0,
             "%s %s %s: max rel err (vs max|f| %.3f) subsample %.2e (%lld values), channel means "
             "%.2e, row/column means %.2e, max|f| %.2e <= 1e-4", model, tag, LV[l], scale, e_sub,
             (long long)sub->n, e_mean, e_rc, e_max);
  }
  vg_scope_end();
}

static void golden(const char *model, unsigned mask, bool with256) {
  char path[128];
  snprintf(path, sizeof path, "backbones/%s.vgfx", model);
  vg_fixture *fx = vg_fixture_load(vg_test_fixture(path));
  if (!VG_CHECK(fx, "%s: fixture loads", model)) return;
  vg_nn_module *m = vg_resnet_new(model, mask, 0);
  if (!VG_CHECK(m && vg_resnet_init_philox(m, BASE_SEED) == VG_OK, "%s: built, Philox weights", model)) {
    vg_fixture_free(fx);
    vg_nn_free(m);
    return;
  }
  golden_case(fx, m, model, "n2_64", 2, 64, 7, false);
  golden_case(fx, m, model, "n2_64", 2, 64, 7, true);
  if (with256) {
    unsigned m3 = VG_RESNET_LAYER1 | VG_RESNET_LAYER2 | VG_RESNET_LAYER3;
    vg_nn_module *t = vg_resnet_new(model, m3, 0);
    VG_CHECK(t && vg_resnet_init_philox(t, BASE_SEED) == VG_OK, "%s layer1-3: Philox weights", model);
    if (t) golden_case(fx, t, model, "n1_256", 1, 256, 8, false);
    if (t) golden_case(fx, t, model, "n1_256", 1, 256, 8, true);
    vg_nn_free(t);
  }
  vg_nn_free(m);
  vg_fixture_free(fx);
}

static void philox_check(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("backbones/resnet18.vgfx"));
  const vg_fx_tensor *c = fx ? vg_fixture_get(fx, "philox.check") : NULL;
  if (VG_CHECK(c && c->n == 8, "tools/philox.py values in the fixture")) {
    vg_scope_begin();
    vg_tensor *u = vg_rand(1, (int64_t[]){8}, BASE_SEED);
    VG_CHECK(!memcmp(vg_f32(u), c->data, 8 * sizeof(float)),
             "vg_rand(seed %d) bit-identical to tools/philox.py", BASE_SEED);
    vg_scope_end();
  }
  vg_fixture_free(fx);
}

static void architecture(void) {
  static const struct { const char *name; int n3, n4; int64_t p3, p4; } A[] = {
      {"resnet18", 90, 120, 2782784, 11176512},
      {"resnet50", 258, 318, 8543296, 23508032},
      {"wide_resnet50_2", 258, 318, 24862528, 66834240},
      {"wide_resnet101_2", 564, 624, 82865984, 124837696},
  };
  for (int i = 0; i < 4; i++) {
    if (i == 3 && !vg_test_long()) continue;   /* 83M / 125M parameters: long runs only */
    for (int last = 3; last <= 4; last++) {
      vg_nn_module *m = vg_resnet_new(A[i].name, 1u << last, 1);
      if (!VG_CHECK(m, "%s up to layer%d builds", A[i].name, last)) continue;
      vg_nn_list sd = vg_nn_state_dict(m);
      int want_n = last == 3 ? A[i].n3 : A[i].n4;
      int64_t want_p = last == 3 ? A[i].p3 : A[i].p4;
      VG_CHECK(sd.n == want_n && vg_nn_num_params(m, false) == want_p,
               "%s up to layer%d: %d state-dict entries, %lld parameters (torchvision without fc: "
               "%d, %lld)", A[i].name, last, sd.n, (long long)vg_nn_num_params(m, false), want_n,
               (long long)want_p);
      VG_CHECK(vg_nn_num_params(m, true) == 0 && !m->training && !vg_nn_child_get(m, "fc") &&
                   !vg_nn_child_get(m, "avgpool"),
               "%s: frozen, eval, no avgpool/fc", A[i].name);
      vg_nn_list_free(&sd);
      vg_nn_free(m);
    }
  }
  /* names and shapes at a few places torchvision's state dict has them */
  vg_nn_module *r18 = vg_resnet_new("resnet18", VG_RESNET_LAYER4, 1);
  vg_nn_module *w50 = vg_resnet_new("wide_resnet50_2", VG_RESNET_LAYER3, 1);
  struct { vg_nn_module *m; const char *k; int64_t s0, s1, s2; } N[] = {
      {r18, "conv1.weight", 64, 3, 7}, {r18, "layer1.0.conv2.weight", 64, 64, 3},
      {r18, "layer2.0.downsample.0.weight", 128, 64, 1}, {r18, "layer4.1.bn2.running_var", 512, 0, 0},
      {w50, "layer1.0.conv1.weight", 128, 64, 1}, {w50, "layer1.0.conv2.weight", 128, 128, 3},
      {w50, "layer1.0.conv3.weight", 256, 128, 1}, {w50, "layer1.0.downsample.1.weight", 256, 0, 0},
      {w50, "layer3.5.conv2.weight", 512, 512, 3}, {w50, "layer2.0.downsample.0.weight", 512, 256, 1},
  };
  for (size_t i = 0; i < sizeof N / sizeof N[0]; i++) {
    vg_tensor *t = N[i].m ? vg_nn_get(N[i].m, N[i].k) : NULL;
    VG_CHECK(t && t->shape[0] == N[i].s0 && (N[i].s1 == 0 || (t->shape[1] == N[i].s1 && t->shape[2] == N[i].s2)),
             "%s present with torchvision's shape", N[i].k);
  }
  /* stride on the 3x3 conv (v1.5) */
  vg_nn_module *b = w50 ? vg_nn_child_get(vg_nn_child_get(w50, "layer2"), "0") : NULL;
  VG_CHECK(b && vg_nn_child_get(b, "conv2")->u.conv.o.sh == 2 && vg_nn_child_get(b, "conv1")->u.conv.o.sh <= 1,
           "Bottleneck stride on conv2 (torchvision v1.5)");
  VG_CHECK(vg_nn_get(r18, "layer4.1.bn2.num_batches_tracked") &&
               vg_nn_get(r18, "layer4.1.bn2.num_batches_tracked")->dtype == VG_I64,
           "num_batches_tracked i64");
  /* default init: kaiming_normal fan_out relu, BN 1/0 */
  if (r18) {
    vg_tensor *w = vg_nn_get(r18, "layer1.0.conv1.weight");
    const float *d = vg_f32(w);
    double s = 0, s2 = 0;
    int64_t n = vg_numel(w);
    for (int64_t i = 0; i < n; i++) s += d[i], s2 += (double)d[i] * d[i];
    double sd = sqrt(s2 / (double)n - (s / (double)n) * (s / (double)n)), want = sqrt(2.0 / (64 * 9));
    VG_CHECK(fabs(sd / want - 1) < 0.03 && fabs(s / (double)n) < 0.1 * want,
             "conv init std %.5f ~ kaiming_normal fan_out %.5f", sd, want);
    VG_CHECK(vg_f32(vg_nn_get(r18, "bn1.weight"))[5] == 1.0f && vg_f32(vg_nn_get(r18, "bn1.bias"))[5] == 0.0f &&
                 vg_f32(vg_nn_get(r18, "bn1.running_var"))[5] == 1.0f,
             "BN weight 1, bias 0, running var 1");
    vg_nn_module *r18b = vg_resnet_new("resnet18", VG_RESNET_LAYER4, 1);
    vg_nn_module *r18c = vg_resnet_new("resnet18", VG_RESNET_LAYER4, 2);
    vg_tensor *wb = vg_nn_get(r18b, "layer3.1.conv2.weight"), *wc = vg_nn_get(r18c, "layer3.1.conv2.weight");
    vg_tensor *wa = vg_nn_get(r18, "layer3.1.conv2.weight");
    size_t nb = (size_t)vg_numel(wa) * sizeof(float);
    VG_CHECK(!memcmp(vg_f32(wa), vg_f32(wb), nb) && memcmp(vg_f32(wa), vg_f32(wc), nb) &&
                 memcmp(vg_f32(wa), vg_f32(vg_nn_get(r18, "layer3.1.conv1.weight")), nb),
             "init deterministic per seed, different across seeds and layers");
    vg_nn_free(r18b);
    vg_nn_free(r18c);
  }
  vg_nn_free(r18);
  vg_nn_free(w50);
  /* errors */
  VG_CHECK(!vg_resnet_new("resnet34", VG_RESNET_LAYER1, 0) && strstr(vg_last_error(), "resnet34"),
           "unknown backbone refused: %s", vg_last_error());
  VG_CHECK(!vg_resnet_new("resnet18", 0, 0) && !vg_resnet_new("resnet18", 1u << 5, 0),
           "empty / out-of-range mask refused");
  /* masks: subset, order, truncation */
  vg_nn_module *m = vg_resnet_new("resnet18", VG_RESNET_STEM | VG_RESNET_LAYER2, 3);
  VG_CHECK(m && vg_resnet_num_features(m) == 2 && !strcmp(vg_resnet_feature_name(m, 0), "stem") &&
               !strcmp(vg_resnet_feature_name(m, 1), "layer2") && vg_resnet_feature_channels(m, 1) == 128 &&
               !vg_nn_child_get(m, "layer3") && vg_nn_child_get(m, "layer2"),
           "stem+layer2: two maps, built only up to layer2");
  vg_scope_begin();
  vg_tensor *x = vg_rand(4, (int64_t[]){1, 3, 32, 48}, 5), *f[2] = {0};
  VG_CHECK(m && vg_resnet_features(m, x, f) == VG_OK && f[0]->shape[2] == 16 && f[0]->shape[3] == 24 &&
               f[1]->shape[1] == 128 && f[1]->shape[2] == 4 && f[1]->shape[3] == 6,
           "stem stride 2, layer2 stride 8");
  VG_CHECK(vg_resnet_features(m, vg_rand(3, (int64_t[]){3, 32, 32}, 5), f) == VG_ERR_ARG,
           "3-d input refused: %s", vg_last_error());
  vg_scope_end();
  vg_nn_free(m);
}

/* weights through a safetensors file (prefix "model.", an fc.* key, a layer4 key the
 * truncated model lacks) reproduce the model they came from */
static void load_roundtrip(void) {
  vg_nn_module *a = vg_resnet_new("resnet18", VG_RESNET_LAYER4, 0);
  vg_nn_module *b = vg_resnet_new("resnet18", VG_RESNET_LAYER1 | VG_RESNET_LAYER2, 9);
  if (!VG_CHECK(a && b && vg_resnet_init_philox(a, 77) == VG_OK, "load: models")) return;
  vg_nn_list sd = vg_nn_state_dict(a);
  char **names = malloc(sizeof(char *) * (size_t)(sd.n + 1));
  vg_tensor **ts = malloc(sizeof(vg_tensor *) * (size_t)(sd.n + 1));
  for (int i = 0; i < sd.n; i++) {
    names[i] = malloc(strlen(sd.names[i]) + 8);
    sprintf(names[i], "model.%s", sd.names[i]);
    ts[i] = sd.tensors[i];
  }
  vg_tensor *fc = vg_tensor_new(VG_F32, 2, (int64_t[]){10, 512});
  names[sd.n] = "fc.weight";
  ts[sd.n] = fc;
  char path[] = "/tmp/vg_test_backbones_XXXXXX.safetensors";
  int fd = mkstemps(path, 12);
  if (fd >= 0) close(fd);
  vg_status st = vg_st_save(path, sd.n + 1, (const char *const *)names, ts, NULL);
  VG_CHECK(st == VG_OK, "load: saved %s", st == VG_OK ? "" : vg_last_error());
  st = vg_nn_load_state_file(b, path, true);
  VG_CHECK(st == VG_OK, "load: strict load into a layer1-2 model ignores fc.*, layer3/4 %s",
           st == VG_OK ? "" : vg_last_error());
  vg_nn_list sb = vg_nn_state_dict(b);
  bool same = true;
  for (int i = 0; i < sb.n; i++) {
    vg_tensor *t = vg_nn_get(a, sb.names[i]);
    same = same && t && !memcmp(vg_data(t), vg_data(sb.tensors[i]), (size_t)vg_numel(t) * vg_dtype_size(t->dtype));
  }
  VG_CHECK(same && sb.n > 0, "load: all %d tensors equal the saved ones", sb.n);
  vg_nn_module *c = vg_resnet_new("resnet50", VG_RESNET_LAYER1, 0);
  VG_CHECK(c && vg_nn_load_state_file(c, path, false) != VG_OK, "load: shape mismatch refused: %s",
           vg_last_error());
  VG_CHECK(vg_nn_load_state_file(b, "/nonexistent/x.pth", true) != VG_OK, "load: missing file refused");
  remove(path);
  vg_nn_free(c);
  vg_nn_list_free(&sb);
  for (int i = 0; i < sd.n; i++) free(names[i]);
  free(names);
  free(ts);
  vg_tensor_free(fc);
  vg_nn_list_free(&sd);
  vg_nn_free(a);
  vg_nn_free(b);
}

int main(void) {
  vg_set_num_threads(2);
  philox_check();
  architecture();
  load_roundtrip();
  unsigned l123 = VG_RESNET_LAYER1 | VG_RESNET_LAYER2 | VG_RESNET_LAYER3;
  golden("resnet18", VG_RESNET_STEM | l123 | VG_RESNET_LAYER4, true);
  golden("resnet50", l123, false);
  golden("wide_resnet50_2", l123, false);
  if (vg_test_long()) golden("wide_resnet101_2", l123, false);
  return vg_test_finish();
}
