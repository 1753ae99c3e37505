/* init.c — torch.nn.init on Vigil tensors (Philox-seeded: torch's distributions, not
 * torch's numbers). */
#include "nn/nn.h"
#include <math.h>
#include <string.h>

static vg_status need_f32(const vg_tensor *t, const char *fn) {
  if (!t) return vg_fail(VG_ERR_ARG, "%s: tensor is NULL", fn);
  if (t->dtype != VG_F32) return vg_fail(VG_ERR_ARG, "%s: wants an f32 tensor, got %s", fn, vg_dtype_name(t->dtype));
  return VG_OK;
}

static vg_status need_fans(const vg_tensor *t, const char *fn) {
  vg_status st = need_f32(t, fn);
  if (st) return st;
  if (t->ndim < 2)
    return vg_fail(VG_ERR_ARG, "%s: fan in and fan out can not be computed for a tensor with fewer than 2 dims", fn);
  return VG_OK;
}

double vg_init_gain(vg_nonlinearity nl, double param) {
  switch (nl) {
    case VG_GAIN_LINEAR:
    case VG_GAIN_CONV:
    case VG_GAIN_SIGMOID: return 1.0;
    case VG_GAIN_TANH: return 5.0 / 3.0;
    case VG_GAIN_RELU: return sqrt(2.0);
    case VG_GAIN_LEAKY_RELU: return sqrt(2.0 / (1.0 + param * param));
    case VG_GAIN_SELU: return 3.0 / 4.0;
  }
  VG_ABORT("vg_init_gain: bad nonlinearity %d", (int)nl);
}

void vg_init_fans(const vg_tensor *t, int64_t *fan_in, int64_t *fan_out) {
  int64_t rf = 1;
  for (int i = 2; i < t->ndim; i++) rf *= t->shape[i];
  *fan_in = t->ndim >= 2 ? t->shape[1] * rf : 0;
  *fan_out = t->ndim >= 1 ? t->shape[0] * rf : 0;
}

vg_status vg_init_zeros(vg_tensor *t) { return vg_init_constant(t, 0.0); }
vg_status vg_init_ones(vg_tensor *t) { return vg_init_constant(t, 1.0); }

vg_status vg_init_constant(vg_tensor *t, double v) {
  if (!t) return vg_fail(VG_ERR_ARG, "init_constant: tensor is NULL");
  return vg_fill_(t, v);
}

vg_status vg_init_uniform(vg_tensor *t, double lo, double hi, uint64_t seed) {
  vg_status st = need_f32(t, "init_uniform");
  return st ? st : vg_uniform_(t, (float)lo, (float)hi, seed);
}

vg_status vg_init_normal(vg_tensor *t, double mean, double std, uint64_t seed) {
  vg_status st = need_f32(t, "init_normal");
  return st ? st : vg_normal_(t, (float)mean, (float)std, seed);
}

vg_status vg_init_xavier_uniform(vg_tensor *t, double gain, uint64_t seed) {
  vg_status st = need_fans(t, "xavier_uniform");
  if (st) return st;
  int64_t fi, fo;
  vg_init_fans(t, &fi, &fo);
  double a = sqrt(3.0) * gain * sqrt(2.0 / (double)(fi + fo));
  return vg_uniform_(t, (float)-a, (float)a, seed);
}

vg_status vg_init_xavier_normal(vg_tensor *t, double gain, uint64_t seed) {
  vg_status st = need_fans(t, "xavier_normal");
  if (st) return st;
  int64_t fi, fo;
  vg_init_fans(t, &fi, &fo);
  return vg_normal_(t, 0.0f, (float)(gain * sqrt(2.0 / (double)(fi + fo))), seed);
}

static double kaiming_std(const vg_tensor *t, double a, bool fan_out, vg_nonlinearity nl) {
  int64_t fi, fo;
  vg_init_fans(t, &fi, &fo);
  double fan = (double)(fan_out ? fo : fi);
  return vg_init_gain(nl, a) / sqrt(fan);
}

vg_status vg_init_kaiming_uniform(vg_tensor *t, double a, bool fan_out, vg_nonlinearity nl, uint64_t seed) {
  vg_status st = need_fans(t, "kaiming_uniform");
  if (st) return st;
  double bound = sqrt(3.0) * kaiming_std(t, a, fan_out, nl);
  return vg_uniform_(t, (float)-bound, (float)bound, seed);
}

vg_status vg_init_kaiming_normal(vg_tensor *t, double a, bool fan_out, vg_nonlinearity nl, uint64_t seed) {
  vg_status st = need_fans(t, "kaiming_normal");
  if (st) return st;
  return vg_normal_(t, 0.0f, (float)kaiming_std(t, a, fan_out, nl), seed);
}

/* Q of A = QR for A (m x n, m >= n, row-major), by modified Gram-Schmidt with one
 * re-orthogonalization pass: columns of Q orthonormal, diag(R) > 0, which is torch's
 * Q * sign(diag R). A degenerate column (norm 0) is replaced by a unit vector. */
static void gram_schmidt(double *A, int64_t m, int64_t n) {
  for (int64_t j = 0, tries = 0; j < n; j++) {
    for (int pass = 0; pass < 2; pass++)
      for (int64_t k = 0; k < j; k++) {
        double d = 0;
        for (int64_t i = 0; i < m; i++) d += A[i * n + k] * A[i * n + j];
        for (int64_t i = 0; i < m; i++) A[i * n + j] -= d * A[i * n + k];
      }
    double nrm = 0;
    for (int64_t i = 0; i < m; i++) nrm += A[i * n + j] * A[i * n + j];
    nrm = sqrt(nrm);
    if (nrm < 1e-12 && tries < m) {   /* dependent column: try the unit vectors in turn */
      for (int64_t i = 0; i < m; i++) A[i * n + j] = i == tries ? 1.0 : 0.0;
      tries++;
      j--;
      continue;
    }
    for (int64_t i = 0; i < m; i++) A[i * n + j] /= nrm;
  }
}

vg_status vg_init_orthogonal(vg_tensor *t, double gain, uint64_t seed) {
  vg_status st = need_fans(t, "orthogonal");
  if (st) return st;
  if (!vg_is_contiguous(t)) return vg_fail(VG_ERR_ARG, "orthogonal: wants a contiguous tensor");
  int64_t rows = t->shape[0], cols = vg_numel(t) / (rows ? rows : 1);
  if (rows == 0 || cols == 0) return VG_OK;
  vg_tensor *g = vg_tensor_new(VG_F32, 2, (int64_t[]){rows, cols});
  vg_normal_(g, 0.0f, 1.0f, seed);
  const float *gs = vg_f32(g);
  /* torch: if rows < cols, QR of the transpose and transpose back */
  bool tr = rows < cols;
  int64_t m = tr ? cols : rows, n = tr ? rows : cols;
  double *A = malloc((size_t)(m * n) * sizeof *A);
  if (!A) {
    vg_tensor_free(g);
    return vg_fail(VG_ERR_NOMEM, "orthogonal: out of memory");
  }
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      double v = gs[r * cols + c];
      if (tr) A[c * n + r] = v;
      else A[r * n + c] = v;
    }
  gram_schmidt(A, m, n);
  float *out = vg_f32(t);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) out[r * cols + c] = (float)(gain * (tr ? A[c * n + r] : A[r * n + c]));
  free(A);
  vg_tensor_free(g);
  return VG_OK;
}

vg_status vg_init_torch_default(vg_tensor *weight, vg_tensor *bias, uint64_t seed) {
  /* kaiming_uniform(a = sqrt 5): gain sqrt(2 / 6), bound = gain * sqrt(3 / fan_in) = 1/sqrt(fan_in) */
  vg_status st = vg_init_kaiming_uniform(weight, sqrt(5.0), false, VG_GAIN_LEAKY_RELU, seed);
  if (st || !bias) return st;
  int64_t fi, fo;
  vg_init_fans(weight, &fi, &fo);
  double bound = fi > 0 ? 1.0 / sqrt((double)fi) : 0.0;
  return vg_init_uniform(bias, -bound, bound, seed ^ 0x5851F42D4C957F2Dull);
}
