/* test_fastflow_vit — FastFlow on the transformer backbones (methods/fastflow, nn/backbones/vit.h)
 * vs anomalib 2.7's FastflowModel with TINY timm models of the same classes
 * (tools/gen_fastflow_vit_fixtures.py): VisionTransformerDistilled through anomalib's
 * _get_vit_features (blocks 0..7, norm, 2 prefix tokens dropped) and Cait through
 * _get_cait_features (blocks 0..40, norm), identical weights (backbone vg_vit_init_philox,
 * flows the sin formula, permutations from the fixture) and inputs: the features fed to the
 * flow, z, log-det, loss, anomaly map and scores (<= 1e-4 of max|ref|), 3 Adam steps with the
 * backbone frozen; an anomalib-named .pth with these backbones: the structural options read off
 * it (vg_anomalib_config) and its map. Also the flow's parameter count at full size (768
 * channels, 20 steps) built without the backbone, the backbone-dependent defaults and the
 * refusals (sizes, memory). */
#include "methods/anomalib_import.h"
#include "methods/fastflow/fastflow.h"
#include "nn/backbones/vit.h"
#include "tests/common/fixture.h"
#include "tests/common/flow_weights.h"
#include "tests/vgtest.h"
#include <math.h>

#define BASE_SEED 3100

static const char *const DEIT = "deit_base_distilled_patch16_384", *const CAIT = "cait_m48_448";

/* the tiny configs of the generator (TINY there) */
static vg_nn_module *tiny_encoder(bool deit, int patch) {
  vg_vit_config c;
  if (!vg_vit_config_of(deit ? DEIT : CAIT, &c)) return NULL;
  c.embed_dim = 32;
  c.depth = deit ? 9 : 41;
  c.num_heads = 2;
  c.mlp_ratio = 2.0;
  c.img_size = deit ? 64 : 48;
  c.num_classes = 0;
  c.patch = patch;
  const char *tap = deit ? "norm.7" : "norm.40";
  vg_nn_module *m = vg_vit_new_config(&c, 1, &tap, 1);
  if (m && vg_vit_init_philox(m, BASE_SEED) != VG_OK) { vg_nn_free(m); return NULL; }
  if (!m) fprintf(stderr, "tiny encoder: %s\n", vg_last_error());
  return m;
}

static vg_method *make_on(const char *cfg_text, vg_nn_module *enc) {
  vg_json *cfg = NULL;
  if (vg_json_parse(cfg_text, strlen(cfg_text), NULL, &cfg) != VG_OK) { vg_nn_free(enc); return NULL; }
  vg_method *m = NULL;
  vg_status st = enc ? vg_fastflow_new_encoder(cfg, enc, &m) : vg_fastflow_new(cfg, &m);
  vg_json_free(cfg);
  if (st != VG_OK) fprintf(stderr, "fastflow: %s\n", vg_last_error());
  return m;
}

/* flows: the sin formula; permutations from the fixture's perm.<step> index vectors */
static bool set_flow_weights(vg_method *m, const vg_fixture *fx) {
  vg_nn_list sd = vg_nn_state_dict(vg_fastflow_module(m));
  bool ok = true;
  for (int i = 0; i < sd.n; i++) {
    const char *n = sd.names[i];
    vg_tensor *t = sd.tensors[i];
    if (strncmp(n, "fast_flow_blocks.", 17) || t->dtype != VG_F32) continue;
    const char *leaf = strrchr(n, '.') + 1;
    if (!strcmp(leaf, "w_perm") || !strcmp(leaf, "w_perm_inv")) {
      int s, j;
      char key[32];
      if (sscanf(n, "fast_flow_blocks.%d.module_list.%d.", &s, &j) != 2) { ok = false; continue; }
      snprintf(key, sizeof key, "perm.%d", j);
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

/* max|got - want| / max|want| <= tol */
static void close_max(const float *got, int64_t n, const vg_fx_tensor *want, double tol, const char *what) {
  if (!VG_CHECK(want && want->n == n, "%s: fixture entry (%lld values)", what, (long long)n)) return;
  double e = 0, mx = 0;
  for (int64_t i = 0; i < n; i++) {
    e = fmax(e, fabs((double)got[i] - want->data[i]));
    mx = fmax(mx, fabs(want->data[i]));
  }
  VG_CHECK(isfinite(e) && e <= tol * mx, "%s: max err %.3g = %.3g of max|ref| %.4g (tol %.0e)", what, e, mx > 0 ? e / mx : e,
           mx, tol);
}

static vg_tensor *philox_input(int64_t n, int64_t hw, uint64_t seed) {
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){n, 3, hw, hw});
  vg_uniform_(x, -2.0f, 2.0f, seed);
  return x;
}

static void check_map(vg_method *m, const vg_fixture *fx, int hw, const char *tag) {
  float *maps = malloc(sizeof(float) * (size_t)(2 * hw * hw)), scores[2];
  vg_scope_begin();
  vg_status st = m->ops->predict(m, philox_input(2, hw, 7), maps, scores);
  vg_scope_end();
  if (VG_CHECK(st == VG_OK, "%s: predict%s%s", tag, st ? ": " : "", st ? vg_last_error() : "")) {
    const vg_fx_tensor *ms = vg_fixture_get(fx, "mapstride");
    int k = ms ? (int)ms->data[0] : 1;
    int64_t n = 0;
    for (int64_t i = 0; i < 2 * hw * hw; i += k) maps[n++] = maps[i];
    char what[96];
    snprintf(what, sizeof what, "%s: anomaly map vs anomalib (every %dth)", tag, k);
    close_max(maps, n, vg_fixture_get(fx, "map"), 1e-4, what);
    snprintf(what, sizeof what, "%s: image scores (max of the map)", tag);
    close_max(scores, 2, vg_fixture_get(fx, "score"), 1e-4, what);
  }
  free(maps);
}

static void conformance(bool deit) {
  const char *tag = deit ? "deit" : "cait";
  char path[64];
  snprintf(path, sizeof path, "fastflow_vit_%s.bin", tag);
  vg_fixture *fx = vg_fixture_load(vg_test_fixture(path));
  if (!VG_CHECK(fx != NULL, "%s", path)) return;
  const vg_fx_tensor *pc = vg_fixture_get(fx, "philox.check");
  float u[4];
  vg_tensor *pt = vg_tensor_new(VG_F32, 1, (int64_t[]){4});
  vg_uniform_(pt, 0.0f, 1.0f, BASE_SEED);
  memcpy(u, vg_f32(pt), sizeof u);
  vg_tensor_free(pt);
  VG_CHECK(pc && pc->n == 4 && !memcmp(u, pc->data, sizeof u), "%s: Philox stream matches tools/philox.py", tag);
  const int hw = deit ? 64 : 48;
  char cfg[256];
  snprintf(cfg, sizeof cfg, "{\"backbone\":\"%s\",\"input_size\":%d,\"flow_steps\":4,\"hidden_ratio\":0.25}",
           deit ? DEIT : CAIT, hw);
  vg_method *m = make_on(cfg, tiny_encoder(deit, 16));
  if (!VG_CHECK(m && set_flow_weights(m, fx), "%s: tiny model + weights", tag)) { vg_method_free(m); vg_fixture_free(fx); return; }
  vg_nn_module *fe = vg_nn_child_get(vg_fastflow_module(m), "feature_extractor");
  VG_CHECK(vg_vit_num_blocks(fe) == (deit ? 8 : 41) && !vg_nn_child_get(vg_fastflow_module(m), "norms"),
           "%s: encoder truncated after block %d, no LayerNorms (anomalib's transformer path)", tag, deit ? 7 : 40);
  vg_scope_begin();
  vg_tensor *x = philox_input(2, hw, 7), *f = NULL;
  vg_status st = vg_backbone_features(fe, x, &f);
  if (VG_CHECK(st == VG_OK && f && f->ndim == 4 && f->shape[1] == 32 && f->shape[2] == hw / 16,
               "%s: features (N, 32, %d, %d)%s%s", tag, hw / 16, hw / 16, st ? ": " : "", st ? vg_last_error() : ""))
    close_max(vg_f32(vg_contiguous(f)), vg_numel(f), vg_fixture_get(fx, "feat"), 1e-5,
              deit ? "deit: features after norm (block 7, prefix tokens dropped) vs anomalib"
                   : "cait: features after norm (block 40) vs anomalib");
  vg_tensor *z[1], *ld[1];
  st = vg_fastflow_forward(m, x, z, ld);
  if (VG_CHECK(st == VG_OK, "%s: forward%s%s", tag, st ? ": " : "", st ? vg_last_error() : "")) {
    char what[96];
    snprintf(what, sizeof what, "%s: z vs anomalib", tag);
    close_max(vg_f32(vg_contiguous(z[0])), vg_numel(z[0]), vg_fixture_get(fx, "z"), 1e-4, what);
    snprintf(what, sizeof what, "%s: log|det J| vs anomalib", tag);
    close_max(vg_f32(vg_contiguous(ld[0])), vg_numel(ld[0]), vg_fixture_get(fx, "ld"), 1e-4, what);
    float loss = vg_item(vg_fastflow_loss(1, z, ld));
    snprintf(what, sizeof what, "%s: loss vs anomalib's FastflowLoss", tag);
    close_max(&loss, 1, vg_fixture_get(fx, "loss"), 1e-4, what);
  }
  vg_scope_end();
  check_map(m, fx, hw, tag);
  /* 3 Adam steps: the backbone stays frozen (as anomalib's requires_grad False) */
  int64_t trained = vg_nn_num_params(vg_fastflow_module(m), true);
  VG_CHECK(trained == 4240, "%s: %lld trained parameters (the flow only; anomalib: 4240)", tag, (long long)trained);
  float curve[3];
  for (int i = 0; i < 3; i++) {
    vg_scope_begin();
    double l = NAN;
    st = m->ops->train_step(m, philox_input(2, hw, 100 + (uint64_t)i), i, &l);
    curve[i] = (float)l;
    vg_scope_end();
    if (st != VG_OK) fprintf(stderr, "step %d: %s\n", i, vg_last_error());
  }
  char what[96];
  snprintf(what, sizeof what, "%s: 3 Adam steps, loss before each (lr 1e-3, wd 1e-5)", tag);
  close_max(curve, 3, vg_fixture_get(fx, "curve"), 1e-4, what);
  vg_method_free(m);
  vg_fixture_free(fx);
}

/* an anomalib state_dict with a transformer backbone: options off the shapes, then its weights */
static void anomalib_import(bool deit) {
  const char *tag = deit ? "deit" : "cait";
  char bin[64], pth[64];
  snprintf(bin, sizeof bin, "fastflow_vit_%s.bin", tag);
  snprintf(pth, sizeof pth, "fastflow_vit_%s.pth", tag);
  vg_fixture *fx = vg_fixture_load(vg_test_fixture(bin));
  if (!VG_CHECK(fx != NULL, "%s", bin)) return;
  vg_json *cfg = NULL;
  char note[512] = "";
  vg_status st = vg_anomalib_config("fastflow", vg_test_fixture(pth), NULL, &cfg, note, sizeof note);
  char want_bb[64], want_in[32];
  snprintf(want_bb, sizeof want_bb, "backbone=\"%s\"", deit ? DEIT : CAIT);
  snprintf(want_in, sizeof want_in, "input_size=%d", deit ? 64 : 48);
  VG_CHECK(st == VG_OK && strstr(note, want_bb) && strstr(note, want_in) && strstr(note, "flow_steps=4") &&
               strstr(note, "hidden_ratio=0.25") && strstr(note, "conv3x3_only=false"),
           "%s .pth: options read off the tensors (%s)", tag, st ? vg_last_error() : note);
  vg_method *m = NULL;
  if (st == VG_OK) {
    vg_nn_module *enc = tiny_encoder(deit, 16);
    st = enc ? vg_fastflow_new_encoder(cfg, enc, &m) : VG_ERR_ARG;
    if (st == VG_OK) st = vg_fastflow_load_anomalib(m, vg_test_fixture(pth));
  }
  vg_json_free(cfg);
  if (VG_CHECK(st == VG_OK, "%s .pth loads (model.* keys; feature_extractor's unbuilt entries ignored)%s%s", tag,
               st ? ": " : "", st ? vg_last_error() : ""))
    check_map(m, fx, deit ? 64 : 48, deit ? "deit .pth" : "cait .pth");
  vg_method_free(m);
  /* a user's option that contradicts the checkpoint names it */
  const char *ut = "{\"backbone\":\"resnet18\"}";
  vg_json *u = NULL;
  vg_json_parse(ut, strlen(ut), NULL, &u);
  cfg = NULL;
  st = vg_anomalib_config("fastflow", vg_test_fixture(pth), u, &cfg, note, sizeof note);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "backbone") && strstr(vg_last_error(), deit ? "dist_token" : "pos_embed"),
           "%s .pth with --set backbone=resnet18 refused (%s)", tag, st ? vg_last_error() : "accepted");
  vg_json_free(cfg);
  vg_json_free(u);
  vg_fixture_free(fx);
}

/* the flow at full size, no backbone: anomalib's reference setting and the paper's 14.8M */
static void param_counts(void) {
  struct { double ratio; int64_t want, hid; const char *what; } cases[] = {
    {0.16, 7074500, 61, "ratio 0.16 (anomalib FastFlow, DeiT/CaiT reference setting)"},
    {0.334, 14794240, 128, "hidden C/6 = 128 (the paper's Table 1 \"14.8M\")"},
  };
  for (int c = 0; c < 2; c++) {
    vg_nn_module *f = vg_fastflow_flow_new(768, 1, 1, 20, cases[c].ratio, false, 0, 0);
    if (!VG_CHECK(f != NULL, "768-channel flow builds%s%s", f ? "" : ": ", f ? "" : vg_last_error())) continue;
    int64_t n = vg_nn_num_params(f, true);
    /* by hand: 10 x (3x3 and 1x1) subnets 384 -> hid -> 768, + global scale/offset 2 x 768 per step */
    int64_t h = cases[c].hid, by_hand = 0;
    for (int i = 0; i < 20; i++) {
      int64_t k2 = i % 2 ? 1 : 9;
      by_hand += k2 * 384 * h + h + k2 * h * 768 + 768 + 2 * 768;
    }
    VG_CHECK(n == cases[c].want && n == by_hand, "flow 768 ch, 20 steps, %s: %lld trained parameters (want %lld, by "
             "hand %lld)", cases[c].what, (long long)n, (long long)cases[c].want, (long long)by_hand);
    vg_nn_free(f);
  }
}

static void defaults_and_refusals(void) {
  /* backbone-dependent defaults (input_size auto = the encoder's img_size here) */
  vg_method *m = make_on("{\"backbone\":\"deit_base_distilled_patch16_384\"}", tiny_encoder(true, 16));
  char *j = m ? m->ops->config_json(m) : NULL;
  VG_CHECK(j && strstr(j, "\"flow_steps\": 20") && strstr(j, "\"hidden_ratio\": 0.16") &&
               strstr(j, "\"conv3x3_only\": false") && strstr(j, "\"input_size\": 64") && m->input_h == 64,
           "deit defaults: 20 steps, hidden_ratio 0.16, 3x3/1x1 alternating, the backbone's size%s%s", m ? "" : ": ",
           m ? "" : vg_last_error());
  if (m && m->input_h != 64) fprintf(stderr, "%s\n", j ? j : "");
  free(j);
  vg_method_free(m);
  m = make_on("{\"backbone\":\"cait_m48_448\",\"hidden_ratio\":1.0,\"flow_steps\":8}", tiny_encoder(false, 16));
  j = m ? m->ops->config_json(m) : NULL;
  VG_CHECK(j && strstr(j, "\"flow_steps\": 8") && strstr(j, "\"hidden_ratio\": 1,") && strstr(j, "\"input_size\": 48"),
           "cait: given flow_steps / hidden_ratio kept%s%s", m ? "" : ": ", m ? "" : vg_last_error());
  free(j);
  vg_method_free(m);
  m = make_on("{}", NULL);   /* resnet18: anomalib's defaults, unchanged */
  j = m ? m->ops->config_json(m) : NULL;
  VG_CHECK(j && strstr(j, "\"flow_steps\": 8") && strstr(j, "\"hidden_ratio\": 1,") && strstr(j, "\"input_size\": 256") &&
               strstr(j, "\"conv3x3_only\": true"),
           "resnet18 defaults unchanged: 256, 8 steps, ratio 1, 3x3 only");
  free(j);
  vg_method_free(m);
  /* sizes the backbone cannot take */
  vg_json *cfg = NULL;
  m = NULL;
  const char *t = "{\"backbone\":\"deit_base_distilled_patch16_384\",\"input_size\":48}";
  vg_json_parse(t, strlen(t), NULL, &cfg);
  vg_status st = vg_fastflow_new_encoder(cfg, tiny_encoder(true, 32), &m);
  VG_CHECK(st != VG_OK && !m && strstr(vg_last_error(), "patch size 32"), "input 48 on a patch-32 encoder refused (%s)",
           st ? vg_last_error() : "accepted");
  vg_json_free(cfg);
  t = "{\"backbone\":\"cait_m48_448\",\"input_size\":40}";
  vg_json_parse(t, strlen(t), NULL, &cfg);
  st = vg_fastflow_new(cfg, &m);
  VG_CHECK(st != VG_OK && !m && strstr(vg_last_error(), "multiple of 16"), "cait input 40 refused (%s)",
           st ? vg_last_error() : "accepted");
  vg_json_free(cfg);
  /* full-size CaiT at 4096 px: 65536 tokens, attention beyond any memory: refused before allocating */
  t = "{\"backbone\":\"cait_m48_448\",\"input_size\":4096}";
  vg_json_parse(t, strlen(t), NULL, &cfg);
  st = vg_fastflow_new(cfg, &m);
  VG_CHECK(st != VG_OK && !m && strstr(vg_last_error(), "input_size 4096"), "cait at 4096 refused before allocating (%s)",
           st ? vg_last_error() : "accepted");
  vg_json_free(cfg);
  t = "{\"backbone\":\"deit_base_distilled_patch16_384\",\"hidden_ratio\":0.002}";
  vg_json_parse(t, strlen(t), NULL, &cfg);
  st = vg_fastflow_new(cfg, &m);
  VG_CHECK(st != VG_OK && !m && strstr(vg_last_error(), "hidden_ratio"), "deit hidden_ratio 0.002 (no hidden channel) "
           "refused (%s)", st ? vg_last_error() : "accepted");
  vg_json_free(cfg);
  t = "{\"backbone\":\"vit_base_patch16_224\"}";
  vg_json_parse(t, strlen(t), NULL, &cfg);
  st = vg_fastflow_new(cfg, &m);
  VG_CHECK(st != VG_OK && !m && strstr(vg_last_error(), "cait_m48_448"), "unknown backbone refused, naming the four (%s)",
           st ? vg_last_error() : "accepted");
  vg_json_free(cfg);
}

int main(void) {
  vg_set_num_threads(2);
  param_counts();
  defaults_and_refusals();
  conformance(true);
  conformance(false);
  anomalib_import(true);
  anomalib_import(false);
  return vg_test_finish();
}
