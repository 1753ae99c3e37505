/* test_anomalib_import.c — issue #16: running anomalib 2.x checkpoints exactly as anomalib
 * does (tests/fixtures/anomalib_import, written by tools/gen_anomalib_import_fixtures.py
 * from anomalib 2.7 / torch 2.x):
 *   float resize     vg_image_resize_float vs anomalib's read_image + torchvision v2
 *                    Resize(antialias=True) on the float tensor: down, up, mixed, one axis
 *                    unchanged, non-exact float32 scales, grey, photo crops (<= 1e-6 abs)
 *   float transform  vg_image_float_imagenet_transform of a non-square PNG vs anomalib's
 *                    pre_processor.transform(read_image(png)) (<= 1e-5 abs)
 *   image modes      tests/fixtures/anomalib_import/mode_*: grey, 1-bit, palette (+tRNS), RGBA,
 *                    LA, 16-bit grey / grey+tRNS / RGB / RGBA / LA PNG, 16-bit TIFF, CMYK and
 *                    EXIF-rotated JPEG, 1x1 / 3x30 / 12x9 (upscaled) through the float transform
 *                    vs read_image + Resize(antialias) (<= 2e-6 abs)
 *   anomalib config  vg_anomalib_config: structural options read off the tensor shapes of a
 *                    FastFlow-R18 checkpoint trained with conv3x3_only=False (anomalib's
 *                    default); a contradicting option names the option and the value
 *   end to end       `vigil predict --from-anomalib ff_tiny.ckpt --model fastflow --weights BB` (a
 *                    Lightning .ckpt with hyper_parameters: only its state_dict is read)
 *                    with no structural flag: the map at the photo's size vs anomalib's own
 *                    pipeline (read_image + pre-processor + model) <= 1e-4 of max|map|;
 *                    DIR/config.json records resize "float" and conv3x3_only false;
 *                    --set resize=pil gives the old input (differs by > 1e-4); a wrong
 *                    --set conv3x3_only=true is refused naming "conv3x3_only=false". */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "datasets/image/image.h"
#include "report/report.h"
#include "methods/anomalib_import.h"
#include "methods/cflow/cflow.h"
#include "methods/fastflow/fastflow.h"
#include "nn/backbones/backbones.h"
#include "nn/safetensors.h"
#include "base/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_tmp[256] = "/tmp/vigil_test_anomalib_XXXXXX";
static char g_vigil[1100];

static void syn(vg_image *im, int w, int h) {
  im->w = w; im->h = h; im->c = 3; im->depth = 8;
  im->data = malloc((size_t)w * h * 3);
  uint8_t *d = im->data;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = d + ((size_t)y * w + x) * 3;
      p[0] = (uint8_t)((x * 3 + y * 5) & 255);
      p[1] = (uint8_t)(((x ^ y) * 2) & 255);
      p[2] = ((x / 16 + y / 16) % 2) ? 255 : 0;
    }
}

/* the named source of tools/gen_anomalib_import_fixtures.py; 0 when a photo is absent */
static int source(const char *name, vg_image *im) {
  memset(im, 0, sizeof *im);
  int w, h;
  if (!strcmp(name, "photo") || !strcmp(name, "photo2")) {
    vg_image full;
    bool dog = !strcmp(name, "photo");
    if (vg_image_load(vg_test_shared(dog ? "photos/dog.jpg" : "photos/eagle.jpg"), &full, NULL) != VG_OK) return 0;
    vg_status st = dog ? vg_image_crop(&full, 200, 120, 80, 80, im) : vg_image_crop(&full, 300, 100, 33, 97, im);
    vg_image_free(&full);
    return st == VG_OK;
  }
  if (sscanf(name, "syn%d_%d", &w, &h) != 2) return 0;
  syn(im, w, h);
  if (strstr(name, "_L")) {
    vg_image g;
    VG_ASSERT(vg_image_to_gray(im, &g) == VG_OK);
    vg_image_free(im);
    *im = g;
  }
  return 1;
}

static float *read_f32(const char *path, size_t n) {
  float *v = malloc(n * sizeof *v);
  FILE *f = fopen(path, "rb");
  size_t got = f ? fread(v, sizeof *v, n, f) : 0;
  if (f) fclose(f);
  if (got != n) { free(v); return NULL; }
  return v;
}

static void test_resize(void) {
  FILE *f = fopen(vg_test_fixture("anomalib_import/resize.txt"), "r");
  if (!VG_CHECK(f != NULL, "anomalib_import/resize.txt")) return;
  char line[256], src[64], file[128];
  int w, h, cases = 0, skipped = 0;
  double worst = 0;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%63s %d %d %127s", src, &w, &h, file) != 4) continue;
    vg_image im;
    if (!source(src, &im)) { skipped++; continue; }
    size_t n = (size_t)im.c * w * h;
    char fx[200];
    snprintf(fx, sizeof fx, "anomalib_import/%s", file);
    float *want = read_f32(vg_test_fixture(fx), n), *got = malloc(n * sizeof *got);
    vg_status st = vg_image_resize_float(&im, w, h, got);
    double e = 0;
    for (size_t i = 0; want && st == VG_OK && i < n; i++) e = fmax(e, fabs((double)got[i] - want[i]));
    VG_CHECK(want && st == VG_OK && e <= 1e-6, "float resize %s %dx%d -> %dx%d (c %d): max abs diff %.3g vs torch "
             "(<= 1e-6)", src, im.w, im.h, w, h, im.c, e);
    worst = fmax(worst, e);
    cases++;
    free(want); free(got);
    vg_image_free(&im);
  }
  fclose(f);
  printf("# float resize: %d cases, max abs diff %.3g vs torch's antialiased bilinear\n", cases, worst);
  if (skipped) printf("SKIP %d photo cases: tests/data/photos not found\n", skipped);
  VG_CHECK(cases >= 7, "float resize: %d cases ran", cases);

  /* the float path is not the 8-bit one (what issue #16 is about) */
  vg_image a, b;
  syn(&a, 61, 45);
  float *fl = malloc(sizeof(float) * 3 * 32 * 32), *pil = malloc(sizeof(float) * 3 * 32 * 32);
  VG_ASSERT(vg_image_resize(&a, 32, 32, VG_RESAMPLE_BILINEAR, &b) == VG_OK);
  VG_ASSERT(vg_image_to_tensor(&b, pil) == VG_OK && vg_image_resize_float(&a, 32, 32, fl) == VG_OK);
  double d = 0;
  for (int i = 0; i < 3 * 32 * 32; i++) d = fmax(d, fabs((double)fl[i] - pil[i]));
  VG_CHECK(d > 1e-4 && d < 2.0 / 255, "float resize differs from Pillow's 8-bit one by %.3g (> 1e-4, < 2/255)", d);
  /* same size: only the /255 scaling (times float32(1/255), as to_dtype) */
  VG_ASSERT(vg_image_resize_float(&a, 61, 45, fl = realloc(fl, sizeof(float) * 3 * 61 * 45)) == VG_OK);
  bool same = true;
  for (int i = 0; i < 61 * 45; i++) same &= fl[i] == (float)((uint8_t *)a.data)[i * 3] * (float)(1.0 / 255);
  VG_CHECK(same, "float resize to the same size = the float image");
  /* 16-bit input, bad sizes */
  vg_image w16 = {.w = 3, .h = 2, .c = 1, .depth = 16, .data = calloc(6, 2)};
  ((uint16_t *)w16.data)[0] = 65535;
  VG_CHECK(vg_image_resize_float(&w16, 3, 2, fl) == VG_OK && fl[0] == 1.0f && fl[1] == 0.0f, "16-bit: v / 65535");
  VG_CHECK(vg_image_resize_float(&a, 0, 4, fl) == VG_ERR_ARG, "resize_float to 0 refused");
  vg_image_free(&w16);
  free(fl); free(pil);
  vg_image_free(&a); vg_image_free(&b);
}

static void test_transform(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("anomalib_import/ff_tiny.bin"));
  vg_image im;
  if (!VG_CHECK(fx && vg_image_load(vg_test_fixture("anomalib_import/ff_tiny.png"), &im, NULL) == VG_OK,
                "ff_tiny.bin / ff_tiny.png")) {
    vg_fixture_free(fx);
    return;
  }
  const vg_fx_tensor *x = vg_fixture_get(fx, "x");
  float got[3 * 32 * 32];
  VG_CHECK(im.w == 61 && im.h == 45, "ff_tiny.png is 61x45 (non-square)");
  VG_CHECK(vg_image_float_imagenet_transform(&im, got, 3, 32, 32, NULL) == VG_OK, "float ImageNet transform");
  if (VG_CHECK(x && x->n == 3 * 32 * 32, "fixture x"))
    VG_CHECK_CLOSE(got, x->data, 3 * 32 * 32, 1e-5, 1e-5, "read_image + pre_processor.transform (Resize antialias + Normalize)");
  /* grey and RGBA sources go through convert("RGB") first */
  vg_image g, ga;
  VG_ASSERT(vg_image_to_gray(&im, &g) == VG_OK);
  float t1[3 * 8 * 8], t2[3 * 8 * 8];
  VG_ASSERT(vg_image_to_rgb(&g, &ga) == VG_OK);
  VG_CHECK(vg_image_float_transform(&g, t1, 3, 8, 8, NULL) == VG_OK && vg_image_float_transform(&ga, t2, 3, 8, 8, NULL) == VG_OK &&
               !memcmp(t1, t2, sizeof t1),
           "grey image = its RGB conversion through the float transform");
  VG_CHECK(vg_image_float_imagenet_transform(&g, t1, 1, 8, 8, NULL) == VG_ERR_ARG, "float ImageNet transform needs 3 channels");
  vg_image_free(&g); vg_image_free(&ga); vg_image_free(&im);
  vg_fixture_free(fx);
}

/* image modes: vg_image_load + vg_image_float_transform vs read_image (Pillow's
 * open().convert("RGB") -> float) + Resize(antialias) for grey, 1-bit, palette (+tRNS), RGBA,
 * LA, 16-bit grey PNG/TIFF (Pillow clips to 255), 16-bit grey+tRNS, 16-bit RGB/RGBA/LA (Pillow
 * keeps the high byte), CMYK JPEG, EXIF-rotated JPEG (not rotated), 1x1 / 3x30 / 12x9 upscaled */
static void test_modes(void) {
  FILE *f = fopen(vg_test_fixture("anomalib_import/modes.txt"), "r");
  if (!VG_CHECK(f != NULL, "anomalib_import/modes.txt")) return;
  char line[256], img[128], file[128], path[200];
  int w, h, cases = 0;
  double worst = 0;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%127s %d %d %127s", img, &w, &h, file) != 4) continue;
    vg_image im = {0};
    snprintf(path, sizeof path, "anomalib_import/%s", img);
    vg_status st = vg_image_load(vg_test_fixture(path), &im, NULL);
    size_t n = (size_t)3 * w * h;
    snprintf(path, sizeof path, "anomalib_import/%s", file);
    float *want = read_f32(vg_test_fixture(path), n), *got = malloc(n * sizeof *got);
    if (st == VG_OK) st = vg_image_float_transform(&im, got, 3, h, w, NULL);
    double e = st == VG_OK && want ? 0 : INFINITY;
    for (size_t i = 0; st == VG_OK && want && i < n; i++) e = fmax(e, fabs((double)got[i] - want[i]));
    VG_CHECK(e <= 2e-6, "image mode %s (%s) -> %dx%d: max abs diff %.3g vs read_image + Resize (<= 2e-6)", img,
             st == VG_OK ? "loaded" : vg_last_error(), w, h, e);
    worst = fmax(worst, e);
    cases++;
    free(want); free(got);
    vg_image_free(&im);
  }
  fclose(f);
  printf("# image modes: %d cases, max abs diff %.3g\n", cases, worst);
  VG_CHECK(cases >= 18, "image modes: %d cases ran", cases);
  /* Pillow's 8-bit view of 16-bit samples: grey clipped (min(v, 255)), colour high byte */
  vg_image g16 = {.w = 4, .h = 1, .c = 1, .depth = 16, .data = calloc(4, 2)};
  uint16_t gv[4] = {100, 255, 256, 65535};
  memcpy(g16.data, gv, sizeof gv);
  float t[3 * 4];
  VG_CHECK(vg_image_float_transform(&g16, t, 3, 1, 4, NULL) == VG_OK && t[0] == 100 * (float)(1.0 / 255) &&
               t[1] == 1.0f && t[2] == 1.0f && t[3] == 1.0f && t[4] == t[0] && t[8 + 3] == 1.0f,
           "16-bit grey: min(v, 255) / 255 in each channel (Pillow I;16 -> RGB)");
  vg_image c16 = {.w = 4, .h = 1, .c = 3, .depth = 16, .data = calloc(12, 2)};
  uint16_t cv[12] = {0x7fff, 0x80ff, 255, 256, 0, 65535, 0xff7f, 0x0100, 0x00ff, 0x1234, 0x5678, 0x9abc};
  memcpy(c16.data, cv, sizeof cv);
  bool hb = vg_image_float_transform(&c16, t, 3, 1, 4, NULL) == VG_OK;
  for (int i = 0; i < 4 && hb; i++)
    for (int k = 0; k < 3; k++) hb &= t[k * 4 + i] == (float)(cv[i * 3 + k] >> 8) * (float)(1.0 / 255);
  VG_CHECK(hb, "16-bit RGB: (v >> 8) / 255 (Pillow keeps the high byte)");
  vg_image_free(&g16); vg_image_free(&c16);
}

static const char *str_of(const vg_json *j, const char *k) { return vg_json_as_string(vg_json_get(j, k)); }

static vg_status config_of(const char *user_text, vg_json **out, char *note, size_t cap) {
  vg_json *u = NULL;
  if (user_text && vg_json_parse(user_text, strlen(user_text), NULL, &u) != VG_OK) return VG_ERR_ARG;
  vg_status st = vg_anomalib_config("fastflow", vg_test_fixture("anomalib_import/ff_tiny.ckpt"), u, out, note, cap);
  vg_json_free(u);
  return st;
}

static void test_config(void) {
  vg_json *c = NULL;
  char note[512];
  vg_status st = config_of(NULL, &c, note, sizeof note);
  int64_t size = 0, steps = 0;
  double ratio = 0;
  bool c3 = true;
  VG_CHECK(st == VG_OK, "anomalib config of ff_tiny.ckpt: %s", st == VG_OK ? "ok" : vg_last_error());
  if (c) {
    VG_CHECK(str_of(c, "backbone") && !strcmp(str_of(c, "backbone"), "resnet18"), "inferred backbone resnet18");
    bool got = vg_json_as_int64(vg_json_get(c, "input_size"), &size);
    VG_CHECK(got && size == 32, "inferred input_size 32 (%lld)", (long long)size);
    VG_CHECK(vg_json_as_int64(vg_json_get(c, "flow_steps"), &steps) && steps == 2, "inferred flow_steps 2");
    got = vg_json_as_double(vg_json_get(c, "hidden_ratio"), &ratio);
    VG_CHECK(got && (int)(ratio * 32) == 1 && (int)(ratio * 64) == 2 && (int)(ratio * 128) == 4,
             "inferred hidden_ratio %.17g gives the hidden widths 1, 2, 4", ratio);
    VG_CHECK(vg_json_as_bool(vg_json_get(c, "conv3x3_only"), &c3) && !c3, "inferred conv3x3_only false (anomalib's default)");
    VG_CHECK(str_of(c, "resize") && !strcmp(str_of(c, "resize"), "float"), "resize float by default");
    VG_CHECK(strstr(note, "conv3x3_only=false") != NULL, "note names conv3x3_only=false: %s", note);
    /* the inferred config builds the checkpoint's model: the loader takes every tensor */
    vg_method *m = NULL;
    st = vg_method_create("fastflow", c, &m);
    if (st == VG_OK) st = vg_fastflow_load_anomalib(m, vg_test_fixture("anomalib_import/ff_tiny.ckpt"));
    VG_CHECK(st == VG_OK, "FastFlow from the inferred config loads ff_tiny.ckpt: %s", st == VG_OK ? "ok" : vg_last_error());
    vg_method_free(m);
  }
  vg_json_free(c);
  c = NULL;
  /* Vigil's own resnet18 default (conv3x3_only true) against this checkpoint: a shape error before */
  vg_method *m = NULL;
  vg_json *u = NULL;
  const char *old = "{\"backbone\":\"resnet18\",\"input_size\":32,\"flow_steps\":2,\"hidden_ratio\":0.03125}";
  VG_ASSERT(vg_json_parse(old, strlen(old), NULL, &u) == VG_OK);
  st = vg_method_create("fastflow", u, &m);
  if (st == VG_OK) st = vg_fastflow_load_anomalib(m, vg_test_fixture("anomalib_import/ff_tiny.ckpt"));
  VG_CHECK(st != VG_OK, "without conv3x3_only=false the checkpoint does not load (the issue's shape error)");
  vg_method_free(m);
  vg_json_free(u);
  /* contradictions name the option and the implied value */
  struct { const char *user, *want; } bad[] = {
      {"{\"conv3x3_only\": true}", "conv3x3_only=false"},
      {"{\"input_size\": 64}", "input_size=32"},
      {"{\"flow_steps\": 8}", "flow_steps=2"},
      {"{\"backbone\": \"wide_resnet50_2\"}", "backbone=\"resnet18\""},
      {"{\"hidden_ratio\": 1.0}", "hidden_ratio="},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    st = config_of(bad[i].user, &c, note, sizeof note);
    VG_CHECK(st == VG_ERR_ARG && strstr(vg_last_error(), bad[i].want), "%s refused naming %s: %s", bad[i].user, bad[i].want,
             st == VG_OK ? "accepted" : vg_last_error());
    vg_json_free(c);
    c = NULL;
  }
  /* consistent user options and resize=pil are kept */
  st = config_of("{\"conv3x3_only\": false, \"input_size\": 32, \"hidden_ratio\": 0.035, \"resize\": \"pil\"}", &c, note,
                 sizeof note);
  VG_CHECK(st == VG_OK && c && !strcmp(str_of(c, "resize"), "pil") && !strstr(note, "conv3x3_only") &&
               !strstr(note, "hidden_ratio"),
           "consistent options and resize=pil kept (note: %s)", note);
  vg_json_free(c);
  c = NULL;
  /* CFLOW-AD (tests/fixtures/cflow_anomalib.ckpt: resnet18 without its weights, layer1, 1 block,
   * condition 4): from the decoders' shapes; a consistent "layers" array is accepted */
  vg_json *u2 = NULL;
  const char *ut = "{\"layers\": [\"layer1\"], \"map_norm\": \"anomalib\"}";
  VG_ASSERT(vg_json_parse(ut, strlen(ut), NULL, &u2) == VG_OK);
  char ck[512];
  snprintf(ck, sizeof ck, "%s", vg_test_fixture("cflow_anomalib.ckpt"));
  st = vg_anomalib_config("cflow", ck, u2, &c, note, sizeof note);
  int64_t cond = 0, blocks = 0;
  bool got = st == VG_OK && vg_json_as_int64(vg_json_get(c, "condition_vector"), &cond) &&
             vg_json_as_int64(vg_json_get(c, "coupling_blocks"), &blocks);
  VG_CHECK(got && cond == 4 && blocks == 1 && str_of(c, "backbone") && !strcmp(str_of(c, "backbone"), "resnet18") &&
               !strcmp(str_of(c, "map_norm"), "anomalib") && !strcmp(str_of(c, "resize"), "float"),
           "cflow: backbone resnet18, condition_vector 4, coupling_blocks 1 inferred, user keys kept (%s)",
           st == VG_OK ? note : vg_last_error());
  if (st == VG_OK) {
    vg_method *cm = NULL;
    st = vg_method_create("cflow", c, &cm);
    if (st == VG_OK) st = vg_cflow_load_anomalib(cm, ck);
    VG_CHECK(st == VG_OK, "CFLOW from the inferred config loads cflow_anomalib.ckpt: %s", st == VG_OK ? "ok" : vg_last_error());
    vg_method_free(cm);
  }
  vg_json_free(c);
  vg_json_free(u2);
  c = NULL;
  const char *cbad[][2] = {{"{\"layers\": [\"layer2\"]}", "layers=[\"layer1\"]"},
                           {"{\"condition_vector\": 128}", "condition_vector=4"},
                           {"{\"coupling_blocks\": 8}", "coupling_blocks=1"}};
  for (int i = 0; i < 3; i++) {
    VG_ASSERT(vg_json_parse(cbad[i][0], strlen(cbad[i][0]), NULL, &u2) == VG_OK);
    st = vg_anomalib_config("cflow", ck, u2, &c, NULL, 0);
    VG_CHECK(st == VG_ERR_ARG && strstr(vg_last_error(), cbad[i][1]), "cflow: %s refused naming %s: %s", cbad[i][0],
             cbad[i][1], st == VG_OK ? "accepted" : vg_last_error());
    vg_json_free(u2);
    vg_json_free(c);
    c = NULL;
  }
  /* the wrong model for the checkpoint */
  vg_status s2 = vg_anomalib_config("cflow", vg_test_fixture("anomalib_import/ff_tiny.ckpt"), NULL, &c, NULL, 0);
  VG_CHECK(s2 != VG_OK && strstr(vg_last_error(), "missing"), "a FastFlow checkpoint as CFLOW refused: %s", vg_last_error());
  s2 = vg_anomalib_config("efficientad", vg_test_fixture("anomalib_import/ff_tiny.ckpt"), NULL, &c, NULL, 0);
  VG_CHECK(s2 != VG_OK && strstr(vg_last_error(), "teacher"), "a FastFlow checkpoint as EfficientAD refused: %s",
           vg_last_error());
}

/* the Philox backbone (base 1000) the fixture's anomalib model holds, as .safetensors */
static bool write_backbone(const char *path) {
  const char *cfg = "{\"backbone\":\"resnet18\",\"input_size\":32}";
  vg_json *j = NULL;
  vg_method *m = NULL;
  bool ok = vg_json_parse(cfg, strlen(cfg), NULL, &j) == VG_OK && vg_method_create("fastflow", j, &m) == VG_OK;
  vg_json_free(j);
  vg_nn_module *bb = ok ? vg_nn_child_get(vg_fastflow_module(m), "feature_extractor") : NULL;
  ok = bb && vg_resnet_init_philox(bb, 1000) == VG_OK;
  if (ok) {
    vg_nn_list sd = vg_nn_state_dict(bb);
    ok = vg_st_save(path, sd.n, (const char *const *)sd.names, sd.tensors, NULL) == VG_OK;
    vg_nn_list_free(&sd);
  }
  vg_method_free(m);
  return ok;
}

/* runs predict into DIR; returns the TIFF map (61 x 45) or NULL */
static float *predict(const char *bb, const char *dir, const char *extra, int *rc, char **out) {
  char cmd[4096], ckpt[512], png[512];   /* vg_test_fixture returns one static buffer */
  snprintf(ckpt, sizeof ckpt, "%s", vg_test_fixture("anomalib_import/ff_tiny.ckpt"));
  snprintf(png, sizeof png, "%s", vg_test_fixture("anomalib_import/ff_tiny.png"));
  snprintf(cmd, sizeof cmd, "%s predict --from-anomalib %s --model fastflow --weights %s --threads 2 --no-overlay %s --out %s %s",
           g_vigil, ckpt, bb, extra, dir, png);
  *out = vg_test_run(cmd, rc);
  if (*rc != 0) printf("# %s\n", cmd);
  char tiff[1200];
  snprintf(tiff, sizeof tiff, "%s/ff_tiny.tiff", dir);
  float *map = NULL;
  int w = 0, h = 0;
  if (*rc != 0 || vg_tiff_read_f32(tiff, &map, &w, &h) != VG_OK) return NULL;
  if (w != 61 || h != 45) { free(map); return NULL; }
  return map;
}

static double rel_err(const float *got, const float *want, int64_t n) {
  double e = 0, s = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(got[i])) return INFINITY;
    e = fmax(e, fabs((double)got[i] - want[i]));
    s = fmax(s, fabs((double)want[i]));
  }
  return s > 0 ? e / s : e;
}

static void test_end_to_end(void) {
  char bb[512], dir[512], cfgp[600];
  snprintf(bb, sizeof bb, "%s/bb.safetensors", g_tmp);
  if (!VG_CHECK(write_backbone(bb), "Philox resnet18 backbone written")) return;
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("anomalib_import/ff_tiny.bin"));
  const vg_fx_tensor *ref = fx ? vg_fixture_get(fx, "map") : NULL;
  if (!VG_CHECK(ref && ref->n == 32 * 32, "ff_tiny.bin map")) { vg_fixture_free(fx); return; }
  float want[61 * 45];
  vg_report_resize_map(ref->data, 32, 32, want, 45, 61);
  int rc;
  char *o;
  snprintf(dir, sizeof dir, "%s/float", g_tmp);
  float *map = predict(bb, dir, "", &rc, &o);
  if (!VG_CHECK(map != NULL, "vigil predict --from-anomalib with no structural flag (rc %d)", rc)) printf("%s\n", o ? o : "");
  if (map) {
    double e = rel_err(map, want, 61 * 45);
    VG_CHECK(e <= 1e-4, "FastFlow-R18 (conv3x3_only=False) map vs anomalib's read_image + pre-processor + model: "
             "max rel err %.3g (<= 1e-4)", e);
  }
  VG_CHECK(o && strstr(o, "conv3x3_only=false"), "predict says what it read off the checkpoint");
  free(o);
  /* config.json records the input mode and the inferred options */
  snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
  FILE *f = fopen(cfgp, "rb");
  char text[8192] = "";
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  if (f) fclose(f);
  text[n] = 0;
  vg_json *j = NULL;
  bool c3 = true;
  bool ok = n && vg_json_parse(text, n, NULL, &j) == VG_OK;
  const vg_json *mc = ok ? vg_json_get(j, "method_config") : NULL;
  VG_CHECK(mc && str_of(mc, "resize") && !strcmp(str_of(mc, "resize"), "float") &&
               vg_json_as_bool(vg_json_get(mc, "conv3x3_only"), &c3) && !c3 && str_of(j, "from_anomalib"),
           "DIR/config.json records resize \"float\", conv3x3_only false and the checkpoint");
  vg_json_free(j);
  /* the old input path: Pillow's 8-bit resize — measurably different */
  snprintf(dir, sizeof dir, "%s/pil", g_tmp);
  float *mp = predict(bb, dir, "--set resize=pil", &rc, &o);
  free(o);
  if (VG_CHECK(mp != NULL, "--set resize=pil runs") && map) {
    double e = rel_err(mp, want, 61 * 45);
    VG_CHECK(e > 1e-4, "resize=pil differs from anomalib's pipeline by %.3g (> 1e-4): the mode matters", e);
    const vg_fx_tensor *rp = vg_fixture_get(fx, "map_pil");
    if (rp && rp->n == 32 * 32) {
      float wp[61 * 45];
      vg_report_resize_map(rp->data, 32, 32, wp, 45, 61);
      e = rel_err(mp, wp, 61 * 45);
      VG_CHECK(e <= 1e-4, "resize=pil = the model on Pillow's 8-bit resize: %.3g (<= 1e-4)", e);
    }
  }
  free(mp);
  free(map);
  /* a contradicting option: refused, naming it and the value */
  snprintf(dir, sizeof dir, "%s/bad", g_tmp);
  map = predict(bb, dir, "--set conv3x3_only=true", &rc, &o);
  VG_CHECK(!map && rc != 0 && o && strstr(o, "conv3x3_only=false"), "--set conv3x3_only=true refused naming conv3x3_only=false");
  free(o);
  free(map);
  vg_fixture_free(fx);
}

int main(int argc, char **argv) {
  (void)argc;
  test_resize();
  test_transform();
  test_modes();
  test_config();
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  if (!g_vigil[0]) printf("SKIP vigil predict checks (no vigil binary next to the test)\n");
  else test_end_to_end();
  vg_test_tmp_done(g_tmp);
  return vg_test_finish();
}
