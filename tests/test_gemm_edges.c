/* test_gemm_edges — the GEMM pieces at their edges, checked bit-exactly:
 *  1. the AVX-512 micro-kernel on every partial tile (m = 1..12 rows, n = 1..32 columns),
 *     for kc below and above its C-prefetch point, alpha / beta / bias combinations,
 *     against the same arithmetic in scalar C (one fmaf chain per element, then
 *     alpha * acc, + beta * C, + bias); C outside the m x n corner must stay untouched;
 *  2. the strided packer (vg_gemm_pack_strided) against its definition, for the transposing
 *     path (sk == 1, widths multiple of 4), the row-copy path (sx == 1, widths 8/16/32 with a
 *     partial last sliver) and the others;
 *  3. conv forward through the patch packer where slivers cross output rows (ow < 32 and
 *     ow not dividing the sliver), with padding, dilation and strides, on small integer
 *     data (every sum exact in float): the result must equal the direct loop exactly. */
#include "tests/vgtest.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/gemm_kernels.h"
#include "tensor/cpu/conv.h"
#include "tensor/cpu/isa.h"
#include "base/threadpool.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) {      /* [-1, 1) */
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static float irand(int lo, int hi) {   /* an integer in [lo, hi] */
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (float)(lo + (int)((rng >> 33) % (uint64_t)(hi - lo + 1)));
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* 1. the AVX-512 micro-kernel's edge tiles */
static void check_ukr_avx512(void) {
  if (vg_cpu_isa_max() < VG_ISA_AVX512) {
    printf("SKIP avx512 micro-kernel edges: no AVX-512 on this CPU\n");
    return;
  }
  enum { MR = VG_UKR_AVX512_MR, NR = VG_UKR_AVX512_NR, LDC = 40, KMAX = 61 };
  static float a[KMAX * MR], b[KMAX * NR] __attribute__((aligned(64)));
  float c[(MR + 2) * LDC], want[(MR + 2) * LDC], bias[MR];
  for (int i = 0; i < KMAX * MR; i++) a[i] = frand();
  for (int i = 0; i < KMAX * NR; i++) b[i] = frand();
  for (int i = 0; i < MR; i++) bias[i] = frand();
  static const int kcs[] = {1, 3, 4, 24, 25, 29, 48, 61};   /* around PF_AHEAD (24) and the 4-unroll */
  static const float alphas[] = {1.0f, 0.5f}, betas[] = {0.0f, 1.0f, -0.75f};
  long cases = 0, bad = 0, touched = 0;
  for (int ki = 0; ki < (int)(sizeof kcs / sizeof kcs[0]); ki++)
    for (int m = 1; m <= MR; m++)
      for (int n = 1; n <= NR; n++)
        for (int ai = 0; ai < 2; ai++)
          for (int bi = 0; bi < 3; bi++)
            for (int hb = 0; hb < 2; hb++) {
              const int kc = kcs[ki];
              const float alpha = alphas[ai], beta = betas[bi];
              const float *bs = hb ? bias : NULL;
              for (int i = 0; i < (MR + 2) * LDC; i++) c[i] = want[i] = frand();
              /* the sentinel rows and columns around the corner must not change */
              for (int r = 0; r < m; r++)
                for (int t = 0; t < n; t++) {
                  float acc = 0.0f;
                  for (int k = 0; k < kc; k++) acc = fmaf(a[k * MR + r], b[k * NR + t], acc);
                  float v = alpha * acc;
                  if (beta != 0.0f) v = v + beta * want[r * LDC + t];
                  if (bs) v = v + bs[r];
                  want[r * LDC + t] = v;
                }
              vg_gemm_ukr_avx512(kc, a, b, c, LDC, m, n, alpha, beta, bs);
              cases++;
              for (int i = 0; i < (MR + 2) * LDC; i++)
                if (!same_bits(c[i], want[i])) {
                  const int r = i / LDC, t = i % LDC;
                  if (r < m && t < n) bad++;
                  else touched++;
                  if (bad + touched < 4)
                    printf("# ukr kc %d m %d n %d alpha %g beta %g bias %d: C[%d][%d] = %.9g, want %.9g\n",
                           kc, m, n, alpha, beta, hb, r, t, c[i], want[i]);
                }
            }
  VG_CHECK(bad == 0, "avx512 micro-kernel: %ld edge/full tiles (m 1..12, n 1..32) bit-equal to the scalar fmaf chain (%ld wrong)",
           cases, bad);
  VG_CHECK(touched == 0, "avx512 micro-kernel: C outside the m x n corner untouched (%ld changed)", touched);
}

/* 2. vg_gemm_pack_strided against its definition */
static void check_pack(void) {
  enum { X = 150, K = 70 };
  float *p = malloc(sizeof(float) * X * K * 3);
  for (int i = 0; i < X * K * 3; i++) p[i] = frand();
  static const int ws[] = {4, 6, 8, 12, 16, 32};
  static const int64_t xns[] = {1, 5, 12, 31, 32, 33, 64, 100, 129};
  static const int64_t kcs[] = {1, 3, 4, 7, 16, 33};
  long cases = 0, bad = 0;
  float *dst = malloc(sizeof(float) * 160 * 40);
  for (int layout = 0; layout < 3; layout++) {
    /* P[x][k] = p[x*sx + k*sk]: row-major rows (sk 1), columns (sx 1), both strided */
    const int64_t sx = layout == 0 ? K + 3 : layout == 1 ? 1 : 2 * K + 5;
    const int64_t sk = layout == 0 ? 1 : layout == 1 ? X + 7 : 2;
    vg_gemm_strided s = {p, sx, sk};
    for (int wi = 0; wi < 6; wi++)
      for (int xi = 0; xi < 9; xi++)
        for (int ki = 0; ki < 6; ki++) {
          const int w = ws[wi];
          const int64_t xn = xns[xi], kc = kcs[ki], x0 = 3, k0 = 2;
          const int64_t nsl = (xn + w - 1) / w;
          for (int64_t i = 0; i < nsl * kc * w; i++) dst[i] = 12345.0f;
          vg_gemm_pack_strided(&s, x0, xn, k0, kc, w, dst);
          cases++;
          for (int64_t sl = 0; sl < nsl; sl++)
            for (int64_t k = 0; k < kc; k++)
              for (int t = 0; t < w; t++) {
                const int64_t x = sl * w + t;
                const float want = x < xn ? p[(x0 + x) * sx + (k0 + k) * sk] : 0.0f;
                if (!same_bits(dst[(sl * kc + k) * w + t], want)) {
                  if (bad < 3)
                    printf("# pack sx %lld sk %lld w %d xn %lld kc %lld: sliver %lld k %lld t %d wrong\n",
                           (long long)sx, (long long)sk, w, (long long)xn, (long long)kc, (long long)sl,
                           (long long)k, t);
                  bad++;
                }
              }
        }
  }
  VG_CHECK(bad == 0, "vg_gemm_pack_strided: %ld (layout, w, xn, kc) cases equal to the definition (%ld wrong elements)",
           cases, bad);
  free(dst);
  free(p);
}

/* 3. conv forward with slivers across output rows, exact on integer data */
static void check_conv_rows(vg_isa isa) {
  static const struct { int64_t c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw; } cs[] = {
    {3, 9, 5, 7, 4, 4, 1, 1, 3, 3, 1, 1},     /* ow 8: 4 output rows per 32-wide sliver */
    {3, 11, 29, 13, 4, 4, 1, 1, 3, 3, 1, 1},  /* ow 32 */
    {2, 10, 30, 12, 3, 3, 1, 1, 0, 0, 1, 1},  /* ow 28: runs start mid-row */
    {2, 7, 1, 5, 1, 1, 1, 1, 0, 0, 1, 1},     /* 1x1 pointwise, ow 1 */
    {2, 8, 3, 5, 2, 3, 1, 1, 2, 1, 1, 1},     /* ow 3, padding on both sides */
    {3, 12, 17, 9, 3, 2, 1, 1, 2, 3, 2, 2},   /* dilated, ow 21 */
    {2, 13, 40, 6, 4, 4, 2, 1, 1, 2, 1, 1},   /* row stride 2, ow 41 */
    {2, 13, 40, 6, 3, 3, 1, 2, 1, 1, 1, 1},   /* column stride 2: the per-pixel path */
    {4, 6, 6, 16, 4, 4, 1, 1, 3, 3, 1, 1},    /* PDN conv1 shape in small: ow 9 */
  };
  long bad = 0, total = 0;
  for (int ci = 0; ci < (int)(sizeof cs / sizeof cs[0]); ci++)
    for (int n = 1; n <= 2; n++) {
      vg_conv2d_geom g = {.n = n, .c = cs[ci].c, .h = cs[ci].h, .w = cs[ci].w, .oc = cs[ci].oc,
                          .kh = cs[ci].kh, .kw = cs[ci].kw, .sh = cs[ci].sh, .sw = cs[ci].sw,
                          .ph = cs[ci].ph, .pw = cs[ci].pw, .dh = cs[ci].dh, .dw = cs[ci].dw,
                          .groups = 1};
      vg_conv2d_geom_init(&g);
      const int64_t nx = g.n * g.c * g.h * g.w, nw = g.oc * g.c * g.kh * g.kw;
      const int64_t ny = g.n * g.oc * g.oh * g.ow;
      float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw);
      float *b = malloc(sizeof(float) * g.oc), *y = malloc(sizeof(float) * ny);
      float *yr = malloc(sizeof(float) * ny);
      for (int64_t i = 0; i < nx; i++) x[i] = irand(-3, 3);
      for (int64_t i = 0; i < nw; i++) w[i] = irand(-2, 2);
      for (int64_t i = 0; i < g.oc; i++) b[i] = irand(-4, 4);
      for (int64_t i = 0; i < ny; i++) y[i] = NAN;
      vg_cpu_conv2d_fwd(&g, x, w, b, y);
      vg_cpu_conv2d_fwd_ref(&g, x, w, b, yr);
      long wrong = 0;
      for (int64_t i = 0; i < ny; i++) wrong += !same_bits(y[i], yr[i]);
      if (wrong)
        printf("# conv case %d n %d (%s): %ld of %lld outputs differ\n", ci, n, vg_isa_name(isa), wrong,
               (long long)ny);
      bad += wrong;
      total += ny;
      free(x); free(w); free(b); free(y); free(yr);
    }
  VG_CHECK(bad == 0, "conv fwd (%s), slivers across output rows, padding/dilation/stride: %ld outputs exact (%ld wrong)",
           vg_isa_name(isa), total, bad);
}

int main(void) {
  check_ukr_avx512();
  check_pack();
  const vg_isa best = vg_cpu_isa_max();
  for (int isa = best; isa >= 0; isa--) {
    vg_cpu_set_isa((vg_isa)isa);
    check_conv_rows((vg_isa)isa);
  }
  vg_cpu_set_isa(best);
  return vg_test_finish();
}
