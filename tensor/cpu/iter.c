#include "tensor/cpu/iter.h"
#include "tensor/kmath/iter.h"
#include "base/threadpool.h"
#include <string.h>

void vg_iter_init(vg_iter *it, int nop, const vg_tensor *const *ops) {
  VG_ASSERT(nop >= 1 && nop <= VG_ITER_MAX);
  const vg_tensor *out = ops[0];
  for (int k = 0; k < nop; k++) {
    it->base[k] = (char *)vg_data(ops[k]);
    it->esz[k] = vg_dtype_size(ops[k]->dtype);
  }
  it->nop = nop;
  /* drop size-1 dims, merge dims every operand is contiguous across (tensor/kmath/iter.h) */
  int nd = vg_iter_coalesce(nop, ops, it->shape, it->stride);
  if (nd == 0) { /* scalar or all-ones shape: one row of one element */
    it->shape[0] = 1;
    for (int k = 0; k < nop; k++) it->stride[k][0] = 1;
    nd = 1;
  }
  for (int d = 0; d < out->ndim; d++)
    if (out->shape[d] == 0) it->shape[0] = 0;
  it->ndim = nd;
}

typedef struct {
  const vg_iter *it;
  vg_iter_row_fn fn;
  void *ctx;
  int64_t nb, bs;   /* each row split into nb blocks of bs elements */
} run_ctx;

#define VG_ITER_BLOCK 16384

/* Units are (row, block) pairs, u = row * nb + block. */
static void run_units(void *p, int64_t u0, int64_t u1, int tid) {
  (void)tid;
  const run_ctx *rc = p;
  const vg_iter *it = rc->it;
  int nd = it->ndim, nop = it->nop;
  int64_t inner = it->shape[nd - 1];
  int64_t idx[VG_MAX_DIMS] = {0};
  int64_t r = u0 / rc->nb;
  for (int d = nd - 2; d >= 0; d--) {
    idx[d] = r % it->shape[d];
    r /= it->shape[d];
  }
  int64_t istride[VG_ITER_MAX];
  for (int k = 0; k < nop; k++) istride[k] = it->stride[k][nd - 1];
  for (int64_t u = u0; u < u1; u++) {
    int64_t blk = u % rc->nb, start = blk * rc->bs, len = inner - start < rc->bs ? inner - start : rc->bs;
    char *ptr[VG_ITER_MAX];
    for (int k = 0; k < nop; k++) {
      int64_t off = start * istride[k];
      for (int d = 0; d < nd - 1; d++) off += idx[d] * it->stride[k][d];
      ptr[k] = it->base[k] + off * (int64_t)it->esz[k];
    }
    rc->fn(rc->ctx, ptr, istride, len);
    if (blk == rc->nb - 1)
      for (int d = nd - 2; d >= 0; d--) {
        if (++idx[d] < it->shape[d]) break;
        idx[d] = 0;
      }
  }
}

void vg_iter_run(const vg_iter *it, vg_iter_row_fn fn, void *ctx) {
  int64_t inner = it->shape[it->ndim - 1], rows = 1;
  if (inner == 0) return;
  for (int d = 0; d < it->ndim - 1; d++) rows *= it->shape[d];
  if (rows == 0) return;
  run_ctx rc = {it, fn, ctx, 1, inner};
  if (inner > VG_ITER_BLOCK) {
    rc.nb = (inner + VG_ITER_BLOCK - 1) / VG_ITER_BLOCK;
    rc.bs = VG_ITER_BLOCK;
  }
  int64_t units = rows * rc.nb;
  if (rows * inner < 65536) {
    run_units(&rc, 0, units, 0);
    return;
  }
  int64_t grain = rc.nb > 1 ? 1 : 32768 / inner;
  vg_parallel_for(units, grain < 1 ? 1 : grain, run_units, &rc);
}
