/* eltwise_rows.h — row kernels of the elementwise ops, compiled once per ISA:
 * eltwise_scalar.c (vectorization off: the reference path), eltwise_avx2.c and
 * eltwise_avx512.c include this file with VG_ROW(name) naming their copies. A row is
 * n elements with element strides; the contiguous cases are separate loops so the
 * compiler vectorizes them. All arithmetic is in vmath.h, identical on every path. */
#include <math.h>
#include "tensor/internal.h"
#include "tensor/cpu/vmath.h"

#define VG_U_LOOP(EXPR)                                                   \
  if (so == 1 && sx == 1) {                                               \
    for (int64_t i = 0; i < n; i++) { float v = x[i]; o[i] = (EXPR); }    \
  } else {                                                                \
    for (int64_t i = 0; i < n; i++) { float v = x[i * sx]; o[i * so] = (EXPR); } \
  }                                                                       \
  break;

void VG_ROW(unary)(vg_op op, const double *f, float *o, int64_t so, const float *x, int64_t sx, int64_t n) {
  const float f0 = (float)f[0], f1 = (float)f[1];
  switch (op) {
    case VG_OP_NEG: VG_U_LOOP(-v)
    case VG_OP_EXP: VG_U_LOOP(vg_expf(v))
    case VG_OP_LOG: VG_U_LOOP(vg_logf(v))
    case VG_OP_SQRT: VG_U_LOOP(sqrtf(v))
    case VG_OP_RSQRT: VG_U_LOOP(1.0f / sqrtf(v))
    case VG_OP_ABS: VG_U_LOOP(fabsf(v))
    case VG_OP_SIGN: VG_U_LOOP(v > 0 ? 1.0f : (v < 0 ? -1.0f : v * 0.0f))
    case VG_OP_RELU: VG_U_LOOP(v > 0 ? v : (v != v ? v : 0.0f))
    case VG_OP_LEAKY_RELU: VG_U_LOOP(v > 0 ? v : v * f0)
    case VG_OP_SIGMOID: VG_U_LOOP(vg_sigmoidf(v))
    case VG_OP_LOGSIGMOID: VG_U_LOOP(vg_logsigmoidf(v))
    case VG_OP_TANH: VG_U_LOOP(vg_tanhf(v))
    case VG_OP_SOFTPLUS: VG_U_LOOP(vg_softplusf(v, f0, f1))
    case VG_OP_ATAN: VG_U_LOOP(atanf(v))
    case VG_OP_GELU: VG_U_LOOP(v >= 0 ? 0.5f * v * (1.0f + erff(v * 0.70710678118654752f))
                                      : 0.5f * v * erfcf(-v * 0.70710678118654752f))
    case VG_OP_SIN: VG_U_LOOP(sinf(v))
    case VG_OP_COS: VG_U_LOOP(cosf(v))
    case VG_OP_ERF: VG_U_LOOP(erff(v))
    case VG_OP_POW_SCALAR:
      if (f0 == 2.0f) { VG_U_LOOP(v * v) }
      else if (f0 == 1.0f) { VG_U_LOOP(v) }
      else if (f0 == 0.5f) { VG_U_LOOP(sqrtf(v)) }
      else if (f0 == -1.0f) { VG_U_LOOP(1.0f / v) }
      else { VG_U_LOOP(powf(v, f0)) }
      break;
    case VG_OP_CLAMP: VG_U_LOOP(v != v ? v : (v < f0 ? f0 : (v > f1 ? f1 : v)))
    case VG_OP_AFFINE: VG_U_LOOP(f0 * v + f1)
    default: VG_ABORT("not a unary op: %s", vg_op_name(op));
  }
}

#define VG_B_LOOP(T, EXPR)                                                              \
  {                                                                                     \
    T *o = (T *)out;                                                                    \
    if (so == 1 && sa == 1 && sb == 1) {                                                \
      for (int64_t i = 0; i < n; i++) { float u = a[i], v = b[i]; o[i] = (EXPR); }      \
    } else if (so == 1 && sa == 1 && sb == 0) {                                         \
      const float v = b[0];                                                             \
      for (int64_t i = 0; i < n; i++) { float u = a[i]; o[i] = (EXPR); }               \
    } else if (so == 1 && sa == 0 && sb == 1) {                                         \
      const float u = a[0];                                                             \
      for (int64_t i = 0; i < n; i++) { float v = b[i]; o[i] = (EXPR); }               \
    } else {                                                                            \
      for (int64_t i = 0; i < n; i++) { float u = a[i * sa], v = b[i * sb]; o[i * so] = (EXPR); } \
    }                                                                                   \
  }                                                                                     \
  break;

void VG_ROW(binary)(vg_op op, const double *f, void *out, int64_t so, const float *a, int64_t sa, const float *b,
                    int64_t sb, int64_t n) {
  const float alpha = (float)f[1];
  switch (op) {
    case VG_OP_ADD:
      if (alpha == 1.0f) { VG_B_LOOP(float, u + v) }
      else { VG_B_LOOP(float, u + alpha * v) }
      break;
    case VG_OP_SUB: VG_B_LOOP(float, u - v)
    case VG_OP_MUL: VG_B_LOOP(float, u * v)
    case VG_OP_DIV: VG_B_LOOP(float, u / v)
    case VG_OP_MAXIMUM: VG_B_LOOP(float, (u != u || v != v) ? u + v : (u > v ? u : v))
    case VG_OP_MINIMUM: VG_B_LOOP(float, (u != u || v != v) ? u + v : (u < v ? u : v))
    case VG_OP_EQ: VG_B_LOOP(uint8_t, u == v)
    case VG_OP_NE: VG_B_LOOP(uint8_t, u != v)
    case VG_OP_LT: VG_B_LOOP(uint8_t, u < v)
    case VG_OP_LE: VG_B_LOOP(uint8_t, u <= v)
    case VG_OP_GT: VG_B_LOOP(uint8_t, u > v)
    case VG_OP_GE: VG_B_LOOP(uint8_t, u >= v)
    default: VG_ABORT("not a binary op: %s", vg_op_name(op));
  }
}

void VG_ROW(where)(float *o, int64_t so, const uint8_t *c, int64_t sc, const float *a, int64_t sa, const float *b,
                   int64_t sb, int64_t n) {
  if (so == 1 && sc == 1 && sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = c[i] ? a[i] : b[i];
  } else {
    for (int64_t i = 0; i < n; i++) o[i * so] = c[i * sc] ? a[i * sa] : b[i * sb];
  }
}
