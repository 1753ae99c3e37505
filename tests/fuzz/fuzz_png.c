/* fuzz_png.c — libFuzzer target for the PNG decoder. See tests/fuzz/README.md.
 *
 * Mutated PNGs mostly die at a CRC, so the first input byte picks a mode:
 *   even: the rest is a PNG file whose chunk CRCs the harness recomputes first;
 *   odd:  the rest is [w, h, bit depth, colour type, interlace, 768-byte PLTE, 256-byte
 *         tRNS alpha flags] + filtered scanlines, wrapped by the harness into a PNG with
 *         valid CRCs and zlib stream, so random data reaches unfilter and expansion.
 * Any image that decodes is re-encoded and must decode back identically. */
#include "datasets/image/image.h"
#include <string.h>

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static size_t chunk(uint8_t *o, const char *type, const uint8_t *d, size_t n) {
  put32(o, (uint32_t)n);
  memcpy(o + 4, type, 4);
  if (n) memcpy(o + 8, d, n);
  put32(o + 8 + n, vg_crc32(0, o + 4, 4 + n));
  return 12 + n;
}

static void check(const uint8_t *png, size_t n) {
  vg_image_limits lim = {4096, (size_t)16 << 20, (size_t)1 << 20};
  vg_image im;
  if (vg_png_decode(png, n, &im, &lim) != VG_OK) {
    if (im.data || !vg_last_error()[0]) __builtin_trap();
    return;
  }
  uint8_t *enc;
  size_t en;
  if (vg_png_encode(&im, &enc, &en) == VG_OK) {
    vg_image back;
    size_t bytes = (size_t)im.w * im.h * im.c * (im.depth / 8);
    if (vg_png_decode(enc, en, &back, &lim) != VG_OK || memcmp(back.data, im.data, bytes) != 0) __builtin_trap();
    vg_image_free(&back);
    free(enc);
  }
  vg_image_free(&im);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n < 1) return 0;
  int mode = data[0] & 1;
  data++;
  n--;
  if (mode == 0) {                       /* fix the CRCs of a mutated file */
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, data, n);
    for (size_t pos = 8; n >= 12 && pos <= n - 12;) {
      uint32_t len = (uint32_t)p[pos] << 24 | p[pos + 1] << 16 | p[pos + 2] << 8 | p[pos + 3];
      if (len > n - pos - 12) break;
      put32(p + pos + 8 + len, vg_crc32(0, p + pos + 4, 4 + (size_t)len));
      pos += 12 + (size_t)len;
    }
    check(p, n);
    free(p);
    return 0;
  }
  enum { HEAD = 5 + 768 + 256 };
  if (n < HEAD) return 0;
  static const uint8_t sig[8] = {137, 'P', 'N', 'G', 13, 10, 26, 10};
  uint8_t ihdr[13] = {0};
  put32(ihdr, 1 + data[0] % 64);
  put32(ihdr + 4, 1 + data[1] % 64);
  static const uint8_t depths[5] = {1, 2, 4, 8, 16}, ctypes[5] = {0, 2, 3, 4, 6};
  ihdr[8] = depths[data[2] % 5];
  ihdr[9] = ctypes[data[3] % 5];
  ihdr[12] = data[4] & 1;
  const uint8_t *pal = data + 5, *alpha = data + 5 + 768, *raw = data + HEAD;
  size_t rawn = n - HEAD;
  uint8_t *z;
  size_t zn;
  if (vg_zlib_deflate(raw, rawn, &z, &zn) != VG_OK) return 0;
  uint8_t *o = malloc(8 + 25 + 780 + 268 + 12 + zn + 12);
  size_t on = 8;
  memcpy(o, sig, 8);
  on += chunk(o + on, "IHDR", ihdr, 13);
  int npal = 1 + pal[0] % 256;
  if (ihdr[9] == 3 || (ihdr[9] == 2 && (pal[1] & 1))) on += chunk(o + on, "PLTE", pal, 3 * (size_t)npal);
  if (alpha[0] & 1) {                    /* tRNS of the right shape for the colour type */
    size_t tn = ihdr[9] == 3 ? (size_t)(1 + alpha[1] % npal) : ihdr[9] == 0 ? 2 : ihdr[9] == 2 ? 6 : 0;
    if (tn) on += chunk(o + on, "tRNS", alpha + 2, tn);
  }
  on += chunk(o + on, "IDAT", z, zn);
  on += chunk(o + on, "IEND", NULL, 0);
  check(o, on);
  free(o);
  free(z);
  return 0;
}
