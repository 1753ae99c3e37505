/* index.c — gather, scatter_add, index_select, index_add on the CPU (torch semantics;
 * the front-ends have checked shapes and that every index is in range).
 *
 *   gather:       out[..i..] = x[..index[..i..]..]          (index along dim, out ~ index)
 *   scatter_add:  out = base; out[..index[..i..]..] += src[..i..]
 *   index_select: out[o, k, :] = x[o, index[k], :]          ((outer, dim, inner) view)
 *   index_add:    out = base; out[o, index[k], :] += src[o, k, :]
 *
 * Any dtype for the data, i64 indices, any input strides. The scatters are split so
 * that no two tasks touch one output element: scatter_add over the index positions
 * off `dim` (a column along dim is one task), index_add over (outer, inner block);
 * within a task the adds run in index order, so results do not depend on threads. */
#include "tensor/cpu/kernels.h"
#include "tensor/kmath/index.h"
#include "base/threadpool.h"
#include <string.h>

/* shape/strides with 0-d tensors seen as 1-d of size 1 */
typedef struct {
  int nd;
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  char *base;
  size_t es;
} strided;

static strided view_of(const vg_tensor *t) {
  strided s = {.nd = t->ndim ? t->ndim : 1, .es = vg_dtype_size(t->dtype)};
  s.shape[0] = 1;
  s.stride[0] = 0;
  for (int d = 0; d < t->ndim; d++) {
    s.shape[d] = t->shape[d];
    s.stride[d] = t->stride[d];
  }
  s.base = (char *)t->storage->data + t->offset * (int64_t)s.es;
  return s;
}

static inline void copy_elem(char *dst, const char *src, size_t es) {
  switch (es) {
    case 1: *dst = *src; return;
    case 2: memcpy(dst, src, 2); return;
    case 4: memcpy(dst, src, 4); return;
    default: memcpy(dst, src, 8); return;
  }
}

/* dst += src in dtype dt: tensor/kmath/index.h (shared with tensor/cuda/index.cu) */
static inline void add_elem(char *dst, const char *src, vg_dtype dt) { vg_add_elem(dst, src, (int)dt); }

typedef struct {
  strided x, ix, out, src;   /* gather: x, ix -> out; scatter_add: src, ix -> out */
  int dim;
  vg_dtype dt;
} scatter_ctx;

/* gather: one task per row of the index's last dim */
static void gather_rows(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const scatter_ctx *p = ctx;
  int nd = p->ix.nd, dim = p->dim;
  int64_t last = p->ix.shape[nd - 1];
  const int64_t *ip0 = (const int64_t *)(const void *)p->ix.base;
  for (int64_t r = b; r < e; r++) {
    int64_t rem = r, xo = 0, io = 0;
    for (int d = nd - 2; d >= 0; d--) {
      int64_t cd = rem % p->ix.shape[d];
      rem /= p->ix.shape[d];
      io += cd * p->ix.stride[d];
      if (d != dim) xo += cd * p->x.stride[d];
    }
    char *o = p->out.base + r * last * (int64_t)p->out.es;
    int64_t xs_last = dim == nd - 1 ? 0 : p->x.stride[nd - 1];
    for (int64_t j = 0; j < last; j++) {
      int64_t iv = ip0[io + j * p->ix.stride[nd - 1]];
      copy_elem(o + j * (int64_t)p->out.es, p->x.base + (xo + iv * p->x.stride[dim] + j * xs_last) * (int64_t)p->x.es,
                p->x.es);
    }
  }
}

/* scatter_add: one task per column along dim of the index */
static void scatter_cols(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const scatter_ctx *p = ctx;
  int nd = p->ix.nd, dim = p->dim;
  const int64_t *ip0 = (const int64_t *)(const void *)p->ix.base;
  for (int64_t col = b; col < e; col++) {
    int64_t rem = col, oo = 0, io = 0, so = 0;
    for (int d = nd - 1; d >= 0; d--) {
      if (d == dim) continue;
      int64_t cd = rem % p->ix.shape[d];
      rem /= p->ix.shape[d];
      io += cd * p->ix.stride[d];
      so += cd * p->src.stride[d];
      oo += cd * p->out.stride[d];
    }
    for (int64_t j = 0; j < p->ix.shape[dim]; j++) {
      int64_t iv = ip0[io + j * p->ix.stride[dim]];
      add_elem(p->out.base + (oo + iv * p->out.stride[dim]) * (int64_t)p->out.es,
               p->src.base + (so + j * p->src.stride[dim]) * (int64_t)p->src.es, p->dt);
    }
  }
}

typedef struct {
  const char *x;          /* index_select: x; index_add: src (both contiguous) */
  char *out;
  const int64_t *idx;     /* K values, stride idx_st */
  int64_t idx_st;
  int64_t outer, D, K, inner, block;
  size_t es;
  vg_dtype dt;
} isel_ctx;

static void select_rows(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const isel_ctx *p = ctx;
  size_t row = (size_t)p->inner * p->es;
  for (int64_t r = b; r < e; r++) {
    int64_t o = r / p->K, k = r % p->K, iv = p->idx[k * p->idx_st];
    memcpy(p->out + (size_t)r * row, p->x + (size_t)(o * p->D + iv) * row, row);
  }
}

static void index_add_blocks(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const isel_ctx *p = ctx;
  int64_t nblk = (p->inner + p->block - 1) / p->block, es = (int64_t)p->es;
  for (int64_t t = b; t < e; t++) {
    int64_t o = t / nblk, i0 = (t % nblk) * p->block, i1 = i0 + p->block < p->inner ? i0 + p->block : p->inner;
    for (int64_t k = 0; k < p->K; k++) {
      int64_t iv = p->idx[k * p->idx_st];
      char *dst = p->out + ((o * p->D + iv) * p->inner) * es;
      const char *src = p->x + ((o * p->K + k) * p->inner) * es;
      if (p->dt == VG_F32) {
        float *d = (float *)(void *)dst;
        const float *s = (const float *)(const void *)src;
        for (int64_t i = i0; i < i1; i++) d[i] += s[i];
      } else {
        for (int64_t i = i0; i < i1; i++) add_elem(dst + i * es, src + i * es, p->dt);
      }
    }
  }
}

/* out = base (out contiguous, base any strides) */
static void copy_base(vg_tensor *out, const vg_tensor *base) {
  if (vg_numel(out) == 0) return;
  const vg_tensor *in[1] = {base};
  vg_opcall cc = {.op = VG_OP_COPY, .nin = 1, .in = in, .out = {out}};
  vg_cpu_eltwise(&cc);
}

static void dim_split(const vg_tensor *t, int dim, int64_t *outer, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < dim; d++) *outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
}

static void index_select_op(const vg_opcall *c, bool add) {
  const vg_tensor *data = add ? c->in[2] : c->in[0], *ix = c->in[1];
  vg_tensor *out = c->out[0];
  int dim = (int)c->p.dim.dim;
  if (add) copy_base(out, c->in[0]);
  isel_ctx p = {.idx = (const int64_t *)vg_data(ix), .idx_st = ix->ndim ? ix->stride[0] : 0, .K = vg_numel(ix),
                .D = add ? out->shape[dim] : data->shape[dim], .es = vg_dtype_size(out->dtype), .dt = out->dtype,
                .out = vg_data(out)};
  dim_split(out, dim, &p.outer, &p.inner);
  if (p.outer * p.K * p.inner == 0) return;
  vg_tensor *tmp = NULL;
  if (!vg_is_contiguous(data)) data = tmp = vg_copy_raw(data);
  p.x = vg_data(data);
  if (add) {
    p.block = 1024;
    int64_t nblk = (p.inner + p.block - 1) / p.block;
    int64_t grain = (1 << 14) / (p.K * (p.inner < p.block ? p.inner : p.block));
    vg_parallel_for(p.outer * nblk, grain < 1 ? 1 : grain, index_add_blocks, &p);
  } else {
    int64_t grain = (1 << 15) / p.inner;
    vg_parallel_for(p.outer * p.K, grain < 1 ? 1 : grain, select_rows, &p);
  }
  if (tmp && (tmp->flags & VG_TF_HEAP)) vg_tensor_free(tmp);
}

void vg_cpu_gather(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  if (vg_numel(out) == 0) return;
  scatter_ctx p = {.x = view_of(c->in[0]), .ix = view_of(c->in[1]), .out = view_of(out), .dim = (int)c->p.dim.dim};
  int64_t last = p.ix.shape[p.ix.nd - 1], rows = vg_numel(out) / last;
  int64_t grain = (1 << 14) / last;
  vg_parallel_for(rows, grain < 1 ? 1 : grain, gather_rows, &p);
}

void vg_cpu_scatter_add(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  copy_base(out, c->in[0]);
  scatter_ctx p = {.ix = view_of(c->in[1]), .src = view_of(c->in[2]), .out = view_of(out), .dim = (int)c->p.dim.dim,
                   .dt = out->dtype};
  int64_t along = p.ix.shape[p.dim], n = vg_numel(c->in[1]);
  if (n == 0) return;
  int64_t grain = (1 << 14) / along;
  vg_parallel_for(n / along, grain < 1 ? 1 : grain, scatter_cols, &p);
}

void vg_cpu_index_select(const vg_opcall *c) { index_select_op(c, false); }
void vg_cpu_index_add(const vg_opcall *c) { index_select_op(c, true); }
