/* ops_math.c — front-ends of creation, elementwise, reduction and matmul ops:
 * validate, infer shapes, allocate outputs, dispatch. Composite ops (mean, var,
 * logsumexp, ...) are written with primitive ops, so autograd covers them (softmax and
 * log_softmax are fused ops: ops_norm.c). */
#include "tensor/internal.h"
#include "tensor/eltwise.h"
#include <math.h>
#include <string.h>

/* ---- creation ---- */
vg_tensor *vg_empty(vg_dtype dt, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > VG_MAX_DIMS) return vg_op_error("empty", "bad ndim %d", ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) return vg_op_error("empty", "negative size %lld at dim %d", (long long)shape[i], i);
  return vg_alloc(dt, VG_CPU, ndim, shape);
}

vg_tensor *vg_full(vg_dtype dt, int ndim, const int64_t *shape, double value) {
  vg_tensor *t = vg_empty(dt, ndim, shape);
  if (t) vg_fill_(t, value);
  return t;
}

vg_tensor *vg_zeros(vg_dtype dt, int ndim, const int64_t *shape) { return vg_full(dt, ndim, shape, 0); }
vg_tensor *vg_scalar(float v) { return vg_full(VG_F32, 0, NULL, v); }

vg_tensor *vg_empty_like(const vg_tensor *t) {
  if (!vg_check_inputs("empty_like", 1, &t, false)) return NULL;
  return vg_alloc(t->dtype, t->device, t->ndim, t->shape);
}

vg_tensor *vg_zeros_like(const vg_tensor *t) {
  vg_tensor *z = vg_empty_like(t);
  if (z) vg_fill_(z, 0);
  return z;
}

vg_tensor *vg_arange(double start, double end, double step, vg_dtype dt) {
  if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step))
    return vg_op_error("arange", "bad range %g..%g step %g", start, end, step);
  double n = ceil((end - start) / step);
  int64_t len = n > 0 ? (int64_t)n : 0;
  vg_tensor *out = vg_alloc(dt, VG_CPU, 1, &len);
  vg_opcall c = {.op = VG_OP_ARANGE, .nin = 0, .out = {out}, .p.arange = {.start = start, .step = step}};
  return vg_dispatch(&c);
}

vg_tensor *vg_from_data(vg_dtype dt, int ndim, const int64_t *shape, const void *src) {
  vg_tensor *t = vg_empty(dt, ndim, shape);
  if (t && src) memcpy(t->storage->data, src, t->storage->nbytes);
  return t;
}

/* ---- in place ---- */
static vg_status exec_inplace(vg_opcall *c) {
  /* a copy between devices runs on the device backend (it handles a host side) */
  vg_device dev = c->out[0]->device;
  if (dev == VG_CPU && c->op == VG_OP_COPY && c->in[0]->device != VG_CPU) dev = c->in[0]->device;
  vg_backend_exec(vg_backend_of(dev), c);
  return VG_OK;
}

vg_status vg_fill_(vg_tensor *dst, double value) {
  if (!dst) return vg_fail(VG_ERR_ARG, "fill_: NULL tensor");
  vg_opcall c = {.op = VG_OP_FILL, .nin = 0, .out = {dst}, .p.fill = {.value = value}};
  return exec_inplace(&c);
}

vg_status vg_copy_(vg_tensor *dst, const vg_tensor *src) {
  if (!dst || !src) return vg_fail(VG_ERR_ARG, "copy_: NULL tensor");
  char a[128], b[128];
  int64_t shape[VG_MAX_DIMS];
  int n;
  if (!vg_broadcast_shape(dst->ndim, dst->shape, src->ndim, src->shape, &n, shape) || n != dst->ndim ||
      memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)n))
    return vg_fail(VG_ERR_ARG, "copy_: source %s does not broadcast to destination %s",
                   vg_shape_str(src, a, sizeof a), vg_shape_str(dst, b, sizeof b));
  /* a broadcast view of src with dst's shape (header only, not recorded) */
  int64_t st[VG_MAX_DIMS];
  vg_broadcast_strides(src, dst->ndim, dst->shape, st);
  vg_tensor view = *src;
  view.ndim = dst->ndim;
  memcpy(view.shape, dst->shape, sizeof view.shape);
  memcpy(view.stride, st, sizeof view.stride);
  const vg_tensor *in[1] = {&view};
  vg_opcall c = {.op = VG_OP_COPY, .nin = 1, .in = in, .out = {dst}};
  return exec_inplace(&c);
}

vg_status vg_axpy_(vg_tensor *y, float a, const vg_tensor *x) {
  if (!y || !x) return vg_fail(VG_ERR_ARG, "axpy_: NULL tensor");
  if (y->dtype != VG_F32 || x->dtype != VG_F32) return vg_fail(VG_ERR_ARG, "axpy_: f32 tensors only");
  char sa[128], sb[128];
  if (!vg_same_shape(x, y))
    return vg_fail(VG_ERR_ARG, "axpy_: shapes differ: y %s, x %s", vg_shape_str(y, sa, sizeof sa),
                   vg_shape_str(x, sb, sizeof sb));
  const vg_tensor *in[2] = {y, x};
  vg_opcall c = {.op = VG_OP_ADD, .nin = 2, .in = in, .out = {y}, .p.binary = {.alpha = a}};
  return exec_inplace(&c);
}

/* ---- host transfer ---- */
vg_status vg_to_host(const vg_tensor *t, vg_dtype dt, void *dst) {
  if (!t || !dst) return vg_fail(VG_ERR_ARG, "to_host: NULL argument");
  vg_tensor out = {.dtype = dt, .device = t->device, .ndim = t->ndim};
  vg_storage s = {.data = dst, .nbytes = (size_t)vg_numel(t) * vg_dtype_size(dt), .device = VG_CPU};
  memcpy(out.shape, t->shape, sizeof out.shape);
  vg_contiguous_strides(t->ndim, t->shape, out.stride);
  out.storage = &s;
  if (t->device != VG_CPU) {
    /* device backends copy to host through their COPY with a host-resident output */
    out.device = VG_CPU;
  }
  const vg_tensor *in[1] = {t};
  vg_opcall c = {.op = VG_OP_COPY, .nin = 1, .in = in, .out = {&out}};
  vg_backend_exec(vg_backend_of(t->device), &c);
  return VG_OK;
}

vg_status vg_from_host_(vg_tensor *dst, vg_dtype src_dt, const void *src) {
  if (!dst || !src) return vg_fail(VG_ERR_ARG, "from_host_: NULL argument");
  vg_tensor in = {.dtype = src_dt, .device = VG_CPU, .ndim = dst->ndim};
  vg_storage s = {.data = (void *)src, .nbytes = (size_t)vg_numel(dst) * vg_dtype_size(src_dt), .device = VG_CPU};
  memcpy(in.shape, dst->shape, sizeof in.shape);
  vg_contiguous_strides(dst->ndim, dst->shape, in.stride);
  in.storage = &s;
  return vg_copy_(dst, &in);
}

float vg_item(const vg_tensor *t) {
  if (!t) return NAN;
  if (vg_numel(t) != 1) VG_ABORT("vg_item on a tensor of %lld elements", (long long)vg_numel(t));
  float v;
  vg_to_host(t, VG_F32, &v);
  return v;
}

/* ---- elementwise ---- */
/* Float ops compute in f32, or in f16 on CUDA (vg_check_inputs); the result has the
 * input's dtype. Two float operands promote by vg_promote_float (tensor/eltwise.h), the
 * rule the CUDA kernels use too. */

/* a: b: the op's params (vg_unary_params, meaning per row of tensor/unary.def) */
static vg_tensor *unary(vg_op op, const vg_tensor *x, double a, double b) {
  if (!vg_check_inputs(vg_op_name(op), 1, &x, true)) return NULL;
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = op, .nin = 1, .in = in, .out = {vg_alloc(x->dtype, x->device, x->ndim, x->shape)},
                 .p.unary = {.a = a, .b = b}};
  return vg_dispatch(&c);
}

/* the front-ends of the rows without params (FE = fe); the others follow */
#define VG_UOP_FE_fe(NAME, name) vg_tensor *vg_##name(const vg_tensor *x) { return unary(VG_OP_##NAME, x, 0, 0); }
#define VG_UOP_FE_own(NAME, name)
#define VG_UOP(NAME, name, DIFF, FE, HOIST, FWD, GRAD) VG_UOP_FE_##FE(NAME, name)
#include "tensor/unary.def"
#undef VG_UOP
vg_tensor *vg_leaky_relu(const vg_tensor *x, float s) { return unary(VG_OP_LEAKY_RELU, x, s, 0); }
vg_tensor *vg_softplus(const vg_tensor *x, float beta, float thr) { return unary(VG_OP_SOFTPLUS, x, beta, thr); }
vg_tensor *vg_pow_scalar(const vg_tensor *x, float p) { return unary(VG_OP_POW_SCALAR, x, p, 0); }
vg_tensor *vg_clamp(const vg_tensor *x, float lo, float hi) {
  if (lo > hi) return vg_op_error("clamp", "min %g > max %g", lo, hi);
  return unary(VG_OP_CLAMP, x, lo, hi);
}
vg_tensor *vg_affine(const vg_tensor *x, float a, float b) { return unary(VG_OP_AFFINE, x, a, b); }
vg_tensor *vg_scale(const vg_tensor *x, float a) { return unary(VG_OP_AFFINE, x, a, 0); }
vg_tensor *vg_add_scalar(const vg_tensor *x, float b) { return unary(VG_OP_AFFINE, x, 1, b); }

/* out_dt: VG_BOOL (comparisons) or -1 (the promoted float dtype) */
static vg_tensor *binary(vg_op op, const vg_tensor *a, const vg_tensor *b, int out_dt) {
  const vg_tensor *in[2] = {a, b};
  if (!vg_check_inputs(vg_op_name(op), 2, in, true)) return NULL;
  int64_t shape[VG_MAX_DIMS];
  int n;
  if (!vg_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &n, shape)) {
    char sa[128], sb[128];
    return vg_op_error(vg_op_name(op), "shapes %s and %s do not broadcast", vg_shape_str(a, sa, sizeof sa),
                       vg_shape_str(b, sb, sizeof sb));
  }
  vg_tensor *out = vg_alloc(out_dt < 0 ? vg_promote_float(a, b) : (vg_dtype)out_dt, a->device, n, shape);
  vg_opcall c = {.op = op, .nin = 2, .in = in, .out = {out}, .p.binary = {.alpha = 1.0}};
  return vg_dispatch(&c);
}

/* the front-ends, one per row of tensor/binary.def */
#define VG_BOP_OUT_float -1
#define VG_BOP_OUT_bool VG_BOOL
#define VG_BOP(NAME, name, DIFF, OUT, HOIST, FWD, GRADX, GRADY) \
  vg_tensor *vg_##name(const vg_tensor *a, const vg_tensor *b) { return binary(VG_OP_##NAME, a, b, VG_BOP_OUT_##OUT); }
#include "tensor/binary.def"
#undef VG_BOP

vg_tensor *vg_where(const vg_tensor *cond, const vg_tensor *a, const vg_tensor *b) {
  const vg_tensor *in[3] = {cond, a, b};
  if (!vg_check_inputs("where", 3, in, false)) return NULL;
  if (cond->dtype != VG_BOOL) return vg_op_error("where", "condition must be bool, got %s", vg_dtype_name(cond->dtype));
  if (!vg_check_inputs("where", 1, &a, true) || !vg_check_inputs("where", 1, &b, true)) return NULL;
  int64_t s1[VG_MAX_DIMS], s2[VG_MAX_DIMS];
  int n1, n2;
  char x[128], y[128], z[128];
  if (!vg_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &n1, s1) ||
      !vg_broadcast_shape(cond->ndim, cond->shape, n1, s1, &n2, s2))
    return vg_op_error("where", "shapes %s, %s, %s do not broadcast", vg_shape_str(cond, x, sizeof x),
                       vg_shape_str(a, y, sizeof y), vg_shape_str(b, z, sizeof z));
  vg_tensor *out = vg_alloc(vg_promote_float(a, b), a->device, n2, s2);
  vg_opcall c = {.op = VG_OP_WHERE, .nin = 3, .in = in, .out = {out}};
  return vg_dispatch(&c);
}

vg_tensor *vg_masked_fill(const vg_tensor *x, const vg_tensor *mask, float value) {
  if (!x) return NULL;
  return vg_where(mask, vg_full_on(x->device, VG_F32, 0, NULL, value), x);
}

/* ---- reductions ---- */
static bool dims_mask(const char *op, const vg_tensor *x, int ndims, const int *dims, unsigned *mask) {
  *mask = 0;
  if (ndims == 0) {
    *mask = x->ndim ? (1u << x->ndim) - 1 : 0;
    return true;
  }
  for (int i = 0; i < ndims; i++) {
    int d = vg_norm_dim(dims[i], x->ndim);
    if (d < 0 || x->ndim == 0) {
      char b[128];
      vg_op_error(op, "dim %d out of range for %s", dims[i], vg_shape_str(x, b, sizeof b));
      return false;
    }
    if (*mask >> d & 1) {
      vg_op_error(op, "dim %d repeated", d);
      return false;
    }
    *mask |= 1u << d;
  }
  return true;
}

static vg_tensor *reduce(vg_op op, const vg_tensor *x, int ndims, const int *dims, bool keepdim) {
  const char *name = vg_op_name(op);
  if (!vg_check_inputs(name, 1, &x, true)) return NULL;
  unsigned mask;
  if (!dims_mask(name, x, ndims, dims, &mask)) return NULL;
  int64_t shape[VG_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (mask >> i & 1) {
      if ((op == VG_OP_AMAX || op == VG_OP_AMIN) && x->shape[i] == 0)
        return vg_op_error(name, "reduction over an empty dim %d", i);
      if (keepdim) shape[n++] = 1;
    } else shape[n++] = x->shape[i];
  }
  vg_tensor *out = vg_alloc(x->dtype, x->device, n, shape);
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = op, .nin = 1, .in = in, .out = {out}, .p.reduce = {.mask = mask, .keepdim = keepdim}};
  return vg_dispatch(&c);
}

vg_tensor *vg_sum(const vg_tensor *x, int nd, const int *dims, bool keep) { return reduce(VG_OP_SUM, x, nd, dims, keep); }
vg_tensor *vg_amax(const vg_tensor *x, int nd, const int *dims, bool keep) { return reduce(VG_OP_AMAX, x, nd, dims, keep); }
vg_tensor *vg_amin(const vg_tensor *x, int nd, const int *dims, bool keep) { return reduce(VG_OP_AMIN, x, nd, dims, keep); }
vg_tensor *vg_sum_all(const vg_tensor *x) { return vg_sum(x, 0, NULL, false); }

static int64_t reduced_count(const vg_tensor *x, int ndims, const int *dims) {
  unsigned mask;
  if (!x || !dims_mask("mean", x, ndims, dims, &mask)) return -1;
  int64_t n = 1;
  for (int i = 0; i < x->ndim; i++)
    if (mask >> i & 1) n *= x->shape[i];
  return n;
}

vg_tensor *vg_mean(const vg_tensor *x, int nd, const int *dims, bool keep) {
  int64_t n = reduced_count(x, nd, dims);
  if (n < 0) return NULL;
  return vg_scale(vg_sum(x, nd, dims, keep), n ? 1.0f / (float)n : NAN);
}
vg_tensor *vg_mean_all(const vg_tensor *x) { return vg_mean(x, 0, NULL, false); }

vg_tensor *vg_var(const vg_tensor *x, int nd, const int *dims, bool unbiased, bool keep) {
  int64_t n = reduced_count(x, nd, dims);
  if (n < 0) return NULL;
  vg_tensor *d = vg_sub(x, vg_mean(x, nd, dims, true));
  vg_tensor *ss = vg_sum(vg_mul(d, d), nd, dims, keep);
  int64_t den = unbiased ? n - 1 : n;
  return vg_scale(ss, den > 0 ? 1.0f / (float)den : NAN);
}

vg_tensor *vg_std(const vg_tensor *x, int nd, const int *dims, bool unbiased, bool keep) {
  return vg_sqrt(vg_var(x, nd, dims, unbiased, keep));
}

vg_tensor *vg_logsumexp(const vg_tensor *x, int nd, const int *dims, bool keep) {
  vg_tensor *m = vg_amax(x, nd, dims, true);
  if (!m) return NULL;
  /* the shift is a constant for the gradient; +-inf maxima shift by 0 as torch does */
  vg_tensor *md = vg_detach(m);
  vg_tensor *fin = vg_where(vg_lt(vg_abs(md), vg_full_on(md->device, VG_F32, 0, NULL, INFINITY)), md,
                            vg_full_on(md->device, VG_F32, 0, NULL, 0.0));
  vg_tensor *s = vg_log(vg_sum(vg_exp(vg_sub(x, fin)), nd, dims, true));
  vg_tensor *r = vg_add(s, fin);
  if (!r || keep) return r;
  unsigned mask;
  dims_mask("logsumexp", x, nd, dims, &mask);
  int64_t shape[VG_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < x->ndim; i++)
    if (!(mask >> i & 1)) shape[n++] = x->shape[i];
  return vg_reshape(r, n, shape);
}

vg_tensor *vg_argmax(const vg_tensor *x, int dim, bool keepdim) {
  if (!vg_check_inputs("argmax", 1, &x, true)) return NULL;
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0 || x->ndim == 0) return vg_op_error("argmax", "dim %d out of range for %d-d input", dim, x->ndim);
  if (x->shape[d] == 0) return vg_op_error("argmax", "empty dim %d", d);
  int64_t shape[VG_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (i == d) {
      if (keepdim) shape[n++] = 1;
    } else shape[n++] = x->shape[i];
  }
  vg_tensor *out = vg_alloc(VG_I64, x->device, n, shape);
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = VG_OP_ARGMAX, .nin = 1, .in = in, .out = {out}, .p.argmax = {.dim = d, .keepdim = keepdim}};
  return vg_dispatch(&c);
}

vg_tensor *vg_argmin(const vg_tensor *x, int dim, bool keepdim) { return vg_argmax(vg_neg(x), dim, keepdim); }

/* values gathered at the arg index, so the gradient goes to that one element as torch's */
static vg_tensor *extreme_dim(const vg_tensor *x, int dim, bool keepdim, vg_tensor **indices, bool is_max) {
  vg_tensor *idx = is_max ? vg_argmax(x, dim, true) : vg_argmin(x, dim, true);
  if (!idx) return NULL;
  int d = vg_norm_dim(dim, x->ndim);
  vg_tensor *v = vg_gather(x, d, idx);
  if (!keepdim) {
    v = vg_squeeze(v, d);
    idx = vg_squeeze(idx, d);
  }
  if (indices) *indices = idx;
  return v;
}

vg_tensor *vg_max_dim(const vg_tensor *x, int dim, bool keepdim, vg_tensor **indices) {
  return extreme_dim(x, dim, keepdim, indices, true);
}
vg_tensor *vg_min_dim(const vg_tensor *x, int dim, bool keepdim, vg_tensor **indices) {
  return extreme_dim(x, dim, keepdim, indices, false);
}

vg_tensor *vg_mse_loss(const vg_tensor *a, const vg_tensor *b) {
  vg_tensor *d = vg_sub(a, b);
  return vg_mean_all(vg_mul(d, d));
}

/* ---- matmul ---- */
vg_tensor *vg_matmul(const vg_tensor *a, const vg_tensor *b) {
  const vg_tensor *in[2] = {a, b};
  if (!vg_check_inputs("matmul", 2, in, true)) return NULL;
  char sa[128], sb[128];
  if (a->ndim == 0 || b->ndim == 0) return vg_op_error("matmul", "0-d inputs %s, %s", vg_shape_str(a, sa, 128), vg_shape_str(b, sb, 128));
  if (a->dtype != b->dtype)
    return vg_op_error("matmul", "mixed float dtypes: a is %s, b is %s (cast one with vg_cast)", vg_dtype_name(a->dtype),
                       vg_dtype_name(b->dtype));
  /* 1-D operands as in torch.matmul: a (K) -> (1, K), b (K) -> (K, 1), dims removed after */
  if (a->ndim == 1) {
    vg_tensor *r = vg_matmul(vg_unsqueeze(a, 0), b);
    return r ? vg_squeeze(r, r->ndim - 2) : NULL;
  }
  if (b->ndim == 1) {
    vg_tensor *r = vg_matmul(a, vg_unsqueeze(b, 1));
    return r ? vg_squeeze(r, r->ndim - 1) : NULL;
  }
  int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1], K2 = b->shape[b->ndim - 2], N = b->shape[b->ndim - 1];
  if (K != K2)
    return vg_op_error("matmul", "inner dims differ: %s @ %s", vg_shape_str(a, sa, 128), vg_shape_str(b, sb, 128));
  int64_t shape[VG_MAX_DIMS];
  int n;
  if (!vg_broadcast_shape(a->ndim - 2, a->shape, b->ndim - 2, b->shape, &n, shape))
    return vg_op_error("matmul", "batch dims do not broadcast: %s @ %s", vg_shape_str(a, sa, 128), vg_shape_str(b, sb, 128));
  shape[n] = M;
  shape[n + 1] = N;
  vg_tensor *out = vg_alloc(a->dtype, a->device, n + 2, shape);
  vg_opcall c = {.op = VG_OP_MATMUL, .nin = 2, .in = in, .out = {out}};
  return vg_dispatch(&c);
}

vg_tensor *vg_linear(const vg_tensor *x, const vg_tensor *w, const vg_tensor *b) {
  vg_tensor *y = vg_matmul(x, vg_transpose(w, 0, 1));
  return b ? vg_add(y, b) : y;
}
