/* eltwise_rows.h — row kernels of the elementwise ops, compiled once per ISA:
 * eltwise_scalar.c (vectorization off: the reference path), eltwise_avx2.c and
 * eltwise_avx512.c include this file with VG_ROW(name) naming their copies. A row is
 * n elements with element strides; the contiguous cases are separate loops so the
 * compiler vectorizes them. The cases are generated from tensor/unary.def and
 * tensor/binary.def: each row's FWD expression (tensor/vmath.h arithmetic) is the loop
 * body, identical on every path and in the CUDA kernels. */
#include <math.h>
#include "tensor/internal.h"
#include "tensor/eltwise.h"
#include "tensor/vmath.h"
#include "tensor/cpu/eltwise_vec.h"

#define VG_U_LOOP(EXPR)                                                   \
  if (so == 1 && sx == 1) {                                               \
    for (int64_t i = 0; i < n; i++) { float v = x[i]; o[i] = (EXPR); }    \
  } else {                                                                \
    for (int64_t i = 0; i < n; i++) { float v = x[i * sx]; o[i * so] = (EXPR); } \
  }                                                                       \
  break;
#define VG_U_LOOP_any(EXPR) VG_U_LOOP(EXPR)
/* a loop per common exponent: the block's constant a folds FWD's tests of a away */
#define VG_U_LOOP_pow(EXPR)                                               \
  if (a == 2.0f) { const float a = 2.0f; VG_U_LOOP(EXPR) }                \
  else if (a == 1.0f) { const float a = 1.0f; VG_U_LOOP(EXPR) }           \
  else if (a == 0.5f) { const float a = 0.5f; VG_U_LOOP(EXPR) }           \
  else if (a == -1.0f) { const float a = -1.0f; VG_U_LOOP(EXPR) }         \
  else { VG_U_LOOP(EXPR) }                                                \
  break;

void VG_ROW(unary)(vg_unary_kind k, const vg_unary_params *p, float *o, int64_t so, const float *x, int64_t sx,
                   int64_t n) {
  const float a = (float)p->a, b = (float)p->b;
  (void)a, (void)b;
#ifdef VG_VEC_W
  /* the transcendental rows GCC leaves scalar: eltwise_vec.h's SIMD copies (same values) */
  if (so == 1 && sx == 1) switch (k) {
      case VG_UK_EXP: VG_V_ROW(vg_v_expf, o, x, n); return;
      case VG_UK_ERF: VG_V_ROW(vg_v_erff, o, x, n); return;
      case VG_UK_GELU: VG_V_ROW(vg_v_geluf, o, x, n); return;
      case VG_UK_TANH: VG_V_ROW(vg_v_tanhf, o, x, n); return;
      case VG_UK_SIGMOID: VG_V_ROW(vg_v_sigmoidf, o, x, n); return;
      case VG_UK_SILU: VG_V_ROW(vg_v_siluf, o, x, n); return;
      default: break;
    }
#endif
  switch (k) {
#define VG_UOP(NAME, name, DIFF, FE, HOIST, FWD, GRAD) case VG_UK_##NAME: VG_U_LOOP_##HOIST(FWD)
#include "tensor/unary.def"
#undef VG_UOP
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
#define VG_B_T_float float
#define VG_B_T_bool uint8_t
#define VG_B_LOOP_any(T, EXPR) VG_B_LOOP(T, EXPR)
/* alpha == 1 (plain add): the block's constant folds alpha * v to v */
#define VG_B_LOOP_alpha1(T, EXPR)                                                       \
  if (alpha == 1.0f) { const float alpha = 1.0f; VG_B_LOOP(T, EXPR) }                   \
  else { VG_B_LOOP(T, EXPR) }                                                           \
  break;

void VG_ROW(binary)(vg_binary_kind k, const vg_binary_params *p, void *out, int64_t so, const float *a, int64_t sa,
                    const float *b, int64_t sb, int64_t n) {
  const float alpha = (float)p->alpha;
  (void)alpha;
  switch (k) {
#define VG_BOP(NAME, name, DIFF, OUT, HOIST, FWD, GRADX, GRADY) case VG_BK_##NAME: VG_B_LOOP_##HOIST(VG_B_T_##OUT, FWD)
#include "tensor/binary.def"
#undef VG_BOP
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

#ifdef VG_VEC_W
/* o[k] = vg_expf(x[k] - m) (kmath/norm.h's vg_nm_exp_shifted) for tensor/cpu/norm.c */
void VG_ROW(exp_shifted)(float *o, const float *x, float m, int64_t n) {
  const vg_vf mv = vg_v_splat(m);
#define VG_V_EXPSH(v) vg_v_expf((v) - mv)
  VG_V_ROW(VG_V_EXPSH, o, x, n);
#undef VG_V_EXPSH
}

/* norm.c's row_max: the NaN-propagating max of a row, the scalar loop's value exactly (of
 * equal maxima it keeps the first: +-0 ties take the first zero's sign) */
float VG_ROW(row_max)(const float *a, int64_t n) {
  vg_vf mv = vg_v_splat(-INFINITY);
  vg_vi nanv = {0};
  int64_t i = 0;
  for (; i + VG_VEC_W <= n; i += VG_VEC_W) {
    vg_vf v = vg_v_load(a + i);
    mv = vg_v_sel(v > mv, v, mv);
    nanv |= v != v;
  }
  float m = -INFINITY;
  int nan = 0;
  for (int l = 0; l < VG_VEC_W; l++) {
    m = mv[l] > m ? mv[l] : m;
    nan |= nanv[l] != 0;
  }
  for (; i < n; i++) {
    m = a[i] > m ? a[i] : m;
    nan |= a[i] != a[i];
  }
  if (nan) return NAN;
  if (m == 0.0f)
    for (i = 0; i < n; i++)
      if (a[i] == 0.0f) return a[i];
  return m;
}
#endif
