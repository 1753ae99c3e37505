/* jpeg_pixels.c — from quantized DCT coefficients to pixels, numerically as libjpeg-turbo
 * does it with its defaults (what Pillow returns):
 *   - ISLOW inverse DCT: the Loeffler-Ligtenberg-Moschytz 8-point butterfly in scaled
 *     integers, constants round(c * 2^13), columns first keeping 2 extra bits
 *     (descale by 2^11), then rows (descale by 2^18), +128, clamp to 0..255;
 *   - block smoothing (libjpeg-turbo >= 2.1) of progressive images whose low AC
 *     coefficients are still approximate: zero coefficients are predicted from a 5x5
 *     neighbourhood of DC values (JPEG standard K.8, widened);
 *   - upsampling: "fancy" triangle filters for 2:1 horizontal, 2:1 vertical and 2:1 both
 *     ways (weights 3/4, 1/4, libjpeg's rounding biases), replication for other integer
 *     ratios; edges replicate the last real sample;
 *   - YCbCr -> RGB with libjpeg's 16-bit fixed-point tables; YCCK -> CMYK the same way;
 *     CMYK -> RGB as Pillow's convert("RGB") after reading Adobe-inverted CMYK.
 * Checked bit-exact against Pillow 9.4 (libjpeg-turbo 2.1.5) on all shared test JPEGs and
 * photos and on damaged variants (tests/test_jpeg.c). Known difference: a progressive file
 * cut *inside* an early scan (or, with vertical sampling 2, cut before its last scans) is
 * smoothed here as libjpeg-turbo 3.x's source reads (rows after the cut use the previous
 * scan's coefficient status; neighbour rows as decompress_smooth_data picks them), and
 * libjpeg-turbo 2.1.5 gives different rows there (up to ~20/255 off; more where the cut
 * lies in an early scan). Complete files and files cut at the end of a scan in 4:4:4 match. */
#include "datasets/image/jpeg_internal.h"
#include <stdlib.h>
#include <string.h>

/* ---- inverse DCT ------------------------------------------------------------------ */

#define CONST_BITS 13
#define PASS1_BITS 2
/* round(x * 2^13) for the rotations of the LL&M butterfly */
enum { F0298 = 2446, F0390 = 3196, F0541 = 4433, F0765 = 6270, F0899 = 7373, F1175 = 9633,
       F1501 = 12299, F1847 = 15137, F1961 = 16069, F2053 = 16819, F2562 = 20995,
       F3072 = 25172 };

static inline int64_t descale(int64_t x, int n) { return (x + ((int64_t)1 << (n - 1))) >> n; }
static inline uint8_t clamp8(int64_t v) { return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v; }

/* y = 8-point IDCT of x, scaled by 2^13 * sqrt(8) (even part exact rotations, odd part
 * per LL&M figure 8; see the JPEG book by Pennebaker & Mitchell, ch. 4). */
static inline void idct8(const int64_t x[8], int64_t y[8]) {
  int64_t z1 = (x[2] + x[6]) * F0541;
  int64_t e2 = z1 - x[6] * F1847, e3 = z1 + x[2] * F0765;
  int64_t e0 = (x[0] + x[4]) * (1 << CONST_BITS), e1 = (x[0] - x[4]) * (1 << CONST_BITS);
  int64_t t10 = e0 + e3, t13 = e0 - e3, t11 = e1 + e2, t12 = e1 - e2;
  int64_t o0 = x[7], o1 = x[5], o2 = x[3], o3 = x[1];
  int64_t za = o0 + o3, zb = o1 + o2, zc = o0 + o2, zd = o1 + o3;
  int64_t z5 = (zc + zd) * F1175;
  o0 *= F0298; o1 *= F2053; o2 *= F3072; o3 *= F1501;
  za *= -F0899; zb *= -F2562; zc = zc * -F1961 + z5; zd = zd * -F0390 + z5;
  o0 += za + zc; o1 += zb + zd; o2 += zb + zc; o3 += za + zd;
  y[0] = t10 + o3; y[7] = t10 - o3;
  y[1] = t11 + o2; y[6] = t11 - o2;
  y[2] = t12 + o1; y[5] = t12 - o1;
  y[3] = t13 + o0; y[4] = t13 - o0;
}

/* coef: 64 quantized coefficients (natural order), q: quant table; 8x8 samples to out. */
static void idct_islow(const int16_t *coef, const uint16_t *q, uint8_t *out, size_t stride) {
  int32_t ws[64];
  int64_t x[8], y[8];
  for (int c = 0; c < 8; c++) {
    int ac = 0;
    for (int r = 1; r < 8; r++) ac |= coef[r * 8 + c];
    if (!ac) {  /* same result as the full butterfly, cheaper */
      int32_t dc = (int32_t)((int64_t)coef[c] * q[c] * (1 << PASS1_BITS));
      for (int r = 0; r < 8; r++) ws[r * 8 + c] = dc;
      continue;
    }
    for (int r = 0; r < 8; r++) x[r] = (int64_t)coef[r * 8 + c] * q[r * 8 + c];
    idct8(x, y);
    for (int r = 0; r < 8; r++) ws[r * 8 + c] = (int32_t)descale(y[r], CONST_BITS - PASS1_BITS);
  }
  for (int r = 0; r < 8; r++) {
    const int32_t *w = ws + r * 8;
    uint8_t *o = out + (size_t)r * stride;
    if (!(w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])) {
      memset(o, clamp8(descale(w[0], PASS1_BITS + 3) + 128), 8);
      continue;
    }
    for (int i = 0; i < 8; i++) x[i] = w[i];
    idct8(x, y);
    for (int i = 0; i < 8; i++) o[i] = clamp8(descale(y[i], CONST_BITS + PASS1_BITS + 3) + 128);
  }
}

/* ---- block smoothing ---------------------------------------------------------------- */

/* The coefficients estimated, in zigzag order 1..9 (natural positions below), and for
 * each the 5x5 kernel over neighbouring DC values: [0] when some of AC 1..9 are known,
 * [1] when none is ("change_dc" in libjpeg-turbo, which then also re-estimates DC). */
static const int smooth_pos[10] = {0, 1, 8, 16, 9, 2, 3, 10, 17, 24};
static const short smooth_k[10][2][5][5] = {
  {{{0}}, {{-2, -6, -8, -6, -2}, {-6, 6, 42, 6, -6}, {-8, 42, 152, 42, -8},
           {-6, 6, 42, 6, -6}, {-2, -6, -8, -6, -2}}},                         /* DC */
  {{{0}, {0}, {-7, 50, 0, -50, 7}, {0}, {0}},
   {{-1, -1, 0, 1, 1}, {-3, 13, 0, -13, 3}, {-3, 38, 0, -38, 3}, {-3, 13, 0, -13, 3},
    {-1, -1, 0, 1, 1}}},                                                      /* AC01 */
  {{{0, 0, -7, 0, 0}, {0, 0, 50, 0, 0}, {0}, {0, 0, -50, 0, 0}, {0, 0, 7, 0, 0}},
   {{-1, -3, -3, -3, -1}, {-1, 13, 38, 13, -1}, {0}, {1, -13, -38, -13, 1},
    {1, 3, 3, 3, 1}}},                                                        /* AC10 */
  {{{0, 0, -1, 0, 0}, {0, 0, 13, 0, 0}, {0, 0, -24, 0, 0}, {0, 0, 13, 0, 0}, {0, 0, -1, 0, 0}},
   {{0, 0, 1, 0, 0}, {0, 2, 7, 2, 0}, {0, -5, -14, -5, 0}, {0, 2, 7, 2, 0},
    {0, 0, 1, 0, 0}}},                                                        /* AC20 */
  {{{0, -1, 0, 1, 0}, {-1, 10, 0, -10, 1}, {0}, {1, -10, 0, 10, -1}, {0, 1, 0, -1, 0}},
   {{-1, 0, 0, 0, 1}, {0, 9, 0, -9, 0}, {0}, {0, -9, 0, 9, 0}, {1, 0, 0, 0, -1}}}, /* AC11 */
  {{{0}, {0}, {-1, 13, -24, 13, -1}, {0}, {0}},
   {{0}, {0, 2, -5, 2, 0}, {1, 7, -14, 7, 1}, {0, 2, -5, 2, 0}, {0}}},        /* AC02 */
  {{{0}}, {{0}, {0, 1, 0, -1, 0}, {0, 2, 0, -2, 0}, {0, 1, 0, -1, 0}, {0}}},  /* AC03 */
  {{{0}}, {{0}, {0, 1, -3, 1, 0}, {0}, {0, -1, 3, -1, 0}, {0}}},              /* AC12 */
  {{{0}}, {{0}, {0, 1, 0, -1, 0}, {0, -3, 0, 3, 0}, {0, 1, 0, -1, 0}, {0}}},  /* AC21 */
  {{{0}}, {{0}, {0, 1, 2, 1, 0}, {0}, {0, -1, -2, -1, 0}, {0}}},              /* AC30 */
};

/* Rounded num / (q * 256) toward zero, magnitude capped below 2^al when al > 0. */
static int16_t smooth_pred(int64_t num, int64_t q, int al) {
  int64_t p = (((q << 7) + (num >= 0 ? num : -num)) / (q << 8));
  if (al > 0 && p >= ((int64_t)1 << al)) p = ((int64_t)1 << al) - 1;
  return (int16_t)(num >= 0 ? p : -p);
}

/* libjpeg's smoothing_ok(): smoothing runs only when every component has a DC scan,
 * no zero divisor, and some coefficient 1..9 is incomplete somewhere. */
static int smoothing_ok(const vg_jpeg_frame *f) {
  int useful = 0;
  for (int ci = 0; ci < f->ncomp; ci++) {
    const vg_jpeg_comp *c = &f->comp[ci];
    if (!c->q_latched || c->coef_bits[0] < 0) return 0;
    for (int k = 0; k < 10; k++)
      if (c->q[smooth_pos[k]] == 0) return 0;
    for (int k = 1; k < 10; k++)
      if (c->coef_bits[k] != 0) useful = 1;
  }
  return useful;
}

/* IDCT of every real block of component ci with smoothing. Row neighbours follow
 * libjpeg-turbo's decompress_smooth_data exactly, including how it counts block rows in
 * the last iMCU row (rows clamp to the image in block units; columns clamp likewise). */
static void smooth_component(const vg_jpeg_frame *f, int ci, uint8_t *plane, size_t stride) {
  const vg_jpeg_comp *c = &f->comp[ci];
  int cur[10], prev[10];
  for (int k = 0; k < 10; k++) {
    cur[k] = c->coef_bits[k];
    prev[k] = f->scans > 1 ? c->prev_coef_bits[k] : -1;
  }
  int16_t ws[64];
  for (int br = 0; br < c->hib; br++) {
    int imcu = br / c->v, last = f->mcuy - 1;
    int brows = imcu < last ? c->v : (c->hib % c->v ? c->hib % c->v : c->v);
    int ibr = imcu * brows + br % c->v, ibrs = brows * f->mcuy;
    int rp = ibr > 0 ? br - 1 : br;
    int rpp = ibr > 1 ? br - 2 : rp;
    int rn = ibr < ibrs - 1 ? br + 1 : br;
    int rnn = ibr < ibrs - 2 ? br + 2 : rn;
    const int rows[5] = {rpp, rp, br, rn, rnn};
    const int *bits = imcu > f->last_good_row ? prev : cur;
    int change_dc = 1;
    for (int k = 1; k < 10; k++)
      if (bits[k] != -1) change_dc = 0;
    for (int bc = 0; bc < c->wib; bc++) {
      const int16_t *blk = c->coef + ((size_t)br * c->bw + bc) * 64;
      int dc[5][5];
      for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
          int col = bc + j - 2;
          col = col < 0 ? 0 : col >= c->wib ? c->wib - 1 : col;
          dc[i][j] = c->coef[((size_t)rows[i] * c->bw + col) * 64];
        }
      memcpy(ws, blk, sizeof ws);
      int nk = change_dc ? 10 : 6;
      for (int k = 1; k < nk; k++) {
        int pos = smooth_pos[k];
        if (bits[k] == 0 || ws[pos] != 0) continue;
        int64_t s = 0;
        for (int i = 0; i < 5; i++)
          for (int j = 0; j < 5; j++) s += (int64_t)smooth_k[k][change_dc][i][j] * dc[i][j];
        ws[pos] = smooth_pred((int64_t)c->q[0] * s, c->q[pos], bits[k]);
      }
      if (change_dc) {
        int64_t s = 0;
        for (int i = 0; i < 5; i++)
          for (int j = 0; j < 5; j++) s += (int64_t)smooth_k[0][1][i][j] * dc[i][j];
        ws[0] = smooth_pred((int64_t)c->q[0] * s, c->q[0], 0);
      }
      idct_islow(ws, c->q, plane + (size_t)br * 8 * stride + (size_t)bc * 8, stride);
    }
  }
}

/* ---- upsampling --------------------------------------------------------------------- */

typedef enum { UP_FULL, UP_H2V1, UP_H1V2, UP_H2V2, UP_REPL } up_mode;

static up_mode up_select(const vg_jpeg_frame *f, const vg_jpeg_comp *c, int fancy) {
  int h2 = c->h * 2 == f->hmax, v2 = c->v * 2 == f->vmax;
  if (c->h == f->hmax && c->v == f->vmax) return UP_FULL;
  if (h2 && c->v == f->vmax && fancy && c->dw > 2) return UP_H2V1;
  if (c->h == f->hmax && v2 && fancy) return UP_H1V2;
  if (h2 && v2 && fancy && c->dw > 2) return UP_H2V2;
  return UP_REPL;
}

int vg_jpeg_ratios_ok(const vg_jpeg_frame *f) {
  for (int ci = 0; ci < f->ncomp; ci++)
    if (f->hmax % f->comp[ci].h || f->vmax % f->comp[ci].v) return 0;
  return 1;
}

/* Output row y (W samples) of one component from its plane (stride bytes per row). */
static void up_row(const vg_jpeg_frame *f, const vg_jpeg_comp *c, up_mode m, const uint8_t *pl,
                   size_t stride, int y, uint8_t *dst, int *cs) {
  int W = f->w, dw = c->dw;
  switch (m) {
  case UP_FULL:
    memcpy(dst, pl + (size_t)y * stride, (size_t)W);
    return;
  case UP_REPL: {
    int hr = f->hmax / c->h, vr = f->vmax / c->v;
    const uint8_t *in = pl + (size_t)(y / vr) * stride;
    for (int x = 0; x < W; x++) dst[x] = in[x / hr];
    return;
  }
  case UP_H2V1: {  /* out[2i] = (3 in[i] + in[i-1] + 1) / 4, out[2i+1] = (3 in[i] + in[i+1] + 2) / 4 */
    const uint8_t *in = pl + (size_t)y * stride;
    for (int x = 0; x < W; x++) {
      int i = x >> 1;
      if (x & 1) dst[x] = (uint8_t)((3 * in[i] + in[i + 1 < dw ? i + 1 : i] + 2) >> 2);
      else dst[x] = (uint8_t)((3 * in[i] + in[i > 0 ? i - 1 : 0] + 1) >> 2);
    }
    return;
  }
  case UP_H1V2: {  /* nearer row 3/4, further row 1/4; bias 1 above, 2 below */
    int iy = y >> 1, fy = (y & 1) ? (iy + 1 < c->dh ? iy + 1 : iy) : (iy > 0 ? iy - 1 : 0);
    const uint8_t *a = pl + (size_t)iy * stride, *b = pl + (size_t)fy * stride;
    int bias = (y & 1) ? 2 : 1;
    for (int x = 0; x < W; x++) dst[x] = (uint8_t)((3 * a[x] + b[x] + bias) >> 2);
    return;
  }
  case UP_H2V2: {  /* column sums 3 near + far, then 3/4 1/4 across with biases 8 and 7 */
    int iy = y >> 1, fy = (y & 1) ? (iy + 1 < c->dh ? iy + 1 : iy) : (iy > 0 ? iy - 1 : 0);
    const uint8_t *a = pl + (size_t)iy * stride, *b = pl + (size_t)fy * stride;
    int n = (W + 1) / 2 + 1;
    if (n > dw) n = dw;
    for (int i = 0; i < n; i++) cs[i] = 3 * a[i] + b[i];
    for (int x = 0; x < W; x++) {
      int i = x >> 1;
      if (x & 1) dst[x] = (uint8_t)((3 * cs[i] + cs[i + 1 < dw ? i + 1 : i] + 7) >> 4);
      else dst[x] = (uint8_t)((3 * cs[i] + cs[i > 0 ? i - 1 : 0] + 8) >> 4);
    }
    return;
  }
  }
}

/* ---- colour ------------------------------------------------------------------------- */

typedef struct { int32_t cr_r[256], cb_b[256], cr_g[256], cb_g[256]; } ycc_tab;

/* libjpeg jdcolor.c: SCALEBITS 16, FIX(x) = round(x * 2^16), ONE_HALF = 2^15. */
static void ycc_init(ycc_tab *t) {
  const int64_t half = 1 << 15;
  for (int i = 0; i < 256; i++) {
    int64_t x = i - 128;
    t->cr_r[i] = (int32_t)((91881 * x + half) >> 16);   /* 1.40200 */
    t->cb_b[i] = (int32_t)((116130 * x + half) >> 16);  /* 1.77200 */
    t->cr_g[i] = (int32_t)(-46802 * x);                 /* -0.71414 */
    t->cb_g[i] = (int32_t)(-22554 * x + half);          /* -0.34414, rounding folded in */
  }
}

static inline void ycc_px(const ycc_tab *t, int y, int cb, int cr, uint8_t *r, uint8_t *g, uint8_t *b) {
  *r = clamp8(y + t->cr_r[cr]);
  *g = clamp8(y + ((t->cb_g[cb] + t->cr_g[cr]) >> 16));
  *b = clamp8(y + t->cb_b[cb]);
}

static inline uint8_t muldiv255(int a, int b) { int t = a * b + 128; return (uint8_t)(((t >> 8) + t) >> 8); }

/* ---- driver ------------------------------------------------------------------------- */

vg_status vg_jpeg_render(const vg_jpeg_frame *f, int fancy, int smoothing, vg_image *out) {
  int nc = f->ncomp, W = f->w, H = f->h, oc = nc == 1 ? 1 : 3;
  uint8_t *plane[4] = {0}, *row[4] = {0};
  size_t stride[4];
  int *cs = NULL;
  up_mode mode[4];
  vg_status st = VG_OK;
  int smooth = smoothing && f->progressive && smoothing_ok(f);
  for (int ci = 0; ci < nc; ci++) {
    const vg_jpeg_comp *c = &f->comp[ci];
    stride[ci] = (size_t)c->wib * 8;
    plane[ci] = malloc(stride[ci] * (size_t)c->hib * 8);
    row[ci] = malloc((size_t)W);
    if (!plane[ci] || !row[ci]) { st = vg_fail(VG_ERR_NOMEM, "jpeg: out of memory for sample planes"); goto done; }
    mode[ci] = up_select(f, c, fancy);
    if (smooth) { smooth_component(f, ci, plane[ci], stride[ci]); continue; }
    for (int br = 0; br < c->hib; br++)
      for (int bc = 0; bc < c->wib; bc++)
        idct_islow(c->coef + ((size_t)br * c->bw + bc) * 64, c->q,
                   plane[ci] + (size_t)br * 8 * stride[ci] + (size_t)bc * 8, stride[ci]);
  }
  cs = malloc(sizeof(int) * ((size_t)W / 2 + 2));
  out->data = malloc((size_t)W * H * oc);
  if (!cs || !out->data) { st = vg_fail(VG_ERR_NOMEM, "jpeg: out of memory for %dx%d image", W, H); goto done; }
  out->w = W; out->h = H; out->c = oc; out->depth = 8;
  ycc_tab t;
  if (f->cs == VG_JCS_YCC || f->cs == VG_JCS_YCCK) ycc_init(&t);
  for (int y = 0; y < H; y++) {
    for (int ci = 0; ci < nc; ci++)
      up_row(f, &f->comp[ci], mode[ci], plane[ci], stride[ci], y, row[ci], cs);
    uint8_t *o = (uint8_t *)out->data + (size_t)y * W * oc;
    switch (f->cs) {
    case VG_JCS_GREY:
      memcpy(o, row[0], (size_t)W);
      break;
    case VG_JCS_RGB:
      for (int x = 0; x < W; x++) { o[3 * x] = row[0][x]; o[3 * x + 1] = row[1][x]; o[3 * x + 2] = row[2][x]; }
      break;
    case VG_JCS_YCC:
      for (int x = 0; x < W; x++) ycc_px(&t, row[0][x], row[1][x], row[2][x], o + 3 * x, o + 3 * x + 1, o + 3 * x + 2);
      break;
    case VG_JCS_CMYK:
    case VG_JCS_YCCK:
      for (int x = 0; x < W; x++) {
        uint8_t cmy[3];
        if (f->cs == VG_JCS_YCCK) {  /* libjpeg: CMY = 255 - RGB(YCC) */
          uint8_t r, g, b;
          ycc_px(&t, row[0][x], row[1][x], row[2][x], &r, &g, &b);
          /* libjpeg range-limits 255 - (y + ...) directly; equal to 255 - clamp(...) */
          cmy[0] = (uint8_t)(255 - r); cmy[1] = (uint8_t)(255 - g); cmy[2] = (uint8_t)(255 - b);
        } else {
          cmy[0] = row[0][x]; cmy[1] = row[1][x]; cmy[2] = row[2][x];
        }
        /* Pillow reads the samples inverted (C' = 255 - C, K' = 255 - K), then
         * R = 255 - K' - C' * (255 - K') / 255 = K - (255 - C) * K / 255. */
        int nk = row[3][x];
        for (int k = 0; k < 3; k++) {
          int v = nk - muldiv255(255 - cmy[k], nk);
          o[3 * x + k] = (uint8_t)(v < 0 ? 0 : v);
        }
      }
      break;
    }
  }
done:
  for (int ci = 0; ci < 4; ci++) { free(plane[ci]); free(row[ci]); }
  free(cs);
  if (st != VG_OK) { free(out->data); out->data = NULL; }
  return st;
}
