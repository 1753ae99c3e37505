/* pool.cu — avg / max / adaptive-average pooling, bilinear interpolation, and their
 * backward ops. The windows (tensor/kmath/pool_window.h) and taps (tensor/kmath/interp.h)
 * are shared with tensor/cpu/pool.c and resample.c (same order of additions per
 * output); backward ops gather (one thread per input-grad element, summing the outputs
 * whose window holds it in increasing (oh, ow) order), so there are no atomics and
 * results are deterministic. The forward ops also run on f16 (f16.cuh: f32 sums and
 * weights, one rounding per output); the backward ops are f32 only. */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/f16.cuh"
#include "tensor/kmath/pool_window.h"
#include "tensor/kmath/interp.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 256

typedef vg_pool_geom pgeom;

template <typename T>
__global__ void k_pool_fwd(pgeom p, int op, const T *x, T *y, int64_t *yi) {
  int64_t n = p.planes * p.OH * p.OW;
  VG_CU_GRID_LOOP(i, n) {
    int64_t ow = i % p.OW, oh = (i / p.OW) % p.OH, pl = i / (p.OW * p.OH);
    const T *xp = x + pl * p.H * p.W;
    if (op == VG_OP_AVG_POOL2D) {
      int64_t h0, h1, w0, w1;
      float div = vg_avg_window(&p, oh, ow, &h0, &h1, &w0, &w1);
      if (h0 >= h1 || w0 >= w1) {
        vg_st(y + i, 0.0f);
        continue;
      }
      float s = 0;
      for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) s += vg_ld(xp + h * p.W + w);
      vg_st(y + i, s / div);
    } else if (op == VG_OP_MAX_POOL2D) {
      int64_t hs, he, ws, we;
      vg_max_window(&p, oh, ow, &hs, &he, &ws, &we);
      int64_t best = hs * p.W + ws;
      float m = -INFINITY;
      for (int64_t h = hs; h < he; h++)
        for (int64_t w = ws; w < we; w++) {
          float v = vg_ld(xp + h * p.W + w);
          if (vg_max_takes(v, m)) {
            m = v;
            best = h * p.W + w;
          }
        }
      vg_st(y + i, m);
      if (yi) yi[i] = best;
    } else {
      int64_t h0 = vg_adaptive_start(oh, p.H, p.OH), h1 = vg_adaptive_end(oh, p.H, p.OH);
      int64_t w0 = vg_adaptive_start(ow, p.W, p.OW), w1 = vg_adaptive_end(ow, p.W, p.OW);
      float s = 0;
      for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) s += vg_ld(xp + h * p.W + w);
      vg_st(y + i, vg_adaptive_mean(s, h0, h1, w0, w1));
    }
  }
}

/* output rows whose (max/avg) window [o*s - p, o*s - p + k) contains h */
__device__ __forceinline__ void win_range(int64_t h, int64_t s, int64_t pd, int64_t k, int64_t O, int64_t *lo, int64_t *hi) {
  int64_t a = h + pd - k + 1;   /* o*s >= a */
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  *hi = vg_imin64((h + pd) / s + 1, O);   /* o*s <= h + pd */
}

__global__ void k_pool_bwd(pgeom p, int op, const float *gy, const int64_t *idx, float *gx) {
  int64_t n = p.planes * p.H * p.W;
  VG_CU_GRID_LOOP(i, n) {
    int64_t w = i % p.W, h = (i / p.W) % p.H, pl = i / (p.W * p.H);
    const float *g = gy + pl * p.OH * p.OW;
    float s = 0;
    if (op == VG_OP_ADAPTIVE_AVG_POOL2D_BWD) {
      int64_t oh0 = (h * p.OH) / p.H, ow0 = (w * p.OW) / p.W;
      while (oh0 > 0 && vg_adaptive_end(oh0 - 1, p.H, p.OH) > h) oh0--;
      while (ow0 > 0 && vg_adaptive_end(ow0 - 1, p.W, p.OW) > w) ow0--;
      for (int64_t oh = oh0; oh < p.OH && vg_adaptive_start(oh, p.H, p.OH) <= h; oh++) {
        if (vg_adaptive_end(oh, p.H, p.OH) <= h) continue;
        for (int64_t ow = ow0; ow < p.OW && vg_adaptive_start(ow, p.W, p.OW) <= w; ow++) {
          if (vg_adaptive_end(ow, p.W, p.OW) <= w) continue;
          s += vg_adaptive_mean(g[oh * p.OW + ow], vg_adaptive_start(oh, p.H, p.OH), vg_adaptive_end(oh, p.H, p.OH),
                                vg_adaptive_start(ow, p.W, p.OW), vg_adaptive_end(ow, p.W, p.OW));
        }
      }
    } else {
      int64_t oh0, oh1, ow0, ow1;
      win_range(h, p.sh, p.ph, p.kh, p.OH, &oh0, &oh1);
      win_range(w, p.sw, p.pw, p.kw, p.OW, &ow0, &ow1);
      for (int64_t oh = oh0; oh < oh1; oh++)
        for (int64_t ow = ow0; ow < ow1; ow++) {
          if (op == VG_OP_MAX_POOL2D_BWD) {
            if (idx[pl * p.OH * p.OW + oh * p.OW + ow] == h * p.W + w) s += g[oh * p.OW + ow];
          } else {
            int64_t h0, h1, w0, w1;
            float div = vg_avg_window(&p, oh, ow, &h0, &h1, &w0, &w1);
            if (h0 >= h1 || w0 >= w1 || h < h0 || h >= h1 || w < w0 || w >= w1) continue;
            s += g[oh * p.OW + ow] / div;
          }
        }
    }
    gx[i] = s;
  }
}

/* ---- bilinear ---- */
/* the backward's taps of both axes (rows: t[0, OH), columns: t[OH, OH + OW)), made on the
 * device so interpolation neither copies from the host nor waits (it can be graph-captured) */
__global__ void k_interp_taps(pgeom p, bool align, lerp_tap *t) {
  VG_CU_GRID_LOOP(o, p.OH + p.OW) t[o] = o < p.OH ? vg_lerp_tap(o, p.H, p.OH, align) : vg_lerp_tap(o - p.OH, p.W, p.OW, align);
}

/* r[2k], r[2k+1] = [first, last+1) of the outputs whose taps touch input k ({out, 0}
 * when none): rows k < H (taps t), then columns (taps t + OH, ranges r + 2H) */
__global__ void k_interp_ranges(pgeom p, const lerp_tap *t, int64_t *r) {
  VG_CU_GRID_LOOP(j, p.H + p.W) {
    bool row = j < p.H;
    int64_t k = row ? j : j - p.H, out = row ? p.OH : p.OW, lo = out, hi = 0;
    const lerp_tap *tt = row ? t : t + p.OH;
    for (int64_t o = 0; o < out; o++)
      if (tt[o].i0 == k || tt[o].i1 == k) {
        if (o < lo) lo = o;
        hi = o + 1;
      }
    r[2 * j] = lo;
    r[2 * j + 1] = hi;
  }
}

/* the forward computes its two taps per output (a few flops): no tap buffer, one launch */
template <typename T>
__global__ void k_interp_fwd(pgeom p, bool align, const T *x, T *y) {
  int64_t n = p.planes * p.OH * p.OW;
  VG_CU_GRID_LOOP(i, n) {
    int64_t ow = i % p.OW, oh = (i / p.OW) % p.OH, pl = i / (p.OW * p.OH);
    lerp_tap h = vg_lerp_tap(oh, p.H, p.OH, align), w = vg_lerp_tap(ow, p.W, p.OW, align);
    const T *r0 = x + pl * p.H * p.W + h.i0 * p.W, *r1 = x + pl * p.H * p.W + h.i1 * p.W;
    vg_st(y + i, vg_bilinear(h, w, vg_ld(r0 + w.i0), vg_ld(r0 + w.i1), vg_ld(r1 + w.i0), vg_ld(r1 + w.i1)));
  }
}

/* rng[h] = [first, last+1) of the output rows whose taps touch input row h (taps are
 * monotonic in the output index) */
__global__ void k_interp_bwd(pgeom p, const lerp_tap *th, const lerp_tap *tw, const int64_t *rh, const int64_t *rw,
                             const float *gy, float *gx) {
  int64_t n = p.planes * p.H * p.W;
  VG_CU_GRID_LOOP(i, n) {
    int64_t w = i % p.W, h = (i / p.W) % p.H, pl = i / (p.W * p.H);
    const float *g = gy + pl * p.OH * p.OW;
    float s = 0;
    for (int64_t oh = rh[2 * h]; oh < rh[2 * h + 1]; oh++) {
      lerp_tap a = th[oh];
      float wh = (a.i0 == h ? a.l0 : 0.0f) + (a.i1 == h ? a.l1 : 0.0f);
      if (a.i0 != h && a.i1 != h) continue;
      for (int64_t ow = rw[2 * w]; ow < rw[2 * w + 1]; ow++) {
        lerp_tap b = tw[ow];
        if (b.i0 != w && b.i1 != w) continue;
        float ww = (b.i0 == w ? b.l0 : 0.0f) + (b.i1 == w ? b.l1 : 0.0f);
        s += wh * ww * g[oh * p.OW + ow];
      }
    }
    gx[i] = s;
  }
}

static void interp(const vg_opcall *c, const pgeom &p, bool bwd, const void *src, void *dst) {
  cudaStream_t s = vg_cuda_stream();
  bool align = c->p.interp.align_corners;
  if (!bwd) {
    int64_t n = p.planes * p.OH * p.OW;
    if (c->out[0]->dtype == VG_F16)
      VG_CU_LAUNCH(k_interp_fwd<vg_half>, vg_cu_blocks(n, THREADS), THREADS, 0, s)(p, align, (const vg_half *)src,
                                                                                  (vg_half *)dst);
    else
      VG_CU_LAUNCH(k_interp_fwd<float>, vg_cu_blocks(n, THREADS), THREADS, 0, s)(p, align, (const float *)src,
                                                                                (float *)dst);
    VG_CUDA_LAUNCHED(vg_op_name(c->op));
    return;
  }
  size_t ntap = (size_t)(p.OH + p.OW), nr = (size_t)(2 * (p.H + p.W));
  size_t bytes = ntap * sizeof(lerp_tap) + nr * sizeof(int64_t);
  char *d = (char *)vg_cuda_alloc(bytes);
  lerp_tap *dt = (lerp_tap *)d;
  int64_t *dr = (int64_t *)(d + ntap * sizeof(lerp_tap));
  VG_CU_LAUNCH(k_interp_taps, vg_cu_blocks((int64_t)ntap, THREADS), THREADS, 0, s)(p, align, dt);
  VG_CUDA_LAUNCHED("interpolation taps");
  VG_CU_LAUNCH(k_interp_ranges, vg_cu_blocks(p.H + p.W, THREADS), THREADS, 0, s)(p, dt, dr);
  VG_CUDA_LAUNCHED("interpolation tap ranges");
  int64_t n = p.planes * p.H * p.W;
  VG_CU_LAUNCH(k_interp_bwd, vg_cu_blocks(n, THREADS), THREADS, 0, s)(p, dt, dt + p.OH, dr, dr + 2 * p.H,
                                                                     (const float *)src, (float *)dst);
  VG_CUDA_LAUNCHED(vg_op_name(c->op));
  vg_cuda_free(d);
}

void vg_cu_pool(const vg_opcall *c) {
  bool bwd = c->op == VG_OP_AVG_POOL2D_BWD || c->op == VG_OP_MAX_POOL2D_BWD ||
             c->op == VG_OP_ADAPTIVE_AVG_POOL2D_BWD || c->op == VG_OP_INTERP_BILINEAR_BWD;
  const vg_tensor *big = bwd ? c->out[0] : c->in[0], *small = bwd ? c->in[0] : c->out[0];
  bool pool = c->op == VG_OP_AVG_POOL2D || c->op == VG_OP_AVG_POOL2D_BWD || c->op == VG_OP_MAX_POOL2D ||
              c->op == VG_OP_MAX_POOL2D_BWD;
  pgeom p = vg_pool_geom_of(big, small, pool ? &c->p.pool : NULL);
  cudaStream_t s = vg_cuda_stream();
  if (vg_numel(c->out[0]) == 0) return;
  if (p.planes == 0 || p.H * p.W == 0 || p.OH * p.OW == 0) {
    if (bwd) VG_CUDA_CHECK(cudaMemsetAsync(vg_data(c->out[0]), 0, sizeof(float) * (size_t)vg_numel(c->out[0]), s));
    return;
  }
  if (bwd) {
    VG_CU_NEED_F32(c->in[0], vg_op_name(c->op));
    VG_CU_NEED_F32(c->out[0], vg_op_name(c->op));
  } else {
    VG_ASSERT(c->in[0]->dtype == c->out[0]->dtype && (c->in[0]->dtype == VG_F32 || c->in[0]->dtype == VG_F16));
  }
  void *t0, *t1 = NULL;
  const void *src = vg_cu_contig(c->in[0], &t0);
  void *dst = vg_data(c->out[0]);
  if (c->op == VG_OP_INTERP_BILINEAR || c->op == VG_OP_INTERP_BILINEAR_BWD) {
    interp(c, p, bwd, src, dst);
  } else {
    if (bwd) {
      const int64_t *idx = c->op == VG_OP_MAX_POOL2D_BWD ? (const int64_t *)vg_cu_contig(c->in[1], &t1) : NULL;
      int64_t n = p.planes * p.H * p.W;
      VG_CU_LAUNCH(k_pool_bwd, vg_cu_blocks(n, THREADS), THREADS, 0, s)(p, (int)c->op, (const float *)src, idx,
                                                                     (float *)dst);
    } else {
      int64_t n = p.planes * p.OH * p.OW;
      int64_t *yi = c->op == VG_OP_MAX_POOL2D ? (int64_t *)vg_data(c->out[1]) : NULL;
      if (c->out[0]->dtype == VG_F16)
        VG_CU_LAUNCH(k_pool_fwd<vg_half>, vg_cu_blocks(n, THREADS), THREADS, 0, s)(p, (int)c->op, (const vg_half *)src,
                                                                                  (vg_half *)dst, yi);
      else
        VG_CU_LAUNCH(k_pool_fwd<float>, vg_cu_blocks(n, THREADS), THREADS, 0, s)(p, (int)c->op, (const float *)src,
                                                                                (float *)dst, yi);
    }
    VG_CUDA_LAUNCHED(vg_op_name(c->op));
  }
  vg_cuda_free(t0);
  vg_cuda_free(t1);
}
