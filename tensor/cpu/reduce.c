/* reduce.c — sum / amax / amin over any set of dims, and argmax over one dim.
 *
 * The reduced dims are coalesced and ordered by decreasing stride, so the innermost
 * loop walks the smallest stride; sums accumulate in double with 8 independent
 * accumulators in a fixed order. Outputs are split across threads; when there are
 * few outputs and much to reduce, each output's reduction is split into fixed chunks
 * of rows whose partial results are combined in chunk order, so the result is the
 * same for any thread count. */
#include "tensor/cpu/kernels.h"
#include "tensor/kmath/bits.h"
#include "tensor/kmath/reduce.h"
#include "base/threadpool.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_op op;
  const float *x;
  int nk, nr;                                  /* kept / reduced dims */
  int64_t kshape[VG_MAX_DIMS], kstride[VG_MAX_DIMS];
  int64_t rshape[VG_MAX_DIMS], rstride[VG_MAX_DIMS];
  int64_t inner, istride;                      /* innermost reduced run */
  int64_t nrows;                               /* product of the other reduced dims */
  int64_t rows_per_chunk, nchunks;
  float *out;
  double *partial;                             /* [nout][nchunks] when chunked */
} red_ctx;

static double init_val(vg_op op) { return vg_reduce_init((int)op); }   /* tensor/kmath/reduce.h */
static double combine(vg_op op, double a, double b) { return vg_reduce_combine((int)op, a, b); }

/* vectorized (GCC's -O2 leaves it scalar): the 8 accumulators are the lanes of one vector,
 * each summed in the same order, so the same bits */
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
static double reduce_run(vg_op op, const float *p, int64_t n, int64_t s) {
  if (op == VG_OP_SUM) {
    double acc[8] = {0};
    int64_t i = 0;
    if (s == 1) {
      for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += p[i + j];
    } else {
      for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += p[(i + j) * s];
    }
    double t = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) t += p[i * s];
    return t;
  }
  float m = op == VG_OP_AMAX ? -INFINITY : INFINITY;
  bool nan = false;
  for (int64_t i = 0; i < n; i++) {
    float v = p[i * s];
    nan |= v != v;
    m = op == VG_OP_AMAX ? (v > m ? v : m) : (v < m ? v : m);
  }
  return nan ? NAN : m;
}

/* reduces rows [r0, r1) of output o's reduction */
static double reduce_rows(const red_ctx *r, int64_t o, int64_t r0, int64_t r1) {
  int64_t base = vg_unravel_offset(o, r->nk, r->kshape, r->kstride), t = r0;
  double acc = init_val(r->op);
  int64_t idx[VG_MAX_DIMS] = {0};
  for (int d = r->nr - 2; d >= 0; d--) {
    idx[d] = t % r->rshape[d];
    t /= r->rshape[d];
  }
  for (int64_t row = r0; row < r1; row++) {
    int64_t off = base;
    for (int d = 0; d < r->nr - 1; d++) off += idx[d] * r->rstride[d];
    acc = combine(r->op, acc, reduce_run(r->op, r->x + off, r->inner, r->istride));
    for (int d = r->nr - 2; d >= 0; d--) {
      if (++idx[d] < r->rshape[d]) break;
      idx[d] = 0;
    }
  }
  return acc;
}

/* The sums of 8 adjacent outputs whose runs (n elements s apart) start at p + 0..7 (a
 * column sum such as a bias gradient): reduce_run's accumulators and order for each, side
 * by side, so each output has reduce_rows' value while the 8 columns are read a row at a
 * time (vectorized) instead of 8 strided walks. */
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
static void sum_cols8(const float *p, int64_t n, int64_t s, float *out) {
  double acc[8][8] = {{0}};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++)
      for (int l = 0; l < 8; l++) acc[j][l] += p[(i + j) * s + l];
  for (int l = 0; l < 8; l++) {
    double t = ((acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l])) + ((acc[4][l] + acc[5][l]) + (acc[6][l] + acc[7][l]));
    for (int64_t k = i; k < n; k++) t += p[k * s + l];
    out[l] = (float)combine(VG_OP_SUM, init_val(VG_OP_SUM), t);
  }
}

static void by_output(void *p, int64_t o0, int64_t o1, int tid) {
  (void)tid;
  red_ctx *r = p;
  /* one reduced run per output, outputs adjacent in x: 8 at a time */
  const int64_t run = r->op == VG_OP_SUM && r->nr == 1 && r->nk >= 1 && r->kstride[r->nk - 1] == 1 &&
                      r->istride != 1 ? r->kshape[r->nk - 1] : 0;
  for (int64_t o = o0; o < o1;) {
    if (run && o + 8 <= o1 && o % run + 8 <= run) {
      sum_cols8(r->x + vg_unravel_offset(o, r->nk, r->kshape, r->kstride), r->inner, r->istride, r->out + o);
      o += 8;
    } else {
      r->out[o] = (float)reduce_rows(r, o, 0, r->nrows);
      o++;
    }
  }
}

static void by_chunk(void *p, int64_t u0, int64_t u1, int tid) {
  (void)tid;
  red_ctx *r = p;
  for (int64_t u = u0; u < u1; u++) {
    int64_t o = u / r->nchunks, ch = u % r->nchunks;
    int64_t a = ch * r->rows_per_chunk, b = a + r->rows_per_chunk < r->nrows ? a + r->rows_per_chunk : r->nrows;
    r->partial[u] = reduce_rows(r, o, a, b);
  }
}

static void reduce_mask(const vg_opcall *c) {
  const vg_tensor *x = c->in[0];
  unsigned mask = (unsigned)c->p.reduce.mask;
  red_ctx r = {.op = c->op, .x = vg_f32(x), .out = vg_f32(c->out[0])};
  int64_t nout = vg_numel(c->out[0]);
  if (nout == 0) return;
  /* kept dims keep their order (they index the contiguous output) */
  for (int d = 0; d < x->ndim; d++)
    if (!(mask >> d & 1)) {
      r.kshape[r.nk] = x->shape[d];
      r.kstride[r.nk++] = x->stride[d];
    }
  /* reduced dims: drop size 1, sort by decreasing |stride|, merge contiguous neighbours */
  int64_t rs[VG_MAX_DIMS], rt[VG_MAX_DIMS];
  int nr = 0;
  for (int d = 0; d < x->ndim; d++)
    if ((mask >> d & 1) && x->shape[d] != 1) {
      rs[nr] = x->shape[d];
      rt[nr++] = x->stride[d];
    }
  for (int i = 1; i < nr; i++)
    for (int j = i; j > 0 && llabs(rt[j]) > llabs(rt[j - 1]); j--) {
      int64_t a = rs[j], b = rt[j];
      rs[j] = rs[j - 1]; rt[j] = rt[j - 1];
      rs[j - 1] = a; rt[j - 1] = b;
    }
  for (int i = 0; i < nr; i++) {
    if (r.nr > 0 && r.rstride[r.nr - 1] == rt[i] * rs[i]) {
      r.rshape[r.nr - 1] *= rs[i];
      r.rstride[r.nr - 1] = rt[i];
    } else {
      r.rshape[r.nr] = rs[i];
      r.rstride[r.nr++] = rt[i];
    }
  }
  if (r.nr == 0) {
    r.rshape[0] = 1;
    r.rstride[0] = 1;
    r.nr = 1;
  }
  for (int d = 0; d < x->ndim; d++)
    if ((mask >> d & 1) && x->shape[d] == 0) {
      for (int64_t o = 0; o < nout; o++) r.out[o] = (float)init_val(c->op);
      return;
    }
  r.inner = r.rshape[r.nr - 1];
  r.istride = r.rstride[r.nr - 1];
  r.nrows = 1;
  for (int d = 0; d < r.nr - 1; d++) r.nrows *= r.rshape[d];
  int64_t total = r.nrows * r.inner;
  /* the split depends on sizes only, never on the thread count */
  if (nout >= 64 || total < (1 << 16)) {
    int64_t grain = (1 << 15) / (total ? total : 1);
    vg_parallel_for(nout, grain < 1 ? 1 : grain, by_output, &r);
    return;
  }
  /* few outputs, large reductions: fixed row chunks of ~64K elements each */
  r.rows_per_chunk = (1 << 16) / r.inner;
  if (r.rows_per_chunk < 1) r.rows_per_chunk = 1;
  r.nchunks = (r.nrows + r.rows_per_chunk - 1) / r.rows_per_chunk;
  if (r.nchunks == 1 && r.inner > (1 << 16)) {
    /* one long contiguous run: split it into pieces as rows */
    int64_t piece = 1 << 16;
    while (r.inner % piece) piece >>= 1;
    if (piece > 1) {
      r.rshape[r.nr - 1] = r.inner / piece;
      r.rstride[r.nr - 1] = piece * r.istride;
      r.rshape[r.nr] = piece;
      r.rstride[r.nr] = r.istride;
      r.nr++;
      r.inner = piece;
      r.nrows *= r.rshape[r.nr - 2];
      r.rows_per_chunk = 1;
      r.nchunks = r.nrows;
    }
  }
  size_t bytes = sizeof(double) * (size_t)(nout * r.nchunks);
  r.partial = vg_scope_alloc(bytes);
  vg_parallel_for(nout * r.nchunks, 1, by_chunk, &r);
  for (int64_t o = 0; o < nout; o++) {
    double acc = init_val(c->op);
    for (int64_t ch = 0; ch < r.nchunks; ch++) acc = combine(c->op, acc, r.partial[o * r.nchunks + ch]);
    r.out[o] = (float)acc;
  }
  if (!vg_in_scope()) free(r.partial);
}

static void argmax(const vg_opcall *c) {
  const vg_tensor *x = c->in[0];
  int d = (int)c->p.argmax.dim;
  const float *px = vg_f32(x);
  int64_t *po = (int64_t *)vg_data(c->out[0]);
  int64_t nout = vg_numel(c->out[0]), n = x->shape[d], s = x->stride[d];
  int64_t kshape[VG_MAX_DIMS], kstride[VG_MAX_DIMS];   /* the kept dims */
  int nk = 0;
  for (int k = 0; k < x->ndim; k++)
    if (k != d) {
      kshape[nk] = x->shape[k];
      kstride[nk++] = x->stride[k];
    }
  for (int64_t o = 0; o < nout; o++) {
    int64_t off = vg_unravel_offset(o, nk, kshape, kstride), best = 0;
    float bv = px[off];
    for (int64_t i = 1; i < n && bv == bv; i++) vg_argmax_step(px[off + i * s], i, &bv, &best);
    po[o] = best;
  }
}

void vg_cpu_reduce(const vg_opcall *c) {
  if (c->op == VG_OP_ARGMAX) argmax(c);
  else reduce_mask(c);
}
