/* The GEMM driver, the strided packer, the scalar micro-kernel and the reference
 * triple loop.
 *
 * Blocking: K is cut into balanced blocks of at most KC, M into balanced blocks of at
 * most MC rounded to MR, N into groups of at most NG columns. A is packed once, every
 * (M block, K block), before the tasks start. One task = one N group (or, when N is
 * narrow, one N group x a range of M blocks): for each K block in order it packs its B
 * slivers (the B panel, KC x NG, stays in L2) into its thread's scratch, then for each
 * A sliver of its M range (MR x KC, the broadcast operand, stays in L1) runs the
 * micro-kernel across the panel's B slivers (streamed from L2). One GEMM is two parallel
 * passes (pack A, compute) with no barrier per K block. Each C element is summed K block
 * after K block whatever task computes it, and the K blocks depend on (K, ISA) only, so
 * results never depend on the thread count (the task split does, for load balance). */
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/gemm_kernels.h"
#include "tensor/cpu/isa.h"
#include "tensor/cpu/scratch.h"
#include "base/threadpool.h"
#include "base/status.h"
#include <string.h>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

typedef struct {
  vg_gemm_ukr ukr;
  int mr, nr;
  int64_t kc_max, mc_max, ng_max;
  int64_t ng_min;                /* narrowest N group when narrowing for more tasks */
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
      /* A sliver 12 x 512 (24 KiB, L1), B panel 512 x 512 (1 MiB, L2); kc 512 rather than
       * 384: gemm_2048 at 2 threads 88-89% -> 92-93% of the FMA peak (fewer C tile
       * reloads), conv layers the same or faster (make bench, the side-by-side rows) */
      c = (vg_gemm_cfg){vg_gemm_ukr_avx512, VG_UKR_AVX512_MR, VG_UKR_AVX512_NR, 512, 144, 512, 256};
      return c;
    case VG_ISA_AVX2:
      c = (vg_gemm_cfg){vg_gemm_ukr_avx2, VG_UKR_AVX2_MR, VG_UKR_AVX2_NR, 384, 144, 512, 128};
      return c;
    case VG_ISA_SCALAR:
      break;
  }
  if (scalar_mr == 4 && scalar_nr == 8)
    c = (vg_gemm_cfg){ukr_scalar_4x8, 4, 8, 256, 128, 256, 32};
  else
    c = (vg_gemm_cfg){ukr_scalar_any, scalar_mr, scalar_nr, 384, 12 * scalar_mr, 16 * scalar_nr,
                      8 * scalar_nr};
  return c;
}

void vg_gemm_tile(int *mr, int *nr) {
  vg_gemm_cfg c = pick_cfg();
  *mr = c.mr; *nr = c.nr;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t gcd64(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}
/* Block size for cutting `total` into equal blocks of at most `max`, rounded up to `unit`. */
static int64_t balanced(int64_t total, int64_t max, int64_t unit) {
  int64_t nb = cdiv(total, max);
  return cdiv(cdiv(total, nb), unit) * unit;
}

void vg_gemm_pack_strided(const void *ctx, int64_t x0, int64_t xn, int64_t k0, int64_t kc,
                          int w, float *dst) {
  const vg_gemm_strided *s = ctx;
  const int64_t sx = s->sx, sk = s->sk;
  if (sx == 1 && xn >= w && (w == 32 || w == 16 || w == 8)) {
    /* the full slivers k row by k row: each source row is read as one contiguous run
     * (what the hardware prefetchers follow), the slivers are written as parallel streams */
    const int64_t full = xn / w;
    for (int64_t k = 0; k < kc; k++) {
      const float *src = s->p + x0 + (k0 + k) * sk;
      float *d = dst + k * w;
      if (w == 32)
        for (int64_t q = 0; q < full; q++) memcpy(d + q * kc * 32, src + q * 32, 32 * sizeof(float));
      else if (w == 16)
        for (int64_t q = 0; q < full; q++) memcpy(d + q * kc * 16, src + q * 16, 16 * sizeof(float));
      else
        for (int64_t q = 0; q < full; q++) memcpy(d + q * kc * 8, src + q * 8, 8 * sizeof(float));
    }
    x0 += full * w; xn -= full * w; dst += full * kc * w;
  }
  for (int64_t s0 = 0; s0 < xn; s0 += w, dst += kc * w) {
    int nv = (int)min64(w, xn - s0);
    const float *base = s->p + (x0 + s0) * sx + k0 * sk;
    if (sx == 1) {
      /* full slivers of the micro-kernels' widths: fixed-size copies (inlined moves) */
#define VG_COPY_ROWS(W) for (int64_t k = 0; k < kc; k++) \
          memcpy(dst + k * (W), base + k * sk, (W) * sizeof(float));
      if (nv == 32 && w == 32) { VG_COPY_ROWS(32) }
      else if (nv == 16 && w == 16) { VG_COPY_ROWS(16) }
      else if (nv == 8 && w == 8) { VG_COPY_ROWS(8) }
      else
        for (int64_t k = 0; k < kc; k++) {
          memcpy(dst + k * w, base + k * sk, (size_t)nv * sizeof(float));
          for (int t = nv; t < w; t++) dst[k * w + t] = 0.0f;
        }
#undef VG_COPY_ROWS
    } else if (sk == 1 && nv == w && w % 4 == 0) {
      /* row-major rows into k-major slivers, 4 rows x 4 k at a time through 4x4
       * transposes (the A operand of C = A B, the B operand of C = A B^T) */
      int64_t k = 0;
#if defined(__SSE2__)
      for (; k + 4 <= kc; k += 4)
        for (int t = 0; t < w; t += 4) {
          const float *r0 = base + t * sx + k;
          __m128 x0 = _mm_loadu_ps(r0), x1 = _mm_loadu_ps(r0 + sx);
          __m128 x2 = _mm_loadu_ps(r0 + 2 * sx), x3 = _mm_loadu_ps(r0 + 3 * sx);
          _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
          float *d = dst + k * w + t;
          _mm_storeu_ps(d, x0); _mm_storeu_ps(d + w, x1);
          _mm_storeu_ps(d + 2 * w, x2); _mm_storeu_ps(d + 3 * w, x3);
        }
#endif
      for (; k < kc; k++)
        for (int t = 0; t < w; t++) dst[k * w + t] = base[t * sx + k];
    } else if (sk == 1 && nv <= 32) {
      /* row-major rows into k-major slivers: k outer, so the stores run contiguously
       * while the nv source rows stream */
      const float *rows[32];
      for (int t = 0; t < nv; t++) rows[t] = base + t * sx;
      float *d = dst;
      for (int64_t k = 0; k < kc; k++, d += w) {
        for (int t = 0; t < nv; t++) d[t] = rows[t][k];
        for (int t = nv; t < w; t++) d[t] = 0.0f;
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
  int64_t gstep;                 /* task order: group (i * gstep) mod ngroups (1: in order) */
  float *ap;                     /* packed A: block (mb, kb) at (mb * nk + kb) * mcb * kcb */
  const float *bpr;              /* prepacked B (vg_gemm_pack_b, past its header) or NULL */
  int64_t nsl;                   /* B slivers over N (prepacked B) */
  const float *apr;              /* the packed A the tasks read: ap, or the caller's */
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
  float *bp = s->bpr ? NULL : vg_cpu_scratch(VG_SCRATCH_GEMM_B, (size_t)(s->kcb * s->ngb));
  for (int64_t t = b; t < e; t++) {
    const int64_t g = (t / s->msplit) * s->gstep % s->ngroups, r = t % s->msplit;
    const int64_t j0 = g * s->ngb, ng = min64(s->ngb, p->N - j0);
    const int64_t mb0 = r * s->mblocks / s->msplit, mb1 = (r + 1) * s->mblocks / s->msplit;
    for (int64_t kb = 0; kb < s->nk; kb++) {
      const int64_t k0 = kb * s->kcb, kc = min64(s->kcb, p->K - k0);
      const float beta = kb == 0 ? p->beta : 1.0f;
      const float *bias = kb == 0 ? p->row_bias : NULL;
      if (s->bpr) bp = (float *)(s->bpr + k0 * s->nsl * nr + j0 * kc);   /* j0 is a multiple of nr */
      else p->pack_b(p->b_ctx, j0, ng, p->k_begin + k0, kc, nr, bp);
      for (int64_t mb = mb0; mb < mb1; mb++) {
        const int64_t i0 = mb * s->mcb, mc = min64(s->mcb, p->M - i0);
        const float *ap = s->apr + (mb * s->nk + kb) * s->mcb * s->kcb;
        /* A sliver (mr x kc, the broadcast operand) stays in L1 while the group's B
         * slivers stream from L2 (the B panel, kc x ngb, fits L2) */
        for (int64_t ii = 0; ii < mc; ii += mr) {
          const int m = (int)min64(mr, mc - ii);
          const float *as = ap + ii * kc;
          float *ci = p->C + (i0 + ii) * p->ldc + j0;
          const float *bi = bias ? bias + i0 + ii : NULL;
          for (int64_t jj = 0; jj < ng; jj += nr) {
            const int n = (int)min64(nr, ng - jj);
            s->cfg.ukr(kc, as, bp + jj / nr * kc * nr, ci + jj, p->ldc, m, n, p->alpha, beta, bi);
            if (p->relu && kb == s->nk - 1) relu_tile(ci + jj, p->ldc, m, n);
            if (p->epi && kb == s->nk - 1) p->epi(p->epi_ctx, ci + jj, p->ldc, i0 + ii, j0 + jj, m, n);
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
    if (p->epi) p->epi(p->epi_ctx, c, p->ldc, i, 0, 1, (int)p->N);
  }
}

/* Asks for transparent huge pages on a big packed buffer (fewer TLB misses while the
 * tasks stream it); a hint only, ignored where unsupported. */
static void hugepage_hint(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t b = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
  if (e > b) (void)madvise((void *)b, e - b, MADV_HUGEPAGE);
#else
  (void)p; (void)bytes;
#endif
}

/* Tasks to aim for: two per thread balance the load while keeping the N groups wide (each
 * packed B panel serves a long run of A slivers) and B packed once. The split never changes
 * a result: every C element is summed K block after K block, whatever task computes it. */
static int64_t task_target(void) { return 2 * (int64_t)vg_num_threads(); }

/* The K and M blocking: (M, K, ISA) only, the packed A layout. */
static void plan_a(vg_gemm_plan *s, int64_t M, int64_t K) {
  s->cfg = pick_cfg();
  s->kcb = balanced(K > 0 ? K : 1, s->cfg.kc_max, 1);
  s->nk = cdiv(K, s->kcb);
  s->mcb = balanced(M > 0 ? M : 1, s->cfg.mc_max, s->cfg.mr);
  s->mblocks = cdiv(M, s->mcb);
}

/* A prepacked buffer starts with a header naming its layout, checked before use. */
#define VG_GEMM_HDR 16           /* floats (64 bytes: the blocks stay aligned) */
typedef struct { int64_t magic, M, K, mr, kcb, mcb; } vg_gemm_hdr;
#define VG_GEMM_MAGIC 0x56475041434b4131ll

size_t vg_gemm_packed_a_floats(int64_t M, int64_t K) {
  VG_ASSERT(M >= 0 && K >= 0);
  vg_gemm_plan s;
  plan_a(&s, M, K);
  return (size_t)(VG_GEMM_HDR + s.mblocks * s.nk * s.mcb * s.kcb);
}

void vg_gemm_pack_a(const vg_gemm_problem *p, float *dst) {
  VG_ASSERT(p->M >= 0 && p->K >= 0);
  vg_gemm_plan s = {.p = p};
  plan_a(&s, p->M, p->K);
  const vg_gemm_hdr h = {VG_GEMM_MAGIC, p->M, p->K, s.cfg.mr, s.kcb, s.mcb};
  _Static_assert(sizeof h <= VG_GEMM_HDR * sizeof(float), "GEMM pack header fits");
  memcpy(dst, &h, sizeof h);
  s.ap = dst + VG_GEMM_HDR;
  run_range((double)p->M * p->K < 64.0 * 1024, s.mblocks * s.nk, 1, pack_a_task, &s);
}

/* Prepacked B: K block kb (rows k0.., kc of them) holds the nsl = ceil(N / nr) slivers of
 * all of N, sliver t at (k0 * nsl + t * kc) * nr: a task's N group is one contiguous run. */
typedef struct { int64_t magic, N, K, nr, kcb; } vg_gemm_bhdr;
#define VG_GEMM_MAGIC_B 0x56475041434b4232ll

size_t vg_gemm_packed_b_floats(int64_t N, int64_t K) {
  VG_ASSERT(N >= 0 && K >= 0);
  const vg_gemm_cfg c = pick_cfg();
  return (size_t)(VG_GEMM_HDR + cdiv(N, c.nr) * c.nr * K);
}

typedef struct { const vg_gemm_problem *p; int64_t kcb, nk, nsl, per; int nr; float *dst; } pack_b_plan;

/* task t = (K block t / chunks, chunk of `per` slivers) */
static void pack_b_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const pack_b_plan *s = vctx;
  const int64_t chunks = cdiv(s->nsl, s->per);
  for (int64_t t = b; t < e; t++) {
    const int64_t kb = t / chunks, c = t % chunks;
    const int64_t k0 = kb * s->kcb, kc = min64(s->kcb, s->p->K - k0);
    const int64_t j0 = c * s->per * s->nr, jn = min64(s->per * s->nr, s->p->N - j0);
    s->p->pack_b(s->p->b_ctx, j0, jn, s->p->k_begin + k0, kc, s->nr, s->dst + k0 * s->nsl * s->nr + j0 * kc);
  }
}

void vg_gemm_pack_b(const vg_gemm_problem *p, float *dst) {
  VG_ASSERT(p->N >= 0 && p->K >= 0);
  vg_gemm_plan s;
  plan_a(&s, 1, p->K);
  const vg_gemm_bhdr h = {VG_GEMM_MAGIC_B, p->N, p->K, s.cfg.nr, s.kcb};
  _Static_assert(sizeof h <= VG_GEMM_HDR * sizeof(float), "GEMM pack header fits");
  memcpy(dst, &h, sizeof h);
  if (p->N == 0 || p->K == 0) return;
  pack_b_plan b = {.p = p, .kcb = s.kcb, .nk = s.nk, .nsl = cdiv(p->N, s.cfg.nr), .nr = s.cfg.nr,
                   .dst = dst + VG_GEMM_HDR};
  b.per = cdiv(b.nsl, 8);
  run_range((double)p->N * p->K < 64.0 * 1024, b.nk * cdiv(b.nsl, b.per), 1, pack_b_task, &b);
}

const float *vg_gemm_packed_a_sliver(const float *pa, int64_t i) {
  vg_gemm_hdr h;
  memcpy(&h, pa, sizeof h);
  VG_ASSERT(h.magic == VG_GEMM_MAGIC && h.kcb >= h.K && i % h.mr == 0 && i < h.M &&
            "vg_gemm_packed_a_sliver: one K block, a sliver's first row");
  /* block mb = i / mcb at mb * mcb * K, sliver ii = i % mcb at ii * K: i * K in all */
  return pa + VG_GEMM_HDR + i * h.K;
}

int vg_gemm_packed_b_fits(const float *pb, int64_t N, int64_t K) {
  if (!pb) return 0;
  vg_gemm_plan s;
  plan_a(&s, 1, K);
  vg_gemm_bhdr h;
  memcpy(&h, pb, sizeof h);
  return h.magic == VG_GEMM_MAGIC_B && h.N == N && h.K == K && h.nr == s.cfg.nr && h.kcb == s.kcb;
}

#define VG_GEMM_SHARED_B (4.0 * 1024 * 1024)   /* floats: B packed whole when no bigger (16 MiB) */

int64_t vg_gemm_spread_step(int64_t count) {
  if (count < 4) return 1;
  int64_t st = count / 2 + 1;
  while (gcd64(st, count) != 1) st++;
  return st;
}

void vg_gemm_run(const vg_gemm_problem *p) {
  VG_ASSERT(p->M >= 0 && p->N >= 0 && p->K >= 0);
  if (p->M == 0 || p->N == 0) return;
  if (p->K == 0 || p->alpha == 0.0f) { scale_c(p); return; }
  vg_gemm_plan s = {.p = p};
  plan_a(&s, p->M, p->K);
  const int nr = s.cfg.nr;
  const int serial = (double)p->M * p->N * p->K < 48.0 * 48 * 48;
  /* N groups of at most ng_max columns, narrower (down to ng_min) when that leaves
   * fewer groups than tasks wanted; then M ranges when N is still too narrow */
  const int64_t tasks = serial ? 1 : task_target();
  s.ngb = balanced(p->N, s.cfg.ng_max, nr);
  if (cdiv(p->N, s.ngb) < tasks) {
    int64_t narrow = cdiv(cdiv(p->N, tasks), nr) * nr;
    s.ngb = min64(s.ngb, narrow > s.cfg.ng_min ? narrow : s.cfg.ng_min);
  }
  s.ngroups = cdiv(p->N, s.ngb);
  s.msplit = s.ngroups >= tasks ? 1 : min64(s.mblocks, cdiv(tasks, s.ngroups));
  /* C rows that do not start on a cache line (a conv output of 259 x 259 pixels): two
   * neighbouring N groups share a line in every row, and the pool's threads take tasks
   * in order, so neighbours ran at the same time and passed those lines back and forth
   * (PDN conv1 at 2 threads: 65-72 % of the peak, 68-76 % with this). The groups are
   * taken in steps of about half their number instead (a step coprime with the count:
   * each group once), so the tasks that run together lie far apart. The order of the
   * tasks never changes a result. */
  s.gstep = p->ldc % 16 || ((uintptr_t)p->C & 63) ? vg_gemm_spread_step(s.ngroups) : 1;
  if (p->a_packed) {             /* packed by vg_gemm_pack_a, for this layout */
    vg_gemm_hdr h;
    memcpy(&h, p->a_packed, sizeof h);
    VG_ASSERT(h.magic == VG_GEMM_MAGIC && h.M == p->M && h.K == p->K && h.mr == s.cfg.mr &&
              h.kcb == s.kcb && h.mcb == s.mcb && "a_packed: from vg_gemm_pack_a for this M, K, ISA");
    s.apr = p->a_packed + VG_GEMM_HDR;
  } else {
    /* A is packed once, all blocks, on the caller's A scratch (the tasks read it) */
    s.ap = vg_cpu_scratch(VG_SCRATCH_GEMM_A, (size_t)(s.mblocks * s.nk * s.mcb * s.kcb));
    hugepage_hint(s.ap, (size_t)(s.mblocks * s.nk * s.mcb * s.kcb) * sizeof(float));
    run_range(serial, s.mblocks * s.nk, 1, pack_a_task, &s);
    s.apr = s.ap;
  }
  if (p->b_packed) {             /* packed by vg_gemm_pack_b, for this layout */
    VG_ASSERT(((uintptr_t)p->b_packed & 63) == 0 && "b_packed: 64-byte aligned");
    VG_ASSERT(vg_gemm_packed_b_fits(p->b_packed, p->N, p->K) &&
              "b_packed: from vg_gemm_pack_b for this N, K, ISA");
    s.bpr = p->b_packed + VG_GEMM_HDR;
    s.nsl = cdiv(p->N, nr);
  } else if (s.msplit > 1 && (double)p->N * p->K <= VG_GEMM_SHARED_B) {
    /* N too narrow for one group per task: the M-split tasks of a group would each pack
     * the same B panels, so B is packed once, on the pool, and shared (same sums) */
    float *pb = vg_cpu_scratch(VG_SCRATCH_GEMM_BP, vg_gemm_packed_b_floats(p->N, p->K));
    vg_gemm_pack_b(p, pb);
    s.bpr = pb + VG_GEMM_HDR;
    s.nsl = cdiv(p->N, nr);
  }
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
