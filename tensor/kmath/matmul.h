/* kmath/matmul.h — (host) how matmul reads its operands, written once for
 * tensor/cpu/matmul.c and tensor/cuda/matmul.cu: the GEMM layout of the last two dims
 * and the strides of the batch dims broadcast to the output's. */
#ifndef VG_KMATH_MATMUL_H
#define VG_KMATH_MATMUL_H
#include <stdbool.h>
#include <stdint.h>
#include "tensor/tensor.h"

/* t's last two dims (rows, cols) as a GEMM operand: row-major with row stride *ld
 * (*trans = 0) or column-major with column stride *ld (*trans = 1); false when neither
 * (the caller copies t to contiguous) */
static inline bool vg_mat_layout(const vg_tensor *t, int *trans, int64_t *ld) {
  int64_t rs = t->stride[t->ndim - 2], cs = t->stride[t->ndim - 1];
  int64_t rows = t->shape[t->ndim - 2], cols = t->shape[t->ndim - 1];
  if (cs == 1 || cols == 1) {
    *trans = 0;
    *ld = rows == 1 ? (cols > 0 ? cols : 1) : rs;
    return *ld >= (cols > 0 ? cols : 1);
  }
  if (rs == 1 || rows == 1) {
    *trans = 1;
    *ld = cols == 1 ? (rows > 0 ? rows : 1) : cs;
    return *ld >= (rows > 0 ? rows : 1);
  }
  return false;
}

/* st[d], d < nb: the stride of t along the output's batch dim d (0 where t broadcasts) */
static inline void vg_mat_batch_strides(const vg_tensor *t, int nb, int64_t *st) {
  int off = nb - (t->ndim - 2);
  for (int d = 0; d < nb; d++) {
    int td = d - off;
    st[d] = (td < 0 || t->shape[td] == 1) ? 0 : t->stride[td];
  }
}
#endif
