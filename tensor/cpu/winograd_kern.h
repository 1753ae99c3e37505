/* winograd_kern.h — the Winograd input, output and filter transforms of F(4x4, 3x3) and
 * F(3x3, 4x4), written as loops over a row of tiles so the compiler vectorizes them;
 * included once per ISA (tensor/cpu/winograd.c, winograd_avx2.c, winograd_avx512.c) with
 * WK(name) naming the copy under a target pragma. Each transform is applied
 * rows-then-columns, plain multiplies and adds (no FMA contraction in ISO C mode), so every
 * ISA copy computes the same floats.
 *
 * Both variants evaluate at the points 0, 1, -1, 2, -2, inf (6x6 transformed tiles), so
 * they share the input transform B^T; A^T has m rows (p^0 .. p^(m-1), the inf column in the
 * last), G has r columns (row i: p_i^0 .. p_i^(r-1) over prod_(j != i) (p_i - p_j)).
 *
 * B^T (input, both)        A^T F(4x4,3x3)          A^T F(3x3,4x4)
 *   [4  0 -5  0  1  0]       [1  1  1  1  1  0]      [1  1  1  1  1  0]
 *   [0 -4 -4  1  1  0]       [0  1 -1  2 -2  0]      [0  1 -1  2 -2  0]
 *   [0  4 -4 -1  1  0]       [0  1  1  4  4  0]      [0  1  1  4  4  1]
 *   [0 -2 -1  2  1  0]       [0  1 -1  8 -8  1]
 *   [0  2 -1 -2  1  0]
 *   [0  4  0 -5  0  1]
 *
 * G F(4x4,3x3)                       G F(3x3,4x4)
 *   [ 1/4    0     0  ]                [ 1/4    0     0     0  ]
 *   [-1/6  -1/6  -1/6 ]                [-1/6  -1/6  -1/6  -1/6 ]
 *   [-1/6   1/6  -1/6 ]                [-1/6   1/6  -1/6   1/6 ]
 *   [1/24  1/12   1/6 ]                [1/24  1/12   1/6   1/3 ]
 *   [1/24 -1/12   1/6 ]                [1/24 -1/12   1/6  -1/3 ]
 *   [  0     0     1  ]                [  0     0     0     1  ]                        */

/* The row combinations as functions of restrict arrays (GCC honours restrict on parameters,
 * also once inlined, not on local pointers): o_i[q] = (B^T a)[i] with a_r = in_r[q*sa]. */
static inline void WK(wino_bt6)(const float *restrict a0, const float *restrict a1,
                                const float *restrict a2, const float *restrict a3,
                                const float *restrict a4, const float *restrict a5, int64_t sa,
                                float *restrict o0, float *restrict o1, float *restrict o2,
                                float *restrict o3, float *restrict o4, float *restrict o5, int64_t n) {
  for (int64_t q = 0; q < n; q++) {
    const float b0 = a0[q * sa], b1 = a1[q * sa], b2 = a2[q * sa], b3 = a3[q * sa], b4 = a4[q * sa],
                b5 = a5[q * sa];
    o0[q] = (4.0f * b0 - 5.0f * b2) + b4;
    o1[q] = (b3 + b4) - 4.0f * (b1 + b2);
    o2[q] = (b4 - b3) + 4.0f * (b1 - b2);
    o3[q] = (b4 - b2) + 2.0f * (b3 - b1);
    o4[q] = (b4 - b2) - 2.0f * (b3 - b1);
    o5[q] = (4.0f * b1 - 5.0f * b3) + b5;
  }
}

/* o_i[q] = (A^T a)[i] (+ bias, ReLU'd when relu; NaN kept) */
static inline void WK(wino_at4)(const float *restrict a0, const float *restrict a1,
                                const float *restrict a2, const float *restrict a3,
                                const float *restrict a4, const float *restrict a5, float bias,
                                int relu, float *restrict o0, float *restrict o1,
                                float *restrict o2, float *restrict o3, int64_t n) {
  for (int64_t q = 0; q < n; q++) {
    const float b1 = a1[q], b2 = a2[q], b3 = a3[q], b4 = a4[q];
    const float p12 = b1 + b2, n12 = b1 - b2, p34 = b3 + b4, n34 = b3 - b4;
    float r0 = ((a0[q] + p12) + p34) + bias;
    float r1 = (n12 + 2.0f * n34) + bias;
    float r2 = (p12 + 4.0f * p34) + bias;
    float r3 = ((n12 + 8.0f * n34) + a5[q]) + bias;
    if (relu) {
      r0 = r0 < 0.0f ? 0.0f : r0;
      r1 = r1 < 0.0f ? 0.0f : r1;
      r2 = r2 < 0.0f ? 0.0f : r2;
      r3 = r3 < 0.0f ? 0.0f : r3;
    }
    o0[q] = r0;
    o1[q] = r1;
    o2[q] = r2;
    o3[q] = r3;
  }
}

/* o_i[q] = (A^T a)[i] of F(3x3, 4x4) (+ bias, ReLU'd when relu; NaN kept) */
static inline void WK(wino_at3)(const float *restrict a0, const float *restrict a1,
                                const float *restrict a2, const float *restrict a3,
                                const float *restrict a4, const float *restrict a5, float bias,
                                int relu, float *restrict o0, float *restrict o1,
                                float *restrict o2, int64_t n) {
  for (int64_t q = 0; q < n; q++) {
    const float b1 = a1[q], b2 = a2[q], b3 = a3[q], b4 = a4[q];
    const float p12 = b1 + b2, n12 = b1 - b2, p34 = b3 + b4, n34 = b3 - b4;
    float r0 = ((a0[q] + p12) + p34) + bias;
    float r1 = (n12 + 2.0f * n34) + bias;
    float r2 = ((p12 + 4.0f * p34) + a5[q]) + bias;
    if (relu) {
      r0 = r0 < 0.0f ? 0.0f : r0;
      r1 = r1 < 0.0f ? 0.0f : r1;
      r2 = r2 < 0.0f ? 0.0f : r2;
    }
    o0[q] = r0;
    o1[q] = r1;
    o2[q] = r2;
  }
}

/* o_i[q] = (G a)[i] over three rows */
static inline void WK(wino_g6)(const float *restrict a0, const float *restrict a1,
                               const float *restrict a2, float *restrict o0, float *restrict o1,
                               float *restrict o2, float *restrict o3, float *restrict o4,
                               float *restrict o5, int64_t n) {
  const float s6 = 1.0f / 6.0f, s24 = 1.0f / 24.0f;
  for (int64_t q = 0; q < n; q++) {
    const float a = a0[q], b = a1[q], d = a2[q];
    o0[q] = 0.25f * a;
    o1[q] = -((a + b) + d) * s6;
    o2[q] = -((a - b) + d) * s6;
    o3[q] = ((a + 2.0f * b) + 4.0f * d) * s24;
    o4[q] = ((a - 2.0f * b) + 4.0f * d) * s24;
    o5[q] = d;
  }
}

/* o_i[q] = (G a)[i] of F(3x3, 4x4) over four rows */
static inline void WK(wino_g6x4)(const float *restrict a0, const float *restrict a1,
                                 const float *restrict a2, const float *restrict a3,
                                 float *restrict o0, float *restrict o1, float *restrict o2,
                                 float *restrict o3, float *restrict o4, float *restrict o5, int64_t n) {
  const float s6 = 1.0f / 6.0f, s24 = 1.0f / 24.0f;
  for (int64_t q = 0; q < n; q++) {
    const float a = a0[q], b = a1[q], c = a2[q], d = a3[q];
    o0[q] = 0.25f * a;
    o1[q] = -(((a + b) + c) + d) * s6;
    o2[q] = -(((a - b) + c) - d) * s6;
    o3[q] = (((a + 2.0f * b) + 4.0f * c) + 8.0f * d) * s24;
    o4[q] = (((a - 2.0f * b) + 4.0f * c) - 8.0f * d) * s24;
    o5[q] = d;
  }
}

/* One channel, one row of TX tiles of step m (4: F(4x4,3x3), 3: F(3x3,4x4)): the 6 input
 * rows iy0..iy0+5 (zero outside the image), columns ix0 + m*tx + 0..5 of tile tx; writes
 * V[xi*vs + tx] for xi = 6*i + j. buf: 12*m*(TX+1) floats. */
void WK(wino_in_row)(const float *xc, int64_t H, int64_t W, int64_t iy0, int64_t ix0,
                     int64_t TX, int m, float *restrict buf, float *restrict V, int64_t vs) {
  const int64_t Q = TX + 1, WP = m * Q;
  float *restrict d = buf;           /* 6 padded input rows of WP */
  float *restrict e = buf + 6 * WP;  /* e[(i*m + phase)*Q + q] = (B^T d)[i][m*q + phase] */
  for (int r = 0; r < 6; r++) {
    float *dr = d + r * WP;
    const int64_t iy = iy0 + r;
    if (iy < 0 || iy >= H) {
      memset(dr, 0, (size_t)WP * sizeof(float));
      continue;
    }
    int64_t lo = -ix0, hi = W - ix0;
    lo = lo < 0 ? 0 : lo > WP ? WP : lo;
    hi = hi < lo ? lo : hi > WP ? WP : hi;
    memset(dr, 0, (size_t)lo * sizeof(float));
    memcpy(dr + lo, xc + iy * W + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
    memset(dr + hi, 0, (size_t)(WP - hi) * sizeof(float));
  }
  const float *d0 = d, *d1 = d + WP, *d2 = d + 2 * WP, *d3 = d + 3 * WP, *d4 = d + 4 * WP, *d5 = d + 5 * WP;
  for (int ph = 0; ph < m; ph++)
    WK(wino_bt6)(d0 + ph, d1 + ph, d2 + ph, d3 + ph, d4 + ph, d5 + ph, m, e + (0 * m + ph) * Q,
                 e + (1 * m + ph) * Q, e + (2 * m + ph) * Q, e + (3 * m + ph) * Q, e + (4 * m + ph) * Q,
                 e + (5 * m + ph) * Q, Q);
  for (int i = 0; i < 6; i++) {
    const float *col[6];             /* column k of tile t: phase k % m, offset k / m */
    for (int k = 0; k < 6; k++) col[k] = e + (i * m + k % m) * Q + k / m;
    float *v = V + 6 * i * vs;
    WK(wino_bt6)(col[0], col[1], col[2], col[3], col[4], col[5], 1, v, v + vs, v + 2 * vs, v + 3 * vs,
                 v + 4 * vs, v + 5 * vs, TX);
  }
}

/* One output channel, one row of TX tiles: m[xi*ms + tx] (xi = 6*i + j) -> output rows
 * oy0..oy0+3 (those < oh), columns 4*tx + 0..3 (those < ow), plus bias, ReLU'd when relu
 * (NaN kept). buf: 24*TX + 8*TX floats. */
void WK(wino_out_row)(const float *m, int64_t ms, int64_t TX, float bias, int relu,
                      float *yc, int64_t oh, int64_t ow, int64_t oy0, float *restrict buf) {
  float *restrict s = buf;             /* s[(i*6 + j)*TX + t] = (A^T m)[i][j] */
  float *restrict row = buf + 24 * TX; /* one output row, 4*TX wide */
  for (int j = 0; j < 6; j++)
    WK(wino_at4)(m + j * ms, m + (6 + j) * ms, m + (12 + j) * ms, m + (18 + j) * ms, m + (24 + j) * ms,
                 m + (30 + j) * ms, 0.0f, 0, s + j * TX, s + (6 + j) * TX, s + (12 + j) * TX,
                 s + (18 + j) * TX, TX);
  float *o = row + 4 * TX;             /* the 4 output columns of each tile, then interleaved */
  for (int i = 0; i < 4 && oy0 + i < oh; i++) {
    const float *q = s + 6 * i * TX;
    WK(wino_at4)(q, q + TX, q + 2 * TX, q + 3 * TX, q + 4 * TX, q + 5 * TX, bias, relu, o, o + TX,
                 o + 2 * TX, o + 3 * TX, TX);
    for (int64_t t = 0; t < TX; t++) {
      row[4 * t + 0] = o[t];
      row[4 * t + 1] = o[TX + t];
      row[4 * t + 2] = o[2 * TX + t];
      row[4 * t + 3] = o[3 * TX + t];
    }
    memcpy(yc + (oy0 + i) * ow, row, (size_t)ow * sizeof(float));
  }
}

/* The same for F(3x3, 4x4): output rows oy0..oy0+2, columns 3*tx + 0..2. buf: 24*TX floats. */
void WK(wino_out_row3)(const float *m, int64_t ms, int64_t TX, float bias, int relu,
                       float *yc, int64_t oh, int64_t ow, int64_t oy0, float *restrict buf) {
  float *restrict s = buf;             /* s[(i*6 + j)*TX + t] = (A^T m)[i][j], i < 3 */
  float *restrict row = buf + 18 * TX; /* one output row, 3*TX wide */
  for (int j = 0; j < 6; j++)
    WK(wino_at3)(m + j * ms, m + (6 + j) * ms, m + (12 + j) * ms, m + (18 + j) * ms, m + (24 + j) * ms,
                 m + (30 + j) * ms, 0.0f, 0, s + j * TX, s + (6 + j) * TX, s + (12 + j) * TX, TX);
  float *o = row + 3 * TX;
  for (int i = 0; i < 3 && oy0 + i < oh; i++) {
    const float *q = s + 6 * i * TX;
    WK(wino_at3)(q, q + TX, q + 2 * TX, q + 3 * TX, q + 4 * TX, q + 5 * TX, bias, relu, o, o + TX,
                 o + 2 * TX, TX);
    for (int64_t t = 0; t < TX; t++) {
      row[3 * t + 0] = o[t];
      row[3 * t + 1] = o[TX + t];
      row[3 * t + 2] = o[2 * TX + t];
    }
    memcpy(yc + (oy0 + i) * ow, row, (size_t)ow * sizeof(float));
  }
}

/* Filter transform for output channels o0 .. o0+on-1 (on <= 64), one input channel c, an
 * r x r kernel (r = 3: G of F(4x4,3x3), r = 4: G of F(3x3,4x4)):
 * U[xi*plane + c*OC + o] = (G w[o][c] G^T)[i][j] in float (applied as (a + 2b + 4c) / 24
 * etc.). The signature is wino_filter_grad's, its adjoint. */
void WK(wino_filter)(const float *w, int64_t C, int64_t OC, int64_t c, int64_t o0, int on, int r,
                     float *restrict U, int64_t plane) {
  float k[16][64], t[24][64];
  const int rr = r * r;
  for (int q = 0; q < rr; q++)
    for (int u = 0; u < on; u++) k[q][u] = w[((o0 + u) * C + c) * rr + q];
  for (int q = 0; q < r; q++)     /* column q of G g: t[r*i + q] = (G g)[i][q] */
    if (r == 3)
      WK(wino_g6)(k[q], k[3 + q], k[6 + q], t[q], t[3 + q], t[6 + q], t[9 + q], t[12 + q], t[15 + q], on);
    else
      WK(wino_g6x4)(k[q], k[4 + q], k[8 + q], k[12 + q], t[q], t[4 + q], t[8 + q], t[12 + q], t[16 + q],
                    t[20 + q], on);
  for (int i = 0; i < 6; i++) {
    float *u = U + 6 * i * plane + c * OC + o0;
    const float *ti = t[r * i];
    if (r == 3)
      WK(wino_g6)(ti, t[3 * i + 1], t[3 * i + 2], u, u + plane, u + 2 * plane, u + 3 * plane, u + 4 * plane,
                  u + 5 * plane, on);
    else
      WK(wino_g6x4)(ti, t[4 * i + 1], t[4 * i + 2], t[4 * i + 3], u, u + plane, u + 2 * plane, u + 3 * plane,
                    u + 4 * plane, u + 5 * plane, on);
  }
}

/* ---- weight gradient: dU[xi][c][o] = sum_t V[xi][c][t] Gm[xi][o][t] with Gm = A gy A^T
 * (the adjoint of the output transform), then gw = G^T dU G (the adjoint of the filter
 * transform). A = (A^T)^T is 6 x m: row p of A applied to a_0..a_(m-1) is
 * sum_k p^k a_k at p = 0, 1, -1, 2, -2 and a_(m-1) at inf. ---- */

/* o_p[q] = (A a)[p] over m = 4 rows */
static inline void WK(wino_a4)(const float *restrict a0, const float *restrict a1,
                               const float *restrict a2, const float *restrict a3,
                               float *restrict o0, float *restrict o1, float *restrict o2,
                               float *restrict o3, float *restrict o4, float *restrict o5, int64_t n) {
  for (int64_t q = 0; q < n; q++) {
    const float a = a0[q], b = a1[q], c = a2[q], d = a3[q];
    const float pe = a + c, po = b + d, qe = a + 4.0f * c, qo = 2.0f * b + 8.0f * d;
    o0[q] = a;
    o1[q] = pe + po;
    o2[q] = pe - po;
    o3[q] = qe + qo;
    o4[q] = qe - qo;
    o5[q] = d;
  }
}

/* o_p[q] = (A a)[p] over m = 3 rows */
static inline void WK(wino_a3)(const float *restrict a0, const float *restrict a1,
                               const float *restrict a2, float *restrict o0, float *restrict o1,
                               float *restrict o2, float *restrict o3, float *restrict o4,
                               float *restrict o5, int64_t n) {
  for (int64_t q = 0; q < n; q++) {
    const float a = a0[q], b = a1[q], c = a2[q];
    const float pe = a + c, qe = a + 4.0f * c, qo = 2.0f * b;
    o0[q] = a;
    o1[q] = pe + b;
    o2[q] = pe - b;
    o3[q] = qe + qo;
    o4[q] = qe - qo;
    o5[q] = c;
  }
}

/* One output channel's gradient gyc (oh x ow), one row of TX tiles of step m: rows
 * oy0..oy0+m-1, columns m*tx + 0..m-1 (zero outside), writes Gm[xi*gs + tx] = (A g A^T)[i][j].
 * buf: 6*m*TX + m*m*TX floats. */
void WK(wino_gy_row)(const float *gyc, int64_t oh, int64_t ow, int64_t oy0, int64_t TX, int m,
                     float *restrict buf, float *restrict Gm, int64_t gs) {
  float *restrict g = buf;                 /* g[(r*m + k)*TX + t] = gy[oy0+r][m*t + k] */
  float *restrict h = buf + m * m * TX;    /* h[(p*m + k)*TX + t] = (A g)[p][k] of tile t */
  for (int r = 0; r < m; r++)
    for (int k = 0; k < m; k++) {
      float *d = g + (r * m + k) * TX;
      const int64_t oy = oy0 + r;
      for (int64_t t = 0; t < TX; t++) {
        const int64_t ox = m * t + k;
        d[t] = oy < oh && ox < ow ? gyc[oy * ow + ox] : 0.0f;
      }
    }
  for (int k = 0; k < m; k++) {            /* columns: combine the m rows */
    float *o = h + k * TX;
    const int64_t s = (int64_t)m * TX;
    if (m == 4)
      WK(wino_a4)(g + k * TX, g + (m + k) * TX, g + (2 * m + k) * TX, g + (3 * m + k) * TX, o, o + s, o + 2 * s,
                  o + 3 * s, o + 4 * s, o + 5 * s, TX);
    else
      WK(wino_a3)(g + k * TX, g + (m + k) * TX, g + (2 * m + k) * TX, o, o + s, o + 2 * s, o + 3 * s, o + 4 * s,
                  o + 5 * s, TX);
  }
  for (int p = 0; p < 6; p++) {            /* rows: combine the m columns */
    const float *a = h + p * m * TX;
    float *o = Gm + 6 * p * gs;
    if (m == 4)
      WK(wino_a4)(a, a + TX, a + 2 * TX, a + 3 * TX, o, o + gs, o + 2 * gs, o + 3 * gs, o + 4 * gs, o + 5 * gs, TX);
    else
      WK(wino_a3)(a, a + TX, a + 2 * TX, o, o + gs, o + 2 * gs, o + 3 * gs, o + 4 * gs, o + 5 * gs, TX);
  }
}

/* o_k[q] = (G^T a)[k] for k < r (r = 3 or 4): G's column k is p_i^k / N_i at the
 * points p = 0, 1, -1, 2, -2 (N = 4, -6, -6, 24, 24) and 1 at inf for k = r - 1 */
static inline void WK(wino_gt)(const float *restrict a0, const float *restrict a1,
                               const float *restrict a2, const float *restrict a3,
                               const float *restrict a4, const float *restrict a5, int r,
                               float *restrict o0, float *restrict o1, float *restrict o2,
                               float *restrict o3, int64_t n) {
  const float s6 = 1.0f / 6.0f, s24 = 1.0f / 24.0f;
  for (int64_t q = 0; q < n; q++) {
    const float u0 = a0[q], u1 = a1[q], u2 = a2[q], u3 = a3[q], u4 = a4[q], u5 = a5[q];
    const float p12 = u1 + u2, n12 = u2 - u1, p34 = u3 + u4, n34 = u3 - u4;
    const float k0 = (0.25f * u0 - p12 * s6) + p34 * s24;
    const float k1 = n12 * s6 + n34 * (2.0f * s24);
    const float k2 = p34 * s6 - p12 * s6;
    const float k3 = n12 * s6 + n34 * (8.0f * s24);
    o0[q] = k0;
    o1[q] = k1;
    if (r == 3) {
      o2[q] = k2 + u5;
    } else {
      o2[q] = k2;
      o3[q] = k3 + u5;
    }
  }
}

/* gw[o][c] (r x r) = G^T dU[.][c][o] G for output channels o0 .. o0+on-1 (on <= 64), one
 * input channel c; dU[xi*plane + c*OC + o]. */
void WK(wino_filter_grad)(const float *dU, int64_t C, int64_t OC, int64_t c, int64_t o0, int on, int r,
                          float *restrict gw, int64_t plane) {
  float u[36][64], t[24][64], k[16][64], unused[64];
  for (int xi = 0; xi < 36; xi++) memcpy(u[xi], dU + xi * plane + c * OC + o0, (size_t)on * sizeof(float));
  for (int j = 0; j < 6; j++)     /* columns j: t[a*6 + j] = (G^T u)[a][j] */
    WK(wino_gt)(u[j], u[6 + j], u[12 + j], u[18 + j], u[24 + j], u[30 + j], r, t[j], t[6 + j], t[12 + j],
                r == 4 ? t[18 + j] : unused, on);
  for (int a = 0; a < r; a++)     /* rows a: k[a*r + b] = (t G)[a][b] */
    WK(wino_gt)(t[6 * a], t[6 * a + 1], t[6 * a + 2], t[6 * a + 3], t[6 * a + 4], t[6 * a + 5], r, k[a * r],
                k[a * r + 1], k[a * r + 2], r == 4 ? k[a * r + 3] : unused, on);
  const int rr = r * r;
  for (int q = 0; q < rr; q++)
    for (int v = 0; v < on; v++) gw[((o0 + v) * C + c) * rr + q] = k[q][v];
}
