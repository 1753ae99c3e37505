/* test_transforms.c — datasets/image/transform.c against Pillow / torchvision outputs
 * (tests/fixtures/transforms, written by tools/gen_transform_fixtures.py). Sources are
 * rebuilt here: photo crops decoded with Vigil's JPEG decoder (bit-exact vs Pillow),
 * synthetic patterns from the same integer formulas. */
#include "tests/vgtest.h"
#include "datasets/image/image.h"
#include "base/status.h"

static int photo_ok = 1;

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

static void mask(vg_image *im, int w, int h) {
  im->w = w; im->h = h; im->c = 1; im->depth = 8;
  im->data = malloc((size_t)w * h);
  uint8_t *d = im->data;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) d[(size_t)y * w + x] = (uint8_t)(((x / 23) + 3 * (y / 17)) % 5 * 40);
}

static int photo(vg_image *im, const char *file, int l, int t, int r, int b) {
  vg_image full;
  if (vg_image_load(vg_test_shared(file), &full, NULL) != VG_OK) return 0;
  vg_status st = vg_image_crop(&full, l, t, r - l, b - t, im);
  vg_image_free(&full);
  return st == VG_OK;
}

/* Builds the named source (see tools/gen_transform_fixtures.py). 0 when unavailable. */
static int source(const char *name, vg_image *im) {
  memset(im, 0, sizeof *im);
  char base[64];
  snprintf(base, sizeof base, "%s", name);
  size_t n = strlen(base);
  int gray = n > 2 && strcmp(base + n - 2, "_L") == 0;
  if (gray) base[n - 2] = 0;
  int w, h, ok = 1;
  if (!strcmp(base, "photo")) ok = photo(im, "photos/dog.jpg", 200, 120, 280, 200);
  else if (!strcmp(base, "photo2")) ok = photo(im, "photos/eagle.jpg", 300, 100, 333, 197);
  else if (!strcmp(base, "photo3")) ok = photo(im, "photos/eagle.jpg", 300, 100, 324, 120);
  else if (sscanf(base, "syn%d_%d", &w, &h) == 2) syn(im, w, h);
  else if (sscanf(base, "mask%d_%d", &w, &h) == 2) mask(im, w, h);
  else VG_ABORT("unknown source %s", name);
  if (!ok) { photo_ok = 0; return 0; }
  if (gray) {
    vg_image g;
    VG_ASSERT(vg_image_to_gray(im, &g) == VG_OK);
    vg_image_free(im);
    *im = g;
  }
  return 1;
}

/* max |got - want| over the image; -1 on a shape mismatch. */
static int img_diff(const vg_image *got, const vg_image *want) {
  if (got->w != want->w || got->h != want->h || got->c != want->c || got->depth != 8) return -1;
  int m = 0;
  size_t n = (size_t)got->w * got->h * got->c;
  const uint8_t *a = got->data, *b = want->data;
  for (size_t i = 0; i < n; i++) {
    int d = abs((int)a[i] - (int)b[i]);
    if (d > m) m = d;
  }
  return m;
}

typedef struct { int worst, cases; } stat;

int main(void) {
  char path[256];
  snprintf(path, sizeof path, "%s", vg_test_fixture("transforms/manifest.txt"));
  FILE *f = fopen(path, "r");
  VG_CHECK(f != NULL, "open %s", path);
  if (!f) return vg_test_finish();
  char line[512];
  const char *ops[] = {"resize:nearest", "resize:bilinear", "resize:bicubic", "gray", "hflip", "vflip", "ccrop",
                       "brightness", "contrast", "saturation", "rotate"};
  enum { NOPS = 11 };
  stat st[NOPS];
  memset(st, 0, sizeof st);
  double tensor_err = 0, norm_err = 0;
  while (fgets(line, sizeof line, f)) {
    char op[32], src[64], a1[128], a2[128], a3[128], a4[128];
    int nf = sscanf(line, "%31s %63s %127s %127s %127s %127s", op, src, a1, a2, a3, a4);
    if (nf < 3) continue;
    const char *file = nf == 6 ? a4 : nf == 5 ? a3 : nf == 4 ? a2 : a1;
    vg_image in, got, want;
    memset(&got, 0, sizeof got);
    if (!source(src, &in)) continue;
    char fx[200];
    snprintf(fx, sizeof fx, "transforms/%s", file);
    if (!strcmp(op, "tensor") || !strcmp(op, "normalize")) {
      size_t cnt = (size_t)in.w * in.h * in.c;
      float *t = malloc(cnt * sizeof(float)), *w = malloc(cnt * sizeof(float));
      FILE *tf = fopen(vg_test_fixture(fx), "rb");
      size_t rd = tf ? fread(w, sizeof(float), cnt, tf) : 0;
      if (tf) fclose(tf);
      VG_CHECK(rd == cnt, "%s: read %zu floats", fx, cnt);
      VG_CHECK(vg_image_to_tensor(&in, t) == VG_OK, "to_tensor %s", src);
      if (!strcmp(op, "normalize")) vg_tensor_normalize_imagenet(t, in.h, in.w);
      double m = 0;
      for (size_t i = 0; i < cnt && rd == cnt; i++) m = fmax(m, fabs((double)t[i] - w[i]));
      if (!strcmp(op, "tensor")) tensor_err = fmax(tensor_err, m); else norm_err = fmax(norm_err, m);
      VG_CHECK(m <= 1e-6, "%s %s: max abs diff %.3g vs torchvision", op, src, m);
      free(t); free(w); vg_image_free(&in);
      continue;
    }
    vg_status s;
    int k = -1;
    char what[160];
    if (!strcmp(op, "resize")) {
      vg_resample r = !strcmp(a3, "nearest") ? VG_RESAMPLE_NEAREST : !strcmp(a3, "bilinear") ? VG_RESAMPLE_BILINEAR
                                                                                              : VG_RESAMPLE_BICUBIC;
      s = vg_image_resize(&in, atoi(a1), atoi(a2), r, &got);
      snprintf(what, sizeof what, "resize:%s", a3);
    } else {
      snprintf(what, sizeof what, "%s", op);
      if (!strcmp(op, "gray")) s = vg_image_to_gray(&in, &got);
      else if (!strcmp(op, "hflip")) s = vg_image_flip(&in, 1, &got);
      else if (!strcmp(op, "vflip")) s = vg_image_flip(&in, 0, &got);
      else if (!strcmp(op, "ccrop")) s = vg_image_center_crop(&in, atoi(a1), atoi(a2), &got);
      else if (!strcmp(op, "brightness")) s = vg_image_adjust_brightness(&in, atof(a1), &got);
      else if (!strcmp(op, "contrast")) s = vg_image_adjust_contrast(&in, atof(a1), &got);
      else if (!strcmp(op, "saturation")) s = vg_image_adjust_saturation(&in, atof(a1), &got);
      else if (!strcmp(op, "rotate")) s = vg_image_rotate(&in, atof(a1), &got);
      else VG_ABORT("unknown op %s", op);
    }
    for (int i = 0; i < NOPS; i++) if (!strcmp(ops[i], what)) k = i;
    VG_ASSERT(k >= 0);
    VG_CHECK(s == VG_OK, "%s %s: %s", what, src, vg_last_error());
    VG_CHECK(vg_image_load(vg_test_fixture(fx), &want, NULL) == VG_OK, "load %s", fx);
    int d = img_diff(&got, &want);
    /* resize, enhance, rotate: target exact, accept 1; geometry and grey: exact */
    int tol = (k <= 2 || k >= 7) ? 1 : 0;
    if (d != 0) printf("# %s %s %s %s: max abs diff %d\n", what, src, a1, nf >= 5 ? a2 : "", d);
    VG_CHECK(d >= 0 && d <= tol, "%s %s %s: max abs diff %d vs Pillow (tol %d)", what, src, file, d, tol);
    if (d > st[k].worst) st[k].worst = d;
    st[k].cases++;
    vg_image_free(&in); vg_image_free(&got); vg_image_free(&want);
  }
  fclose(f);
  for (int i = 0; i < NOPS; i++) printf("# %-16s cases %3d  max abs diff %d\n", ops[i], st[i].cases, st[i].worst);
  printf("# to_tensor max abs diff %.3g, normalize %.3g\n", tensor_err, norm_err);
  if (!photo_ok) printf("SKIP photo cases: tests/data/photos not found\n");

  /* argument errors */
  vg_image a, b;
  syn(&a, 10, 8);
  VG_CHECK(vg_image_resize(&a, 0, 5, VG_RESAMPLE_BILINEAR, &b) == VG_ERR_ARG && b.data == NULL, "resize to 0 refused");
  VG_CHECK(vg_image_center_crop(&a, 11, 2, &b) == VG_ERR_ARG, "center crop larger than image refused");
  VG_CHECK(vg_image_crop(&a, 5, 0, 6, 2, &b) == VG_ERR_ARG, "crop box outside refused");
  a.c = 4; a.w = 5;
  VG_CHECK(vg_image_resize(&a, 3, 3, VG_RESAMPLE_BICUBIC, &b) == VG_ERR_UNSUPPORTED, "RGBA bicubic refused");
  VG_CHECK(vg_image_resize(&a, 3, 3, VG_RESAMPLE_NEAREST, &b) == VG_OK && b.c == 4, "RGBA nearest ok");
  vg_image_free(&b);
  a.c = 3; a.w = 10;
  VG_CHECK(vg_image_resize(&a, 10, 8, VG_RESAMPLE_BICUBIC, &b) == VG_OK && img_diff(&a, &b) == 0, "same-size resize is a copy");
  vg_image_free(&b);
  vg_image_free(&a);
  return vg_test_finish();
}
