/* test_stfpm — STFPM (methods/stfpm) vs anomalib 2.7's STFPMModel + STFPMLoss + torch.optim.SGD
 * (lr 0.4, momentum 0.9, dampening 0, weight_decay 1e-3) on identical weights and inputs
 * (tools/gen_stfpm_fixtures.py; resnet18, 32 x 32, batch 2): eval-mode student features,
 * per-layer maps, anomaly map and scores; the training loss and the student's parameters
 * after one and two SGD steps (the second uses the momentum buffer) and its BN running
 * statistics; an 8-step loss curve and the trained map; the student's init (timm:
 * zero_init_last); exact resume from a checkpoint (parameters, SGD momentum, step); predict
 * identical after load; and the CLI: `vigil train stfpm` on the synthetic default (checkpoints)
 * then `vigil test`. Weights are not stored: teacher and student use vg_resnet_init_philox
 * (base seeds 1000 and 2000), as the generator does on timm's resnet18; training batch i is
 * Philox uniform(-2, 2) seed 300 + i (chosen by the generator: no ReLU tie in steps 0-1). */
#include "methods/stfpm/stfpm.h"
#include "nn/backbones/backbones.h"
#include "tests/common/fixture.h"
#include "tests/vgtest.h"
#include <unistd.h>

#define MSTRIDE 5
#define FSTRIDE 23
#define PSTRIDE 997
#define NSTEPS 8
#define S 32   /* fixture input size */

static char g_vigil[1100];

static vg_method *make(const char *cfg_text) {
  vg_json *cfg = NULL;
  if (vg_json_parse(cfg_text, strlen(cfg_text), NULL, &cfg) != VG_OK) return NULL;
  vg_method *m = NULL;
  vg_status st = vg_stfpm_new(cfg, &m);
  vg_json_free(cfg);
  if (st != VG_OK) fprintf(stderr, "stfpm_new: %s\n", vg_last_error());
  return m;
}

static bool set_weights(vg_method *m) {
  return vg_resnet_init_philox(vg_stfpm_teacher(m), 1000) == VG_OK && vg_resnet_init_philox(vg_stfpm_student(m), 2000) == VG_OK;
}

static double maxabs(const float *x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

/* every element within rel * max|want|; prints the measured error relative to max|want| */
static void close_rel(const float *got, int64_t n, const vg_fx_tensor *want, double rel, const char *what) {
  if (!VG_CHECK(want != NULL && want->n == n, "%s: fixture entry (%lld values)", what, (long long)n)) return;
  double mx = maxabs(want->data, want->n), err = 0;
  for (int64_t i = 0; i < n; i++) err = fmax(err, fabs((double)got[i] - want->data[i]));
  VG_CHECK(err <= rel * mx, "%s: max error %.3g of max %.3g = %.3g relative (<= %g)", what, err, mx, err / (mx ? mx : 1), rel);
}

static float *strided(const float *x, int64_t n, int stride, int64_t *k) {
  float *s = malloc(sizeof(float) * (size_t)(n / stride + 1));
  *k = 0;
  for (int64_t i = 0; i < n; i += stride) s[(*k)++] = x[i];
  return s;
}

static vg_tensor *philox_input(int64_t n, int64_t hw, uint64_t seed) {
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){n, 3, hw, hw});
  vg_uniform_(x, -2.0f, 2.0f, seed);
  return x;
}

/* the student's parameters (named_parameters order) or BN running statistics, concatenated,
 * every stride-th element */
static float *student_cat(vg_method *m, bool stats, int stride, int64_t *k) {
  vg_nn_list l = stats ? vg_nn_state_dict(vg_stfpm_student(m)) : vg_nn_named_parameters(vg_stfpm_student(m));
  int64_t total = 0;
  for (int i = 0; i < l.n; i++) total += vg_numel(l.tensors[i]);
  float *all = malloc(sizeof(float) * (size_t)total), *out;
  int64_t n = 0;
  for (int i = 0; i < l.n; i++) {
    size_t nl = strlen(l.names[i]);
    if (stats && !(nl > 12 && (!strcmp(l.names[i] + nl - 12, "running_mean") || !strcmp(l.names[i] + nl - 11, "running_var"))))
      continue;
    memcpy(all + n, vg_f32(l.tensors[i]), sizeof(float) * (size_t)vg_numel(l.tensors[i]));
    n += vg_numel(l.tensors[i]);
  }
  out = strided(all, n, stride, k);
  free(all);
  vg_nn_list_free(&l);
  return out;
}

static void eval_checks(vg_method *m, const vg_fixture *fx, const char *map_key, const char *tag) {
  vg_scope_begin();
  float *maps = malloc(sizeof(float) * 2 * S * S), scores[2];
  vg_status st = m->ops->predict(m, philox_input(2, S, 7), maps, scores);
  char what[96];
  if (VG_CHECK(st == VG_OK, "%s: predict%s%s", tag, st ? ": " : "", st ? vg_last_error() : "")) {
    int64_t k;
    float *s = strided(maps, 2 * S * S, MSTRIDE, &k);
    snprintf(what, sizeof what, "%s: anomaly map vs anomalib", tag);
    close_rel(s, k, vg_fixture_get(fx, map_key), strcmp(map_key, "map") ? 1e-3 : 1e-4, what);
    free(s);
    if (!strcmp(map_key, "map")) {
      snprintf(what, sizeof what, "%s: image scores (max of the map)", tag);
      close_rel(scores, 2, vg_fixture_get(fx, "score"), 1e-4, what);
    }
  }
  free(maps);
  vg_scope_end();
}

static void forward_checks(vg_method *m, const vg_fixture *fx) {
  vg_scope_begin();
  vg_tensor *t[3], *s[3];
  vg_no_grad_begin();
  vg_status st = vg_stfpm_features(m, philox_input(2, S, 7), t, s);
  if (VG_CHECK(st == VG_OK, "features%s%s", st ? ": " : "", st ? vg_last_error() : "")) {
    for (int l = 0; l < 3; l++) {
      char key[16], what[64];
      vg_tensor *sc = vg_contiguous(s[l]);
      int64_t k;
      float *sub = strided(vg_f32(sc), vg_numel(sc), FSTRIDE, &k);
      snprintf(key, sizeof key, "sf.%d", l);
      snprintf(what, sizeof what, "student features layer%d (eval)", l + 1);
      close_rel(sub, k, vg_fixture_get(fx, key), 1e-4, what);
      free(sub);
      vg_tensor *lm = vg_contiguous(vg_stfpm_layer_map(t[l], s[l]));
      snprintf(key, sizeof key, "lmap.%d", l);
      snprintf(what, sizeof what, "layer%d map 0.5|t^ - s^|^2", l + 1);
      close_rel(vg_f32(lm), vg_numel(lm), vg_fixture_get(fx, key), 1e-4, what);
    }
  }
  vg_no_grad_end();
  vg_scope_end();
  eval_checks(m, fx, "map", "untrained");
}

static void train(vg_method *m, int from, int to, float *curve, const vg_fixture *fx) {
  for (int i = from; i < to; i++) {
    vg_scope_begin();
    double l = NAN;
    vg_status st = m->ops->train_step(m, philox_input(2, S, 300 + (uint64_t)i), i, &l);
    if (st != VG_OK) fprintf(stderr, "step %d: %s\n", i, vg_last_error());
    curve[i] = (float)l;
    vg_scope_end();
    if (!fx) continue;
    int64_t k;
    if (i == 0) {
      const vg_fx_tensor *c = vg_fixture_get(fx, "curve");
      if (VG_CHECK(c && c->n == NSTEPS, "curve fixture"))
        VG_CHECK(fabs(l - c->data[0]) <= 1e-5 * fabs(c->data[0]), "loss (train mode, BN batch statistics): %.7f vs %.7f, "
                 "relative error %.3g (<= 1e-5)", l, c->data[0], fabs(l - c->data[0]) / fabs(c->data[0]));
      float *p = student_cat(m, false, PSTRIDE, &k);
      close_rel(p, k, vg_fixture_get(fx, "p1"), 1e-5, "student parameters after 1 SGD step vs torch.optim.SGD");
      free(p);
      p = student_cat(m, true, 7, &k);
      close_rel(p, k, vg_fixture_get(fx, "b1"), 1e-5, "student BN running statistics after step 1");
      free(p);
    }
    if (i == 1) {
      float *p = student_cat(m, false, PSTRIDE, &k);
      close_rel(p, k, vg_fixture_get(fx, "p2"), 1e-5, "student parameters after 2 SGD steps (momentum buffer)");
      free(p);
    }
  }
}

static void test_init(void) {
  vg_method *m = make("{\"input_size\":64}");
  if (!VG_CHECK(m != NULL, "default resnet18 model")) return;
  vg_nn_module *s = vg_stfpm_student(m), *t = vg_stfpm_teacher(m);
  vg_nn_list ps = vg_nn_named_parameters(s);
  int zeros = 0, bn2 = 0, others_one = 1;
  for (int i = 0; i < ps.n; i++) {
    const char *n = ps.names[i];
    size_t nl = strlen(n);
    if (nl > 11 && !strcmp(n + nl - 11, ".bn2.weight")) {
      bn2++;
      zeros += maxabs(vg_f32(ps.tensors[i]), vg_numel(ps.tensors[i])) == 0;
    } else if (nl > 11 && !strcmp(n + nl - 11, ".bn1.weight")) {
      for (int64_t j = 0; j < vg_numel(ps.tensors[i]); j++) others_one &= vg_f32(ps.tensors[i])[j] == 1.0f;
    }
  }
  vg_nn_list_free(&ps);
  VG_CHECK(bn2 == 6 && zeros == 6 && others_one, "student init as timm: every BasicBlock's bn2.weight = 0 (%d of %d), "
           "bn1.weight = 1", zeros, bn2);
  vg_tensor *w = vg_nn_get(s, "layer2.0.conv1.weight");   /* kaiming_normal fan_out relu: std sqrt(2 / (128 * 9)) */
  double ss = 0;
  for (int64_t j = 0; w && j < vg_numel(w); j++) ss += (double)vg_f32(w)[j] * vg_f32(w)[j];
  double sd = w ? sqrt(ss / (double)vg_numel(w)) : 0, want = sqrt(2.0 / (128 * 9));
  VG_CHECK(fabs(sd / want - 1) < 0.03, "student conv init kaiming_normal(fan_out, relu): std %.5f vs %.5f", sd, want);
  VG_CHECK(vg_nn_num_params(s, true) == 2782784 && vg_nn_num_params(t, true) == 0,
           "student: 2782784 trained parameters (anomalib's resnet18 up to layer3); teacher frozen (%lld, %lld)",
           (long long)vg_nn_num_params(s, true), (long long)vg_nn_num_params(t, true));
  VG_CHECK(!t->training && m->random_backbone, "teacher in eval mode; random teacher without weights");
  char *j = m->ops->config_json(m);
  VG_CHECK(j && strstr(j, "\"lr\": 0.4") && strstr(j, "\"momentum\": 0.9") && strstr(j, "\"weight_decay\": 0.001") &&
           strstr(j, "\"backbone\": \"resnet18\""), "config: SGD lr 0.4, momentum 0.9, weight_decay 1e-3 (anomalib's), resnet18");
  free(j);
  vg_method_free(m);
  m = NULL;
  vg_json *cfg = NULL;
  vg_json_parse("{\"backbone\":\"vgg16\"}", 20, NULL, &cfg);
  VG_CHECK(vg_stfpm_new(cfg, &m) != VG_OK && !m, "unknown backbone refused (%s)", vg_last_error());
  vg_json_free(cfg);
  /* wrong input shape: an error, not a crash */
  m = make("{\"input_size\":64}");
  if (m) {
    vg_scope_begin();
    float maps[2 * 32 * 32], sc[2];
    vg_status st = m->ops->predict(m, philox_input(2, 32, 1), maps, sc);
    VG_CHECK(st == VG_ERR_ARG && strstr(vg_last_error(), "64 x 64"), "a 32 x 32 input to a 64 model refused (%s)",
             vg_last_error());
    vg_scope_end();
  }
  vg_method_free(m);
}

static void test_conformance(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("stfpm_r18.bin"));
  if (!VG_CHECK(fx != NULL, "stfpm_r18.bin")) return;
  const vg_fx_tensor *zi = vg_fixture_get(fx, "zero_init");
  VG_CHECK(zi && zi->data[0] == 1, "the generator saw timm's student init with bn2.weight = 0");
  const char *cfg = "{\"input_size\":32,\"batch_size\":2}";
  vg_method *m = make(cfg);
  if (!VG_CHECK(m && set_weights(m), "r18: model + Philox weights")) { vg_method_free(m); vg_fixture_free(fx); return; }
  forward_checks(m, fx);
  float curve[NSTEPS];
  char path[] = "/tmp/vg_stfpm_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  train(m, 0, NSTEPS / 2, curve, fx);
  vg_status st = m->ops->save(m, path);
  VG_CHECK(st == VG_OK, "save after %d steps%s%s", NSTEPS / 2, st ? ": " : "", st ? vg_last_error() : "");
  train(m, NSTEPS / 2, NSTEPS, curve, NULL);
  const vg_fx_tensor *want = vg_fixture_get(fx, "curve");
  if (want && want->n == NSTEPS) {
    double err = 0;
    for (int i = 0; i < NSTEPS; i++) err = fmax(err, fabs(curve[i] - want->data[i]) / fabs(want->data[i]));
    VG_CHECK(err <= 1e-4, "%d SGD steps: loss curve vs anomalib, max relative error %.3g (<= 1e-4); %.4f -> %.4f", NSTEPS,
             err, curve[0], curve[NSTEPS - 1]);
  }
  eval_checks(m, fx, "map_t", "trained (8 steps)");
  /* exact resume: a fresh model loads the step-4 checkpoint (parameters, BN statistics, SGD
   * momentum buffers and step counts) and replays steps 4..7 bit for bit */
  vg_method *r = make(cfg);
  float curve2[NSTEPS] = {0};
  st = r ? r->ops->load(r, path) : VG_ERR_ARG;
  if (VG_CHECK(st == VG_OK, "load checkpoint%s%s", st ? ": " : "", st ? vg_last_error() : "")) {
    train(r, NSTEPS / 2, NSTEPS, curve2, NULL);
    int same = 1;
    for (int i = NSTEPS / 2; i < NSTEPS; i++) same &= curve2[i] == curve[i];
    VG_CHECK(same, "resume from step %d replays steps %d..%d bit for bit (%.7f vs %.7f at %d)", NSTEPS / 2, NSTEPS / 2,
             NSTEPS - 1, curve2[NSTEPS - 1], curve[NSTEPS - 1], NSTEPS - 1);
    /* and predicts identically to the model it was saved from after the same steps */
    vg_scope_begin();
    float *a = malloc(sizeof(float) * 2 * S * S), *b = malloc(sizeof(float) * 2 * S * S), sa[2], sb[2];
    vg_tensor *x = philox_input(2, S, 9);
    bool ok = m->ops->predict(m, x, a, sa) == VG_OK && r->ops->predict(r, x, b, sb) == VG_OK;
    VG_CHECK(ok && !memcmp(a, b, sizeof(float) * 2 * S * S) && sa[0] == sb[0] && sa[1] == sb[1],
             "resumed model predicts bit-identically");
    free(a);
    free(b);
    vg_scope_end();
  }
  vg_method_free(r);
  /* a checkpoint of another architecture is refused (strict load: names and shapes) */
  r = make("{\"input_size\":32,\"backbone\":\"wide_resnet50_2\"}");
  st = r ? r->ops->load(r, path) : VG_OK;
  VG_CHECK(st != VG_OK, "a resnet18 checkpoint into a wide_resnet50_2 model is refused (%s)", st ? vg_last_error() : "loaded");
  vg_method_free(r);
  unlink(path);
  vg_method_free(m);
  vg_fixture_free(fx);
}

/* `vigil train stfpm` on the synthetic default with a short schedule (checkpoints every 2
 * steps), then `vigil test --run` writes metrics */
static void test_cli(void) {
  if (!g_vigil[0]) { printf("SKIP cli: no vigil binary beside the test\n"); return; }
  char dir[] = "/tmp/vg_stfpm_cli_XXXXXX";
  if (!mkdtemp(dir)) { VG_CHECK(0, "mkdtemp"); return; }
  char cmd[4096], path[1200];
  int rc;
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' train stfpm --steps 4 --batch 2 --set input_size=32 --save-every 2 --no-test "
           "--threads 2 --out run --cache '%s/cache'", dir, g_vigil, dir);
  char *o = vg_test_run(cmd, &rc);
  snprintf(path, sizeof path, "%s/run/checkpoint.safetensors", dir);
  VG_CHECK(rc == 0 && access(path, F_OK) == 0, "vigil train stfpm --steps 4 (synthetic default) writes a checkpoint (%.400s)",
           rc ? (o ? o : "") : "ok");
  free(o);
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' test --run run --no-report --no-maps --threads 2", dir, g_vigil);
  o = vg_test_run(cmd, &rc);
  snprintf(path, sizeof path, "%s/run/metrics.json", dir);
  VG_CHECK(rc == 0 && access(path, F_OK) == 0, "vigil test --run writes metrics.json (%.400s)", rc ? (o ? o : "") : "ok");
  free(o);
  vg_test_tmp_done(dir);
}

int main(int argc, char **argv) {
  vg_set_num_threads(2);
  (void)argc;
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  test_init();
  test_conformance();
  test_cli();
  return vg_test_finish();
}
