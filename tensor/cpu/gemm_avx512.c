/* The AVX-512 micro-kernel: 12 x 32 tile, 24 zmm accumulators, 2 B loads and 12
 * broadcasts per k step. Same epilogue arithmetic as gemm_avx2.c and vg_gemm_store_tile
 * (alpha * acc, + beta * C, + bias, in that order), so only the register tile differs.
 *
 * Edge tiles stay vectorised: a tile of m <= 8 (or m <= 4) rows runs an 8-row (4-row)
 * body that skips the FMAs of the missing rows, and a tile narrower than 32 columns
 * reads and writes C through lane masks. Every C element is summed in the same order
 * (k ascending, one FMA chain) whatever body computes it: bit-identical results.
 *
 * Prefetching: C is fetched PF_AHEAD k steps before the end of the k loop (early
 * enough to hide an L2/L3 miss, late enough that the streamed B sliver, kc x 32 floats,
 * more than L1 for big kc, does not evict it first). */
#include "tensor/cpu/gemm_kernels.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define VG_ROWS4(X) X(0) X(1) X(2) X(3)
#define VG_ROWS8(X) VG_ROWS4(X) X(4) X(5) X(6) X(7)
#define VG_ROWS12(X) VG_ROWS8(X) X(8) X(9) X(10) X(11)

enum { PF_AHEAD = 24 };

/* The body for a tile of at most ROWS rows (ROWS = 12, 8 or 4; a[] keeps the 12-row
 * packing stride). */
#define VG_UKR_BODY(ROWS)                                                                        \
  ROWS(DECL)                                                                                   \
  int64_t k = 0;                                                                               \
  const int64_t kpf = kc > PF_AHEAD ? kc - PF_AHEAD : 0;                                       \
  for (; k + 4 <= kpf; k += 4) { KSTEP(ROWS) KSTEP(ROWS) KSTEP(ROWS) KSTEP(ROWS) }             \
  for (; k < kpf; k++) KSTEP(ROWS)                                                             \
  for (int r = 0; r < m; r++) {                                                                \
    const char *cr = (const char *)(c + r * ldc);                                              \
    _mm_prefetch(cr, _MM_HINT_T0);                                                             \
    _mm_prefetch(cr + 64, _MM_HINT_T0);                                                        \
    _mm_prefetch(cr + 124, _MM_HINT_T0);                                                       \
  }                                                                                            \
  for (; k + 4 <= kc; k += 4) { KSTEP(ROWS) KSTEP(ROWS) KSTEP(ROWS) KSTEP(ROWS) }              \
  for (; k < kc; k++) KSTEP(ROWS)                                                              \
  /* alpha == 1 skips the multiply, beta == 1 too (x * 1 == x exactly: same results) */       \
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                          \
  const int scale = alpha != 1.0f, acc_c = beta != 0.0f, scale_c = beta != 1.0f;              \
  if (n == 32) {                                                                               \
    ROWS(OUT_FULL)                                                                             \
  } else {                                                                                     \
    const __mmask16 k0 = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);                        \
    const __mmask16 k1 = (__mmask16)(n <= 16 ? 0 : (1u << (n - 16)) - 1);                      \
    ROWS(OUT_MASK)                                                                             \
  }

#define DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
#define STEP(r) { __m512 av = _mm512_set1_ps(a[r]); \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0); c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1); }
#define KSTEP(ROWS) { __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16); \
    ROWS(STEP) a += 12; b += 32; }
#define EPI(r, o0, o1) \
    __m512 v0 = c##r##0, v1 = c##r##1; \
    if (scale) { v0 = _mm512_mul_ps(va, v0); v1 = _mm512_mul_ps(va, v1); } \
    if (acc_c) { if (scale_c) { o0 = _mm512_mul_ps(vb, o0); o1 = _mm512_mul_ps(vb, o1); } \
                 v0 = _mm512_add_ps(v0, o0); v1 = _mm512_add_ps(v1, o1); } \
    if (bias) { __m512 bb = _mm512_set1_ps(bias[r]); v0 = _mm512_add_ps(v0, bb); v1 = _mm512_add_ps(v1, bb); }
#define OUT_FULL(r) if ((r) < m) { float *cr = c + (r) * ldc; \
    __m512 o0 = _mm512_setzero_ps(), o1 = o0; \
    if (acc_c) { o0 = _mm512_loadu_ps(cr); o1 = _mm512_loadu_ps(cr + 16); } \
    EPI(r, o0, o1) \
    _mm512_storeu_ps(cr, v0); _mm512_storeu_ps(cr + 16, v1); }
#define OUT_MASK(r) if ((r) < m) { float *cr = c + (r) * ldc; \
    __m512 o0 = _mm512_setzero_ps(), o1 = o0; \
    if (acc_c) { o0 = _mm512_maskz_loadu_ps(k0, cr); o1 = _mm512_maskz_loadu_ps(k1, cr + 16); } \
    EPI(r, o0, o1) \
    _mm512_mask_storeu_ps(cr, k0, v0); _mm512_mask_storeu_ps(cr + 16, k1, v1); }

#define VG_UKR_FN(NAME, ROWS)                                                                    \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))                                  \
  static void NAME(int64_t kc, const float *restrict a, const float *restrict b,               \
                   float *restrict c, int64_t ldc, int m, int n, float alpha, float beta,       \
                   const float *bias) {                                                         \
    VG_UKR_BODY(ROWS)                                                                          \
  }
VG_UKR_FN(ukr_rows12, VG_ROWS12)
VG_UKR_FN(ukr_rows8, VG_ROWS8)
VG_UKR_FN(ukr_rows4, VG_ROWS4)

void vg_gemm_ukr_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m,
                        int n, float alpha, float beta, const float *bias) {
  if (m > 8) ukr_rows12(kc, a, b, c, ldc, m, n, alpha, beta, bias);
  else if (m > 4) ukr_rows8(kc, a, b, c, ldc, m, n, alpha, beta, bias);
  else ukr_rows4(kc, a, b, c, ldc, m, n, alpha, beta, bias);
}
#else
void vg_gemm_ukr_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                        int m, int n, float alpha, float beta, const float *bias) {
  (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)m; (void)n; (void)alpha; (void)beta; (void)bias;
}
#endif
