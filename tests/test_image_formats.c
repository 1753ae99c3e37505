/* test_image_formats.c — BMP, PGM/PPM and TIFF: Pillow-written fixtures, round trips,
 * hand-made headers (RLE8, RLE4, bitfields, top-down, OS/2, big-endian multi-strip
 * TIFF), corrupt files refused with a named problem, every prefix of every test file
 * handled cleanly, and format dispatch in vg_image_decode / vg_image_load. */
#include "tests/vgtest.h"
#include "datasets/image/image.h"
#include <string.h>
#include <unistd.h>

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* The synthetic pattern of tools/gen_image_fixtures.py. */
static uint8_t pattern(int x, int y, int k) { return (uint8_t)((x * 7 + y * 13 + k * 61 + (x * y) % 11) % 256); }

typedef struct { uint8_t *p; size_t n, cap; } bytes;

static void put(bytes *b, const void *src, size_t n) {
  if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = realloc(b->p, b->cap); }
  if (n) memcpy(b->p + b->n, src, n);
  b->n += n;
}
static void le16(bytes *b, uint32_t v) { uint8_t q[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, q, 2); }
static void le32(bytes *b, uint32_t v) { le16(b, v); le16(b, v >> 16); }

/* Every file a prefix test covers: decoded by vg_image_decode at each length; a proper
 * prefix may decode (BMP tolerates a missing final pad) but must never crash, and an
 * error must come with a message. Returns the number of unclean outcomes. */
static size_t prefix_sweep(const uint8_t *buf, size_t n, size_t *count) {
  size_t bad = 0;
  for (size_t k = 0; k < n; k++) {
    uint8_t *cut = malloc(k ? k : 1);
    memcpy(cut, buf, k);
    vg_image im;
    vg_clear_error();
    vg_status st = vg_image_decode(cut, k, &im, NULL);
    if (st != VG_OK && (vg_last_error()[0] == 0 || im.data)) bad++;
    if (st == VG_OK && (!im.data || im.w <= 0)) bad++;
    vg_image_free(&im);
    free(cut);
    (*count)++;
  }
  return bad;
}

/* ---------------------------------------------------------------- BMP */

/* A BMP with a 40-byte (or 12-byte OS/2) info header; masks (if nmask > 0) after the
 * header, then the palette (4-byte entries, 3-byte for OS/2), then the pixel data. */
static void bmp_make(bytes *b, int hsize, int32_t w, int32_t h, int bpp, int comp, const uint8_t *pal, int npal,
                     const uint32_t *masks, int nmask, const void *data, size_t dn) {
  int pe = hsize == 12 ? 3 : 4;
  uint32_t off = 14 + (uint32_t)hsize + 4 * (uint32_t)nmask + (uint32_t)(pe * npal);
  b->n = 0;
  put(b, "BM", 2);
  le32(b, off + (uint32_t)dn);
  le32(b, 0);
  le32(b, off);
  le32(b, (uint32_t)hsize);
  if (hsize == 12) {
    le16(b, (uint32_t)w); le16(b, (uint32_t)h); le16(b, 1); le16(b, (uint32_t)bpp);
  } else {
    le32(b, (uint32_t)w); le32(b, (uint32_t)h); le16(b, 1); le16(b, (uint32_t)bpp);
    le32(b, (uint32_t)comp); le32(b, (uint32_t)dn); le32(b, 2835); le32(b, 2835);
    le32(b, (uint32_t)npal); le32(b, 0);
    for (int i = 40; i < hsize; i++) put(b, "", 1);
  }
  for (int i = 0; i < nmask; i++) le32(b, masks[i]);
  for (int i = 0; i < npal; i++) {   /* stored B, G, R (, 0) */
    uint8_t e[4] = {pal[3 * i + 2], pal[3 * i + 1], pal[3 * i], 0};
    put(b, e, (size_t)pe);
  }
  put(b, data, dn);
}

static int pixels_are(const vg_image *im, int c, const uint8_t *want, const char *what) {
  int ok = im->data && im->depth == 8 && im->c == c && memcmp(im->data, want, (size_t)im->w * im->h * c) == 0;
  return VG_CHECK(ok, "%s: %dx%d c=%d pixels as expected", what, im->w, im->h, im->c);
}

static void bmp_expect_fail(const bytes *b, vg_status want, const char *expect, const char *what) {
  vg_image im;
  vg_status st = vg_bmp_decode(b->p, b->n, &im, NULL);
  VG_CHECK(st == want && contains(vg_last_error(), expect) && !im.data, "%s -> %s (\"%s\")", what,
           vg_status_name(st), vg_last_error());
  vg_image_free(&im);
}

static const uint8_t pal4[12] = {0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255};   /* black, red, green, blue */

static void test_bmp(size_t *prefixes, size_t *unclean) {
  static const char *const fx[] = {"bmp_rgb24", "bmp_pal8", "bmp_bw1", "bmp_rgba32"};
  for (int i = 0; i < 4; i++) {
    char p[512], q[512], name[64];
    snprintf(name, sizeof name, "image/%s.png", fx[i]);
    snprintf(q, sizeof q, "%s", vg_test_fixture(name));
    snprintf(name, sizeof name, "image/%s.bmp", fx[i]);
    snprintf(p, sizeof p, "%s", vg_test_fixture(name));
    vg_image a, ref;
    vg_status sa = vg_image_load(p, &a, NULL), sr = vg_image_load(q, &ref, NULL);
    size_t diff = 0;
    int ok = sa == VG_OK && sr == VG_OK && a.w == ref.w && a.h == ref.h && a.c == 3 && a.depth == 8;
    /* Pillow writes RGBA as 32-bit BI_RGB, whose 4th byte readers ignore: compare RGB. */
    for (int k = 0; ok && k < a.w * a.h; k++)
      for (int ch = 0; ch < 3; ch++) diff += ((uint8_t *)a.data)[3 * k + ch] != ((uint8_t *)ref.data)[ref.c * k + ch];
    VG_CHECK(ok && diff == 0, "Pillow's %s.bmp matches its PNG (%zu samples differ) %s", fx[i], diff,
             sa || sr ? vg_last_error() : "");
    uint8_t *buf;
    size_t n;
    if (vg_image_read_file(p, &buf, &n, 1 << 20) == VG_OK) { *unclean += prefix_sweep(buf, n, prefixes); free(buf); }
    vg_image_free(&a);
    vg_image_free(&ref);
  }

  /* Encoder round trips: grey (8-bit palette, decodes to RGB), RGB, RGBA (V4 bitfields). */
  for (int c = 1; c <= 4; c++) {
    if (c == 2) continue;
    int w = 13, h = 5;
    uint8_t *px = malloc((size_t)w * h * c), *want = malloc((size_t)w * h * 4);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        for (int k = 0; k < c; k++) px[(y * w + x) * c + k] = pattern(x, y, k);
    int oc = c == 1 ? 3 : c;
    for (int i = 0; i < w * h; i++)
      for (int k = 0; k < oc; k++) want[i * oc + k] = px[i * c + (c == 1 ? 0 : k)];
    vg_image im = {w, h, c, 8, px}, back;
    uint8_t *bmp;
    size_t n;
    vg_status st = vg_bmp_encode(&im, &bmp, &n);
    if (VG_CHECK(st == VG_OK && vg_bmp_decode(bmp, n, &back, NULL) == VG_OK, "bmp encode/decode c=%d", c)) {
      char what[64];
      snprintf(what, sizeof what, "bmp round trip c=%d", c);
      pixels_are(&back, oc, want, what);
      vg_image_free(&back);
      *unclean += prefix_sweep(bmp, n, prefixes);
    }
    free(bmp);
    free(px);
    free(want);
  }

  bytes b = {0};
  vg_image im;
  /* RLE8, 4x3, bottom-up. y=0: run 3 x idx1, run 1 x idx2; y=1: absolute 0,1,2 then run
   * idx3; y=2: delta to (2,2), run 2 x idx3, end of bitmap. */
  static const uint8_t rle8[] = {3, 1, 1, 2, 0, 0,  0, 3, 0, 1, 2, 0, 1, 3, 0, 0,  0, 2, 2, 0, 2, 3, 0, 1};
  bmp_make(&b, 40, 4, 3, 8, 1, pal4, 4, NULL, 0, rle8, sizeof rle8);
  static const uint8_t want_rle8_idx[12] = {0, 0, 3, 3,  0, 1, 2, 3,  1, 1, 1, 2};
  uint8_t want[64 * 4];
  for (int i = 0; i < 12; i++) memcpy(want + 3 * i, pal4 + 3 * want_rle8_idx[i], 3);
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "RLE8 decodes: %s", vg_last_error())) pixels_are(&im, 3, want, "RLE8 with absolute run and delta");
  vg_image_free(&im);
  *unclean += prefix_sweep(b.p, b.n, prefixes);
  /* Same stream without its end-of-bitmap: refused. */
  bmp_make(&b, 40, 4, 3, 8, 1, pal4, 4, NULL, 0, rle8, sizeof rle8 - 2);
  bmp_expect_fail(&b, VG_ERR_FORMAT, "RLE data truncated", "RLE8 without end-of-bitmap");
  bmp_make(&b, 40, 4, 3, 4, 1, pal4, 4, NULL, 0, rle8, sizeof rle8);
  bmp_expect_fail(&b, VG_ERR_FORMAT, "compression 1 does not go with 4 bits", "RLE8 with 4 bpp");

  /* RLE4, 5x2. y=0: run of 5 alternating 1,2; y=1: absolute 3,0,1,2,3 (3 bytes + pad). */
  static const uint8_t rle4[] = {5, 0x12, 0, 0,  0, 5, 0x30, 0x12, 0x30, 0,  0, 1};
  bmp_make(&b, 40, 5, 2, 4, 2, pal4, 4, NULL, 0, rle4, sizeof rle4);
  static const uint8_t want_rle4_idx[10] = {3, 0, 1, 2, 3,  1, 2, 1, 2, 1};
  for (int i = 0; i < 10; i++) memcpy(want + 3 * i, pal4 + 3 * want_rle4_idx[i], 3);
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "RLE4 decodes: %s", vg_last_error())) pixels_are(&im, 3, want, "RLE4 with encoded and absolute runs");
  vg_image_free(&im);
  *unclean += prefix_sweep(b.p, b.n, prefixes);

  /* 16-bit 5-6-5 bitfields, 3x1: red, green, (1,2,1) -> 255*v/max truncated = (8, 8, 8). */
  uint32_t m565[3] = {0xF800, 0x07E0, 0x001F};
  uint8_t px565[8] = {0x00, 0xF8, 0xE0, 0x07, 0x41, 0x08, 0, 0};
  bmp_make(&b, 40, 3, 1, 16, 3, NULL, 0, m565, 3, px565, sizeof px565);
  uint8_t w565[9] = {255, 0, 0, 0, 255, 0, 8, 8, 8};
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "16-bit bitfields decode: %s", vg_last_error())) pixels_are(&im, 3, w565, "16-bit 5-6-5 bitfields");
  vg_image_free(&im);
  *unclean += prefix_sweep(b.p, b.n, prefixes);
  /* 16-bit without bitfields: 5-5-5. 0x7FFF white, 0x001F blue. */
  uint8_t px555[4] = {0xFF, 0x7F, 0x1F, 0x00};
  bmp_make(&b, 40, 2, 1, 16, 0, NULL, 0, NULL, 0, px555, sizeof px555);
  uint8_t w555[6] = {255, 255, 255, 0, 0, 255};
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "16-bit 5-5-5 decodes")) pixels_are(&im, 3, w555, "16-bit default 5-5-5");
  vg_image_free(&im);
  /* 32-bit with alpha bitfields (ALPHABITFIELDS, masks in R,G,B,A byte order). */
  uint32_t mrgba[4] = {0x000000FF, 0x0000FF00, 0x00FF0000, 0xFF000000};
  uint8_t px32[8] = {10, 20, 30, 40, 200, 150, 100, 0};
  bmp_make(&b, 40, 2, 1, 32, 6, NULL, 0, mrgba, 4, px32, sizeof px32);
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "32-bit alpha bitfields decode: %s", vg_last_error())) pixels_are(&im, 4, px32, "32-bit RGBA bitfields");
  vg_image_free(&im);
  *unclean += prefix_sweep(b.p, b.n, prefixes);
  uint32_t mbad[3] = {0xF0F0, 0x000F, 0x0F00};
  bmp_make(&b, 40, 2, 1, 16, 3, NULL, 0, mbad, 3, px555, sizeof px555);
  bmp_expect_fail(&b, VG_ERR_FORMAT, "not contiguous", "non-contiguous bitfield mask");
  /* Top-down 24-bit 2x2 (negative height): first stored row is the top. */
  uint8_t td[16] = {1, 2, 3, 4, 5, 6, 0, 0,  7, 8, 9, 10, 11, 12, 0, 0};
  bmp_make(&b, 40, 2, -2, 24, 0, NULL, 0, NULL, 0, td, sizeof td);
  uint8_t wtd[12] = {3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10};
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "top-down 24-bit decodes")) pixels_are(&im, 3, wtd, "top-down 24-bit");
  vg_image_free(&im);
  *unclean += prefix_sweep(b.p, b.n, prefixes);
  /* Bottom-up: the same bytes give the rows the other way round. */
  bmp_make(&b, 40, 2, 2, 24, 0, NULL, 0, NULL, 0, td, sizeof td);
  uint8_t wbu[12] = {9, 8, 7, 12, 11, 10, 3, 2, 1, 6, 5, 4};
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "bottom-up 24-bit decodes")) pixels_are(&im, 3, wbu, "bottom-up 24-bit");
  vg_image_free(&im);
  /* OS/2 core header, 4-bit palette (3-byte entries), 3x1: indices 1, 2, 3. */
  uint8_t os2[4] = {0x12, 0x30, 0, 0};
  bmp_make(&b, 12, 3, 1, 4, 0, pal4, 4, NULL, 0, os2, sizeof os2);
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "OS/2 BMP decodes: %s", vg_last_error())) pixels_are(&im, 3, pal4 + 3, "OS/2 4-bit palette");
  vg_image_free(&im);
  *unclean += prefix_sweep(b.p, b.n, prefixes);
  /* 1-bit, width 9 (two bytes per row + pad). */
  uint8_t bw[4] = {0xA5, 0x80, 0, 0};
  bmp_make(&b, 40, 9, 1, 1, 0, pal4 + 3, 2, NULL, 0, bw, sizeof bw);   /* 0 = red, 1 = green */
  uint8_t wbw[27];
  for (int x = 0; x < 9; x++) memcpy(wbw + 3 * x, pal4 + 3 * (1 + ((x < 8 ? 0xA5 >> (7 - x) : 1) & 1)), 3);
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "1-bit BMP decodes")) pixels_are(&im, 3, wbw, "1-bit palette, width 9");
  vg_image_free(&im);

  /* Corrupt or unsupported headers. */
  bmp_make(&b, 40, 2, 2, 24, 0, NULL, 0, NULL, 0, td, sizeof td);
  bytes c = {0};
  put(&c, b.p, b.n);
  c.p[14] = 20;
  bmp_expect_fail(&c, VG_ERR_UNSUPPORTED, "info header size 20", "header size 20");
  memcpy(c.p, b.p, b.n); c.p[28] = 7;
  bmp_expect_fail(&c, VG_ERR_FORMAT, "bits per pixel 7", "7 bits per pixel");
  memcpy(c.p, b.p, b.n); c.p[30] = 4;
  bmp_expect_fail(&c, VG_ERR_UNSUPPORTED, "JPEG", "embedded JPEG");
  memcpy(c.p, b.p, b.n); memset(c.p + 22, 0, 4);
  bmp_expect_fail(&c, VG_ERR_FORMAT, "invalid height 0", "height 0");
  memcpy(c.p, b.p, b.n); c.p[18] = 0x20; c.p[19] = 0x4E;   /* width 20000 */
  bmp_expect_fail(&c, VG_ERR_LIMIT, "side limit", "width 20000");
  memcpy(c.p, b.p, b.n); c.p[10] = 0xFF;
  bmp_expect_fail(&c, VG_ERR_FORMAT, "past the end", "pixel offset past the end");
  c.n = b.n - 6;
  memcpy(c.p, b.p, b.n);
  bmp_expect_fail(&c, VG_ERR_FORMAT, "pixel data truncated", "truncated pixel rows");
  /* Palette index past the palette reads as black (palette of 2, index 3). */
  uint8_t idx3[4] = {3, 1, 0, 0};
  bmp_make(&b, 40, 2, 1, 8, 0, pal4 + 3, 2, NULL, 0, idx3, sizeof idx3);
  uint8_t widx[6] = {0, 0, 0, 0, 255, 0};
  if (VG_CHECK(vg_bmp_decode(b.p, b.n, &im, NULL) == VG_OK, "out-of-palette index decodes")) pixels_are(&im, 3, widx, "index past the palette is black");
  vg_image_free(&im);
  free(b.p);
  free(c.p);
}

/* Every info-header size: each field read must lie inside the header (a field past it
 * reads as 0). Files are decoded from exact-size copies so ASan sees any overread, at
 * every length, including the length that ends right at the header (the V2 + alpha
 * bit-fields case once read its alpha mask past the header). */
static void bmp_hdr(bytes *b, uint32_t hs, int32_t w, int32_t h, int bpp, uint32_t comp, const uint32_t *masks,
                    const void *data, size_t dn) {
  uint8_t hdr[256] = {0};
  uint32_t hn = hs < 4 ? 4 : hs < sizeof hdr ? hs : sizeof hdr;   /* the size field itself is always there */
  uint32_t f[10] = {hs, (uint32_t)w, (uint32_t)h, 1u | (uint32_t)bpp << 16, comp, (uint32_t)dn, 2835, 2835, 0, 0};
  for (int i = 0; i < 10; i++)
    for (int k = 0; k < 4; k++) hdr[4 * i + k] = (uint8_t)(f[i] >> (8 * k));
  if (hs == 12) {  /* OS/2 core: 16-bit fields */
    uint16_t g[4] = {(uint16_t)w, (uint16_t)h, 1, (uint16_t)bpp};
    for (int i = 0; i < 4; i++) { hdr[4 + 2 * i] = (uint8_t)g[i]; hdr[5 + 2 * i] = (uint8_t)(g[i] >> 8); }
  }
  for (int i = 0; masks && i < 4; i++)
    for (int k = 0; k < 4; k++) hdr[40 + 4 * i + k] = (uint8_t)(masks[i] >> (8 * k));
  b->n = 0;
  put(b, "BM", 2);
  le32(b, 14 + hn + (uint32_t)dn);
  le32(b, 0);
  le32(b, 14 + hn);
  put(b, hdr, hn);
  put(b, data, dn);
}

/* Decodes an exact-size copy of buf[0..n). */
static vg_status bmp_exact(const uint8_t *buf, size_t n, vg_image *im) {
  uint8_t *e = malloc(n ? n : 1);
  memcpy(e, buf, n);
  vg_clear_error();
  vg_status st = vg_bmp_decode(e, n, im, NULL);
  free(e);
  return st;
}

/* Every prefix of b decoded from an exact-size copy: returns the unclean outcomes. */
static size_t bmp_prefixes(const bytes *b) {
  size_t bad = 0;
  for (size_t k = 0; k <= b->n; k++) {
    vg_image im;
    vg_status st = bmp_exact(b->p, k, &im);
    if (st != VG_OK && (!vg_last_error()[0] || im.data)) bad++;
    if (st == VG_OK) vg_image_free(&im);
  }
  return bad;
}

static void test_bmp_header_sizes(void) {
  static const uint32_t sizes[] = {12, 16, 40, 52, 56, 64, 108, 124};
  static const uint32_t rgba[4] = {0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000};
  const uint8_t px32[8] = {10, 20, 30, 40, 50, 60, 70, 80};   /* B G R A, two pixels */
  const uint8_t want_rgb[6] = {30, 20, 10, 70, 60, 50}, want_rgba[8] = {30, 20, 10, 40, 70, 60, 50, 80};
  const uint8_t px24[8] = {10, 20, 30, 40, 50, 60, 0, 0};     /* B G R, two pixels + pad */
  bytes b = {0};
  vg_image im;
  size_t unclean = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    uint32_t hs = sizes[i];
    /* plain 24-bit: every size decodes */
    bmp_hdr(&b, hs, 2, 1, 24, 0, NULL, px24, sizeof px24);
    vg_status st = bmp_exact(b.p, b.n, &im);
    const uint8_t want24[6] = {30, 20, 10, 60, 50, 40};
    if (VG_CHECK(st == VG_OK, "header size %u, 24-bit: decodes (%s)", hs, st ? vg_last_error() : "ok"))
      pixels_are(&im, 3, want24, hs == 12 ? "OS/2 core header 24-bit" : "24-bit");
    if (st == VG_OK) vg_image_free(&im);
    unclean += bmp_prefixes(&b);
    if (hs <= 16) continue;  /* no compression field */
    /* 32-bit with bit-fields (3) and alpha bit-fields (6), masks in the header (after it for 40) */
    for (uint32_t comp = 3; comp <= 6; comp += 3) {
      int nm = comp == 6 ? 4 : 3;
      if (hs == 40) {
        b.n = 0;
        bmp_hdr(&b, 40, 2, 1, 32, comp, NULL, NULL, 0);
        for (int k = 0; k < nm; k++) le32(&b, rgba[k]);
        uint32_t off = 14 + 40 + 4 * (uint32_t)nm;
        memcpy(b.p + 10, (uint8_t[4]){(uint8_t)off, 0, 0, 0}, 4);
        put(&b, px32, sizeof px32);
      } else {
        bmp_hdr(&b, hs, 2, 1, 32, comp, rgba, px32, sizeof px32);
      }
      st = bmp_exact(b.p, b.n, &im);
      if (hs == 64) {  /* OS/2 2.x: 3 is Huffman 1D, 6 does not exist */
        VG_CHECK(st == VG_ERR_UNSUPPORTED && contains(vg_last_error(), "compression"),
                 "header size %u, compression %u: refused (%s)", hs, comp, vg_last_error());
      } else {
        /* alpha: 56 and up carry an alpha mask in the header; 40 has it after the header
         * with ALPHABITFIELDS; V2 (52) has no room for it (alpha mask 0, as Pillow) */
        int alpha = hs >= 56 || (hs == 40 && comp == 6);
        char what[96];
        snprintf(what, sizeof what, "header size %u, compression %u, 32-bit bit-fields%s", hs, comp,
                 alpha ? " with alpha" : " (no alpha mask)");
        if (VG_CHECK(st == VG_OK, "%s: decodes (%s)", what, st ? vg_last_error() : "ok"))
          pixels_are(&im, alpha ? 4 : 3, alpha ? want_rgba : want_rgb, what);
      }
      if (st == VG_OK) vg_image_free(&im);
      unclean += bmp_prefixes(&b);
      /* the file ends right at the end of the info header (no masks after a 40-byte one,
       * no pixels): an error, and no read past the end */
      size_t cut = 14 + hs;
      st = bmp_exact(b.p, cut, &im);
      VG_CHECK(st != VG_OK && vg_last_error()[0] && !im.data, "header size %u, compression %u, file ends at the header: %s",
               hs, comp, vg_last_error());
    }
  }
  /* Odd and unknown sizes: refused by name, at every length (no read of a field by
   * its nominal offset). */
  static const uint32_t odd[] = {0, 4, 11, 13, 15, 20, 39, 41, 48, 53, 60, 100, 107, 123, 125, 200, 0xFFFFFFFFu};
  for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
    uint32_t hs = odd[i];
    bmp_hdr(&b, hs, 2, 1, 32, 6, rgba, px32, sizeof px32);
    vg_status st = bmp_exact(b.p, b.n, &im);
    char want[48];
    snprintf(want, sizeof want, "info header size %u", hs);
    VG_CHECK(st == VG_ERR_UNSUPPORTED && contains(vg_last_error(), want) && !im.data, "header size %u: refused (%s)",
             hs, vg_last_error());
    if (st == VG_OK) vg_image_free(&im);
    unclean += bmp_prefixes(&b);
  }
  VG_CHECK(unclean == 0, "every prefix of every header-size variant (exact-size copies): clean (%zu not)", unclean);
  free(b.p);
}

/* ---------------------------------------------------------------- PNM */

static void test_pnm(size_t *prefixes, size_t *unclean) {
  for (int depth = 8; depth <= 16; depth += 8)
    for (int c = 1; c <= 3; c += 2) {
      int w = 11, h = 4;
      size_t ns = (size_t)w * h * c;
      void *px = malloc(ns * (depth / 8));
      for (size_t i = 0; i < ns; i++) {
        if (depth == 8) ((uint8_t *)px)[i] = (uint8_t)(i * 29);
        else ((uint16_t *)px)[i] = (uint16_t)(i * 2999);
      }
      vg_image im = {w, h, c, depth, px}, back;
      uint8_t *buf;
      size_t n;
      vg_status st = vg_pnm_encode(&im, &buf, &n);
      int ok = st == VG_OK && vg_image_decode(buf, n, &back, NULL) == VG_OK && back.c == c && back.depth == depth &&
               memcmp(back.data, px, ns * (depth / 8)) == 0;
      VG_CHECK(ok, "P%c depth %d round trip (%zu bytes)", c == 1 ? '5' : '6', depth, n);
      if (ok) vg_image_free(&back);
      if (st == VG_OK) { *unclean += prefix_sweep(buf, n, prefixes); free(buf); }
      free(px);
    }
  vg_image im;
  const char *p2 = "P2\n# made by hand\n3 2\n# maxval next\n15\n0 1 2\n3 15 7\n";
  vg_status st = vg_image_decode((const uint8_t *)p2, strlen(p2), &im, NULL);
  uint8_t w2[6] = {0, 17, 34, 51, 255, 119};
  if (VG_CHECK(st == VG_OK, "P2 with comments decodes: %s", vg_last_error())) pixels_are(&im, 1, w2, "P2 maxval 15 scaled by 17");
  vg_image_free(&im);
  *unclean += prefix_sweep((const uint8_t *)p2, strlen(p2), prefixes);
  const char *p3 = "P3 2 1 1000  1000 500 0  1 999 7";
  st = vg_image_decode((const uint8_t *)p3, strlen(p3), &im, NULL);
  const uint16_t *s = im.data;
  VG_CHECK(st == VG_OK && im.depth == 16 && im.c == 3 && s[0] == 65535 && s[1] == 32768 && s[2] == 0 && s[3] == 66 &&
               s[4] == 65469 && s[5] == 459,
           "P3 maxval 1000 -> 16-bit, rescaled and rounded");
  vg_image_free(&im);
  *unclean += prefix_sweep((const uint8_t *)p3, strlen(p3), prefixes);
  static const uint8_t p6[] = {'P', '6', ' ', '1', ' ', '1', '#', 'x', '\n', '6', '5', '5', '3', '5', '\n',
                               0x12, 0x34, 0xAB, 0xCD, 0xFF, 0xFF};
  st = vg_image_decode(p6, sizeof p6, &im, NULL);
  s = im.data;
  VG_CHECK(st == VG_OK && s[0] == 0x1234 && s[1] == 0xABCD && s[2] == 0xFFFF, "P6 16-bit samples are big-endian");
  vg_image_free(&im);
  static const struct { const char *data; size_t n; vg_status st; const char *expect; } bad[] = {
    {"P5 2 2 255\nabc", 14, VG_ERR_FORMAT, "truncated"},
    {"P5 1 1 100\n\xC8", 12, VG_ERR_FORMAT, "above maxval"},
    {"P5 1 1 0\n\x00", 10, VG_ERR_FORMAT, "maxval"},
    {"P5 1 1 70000\n\x00\x00", 15, VG_ERR_FORMAT, "maxval"},
    {"P5 x 1 255\n\x00", 12, VG_ERR_FORMAT, "width"},
    {"P2 2 1 255\n10", 13, VG_ERR_FORMAT, "ASCII sample 1"},
    {"P5 20000 1 255\n", 15, VG_ERR_LIMIT, "side limit"},
    {"P5 1 1 255", 10, VG_ERR_FORMAT, "whitespace"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    st = vg_pnm_decode((const uint8_t *)bad[i].data, bad[i].n, &im, NULL);
    VG_CHECK(st == bad[i].st && contains(vg_last_error(), bad[i].expect) && !im.data, "bad PNM #%zu refused: %s", i,
             vg_last_error());
    vg_image_free(&im);
  }
}

/* ---------------------------------------------------------------- TIFF */

/* A tiny TIFF writer for hand-made files: entries with one inline SHORT/LONG value, plus
 * StripOffsets/StripByteCounts arrays for `nstrip` strips of `strip_bytes` each (the
 * last strip `last_bytes`). be: big-endian. */
typedef struct { uint16_t tag, type; uint32_t value; } tent;

static void w16(bytes *b, int be, uint32_t v) {
  uint8_t q[2] = {(uint8_t)(be ? v >> 8 : v), (uint8_t)(be ? v : v >> 8)};
  put(b, q, 2);
}
static void w32(bytes *b, int be, uint32_t v) {
  if (be) { w16(b, 1, v >> 16); w16(b, 1, v); }
  else { w16(b, 0, v); w16(b, 0, v >> 16); }
}

static void tiff_make(bytes *b, int be, const tent *e, int ne, const uint8_t *data, size_t dn, int nstrip,
                      size_t strip_bytes) {
  b->n = 0;
  put(b, be ? "MM" : "II", 2);
  w16(b, be, 42);
  w32(b, be, 8);
  int nall = ne + 2;
  size_t ifd_end = 8 + 2 + 12 * (size_t)nall + 4;
  size_t arrays = ifd_end, data_off = arrays + (nstrip > 1 ? 8 * (size_t)nstrip : 0);
  w16(b, be, (uint32_t)nall);
  /* Entries in tag order: ours are given sorted; the strip tags 273/279 are merged in. */
  int done273 = 0, done279 = 0;
  for (int i = 0; i <= ne; i++) {
    uint32_t tag = i < ne ? e[i].tag : 0xFFFF;
    if (!done273 && tag > 273) {
      w16(b, be, 273); w16(b, be, 4); w32(b, be, (uint32_t)nstrip);
      w32(b, be, nstrip > 1 ? (uint32_t)arrays : (uint32_t)data_off);
      done273 = 1;
    }
    if (!done279 && tag > 279) {
      w16(b, be, 279); w16(b, be, 4); w32(b, be, (uint32_t)nstrip);
      w32(b, be, nstrip > 1 ? (uint32_t)(arrays + 4 * nstrip) : (uint32_t)dn);
      done279 = 1;
    }
    if (i == ne) break;
    w16(b, be, e[i].tag);
    w16(b, be, e[i].type);
    w32(b, be, 1);
    if (e[i].type == 3) { w16(b, be, e[i].value); w16(b, be, 0); }
    else w32(b, be, e[i].value);
  }
  w32(b, be, 0);
  if (nstrip > 1) {
    for (int s = 0; s < nstrip; s++) w32(b, be, (uint32_t)(data_off + s * strip_bytes));
    for (int s = 0; s < nstrip; s++) w32(b, be, (uint32_t)(s == nstrip - 1 ? dn - s * strip_bytes : strip_bytes));
  }
  put(b, data, dn);
}

static void tiff_expect_fail(const bytes *b, vg_status want, const char *expect, const char *what) {
  vg_image im;
  vg_status st = vg_tiff_decode(b->p, b->n, &im, NULL);
  VG_CHECK(st == want && contains(vg_last_error(), expect) && !im.data, "%s -> %s (\"%s\")", what, vg_status_name(st),
           vg_last_error());
  vg_image_free(&im);
}

static void test_tiff(size_t *prefixes, size_t *unclean) {
  /* Pillow-written fixtures. */
  float *f;
  int w, h;
  char path[512];
  snprintf(path, sizeof path, "%s", vg_test_fixture("image/tiff_f32.tif"));
  vg_status st = vg_tiff_read_f32(path, &f, &w, &h);
  if (VG_CHECK(st == VG_OK && w == 13 && h == 7, "Pillow float TIFF reads as 13x7: %s", vg_last_error())) {
    int ok = 1;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) ok &= f[y * w + x] == x * 0.5f - y * 0.25f + (x == 12 && y == 6 ? 1e6f : 0.0f);
    VG_CHECK(ok, "Pillow float TIFF values x/2 - y/4 (and 1e6 + 4.5 at the corner)");
    free(f);
  }
  static const struct { const char *f; int c, depth; } fx[] = {
    {"image/tiff_grey8.tif", 1, 8}, {"image/tiff_rgb8.tif", 3, 8}, {"image/tiff_rgba8.tif", 4, 8}, {"image/tiff_grey16.tif", 1, 16}};
  for (int i = 0; i < 4; i++) {
    vg_image im;
    snprintf(path, sizeof path, "%s", vg_test_fixture(fx[i].f));
    st = vg_image_load(path, &im, NULL);
    int ok = st == VG_OK && im.w == 13 && im.h == 7 && im.c == fx[i].c && im.depth == fx[i].depth;
    for (int y = 0; ok && y < 7; y++)
      for (int x = 0; x < 13; x++)
        for (int k = 0; k < im.c; k++) {
          size_t j = ((size_t)y * 13 + x) * im.c + k;
          if (im.depth == 8) ok &= ((uint8_t *)im.data)[j] == pattern(x, y, k);
          else ok &= ((uint16_t *)im.data)[j] == (x * 5003 + y * 977) % 65536;
        }
    VG_CHECK(ok, "Pillow %s: c=%d depth %d, pixels match the pattern %s", fx[i].f, fx[i].c, fx[i].depth,
             st ? vg_last_error() : "");
    vg_image_free(&im);
  }
  static const char *const all[] = {"image/tiff_f32.tif", "image/tiff_grey8.tif", "image/tiff_rgb8.tif",
                                    "image/tiff_rgba8.tif", "image/tiff_grey16.tif"};
  for (int i = 0; i < 5; i++) {
    uint8_t *buf;
    size_t n;
    if (vg_image_read_file(vg_test_fixture(all[i]), &buf, &n, 1 << 20) == VG_OK) {
      *unclean += prefix_sweep(buf, n, prefixes);
      /* The float reader on every prefix too. */
      for (size_t k = 0; k < n; k++) {
        float *g;
        int gw, gh;
        vg_clear_error();
        if (vg_tiff_decode_f32(buf, k, &g, &gw, &gh, NULL) == VG_OK) free(g);
        else if (!vg_last_error()[0]) (*unclean)++;
        (*prefixes)++;
      }
      free(buf);
    }
  }
  snprintf(path, sizeof path, "%s", vg_test_fixture("image/tiff_grey8.tif"));
  st = vg_tiff_read_f32(path, &f, &w, &h);
  VG_CHECK(st == VG_ERR_UNSUPPORTED && contains(vg_last_error(), "want 32-bit float") && contains(vg_last_error(), "tiff_grey8"),
           "float reader refuses an 8-bit TIFF: %s", vg_last_error());
  vg_image im;
  snprintf(path, sizeof path, "%s", vg_test_fixture("image/tiff_f32.tif"));
  st = vg_image_load(path, &im, NULL);
  VG_CHECK(st == VG_ERR_UNSUPPORTED && contains(vg_last_error(), "vg_tiff_read_f32"), "image loader points float TIFFs to the f32 API: %s",
           vg_last_error());

  /* Write/read round trip, bit-exact, including -0, infinities, NaN and a denormal. */
  w = 37; h = 9;
  float *src = malloc(sizeof(float) * w * h);
  for (int i = 0; i < w * h; i++) src[i] = (float)(i * 0.37 - 50) / (float)(1 + i % 7);
  src[0] = -0.0f; src[1] = INFINITY; src[2] = -INFINITY; src[3] = NAN; src[4] = 1e-40f;
  snprintf(path, sizeof path, "/tmp/vigil_test_tiff_%d.tif", (int)getpid());
  st = vg_tiff_write_f32(path, src, w, h);
  float *back = NULL;
  int bw = 0, bh = 0;
  vg_status st2 = st == VG_OK ? vg_tiff_read_f32(path, &back, &bw, &bh) : st;
  VG_CHECK(st == VG_OK && st2 == VG_OK && bw == w && bh == h && memcmp(back, src, sizeof(float) * w * h) == 0,
           "tiff f32 write/read round trip, bit-exact (37x9) %s", st2 ? vg_last_error() : "");
  FILE *fp = fopen(path, "rb");
  uint8_t head[4] = {0};
  VG_CHECK(fp && fread(head, 1, 4, fp) == 4 && memcmp(head, "II*\0", 4) == 0, "written TIFF starts with II*\\0");
  if (fp) fclose(fp);
  remove(path);
  free(back);
  free(src);
  st = vg_tiff_write_f32("/no/such/dir/x.tif", (const float[1]){0}, 1, 1);
  VG_CHECK(st == VG_ERR_IO && contains(vg_last_error(), "/no/such/dir/x.tif"), "write to a missing folder: %s", vg_last_error());

  /* Hand-made big-endian 8-bit grey, 3x5 in 3 strips of 2 rows (last has 1). */
  bytes b = {0};
  uint8_t g8[15];
  for (int i = 0; i < 15; i++) g8[i] = (uint8_t)(i * 17);
  const tent be8[] = {{256, 3, 3}, {257, 4, 5}, {258, 3, 8}, {259, 3, 1}, {262, 3, 1}, {277, 3, 1}, {278, 4, 2}};
  tiff_make(&b, 1, be8, 7, g8, 15, 3, 6);
  st = vg_image_decode(b.p, b.n, &im, NULL);
  if (VG_CHECK(st == VG_OK, "big-endian multi-strip TIFF decodes: %s", vg_last_error())) pixels_are(&im, 1, g8, "big-endian 3-strip 8-bit grey");
  vg_image_free(&im);
  *unclean += prefix_sweep(b.p, b.n, prefixes);
  /* WhiteIsZero inverts. */
  const tent wz[] = {{256, 3, 3}, {257, 4, 5}, {258, 3, 8}, {262, 3, 0}, {278, 4, 5}};
  tiff_make(&b, 0, wz, 5, g8, 15, 1, 15);
  uint8_t inv[15];
  for (int i = 0; i < 15; i++) inv[i] = (uint8_t)(255 - g8[i]);
  if (VG_CHECK(vg_tiff_decode(b.p, b.n, &im, NULL) == VG_OK, "WhiteIsZero TIFF decodes")) pixels_are(&im, 1, inv, "WhiteIsZero grey inverted");
  vg_image_free(&im);
  /* Big-endian 16-bit: sample bytes 0x12 0x34 read as 0x1234. */
  uint8_t g16[4] = {0x12, 0x34, 0xFE, 0xDC};
  const tent be16[] = {{256, 3, 2}, {257, 4, 1}, {258, 3, 16}, {262, 3, 1}};
  tiff_make(&b, 1, be16, 4, g16, 4, 1, 4);
  st = vg_tiff_decode(b.p, b.n, &im, NULL);
  VG_CHECK(st == VG_OK && im.depth == 16 && ((uint16_t *)im.data)[0] == 0x1234 && ((uint16_t *)im.data)[1] == 0xFEDC,
           "big-endian 16-bit TIFF samples");
  vg_image_free(&im);
  /* Refusals. */
  const tent lzw[] = {{256, 3, 3}, {257, 4, 5}, {258, 3, 8}, {259, 3, 5}, {262, 3, 1}};
  tiff_make(&b, 0, lzw, 5, g8, 15, 1, 15);
  tiff_expect_fail(&b, VG_ERR_UNSUPPORTED, "compression 5", "LZW TIFF");
  const tent tiled[] = {{256, 3, 3}, {257, 4, 5}, {258, 3, 8}, {262, 3, 1}, {322, 3, 16}};
  tiff_make(&b, 0, tiled, 5, g8, 15, 1, 15);
  tiff_expect_fail(&b, VG_ERR_UNSUPPORTED, "tiled", "tiled TIFF");
  const tent pred[] = {{256, 3, 3}, {257, 4, 5}, {258, 3, 8}, {262, 3, 1}, {317, 3, 2}};
  tiff_make(&b, 0, pred, 5, g8, 15, 1, 15);
  tiff_expect_fail(&b, VG_ERR_UNSUPPORTED, "predictor 2", "TIFF with a predictor");
  const tent big[] = {{256, 3, 3}, {257, 4, 50}, {258, 3, 8}, {262, 3, 1}};
  tiff_make(&b, 0, big, 4, g8, 15, 1, 15);
  tiff_expect_fail(&b, VG_ERR_FORMAT, "strip 0 holds 15 bytes, needs 150", "strip shorter than the image");
  const tent nowidth[] = {{257, 4, 5}, {258, 3, 8}, {262, 3, 1}};
  tiff_make(&b, 0, nowidth, 3, g8, 15, 1, 15);
  tiff_expect_fail(&b, VG_ERR_FORMAT, "ImageWidth", "TIFF without ImageWidth");
  const tent huge[] = {{256, 4, 100000}, {257, 4, 5}, {258, 3, 8}, {262, 3, 1}};
  tiff_make(&b, 0, huge, 4, g8, 15, 1, 15);
  tiff_expect_fail(&b, VG_ERR_LIMIT, "side limit", "TIFF 100000 wide");
  tiff_make(&b, 0, be8, 7, g8, 15, 3, 6);
  b.p[4] = 0xF0;                                    /* IFD offset far past the end */
  tiff_expect_fail(&b, VG_ERR_FORMAT, "IFD offset", "IFD past the end");
  free(b.p);
}

/* ---------------------------------------------------------------- dispatch */

static void test_dispatch(void) {
  vg_image im;
  static const uint8_t junk[] = {'G', 'I', 'F', '8', '9', 'a'};
  vg_status st = vg_image_decode(junk, sizeof junk, &im, NULL);
  VG_CHECK(st == VG_ERR_UNSUPPORTED && contains(vg_last_error(), "unknown image format"), "GIF bytes: %s", vg_last_error());
  st = vg_image_decode(junk, 0, &im, NULL);
  VG_CHECK(st == VG_ERR_UNSUPPORTED && contains(vg_last_error(), "0 bytes"), "empty input: %s", vg_last_error());
  char path[64];
  snprintf(path, sizeof path, "/tmp/vigil_test_junk_%d.bin", (int)getpid());
  VG_CHECK(vg_image_write_file(path, junk, sizeof junk) == VG_OK, "write a junk file");
  st = vg_image_load(path, &im, NULL);
  VG_CHECK(st == VG_ERR_UNSUPPORTED && contains(vg_last_error(), path), "load names the file: %s", vg_last_error());
  remove(path);
}

int main(void) {
  size_t prefixes = 0, unclean = 0;
  test_bmp(&prefixes, &unclean);
  test_bmp_header_sizes();
  test_pnm(&prefixes, &unclean);
  test_tiff(&prefixes, &unclean);
  test_dispatch();
  VG_CHECK(unclean == 0 && prefixes > 10000, "%zu prefixes of the BMP/PNM/TIFF test files: no crash, errors carry messages (%zu not)",
           prefixes, unclean);
  return vg_test_finish();
}
