/* conv2d on the GEMM driver: patch packers (implicit im2col), col2im, the batch-folded
 * weight gradient, and the direct reference loops. Shapes as in conv.h; below
 * cg = c/groups, ocg = oc/groups, ckg = cg*kh*kw, P = oh*ow, HW = h*w. */
#include "tensor/cpu/conv.h"
#include "tensor/cpu/conv_direct.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/winograd.h"
#include "tensor/cpu/dwconv.h"
#include "tensor/kmath/conv_geom.h"
#include "tensor/cpu/scratch.h"
#include "base/threadpool.h"
#include "base/status.h"
#include <stdlib.h>
#include <string.h>

#define VG_CONV_MAX_W 32           /* widest packer sliver (the AVX-512 NR) */
#define VG_CONV_COL_FLOATS (1 << 20) /* bwd_data column chunk: 4 MiB */

void vg_conv2d_geom_init(vg_conv2d_geom *g) {
  VG_ASSERT(g->n >= 0 && g->c > 0 && g->h > 0 && g->w > 0 && g->oc > 0 && g->kh > 0 && g->kw > 0);
  VG_ASSERT(g->sh >= 1 && g->sw >= 1 && g->dh >= 1 && g->dw >= 1 && g->ph >= 0 && g->pw >= 0);
  VG_ASSERT(g->groups >= 1 && g->c % g->groups == 0 && g->oc % g->groups == 0 &&
            "conv2d groups must divide c and oc");
  VG_ASSERT(g->h + 2 * g->ph >= g->dh * (g->kh - 1) + 1 && g->w + 2 * g->pw >= g->dw * (g->kw - 1) + 1 &&
            "conv2d kernel larger than the padded input");
  g->oh = vg_conv_out_size(g->h, g->kh, g->sh, g->ph, g->dh);
  g->ow = vg_conv_out_size(g->w, g->kw, g->sw, g->pw, g->dw);
}

typedef struct { int64_t cg, ocg, ckg, khw, P, HW; } vg_conv_dims;

static vg_conv_dims dims_of(const vg_conv2d_geom *g) {
  VG_ASSERT(g->oh == vg_conv_out_size(g->h, g->kh, g->sh, g->ph, g->dh) &&
            g->ow == vg_conv_out_size(g->w, g->kw, g->sw, g->pw, g->dw) &&
            "call vg_conv2d_geom_init first");
  vg_conv_dims d;
  d.cg = g->c / g->groups;
  d.ocg = g->oc / g->groups;
  d.khw = g->kh * g->kw;
  d.ckg = d.cg * d.khw;
  d.P = g->oh * g->ow;
  d.HW = g->h * g->w;
  return d;
}

static int is_pointwise(const vg_conv2d_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static void zero_tail(float *d, int from, int w) {
  for (int t = from; t < w; t++) d[t] = 0.0f;
}

/* ---- forward: B panel = patches, P_B[p][ck] = x[c, oy*sh-ph+ki*dh, ox*sw-pw+kj*dw] ---- */

typedef struct {
  const vg_conv2d_geom *g;
  const float *x;                  /* channel 0 of the group in this sample */
} vg_patch_ctx;

static void pack_patches(const void *vctx, int64_t x0, int64_t xn, int64_t k0, int64_t kc,
                         int w, float *dst) {
  const vg_patch_ctx *pc = vctx;
  const vg_conv2d_geom *g = pc->g;
  const int64_t H = g->h, W = g->w, HW = H * W, ow = g->ow, khw = g->kh * g->kw;
  VG_ASSERT(w <= VG_CONV_MAX_W);
  for (int64_t s0 = 0; s0 < xn; s0 += w, dst += kc * w) {
    const int nv = (int)min64(w, xn - s0);
    int64_t p = x0 + s0, oy = p / ow, ox = p % ow;
    const int same_row = ox + nv <= ow, one_row = g->sw == 1 && same_row;
    int64_t iy0[VG_CONV_MAX_W], ix0[VG_CONV_MAX_W];
    int seg_end[VG_CONV_MAX_W];    /* seg_end[t0]: end of the run on t0's output row */
    for (int t = 0, t0 = 0; t < nv; t++) {
      iy0[t] = oy * g->sh - g->ph;
      ix0[t] = ox * g->sw - g->pw;
      if (++ox == ow || t == nv - 1) { seg_end[t0] = t + 1; t0 = t + 1; }
      if (ox == ow) { ox = 0; oy++; }
    }
    int64_t c = k0 / khw, r = k0 % khw, ki = r / g->kw, kj = r % g->kw;
    for (int64_t k = 0; k < kc; k++) {
      float *d = dst + k * w;
      const float *xc = pc->x + c * HW;
      const int64_t dy = ki * g->dh, dx = kj * g->dw;
      if (one_row) {
        const int64_t iy = iy0[0] + dy, ix = ix0[0] + dx;
        if (iy < 0 || iy >= H) {
          zero_tail(d, 0, w);
        } else {
          const float *src = xc + iy * W;             /* src[ix + t] for pixel t */
          if (ix >= 0 && ix + nv <= W && nv == w) {
            src += ix;
            if (w == 16) memcpy(d, src, 16 * sizeof(float));
            else if (w == 32) memcpy(d, src, 32 * sizeof(float));
            else memcpy(d, src, (size_t)w * sizeof(float));
          } else {
            int lo = (int)min64(max64(-ix, 0), nv), hi = (int)max64(min64(W - ix, nv), lo);
            zero_tail(d, 0, lo);
            if (hi > lo) memcpy(d + lo, src + ix + lo, (size_t)(hi - lo) * sizeof(float));
            zero_tail(d, hi, w);
          }
        }
      } else if (g->sw == 1) {
        /* the sliver crosses output rows: one contiguous run per output row */
        for (int t0 = 0; t0 < nv;) {
          const int t1 = seg_end[t0];
          const int64_t iy = iy0[t0] + dy, ix = ix0[t0] + dx;
          const int len = t1 - t0;
          if (iy < 0 || iy >= H) {
            zero_tail(d + t0, 0, len);
          } else {
            const float *src = xc + iy * W;
            const int lo = (int)min64(max64(-ix, 0), len), hi = (int)max64(min64(W - ix, len), lo);
            zero_tail(d + t0, 0, lo);
            if (hi > lo) memcpy(d + t0 + lo, src + ix + lo, (size_t)(hi - lo) * sizeof(float));
            zero_tail(d + t0, hi, len);
          }
          t0 = t1;
        }
        zero_tail(d, nv, w);
      } else if (same_row) {
        /* strided, one output row: pixel t reads column ixs + t*sw of one input row */
        const int64_t iy = iy0[0] + dy, ixs = ix0[0] + dx, sw = g->sw;
        if (iy < 0 || iy >= H) {
          zero_tail(d, 0, w);
        } else {
          const float *src = xc + iy * W + ixs;
          const int lo = ixs >= 0 ? 0 : (int)min64(nv, (-ixs + sw - 1) / sw);
          const int hi = ixs >= W ? lo : (int)max64(lo, min64(nv, (W - 1 - ixs) / sw + 1));
          zero_tail(d, 0, lo);
          for (int t = lo; t < hi; t++) d[t] = src[t * sw];
          zero_tail(d, hi, w);
        }
      } else {
        for (int t = 0; t < nv; t++) {
          const int64_t iy = iy0[t] + dy, ix = ix0[t] + dx;
          d[t] = ((uint64_t)iy < (uint64_t)H && (uint64_t)ix < (uint64_t)W) ? xc[iy * W + ix] : 0.0f;
        }
        zero_tail(d, nv, w);
      }
      if (++kj == g->kw) { kj = 0; if (++ki == g->kh) { ki = 0; c++; } }
    }
  }
}

/* Runs fn(ctx, n, group) for every (sample, group). Small per-pair work runs the pairs in
 * parallel (each pair's GEMM then runs serially inside its task); big work runs the
 * pairs in order with the parallelism inside each GEMM. Same results either way. */
typedef void (*vg_ng_fn)(void *ctx, int64_t n, int64_t gi);
typedef struct { vg_ng_fn fn; void *ctx; int64_t groups; } vg_ng_job;

static void ng_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_ng_job *j = vctx;
  for (int64_t t = b; t < e; t++) j->fn(j->ctx, t / j->groups, t % j->groups);
}

static void for_each_ng(const vg_conv2d_geom *g, double flops_per_pair, vg_ng_fn fn, void *ctx) {
  vg_ng_job j = {fn, ctx, g->groups};
  const int64_t pairs = g->n * g->groups;
  if (pairs >= 2 && flops_per_pair < 3e7) vg_parallel_for(pairs, 1, ng_task, &j);
  else ng_task(&j, 0, pairs, 0);
}

typedef struct {
  const vg_conv2d_geom *g;
  vg_conv_dims d;
  const float *x, *w, *bias, *gy;
  const float *wpacked;           /* forward: W packed by vg_gemm_pack_a (the pack's), or NULL */
  float *y, *gx;
} vg_conv_job;

static void fwd_pair(void *vctx, int64_t n, int64_t gi) {
  const vg_conv_job *j = vctx;
  const vg_conv2d_geom *g = j->g;
  const vg_conv_dims d = j->d;
  const float *xg = j->x + (n * g->c + gi * d.cg) * d.HW;
  vg_gemm_strided a = {j->w + gi * d.ocg * d.ckg, d.ckg, 1};
  vg_gemm_strided bs = {xg, 1, d.HW};           /* pointwise: P_B[p][c] = x[c][p] */
  vg_patch_ctx bp = {g, xg};
  const int pw = is_pointwise(g);
  vg_gemm_problem p = {.M = d.ocg, .N = d.P, .K = d.ckg,
                       .pack_a = vg_gemm_pack_strided, .a_ctx = &a,
                       .pack_b = pw ? vg_gemm_pack_strided : pack_patches,
                       .b_ctx = pw ? (const void *)&bs : (const void *)&bp,
                       .alpha = 1.0f, .beta = 0.0f,
                       .C = j->y + (n * g->oc + gi * d.ocg) * d.P, .ldc = d.P,
                       .row_bias = j->bias ? j->bias + gi * d.ocg : NULL, .relu = g->relu,
                       .a_packed = j->wpacked};
  vg_gemm_run(&p);
}

void vg_cpu_conv2d_fwd(const vg_conv2d_geom *g, const float *x, const float *w,
                       const float *bias, float *y) {
  vg_conv_job j = {.g = g, .d = dims_of(g), .x = x, .w = w, .bias = bias, .y = y};
  if (vg_cpu_winograd_applies(g)) {   /* 3x3 / 4x4 stride 1: tensor/cpu/winograd.c */
    vg_cpu_conv2d_fwd_winograd(g, x, w, bias, y);
    return;
  }
  if (vg_cpu_dwconv_applies(g)) {     /* depthwise: tensor/cpu/dwconv.c */
    vg_cpu_dwconv_fwd(g, x, w, bias, y);
    return;
  }
  const int direct = vg_cpu_conv_direct_applies(g);   /* few input channels: conv_direct.h */
  if ((g->pack || direct) && g->groups == 1) {
    /* W as the GEMM's packed A: kept in the pack across calls, or packed now for the
     * direct path (which reads the same slivers) */
    vg_gemm_strided a = {w, j.d.ckg, 1};
    vg_gemm_problem p = {.M = j.d.ocg, .K = j.d.ckg, .pack_a = vg_gemm_pack_strided, .a_ctx = &a};
    const size_t floats = vg_gemm_packed_a_floats(p.M, p.K);
    int fresh = 1;
    float *pa = g->pack ? vg_conv_pack_get(g->pack, VG_CONV_PACK_GEMM_A, p.M, p.K, 0, floats, &fresh)
                        : vg_cpu_scratch(VG_SCRATCH_CONV_W, floats);
    if (fresh) vg_gemm_pack_a(&p, pa);
    j.wpacked = pa;
  }
  if (direct) {
    vg_cpu_conv_direct_fwd(g, x, j.wpacked, bias, y);
    return;
  }
  for_each_ng(g, 2.0 * j.d.ocg * j.d.ckg * j.d.P, fwd_pair, &j);
}

/* ---- backward data: col = W_g^T gy (per pixel chunk), then col2im ---- */

typedef struct {
  const vg_conv2d_geom *g;
  const float *col;               /* (ckg, pc) */
  float *gx;                      /* channel 0 of the group in this sample */
  int64_t p0, pc, HW;
} vg_col2im_job;

/* gx[c, iy, ix] += col[(c,ki,kj), p] over the chunk's pixels; one task per channel, so
 * each gx element is summed in (ki, kj, p) order whatever the thread count. */
static void col2im_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_col2im_job *j = vctx;
  const vg_conv2d_geom *g = j->g;
  const int64_t W = g->w, H = g->h, ow = g->ow, sw = g->sw, p1 = j->p0 + j->pc;
  for (int64_t c = b; c < e; c++) {
    float *gxc = j->gx + c * j->HW;
    for (int64_t ki = 0; ki < g->kh; ki++)
      for (int64_t kj = 0; kj < g->kw; kj++) {
        const float *row = j->col + ((c * g->kh + ki) * g->kw + kj) * j->pc;
        const int64_t off = kj * g->dw - g->pw;     /* ix = ox*sw + off */
        const int64_t oxlo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        const int64_t oxhi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
        for (int64_t p = j->p0; p < p1;) {
          const int64_t oy = p / ow, ox0 = p % ow, ox1 = min64(ow, ox0 + (p1 - p));
          const int64_t iy = VG_CONV_SRC(oy, g->sh, g->ph, ki, g->dh);
          const int64_t lo = max64(ox0, oxlo), hi = min64(ox1, oxhi);
          if (iy >= 0 && iy < H && lo < hi) {
            float *gr = gxc + iy * W + lo * sw + off;          /* gr[q*sw]: pixel ox = lo+q */
            const float *cr = row + (p - j->p0) + (lo - ox0);
            if (sw == 1)
              for (int64_t q = 0; q < hi - lo; q++) gr[q] += cr[q];
            else
              for (int64_t q = 0; q < hi - lo; q++) gr[q * sw] += cr[q];
          }
          p += ox1 - ox0;
        }
      }
  }
}

static void bwd_data_pair(void *vctx, int64_t n, int64_t gi) {
  const vg_conv_job *j = vctx;
  const vg_conv2d_geom *g = j->g;
  const vg_conv_dims d = j->d;
  float *gxg = j->gx + (n * g->c + gi * d.cg) * d.HW;
  const float *gyg = j->gy + (n * g->oc + gi * d.ocg) * d.P;
  vg_gemm_strided a = {j->w + gi * d.ocg * d.ckg, 1, d.ckg};   /* P_A[ck][o] = w[o][ck] */
  if (is_pointwise(g)) {
    vg_gemm_strided b = {gyg, 1, d.P};                         /* P_B[p][o] = gy[o][p] */
    vg_gemm_problem p = {.M = d.cg, .N = d.P, .K = d.ocg, .pack_a = vg_gemm_pack_strided,
                         .a_ctx = &a, .pack_b = vg_gemm_pack_strided, .b_ctx = &b,
                         .alpha = 1.0f, .beta = 0.0f, .C = gxg, .ldc = d.HW};
    vg_gemm_run(&p);
    return;
  }
  memset(gxg, 0, (size_t)(d.cg * d.HW) * sizeof(float));
  const int64_t chunk = min64(d.P, max64(64, VG_CONV_COL_FLOATS / d.ckg));
  float *col = vg_cpu_scratch(VG_SCRATCH_CONV_COL, (size_t)(d.ckg * chunk));
  for (int64_t p0 = 0; p0 < d.P; p0 += chunk) {
    const int64_t pc = min64(chunk, d.P - p0);
    vg_gemm_strided b = {gyg + p0, 1, d.P};
    vg_gemm_problem p = {.M = d.ckg, .N = pc, .K = d.ocg, .pack_a = vg_gemm_pack_strided,
                         .a_ctx = &a, .pack_b = vg_gemm_pack_strided, .b_ctx = &b,
                         .alpha = 1.0f, .beta = 0.0f, .C = col, .ldc = pc};
    vg_gemm_run(&p);
    vg_col2im_job cj = {g, col, gxg, p0, pc, d.HW};
    vg_parallel_for(d.cg, 1, col2im_task, &cj);
  }
}

/* bwd_data of a k x k (k = 3 or 4) stride-1 conv with padding p <= k - 1 is the forward
 * conv of gy with the kernel flipped and transposed (wt[c][o][a][b] = w[o][c][k-1-a][k-1-b])
 * and padding k - 1 - p: Winograd takes it when it takes that geometry. Returns 0 when it
 * does not. */
static int bwd_data_winograd(const vg_conv2d_geom *g, const float *w, const float *gy, float *gx) {
  const int64_t k = g->kh, kk = k * k;
  if ((k != 3 && k != 4) || g->kw != k || g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 ||
      g->groups != 1 || g->ph > k - 1 || g->pw > k - 1)
    return 0;
  vg_conv2d_geom t = {.n = g->n, .c = g->oc, .h = g->oh, .w = g->ow, .oc = g->c, .kh = k, .kw = k,
                      .sh = 1, .sw = 1, .ph = k - 1 - g->ph, .pw = k - 1 - g->pw, .dh = 1, .dw = 1,
                      .groups = 1};
  vg_conv2d_geom_init(&t);
  VG_ASSERT(t.oh == g->h && t.ow == g->w);
  if (!vg_cpu_winograd_applies(&t)) return 0;
  float *wt = malloc((size_t)(g->oc * g->c * kk) * sizeof(float));
  if (!wt) VG_ABORT("out of memory in conv2d bwd_data");
  for (int64_t o = 0; o < g->oc; o++)
    for (int64_t c = 0; c < g->c; c++)
      for (int64_t q = 0; q < kk; q++) wt[(c * g->oc + o) * kk + q] = w[(o * g->c + c) * kk + (kk - 1 - q)];
  vg_cpu_conv2d_fwd_winograd(&t, gy, wt, NULL, gx);
  free(wt);
  return 1;
}

void vg_cpu_conv2d_bwd_data(const vg_conv2d_geom *g, const float *w, const float *gy,
                            float *gx) {
  vg_conv_job j = {.g = g, .d = dims_of(g), .w = w, .gy = gy, .gx = gx};
  if (g->n > 0 && bwd_data_winograd(g, w, gy, gx)) return;
  if (vg_cpu_dwconv_applies(g)) {
    vg_cpu_dwconv_bwd_data(g, w, gy, gx);
    return;
  }
  for_each_ng(g, 2.0 * j.d.ocg * j.d.ckg * j.d.P, bwd_data_pair, &j);
}

/* ---- backward weight: gw_g = gy_g (ocg x nP) * patches^T (nP x ckg), K = (n, p) ---- */

typedef struct {
  const float *gy;                /* group's channel 0 in sample 0 */
  int64_t P, sample_stride;       /* floats between samples: oc * P */
} vg_gyrows_ctx;

/* P_A[o][k] = gy[k / P][o][k % P] */
static void pack_gy_rows(const void *vctx, int64_t x0, int64_t xn, int64_t k0, int64_t kc,
                         int w, float *dst) {
  const vg_gyrows_ctx *c = vctx;
  for (int64_t s0 = 0; s0 < xn; s0 += w, dst += kc * w) {
    const int nv = (int)min64(w, xn - s0);
    for (int64_t k = 0; k < kc;) {
      const int64_t kk = k0 + k, nn = kk / c->P, p = kk % c->P, seg = min64(kc - k, c->P - p);
      for (int t = 0; t < nv; t++) {
        const float *row = c->gy + nn * c->sample_stride + (x0 + s0 + t) * c->P + p;
        float *d = dst + k * w + t;
        for (int64_t q = 0; q < seg; q++) d[q * w] = row[q];
      }
      for (int64_t q = 0; q < seg; q++) zero_tail(dst + (k + q) * w, nv, w);
      k += seg;
    }
  }
}

typedef struct {
  const vg_conv2d_geom *g;
  const float *x;                 /* group's channel 0 in sample 0 */
  int64_t P, HW;
} vg_patch_t_ctx;

/* P_B[ck][k] = x[k / P][c][oy*sh-ph+ki*dh][ox*sw-pw+kj*dw], (oy, ox) = k % P */
static void pack_patches_t(const void *vctx, int64_t x0, int64_t xn, int64_t k0, int64_t kc,
                           int w, float *dst) {
  const vg_patch_t_ctx *pc = vctx;
  const vg_conv2d_geom *g = pc->g;
  const int64_t H = g->h, W = g->w, ow = g->ow, khw = g->kh * g->kw;
  const int64_t sample_stride = g->c * pc->HW;
  VG_ASSERT(w <= VG_CONV_MAX_W);
  for (int64_t s0 = 0; s0 < xn; s0 += w, dst += kc * w) {
    const int nv = (int)min64(w, xn - s0);
    int64_t off[VG_CONV_MAX_W], dy[VG_CONV_MAX_W], dx[VG_CONV_MAX_W];
    for (int t = 0; t < nv; t++) {
      const int64_t ck = x0 + s0 + t, c = ck / khw, r = ck % khw;
      off[t] = c * pc->HW;
      dy[t] = (r / g->kw) * g->dh;
      dx[t] = (r % g->kw) * g->dw;
    }
    int64_t nn = k0 / pc->P, p = k0 % pc->P, oy = p / ow, ox = p % ow;
    for (int64_t k = 0; k < kc; k++) {
      float *d = dst + k * w;
      const float *xs = pc->x + nn * sample_stride;
      const int64_t iy0 = oy * g->sh - g->ph, ix0 = ox * g->sw - g->pw;
      for (int t = 0; t < nv; t++) {
        const int64_t iy = iy0 + dy[t], ix = ix0 + dx[t];
        d[t] = ((uint64_t)iy < (uint64_t)H && (uint64_t)ix < (uint64_t)W) ? xs[off[t] + iy * W + ix] : 0.0f;
      }
      zero_tail(d, nv, w);
      if (++ox == ow) { ox = 0; if (++oy == g->oh) { oy = 0; nn++; } }
    }
  }
}

typedef struct {
  vg_gemm_problem p;              /* the whole-K problem; tasks run K chunks of it */
  float *part;                    /* (nchunks, M, N) */
  int64_t kchunk, nchunks;
  float *out; int64_t ldo;
} vg_ksplit_job;

static void ksplit_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_ksplit_job *j = vctx;
  for (int64_t c = b; c < e; c++) {
    vg_gemm_problem p = j->p;
    p.k_begin = c * j->kchunk;
    p.K = min64(j->kchunk, j->p.K - p.k_begin);
    p.C = j->part + c * p.M * p.N;
    p.ldc = p.N;
    vg_gemm_run(&p);
  }
}

static void ksplit_reduce(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_ksplit_job *j = vctx;
  const int64_t M = j->p.M, N = j->p.N;
  for (int64_t i = b; i < e; i++) {
    float *o = j->out + i * j->ldo;
    memcpy(o, j->part + i * N, (size_t)N * sizeof(float));
    for (int64_t c = 1; c < j->nchunks; c++) {
      const float *s = j->part + (c * M + i) * N;
      for (int64_t q = 0; q < N; q++) o[q] += s[q];
    }
  }
}

/* C = the problem's product, its K cut into fixed chunks summed in chunk order when C
 * alone is too small to keep the threads busy (the cut depends on the shape only). */
static void gemm_ksplit(const vg_gemm_problem *p) {
  const int64_t tiles = ((p->M + 143) / 144) * ((p->N + 511) / 512);
  int64_t nchunks = tiles >= 8 ? 1 : min64(32, p->K / 8192);
  if (nchunks <= 1) { vg_gemm_run(p); return; }
  vg_ksplit_job j = {.p = *p, .kchunk = (p->K + nchunks - 1) / nchunks, .out = p->C, .ldo = p->ldc};
  j.nchunks = (p->K + j.kchunk - 1) / j.kchunk;
  j.part = vg_cpu_scratch(VG_SCRATCH_GEMM_PART, (size_t)(j.nchunks * p->M * p->N));
  vg_parallel_for(j.nchunks, 1, ksplit_task, &j);
  vg_parallel_for(p->M, 8, ksplit_reduce, &j);
}

typedef struct { const float *gy; float *gb; int64_t n, oc, P; } vg_bias_job;

static void bias_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_bias_job *j = vctx;
  for (int64_t o = b; o < e; o++) {
    double total = 0.0;
    for (int64_t nn = 0; nn < j->n; nn++) {
      const float *row = j->gy + (nn * j->oc + o) * j->P;
      float s[8] = {0};
      int64_t p = 0;
      for (; p + 8 <= j->P; p += 8)
        for (int q = 0; q < 8; q++) s[q] += row[p + q];
      for (; p < j->P; p++) s[0] += row[p];
      total += (((double)s[0] + s[1]) + ((double)s[2] + s[3])) + (((double)s[4] + s[5]) + ((double)s[6] + s[7]));
    }
    j->gb[o] = (float)total;
  }
}

void vg_cpu_conv2d_bwd_weight(const vg_conv2d_geom *g, const float *x, const float *gy,
                              float *gw, float *gb) {
  const vg_conv_dims d = dims_of(g);
  const int dw = vg_cpu_dwconv_applies(g), wino = !dw && vg_cpu_winograd_applies(g);
  if (dw) vg_cpu_dwconv_bwd_weight(g, x, gy, gw);
  if (wino) vg_cpu_conv2d_bwd_weight_winograd(g, x, gy, gw);
  for (int64_t gi = 0; !dw && !wino && gi < g->groups; gi++) {
    vg_gyrows_ctx a = {gy + gi * d.ocg * d.P, d.P, g->oc * d.P};
    vg_patch_t_ctx b = {g, x + gi * d.cg * d.HW, d.P, d.HW};
    vg_gemm_problem p = {.M = d.ocg, .N = d.ckg, .K = g->n * d.P,
                         .pack_a = pack_gy_rows, .a_ctx = &a,
                         .pack_b = pack_patches_t, .b_ctx = &b,
                         .alpha = 1.0f, .beta = 0.0f,
                         .C = gw + gi * d.ocg * d.ckg, .ldc = d.ckg};
    gemm_ksplit(&p);
  }
  if (gb) {
    vg_bias_job j = {gy, gb, g->n, g->oc, d.P};
    vg_parallel_for(g->oc, 4, bias_task, &j);
  }
}

/* ---- references: direct loops, double accumulators ---- */

void vg_cpu_conv2d_fwd_ref(const vg_conv2d_geom *g, const float *x, const float *w,
                           const float *bias, float *y) {
  const vg_conv_dims d = dims_of(g);
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t o = 0; o < g->oc; o++) {
      const int64_t gi = o / d.ocg;
      for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
          double s = bias ? bias[o] : 0.0;
          for (int64_t c = 0; c < d.cg; c++)
            for (int64_t ki = 0; ki < g->kh; ki++)
              for (int64_t kj = 0; kj < g->kw; kj++) {
                int64_t iy = VG_CONV_SRC(oy, g->sh, g->ph, ki, g->dh), ix = VG_CONV_SRC(ox, g->sw, g->pw, kj, g->dw);
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                s += (double)w[((o * d.cg + c) * g->kh + ki) * g->kw + kj] *
                     x[((n * g->c + gi * d.cg + c) * g->h + iy) * g->w + ix];
              }
          y[((n * g->oc + o) * g->oh + oy) * g->ow + ox] = (float)s;
        }
    }
}

void vg_cpu_conv2d_bwd_data_ref(const vg_conv2d_geom *g, const float *w, const float *gy,
                                float *gx) {
  const vg_conv_dims d = dims_of(g);
  const int64_t total = g->n * g->c * d.HW;
  double *acc = calloc((size_t)(total > 0 ? total : 1), sizeof(double));
  if (!acc) VG_ABORT("out of memory in conv2d reference");
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t o = 0; o < g->oc; o++) {
      const int64_t gi = o / d.ocg;
      for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
          const double gv = gy[((n * g->oc + o) * g->oh + oy) * g->ow + ox];
          for (int64_t c = 0; c < d.cg; c++)
            for (int64_t ki = 0; ki < g->kh; ki++)
              for (int64_t kj = 0; kj < g->kw; kj++) {
                int64_t iy = VG_CONV_SRC(oy, g->sh, g->ph, ki, g->dh), ix = VG_CONV_SRC(ox, g->sw, g->pw, kj, g->dw);
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                acc[((n * g->c + gi * d.cg + c) * g->h + iy) * g->w + ix] +=
                    gv * w[((o * d.cg + c) * g->kh + ki) * g->kw + kj];
              }
        }
    }
  for (int64_t i = 0; i < total; i++) gx[i] = (float)acc[i];
  free(acc);
}

void vg_cpu_conv2d_bwd_weight_ref(const vg_conv2d_geom *g, const float *x, const float *gy,
                                  float *gw, float *gb) {
  const vg_conv_dims d = dims_of(g);
  for (int64_t o = 0; o < g->oc; o++) {
    const int64_t gi = o / d.ocg;
    for (int64_t c = 0; c < d.cg; c++)
      for (int64_t ki = 0; ki < g->kh; ki++)
        for (int64_t kj = 0; kj < g->kw; kj++) {
          double s = 0.0;
          for (int64_t n = 0; n < g->n; n++)
            for (int64_t oy = 0; oy < g->oh; oy++)
              for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t iy = VG_CONV_SRC(oy, g->sh, g->ph, ki, g->dh), ix = VG_CONV_SRC(ox, g->sw, g->pw, kj, g->dw);
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                s += (double)gy[((n * g->oc + o) * g->oh + oy) * g->ow + ox] *
                     x[((n * g->c + gi * d.cg + c) * g->h + iy) * g->w + ix];
              }
          gw[((o * d.cg + c) * g->kh + ki) * g->kw + kj] = (float)s;
        }
    if (gb) {
      double s = 0.0;
      for (int64_t n = 0; n < g->n; n++)
        for (int64_t p = 0; p < d.P; p++) s += gy[(n * g->oc + o) * d.P + p];
      gb[o] = (float)s;
    }
  }
}
