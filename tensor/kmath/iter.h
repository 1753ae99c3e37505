/* kmath/iter.h — (host) the dim coalescing of the strided iterators, written once for
 * tensor/cpu/iter.c (vg_iter_init) and tensor/cuda/copy.cu (vg_cu_iter_init). */
#ifndef VG_KMATH_ITER_H
#define VG_KMATH_ITER_H
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "tensor/internal.h"

#define VG_KMATH_ITER_MAXOP 8

/* The iteration space of ops[0] (the output) and its operands ops[1, nop) broadcast to
 * it: drops the size-1 dims, then merges dim d into the kept dim before it when every
 * operand is contiguous across them. Writes the kept dims to oshape / ostride[k] and
 * returns their count (0 for a scalar or all-ones shape). */
static inline int vg_iter_coalesce(int nop, const vg_tensor *const *ops, int64_t *oshape,
                                   int64_t (*ostride)[VG_MAX_DIMS]) {
  const vg_tensor *out = ops[0];
  const int ndim = out->ndim;
  const int64_t *shape = out->shape;
  int64_t st[VG_KMATH_ITER_MAXOP][VG_MAX_DIMS];
  VG_ASSERT(nop >= 1 && nop <= VG_KMATH_ITER_MAXOP);
  for (int k = 0; k < nop; k++) {
    if (k == 0) memcpy(st[0], out->stride, sizeof st[0]);
    else vg_broadcast_strides(ops[k], ndim, shape, st[k]);
  }
  int nd = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    if (nd > 0) {
      bool merge = true;
      for (int k = 0; k < nop; k++)
        if (ostride[k][nd - 1] != st[k][d] * shape[d]) merge = false;
      if (merge) {
        oshape[nd - 1] *= shape[d];
        for (int k = 0; k < nop; k++) ostride[k][nd - 1] = st[k][d];
        continue;
      }
    }
    oshape[nd] = shape[d];
    for (int k = 0; k < nop; k++) ostride[k][nd] = st[k][d];
    nd++;
  }
  return nd;
}
#endif
