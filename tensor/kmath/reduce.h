/* kmath/reduce.h — the reductions' combining rules and the max rule of argmax and max
 * pooling (a NaN wins, as torch), written once for the CPU kernels (tensor/cpu/reduce.c,
 * pool.c) and the CUDA kernels (tensor/cuda/reduce.cu, pool.cu). */
#ifndef VG_KMATH_REDUCE_H
#define VG_KMATH_REDUCE_H
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include "tensor/kmath/bits.h"
#include "tensor/tensor.h"

/* sum / amax / amin: the identity, and two partial results combined (in double; NaN
 * propagates through amax and amin) */
static inline VG_HD double vg_reduce_init(int op) {
  return op == VG_OP_SUM ? 0.0 : op == VG_OP_AMAX ? -(double)INFINITY : (double)INFINITY;
}
static inline VG_HD double vg_reduce_combine(int op, double a, double b) {
  if (op == VG_OP_SUM) return a + b;
  if (a != a || b != b) return (double)vg_u2f(VG_QNAN_BITS);
  return op == VG_OP_AMAX ? (a > b ? a : b) : (a < b ? a : b);
}

/* v replaces the best so far m: larger, or NaN */
static inline VG_HD bool vg_max_takes(float v, float m) { return v > m || v != v; }

/* one step of argmax along a row: element i with value v (callers stop once *bv is NaN) */
static inline VG_HD void vg_argmax_step(float v, int64_t i, float *bv, int64_t *best) {
  if (vg_max_takes(v, *bv)) {
    *bv = v;
    *best = i;
  }
}
#endif
