/* winograd.h — Winograd F(4x4, 3x3) and F(3x3, 4x4) convolution on the CPU (internal to
 * tensor/; conv.c calls it; the switch is public in tensor/parallel.h: vg_cpu_set_winograd,
 * VIGIL_WINOGRAD).
 *
 *   if (vg_cpu_winograd_applies(&g)) vg_cpu_conv2d_fwd_winograd(&g, x, w, bias, y);
 *
 * For 3x3 and 4x4, stride-1, dilation-1, ungrouped convolutions (any padding) with enough
 * channels and pixels to pay off. Each m x m output tile (m = 4 for 3x3 kernels, 3 for 4x4
 * ones) is A^T [(G g G^T) . (B^T d B)] A over its 6x6 input tile d: the filter transform
 * (per call: the weights may change between calls) and the input transform feed 36 GEMMs
 * (oc x c times c x tiles, vg_gemm_run) per block of tile rows, the output transform adds
 * the bias and the fused ReLU. Blocks of whole tile rows (the batch folded in) run in
 * parallel, or one block with the GEMMs parallel inside; the blocking depends on the shape
 * only, so results are bit-identical for any thread count (every ISA's copy of the
 * transforms computes the same floats; the GEMM's rounding differs between ISAs). Rounding
 * differs from the direct product: measured max |y - y_ref| / max |y_ref| <= 1.4e-5 for
 * 3x3 and <= 1.1e-5 for 4x4 on ResNet18/WRN50/PDN/FastFlow/EfficientAD-autoencoder layer
 * shapes with 16..512 input channels (tests/test_conv_kernels.c bounds it by 3e-5; GEMM
 * path ~5e-7). A 4x4 layer does 36 multiplies per 9 outputs instead of 144: 4x fewer
 * FLOPs in the GEMMs. */
#ifndef VG_WINOGRAD_H
#define VG_WINOGRAD_H
#include "tensor/cpu/conv.h"
#include <stdint.h>

/* Winograd is on (vg_cpu_set_winograd / VIGIL_WINOGRAD) and this geometry is one it takes. */
int vg_cpu_winograd_applies(const vg_conv2d_geom *g);
/* The geometry alone qualifies (3x3, stride 1, dilation 1, groups 1, size thresholds). */
int vg_cpu_winograd_eligible(const vg_conv2d_geom *g);
void vg_cpu_conv2d_fwd_winograd(const vg_conv2d_geom *g, const float *x, const float *w,
                                const float *bias, float *y);
/* The weight gradient of the same convolutions (no bias gradient): dU[xi] = sum over tiles
 * of V[xi] Gm[xi]^T (36 GEMMs, K = tiles, accumulated over blocks of tile rows), Gm the
 * output gradient's tiles through A (. ) A^T, then gw = G^T dU G. */
void vg_cpu_conv2d_bwd_weight_winograd(const vg_conv2d_geom *g, const float *x, const float *gy, float *gw);

/* The transforms, one copy per ISA (tensor/cpu/winograd_kern.h). */
#define VG_WINO_DECL(sfx)                                                                        \
  void vg_wino_in_row_##sfx(const float *xc, int64_t H, int64_t W, int64_t iy0, int64_t ix0,     \
                            int64_t TX, int m, float *buf, float *V, int64_t vs);                \
  void vg_wino_out_row_##sfx(const float *m, int64_t ms, int64_t TX, float bias, int relu,       \
                             float *yc, int64_t oh, int64_t ow, int64_t oy0, float *buf);        \
  void vg_wino_out_row3_##sfx(const float *m, int64_t ms, int64_t TX, float bias, int relu,      \
                              float *yc, int64_t oh, int64_t ow, int64_t oy0, float *buf);       \
  void vg_wino_filter_##sfx(const float *w, int64_t C, int64_t OC, int64_t c, int64_t o0, int on,  \
                            int r, float *U, int64_t plane);                                     \
  void vg_wino_gy_row_##sfx(const float *gyc, int64_t oh, int64_t ow, int64_t oy0, int64_t TX, int m, \
                            float *buf, float *Gm, int64_t gs);                                  \
  void vg_wino_filter_grad_##sfx(const float *dU, int64_t C, int64_t OC, int64_t c, int64_t o0,    \
                                 int on, int r, float *gw, int64_t plane);
VG_WINO_DECL(scalar)
VG_WINO_DECL(avx2)
VG_WINO_DECL(avx512)
#undef VG_WINO_DECL
#endif
