/* zip.h — a strict, read-only zip archive reader (for PyTorch checkpoints, which are zip
 * files since torch 1.6; see nn/pth.h).
 *
 *   vg_zip *z;
 *   if (vg_zip_open("model.pth", NULL, &z) != VG_OK) puts(vg_last_error());
 *   const vg_zip_entry *e = vg_zip_find(z, "archive/data.pkl");
 *   uint8_t *buf; size_t n;
 *   if (e && vg_zip_read(z, e, &buf, &n) == VG_OK) { ...; free(buf); }
 *   vg_zip_free(z);
 *
 * The whole file is read into memory (regular files only, through base/file.h: a
 * directory, FIFO or device is refused by name, a FIFO is never waited on). Opening validates everything up front:
 * the end-of-central-directory record (found behind a comment of any length up to
 * 65535 bytes, which must end exactly at the end of the file), the zip64 locator and
 * record and zip64 extra fields, every central-directory entry against its local header
 * (same name and method; sizes and CRC equal unless the entry uses a data descriptor,
 * whose values must then agree), offsets and sizes within the file, no two entries
 * overlapping and none overlapping the central directory, no duplicate names. Only
 * stored (method 0) and deflated (method 8) entries are accepted; encrypted entries,
 * other methods and multi-disk archives are refused. Reading an entry inflates it with
 * datasets/image's inflater into exactly its declared size and checks its CRC-32.
 * Memory: the archive holds the file's bytes plus an index of at most ~3x the central
 * directory's size (each entry spends >= 46 directory bytes); vg_zip_read allocates the
 * declared size, which opening checked is at most 1032 x the compressed size + 1032
 * (deflate's limit), so callers bound what they read by checking e->usize first.
 * Limits: a NULL pointer, or a zero field, means the default. */
#ifndef VG_ZIP_H
#define VG_ZIP_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct {
  size_t max_entries;       /* default 1 << 20 */
  size_t max_name;          /* bytes per entry name, default 4096 */
  uint64_t max_total;       /* sum of uncompressed sizes, default 64 GiB */
} vg_zip_limits;

typedef struct {
  const char *name;         /* NUL-terminated, owned by the archive */
  uint64_t header_offset;   /* local file header */
  uint64_t data_offset;     /* first byte of the (compressed) data */
  uint64_t csize, usize;    /* compressed and uncompressed sizes */
  uint32_t crc;
  uint16_t method;          /* 0 stored, 8 deflated */
} vg_zip_entry;

typedef struct vg_zip vg_zip;

/* Reads and validates the file at `path`. On failure *out is NULL and the message names
 * the file. */
vg_status vg_zip_open(const char *path, const vg_zip_limits *lim, vg_zip **out);
/* Same for an archive in memory (the bytes are copied). */
vg_status vg_zip_open_mem(const uint8_t *buf, size_t n, const vg_zip_limits *lim, vg_zip **out);
/* Same, taking ownership of buf (malloc'd; freed by vg_zip_free, or at once on failure). */
vg_status vg_zip_open_owned(uint8_t *buf, size_t n, const vg_zip_limits *lim, vg_zip **out);
void vg_zip_free(vg_zip *z);                   /* NULL ok */

size_t vg_zip_count(const vg_zip *z);
const vg_zip_entry *vg_zip_entry_at(const vg_zip *z, size_t i);   /* central-directory order */
const vg_zip_entry *vg_zip_find(const vg_zip *z, const char *name); /* NULL when absent */
/* Entry contents into a malloc'd buffer (*out_n = usize; a size-0 entry gives a 1-byte
 * buffer), CRC-32 checked; the caller frees. */
vg_status vg_zip_read(const vg_zip *z, const vg_zip_entry *e, uint8_t **out, size_t *out_n);
/* For stored entries only: a pointer into the archive's buffer (valid until
 * vg_zip_free), CRC-32 checked, no copy. Deflated entries give VG_ERR_UNSUPPORTED. */
vg_status vg_zip_view(const vg_zip *z, const vg_zip_entry *e, const uint8_t **data, size_t *n);
#endif
