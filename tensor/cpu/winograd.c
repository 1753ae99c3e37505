/* Winograd F(4x4, 3x3) and F(3x3, 4x4) convolution: the switch, the filter transform, the
 * blocked driver and the scalar copy of the transforms. Shapes as in conv.h; TX x TY tiles of
 * m x m output pixels per image (m = 4 for 3x3 kernels, 3 for 4x4 ones), tile rows of all
 * images numbered r = n*TY + ty, xi = 6*i + j the 36 positions of a transformed 6x6 tile
 * (both variants transform 6x6 input tiles). Per block of tile rows (TB tiles):
 *   V[xi][c][t]   = (B^T d B)[i][j] of tile t, channel c        (36 x C x TB)
 *   Mo[xi][o][t]  = sum_c U[xi][c][o] V[xi][c][t]  (36 GEMMs)   (36 x OC x TB)
 *   y tile        = A^T Mo A + bias, ReLU'd if asked
 * with U[xi][c][o] = (G w[o][c] G^T)[i][j] (36 x C x OC), computed every call: vg_tensor has
 * no version counter to key a cache on. Per call it is ~15% of a 32x32, 256-channel layer at
 * batch 1 (profiled), less at larger batches; below 64 tiles it would not pay, and such
 * layers take the GEMM path. */
#include "tensor/cpu/winograd.h"
#include "tensor/cpu/isa.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/scratch.h"
#include "tensor/parallel.h"
#include "base/threadpool.h"
#include "base/status.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define VG_WINO_BUDGET (1 << 21)   /* floats of V + Mo per block (8 MiB) */

static vg_cpu_switch wino_switch = VG_CPU_SWITCH_INIT("VIGIL_WINOGRAD");

void vg_cpu_set_winograd(int on) { vg_cpu_switch_set(&wino_switch, on); }
int vg_cpu_winograd(void) { return vg_cpu_switch_on(&wino_switch); }

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* output tile size: 4 for 3x3 kernels (F(4x4,3x3)), 3 for 4x4 ones (F(3x3,4x4)) */
static int tile_of(const vg_conv2d_geom *g) { return g->kh == 3 ? 4 : 3; }

int vg_cpu_winograd_eligible(const vg_conv2d_geom *g) {
  if (g->kh != g->kw || (g->kh != 3 && g->kh != 4) || g->sh != 1 || g->sw != 1 || g->dh != 1 ||
      g->dw != 1 || g->groups != 1)
    return 0;
  const int64_t m = tile_of(g);
  if (g->n < 1 || g->c < 16 || g->oc < 16 || g->oh < m || g->ow < m) return 0;
  const int64_t TX = cdiv(g->ow, m), TY = cdiv(g->oh, m);
  /* tiles mostly filled (a 7x7 output is 4 tiles of 16 = 77%), and enough of them */
  if (10 * g->oh * g->ow < 7 * m * m * TX * TY) return 0;
  return g->n * TX * TY >= 64;     /* fewer: the per-call filter transform does not pay */
}

int vg_cpu_winograd_applies(const vg_conv2d_geom *g) {
  return vg_cpu_winograd_eligible(g) && vg_cpu_winograd();
}

/* ---- filter transform: U[xi][c][o] = (G g G^T)[i][j], g = w[o][c] (o fastest, so the
 * GEMM's A panel P_A[o][c] packs by rows) ---- */

/* the filter transform and its adjoint (the weight gradient's last step): src -> dst for
 * output channels o0.., input channel c, an r x r kernel */
typedef void (*vg_wino_filter_fn)(const float *src, int64_t C, int64_t OC, int64_t c, int64_t o0, int on, int r,
                                  float *dst, int64_t plane);
typedef struct {
  const float *src; float *dst; int64_t oc, c; int r; vg_wino_filter_fn fn;
  float *UP; size_t upk;            /* forward: the GEMM-packed copies of U[xi] (dst), upk floats apart */
} vg_wino_ftask;

#define VG_WINO_FC 16               /* input channels per filter-transform task */

/* over units (block of 64 o) x (block of VG_WINO_FC c), so small layers split too */
static void filter_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_wino_ftask *j = vctx;
  const int64_t ncb = cdiv(j->c, VG_WINO_FC);
  for (int64_t u = b; u < e; u++) {
    const int64_t o0 = (u / ncb) * 64, c0 = (u % ncb) * VG_WINO_FC;
    const int on = (int)min64(64, j->oc - o0);
    for (int64_t c = c0; c < min64(j->c, c0 + VG_WINO_FC); c++)
      j->fn(j->src, j->c, j->oc, c, o0, on, j->r, j->dst, j->oc * j->c);
  }
}

static void run_filter(const vg_wino_ftask *ft) {
  vg_parallel_for(cdiv(ft->oc, 64) * cdiv(ft->c, VG_WINO_FC), 1, filter_task, (void *)ft);
}

/* over xi: the 36 A operands packed for the GEMMs, one per task */
static void pack_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_wino_ftask *j = vctx;
  for (int64_t xi = b; xi < e; xi++) {
    vg_gemm_strided a = {j->dst + xi * j->oc * j->c, 1, j->oc};   /* P_A[o][c] = U[xi][c][o] */
    vg_gemm_problem p = {.M = j->oc, .K = j->c, .pack_a = vg_gemm_pack_strided, .a_ctx = &a};
    vg_gemm_pack_a(&p, j->UP + xi * j->upk);
  }
}

/* ---- the blocked driver ---- */

typedef void (*vg_wino_in_fn)(const float *xc, int64_t H, int64_t W, int64_t iy0, int64_t ix0,
                              int64_t TX, int m, float *buf, float *V, int64_t vs);
typedef void (*vg_wino_out_fn)(const float *m, int64_t ms, int64_t TX, float bias, int relu,
                               float *yc, int64_t oh, int64_t ow, int64_t oy0, float *buf);

typedef void (*vg_wino_gy_fn)(const float *gyc, int64_t oh, int64_t ow, int64_t oy0, int64_t TX, int m,
                              float *buf, float *Gm, int64_t gs);

typedef struct {
  const vg_conv2d_geom *g;
  const float *gy;                  /* weight gradient: the output gradient, and its transform */
  vg_wino_gy_fn gyfn;
  const float *x, *bias, *UP;       /* UP: U[xi] packed by vg_gemm_pack_a, upk floats apart */
  size_t upk;
  float *y;
  int64_t TX, TY, R, rb;            /* tiles per row, tile rows per image, all rows, rows per block */
  int m;                            /* output tile size */
  vg_wino_in_fn in;
  vg_wino_out_fn out;
} vg_wino_job;

typedef struct {
  const vg_wino_job *j;
  int64_t r0, r1, TB;
  float *V, *Mo;
} vg_wino_block;

static float *work_buf(const vg_wino_job *j) {
  float *b = malloc((size_t)(48 * (j->TX + 1) + 64) * sizeof(float));
  if (!b) VG_ABORT("out of memory in the Winograd convolution");
  return b;
}

/* task over channels c: all tile rows of the block */
static void in_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_wino_block *k = vctx;
  const vg_wino_job *j = k->j;
  const vg_conv2d_geom *g = j->g;
  float *buf = work_buf(j);
  const int64_t HW = g->h * g->w, vs = g->c * k->TB;
  for (int64_t c = b; c < e; c++)
    for (int64_t r = k->r0; r < k->r1; r++) {
      const int64_t nn = r / j->TY, ty = r % j->TY;
      j->in(j->x + (nn * g->c + c) * HW, g->h, g->w, j->m * ty - g->ph, -g->pw, j->TX, j->m, buf,
            k->V + c * k->TB + (r - k->r0) * j->TX, vs);
    }
  free(buf);
}

/* task over output channels o */
static void out_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_wino_block *k = vctx;
  const vg_wino_job *j = k->j;
  const vg_conv2d_geom *g = j->g;
  float *buf = work_buf(j);
  const int64_t P = g->oh * g->ow, ms = g->oc * k->TB;
  for (int64_t o = b; o < e; o++)
    for (int64_t r = k->r0; r < k->r1; r++) {
      const int64_t nn = r / j->TY, ty = r % j->TY;
      j->out(k->Mo + o * k->TB + (r - k->r0) * j->TX, ms, j->TX, j->bias ? j->bias[o] : 0.0f, g->relu,
             j->y + (nn * g->oc + o) * P, g->oh, g->ow, j->m * ty, buf);
    }
  free(buf);
}

/* One block of tile rows [r0, r1): from a pool task everything runs serially here (nested
 * parallel calls do), from the caller the transforms and GEMMs use the pool. */
static void run_block(const vg_wino_job *j, int64_t r0, int64_t r1) {
  const vg_conv2d_geom *g = j->g;
  const int64_t C = g->c, OC = g->oc, TB = (r1 - r0) * j->TX;
  float *V = vg_cpu_scratch(VG_SCRATCH_CONV_COL, (size_t)(36 * (C + OC) * TB));
  vg_wino_block k = {j, r0, r1, TB, V, V + 36 * C * TB};
  vg_parallel_for(C, max64(1, 256 / (r1 - r0) / j->TX), in_task, &k);
  for (int xi = 0; xi < 36; xi++) {
    vg_gemm_strided bb = {V + xi * C * TB, 1, TB};       /* P_B[t][c] = V[xi][c][t] */
    vg_gemm_problem p = {.M = OC, .N = TB, .K = C, .a_packed = j->UP + xi * j->upk,
                         .pack_b = vg_gemm_pack_strided, .b_ctx = &bb,
                         .alpha = 1.0f, .beta = 0.0f, .C = k.Mo + xi * OC * TB, .ldc = TB};
    vg_gemm_run(&p);
  }
  vg_parallel_for(OC, max64(1, 256 / (r1 - r0) / j->TX), out_task, &k);
}

static void block_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_wino_job *j = vctx;
  for (int64_t blk = b; blk < e; blk++) run_block(j, blk * j->rb, min64(j->R, (blk + 1) * j->rb));
}

void vg_cpu_conv2d_fwd_winograd(const vg_conv2d_geom *g, const float *x, const float *w,
                                const float *bias, float *y) {
  VG_ASSERT(vg_cpu_winograd_eligible(g) && "Winograd conv: 3x3 or 4x4, stride 1, dilation 1, groups 1");
  vg_wino_job j = {.g = g, .x = x, .bias = bias, .y = y, .m = tile_of(g)};
  j.TX = cdiv(g->ow, j.m);
  j.TY = cdiv(g->oh, j.m);
  j.R = g->n * j.TY;
  const int k3 = j.m == 4;
  vg_wino_filter_fn filt = vg_wino_filter_scalar;
  j.in = vg_wino_in_row_scalar;
  j.out = k3 ? vg_wino_out_row_scalar : vg_wino_out_row3_scalar;
  switch (vg_cpu_isa()) {
    case VG_ISA_AVX512:
      j.in = vg_wino_in_row_avx512;
      j.out = k3 ? vg_wino_out_row_avx512 : vg_wino_out_row3_avx512;
      filt = vg_wino_filter_avx512;
      break;
    case VG_ISA_AVX2:
      j.in = vg_wino_in_row_avx2;
      j.out = k3 ? vg_wino_out_row_avx2 : vg_wino_out_row3_avx2;
      filt = vg_wino_filter_avx2;
      break;
    case VG_ISA_SCALAR: break;
  }
  /* block = whole tile rows, about tb tiles, at least 2 blocks (an even count when there
   * are few) for two threads: a shape-only choice, the same for any thread count */
  const int64_t tb = min64(128, max64(64, VG_WINO_BUDGET / (36 * (g->c + g->oc))));
  int64_t nblocks = max64(cdiv(j.R, max64(1, tb / j.TX)), min64(j.R, 2));
  if (nblocks % 2 && nblocks < 8 && nblocks < j.R) nblocks++;
  j.rb = cdiv(j.R, nblocks);
  nblocks = cdiv(j.R, j.rb);
  /* each block's 36 GEMMs share the A operands: packed once here, not once per block, and
   * with a pack (g->pack) once for as long as the weight stays the same */
  j.upk = vg_gemm_packed_a_floats(g->oc, g->c);
  j.upk = (j.upk + 15) & ~(size_t)15;                     /* keeps every plane 64-byte aligned */
  int fresh = 1;
  float *UP = g->pack ? vg_conv_pack_get(g->pack, VG_CONV_PACK_WINO, g->oc, g->c, j.m, 36 * j.upk, &fresh)
                      : vg_cpu_scratch(VG_SCRATCH_CONV_WP, 36 * j.upk);
  if (fresh) {
    float *U = vg_cpu_scratch(VG_SCRATCH_CONV_W, (size_t)(36 * g->oc * g->c));
    vg_wino_ftask ft = {w, U, g->oc, g->c, 7 - j.m, filt, UP, j.upk};
    run_filter(&ft);
    vg_parallel_for(36, 1, pack_task, &ft);
  }
  j.UP = UP;
  if (nblocks >= 2) vg_parallel_for(nblocks, 1, block_task, &j);
  else run_block(&j, 0, j.R);
}

/* ---- weight gradient ---- */

#define VG_WINO_WBUDGET (1 << 24)  /* floats of V + Gm per block (64 MiB): big blocks, so dU
                                    * (36 x C x OC, read and written per block) is amortized */

/* task over output channels o: the block's Gm (in its Mo) for all its tile rows */
static void wgy_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_wino_block *k = vctx;
  const vg_wino_job *j = k->j;
  const vg_conv2d_geom *g = j->g;
  float *buf = work_buf(j);
  const int64_t P = g->oh * g->ow, gs = g->oc * k->TB;
  for (int64_t o = b; o < e; o++)
    for (int64_t r = k->r0; r < k->r1; r++) {
      const int64_t nn = r / j->TY, ty = r % j->TY;
      j->gyfn(j->gy + (nn * g->oc + o) * P, g->oh, g->ow, j->m * ty, j->TX, j->m, buf,
              k->Mo + o * k->TB + (r - k->r0) * j->TX, gs);
    }
  free(buf);
}

void vg_cpu_conv2d_bwd_weight_winograd(const vg_conv2d_geom *g, const float *x, const float *gy, float *gw) {
  VG_ASSERT(vg_cpu_winograd_eligible(g) && "Winograd conv: 3x3 or 4x4, stride 1, dilation 1, groups 1");
  vg_wino_job j = {.g = g, .x = x, .gy = gy, .m = tile_of(g)};
  j.TX = cdiv(g->ow, j.m);
  j.TY = cdiv(g->oh, j.m);
  j.R = g->n * j.TY;
  vg_wino_filter_fn fg = vg_wino_filter_grad_scalar;
  j.in = vg_wino_in_row_scalar;
  j.gyfn = vg_wino_gy_row_scalar;
  switch (vg_cpu_isa()) {
    case VG_ISA_AVX512:
      j.in = vg_wino_in_row_avx512; j.gyfn = vg_wino_gy_row_avx512; fg = vg_wino_filter_grad_avx512; break;
    case VG_ISA_AVX2:
      j.in = vg_wino_in_row_avx2; j.gyfn = vg_wino_gy_row_avx2; fg = vg_wino_filter_grad_avx2; break;
    case VG_ISA_SCALAR: break;
  }
  /* blocks of whole tile rows in order (a shape-only choice): every dU element is summed
   * block after block, each block's GEMM over its tiles in order, whatever the threads */
  const int64_t C = g->c, OC = g->oc;
  const int64_t rb = max64(1, min64(j.R, VG_WINO_WBUDGET / (36 * (C + OC)) / j.TX));
  float *dU = vg_cpu_scratch(VG_SCRATCH_CONV_W, (size_t)(36 * C * OC));
  for (int64_t r0 = 0; r0 < j.R; r0 += rb) {
    const int64_t r1 = min64(j.R, r0 + rb), TB = (r1 - r0) * j.TX;
    float *V = vg_cpu_scratch(VG_SCRATCH_CONV_COL, (size_t)(36 * (C + OC) * TB));
    vg_wino_block k = {&j, r0, r1, TB, V, V + 36 * C * TB};   /* Mo holds the block's Gm */
    vg_parallel_for(C, max64(1, 256 / TB), in_task, &k);
    vg_parallel_for(OC, max64(1, 256 / TB), wgy_task, &k);
    for (int xi = 0; xi < 36; xi++) {
      vg_gemm_strided a = {V + xi * C * TB, TB, 1};          /* P_A[c][t] = V[xi][c][t] */
      vg_gemm_strided bb = {k.Mo + xi * OC * TB, TB, 1};     /* P_B[o][t] = Gm[xi][o][t] */
      vg_gemm_problem p = {.M = C, .N = OC, .K = TB, .pack_a = vg_gemm_pack_strided, .a_ctx = &a,
                           .pack_b = vg_gemm_pack_strided, .b_ctx = &bb, .alpha = 1.0f,
                           .beta = r0 == 0 ? 0.0f : 1.0f, .C = dU + xi * C * OC, .ldc = OC};
      vg_gemm_run(&p);
    }
  }
  const vg_wino_ftask ft = {.src = dU, .dst = gw, .oc = OC, .c = C, .r = 7 - j.m, .fn = fg};
  run_filter(&ft);
}

/* ---- the scalar (baseline x86-64 / any CPU) copy of the transforms ---- */
#if !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
#define WK(name) vg_##name##_scalar
#include "tensor/cpu/winograd_kern.h"
#undef WK
#if !defined(__clang__)
#pragma GCC pop_options
#endif
