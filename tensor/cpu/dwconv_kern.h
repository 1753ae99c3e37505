/* dwconv_kern.h — the depthwise-convolution row kernels, included once per ISA
 * (tensor/cpu/dwconv.c scalar, dwconv_avx2.c, dwconv_avx512.c) with DK(name) naming the copy.
 * All loops are elementwise over output columns (no reductions, no contraction: -std=c11
 * keeps -ffp-contract=off), so every copy computes the same floats.
 *
 * Buffers are the padded, column-phase-split planes of tensor/cpu/dwconv.c: padded row r,
 * phase q (0 <= q < sw) at buf + (r*sw + q)*L holds padded columns q, q+sw, q+2sw, ...; the
 * input of output (oy, ox) under tap (ki, kj) is then tap(oy, ki, kj)[ox], contiguous in ox. */

static inline const float *DK(dw_tap)(const float *buf, const vg_conv2d_geom *g, int64_t L, int64_t oy,
                                       int64_t ki, int64_t kj) {
  const int64_t col = kj * g->dw;
  return buf + ((oy * g->sh + ki * g->dh) * g->sw + col % g->sw) * L + col / g->sw;
}

/* [lo, hi): the indices j of phase q whose padded column j*sw + q is a column of x */
static inline void DK(dw_phase_span)(const vg_conv2d_geom *g, int64_t L, int64_t q, int64_t *lo, int64_t *hi) {
  const int64_t sw = g->sw, first = g->pw - q, last = g->w - 1 + g->pw - q;   /* j*sw in [first, last] */
  *lo = first <= 0 ? 0 : (first + sw - 1) / sw;
  *hi = last < 0 ? 0 : last / sw + 1;
  if (*hi > L) *hi = L;
  if (*hi < *lo) *hi = *lo;
}

/* the padded, phase-split copy of one input plane xc (h x w) */
static void DK(dw_pad)(const vg_conv2d_geom *g, int64_t L, const float *xc, float *buf) {
  const int64_t H = g->h, W = g->w, sw = g->sw, ph = g->ph, pw = g->pw;
  memset(buf, 0, vg_dw_plane_floats(g) * sizeof(float));
  if (sw == 1) {
    for (int64_t iy = 0; iy < H; iy++) memcpy(buf + (iy + ph) * L + pw, xc + iy * W, (size_t)W * sizeof(float));
    return;
  }
  int64_t lo[4], hi[4];
  for (int64_t q = 0; q < sw; q++) DK(dw_phase_span)(g, L, q, &lo[q], &hi[q]);
  for (int64_t iy = 0; iy < H; iy++) {
    const float *src = xc + iy * W;
    float *row = buf + (iy + ph) * sw * L;
    if (sw == 2) {                  /* column c = ix + pw: phase c & 1, index c >> 1 */
      float *restrict e = row + (pw & 1) * L + (pw >> 1), *restrict o = row + (1 - (pw & 1)) * L + ((pw + 1) >> 1);
      const float *restrict s = src;
      const int64_t half = W / 2;
      for (int64_t t = 0; t < half; t++) { e[t] = s[2 * t]; o[t] = s[2 * t + 1]; }
      if (W & 1) e[half] = s[W - 1];
      continue;
    }
    for (int64_t q = 0; q < sw; q++) {
      float *restrict d = row + q * L;
      const float *restrict sp = src + q - pw;       /* sp[j*sw] = x column j*sw + q - pw */
      for (int64_t j = lo[q]; j < hi[q]; j++) d[j] = sp[j * sw];
    }
  }
}

/* the interior of a padded, phase-split plane back into gxc (h x w) */
static void DK(dw_unpad)(const vg_conv2d_geom *g, int64_t L, const float *buf, float *gxc) {
  const int64_t H = g->h, W = g->w, sw = g->sw, ph = g->ph, pw = g->pw;
  int64_t lo[4], hi[4];
  for (int64_t q = 0; q < sw; q++) DK(dw_phase_span)(g, L, q, &lo[q], &hi[q]);
  for (int64_t iy = 0; iy < H; iy++) {
    float *dst = gxc + iy * W;
    const float *row = buf + (iy + ph) * sw * L;
    if (sw == 1) {
      memcpy(dst, row + pw, (size_t)W * sizeof(float));
      continue;
    }
    if (sw == 2) {
      const float *restrict e = row + (pw & 1) * L + (pw >> 1), *restrict o = row + (1 - (pw & 1)) * L + ((pw + 1) >> 1);
      float *restrict d = dst;
      const int64_t half = W / 2;
      for (int64_t t = 0; t < half; t++) { d[2 * t] = e[t]; d[2 * t + 1] = o[t]; }
      if (W & 1) d[W - 1] = e[half];
      continue;
    }
    for (int64_t q = 0; q < sw; q++) {
      const float *restrict sr = row + q * L;
      float *restrict dp = dst + q - pw;
      for (int64_t j = lo[q]; j < hi[q]; j++) dp[j * sw] = sr[j];
    }
  }
}

/* y[0..n) (=, or += when acc) sum of the three taps, in tap order */
static void DK(dw_pass3)(float *restrict y, const float *restrict a, const float *restrict b,
                         const float *restrict c, float wa, float wb, float wc, int64_t n, int acc) {
  if (acc)
    for (int64_t i = 0; i < n; i++) {
      float t = y[i];
      t += wa * a[i]; t += wb * b[i]; t += wc * c[i];
      y[i] = t;
    }
  else
    for (int64_t i = 0; i < n; i++) {
      float t = wa * a[i];
      t += wb * b[i]; t += wc * c[i];
      y[i] = t;
    }
}

static void DK(dw_pass5)(float *restrict y, const float *restrict a, const float *restrict b,
                         const float *restrict c, const float *restrict d, const float *restrict e,
                         const float *wt, int64_t n, int acc) {
  const float wa = wt[0], wb = wt[1], wc = wt[2], wd = wt[3], we = wt[4];
  if (acc)
    for (int64_t i = 0; i < n; i++) {
      float t = y[i];
      t += wa * a[i]; t += wb * b[i]; t += wc * c[i]; t += wd * d[i]; t += we * e[i];
      y[i] = t;
    }
  else
    for (int64_t i = 0; i < n; i++) {
      float t = wa * a[i];
      t += wb * b[i]; t += wc * c[i]; t += wd * d[i]; t += we * e[i];
      y[i] = t;
    }
}

static void DK(dw_pass1)(float *restrict y, const float *restrict a, float wa, int64_t n, int acc) {
  if (acc)
    for (int64_t i = 0; i < n; i++) y[i] += wa * a[i];
  else
    for (int64_t i = 0; i < n; i++) y[i] = wa * a[i];
}

/* 3x3 in one pass: nine taps summed in (ki, kj) order, then bias and ReLU */
static void DK(dw_row9)(float *restrict y, const float *restrict p0, const float *restrict p1,
                        const float *restrict p2, const float *restrict p3, const float *restrict p4,
                        const float *restrict p5, const float *restrict p6, const float *restrict p7,
                        const float *restrict p8, const float *w, float bias, int relu, int64_t n) {
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];
  for (int64_t i = 0; i < n; i++) {
    float t = w0 * p0[i];
    t += w1 * p1[i]; t += w2 * p2[i];
    t += w3 * p3[i]; t += w4 * p4[i]; t += w5 * p5[i];
    t += w6 * p6[i]; t += w7 * p7[i]; t += w8 * p8[i];
    t += bias;
    y[i] = relu && t < 0.0f ? 0.0f : t;
  }
}

static void DK(dw_epilogue)(float *restrict y, float bias, int relu, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float t = y[i] + bias;
    y[i] = relu && t < 0.0f ? 0.0f : t;
  }
}

static void DK(dw_taps)(const float *buf, const vg_conv2d_geom *g, int64_t L, int64_t oy, const float *w,
                        float bias, int relu, float *yr, int64_t n);

/* One output plane y (oh x ow) from one input plane xc; buf: vg_dw_fwd_scratch_floats. */
void DK(dw_fwd_plane)(const float *xc, const float *w, float bias, int relu, const vg_conv2d_geom *g,
                      int64_t L, float *buf, float *y) {
  const int64_t ow = g->ow;
  DK(dw_pad)(g, L, xc, buf);
  if (g->sh == 1 && g->sw == 1) {
    /* stride 1: output row oy at pitch L reads the padded rows at the same pitch, so the whole
     * plane is one row of (oh - 1)*L + ow pixels (the L - ow pixels between rows are computed
     * and dropped); each output pixel gets the same float operations as row by row */
    const int64_t n = (g->oh - 1) * L + ow;
    float *yf = ow == L ? y : buf + vg_dw_plane_floats(g);
    DK(dw_taps)(buf, g, L, 0, w, bias, relu, yf, n);
    if (yf != y)
      for (int64_t oy = 0; oy < g->oh; oy++) memcpy(y + oy * ow, yf + oy * L, (size_t)ow * sizeof(float));
    return;
  }
  for (int64_t oy = 0; oy < g->oh; oy++) DK(dw_taps)(buf, g, L, oy, w, bias, relu, y + oy * ow, ow);
}

/* n outputs from the taps of output row oy (n > ow: the flat stride-1 plane) */
static void DK(dw_taps)(const float *buf, const vg_conv2d_geom *g, int64_t L, int64_t oy, const float *w,
                        float bias, int relu, float *yr, int64_t n) {
  const int64_t kh = g->kh, kw = g->kw;
#define T(ki, kj) DK(dw_tap)(buf, g, L, oy, ki, kj)
  if (kh == 3 && kw == 3) {
    DK(dw_row9)(yr, T(0, 0), T(0, 1), T(0, 2), T(1, 0), T(1, 1), T(1, 2), T(2, 0), T(2, 1), T(2, 2), w, bias, relu, n);
    return;
  }
  for (int64_t ki = 0; ki < kh; ki++) {
    const float *wr = w + ki * kw;
    if (kw == 5)
      DK(dw_pass5)(yr, T(ki, 0), T(ki, 1), T(ki, 2), T(ki, 3), T(ki, 4), wr, n, ki > 0);
    else if (kw == 3)
      DK(dw_pass3)(yr, T(ki, 0), T(ki, 1), T(ki, 2), wr[0], wr[1], wr[2], n, ki > 0);
    else
      for (int64_t kj = 0; kj < kw; kj++) DK(dw_pass1)(yr, T(ki, kj), wr[kj], n, ki > 0 || kj > 0);
  }
#undef T
  DK(dw_epilogue)(yr, bias, relu, n);
}

/* bwd_data: scatter gy (oh x ow) times each tap into the zeroed padded plane buf (+=), in
 * (oy, ki, kj) order, then its interior out to gx. */
void DK(dw_bwd_plane)(const float *gy, const float *w, const vg_conv2d_geom *g, int64_t L, float *buf,
                      float *gx) {
  const int64_t ow = g->ow;
  memset(buf, 0, vg_dw_plane_floats(g) * sizeof(float));
  for (int64_t oy = 0; oy < g->oh; oy++) {
    const float *restrict gr = gy + oy * ow;
    for (int64_t ki = 0; ki < g->kh; ki++)
      for (int64_t kj = 0; kj < g->kw; kj++) {
        float *restrict q = (float *)DK(dw_tap)(buf, g, L, oy, ki, kj);
        const float wv = w[ki * g->kw + kj];
        for (int64_t i = 0; i < ow; i++) q[i] += wv * gr[i];
      }
  }
  DK(dw_unpad)(g, L, buf, gx);
}

/* bwd_weight: lanes[tap][16] += gy * tap input, lane i%16 for column i (row by row). */
void DK(dw_wgrad_plane)(const float *gy, const float *xc, const vg_conv2d_geom *g, int64_t L, float *buf,
                        float *lanes) {
  const int64_t ow = g->ow, full = ow / 16 * 16, rem = ow - full;
  DK(dw_pad)(g, L, xc, buf);
  for (int64_t oy = 0; oy < g->oh; oy++) {
    const float *restrict gr = gy + oy * ow;
    for (int64_t ki = 0; ki < g->kh; ki++)
      for (int64_t kj = 0; kj < g->kw; kj++) {
        const float *restrict p = DK(dw_tap)(buf, g, L, oy, ki, kj);
        float s[16];
        float *ln = lanes + (ki * g->kw + kj) * 16;
        for (int q = 0; q < 16; q++) s[q] = ln[q];
        for (int64_t i = 0; i < full; i += 16)
          for (int q = 0; q < 16; q++) s[q] += gr[i + q] * p[i + q];
        for (int64_t q = 0; q < rem; q++) s[q] += gr[full + q] * p[full + q];
        for (int q = 0; q < 16; q++) ln[q] = s[q];
      }
  }
}
