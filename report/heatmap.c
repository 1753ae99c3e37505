/* heatmap.c — map resizing, the jet colour map and heatmap overlays (see report.h). */
#include "report/report.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* F.interpolate(bilinear, align_corners=False): src = (dst + 0.5) * in / out - 0.5,
 * clamped at 0; the right / bottom neighbour is clamped to the last pixel. */
static void lin_coeffs(int in, int out, int *i0, int *i1, float *l1) {
  double scale = (double)in / out;
  for (int o = 0; o < out; o++) {
    double s = (o + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    int a = (int)s;
    if (a > in - 1) a = in - 1;
    i0[o] = a;
    i1[o] = a + 1 < in ? a + 1 : in - 1;
    l1[o] = (float)(s - a);
  }
}

void vg_report_resize_map(const float *map, int h, int w, float *out, int oh, int ow) {
  if (h == oh && w == ow) { memcpy(out, map, (size_t)h * w * sizeof *out); return; }
  int *x0 = malloc((size_t)ow * sizeof *x0), *x1 = malloc((size_t)ow * sizeof *x1);
  int *y0 = malloc((size_t)oh * sizeof *y0), *y1 = malloc((size_t)oh * sizeof *y1);
  float *lx = malloc((size_t)ow * sizeof *lx), *ly = malloc((size_t)oh * sizeof *ly);
  VG_ASSERT(x0 && x1 && y0 && y1 && lx && ly && "resize_map: out of memory for coefficients");
  lin_coeffs(w, ow, x0, x1, lx);
  lin_coeffs(h, oh, y0, y1, ly);
  for (int y = 0; y < oh; y++) {
    const float *r0 = map + (size_t)y0[y] * w, *r1 = map + (size_t)y1[y] * w;
    float b = ly[y], a = 1.0f - b;
    float *o = out + (size_t)y * ow;
    for (int x = 0; x < ow; x++) {
      float c = lx[x], d = 1.0f - c;
      o[x] = a * (d * r0[x0[x]] + c * r0[x1[x]]) + b * (d * r1[x0[x]] + c * r1[x1[x]]);
    }
  }
  free(x0); free(x1); free(y0); free(y1); free(lx); free(ly);
}

static uint8_t u8c(double v) { return (uint8_t)(v <= 0 ? 0 : v >= 1 ? 255 : lrint(v * 255.0)); }

void vg_report_jet(float v, uint8_t rgb[3]) {
  if (!(v >= 0)) v = 0;          /* NaN -> 0 */
  if (v > 1) v = 1;
  double f = 4.0 * v;
  rgb[0] = u8c(1.5 - fabs(f - 3.0));
  rgb[1] = u8c(1.5 - fabs(f - 2.0));
  rgb[2] = u8c(1.5 - fabs(f - 1.0));
}

/* img (1..4 channels, 8/16 bit) -> RGB 8-bit (alpha dropped, grey replicated, 16-bit >> 8). */
static vg_status to_rgb8(const vg_image *img, vg_image *out) {
  out->w = img->w; out->h = img->h; out->c = 3; out->depth = 8;
  size_t np = (size_t)img->w * img->h;
  uint8_t *d = malloc(np * 3);
  if (!d) return vg_fail(VG_ERR_NOMEM, "overlay: out of memory");
  int c = img->c;
  for (size_t i = 0; i < np; i++) {
    uint8_t v[3];
    for (int k = 0; k < 3; k++) {
      int ch = c >= 3 ? k : 0;
      v[k] = img->depth == 16 ? (uint8_t)(((const uint16_t *)img->data)[i * c + ch] >> 8)
                              : ((const uint8_t *)img->data)[i * c + ch];
    }
    memcpy(d + 3 * i, v, 3);
  }
  out->data = d;
  return VG_OK;
}

static void draw_contour(uint8_t *rgb, const uint8_t *set, int w, int h, const uint8_t col[3]) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      size_t i = (size_t)y * w + x;
      if (!set[i]) continue;
      bool edge = (x > 0 && !set[i - 1]) || (x + 1 < w && !set[i + 1]) || (y > 0 && !set[i - w]) ||
                  (y + 1 < h && !set[i + w]);
      if (edge) memcpy(rgb + 3 * i, col, 3);
    }
}

vg_status vg_report_overlay(const vg_image *img, const float *map, int mh, int mw, float lo,
                            float hi, const uint8_t *gt, float thr, int max_side, vg_image *out) {
  memset(out, 0, sizeof *out);
  if (!img || !img->data || img->w <= 0 || img->h <= 0 || img->c < 1 || img->c > 4 || !map || mh <= 0 || mw <= 0)
    return vg_fail(VG_ERR_ARG, "overlay: need an image and a map");
  vg_image rgb;
  vg_status st = to_rgb8(img, &rgb);
  if (st != VG_OK) return st;
  int ow = img->w, oh = img->h;
  if (max_side > 0 && (ow > max_side || oh > max_side)) {
    double s = (double)max_side / (ow > oh ? ow : oh);
    ow = (int)lround(ow * s); oh = (int)lround(oh * s);
    if (ow < 1) ow = 1;
    if (oh < 1) oh = 1;
    vg_image small;
    st = vg_image_resize(&rgb, ow, oh, VG_RESAMPLE_BILINEAR, &small);
    vg_image_free(&rgb);
    if (st != VG_OK) return st;
    rgb = small;
  }
  size_t np = (size_t)ow * oh;
  float *m = malloc(np * sizeof *m);
  uint8_t *set = malloc(np);
  if (!m || !set) { free(m); free(set); vg_image_free(&rgb); return vg_fail(VG_ERR_NOMEM, "overlay: out of memory"); }
  vg_report_resize_map(map, mh, mw, m, oh, ow);
  uint8_t *d = rgb.data;
  float span = hi > lo ? hi - lo : 1.0f;
  for (size_t i = 0; i < np; i++) {
    uint8_t c[3];
    vg_report_jet((m[i] - lo) / span, c);
    for (int k = 0; k < 3; k++) d[3 * i + k] = (uint8_t)((d[3 * i + k] + c[k] + 1) / 2);
  }
  if (!isnan(thr)) {
    for (size_t i = 0; i < np; i++) set[i] = m[i] >= thr;
    draw_contour(d, set, ow, oh, (const uint8_t[3]){VG_REPORT_PRED_RGB});
  }
  if (gt) {   /* PIL NEAREST: source index floor((x + 0.5) * in / out) */
    for (int y = 0; y < oh; y++) {
      int sy = (int)((y + 0.5) * mh / oh);
      if (sy > mh - 1) sy = mh - 1;
      for (int x = 0; x < ow; x++) {
        int sx = (int)((x + 0.5) * mw / ow);
        if (sx > mw - 1) sx = mw - 1;
        set[(size_t)y * ow + x] = gt[(size_t)sy * mw + sx] != 0;
      }
    }
    draw_contour(d, set, ow, oh, (const uint8_t[3]){VG_REPORT_GT_RGB});
  }
  free(m); free(set);
  *out = rgb;
  return VG_OK;
}
