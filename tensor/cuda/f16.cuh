/* f16.cuh — f16 (IEEE binary16) compute in the CUDA kernels: kernels are templates over
 * the element type T (float or vg_half), load with vg_ld (-> f32), compute in f32 and
 * store with vg_st (one round to nearest even); reductions accumulate in f32 or wider.
 * Instantiated for float the helpers are plain loads and stores, so the f32 kernels are
 * the same code as before. GEMMs on f16 go through cublasGemm(StridedBatched)Ex with
 * CUDA_R_16F A, B, C and CUBLAS_COMPUTE_32F (f32 accumulation, f16 result).
 *
 * On the device the conversions are the cvt instructions (cuda_fp16.h); elsewhere (the
 * host emulator) vmath.cuh's software twins, which round the same way. No warp
 * intrinsics. */
#ifndef VG_CUDA_F16_CUH
#define VG_CUDA_F16_CUH
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/vmath.cuh"
#if defined(__CUDACC__) && !defined(VG_CUDA_EMU)
#include <cuda_fp16.h>
#endif

/* the storage of one f16 element (a distinct type, so overloads tell it from u16) */
struct vg_half {
  uint16_t bits;
};

__device__ __forceinline__ float vg_ld(const float *p) { return *p; }
__device__ __forceinline__ float vg_ld(const vg_half *p) {
#if defined(__CUDA_ARCH__) && !defined(VG_CUDA_EMU)
  return __half2float(__ushort_as_half(p->bits));
#else
  return vg_d_half_to_float(p->bits);
#endif
}

__device__ __forceinline__ void vg_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void vg_st(vg_half *p, float v) {
#if defined(__CUDA_ARCH__) && !defined(VG_CUDA_EMU)
  p->bits = __half_as_ushort(__float2half_rn(v));
#else
  p->bits = vg_d_float_to_half(v);
#endif
}

/* the float dtypes the compute kernels take */
static inline bool vg_cu_is_half(const vg_tensor *t) { return t->dtype == VG_F16; }

/* Strided batched GEMM (column-major, cuBLAS's conventions) in dt: f32 as
 * cublasSgemmStridedBatched (the f32 path unchanged), f16 as cublasGemmStridedBatchedEx
 * with f32 compute. alpha = 1. */
static inline void vg_cu_gemm_sb(vg_dtype dt, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                 const void *A, int lda, long long sa, const void *B, int ldb, long long sb,
                                 float beta, void *C, int ldc, long long sc, int batch) {
  const float one = 1.0f;
  if (dt == VG_F32) {
    VG_CUBLAS_CHECK(cublasSgemmStridedBatched(vg_cuda_blas(), ta, tb, m, n, k, &one, (const float *)A, lda, sa,
                                              (const float *)B, ldb, sb, &beta, (float *)C, ldc, sc, batch));
  } else if (dt == VG_F16) {
    VG_CUBLAS_CHECK(cublasGemmStridedBatchedEx(vg_cuda_blas(), ta, tb, m, n, k, &one, A, CUDA_R_16F, lda, sa, B,
                                               CUDA_R_16F, ldb, sb, &beta, C, CUDA_R_16F, ldc, sc, batch,
                                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } else {
    VG_ABORT("cuda gemm: %s is not a compute dtype", vg_dtype_name(dt));
  }
}

/* f16 A and B, f32 C: alpha = 1, beta = 0, f32 accumulation (conv2d's fused-ReLU path) */
static inline void vg_cu_gemm_sb_h2f(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A,
                                     int lda, long long sa, const void *B, int ldb, long long sb, float *C, int ldc,
                                     long long sc, int batch) {
  const float one = 1.0f, zero = 0.0f;
  VG_CUBLAS_CHECK(cublasGemmStridedBatchedEx(vg_cuda_blas(), ta, tb, m, n, k, &one, A, CUDA_R_16F, lda, sa, B, CUDA_R_16F,
                                             ldb, sb, &zero, C, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                             CUBLAS_GEMM_DEFAULT));
}

/* aborts unless t is f32 (the backward ops and the f32-only paths) */
#define VG_CU_NEED_F32(t, what) do { if ((t)->dtype != VG_F32) \
    VG_ABORT("cuda %s: %s input; this op computes in f32 only", what, vg_dtype_name((t)->dtype)); } while (0)
#endif
