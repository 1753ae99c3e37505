/* vmath.cuh — the CUDA kernels' names for the shared host/device math of tensor/vmath.h
 * (one source for the CPU and the GPU: nothing is defined here). */
#ifndef VG_CUDA_VMATH_CUH
#define VG_CUDA_VMATH_CUH
#include "tensor/vmath.h"

#define vg_d_half_to_float vg_hd_half_to_float
#define vg_d_float_to_half vg_hd_float_to_half
#define vg_d_bf16_to_float vg_hd_bf16_to_float
#define vg_d_float_to_bf16 vg_hd_float_to_bf16
#define vg_d_load vg_hd_load_elem     /* (const char *p, int dtype) -> double */
#define vg_d_store vg_hd_store_elem   /* (char *p, int dtype, double v) */
#endif
