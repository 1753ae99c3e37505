/* layout.c — unfold (im2col), fold (col2im), constant pad and concat on the CPU.
 *
 * unfold: x (N,C,H,W) -> cols (N, C*kh*kw, L), row (c*kh + ki)*kw + kj, column
 *   oh*OW + ow holds x[n, c, oh*sh - ph + ki*dh, ow*sw - pw + kj*dw] (0 outside).
 *   p.unfold = {kh, kw, dh, dw, ph, pw, sh, sw}.
 * fold: its adjoint, cols -> (N, C, oh, ow); each (n, c) plane sums its kh*kw rows
 *   in the order ki, kj, oh, ow (torch's col2im order), split over planes (no races).
 * pad / concat: the output is filled (pad), then each input is copied into its window
 *   of the output through the strided COPY kernel (any dtype, any input strides).
 * Geometry and windows: tensor/kmath/conv_geom.h, window.h (shared with cuda/conv.cu). */
#include "tensor/cpu/kernels.h"
#include "tensor/kmath/conv_geom.h"
#include "tensor/kmath/window.h"
#include "base/threadpool.h"
#include <string.h>

typedef struct {
  const float *x;
  float *y;
  int64_t C, H, W, OH, OW;   /* OH, OW: block grid */
  int64_t kh, kw, dh, dw, ph, pw, sh, sw;
} im2col_ctx;

static void unfold_planes(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const im2col_ctx *p = ctx;
  int64_t L = p->OH * p->OW;
  for (int64_t pl = b; pl < e; pl++) {   /* pl = n*C + c */
    const float *x = p->x + pl * p->H * p->W;
    float *y = p->y + pl * p->kh * p->kw * L;
    for (int64_t ki = 0; ki < p->kh; ki++)
      for (int64_t kj = 0; kj < p->kw; kj++, y += L)
        for (int64_t oh = 0; oh < p->OH; oh++) {
          int64_t ih = VG_CONV_SRC(oh, p->sh, p->ph, ki, p->dh);
          float *row = y + oh * p->OW;
          if (ih < 0 || ih >= p->H) {
            memset(row, 0, sizeof(float) * (size_t)p->OW);
            continue;
          }
          for (int64_t ow = 0; ow < p->OW; ow++) {
            int64_t iw = VG_CONV_SRC(ow, p->sw, p->pw, kj, p->dw);
            row[ow] = (iw >= 0 && iw < p->W) ? x[ih * p->W + iw] : 0.0f;
          }
        }
  }
}

static void fold_planes(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const im2col_ctx *p = ctx;
  int64_t L = p->OH * p->OW;
  for (int64_t pl = b; pl < e; pl++) {
    const float *x = p->x + pl * p->kh * p->kw * L;
    float *y = p->y + pl * p->H * p->W;
    memset(y, 0, sizeof(float) * (size_t)(p->H * p->W));
    for (int64_t ki = 0; ki < p->kh; ki++)
      for (int64_t kj = 0; kj < p->kw; kj++, x += L)
        for (int64_t oh = 0; oh < p->OH; oh++) {
          int64_t ih = VG_CONV_SRC(oh, p->sh, p->ph, ki, p->dh);
          if (ih < 0 || ih >= p->H) continue;
          for (int64_t ow = 0; ow < p->OW; ow++) {
            int64_t iw = VG_CONV_SRC(ow, p->sw, p->pw, kj, p->dw);
            if (iw >= 0 && iw < p->W) y[ih * p->W + iw] += x[oh * p->OW + ow];
          }
        }
  }
}

static void im2col_op(const vg_opcall *c, bool fold) {
  const vg_tensor *in = c->in[0], *img = fold ? c->out[0] : in;
  const vg_unfold_params *u = &c->p.unfold;
  im2col_ctx p = {.C = img->shape[1], .H = img->shape[2], .W = img->shape[3], .kh = u->kh, .kw = u->kw,
                  .dh = u->dh, .dw = u->dw, .ph = u->ph, .pw = u->pw, .sh = u->sh, .sw = u->sw};
  p.OH = vg_conv_out_size(p.H, p.kh, p.sh, p.ph, p.dh);
  p.OW = vg_conv_out_size(p.W, p.kw, p.sw, p.pw, p.dw);
  int64_t planes = img->shape[0] * p.C;
  if (planes == 0) return;
  vg_tensor *tmp = NULL;
  if (!vg_is_contiguous(in)) in = tmp = vg_copy_raw(in);
  p.x = vg_f32(in);
  p.y = vg_f32(c->out[0]);
  int64_t work = p.kh * p.kw * p.OH * p.OW + p.H * p.W;
  int64_t grain = (1 << 15) / (work ? work : 1);
  vg_parallel_for(planes, grain < 1 ? 1 : grain, fold ? fold_planes : unfold_planes, &p);
  if (tmp && (tmp->flags & VG_TF_HEAP)) vg_tensor_free(tmp);
}

/* copies src into the window of out starting at `start` (per dim), via the COPY kernel */
static void copy_into(vg_tensor *out, const int64_t *start, const vg_tensor *src) {
  vg_tensor view = vg_window_view(out, start, src);
  if (vg_numel(&view) == 0) return;
  const vg_tensor *in[1] = {src};
  vg_opcall cc = {.op = VG_OP_COPY, .nin = 1, .in = in, .out = {&view}};
  vg_cpu_eltwise(&cc);
}

static void pad_op(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  const vg_tensor *x = c->in[0];
  vg_opcall fill = {.op = VG_OP_FILL, .nin = 0, .out = {out}, .p.fill = {.value = c->p.pad.value}};
  if (vg_numel(out) == 0) return;
  vg_cpu_eltwise(&fill);
  int64_t start[VG_MAX_DIMS];
  vg_pad_starts(&c->p.pad, x->ndim, start);
  copy_into(out, start, x);
}

static void concat_op(const vg_opcall *c) {
  int d = (int)c->p.dim.dim;
  int64_t start[VG_MAX_DIMS] = {0};
  for (int k = 0; k < c->nin; k++) {
    const vg_tensor *t = c->in[k];
    copy_into(c->out[0], start, t);
    start[d] += t->shape[d];
  }
}

void vg_cpu_unfold(const vg_opcall *c) { im2col_op(c, false); }
void vg_cpu_fold(const vg_opcall *c) { im2col_op(c, true); }
void vg_cpu_pad(const vg_opcall *c) { pad_op(c); }
void vg_cpu_concat(const vg_opcall *c) { concat_op(c); }
