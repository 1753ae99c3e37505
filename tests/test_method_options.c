/* test_method_options.c — the paper-table options of the methods (issue 18):
 *   FastFlow hflip / vflip / rotate (Table 8): a train step with the option equals a plain
 *     step on the batch augmented by methods/augment.h with the same (seed, step, row) keys,
 *     and differs from the plain step on the raw batch;
 *   CFLOW-AD rotate (official ±5°) likewise; conditional=false (UFLOW): fewer parameters,
 *     trains, predicts; paper_setup refuses a rotate other than 5 and conditional=false;
 *   EfficientAD q_a / q_b: the normalisation maps the q_a / q_b validation quantiles
 *     (computed here by sorting) to 0 / 0.1; map_norm_ablation=without_map_normalization:
 *     validation pixels to mean 0, variance 1; q_a >= q_b refused;
 *   method defs: paper_epochs / no_val; the CLI: no hold-out for fastflow, the hold-out for
 *     efficientad, cflow's eval_every_meta_epoch -> best_epoch.json and best_epoch_* keys in
 *     metrics.json (the final model's numbers stay the main ones). */
#include "tests/vgtest.h"
#include "methods/method.h"
#include "methods/augment.h"
#include "methods/cflow/cflow.h"
#include "methods/efficientad/efficientad.h"
#include "base/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_tmp[256] = "/tmp/vigil_test_mopts_XXXXXX";
static char g_vigil[1100];

static vg_method *make(const char *name, const char *cfg_text) {
  vg_json *j = NULL;
  if (cfg_text && vg_json_parse(cfg_text, strlen(cfg_text), NULL, &j) != VG_OK) return NULL;
  vg_method *m = NULL;
  if (vg_method_create(name, j, &m) != VG_OK) m = NULL;
  vg_json_free(j);
  return m;
}

static int64_t nparams(vg_method *m) {
  vg_nn_list ps = vg_nn_named_parameters(m->ops->module(m));
  int64_t n = 0;
  for (int i = 0; i < ps.n; i++) if (ps.tensors[i]->requires_grad) n += vg_numel(ps.tensors[i]);
  vg_nn_list_free(&ps);
  return n;
}

/* normalised-looking random images, heap */
static vg_tensor *batch(int64_t n, int64_t s, uint64_t seed) {
  vg_tensor *x = vg_tensor_new(VG_F32, 4, (int64_t[]){n, 3, s, s});
  float *p = vg_data(x);
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < vg_numel(x); i++) {
    z ^= z << 13; z ^= z >> 7; z ^= z << 17;
    p[i] = (float)((double)(z >> 11) * 0x1.0p-53 * 4.0 - 2.0);
  }
  return x;
}

/* loss of one train_step at `step` of a fresh method with cfg on x */
static double step_loss(const char *method, const char *cfg, const vg_tensor *x, int64_t step) {
  vg_method *m = make(method, cfg);
  if (!m) { fprintf(stderr, "%s %s: %s\n", method, cfg, vg_last_error()); return NAN; }
  double loss = NAN;
  if (m->ops->train_step(m, x, step, &loss) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); loss = NAN; }
  vg_method_free(m);
  return loss;
}

static void check_aug(const char *method, const char *base, const char *opt, const vg_aug_cfg *a, uint64_t seed, int64_t s) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "{%s, %s}", base, opt);
  char plain[512];
  snprintf(plain, sizeof plain, "{%s}", base);
  vg_tensor *x = batch(8, s, 11), *y = vg_tensor_clone_heap(x);
  float fill[3], *scratch = malloc(sizeof(float) * (size_t)(3 * s * s));
  vg_aug_imagenet_black(fill);
  vg_aug_apply(a, seed, 3, vg_data(y), 8, 3, (int)s, (int)s, fill, scratch);
  double l_opt = step_loss(method, cfg, x, 3), l_ref = step_loss(method, plain, y, 3), l_raw = step_loss(method, plain, x, 3);
  VG_CHECK(isfinite(l_opt) && l_opt == l_ref && l_opt != l_raw,
           "%s %s: train step = plain step on the keyed augmented batch (%.9g == %.9g; raw batch %.9g)", method, opt, l_opt,
           l_ref, l_raw);
  free(scratch);
  vg_tensor_free(x);
  vg_tensor_free(y);
}

static void test_fastflow(void) {
  const char *base = "\"backbone\": \"resnet18\", \"input_size\": 32, \"flow_steps\": 1, \"hidden_ratio\": 0.0625, \"seed\": 5";
  check_aug("fastflow", base, "\"hflip\": true", &(vg_aug_cfg){.hflip_p = 0.5}, 5, 32);
  check_aug("fastflow", base, "\"vflip\": true", &(vg_aug_cfg){.vflip_p = 0.3}, 5, 32);
  check_aug("fastflow", base, "\"rotate\": 15", &(vg_aug_cfg){.rotate_p = 0.7, .rotate_deg = 15}, 5, 32);
  check_aug("fastflow", base, "\"hflip\": true, \"vflip\": true, \"rotate\": 30",
            &(vg_aug_cfg){.hflip_p = 0.5, .vflip_p = 0.3, .rotate_p = 0.7, .rotate_deg = 30}, 5, 32);
  /* a horizontally flipped batch through hflip with every row drawn: the flip of the sample */
  vg_tensor *x = batch(1, 8, 3);
  float buf[192];
  memcpy(buf, vg_data(x), sizeof buf);
  vg_aug_hflip(buf, 3, 8, 8);
  VG_CHECK(buf[0] == ((float *)vg_data(x))[7] && buf[8 * 8 + 3] == ((float *)vg_data(x))[8 * 8 + 4],
           "hflip: pixel (0, 0) <- (0, 7) of the sample");
  vg_tensor_free(x);
  VG_CHECK(make("fastflow", "{\"rotate\": -1}") == NULL && strstr(vg_last_error(), "rotate"), "rotate < 0 refused: %s",
           vg_last_error());
  const vg_method_def *d = vg_method_find("fastflow");
  VG_CHECK(d && d->paper_epochs == 500 && d->no_val, "fastflow: paper schedule 500 epochs, no validation hold-out");
}

static void test_cflow(void) {
  const char *base = "\"backbone\": \"resnet18\", \"input_size\": 64, \"layers\": [\"layer2\"], \"condition_vector\": 8, "
                     "\"coupling_blocks\": 2, \"fiber_batch\": 64, \"seed\": 2";
  check_aug("cflow", base, "\"rotate\": 5", &(vg_aug_cfg){.rotate_p = 1, .rotate_deg = 5}, 2, 64);
  char cfg[512];
  snprintf(cfg, sizeof cfg, "{%s}", base);
  vg_method *c = make("cflow", cfg);
  snprintf(cfg, sizeof cfg, "{%s, \"conditional\": false}", base);
  vg_method *u = make("cflow", cfg);
  if (!VG_CHECK(c && u, "conditional and unconditional cflow build%s%s", c && u ? "" : ": ", c && u ? "" : vg_last_error())) { vg_method_free(c); vg_method_free(u); return; }
  /* per block the subnet Linear(d, 2d) - Linear(2d, C) has d = ceil(C/2) + condition inputs (resnet18 layer2: C = 128):
   * d = 72 -> 29072 parameters, d = 64 -> 24832: 2 blocks x 4240 fewer */
  int64_t pc = nparams(c), pu = nparams(u);
  VG_CHECK(pc - pu == 2 * 4240, "unconditional: %lld fewer parameters (%lld vs %lld; want 8480)", (long long)(pc - pu),
           (long long)pu, (long long)pc);
  vg_tensor *x = batch(2, 64, 9);
  double l0 = NAN, l1 = NAN;
  vg_status st = u->ops->train_step(u, x, 0, &l0);
  if (st == VG_OK) st = u->ops->train_step(u, x, 1, &l1);
  VG_CHECK(st == VG_OK && isfinite(l0) && isfinite(l1), "unconditional cflow trains (losses %.6g, %.6g) %s", l0, l1,
           st == VG_OK ? "" : vg_last_error());
  float *maps = malloc(sizeof(float) * 2 * 64 * 64), scores[2];
  st = u->ops->predict(u, x, maps, scores);
  if (st == VG_OK && u->ops->finalize) st = u->ops->finalize(u, maps, 2, 64, 64, scores);
  VG_CHECK(st == VG_OK && isfinite(scores[0]) && isfinite(scores[1]), "unconditional cflow predicts (scores %g %g)", scores[0],
           scores[1]);
  char *j = u->ops->config_json(u);
  VG_CHECK(j && strstr(j, "\"conditional\": false") && strstr(j, "\"eval_every_meta_epoch\": false") && strstr(j, "\"rotate\": 0"),
           "config records conditional / eval_every_meta_epoch / rotate");
  free(j);
  VG_CHECK(c->eval_every == 0, "eval_every off by default");
  free(maps);
  vg_tensor_free(x);
  vg_method_free(c);
  vg_method_free(u);
  snprintf(cfg, sizeof cfg, "{%s, \"eval_every_meta_epoch\": true, \"sub_epochs\": 3, \"iters_per_epoch\": 5}", base);
  c = make("cflow", cfg);
  VG_CHECK(c && c->eval_every == 15, "eval_every_meta_epoch: an evaluation every sub_epochs x iters_per_epoch = 15 steps");
  vg_method_free(c);
  /* paper_setup: rotate is the official 5; another value or the unconditional variant is refused before building */
  VG_CHECK(!make("cflow", "{\"paper_setup\": true, \"category\": \"bottle\", \"rotate\": 3}") &&
               strstr(vg_last_error(), "rotate 3"), "paper_setup refuses rotate 3: %s", vg_last_error());
  VG_CHECK(!make("cflow", "{\"paper_setup\": true, \"category\": \"bottle\", \"zero_grad\": \"none\"}") &&
               strstr(vg_last_error(), "zero_grad"), "paper_setup refuses zero_grad none: %s", vg_last_error());
  VG_CHECK(!make("cflow", "{\"zero_grad\": \"nil\"}") && strstr(vg_last_error(), "zero_grad"),
           "zero_grad: an unknown value is refused: %s", vg_last_error());
  c = make("cflow", "{\"paper_setup\": true, \"category\": \"bottle\"}");
  j = c ? c->ops->config_json(c) : NULL;
  VG_CHECK(j && strstr(j, "\"zero_grad\": \"zero\""), "paper_setup sets zero_grad zero (torch 1.x, the paper's runs)");
  free(j);
  vg_method_free(c);
  snprintf(cfg, sizeof cfg, "{%s}", base);
  c = make("cflow", cfg);
  j = c ? c->ops->config_json(c) : NULL;
  VG_CHECK(j && strstr(j, "\"zero_grad\": \"none\""), "zero_grad defaults to none (torch >= 2.0)");
  free(j);
  vg_method_free(c);
  VG_CHECK(!make("cflow", "{\"paper_setup\": true, \"category\": \"bottle\", \"conditional\": false}") &&
               strstr(vg_last_error(), "conditional"), "paper_setup refuses conditional false: %s", vg_last_error());
  const vg_method_def *d = vg_method_find("cflow");
  VG_CHECK(d && d->no_val && d->paper_epochs == 0, "cflow: no validation hold-out; its schedule is meta x sub epochs");
  d = vg_method_find("efficientad");
  VG_CHECK(d && !d->no_val, "efficientad keeps its validation hold-out (map quantiles)");
}

/* torch.quantile (linear) of v[0..n) in double */
static int cmpf(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}
static double quantile(float *v, int64_t n, double q) {
  qsort(v, (size_t)n, sizeof *v, cmpf);
  double pos = q * (double)(n - 1);
  int64_t lo = (int64_t)floor(pos);
  int64_t hi = lo + 1 < n ? lo + 1 : lo;
  return (double)v[lo] + ((double)v[hi] - (double)v[lo]) * (pos - (double)lo);
}

static void test_efficientad(void) {
  const int64_t C = 8, S = 256;
  for (int mode = 0; mode < 3; mode++) {   /* 0: q_a/q_b 0.8/0.99, 1: defaults, 2: Gaussian */
    vg_effad_model *m = vg_effad_model_new(VG_EFFAD_S, C, false, 0);
    vg_effad_init_uniform(m->teacher, 1);
    vg_effad_init_uniform(m->student, 2);
    vg_effad_init_uniform(m->ae, 3);
    vg_nn_train(m->ae, false);
    float ms[16] = {0}, sd[16];
    for (int c = 0; c < 16; c++) sd[c] = 1;
    vg_from_host_(m->mean, VG_F32, ms);
    vg_from_host_(m->std, VG_F32, sd);
    if (mode == 0) { m->q_a = 0.8; m->q_b = 0.99; }
    if (mode == 2) m->gaussian_norm = true;
    double qa = m->q_a, qb = m->q_b;
    int64_t P = S * S;
    float *raw_st = malloc(sizeof(float) * (size_t)(2 * P)), *raw_ae = malloc(sizeof(float) * (size_t)(2 * P));
    vg_effad_quantiles_begin(m);
    for (int i = 0; i < 2; i++) {
      vg_scope_begin();
      vg_tensor *img = vg_rand(4, (int64_t[]){1, 3, S, S}, 100 + (uint64_t)i), *a, *b;
      VG_CHECK(vg_effad_maps(m, img, false, &a, &b) == VG_OK, "raw maps");
      vg_to_host(a, VG_F32, raw_st + i * P);
      vg_to_host(b, VG_F32, raw_ae + i * P);
      VG_CHECK(vg_effad_quantiles_add(m, img) == VG_OK, "quantiles_add");
      vg_scope_end();
    }
    VG_CHECK(vg_effad_quantiles_end(m) == VG_OK, "quantiles_end");
    double want[4];
    if (mode < 2) {
      want[1] = quantile(raw_st, 2 * P, qb);
      want[0] = quantile(raw_st, 2 * P, qa);
      want[3] = quantile(raw_ae, 2 * P, qb);
      want[2] = quantile(raw_ae, 2 * P, qa);
    } else {
      for (int k = 0; k < 2; k++) {
        const float *v = k ? raw_ae : raw_st;
        double s = 0, ss = 0;
        for (int64_t i = 0; i < 2 * P; i++) s += v[i];
        double mu = s / (double)(2 * P);
        for (int64_t i = 0; i < 2 * P; i++) ss += (v[i] - mu) * (v[i] - mu);
        want[2 * k] = mu;
        want[2 * k + 1] = mu + 0.1 * sqrt(ss / (double)(2 * P));
      }
    }
    const float got[4] = {m->qa_st, m->qb_st, m->qa_ae, m->qb_ae};
    double e = 0;
    for (int k = 0; k < 4; k++) e = fmax(e, fabs(got[k] - want[k]) / fmax(fabs(want[k]), 1e-12));
    VG_CHECK(e < 2e-6, "%s: the four normalisation points = %s (max rel err %.3g; qa_st %.6g qb_st %.6g)",
             mode == 0 ? "q_a 0.8 / q_b 0.99" : mode == 1 ? "q_a 0.9 / q_b 0.995" : "without_map_normalization",
             mode < 2 ? "the sorted quantiles" : "mean, mean + 0.1 std", e, got[0], got[1]);
    /* the normalised maps of validation image 0: quantile mode 0.1 (x - qa) / (qb - qa), Gaussian (x - mean) / std */
    vg_scope_begin();
    vg_tensor *img = vg_rand(4, (int64_t[]){1, 3, S, S}, 100), *a, *b;
    VG_CHECK(vg_effad_maps(m, img, true, &a, &b) == VG_OK, "normalised maps");
    float *na = malloc(sizeof(float) * (size_t)P);
    vg_to_host(a, VG_F32, na);
    double e2 = 0, lo = 0, hi = 0;
    vg_effad_quantiles_begin(m);
    vg_tensor *r, *r2;
    vg_effad_maps(m, img, false, &r, &r2);
    float *ra = malloc(sizeof(float) * (size_t)P);
    vg_to_host(r, VG_F32, ra);
    for (int64_t i = 0; i < P; i++) {
      double w = mode < 2 ? 0.1 * (ra[i] - want[0]) / (want[1] - want[0]) : (ra[i] - want[0]) / ((want[1] - want[0]) * 10);
      e2 = fmax(e2, fabs(na[i] - w));
      lo = fmin(lo, w);
      hi = fmax(hi, w);
    }
    VG_CHECK(e2 < 1e-5 * fmax(1, hi - lo), "%s: normalised ST map as specified (max |err| %.3g over [%.3g, %.3g])",
             mode == 2 ? "Gaussian" : "quantile", e2, lo, hi);
    free(na);
    free(ra);
    vg_scope_end();
    free(raw_st);
    free(raw_ae);
    vg_effad_model_free(m);
  }
  VG_CHECK(!make("efficientad", "{\"q_a\": 0.99, \"q_b\": 0.9}") && strstr(vg_last_error(), "q_a"), "q_a >= q_b refused: %s",
           vg_last_error());
  VG_CHECK(!make("efficientad", "{\"map_norm_ablation\": \"gauss\"}"), "unknown map_norm_ablation refused: %s", vg_last_error());
}

static double json_num(const vg_json *j, const char *a, const char *b) {
  const vg_json *v = vg_json_get(j, a);
  if (b) v = vg_json_get(v, b);
  double d = NAN;
  if (!vg_json_as_double(v, &d)) d = NAN;
  return d;
}

static vg_json *read_json(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *t = malloc(1 << 20);
  size_t n = fread(t, 1, (1 << 20) - 1, f);
  fclose(f);
  t[n] = 0;
  vg_json *j = NULL;
  if (vg_json_parse(t, n, NULL, &j) != VG_OK) j = NULL;
  free(t);
  return j;
}

static void test_cli(void) {
  char cmd[4096], path[600];
  int rc;
  /* fastflow: no hold-out; efficientad: the usual 10 % */
  snprintf(cmd, sizeof cmd, "env VIGIL_CACHE='%s/cache' '%s' train fastflow --backbone resnet18 --steps 1 --batch 4 "
           "--set input_size=32 --set flow_steps=1 --set hidden_ratio=0.0625 --no-test --out '%s/ff'", g_tmp, g_vigil, g_tmp);
  char *out = vg_test_run(cmd, &rc);
  snprintf(path, sizeof path, "%s/ff/config.json", g_tmp);
  vg_json *j = read_json(path);
  VG_CHECK(rc == 0 && j && json_num(j, "data", "val_fraction") == 0 && out && strstr(out, "+ 0 val images"),
           "fastflow trains on the whole train split (config.json val_fraction 0)");
  if (rc != 0 && out) fputs(out, stderr);
  vg_json_free(j);
  free(out);
  snprintf(cmd, sizeof cmd, "env VIGIL_CACHE='%s/cache' '%s' train fastflow --backbone resnet18 --steps 1 --batch 4 "
           "--set input_size=32 --set flow_steps=1 --set hidden_ratio=0.0625 --no-test --val-fraction 0.2 --out '%s/ff2'",
           g_tmp, g_vigil, g_tmp);
  out = vg_test_run(cmd, &rc);
  snprintf(path, sizeof path, "%s/ff2/config.json", g_tmp);
  j = read_json(path);
  VG_CHECK(rc == 0 && j && json_num(j, "data", "val_fraction") == 0.2, "an explicit --val-fraction still holds out");
  vg_json_free(j);
  free(out);
  /* real data without a schedule: the paper's 500 epochs (config.json is written before the
   * first step; the run is interrupted once it exists) */
  snprintf(cmd, sizeof cmd, "cd '%s' && (env VIGIL_CACHE='%s/cache' '%s' train fastflow --data '%s/cache/synth-v1-256' "
           "--dataset mvtec --category woven --backbone resnet18 --batch 4 --set input_size=32 --set flow_steps=1 "
           "--set hidden_ratio=0.0625 --no-test --out '%s/ffp' & p=$!; i=0; while [ ! -f '%s/ffp/config.json' ] && "
           "[ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; kill -INT $p; wait $p)", g_tmp, g_tmp, g_vigil, g_tmp, g_tmp,
           g_tmp);
  out = vg_test_run(cmd, &rc);
  snprintf(path, sizeof path, "%s/ffp/config.json", g_tmp);
  j = read_json(path);
  VG_CHECK(j && json_num(j, "train", "steps") == 500 * 15 && json_num(j, "data", "val_fraction") == 0 && out &&
               strstr(out, "500 epochs"),
           "--data without a schedule: fastflow trains the paper's 500 epochs (steps %g = 500 x 15 batches of 4 of 60 images)",
           j ? json_num(j, "train", "steps") : NAN);
  vg_json_free(j);
  free(out);
  /* cflow: an evaluation per meta epoch (2 steps), 2 meta epochs; best_epoch_* in metrics.json */
  snprintf(cmd, sizeof cmd, "env VIGIL_CACHE='%s/cache' '%s' train cflow --backbone resnet18 --steps 4 --batch 4 "
           "--set input_size=64 --set 'layers=[\"layer2\"]' --set condition_vector=8 --set coupling_blocks=2 "
           "--set fiber_batch=64 --set eval_every_meta_epoch=true --set meta_epochs=2 --set sub_epochs=1 "
           "--set iters_per_epoch=2 --out '%s/cf'", g_tmp, g_vigil, g_tmp);
  out = vg_test_run(cmd, &rc);
  if (rc != 0 && out) fputs(out, stderr);
  snprintf(path, sizeof path, "%s/cf/best_epoch.json", g_tmp);
  vg_json *be = read_json(path);
  snprintf(path, sizeof path, "%s/cf/metrics.json", g_tmp);
  vg_json *mj = read_json(path);
  const vg_json *ev = vg_json_get(be, "evaluations");
  VG_CHECK(rc == 0 && be && vg_json_len(ev) == 2 && json_num(vg_json_at(ev, 0), "step", NULL) == 2 &&
               json_num(vg_json_at(ev, 1), "epoch", NULL) == 2,
           "best_epoch.json: evaluations after meta epochs 1 and 2 (steps 2, 4)");
  static const char *const keys[3] = {"image_auroc", "pixel_auroc", "au_pro"};
  int ok = mj != NULL;
  for (int k = 0; k < 3 && ok; k++) {
    double e0 = json_num(vg_json_at(ev, 0), keys[k], NULL), e1 = json_num(vg_json_at(ev, 1), keys[k], NULL);
    char bk[64];
    snprintf(bk, sizeof bk, "best_epoch_%s", keys[k]);
    double best = json_num(mj, bk, NULL);
    const vg_json *cats = vg_json_get(mj, "categories");
    double final = json_num(vg_json_at(cats, 0), keys[k], NULL);
    ok &= best == fmax(e0, e1);
    ok &= fabs(final - e1) < 1e-9;   /* the final model's numbers stay the main ones: the last evaluation's */
    if (!ok) fprintf(stderr, "  %s: evaluations %.9g %.9g, best_epoch %.9g, final %.9g\n", keys[k], e0, e1, best, final);
  }
  VG_CHECK(ok && mj && vg_json_get(mj, "best_epoch_note") && json_num(mj, "best_epoch_image_auroc_epoch", NULL) >= 1,
           "metrics.json: best_epoch_* = the max over the evaluations; the main numbers = the final model's");
  vg_json_free(be);
  vg_json_free(mj);
  free(out);
}

int main(int argc, char **argv) {
  (void)argc;
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  test_fastflow();
  test_cflow();
  test_efficientad();
  if (!g_vigil[0]) printf("SKIP vigil CLI checks (no vigil binary next to the test)\n");
  else test_cli();
  vg_test_tmp_done(g_tmp);
  return vg_test_finish();
}
