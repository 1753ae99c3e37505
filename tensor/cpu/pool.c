/* pool.c — avg / max / adaptive-average pooling on the CPU, and their backward ops.
 *
 * Layout: any leading dims, the last two are (H, W); every H*W plane is independent.
 * Forward and backward are split over planes: a backward op writes only its own plane
 * of the input grad, so there are no races and every sum runs in one fixed order
 * (results do not depend on the thread count).
 *
 * Params (ops.def): i = {kh, kw, sh, sw, ph, pw, ceil_mode, count_include_pad}, stride
 * already resolved by the front-end. Window of output (oh, ow), as torch's CPU kernels:
 *   h0 = oh*sh - ph, h1 = min(h0 + kh, H + ph)   (avg: pool size counts padding)
 *   max: h1 = min(h0 + kh, H), h0 clamped to 0; index = h*W + w of the first maximum
 *        (a NaN wins, as torch). */
#include "tensor/cpu/kernels.h"
#include "base/threadpool.h"
#include <math.h>
#include <string.h>

typedef struct {
  const float *x;       /* forward: input planes; backward: output-grad planes */
  const int64_t *idx;   /* max backward: indices (contiguous) */
  float *y;             /* forward: output planes; backward: input-grad planes */
  int64_t *yi;          /* max forward: indices */
  int64_t H, W, OH, OW;
  int64_t kh, kw, sh, sw, ph, pw;
  bool include_pad;
} pool_ctx;

static const float *contig(const vg_tensor *t, vg_tensor **tmp) {
  *tmp = NULL;
  if (vg_is_contiguous(t)) return vg_data(t);
  *tmp = vg_copy_raw(t);
  return vg_data(*tmp);
}

static void release(vg_tensor *t) {
  if (t && (t->flags & VG_TF_HEAP)) vg_tensor_free(t);
}

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

/* avg window of output (oh, ow): clamped bounds and the divisor */
static inline float avg_window(const pool_ctx *p, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0,
                               int64_t *w1) {
  int64_t hs = oh * p->sh - p->ph, ws = ow * p->sw - p->pw;
  int64_t he = imin(hs + p->kh, p->H + p->ph), we = imin(ws + p->kw, p->W + p->pw);
  int64_t pool = (he - hs) * (we - ws);
  *h0 = imax(hs, 0);
  *w0 = imax(ws, 0);
  *h1 = imin(he, p->H);
  *w1 = imin(we, p->W);
  return (float)(p->include_pad ? pool : (*h1 - *h0) * (*w1 - *w0));
}

static void avg_fwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *x = p->x + pl * p->H * p->W;
    float *y = p->y + pl * p->OH * p->OW;
    for (int64_t oh = 0; oh < p->OH; oh++)
      for (int64_t ow = 0; ow < p->OW; ow++) {
        int64_t h0, h1, w0, w1;
        float div = avg_window(p, oh, ow, &h0, &h1, &w0, &w1);
        if (h0 >= h1 || w0 >= w1) {
          y[oh * p->OW + ow] = 0;
          continue;
        }
        float s = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) s += x[h * p->W + w];
        y[oh * p->OW + ow] = s / div;
      }
  }
}

static void avg_bwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *gy = p->x + pl * p->OH * p->OW;
    float *gx = p->y + pl * p->H * p->W;
    memset(gx, 0, sizeof(float) * (size_t)(p->H * p->W));
    for (int64_t oh = 0; oh < p->OH; oh++)
      for (int64_t ow = 0; ow < p->OW; ow++) {
        int64_t h0, h1, w0, w1;
        float div = avg_window(p, oh, ow, &h0, &h1, &w0, &w1);
        if (h0 >= h1 || w0 >= w1) continue;
        float d = gy[oh * p->OW + ow] / div;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) gx[h * p->W + w] += d;
      }
  }
}

static void max_fwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *x = p->x + pl * p->H * p->W;
    float *y = p->y + pl * p->OH * p->OW;
    int64_t *yi = p->yi + pl * p->OH * p->OW;
    for (int64_t oh = 0; oh < p->OH; oh++) {
      int64_t hs = oh * p->sh - p->ph, he = imin(hs + p->kh, p->H);
      hs = imax(hs, 0);
      for (int64_t ow = 0; ow < p->OW; ow++) {
        int64_t ws = ow * p->sw - p->pw, we = imin(ws + p->kw, p->W);
        ws = imax(ws, 0);
        int64_t best = hs * p->W + ws;
        float m = -INFINITY;
        for (int64_t h = hs; h < he; h++)
          for (int64_t w = ws; w < we; w++) {
            float v = x[h * p->W + w];
            if (v > m || isnan(v)) {
              m = v;
              best = h * p->W + w;
            }
          }
        y[oh * p->OW + ow] = m;
        yi[oh * p->OW + ow] = best;
      }
    }
  }
}

static void max_bwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  int64_t hw = p->H * p->W, n = p->OH * p->OW;
  for (int64_t pl = b; pl < e; pl++) {
    const float *gy = p->x + pl * n;
    const int64_t *ix = p->idx + pl * n;
    float *gx = p->y + pl * hw;
    memset(gx, 0, sizeof(float) * (size_t)hw);
    for (int64_t k = 0; k < n; k++)
      if (ix[k] >= 0 && ix[k] < hw) gx[ix[k]] += gy[k];
  }
}

/* adaptive window: [floor(i*in/out), ceil((i+1)*in/out)) */
static inline int64_t ad_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
static inline int64_t ad_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

static void adaptive_fwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *x = p->x + pl * p->H * p->W;
    float *y = p->y + pl * p->OH * p->OW;
    for (int64_t oh = 0; oh < p->OH; oh++) {
      int64_t h0 = ad_start(oh, p->H, p->OH), h1 = ad_end(oh, p->H, p->OH);
      for (int64_t ow = 0; ow < p->OW; ow++) {
        int64_t w0 = ad_start(ow, p->W, p->OW), w1 = ad_end(ow, p->W, p->OW);
        float s = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) s += x[h * p->W + w];
        y[oh * p->OW + ow] = s / (float)(h1 - h0) / (float)(w1 - w0);
      }
    }
  }
}

static void adaptive_bwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *gy = p->x + pl * p->OH * p->OW;
    float *gx = p->y + pl * p->H * p->W;
    memset(gx, 0, sizeof(float) * (size_t)(p->H * p->W));
    for (int64_t oh = 0; oh < p->OH; oh++) {
      int64_t h0 = ad_start(oh, p->H, p->OH), h1 = ad_end(oh, p->H, p->OH);
      for (int64_t ow = 0; ow < p->OW; ow++) {
        int64_t w0 = ad_start(ow, p->W, p->OW), w1 = ad_end(ow, p->W, p->OW);
        float d = gy[oh * p->OW + ow] / (float)(h1 - h0) / (float)(w1 - w0);
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) gx[h * p->W + w] += d;
      }
    }
  }
}

void vg_cpu_pool(const vg_opcall *c) {
  bool bwd = c->op == VG_OP_AVG_POOL2D_BWD || c->op == VG_OP_MAX_POOL2D_BWD || c->op == VG_OP_ADAPTIVE_AVG_POOL2D_BWD;
  /* big: the input-shaped tensor (x or gx); small: the output-shaped one (y or gy) */
  const vg_tensor *big = bwd ? c->out[0] : c->in[0], *small = bwd ? c->in[0] : c->out[0];
  int nd = big->ndim;
  pool_ctx p = {.H = big->shape[nd - 2], .W = big->shape[nd - 1], .OH = small->shape[nd - 2],
                .OW = small->shape[nd - 1], .kh = c->i[0], .kw = c->i[1], .sh = c->i[2], .sw = c->i[3],
                .ph = c->i[4], .pw = c->i[5], .include_pad = c->i[7] != 0};
  int64_t planes = 1;
  for (int d = 0; d < nd - 2; d++) planes *= big->shape[d];
  if (planes == 0 || p.H * p.W == 0) return;
  vg_tensor *t0 = NULL, *t1 = NULL;
  p.x = contig(c->in[0], &t0);
  p.y = vg_f32(c->out[0]);
  vg_range_fn fn = NULL;
  int64_t per_out = 1;   /* work per output element */
  switch (c->op) {
    case VG_OP_AVG_POOL2D: fn = avg_fwd; per_out = p.kh * p.kw; break;
    case VG_OP_AVG_POOL2D_BWD: fn = avg_bwd; per_out = p.kh * p.kw; break;
    case VG_OP_MAX_POOL2D:
      fn = max_fwd;
      per_out = p.kh * p.kw;
      p.yi = vg_data(c->out[1]);
      break;
    case VG_OP_MAX_POOL2D_BWD:
      fn = max_bwd;
      p.idx = (const int64_t *)(const void *)contig(c->in[1], &t1);
      break;
    case VG_OP_ADAPTIVE_AVG_POOL2D: case VG_OP_ADAPTIVE_AVG_POOL2D_BWD:
      fn = c->op == VG_OP_ADAPTIVE_AVG_POOL2D ? adaptive_fwd : adaptive_bwd;
      per_out = (p.H / (p.OH ? p.OH : 1) + 1) * (p.W / (p.OW ? p.OW : 1) + 1);
      break;
    default:
      VG_ABORT("%s is not a pooling op", vg_op_name(c->op));
  }
  int64_t work = p.OH * p.OW * per_out + p.H * p.W;
  int64_t grain = (1 << 15) / (work ? work : 1);
  vg_parallel_for(planes, grain < 1 ? 1 : grain, fn, &p);
  release(t0);
  release(t1);
}
