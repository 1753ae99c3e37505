/* vmath.h — the scalar math of the elementwise ops, written ONCE for the CPU row kernels
 * (tensor/cpu/eltwise_rows.h: scalar, AVX2 and AVX-512 copies) and the CUDA kernels
 * (tensor/cuda/ kernels, built with --fmad=false so no multiply-add is fused): every function
 * is VG_HD (tensor/hd.h), so CPU and GPU run the same arithmetic.
 *
 * exp/log/tanh/sigmoid are written so the compiler vectorizes loops over them (no calls,
 * no branches, bit tricks through memcpy). Accuracy ~1-2 ulp over the f32 range
 * (Cephes-style minimax polynomials, range reduction by ln 2). Special values follow
 * libm: exp(+-inf) = inf/0, log(0) = -inf, log(x<0) = NaN, NaN propagates.
 *
 * Also here: the f16 / bf16 element conversions (round to nearest even, as torch's
 * .half() / .bfloat16(); tensor.h's vg_half_to_float & co. are these) and the element
 * load/store of any dtype through double (vg_load_elem / vg_store_elem, and the CUDA
 * cast kernels). */
#ifndef VG_VMATH_H
#define VG_VMATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "tensor/hd.h"
#include "tensor/tensor.h"

#ifdef __CUDACC__
#define VG_VMATH static VG_HD __forceinline__
#else
#define VG_VMATH static inline
#endif

VG_VMATH float vg_bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
VG_VMATH uint32_t vg_f_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* exp: x = k ln2 + r, |r| <= ln2/2; e^r by a degree-6 polynomial; 2^k applied in two
 * halves so results down in the subnormal range stay right. */
VG_VMATH float vg_expf(float x) {
  float xc = x > 88.7228394f ? 88.7228394f : (x < -104.0f ? -104.0f : x);
  float kf = xc * 1.44269504088896341f;
  kf = kf + (kf >= 0 ? 0.5f : -0.5f);
  int32_t k = (int32_t)kf;                      /* round half away from zero */
  float fk = (float)k;
  float r = xc - fk * 0.693359375f;
  r = r - fk * -2.12194440e-4f;
  float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  int32_t k1 = k / 2, k2 = k - k1;
  float s1 = vg_bits_f((uint32_t)(k1 + 127) << 23), s2 = vg_bits_f((uint32_t)(k2 + 127) << 23);
  float y = p * s1 * s2;
  y = x > 88.7228394f ? vg_bits_f(0x7f800000u) : y;
  y = x < -104.0f ? 0.0f : y;
  return x != x ? x : y;
}

/* log: x = m 2^e with m in [sqrt(.5), sqrt(2)); log(m) by Cephes logf's polynomial. */
VG_VMATH float vg_logf(float x) {
  float xs = x < 1.17549435e-38f ? x * 8388608.0f : x;   /* scale subnormals by 2^23 */
  int32_t ebias = x < 1.17549435e-38f ? 23 : 0;
  uint32_t u = vg_f_bits(xs);
  int32_t e = (int32_t)((u >> 23) & 0xff) - 126 - ebias;
  float m = vg_bits_f((u & 0x007fffffu) | 0x3f000000u);  /* [0.5, 1) */
  int32_t small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z;
  float fe = (float)e;
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  y = m + y;
  y = y + fe * 0.693359375f;
  y = x == 0.0f ? vg_bits_f(0xff800000u) : y;
  y = x < 0.0f ? vg_bits_f(0x7fc00000u) : y;
  y = x == vg_bits_f(0x7f800000u) ? x : y;
  return x != x ? x : y;
}

/* log1p(e) for e in [0, 1]: log(u) * e / (u - 1) with u = 1 + e keeps full precision. */
VG_VMATH float vg_log1p_small(float e) {
  float u = 1.0f + e;
  float d = u - 1.0f;
  float l = vg_logf(u);
  return d == 0.0f ? e : l * (e / d);
}

VG_VMATH float vg_sigmoidf(float x) {
  /* 1/(1+e^-x) for x >= 0; e^x/(1+e^x) for x < 0 (no overflow, accurate tails) */
  float e = vg_expf(-(x < 0 ? -x : x));
  float s = 1.0f / (1.0f + e);
  return x >= 0 ? s : e * s;
}

VG_VMATH float vg_logsigmoidf(float x) {
  float ax = x < 0 ? -x : x;
  return (x < 0 ? x : 0.0f) - vg_log1p_small(vg_expf(-ax));
}

/* tanh: odd polynomial for |x| < 0.625 (Cephes tanhf), else 1 - 2/(e^{2|x|} + 1). */
VG_VMATH float vg_tanhf(float x) {
  float ax = x < 0 ? -x : x;
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = x + x * z * p;
  float e = vg_expf(2.0f * (ax > 9.1f ? 9.1f : ax));
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0 ? -big : big;
  return ax < 0.625f ? small : big;
}

VG_VMATH float vg_softplusf(float x, float beta, float threshold) {
  float bx = beta * x;
  float ax = bx < 0 ? -bx : bx;
  float sp = ((bx > 0 ? bx : 0.0f) + vg_log1p_small(vg_expf(-ax))) / beta;
  return bx > threshold ? x : sp;
}

/* ---- erf / erfc (GELU's), branch-free; tensor/cpu/eltwise_vec.h has the SIMD copies, the
 * same operations in the same order (values identical on every path) ----
 * |x| < 1: erf(x) = x + x R(x^2), R a degree-6 fit of erf(x)/x - 1 (our own, least squares
 * with minimax reweighting). |x| >= 1: erfc(a) = e^{-a^2} h(1/a) / a, h(w) = a e^{a^2} erfc(a)
 * by two degree-8 fits in w - 0.7 (a < 2.5) and w - 0.25 (2.5 <= a <= 10.125; beyond, erfc is
 * below half the least subnormal: 0); e^{-a^2} = e^{-ah^2} e^{-(a-ah)(a+ah)} with ah = a
 * to 12 bits (ah^2 exact), so a^2's rounding does not enter. Measured (tests/test_kmath.c):
 * erf within ~1.5 ulp / 8e-8 abs of the exact value over the whole range, erfc within a few
 * ulp for x >= 1. NaN propagates, erf(+-inf) = +-1, erfc(inf) = 0, erfc(-inf) = 2. */
#define VG_ERF_R(p, t, C)   /* C(c): the constant c as p's type */                                \
  p = C(7.900175115e-05f);                                                                   \
  p = p * (t) - 8.022640250e-04f;                                                            \
  p = p * (t) + 5.189531017e-03f;                                                            \
  p = p * (t) - 2.685430087e-02f;                                                            \
  p = p * (t) + 1.128359139e-01f;                                                            \
  p = p * (t) - 3.761262596e-01f;                                                            \
  p = p * (t) + 1.283791661e-01f
/* h's coefficients, highest first: a < 2.5 (lo) and a >= 2.5 (hi) */
#define VG_ERFC_H_LO {2.675717883e-02f, -1.108783856e-02f, -1.794291101e-02f, 4.342949390e-02f, -6.054042652e-02f, \
                      5.136469752e-02f, 1.249776315e-02f, -1.706870645e-01f, 4.766766429e-01f}
#define VG_ERFC_H_HI {-7.686826587e-01f, -2.772575617e-02f, 4.125698507e-01f, -2.739087045e-01f, -2.810097672e-02f, \
                      2.195199728e-01f, -1.677861363e-01f, -1.194469407e-01f, 5.479978323e-01f}
#define VG_ERFC_AMAX 10.125f

/* erf(x) for |x| <= 1 */
VG_VMATH float vg_erf_small(float x) {
  float t = x * x, p;
  VG_ERF_R(p, t, (float));
  return x + x * p;
}

/* erfc(a) for a >= 1 (a NaN: meaningless, the callers select NaN) */
VG_VMATH float vg_erfc_big(float a) {
  const float lo[9] = VG_ERFC_H_LO, hi[9] = VG_ERFC_H_HI;
  float ac = a < VG_ERFC_AMAX ? a : VG_ERFC_AMAX;
  float w = 1.0f / ac;
  int big = ac >= 2.5f;
  float s = w - (big ? 0.25f : 0.7f);
  float p = big ? hi[0] : lo[0];
  for (int i = 1; i < 9; i++) p = p * s + (big ? hi[i] : lo[i]);
  float ah = vg_bits_f(vg_f_bits(ac) & 0xfffff000u);
  float d = (ac - ah) * (ac + ah);
  float e = vg_expf(-(ah * ah)) * vg_expf(-d);
  float r = e * (p * w);
  return a > VG_ERFC_AMAX ? 0.0f : r;
}

VG_VMATH float vg_erff(float x) {
  float a = vg_bits_f(vg_f_bits(x) & 0x7fffffffu);
  float sm = vg_erf_small(x);
  float bg = 1.0f - vg_erfc_big(a);
  bg = x < 0 ? -bg : bg;
  float y = a < 1.0f ? sm : bg;
  return x != x ? x : y;
}

VG_VMATH float vg_erfcf(float x) {
  float a = vg_bits_f(vg_f_bits(x) & 0x7fffffffu);
  float sm = 1.0f - vg_erf_small(x);
  float e = vg_erfc_big(a);
  float bg = x < 0 ? 2.0f - e : e;
  float y = a < 1.0f ? sm : bg;
  return x != x ? x : y;
}

/* GELU, exact (erf) form: v >= 0: v/2 (1 + erf(v/sqrt 2)); v < 0: v/2 erfc(-v/sqrt 2) (no
 * cancellation in the negative tail) */
VG_VMATH float vg_geluf(float v) {
  float u = v * 0.70710678118654752f;
  return v >= 0 ? 0.5f * v * (1.0f + vg_erff(u)) : 0.5f * v * vg_erfcf(-u);
}

/* ---- f16 (IEEE binary16) and bf16 <-> f32, round to nearest even ---- */
VG_VMATH float vg_hd_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else { /* subnormal: normalize */
      int e = -1;
      do { e++; man <<= 1; } while (!(man & 0x400));
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  return vg_bits_f(bits);
}

VG_VMATH uint16_t vg_hd_float_to_half(float f) {
  uint32_t x = vg_f_bits(f);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow to inf */
  if (ax < 0x38800000u) { /* subnormal or zero in half: units of 2^-24, ties to even */
    uint32_t m = (uint32_t)rintf(vg_bits_f(ax) * 16777216.0f);
    return (uint16_t)(sign | m);
  }
  uint32_t e = ((ax >> 23) - 112) << 10, m = (ax >> 13) & 0x3ff;
  uint32_t h = e | m, rest = ax & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

VG_VMATH float vg_hd_bf16_to_float(uint16_t h) { return vg_bits_f((uint32_t)h << 16); }

VG_VMATH uint16_t vg_hd_float_to_bf16(float f) {
  uint32_t x = vg_f_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

/* ---- one element of any dtype through double (0 / no store for a bad dtype) ---- */
VG_VMATH double vg_hd_load_elem(const void *p, int dt) {
  switch ((vg_dtype)dt) {
    case VG_F32: return *(const float *)p;
    case VG_F16: return vg_hd_half_to_float(*(const uint16_t *)p);
    case VG_BF16: return vg_hd_bf16_to_float(*(const uint16_t *)p);
    case VG_I32: return *(const int32_t *)p;
    case VG_I64: return (double)*(const int64_t *)p;
    case VG_U8: return *(const uint8_t *)p;
    case VG_BOOL: return *(const uint8_t *)p != 0;
    case VG_DTYPE_COUNT: break;
  }
  return 0;
}

VG_VMATH void vg_hd_store_elem(void *p, int dt, double v) {
  switch ((vg_dtype)dt) {
    case VG_F32: *(float *)p = (float)v; return;
    case VG_F16: *(uint16_t *)p = vg_hd_float_to_half((float)v); return;
    case VG_BF16: *(uint16_t *)p = vg_hd_float_to_bf16((float)v); return;
    /* float -> int truncates toward zero, as torch's .to(int) */
    case VG_I32: *(int32_t *)p = (int32_t)v; return;
    case VG_I64: *(int64_t *)p = (int64_t)v; return;
    case VG_U8: *(uint8_t *)p = (uint8_t)(int64_t)v; return;
    case VG_BOOL: *(uint8_t *)p = v != 0; return;
    case VG_DTYPE_COUNT: break;
  }
}
#endif
