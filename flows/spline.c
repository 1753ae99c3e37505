/* spline.c — RationalQuadraticSpline, the rational-quadratic spline coupling block of FrEIA
 * master (FrEIA/modules/splines/{binned,rational_quadratic}.py, commit 4212496; FrEIA 0.2 on
 * PyPI has no spline module). Durkan et al. 2019, "Neural Spline Flows".
 *
 * Coupling as FrEIA's _BaseCouplingBlock: x = (x1, x2) split at split_len; forward
 *   y1 = s(x1 | subnet1(x2, c)), y2 = s(x2 | subnet2(y1, c)); reverse the other way round.
 * subnetK outputs len_K * P channels, read channels-last as (..., len_K, P) and split into
 * widths (bins), heights (bins), bottom, left, deltas (bins - 1): P = 3 bins + 1
 * (identity_tails: widths, heights, total_width, deltas: P = 3 bins; the buffer
 * spline_base.identity_tails is stored, the layout is fixed at construction as in FrEIA).
 * Constraints, per element:
 *   left += domain[0], bottom += domain[2]
 *   widths = min_w + softplus(w + log(e^(bin_w - min_w) - 1)), bin_w = (domain[1]-domain[0]) / bins
 *   (heights alike); domain_clamping c: widths and left times c tanh(W / c) / W, W = sum(widths)
 *   identity_tails: T = default_width softplus(t + log(e - 1)) (clamped), left = bottom = -T/2,
 *     widths = T softmax(w), heights = T softmax(h)
 *   deltas = (s, softplus(d + log(e - 1)), s), s = sum(heights) / sum(widths)
 * Knots x_k = left + cumsum(widths) (k = 0..bins, x_0 = left), y_k alike. Inside
 * (x_0 < x <= x_bins) the RQ spline of the bin searchsorted(knots, x) - 1 (Eq. 4-8, reverse
 * by the quadratic's stable root 2c / (-b - sqrt(b^2 - 4ac))); outside the affine tail
 * y = s x + bottom - s left, log-slope log s. log-det: the sum of log dy/dx over both halves.
 *
 * ElementwiseRationalQuadraticSpline (same file upstream): the same splines on every channel of
 * x, their parameters a learned spline_parameters (C P[, H, W]) (zeros), or subnet(c) when
 * conditional (c -> C P channels).
 *
 * Vigil computes both branches everywhere (the spline at a bin midpoint where the input is
 * outside) and selects with where, so gradients stay finite; the bin index is a count of
 * knots below x (= torch.searchsorted, left) and cumsum a matmul with a triangular ones
 * matrix. The reverse's discriminant is clamped at 0 (FrEIA raises when it is negative). */
#include "flows/block.h"
#include <math.h>
#include <stdlib.h>

typedef struct {
  vg_flow_block b;
  int64_t len1, len2;
  int bins;
  bool identity;       /* identity_tails: fixes the subnets' layout (P = 3 bins, else 3 bins + 1) */
  bool elementwise;    /* ElementwiseRationalQuadraticSpline */
  double clamping;     /* domain_clamping, 0 = None */
} rqs_state;

static vg_tensor *rqs_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                          bool want, vg_tensor **ld);
static const vg_flow_block_ops rqs_ops = {.forward = rqs_fwd, .uses_cond = true};

static int64_t py_round_half(int64_t c) {   /* round(0.5 * c), half to even (FrEIA's float split_len) */
  if (c % 2 == 0) return c / 2;
  int64_t lo = c / 2;
  return (lo % 2 == 0) ? lo : lo + 1;
}

static vg_nn_module *base_module(void) {   /* a parameter-free holder of spline_base's buffers */
  return vg_nn_module_new("BinnedSplineBase", NULL, NULL, NULL);
}

static vg_nn_module *rqs_new(const char *kind, bool elementwise, int ndim, const int64_t *dims, int64_t cond_channels,
                            vg_flow_subnet subnet, vg_flow_rqs_opts o) {
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  int64_t C = dims[0];
  int bins = o.bins ? o.bins : 10;
  double mw = o.min_bin_width == 0 ? 0.1 : o.min_bin_width < 0 ? 0 : o.min_bin_width;
  double mh = o.min_bin_height == 0 ? 0.1 : o.min_bin_height < 0 ? 0 : o.min_bin_height;
  double d[4] = {-3, 3, -3, 3};
  if (o.domain[0] || o.domain[1] || o.domain[2] || o.domain[3]) for (int i = 0; i < 4; i++) d[i] = o.domain[i];
  int64_t l1 = o.split_len ? o.split_len : py_round_half(C);
  const char *err = NULL;
  if (bins < 1) err = "need at least one bin";
  else if (!(d[1] > d[0]) || !(d[3] > d[2])) err = "domain must be increasing (left < right, bottom < top)";
  else if (d[1] - d[0] < mw * bins || d[3] - d[2] < mh * bins) err = "bins of the minimum size do not fit the domain";
  else if (!elementwise && (l1 < 1 || l1 >= C)) err = "split_len must leave both halves non-empty (C >= 2)";
  else if (o.domain_clamping < 0 || !isfinite(o.domain_clamping)) err = "domain_clamping must be >= 0 (0: none)";
  if (err) { vg_fail(VG_ERR_ARG, "%s: %s", kind, err); return NULL; }
  vg_nn_module *m = vg_flow_block_new(kind, &rqs_ops, sizeof(rqs_state), ndim, dims, cond_channels);
  rqs_state *s = m->ctx;
  s->len1 = l1;
  s->len2 = C - l1;
  s->bins = bins;
  s->clamping = o.domain_clamping;
  s->identity = o.identity_tails;
  s->elementwise = elementwise;
  /* FrEIA's BinnedSplineBase buffers: a child spline_base of the coupling block, registered
   * before the subnets; the elementwise spline is a BinnedSplineBase itself */
  vg_nn_module *base = elementwise ? m : base_module();
  vg_tensor *t = vg_tensor_new(VG_I32, 0, NULL);
  ((int32_t *)vg_data(t))[0] = bins;
  vg_nn_add_buffer(base, "bins", t);
  t = vg_tensor_new(VG_F32, 1, (int64_t[]){2});
  vg_f32(t)[0] = (float)mw; vg_f32(t)[1] = (float)mh;
  vg_nn_add_buffer(base, "min_bin_sizes", t);
  t = vg_tensor_new(VG_F32, 1, (int64_t[]){4});
  for (int i = 0; i < 4; i++) vg_f32(t)[i] = (float)d[i];
  vg_nn_add_buffer(base, "default_domain", t);
  t = vg_tensor_new(VG_BOOL, 0, NULL);
  ((uint8_t *)vg_data(t))[0] = o.identity_tails;
  vg_nn_add_buffer(base, "identity_tails", t);
  t = vg_tensor_new(VG_F32, 0, NULL);
  vg_f32(t)[0] = (float)(d[1] - d[0]);
  vg_nn_add_buffer(base, "default_width", t);
  if (!elementwise) vg_nn_add_child(m, "spline_base", base);
  int64_t P = 3 * (int64_t)bins + (o.identity_tails ? 0 : 1);
  if (elementwise) {
    if (cond_channels > 0) {
      vg_nn_module *sn = vg_flow_call_subnet(subnet, cond_channels, C * P);
      if (!sn) { vg_nn_free(m); return NULL; }
      vg_nn_add_child(m, "subnet", sn);
    } else {   /* zeros: the default domain with equal bins and slope-1 knots */
      int64_t sh[4] = {C * P};
      for (int i = 1; i < ndim; i++) sh[i] = dims[i];
      vg_nn_add_param(m, "spline_parameters", vg_tensor_new(VG_F32, ndim, sh));
    }
    return m;
  }
  vg_nn_module *s1 = vg_flow_call_subnet(subnet, s->len2 + cond_channels, s->len1 * P);
  if (!s1) { vg_nn_free(m); return NULL; }
  vg_nn_add_child(m, "subnet1", s1);
  vg_nn_module *s2 = vg_flow_call_subnet(subnet, s->len1 + cond_channels, s->len2 * P);
  if (!s2) { vg_nn_free(m); return NULL; }
  vg_nn_add_child(m, "subnet2", s2);
  return m;
}

vg_nn_module *vg_flow_rq_spline_new(int ndim, const int64_t *dims, int64_t cond_channels, vg_flow_subnet subnet,
                                    vg_flow_rqs_opts o) {
  return rqs_new("RationalQuadraticSpline", false, ndim, dims, cond_channels, subnet, o);
}
vg_nn_module *vg_flow_elementwise_rq_spline_new(int ndim, const int64_t *dims, int64_t cond_channels,
                                                vg_flow_subnet subnet, vg_flow_rqs_opts o) {
  return rqs_new("ElementwiseRationalQuadraticSpline", true, ndim, dims, cond_channels, subnet, o);
}

/* The buffers' current values (a loaded FrEIA state dict takes effect, as in FrEIA). */
typedef struct { float minw, minh, d[4], width; } rqs_consts;
static rqs_consts read_consts(vg_nn_module *m) {
  vg_nn_module *b = ((rqs_state *)m->ctx)->elementwise ? m : vg_nn_child_get(m, "spline_base");
  rqs_consts k;
  float ms[2];
  vg_to_host(vg_nn_buffer(b, "min_bin_sizes"), VG_F32, ms);
  vg_to_host(vg_nn_buffer(b, "default_domain"), VG_F32, k.d);
  vg_to_host(vg_nn_buffer(b, "default_width"), VG_F32, &k.width);
  k.minw = ms[0]; k.minh = ms[1];
  return k;
}

static vg_tensor *scalar_on(const vg_tensor *like, double v) { return vg_full_on(like->device, VG_F32, 0, NULL, v); }

/* sum over the last dim, kept */
static vg_tensor *sum_last(const vg_tensor *t) { return vg_sum(t, 1, (int[]){-1}, true); }

/* (..., K) -> (..., K) cumulative sums along the last dim: a matmul with the upper-triangular ones */
static vg_tensor *cumsum_last(const vg_tensor *t) {
  int64_t K = t->shape[t->ndim - 1];
  float *tri = calloc((size_t)(K * K), sizeof(float));
  for (int64_t i = 0; i < K; i++) for (int64_t j = i; j < K; j++) tri[i * K + j] = 1.f;
  vg_tensor *T = vg_from_data(VG_F32, 2, (int64_t[]){K, K}, tri);
  free(tri);
  if (t->device != T->device) T = vg_to_device(T, t->device);
  vg_tensor *flat = vg_reshape(t, 2, (int64_t[]){-1, K});
  return vg_reshape(vg_matmul(flat, T), t->ndim, t->shape);
}

/* The splines of x (N, L[, H, W]) with the unconstrained parameters a (N, L P[, H, W]). */
static vg_tensor *spline_apply(vg_nn_module *m, const rqs_consts *k, const vg_tensor *a, const vg_tensor *x,
                               bool rev, bool want, vg_tensor **j) {
  const rqs_state *s = m->ctx;
  int K = s->bins;
  int64_t P = 3 * (int64_t)K + (s->identity ? 0 : 1), L = x->shape[1];
  int sp = x->ndim == 4;
  int64_t pshape[6], xshape[6];
  int nd = 0;
  pshape[nd] = xshape[nd] = x->shape[0]; nd++;
  if (sp) { pshape[nd] = xshape[nd] = x->shape[2]; nd++; pshape[nd] = xshape[nd] = x->shape[3]; nd++; }
  pshape[nd] = xshape[nd] = L; nd++;
  pshape[nd] = P; xshape[nd] = 1; nd++;
  /* channels last: params (N[, H, W], L, P), x (N[, H, W], L, 1) */
  vg_tensor *pa = vg_reshape(sp ? vg_permute(a, (int[]){0, 2, 3, 1}) : a, nd, pshape);
  vg_tensor *xc = vg_reshape(sp ? vg_permute(x, (int[]){0, 2, 3, 1}) : x, nd, xshape);
  vg_tensor *w = vg_narrow(pa, -1, 0, K), *h = vg_narrow(pa, -1, K, K), *left, *bottom, *dl;
  const double sh1 = log(M_E - 1);
  if (!s->identity) {
    bottom = vg_add_scalar(vg_narrow(pa, -1, 2 * K, 1), k->d[2]);
    left = vg_add_scalar(vg_narrow(pa, -1, 2 * K + 1, 1), k->d[0]);
    dl = vg_narrow(pa, -1, 2 * K + 2, K - 1);
    float bw = (k->d[1] - k->d[0]) / (float)K, bh = (k->d[3] - k->d[2]) / (float)K;
    float xs = logf(expf(bw - k->minw) - 1.f), ys = logf(expf(bh - k->minh) - 1.f);
    w = vg_add_scalar(vg_softplus(vg_add_scalar(w, xs), 1.f, 20.f), k->minw);
    h = vg_add_scalar(vg_softplus(vg_add_scalar(h, ys), 1.f, 20.f), k->minh);
    if (s->clamping > 0) {
      float c = (float)s->clamping;
      vg_tensor *W = sum_last(w), *H = sum_last(h);
      vg_tensor *rw = vg_div(vg_scale(vg_tanh(vg_scale(W, 1.f / c)), c), W);
      vg_tensor *rh = vg_div(vg_scale(vg_tanh(vg_scale(H, 1.f / c)), c), H);
      w = vg_mul(w, rw); h = vg_mul(h, rh);
      left = vg_mul(left, rw); bottom = vg_mul(bottom, rh);
    }
  } else {
    vg_tensor *tw = vg_scale(vg_softplus(vg_add_scalar(vg_narrow(pa, -1, 2 * K, 1), (float)sh1), 1.f, 20.f), k->width);
    if (s->clamping > 0) {
      float c = (float)s->clamping;
      tw = vg_scale(vg_tanh(vg_scale(tw, 1.f / c)), c);
    }
    dl = vg_narrow(pa, -1, 2 * K + 1, K - 1);
    left = bottom = vg_scale(tw, -0.5f);
    w = vg_mul(tw, vg_softmax(w, -1));
    h = vg_mul(tw, vg_softmax(h, -1));
  }
  vg_tensor *scale = vg_div(sum_last(h), sum_last(w));                  /* (..., L, 1) tail slope */
  vg_tensor *dparts[3] = {scale, scale, scale};
  if (K > 1) dparts[1] = vg_softplus(vg_add_scalar(dl, (float)sh1), 1.f, 20.f);
  vg_tensor *deltas = vg_concat(K > 1 ? 3 : 2, dparts, nd - 1);        /* K + 1 derivatives */
  vg_tensor *kx = vg_concat(2, (vg_tensor *[]){left, vg_add(left, cumsum_last(w))}, nd - 1);
  vg_tensor *ky = vg_concat(2, (vg_tensor *[]){bottom, vg_add(bottom, cumsum_last(h))}, nd - 1);
  vg_tensor *kn = rev ? ky : kx;                                          /* the knots x is read on */
  vg_tensor *xd = vg_detach(xc);
  vg_tensor *zero = scalar_on(x, 0);
  vg_tensor *inside = vg_gt(vg_mul(vg_cast(vg_lt(vg_narrow(kn, -1, 0, 1), xd), VG_F32),
                                   vg_cast(vg_le(xd, vg_narrow(kn, -1, K, 1)), VG_F32)), zero);
  /* upper = #knots < x (torch.searchsorted, right=False), in [1, K] for the inside */
  vg_tensor *cnt = vg_clamp(sum_last(vg_cast(vg_lt(vg_detach(kn), xd), VG_F32)), 1.f, (float)K);
  vg_tensor *iu = vg_cast(cnt, VG_I64), *il = vg_cast(vg_add_scalar(cnt, -1.f), VG_I64);
  int ld_ = nd - 1;
  vg_tensor *xk = vg_gather(kx, ld_, il), *xkp = vg_gather(kx, ld_, iu);
  vg_tensor *yk = vg_gather(ky, ld_, il), *ykp = vg_gather(ky, ld_, iu);
  vg_tensor *dk = vg_gather(deltas, ld_, il), *dkp = vg_gather(deltas, ld_, iu);
  vg_tensor *dx = vg_sub(xkp, xk), *dy = vg_sub(ykp, yk), *sk = vg_div(dy, dx);
  vg_tensor *g = vg_sub(vg_add(dkp, dk), vg_scale(sk, 2.f));             /* dk+1 + dk - 2 sk */
  vg_tensor *xi, *out_in, *out_out;
  vg_tensor *shift = vg_sub(bottom, vg_mul(scale, left));
  if (!rev) {
    vg_tensor *xs = vg_where(inside, xc, vg_scale(vg_add(xk, xkp), 0.5f));
    xi = vg_div(vg_sub(xs, xk), dx);
    vg_tensor *t = vg_mul(xi, vg_affine(xi, -1.f, 1.f));
    vg_tensor *num = vg_mul(dy, vg_add(vg_mul(sk, vg_mul(xi, xi)), vg_mul(dk, t)));
    out_in = vg_add(yk, vg_div(num, vg_add(sk, vg_mul(g, t))));
    out_out = vg_add(vg_mul(scale, xc), shift);
  } else {
    vg_tensor *ys = vg_where(inside, xc, vg_scale(vg_add(yk, ykp), 0.5f));
    vg_tensor *r = vg_sub(ys, yk);
    vg_tensor *qa = vg_add(vg_mul(dy, vg_sub(sk, dk)), vg_mul(r, g));
    vg_tensor *qb = vg_sub(vg_mul(dy, dk), vg_mul(r, g));
    vg_tensor *qc = vg_neg(vg_mul(sk, r));
    vg_tensor *disc = vg_clamp(vg_sub(vg_mul(qb, qb), vg_scale(vg_mul(qa, qc), 4.f)), 0.f, INFINITY);
    xi = vg_div(vg_scale(qc, 2.f), vg_sub(vg_neg(qb), vg_sqrt(disc)));
    out_in = vg_add(vg_mul(xi, dx), xk);
    out_out = vg_div(vg_sub(xc, shift), scale);
  }
  vg_tensor *out = vg_where(inside, out_in, out_out);
  if (want) {
    vg_tensor *om = vg_affine(xi, -1.f, 1.f), *t = vg_mul(xi, om);
    vg_tensor *num = vg_mul(vg_mul(sk, sk), vg_add(vg_add(vg_mul(dkp, vg_mul(xi, xi)), vg_scale(vg_mul(sk, t), 2.f)),
                                                   vg_mul(dk, vg_mul(om, om))));
    vg_tensor *den = vg_add(sk, vg_mul(g, t));
    vg_tensor *lj_in = vg_sub(vg_log(num), vg_log(vg_mul(den, den)));
    vg_tensor *lj = vg_where(inside, lj_in, vg_expand(vg_log(scale), nd, lj_in->shape));
    *j = vg_flow_sum_nonbatch(lj);
    if (rev) *j = vg_neg(*j);
  }
  /* back to channels first */
  vg_tensor *o = vg_reshape(out, nd - 1, xshape);
  return sp ? vg_permute(o, (int[]){0, 3, 1, 2}) : o;
}

/* One coupling half-step: x active, u the passive half (+ conditions). */
static vg_tensor *spline_half(vg_nn_module *m, const rqs_consts *k, const char *subnet, const vg_tensor *x,
                              const vg_tensor *u, bool rev, bool want, vg_tensor **j) {
  return spline_apply(m, k, vg_nn_forward(vg_nn_child_get(m, subnet), u), x, rev, want, j);
}

static vg_tensor *rqs_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                          bool want, vg_tensor **ld) {
  const rqs_state *s = m->ctx;
  rqs_consts k = read_consts(m);
  if (s->elementwise) {
    vg_tensor *a, *j = NULL;
    if (s->b.cond_ch > 0) {
      a = vg_nn_forward(vg_nn_child_get(m, "subnet"), ncond == 1 ? cond[0] : vg_concat(ncond, cond, 1));
    } else {   /* spline_parameters (C P[, H, W]) for every sample */
      vg_tensor *sp = vg_unsqueeze(vg_nn_param(m, "spline_parameters"), 0);
      int64_t sh[VG_MAX_DIMS];
      for (int d = 0; d < sp->ndim; d++) sh[d] = sp->shape[d];
      sh[0] = x->shape[0];
      a = vg_expand(sp, sp->ndim, sh);
    }
    vg_tensor *y = spline_apply(m, &k, a, x, rev, want, &j);
    if (want) *ld = j;
    return y;
  }
  vg_tensor *x1 = vg_narrow(x, 1, 0, s->len1), *x2 = vg_narrow(x, 1, s->len1, s->len2);
  vg_tensor *y1, *y2, *j1 = NULL, *j2 = NULL;
  if (!rev) {
    y1 = spline_half(m, &k, "subnet1", x1, vg_flow_cat_cond(x2, ncond, cond), false, want, &j1);
    y2 = spline_half(m, &k, "subnet2", x2, vg_flow_cat_cond(y1, ncond, cond), false, want, &j2);
  } else {
    y2 = spline_half(m, &k, "subnet2", x2, vg_flow_cat_cond(x1, ncond, cond), true, want, &j2);
    y1 = spline_half(m, &k, "subnet1", x1, vg_flow_cat_cond(y2, ncond, cond), true, want, &j1);
  }
  if (want) *ld = vg_add(j1, j2);
  return vg_concat(2, (vg_tensor *[]){y1, y2}, 1);
}
