/* eltwise_vec.h — SIMD copies of tensor/vmath.h's exp, erf, erfc, GELU, tanh, sigmoid and SiLU, written with GCC /
 * clang vector extensions, VG_VEC_W lanes (eltwise_avx2.c: 8, eltwise_avx512.c: 16). GCC does
 * not vectorize vmath.h's scalar functions itself (their selects stay branches: "control flow
 * in loop"), so these spell them out: the same IEEE operations in the same order as the scalar
 * functions, no contraction (-std=c11: -ffp-contract=off), selects as bit masks; the values are
 * bit for bit those of vmath.h (tests/test_kmath.c checks every path against the scalar one).
 *
 * Without VG_VEC_W: only the prototypes of the row functions the ISA files export
 * (tensor/cpu/norm.c's softmax rows use them). */
#ifndef VG_ELTWISE_VEC_PROTOS
#define VG_ELTWISE_VEC_PROTOS
#include <stdint.h>
/* o[k] = vg_expf(x[k] - m) for k < n (o may be x) */
void vg_row_exp_shifted_avx2(float *o, const float *x, float m, int64_t n);
void vg_row_exp_shifted_avx512(float *o, const float *x, float m, int64_t n);
/* the NaN-propagating max of a[0..n) (norm.c's row_max: the same value) */
float vg_row_row_max_avx2(const float *a, int64_t n);
float vg_row_row_max_avx512(const float *a, int64_t n);
#endif

#ifdef VG_VEC_W
#include <string.h>
#include "tensor/vmath.h"

typedef float vg_vf __attribute__((vector_size(VG_VEC_W * 4)));
typedef int32_t vg_vi __attribute__((vector_size(VG_VEC_W * 4)));
typedef uint32_t vg_vu __attribute__((vector_size(VG_VEC_W * 4)));

#define VG_V_INLINE static inline __attribute__((always_inline))
/* m: lanes all ones where true (a comparison's result) */
VG_V_INLINE vg_vf vg_v_sel(vg_vi m, vg_vf a, vg_vf b) { return (vg_vf)((m & (vg_vi)a) | (~m & (vg_vi)b)); }
VG_V_INLINE vg_vf vg_v_splat(float c) { return (vg_vf){0} + c; }
VG_V_INLINE vg_vf vg_v_load(const float *p) { vg_vf v; memcpy(&v, p, sizeof v); return v; }
VG_V_INLINE void vg_v_store(float *p, vg_vf v) { memcpy(p, &v, sizeof v); }

/* vg_expf */
VG_V_INLINE vg_vf vg_v_expf(vg_vf x) {
  const vg_vf hi = vg_v_splat(88.7228394f), lo = vg_v_splat(-104.0f);
  vg_vf xc = vg_v_sel(x > hi, hi, vg_v_sel(x < lo, lo, x));
  vg_vf kf = xc * 1.44269504088896341f;
  kf = kf + vg_v_sel(kf >= 0, vg_v_splat(0.5f), vg_v_splat(-0.5f));
  vg_vi k = __builtin_convertvector(kf, vg_vi);
  vg_vf fk = __builtin_convertvector(k, vg_vf);
  vg_vf r = xc - fk * 0.693359375f;
  r = r - fk * -2.12194440e-4f;
  vg_vf r2 = r * r;
  vg_vf p = vg_v_splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  vg_vi k1 = k / 2, k2 = k - k1;
  vg_vf s1 = (vg_vf)((vg_vu)(k1 + 127) << 23), s2 = (vg_vf)((vg_vu)(k2 + 127) << 23);
  vg_vf y = p * s1 * s2;
  y = vg_v_sel(x > hi, vg_v_splat(vg_bits_f(0x7f800000u)), y);
  y = vg_v_sel(x < lo, vg_v_splat(0.0f), y);
  return vg_v_sel(x != x, x, y);
}

VG_V_INLINE vg_vf vg_v_erf_small(vg_vf x) {
  vg_vf t = x * x, p;
  VG_ERF_R(p, t, vg_v_splat);
  return x + x * p;
}

VG_V_INLINE vg_vf vg_v_erfc_big(vg_vf a) {
  const float lo[9] = VG_ERFC_H_LO, hi[9] = VG_ERFC_H_HI;
  const vg_vf amax = vg_v_splat(VG_ERFC_AMAX);
  vg_vf ac = vg_v_sel(a < amax, a, amax);
  vg_vf w = 1.0f / ac;
  vg_vi big = ac >= 2.5f;
  vg_vf s = w - vg_v_sel(big, vg_v_splat(0.25f), vg_v_splat(0.7f));
  vg_vf p = vg_v_sel(big, vg_v_splat(hi[0]), vg_v_splat(lo[0]));
  for (int i = 1; i < 9; i++) p = p * s + vg_v_sel(big, vg_v_splat(hi[i]), vg_v_splat(lo[i]));
  vg_vf ah = (vg_vf)((vg_vu)ac & 0xfffff000u);
  vg_vf d = (ac - ah) * (ac + ah);
  vg_vf e = vg_v_expf(-(ah * ah)) * vg_v_expf(-d);
  vg_vf r = e * (p * w);
  return vg_v_sel(a > amax, vg_v_splat(0.0f), r);
}

VG_V_INLINE vg_vf vg_v_abs(vg_vf x) { return (vg_vf)((vg_vu)x & 0x7fffffffu); }

VG_V_INLINE vg_vf vg_v_erff(vg_vf x) {
  vg_vf a = vg_v_abs(x);
  vg_vf sm = vg_v_erf_small(x);
  vg_vf bg = 1.0f - vg_v_erfc_big(a);
  bg = vg_v_sel(x < 0, -bg, bg);
  vg_vf y = vg_v_sel(a < 1.0f, sm, bg);
  return vg_v_sel(x != x, x, y);
}

VG_V_INLINE vg_vf vg_v_erfcf(vg_vf x) {
  vg_vf a = vg_v_abs(x);
  vg_vf sm = 1.0f - vg_v_erf_small(x);
  vg_vf e = vg_v_erfc_big(a);
  vg_vf bg = vg_v_sel(x < 0, 2.0f - e, e);
  vg_vf y = vg_v_sel(a < 1.0f, sm, bg);
  return vg_v_sel(x != x, x, y);
}

/* vg_geluf, both branches from one erf_small and one erfc_big: with a = |u|, S = erf_small(u),
 * E = erfc_big(a): v >= 0: erf(u) = a < 1 ? S : 1 - E; v < 0: erfc(-u) = a < 1 ? 1 - erf_small(-u)
 * = 1 + S (erf_small is odd bit for bit) : E. The same values as the scalar's either branch. */
VG_V_INLINE vg_vf vg_v_geluf(vg_vf v) {
  vg_vf u = v * 0.70710678118654752f;
  vg_vf a = vg_v_abs(u);
  vg_vf S = vg_v_erf_small(u), E = vg_v_erfc_big(a);
  vg_vi sm = a < 1.0f, pos = v >= 0;
  vg_vf erf_u = vg_v_sel(sm, S, 1.0f - E);
  vg_vf erfc_mu = vg_v_sel(sm, 1.0f + S, E);
  vg_vf h = 0.5f * v;
  return vg_v_sel(pos, h * (1.0f + erf_u), h * erfc_mu);
}

/* vg_tanhf */
VG_V_INLINE vg_vf vg_v_tanhf(vg_vf x) {
  vg_vf ax = vg_v_abs(x);
  vg_vf z = x * x;
  vg_vf p = vg_v_splat(-5.70498872745e-3f);
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  vg_vf small = x + x * z * p;
  vg_vf e = vg_v_expf(2.0f * vg_v_sel(ax > 9.1f, vg_v_splat(9.1f), ax));
  vg_vf big = 1.0f - 2.0f / (e + 1.0f);
  big = vg_v_sel(x < 0, -big, big);
  return vg_v_sel(ax < 0.625f, small, big);
}

/* vg_sigmoidf */
VG_V_INLINE vg_vf vg_v_sigmoidf(vg_vf x) {
  vg_vf e = vg_v_expf(-vg_v_abs(x));
  vg_vf s = 1.0f / (1.0f + e);
  return vg_v_sel(x >= 0, s, e * s);
}

/* SiLU's row: v / (1 + vg_expf(-v)) */
VG_V_INLINE vg_vf vg_v_siluf(vg_vf v) { return v / (1.0f + vg_v_expf(-v)); }

/* o[i] = F(x[i]) for a contiguous row: whole vectors, then the tail through a padded vector */
#define VG_V_ROW(F, o, x, n)                                    \
  do {                                                          \
    int64_t i_ = 0;                                             \
    for (; i_ + VG_VEC_W <= (n); i_ += VG_VEC_W)                \
      vg_v_store((o) + i_, F(vg_v_load((x) + i_)));             \
    if (i_ < (n)) {                                             \
      float buf_[VG_VEC_W] = {0};                               \
      memcpy(buf_, (x) + i_, sizeof(float) * (size_t)((n) - i_)); \
      vg_v_store(buf_, F(vg_v_load(buf_)));                     \
      memcpy((o) + i_, buf_, sizeof(float) * (size_t)((n) - i_)); \
    }                                                           \
  } while (0)
#endif
