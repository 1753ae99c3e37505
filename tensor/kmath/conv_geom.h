/* kmath/conv_geom.h — convolution / unfold geometry and conv_bn_fold's arithmetic,
 * written once for the front-ends (tensor/ops_conv.c, ops_spatial.c), the CPU kernels
 * (tensor/cpu/conv.c, conv_op.c, layout.c) and the CUDA kernels (tensor/cuda/conv.cu). */
#ifndef VG_KMATH_CONV_GEOM_H
#define VG_KMATH_CONV_GEOM_H
#include <math.h>
#include <stdint.h>
#include "tensor/hd.h"

/* output size of a conv / unfold axis: input n, kernel k, stride s, padding p, dilation d
 * (the padded input must hold one dilated kernel) */
static inline VG_HD int64_t vg_conv_out_size(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (n + 2 * p - d * (k - 1) - 1) / s + 1;
}

/* input coordinate read by output o and kernel tap t (outside [0, n): padding). A macro,
 * so that the CUDA kernels keep their 32-bit index math where it fits. */
#define VG_CONV_SRC(o, s, p, t, d) ((o) * (s) - (p) + (t) * (d))

/* conv_bn_fold: the channel's scale s = gamma / sqrt(var + eps), the folded weight
 * w * s and bias (bias - mean) * s + beta, in f32 with no fused multiply-add (C11 on
 * the CPU, nvcc --fmad=false), so both backends give the same bits. Absent bias and
 * beta count as 0, an absent gamma as 1. */
static inline VG_HD float vg_bn_fold_scale(float gamma, float var, float eps) { return gamma / sqrtf(var + eps); }
static inline VG_HD float vg_bn_fold_bias(float bias, float mean, float s, float beta) {
  return (bias - mean) * s + beta;
}
#endif
