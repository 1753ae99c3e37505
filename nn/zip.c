/* zip.c — strict zip reader (see zip.h). Layout (APPNOTE 6.3):
 *   [local header 30 B + name + extra][data][data descriptor?] ... [central directory]
 *   [zip64 EOCD record 56 B + ...][zip64 EOCD locator 20 B][EOCD 22 B + comment]
 * Every integer is little-endian. The archive owns one buffer holding the file, one
 * array of entries and one block of NUL-terminated names. */
#include "nn/zip.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "base/inflate.h"
#include "base/file.h"

struct vg_zip {
  uint8_t *buf;
  size_t n;
  vg_zip_entry *e;          /* central-directory order */
  size_t count;
  const vg_zip_entry **by_name;   /* entries sorted by name */
  char *names;
};

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define SIG_DESC 0x08074b50u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* [off, off + len) lies within [0, n) */
static int in_range(uint64_t off, uint64_t len, uint64_t n) { return off <= n && len <= n - off; }

void vg_zip_free(vg_zip *z) {
  if (!z) return;
  free(z->buf);
  free(z->e);
  free(z->by_name);
  free(z->names);
  free(z);
}

size_t vg_zip_count(const vg_zip *z) { return z ? z->count : 0; }
const vg_zip_entry *vg_zip_entry_at(const vg_zip *z, size_t i) {
  return z && i < z->count ? &z->e[i] : NULL;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp((*(const vg_zip_entry *const *)a)->name, (*(const vg_zip_entry *const *)b)->name);
}
static int cmp_offset(const void *a, const void *b) {
  const vg_zip_entry *x = *(const vg_zip_entry *const *)a, *y = *(const vg_zip_entry *const *)b;
  return x->header_offset < y->header_offset ? -1 : x->header_offset > y->header_offset;
}

const vg_zip_entry *vg_zip_find(const vg_zip *z, const char *name) {
  if (!z || !name) return NULL;
  size_t lo = 0, hi = z->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(z->by_name[mid]->name, name);
    if (c == 0) return z->by_name[mid];
    if (c < 0) lo = mid + 1; else hi = mid;
  }
  return NULL;
}

/* Finds the zip64 extra field (id 1) in [p, p + n) and reads the fields whose 32-bit
 * header value was 0xFFFFFFFF, in the order usize, csize, offset. */
static vg_status zip64_extra(const uint8_t *p, size_t n, uint64_t *usize, uint64_t *csize,
                             uint64_t *offset, const char *name) {
  int need_u = *usize == 0xFFFFFFFFu, need_c = *csize == 0xFFFFFFFFu;
  int need_o = offset && *offset == 0xFFFFFFFFu;
  size_t i = 0;
  while (i + 4 <= n) {
    uint16_t id = rd16(p + i), len = rd16(p + i + 2);
    if (len > n - i - 4)
      return vg_fail(VG_ERR_FORMAT, "entry '%s': extra field 0x%04x overruns its area", name, id);
    if (id == 1) {
      const uint8_t *q = p + i + 4;
      size_t need = 8u * (size_t)(need_u + need_c + need_o), k = 0;
      if (len < need)
        return vg_fail(VG_ERR_FORMAT, "entry '%s': zip64 extra field too short (%u < %zu bytes)",
                       name, len, need);
      if (need_u) { *usize = rd64(q + k); k += 8; }
      if (need_c) { *csize = rd64(q + k); k += 8; }
      if (need_o) { *offset = rd64(q + k); k += 8; }
      return VG_OK;
    }
    i += 4 + (size_t)len;
  }
  if (need_u || need_c || need_o)
    return vg_fail(VG_ERR_FORMAT, "entry '%s': sizes marked zip64 but no zip64 extra field", name);
  return VG_OK;
}

static const char *method_name(unsigned m) {
  switch (m) {
    case 1: return "shrunk"; case 6: return "imploded"; case 9: return "deflate64";
    case 12: return "bzip2"; case 14: return "LZMA"; case 93: return "zstd";
    case 95: return "xz"; case 99: return "AES-encrypted"; default: return "unknown";
  }
}

/* Locates the end of central directory; fills the directory's offset, size and count. */
static vg_status find_directory(const vg_zip *z, uint64_t *cd_off, uint64_t *cd_size,
                                uint64_t *count, uint64_t *cd_limit) {
  const uint8_t *b = z->buf;
  size_t n = z->n;
  if (n < 22) return vg_fail(VG_ERR_FORMAT, "not a zip archive: %zu bytes, too short", n);
  size_t lo = n - 22 > 65535 ? n - 22 - 65535 : 0, pos = (size_t)-1;
  for (size_t i = n - 22 + 1; i-- > lo;) {
    if (rd32(b + i) == SIG_EOCD && (size_t)rd16(b + i + 20) == n - 22 - i) { pos = i; break; }
  }
  if (pos == (size_t)-1) {
    if (rd32(b) == SIG_LOCAL)
      return vg_fail(VG_ERR_FORMAT, "zip: end of central directory not found (truncated archive?)");
    return vg_fail(VG_ERR_FORMAT, "not a zip archive: no end of central directory record");
  }
  const uint8_t *e = b + pos;
  uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8), n_all = rd16(e + 10);
  uint32_t size32 = rd32(e + 12), off32 = rd32(e + 16);
  *cd_off = off32; *cd_size = size32; *count = n_all; *cd_limit = pos;
  int want64 = n_all == 0xFFFF || n_disk == 0xFFFF || size32 == 0xFFFFFFFFu || off32 == 0xFFFFFFFFu;
  if (pos >= 20 && rd32(b + pos - 20) == SIG_LOC64) {
    const uint8_t *l = b + pos - 20;
    uint64_t rec = rd64(l + 8);
    if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
      return vg_fail(VG_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
    if (!in_range(rec, 56, pos - 20) || rd32(b + rec) != SIG_EOCD64)
      return vg_fail(VG_ERR_FORMAT, "zip: zip64 locator points at %llu, where no zip64 "
                     "end-of-directory record lies", (unsigned long long)rec);
    const uint8_t *r = b + rec;
    uint64_t rsize = rd64(r + 4);
    if (rsize < 44 || rsize > pos - 20 - rec - 12)
      return vg_fail(VG_ERR_FORMAT, "zip: zip64 end-of-directory record size %llu is wrong",
                     (unsigned long long)rsize);
    if (rd32(r + 16) != 0 || rd32(r + 20) != 0 || rd64(r + 24) != rd64(r + 32))
      return vg_fail(VG_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
    *count = rd64(r + 32); *cd_size = rd64(r + 40); *cd_off = rd64(r + 48); *cd_limit = rec;
  } else if (want64) {
    return vg_fail(VG_ERR_FORMAT, "zip: end of directory uses zip64 markers but has no zip64 locator");
  } else if (disk != 0 || cd_disk != 0 || n_disk != n_all) {
    return vg_fail(VG_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
  }
  if (!in_range(*cd_off, *cd_size, *cd_limit))
    return vg_fail(VG_ERR_FORMAT, "zip: central directory [%llu, +%llu) lies outside the archive "
                   "(%llu bytes before the end records)", (unsigned long long)*cd_off,
                   (unsigned long long)*cd_size, (unsigned long long)*cd_limit);
  return VG_OK;
}

/* Checks the local header of e (already filled from the central directory) and sets
 * data_offset; *end = first byte after the entry (data and any descriptor). */
static vg_status check_local(const vg_zip *z, vg_zip_entry *e, uint16_t flags, uint64_t limit,
                             uint64_t *end) {
  const uint8_t *b = z->buf;
  uint64_t off = e->header_offset;
  if (!in_range(off, 30, limit) || rd32(b + off) != SIG_LOCAL)
    return vg_fail(VG_ERR_FORMAT, "entry '%s': no local header at offset %llu", e->name,
                   (unsigned long long)off);
  const uint8_t *l = b + off;
  uint16_t lflags = rd16(l + 6), lmethod = rd16(l + 8), nlen = rd16(l + 26), xlen = rd16(l + 28);
  if (!in_range(off + 30, (uint64_t)nlen + xlen, limit))
    return vg_fail(VG_ERR_FORMAT, "entry '%s': local header runs past the archive", e->name);
  if (nlen != strlen(e->name) || memcmp(l + 30, e->name, nlen) != 0)
    return vg_fail(VG_ERR_FORMAT, "entry '%s': local header names '%.*s' (central directory and "
                   "local header disagree)", e->name, (int)(nlen > 200 ? 200 : nlen), (const char *)l + 30);
  if (lmethod != e->method || (lflags & 9) != (flags & 9))
    return vg_fail(VG_ERR_FORMAT, "entry '%s': local header method/flags (%u/0x%x) disagree with "
                   "the central directory (%u/0x%x)", e->name, lmethod, lflags, e->method, flags);
  uint32_t lcrc = rd32(l + 14);
  uint64_t lc = rd32(l + 18), lu = rd32(l + 22);
  vg_status st = zip64_extra(l + 30 + nlen, xlen, &lu, &lc, NULL, e->name);
  if (st != VG_OK) return st;
  e->data_offset = off + 30 + nlen + xlen;
  if (!in_range(e->data_offset, e->csize, limit))
    return vg_fail(VG_ERR_FORMAT, "entry '%s': data [%llu, +%llu) runs past the archive", e->name,
                   (unsigned long long)e->data_offset, (unsigned long long)e->csize);
  *end = e->data_offset + e->csize;
  if (!(flags & 8)) {
    if (lcrc != e->crc || lc != e->csize || lu != e->usize)
      return vg_fail(VG_ERR_FORMAT, "entry '%s': local header sizes/CRC (%llu/%llu/%08x) disagree "
                     "with the central directory (%llu/%llu/%08x)", e->name, (unsigned long long)lc,
                     (unsigned long long)lu, lcrc, (unsigned long long)e->csize,
                     (unsigned long long)e->usize, e->crc);
    return VG_OK;
  }
  /* data descriptor: [signature] crc, csize, usize (4 or 8 bytes each) */
  if ((lcrc != 0 && lcrc != e->crc) || (lc != 0 && lc != e->csize) || (lu != 0 && lu != e->usize))
    return vg_fail(VG_ERR_FORMAT, "entry '%s': local header sizes/CRC disagree with the central "
                   "directory", e->name);
  uint64_t d0 = *end;
  for (int sig = 1; sig >= 0; sig--) {   /* with the optional signature first */
    if (sig && !(in_range(d0, 4, limit) && rd32(b + d0) == SIG_DESC)) continue;
    uint64_t d = d0 + (sig ? 4 : 0);
    if (in_range(d, 12, limit) && rd32(b + d) == e->crc && e->csize <= 0xFFFFFFFFu &&
        e->usize <= 0xFFFFFFFFu && rd32(b + d + 4) == e->csize && rd32(b + d + 8) == e->usize) {
      *end = d + 12;
      return VG_OK;
    }
    if (in_range(d, 20, limit) && rd32(b + d) == e->crc && rd64(b + d + 4) == e->csize &&
        rd64(b + d + 12) == e->usize) {
      *end = d + 20;
      return VG_OK;
    }
  }
  return vg_fail(VG_ERR_FORMAT, "entry '%s': data descriptor missing or disagrees with the "
                 "central directory", e->name);
}

static vg_status parse(vg_zip *z, const vg_zip_limits *lim) {
  size_t max_entries = lim && lim->max_entries ? lim->max_entries : (size_t)1 << 20;
  size_t max_name = lim && lim->max_name ? lim->max_name : 4096;
  uint64_t max_total = lim && lim->max_total ? lim->max_total : (uint64_t)64 << 30;
  uint64_t cd_off = 0, cd_size = 0, count = 0, cd_limit = 0;
  vg_status st = find_directory(z, &cd_off, &cd_size, &count, &cd_limit);
  if (st != VG_OK) return st;
  if (count > max_entries)
    return vg_fail(VG_ERR_LIMIT, "zip: %llu entries, more than the limit %zu",
                   (unsigned long long)count, max_entries);
  if (count > cd_size / 46)
    return vg_fail(VG_ERR_FORMAT, "zip: %llu entries cannot fit a %llu-byte central directory",
                   (unsigned long long)count, (unsigned long long)cd_size);
  /* names: at most cd_size bytes in all */
  z->e = calloc(count ? count : 1, sizeof *z->e);
  z->by_name = malloc((count ? count : 1) * sizeof *z->by_name);
  z->names = malloc(cd_size + 1);
  if (!z->e || !z->by_name || !z->names) return vg_fail(VG_ERR_NOMEM, "zip: out of memory");
  const uint8_t *b = z->buf;
  uint64_t p = cd_off, cd_end = cd_off + cd_size, total = 0;
  size_t name_pos = 0;
  uint16_t *flags = malloc((count ? count : 1) * sizeof *flags);
  if (!flags) return vg_fail(VG_ERR_NOMEM, "zip: out of memory");
  for (uint64_t i = 0; i < count; i++) {
    if (!in_range(p, 46, cd_end) || rd32(b + p) != SIG_CENTRAL) {
      free(flags);
      return vg_fail(VG_ERR_FORMAT, "zip: central directory entry %llu of %llu is missing or "
                     "corrupt (offset %llu)", (unsigned long long)i, (unsigned long long)count,
                     (unsigned long long)p);
    }
    const uint8_t *c = b + p;
    uint16_t flag = rd16(c + 8), method = rd16(c + 10), nlen = rd16(c + 28), xlen = rd16(c + 30),
             clen = rd16(c + 32), disk = rd16(c + 34);
    if (!in_range(p + 46, (uint64_t)nlen + xlen + clen, cd_end)) {
      free(flags);
      return vg_fail(VG_ERR_FORMAT, "zip: central directory entry %llu overruns the directory",
                     (unsigned long long)i);
    }
    if (nlen == 0 || nlen > max_name || memchr(c + 46, 0, nlen)) {
      free(flags);
      return vg_fail(nlen > max_name ? VG_ERR_LIMIT : VG_ERR_FORMAT,
                     "zip: entry %llu has a bad name (length %u, limit %zu)",
                     (unsigned long long)i, nlen, max_name);
    }
    vg_zip_entry *e = &z->e[i];
    memcpy(z->names + name_pos, c + 46, nlen);
    z->names[name_pos + nlen] = 0;
    e->name = z->names + name_pos;   /* each entry spends >= 46 + nlen directory bytes */
    name_pos += (size_t)nlen + 1;
    e->method = method;
    e->crc = rd32(c + 16);
    e->csize = rd32(c + 20);
    e->usize = rd32(c + 24);
    e->header_offset = rd32(c + 42);
    flags[i] = flag;
    if (disk != 0 && disk != 0xFFFF) {
      free(flags);
      return vg_fail(VG_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
    }
    p += 46 + (uint64_t)nlen + xlen + clen;
  }
  /* second pass: zip64 extras, methods, local headers */
  p = cd_off;
  for (uint64_t i = 0; i < count; i++) {
    const uint8_t *c = b + p;
    uint16_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    vg_zip_entry *e = &z->e[i];
    p += 46 + (uint64_t)nlen + xlen + clen;
    st = zip64_extra(c + 46 + nlen, xlen, &e->usize, &e->csize, &e->header_offset, e->name);
    if (st != VG_OK) break;
    if (flags[i] & 1) {
      st = vg_fail(VG_ERR_UNSUPPORTED, "entry '%s' is encrypted; encrypted archives are not "
                   "supported", e->name);
      break;
    }
    if (e->method != 0 && e->method != 8) {
      st = vg_fail(VG_ERR_UNSUPPORTED, "entry '%s': compression method %u (%s) is not supported "
                   "(only stored and deflated)", e->name, e->method, method_name(e->method));
      break;
    }
    if (e->method == 0 && e->csize != e->usize) {
      st = vg_fail(VG_ERR_FORMAT, "entry '%s' is stored but its sizes differ (%llu vs %llu)",
                   e->name, (unsigned long long)e->csize, (unsigned long long)e->usize);
      break;
    }
    /* deflate expands at most ~1032:1 */
    if (e->method == 8 && e->usize / 1032 > e->csize + 1) {
      st = vg_fail(VG_ERR_FORMAT, "entry '%s': %llu bytes cannot inflate from %llu", e->name,
                   (unsigned long long)e->usize, (unsigned long long)e->csize);
      break;
    }
    if (e->usize > max_total - total) {
      st = vg_fail(VG_ERR_LIMIT, "zip: entries hold more than the limit of %llu bytes",
                   (unsigned long long)max_total);
      break;
    }
    total += e->usize;
  }
  if (st != VG_OK) { free(flags); return st; }
  /* local headers, and overlaps: sort by header offset; each entry must end before the
   * next begins, and the last before the central directory. */
  const vg_zip_entry **ord = malloc((count ? count : 1) * sizeof *ord);
  uint64_t *ends = malloc((count ? count : 1) * sizeof *ends);
  if (!ord || !ends) { free(flags); free(ord); free(ends); return vg_fail(VG_ERR_NOMEM, "zip: out of memory"); }
  for (uint64_t i = 0; i < count && st == VG_OK; i++)
    st = check_local(z, &z->e[i], flags[i], cd_off, &ends[i]);
  for (uint64_t i = 0; i < count; i++) ord[i] = &z->e[i];
  if (st == VG_OK && count > 1) {
    qsort(ord, count, sizeof *ord, cmp_offset);
    for (uint64_t i = 0; i + 1 < count; i++) {
      uint64_t end = ends[ord[i] - z->e];
      if (end > ord[i + 1]->header_offset) {
        st = vg_fail(VG_ERR_FORMAT, "zip: entries '%s' and '%s' overlap (bytes %llu..%llu and "
                     "from %llu)", ord[i]->name, ord[i + 1]->name,
                     (unsigned long long)ord[i]->header_offset, (unsigned long long)end,
                     (unsigned long long)ord[i + 1]->header_offset);
        break;
      }
    }
  }
  free(flags); free(ord); free(ends);
  if (st != VG_OK) return st;
  for (size_t i = 0; i < count; i++) z->by_name[i] = &z->e[i];
  z->count = count;
  qsort(z->by_name, count, sizeof *z->by_name, cmp_name);
  for (size_t i = 0; i + 1 < count; i++)
    if (strcmp(z->by_name[i]->name, z->by_name[i + 1]->name) == 0)
      return vg_fail(VG_ERR_FORMAT, "zip: entry name '%s' appears twice", z->by_name[i]->name);
  return VG_OK;
}

vg_status vg_zip_open_owned(uint8_t *buf, size_t n, const vg_zip_limits *lim, vg_zip **out) {
  if (!out) { free(buf); return vg_fail(VG_ERR_ARG, "vg_zip_open_owned: out is NULL"); }
  *out = NULL;
  if (!buf) return vg_fail(VG_ERR_ARG, "vg_zip_open_owned: buf is NULL");
  vg_zip *z = calloc(1, sizeof *z);
  if (!z) { free(buf); return vg_fail(VG_ERR_NOMEM, "zip: out of memory"); }
  z->buf = buf;
  z->n = n;
  vg_status st = parse(z, lim);
  if (st != VG_OK) { vg_zip_free(z); return st; }
  *out = z;
  return VG_OK;
}

vg_status vg_zip_open_mem(const uint8_t *buf, size_t n, const vg_zip_limits *lim, vg_zip **out) {
  if (!out) return vg_fail(VG_ERR_ARG, "vg_zip_open_mem: out is NULL");
  *out = NULL;
  if (!buf && n) return vg_fail(VG_ERR_ARG, "vg_zip_open_mem: buf is NULL");
  uint8_t *copy = malloc(n ? n : 1);
  if (!copy) return vg_fail(VG_ERR_NOMEM, "zip: out of memory for %zu bytes", n);
  if (n) memcpy(copy, buf, n);
  return vg_zip_open_owned(copy, n, lim, out);
}

vg_status vg_zip_open(const char *path, const vg_zip_limits *lim, vg_zip **out) {
  if (!out || !path) return vg_fail(VG_ERR_ARG, "vg_zip_open: NULL argument");
  *out = NULL;
  /* regular files only: a directory, FIFO (never waited on) or device is refused by name */
  uint8_t *buf = NULL;
  size_t len = 0;
  vg_status st = vg_file_read_all(path, SIZE_MAX - 1, &buf, &len);
  if (st != VG_OK) return st;
  st = vg_zip_open_owned(buf, len, lim, out);
  if (st != VG_OK) vg_fail_prefix("%s", path);
  return st;
}

static vg_status check_crc(const vg_zip_entry *e, const uint8_t *p, size_t n) {
  uint32_t crc = vg_crc32(0, p, n);
  if (crc != e->crc)
    return vg_fail(VG_ERR_FORMAT, "entry '%s': CRC-32 mismatch (stored %08x, computed %08x)",
                   e->name, e->crc, crc);
  return VG_OK;
}

vg_status vg_zip_view(const vg_zip *z, const vg_zip_entry *e, const uint8_t **data, size_t *n) {
  if (!z || !e || !data || !n) return vg_fail(VG_ERR_ARG, "vg_zip_view: NULL argument");
  if (e->method != 0)
    return vg_fail(VG_ERR_UNSUPPORTED, "entry '%s' is compressed; use vg_zip_read", e->name);
  vg_status st = check_crc(e, z->buf + e->data_offset, (size_t)e->usize);
  if (st != VG_OK) return st;
  *data = z->buf + e->data_offset;
  *n = (size_t)e->usize;
  return VG_OK;
}

vg_status vg_zip_read(const vg_zip *z, const vg_zip_entry *e, uint8_t **out, size_t *out_n) {
  if (!z || !e || !out) return vg_fail(VG_ERR_ARG, "vg_zip_read: NULL argument");
  *out = NULL;
  if (e->usize > (uint64_t)SIZE_MAX - 1)
    return vg_fail(VG_ERR_LIMIT, "entry '%s' is too large for memory", e->name);
  size_t us = (size_t)e->usize;
  uint8_t *buf = malloc(us ? us : 1);
  if (!buf) return vg_fail(VG_ERR_NOMEM, "entry '%s': out of memory for %zu bytes", e->name, us);
  const uint8_t *src = z->buf + e->data_offset;
  vg_status st = VG_OK;
  if (e->method == 0) {
    memcpy(buf, src, us);
  } else {
    size_t got = 0, used = 0;
    st = vg_inflate_raw(src, (size_t)e->csize, &used, buf, us, &got);
    if (st == VG_OK && got != us)
      st = vg_fail(VG_ERR_FORMAT, "deflate stream ended early: %zu of %zu bytes", got, us);
    if (st != VG_OK) vg_fail_prefix("entry '%s'", e->name);
  }
  if (st == VG_OK) st = check_crc(e, buf, us);
  if (st != VG_OK) { free(buf); return st; }
  *out = buf;
  if (out_n) *out_n = us;
  return VG_OK;
}
