/* test_flow_graph.c — flows/graph.c (GraphINN) and flows/topology.c (Split, Concat, Flatten,
 * Reshape) against FrEIA 0.2: tools/gen_flow_graph_fixtures.py builds a multi-scale graph
 * (Haar downsampling, two Splits, two Concats, Reshape, Flatten, GLOW / AllInOne / RNVP /
 * NICE couplings, two inputs, two outputs, conditions on three nodes), saves FrEIA's
 * state_dict (flow_graph_sd.pth, loaded here by name, strictly) and its outputs, log-det,
 * gradients and a reverse pass (flow_graph.bin). Also: inverse(forward) = identity,
 * log-det vs the brute-force Jacobian over both inputs, every builder error, the graph
 * modules on their own, a graph inside a SequenceINN, nested graphs and a training step. */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "flows/flows.h"
#include "nn/pth.h"
#include <math.h>
#include <string.h>

static vg_nn_module *conv4(int64_t cin, int64_t cout, void *u) {
  (void)u;
  return vg_flow_subnet_conv_new(cin, cout, 3, 4, 5);
}
static const vg_flow_subnet SUB = {conv4, NULL};
#define P(n, o) ((vg_flow_port){(n), (o)})

static float *host(const vg_tensor *t) {
  float *b = malloc(sizeof(float) * (size_t)vg_numel(t));
  vg_to_host(t, VG_F32, b);
  return b;
}

static vg_flow_dims pdims(vg_nn_module *g, int node, int out) {
  vg_flow_dims d = {0, {0}};
  vg_flow_graph_port_dims(g, P(node, out), &d);
  return d;
}

/* The fixture's graph (see tools/gen_flow_graph_fixtures.py), built from inferred dims. */
static vg_nn_module *build_fixture_graph(void) {
  vg_nn_module *g = vg_flow_graph_new();
  int x = vg_flow_graph_input(g, "x", 3, (int64_t[]){2, 8, 8});
  int x2 = vg_flow_graph_input(g, "x2", 3, (int64_t[]){2, 4, 4});
  int c1 = vg_flow_graph_condition(g, "c1", 3, (int64_t[]){3, 4, 4});
  int c2 = vg_flow_graph_condition(g, "c2", 3, (int64_t[]){2, 4, 4});
  vg_flow_dims d = pdims(g, x, 0);
  int haar = vg_flow_graph_node(g, "haar", vg_flow_haar_down_new(d.ndim, d.d, (vg_flow_haar_opts){.order_by_wavelet = true, .rebalance = 0.5}),
                                1, (vg_flow_port[]){P(x, 0)}, 0, NULL);
  d = pdims(g, haar, 0);
  int glow = vg_flow_graph_node(g, "glow", vg_flow_glow_new(d.ndim, d.d, 3, SUB, (vg_flow_coupling_opts){.clamp = 1.5}),
                                1, (vg_flow_port[]){P(haar, 0)}, 1, &c1);
  d = pdims(g, glow, 0);
  int split = vg_flow_graph_node(g, "split", vg_flow_split_new(d.ndim, d.d, 2, (int64_t[]){3, 5}, 0, 0), 1,
                                 (vg_flow_port[]){P(glow, 0)}, 0, NULL);
  d = pdims(g, split, 0);
  int aio = vg_flow_graph_node(g, "aio", vg_flow_allinone_new(d.ndim, d.d, 2, SUB, (vg_flow_allinone_opts){0}), 1,
                               (vg_flow_port[]){P(split, 0)}, 1, &c2);
  d = pdims(g, split, 1);
  int rnvp = vg_flow_graph_node(g, "rnvp", vg_flow_rnvp_new(d.ndim, d.d, 5, SUB, (vg_flow_coupling_opts){0}), 1,
                                (vg_flow_port[]){P(split, 1)}, 2, (int[]){c1, c2});
  d = pdims(g, rnvp, 0);
  int split2 = vg_flow_graph_node(g, "split2", vg_flow_split_new(d.ndim, d.d, 0, NULL, 2, 0), 1, (vg_flow_port[]){P(rnvp, 0)}, 0, NULL);
  vg_flow_dims cd[2] = {pdims(g, aio, 0), pdims(g, split2, 0)};
  int cat = vg_flow_graph_node(g, "cat", vg_flow_concat_new(2, cd, 0), 2, (vg_flow_port[]){P(aio, 0), P(split2, 0)}, 0, NULL);
  d = pdims(g, cat, 0);
  int resh = vg_flow_graph_node(g, "resh", vg_flow_reshape_new(d.ndim, d.d, 3, (int64_t[]){24, 2, 2}), 1, (vg_flow_port[]){P(cat, 0)}, 0, NULL);
  d = pdims(g, resh, 0);
  int flat = vg_flow_graph_node(g, "flat", vg_flow_flatten_new(d.ndim, d.d), 1, (vg_flow_port[]){P(resh, 0)}, 0, NULL);
  vg_flow_dims cd2[2] = {pdims(g, split2, 1), pdims(g, x2, 0)};
  int cat2 = vg_flow_graph_node(g, "cat2", vg_flow_concat_new(2, cd2, 0), 2, (vg_flow_port[]){P(split2, 1), P(x2, 0)}, 0, NULL);
  d = pdims(g, cat2, 0);
  int nice = vg_flow_graph_node(g, "nice", vg_flow_nice_new(d.ndim, d.d, 0, SUB, (vg_flow_coupling_opts){0}), 1, (vg_flow_port[]){P(cat2, 0)}, 0, NULL);
  vg_flow_graph_output(g, "z0", P(flat, 0));
  vg_flow_graph_output(g, "z1", P(nice, 0));
  return g;
}

/* FrEIA's state_dict by name, strictly: every file key is ours with the same shape, and
 * every one of ours is in the file. Returns the number of tensors loaded, -1 on a mismatch. */
static int load_freia_sd(vg_nn_module *m, const char *path) {
  vg_pth_dict *d = NULL;
  if (vg_pth_load(path, &(vg_pth_opts){.to_f32 = true}, &d) != VG_OK) { printf("# %s\n", vg_last_error()); return -1; }
  int n = 0;
  bool ok = true;
  for (size_t i = 0; i < d->count; i++) {
    if (d->entries[i].kind != VG_PTH_TENSOR) continue;
    vg_tensor *t = vg_nn_get(m, d->entries[i].name);
    if (!t || vg_numel(t) != vg_numel(d->entries[i].tensor)) { printf("# key %s: %s\n", d->entries[i].name, t ? "size differs" : "not ours"); ok = false; continue; }
    vg_copy_(t, d->entries[i].tensor);
    n++;
  }
  vg_nn_list sd = vg_nn_state_dict(m);
  for (int i = 0; i < sd.n; i++)
    if (!vg_pth_get(d, sd.names[i])) { printf("# ours %s not in FrEIA's state_dict\n", sd.names[i]); ok = false; }
  vg_nn_list_free(&sd);
  vg_pth_free(d);
  return ok ? n : -1;
}

/* max |got - want| / (|want| + max|want|) over n values */
static double relerr(const vg_tensor *got, const float *want, int64_t n) {
  if (!got || vg_numel(got) != n) return INFINITY;
  float *g = host(got);
  double ref = 0, e = 0;
  for (int64_t i = 0; i < n; i++) ref = fmax(ref, fabs(want[i]));
  for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(g[i] - (double)want[i]) / (fabs(want[i]) + ref + 1e-30));
  free(g);
  return e;
}

static double maxdiff(const vg_tensor *a, const vg_tensor *b) {
  if (!a || !b || vg_numel(a) != vg_numel(b)) return INFINITY;
  float *p = host(a), *q = host(b);
  double e = 0;
  for (int64_t i = 0; i < vg_numel(a); i++) e = fmax(e, fabs((double)p[i] - q[i]) / fmax(1.0, fabs(q[i])));
  free(p); free(q);
  return e;
}

static vg_tensor *fxt(const vg_fixture *fx, const char *name) {
  const vg_fx_tensor *t = vg_fixture_get(fx, name);
  return t ? vg_from_data(VG_F32, t->ndim, t->shape, t->data) : NULL;
}

static void test_conformance(void) {
  char sdpath[1024];
  snprintf(sdpath, sizeof sdpath, "%s", vg_test_fixture("flow_graph_sd.pth"));
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("flow_graph.bin"));
  if (!VG_CHECK(fx, "fixture flow_graph.bin loads")) return;
  vg_nn_module *g = build_fixture_graph();
  VG_CHECK(vg_flow_graph_build(g) == VG_OK, "fixture graph builds (%s)", vg_last_error());
  VG_CHECK(vg_flow_num_inputs(g) == 2 && vg_flow_num_outputs(g) == 2, "2 inputs, 2 outputs");
  /* FrEIA's module_list order: haar glow split rnvp split2 aio cat cat2 resh nice flat */
  static const char *order[] = {"haar", "glow", "split", "rnvp", "split2", "aio", "cat", "cat2", "resh", "nice", "flat"};
  bool ord = true;
  for (int i = 0; i < 11; i++) {
    int nd = vg_flow_graph_module_node(g, i);
    ord &= nd >= 0 && nd == vg_flow_graph_find(g, order[i]);
  }
  VG_CHECK(ord && vg_flow_graph_module_node(g, 11) == -1, "module_list in FrEIA's topological order");
  int nl = load_freia_sd(g, sdpath);
  VG_CHECK(nl == 41, "FrEIA GraphINN state_dict loads by name, strictly (%d tensors)", nl);
  vg_tensor *x = fxt(fx, "x"), *x2 = fxt(fx, "x2"), *c1 = fxt(fx, "c1"), *c2 = fxt(fx, "c2");
  vg_requires_grad_(x, true);
  vg_requires_grad_(x2, true);
  vg_tensor *cs[2] = {c1, c2};
  vg_tensor *rz[2] = {fxt(fx, "r_z0"), fxt(fx, "r_z1")};
  int ngrads = 0;
  for (int i = 0; i < fx->count; i++) ngrads += !strncmp(fx->t[i].name, "g.", 2);
  vg_scope_begin();
  vg_tensor *z[2] = {0}, *ld = NULL;
  int nz = vg_flow_forward_multi(g, 2, (vg_tensor *[]){x, x2}, 2, cs, false, true, z, &ld);
  VG_CHECK(nz == 2, "forward returns 2 outputs (%s)", vg_last_error());
  const vg_fx_tensor *f0 = vg_fixture_get(fx, "z0"), *f1 = vg_fixture_get(fx, "z1"), *fl = vg_fixture_get(fx, "ld");
  double e0 = relerr(z[0], f0->data, f0->n), e1 = relerr(z[1], f1->data, f1->n), el = relerr(ld, fl->data, fl->n);
  VG_CHECK(e0 <= 1e-5 && z[0]->ndim == 2 && z[0]->shape[1] == 96, "z0 (N, 96) vs FrEIA: max rel err %.2e", e0);
  VG_CHECK(e1 <= 1e-5, "z1 (N, 4, 4, 4) vs FrEIA: max rel err %.2e", e1);
  VG_CHECK(el <= 1e-5, "log|det J| vs FrEIA: max rel err %.2e", el);
  double eg = INFINITY;
  if (nz == 2) {
    vg_tensor *loss = vg_sub(vg_add(vg_scale(vg_sum_all(vg_mul(z[0], z[0])), 0.5f), vg_scale(vg_sum_all(vg_mul(z[1], z[1])), 0.5f)),
                             vg_sum_all(ld));
    vg_backward(loss);
    const vg_fx_tensor *gx = vg_fixture_get(fx, "gx"), *gx2 = vg_fixture_get(fx, "gx2");
    eg = fmax(relerr(x->grad, gx->data, gx->n), relerr(x2->grad, gx2->data, gx2->n));
    VG_CHECK(eg <= 1e-5, "grads wrt both inputs vs FrEIA: max rel err %.2e", eg);
    vg_nn_list ps = vg_nn_named_parameters(g);
    double ep = 0;
    int np = 0, missing = 0;
    for (int i = 0; i < ps.n; i++) {
      if (!ps.tensors[i]->requires_grad) continue;
      char key[300];
      snprintf(key, sizeof key, "g.%s", ps.names[i]);
      const vg_fx_tensor *w = vg_fixture_get(fx, key);
      if (!w || !ps.tensors[i]->grad) { missing++; continue; }
      ep = fmax(ep, relerr(ps.tensors[i]->grad, w->data, w->n));
      np++;
    }
    vg_nn_list_free(&ps);
    VG_CHECK(ep <= 1e-5 && np == ngrads && np > 30 && !missing, "parameter grads vs FrEIA (%d tensors, %d missing): max rel err %.2e", np, missing, ep);
    eg = fmax(eg, ep);
  }
  /* reverse of random z vs FrEIA, and the round trips */
  vg_no_grad_begin();
  vg_tensor *rx[2] = {0}, *rld = NULL;
  int nr = vg_flow_forward_multi(g, 2, rz, 2, cs, true, true, rx, &rld);
  const vg_fx_tensor *frx = vg_fixture_get(fx, "r_x"), *frx2 = vg_fixture_get(fx, "r_x2"), *frl = vg_fixture_get(fx, "r_ld");
  double er = nr == 2 ? fmax(relerr(rx[0], frx->data, frx->n), relerr(rx[1], frx2->data, frx2->n)) : INFINITY;
  double erl = relerr(rld, frl->data, frl->n);
  VG_CHECK(er <= 1e-5 && erl <= 1e-5, "reverse (z -> x) vs FrEIA: x max rel err %.2e, log-det %.2e", er, erl);
  vg_tensor *xb[2] = {0}, *ldb = NULL;
  double inv = INFINITY, lsum = INFINITY;
  if (nz == 2 && vg_flow_forward_multi(g, 2, z, 2, cs, true, true, xb, &ldb) == 2) {
    /* relative to the tensors' scale (relerr): the forward map contracts the volume by
     * e^-98, so the inverse amplifies float32 rounding; FrEIA's own round trip on these
     * inputs is off by 8.8e-6 absolute (max(1, |x|)-relative), Vigil's by ~1.0e-5 */
    float *hx = host(x), *hx2 = host(x2), *hl = host(ld);
    vg_tensor *nl = vg_neg(ldb);
    inv = fmax(relerr(xb[0], hx, vg_numel(x)), relerr(xb[1], hx2, vg_numel(x2)));
    lsum = relerr(nl, hl, 2);
    printf("# round trip: max abs-or-rel err (max(1,|x|)) %.2e, log-det sum %.2e\n", fmax(maxdiff(xb[0], x), maxdiff(xb[1], x2)),
           maxdiff(nl, ld));
    free(hx); free(hx2); free(hl);
  }
  VG_CHECK(inv <= 1e-5, "inverse(forward(x)) = x: max rel err %.2e", inv);
  VG_CHECK(lsum <= 1e-6, "forward log-det = -reverse log-det: max rel err %.2e", lsum);
  vg_no_grad_end();
  printf("SUMMARY graph  z %.2e  logdet %.2e  grads %.2e  rev %.2e  inv %.2e\n", fmax(e0, e1), el, eg, fmax(er, erl), inv);
  vg_scope_end();
  vg_tensor_free(x); vg_tensor_free(x2); vg_tensor_free(c1); vg_tensor_free(c2);
  vg_tensor_free(rz[0]); vg_tensor_free(rz[1]);
  vg_nn_free(g);
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

/* Jacobian of sample 0 over both inputs (rows: z0 then z1 elements; columns: x then x2),
 * by autograd rows; its log|det| vs the graph's log-det, forward and reverse. */
static void test_jacobian(bool rev) {
  vg_nn_module *g = build_fixture_graph();
  vg_flow_graph_build(g);
  vg_nn_list sd = vg_nn_state_dict(g);
  for (int i = 0; i < sd.n; i++)   /* perturb the zero-initialised parts so every block acts */
    if (sd.tensors[i]->requires_grad) {
      vg_tensor *r = vg_randn(sd.tensors[i]->ndim, sd.tensors[i]->shape, 40 + (uint64_t)i);
      vg_axpy_(sd.tensors[i], 0.2f, r);
      vg_tensor_free(r);
    }
  vg_nn_list_free(&sd);
  vg_tensor *c1 = vg_randn(4, (int64_t[]){2, 3, 4, 4}, 3), *c2 = vg_randn(4, (int64_t[]){2, 2, 4, 4}, 4);
  vg_tensor *a, *b;
  if (!rev) { a = vg_randn(4, (int64_t[]){2, 2, 8, 8}, 5); b = vg_randn(4, (int64_t[]){2, 2, 4, 4}, 6); }
  else { a = vg_randn(2, (int64_t[]){2, 96}, 5); b = vg_randn(4, (int64_t[]){2, 4, 4, 4}, 6); }
  vg_requires_grad_(a, true);
  vg_requires_grad_(b, true);
  int64_t na = vg_numel(a) / 2, nb = vg_numel(b) / 2, D = na + nb;
  double *J = malloc(sizeof(double) * (size_t)(D * D));
  float ld0 = NAN;
  bool ok = true;
  for (int64_t k = 0; k < D && ok; k++) {
    vg_scope_begin();
    vg_tensor *y[2] = {0}, *ld = NULL;
    ok = vg_flow_forward_multi(g, 2, (vg_tensor *[]){a, b}, 2, (vg_tensor *[]){c1, c2}, rev, true, y, &ld) == 2;
    if (ok) {
      if (k == 0) { float *l = host(ld); ld0 = l[0]; free(l); }
      int which = k < vg_numel(y[0]) / 2 ? 0 : 1;
      int64_t off = which ? k - vg_numel(y[0]) / 2 : k;
      vg_tensor *seed = vg_zeros(VG_F32, y[which]->ndim, y[which]->shape);
      vg_f32(seed)[off] = 1.f;   /* sample 0 */
      vg_zero_grad_(a);
      vg_zero_grad_(b);
      vg_backward_with(y[which], seed);
      for (int64_t j = 0; j < D; j++)
        J[k * D + j] = j < na ? (a->grad ? vg_f32(a->grad)[j] : 0) : (b->grad ? vg_f32(b->grad)[j - na] : 0);
    }
    vg_scope_end();
  }
  double bf = ok ? logdet_lu((int)D, J) : NAN;
  double err = fabs(bf - ld0) / fmax(1.0, fabs(bf));
  VG_CHECK(ok && err < 1e-4 && fabs(ld0) > 0.1, "%s log-det %.6f vs brute-force %lldx%lld Jacobian log|det| %.6f (err %.1e)",
           rev ? "reverse" : "forward", ld0, (long long)D, (long long)D, bf, err);
  free(J);
  vg_tensor_free(a); vg_tensor_free(b); vg_tensor_free(c1); vg_tensor_free(c2);
  vg_nn_free(g);
}

/* ------------------------------------------------------------ builder errors */
static bool err_has(const char *a, const char *b) {
  const char *e = vg_last_error();
  return strstr(e, a) && (!b || strstr(e, b));
}

static void test_errors(void) {
  int64_t d488[3] = {4, 8, 8}, d288[3] = {2, 8, 8};
  /* cycle: a <- b <- a (ports may name nodes added later) */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int cat = vg_flow_graph_node(g, "cat", vg_flow_concat_new(2, (vg_flow_dims[]){{3, {2, 8, 8}}, {3, {2, 8, 8}}}, 0), 2,
                                 (vg_flow_port[]){P(4, 0), P(in, 0)}, 0, NULL);   /* wrong: in has 4 channels; cycle first */
    int sp = vg_flow_graph_node(g, "split", vg_flow_split_new(3, d488, 0, NULL, 2, 0), 1, (vg_flow_port[]){P(cat, 0)}, 0, NULL);
    vg_flow_graph_output(g, "out", P(sp, 1));
    int a = vg_flow_graph_node(g, "loop", vg_flow_glow_new(3, d288, 0, SUB, (vg_flow_coupling_opts){0}), 1,
                               (vg_flow_port[]){P(sp, 0)}, 0, NULL);
    vg_flow_dims pd;
    VG_CHECK(a == 4 && vg_flow_graph_port_dims(g, P(a, 0), &pd) < 0 && err_has("cyclic", "loop"),
             "port dims on a cycle refused: %s", vg_last_error());
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("cyclic", "'cat'") && err_has("'loop'", "'split'"),
             "cycle refused, naming the nodes: %s", vg_last_error());
    vg_nn_free(g);
  }
  /* a node feeding itself, and a cycle detached from the inputs */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    vg_flow_graph_output(g, "out", P(in, 0));
    int self = vg_flow_graph_node(g, "ouroboros", vg_flow_permute_random_new(3, d488, 1), 1, (vg_flow_port[]){P(2, 0)}, 0, NULL);
    VG_CHECK(self == 2 && vg_flow_graph_build(g) != VG_OK && err_has("cyclic", "'ouroboros'"), "self-loop refused: %s", vg_last_error());
    vg_nn_free(g);
    g = vg_flow_graph_new();
    in = vg_flow_graph_input(g, "in", 3, d488);
    vg_flow_graph_output(g, "out", P(in, 0));
    vg_flow_graph_node(g, "ping", vg_flow_permute_random_new(3, d488, 1), 1, (vg_flow_port[]){P(3, 0)}, 0, NULL);
    vg_flow_graph_node(g, "pong", vg_flow_permute_random_new(3, d488, 2), 1, (vg_flow_port[]){P(2, 0)}, 0, NULL);
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("cyclic", "'ping', 'pong'"), "detached two-node cycle refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  /* shape mismatch: a block built for other dims */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int a = vg_flow_graph_node(g, "coupling", vg_flow_glow_new(3, (int64_t[]){4, 4, 4}, 0, SUB, (vg_flow_coupling_opts){0}), 1,
                               (vg_flow_port[]){P(in, 0)}, 0, NULL);
    vg_flow_graph_output(g, "out", P(a, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("shape mismatch", "'coupling'") && err_has("'in'", "(4, 8, 8)")
             && err_has("(4, 4, 4)", NULL), "shape mismatch refused, naming the nodes: %s", vg_last_error());
    vg_nn_free(g);
  }
  /* shape mismatch into a reshaping module (Haar built for 8x8, fed 4x4) */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, (int64_t[]){4, 4, 4});
    int h = vg_flow_graph_node(g, "down", vg_flow_haar_down_new(3, d488, (vg_flow_haar_opts){0}), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
    vg_flow_graph_output(g, "out", P(h, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("shape mismatch", "'down'") && err_has("'in'.0 (4, 4, 4)", NULL),
             "HaarDownsampling shape mismatch refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  /* shape mismatch into a multi-input module */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int sp = vg_flow_graph_node(g, "split", vg_flow_split_new(3, d488, 0, NULL, 2, 0), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
    int cat = vg_flow_graph_node(g, "merge", vg_flow_concat_new(2, (vg_flow_dims[]){{3, {3, 8, 8}}, {3, {1, 8, 8}}}, 0), 2,
                                 (vg_flow_port[]){P(sp, 0), P(sp, 1)}, 0, NULL);
    vg_flow_graph_output(g, "out", P(cat, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("shape mismatch", "'merge'") && err_has("'split'.1 (2, 8, 8)", "built for (3, 8, 8)"),
             "Concat shape mismatch refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  /* unused output */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int sp = vg_flow_graph_node(g, "halves", vg_flow_split_new(3, d488, 0, NULL, 2, 0), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
    vg_flow_graph_output(g, "out", P(sp, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("output 1 of node 'halves' is not used", NULL), "unused output refused: %s",
             vg_last_error());
    vg_flow_graph_output(g, "out1", P(sp, 1));
    VG_CHECK(vg_flow_graph_build(g) == VG_OK && vg_flow_num_outputs(g) == 2, "after a failed build, adding the missing OutputNode builds (%s)",
             vg_last_error());
    vg_nn_free(g);
  }
  /* an unused InputNode */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    vg_flow_graph_input(g, "spare", 3, d488);
    vg_flow_graph_output(g, "out", P(in, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("InputNode 'spare' is not used", NULL), "unused InputNode refused: %s",
             vg_last_error());
    vg_nn_free(g);
  }
  /* missing condition, wrong condition channels, condition on an unconditional block */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    vg_flow_graph_condition(g, "cond", 3, (int64_t[]){2, 8, 8});
    int a = vg_flow_graph_node(g, "needs_c", vg_flow_glow_new(3, d488, 2, SUB, (vg_flow_coupling_opts){0}), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
    vg_flow_graph_output(g, "out", P(a, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("missing condition", "'needs_c'"), "missing condition refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int c = vg_flow_graph_condition(g, "cond", 3, (int64_t[]){3, 8, 8});
    int a = vg_flow_graph_node(g, "needs_c", vg_flow_glow_new(3, d488, 2, SUB, (vg_flow_coupling_opts){0}), 1, (vg_flow_port[]){P(in, 0)}, 1, &c);
    vg_flow_graph_output(g, "out", P(a, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("2 condition channels", "'cond'"), "condition channel mismatch refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int c = vg_flow_graph_condition(g, "cond", 3, (int64_t[]){2, 4, 4});
    int a = vg_flow_graph_node(g, "needs_c", vg_flow_glow_new(3, d488, 2, SUB, (vg_flow_coupling_opts){0}), 1, (vg_flow_port[]){P(in, 0)}, 1, &c);
    vg_flow_graph_output(g, "out", P(a, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("spatial", "'cond'"), "condition spatial mismatch refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int c = vg_flow_graph_condition(g, "cond", 3, (int64_t[]){2, 8, 8});
    int a = vg_flow_graph_node(g, "perm", vg_flow_permute_random_new(3, d488, 1), 1, (vg_flow_port[]){P(in, 0)}, 1, &c);
    vg_flow_graph_output(g, "out", P(a, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("takes no condition", "'perm'"), "condition on an unconditional block refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  /* an output feeding two inputs; a condition used as input; ports out of range */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int a = vg_flow_graph_node(g, "p1", vg_flow_permute_random_new(3, d488, 1), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
    int b = vg_flow_graph_node(g, "p2", vg_flow_permute_random_new(3, d488, 2), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
    vg_flow_graph_output(g, "o1", P(a, 0));
    vg_flow_graph_output(g, "o2", P(b, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("feeds both 'p1' and 'p2'", "'in'"), "fan-out refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int c = vg_flow_graph_condition(g, "cond", 3, d488);
    int cat = vg_flow_graph_node(g, "cat", vg_flow_concat_new(2, (vg_flow_dims[]){{3, {4, 8, 8}}, {3, {4, 8, 8}}}, 0), 2,
                                 (vg_flow_port[]){P(in, 0), P(c, 0)}, 0, NULL);
    vg_flow_graph_output(g, "out", P(cat, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("ConditionNode 'cond'", "'cat'"), "ConditionNode as an input refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    int sp = vg_flow_graph_node(g, "split", vg_flow_split_new(3, d488, 0, NULL, 2, 0), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
    vg_flow_graph_output(g, "o1", P(sp, 2));
    vg_flow_graph_output(g, "o2", P(9, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("output 2 of 'split'", "2 outputs"), "port past the outputs refused: %s", vg_last_error());
    vg_nn_free(g);
    g = vg_flow_graph_new();
    vg_flow_graph_input(g, "in", 3, d488);
    vg_flow_graph_output(g, "o2", P(9, 0));
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("node 9, which does not exist", "'o2'"), "unknown node refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  /* node-level refusals, graphs without inputs, running unbuilt / with wrong inputs */
  {
    vg_nn_module *g = vg_flow_graph_new();
    int in = vg_flow_graph_input(g, "in", 3, d488);
    VG_CHECK(vg_flow_graph_node(g, "two", vg_flow_permute_random_new(3, d488, 1), 2, (vg_flow_port[]){P(in, 0), P(in, 0)}, 0, NULL) < 0
             && err_has("takes 1 inputs, 2 given", "'two'"), "input count vs the module refused: %s", vg_last_error());
    VG_CHECK(vg_flow_graph_node(g, "lin", vg_nn_linear_new(3, 3, true, 1), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL) < 0
             && err_has("not a flow module", "'lin'"), "non-flow module refused: %s", vg_last_error());
    VG_CHECK(vg_flow_graph_input(g, "bad", 2, (int64_t[]){3, 0}) < 0, "InputNode with a 0 dim refused: %s", vg_last_error());
    int a = vg_flow_graph_node(g, "p", vg_flow_permute_random_new(3, d488, 1), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
    vg_flow_graph_output(g, "out", P(a, 0));
    vg_tensor *x = vg_randn(4, (int64_t[]){2, 4, 8, 8}, 1), *y = NULL;
    VG_CHECK(vg_flow_forward_multi(g, 1, &x, 0, NULL, false, false, &y, NULL) < 0 && err_has("not built", NULL), "running an unbuilt graph refused");
    VG_CHECK(vg_flow_graph_build(g) == VG_OK, "simple graph builds");
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && vg_flow_graph_output(g, "late", P(a, 0)) < 0, "no second build, no nodes after build");
    vg_tensor *xb = vg_randn(4, (int64_t[]){2, 4, 4, 4}, 1);
    VG_CHECK(vg_flow_forward_multi(g, 1, &xb, 0, NULL, false, false, &y, NULL) < 0 && err_has("'in' takes dims (4, 8, 8)", NULL),
             "input of other dims refused: %s", vg_last_error());
    VG_CHECK(vg_flow_forward_multi(g, 2, (vg_tensor *[]){x, x}, 0, NULL, false, false, &y, NULL) < 0 && err_has("takes 1 inputs", NULL),
             "wrong input count refused: %s", vg_last_error());
    VG_CHECK(vg_flow_forward_multi(g, 1, &x, 1, &x, false, false, &y, NULL) < 0 && err_has("conditions", NULL),
             "unexpected condition refused: %s", vg_last_error());
    vg_tensor_free(x); vg_tensor_free(xb);
    vg_nn_free(g);
    g = vg_flow_graph_new();
    VG_CHECK(vg_flow_graph_build(g) != VG_OK && err_has("InputNode", NULL), "empty graph refused: %s", vg_last_error());
    vg_nn_free(g);
  }
  /* module constructors */
  VG_CHECK(!vg_flow_split_new(3, d488, 2, (int64_t[]){3, 3}, 0, 0) && err_has("sum to 6", NULL), "Split sections too large refused: %s", vg_last_error());
  VG_CHECK(!vg_flow_split_new(3, d488, 0, NULL, 5, 0), "Split into more sections than channels refused: %s", vg_last_error());
  VG_CHECK(!vg_flow_split_new(3, d488, 0, NULL, 2, 3), "Split dim out of range refused: %s", vg_last_error());
  VG_CHECK(!vg_flow_concat_new(2, (vg_flow_dims[]){{3, {2, 8, 8}}, {3, {2, 4, 8}}}, 0) && err_has("agree except at dim 0", NULL),
           "Concat of mismatched dims refused: %s", vg_last_error());
  VG_CHECK(!vg_flow_concat_new(1, (vg_flow_dims[]){{3, {2, 8, 8}}}, 0), "Concat of one input refused");
  VG_CHECK(!vg_flow_reshape_new(3, d488, 2, (int64_t[]){16, 17}) && err_has("element count", NULL), "Reshape to another element count refused: %s", vg_last_error());
}

/* a long chain: inference stays linear and shallow when nodes are added in order */
static void test_long_chain(void) {
  vg_nn_module *g = vg_flow_graph_new();
  int64_t d[1] = {3};
  int h = vg_flow_graph_input(g, "in", 1, d);
  bool ok = true;
  for (int i = 0; i < 3000 && ok; i++) {
    vg_flow_dims pd;
    ok = vg_flow_graph_port_dims(g, P(h, 0), &pd) == 1 && pd.d[0] == 3;
    h = vg_flow_graph_node(g, NULL, vg_flow_permute_random_new(1, pd.d, (uint64_t)i), 1, (vg_flow_port[]){P(h, 0)}, 0, NULL);
  }
  vg_flow_graph_output(g, "out", P(h, 0));
  ok = ok && vg_flow_graph_build(g) == VG_OK && vg_nn_get(g, "module_list.2999.perm") && vg_flow_graph_find(g, "node3000") == 3000;
  vg_scope_begin();
  vg_tensor *x = vg_randn(2, (int64_t[]){2, 3}, 1), *ld;
  vg_tensor *y = ok ? vg_flow_forward(g, x, 0, NULL, false, true, &ld) : NULL;
  vg_tensor *xr = y ? vg_flow_forward(g, y, 0, NULL, true, false, NULL) : NULL;
  VG_CHECK(ok && xr && maxdiff(xr, x) == 0, "3000-node chain builds (default names node<i>) and inverts exactly (%s)", vg_last_error());
  vg_scope_end();
  vg_nn_free(g);
}

/* ------------------------------------------------------------ graph modules on their own */
static void test_modules(void) {
  int64_t d7[3] = {7, 2, 3};
  vg_nn_module *s = vg_flow_split_new(3, d7, 0, NULL, 3, 0);
  vg_flow_dims in = {3, {7, 2, 3}}, out[4];
  VG_CHECK(vg_flow_output_dims_multi(s, 1, &in, out) == 3 && out[0].d[0] == 3 && out[1].d[0] == 2 && out[2].d[0] == 2 && out[2].d[2] == 3,
           "Split n_sections 3 of 7 -> 3, 2, 2 (numpy.array_split)");
  vg_nn_free(s);
  s = vg_flow_split_new(3, d7, 2, (int64_t[]){1, 2}, 0, 0);
  VG_CHECK(s && vg_flow_num_outputs(s) == 3 && vg_flow_output_dims_multi(s, 1, &in, out) == 3 && out[2].d[0] == 4,
           "Split sections [1, 2] of 7 -> 1, 2 + the rest 4");
  vg_nn_free(s);
  /* Split along width (dim 2) and back; Concat inverse; a round trip through Reshape */
  s = vg_flow_split_new(3, d7, 0, NULL, 2, 2);
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){2, 7, 2, 3}, 9), *y[3] = {0}, *xr = NULL, *ld = NULL;
  int n = vg_flow_forward_multi(s, 1, &x, 0, NULL, false, true, y, &ld);
  bool ok = n == 2 && y[0]->shape[3] == 2 && y[1]->shape[3] == 1 && vg_f32(vg_contiguous(y[1]))[0] == vg_f32(x)[2];
  float *l = ld ? host(ld) : NULL;
  ok = ok && l && l[0] == 0 && l[1] == 0;
  free(l);
  ok = ok && vg_flow_forward_multi(s, 2, y, 0, NULL, true, false, &xr, NULL) == 1 && maxdiff(xr, x) == 0;
  VG_CHECK(ok, "Split along dim 2: sections (2, 1), log-det 0, reverse concatenates back");
  VG_CHECK(!vg_flow_forward(s, x, 0, NULL, false, false, NULL) && err_has("vg_flow_forward_multi", NULL),
           "vg_flow_forward on Split points to vg_flow_forward_multi");
  vg_nn_module *r = vg_flow_reshape_new(3, d7, 2, (int64_t[]){14, 3});
  vg_tensor *yr = vg_flow_forward(r, x, 0, NULL, false, true, &ld);
  vg_tensor *xb = yr ? vg_flow_forward(r, yr, 0, NULL, true, false, NULL) : NULL;
  VG_CHECK(yr && yr->ndim == 3 && yr->shape[1] == 14 && xb && maxdiff(xb, x) == 0 && vg_f32(vg_contiguous(yr))[5] == vg_f32(x)[5],
           "Reshape (7, 2, 3) -> (14, 3) and back (row-major order kept)");
  VG_CHECK(!vg_flow_forward(r, yr, 0, NULL, false, false, NULL), "Reshape refuses its output dims forward: %s", vg_last_error());
  vg_scope_end();
  vg_nn_free(r);
  vg_nn_free(s);
}

/* A 1-in 1-out graph is a flow: in a SequenceINN, sampled from, nested in another graph;
 * a few Adam steps on a conditional multi-scale graph lower the NLL. */
static void test_as_flow(void) {
  int64_t d[3] = {4, 4, 4};
  vg_nn_module *inner = vg_flow_graph_new();
  int in = vg_flow_graph_input(inner, "in", 3, d);
  int sp = vg_flow_graph_node(inner, "split", vg_flow_split_new(3, d, 0, NULL, 2, 0), 1, (vg_flow_port[]){P(in, 0)}, 0, NULL);
  int a = vg_flow_graph_node(inner, "a", vg_flow_allinone_new(3, (int64_t[]){2, 4, 4}, 0, SUB, (vg_flow_allinone_opts){.seed = 1}), 1,
                             (vg_flow_port[]){P(sp, 1)}, 0, NULL);
  int cat = vg_flow_graph_node(inner, "cat", vg_flow_concat_new(2, (vg_flow_dims[]){{3, {2, 4, 4}}, {3, {2, 4, 4}}}, 0), 2,
                               (vg_flow_port[]){P(sp, 0), P(a, 0)}, 0, NULL);
  vg_flow_graph_output(inner, "out", P(cat, 0));
  VG_CHECK(vg_flow_graph_build(inner) == VG_OK, "inner graph builds");
  vg_nn_module *seq = vg_flow_sequence_new(3, d);
  vg_flow_sequence_append(seq, vg_flow_allinone_new(3, d, 0, SUB, (vg_flow_allinone_opts){.seed = 2}), -1);
  int k = vg_flow_sequence_append(seq, inner, -1);
  VG_CHECK(k == 1 && vg_nn_get(seq, "module_list.1.module_list.1.subnet.0.weight"), "GraphINN inside a SequenceINN: nested FrEIA names (%s)", vg_last_error());
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){3, 4, 4, 4}, 2), *ld, *ld2;
  vg_tensor *z = vg_flow_forward(seq, x, 0, NULL, false, true, &ld);
  vg_tensor *xr = z ? vg_flow_forward(seq, z, 0, NULL, true, true, &ld2) : NULL;
  VG_CHECK(xr && maxdiff(xr, x) < 1e-5 && maxdiff(vg_neg(ld2), ld) < 1e-5, "SequenceINN with a graph block inverts (err %.1e)", xr ? maxdiff(xr, x) : INFINITY);
  vg_tensor *smp = vg_flow_sample(inner, 2, 0, NULL, 3);
  VG_CHECK(smp && smp->ndim == 4 && smp->shape[0] == 2 && smp->shape[1] == 4, "vg_flow_sample on a graph");
  vg_scope_end();
  vg_nn_free(seq);

  /* nested: a graph as a node of a graph with two outputs; then train */
  vg_nn_module *g = vg_flow_graph_new();
  int gi = vg_flow_graph_input(g, "img", 3, (int64_t[]){1, 8, 8});
  int c = vg_flow_graph_condition(g, "label", 3, (int64_t[]){2, 4, 4});
  int h = vg_flow_graph_node(g, "haar", vg_flow_haar_down_new(3, (int64_t[]){1, 8, 8}, (vg_flow_haar_opts){0}), 1, (vg_flow_port[]){P(gi, 0)}, 0, NULL);
  vg_nn_module *sub = vg_flow_graph_new();
  int si = vg_flow_graph_input(sub, "in", 3, d);
  int sa = vg_flow_graph_node(sub, "perm", vg_flow_permute_random_new(3, d, 4), 1, (vg_flow_port[]){P(si, 0)}, 0, NULL);
  vg_flow_graph_output(sub, "out", P(sa, 0));
  vg_flow_graph_build(sub);
  int nest = vg_flow_graph_node(g, "nested", sub, 1, (vg_flow_port[]){P(h, 0)}, 0, NULL);
  int b = vg_flow_graph_node(g, "glow", vg_flow_glow_new(3, d, 2, SUB, (vg_flow_coupling_opts){0}), 1, (vg_flow_port[]){P(nest, 0)}, 1, &c);
  int s2 = vg_flow_graph_node(g, "split", vg_flow_split_new(3, d, 2, (int64_t[]){1, 3}, 0, 0), 1, (vg_flow_port[]){P(b, 0)}, 0, NULL);
  vg_flow_graph_output(g, "z_coarse", P(s2, 0));
  vg_flow_graph_output(g, "z_rest", P(s2, 1));
  VG_CHECK(vg_flow_graph_build(g) == VG_OK, "graph with a nested graph node builds (%s)", vg_last_error());
  vg_nn_list ps = vg_nn_named_parameters(g);
  vg_optim *opt = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 1e-2));
  vg_optim_add_group(opt, ps.n, ps.tensors, NULL);
  vg_tensor *xd = vg_randn(4, (int64_t[]){8, 1, 8, 8}, 7), *cd = vg_randn(4, (int64_t[]){8, 2, 4, 4}, 8);
  float first = 0, last = 0;
  for (int it = 0; it < 20; it++) {
    vg_scope_begin();
    vg_tensor *zz[2], *l2;
    vg_tensor *xs = vg_scale(xd, 0.3f);
    if (vg_flow_forward_multi(g, 1, &xs, 1, &cd, false, true, zz, &l2) != 2) { vg_scope_end(); break; }
    vg_tensor *loss = vg_neg(vg_mean_all(vg_add(vg_add(vg_flow_gaussian_logp(zz[0]), vg_flow_gaussian_logp(zz[1])), l2)));
    float lv = vg_item(loss);
    if (it == 0) first = lv;
    last = lv;
    vg_optim_zero_grad(opt);
    vg_backward(loss);
    vg_optim_step(opt);
    vg_scope_end();
  }
  VG_CHECK(last < first - 0.5f, "training a conditional two-output graph: NLL %.3f -> %.3f after 20 Adam steps", first, last);
  vg_tensor_free(xd); vg_tensor_free(cd);
  vg_optim_free(opt);
  vg_nn_list_free(&ps);
  vg_nn_free(g);
}

int main(void) {
  test_conformance();
  test_jacobian(false);
  test_jacobian(true);
  test_errors();
  test_long_chain();
  test_modules();
  test_as_flow();
  return vg_test_finish();
}
