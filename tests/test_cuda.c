/* test_cuda.c — CPU-vs-CUDA conformance: one table row per case (op, inputs with
 * non-contiguous and broadcast layouts, tolerance), each run on both devices from the
 * same inputs and compared element by element; a forward+backward through conv2d,
 * pooling, interpolation, matmul and pointwise ops, and one through sort, topk,
 * gather, index_select, index_add and scatter_add, compared on input grads. Every op of
 * ops.def also runs CPU-vs-CUDA from its row of the op-test table (test_op_table.c). Without a
 * GPU (or in a CPU-only build) it prints one SKIP line and passes nothing and fails
 * nothing.
 *
 * Tolerances (|cuda - cpu| <= atol + rtol*|cpu|): exact (0, 0) for copies, casts,
 * comparisons, indices, uniform random numbers, the indexing ops (scatter_add and
 * index_add too: the CUDA kernels add in the CPU's order) and kthvalue / quantile /
 * sort (values and indices; NaNs are mapped to -777 so their places are compared);
 * 1e-5 relative (+1e-6 absolute) for pointwise math and pooling; GEMM-based ops
 * (matmul, conv) 1e-5 relative to the largest |cpu| value of the tensor (summation
 * order differs); sums 1e-5 rel.
 *
 * f16 rows (issue #8: f16 inference on the GPU with f32 accumulation): the inputs are
 * rounded to f16 on the host; the CPU runs f32 on those values, CUDA runs the op on f16
 * tensors, and its result (cast to f32) is compared with these bounds:
 *   pointwise (unary, binary, quantile's lerp): |d| <= 2^-10 |cpu| + 2^-24 — one f16
 *     ulp of the result (the kernel's one rounding is <= half an ulp; the rest covers
 *     the f32 math's own CPU/GPU differences, <= 1e-5 rel in the f32 rows), 2^-24 the
 *     f16 subnormal spacing;
 *   sums, pooling, bilinear, fold: 2^-10 |cpu| + 1e-6 (one rounding of an f32/double
 *     accumulation whose order differences are f32-sized, as the f32 rows' 1e-6);
 *   GEMM and conv: 2^-10 |cpu| + 1e-4 max|cpu|: one rounding of the result, plus f32
 *     (tensor-core) accumulation in another order: products of f16 values are exact
 *     in f32, and K <= 48 adds of ~2^-24 relative error each stay below 1e-4 of the
 *     largest output;
 *   composites (mean/var, layer and batch norm, the EfficientAD map): 4e-3 max|cpu|,
 *     about 8 half-ulps at the largest value: each intermediate is rounded to f16;
 *   exact for copies, casts, views, fill, arange, comparisons, max/min, where, amax,
 *     amin, argmax, max pooling (values and indices), unfold, pad, concat, gather,
 *     index_select, kthvalue and sort (values and indices): on f16-representable
 *     inputs these select or move values without rounding.
 * A second coverage check wants an f16 row for every op inference uses (all but the
 * backward, random and scatter ops). Plus the errors: f16 compute on a CPU tensor, a
 * conv / matmul of mixed float dtypes, and autograd through an f16 tensor. */
#include "tests/vgtest.h"
#include "tensor/internal.h"
#include "autograd/autograd.h"
#include "nn/nn.h"
#include "methods/efficientad/efficientad.h"

static uint64_t rng;
/* f16 rows: inputs rounded to f16 on the host; on CUDA they become f16 tensors */
static bool half_rows;
static int half_dt_bad;   /* f16-row values on CUDA that are not f16 (see want16) */
static vg_tensor *to_dev(vg_tensor *t, vg_device dev) {
  t = vg_to_device(t, dev);
  if (half_rows && dev == VG_CUDA && t && t->dtype == VG_F32) t = vg_cast(t, VG_F16);
  return t;
}
/* in an f16 row, t (a float result on CUDA) must be f16 */
static vg_tensor *want16(vg_tensor *t) {
  if (half_rows && t && t->device == VG_CUDA && t->dtype != VG_F16) half_dt_bad++;
  return t;
}
static float frand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* random f32 on dev, values in [lo, hi); quant > 0 rounds to multiples of quant (ties) */
static vg_tensor *inp(vg_device dev, int nd, const int64_t *shape, float lo, float hi, float quant) {
  vg_tensor *t = vg_empty(VG_F32, nd, shape);
  float *p = vg_f32(t);
  for (int64_t i = 0; i < vg_numel(t); i++) {
    float v = lo + (hi - lo) * (frand() + 1.0f) * 0.5f;
    p[i] = quant > 0 ? quant * roundf(v / quant) : v;
    if (half_rows) p[i] = vg_half_to_float(vg_float_to_half(p[i]));
  }
  return to_dev(t, dev);
}
#define S(...) (const int64_t[]){__VA_ARGS__}
#define R(dev, ...) inp(dev, sizeof(S(__VA_ARGS__)) / 8, S(__VA_ARGS__), -1, 1, 0)
#define POS(dev, ...) inp(dev, sizeof(S(__VA_ARGS__)) / 8, S(__VA_ARGS__), 0.05f, 3, 0)
/* non-contiguous: x (a, b, c) made as the transpose of (a, c, b) */
static vg_tensor *nc(vg_tensor *t) { return vg_transpose(t, -1, -2); }
/* as inp, on the host before the move: every nan_every-th element (from 3) set to NaN */
static vg_tensor *inp_nan(vg_device dev, int nd, const int64_t *shape, float lo, float hi, float quant, int64_t nan_every) {
  vg_tensor *t = inp(VG_CPU, nd, shape, lo, hi, quant);
  float *p = vg_f32(t);
  for (int64_t i = 3; i < vg_numel(t); i += nan_every) p[i] = NAN;
  return to_dev(t, dev);
}
/* random i64 indices in [0, m) */
static vg_tensor *idx_inp(vg_device dev, int nd, const int64_t *shape, int64_t m) {
  vg_tensor *t = vg_empty(VG_I64, nd, shape);
  int64_t *p = vg_data(t);
  for (int64_t i = 0; i < vg_numel(t); i++) {
    int64_t v = (int64_t)((frand() + 1.0f) * 0.5f * (float)m);
    p[i] = v < m ? v : m - 1;
  }
  return vg_to_device(t, dev);
}
/* NaN -> -777 (the comparison never passes NaN; NaN must sit where the CPU has it) */
static vg_tensor *denan(const vg_tensor *t) {
  return vg_where(vg_ne(t, t), vg_to_device(vg_full(VG_F32, 0, NULL, -777.0), t->device), t);
}
/* 0-d or 1-d results side by side as one 1-d f32 tensor */
static vg_tensor *cat1(int n, vg_tensor **xs) {
  for (int i = 0; i < n; i++) {
    if (xs[i]->dtype != VG_F32) xs[i] = vg_cast(xs[i], VG_F32);
    xs[i] = denan(vg_reshape(vg_contiguous(xs[i]), 1, S(vg_numel(xs[i]))));
  }
  return vg_concat(n, xs, 0);
}

/* runs an op call directly (for ops without a public front-end: the *_BWD ops, arange) */
static vg_tensor *direct(vg_op op, int nin, const vg_tensor **in, vg_dtype dt, vg_device dev, int nd,
                         const int64_t *shape, const vg_op_params *p) {
  vg_tensor *out = vg_alloc(dt, dev, nd, shape);
  vg_opcall c = {.op = op, .nin = nin, .in = in, .out = {out}};
  if (p) c.p = *p;
  vg_backend_exec(vg_backend_of(dev), &c);
  return out;
}

typedef vg_tensor *(*row_fn)(vg_device dev, vg_op op);
typedef struct {
  vg_op op;
  const char *what;
  row_fn fn;
  double rtol, atol;
  int norm_rel;   /* 1: atol is relative to max |cpu| */
} row;

/* ---- row functions (dev = where to run; op = the row's op) ---- */
static vg_tensor *f_unary(vg_device d, vg_op op) {
  static const struct { vg_op op; float f0, f1; } par[] = {
      {VG_OP_LEAKY_RELU, 0.1f, 0}, {VG_OP_SOFTPLUS, 1.5f, 2.0f}, {VG_OP_POW_SCALAR, 1.7f, 0},
      {VG_OP_CLAMP, -0.3f, 0.4f}, {VG_OP_AFFINE, 1.5f, -0.25f}};
  float f0 = 0, f1 = 0;
  for (size_t i = 0; i < sizeof par / sizeof par[0]; i++)
    if (par[i].op == op) { f0 = par[i].f0; f1 = par[i].f1; }
  bool pos = op == VG_OP_LOG || op == VG_OP_SQRT || op == VG_OP_RSQRT || op == VG_OP_POW_SCALAR;
  vg_tensor *x = nc(pos ? POS(d, 3, 7, 5) : inp(d, 3, S(3, 7, 5), -6, 6, 0));
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = op, .nin = 1, .in = in, .out = {vg_alloc(x->dtype, d, 3, x->shape)}, .p.unary = {f0, f1}};
  return vg_dispatch(&c);
}
static vg_tensor *f_binary(vg_device d, vg_op op) {
  float q = op == VG_OP_ADD || op == VG_OP_SUB || op == VG_OP_MUL || op == VG_OP_DIV ? 0 : 0.25f;   /* ties */
  vg_tensor *a = inp(d, 3, S(4, 1, 6), -2, 2, q);
  vg_tensor *b = nc(op == VG_OP_DIV ? inp(d, 2, S(6, 5), 0.5f, 2, 0) : inp(d, 2, S(6, 5), -2, 2, q));
  vg_tensor *(*fn[])(const vg_tensor *, const vg_tensor *) = {
      [VG_OP_ADD] = vg_add, [VG_OP_SUB] = vg_sub, [VG_OP_MUL] = vg_mul, [VG_OP_DIV] = vg_div,
      [VG_OP_MAXIMUM] = vg_maximum, [VG_OP_MINIMUM] = vg_minimum, [VG_OP_EQ] = vg_eq, [VG_OP_NE] = vg_ne,
      [VG_OP_LT] = vg_lt, [VG_OP_LE] = vg_le, [VG_OP_GT] = vg_gt, [VG_OP_GE] = vg_ge};
  return fn[op](a, b);
}
static vg_tensor *f_axpy(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *y = R(d, 5, 6), *x = R(d, 5, 6);
  vg_axpy_(y, -0.75f, x);
  return y;
}
static vg_tensor *f_where(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *a = R(d, 4, 5), *b = nc(R(d, 5, 4));
  return vg_where(vg_gt(a, R(d, 5)), a, vg_expand(vg_slice(b, 0, 1, 2, 1), 2, S(4, 5)));
}
static vg_tensor *f_copy_perm(vg_device d, vg_op op) {
  (void)op;
  return vg_contiguous(vg_permute(R(d, 2, 3, 4, 5), (int[]){2, 0, 3, 1}));
}
static vg_tensor *f_slice(vg_device d, vg_op op) {
  (void)op;
  return vg_contiguous(vg_slice(R(d, 7, 9), 1, 1, 8, 3));
}
static vg_tensor *f_expand(vg_device d, vg_op op) {
  (void)op;
  return vg_contiguous(vg_expand(R(d, 3, 1), 2, S(3, 6)));
}
static vg_tensor *f_reshape(vg_device d, vg_op op) {
  (void)op;
  return vg_reshape(nc(R(d, 4, 6)), 2, S(3, 8));   /* needs a copy: not viewable */
}
static vg_tensor *cast_chain(vg_device d, vg_dtype via) {
  vg_tensor *x = nc(inp(d, 2, S(6, 5), -300, 300, via == VG_BOOL ? 1.0f : 0));
  return vg_cast(vg_cast(x, via), VG_F32);
}
static vg_tensor *f_cast_f16(vg_device d, vg_op op) { (void)op; return cast_chain(d, VG_F16); }
static vg_tensor *f_cast_bf16(vg_device d, vg_op op) { (void)op; return cast_chain(d, VG_BF16); }
static vg_tensor *f_cast_i64(vg_device d, vg_op op) { (void)op; return cast_chain(d, VG_I64); }
static vg_tensor *f_cast_i32(vg_device d, vg_op op) { (void)op; return cast_chain(d, VG_I32); }
static vg_tensor *f_cast_bool(vg_device d, vg_op op) { (void)op; return cast_chain(d, VG_BOOL); }
static vg_tensor *f_cast_u8(vg_device d, vg_op op) {
  (void)op;
  return vg_cast(vg_cast(nc(inp(d, 2, S(6, 5), 0, 255, 1.0f)), VG_U8), VG_F32);
}
static vg_tensor *f_fill(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *t = R(d, 5, 6);
  vg_fill_(vg_slice(t, 1, 1, 6, 2), 3.25);
  return t;
}
static vg_tensor *f_arange(vg_device d, vg_op op) {
  return direct(op, 0, NULL, VG_F32, d, 1, S(37), &(vg_op_params){.arange = {-2.5, 0.125}});
}
static vg_tensor *f_arange_i64(vg_device d, vg_op op) {
  return vg_cast(direct(op, 0, NULL, VG_I64, d, 1, S(37), &(vg_op_params){.arange = {-20, 3}}), VG_F32);
}
static vg_tensor *f_rand(vg_device d, vg_op op) {
  vg_tensor *t = R(d, 6, 9);
  vg_tensor *v = vg_slice(t, 1, 1, 9, 2);   /* a non-contiguous target */
  if (op == VG_OP_RAND_UNIFORM) vg_uniform_(v, -2, 3, 12345);
  else vg_normal_(v, 0.5f, 2.0f, 12345);
  return t;
}
static vg_tensor *f_reduce(vg_device d, vg_op op) {
  vg_tensor *x = nc(R(d, 3, 40, 50));   /* (3, 50, 40) */
  int dims[2] = {0, 2};
  switch (op) {
    case VG_OP_SUM: return vg_sum(x, 2, dims, true);
    case VG_OP_AMAX: return vg_amax(x, 1, (int[]){1}, false);
    case VG_OP_AMIN: return vg_amin(x, 0, NULL, false);
    default: return vg_cast(vg_argmax(x, 1, false), VG_F32);
  }
}
static vg_tensor *f_sum_big(vg_device d, vg_op op) {
  (void)op;
  return vg_sum(R(d, 300000), 0, NULL, false);
}
static vg_tensor *f_matmul(vg_device d, vg_op op) {
  (void)op;
  return vg_matmul(R(d, 2, 3, 17, 33), nc(R(d, 21, 33)));   /* transposed rhs, batch broadcast */
}
static vg_tensor *f_matmul_bcast(vg_device d, vg_op op) {
  (void)op;   /* batch dims (3,1) x (1,2): operands materialized */
  return vg_matmul(R(d, 3, 1, 4, 5), vg_permute(R(d, 2, 1, 5, 6), (int[]){1, 0, 2, 3}));
}
static vg_tensor *f_conv_effad(vg_device d, vg_op op) {
  (void)op;   /* EfficientAD PDN: Conv2d(3, 32, 4, padding=3) */
  return vg_conv2d(R(d, 2, 3, 19, 17), R(d, 32, 3, 4, 4), R(d, 32), (vg_conv2d_opts){.ph = 3, .pw = 3});
}
static vg_tensor *f_conv_grouped(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *x = vg_permute(R(d, 3, 13, 4, 11), (int[]){0, 2, 1, 3});   /* non-contiguous (3,4,13,11) */
  return vg_conv2d(x, R(d, 6, 2, 3, 3), NULL, (vg_conv2d_opts){.sh = 2, .sw = 1, .ph = 1, .pw = 2, .dh = 2, .dw = 1, .groups = 2});
}
/* 1x1 stride 1 (the direct path: no im2col), groups 2, bias; and its backward ops */
static vg_tensor *f_conv_1x1(vg_device d, vg_op op) {
  (void)op;
  return vg_conv2d(R(d, 3, 8, 7, 9), R(d, 6, 4, 1, 1), R(d, 6), (vg_conv2d_opts){.groups = 2});
}
/* conv2d with the ReLU fused into its epilogue (vg_conv2d_opts.act): PDN 4x4 pad 3 with a
 * bias, grouped/dilated/strided without one, and the 1x1 direct path with one */
static vg_tensor *f_conv_relu(vg_device d, vg_op op) {
  (void)op;
  return vg_conv2d(R(d, 2, 3, 19, 17), R(d, 32, 3, 4, 4), R(d, 32), (vg_conv2d_opts){.ph = 3, .pw = 3, .act = VG_ACT_RELU});
}
static vg_tensor *f_conv_relu_nobias(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *x = vg_permute(R(d, 3, 13, 4, 11), (int[]){0, 2, 1, 3});
  return vg_conv2d(x, R(d, 6, 2, 3, 3), NULL,
                   (vg_conv2d_opts){.sh = 2, .ph = 1, .pw = 2, .dh = 2, .groups = 2, .act = VG_ACT_RELU});
}
static vg_tensor *f_conv_relu_1x1(vg_device d, vg_op op) {
  (void)op;
  return vg_conv2d(R(d, 3, 8, 7, 9), R(d, 6, 4, 1, 1), R(d, 6), (vg_conv2d_opts){.groups = 2, .act = VG_ACT_RELU});
}
/* conv_bn_fold: (8,3,3,3) weights, bias, gamma, beta, running stats (var > 0); the
 * weights and the bias side by side. f16 rows: the running variance stays f32 (mixed). */
static vg_tensor *f_bn_fold(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *v = POS(d, 8);
  if (v->dtype == VG_F16) v = vg_cast(v, VG_F32);
  vg_tensor *wf = NULL, *bf = NULL;
  if (vg_conv_bn_fold(R(d, 8, 3, 3, 3), R(d, 8), R(d, 8), R(d, 8), R(d, 8), v, 1e-5f, &wf, &bf) != VG_OK) return NULL;
  return cat1(2, (vg_tensor *[]){want16(wf), want16(bf)});
}
static vg_tensor *f_bn_fold_plain(vg_device d, vg_op op) {
  (void)op;   /* no conv bias, gamma or beta */
  vg_tensor *wf = NULL, *bf = NULL;
  if (vg_conv_bn_fold(nc(R(d, 5, 2, 7)), NULL, NULL, NULL, R(d, 5), POS(d, 5), 1e-3f, &wf, &bf) != VG_OK) return NULL;
  return cat1(2, (vg_tensor *[]){want16(wf), want16(bf)});
}
static const vg_op_params conv1x1_i = {.conv2d = {.sh = 1, .sw = 1, .ph = 0, .pw = 0, .dh = 1, .dw = 1, .groups = 2}};
static vg_tensor *f_conv_1x1_bwd(vg_device d, vg_op op) {
  if (op == VG_OP_CONV2D_BWD_DATA) {
    const vg_tensor *in[2] = {R(d, 6, 4, 1, 1), R(d, 3, 6, 7, 9)};
    return direct(op, 2, in, VG_F32, d, 4, S(3, 8, 7, 9), &conv1x1_i);
  }
  const vg_tensor *in[2] = {R(d, 3, 8, 7, 9), R(d, 3, 6, 7, 9)};
  return direct(op, 2, in, VG_F32, d, 4, S(6, 4, 1, 1), &conv1x1_i);
}
static const vg_op_params conv_i = {.conv2d = {.sh = 2, .sw = 1, .ph = 1, .pw = 2, .dh = 2, .dw = 1, .groups = 2}};
static vg_tensor *f_conv_bwd_data(vg_device d, vg_op op) {
  const vg_tensor *in[2] = {R(d, 6, 2, 3, 3), R(d, 3, 6, 6, 13)};
  return direct(op, 2, in, VG_F32, d, 4, S(3, 4, 13, 11), &conv_i);
}
static vg_tensor *f_conv_bwd_weight(vg_device d, vg_op op) {
  const vg_tensor *in[2] = {R(d, 3, 4, 13, 11), R(d, 3, 6, 6, 13)};
  return direct(op, 2, in, VG_F32, d, 4, S(6, 2, 3, 3), &conv_i);
}
static const vg_pool2d_opts pool_o = {.kh = 3, .kw = 2, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .ceil_mode = true,
                                      .count_include_pad = false};
static vg_tensor *f_pool(vg_device d, vg_op op) {
  vg_tensor *x = nc(R(d, 2, 3, 11, 9));   /* (2,3,9,11) */
  vg_tensor *idx = NULL;
  switch (op) {
    case VG_OP_AVG_POOL2D: return vg_avg_pool2d(x, pool_o);
    case VG_OP_MAX_POOL2D: {
      vg_tensor *y = vg_max_pool2d(x, pool_o, &idx);
      return vg_add(y, vg_scale(vg_cast(idx, VG_F32), 1000.0f));   /* values and indices */
    }
    default: return vg_adaptive_avg_pool2d(x, 4, 3);
  }
}
static vg_tensor *f_pool_bwd(vg_device d, vg_op op) {
  vg_tensor *x = R(d, 2, 3, 9, 11);
  const vg_op_params ip = {.pool = {.kh = 3, .kw = 2, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .ceil_mode = true,
                                     .count_include_pad = false}};
  switch (op) {
    case VG_OP_AVG_POOL2D_BWD: {
      vg_tensor *y = vg_avg_pool2d(x, pool_o);
      const vg_tensor *in[1] = {nc(R(d, 2, 3, y->shape[3], y->shape[2]))};
      return direct(op, 1, in, VG_F32, d, 4, x->shape, &ip);
    }
    case VG_OP_MAX_POOL2D_BWD: {
      vg_tensor *idx;
      vg_tensor *y = vg_max_pool2d(x, pool_o, &idx);
      const vg_tensor *in[2] = {R(d, 2, 3, y->shape[2], y->shape[3]), idx};
      return direct(op, 2, in, VG_F32, d, 4, x->shape, &ip);
    }
    default: {
      const vg_tensor *in[1] = {R(d, 2, 3, 4, 3)};
      return direct(op, 1, in, VG_F32, d, 4, x->shape, &ip);
    }
  }
}
static vg_tensor *f_interp(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *x = nc(R(d, 2, 3, 7, 5));
  return vg_add(vg_interpolate_bilinear(x, 11, 4, false), vg_interpolate_bilinear(x, 11, 4, true));
}
static vg_tensor *f_interp_bwd(vg_device d, vg_op op) {
  const vg_tensor *in[1] = {R(d, 2, 3, 11, 4)};
  vg_tensor *a = direct(op, 1, in, VG_F32, d, 4, S(2, 3, 5, 7), &(vg_op_params){.interp = {false}});
  vg_tensor *b = direct(op, 1, in, VG_F32, d, 4, S(2, 3, 5, 7), &(vg_op_params){.interp = {true}});
  return vg_sub(a, vg_scale(b, 3));
}
static vg_tensor *f_unfold(vg_device d, vg_op op) {
  (void)op;
  return vg_unfold(nc(R(d, 2, 3, 9, 8)), 3, 2, 1, 2, 1, 0, 2, 1);
}
static vg_tensor *f_fold(vg_device d, vg_op op) {
  (void)op;   /* output (8, 9) with kernel (3,2), dilation (1,2), padding (1,0), stride (2,1): 4 x 7 blocks */
  return vg_fold(nc(R(d, 2, 28, 18)), 8, 9, 3, 2, 1, 2, 1, 0, 2, 1);
}
static vg_tensor *f_pad(vg_device d, vg_op op) {
  (void)op;
  return vg_pad(nc(R(d, 2, 5, 4)), 2, S(1, 2, 0, 3), -1.5f);
}
static vg_tensor *f_concat(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *xs[3] = {R(d, 2, 3, 4), nc(R(d, 2, 4, 5)), vg_expand(R(d, 1, 1, 4), 3, S(2, 2, 4))};
  return vg_concat(3, xs, 1);
}

/* ---- indexing (exact: copies, and the adds run in the CPU's order) ---- */
static vg_tensor *f_gather(vg_device d, vg_op op) {
  (void)op;   /* x (5,6,7)^T, index (4,9,6)^T, dim -2: index longer than x along dim */
  vg_tensor *x = nc(R(d, 5, 7, 6));
  return vg_gather(x, -2, nc(idx_inp(d, 3, S(4, 6, 9), 6)));
}
static vg_tensor *f_gather_dt(vg_device d, vg_op op) {
  (void)op;   /* 8-byte (i64, dim 0) and 2-byte (f16, dim -1) elements */
  vg_tensor *xi = vg_cast(nc(inp(d, 2, S(6, 5), -300, 300, 1.0f)), VG_I64);   /* (5,6) */
  vg_tensor *xh = vg_cast(R(d, 4, 7), VG_F16);
  vg_tensor *a = vg_gather(xi, 0, idx_inp(d, 2, S(8, 6), 5));
  vg_tensor *b = vg_gather(xh, -1, nc(idx_inp(d, 2, S(3, 4), 7)));   /* (4,3) */
  return cat1(2, (vg_tensor *[]){a, b});
}
static vg_tensor *f_scatter_add(vg_device d, vg_op op) {
  (void)op;   /* base (5,4,6)^T, index (7,4,5)^T into dim -3 of size 5 (repeats), src (8,4,6)^T larger */
  vg_tensor *base = nc(R(d, 5, 6, 4)), *src = nc(R(d, 8, 6, 4));
  return vg_scatter_add(base, -3, nc(idx_inp(d, 3, S(7, 5, 4), 5)), src);
}
static vg_tensor *f_scatter_add_i32(vg_device d, vg_op op) {
  (void)op;   /* integer adds; index longer along dim than base */
  vg_tensor *base = vg_cast(inp(d, 2, S(3, 5), -100, 100, 1.0f), VG_I32);
  vg_tensor *src = vg_cast(nc(inp(d, 2, S(9, 3), -100, 100, 1.0f)), VG_I32);
  return vg_cast(vg_scatter_add(base, 1, idx_inp(d, 2, S(3, 9), 5), src), VG_F32);
}
static vg_tensor *f_scatter_add_long(vg_device d, vg_op op) {
  (void)op;   /* 2 columns of 5000 into 300 (the by-destination path), transposed */
  vg_tensor *base = nc(R(d, 300, 2)), *src = nc(R(d, 5000, 2));
  vg_tensor *a = vg_scatter_add(base, 1, nc(idx_inp(d, 2, S(5000, 2), 300)), src);
  vg_tensor *b = vg_scatter_add(R(d, 70), 0, idx_inp(d, 1, S(9000), 70), R(d, 9000));   /* 1 column, merge-sorted */
  return cat1(2, (vg_tensor *[]){a, b});
}
static vg_tensor *f_index_select(vg_device d, vg_op op) {
  (void)op;   /* x (4,5,9) transposed, a step-2 index view (repeats), dim -1 */
  vg_tensor *x = nc(R(d, 4, 9, 5));
  return vg_index_select(x, -1, vg_slice(idx_inp(d, 1, S(12), 9), 0, 0, 12, 2));
}
static vg_tensor *f_index_select_u8(vg_device d, vg_op op) {
  (void)op;   /* 1-byte elements, dim 0, and a 0-d index */
  vg_tensor *x = vg_cast(nc(inp(d, 2, S(3, 7), 0, 255, 1.0f)), VG_U8);   /* (7,3) */
  vg_tensor *a = vg_index_select(x, 0, idx_inp(d, 1, S(10), 7));
  vg_tensor *b = vg_index_select(x, 1, vg_to_device(vg_full(VG_I64, 0, NULL, 2), d));
  return cat1(2, (vg_tensor *[]){a, b});
}
static vg_tensor *f_index_add(vg_device d, vg_op op) {
  (void)op;   /* base (4,5,9), index 7 values in [0,5) (repeats), src (4,7,9), both transposed, dim -2 */
  vg_tensor *base = nc(R(d, 4, 9, 5)), *src = nc(R(d, 4, 9, 7));
  return vg_index_add(base, -2, idx_inp(d, 1, S(7), 5), src);
}
static vg_tensor *f_index_add_long(vg_device d, vg_op op) {
  (void)op;   /* 5000 (and 9000) indices into (40, 3) and (60,) (the by-destination path) */
  vg_tensor *a = vg_index_add(nc(R(d, 3, 40)), 0, idx_inp(d, 1, S(5000), 40), nc(R(d, 3, 5000)));
  vg_tensor *b = vg_index_add(R(d, 60), -1, idx_inp(d, 1, S(9000), 60), R(d, 9000));
  return cat1(2, (vg_tensor *[]){a, b});
}
static vg_tensor *f_index_add_i64(vg_device d, vg_op op) {
  (void)op;   /* i64 data, a 0-d index */
  vg_tensor *base = vg_cast(inp(d, 2, S(3, 4), -50, 50, 1.0f), VG_I64);
  vg_tensor *src = vg_cast(inp(d, 2, S(3, 1), -50, 50, 1.0f), VG_I64);
  return vg_cast(vg_index_add(base, 1, vg_to_device(vg_full(VG_I64, 0, NULL, 2), d), src), VG_F32);
}

/* ---- selection (exact: the same keys as the CPU) ---- */
static vg_tensor *f_kth(vg_device d, vg_op op) {
  (void)op;   /* transposed (200,300), ties and -0/+0 (multiples of 0.01) */
  vg_tensor *x = nc(inp(d, 2, S(300, 200), -2, 2, 0.01f));
  int64_t n = vg_numel(x);
  return cat1(7, (vg_tensor *[]){vg_kthvalue_all(x, 1), vg_kthvalue_all(x, 17), vg_kthvalue_all(x, n / 2),
                                 vg_kthvalue_all(x, n), vg_quantile_all(x, 0.3), vg_quantile_all(x, 0.5),
                                 vg_quantile_all(x, 0.9173)});
}
static vg_tensor *f_kth_nan(vg_device d, vg_op op) {
  (void)op;   /* NaN is the largest; quantile of data with a NaN is NaN */
  vg_tensor *x = inp_nan(d, 2, S(50, 40), -2, 2, 0.05f, 97);
  int64_t n = vg_numel(x), nnan = (n - 3 + 96) / 97;
  return cat1(5, (vg_tensor *[]){vg_kthvalue_all(x, 5), vg_kthvalue_all(x, n - nnan), vg_kthvalue_all(x, n - nnan + 1),
                                 vg_kthvalue_all(x, n), vg_quantile_all(x, 0.5)});
}
static vg_tensor *f_kth_gap(vg_device d, vg_op op) {
  (void)op;   /* {1,1,2,2}: the quantile's upper neighbour is in another top bucket (min-above pass) */
  vg_tensor *x = to_dev(vg_from_data(VG_F32, 1, S(4), (const float[]){2, 1, 2, 1}), d);
  return cat1(3, (vg_tensor *[]){vg_quantile_all(x, 0.5), vg_quantile_all(x, 0.4), vg_kthvalue_all(x, 3)});
}
static vg_tensor *f_kth_long(vg_device d, vg_op op) {
  (void)op;   /* one row of 3,000,000: EfficientAD's quantiles; and with 2049 distinct values (heavy ties) */
  vg_tensor *x = R(d, 3000000), *xq = inp(d, 1, S(3000000), -1, 1, 1.0f / 1024);
  return cat1(8, (vg_tensor *[]){vg_kthvalue_all(x, 1), vg_kthvalue_all(x, 1234567), vg_kthvalue_all(x, 3000000),
                                 vg_quantile_all(x, 0.9), vg_quantile_all(x, 0.995), vg_kthvalue_all(xq, 1500001),
                                 vg_quantile_all(xq, 0.5), vg_quantile_all(xq, 0.995)});
}
static vg_tensor *f_sort(vg_device d, vg_op op) {
  (void)op;   /* (3,5,37) transposed, ties, -0/+0, NaNs; dim -1 ascending, dim 1 descending, dim 0 */
  vg_tensor *x = nc(inp_nan(d, 3, S(3, 37, 5), -2, 2, 0.25f, 23)), *i1, *i2, *i3;
  vg_tensor *a = vg_sort(x, -1, false, &i1), *b = vg_sort(x, 1, true, &i2), *c = vg_sort(x, 0, true, &i3);
  return cat1(6, (vg_tensor *[]){a, i1, b, i2, c, i3});
}
static vg_tensor *f_sort_long(vg_device d, vg_op op) {
  (void)op;   /* rows of 10000 (tiles of 4096 + merges, a partial tile) transposed, ties, NaNs; one row of 100000 */
  vg_tensor *x = nc(inp_nan(d, 2, S(10000, 3), -2, 2, 1.0f / 64, 101)), *y = inp(d, 1, S(100000), -1, 1, 1.0f / 4096);
  vg_tensor *i1, *i2, *i3, *i4;
  vg_tensor *a = vg_sort(x, -1, false, &i1), *b = vg_sort(x, 1, true, &i2), *c = vg_topk(x, 50, 1, true, &i3);
  vg_tensor *e = vg_sort(y, 0, false, &i4);
  return cat1(8, (vg_tensor *[]){a, i1, b, i2, c, i3, e, i4});
}
static vg_tensor *f_sort_edges(vg_device d, vg_op op) {
  (void)op;   /* rows of exactly 4096 and 4097, of 1, topk of 0-3, a 0-d input */
  vg_tensor *x = inp(d, 2, S(2, 4096), -1, 1, 1.0f / 256), *y = R(d, 2, 4097), *z = R(d, 5, 1), *w = R(d, 7, 9);
  vg_tensor *i1, *i2, *i3, *i4, *i5;
  vg_tensor *a = vg_sort(x, 1, true, &i1), *b = vg_sort(y, 1, false, &i2), *c = vg_sort(z, 1, false, &i3);
  vg_tensor *e = vg_topk(nc(w), 3, 0, false, &i4), *f = vg_sort(to_dev(vg_full(VG_F32, 0, NULL, 1.5), d), 0, false, &i5);
  return cat1(10, (vg_tensor *[]){a, i1, b, i2, c, i3, e, i4, f, i5});
}

/* composites whose front-ends make constants (vg_full_on: on the input's device) */
static vg_tensor *f_composite(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *x = nc(inp(d, 3, S(3, 7, 9), -4, 4, 0));   /* (3, 9, 7) */
  vg_tensor *mask = vg_gt(x, vg_full_on(d, VG_F32, 0, NULL, 1.5));
  vg_tensor *parts[5] = {vg_softmax(x, -1), vg_log_softmax(x, 1), vg_logsumexp(x, 2, (int[]){0, 2}, false),
                         vg_masked_fill(x, mask, -9.5f), vg_dropout(x, 0.3f, true, 77)};
  return cat1(5, parts);
}

/* the norm family (fused ops): softmax / log_softmax along the last dim (rows of 300), dim 0
 * of a transpose (strided rows), a middle dim of 150 columns; values of 1e4; rows with
 * -inf entries, all -inf, +inf (NaN -> -777; log_softmax through exp: -inf -> 0) */
static vg_tensor *f_softmax(vg_device d, vg_op op) {
  vg_tensor *(*fn)(const vg_tensor *, int) = op == VG_OP_SOFTMAX ? vg_softmax : vg_log_softmax;
  vg_tensor *a = inp(d, 2, S(5, 300), -6, 6, 0), *b = nc(inp(d, 3, S(4, 7, 9), -3, 3, 0));   /* b (4, 9, 7) */
  vg_tensor *c = inp(d, 3, S(2, 6, 150), -4, 4, 0), *e = inp(d, 2, S(3, 16), -1e4f, 1e4f, 0);
  float ni = -INFINITY;
  vg_tensor *s = to_dev(vg_from_data(VG_F32, 2, S(4, 3), (float[]){ni, ni, ni, ni, 1, 2, 0.5f, ni, 3, INFINITY, 1, 2}), d);
  vg_tensor *ys = fn(s, 1);
  vg_tensor *parts[6] = {fn(a, -1), fn(b, 0), fn(c, 1), fn(e, 1), op == VG_OP_SOFTMAX ? ys : vg_exp(ys), fn(b, 2)};
  return cat1(6, parts);
}
/* softmax_bwd / log_softmax_bwd run directly: g and the forward output y, rows along the
 * last dim and along a middle dim */
static vg_tensor *f_softmax_bwd(vg_device d, vg_op op) {
  vg_tensor *parts[2];
  for (int k = 0; k < 2; k++) {
    vg_tensor *x = k ? inp(d, 3, S(6, 5, 40), -4, 4, 0) : inp(d, 2, S(7, 300), -4, 4, 0);
    int dim = k ? 1 : 1;
    vg_tensor *y = op == VG_OP_SOFTMAX_BWD ? vg_softmax(x, dim) : vg_log_softmax(x, dim);
    const vg_tensor *in[2] = {inp(d, x->ndim, x->shape, -1, 1, 0), y};
    parts[k] = direct(op, 2, in, VG_F32, d, x->ndim, x->shape, &(vg_op_params){.dim = {dim}});
  }
  return cat1(2, parts);
}
/* layer_norm over 1, 2 and 3 dims: affine, none, weight only; a transposed input; |x| ~ 1e3 */
static vg_tensor *f_layer_norm(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *parts[4] = {vg_layer_norm(inp(d, 3, S(4, 6, 32), -0.5f, 1.5f, 0), 1, R(d, 32), R(d, 32), 1e-5f),
                         vg_layer_norm(nc(R(d, 3, 7, 9)), 2, NULL, NULL, 1e-5f),
                         vg_layer_norm(R(d, 2, 3, 4, 5), 3, R(d, 3, 4, 5), NULL, 1e-3f),
                         vg_layer_norm(inp(d, 2, S(5, 300), -2000, 3000, 0), 1, NULL, R(d, 300), 1e-5f)};
  return cat1(4, parts);
}
/* layer_norm_bwd through autograd: the grads of x, weight and bias of sum(y * R) */
static vg_tensor *f_layer_norm_bwd(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *x = inp(d, 3, S(6, 5, 40), -2, 3, 0), *w = R(d, 5, 40), *b = R(d, 5, 40);
  vg_tensor *leaves[3] = {x, w, b};
  for (int i = 0; i < 3; i++) vg_requires_grad_(leaves[i], true);
  vg_tensor *y = vg_layer_norm(x, 2, w, b, 1e-5f);
  if (!y || vg_backward(vg_sum_all(vg_mul(y, R(d, 6, 5, 40)))) != VG_OK) return NULL;
  vg_tensor *parts[3] = {x->grad, w->grad, b->grad};
  return cat1(3, parts);
}

static const row rows[] = {
    {VG_OP_EXP, "softmax, log_softmax, logsumexp, masked_fill, dropout (Philox mask): composites", f_composite,
     1e-5, 1e-6, 0},
    {VG_OP_SOFTMAX, "last dim, dim 0 of a transpose, 150 columns, 1e4, -inf/+inf rows", f_softmax, 1e-5, 1e-6, 0},
    {VG_OP_LOG_SOFTMAX, "last dim, dim 0 of a transpose, 150 columns, 1e4, -inf/+inf rows", f_softmax, 1e-5, 1e-5, 1},
    {VG_OP_SOFTMAX_BWD, "rows along the last and a middle dim", f_softmax_bwd, 1e-5, 1e-6, 1},
    {VG_OP_LOG_SOFTMAX_BWD, "rows along the last and a middle dim", f_softmax_bwd, 1e-5, 1e-6, 1},
    {VG_OP_LAYER_NORM, "1/2/3 dims, affine/none/weight only, transposed, |x| ~ 1e3", f_layer_norm, 1e-5, 1e-5, 1},
    {VG_OP_LAYER_NORM_BWD, "grads of x, weight, bias (autograd)", f_layer_norm_bwd, 1e-4, 1e-5, 1},
    {VG_OP_COPY, "permute 4-d -> contiguous", f_copy_perm, 0, 0, 0},
    {VG_OP_PERMUTE, "permute view", f_copy_perm, 0, 0, 0},
    {VG_OP_SLICE, "slice step 3 view", f_slice, 0, 0, 0},
    {VG_OP_EXPAND, "expand view", f_expand, 0, 0, 0},
    {VG_OP_RESHAPE, "reshape of a transpose (copies)", f_reshape, 0, 0, 0},
    {VG_OP_COPY, "cast f32 -> f16 -> f32", f_cast_f16, 0, 0, 0},
    {VG_OP_COPY, "cast f32 -> bf16 -> f32", f_cast_bf16, 0, 0, 0},
    {VG_OP_COPY, "cast f32 -> i64 -> f32", f_cast_i64, 0, 0, 0},
    {VG_OP_COPY, "cast f32 -> i32 -> f32", f_cast_i32, 0, 0, 0},
    {VG_OP_COPY, "cast f32 -> bool -> f32", f_cast_bool, 0, 0, 0},
    {VG_OP_COPY, "cast f32 -> u8 -> f32", f_cast_u8, 0, 0, 0},
    {VG_OP_FILL, "fill_ of a strided slice", f_fill, 0, 0, 0},
    {VG_OP_ARANGE, "arange f32", f_arange, 0, 0, 0},
    {VG_OP_ARANGE, "arange i64", f_arange_i64, 0, 0, 0},
#define U(NAME) {VG_OP_##NAME, "unary, transposed input", f_unary, 1e-5, 1e-6, 0}
#define VG_UOP(NAME, name, DIFF, FE, HOIST, FWD, GRAD) U(NAME),   /* every row of tensor/unary.def */
#include "tensor/unary.def"
#undef VG_UOP
#define B(NAME) {VG_OP_##NAME, "(4,1,6) with (5,6)^T broadcast", f_binary, 1e-6, 0, 0}
#define VG_BOP(NAME, name, DIFF, OUT, HOIST, FWD, GRADX, GRADY) B(NAME),   /* every row of tensor/binary.def */
#include "tensor/binary.def"
#undef VG_BOP
    {VG_OP_ADD, "axpy_ in place (alpha -0.75)", f_axpy, 1e-6, 0, 0},
    {VG_OP_WHERE, "where, broadcast cond and expanded slice", f_where, 0, 0, 0},
    {VG_OP_SUM, "sum dims {0,2} keepdim, transposed", f_reduce, 1e-5, 1e-6, 0},
    {VG_OP_SUM, "sum of 300000", f_sum_big, 1e-5, 0, 0},
    {VG_OP_AMAX, "amax dim 1", f_reduce, 0, 0, 0},
    {VG_OP_AMIN, "amin all", f_reduce, 0, 0, 0},
    {VG_OP_ARGMAX, "argmax dim 1", f_reduce, 0, 0, 0},
    {VG_OP_MATMUL, "(2,3,17,33) @ (21,33)^T", f_matmul, 1e-5, 1e-5, 1},
    {VG_OP_MATMUL, "(3,1,4,5) @ (1,2,5,6) permuted batch", f_matmul_bcast, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D, "EfficientAD 4x4 pad 3, bias", f_conv_effad, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D, "groups 2, stride (2,1), dilation (2,1), pad (1,2), permuted x", f_conv_grouped, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D, "1x1 stride 1 (no im2col), groups 2, bias", f_conv_1x1, 1e-5, 1e-5, 1},
    {VG_OP_CONV_BN_FOLD, "weights, bias, gamma, beta, running stats", f_bn_fold, 1e-6, 1e-6, 0},
    {VG_OP_CONV_BN_FOLD, "no bias, gamma, beta; (5,2,7) transposed weights", f_bn_fold_plain, 1e-6, 1e-6, 0},
    {VG_OP_CONV2D, "fused relu: EfficientAD 4x4 pad 3, bias", f_conv_relu, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D, "fused relu: groups 2, strided, dilated, no bias, permuted x", f_conv_relu_nobias, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D, "fused relu: 1x1 direct, groups 2, bias", f_conv_relu_1x1, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D_BWD_DATA, "1x1 stride 1 (no col2im), groups 2", f_conv_1x1_bwd, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D_BWD_WEIGHT, "1x1 stride 1 (no im2col), groups 2", f_conv_1x1_bwd, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D_BWD_DATA, "groups 2, stride, dilation, pad", f_conv_bwd_data, 1e-5, 1e-5, 1},
    {VG_OP_CONV2D_BWD_WEIGHT, "groups 2, stride, dilation, pad", f_conv_bwd_weight, 1e-5, 1e-5, 1},
    {VG_OP_AVG_POOL2D, "3x2 s2 p1 ceil, no pad count, transposed", f_pool, 1e-5, 1e-6, 0},
    {VG_OP_MAX_POOL2D, "3x2 s2 p1 ceil, values + 1000*indices", f_pool, 0, 0, 0},
    {VG_OP_ADAPTIVE_AVG_POOL2D, "(9,11) -> (4,3)", f_pool, 1e-5, 1e-6, 0},
    {VG_OP_AVG_POOL2D_BWD, "3x2 s2 p1 ceil", f_pool_bwd, 1e-5, 1e-6, 0},
    {VG_OP_MAX_POOL2D_BWD, "3x2 s2 p1 ceil", f_pool_bwd, 1e-5, 1e-6, 0},
    {VG_OP_ADAPTIVE_AVG_POOL2D_BWD, "(4,3) -> (9,11)", f_pool_bwd, 1e-5, 1e-6, 0},
    {VG_OP_INTERP_BILINEAR, "(7,5)^T -> (11,4), both align_corners", f_interp, 1e-5, 1e-6, 0},
    {VG_OP_INTERP_BILINEAR_BWD, "(11,4) -> (5,7), both align_corners", f_interp_bwd, 1e-5, 1e-6, 0},
    {VG_OP_UNFOLD, "k(3,2) d(1,2) p(1,0) s(2,1), transposed", f_unfold, 0, 0, 0},
    {VG_OP_FOLD, "k(3,2) d(1,2) p(1,0) s(2,1), transposed", f_fold, 1e-6, 1e-7, 0},
    {VG_OP_PAD, "2 pairs, value -1.5, transposed", f_pad, 0, 0, 0},
    {VG_OP_CONCAT, "dim 1, transposed and expanded parts", f_concat, 0, 0, 0},
    {VG_OP_RAND_UNIFORM, "into a strided slice, seed 12345 (bit-identical)", f_rand, 0, 0, 0},
    {VG_OP_RAND_NORMAL, "into a strided slice, seed 12345", f_rand, 1e-5, 1e-6, 0},
    {VG_OP_GATHER, "transposed x and index, dim -2, index longer along dim", f_gather, 0, 0, 0},
    {VG_OP_GATHER, "i64 dim 0, f16 dim -1", f_gather_dt, 0, 0, 0},
    {VG_OP_SCATTER_ADD, "dim -3, repeated targets, transposed base/index/src (bit-identical)", f_scatter_add, 0, 0, 0},
    {VG_OP_SCATTER_ADD, "i32, index longer along dim than base", f_scatter_add_i32, 0, 0, 0},
    {VG_OP_SCATTER_ADD, "few long columns (by destination), bit-identical", f_scatter_add_long, 0, 0, 0},
    {VG_OP_INDEX_SELECT, "transposed x, dim -1, strided index with repeats", f_index_select, 0, 0, 0},
    {VG_OP_INDEX_SELECT, "u8, dim 0, 0-d index", f_index_select_u8, 0, 0, 0},
    {VG_OP_INDEX_ADD, "dim -2, repeated targets, transposed base/src (bit-identical)", f_index_add, 0, 0, 0},
    {VG_OP_INDEX_ADD, "5000 and 9000 indices (by destination), bit-identical", f_index_add_long, 0, 0, 0},
    {VG_OP_INDEX_ADD, "i64, 0-d index", f_index_add_i64, 0, 0, 0},
    {VG_OP_KTHVALUE, "transposed (200,300), ties, -0/+0: k 1/17/n/2/n, quantiles", f_kth, 0, 0, 0},
    {VG_OP_KTHVALUE, "NaNs: largest, quantile NaN", f_kth_nan, 0, 0, 0},
    {VG_OP_KTHVALUE, "quantile neighbour in another bucket", f_kth_gap, 0, 0, 0},
    {VG_OP_KTHVALUE, "3,000,000 elements: k, quantile 0.9/0.995, heavy ties", f_kth_long, 0, 0, 0},
    {VG_OP_SORT, "short rows, dims -1/1/0, desc, ties, -0/+0, NaNs (values + indices)", f_sort, 0, 0, 0},
    {VG_OP_SORT, "rows of 10000 (merge path) asc/desc/topk 50, NaNs; a row of 100000", f_sort_long, 0, 0, 0},
    {VG_OP_SORT, "rows of 4096, 4097, 1; topk of a transposed input; 0-d", f_sort_edges, 0, 0, 0},
};

/* ---- f16 rows (half_rows: inputs rounded to f16; f16 tensors on CUDA) ---- */
/* in a row, t on CUDA must have dtype dt (mixed-dtype promotion) */
static vg_tensor *want_dt(vg_tensor *t, vg_dtype dt) {
  if (t && t->device == VG_CUDA && t->dtype != dt) half_dt_bad++;
  return t;
}
/* f32 inputs inside an f16 row (not rounded, f32 on CUDA too) */
static vg_tensor *inp32(vg_device dev, int nd, const int64_t *shape, float lo, float hi) {
  bool h = half_rows;
  half_rows = false;
  vg_tensor *t = inp(dev, nd, shape, lo, hi, 0);
  half_rows = h;
  return t;
}
static vg_tensor *f_cast16(vg_device d, vg_op op) {
  (void)op;   /* f16 -> f32, i64 (halves: truncation), bf16, bool */
  vg_tensor *x = nc(inp(d, 2, S(6, 5), -300, 300, 0)), *xi = nc(inp(d, 2, S(6, 5), -30, 30, 0.5f));
  return cat1(4, (vg_tensor *[]){vg_cast(x, VG_F32), vg_cast(xi, VG_I64), vg_cast(x, VG_BF16),
                                 vg_cast(vg_cast(xi, VG_BOOL), VG_F32)});
}
static vg_tensor *f_arange16(vg_device d, vg_op op) {
  return direct(op, 0, NULL, d == VG_CUDA ? VG_F16 : VG_F32, d, 1, S(37), &(vg_op_params){.arange = {-2.5, 0.125}});
}
static vg_tensor *f_mixed(vg_device d, vg_op op) {
  vg_tensor *a = inp(d, 3, S(4, 1, 6), -2, 2, 0), *b = nc(inp32(d, 2, S(6, 5), -2, 2));
  switch (op) {
    case VG_OP_MUL: return want_dt(vg_mul(a, b), VG_F32);   /* f16 n-d with f32 n-d: f32 */
    case VG_OP_LT: return vg_cast(vg_lt(b, a), VG_F32);     /* compared in f32 */
    case VG_OP_WHERE: return want_dt(vg_where(vg_gt(a, b), a, b), VG_F32);
    default: {   /* f16 n-d with an f32 0-d: f16 (the 0-d value is f16-representable) */
      vg_tensor *k = inp32(d, 0, NULL, 0.375f, 0.375f);
      return cat1(2, (vg_tensor *[]){want16(vg_add(a, k)), want16(vg_mul(k, a))});
    }
  }
}
static vg_tensor *f_mean_var16(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *x = nc(R(d, 3, 40, 50));   /* (3, 50, 40) */
  return cat1(3, (vg_tensor *[]){want16(vg_mean(x, 1, (int[]){1}, false)), want16(vg_var(x, 2, (int[]){0, 2}, true, false)),
                                 want16(vg_std(x, 0, NULL, false, false))});
}
static vg_tensor *f_layer_norm16(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *x = inp(d, 3, S(4, 6, 32), -0.5f, 1.5f, 0);
  return vg_layer_norm(x, 1, inp(d, 1, S(32), 0.5f, 1.5f, 0), R(d, 32), 1e-5f);
}
/* activations whose squares overflow f16 (|x| ~ 1e3): the statistics must be f32 */
static vg_tensor *f_layer_norm16_big(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *x = inp(d, 3, S(2, 5, 48), -2000.0f, 3000.0f, 0);
  return vg_layer_norm(x, 2, NULL, NULL, 1e-5f);
}
static vg_tensor *f_batch_norm16(vg_device d, vg_op op) {
  (void)op;   /* eval mode with f16 running statistics */
  vg_tensor *x = nc(R(d, 2, 5, 7, 6));
  return vg_batch_norm(x, R(d, 5), POS(d, 5), POS(d, 5), R(d, 5), false, 0.1f, 1e-5f);
}
static vg_tensor *f_effad_map16(vg_device d, vg_op op) {
  (void)op;   /* vg_effad_maps' math: teacher normalization, mean_c (t - s[:C])^2, pad 4, bilinear to 64x64, affine */
  const int64_t C = 8;
  vg_tensor *t = vg_div(vg_sub(R(d, 1, C, 13, 13), R(d, 1, C, 1, 1)), POS(d, 1, C, 1, 1)), *s = R(d, 1, 2 * C, 13, 13);
  vg_tensor *map = vg_mean(vg_pow_scalar(vg_sub(t, vg_narrow(s, 1, 0, C)), 2.0f), 1, (int[]){1}, true);
  map = vg_interpolate_bilinear(vg_pad(map, 2, S(4, 4, 4, 4), 0.0f), 64, 64, false);
  return vg_affine(map, 0.1f / 1.7f, -0.3f * 0.1f / 1.7f);
}
static vg_tensor *f_conv_enc16(vg_device d, vg_op op) {
  (void)op;   /* EfficientAD autoencoder: Conv2d(3, 32, 4, stride 2, padding 1), bias */
  return vg_conv2d(R(d, 2, 3, 24, 22), R(d, 32, 3, 4, 4), R(d, 32), (vg_conv2d_opts){.sh = 2, .sw = 2, .ph = 1, .pw = 1});
}
static vg_tensor *f_maxpool16(vg_device d, vg_op op) {
  (void)op;
  vg_tensor *idx = NULL, *y = vg_max_pool2d(nc(R(d, 2, 3, 11, 9)), pool_o, &idx);
  return cat1(2, (vg_tensor *[]){want16(y), idx});
}
static vg_tensor *f_pool_effad16(vg_device d, vg_op op) {
  (void)op;   /* PDN's AvgPool2d(2, 2, padding 1), count_include_pad */
  return vg_avg_pool2d(R(d, 2, 4, 13, 12), (vg_pool2d_opts){.kh = 2, .kw = 2, .sh = 2, .sw = 2, .ph = 1, .pw = 1,
                                                             .count_include_pad = true});
}
static vg_tensor *f_interp16(vg_device d, vg_op op) {
  (void)op;   /* (7,5)^T -> (11,4) without and with align_corners; the map's upsampling (1,1,14,14) -> (64,64) */
  vg_tensor *x = nc(R(d, 2, 3, 7, 5));
  vg_tensor *a = want16(vg_interpolate_bilinear(x, 11, 4, false)), *b = want16(vg_interpolate_bilinear(x, 11, 4, true));
  vg_tensor *c = want16(vg_interpolate_bilinear(POS(d, 1, 1, 14, 14), 64, 64, false));
  return cat1(3, (vg_tensor *[]){a, b, c});
}
static vg_tensor *f_kth16(vg_device d, vg_op op) {
  (void)op;   /* kthvalue alone: exact */
  vg_tensor *x = nc(inp(d, 2, S(300, 200), -2, 2, 0.01f));
  int64_t n = vg_numel(x);
  return cat1(4, (vg_tensor *[]){want16(vg_kthvalue_all(x, 1)), want16(vg_kthvalue_all(x, 17)),
                                 want16(vg_kthvalue_all(x, n / 2)), want16(vg_kthvalue_all(x, n))});
}
static vg_tensor *f_quantile16(vg_device d, vg_op op) {
  (void)op;   /* quantiles: the lerp in f32, rounded once */
  vg_tensor *x = nc(inp(d, 2, S(300, 200), -2, 2, 0));
  return cat1(4, (vg_tensor *[]){want16(vg_quantile_all(x, 0.3)), want16(vg_quantile_all(x, 0.5)),
                                 want16(vg_quantile_all(x, 0.9173)), want16(vg_quantile_all(x, 0.995))});
}
static vg_tensor *f_pdn16(vg_device d, vg_op op) {
  (void)op;   /* EfficientAD-S teacher (PDN-S, 384 channels, padding) on a 1x3x40x40 image, no grad: weights
               * rounded to f16 once; the CPU runs them in f32, CUDA in f16 */
  vg_nn_module *m = vg_effad_pdn_new(VG_EFFAD_S, 384, true, 5);
  vg_tensor *y = NULL;
  if (m && vg_nn_to(m, VG_CPU, VG_F16) == VG_OK && vg_nn_to(m, d, d == VG_CUDA ? VG_F16 : VG_F32) == VG_OK) {
    vg_tensor *x = inp(d, 4, S(1, 3, 40, 40), 0, 1, 0);
    vg_no_grad_begin();
    y = want16(vg_nn_forward(m, x));
    vg_no_grad_end();
  }
  vg_nn_free(m);
  return y;
}

typedef struct {
  row r;
  int half;   /* 1: the CUDA result is f16; 2: of another dtype (casts, indices, cat1 of checked parts) */
} row16;

#define F16_PW 9.765625e-4, 5.9604645e-8, 0   /* 2^-10 |cpu| + 2^-24 */
#define F16_ACC 9.765625e-4, 1e-6, 0          /* sums, pooling, bilinear, fold */
#define F16_GEMM 9.765625e-4, 1e-4, 1         /* + 1e-4 max|cpu| */
#define F16_COMP 3.90625e-3, 1e-3, 1          /* composites: 2^-8 |cpu| + 1e-3 max(1, max|cpu|) */
#define F16_EXACT 0, 0, 0
static const row16 rows16[] = {
    {{VG_OP_COPY, "f16 permute 4-d -> contiguous", f_copy_perm, F16_EXACT}, 1},
    {{VG_OP_PERMUTE, "f16 permute view", f_copy_perm, F16_EXACT}, 1},
    {{VG_OP_SLICE, "f16 slice step 3 view", f_slice, F16_EXACT}, 1},
    {{VG_OP_EXPAND, "f16 expand view", f_expand, F16_EXACT}, 1},
    {{VG_OP_RESHAPE, "f16 reshape of a transpose (copies)", f_reshape, F16_EXACT}, 1},
    {{VG_OP_COPY, "casts f16 -> f32, i64, bf16, bool", f_cast16, F16_EXACT}, 2},
    {{VG_OP_FILL, "f16 fill_ of a strided slice", f_fill, F16_EXACT}, 1},
    {{VG_OP_ARANGE, "arange f16", f_arange16, F16_EXACT}, 1},
#define U16(NAME) {{VG_OP_##NAME, "f16 unary, transposed input", f_unary, F16_PW}, 1}
#define VG_UOP(NAME, name, DIFF, FE, HOIST, FWD, GRAD) U16(NAME),   /* every row of tensor/unary.def */
#include "tensor/unary.def"
#undef VG_UOP
#define B16(NAME) {{VG_OP_##NAME, "f16 (4,1,6) with (5,6)^T broadcast", f_binary, F16_PW}, 1}
#define C16(NAME) {{VG_OP_##NAME, "f16 (4,1,6) with (5,6)^T broadcast", f_binary, F16_EXACT}, 2}
#define BC16_float B16   /* float results within the f16 bound, bool results exact */
#define BC16_bool C16
#define VG_BOP(NAME, name, DIFF, OUT, HOIST, FWD, GRADX, GRADY) BC16_##OUT(NAME),   /* every row of binary.def */
#include "tensor/binary.def"
#undef VG_BOP
    {{VG_OP_MUL, "f16 (4,1,6) * f32 (5,6)^T -> f32", f_mixed, 1e-6, 0, 0}, 2},
    {{VG_OP_LT, "f32 (5,6)^T < f16 (4,1,6): compared in f32", f_mixed, F16_EXACT}, 2},
    {{VG_OP_ADD, "f16 (4,1,6) with an f32 0-d -> f16", f_mixed, F16_PW}, 2},
    {{VG_OP_WHERE, "f16 where, broadcast cond and expanded slice", f_where, F16_EXACT}, 1},
    {{VG_OP_WHERE, "where of f16 and f32 -> f32", f_mixed, F16_EXACT}, 2},
    {{VG_OP_SUM, "f16 sum dims {0,2} keepdim, transposed", f_reduce, F16_ACC}, 1},
    {{VG_OP_SUM, "f16 sum of 300000", f_sum_big, F16_ACC}, 1},
    {{VG_OP_AMAX, "f16 amax dim 1", f_reduce, F16_EXACT}, 1},
    {{VG_OP_AMIN, "f16 amin all", f_reduce, F16_EXACT}, 1},
    {{VG_OP_ARGMAX, "f16 argmax dim 1", f_reduce, F16_EXACT}, 2},
    {{VG_OP_SUM, "f16 mean, var (unbiased), std: composites", f_mean_var16, F16_COMP}, 2},
    {{VG_OP_LAYER_NORM, "f16 layer_norm (4,6,32) with f16 weight, bias (f32 statistics, one rounding)", f_layer_norm16,
      F16_ACC}, 1},
    {{VG_OP_SOFTMAX, "f16 softmax: last dim, dim 0 of a transpose, 150 columns, -inf/+inf rows", f_softmax, F16_PW}, 2},
    {{VG_OP_LOG_SOFTMAX, "f16 log_softmax: last dim, dim 0 of a transpose, 150 columns", f_softmax, F16_ACC}, 2},
    {{VG_OP_SUM, "f16 batch_norm eval, f16 running stats: composite", f_batch_norm16, F16_COMP}, 1},
    {{VG_OP_LAYER_NORM, "f16 layer_norm of |x| ~ 1e3 (squares beyond f16; f32 statistics)", f_layer_norm16_big,
      F16_ACC}, 1},
    {{VG_OP_MATMUL, "f16 (2,3,17,33) @ (21,33)^T", f_matmul, F16_GEMM}, 1},
    {{VG_OP_MATMUL, "f16 (3,1,4,5) @ (1,2,5,6) permuted batch", f_matmul_bcast, F16_GEMM}, 1},
    {{VG_OP_CONV2D, "f16 EfficientAD 4x4 pad 3, bias", f_conv_effad, F16_GEMM}, 1},
    {{VG_OP_CONV2D, "f16 1x1 stride 1 (no im2col), groups 2, bias", f_conv_1x1, F16_GEMM}, 1},
    {{VG_OP_CONV2D, "f16 EfficientAD AE 4x4 stride 2 pad 1, bias", f_conv_enc16, F16_GEMM}, 1},
    {{VG_OP_CONV_BN_FOLD, "f16 weights and vectors, f32 running_var", f_bn_fold, F16_PW}, 2},
    {{VG_OP_CONV_BN_FOLD, "f16 no bias, gamma, beta", f_bn_fold_plain, F16_PW}, 2},
    {{VG_OP_CONV2D, "f16 fused relu: EfficientAD 4x4 pad 3, bias", f_conv_relu, F16_GEMM}, 1},
    {{VG_OP_CONV2D, "f16 fused relu: groups 2, strided, dilated, no bias", f_conv_relu_nobias, F16_GEMM}, 1},
    {{VG_OP_CONV2D, "f16 fused relu: 1x1 direct, groups 2, bias", f_conv_relu_1x1, F16_GEMM}, 1},
    {{VG_OP_CONV2D, "f16 groups 2, stride (2,1), dilation (2,1), pad (1,2), permuted x", f_conv_grouped, F16_GEMM}, 1},
    {{VG_OP_AVG_POOL2D, "f16 3x2 s2 p1 ceil, no pad count, transposed", f_pool, F16_ACC}, 1},
    {{VG_OP_AVG_POOL2D, "f16 PDN 2x2 s2 p1, pad counted", f_pool_effad16, F16_ACC}, 1},
    {{VG_OP_MAX_POOL2D, "f16 3x2 s2 p1 ceil, values and indices", f_maxpool16, F16_EXACT}, 2},
    {{VG_OP_ADAPTIVE_AVG_POOL2D, "f16 (9,11) -> (4,3)", f_pool, F16_ACC}, 1},
    {{VG_OP_INTERP_BILINEAR, "f16 (7,5)^T -> (11,4) both align_corners; (14,14) -> (64,64)", f_interp16, F16_ACC}, 2},
    {{VG_OP_UNFOLD, "f16 k(3,2) d(1,2) p(1,0) s(2,1), transposed", f_unfold, F16_EXACT}, 1},
    {{VG_OP_FOLD, "f16 k(3,2) d(1,2) p(1,0) s(2,1), transposed", f_fold, F16_ACC}, 1},
    {{VG_OP_PAD, "f16 2 pairs, value -1.5, transposed", f_pad, F16_EXACT}, 1},
    {{VG_OP_CONCAT, "f16 dim 1, transposed and expanded parts", f_concat, F16_EXACT}, 1},
    {{VG_OP_GATHER, "f16 transposed x and index, dim -2", f_gather, F16_EXACT}, 1},
    {{VG_OP_INDEX_SELECT, "f16 transposed x, dim -1, strided index with repeats", f_index_select, F16_EXACT}, 1},
    {{VG_OP_KTHVALUE, "f16 transposed (200,300), ties, -0/+0: k 1/17/n/2/n", f_kth16, F16_EXACT}, 2},
    {{VG_OP_KTHVALUE, "f16 NaNs: largest, quantile NaN", f_kth_nan, F16_EXACT}, 2},
    {{VG_OP_KTHVALUE, "f16 quantiles 0.3/0.5/0.9173/0.995 (lerp rounded once)", f_quantile16, F16_PW}, 2},
    {{VG_OP_KTHVALUE, "f16 quantile neighbour in another bucket", f_kth_gap, F16_PW}, 2},
    {{VG_OP_KTHVALUE, "f16 3,000,000 elements: k, quantile 0.9/0.995, heavy ties", f_kth_long, F16_PW}, 2},
    {{VG_OP_SORT, "f16 short rows, dims -1/1/0, desc, ties, -0/+0, NaNs (values + indices)", f_sort, F16_EXACT}, 2},
    {{VG_OP_SORT, "f16 rows of 10000 (merge path), topk 50, NaNs; a row of 100000", f_sort_long, F16_EXACT}, 2},
    {{VG_OP_SORT, "f16 rows of 4096, 4097, 1; topk of a transposed input; 0-d", f_sort_edges, F16_EXACT}, 2},
    {{VG_OP_SUM, "f16 EfficientAD map: normalized teacher, mean_c (t-s)^2, pad, bilinear, affine", f_effad_map16, F16_COMP}, 1},
    {{VG_OP_CONV2D, "f16 EfficientAD-S teacher forward (PDN-S, 1x3x40x40, no grad)", f_pdn16, 0, 1e-2, 1}, 1},
};

/* ops inference does not use: no f16 row needed (backward, random, scatters) */
static bool f16_exempt(vg_op op) {
  switch (op) {
    case VG_OP_CONV2D_BWD_DATA: case VG_OP_CONV2D_BWD_WEIGHT: case VG_OP_AVG_POOL2D_BWD: case VG_OP_MAX_POOL2D_BWD:
    case VG_OP_ADAPTIVE_AVG_POOL2D_BWD: case VG_OP_INTERP_BILINEAR_BWD: case VG_OP_SCATTER_ADD: case VG_OP_INDEX_ADD:
    case VG_OP_RAND_UNIFORM: case VG_OP_RAND_NORMAL: case VG_OP_SOFTMAX_BWD: case VG_OP_LOG_SOFTMAX_BWD:
    case VG_OP_LAYER_NORM_BWD:
      return true;
    default:
      return false;
  }
}

static float *host_f32(const vg_tensor *t) {
  float *p = malloc(sizeof(float) * (size_t)(vg_numel(t) ? vg_numel(t) : 1));
  if (p && vg_to_host(t, VG_F32, p) != VG_OK) {
    free(p);
    return NULL;
  }
  return p;
}

/* compares a (CUDA result) with b (CPU result); norm_rel scales atol by max |b| */
static int compare(const vg_tensor *a, const vg_tensor *b, double rtol, double atol, int norm_rel, const char *what) {
  if (!a || !b || !vg_same_shape(a, b)) return VG_CHECK(0, "%s: missing result or shapes differ (%s)", what, vg_last_error());
  int64_t n = vg_numel(b);
  float *pa = host_f32(a), *pb = host_f32(b);
  if (norm_rel) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(pb[i]));
    atol *= m > 1 ? m : 1;
  }
  int ok = VG_CHECK_CLOSE(pa, pb, n, rtol, atol, what);
  free(pa);
  free(pb);
  return ok;
}

static vg_tensor *run_row(const row *r, vg_device dev) {
  rng = 0x243f6a8885a308d3ull ^ (uint64_t)r->op;
  return r->fn(dev, r->op);
}

/* one f16 row: the CPU in f32 on f16-rounded inputs, CUDA in f16 */
static bool run_row16(const row16 *h) {
  const row *r = &h->r;
  char what[256];
  snprintf(what, sizeof what, "cuda %s: %s", vg_op_name(r->op), r->what);
  half_rows = true;
  half_dt_bad = 0;
  vg_tensor *want = run_row(r, VG_CPU), *got = run_row(r, VG_CUDA);
  half_rows = false;
  if (got && ((h->half == 1 && got->dtype != VG_F16) || half_dt_bad))
    return VG_CHECK(0, "%s: CUDA result dtype %s (%d parts not as wanted)", what, vg_dtype_name(got->dtype), half_dt_bad);
  return compare(got, want, r->rtol, r->atol, r->norm_rel, what);
}

static bool err_has(const vg_tensor *t, const char *want) {
  return !t && strstr(vg_last_error(), want) != NULL;
}

/* the f16 errors: compute on a CPU tensor, mixed conv / matmul, autograd */
static void f16_errors(void) {
  vg_scope_begin();
  rng = 99;
  vg_tensor *xc = vg_cast(R(VG_CPU, 2, 3, 8, 8), VG_F16);
  VG_CHECK(err_has(vg_exp(xc), "exp: f16 compute needs a CUDA tensor (cast to f32 with vg_cast)"), "cpu f16 exp refused: %s",
           vg_last_error());
  VG_CHECK(err_has(vg_sum_all(xc), "sum: f16 compute needs a CUDA tensor"), "cpu f16 sum refused: %s", vg_last_error());
  VG_CHECK(err_has(vg_conv2d(xc, vg_cast(R(VG_CPU, 4, 3, 3, 3), VG_F16), NULL, (vg_conv2d_opts){0}),
                   "conv2d: f16 compute needs a CUDA tensor"), "cpu f16 conv2d refused: %s", vg_last_error());
  VG_CHECK(err_has(vg_add(R(VG_CPU, 8), vg_cast(R(VG_CPU, 8), VG_F16)), "add: f16 compute needs a CUDA tensor"),
           "cpu f32 + f16 refused: %s", vg_last_error());
  vg_tensor *x = vg_cast(R(VG_CUDA, 2, 3, 8, 8), VG_F16), *w = R(VG_CUDA, 4, 3, 3, 3), *b = R(VG_CUDA, 4);
  VG_CHECK(err_has(vg_conv2d(x, w, NULL, (vg_conv2d_opts){0}), "conv2d: mixed float dtypes: input is f16, weight is f32"),
           "conv2d f16 x with f32 w refused: %s", vg_last_error());
  VG_CHECK(err_has(vg_conv2d(x, vg_cast(w, VG_F16), b, (vg_conv2d_opts){0}), "input is f16, weight is f16, bias is f32"),
           "conv2d with an f32 bias refused: %s", vg_last_error());
  VG_CHECK(err_has(vg_matmul(R(VG_CUDA, 3, 4), vg_cast(R(VG_CUDA, 4, 5), VG_F16)), "matmul: mixed float dtypes: a is f32, b is f16"),
           "matmul f32 @ f16 refused: %s", vg_last_error());
  /* autograd: no tape node with an f16 input or output */
  vg_tensor *xg = vg_cast(R(VG_CUDA, 5, 6), VG_F16), *wg = R(VG_CUDA, 5, 6);
  vg_requires_grad_(xg, true);
  vg_requires_grad_(wg, true);
  VG_CHECK(err_has(vg_relu(xg), "relu: f16 tensors are inference-only"), "f16 relu with grad refused: %s", vg_last_error());
  VG_CHECK(err_has(vg_cast(wg, VG_F16), "copy: f16 tensors are inference-only"), "cast of a grad tensor to f16 refused: %s",
           vg_last_error());
  VG_CHECK(err_has(vg_mul(wg, vg_cast(R(VG_CUDA, 5, 6), VG_F16)), "mul: f16 tensors are inference-only"),
           "f32 (grad) * f16 refused: %s", vg_last_error());
  vg_no_grad_begin();
  vg_tensor *y = vg_relu(xg);
  vg_no_grad_end();
  VG_CHECK(y && y->dtype == VG_F16 && !y->requires_grad, "f16 relu under no_grad runs (%s)", y ? "" : vg_last_error());
  vg_tensor *z = vg_relu(vg_detach(xg));
  VG_CHECK(z && z->dtype == VG_F16, "f16 relu of a detached tensor runs (%s)", z ? "" : vg_last_error());
  vg_scope_end();
}

/* forward + backward on dev; returns the grads of x, w, b, m (in the current scope) */
static void grad_run(vg_device dev, vg_tensor **g) {
  rng = 7;
  vg_tensor *x = R(dev, 2, 3, 12, 10), *w = R(dev, 8, 3, 4, 4), *b = R(dev, 8), *m = R(dev, 7, 5);
  vg_tensor *leaves[4] = {x, w, b, m};
  for (int i = 0; i < 4; i++) vg_requires_grad_(leaves[i], true);
  vg_tensor *y = vg_tanh(vg_conv2d(x, w, b, (vg_conv2d_opts){.ph = 3, .pw = 3, .sh = 2, .sw = 2}));
  y = vg_max_pool2d(vg_avg_pool2d(y, (vg_pool2d_opts){.kh = 2, .kw = 2, .sh = 1, .sw = 1, .count_include_pad = true}),
                    (vg_pool2d_opts){.kh = 2, .kw = 2}, NULL);
  y = vg_interpolate_bilinear(vg_adaptive_avg_pool2d(y, 5, 5), 7, 7, false);   /* (2,8,7,7) */
  y = vg_matmul(y, m);                                                          /* (2,8,7,5) */
  vg_tensor *loss = vg_sum_all(vg_mul(vg_sigmoid(y), vg_exp(vg_scale(y, 0.3f))));
  vg_tensor *seed = vg_to_device(vg_full(VG_F32, 0, NULL, 1.0), dev);
  VG_CHECK(vg_backward_with(loss, seed) == VG_OK, "backward on %s", dev == VG_CUDA ? "cuda" : "cpu");
  for (int i = 0; i < 4; i++) g[i] = leaves[i]->grad;
}

/* forward + backward through the indexing and sort ops (their rules use gather,
 * scatter_add, index_select, index_add); returns the grads of x, b, u */
static void grad_run_index(vg_device dev, vg_tensor **g) {
  rng = 11;
  vg_tensor *x = nc(R(dev, 9, 6)), *b = R(dev, 5, 9), *u = R(dev, 5, 8);   /* x (6,9) transposed */
  vg_tensor *leaves[3] = {x, b, u};
  for (int i = 0; i < 3; i++) vg_requires_grad_(leaves[i], true);
  vg_tensor *v = vg_sort(x, -1, true, NULL);                                 /* gather -> scatter_add */
  vg_tensor *s = vg_index_select(v, 0, idx_inp(dev, 1, S(4), 6));           /* -> index_add */
  vg_tensor *t = vg_gather(s, 1, idx_inp(dev, 2, S(4, 12), 9));             /* -> scatter_add, repeats */
  vg_tensor *a = vg_index_add(b, 0, idx_inp(dev, 1, S(4), 5), s);           /* -> g, index_select */
  vg_tensor *w = vg_scatter_add(a, -1, idx_inp(dev, 2, S(5, 7), 9), u);     /* -> g, gather */
  vg_tensor *top = vg_topk(w, 3, 0, true, NULL);
  vg_tensor *loss = vg_add(vg_sum_all(vg_mul(t, t)), vg_add(vg_sum_all(vg_mul(w, vg_scale(w, 0.5f))),
                                                             vg_sum_all(vg_mul(top, top))));
  vg_tensor *seed = vg_to_device(vg_full(VG_F32, 0, NULL, 1.0), dev);
  VG_CHECK(vg_backward_with(loss, seed) == VG_OK, "index backward on %s", dev == VG_CUDA ? "cuda" : "cpu");
  for (int i = 0; i < 3; i++) g[i] = leaves[i]->grad;
}

int main(void) {
  if (!vg_cuda_available()) {
    printf("SKIP %s\n", vg_last_error());   /* "cuda: <reason>" */
    printf("0 passed, 0 failed\n");
    return 0;
  }
  {  /* the CUDA backend's per-op kernel table: every non-view op has its own entry */
    char err[512];
    const vg_backend *cu = vg_backend_of(VG_CUDA);
    VG_CHECK(vg_backend_complete(cu, err, sizeof err), "cuda backend complete: %s", err);
    for (int op = 0; op < VG_OP_COUNT; op++)
      VG_CHECK((cu->kernel[op] != NULL) == (vg_op_family_of((vg_op)op) != VG_FAM_VIEW), "cuda kernel of %s %s",
               vg_op_name((vg_op)op), cu->kernel[op] ? "present" : "absent (view)");
  }
  int nrows = (int)(sizeof rows / sizeof rows[0]);
  for (int i = 0; i < nrows; i++) {
    const row *r = &rows[i];
    vg_scope_begin();
    char what[256];
    snprintf(what, sizeof what, "cuda %s: %s", vg_op_name(r->op), r->what);
    vg_tensor *want = run_row(r, VG_CPU), *got = run_row(r, VG_CUDA);
    compare(got, want, r->rtol, r->atol, r->norm_rel, what);
    vg_scope_end();
  }
  /* f16 rows, and their coverage */
  bool covered16[VG_OP_COUNT] = {0};
  for (size_t i = 0; i < sizeof rows16 / sizeof rows16[0]; i++) {
    vg_scope_begin();
    if (run_row16(&rows16[i])) covered16[rows16[i].r.op] = true;
    vg_scope_end();
  }
  for (int op = 0; op < VG_OP_COUNT; op++)
    if (!f16_exempt((vg_op)op)) VG_CHECK(covered16[op], "cuda %s: has a passing f16 row", vg_op_name((vg_op)op));
  f16_errors();
  /* autograd through both devices: input grads agree */
  vg_scope_begin();
  vg_tensor *gc[4], *gg[4];
  grad_run(VG_CPU, gc);
  grad_run(VG_CUDA, gg);
  const char *names[4] = {"x", "w", "b", "m"};
  for (int i = 0; i < 4; i++) {
    char what[128];
    snprintf(what, sizeof what, "cuda backward: grad of %s (conv 4x4 p3 s2, pools, bilinear, matmul)", names[i]);
    compare(gg[i], gc[i], 1e-4, 1e-5, 1, what);
  }
  vg_scope_end();
  vg_scope_begin();
  vg_tensor *ic[3], *ig[3];
  grad_run_index(VG_CPU, ic);
  grad_run_index(VG_CUDA, ig);
  const char *inames[3] = {"x", "b", "u"};
  for (int i = 0; i < 3; i++) {
    char what[160];
    snprintf(what, sizeof what, "cuda backward: grad of %s (sort, index_select, gather, index_add, scatter_add, topk)",
             inames[i]);
    compare(ig[i], ic[i], 1e-6, 0, 0, what);
  }
  vg_scope_end();
  /* device API */
  vg_tensor *h = vg_tensor_new_on(VG_CUDA, VG_F32, 2, S(3, 4));
  vg_scope_begin();
  VG_CHECK(h && h->device == VG_CUDA && vg_item(vg_sum_all(h)) == 0.0f, "vg_tensor_new_on: zeroed heap tensor on cuda");
  vg_scope_end();
  vg_tensor_free(h);
  /* every op runs CPU-vs-CUDA from its row of the op-test table (tests/test_op_table.c, cuda
   * mode); the rows here are extra layouts and cases, and the f16 coverage above */
  return vg_test_finish();
}
