/* png.c — PNG decoder (all colour types and bit depths, palette + tRNS, Adam7) and an
 * encoder for 8/16-bit grey, grey+alpha, RGB and RGBA.
 *
 * Decoding runs in three steps:
 *   1. walk the chunks: check CRCs, lengths and the critical-chunk order, remember
 *      IHDR/PLTE/tRNS and gather the IDAT payloads into one buffer;
 *   2. inflate into a buffer of exactly the size the header implies (each Adam7 pass is
 *      rows * (1 filter byte + row bytes)); more or less data is an error;
 *   3. undo the filters pass by pass and expand each pass's pixels into the output.
 * Output samples: depth 8 for files of bit depth <= 8 (grey of 1/2/4 bits scaled by
 * 255 / (2^bits - 1), as libpng and Pillow do), depth 16 (native endian) for 16-bit files. */
#include "datasets/image/internal.h"
#include <string.h>

static const uint8_t png_sig[8] = {137, 'P', 'N', 'G', 13, 10, 26, 10};

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Adam7 passes: first column, first row, column step, row step. Pass 0 of a
 * non-interlaced image is the whole image (step 1). */
static const int adam7[7][4] = {
  {0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

typedef struct {
  uint32_t w, h;
  int depth, ctype, interlace;
  int spp;               /* samples per pixel in the file: 1, 2, 3, 4 */
  uint8_t plte[256 * 3];
  int nplte;             /* palette entries, 0 = no PLTE */
  uint8_t trns_alpha[256];
  int ntrns;             /* palette alphas given by tRNS (colour type 3) */
  int has_trns;
  uint16_t trns_key[4];  /* grey or RGB key (colour types 0 and 2); [3] unused padding */
} png_info;

static int samples_per_pixel(int ctype) {
  switch (ctype) {
    case 0: return 1;
    case 2: return 3;
    case 3: return 1;
    case 4: return 2;
    case 6: return 4;
    default: return 0;
  }
}

static vg_status parse_ihdr(png_info *p, const uint8_t *d, uint32_t len, const vg_image_limits *lim) {
  if (len != 13) return vg_fail(VG_ERR_FORMAT, "png: IHDR length is %u, not 13", len);
  p->w = vg_be32(d);
  p->h = vg_be32(d + 4);
  p->depth = d[8];
  p->ctype = d[9];
  p->interlace = d[12];
  if (p->w == 0 || p->h == 0 || p->w > 0x7FFFFFFFu || p->h > 0x7FFFFFFFu)
    return vg_fail(VG_ERR_FORMAT, "png: invalid image size %ux%u", p->w, p->h);
  p->spp = samples_per_pixel(p->ctype);
  if (p->spp == 0) return vg_fail(VG_ERR_FORMAT, "png: invalid colour type %d", p->ctype);
  int dd = p->depth, ok;
  switch (p->ctype) {
    case 0: ok = dd == 1 || dd == 2 || dd == 4 || dd == 8 || dd == 16; break;
    case 3: ok = dd == 1 || dd == 2 || dd == 4 || dd == 8; break;
    default: ok = dd == 8 || dd == 16; break;
  }
  if (!ok) return vg_fail(VG_ERR_FORMAT, "png: invalid bit depth %d for colour type %d", dd, p->ctype);
  if (d[10] != 0) return vg_fail(VG_ERR_FORMAT, "png: unknown compression method %d", d[10]);
  if (d[11] != 0) return vg_fail(VG_ERR_FORMAT, "png: unknown filter method %d", d[11]);
  if (p->interlace > 1) return vg_fail(VG_ERR_FORMAT, "png: unknown interlace method %d", p->interlace);
  if (p->w > (uint32_t)lim->max_side || p->h > (uint32_t)lim->max_side)
    return vg_fail(VG_ERR_LIMIT, "png: image %ux%u exceeds the side limit %d", p->w, p->h, lim->max_side);
  return VG_OK;
}

static vg_status parse_trns(png_info *p, const uint8_t *d, uint32_t len) {
  if (p->ctype == 3) {
    if (p->nplte == 0) return vg_fail(VG_ERR_FORMAT, "png: tRNS before PLTE");
    if (len > (uint32_t)p->nplte)
      return vg_fail(VG_ERR_FORMAT, "png: tRNS has %u entries, palette only %d", len, p->nplte);
    memcpy(p->trns_alpha, d, len);
    p->ntrns = (int)len;
  } else if (p->ctype == 0) {
    if (len != 2) return vg_fail(VG_ERR_FORMAT, "png: grey tRNS length %u, not 2", len);
    p->trns_key[0] = (uint16_t)(d[0] << 8 | d[1]);
  } else if (p->ctype == 2) {
    if (len != 6) return vg_fail(VG_ERR_FORMAT, "png: RGB tRNS length %u, not 6", len);
    for (int i = 0; i < 3; i++) p->trns_key[i] = (uint16_t)(d[2 * i] << 8 | d[2 * i + 1]);
  } else {
    return vg_fail(VG_ERR_FORMAT, "png: tRNS not allowed for colour type %d (has alpha)", p->ctype);
  }
  p->has_trns = 1;
  return VG_OK;
}

/* ---------------------------------------------------------------- filters */

/* Paeth predictor: whichever of a (left), b (up), c (up-left) is closest to a + b - c,
 * ties in that order. With p = a + b - c: |p - a| = |b - c|, |p - b| = |a - c|,
 * |p - c| = |a + b - 2c|; written so compilers emit conditional moves. */
static inline int paeth(int a, int b, int c) {
  int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
  int bc = pb <= pc ? b : c;
  return (pa <= pb && pa <= pc) ? a : bc;
}

/* Undoes one row's filter in place. prev = previous row (unfiltered) or NULL for the
 * first row of a pass, where the row above reads as zeros. The first bpp bytes have no
 * left neighbour (a = c = 0), so each loop handles them separately, branch-free after. */
static vg_status unfilter_row(int ftype, uint8_t *row, const uint8_t *prev, size_t n, size_t bpp) {
  size_t first = bpp < n ? bpp : n;
  switch (ftype) {
    case 0: break;
    case 1:
      for (size_t i = bpp; i < n; i++) row[i] = (uint8_t)(row[i] + row[i - bpp]);
      break;
    case 2:
      if (prev) for (size_t i = 0; i < n; i++) row[i] = (uint8_t)(row[i] + prev[i]);
      break;
    case 3:
      if (prev) {
        for (size_t i = 0; i < first; i++) row[i] = (uint8_t)(row[i] + (prev[i] >> 1));
        for (size_t i = bpp; i < n; i++) row[i] = (uint8_t)(row[i] + ((row[i - bpp] + prev[i]) >> 1));
      } else {
        for (size_t i = bpp; i < n; i++) row[i] = (uint8_t)(row[i] + (row[i - bpp] >> 1));
      }
      break;
    case 4:
      if (prev) {   /* paeth(0, b, 0) = b for the first pixel */
        for (size_t i = 0; i < first; i++) row[i] = (uint8_t)(row[i] + prev[i]);
        for (size_t i = bpp; i < n; i++) row[i] = (uint8_t)(row[i] + paeth(row[i - bpp], prev[i], prev[i - bpp]));
      } else {      /* paeth(a, 0, 0) = a: the same as Sub */
        for (size_t i = bpp; i < n; i++) row[i] = (uint8_t)(row[i] + row[i - bpp]);
      }
      break;
    default:
      return vg_fail(VG_ERR_FORMAT, "png: invalid filter type %d", ftype);
  }
  return VG_OK;
}

/* ---------------------------------------------------------------- pixel expansion */

/* Sample k of a row (sample index, not pixel index), as the raw integer from the file. */
static unsigned get_sample(const uint8_t *row, size_t k, int depth) {
  switch (depth) {
    case 8: return row[k];
    case 16: return (unsigned)row[2 * k] << 8 | row[2 * k + 1];
    default: {
      size_t bit = k * (size_t)depth;
      int shift = 8 - depth - (int)(bit & 7);
      return (row[bit >> 3] >> shift) & ((1u << depth) - 1);
    }
  }
}

/* Writes the pixels of one unfiltered pass row into the output image at row y, columns
 * x0, x0 + dx, ... (count pixels). out_c: channels of the output. */
static vg_status expand_row(const png_info *p, const uint8_t *row, uint32_t count, vg_image *img,
                            size_t y, size_t x0, size_t dx) {
  int oc = img->c;
  size_t stride = (size_t)p->w * (size_t)oc;
  if (p->depth == 16) {
    uint16_t *o = (uint16_t *)img->data + y * stride;
    for (uint32_t i = 0; i < count; i++) {
      uint16_t *px = o + (x0 + i * dx) * (size_t)oc;
      for (int s = 0; s < p->spp; s++) px[s] = (uint16_t)get_sample(row, (size_t)i * p->spp + s, 16);
      if (p->has_trns) {   /* grey or RGB key: alpha is 0 where the pixel equals the key */
        int match = 1;
        for (int s = 0; s < p->spp; s++) match &= px[s] == p->trns_key[s];
        px[p->spp] = match ? 0 : 0xFFFF;
      }
    }
    return VG_OK;
  }
  uint8_t *o = (uint8_t *)img->data + y * stride;
  if (p->ctype == 3) {
    for (uint32_t i = 0; i < count; i++) {
      unsigned idx = get_sample(row, i, p->depth);
      if (idx >= (unsigned)p->nplte)
        return vg_fail(VG_ERR_FORMAT, "png: palette index %u out of range (PLTE has %d entries)", idx,
                       p->nplte);
      uint8_t *px = o + (x0 + i * dx) * (size_t)oc;
      memcpy(px, p->plte + 3 * idx, 3);
      if (oc == 4) px[3] = (int)idx < p->ntrns ? p->trns_alpha[idx] : 255;
    }
    return VG_OK;
  }
  if (p->depth == 8 && !p->has_trns && dx == 1) {   /* fast path: bytes as they are */
    memcpy(o + x0 * (size_t)oc, row, (size_t)count * (size_t)oc);
    return VG_OK;
  }
  unsigned scale = 255u / ((1u << p->depth) - 1);   /* 255, 85, 17, 1 for 1, 2, 4, 8 bits */
  for (uint32_t i = 0; i < count; i++) {
    uint8_t *px = o + (x0 + i * dx) * (size_t)oc;
    int match = 1;
    for (int s = 0; s < p->spp; s++) {
      unsigned v = get_sample(row, (size_t)i * p->spp + s, p->depth);
      match &= p->has_trns && v == p->trns_key[s];   /* has_trns only for spp 1 and 3 */
      px[s] = (uint8_t)(v * scale);
    }
    if (p->has_trns) px[p->spp] = match ? 0 : 255;
  }
  return VG_OK;
}

/* Sizes of one pass: pixel columns, rows, bytes per row (without the filter byte). */
static void pass_size(const png_info *p, int pass, uint32_t *pw, uint32_t *ph, size_t *rowbytes) {
  if (!p->interlace) {
    *pw = p->w;
    *ph = p->h;
  } else {
    const int *a = adam7[pass];
    *pw = p->w > (uint32_t)a[0] ? (p->w - a[0] + a[2] - 1) / a[2] : 0;
    *ph = p->h > (uint32_t)a[1] ? (p->h - a[1] + a[3] - 1) / a[3] : 0;
  }
  /* bits per row <= 2^31 * 4 * 16: fits 64 bits; callers check size_t totals. */
  uint64_t bits = (uint64_t)*pw * (uint64_t)p->spp * (uint64_t)p->depth;
  *rowbytes = (size_t)((bits + 7) / 8);
}

/* ---------------------------------------------------------------- decoder */

static int is_letter(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

#define CHUNK(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

vg_status vg_png_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *limp) {
  memset(out, 0, sizeof *out);
  vg_image_limits lim = vg_image_limits_resolve(limp);
  if (n < 8 || memcmp(buf, png_sig, 8) != 0)
    return vg_fail(VG_ERR_FORMAT, "png: bad signature (not a PNG file, or mangled by a text-mode transfer)");
  png_info p;
  memset(&p, 0, sizeof p);
  uint8_t *idat = NULL;
  size_t idat_n = 0, idat_cap = 0;
  uint8_t *raw = NULL;
  int seen_ihdr = 0, seen_iend = 0, idat_state = 0; /* 0 none yet, 1 in IDAT run, 2 after it */
  vg_status st = VG_OK;
  size_t pos = 8;

  while (!seen_iend) {
    if (n - pos < 12) {
      st = vg_fail(VG_ERR_FORMAT, "png: truncated file (chunk header at byte %zu)%s", pos,
                   pos == n ? ", no IEND chunk" : "");
      goto fail;
    }
    uint32_t len = vg_be32(buf + pos);
    const uint8_t *type = buf + pos + 4;
    char name[5] = {(char)type[0], (char)type[1], (char)type[2], (char)type[3], 0};
    for (int i = 0; i < 4; i++) {
      if (!is_letter(type[i])) {
        for (int k = 0; k < 4; k++) name[k] = is_letter(type[k]) ? (char)type[k] : '?';
        st = vg_fail(VG_ERR_FORMAT, "png: invalid chunk type \"%s\" at byte %zu", name, pos);
        goto fail;
      }
    }
    if (len > 0x7FFFFFFFu) {
      st = vg_fail(VG_ERR_FORMAT, "png: chunk %s length %u exceeds 2^31-1", name, len);
      goto fail;
    }
    if (len > lim.max_chunk) {
      st = vg_fail(VG_ERR_LIMIT, "png: chunk %s length %u exceeds the limit %zu", name, len, lim.max_chunk);
      goto fail;
    }
    if (n - pos - 12 < len) {
      st = vg_fail(VG_ERR_FORMAT, "png: truncated file (chunk %s needs %u bytes, %zu left)", name, len,
                   n - pos - 12);
      goto fail;
    }
    const uint8_t *data = buf + pos + 8;
    uint32_t want_crc = vg_be32(data + len), got_crc = vg_crc32(0, type, 4 + (size_t)len);
    if (want_crc != got_crc) {
      st = vg_fail(VG_ERR_FORMAT, "png: CRC mismatch in chunk %s (stored %08x, computed %08x)", name,
                   want_crc, got_crc);
      goto fail;
    }
    pos += 12 + (size_t)len;
    uint32_t id = CHUNK(type[0], type[1], type[2], type[3]);

    if (id == CHUNK('C', 'g', 'B', 'I')) {
      st = vg_fail(VG_ERR_UNSUPPORTED, "png: Apple CgBI PNG (iPhone-optimised: BGRA, premultiplied, "
                   "raw deflate) is not a standard PNG and is not supported");
      goto fail;
    }
    if (!seen_ihdr && id != CHUNK('I', 'H', 'D', 'R')) {
      st = vg_fail(VG_ERR_FORMAT, "png: first chunk is %s, IHDR must come first", name);
      goto fail;
    }
    if (idat_state == 1 && id != CHUNK('I', 'D', 'A', 'T')) idat_state = 2;

    if (id == CHUNK('I', 'H', 'D', 'R')) {
      if (seen_ihdr) { st = vg_fail(VG_ERR_FORMAT, "png: more than one IHDR"); goto fail; }
      if ((st = parse_ihdr(&p, data, len, &lim)) != VG_OK) goto fail;
      seen_ihdr = 1;
    } else if (id == CHUNK('P', 'L', 'T', 'E')) {
      if (p.nplte) { st = vg_fail(VG_ERR_FORMAT, "png: more than one PLTE"); goto fail; }
      if (idat_state) { st = vg_fail(VG_ERR_FORMAT, "png: PLTE after IDAT"); goto fail; }
      if (p.has_trns) { st = vg_fail(VG_ERR_FORMAT, "png: PLTE after tRNS"); goto fail; }
      if (p.ctype == 0 || p.ctype == 4) {
        st = vg_fail(VG_ERR_FORMAT, "png: PLTE not allowed for grey colour type %d", p.ctype);
        goto fail;
      }
      if (len == 0 || len % 3 != 0 || len > 768) {
        st = vg_fail(VG_ERR_FORMAT, "png: PLTE length %u is not 3..768 and a multiple of 3", len);
        goto fail;
      }
      if (p.ctype == 3 && len / 3 > (1u << p.depth)) {
        st = vg_fail(VG_ERR_FORMAT, "png: PLTE has %u entries, too many for bit depth %d", len / 3, p.depth);
        goto fail;
      }
      memcpy(p.plte, data, len);
      p.nplte = (int)(len / 3);
    } else if (id == CHUNK('t', 'R', 'N', 'S')) {
      if (idat_state) { st = vg_fail(VG_ERR_FORMAT, "png: tRNS after IDAT"); goto fail; }
      if (p.has_trns) { st = vg_fail(VG_ERR_FORMAT, "png: more than one tRNS"); goto fail; }
      if ((st = parse_trns(&p, data, len)) != VG_OK) goto fail;
    } else if (id == CHUNK('I', 'D', 'A', 'T')) {
      if (idat_state == 2) { st = vg_fail(VG_ERR_FORMAT, "png: IDAT chunks are not consecutive"); goto fail; }
      if (p.ctype == 3 && p.nplte == 0) {
        st = vg_fail(VG_ERR_FORMAT, "png: palette image has no PLTE before IDAT");
        goto fail;
      }
      idat_state = 1;
      if (len > idat_cap - idat_n) {   /* grow: the total is bounded by the file size n */
        size_t need = idat_n + len, cap = idat_cap ? idat_cap : 65536;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *nb = realloc(idat, cap);
        if (!nb) { st = vg_fail(VG_ERR_NOMEM, "png: out of memory for IDAT data"); goto fail; }
        idat = nb;
        idat_cap = cap;
      }
      if (len) memcpy(idat + idat_n, data, len);
      idat_n += len;
    } else if (id == CHUNK('I', 'E', 'N', 'D')) {
      if (len != 0) { st = vg_fail(VG_ERR_FORMAT, "png: IEND has length %u, not 0", len); goto fail; }
      seen_iend = 1;
    } else if (!(type[0] & 0x20)) {     /* lowercase bit clear = critical */
      st = vg_fail(VG_ERR_UNSUPPORTED, "png: unknown critical chunk %s", name);
      goto fail;
    }
    /* Known and unknown ancillary chunks (gAMA, tEXt, ...) are skipped. */
  }
  if (idat_state == 0) { st = vg_fail(VG_ERR_FORMAT, "png: no IDAT chunk"); goto fail; }

  /* Output layout and limits, before any image-sized allocation. */
  int oc = p.ctype == 3 ? 3 : p.spp;
  if (p.has_trns) oc++;
  int obytes = p.depth == 16 ? 2 : 1;
  size_t out_bytes, raw_bytes = 0;
  if (!vg_mul_ok((size_t)p.w, (size_t)p.h, &out_bytes) || !vg_mul_ok(out_bytes, (size_t)oc * obytes, &out_bytes) ||
      out_bytes > lim.max_bytes) {
    st = vg_fail(VG_ERR_LIMIT, "png: decoded image %ux%ux%d (%d-bit) exceeds the limit of %zu bytes", p.w, p.h,
                 oc, 8 * obytes, lim.max_bytes);
    goto fail;
  }
  int npass = p.interlace ? 7 : 1;
  for (int ps = 0; ps < npass; ps++) {
    uint32_t pw, ph;
    size_t rb, t;
    pass_size(&p, ps, &pw, &ph, &rb);
    if (pw == 0 || ph == 0) continue;
    if (!vg_add_ok(rb, 1, &t) || !vg_mul_ok(t, ph, &t) || !vg_add_ok(raw_bytes, t, &raw_bytes)) {
      st = vg_fail(VG_ERR_LIMIT, "png: filtered data size overflows");
      goto fail;
    }
  }
  /* raw_bytes <= 8 * out_bytes (worst case: 1-pixel-wide interlaced rows), so the
   * limit on out_bytes bounds both allocations. */
  raw = malloc(raw_bytes);
  out->data = malloc(out_bytes);
  if (!raw || !out->data) { st = vg_fail(VG_ERR_NOMEM, "png: out of memory (%zu bytes)", out_bytes); goto fail; }
  if ((st = vg_zlib_inflate(idat, idat_n, raw, raw_bytes)) != VG_OK) {
    vg_fail_prefix("png: image data (IDAT)");
    goto fail;
  }
  free(idat);
  idat = NULL;
  out->w = (int)p.w;
  out->h = (int)p.h;
  out->c = oc;
  out->depth = 8 * obytes;
  size_t bpp = ((size_t)p.spp * p.depth + 7) / 8;   /* filter byte distance, >= 1 */
  uint8_t *r = raw;
  for (int ps = 0; ps < npass; ps++) {
    uint32_t pw, ph;
    size_t rb;
    pass_size(&p, ps, &pw, &ph, &rb);
    if (pw == 0 || ph == 0) continue;
    const uint8_t *prev = NULL;
    for (uint32_t y = 0; y < ph; y++) {
      uint8_t *row = r + 1;
      if ((st = unfilter_row(r[0], row, prev, rb, bpp)) != VG_OK) goto fail;
      size_t oy = p.interlace ? adam7[ps][1] + (size_t)y * adam7[ps][3] : y;
      size_t ox = p.interlace ? (size_t)adam7[ps][0] : 0, dx = p.interlace ? (size_t)adam7[ps][2] : 1;
      if ((st = expand_row(&p, row, pw, out, oy, ox, dx)) != VG_OK) goto fail;
      prev = row;
      r += rb + 1;
    }
  }
  free(raw);
  return VG_OK;

fail:
  free(idat);
  free(raw);
  free(out->data);
  memset(out, 0, sizeof *out);
  return st;
}

/* ---------------------------------------------------------------- encoder */

/* Appends one chunk (length, type, data, CRC) at *pos of dst. */
static void put_chunk(uint8_t *dst, size_t *pos, const char *type, const uint8_t *data, uint32_t len) {
  uint8_t *c = dst + *pos;
  put_be32(c, len);
  memcpy(c + 4, type, 4);
  if (len) memcpy(c + 8, data, len);
  put_be32(c + 8 + len, vg_crc32(0, c + 4, 4 + (size_t)len));
  *pos += 12 + (size_t)len;
}

/* Filters one row with filter type f into dst (rb bytes); prev is NULL for the first row
 * (reads as zeros). One loop per type, without per-byte branches (a 16384-wide image
 * tries 5 filters on each of its rows). */
static void filter_row(int f, uint8_t *dst, const uint8_t *row, const uint8_t *prev, size_t rb, size_t bpp) {
  size_t i = 0, lead = bpp < rb ? bpp : rb;
  if (f == 0 || (f == 2 && !prev)) { memcpy(dst, row, rb); return; }
  if (f == 1 || (f == 4 && !prev)) {  /* Paeth with a zero row above is Sub */
    memcpy(dst, row, lead);
    for (i = lead; i < rb; i++) dst[i] = (uint8_t)(row[i] - row[i - bpp]);
    return;
  }
  if (f == 2) {
    for (; i < rb; i++) dst[i] = (uint8_t)(row[i] - prev[i]);
    return;
  }
  if (f == 3) {
    if (!prev) {
      memcpy(dst, row, lead);
      for (i = lead; i < rb; i++) dst[i] = (uint8_t)(row[i] - (row[i - bpp] >> 1));
    } else {
      for (; i < lead; i++) dst[i] = (uint8_t)(row[i] - (prev[i] >> 1));
      for (; i < rb; i++) dst[i] = (uint8_t)(row[i] - ((row[i - bpp] + prev[i]) >> 1));
    }
    return;
  }
  for (; i < lead; i++) dst[i] = (uint8_t)(row[i] - paeth(0, prev[i], 0));
  for (; i < rb; i++) dst[i] = (uint8_t)(row[i] - paeth(row[i - bpp], prev[i], prev[i - bpp]));
}

#define VG_IDAT_CHUNK ((size_t)1 << 20)   /* IDAT payload per chunk when writing */

vg_status vg_png_encode(const vg_image *img, uint8_t **out, size_t *out_n) {
  *out = NULL;
  *out_n = 0;
  if (!img || !img->data || img->w <= 0 || img->h <= 0 || img->c < 1 || img->c > 4 ||
      (img->depth != 8 && img->depth != 16))
    return vg_fail(VG_ERR_ARG, "png encode: need w, h > 0, c in 1..4, depth 8 or 16 (got %dx%dx%d, depth %d)",
                   img ? img->w : 0, img ? img->h : 0, img ? img->c : 0, img ? img->depth : 0);
  static const int ctype_of_c[5] = {0, 0, 4, 2, 6};
  size_t bps = (size_t)img->depth / 8, bpp = bps * (size_t)img->c, rb, raw_n;
  if (!vg_mul_ok((size_t)img->w, bpp, &rb) || !vg_mul_ok(rb + 1, (size_t)img->h, &raw_n))
    return vg_fail(VG_ERR_LIMIT, "png encode: image size overflows");
  uint8_t *raw = malloc(raw_n), *row = malloc(rb), *prevrow = malloc(rb), *trial = malloc(rb);
  vg_status st = VG_OK;
  uint8_t *z = NULL;
  size_t zn = 0;
  if (!raw || !row || !prevrow || !trial) { st = vg_fail(VG_ERR_NOMEM, "png encode: out of memory"); goto done; }
  /* Rows in PNG byte order (16-bit big-endian), each filtered with the type whose output
   * has the smallest sum of |signed bytes| (libpng's heuristic). */
  for (int y = 0; y < img->h; y++) {
    if (img->depth == 8) {
      memcpy(row, (const uint8_t *)img->data + (size_t)y * rb, rb);
    } else {
      const uint16_t *s = (const uint16_t *)img->data + (size_t)y * (rb / 2);
      for (size_t i = 0; i < rb / 2; i++) { row[2 * i] = (uint8_t)(s[i] >> 8); row[2 * i + 1] = (uint8_t)s[i]; }
    }
    uint8_t *dst = raw + (size_t)y * (rb + 1);
    const uint8_t *prev = y ? prevrow : NULL;
    uint64_t best = UINT64_MAX;
    if (prev && !memcmp(row, prev, rb)) {
      /* A row equal to the one above (the bulk of a huge image decoded from a few bytes):
       * Up gives all zeros, the least sum; None and Sub give zeros too only when the row is
       * all zeros, and None comes first. The same choice as the loop below, without 5 trials. */
      size_t nz = 0;
      while (nz < rb && !row[nz]) nz++;
      dst[0] = nz == rb ? 0 : 2;
      memset(dst + 1, 0, rb);
      continue;   /* prevrow already equals row */
    }
    for (int f = 0; f < 5; f++) {
      filter_row(f, trial, row, prev, rb, bpp);
      uint64_t sum = 0;
      for (size_t i = 0; i < rb; i++) sum += trial[i] < 128 ? trial[i] : 256 - trial[i];
      if (sum < best) { best = sum; dst[0] = (uint8_t)f; memcpy(dst + 1, trial, rb); }
    }
    memcpy(prevrow, row, rb);
  }
  if ((st = vg_zlib_deflate(raw, raw_n, &z, &zn)) != VG_OK) goto done;
  size_t nchunks = zn / VG_IDAT_CHUNK + 1, total;
  if (!vg_mul_ok(nchunks, 12, &total) || !vg_add_ok(total, zn + 8 + 25 + 12, &total)) {
    st = vg_fail(VG_ERR_LIMIT, "png encode: output size overflows");
    goto done;
  }
  uint8_t *o = malloc(total);
  if (!o) { st = vg_fail(VG_ERR_NOMEM, "png encode: out of memory"); goto done; }
  size_t pos = 8;
  memcpy(o, png_sig, 8);
  uint8_t ihdr[13];
  put_be32(ihdr, (uint32_t)img->w);
  put_be32(ihdr + 4, (uint32_t)img->h);
  ihdr[8] = (uint8_t)img->depth;
  ihdr[9] = (uint8_t)ctype_of_c[img->c];
  ihdr[10] = ihdr[11] = ihdr[12] = 0;
  put_chunk(o, &pos, "IHDR", ihdr, 13);
  for (size_t off = 0; off < zn; off += VG_IDAT_CHUNK) {
    size_t len = zn - off < VG_IDAT_CHUNK ? zn - off : VG_IDAT_CHUNK;
    put_chunk(o, &pos, "IDAT", z + off, (uint32_t)len);
  }
  put_chunk(o, &pos, "IEND", NULL, 0);
  *out = o;
  *out_n = pos;
done:
  free(raw);
  free(row);
  free(prevrow);
  free(trial);
  free(z);
  return st;
}
