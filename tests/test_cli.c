/* test_cli.c — the `vigil` program end to end, run as a subprocess (<BUILD>/vigil next to
 * <BUILD>/tests/):
 *   predict --from-anomalib   FastFlow (state_dict .pth, "model." keys) and CFLOW-AD
 *                             (Lightning-like .ckpt) checkpoints written by torch
 *                             (tools/gen_{fastflow,cflow}_fixtures.py), PNG inputs: the
 *                             written float TIFF maps against anomalib 2.7's torch model on
 *                             the tensor the loader makes of the same PNG (1e-4 relative);
 *                             CFLOW's official whole-set normalisation and map_norm=anomalib;
 *                             scores, JSON lines, overlay PNGs; refusals.
 *   train                     --model / --teacher / --penalty / --paper-setup reach the
 *                             method config; iters_per_epoch and category filled in from
 *                             the data; --help documents every flag.
 * The checkpoints carry no backbone (size); the test writes the Philox backbone both sides
 * use (vg_resnet_init_philox, base 1000) as a .safetensors and passes it with --weights. */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "datasets/datasets.h"
#include "report/report.h"
#include "methods/cflow/cflow.h"
#include "methods/fastflow/fastflow.h"
#include "nn/backbones/backbones.h"
#include "nn/safetensors.h"
#include "base/json.h"
#include "base/parse.h"
#include "tensor/cpu/isa.h"
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_tmp[256] = "/tmp/vigil_test_cli_XXXXXX";
static char g_vigil[1100];

static const char *FF_CFG = "{\"backbone\": \"resnet18\", \"input_size\": 32, \"flow_steps\": 1, \"hidden_ratio\": 0.0625}";
static const char *FF_FLAGS = "--model fastflow --backbone resnet18 --input-size 32 --set flow_steps=1 --set hidden_ratio=0.0625 "
                              "--set resize=pil";   /* the references were computed on Pillow-resized tensors */
static const char *CF_CFG = "{\"backbone\": \"resnet18\", \"input_size\": 32, \"layers\": [\"layer1\"], \"condition_vector\": 4, "
                            "\"coupling_blocks\": 1, \"permute_soft\": false}";
static const char *CF_FLAGS = "--model cflow --backbone resnet18 --input-size 32 --set 'layers=[\"layer1\"]' "
                              "--set condition_vector=4 --set coupling_blocks=1 --set permute_soft=false --set resize=pil";

static vg_method *make(const char *name, const char *cfg_text) {
  vg_json *cfg = NULL;
  if (vg_json_parse(cfg_text, strlen(cfg_text), NULL, &cfg) != VG_OK) return NULL;
  vg_method *m = NULL;
  if (vg_method_create(name, cfg, &m) != VG_OK) fprintf(stderr, "%s: %s\n", name, vg_last_error());
  vg_json_free(cfg);
  return m;
}

/* The method's backbone with the fixtures' Philox weights, saved as path. */
static bool write_backbone(const char *name, const char *cfg, const char *path) {
  vg_method *m = make(name, cfg);
  if (!m) return false;
  vg_nn_module *bb = !strcmp(name, "fastflow")
                         ? vg_nn_child_get(vg_fastflow_module(m), "feature_extractor")
                         : vg_nn_child_get(vg_nn_child_get(vg_cflow_module(m), "encoder"), "feature_extractor");
  bool ok = bb && vg_resnet_init_philox(bb, 1000) == VG_OK;
  if (ok) {
    vg_nn_list sd = vg_nn_state_dict(bb);
    ok = vg_st_save(path, sd.n, (const char *const *)sd.names, sd.tensors, NULL) == VG_OK;
    if (!ok) fprintf(stderr, "%s\n", vg_last_error());
    vg_nn_list_free(&sd);
  }
  vg_method_free(m);
  return ok;
}

/* max |got - want| / max |want| */
static double rel_err(const float *got, const float *want, int64_t n) {
  double e = 0, s = 0;
  for (int64_t i = 0; i < n; i++) {
    e = fmax(e, fabs((double)got[i] - want[i]));
    s = fmax(s, fabs((double)want[i]));
    if (isnan(got[i])) return INFINITY;
  }
  return s > 0 ? e / s : e;
}

/* The score of the JSON line that names image `stem` in out, NaN when absent. */
static double line_score(const char *out, const char *stem, char *map_path, size_t cap) {
  for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    const char *e = strchr(l, '\n');
    size_t n = e ? (size_t)(e - l) : strlen(l);
    if (n == 0 || l[0] != '{') continue;
    vg_json *j;
    if (vg_json_parse(l, n, NULL, &j) != VG_OK) continue;
    const char *img = vg_json_as_string(vg_json_get(j, "image")), *mp = vg_json_as_string(vg_json_get(j, "map"));
    double s = NAN;
    if (img && strstr(img, stem) && mp && vg_json_as_string(vg_json_get(j, "overlay")) &&
        vg_json_as_double(vg_json_get(j, "score"), &s))
      snprintf(map_path, cap, "%s", mp);
    else
      s = NAN;
    vg_json_free(j);
    if (!isnan(s)) return s;
  }
  return NAN;
}

/* The loader's tensor of a PNG (vg_imagenet_transform) against the fixture's "x" row. */
static void check_input(const char *png, const vg_fx_tensor *x, int64_t row, const char *what) {
  vg_image im;
  float buf[3 * 32 * 32];
  bool ok = x && vg_image_load(png, &im, NULL) == VG_OK;
  if (ok) {
    ok = vg_imagenet_transform(&im, buf, 3, 32, 32, NULL) == VG_OK;
    vg_image_free(&im);
  }
  if (VG_CHECK(ok && x->n >= (row + 1) * 3 * 32 * 32, "%s: loader tensor", what))
    VG_CHECK_CLOSE(buf, x->data + row * 3 * 32 * 32, 3 * 32 * 32, 1e-6, 1e-6, what);
}

/* The TIFF map at the image's size against the reference map (32 x 32) brought there. */
static void check_map(const char *tiff, const float *ref, int img_w, int img_h, const char *what) {
  float *got = NULL;
  int w = 0, h = 0;
  bool ok = vg_tiff_read_f32(tiff, &got, &w, &h) == VG_OK;
  if (!VG_CHECK(ok && w == img_w && h == img_h, "%s: map TIFF %dx%d at the image size %dx%d", what, w, h, img_w, img_h)) {
    free(got);
    return;
  }
  float *want = malloc(sizeof(float) * (size_t)(w * h));
  vg_report_resize_map(ref, 32, 32, want, h, w);
  double e = rel_err(got, want, (int64_t)w * h);
  VG_CHECK(e <= 1e-4, "%s: map vs anomalib 2.7, max rel error %.3g (<= 1e-4)", what, e);
  free(want);
  free(got);
}

static void check_overlay(const char *dir, const char *stem, int w, int h) {
  char p[1200];
  snprintf(p, sizeof p, "%s/%s_overlay.png", dir, stem);
  vg_image im;
  bool ok = vg_image_load(p, &im, NULL) == VG_OK;
  int distinct = 0;
  if (ok) {
    const uint8_t *px = im.data;
    ok = im.w == w && im.h == h && im.c == 3 && im.depth == 8;
    for (int i = 1; ok && i < w * h && distinct < 10; i++)
      distinct += memcmp(px + 3 * i, px, 3) != 0;
    vg_image_free(&im);
  }
  VG_CHECK(ok && distinct >= 10, "overlay %s_overlay.png: RGB %dx%d, not flat", stem, w, h);
}

static void test_fastflow(void) {
  char bb[512], out[512], cmd[4096], mp[1200];
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("fastflow_cli.bin"));
  if (!VG_CHECK(fx != NULL, "fastflow_cli.bin")) return;
  check_input(vg_test_fixture("fastflow_cli.png"), vg_fixture_get(fx, "x"), 0,
              "fastflow: 48x40 PNG -> 32x32 tensor = Pillow resize + ToTensor + Normalize");
  snprintf(bb, sizeof bb, "%s/ff_backbone.safetensors", g_tmp);
  snprintf(out, sizeof out, "%s/ff", g_tmp);
  if (!VG_CHECK(write_backbone("fastflow", FF_CFG, bb), "fastflow: Philox backbone written")) { vg_fixture_free(fx); return; }
  char ckpt[512], png[512];
  snprintf(ckpt, sizeof ckpt, "%s", vg_test_fixture("fastflow_anomalib.pth"));
  snprintf(png, sizeof png, "%s", vg_test_fixture("fastflow_cli.png"));
  snprintf(cmd, sizeof cmd, "%s predict --from-anomalib %s %s --weights %s --threads 2 --out %s %s", g_vigil, ckpt,
           FF_FLAGS, bb, out, png);
  int rc;
  char *o = vg_test_run(cmd, &rc);
  double s = line_score(o ? o : "", "fastflow_cli", mp, sizeof mp);
  if (!VG_CHECK(rc == 0 && !isnan(s), "vigil predict --from-anomalib fastflow .pth: JSON line (rc %d)", rc))
    printf("%s\n", o ? o : "");
  VG_CHECK(o && !strstr(o, "RANDOMLY"), "fastflow: no random-backbone warning with --weights");
  const vg_fx_tensor *ref = vg_fixture_get(fx, "map"), *score = vg_fixture_get(fx, "score");
  if (rc == 0 && ref) {
    check_map(mp, ref->data, 48, 40, "fastflow .pth");
    VG_CHECK(score && fabs(s - score->data[0]) <= 1e-4 * fabs(score->data[0]), "fastflow: score %.7g vs anomalib %.7g", s,
             score ? score->data[0] : NAN);
    check_overlay(out, "fastflow_cli", 48, 40);
  }
  free(o);
  /* without backbone weights: runs, and says so loudly */
  snprintf(cmd, sizeof cmd, "%s predict --from-anomalib %s %s --out %s/ff_rand %s", g_vigil, ckpt, FF_FLAGS, g_tmp, png);
  o = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "RANDOMLY INITIALISED"), "fastflow: a checkpoint without backbone warns");
  free(o);
  /* refusals: a CFLOW checkpoint as FastFlow, no --model, --run with --from-anomalib, bad size */
  snprintf(cmd, sizeof cmd, "%s predict --from-anomalib %s %s --out %s/x %s", g_vigil,
           vg_test_fixture("cflow_anomalib.ckpt"), FF_FLAGS, g_tmp, png);
  o = vg_test_run(cmd, &rc);
  VG_CHECK(rc != 0 && o && strstr(o, "missing"), "a CFLOW checkpoint into FastFlow is refused, naming a missing key");
  free(o);
  snprintf(cmd, sizeof cmd, "%s predict --from-anomalib %s --out %s/x %s", g_vigil, ckpt, g_tmp, png);
  o = vg_test_run(cmd, &rc);
  VG_CHECK(rc != 0 && o && strstr(o, "--model"), "--from-anomalib without --model is refused");
  free(o);
  snprintf(cmd, sizeof cmd, "%s predict --run %s --from-anomalib %s %s --out %s/x %s", g_vigil, g_tmp, ckpt, FF_FLAGS,
           g_tmp, png);
  o = vg_test_run(cmd, &rc);
  VG_CHECK(rc != 0 && o && strstr(o, "exactly one"), "--run with --from-anomalib is refused");
  free(o);
  snprintf(cmd, sizeof cmd, "%s predict --from-anomalib %s %s --input-size 64 --out %s/x %s", g_vigil, ckpt, FF_FLAGS,
           g_tmp, png);
  o = vg_test_run(cmd, &rc);
  VG_CHECK(rc != 0 && o && strstr(o, "shape"), "a checkpoint for another input size is refused (shape named)");
  free(o);
  vg_fixture_free(fx);
}

static void test_cflow(void) {
  char bb[512], out[512], cmd[4096], mp[2][1200], png[2][512], ckpt[512];
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("cflow_cli.bin"));
  if (!VG_CHECK(fx != NULL, "cflow_cli.bin")) return;
  for (int i = 0; i < 2; i++) {
    char n[32];
    snprintf(n, sizeof n, "cflow_cli_%d.png", i);
    snprintf(png[i], sizeof png[i], "%s", vg_test_fixture(n));
    check_input(png[i], vg_fixture_get(fx, "x"), i, i ? "cflow: PNG 1 -> tensor" : "cflow: PNG 0 -> tensor");
  }
  snprintf(ckpt, sizeof ckpt, "%s", vg_test_fixture("cflow_anomalib.ckpt"));
  snprintf(bb, sizeof bb, "%s/cf_backbone.safetensors", g_tmp);
  if (!VG_CHECK(write_backbone("cflow", CF_CFG, bb), "cflow: Philox backbone written")) { vg_fixture_free(fx); return; }
  for (int norm = 0; norm < 2; norm++) {
    snprintf(out, sizeof out, "%s/cf%d", g_tmp, norm);
    snprintf(cmd, sizeof cmd, "%s predict --from-anomalib %s %s %s --weights %s --threads 2 --out %s %s %s", g_vigil, ckpt,
             CF_FLAGS, norm ? "--set map_norm=anomalib" : "", bb, out, png[0], png[1]);
    int rc;
    char *o = vg_test_run(cmd, &rc);
    double s[2];
    for (int i = 0; i < 2; i++) s[i] = line_score(o ? o : "", i ? "cflow_cli_1" : "cflow_cli_0", mp[i], sizeof mp[i]);
    const char *what = norm ? "cflow .ckpt, map_norm anomalib (each image its own batch)"
                            : "cflow .ckpt, official normalisation over both images";
    if (!VG_CHECK(rc == 0 && !isnan(s[0]) && !isnan(s[1]), "vigil predict --from-anomalib %s: 2 JSON lines (rc %d)", what, rc))
      printf("%s\n", o ? o : "");
    const vg_fx_tensor *ref = vg_fixture_get(fx, norm ? "map_1" : "map");
    if (rc == 0 && ref && ref->n == 2 * 32 * 32) {
      for (int i = 0; i < 2; i++) {
        char w2[200];
        snprintf(w2, sizeof w2, "%s, image %d", what, i);
        check_map(mp[i], ref->data + i * 32 * 32, 32, 32, w2);
        float mx = -INFINITY;
        for (int k = 0; k < 32 * 32; k++) mx = fmaxf(mx, ref->data[i * 32 * 32 + k]);
        VG_CHECK(fabs(s[i] - mx) <= 1e-4 * fabs(mx), "%s: score %.7g = max of the anomalib map %.7g", w2, s[i], mx);
      }
      if (!norm) {
        const vg_fx_tensor *sc = vg_fixture_get(fx, "score");
        VG_CHECK(sc && sc->n == 2 && fabs(s[0] - sc->data[0]) <= 1e-4 * fabs(sc->data[0]) &&
                     fabs(s[1] - sc->data[1]) <= 1e-4 * fabs(sc->data[1]),
                 "cflow: scores = anomalib pred_score of the batch");
        check_overlay(out, "cflow_cli_0", 32, 32);
      }
    }
    free(o);
  }
  vg_fixture_free(fx);
}

/* widget: 9 train/good, 2 test/good, 1 test/crack (+ mask), 32 x 32 RGB */
static void build_mvtec(const char *root) {
  uint8_t rgb[32 * 32 * 3], m[32 * 32] = {0};
  char p[1024];
  const char *dirs[] = {"train/good", "test/good", "test/crack", "ground_truth/crack"};
  for (int d = 0; d < 4; d++) {
    snprintf(p, sizeof p, "%s/widget/%s", root, dirs[d]);
    vg_test_mkdirs(p);
  }
  for (int i = 0; i < 12; i++) {
    for (int k = 0; k < 32 * 32 * 3; k++) rgb[k] = (uint8_t)((k * 7 + i * 13) % 251);
    const char *d = i < 9 ? "train/good" : i < 11 ? "test/good" : "test/crack";
    snprintf(p, sizeof p, "%s/widget/%s/%03d.png", root, d, i < 9 ? i : i - 9);
    vg_image im = {32, 32, 3, 8, rgb};
    if (vg_png_save(p, &im) != VG_OK) fprintf(stderr, "%s\n", vg_last_error());
  }
  for (int k = 100; k < 200; k++) m[k] = 255;
  snprintf(p, sizeof p, "%s/widget/ground_truth/crack/002_mask.png", root);
  vg_image mk = {32, 32, 1, 8, m};
  if (vg_png_save(p, &mk) != VG_OK) fprintf(stderr, "%s\n", vg_last_error());
}

/* a file of a run (malloc'd text): config.json, metrics.json */
static bool read_run_file(const char *run, const char *name, char **out) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", run, name);
  FILE *f = fopen(p, "rb");
  if (!f) return false;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *out = malloc((size_t)n + 1);
  bool ok = fread(*out, 1, (size_t)n, f) == (size_t)n;
  (*out)[ok ? n : 0] = 0;
  fclose(f);
  return ok;
}

static void test_train_flags(void) {
  char data[512], cmd[4096], run[512];
  snprintf(data, sizeof data, "%s/mvtec", g_tmp);
  build_mvtec(data);
  int rc;
  char *o = vg_test_run(strcat(strcpy(cmd, g_vigil), " train --help"), &rc);
  const char *flags[] = {"--model", "--teacher", "--penalty", "--paper-setup", "--set", "--backbone", "--weights",
                         "--data", "--category", "--steps", "--epochs", "--batch", "--resume", "--no-test", "--config"};
  bool all = rc == 0 && o;
  for (size_t i = 0; all && i < sizeof flags / sizeof flags[0]; i++) all = strstr(o, flags[i]) != NULL;
  VG_CHECK(all, "vigil train --help documents every flag");
  free(o);
  o = vg_test_run(strcat(strcpy(cmd, g_vigil), " predict --help"), &rc);
  const char *pflags[] = {"--run", "--from-anomalib", "--model", "--backbone", "--input-size", "--set", "--weights",
                          "--out", "--threshold", "--no-overlay", "--threads", "map_norm"};
  all = rc == 0 && o;
  for (size_t i = 0; all && i < sizeof pflags / sizeof pflags[0]; i++) all = strstr(o, pflags[i]) != NULL;
  VG_CHECK(all, "vigil predict --help documents every flag and the CFLOW normalisation");
  free(o);
  /* flags reach the method config: CFLOW has none of these keys and names the one it got */
  const char *fl[][2] = {{"--model s", "'model'"}, {"--teacher t.pth", "'teacher'"}, {"--penalty imgs", "'penalty_dir'"}};
  for (int i = 0; i < 3; i++) {
    snprintf(cmd, sizeof cmd, "%s train cflow --data %s --category widget --backbone resnet18 %s --out %s/r%d --no-test",
             g_vigil, data, fl[i][0], g_tmp, i);
    o = vg_test_run(cmd, &rc);
    VG_CHECK(rc != 0 && o && strstr(o, fl[i][1]), "train %s reaches the method config as %s", fl[i][0], fl[i][1]);
    free(o);
  }
  snprintf(cmd, sizeof cmd, "%s train cflow --data %s --category widget --paper-setup --out %s/rp --no-test", g_vigil, data, g_tmp);
  o = vg_test_run(cmd, &rc);
  VG_CHECK(rc != 0 && o && strstr(o, "paper_setup needs an MVTec category"), "train --paper-setup on a non-MVTec category is refused");
  free(o);
  /* a tiny CFLOW run: iters_per_epoch = batches per epoch, category filled in */
  snprintf(run, sizeof run, "%s/run", g_tmp);
  snprintf(cmd, sizeof cmd, "%s train cflow --data %s --category widget --backbone resnet18 --set input_size=32 "
           "--set 'layers=[\"layer1\"]' --set condition_vector=4 --set coupling_blocks=1 --set permute_soft=false "
           "--set fiber_batch=16 --batch 2 --steps 1 --threads 2 --workers 1 --out %s --no-test", g_vigil, data, run);
  o = vg_test_run(cmd, &rc);
  char *t = NULL;
  vg_json *j = NULL;
  int64_t iters = -1;
  const char *cat = NULL;
  bool ok = rc == 0 && read_run_file(run, "config.json", &t);
  if (ok && vg_json_parse(t, strlen(t), NULL, &j) == VG_OK) {
    const vg_json *mc = vg_json_get(j, "method_config");
    vg_json_as_int64(vg_json_get(mc, "iters_per_epoch"), &iters);
    cat = vg_json_as_string(vg_json_get(mc, "category"));
  }
  /* 9 good training images, 10 % held out -> 8 (or 9) for training; batches of 2 */
  const char *line = o ? strstr(o, "iters_per_epoch = ") : NULL;
  long n_line = line ? strtol(line + 18, NULL, 10) : -1;
  const char *ov = line ? strstr(line, "per pass over ") : NULL;
  long n_train = ov ? strtol(ov + 14, NULL, 10) : -1;
  if (!VG_CHECK(ok && iters >= 1 && iters == n_line && n_train > 0 && iters == n_train / 2,
                "train cflow: iters_per_epoch %lld = %ld training images / batch 2", (long long)iters, n_train))
    printf("%s\n", o ? o : "");
  VG_CHECK(cat && !strcmp(cat, "widget"), "train cflow: method config category = the data category");
  vg_json_free(j);
  free(t);
  free(o);
}

/* CFLOW paper setup: the per-class table of the official README and its checks */
static void test_paper_setup(void) {
  static const struct { const char *c; int s; } T[] = {
    {"bottle", 512}, {"cable", 256}, {"capsule", 256}, {"carpet", 512}, {"grid", 512}, {"hazelnut", 256},
    {"leather", 512}, {"metal_nut", 256}, {"pill", 256}, {"screw", 512}, {"tile", 512}, {"toothbrush", 512},
    {"transistor", 128}, {"wood", 512}, {"zipper", 512}};
  bool ok = vg_cflow_paper_input_size("woven") == 0 && vg_cflow_paper_input_size(NULL) == 0;
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) ok = ok && vg_cflow_paper_input_size(T[i].c) == T[i].s;
  VG_CHECK(ok, "cflow paper setup: 15 MVTec input sizes (gudovskiy/cflow-ad README)");
  const char *bad[][2] = {
    {"{\"paper_setup\": true, \"category\": \"woven\"}", "MVTec category"},
    {"{\"paper_setup\": true, \"category\": \"bottle\", \"input_size\": 256}", "contradicts"},
    {"{\"paper_setup\": true, \"category\": \"bottle\", \"backbone\": \"resnet18\"}", "backbone"},
    {"{\"paper_setup\": true, \"category\": \"bottle\", \"coupling_blocks\": 4}", "coupling_blocks"},
  };
  for (int i = 0; i < 4; i++) {
    vg_json *cfg = NULL;
    vg_method *m = NULL;
    vg_status st = vg_json_parse(bad[i][0], strlen(bad[i][0]), NULL, &cfg);
    if (st == VG_OK) st = vg_cflow_new(cfg, &m);
    VG_CHECK(st != VG_OK && strstr(vg_last_error(), bad[i][1]), "cflow paper_setup refuses %s (%s)", bad[i][0],
             st ? vg_last_error() : "accepted");
    vg_method_free(m);
    vg_json_free(cfg);
  }
  if (!vg_test_long()) { printf("SKIP cflow paper_setup model build (WRN50 at 128; VIGIL_TEST_LONG=1)\n"); return; }
  vg_method *m = make("cflow", "{\"paper_setup\": true, \"category\": \"transistor\"}");
  char *cj = m ? m->ops->config_json(m) : NULL;
  VG_CHECK(m && m->input_h == 128 && cj && strstr(cj, "\"paper_setup\": true") && strstr(cj, "wide_resnet50_2"),
           "cflow paper_setup transistor: input 128, WRN50, recorded in the config");
  free(cj);
  vg_method_free(m);
}

/* Issue #8's end-to-end bar: each method trained on the synthetic default (the quick
 * schedule) on the GPU, then `vigil test` on the CPU (f32) and on the GPU in f16: image
 * AUROC identical to 3 decimals. Needs a GPU (the host emulator would take ~an hour at
 * 256 x 256); VIGIL_TEST_GPU_AUROC=quick runs FastFlow-R18 at 64 x 64 for 2 steps instead
 * (checks the plumbing, on the emulator too). The synthetic data goes to a temp cache. */
static double run_auroc(const char *run, const char *flags, char *err, size_t cap) {
  char cmd[4096], *text = NULL;
  int rc = 0;
  snprintf(cmd, sizeof cmd, "'%s' test --run '%s' --no-maps --no-report %s", g_vigil, run, flags);
  char *out = vg_test_run(cmd, &rc);
  double a = -1;
  vg_json *j = NULL;
  if (rc == 0 && read_run_file(run, "metrics.json", &text) && vg_json_parse(text, strlen(text), NULL, &j) == VG_OK &&
      vg_json_as_double(vg_json_get(vg_json_get(j, "mean"), "image_auroc"), &a)) {
  } else {
    snprintf(err, cap, "vigil test %s: rc %d: %.300s", flags, rc, out ? out : "");
    a = -1;
  }
  vg_json_free(j);
  free(text);
  free(out);
  return a;
}

static void test_gpu_auroc(void) {
  const char *mode = getenv("VIGIL_TEST_GPU_AUROC");
  bool quick = mode && !strcmp(mode, "quick");
#ifdef VG_CUDA_EMU
  if (!quick) {
    printf("SKIP CPU f32 vs GPU f16 AUROC of trained methods on the host emulator (VIGIL_TEST_GPU_AUROC=quick "
           "checks the plumbing)\n");
    return;
  }
#endif
  if (!vg_cuda_available()) {
    printf("SKIP CPU f32 vs GPU f16 AUROC of trained methods: %s\n", vg_last_error());
    return;
  }
  static const char *const methods[] = {"fastflow", "cflow", "efficientad"};
  for (int i = 0; i < (quick ? 1 : 3); i++) {
    char run[600], cmd[4096], err[512] = "";
    snprintf(run, sizeof run, "%s/gpu-%s", g_tmp, methods[i]);
    snprintf(cmd, sizeof cmd, "env VIGIL_CACHE='%s/cache' '%s' train %s --device cuda --out '%s' --no-test %s", g_tmp, g_vigil,
             methods[i], run, quick ? "--backbone resnet18 --set input_size=64 --set flow_steps=2 --steps 2 --batch 2" : "");
    int rc = 0;
    char *out = vg_test_run(cmd, &rc);
    if (!VG_CHECK(rc == 0, "%s trained on the GPU (synthetic default%s)%s%.300s", methods[i],
                  quick ? ", quick" : ", quick schedule", rc ? ": " : "", rc && out ? out : "")) {
      free(out);
      continue;
    }
    free(out);
    double a_cpu = run_auroc(run, "--device cpu", err, sizeof err);
    double a_f16 = a_cpu >= 0 ? run_auroc(run, "--device cuda --dtype f16", err, sizeof err) : -1;
    VG_CHECK(a_cpu >= 0 && a_f16 >= 0 && fabs(a_cpu - a_f16) < 5e-4 && floor(a_cpu * 1000 + 0.5) == floor(a_f16 * 1000 + 0.5),
             "%s: image AUROC CPU f32 %.4f, GPU f16 %.4f: identical to 3 decimals%s%s", methods[i], a_cpu, a_f16,
             err[0] ? " -- " : "", err);
  }
}

/* vigil distill's options (the run itself: test_distill, test_cuda_methods) */
static void test_distill_flags(void) {
  char cmd[2048];
  int rc = 0;
  snprintf(cmd, sizeof cmd, "'%s' distill --help", g_vigil);
  char *out = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 0 && out && strstr(out, "--device cpu|cuda") && strstr(out, "--resume"),
           "vigil distill --help lists --device and --resume (rc %d)", rc);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' distill --images '%s' --out '%s/t.safetensors' --device tpu", g_vigil, g_tmp, g_tmp);
  out = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 2 && out && strstr(out, "bad value 'tpu' for --device"), "distill --device tpu: exit 2 naming it (rc %d)", rc);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' distill --images '%s/none' --out '%s/t.safetensors' --device cuda", g_vigil, g_tmp, g_tmp);
  out = vg_test_run(cmd, &rc);
  if (!vg_cuda_available())
    VG_CHECK(rc == 1 && out && strstr(out, "--device cuda:"), "distill --device cuda without a GPU: exit 1 with the reason: %s",
             out ? out : "");
  else
    VG_CHECK(rc == 1 && out && strstr(out, "none"), "distill --device cuda, missing image folder: exit 1 naming it (rc %d)", rc);
  free(out);
}

/* ---- issue #16: strict numbers, one validation path, help / unknown flags, predict names ---- */

/* Runs cmd with stdout and stderr apart (malloc'd; NULL-safe); returns the exit status. */
static int run_split(const char *cmd, char **out, char **err) {
  char ef[400], full[8192];
  snprintf(ef, sizeof ef, "%s/stderr.txt", g_tmp);
  /* timeout: a regression that stops refusing a value must not train for hours */
  snprintf(full, sizeof full, "timeout 300 %s 2>'%s'", cmd, ef);
  int rc = 0;
  FILE *p = popen(full, "r");
  *out = NULL;
  if (p) {
    size_t cap = 1 << 16, n = 0, k;
    char *s = malloc(cap);
    while ((k = fread(s + n, 1, cap - n - 1, p)) > 0) {
      n += k;
      if (cap - n < 4096) { cap *= 2; s = realloc(s, cap); }
    }
    s[n] = 0;
    *out = s;
    int st = pclose(p);
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  } else {
    rc = -1;
  }
  FILE *f = fopen(ef, "rb");
  *err = calloc(1, 1 << 16);
  if (f) {
    size_t n = fread(*err, 1, (1 << 16) - 1, f);
    (*err)[n] = 0;
    fclose(f);
    for (char *q = *err; *q; q++)   /* one line in the OK / NOT OK rows */
      if (*q == '\n' && q[1]) *q = ' ';
  }
  if (!*out) *out = calloc(1, 1);
  return rc;
}

/* every command: --help and -h exit 0 with the usage on stdout; an unknown flag exits 2 */
static void test_help_everywhere(void) {
  static const char *const cmds[] = {"train", "train meanimage", "test", "predict", "metrics", "convert", "info", "smoke",
                                     "features", "distill", "bench", "bench meanimage", "synth"};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    for (int h = 0; h < 2; h++) {
      char cmd[1400], *o, *e;
      snprintf(cmd, sizeof cmd, "'%s' %s %s", g_vigil, cmds[i], h ? "-h" : "--help");
      int rc = run_split(cmd, &o, &e);
      VG_CHECK(rc == 0 && strstr(o, "usage") && !e[0], "vigil %s %s: exit 0, usage on stdout (rc %d, stderr '%.100s')",
               cmds[i], h ? "-h" : "--help", rc, e);
      free(o); free(e);
    }
    char cmd[1400], *o, *e;
    snprintf(cmd, sizeof cmd, "'%s' %s --no-such-flag", g_vigil, cmds[i]);
    int rc = run_split(cmd, &o, &e);
    VG_CHECK(rc == 2 && strstr(e, "--no-such-flag"), "vigil %s --no-such-flag: exit 2 naming it (rc %d: %.120s)", cmds[i], rc, e);
    free(o); free(e);
  }
  char cmd[1400], *o, *e;
  snprintf(cmd, sizeof cmd, "'%s' --help", g_vigil);
  int rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0 && strstr(o, "usage"), "vigil --help: exit 0 (rc %d)", rc);
  free(o); free(e);
}

/* Bad numbers, table-driven: each exits 2 with the flag's name and the accepted range on
 * stderr, before any work (no data is read: the commands would fail later for other reasons). */
static void test_strict_numbers(void) {
  static const struct { const char *cmd, *flag, *value; } T[] = {
    {"train meanimage", "--steps", "abc"}, {"train meanimage", "--steps", "1e3"}, {"train meanimage", "--steps", "-1"},
    {"train meanimage", "--steps", "99999999999999999999999"}, {"train meanimage", "--steps", ""},
    {"train meanimage", "--steps", " 5"}, {"train meanimage", "--steps", "5x"}, {"train meanimage", "--steps", "0x10"},
    {"train meanimage", "--epochs", "0"}, {"train meanimage", "--epochs", "2.5"},
    {"train meanimage", "--batch", "0"}, {"train meanimage", "--batch", "-3"}, {"train meanimage", "--batch", "4294967298"},
    {"train meanimage", "--batch", "4097"}, {"train meanimage", "--workers", "0"}, {"train meanimage", "--workers", "1e9"},
    {"train meanimage", "--threads", "-1"}, {"train meanimage", "--threads", "100000"},
    {"train meanimage", "--save-every", "0"}, {"train meanimage", "--save-every", "-5"},
    {"train meanimage", "--seed", "-1"}, {"train meanimage", "--seed", "18446744073709551616"}, {"train meanimage", "--seed", "x"},
    {"train meanimage", "--val-fraction", "nan"}, {"train meanimage", "--val-fraction", "inf"},
    {"train meanimage", "--val-fraction", "1"}, {"train meanimage", "--val-fraction", "-0.1"},
    {"train meanimage", "--val-fraction", "0x1p-2"},
    {"train meanimage --set", "input_size", "=1e999"}, {"train meanimage --set", "input_size", "=-nan"},
    {"train meanimage --set", "input_size", "=12abc"},
    {"test --run /nonexistent", "--batch", "0"}, {"test --run /nonexistent", "--batch", "abc"},
    {"test --run /nonexistent", "--workers", "-2"}, {"test --run /nonexistent", "--threads", "2.0"},
    {"predict --run /nonexistent --out /tmp/x a.png", "--threads", "abc"},
    {"predict --run /nonexistent --out /tmp/x a.png", "--threshold", "nan"},
    {"predict --from-anomalib x.ckpt --model fastflow --out /tmp/x a.png", "--input-size", "0"},
    {"predict --from-anomalib x.ckpt --model fastflow --out /tmp/x a.png", "--input-size", "32px"},
    {"predict --from-anomalib x.ckpt --model fastflow --out /tmp/x a.png --set", "input_size", "=1e400"},
    {"bench meanimage", "--batch", "0"}, {"bench meanimage", "--batch", "100000"}, {"bench meanimage", "--runs", "0"},
    {"bench meanimage", "--warmup", "-1"}, {"bench meanimage", "--threads", "x"}, {"bench meanimage", "--input-size", "abc"},
    {"distill --images /nonexistent --out /tmp/t.safetensors", "--iters", "0"},
    {"distill --images /nonexistent --out /tmp/t.safetensors", "--batch", "4294967298"},
    {"distill --images /nonexistent --out /tmp/t.safetensors", "--view", "100"},
    {"distill --images /nonexistent --out /tmp/t.safetensors", "--lr", "nan"},
    {"distill --images /nonexistent --out /tmp/t.safetensors", "--p-grey", "2"},
    {"distill --images /nonexistent --out /tmp/t.safetensors", "--seed", "-4"},
    {"distill --images /nonexistent --out /tmp/t.safetensors", "--workers", "0"},
    {"features --backbone resnet18 --input x --out y", "--seed", "abc"},
    {"synth --out /nonexistent/s", "--size", "0"}, {"synth --out /nonexistent/s", "--size", "1e3"},
    {"synth --out /nonexistent/s", "--train", "-1"}, {"synth --out /nonexistent/s", "--test", "1"},
    {"synth --out /nonexistent/s", "--seed", "1.5"}, {"synth --out /nonexistent/s", "--threads", "abc"},
    {"metrics --dataset mvtec --data /nonexistent --maps /nonexistent", "--threshold", "abc"},
    {"convert in.png out.png", "--resize", "0x10"}, {"convert in.png out.png", "--resize", "10x10junk"},
    {"convert in.png out.png", "--resize", "99999999999x1"},
    {"smoke", "", "abc"}, {"smoke", "", "0"}, {"smoke", "", "1e2"},
  };
  int n_ok = 0, n = (int)(sizeof T / sizeof T[0]);
  for (int i = 0; i < n; i++) {
    char cmd[2000], *o, *e;
    bool set = T[i].value[0] == '=';   /* --set KEY=VALUE: the flag is the key */
    if (set) snprintf(cmd, sizeof cmd, "'%s' %s '%s%s'", g_vigil, T[i].cmd, T[i].flag, T[i].value);
    else snprintf(cmd, sizeof cmd, "'%s' %s %s '%s'", g_vigil, T[i].cmd, T[i].flag, T[i].value);
    if (!strncmp(T[i].cmd, "train", 5)) {   /* were it accepted: a short run in the temp folder */
      size_t l = strlen(cmd);
      snprintf(cmd + l, sizeof cmd - l, " --out '%s/sn' --no-test", g_tmp);
    }
    int rc = run_split(cmd, &o, &e);
    const char *name = T[i].flag[0] ? T[i].flag : "N";
    bool ok = rc == 2 && strstr(e, name) && (strchr(e, '[') || strstr(e, "want") || strstr(e, "WxH"));
    if (VG_CHECK(ok, "vigil %s %s %s: exit 2 naming %s and the range (rc %d: %.160s)", T[i].cmd, T[i].flag, T[i].value,
                 name, rc, e))
      n_ok++;
    free(o); free(e);
  }
  printf("# strict numbers: %d of %d bad values refused by name\n", n_ok, n);
  /* good values pass the parser: help after them still answers 0 */
  char cmd[1400], *o, *e;
  snprintf(cmd, sizeof cmd, "'%s' train meanimage --steps 0 --batch 4096 --seed 9223372036854775807 --val-fraction 0.5 "
           "--threads 1 --set input_size=64 --help", g_vigil);
  int rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0, "train: in-range values (steps 0, batch 4096, max seed, val 0.5, --set 64) accepted (rc %d: %.200s)", rc, e);
  free(o); free(e);
}

static bool replace_in_file(const char *path, const char *from, const char *to) {
  char *t = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  t = calloc(1, 1 << 20);
  size_t n = fread(t, 1, (1 << 20) - 1, f);
  fclose(f);
  t[n] = 0;
  char *p = strstr(t, from);
  bool ok = p != NULL;
  if (ok) {
    f = fopen(path, "wb");
    ok = f && fwrite(t, 1, (size_t)(p - t), f) == (size_t)(p - t) && fputs(to, f) >= 0 && fputs(p + strlen(from), f) >= 0;
    if (f) fclose(f);
  }
  free(t);
  return ok;
}

static bool copy_file(const char *from, const char *to) {
  char cmd[2400];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
  return system(cmd) == 0;
}

/* A tiny meanimage run; then its config.json corrupted key by key: --resume and test refuse it
 * (exit 2) naming config.json, the key and the range; --steps with --resume; the epochs
 * overflow; the batch memory check; `vigil test`'s summary (ASan: freed report read). */
static void test_run_validation(void) {
  char data[600], run[600], cmd[8192], cfgp[700], good[700], *o, *e;
  snprintf(data, sizeof data, "%s/mvtec16", g_tmp);
  build_mvtec(data);
  snprintf(run, sizeof run, "%s/mi", g_tmp);
  snprintf(cmd, sizeof cmd, "'%s' train meanimage --data '%s' --category widget --set input_size=32 --steps 2 --batch 2 "
           "--threads 1 --workers 1 --save-every 1 --out '%s' --no-test", g_vigil, data, run);
  int rc = run_split(cmd, &o, &e);
  free(o);
  if (!VG_CHECK(rc == 0, "tiny meanimage run for the config checks (rc %d: %.300s)", rc, e)) { free(e); return; }
  free(e);
  snprintf(cmd, sizeof cmd, "'%s' test --run '%s' --no-report --threads 1", g_vigil, run);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0 && strstr(o, "evaluated at 32x32") && !strstr(e, "AddressSanitizer"),
           "vigil test prints its summary (eval size) from live memory (rc %d: %.200s)", rc, e);
  free(o); free(e);
  snprintf(cfgp, sizeof cfgp, "%s/config.json", run);
  snprintf(good, sizeof good, "%s/config.good", run);
  copy_file(cfgp, good);
  static const struct { const char *from, *to, *key; } C[] = {
    {"\"save_every\": 1", "\"save_every\": 0", "train.save_every"},
    {"\"save_every\": 1", "\"save_every\": -7", "train.save_every"},
    {"\"batch\": 2", "\"batch\": 0", "train.batch"},
    {"\"batch\": 2", "\"batch\": 4294967298", "train.batch"},
    {"\"workers\": 1", "\"workers\": 0", "train.workers"},
    {"\"threads\": 1", "\"threads\": 100000", "train.threads"},
    {"\"steps\": 2", "\"steps\": -1", "train.steps"},
    {"\"steps\": 2", "\"steps\": 9000000000000", "train.steps"},
    {"\"seed\": 0", "\"seed\": -5", "train.seed"},
    {"\"split_seed\": 0", "\"split_seed\": -1", "data.split_seed"},
    {"\"val_fraction\": 0.1", "\"val_fraction\": 1.5", "data.val_fraction"},
    {"\"input_size\": 32", "\"input_size\": 0", "input_size"},
    {"\"input_size\": 32", "\"input_size\": 100000", "input_size"},
  };
  for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
    copy_file(good, cfgp);
    if (!VG_CHECK(replace_in_file(cfgp, C[i].from, C[i].to), "config.json holds %s", C[i].from)) continue;
    snprintf(cmd, sizeof cmd, "'%s' train meanimage --resume --out '%s' --no-test", g_vigil, run);
    rc = run_split(cmd, &o, &e);
    VG_CHECK(rc == 2 && strstr(e, "config.json") && strstr(e, C[i].key) && (strchr(e, '[') || strstr(e, "want")),
             "train --resume with config.json %s: exit 2 naming config.json, %s and the range (rc %d: %.200s)", C[i].to,
             C[i].key, rc, e);
    free(o); free(e);
    snprintf(cmd, sizeof cmd, "'%s' test --run '%s' --no-report --no-maps", g_vigil, run);
    rc = run_split(cmd, &o, &e);
    VG_CHECK(rc == 2 && strstr(e, "config.json") && strstr(e, C[i].key), "test with config.json %s: exit 2 naming it (rc %d: %.200s)",
             C[i].to, rc, e);
    free(o); free(e);
  }
  /* fuzz_rundir findings: a string too long for its field was silently cut (to another dataset
   * kind, root or category), one holding "\u0000" cut at it, and a NUL byte in the file hid
   * whatever followed it; each is now refused, naming config.json and what */
  char longcat[300];
  snprintf(longcat, sizeof longcat, "\"category\": \"%0200d\"", 7);
  const struct { const char *from, *to, *what; } S[] = {
    {"\"dataset\": \"mvtec\"", "\"dataset\": \"mval_fractionvtec\"", "too long"},
    {"\"category\": \"widget\"", longcat, "too long"},
    {"\"dataset\": \"mvtec\"", "\"dataset\": \"mvtec\\u0000x\"", "NUL"},
    {"\"method\": \"meanimage\",", "\"method\": \"meanimage\\u0000\",", "NUL"},
    {NULL, NULL, "NUL byte"},
  };
  for (size_t i = 0; i < sizeof S / sizeof S[0]; i++) {
    copy_file(good, cfgp);
    if (S[i].from) {
      if (!VG_CHECK(replace_in_file(cfgp, S[i].from, S[i].to), "config.json holds %s", S[i].from)) continue;
    } else {
      FILE *f = fopen(cfgp, "ab");
      if (f) { fputs("\n", f); fputc(0, f); fputs("{\"method\": \"x\"}", f); fclose(f); }
    }
    for (int k = 0; k < 2; k++) {
      snprintf(cmd, sizeof cmd, k ? "'%s' test --run '%s' --no-report --no-maps" : "'%s' train meanimage --resume --out '%s' --no-test",
               g_vigil, run);
      rc = run_split(cmd, &o, &e);
      VG_CHECK(rc != 0 && strstr(e, "config.json") && strstr(e, S[i].what) && !strstr(e, "Sanitizer"),
               "%s with config.json %.40s: refused naming config.json (%s) (rc %d: %.200s)", k ? "test" : "train --resume",
               S[i].to ? S[i].to : "+ NUL byte + more", S[i].what, rc, e);
      free(o); free(e);
    }
  }
  copy_file(good, cfgp);
  /* --steps with --resume: a different value is refused by name, the stored one is fine */
  snprintf(cmd, sizeof cmd, "'%s' train meanimage --resume --steps 5 --out '%s' --no-test", g_vigil, run);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 2 && strstr(e, "--steps") && strstr(e, "2"), "train --resume --steps 5 (run of 2): refused naming --steps (rc %d: %.200s)", rc, e);
  free(o); free(e);
  snprintf(cmd, sizeof cmd, "'%s' train meanimage --resume --batch 3 --out '%s' --no-test", g_vigil, run);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 2 && strstr(e, "--batch"), "train --resume --batch 3 (run of 2): refused naming --batch (rc %d: %.200s)", rc, e);
  free(o); free(e);
  snprintf(cmd, sizeof cmd, "'%s' train meanimage --resume --steps 2 --threads 1 --out '%s' --no-test", g_vigil, run);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0, "train --resume --steps 2 (the stored value): accepted (rc %d: %.200s)", rc, e);
  free(o); free(e);
  /* --epochs so large that the steps overflow; a batch that cannot be allocated */
  snprintf(cmd, sizeof cmd, "'%s' train meanimage --data '%s' --category widget --set input_size=32 --batch 1 "
           "--epochs 1000000000 --out '%s/ep' --no-test", g_vigil, data, g_tmp);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 2 && strstr(e, "--epochs") && strstr(e, "["), "train --epochs 1e9 x 8 batches: exit 2 naming --epochs and the range (rc %d: %.200s)", rc, e);
  free(o); free(e);
  snprintf(cmd, sizeof cmd, "'%s' train meanimage --data '%s' --category widget --set input_size=4096 --batch 4096 "
           "--steps 1 --out '%s/big' --no-test", g_vigil, data, g_tmp);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 2 && strstr(e, "--batch") && strstr(e, "GiB"), "train --batch 4096 at 4096x4096: a named error, no abort (rc %d: %.200s)", rc, e);
  free(o); free(e);
  /* a --config file goes through the same ranges */
  snprintf(cmd, sizeof cmd, "'%s' train meanimage --data '%s' --category widget --config '%s/config.json' --out '%s/cf' --no-test",
           g_vigil, data, run, g_tmp);
  replace_in_file(cfgp, "\"batch\": 2", "\"batch\": -1");
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 2 && strstr(e, "train.batch"), "train --config with train.batch -1: exit 2 naming it (rc %d: %.200s)", rc, e);
  free(o); free(e);
  copy_file(good, cfgp);

  /* predict: two images with one stem in different folders, and one file twice: three outputs */
  char a[700], b[700], out[700], src[700];
  snprintf(a, sizeof a, "%s/pin/cut", g_tmp);
  vg_test_mkdirs(a);
  snprintf(a, sizeof a, "%s/pin/good", g_tmp);
  vg_test_mkdirs(a);
  snprintf(src, sizeof src, "%s/widget/test/crack/002.png", data);
  snprintf(a, sizeof a, "%s/pin/cut/000.png", g_tmp);
  copy_file(src, a);
  snprintf(src, sizeof src, "%s/widget/test/good/000.png", data);
  snprintf(b, sizeof b, "%s/pin/good/000.png", g_tmp);
  copy_file(src, b);
  snprintf(out, sizeof out, "%s/pred", g_tmp);
  snprintf(cmd, sizeof cmd, "'%s' predict --run '%s' --out '%s' '%s' '%s' '%s'", g_vigil, run, out, a, b, b);
  rc = run_split(cmd, &o, &e);
  char maps[3][1024] = {{0}};
  int nl = 0;
  for (const char *l = o; l && *l && nl < 3; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    const char *end = strchr(l, '\n');
    vg_json *j;
    if (l[0] == '{' && vg_json_parse(l, end ? (size_t)(end - l) : strlen(l), NULL, &j) == VG_OK) {
      const char *mp = vg_json_as_string(vg_json_get(j, "map"));
      if (mp) snprintf(maps[nl++], sizeof maps[0], "%s", mp);
      vg_json_free(j);
    }
  }
  struct stat sb;
  bool distinct = nl == 3 && strcmp(maps[0], maps[1]) && strcmp(maps[0], maps[2]) && strcmp(maps[1], maps[2]);
  bool exist = nl == 3 && stat(maps[0], &sb) == 0 && stat(maps[1], &sb) == 0 && stat(maps[2], &sb) == 0;
  VG_CHECK(rc == 0 && distinct && exist && strstr(maps[0], "pred/cut/000") && strstr(maps[1], "pred/good/000"),
           "predict crack/000.png good/000.png good/000.png: 3 distinct map files (%s | %s | %s) (rc %d: %.200s)", maps[0],
           maps[1], maps[2], rc, e);
  free(o); free(e);
}

/* VIGIL_THREADS / VIGIL_ISA: a bad value is warned about by name, with what is used instead */
static void test_env(void) {
  char cmd[1400], *o, *e;
  snprintf(cmd, sizeof cmd, "env VIGIL_THREADS=abc '%s' info", g_vigil);
  int rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0 && strstr(e, "VIGIL_THREADS") && strstr(e, "abc") && strstr(e, "using"),
           "VIGIL_THREADS=abc: warned by name (%.160s)", e);
  free(o); free(e);
  snprintf(cmd, sizeof cmd, "env VIGIL_THREADS=-2 '%s' info", g_vigil);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0 && strstr(e, "VIGIL_THREADS") && strstr(e, "-2"), "VIGIL_THREADS=-2: warned by name (%.160s)", e);
  free(o); free(e);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  snprintf(cmd, sizeof cmd, "env VIGIL_THREADS=%ld '%s' info", cores + 3 > 256 ? 256 : cores + 3, g_vigil);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0 && (cores + 3 > 256 || (strstr(e, "VIGIL_THREADS") && strstr(e, "cores"))),
           "VIGIL_THREADS above the cores: allowed, warned (%.160s)", e);
  free(o); free(e);
  snprintf(cmd, sizeof cmd, "env VIGIL_ISA=bogus '%s' info", g_vigil);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0 && strstr(e, "VIGIL_ISA") && strstr(e, "bogus") && strstr(e, "using"), "VIGIL_ISA=bogus: warned by name (%.160s)", e);
  free(o); free(e);
  if (vg_cpu_isa_max() < VG_ISA_AVX512) {
    snprintf(cmd, sizeof cmd, "env VIGIL_ISA=avx512 '%s' info", g_vigil);
    rc = run_split(cmd, &o, &e);
    VG_CHECK(rc == 0 && strstr(e, "VIGIL_ISA") && strstr(e, "lacks"), "VIGIL_ISA=avx512 on a CPU without it: said so (%.160s)", e);
    free(o); free(e);
  } else {
    printf("SKIP VIGIL_ISA above the CPU's (this CPU has avx512)\n");
  }
  snprintf(cmd, sizeof cmd, "env VIGIL_THREADS=1 VIGIL_ISA=scalar '%s' info", g_vigil);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(rc == 0 && !e[0] && strstr(o, "threads: 1") && strstr(o, "isa: scalar"), "good VIGIL_THREADS / VIGIL_ISA: used, no warning (%.100s)", e);
  free(o); free(e);
  /* --threads above the cores: allowed, warned */
  snprintf(cmd, sizeof cmd, "'%s' test --run /nonexistent --threads 256", g_vigil);
  rc = run_split(cmd, &o, &e);
  VG_CHECK(cores >= 256 || strstr(e, "--threads 256"), "test --threads 256: warned about the cores (%.160s)", e);
  free(o); free(e);
}

/* base/parse.h directly: the parser's edges */
static void test_parse_unit(void) {
  int64_t i;
  uint64_t u;
  double d;
  bool ok = vg_parse_i64("0", &i, NULL) && i == 0 && vg_parse_i64("-9223372036854775808", &i, NULL) && i == INT64_MIN &&
            vg_parse_i64("9223372036854775807", &i, NULL) && i == INT64_MAX && !vg_parse_i64("9223372036854775808", &i, NULL) &&
            !vg_parse_i64("", &i, NULL) && !vg_parse_i64("+1", &i, NULL) && !vg_parse_i64(" 1", &i, NULL) &&
            !vg_parse_i64("1 ", &i, NULL) && !vg_parse_i64("0x10", &i, NULL) && !vg_parse_i64("1e3", &i, NULL) &&
            !vg_parse_i64("-", &i, NULL) && !vg_parse_i64(NULL, &i, NULL);
  VG_CHECK(ok, "vg_parse_i64: range ends, overflow, sign, spaces, hex, exponent");
  ok = vg_parse_u64("18446744073709551615", &u, NULL) && u == UINT64_MAX && !vg_parse_u64("18446744073709551616", &u, NULL) &&
       !vg_parse_u64("-1", &u, NULL) && !vg_parse_u64("1.0", &u, NULL);
  VG_CHECK(ok, "vg_parse_u64: max, overflow, minus refused");
  ok = vg_parse_f64("0.5", &d, NULL) && d == 0.5 && vg_parse_f64("-1e-4", &d, NULL) && d == -1e-4 && vg_parse_f64(".5", &d, NULL) &&
       !vg_parse_f64("nan", &d, NULL) && !vg_parse_f64("inf", &d, NULL) && !vg_parse_f64("1e999", &d, NULL) &&
       !vg_parse_f64("0x1p3", &d, NULL) && !vg_parse_f64("1.5x", &d, NULL) && !vg_parse_f64("", &d, NULL) &&
       !vg_parse_f64(" 1", &d, NULL) && !vg_parse_f64("-", &d, NULL);
  VG_CHECK(ok, "vg_parse_f64: decimals, exponent, nan/inf/hex/overflow/junk refused");
}

int main(int argc, char **argv) {
  (void)argc;
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  test_paper_setup();
  test_parse_unit();
  if (!g_vigil[0]) printf("SKIP vigil CLI checks (no vigil binary next to the test)\n");
  else {
    test_fastflow();
    test_cflow();
    test_train_flags();
    test_distill_flags();
    test_help_everywhere();
    test_strict_numbers();
    test_run_validation();
    test_env();
    test_gpu_auroc();
  }
  vg_test_tmp_done(g_tmp);
  return vg_test_finish();
}
