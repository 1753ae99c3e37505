/* test_conv_direct.c — the direct convolution for few input channels (tensor/cpu/conv_direct.h):
 *   eligible   the PDN's first layer and a ResNet stem go direct on AVX-512; grouped, wide
 *              (c > 16, c*kh*kw > 512), plain 1x1, sw > 4 and lane-wasting (tiny) outputs do not;
 *              the switch turns it off;
 *   bits       on ~300 generated geometries (stride 1-4, dilation, padding 0..k, odd sizes,
 *              outputs narrower than a tile so one tile spans rows, oc not a multiple of 12,
 *              bias or none, fused ReLU, NaN and Inf in x) the output equals the GEMM path's
 *              (VIGIL_CONV_DIRECT=0) bit for bit, and nothing outside y is written;
 *   reference  the PDN conv1 and stem shapes against the double-accumulated direct loops
 *              (|y - ref| <= 1e-5 sqrt(K) (1 + |ref|));
 *   threads    1, 2 and 3 threads give the same bits, batches padded over several passes too.
 * Without AVX-512 the path never applies: the eligibility checks say so and the rest is the
 * GEMM path compared with itself. */
#include "tests/vgtest.h"
#include "tensor/cpu/conv.h"
#include "tensor/cpu/conv_direct.h"
#include "tensor/cpu/isa.h"
#include "base/threadpool.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static int64_t irange(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u32() % (uint32_t)(hi - lo + 1)); }
static float frand(void) { return (float)(next_u32() & 0xffff) / 32768.0f - 1.0f; }
static float *rand_buf(int64_t n) {
  float *p = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = frand();
  return p;
}

#define GUARD 64   /* floats of canary on each side of y */
static const uint32_t CANARY = 0x7fc0dead;

static float *guarded(int64_t n) {
  float *p = malloc((size_t)(n + 2 * GUARD) * sizeof(float));
  for (int64_t i = 0; i < n + 2 * GUARD; i++) memcpy(&p[i], &CANARY, 4);
  return p + GUARD;
}
static int guards_intact(const float *y, int64_t n) {
  for (int64_t i = -GUARD; i < 0; i++)
    if (memcmp(&y[i], &CANARY, 4)) return 0;
  for (int64_t i = n; i < n + GUARD; i++)
    if (memcmp(&y[i], &CANARY, 4)) return 0;
  return 1;
}

static vg_conv2d_geom geom(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t kh, int64_t kw,
                           int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw) {
  vg_conv2d_geom g = {.n = n, .c = c, .h = h, .w = w, .oc = oc, .kh = kh, .kw = kw, .sh = sh, .sw = sw,
                      .ph = ph, .pw = pw, .dh = dh, .dw = dw, .groups = 1};
  vg_conv2d_geom_init(&g);
  return g;
}

static void check_eligibility(int avx512) {
  vg_cpu_set_conv_direct(1);
  const vg_conv2d_geom pdn = geom(1, 3, 256, 256, 128, 4, 4, 1, 1, 3, 3, 1, 1);
  const vg_conv2d_geom stem = geom(2, 3, 256, 256, 64, 7, 7, 2, 2, 3, 3, 1, 1);
  VG_CHECK(vg_cpu_conv_direct_applies(&pdn) == avx512, "PDN conv1 3->128 k4 p3 256x256: direct %s",
           avx512 ? "(AVX-512)" : "off (no AVX-512)");
  VG_CHECK(vg_cpu_conv_direct_applies(&stem) == avx512, "ResNet stem 3->64 k7 s2 p3: direct %s",
           avx512 ? "(AVX-512)" : "off (no AVX-512)");
  vg_conv2d_geom grouped = geom(1, 4, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1);
  grouped.groups = 2;
  const vg_conv2d_geom wide_c = geom(1, 17, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1);
  const vg_conv2d_geom wide_k = geom(1, 11, 64, 64, 8, 7, 7, 1, 1, 3, 3, 1, 1);   /* 539 taps */
  const vg_conv2d_geom pointwise = geom(1, 3, 32, 32, 8, 1, 1, 1, 1, 0, 0, 1, 1);
  const vg_conv2d_geom sw5 = geom(1, 3, 200, 200, 8, 5, 5, 1, 5, 0, 0, 1, 1);
  const vg_conv2d_geom tiny = geom(1, 3, 6, 6, 8, 3, 3, 2, 2, 0, 0, 1, 1);        /* 2x2 outputs */
  VG_CHECK(!vg_cpu_conv_direct_eligible(&grouped) && !vg_cpu_conv_direct_eligible(&wide_c) &&
               !vg_cpu_conv_direct_eligible(&wide_k) && !vg_cpu_conv_direct_eligible(&pointwise) &&
               !vg_cpu_conv_direct_eligible(&sw5) && !vg_cpu_conv_direct_eligible(&tiny),
           "not eligible: grouped, c 17, 539 taps, plain 1x1, sw 5, a 2x2 output (most lanes dropped)");
  vg_cpu_set_conv_direct(0);
  VG_CHECK(!vg_cpu_conv_direct_applies(&pdn) && vg_cpu_conv_direct_eligible(&pdn) == avx512,
           "switched off: PDN conv1 not taken (still eligible)");
  vg_cpu_set_conv_direct(-1);
}

/* y from the direct path and from the GEMM path (switch off) */
static void run_both(const vg_conv2d_geom *g, const float *x, const float *w, const float *b, float *yd,
                     float *yg) {
  vg_cpu_set_conv_direct(0);
  vg_cpu_conv2d_fwd(g, x, w, b, yg);
  vg_cpu_set_conv_direct(1);
  vg_cpu_conv2d_fwd(g, x, w, b, yd);
  vg_cpu_set_conv_direct(-1);
}

static void check_generated(int avx512) {
  int tried = 0, direct = 0, same = 0, intact = 0, rows_span = 0, strided = 0, dilated = 0, partial_m = 0;
  for (int it = 0; it < 3000 && tried < 300; it++) {
    const int64_t kh = irange(1, 7), kw = irange(1, 7), sh = irange(1, 4), sw = irange(1, 4);
    const int64_t dh = irange(1, 5) == 5 ? 2 : 1, dw = irange(1, 5) == 5 ? 3 : 1;
    const int64_t c = irange(1, 16), oc = irange(1, 40), n = irange(1, 3);
    const int64_t h = irange(1, 48), w = irange(1, 90), ph = irange(0, kh), pw = irange(0, kw);
    if (h + 2 * ph < dh * (kh - 1) + 1 || w + 2 * pw < dw * (kw - 1) + 1) continue;
    vg_conv2d_geom g = geom(n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw);
    g.relu = (int)(next_u32() & 1);
    if (avx512 && !vg_cpu_conv_direct_eligible(&g)) continue;
    tried++;
    const int64_t nx = n * c * h * w, nw = oc * c * kh * kw, ny = n * oc * g.oh * g.ow;
    float *x = rand_buf(nx), *wt = rand_buf(nw), *b = rand_buf(oc);
    if (next_u32() % 8 == 0) x[next_u32() % nx] = NAN;
    if (next_u32() % 8 == 0) x[next_u32() % nx] = -INFINITY;
    const float *bias = next_u32() % 4 ? b : NULL;
    float *yd = guarded(ny), *yg = guarded(ny);
    vg_set_num_threads(1 + (int)(next_u32() % 3));
    vg_cpu_set_conv_direct(1);
    direct += vg_cpu_conv_direct_applies(&g);
    run_both(&g, x, wt, bias, yd, yg);
    same += !memcmp(yd, yg, (size_t)ny * sizeof(float));
    intact += guards_intact(yd, ny);
    rows_span += g.ow < 32;
    strided += sh > 1 || sw > 1;
    dilated += dh > 1 || dw > 1;
    partial_m += oc % 12 != 0;
    free(x); free(wt); free(b); free(yd - GUARD); free(yg - GUARD);
  }
  vg_set_num_threads(0);
  VG_CHECK(tried >= 300 && direct == (avx512 ? tried : 0),
           "%d generated geometries, %d of them on the direct path", tried, direct);
  VG_CHECK(same == tried, "direct == GEMM path bit for bit on %d of %d (NaN/Inf in x, ReLU, bias or none)", same,
           tried);
  VG_CHECK(intact == tried, "nothing written outside y on %d of %d", intact, tried);
  VG_CHECK(!avx512 || (rows_span > 20 && strided > 100 && dilated > 20 && partial_m > 100),
           "the generated set covers tiles spanning rows (%d), strides (%d), dilation (%d), oc %% 12 != 0 (%d)",
           rows_span, strided, dilated, partial_m);
}

static void check_reference(const char *name, vg_conv2d_geom g) {
  const int64_t nx = g.n * g.c * g.h * g.w, nw = g.oc * g.c * g.kh * g.kw, ny = g.n * g.oc * g.oh * g.ow;
  float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(g.oc);
  float *yd = guarded(ny), *yg = guarded(ny), *yr = malloc((size_t)ny * sizeof(float));
  vg_cpu_conv2d_fwd_ref(&g, x, w, b, yr);
  run_both(&g, x, w, b, yd, yg);
  const double K = (double)(g.c * g.kh * g.kw), tol = 1e-5 * sqrt(K);
  VG_CHECK_CLOSE(yd, yr, ny, tol, tol, name);
  VG_CHECK(!memcmp(yd, yg, (size_t)ny * sizeof(float)) && guards_intact(yd, ny), "%s: the GEMM path's bits", name);
  /* 1, 2, 3 threads: the same bits */
  float *yt = guarded(ny);
  int same = 1;
  for (int t = 1; t <= 3; t++) {
    vg_set_num_threads(t);
    vg_cpu_conv2d_fwd(&g, x, w, b, yt);
    same &= !memcmp(yt, yd, (size_t)ny * sizeof(float));
  }
  vg_set_num_threads(0);
  VG_CHECK(same, "%s: 1, 2 and 3 threads give the same bits", name);
  free(x); free(w); free(b); free(yd - GUARD); free(yg - GUARD); free(yt - GUARD); free(yr);
}

int main(void) {
  const int avx512 = vg_cpu_isa() == VG_ISA_AVX512;
  printf("# ISA in use: %s (the direct path %s)\n", vg_isa_name(vg_cpu_isa()), avx512 ? "runs" : "never applies");
  check_eligibility(avx512);
  check_generated(avx512);
  check_reference("PDN conv1 3->128 k4 p3 64x64 b2", geom(2, 3, 64, 64, 128, 4, 4, 1, 1, 3, 3, 1, 1));
  check_reference("stem 3->64 k7 s2 p3 96x80", geom(1, 3, 96, 80, 64, 7, 7, 2, 2, 3, 3, 1, 1));
  /* a batch padded over several passes (8 MiB of padded planes each) */
  check_reference("16->12 k1 p1 90x90 b20 (two passes)", geom(20, 16, 90, 90, 12, 1, 1, 1, 1, 1, 1, 1, 1));
  return vg_test_finish();
}
