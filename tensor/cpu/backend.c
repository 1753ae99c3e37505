/* backend.c — the CPU backend: its kernel table (one kernel per op family of
 * tensor/ops.def, checked complete when registered), memory, and the elementwise family. */
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/iter.h"
#include "tensor/cpu/isa.h"
#include <math.h>
#include <string.h>

static void *cpu_alloc(size_t n) {
  void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
  if (!p) VG_ABORT("out of memory allocating %zu bytes", n);
  return p;
}

/* the kernel of every op family (vg_backend_register checks that none is missing) */
const vg_backend vg_cpu_backend = {
    .name = "cpu",
    .kernel = {[VG_FAM_COPY] = vg_cpu_eltwise,     [VG_FAM_UNARY] = vg_cpu_eltwise,  [VG_FAM_BINARY] = vg_cpu_eltwise,
               [VG_FAM_WHERE] = vg_cpu_eltwise,    [VG_FAM_REDUCE] = vg_cpu_reduce,  [VG_FAM_MATMUL] = vg_cpu_matmul,
               [VG_FAM_CONV] = vg_cpu_conv,        [VG_FAM_POOL] = vg_cpu_pool,      [VG_FAM_RESAMPLE] = vg_cpu_resample,
               [VG_FAM_LAYOUT] = vg_cpu_layout,    [VG_FAM_INDEX] = vg_cpu_index,    [VG_FAM_SELECT] = vg_cpu_select,
               [VG_FAM_RANDOM] = vg_cpu_random},
    .alloc = cpu_alloc,
    .free = free};

/* ---- elementwise family ---- */
#define VG_ROW_DECL(isa)                                                                                   \
  void vg_row_unary_##isa(vg_op, const double *, float *, int64_t, const float *, int64_t, int64_t);     \
  void vg_row_binary_##isa(vg_op, const double *, void *, int64_t, const float *, int64_t, const float *, \
                           int64_t, int64_t);                                                            \
  void vg_row_where_##isa(float *, int64_t, const uint8_t *, int64_t, const float *, int64_t, const float *, \
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
  switch (e->isa) {
    case VG_ISA_SCALAR: vg_row_unary_scalar(e->c->op, e->c->f, (float *)ptr[0], st[0], (const float *)ptr[1], st[1], n); return;
    case VG_ISA_AVX2: vg_row_unary_avx2(e->c->op, e->c->f, (float *)ptr[0], st[0], (const float *)ptr[1], st[1], n); return;
    case VG_ISA_AVX512: vg_row_unary_avx512(e->c->op, e->c->f, (float *)ptr[0], st[0], (const float *)ptr[1], st[1], n); return;
  }
}

static void binary_row(void *p, char *const *ptr, const int64_t *st, int64_t n) {
  const elt_ctx *e = p;
  const float *a = (const float *)ptr[1], *b = (const float *)ptr[2];
  switch (e->isa) {
    case VG_ISA_SCALAR: vg_row_binary_scalar(e->c->op, e->c->f, ptr[0], st[0], a, st[1], b, st[2], n); return;
    case VG_ISA_AVX2: vg_row_binary_avx2(e->c->op, e->c->f, ptr[0], st[0], a, st[1], b, st[2], n); return;
    case VG_ISA_AVX512: vg_row_binary_avx512(e->c->op, e->c->f, ptr[0], st[0], a, st[1], b, st[2], n); return;
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

double vg_load_elem(const void *p, vg_dtype dt) {
  switch (dt) {
    case VG_F32: return *(const float *)p;
    case VG_F16: return vg_half_to_float(*(const uint16_t *)p);
    case VG_BF16: return vg_bf16_to_float(*(const uint16_t *)p);
    case VG_I32: return *(const int32_t *)p;
    case VG_I64: return (double)*(const int64_t *)p;
    case VG_U8: return *(const uint8_t *)p;
    case VG_BOOL: return *(const uint8_t *)p != 0;
    case VG_DTYPE_COUNT: break;
  }
  VG_ABORT("bad dtype");
}

void vg_store_elem(void *p, vg_dtype dt, double v) {
  switch (dt) {
    case VG_F32: *(float *)p = (float)v; return;
    case VG_F16: *(uint16_t *)p = vg_float_to_half((float)v); return;
    case VG_BF16: *(uint16_t *)p = vg_float_to_bf16((float)v); return;
    /* float -> int truncates toward zero, as torch's .to(int) */
    case VG_I32: *(int32_t *)p = (int32_t)v; return;
    case VG_I64: *(int64_t *)p = (int64_t)v; return;
    case VG_U8: *(uint8_t *)p = (uint8_t)(int64_t)v; return;
    case VG_BOOL: *(uint8_t *)p = v != 0; return;
    case VG_DTYPE_COUNT: break;
  }
  VG_ABORT("bad dtype");
}

typedef struct {
  vg_dtype src, dst;
  double f0, f1;
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
    float v = (float)cc->f0, *o = (float *)ptr[0];
    for (int64_t i = 0; i < n; i++) o[i * st[0]] = v;
    return;
  }
  char tmp[8];
  vg_store_elem(tmp, cc->dst, cc->f0);
  for (int64_t i = 0; i < n; i++) memcpy(ptr[0] + i * st[0] * (int64_t)so, tmp, so);
}

void vg_cpu_eltwise(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  elt_ctx e = {c, vg_cpu_isa()};
  vg_iter it;
  switch (c->op) {
    case VG_OP_COPY: {
      const vg_tensor *ops[2] = {out, c->in[0]};
      copy_ctx cc = {c->in[0]->dtype, out->dtype, 0, 0};
      vg_iter_init(&it, 2, ops);
      vg_iter_run(&it, copy_row, &cc);
      return;
    }
    case VG_OP_FILL: {
      const vg_tensor *ops[1] = {out};
      copy_ctx cc = {out->dtype, out->dtype, c->f[0], 0};
      vg_iter_init(&it, 1, ops);
      vg_iter_run(&it, fill_row, &cc);
      return;
    }
    case VG_OP_ARANGE: {
      int64_t n = vg_numel(out);
      size_t es = vg_dtype_size(out->dtype);
      char *o = vg_data(out);
      for (int64_t i = 0; i < n; i++) vg_store_elem(o + i * (int64_t)es, out->dtype, c->f[0] + (double)i * c->f[1]);
      return;
    }
    case VG_OP_WHERE: {
      const vg_tensor *ops[4] = {out, c->in[0], c->in[1], c->in[2]};
      vg_iter_init(&it, 4, ops);
      vg_iter_run(&it, where_row, &e);
      return;
    }
    case VG_OP_ADD: case VG_OP_SUB: case VG_OP_MUL: case VG_OP_DIV: case VG_OP_MAXIMUM: case VG_OP_MINIMUM:
    case VG_OP_EQ: case VG_OP_NE: case VG_OP_LT: case VG_OP_LE: case VG_OP_GT: case VG_OP_GE: {
      const vg_tensor *ops[3] = {out, c->in[0], c->in[1]};
      vg_iter_init(&it, 3, ops);
      vg_iter_run(&it, binary_row, &e);
      return;
    }
    default: {
      const vg_tensor *ops[2] = {out, c->in[0]};
      vg_iter_init(&it, 2, ops);
      vg_iter_run(&it, unary_row, &e);
      return;
    }
  }
}
