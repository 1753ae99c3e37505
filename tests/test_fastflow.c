/* test_fastflow — FastFlow (methods/fastflow) vs anomalib 2.7's FastflowModel on identical
 * weights and inputs (tools/gen_fastflow_fixtures.py): loss, per-scale log-det and z,
 * anomaly map and score at 64x64 (R18, batch 2), a 20-step Adam loss curve, exact resume
 * from a Vigil checkpoint, and loading an anomalib-named .pth. Weights are not stored: the
 * backbone uses vg_resnet_init_philox, the rest the sin formula both sides compute. */
#include "methods/fastflow/fastflow.h"
#include "nn/backbones/backbones.h"
#include "tests/common/fixture.h"
#include "tests/vgtest.h"
#include "tests/common/flow_weights.h"
#include <time.h>
#include <unistd.h>

#define ZSTRIDE 3

static vg_method *make(const char *cfg_text) {
  vg_json *cfg = NULL;
  if (vg_json_parse(cfg_text, strlen(cfg_text), NULL, &cfg) != VG_OK) return NULL;
  vg_method *m = NULL;
  vg_status st = vg_fastflow_new(cfg, &m);
  vg_json_free(cfg);
  if (st != VG_OK) fprintf(stderr, "fastflow_new: %s\n", vg_last_error());
  return m;
}

/* backbone Philox, norms/flows formula, permutations from the fixture (fx NULL: keep) */
static bool set_weights(vg_method *m, const vg_fixture *fx) {
  vg_nn_module *net = vg_fastflow_module(m);
  if (vg_resnet_init_philox(vg_nn_child_get(net, "feature_extractor"), 1000) != VG_OK) return false;
  vg_nn_list sd = vg_nn_state_dict(net);
  bool ok = true;
  for (int i = 0; i < sd.n; i++) {
    const char *n = sd.names[i];
    vg_tensor *t = sd.tensors[i];
    if (!strncmp(n, "feature_extractor.", 18) || t->dtype != VG_F32) continue;
    const char *leaf = strrchr(n, '.') + 1;
    if (!strcmp(leaf, "w_perm") || !strcmp(leaf, "w_perm_inv")) {
      if (!fx) continue;
      int s, j;
      if (sscanf(n, "fast_flow_blocks.%d.module_list.%d.", &s, &j) != 2) { ok = false; continue; }
      char key[64];
      snprintf(key, sizeof key, "perm.%d.%d", s, j);
      const vg_fx_tensor *p = vg_fixture_get(fx, key);
      int64_t C = t->shape[0];
      if (!p || p->n != C) { ok = false; continue; }
      float *w = vg_f32(t);
      memset(w, 0, (size_t)(C * C) * sizeof(float));
      bool inv = !strcmp(leaf, "w_perm_inv");
      for (int64_t r = 0; r < C; r++) {
        int64_t c = (int64_t)p->data[r];
        w[inv ? c * C + r : r * C + c] = 1.0f;
      }
      continue;
    }
    vg_test_flow_weights(n, t);
  }
  vg_nn_list_free(&sd);
  return ok;
}

static double maxabs(const vg_fx_tensor *t) {
  double m = 0;
  for (int64_t i = 0; i < t->n; i++) m = fmax(m, fabs(t->data[i]));
  return m;
}

/* |got - want| <= rel * max|want| (+ the same relative per element) */
static void close_rel(const float *got, const vg_fx_tensor *want, double rel, const char *what) {
  if (!VG_CHECK(want != NULL, "%s: fixture entry", what)) return;
  VG_CHECK_CLOSE(got, want->data, want->n, rel, rel * maxabs(want), what);
}

/* a map against its fixture, which keeps every "mapstride"-th value (absent: all) */
static void close_map(const float *got, int64_t n, const vg_fixture *fx, const char *key, double rel, const char *what) {
  const vg_fx_tensor *ms = vg_fixture_get(fx, "mapstride"), *want = vg_fixture_get(fx, key);
  int64_t stride = ms ? (int64_t)ms->data[0] : 1, k = 0;
  float *sub = malloc(sizeof(float) * (size_t)(n / stride + 1));
  for (int64_t i = 0; i < n; i += stride) sub[k++] = got[i];
  if (VG_CHECK(want && want->n == k, "%s: fixture entry of %lld values (every %lldth of %lld)", what, (long long)k,
               (long long)stride, (long long)n))
    close_rel(sub, want, rel, what);
  free(sub);
}

static vg_tensor *philox_input(int64_t n, int64_t hw, uint64_t seed) {
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){n, 3, hw, hw});
  vg_uniform_(x, -2.0f, 2.0f, seed);
  return x;
}

static void forward_checks(vg_method *m, const vg_fixture *fx, const char *tag, int64_t hw) {
  int ns = vg_fastflow_num_scales(m);
  vg_scope_begin();
  vg_tensor *x = philox_input(2, hw, 7);
  vg_tensor *z[3], *ld[3];
  vg_status st = vg_fastflow_forward(m, x, z, ld);
  if (VG_CHECK(st == VG_OK, "%s: forward%s%s", tag, st ? ": " : "", st ? vg_last_error() : "")) {
    char what[96];
    float loss = vg_item(vg_fastflow_loss(ns, z, ld));
    snprintf(what, sizeof what, "%s: loss", tag);
    close_rel(&loss, vg_fixture_get(fx, "loss"), 1e-4, what);
    for (int s = 0; s < ns; s++) {
      char key[32];
      snprintf(key, sizeof key, "ld.%d", s);
      snprintf(what, sizeof what, "%s: log|det J| scale %d", tag, s);
      close_rel(vg_f32(vg_contiguous(ld[s])), vg_fixture_get(fx, key), 1e-4, what);
      snprintf(key, sizeof key, "zs.%d", s);
      const vg_fx_tensor *zs = vg_fixture_get(fx, key);
      vg_tensor *zc = vg_contiguous(z[s]);
      const vg_fx_tensor *zst = vg_fixture_get(fx, "zstride");
      int stride = zst ? (int)zst->data[0] : ZSTRIDE;
      int64_t n = vg_numel(zc), k = 0;
      float *sub = malloc(sizeof(float) * (size_t)(n / stride + 1));
      for (int64_t i = 0; i < n; i += stride) sub[k++] = vg_f32(zc)[i];
      snprintf(what, sizeof what, "%s: z scale %d (every %dth of %lld)", tag, s, stride, (long long)n);
      if (VG_CHECK(zs && zs->n == k, "%s: z scale %d size", tag, s)) close_rel(sub, zs, 1e-4, what);
      free(sub);
    }
  }
  vg_scope_end();
  vg_scope_begin();
  float *maps = malloc(sizeof(float) * (size_t)(2 * hw * hw)), scores[2];
  x = philox_input(2, hw, 7);
  st = m->ops->predict(m, x, maps, scores);
  if (VG_CHECK(st == VG_OK, "%s: predict", tag)) {
    char what[96];
    snprintf(what, sizeof what, "%s: anomaly map", tag);
    close_map(maps, 2 * hw * hw, fx, "map", 1e-4, what);
    snprintf(what, sizeof what, "%s: image scores (max)", tag);
    close_rel(scores, vg_fixture_get(fx, "score"), 1e-4, what);
  }
  free(maps);
  vg_scope_end();
}

static void train(vg_method *m, int from, int to, float *curve) {
  for (int i = from; i < to; i++) {
    vg_scope_begin();
    vg_tensor *b = philox_input(2, 64, 100 + (uint64_t)i);
    double l = NAN;
    if (m->ops->train_step(m, b, i, &l) != VG_OK) fprintf(stderr, "step %d: %s\n", i, vg_last_error());
    curve[i] = (float)l;
    vg_scope_end();
  }
}

/* trained parameters of the flows (the paper's "additional parameters", A.d. in FastFlow
 * Table 1: the LayerNorms and the fixed permutation matrices are not counted) */
static int64_t flow_params(vg_method *m) {
  vg_nn_list l = vg_nn_named_parameters(m->ops->module(m));
  int64_t n = 0;
  for (int i = 0; i < l.n; i++)
    if (!strncmp(l.names[i], "fast_flow_blocks.", 17) && l.tensors[i]->requires_grad) n += vg_numel(l.tensors[i]);
  vg_nn_list_free(&l);
  return n;
}

/* Wide-ResNet-50-2: alternating 3x3 / 1x1 subnets (the reference config), forward only */
static void test_wrn50(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("fastflow_wrn50.bin"));
  if (!VG_CHECK(fx != NULL, "fastflow_wrn50.bin")) return;
  vg_method *m = make("{\"backbone\":\"wide_resnet50_2\",\"input_size\":64,\"flow_steps\":8,\"hidden_ratio\":1.0,"
                      "\"conv3x3_only\":false,\"batch_size\":2}");
  if (VG_CHECK(m && set_weights(m, fx), "wrn50: model + weights")) forward_checks(m, fx, "wrn50", 64);
  if (m) {
    int64_t n = flow_params(m);
    VG_CHECK(fabs((double)n - 41.3e6) < 0.05e6, "wrn50 flows: %lld trained parameters (paper Table 1, A.d.: 41.3M)",
             (long long)n);
  }
  vg_method_free(m);
  vg_fixture_free(fx);
}

static void test_r18(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("fastflow_r18.bin"));
  if (!VG_CHECK(fx != NULL, "fastflow_r18.bin")) return;
  const char *cfg = "{\"backbone\":\"resnet18\",\"input_size\":64,\"flow_steps\":8,\"hidden_ratio\":1.0,"
                    "\"conv3x3_only\":true,\"batch_size\":2}";
  vg_method *m = make(cfg);
  if (VG_CHECK(m && set_weights(m, fx), "r18: model + weights") && m->random_backbone) {
    /* 8 steps of Conv3x3(C/2 -> C/2), ReLU, Conv3x3(C/2 -> C) + global affine (2C) per
     * scale, C = 64, 128, 256: 8 sum(6.75 C^2 + 3.5 C). (The paper's A.d. says 4.9M.) */
    int64_t want_p = 0;
    for (int64_t C = 64; C <= 256; C *= 2) want_p += 8 * (27 * C * C / 4 + 7 * C / 2);
    VG_CHECK(flow_params(m) == want_p, "r18 flows (3x3 only): %lld trained parameters = %lld by the formula",
             (long long)flow_params(m), (long long)want_p);
    forward_checks(m, fx, "r18", 64);
    const vg_fx_tensor *want = vg_fixture_get(fx, "curve");
    float curve[20];
    train(m, 0, 10, curve);
    char path[] = "/tmp/vg_fastflow_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    vg_status st = m->ops->save(m, path);
    VG_CHECK(st == VG_OK, "r18: save after 10 steps%s%s", st ? ": " : "", st ? vg_last_error() : "");
    train(m, 10, 20, curve);
    if (VG_CHECK(want && want->n == 20, "r18: curve fixture"))
      VG_CHECK_CLOSE(curve, want->data, 20, 1e-3, 1e-3 * maxabs(want), "r18: 20 Adam steps, loss curve (rel 1e-3)");
    /* trained map */
    vg_scope_begin();
    float *maps = malloc(sizeof(float) * 2 * 64 * 64), scores[2];
    if (m->ops->predict(m, philox_input(2, 64, 7), maps, scores) == VG_OK)
      close_map(maps, 2 * 64 * 64, fx, "map_t", 1e-3, "r18: anomaly map after 20 steps (rel 1e-3)");
    vg_scope_end();
    /* exact resume: a fresh model loads the step-10 checkpoint and replays steps 10..19 */
    vg_method *r = make(cfg);
    float curve2[20] = {0};
    st = r ? r->ops->load(r, path) : VG_ERR_ARG;
    if (VG_CHECK(st == VG_OK, "r18: load checkpoint%s%s", st ? ": " : "", st ? vg_last_error() : "")) {
      train(r, 10, 20, curve2);
      int same = 1;
      for (int i = 10; i < 20; i++) same &= curve2[i] == curve[i];
      VG_CHECK(same, "r18: resume from step 10 replays steps 10..19 bit for bit (%.6f vs %.6f at 19)",
               curve2[19], curve[19]);
    }
    vg_method_free(r);
    free(maps);
    unlink(path);
  }
  vg_method_free(m);
  vg_fixture_free(fx);
}

static void test_anomalib_pth(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("fastflow_anomalib.bin"));
  if (!VG_CHECK(fx != NULL, "fastflow_anomalib.bin")) return;
  vg_method *m = make("{\"input_size\":32,\"flow_steps\":1,\"hidden_ratio\":0.0625}");
  vg_status st = VG_ERR_ARG;
  if (m) {
    vg_resnet_init_philox(vg_nn_child_get(vg_fastflow_module(m), "feature_extractor"), 1000);
    st = vg_fastflow_load_anomalib(m, vg_test_fixture("fastflow_anomalib.pth"));
  }
  if (VG_CHECK(st == VG_OK, "anomalib .pth (model.* keys, deflated) loads%s%s", st ? ": " : "", st ? vg_last_error() : "")) {
    vg_scope_begin();
    float maps[2 * 32 * 32], scores[2];
    if (VG_CHECK(m->ops->predict(m, philox_input(2, 32, 7), maps, scores) == VG_OK, "anomalib: predict"))
      close_rel(maps, vg_fixture_get(fx, "map"), 1e-4, "anomalib .pth: anomaly map vs anomalib");
    vg_scope_end();
  }
  vg_method_free(m);
  m = make("{\"input_size\":32,\"flow_steps\":2,\"hidden_ratio\":0.0625}");
  st = m ? vg_fastflow_load_anomalib(m, vg_test_fixture("fastflow_anomalib.pth")) : VG_OK;
  VG_CHECK(st != VG_OK, "anomalib .pth into a 2-step model is refused (%s)", st ? vg_last_error() : "loaded");
  vg_method_free(m);
  vg_fixture_free(fx);
}

static void test_config(void) {
  vg_method *m = make("{}");
  char *j = m ? m->ops->config_json(m) : NULL;
  VG_CHECK(j && strstr(j, "\"conv3x3_only\": true") && strstr(j, "\"batch_size\": 32") && m->input_h == 256,
           "defaults: resnet18, 256, conv3x3_only, batch 32");
  free(j);
  vg_method_free(m);
  vg_json *cfg = NULL;
  const char *bad = "{\"nope\":1}";
  vg_json_parse(bad, strlen(bad), NULL, &cfg);
  m = NULL;
  VG_CHECK(vg_fastflow_new(cfg, &m) != VG_OK && !m, "unknown config key refused (%s)", vg_last_error());
  vg_json_free(cfg);
}

int main(void) {
  vg_set_num_threads(2);
  test_config();
  test_r18();
  test_wrn50();
  test_anomalib_pth();
  return vg_test_finish();
}
