/* ops_norm.c — softmax, log_softmax and layer norm (fused ops of the norm family, with
 * fused backward ops: tensor/ops.def), batch norm and dropout (composites of primitive
 * ops, so autograd covers them without rules of their own). */
#include "tensor/internal.h"
#include <math.h>

/* t as f32 (NULL stays NULL): the f16 norms compute in f32 */
static const vg_tensor *f32_of(const vg_tensor *t) { return t && t->dtype != VG_F32 ? vg_cast(t, VG_F32) : t; }

/* softmax / log_softmax along dim: max-subtracted, as torch (a row of all -inf, or with a
 * NaN or +inf, gives NaN); f16 (CUDA) computes in f32 and rounds once */
static vg_tensor *softmax_op(vg_op op, const vg_tensor *x, int dim) {
  const char *name = vg_op_name(op);
  if (!vg_check_inputs(name, 1, &x, true)) return NULL;
  char a[128];
  if (x->ndim == 0) {   /* a 0-d tensor is a row of one, as torch (dim 0 or -1) */
    if (dim != 0 && dim != -1) return vg_op_error(name, "dim %d out of range for a 0-d tensor", dim);
    int64_t one = 1;
    vg_tensor *y = softmax_op(op, vg_reshape(x, 1, &one), 0);
    return y ? vg_reshape(y, 0, NULL) : NULL;
  }
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0) return vg_op_error(name, "dim %d out of range for %s", dim, vg_shape_str(x, a, 128));
  x = vg_contiguous(x);
  if (!x) return NULL;
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = op, .nin = 1, .in = in, .out = {vg_alloc(x->dtype, x->device, x->ndim, x->shape)}};
  c.p.dim.dim = d;
  return vg_dispatch(&c);
}

vg_tensor *vg_softmax(const vg_tensor *x, int dim) { return softmax_op(VG_OP_SOFTMAX, x, dim); }
vg_tensor *vg_log_softmax(const vg_tensor *x, int dim) { return softmax_op(VG_OP_LOG_SOFTMAX, x, dim); }

vg_tensor *vg_layer_norm(const vg_tensor *x, int nnorm, const vg_tensor *weight, const vg_tensor *bias, float eps) {
  if (!vg_check_inputs("layer_norm", 1, &x, true)) return NULL;
  char a[128], b[128];
  if (nnorm < 1 || nnorm > x->ndim) return vg_op_error("layer_norm", "normalized dims %d for %s", nnorm, vg_shape_str(x, a, 128));
  const vg_tensor *wb[2] = {weight, bias};
  for (int k = 0; k < 2; k++) {
    const vg_tensor *t = wb[k];
    if (!t) continue;
    bool ok = t->ndim == nnorm && (t->dtype == VG_F32 || t->dtype == x->dtype);
    for (int i = 0; ok && i < nnorm; i++) ok = t->shape[i] == x->shape[x->ndim - nnorm + i];
    if (!ok)
      return vg_op_error("layer_norm", "%s %s does not match the last %d dims of %s", k ? "bias" : "weight",
                         vg_shape_str(t, b, 128), nnorm, vg_shape_str(x, a, 128));
  }
  /* f16 x (CUDA): statistics in f32 as torch's kernels (squares overflow f16 at 256), y
   * rounded once; the kernels read weight and bias as f32 */
  const vg_tensor *pin[3] = {vg_contiguous(x), weight ? vg_contiguous(f32_of(weight)) : NULL,
                             bias ? vg_contiguous(f32_of(bias)) : NULL};
  for (int k = 0; k < 3; k++) {
    if ((k == 0 || wb[k - 1]) && !pin[k]) return NULL;
    if (pin[k] && pin[k]->device != x->device)
      return vg_op_error("layer_norm", "%s is on %s, the input on %s", k == 1 ? "weight" : "bias",
                         pin[k]->device == VG_CPU ? "cpu" : "cuda", x->device == VG_CPU ? "cpu" : "cuda");
  }
  int64_t rows = 1;
  for (int i = 0; i < x->ndim - nnorm; i++) rows *= x->shape[i];
  vg_opcall c = {.op = VG_OP_LAYER_NORM, .nin = 3, .in = pin,
                 .out = {vg_alloc(x->dtype, x->device, x->ndim, x->shape),
                         vg_alloc(VG_F32, x->device, 2, (int64_t[]){2, rows})}};
  c.p.layer_norm = (vg_layer_norm_params){.nnorm = nnorm, .eps = eps};
  return vg_dispatch(&c);
}

vg_tensor *vg_batch_norm(const vg_tensor *x, vg_tensor *rmean, vg_tensor *rvar, const vg_tensor *weight,
                         const vg_tensor *bias, bool training, float momentum, float eps) {
  if (!vg_check_inputs("batch_norm", 1, &x, true)) return NULL;
  char a[128];
  if (x->ndim < 2) return vg_op_error("batch_norm", "wants (N, C, ...), got %s", vg_shape_str(x, a, 128));
  int64_t C = x->shape[1];
  const vg_tensor *ps[4] = {rmean, rvar, weight, bias};
  static const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
  for (int k = 0; k < 4; k++)
    if (ps[k] && (ps[k]->ndim != 1 || ps[k]->shape[0] != C || (ps[k]->dtype != VG_F32 && ps[k]->dtype != x->dtype)))
      return vg_op_error("batch_norm", "%s %s should be %s [%lld]", names[k], vg_shape_str(ps[k], a, 128),
                         vg_dtype_name(x->dtype), (long long)C);
  if (x->dtype == VG_F16) {   /* computed in f32 as torch's kernels; running stats updated in place */
    if (training) return vg_op_error("batch_norm", "f16 is inference-only (train in f32)");
    return vg_cast(vg_batch_norm(vg_cast(x, VG_F32), (vg_tensor *)f32_of(rmean), (vg_tensor *)f32_of(rvar),
                                 f32_of(weight), f32_of(bias), false, momentum, eps), VG_F16);
  }
  /* per-channel params broadcast as (C, 1, 1, ...) */
  int64_t bshape[VG_MAX_DIMS];
  int nb = x->ndim - 1;
  bshape[0] = C;
  for (int i = 1; i < nb; i++) bshape[i] = 1;
  int dims[VG_MAX_DIMS], nd = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != 1) dims[nd++] = i;
  vg_tensor *mean, *var;
  if (training || !rmean || !rvar) {
    int64_t n = vg_numel(x) / (C ? C : 1);
    if (training && n <= 1)
      return vg_op_error("batch_norm", "expected more than 1 value per channel when training, got %s", vg_shape_str(x, a, 128));
    mean = vg_mean(x, nd, dims, true);
    vg_tensor *d = vg_sub(x, mean);
    var = vg_mean(vg_mul(d, d), nd, dims, true);   /* biased for normalization */
    if (training && rmean && rvar) {
      /* running = (1 - m) running + m batch; running_var uses the unbiased variance. Nothing
       * here is recorded: the batch statistics are detached and the running buffers never
       * require grad, so no input of these ops does. */
      vg_tensor *bm = vg_reshape(vg_detach(mean), 1, &C);
      vg_tensor *bv = vg_scale(vg_reshape(vg_detach(var), 1, &C), (float)n / (float)(n - 1));
      vg_copy_(rmean, vg_add(vg_scale(rmean, 1 - momentum), vg_scale(bm, momentum)));
      vg_copy_(rvar, vg_add(vg_scale(rvar, 1 - momentum), vg_scale(bv, momentum)));
    }
  } else {
    mean = vg_reshape(rmean, nb, bshape);
    var = vg_reshape(rvar, nb, bshape);
  }
  vg_tensor *y = vg_mul(vg_sub(x, mean), vg_rsqrt(vg_add_scalar(var, eps)));
  if (weight) y = vg_mul(y, vg_reshape(weight, nb, bshape));
  if (bias) y = vg_add(y, vg_reshape(bias, nb, bshape));
  return y;
}

vg_tensor *vg_dropout(const vg_tensor *x, float p, bool training, uint64_t seed) {
  if (!vg_check_inputs("dropout", 1, &x, true)) return NULL;
  if (!(p >= 0 && p <= 1)) return vg_op_error("dropout", "probability %g not in [0, 1]", p);
  if (!training || p == 0) return (vg_tensor *)x;
  if (p == 1) return vg_mul(x, vg_full_on(x->device, VG_F32, 0, NULL, 0.0));
  /* vg_bernoulli's numbers (Philox, the same on every device), made on x's device */
  vg_tensor *u = vg_empty_like(x);
  if (!u || vg_uniform_(u, 0, 1, seed) != VG_OK) return NULL;
  vg_tensor *keep = vg_cast(vg_lt(u, vg_full_on(x->device, VG_F32, 0, NULL, 1 - p)), VG_F32);
  return vg_mul(x, vg_scale(keep, 1.0f / (1 - p)));
}
