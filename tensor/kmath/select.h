/* kmath/select.h — the selection family's math, written once for tensor/cpu/select.c
 * and tensor/cuda/select.cu, so both give the same bits.
 *
 * Keys. A float maps to a uint32 whose unsigned order is the float order:
 *   key = bits ^ (sign ? 0xffffffff : 0x80000000),   every NaN -> 0xffffffff.
 * So -inf < ... < -0 < +0 < ... < +inf < NaN. Only NaNs have keys above 0xff800000, so
 * the top radix bucket (keys >> 21 == 0x7ff) holds exactly the NaNs.
 * KTHVALUE's radix select reads the key in three digits: [31:21], [20:10], [9:0].
 * SORT keys -0 as +0 (they compare equal) and sorts ~key when descending, so equal
 * values keep their index order both ways. */
#ifndef VG_KMATH_SELECT_H
#define VG_KMATH_SELECT_H
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include "tensor/kmath/bits.h"
#include "tensor/op_params.h"
#include "base/status.h"

#define VG_SEL_BINS 2048   /* bins of digits 0 and 1 (digit 2 has 1024) */

static inline VG_HD uint32_t vg_sel_key(float f) {
  uint32_t u = vg_f2u(f);
  uint32_t mask = (uint32_t)((int32_t)u >> 31) | 0x80000000u;
  return (u & 0x7fffffffu) > 0x7f800000u ? 0xffffffffu : u ^ mask;
}

static inline VG_HD float vg_sel_key_to_float(uint32_t k) {
  if (k == 0xffffffffu) return vg_u2f(VG_QNAN_BITS);
  return vg_u2f((k & 0x80000000u) ? k & 0x7fffffffu : ~k);
}

/* digit `level` of key k: 0 -> bits [31:21], 1 -> [20:10], 2 -> [9:0] */
static inline VG_HD uint32_t vg_sel_digit(uint32_t k, int level) {
  return level == 0 ? k >> 21 : level == 1 ? (k >> 10) & 0x7ffu : k & 0x3ffu;
}
/* the digits of k above digit `level` (1 or 2): compared with the prefix chosen so far */
static inline VG_HD uint32_t vg_sel_high(uint32_t k, int level) { return level == 1 ? k >> 21 : k >> 10; }
/* the prefix after choosing bucket b of digit `level` (level 2: the whole key) */
static inline VG_HD uint32_t vg_sel_extend(uint32_t prefix, int level, uint32_t b) {
  return level == 0 ? b : level == 1 ? prefix << 11 | b : prefix << 10 | b;
}

/* the bucket of histogram h[0, nb) that holds the k-th (1-based) counted element; *k
 * becomes its rank inside the bucket; nb when h counts fewer than k elements */
static inline VG_HD int vg_sel_pick(const unsigned long long *h, int nb, int64_t *k) {
  int b = 0;
  while (b < nb && (unsigned long long)*k > h[b]) *k -= (int64_t)h[b++];
  return b;
}

/* After the last digit's pick (bucket b of the 1024-bin histogram h, rank k inside,
 * prefix = the two higher digits): the (k+1)-th smallest key when the histogram tells
 * it (the same key again, or the next non-empty bucket); false: a pass for the
 * smallest key above the k-th is needed. */
static inline VG_HD bool vg_sel_next_key(const unsigned long long *h, int b, int64_t k, uint32_t prefix,
                                         uint32_t *next) {
  if ((unsigned long long)k < h[b]) {
    *next = vg_sel_extend(prefix, 2, (uint32_t)b);
    return true;
  }
  int nx = b + 1;
  while (nx < 1024 && h[nx] == 0) nx++;
  if (nx == 1024) return false;
  *next = vg_sel_extend(prefix, 2, (uint32_t)nx);
  return true;
}

/* (host) KTHVALUE's parameters checked against n elements: whether the quantile also
 * needs the (k+1)-th key (k_hi == k + 1); aborts on a k or k_hi the front-end never makes */
static inline bool vg_kth_want_next(const vg_kth_params *kp, int64_t n) {
  int64_t k = kp->k, khi = kp->mode ? kp->k_hi : k;
  if (k < 1 || k > n) VG_ABORT("kthvalue: k = %lld out of [1, %lld]", (long long)k, (long long)n);
  if (khi != k && khi != k + 1) VG_ABORT("kthvalue: k_hi = %lld for k = %lld", (long long)khi, (long long)k);
  return khi > k;
}

/* torch's lerp (aten/src/ATen/native/Lerp.h) as its CPU kernels compile it, with the
 * multiply-add fused (checked bit for bit against torch 1.13's lerp) */
static inline VG_HD float vg_torch_lerp(float a, float b, float w) {
  return fabsf(w) < 0.5f ? fmaf(w, b - a, a) : fmaf(-(b - a), 1.0f - w, b);
}

/* KTHVALUE's output from the selected keys: mode 0 the k-th smallest; mode 1
 * (quantile) NaN when any element is NaN, else lerp(v_k, v_k_hi, w) (next = key when
 * k_hi == k) */
static inline VG_HD float vg_kth_result(int mode, bool has_nan, uint32_t key, uint32_t next, float w) {
  float lo = vg_sel_key_to_float(key);
  if (mode == 0) return lo;
  if (has_nan) return vg_u2f(VG_QNAN_BITS);
  return vg_torch_lerp(lo, vg_sel_key_to_float(next), w);
}

/* SORT's key: -0 as +0; descending sorts ~key */
static inline VG_HD uint32_t vg_sort_key(float f, bool desc) {
  if (f == 0.0f) f = 0.0f;
  uint32_t k = vg_sel_key(f);
  return desc ? ~k : k;
}

/* first position in a[0, n) (ascending) whose value is >= v: the number of elements below v */
static inline VG_HD int64_t vg_lower_bound_u64(const unsigned long long *a, int64_t n, unsigned long long v) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* storage offsets of row r of x and out, over the nouter dims other than the sorted one */
static inline VG_HD void vg_sort_row_offsets(int nouter, const int64_t *oshape, const int64_t *xstride,
                                             const int64_t *ostride, int64_t r, int64_t *xoff, int64_t *ooff) {
  int64_t xo = 0, oo = 0;
  for (int d = nouter - 1; d >= 0; d--) {
    int64_t i = r % oshape[d];
    r /= oshape[d];
    xo += i * xstride[d];
    oo += i * ostride[d];
  }
  *xoff = xo;
  *ooff = oo;
}
#endif
