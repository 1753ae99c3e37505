/* matmul.cu — batched matmul with broadcast batch dims on cuBLAS, in fp32 without
 * TF32 (CUBLAS_DEFAULT_MATH set at init).
 *
 * Row-major C (M,N) = A (M,K) B (K,N) is column-major C^T = B^T A^T, so cuBLAS gets
 * (B, A) with m = N, n = M. An operand whose last two dims have a unit stride in
 * either position is passed as is (op N or T); its batch dims must collapse to one
 * stride (or be all broadcast), else it is copied contiguous with the output's batch
 * shape first. f16 operands (both; the front-end refuses a mixed pair) go through
 * cublasGemmStridedBatchedEx with f32 compute and an f16 result (f16.cuh). */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/f16.cuh"
#include "tensor/kmath/matmul.h"
#include <string.h>

typedef struct {
  const void *p;
  cublasOperation_t op;   /* in cuBLAS's column-major view */
  int64_t ld, bstride;
  void *tmp;
} mm_operand;

/* layout of t's last two dims for cuBLAS: row-major (rows, cols) with row stride ld
 * is column-major (cols, rows) with ld: op N; column-major storage: op T */
static bool blas_layout(const vg_tensor *t, cublasOperation_t *op, int64_t *ld) {
  int trans = 0;
  bool ok = vg_mat_layout(t, &trans, ld);   /* tensor/kmath/matmul.h, as tensor/cpu/matmul.c */
  *op = trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  return ok;
}

/* one batch stride for t's batch dims seen with the output's batch shape, or false */
static bool batch_stride(const vg_tensor *t, int nb, const int64_t *bshape, int64_t *bs) {
  int64_t st[VG_MAX_DIMS];
  vg_mat_batch_strides(t, nb, st);
  /* drop size-1 output dims, then require all-zero or a single arithmetic sequence */
  int64_t s = -1, span = 1;
  bool zero = true;
  for (int d = nb - 1; d >= 0; d--) {
    if (bshape[d] == 1) continue;
    if (st[d] != 0) zero = false;
    if (s < 0) s = st[d];
    else if (st[d] != s * span) return false;
    span *= bshape[d];
  }
  if (zero) {
    *bs = 0;
    return true;
  }
  *bs = s;
  return s > 0 || span == 1;
}

static void prepare(const vg_tensor *t, int nb, const int64_t *bshape, mm_operand *m) {
  m->tmp = NULL;
  if (blas_layout(t, &m->op, &m->ld) && batch_stride(t, nb, bshape, &m->bstride)) {
    m->p = vg_data(t);
    return;
  }
  /* materialize with the output's batch dims: (batch..., rows, cols) contiguous */
  int64_t shape[VG_MAX_DIMS], rows = t->shape[t->ndim - 2], cols = t->shape[t->ndim - 1];
  for (int d = 0; d < nb; d++) shape[d] = bshape[d];
  shape[nb] = rows;
  shape[nb + 1] = cols;
  vg_tensor v = *t;
  v.ndim = nb + 2;
  memcpy(v.shape, shape, sizeof shape);
  vg_broadcast_strides(t, nb + 2, shape, v.stride);
  vg_tensor h = v;
  vg_contiguous_strides(nb + 2, shape, h.stride);
  h.offset = 0;
  vg_storage s = *t->storage;
  int64_t n = vg_numel(&h);
  s.data = m->tmp = vg_cuda_alloc((size_t)(n ? n : 1) * vg_dtype_size(t->dtype));
  h.storage = &s;
  vg_cu_copy_dd(&h, &v);
  m->p = m->tmp;
  m->op = CUBLAS_OP_N;
  m->ld = cols > 0 ? cols : 1;
  m->bstride = rows * cols;
}

void vg_cu_matmul(const vg_opcall *c) {
  const vg_tensor *a = c->in[0], *b = c->in[1];
  vg_tensor *out = c->out[0];
  int nb = out->ndim - 2;
  int64_t M = out->shape[nb], N = out->shape[nb + 1], K = a->shape[a->ndim - 1], batch = 1;
  for (int d = 0; d < nb; d++) batch *= out->shape[d];
  if (batch == 0 || M == 0 || N == 0) return;
  void *pc = vg_data(out);
  VG_ASSERT(a->dtype == b->dtype && out->dtype == a->dtype);
  if (K == 0) {
    VG_CUDA_CHECK(cudaMemsetAsync(pc, 0, vg_dtype_size(out->dtype) * (size_t)(batch * M * N), vg_cuda_stream()));
    return;
  }
  mm_operand ma, mb;
  prepare(a, nb, out->shape, &ma);
  prepare(b, nb, out->shape, &mb);
  VG_ASSERT(M <= 0x7fffffff && N <= 0x7fffffff && K <= 0x7fffffff && batch <= 0x7fffffff);
  vg_cu_gemm_sb(out->dtype, mb.op, ma.op, (int)N, (int)M, (int)K, mb.p, (int)mb.ld, mb.bstride, ma.p, (int)ma.ld,
                ma.bstride, 0.0f, pc, (int)N, M * N, (int)batch);
  VG_CUDA_LAUNCHED("matmul");
  vg_cuda_free(ma.tmp);
  vg_cuda_free(mb.tmp);
}
