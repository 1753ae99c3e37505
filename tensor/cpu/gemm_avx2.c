/* The AVX2+FMA micro-kernel: 6 x 16 tile, 12 ymm accumulators, 2 B loads and 6
 * broadcasts per k step (FMA-bound on 1 or 2 FMA ports). */
#include "tensor/cpu/gemm_kernels.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define VG_ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

__attribute__((target("avx2,fma")))
void vg_gemm_ukr_avx2(int64_t kc, const float *restrict a, const float *restrict b,
                      float *restrict c, int64_t ldc, int m, int n, float alpha, float beta,
                      const float *bias) {
#define DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps();
  VG_ROWS6(DECL)
#undef DECL
  if (m == 6 && n == 16) {
#define PF(r) _mm_prefetch((const char *)(c + (r) * ldc), _MM_HINT_T0); \
              _mm_prefetch((const char *)(c + (r) * ldc + 15), _MM_HINT_T0);
    VG_ROWS6(PF)
#undef PF
  }
#define STEP(r) { __m256 av = _mm256_broadcast_ss(a + (r)); \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0); c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1); }
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    for (int u = 0; u < 4; u++) {
      __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
      VG_ROWS6(STEP)
      a += 6; b += 16;
    }
  }
  for (; k < kc; k++) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    VG_ROWS6(STEP)
    a += 6; b += 16;
  }
#undef STEP
  const __m256 va = _mm256_set1_ps(alpha);
  if (m == 6 && n == 16) {
    /* alpha == 1 skips the multiply, beta == 1 too (x * 1 == x exactly: same results) */
    const __m256 vb = _mm256_set1_ps(beta);
    const int scale = alpha != 1.0f, acc_c = beta != 0.0f, scale_c = beta != 1.0f;
#define OUT(r) { float *cr = c + (r) * ldc; \
    __m256 v0 = c##r##0, v1 = c##r##1; \
    if (scale) { v0 = _mm256_mul_ps(va, v0); v1 = _mm256_mul_ps(va, v1); } \
    if (acc_c) { __m256 o0 = _mm256_loadu_ps(cr), o1 = _mm256_loadu_ps(cr + 8); \
                 if (scale_c) { o0 = _mm256_mul_ps(vb, o0); o1 = _mm256_mul_ps(vb, o1); } \
                 v0 = _mm256_add_ps(v0, o0); v1 = _mm256_add_ps(v1, o1); } \
    if (bias) { __m256 bb = _mm256_set1_ps(bias[r]); v0 = _mm256_add_ps(v0, bb); v1 = _mm256_add_ps(v1, bb); } \
    _mm256_storeu_ps(cr, v0); _mm256_storeu_ps(cr + 8, v1); }
    VG_ROWS6(OUT)
#undef OUT
    return;
  }
  float t[6 * 16] __attribute__((aligned(32)));
#define SAVE(r) _mm256_store_ps(t + (r) * 16, c##r##0); _mm256_store_ps(t + (r) * 16 + 8, c##r##1);
  VG_ROWS6(SAVE)
#undef SAVE
  vg_gemm_store_tile(t, 16, c, ldc, m, n, alpha, beta, bias);
}
#else
void vg_gemm_ukr_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                      int m, int n, float alpha, float beta, const float *bias) {
  (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)m; (void)n; (void)alpha; (void)beta; (void)bias;
}
#endif
