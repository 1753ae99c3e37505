/* The direct convolution's AVX-512 micro-kernel (see conv_direct.h): 12 x 32 tile, 24 zmm
 * accumulators, per tap 2 unaligned loads from the padded plane and 12 broadcasts. The
 * epilogue is gemm_avx512.c's for alpha 1, beta 0 (+ bias), then the GEMM's fused ReLU
 * (v <= 0 ? 0 : v: an ordered compare, so NaN stays), so the floats are the GEMM path's.
 * A tile of at most 8 (4) rows runs an 8-row (4-row) body; a[] keeps the 12-row stride.
 * The tile's output lines are prefetched before the tap loop (about a microsecond of
 * FMAs hides a miss to DRAM). */
#include "tensor/cpu/conv_direct.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define CD_ROWS4(X) X(0) X(1) X(2) X(3)
#define CD_ROWS8(X) CD_ROWS4(X) X(4) X(5) X(6) X(7)
#define CD_ROWS12(X) CD_ROWS8(X) X(8) X(9) X(10) X(11)

#define CD_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
#define CD_STEP(r) { const __m512 av = _mm512_set1_ps(a[r]); \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0); c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1); }
#define CD_TAP(ROWS, kk) { const float *xk = x + off[kk]; \
    const __m512 b0 = _mm512_loadu_ps(xk), b1 = _mm512_loadu_ps(xk + 16); ROWS(CD_STEP) a += 12; }
#define CD_FIN(r) if ((r) < m && bias) { const __m512 bb = _mm512_set1_ps(bias[r]); \
      c##r##0 = _mm512_add_ps(c##r##0, bb); c##r##1 = _mm512_add_ps(c##r##1, bb); } \
    if (relu) { c##r##0 = _mm512_mask_mov_ps(c##r##0, _mm512_cmp_ps_mask(c##r##0, zero, _CMP_LE_OQ), zero); \
                c##r##1 = _mm512_mask_mov_ps(c##r##1, _mm512_cmp_ps_mask(c##r##1, zero, _CMP_LE_OQ), zero); }
#define CD_ST_FULL(r) if ((r) < m) { float *yr = y + (r) * ystride + seg[0].at; \
    _mm512_storeu_ps(yr, c##r##0); _mm512_storeu_ps(yr + 16, c##r##1); }
#define CD_ST_MASK(r) if ((r) < m) { float *yr = y + (r) * ystride + at; \
    _mm512_mask_storeu_ps(yr, k0, c##r##0); _mm512_mask_storeu_ps(yr + 16, k1, c##r##1); }

#define CD_BODY(ROWS)                                                                            \
  ROWS(CD_DECL)                                                                                \
  int64_t k = 0;                                                                               \
  for (; k + 2 <= K; k += 2) { CD_TAP(ROWS, k) CD_TAP(ROWS, k + 1) }                           \
  for (; k < K; k++) CD_TAP(ROWS, k)                                                           \
  const __m512 zero = _mm512_setzero_ps();                                                     \
  (void)zero;                                                                                  \
  ROWS(CD_FIN)                                                                                 \
  if (nseg == 1 && seg[0].lo == 0 && seg[0].hi == 32) {                                        \
    ROWS(CD_ST_FULL)                                                                           \
  } else {                                                                                     \
    for (int s = 0; s < nseg; s++) {                                                           \
      const unsigned lo = (unsigned)seg[s].lo, hi = (unsigned)seg[s].hi;                       \
      const uint32_t bits = (uint32_t)((hi >= 32 ? ~0ull : (1ull << hi) - 1) & ~((1ull << lo) - 1)); \
      const __mmask16 k0 = (__mmask16)bits, k1 = (__mmask16)(bits >> 16);                     \
      const int64_t at = seg[s].at - (int64_t)lo;  /* lane t of the segment: y + at + t */     \
      ROWS(CD_ST_MASK)                                                                         \
    }                                                                                          \
  }

#define CD_FN(NAME, ROWS)                                                                        \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))                                  \
  static void NAME(int64_t K, const float *restrict a, const float *restrict x,                \
                   const int64_t *restrict off, int m, const float *bias, int relu,            \
                   float *restrict y, int64_t ystride, const vg_cd_seg *seg, int nseg) {        \
    CD_BODY(ROWS)                                                                              \
  }
CD_FN(cd_rows12, CD_ROWS12)
CD_FN(cd_rows8, CD_ROWS8)
CD_FN(cd_rows4, CD_ROWS4)

void vg_cd_tile_avx512(int64_t K, const float *a, const float *x, const int64_t *off, int m,
                       const float *bias, int relu, float *y, int64_t ystride, const vg_cd_seg *seg,
                       int nseg) {
  for (int s = 0; s < nseg; s++)       /* the output lines, fetched while the taps run */
    for (int r = 0; r < m; r++) {
      const char *p = (const char *)(y + r * ystride + seg[s].at);
      const int64_t bytes = (int64_t)(seg[s].hi - seg[s].lo) * 4;
      _mm_prefetch(p, _MM_HINT_T0);
      if (bytes > 64) _mm_prefetch(p + 64, _MM_HINT_T0);
      _mm_prefetch(p + bytes - 4, _MM_HINT_T0);
    }
  if (m > 8) cd_rows12(K, a, x, off, m, bias, relu, y, ystride, seg, nseg);
  else if (m > 4) cd_rows8(K, a, x, off, m, bias, relu, y, ystride, seg, nseg);
  else cd_rows4(K, a, x, off, m, bias, relu, y, ystride, seg, nseg);
}
#else
void vg_cd_tile_avx512(int64_t K, const float *a, const float *x, const int64_t *off, int m,
                       const float *bias, int relu, float *y, int64_t ystride, const vg_cd_seg *seg,
                       int nseg) {
  (void)K; (void)a; (void)x; (void)off; (void)m; (void)bias; (void)relu; (void)y; (void)ystride;
  (void)seg; (void)nseg;
}
#endif
