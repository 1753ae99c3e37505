/* jpeg.c — JPEG decoder: markers, Huffman tables, baseline and progressive entropy
 * decoding into per-component coefficient arrays; jpeg_pixels.c turns those into pixels.
 *
 * Behaviour follows libjpeg(-turbo), which Pillow uses, so that pixels match Pillow's:
 *   - damaged entropy data: a bad Huffman code decodes as symbol 0 after 17 bits; when the
 *     data runs into a marker or the end, zero bits are fed, the MCU in progress completes,
 *     and later MCUs of that restart interval are left as they are (zero = mid-grey in a
 *     sequential file, previous scans' content in a progressive one);
 *   - restart markers out of order resynchronise as jpeg_resync_to_restart() does;
 *   - quantization tables are latched at the first scan that holds a component;
 *   - colour space: 3 components are YCbCr unless an Adobe marker says transform 0 or the
 *     ids are 'R','G','B' (and no JFIF marker); 4 components are CMYK, or YCCK when an
 *     Adobe marker has a transform other than 0.
 * Header damage (bad lengths, tables, dimensions, scan parameters) is an error.
 * Departures from libjpeg, for denial of service (jpeg.h): more than max_scans scans, a
 * scan with an empty entropy-coded segment, and decoding work past 16 coefficient visits
 * per coefficient are errors; data that end before EOI are reported (VG_IMAGE_TRUNCATED). */
#include "datasets/image/jpeg.h"
#include "datasets/image/jpeg_internal.h"
#include <stdlib.h>
#include <string.h>

/* zigzag index -> natural (row-major) position; 16 extra entries keep corrupt runs past
 * coefficient 63 inside the block, as libjpeg's table does. */
static const uint8_t natural[80] = {
  0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
  12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
  58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
  63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

enum { M_SOF0 = 0xC0, M_SOF1 = 0xC1, M_SOF2 = 0xC2, M_DHT = 0xC4, M_DAC = 0xCC, M_RST0 = 0xD0,
       M_SOI = 0xD8, M_EOI = 0xD9, M_SOS = 0xDA, M_DQT = 0xDB, M_DNL = 0xDC, M_DRI = 0xDD,
       M_APP0 = 0xE0, M_APP14 = 0xEE, M_COM = 0xFE };

typedef struct {
  int defined, nsym;
  uint8_t bits[17];      /* bits[l] = number of codes of length l */
  uint8_t vals[256];     /* symbols in code order */
  int32_t maxcode[18];   /* largest code of length l, -1 if none; [17] sentinel */
  int32_t valoff[18];    /* symbol index = code + valoff[l] */
  uint16_t look[256];    /* 8-bit lookahead: (length << 8) | symbol; length 9 = longer */
} huff;

typedef struct {
  const uint8_t *p, *end;
  uint64_t acc;          /* bits, left-aligned; the top nbits are real data */
  int nbits;
  int marker;            /* marker met while filling (p is past it), 0 = none */
  int insufficient;      /* ran out of data in this restart interval */
  int at_end;            /* marker is a fake EOI: the data ended (truncated file) */
} bitrd;

typedef struct {
  const uint8_t *buf;
  size_t n, pos;
  huff dc[4], ac[4];
  uint16_t qt[4][64];
  int qt_def[4];
  int ri;                /* restart interval in MCUs, 0 = none */
  int jfif, adobe, adobe_tf;
  int have_frame, scans_done, single_scan;
  int truncated;         /* the data ended before the EOI marker */
  int max_scans;         /* scan limit (libjpeg-turbo's -maxscans) */
  uint64_t work, budget; /* coefficient visits so far / allowed (see decode_scan) */
  vg_jpeg_frame f;
} jdec;

typedef struct {
  int ns, ss, se, ah, al;
  vg_jpeg_comp *c[4];
  int td[4], ta[4];
} jscan;

/* ---- markers ------------------------------------------------------------------------ */

/* Next marker code at or after *pos, skipping stray bytes and FF fill; -1 at end of data. */
static int find_marker(const uint8_t *buf, size_t n, size_t *pos) {
  size_t p = *pos;
  for (;;) {
    while (p < n && buf[p] != 0xFF) p++;
    while (p < n && buf[p] == 0xFF) p++;
    if (p >= n) { *pos = n; return -1; }
    int c = buf[p++];
    if (c != 0) { *pos = p; return c; }
  }
}

static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

/* ---- Huffman tables ----------------------------------------------------------------- */

/* Canonical codes from the counts (JPEG Annex C), the way jpeg_make_d_derived_tbl does,
 * with its check that no code is all ones and the counts fit the code space. */
static int huff_build(huff *h) {
  uint16_t code[256];
  int p = 0, c = 0, last = 0;
  for (int l = 1; l <= 16; l++)
    if (h->bits[l]) last = l;
  for (int l = 1; l <= last; l++) {
    for (int i = 0; i < h->bits[l]; i++) code[p++] = (uint16_t)c++;
    if (c >= (1 << l)) return 0;  /* more codes than fit, or the all-ones code used */
    c <<= 1;
  }
  p = 0;
  for (int l = 1; l <= 16; l++) {
    if (h->bits[l]) {
      h->valoff[l] = p - code[p];
      p += h->bits[l];
      h->maxcode[l] = code[p - 1];
    } else {
      h->maxcode[l] = -1;
    }
  }
  h->valoff[17] = 0;
  h->maxcode[17] = 0xFFFFF;
  for (int i = 0; i < 256; i++) h->look[i] = 9 << 8;
  p = 0;
  for (int l = 1; l <= 8; l++)
    for (int i = 0; i < h->bits[l]; i++, p++) {
      int first = code[p] << (8 - l);
      for (int k = 0; k < (1 << (8 - l)); k++) h->look[first + k] = (uint16_t)(l << 8 | h->vals[p]);
    }
  return 1;
}

/* ---- bit reader --------------------------------------------------------------------- */

static void br_fill(bitrd *b) {
  while (b->nbits <= 56 && !b->marker) {
    if (b->p >= b->end) { b->marker = M_EOI; b->at_end = 1; break; }  /* end of data: a fake EOI */
    unsigned c = *b->p++;
    if (c == 0xFF) {
      while (b->p < b->end && *b->p == 0xFF) b->p++;
      if (b->p >= b->end) { b->marker = M_EOI; b->at_end = 1; break; }
      c = *b->p++;
      if (c != 0) { b->marker = (int)c; break; }
      c = 0xFF;  /* FF 00 = a data FF */
    }
    b->acc |= (uint64_t)c << (56 - b->nbits);
    b->nbits += 8;
  }
}

/* Consuming past the real data sets `insufficient`; the missing bits read as zeros. */
static inline void br_skip(bitrd *b, int n) {
  if (n > b->nbits) { b->insufficient = 1; b->acc = 0; b->nbits = 0; return; }
  b->acc <<= n;
  b->nbits -= n;
}

static inline int br_bits(bitrd *b, int n) {  /* 1 <= n <= 16 */
  if (b->nbits < n) br_fill(b);
  int v = (int)(b->acc >> (64 - n));
  br_skip(b, n);
  return v;
}

static inline int extend(int v, int s) { return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v; }

static int huff_decode(bitrd *b, const huff *h) {
  if (b->nbits < 17) br_fill(b);
  int e = h->look[b->acc >> 56];
  if ((e >> 8) <= 8) { br_skip(b, e >> 8); return e & 0xFF; }
  uint32_t top = (uint32_t)(b->acc >> (64 - 17));
  for (int l = 9; l <= 16; l++) {
    int32_t code = (int32_t)(top >> (17 - l));
    if (code <= h->maxcode[l]) { br_skip(b, l); return h->vals[(code + h->valoff[l]) & 0xFF]; }
  }
  br_skip(b, 17);  /* no such code: libjpeg warns and takes symbol 0 */
  return 0;
}

/* jpeg_resync_to_restart(): decide what to do with an unexpected marker. */
static void br_resync(bitrd *b, int want) {
  for (;;) {
    int m = b->marker, act;
    if (m < M_SOF0) act = 2;
    else if (m < M_RST0 || m > M_RST0 + 7) act = 3;
    else if (m == M_RST0 + ((want + 1) & 7) || m == M_RST0 + ((want + 2) & 7)) act = 3;
    else if (m == M_RST0 + ((want - 1) & 7) || m == M_RST0 + ((want - 2) & 7)) act = 2;
    else act = 1;
    if (act == 1) { b->marker = 0; return; }         /* drop it, go on decoding */
    if (act == 3) return;                            /* leave it; the interval is empty */
    size_t rel = 0;                                  /* act 2: skip to the next marker */
    int nm = find_marker(b->p, (size_t)(b->end - b->p), &rel);
    b->p += rel;
    b->marker = nm < 0 ? M_EOI : nm;
    if (nm < 0) b->at_end = 1;
  }
}

static void br_restart(bitrd *b, int *next_rst) {
  b->acc = 0;
  b->nbits = 0;
  if (!b->marker) {
    size_t rel = 0;
    int m = find_marker(b->p, (size_t)(b->end - b->p), &rel);
    b->p += rel;
    b->marker = m < 0 ? M_EOI : m;
    if (m < 0) b->at_end = 1;
  }
  if (b->marker == M_RST0 + *next_rst) b->marker = 0;
  else br_resync(b, *next_rst);
  *next_rst = (*next_rst + 1) & 7;
  if (!b->marker) b->insufficient = 0;
}

/* ---- segments ----------------------------------------------------------------------- */

static vg_status parse_dht(jdec *d, const uint8_t *s, size_t len) {
  while (len > 0) {
    if (len < 17) return vg_fail(VG_ERR_FORMAT, "jpeg: DHT segment length is inconsistent with its tables");
    int tc = s[0] >> 4, th = s[0] & 15;
    if (tc > 1 || th > 3) return vg_fail(VG_ERR_FORMAT, "jpeg: DHT table class/index 0x%02X is invalid", s[0]);
    huff *h = tc ? &d->ac[th] : &d->dc[th];
    int total = 0;
    memset(h, 0, sizeof *h);
    for (int l = 1; l <= 16; l++) { h->bits[l] = s[l]; total += s[l]; }
    if (total > 256 || (size_t)total > len - 17)
      return vg_fail(VG_ERR_FORMAT, "jpeg: bad Huffman table (%s %d: %d symbols, %zu bytes left)",
                     tc ? "AC" : "DC", th, total, len - 17);
    memcpy(h->vals, s + 17, (size_t)total);
    h->nsym = total;
    if (!huff_build(h))
      return vg_fail(VG_ERR_FORMAT, "jpeg: bad Huffman table (%s %d: code lengths overflow the code space)",
                     tc ? "AC" : "DC", th);
    h->defined = 1;
    s += 17 + total;
    len -= 17 + (size_t)total;
  }
  return VG_OK;
}

static vg_status parse_dqt(jdec *d, const uint8_t *s, size_t len) {
  while (len > 0) {
    int pq = s[0] >> 4, tq = s[0] & 15;
    if (tq > 3) return vg_fail(VG_ERR_FORMAT, "jpeg: DQT table index %d (must be 0..3)", tq);
    if (pq > 1) return vg_fail(VG_ERR_FORMAT, "jpeg: DQT precision %d (must be 0 or 1)", pq);
    size_t need = 1 + 64 * (size_t)(pq + 1);
    if (len < need) return vg_fail(VG_ERR_FORMAT, "jpeg: DQT segment too short for table %d", tq);
    for (int i = 0; i < 64; i++)
      d->qt[tq][natural[i]] = (uint16_t)(pq ? be16(s + 1 + 2 * i) : s[1 + i]);
    d->qt_def[tq] = 1;
    s += need;
    len -= need;
  }
  return VG_OK;
}

static vg_status parse_sof(jdec *d, int m, const uint8_t *s, size_t len, const vg_image_limits *lim) {
  vg_jpeg_frame *f = &d->f;
  if (d->have_frame) return vg_fail(VG_ERR_FORMAT, "jpeg: more than one SOF marker");
  if (len < 6) return vg_fail(VG_ERR_FORMAT, "jpeg: SOF segment too short (%zu bytes)", len);
  int prec = s[0], nc = s[5];
  unsigned H = be16(s + 1), W = be16(s + 3);
  if (prec != 8)
    return vg_fail(VG_ERR_UNSUPPORTED, "jpeg: %d-bit samples are not supported (only 8-bit)", prec);
  if (len != 6 + 3 * (size_t)nc)
    return vg_fail(VG_ERR_FORMAT, "jpeg: SOF length %zu does not match %d components", len + 2, nc);
  if (W == 0 || H == 0)
    return vg_fail(VG_ERR_FORMAT, "jpeg: image has zero width or height (%ux%u)", W, H);
  if (nc == 0) return vg_fail(VG_ERR_FORMAT, "jpeg: frame has no components");
  if (nc != 1 && nc != 3 && nc != 4)
    return vg_fail(VG_ERR_UNSUPPORTED, "jpeg: %d colour components are not supported (1, 3 or 4)", nc);
  int oc = nc == 1 ? 1 : 3;
  if ((int64_t)W > lim->max_side || (int64_t)H > lim->max_side)
    return vg_fail(VG_ERR_LIMIT, "jpeg: %ux%u image exceeds the side limit %d", W, H, lim->max_side);
  if ((uint64_t)W * H * (uint64_t)oc > (uint64_t)lim->max_bytes)
    return vg_fail(VG_ERR_LIMIT, "jpeg: %ux%u image (%d channels) exceeds the size limit %zu bytes",
                   W, H, oc, lim->max_bytes);
  f->w = (int)W; f->h = (int)H; f->ncomp = nc; f->hmax = f->vmax = 1;
  f->progressive = m == M_SOF2;
  for (int i = 0; i < nc; i++) {
    vg_jpeg_comp *c = &f->comp[i];
    const uint8_t *e = s + 6 + 3 * i;
    c->id = e[0]; c->h = e[1] >> 4; c->v = e[1] & 15; c->tq = e[2];
    if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4)
      return vg_fail(VG_ERR_FORMAT, "jpeg: component %d has bad sampling factors %dx%d", c->id, c->h, c->v);
    if (c->tq > 3)
      return vg_fail(VG_ERR_FORMAT, "jpeg: component %d uses quantization table %d (must be 0..3)", c->id, c->tq);
    if (c->h > f->hmax) f->hmax = c->h;
    if (c->v > f->vmax) f->vmax = c->v;
  }
  if (!vg_jpeg_ratios_ok(f))
    return vg_fail(VG_ERR_UNSUPPORTED, "jpeg: sampling factors with non-integer ratios are not supported");
  f->mcux = (int)((W + 8u * f->hmax - 1) / (8u * f->hmax));
  f->mcuy = (int)((H + 8u * f->vmax - 1) / (8u * f->vmax));
  uint64_t total = 0;
  for (int i = 0; i < nc; i++) {
    vg_jpeg_comp *c = &f->comp[i];
    c->dw = (int)(((uint64_t)W * c->h + f->hmax - 1) / f->hmax);
    c->dh = (int)(((uint64_t)H * c->v + f->vmax - 1) / f->vmax);
    c->wib = (c->dw + 7) / 8; c->hib = (c->dh + 7) / 8;
    c->bw = f->mcux * c->h; c->bh = f->mcuy * c->v;
    total += (uint64_t)c->bw * c->bh * 64 * sizeof(int16_t);
    for (int k = 0; k < 10; k++) c->coef_bits[k] = c->prev_coef_bits[k] = -1;
  }
  /* coefficients take ~2 bytes per sample (plus MCU padding) next to the output */
  if (total > 4 * (uint64_t)lim->max_bytes + ((uint64_t)1 << 20) || total > SIZE_MAX / 2)
    return vg_fail(VG_ERR_LIMIT, "jpeg: %ux%u image needs %llu bytes of coefficients, over the limit",
                   W, H, (unsigned long long)total);
  for (int i = 0; i < nc; i++) {
    vg_jpeg_comp *c = &f->comp[i];
    c->coef = calloc((size_t)c->bw * c->bh, 64 * sizeof(int16_t));
    if (!c->coef) return vg_fail(VG_ERR_NOMEM, "jpeg: out of memory for %ux%u coefficients", W, H);
    if (f->progressive && !(c->acnz = calloc((size_t)c->bw * c->bh, 1)))
      return vg_fail(VG_ERR_NOMEM, "jpeg: out of memory for %ux%u coefficients", W, H);
  }
  d->have_frame = 1;
  return VG_OK;
}

/* libjpeg's default_decompress_parms() guess of the coded colour space. */
static vg_jpeg_cs guess_cs(const jdec *d) {
  const vg_jpeg_frame *f = &d->f;
  if (f->ncomp == 1) return VG_JCS_GREY;
  if (f->ncomp == 3) {
    if (d->jfif) return VG_JCS_YCC;
    if (d->adobe) return d->adobe_tf == 0 ? VG_JCS_RGB : VG_JCS_YCC;
    if (f->comp[0].id == 'R' && f->comp[1].id == 'G' && f->comp[2].id == 'B') return VG_JCS_RGB;
    return VG_JCS_YCC;
  }
  if (d->adobe) return d->adobe_tf == 0 ? VG_JCS_CMYK : VG_JCS_YCCK;
  return VG_JCS_CMYK;
}

/* ---- scans -------------------------------------------------------------------------- */

static vg_status parse_sos(jdec *d, const uint8_t *s, size_t len, jscan *sc) {
  vg_jpeg_frame *f = &d->f;
  if (!d->have_frame) return vg_fail(VG_ERR_FORMAT, "jpeg: SOS marker before SOF");
  if (len < 1) return vg_fail(VG_ERR_FORMAT, "jpeg: SOS segment too short");
  int ns = s[0];
  if (ns < 1 || ns > 4 || ns > f->ncomp)
    return vg_fail(VG_ERR_FORMAT, "jpeg: SOS with %d components (frame has %d)", ns, f->ncomp);
  if (len != 4 + 2 * (size_t)ns)
    return vg_fail(VG_ERR_FORMAT, "jpeg: SOS length %zu does not match %d components", len + 2, ns);
  memset(sc, 0, sizeof *sc);
  sc->ns = ns;
  for (int i = 0; i < ns; i++) {
    int id = s[1 + 2 * i], t = s[2 + 2 * i];
    vg_jpeg_comp *c = NULL;
    for (int k = 0; k < f->ncomp && !c; k++) {
      if (f->comp[k].id != id) continue;
      c = &f->comp[k];
      for (int j = 0; j < i; j++)
        if (sc->c[j] == c) return vg_fail(VG_ERR_FORMAT, "jpeg: SOS lists component %d twice", id);
    }
    if (!c) return vg_fail(VG_ERR_FORMAT, "jpeg: SOS names unknown component %d", id);
    sc->c[i] = c;
    sc->td[i] = t >> 4;
    sc->ta[i] = t & 15;
  }
  const uint8_t *p = s + 1 + 2 * ns;
  sc->ss = p[0]; sc->se = p[1]; sc->ah = p[2] >> 4; sc->al = p[2] & 15;
  if (f->progressive) {
    int dc = sc->ss == 0, bad = 0;
    if (dc) bad = sc->se != 0;
    else bad = sc->ss > sc->se || sc->se > 63 || ns != 1;
    if (sc->ah && sc->al != sc->ah - 1) bad = 1;
    if (sc->al > 13) bad = 1;
    if (bad)
      return vg_fail(VG_ERR_FORMAT, "jpeg: bad progressive scan parameters Ss=%d Se=%d Ah=%d Al=%d",
                     sc->ss, sc->se, sc->ah, sc->al);
  }
  if (ns > 1) {
    int blocks = 0;
    for (int i = 0; i < ns; i++) blocks += sc->c[i]->h * sc->c[i]->v;
    if (blocks > 10) return vg_fail(VG_ERR_FORMAT, "jpeg: MCU of %d blocks (at most 10)", blocks);
  }
  for (int i = 0; i < ns; i++) {
    int need_dc = !f->progressive || (sc->ss == 0 && sc->ah == 0);
    int need_ac = !f->progressive || sc->ss > 0;
    if (need_dc) {
      if (sc->td[i] > 3 || !d->dc[sc->td[i]].defined)
        return vg_fail(VG_ERR_FORMAT, "jpeg: scan uses undefined DC Huffman table %d", sc->td[i]);
      const huff *h = &d->dc[sc->td[i]];
      for (int k = 0; k < h->nsym; k++)
        if (h->vals[k] > 15)
          return vg_fail(VG_ERR_FORMAT, "jpeg: bad Huffman table (DC %d has symbol %d > 15)", sc->td[i], h->vals[k]);
    }
    if (need_ac && (sc->ta[i] > 3 || !d->ac[sc->ta[i]].defined))
      return vg_fail(VG_ERR_FORMAT, "jpeg: scan uses undefined AC Huffman table %d", sc->ta[i]);
  }
  for (int i = 0; i < ns; i++) {  /* latch quantization tables (libjpeg latch_quant_tables) */
    vg_jpeg_comp *c = sc->c[i];
    if (c->q_latched) continue;
    if (!d->qt_def[c->tq])
      return vg_fail(VG_ERR_FORMAT, "jpeg: component %d uses undefined quantization table %d", c->id, c->tq);
    memcpy(c->q, d->qt[c->tq], sizeof c->q);
    c->q_latched = 1;
  }
  f->scans++;
  if (f->progressive)
    for (int i = 0; i < ns; i++) {  /* progression status, kept for coefficients 0..9 */
      vg_jpeg_comp *c = sc->c[i];
      int hi = sc->se > 9 ? 9 : sc->se;
      for (int k = sc->ss < 1 ? sc->ss : 1; k <= 9; k++)
        c->prev_coef_bits[k] = f->scans > 1 ? c->coef_bits[k] : 0;
      for (int k = sc->ss; k <= hi; k++) c->coef_bits[k] = sc->al;
    }
  return VG_OK;
}

/* One block of the scan; *pred is the component's DC predictor, *eob the EOB run. */
static vg_status decode_block(jdec *d, const jscan *sc, int i, bitrd *b, int16_t *blk, uint8_t *acnz, int *pred,
                              unsigned *eob) {
  const vg_jpeg_frame *f = &d->f;
  if (!f->progressive) {
    const huff *hd = &d->dc[sc->td[i]], *ha = &d->ac[sc->ta[i]];
    int s = huff_decode(b, hd);
    int diff = s ? extend(br_bits(b, s), s) : 0;
    *pred = (int)((unsigned)*pred + (unsigned)diff);
    blk[0] = (int16_t)*pred;
    for (int k = 1; k < 64; k++) {
      int rs = huff_decode(b, ha), r = rs >> 4;
      s = rs & 15;
      if (s) {
        k += r;
        blk[natural[k]] = (int16_t)extend(br_bits(b, s), s);
      } else {
        if (r != 15) break;
        k += 15;
      }
    }
    return VG_OK;
  }
  if (sc->ss == 0) {
    if (sc->ah == 0) {  /* DC first */
      int s = huff_decode(b, &d->dc[sc->td[i]]);
      int diff = s ? extend(br_bits(b, s), s) : 0;
      if ((*pred >= 0 && diff > INT32_MAX - *pred) || (*pred < 0 && diff < INT32_MIN - *pred))
        return vg_fail(VG_ERR_FORMAT, "jpeg: DC coefficient overflow in progressive scan");
      *pred += diff;
      blk[0] = (int16_t)(uint16_t)((unsigned)*pred << sc->al);
    } else if (br_bits(b, 1)) {  /* DC refinement: the next bit of the value */
      blk[0] = (int16_t)(blk[0] | (1 << sc->al));
    }
    return VG_OK;
  }
  const huff *ha = &d->ac[sc->ta[i]];
  if (sc->ah == 0) {  /* AC first */
    if (*eob > 0) { (*eob)--; return VG_OK; }
    for (int k = sc->ss; k <= sc->se; k++) {
      int rs = huff_decode(b, ha), r = rs >> 4, s = rs & 15;
      if (s) {
        k += r;
        blk[natural[k]] = (int16_t)(uint16_t)((unsigned)extend(br_bits(b, s), s) << sc->al);
        *acnz = 1;
      } else if (r == 15) {
        k += 15;
      } else {
        *eob = 1u << r;
        if (r) *eob += (unsigned)br_bits(b, r);
        (*eob)--;
        break;
      }
    }
    return VG_OK;
  }
  /* AC refinement (G.1.2.3): new coefficients are +-1 << Al; a correction bit follows for
   * each already-nonzero coefficient passed over. */
  int p1 = 1 << sc->al, m1 = -p1, k = sc->ss;
  if (*eob == 0) {
    for (; k <= sc->se; k++) {
      int rs = huff_decode(b, ha), r = rs >> 4, s = rs & 15;
      if (s) {
        s = br_bits(b, 1) ? p1 : m1;
      } else if (r != 15) {
        *eob = 1u << r;
        if (r) *eob += (unsigned)br_bits(b, r);
        break;
      }
      do {
        int16_t *c = &blk[natural[k]];
        if (*c != 0) {
          if (br_bits(b, 1) && (*c & p1) == 0) *c = (int16_t)(*c >= 0 ? *c + p1 : *c + m1);
        } else if (--r < 0) {
          break;
        }
        k++;
      } while (k <= sc->se);
      if (s) { blk[natural[k]] = (int16_t)s; *acnz = 1; }
    }
  }
  if (*eob > 0) {
    /* In an EOB run only nonzero coefficients take a correction bit: a block that never
     * got a nonzero AC coefficient (the common case, and the one EOB-run floods exploit)
     * is passed on its flag, without touching its coefficients. */
    if (k == sc->ss && !*acnz) { (*eob)--; return VG_OK; }
    for (; k <= sc->se; k++) {
      int16_t *c = &blk[natural[k]];
      if (*c != 0 && br_bits(b, 1) && (*c & p1) == 0) *c = (int16_t)(*c >= 0 ? *c + p1 : *c + m1);
    }
    (*eob)--;
  }
  return VG_OK;
}

static int is_rst(int m) { return m >= M_RST0 && m <= M_RST0 + 7; }

/* Decodes the entropy-coded data after an SOS header at d->pos; leaves d->pos after the
 * data and returns the marker that ended it (or -1 at end of data) in *next.
 *
 * Work is bounded by the data, not by the declared size: once the data of a restart
 * interval is used up the rest of the interval is skipped in one step, and once no
 * restart marker can follow (no restart interval, or a marker that is not RSTn stopped
 * the data) the scan ends. The blocks a scan does visit (an EOB run covers up to 32767
 * blocks with two bytes) count against d->budget, coefficients in the scan's band per
 * block, so many small scans cannot make the decoder revisit the whole image without
 * limit. */
static vg_status decode_scan(jdec *d, const jscan *sc, int *next) {
  vg_jpeg_frame *f = &d->f;
  bitrd b = {d->buf + d->pos, d->buf + d->n, 0, 0, 0, 0, 0};
  int pred[4] = {0}, next_rst = 0, togo = d->ri;
  unsigned eob = 0;
  int nx = sc->ns == 1 ? sc->c[0]->wib : f->mcux, ny = sc->ns == 1 ? sc->c[0]->hib : f->mcuy;
  int64_t total = (int64_t)nx * ny;
  uint64_t band = (uint64_t)(sc->se - sc->ss + 1);
  if (!f->progressive) band = 64;
  for (int64_t i = 0; i < total; i++) {
    int my = (int)(i / nx), mx = (int)(i % nx);
    int imcu = sc->ns == 1 ? my / sc->c[0]->v : my;
    if (!b.insufficient) f->last_good_row = imcu;
    if (d->ri) {
      if (togo == 0) {
        br_restart(&b, &next_rst);
        memset(pred, 0, sizeof pred);
        eob = 0;
        togo = d->ri;
      }
      togo--;
    }
    if (b.insufficient) {  /* out of data: leave the rest of the interval */
      if (!d->ri || (b.marker >= M_SOF0 && !is_rst(b.marker))) break;  /* nothing can resume it */
      i += togo;
      togo = 0;
      continue;
    }
    uint64_t visits = 0;
    if (f->progressive && sc->ss > 0 && sc->ah == 0 && eob > 1) {
      /* AC first scan inside an EOB run: the next blocks of the run change nothing, so
       * pass them in one step (up to the end of the restart interval or of the scan). */
      int64_t k = (int64_t)eob;
      if (k > total - i) k = total - i;
      if (d->ri && k > (int64_t)togo + 1) k = (int64_t)togo + 1;
      eob -= (unsigned)k;
      i += k - 1;
      if (d->ri) togo -= (int)(k - 1);
      f->last_good_row = (int)(i / nx) / sc->c[0]->v;  /* AC scans hold one component */
      d->work++;
      continue;
    }
    for (int ci = 0; ci < sc->ns; ci++) {
      vg_jpeg_comp *c = sc->c[ci];
      int bh = sc->ns == 1 ? 1 : c->v, bwid = sc->ns == 1 ? 1 : c->h;
      for (int by = 0; by < bh; by++)
        for (int bx = 0; bx < bwid; bx++) {
          int row = sc->ns == 1 ? my : my * c->v + by, col = sc->ns == 1 ? mx : mx * c->h + bx;
          int16_t *blk = c->coef + ((size_t)row * c->bw + col) * 64;
          int skipped = f->progressive && sc->ss > 0 && sc->ah == 0 && eob > 0;  /* O(1) */
          uint8_t dummy = 1, *nz = c->acnz ? c->acnz + (size_t)row * c->bw + col : &dummy;
          vg_status st = decode_block(d, sc, ci, &b, blk, nz, &pred[ci], &eob);
          if (st != VG_OK) return st;
          visits += skipped ? 1 : band;
        }
    }
    d->work += visits;
    if (d->work > d->budget)
      return vg_fail(VG_ERR_LIMIT, "jpeg: scan %d: decoding work exceeds the limit (%llu coefficient visits for "
                     "%dx%d pixels: too many scans revisit the image)", f->scans,
                     (unsigned long long)d->budget, f->w, f->h);
  }
  d->pos = (size_t)(b.p - d->buf);
  if (b.marker) *next = b.at_end ? -1 : b.marker;
  else *next = find_marker(d->buf, d->n, &d->pos);
  return VG_OK;
}

/* ---- driver ------------------------------------------------------------------------- */

static vg_status decode(jdec *d, vg_image *out, const vg_image_limits *lim, const vg_jpeg_options *o) {
  if (d->n < 2 || d->buf[0] != 0xFF || d->buf[1] != M_SOI)
    return vg_fail(VG_ERR_FORMAT, "jpeg: not a JPEG file (no SOI marker)");
  d->pos = 2;
  int m = find_marker(d->buf, d->n, &d->pos);
  for (;;) {
    if (m < 0 || m == M_EOI) {
      if (m < 0) d->truncated = 1;
      if (d->scans_done) break;
      return vg_fail(VG_ERR_FORMAT, "jpeg: %s before any image data",
                     m < 0 ? "data ends (truncated file)" : "EOI marker");
    }
    if (m == 0x01 || (m >= M_RST0 && m <= M_RST0 + 7)) {  /* parameterless; ignored */
      m = find_marker(d->buf, d->n, &d->pos);
      continue;
    }
    if (m == M_SOI) return vg_fail(VG_ERR_FORMAT, "jpeg: second SOI marker");
    if (d->n - d->pos < 2 || be16(d->buf + d->pos) < 2 || be16(d->buf + d->pos) > d->n - d->pos) {
      if (d->scans_done) { d->truncated = 1; break; }  /* the data ends inside a segment after some scans */
      if (d->n - d->pos >= 2 && be16(d->buf + d->pos) < 2)
        return vg_fail(VG_ERR_FORMAT, "jpeg: marker 0x%02X has bad segment length %u", m, be16(d->buf + d->pos));
      return vg_fail(VG_ERR_FORMAT, "jpeg: marker 0x%02X segment runs past the end of the data (truncated or bad length)", m);
    }
    size_t len = be16(d->buf + d->pos) - 2;
    const uint8_t *s = d->buf + d->pos + 2;
    d->pos += len + 2;
    vg_status st = VG_OK;
    switch (m) {
    case M_SOF0: case M_SOF1: case M_SOF2:
      st = parse_sof(d, m, s, len, lim);
      break;
    case 0xC3:
      return vg_fail(VG_ERR_UNSUPPORTED, "jpeg: lossless JPEG (SOF3) is not supported");
    case 0xC5: case 0xC6: case 0xC7: case 0xDE: case 0xDF:
      return vg_fail(VG_ERR_UNSUPPORTED, "jpeg: hierarchical JPEG (marker 0x%02X) is not supported", m);
    case 0xC9: case 0xCA: case 0xCB: case 0xCD: case 0xCE: case 0xCF: case M_DAC:
      return vg_fail(VG_ERR_UNSUPPORTED, "jpeg: arithmetic-coded JPEG (marker 0x%02X) is not supported", m);
    case M_DHT:
      st = parse_dht(d, s, len);
      break;
    case M_DQT:
      st = parse_dqt(d, s, len);
      break;
    case M_DRI:
      if (len != 2) return vg_fail(VG_ERR_FORMAT, "jpeg: DRI segment length %zu (must be 4)", len + 2);
      d->ri = (int)be16(s);
      break;
    case M_APP0:
      if (len >= 14 && !memcmp(s, "JFIF", 5)) d->jfif = 1;
      break;
    case M_APP14:
      if (len >= 12 && !memcmp(s, "Adobe", 5)) { d->adobe = 1; d->adobe_tf = s[11]; }
      break;
    case M_SOS: {
      if (d->single_scan) goto done;  /* libjpeg expects EOI after a one-scan image */
      jscan sc;
      st = parse_sos(d, s, len, &sc);
      if (st != VG_OK) return st;
      if (d->f.scans > d->max_scans)
        return vg_fail(VG_ERR_LIMIT, "jpeg: more than %d scans (the scan limit; real progressive files have "
                       "about 10, a flood of scans is a denial-of-service pattern)", d->max_scans);
      {  /* every scan codes at least one bit per block, so an empty segment is damage */
        size_t q = d->pos;
        while (q < d->n && d->buf[q] == 0xFF) q++;
        if (q > d->pos && q < d->n && d->buf[q] != 0)
          return vg_fail(VG_ERR_FORMAT, "jpeg: scan %d carries no data (marker 0x%02X right after its header)",
                         d->f.scans, d->buf[q]);
      }
      if (!d->scans_done) {
        /* Coefficient visits allowed: 16 per coefficient of the frame (a progression that
         * refines every coefficient through all 13 successive-approximation bits needs
         * 14), at least 2^24. */
        uint64_t coefs = 0;
        for (int i = 0; i < d->f.ncomp; i++) coefs += (uint64_t)d->f.comp[i].bw * d->f.comp[i].bh * 64;
        d->budget = 16 * coefs > ((uint64_t)1 << 24) ? 16 * coefs : (uint64_t)1 << 24;
        d->f.cs = guess_cs(d);
        d->single_scan = !d->f.progressive && sc.ns == d->f.ncomp;
      }
      d->scans_done++;
      st = decode_scan(d, &sc, &m);
      if (st != VG_OK) return st;
      continue;
    }
    default:
      if ((m >= 0xE0 && m <= 0xEF) || m == M_COM || m == M_DNL) break;  /* skipped */
      return vg_fail(VG_ERR_FORMAT, "jpeg: unknown marker 0x%02X", m);
    }
    if (st != VG_OK) return st;
    m = find_marker(d->buf, d->n, &d->pos);
  }
done:
  return vg_jpeg_render(&d->f, o->fancy_upsampling, o->block_smoothing, out);
}

vg_status vg_jpeg_decode_flags(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim,
                               const vg_jpeg_options *opt, unsigned *flags) {
  if (flags) *flags = 0;
  if (!out) return vg_fail(VG_ERR_ARG, "jpeg: NULL output image");
  memset(out, 0, sizeof *out);
  if (!buf && n) return vg_fail(VG_ERR_ARG, "jpeg: NULL buffer");
  vg_image_limits l = {16384, (size_t)256 << 20, (size_t)8 << 20};
  if (lim) l = *lim;
  vg_jpeg_options o = opt ? *opt : vg_jpeg_options_default();
  jdec *d = calloc(1, sizeof *d);
  if (!d) return vg_fail(VG_ERR_NOMEM, "jpeg: out of memory");
  d->buf = buf;
  d->n = n;
  d->max_scans = o.max_scans > 0 ? o.max_scans : VG_JPEG_MAX_SCANS;
  d->budget = (uint64_t)1 << 24;
  vg_status st = decode(d, out, &l, &o);
  if (st == VG_OK && d->truncated && flags) *flags |= VG_IMAGE_TRUNCATED;
  for (int i = 0; i < 4; i++) { free(d->f.comp[i].coef); free(d->f.comp[i].acnz); }
  free(d);
  return st;
}

vg_status vg_jpeg_decode_ex(const uint8_t *buf, size_t n, vg_image *out,
                            const vg_image_limits *lim, const vg_jpeg_options *opt) {
  return vg_jpeg_decode_flags(buf, n, out, lim, opt, NULL);
}

vg_status vg_jpeg_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim) {
  return vg_jpeg_decode_ex(buf, n, out, lim, NULL);
}
