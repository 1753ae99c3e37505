/* gradcheck.c — central differences against the tape's gradients.
 * The scalar checked is L = sum(f(x) * R) with R a fixed random tensor, so every
 * output element contributes with its own weight; L is evaluated in double. */
#include "autograd/autograd.h"
#include "tensor/internal.h"
#include <math.h>
#include <string.h>

static double eval_L(vg_gradcheck_fn f, vg_tensor *const *in, void *ctx, const float *r, int64_t *nout) {
  vg_scope_begin();
  vg_no_grad_begin();
  vg_tensor *y = f(in, ctx);
  vg_no_grad_end();
  double L = NAN;
  if (y) {
    int64_t n = vg_numel(y);
    *nout = n;
    float *buf = vg_scope_alloc(sizeof(float) * (size_t)(n ? n : 1));
    vg_to_host(y, VG_F32, buf);
    L = 0;
    for (int64_t i = 0; i < n; i++) L += (double)buf[i] * r[i];
  }
  vg_scope_end();
  return L;
}

double vg_gradcheck(vg_gradcheck_fn f, int n, vg_tensor *const *inputs, void *ctx, double eps) {
  /* output size first, for the projection */
  int64_t nout = 0;
  vg_scope_begin();
  vg_no_grad_begin();
  vg_tensor *y0 = f(inputs, ctx);
  vg_no_grad_end();
  if (!y0) {
    vg_scope_end();
    return INFINITY;
  }
  nout = vg_numel(y0);
  vg_scope_end();
  float *r = malloc(sizeof(float) * (size_t)(nout ? nout : 1));
  vg_tensor *rt = vg_rand(1, &nout, 12345);   /* heap (no scope open) */
  vg_to_host(rt, VG_F32, r);
  vg_tensor_free(rt);
  for (int64_t i = 0; i < nout; i++) r[i] = r[i] * 2.0f - 1.0f;

  /* analytic */
  for (int k = 0; k < n; k++) vg_zero_grad_(inputs[k]);
  vg_scope_begin();
  vg_tensor *y = f(inputs, ctx);
  vg_tensor *L = vg_sum_all(vg_mul(y, vg_from_data(VG_F32, y->ndim, y->shape, r)));
  vg_status st = vg_backward(L);
  vg_scope_end();
  if (st != VG_OK) {
    free(r);
    return INFINITY;
  }
  double worst = 0;
  for (int k = 0; k < n; k++) {
    vg_tensor *x = inputs[k];
    if (!x->requires_grad) continue;
    if (!x->grad) { /* no gradient reached an input that requires one */
      vg_fail(VG_ERR_ARG, "gradcheck: input %d got no gradient", k);
      free(r);
      return INFINITY;
    }
    VG_ASSERT(vg_is_contiguous(x) && x->dtype == VG_F32);
    float *px = vg_f32(x);
    int64_t m = vg_numel(x);
    float *ga = malloc(sizeof(float) * (size_t)(m ? m : 1));
    vg_to_host(x->grad, VG_F32, ga);
    for (int64_t i = 0; i < m; i++) {
      float keep = px[i];
      px[i] = keep + (float)eps;
      double lp = eval_L(f, inputs, ctx, r, &nout);
      px[i] = keep - (float)eps;
      double lm = eval_L(f, inputs, ctx, r, &nout);
      px[i] = keep;
      /* the step actually taken, after rounding to float */
      double h = ((double)(keep + (float)eps) - (double)(keep - (float)eps));
      double num = (lp - lm) / h, ana = ga[i];
      double den = fmax(1.0, fmax(fabs(num), fabs(ana)));
      double err = fabs(num - ana) / den;
      if (!(err <= worst)) worst = err; /* NaN propagates */
    }
    free(ga);
  }
  free(r);
  return worst;
}
