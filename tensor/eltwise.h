/* eltwise.h — the elementwise op kinds (internal; tensor/, autograd/): typed subsets of
 * vg_op generated from tensor/unary.def and tensor/binary.def, with the same values, so
 * a kernel switches over exactly the rows of its table (no default:, -Werror=switch: a
 * row without a case does not compile). The math of each row is in its FWD column. */
#ifndef VG_TENSOR_ELTWISE_H
#define VG_TENSOR_ELTWISE_H
#include "tensor/tensor.h"

typedef enum {
#define VG_UOP(NAME, name, DIFF, FE, HOIST, FWD, GRAD) VG_UK_##NAME = VG_OP_##NAME,
#include "tensor/unary.def"
#undef VG_UOP
} vg_unary_kind;

typedef enum {
#define VG_BOP(NAME, name, DIFF, OUT, HOIST, FWD, GRADX, GRADY) VG_BK_##NAME = VG_OP_##NAME,
#include "tensor/binary.def"
#undef VG_BOP
} vg_binary_kind;

/* The dtype two float operands compute in and a float result has: torch's promotion (the
 * same dtype stays, f16 with f32 gives f32), except that a 0-d operand does not promote a
 * dimensioned one (f16 n-d with f32 0-d: f16). The front-ends (tensor/ops_math.c) and the
 * CUDA kernels (a binary op of mixed inputs converts one first) use this one rule. */
static inline vg_dtype vg_promote_float(const vg_tensor *a, const vg_tensor *b) {
  if (a->dtype == b->dtype) return a->dtype;
  if ((a->ndim == 0) != (b->ndim == 0)) return a->ndim ? a->dtype : b->dtype;
  return VG_F32;
}
#endif
