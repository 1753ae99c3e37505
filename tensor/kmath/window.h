/* kmath/window.h — (host) the output windows that pad and concat copy their inputs into,
 * written once for tensor/cpu/layout.c and tensor/cuda/conv.cu. */
#ifndef VG_KMATH_WINDOW_H
#define VG_KMATH_WINDOW_H
#include <stdint.h>
#include "tensor/op_params.h"
#include "tensor/tensor.h"

/* the view of out that src is copied into: src's shape, starting at start[d] per dim */
static inline vg_tensor vg_window_view(const vg_tensor *out, const int64_t *start, const vg_tensor *src) {
  vg_tensor view = *out;
  for (int d = 0; d < out->ndim; d++) {
    view.shape[d] = src->shape[d];
    view.offset += start[d] * out->stride[d];
  }
  return view;
}

/* pad: where the input starts in the output (pairs from the last dim backwards) */
static inline void vg_pad_starts(const vg_pad_params *pp, int ndim, int64_t *start) {
  for (int d = 0; d < ndim; d++) start[d] = 0;
  for (int p = 0; p < (int)pp->npairs; p++) start[ndim - 1 - p] = pp->pads[2 * p];
}
#endif
