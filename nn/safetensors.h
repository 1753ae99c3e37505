/* safetensors.h — reader and writer of the safetensors format (Vigil's checkpoint format
 * and timm's/Hugging Face's weight files). Own code; validation follows the format's
 * reference implementation (huggingface/safetensors, tensor.rs).
 *
 *   vg_st_file *f;
 *   if (vg_st_open("model.safetensors", &f) != VG_OK) { puts(vg_last_error()); ... }
 *   for (int i = 0; i < vg_st_count(f); i++) printf("%s\n", vg_st_name(f, i));
 *   vg_tensor *w;
 *   vg_st_get(f, "conv1.weight", VG_F32, &w);      // heap tensor, converted to f32
 *   vg_st_get_into(f, "bn1.running_mean", param);   // into an existing tensor (shape must match)
 *   const char *fw = vg_st_meta(f, "format");       // __metadata__ lookup, NULL if absent
 *   vg_st_close(f);
 *
 *   vg_st_save("ckpt.safetensors", n, names, tensors, "{\"epoch\":\"3\"}");
 *
 * File layout: u64 little-endian N, N bytes of JSON header, then the byte buffer. The
 * header is an object {name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}
 * plus an optional "__metadata__" object of string -> string.
 *
 * Validation on open (every failure names the file and the problem):
 *  - only regular files (base/file.h: a directory, FIFO, socket or device is refused by
 *    name, a FIFO is never waited on);
 *  - file >= 8 bytes; N <= 100,000,000 (VG_ST_MAX_HEADER); 8 + N <= file size;
 *  - header: valid UTF-8, strict JSON (base/json.h: duplicate names refused), an object
 *    whose first byte is '{', at most VG_ST_MAX_VALUES JSON values (bounded by a scan
 *    before parsing, so the parsed tree stays under ~100 MiB however the header is written)
 *    and at most VG_ST_MAX_TENSORS + 1 members in any array/object;
 *  - at most VG_ST_MAX_TENSORS tensors, names (and metadata keys) at most VG_ST_MAX_NAME bytes;
 *  - each entry an object with dtype (a dtype the format defines), shape (array of
 *    non-negative integers fitting int64, at most VG_MAX_DIMS dims), data_offsets
 *    (two non-negative integers, begin <= end, end <= buffer size); unknown extra fields
 *    are ignored, as the reference does;
 *  - prod(shape) * dtype size computed with overflow checks and equal to end - begin;
 *  - sorted by offset, the tensors tile the buffer: the first begins at 0, each begins
 *    where the previous ended (no gap, no overlap), the last ends at the file's end
 *    (no trailing bytes).
 *
 * dtypes: the reader validates every dtype the format defines (BOOL U8 I8 I16 U16 I32
 * U32 I64 U64 F16 BF16 F32 F64 F8_E5M2 F8_E4M3); vg_st_get reads F32 F16 BF16 F64 I64 I32
 * U8 BOOL (F64 arrives as F32 when kept as stored) and refuses the others
 * (VG_ERR_UNSUPPORTED). Data is little-endian (big-endian hosts are refused).
 *
 * The file stays open (one descriptor) until vg_st_close; each vg_st_get reads its
 * tensor's bytes with pread, so nothing but the header is held in memory. Memory: opening
 * holds the header bytes plus its tree; vg_st_get allocates only after the tensor's bytes
 * were checked to lie in the file (end - begin == numel x dtype size), and a failed
 * allocation is VG_ERR_NOMEM, never an abort. vg_st_open_mem
 * reads from a caller's buffer instead (it must outlive the handle). A handle keeps no
 * per-read state, so several threads may vg_st_get from one handle at once. */
#ifndef VG_SAFETENSORS_H
#define VG_SAFETENSORS_H
#include <stdint.h>
#include "tensor/tensor.h"

#define VG_ST_MAX_HEADER 100000000      /* bytes, as the reference */
#define VG_ST_MAX_TENSORS 65536
#define VG_ST_MAX_NAME 1024             /* bytes of a tensor name or metadata key */
#define VG_ST_MAX_VALUES (16 * VG_ST_MAX_TENSORS)   /* JSON values in the header (counted before parsing) */
#define VG_ST_AS_STORED VG_DTYPE_COUNT  /* vg_st_get: keep the file's dtype (F64 -> F32) */

typedef struct vg_st_file vg_st_file;

typedef struct {
  const char *name;
  const char *dtype;        /* the file's dtype string: "F32", "BF16", ... */
  vg_dtype vg;              /* the Vigil dtype vg_st_get produces as stored; VG_DTYPE_COUNT if unreadable */
  int ndim;
  int64_t shape[VG_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end;      /* byte offsets in the data buffer */
} vg_st_info;

vg_status vg_st_open(const char *path, vg_st_file **out);
/* label names the source in error messages. */
vg_status vg_st_open_mem(const void *buf, size_t n, const char *label, vg_st_file **out);
void vg_st_close(vg_st_file *f);    /* NULL ok */

int vg_st_count(const vg_st_file *f);
const char *vg_st_name(const vg_st_file *f, int i);      /* in data-offset order */
int vg_st_find(const vg_st_file *f, const char *name);   /* index or -1 */
vg_status vg_st_info_at(const vg_st_file *f, int i, vg_st_info *out);

/* The tensor `name` as a new heap tensor (vg_tensor_free) of dtype `want` (any Vigil
 * dtype, converted as vg_cast does), or VG_ST_AS_STORED. */
vg_status vg_st_get(vg_st_file *f, const char *name, vg_dtype want, vg_tensor **out);
/* Copies the tensor `name` into dst (any layout/dtype/device; its shape must equal the
 * stored shape exactly). */
vg_status vg_st_get_into(vg_st_file *f, const char *name, vg_tensor *dst);

/* __metadata__: count, i-th key/value (in file order), lookup by key (NULL if absent). */
int vg_st_meta_count(const vg_st_file *f);
const char *vg_st_meta_key(const vg_st_file *f, int i);
const char *vg_st_meta_value(const vg_st_file *f, int i);
const char *vg_st_meta(const vg_st_file *f, const char *key);

/* Writes n tensors (any layout, any device; Vigil dtypes) under unique names, with
 * optional metadata given as a JSON object of string -> string (NULL for none).
 * Order in the file: as the reference writes, by descending dtype size, then by name
 * (byte order); the header is padded with spaces to a multiple of 8, so every tensor's
 * data is aligned to its element size. Written to "<path>.tmp", fsynced, renamed over
 * path, and the directory fsynced; on any failure the temp file is removed and an
 * existing file at path is left as it was. */
vg_status vg_st_save(const char *path, int n, const char *const *names, vg_tensor *const *tensors,
                     const char *metadata_json);
#endif
