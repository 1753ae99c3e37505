/* kmath/interp.h — bilinear interpolation's math (torch's upsample_bilinear2d, in
 * float): one tap's indices and weights, and the blend of four inputs, written once for
 * tensor/cpu/resample.c and tensor/cuda/pool.cu so both devices give the same bits (no
 * FMA contraction: C11 on the CPU, nvcc --fmad=false). */
#ifndef VG_KMATH_INTERP_H
#define VG_KMATH_INTERP_H
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include "tensor/hd.h"

typedef struct { int64_t i0, i1; float l0, l1; } lerp_tap;

/* output index o of an axis resized in -> out (align_corners or half-pixel centres) */
static inline VG_HD lerp_tap vg_lerp_tap(int64_t o, int64_t in, int64_t out, bool align) {
  lerp_tap t = {o, o, 1.0f, 0.0f};
  if (in == out) return t;   /* torch copies in this case */
  float scale;
  if (align) scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
  else scale = (float)in / (float)out;
  float src;
  if (align) src = scale * (float)o;
  else {
    src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0) src = 0;
  }
  int64_t i0 = (int64_t)floorf(src);
  if (i0 > in - 1) i0 = in - 1;
  float l1 = src - (float)i0;
  l1 = l1 < 0 ? 0 : l1 > 1 ? 1 : l1;
  t.i0 = i0;
  t.i1 = i0 + (i0 < in - 1 ? 1 : 0);
  t.l0 = 1.0f - l1;
  t.l1 = l1;
  return t;
}

/* the output from the four inputs at rows h.i0/h.i1 and columns w.i0/w.i1 */
static inline VG_HD float vg_bilinear(lerp_tap h, lerp_tap w, float x00, float x01, float x10, float x11) {
  return h.l0 * (w.l0 * x00 + w.l1 * x01) + h.l1 * (w.l0 * x10 + w.l1 * x11);
}
#endif
