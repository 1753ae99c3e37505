/* backend.c — the CPU backend: its kernel table (one kernel per op of tensor/ops.def,
 * checked complete when registered), memory, and the elementwise kernels. */
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/iter.h"
#include "tensor/cpu/isa.h"
#include "tensor/eltwise.h"
#include "tensor/vmath.h"
#include "base/mem.h"
#include <math.h>
#include <string.h>

static void *cpu_alloc(size_t n) {
  void *p = vg_mem_alloc(n);
  if (!p) VG_ABORT("out of memory allocating %zu bytes", n);
  return p;
}

/* the kernel of every op (vg_backend_register checks that none but the views' is missing) */
const vg_backend vg_cpu_backend = {
    .name = "cpu",
    .kernel = {[VG_OP_COPY] = vg_cpu_copy, [VG_OP_FILL] = vg_cpu_fill, [VG_OP_ARANGE] = vg_cpu_arange,
#define VG_UOP(NAME, ...) [VG_OP_##NAME] = vg_cpu_unary,
#include "tensor/unary.def"
#undef VG_UOP
#define VG_BOP(NAME, ...) [VG_OP_##NAME] = vg_cpu_binary,
#include "tensor/binary.def"
#undef VG_BOP
               [VG_OP_WHERE] = vg_cpu_where,
               [VG_OP_SUM] = vg_cpu_reduce, [VG_OP_AMAX] = vg_cpu_reduce, [VG_OP_AMIN] = vg_cpu_reduce,
               [VG_OP_ARGMAX] = vg_cpu_reduce,
               [VG_OP_MATMUL] = vg_cpu_matmul,
               [VG_OP_CONV2D] = vg_cpu_conv2d_op, [VG_OP_CONV2D_BWD_DATA] = vg_cpu_conv2d_bwd_data_op,
               [VG_OP_CONV2D_BWD_WEIGHT] = vg_cpu_conv2d_bwd_weight_op, [VG_OP_CONV_BN_FOLD] = vg_cpu_conv_bn_fold,
               [VG_OP_AVG_POOL2D] = vg_cpu_avg_pool2d, [VG_OP_AVG_POOL2D_BWD] = vg_cpu_avg_pool2d_bwd,
               [VG_OP_MAX_POOL2D] = vg_cpu_max_pool2d, [VG_OP_MAX_POOL2D_BWD] = vg_cpu_max_pool2d_bwd,
               [VG_OP_ADAPTIVE_AVG_POOL2D] = vg_cpu_adaptive_avg_pool2d,
               [VG_OP_ADAPTIVE_AVG_POOL2D_BWD] = vg_cpu_adaptive_avg_pool2d_bwd,
               [VG_OP_INTERP_BILINEAR] = vg_cpu_interp_bilinear, [VG_OP_INTERP_BILINEAR_BWD] = vg_cpu_interp_bilinear_bwd,
               [VG_OP_UNFOLD] = vg_cpu_unfold, [VG_OP_FOLD] = vg_cpu_fold, [VG_OP_PAD] = vg_cpu_pad,
               [VG_OP_CONCAT] = vg_cpu_concat,
               [VG_OP_GATHER] = vg_cpu_gather, [VG_OP_SCATTER_ADD] = vg_cpu_scatter_add,
               [VG_OP_INDEX_SELECT] = vg_cpu_index_select, [VG_OP_INDEX_ADD] = vg_cpu_index_add,
               [VG_OP_KTHVALUE] = vg_cpu_kthvalue, [VG_OP_SORT] = vg_cpu_sort,
               [VG_OP_RAND_UNIFORM] = vg_cpu_random, [VG_OP_RAND_NORMAL] = vg_cpu_random,
               [VG_OP_SOFTMAX] = vg_cpu_softmax, [VG_OP_LOG_SOFTMAX] = vg_cpu_log_softmax,
               [VG_OP_SOFTMAX_BWD] = vg_cpu_softmax_bwd, [VG_OP_LOG_SOFTMAX_BWD] = vg_cpu_log_softmax_bwd,
               [VG_OP_LAYER_NORM] = vg_cpu_layer_norm, [VG_OP_LAYER_NORM_BWD] = vg_cpu_layer_norm_bwd},
    .alloc = cpu_alloc,
    .free = vg_mem_free,
    .optim_update = vg_cpu_optim_update};

/* ---- the elementwise families: the row kernels of eltwise_rows.h per ISA ---- */
#define VG_ROW_DECL(isa)                                                                                          \
  void vg_row_unary_##isa(vg_unary_kind, const vg_unary_params *, float *, int64_t, const float *, int64_t, int64_t); \
  void vg_row_binary_##isa(vg_binary_kind, const vg_binary_params *, void *, int64_t, const float *, int64_t,        \
                           const float *, int64_t, int64_t);                                                     \
  void vg_row_where_##isa(float *, int64_t, const uint8_t *, int64_t, const float *, int64_t, const float *,       \
                          int64_t, int64_t);
VG_ROW_DECL(scalar)
VG_ROW_DECL(avx2)
VG_ROW_DECL(avx512)

typedef struct {
  const vg_opcall *c;
  vg_isa isa;
} elt_ctx;

static void unary_row(void *p, char *const *ptr, const int64_t *st, int64_t n) {
  const elt_ctx *e = p;
  vg_unary_kind k = (vg_unary_kind)e->c->op;
  const vg_unary_params *up = &e->c->p.unary;
  float *o = (float *)ptr[0];
  const float *x = (const float *)ptr[1];
  switch (e->isa) {
    case VG_ISA_SCALAR: vg_row_unary_scalar(k, up, o, st[0], x, st[1], n); return;
    case VG_ISA_AVX2: vg_row_unary_avx2(k, up, o, st[0], x, st[1], n); return;
    case VG_ISA_AVX512: vg_row_unary_avx512(k, up, o, st[0], x, st[1], n); return;
  }
}

static void binary_row(void *p, char *const *ptr, const int64_t *st, int64_t n) {
  const elt_ctx *e = p;
  vg_binary_kind k = (vg_binary_kind)e->c->op;
  const vg_binary_params *bp = &e->c->p.binary;
  const float *a = (const float *)ptr[1], *b = (const float *)ptr[2];
  switch (e->isa) {
    case VG_ISA_SCALAR: vg_row_binary_scalar(k, bp, ptr[0], st[0], a, st[1], b, st[2], n); return;
    case VG_ISA_AVX2: vg_row_binary_avx2(k, bp, ptr[0], st[0], a, st[1], b, st[2], n); return;
    case VG_ISA_AVX512: vg_row_binary_avx512(k, bp, ptr[0], st[0], a, st[1], b, st[2], n); return;
  }
}

static void where_row(void *p, char *const *ptr, const int64_t *st, int64_t n) {
  const elt_ctx *e = p;
  float *o = (float *)ptr[0];
  const uint8_t *c = (const uint8_t *)ptr[1];
  const float *a = (const float *)ptr[2], *b = (const float *)ptr[3];
  switch (e->isa) {
    case VG_ISA_SCALAR: vg_row_where_scalar(o, st[0], c, st[1], a, st[2], b, st[3], n); return;
    case VG_ISA_AVX2: vg_row_where_avx2(o, st[0], c, st[1], a, st[2], b, st[3], n); return;
    case VG_ISA_AVX512: vg_row_where_avx512(o, st[0], c, st[1], a, st[2], b, st[3], n); return;
  }
}

/* the shared element load/store (tensor/vmath.h), which the CUDA cast kernels run too */
double vg_load_elem(const void *p, vg_dtype dt) {
  if ((unsigned)dt >= VG_DTYPE_COUNT) VG_ABORT("bad dtype");
  return vg_hd_load_elem(p, dt);
}

void vg_store_elem(void *p, vg_dtype dt, double v) {
  if ((unsigned)dt >= VG_DTYPE_COUNT) VG_ABORT("bad dtype");
  vg_hd_store_elem(p, dt, v);
}

typedef struct {
  vg_dtype src, dst;
  double value;   /* fill */
} copy_ctx;

static void copy_row(void *p, char *const *ptr, const int64_t *st, int64_t n) {
  const copy_ctx *cc = p;
  size_t so = vg_dtype_size(cc->dst), si = vg_dtype_size(cc->src);
  if (cc->src == cc->dst) {
    if (st[0] == 1 && st[1] == 1) {
      memcpy(ptr[0], ptr[1], (size_t)n * so);
      return;
    }
    switch (so) {
      case 1: for (int64_t i = 0; i < n; i++) ptr[0][i * st[0]] = ptr[1][i * st[1]]; return;
      case 2: for (int64_t i = 0; i < n; i++) ((uint16_t *)ptr[0])[i * st[0]] = ((const uint16_t *)ptr[1])[i * st[1]]; return;
      case 4: for (int64_t i = 0; i < n; i++) ((uint32_t *)ptr[0])[i * st[0]] = ((const uint32_t *)ptr[1])[i * st[1]]; return;
      case 8: for (int64_t i = 0; i < n; i++) ((uint64_t *)ptr[0])[i * st[0]] = ((const uint64_t *)ptr[1])[i * st[1]]; return;
    }
  }
  /* common casts without the per-element type switch */
  if (cc->dst == VG_F32 && (cc->src == VG_BOOL || cc->src == VG_U8)) {
    float *o = (float *)ptr[0];
    const uint8_t *in = (const uint8_t *)ptr[1];
    if (cc->src == VG_BOOL)
      for (int64_t i = 0; i < n; i++) o[i * st[0]] = in[i * st[1]] != 0;
    else
      for (int64_t i = 0; i < n; i++) o[i * st[0]] = in[i * st[1]];
    return;
  }
  if (cc->dst == VG_F32 && cc->src == VG_F16) {
    for (int64_t i = 0; i < n; i++) ((float *)ptr[0])[i * st[0]] = vg_half_to_float(((const uint16_t *)ptr[1])[i * st[1]]);
    return;
  }
  if (cc->dst == VG_F16 && cc->src == VG_F32) {
    for (int64_t i = 0; i < n; i++) ((uint16_t *)ptr[0])[i * st[0]] = vg_float_to_half(((const float *)ptr[1])[i * st[1]]);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    vg_store_elem(ptr[0] + i * st[0] * (int64_t)so, cc->dst, vg_load_elem(ptr[1] + i * st[1] * (int64_t)si, cc->src));
}

static void fill_row(void *p, char *const *ptr, const int64_t *st, int64_t n) {
  const copy_ctx *cc = p;
  size_t so = vg_dtype_size(cc->dst);
  if (cc->dst == VG_F32) {
    float v = (float)cc->value, *o = (float *)ptr[0];
    for (int64_t i = 0; i < n; i++) o[i * st[0]] = v;
    return;
  }
  char tmp[8];
  vg_store_elem(tmp, cc->dst, cc->value);
  for (int64_t i = 0; i < n; i++) memcpy(ptr[0] + i * st[0] * (int64_t)so, tmp, so);
}

/* copy/cast */
void vg_cpu_copy(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  vg_iter it;
  const vg_tensor *ops[2] = {out, c->in[0]};
  copy_ctx cc = {c->in[0]->dtype, out->dtype, 0};
  vg_iter_init(&it, 2, ops);
  vg_iter_run(&it, copy_row, &cc);
}

void vg_cpu_fill(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  vg_iter it;
  const vg_tensor *ops[1] = {out};
  copy_ctx cc = {out->dtype, out->dtype, c->p.fill.value};
  vg_iter_init(&it, 1, ops);
  vg_iter_run(&it, fill_row, &cc);
}

void vg_cpu_arange(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  const vg_arange_params *ap = &c->p.arange;
  int64_t n = vg_numel(out);
  size_t es = vg_dtype_size(out->dtype);
  char *o = vg_data(out);
  for (int64_t i = 0; i < n; i++) vg_store_elem(o + i * (int64_t)es, out->dtype, ap->start + (double)i * ap->step);
}

void vg_cpu_unary(const vg_opcall *c) {
  const vg_tensor *ops[2] = {c->out[0], c->in[0]};
  elt_ctx e = {c, vg_cpu_isa()};
  vg_iter it;
  vg_iter_init(&it, 2, ops);
  vg_iter_run(&it, unary_row, &e);
}

void vg_cpu_binary(const vg_opcall *c) {
  const vg_tensor *ops[3] = {c->out[0], c->in[0], c->in[1]};
  elt_ctx e = {c, vg_cpu_isa()};
  vg_iter it;
  vg_iter_init(&it, 3, ops);
  vg_iter_run(&it, binary_row, &e);
}

void vg_cpu_where(const vg_opcall *c) {
  const vg_tensor *ops[4] = {c->out[0], c->in[0], c->in[1], c->in[2]};
  elt_ctx e = {c, vg_cpu_isa()};
  vg_iter it;
  vg_iter_init(&it, 4, ops);
  vg_iter_run(&it, where_row, &e);
}

/* any elementwise op (copy, fill, unary, binary, where), through the table (kernels that copy or fill) */
void vg_cpu_eltwise(const vg_opcall *c) { vg_cpu_backend.kernel[c->op](c); }
