/* pth.h — PyTorch checkpoint reader (.pth / .pt / Lightning .ckpt written by torch.save,
 * zip format, the default since torch 1.6), with a restricted unpickler: nothing in a
 * file can run code.
 *
 *   vg_pth_opts o = {.to_f32 = true};
 *   vg_pth_dict *d;
 *   if (vg_pth_load("resnet18-f37072fd.pth", &o, &d) != VG_OK) puts(vg_last_error());
 *   for (size_t i = 0; i < d->count; i++)
 *     if (d->entries[i].kind == VG_PTH_TENSOR) use(d->entries[i].name, d->entries[i].tensor);
 *   vg_tensor *w = vg_pth_take(d, "conv1.weight");   // now yours: vg_tensor_free(w)
 *   vg_pth_free(d);
 *
 * Archive: <prefix>/data.pkl, <prefix>/data/<key> (raw little-endian storage bytes),
 * <prefix>/version, optionally <prefix>/byteorder (must say "little"). The prefix is
 * whatever folder holds data.pkl.
 *
 * The unpickler accepts protocol 2-5 and exactly the opcodes a state dict needs: PROTO
 * FRAME EMPTY_DICT/LIST/TUPLE MARK TUPLE/TUPLE1/2/3 SETITEM(S) APPEND(S) BININT/1/2 LONG1
 * BINFLOAT NEWTRUE/NEWFALSE NONE SHORT_BINUNICODE/BINUNICODE/BINUNICODE8 BINPUT/LONG_BINPUT
 * MEMOIZE BINGET/LONG_BINGET GLOBAL/STACK_GLOBAL REDUCE BINPERSID BUILD STOP. Globals are
 * allow-listed: collections.OrderedDict (REDUCE with no arguments only),
 * torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the storage classes
 * torch.{Float,Half,BFloat16,Double,Long,Int,Byte,Bool}Storage (only inside persistent
 * ids ('storage', class, key, location, numel)). BUILD is accepted only on a dict with a
 * dict state (OrderedDict's _metadata), which is ignored. Any other global, opcode or
 * misuse (SETITEM on a non-dict, memo reference unset, stack underflow, MARK mismatch,
 * truncation) fails with VG_ERR_FORMAT/VG_ERR_UNSUPPORTED and a message naming the
 * opcode or global and its byte offset in data.pkl.
 *
 * Lightning checkpoints: with state_dict_only, only top["state_dict"] is loaded. Then
 * the rest of the file (optimizer_states, hyper_parameters, callbacks, ...) may name
 * other globals and use a few more data opcodes (bytes, sets, NEWOBJ, POP, DUP): these
 * become inert placeholders that are never called, and the entries holding them are
 * dropped; a placeholder inside state_dict itself still refuses the file. Without
 * state_dict_only a disallowed global anywhere refuses the whole file, and the result
 * is the whole top-level dict flattened.
 *
 * Results: nested dicts are flattened with '.' ("state_dict.conv1.weight" unless
 * state_dict_only picked the sub-dict); tensors become contiguous heap tensors in their
 * own dtype (f32 f16 bf16 i64 i32 u8 bool; f64 always becomes f32, as Vigil has no f64),
 * or f32 for every floating dtype with to_f32. Ints and bools become VG_PTH_INT, floats
 * VG_PTH_FLOAT; None, strings, lists and tuples are skipped and counted. Views that share
 * a storage (a transposed tensor saved with its base) are each copied out with their own
 * offset and strides, checked to stay inside the storage; the storage itself is decoded
 * (CRC-checked in place, or inflated) once, however many keys view it.
 *
 * Memory and CPU bounds (hostile files): every byte the loader allocates on behalf of the
 * file — data.pkl when deflated, pickle objects, strings, container arrays, the stack and
 * memo, flattened key names, the result's entries and tensors, inflated storages — is
 * charged to one counter before it is allocated, and the counter may not pass the budget
 *     B = 4 x S + 64 MiB     (opts.max_decoded overrides it),
 * where S is the number of bytes the archive's storage entries (<prefix>/data/...) occupy
 * in the archive (compressed sizes). The counter never decreases, so it bounds the peak
 * (storages are decoded one at a time, each freed before the next, so deflated ones are
 * charged once, at the largest one's inflated size).
 * The result is sized and charged before its first tensor is allocated, so a view whose
 * strides reach far more elements than its storage holds (stride 0, overlapping strides),
 * or one storage under thousands of keys, or a deflated storage that claims far more bytes
 * than the archive holds, is refused with VG_ERR_LIMIT naming the key or storage, the
 * sizes and the budget, before any of it is allocated. With the file's own bytes (n, read
 * whole) and the zip index (< 3 x its central directory, so < 3n), the peak heap of a
 * load is at most n + 3n + B = 4n + 4S + 64 MiB (S <= n): a few times the file. An
 * allocation that fails anyway is VG_ERR_NOMEM naming what was allocated, never an abort
 * (tensors come from vg_tensor_try_new). Structure caps: max_entries dict entries visited
 * while flattening (a sub-dict shared through the memo N times is visited N times: the
 * billion-laughs pickle fails here, in time linear in the cap), max_stack, max_memo and
 * memo indices below the pickle's length, max_values, max_depth; duplicate flattened keys
 * are refused on the first repeat, before any tensor is copied. Time is linear in the
 * pickle's length plus B. Files are opened with base/file.h: a directory, FIFO or
 * device path is refused by name (and a FIFO never waited on). */
#ifndef VG_PTH_H
#define VG_PTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tensor/tensor.h"
#include "nn/zip.h"

typedef struct {
  bool to_f32;              /* f16/bf16 tensors become f32 (f64 always does) */
  bool state_dict_only;     /* load only the top-level "state_dict" entry (Lightning) */
  size_t max_pickle;        /* data.pkl bytes, default 256 MiB */
  size_t max_memo;          /* memo slots, default 1 << 22 */
  size_t max_depth;         /* nesting of dicts, default 64 */
  size_t max_values;        /* pickle objects made, default 1 << 21 */
  vg_zip_limits zip;        /* zero fields = zip defaults */
  uint64_t max_decoded;     /* decode budget in bytes; default 4 x S + 64 MiB (see above) */
  size_t max_entries;       /* dict entries visited while flattening, default 1 << 20 */
  size_t max_stack;         /* pickle stack depth, default 1 << 20 */
} vg_pth_opts;

typedef enum { VG_PTH_TENSOR, VG_PTH_INT, VG_PTH_FLOAT } vg_pth_kind;

typedef struct {
  char *name;               /* dotted key */
  vg_pth_kind kind;
  vg_tensor *tensor;        /* VG_PTH_TENSOR: heap, owned by the dict until taken */
  bool requires_grad;       /* saved requires_grad (nn.Parameter) */
  bool parameter;           /* rebuilt by _rebuild_parameter */
  int64_t i;                /* VG_PTH_INT */
  double f;                 /* VG_PTH_FLOAT */
} vg_pth_entry;

typedef struct {
  vg_pth_entry *entries;    /* in the file's dict order */
  size_t count;
  size_t skipped;           /* None/str/list/tuple values left out */
  size_t dropped;           /* (state_dict_only) top-level entries other than state_dict */
  /* accounting (see "Memory" above) */
  uint64_t decoded_bytes;   /* bytes charged to the budget while loading (bounds the peak) */
  uint64_t budget;          /* the budget they had to stay under */
  uint64_t storage_bytes;   /* S: bytes the storage entries occupy in the archive */
  uint64_t storage_bytes_read;  /* storage bytes decoded (viewed or inflated), each storage once */
  size_t storages_decoded;  /* distinct storages decoded */
} vg_pth_dict;

vg_status vg_pth_load(const char *path, const vg_pth_opts *opts, vg_pth_dict **out);
/* Same from an archive in memory (copied). */
vg_status vg_pth_load_mem(const uint8_t *buf, size_t n, const vg_pth_opts *opts, vg_pth_dict **out);
const vg_pth_entry *vg_pth_get(const vg_pth_dict *d, const char *name);  /* NULL if absent */
/* Hands a tensor entry's tensor to the caller (the entry keeps its name, tensor NULL). */
vg_tensor *vg_pth_take(vg_pth_dict *d, const char *name);
/* Renames "prefix" + rest to rest for the first prefix (list ends with NULL) each name
 * starts with, e.g. {"module.", "model.", "backbone.", NULL}; a rename that would collide
 * with another name fails (VG_ERR_FORMAT) and leaves the dict unchanged. */
vg_status vg_pth_strip_prefixes(vg_pth_dict *d, const char *const *prefixes);
void vg_pth_free(vg_pth_dict *d);   /* NULL ok; frees tensors not taken */
#endif
