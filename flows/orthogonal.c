/* orthogonal.c — FrEIA 0.2's orthogonal.py: OrthogonalTransform (a free matrix R kept
 * near-orthogonal by periodic Gram-Schmidt, with a clamped scaling and a bias) and
 * HouseholderPerm (a learned product of Householder reflections). 1-D inputs (N, C). */
#include "flows/block.h"
#include <math.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ OrthogonalTransform */
typedef struct {
  vg_flow_block b;
  double clamp;
  int interval;        /* correction_interval */
  int counter;         /* FrEIA's back_counter */
  uint64_t seed, draws;
} orth_state;

static vg_tensor *orth_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                           bool want, vg_tensor **ld);
static const vg_flow_block_ops orth_ops = {.forward = orth_fwd};

/* a seeded draw in [0, n) (splitmix64 of seed and draw number) */
static int orth_randint(orth_state *s, int n) {
  uint64_t z = s->seed + 0x9e3779b97f4a7c15ull * (++s->draws);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return n > 0 ? (int)(z % (uint64_t)n) : 0;
}

static bool check_1d(const char *kind, int ndim, const int64_t *dims) {
  if (!vg_flow_check_dims(ndim, dims)) return false;
  if (ndim != 1) { vg_fail(VG_ERR_ARG, "%s: input tensor must be 1D (dims (C)), got %d dims", kind, ndim); return false; }
  return true;
}

vg_nn_module *vg_flow_orthogonal_new(int ndim, const int64_t *dims, int correction_interval, double clamp,
                                     uint64_t seed) {
  if (!check_1d("OrthogonalTransform", ndim, dims)) return NULL;
  if (clamp == 0) clamp = 5.0;
  if (correction_interval == 0) correction_interval = 256;
  if (!(clamp > 0) || !isfinite(clamp) || correction_interval < 0) {
    vg_fail(VG_ERR_ARG, "OrthogonalTransform: clamp must be > 0 and correction_interval >= 0");
    return NULL;
  }
  int64_t C = dims[0];
  vg_nn_module *m = vg_flow_block_new("OrthogonalTransform", &orth_ops, sizeof(orth_state), ndim, dims, 0);
  orth_state *s = m->ctx;
  s->clamp = clamp;
  s->interval = correction_interval;
  s->seed = seed;
  s->counter = orth_randint(s, correction_interval) / 2;
  double *R = malloc(sizeof(double) * (size_t)(C * C));
  vg_flow_special_ortho(C, seed, R);
  vg_tensor *w = vg_tensor_new(VG_F32, 2, (int64_t[]){C, C});
  for (int64_t i = 0; i < C * C; i++) vg_f32(w)[i] = (float)R[i];
  free(R);
  vg_tensor *b = vg_tensor_new(VG_F32, 2, (int64_t[]){1, C}), *sc = vg_tensor_new(VG_F32, 2, (int64_t[]){1, C});
  vg_normal_(b, 0.f, 0.05f, seed + 1);
  vg_normal_(sc, 0.f, 0.02f, seed + 2);
  vg_nn_add_param(m, "weights", w);
  vg_nn_add_param(m, "bias", b);
  vg_nn_add_param(m, "scaling", sc);
  return m;
}

/* FrEIA's orth_correction on R's rows: R0 /= |R0|; Ri -= sum_{j<i} (Rj . Ri) Rj (the dots of
 * the uncorrected Ri, classical Gram-Schmidt), Ri /= |Ri|; f32 rows, double sums. */
void vg_flow_orthogonal_correct(vg_nn_module *m) {
  if (!vg_flow_block_state(m, &orth_ops)) return;
  vg_tensor *w = vg_nn_param(m, "weights");
  int64_t C = w->shape[0];
  float *R = malloc(sizeof(float) * (size_t)(C * C));
  double *dot = malloc(sizeof(double) * (size_t)C);
  vg_to_host(w, VG_F32, R);
  for (int64_t i = 0; i < C; i++) {
    float *ri = R + i * C;
    for (int64_t j = 0; j < i; j++) {
      double d = 0;
      for (int64_t k = 0; k < C; k++) d += (double)R[j * C + k] * ri[k];
      dot[j] = d;
    }
    for (int64_t k = 0; k < C; k++) {
      double acc = 0;
      for (int64_t j = 0; j < i; j++) acc += (double)R[j * C + k] * dot[j];
      ri[k] = (float)(ri[k] - acc);
    }
    double n2 = 0;
    for (int64_t k = 0; k < C; k++) n2 += (double)ri[k] * ri[k];
    float nrm = (float)sqrt(n2);
    for (int64_t k = 0; k < C; k++) ri[k] /= nrm;
  }
  vg_from_host_(w, VG_F32, R);
  free(R);
  free(dot);
}

bool vg_flow_orthogonal_step(vg_nn_module *m) {
  orth_state *s = vg_flow_block_state(m, &orth_ops);
  if (!s) return false;
  if (++s->counter <= s->interval) return false;
  s->counter = orth_randint(s, s->interval) / 4;
  vg_flow_orthogonal_correct(m);
  return true;
}

static vg_tensor *orth_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                           bool want, vg_tensor **ld) {
  (void)ncond; (void)cond;
  orth_state *s = m->ctx;
  vg_tensor *R = vg_nn_param(m, "weights"), *b = vg_nn_param(m, "bias");
  float c = (float)s->clamp;
  vg_tensor *l = vg_scale(vg_atan(vg_scale(vg_nn_param(m, "scaling"), 1.f / c)), c * 0.636f);   /* (1, C) */
  vg_tensor *y = rev ? vg_matmul(vg_sub(vg_mul(x, vg_exp(vg_neg(l))), b), vg_transpose(R, 0, 1))
                     : vg_mul(vg_add(vg_matmul(x, R), b), vg_exp(l));
  if (want) {
    int64_t N = x->shape[0];
    vg_tensor *j = vg_reshape(vg_sum_all(l), 1, (int64_t[]){1});
    *ld = vg_expand(rev ? vg_neg(j) : j, 1, &N);
  }
  return y;
}

/* ------------------------------------------------------------------ HouseholderPerm */
typedef struct {
  vg_flow_block b;
  bool fixed;
} hh_state;

static vg_tensor *hh_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                         bool want, vg_tensor **ld);
static const vg_flow_block_ops hh_ops = {.forward = hh_fwd};

vg_nn_module *vg_flow_householder_perm_new(int ndim, const int64_t *dims, int n_reflections, bool fixed,
                                           uint64_t seed) {
  if (!check_1d("HouseholderPerm", ndim, dims)) return NULL;
  if (n_reflections < 2) { vg_fail(VG_ERR_ARG, "HouseholderPerm: need at least 2 householder reflections, got %d", n_reflections); return NULL; }
  int64_t C = dims[0], K = n_reflections;
  vg_nn_module *m = vg_flow_block_new("HouseholderPerm", &hh_ops, sizeof(hh_state), ndim, dims, 0);
  ((hh_state *)m->ctx)->fixed = fixed;
  vg_tensor *vs = vg_tensor_new(VG_F32, 2, (int64_t[]){K, C});
  vg_normal_(vs, 0.f, fixed ? 1.f : 0.1f, seed);
  float *v = vg_f32(vs);
  if (!fixed) for (int64_t k = 0; k < K && k < C; k++) v[k * C + k] += 1.f;   /* eye(C, K)^T */
  vg_nn_add_param(m, "Vs", vs);
  if (fixed) {
    vg_requires_grad_(vs, false);
    /* W = H(v_0) ... H(v_{K-1}) in double: rows of I times each reflection in turn */
    double *W = malloc(sizeof(double) * (size_t)(C * C)), *u = malloc(sizeof(double) * (size_t)C);
    for (int64_t i = 0; i < C * C; i++) W[i] = (i / C == i % C);
    for (int64_t k = 0; k < K; k++) {
      double n2 = 0;
      for (int64_t i = 0; i < C; i++) n2 += (double)v[k * C + i] * v[k * C + i];
      for (int64_t i = 0; i < C; i++) u[i] = v[k * C + i] / sqrt(n2);
      for (int64_t r = 0; r < C; r++) {
        double d = 0;
        for (int64_t i = 0; i < C; i++) d += W[r * C + i] * u[i];
        for (int64_t i = 0; i < C; i++) W[r * C + i] -= 2 * d * u[i];
      }
    }
    for (int t = 0; t < 2; t++) {
      vg_tensor *w = vg_tensor_new(VG_F32, 2, (int64_t[]){C, C});
      for (int64_t i = 0; i < C * C; i++) vg_f32(w)[i] = (float)W[i];
      vg_nn_add_param(m, t ? "weight" : "W", w);
      vg_requires_grad_(w, false);
    }
    free(W); free(u);
  }
  return m;
}

static vg_tensor *hh_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                         bool want, vg_tensor **ld) {
  (void)ncond; (void)cond;
  vg_tensor *y;
  if (((hh_state *)m->ctx)->fixed) {
    vg_tensor *W = vg_nn_param(m, "W");
    y = vg_matmul(x, rev ? vg_transpose(W, 0, 1) : W);
  } else {
    /* x W = x H_0 H_1 ... (reverse: x W^T = x H_{K-1} ... H_0), x H = x - 2 (x u) u^T */
    vg_tensor *vs = vg_nn_param(m, "Vs");
    int64_t K = vs->shape[0];
    vg_tensor *u = vg_div(vs, vg_sqrt(vg_sum(vg_mul(vs, vs), 1, (int[]){1}, true)));   /* (K, C) unit rows */
    y = (vg_tensor *)x;
    for (int64_t i = 0; i < K; i++) {
      vg_tensor *uk = vg_narrow(u, 0, rev ? K - 1 - i : i, 1);                          /* (1, C) */
      y = vg_sub(y, vg_scale(vg_matmul(vg_matmul(y, vg_transpose(uk, 0, 1)), uk), 2.f));
    }
  }
  if (want) *ld = vg_flow_zeros_n(x, x->shape[0]);
  return y;
}
