/* tiff.c — baseline TIFF, uncompressed strips only: 32-bit float single-channel maps
 * (read and write, as MVTec AD's evaluation scripts exchange anomaly maps) and 8/16-bit
 * unsigned grey, grey+alpha, RGB, RGBA images (read).
 *
 * File: 8-byte header ("II" little- or "MM" big-endian, 42, offset of the first IFD);
 * an IFD is a count, 12-byte entries (tag, type, count, value or offset to values) and
 * the next IFD's offset. Only the first IFD (the first page) is read. */
#include "datasets/image/internal.h"
#include <string.h>

enum {
  T_WIDTH = 256, T_HEIGHT = 257, T_BPS = 258, T_COMPRESSION = 259, T_PHOTOMETRIC = 262,
  T_FILLORDER = 266, T_STRIPOFFSETS = 273, T_SPP = 277, T_ROWSPERSTRIP = 278,
  T_STRIPBYTECOUNTS = 279, T_PLANAR = 284, T_PREDICTOR = 317, T_TILEWIDTH = 322,
  T_SAMPLEFORMAT = 339
};
enum { TY_BYTE = 1, TY_SHORT = 3, TY_LONG = 4 };

typedef struct {
  const uint8_t *buf;
  size_t n;
  int be;                         /* big-endian ("MM") */
} tiff_file;

/* One array-valued tag: where its values are and how to read them. */
typedef struct {
  int type;                       /* 0 = tag absent */
  uint32_t count;
  size_t off;                     /* byte offset of the first value in the file */
} tiff_array;

typedef struct {
  uint32_t w, h, bps, spp, compression, photometric, planar, sampleformat, rps, predictor;
  int has_tiles, has_photometric;
  tiff_array offsets, counts;
} tiff_info;

static uint32_t rd16(const tiff_file *t, size_t off) {
  const uint8_t *p = t->buf + off;
  return t->be ? (uint32_t)(p[0] << 8 | p[1]) : vg_le16(p);
}

static uint32_t rd32(const tiff_file *t, size_t off) {
  return t->be ? vg_be32(t->buf + off) : vg_le32(t->buf + off);
}

static int type_size(int type) { return type == TY_BYTE ? 1 : type == TY_SHORT ? 2 : type == TY_LONG ? 4 : 0; }

/* Value i of an integer array (caller checked bounds in array_of). */
static uint32_t array_get(const tiff_file *t, const tiff_array *a, uint32_t i) {
  size_t o = a->off + (size_t)i * type_size(a->type);
  return a->type == TY_BYTE ? t->buf[o] : a->type == TY_SHORT ? rd16(t, o) : rd32(t, o);
}

/* Locates the values of the entry at `e`: inline when they fit in 4 bytes. */
static vg_status array_of(const tiff_file *t, size_t e, uint32_t tag, tiff_array *a) {
  int type = (int)rd16(t, e + 2);
  uint32_t count = rd32(t, e + 4);
  int sz = type_size(type);
  if (sz == 0) return vg_fail(VG_ERR_FORMAT, "tiff: tag %u has non-integer type %d", tag, type);
  if (count == 0) return vg_fail(VG_ERR_FORMAT, "tiff: tag %u has no values", tag);
  uint64_t bytes = (uint64_t)count * sz;
  size_t off = bytes <= 4 ? e + 8 : rd32(t, e + 8);
  if (off > t->n || bytes > t->n - off) return vg_fail(VG_ERR_FORMAT, "tiff: values of tag %u lie past the end of the file", tag);
  a->type = type;
  a->count = count;
  a->off = off;
  return VG_OK;
}

static vg_status parse(const tiff_file *t, tiff_info *f) {
  memset(f, 0, sizeof *f);
  f->compression = 1;
  f->planar = 1;
  f->sampleformat = 1;
  f->spp = 1;
  f->bps = 1;
  f->predictor = 1;
  f->rps = 0xFFFFFFFFu;
  size_t n = t->n;
  if (n < 8) return vg_fail(VG_ERR_FORMAT, "tiff: truncated header");
  if (rd16(t, 2) != 42) return vg_fail(VG_ERR_FORMAT, "tiff: bad magic (BigTIFF is not supported)");
  uint32_t ifd = rd32(t, 4);
  if (ifd < 8 || ifd > n || n - ifd < 2) return vg_fail(VG_ERR_FORMAT, "tiff: first IFD offset %u is out of the file", ifd);
  uint32_t ne = rd16(t, ifd);
  if ((n - ifd - 2) / 12 < ne) return vg_fail(VG_ERR_FORMAT, "tiff: IFD with %u entries is truncated", ne);
  int have_w = 0, have_h = 0;
  for (uint32_t i = 0; i < ne; i++) {
    size_t e = ifd + 2 + 12 * (size_t)i;
    uint32_t tag = rd16(t, e);
    tiff_array a;
    vg_status st;
    switch (tag) {
      case T_WIDTH: case T_HEIGHT: case T_BPS: case T_COMPRESSION: case T_PHOTOMETRIC: case T_SPP:
      case T_ROWSPERSTRIP: case T_PLANAR: case T_SAMPLEFORMAT: case T_PREDICTOR: case T_FILLORDER: {
        if ((st = array_of(t, e, tag, &a)) != VG_OK) return st;
        uint32_t v = array_get(t, &a, 0);
        /* Per-sample tags (BitsPerSample, SampleFormat) must agree across samples. */
        for (uint32_t k = 1; k < a.count && (tag == T_BPS || tag == T_SAMPLEFORMAT); k++)
          if (array_get(t, &a, k) != v)
            return vg_fail(VG_ERR_UNSUPPORTED, "tiff: tag %u differs between samples", tag);
        if (tag == T_WIDTH) { f->w = v; have_w = 1; }
        else if (tag == T_HEIGHT) { f->h = v; have_h = 1; }
        else if (tag == T_BPS) f->bps = v;
        else if (tag == T_COMPRESSION) f->compression = v;
        else if (tag == T_PHOTOMETRIC) { f->photometric = v; f->has_photometric = 1; }
        else if (tag == T_SPP) f->spp = v;
        else if (tag == T_ROWSPERSTRIP) f->rps = v;
        else if (tag == T_PLANAR) f->planar = v;
        else if (tag == T_SAMPLEFORMAT) f->sampleformat = v;
        else if (tag == T_PREDICTOR) f->predictor = v;
        else if (tag == T_FILLORDER && v != 1) return vg_fail(VG_ERR_UNSUPPORTED, "tiff: FillOrder %u is not supported", v);
        break;
      }
      case T_STRIPOFFSETS:
        if ((st = array_of(t, e, tag, &f->offsets)) != VG_OK) return st;
        break;
      case T_STRIPBYTECOUNTS:
        if ((st = array_of(t, e, tag, &f->counts)) != VG_OK) return st;
        break;
      case T_TILEWIDTH:
        f->has_tiles = 1;
        break;
      default:
        break;                     /* other tags (resolution, software, ...) are ignored */
    }
  }
  if (!have_w || !have_h) return vg_fail(VG_ERR_FORMAT, "tiff: ImageWidth or ImageLength tag missing");
  if (f->has_tiles) return vg_fail(VG_ERR_UNSUPPORTED, "tiff: tiled images are not supported (only strips)");
  if (f->compression != 1)
    return vg_fail(VG_ERR_UNSUPPORTED, "tiff: compression %u is not supported (only uncompressed)", f->compression);
  if (f->predictor != 1) return vg_fail(VG_ERR_UNSUPPORTED, "tiff: predictor %u is not supported", f->predictor);
  if (f->planar != 1 && f->spp > 1)
    return vg_fail(VG_ERR_UNSUPPORTED, "tiff: planar (separate) sample layout is not supported");
  if (f->spp < 1 || f->spp > 4) return vg_fail(VG_ERR_UNSUPPORTED, "tiff: %u samples per pixel", f->spp);
  if (!f->offsets.type) return vg_fail(VG_ERR_FORMAT, "tiff: StripOffsets tag missing");
  return VG_OK;
}

/* Copies the strips into one contiguous buffer of rowbytes * h bytes (file byte order). */
static vg_status read_strips(const tiff_file *t, const tiff_info *f, size_t rowbytes, uint8_t *dst) {
  uint32_t rps = f->rps == 0 || f->rps > f->h ? f->h : f->rps;
  uint32_t nstrips = (f->h - 1) / rps + 1;   /* h >= 1 */
  if (f->offsets.count < nstrips)
    return vg_fail(VG_ERR_FORMAT, "tiff: %u strip offsets for %u strips", f->offsets.count, nstrips);
  if (f->counts.type && f->counts.count < nstrips)
    return vg_fail(VG_ERR_FORMAT, "tiff: %u strip byte counts for %u strips", f->counts.count, nstrips);
  for (uint32_t s = 0; s < nstrips; s++) {
    uint32_t rows = s == nstrips - 1 ? f->h - s * rps : rps;
    size_t need = rowbytes * rows;            /* <= the image size: no overflow */
    uint32_t off = array_get(t, &f->offsets, s);
    if (f->counts.type && array_get(t, &f->counts, s) < need)
      return vg_fail(VG_ERR_FORMAT, "tiff: strip %u holds %u bytes, needs %zu", s, array_get(t, &f->counts, s), need);
    if (off > t->n || t->n - off < need) return vg_fail(VG_ERR_FORMAT, "tiff: strip %u is truncated", s);
    memcpy(dst + (size_t)s * rps * rowbytes, t->buf + off, need);
  }
  return VG_OK;
}

static vg_status open_tiff(const uint8_t *buf, size_t n, tiff_file *t) {
  t->buf = buf;
  t->n = n;
  if (n >= 4 && buf[0] == 'I' && buf[1] == 'I') t->be = 0;
  else if (n >= 4 && buf[0] == 'M' && buf[1] == 'M') t->be = 1;
  else return vg_fail(VG_ERR_FORMAT, "tiff: bad byte-order mark (not II or MM)");
  return VG_OK;
}

vg_status vg_tiff_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *limp) {
  memset(out, 0, sizeof *out);
  vg_image_limits lim = vg_image_limits_resolve(limp);
  tiff_file t;
  tiff_info f;
  vg_status st;
  if ((st = open_tiff(buf, n, &t)) != VG_OK || (st = parse(&t, &f)) != VG_OK) return st;
  if (f.sampleformat == 3)
    return vg_fail(VG_ERR_UNSUPPORTED, "tiff: floating-point samples: read them with vg_tiff_read_f32");
  if (f.sampleformat != 1 || (f.bps != 8 && f.bps != 16))
    return vg_fail(VG_ERR_UNSUPPORTED, "tiff: %u-bit samples of format %u are not supported (8/16-bit unsigned only)",
                   f.bps, f.sampleformat);
  uint32_t ph = f.has_photometric ? f.photometric : (f.spp >= 3 ? 2 : 1);
  if (!((ph <= 1 && f.spp <= 2) || (ph == 2 && f.spp >= 3)))
    return vg_fail(VG_ERR_UNSUPPORTED, "tiff: photometric %u with %u samples is not supported", ph, f.spp);
  size_t bytes;
  int bps = (int)f.bps / 8;
  if ((st = vg_image_check_size("tiff", f.w, f.h, (int)f.spp, bps, &lim, &bytes)) != VG_OK) return st;
  out->data = malloc(bytes);
  if (!out->data) return vg_fail(VG_ERR_NOMEM, "tiff: out of memory (%zu bytes)", bytes);
  out->w = (int)f.w;
  out->h = (int)f.h;
  out->c = (int)f.spp;
  out->depth = (int)f.bps;
  if ((st = read_strips(&t, &f, bytes / f.h, out->data)) != VG_OK) { vg_image_free(out); return st; }
  size_t count = bytes / (size_t)bps;
  if (bps == 2) {                          /* file order -> native uint16 */
    uint8_t *b = out->data;
    uint16_t *s = out->data;
    for (size_t i = 0; i < count; i++) s[i] = (uint16_t)(t.be ? b[2 * i] << 8 | b[2 * i + 1] : b[2 * i] | b[2 * i + 1] << 8);
  }
  if (ph == 0) {                           /* WhiteIsZero: invert the grey sample, not alpha */
    for (size_t i = 0; i < count; i += f.spp) {
      if (bps == 1) ((uint8_t *)out->data)[i] = (uint8_t)(255 - ((uint8_t *)out->data)[i]);
      else ((uint16_t *)out->data)[i] = (uint16_t)(65535 - ((uint16_t *)out->data)[i]);
    }
  }
  return VG_OK;
}

vg_status vg_tiff_decode_f32(const uint8_t *buf, size_t n, float **data, int *w, int *h,
                             const vg_image_limits *limp) {
  *data = NULL;
  *w = *h = 0;
  vg_image_limits lim = vg_image_limits_resolve(limp);
  tiff_file t;
  tiff_info f;
  vg_status st;
  if ((st = open_tiff(buf, n, &t)) != VG_OK || (st = parse(&t, &f)) != VG_OK) return st;
  if (f.sampleformat != 3 || f.bps != 32 || f.spp != 1)
    return vg_fail(VG_ERR_UNSUPPORTED, "tiff: want 32-bit float, 1 sample per pixel; file has %u-bit format %u, %u samples",
                   f.bps, f.sampleformat, f.spp);
  size_t bytes;
  if ((st = vg_image_check_size("tiff", f.w, f.h, 1, 4, &lim, &bytes)) != VG_OK) return st;
  uint8_t *raw = malloc(bytes);
  if (!raw) return vg_fail(VG_ERR_NOMEM, "tiff: out of memory (%zu bytes)", bytes);
  if ((st = read_strips(&t, &f, (size_t)f.w * 4, raw)) != VG_OK) { free(raw); return st; }
  float *fl = (float *)(void *)raw;        /* malloc'd: aligned for float */
  for (size_t i = 0; i < bytes / 4; i++) {
    uint32_t u = t.be ? vg_be32(raw + 4 * i) : vg_le32(raw + 4 * i);
    memcpy(&fl[i], &u, 4);
  }
  *data = fl;
  *w = (int)f.w;
  *h = (int)f.h;
  return VG_OK;
}

vg_status vg_tiff_read_f32(const char *path, float **data, int *w, int *h) {
  uint8_t *buf;
  size_t n;
  *data = NULL;
  *w = *h = 0;
  vg_status st = vg_image_read_file(path, &buf, &n, 2 * VG_IMAGE_MAX_BYTES);
  if (st != VG_OK) return st;
  st = vg_tiff_decode_f32(buf, n, data, w, h, NULL);
  free(buf);
  if (st != VG_OK) vg_fail_prefix("%s", path);
  return st;
}

/* ---------------------------------------------------------------- writer */

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

vg_status vg_tiff_encode_f32(const float *data, int w, int h, uint8_t **out, size_t *out_n) {
  *out = NULL;
  *out_n = 0;
  if (!data || w <= 0 || h <= 0) return vg_fail(VG_ERR_ARG, "tiff encode: need data and w, h > 0 (got %dx%d)", w, h);
  enum { NENT = 11, DATA_OFF = 152 };      /* 8 header + 2 + 11*12 + 4 = 146, padded to 8 */
  size_t bytes, total;
  if (!vg_mul_ok((size_t)w, (size_t)h, &bytes) || !vg_mul_ok(bytes, 4, &bytes) ||
      !vg_add_ok(bytes, DATA_OFF, &total) || total > 0xFFFFFFFFu)
    return vg_fail(VG_ERR_LIMIT, "tiff encode: %dx%d floats do not fit a classic TIFF", w, h);
  uint8_t *o = calloc(total, 1);
  if (!o) return vg_fail(VG_ERR_NOMEM, "tiff encode: out of memory");
  memcpy(o, "II", 2);
  put16(o + 2, 42);
  put32(o + 4, 8);
  put16(o + 8, NENT);
  static const uint16_t tags[NENT][2] = {   /* tag, type; sorted by tag as TIFF requires */
    {T_WIDTH, TY_LONG}, {T_HEIGHT, TY_LONG}, {T_BPS, TY_SHORT}, {T_COMPRESSION, TY_SHORT},
    {T_PHOTOMETRIC, TY_SHORT}, {T_STRIPOFFSETS, TY_LONG}, {T_SPP, TY_SHORT}, {T_ROWSPERSTRIP, TY_LONG},
    {T_STRIPBYTECOUNTS, TY_LONG}, {T_PLANAR, TY_SHORT}, {T_SAMPLEFORMAT, TY_SHORT}};
  const uint32_t vals[NENT] = {(uint32_t)w, (uint32_t)h, 32, 1, 1, DATA_OFF, 1, (uint32_t)h, (uint32_t)bytes, 1, 3};
  for (int i = 0; i < NENT; i++) {
    uint8_t *e = o + 10 + 12 * i;
    put16(e, tags[i][0]);
    put16(e + 2, tags[i][1]);
    put32(e + 4, 1);
    if (tags[i][1] == TY_SHORT) put16(e + 8, vals[i]);
    else put32(e + 8, vals[i]);
  }
  put32(o + 10 + 12 * NENT, 0);            /* no next IFD */
  for (size_t i = 0; i < bytes / 4; i++) {
    uint32_t u;
    memcpy(&u, &data[i], 4);
    put32(o + DATA_OFF + 4 * i, u);
  }
  *out = o;
  *out_n = total;
  return VG_OK;
}

vg_status vg_tiff_write_f32(const char *path, const float *data, int w, int h) {
  uint8_t *buf;
  size_t n;
  vg_status st = vg_tiff_encode_f32(data, w, h, &buf, &n);
  if (st != VG_OK) return vg_fail_prefix("%s", path);
  st = vg_image_write_file(path, buf, n);
  free(buf);
  return st;
}
