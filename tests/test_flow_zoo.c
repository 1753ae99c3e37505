/* test_flow_zoo.c — flows/ zoo modules (reshape.c, elementwise.c, orthogonal.c) vs FrEIA 0.2
 * and the splines (spline.c) vs FrEIA master (tests/fixtures/flow_zoo.bin and flow_zoo_rqs.bin
 * from tools/gen_flow_zoo_fixtures.py: identical weights, every
 * state-dict entry by name, outputs, log-dets, grads of L = sum(y * gy) - sum(logdet) (gy random), the
 * reverse pass on its own input), invertibility, log-det vs the brute-force (autograd) Jacobian's
 * log|det| in both directions, gradcheck, shape inference, SequenceINN use, the errors, the
 * spline's buffers through a checkpoint, and every case on CUDA (GPU or make CUDA_EMU=1). */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "flows/flows.h"
#include "nn/checkpoint.h"
#include <string.h>
#include <unistd.h>

#define D1(c) 1, (int64_t[]){c}
#define D3(c, h, w) 3, (int64_t[]){c, h, w}

static vg_nn_module *mlp_sub(int64_t cin, int64_t cout, void *u) {
  return vg_flow_subnet_mlp_new(cin, cout, *(int64_t *)u, 5);
}
static vg_nn_module *conv_sub3(int64_t cin, int64_t cout, void *u) {
  return vg_flow_subnet_conv_new(cin, cout, 3, *(int64_t *)u, 5);
}
static int64_t H8 = 8, H6 = 6, H4 = 4, H3 = 3;

static vg_nn_module *build(const char *k) {
  if (!strcmp(k, "haar_down")) return vg_flow_haar_down_new(D3(3, 4, 6), (vg_flow_haar_opts){0});
  if (!strcmp(k, "haar_down_wav")) return vg_flow_haar_down_new(D3(2, 4, 4), (vg_flow_haar_opts){.order_by_wavelet = true, .rebalance = 0.5});
  if (!strcmp(k, "haar_up")) return vg_flow_haar_up_new(D3(8, 2, 3), (vg_flow_haar_opts){.rebalance = 2.0});
  if (!strcmp(k, "haar_up_wav")) return vg_flow_haar_up_new(D3(8, 3, 2), (vg_flow_haar_opts){.order_by_wavelet = true});
  if (!strcmp(k, "irev_down")) return vg_flow_irevnet_down_new(D3(3, 4, 2), false);
  if (!strcmp(k, "irev_down_legacy")) return vg_flow_irevnet_down_new(D3(2, 4, 6), true);
  if (!strcmp(k, "irev_up")) return vg_flow_irevnet_up_new(D3(8, 2, 2), false);
  if (!strcmp(k, "irev_up_legacy")) return vg_flow_irevnet_up_new(D3(12, 2, 3), true);
  if (!strcmp(k, "sigmoid_1d")) return vg_flow_inv_sigmoid_new(D1(5));
  if (!strcmp(k, "sigmoid_2d")) return vg_flow_inv_sigmoid_new(D3(3, 2, 2));
  if (!strcmp(k, "scaling_2d")) return vg_flow_elementwise_scaling_new(D3(3, 2, 2), 0);
  if (!strcmp(k, "scaling_1d")) return vg_flow_elementwise_scaling_new(D1(4), 0);
  if (!strcmp(k, "act_2d")) return vg_flow_inv_auto_act_new(D3(3, 2, 2), 0, false);
  if (!strcmp(k, "act_1d")) return vg_flow_inv_auto_act_new(D1(5), 1.5, true);
  if (!strcmp(k, "act2_2d")) return vg_flow_inv_auto_act_two_sided_new(D3(2, 3, 2), 0, 0, false);
  if (!strcmp(k, "act2_1d")) return vg_flow_inv_auto_act_two_sided_new(D1(5), 3.0, 0.25, false);
  if (!strcmp(k, "orth_1d")) return vg_flow_orthogonal_new(D1(6), 0, 2.0, 1);
  if (!strcmp(k, "hh_1d")) return vg_flow_householder_perm_new(D1(5), 3, false, 2);
  if (!strcmp(k, "hh_fixed_1d")) return vg_flow_householder_perm_new(D1(6), 4, true, 3);
  if (!strcmp(k, "rqs_1d")) return vg_flow_rq_spline_new(D1(5), 0, (vg_flow_subnet){mlp_sub, &H8}, (vg_flow_rqs_opts){0});
  if (!strcmp(k, "rqs_2d_cond"))
    return vg_flow_rq_spline_new(D3(4, 3, 3), 2, (vg_flow_subnet){conv_sub3, &H3},
                                 (vg_flow_rqs_opts){.bins = 3, .domain = {-2, 2, -2.5, 2.5}, .min_bin_width = 0.05, .min_bin_height = 0.2});
  if (!strcmp(k, "rqs_1d_identity"))
    return vg_flow_rq_spline_new(D1(4), 0, (vg_flow_subnet){mlp_sub, &H6}, (vg_flow_rqs_opts){.bins = 4, .identity_tails = true, .domain_clamping = 2.0});
  if (!strcmp(k, "rqs_1d_clamp"))
    return vg_flow_rq_spline_new(D1(3), 2, (vg_flow_subnet){mlp_sub, &H6}, (vg_flow_rqs_opts){.bins = 3, .domain_clamping = 2.5});
  if (!strcmp(k, "rqs_1d_bins1")) return vg_flow_rq_spline_new(D1(2), 0, (vg_flow_subnet){mlp_sub, &H4}, (vg_flow_rqs_opts){.bins = 1});
  if (!strcmp(k, "erqs_2d")) return vg_flow_elementwise_rq_spline_new(D3(3, 2, 2), 0, (vg_flow_subnet){0}, (vg_flow_rqs_opts){.bins = 4});
  if (!strcmp(k, "erqs_1d_cond"))
    return vg_flow_elementwise_rq_spline_new(D1(4), 3, (vg_flow_subnet){mlp_sub, &H6}, (vg_flow_rqs_opts){.bins = 3, .identity_tails = true});
  return NULL;
}
static const char *CASES[] = {"haar_down", "haar_down_wav", "haar_up", "haar_up_wav", "irev_down", "irev_down_legacy",
  "irev_up", "irev_up_legacy", "sigmoid_1d", "sigmoid_2d", "scaling_2d", "scaling_1d", "act_2d", "act_1d", "act2_2d",
  "act2_1d", "orth_1d", "hh_1d", "hh_fixed_1d", "rqs_1d", "rqs_2d_cond", "rqs_1d_identity", "rqs_1d_clamp",
  "rqs_1d_bins1", "erqs_2d", "erqs_1d_cond"};
#define FIRST_RQS 19   /* cases from here on: flow_zoo_rqs.bin (FrEIA master) */
static const char *KINDS[] = {"HaarDownsampling", "HaarDownsampling", "HaarUpsampling", "HaarUpsampling",
  "IRevNetDownsampling", "IRevNetDownsampling", "IRevNetUpsampling", "IRevNetUpsampling", "InvertibleSigmoid",
  "InvertibleSigmoid", "LearnedElementwiseScaling", "LearnedElementwiseScaling", "InvAutoAct", "InvAutoAct",
  "InvAutoActTwoSided", "InvAutoActTwoSided", "OrthogonalTransform", "HouseholderPerm", "HouseholderPerm",
  "RationalQuadraticSpline", "RationalQuadraticSpline", "RationalQuadraticSpline", "RationalQuadraticSpline",
  "RationalQuadraticSpline", "ElementwiseRationalQuadraticSpline", "ElementwiseRationalQuadraticSpline"};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))
_Static_assert(sizeof KINDS == sizeof CASES, "one kind per case");

static vg_fixture *g_fx, *g_zoo, *g_rqs;   /* g_fx: the current case's file */
static const vg_fx_tensor *fxget(const char *k, const char *what) {
  char key[600];
  snprintf(key, sizeof key, "%s.%s", k, what);
  return vg_fixture_get(g_fx, key);
}
static vg_tensor *fxtensor(const vg_fx_tensor *f) { return vg_from_data(VG_F32, f->ndim, f->shape, f->data); }

static float *host(const vg_tensor *t) {
  float *b = malloc(sizeof(float) * (size_t)vg_numel(t));
  vg_to_host(t, VG_F32, b);
  return b;
}

/* max |got - want| / (|want| + max|want|): relative to the tensor's scale; shapes must agree */
static double cmp(const char *k, const char *what, const vg_tensor *got, const vg_fx_tensor *want, double tol) {
  if (!want) { VG_CHECK(0, "%s %s: fixture entry present", k, what); return INFINITY; }
  if (!got) { VG_CHECK(0, "%s %s: no result (%s)", k, what, vg_last_error()); return INFINITY; }
  bool shape_ok = got->ndim == want->ndim;
  for (int d = 0; shape_ok && d < got->ndim; d++) shape_ok = got->shape[d] == want->shape[d];
  if (!VG_CHECK(shape_ok && vg_numel(got) == want->n, "%s %s: shape as FrEIA's", k, what)) return INFINITY;
  float *g = host(got);
  double ref = 0, mx = 0;
  for (int64_t i = 0; i < want->n; i++) ref = fmax(ref, fabs(want->data[i]));
  for (int64_t i = 0; i < want->n; i++) {
    double e = fabs((double)g[i] - want->data[i]) / (fabs(want->data[i]) + ref + 1e-30);
    if (!(e == e)) e = INFINITY;
    if (ref == 0) e = fabs((double)g[i]);
    mx = fmax(mx, e);
  }
  free(g);
  VG_CHECK(mx <= tol, "%s %s vs FrEIA: max rel err %.2e (tol %.0e)", k, what, mx, tol);
  return mx;
}

typedef struct { double y, ld, g, rev; } errs;
static errs g_worst;

static void conformance(int ci) {
  const char *k = CASES[ci];
  vg_nn_module *m = build(k);
  if (!VG_CHECK(m, "%s: builds (%s)", k, vg_last_error())) return;
  VG_CHECK(!strcmp(m->kind_name, KINDS[ci]) && vg_flow_is_flow(m), "%s: a flow of FrEIA's kind %s (%s)", k, KINDS[ci], m->kind_name);
  /* state dict: the same names and sizes both ways; frozen tensors equal FrEIA's init */
  vg_nn_list sd = vg_nn_state_dict(m);
  bool names_ok = true, frozen_ok = true;
  for (int i = 0; i < sd.n; i++) {
    char what[256];
    snprintf(what, sizeof what, "p.%s", sd.names[i]);
    const vg_fx_tensor *p = fxget(k, what);
    if (!p || p->n != vg_numel(sd.tensors[i])) { names_ok = false; continue; }
    if (!sd.tensors[i]->requires_grad && strcmp(sd.names[i], "Vs") && strcmp(sd.names[i], "alpha")) {
      float *h = host(sd.tensors[i]);   /* haar_weights, downsample_kernel, HouseholderPerm's W from Vs */
      if (!strcmp(sd.names[i], "W") || !strcmp(sd.names[i], "weight")) {
        /* ours is computed from our own Vs: check against FrEIA's formula after loading */
      } else frozen_ok &= !memcmp(h, p->data, sizeof(float) * (size_t)p->n);
      free(h);
    }
    vg_tensor *src = vg_from_data(VG_F32, sd.tensors[i]->ndim, sd.tensors[i]->shape, p->data);
    vg_copy_(sd.tensors[i], src);
    vg_tensor_free(src);
  }
  size_t klen = strlen(k);
  int nexp = 0;
  for (int i = 0; i < g_fx->count; i++) {
    const char *nm = g_fx->t[i].name;
    if (strncmp(nm, k, klen) || strncmp(nm + klen, ".p.", 3)) continue;
    nexp++;
    bool found = false;
    for (int j = 0; j < sd.n; j++) found |= !strcmp(sd.names[j], nm + klen + 3);
    names_ok &= found;
  }
  VG_CHECK(names_ok && nexp == sd.n, "%s: state-dict names and sizes = FrEIA's (%d entries)", k, sd.n);
  VG_CHECK(frozen_ok, "%s: frozen kernels equal FrEIA's init", k);
  vg_nn_list_free(&sd);

  const vg_fx_tensor *fx = fxget(k, "x"), *fc = fxget(k, "c");
  vg_tensor *x = fxtensor(fx), *c = fc ? fxtensor(fc) : NULL;
  int nc = c ? 1 : 0;
  vg_requires_grad_(x, true);
  if (c) vg_requires_grad_(c, true);
  vg_scope_begin();
  vg_tensor *ld = NULL;
  vg_tensor *y = vg_flow_forward(m, x, nc, &c, false, true, &ld);
  errs e = {0};
  double tv = ci >= FIRST_RQS ? 1e-5 : 1e-6;   /* the spline's cumsum / bin search in another order */
  e.y = cmp(k, "y", y, fxget(k, "y"), tv);
  e.ld = cmp(k, "logdet", ld, fxget(k, "ld"), tv);
  if (y && ld) {
    vg_tensor *loss = vg_sub(vg_sum_all(vg_mul(y, fxtensor(fxget(k, "gy")))), vg_sum_all(ld));
    vg_backward(loss);
    e.g = cmp(k, "grad x", x->grad, fxget(k, "gx"), 1e-5);
    if (c) e.g = fmax(e.g, cmp(k, "grad c", c->grad, fxget(k, "gc"), 1e-5));
    vg_nn_list ps = vg_nn_named_parameters(m);
    for (int i = 0; i < ps.n; i++) {
      char what[256];
      snprintf(what, sizeof what, "g.%s", ps.names[i]);
      const vg_fx_tensor *g = fxget(k, what);
      if (!ps.tensors[i]->requires_grad) { VG_CHECK(!g, "%s: %s frozen as in FrEIA", k, ps.names[i]); continue; }
      e.g = fmax(e.g, cmp(k, what, ps.tensors[i]->grad, g, 1e-5));
    }
    vg_nn_list_free(&ps);
  }
  /* FrEIA's reverse pass on its own input */
  vg_no_grad_begin();
  vg_tensor *z = fxtensor(fxget(k, "z")), *ldr = NULL;
  vg_tensor *xr = vg_flow_forward(m, z, nc, &c, true, true, &ldr);
  e.rev = fmax(cmp(k, "reverse", xr, fxget(k, "xr"), tv), cmp(k, "reverse logdet", ldr, fxget(k, "ldr"), tv));
  /* reverse(forward(x)) = x, forward log-det = -reverse log-det */
  vg_tensor *ld2 = NULL;
  vg_tensor *x2 = y ? vg_flow_forward(m, y, nc, &c, true, true, &ld2) : NULL;
  double inv = INFINITY, lsum = INFINITY;
  if (x2 && ld2) {
    float *a = host(x2), *b = host(x), *l1 = host(ld), *l2 = host(ld2);
    inv = 0; lsum = 0;
    for (int64_t i = 0; i < vg_numel(x); i++) inv = fmax(inv, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
    for (int64_t i = 0; i < x->shape[0]; i++) lsum = fmax(lsum, fabs(l1[i] + l2[i]) / fmax(1.0, fabs(l1[i])));
    free(a); free(b); free(l1); free(l2);
  }
  vg_no_grad_end();
  VG_CHECK(inv < 1e-5, "%s: reverse(forward(x)) = x, max err %.2e", k, inv);
  VG_CHECK(lsum < 1e-5, "%s: forward logdet = -reverse logdet, max err %.2e", k, lsum);
  printf("SUMMARY %-17s y %.2e  logdet %.2e  grads %.2e  reverse %.2e  inv %.2e\n", k, e.y, e.ld, e.g, e.rev, inv);
  g_worst.y = fmax(g_worst.y, e.y); g_worst.ld = fmax(g_worst.ld, e.ld);
  g_worst.g = fmax(g_worst.g, e.g); g_worst.rev = fmax(g_worst.rev, e.rev);
  vg_scope_end();
  vg_tensor_free(x);
  vg_tensor_free(c);
  vg_nn_free(m);
}

/* ------------------------------------------------------------ brute-force Jacobian */
static double logdet_lu(int n, double *a) {
  double ld = 0;
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++) if (fabs(a[r * n + c]) > fabs(a[p * n + c])) p = r;
    if (p != c) for (int j = 0; j < n; j++) { double t = a[c * n + j]; a[c * n + j] = a[p * n + j]; a[p * n + j] = t; }
    double piv = a[c * n + c];
    if (piv == 0) return -INFINITY;
    ld += log(fabs(piv));
    for (int r = c + 1; r < n; r++) {
      double f = a[r * n + c] / piv;
      for (int j = c; j < n; j++) a[r * n + j] -= f * a[c * n + j];
    }
  }
  return ld;
}

/* log|det dy/dx| of sample 0 from autograd rows (a batch of 2, so batch-coupling shows),
 * against the module's log-det for sample 0 */
static void jac_check(const char *k, vg_nn_module *m, const vg_fx_tensor *fin, vg_tensor *c, bool rev) {
  int64_t D = fin->n / fin->shape[0];
  vg_tensor *x = vg_from_data(VG_F32, fin->ndim, fin->shape, fin->data);
  vg_requires_grad_(x, true);
  double *J = malloc(sizeof(double) * (size_t)(D * D));
  float ld0 = NAN;
  bool ok = true;
  for (int64_t r = 0; r < D && ok; r++) {
    vg_scope_begin();
    vg_tensor *ld;
    vg_tensor *y = vg_flow_forward(m, x, c ? 1 : 0, &c, rev, true, &ld);
    if (!y || vg_numel(y) != fin->n) { ok = false; vg_scope_end(); break; }
    if (r == 0) ld0 = vg_f32(vg_contiguous(ld))[0];
    vg_tensor *seed = vg_zeros(VG_F32, y->ndim, y->shape);
    vg_f32(seed)[r] = 1.f;
    vg_zero_grad_(x);
    vg_backward_with(y, seed);
    for (int64_t j = 0; j < D; j++) J[r * D + j] = x->grad ? vg_f32(x->grad)[j] : 0;
    vg_scope_end();
  }
  double bf = ok ? logdet_lu((int)D, J) : NAN;
  double err = fabs(bf - ld0) / fmax(1.0, fabs(bf));
  VG_CHECK(ok && err < 1e-4, "%s%s: logdet %.6f vs brute-force Jacobian log|det| %.6f (%lld x %lld, err %.1e)", k,
           rev ? " (reverse)" : "", ld0, bf, (long long)D, (long long)D, err);
  free(J);
  vg_tensor_free(x);
}

typedef struct { vg_nn_module *m; bool rev; int nc; } gc_ctx;
static vg_tensor *gc_fn(vg_tensor *const *in, void *ctx) {
  gc_ctx *g = ctx;
  vg_tensor *ld;
  vg_tensor *y = vg_flow_forward(g->m, in[0], g->nc, g->nc ? &in[1] : NULL, g->rev, true, &ld);
  return vg_concat(2, (vg_tensor *[]){vg_reshape(y, 1, (int64_t[]){-1}), ld}, 0);
}

static void block_checks(int ci) {
  const char *k = CASES[ci];
  vg_nn_module *m = build(k);
  if (!m) return;
  vg_nn_list sd = vg_nn_state_dict(m);      /* FrEIA's weights: the reverse must hold at them */
  for (int i = 0; i < sd.n; i++) {
    char what[256];
    snprintf(what, sizeof what, "p.%s", sd.names[i]);
    const vg_fx_tensor *p = fxget(k, what);
    if (p && p->n == vg_numel(sd.tensors[i])) {
      vg_tensor *src = vg_from_data(VG_F32, sd.tensors[i]->ndim, sd.tensors[i]->shape, p->data);
      vg_copy_(sd.tensors[i], src);
      vg_tensor_free(src);
    }
  }
  vg_nn_list_free(&sd);
  const vg_fx_tensor *fx = fxget(k, "x"), *fz = fxget(k, "z"), *fc = fxget(k, "c");
  vg_tensor *c = fc ? fxtensor(fc) : NULL;
  jac_check(k, m, fx, c, false);
  jac_check(k, m, fz, c, true);
  /* shape inference: forward dims = the fixture's y dims; sample has the input's dims */
  int64_t in[4], od[4];
  for (int d = 1; d < fx->ndim; d++) in[d - 1] = fx->shape[d];
  const vg_fx_tensor *fy = fxget(k, "y");
  int ond = vg_flow_output_dims(m, fx->ndim - 1, in, od);
  bool same = ond == fy->ndim - 1;
  for (int d = 0; same && d < ond; d++) same = od[d] == fy->shape[d + 1];
  VG_CHECK(same, "%s: output_dims = FrEIA's output shape", k);
  in[0] += 1;
  VG_CHECK(vg_flow_output_dims(m, fx->ndim - 1, in, od) == -1 && strstr(vg_last_error(), "mismatch"), "%s: other dims refused: %s", k, vg_last_error());
  vg_scope_begin();
  vg_tensor *smp = vg_flow_sample(m, fx->shape[0], c ? 1 : 0, &c, 4);
  same = smp && smp->ndim == fx->ndim && smp->shape[0] == fx->shape[0];
  for (int d = 1; same && d < fx->ndim; d++) same = smp->shape[d] == fx->shape[d];
  if (strncmp(k, "sigmoid", 7)) VG_CHECK(same, "%s: vg_flow_sample gives the input's dims", k);
  /* the wrong side's shape is refused with a message, in both directions */
  if (!strncmp(k, "haar", 4) || !strncmp(k, "irev", 4)) {
    VG_CHECK(!vg_flow_forward(m, fxtensor(fz), 0, NULL, false, false, NULL) && strstr(vg_last_error(), "input must be"),
             "%s: forward on the output shape refused: %s", k, vg_last_error());
    VG_CHECK(!vg_flow_forward(m, fxtensor(fx), 0, NULL, true, false, NULL) && strstr(vg_last_error(), "input must be"),
             "%s: reverse on the input shape refused: %s", k, vg_last_error());
  }
  vg_scope_end();
  /* gradcheck wrt x (forward and reverse) */
  for (int r = 0; r < 2; r++) {
    const vg_fx_tensor *f = r ? fz : fx;
    vg_tensor *xi = vg_from_data(VG_F32, f->ndim, f->shape, f->data);
    for (int64_t i = 0; i < f->n; i++)   /* away from sign()'s jump at 0 (InvAutoAct) */
      if (fabsf(vg_f32(xi)[i]) < 1e-2f) vg_f32(xi)[i] = 0.3f;
    vg_requires_grad_(xi, true);
    vg_tensor *ci = c ? vg_tensor_clone_heap(c) : NULL;
    if (ci) vg_requires_grad_(ci, true);
    gc_ctx g = {m, r == 1, c ? 1 : 0};
    double e = vg_gradcheck(gc_fn, c ? 2 : 1, (vg_tensor *[]){xi, ci}, &g, 3e-4);   /* small: the splines' log-slopes kink at the knots */
    VG_CHECK(e < 2e-2, "%s: gradcheck wrt x%s%s: max rel err %.2e", k, c ? " and c" : "", r ? " (reverse)" : "", e);
    vg_tensor_free(xi);
    vg_tensor_free(ci);
  }
  vg_tensor_free(c);
  vg_nn_free(m);
}

/* ------------------------------------------------------------ the rest */
static void test_orth_correction(void) {
  const vg_fx_tensor *fi = vg_fixture_get(g_fx, "orth_correction.in"), *fo = vg_fixture_get(g_fx, "orth_correction.out");
  if (!VG_CHECK(fi && fo, "orth_correction fixture present")) return;
  vg_nn_module *m = vg_flow_orthogonal_new(D1(5), 3, 0, 7);
  vg_tensor *w = vg_nn_param(m, "weights");
  vg_tensor *src = fxtensor(fi);
  vg_copy_(w, src);
  vg_tensor_free(src);
  vg_flow_orthogonal_correct(m);
  cmp("OrthogonalTransform", "Gram-Schmidt correction", w, fo, 1e-6);
  /* the step counter: with interval 3 a correction comes within 4 steps, then again */
  vg_copy_(w, src = fxtensor(fi));
  vg_tensor_free(src);
  int first = -1, n = 0;
  for (int i = 0; i < 12; i++) if (vg_flow_orthogonal_step(m)) { n++; if (first < 0) first = i; }
  float *h = host(w);
  double e = 0;
  for (int i = 0; i < 5; i++) for (int j = 0; j < 5; j++) {
    double s = 0;
    for (int q = 0; q < 5; q++) s += (double)h[i * 5 + q] * h[j * 5 + q];
    e = fmax(e, fabs(s - (i == j)));
  }
  free(h);
  VG_CHECK(first >= 0 && first <= 3 && n >= 3 && e < 1e-5, "OrthogonalTransform step: first correction at step %d, %d in 12 steps, R R^T = I (err %.1e)", first, n, e);
  VG_CHECK(!vg_flow_orthogonal_step(NULL), "orthogonal_step(NULL) does nothing");
  vg_flow_orthogonal_correct(NULL);
  vg_nn_module *other = vg_flow_inv_sigmoid_new(D1(5));
  VG_CHECK(!vg_flow_orthogonal_step(other), "orthogonal_step on another module does nothing");
  vg_flow_orthogonal_correct(other);
  vg_nn_free(other);
  vg_nn_free(m);
  /* the default init is orthogonal, so its reverse inverts */
  vg_nn_module *o = vg_flow_orthogonal_new(D1(7), 0, 0, 11);
  vg_scope_begin();
  vg_tensor *x = vg_randn(2, (int64_t[]){4, 7}, 3);
  vg_tensor *xr = vg_flow_forward(o, vg_flow_forward(o, x, 0, NULL, false, false, NULL), 0, NULL, true, false, NULL);
  float *a = host(x), *b = host(xr);
  double ie = 0;
  for (int i = 0; i < 28; i++) ie = fmax(ie, fabs(a[i] - b[i]));
  free(a); free(b);
  vg_scope_end();
  VG_CHECK(ie < 1e-5, "OrthogonalTransform default init: reverse(forward(x)) = x (err %.1e)", ie);
  vg_nn_free(o);
}

static void refused(vg_nn_module *m, const char *what, const char *msg) {
  VG_CHECK(!m && strstr(vg_last_error(), msg), "%s refused: %s", what, vg_last_error());
  vg_nn_free(m);
}

static void test_errors(void) {
  refused(vg_flow_haar_down_new(D3(3, 5, 4), (vg_flow_haar_opts){0}), "Haar down of odd height", "cleanly");
  refused(vg_flow_haar_down_new(D1(4), (vg_flow_haar_opts){0}), "Haar down of 1-D dims", "(C, H, W)");
  refused(vg_flow_haar_up_new(D3(6, 2, 2), (vg_flow_haar_opts){0}), "Haar up of 6 channels", "multiple of 4");
  refused(vg_flow_haar_down_new(D3(3, 4, 4), (vg_flow_haar_opts){.rebalance = NAN}), "Haar rebalance NaN", "rebalance");
  refused(vg_flow_irevnet_down_new(D3(2, 4, 3), false), "IRevNet down of odd width", "cleanly");
  refused(vg_flow_irevnet_up_new(D3(5, 2, 2), true), "IRevNet up of 5 channels", "multiple of 4");
  refused(vg_flow_orthogonal_new(D3(3, 2, 2), 0, 0, 0), "OrthogonalTransform on images", "1D");
  refused(vg_flow_householder_perm_new(D1(4), 1, false, 0), "HouseholderPerm with 1 reflection", "at least 2");
  refused(vg_flow_householder_perm_new(D3(4, 1, 1), 2, false, 0), "HouseholderPerm on images", "1D");
  refused(vg_flow_elementwise_scaling_new(D1(4), -1), "LearnedElementwiseScaling init -1", "init_scale");
  refused(vg_flow_inv_auto_act_new(D1(4), -2, false), "InvAutoAct slope -2", "slope_init");
  refused(vg_flow_inv_auto_act_two_sided_new(D1(4), 1, -1, false), "InvAutoActTwoSided init_neg -1", "init_neg");
  refused(vg_flow_inv_sigmoid_new(D1(0)), "InvertibleSigmoid of 0 channels", "bad dims");
  vg_flow_subnet mlp = {mlp_sub, &H4};
  refused(vg_flow_rq_spline_new(D1(4), 0, mlp, (vg_flow_rqs_opts){.bins = -2}), "spline with -2 bins", "at least one bin");
  refused(vg_flow_rq_spline_new(D1(4), 0, mlp, (vg_flow_rqs_opts){.domain = {1, -1, -3, 3}}), "spline domain 1..-1", "increasing");
  refused(vg_flow_rq_spline_new(D1(4), 0, mlp, (vg_flow_rqs_opts){.bins = 20, .min_bin_width = 0.5}), "spline 20 bins of >= 0.5 in 6", "do not fit");
  refused(vg_flow_rq_spline_new(D1(4), 0, mlp, (vg_flow_rqs_opts){.split_len = 4}), "spline split_len 4 of 4", "non-empty");
  refused(vg_flow_rq_spline_new(D1(1), 0, mlp, (vg_flow_rqs_opts){0}), "spline of 1 channel", "non-empty");
  refused(vg_flow_rq_spline_new(D1(4), 0, (vg_flow_subnet){0}, (vg_flow_rqs_opts){0}), "spline without subnet", "subnet");
  refused(vg_flow_elementwise_rq_spline_new(D1(4), 2, (vg_flow_subnet){0}, (vg_flow_rqs_opts){0}), "conditional elementwise spline without subnet", "subnet");
  {   /* a conditional spline run without (or with the wrong) condition */
    vg_nn_module *m = vg_flow_rq_spline_new(D1(4), 2, mlp, (vg_flow_rqs_opts){0});
    vg_scope_begin();
    vg_tensor *x = vg_randn(2, (int64_t[]){3, 4}, 1), *c3 = vg_randn(2, (int64_t[]){3, 3}, 2);
    VG_CHECK(m && !vg_flow_forward(m, x, 0, NULL, false, true, NULL) && strstr(vg_last_error(), "condition"),
             "conditional spline without its condition refused: %s", vg_last_error());
    VG_CHECK(m && !vg_flow_forward(m, x, 1, &c3, false, true, NULL) && strstr(vg_last_error(), "condition"),
             "conditional spline with 3 condition channels (built for 2) refused: %s", vg_last_error());
    vg_scope_end();
    vg_nn_free(m);
  }
  /* InvertibleSigmoid's reverse outside (0, 1) is NaN (log of a negative), as FrEIA */
  vg_nn_module *s = vg_flow_inv_sigmoid_new(D1(2));
  vg_scope_begin();
  vg_tensor *y = vg_flow_forward(s, vg_from_data(VG_F32, 2, (int64_t[]){1, 2}, (float[]){1.5f, 0.5f}), 0, NULL, true, false, NULL);
  float *h = host(y);
  VG_CHECK(isnan(h[0]) && fabsf(h[1]) < 1e-7f, "InvertibleSigmoid reverse: NaN outside (0,1), logit(0.5) = %g", h[1]);
  free(h);
  /* the forward log-det stays finite where FrEIA's naive form overflows (|x| > 88) */
  vg_tensor *ld;
  vg_flow_forward(s, vg_from_data(VG_F32, 2, (int64_t[]){1, 2}, (float[]){100.f, -100.f}), 0, NULL, false, true, &ld);
  float l0 = vg_item(ld);
  VG_CHECK(isfinite(l0) && fabsf(l0 + 200.f) < 1e-3f, "InvertibleSigmoid log-det at +-100: %g (= -200)", l0);
  vg_scope_end();
  vg_nn_free(s);
}

/* The reshaping modules inside a SequenceINN (shape-changing blocks in a chain): Haar down,
 * a GLOW coupling on (12, 2, 3), IRevNet up back to (3, 4, 6): inverse, log-det sum, dims. */
static vg_nn_module *conv_sub(int64_t cin, int64_t cout, void *u) {
  (void)u; return vg_flow_subnet_conv_new(cin, cout, 3, 8, 5);
}
static void test_sequence(void) {
  vg_nn_module *s = vg_flow_sequence_new(D3(3, 4, 6));
  int64_t d[4];
  VG_CHECK(vg_flow_sequence_append(s, vg_flow_haar_down_new(D3(3, 4, 6), (vg_flow_haar_opts){.rebalance = 0.5}), -1) == 0,
           "SequenceINN: append HaarDownsampling");
  int nd = vg_flow_sequence_dims(s, 1, d);
  VG_CHECK(nd == 3 && d[0] == 12 && d[1] == 2 && d[2] == 3, "SequenceINN: dims after Haar (12, 2, 3)");
  vg_flow_sequence_append(s, vg_flow_glow_new(D3(12, 2, 3), 0, (vg_flow_subnet){conv_sub, NULL}, (vg_flow_coupling_opts){0}), -1);
  vg_flow_sequence_append(s, vg_flow_irevnet_up_new(D3(12, 2, 3), false), -1);
  vg_flow_sequence_append(s, vg_flow_inv_auto_act_new(D3(3, 4, 6), 0, false), -1);
  VG_CHECK(vg_flow_sequence_len(s) == 4 && vg_nn_get(s, "module_list.0.haar_weights") && vg_nn_get(s, "module_list.2.downsample_kernel")
           && vg_nn_get(s, "module_list.3.alpha"), "SequenceINN: 4 blocks, FrEIA names (module_list.0.haar_weights ...)");
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){2, 3, 4, 6}, 8), *ld, *ldr;
  vg_tensor *y = vg_flow_forward(s, x, 0, NULL, false, true, &ld);
  vg_tensor *xr = y ? vg_flow_forward(s, y, 0, NULL, true, true, &ldr) : NULL;
  double e = INFINITY;
  if (xr) {
    float *a = host(x), *b = host(xr), *l1 = host(ld), *l2 = host(ldr);
    e = 0;
    for (int i = 0; i < 144; i++) e = fmax(e, fabs(a[i] - b[i]));
    for (int i = 0; i < 2; i++) e = fmax(e, fabs(l1[i] + l2[i]));
    free(a); free(b); free(l1); free(l2);
  }
  VG_CHECK(y && y->shape[1] == 3 && e < 1e-5, "SequenceINN Haar/GLOW/IRevNet-up/InvAutoAct: inverse and log-det (err %.1e)", e);
  vg_tensor *smp = vg_flow_sample(s, 2, 0, NULL, 3);
  VG_CHECK(smp && smp->shape[1] == 3 && smp->shape[2] == 4 && smp->shape[3] == 6, "SequenceINN sample: (2, 3, 4, 6)");
  vg_scope_end();
  vg_nn_free(s);
}

/* The spline's FrEIA buffers (spline_base.default_domain, ...; an i32 and a bool among them)
 * round-trip through a checkpoint and take effect when loaded into a spline built with other
 * options, as in FrEIA (where forward reads the buffers). */
static void test_spline_buffers(void) {
  vg_flow_subnet mlp = {mlp_sub, &H4};
  vg_nn_module *a = vg_flow_rq_spline_new(D1(4), 0, mlp, (vg_flow_rqs_opts){.bins = 3, .domain = {-1, 2, -2, 1.5}, .min_bin_height = 0.3});
  vg_nn_module *b = vg_flow_rq_spline_new(D1(4), 0, mlp, (vg_flow_rqs_opts){.bins = 3});
  vg_nn_list sd = vg_nn_state_dict(a);
  for (int i = 0; i < sd.n; i++)
    if (sd.tensors[i]->dtype == VG_F32 && sd.tensors[i]->requires_grad) vg_normal_(sd.tensors[i], 0.f, 0.3f, (uint64_t)i + 40);
  vg_nn_list_free(&sd);
  char path[64];
  snprintf(path, sizeof path, "/tmp/vg_zoo_spline_%d.safetensors", (int)getpid());
  vg_clear_error();
  vg_status st = vg_nn_checkpoint_save(path, a, NULL, NULL);
  vg_status lt = st == VG_OK ? vg_nn_checkpoint_load(path, b, NULL, NULL) : st;
  unlink(path);
  VG_CHECK(st == VG_OK && lt == VG_OK, "spline checkpoint save + load (%s)", vg_last_error());
  vg_tensor *dom = vg_nn_get(b, "spline_base.default_domain"), *bins = vg_nn_get(b, "spline_base.bins");
  float d[4] = {0}, nb = 0;
  if (dom) vg_to_host(dom, VG_F32, d);
  if (bins) vg_to_host(bins, VG_F32, &nb);
  VG_CHECK(d[0] == -1.f && d[3] == 1.5f && nb == 3.f && bins->dtype == VG_I32 && vg_nn_get(b, "spline_base.identity_tails")->dtype == VG_BOOL,
           "spline_base buffers loaded (domain %g..%g, bins %g, i32 / bool kept)", d[0], d[1], nb);
  vg_scope_begin();
  vg_tensor *x = vg_scale(vg_randn(2, (int64_t[]){5, 4}, 9), 2.f), *la, *lb;
  vg_tensor *ya = vg_flow_forward(a, x, 0, NULL, false, true, &la), *yb = vg_flow_forward(b, x, 0, NULL, false, true, &lb);
  float *pa = host(ya), *pb = host(yb);
  bool same = !memcmp(pa, pb, sizeof(float) * 20);
  free(pa); free(pb);
  VG_CHECK(same, "a spline loaded from a checkpoint with another domain computes as the saved one");
  vg_scope_end();
  vg_nn_free(a);
  vg_nn_free(b);
}

/* Every case on the CUDA backend (a GPU or the host emulator: make CUDA_EMU=1): FrEIA's
 * weights moved with vg_nn_to, forward and reverse vs the fixture; SKIP without CUDA. */
static void test_device(void) {
  if (!vg_cuda_available()) {
    printf("SKIP zoo modules on CUDA: %s\n", vg_last_error());
    vg_clear_error();
    return;
  }
  for (int ci = 0; ci < NCASES; ci++) {
    const char *k = CASES[ci];
    g_fx = ci < FIRST_RQS ? g_zoo : g_rqs;
    vg_nn_module *m = build(k);
    vg_nn_list sd = vg_nn_state_dict(m);
    for (int i = 0; i < sd.n; i++) {
      char what[300];
      snprintf(what, sizeof what, "p.%s", sd.names[i]);
      const vg_fx_tensor *p = fxget(k, what);
      vg_tensor *src = vg_from_data(VG_F32, sd.tensors[i]->ndim, sd.tensors[i]->shape, p->data);
      vg_copy_(sd.tensors[i], src);
      vg_tensor_free(src);
    }
    vg_nn_list_free(&sd);
    VG_CHECK(vg_nn_to(m, VG_CUDA, VG_F32) == VG_OK, "%s: moved to CUDA", k);
    vg_scope_begin();
    const vg_fx_tensor *fc = fxget(k, "c");
    vg_tensor *c = fc ? vg_to_device(fxtensor(fc), VG_CUDA) : NULL, *ld = NULL, *ldr = NULL;
    vg_tensor *y = vg_flow_forward(m, vg_to_device(fxtensor(fxget(k, "x")), VG_CUDA), c ? 1 : 0, &c, false, true, &ld);
    vg_tensor *xr = vg_flow_forward(m, vg_to_device(fxtensor(fxget(k, "z")), VG_CUDA), c ? 1 : 0, &c, true, true, &ldr);
    double tv = ci >= FIRST_RQS ? 1e-5 : 1e-6;
    VG_CHECK(y && y->device == VG_CUDA && xr && ld && ld->device == VG_CUDA, "%s: runs on CUDA (%s)", k, vg_last_error());
    double e = fmax(fmax(cmp(k, "CUDA y", y, fxget(k, "y"), tv), cmp(k, "CUDA logdet", ld, fxget(k, "ld"), tv)),
                    fmax(cmp(k, "CUDA reverse", xr, fxget(k, "xr"), tv), cmp(k, "CUDA reverse logdet", ldr, fxget(k, "ldr"), tv)));
    printf("SUMMARY CUDA %-17s max rel err %.2e\n", k, e);
    vg_scope_end();
    vg_nn_free(m);
  }
}

int main(void) {
  g_zoo = vg_fixture_load(vg_test_fixture("flow_zoo.bin"));
  g_rqs = vg_fixture_load(vg_test_fixture("flow_zoo_rqs.bin"));
  if (!VG_CHECK(g_zoo && g_rqs, "flow_zoo.bin and flow_zoo_rqs.bin load")) return vg_test_finish();
  for (int i = 0; i < NCASES; i++) { g_fx = i < FIRST_RQS ? g_zoo : g_rqs; conformance(i); }
  for (int i = 0; i < NCASES; i++) { g_fx = i < FIRST_RQS ? g_zoo : g_rqs; block_checks(i); }
  g_fx = g_zoo;
  printf("SUMMARY worst over %d modules: y %.2e  logdet %.2e  grads %.2e  reverse %.2e\n", NCASES, g_worst.y, g_worst.ld,
         g_worst.g, g_worst.rev);
  test_orth_correction();
  test_errors();
  test_sequence();
  test_spline_buffers();
  test_device();
  vg_fixture_free(g_zoo);
  vg_fixture_free(g_rqs);
  return vg_test_finish();
}
