/* kmath/bits.h — float <-> bits and small integer helpers for the shared kernel math
 * (the headers of tensor/kmath/), usable in CPU code and CUDA kernels alike. */
#ifndef VG_KMATH_BITS_H
#define VG_KMATH_BITS_H
#include <stdint.h>
#include <string.h>
#include "tensor/hd.h"

static inline VG_HD uint32_t vg_f2u(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}

static inline VG_HD float vg_u2f(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

#define VG_QNAN_BITS 0x7fc00000u   /* the NaN kernels write (C's NAN) */

static inline VG_HD int64_t vg_imin64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline VG_HD int64_t vg_imax64(int64_t a, int64_t b) { return a > b ? a : b; }

/* storage offset of row-major logical index i of a (shape, stride) view of nd dims */
static inline VG_HD int64_t vg_unravel_offset(int64_t i, int nd, const int64_t *shape, const int64_t *stride) {
  int64_t off = 0;
  for (int d = nd - 1; d >= 0; d--) {
    off += (i % shape[d]) * stride[d];
    i /= shape[d];
  }
  return off;
}
#endif
