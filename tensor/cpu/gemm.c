/* The GEMM driver, the strided packer, the scalar micro-kernel and the reference
 * triple loop.
 *
 * Blocking: K is cut into balanced blocks of at most KC (a B sliver, KC x NR, stays in
 * L1), M into balanced blocks of at most MC rounded to MR (a packed A block, MC x KC,
 * stays in L2), N into groups of at most NG columns. A is packed once, every (M block,
 * K block), before the tasks start. One task = one N group (or, when N is narrow, one
 * N group x a range of M blocks): for each K block in order it packs its B slivers into
 * its thread's scratch and runs the micro-kernel over its A blocks, so one GEMM is two
 * parallel passes (pack A, compute) with no barrier per K block. Each C element is summed
 * K block after K block, in the same order for any grouping, and every size depends on
 * (M, N, K, ISA) only, never on the thread count. */
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/gemm_kernels.h"
#include "tensor/cpu/isa.h"
#include "tensor/cpu/scratch.h"
#include "base/threadpool.h"
#include "base/status.h"
#include <string.h>

typedef struct {
  vg_gemm_ukr ukr;
  int mr, nr;
  int64_t kc_max, mc_max, ng_max;
} vg_gemm_cfg;

static int scalar_mr = 4, scalar_nr = 8;

static void ukr_scalar_4x8(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                           int m, int n, float alpha, float beta, const float *bias) {
  float acc[4][8] = {{0}};
  for (int64_t k = 0; k < kc; k++, a += 4, b += 8)
    for (int r = 0; r < 4; r++)
      for (int j = 0; j < 8; j++) acc[r][j] += a[r] * b[j];
  vg_gemm_store_tile(&acc[0][0], 8, c, ldc, m, n, alpha, beta, bias);
}

/* Any scalar_mr x scalar_nr tile (the testing hook). */
static void ukr_scalar_any(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                           int m, int n, float alpha, float beta, const float *bias) {
  float acc[16 * 32];
  const int mr = scalar_mr, nr = scalar_nr;
  memset(acc, 0, sizeof acc);
  for (int64_t k = 0; k < kc; k++, a += mr, b += nr)
    for (int r = 0; r < mr; r++)
      for (int j = 0; j < nr; j++) acc[r * nr + j] += a[r] * b[j];
  vg_gemm_store_tile(acc, nr, c, ldc, m, n, alpha, beta, bias);
}

void vg_gemm_set_scalar_tile(int mr, int nr) {
  if (mr <= 0 || nr <= 0) { scalar_mr = 4; scalar_nr = 8; return; }
  VG_ASSERT(mr <= 16 && nr <= 32 && "scalar GEMM tile is at most 16 x 32");
  scalar_mr = mr; scalar_nr = nr;
}

static vg_gemm_cfg pick_cfg(void) {
  vg_gemm_cfg c;
  switch (vg_cpu_isa()) {
    case VG_ISA_AVX512:
      c = (vg_gemm_cfg){vg_gemm_ukr_avx512, VG_UKR_AVX512_MR, VG_UKR_AVX512_NR, 256, 144, 512};
      return c;
    case VG_ISA_AVX2:
      c = (vg_gemm_cfg){vg_gemm_ukr_avx2, VG_UKR_AVX2_MR, VG_UKR_AVX2_NR, 256, 144, 512};
      return c;
    case VG_ISA_SCALAR:
      break;
  }
  if (scalar_mr == 4 && scalar_nr == 8)
    c = (vg_gemm_cfg){ukr_scalar_4x8, 4, 8, 256, 128, 256};
  else
    c = (vg_gemm_cfg){ukr_scalar_any, scalar_mr, scalar_nr, 256, 12 * scalar_mr, 8 * scalar_nr};
  return c;
}

void vg_gemm_tile(int *mr, int *nr) {
  vg_gemm_cfg c = pick_cfg();
  *mr = c.mr; *nr = c.nr;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
/* Block size for cutting `total` into equal blocks of at most `max`, rounded up to `unit`. */
static int64_t balanced(int64_t total, int64_t max, int64_t unit) {
  int64_t nb = cdiv(total, max);
  return cdiv(cdiv(total, nb), unit) * unit;
}

void vg_gemm_pack_strided(const void *ctx, int64_t x0, int64_t xn, int64_t k0, int64_t kc,
                          int w, float *dst) {
  const vg_gemm_strided *s = ctx;
  const int64_t sx = s->sx, sk = s->sk;
  for (int64_t s0 = 0; s0 < xn; s0 += w, dst += kc * w) {
    int nv = (int)min64(w, xn - s0);
    const float *base = s->p + (x0 + s0) * sx + k0 * sk;
    if (sx == 1) {
      for (int64_t k = 0; k < kc; k++) {
        memcpy(dst + k * w, base + k * sk, (size_t)nv * sizeof(float));
        for (int t = nv; t < w; t++) dst[k * w + t] = 0.0f;
      }
    } else {
      for (int t = 0; t < nv; t++) {
        const float *row = base + t * sx;
        if (sk == 1)
          for (int64_t k = 0; k < kc; k++) dst[k * w + t] = row[k];
        else
          for (int64_t k = 0; k < kc; k++) dst[k * w + t] = row[k * sk];
      }
      for (int t = nv; t < w; t++)
        for (int64_t k = 0; k < kc; k++) dst[k * w + t] = 0.0f;
    }
  }
}

typedef struct {
  const vg_gemm_problem *p;
  vg_gemm_cfg cfg;
  int64_t kcb, nk;               /* K block size, number of K blocks */
  int64_t mcb, mblocks;          /* M block size (a multiple of mr), number of M blocks */
  int64_t ngb, ngroups;          /* N group size (a multiple of nr), number of N groups */
  int64_t msplit;                /* M ranges per N group (1 unless N is small) */
  float *ap;                     /* packed A: block (mb, kb) at (mb * nk + kb) * mcb * kcb */
} vg_gemm_plan;

/* Packs A block (mb, kb) for t = mb * nk + kb. */
static void pack_a_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_gemm_plan *s = vctx;
  const vg_gemm_problem *p = s->p;
  for (int64_t t = b; t < e; t++) {
    int64_t i0 = (t / s->nk) * s->mcb, k0 = (t % s->nk) * s->kcb;
    p->pack_a(p->a_ctx, i0, min64(s->mcb, p->M - i0), p->k_begin + k0, min64(s->kcb, p->K - k0),
              s->cfg.mr, s->ap + t * s->mcb * s->kcb);
  }
}

/* the fused ReLU on an m x n tile of C just written: v <= 0 ? 0 : v keeps NaN (the
 * compare is false) as vg_relu does, and vectorises (compare + mask) */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize")))   /* GCC's -O2 does not vectorise this loop */
#endif
static void relu_tile(float *c, int64_t ldc, int m, int n) {
  for (int r = 0; r < m; r++) {
    float *row = c + r * ldc;
    for (int j = 0; j < n; j++) row[j] = row[j] <= 0.0f ? 0.0f : row[j];
  }
}

/* Task t = (N group g, M range r): for each K block in order, pack the group's B slivers
 * into this thread's scratch and run the micro-kernel over the range's packed A blocks. */
static void compute_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_gemm_plan *s = vctx;
  const vg_gemm_problem *p = s->p;
  const int mr = s->cfg.mr, nr = s->cfg.nr;
  float *bp = vg_cpu_scratch(VG_SCRATCH_GEMM_B, (size_t)(s->kcb * s->ngb));
  for (int64_t t = b; t < e; t++) {
    const int64_t g = t / s->msplit, r = t % s->msplit;
    const int64_t j0 = g * s->ngb, ng = min64(s->ngb, p->N - j0);
    const int64_t mb0 = r * s->mblocks / s->msplit, mb1 = (r + 1) * s->mblocks / s->msplit;
    for (int64_t kb = 0; kb < s->nk; kb++) {
      const int64_t k0 = kb * s->kcb, kc = min64(s->kcb, p->K - k0);
      const float beta = kb == 0 ? p->beta : 1.0f;
      const float *bias = kb == 0 ? p->row_bias : NULL;
      p->pack_b(p->b_ctx, j0, ng, p->k_begin + k0, kc, nr, bp);
      for (int64_t mb = mb0; mb < mb1; mb++) {
        const int64_t i0 = mb * s->mcb, mc = min64(s->mcb, p->M - i0);
        const float *ap = s->ap + (mb * s->nk + kb) * s->mcb * s->kcb;
        for (int64_t jj = 0; jj < ng; jj += nr) {
          int n = (int)min64(nr, ng - jj);
          const float *bs = bp + jj / nr * kc * nr;
          float *cj = p->C + j0 + jj;
          for (int64_t ii = 0; ii < mc; ii += mr) {
            int m = (int)min64(mr, mc - ii);
            s->cfg.ukr(kc, ap + ii * kc, bs, cj + (i0 + ii) * p->ldc, p->ldc, m, n, p->alpha, beta,
                       bias ? bias + i0 + ii : NULL);
            if (p->relu && kb == s->nk - 1) relu_tile(cj + (i0 + ii) * p->ldc, p->ldc, m, n);
          }
        }
      }
    }
  }
}

/* Runs fn over [0, n) on the pool, or inline for small problems (same chunks, same
 * results: parallelism never changes what a chunk computes). */
static void run_range(int serial, int64_t n, int64_t grain, vg_range_fn fn, void *ctx) {
  if (serial) fn(ctx, 0, n, 0);
  else vg_parallel_for(n, grain, fn, ctx);
}

static void scale_c(const vg_gemm_problem *p) {
  for (int64_t i = 0; i < p->M; i++) {
    float *c = p->C + i * p->ldc, b = p->row_bias ? p->row_bias[i] : 0.0f;
    if (p->beta == 0.0f)
      for (int64_t j = 0; j < p->N; j++) c[j] = b;
    else
      for (int64_t j = 0; j < p->N; j++) c[j] = p->beta * c[j] + b;
    if (p->relu) relu_tile(c, p->ldc, 1, (int)p->N);
  }
}

#define VG_GEMM_TASKS 32         /* tasks to aim for (load balance); never thread-dependent */

void vg_gemm_run(const vg_gemm_problem *p) {
  VG_ASSERT(p->M >= 0 && p->N >= 0 && p->K >= 0);
  if (p->M == 0 || p->N == 0) return;
  if (p->K == 0 || p->alpha == 0.0f) { scale_c(p); return; }
  vg_gemm_plan s = {.p = p, .cfg = pick_cfg()};
  const int mr = s.cfg.mr, nr = s.cfg.nr;
  const int serial = (double)p->M * p->N * p->K < 48.0 * 48 * 48;
  s.kcb = balanced(p->K, s.cfg.kc_max, 1);
  s.nk = cdiv(p->K, s.kcb);
  s.mcb = balanced(p->M, s.cfg.mc_max, mr);
  s.mblocks = cdiv(p->M, s.mcb);
  /* N groups of at most ng_max columns, narrower (down to 4 slivers) when that leaves
   * fewer than VG_GEMM_TASKS groups; then M ranges when N is still too narrow */
  s.ngb = balanced(p->N, s.cfg.ng_max, nr);
  if (cdiv(p->N, s.ngb) < VG_GEMM_TASKS) {
    int64_t narrow = cdiv(cdiv(p->N, VG_GEMM_TASKS), nr) * nr;
    s.ngb = min64(s.ngb, narrow > 4 * nr ? narrow : 4 * nr);
  }
  s.ngroups = cdiv(p->N, s.ngb);
  s.msplit = s.ngroups >= VG_GEMM_TASKS ? 1 : min64(s.mblocks, cdiv(VG_GEMM_TASKS, s.ngroups));
  /* A is packed once, all blocks, on the caller's A scratch (the tasks read it) */
  s.ap = vg_cpu_scratch(VG_SCRATCH_GEMM_A, (size_t)(s.mblocks * s.nk * s.mcb * s.kcb));
  run_range(serial, s.mblocks * s.nk, 1, pack_a_task, &s);
  run_range(serial, s.ngroups * s.msplit, 1, compute_task, &s);
}

void vg_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc) {
  vg_gemm_strided sa = {A, trans_a ? 1 : lda, trans_a ? lda : 1};
  vg_gemm_strided sb = {B, trans_b ? ldb : 1, trans_b ? 1 : ldb};
  vg_gemm_problem p = {.M = M, .N = N, .K = K, .pack_a = vg_gemm_pack_strided, .a_ctx = &sa,
                       .pack_b = vg_gemm_pack_strided, .b_ctx = &sb, .alpha = alpha,
                       .beta = beta, .C = C, .ldc = ldc};
  vg_gemm_run(&p);
}

void vg_sgemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                  float *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; k++) {
        float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += (double)a * (double)b;
      }
      float *c = &C[i * ldc + j];
      *c = beta == 0.0f ? (float)(alpha * acc) : (float)(alpha * acc + (double)beta * *c);
    }
}
