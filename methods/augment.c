/* methods/augment.c — training-time flips and rotation (augment.h). */
#include "methods/augment.h"
#include <math.h>
#include <string.h>

static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double vg_aug_uniform(uint64_t seed, int64_t step, int64_t row, int k) {
  uint64_t h = mix64(mix64(mix64(seed * 0x2545F4914F6CDD1Dull + 0xA5A5ull) + (uint64_t)step) + (uint64_t)row * 8 + (uint64_t)k);
  return (double)(h >> 11) * 0x1.0p-53;
}

bool vg_aug_active(const vg_aug_cfg *a) {
  return a && (a->hflip_p > 0 || a->vflip_p > 0 || (a->rotate_p > 0 && a->rotate_deg > 0));
}

void vg_aug_hflip(float *x, int c, int h, int w) {
  for (int64_t r = 0; r < (int64_t)c * h; r++) {
    float *p = x + r * w;
    for (int i = 0, j = w - 1; i < j; i++, j--) { float t = p[i]; p[i] = p[j]; p[j] = t; }
  }
}

void vg_aug_vflip(float *x, int c, int h, int w) {
  for (int ch = 0; ch < c; ch++) {
    float *p = x + (int64_t)ch * h * w;
    for (int i = 0, j = h - 1; i < j; i++, j--)
      for (int k = 0; k < w; k++) { float t = p[(int64_t)i * w + k]; p[(int64_t)i * w + k] = p[(int64_t)j * w + k]; p[(int64_t)j * w + k] = t; }
  }
}

static double round15(double v) {   /* Python's round(v, 15) for |v| <= 1 */
  double r = nearbyint(v * 1e15) / 1e15;
  return r == 0.0 ? 0.0 : r;
}

/* floor(v / 65536) for a 16.16 fixed-point value (an arithmetic shift, portable) */
static int64_t fix_floor(int64_t v) { return v >= 0 ? v / 65536 : -((-v + 65535) / 65536); }

void vg_aug_rotate_nearest(const float *src, float *dst, int c, int h, int w, double angle_deg, const float *fill) {
  const int64_t hw = (int64_t)h * w;
  double ang = fmod(angle_deg, 360.0);
  if (ang < 0) ang += 360.0;
  if (ang == 0.0 || !isfinite(ang)) { memcpy(dst, src, (size_t)(c * hw) * sizeof *dst); return; }
  if (ang == 180.0 || ((ang == 90.0 || ang == 270.0) && w == h)) {   /* Pillow: transpose */
    for (int ch = 0; ch < c; ch++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          int sx, sy;
          if (ang == 180.0) { sx = w - 1 - x; sy = h - 1 - y; }
          else if (ang == 90.0) { sx = w - 1 - y; sy = x; }
          else { sx = y; sy = h - 1 - x; }
          dst[ch * hw + (int64_t)y * w + x] = src[ch * hw + (int64_t)sy * w + sx];
        }
    return;
  }
  /* Image.rotate's inverse matrix (output -> input), centre (w/2, h/2) */
  double cx = w / 2.0, cy = h / 2.0, r = -ang * (M_PI / 180.0);
  double a[6] = {round15(cos(r)), round15(sin(r)), 0.0, round15(-sin(r)), round15(cos(r)), 0.0};
  a[2] = a[0] * -cx + a[1] * -cy + a[2] + cx;
  a[5] = a[3] * -cx + a[4] * -cy + a[5] + cy;
  /* Pillow's ImagingTransformAffine, NEAREST: 16.16 fixed point at pixel centres, stepped
   * by the matrix columns (affine_fixed) */
#define FIX(v) ((int64_t)floor((v) * 65536.0 + 0.5))
  int64_t a0 = FIX(a[0]), a1 = FIX(a[1]), a3 = FIX(a[3]), a4 = FIX(a[4]);
  int64_t a2 = FIX(a[2] + a[0] * 0.5 + a[1] * 0.5), a5 = FIX(a[5] + a[3] * 0.5 + a[4] * 0.5);
#undef FIX
  for (int y = 0; y < h; y++) {
    int64_t xx = a2, yy = a5;
    for (int x = 0; x < w; x++) {
      int64_t xin = fix_floor(xx), yin = fix_floor(yy);
      bool in = xin >= 0 && xin < w && yin >= 0 && yin < h;
      for (int ch = 0; ch < c; ch++)
        dst[ch * hw + (int64_t)y * w + x] = in ? src[ch * hw + yin * w + xin] : fill[ch];
      xx += a0;
      yy += a3;
    }
    a2 += a1;
    a5 += a4;
  }
}

void vg_aug_apply(const vg_aug_cfg *a, uint64_t seed, int64_t step, float *x, int64_t n, int c, int h, int w,
                  const float *fill, float *scratch) {
  const int64_t sz = (int64_t)c * h * w;
  for (int64_t i = 0; i < n; i++) {
    float *s = x + i * sz;
    if (a->hflip_p > 0 && vg_aug_uniform(seed, step, i, 0) < a->hflip_p) vg_aug_hflip(s, c, h, w);
    if (a->vflip_p > 0 && vg_aug_uniform(seed, step, i, 1) < a->vflip_p) vg_aug_vflip(s, c, h, w);
    if (a->rotate_p > 0 && a->rotate_deg > 0 && vg_aug_uniform(seed, step, i, 2) < a->rotate_p) {
      double ang = (2.0 * vg_aug_uniform(seed, step, i, 3) - 1.0) * a->rotate_deg;
      vg_aug_rotate_nearest(s, scratch, c, h, w, ang, fill);
      memcpy(s, scratch, (size_t)sz * sizeof *s);
    }
  }
}

void vg_aug_imagenet_black(float fill[3]) {
  static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; c++) fill[c] = (0.0f - mean[c]) / sd[c];
}
