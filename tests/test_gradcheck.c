/* test_gradcheck.c — central-difference gradcheck rows beyond the op-test table's
 * (tests/op_table.def holds one row per op and gradchecks every differentiable one).
 * Inputs are small random f32 tensors (double-checked in double inside
 * vg_gradcheck); tolerance: max |num - ana| / max(1, |num|, |ana|) <= 2e-2 with
 * eps = 1e-2 in float — the float rounding of the central difference dominates. */
#include "tests/vgtest.h"
#include "tensor/tensor.h"
#include "autograd/autograd.h"

typedef struct {
  vg_op op;
  const char *what;
  int nin;
  int64_t shapes[3][4];
  int ndims[3];
  vg_gradcheck_fn fn;
  float lo, hi;        /* input range (uniform); 0,0 = standard normal */
  unsigned nograd;     /* bit i: input i does not require grad */
} grad_row;

#define IN(i) in[i]
static vg_tensor *g_reshape(vg_tensor *const *in, void *c) { (void)c; return vg_reshape(IN(0), 2, (int64_t[]){3, 4}); }
static vg_tensor *g_permute(vg_tensor *const *in, void *c) { (void)c; return vg_permute(IN(0), (int[]){2, 0, 1}); }
static vg_tensor *g_slice(vg_tensor *const *in, void *c) { (void)c; return vg_slice(IN(0), 1, 1, 4, 2); }
static vg_tensor *g_expand(vg_tensor *const *in, void *c) { (void)c; return vg_expand(IN(0), 3, (int64_t[]){2, 3, 4}); }
static vg_tensor *g_copy(vg_tensor *const *in, void *c) { (void)c; return vg_clone(vg_transpose(IN(0), 0, 1)); }
#define U(nm, call) static vg_tensor *nm(vg_tensor *const *in, void *c) { (void)c; return call; }
U(g_neg, vg_neg(IN(0)))
U(g_exp, vg_exp(IN(0)))
U(g_log, vg_log(IN(0)))
U(g_sqrt, vg_sqrt(IN(0)))
U(g_rsqrt, vg_rsqrt(IN(0)))
U(g_abs, vg_abs(IN(0)))
U(g_relu, vg_relu(IN(0)))
U(g_leaky, vg_leaky_relu(IN(0), 0.1f))
U(g_sigmoid, vg_sigmoid(IN(0)))
U(g_logsigmoid, vg_logsigmoid(IN(0)))
U(g_tanh, vg_tanh(IN(0)))
U(g_softplus, vg_softplus(IN(0), 1.5f, 3.0f))
U(g_atan, vg_atan(IN(0)))
U(g_gelu, vg_gelu(IN(0)))
U(g_pow, vg_pow_scalar(IN(0), 2.5f))
U(g_clamp, vg_clamp(IN(0), -0.5f, 0.7f))
U(g_affine, vg_affine(IN(0), -1.7f, 0.3f))
U(g_sin, vg_sin(IN(0)))
U(g_cos, vg_cos(IN(0)))
U(g_erf, vg_erf(IN(0)))
U(g_hardswish, vg_hardswish(IN(0)))
U(g_hardsigmoid, vg_hardsigmoid(IN(0)))
U(g_silu, vg_silu(IN(0)))
U(g_add, vg_add(IN(0), IN(1)))
U(g_sub, vg_sub(IN(0), IN(1)))
U(g_mul, vg_mul(IN(0), IN(1)))
U(g_div, vg_div(IN(0), IN(1)))
U(g_maximum, vg_maximum(IN(0), IN(1)))
U(g_minimum, vg_minimum(IN(0), IN(1)))
U(g_where, vg_where(vg_gt(IN(0), vg_scalar(0)), IN(1), IN(2)))
U(g_sum, vg_sum(IN(0), 2, (int[]){0, 2}, false))
U(g_amax, vg_amax(IN(0), 1, (int[]){1}, true))
U(g_amin, vg_amin(IN(0), 2, (int[]){0, 1}, false))
U(g_matmul, vg_matmul(IN(0), IN(1)))
U(g_conv, vg_conv2d(IN(0), IN(1), IN(2), (vg_conv2d_opts){.sh = 2, .sw = 1, .ph = 1, .pw = 2, .dh = 1, .dw = 2, .groups = 2}))
U(g_avgpool, vg_avg_pool2d(IN(0), (vg_pool2d_opts){.kh = 3, .kw = 2, .sh = 2, .sw = 1, .ph = 1, .pw = 1, .ceil_mode = true}))
U(g_maxpool, vg_max_pool2d(IN(0), (vg_pool2d_opts){.kh = 2, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1}, NULL))
U(g_adaptive, vg_adaptive_avg_pool2d(IN(0), 3, 2))
U(g_interp0, vg_interpolate_bilinear(IN(0), 7, 4, false))
U(g_interp1, vg_interpolate_bilinear(IN(0), 3, 8, true))
U(g_unfold, vg_unfold(IN(0), 2, 3, 1, 1, 1, 0, 2, 1))
U(g_fold, vg_fold(IN(0), 4, 5, 2, 2, 1, 1, 0, 0, 1, 1))
U(g_pad, vg_pad(IN(0), 2, (int64_t[]){1, 2, 0, 1}, 0.5f))
static vg_tensor *g_concat(vg_tensor *const *in, void *c) { (void)c; return vg_concat(2, (vg_tensor *const[]){IN(0), IN(1)}, 1); }
static vg_tensor *idx(void) { return vg_cast(vg_from_data(VG_F32, 2, (int64_t[]){2, 3}, (float[]){2, 0, 1, 1, 1, 3}), VG_I64); }
static vg_tensor *idx1(void) { return vg_cast(vg_from_data(VG_F32, 1, (int64_t[]){4}, (float[]){2, 0, 2, 1}), VG_I64); }
U(g_gather, vg_gather(IN(0), 1, idx()))
U(g_scatter, vg_scatter_add(IN(0), 1, idx(), IN(1)))
U(g_isel, vg_index_select(IN(0), 0, idx1()))
U(g_iadd, vg_index_add(IN(0), 0, idx1(), IN(1)))
/* the norm family (fused ops with fused backward ops) */
U(g_layernorm, vg_layer_norm(IN(0), 2, IN(1), IN(2), 1e-5f))
U(g_layernorm_plain, vg_layer_norm(IN(0), 1, NULL, NULL, 1e-5f))
U(g_layernorm_w, vg_layer_norm(vg_transpose(IN(0), 0, 1), 1, IN(1), NULL, 1e-3f))
U(g_softmax, vg_softmax(IN(0), -1))
U(g_softmax0, vg_softmax(IN(0), 0))
U(g_logsoftmax, vg_log_softmax(IN(0), 1))
U(g_logsoftmax_last, vg_log_softmax(vg_transpose(IN(0), 0, 2), -1))
/* composites, checked too: batch norm, logsumexp, var */
U(g_batchnorm, vg_batch_norm(IN(0), NULL, NULL, IN(1), IN(2), true, 0.1f, 1e-5f))
U(g_var, vg_var(IN(0), 1, (int[]){1}, true, false))
U(g_sort, vg_sort(IN(0), 1, true, NULL))

static const grad_row ROWS[] = {
    {VG_OP_RESHAPE, "reshape", 1, {{2, 6}}, {2}, g_reshape, 0, 0, 0},
    {VG_OP_PERMUTE, "permute", 1, {{2, 3, 4}}, {3}, g_permute, 0, 0, 0},
    {VG_OP_SLICE, "slice step 2", 1, {{2, 5}}, {2}, g_slice, 0, 0, 0},
    {VG_OP_EXPAND, "expand", 1, {{3, 1}}, {2}, g_expand, 0, 0, 0},
    {VG_OP_COPY, "copy of a transpose", 1, {{3, 4}}, {2}, g_copy, 0, 0, 0},
    {VG_OP_NEG, "neg", 1, {{7}}, {1}, g_neg, 0, 0, 0},
    {VG_OP_EXP, "exp", 1, {{7}}, {1}, g_exp, 0, 0, 0},
    {VG_OP_LOG, "log", 1, {{7}}, {1}, g_log, 0.5f, 3, 0},
    {VG_OP_SQRT, "sqrt", 1, {{7}}, {1}, g_sqrt, 0.5f, 3, 0},
    {VG_OP_RSQRT, "rsqrt", 1, {{7}}, {1}, g_rsqrt, 0.5f, 3, 0},
    {VG_OP_ABS, "abs", 1, {{7}}, {1}, g_abs, 0.2f, 2, 0},
    {VG_OP_RELU, "relu", 1, {{9}}, {1}, g_relu, 0, 0, 0},
    {VG_OP_LEAKY_RELU, "leaky_relu", 1, {{9}}, {1}, g_leaky, 0, 0, 0},
    {VG_OP_SIGMOID, "sigmoid", 1, {{9}}, {1}, g_sigmoid, 0, 0, 0},
    {VG_OP_LOGSIGMOID, "logsigmoid", 1, {{9}}, {1}, g_logsigmoid, -6, 6, 0},
    {VG_OP_TANH, "tanh", 1, {{9}}, {1}, g_tanh, 0, 0, 0},
    {VG_OP_SOFTPLUS, "softplus beta 1.5 thr 3", 1, {{9}}, {1}, g_softplus, -4, 4, 0},
    {VG_OP_ATAN, "atan", 1, {{9}}, {1}, g_atan, 0, 0, 0},
    {VG_OP_GELU, "gelu", 1, {{9}}, {1}, g_gelu, -4, 4, 0},
    {VG_OP_POW_SCALAR, "pow 2.5", 1, {{7}}, {1}, g_pow, 0.3f, 2, 0},
    {VG_OP_CLAMP, "clamp", 1, {{9}}, {1}, g_clamp, 0, 0, 0},
    {VG_OP_AFFINE, "affine", 1, {{9}}, {1}, g_affine, 0, 0, 0},
    {VG_OP_SIN, "sin", 1, {{9}}, {1}, g_sin, 0, 0, 0},
    {VG_OP_COS, "cos", 1, {{9}}, {1}, g_cos, 0, 0, 0},
    {VG_OP_ERF, "erf", 1, {{9}}, {1}, g_erf, 0, 0, 0},
    {VG_OP_HARDSWISH, "hardswish", 1, {{9}}, {1}, g_hardswish, -5, 5, 0},
    {VG_OP_HARDSIGMOID, "hardsigmoid", 1, {{9}}, {1}, g_hardsigmoid, -5, 5, 0},
    {VG_OP_SILU, "silu", 1, {{9}}, {1}, g_silu, -6, 6, 0},
    {VG_OP_ADD, "add broadcast", 2, {{2, 3}, {3}}, {2, 1}, g_add, 0, 0, 0},
    {VG_OP_SUB, "sub broadcast", 2, {{2, 1}, {2, 3}}, {2, 2}, g_sub, 0, 0, 0},
    {VG_OP_MUL, "mul broadcast", 2, {{2, 3, 1}, {4}}, {3, 1}, g_mul, 0, 0, 0},
    {VG_OP_DIV, "div", 2, {{2, 3}, {2, 3}}, {2, 2}, g_div, 0.5f, 2, 0},
    {VG_OP_MAXIMUM, "maximum", 2, {{2, 3}, {2, 3}}, {2, 2}, g_maximum, 0, 0, 0},
    {VG_OP_MINIMUM, "minimum", 2, {{2, 3}, {3}}, {2, 1}, g_minimum, 0, 0, 0},
    {VG_OP_WHERE, "where", 3, {{2, 3}, {2, 3}, {3}}, {2, 2, 1}, g_where, 0, 0, 1u},
    {VG_OP_SUM, "sum dims 0,2", 1, {{2, 3, 4}}, {3}, g_sum, 0, 0, 0},
    {VG_OP_AMAX, "amax keepdim", 1, {{2, 5}}, {2}, g_amax, 0, 0, 0},
    {VG_OP_AMIN, "amin all", 1, {{2, 5}}, {2}, g_amin, 0, 0, 0},
    {VG_OP_MATMUL, "matmul batched broadcast", 2, {{2, 3, 4}, {4, 5}}, {3, 2}, g_matmul, 0, 0, 0},
    {VG_OP_CONV2D, "conv2d groups/stride/dilation", 3, {{2, 4, 5, 6}, {6, 2, 3, 2}, {6}}, {4, 4, 1}, g_conv, 0, 0, 0},
    {VG_OP_AVG_POOL2D, "avg_pool2d ceil", 1, {{1, 2, 5, 6}}, {4}, g_avgpool, 0, 0, 0},
    {VG_OP_MAX_POOL2D, "max_pool2d", 1, {{1, 2, 5, 6}}, {4}, g_maxpool, 0, 0, 0},
    {VG_OP_ADAPTIVE_AVG_POOL2D, "adaptive_avg_pool2d", 1, {{1, 2, 5, 7}}, {4}, g_adaptive, 0, 0, 0},
    {VG_OP_INTERP_BILINEAR, "interp align_corners=0", 1, {{1, 2, 4, 3}}, {4}, g_interp0, 0, 0, 0},
    {VG_OP_INTERP_BILINEAR, "interp align_corners=1", 1, {{1, 1, 4, 5}}, {4}, g_interp1, 0, 0, 0},
    {VG_OP_UNFOLD, "unfold", 1, {{1, 2, 4, 5}}, {4}, g_unfold, 0, 0, 0},
    {VG_OP_FOLD, "fold", 1, {{1, 8, 12}}, {3}, g_fold, 0, 0, 0},
    {VG_OP_PAD, "pad", 1, {{2, 3, 4}}, {3}, g_pad, 0, 0, 0},
    {VG_OP_CONCAT, "concat", 2, {{2, 3}, {2, 2}}, {2, 2}, g_concat, 0, 0, 0},
    {VG_OP_GATHER, "gather", 1, {{2, 4}}, {2}, g_gather, 0, 0, 0},
    {VG_OP_SCATTER_ADD, "scatter_add", 2, {{2, 4}, {2, 3}}, {2, 2}, g_scatter, 0, 0, 0},
    {VG_OP_INDEX_SELECT, "index_select", 1, {{3, 2}}, {2}, g_isel, 0, 0, 0},
    {VG_OP_INDEX_ADD, "index_add", 2, {{3, 2}, {4, 2}}, {2, 2}, g_iadd, 0, 0, 0},
    {VG_OP_LAYER_NORM, "layer_norm last 2 dims, weight, bias", 3, {{2, 3, 4}, {3, 4}, {3, 4}}, {3, 2, 2}, g_layernorm, 0, 0, 0},
    {VG_OP_LAYER_NORM, "layer_norm last dim, no affine", 1, {{3, 2, 5}}, {3}, g_layernorm_plain, 0, 0, 0},
    {VG_OP_LAYER_NORM, "layer_norm of a transpose, weight only", 2, {{4, 3, 6}, {6}}, {3, 1}, g_layernorm_w, 0, 0, 0},
    {VG_OP_LAYER_NORM, "layer_norm, x only (weight, bias fixed)", 3, {{2, 3, 4}, {3, 4}, {3, 4}}, {3, 2, 2}, g_layernorm, 0, 0, 6},
    {VG_OP_LAYER_NORM, "layer_norm, weight and bias only", 3, {{2, 3, 4}, {3, 4}, {3, 4}}, {3, 2, 2}, g_layernorm, 0, 0, 1},
    {VG_OP_SOFTMAX, "softmax last dim", 1, {{3, 7}}, {2}, g_softmax, 0, 0, 0},
    {VG_OP_SOFTMAX, "softmax dim 0 (strided rows)", 1, {{4, 3, 5}}, {3}, g_softmax0, -3, 3, 0},
    {VG_OP_COUNT, "batch_norm train (composite)", 3, {{3, 2, 2, 2}, {2}, {2}}, {4, 1, 1}, g_batchnorm, 0, 0, 0},
    {VG_OP_LOG_SOFTMAX, "log_softmax dim 1", 1, {{3, 5}}, {2}, g_logsoftmax, 0, 0, 0},
    {VG_OP_LOG_SOFTMAX, "log_softmax of a transpose, last dim", 1, {{4, 2, 3}}, {3}, g_logsoftmax_last, -3, 3, 0},
    {VG_OP_COUNT, "var unbiased (composite)", 1, {{3, 5}}, {2}, g_var, 0, 0, 0},
    {VG_OP_COUNT, "sort values (via gather)", 1, {{3, 5}}, {2}, g_sort, 0, 0, 0},
};

int main(void) {
  int nrows = (int)(sizeof ROWS / sizeof ROWS[0]);
  /* Coverage of every differentiable op is the op-test table's (tests/op_table.def: a
   * missing row does not compile, and the main row of a differentiable op must carry
   * OT_GRAD, checked by tests/test_op_table.c); these rows are extra cases. */
  for (int r = 0; r < nrows; r++) {
    const grad_row *row = &ROWS[r];
    vg_tensor *in[3];
    for (int i = 0; i < row->nin; i++) {
      in[i] = vg_tensor_new(VG_F32, row->ndims[i], row->shapes[i]);
      if (row->lo == 0 && row->hi == 0) vg_normal_(in[i], 0, 1, 100 + (uint64_t)(r * 7 + i));
      else vg_uniform_(in[i], row->lo, row->hi, 100 + (uint64_t)(r * 7 + i));
      vg_requires_grad_(in[i], !(row->nograd >> i & 1));
    }
    double err = vg_gradcheck(row->fn, row->nin, in, NULL, 1e-2);
    VG_CHECK(err <= 2e-2, "gradcheck %-32s max rel err %.2e%s%s", row->what, err, err > 2e-2 ? " " : "",
             err > 2e-2 ? vg_last_error() : "");
    for (int i = 0; i < row->nin; i++) vg_tensor_free(in[i]);
  }
  vg_scope_release();
  return vg_test_finish();
}
