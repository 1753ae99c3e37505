/* safetensors.c — safetensors reader (validated header, pread per tensor) and atomic
 * writer. Rules and their order follow the reference implementation (tensor.rs):
 * header-length checks, JSON, per-entry checks, then the offsets must tile the buffer. */
#include "nn/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define VG_ST_BIG_ENDIAN 1
#else
#define VG_ST_BIG_ENDIAN 0
#endif

/* The format's dtypes, in the reference's enum order (its "alignment" order, which the
 * writer sorts by). vg = VG_DTYPE_COUNT: validated but not readable into Vigil. */
typedef struct { const char *name; int size; vg_dtype vg; } st_dtype;
static const st_dtype DTYPES[] = {
  {"BOOL", 1, VG_BOOL}, {"U8", 1, VG_U8}, {"I8", 1, VG_DTYPE_COUNT},
  {"F8_E5M2", 1, VG_DTYPE_COUNT}, {"F8_E4M3", 1, VG_DTYPE_COUNT},
  {"I16", 2, VG_DTYPE_COUNT}, {"U16", 2, VG_DTYPE_COUNT}, {"F16", 2, VG_F16},
  {"BF16", 2, VG_BF16}, {"I32", 4, VG_I32}, {"U32", 4, VG_DTYPE_COUNT}, {"F32", 4, VG_F32},
  {"F64", 8, VG_F32 /* converted on read */}, {"I64", 8, VG_I64}, {"U64", 8, VG_DTYPE_COUNT},
};
enum { NDTYPES = (int)(sizeof DTYPES / sizeof *DTYPES), DT_F64 = 12 };

static int dtype_index(const char *s) {
  for (int i = 0; i < NDTYPES; i++)
    if (!strcmp(DTYPES[i].name, s)) return i;
  return -1;
}

/* Index in DTYPES of a Vigil dtype (for writing). */
static int dtype_of_vg(vg_dtype dt) {
  switch (dt) {
    case VG_F32: return 11;
    case VG_F16: return 7;
    case VG_BF16: return 8;
    case VG_I32: return 9;
    case VG_I64: return 13;
    case VG_U8: return 1;
    case VG_BOOL: return 0;
    case VG_DTYPE_COUNT: break;
  }
  return -1;
}

typedef struct {
  const char *name;         /* in the JSON arena */
  size_t name_len;
  int dt;                   /* index in DTYPES */
  int ndim;
  int64_t shape[VG_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end;
} st_entry;

struct vg_st_file {
  char *label;
  int fd;                   /* -1 for memory sources */
  const unsigned char *mem;
  uint64_t data_start, data_len;
  vg_json *header;          /* owns names and metadata strings */
  int n;
  st_entry *e;              /* sorted by data offset */
  int *by_name;             /* indices into e sorted by name */
  const vg_json *meta;      /* the __metadata__ object or NULL */
};

/* ------------------------------------------------------------------ reading */

static vg_status read_at(int fd, void *dst, uint64_t off, size_t n) {
  unsigned char *p = dst;
  while (n) {
    ssize_t r = pread(fd, p, n, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return vg_fail(VG_ERR_IO, "read failed: %s", strerror(errno));
    if (r == 0) return vg_fail(VG_ERR_IO, "unexpected end of file (was it truncated while open?)");
    p += r;
    off += (uint64_t)r;
    n -= (size_t)r;
  }
  return VG_OK;
}

static int cmp_offsets(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

static int cmp_names(const st_entry *x, const st_entry *y) {
  size_t m = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, m);
  if (c) return c;
  return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* The name index is sorted with qsort, which has no context argument in C11: the
 * comparator reads the entries through a thread-local pointer set around the call. */
static _Thread_local const st_entry *tl_entries;
static int cmp_idx_names(const void *a, const void *b) {
  return cmp_names(&tl_entries[*(const int *)a], &tl_entries[*(const int *)b]);
}

#define FAIL(st, ...) vg_fail((st), __VA_ARGS__)

/* Validates one tensor entry `v` named `name` into *e. */
static vg_status parse_entry(const char *name, size_t name_len, const vg_json *v, uint64_t data_len,
                             st_entry *e) {
  if (name_len > VG_ST_MAX_NAME)
    return FAIL(VG_ERR_LIMIT, "tensor name of %zu bytes exceeds the %d-byte cap (\"%.40s...\")", name_len,
                VG_ST_MAX_NAME, name);
  if (v->type != VG_JSON_OBJECT)
    return FAIL(VG_ERR_FORMAT, "tensor \"%s\": entry is a %s, not an object", name, vg_json_type_name(v->type));
  e->name = name;
  e->name_len = name_len;
  const vg_json *dt = vg_json_get(v, "dtype"), *shape = vg_json_get(v, "shape"),
                *off = vg_json_get(v, "data_offsets");
  if (!dt) return FAIL(VG_ERR_FORMAT, "tensor \"%s\": missing \"dtype\"", name);
  if (!vg_json_as_string(dt)) return FAIL(VG_ERR_FORMAT, "tensor \"%s\": \"dtype\" is not a string", name);
  e->dt = dtype_index(dt->str);
  if (e->dt < 0) return FAIL(VG_ERR_FORMAT, "tensor \"%s\": unknown dtype \"%.32s\"", name, dt->str);
  if (!shape) return FAIL(VG_ERR_FORMAT, "tensor \"%s\": missing \"shape\"", name);
  if (shape->type != VG_JSON_ARRAY) return FAIL(VG_ERR_FORMAT, "tensor \"%s\": \"shape\" is not an array", name);
  if (shape->count > VG_MAX_DIMS)
    return FAIL(VG_ERR_UNSUPPORTED, "tensor \"%s\": shape has %lld dims (Vigil supports at most %d)", name,
                (long long)shape->count, VG_MAX_DIMS);
  e->ndim = (int)shape->count;
  int64_t numel = 1, extent = 1;   /* extent: product of max(dim, 1), what strides reach */
  for (int d = 0; d < e->ndim; d++) {
    const vg_json *s = shape->items[d];
    int64_t v64;
    if (s->type != VG_JSON_NUMBER || !s->is_integer)
      return FAIL(VG_ERR_FORMAT, "tensor \"%s\": shape[%d] is not an integer", name, d);
    if (!vg_json_as_int64(s, &v64))
      return FAIL(VG_ERR_FORMAT, "tensor \"%s\": shape[%d] = %.40s does not fit in int64", name, d, s->str);
    if (v64 < 0) return FAIL(VG_ERR_FORMAT, "tensor \"%s\": shape[%d] = %lld is negative", name, d, (long long)v64);
    e->shape[d] = v64;
    if (__builtin_mul_overflow(numel, v64, &numel))
      return FAIL(VG_ERR_FORMAT, "tensor \"%s\": element count of the shape overflows int64", name);
    if (extent >= 0 && __builtin_mul_overflow(extent, v64 > 0 ? v64 : 1, &extent)) extent = -1;
  }
  e->numel = numel;
  int64_t nbytes;
  if (__builtin_mul_overflow(numel, (int64_t)DTYPES[e->dt].size, &nbytes))
    return FAIL(VG_ERR_FORMAT, "tensor \"%s\": byte size (%lld elements x %d bytes) overflows int64", name,
                (long long)numel, DTYPES[e->dt].size);
  /* an empty tensor ([0, 2^62, 8]) has 0 bytes, but its strides would overflow */
  if (extent < 0 || __builtin_mul_overflow(extent, (int64_t)DTYPES[e->dt].size, &(int64_t){0}))
    return FAIL(VG_ERR_FORMAT, "tensor \"%s\": the shape's dimensions multiply past int64 (strides overflow)", name);
  if (!off) return FAIL(VG_ERR_FORMAT, "tensor \"%s\": missing \"data_offsets\"", name);
  if (off->type != VG_JSON_ARRAY || off->count != 2)
    return FAIL(VG_ERR_FORMAT, "tensor \"%s\": \"data_offsets\" is not an array of 2 integers", name);
  int64_t o[2];
  for (int k = 0; k < 2; k++)
    if (!vg_json_as_int64(off->items[k], &o[k]) || o[k] < 0)
      return FAIL(VG_ERR_FORMAT, "tensor \"%s\": data_offsets[%d] is not a non-negative int64 integer", name, k);
  e->begin = (uint64_t)o[0];
  e->end = (uint64_t)o[1];
  if (e->end < e->begin)
    return FAIL(VG_ERR_FORMAT, "tensor \"%s\": data_offsets end %llu is before begin %llu", name,
                (unsigned long long)e->end, (unsigned long long)e->begin);
  if (e->end > data_len)
    return FAIL(VG_ERR_FORMAT, "tensor \"%s\": data_offsets end %llu is past the end of the data (%llu bytes)",
                name, (unsigned long long)e->end, (unsigned long long)data_len);
  if (e->end - e->begin != (uint64_t)nbytes)
    return FAIL(VG_ERR_FORMAT, "tensor \"%s\": dtype %s and shape need %lld bytes but data_offsets span %llu",
                name, DTYPES[e->dt].name, (long long)nbytes, (unsigned long long)(e->end - e->begin));
  return VG_OK;
}

/* An upper bound on the JSON values in hdr[0..n): 1 + commas + opening brackets outside
 * strings (each value is the first in its container, or follows a comma). Counted before
 * parsing, so the tree (~100 bytes a value) never grows past VG_ST_MAX_VALUES values. */
static uint64_t json_value_bound(const char *hdr, size_t n) {
  uint64_t k = 1;
  int in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = hdr[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == ',' || c == '[' || c == '{') {
      k++;
    }
  }
  return k;
}

/* Parses and validates hdr[0..hlen); the data buffer has data_len bytes. */
static vg_status parse_header(vg_st_file *f, const char *hdr, size_t hlen, uint64_t data_len) {
  size_t bad;
  if (!hlen || hdr[0] != '{')
    return FAIL(VG_ERR_FORMAT, "header is not a JSON object (first byte %s)", hlen ? "is not '{'" : "missing");
  if (!vg_utf8_valid(hdr, hlen, &bad)) return FAIL(VG_ERR_FORMAT, "header is not valid UTF-8 at byte %zu", bad);
  uint64_t nvals = json_value_bound(hdr, hlen);
  if (nvals > VG_ST_MAX_VALUES)
    return FAIL(VG_ERR_LIMIT, "header holds up to %llu JSON values, over the cap of %d (%d tensors need at most "
                "~16 each)", (unsigned long long)nvals, VG_ST_MAX_VALUES, VG_ST_MAX_TENSORS);
  vg_json_opts jo = {.max_depth = 8, .max_bytes = VG_ST_MAX_HEADER, .max_members = VG_ST_MAX_TENSORS + 1};
  vg_status st = vg_json_parse(hdr, hlen, &jo, &f->header);
  if (st) return vg_fail_prefix("header");
  const vg_json *root = f->header;
  int64_t ntens = root->count;
  for (int64_t i = 0; i < root->count; i++)
    if (!strcmp(root->keys[i], "__metadata__") && root->key_lens[i] == 12) ntens--;
  if (ntens > VG_ST_MAX_TENSORS)
    return FAIL(VG_ERR_LIMIT, "%lld tensors exceed the cap of %d", (long long)ntens, VG_ST_MAX_TENSORS);
  f->e = calloc((size_t)ntens + 1, sizeof *f->e);
  f->by_name = calloc((size_t)ntens + 1, sizeof *f->by_name);
  if (!f->e || !f->by_name) return FAIL(VG_ERR_NOMEM, "out of memory for %lld tensor entries", (long long)ntens);
  for (int64_t i = 0; i < root->count; i++) {
    const char *key = root->keys[i];
    const vg_json *v = root->items[i];
    if (root->key_lens[i] == 12 && !strcmp(key, "__metadata__")) {
      if (v->type != VG_JSON_OBJECT)
        return FAIL(VG_ERR_FORMAT, "__metadata__ is a %s, not an object of strings", vg_json_type_name(v->type));
      for (int64_t k = 0; k < v->count; k++) {
        if (v->items[k]->type != VG_JSON_STRING)
          return FAIL(VG_ERR_FORMAT, "__metadata__ value of \"%.100s\" is a %s, not a string (string -> string only)",
                      v->keys[k], vg_json_type_name(v->items[k]->type));
        if (v->key_lens[k] > VG_ST_MAX_NAME)
          return FAIL(VG_ERR_LIMIT, "__metadata__ key of %zu bytes exceeds the %d-byte cap", v->key_lens[k],
                      VG_ST_MAX_NAME);
      }
      f->meta = v;
      continue;
    }
    if ((st = parse_entry(key, root->key_lens[i], v, data_len, &f->e[f->n]))) return st;
    f->n++;
  }
  /* the tensors, in offset order, must tile [0, data_len) exactly */
  qsort(f->e, (size_t)f->n, sizeof *f->e, cmp_offsets);
  uint64_t at = 0;
  for (int i = 0; i < f->n; i++) {
    const st_entry *e = &f->e[i];
    if (e->begin > at)
      return FAIL(VG_ERR_FORMAT, "gap of %llu bytes before tensor \"%s\" (data_offsets begin %llu, expected %llu)",
                  (unsigned long long)(e->begin - at), e->name, (unsigned long long)e->begin,
                  (unsigned long long)at);
    if (e->begin < at)
      return FAIL(VG_ERR_FORMAT, "tensor \"%s\" overlaps the previous tensor (begins at %llu, previous ends at %llu)",
                  e->name, (unsigned long long)e->begin, (unsigned long long)at);
    at = e->end;
  }
  if (at != data_len)
    return FAIL(VG_ERR_FORMAT, "%llu trailing bytes after the last tensor (tensors cover %llu of %llu data bytes)",
                (unsigned long long)(data_len - at), (unsigned long long)at, (unsigned long long)data_len);
  for (int i = 0; i < f->n; i++) f->by_name[i] = i;
  tl_entries = f->e;
  qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_idx_names);
  tl_entries = NULL;
  return VG_OK;
}

static vg_st_file *new_file(const char *label) {
  vg_st_file *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->fd = -1;
  f->label = strdup(label ? label : "(memory)");
  if (!f->label) {
    free(f);
    return NULL;
  }
  return f;
}

static vg_status open_common(vg_st_file *f, uint64_t size, const unsigned char *first8) {
  if (VG_ST_BIG_ENDIAN) return FAIL(VG_ERR_UNSUPPORTED, "big-endian hosts are not supported");
  if (size == 0) return FAIL(VG_ERR_FORMAT, "empty file");
  if (size < 8) return FAIL(VG_ERR_FORMAT, "file of %llu bytes is too small for the 8-byte header length",
                            (unsigned long long)size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | first8[i];
  if (n > VG_ST_MAX_HEADER)
    return FAIL(VG_ERR_LIMIT, "header length %llu exceeds the %d-byte cap", (unsigned long long)n, VG_ST_MAX_HEADER);
  if (8 + n > size)
    return FAIL(VG_ERR_FORMAT, "header length %llu runs past the end of the file (%llu bytes)",
                (unsigned long long)n, (unsigned long long)size);
  f->data_start = 8 + n;
  f->data_len = size - 8 - n;
  vg_status st;
  if (f->mem) {
    st = parse_header(f, (const char *)f->mem + 8, (size_t)n, f->data_len);
  } else {
    char *hdr = malloc(n ? (size_t)n : 1);
    if (!hdr) return FAIL(VG_ERR_NOMEM, "out of memory for a %llu-byte header", (unsigned long long)n);
    st = read_at(f->fd, hdr, 8, (size_t)n);
    if (!st) st = parse_header(f, hdr, (size_t)n, f->data_len);
    free(hdr);   /* the JSON tree holds its own copies of every string */
  }
  return st;
}

vg_status vg_st_open(const char *path, vg_st_file **out) {
  if (!out || !path) return vg_fail(VG_ERR_ARG, "vg_st_open: NULL argument");
  *out = NULL;
  vg_st_file *f = new_file(path);
  if (!f) return vg_fail(VG_ERR_NOMEM, "%s: out of memory", path);
  vg_status st;
  unsigned char first8[8] = {0};
  uint64_t size = 0;
  /* regular files only: a directory, FIFO (never waited on), socket or device is refused
   * by name; the message already names the path */
  st = vg_file_open_read(path, &f->fd, &size);
  if (st) {
    vg_st_close(f);
    return st;
  }
  st = size >= 8 ? read_at(f->fd, first8, 0, 8) : VG_OK;
  if (!st) st = open_common(f, size, first8);
  if (st) {
    vg_fail_prefix("%s", path);
    vg_st_close(f);
    return st;
  }
  *out = f;
  return VG_OK;
}

vg_status vg_st_open_mem(const void *buf, size_t n, const char *label, vg_st_file **out) {
  if (!out || (!buf && n)) return vg_fail(VG_ERR_ARG, "vg_st_open_mem: NULL argument");
  *out = NULL;
  vg_st_file *f = new_file(label);
  if (!f) return vg_fail(VG_ERR_NOMEM, "out of memory");
  static const unsigned char zero[8];
  f->mem = buf ? buf : zero;
  vg_status st = open_common(f, n, n >= 8 ? buf : zero);
  if (st) {
    vg_fail_prefix("%s", f->label);
    vg_st_close(f);
    return st;
  }
  *out = f;
  return VG_OK;
}

void vg_st_close(vg_st_file *f) {
  if (!f) return;
  if (f->fd >= 0) close(f->fd);
  vg_json_free(f->header);
  free(f->e);
  free(f->by_name);
  free(f->label);
  free(f);
}

int vg_st_count(const vg_st_file *f) { return f ? f->n : 0; }

const char *vg_st_name(const vg_st_file *f, int i) {
  return (f && i >= 0 && i < f->n) ? f->e[i].name : NULL;
}

int vg_st_find(const vg_st_file *f, const char *name) {
  if (!f || !name) return -1;
  st_entry key = {.name = name, .name_len = strlen(name)};
  int lo = 0, hi = f->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = cmp_names(&key, &f->e[f->by_name[mid]]);
    if (!c) return f->by_name[mid];
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return -1;
}

vg_status vg_st_info_at(const vg_st_file *f, int i, vg_st_info *out) {
  if (!f || !out || i < 0 || i >= f->n) return vg_fail(VG_ERR_ARG, "vg_st_info_at: bad handle or index %d", i);
  const st_entry *e = &f->e[i];
  memset(out, 0, sizeof *out);
  out->name = e->name;
  out->dtype = DTYPES[e->dt].name;
  out->vg = DTYPES[e->dt].vg;
  out->ndim = e->ndim;
  memcpy(out->shape, e->shape, sizeof out->shape);
  out->numel = e->numel;
  out->begin = e->begin;
  out->end = e->end;
  return VG_OK;
}

/* The stored bytes of e, in a malloc'd buffer (F64 already converted to f32). */
static vg_status load_bytes(vg_st_file *f, const st_entry *e, void **out) {
  size_t nb = (size_t)(e->end - e->begin);
  void *buf = malloc(nb ? nb : 1);
  if (!buf) return vg_fail(VG_ERR_NOMEM, "out of memory for %zu bytes", nb);
  vg_status st = VG_OK;
  if (f->mem) memcpy(buf, f->mem + f->data_start + e->begin, nb);
  else st = read_at(f->fd, buf, f->data_start + e->begin, nb);
  if (st) {
    free(buf);
    return st;
  }
  if (e->dt == DT_F64) {   /* narrow in place: f32 slot k never overtakes f64 slot k */
    float *o = buf;
    for (int64_t k = 0; k < e->numel; k++) {
      double d;
      memcpy(&d, (char *)buf + 8 * k, 8);
      o[k] = (float)d;
    }
  }
  *out = buf;
  return VG_OK;
}

static void wrap(const st_entry *e, void *buf, vg_storage *s, vg_tensor *t) {
  memset(t, 0, sizeof *t);
  memset(s, 0, sizeof *s);
  t->dtype = DTYPES[e->dt].vg;
  t->device = VG_CPU;
  t->ndim = e->ndim;
  int64_t stride = 1;
  for (int d = e->ndim - 1; d >= 0; d--) {
    t->shape[d] = e->shape[d];
    t->stride[d] = stride;
    stride *= e->shape[d] ? e->shape[d] : 1;
  }
  s->data = buf;
  s->nbytes = (size_t)e->numel * vg_dtype_size(t->dtype);
  s->device = VG_CPU;
  t->storage = s;
}

static vg_status lookup(vg_st_file *f, const char *name, const st_entry **out) {
  int i = vg_st_find(f, name);
  if (i < 0) return vg_fail(VG_ERR_ARG, "%s: no tensor named \"%s\"", f->label, name);
  const st_entry *e = &f->e[i];
  if (DTYPES[e->dt].vg == VG_DTYPE_COUNT)
    return vg_fail(VG_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s, which Vigil does not read", f->label, name,
                   DTYPES[e->dt].name);
  *out = e;
  return VG_OK;
}

/* Copies e's data into dst (shape already checked). */
static vg_status copy_into(vg_st_file *f, const st_entry *e, vg_tensor *dst) {
  if (!e->numel) return VG_OK;
  void *buf = NULL;
  vg_status st = load_bytes(f, e, &buf);
  if (st) return vg_fail_prefix("%s: tensor \"%s\"", f->label, e->name);
  vg_storage s;
  vg_tensor src;
  wrap(e, buf, &s, &src);
  st = vg_copy_(dst, &src);
  free(buf);
  if (st) return vg_fail_prefix("%s: tensor \"%s\"", f->label, e->name);
  return VG_OK;
}

vg_status vg_st_get(vg_st_file *f, const char *name, vg_dtype want, vg_tensor **out) {
  if (!f || !name || !out) return vg_fail(VG_ERR_ARG, "vg_st_get: NULL argument");
  *out = NULL;
  const st_entry *e;
  vg_status st = lookup(f, name, &e);
  if (st) return st;
  if (want == VG_ST_AS_STORED) want = DTYPES[e->dt].vg;
  if ((int)want < 0 || want >= VG_DTYPE_COUNT) return vg_fail(VG_ERR_ARG, "vg_st_get: bad dtype %d", (int)want);
  /* sizes were checked against the file on open; a failed allocation is an error, not an abort */
  vg_tensor *t = vg_tensor_try_new(want, e->ndim, e->shape);
  if (!t) return vg_fail_prefix("%s: tensor \"%s\"", f->label, name);
  if (e->numel && want == DTYPES[e->dt].vg && e->dt != DT_F64) {   /* straight into the tensor */
    size_t nb = (size_t)(e->end - e->begin);
    if (f->mem) memcpy(vg_data(t), f->mem + f->data_start + e->begin, nb);
    else st = read_at(f->fd, vg_data(t), f->data_start + e->begin, nb);
    if (st) vg_fail_prefix("%s: tensor \"%s\"", f->label, name);
  } else {
    st = copy_into(f, e, t);
  }
  if (st) {
    vg_tensor_free(t);
    return st;
  }
  *out = t;
  return VG_OK;
}

vg_status vg_st_get_into(vg_st_file *f, const char *name, vg_tensor *dst) {
  if (!f || !name || !dst) return vg_fail(VG_ERR_ARG, "vg_st_get_into: NULL argument");
  const st_entry *e;
  vg_status st = lookup(f, name, &e);
  if (st) return st;
  bool same = dst->ndim == e->ndim;
  for (int d = 0; same && d < e->ndim; d++) same = dst->shape[d] == e->shape[d];
  if (!same) {
    char a[160], b[160];
    vg_tensor tmp;
    vg_storage s;
    wrap(e, NULL, &s, &tmp);
    return vg_fail(VG_ERR_ARG, "%s: tensor \"%s\" has shape %s but the destination is %s", f->label, name,
                   vg_shape_str(&tmp, a, sizeof a), vg_shape_str(dst, b, sizeof b));
  }
  return copy_into(f, e, dst);
}

int vg_st_meta_count(const vg_st_file *f) { return (f && f->meta) ? (int)f->meta->count : 0; }
const char *vg_st_meta_key(const vg_st_file *f, int i) {
  return (f && f->meta && i >= 0 && i < f->meta->count) ? f->meta->keys[i] : NULL;
}
const char *vg_st_meta_value(const vg_st_file *f, int i) {
  return (f && f->meta && i >= 0 && i < f->meta->count) ? f->meta->items[i]->str : NULL;
}
const char *vg_st_meta(const vg_st_file *f, const char *key) {
  return f ? vg_json_as_string(vg_json_get(f->meta, key)) : NULL;
}

/* ------------------------------------------------------------------ writing */

typedef struct {
  const char *name;
  size_t name_len;
  const vg_tensor *t;
  int dt;
} w_item;

static int cmp_write_order(const void *a, const void *b) {
  const w_item *x = a, *y = b;
  if (x->dt != y->dt) return x->dt > y->dt ? -1 : 1;   /* descending alignment */
  size_t m = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, m);
  if (c) return c;
  return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static vg_status write_all(int fd, const void *p, size_t n) {
  const unsigned char *c = p;
  while (n) {
    ssize_t r = write(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return vg_fail(VG_ERR_IO, "write failed: %s", strerror(errno));
    c += r;
    n -= (size_t)r;
  }
  return VG_OK;
}

/* Builds the padded header; items already sorted. */
static vg_status build_header(int n, const w_item *it, const vg_json *meta, char **out, size_t *out_len) {
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  if (meta && meta->count) {
    vg_jw_key(&w, "__metadata__");
    vg_jw_value(&w, meta);
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    const vg_tensor *t = it[i].t;
    uint64_t nb = (uint64_t)vg_numel(t) * (uint64_t)DTYPES[it[i].dt].size;
    vg_jw_key(&w, it[i].name);
    vg_jw_begin_object(&w);
    vg_jw_key(&w, "dtype");
    vg_jw_string(&w, DTYPES[it[i].dt].name);
    vg_jw_key(&w, "shape");
    vg_jw_begin_array(&w);
    for (int d = 0; d < t->ndim; d++) vg_jw_int64(&w, t->shape[d]);
    vg_jw_end_array(&w);
    vg_jw_key(&w, "data_offsets");
    vg_jw_begin_array(&w);
    vg_jw_int64(&w, (int64_t)off);
    vg_jw_int64(&w, (int64_t)(off + nb));
    vg_jw_end_array(&w);
    vg_jw_end_object(&w);
    off += nb;
  }
  vg_jw_end_object(&w);
  size_t len;
  char *s = vg_jw_finish(&w, &len);
  if (!s) return vg_last_status();
  size_t padded = (len + 7) & ~(size_t)7;
  if (padded > VG_ST_MAX_HEADER) {
    free(s);
    return vg_fail(VG_ERR_LIMIT, "header of %zu bytes exceeds the %d-byte cap", padded, VG_ST_MAX_HEADER);
  }
  char *p = realloc(s, padded + 1);
  if (!p) {
    free(s);
    return vg_fail(VG_ERR_NOMEM, "out of memory");
  }
  memset(p + len, ' ', padded - len);
  p[padded] = 0;
  *out = p;
  *out_len = padded;
  return VG_OK;
}

/* Validates the arguments and fills items (sorted). */
static vg_status check_args(int n, const char *const *names, vg_tensor *const *tensors, w_item *it) {
  for (int i = 0; i < n; i++) {
    if (!names[i] || !tensors[i]) return vg_fail(VG_ERR_ARG, "NULL name or tensor at index %d", i);
    size_t len = strlen(names[i]), bad;
    if (len > VG_ST_MAX_NAME)
      return vg_fail(VG_ERR_LIMIT, "tensor name of %zu bytes exceeds the %d-byte cap", len, VG_ST_MAX_NAME);
    if (!vg_utf8_valid(names[i], len, &bad))
      return vg_fail(VG_ERR_ARG, "tensor name at index %d is not valid UTF-8", i);
    if (!strcmp(names[i], "__metadata__")) return vg_fail(VG_ERR_ARG, "\"__metadata__\" is not a tensor name");
    int dt = dtype_of_vg(tensors[i]->dtype);
    if (dt < 0) return vg_fail(VG_ERR_ARG, "tensor \"%s\": bad dtype", names[i]);
    int64_t nb;
    if (__builtin_mul_overflow(vg_numel(tensors[i]), (int64_t)DTYPES[dt].size, &nb))
      return vg_fail(VG_ERR_ARG, "tensor \"%s\" too large", names[i]);
    it[i] = (w_item){names[i], len, tensors[i], dt};
  }
  /* duplicates: a by-name sorted copy (dt 0 for all, so the order is by name alone) */
  w_item *byname = malloc(((size_t)n + 1) * sizeof *byname);
  if (!byname) return vg_fail(VG_ERR_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) byname[i] = (w_item){it[i].name, it[i].name_len, NULL, 0};
  qsort(byname, (size_t)n, sizeof *byname, cmp_write_order);
  vg_status st = VG_OK;
  for (int i = 1; i < n && !st; i++)
    if (!cmp_write_order(&byname[i - 1], &byname[i]))
      st = vg_fail(VG_ERR_ARG, "duplicate tensor name \"%s\"", byname[i].name);
  free(byname);
  if (st) return st;
  qsort(it, (size_t)n, sizeof *it, cmp_write_order);
  return VG_OK;
}

static vg_status save_impl(const char *path, const char *tmp, int n, const w_item *it, const vg_json *meta) {
  char *hdr = NULL;
  size_t hlen = 0;
  vg_status st = build_header(n, it, meta, &hdr, &hlen);
  if (st) return st;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    free(hdr);
    return vg_fail(VG_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
  }
  vg_fault_point(path, "tmp");   /* crash-test points (base/file.h) */
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  st = write_all(fd, len8, 8);
  if (!st) st = write_all(fd, hdr, hlen);
  free(hdr);
  for (int i = 0; i < n && !st; i++) {
    size_t nb = (size_t)vg_numel(it[i].t) * (size_t)DTYPES[it[i].dt].size;
    if (!nb) continue;
    void *buf = malloc(nb);
    if (!buf) {
      st = vg_fail(VG_ERR_NOMEM, "out of memory for tensor \"%s\" (%zu bytes)", it[i].name, nb);
      break;
    }
    st = vg_to_host(it[i].t, it[i].t->dtype, buf);   /* any layout/device -> contiguous host bytes */
    if (!st) st = write_all(fd, buf, nb);
    free(buf);
    if (st) vg_fail_prefix("tensor \"%s\"", it[i].name);
  }
  if (!st) vg_fault_point(path, "write");
  if (!st && fsync(fd) != 0) st = vg_fail(VG_ERR_IO, "fsync failed: %s", strerror(errno));
  if (close(fd) != 0 && !st) st = vg_fail(VG_ERR_IO, "close failed: %s", strerror(errno));
  if (!st) vg_fault_point(path, "fsync");
  if (!st && rename(tmp, path) != 0) st = vg_fail(VG_ERR_IO, "rename of %s failed: %s", tmp, strerror(errno));
  if (st) {
    unlink(tmp);
    return st;
  }
  vg_fault_point(path, "rename");
  st = vg_file_fsync_dir(path);
  if (!st) vg_fault_point(path, "dirsync");
  return st;
}

vg_status vg_st_save(const char *path, int n, const char *const *names, vg_tensor *const *tensors,
                     const char *metadata_json) {
  if (!path || n < 0 || (n && (!names || !tensors))) return vg_fail(VG_ERR_ARG, "vg_st_save: bad arguments");
  if (VG_ST_BIG_ENDIAN) return vg_fail(VG_ERR_UNSUPPORTED, "%s: big-endian hosts are not supported", path);
  if (n > VG_ST_MAX_TENSORS)
    return vg_fail(VG_ERR_LIMIT, "%s: %d tensors exceed the cap of %d", path, n, VG_ST_MAX_TENSORS);
  vg_json *meta = NULL;
  vg_status st = VG_OK;
  if (metadata_json) {
    st = vg_json_parse(metadata_json, strlen(metadata_json), NULL, &meta);
    if (st) return vg_fail_prefix("%s: metadata", path);
    if (meta->type != VG_JSON_OBJECT) st = vg_fail(VG_ERR_ARG, "%s: metadata is not a JSON object", path);
    for (int64_t k = 0; !st && k < meta->count; k++)
      if (meta->items[k]->type != VG_JSON_STRING)
        st = vg_fail(VG_ERR_ARG, "%s: metadata value of \"%s\" is not a string (string -> string only)", path,
                     meta->keys[k]);
    if (st) {
      vg_json_free(meta);
      return st;
    }
  }
  w_item *it = calloc((size_t)n + 1, sizeof *it);
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 5);
  if (!it || !tmp) {
    st = vg_fail(VG_ERR_NOMEM, "%s: out of memory", path);
  } else {
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    st = check_args(n, names, tensors, it);
    if (!st) st = save_impl(path, tmp, n, it, meta);
    if (st) vg_fail_prefix("%s", path);
  }
  free(it);
  free(tmp);
  vg_json_free(meta);
  return st;
}
