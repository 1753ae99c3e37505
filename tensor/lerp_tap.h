/* lerp_tap.h — one bilinear tap (torch's upsample_bilinear2d index/weight computation in
 * float), shared by tensor/cpu/resample.c and tensor/cuda/pool.cu so both devices give
 * the same bits (no FMA contraction: C11 on the CPU, nvcc --fmad=false). */
#ifndef VG_LERP_TAP_H
#define VG_LERP_TAP_H
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
#endif
