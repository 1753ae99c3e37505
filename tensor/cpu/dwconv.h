/* dwconv.h — direct depthwise convolution on the CPU (internal to tensor/; conv.c calls it).
 *
 *   if (vg_cpu_dwconv_applies(&g)) vg_cpu_dwconv_fwd(&g, x, w, bias, y);
 *
 * For groups == c == oc > 1 (channel multiplier 1), any kernel, stride (sw <= 4), padding and
 * dilation. Each (image, channel) plane is copied once into a zero-padded buffer whose rows are
 * split into sw column phases, so every tap of every output row reads a contiguous run and no
 * border tests remain in the inner loops; the rows are then summed tap by tap (3x3 in one pass,
 * 5-wide rows per pass), bias and the fused ReLU (NaN kept, as the GEMM path) at the end. At
 * stride 1 the whole plane is one row at the padded pitch (the pixels between rows computed and
 * dropped), so small planes run long vector loops. All planes run through one
 * vg_parallel_for. bwd_data scatters gy times each tap into the padded plane and copies its
 * interior out; bwd_weight sums gy times each tap's input in 16 float lanes per tap (images in
 * order), reduced in double. One copy of the row kernels per ISA (dwconv_kern.h); they compute
 * the same floats, and the planes are independent, so results are bit-identical for any ISA and
 * thread count. The summation order differs from the GEMM path (see tests/test_conv_kernels.c
 * for the measured differences). Off switch: vg_cpu_set_dwconv(0) or VIGIL_DWCONV=0. */
#ifndef VG_DWCONV_H
#define VG_DWCONV_H
#include "tensor/cpu/conv.h"
#include <stddef.h>
#include <stdint.h>

/* on: 1, off: 0, -1: VIGIL_DWCONV decides (default on) */
void vg_cpu_set_dwconv(int on);
int vg_cpu_dwconv(void);
/* The geometry alone qualifies (depthwise, multiplier 1, n >= 1, sw <= 4). */
int vg_cpu_dwconv_eligible(const vg_conv2d_geom *g);
/* Eligible and switched on. */
int vg_cpu_dwconv_applies(const vg_conv2d_geom *g);

void vg_cpu_dwconv_fwd(const vg_conv2d_geom *g, const float *x, const float *w, const float *bias, float *y);
void vg_cpu_dwconv_bwd_data(const vg_conv2d_geom *g, const float *w, const float *gy, float *gx);
void vg_cpu_dwconv_bwd_weight(const vg_conv2d_geom *g, const float *x, const float *gy, float *gw);

/* Padded, phase-split plane (dwconv.c): row r, phase q at buf + (r*sw + q)*L. */
static inline int64_t vg_dw_phase_len(const vg_conv2d_geom *g) { return (g->w + 2 * g->pw + g->sw - 1) / g->sw; }
static inline size_t vg_dw_plane_floats(const vg_conv2d_geom *g) {
  return (size_t)((g->h + 2 * g->ph) * g->sw * vg_dw_phase_len(g));
}
/* The padded, phase-split copy of one input plane xc (h x w) into buf (vg_dw_plane_floats). */
void vg_dw_pad_plane(const vg_conv2d_geom *g, int64_t L, const float *xc, float *buf);

/* fwd: the plane and, stride 1, the output at pitch L */
static inline size_t vg_dw_fwd_scratch_floats(const vg_conv2d_geom *g) {
  return vg_dw_plane_floats(g) + (size_t)(g->oh * vg_dw_phase_len(g));
}

/* One (image, channel) plane each; buf: vg_dw_fwd_scratch_floats (fwd) or vg_dw_plane_floats
 * scratch. One copy per ISA. */
#define VG_DW_DECL(sfx)                                                                                  \
  void vg_dw_fwd_plane_##sfx(const float *xc, const float *w, float bias, int relu, const vg_conv2d_geom *g, \
                             int64_t L, float *buf, float *y);                                            \
  void vg_dw_bwd_plane_##sfx(const float *gy, const float *w, const vg_conv2d_geom *g, int64_t L, float *buf, \
                             float *gx);                                                                  \
  void vg_dw_wgrad_plane_##sfx(const float *gy, const float *xc, const vg_conv2d_geom *g, int64_t L,       \
                               float *buf, float *lanes);
VG_DW_DECL(scalar)
VG_DW_DECL(avx2)
VG_DW_DECL(avx512)
#undef VG_DW_DECL
#endif
