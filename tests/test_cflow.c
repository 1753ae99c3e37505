/* test_cflow — CFLOW-AD (methods/cflow) vs anomalib 2.7's CflowModel and the official
 * cflow-ad training loop / score normalisation on identical weights and inputs
 * (tools/gen_cflow_fixtures.py): positional encoding, per-fibre log-likelihoods per tap,
 * anomalib per-batch map, official whole-test-set map and scores, 21 optimizer steps on
 * exported fibre orders, checkpoint round trip, and loading an anomalib-named .pth.
 * Weights are not stored (backbone: vg_resnet_init_philox; decoders: sin formula). */
#include "methods/cflow/cflow.h"
#include "nn/backbones/backbones.h"
#include "tests/common/fixture.h"
#include "tests/vgtest.h"
#include "tests/common/flow_weights.h"
#include <unistd.h>

static vg_method *make(const char *text) {
  vg_json *cfg = NULL;
  if (vg_json_parse(text, strlen(text), NULL, &cfg) != VG_OK) return NULL;
  vg_method *m = NULL;
  if (vg_cflow_new(cfg, &m) != VG_OK) fprintf(stderr, "cflow_new: %s\n", vg_last_error());
  vg_json_free(cfg);
  return m;
}

static bool set_weights(vg_method *m, const vg_fixture *fx) {
  vg_nn_module *net = vg_cflow_module(m);
  if (vg_resnet_init_philox(vg_nn_child_get(vg_nn_child_get(net, "encoder"), "feature_extractor"), 1000) != VG_OK) return false;
  vg_nn_list sd = vg_nn_state_dict(net);
  bool ok = true;
  for (int i = 0; i < sd.n; i++) {
    const char *n = sd.names[i];
    vg_tensor *t = sd.tensors[i];
    if (!strncmp(n, "encoder.", 8) || t->dtype != VG_F32) continue;
    const char *leaf = strrchr(n, '.') + 1;
    if (!strcmp(leaf, "w_perm") || !strcmp(leaf, "w_perm_inv")) {
      int l, j;
      char key[64];
      if (sscanf(n, "decoders.%d.module_list.%d.", &l, &j) != 2) { ok = false; continue; }
      snprintf(key, sizeof key, "perm.%d.%d", l, j);
      const vg_fx_tensor *p = vg_fixture_get(fx, key);
      int64_t C = t->shape[0];
      if (!p || p->n != C) { ok = false; continue; }
      float *w = vg_f32(t);
      memset(w, 0, sizeof(float) * (size_t)(C * C));
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

static void close_rel(const float *got, int64_t n, const vg_fx_tensor *want, double rel, const char *what) {
  if (!VG_CHECK(want && want->n == n, "%s: fixture entry (%lld values)", what, (long long)n)) return;
  VG_CHECK_CLOSE(got, want->data, n, rel, rel * maxabs(want), what);
}

static vg_tensor *philox_input(int64_t n, int64_t hw, uint64_t seed) {
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){n, 3, hw, hw});
  vg_uniform_(x, -2.0f, 2.0f, seed);
  return x;
}

static void check_lp(vg_method *m, const vg_fixture *fx, int64_t hw, const char *prefix, int only, double rel,
                     const char *tag) {
  vg_scope_begin();
  vg_tensor *e[4], *c[4];
  int64_t h[4], w[4];
  vg_status st = vg_cflow_fibres(m, philox_input(2, hw, 7), e, c, h, w);
  if (VG_CHECK(st == VG_OK, "%s: fibres", tag))
    for (int l = 0; l < vg_cflow_num_layers(m); l++) {
      if (only >= 0 && l != only) continue;
      char key[32], what[96];
      snprintf(key, sizeof key, "%s.%d", prefix, l);
      snprintf(what, sizeof what, "%s: log p / C per fibre, tap %d (%lld fibres)", tag, l, (long long)e[l]->shape[0]);
      vg_tensor *lp = vg_contiguous(vg_cflow_log_prob(m, l, e[l], c[l]));
      close_rel(vg_f32(lp), vg_numel(lp), vg_fixture_get(fx, key), rel, what);
    }
  vg_scope_end();
}

/* one train step on the exported fibre orders vs closs<sfx> and lp_t<sfx>.<tap> (every
 * tap the fixture has) */
static void train_check(vg_method *m, const vg_fixture *fx, int64_t *const *perms, const char *sfx, const char *tag) {
  float closs[64];
  int nch = 0;
  double loss = 0;
  vg_scope_begin();
  vg_status st = perms ? vg_cflow_train_step_ex(m, philox_input(2, 64, 100), 0, (const int64_t *const *)perms, closs, 64,
                                                &nch, &loss)
                       : VG_ERR_ARG;
  vg_scope_end();
  if (!VG_CHECK(st == VG_OK, "%s: train step (%d optimizer steps)%s%s", tag, nch, st ? ": " : "",
                st ? vg_last_error() : ""))
    return;
  char key[32], what[128];
  snprintf(key, sizeof key, "closs%s", sfx);
  snprintf(what, sizeof what, "%s: per-chunk losses, one Adam step each (rel 1e-3)", tag);
  close_rel(closs, nch, vg_fixture_get(fx, key), 1e-3, what);
  snprintf(key, sizeof key, "lp_t%s", sfx);
  snprintf(what, sizeof what, "%s after training", tag);
  for (int l = 0; l < 3; l++) {
    char k[40];
    snprintf(k, sizeof k, "%s.%d", key, l);
    if (vg_fixture_get(fx, k)) check_lp(m, fx, 64, key, l, 1e-3, what);
  }
}

static void test_r18(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("cflow_r18.bin"));
  if (!VG_CHECK(fx != NULL, "cflow_r18.bin")) return;
  const char *cfg = "{\"backbone\":\"resnet18\",\"input_size\":64,\"layers\":[\"layer2\",\"layer3\",\"layer4\"],"
                    "\"condition_vector\":128,\"coupling_blocks\":8,\"clamp_alpha\":1.9,\"permute_soft\":false,"
                    "\"fiber_batch\":8,\"warm_epochs\":0,\"batch_size\":2,\"zero_grad\":\"zero\"}";
  vg_method *m = make(cfg);
  if (!VG_CHECK(m && set_weights(m, fx), "r18: model + weights")) { vg_method_free(m); vg_fixture_free(fx); return; }
  vg_scope_begin();
  vg_tensor *pe = vg_cflow_positional_encoding(128, 8, 8);
  close_rel(vg_f32(pe), vg_numel(pe), vg_fixture_get(fx, "pe"), 1e-6, "positional encoding 128 x 8 x 8");
  vg_scope_end();
  check_lp(m, fx, 64, "lp", -1, 1e-4, "r18");
  /* maps: anomalib per-batch, then official over two batches */
  float *maps = malloc(sizeof(float) * 4 * 64 * 64), scores[4];
  vg_scope_begin();
  vg_status st = m->ops->predict(m, philox_input(2, 64, 7), maps, scores);
  if (VG_CHECK(st == VG_OK, "r18: predict batch 1"))
    close_rel(maps, 2 * 64 * 64, vg_fixture_get(fx, "map_b"), 1e-4, "r18: anomalib per-batch map");
  st = m->ops->predict(m, philox_input(2, 64, 8), maps + 2 * 64 * 64, scores + 2);
  if (VG_CHECK(st == VG_OK, "r18: predict batch 2")) {
    st = m->ops->finalize(m, maps, 4, 64, 64, scores);
    if (VG_CHECK(st == VG_OK, "r18: finalize")) {
      close_rel(maps, 4 * 64 * 64, vg_fixture_get(fx, "map_o"), 1e-4, "r18: official map (test-set max, 4 images)");
      close_rel(scores, 4, vg_fixture_get(fx, "score_o"), 1e-4, "r18: official image scores");
    }
  }
  vg_scope_end();
  free(maps);
  /* training on the exported fibre orders */
  int64_t *perms[3] = {0};
  bool have = true;
  for (int l = 0; l < 3; l++) {
    char key[32];
    snprintf(key, sizeof key, "fperm.%d", l);
    const vg_fx_tensor *p = vg_fixture_get(fx, key);
    if (!p) { have = false; continue; }
    perms[l] = malloc(sizeof(int64_t) * (size_t)p->n);
    for (int64_t i = 0; i < p->n; i++) perms[l][i] = (int64_t)p->data[i];
  }
  train_check(m, fx, have ? perms : NULL, "", "r18 (grads zeroed, torch 1.x)");
  /* the same training from the same weights with torch 2's zero_grad(set_to_none=True): the
   * chunk losses agree, but taps 0 and 1 stop moving once their turn is over */
  const vg_fx_tensor *a = vg_fixture_get(fx, "lp_t.0"), *b = vg_fixture_get(fx, "lp_t_none.0");
  double dmax = 0;
  for (int64_t i = 0; a && b && i < a->n && i < b->n; i++) dmax = fmax(dmax, fabs(a->data[i] - b->data[i]));
  VG_CHECK(a && b && dmax > 1e-2 * maxabs(a), "fixture: zeroed and None grads give different tap-0 models (%.3g)", dmax);
  char cfg_none[512];
  snprintf(cfg_none, sizeof cfg_none, "%.*s\"none\"}", (int)(strstr(cfg, "\"zero\"}") - cfg), cfg);
  vg_method *mn = make(cfg_none);
  if (VG_CHECK(mn && set_weights(mn, fx), "r18 zero_grad none: model + weights"))
    train_check(mn, fx, have ? perms : NULL, "_none", "r18 (grads None, torch 2)");
  vg_method_free(mn);
  for (int l = 0; l < 3; l++) free(perms[l]);
  /* checkpoint round trip */
  char path[] = "/tmp/vg_cflow_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  st = m->ops->save(m, path);
  vg_method *r = make(cfg);
  vg_status st2 = st == VG_OK && r ? r->ops->load(r, path) : VG_ERR_ARG;
  if (VG_CHECK(st == VG_OK && st2 == VG_OK, "r18: save + load checkpoint"))
    check_lp(r, fx, 64, "lp_t", 0, 1e-3, "r18 reloaded");
  unlink(path);
  vg_method_free(r);
  vg_method_free(m);
  vg_fixture_free(fx);
}

static void test_anomalib_pth(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("cflow_anomalib.bin"));
  if (!VG_CHECK(fx != NULL, "cflow_anomalib.bin")) return;
  vg_method *m = make("{\"backbone\":\"resnet18\",\"input_size\":32,\"layers\":[\"layer1\"],\"condition_vector\":4,"
                      "\"coupling_blocks\":1,\"permute_soft\":false}");
  vg_status st = VG_ERR_ARG;
  if (m) {
    vg_resnet_init_philox(vg_nn_child_get(vg_nn_child_get(vg_cflow_module(m), "encoder"), "feature_extractor"), 1000);
    st = vg_cflow_load_anomalib(m, vg_test_fixture("cflow_anomalib.pth"));
  }
  if (VG_CHECK(st == VG_OK, "anomalib .pth (model.* keys, deflated) loads%s%s", st ? ": " : "", st ? vg_last_error() : ""))
    check_lp(m, fx, 32, "lp", -1, 1e-4, "anomalib .pth");
  vg_method_free(m);
  vg_fixture_free(fx);
}

static void test_config(void) {
  vg_json *cfg = NULL;
  const char *t = "{\"backbone\":\"resnet18\",\"permute_soft\":false}";
  vg_json_parse(t, strlen(t), NULL, &cfg);
  vg_method *m = NULL;
  vg_status st = vg_cflow_new(cfg, &m);
  vg_json_free(cfg);
  char *j = st == VG_OK ? m->ops->config_json(m) : NULL;
  VG_CHECK(j && strstr(j, "\"fiber_batch\": 256") && strstr(j, "\"lr\": 0.0002") &&
               strstr(j, "\"meta_epochs\": 25") && strstr(j, "\"map_norm\": \"official\"") && m->default_steps == 25 * 8 * 8,
           "defaults: layer2-4, N=256, lr 2e-4, 25 x 8 meta/sub-epochs, official maps");
  free(j);
  vg_method_free(m);
}

/* host inference runs the decoders over chunks of 4096 fibres: a batch of 5 at 128 px
 * (5 x 32 x 32 = 5120 layer1 fibres: two chunks) gives the same log-likelihoods, so the same
 * officially normalised maps, as the 5 images one by one (1024 fibres: one pass) */
static void test_chunked_inference(void) {
  const char *cfg = "{\"backbone\":\"resnet18\",\"input_size\":128,\"layers\":[\"layer1\"],\"condition_vector\":8,"
                    "\"coupling_blocks\":2,\"seed\":4}";
  vg_method *a = make(cfg), *b = make(cfg);
  if (!VG_CHECK(a && b, "chunked inference: models")) { vg_method_free(a); vg_method_free(b); return; }
  const int64_t n = 5, P = 128 * 128;
  float *ma = malloc(sizeof(float) * (size_t)(n * P)), *mb = malloc(sizeof(float) * (size_t)(n * P)), sa[5], sb[5];
  vg_scope_begin();
  vg_tensor *x = philox_input(n, 128, 31);
  vg_status st = a->ops->predict(a, x, ma, sa);
  for (int64_t i = 0; i < n && st == VG_OK; i++) {
    vg_tensor *xi = vg_contiguous(vg_narrow(x, 0, i, 1));
    st = b->ops->predict(b, xi, mb + i * P, sb + i);
  }
  if (st == VG_OK) st = a->ops->finalize(a, ma, n, 128, 128, sa);
  if (st == VG_OK) st = b->ops->finalize(b, mb, n, 128, 128, sb);
  vg_scope_end();
  VG_CHECK(st == VG_OK && !memcmp(ma, mb, sizeof(float) * (size_t)(n * P)) && !memcmp(sa, sb, sizeof sa),
           "chunked host inference (5120 fibres in 2 chunks) = one image at a time, bit for bit%s%s", st ? ": " : "",
           st ? vg_last_error() : "");
  free(ma);
  free(mb);
  vg_method_free(a);
  vg_method_free(b);
}

int main(void) {
  vg_set_num_threads(2);
  test_config();
  test_chunked_inference();
  test_r18();
  test_anomalib_pth();
  return vg_test_finish();
}
