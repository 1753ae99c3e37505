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
  vg_opcall c = {.op = op, .nin = nin, .in = in, .out = {out}, .p = fwd->p};
  return vg_dispatch(&c);
}

/* ---- what each rule reads (forward regions free the rest: vg_fwd_region_end) ---- */
/* whether identifier `id` occurs as a token in the rule text `e` */
static bool mentions(const char *e, const char *id) {
  size_t n = strlen(id);
  for (const char *p = e; *p;) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_') {
      const char *q = p;
      while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_') q++;
      if ((size_t)(q - p) == n && !strncmp(p, id, n)) return true;
      p = q;
    } else if (*p >= '0' && *p <= '9') {   /* a number (1.0f, 0x1p3): not an identifier */
      while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '.' || *p == '_') p++;
    } else {
      p++;
    }
  }
  return false;
}

/* the unary and binary rules' reads, from their GRAD text in tensor/unary.def, binary.def */
static unsigned eltwise_saves(vg_op op) {
  switch (op) {
#define VG_UOP(NAME, name, DIFF, FE, HOIST, FWD, GRAD) \
    case VG_OP_##NAME: return (mentions(#GRAD, "x") ? 1u : 0u) | (mentions(#GRAD, "out") ? VG_SAVES_OUT0 : 0u);
#include "tensor/unary.def"
#undef VG_UOP
#define VG_BOP(NAME, name, DIFF, OUT, HOIST, FWD, GRADX, GRADY)                                      \
    case VG_OP_##NAME: return (mentions(#GRADX " " #GRADY, "x") ? 1u : 0u) |                         \
                              (mentions(#GRADX " " #GRADY, "y") ? 2u : 0u) |                         \
                              (mentions(#GRADX " " #GRADY, "out") ? VG_SAVES_OUT0 : 0u);
#include "tensor/binary.def"
#undef VG_BOP
    default: return ~0u;
  }
}

unsigned vg_backward_saves(const vg_opcall *c) {
  switch (c->op) {
    case VG_OP_RESHAPE: case VG_OP_PERMUTE: case VG_OP_SLICE: case VG_OP_EXPAND: case VG_OP_COPY:
    case VG_OP_SUM: case VG_OP_CONCAT: case VG_OP_PAD: case VG_OP_UNFOLD: case VG_OP_FOLD:
    case VG_OP_AVG_POOL2D: case VG_OP_ADAPTIVE_AVG_POOL2D: case VG_OP_INTERP_BILINEAR:
      return 0;
    case VG_OP_WHERE: return 1u;                                  /* the condition */
    case VG_OP_AMAX: case VG_OP_AMIN: return 1u | VG_SAVES_OUT0;
    case VG_OP_MATMUL: return 3u;
    case VG_OP_CONV2D: return 3u;                                 /* x, w (not the bias) */
    case VG_OP_MAX_POOL2D: return VG_SAVES_OUT1;                  /* the argmax indices */
    case VG_OP_GATHER: case VG_OP_SCATTER_ADD: case VG_OP_INDEX_SELECT: case VG_OP_INDEX_ADD:
      return 2u;                                                  /* the index */
    case VG_OP_SOFTMAX: case VG_OP_LOG_SOFTMAX: return VG_SAVES_OUT0;
    case VG_OP_RELU: return VG_SAVES_OUT0;   /* its rule reads the output (as torch), not x */
    case VG_OP_LAYER_NORM: return 1u | 2u | VG_SAVES_OUT1;        /* x, weight, mean/rstd */
    default: return eltwise_saves(c->op);
  }
}

void vg_backward_rule(vg_node *n, vg_tensor *g) {
  const vg_opcall *c = &n->call;
  const vg_tensor *x = c->in[0], *y = c->nin > 1 ? c->in[1] : NULL;
  vg_tensor *out = c->out[0];
  rule_device = g->device;
  if (c->op == VG_OP_RELU) {   /* from the output (the same mask as x > 0, NaN included): x need not be kept */
    vg_ag_accum(x, vg_mul(g, as_float(vg_gt(out, fscalar(0)))));
    return;
  }
  switch (c->op) {
    /* ---- views ---- */
    case VG_OP_RESHAPE:
      vg_ag_accum(x, vg_reshape(g, x->ndim, x->shape));
      return;
    case VG_OP_PERMUTE: {
      int inv[VG_MAX_DIMS];
      for (int i = 0; i < x->ndim; i++) inv[c->p.permute.perm[i]] = i;
      vg_ag_accum(x, vg_permute(g, inv));
      return;
    }
    case VG_OP_SLICE: {
      vg_tensor *z = vg_zeros_like(x);
      const vg_slice_params *s = &c->p.slice;
      vg_copy_(vg_slice(z, (int)s->dim, s->start, s->stop, s->step), g);
      vg_ag_accum(x, z);
      return;
    }
    case VG_OP_EXPAND:
      accum_bcast(x, g);
      return;
    case VG_OP_COPY:
      vg_ag_accum(x, vg_cast(g, x->dtype));
      return;
    case VG_OP_FILL: case VG_OP_ARANGE:
    case VG_OP_ARGMAX: case VG_OP_CONV2D_BWD_DATA: case VG_OP_CONV2D_BWD_WEIGHT: case VG_OP_CONV_BN_FOLD:
    case VG_OP_AVG_POOL2D_BWD: case VG_OP_MAX_POOL2D_BWD: case VG_OP_ADAPTIVE_AVG_POOL2D_BWD:
    case VG_OP_INTERP_BILINEAR_BWD: case VG_OP_KTHVALUE: case VG_OP_SORT:
    case VG_OP_RAND_UNIFORM: case VG_OP_RAND_NORMAL: case VG_OP_COUNT:
    case VG_OP_SOFTMAX_BWD: case VG_OP_LOG_SOFTMAX_BWD: case VG_OP_LAYER_NORM_BWD:
      VG_ABORT("backward: %s is not differentiable", vg_op_name(c->op));
    /* ---- unary, binary: the GRAD columns of tensor/unary.def and tensor/binary.def ---- */
#define VG_UOP_GRAD_1(GRAD) vg_ag_accum(x, (GRAD))
#define VG_UOP_GRAD_0(GRAD) VG_ABORT("backward: %s is not differentiable", vg_op_name(c->op))
#define VG_UOP(NAME, name, DIFF, FE, HOIST, FWD, GRAD)                             \
    case VG_OP_##NAME: {                                                           \
      const float a = (float)c->p.unary.a, b = (float)c->p.unary.b;                \
      (void)a, (void)b;                                                            \
      VG_UOP_GRAD_##DIFF(GRAD);                                                    \
      return;                                                                      \
    }
#include "tensor/unary.def"
#undef VG_UOP
#define VG_BOP_GRAD_1(GX, GY)                                                      \
      if (x->requires_grad) accum_bcast(x, (GX));                                  \
      if (y->requires_grad) accum_bcast(y, (GY));
#define VG_BOP_GRAD_0(GX, GY) VG_ABORT("backward: %s is not differentiable", vg_op_name(c->op));
#define VG_BOP(NAME, name, DIFF, OUT, HOIST, FWD, GRADX, GRADY)                    \
    case VG_OP_##NAME: {                                                           \
      const float alpha = (float)c->p.binary.alpha;                                \
      (void)alpha;                                                                 \
      VG_BOP_GRAD_##DIFF(GRADX, GRADY)                                             \
      return;                                                                      \
    }
#include "tensor/binary.def"
#undef VG_BOP
    case VG_OP_WHERE: {
      vg_tensor *zero = fscalar(0);
      accum_bcast(c->in[1], vg_where(x, g, zero));
      accum_bcast(c->in[2], vg_where(x, zero, g));
      return;
    }
    /* ---- reductions ---- */
    case VG_OP_SUM:
      vg_ag_accum(x, unreduce(g, x, (unsigned)c->p.reduce.mask, c->p.reduce.keepdim));
      return;
    case VG_OP_AMAX: case VG_OP_AMIN: { /* evenly among the maxima, as torch.amax */
      vg_tensor *o = unreduce(out, x, (unsigned)c->p.reduce.mask, c->p.reduce.keepdim);
      vg_tensor *m = as_float(vg_eq(x, o));
      int dims[VG_MAX_DIMS], nd = 0;
      for (int i = 0; i < x->ndim; i++)
        if (c->p.reduce.mask >> i & 1) dims[nd++] = i;
      vg_tensor *cnt = vg_sum(m, nd, dims, true);
      vg_ag_accum(x, vg_div(vg_mul(unreduce(g, x, (unsigned)c->p.reduce.mask, c->p.reduce.keepdim), m), cnt));
      return;
    }
    /* ---- matmul / conv ---- */
    case VG_OP_MATMUL: {
      if (x->requires_grad) accum_bcast(x, vg_matmul(g, vg_transpose(y, -1, -2)));
      if (!y->requires_grad) return;
      /* y = w^T, a transposed view of a 2-D w (vg_linear's weight) and x 2-D: dw = g^T x
       * straight in w's layout, the same products summed over the same index as (x^T g)^T,
       * instead of x^T g through the view's rule and a transposing copy into w's grad */
      const vg_node *vn = y->node;
      const vg_tensor *w = vn && vn->call.op == VG_OP_PERMUTE && vn->call.nin == 1 && y->ndim == 2 ? vn->call.in[0] : NULL;
      if (w && w->ndim == 2 && x->ndim == 2 && g->ndim == 2 && vn->call.p.permute.perm[0] == 1 && w->requires_grad) {
        vg_ag_accum(w, vg_matmul(vg_transpose(g, 0, 1), x));
        return;
      }
      accum_bcast(y, vg_matmul(vg_transpose(x, -1, -2), g));
      return;
    }
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
    case VG_OP_UNFOLD: {
      const vg_unfold_params *u = &c->p.unfold;
      vg_ag_accum(x, vg_fold(g, x->shape[2], x->shape[3], (int)u->kh, (int)u->kw, (int)u->dh, (int)u->dw,
                             (int)u->ph, (int)u->pw, (int)u->sh, (int)u->sw));
      return;
    }
    case VG_OP_FOLD: {
      const vg_unfold_params *u = &c->p.unfold;
      vg_ag_accum(x, vg_unfold(g, (int)u->kh, (int)u->kw, (int)u->dh, (int)u->dw, (int)u->ph, (int)u->pw,
                               (int)u->sh, (int)u->sw));
      return;
    }
    case VG_OP_PAD: {
      vg_tensor *s = g;
      const vg_pad_params *pp = &c->p.pad;
      for (int p = 0; p < (int)pp->npairs; p++) {
        int d = x->ndim - 1 - p;
        s = vg_slice(s, d, pp->pads[2 * p], pp->pads[2 * p] + x->shape[d], 1);
      }
      vg_ag_accum(x, s);
      return;
    }
    case VG_OP_CONCAT: {
      int d = (int)c->p.dim.dim;
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
      vg_ag_accum(x, vg_scatter_add(vg_zeros_like(x), (int)c->p.dim.dim, y, g));
      return;
    case VG_OP_SCATTER_ADD: {
      vg_ag_accum(x, g);
      const vg_tensor *src = c->in[2];
      if (!src->requires_grad) return;
      vg_tensor *gs = vg_gather(g, (int)c->p.dim.dim, y);   /* index's shape */
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
      vg_ag_accum(x, vg_index_add(vg_zeros_like(x), (int)c->p.dim.dim, y, g));
      return;
    case VG_OP_INDEX_ADD:
      vg_ag_accum(x, g);
      vg_ag_accum(c->in[2], vg_index_select(g, (int)c->p.dim.dim, y));
      return;
    /* ---- normalization: one fused backward op each ---- */
    case VG_OP_SOFTMAX: case VG_OP_LOG_SOFTMAX: {
      const vg_tensor *in[2] = {vg_contiguous(g), out};
      vg_opcall b = {.op = c->op == VG_OP_SOFTMAX ? VG_OP_SOFTMAX_BWD : VG_OP_LOG_SOFTMAX_BWD, .nin = 2, .in = in,
                     .out = {vg_alloc(VG_F32, g->device, x->ndim, x->shape)}, .p = c->p};
      vg_ag_accum(x, vg_dispatch(&b));
      return;
    }
    case VG_OP_LAYER_NORM: { /* in = {x, weight, bias}; out[1] holds the rows' mean and rstd */
      const vg_tensor *w = c->in[1], *bias = c->in[2];
      vg_opcall b = {.op = VG_OP_LAYER_NORM_BWD, .nin = 4, .in = (const vg_tensor *[]){vg_contiguous(g), x, c->out[1], w},
                     .p = c->p};
      vg_layer_norm_params *p = &b.p.layer_norm;
      p->grad_x = x->requires_grad;
      p->grad_w = w && w->requires_grad;
      p->grad_b = bias && bias->requires_grad;
      int64_t none = 0, n = 1, two_n[2];
      for (int i = x->ndim - (int)p->nnorm; i < x->ndim; i++) n *= x->shape[i];
      two_n[0] = 2;
      two_n[1] = n;
      b.out[0] = p->grad_x ? vg_alloc(VG_F32, g->device, x->ndim, x->shape) : vg_alloc(VG_F32, g->device, 1, &none);
      if (p->grad_w || p->grad_b) b.out[1] = vg_alloc(VG_F32, g->device, 2, two_n);
      vg_dispatch(&b);
      if (p->grad_x) vg_ag_accum(x, b.out[0]);
      for (int k = 0; k < 2; k++) {   /* gw = out[1][0], gb = out[1][1], reshaped to the param's shape */
        const vg_tensor *t = k ? bias : w;
        if (t && t->requires_grad) vg_ag_accum(t, vg_reshape(vg_slice(b.out[1], 0, k, k + 1, 1), t->ndim, t->shape));
      }
      return;
    }
  }
}
