/* test_norm.c — the fused norm ops (softmax, log_softmax, layer_norm and their backward
 * ops: tensor/cpu/norm.c) on the CPU:
 *   torch     forward and the grads of L = sum(out * R) vs tests/fixtures/ops/norm.vgfx
 *             (tools/gen_norm_fixtures.py): several dims and layouts, long rows, values of
 *             magnitude 1e4, -inf entries, layer_norm over 1-3 dims with and without
 *             weight / bias; |got - want| <= 1e-5 (|want| + max|want|), equal infinities;
 *   bits      layer_norm against the composite it replaced (mean, sub, mul, rsqrt, ...;
 *             written out below): y and the grads of x, weight and bias bit for bit, on the
 *             reduction paths of tensor/cpu/reduce.c (rows >= 64, runs > 64K split into
 *             pieces, odd runs, one element, no leading dims, column sums of > 64K rows),
 *             and FastFlow's LayerNorm module; the same bits for 1 and 2 threads;
 *   torch's edge cases: a row of all -inf (NaN), +inf or NaN in a row (NaN), -inf entries
 *             (0 / -inf), 0-d input; and the errors. */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "tensor/tensor.h"
#include "autograd/autograd.h"
#include "nn/nn.h"

static vg_fixture *FX;

static float *host(const vg_tensor *t) {
  float *p = malloc(sizeof(float) * (size_t)(vg_numel(t) ? vg_numel(t) : 1));
  vg_to_host(t, VG_F32, p);
  return p;
}

/* |got - want| <= tol (|want| + max|want|); equal infinities match; NaN never */
static void close_inf(const char *what, const vg_tensor *got, const vg_fx_tensor *w, double tol) {
  if (!VG_CHECK(got && vg_numel(got) == w->n, "%s: result of %lld elements (%s)", what, (long long)w->n,
                got ? "" : vg_last_error()))
    return;
  float *g = host(got);
  double scale = 0, worst = 0;
  int64_t bad = -1;
  for (int64_t i = 0; i < w->n; i++)
    if (isfinite(w->data[i])) scale = fmax(scale, fabs(w->data[i]));
  for (int64_t i = 0; i < w->n; i++) {
    double a = g[i], b = w->data[i];
    if (isinf(b) && a == b) continue;
    double err = fabs(a - b) / (fabs(b) + scale + 1e-30);
    if (!(err <= tol) && bad < 0) bad = i;
    if (err > worst || err != err) worst = err != err ? INFINITY : err;
  }
  VG_CHECK(bad < 0, "%s: n=%lld max rel err %.2e%s", what, (long long)w->n, worst, bad >= 0 ? " (first bad shown)" : "");
  if (bad >= 0) printf("  [%lld] got %.9g want %.9g\n", (long long)bad, g[bad], w->data[bad]);
  free(g);
}

typedef vg_tensor *(*case_fn)(vg_tensor **in);
static vg_tensor *sm_last(vg_tensor **in) { return vg_softmax(in[0], -1); }
static vg_tensor *sm_1(vg_tensor **in) { return vg_softmax(in[0], 1); }
static vg_tensor *sm_0(vg_tensor **in) { return vg_softmax(in[0], 0); }
static vg_tensor *lsm_last(vg_tensor **in) { return vg_log_softmax(in[0], -1); }
static vg_tensor *lsm_1(vg_tensor **in) { return vg_log_softmax(in[0], 1); }
static vg_tensor *lsm_0(vg_tensor **in) { return vg_log_softmax(in[0], 0); }
static vg_tensor *ln_last(vg_tensor **in) { return vg_layer_norm(in[0], 1, in[1], in[2], 1e-5f); }
static vg_tensor *ln_two(vg_tensor **in) { return vg_layer_norm(in[0], 2, in[1], in[2], 1e-5f); }
static vg_tensor *ln_chw(vg_tensor **in) { return vg_layer_norm(in[0], 3, in[1], in[2], 1e-5f); }
static vg_tensor *ln_plain(vg_tensor **in) { return vg_layer_norm(in[0], 1, NULL, NULL, 1e-5f); }
static vg_tensor *ln_plain2(vg_tensor **in) { return vg_layer_norm(in[0], 2, NULL, NULL, 1e-3f); }
static vg_tensor *ln_w(vg_tensor **in) { return vg_layer_norm(in[0], 1, in[1], NULL, 1e-5f); }
static vg_tensor *ln_b(vg_tensor **in) { return vg_layer_norm(in[0], 1, NULL, in[1], 1e-5f); }

typedef struct {
  const char *name;
  int nin;
  case_fn fn;
  unsigned nograd;   /* bit i: input i has no grad in the fixture */
} fx_case;

static const fx_case CASES[] = {
    {"sm_last", 1, sm_last, 0},       {"sm_dim1", 1, sm_1, 0},          {"sm_dim0", 1, sm_0, 0},
    {"sm_long", 1, sm_last, 0},       {"sm_big", 1, sm_last, 0},        {"sm_big_dim0", 1, sm_0, 0},
    {"sm_neginf", 1, sm_1, 0},        {"sm_wide_inner", 1, sm_1, 0},    {"lsm_last", 1, lsm_last, 0},
    {"lsm_dim1", 1, lsm_1, 0},        {"lsm_dim0", 1, lsm_0, 0},        {"lsm_long", 1, lsm_last, 0},
    {"lsm_big", 1, lsm_last, 0},      {"lsm_big_dim0", 1, lsm_0, 0},    {"lsm_neginf", 1, lsm_1, 0},
    {"lsm_wide_inner", 1, lsm_1, 0},  {"ln_last", 3, ln_last, 0},       {"ln_two", 3, ln_two, 0},
    {"ln_chw", 3, ln_chw, 0},         {"ln_plain", 1, ln_plain, 0},     {"ln_plain2", 1, ln_plain2, 0},
    {"ln_w", 2, ln_w, 0},             {"ln_b", 2, ln_b, 0},             {"ln_big", 3, ln_last, 0},
    {"ln_noleading", 3, ln_two, 0},   {"ln_long", 3, ln_last, 0},       {"ln_xonly", 3, ln_last, 6},
};

static vg_tensor *fx_load(const char *key) {
  const vg_fx_tensor *t = vg_fixture_get(FX, key);
  if (!t) {
    VG_CHECK(0, "fixture tensor %s present", key);
    return NULL;
  }
  return vg_from_data(VG_F32, t->ndim, t->shape, t->data);
}

static void torch_cases(void) {
  FX = vg_fixture_load(vg_test_fixture("ops/norm.vgfx"));
  if (!VG_CHECK(FX != NULL, "load tests/fixtures/ops/norm.vgfx")) return;
  for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
    const fx_case *k = &CASES[c];
    char key[96], what[160];
    vg_scope_begin();
    vg_tensor *in[3];
    bool ok = true;
    for (int i = 0; i < k->nin; i++) {
      snprintf(key, sizeof key, "%s.in%d", k->name, i);
      in[i] = fx_load(key);
      ok &= in[i] != NULL;
      if (in[i]) vg_requires_grad_(in[i], !(k->nograd >> i & 1));
    }
    snprintf(key, sizeof key, "%s.r", k->name);
    vg_tensor *r = fx_load(key);
    if (!ok || !r) {
      vg_scope_end();
      continue;
    }
    vg_tensor *y = k->fn(in);
    snprintf(key, sizeof key, "%s.out", k->name);
    snprintf(what, sizeof what, "torch %s forward", k->name);
    close_inf(what, y, vg_fixture_get(FX, key), 1e-5);
    if (y) {
      /* L = sum(out * R) with R zeroed where out is infinite (as the generator's where()) */
      vg_tensor *fin = vg_lt(vg_abs(vg_detach(y)), vg_full(VG_F32, 0, NULL, INFINITY));
      vg_tensor *rz = vg_where(fin, r, vg_zeros_like(r));
      vg_tensor *yz = vg_where(fin, y, vg_zeros_like(r));
      vg_status st = vg_backward(vg_sum_all(vg_mul(yz, rz)));
      VG_CHECK(st == VG_OK, "torch %s backward (%s)", k->name, st == VG_OK ? "" : vg_last_error());
      for (int i = 0; st == VG_OK && i < k->nin; i++) {
        if (k->nograd >> i & 1) {
          VG_CHECK(in[i]->grad == NULL, "torch %s: no grad for fixed input %d", k->name, i);
          continue;
        }
        snprintf(key, sizeof key, "%s.grad%d", k->name, i);
        snprintf(what, sizeof what, "torch %s grad of input %d", k->name, i);
        if (!VG_CHECK(in[i]->grad != NULL, "%s: present", what)) continue;
        close_inf(what, in[i]->grad, vg_fixture_get(FX, key), 1e-5);
      }
    }
    vg_scope_end();
  }
  vg_fixture_free(FX);
}

/* ---- bit identity with the composite layer_norm this op replaced ---- */
static vg_tensor *ln_composite(const vg_tensor *x, int nnorm, const vg_tensor *weight, const vg_tensor *bias, float eps) {
  int dims[VG_MAX_DIMS];
  for (int i = 0; i < nnorm; i++) dims[i] = x->ndim - nnorm + i;
  vg_tensor *mu = vg_mean(x, nnorm, dims, true);
  vg_tensor *d = vg_sub(x, mu);
  vg_tensor *var = vg_mean(vg_mul(d, d), nnorm, dims, true);
  vg_tensor *y = vg_mul(d, vg_rsqrt(vg_add_scalar(var, eps)));
  if (weight) y = vg_mul(y, weight);
  if (bias) y = vg_add(y, bias);
  return y;
}

static bool same_bits(const vg_tensor *a, const vg_tensor *b, int64_t *first) {
  *first = -1;
  if (!a || !b || vg_numel(a) != vg_numel(b)) return false;
  float *pa = host(a), *pb = host(b);
  for (int64_t i = 0; i < vg_numel(a) && *first < 0; i++)
    if (memcmp(pa + i, pb + i, 4) != 0) *first = i;
  free(pa);
  free(pb);
  return *first < 0;
}

typedef struct {
  const char *what;
  int ndim;
  int64_t shape[4];
  int nnorm;
  bool w, b;
  unsigned grads;   /* bit 0 x, 1 w, 2 b */
  bool spiky;       /* +-1e17 at flat 0 and 64K of x, and of R at rows 0, 64K: the order of a sum shows */
} bit_case;

/* y and grads of L = sum(y * R) for one implementation; out[0] = y, out[1..3] grads */
static void ln_run(const bit_case *k, bool fused, vg_tensor **out) {
  int64_t pshape[4];
  for (int i = 0; i < k->nnorm; i++) pshape[i] = k->shape[k->ndim - k->nnorm + i];
  vg_tensor *x = vg_tensor_new(VG_F32, k->ndim, k->shape), *r = vg_tensor_new(VG_F32, k->ndim, k->shape);
  vg_tensor *w = k->w ? vg_tensor_new(VG_F32, k->nnorm, pshape) : NULL;
  vg_tensor *b = k->b ? vg_tensor_new(VG_F32, k->nnorm, pshape) : NULL;
  vg_normal_(x, 3, 2, 11);
  vg_uniform_(r, -1, 1, 12);
  if (w) vg_uniform_(w, 0.5, 1.5, 13);
  if (b) vg_normal_(b, 0, 1, 14);
  if (k->spiky) {
    int64_t n_last = k->shape[k->ndim - 1];
    vg_f32(x)[0] = vg_f32(r)[0] = 1e17f;
    vg_f32(x)[65536] = -1e17f;
    if (65536 * n_last < vg_numel(r)) vg_f32(r)[65536 * n_last] = -1e17f;
  }
  vg_tensor *ps[3] = {x, w, b};
  for (int i = 0; i < 3; i++)
    if (ps[i]) vg_requires_grad_(ps[i], k->grads >> i & 1);
  vg_scope_begin();
  vg_tensor *y = fused ? vg_layer_norm(x, k->nnorm, w, b, 1e-5f) : ln_composite(x, k->nnorm, w, b, 1e-5f);
  out[0] = y ? vg_tensor_clone_heap(y) : NULL;
  if (y && k->grads) vg_backward(vg_sum_all(vg_mul(y, r)));
  vg_scope_end();
  for (int i = 0; i < 3; i++) {
    out[1 + i] = ps[i] ? ps[i]->grad : NULL;
    if (ps[i]) ps[i]->grad = NULL;
    vg_tensor_free(ps[i]);
  }
  vg_tensor_free(r);
}

static void bit_identity(void) {
  static const bit_case K[] = {
      {"FastFlow-like (4,64,16,16) over 3 dims, affine", 4, {4, 64, 16, 16}, 3, true, true, 7, false},
      {"FastFlow-like, only weight and bias learn", 4, {4, 64, 16, 16}, 3, true, true, 6, false},
      {"(70,10): 64+ rows, affine", 2, {70, 10}, 1, true, true, 7, false},
      {"(2,196608): runs > 64K split in pieces", 2, {2, 196608}, 1, true, true, 7, true},
      {"(2,196608) no affine: runs > 64K split in pieces", 2, {2, 196608}, 1, false, false, 1, true},
      {"(2,70001): odd run > 64K, bias only", 2, {2, 70001}, 1, false, true, 5, false},
      {"(3,5,1): one element per row", 3, {3, 5, 1}, 1, true, true, 7, false},
      {"(6,8) over both dims: no leading dims", 2, {6, 8}, 2, true, true, 7, false},
      {"(196608,3): column sums of > 64K rows, split in pieces", 2, {196608, 3}, 1, true, true, 7, true},
      {"(4,5,33) no affine", 3, {4, 5, 33}, 1, false, false, 1, false},
      {"(1,3,40) weight only, leading dim of 1", 3, {1, 3, 40}, 1, true, false, 3, false},
  };
  for (size_t c = 0; c < sizeof K / sizeof K[0]; c++) {
    vg_tensor *f[4], *p[4];
    ln_run(&K[c], true, f);
    ln_run(&K[c], false, p);
    static const char *nm[4] = {"y", "grad x", "grad weight", "grad bias"};
    for (int i = 0; i < 4; i++) {
      bool want = i == 0 || (K[c].grads >> (i - 1) & 1);
      if (!want) {
        VG_CHECK(!f[i] && !p[i], "bits %s: no %s", K[c].what, nm[i]);
        continue;
      }
      int64_t first;
      bool same = same_bits(f[i], p[i], &first);
      VG_CHECK(same, "bits %s: %s fused == composite bit for bit%s", K[c].what, nm[i], same ? "" : " (differs)");
      if (!same && first >= 0) {
        float *a = host(f[i]), *b = host(p[i]);
        printf("  first difference at %lld: fused %.9g composite %.9g\n", (long long)first, a[first], b[first]);
        free(a);
        free(b);
      }
      vg_tensor_free(f[i]);
      vg_tensor_free(p[i]);
    }
  }
  /* the thread count does not change a bit (softmax, log_softmax, layer_norm + backward) */
  vg_tensor *res[2][4];
  for (int t = 0; t < 2; t++) {
    vg_set_num_threads(t + 1);
    vg_tensor *x = vg_tensor_new(VG_F32, 3, (int64_t[]){37, 50, 90});
    vg_normal_(x, 0, 3, 5);
    vg_requires_grad_(x, true);
    vg_scope_begin();
    vg_tensor *y = vg_add(vg_add(vg_softmax(x, 1), vg_log_softmax(x, 2)), vg_layer_norm(x, 2, NULL, NULL, 1e-5f));
    vg_backward(vg_sum_all(vg_mul(y, vg_cos(x))));
    res[t][0] = vg_tensor_clone_heap(y);
    res[t][1] = x->grad;
    x->grad = NULL;
    vg_scope_end();
    vg_tensor_free(x);
  }
  vg_set_num_threads(0);
  int64_t first;
  VG_CHECK(same_bits(res[0][0], res[1][0], &first), "threads 1 and 2: softmax + log_softmax + layer_norm, same bits");
  VG_CHECK(same_bits(res[0][1], res[1][1], &first), "threads 1 and 2: their input grad, same bits");
  for (int t = 0; t < 2; t++) vg_tensor_free(res[t][0]), vg_tensor_free(res[t][1]);
  /* nn's LayerNorm module (FastFlow's) gives the composite's bits */
  vg_nn_module *m = vg_nn_layernorm_new(3, (int64_t[]){8, 6, 5}, 1e-5f, true);
  vg_scope_begin();
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){3, 8, 6, 5});
  vg_normal_(x, 1, 4, 9);
  vg_normal_(vg_nn_param(m, "weight"), 1, 0.3f, 10);
  vg_normal_(vg_nn_param(m, "bias"), 0, 0.3f, 11);
  vg_tensor *ym = vg_nn_forward(m, x), *yc = ln_composite(x, 3, vg_nn_param(m, "weight"), vg_nn_param(m, "bias"), 1e-5f);
  VG_CHECK(same_bits(ym, yc, &first), "nn LayerNorm module: the composite's bits");
  vg_scope_end();
  vg_nn_free(m);
}

/* ---- torch's special values, 0-d, errors ---- */
static void edge_cases(void) {
  vg_scope_begin();
  float ni = -INFINITY, pi = INFINITY, nan = NAN;
  vg_tensor *x = vg_from_data(VG_F32, 2, (int64_t[]){4, 3}, (float[]){ni, ni, ni, pi, 1, 2, nan, 1, 2, ni, 0, ni});
  float *s = host(vg_softmax(x, 1)), *l = host(vg_log_softmax(x, 1));
  bool all_nan = true;
  for (int i = 0; i < 9; i++) all_nan &= isnan(s[i]) && isnan(l[i]);
  VG_CHECK(all_nan, "rows of all -inf, with +inf, with NaN: softmax and log_softmax NaN (as torch)");
  VG_CHECK(s[9] == 0 && s[10] == 1 && s[11] == 0, "softmax with -inf entries: 0, 1, 0 (got %g %g %g)", s[9], s[10], s[11]);
  VG_CHECK(l[9] == ni && l[10] == 0 && l[11] == ni, "log_softmax with -inf entries: -inf, 0, -inf (got %g %g %g)", l[9],
           l[10], l[11]);
  free(s);
  free(l);
  /* the same along dim 0 (strided rows) */
  float *s0 = host(vg_softmax(vg_transpose(x, 0, 1), 0));
  VG_CHECK(isnan(s0[0]) && s0[3] == 0 && s0[7] == 1 && s0[11] == 0, "softmax along dim 0 of a transpose: same values");
  free(s0);
  /* large magnitudes stay finite and exact where they should */
  float *b = host(vg_softmax(vg_from_data(VG_F32, 1, (int64_t[]){3}, (float[]){1e4f, 1e4f, -1e4f}), 0));
  VG_CHECK(b[0] == 0.5f && b[1] == 0.5f && b[2] == 0, "softmax of (1e4, 1e4, -1e4) = (0.5, 0.5, 0)");
  free(b);
  /* 0-d: a row of one */
  vg_tensor *z = vg_from_data(VG_F32, 0, NULL, (float[]){3.5f});
  vg_tensor *sz = vg_softmax(z, 0), *lz = vg_log_softmax(z, -1);
  VG_CHECK(sz && sz->ndim == 0 && vg_item(sz) == 1.0f && lz && vg_item(lz) == 0.0f, "0-d softmax 1, log_softmax 0");
  /* errors */
  vg_tensor *x3 = vg_zeros(VG_F32, 2, (int64_t[]){2, 3});
  VG_CHECK(!vg_softmax(x3, 2) && strstr(vg_last_error(), "softmax: dim 2 out of range"), "softmax dim 2 of 2-d refused: %s",
           vg_last_error());
  VG_CHECK(!vg_log_softmax(x3, -3) && strstr(vg_last_error(), "log_softmax: dim -3"), "log_softmax dim -3 refused: %s",
           vg_last_error());
  VG_CHECK(!vg_softmax(vg_zeros(VG_F32, 0, NULL), 1), "0-d softmax dim 1 refused: %s", vg_last_error());
  VG_CHECK(!vg_layer_norm(x3, 0, NULL, NULL, 1e-5f) && strstr(vg_last_error(), "normalized dims 0"),
           "layer_norm over 0 dims refused: %s", vg_last_error());
  VG_CHECK(!vg_layer_norm(x3, 1, vg_zeros(VG_F32, 1, (int64_t[]){2}), NULL, 1e-5f) &&
               strstr(vg_last_error(), "weight [2] does not match"),
           "layer_norm weight of the wrong shape refused: %s", vg_last_error());
  VG_CHECK(!vg_layer_norm(x3, 1, NULL, vg_zeros(VG_F32, 1, (int64_t[]){4}), 1e-5f) && strstr(vg_last_error(), "bias"),
           "layer_norm bias of the wrong shape refused: %s", vg_last_error());
  VG_CHECK(!vg_softmax(vg_cast(x3, VG_F16), 0) && strstr(vg_last_error(), "f16 compute needs a CUDA tensor"),
           "cpu f16 softmax refused: %s", vg_last_error());
  VG_CHECK(!vg_layer_norm(vg_cast(x3, VG_I64), 1, NULL, NULL, 1e-5f), "i64 layer_norm refused: %s", vg_last_error());
  /* a constant row: var 0, rstd 1/sqrt(eps), y 0 (and its grads finite) */
  vg_tensor *c = vg_full(VG_F32, 2, (int64_t[]){2, 5}, 7.0);
  vg_requires_grad_(c, true);
  vg_tensor *yc = vg_layer_norm(c, 1, NULL, NULL, 1e-5f);
  float *py = host(yc);
  bool zero = true;
  for (int i = 0; i < 10; i++) zero &= py[i] == 0;
  VG_CHECK(zero, "layer_norm of a constant row is 0");
  free(py);
  VG_CHECK(vg_backward(vg_sum_all(vg_mul(yc, vg_reshape(vg_arange(0, 10, 1, VG_F32), 2, (int64_t[]){2, 5})))) == VG_OK && c->grad, "backward of a constant row");
  if (c->grad) {
    float *pg = host(c->grad);
    bool fin = true;
    for (int i = 0; i < 10; i++) fin &= isfinite(pg[i]);
    VG_CHECK(fin, "its grad is finite");
    free(pg);
  }
  vg_scope_end();
}

int main(void) {
  torch_cases();
  bit_identity();
  edge_cases();
  vg_scope_release();
  return vg_test_finish();
}
