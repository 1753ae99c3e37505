/* elementwise.c — FrEIA 0.2's elementwise invertible maps (fixed_transforms.py:
 * InvertibleSigmoid; inv_auto_layers.py: LearnedElementwiseScaling, InvAutoAct,
 * InvAutoActTwoSided). y = x * exp(l(x)) with a per-element log-slope l for the three learned
 * ones, so their log-det is sum(l) over a sample's elements (negated in reverse, where l is
 * evaluated at the output: sign(y) = sign(x)). Their state is the header plus a kind tag. */
#include "flows/block.h"
#include <math.h>

typedef enum { EW_SIGMOID, EW_SCALING, EW_ACT, EW_ACT2 } ew_kind;
typedef struct {
  vg_flow_block b;
  ew_kind kind;
} ew_state;

static vg_tensor *ew_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                         bool want, vg_tensor **ld);
static const vg_flow_block_ops ew_ops = {.forward = ew_fwd};

static vg_nn_module *ew_new(const char *kind_name, ew_kind kind, int ndim, const int64_t *dims) {
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  vg_nn_module *m = vg_flow_block_new(kind_name, &ew_ops, sizeof(ew_state), ndim, dims, 0);
  ((ew_state *)m->ctx)->kind = kind;
  return m;
}

/* A (1, C[, 1, 1]) parameter (or (1, dims...) when whole) filled with v. */
static vg_tensor *ew_param(vg_nn_module *m, const char *name, int ndim, const int64_t *dims, bool whole, double v,
                           bool fixed) {
  int64_t shape[VG_MAX_DIMS];
  vg_tensor *t;
  if (whole) {
    shape[0] = 1;
    for (int i = 0; i < ndim; i++) shape[i + 1] = dims[i];
    t = vg_tensor_new(VG_F32, ndim + 1, shape);
  } else {
    t = vg_flow_param_shape_like(ndim, dims[0], shape);
  }
  vg_fill_(t, (float)v);
  vg_nn_add_param(m, name, t);
  if (fixed) vg_requires_grad_(t, false);
  return t;
}

vg_nn_module *vg_flow_inv_sigmoid_new(int ndim, const int64_t *dims) {
  return ew_new("InvertibleSigmoid", EW_SIGMOID, ndim, dims);
}

vg_nn_module *vg_flow_elementwise_scaling_new(int ndim, const int64_t *dims, double init_scale) {
  if (init_scale == 0) init_scale = 1.0;
  if (!(init_scale > 0) || !isfinite(init_scale)) { vg_fail(VG_ERR_ARG, "LearnedElementwiseScaling: init_scale must be > 0"); return NULL; }
  vg_nn_module *m = ew_new("LearnedElementwiseScaling", EW_SCALING, ndim, dims);
  if (m) ew_param(m, "s", ndim, dims, true, log(init_scale), false);
  return m;
}

vg_nn_module *vg_flow_inv_auto_act_new(int ndim, const int64_t *dims, double slope_init, bool fixed) {
  if (slope_init == 0) slope_init = 2.0;
  if (!(slope_init > 0) || !isfinite(slope_init)) { vg_fail(VG_ERR_ARG, "InvAutoAct: slope_init must be > 0"); return NULL; }
  vg_nn_module *m = ew_new("InvAutoAct", EW_ACT, ndim, dims);
  if (m) ew_param(m, "alpha", ndim, dims, false, log(slope_init), fixed);
  return m;
}

vg_nn_module *vg_flow_inv_auto_act_two_sided_new(int ndim, const int64_t *dims, double init_pos, double init_neg,
                                                 bool fixed) {
  if (init_pos == 0) init_pos = 2.0;
  if (init_neg == 0) init_neg = 0.5;
  if (!(init_pos > 0) || !(init_neg > 0) || !isfinite(init_pos) || !isfinite(init_neg)) {
    vg_fail(VG_ERR_ARG, "InvAutoActTwoSided: init_pos and init_neg must be > 0");
    return NULL;
  }
  vg_nn_module *m = ew_new("InvAutoActTwoSided", EW_ACT2, ndim, dims);
  if (m) {
    ew_param(m, "alpha_pos", ndim, dims, false, log(init_pos), fixed);
    ew_param(m, "alpha_neg", ndim, dims, false, log(init_neg), fixed);
  }
  return m;
}

/* (N,) = the 0-d or (1, ...) tensor t summed, for every sample */
static vg_tensor *ld_broadcast(const vg_tensor *t, int64_t N) {
  return vg_expand(vg_reshape(vg_sum_all(t), 1, (int64_t[]){1}), 1, &N);
}

static vg_tensor *ew_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                         bool want, vg_tensor **ld) {
  (void)ncond; (void)cond;
  ew_state *s = m->ctx;
  int64_t N = x->shape[0];
  float sg = rev ? -1.f : 1.f;
  vg_tensor *y = NULL, *l = NULL;
  switch (s->kind) {
  case EW_SIGMOID: {
    y = rev ? vg_log(vg_div(x, vg_affine(x, -1.f, 1.f))) : vg_sigmoid(x);
    if (want) {
      /* log sigmoid'(u) = log sigmoid(u) + log sigmoid(-u) at u = the forward input
       * (FrEIA: log(1 / ((1 + e^u)(1 + e^-u))), the same without its overflow at |u| > 88) */
      const vg_tensor *u = rev ? y : x;
      *ld = vg_scale(vg_flow_sum_nonbatch(vg_add(vg_logsigmoid(u), vg_logsigmoid(vg_neg(u)))), sg);
    }
    return y;
  }
  case EW_SCALING: {
    vg_tensor *sp = vg_nn_param(m, "s");
    y = vg_mul(x, vg_exp(vg_scale(sp, sg)));
    if (want) *ld = ld_broadcast(vg_scale(sp, sg), N);
    return y;
  }
  case EW_ACT:
    l = vg_mul(vg_nn_param(m, "alpha"), vg_sign(x));
    break;
  case EW_ACT2: {
    vg_tensor *ap = vg_nn_param(m, "alpha_pos"), *an = vg_nn_param(m, "alpha_neg");
    /* a_pos + 0.5 (a_neg - a_pos)(1 - sign x) */
    l = vg_add(ap, vg_mul(vg_scale(vg_sub(an, ap), 0.5f), vg_affine(vg_sign(x), -1.f, 1.f)));
    break;
  }
  }
  if (rev) l = vg_neg(l);
  y = vg_mul(x, vg_exp(l));
  if (want) *ld = vg_flow_sum_nonbatch(l);
  return y;
}
