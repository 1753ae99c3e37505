/* test_ops.c — the core ops: views, broadcasting, elementwise (SIMD vs scalar path and
 * vs libm in double), reductions, matmul, casts, random, scopes and error messages. */
#include "tests/vgtest.h"
#include "tensor/tensor.h"
#include "tensor/cpu/isa.h"
#include "tensor/internal.h"
#include "autograd/autograd.h"
#include "tensor/opstats.h"
#include "tensor/kmath/philox.h"
#include <math.h>
#include <string.h>

static float *host(const vg_tensor *t) {
  float *p = malloc(sizeof(float) * (size_t)(vg_numel(t) ? vg_numel(t) : 1));
  vg_to_host(t, VG_F32, p);
  return p;
}

static void check_views(void) {
  vg_scope_begin();
  vg_tensor *x = vg_arange(0, 24, 1, VG_F32);
  vg_tensor *v = vg_reshape(x, 3, (int64_t[]){2, 3, 4});
  VG_CHECK(v->storage == x->storage && v->shape[2] == 4, "reshape of contiguous is a view");
  vg_tensor *p = vg_permute(v, (int[]){2, 0, 1});
  VG_CHECK(p->storage == x->storage && p->stride[0] == 1 && p->stride[1] == 12, "permute is a view with permuted strides");
  VG_CHECK(!vg_is_contiguous(p), "permuted is not contiguous");
  vg_tensor *r = vg_reshape(p, 1, (int64_t[]){-1});
  VG_CHECK(r->storage != x->storage && vg_is_contiguous(r), "reshape of a permuted tensor copies");
  float *h = host(r);
  /* p[i][j][k] = v[j][k][i] = j*12 + k*4 + i */
  bool ok = true;
  for (int i = 0, n = 0; i < 4; i++)
    for (int j = 0; j < 2; j++)
      for (int k = 0; k < 3; k++, n++) ok &= h[n] == (float)(j * 12 + k * 4 + i);
  VG_CHECK(ok, "copy of permuted view has the right element order");
  free(h);
  VG_CHECK(vg_view(p, 1, (int64_t[]){24}) == NULL && strstr(vg_last_error(), "view"), "view of non-viewable layout refused: %s", vg_last_error());
  vg_tensor *s = vg_slice(v, 2, 1, 4, 2); /* [:, :, 1::2] */
  h = host(s);
  VG_CHECK(s->shape[2] == 2 && h[0] == 1 && h[1] == 3 && h[2] == 5 && h[11] == 23, "slice with step");
  free(h);
  vg_tensor *e = vg_expand(vg_reshape(vg_arange(0, 3, 1, VG_F32), 2, (int64_t[]){3, 1}), 3, (int64_t[]){2, 3, 4});
  VG_CHECK(e->stride[0] == 0 && e->stride[2] == 0, "expand uses zero strides");
  vg_tensor *es = vg_sum_all(e);
  VG_CHECK(vg_item(es) == 8 * (0 + 1 + 2), "sum over an expanded view: %g", vg_item(es));
  vg_tensor *u = vg_unsqueeze(vg_squeeze(vg_reshape(x, 3, (int64_t[]){1, 24, 1}), 0), 0);
  VG_CHECK(u->ndim == 3 && u->shape[0] == 1 && u->shape[1] == 24, "squeeze/unsqueeze");
  vg_tensor *parts[4];
  int np = vg_chunk(x, 3, 0, parts);
  VG_CHECK(np == 3 && parts[2]->shape[0] == 8 && vg_f32(parts[2])[0] == 16, "chunk");
  vg_tensor *sel = vg_select(v, 1, -1);
  VG_CHECK(sel->ndim == 2 && vg_item(vg_sum_all(sel)) == (8 + 9 + 10 + 11) + (20 + 21 + 22 + 23), "select negative index");
  vg_tensor *fl = vg_flatten(v, 1, 2);
  VG_CHECK(fl->ndim == 2 && fl->shape[1] == 12, "flatten");
  VG_CHECK(vg_reshape(x, 2, (int64_t[]){5, -1}) == NULL && strstr(vg_last_error(), "reshape") &&
               strstr(vg_last_error(), "[24]"), "bad reshape names op and shape: %s", vg_last_error());
  vg_scope_end();
}

typedef vg_tensor *(*unary_fn)(const vg_tensor *);
static vg_tensor *u_softplus(const vg_tensor *x) { return vg_softplus(x, 1, 20); }
static vg_tensor *u_leaky(const vg_tensor *x) { return vg_leaky_relu(x, 0.1f); }
static vg_tensor *u_pow(const vg_tensor *x) { return vg_pow_scalar(vg_abs(x), 1.7f); }
static vg_tensor *u_clamp(const vg_tensor *x) { return vg_clamp(x, -1, 2); }
static vg_tensor *u_log(const vg_tensor *x) { return vg_log(vg_abs(x)); }
static vg_tensor *u_sqrt(const vg_tensor *x) { return vg_sqrt(vg_abs(x)); }
static vg_tensor *u_rsqrt(const vg_tensor *x) { return vg_rsqrt(vg_abs(x)); }
static double r_exp(double v) { return exp(v); }
static double r_log(double v) { return log(fabs(v)); }
static double r_sqrt(double v) { return sqrt(fabs(v)); }
static double r_rsqrt(double v) { return 1 / sqrt(fabs(v)); }
static double r_tanh(double v) { return tanh(v); }
static double r_sigmoid(double v) { return 1 / (1 + exp(-v)); }
static double r_logsigmoid(double v) { return v < 0 ? v - log1p(exp(v)) : -log1p(exp(-v)); }
static double r_softplus(double v) { return v > 20 ? v : log1p(exp(v)); }
static double r_gelu(double v) { return 0.5 * v * erfc(-v / sqrt(2)); }
static double r_atan(double v) { return atan(v); }
static double r_relu(double v) { return v > 0 ? v : 0; }
static double r_leaky(double v) { return v > 0 ? v : 0.1 * v; }
static double r_abs(double v) { return fabs(v); }
static double r_neg(double v) { return -v; }
static double r_pow(double v) { return pow(fabs(v), (float)1.7f); }
static double r_clamp(double v) { return v < -1 ? -1 : (v > 2 ? 2 : v); }
static double r_erf(double v) { return erf(v); }
static double r_sin(double v) { return sin(v); }

static const struct {
  const char *name;
  unary_fn f;
  double (*ref)(double);
  float lo, hi;
  double rtol;
} UNARY[] = {
    {"exp", vg_exp, r_exp, -87, 88, 2e-7}, {"log", u_log, r_log, -1e4, 1e4, 2e-7},
    {"sqrt", u_sqrt, r_sqrt, -100, 100, 1e-7}, {"rsqrt", u_rsqrt, r_rsqrt, -100, 100, 2e-7},
    {"tanh", vg_tanh, r_tanh, -12, 12, 3e-7}, {"sigmoid", vg_sigmoid, r_sigmoid, -40, 40, 3e-7},
    {"logsigmoid", vg_logsigmoid, r_logsigmoid, -40, 40, 3e-7}, {"softplus", u_softplus, r_softplus, -40, 40, 3e-7},
    {"gelu", vg_gelu, r_gelu, -8, 8, 5e-6 /* erfcf tail in float */}, {"atan", vg_atan, r_atan, -50, 50, 2e-7},
    {"relu", vg_relu, r_relu, -5, 5, 0}, {"leaky_relu", u_leaky, r_leaky, -5, 5, 1e-7},
    {"abs", vg_abs, r_abs, -5, 5, 0}, {"neg", vg_neg, r_neg, -5, 5, 0}, {"pow 1.7", u_pow, r_pow, -9, 9, 3e-7},
    {"clamp", u_clamp, r_clamp, -5, 5, 0}, {"erf", vg_erf, r_erf, -4, 4, 3e-7}, {"sin", vg_sin, r_sin, -9, 9, 3e-7},
};

static void check_unary(void) {
  int64_t n = 1003; /* odd: exercises vector tails */
  for (size_t k = 0; k < sizeof UNARY / sizeof UNARY[0]; k++) {
    vg_scope_begin();
    vg_tensor *x = vg_rand(1, &n, 10 + k);
    x = vg_affine(x, UNARY[k].hi - UNARY[k].lo, UNARY[k].lo);
    float *hx = host(x);
    vg_cpu_set_isa(VG_ISA_SCALAR);
    float *ys = host(UNARY[k].f(x));
    vg_cpu_set_isa(VG_ISA_AVX512);
    float *yv = host(UNARY[k].f(x));
    /* non-contiguous input: every other element of a doubled buffer */
    vg_tensor *x2 = vg_slice(vg_reshape(vg_expand(vg_reshape(x, 2, (int64_t[]){n, 1}), 2, (int64_t[]){n, 2}), 1,
                                        (int64_t[]){2 * n}), 0, 0, 2 * n, 2);
    float *yn = host(UNARY[k].f(x2));
    double *want = malloc(sizeof(double) * (size_t)n);
    float *wf = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) wf[i] = (float)(want[i] = UNARY[k].ref(hx[i]));
    char what[96];
    snprintf(what, sizeof what, "%s: %s path vs scalar path", UNARY[k].name, vg_isa_name(vg_cpu_isa()));
    VG_CHECK_CLOSE(yv, ys, n, 1e-6, 1e-30, what);
    snprintf(what, sizeof what, "%s: strided input vs contiguous", UNARY[k].name);
    VG_CHECK_CLOSE(yn, yv, n, 0, 0, what);
    snprintf(what, sizeof what, "%s: vs libm in double (rtol %.0e + 2 ulp)", UNARY[k].name, UNARY[k].rtol);
    VG_CHECK_CLOSE(yv, wf, n, UNARY[k].rtol + 2.4e-7, 1e-37, what);
    free(hx); free(ys); free(yv); free(yn); free(want); free(wf);
    vg_scope_end();
  }
  /* special values */
  vg_scope_begin();
  float sv[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 88.8f, -104.5f};
  vg_tensor *x = vg_from_data(VG_F32, 1, (int64_t[]){9}, sv);
  float *e = host(vg_exp(x)), *l = host(vg_log(x)), *t = host(vg_tanh(x)), *s = host(vg_sigmoid(x));
  VG_CHECK(e[0] == 1 && e[2] == INFINITY && e[3] == 0 && isnan(e[4]) && e[7] == INFINITY && e[8] == 0, "exp special values");
  VG_CHECK(l[0] == -INFINITY && l[2] == INFINITY && isnan(l[3]) && isnan(l[4]) && fabsf(l[5] - logf(1e-40f)) < 1e-4f && isnan(l[6]),
           "log special values (subnormal %g vs %g)", l[5], logf(1e-40f));
  VG_CHECK(t[2] == 1 && t[3] == -1 && isnan(t[4]) && s[2] == 1 && s[3] == 0 && isnan(s[4]), "tanh/sigmoid at +-inf, NaN");
  free(e); free(l); free(t); free(s);
  vg_scope_end();
}

static void check_binary(void) {
  vg_scope_begin();
  vg_tensor *a = vg_randn(3, (int64_t[]){4, 1, 5}, 1), *b = vg_randn(2, (int64_t[]){3, 5}, 2);
  vg_tensor *ops[6];
  vg_cpu_set_isa(VG_ISA_SCALAR);
  vg_tensor *ref[6] = {vg_add(a, b), vg_sub(a, b), vg_mul(a, b), vg_div(a, b), vg_maximum(a, b), vg_minimum(a, b)};
  vg_cpu_set_isa(VG_ISA_AVX512);
  ops[0] = vg_add(a, b); ops[1] = vg_sub(a, b); ops[2] = vg_mul(a, b); ops[3] = vg_div(a, b);
  ops[4] = vg_maximum(a, b); ops[5] = vg_minimum(a, b);
  VG_CHECK(ops[0]->ndim == 3 && ops[0]->shape[0] == 4 && ops[0]->shape[1] == 3 && ops[0]->shape[2] == 5, "broadcast shape [4,3,5]");
  float *ha = host(a), *hb = host(b);
  const char *names[6] = {"add", "sub", "mul", "div", "maximum", "minimum"};
  for (int k = 0; k < 6; k++) {
    float *g = host(ops[k]), *r = host(ref[k]), w[60];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 3; j++)
        for (int l = 0; l < 5; l++) {
          float u = ha[i * 5 + l], v = hb[j * 5 + l];
          w[(i * 3 + j) * 5 + l] = k == 0 ? u + v : k == 1 ? u - v : k == 2 ? u * v : k == 3 ? u / v : k == 4 ? fmaxf(u, v) : fminf(u, v);
        }
    char what[64];
    snprintf(what, sizeof what, "%s broadcast vs reference", names[k]);
    VG_CHECK_CLOSE(g, w, 60, 0, 0, what);
    snprintf(what, sizeof what, "%s simd vs scalar", names[k]);
    VG_CHECK_CLOSE(g, r, 60, 0, 0, what);
    free(g); free(r);
  }
  vg_tensor *lt = vg_lt(a, b);
  VG_CHECK(lt->dtype == VG_BOOL && ((uint8_t *)vg_data(lt))[0] == (ha[0] < hb[0]), "comparison gives bool");
  vg_tensor *w = vg_where(lt, a, b);
  float *hw = host(w), *mn = host(ops[5]);
  VG_CHECK_CLOSE(hw, mn, 60, 0, 0, "where(a<b, a, b) == minimum");
  free(hw); free(mn); free(ha); free(hb);
  /* transposed (non-contiguous) operands */
  vg_tensor *m = vg_randn(2, (int64_t[]){6, 7}, 3);
  vg_tensor *t1 = vg_add(vg_transpose(m, 0, 1), vg_transpose(m, 0, 1));
  vg_tensor *t2 = vg_transpose(vg_scale(m, 2), 0, 1);
  float *h1 = host(t1), *h2 = host(t2);
  VG_CHECK_CLOSE(h1, h2, 42, 0, 0, "binary on transposed inputs");
  free(h1); free(h2);
  /* errors */
  VG_CHECK(vg_add(a, vg_randn(1, (int64_t[]){4}, 1)) == NULL && strstr(vg_last_error(), "add") &&
               strstr(vg_last_error(), "[4, 1, 5]") && strstr(vg_last_error(), "[4]"),
           "broadcast error names op and shapes: %s", vg_last_error());
  VG_CHECK(vg_mul(a, vg_cast(a, VG_I32)) == NULL && strstr(vg_last_error(), "i32"), "dtype mismatch refused: %s", vg_last_error());
  VG_CHECK(vg_exp(vg_add(a, vg_randn(1, (int64_t[]){4}, 1))) == NULL && strstr(vg_last_error(), "add"),
           "NULL propagates with the first error");
  VG_CHECK(vg_matmul(a, b) == NULL && strstr(vg_last_error(), "matmul"), "matmul shape error: %s", vg_last_error());
  VG_CHECK(vg_sum(a, 1, (int[]){3}, false) == NULL && strstr(vg_last_error(), "dim 3"), "bad reduction dim: %s", vg_last_error());
  VG_CHECK(vg_conv2d(a, b, NULL, (vg_conv2d_opts){0}) == NULL && strstr(vg_last_error(), "conv2d"), "conv2d wants 4-d: %s", vg_last_error());
  vg_scope_end();
}

static void check_reductions(void) {
  vg_scope_begin();
  int64_t shp[4] = {3, 5, 7, 11};
  vg_tensor *x = vg_randn(4, shp, 4);
  vg_tensor *xp = vg_permute(x, (int[]){3, 1, 0, 2}); /* non-contiguous */
  float *h = host(x);
  /* sum over dims {0, 2} of xp = dims {3, 0} of x: out[a][b] with a over x dim 1, b over x dim 2 */
  vg_tensor *s = vg_sum(xp, 2, (int[]){0, 2}, false);
  float *hs = host(s), want[35];
  for (int j = 0; j < 5; j++)
    for (int k = 0; k < 7; k++) {
      double acc = 0;
      for (int i = 0; i < 3; i++)
        for (int l = 0; l < 11; l++) acc += h[((i * 5 + j) * 7 + k) * 11 + l];
      want[j * 7 + k] = (float)acc;
    }
  VG_CHECK(s->ndim == 2 && s->shape[0] == 5 && s->shape[1] == 7, "sum keeps order of remaining dims");
  VG_CHECK_CLOSE(hs, want, 35, 1e-6, 1e-6, "sum over permuted dims vs double reference");
  vg_tensor *mx = vg_amax(x, 2, (int[]){1, 3}, true);
  float *hm = host(mx), wm[21];
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 7; k++) {
      float m = -INFINITY;
      for (int j = 0; j < 5; j++)
        for (int l = 0; l < 11; l++) m = fmaxf(m, h[((i * 5 + j) * 7 + k) * 11 + l]);
      wm[i * 7 + k] = m;
    }
  VG_CHECK(mx->ndim == 4 && mx->shape[1] == 1 && mx->shape[3] == 1, "amax keepdim shape");
  VG_CHECK_CLOSE(hm, wm, 21, 0, 0, "amax over dims 1,3");
  vg_tensor *am = vg_argmax(x, -1, false);
  const int64_t *pa = vg_data(am);
  int64_t best = 0;
  for (int l = 1; l < 11; l++) if (h[l] > h[best]) best = l;
  VG_CHECK(am->dtype == VG_I64 && pa[0] == best, "argmax");
  vg_tensor *mi_idx, *mi = vg_min_dim(x, 3, false, &mi_idx);
  int64_t worst = 0;
  for (int l = 1; l < 11; l++) if (h[l] < h[worst]) worst = l;
  VG_CHECK(mi->ndim == 3 && ((int64_t *)vg_data(mi_idx))[0] == worst && vg_f32(mi)[0] == h[worst], "min over a dim: values and indices");
  vg_tensor *mean = vg_mean(x, 0, NULL, false), *var = vg_var(x, 0, NULL, true, false);
  double m = 0, v = 0;
  for (int i = 0; i < 1155; i++) m += h[i];
  m /= 1155;
  for (int i = 0; i < 1155; i++) v += (h[i] - m) * (h[i] - m);
  v /= 1154;
  VG_CHECK(fabs(vg_item(mean) - m) < 1e-6 && fabs(vg_item(var) - v) < 1e-5 * v, "mean %g var %g vs %g %g", vg_item(mean), vg_item(var), m, v);
  free(h); free(hs); free(hm);
  /* a big full reduction: identical for 1 and 2 threads; vs double */
  int64_t big = 3000017;
  vg_tensor *bx = vg_rand(1, &big, 9);
  vg_set_num_threads(1);
  float s1 = vg_item(vg_sum_all(bx)), a1 = vg_item(vg_amax(bx, 0, NULL, false));
  vg_set_num_threads(2);
  float s2 = vg_item(vg_sum_all(bx)), a2 = vg_item(vg_amax(bx, 0, NULL, false));
  float *hb = host(bx);
  double acc = 0;
  for (int64_t i = 0; i < big; i++) acc += hb[i];
  free(hb);
  VG_CHECK(s1 == s2 && a1 == a2, "big reduction identical for 1 and 2 threads (%.9g %.9g)", s1, s2);
  VG_CHECK(fabs(s2 - acc) <= 1e-6 * fabs(acc), "sum of 3M elements vs double: %.9g vs %.9g", s2, acc);
  vg_set_num_threads(0);
  vg_scope_end();
}

/* column sums (8 adjacent outputs at once in reduce.c) against each column summed alone
 * (a one-column view: the per-output path): the same bits, for row counts on either side
 * of the 8 accumulators and column counts that leave a partial group, plus -0 columns */
static void check_column_sums(void) {
  const int64_t rows[] = {1, 7, 8, 64, 67}, cols[] = {8, 13, 40};
  for (int a = 0; a < 5; a++)
    for (int b = 0; b < 3; b++) {
      vg_scope_begin();
      int64_t R = rows[a], C = cols[b];
      vg_tensor *x = vg_scale(vg_randn(3, (int64_t[]){2, R, C}, (uint64_t)(R * 100 + C)), 3.0f);
      float *xd = vg_f32(x);
      for (int64_t i = 0; i < 2 * R * C; i++) xd[i] = ldexpf(xd[i], (int)(i * 7919 % 61) - 30);   /* magnitudes 2^-30..2^30 */
      for (int64_t i = 0; i < 2 * R; i++) xd[i * C + 3] = -0.0f;   /* column 3 all -0: sums to +0 */
      vg_tensor *s = vg_sum(x, 1, (int[]){1}, false);
      int bad = -1;
      for (int64_t n = 0; n < 2 && bad < 0; n++)
        for (int64_t c = 0; c < C && bad < 0; c++) {
          vg_tensor *one = vg_sum(vg_narrow(vg_select(x, 0, n), 1, c, 1), 1, (int[]){0}, false);
          float want = vg_f32(one)[0], got = vg_f32(s)[n * C + c];
          if (memcmp(&want, &got, sizeof got)) bad = (int)(n * C + c);
        }
      VG_CHECK(bad < 0, "sum over rows of (2, %lld, %lld): the columns' own sums bit for bit (first differing output %d)",
               (long long)R, (long long)C, bad);
      vg_scope_end();
    }
}

static void check_matmul(void) {
  vg_scope_begin();
  vg_tensor *a = vg_randn(3, (int64_t[]){3, 17, 9}, 5), *b = vg_randn(2, (int64_t[]){13, 9}, 6);
  vg_tensor *c = vg_matmul(a, vg_transpose(b, 0, 1)); /* (3,17,13), b^T non-contiguous */
  float *ha = host(a), *hb = host(b), *hc = host(c), want[3 * 17 * 13];
  for (int z = 0; z < 3; z++)
    for (int i = 0; i < 17; i++)
      for (int j = 0; j < 13; j++) {
        double acc = 0;
        for (int k = 0; k < 9; k++) acc += (double)ha[(z * 17 + i) * 9 + k] * hb[j * 9 + k];
        want[(z * 17 + i) * 13 + j] = (float)acc;
      }
  VG_CHECK(c->ndim == 3 && c->shape[2] == 13, "matmul batched broadcast shape");
  VG_CHECK_CLOSE(hc, want, 3 * 17 * 13, 1e-5, 1e-5, "matmul with transposed, broadcast operand");
  vg_tensor *v = vg_matmul(vg_select(a, 0, 1), vg_select(b, 0, 2)); /* (17,9) @ (9) -> (17) */
  float *hv = host(v);
  bool ok = v->ndim == 1 && v->shape[0] == 17;
  for (int i = 0; i < 17 && ok; i++) {
    double acc = 0;
    for (int k = 0; k < 9; k++) acc += (double)ha[(17 + i) * 9 + k] * hb[2 * 9 + k];
    ok = fabs(hv[i] - acc) < 1e-5;
  }
  VG_CHECK(ok, "matrix @ vector");
  free(ha); free(hb); free(hc); free(hv);
  vg_scope_end();
}

static void check_casts_and_random(void) {
  vg_scope_begin();
  float vals[] = {0.1f, -2.5f, 65504.0f, 70000.0f, 1e-8f, 3.14159f, -0.0f, 1.0009765625f};
  vg_tensor *x = vg_from_data(VG_F32, 1, (int64_t[]){8}, vals);
  float *h16 = host(vg_cast(vg_cast(x, VG_F16), VG_F32)), *hb = host(vg_cast(vg_cast(x, VG_BF16), VG_F32));
  /* torch: tensor(vals).half().float() and .bfloat16().float() */
  float w16[] = {0.0999755859375f, -2.5f, 65504.0f, INFINITY, 0.0f, 3.140625f, -0.0f, 1.0009765625f};
  float wbf[] = {0.10009765625f, -2.5f, 65536.0f, 70144.0f, 1.0011717677116394e-08f, 3.140625f, -0.0f, 1.0f};
  VG_CHECK_CLOSE(h16, w16, 8, 0, 0, "f16 round trip (round to nearest even, overflow to inf)");
  VG_CHECK_CLOSE(hb, wbf, 8, 0, 0, "bf16 round trip");
  free(h16); free(hb);
  vg_tensor *i = vg_cast(vg_from_data(VG_F32, 1, (int64_t[]){3}, (float[]){-1.7f, 2.9f, 0.2f}), VG_I64);
  const int64_t *pi = vg_data(i);
  VG_CHECK(pi[0] == -1 && pi[1] == 2 && pi[2] == 0, "float -> i64 truncates toward zero");
  int64_t n = 200003;
  vg_set_num_threads(1);
  float *r1 = host(vg_randn(1, &n, 42));
  vg_set_num_threads(2);
  float *r2 = host(vg_randn(1, &n, 42)), *r3 = host(vg_randn(1, &n, 43));
  VG_CHECK(!memcmp(r1, r2, sizeof(float) * (size_t)n) && memcmp(r1, r3, sizeof(float) * (size_t)n),
           "randn: same seed same numbers for 1 and 2 threads; other seed differs");
  double m = 0, v = 0;
  for (int64_t k = 0; k < n; k++) m += r1[k];
  m /= n;
  for (int64_t k = 0; k < n; k++) v += (r1[k] - m) * (r1[k] - m);
  v /= n;
  VG_CHECK(fabs(m) < 0.01 && fabs(v - 1) < 0.01, "randn moments: mean %.4f var %.4f", m, v);
  /* a contiguous f32 output (one Philox block per 4 / 2 elements) gives element i the same
   * bits as a strided one (a draw per logical element), for any start of a thread chunk */
  for (int normal = 0; normal < 2; normal++) {
    vg_tensor *full = vg_empty(VG_F32, 3, (int64_t[]){7, 13, 5}), *buf = vg_empty(VG_F32, 3, (int64_t[]){5, 13, 7});
    vg_tensor *tv = vg_permute(buf, (int[]){2, 1, 0});   /* (7, 13, 5), not contiguous */
    vg_tensor *big = vg_empty(VG_F32, 1, (int64_t[]){40003}), *nar = vg_narrow(big, 0, 3, 40000);
    if (normal) {
      vg_normal_(full, 0.5f, 2.0f, 99);
      vg_normal_(tv, 0.5f, 2.0f, 99);
      vg_normal_(nar, -1.0f, 0.25f, 5);
    } else {
      vg_uniform_(full, -3.0f, 2.0f, 99);
      vg_uniform_(tv, -3.0f, 2.0f, 99);
      vg_uniform_(nar, -1.0f, 0.25f, 5);
    }
    vg_tensor *tc = vg_contiguous(tv);
    int64_t bad = 0;
    for (int64_t k = 0; k < 7 * 13 * 5; k++) bad += memcmp(vg_f32(full) + k, vg_f32(tc) + k, sizeof(float)) != 0;
    /* the narrowed (offset 3) output vs element-wise vg_philox_draw of its logical index */
    for (int64_t k = 0; k < 40000; k++) {
      float w = normal ? -1.0f + 0.25f * vg_philox_normal_at(5, (uint64_t)k) : -1.0f + (0.25f + 1.0f) * vg_philox_uniform_at(5, (uint64_t)k);
      bad += memcmp(vg_f32(nar) + k, &w, sizeof w) != 0;
    }
    VG_CHECK(bad == 0, "%s_: contiguous and strided outputs, and an offset view, bit-identical per logical element "
             "(%lld differ)", normal ? "normal" : "uniform", (long long)bad);
  }
  float *u = host(vg_rand(1, &n, 7));
  double um = 0, umin = 1, umax = 0;
  for (int64_t k = 0; k < n; k++) { um += u[k]; umin = fmin(umin, u[k]); umax = fmax(umax, u[k]); }
  VG_CHECK(fabs(um / n - 0.5) < 0.005 && umin >= 0 && umax < 1, "rand in [0,1), mean %.4f", um / n);
  float *bern = host(vg_bernoulli(1, &n, 0.3f, 8));
  double bm = 0;
  for (int64_t k = 0; k < n; k++) bm += bern[k];
  VG_CHECK(fabs(bm / n - 0.3) < 0.005, "bernoulli(0.3) mean %.4f", bm / n);
  vg_tensor *perm = vg_randperm(1000, 5);
  const int64_t *pp = vg_data(perm);
  uint8_t seen[1000] = {0};
  bool isperm = true;
  for (int k = 0; k < 1000; k++) { isperm &= pp[k] >= 0 && pp[k] < 1000 && !seen[pp[k]]; if (isperm) seen[pp[k]] = 1; }
  VG_CHECK(isperm && pp[0] != 0, "randperm is a permutation");
  free(r1); free(r2); free(r3); free(u); free(bern);
  vg_set_num_threads(0);
  vg_scope_end();
}

static void check_scopes(void) {
  /* heap tensors outside scopes; nested scopes rewind; grads of heap leaves are heap */
  vg_tensor *w = vg_tensor_new(VG_F32, 1, (int64_t[]){4});
  VG_CHECK((w->flags & VG_TF_HEAP) && vg_f32(w)[3] == 0, "vg_tensor_new is zeroed heap");
  vg_requires_grad_(w, true);
  vg_scope_begin();
  vg_tensor *l1 = vg_sum_all(vg_mul(w, w));
  vg_scope_begin();
  vg_tensor *tmp = vg_full(VG_F32, 1, (int64_t[]){1000}, 3);
  VG_CHECK(vg_scope_depth() == 2 && vg_f32(tmp)[999] == 3, "nested scope");
  vg_scope_end();
  VG_CHECK(vg_backward(l1) == VG_OK && w->grad && (w->grad->flags & VG_TF_HEAP), "backward gives a heap grad for a heap leaf");
  VG_CHECK(vg_f32(w->grad)[0] == 0, "d/dw sum(w*w) at w = 0");
  vg_fill_(w, 2);
  vg_tensor *l2 = vg_sum_all(vg_mul(w, w));
  vg_backward(l2);
  vg_backward(l2);
  VG_CHECK(vg_f32(w->grad)[1] == 8, "grads accumulate across backward calls (2 * 2w = 8): %g", vg_f32(w->grad)[1]);
  VG_CHECK(vg_backward(vg_full(VG_F32, 1, (int64_t[]){2}, 1)) != VG_OK, "backward of a tensor without history refused: %s", vg_last_error());
  vg_no_grad_begin();
  vg_tensor *ng = vg_mul(w, w);
  vg_no_grad_end();
  VG_CHECK(!ng->requires_grad && !ng->node, "no-grad records nothing");
  vg_scope_end();
  vg_requires_grad_(w, false);
  vg_tensor *heap2 = vg_add(w, w);
  VG_CHECK(heap2 && (heap2->flags & VG_TF_HEAP) && vg_f32(heap2)[0] == 4, "ops outside scopes return heap tensors");
  vg_tensor_free(heap2);
  vg_tensor_free(w);
}

/* vg_scope_end_keep: the kept tensors survive in the parent with their values (a strided
 * view comes back contiguous), everything else of the inner scope is freed (20 rounds of
 * 12 MB of intermediates keep the arena at ~one round), heap results outside scopes */
static void check_scope_keep(void) {
  vg_scope_release();
  vg_tensor *x = vg_tensor_new(VG_F32, 2, (int64_t[]){512, 2048});   /* 4 MB */
  vg_uniform_(x, -1, 1, 5);
  vg_scope_begin();
  vg_tensor *acc = NULL;
  bool same = true;
  for (int r = 0; r < 20; r++) {
    vg_scope_begin();
    vg_tensor *a = vg_relu(vg_add_scalar(x, (float)r));
    vg_tensor *b = vg_mul(a, a), *c = vg_sub(b, a);
    vg_tensor *keep[3] = {vg_sum_all(c), vg_narrow(vg_transpose(c, 0, 1), 0, 5, 3), NULL};
    float want = vg_item(keep[0]), w01 = vg_f32(vg_contiguous(keep[1]))[1];
    vg_scope_end_keep(3, keep);
    same = same && keep[0] && keep[1] && !keep[2] && vg_item(keep[0]) == want && keep[1]->shape[0] == 3 &&
           keep[1]->shape[1] == 512 && vg_is_contiguous(keep[1]) && vg_f32(keep[1])[1] == w01 &&
           vg_scope_depth() == 1;
    acc = acc ? vg_add(acc, keep[0]) : keep[0];
  }
  size_t arena = vg_scope_arena_bytes();
  VG_CHECK(same && arena < (size_t)40 << 20, "scope_end_keep: 20 rounds of 12 MB intermediates, kept values intact, "
           "arena %.1f MB (without it ~250 MB)", (double)arena / 1048576.0);
  vg_scope_end();
  vg_scope_begin();
  vg_tensor *k = vg_scale(x, 2.0f);
  vg_scope_end_keep(1, &k);
  VG_CHECK(k && (k->flags & VG_TF_HEAP) && vg_f32(k)[7] == 2 * vg_f32(x)[7] && vg_scope_depth() == 0,
           "scope_end_keep at depth 1: a heap tensor");
  vg_tensor_free(k);
  /* reset_keep: a loop's state replaced in place (40 steps of 12 MB each stay within ~2
   * steps of arena instead of 480 MB), values as computed without it */
  vg_scope_release();
  vg_scope_begin();
  vg_scope_begin();
  vg_tensor *h = x;
  float want = vg_f32(x)[12345];
  for (int r = 0; r < 40; r++) {
    h = vg_add_scalar(vg_scale(vg_relu(h), 0.5f), 0.25f);
    want = (want > 0 ? want : 0) * 0.5f + 0.25f;
    vg_scope_reset_keep(1, &h);
  }
  vg_scope_end_keep(1, &h);
  size_t arena2 = vg_scope_arena_bytes();
  VG_CHECK(h && vg_f32(h)[12345] == want && arena2 < (size_t)40 << 20 && vg_scope_depth() == 1,
           "scope_reset_keep: 40 loop steps, state %g (want %g), arena %.1f MB", vg_f32(h)[12345], want,
           (double)arena2 / 1048576.0);
  /* overlapping keeps (one tensor twice, a slice of it) and an older tensor kept as is */
  vg_scope_begin();
  vg_tensor *y = vg_scale(x, 3.0f);
  vg_tensor *ks[4] = {y, vg_narrow(y, 0, 100, 2), y, x};
  vg_scope_end_keep(4, ks);
  VG_CHECK(vg_f32(ks[0])[5] == 3 * vg_f32(x)[5] && vg_f32(ks[1])[1] == 3 * vg_f32(x)[100 * 2048 + 1] &&
               vg_f32(ks[2])[7] == 3 * vg_f32(x)[7] && vg_f32(ks[3]) == vg_f32(x),
           "scope_end_keep: a tensor twice, a slice of it, and an outer tensor (referenced, not copied)");
  vg_scope_end();
  vg_tensor_free(x);
  vg_scope_release();
}

static void check_nn_functional(void) {
  vg_scope_begin();
  int64_t n = 100000;
  vg_tensor *x = vg_full(VG_F32, 1, &n, 2.0);
  vg_tensor *d = vg_dropout(x, 0.25f, true, 3);
  float *h = host(d);
  int64_t zeros = 0;
  bool vals_ok = true;
  for (int64_t i = 0; i < n; i++) {
    if (h[i] == 0) zeros++;
    else vals_ok &= fabsf(h[i] - 2.0f / 0.75f) < 1e-6f;
  }
  VG_CHECK(fabs((double)zeros / n - 0.25) < 0.01 && vals_ok, "dropout(0.25) train: %.4f dropped, kept scaled by 1/(1-p)", (double)zeros / n);
  VG_CHECK(vg_dropout(x, 0.25f, false, 3) == x, "dropout in eval is the identity");
  VG_CHECK(vg_dropout(x, 1.5f, true, 3) == NULL && strstr(vg_last_error(), "dropout"), "dropout p > 1 refused");
  float *h2 = host(vg_dropout(x, 0.25f, true, 3));
  VG_CHECK(!memcmp(h, h2, sizeof(float) * (size_t)n), "dropout: same seed, same mask");
  free(h); free(h2);
  /* logsumexp with -inf rows and +inf entries, as torch */
  float v[] = {-INFINITY, -INFINITY, 1.0f, INFINITY, 0.0f, 1000.0f};
  vg_tensor *t = vg_from_data(VG_F32, 2, (int64_t[]){3, 2}, v);
  float *l = host(vg_logsumexp(t, 1, (int[]){1}, false));
  VG_CHECK(l[0] == -INFINITY && l[1] == INFINITY && fabsf(l[2] - 1000.0f) < 1e-3f, "logsumexp: %g %g %g", l[0], l[1], l[2]);
  free(l);
  float *sm = host(vg_softmax(vg_from_data(VG_F32, 1, (int64_t[]){3}, (float[]){1000, 1000, -1000}), 0));
  VG_CHECK(fabsf(sm[0] - 0.5f) < 1e-6f && sm[2] == 0, "softmax is stable for large inputs");
  free(sm);
  vg_scope_end();
}

/* conv2d with a fused ReLU (vg_conv2d_opts.act): relu(conv2d) bit for bit, as one op
 * when nothing is recorded; conv2d + relu (and their gradients) when autograd records */
static void check_conv_relu(void) {
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){2, 4, 9, 8}, 11), *b = vg_randn(1, (int64_t[]){6}, 13);
  vg_tensor *w = vg_randn(4, (int64_t[]){6, 2, 3, 3}, 12);
  vg_f32(x)[5] = NAN;   /* relu keeps NaN, fused or not */
  const vg_conv2d_opts o = {.sh = 2, .ph = 1, .pw = 2, .groups = 2};
  vg_conv2d_opts f = o;
  f.act = VG_ACT_RELU;
  for (int wb = 0; wb < 2; wb++) {
    vg_tensor *pre = vg_conv2d(x, w, wb ? b : NULL, o), *want = vg_relu(pre);
    vg_opstats s;
    vg_opstats_start();
    vg_tensor *got = vg_conv2d(x, w, wb ? b : NULL, f);
    vg_opstats_stop(&s);
    VG_CHECK(got && s.calls[VG_OP_CONV2D] == 1 && s.calls[VG_OP_RELU] == 0, "fused relu: one conv2d op, no relu op");
    float *hw = host(want), *hg = host(got), *hp = host(pre);
    int64_t n = vg_numel(want), same = 0, neg = 0, nan = 0;
    for (int64_t i = 0; i < n; i++) {
      same += hw[i] == hg[i] || (hw[i] != hw[i] && hg[i] != hg[i]);
      neg += hp[i] < 0;
      nan += hg[i] != hg[i];
    }
    VG_CHECK(same == n && neg > 10 && nan > 0, "%s bias: conv2d(act=relu) == relu(conv2d) at all %lld (%lld negatives zeroed, %lld NaN kept)",
             wb ? "with" : "no", (long long)n, (long long)neg, (long long)nan);
    free(hw); free(hg); free(hp);
  }
  {  /* big enough for the threaded, blocked GEMM (the ReLU runs per tile there) */
    vg_tensor *xb = vg_randn(4, (int64_t[]){2, 16, 40, 40}, 14), *wb = vg_randn(4, (int64_t[]){32, 16, 3, 3}, 15);
    vg_tensor *bb = vg_randn(1, (int64_t[]){32}, 16);
    float *hw = host(vg_relu(vg_conv2d(xb, wb, bb, (vg_conv2d_opts){.ph = 1, .pw = 1})));
    float *hg = host(vg_conv2d(xb, wb, bb, (vg_conv2d_opts){.ph = 1, .pw = 1, .act = VG_ACT_RELU}));
    VG_CHECK_CLOSE(hg, hw, 2 * 32 * 40 * 40, 0, 0, "fused relu, 32x1600x144 GEMM per image: == relu(conv2d)");
    free(hw); free(hg);
  }
  vg_f32(x)[5] = 0.5f;
  /* recorded: the gradients of the unfused pair */
  vg_tensor *g[2];
  for (int k = 0; k < 2; k++) {
    vg_tensor *wk = vg_randn(4, (int64_t[]){6, 2, 3, 3}, 12);
    vg_requires_grad_(wk, true);
    vg_tensor *y = k ? vg_conv2d(x, wk, b, f) : vg_relu(vg_conv2d(x, wk, b, o));
    VG_CHECK(y && y->requires_grad, "recorded conv2d%s", k ? "(act=relu)" : " + relu");
    vg_backward(vg_sum_all(vg_mul(y, y)));
    g[k] = wk->grad;
  }
  float *h0 = host(g[0]), *h1 = host(g[1]);
  VG_CHECK_CLOSE(h1, h0, vg_numel(g[0]), 0, 0, "fused relu under autograd: same weight gradient as conv2d + relu");
  free(h0); free(h1);
  f.act = (vg_act)7;
  VG_CHECK(vg_conv2d(x, w, b, f) == NULL && strstr(vg_last_error(), "activation"), "unknown activation refused: %s",
           vg_last_error());
  vg_scope_end();
}

/* vg_conv_bn_fold: conv2d with the folded weights == batch_norm (eval) of conv2d, with
 * and without the optional bias / gamma / beta; and its argument errors */
static void check_conv_bn_fold(void) {
  vg_scope_begin();
  const int64_t O = 6;
  vg_tensor *x = vg_randn(4, (int64_t[]){2, 4, 9, 8}, 21), *w = vg_randn(4, (int64_t[]){O, 4, 3, 3}, 22);
  vg_tensor *b = vg_randn(1, &O, 23), *g = vg_randn(1, &O, 24), *beta = vg_randn(1, &O, 25), *m = vg_randn(1, &O, 26);
  vg_tensor *v = vg_add_scalar(vg_abs(vg_randn(1, &O, 27)), 0.1f);
  const vg_conv2d_opts o = {.ph = 1, .pw = 1};
  for (int opt = 0; opt < 2; opt++) {
    const vg_tensor *bb = opt ? NULL : b, *gg = opt ? NULL : g, *be = opt ? NULL : beta;
    vg_tensor *want = vg_batch_norm(vg_conv2d(x, w, bb, o), m, v, gg, be, false, 0.1f, 1e-5f), *wf, *bf;
    vg_opstats st;
    vg_opstats_start();
    vg_status s = vg_conv_bn_fold(w, bb, gg, be, m, v, 1e-5f, &wf, &bf);
    vg_opstats_stop(&st);
    vg_tensor *got = s == VG_OK ? vg_conv2d(x, wf, bf, o) : NULL;
    float *hw = host(want), *hg = got ? host(got) : NULL;
    double e = 0, mx = 0;
    for (int64_t i = 0; hg && i < vg_numel(want); i++) {
      e = fmax(e, fabs((double)hw[i] - hg[i]));
      mx = fmax(mx, fabs((double)hw[i]));
    }
    VG_CHECK(got && st.calls[VG_OP_CONV_BN_FOLD] == 1 && st.calls[VG_OP_MUL] == 0 && e <= 1e-6 * mx,
             "conv_bn_fold (%s): one op; conv2d with the folded weights == batch_norm(conv2d) within %.1e of max (bound 1e-6)",
             opt ? "no bias, gamma, beta" : "bias, gamma, beta", mx > 0 ? e / mx : e);
    free(hw);
    free(hg);
  }
  vg_tensor *wf = NULL, *bf = NULL;
  VG_CHECK(vg_conv_bn_fold(w, NULL, NULL, NULL, vg_randn(1, (int64_t[]){5}, 1), v, 1e-5f, &wf, &bf) != VG_OK && !wf &&
               strstr(vg_last_error(), "running_mean"),
           "conv_bn_fold with a running_mean of the wrong size refused: %s", vg_last_error());
  VG_CHECK(vg_conv_bn_fold(w, NULL, NULL, NULL, m, NULL, 1e-5f, &wf, &bf) != VG_OK && strstr(vg_last_error(), "variance"),
           "conv_bn_fold without running_var refused: %s", vg_last_error());
  vg_scope_end();
}

/* every backend has a kernel for every non-view op of ops.def (one per op, not per family:
 * an op added to an existing family without its kernel is refused); one without is
 * refused by name, naming exactly the missing ops */
static void check_backend_table(void) {
  char err[512];
  const vg_backend *cpu = vg_backend_of(VG_CPU);
  VG_CHECK(vg_backend_complete(cpu, err, sizeof err), "cpu backend complete: %s", err);
  for (int op = 0; op < VG_OP_COUNT; op++)
    VG_CHECK((cpu->kernel[op] != NULL) == (vg_op_family_of((vg_op)op) != VG_FAM_VIEW),
             "cpu kernel of %s %s", vg_op_name((vg_op)op), cpu->kernel[op] ? "present" : "absent (view)");
  vg_backend partial = *cpu;
  partial.name = "partial";
  partial.kernel[VG_OP_MAX_POOL2D_BWD] = NULL;   /* one op of a family whose other ops all have kernels */
  VG_CHECK(!vg_backend_complete(&partial, err, sizeof err) && strstr(err, "partial") && strstr(err, "max_pool2d_bwd") &&
               !strstr(err, "avg_pool2d") && !strstr(err, "max_pool2d "), "a missing op kernel is named alone: %s", err);
  partial.kernel[VG_OP_LOG_SOFTMAX] = NULL;
  VG_CHECK(!vg_backend_complete(&partial, err, sizeof err) && strstr(err, "max_pool2d_bwd") && strstr(err, "log_softmax") &&
               !strstr(err, "log_softmax_bwd"), "every missing op is named: %s", err);
  for (int op = 0; op < VG_OP_COUNT; op++) {   /* each op alone: refused, naming it */
    if (vg_op_family_of((vg_op)op) == VG_FAM_VIEW) continue;
    vg_backend one = *cpu;
    one.kernel[op] = NULL;
    VG_CHECK(!vg_backend_complete(&one, err, sizeof err) && strstr(err, vg_op_name((vg_op)op)),
             "a backend without the %s kernel is refused: %s", vg_op_name((vg_op)op), err);
  }
  for (int op = 0; op < VG_OP_COUNT; op++)
    VG_CHECK(vg_op_family_of((vg_op)op) < VG_FAM_COUNT && strcmp(vg_op_family_name(vg_op_family_of((vg_op)op)), "?"),
             "op %s has a family", vg_op_name((vg_op)op));
}

int main(void) {
  check_backend_table();
  check_conv_bn_fold();
  check_conv_relu();
  check_views();
  check_nn_functional();
  check_unary();
  check_binary();
  check_reductions();
  check_column_sums();
  check_matmul();
  check_casts_and_random();
  check_scopes();
  check_scope_keep();
  vg_scope_release();
  return vg_test_finish();
}
