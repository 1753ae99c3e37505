/* test_augment.c — methods/augment.c: flips, Pillow-exact NEAREST rotation (fixture from
 * tools/gen_augment_fixtures.py: Image.rotate(angle, NEAREST, fillcolor=0), what torchvision's
 * RandomRotation does), the keyed draws (same key = same draw, independent of anything else)
 * and vg_aug_apply's probabilities. */
#include "tests/vgtest.h"
#include "methods/augment.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_flips(void) {
  const int c = 2, h = 3, w = 4;
  float x[24], y[24];
  for (int i = 0; i < 24; i++) x[i] = (float)i;
  memcpy(y, x, sizeof x);
  vg_aug_hflip(y, c, h, w);
  int ok = 1;
  for (int ch = 0; ch < c; ch++)
    for (int i = 0; i < h; i++)
      for (int j = 0; j < w; j++) ok &= y[(ch * h + i) * w + j] == x[(ch * h + i) * w + (w - 1 - j)];
  VG_CHECK(ok, "hflip mirrors every row of every channel");
  memcpy(y, x, sizeof x);
  vg_aug_vflip(y, c, h, w);
  ok = 1;
  for (int ch = 0; ch < c; ch++)
    for (int i = 0; i < h; i++)
      for (int j = 0; j < w; j++) ok &= y[(ch * h + i) * w + j] == x[(ch * h + (h - 1 - i)) * w + j];
  VG_CHECK(ok, "vflip mirrors every column of every channel");
  vg_aug_vflip(y, c, h, w);
  VG_CHECK(!memcmp(x, y, sizeof x), "vflip twice is the identity");
}

static void test_rotate_pil(void) {
  const char *path = vg_test_fixture("augment/rotate.bin");
  FILE *f = fopen(path, "rb");
  if (!f) { printf("SKIP %s missing (tools/gen_augment_fixtures.py)\n", path); return; }
  char magic[4];
  int32_t n = 0;
  int ok = fread(magic, 4, 1, f) == 1 && !memcmp(magic, "VGAR", 4) && fread(&n, 4, 1, f) == 1 && n > 0 && n < 100;
  VG_CHECK(ok, "read %s", path);
  int64_t total = 0, bad = 0;
  for (int k = 0; ok && k < n; k++) {
    int32_t w, h;
    double ang;
    ok = fread(&w, 4, 1, f) == 1 && fread(&h, 4, 1, f) == 1 && fread(&ang, 8, 1, f) == 1 && w > 0 && h > 0 && w * h <= 1 << 16;
    if (!ok) break;
    size_t px = (size_t)w * h;
    uint8_t *src = malloc(px * 3), *ref = malloc(px * 3);
    float *fs = malloc(px * 3 * sizeof *fs), *fd = malloc(px * 3 * sizeof *fd);
    ok = fread(src, px * 3, 1, f) == 1 && fread(ref, px * 3, 1, f) == 1;
    for (size_t p = 0; ok && p < px; p++)
      for (int c = 0; c < 3; c++) fs[c * px + p] = src[p * 3 + c];   /* HWC -> CHW */
    const float fill[3] = {0, 0, 0};
    vg_aug_rotate_nearest(fs, fd, 3, h, w, ang, fill);
    int64_t diff = 0;
    for (size_t p = 0; ok && p < px; p++)
      for (int c = 0; c < 3; c++) diff += fd[c * px + p] != (float)ref[p * 3 + c];
    VG_CHECK(ok && diff == 0, "rotate %gdeg of a %dx%d image = Pillow's NEAREST rotate (%lld of %lld values differ)", ang, w, h,
             (long long)diff, (long long)(px * 3));
    total += (int64_t)px * 3;
    bad += diff;
    free(src); free(ref); free(fs); free(fd);
  }
  fclose(f);
  VG_CHECK(ok, "all %d cases read", n);
  printf("# rotation vs Pillow: %lld of %lld values differ\n", (long long)bad, (long long)total);
}

static void test_draws(void) {
  double a = vg_aug_uniform(3, 10, 2, 0), b = vg_aug_uniform(3, 10, 2, 0);
  VG_CHECK(a == b && a >= 0 && a < 1, "a draw depends only on its key (%.6f)", a);
  VG_CHECK(vg_aug_uniform(3, 10, 2, 1) != a && vg_aug_uniform(3, 11, 2, 0) != a && vg_aug_uniform(3, 10, 3, 0) != a &&
               vg_aug_uniform(4, 10, 2, 0) != a, "draw, step, row and seed each change it");
  /* probabilities over many rows: hflip 0.5, vflip 0.3, rotation 0.7 (FastFlow's Table 8) */
  vg_aug_cfg cfg = {.hflip_p = 0.5, .vflip_p = 0.3, .rotate_p = 0.7, .rotate_deg = 10};
  const int N = 20000;
  int nh = 0, nv = 0, nr = 0;
  double amax = 0;
  for (int i = 0; i < N; i++) {
    nh += vg_aug_uniform(1, 5, i, 0) < cfg.hflip_p;
    nv += vg_aug_uniform(1, 5, i, 1) < cfg.vflip_p;
    nr += vg_aug_uniform(1, 5, i, 2) < cfg.rotate_p;
    double ang = fabs((2 * vg_aug_uniform(1, 5, i, 3) - 1) * cfg.rotate_deg);
    amax = ang > amax ? ang : amax;
  }
  VG_CHECK(fabs(nh / (double)N - 0.5) < 0.02 && fabs(nv / (double)N - 0.3) < 0.02 && fabs(nr / (double)N - 0.7) < 0.02 &&
               amax <= 10 && amax > 9.9,
           "rates: hflip %.3f vflip %.3f rotate %.3f, |angle| max %.3f", nh / (double)N, nv / (double)N, nr / (double)N, amax);
  VG_CHECK(!vg_aug_active(&(vg_aug_cfg){0}) && vg_aug_active(&cfg) && !vg_aug_active(&(vg_aug_cfg){.rotate_p = 1}),
           "vg_aug_active: off by default, rotation needs an angle");
}

/* vg_aug_apply: each row gets exactly the transform its own draws say */
static void test_apply(void) {
  const int n = 16, c = 3, h = 6, w = 8, sz = c * h * w;
  float *x = malloc(sizeof(float) * n * sz), *y = malloc(sizeof(float) * n * sz), scratch[144], want[144];
  for (int i = 0; i < n * sz; i++) x[i] = (float)(i % 97) * 0.25f;
  memcpy(y, x, sizeof(float) * n * sz);
  vg_aug_cfg cfg = {.hflip_p = 0.5, .vflip_p = 0.3, .rotate_p = 0.7, .rotate_deg = 15};
  float fill[3];
  vg_aug_imagenet_black(fill);
  VG_CHECK(fabsf(fill[0] - (0 - 0.485f) / 0.229f) < 1e-7f && fabsf(fill[2] - (0 - 0.406f) / 0.225f) < 1e-7f,
           "fill = ImageNet-normalised black (%.6f %.6f %.6f)", fill[0], fill[1], fill[2]);
  vg_aug_apply(&cfg, 9, 4, y, n, c, h, w, fill, scratch);
  int ok = 1, nchanged = 0;
  for (int i = 0; i < n; i++) {
    memcpy(want, x + i * sz, sizeof(float) * sz);
    if (vg_aug_uniform(9, 4, i, 0) < 0.5) vg_aug_hflip(want, c, h, w);
    if (vg_aug_uniform(9, 4, i, 1) < 0.3) vg_aug_vflip(want, c, h, w);
    if (vg_aug_uniform(9, 4, i, 2) < 0.7) {
      vg_aug_rotate_nearest(want, scratch, c, h, w, (2 * vg_aug_uniform(9, 4, i, 3) - 1) * 15, fill);
      memcpy(want, scratch, sizeof(float) * sz);
    }
    ok &= !memcmp(want, y + i * sz, sizeof(float) * sz);
    nchanged += memcmp(x + i * sz, y + i * sz, sizeof(float) * sz) != 0;
  }
  VG_CHECK(ok && nchanged > 0 && nchanged < n, "vg_aug_apply = the keyed per-row transforms (%d of %d rows changed)", nchanged, n);
  free(x);
  free(y);
}

int main(void) {
  test_flips();
  test_rotate_pil();
  test_draws();
  test_apply();
  return vg_test_finish();
}
