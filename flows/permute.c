/* permute.c — fixed (parameter-free, no-grad) channel maps: PermuteRandom (a random
 * permutation, log-det 0) and FixedLinearTransform / Fixed1x1Conv (y = M x with a fixed
 * invertible M, log-det logDetM per pixel). Their state is the block header alone. */
#include "flows/block.h"
#include <math.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ PermuteRandom */
static vg_tensor *permute_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                              bool want, vg_tensor **ld) {
  (void)ncond; (void)cond;
  vg_tensor *y = vg_index_select(x, 1, vg_nn_buffer(m, rev ? "perm_inv" : "perm"));
  if (want) *ld = vg_flow_zeros_n(x, x->shape[0]);
  return y;
}
static const vg_flow_block_ops permute_ops = {.forward = permute_fwd};

vg_nn_module *vg_flow_permute_random_new(int ndim, const int64_t *dims, uint64_t seed) {
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  int64_t C = dims[0];
  vg_nn_module *m = vg_flow_block_new("PermuteRandom", &permute_ops, sizeof(vg_flow_block), ndim, dims, 0);
  vg_tensor *p = vg_tensor_new(VG_I64, 1, &C), *pi = vg_tensor_new(VG_I64, 1, &C);
  int64_t *pp = vg_data(p), *qq = vg_data(pi);
  vg_flow_random_permutation(C, seed, pp);
  for (int64_t i = 0; i < C; i++) qq[pp[i]] = i;
  vg_nn_add_buffer(m, "perm", p);
  vg_nn_add_buffer(m, "perm_inv", pi);
  return m;
}

/* ------------------------------------------------------------------ Fixed linear / 1x1 conv */
static vg_tensor *fixed_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                            bool want, vg_tensor **ld) {
  (void)ncond; (void)cond;
  int64_t N = x->shape[0];
  vg_tensor *y, *w = vg_nn_param(m, rev ? "M_inv" : "M");
  if (x->ndim == 2) y = vg_matmul(x, w);     /* x.mm(M) */
  else y = vg_conv2d(x, w, NULL, (vg_conv2d_opts){0});
  if (want) {
    vg_tensor *s = vg_scale(vg_nn_param(m, "logDetM"), (rev ? -1.f : 1.f) * (float)vg_flow_npix(x));
    *ld = vg_expand(vg_reshape(s, 1, (int64_t[]){1}), 1, &N);
  }
  return y;
}
static const vg_flow_block_ops fixed_ops = {.forward = fixed_fwd};

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
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  int64_t C = dims[0];
  double *Md = malloc(sizeof(double) * (size_t)(C * C)), *Mi = malloc(sizeof(double) * (size_t)(C * C));
  if (M) for (int64_t i = 0; i < C * C; i++) Md[i] = M[i];
  else vg_flow_special_ortho(C, seed, Md);
  double ld = lu_logdet_inv(C, Md, Mi);
  if (!isfinite(ld)) { free(Md); free(Mi); vg_fail(VG_ERR_ARG, "fixed linear: singular M"); return NULL; }
  vg_nn_module *m = vg_flow_block_new(ndim == 1 ? "FixedLinearTransform" : "Fixed1x1Conv", &fixed_ops, sizeof(vg_flow_block),
                                     ndim, dims, 0);
  int64_t sh[4] = {C, C, 1, 1};
  int nd = ndim == 1 ? 2 : 4;
  vg_tensor *tm = vg_tensor_new(VG_F32, nd, sh), *ti = vg_tensor_new(VG_F32, nd, sh), *tl = vg_tensor_new(VG_F32, 0, sh);
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
