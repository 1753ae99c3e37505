/* kmath/index.h — scatter_add / index_add's element update, written once for
 * tensor/cpu/index.c and tensor/cuda/index.cu: dst += src in dtype dt (integers wrap,
 * bool ors, f16/bf16 add through double and round back like vg_hd_store_elem). */
#ifndef VG_KMATH_INDEX_H
#define VG_KMATH_INDEX_H
#include <stdint.h>
#include "tensor/tensor.h"
#include "tensor/vmath.h"

static inline VG_HD void vg_add_elem(char *dst, const char *src, int dt) {
  switch ((vg_dtype)dt) {
    case VG_F32: *(float *)dst += *(const float *)src; return;
    case VG_I64: *(int64_t *)dst = (int64_t)((uint64_t) * (int64_t *)dst + (uint64_t) * (const int64_t *)src); return;
    case VG_I32: *(int32_t *)dst = (int32_t)((uint32_t) * (int32_t *)dst + (uint32_t) * (const int32_t *)src); return;
    case VG_U8: *(uint8_t *)dst = (uint8_t)(*(uint8_t *)dst + *(const uint8_t *)src); return;
    case VG_BOOL: *(uint8_t *)dst = (*(uint8_t *)dst | *(const uint8_t *)src) != 0; return;
    case VG_F16: case VG_BF16: vg_hd_store_elem(dst, dt, vg_hd_load_elem(dst, dt) + vg_hd_load_elem(src, dt)); return;
    case VG_DTYPE_COUNT: return;
  }
}
#endif
