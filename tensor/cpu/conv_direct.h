/* conv_direct.h — direct convolution for few input channels on AVX-512 (internal to
 * tensor/; vg_cpu_conv2d_fwd calls it).
 *
 *   if (vg_cpu_conv_direct_applies(&g)) vg_cpu_conv_direct_fwd(&g, x, wpacked, bias, y);
 *
 * For ungrouped convs whose patch (c * kh * kw <= 512 floats, c <= 16) is small next to
 * the output channels, e.g. a PDN's first layer (3 -> 128, 4x4, pad 3) or a ResNet stem
 * (3 -> 64, 7x7, stride 2): the GEMM path spends a tenth of its time packing image patches
 * there. Instead each image is copied once into a zero-padded, column-phase-split plane
 * (tensor/cpu/dwconv.h's layout: padded row r, phase p at (r*sw + p)*L), where every tap
 * (ch, ki, kj) of a run of 32 output columns is one contiguous run of 32 floats at a fixed
 * offset, so the micro-kernel reads its B operand straight from the plane (no packing):
 * output (oy, ox) under tap k reads plane + oy*R + ox + off[k], R = sh*sw*L.
 *
 * Tiles are 12 output channels x 32 "lanes". With stride 1 the lanes run through the
 * flattened grid q = oy*R + ox (the R - ow columns past each row's end are computed and
 * dropped: 3 of 262 for the PDN), otherwise along one output row (the lanes past ow
 * dropped); whichever wastes fewer lanes. A tile's valid lanes are stored row segment by
 * row segment through lane masks.
 *
 * Same sums as the GEMM path, bit for bit: the weights come packed by vg_gemm_pack_a (the
 * conv pack's cached copy when there is one), each output is one FMA chain over k =
 * (ch, ki, kj) ascending from 0, then + bias, then the fused ReLU (NaN kept). Results do
 * not depend on the thread count. Off switch: vg_cpu_set_conv_direct(0) or
 * VIGIL_CONV_DIRECT=0. */
#ifndef VG_CONV_DIRECT_H
#define VG_CONV_DIRECT_H
#include "tensor/cpu/conv.h"
#include <stdint.h>

/* on: 1, off: 0, -1: VIGIL_CONV_DIRECT decides (default on) */
void vg_cpu_set_conv_direct(int on);
int vg_cpu_conv_direct(void);
/* The geometry and the ISA qualify (AVX-512, groups 1, c <= 16, c*kh*kw <= 512, sw <= 4,
 * not a plain 1x1, at least 3/4 of the computed lanes kept). */
int vg_cpu_conv_direct_eligible(const vg_conv2d_geom *g);
/* Eligible and switched on. */
int vg_cpu_conv_direct_applies(const vg_conv2d_geom *g);

/* wpacked: the weight (oc, c*kh*kw) packed by vg_gemm_pack_a (header included). */
void vg_cpu_conv_direct_fwd(const vg_conv2d_geom *g, const float *x, const float *wpacked,
                            const float *bias, float *y);

/* The micro-kernel: an m x 32 tile (m <= 12; a: the packed A sliver, a[k*12 + r]).
 * acc[r][t] = sum_k a[k][r] * x[off[k] + t], k ascending from 0 in one FMA chain, then
 * + bias[r] (bias nullable), then ReLU when relu. Lanes [seg.lo, seg.hi) of row r go to
 * y + r*ystride + seg.at + (t - seg.lo), one segment after another. */
typedef struct { int lo, hi; int64_t at; } vg_cd_seg;
#define VG_CD_MAX_SEGS 33
void vg_cd_tile_avx512(int64_t K, const float *a, const float *x, const int64_t *off, int m,
                       const float *bias, int relu, float *y, int64_t ystride, const vg_cd_seg *seg,
                       int nseg);
#endif
