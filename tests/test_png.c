/* test_png.c — checksums, inflate/deflate, the PNG decoder against PngSuite and the
 * Go project's invalid PNGs, truncation and corruption robustness, limits, chunk
 * ordering, and encoder round trips. */
#include "tests/vgtest.h"
#include "datasets/image/image.h"
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static uint8_t *read_all(const char *path, size_t *n) {
  uint8_t *buf;
  if (vg_image_read_file(path, &buf, n, (size_t)64 << 20) != VG_OK) return NULL;
  return buf;
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* Any decoded image as 8-bit RGBA (16-bit samples reduced with >> 8). */
static uint8_t *to_rgba8(const vg_image *im) {
  size_t np = (size_t)im->w * im->h;
  uint8_t *o = malloc(np * 4);
  for (size_t i = 0; i < np; i++) {
    unsigned s[4] = {0};
    for (int k = 0; k < im->c; k++) {
      size_t j = i * im->c + k;
      s[k] = im->depth == 8 ? ((const uint8_t *)im->data)[j] : ((const uint16_t *)im->data)[j] >> 8;
    }
    unsigned r, g, b, a = 255;
    if (im->c <= 2) { r = g = b = s[0]; if (im->c == 2) a = s[1]; }
    else { r = s[0]; g = s[1]; b = s[2]; if (im->c == 4) a = s[3]; }
    o[4 * i] = (uint8_t)r; o[4 * i + 1] = (uint8_t)g; o[4 * i + 2] = (uint8_t)b; o[4 * i + 3] = (uint8_t)a;
  }
  return o;
}

static const char *const primary_files[] = {
  "basi0g01", "basi0g02", "basi0g04", "basi0g08", "basi2c08", "basi3p01", "basi3p02", "basi3p04", "basi3p08",
  "basi4a08", "basi6a08", "basn0g01", "basn0g02", "basn0g04", "basn0g08", "basn2c08", "basn3p01", "basn3p02",
  "basn3p04", "basn3p08", "basn4a08", "basn6a08", "bgai4a08", "bgan6a08", "bgbn4a08", "bgwn6a08", "s01i3p01",
  "s01n3p01", "s02i3p01", "s02n3p01", "s03i3p01", "s03n3p01", "s04i3p01", "s04n3p01", "s05i3p02", "s05n3p02",
  "s06i3p02", "s06n3p02", "s07i3p02", "s07n3p02", "s08i3p02", "s08n3p02", "s09i3p02", "s09n3p02", "s32i3p04",
  "s32n3p04", "s33i3p04", "s33n3p04", "s34i3p04", "s34n3p04", "s35i3p04", "s35n3p04", "s36i3p04", "s36n3p04",
  "s37i3p04", "s37n3p04", "s38i3p04", "s38n3p04", "s39i3p04", "s39n3p04", "s40i3p04", "s40n3p04", "tbbn0g04",
  "tbbn3p08", "tbgn3p08", "tbrn2c08", "tbwn3p08", "tbyn3p08", "tm3n3p02", "tp0n0g08", "tp0n2c08", "tp0n3p08",
  "tp1n3p08", "z00n2c08", "z03n2c08", "z06n2c08", "z09n2c08"};
#define N_PRIMARY ((int)(sizeof primary_files / sizeof *primary_files))

static const char *const files16[] = {
  "basi0g16", "basi2c16", "basi4a16", "basi6a16", "basn0g16", "basn2c16", "basn4a16", "basn6a16",
  "bgai4a16", "bgan6a16", "bggn4a16", "bgyn6a16", "oi1n0g16", "oi1n2c16", "oi2n0g16", "oi2n2c16",
  "oi4n0g16", "oi4n2c16", "oi9n0g16", "oi9n2c16", "tbbn2c16", "tbgn2c16", "tbwn0g16"};
#define N_16 ((int)(sizeof files16 / sizeof *files16))

/* Corrupt files and a word their error message must contain. */
static const struct { const char *file, *expect; } bad_files[] = {
  {"pngsuite/corrupt/xc1n0g08.png", "colour type"}, {"pngsuite/corrupt/xc9n2c08.png", "colour type"},
  {"pngsuite/corrupt/xcrn0g04.png", "signature"},   {"pngsuite/corrupt/xcsn0g01.png", "CRC"},
  {"pngsuite/corrupt/xd0n2c08.png", "bit depth"},   {"pngsuite/corrupt/xd3n2c08.png", "bit depth"},
  {"pngsuite/corrupt/xd9n2c08.png", "bit depth"},   {"pngsuite/corrupt/xdtn0g01.png", "no IDAT"},
  {"pngsuite/corrupt/xhdn0g08.png", "CRC mismatch in chunk IHDR"},
  {"pngsuite/corrupt/xlfn0g04.png", "signature"},   {"pngsuite/corrupt/xs1n0g01.png", "signature"},
  {"pngsuite/corrupt/xs2n0g01.png", "signature"},   {"pngsuite/corrupt/xs4n0g01.png", "signature"},
  {"pngsuite/corrupt/xs7n0g01.png", "signature"},
  {"png-invalid/invalid-crc32.png", "CRC"},         {"png-invalid/invalid-noend.png", "no IEND"},
  {"png-invalid/invalid-palette.png", "palette index"}, {"png-invalid/invalid-trunc.png", "truncated"},
  {"png-invalid/invalid-zlib.png", "zlib"}};
#define N_BAD ((int)(sizeof bad_files / sizeof *bad_files))

/* A growable byte buffer to build PNGs chunk by chunk. */
typedef struct { uint8_t *p; size_t n, cap; } bytes;

static void put(bytes *b, const void *src, size_t n) {
  if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = realloc(b->p, b->cap); }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}

static void put32(bytes *b, uint32_t v) {
  uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  put(b, q, 4);
}

static void chunk(bytes *b, const char *type, const void *data, uint32_t len) {
  put32(b, len);
  size_t at = b->n;
  put(b, type, 4);
  if (len) put(b, data, len);
  put32(b, vg_crc32(0, b->p + at, 4 + (size_t)len));
}

static void png_start(bytes *b, uint32_t w, uint32_t h, int depth, int ctype) {
  static const uint8_t sig[8] = {137, 'P', 'N', 'G', 13, 10, 26, 10};
  b->n = 0;
  put(b, sig, 8);
  uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                      (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                      (uint8_t)depth, (uint8_t)ctype, 0, 0, 0};
  chunk(b, "IHDR", ihdr, 13);
}

/* IDAT holding `raw` (filtered scanlines) compressed by our deflater. */
static void idat_of(bytes *b, const uint8_t *raw, size_t n) {
  uint8_t *z;
  size_t zn;
  vg_zlib_deflate(raw, n, &z, &zn);
  chunk(b, "IDAT", z, (uint32_t)zn);
  free(z);
}

/* Decodes, expecting failure with `expect` in the message. */
static void expect_fail(const uint8_t *p, size_t n, vg_status want, const char *expect, const char *what) {
  vg_image im;
  vg_status st = vg_png_decode(p, n, &im, NULL);
  VG_CHECK(st == want && contains(vg_last_error(), expect) && im.data == NULL, "%s -> %s (\"%s\")", what,
           vg_status_name(st), vg_last_error());
  vg_image_free(&im);
}

/* Minimal LSB-first bit writer to hand-craft deflate streams. */
typedef struct { uint8_t buf[64]; int bit; } bits;
static void bput(bits *b, uint32_t v, int k) {
  for (int i = 0; i < k; i++, b->bit++)
    if ((v >> i) & 1) b->buf[b->bit >> 3] |= (uint8_t)(1 << (b->bit & 7));
}
static void bput_rev(bits *b, uint32_t code, int k) {   /* Huffman codes go MSB first */
  for (int i = k - 1; i >= 0; i--) bput(b, (code >> i) & 1, 1);
}

/* ---------------------------------------------------------------- tests */

static void test_checksums(void) {
  VG_CHECK(vg_crc32(0, (const uint8_t *)"123456789", 9) == 0xCBF43926u, "crc32(\"123456789\") = cbf43926");
  uint32_t c = vg_crc32(0, (const uint8_t *)"1234", 4);
  VG_CHECK(vg_crc32(c, (const uint8_t *)"56789", 5) == 0xCBF43926u, "crc32 continues across calls");
  VG_CHECK(vg_adler32(1, (const uint8_t *)"Wikipedia", 9) == 0x11E60398u, "adler32(\"Wikipedia\") = 11e60398");
  uint8_t *big = malloc(100000);
  for (int i = 0; i < 100000; i++) big[i] = 255;
  /* Reference computed with the definition, modulo at every step. */
  uint32_t a = 1, bsum = 0;
  for (int i = 0; i < 100000; i++) { a = (a + 255) % 65521; bsum = (bsum + a) % 65521; }
  VG_CHECK(vg_adler32(1, big, 100000) == (bsum << 16 | a), "adler32 of 100000 x 0xff matches the definition");
  free(big);
}

static const uint8_t z_stored[] = {0x78, 0x01, 0x01, 0x22, 0x00, 0xdd, 0xff, 0x73, 0x74, 0x6f, 0x72, 0x65, 0x64, 0x20, 0x62, 0x6c, 0x6f, 0x63, 0x6b, 0x3a, 0x20, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2c, 0x20, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2c, 0x20, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x21, 0xda, 0x64, 0x0c, 0x0c};
static const uint8_t z_fixed[] = {0x78, 0xda, 0x4b, 0xcb, 0xac, 0x48, 0x4d, 0x51, 0xc8, 0x28, 0x4d, 0x4b, 0xcb, 0x4d, 0xcc, 0xb3, 0x52, 0x48, 0x4c, 0x4a, 0x46, 0x43, 0x0a, 0x19, 0xa9, 0x39, 0x39, 0xf9, 0xc8, 0x24, 0x00, 0xeb, 0xc6, 0x12, 0xf0};
/* zlib.compress(text, 9) of 690 bytes of random words (Python's zlib picks a dynamic block). */
static const uint8_t z_dynamic[] = {0x78, 0xda, 0x65, 0x51, 0x8b, 0x12, 0x83, 0x20, 0x0c, 0xfb, 0x15, 0x7e, 0x8d, 0x39, 0xa6, 0x6c, 0x28, 0x9b, 0x0f, 0x74, 0xfb, 0xfa, 0xd9, 0x86, 0xda, 0x7a, 0xde, 0x29, 0x47, 0x9b, 0x26, 0x4d, 0x4b, 0x89, 0x6d, 0x4c, 0xee, 0xb9, 0xf4, 0xef, 0xc9, 0x3d, 0xf2, 0xe8, 0x3e, 0x4b, 0x6c, 0x5e, 0xee, 0x36, 0xe6, 0x75, 0xd8, 0xe3, 0xcd, 0xad, 0x7e, 0x6e, 0xba, 0x30, 0xd5, 0xfc, 0xdc, 0x85, 0x53, 0x85, 0x1f, 0x72, 0xef, 0x53, 0xdc, 0x71, 0xbd, 0x01, 0x49, 0xfe, 0xf7, 0xbd, 0x14, 0x81, 0x4a, 0xb2, 0x0c, 0x4b, 0x28, 0x5d, 0x4d, 0x12, 0x86, 0xd6, 0x2e, 0xa6, 0x60, 0xf8, 0x62, 0x73, 0xab, 0x48, 0x2e, 0x61, 0xe4, 0x90, 0x7c, 0x89, 0x53, 0x8a, 0xd1, 0x58, 0x3d, 0xc7, 0xde, 0xb7, 0x27, 0x93, 0x85, 0xc7, 0x8e, 0x03, 0x7d, 0x42, 0x84, 0x26, 0x9b, 0x60, 0x61, 0x33, 0x02, 0xa0, 0xaa, 0x72, 0x70, 0x91, 0xd5, 0x5d, 0xa9, 0x3c, 0xf3, 0x8b, 0x59, 0xed, 0xc5, 0x80, 0xdd, 0x22, 0x0a, 0x71, 0x8a, 0x99, 0x4a, 0xd8, 0xbb, 0xa0, 0x06, 0xe7, 0x3d, 0xb7, 0x82, 0xd8, 0x11, 0xab, 0x3d, 0x71, 0x44, 0x1b, 0x15, 0x1d, 0x9e, 0x5e, 0x67, 0x3c, 0x36, 0x56, 0x55, 0x74, 0x45, 0xa0, 0xc2, 0x2d, 0x4f, 0x4e, 0x2a, 0xf4, 0x9f, 0xfa, 0x31, 0x3f, 0x0e, 0x0c, 0x90, 0x19, 0xd4, 0xeb, 0x58, 0x94, 0xd3, 0x48, 0x9f, 0xa4, 0x6e, 0x13, 0xe5, 0x46, 0xca, 0xf4, 0xe3, 0xc3, 0x3c, 0x16, 0xe3, 0xa4, 0x07, 0x67, 0x84, 0x70, 0xf5, 0x1f, 0x5a, 0x77, 0x00, 0x9b};

static void test_inflate_blocks(void) {
  uint8_t out[1024];
  const char *s1 = "stored block: hello, hello, hello!";
  const char *s2 = "fixed huffman: abcabcabcabcabcabc hello hello hello";
  VG_CHECK((z_stored[2] >> 1 & 3) == 0 && (z_fixed[2] >> 1 & 3) == 1 && (z_dynamic[2] >> 1 & 3) == 2,
           "test streams start with a stored, a fixed and a dynamic block");
  vg_status st = vg_zlib_inflate(z_stored, sizeof z_stored, out, strlen(s1));
  VG_CHECK(st == VG_OK && memcmp(out, s1, strlen(s1)) == 0, "inflate stored block");
  st = vg_zlib_inflate(z_fixed, sizeof z_fixed, out, strlen(s2));
  VG_CHECK(st == VG_OK && memcmp(out, s2, strlen(s2)) == 0, "inflate fixed-Huffman block");
  st = vg_zlib_inflate(z_dynamic, sizeof z_dynamic, out, 690);
  VG_CHECK(st == VG_OK && vg_crc32(0, out, 690) == 0x08fc35b6u && memcmp(out, "vigil jumps for quick brown fox", 31) == 0,
           "inflate dynamic-Huffman block: 690 bytes, crc32 08fc35b6");
  /* Exact size: one byte fewer is a limit error, one more an early end. */
  st = vg_zlib_inflate(z_dynamic, sizeof z_dynamic, out, 689);
  VG_CHECK(st == VG_ERR_LIMIT && contains(vg_last_error(), "more than the expected 689"), "output cap 689 of 690: %s",
           vg_last_error());
  st = vg_zlib_inflate(z_dynamic, sizeof z_dynamic, out, 691);
  VG_CHECK(st == VG_ERR_FORMAT && contains(vg_last_error(), "ended early"), "expected 691 of 690: %s", vg_last_error());
  /* Raw inflate reports what it consumed: everything but the 2-byte header and Adler. */
  size_t used = 0, got = 0;
  st = vg_inflate_raw(z_dynamic + 2, sizeof z_dynamic - 2, &used, out, sizeof out, &got);
  VG_CHECK(st == VG_OK && got == 690 && used == sizeof z_dynamic - 6, "raw inflate: 690 out, %zu consumed", used);
  /* Every truncation of the stream fails cleanly. */
  int clean = 1;
  for (size_t k = 0; k < sizeof z_dynamic; k++) {
    vg_clear_error();
    if (vg_zlib_inflate(z_dynamic, k, out, 690) == VG_OK || vg_last_error()[0] == 0) clean = 0;
  }
  VG_CHECK(clean, "all %zu truncations of the dynamic stream are refused with a message", sizeof z_dynamic);
  /* Corruptions: Adler-32, header check, dictionary flag. */
  uint8_t bad[sizeof z_fixed];
  memcpy(bad, z_fixed, sizeof bad);
  bad[sizeof bad - 1] ^= 1;
  st = vg_zlib_inflate(bad, sizeof bad, out, strlen(s2));
  VG_CHECK(st == VG_ERR_FORMAT && contains(vg_last_error(), "Adler-32"), "bad Adler-32 refused: %s", vg_last_error());
  memcpy(bad, z_fixed, sizeof bad);
  bad[1] ^= 1;
  st = vg_zlib_inflate(bad, sizeof bad, out, strlen(s2));
  VG_CHECK(st == VG_ERR_FORMAT && contains(vg_last_error(), "header check"), "bad zlib header refused: %s", vg_last_error());
  uint8_t dict[] = {0x78, 0xbb, 0, 0, 0, 0};
  VG_CHECK(vg_zlib_inflate(dict, sizeof dict, out, 1) == VG_ERR_UNSUPPORTED && contains(vg_last_error(), "dictionary"),
           "preset dictionary refused: %s", vg_last_error());
  uint8_t stored_bad[] = {0x01, 0x05, 0x00, 0xfa, 0xfe, 'a', 'b', 'c', 'd', 'e'};   /* NLEN != ~LEN */
  st = vg_inflate_raw(stored_bad, sizeof stored_bad, NULL, out, sizeof out, &got);
  VG_CHECK(st == VG_ERR_FORMAT && contains(vg_last_error(), "NLEN"), "stored LEN/NLEN mismatch: %s", vg_last_error());
  /* Hand-made: block type 3; a fixed block whose first symbol is a match (nothing to copy). */
  bits b = {{0}, 0};
  bput(&b, 1, 1);
  bput(&b, 3, 2);
  st = vg_inflate_raw(b.buf, 1, NULL, out, sizeof out, &got);
  VG_CHECK(st == VG_ERR_FORMAT && contains(vg_last_error(), "block type 3"), "block type 3 refused: %s", vg_last_error());
  memset(&b, 0, sizeof b);
  bput(&b, 1, 1);
  bput(&b, 1, 2);
  bput_rev(&b, 1, 7);              /* length symbol 257 (length 3) */
  bput_rev(&b, 0, 5);              /* distance symbol 0 (distance 1) */
  bput_rev(&b, 0, 7);              /* end of block */
  st = vg_inflate_raw(b.buf, 4, NULL, out, sizeof out, &got);
  VG_CHECK(st == VG_ERR_FORMAT && contains(vg_last_error(), "too far back"), "distance before the start refused: %s",
           vg_last_error());
  memset(&b, 0, sizeof b);
  bput(&b, 1, 1);
  bput(&b, 1, 2);
  bput_rev(&b, 0xC6, 8);           /* literal/length symbol 286: invalid */
  st = vg_inflate_raw(b.buf, 4, NULL, out, sizeof out, &got);
  VG_CHECK(st == VG_ERR_FORMAT && contains(vg_last_error(), "invalid length symbol 286"), "fixed symbol 286 refused: %s",
           vg_last_error());
  memset(&b, 0, sizeof b);
  bput(&b, 1, 1);
  bput(&b, 2, 2);
  bput(&b, 30, 5);                 /* HLIT = 287 > 286 */
  bput(&b, 0, 5);
  bput(&b, 0, 4);
  st = vg_inflate_raw(b.buf, 8, NULL, out, sizeof out, &got);
  VG_CHECK(st == VG_ERR_FORMAT && contains(vg_last_error(), "too many"), "dynamic HLIT 287 refused: %s", vg_last_error());
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13; rng_state ^= rng_state >> 17; rng_state ^= rng_state << 5;
  return rng_state;
}

static void test_deflate_roundtrip(void) {
  static const size_t sizes[] = {0, 1, 2, 3, 4, 100, 4097, 70000, 300000};
  for (int kind = 0; kind < 3; kind++) {
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
      size_t n = sizes[si];
      uint8_t *in = malloc(n + 1), *back = malloc(n + 1), *z;
      for (size_t i = 0; i < n; i++) {
        /* 0: uniform random; 1: few symbols with runs; 2: repeats of a 40 KB-away block. */
        if (kind == 0) in[i] = (uint8_t)rnd();
        else if (kind == 1) in[i] = (rnd() % 8 == 0) ? (uint8_t)(rnd() % 4) : (i ? in[i - 1] : 0);
        else in[i] = i >= 40000 && rnd() % 50 ? in[i - 40000 + (i % 3)] : (uint8_t)rnd();
      }
      size_t zn;
      vg_status st = vg_zlib_deflate(in, n, &z, &zn);
      int ok = st == VG_OK && vg_zlib_inflate(z, zn, back, n) == VG_OK && (n == 0 || memcmp(in, back, n) == 0);
      VG_CHECK(ok, "deflate/inflate round trip, data kind %d, %zu bytes -> %zu", kind, n, zn);
      if (kind == 1 && n == 300000) VG_CHECK(zn < n / 4, "runs compress: %zu -> %zu bytes", n, zn);
      free(z);
      free(in);
      free(back);
    }
  }
}

/* A decompression bomb: 1 MB of zeros must not be inflated into a 1000-byte buffer,
 * neither through the zlib API nor inside a PNG claiming a 1x1 image. */
static void test_bomb(void) {
  size_t n = 1 << 20, zn;
  uint8_t *zeros = calloc(n, 1), *z;
  vg_zlib_deflate(zeros, n, &z, &zn);
  VG_CHECK(zn < 10000, "1 MiB of zeros deflates to %zu bytes", zn);
  uint8_t *small = malloc(1000);   /* ASan would flag any write past these 1000 bytes */
  vg_status st = vg_zlib_inflate(z, zn, small, 1000);
  VG_CHECK(st == VG_ERR_LIMIT, "bomb stopped at the expected size: %s", vg_last_error());
  bytes b = {0};
  png_start(&b, 1, 1, 8, 0);
  chunk(&b, "IDAT", z, (uint32_t)zn);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_LIMIT, "more than the expected 2", "1x1 PNG whose IDAT inflates to 1 MiB");
  free(b.p);
  free(small);
  free(z);
  free(zeros);
}

static void test_pngsuite_primary(void) {
  int pass = 0;
  char path[256];
  for (int i = 0; i < N_PRIMARY; i++) {
    vg_image a, b;
    snprintf(path, sizeof path, "%s", vg_test_shared("pngsuite/primary/"));
    strncat(path, primary_files[i], sizeof path - strlen(path) - 5);
    strcat(path, ".png");
    vg_status sa = vg_image_load(path, &a, NULL);
    snprintf(path, sizeof path, "%s%s.png", vg_test_shared("pngsuite/primary_check/"), primary_files[i]);
    vg_status sb = vg_image_load(path, &b, NULL);
    int ok = sa == VG_OK && sb == VG_OK && a.w == b.w && a.h == b.h;
    size_t diff = 0;
    if (ok) {
      uint8_t *ra = to_rgba8(&a), *rb = to_rgba8(&b);
      for (size_t k = 0; k < (size_t)a.w * a.h * 4; k++) diff += ra[k] != rb[k];
      free(ra);
      free(rb);
      ok = diff == 0;
    }
    pass += ok;
    VG_CHECK(ok, "pngsuite %s: %dx%d c=%d depth %d, %zu samples differ from primary_check %s", primary_files[i], a.w,
             a.h, a.c, a.depth, diff, sa != VG_OK || sb != VG_OK ? vg_last_error() : "");
    vg_image_free(&a);
    vg_image_free(&b);
  }
  VG_CHECK(pass == N_PRIMARY, "pngsuite primary: %d of %d identical to their references", pass, N_PRIMARY);

  /* Spot checks of the output layout the API promises (channels, depth, scaling). */
  static const struct { const char *f; int c, depth; } layout[] = {
    {"basn0g01", 1, 8}, {"basn0g04", 1, 8}, {"basn3p04", 3, 8}, {"tbbn3p08", 4, 8},
    {"tbbn0g04", 2, 8}, {"tbrn2c08", 4, 8}, {"basn4a08", 2, 8}, {"basn6a08", 4, 8}};
  for (size_t i = 0; i < sizeof layout / sizeof *layout; i++) {
    vg_image im;
    snprintf(path, sizeof path, "%s%s.png", vg_test_shared("pngsuite/primary/"), layout[i].f);
    vg_status st = vg_image_load(path, &im, NULL);
    VG_CHECK(st == VG_OK && im.c == layout[i].c && im.depth == layout[i].depth, "%s decodes to c=%d depth %d (got c=%d depth %d)",
             layout[i].f, layout[i].c, layout[i].depth, im.c, im.depth);
    vg_image_free(&im);
  }
  /* 1-bit grey: only 0 and 255 appear; 4-bit grey: multiples of 17. */
  vg_image im;
  snprintf(path, sizeof path, "%s", vg_test_shared("pngsuite/primary/basn0g01.png"));
  if (vg_image_load(path, &im, NULL) == VG_OK) {
    int ok = 1, n255 = 0;
    for (int k = 0; k < im.w * im.h; k++) { uint8_t v = ((uint8_t *)im.data)[k]; ok &= v == 0 || v == 255; n255 += v == 255; }
    VG_CHECK(ok && n255 > 0 && n255 < im.w * im.h, "basn0g01: samples are 0 or 255 (%d white)", n255);
    vg_image_free(&im);
  }
  snprintf(path, sizeof path, "%s", vg_test_shared("pngsuite/primary/basn0g04.png"));
  if (vg_image_load(path, &im, NULL) == VG_OK) {
    int ok = 1, levels[16] = {0}, nlev = 0;
    for (int k = 0; k < im.w * im.h; k++) {
      uint8_t v = ((uint8_t *)im.data)[k];
      ok &= v % 17 == 0;
      if (v % 17 == 0 && !levels[v / 17]++) nlev++;
    }
    /* Pillow sees the 15 levels 0, 17, ..., 238 in this file. */
    VG_CHECK(ok && nlev == 15 && levels[0] && levels[14], "basn0g04: samples are 15 multiples of 17 from 0 to 238");
    vg_image_free(&im);
  }
}

/* 16bit/ files against Pillow's decode (tests/fixtures/image/pngsuite16_pillow.bin, see
 * tools/gen_image_fixtures.py): grey at full 16 bits; colour as Pillow's 8-bit reduction,
 * which the data show is the high byte (v >> 8). */
static void test_pngsuite_16bit(void) {
  size_t n;
  uint8_t *ref = read_all(vg_test_fixture("image/pngsuite16_pillow.bin"), &n);
  if (!VG_CHECK(ref != NULL, "read pngsuite16_pillow.bin")) return;
  int pass = 0, files = 0;
  for (size_t pos = 0; pos + 48 <= n; files++) {
    const uint8_t *r = ref + pos;
    char name[33] = {0}, mode[5] = {0};
    memcpy(name, r, 32);
    memcpy(mode, r + 32, 4);
    uint32_t w = r[36] | r[37] << 8, h = r[40] | r[41] << 8, nb = r[44] | r[45] << 8 | r[46] << 16;
    const uint8_t *px = r + 48;
    pos += 48 + nb;
    char path[256];
    snprintf(path, sizeof path, "%s%s", vg_test_shared("pngsuite/16bit/"), name);
    vg_image im;
    vg_status st = vg_image_load(path, &im, NULL);
    size_t diff = 0, np = (size_t)w * h;
    int ok = st == VG_OK && (uint32_t)im.w == w && (uint32_t)im.h == h && im.depth == 16;
    if (ok && strcmp(mode, "I") == 0) {
      for (size_t i = 0; i < np; i++) diff += ((uint16_t *)im.data)[i * im.c] != (px[2 * i] | px[2 * i + 1] << 8);
    } else if (ok) {
      int rc = strcmp(mode, "RGBA") == 0 ? 4 : 3;
      uint8_t *mine = to_rgba8(&im);
      for (size_t i = 0; i < np; i++)
        for (int k = 0; k < rc; k++) {
          /* Pillow expands grey+alpha to RGBA: compare the grey in R, G, B. */
          diff += mine[4 * i + k] != px[rc * i + k];
        }
      free(mine);
    }
    ok = ok && diff == 0;
    pass += ok;
    VG_CHECK(ok, "pngsuite 16bit %s (Pillow mode %s): c=%d, %zu samples differ %s", name, mode, im.c, diff,
             st ? vg_last_error() : "");
    vg_image_free(&im);
  }
  VG_CHECK(files == N_16 && pass == N_16, "pngsuite 16bit: %d of %d files match Pillow", pass, files);
  free(ref);
  /* tRNS on 16-bit RGB: alpha 0 exactly where the pixel equals the key, 65535 elsewhere. */
  vg_image im;
  if (vg_image_load(vg_test_shared("pngsuite/16bit/tbbn2c16.png"), &im, NULL) == VG_OK) {
    const uint16_t *p = im.data;
    int zeros = 0, ok = im.c == 4;
    for (int i = 0; ok && i < im.w * im.h; i++) { zeros += p[4 * i + 3] == 0; ok &= p[4 * i + 3] == 0 || p[4 * i + 3] == 65535; }
    VG_CHECK(ok && zeros > 0, "tbbn2c16: RGB+tRNS -> RGBA16 with %d transparent pixels", zeros);
    vg_image_free(&im);
  }
}

static void test_rejects(void) {
  for (int i = 0; i < N_BAD; i++) {
    vg_image im;
    const char *path = vg_test_shared(bad_files[i].file);
    char p[256];
    snprintf(p, sizeof p, "%s", path);
    vg_status st = vg_image_load(p, &im, NULL);
    /* vg_image_load prefixes the path: the message names the file and the problem. */
    VG_CHECK(st != VG_OK && contains(vg_last_error(), bad_files[i].expect) && contains(vg_last_error(), p) && !im.data,
             "%s refused: %s", bad_files[i].file, vg_last_error());
    vg_image_free(&im);
  }
  static const char *const iphone[] = {"iphone_basi0g01", "iphone_basi0g02", "iphone_basi3p02", "iphone_bgwn6a08",
                                       "iphone_bgyn6a16", "iphone_tbyn3p08", "iphone_z06n2c08"};
  for (int i = 0; i < 7; i++) {
    char p[256];
    snprintf(p, sizeof p, "%s%s.png", vg_test_shared("pngsuite/iphone/"), iphone[i]);
    vg_image im;
    vg_status st = vg_image_load(p, &im, NULL);
    VG_CHECK(st == VG_ERR_UNSUPPORTED && contains(vg_last_error(), "CgBI"), "%s refused: %s", iphone[i], vg_last_error());
  }
  vg_image im;
  vg_status st = vg_image_load("no/such/file.png", &im, NULL);
  VG_CHECK(st == VG_ERR_IO && contains(vg_last_error(), "no/such/file.png"), "missing file: %s", vg_last_error());
}

/* Every prefix of every PngSuite and png-invalid file: a clean error (or, for the whole
 * file, a decode), never a crash; run under ASan+UBSan by `make SAN=1 test`. */
static void test_truncations(void) {
  static const char *const dirs[] = {"pngsuite/primary/", "pngsuite/16bit/", "pngsuite/corrupt/", "png-invalid/",
                                     "pngsuite/iphone/"};
  static const char *const invalid[] = {"invalid-crc32", "invalid-noend", "invalid-palette", "invalid-trunc", "invalid-zlib"};
  static const char *const corrupt[] = {"xc1n0g08", "xc9n2c08", "xcrn0g04", "xcsn0g01", "xd0n2c08", "xd3n2c08", "xd9n2c08",
                                        "xdtn0g01", "xhdn0g08", "xlfn0g04", "xs1n0g01", "xs2n0g01", "xs4n0g01", "xs7n0g01"};
  static const char *const iphone[] = {"iphone_basi0g01", "iphone_bgyn6a16", "iphone_z06n2c08"};
  size_t prefixes = 0, bad = 0, nfiles = 0;
  for (int d = 0; d < 5; d++) {
    int nf = d == 0 ? N_PRIMARY : d == 1 ? N_16 : d == 2 ? 14 : d == 3 ? 5 : 3;
    for (int f = 0; f < nf; f++) {
      const char *name = d == 0 ? primary_files[f] : d == 1 ? files16[f] : d == 2 ? corrupt[f] : d == 3 ? invalid[f] : iphone[f];
      char p[256];
      snprintf(p, sizeof p, "%s%s%s.png", vg_test_shared(dirs[d]), "", name);
      size_t n;
      uint8_t *buf = read_all(p, &n);
      if (!buf) { bad++; continue; }
      nfiles++;
      for (size_t k = 0; k < n; k++) {
        uint8_t *cut = malloc(k ? k : 1);    /* exact-size copy: ASan sees any over-read */
        memcpy(cut, buf, k);
        vg_image im;
        vg_clear_error();
        vg_status st = vg_image_decode(cut, k, &im, NULL);
        if (st == VG_OK || vg_last_error()[0] == 0 || im.data) bad++;
        vg_image_free(&im);
        free(cut);
        prefixes++;
      }
      free(buf);
    }
  }
  VG_CHECK(bad == 0 && nfiles == (size_t)N_PRIMARY + N_16 + 14 + 5 + 3,
           "%zu proper prefixes of %zu PNG files all refused with a message (%zu not)", prefixes, nfiles, bad);
}

/* Flips bytes inside the zlib data of a few files, fixes the chunk CRC so the damage
 * reaches inflate and the unfilter/expand steps: each must decode or fail cleanly. */
static void test_idat_corruption(void) {
  static const char *const files[] = {"pngsuite/primary/basn2c08.png", "pngsuite/primary/basi3p04.png",
                                      "pngsuite/primary/z09n2c08.png", "pngsuite/16bit/basi6a16.png",
                                      "pngsuite/primary/basi0g01.png"};
  size_t trials = 0, decoded = 0, bad = 0;
  for (int f = 0; f < 5; f++) {
    size_t n;
    uint8_t *buf = read_all(vg_test_shared(files[f]), &n);
    if (!buf) { bad++; continue; }
    /* Locate the first IDAT. */
    size_t pos = 8, at = 0, len = 0;
    while (pos + 12 <= n) {
      uint32_t l = (uint32_t)buf[pos] << 24 | buf[pos + 1] << 16 | buf[pos + 2] << 8 | buf[pos + 3];
      if (memcmp(buf + pos + 4, "IDAT", 4) == 0) { at = pos; len = l; break; }
      pos += 12 + l;
    }
    for (size_t i = 0; i < len; i += (len > 600 ? 3 : 1)) {
      for (int m = 0; m < 3; m++) {
        static const uint8_t masks[3] = {0x01, 0x80, 0x5a};
        uint8_t *c = malloc(n);
        memcpy(c, buf, n);
        c[at + 8 + i] ^= masks[m];
        uint32_t crc = vg_crc32(0, c + at + 4, 4 + len);
        c[at + 8 + len] = (uint8_t)(crc >> 24); c[at + 9 + len] = (uint8_t)(crc >> 16);
        c[at + 10 + len] = (uint8_t)(crc >> 8); c[at + 11 + len] = (uint8_t)crc;
        vg_image im;
        vg_clear_error();
        vg_status st = vg_png_decode(c, n, &im, NULL);
        if (st == VG_OK) decoded++;
        else if (vg_last_error()[0] == 0 || im.data) bad++;
        vg_image_free(&im);
        free(c);
        trials++;
      }
    }
    free(buf);
  }
  VG_CHECK(bad == 0 && trials > 1000, "%zu IDAT corruptions: %zu still decode, the rest refused cleanly", trials, decoded);
}

static void test_limits_and_chunks(void) {
  bytes b = {0};
  uint8_t raw[64] = {0};           /* filter byte 0 + pixels, enough for the tiny images below */
  /* A valid 2x2 grey image to start from. */
  png_start(&b, 2, 2, 8, 0);
  raw[0] = 0; raw[1] = 10; raw[2] = 20; raw[3] = 1; raw[4] = 5; raw[5] = 7;   /* row 2: Sub filter */
  idat_of(&b, raw, 6);
  chunk(&b, "IEND", NULL, 0);
  vg_image im;
  vg_status st = vg_png_decode(b.p, b.n, &im, NULL);
  VG_CHECK(st == VG_OK && im.w == 2 && im.c == 1 && ((uint8_t *)im.data)[2] == 5 && ((uint8_t *)im.data)[3] == 12,
           "hand-made 2x2 grey PNG with a Sub row decodes");
  vg_image_free(&im);

  vg_image_limits lim = {1, 0, 0};
  st = vg_png_decode(b.p, b.n, &im, &lim);
  VG_CHECK(st == VG_ERR_LIMIT && contains(vg_last_error(), "side limit"), "max_side 1 refuses 2x2: %s", vg_last_error());
  lim = (vg_image_limits){0, 3, 0};
  st = vg_png_decode(b.p, b.n, &im, &lim);
  VG_CHECK(st == VG_ERR_LIMIT && contains(vg_last_error(), "limit of 3 bytes"), "max_bytes 3 refuses 4 bytes: %s",
           vg_last_error());
  lim = (vg_image_limits){0, 0, 5};
  st = vg_png_decode(b.p, b.n, &im, &lim);
  VG_CHECK(st == VG_ERR_LIMIT && contains(vg_last_error(), "IHDR length 13 exceeds the limit 5"),
           "max_chunk 5 refuses IHDR: %s", vg_last_error());

  png_start(&b, 16385, 1, 8, 0);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_LIMIT, "side limit 16384", "16385x1 refused by default");
  png_start(&b, 16384, 16384, 16, 6);     /* 2 GiB decoded: refused before any allocation */
  idat_of(&b, raw, 2);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_LIMIT, "exceeds the limit of 268435456 bytes", "16384^2 RGBA16 refused");
  png_start(&b, 0x80000000u, 1, 8, 0);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "invalid image size", "width 2^31 refused");
  png_start(&b, 2, 2, 8, 0);
  chunk(&b, "IHDR", b.p + 16, 13);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "more than one IHDR", "second IHDR");
  png_start(&b, 2, 2, 8, 0);
  b.p[28] = 1;                             /* interlace 1 -> fix CRC */
  {
    uint32_t crc = vg_crc32(0, b.p + 12, 17);
    b.p[29] = (uint8_t)(crc >> 24); b.p[30] = (uint8_t)(crc >> 16); b.p[31] = (uint8_t)(crc >> 8); b.p[32] = (uint8_t)crc;
  }
  b.p[28] = 2;
  {
    uint32_t crc = vg_crc32(0, b.p + 12, 17);
    b.p[29] = (uint8_t)(crc >> 24); b.p[30] = (uint8_t)(crc >> 16); b.p[31] = (uint8_t)(crc >> 8); b.p[32] = (uint8_t)crc;
  }
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "interlace method 2", "interlace method 2");

  /* Chunk ordering and unknown chunks. */
  uint8_t pal[6] = {0, 0, 0, 255, 255, 255};
  png_start(&b, 2, 2, 8, 0);
  chunk(&b, "abCd", "x", 1);               /* unknown ancillary: skipped */
  idat_of(&b, raw, 6);
  chunk(&b, "IEND", NULL, 0);
  st = vg_png_decode(b.p, b.n, &im, NULL);
  VG_CHECK(st == VG_OK, "unknown ancillary chunk skipped");
  vg_image_free(&im);
  png_start(&b, 2, 2, 8, 0);
  chunk(&b, "ABCD", "x", 1);
  idat_of(&b, raw, 6);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_UNSUPPORTED, "unknown critical chunk ABCD", "unknown critical chunk");
  png_start(&b, 2, 2, 8, 0);
  idat_of(&b, raw, 3);
  chunk(&b, "tEXt", "a\0b", 3);
  idat_of(&b, raw + 3, 3);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "not consecutive", "IDAT split by another chunk");
  png_start(&b, 2, 2, 8, 2);
  idat_of(&b, raw, 14);
  chunk(&b, "PLTE", pal, 6);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "PLTE after IDAT", "PLTE after IDAT");
  png_start(&b, 2, 2, 8, 0);
  chunk(&b, "PLTE", pal, 6);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "PLTE not allowed", "PLTE in a grey image");
  png_start(&b, 2, 2, 8, 3);
  idat_of(&b, raw, 6);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "no PLTE", "palette image without PLTE");
  png_start(&b, 2, 2, 1, 3);
  chunk(&b, "PLTE", (uint8_t[9]){0}, 9);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "too many for bit depth 1", "3-entry PLTE for 1-bit");
  png_start(&b, 2, 2, 8, 6);
  chunk(&b, "tRNS", "\0\0", 2);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "tRNS not allowed", "tRNS in an RGBA image");
  png_start(&b, 2, 2, 8, 3);
  chunk(&b, "PLTE", pal, 6);
  chunk(&b, "tRNS", "\0\0\0", 3);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "tRNS has 3 entries", "tRNS longer than PLTE");
  png_start(&b, 2, 2, 8, 0);
  idat_of(&b, raw, 6);
  chunk(&b, "IEND", "x", 1);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "IEND has length 1", "non-empty IEND");
  png_start(&b, 2, 2, 8, 0);
  chunk(&b, "IDAT", NULL, 0);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "zlib stream truncated", "empty IDAT");
  png_start(&b, 2, 2, 8, 0);
  raw[3] = 5;                              /* filter type 5 */
  idat_of(&b, raw, 6);
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "invalid filter type 5", "filter type 5");
  png_start(&b, 2, 2, 8, 0);
  idat_of(&b, raw, 5);                     /* one byte short of 2 rows */
  chunk(&b, "IEND", NULL, 0);
  expect_fail(b.p, b.n, VG_ERR_FORMAT, "ended early: 5 of the expected 6", "IDAT one byte short");
  /* grey+tRNS -> grey+alpha, and the key compares raw (unscaled) samples. */
  png_start(&b, 2, 1, 4, 0);
  chunk(&b, "tRNS", "\0\x03", 2);
  uint8_t row4[2] = {0, 0x3A};             /* pixels 3 and 10 */
  idat_of(&b, row4, 2);
  chunk(&b, "IEND", NULL, 0);
  st = vg_png_decode(b.p, b.n, &im, NULL);
  const uint8_t *g = im.data;
  VG_CHECK(st == VG_OK && im.c == 2 && g && g[0] == 51 && g[1] == 0 && g[2] == 170 && g[3] == 255,
           "4-bit grey + tRNS key 3 -> (51, 0), (170, 255)");
  vg_image_free(&im);
  free(b.p);
}

static void test_encode_roundtrip(void) {
  static const int dims[][2] = {{1, 1}, {7, 3}, {33, 17}, {100, 61}};
  int all = 1, cases = 0;
  for (int depth = 8; depth <= 16; depth += 8)
    for (int c = 1; c <= 4; c++)
      for (int d = 0; d < 4; d++) {
        vg_image im = {dims[d][0], dims[d][1], c, depth, NULL};
        size_t ns = (size_t)im.w * im.h * c;
        im.data = malloc(ns * (depth / 8));
        for (size_t i = 0; i < ns; i++) {
          /* Smooth ramps plus noise: exercises every filter choice. */
          uint32_t v = (uint32_t)(i * 37 + (i / (size_t)(im.w * c)) * 11) + (rnd() % 5);
          if (depth == 8) ((uint8_t *)im.data)[i] = (uint8_t)v;
          else ((uint16_t *)im.data)[i] = (uint16_t)(v * 257 + (rnd() & 0xFF));
        }
        uint8_t *png;
        size_t n;
        vg_image back;
        vg_status st = vg_png_encode(&im, &png, &n);
        int ok = st == VG_OK && vg_png_decode(png, n, &back, NULL) == VG_OK && back.w == im.w && back.h == im.h &&
                 back.c == c && back.depth == depth && memcmp(back.data, im.data, ns * (depth / 8)) == 0;
        all &= ok;
        cases++;
        if (!ok) VG_CHECK(0, "png round trip %dx%d c=%d depth %d: %s", im.w, im.h, c, depth, vg_last_error());
        if (st == VG_OK) vg_image_free(&back);
        free(png);
        free(im.data);
      }
  VG_CHECK(all, "png encode/decode round trip: %d cases (c = 1..4, depth 8 and 16, 4 sizes) identical", cases);
  vg_image bad = {2, 2, 5, 8, (void *)"x"};
  uint8_t *png;
  size_t n;
  VG_CHECK(vg_png_encode(&bad, &png, &n) == VG_ERR_ARG, "encode refuses 5 channels: %s", vg_last_error());
  /* Save to a file and load it back through the generic path. */
  uint8_t px[6] = {1, 2, 3, 250, 251, 252};
  vg_image im = {2, 1, 3, 8, px}, back;
  char path[64];
  snprintf(path, sizeof path, "/tmp/vigil_test_png_%d.png", (int)getpid());
  vg_status st = vg_png_save(path, &im);
  int ok = st == VG_OK && vg_image_load(path, &back, NULL) == VG_OK && back.c == 3 && memcmp(back.data, px, 6) == 0;
  VG_CHECK(ok, "vg_png_save + vg_image_load round trip");
  if (ok) vg_image_free(&back);
  remove(path);
}

int main(void) {
  test_checksums();
  test_inflate_blocks();
  test_deflate_roundtrip();
  test_bomb();
  test_pngsuite_primary();
  test_pngsuite_16bit();
  test_rejects();
  test_truncations();
  test_idat_corruption();
  test_limits_and_chunks();
  test_encode_roundtrip();
  return vg_test_finish();
}
