/* blur.c — anomalib's GaussianBlur2d as ops (see blur.h). */
#include "nn/blur.h"
#include <math.h>
#include <stdlib.h>

int vg_gaussian_ksize(double sigma) {
  if (!(sigma > 0) || !isfinite(sigma) || 4.0 * sigma + 0.5 >= 1e6) return 0;
  return 2 * (int)(4.0 * sigma + 0.5) + 1;
}

bool vg_gaussian_kernel1d(double sigma, int ksize, float *taps) {
  if (!(sigma > 0) || !isfinite(sigma) || ksize < 1 || ksize % 2 == 0) return false;
  /* kornia in f32: x = arange(k) - k//2, gauss = exp(-x^2 / (2 sigma^2)), / sum */
  float s = (float)sigma, den = 2.0f * (s * s), sum = 0;
  if (!(den > 0) || !isfinite(den)) return false;
  for (int i = 0; i < ksize; i++) {
    float x = (float)i - (float)(ksize / 2);
    taps[i] = expf(-(x * x) / den);
  }
  for (int i = 0; i < ksize; i++) sum += taps[i];
  for (int i = 0; i < ksize; i++) taps[i] /= sum;
  return true;
}

/* x padded by p on both sides of dim (torch "reflect": index -i -> i, n-1+i -> n-1-i). */
static vg_tensor *reflect_pad(const vg_tensor *x, int dim, int p) {
  int64_t n = x->shape[dim], m = n + 2 * p;
  int64_t *idx = malloc((size_t)m * sizeof *idx);
  if (!idx) {
    vg_fail(VG_ERR_NOMEM, "gaussian_blur2d: out of memory");
    return NULL;
  }
  for (int64_t i = 0; i < m; i++) {
    int64_t j = i - p;
    if (j < 0) j = -j;
    if (j >= n) j = 2 * (n - 1) - j;
    idx[i] = j;
  }
  vg_tensor *it = vg_from_data(VG_I64, 1, (int64_t[]){m}, idx);
  free(idx);
  if (it && x->device != VG_CPU) it = vg_to_device(it, x->device);
  return vg_index_select(x, dim, it);
}

static vg_tensor *blur(const vg_tensor *x, double sigma, int ksize);

vg_tensor *vg_gaussian_blur2d(const vg_tensor *x, double sigma, int ksize) {
  if (!x) return NULL;
  if (vg_scope_depth() > 0 || x->requires_grad) return blur(x, sigma, ksize);
  /* outside any scope: the index / tap tensors die here, the result is a heap tensor */
  vg_scope_begin();
  vg_tensor *y = blur(x, sigma, ksize);
  vg_scope_end_keep(1, &y);
  return y;
}

static vg_tensor *blur(const vg_tensor *x, double sigma, int ksize) {
  char sh[96];
  if (x->ndim != 4 || !(x->dtype == VG_F32 || x->dtype == VG_F16 || x->dtype == VG_BF16)) {
    vg_fail(VG_ERR_ARG, "gaussian_blur2d: x must be a 4-D (N, C, H, W) float tensor, got %s %s",
            vg_dtype_name(x->dtype), vg_shape_str(x, sh, sizeof sh));
    return NULL;
  }
  if (!(sigma > 0) || !isfinite(sigma)) {
    vg_fail(VG_ERR_ARG, "gaussian_blur2d: sigma must be finite and > 0, got %g", sigma);
    return NULL;
  }
  if (ksize == 0) ksize = vg_gaussian_ksize(sigma);
  if (ksize < 1 || ksize % 2 == 0 || ksize > (1 << 20)) {
    vg_fail(VG_ERR_ARG, "gaussian_blur2d: kernel size must be an odd integer > 0, got %d (sigma %g)", ksize, sigma);
    return NULL;
  }
  int p = ksize / 2;
  if (x->shape[2] <= p || x->shape[3] <= p) {
    vg_fail(VG_ERR_ARG,
            "gaussian_blur2d: reflect padding %d needs H and W > %d (kernel %d, sigma %g), got %s", p, p, ksize,
            sigma, vg_shape_str(x, sh, sizeof sh));
    return NULL;
  }
  int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
  if (n * c == 0) return vg_contiguous(x);
  float *taps = malloc((size_t)ksize * sizeof *taps);
  if (!taps) {
    vg_fail(VG_ERR_NOMEM, "gaussian_blur2d: out of memory");
    return NULL;
  }
  vg_gaussian_kernel1d(sigma, ksize, taps);
  vg_tensor *kw = vg_from_data(VG_F32, 4, (int64_t[]){1, 1, 1, ksize}, taps);
  vg_tensor *kh = vg_from_data(VG_F32, 4, (int64_t[]){1, 1, ksize, 1}, taps);
  free(taps);
  if (kw && x->device != VG_CPU) kw = vg_to_device(kw, x->device), kh = vg_to_device(kh, x->device);
  if (kw && x->dtype != VG_F32) kw = vg_cast(kw, x->dtype), kh = vg_cast(kh, x->dtype);
  if (!kw || !kh) return NULL;
  /* every (n, c) plane on its own: N*C x 1 x H x W, one 1-channel conv per direction */
  vg_tensor *y = vg_reshape(vg_contiguous(x), 4, (int64_t[]){n * c, 1, h, w});
  if (p > 0) {
    y = vg_conv2d(reflect_pad(y, 3, p), kw, NULL, (vg_conv2d_opts){0});
    y = vg_conv2d(reflect_pad(y, 2, p), kh, NULL, (vg_conv2d_opts){0});
  }
  return vg_reshape(y, 4, (int64_t[]){n, c, h, w});
}
