/* inflate.c — DEFLATE (RFC 1951) decoder and a small encoder, the zlib wrapper
 * (RFC 1950), CRC-32 (as PNG uses it) and Adler-32. No dependency beyond libc.
 *
 * Decoder: a 64-bit LSB-first bit buffer; each Huffman table has a 2^VG_FAST_BITS
 * lookup table for short codes and falls back to a canonical (count/symbol) walk for
 * longer ones. Output goes into one caller-owned flat buffer of fixed capacity: a stream
 * that wants to write past it is refused (VG_ERR_LIMIT), so a decompression bomb costs
 * at most `cap` bytes and the time to fill them.
 *
 * Encoder: greedy LZ77 over a 32 KiB window with hash chains, emitted as fixed-Huffman
 * blocks (a stored block for empty input). Good enough for masks and anomaly maps. */
#include "base/inflate.h"
#include <string.h>

/* ---------------------------------------------------------------- checksums */

static uint32_t crc_table[256];
static int crc_table_ready;

static void crc_init(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[n] = c;
  }
  /* Benign race: every thread writes identical values. */
  crc_table_ready = 1;
}

/* CRC-32 (ISO 3309, reflected 0xEDB88320) as PNG and zlib define it: pass crc = 0 to start,
 * then feed the previous return value to continue. */
uint32_t vg_crc32(uint32_t crc, const uint8_t *p, size_t n) {
  if (!crc_table_ready) crc_init();
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

/* Adler-32: pass adler = 1 to start. Sums are reduced every 5552 bytes, the largest
 * run that cannot overflow 32 bits. */
uint32_t vg_adler32(uint32_t adler, const uint8_t *p, size_t n) {
  uint32_t a = adler & 0xFFFF, b = adler >> 16;
  while (n > 0) {
    size_t k = n < 5552 ? n : 5552;
    n -= k;
    while (k--) { a += *p++; b += a; }
    a %= 65521; b %= 65521;
  }
  return (b << 16) | a;
}

/* ---------------------------------------------------------------- bit reader */

typedef struct {
  const uint8_t *in;
  size_t n, pos;     /* pos may run past n: missing bytes read as zero (see overrun) */
  uint64_t buf;      /* pending bits, LSB first */
  int cnt;           /* number of valid bits in buf */
} bitreader;

static void br_refill(bitreader *br) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (br->pos <= br->n && br->n - br->pos >= 8) {
    /* Fast path: load 8 bytes, keep the whole ones that fit. The part of the next byte
     * that lands above cnt is exactly what the next refill ORs in again, so it is harmless. */
    uint64_t v;
    memcpy(&v, br->in + br->pos, 8);
    int k = (63 - br->cnt) >> 3;
    br->buf |= v << br->cnt;
    br->pos += (size_t)k;
    br->cnt += 8 * k;
    return;
  }
#endif
  while (br->cnt <= 56) {
    uint64_t byte = br->pos < br->n ? br->in[br->pos] : 0;
    br->pos++;
    br->buf |= byte << br->cnt;
    br->cnt += 8;
  }
}

/* Bits actually consumed exceed the input: the stream is truncated. */
static int br_overrun(const bitreader *br) {
  return (uint64_t)br->pos * 8 - (uint64_t)br->cnt > (uint64_t)br->n * 8;
}

static uint32_t br_bits(bitreader *br, int k) {   /* k <= 32 */
  if (br->cnt < k) br_refill(br);
  uint32_t v = (uint32_t)(br->buf & ((1ull << k) - 1));
  br->buf >>= k;
  br->cnt -= k;
  return v;
}

static void br_align(bitreader *br) {             /* drop bits up to a byte boundary */
  int drop = br->cnt & 7;
  br->buf >>= drop;
  br->cnt -= drop;
}

/* ---------------------------------------------------------------- Huffman tables */

#define VG_MAXBITS 15
#define VG_FAST_BITS 10

typedef struct {
  uint16_t fast[1 << VG_FAST_BITS]; /* (symbol << 4) | length, 0 = longer code: slow path */
  uint16_t count[VG_MAXBITS + 1];   /* codes of each length */
  uint16_t symbol[288];             /* symbols in canonical order */
} huffman;

static uint32_t reverse_bits(uint32_t v, int k) {
  uint32_t r = 0;
  for (int i = 0; i < k; i++) { r = (r << 1) | (v & 1); v >>= 1; }
  return r;
}

/* Builds the table from code lengths. Over-subscribed sets are refused; incomplete sets
 * too, except the cases RFC 1951 allows (a single code, or no codes for distances).
 * Returns 0 on success, -1 on an over-subscribed set, -2 on an incomplete one. */
static int huff_build(huffman *h, const uint8_t *len, int n) {
  uint16_t offs[VG_MAXBITS + 2];
  memset(h->count, 0, sizeof h->count);
  memset(h->fast, 0, sizeof h->fast);
  for (int s = 0; s < n; s++) h->count[len[s]]++;
  int left = 1;
  for (int b = 1; b <= VG_MAXBITS; b++) {
    left <<= 1;
    left -= h->count[b];
    if (left < 0) return -1;
  }
  offs[1] = 0;
  for (int b = 1; b <= VG_MAXBITS; b++) offs[b + 1] = offs[b] + h->count[b];
  for (int s = 0; s < n; s++)
    if (len[s]) h->symbol[offs[len[s]]++] = (uint16_t)s;
  /* Fill the fast table: canonical codes are assigned in (length, symbol) order. */
  uint32_t code = 0;
  int idx = 0;
  for (int b = 1; b <= VG_MAXBITS; b++) {
    for (int k = 0; k < h->count[b]; k++, idx++, code++) {
      if (b > VG_FAST_BITS) continue;
      uint32_t r = reverse_bits(code, b);
      for (uint32_t f = r; f < (1u << VG_FAST_BITS); f += 1u << b)
        h->fast[f] = (uint16_t)((h->symbol[idx] << 4) | b);
    }
    code <<= 1;
  }
  int used = n - h->count[0];
  if (left > 0 && used > 1) return -2;
  return 0;
}

/* Decodes one symbol; -1 for a bit pattern that is not a code (incomplete table). */
static int huff_decode(bitreader *br, const huffman *h) {
  if (br->cnt < VG_MAXBITS) br_refill(br);
  uint16_t e = h->fast[br->buf & ((1u << VG_FAST_BITS) - 1)];
  if (e) {
    int b = e & 15;
    br->buf >>= b;
    br->cnt -= b;
    return e >> 4;
  }
  /* Slow path: walk the canonical code one bit at a time (as zlib's puff.c does). */
  int code = 0, first = 0, index = 0;
  for (int b = 1; b <= VG_MAXBITS; b++) {
    code |= (int)(br->buf & 1);
    br->buf >>= 1;
    br->cnt--;
    int count = h->count[b];
    if (code - count < first) return h->symbol[index + (code - first)];
    index += count;
    first += count;
    first <<= 1;
    code <<= 1;
  }
  return -1;
}

/* ---------------------------------------------------------------- inflate */

static const uint16_t len_base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                      35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                      3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                       257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
                                       8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                                       7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

typedef struct {
  bitreader br;
  uint8_t *out;
  size_t cap, pos;
  huffman lit, dist;
} inflater;

static vg_status truncated(void) {
  return vg_fail(VG_ERR_FORMAT, "deflate stream truncated");
}

static vg_status too_long(size_t cap) {
  return vg_fail(VG_ERR_LIMIT, "deflate stream produces more than the expected %zu bytes", cap);
}

static vg_status inflate_stored(inflater *z) {
  bitreader *br = &z->br;
  br_align(br);
  uint32_t len = br_bits(br, 16), nlen = br_bits(br, 16);
  if (br_overrun(br)) return truncated();
  if (len != (~nlen & 0xFFFF))
    return vg_fail(VG_ERR_FORMAT, "deflate stored block: LEN %u does not match NLEN", len);
  /* Drain whole bytes still in the bit buffer, then copy straight from the input. */
  while (len > 0 && br->cnt >= 8) {
    if (z->pos >= z->cap) return too_long(z->cap);
    z->out[z->pos++] = (uint8_t)br_bits(br, 8);
    len--;
  }
  if (br_overrun(br)) return truncated();
  if (len > 0) {
    /* The bit buffer is empty here, so br->pos is the next unread input byte. Clear
     * the look-ahead bits a fast refill may have left above cnt: they are skipped. */
    br->buf = 0;
    if (br->n - br->pos < len) return truncated();
    if (z->cap - z->pos < len) return too_long(z->cap);
    memcpy(z->out + z->pos, br->in + br->pos, len);
    z->pos += len;
    br->pos += len;
  }
  return VG_OK;
}

static vg_status inflate_codes(inflater *z) {
  bitreader *br = &z->br;
  for (;;) {
    int sym = huff_decode(br, &z->lit);
    if (br_overrun(br)) return truncated();
    if (sym < 0) return vg_fail(VG_ERR_FORMAT, "deflate: invalid literal/length code");
    if (sym < 256) {
      if (z->pos >= z->cap) return too_long(z->cap);
      z->out[z->pos++] = (uint8_t)sym;
      continue;
    }
    if (sym == 256) return VG_OK;
    sym -= 257;
    if (sym >= 29) return vg_fail(VG_ERR_FORMAT, "deflate: invalid length symbol %d", sym + 257);
    size_t len = len_base[sym] + br_bits(br, len_extra[sym]);
    int ds = huff_decode(br, &z->dist);
    if (br_overrun(br)) return truncated();
    if (ds < 0) return vg_fail(VG_ERR_FORMAT, "deflate: invalid distance code");
    if (ds >= 30) return vg_fail(VG_ERR_FORMAT, "deflate: invalid distance symbol %d", ds);
    size_t dist = dist_base[ds] + br_bits(br, dist_extra[ds]);
    if (br_overrun(br)) return truncated();
    if (dist > z->pos)
      return vg_fail(VG_ERR_FORMAT, "deflate: distance %zu too far back (only %zu bytes out)",
                     dist, z->pos);
    if (z->cap - z->pos < len) return too_long(z->cap);
    uint8_t *d = z->out + z->pos;
    const uint8_t *s = d - dist;
    if (dist >= len) memcpy(d, s, len);
    else for (size_t i = 0; i < len; i++) d[i] = s[i];   /* overlapping: a repeating run */
    z->pos += len;
  }
}

static void fixed_tables(inflater *z) {
  uint8_t len[288];
  int s = 0;
  for (; s < 144; s++) len[s] = 8;
  for (; s < 256; s++) len[s] = 9;
  for (; s < 280; s++) len[s] = 7;
  for (; s < 288; s++) len[s] = 8;
  huff_build(&z->lit, len, 288);
  for (s = 0; s < 30; s++) len[s] = 5;
  huff_build(&z->dist, len, 30);
}

static vg_status dynamic_tables(inflater *z) {
  static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
  bitreader *br = &z->br;
  int nlen = (int)br_bits(br, 5) + 257, ndist = (int)br_bits(br, 5) + 1, ncode = (int)br_bits(br, 4) + 4;
  if (br_overrun(br)) return truncated();
  if (nlen > 286 || ndist > 30)
    return vg_fail(VG_ERR_FORMAT, "deflate: too many length (%d) or distance (%d) codes", nlen, ndist);
  uint8_t len[286 + 30];
  memset(len, 0, 19);
  for (int i = 0; i < ncode; i++) len[order[i]] = (uint8_t)br_bits(br, 3);
  if (br_overrun(br)) return truncated();
  huffman *lencode = &z->lit;   /* reused as scratch for the code-length code */
  if (huff_build(lencode, len, 19) != 0)
    return vg_fail(VG_ERR_FORMAT, "deflate: invalid code-length code");
  for (int i = 0; i < nlen + ndist;) {
    int sym = huff_decode(br, lencode);
    if (br_overrun(br)) return truncated();
    if (sym < 0) return vg_fail(VG_ERR_FORMAT, "deflate: invalid code-length symbol");
    if (sym < 16) { len[i++] = (uint8_t)sym; continue; }
    int rep, val = 0;
    if (sym == 16) {
      if (i == 0) return vg_fail(VG_ERR_FORMAT, "deflate: repeat with no previous code length");
      val = len[i - 1];
      rep = 3 + (int)br_bits(br, 2);
    } else if (sym == 17) {
      rep = 3 + (int)br_bits(br, 3);
    } else {
      rep = 11 + (int)br_bits(br, 7);
    }
    if (br_overrun(br)) return truncated();
    if (i + rep > nlen + ndist) return vg_fail(VG_ERR_FORMAT, "deflate: code lengths overrun the table");
    while (rep--) len[i++] = (uint8_t)val;
  }
  if (len[256] == 0) return vg_fail(VG_ERR_FORMAT, "deflate: no end-of-block code");
  if (huff_build(&z->lit, len, nlen) != 0)
    return vg_fail(VG_ERR_FORMAT, "deflate: invalid literal/length code lengths");
  int err = huff_build(&z->dist, len + nlen, ndist);
  /* An incomplete distance code is tolerated only when it has a single code or none
   * (huff_build accepts those); anything else is refused. */
  if (err != 0) return vg_fail(VG_ERR_FORMAT, "deflate: invalid distance code lengths");
  return VG_OK;
}

vg_status vg_inflate_raw(const uint8_t *in, size_t n, size_t *consumed, uint8_t *out, size_t cap,
                         size_t *out_n) {
  inflater *z = malloc(sizeof *z);
  if (!z) return vg_fail(VG_ERR_NOMEM, "inflate: out of memory");
  memset(&z->br, 0, sizeof z->br);
  z->br.in = in;
  z->br.n = n;
  z->out = out;
  z->cap = cap;
  z->pos = 0;
  vg_status st = VG_OK;
  int last = 0;
  while (!last && st == VG_OK) {
    last = (int)br_bits(&z->br, 1);
    int type = (int)br_bits(&z->br, 2);
    if (br_overrun(&z->br)) { st = truncated(); break; }
    switch (type) {
      case 0: st = inflate_stored(z); break;
      case 1: fixed_tables(z); st = inflate_codes(z); break;
      case 2: st = dynamic_tables(z); if (st == VG_OK) st = inflate_codes(z); break;
      default: st = vg_fail(VG_ERR_FORMAT, "deflate: invalid block type 3"); break;
    }
  }
  if (out_n) *out_n = z->pos;
  if (consumed) {   /* whole bytes consumed, counting a partly used last byte; on a
                     * truncated stream the zero bits read past the end do not count */
    uint64_t bits = (uint64_t)z->br.pos * 8 - (uint64_t)z->br.cnt, bytes = (bits + 7) / 8;
    *consumed = bytes > n ? n : (size_t)bytes;
  }
  free(z);
  return st;
}

vg_status vg_zlib_inflate(const uint8_t *in, size_t n, uint8_t *out, size_t exact_size) {
  if (n < 2) return vg_fail(VG_ERR_FORMAT, "zlib stream truncated (%zu bytes)", n);
  unsigned cmf = in[0], flg = in[1];
  if ((cmf & 15) != 8) return vg_fail(VG_ERR_FORMAT, "zlib: compression method %u is not deflate", cmf & 15);
  if ((cmf >> 4) > 7) return vg_fail(VG_ERR_FORMAT, "zlib: window size field %u too large", cmf >> 4);
  if ((cmf * 256 + flg) % 31 != 0) return vg_fail(VG_ERR_FORMAT, "zlib: header check bits are wrong");
  if (flg & 32) return vg_fail(VG_ERR_UNSUPPORTED, "zlib: preset dictionary is not supported");
  size_t used = 0, got = 0;
  vg_status st = vg_inflate_raw(in + 2, n - 2, &used, out, exact_size, &got);
  if (st != VG_OK) return vg_fail_prefix("zlib");
  if (got != exact_size)
    return vg_fail(VG_ERR_FORMAT, "zlib stream ended early: %zu of the expected %zu bytes", got, exact_size);
  size_t p = 2 + used;
  if (n - p < 4) return vg_fail(VG_ERR_FORMAT, "zlib stream truncated before its Adler-32 checksum");
  uint32_t want = (uint32_t)in[p] << 24 | (uint32_t)in[p + 1] << 16 | (uint32_t)in[p + 2] << 8 | in[p + 3];
  uint32_t have = vg_adler32(1, out, got);
  if (want != have)
    return vg_fail(VG_ERR_FORMAT, "zlib: Adler-32 mismatch (stored %08x, computed %08x)", want, have);
  return VG_OK;
}

/* ---------------------------------------------------------------- deflate (writer) */

typedef struct {
  uint8_t *buf;
  size_t n, cap;
  uint64_t bits;
  int cnt;
  int oom;
} bitwriter;

static void bw_byte(bitwriter *w, uint8_t b) {
  if (w->n == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 4096;
    uint8_t *nb = nc > w->cap ? realloc(w->buf, nc) : NULL;
    if (!nb) { w->oom = 1; return; }
    w->buf = nb;
    w->cap = nc;
  }
  w->buf[w->n++] = b;
}

static void bw_put(bitwriter *w, uint32_t v, int k) {    /* k <= 32, LSB first */
  w->bits |= (uint64_t)v << w->cnt;
  w->cnt += k;
  while (w->cnt >= 8) {
    bw_byte(w, (uint8_t)w->bits);
    w->bits >>= 8;
    w->cnt -= 8;
  }
}

static void bw_flush(bitwriter *w) {
  if (w->cnt > 0) bw_put(w, 0, 8 - w->cnt);
}

/* Fixed-Huffman code for literal/length symbol s, written MSB-first as Huffman codes are. */
static void put_fixed_lit(bitwriter *w, int s) {
  uint32_t code;
  int k;
  if (s < 144) { code = 0x30 + s; k = 8; }
  else if (s < 256) { code = 0x190 + (s - 144); k = 9; }
  else if (s < 280) { code = s - 256; k = 7; }
  else { code = 0xC0 + (s - 280); k = 8; }
  bw_put(w, reverse_bits(code, k), k);
}

static void put_match(bitwriter *w, int len, int dist) {
  int ls = 28;
  while (len_base[ls] > len) ls--;
  put_fixed_lit(w, 257 + ls);
  if (len_extra[ls]) bw_put(w, (uint32_t)(len - len_base[ls]), len_extra[ls]);
  int ds = 29;
  while (dist_base[ds] > dist) ds--;
  bw_put(w, reverse_bits((uint32_t)ds, 5), 5);
  if (dist_extra[ds]) bw_put(w, (uint32_t)(dist - dist_base[ds]), dist_extra[ds]);
}

#define VG_WIN 32768
#define VG_HASH_BITS 15
#define VG_MAX_CHAIN 12
#define VG_NICE_LEN 64       /* a match this long is good enough: stop searching */
#define VG_NONE ((size_t)-1)

static uint32_t hash3(const uint8_t *p) {
  return ((uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]) * 2654435761u >> (32 - VG_HASH_BITS);
}

/* Longest earlier match for in[i..] within the window, following the hash chain. */
static int find_match(const uint8_t *in, size_t n, size_t i, const size_t *head, const size_t *prev,
                      int *dist_out) {
  size_t maxlen = n - i < 258 ? n - i : 258;
  size_t cand = head[hash3(in + i)];
  int best = 0;
  for (int chain = 0; cand != VG_NONE && chain < VG_MAX_CHAIN; chain++) {
    size_t dist = i - cand;
    if (cand >= i || dist >= VG_WIN) break;
    const uint8_t *a = in + cand, *b = in + i;
    if (a[best] == b[best]) {        /* best < maxlen here: we stop once a match is maxlen */
      size_t l = 0;
      while (l < maxlen && a[l] == b[l]) l++;
      if ((int)l > best) {
        best = (int)l;
        *dist_out = (int)dist;
        if (l == maxlen || l >= VG_NICE_LEN) break;
      }
    }
    cand = prev[cand & (VG_WIN - 1)];
  }
  return best;
}

vg_status vg_zlib_deflate(const uint8_t *in, size_t n, uint8_t **out, size_t *out_n) {
  bitwriter w = {0};
  size_t *head = malloc(sizeof(size_t) << VG_HASH_BITS);
  size_t *prev = malloc(sizeof(size_t) * VG_WIN);
  if (!head || !prev) {
    free(head);
    free(prev);
    return vg_fail(VG_ERR_NOMEM, "deflate: out of memory");
  }
  for (size_t k = 0; k < ((size_t)1 << VG_HASH_BITS); k++) head[k] = VG_NONE;
  bw_put(&w, 0x78, 8);     /* CMF: deflate, 32 KiB window */
  bw_put(&w, 0x01, 8);     /* FLG: "fastest" level; (0x78 * 256 + 0x01) % 31 == 0 */
  if (n == 0) {
    bw_put(&w, 1, 1);      /* one final, empty stored block */
    bw_put(&w, 0, 2);
    bw_flush(&w);
    bw_put(&w, 0x0000, 16);
    bw_put(&w, 0xFFFF, 16);
  } else {
    bw_put(&w, 1, 1);      /* one final fixed-Huffman block holds everything */
    bw_put(&w, 1, 2);
    size_t i = 0;
    while (i < n) {
      int len = 0, dist = 0;
      if (n - i >= 3) len = find_match(in, n, i, head, prev, &dist);
      size_t step = len >= 3 ? (size_t)len : 1;
      if (len >= 3) put_match(&w, len, dist);
      else put_fixed_lit(&w, in[i]);
      for (size_t k = 0; k < step; k++, i++) {   /* insert each covered position */
        if (n - i < 3) continue;
        uint32_t h = hash3(in + i);
        prev[i & (VG_WIN - 1)] = head[h];
        head[h] = i;
      }
    }
    put_fixed_lit(&w, 256);
    bw_flush(&w);
  }
  uint32_t adler = vg_adler32(1, in, n);
  for (int s = 24; s >= 0; s -= 8) bw_byte(&w, (uint8_t)(adler >> s));
  free(head);
  free(prev);
  if (w.oom) {
    free(w.buf);
    return vg_fail(VG_ERR_NOMEM, "deflate: out of memory");
  }
  *out = w.buf;
  *out_n = w.n;
  return VG_OK;
}
