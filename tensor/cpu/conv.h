/* conv.h — 2-D convolution kernels on contiguous NCHW float buffers (internal to
 * tensor/; the op layer calls them).
 *
 *   vg_conv2d_geom g = {.n = 1, .c = 3, .h = 256, .w = 256, .oc = 128, .kh = 4, .kw = 4,
 *                       .sh = 1, .sw = 1, .ph = 3, .pw = 3, .dh = 1, .dw = 1, .groups = 1};
 *   vg_conv2d_geom_init(&g);                        // g.oh = g.ow = 259
 *   vg_cpu_conv2d_fwd(&g, x, w, bias, y);
 *
 * Shapes: x (n, c, h, w); weight (oc, c/groups, kh, kw); bias (oc) or NULL;
 * y (n, oc, oh, ow) with oh = (h + 2ph - dh(kh-1) - 1)/sh + 1 (same for ow).
 *   fwd:         y[n,o,i,j]  = bias[o] + sum_{c,a,b} w[o,c,a,b] x[n, gc+c, i*sh-ph+a*dh, j*sw-pw+b*dw]
 *   bwd_data:    gx = dL/dx given gy = dL/dy   (gx written, =)
 *   bwd_weight:  gw = dL/dw, gb = dL/dbias      (written, =; gb nullable)
 * The op layer accumulates parameter grads (+=) itself if it wants to.
 *
 * Fast paths run on vg_gemm_run: fwd is W (oc x c*kh*kw) times image patches packed
 * straight from x into the GEMM's B panel (no im2col buffer; N = output pixels); a
 * 1x1/stride-1/no-pad conv is a plain GEMM. bwd_data multiplies W^T by gy per chunk of
 * output pixels and scatters the chunk back (col2im, parallel over channels);
 * bwd_weight multiplies gy by the patches with the batch folded into K, summed in a
 * fixed order (K cut into fixed chunks when C is too small to split). Depthwise convs
 * (groups == c == oc > 1) take the direct path of tensor/cpu/dwconv.h instead, 3x3 stride-1
 * ungrouped ones Winograd (tensor/cpu/winograd.h) in fwd and bwd_data, and on AVX-512 the
 * forward of an ungrouped conv with few input channels (the PDN's first layer, a ResNet stem)
 * reads its patches straight from a padded copy of x (tensor/cpu/conv_direct.h; the GEMM
 * path's bits). Results are
 * bit-identical for any thread count. The *_ref versions are the direct loops with
 * double accumulators, the tests' reference. */
#ifndef VG_CONV_H
#define VG_CONV_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  int64_t n, c, h, w;          /* input */
  int64_t oc, kh, kw;          /* weight: (oc, c/groups, kh, kw) */
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t oh, ow;              /* filled by vg_conv2d_geom_init */
  int relu;                    /* forward: ReLU the output (conv2d's fused activation) */
  struct vg_conv_pack *pack;   /* forward: the weight's cached forms (bound to it), or NULL */
} vg_conv2d_geom;

/* The weight caches of a vg_conv_pack (tensor/cpu/conv_pack.c). _bind points the pack at w
 * (a contiguous CPU f32 weight), dropping what it holds unless that was made from w as it is
 * now. The getters return a buffer of the given size and *fresh = 1 when it must be filled
 * (made now, or made for another layout: key = the variant's size parameters + the ISA);
 * the caller fills it before the next call on the pack. */
struct vg_tensor;
void vg_conv_pack_bind(struct vg_conv_pack *pk, const struct vg_tensor *w);
enum { VG_CONV_PACK_GEMM_A, VG_CONV_PACK_WINO, VG_CONV_PACK_KINDS };
float *vg_conv_pack_get(struct vg_conv_pack *pk, int kind, int64_t k0, int64_t k1, int64_t k2, size_t floats,
                        int *fresh);

/* Fills oh, ow; aborts on an invalid geometry (groups not dividing c and oc, stride or
 * dilation < 1, negative padding, empty output). */
void vg_conv2d_geom_init(vg_conv2d_geom *g);

void vg_cpu_conv2d_fwd(const vg_conv2d_geom *g, const float *x, const float *w,
                       const float *bias, float *y);
void vg_cpu_conv2d_bwd_data(const vg_conv2d_geom *g, const float *w, const float *gy,
                            float *gx);
void vg_cpu_conv2d_bwd_weight(const vg_conv2d_geom *g, const float *x, const float *gy,
                              float *gw, float *gb);

void vg_cpu_conv2d_fwd_ref(const vg_conv2d_geom *g, const float *x, const float *w,
                           const float *bias, float *y);
void vg_cpu_conv2d_bwd_data_ref(const vg_conv2d_geom *g, const float *w, const float *gy,
                                float *gx);
void vg_cpu_conv2d_bwd_weight_ref(const vg_conv2d_geom *g, const float *x, const float *gy,
                                  float *gw, float *gb);
#endif
