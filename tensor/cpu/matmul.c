/* matmul.c — batched matmul with broadcast batch dims on top of vg_sgemm.
 * A matrix operand whose last two dims have unit stride in either position is passed
 * to the GEMM as is (row-major, or transposed); otherwise it is copied contiguous. */
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/isa.h"
#include "tensor/kmath/matmul.h"
#include "base/threadpool.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  const float *p;
  int64_t bstride[VG_MAX_DIMS];   /* strides over the output's batch dims */
  int trans;
  int64_t ld;
} mat_operand;

typedef struct {
  mat_operand a, b;
  int nb;                           /* batch dims */
  int64_t bshape[VG_MAX_DIMS];
  int64_t M, N, K;
  float *c;
} mm_ctx;

static void run_batch(void *p, int64_t b0, int64_t b1, int tid) {
  (void)tid;
  const mm_ctx *m = p;
  for (int64_t b = b0; b < b1; b++) {
    int64_t oa = 0, ob = 0, t = b;
    for (int d = m->nb - 1; d >= 0; d--) {
      int64_t i = t % m->bshape[d];
      t /= m->bshape[d];
      oa += i * m->a.bstride[d];
      ob += i * m->b.bstride[d];
    }
    vg_sgemm(m->a.trans, m->b.trans, m->M, m->N, m->K, 1.0f, m->a.p + oa, m->a.ld, m->b.p + ob, m->b.ld, 0.0f,
             m->c + b * m->M * m->N, m->N);
  }
}

void vg_cpu_matmul(const vg_opcall *c) {
  const vg_tensor *a = c->in[0], *b = c->in[1];
  vg_tensor *out = c->out[0];
  mm_ctx m = {.nb = out->ndim - 2, .c = vg_f32(out)};
  m.M = out->shape[out->ndim - 2];
  m.N = out->shape[out->ndim - 1];
  m.K = a->shape[a->ndim - 1];
  const vg_tensor *ops[2] = {a, b};
  mat_operand *mo[2] = {&m.a, &m.b};
  float *tmp[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    const vg_tensor *t = ops[k];
    if (!vg_mat_layout(t, &mo[k]->trans, &mo[k]->ld)) {
      /* copy to contiguous in a temporary */
      vg_tensor *ct = vg_copy_raw(t);
      t = ct;
      mo[k]->trans = 0;
      mo[k]->ld = t->shape[t->ndim - 1] > 0 ? t->shape[t->ndim - 1] : 1;
      if (!vg_in_scope()) tmp[k] = (float *)ct; /* heap header to free below */
    }
    mo[k]->p = vg_f32(t);
    vg_mat_batch_strides(t, m.nb, mo[k]->bstride);
  }
  int64_t batch = 1;
  for (int d = 0; d < m.nb; d++) {
    m.bshape[d] = out->shape[d];
    batch *= out->shape[d];
  }
  if (batch > 0 && m.M > 0 && m.N > 0) {
    /* small matrices: one GEMM per task; large ones: the GEMM threads itself */
    if (batch > 1 && m.M * m.N * (m.K + 1) < (1 << 18)) vg_parallel_for(batch, 1, run_batch, &m);
    else run_batch(&m, 0, batch, 0);
  }
  for (int k = 0; k < 2; k++)
    if (tmp[k]) vg_tensor_free((vg_tensor *)tmp[k]);
}
