/* iter.h — strided N-operand iteration for the CPU kernels (internal).
 *
 * Operand 0 is the output (any strides); inputs are broadcast to its shape. Dims are
 * coalesced where every operand allows it, size-1 dims dropped, then the iteration is
 * a sequence of rows (the innermost dim) handed to fn with each operand's pointer and
 * element stride. Rows are split across threads in fixed chunks. */
#ifndef VG_CPU_ITER_H
#define VG_CPU_ITER_H
#include "tensor/internal.h"

#define VG_ITER_MAX 4

typedef struct {
  int nop, ndim;
  int64_t shape[VG_MAX_DIMS];
  int64_t stride[VG_ITER_MAX][VG_MAX_DIMS];  /* elements */
  char *base[VG_ITER_MAX];
  size_t esz[VG_ITER_MAX];
} vg_iter;

/* ops[0] = output; inputs broadcast to ops[0]'s shape. */
void vg_iter_init(vg_iter *it, int nop, const vg_tensor *const *ops);
typedef void (*vg_iter_row_fn)(void *ctx, char *const *ptr, const int64_t *stride, int64_t n);
void vg_iter_run(const vg_iter *it, vg_iter_row_fn fn, void *ctx);
#endif
