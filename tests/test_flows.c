/* test_flows.c — flows/: FrEIA 0.2 conformance (tests/fixtures/flow_*.bin from
 * tools/gen_flow_fixtures.py: identical weights, outputs, log-dets, grads of
 * L = sum(y^2)/2 - sum(logdet)), invertibility, log-det vs the autograd Jacobian's
 * log|det| (double LU), forward log-det = -reverse log-det, gradcheck, SequenceINN. */
#include "tests/vgtest.h"
#include "tests/common/flow_weights.h"
#include "tests/common/fixture.h"
#include "flows/flows.h"
#include <string.h>

/* ------------------------------------------------------------ builders */
static int64_t g_hidden;
static vg_nn_module *conv_sub(int64_t cin, int64_t cout, void *u) {
  (void)u; return vg_flow_subnet_conv_new(cin, cout, 3, g_hidden, 11);
}
static vg_nn_module *mlp_sub(int64_t cin, int64_t cout, void *u) {
  (void)u; return vg_flow_subnet_mlp_new(cin, cout, g_hidden > 0 ? g_hidden : 2 * cin, 13);
}
static const vg_flow_subnet CONV = {conv_sub, NULL}, MLP = {mlp_sub, NULL};
#define D1(c) 1, (int64_t[]){c}
#define D3(c, h, w) 3, (int64_t[]){c, h, w}

static vg_nn_module *build(const char *name) {
  if (!strcmp(name, "aio_hard_2d")) { g_hidden = 6; return vg_flow_allinone_new(D3(5, 4, 4), 0, CONV, (vg_flow_allinone_opts){.affine_clamping = 2.0}); }
  if (!strcmp(name, "aio_soft_1d")) { g_hidden = 10; return vg_flow_allinone_new(D1(7), 0, MLP, (vg_flow_allinone_opts){.affine_clamping = 1.5, .global_affine_type = VG_FLOW_GA_SIGMOID, .permute_soft = true}); }
  if (!strcmp(name, "aio_scaled_2d")) { g_hidden = 5; return vg_flow_allinone_new(D3(4, 3, 3), 0, CONV, (vg_flow_allinone_opts){.affine_clamping = 0.5, .clamp_mode = VG_FLOW_CLAMP_TANH_SCALED, .global_affine_type = VG_FLOW_GA_EXP, .permute_soft = true, .reverse_permutation = true}); }
  if (!strcmp(name, "aio_scaled_1d")) { g_hidden = 8; return vg_flow_allinone_new(D1(6), 0, MLP, (vg_flow_allinone_opts){.affine_clamping = 0.3, .clamp_mode = VG_FLOW_CLAMP_TANH_SCALED}); }
  if (!strcmp(name, "aio_gin_1d")) { g_hidden = 8; return vg_flow_allinone_new(D1(6), 0, MLP, (vg_flow_allinone_opts){.gin_block = true}); }
  if (!strcmp(name, "aio_hh_1d")) { g_hidden = 8; return vg_flow_allinone_new(D1(5), 0, MLP, (vg_flow_allinone_opts){.learned_householder_permutation = 2}); }
  if (!strcmp(name, "aio_cond_2d")) { g_hidden = 6; return vg_flow_allinone_new(D3(4, 3, 3), 3, CONV, (vg_flow_allinone_opts){0}); }
  if (!strcmp(name, "cflow_1d")) {
    g_hidden = 0;
    vg_nn_module *s = vg_flow_sequence_new(D1(64));
    for (int i = 0; i < 2; i++)
      vg_flow_append_allinone(s, 0, 128, MLP, (vg_flow_allinone_opts){.affine_clamping = 1.9, .permute_soft = true, .seed = (uint64_t)i});
    return s;
  }
  if (!strcmp(name, "fastflow_2d")) {
    g_hidden = 8;
    vg_nn_module *s = vg_flow_sequence_new(D3(8, 5, 5));
    for (int i = 0; i < 2; i++)
      vg_flow_append_allinone(s, -1, 0, CONV, (vg_flow_allinone_opts){.affine_clamping = 2.0, .seed = (uint64_t)i});
    return s;
  }
  if (!strcmp(name, "glow_2d")) { g_hidden = 4; return vg_flow_glow_new(D3(5, 3, 3), 0, CONV, (vg_flow_coupling_opts){.clamp = 2.0}); }
  if (!strcmp(name, "glow_1d_cond")) { g_hidden = 6; return vg_flow_glow_new(D1(5), 3, MLP, (vg_flow_coupling_opts){.clamp = 1.0, .clamp_activation = VG_FLOW_CLAMP_TANH}); }
  if (!strcmp(name, "rnvp_1d")) { g_hidden = 6; return vg_flow_rnvp_new(D1(6), 0, MLP, (vg_flow_coupling_opts){.clamp = 1.5, .clamp_activation = VG_FLOW_CLAMP_SIGMOID}); }
  if (!strcmp(name, "rnvp_2d_cond")) { g_hidden = 4; return vg_flow_rnvp_new(D3(4, 3, 3), 2, CONV, (vg_flow_coupling_opts){0}); }
  if (!strcmp(name, "nice_1d")) { g_hidden = 6; return vg_flow_nice_new(D1(7), 0, MLP, (vg_flow_coupling_opts){0}); }
  if (!strcmp(name, "gin_2d")) { g_hidden = 4; return vg_flow_gin_new(D3(4, 3, 3), 0, CONV, (vg_flow_coupling_opts){0}); }
  if (!strcmp(name, "onesided_1d")) { g_hidden = 6; return vg_flow_affine_onesided_new(D1(5), 2, MLP, (vg_flow_coupling_opts){0}); }
  if (!strcmp(name, "condaff_2d")) { g_hidden = 4; return vg_flow_cond_affine_new(D3(3, 3, 3), 2, CONV, (vg_flow_coupling_opts){0}); }
  if (!strcmp(name, "actnorm_2d")) return vg_flow_actnorm_new(D3(3, 4, 4));
  if (!strcmp(name, "actnorm_1d")) return vg_flow_actnorm_new(D1(5));
  if (!strcmp(name, "permute_2d")) return vg_flow_permute_random_new(D3(5, 2, 2), 3);
  if (!strcmp(name, "fixed1x1_2d")) return vg_flow_fixed_linear_new(D3(4, 3, 3), NULL, 0);
  if (!strcmp(name, "fixedlin_1d")) return vg_flow_fixed_linear_new(D1(4), NULL, 0);
  return NULL;
}
static const char *CASES[] = {"aio_hard_2d", "aio_soft_1d", "aio_scaled_2d", "aio_scaled_1d", "aio_gin_1d",
  "aio_hh_1d", "aio_cond_2d", "cflow_1d", "fastflow_2d", "glow_2d", "glow_1d_cond", "rnvp_1d",
  "rnvp_2d_cond", "nice_1d", "gin_2d", "onesided_1d", "condaff_2d", "actnorm_2d", "actnorm_1d",
  "permute_2d", "fixed1x1_2d", "fixedlin_1d"};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

static float *host(const vg_tensor *t) {
  float *b = malloc(sizeof(float) * (size_t)vg_numel(t));
  vg_to_host(t, VG_F32, b);
  return b;
}

/* |got - want| <= tol * (|want| + max|want|) + floor (1e-5 for grads, 1e-7 for values):
 * relative to the tensor's scale; the floor covers grads that are 0 analytically
 * (ActNorm bias after data init, Householder vectors under an orthogonal map). */
static double check_fx(const char *cname, const char *what, const vg_tensor *got, const float *want, int64_t n, double tol) {
  if (!got) { VG_CHECK(0, "%s %s: no result (%s)", cname, what, vg_last_error()); return INFINITY; }
  float *g = host(got);
  int64_t ng = vg_numel(got);
  if (ng < n) n = ng;
  double ref = 0, mx = 0;
  bool ok = true;
  for (int64_t i = 0; i < n; i++) ref = fmax(ref, fabs(want[i]));
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)g[i] - want[i]);
    double r = e / (fabs(want[i]) + ref + 1e-30);
    mx = fmax(mx, r);
    if (!(e <= tol * (fabs(want[i]) + ref) + (tol > 1e-5 ? 1e-5 : 1e-7))) ok = false;
  }
  VG_CHECK(ok, "%s %s vs FrEIA: max rel err %.2e (tol %.0e)", cname, what, mx, tol);
  free(g);
  return mx;
}

static void conformance(const char *cname) {
  char fn[128];
  snprintf(fn, sizeof fn, "flow_%s.bin", cname);
  vg_fixture *fx = vg_fixture_load(vg_test_fixture(fn));
  if (!VG_CHECK(fx, "%s: fixture loads", cname)) return;
  vg_nn_module *m = build(cname);
  if (!VG_CHECK(m, "%s: builds (%s)", cname, vg_last_error())) { vg_fixture_free(fx); return; }
  vg_nn_list sd = vg_nn_state_dict(m);
  bool names_ok = true;
  for (int i = 0; i < sd.n; i++) {
    char key[256];
    snprintf(key, sizeof key, "p.%s", sd.names[i]);
    const vg_fx_tensor *p = vg_fixture_get(fx, key);
    if (p) {
      if (p->n != vg_numel(sd.tensors[i])) { names_ok = false; continue; }
      vg_tensor *src = vg_from_data(VG_F32, sd.tensors[i]->ndim, sd.tensors[i]->shape, p->data);
      vg_copy_(sd.tensors[i], src);
      vg_tensor_free(src);
    } else if (sd.tensors[i]->dtype == VG_F32) {
      vg_test_flow_weights(sd.names[i], sd.tensors[i]);
    } else names_ok = false;
  }
  /* every exported p.* must exist in our state dict */
  for (int i = 0; i < fx->count; i++)
    if (!strncmp(fx->t[i].name, "p.", 2)) {
      bool found = false;
      for (int k = 0; k < sd.n; k++) found |= !strcmp(sd.names[k], fx->t[i].name + 2);
      names_ok &= found;
    }
  VG_CHECK(names_ok, "%s: state-dict names and sizes match FrEIA's", cname);
  const vg_fx_tensor *fxx = vg_fixture_get(fx, "x"), *fc = vg_fixture_get(fx, "c");
  vg_tensor *x = vg_from_data(VG_F32, fxx->ndim, fxx->shape, fxx->data);
  vg_requires_grad_(x, true);
  vg_tensor *c = fc ? vg_from_data(VG_F32, fc->ndim, fc->shape, fc->data) : NULL;
  vg_scope_begin();
  vg_tensor *ld = NULL;
  vg_tensor *y = vg_flow_forward(m, x, c ? 1 : 0, c ? &c : NULL, false, true, &ld);
  const vg_fx_tensor *fy = vg_fixture_get(fx, "y"), *fld = vg_fixture_get(fx, "ld"), *fgx = vg_fixture_get(fx, "gx");
  double ey = check_fx(cname, "y", y, fy->data, fy->n, 1e-5);
  double el = check_fx(cname, "logdet", ld, fld->data, fld->n, 1e-5);
  double eg = 0;
  if (y && ld && fgx) {
    vg_tensor *loss = vg_sub(vg_scale(vg_sum_all(vg_mul(y, y)), 0.5f), vg_sum_all(ld));
    vg_backward(loss);
    eg = fmax(eg, check_fx(cname, "grad x", x->grad, fgx->data, fgx->n, 1e-4));
    vg_nn_list ps = vg_nn_named_parameters(m);
    for (int i = 0; i < ps.n; i++) {
      if (!ps.tensors[i]->requires_grad) continue;
      char key[256];
      snprintf(key, sizeof key, "g.%s", ps.names[i]);
      const vg_fx_tensor *g = vg_fixture_get(fx, key);
      if (!VG_CHECK(g && ps.tensors[i]->grad, "%s: grad of %s present", cname, ps.names[i])) continue;
      char what[300];
      snprintf(what, sizeof what, "grad %s", ps.names[i]);
      eg = fmax(eg, check_fx(cname, what, ps.tensors[i]->grad, g->data, g->n, 1e-4));
    }
    vg_nn_list_free(&ps);
  }
  /* invertibility on the fixture's data */
  vg_no_grad_begin();
  vg_tensor *ldr = NULL;
  vg_tensor *xr = vg_flow_forward(m, y, c ? 1 : 0, c ? &c : NULL, true, true, &ldr);
  double inv = 0, lsum = 0;
  if (xr && ldr) {
    float *a = host(xr), *b = host(x), *l1 = host(ld), *l2 = host(ldr);
    for (int64_t i = 0; i < vg_numel(x); i++) inv = fmax(inv, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
    for (int64_t i = 0; i < vg_numel(ld); i++) lsum = fmax(lsum, fabs(l1[i] + l2[i]) / fmax(1.0, fabs(l1[i])));
    free(a); free(b); free(l1); free(l2);
  }
  vg_no_grad_end();
  VG_CHECK(xr && inv < 1e-5, "%s: reverse(forward(x)) = x, max err %.2e", cname, inv);
  VG_CHECK(ldr && lsum < 1e-5, "%s: forward logdet = -reverse logdet, max err %.2e", cname, lsum);
  printf("SUMMARY %-14s y %.2e  logdet %.2e  grads %.2e  inv %.2e\n", cname, ey, el, eg, inv);
  vg_scope_end();
  vg_nn_list_free(&sd);
  vg_tensor_free(x); vg_tensor_free(c);
  vg_nn_free(m);
  vg_fixture_free(fx);
}

/* ------------------------------------------------------------ brute-force Jacobian */
static double logdet_lu(int n, double *a) {
  double ld = 0;
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++) if (fabs(a[r * n + c]) > fabs(a[p * n + c])) p = r;
    if (p != c) for (int j = 0; j < n; j++) { double t = a[c * n + j]; a[c * n + j] = a[p * n + j]; a[p * n + j] = t; }
    double piv = a[c * n + c];
    ld += log(fabs(piv));
    for (int r = c + 1; r < n; r++) {
      double f = a[r * n + c] / piv;
      for (int j = c; j < n; j++) a[r * n + j] -= f * a[c * n + j];
    }
  }
  return ld;
}

/* Jacobian of sample 0 via autograd rows (N = 2 so batch-coupled bugs show) */
static void jac_check(const char *cname, vg_nn_module *m, int ndim, const int64_t *shape, const vg_tensor *c, bool rev) {
  int64_t N = shape[0], D = 1;
  for (int i = 1; i < ndim; i++) D *= shape[i];
  vg_tensor *x = vg_randn(ndim, shape, 99);   /* heap (no scope) */
  vg_requires_grad_(x, true);
  double *J = malloc(sizeof(double) * (size_t)(D * D));
  float *ldv = NULL;
  for (int64_t k = 0; k < D; k++) {
    vg_scope_begin();
    vg_tensor *ld;
    vg_tensor *y = vg_flow_forward(m, x, c ? 1 : 0, c ? (vg_tensor *[]){(vg_tensor *)c} : NULL, rev, true, &ld);
    if (!y) { VG_CHECK(0, "%s: forward (%s)", cname, vg_last_error()); vg_scope_end(); free(J); vg_tensor_free(x); return; }
    if (k == 0) ldv = host(ld);
    vg_tensor *seed = vg_zeros(VG_F32, y->ndim, y->shape);
    vg_f32(seed)[k] = 1.f;      /* sample 0, element k */
    vg_zero_grad_(x);
    vg_backward_with(y, seed);
    float *g = vg_f32(x->grad);
    for (int64_t j = 0; j < D; j++) J[k * D + j] = g[j];
    vg_scope_end();
  }
  (void)N;
  double bf = logdet_lu((int)D, J);
  double err = fabs(bf - ldv[0]) / fmax(1.0, fabs(bf));
  VG_CHECK(err < 1e-4, "%s%s: logdet %.6f vs brute-force Jacobian log|det| %.6f (err %.1e)", cname, rev ? " (reverse)" : "", ldv[0], bf, err);
  free(ldv); free(J);
  vg_tensor_free(x);
}

typedef struct { vg_nn_module *m; int nc; } gc_ctx;
static vg_tensor *gc_fn(vg_tensor *const *in, void *ctx) {
  gc_ctx *g = ctx;
  vg_tensor *ld;
  vg_tensor *y = vg_flow_forward(g->m, in[0], g->nc, g->nc ? &in[1] : NULL, false, true, &ld);
  vg_tensor *yf = vg_reshape(y, 1, (int64_t[]){-1});
  return vg_concat(2, (vg_tensor *[]){yf, ld}, 0);
}

static void block_checks(const char *cname) {
  vg_nn_module *m = build(cname);
  if (!m) return;
  vg_nn_list sd = vg_nn_state_dict(m);
  for (int i = 0; i < sd.n; i++) {
    if (sd.tensors[i]->dtype == VG_F32 && !sd.tensors[i]->requires_grad) continue;  /* keep perms */
    if (sd.tensors[i]->dtype == VG_F32) vg_test_flow_weights(sd.names[i], sd.tensors[i]);
  }
  vg_nn_list_free(&sd);
  /* input dims and condition channels: from the case's fixture */
  int64_t dims[4], cc = 0;
  int nd = 0;
  {
    char fn[128];
    snprintf(fn, sizeof fn, "flow_%s.bin", cname);
    vg_fixture *fx = vg_fixture_load(vg_test_fixture(fn));
    if (!VG_CHECK(fx, "%s: fixture loads", cname)) { vg_nn_free(m); return; }
    const vg_fx_tensor *fxx = vg_fixture_get(fx, "x"), *fc = vg_fixture_get(fx, "c");
    nd = fxx->ndim - 1;
    for (int i = 0; i < nd; i++) dims[i] = fxx->shape[i + 1];
    if (fc) cc = fc->shape[1];
    vg_fixture_free(fx);
  }
  int64_t shape[5] = {2};
  for (int i = 0; i < nd; i++) shape[i + 1] = dims[i];
  /* shape inference */
  int64_t od[4];
  VG_CHECK(vg_flow_output_dims(m, nd, dims, od) == nd && od[0] == dims[0], "%s: output_dims", cname);
  if (!strncmp(cname, "actnorm", 7)) {     /* data-dependent init on a first batch */
    int64_t s4[5] = {4};
    for (int i = 0; i < nd; i++) s4[i + 1] = dims[i];
    vg_tensor *xi = vg_randn(nd + 1, s4, 5);
    vg_scope_begin();
    vg_flow_forward(m, xi, 0, NULL, false, false, NULL);
    vg_scope_end();
    vg_tensor_free(xi);
  }
  vg_tensor *c = NULL;
  if (cc) {
    int64_t cs[5] = {2, cc};
    for (int i = 1; i < nd; i++) cs[i + 1] = dims[i];
    c = vg_randn(nd + 1, cs, 17);
  }
  if (strcmp(cname, "cflow_1d")) {      /* 64-dim Jacobian: fine but keep the test fast */
    jac_check(cname, m, nd + 1, shape, c, false);
    jac_check(cname, m, nd + 1, shape, c, true);
  }
  /* invertibility on random data at two scales */
  for (int sc = 1; sc <= 4; sc *= 4) {
    vg_scope_begin();
    vg_no_grad_begin();
    vg_tensor *x = vg_scale(vg_randn(nd + 1, shape, 21 + sc), (float)sc);
    vg_tensor *ld1, *ld2;
    vg_tensor *y = vg_flow_forward(m, x, c ? 1 : 0, c ? &c : NULL, false, true, &ld1);
    vg_tensor *xr = vg_flow_forward(m, y, c ? 1 : 0, c ? &c : NULL, true, true, &ld2);
    double e = INFINITY, el = INFINITY;
    if (xr) {
      float *a = host(xr), *b = host(x), *l1 = host(ld1), *l2 = host(ld2);
      e = 0; el = 0;
      for (int64_t i = 0; i < vg_numel(x); i++) e = fmax(e, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
      for (int64_t i = 0; i < shape[0]; i++) el = fmax(el, fabs(l1[i] + l2[i]) / fmax(1.0, fabs(l1[i])));
      free(a); free(b); free(l1); free(l2);
    }
    vg_no_grad_end();
    vg_scope_end();
    VG_CHECK(e < 1e-5 && el < 1e-5, "%s: random x*%d: reverse(forward) err %.2e, logdet sum err %.2e", cname, sc, e, el);
  }
  /* gradcheck wrt x (and condition) */
  {
    vg_tensor *x = vg_randn(nd + 1, shape, 31);
    vg_requires_grad_(x, true);
    vg_tensor *cin = c ? vg_tensor_clone_heap(c) : NULL;
    if (cin) vg_requires_grad_(cin, true);
    gc_ctx g = {m, c ? 1 : 0};
    vg_tensor *ins[2] = {x, cin};
    double e = vg_gradcheck(gc_fn, c ? 2 : 1, ins, &g, 3e-3);
    VG_CHECK(e < 2e-2, "%s: gradcheck wrt x%s: max rel err %.2e", cname, c ? ", cond" : "", e);
    vg_tensor_free(x); vg_tensor_free(cin);
  }
  vg_tensor_free(c);
  vg_nn_free(m);
}

/* ------------------------------------------------------------ misc */
static void test_special_ortho(void) {
  int n = 9;
  double *H = malloc(sizeof(double) * 81);
  vg_flow_special_ortho(n, 3, H);
  double e = 0;
  for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
    double s = 0;
    for (int k = 0; k < n; k++) s += H[i * n + k] * H[j * n + k];
    e = fmax(e, fabs(s - (i == j)));
  }
  double *A = malloc(sizeof(double) * 81);
  memcpy(A, H, sizeof(double) * 81);
  /* det sign: LU with sign tracking */
  double det = 1;
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++) if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
    if (p != c) { det = -det; for (int j = 0; j < n; j++) { double t = A[c * n + j]; A[c * n + j] = A[p * n + j]; A[p * n + j] = t; } }
    det *= A[c * n + c];
    for (int r = c + 1; r < n; r++) { double f = A[r * n + c] / A[c * n + c]; for (int j = c; j < n; j++) A[r * n + j] -= f * A[c * n + j]; }
  }
  VG_CHECK(e < 1e-12 && fabs(det - 1) < 1e-9, "special_ortho(9): orthogonal (err %.1e), det %.12f", e, det);
  free(H); free(A);
}

static void test_sequence(void) {
  g_hidden = 6;
  vg_nn_module *s = vg_flow_sequence_new(D3(4, 3, 3));
  for (int i = 0; i < 3; i++) vg_flow_append_allinone(s, -1, 0, CONV, (vg_flow_allinone_opts){.seed = (uint64_t)i});
  VG_CHECK(vg_flow_sequence_len(s) == 3, "SequenceINN: 3 blocks");
  vg_nn_list sd = vg_nn_state_dict(s);
  VG_CHECK(sd.n > 0 && !strcmp(sd.names[0], "module_list.0.global_scale") && vg_nn_get(s, "module_list.2.subnet.2.weight")
           && vg_nn_get(s, "module_list.1.w_perm_inv"), "SequenceINN: FrEIA state-dict names (%s ...)", sd.n ? sd.names[0] : "");
  vg_nn_list_free(&sd);
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){2, 4, 3, 3}, 1), *ld, *la, *lb;
  vg_tensor *y = vg_flow_forward(s, x, 0, NULL, false, true, &ld);
  vg_tensor *h = vg_flow_sequence_forward_range(s, 0, 1, x, 0, NULL, false, true, &la);
  vg_tensor *y2 = vg_flow_sequence_forward_range(s, 1, 3, h, 0, NULL, false, true, &lb);
  float *a = host(y), *b = host(y2), *l = host(ld), *l2 = host(vg_add(la, lb));
  double e = 0;
  for (int i = 0; i < 72; i++) e = fmax(e, fabs(a[i] - b[i]));
  for (int i = 0; i < 2; i++) e = fmax(e, fabs(l[i] - l2[i]));
  VG_CHECK(e < 1e-5, "SequenceINN slicing [0,1) + [1,3) = whole (err %.1e)", e);
  free(a); free(b); free(l); free(l2);
  vg_tensor *smp = vg_flow_sample(s, 3, 0, NULL, 5);
  VG_CHECK(smp && smp->shape[0] == 3 && smp->ndim == 4, "sampling: reverse of N(0,I) has shape (3,4,3,3)");
  /* one training step lowers the NLL */
  vg_scope_end();
  vg_nn_list ps = vg_nn_named_parameters(s);
  vg_optim *opt = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 1e-2));
  vg_optim_add_group(opt, ps.n, ps.tensors, NULL);
  vg_tensor *xd = vg_randn(4, (int64_t[]){8, 4, 3, 3}, 77);
  float first = 0, last = 0;
  for (int it = 0; it < 30; it++) {
    vg_scope_begin();
    vg_tensor *ldd;
    vg_tensor *z = vg_flow_forward(s, xd, 0, NULL, false, true, &ldd);
    vg_tensor *loss = vg_neg(vg_mean_all(vg_add(vg_flow_gaussian_logp(z), ldd)));
    float lv = vg_item(loss);
    if (it == 0) first = lv;
    last = lv;
    vg_optim_zero_grad(opt);
    vg_backward(loss);
    vg_optim_step(opt);
    vg_scope_end();
  }
  VG_CHECK(last < first - 1.0f, "training: NLL %.3f -> %.3f after 30 Adam steps", first, last);
  vg_tensor_free(xd);
  vg_optim_free(opt);
  vg_nn_list_free(&ps);
  /* errors */
  vg_scope_begin();
  vg_tensor *bad = vg_randn(4, (int64_t[]){2, 5, 3, 3}, 1);
  VG_CHECK(!vg_flow_forward(s, bad, 0, NULL, false, true, NULL) && strlen(vg_last_error()), "wrong channel count rejected: %s", vg_last_error());
  vg_scope_end();
  vg_nn_free(s);
}

/* The block contract across families: every family's module is a flow with the kind name
 * FrEIA uses, keeps its dims (output_dims, sample), refuses other dims, and the functions
 * that need one family's state (SequenceINN's, ActNorm's) refuse or ignore every other
 * family instead of reading a state that is not theirs. */
static void test_contract(void) {
  static const char *kinds[] = {"AllInOneBlock", "AllInOneBlock", "AllInOneBlock", "AllInOneBlock", "AllInOneBlock",
      "AllInOneBlock", "AllInOneBlock", "SequenceINN", "SequenceINN", "GLOWCouplingBlock", "GLOWCouplingBlock",
      "RNVPCouplingBlock", "RNVPCouplingBlock", "NICECouplingBlock", "GINCouplingBlock", "AffineCouplingOneSided",
      "ConditionalAffineTransform", "ActNorm", "ActNorm", "PermuteRandom", "Fixed1x1Conv", "FixedLinearTransform"};
  _Static_assert(sizeof kinds / sizeof kinds[0] == sizeof CASES / sizeof CASES[0], "one kind per case");
  vg_nn_module *plain = vg_nn_relu_new();
  VG_CHECK(!vg_flow_is_flow(plain) && !vg_flow_is_flow(NULL), "a ReLU module is not a flow");
  vg_scope_begin();
  VG_CHECK(!vg_flow_forward(plain, vg_zeros(VG_F32, 2, (int64_t[]){1, 2}), 0, NULL, false, false, NULL) &&
               strstr(vg_last_error(), "not a flow"), "vg_flow_forward on a ReLU refused: %s", vg_last_error());
  vg_scope_end();
  VG_CHECK(vg_flow_sequence_len(plain) == 0 && !vg_flow_sequence_get(plain, 0), "SequenceINN look-ups on a ReLU: none");
  vg_nn_free(plain);
  for (int i = 0; i < NCASES; i++) {
    vg_nn_module *m = build(CASES[i]);
    bool seq = !strcmp(kinds[i], "SequenceINN");
    int64_t dims[4], od[4], wrong[4];
    VG_CHECK(!strcmp(m->kind_name, kinds[i]) && vg_flow_is_flow(m), "%s: a flow of kind %s", CASES[i], m->kind_name);
    if (!seq) VG_CHECK(vg_flow_sequence_dims(m, 0, dims) == -1, "%s: vg_flow_sequence_dims refuses a %s", CASES[i], kinds[i]);
    /* the dims from a sample (the reverse pass of N(0, I) of the module's output dims) */
    vg_scope_begin();
    vg_tensor *smp = vg_flow_sample(m, 2, 0, NULL, 9);
    int nd = smp ? smp->ndim - 1 : 0;
    for (int k = 0; k < nd; k++) dims[k] = smp->shape[k + 1];
    vg_scope_end();
    if (!smp) {   /* a conditional block samples only with its condition */
      VG_CHECK(strstr(vg_last_error(), "condition"), "%s: sampling without its condition refused: %s", CASES[i], vg_last_error());
      vg_nn_free(m);
      continue;
    }
    int ond = vg_flow_output_dims(m, nd, dims, od);
    bool same = ond == nd;
    for (int k = 0; same && k < nd; k++) same = od[k] == dims[k];
    VG_CHECK(same, "%s: output dims = input dims (%d dims, C %lld)", CASES[i], ond, (long long)dims[0]);
    for (int k = 0; k < nd; k++) wrong[k] = dims[k] + (k == 0);
    VG_CHECK(vg_flow_output_dims(m, nd, wrong, od) == -1 && strstr(vg_last_error(), "mismatch"),
             "%s: other dims refused: %s", CASES[i], vg_last_error());
    if (!seq) {
      vg_nn_module *blk = build(CASES[i]);
      VG_CHECK(vg_flow_sequence_len(m) == 0 && !vg_flow_sequence_get(m, 0) &&
                   vg_flow_sequence_append(m, blk, -1) == -1 && strstr(vg_last_error(), "not a SequenceINN"),
               "%s: SequenceINN calls on a %s refused", CASES[i], kinds[i]);
      VG_CHECK(vg_flow_append_allinone(m, -1, 0, MLP, (vg_flow_allinone_opts){0}) == -1, "%s: append_allinone refused",
               CASES[i]);
    }
    /* mark_initialized is ActNorm's alone: on any other block it changes nothing (the
     * forward stays bit-identical), on ActNorm it skips the data-dependent init */
    vg_scope_begin();
    int64_t sh[5] = {3};
    for (int k = 0; k < nd; k++) sh[k + 1] = dims[k];
    vg_tensor *x = vg_randn(nd + 1, sh, 4);
    vg_tensor *y0 = vg_flow_forward(m, x, 0, NULL, false, false, NULL);
    float *a = y0 ? host(y0) : NULL;
    vg_nn_module *m2 = build(CASES[i]);
    vg_flow_actnorm_mark_initialized(m2);
    vg_tensor *y1 = vg_flow_forward(m2, x, 0, NULL, false, false, NULL);
    float *b = y1 ? host(y1) : NULL;
    bool ident = a && b && !memcmp(a, b, sizeof(float) * (size_t)vg_numel(x));
    if (!strcmp(kinds[i], "ActNorm")) {
      float *xs = host(x);
      bool is_x = b && !memcmp(xs, b, sizeof(float) * (size_t)vg_numel(x));   /* scale 0, bias 0: identity */
      VG_CHECK(is_x && !ident, "%s: marked initialized, the first forward is the identity (no data init)", CASES[i]);
      free(xs);
    } else {
      VG_CHECK(ident, "%s: vg_flow_actnorm_mark_initialized leaves a %s alone", CASES[i], kinds[i]);
    }
    free(a); free(b);
    vg_scope_end();
    vg_nn_free(m2);
    vg_nn_free(m);
  }
}

/* The hard permutation runs as an index select only while w_perm is an exact 0/1
 * permutation matrix (-0 counts as 0); any other matrix (two ones in a row, a NaN) goes
 * through the 1x1 conv. C = 37: the scan's blocks of 16 and a rest. */
static void test_hard_perm_scan(void) {
  g_hidden = 8;
  const int64_t C = 37, HW = 4;
  vg_nn_module *m = vg_flow_allinone_new(D3(C, 2, 2), 0, CONV, (vg_flow_allinone_opts){.affine_clamping = 2.0});
  float *w = vg_f32(vg_nn_param(m, "w_perm"));
  float *w0 = malloc(sizeof(float) * (size_t)(C * C));
  memcpy(w0, w, sizeof(float) * (size_t)(C * C));
  int64_t col1 = -1;
  for (int64_t j = 0; j < C; j++) col1 = w0[C + j] == 1.f ? j : col1;
  vg_scope_begin();
  vg_no_grad_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){1, C, 2, 2}, 3), *ld;
  float *y1 = host(vg_flow_forward(m, x, 0, NULL, false, true, &ld));
  for (int64_t i = 0; i < C * C; i++) w[i] = w0[i] == 0.f ? -0.0f : w0[i];
  float *y2 = host(vg_flow_forward(m, x, 0, NULL, false, true, &ld));
  VG_CHECK(!memcmp(y1, y2, sizeof(float) * (size_t)(C * HW)), "hard perm: -0 entries count as zeros");
  memcpy(w, w0, sizeof(float) * (size_t)(C * C));
  w[col1] = 1.f;                   /* row 0 gets row 1's one too: y[0] = h[a] + h[b] */
  float *y3 = host(vg_flow_forward(m, x, 0, NULL, false, true, &ld));
  double e = 0;
  for (int64_t c = 0; c < C; c++)
    for (int64_t p = 0; p < HW; p++) {
      const double want = c == 0 ? (double)y1[p] + y1[HW + p] : y1[c * HW + p];
      e = fmax(e, fabs(y3[c * HW + p] - want));
    }
  VG_CHECK(e < 1e-5, "hard perm: a row with two ones is no permutation: the 1x1 conv applies it (err %.1e)", e);
  memcpy(w, w0, sizeof(float) * (size_t)(C * C));
  w[5 * C + (w0[5 * C + 20] == 0.f ? 20 : 21)] = NAN;
  float *y4 = host(vg_flow_forward(m, x, 0, NULL, false, true, &ld));
  int nan5 = 1, fin = 1;
  for (int64_t c = 0; c < C; c++)
    for (int64_t p = 0; p < HW; p++) {
      if (c == 5) nan5 &= isnan(y4[c * HW + p]);
      else fin &= isfinite(y4[c * HW + p]);
    }
  VG_CHECK(nan5 && fin, "hard perm: a NaN entry is no permutation: the conv carries it into row 5 only");
  vg_no_grad_end();
  vg_scope_end();
  free(y1); free(y2); free(y3); free(y4); free(w0);
  vg_nn_free(m);
}

int main(void) {
  test_special_ortho();
  for (int i = 0; i < NCASES; i++) conformance(CASES[i]);
  for (int i = 0; i < NCASES; i++) block_checks(CASES[i]);
  test_sequence();
  test_hard_perm_scan();
  test_contract();
  return vg_test_finish();
}
