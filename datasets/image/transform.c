/* transform.c — pixel transforms matching Pillow / torchvision (PIL path) bit for bit.
 *
 * resize: Pillow's ImagingResample (Resample.c) for BILINEAR / BICUBIC: separable
 *   convolution with the filter support scaled by the downscale factor (antialiasing),
 *   coefficients normalised to sum 1, then 8-bit fixed point (PRECISION_BITS = 22),
 *   horizontal pass first into an 8-bit temporary, then vertical, each rounding and
 *   clipping as Pillow does. Image.resize() defaults (box = whole image, reducing_gap
 *   None) are what this reproduces. NEAREST: Pillow's ImagingScaleAffine (src index =
 *   trunc of a cumulative x0 = scale/2, x += scale).
 * greyscale: Pillow's rgb2l (L24: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16).
 * enhance: PIL ImageEnhance = Image.blend(degenerate, image, factor) (Blend.c).
 * rotate: PIL Image.rotate(angle, BILINEAR) = affine transform, bilinear_filter8/32. */
#include "datasets/image/image.h"
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

static vg_status check8(const vg_image *im, const char *what) {
  if (!im || !im->data || im->w <= 0 || im->h <= 0 || im->c < 1 || im->c > 4)
    return vg_fail(VG_ERR_ARG, "%s: empty or malformed image", what);
  if (im->depth != 8) return vg_fail(VG_ERR_UNSUPPORTED, "%s: only 8-bit images (got depth %d)", what, im->depth);
  return VG_OK;
}

static vg_status alloc8(vg_image *out, int w, int h, int c) {
  memset(out, 0, sizeof *out);
  out->data = malloc((size_t)w * (size_t)h * (size_t)c);
  if (!out->data) return vg_fail(VG_ERR_NOMEM, "image transform: out of memory (%dx%dx%d)", w, h, c);
  out->w = w; out->h = h; out->c = c; out->depth = 8;
  return VG_OK;
}

/* ---- resize ---------------------------------------------------------------------- */

static double filt_bilinear(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

static double filt_bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc. bounds[2*i] = first source index,
 * bounds[2*i+1] = count; kk[i*ksize + j] fixed-point coefficients. Returns ksize or 0. */
static int precompute(int in_size, int out_size, double (*f)(double), double fsupport,
                      int **boundsp, int32_t **kkp) {
  double scale = (double)in_size / out_size, filterscale = scale;
  if (filterscale < 1.0) filterscale = 1.0;
  double support = fsupport * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  int *bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
  double *pre = malloc(sizeof(double) * (size_t)out_size * (size_t)ksize);
  int32_t *kk = malloc(sizeof(int32_t) * (size_t)out_size * (size_t)ksize);
  if (!bounds || !pre || !kk) { free(bounds); free(pre); free(kk); return 0; }
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double *k = pre + (size_t)xx * ksize;
    int x;
    for (x = 0; x < xmax; x++) {
      double w = f((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    for (; x < ksize; x++) k[x] = 0;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  for (size_t i = 0; i < (size_t)out_size * (size_t)ksize; i++)
    kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << PRECISION_BITS))
                       : (int32_t)(0.5 + pre[i] * (1 << PRECISION_BITS));
  free(pre);
  *boundsp = bounds;
  *kkp = kk;
  return ksize;
}

static inline uint8_t clip8(int32_t in) {
  if (in >= (1 << PRECISION_BITS << 8)) return 255;
  if (in <= 0) return 0;
  return (uint8_t)(in >> PRECISION_BITS);
}

static vg_status resize_nearest(const vg_image *src, int w, int h, vg_image *out) {
  vg_status st = alloc8(out, w, h, src->c);
  if (st) return st;
  int c = src->c;
  int *xin = malloc(sizeof(int) * (size_t)w);
  if (!xin) { vg_image_free(out); return vg_fail(VG_ERR_NOMEM, "resize: out of memory"); }
  double ax = (double)src->w / w, ay = (double)src->h / h;
  double xo = ax * 0.5, yo = ay * 0.5;
  for (int x = 0; x < w; x++) {
    int xi = xo < 0.0 ? -1 : (int)xo;
    xin[x] = xi < 0 ? 0 : xi >= src->w ? src->w - 1 : xi;
    xo += ax;
  }
  const uint8_t *s = src->data;
  uint8_t *d = out->data;
  for (int y = 0; y < h; y++) {
    int yi = yo < 0.0 ? -1 : (int)yo;
    if (yi < 0) yi = 0;
    if (yi >= src->h) yi = src->h - 1;
    const uint8_t *row = s + (size_t)yi * src->w * c;
    uint8_t *o = d + (size_t)y * w * c;
    for (int x = 0; x < w; x++) memcpy(o + (size_t)x * c, row + (size_t)xin[x] * c, (size_t)c);
    yo += ay;
  }
  free(xin);
  return VG_OK;
}

vg_status vg_image_resize(const vg_image *src, int w, int h, vg_resample filter, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = check8(src, "resize");
  if (st) return st;
  if (w <= 0 || h <= 0 || w > 65536 || h > 65536) return vg_fail(VG_ERR_ARG, "resize: bad output size %dx%d", w, h);
  if (filter == VG_RESAMPLE_NEAREST) return resize_nearest(src, w, h, out);
  double (*f)(double);
  double support;
  if (filter == VG_RESAMPLE_BILINEAR) { f = filt_bilinear; support = 1.0; }
  else if (filter == VG_RESAMPLE_BICUBIC) { f = filt_bicubic; support = 2.0; }
  else return vg_fail(VG_ERR_ARG, "resize: unknown filter %d", (int)filter);
  if (src->c == 2 || src->c == 4)
    return vg_fail(VG_ERR_UNSUPPORTED, "resize: bilinear/bicubic with alpha (Pillow premultiplies) is not supported");
  const int c = src->c, sw = src->w, sh = src->h;
  int *bh = NULL, *bv = NULL;
  int32_t *kh = NULL, *kv = NULL;
  int ksh = precompute(sw, w, f, support, &bh, &kh);
  int ksv = ksh ? precompute(sh, h, f, support, &bv, &kv) : 0;
  if (!ksh || !ksv) { free(bh); free(kh); return vg_fail(VG_ERR_NOMEM, "resize: out of memory"); }
  int need_h = w != sw, need_v = h != sh;
  int yfirst = bv[0], ylast = bv[h * 2 - 2] + bv[h * 2 - 1];
  const uint8_t *cur = src->data;
  int cur_h = sh;
  uint8_t *tmp = NULL;
  if (need_h) {
    for (int i = 0; i < h; i++) bv[i * 2] -= yfirst;
    cur_h = ylast - yfirst;
    tmp = malloc((size_t)w * (size_t)cur_h * (size_t)c);
    if (!tmp) { st = vg_fail(VG_ERR_NOMEM, "resize: out of memory"); goto done; }
    for (int yy = 0; yy < cur_h; yy++) {
      const uint8_t *row = (const uint8_t *)src->data + (size_t)(yy + yfirst) * sw * c;
      uint8_t *o = tmp + (size_t)yy * w * c;
      for (int xx = 0; xx < w; xx++) {
        int xmin = bh[xx * 2], xmax = bh[xx * 2 + 1];
        const int32_t *k = kh + (size_t)xx * ksh;
        for (int ch = 0; ch < c; ch++) {
          int32_t ss = 1 << (PRECISION_BITS - 1);
          for (int x = 0; x < xmax; x++) ss += row[(size_t)(x + xmin) * c + ch] * k[x];
          o[(size_t)xx * c + ch] = clip8(ss);
        }
      }
    }
    cur = tmp;
  } else {
    /* vertical only: Pillow reads the input directly with unshifted bounds */
  }
  st = alloc8(out, w, h, c);
  if (st) goto done;
  if (need_v) {
    uint8_t *d = out->data;
    for (int yy = 0; yy < h; yy++) {
      int ymin = bv[yy * 2], ymax = bv[yy * 2 + 1];
      const int32_t *k = kv + (size_t)yy * ksv;
      uint8_t *o = d + (size_t)yy * w * c;
      for (int i = 0; i < w * c; i++) {
        int32_t ss = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < ymax; y++) ss += cur[(size_t)(y + ymin) * w * c + i] * k[y];
        o[i] = clip8(ss);
      }
    }
  } else {
    (void)cur_h;
    memcpy(out->data, cur, (size_t)w * h * c);
  }
done:
  free(tmp); free(bh); free(bv); free(kh); free(kv);
  return st;
}

/* ---- tensors ----------------------------------------------------------------------- */

vg_status vg_image_to_tensor(const vg_image *src, float *out) {
  vg_status st = check8(src, "to_tensor");
  if (st) return st;
  const uint8_t *s = src->data;
  size_t hw = (size_t)src->w * src->h;
  for (int ch = 0; ch < src->c; ch++)
    for (size_t i = 0; i < hw; i++) out[(size_t)ch * hw + i] = (float)s[i * src->c + ch] / 255.0f;
  return VG_OK;
}

void vg_tensor_normalize_chw(float *chw, int c, int h, int w, const float *mean, const float *std) {
  size_t hw = (size_t)h * w;
  for (int ch = 0; ch < c; ch++) {
    float m = mean[ch], s = std[ch];
    float *p = chw + (size_t)ch * hw;
    for (size_t i = 0; i < hw; i++) p[i] = (p[i] - m) / s;
  }
}

void vg_tensor_normalize_imagenet(float *chw, int h, int w) {
  static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  vg_tensor_normalize_chw(chw, 3, h, w, mean, std);
}

/* ---- geometry ---------------------------------------------------------------------- */

/* Python's int(round(d / 2.0)) for d >= 0: round half to even. */
static int half_round_even(int d) {
  int k = d / 2;
  if (d % 2 == 0) return k;
  return (k % 2 == 0) ? k : k + 1;
}

vg_status vg_image_crop(const vg_image *src, int left, int top, int cw, int chh, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = check8(src, "crop");
  if (st) return st;
  if (cw <= 0 || chh <= 0 || left < 0 || top < 0 || left + cw > src->w || top + chh > src->h)
    return vg_fail(VG_ERR_ARG, "crop: box %d,%d %dx%d outside %dx%d image", left, top, cw, chh, src->w, src->h);
  st = alloc8(out, cw, chh, src->c);
  if (st) return st;
  size_t rb = (size_t)cw * src->c;
  for (int y = 0; y < chh; y++)
    memcpy((uint8_t *)out->data + (size_t)y * rb,
           (const uint8_t *)src->data + ((size_t)(y + top) * src->w + left) * src->c, rb);
  return VG_OK;
}

vg_status vg_image_center_crop(const vg_image *src, int cw, int chh, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = check8(src, "center_crop");
  if (st) return st;
  if (cw <= 0 || chh <= 0 || cw > src->w || chh > src->h)
    return vg_fail(VG_ERR_ARG, "center_crop: %dx%d does not fit in %dx%d", cw, chh, src->w, src->h);
  return vg_image_crop(src, half_round_even(src->w - cw), half_round_even(src->h - chh), cw, chh, out);
}

vg_status vg_image_flip(const vg_image *src, int horizontal, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = check8(src, "flip");
  if (st) return st;
  st = alloc8(out, src->w, src->h, src->c);
  if (st) return st;
  const int c = src->c, w = src->w, h = src->h;
  size_t rb = (size_t)w * c;
  const uint8_t *s = src->data;
  uint8_t *d = out->data;
  for (int y = 0; y < h; y++) {
    if (horizontal) {
      const uint8_t *r = s + (size_t)y * rb;
      uint8_t *o = d + (size_t)y * rb;
      for (int x = 0; x < w; x++) memcpy(o + (size_t)x * c, r + (size_t)(w - 1 - x) * c, (size_t)c);
    } else {
      memcpy(d + (size_t)y * rb, s + (size_t)(h - 1 - y) * rb, rb);
    }
  }
  return VG_OK;
}

/* ---- colour ------------------------------------------------------------------------ */

static inline uint8_t rgb2l(const uint8_t *p) {
  return (uint8_t)(((uint32_t)p[0] * 19595 + (uint32_t)p[1] * 38470 + (uint32_t)p[2] * 7471 + 0x8000) >> 16);
}

vg_status vg_image_to_gray(const vg_image *src, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = check8(src, "to_gray");
  if (st) return st;
  st = alloc8(out, src->w, src->h, 1);
  if (st) return st;
  const uint8_t *s = src->data;
  uint8_t *d = out->data;
  size_t n = (size_t)src->w * src->h;
  for (size_t i = 0; i < n; i++)
    d[i] = src->c >= 3 ? rgb2l(s + i * src->c) : s[i * src->c];
  return VG_OK;
}

vg_status vg_image_to_rgb(const vg_image *src, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = check8(src, "to_rgb");
  if (st) return st;
  st = alloc8(out, src->w, src->h, 3);
  if (st) return st;
  const uint8_t *s = src->data;
  uint8_t *d = out->data;
  size_t n = (size_t)src->w * src->h;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = s + i * src->c;
    if (src->c >= 3) memcpy(d + i * 3, p, 3);
    else d[i * 3] = d[i * 3 + 1] = d[i * 3 + 2] = p[0];
  }
  return VG_OK;
}

/* Pillow's ImagingBlend(im1 = degenerate, im2 = image, alpha): float alpha. */
static inline uint8_t blend1(uint8_t a, uint8_t b, float alpha) {
  if (alpha >= 0 && alpha <= 1.0f) return (uint8_t)((int)a + alpha * ((int)b - (int)a));
  float t = (float)((int)a + alpha * ((int)b - (int)a));
  if (t <= 0.0f) return 0;
  if (t >= 255.0f) return 255;
  return (uint8_t)t;
}

static vg_status enhance(const vg_image *src, const uint8_t *deg, int deg_per_pixel, float alpha,
                         vg_image *out) {
  vg_status st = alloc8(out, src->w, src->h, src->c);
  if (st) return st;
  const uint8_t *s = src->data;
  uint8_t *d = out->data;
  size_t n = (size_t)src->w * src->h;
  int c = src->c;
  for (size_t i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++) {
      uint8_t g = deg_per_pixel ? deg[i] : deg[0];
      if (ch == 3) { d[i * c + ch] = s[i * c + ch]; continue; } /* alpha kept */
      d[i * c + ch] = blend1(g, s[i * c + ch], alpha);
    }
  return VG_OK;
}

static vg_status enhance_check(const vg_image *src, double factor, const char *what) {
  vg_status st = check8(src, what);
  if (st) return st;
  if (src->c == 2) return vg_fail(VG_ERR_UNSUPPORTED, "%s: grey+alpha is not supported", what);
  if (!(factor >= 0) || !isfinite(factor)) return vg_fail(VG_ERR_ARG, "%s: factor must be finite and >= 0", what);
  return VG_OK;
}

vg_status vg_image_adjust_brightness(const vg_image *src, double factor, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = enhance_check(src, factor, "adjust_brightness");
  if (st) return st;
  const uint8_t zero = 0;
  return enhance(src, &zero, 0, (float)factor, out);
}

vg_status vg_image_adjust_contrast(const vg_image *src, double factor, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = enhance_check(src, factor, "adjust_contrast");
  if (st) return st;
  /* int(ImageStat.Stat(image.convert("L")).mean[0] + 0.5) */
  const uint8_t *s = src->data;
  size_t n = (size_t)src->w * src->h;
  double hist[256] = {0};
  for (size_t i = 0; i < n; i++) hist[src->c >= 3 ? rgb2l(s + i * src->c) : s[i * src->c]] += 1;
  double sum = 0;
  for (int i = 0; i < 256; i++) sum += i * hist[i];
  uint8_t mean = (uint8_t)(int)(sum / (double)n + 0.5);
  return enhance(src, &mean, 0, (float)factor, out);
}

vg_status vg_image_adjust_saturation(const vg_image *src, double factor, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = enhance_check(src, factor, "adjust_saturation");
  if (st) return st;
  vg_image g;
  st = vg_image_to_gray(src, &g);
  if (st) return st;
  st = enhance(src, g.data, 1, (float)factor, out);
  vg_image_free(&g);
  return st;
}

/* ---- rotation ---------------------------------------------------------------------- */

static double round15(double v) {
  double r = nearbyint(v * 1e15) / 1e15;
  return r == 0.0 ? 0.0 : r;
}

vg_status vg_image_rotate(const vg_image *src, double angle_deg, vg_image *out) {
  memset(out, 0, sizeof *out);
  vg_status st = check8(src, "rotate");
  if (st) return st;
  if (src->c == 2 || src->c == 4) return vg_fail(VG_ERR_UNSUPPORTED, "rotate: images with alpha are not supported");
  if (!isfinite(angle_deg)) return vg_fail(VG_ERR_ARG, "rotate: angle is not finite");
  const int w = src->w, h = src->h, c = src->c;
  double ang = fmod(angle_deg, 360.0);
  if (ang < 0) ang += 360.0;
  if (ang == 0.0) {
    st = alloc8(out, w, h, c);
    if (!st) memcpy(out->data, src->data, (size_t)w * h * c);
    return st;
  }
  if (ang == 180.0 || ((ang == 90.0 || ang == 270.0) && w == h)) {
    st = alloc8(out, w, h, c);
    if (st) return st;
    const uint8_t *s = src->data;
    uint8_t *d = out->data;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        int sx, sy; /* Pillow transpose: ROTATE_90 is counter-clockwise */
        if (ang == 180.0) { sx = w - 1 - x; sy = h - 1 - y; }
        else if (ang == 90.0) { sx = w - 1 - y; sy = x; }
        else { sx = y; sy = h - 1 - x; }
        memcpy(d + ((size_t)y * w + x) * c, s + ((size_t)sy * w + sx) * c, (size_t)c);
      }
    return VG_OK;
  }
  double cx = w / 2.0, cy = h / 2.0, r = -ang * (M_PI / 180.0);
  double m[6] = {round15(cos(r)), round15(sin(r)), 0.0, round15(-sin(r)), round15(cos(r)), 0.0};
  m[2] = m[0] * -cx + m[1] * -cy + m[2];
  m[5] = m[3] * -cx + m[4] * -cy + m[5];
  m[2] += cx;
  m[5] += cy;
  st = alloc8(out, w, h, c);
  if (st) return st;
  const uint8_t *s = src->data;
  uint8_t *d = out->data;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double xin = m[0] * (x + 0.5) + m[1] * (y + 0.5) + m[2];
      double yin = m[3] * (x + 0.5) + m[4] * (y + 0.5) + m[5];
      uint8_t *o = d + ((size_t)y * w + x) * c;
      if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h) { memset(o, 0, (size_t)c); continue; }
      xin -= 0.5; yin -= 0.5;
      int ix = xin < 0.0 ? (int)floor(xin) : (int)xin, iy = yin < 0.0 ? (int)floor(yin) : (int)yin;
      double dx = xin - ix, dy = yin - iy;
      int yc = iy < 0 ? 0 : iy < h ? iy : h - 1;
      int x0 = ix < 0 ? 0 : ix < w ? ix : w - 1, x1 = ix + 1 < 0 ? 0 : ix + 1 < w ? ix + 1 : w - 1;
      for (int ch = 0; ch < c; ch++) {
        const uint8_t *in = s + (size_t)yc * w * c;
        double v1 = in[(size_t)x0 * c + ch] + (in[(size_t)x1 * c + ch] - in[(size_t)x0 * c + ch]) * dx, v2;
        if (iy + 1 >= 0 && iy + 1 < h) {
          in = s + (size_t)(iy + 1) * w * c;
          v2 = in[(size_t)x0 * c + ch] + (in[(size_t)x1 * c + ch] - in[(size_t)x0 * c + ch]) * dx;
        } else {
          v2 = v1;
        }
        v1 = v1 + (v2 - v1) * dy;
        o[ch] = (uint8_t)v1;
      }
    }
  return VG_OK;
}

/* ---- float resize (anomalib 2.x input path) ------------------------------------------
 * torch's CPU antialiased bilinear (aten UpSampleKernel.cpp: area_pixel_compute_scale,
 * _compute_indices_min_size_weights_aa, separable_upsample_generic_Nd_kernel_impl) in the
 * float32 arithmetic torch uses for a float32 tensor: the same triangle filter as Pillow's
 * BILINEAR, but centre and weights rounded to float32 where torch rounds them, and no
 * 8-bit rounding anywhere. Width pass first into a float temporary, then height; an axis
 * whose size is unchanged is skipped. Out-of-range taps are dropped and the rest
 * renormalised (no edge replication). */

typedef struct { int xmin, xsize; } fr_span;

/* coefficient table of one axis: span[i], w[i * ksize + j] (float32, normalised) */
static int fr_coeffs(int in_size, int out_size, fr_span **spanp, float **wp) {
  float scale = (float)in_size / (float)out_size;
  float support = scale >= 1.0f ? (float)(1.0 * scale) : 1.0f;   /* interp_size 2 * 0.5 */
  float invscale = scale >= 1.0f ? (float)(1.0 / (double)scale) : 1.0f;
  int ksize = (int)ceil(support) * 2 + 1;
  fr_span *span = malloc(sizeof *span * (size_t)out_size);
  float *w = calloc((size_t)out_size * (size_t)ksize, sizeof *w);
  if (!span || !w) { free(span); free(w); return 0; }
  for (int i = 0; i < out_size; i++) {
    float center = (float)((double)scale * ((double)i + 0.5));
    float lo = center - support, hi = center + support;
    int64_t xmin = (int64_t)((double)lo + 0.5), xmax = (int64_t)((double)hi + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > in_size) xmax = in_size;
    int xsize = (int)(xmax - xmin);
    if (xsize > ksize) xsize = ksize;
    float *k = w + (size_t)i * ksize, total = 0.0f;
    for (int j = 0; j < xsize; j++) {
      float d = (float)(j + xmin) - center;           /* int64 - float: float */
      float x = (float)(((double)d + 0.5) * (double)invscale);  /* filter's float argument */
      x = fabsf(x);
      float v = x < 1.0f ? (float)(1.0 - (double)x) : 0.0f;
      k[j] = v;
      total += v;
    }
    if (total != 0.0f)
      for (int j = 0; j < xsize; j++) k[j] /= total;
    span[i].xmin = (int)xmin;
    span[i].xsize = xsize;
  }
  *spanp = span;
  *wp = w;
  return ksize;
}

vg_status vg_image_resize_float(const vg_image *src, int w, int h, float *out) {
  if (!src || !src->data || src->w <= 0 || src->h <= 0 || src->c < 1 || src->c > 4 ||
      (src->depth != 8 && src->depth != 16))
    return vg_fail(VG_ERR_ARG, "resize_float: empty or malformed image");
  if (w <= 0 || h <= 0 || w > 65536 || h > 65536) return vg_fail(VG_ERR_ARG, "resize_float: bad output size %dx%d", w, h);
  const int c = src->c, sw = src->w, sh = src->h;
  const size_t sp = (size_t)sw * sh;
  /* read_image: uint8 -> float32, times float32(1 / 255) (torchvision to_dtype(scale=True)) */
  float *x = malloc(sizeof *x * sp * (size_t)c);
  if (!x) return vg_fail(VG_ERR_NOMEM, "resize_float: out of memory (%dx%dx%d)", sw, sh, c);
  const float inv = src->depth == 8 ? (float)(1.0 / 255) : (float)(1.0 / 65535);
  for (int ch = 0; ch < c; ch++)
    for (size_t i = 0; i < sp; i++)
      x[(size_t)ch * sp + i] = src->depth == 8 ? (float)((const uint8_t *)src->data)[i * c + ch] * inv
                                               : (float)((const uint16_t *)src->data)[i * c + ch] * inv;
  fr_span *hs = NULL, *vs = NULL;
  float *hw = NULL, *vw = NULL, *tmp = NULL;
  int kh = w != sw ? fr_coeffs(sw, w, &hs, &hw) : -1;
  int kv = h != sh ? fr_coeffs(sh, h, &vs, &vw) : -1;
  vg_status st = kh && kv ? VG_OK : vg_fail(VG_ERR_NOMEM, "resize_float: out of memory");
  const float *cur = x;
  if (st == VG_OK && kh > 0) {   /* width: (c, sh, sw) -> (c, sh, w) */
    tmp = malloc(sizeof *tmp * (size_t)c * sh * (size_t)w);
    if (!tmp) st = vg_fail(VG_ERR_NOMEM, "resize_float: out of memory");
    for (size_t r = 0; st == VG_OK && r < (size_t)c * sh; r++) {
      const float *row = x + r * sw;
      float *o = tmp + r * w;
      for (int i = 0; i < w; i++) {
        const float *k = hw + (size_t)i * kh, *s = row + hs[i].xmin;
        float acc = s[0] * k[0];
        for (int j = 1; j < hs[i].xsize; j++) { float p = s[j] * k[j]; acc += p; }
        o[i] = acc;
      }
    }
    cur = tmp;
  }
  if (st == VG_OK && kv > 0) {   /* height: (c, sh, w) -> (c, h, w) */
    for (int ch = 0; ch < c; ch++) {
      const float *plane = cur + (size_t)ch * sh * w;
      for (int i = 0; i < h; i++) {
        const float *k = vw + (size_t)i * kv;
        float *o = out + ((size_t)ch * h + i) * w;
        const float *s0 = plane + (size_t)vs[i].xmin * w;
        for (int xx = 0; xx < w; xx++) o[xx] = s0[xx] * k[0];
        for (int j = 1; j < vs[i].xsize; j++) {
          const float *s = s0 + (size_t)j * w;
          for (int xx = 0; xx < w; xx++) { float p = s[xx] * k[j]; o[xx] += p; }
        }
      }
    }
  } else if (st == VG_OK) {
    memcpy(out, cur, sizeof *out * (size_t)c * h * w);
  }
  free(x); free(tmp); free(hs); free(hw); free(vs); free(vw);
  return st;
}

/* A 16-bit image as Pillow opens it (what read_image's convert("RGB") then sees), 8-bit:
 * 16-bit grey PNG/TIFF opens as mode I;16 and convert("RGB"/"L") clips it, min(v, 255);
 * 16-bit RGB, RGBA and grey+alpha PNGs open as RGB / RGBA keeping the high byte, v >> 8.
 * Our PNG decoder gives grey+alpha for a 16-bit grey+tRNS PNG too (Pillow: I;16 with a
 * transparency value, clipped): an alpha that is all 0 / 65535, 0 exactly on one grey value
 * that no opaque pixel has, is taken for a tRNS one (a real grey+alpha image with such an
 * alpha is ambiguous here; its alpha is dropped either way). */
static vg_status pil_narrow16(const vg_image *im, vg_image *out) {
  const size_t n = (size_t)im->w * im->h, c = (size_t)im->c;
  const uint16_t *s = im->data;
  bool clip = c == 1;
  if (c == 2) {
    long key = -1;
    clip = true;
    for (size_t i = 0; i < n && clip; i++)
      if (s[2 * i + 1] == 0) clip = key < 0 || key == s[2 * i] ? (key = s[2 * i], true) : false;
      else clip = s[2 * i + 1] == 65535;
    for (size_t i = 0; i < n && clip && key >= 0; i++) clip = s[2 * i + 1] == 0 || s[2 * i] != key;
  }
  uint8_t *d = malloc(n * c);
  if (!d) return vg_fail(VG_ERR_NOMEM, "float transform: out of memory (%dx%dx%d)", im->w, im->h, im->c);
  for (size_t i = 0; i < n * c; i++) d[i] = clip ? (uint8_t)(s[i] > 255 ? 255 : s[i]) : (uint8_t)(s[i] >> 8);
  *out = (vg_image){.w = im->w, .h = im->h, .c = im->c, .depth = 8, .data = d};
  return VG_OK;
}

/* anomalib 2.x: read_image (convert("RGB") -> float) -> Resize(antialias=True) [-> Normalize] */
static vg_status float_transform(const vg_image *im, float *out, int c, int h, int w, bool imagenet) {
  if (c != 1 && c != 3) return vg_fail(VG_ERR_ARG, "float transform: channels must be 1 or 3, got %d", c);
  if (imagenet && c != 3) return vg_fail(VG_ERR_ARG, "float ImageNet transform: needs 3 channels, got %d", c);
  vg_image conv = {0}, narrow = {0};
  const vg_image *cur = im;
  vg_status st = VG_OK;
  if (im->depth == 16) {   /* Pillow's 8-bit image of a 16-bit file */
    st = pil_narrow16(im, &narrow);
    cur = &narrow;
  }
  if (st == VG_OK && cur->c != c) {   /* Pillow convert("RGB") / convert("L") */
    st = c == 3 ? vg_image_to_rgb(cur, &conv) : vg_image_to_gray(cur, &conv);
    cur = &conv;
  }
  if (st != VG_OK) vg_image_free(&narrow);
  if (st != VG_OK) return st;
  size_t plane = (size_t)h * w;
  float *all = out;
  bool own = cur->c != c;   /* (unreachable since 16-bit images are narrowed first) */
  if (own && !(all = malloc(sizeof *all * plane * (size_t)cur->c))) st = vg_fail(VG_ERR_NOMEM, "float transform: out of memory");
  if (st == VG_OK) st = vg_image_resize_float(cur, w, h, all);
  if (st == VG_OK && own) {
    int ic = cur->c >= 3 ? 3 : 1;   /* colour planes (alpha dropped) */
    for (int k = 0; k < c; k++) {
      if (c == 3) memcpy(out + k * plane, all + (ic == 3 ? k : 0) * plane, sizeof *out * plane);
      else if (ic == 1) memcpy(out, all, sizeof *out * plane);
      else for (size_t i = 0; i < plane; i++) out[i] = 0.299f * all[i] + 0.587f * all[plane + i] + 0.114f * all[2 * plane + i];
    }
  }
  if (own) free(all);
  vg_image_free(&conv);
  vg_image_free(&narrow);
  if (st == VG_OK && imagenet) vg_tensor_normalize_imagenet(out, h, w);
  return st;
}

vg_status vg_image_float_transform(const vg_image *im, float *out, int c, int h, int w, void *user) {
  (void)user;
  return float_transform(im, out, c, h, w, false);
}

vg_status vg_image_float_imagenet_transform(const vg_image *im, float *out, int c, int h, int w, void *user) {
  (void)user;
  return float_transform(im, out, c, h, w, true);
}
