/* flows.c — FrEIA 0.2 invertible blocks and SequenceINN on Vigil tensors + autograd. */
#include "flows/flows.h"
#include "tensor/parallel.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
  F_ALLINONE, F_GLOW, F_RNVP, F_NICE, F_GIN, F_ONESIDED, F_CONDAFF, F_PERMUTE, F_ACTNORM,
  F_FIXED, F_SEQUENCE
} ftype;

typedef struct {
  ftype type;
  int ndim;                 /* without batch */
  int64_t dims[4];
  int64_t cond_ch;
  /* AllInOne */
  vg_flow_allinone_opts ao;
  int64_t split0, split1;   /* AllInOne: [C - C//2, C//2]; couplings: len1, len2 */
  /* couplings */
  vg_flow_coupling_opts co;
  /* ActNorm */
  bool init_next;
  /* sequence */
  int n, cap;
  int *conds;
  int (*shape_nd);
  int64_t (*shapes)[4];
} fimpl;

static vg_tensor *flow_module_forward(vg_nn_module *m, const vg_tensor *x) {
  return vg_flow_forward(m, x, 0, NULL, false, false, NULL);
}

static void fimpl_free(void *p) {
  fimpl *f = p;
  if (!f) return;
  free(f->conds); free(f->shape_nd); free(f->shapes);
  free(f);
}

static vg_nn_module *fmod_new(const char *kind, ftype t, int ndim, const int64_t *dims, int64_t cc) {
  fimpl *f = calloc(1, sizeof *f);
  f->type = t; f->ndim = ndim; f->cond_ch = cc;
  for (int i = 0; i < ndim; i++) f->dims[i] = dims[i];
  return vg_nn_module_new(kind, flow_module_forward, f, fimpl_free);
}

bool vg_flow_is_flow(const vg_nn_module *m) { return m && m->forward == flow_module_forward; }
static fimpl *FI(const vg_nn_module *m) { return (fimpl *)m->ctx; }

static bool check_dims(int ndim, const int64_t *dims) {
  if (ndim != 1 && ndim != 3) { vg_fail(VG_ERR_ARG, "flows: dims must be (C) or (C,H,W), got %d dims", ndim); return false; }
  for (int i = 0; i < ndim; i++) if (dims[i] <= 0) { vg_fail(VG_ERR_ARG, "flows: bad dims"); return false; }
  return true;
}

static vg_tensor *heapt(int nd, const int64_t *shape) { return vg_tensor_new(VG_F32, nd, shape); }

/* ------------------------------------------------------------------ subnets */
vg_nn_module *vg_flow_subnet_conv_new(int64_t c_in, int64_t c_out, int k, int64_t hidden, uint64_t seed) {
  vg_nn_conv2d_opts o = {.ph = k / 2, .pw = k / 2};
  return vg_nn_sequential_new(3, (vg_nn_module *[]){
      vg_nn_conv2d_new(c_in, hidden, k, k, o, seed), vg_nn_relu_new(),
      vg_nn_conv2d_new(hidden, c_out, k, k, o, seed + 1)});
}
vg_nn_module *vg_flow_subnet_mlp_new(int64_t c_in, int64_t c_out, int64_t hidden, uint64_t seed) {
  return vg_nn_sequential_new(3, (vg_nn_module *[]){
      vg_nn_linear_new(c_in, hidden, true, seed), vg_nn_relu_new(),
      vg_nn_linear_new(hidden, c_out, true, seed + 1)});
}
static int64_t cfg_hidden(const vg_flow_subnet_cfg *c, int64_t c_in) {
  if (c->hidden > 0) return c->hidden;
  if (c->ratio > 0) return (int64_t)(c->ratio * (double)c_in);
  return 2 * c_in;
}
vg_nn_module *vg_flow_subnet_conv(int64_t c_in, int64_t c_out, void *cfg) {
  vg_flow_subnet_cfg *c = cfg;
  vg_nn_module *m = vg_flow_subnet_conv_new(c_in, c_out, c->k > 0 ? c->k : 3, cfg_hidden(c, c_in), c->seed);
  c->seed += 2;
  return m;
}
vg_nn_module *vg_flow_subnet_mlp(int64_t c_in, int64_t c_out, void *cfg) {
  vg_flow_subnet_cfg *c = cfg;
  vg_nn_module *m = vg_flow_subnet_mlp_new(c_in, c_out, cfg_hidden(c, c_in), c->seed);
  c->seed += 2;
  return m;
}

/* ------------------------------------------------------------------ random matrices */
void vg_flow_random_permutation(int64_t n, uint64_t seed, int64_t *perm) {
  vg_tensor *p = vg_randperm(n, seed);
  vg_to_host(p, VG_I64, perm);
  if (vg_scope_depth() == 0) vg_tensor_free(p);
}

/* Row r of H evolves on its own: H starts as I and reflector n (from the Gaussian draws
 * alone) maps every row by row[n:] = -D[n] * (row[n:] - (row[n:] . x) x). So the
 * reflectors are made first and the rows are independent items (threaded, ORTHO_RB rows
 * per sweep of a reflector; each row's arithmetic is the same for any thread count). */
#define ORTHO_RB 16   /* rows per sweep of the reflectors (16 rows of 2048 doubles: 256 KB, in L2) */
typedef struct {
  int64_t dim;
  const double *X, *D;   /* X: reflector n at X + n * dim (dim - n entries) */
  double *H;
} ortho_ctx;

typedef double ortho_v4 __attribute__((vector_size(32)));   /* 4 lanes, IEEE per lane */
#define V4_LOAD(v, p) memcpy(&(v), (p), sizeof(ortho_v4))

static inline __attribute__((always_inline)) void ortho_rows_body(const ortho_ctx *c, int64_t b, int64_t e) {
  int64_t dim = c->dim;
  for (int64_t r0 = b; r0 < e; r0 += ORTHO_RB) {
    int nr = e - r0 < ORTHO_RB ? (int)(e - r0) : ORTHO_RB;
    for (int64_t n = 0; n < dim - 1; n++) {
      int64_t m = dim - n;
      const double *restrict x = c->X + n * dim;
      double hx[ORTHO_RB];
      for (int k = 0; k < nr; k++) {
        /* 4 chains (lane j sums i = j mod 4), then (a0 + a1) + (a2 + a3) */
        ortho_v4 a = {0, 0, 0, 0};
        const double *row = c->H + (r0 + k) * dim + n;
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
          ortho_v4 rv, xv;
          V4_LOAD(rv, row + i);
          V4_LOAD(xv, x + i);
          a += rv * xv;
        }
        for (; i < m; i++) a[0] += row[i] * x[i];
        hx[k] = (a[0] + a[1]) + (a[2] + a[3]);
      }
      double d = c->D[n];
      ortho_v4 nd = {-d, -d, -d, -d};
      for (int k = 0; k < nr; k++) {
        double *restrict row = c->H + (r0 + k) * dim + n, h = hx[k];
        ortho_v4 hv = {h, h, h, h};
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
          ortho_v4 rv, xv;
          V4_LOAD(rv, row + i);
          V4_LOAD(xv, x + i);
          rv = nd * (rv - hv * xv);
          memcpy(row + i, &rv, sizeof rv);
        }
        for (; i < m; i++) row[i] = -d * (row[i] - h * x[i]);
      }
    }
  }
}

/* the same code compiled for AVX2 (plain vector mul/add, no FMA contraction in C11 mode:
 * the same bits as the generic build) where the CPU has it */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void ortho_rows_avx2(const ortho_ctx *c, int64_t b, int64_t e) {
  ortho_rows_body(c, b, e);
}
#endif

static void ortho_rows(void *vc, int64_t b, int64_t e, int tid) {
  (void)tid;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (__builtin_cpu_supports("avx2")) { ortho_rows_avx2(vc, b, e); return; }
#endif
  ortho_rows_body(vc, b, e);
}

void vg_flow_special_ortho(int64_t dim, uint64_t seed, double *H) {
  int64_t nn = dim * dim;
  vg_tensor *g = vg_randn(1, &nn, seed);
  float *gv = malloc(sizeof(float) * (size_t)nn);
  double *X = malloc(sizeof(double) * (size_t)nn), *D = malloc(sizeof(double) * (size_t)dim);
  if (!gv || !X || !D) VG_ABORT("special_ortho(%lld): out of memory", (long long)dim);
  vg_to_host(g, VG_F32, gv);
  if (vg_scope_depth() == 0) vg_tensor_free(g);
  for (int64_t n = 0; n < dim - 1; n++) {
    int64_t m = dim - n;
    double norm2 = 0, *x = X + n * dim;
    for (int64_t i = 0; i < m; i++) { x[i] = gv[n * dim + i]; norm2 += x[i] * x[i]; }
    double x0 = x[0];
    D[n] = x[0] != 0 ? (x[0] > 0 ? 1.0 : -1.0) : 1.0;
    x[0] += D[n] * sqrt(norm2);
    double s = sqrt((norm2 - x0 * x0 + x[0] * x[0]) / 2.0);
    for (int64_t i = 0; i < m; i++) x[i] /= s;
  }
  for (int64_t i = 0; i < nn; i++) H[i] = 0;
  for (int64_t i = 0; i < dim; i++) H[i * dim + i] = 1;
  ortho_ctx c = {dim, X, D, H};
  vg_parallel_for(dim, 16, ortho_rows, &c);
  double prod = 1;
  for (int64_t i = 0; i < dim - 1; i++) prod *= D[i];
  D[dim - 1] = ((dim - 1) % 2 ? -1.0 : 1.0) * prod;
  /* H = (D * H.T).T : row i scaled by D[i] */
  for (int64_t r = 0; r < dim; r++)
    for (int64_t c2 = 0; c2 < dim; c2++) H[r * dim + c2] *= D[r];
  free(D); free(X); free(gv);
}

/* ------------------------------------------------------------------ helpers */
static int64_t py_round_half(int64_t c) {   /* round(0.5 * c), half to even */
  if (c % 2 == 0) return c / 2;
  int64_t lo = c / 2;                     /* .5 case */
  return (lo % 2 == 0) ? lo : lo + 1;
}

static vg_tensor *sum_nonbatch(const vg_tensor *t) {
  int dims[VG_MAX_DIMS], nd = 0;
  for (int d = 1; d < t->ndim; d++) dims[nd++] = d;
  return vg_sum(t, nd, dims, false);
}

static vg_tensor *cat_cond(const vg_tensor *x, int ncond, vg_tensor *const *cond) {
  if (ncond == 0) return (vg_tensor *)x;
  vg_tensor *xs[17];
  xs[0] = (vg_tensor *)x;
  for (int i = 0; i < ncond && i < 16; i++) xs[i + 1] = cond[i];
  return vg_concat(ncond + 1, xs, 1);
}

/* F.linear(x, w) for (N,C), F.conv2d(x, w[C,C,1,1]) for (N,C,H,W); w given as (C,C) */
static vg_tensor *chmix(const vg_tensor *x, const vg_tensor *w2) {
  if (x->ndim == 2) return vg_linear(x, w2, NULL);
  int64_t C = w2->shape[0];
  vg_tensor *w4 = vg_reshape(w2, 4, (int64_t[]){C, C, 1, 1});
  return vg_conv2d(x, w4, NULL, (vg_conv2d_opts){0});
}

/* A fixed (no-grad) 0/1 permutation matrix applies as an index_select along channels:
 * y[:, i] = x[:, idx[i]] with idx[i] the column of row i's 1. NULL when w is not one. */
static vg_tensor *perm_index(const vg_tensor *w2) {
  if (!w2 || w2->requires_grad) return NULL;
  int64_t C = w2->shape[0];
  float *h = malloc(sizeof(float) * (size_t)(C * C));
  vg_to_host(w2, VG_F32, h);
  vg_tensor *idx = vg_empty(VG_I64, 1, &C);
  int64_t *ip = vg_data(idx);
  bool ok = true;
  for (int64_t i = 0; i < C && ok; i++) {
    int64_t col = -1;
    for (int64_t j = 0; j < C && ok; j++) {
      float v = h[i * C + j];
      if (v == 1.f && col < 0) col = j;
      else if (v != 0.f) ok = false;
    }
    if (col < 0) ok = false;
    ip[i] = col;
  }
  free(h);
  return ok ? idx : NULL;
}

static vg_tensor *chmix_fast(const vg_tensor *x, const vg_tensor *w2, const vg_tensor *idx) {
  if (idx && x->device == VG_CPU) return vg_index_select(x, 1, idx);
  return chmix(x, w2);
}

static vg_tensor *as2d(const vg_tensor *w) {   /* (C,C[,1,1]) -> (C,C) */
  return vg_reshape(w, 2, (int64_t[]){w->shape[0], w->shape[1]});
}

/* log-det accumulator: n zeros next to x */
static vg_tensor *zeros_n(const vg_tensor *x, int64_t n) { return vg_full_on(x->device, VG_F32, 1, &n, 0.0); }

static vg_tensor *add_ld(vg_tensor *a, vg_tensor *b) {
  if (!a) return b;
  if (!b) return a;
  return vg_add(a, b);
}

static vg_tensor *param_shape_like(int ndim, int64_t C, int64_t *shape) {
  int nd = ndim + 1;
  shape[0] = 1; shape[1] = C;
  for (int i = 2; i < nd; i++) shape[i] = 1;
  return heapt(nd, shape);
}

/* ------------------------------------------------------------------ AllInOne */
static vg_nn_module *call_subnet(vg_flow_subnet s, int64_t cin, int64_t cout) {
  if (!s.fn) { vg_fail(VG_ERR_ARG, "flows: subnet constructor is NULL"); return NULL; }
  vg_nn_module *m = s.fn(cin, cout, s.user);
  if (!m) vg_fail(VG_ERR_ARG, "flows: subnet constructor returned NULL");
  return m;
}

vg_nn_module *vg_flow_allinone_new(int ndim, const int64_t *dims, int64_t cond_channels,
                                   vg_flow_subnet subnet, vg_flow_allinone_opts o) {
  if (!check_dims(ndim, dims)) return NULL;
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
  vg_nn_module *m = fmod_new("AllInOneBlock", F_ALLINONE, ndim, dims, cond_channels);
  fimpl *f = FI(m);
  f->ao = o;
  f->split0 = C - C / 2; f->split1 = C / 2;
  int64_t ps[VG_MAX_DIMS];
  vg_tensor *gsc = param_shape_like(ndim, C, ps);
  vg_fill_(gsc, gs);
  vg_nn_add_param(m, "global_scale", gsc);
  vg_nn_add_param(m, "global_offset", param_shape_like(ndim, C, ps));
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
    vg_tensor *vk = heapt(2, (int64_t[]){o.learned_householder_permutation, C});
    vg_normal_(vk, 0.f, 0.2f, o.seed + 7777);
    vg_nn_add_param(m, "vk_householder", vk);
    vg_tensor *w0 = heapt(2, (int64_t[]){C, C});
    float *p = vg_f32(w0);
    for (int64_t i = 0; i < C * C; i++) p[i] = (float)w[i];
    vg_nn_add_param(m, "w_0", w0);
    vg_requires_grad_(w0, false);
  } else {
    vg_tensor *wp = heapt(wnd, wsh), *wi = heapt(wnd, wsh);
    float *p = vg_f32(wp), *q = vg_f32(wi);
    for (int64_t i = 0; i < C; i++)
      for (int64_t j = 0; j < C; j++) { p[i * C + j] = (float)w[i * C + j]; q[i * C + j] = (float)w[j * C + i]; }
    vg_nn_add_param(m, "w_perm", wp);
    vg_nn_add_param(m, "w_perm_inv", wi);
    vg_requires_grad_(wp, false);
    vg_requires_grad_(wi, false);
  }
  free(w);
  vg_nn_module *sn = call_subnet(subnet, f->split0 + cond_channels, 2 * f->split1);
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
  fimpl *f = FI(m);
  const vg_flow_allinone_opts *o = &f->ao;
  int64_t C = f->dims[0];
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
  vg_tensor *a = vg_nn_forward(vg_nn_child_get(m, "subnet"), cat_cond(x1, ncond, cond));
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
    j2 = want ? sum_nonbatch(sj) : NULL;
  } else {
    y2 = vg_mul(vg_sub(x2, ta), vg_exp(vg_neg(sj)));
    j2 = want ? vg_neg(sum_nonbatch(sj)) : NULL;
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
    int64_t npix = 1;
    for (int d = 2; d < x->ndim; d++) npix *= x->shape[d];
    vg_tensor *l = j2;
    if (perm_lj) l = vg_add(l, vg_scale(perm_lj, (rev ? -1.f : 1.f) * (float)npix));
    *ld = l;
  }
  return out;
}

/* ------------------------------------------------------------------ coupling family */
static vg_nn_module *coupling_new(const char *kind, ftype t, int ndim, const int64_t *dims, int64_t cc,
                                  vg_flow_subnet subnet, vg_flow_coupling_opts o) {
  if (!check_dims(ndim, dims)) return NULL;
  int64_t C = dims[0];
  if (o.clamp == 0) o.clamp = 2.0;
  int64_t l1 = o.split_len ? o.split_len : py_round_half(C);
  if (l1 < 0 || l1 > C) { vg_fail(VG_ERR_ARG, "%s: split_len %lld out of range", kind, (long long)l1); return NULL; }
  if (t == F_CONDAFF && cc <= 0) { vg_fail(VG_ERR_ARG, "ConditionalAffineTransform must have a condition"); return NULL; }
  vg_nn_module *m = fmod_new(kind, t, ndim, dims, cc);
  fimpl *f = FI(m);
  f->co = o;
  f->split0 = l1; f->split1 = C - l1;
  int64_t l2 = C - l1;
  typedef struct { const char *name; int64_t cin, cout; } subdef;
  subdef subs[4];
  int ns = 0;
  switch (t) {
    case F_GLOW: case F_GIN:
      subs[ns++] = (subdef){"subnet1", l1 + cc, 2 * l2};
      subs[ns++] = (subdef){"subnet2", l2 + cc, 2 * l1};
      break;
    case F_RNVP:
      subs[ns++] = (subdef){"subnet_s1", l1 + cc, l2};
      subs[ns++] = (subdef){"subnet_t1", l1 + cc, l2};
      subs[ns++] = (subdef){"subnet_s2", l2 + cc, l1};
      subs[ns++] = (subdef){"subnet_t2", l2 + cc, l1};
      break;
    case F_NICE:
      subs[ns++] = (subdef){"F", l2 + cc, l1};
      subs[ns++] = (subdef){"G", l1 + cc, l2};
      break;
    case F_ONESIDED: subs[ns++] = (subdef){"subnet", l1 + cc, 2 * l2}; break;
    case F_CONDAFF: subs[ns++] = (subdef){"subnet", cc, 2 * C}; break;
    default: break;
  }
  for (int i = 0; i < ns; i++) {
    vg_nn_module *s = call_subnet(subnet, subs[i].cin, subs[i].cout);
    if (!s) { vg_nn_free(m); return NULL; }
    vg_nn_add_child(m, subs[i].name, s);
  }
  return m;
}

vg_nn_module *vg_flow_glow_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("GLOWCouplingBlock", F_GLOW, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_rnvp_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("RNVPCouplingBlock", F_RNVP, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_nice_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("NICECouplingBlock", F_NICE, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_gin_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("GINCouplingBlock", F_GIN, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_affine_onesided_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("AffineCouplingOneSided", F_ONESIDED, nd, d, cc, s, o);
}
vg_nn_module *vg_flow_cond_affine_new(int nd, const int64_t *d, int64_t cc, vg_flow_subnet s, vg_flow_coupling_opts o) {
  return coupling_new("ConditionalAffineTransform", F_CONDAFF, nd, d, cc, s, o);
}

static vg_tensor *fclamp(const fimpl *f, const vg_tensor *s) {
  vg_tensor *u;
  switch (f->co.clamp_activation) {
    case VG_FLOW_CLAMP_TANH: u = vg_tanh(s); break;
    case VG_FLOW_CLAMP_SIGMOID: u = vg_affine(vg_sigmoid(s), 2.f, -1.f); break;
    default: u = vg_scale(vg_atan(s), 0.636f); break;
  }
  return vg_scale(u, (float)f->co.clamp);
}

/* one affine half-step: x active, u passive(+cond); subnet(s) named by idx (1 or 2) */
static vg_tensor *affine_half(vg_nn_module *m, int which, const vg_tensor *x, const vg_tensor *u,
                              bool rev, bool want, vg_tensor **j) {
  fimpl *f = FI(m);
  int64_t len = x->shape[1];
  vg_tensor *s, *t;
  if (f->type == F_NICE) {
    vg_tensor *r = vg_nn_forward(vg_nn_child_get(m, which == 1 ? "F" : "G"), u);
    *j = NULL;
    return rev ? vg_sub(x, r) : vg_add(x, r);
  }
  if (f->type == F_RNVP) {
    s = vg_nn_forward(vg_nn_child_get(m, which == 1 ? "subnet_s2" : "subnet_s1"), u);
    t = vg_nn_forward(vg_nn_child_get(m, which == 1 ? "subnet_t2" : "subnet_t1"), u);
  } else {
    vg_tensor *a = vg_nn_forward(vg_nn_child_get(m, which == 1 ? "subnet2" : "subnet1"), u);
    s = vg_narrow(a, 1, 0, len);
    t = vg_narrow(a, 1, len, len);
  }
  s = fclamp(f, s);
  if (f->type == F_GIN) {
    s = vg_sub(s, vg_mean(s, 1, (int[]){1}, true));
    *j = NULL;
  } else {
    *j = want ? sum_nonbatch(s) : NULL;
    if (rev && *j) *j = vg_neg(*j);
  }
  return rev ? vg_mul(vg_sub(x, t), vg_exp(vg_neg(s))) : vg_add(vg_mul(vg_exp(s), x), t);
}

static vg_tensor *coupling_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                               bool rev, bool want, vg_tensor **ld) {
  fimpl *f = FI(m);
  int64_t C = f->dims[0];
  vg_tensor *ldv = NULL, *out;
  if (f->type == F_CONDAFF) {
    vg_tensor *c = ncond == 1 ? cond[0] : vg_concat(ncond, cond, 1);
    vg_tensor *a = vg_nn_forward(vg_nn_child_get(m, "subnet"), c);
    vg_tensor *s = fclamp(f, vg_narrow(a, 1, 0, C)), *t = vg_narrow(a, 1, C, C);
    if (want) { ldv = sum_nonbatch(s); if (rev) ldv = vg_neg(ldv); }
    out = rev ? vg_mul(vg_sub(x, t), vg_exp(vg_neg(s))) : vg_add(vg_mul(vg_exp(s), x), t);
  } else if (f->type == F_ONESIDED) {
    vg_tensor *x1 = vg_narrow(x, 1, 0, f->split0), *x2 = vg_narrow(x, 1, f->split0, f->split1);
    vg_tensor *a = vg_nn_forward(vg_nn_child_get(m, "subnet"), cat_cond(x1, ncond, cond));
    vg_tensor *s = fclamp(f, vg_narrow(a, 1, 0, f->split1)), *t = vg_narrow(a, 1, f->split1, f->split1);
    if (want) { ldv = sum_nonbatch(s); if (rev) ldv = vg_neg(ldv); }
    vg_tensor *y2 = rev ? vg_mul(vg_sub(x2, t), vg_exp(vg_neg(s))) : vg_add(vg_mul(x2, vg_exp(s)), t);
    out = vg_concat(2, (vg_tensor *[]){x1, y2}, 1);
  } else {
    vg_tensor *x1 = vg_narrow(x, 1, 0, f->split0), *x2 = vg_narrow(x, 1, f->split0, f->split1);
    vg_tensor *y1, *y2, *j1, *j2;
    if (!rev) {
      y1 = affine_half(m, 1, x1, cat_cond(x2, ncond, cond), false, want, &j1);
      y2 = affine_half(m, 2, x2, cat_cond(y1, ncond, cond), false, want, &j2);
    } else {
      y2 = affine_half(m, 2, x2, cat_cond(x1, ncond, cond), true, want, &j2);
      y1 = affine_half(m, 1, x1, cat_cond(y2, ncond, cond), true, want, &j1);
    }
    out = vg_concat(2, (vg_tensor *[]){y1, y2}, 1);
    if (want) {
      ldv = add_ld(j1, j2);
      if (!ldv) ldv = zeros_n(x, x->shape[0]);
    }
  }
  if (ld) *ld = ldv;
  return out;
}

/* ------------------------------------------------------------------ PermuteRandom */
vg_nn_module *vg_flow_permute_random_new(int ndim, const int64_t *dims, uint64_t seed) {
  if (!check_dims(ndim, dims)) return NULL;
  int64_t C = dims[0];
  vg_nn_module *m = fmod_new("PermuteRandom", F_PERMUTE, ndim, dims, 0);
  vg_tensor *p = vg_tensor_new(VG_I64, 1, &C), *pi = vg_tensor_new(VG_I64, 1, &C);
  int64_t *pp = vg_data(p), *qq = vg_data(pi);
  vg_flow_random_permutation(C, seed, pp);
  for (int64_t i = 0; i < C; i++) qq[pp[i]] = i;
  vg_nn_add_buffer(m, "perm", p);
  vg_nn_add_buffer(m, "perm_inv", pi);
  return m;
}

/* ------------------------------------------------------------------ ActNorm */
vg_nn_module *vg_flow_actnorm_new(int ndim, const int64_t *dims) {
  if (!check_dims(ndim, dims)) return NULL;
  vg_nn_module *m = fmod_new("ActNorm", F_ACTNORM, ndim, dims, 0);
  int64_t ps[VG_MAX_DIMS];
  vg_nn_add_param(m, "scale", param_shape_like(ndim, dims[0], ps));
  vg_nn_add_param(m, "bias", param_shape_like(ndim, dims[0], ps));
  FI(m)->init_next = true;
  return m;
}
void vg_flow_actnorm_mark_initialized(vg_nn_module *m) {
  if (vg_flow_is_flow(m) && FI(m)->type == F_ACTNORM) FI(m)->init_next = false;
}

static void actnorm_init(vg_nn_module *m, const vg_tensor *x) {
  int64_t N = x->shape[0], C = x->shape[1], S = vg_numel(x) / (N * C);
  float *buf = malloc(sizeof(float) * (size_t)vg_numel(x));
  vg_to_host(x, VG_F32, buf);
  vg_tensor *tsc = vg_nn_param(m, "scale"), *tbi = vg_nn_param(m, "bias");   /* any device */
  float *sc = malloc(sizeof(float) * (size_t)C), *bi = malloc(sizeof(float) * (size_t)C);
  for (int64_t c = 0; c < C; c++) {
    double mean = 0, n = (double)(N * S);
    for (int64_t i = 0; i < N; i++) for (int64_t s = 0; s < S; s++) mean += buf[(i * C + c) * S + s];
    mean /= n;
    double var = 0;
    for (int64_t i = 0; i < N; i++) for (int64_t s = 0; s < S; s++) {
      double d = buf[(i * C + c) * S + s] - mean; var += d * d;
    }
    var /= (n - 1);
    float scale = (float)log(1.0 / sqrt(var));
    sc[c] = scale;
    double m2 = 0;
    float es = expf(scale);
    for (int64_t i = 0; i < N; i++) for (int64_t s = 0; s < S; s++) m2 += (double)(buf[(i * C + c) * S + s] * es);
    bi[c] = (float)(-m2 / n);
  }
  vg_from_host_(tsc, VG_F32, sc);
  vg_from_host_(tbi, VG_F32, bi);
  free(sc);
  free(bi);
  free(buf);
  FI(m)->init_next = false;
}

/* ------------------------------------------------------------------ Fixed linear / 1x1 conv */
static double lu_logdet_inv(int64_t n, const double *A, double *inv) {
  double *a = malloc(sizeof(double) * (size_t)(n * n * 2));
  int64_t w = 2 * n;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < w; j++) a[i * w + j] = j < n ? A[i * n + j] : (j - n == i ? 1.0 : 0.0);
  double ld = 0;
  for (int64_t c = 0; c < n; c++) {
    int64_t p = c;
    for (int64_t r = c + 1; r < n; r++) if (fabs(a[r * w + c]) > fabs(a[p * w + c])) p = r;
    if (a[p * w + c] == 0) { free(a); return NAN; }
    if (p != c) for (int64_t j = 0; j < w; j++) { double t = a[c * w + j]; a[c * w + j] = a[p * w + j]; a[p * w + j] = t; }
    double piv = a[c * w + c];
    ld += log(fabs(piv));
    for (int64_t j = 0; j < w; j++) a[c * w + j] /= piv;
    for (int64_t r = 0; r < n; r++) if (r != c) {
      double fct = a[r * w + c];
      if (fct != 0) for (int64_t j = 0; j < w; j++) a[r * w + j] -= fct * a[c * w + j];
    }
  }
  for (int64_t i = 0; i < n; i++) for (int64_t j = 0; j < n; j++) inv[i * n + j] = a[i * w + n + j];
  free(a);
  return ld;
}

vg_nn_module *vg_flow_fixed_linear_new(int ndim, const int64_t *dims, const float *M, uint64_t seed) {
  if (!check_dims(ndim, dims)) return NULL;
  int64_t C = dims[0];
  double *Md = malloc(sizeof(double) * (size_t)(C * C)), *Mi = malloc(sizeof(double) * (size_t)(C * C));
  if (M) for (int64_t i = 0; i < C * C; i++) Md[i] = M[i];
  else vg_flow_special_ortho(C, seed, Md);
  double ld = lu_logdet_inv(C, Md, Mi);
  if (!isfinite(ld)) { free(Md); free(Mi); vg_fail(VG_ERR_ARG, "fixed linear: singular M"); return NULL; }
  vg_nn_module *m = fmod_new(ndim == 1 ? "FixedLinearTransform" : "Fixed1x1Conv", F_FIXED, ndim, dims, 0);
  int64_t sh[4] = {C, C, 1, 1};
  int nd = ndim == 1 ? 2 : 4;
  vg_tensor *tm = heapt(nd, sh), *ti = heapt(nd, sh), *tl = heapt(0, sh);
  float *pm = vg_f32(tm), *pi = vg_f32(ti);
  /* FrEIA stores M.t() and M.t().inverse() */
  for (int64_t i = 0; i < C; i++)
    for (int64_t j = 0; j < C; j++) { pm[i * C + j] = (float)Md[j * C + i]; pi[i * C + j] = (float)Mi[j * C + i]; }
  vg_f32(tl)[0] = (float)ld;
  vg_nn_add_param(m, "M", tm); vg_requires_grad_(tm, false);
  vg_nn_add_param(m, "M_inv", ti); vg_requires_grad_(ti, false);
  vg_nn_add_param(m, "logDetM", tl); vg_requires_grad_(tl, false);
  free(Md); free(Mi);
  return m;
}

/* ------------------------------------------------------------------ sequence */
vg_nn_module *vg_flow_sequence_new(int ndim, const int64_t *dims) {
  if (!check_dims(ndim, dims)) return NULL;
  vg_nn_module *m = fmod_new("SequenceINN", F_SEQUENCE, ndim, dims, 0);
  vg_nn_add_child(m, "module_list", vg_nn_module_new("ModuleList", NULL, NULL, NULL));
  fimpl *f = FI(m);
  f->cap = 8;
  f->conds = calloc((size_t)f->cap, sizeof(int));
  f->shape_nd = calloc((size_t)f->cap + 1, sizeof(int));
  f->shapes = calloc((size_t)f->cap + 1, sizeof *f->shapes);
  f->shape_nd[0] = ndim;
  for (int i = 0; i < ndim; i++) f->shapes[0][i] = dims[i];
  return m;
}

int vg_flow_sequence_append(vg_nn_module *seq, vg_nn_module *block, int cond) {
  if (!block) return -1;
  if (!vg_flow_is_flow(seq) || FI(seq)->type != F_SEQUENCE || !vg_flow_is_flow(block)) {
    vg_nn_free(block);
    vg_fail(VG_ERR_ARG, "vg_flow_sequence_append: not a SequenceINN / flow block");
    return -1;
  }
  fimpl *f = FI(seq);
  int64_t od[4];
  int ond = vg_flow_output_dims(block, f->shape_nd[f->n], f->shapes[f->n], od);
  if (ond < 0) { vg_nn_free(block); return -1; }
  if (f->n == f->cap) {
    f->cap *= 2;
    f->conds = realloc(f->conds, sizeof(int) * (size_t)f->cap);
    f->shape_nd = realloc(f->shape_nd, sizeof(int) * (size_t)(f->cap + 1));
    f->shapes = realloc(f->shapes, sizeof *f->shapes * (size_t)(f->cap + 1));
  }
  char name[32];
  snprintf(name, sizeof name, "%d", f->n);
  vg_nn_add_child(vg_nn_child_get(seq, "module_list"), name, block);
  f->conds[f->n] = cond;
  f->n++;
  f->shape_nd[f->n] = ond;
  for (int i = 0; i < ond; i++) f->shapes[f->n][i] = od[i];
  return f->n - 1;
}

int vg_flow_append_allinone(vg_nn_module *seq, int cond_index, int64_t cond_channels,
                            vg_flow_subnet subnet, vg_flow_allinone_opts o) {
  if (!vg_flow_is_flow(seq) || FI(seq)->type != F_SEQUENCE) { vg_fail(VG_ERR_ARG, "not a SequenceINN"); return -1; }
  fimpl *f = FI(seq);
  vg_nn_module *b = vg_flow_allinone_new(f->shape_nd[f->n], f->shapes[f->n], cond_index >= 0 ? cond_channels : 0, subnet, o);
  if (!b) return -1;
  return vg_flow_sequence_append(seq, b, cond_index);
}

int vg_flow_sequence_len(const vg_nn_module *seq) { return vg_flow_is_flow(seq) && FI(seq)->type == F_SEQUENCE ? FI(seq)->n : 0; }
vg_nn_module *vg_flow_sequence_get(const vg_nn_module *seq, int i) {
  if (i < 0 || i >= vg_flow_sequence_len(seq)) return NULL;
  const vg_nn_module *ml = vg_nn_child_get(seq, "module_list");
  return ml->children[i].m;
}
int vg_flow_sequence_dims(const vg_nn_module *seq, int i, int64_t *dims) {
  if (i < 0 || i > vg_flow_sequence_len(seq)) return -1;
  fimpl *f = FI(seq);
  for (int k = 0; k < f->shape_nd[i]; k++) dims[k] = f->shapes[i][k];
  return f->shape_nd[i];
}

vg_tensor *vg_flow_sequence_forward_range(vg_nn_module *seq, int a, int b, const vg_tensor *x,
                                          int ncond, vg_tensor *const *cond, bool rev,
                                          bool want, vg_tensor **logdet) {
  int n = vg_flow_sequence_len(seq);
  if (a < 0 || b > n || a > b) { vg_fail(VG_ERR_ARG, "SequenceINN: bad range [%d,%d) of %d", a, b, n); return NULL; }
  fimpl *f = FI(seq);
  vg_tensor *h = (vg_tensor *)x, *ld = NULL;
  /* inference: the steps run in one scope whose state (h, the log-det so far) each step
   * replaces (vg_scope_reset_keep), so the sequence holds one activation at a time */
  bool nest = b > a;
  const vg_tensor *ins[1] = {x};
  for (int ci = 0; ci < ncond && nest; ci++) nest = !cond[ci] || !cond[ci]->requires_grad;
  nest = nest && !vg_nn_would_record(seq, 1, ins);
  if (nest) vg_scope_begin();
  for (int k = 0; k < b - a; k++) {
    int i = rev ? b - 1 - k : a + k;
    int ci = f->conds[i];
    if (ci >= ncond) {
      vg_fail(VG_ERR_ARG, "SequenceINN: block %d wants condition %d of %d", i, ci, ncond);
      h = NULL;
      break;
    }
    vg_tensor *j = NULL;
    h = vg_flow_forward(vg_flow_sequence_get(seq, i), h, ci >= 0 ? 1 : 0, ci >= 0 ? &cond[ci] : NULL, rev, want, &j);
    if (!h) break;
    if (want) ld = add_ld(ld, j);
    if (nest && k + 1 < b - a) {
      vg_tensor *keep[2] = {h, ld};
      vg_scope_reset_keep(2, keep);
      h = keep[0];
      ld = keep[1];
    }
  }
  if (nest) {
    vg_tensor *keep[2] = {h, ld};
    vg_scope_end_keep(2, keep);
    h = keep[0];
    ld = keep[1];
  }
  if (!h) return NULL;
  if (want && !ld) ld = zeros_n(x, x->shape[0]);
  if (logdet) *logdet = want ? ld : NULL;
  return h;
}

/* ------------------------------------------------------------------ dispatch */
int vg_flow_output_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out) {
  if (!vg_flow_is_flow(m)) { vg_fail(VG_ERR_ARG, "not a flow module"); return -1; }
  fimpl *f = FI(m);
  if (f->type == F_SEQUENCE) {
    if (ndim != f->shape_nd[0]) { vg_fail(VG_ERR_ARG, "SequenceINN: dims mismatch"); return -1; }
    for (int i = 0; i < ndim; i++) if (dims[i] != f->shapes[0][i]) { vg_fail(VG_ERR_ARG, "SequenceINN: dims mismatch"); return -1; }
    for (int i = 0; i < f->shape_nd[f->n]; i++) out[i] = f->shapes[f->n][i];
    return f->shape_nd[f->n];
  }
  if (ndim != f->ndim) { vg_fail(VG_ERR_ARG, "%s: built for %d dims, got %d", m->kind_name, f->ndim, ndim); return -1; }
  for (int i = 0; i < ndim; i++) {
    if (dims[i] != f->dims[i]) { vg_fail(VG_ERR_ARG, "%s: dims mismatch at %d", m->kind_name, i); return -1; }
    out[i] = dims[i];
  }
  return ndim;
}

vg_tensor *vg_flow_forward(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                           bool rev, bool want, vg_tensor **logdet) {
  if (logdet) *logdet = NULL;
  if (!x) return NULL;
  if (!vg_flow_is_flow(m)) { vg_fail(VG_ERR_ARG, "vg_flow_forward: not a flow module"); return NULL; }
  fimpl *f = FI(m);
  if (f->type == F_SEQUENCE) return vg_flow_sequence_forward_range(m, 0, f->n, x, ncond, cond, rev, want, logdet);
  if (x->ndim != f->ndim + 1) { vg_fail(VG_ERR_ARG, "%s: input must have %d dims", m->kind_name, f->ndim + 1); return NULL; }
  for (int i = 0; i < f->ndim; i++)
    if (x->shape[i + 1] != f->dims[i]) { vg_fail(VG_ERR_ARG, "%s: input shape mismatch", m->kind_name); return NULL; }
  int64_t cc = 0;
  for (int i = 0; i < ncond; i++) {
    if (!cond[i] || cond[i]->ndim != x->ndim || cond[i]->shape[0] != x->shape[0]) { vg_fail(VG_ERR_ARG, "%s: bad condition", m->kind_name); return NULL; }
    for (int d = 2; d < x->ndim; d++) if (cond[i]->shape[d] != x->shape[d]) { vg_fail(VG_ERR_ARG, "%s: condition spatial dims differ", m->kind_name); return NULL; }
    cc += cond[i]->shape[1];
  }
  bool uses_cond = f->type != F_PERMUTE && f->type != F_ACTNORM && f->type != F_FIXED;
  if (uses_cond && cc != f->cond_ch) {
    vg_fail(VG_ERR_ARG, "%s: built for %lld condition channels, got %lld", m->kind_name, (long long)f->cond_ch, (long long)cc);
    return NULL;
  }
  int64_t N = x->shape[0], npix = 1;
  for (int d = 2; d < x->ndim; d++) npix *= x->shape[d];
  vg_tensor *ld = NULL, *y = NULL;
  switch (f->type) {
    case F_ALLINONE: y = allinone_fwd(m, x, ncond, cond, rev, want, &ld); break;
    case F_GLOW: case F_RNVP: case F_NICE: case F_GIN: case F_ONESIDED: case F_CONDAFF:
      y = coupling_fwd(m, x, ncond, cond, rev, want, &ld); break;
    case F_PERMUTE:
      y = vg_index_select(x, 1, vg_nn_buffer(m, rev ? "perm_inv" : "perm"));
      if (want) ld = zeros_n(x, N);
      break;
    case F_ACTNORM: {
      if (f->init_next && !rev) actnorm_init(m, x);
      vg_tensor *sc = vg_nn_param(m, "scale"), *b = vg_nn_param(m, "bias");
      y = rev ? vg_div(vg_sub(x, b), vg_exp(sc)) : vg_add(vg_mul(x, vg_exp(sc)), b);
      if (want) {
        vg_tensor *s = vg_scale(vg_sum_all(sc), (rev ? -1.f : 1.f) * (float)npix);
        ld = vg_expand(vg_reshape(s, 1, (int64_t[]){1}), 1, &N);
      }
      break;
    }
    case F_FIXED: {
      vg_tensor *w = vg_nn_param(m, rev ? "M_inv" : "M");
      if (x->ndim == 2) y = vg_matmul(x, w);     /* x.mm(M) */
      else y = vg_conv2d(x, w, NULL, (vg_conv2d_opts){0});
      if (want) {
        vg_tensor *s = vg_scale(vg_nn_param(m, "logDetM"), (rev ? -1.f : 1.f) * (float)npix);
        ld = vg_expand(vg_reshape(s, 1, (int64_t[]){1}), 1, &N);
      }
      break;
    }
    case F_SEQUENCE: break;
  }
  if (logdet) *logdet = want ? ld : NULL;
  return y;
}

vg_tensor *vg_flow_sample(vg_nn_module *m, int64_t n, int ncond, vg_tensor *const *cond, uint64_t seed) {
  int64_t dims[4], od[4], sh[5];
  if (!vg_flow_is_flow(m)) { vg_fail(VG_ERR_ARG, "not a flow"); return NULL; }
  fimpl *f = FI(m);
  int nd = f->type == F_SEQUENCE ? f->shape_nd[f->n] : f->ndim;
  if (f->type == F_SEQUENCE) for (int i = 0; i < nd; i++) dims[i] = f->shapes[f->n][i];
  else for (int i = 0; i < nd; i++) dims[i] = f->dims[i];
  (void)od;
  sh[0] = n;
  for (int i = 0; i < nd; i++) sh[i + 1] = dims[i];
  vg_tensor *z = vg_randn(nd + 1, sh, seed);
  return vg_flow_forward(m, z, ncond, cond, true, false, NULL);
}

vg_tensor *vg_flow_gaussian_logp(const vg_tensor *z) {
  if (!z) return NULL;
  double D = (double)(vg_numel(z) / z->shape[0]);
  return vg_add_scalar(vg_scale(sum_nonbatch(vg_mul(z, z)), -0.5f), (float)(-0.5 * D * log(2 * M_PI)));
}
