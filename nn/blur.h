/* blur.h — anomalib's GaussianBlur2d (kornia's gaussian kernel, reflect padding, depthwise
 * convolution), the map smoothing of PaDiM and PatchCore.
 *
 *   vg_tensor *s = vg_gaussian_blur2d(map, 4.0, 0);   // N,C,H,W -> N,C,H,W, sigma 4, 33 taps
 *   if (!s) puts(vg_last_error());
 *
 * Kernel: kernel size k = 2*int(4*sigma + 0.5) + 1 when ksize is 0 (33 for sigma 4); the
 * 1-D taps are exp(-x^2 / (2 sigma^2)) at x = -(k/2)..k/2, normalised to sum 1 (f32, as
 * kornia's get_gaussian_kernel1d); the 2-D kernel is their outer product, applied here
 * separably (rows, then columns), which equals kornia's 33 x 33 depthwise conv to f32
 * rounding (~1e-7 relative). Borders: torch's F.pad mode "reflect" by k/2 on each side (the
 * edge pixel is not repeated), so the output has the input's size.
 *
 * Errors (NULL + message, as torch/kornia refuse them): x not 4-D floating point, sigma not
 * finite and > 0, an even or negative ksize, and an image side <= k/2 (reflect padding needs
 * pad < size: with sigma 4, images smaller than 17 x 17).
 *
 * A composition of existing ops (index_select for the padding, two depthwise conv2d), so it
 * runs on x's device and dtype and is differentiable. Result in the current scope. */
#ifndef VG_NN_BLUR_H
#define VG_NN_BLUR_H
#include "tensor/tensor.h"

/* anomalib's compute_kernel_size: 2*int(4*sigma + 0.5) + 1 (0 for a sigma out of range). */
int vg_gaussian_ksize(double sigma);
/* The normalised 1-D taps (f32, as kornia) into taps[ksize]; false for a bad sigma/ksize. */
bool vg_gaussian_kernel1d(double sigma, int ksize, float *taps);
vg_tensor *vg_gaussian_blur2d(const vg_tensor *x /* N,C,H,W */, double sigma, int ksize /* 0 = anomalib's */);
#endif
