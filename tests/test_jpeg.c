/* test_jpeg.c — the JPEG decoder (datasets/image/jpeg.c, jpeg_pixels.c) against
 *   - the Go project's reference PNGs (within 8/255, as Go checks) and its rule that
 *     baseline and progressive encodes of one image decode identically;
 *   - Pillow 9.4 / libjpeg-turbo decodes (tests/fixtures/jpeg from tools/gen_jpeg_fixtures.py):
 *     CRC of all pixels (bit-exact) and a subsampled image + a crop within 1/255, also for
 *     damaged files (RST markers renumbered or dropped, truncation, flipped bytes);
 *   - every prefix (strided for big files) and byte-flipped copies: a clean error or an image
 *     of the right size, never a crash (run under `make SAN=1 test`);
 *   - hand-corrupted headers refused with specific messages; size limits. */
#include "tests/vgtest.h"
#include "datasets/image/jpeg.h"
#include <unistd.h>

static uint8_t *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
  if (!b || fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); fclose(f); return NULL; }
  fclose(f);
  *n = (size_t)len;
  return b;
}

static uint8_t *read_shared(const char *rel, size_t *n) { return read_all(vg_test_shared(rel), n); }

static vg_status load_png(const char *path, vg_image *im) {
  size_t n;
  uint8_t *b = read_all(path, &n);
  if (!b) return vg_fail(VG_ERR_IO, "cannot read %s", path);
  vg_status st = vg_png_decode(b, n, im, NULL);
  free(b);
  return st;
}

/* Max |a-b| over the first `ch` channels of every pixel; -1 if sizes differ. A 4-channel
 * reference (RGBA) is compared on RGB. */
static int max_diff(const vg_image *a, const vg_image *b) {
  if (a->w != b->w || a->h != b->h || a->depth != 8 || b->depth != 8) return -1;
  int ch = a->c < b->c ? a->c : b->c;
  if (ch == 2 || (a->c == 1) != (b->c == 1)) return -1;
  const uint8_t *p = a->data, *q = b->data;
  int m = 0;
  for (size_t i = 0; i < (size_t)a->w * a->h; i++)
    for (int k = 0; k < ch; k++) {
      int d = abs(p[i * a->c + k] - q[i * b->c + k]);
      if (d > m) m = d;
    }
  return m;
}

static int decode_file(const char *rel, vg_image *im, const vg_jpeg_options *o) {
  size_t n;
  uint8_t *b = read_shared(rel, &n);
  if (!b) return 0;
  vg_status st = vg_jpeg_decode_ex(b, n, im, NULL, o);
  free(b);
  if (st != VG_OK) printf("  %s: %s\n", rel, vg_last_error());
  return st == VG_OK;
}

static const char *all_files[] = {
  "jpeg/video-001.221212.jpeg", "jpeg/video-001.cmyk.jpeg", "jpeg/video-001.jpeg",
  "jpeg/video-001.progressive.jpeg", "jpeg/video-001.progressive.truncated.jpeg",
  "jpeg/video-001.q50.410.jpeg", "jpeg/video-001.q50.410.progressive.jpeg",
  "jpeg/video-001.q50.411.jpeg", "jpeg/video-001.q50.411.progressive.jpeg",
  "jpeg/video-001.q50.420.jpeg", "jpeg/video-001.q50.420.progressive.jpeg",
  "jpeg/video-001.q50.422.jpeg", "jpeg/video-001.q50.422.progressive.jpeg",
  "jpeg/video-001.q50.440.jpeg", "jpeg/video-001.q50.440.progressive.jpeg",
  "jpeg/video-001.q50.444.jpeg", "jpeg/video-001.q50.444.progressive.jpeg",
  "jpeg/video-001.rgb.jpeg", "jpeg/video-001.separate.dc.progression.jpeg",
  "jpeg/video-001.separate.dc.progression.progressive.jpeg", "jpeg/video-005.gray.jpeg",
  "jpeg/video-005.gray.q50.2x2.jpeg", "jpeg/video-005.gray.q50.2x2.progressive.jpeg",
  "jpeg/video-005.gray.q50.jpeg", "jpeg/video-005.gray.q50.progressive.jpeg",
  "photos/dog.jpg", "photos/eagle.jpg", "photos/person.jpg",
};
#define NFILES (int)(sizeof all_files / sizeof all_files[0])

/* Go's image/decode_test.go pairs. Go upsamples chroma by replication, so for the two
 * files whose chroma is subsampled *and* differs much between neighbours (221212 = 4:2:2
 * stored as 2x2/1x2, rgb = subsampled G and B) libjpeg's triangle filter lands up to
 * 30/94 away; those are checked with fancy_upsampling = 0, which matches Go exactly. */
static void test_go_references(void) {
  static const struct { const char *png, *jpeg; int fancy_ok; } t[] = {
    {"jpeg/video-001.png", "jpeg/video-001.jpeg", 1},
    {"jpeg/video-001.png", "jpeg/video-001.progressive.jpeg", 1},
    {"jpeg/video-001.221212.png", "jpeg/video-001.221212.jpeg", 0},
    {"jpeg/video-001.cmyk.png", "jpeg/video-001.cmyk.jpeg", 1},
    {"jpeg/video-001.rgb.png", "jpeg/video-001.rgb.jpeg", 0},
    {"jpeg/video-001.progressive.truncated.png", "jpeg/video-001.progressive.truncated.jpeg", 1},
    {"jpeg/video-005.gray.png", "jpeg/video-005.gray.jpeg", 1},
  };
  vg_jpeg_options box = vg_jpeg_options_default();
  box.fancy_upsampling = 0;
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    vg_image ref, a, b;
    if (!VG_CHECK(load_png(vg_test_shared(t[i].png), &ref) == VG_OK, "load %s: %s", t[i].png, vg_last_error()))
      continue;
    int okd = decode_file(t[i].jpeg, &a, NULL), okb = decode_file(t[i].jpeg, &b, &box);
    int da = okd ? max_diff(&a, &ref) : -1, db = okb ? max_diff(&b, &ref) : -1;
    if (t[i].fancy_ok)
      VG_CHECK(da >= 0 && da <= 8 && db >= 0 && db <= 8,
               "go ref %-45s max diff %d (default), %d (box upsampling) <= 8", t[i].jpeg, da, db);
    else
      VG_CHECK(db >= 0 && db <= 8,
               "go ref %-45s max diff %d (box upsampling) <= 8; default (libjpeg/Pillow) %d", t[i].jpeg, db, da);
    vg_image_free(&ref);
    if (okd) vg_image_free(&a);
    if (okb) vg_image_free(&b);
  }
}

static void test_progressive_equals_baseline(void) {
  static const char *base[] = {"video-001", "video-001.q50.410", "video-001.q50.411", "video-001.q50.420",
                               "video-001.q50.422", "video-001.q50.440", "video-001.q50.444",
                               "video-001.separate.dc.progression", "video-005.gray.q50",
                               "video-005.gray.q50.2x2"};
  for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
    char p0[128], p1[128];
    snprintf(p0, sizeof p0, "jpeg/%s.jpeg", base[i]);
    snprintf(p1, sizeof p1, "jpeg/%s.progressive.jpeg", base[i]);
    vg_image a, b;
    int ok0 = decode_file(p0, &a, NULL), ok1 = decode_file(p1, &b, NULL);
    int same = ok0 && ok1 && a.w == b.w && a.h == b.h && a.c == b.c &&
               !memcmp(a.data, b.data, (size_t)a.w * a.h * a.c);
    VG_CHECK(same, "%s: baseline and progressive decode byte-identical (%dx%dx%d)", base[i], a.w, a.h, a.c);
    if (ok0) vg_image_free(&a);
    if (ok1) vg_image_free(&b);
  }
}

/* Pillow fixtures: CRC of all pixels, plus a subsampled image and a crop within 1/255. */
static void test_pillow(void) {
  FILE *f = fopen(vg_test_fixture("jpeg/pillow.txt"), "r");
  if (!VG_CHECK(f != NULL, "open tests/fixtures/jpeg/pillow.txt")) return;
  char line[512], rel[256];
  int total = 0, exact = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned w, h, c, crc, stride, cx, cy, cw, ch;
    if (line[0] == '#') continue;
    if (sscanf(line, "%255s %u %u %u %x %u %u %u %u %u", rel, &w, &h, &c, &crc, &stride, &cx, &cy, &cw, &ch) != 10)
      continue;
    total++;
    vg_image im, sub, crop;
    if (!VG_CHECK(decode_file(rel, &im, NULL), "pillow %s: decodes", rel)) continue;
    char name[300], path[320];
    snprintf(name, sizeof name, "%s", rel);
    for (char *p = name; *p; p++) if (*p == '/') *p = '_';
    snprintf(path, sizeof path, "jpeg/%s.sub.png", name);
    vg_status s1 = load_png(vg_test_fixture(path), &sub);
    snprintf(path, sizeof path, "jpeg/%s.crop.png", name);
    vg_status s2 = load_png(vg_test_fixture(path), &crop);
    int dims = im.w == (int)w && im.h == (int)h && im.c == (int)c;
    uint32_t got = dims ? vg_crc32(0, im.data, (size_t)w * h * c) : 0;
    int dsub = -1, dcrop = -1;
    if (dims && s1 == VG_OK) {  /* our pixels at the same stride */
      vg_image t = {sub.w, sub.h, (int)c, 8, malloc((size_t)sub.w * sub.h * c)};
      for (int y = 0; y < sub.h; y++)
        for (int x = 0; x < sub.w; x++)
          memcpy((uint8_t *)t.data + ((size_t)y * sub.w + x) * c,
                 (uint8_t *)im.data + ((size_t)y * stride * w + (size_t)x * stride) * c, c);
      dsub = max_diff(&t, &sub);
      free(t.data);
    }
    if (dims && s2 == VG_OK) {
      vg_image t = {crop.w, crop.h, (int)c, 8, malloc((size_t)crop.w * crop.h * c)};
      for (int y = 0; y < crop.h; y++)
        memcpy((uint8_t *)t.data + (size_t)y * crop.w * c,
               (uint8_t *)im.data + (((size_t)(cy + y) * w) + cx) * c, (size_t)crop.w * c);
      dcrop = max_diff(&t, &crop);
      free(t.data);
    }
    exact += got == crc;
    VG_CHECK(dims && dsub >= 0 && dsub <= 1 && dcrop >= 0 && dcrop <= 1,
             "pillow %-55s %ux%ux%u subsampled max diff %d, crop max diff %d, %s", rel, w, h, c, dsub,
             dcrop, got == crc ? "bit-exact" : "NOT bit-exact");
    vg_image_free(&im);
    if (s1 == VG_OK) vg_image_free(&sub);
    if (s2 == VG_OK) vg_image_free(&crop);
  }
  fclose(f);
  VG_CHECK(total == NFILES && exact == total, "pillow: %d of %d files bit-exact", exact, total);
}

/* The same mutations tools/gen_jpeg_fixtures.py applies (see its damaged.txt notes). */
static uint8_t *damage(const uint8_t *d, size_t n, const char *op, long a, long b, size_t *out_n) {
  uint8_t *e = malloc(n);
  memcpy(e, d, n);
  *out_n = n;
  if (!strcmp(op, "rst") || !strcmp(op, "rstdel")) {
    size_t sos = 0;
    while (sos + 1 < n && !(d[sos] == 0xFF && d[sos + 1] == 0xDA)) sos++;
    long k = 0;
    for (size_t i = sos; i + 1 < n; i++)
      if (d[i] == 0xFF && d[i + 1] >= 0xD0 && d[i + 1] <= 0xD7 && k++ == a) {
        if (!strcmp(op, "rst")) e[i + 1] = (uint8_t)(0xD0 + ((d[i + 1] - 0xD0 + b) & 7));
        else { memmove(e + i, e + i + 2, n - i - 2); *out_n = n - 2; }
        break;
      }
  } else if (!strcmp(op, "trunc")) {
    *out_n = (size_t)a;
  } else if (!strcmp(op, "flip")) {
    e[a] ^= 0x5A;
    if (e[a] == 0xFF) e[a] = 0xFE;
  }
  return e;
}

static void test_pillow_damaged(void) {
  FILE *f = fopen(vg_test_fixture("jpeg/damaged.txt"), "r");
  if (!VG_CHECK(f != NULL, "open tests/fixtures/jpeg/damaged.txt")) return;
  char line[512], rel[256], op[16];
  int total = 0, exact = 0;
  while (fgets(line, sizeof line, f)) {
    long a, b;
    unsigned w, h, c, crc;
    if (line[0] == '#' || sscanf(line, "%255s %15s %ld %ld %u %u %u %x", rel, op, &a, &b, &w, &h, &c, &crc) != 8)
      continue;
    size_t n, m;
    uint8_t *d = read_shared(rel, &n);
    if (!d) continue;
    uint8_t *e = damage(d, n, op, a, b, &m);
    vg_image im;
    vg_status st = vg_jpeg_decode(e, m, &im, NULL);
    int ok = st == VG_OK && im.w == (int)w && im.h == (int)h && im.c == (int)c &&
             vg_crc32(0, im.data, (size_t)w * h * c) == crc;
    total++;
    exact += ok;
    if (!ok) printf("  damaged %s %s %ld %ld: %s\n", rel, op, a, b, st ? vg_last_error() : "pixels differ from Pillow");
    if (st == VG_OK) vg_image_free(&im);
    free(e);
    free(d);
  }
  fclose(f);
  VG_CHECK(total > 30 && exact == total,
           "pillow damaged files (RST renumbered/dropped, truncated, flipped bytes): %d of %d bit-exact", exact, total);
}

/* Every prefix (strided so the test stays fast under ASan) and byte-flipped copies: a clean
 * error or an image of the full size; dropping only the EOI marker changes nothing. */
static void test_robustness(void) {
  for (int i = 0; i < NFILES; i++) {
    size_t n;
    uint8_t *d = read_shared(all_files[i], &n);
    if (!VG_CHECK(d != NULL, "read %s", all_files[i])) continue;
    vg_image full;
    if (vg_jpeg_decode(d, n, &full, NULL) != VG_OK) { free(d); continue; }
    int big = n > 50000;  /* photos: ~13 ms a decode at -O2, several times that under ASan */
    size_t step = n / (big ? 30 : 120) + 1, tried = 0, okc = 0, errc = 0, bad = 0;
    for (size_t len = 0; len < n; len += (len < 700 ? (i < 2 ? 1 : big ? 61 : 7) : step)) {
      uint8_t *e = malloc(len ? len : 1);  /* exact-size copy so ASan sees overreads */
      memcpy(e, d, len);
      vg_image im;
      vg_status st = vg_jpeg_decode(e, len, &im, NULL);
      tried++;
      if (st == VG_OK) {
        okc++;
        if (im.w != full.w || im.h != full.h || im.c != full.c) bad++;
        vg_image_free(&im);
      } else {
        errc++;
        if (st != VG_ERR_FORMAT || !vg_last_error()[0]) bad++;
      }
      free(e);
    }
    uint32_t seed = 12345u + (uint32_t)i;
    for (int k = 0; k < (big ? 10 : 30); k++) {  /* flip a few bytes anywhere */
      uint8_t *e = malloc(n);
      memcpy(e, d, n);
      for (int j = 0; j < 1 + k % 4; j++) {
        seed = seed * 1664525u + 1013904223u;
        e[(seed >> 8) % n] ^= (uint8_t)(1u + (seed >> 24) % 255u);
      }
      vg_image im;
      vg_status st = vg_jpeg_decode(e, n, &im, NULL);
      tried++;
      if (st == VG_OK) {
        okc++;
        if (im.w <= 0 || im.h <= 0) bad++;
        vg_image_free(&im);
      } else {
        errc++;
        if (!vg_last_error()[0]) bad++;
      }
      free(e);
    }
    vg_image noeoi;
    int same = n > 2 && d[n - 2] == 0xFF && d[n - 1] == 0xD9 && vg_jpeg_decode(d, n - 2, &noeoi, NULL) == VG_OK;
    if (same) {
      same = !memcmp(noeoi.data, full.data, (size_t)full.w * full.h * full.c);
      vg_image_free(&noeoi);
    }
    VG_CHECK(bad == 0 && same && okc > 0 && errc > 0,
             "robust %-48s %zu prefixes/flips: %zu decoded, %zu clean errors; no EOI = same pixels",
             all_files[i], tried, okc, errc);
    vg_image_free(&full);
    free(d);
  }
}

/* A baseline 4:4:4 file cut in half: the top rows are intact, the missing MCUs are
 * mid-grey (zero coefficients), as libjpeg fills them. */
static void test_truncated_baseline(void) {
  size_t n;
  uint8_t *d = read_shared("jpeg/video-001.jpeg", &n);
  if (!VG_CHECK(d != NULL, "read video-001.jpeg")) return;
  vg_image full, cut;
  vg_status s0 = vg_jpeg_decode(d, n, &full, NULL), s1 = vg_jpeg_decode(d, n / 2, &cut, NULL);
  if (VG_CHECK(s0 == VG_OK && s1 == VG_OK, "video-001.jpeg and its first half decode")) {
    int top = !memcmp(full.data, cut.data, (size_t)full.w * 8 * 3);
    const uint8_t *last = (const uint8_t *)cut.data + (size_t)(cut.h - 1) * cut.w * 3;
    int grey = 1;
    for (int x = 0; x < cut.w * 3; x++) grey &= last[x] == 128;
    VG_CHECK(top && grey, "truncated baseline: first 8 rows as the full file, last row all 128");
    vg_image_free(&full);
    vg_image_free(&cut);
  }
  free(d);
}

/* Position of the first marker m (FF m) at or after `from`, or -1. */
static long find_mk(const uint8_t *d, size_t n, int m, size_t from) {
  for (size_t i = from; i + 1 < n; i++)
    if (d[i] == 0xFF && d[i + 1] == m) return (long)i;
  return -1;
}

static void expect_fail(const uint8_t *e, size_t n, vg_status want, const char *msg, const char *what) {
  vg_image im;
  vg_status st = vg_jpeg_decode(e, n, &im, NULL);
  if (st == VG_OK) vg_image_free(&im);
  VG_CHECK(st == want && strstr(vg_last_error(), msg) != NULL, "refuses %s: %s (%s)", what,
           st == VG_OK ? "decoded!" : vg_last_error(), vg_status_name(st));
}

static void test_corrupt_headers(void) {
  size_t n, np;
  uint8_t *d = read_shared("jpeg/video-001.jpeg", &n);
  uint8_t *p = read_shared("jpeg/video-001.progressive.jpeg", &np);
  if (!VG_CHECK(d && p, "read video-001 files")) { free(d); free(p); return; }
  uint8_t *e = malloc(n);
  long sof = find_mk(d, n, 0xC0, 2), dht = find_mk(d, n, 0xC4, 2), dqt = find_mk(d, n, 0xDB, 2);
  VG_CHECK(sof > 0 && dht > 0 && dqt > 0, "video-001.jpeg has SOF0, DHT, DQT");
#define RESET() memcpy(e, d, n)
  RESET(); e[0] = 0x89;
  expect_fail(e, n, VG_ERR_FORMAT, "no SOI", "a file without SOI");
  RESET(); e[dht + 5] = (uint8_t)(e[dht + 5] + e[dht + 6]); e[dht + 6] = 0;  /* counts: same total, */
  for (int l = 2; l <= 16; l++) { e[dht + 5] = (uint8_t)(e[dht + 5] + e[dht + 4 + l]); e[dht + 4 + l] = 0; }
  expect_fail(e, n, VG_ERR_FORMAT, "code lengths overflow", "a Huffman table with every code 1 bit long");
  RESET(); e[dht + 20] = 250;
  expect_fail(e, n, VG_ERR_FORMAT, "bad Huffman table", "a Huffman table with more symbols than bytes");
  RESET(); e[dqt + 2] = 0; e[dqt + 3] = 1;
  expect_fail(e, n, VG_ERR_FORMAT, "bad segment length 1", "a DQT segment length of 1");
  RESET(); e[dqt + 2] = 0xFF; e[dqt + 3] = 0xF0;
  expect_fail(e, n, VG_ERR_FORMAT, "runs past the end", "a DQT segment length past the end");
  RESET(); e[sof + 2] = 0; e[sof + 3] = 20;
  expect_fail(e, n, VG_ERR_FORMAT, "SOF length", "an SOF length that disagrees with its components");
  RESET(); e[sof + 7] = 0; e[sof + 8] = 0;
  expect_fail(e, n, VG_ERR_FORMAT, "zero width or height", "a zero width");
  RESET(); e[sof + 5] = 0; e[sof + 6] = 0;
  expect_fail(e, n, VG_ERR_FORMAT, "zero width or height", "a zero height");
  RESET(); e[sof + 5] = 0xEA; e[sof + 6] = 0x60; e[sof + 7] = 0xEA; e[sof + 8] = 0x60;
  expect_fail(e, n, VG_ERR_LIMIT, "side limit", "a 60000x60000 image");
  RESET(); e[sof + 5] = 0x3F; e[sof + 6] = 0xFF; e[sof + 7] = 0x3F; e[sof + 8] = 0xFF;
  expect_fail(e, n, VG_ERR_LIMIT, "size limit", "a 16383x16383 RGB image (768 MiB)");
  RESET(); e[sof + 4] = 12;
  expect_fail(e, n, VG_ERR_UNSUPPORTED, "12-bit", "12-bit precision");
  RESET(); e[sof + 1] = 0xC3;
  expect_fail(e, n, VG_ERR_UNSUPPORTED, "lossless", "lossless JPEG (SOF3)");
  RESET(); e[sof + 1] = 0xC9;
  expect_fail(e, n, VG_ERR_UNSUPPORTED, "arithmetic", "arithmetic coding (SOF9)");
  RESET(); e[sof + 1] = 0xC5;
  expect_fail(e, n, VG_ERR_UNSUPPORTED, "hierarchical", "hierarchical JPEG (SOF5)");
  RESET(); e[sof + 11] = 0x55;
  expect_fail(e, n, VG_ERR_FORMAT, "sampling factors", "sampling factor 5");
  RESET(); e[sof + 11] = 0x00;
  expect_fail(e, n, VG_ERR_FORMAT, "sampling factors", "sampling factor 0");
  RESET(); e[sof + 12] = 3;
  expect_fail(e, n, VG_ERR_FORMAT, "undefined quantization table 3", "a missing quantization table");
  RESET(); e[sof + 1] = 0xE5;  /* SOF becomes an APP5 segment */
  expect_fail(e, n, VG_ERR_FORMAT, "SOS marker before SOF", "a scan without a frame");
  long sos = find_mk(d, n, 0xDA, 2);
  RESET(); e[sos + 6] = 0x33;
  expect_fail(e, n, VG_ERR_FORMAT, "undefined DC Huffman table 3", "an undefined Huffman table");
  RESET(); e[sos + 5] = 9;
  expect_fail(e, n, VG_ERR_FORMAT, "unknown component 9", "a scan naming an unknown component");
  expect_fail(d, (size_t)sos, VG_ERR_FORMAT, "truncated", "a file cut before its first scan");
  uint8_t *q = malloc(np);
  memcpy(q, p, np);
  long psos = find_mk(q, np, 0xDA, 2);
  q[psos + 2 + 2 + 1 + 3 * 2 + 2] = 0x0E;  /* Ah=0, Al=14 in the first scan */
  expect_fail(q, np, VG_ERR_FORMAT, "bad progressive scan parameters", "a progressive scan with Al=14");
  free(q);
  free(e);
  free(d);
  free(p);
}

/* ---- crafted files: work bounds, empty scans, truncation ------------------------------ */

typedef struct { uint8_t *p; size_t n, cap; } jbuf;
static void jput(jbuf *b, const void *src, size_t n) {
  if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 256; b->p = realloc(b->p, b->cap); }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}
static void jb(jbuf *b, int v) { uint8_t c = (uint8_t)v; jput(b, &c, 1); }
static void jw(jbuf *b, int v) { jb(b, v >> 8); jb(b, v & 255); }
static void jrep(jbuf *b, const uint8_t *s, size_t n, size_t times) { for (size_t i = 0; i < times; i++) jput(b, s, n); }

/* SOI and the tables of a one-component (grey) w x h JPEG: quantization all 1; DC table
 * with the single 1-bit code '0' = category 0; AC table '00' = EOB, '01' = EOB run class
 * 14 (2^14 + 14 more bits: up to 32767 blocks); DRI when ri > 0. */
static void jhead(jbuf *b, int progressive, int w, int h, int ri) {
  b->n = 0;
  jw(b, 0xFFD8);
  jw(b, 0xFFDB); jw(b, 67); jb(b, 0);
  for (int i = 0; i < 64; i++) jb(b, 1);
  jw(b, progressive ? 0xFFC2 : 0xFFC0); jw(b, 11); jb(b, 8); jw(b, h); jw(b, w); jb(b, 1); jb(b, 1); jb(b, 0x11); jb(b, 0);
  jw(b, 0xFFC4); jw(b, 20); jb(b, 0x00); jb(b, 1);
  for (int l = 2; l <= 16; l++) jb(b, 0);
  jb(b, 0);
  jw(b, 0xFFC4); jw(b, 21); jb(b, 0x10); jb(b, 0); jb(b, 2);
  for (int l = 3; l <= 16; l++) jb(b, 0);
  jb(b, 0x00); jb(b, 0xE0);
  if (ri) { jw(b, 0xFFDD); jw(b, 4); jw(b, ri); }
}
static void jsos(jbuf *b, int ss, int se, int ah, int al) {
  jw(b, 0xFFDA); jw(b, 8); jb(b, 1); jb(b, 1); jb(b, 0x00); jb(b, ss); jb(b, se); jb(b, ah << 4 | al);
}
/* DC scan data for `blocks` blocks: one '0' bit each (all DC differences 0). */
static void jdc(jbuf *b, size_t blocks) { for (size_t i = 0; i < (blocks + 7) / 8; i++) jb(b, 0); }
/* AC data: EOB runs of 32767 blocks ('01' + 14 one bits = 7F FF, FF byte-stuffed) until
 * `blocks` are covered. The same bytes serve first (Ah=0) and refinement (Ah=1) scans. */
static const uint8_t eobrun[3] = {0x7F, 0xFF, 0x00};
static void jac(jbuf *b, size_t blocks) { jrep(b, eobrun, 3, (blocks + 32766) / 32767); }

/* A progressive grey w x h file: a DC scan, then `nac` AC scans over 1..63 (the first a
 * first scan, the others refinement scans with Ah=1, Al=0 when refine, else repeated
 * first scans), then EOI. */
static void jflood(jbuf *b, int w, int h, int nac, int refine) {
  size_t blocks = (size_t)((w + 7) / 8) * (size_t)((h + 7) / 8);
  jhead(b, 1, w, h, 0);
  jsos(b, 0, 0, 0, refine ? 1 : 0);
  jdc(b, blocks);
  for (int i = 0; i < nac; i++) {
    jsos(b, 1, 63, refine && i > 0 ? 1 : 0, 0);
    jac(b, blocks);
  }
  jw(b, 0xFFD9);
}

static vg_status jdecode(const jbuf *b, vg_image *im, const vg_jpeg_options *o, unsigned *flags) {
  uint8_t *e = malloc(b->n);  /* exact-size copy so ASan sees overreads */
  memcpy(e, b->p, b->n);
  vg_status st = vg_jpeg_decode_flags(e, b->n, im, NULL, o, flags);
  free(e);
  return st;
}

static void test_work_bounds(void) {
  jbuf b = {0};
  vg_image im;
  unsigned fl = 0;
  /* The scan limit: 500 scans decode, 501 are refused, a lower option limit applies. */
  jflood(&b, 64, 64, VG_JPEG_MAX_SCANS - 1, 0);
  vg_status st = jdecode(&b, &im, NULL, &fl);
  VG_CHECK(st == VG_OK && im.w == 64 && fl == 0, "%d scans (the limit) decode: %s", VG_JPEG_MAX_SCANS,
           st ? vg_last_error() : "ok");
  if (st == VG_OK) vg_image_free(&im);
  jflood(&b, 64, 64, VG_JPEG_MAX_SCANS, 0);
  st = jdecode(&b, &im, NULL, NULL);
  VG_CHECK(st == VG_ERR_LIMIT && strstr(vg_last_error(), "scans") && !im.data, "%d scans refused: %s",
           VG_JPEG_MAX_SCANS + 1, vg_last_error());
  for (int n = 1000; n <= 20000; n *= 20) {  /* a scan flood (~3 bytes a scan, as in the issue) */
    jflood(&b, 64, 64, n, 0);
    st = jdecode(&b, &im, NULL, NULL);
    VG_CHECK(st == VG_ERR_LIMIT && strstr(vg_last_error(), "scan limit"), "flood of %d scans (%zu bytes) refused: %s",
             n + 1, b.n, vg_last_error());
  }
  vg_jpeg_options o = vg_jpeg_options_default();
  o.max_scans = 10;
  jflood(&b, 64, 64, 9, 1);
  st = jdecode(&b, &im, &o, NULL);
  VG_CHECK(st == VG_OK, "max_scans 10: 10 scans decode");
  if (st == VG_OK) vg_image_free(&im);
  jflood(&b, 64, 64, 10, 1);
  st = jdecode(&b, &im, &o, NULL);
  VG_CHECK(st == VG_ERR_LIMIT && strstr(vg_last_error(), "more than 10 scans"), "max_scans 10: 11 refused: %s",
           vg_last_error());

  /* The work budget: refinement scans whose EOB runs cover every block make the decoder
   * visit every coefficient of the band, each with ~9 bytes of data. Well under the scan
   * limit, the budget (16 visits per coefficient on average) stops them. */
  jflood(&b, 2048, 2048, 12, 1);
  st = jdecode(&b, &im, NULL, NULL);
  VG_CHECK(st == VG_OK && im.w == 2048, "2048x2048: 12 full-band AC scans (a deep progression) decode: %s",
           st ? vg_last_error() : "ok");
  if (st == VG_OK) vg_image_free(&im);
  jflood(&b, 2048, 2048, 60, 1);
  st = jdecode(&b, &im, NULL, NULL);
  VG_CHECK(st == VG_ERR_LIMIT && strstr(vg_last_error(), "decoding work exceeds") && !im.data,
           "2048x2048: 60 refinement scans (%zu bytes) stopped by the work budget: %s", b.n, vg_last_error());
  /* The same with repeated non-interleaved baseline scans (each redecodes the component). */
  jhead(&b, 0, 2048, 2048, 0);
  for (int i = 0; i < 40; i++) {
    jsos(&b, 0, 63, 0, 0);
    for (size_t k = 0; k < 65536 / 4; k++) jb(&b, 0);  /* '0' DC + '00' EOB per block: 3 bits, 4 blocks a byte (rounded up) */
  }
  jw(&b, 0xFFD9);
  st = jdecode(&b, &im, NULL, NULL);
  VG_CHECK(st == VG_OK, "40 sequential scans of one component: the first is the image (libjpeg stops after a "
           "complete single-component scan): %s", st ? vg_last_error() : "ok");
  if (st == VG_OK) vg_image_free(&im);

  /* A scan with an empty entropy-coded segment is refused (every scan codes >= 1 bit a block). */
  jhead(&b, 1, 64, 64, 0);
  jsos(&b, 0, 0, 0, 0);
  jdc(&b, 64);
  jsos(&b, 1, 63, 0, 0);
  jsos(&b, 1, 63, 0, 0);
  jac(&b, 64);
  jw(&b, 0xFFD9);
  st = jdecode(&b, &im, NULL, NULL);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "carries no data"), "an empty scan is refused: %s",
           vg_last_error());
  jhead(&b, 1, 64, 64, 0);  /* also when only FF fill bytes stand between the scans */
  jsos(&b, 0, 0, 0, 0);
  jw(&b, 0xFFFF);
  jsos(&b, 1, 63, 0, 0);
  jac(&b, 64);
  jw(&b, 0xFFD9);
  st = jdecode(&b, &im, NULL, NULL);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "carries no data"), "an empty DC scan (FF fill) is refused: %s",
           vg_last_error());

  /* Huge declared size, tiny data: the scan stops where the data stop (one inverse-DCT
   * pass remains); cut without EOI it is flagged truncated, with EOI it is not. */
  jhead(&b, 0, 4096, 4096, 0);
  jsos(&b, 0, 63, 0, 0);
  jb(&b, 0);
  st = jdecode(&b, &im, NULL, &fl);
  VG_CHECK(st == VG_OK && im.w == 4096 && (fl & VG_IMAGE_TRUNCATED), "4096x4096 with 1 byte of scan data, no EOI: "
           "decodes, flagged truncated (%s)", st ? vg_last_error() : "ok");
  if (st == VG_OK) vg_image_free(&im);
  jw(&b, 0xFFD9);
  st = jdecode(&b, &im, NULL, &fl);
  VG_CHECK(st == VG_OK && fl == 0, "the same with EOI: decodes, not flagged truncated");
  if (st == VG_OK) vg_image_free(&im);
  /* 60 progressive scans of one byte each over a 4096x4096 frame: each ends where its data
   * end (before, every such scan walked all 262144 blocks). */
  jhead(&b, 1, 4096, 4096, 0);
  jsos(&b, 0, 0, 0, 0);
  jb(&b, 0);
  for (int i = 0; i < 60; i++) { jsos(&b, 1, 63, 0, 0); jb(&b, 0); }
  jw(&b, 0xFFD9);
  st = jdecode(&b, &im, NULL, NULL);
  VG_CHECK(st == VG_OK, "4096x4096, 61 one-byte scans: decodes (%s)", st ? vg_last_error() : "ok");
  if (st == VG_OK) vg_image_free(&im);

  /* Restart-marker floods: DRI 1 over a 4096x4096 frame, the data nothing but RST markers
   * (in order, then out of order); and DRI 1 with no data at all (a following marker that
   * is not RSTn ends the scan at once). */
  for (int variant = 0; variant < 3; variant++) {
    jhead(&b, 0, 4096, 4096, 1);
    jsos(&b, 0, 63, 0, 0);
    jb(&b, 0);
    if (variant < 2)
      for (int i = 0; i < 200000; i++) jw(&b, 0xFFD0 + (variant ? (i * 5) & 7 : i & 7));
    jw(&b, 0xFFD9);
    st = jdecode(&b, &im, NULL, &fl);
    VG_CHECK(st == VG_OK && im.w == 4096 && fl == 0, "restart flood %d (%zu bytes): clean decode (%s)", variant, b.n,
             st ? vg_last_error() : "ok");
    if (st == VG_OK) vg_image_free(&im);
  }
  free(b.p);
}

static int warned;
static char warn_msg[1024];
static void catch_warning(const char *msg, void *user) {
  (void)user;
  warned++;
  snprintf(warn_msg, sizeof warn_msg, "%s", msg);
}

/* Truncation (data end before EOI) is flagged for every cut of a real file; whole files are
 * not; vg_image_load warns naming the file, strict loading refuses it. */
static void test_truncation_flag(void) {
  static const char *files[] = {"jpeg/video-001.jpeg", "jpeg/video-001.progressive.jpeg",
                                "jpeg/video-001.progressive.truncated.jpeg", "photos/dog.jpg"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    size_t n;
    uint8_t *d = read_shared(files[i], &n);
    if (!VG_CHECK(d != NULL, "read %s", files[i])) continue;
    unsigned fl = 0;
    vg_image im;
    vg_status st = vg_jpeg_decode_flags(d, n, &im, NULL, NULL, &fl);
    /* Go's "truncated" progressive file lacks its last scans but ends with EOI: complete */
    int ok = st == VG_OK && !(fl & VG_IMAGE_TRUNCATED);
    if (st == VG_OK) vg_image_free(&im);
    size_t cuts = 0, flagged = 0;
    long sos = find_mk(d, n, 0xDA, 2);
    for (size_t len = (size_t)sos + 20; len < n; len += n / 37 + 1) {
      st = vg_jpeg_decode_flags(d, len, &im, NULL, NULL, &fl);
      cuts++;
      if (st == VG_OK) { flagged += !!(fl & VG_IMAGE_TRUNCATED); vg_image_free(&im); }
      else flagged++;  /* an error is fine too: never silent */
    }
    VG_CHECK(ok && cuts > 10 && flagged == cuts, "%s: whole file (with EOI) not flagged; %zu of %zu cuts after the "
             "first scan flagged truncated", files[i], flagged, cuts);
    free(d);
  }
  /* vg_image_load: a warning naming the file (default), an error with strict. */
  char path[] = "/tmp/vg_test_jpeg_trunc_XXXXXX";
  int fd = mkstemp(path);
  size_t n;
  uint8_t *d = read_shared("jpeg/video-001.jpeg", &n);
  if (!VG_CHECK(fd >= 0 && d != NULL, "temp file and video-001.jpeg")) { free(d); return; }
  VG_CHECK(write(fd, d, n / 2) == (ssize_t)(n / 2), "write half of video-001.jpeg");
  close(fd);
  vg_image_set_warning_handler(catch_warning, NULL);
  vg_image im;
  warned = 0;
  vg_status st = vg_image_load(path, &im, NULL);
  VG_CHECK(st == VG_OK && warned == 1 && strstr(warn_msg, path) && strstr(warn_msg, "truncated"),
           "vg_image_load of a cut JPEG decodes and warns naming the file: \"%s\"", warn_msg);
  if (st == VG_OK) vg_image_free(&im);
  warned = 0;
  unsigned fl = 0;
  st = vg_image_load_ex(path, &im, NULL, 0, &fl);
  VG_CHECK(st == VG_OK && warned == 0 && (fl & VG_IMAGE_TRUNCATED), "vg_image_load_ex with flags: no warning, flag set");
  if (st == VG_OK) vg_image_free(&im);
  st = vg_image_load_ex(path, &im, NULL, 1, NULL);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), path) && strstr(vg_last_error(), "truncated") && !im.data,
           "strict load refuses it: %s", vg_last_error());
  st = vg_image_load_ex(vg_test_shared("jpeg/video-001.jpeg"), &im, NULL, 1, &fl);
  VG_CHECK(st == VG_OK && fl == 0 && warned == 0, "strict load of the whole file: fine, no flag");
  if (st == VG_OK) vg_image_free(&im);
  vg_image_set_warning_handler(NULL, NULL);
  unlink(path);
  free(d);
}

static void test_limits_and_dispatch(void) {
  size_t n;
  uint8_t *d = read_shared("jpeg/video-001.jpeg", &n);
  if (!VG_CHECK(d != NULL, "read video-001.jpeg")) return;
  vg_image_limits small = {149, (size_t)256 << 20, (size_t)8 << 20}, tight = {16384, 150 * 103 * 3 - 1, 1 << 20},
                  fits = {150, 150 * 103 * 3, 1 << 20};
  vg_image a, b, c;
  vg_status s1 = vg_jpeg_decode(d, n, &a, &small), s2 = vg_jpeg_decode(d, n, &a, &tight);
  vg_status s3 = vg_jpeg_decode(d, n, &a, &fits), s4 = vg_image_decode(d, n, &b, NULL);
  vg_status s5 = vg_jpeg_decode(d, n, &c, NULL);
  VG_CHECK(s1 == VG_ERR_LIMIT && s2 == VG_ERR_LIMIT && s3 == VG_OK,
           "limits: side 149 and bytes-1 refused (VG_ERR_LIMIT), exact fit decodes");
  VG_CHECK(s4 == VG_OK && s5 == VG_OK && b.w == 150 && b.h == 103 && b.c == 3 && b.depth == 8 &&
           !memcmp(b.data, c.data, 150 * 103 * 3),
           "vg_image_decode picks the JPEG decoder: 150x103 RGB, same pixels");
  if (s3 == VG_OK) vg_image_free(&a);
  if (s4 == VG_OK) vg_image_free(&b);
  if (s5 == VG_OK) vg_image_free(&c);
  free(d);
}

int main(void) {
  test_go_references();
  test_progressive_equals_baseline();
  test_pillow();
  test_pillow_damaged();
  test_truncated_baseline();
  test_corrupt_headers();
  test_limits_and_dispatch();
  test_robustness();
  test_work_bounds();
  test_truncation_flag();
  return vg_test_finish();
}
