/* pnm.c — PGM/PPM (Netpbm) decoder and binary writer.
 *
 * Header: "P2".."P6", then width, height, maxval as ASCII decimals separated by
 * whitespace, with '#' comments running to the end of a line; exactly one whitespace
 * byte ends the header of a binary file. Binary samples are 1 byte when maxval < 256,
 * else 2 bytes big-endian. ASCII (P2/P3) samples are decimals separated by whitespace. */
#include "datasets/image/internal.h"
#include <string.h>

typedef struct {
  const uint8_t *p, *end;
} cursor;

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Skips whitespace and comments; returns 0 at the end of the data. */
static int skip_space(cursor *c) {
  while (c->p < c->end) {
    if (is_space(*c->p)) c->p++;
    else if (*c->p == '#') { while (c->p < c->end && *c->p != '\n' && *c->p != '\r') c->p++; }
    else return 1;
  }
  return 0;
}

/* Reads an unsigned decimal <= max. 0 on a missing, non-numeric or too large value. */
static int read_uint(cursor *c, uint32_t max, uint32_t *v) {
  if (!skip_space(c) || *c->p < '0' || *c->p > '9') return 0;
  uint64_t x = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    x = x * 10 + (uint64_t)(*c->p++ - '0');
    if (x > max) return 0;
  }
  *v = (uint32_t)x;
  return 1;
}

vg_status vg_pnm_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *limp) {
  memset(out, 0, sizeof *out);
  vg_image_limits lim = vg_image_limits_resolve(limp);
  if (n < 2 || buf[0] != 'P' || !strchr("2356", buf[1]) || !buf[1])
    return vg_fail(VG_ERR_FORMAT, "pnm: bad signature (not P2, P3, P5 or P6)");
  int kind = buf[1] - '0', ascii = kind == 2 || kind == 3, ch = (kind == 3 || kind == 6) ? 3 : 1;
  cursor c = {buf + 2, buf + n};
  uint32_t w, h, maxval;
  if (c.p < c.end && !is_space(*c.p) && *c.p != '#') return vg_fail(VG_ERR_FORMAT, "pnm: bad signature");
  if (!read_uint(&c, 0x7FFFFFFF, &w) || !read_uint(&c, 0x7FFFFFFF, &h))
    return vg_fail(VG_ERR_FORMAT, "pnm: missing or invalid width/height");
  if (!read_uint(&c, 65535, &maxval) || maxval == 0)
    return vg_fail(VG_ERR_FORMAT, "pnm: missing or invalid maxval (must be 1..65535)");
  if (c.p >= c.end || !is_space(*c.p)) return vg_fail(VG_ERR_FORMAT, "pnm: header not ended by whitespace");
  c.p++;
  int wide = maxval > 255, depth = wide ? 16 : 8;
  size_t bytes;
  vg_status st = vg_image_check_size("pnm", w, h, ch, depth / 8, &lim, &bytes);
  if (st != VG_OK) return st;
  size_t count = (size_t)w * h * ch;                /* fits: bytes did not overflow */
  if (!ascii && (size_t)(c.end - c.p) < count * (wide ? 2 : 1))
    return vg_fail(VG_ERR_FORMAT, "pnm: pixel data truncated (%zu of %zu bytes)", (size_t)(c.end - c.p),
                   count * (wide ? 2 : 1));
  out->data = malloc(bytes);
  if (!out->data) return vg_fail(VG_ERR_NOMEM, "pnm: out of memory (%zu bytes)", bytes);
  out->w = (int)w;
  out->h = (int)h;
  out->c = ch;
  out->depth = depth;
  uint32_t full = wide ? 65535 : 255;
  for (size_t i = 0; i < count; i++) {
    uint32_t v;
    if (ascii) {
      if (!read_uint(&c, 65535, &v)) {
        vg_image_free(out);
        return vg_fail(VG_ERR_FORMAT, "pnm: ASCII sample %zu of %zu missing or invalid", i, count);
      }
    } else if (wide) {
      v = (uint32_t)c.p[0] << 8 | c.p[1];
      c.p += 2;
    } else {
      v = *c.p++;
    }
    if (v > maxval) {
      vg_image_free(out);
      return vg_fail(VG_ERR_FORMAT, "pnm: sample %u above maxval %u", v, maxval);
    }
    if (maxval != full) v = (v * full + maxval / 2) / maxval;
    if (wide) ((uint16_t *)out->data)[i] = (uint16_t)v;
    else ((uint8_t *)out->data)[i] = (uint8_t)v;
  }
  return VG_OK;
}

vg_status vg_pnm_encode(const vg_image *img, uint8_t **out, size_t *out_n) {
  *out = NULL;
  *out_n = 0;
  if (!img || !img->data || img->w <= 0 || img->h <= 0 || (img->c != 1 && img->c != 3) ||
      (img->depth != 8 && img->depth != 16))
    return vg_fail(VG_ERR_ARG, "pnm encode: need c = 1 or 3 and depth 8 or 16");
  char head[64];
  int hn = snprintf(head, sizeof head, "P%c\n%d %d\n%d\n", img->c == 1 ? '5' : '6', img->w, img->h,
                    img->depth == 8 ? 255 : 65535);
  size_t count, total;
  if (!vg_mul_ok((size_t)img->w, (size_t)img->h, &count) || !vg_mul_ok(count, (size_t)img->c, &count) ||
      !vg_mul_ok(count, (size_t)img->depth / 8, &total) || !vg_add_ok(total, (size_t)hn, &total))
    return vg_fail(VG_ERR_LIMIT, "pnm encode: image size overflows");
  uint8_t *o = malloc(total);
  if (!o) return vg_fail(VG_ERR_NOMEM, "pnm encode: out of memory");
  memcpy(o, head, (size_t)hn);
  uint8_t *d = o + hn;
  if (img->depth == 8) {
    memcpy(d, img->data, count);
  } else {
    const uint16_t *s = img->data;
    for (size_t i = 0; i < count; i++) { d[2 * i] = (uint8_t)(s[i] >> 8); d[2 * i + 1] = (uint8_t)s[i]; }
  }
  *out = o;
  *out_n = total;
  return VG_OK;
}
