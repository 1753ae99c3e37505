/* test_vmath.c — tensor/vmath.h's erf / erfc / GELU against the exact values (double libm,
 * dense sweeps including the tails, the special values as libm's erff / erfcf), and the SIMD
 * copies of exp / erf / GELU / tanh / sigmoid / SiLU (tensor/cpu/eltwise_vec.h, used by the elementwise rows and by
 * softmax / log_softmax) bit for bit against the scalar path on every ISA this CPU has. */
#include "tests/vgtest.h"
#include "tensor/vmath.h"
#include "tensor/cpu/eltwise_vec.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

/* |got - want| in units of want's float ulp (want's ulp taken at least at the least normal's) */
static double ulps(float got, double want) {
  double aw = fabs(want);
  float fw = (float)aw;
  double ulp = aw < 1.17549435e-38 ? 1.401298464e-45 : (double)(nextafterf(fw, INFINITY) - fw);
  return fabs((double)got - want) / ulp;
}

/* every float in [lo, hi] stepping by `step` floats (bit patterns), plus both signs */
static void sweep_erf(void) {
  double max_abs_gx = 0, max_ulp = 0, max_abs = 0, max_ulp_c = 0, max_ulp_g = 0, max_abs_libm = 0;
  float at_ulp = 0, at_c = 0, at_g = 0;
  int64_t count = 0;
  for (uint32_t u = 0; u < 0x41300000u; u += 97) {   /* 0 .. 11, every 97th float */
    for (int s = 0; s < 2; s++) {
      float x = vg_bits_f(u | (s ? 0x80000000u : 0));
      double xd = x;
      float e = vg_erff(x);
      double ue = ulps(e, erf(xd));
      if (ue > max_ulp) max_ulp = ue, at_ulp = x;
      if (fabs(e - erf(xd)) > max_abs) max_abs = fabs(e - erf(xd));
      if (fabs((double)e - (double)erff(x)) > max_abs_libm) max_abs_libm = fabs((double)e - (double)erff(x));
      if (x >= -3.9f) {   /* below, erfc = 2 - tiny: what matters there is erf's sign */
        double uc = ulps(vg_erfcf(x), erfc(xd));
        if (uc > max_ulp_c) max_ulp_c = uc, at_c = x;
      }
      /* against the float-rounded u = x/sqrt 2 the kernel sees (u's own rounding is worth
       * ~2u^2 2^-24 relative in the tail, for libm's erfcf as well) */
      double gw = 0.5 * xd * erfc(-(double)(x * 0.70710678118654752f));
      double gx = 0.5 * xd * erfc(-xd * M_SQRT1_2);
      if (fabs(vg_geluf(x) - gx) > max_abs_gx) max_abs_gx = fabs(vg_geluf(x) - gx);
      if (fabs(gw) > 1e-37) {   /* GELU's relative error down to the normal range */
        double ug = ulps(vg_geluf(x), gw);
        if (ug > max_ulp_g) max_ulp_g = ug, at_g = x;
      }
      count++;
    }
  }
  printf("# erf sweep (%lld points): erf max %.2f ulp (at %g), max abs %.3g (vs libm erff: %.3g); erfc max %.2f ulp (at %g); "
         "gelu max %.2f ulp (at %g), max abs vs exact x Phi(x) %.3g\n",
         (long long)count, max_ulp, at_ulp, max_abs, max_abs_libm, max_ulp_c, at_c, max_ulp_g, at_g, max_abs_gx);
  VG_CHECK(max_ulp <= 2.0 && max_abs <= 1.0e-7, "vg_erff: within 2 ulp and 1e-7 of erf over [-11, 11] (%.2f ulp, %.3g)",
           max_ulp, max_abs);
  VG_CHECK(max_abs_libm <= 1.2e-7, "vg_erff: within 1.2e-7 of libm erff (%.3g)", max_abs_libm);
  VG_CHECK(max_ulp_c <= 8.0, "vg_erfcf: within 8 ulp of erfc over [-3.9, 11] (%.2f)", max_ulp_c);
  VG_CHECK(max_ulp_g <= 8.0, "vg_geluf: within 8 ulp of x Phi(x) (float u) down to 1e-37 (%.2f)", max_ulp_g);
  VG_CHECK(max_abs_gx <= 5e-7, "vg_geluf: within 5e-7 of exact x Phi(x) over [-11, 11] (%.3g)", max_abs_gx);
}

static void specials(void) {
  const float inf = INFINITY, nan = NAN;
  VG_CHECK(vg_erff(inf) == 1.0f && vg_erff(-inf) == -1.0f, "erf(+-inf) = +-1");
  VG_CHECK(isnan(vg_erff(nan)) && isnan(vg_erfcf(nan)) && isnan(vg_geluf(nan)), "erf, erfc, gelu of NaN: NaN");
  VG_CHECK(vg_erfcf(inf) == 0.0f && vg_erfcf(-inf) == 2.0f, "erfc(inf) = 0, erfc(-inf) = 2");
  VG_CHECK(vg_erff(0.0f) == 0.0f && signbit(vg_erff(-0.0f)), "erf(+-0) = +-0");
  VG_CHECK(fabs(vg_erff(1e-30f) / 1.1283791670955126e-30 - 1) < 2e-7 && vg_erff(1e-45f) > 0,
           "erf(tiny) = 2/sqrt(pi) tiny, no underflow to 0");
  VG_CHECK(vg_erff(4.0f) == 1.0f && vg_erff(-5.0f) == -1.0f, "erf saturates to +-1");
  VG_CHECK(vg_erfcf(10.2f) == 0.0f && vg_erfcf(10.0f) > 0.0f, "erfc underflows to 0 past 10.125 only");
  VG_CHECK(vg_geluf(inf) == inf && isnan(vg_geluf(-inf)) && vg_geluf(-20.0f) == 0.0f && signbit(vg_geluf(-20.0f)),
           "gelu(inf) = inf, gelu(-inf) = NaN (-inf 0, as torch), gelu(-20) = -0");
  /* exactly at the region boundaries (|x| = 1, a = 2.5, a = 10.125) against double */
  const float edge[] = {1.0f, 0.99999994f, 1.0000001f, 2.5f, 2.4999998f, 2.5000002f, 10.125f, 10.124999f};
  double worst = 0;
  for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) {
    double u1 = ulps(vg_erff(edge[i]), erf(edge[i])), u2 = ulps(vg_erfcf(edge[i]), erfc(edge[i]));
    worst = fmax(worst, fmax(u1, edge[i] < 9 ? u2 : 0));
  }
  VG_CHECK(worst <= 8, "erf / erfc at the region edges (%.2f ulp)", worst);
}

/* the rows through the tensor API with the ISA forced: each SIMD path bit for bit = scalar */
static void simd_paths(void) {
  enum { N = 4099, NK = 9 };   /* not a multiple of 8 or 16: the tails */
  static float xs[N];
  for (int i = 0; i < N; i++) {
    float t = (float)i / (N - 1);
    xs[i] = -120.0f + 240.0f * t * t * t;   /* dense near 0, reaching exp's under/overflow */
  }
  const float sp[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, -1.0f, 2.5f, -2.5f, 10.125f, 88.72284f, -104.0f,
                      -103.99999f, 88.7228394f, 1e-40f, -1e-40f, 3.4e38f, -3.4e38f};
  for (size_t i = 0; i < sizeof sp / sizeof *sp; i++) xs[i * 37] = sp[i];
  int64_t shape[1] = {N}, shape2[2] = {17, N / 17};
  vg_isa best = vg_cpu_isa_max();
  vg_scope_begin();
  vg_tensor *x = vg_from_data(VG_F32, 1, shape, xs);
  vg_tensor *x2 = vg_from_data(VG_F32, 2, shape2, xs);
  vg_cpu_set_isa(VG_ISA_SCALAR);
  vg_tensor *ref[NK] = {vg_exp(x), vg_erf(x), vg_gelu(x), vg_softmax(vg_scale(x2, 0.05f), 1),
                        vg_log_softmax(vg_scale(x2, 0.05f), 1), vg_softmax(vg_scale(x2, 0.05f), 0),
                        vg_tanh(x), vg_sigmoid(x), vg_silu(x)};
  const char *names[NK] = {"exp", "erf", "gelu", "softmax (rows)", "log_softmax (rows)", "softmax (columns)",
                           "tanh", "sigmoid", "silu"};
  /* scalar path's values are vmath.h's */
  int okv = 1;
  for (int i = 0; i < N; i++) {
    float a = vg_f32(ref[1])[i], b = vg_erff(xs[i]), c = vg_f32(ref[2])[i], d = vg_geluf(xs[i]);
    okv &= vg_f_bits(a) == vg_f_bits(b) || (a != a && b != b);
    okv &= vg_f_bits(c) == vg_f_bits(d) || (c != c && d != d);
  }
  VG_CHECK(okv, "scalar path: vg_erf / vg_gelu are vmath.h's vg_erff / vg_geluf");
  for (int isa = VG_ISA_AVX2; isa <= (int)best; isa++) {
    vg_cpu_set_isa((vg_isa)isa);
    vg_tensor *got[NK] = {vg_exp(x), vg_erf(x), vg_gelu(x), vg_softmax(vg_scale(x2, 0.05f), 1),
                          vg_log_softmax(vg_scale(x2, 0.05f), 1), vg_softmax(vg_scale(x2, 0.05f), 0),
                          vg_tanh(x), vg_sigmoid(x), vg_silu(x)};
    for (int k = 0; k < NK; k++) {
      const float *g = vg_f32(got[k]), *r = vg_f32(ref[k]);
      int64_t bad = 0;
      for (int i = 0; i < N; i++)
        if (vg_f_bits(g[i]) != vg_f_bits(r[i]) && !(g[i] != g[i] && r[i] != r[i])) bad++;
      VG_CHECK(bad == 0, "%s: %s path bit for bit the scalar path's (%lld differ)", names[k], vg_isa_name((vg_isa)isa),
               (long long)bad);
    }
    /* the exported row directly, in place and shifted, short rows (tail only) */
    float o[N], o2[N];
    for (int64_t n = 0; n < 40; n++) {
      memcpy(o, xs + 100, sizeof(float) * (size_t)n);
      if (isa == VG_ISA_AVX2) vg_row_exp_shifted_avx2(o, o, 1.5f, n);
      else vg_row_exp_shifted_avx512(o, o, 1.5f, n);
      for (int64_t i = 0; i < n; i++) o2[i] = vg_expf(xs[100 + i] - 1.5f);
      if (memcmp(o, o2, sizeof(float) * (size_t)n)) {
        VG_CHECK(0, "exp_shifted row (%s, n = %lld, in place) = vg_expf(x - m)", vg_isa_name((vg_isa)isa), (long long)n);
        break;
      }
      if (n == 39) VG_CHECK(1, "exp_shifted rows n = 0..39 (%s, in place) = vg_expf(x - m)", vg_isa_name((vg_isa)isa));
    }
  }
  /* row max (softmax's): first-of-equal-maxima, NaN anywhere, empty and all -inf rows */
  for (int isa = VG_ISA_AVX2; isa <= (int)best; isa++) {
    float (*rmax)(const float *, int64_t) = isa == VG_ISA_AVX2 ? vg_row_row_max_avx2 : vg_row_row_max_avx512;
    float r[40];
    int ok = 1;
    for (int c = 0; c < 9; c++) {
      for (int i = 0; i < 40; i++) r[i] = -1.0f - (float)i;
      int n = 40;
      switch (c) {
        case 0: r[3] = -0.0f; r[20] = 0.0f; break;                   /* first zero -0: -0 */
        case 1: r[3] = 0.0f; r[20] = -0.0f; break;                   /* first zero +0: +0 */
        case 2: r[17] = -0.0f; r[2] = 0.0f; r[38] = -0.0f; break;
        case 3: r[5] = NAN; break;                                   /* in the vector part */
        case 4: r[37] = NAN; break;                                  /* in the tail */
        case 5: for (int i = 0; i < 40; i++) r[i] = -INFINITY; break;
        case 6: n = 0; break;
        case 7: r[39] = 3.0f; r[8] = 3.0f; break;
        case 8: r[1] = INFINITY; n = 3; break;
      }
      float want = -INFINITY;
      int nan = 0;
      for (int i = 0; i < n; i++) {
        want = r[i] > want ? r[i] : want;
        nan |= r[i] != r[i];
      }
      if (nan) want = NAN;
      float got = rmax(r, n);
      ok &= (got != got && want != want) || vg_f_bits(got) == vg_f_bits(want);
    }
    VG_CHECK(ok, "row max (%s): the scalar loop's value (+-0 ties, NaN, -inf, empty)", vg_isa_name((vg_isa)isa));
  }
  if (best == VG_ISA_SCALAR) printf("SKIP SIMD paths: this CPU has neither AVX2+FMA nor AVX-512\n");
  vg_cpu_set_isa(best);
  vg_scope_end();
}

int main(void) {
  sweep_erf();
  specials();
  simd_paths();
  return vg_test_finish();
}
