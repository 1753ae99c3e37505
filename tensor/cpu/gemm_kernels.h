/* gemm_kernels.h — the GEMM micro-kernels, one per ISA (internal to tensor/cpu/gemm*.c).
 *
 * A micro-kernel multiplies one packed MR x kc sliver of A (a[k*MR + r]) by one packed
 * kc x NR sliver of B (b[k*NR + t]) and writes the m x n corner (m <= MR, n <= NR) of
 *   C[r][t] = alpha * acc[r][t] + beta * C[r][t] + bias[r]
 * (C not read when beta == 0; bias nullable). b is 64-byte aligned. */
#ifndef VG_GEMM_KERNELS_H
#define VG_GEMM_KERNELS_H
#include <stdint.h>

typedef void (*vg_gemm_ukr)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            int m, int n, float alpha, float beta, const float *bias);

#define VG_UKR_AVX2_MR 6
#define VG_UKR_AVX2_NR 16
#define VG_UKR_AVX512_MR 12
#define VG_UKR_AVX512_NR 32

void vg_gemm_ukr_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                      int m, int n, float alpha, float beta, const float *bias);
void vg_gemm_ukr_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                        int m, int n, float alpha, float beta, const float *bias);

/* Writes the m x n corner of an MR x NR accumulator tile t (row stride nr) into C. */
static inline void vg_gemm_store_tile(const float *t, int nr, float *c, int64_t ldc, int m,
                                      int n, float alpha, float beta, const float *bias) {
  for (int r = 0; r < m; r++) {
    float *cr = c + r * ldc;
    float b = bias ? bias[r] : 0.0f;
    if (beta == 0.0f)
      for (int j = 0; j < n; j++) cr[j] = alpha * t[r * nr + j] + b;
    else
      for (int j = 0; j < n; j++) cr[j] = alpha * t[r * nr + j] + beta * cr[j] + b;
  }
}
#endif
