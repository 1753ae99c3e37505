/* internal.h — small helpers shared by the codecs in datasets/image (not public API):
 * the limits with defaults filled in, overflow-checked size arithmetic, and
 * byte-order readers. */
#ifndef VG_IMAGE_INTERNAL_H
#define VG_IMAGE_INTERNAL_H
#include "datasets/image/image.h"

#define VG_IMAGE_MAX_SIDE 16384
#define VG_IMAGE_MAX_BYTES ((size_t)256 << 20)
#define VG_IMAGE_MAX_CHUNK ((size_t)8 << 20)

/* NULL or zero fields -> the defaults. */
static inline vg_image_limits vg_image_limits_resolve(const vg_image_limits *lim) {
  vg_image_limits l = {VG_IMAGE_MAX_SIDE, VG_IMAGE_MAX_BYTES, VG_IMAGE_MAX_CHUNK};
  if (lim) {
    if (lim->max_side > 0) l.max_side = lim->max_side;
    if (lim->max_bytes > 0) l.max_bytes = lim->max_bytes;
    if (lim->max_chunk > 0) l.max_chunk = lim->max_chunk;
  }
  return l;
}

/* *r = a * b (or a + b); returns 0 on overflow. */
static inline int vg_mul_ok(size_t a, size_t b, size_t *r) {
  if (a != 0 && b > SIZE_MAX / a) return 0;
  *r = a * b;
  return 1;
}
static inline int vg_add_ok(size_t a, size_t b, size_t *r) {
  if (b > SIZE_MAX - a) return 0;
  *r = a + b;
  return 1;
}

/* Checks w, h against the side limit and w*h*c*bytes_per_sample against the byte
 * limit; *bytes = the decoded size. fmt names the codec in the message. */
static inline vg_status vg_image_check_size(const char *fmt, long long w, long long h, int c, int bps,
                                            const vg_image_limits *l, size_t *bytes) {
  *bytes = 0;
  if (w <= 0 || h <= 0) return vg_fail(VG_ERR_FORMAT, "%s: invalid image size %lldx%lld", fmt, w, h);
  if (w > l->max_side || h > l->max_side)
    return vg_fail(VG_ERR_LIMIT, "%s: image %lldx%lld exceeds the side limit %d", fmt, w, h, l->max_side);
  size_t n;
  if (!vg_mul_ok((size_t)w, (size_t)h, &n) || !vg_mul_ok(n, (size_t)c * (size_t)bps, &n) || n > l->max_bytes)
    return vg_fail(VG_ERR_LIMIT, "%s: decoded image %lldx%lldx%d exceeds the limit of %zu bytes", fmt, w, h, c,
                   l->max_bytes);
  *bytes = n;
  return VG_OK;
}

static inline uint32_t vg_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t vg_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t vg_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
#endif
