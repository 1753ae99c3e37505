/* backward.c — one backward rule per differentiable op, written with tensor ops.
 * The switch has no default: an op added to ops.def without a rule does not compile.
 * Rules see the forward call (inputs, outputs, params) and the output grad g, and
 * pass each input's grad to vg_ag_accum (which sums into intermediates or leaves). */
#include "autograd/backward.h"
#include "autograd/autograd.h"
#include <math.h>
#include <string.h>

/* Sums g over the dims that broadcasting expanded, down to `like`'s shape. */
static vg_tensor *sum_to(vg_tensor *g, const vg_tensor *like) {
  if (vg_same_shape(g, like)) return g;
  int dims[VG_MAX_DIMS], nd = 0, off = g->ndim - like->ndim;
  for (int i = 0; i < g->ndim; i++)
    if (i < off || (like->shape[i - off] == 1 && g->shape[i] != 1)) dims[nd++] = i;
  vg_tensor *s = nd ? vg_sum(g, nd, dims, true) : g;
  return vg_reshape(s, like->ndim, like->shape);
}

static void accum_bcast(const vg_tensor *in, vg_tensor *g) {
  if (in && in->requires_grad) vg_ag_accum(in, sum_to(g, in));
}

/* scalar constants on the device of the grad being propagated */
static _Thread_local vg_device rule_device;
static vg_tensor *fscalar(double v) {
  return vg_full_on(rule_device, VG_F32, 0, NULL, v);
}

static vg_tensor *as_float(vg_tensor *mask) { return vg_cast(mask, VG_F32); }

/* g expanded back over reduced dims (mask i[0], keepdim i[1]) to x's shape */
static vg_tensor *unreduce(vg_tensor *g, const vg_tensor *x, unsigned mask, bool keepdim) {
  if (!keepdim) {
    int64_t shape[VG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = (mask >> i & 1) ? 1 : x->shape[i];
    g = vg_reshape(g, x->ndim, shape);
  }
  return vg_expand(g, x->ndim, x->shape);
}

static vg_tensor *bwd_op(vg_op op, const vg_tensor *const *in, int nin, const vg_tensor *like,
                         const vg_opcall *fwd) {
  vg_tensor *out = vg_alloc(VG_F32, like->device, like->ndim, like->shape);
  vg_opcall c = {.op = op, .nin = nin, .in = in, .out = {out}};
  memcpy(c.i, fwd->i, sizeof c.i);
  memcpy(c.f, fwd->f, sizeof c.f);
  return vg_dispatch(&c);
}

void vg_backward_rule(vg_node *n, vg_tensor *g) {
  const vg_opcall *c = &n->call;
  const vg_tensor *x = c->in[0], *y = c->nin > 1 ? c->in[1] : NULL;
  vg_tensor *out = c->out[0];
  float f0 = (float)c->f[0], f1 = (float)c->f[1];
  rule_device = g->device;
  switch (c->op) {
    /* ---- views ---- */
    case VG_OP_RESHAPE:
      vg_ag_accum(x, vg_reshape(g, x->ndim, x->shape));
      return;
    case VG_OP_PERMUTE: {
      int inv[VG_MAX_DIMS];
      for (int i = 0; i < x->ndim; i++) inv[c->i[i]] = i;
      vg_ag_accum(x, vg_permute(g, inv));
      return;
    }
    case VG_OP_SLICE: {
      vg_tensor *z = vg_zeros_like(x);
      vg_copy_(vg_slice(z, (int)c->i[0], c->i[1], c->i[2], c->i[3]), g);
      vg_ag_accum(x, z);
      return;
    }
    case VG_OP_EXPAND:
      accum_bcast(x, g);
      return;
    case VG_OP_COPY:
      vg_ag_accum(x, vg_cast(g, x->dtype));
      return;
    case VG_OP_FILL: case VG_OP_ARANGE: case VG_OP_SIGN:
    case VG_OP_EQ: case VG_OP_NE: case VG_OP_LT: case VG_OP_LE: case VG_OP_GT: case VG_OP_GE:
    case VG_OP_ARGMAX: case VG_OP_CONV2D_BWD_DATA: case VG_OP_CONV2D_BWD_WEIGHT: case VG_OP_CONV_BN_FOLD:
    case VG_OP_AVG_POOL2D_BWD: case VG_OP_MAX_POOL2D_BWD: case VG_OP_ADAPTIVE_AVG_POOL2D_BWD:
    case VG_OP_INTERP_BILINEAR_BWD: case VG_OP_KTHVALUE: case VG_OP_SORT:
    case VG_OP_RAND_UNIFORM: case VG_OP_RAND_NORMAL: case VG_OP_COUNT:
      VG_ABORT("backward: %s is not differentiable", vg_op_name(c->op));
    /* ---- unary ---- */
    case VG_OP_NEG: vg_ag_accum(x, vg_neg(g)); return;
    case VG_OP_EXP: vg_ag_accum(x, vg_mul(g, out)); return;
    case VG_OP_LOG: vg_ag_accum(x, vg_div(g, x)); return;
    case VG_OP_SQRT: vg_ag_accum(x, vg_div(vg_scale(g, 0.5f), out)); return;
    case VG_OP_RSQRT: /* d x^-1/2 = -1/2 x^-3/2 = -1/2 out^3 */
      vg_ag_accum(x, vg_mul(g, vg_scale(vg_mul(out, vg_mul(out, out)), -0.5f)));
      return;
    case VG_OP_ABS: vg_ag_accum(x, vg_mul(g, vg_sign(x))); return;
    case VG_OP_RELU: vg_ag_accum(x, vg_mul(g, as_float(vg_gt(x, fscalar(0))))); return;
    case VG_OP_LEAKY_RELU:
      vg_ag_accum(x, vg_mul(g, vg_where(vg_gt(x, fscalar(0)), fscalar(1), fscalar(f0))));
      return;
    case VG_OP_SIGMOID: vg_ag_accum(x, vg_mul(g, vg_mul(out, vg_affine(out, -1, 1)))); return;
    case VG_OP_LOGSIGMOID: vg_ag_accum(x, vg_mul(g, vg_sigmoid(vg_neg(x)))); return;
    case VG_OP_TANH: vg_ag_accum(x, vg_mul(g, vg_affine(vg_mul(out, out), -1, 1))); return;
    case VG_OP_SOFTPLUS: { /* beta*x > threshold: identity, else sigmoid(beta x) */
      vg_tensor *bx = vg_scale(x, f0);
      vg_ag_accum(x, vg_mul(g, vg_where(vg_gt(bx, fscalar(f1)), fscalar(1), vg_sigmoid(bx))));
      return;
    }
    case VG_OP_ATAN: vg_ag_accum(x, vg_div(g, vg_add_scalar(vg_mul(x, x), 1))); return;
    case VG_OP_GELU: { /* Phi(x) + x phi(x) */
      vg_tensor *cdf = vg_affine(vg_erf(vg_scale(x, (float)M_SQRT1_2)), 0.5f, 0.5f);
      vg_tensor *pdf = vg_scale(vg_exp(vg_scale(vg_mul(x, x), -0.5f)), (float)(0.5 * M_2_SQRTPI * M_SQRT1_2));
      vg_ag_accum(x, vg_mul(g, vg_add(cdf, vg_mul(x, pdf))));
      return;
    }
    case VG_OP_ERF:
      vg_ag_accum(x, vg_mul(g, vg_scale(vg_exp(vg_neg(vg_mul(x, x))), (float)M_2_SQRTPI)));
      return;
    case VG_OP_SIN: vg_ag_accum(x, vg_mul(g, vg_cos(x))); return;
    case VG_OP_COS: vg_ag_accum(x, vg_neg(vg_mul(g, vg_sin(x)))); return;
    case VG_OP_POW_SCALAR:
      vg_ag_accum(x, vg_mul(g, f0 == 1.0f ? fscalar(1) : vg_scale(vg_pow_scalar(x, f0 - 1.0f), f0)));
      return;
    case VG_OP_CLAMP: /* torch passes the grad where lo <= x <= hi */
      vg_ag_accum(x, vg_mul(g, as_float(vg_eq(vg_clamp(x, f0, f1), x))));
      return;
    case VG_OP_AFFINE: vg_ag_accum(x, vg_scale(g, f0)); return;
    /* ---- binary ---- */
    case VG_OP_ADD:
      accum_bcast(x, g);
      accum_bcast(y, f1 == 1.0f ? g : vg_scale(g, f1));
      return;
    case VG_OP_SUB:
      accum_bcast(x, g);
      accum_bcast(y, vg_neg(g));
      return;
    case VG_OP_MUL:
      if (x->requires_grad) accum_bcast(x, vg_mul(g, y));
      if (y->requires_grad) accum_bcast(y, vg_mul(g, x));
      return;
    case VG_OP_DIV:
      if (x->requires_grad) accum_bcast(x, vg_div(g, y));
      if (y->requires_grad) accum_bcast(y, vg_neg(vg_div(vg_mul(g, out), y)));
      return;
    case VG_OP_MAXIMUM: case VG_OP_MINIMUM: { /* ties split the grad in half, as torch */
      vg_tensor *win = c->op == VG_OP_MAXIMUM ? vg_gt(x, y) : vg_lt(x, y);
      vg_tensor *tie = vg_scale(as_float(vg_eq(x, y)), 0.5f);
      vg_tensor *wx = vg_add(as_float(win), tie);
      accum_bcast(x, vg_mul(g, wx));
      accum_bcast(y, vg_mul(g, vg_affine(wx, -1, 1)));
      return;
    }
    case VG_OP_WHERE: {
      vg_tensor *zero = fscalar(0);
      accum_bcast(c->in[1], vg_where(x, g, zero));
      accum_bcast(c->in[2], vg_where(x, zero, g));
      return;
    }
    /* ---- reductions ---- */
    case VG_OP_SUM:
      vg_ag_accum(x, unreduce(g, x, (unsigned)c->i[0], c->i[1]));
      return;
    case VG_OP_AMAX: case VG_OP_AMIN: { /* evenly among the maxima, as torch.amax */
      vg_tensor *o = unreduce(out, x, (unsigned)c->i[0], c->i[1]);
      vg_tensor *m = as_float(vg_eq(x, o));
      int dims[VG_MAX_DIMS], nd = 0;
      for (int i = 0; i < x->ndim; i++)
        if (c->i[0] >> i & 1) dims[nd++] = i;
      vg_tensor *cnt = vg_sum(m, nd, dims, true);
      vg_ag_accum(x, vg_div(vg_mul(unreduce(g, x, (unsigned)c->i[0], c->i[1]), m), cnt));
      return;
    }
    /* ---- matmul / conv ---- */
    case VG_OP_MATMUL:
      if (x->requires_grad) accum_bcast(x, vg_matmul(g, vg_transpose(y, -1, -2)));
      if (y->requires_grad) accum_bcast(y, vg_matmul(vg_transpose(x, -1, -2), g));
      return;
    case VG_OP_CONV2D: {
      const vg_tensor *w = c->in[1], *b = c->nin > 2 ? c->in[2] : NULL;
      if (x->requires_grad) {
        const vg_tensor *in[2] = {w, g};
        vg_ag_accum(x, bwd_op(VG_OP_CONV2D_BWD_DATA, in, 2, x, c));
      }
      if (w->requires_grad) {
        const vg_tensor *in[2] = {x, g};
        vg_ag_accum(w, bwd_op(VG_OP_CONV2D_BWD_WEIGHT, in, 2, w, c));
      }
      if (b && b->requires_grad) vg_ag_accum(b, vg_sum(g, 3, (int[]){0, 2, 3}, false));
      return;
    }
    /* ---- pooling, resampling, layout ---- */
    case VG_OP_AVG_POOL2D: {
      const vg_tensor *in[1] = {g};
      vg_ag_accum(x, bwd_op(VG_OP_AVG_POOL2D_BWD, in, 1, x, c));
      return;
    }
    case VG_OP_MAX_POOL2D: {
      const vg_tensor *in[2] = {g, c->out[1]};
      vg_ag_accum(x, bwd_op(VG_OP_MAX_POOL2D_BWD, in, 2, x, c));
      return;
    }
    case VG_OP_ADAPTIVE_AVG_POOL2D: {
      const vg_tensor *in[1] = {g};
      vg_ag_accum(x, bwd_op(VG_OP_ADAPTIVE_AVG_POOL2D_BWD, in, 1, x, c));
      return;
    }
    case VG_OP_INTERP_BILINEAR: {
      const vg_tensor *in[1] = {g};
      vg_ag_accum(x, bwd_op(VG_OP_INTERP_BILINEAR_BWD, in, 1, x, c));
      return;
    }
    case VG_OP_UNFOLD:
      vg_ag_accum(x, vg_fold(g, x->shape[2], x->shape[3], (int)c->i[0], (int)c->i[1], (int)c->i[2], (int)c->i[3],
                             (int)c->i[4], (int)c->i[5], (int)c->i[6], (int)c->i[7]));
      return;
    case VG_OP_FOLD:
      vg_ag_accum(x, vg_unfold(g, (int)c->i[0], (int)c->i[1], (int)c->i[2], (int)c->i[3], (int)c->i[4],
                               (int)c->i[5], (int)c->i[6], (int)c->i[7]));
      return;
    case VG_OP_PAD: {
      vg_tensor *s = g;
      int np = (int)c->i[0];
      for (int p = 0; p < np; p++) {
        int d = x->ndim - 1 - p;
        s = vg_slice(s, d, c->i[1 + 2 * p], c->i[1 + 2 * p] + x->shape[d], 1);
      }
      vg_ag_accum(x, s);
      return;
    }
    case VG_OP_CONCAT: {
      int d = (int)c->i[0];
      int64_t at = 0;
      for (int k = 0; k < c->nin; k++) {
        const vg_tensor *t = c->in[k];
        if (t->requires_grad) vg_ag_accum(t, vg_slice(g, d, at, at + t->shape[d], 1));
        at += t->shape[d];
      }
      return;
    }
    /* ---- indexing ---- */
    case VG_OP_GATHER:
      vg_ag_accum(x, vg_scatter_add(vg_zeros_like(x), (int)c->i[0], y, g));
      return;
    case VG_OP_SCATTER_ADD: {
      vg_ag_accum(x, g);
      const vg_tensor *src = c->in[2];
      if (!src->requires_grad) return;
      vg_tensor *gs = vg_gather(g, (int)c->i[0], y);   /* index's shape */
      if (!vg_same_shape(gs, src)) {   /* index smaller than src: src's other elements are unused */
        vg_tensor *z = vg_full_on(src->device, VG_F32, src->ndim, src->shape, 0.0), *v = z;
        for (int d = 0; d < src->ndim; d++) v = vg_slice(v, d, 0, y->shape[d], 1);
        vg_copy_(v, gs);
        gs = z;
      }
      vg_ag_accum(src, gs);
      return;
    }
    case VG_OP_INDEX_SELECT:
      vg_ag_accum(x, vg_index_add(vg_zeros_like(x), (int)c->i[0], y, g));
      return;
    case VG_OP_INDEX_ADD:
      vg_ag_accum(x, g);
      vg_ag_accum(c->in[2], vg_index_select(g, (int)c->i[0], y));
      return;
  }
}
