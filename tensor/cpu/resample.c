/* resample.c — bilinear interpolation on the CPU and its adjoint, as
 * torch.nn.functional.interpolate(mode='bilinear', size=(OH, OW)).
 *
 * p.interp.align_corners. Per output row (and likewise per column), in float as torch:
 *   align_corners: scale = (in-1)/(out-1) (0 when out == 1), src = scale*dst
 *   otherwise:     scale = in/out, src = max(scale*(dst+0.5) - 0.5, 0)
 *   i0 = min(floor(src), in-1), i1 = i0 + (i0 < in-1), l1 = clamp(src - i0, 0, 1), l0 = 1-l1
 *   y = l0h*(l0w*x[i0h,i0w] + l1w*x[i0h,i1w]) + l1h*(l0w*x[i1h,i0w] + l1w*x[i1h,i1w])
 * (tensor/kmath/interp.h: vg_lerp_tap, vg_bilinear, shared with tensor/cuda/pool.cu)
 * The backward op scatters gy with the same four weights into its own input plane
 * (work split over planes: no races, fixed summation order). */
#include "tensor/cpu/kernels.h"
#include "base/threadpool.h"
#include "tensor/kmath/interp.h"
#include "tensor/kmath/pool_window.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const float *src;   /* forward: x planes; backward: gy planes */
  float *dst;         /* forward: y planes; backward: gx planes */
  const lerp_tap *th, *tw;
  int64_t H, W, OH, OW;
} interp_ctx;

static void make_taps(lerp_tap *t, int64_t in, int64_t out, bool align) {
  for (int64_t o = 0; o < out; o++) t[o] = vg_lerp_tap(o, in, out, align);
}

static void interp_fwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const interp_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *x = p->src + pl * p->H * p->W;
    float *y = p->dst + pl * p->OH * p->OW;
    for (int64_t oh = 0; oh < p->OH; oh++) {
      lerp_tap h = p->th[oh];
      const float *r0 = x + h.i0 * p->W, *r1 = x + h.i1 * p->W;
      for (int64_t ow = 0; ow < p->OW; ow++) {
        lerp_tap w = p->tw[ow];
        y[oh * p->OW + ow] = vg_bilinear(h, w, r0[w.i0], r0[w.i1], r1[w.i0], r1[w.i1]);
      }
    }
  }
}

static void interp_bwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const interp_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *gy = p->src + pl * p->OH * p->OW;
    float *gx = p->dst + pl * p->H * p->W;
    memset(gx, 0, sizeof(float) * (size_t)(p->H * p->W));
    for (int64_t oh = 0; oh < p->OH; oh++) {
      lerp_tap h = p->th[oh];
      float *r0 = gx + h.i0 * p->W, *r1 = gx + h.i1 * p->W;
      for (int64_t ow = 0; ow < p->OW; ow++) {
        lerp_tap w = p->tw[ow];
        float g = gy[oh * p->OW + ow];
        r0[w.i0] += h.l0 * w.l0 * g;
        r0[w.i1] += h.l0 * w.l1 * g;
        r1[w.i0] += h.l1 * w.l0 * g;
        r1[w.i1] += h.l1 * w.l1 * g;
      }
    }
  }
}

/* interp_bilinear (bwd false) and interp_bilinear_bwd (true) */
static void resample(const vg_opcall *c, bool bwd) {
  const vg_tensor *big = bwd ? c->out[0] : c->in[0], *small = bwd ? c->in[0] : c->out[0];
  vg_pool_geom g = vg_pool_geom_of(big, small, NULL);
  interp_ctx p = {.H = g.H, .W = g.W, .OH = g.OH, .OW = g.OW};
  int64_t planes = g.planes;
  if (planes == 0 || p.H * p.W == 0 || p.OH * p.OW == 0) {
    if (bwd) memset(vg_data(c->out[0]), 0, sizeof(float) * (size_t)vg_numel(c->out[0]));
    return;
  }
  lerp_tap *taps = malloc(sizeof(lerp_tap) * (size_t)(p.OH + p.OW));
  if (!taps) VG_ABORT("out of memory");
  make_taps(taps, p.H, p.OH, c->p.interp.align_corners);
  make_taps(taps + p.OH, p.W, p.OW, c->p.interp.align_corners);
  p.th = taps;
  p.tw = taps + p.OH;
  vg_tensor *tmp = NULL;
  const vg_tensor *in = c->in[0];
  if (!vg_is_contiguous(in)) in = tmp = vg_copy_raw(in);
  p.src = vg_f32(in);
  p.dst = vg_f32(c->out[0]);
  int64_t work = 4 * p.OH * p.OW + p.H * p.W;
  int64_t grain = (1 << 15) / work;
  vg_parallel_for(planes, grain < 1 ? 1 : grain, bwd ? interp_bwd : interp_fwd, &p);
  if (tmp && (tmp->flags & VG_TF_HEAP)) vg_tensor_free(tmp);
  free(taps);
}

void vg_cpu_interp_bilinear(const vg_opcall *c) { resample(c, false); }
void vg_cpu_interp_bilinear_bwd(const vg_opcall *c) { resample(c, true); }
