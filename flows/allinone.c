/* allinone.c — FrEIA 0.2's AllInOneBlock: affine coupling of the second half (a subnet
 * on the first half and the conditions), global affine scale/offset (SOFTPLUS, SIGMOID or
 * EXP), then a fixed channel permutation, a random rotation (permute_soft) or a learned
 * product of Householder reflections. */
#include "flows/block.h"
#include <math.h>
#include <stdlib.h>

typedef struct {
  vg_flow_block b;
  vg_flow_allinone_opts o;
  int64_t split0, split1;   /* [C - C//2, C//2]: the passive and the transformed halves */
} allinone_state;

static vg_tensor *allinone_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                               bool rev, bool want, vg_tensor **ld);
static const vg_flow_block_ops allinone_ops = {.forward = allinone_fwd, .uses_cond = true};

/* F.linear(x, w) for (N,C), F.conv2d(x, w[C,C,1,1]) for (N,C,H,W); w given as (C,C) */
static vg_tensor *chmix(const vg_tensor *x, const vg_tensor *w2) {
  if (x->ndim == 2) return vg_linear(x, w2, NULL);
  int64_t C = w2->shape[0];
  vg_tensor *w4 = vg_reshape(w2, 4, (int64_t[]){C, C, 1, 1});
  return vg_conv2d(x, w4, NULL, (vg_conv2d_opts){0});
}

/* The column of the row's only nonzero when that is 1 (-0 counts as zero, NaN as
 * nonzero), else -1. Blocks of 16 are tested whole first (branch-free, vectorized):
 * every forward scans the matrices, C*C floats each. */
#if !defined(__clang__)
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#endif
static int64_t unit_row_col(const float *restrict r, int64_t C) {
  int64_t col = -1;
  for (int64_t j0 = 0; j0 < C; j0 += 16) {
    const int64_t n = C - j0 < 16 ? C - j0 : 16;
    int nz = 0;
    for (int64_t t = 0; t < n; t++) nz |= r[j0 + t] != 0.f;
    if (!nz) continue;
    for (int64_t t = 0; t < n; t++) {
      const float v = r[j0 + t];
      if (v == 0.f) continue;
      if (v != 1.f || col >= 0) return -1;
      col = j0 + t;
    }
  }
  return col;
}

/* A fixed (no-grad) 0/1 permutation matrix applies as an index_select along channels:
 * y[:, i] = x[:, idx[i]] with idx[i] the column of row i's 1. NULL when w is not one. */
static vg_tensor *perm_index(const vg_tensor *w2) {
  if (!w2 || w2->requires_grad) return NULL;
  int64_t C = w2->shape[0];
  /* read in place when it is already a contiguous CPU f32 matrix (every forward scans it) */
  bool direct = w2->device == VG_CPU && w2->dtype == VG_F32 && vg_is_contiguous(w2);
  float *h = direct ? vg_f32(w2) : malloc(sizeof(float) * (size_t)(C * C));
  if (!h) return NULL;
  if (!direct) vg_to_host(w2, VG_F32, h);
  vg_tensor *idx = vg_empty(VG_I64, 1, &C);
  int64_t *ip = vg_data(idx);
  bool ok = true;
  for (int64_t i = 0; i < C && ok; i++) {
    ip[i] = unit_row_col(h + i * C, C);
    ok = ip[i] >= 0;
  }
  if (!direct) free(h);
  return ok ? idx : NULL;
}

static vg_tensor *chmix_fast(const vg_tensor *x, const vg_tensor *w2, const vg_tensor *idx) {
  if (idx && x->device == VG_CPU) return vg_index_select(x, 1, idx);
  return chmix(x, w2);
}

static vg_tensor *as2d(const vg_tensor *w) {   /* (C,C[,1,1]) -> (C,C) */
  return vg_reshape(w, 2, (int64_t[]){w->shape[0], w->shape[1]});
}

vg_nn_module *vg_flow_allinone_new(int ndim, const int64_t *dims, int64_t cond_channels,
                                   vg_flow_subnet subnet, vg_flow_allinone_opts o) {
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  if (o.affine_clamping == 0) o.affine_clamping = 2.0;
  if (o.global_affine_init == 0) o.global_affine_init = 1.0;
  int64_t C = dims[0];
  if (C < 2) { vg_fail(VG_ERR_ARG, "AllInOneBlock: need >= 2 channels"); return NULL; }
  double gs;
  switch (o.global_affine_type) {
    case VG_FLOW_GA_SIGMOID: gs = 2.0 - log(10.0 / o.global_affine_init - 1.0); break;
    case VG_FLOW_GA_SOFTPLUS: gs = 2.0 * log(exp(0.5 * 10.0 * o.global_affine_init) - 1.0); break;
    case VG_FLOW_GA_EXP: gs = log(o.global_affine_init); break;
    default: vg_fail(VG_ERR_ARG, "AllInOneBlock: bad global affine type"); return NULL;
  }
  vg_nn_module *m = vg_flow_block_new("AllInOneBlock", &allinone_ops, sizeof(allinone_state), ndim, dims, cond_channels);
  allinone_state *f = m->ctx;
  f->o = o;
  f->split0 = C - C / 2; f->split1 = C / 2;
  int64_t ps[VG_MAX_DIMS];
  vg_tensor *gsc = vg_flow_param_shape_like(ndim, C, ps);
  vg_fill_(gsc, gs);
  vg_nn_add_param(m, "global_scale", gsc);
  vg_nn_add_param(m, "global_offset", vg_flow_param_shape_like(ndim, C, ps));
  double *w = calloc((size_t)(C * C), sizeof(double));
  if (o.permute_soft) {
    vg_flow_special_ortho(C, o.seed, w);
  } else {
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)C);
    vg_flow_random_permutation(C, o.seed, perm);
    for (int64_t i = 0; i < C; i++) w[i * C + perm[i]] = 1.0;
    free(perm);
  }
  int64_t wsh[4] = {C, C, 1, 1};
  int wnd = ndim == 1 ? 2 : 4;
  if (o.learned_householder_permutation > 0) {
    vg_tensor *vk = vg_tensor_new(VG_F32, 2, (int64_t[]){o.learned_householder_permutation, C});
    vg_normal_(vk, 0.f, 0.2f, o.seed + 7777);
    vg_nn_add_param(m, "vk_householder", vk);
    vg_tensor *w0 = vg_tensor_new(VG_F32, 2, (int64_t[]){C, C});
    float *p = vg_f32(w0);
    for (int64_t i = 0; i < C * C; i++) p[i] = (float)w[i];
    vg_nn_add_param(m, "w_0", w0);
    vg_requires_grad_(w0, false);
  } else {
    vg_tensor *wp = vg_tensor_new(VG_F32, wnd, wsh), *wi = vg_tensor_new(VG_F32, wnd, wsh);
    float *p = vg_f32(wp), *q = vg_f32(wi);
    for (int64_t i = 0; i < C; i++)
      for (int64_t j = 0; j < C; j++) { p[i * C + j] = (float)w[i * C + j]; q[i * C + j] = (float)w[j * C + i]; }
    vg_nn_add_param(m, "w_perm", wp);
    vg_nn_add_param(m, "w_perm_inv", wi);
    vg_requires_grad_(wp, false);
    vg_requires_grad_(wi, false);
  }
  free(w);
  vg_nn_module *sn = vg_flow_call_subnet(subnet, f->split0 + cond_channels, 2 * f->split1);
  if (!sn) { vg_nn_free(m); return NULL; }
  vg_nn_add_child(m, "subnet", sn);
  return m;
}

static vg_tensor *householder_w(vg_nn_module *m, int64_t C) {
  vg_tensor *w = vg_nn_param(m, "w_0");
  vg_tensor *vk = vg_nn_param(m, "vk_householder");
  vg_tensor *eye = vg_zeros(VG_F32, 2, (int64_t[]){C, C});
  float *e = vg_f32(eye);
  for (int64_t i = 0; i < C; i++) e[i * C + i] = 1.f;
  if (vk->device != VG_CPU) eye = vg_to_device(eye, vk->device);
  for (int64_t k = 0; k < vk->shape[0]; k++) {
    vg_tensor *v = vg_select(vk, 0, k);
    vg_tensor *vc = vg_unsqueeze(v, 1), *vr = vg_unsqueeze(v, 0);
    vg_tensor *outer = vg_matmul(vc, vr);
    vg_tensor *dot = vg_sum_all(vg_mul(v, v));
    vg_tensor *refl = vg_sub(eye, vg_div(vg_scale(outer, 2.f), dot));
    w = vg_matmul(w, refl);
  }
  return w;
}

static vg_tensor *global_act(const vg_flow_allinone_opts *o, const vg_tensor *a) {
  switch (o->global_affine_type) {
    case VG_FLOW_GA_SIGMOID: return vg_scale(vg_sigmoid(vg_add_scalar(a, -2.f)), 10.f);
    case VG_FLOW_GA_SOFTPLUS: return vg_scale(vg_softplus(a, 0.5f, 20.f), 0.1f);
    case VG_FLOW_GA_EXP: return vg_exp(a);
  }
  return NULL;
}

static vg_tensor *allinone_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                               bool rev, bool want, vg_tensor **ld) {
  allinone_state *f = m->ctx;
  const vg_flow_allinone_opts *o = &f->o;
  int64_t C = f->b.dims[0];
  vg_tensor *wp, *wi;
  if (o->learned_householder_permutation > 0) {
    wp = householder_w(m, C);
    wi = vg_transpose(wp, 0, 1);
  } else {
    wp = as2d(vg_nn_param(m, "w_perm"));
    wi = as2d(vg_nn_param(m, "w_perm_inv"));
  }
  vg_tensor *ip = NULL, *ii = NULL;
  if (!o->permute_soft && o->learned_householder_permutation == 0 && x->device == VG_CPU) {
    ip = perm_index(wp);
    ii = perm_index(wi);
  }
  vg_tensor *gscale = vg_nn_param(m, "global_scale"), *goff = vg_nn_param(m, "global_offset");
  vg_tensor *scale = NULL, *perm_lj = NULL;
  if (!o->gin_block) {
    scale = global_act(o, gscale);
    perm_lj = vg_sum_all(vg_log(scale));
  }
  vg_tensor *h = (vg_tensor *)x;
  if (rev) {
    h = vg_sub(chmix_fast(h, wi, ii), goff);
    if (scale) h = vg_div(h, scale);
  } else if (o->reverse_permutation) {
    h = chmix_fast(h, wi, ii);
  }
  vg_tensor *x1 = vg_narrow(h, 1, 0, f->split0), *x2 = vg_narrow(h, 1, f->split0, f->split1);
  /* inference: the subnet's and then the affine part's intermediates are freed as soon as
   * their results exist (vg_scope_end_keep), as torch frees temporaries */
  const vg_tensor *ins[4] = {x, gscale, goff, ncond > 0 ? cond[0] : NULL};
  bool nest = !vg_nn_would_record(m, 4, ins);
  for (int i = 1; i < ncond && nest; i++) nest = !cond[i]->requires_grad;
  if (nest) vg_scope_begin();
  vg_tensor *a = vg_nn_forward(vg_nn_child_get(m, "subnet"), vg_flow_cat_cond(x1, ncond, cond));
  a = vg_scale(a, 0.1f);
  if (nest) {
    vg_scope_end_keep(1, &a);
    vg_scope_begin();
  }
  int64_t ch = f->split1;
  vg_tensor *sa = vg_narrow(a, 1, 0, ch), *ta = vg_narrow(a, 1, ch, a ? a->shape[1] - ch : 0);
  float clamp = (float)o->affine_clamping;
  vg_tensor *sj = o->clamp_mode == VG_FLOW_CLAMP_TANH_SCALED ? vg_scale(vg_tanh(vg_scale(sa, 1.f / clamp)), clamp)
                                                             : vg_scale(vg_tanh(sa), clamp);
  if (o->gin_block) {
    int dims[VG_MAX_DIMS], nd = 0;
    for (int d = 1; d < x->ndim; d++) dims[nd++] = d;
    sj = vg_sub(sj, vg_mean(sj, nd, dims, true));
  }
  vg_tensor *y2, *j2;
  if (!rev) {
    y2 = vg_add(vg_mul(x2, vg_exp(sj)), ta);
    j2 = want ? vg_flow_sum_nonbatch(sj) : NULL;
  } else {
    y2 = vg_mul(vg_sub(x2, ta), vg_exp(vg_neg(sj)));
    j2 = want ? vg_neg(vg_flow_sum_nonbatch(sj)) : NULL;
  }
  vg_tensor *out = vg_concat(2, (vg_tensor *[]){x1, y2}, 1);
  if (!rev) {
    if (scale) out = vg_mul(out, scale);
    out = chmix_fast(vg_add(out, goff), wp, ip);
  } else if (o->reverse_permutation) {
    out = chmix_fast(out, wp, ip);
  }
  if (nest) {
    vg_tensor *keep[2] = {out, j2};
    vg_scope_end_keep(2, keep);
    out = keep[0];
    j2 = keep[1];
  }
  if (want && ld) {
    int64_t npix = vg_flow_npix(x);
    vg_tensor *l = j2;
    if (perm_lj) l = vg_add(l, vg_scale(perm_lj, (rev ? -1.f : 1.f) * (float)npix));
    *ld = l;
  }
  return out;
}
