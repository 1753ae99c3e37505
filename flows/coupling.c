/* coupling.c — FrEIA's _BaseCouplingBlock family: GLOW, RNVP, NICE and GIN (two
 * half-steps, each transforming one half from a subnet of the other half and the
 * conditions), AffineCouplingOneSided (the second half only) and
 * ConditionalAffineTransform (the whole input, from the conditions alone). */
#include "flows/block.h"
#include <stdlib.h>

typedef enum { C_GLOW, C_RNVP, C_NICE, C_GIN, C_ONESIDED, C_CONDAFF } coupling_kind;

typedef struct {
  vg_flow_block b;
  coupling_kind kind;
  vg_flow_coupling_opts o;
  int64_t len1, len2;   /* the channels of the first and the second half */
} coupling_state;

static vg_tensor *coupling_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                               bool rev, bool want, vg_tensor **ld);
static const vg_flow_block_ops coupling_ops = {.forward = coupling_fwd, .uses_cond = true};

static int64_t py_round_half(int64_t c) {   /* round(0.5 * c), half to even */
  if (c % 2 == 0) return c / 2;
  int64_t lo = c / 2;                     /* .5 case */
  return (lo % 2 == 0) ? lo : lo + 1;
}

static vg_nn_module *coupling_new(const char *kind, coupling_kind t, int ndim, const int64_t *dims, int64_t cc,
                                  vg_flow_subnet subnet, vg_flow_coupling_opts o) {
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  int64_t C = dims[0];
  if (o.clamp == 0) o.clamp = 2.0;
  int64_t l1 = o.split_len ? o.split_len : py_round_half(C);
  if (l1 < 0 || l1 > C) { vg_fail(VG_ERR_ARG, "%s: split_len %lld out of range", kind, (long long)l1); return NULL; }
  if (t == C_CONDAFF && cc <= 0) { vg_fail(VG_ERR_ARG, "ConditionalAffineTransform must have a condition"); return NULL; }
  vg_nn_module *m = vg_flow_block_new(kind, &coupling_ops, sizeof(coupling_state), ndim, dims, cc);
  coupling_state *f = m->ctx;
  f->kind = t;
  f->o = o;
  f->len1 = l1; f->len2 = C - l1;
  int64_t l2 = C - l1;
  typedef struct { const char *name; int64_t cin, cout; } subdef;
  subdef subs[4];
  int ns = 0;
  switch (t) {
    case C_GLOW: case C_GIN:
      subs[ns++] = (subdef){"subnet1", l1 + cc, 2 * l2};
      subs[ns++] = (subdef){"subnet2", l2 + cc, 2 * l1};
      break;
    case C_RNVP:
      subs[ns++] = (subdef){"subnet_s1", l1 + cc, l2};
      subs[ns++] = (subdef){"subnet_t1", l1 + cc, l2};
      subs[ns++] = (subdef){"subnet_s2", l2 + cc, l1};
      subs[ns++] = (subdef){"subnet_t2", l2 + cc, l1};
      break;
    case C_NICE:
      subs[ns++] = (subdef){"F", l2 + cc, l1};
      subs[ns++] = (subdef){"G", l1 + cc, l2};
      break;
    case C_ONESIDED: subs[ns++] = (subdef){"subnet", l1 + cc, 2 * l2}; break;
    case C_CONDAFF: subs[ns++] = (subdef){"subnet", cc, 2 * C}; break;
  }
  for (int i = 0; i < ns; i++) {
    vg_nn_module *s = vg_flow_call_subnet(subnet, subs[i].cin, subs[i].cout);
    if (!s) { vg_nn_free(m); return NULL; }
    vg_nn_add_child(m, subs[i].name, s);
  }
  return m;
}

vg_nn_module *vg_flow_glow_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("GLOWCouplingBlock", C_GLOW, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_rnvp_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("RNVPCouplingBlock", C_RNVP, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_nice_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("NICECouplingBlock", C_NICE, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_gin_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("GINCouplingBlock", C_GIN, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_affine_onesided_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("AffineCouplingOneSided", C_ONESIDED, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_cond_affine_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("ConditionalAffineTransform", C_CONDAFF, nd, d, cc, s, o);
}

static vg_tensor *fclamp(const coupling_state *f, const vg_tensor *s) {
  vg_tensor *u;
  switch (f->o.clamp_activation) {
    case VG_FLOW_CLAMP_TANH: u = vg_tanh(s); break;
    case VG_FLOW_CLAMP_SIGMOID: u = vg_affine(vg_sigmoid(s), 2.f, -1.f); break;
    default: u = vg_scale(vg_atan(s), 0.636f); break;
  }
  return vg_scale(u, (float)f->o.clamp);
}

/* one affine half-step: x active, u passive(+cond); subnet(s) named by idx (1 or 2) */
static vg_tensor *affine_half(vg_nn_module *m, int which, const vg_tensor *x, const vg_tensor *u,
                              bool rev, bool want, vg_tensor **j) {
  const coupling_state *f = m->ctx;
  int64_t len = x->shape[1];
  vg_tensor *s, *t;
  if (f->kind == C_NICE) {
    vg_tensor *r = vg_nn_forward(vg_nn_child_get(m, which == 1 ? "F" : "G"), u);
    *j = NULL;
    return rev ? vg_sub(x, r) : vg_add(x, r);
  }
  if (f->kind == C_RNVP) {
    s = vg_nn_forward(vg_nn_child_get(m, which == 1 ? "subnet_s2" : "subnet_s1"), u);
    t = vg_nn_forward(vg_nn_child_get(m, which == 1 ? "subnet_t2" : "subnet_t1"), u);
  } else {
    vg_tensor *a = vg_nn_forward(vg_nn_child_get(m, which == 1 ? "subnet2" : "subnet1"), u);
    s = vg_narrow(a, 1, 0, len);
    t = vg_narrow(a, 1, len, len);
  }
  s = fclamp(f, s);
  if (f->kind == C_GIN) {
    s = vg_sub(s, vg_mean(s, 1, (int[]){1}, true));
    *j = NULL;
  } else {
    *j = want ? vg_flow_sum_nonbatch(s) : NULL;
    if (rev && *j) *j = vg_neg(*j);
  }
  return rev ? vg_mul(vg_sub(x, t), vg_exp(vg_neg(s))) : vg_add(vg_mul(vg_exp(s), x), t);
}

static vg_tensor *coupling_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                               bool rev, bool want, vg_tensor **ld) {
  const coupling_state *f = m->ctx;
  int64_t C = f->b.dims[0];
  vg_tensor *ldv = NULL, *out;
  if (f->kind == C_CONDAFF) {
    vg_tensor *c = ncond == 1 ? cond[0] : vg_concat(ncond, cond, 1);
    vg_tensor *a = vg_nn_forward(vg_nn_child_get(m, "subnet"), c);
    vg_tensor *s = fclamp(f, vg_narrow(a, 1, 0, C)), *t = vg_narrow(a, 1, C, C);
    if (want) { ldv = vg_flow_sum_nonbatch(s); if (rev) ldv = vg_neg(ldv); }
    out = rev ? vg_mul(vg_sub(x, t), vg_exp(vg_neg(s))) : vg_add(vg_mul(vg_exp(s), x), t);
  } else if (f->kind == C_ONESIDED) {
    vg_tensor *x1 = vg_narrow(x, 1, 0, f->len1), *x2 = vg_narrow(x, 1, f->len1, f->len2);
    vg_tensor *a = vg_nn_forward(vg_nn_child_get(m, "subnet"), vg_flow_cat_cond(x1, ncond, cond));
    vg_tensor *s = fclamp(f, vg_narrow(a, 1, 0, f->len2)), *t = vg_narrow(a, 1, f->len2, f->len2);
    if (want) { ldv = vg_flow_sum_nonbatch(s); if (rev) ldv = vg_neg(ldv); }
    vg_tensor *y2 = rev ? vg_mul(vg_sub(x2, t), vg_exp(vg_neg(s))) : vg_add(vg_mul(x2, vg_exp(s)), t);
    out = vg_concat(2, (vg_tensor *[]){x1, y2}, 1);
  } else {
    vg_tensor *x1 = vg_narrow(x, 1, 0, f->len1), *x2 = vg_narrow(x, 1, f->len1, f->len2);
    vg_tensor *y1, *y2, *j1, *j2;
    if (!rev) {
      y1 = affine_half(m, 1, x1, vg_flow_cat_cond(x2, ncond, cond), false, want, &j1);
      y2 = affine_half(m, 2, x2, vg_flow_cat_cond(y1, ncond, cond), false, want, &j2);
    } else {
      y2 = affine_half(m, 2, x2, vg_flow_cat_cond(x1, ncond, cond), true, want, &j2);
      y1 = affine_half(m, 1, x1, vg_flow_cat_cond(y2, ncond, cond), true, want, &j1);
    }
    out = vg_concat(2, (vg_tensor *[]){y1, y2}, 1);
    if (want) {
      ldv = vg_flow_add_ld(j1, j2);
      if (!ldv) ldv = vg_flow_zeros_n(x, x->shape[0]);
    }
  }
  if (ld) *ld = ldv;
  return out;
}
