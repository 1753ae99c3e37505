/* bmp.c — Windows/OS2 BMP decoder and a small encoder.
 *
 * Layout: 14-byte file header ("BM", size, reserved, pixel-data offset), then an info
 * header whose size names its version: 12 (OS/2 core: 16-bit sides, 3-byte palette
 * entries), 16 (OS/2 v2 short form), 40 (INFO), 52/56 (INFO + RGB(A) masks), 64 (OS/2 v2),
 * 108 (V4), 124 (V5); other sizes are refused. Every header field is read through a
 * bounds check against the header size (a field past it reads as 0).
 * Pixel rows are padded to 4 bytes and stored bottom-up unless the height is negative.
 *
 * Output: depth 8; palette and 24-bit files -> RGB; 16/32-bit files -> RGB, or RGBA
 * when bitfields give an alpha mask. Bitfield channels of k bits are scaled by
 * v * 255 / (2^k - 1), truncated (as Pillow does). Palette indices past the palette
 * read as black; pixels an RLE stream skips read as palette entry 0. */
#include "datasets/image/internal.h"
#include <string.h>

typedef struct {
  int32_t w, h;            /* h < 0 in the file: top-down; stored here as |h| */
  int topdown;
  int bpp, compression;
  int hsize;
  uint32_t off_bits;
  uint32_t mask[4];        /* R, G, B, A */
  uint8_t pal[256][3];     /* RGB */
  int npal;
} bmp_info;

enum { BI_RGB = 0, BI_RLE8 = 1, BI_RLE4 = 2, BI_BITFIELDS = 3, BI_ALPHABITFIELDS = 6 };

static int mask_shift(uint32_t m) {
  int s = 0;
  while (m && !(m & 1)) { m >>= 1; s++; }
  return s;
}

static int mask_bits(uint32_t m) {
  m >>= mask_shift(m);
  int b = 0;
  while (m & 1) { m >>= 1; b++; }
  return m ? -1 : b;       /* -1: the mask is not one contiguous run of bits */
}

/* Fields of the info header h (hs bytes, all inside the buffer): one that lies past the
 * header's end reads as 0, so no header size can make a read leave the header. */
static uint32_t hdr32(const uint8_t *h, uint32_t hs, uint32_t off) { return off + 4 <= hs ? vg_le32(h + off) : 0; }
static uint32_t hdr16(const uint8_t *h, uint32_t hs, uint32_t off) { return off + 2 <= hs ? vg_le16(h + off) : 0; }

static vg_status parse_header(bmp_info *b, const uint8_t *buf, size_t n) {
  memset(b, 0, sizeof *b);
  if (n < 18) return vg_fail(VG_ERR_FORMAT, "bmp: truncated file header (%zu bytes)", n);
  b->off_bits = vg_le32(buf + 10);
  uint32_t hs = vg_le32(buf + 14);
  /* 12: OS/2 1.x core; 16: OS/2 2.x short form; 40: INFO; 52/56: INFO + RGB(A) masks
   * (V2/V3); 64: OS/2 2.x full; 108: V4; 124: V5. */
  if (hs != 12 && hs != 16 && hs != 40 && hs != 52 && hs != 56 && hs != 64 && hs != 108 && hs != 124)
    return vg_fail(VG_ERR_UNSUPPORTED, "bmp: unknown info header size %u", hs);
  b->hsize = (int)hs;
  if (n - 14 < (size_t)hs) return vg_fail(VG_ERR_FORMAT, "bmp: truncated info header (%u bytes, %zu in the file)", hs, n - 14);
  const uint8_t *h = buf + 14;
  int64_t height;
  int planes, pal_entry = 4;
  int os2 = hs == 16 || hs == 64;   /* OS/2 2.x: compression 3 and 4 mean Huffman 1D / RLE24 there */
  if (hs == 12) {
    b->w = hdr16(h, hs, 4);
    height = hdr16(h, hs, 6);
    planes = (int)hdr16(h, hs, 8);
    b->bpp = (int)hdr16(h, hs, 10);
    b->compression = BI_RGB;
    pal_entry = 3;
  } else {
    b->w = (int32_t)hdr32(h, hs, 4);
    height = (int32_t)hdr32(h, hs, 8);
    planes = (int)hdr16(h, hs, 12);
    b->bpp = (int)hdr16(h, hs, 14);
    uint32_t comp = hdr32(h, hs, 16);
    if (comp > 6 || (os2 && comp > 2))
      return vg_fail(VG_ERR_UNSUPPORTED, "bmp: unknown compression %u", comp);
    if (comp == 4 || comp == 5)
      return vg_fail(VG_ERR_UNSUPPORTED, "bmp: embedded %s data is not supported", comp == 4 ? "JPEG" : "PNG");
    b->compression = (int)comp;
  }
  if (planes != 1) return vg_fail(VG_ERR_FORMAT, "bmp: %d planes, must be 1", planes);
  if (b->w <= 0) return vg_fail(VG_ERR_FORMAT, "bmp: invalid width %d", b->w);
  if (height == 0 || height == INT32_MIN) return vg_fail(VG_ERR_FORMAT, "bmp: invalid height %lld", (long long)height);
  b->topdown = height < 0;
  b->h = (int32_t)(height < 0 ? -height : height);
  int bpp = b->bpp, c = b->compression;
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
    return vg_fail(VG_ERR_FORMAT, "bmp: invalid bits per pixel %d", bpp);
  if ((c == BI_RLE8 && bpp != 8) || (c == BI_RLE4 && bpp != 4) ||
      ((c == BI_BITFIELDS || c == BI_ALPHABITFIELDS) && bpp != 16 && bpp != 32))
    return vg_fail(VG_ERR_FORMAT, "bmp: compression %d does not go with %d bits per pixel", c, bpp);

  /* Bitfield masks: after a 40-byte header (3, or 4 with ALPHABITFIELDS), else inside the
   * header: V2 (52) holds R, G, B; V3 (56), V4, V5 hold R, G, B, A. A mask the header has
   * no room for is 0 (V2's alpha, as Pillow reads it), never read past the header. */
  size_t pal_off = 14 + (size_t)hs;
  if (bpp == 16 || bpp == 32) {
    if (c == BI_BITFIELDS || c == BI_ALPHABITFIELDS) {
      int nm = c == BI_ALPHABITFIELDS ? 4 : 3;
      if (hs == 40) {
        if (n - pal_off < 4 * (size_t)nm) return vg_fail(VG_ERR_FORMAT, "bmp: truncated bitfield masks");
        for (int i = 0; i < nm; i++) b->mask[i] = vg_le32(buf + pal_off + 4 * (size_t)i);
        pal_off += 4 * (size_t)nm;
      } else {
        for (int i = 0; i < 4; i++) b->mask[i] = hdr32(h, hs, 40 + 4 * (uint32_t)i);
      }
      for (int i = 0; i < 4; i++) {
        if (mask_bits(b->mask[i]) < 0)
          return vg_fail(VG_ERR_FORMAT, "bmp: bitfield mask %08x is not contiguous", b->mask[i]);
        if (i < 3 && b->mask[i] == 0) return vg_fail(VG_ERR_FORMAT, "bmp: colour bitfield mask is zero");
      }
    } else if (bpp == 16) {
      b->mask[0] = 0x7C00; b->mask[1] = 0x03E0; b->mask[2] = 0x001F;
    } else {
      b->mask[0] = 0xFF0000; b->mask[1] = 0xFF00; b->mask[2] = 0xFF;
    }
  }
  if (bpp <= 8) {
    uint32_t used = hdr32(h, hs, 32);
    uint32_t max = 1u << bpp;
    if (used == 0 || used > max) used = max;
    /* Palette entries that do not fit before the pixel data (or the file) are dropped. */
    size_t end = b->off_bits >= pal_off && b->off_bits <= n ? b->off_bits : n;
    size_t avail = end > pal_off ? (end - pal_off) / (size_t)pal_entry : 0;
    if (avail < used) used = (uint32_t)avail;
    if (used == 0) return vg_fail(VG_ERR_FORMAT, "bmp: palette missing or truncated");
    for (uint32_t i = 0; i < used; i++) {
      const uint8_t *e = buf + pal_off + (size_t)i * pal_entry;
      b->pal[i][0] = e[2]; b->pal[i][1] = e[1]; b->pal[i][2] = e[0];
    }
    b->npal = (int)used;
  }
  if (b->off_bits > n) return vg_fail(VG_ERR_FORMAT, "bmp: pixel data offset %u past the end of the file", b->off_bits);
  if (b->off_bits < 14 + hs) return vg_fail(VG_ERR_FORMAT, "bmp: pixel data offset %u inside the header", b->off_bits);
  return VG_OK;
}

static void put_index(const bmp_info *b, uint8_t *px, unsigned idx) {
  if (idx < (unsigned)b->npal) memcpy(px, b->pal[idx], 3);
  else px[0] = px[1] = px[2] = 0;
}

/* Channel value (v & mask) >> shift scaled to 0..255 by truncation; a zero mask gives z. */
static uint8_t scale_field(uint32_t v, uint32_t mask, int z) {
  if (!mask) return (uint8_t)z;
  int s = mask_shift(mask), k = mask_bits(mask);
  uint64_t x = (v & mask) >> s, max = (k >= 32) ? 0xFFFFFFFFull : ((1ull << k) - 1);
  return (uint8_t)(x * 255 / max);
}

/* Uncompressed rows, any bpp. */
static vg_status decode_plain(const bmp_info *b, const uint8_t *buf, size_t n, vg_image *img) {
  size_t stride, need = 0;
  if (!vg_mul_ok((size_t)b->w, (size_t)b->bpp, &stride) || !vg_add_ok(stride, 31, &stride))
    return vg_fail(VG_ERR_LIMIT, "bmp: row size overflows");
  stride = stride / 32 * 4;
  if (!vg_mul_ok(stride, (size_t)b->h, &need) || need > n - b->off_bits) {
    /* Tolerate a missing pad on the very last row, as some writers omit it. */
    size_t last = ((size_t)b->w * b->bpp + 7) / 8;
    if (!vg_mul_ok(stride, (size_t)b->h - 1, &need) || !vg_add_ok(need, last, &need) || need > n - b->off_bits)
      return vg_fail(VG_ERR_FORMAT, "bmp: pixel data truncated (%zu of %zu bytes)", n - b->off_bits, need);
  }
  int oc = img->c;
  for (int32_t y = 0; y < b->h; y++) {
    const uint8_t *row = buf + b->off_bits + (size_t)y * stride;
    uint8_t *o = (uint8_t *)img->data + (size_t)(b->topdown ? y : b->h - 1 - y) * b->w * oc;
    for (int32_t x = 0; x < b->w; x++, o += oc) {
      switch (b->bpp) {
        case 1: put_index(b, o, (row[x >> 3] >> (7 - (x & 7))) & 1); break;
        case 4: put_index(b, o, (row[x >> 1] >> (x & 1 ? 0 : 4)) & 15); break;
        case 8: put_index(b, o, row[x]); break;
        case 24: o[0] = row[3 * x + 2]; o[1] = row[3 * x + 1]; o[2] = row[3 * x]; break;
        default: {
          uint32_t v = b->bpp == 16 ? vg_le16(row + 2 * (size_t)x) : vg_le32(row + 4 * (size_t)x);
          for (int ch = 0; ch < 3; ch++) o[ch] = scale_field(v, b->mask[ch], 0);
          if (oc == 4) o[3] = scale_field(v, b->mask[3], 255);
        }
      }
    }
  }
  return VG_OK;
}

/* RLE8 / RLE4 into a w*h index image (rows in file order: y = 0 is the bottom row
 * unless top-down), then through the palette. Runs past the row end are clipped. */
static vg_status decode_rle(const bmp_info *b, const uint8_t *buf, size_t n, vg_image *img) {
  size_t npx = (size_t)b->w * (size_t)b->h;   /* <= max_bytes: checked by the caller */
  uint8_t *idx = calloc(npx, 1);
  if (!idx) return vg_fail(VG_ERR_NOMEM, "bmp: out of memory");
  const uint8_t *p = buf + b->off_bits, *end = buf + n;
  int rle4 = b->compression == BI_RLE4;
  size_t x = 0, y = 0, W = (size_t)b->w, H = (size_t)b->h;
  vg_status st = VG_OK;
  for (;;) {
    if (end - p < 2) { st = vg_fail(VG_ERR_FORMAT, "bmp: RLE data truncated (no end-of-bitmap)"); break; }
    unsigned a = p[0], v = p[1];
    p += 2;
    if (a > 0) {                                  /* encoded run of a pixels */
      for (unsigned i = 0; i < a; i++, x++)
        if (x < W && y < H) idx[y * W + x] = (uint8_t)(rle4 ? (i & 1 ? v & 15 : v >> 4) : v);
    } else if (v == 0) {                          /* end of line */
      x = 0;
      y++;
    } else if (v == 1) {                          /* end of bitmap */
      break;
    } else if (v == 2) {                          /* delta */
      if (end - p < 2) { st = vg_fail(VG_ERR_FORMAT, "bmp: RLE delta truncated"); break; }
      x += p[0];
      y += p[1];
      p += 2;
    } else {                                      /* absolute run of v pixels */
      size_t bytes = rle4 ? (v + 1) / 2 : v;
      size_t padded = (bytes + 1) & ~(size_t)1;
      if ((size_t)(end - p) < bytes) { st = vg_fail(VG_ERR_FORMAT, "bmp: RLE absolute run truncated"); break; }
      for (unsigned i = 0; i < v; i++, x++) {
        unsigned val = rle4 ? (i & 1 ? p[i / 2] & 15 : p[i / 2] >> 4) : p[i];
        if (x < W && y < H) idx[y * W + x] = (uint8_t)val;
      }
      p += (size_t)(end - p) < padded ? (size_t)(end - p) : padded;
    }
    if (y >= H) break;                            /* past the last row: nothing more to draw */
  }
  if (st == VG_OK) {
    for (size_t yy = 0; yy < H; yy++) {
      uint8_t *o = (uint8_t *)img->data + (b->topdown ? yy : H - 1 - yy) * W * 3;
      for (size_t xx = 0; xx < W; xx++) put_index(b, o + 3 * xx, idx[yy * W + xx]);
    }
  }
  free(idx);
  return st;
}

vg_status vg_bmp_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *limp) {
  memset(out, 0, sizeof *out);
  vg_image_limits lim = vg_image_limits_resolve(limp);
  if (n < 2 || buf[0] != 'B' || buf[1] != 'M') return vg_fail(VG_ERR_FORMAT, "bmp: bad signature (not \"BM\")");
  bmp_info b;
  vg_status st = parse_header(&b, buf, n);
  if (st != VG_OK) return st;
  int oc = (b.bpp == 16 || b.bpp == 32) && b.mask[3] ? 4 : 3;
  size_t bytes;
  if ((st = vg_image_check_size("bmp", b.w, b.h, oc, 1, &lim, &bytes)) != VG_OK) return st;
  out->data = malloc(bytes);
  if (!out->data) return vg_fail(VG_ERR_NOMEM, "bmp: out of memory (%zu bytes)", bytes);
  out->w = b.w;
  out->h = b.h;
  out->c = oc;
  out->depth = 8;
  st = (b.compression == BI_RLE8 || b.compression == BI_RLE4) ? decode_rle(&b, buf, n, out)
                                                             : decode_plain(&b, buf, n, out);
  if (st != VG_OK) vg_image_free(out);
  return st;
}

/* ---------------------------------------------------------------- encoder */

static void put_le16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_le32(uint8_t *p, uint32_t v) { put_le16(p, v); put_le16(p + 2, v >> 16); }

vg_status vg_bmp_encode(const vg_image *img, uint8_t **out, size_t *out_n) {
  *out = NULL;
  *out_n = 0;
  if (!img || !img->data || img->w <= 0 || img->h <= 0 || img->depth != 8 ||
      (img->c != 1 && img->c != 3 && img->c != 4))
    return vg_fail(VG_ERR_ARG, "bmp encode: need depth 8 and c = 1, 3 or 4");
  int c = img->c, bpp = c == 1 ? 8 : c == 3 ? 24 : 32;
  uint32_t hsize = c == 4 ? 108 : 40, npal = c == 1 ? 256 : 0;
  size_t stride = ((size_t)img->w * (size_t)bpp + 31) / 32 * 4, data_n, total;
  size_t off = 14 + hsize + 4 * (size_t)npal;
  if (!vg_mul_ok(stride, (size_t)img->h, &data_n) || !vg_add_ok(data_n, off, &total) || total > 0xFFFFFFFFu)
    return vg_fail(VG_ERR_LIMIT, "bmp encode: image too large for BMP");
  uint8_t *o = calloc(total, 1);
  if (!o) return vg_fail(VG_ERR_NOMEM, "bmp encode: out of memory");
  o[0] = 'B';
  o[1] = 'M';
  put_le32(o + 2, (uint32_t)total);
  put_le32(o + 10, (uint32_t)off);
  uint8_t *h = o + 14;
  put_le32(h, hsize);
  put_le32(h + 4, (uint32_t)img->w);
  put_le32(h + 8, (uint32_t)img->h);           /* positive: bottom-up */
  put_le16(h + 12, 1);
  put_le16(h + 14, (uint32_t)bpp);
  put_le32(h + 16, c == 4 ? BI_BITFIELDS : BI_RGB);
  put_le32(h + 20, (uint32_t)data_n);
  put_le32(h + 24, 2835);                      /* 72 dpi */
  put_le32(h + 28, 2835);
  put_le32(h + 32, npal);
  if (c == 4) {
    put_le32(h + 40, 0x00FF0000); put_le32(h + 44, 0x0000FF00);
    put_le32(h + 48, 0x000000FF); put_le32(h + 52, 0xFF000000);
    memcpy(h + 56, "BGRs", 4);                 /* LCS_sRGB, stored little-endian */
  }
  for (uint32_t i = 0; i < npal; i++) o[14 + hsize + 4 * i] = o[15 + hsize + 4 * i] = o[16 + hsize + 4 * i] = (uint8_t)i;
  const uint8_t *src = img->data;
  for (int y = 0; y < img->h; y++) {
    uint8_t *row = o + off + (size_t)(img->h - 1 - y) * stride;
    const uint8_t *s = src + (size_t)y * img->w * c;
    for (int x = 0; x < img->w; x++, s += c) {
      if (c == 1) row[x] = s[0];
      else { uint8_t *d = row + (size_t)x * (c == 3 ? 3 : 4); d[0] = s[2]; d[1] = s[1]; d[2] = s[0]; if (c == 4) d[3] = s[3]; }
    }
  }
  *out = o;
  *out_n = total;
  return VG_OK;
}
