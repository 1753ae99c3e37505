/* convert.c — `vigil convert IN OUT [--gray|--rgb] [--resize WxH]`: decode any supported
 * image (PNG, JPEG, BMP, PGM/PPM, TIFF) and write it in the format OUT's extension names:
 *   .png           any channels, 8 or 16 bit (kept)
 *   .pgm / .ppm    P5 grey / P6 RGB, maxval 255 or 65535 by depth; PGM converts colour to
 *                  grey (Pillow convert("L")), PPM grey to RGB; alpha is dropped
 *   .pnm           P5 or P6 by channels (alpha dropped)
 *   .tif / .tiff   uncompressed little-endian TIFF, one strip, any channels (alpha as
 *                  ExtraSamples = unassociated), 8 or 16 bit
 *   .bmp           8-bit only (grey, RGB, RGBA)
 * Depth is kept: 8-bit stays 8-bit, 16-bit stays 16-bit.
 * --gray: Pillow convert("L") — (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 — on 8-bit;
 *         the same weights on 16-bit samples ((... + 2^15) >> 16 in 64-bit); alpha dropped.
 * --rgb:  grey replicated, alpha dropped.
 * --resize WxH: Pillow Image.resize(BILINEAR) (antialiased, Pillow's 8-bit fixed point);
 *         8-bit grey or RGB only (convert with --gray / --rgb first if the image has alpha). */
#include "cli/args.h"
#include "cli/opts.h"
#include "cli/cli.h"
#include "datasets/image/image.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --resize output within the decoders' default limits (16384 a side, 256 MiB decoded), so
 * the result reads back and the resize + encode stay bounded. */
#define RESIZE_MAX_SIDE 16384
#define RESIZE_MAX_BYTES ((size_t)256 << 20)

/* `vigil convert`'s options (the table drives the parser and --help: cli/opts.h) */
typedef struct {
  bool gray, rgb;
  int rw, rh;
} convert_opts;

/* --resize WxH: W and H in [1, RESIZE_MAX_SIDE], W x H <= RESIZE_MAX_BYTES */
static bool convert_resize(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  const char *x = strchr(v, 'x');
  char wb[32] = "", hb[32] = "";
  if (x && x - v < 31) { snprintf(wb, sizeof wb, "%.*s", (int)(x - v), v); snprintf(hb, sizeof hb, "%.31s", x + 1); }
  int64_t w64 = 0, h64 = 0;
  if (!x || !vg_parse_i64(wb, &w64, NULL) || !vg_parse_i64(hb, &h64, NULL) || w64 < 1 || w64 > RESIZE_MAX_SIDE ||
      h64 < 1 || h64 > RESIZE_MAX_SIDE || w64 * h64 > (int64_t)RESIZE_MAX_BYTES) {
    fprintf(stderr, "vigil %s: %s: '%s' is not WxH with W and H integers in [1, %d], W x H <= %lld "
                    "(e.g. 256x256)\n", cmd, o->name, v, RESIZE_MAX_SIDE, (long long)RESIZE_MAX_BYTES);
    return false;
  }
  convert_opts *c = opts;
  c->rw = (int)w64;
  c->rh = (int)h64;
  return true;
}

#define T convert_opts
static const vg_opt convert_table[] = {
  {.name = "--gray", .alias = "--grey", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, gray),
   .help = "to grey: Pillow convert(\"L\") weights, any depth; alpha dropped"},
  {.name = "--rgb", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, rgb), .help = "to RGB: grey replicated, alpha dropped"},
  {.name = "--resize", .kind = VG_OPT_STR, .arg = "WxH", .hook = convert_resize,
   .help = "Pillow's Image.resize(BILINEAR), 8-bit grey or RGB; W, H in [1, 16384]"},
  {0}};
#undef T

const vg_cmd_spec vg_cmd_convert = {
  .name = "convert", .opts = convert_table, .max_pos = 2, .example = "in.png out.png",
  .usage = "usage: vigil convert IN OUT [--gray|--rgb] [--resize WxH]\n"
           "  IN: PNG, JPEG, BMP, PGM/PPM or TIFF; OUT by extension: .png .pgm .ppm .pnm .tif .tiff .bmp\n"
           "  8-bit stays 8-bit, 16-bit stays 16-bit; --resize uses Pillow's bilinear resize (8-bit)\n"};

static int usage(FILE *f) { return vg_opts_usage(&vg_cmd_convert, f); }

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

/* Integer TIFF: header, IFD (sorted tags), BitsPerSample array, pixel strip. */
static vg_status tiff_encode(const vg_image *im, uint8_t **out, size_t *out_n) {
  int c = im->c, bps = im->depth / 8;
  int has_alpha = c == 2 || c == 4;
  int nent = 11 + has_alpha;
  size_t ifd = 8, ifd_len = 2 + 12 * (size_t)nent + 4, arr = ifd + ifd_len, data = (arr + 2 * (size_t)c + 7) & ~(size_t)7;
  size_t bytes = (size_t)im->w * im->h * c * bps, total = data + bytes;
  if (total > 0xFFFFFFFFu) return vg_fail(VG_ERR_LIMIT, "tiff: %dx%d image too large for a classic TIFF", im->w, im->h);
  uint8_t *o = calloc(total, 1);
  if (!o) return vg_fail(VG_ERR_NOMEM, "tiff: out of memory");
  memcpy(o, "II", 2);
  put16(o + 2, 42);
  put32(o + 4, (uint32_t)ifd);
  put16(o + ifd, (uint32_t)nent);
  /* tag, type (3 SHORT, 4 LONG), count, value */
  uint32_t t[12][4] = {
      {256, 4, 1, (uint32_t)im->w}, {257, 4, 1, (uint32_t)im->h},
      {258, 3, (uint32_t)c, c <= 2 ? (uint32_t)(im->depth | (c == 2 ? im->depth << 16 : 0)) : (uint32_t)arr},
      {259, 3, 1, 1}, {262, 3, 1, c >= 3 ? 2u : 1u}, {273, 4, 1, (uint32_t)data}, {277, 3, 1, (uint32_t)c},
      {278, 4, 1, (uint32_t)im->h}, {279, 4, 1, (uint32_t)bytes}, {284, 3, 1, 1}, {338, 3, 1, 2}, {339, 3, 1, 1}};
  int k = 0;
  for (int i = 0; i < 12; i++) {
    if (t[i][0] == 338 && !has_alpha) continue;
    uint8_t *e = o + ifd + 2 + 12 * k++;
    put16(e, t[i][0]);
    put16(e + 2, t[i][1]);
    put32(e + 4, t[i][2]);
    put32(e + 8, t[i][3]);   /* LONG, or one / two SHORTs inline (low half first), or an offset */
  }
  put32(o + ifd + 2 + 12 * nent, 0);
  for (int i = 0; i < c; i++) put16(o + arr + 2 * i, (uint32_t)im->depth);
  if (bps == 1) memcpy(o + data, im->data, bytes);
  else
    for (size_t i = 0; i < bytes / 2; i++) put16(o + data + 2 * i, ((const uint16_t *)im->data)[i]);
  *out = o;
  *out_n = total;
  return VG_OK;
}

/* Channel conversion at any depth: want 1 (Pillow L weights) or 3 (grey replicated);
 * alpha dropped. */
static vg_status to_channels(const vg_image *s, int want, vg_image *d) {
  memset(d, 0, sizeof *d);
  size_t np = (size_t)s->w * s->h, bps = (size_t)s->depth / 8;
  d->data = malloc(np * want * bps);
  if (!d->data) return vg_fail(VG_ERR_NOMEM, "convert: out of memory");
  d->w = s->w; d->h = s->h; d->c = want; d->depth = s->depth;
  for (size_t i = 0; i < np; i++) {
    uint64_t v[4] = {0};
    for (int k = 0; k < s->c; k++)
      v[k] = bps == 1 ? ((const uint8_t *)s->data)[i * s->c + k] : ((const uint16_t *)s->data)[i * s->c + k];
    uint64_t o[3];
    if (want == 1) o[0] = s->c >= 3 ? (v[0] * 19595 + v[1] * 38470 + v[2] * 7471 + 0x8000) >> 16 : v[0];
    else for (int k = 0; k < 3; k++) o[k] = s->c >= 3 ? v[k] : v[0];
    for (int k = 0; k < want; k++) {
      if (bps == 1) ((uint8_t *)d->data)[i * want + k] = (uint8_t)o[k];
      else ((uint16_t *)d->data)[i * want + k] = (uint16_t)o[k];
    }
  }
  return VG_OK;
}

static const char *ext_of(const char *p) {
  const char *dot = strrchr(p, '.'), *sl = strrchr(p, '/');
  return dot && (!sl || dot > sl) ? dot + 1 : "";
}

int vg_cli_convert(int argc, char **argv) {
  convert_opts o = {0};
  const char *pos[2] = {NULL, NULL};
  int prc = vg_opts_parse(&vg_cmd_convert, argc, argv, &o, pos, NULL);
  if (prc >= 0) return prc;
  const char *in = pos[0], *out = pos[1];
  int gray = o.gray, rgb = o.rgb, rw = o.rw, rh = o.rh;
  if (!in || !out || (gray && rgb)) return usage(stderr);
  const char *ext = ext_of(out);
  enum { F_PNG, F_PGM, F_PPM, F_PNM, F_TIFF, F_BMP } fmt;
  if (!strcasecmp(ext, "png")) fmt = F_PNG;
  else if (!strcasecmp(ext, "pgm")) fmt = F_PGM;
  else if (!strcasecmp(ext, "ppm")) fmt = F_PPM;
  else if (!strcasecmp(ext, "pnm")) fmt = F_PNM;
  else if (!strcasecmp(ext, "tif") || !strcasecmp(ext, "tiff")) fmt = F_TIFF;
  else if (!strcasecmp(ext, "bmp")) fmt = F_BMP;
  else {
    fprintf(stderr, "vigil convert: %s: unknown output extension '.%s' (png, pgm, ppm, pnm, tif, tiff, bmp)\n", out, ext);
    return 2;
  }
  vg_image im, t;
  if (vg_image_load(in, &im, NULL) != VG_OK) { fprintf(stderr, "vigil convert: %s\n", vg_last_error()); return 1; }
  int want = gray ? 1 : rgb ? 3 : 0;
  if (!want && fmt == F_PGM) want = 1;
  if (!want && fmt == F_PPM) want = 3;
  if (!want && fmt == F_PNM && (im.c == 2 || im.c == 4)) want = im.c - 1;
  vg_status st = VG_OK;
  if (want && want != im.c) {
    if ((st = to_channels(&im, want, &t)) == VG_OK) { vg_image_free(&im); im = t; }
  }
  if (st == VG_OK && rw && (size_t)rw * (size_t)rh * (size_t)im.c > RESIZE_MAX_BYTES) {
    fprintf(stderr, "vigil convert: --resize %dx%d: %d channels make %zu bytes, over the %zu-byte image limit "
                    "(the decoders' own; use a smaller size, or --gray)\n", rw, rh, im.c,
            (size_t)rw * (size_t)rh * (size_t)im.c, RESIZE_MAX_BYTES);
    vg_image_free(&im);
    return 2;
  }
  if (st == VG_OK && rw) {
    if (im.depth != 8) st = vg_fail(VG_ERR_UNSUPPORTED, "--resize: 16-bit images are not supported (Pillow has no 16-bit bilinear path to match)");
    else if (im.c != 1 && im.c != 3) st = vg_fail(VG_ERR_UNSUPPORTED, "--resize: the image has alpha; add --rgb or --gray");
    else if ((st = vg_image_resize(&im, rw, rh, VG_RESAMPLE_BILINEAR, &t)) == VG_OK) { vg_image_free(&im); im = t; }
  }
  uint8_t *buf = NULL;
  size_t n = 0;
  if (st == VG_OK) {
    switch (fmt) {
      case F_PNG: st = vg_png_encode(&im, &buf, &n); break;
      case F_PGM: case F_PPM: case F_PNM: st = vg_pnm_encode(&im, &buf, &n); break;
      case F_TIFF: st = tiff_encode(&im, &buf, &n); break;
      case F_BMP: st = vg_bmp_encode(&im, &buf, &n); break;
    }
  }
  if (st == VG_OK) st = vg_image_write_file(out, buf, n);
  free(buf);
  if (st != VG_OK) { fprintf(stderr, "vigil convert: %s: %s\n", out, vg_last_error()); vg_image_free(&im); return 1; }
  printf("%s: %dx%d, %d channel%s, %d-bit\n", out, im.w, im.h, im.c, im.c > 1 ? "s" : "", im.depth);
  vg_image_free(&im);
  return 0;
}
