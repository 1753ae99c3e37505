/* reshape.c — FrEIA 0.2's spatial reshaping modules (FrEIA/modules/reshapes.py):
 * HaarDownsampling / HaarUpsampling and IRevNetDownsampling / IRevNetUpsampling.
 *
 * Down maps (C, H, W) -> (4C, H/2, W/2) (H, W even); Up is the same module run the other
 * way (Up's forward = Down's reverse), built for Up's input (4C', H', W').
 * For a 2x2 patch [[a, b], [c, d]] of input channel c_in:
 *   IRevNet: channel 4 c_in + k holds a, b, c, d for k = 0..3 (legacy_backend: k C + c_in).
 *   Haar:    channel 4 c_in + k holds fac * (a+b+c+d, a-b+c-d, a+b-c-d, a-b-c+d)[k], fac =
 *            0.5 * rebalance (order_by_wavelet: channel k C + c_in instead). The reverse
 *            applies the same (symmetric) butterfly with 0.5 / rebalance.
 * log|det J|: IRevNet 0; Haar per sample n * (log 16 + 4 log fac) / 4 with n the numel of a
 * sample (FrEIA's jac_fwd / jac_rev; = n log|rebalance| going down, its negative going up).
 *
 * FrEIA computes these with a grouped stride-2 conv / transposed conv whose kernel it keeps
 * as a frozen nn.Parameter (haar_weights, downsample_kernel: (4C, 1, 2, 2)). Vigil
 * registers the same tensors (requires_grad off) so FrEIA state dicts load and save by
 * name, and computes with views (reshape / permute / select / stack) and adds, which
 * every backend and autograd already have. Unlike FrEIA 0.2's Haar reverse, the input is
 * never scaled in place.
 *
 * These change the shape, so the family is `composite` (block.h): it checks x itself
 * against the built dims (forward) or the output dims (reverse). */
#include "flows/block.h"
#include <math.h>

typedef struct {
  vg_flow_block b;
  bool haar;          /* Haar (else IRevNet) */
  bool up;            /* *Upsampling: forward = the downsampling's reverse */
  bool by_wavelet;    /* Haar order_by_wavelet / IRevNet legacy_backend: channel k C + c */
  double rebalance;   /* Haar */
} reshape_state;

static vg_tensor *reshape_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                              bool want, vg_tensor **ld);
static int reshape_output_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out);
static const vg_flow_block_ops reshape_ops = {
    .forward = reshape_fwd, .output_dims = reshape_output_dims, .composite = true};

/* dims of the other side: down (C, H, W) -> (4C, H/2, W/2), up the reverse; false when
 * not cleanly divisible (FrEIA: "cannot be cleanly reshaped"). */
static bool other_dims(bool down, const int64_t *d, int64_t *o) {
  if (down) {
    if (d[1] % 2 || d[2] % 2) return false;
    o[0] = d[0] * 4; o[1] = d[1] / 2; o[2] = d[2] / 2;
  } else {
    if (d[0] % 4) return false;
    o[0] = d[0] / 4; o[1] = d[1] * 2; o[2] = d[2] * 2;
  }
  return true;
}

static vg_nn_module *reshape_new(const char *kind, bool haar, bool up, int ndim, const int64_t *dims,
                                 bool by_wavelet, double rebalance) {
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  int64_t od[3];
  if (ndim != 3) { vg_fail(VG_ERR_ARG, "%s: needs (C, H, W) input dims, got %d dims", kind, ndim); return NULL; }
  if (!other_dims(!up, dims, od)) {
    vg_fail(VG_ERR_ARG, "%s: input (%lld, %lld, %lld) cannot be cleanly reshaped (%s)", kind, (long long)dims[0],
            (long long)dims[1], (long long)dims[2], up ? "channels must be a multiple of 4" : "height and width must be even");
    return NULL;
  }
  if (haar && !(rebalance == rebalance && isfinite(rebalance))) { vg_fail(VG_ERR_ARG, "%s: rebalance must be finite", kind); return NULL; }
  vg_nn_module *m = vg_flow_block_new(kind, &reshape_ops, sizeof(reshape_state), ndim, dims, 0);
  reshape_state *s = m->ctx;
  s->haar = haar;
  s->up = up;
  s->by_wavelet = by_wavelet;
  s->rebalance = rebalance == 0 ? 1.0 : rebalance;
  /* FrEIA's frozen kernel (4 c_low, 1, 2, 2), c_low = channels of the high-resolution side,
   * repeated per channel: Haar rows k of the butterfly, IRevNet one-hot offsets. */
  if (haar || !by_wavelet) {
    int64_t c_low = up ? od[0] : dims[0];
    int64_t ks[4] = {4 * c_low, 1, 2, 2};
    vg_tensor *k = vg_tensor_new(VG_F32, 4, ks);
    static const float haar_k[4][4] = {{1, 1, 1, 1}, {1, -1, 1, -1}, {1, 1, -1, -1}, {1, -1, -1, 1}};
    float *p = vg_f32(k);
    for (int64_t c = 0; c < c_low; c++)
      for (int r = 0; r < 4; r++)
        for (int j = 0; j < 4; j++) p[(c * 4 + r) * 4 + j] = haar ? haar_k[r][j] : (float)(r == j);
    vg_nn_add_param(m, haar ? "haar_weights" : "downsample_kernel", k);
    vg_requires_grad_(k, false);
  }
  return m;
}

vg_nn_module *vg_flow_haar_down_new(int ndim, const int64_t *dims, vg_flow_haar_opts o) {
  return reshape_new("HaarDownsampling", true, false, ndim, dims, o.order_by_wavelet, o.rebalance);
}
vg_nn_module *vg_flow_haar_up_new(int ndim, const int64_t *dims, vg_flow_haar_opts o) {
  return reshape_new("HaarUpsampling", true, true, ndim, dims, o.order_by_wavelet, o.rebalance);
}
vg_nn_module *vg_flow_irevnet_down_new(int ndim, const int64_t *dims, bool legacy_backend) {
  return reshape_new("IRevNetDownsampling", false, false, ndim, dims, legacy_backend, 1.0);
}
vg_nn_module *vg_flow_irevnet_up_new(int ndim, const int64_t *dims, bool legacy_backend) {
  return reshape_new("IRevNetUpsampling", false, true, ndim, dims, legacy_backend, 1.0);
}

static int reshape_output_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out) {
  const reshape_state *s = m->ctx;
  if (ndim != 3) { vg_fail(VG_ERR_ARG, "%s: built for 3 dims, got %d", m->kind_name, ndim); return -1; }
  for (int i = 0; i < 3; i++)
    if (dims[i] != s->b.dims[i]) { vg_fail(VG_ERR_ARG, "%s: dims mismatch at %d", m->kind_name, i); return -1; }
  other_dims(!s->up, dims, out);
  return 3;
}

/* The butterfly H p (H symmetric, H H = 4 I), times fac: q_k = fac * sum_j H[k][j] p_j. */
static void butterfly(vg_tensor *const p[4], float fac, vg_tensor *q[4]) {
  vg_tensor *s1 = vg_add(p[0], p[1]), *d1 = vg_sub(p[0], p[1]);
  vg_tensor *s2 = vg_add(p[2], p[3]), *d2 = vg_sub(p[2], p[3]);
  q[0] = vg_scale(vg_add(s1, s2), fac);   /* a + b + c + d */
  q[1] = vg_scale(vg_add(d1, d2), fac);   /* a - b + c - d */
  q[2] = vg_scale(vg_sub(s1, s2), fac);   /* a + b - c - d */
  q[3] = vg_scale(vg_sub(d1, d2), fac);   /* a - b - c + d */
}

/* (N, C, H, W) -> (N, 4C, H/2, W/2) */
static vg_tensor *down(const reshape_state *s, const vg_tensor *x) {
  int64_t N = x->shape[0], C = x->shape[1], H2 = x->shape[2] / 2, W2 = x->shape[3] / 2;
  vg_tensor *v = vg_reshape(x, 6, (int64_t[]){N, C, H2, 2, W2, 2});
  vg_tensor *y;
  if (!s->haar) {
    /* (N, C, dy, dx, H2, W2) or legacy (N, dy, dx, C, H2, W2) */
    y = vg_permute(v, s->by_wavelet ? (int[]){0, 3, 5, 1, 2, 4} : (int[]){0, 1, 3, 5, 2, 4});
  } else {
    vg_tensor *p[4], *q[4];
    for (int k = 0; k < 4; k++) p[k] = vg_select(vg_select(v, 5, k & 1), 3, k >> 1);   /* a b c d: (N, C, H2, W2) */
    butterfly(p, (float)(0.5 * s->rebalance), q);
    y = vg_stack(4, q, s->by_wavelet ? 1 : 2);
  }
  return vg_reshape(y, 4, (int64_t[]){N, 4 * C, H2, W2});
}

/* (N, 4C, H2, W2) -> (N, C, 2 H2, 2 W2): the exact inverse of down */
static vg_tensor *up(const reshape_state *s, const vg_tensor *y) {
  int64_t N = y->shape[0], C = y->shape[1] / 4, H2 = y->shape[2], W2 = y->shape[3];
  vg_tensor *v;
  if (!s->haar) {
    if (s->by_wavelet)
      v = vg_permute(vg_reshape(y, 6, (int64_t[]){N, 2, 2, C, H2, W2}), (int[]){0, 3, 4, 1, 5, 2});
    else
      v = vg_permute(vg_reshape(y, 6, (int64_t[]){N, C, 2, 2, H2, W2}), (int[]){0, 1, 4, 2, 5, 3});
  } else {
    vg_tensor *q = s->by_wavelet ? vg_reshape(y, 5, (int64_t[]){N, 4, C, H2, W2}) : vg_reshape(y, 5, (int64_t[]){N, C, 4, H2, W2});
    vg_tensor *p[4], *r[4];
    for (int k = 0; k < 4; k++) p[k] = vg_select(q, s->by_wavelet ? 1 : 2, k);
    butterfly(p, (float)(0.5 / s->rebalance), r);   /* a b c d */
    vg_tensor *top = vg_stack(2, (vg_tensor *[]){r[0], r[1]}, 4), *bot = vg_stack(2, (vg_tensor *[]){r[2], r[3]}, 4);
    v = vg_stack(2, (vg_tensor *[]){top, bot}, 3);      /* (N, C, H2, dy, W2, dx) */
  }
  return vg_reshape(v, 4, (int64_t[]){N, C, 2 * H2, 2 * W2});
}

static vg_tensor *reshape_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                              bool want, vg_tensor **ld) {
  (void)ncond; (void)cond;
  if (ld) *ld = NULL;
  const reshape_state *s = m->ctx;
  int64_t want_dims[3];
  if (rev) other_dims(!s->up, s->b.dims, want_dims);
  else for (int i = 0; i < 3; i++) want_dims[i] = s->b.dims[i];
  if (x->ndim != 4 || x->shape[1] != want_dims[0] || x->shape[2] != want_dims[1] || x->shape[3] != want_dims[2]) {
    vg_fail(VG_ERR_ARG, "%s: %s input must be (N, %lld, %lld, %lld)", m->kind_name, rev ? "reverse" : "forward",
            (long long)want_dims[0], (long long)want_dims[1], (long long)want_dims[2]);
    return NULL;
  }
  bool going_down = s->up == rev;
  vg_tensor *y = going_down ? down(s, x) : up(s, x);
  if (want && ld) {
    double ld1 = 0;
    if (s->haar) {
      double fac = going_down ? 0.5 * s->rebalance : 0.5 / s->rebalance;
      ld1 = (double)(vg_numel(x) / x->shape[0]) * ((log(16.0) + 4 * log(fabs(fac))) / 4.0);
    }
    *ld = vg_full_on(x->device, VG_F32, 1, &x->shape[0], ld1);
  }
  return y;
}
