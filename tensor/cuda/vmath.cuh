/* vmath.cuh — the device side of tensor/cpu/vmath.h (included, not copied; built with
 * --fmad=false so no multiply-add is fused), and device twins of the host's f16/bf16
 * conversions in tensor/tensor.c. Keep those in step. */
#ifndef VG_CUDA_VMATH_CUH
#define VG_CUDA_VMATH_CUH
#include <stdint.h>

#include "tensor/cpu/vmath.h"

#define vg_d_bits_f vg_bits_f
#define vg_d_f_bits vg_f_bits
#define vg_d_expf vg_expf
#define vg_d_logf vg_logf
#define vg_d_log1p_small vg_log1p_small
#define vg_d_sigmoidf vg_sigmoidf
#define vg_d_logsigmoidf vg_logsigmoidf
#define vg_d_tanhf vg_tanhf
#define vg_d_softplusf vg_softplusf

__device__ __forceinline__ float vg_d_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else {
      int e = -1;
      do { e++; man <<= 1; } while (!(man & 0x400));
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  return __uint_as_float(bits);
}

__device__ __forceinline__ uint16_t vg_d_float_to_half(float f) {
  uint32_t x = __float_as_uint(f);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);
  if (ax < 0x38800000u) {
    float af = __uint_as_float(ax);
    uint32_t m = (uint32_t)rintf(af * 16777216.0f);
    return (uint16_t)(sign | m);
  }
  uint32_t e = ((ax >> 23) - 112) << 10, m = (ax >> 13) & 0x3ff;
  uint32_t h = e | m, rest = ax & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

__device__ __forceinline__ float vg_d_bf16_to_float(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

__device__ __forceinline__ uint16_t vg_d_float_to_bf16(float f) {
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

/* element load/store in any dtype through double, as vg_load_elem / vg_store_elem */
__device__ __forceinline__ double vg_d_load(const char *p, int dt) {
  switch (dt) {
    case VG_F32: return *(const float *)p;
    case VG_F16: return vg_d_half_to_float(*(const uint16_t *)p);
    case VG_BF16: return vg_d_bf16_to_float(*(const uint16_t *)p);
    case VG_I32: return *(const int32_t *)p;
    case VG_I64: return (double)*(const int64_t *)p;
    case VG_U8: return *(const uint8_t *)p;
    case VG_BOOL: return *(const uint8_t *)p != 0;
  }
  return 0;
}

__device__ __forceinline__ void vg_d_store(char *p, int dt, double v) {
  switch (dt) {
    case VG_F32: *(float *)p = (float)v; return;
    case VG_F16: *(uint16_t *)p = vg_d_float_to_half((float)v); return;
    case VG_BF16: *(uint16_t *)p = vg_d_float_to_bf16((float)v); return;
    case VG_I32: *(int32_t *)p = (int32_t)v; return;
    case VG_I64: *(int64_t *)p = (int64_t)v; return;
    case VG_U8: *(uint8_t *)p = (uint8_t)(int64_t)v; return;
    case VG_BOOL: *(uint8_t *)p = v != 0; return;
  }
}
#endif
