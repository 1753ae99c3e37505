/* actnorm.c — ActNorm: y = x * exp(scale) + bias per channel, data-dependently
 * initialised on the first forward call (FrEIA: scale = log(1/std), bias = -mean * exp(scale)
 * over the batch and pixels); log-det sum(scale) per pixel. */
#include "flows/block.h"
#include <math.h>
#include <stdlib.h>

typedef struct {
  vg_flow_block b;
  bool init_next;   /* the next forward (rev = false) call initialises scale and bias */
} actnorm_state;

static vg_tensor *actnorm_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                              bool rev, bool want, vg_tensor **ld);
static const vg_flow_block_ops actnorm_ops = {.forward = actnorm_fwd};

vg_nn_module *vg_flow_actnorm_new(int ndim, const int64_t *dims) {
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  vg_nn_module *m = vg_flow_block_new("ActNorm", &actnorm_ops, sizeof(actnorm_state), ndim, dims, 0);
  int64_t ps[VG_MAX_DIMS];
  vg_nn_add_param(m, "scale", vg_flow_param_shape_like(ndim, dims[0], ps));
  vg_nn_add_param(m, "bias", vg_flow_param_shape_like(ndim, dims[0], ps));
  ((actnorm_state *)m->ctx)->init_next = true;
  return m;
}
void vg_flow_actnorm_mark_initialized(vg_nn_module *m) {
  actnorm_state *s = vg_flow_block_state(m, &actnorm_ops);
  if (s) s->init_next = false;
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
  ((actnorm_state *)m->ctx)->init_next = false;
}

static vg_tensor *actnorm_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                              bool rev, bool want, vg_tensor **ld) {
  (void)ncond; (void)cond;
  int64_t N = x->shape[0];
  if (((actnorm_state *)m->ctx)->init_next && !rev) actnorm_init(m, x);
  vg_tensor *sc = vg_nn_param(m, "scale"), *b = vg_nn_param(m, "bias");
  vg_tensor *y = rev ? vg_div(vg_sub(x, b), vg_exp(sc)) : vg_add(vg_mul(x, vg_exp(sc)), b);
  if (want) {
    vg_tensor *s = vg_scale(vg_sum_all(sc), (rev ? -1.f : 1.f) * (float)vg_flow_npix(x));
    *ld = vg_expand(vg_reshape(s, 1, (int64_t[]){1}), 1, &N);
  }
  return y;
}
