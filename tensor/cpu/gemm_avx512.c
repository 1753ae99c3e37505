/* The AVX-512 micro-kernel: 12 x 32 tile, 24 zmm accumulators, 2 B loads and 12
 * broadcasts per k step. Mirrors gemm_avx2.c (same epilogue order, same edge handling
 * through a tile buffer), so only the register tile differs. */
#include "tensor/cpu/gemm_kernels.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define VG_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
void vg_gemm_ukr_avx512(int64_t kc, const float *restrict a, const float *restrict b,
                        float *restrict c, int64_t ldc, int m, int n, float alpha, float beta,
                        const float *bias) {
#define DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
  VG_ROWS12(DECL)
#undef DECL
  if (m == 12 && n == 32) {
#define PF(r) _mm_prefetch((const char *)(c + (r) * ldc), _MM_HINT_T0); \
              _mm_prefetch((const char *)(c + (r) * ldc + 31), _MM_HINT_T0);
    VG_ROWS12(PF)
#undef PF
  }
#define STEP(r) { __m512 av = _mm512_set1_ps(a[r]); \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0); c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1); }
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    for (int u = 0; u < 4; u++) {
      __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
      VG_ROWS12(STEP)
      a += 12; b += 32;
    }
  }
  for (; k < kc; k++) {
    __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    VG_ROWS12(STEP)
    a += 12; b += 32;
  }
#undef STEP
  const __m512 va = _mm512_set1_ps(alpha);
  if (m == 12 && n == 32) {
    /* alpha == 1 skips the multiply, beta == 1 too (x * 1 == x exactly: same results) */
    const __m512 vb = _mm512_set1_ps(beta);
    const int scale = alpha != 1.0f, acc_c = beta != 0.0f, scale_c = beta != 1.0f;
#define OUT(r) { float *cr = c + (r) * ldc; \
    __m512 v0 = c##r##0, v1 = c##r##1; \
    if (scale) { v0 = _mm512_mul_ps(va, v0); v1 = _mm512_mul_ps(va, v1); } \
    if (acc_c) { __m512 o0 = _mm512_loadu_ps(cr), o1 = _mm512_loadu_ps(cr + 16); \
                 if (scale_c) { o0 = _mm512_mul_ps(vb, o0); o1 = _mm512_mul_ps(vb, o1); } \
                 v0 = _mm512_add_ps(v0, o0); v1 = _mm512_add_ps(v1, o1); } \
    if (bias) { __m512 bb = _mm512_set1_ps(bias[r]); v0 = _mm512_add_ps(v0, bb); v1 = _mm512_add_ps(v1, bb); } \
    _mm512_storeu_ps(cr, v0); _mm512_storeu_ps(cr + 16, v1); }
    VG_ROWS12(OUT)
#undef OUT
    return;
  }
  float t[12 * 32] __attribute__((aligned(64)));
#define SAVE(r) _mm512_store_ps(t + (r) * 32, c##r##0); _mm512_store_ps(t + (r) * 32 + 16, c##r##1);
  VG_ROWS12(SAVE)
#undef SAVE
  vg_gemm_store_tile(t, 32, c, ldc, m, n, alpha, beta, bias);
}
#else
void vg_gemm_ukr_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                        int m, int n, float alpha, float beta, const float *bias) {
  (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)m; (void)n; (void)alpha; (void)beta; (void)bias;
}
#endif
