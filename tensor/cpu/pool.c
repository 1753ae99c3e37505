/* pool.c — avg / max / adaptive-average pooling on the CPU, and their backward ops.
 *
 * Layout: any leading dims, the last two are (H, W); every H*W plane is independent.
 * Forward and backward are split over planes: a backward op writes only its own plane
 * of the input grad, so there are no races and every sum runs in one fixed order
 * (results do not depend on the thread count).
 *
 * Params: p.pool = {kh, kw, sh, sw, ph, pw, ceil_mode, count_include_pad}, stride
 * already resolved by the front-end. The windows (bounds, divisors, the max's NaN rule)
 * are tensor/kmath/pool_window.h's, shared with tensor/cuda/pool.cu. */
#include "tensor/cpu/kernels.h"
#include "tensor/kmath/pool_window.h"
#include "base/threadpool.h"
#include <math.h>
#include <string.h>

typedef struct {
  const float *x;       /* forward: input planes; backward: output-grad planes */
  const int64_t *idx;   /* max backward: indices (contiguous) */
  float *y;             /* forward: output planes; backward: input-grad planes */
  int64_t *yi;          /* max forward: indices */
  vg_pool_geom g;
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

/* Output columns [*lo, *hi) whose windows lie inside the row (no left/right clipping):
 * there every output sums / compares the same taps, so a whole row runs tap by tap over
 * contiguous runs (the tap order is the per-output loops' own: h, then w). */
static void interior_cols(const vg_pool_geom *g, int64_t *lo, int64_t *hi) {
  int64_t a = (g->pw + g->sw - 1) / g->sw;
  int64_t b = g->W + g->pw - g->kw < 0 ? 0 : (g->W + g->pw - g->kw) / g->sw + 1;
  if (b > g->OW) b = g->OW;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

#define VG_POOL_ROW 256   /* interior columns per run (stack buffers) */

#if !defined(__clang__)
#define VG_POOL_VEC __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define VG_POOL_VEC
#endif

/* one window tap over a run of outputs (elementwise: the same sums as one output at a time) */
VG_POOL_VEC static void sum_tap(const float *restrict src, int64_t sw, int64_t n, float *restrict acc) {
  for (int64_t q = 0; q < n; q++) acc[q] += src[q * sw];
}

static void avg_fwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  int64_t lo, hi;
  interior_cols(&p->g, &lo, &hi);
  float acc[VG_POOL_ROW];
  for (int64_t pl = b; pl < e; pl++) {
    const float *x = p->x + pl * p->g.H * p->g.W;
    float *y = p->y + pl * p->g.OH * p->g.OW;
    for (int64_t oh = 0; oh < p->g.OH; oh++)
      for (int64_t ow = 0; ow < p->g.OW; ow++) {
        int64_t h0, h1, w0, w1;
        float div = vg_avg_window(&p->g, oh, ow, &h0, &h1, &w0, &w1);
        if (h0 >= h1 || w0 >= w1) {
          y[oh * p->g.OW + ow] = 0;
          continue;
        }
        if (ow == lo && hi > lo) {   /* the interior run(s) of this row */
          for (int64_t r0 = lo; r0 < hi; r0 += VG_POOL_ROW) {
            const int64_t n = hi - r0 < VG_POOL_ROW ? hi - r0 : VG_POOL_ROW, sw = p->g.sw;
            for (int64_t q = 0; q < n; q++) acc[q] = 0;
            for (int64_t h = h0; h < h1; h++)
              for (int64_t kj = 0; kj < p->g.kw; kj++) {
                sum_tap(x + h * p->g.W + r0 * sw - p->g.pw + kj, sw, n, acc);
              }
            for (int64_t q = 0; q < n; q++) y[oh * p->g.OW + r0 + q] = acc[q] / div;
          }
          ow = hi - 1;
          continue;
        }
        float s = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) s += x[h * p->g.W + w];
        y[oh * p->g.OW + ow] = s / div;
      }
  }
}

static void avg_bwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *gy = p->x + pl * p->g.OH * p->g.OW;
    float *gx = p->y + pl * p->g.H * p->g.W;
    memset(gx, 0, sizeof(float) * (size_t)(p->g.H * p->g.W));
    for (int64_t oh = 0; oh < p->g.OH; oh++)
      for (int64_t ow = 0; ow < p->g.OW; ow++) {
        int64_t h0, h1, w0, w1;
        float div = vg_avg_window(&p->g, oh, ow, &h0, &h1, &w0, &w1);
        if (h0 >= h1 || w0 >= w1) continue;
        float d = gy[oh * p->g.OW + ow] / div;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) gx[h * p->g.W + w] += d;
      }
  }
}

/* one window tap over a run of outputs: the max so far and the tap that gave it (NaN
 * wins, the first of equal maxima stays: vg_max_takes), branch-free so it vectorizes */
VG_POOL_VEC static void max_taps(const float *restrict src, int64_t sw, int32_t k, int64_t n, float *restrict mx,
                     int32_t *restrict tap) {
  for (int64_t q = 0; q < n; q++) {
    const float v = src[q * sw], m = mx[q];
    const int t = (v > m) | (v != v);
    mx[q] = t ? v : m;
    tap[q] = t ? k : tap[q];
  }
}

static void max_fwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  int64_t lo, hi;
  interior_cols(&p->g, &lo, &hi);
  float mx[VG_POOL_ROW];
  int32_t tap[VG_POOL_ROW];
  for (int64_t pl = b; pl < e; pl++) {
    const float *x = p->x + pl * p->g.H * p->g.W;
    float *y = p->y + pl * p->g.OH * p->g.OW;
    int64_t *yi = p->yi + pl * p->g.OH * p->g.OW;
    for (int64_t oh = 0; oh < p->g.OH; oh++) {
      for (int64_t ow = 0; ow < p->g.OW; ow++) {
        int64_t hs, he, ws, we;
        vg_max_window(&p->g, oh, ow, &hs, &he, &ws, &we);
        if (ow == lo && hi > lo) {   /* the interior run(s): the same taps, branch-free */
          for (int64_t r0 = lo; r0 < hi; r0 += VG_POOL_ROW) {
            const int64_t n = hi - r0 < VG_POOL_ROW ? hi - r0 : VG_POOL_ROW, sw = p->g.sw;
            const int64_t c0 = r0 * sw - p->g.pw;      /* first window column of output r0 */
            for (int64_t q = 0; q < n; q++) {
              mx[q] = -INFINITY;
              tap[q] = 0;
            }
            int32_t k = 0;
            for (int64_t h = hs; h < he; h++)
              for (int64_t kj = 0; kj < p->g.kw; kj++, k++) max_taps(x + h * p->g.W + c0 + kj, sw, k, n, mx, tap);
            memcpy(y + oh * p->g.OW + r0, mx, (size_t)n * sizeof(float));
            for (int64_t q = 0; q < n; q++)
              yi[oh * p->g.OW + r0 + q] = (hs + tap[q] / p->g.kw) * p->g.W + c0 + q * sw + tap[q] % p->g.kw;
          }
          ow = hi - 1;
          continue;
        }
        int64_t best = hs * p->g.W + ws;
        float m = -INFINITY;
        for (int64_t h = hs; h < he; h++)
          for (int64_t w = ws; w < we; w++) {
            float v = x[h * p->g.W + w];
            if (vg_max_takes(v, m)) {
              m = v;
              best = h * p->g.W + w;
            }
          }
        y[oh * p->g.OW + ow] = m;
        yi[oh * p->g.OW + ow] = best;
      }
    }
  }
}

static void max_bwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  int64_t hw = p->g.H * p->g.W, n = p->g.OH * p->g.OW;
  for (int64_t pl = b; pl < e; pl++) {
    const float *gy = p->x + pl * n;
    const int64_t *ix = p->idx + pl * n;
    float *gx = p->y + pl * hw;
    memset(gx, 0, sizeof(float) * (size_t)hw);
    for (int64_t k = 0; k < n; k++)
      if (ix[k] >= 0 && ix[k] < hw) gx[ix[k]] += gy[k];
  }
}

static void adaptive_fwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *x = p->x + pl * p->g.H * p->g.W;
    float *y = p->y + pl * p->g.OH * p->g.OW;
    for (int64_t oh = 0; oh < p->g.OH; oh++) {
      int64_t h0 = vg_adaptive_start(oh, p->g.H, p->g.OH), h1 = vg_adaptive_end(oh, p->g.H, p->g.OH);
      for (int64_t ow = 0; ow < p->g.OW; ow++) {
        int64_t w0 = vg_adaptive_start(ow, p->g.W, p->g.OW), w1 = vg_adaptive_end(ow, p->g.W, p->g.OW);
        float s = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) s += x[h * p->g.W + w];
        y[oh * p->g.OW + ow] = vg_adaptive_mean(s, h0, h1, w0, w1);
      }
    }
  }
}

static void adaptive_bwd(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pool_ctx *p = ctx;
  for (int64_t pl = b; pl < e; pl++) {
    const float *gy = p->x + pl * p->g.OH * p->g.OW;
    float *gx = p->y + pl * p->g.H * p->g.W;
    memset(gx, 0, sizeof(float) * (size_t)(p->g.H * p->g.W));
    for (int64_t oh = 0; oh < p->g.OH; oh++) {
      int64_t h0 = vg_adaptive_start(oh, p->g.H, p->g.OH), h1 = vg_adaptive_end(oh, p->g.H, p->g.OH);
      for (int64_t ow = 0; ow < p->g.OW; ow++) {
        int64_t w0 = vg_adaptive_start(ow, p->g.W, p->g.OW), w1 = vg_adaptive_end(ow, p->g.W, p->g.OW);
        float d = vg_adaptive_mean(gy[oh * p->g.OW + ow], h0, h1, w0, w1);
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) gx[h * p->g.W + w] += d;
      }
    }
  }
}

/* the six pooling ops (one kernel each, below) */
typedef enum { POOL_AVG, POOL_AVG_BWD, POOL_MAX, POOL_MAX_BWD, POOL_ADAPTIVE, POOL_ADAPTIVE_BWD } pool_kind;

static void pool_run(const vg_opcall *c, pool_kind k) {
  bool bwd = k == POOL_AVG_BWD || k == POOL_MAX_BWD || k == POOL_ADAPTIVE_BWD;
  /* big: the input-shaped tensor (x or gx); small: the output-shaped one (y or gy) */
  const vg_tensor *big = bwd ? c->out[0] : c->in[0], *small = bwd ? c->in[0] : c->out[0];
  bool pool = k != POOL_ADAPTIVE && k != POOL_ADAPTIVE_BWD;
  pool_ctx p = {.g = vg_pool_geom_of(big, small, pool ? &c->p.pool : NULL)};
  int64_t planes = p.g.planes;
  if (planes == 0 || p.g.H * p.g.W == 0) return;
  vg_tensor *t0 = NULL, *t1 = NULL;
  p.x = contig(c->in[0], &t0);
  p.y = vg_f32(c->out[0]);
  vg_range_fn fn = NULL;
  int64_t per_out = 1;   /* work per output element */
  switch (k) {
    case POOL_AVG: fn = avg_fwd; per_out = p.g.kh * p.g.kw; break;
    case POOL_AVG_BWD: fn = avg_bwd; per_out = p.g.kh * p.g.kw; break;
    case POOL_MAX:
      fn = max_fwd;
      per_out = p.g.kh * p.g.kw;
      p.yi = vg_data(c->out[1]);
      break;
    case POOL_MAX_BWD:
      fn = max_bwd;
      p.idx = (const int64_t *)(const void *)contig(c->in[1], &t1);
      break;
    case POOL_ADAPTIVE: case POOL_ADAPTIVE_BWD:
      fn = k == POOL_ADAPTIVE ? adaptive_fwd : adaptive_bwd;
      per_out = (p.g.H / (p.g.OH ? p.g.OH : 1) + 1) * (p.g.W / (p.g.OW ? p.g.OW : 1) + 1);
      break;
  }
  int64_t work = p.g.OH * p.g.OW * per_out + p.g.H * p.g.W;
  int64_t grain = (1 << 15) / (work ? work : 1);
  vg_parallel_for(planes, grain < 1 ? 1 : grain, fn, &p);
  release(t0);
  release(t1);
}

void vg_cpu_avg_pool2d(const vg_opcall *c) { pool_run(c, POOL_AVG); }
void vg_cpu_avg_pool2d_bwd(const vg_opcall *c) { pool_run(c, POOL_AVG_BWD); }
void vg_cpu_max_pool2d(const vg_opcall *c) { pool_run(c, POOL_MAX); }
void vg_cpu_max_pool2d_bwd(const vg_opcall *c) { pool_run(c, POOL_MAX_BWD); }
void vg_cpu_adaptive_avg_pool2d(const vg_opcall *c) { pool_run(c, POOL_ADAPTIVE); }
void vg_cpu_adaptive_avg_pool2d_bwd(const vg_opcall *c) { pool_run(c, POOL_ADAPTIVE_BWD); }
