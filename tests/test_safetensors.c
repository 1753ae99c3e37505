/* test_safetensors.c — safetensors round trips (all Vigil dtypes, non-contiguous, 0-d and
 * empty tensors, metadata), files written by the reference Python package (byte-exact
 * re-write), a corpus of malformed files each refused with its own message, truncation
 * and bit-flip robustness, and the atomic write (no temp file left, old file kept). */
#include "tests/vgtest.h"
#include "nn/safetensors.h"
#include "base/json.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

/* test_sparse asks for a 4 TiB tensor that must fail cleanly */
VG_TEST_ALLOCATOR_MAY_RETURN_NULL()

static char g_dir[64];

/* A path in the test's temp directory (8 rotating buffers). */
static const char *tpath(const char *name) {
  static char buf[8][256];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *fp = fopen(path, "wb");
  if (!fp) { perror(path); exit(1); }
  if (n && fwrite(b, 1, n, fp) != n) { perror(path); exit(1); }
  fclose(fp);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, fp);
  fclose(fp);
  return b;
}

/* A file: u64 header length (hlen_override if nonzero), header text, data_len zero bytes. */
static unsigned char *make(const char *header, uint64_t hlen_override, size_t data_len, size_t *n) {
  size_t h = strlen(header);
  *n = 8 + h + data_len;
  unsigned char *b = calloc(*n + 1, 1);
  uint64_t L = hlen_override ? hlen_override : h;
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(L >> (8 * i));
  memcpy(b + 8, header, h);
  return b;
}

/* Expects bytes refused from a file and from memory, message containing `want`
 * (and, from the file, the file's path). */
static void refuse_bytes(const unsigned char *b, size_t n, const char *want, const char *what) {
  const char *p = tpath("bad.safetensors");
  write_bytes(p, b, n);
  vg_st_file *f = NULL;
  vg_clear_error();
  vg_status st = vg_st_open(p, &f);
  int ok = st != VG_OK && !f && strstr(vg_last_error(), want) && strstr(vg_last_error(), p);
  VG_CHECK(ok, "refuse %-30s -> %s", what, vg_last_error());
  vg_st_close(f);
  f = NULL;
  st = vg_st_open_mem(b, n, "mem", &f);
  VG_CHECK(st != VG_OK && !f && strstr(vg_last_error(), want), "refuse %-30s (memory)", what);
  vg_st_close(f);
}

static void refuse(const char *header, size_t data_len, const char *want, const char *what) {
  size_t n;
  unsigned char *b = make(header, 0, data_len, &n);
  refuse_bytes(b, n, want, what);
  free(b);
}

/* ------------------------------------------------------------ malformed corpus */
static void test_corpus(void) {
  size_t n;
  unsigned char *b;
  refuse_bytes((const unsigned char *)"", 0, "empty file", "empty file");
  refuse_bytes((const unsigned char *)"\x02\0\0\0\0", 5, "too small for the 8-byte header length", "5-byte file");
  b = make("{}", 200, 0, &n);
  refuse_bytes(b, n, "runs past the end of the file", "header length > file");
  free(b);
  b = make("{}", (uint64_t)1 << 40, 0, &n);
  refuse_bytes(b, n, "exceeds the 100000000-byte cap", "huge header length");
  free(b);
  b = make("{}", UINT64_MAX, 0, &n);
  refuse_bytes(b, n, "header length 18446744073709551615 exceeds", "header length 2^64-1");
  free(b);
  refuse("{\"a\":", 0, "header: JSON: unexpected end of input", "bad JSON (truncated)");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "trailing data after the value",
         "garbage after the header JSON");
  refuse("[1, 2]", 0, "header is not a JSON object", "header is an array");
  refuse("{\"a\":5}", 0, "entry is a number, not an object", "entry not an object");
  refuse("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing \"dtype\"", "missing dtype");
  refuse("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" is not a string", "dtype not a string");
  refuse("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype \"F128\"", "unknown dtype");
  refuse("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing \"shape\"", "missing shape");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, "\"shape\" is not an array", "shape not an array");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, "shape[0] is not an integer", "shape dim 1.0");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,99999999999999999999],\"data_offsets\":[0,4]}}", 4,
         "shape[1] = 99999999999999999999 does not fit in int64", "shape dim overflowing int64");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0] = -1 is negative", "negative dim");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         "element count of the shape overflows", "shape product overflow");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}", 4,
         "byte size (2305843009213693952 elements x 8 bytes) overflows", "shape * dtype size overflow");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "shape has 9 dims", "9-d tensor");
  /* empty tensors whose other dims multiply past int64: 0 bytes, but their strides overflowed
   * (UBSan: signed overflow in vg_contiguous_strides on vg_st_get) */
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904,8],\"data_offsets\":[0,0]}}", 0,
         "dimensions multiply past int64", "empty [0, 2^62, 8]");
  refuse("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,0,4294967296],\"data_offsets\":[0,0]}}", 0,
         "dimensions multiply past int64", "empty [2^32, 0, 2^32]");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[0,2305843009213693952],\"data_offsets\":[0,0]}}", 0,
         "dimensions multiply past int64", "empty [0, 2^61] f64 (strides in bytes overflow)");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing \"data_offsets\"", "missing data_offsets");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "not an array of 2 integers",
         "data_offsets of 3");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "data_offsets[0] is not a non-negative",
         "negative offset");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, "end 0 is before begin 4", "end < begin");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
         "data_offsets end 8 is past the end of the data (4 bytes)", "offsets past the end");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "need 8 bytes but data_offsets span 4",
         "size vs dtype*shape");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "\"b\" overlaps the previous tensor",
         "overlapping offsets");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "gap of 4 bytes before tensor \"b\"",
         "gap between offsets");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "expected 0)", "first tensor not at 0");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "4 trailing bytes after the last tensor",
         "trailing bytes");
  refuse("{\"__metadata__\":[1]}", 0, "__metadata__ is a array, not an object", "metadata not an object");
  refuse("{\"__metadata__\":{\"epoch\":3}}", 0, "value of \"epoch\" is a number, not a string", "metadata value not a string");
  refuse("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "duplicate key \"a\"", "duplicate tensor names");
  refuse("{\"a\\u00ff\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},\"\xff\":1}", 0,
         "header is not valid UTF-8 at byte 60", "non-UTF-8 name");
  {
    char *h = malloc(4096);
    char name[2001];
    memset(name, 'n', 2000);
    name[2000] = 0;
    snprintf(h, 4096, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", name);
    refuse(h, 0, "tensor name of 2000 bytes exceeds the 1024-byte cap", "name too long");
    free(h);
  }
  {
    int cnt = VG_ST_MAX_TENSORS + 1;
    size_t cap = (size_t)cnt * 64 + 16, k = 0;
    char *h = malloc(cap);
    h[k++] = '{';
    for (int i = 0; i < cnt; i++)
      k += (size_t)snprintf(h + k, cap - k, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}",
                            i ? "," : "", i);
    h[k++] = '}';
    h[k] = 0;
    refuse(h, 0, "65537 tensors exceed the cap of 65536", "too many tensors");
    free(h);
  }
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{}}", 4, "duplicate key", "duplicate (2nd not an entry)");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4, "data_offsets[1] is not a non-negative",
         "offset as a string");
  VG_CHECK(vg_st_open(tpath("does-not-exist"), &(vg_st_file *){NULL}) == VG_ERR_IO &&
           strstr(vg_last_error(), "does-not-exist: cannot open"), "missing file -> %s", vg_last_error());
  VG_CHECK(vg_st_open(g_dir, &(vg_st_file *){NULL}) != VG_OK && strstr(vg_last_error(), "not a regular file"),
           "directory refused -> %s", vg_last_error());
  /* a FIFO is refused at once (opening one with no writer must not hang), a device by name */
  const char *fifo = tpath("pipe.safetensors");
  int made = mkfifo(fifo, 0600) == 0;
  vg_st_file *ff = NULL;
  VG_CHECK(made && vg_st_open(fifo, &ff) == VG_ERR_IO && !ff && strstr(vg_last_error(), "is a FIFO") &&
           strstr(vg_last_error(), fifo), "FIFO refused without waiting -> %s", vg_last_error());
  unlink(fifo);
  VG_CHECK(vg_st_open("/dev/zero", &ff) == VG_ERR_IO && !ff && strstr(vg_last_error(), "character device"),
           "/dev/zero refused -> %s", vg_last_error());
  /* header memory: the JSON values are counted before parsing (an ignored extra field of
   * 2^20 zeros would be ~100 MB of tree from a 2 MB header) */
  {
    size_t nz = ((size_t)1 << 20) + 8, k = 0, cap = 2 * nz + 128;
    char *h = malloc(cap);
    k += (size_t)snprintf(h, cap, "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":[");
    for (size_t i = 0; i < nz; i++) { h[k++] = i ? ',' : ' '; h[k++] = '0'; }
    h[k++] = ']'; h[k++] = '}'; h[k++] = '}'; h[k] = 0;
    refuse(h, 0, "JSON values, over the cap of 1048576", "2^20 JSON values in an ignored field");
    /* the same count inside strings does not count */
    k = (size_t)snprintf(h, cap, "{\"__metadata__\":{\"m\":\"");
    for (size_t i = 0; i < nz; i++) h[k++] = ',';
    k += (size_t)snprintf(h + k, cap - k, "\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
    size_t bn;
    unsigned char *b = make(h, 0, 1, &bn);
    vg_st_file *mf = NULL;
    VG_CHECK(vg_st_open_mem(b, bn, "mem", &mf) == VG_OK && vg_st_count(mf) == 1 && strlen(vg_st_meta(mf, "m")) == nz,
             "2^20 commas inside a metadata string are not values: opens");
    vg_st_close(mf);
    free(b);
    free(h);
  }
}

/* ------------------------------------------------------------ round trip */
static vg_tensor *ints(vg_dtype dt, int ndim, const int64_t *shape, int64_t mul, int64_t add) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  vg_tensor *t = vg_tensor_new(dt, ndim, shape);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = i * mul + add;
    switch (dt) {
      case VG_I64: ((int64_t *)vg_data(t))[i] = v; break;
      case VG_I32: ((int32_t *)vg_data(t))[i] = (int32_t)v; break;
      case VG_U8: ((uint8_t *)vg_data(t))[i] = (uint8_t)v; break;
      case VG_BOOL: ((uint8_t *)vg_data(t))[i] = (uint8_t)(v & 1); break;
      case VG_F32: case VG_F16: case VG_BF16: case VG_DTYPE_COUNT: break;
    }
  }
  return t;
}

static bool same_values(const vg_tensor *a, const vg_tensor *b) {
  if (a->dtype != b->dtype || a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return false;
  size_t nb = (size_t)vg_numel(a) * vg_dtype_size(a->dtype);
  void *x = malloc(nb + 1), *y = malloc(nb + 1);
  vg_to_host(a, a->dtype, x);
  vg_to_host(b, b->dtype, y);
  bool eq = !memcmp(x, y, nb);
  free(x);
  free(y);
  return eq;
}

static void test_roundtrip(void) {
  vg_tensor *base = vg_randn(3, (int64_t[]){2, 3, 4}, 7);
  vg_tensor *m = vg_randn(2, (int64_t[]){3, 5}, 8);
  vg_tensor *mt = vg_transpose(m, 0, 1);            /* non-contiguous (5, 3) view */
  vg_tensor *h = vg_cast(base, VG_F16), *bf = vg_cast(m, VG_BF16);
  vg_tensor *i64 = ints(VG_I64, 1, (int64_t[]){5}, 1000000000007LL, -3);
  vg_tensor *i32 = ints(VG_I32, 2, (int64_t[]){2, 2}, -100003, 7);
  vg_tensor *u8 = ints(VG_U8, 1, (int64_t[]){9}, 31, 0);
  vg_tensor *bl = ints(VG_BOOL, 1, (int64_t[]){3}, 1, 0);
  vg_tensor *sc = vg_scalar(-0.75f);
  vg_tensor *em = vg_tensor_new(VG_F32, 2, (int64_t[]){0, 5});
  const char *names[] = {"base", "m.T", "half", "brain", "steps", "ints", "bytes", "mask", "scalar", "empty"};
  vg_tensor *ts[] = {base, mt, h, bf, i64, i32, u8, bl, sc, em};
  int n = 10;
  const char *p = tpath("rt.safetensors");
  vg_status st = vg_st_save(p, n, names, ts, "{\"epoch\": \"3\", \"q\": \"a\\\"b\"}");
  VG_CHECK(st == VG_OK, "save 10 tensors: %s", vg_last_error());
  VG_CHECK(access(tpath("rt.safetensors.tmp"), F_OK) != 0, "no .tmp left behind");
  vg_st_file *f = NULL;
  st = vg_st_open(p, &f);
  VG_CHECK(st == VG_OK && vg_st_count(f) == n, "reopen: %d tensors (%s)", vg_st_count(f), vg_last_error());
  if (!f) return;
  VG_CHECK(vg_st_meta_count(f) == 2 && !strcmp(vg_st_meta(f, "epoch"), "3") && !strcmp(vg_st_meta(f, "q"), "a\"b") &&
           !vg_st_meta(f, "nope"), "metadata round trip");
  /* file layout: I64 first, then F32 by name, ...; every tensor aligned */
  vg_st_info in;
  vg_st_info_at(f, 0, &in);
  VG_CHECK(!strcmp(in.name, "steps") && !strcmp(in.dtype, "I64"), "largest dtype first (%s)", in.name);
  vg_st_info_at(f, 1, &in);
  VG_CHECK(!strcmp(in.name, "base"), "then by name within a dtype (%s)", in.name);
  bool aligned = true;
  for (int i = 0; i < n; i++) {
    vg_st_info_at(f, i, &in);
    aligned &= in.begin % vg_dtype_size(in.vg) == 0;
  }
  size_t fb;
  unsigned char *bytes = read_bytes(p, &fb);
  VG_CHECK(aligned && bytes && bytes[0] % 8 == 0, "header padded to 8, data aligned");
  free(bytes);
  for (int i = 0; i < n; i++) {
    vg_tensor *t = NULL;
    st = vg_st_get(f, names[i], VG_ST_AS_STORED, &t);
    VG_CHECK(st == VG_OK && same_values(t, ts[i]), "round trip %-6s %s exact", names[i], vg_dtype_name(ts[i]->dtype));
    vg_tensor_free(t);
  }
  vg_tensor *t = NULL;
  vg_st_get(f, "half", VG_F32, &t);
  vg_tensor *want = vg_cast(h, VG_F32);
  VG_CHECK(t && t->dtype == VG_F32 && same_values(t, want), "f16 -> f32 on read");
  vg_tensor_free(t);
  vg_tensor_free(want);
  vg_st_get(f, "steps", VG_F32, &t);
  VG_CHECK(t && vg_f32(t)[4] == (float)(4 * 1000000000007LL - 3), "i64 -> f32 on read");
  vg_tensor_free(t);
  vg_st_get(f, "scalar", VG_ST_AS_STORED, &t);
  VG_CHECK(t && t->ndim == 0 && vg_item(t) == -0.75f, "0-d tensor");
  vg_tensor_free(t);
  vg_st_get(f, "empty", VG_ST_AS_STORED, &t);
  VG_CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 5, "empty (0, 5) tensor");
  vg_tensor_free(t);
  /* into an existing non-contiguous f32 destination */
  vg_tensor *dst = vg_tensor_new(VG_F32, 2, (int64_t[]){3, 5});
  vg_tensor *dstT = vg_transpose(dst, 0, 1);
  st = vg_st_get_into(f, "m.T", dstT);
  VG_CHECK(st == VG_OK && same_values(dst, m), "get_into a transposed destination");
  vg_tensor *wrong = vg_tensor_new(VG_F32, 2, (int64_t[]){3, 5});
  st = vg_st_get_into(f, "m.T", wrong);
  VG_CHECK(st == VG_ERR_ARG && strstr(vg_last_error(), "has shape [5, 3] but the destination is [3, 5]"),
           "get_into shape mismatch -> %s", vg_last_error());
  st = vg_st_get(f, "nope", VG_F32, &t);
  VG_CHECK(st == VG_ERR_ARG && strstr(vg_last_error(), "no tensor named \"nope\"") && strstr(vg_last_error(), p),
           "unknown name -> %s", vg_last_error());
  vg_st_close(f);
  /* every prefix of a valid file is refused, without crashing */
  bytes = read_bytes(p, &fb);
  int refused = 0;
  for (size_t k = 0; k < fb; k++) {
    vg_st_file *g = NULL;
    if (vg_st_open_mem(bytes, k, "prefix", &g) != VG_OK) refused++;
    vg_st_close(g);
  }
  VG_CHECK(refused == (int)fb, "all %zu truncations refused (%d)", fb, refused);
  /* single-byte corruptions of the header: refused or still fully readable */
  size_t hl = bytes[0] | (size_t)bytes[1] << 8;
  int opened = 0, readable = 0;
  for (size_t k = 0; k < 8 + hl; k++) {
    unsigned char keep = bytes[k];
    bytes[k] ^= (unsigned char)(1u << (k % 8));
    vg_st_file *g = NULL;
    if (vg_st_open_mem(bytes, fb, "flip", &g) == VG_OK) {
      opened++;
      bool all = true;
      for (int i = 0; i < vg_st_count(g); i++) {
        vg_tensor *x = NULL;
        vg_status s2 = vg_st_get(g, vg_st_name(g, i), VG_F32, &x);
        all &= s2 == VG_OK || s2 == VG_ERR_UNSUPPORTED;
        vg_tensor_free(x);
      }
      readable += all;
    }
    vg_st_close(g);
    bytes[k] = keep;
  }
  VG_CHECK(opened == readable && opened < (int)(8 + hl) / 2, "bit flips: %d of %zu opened, all readable", opened, 8 + hl);
  free(bytes);
  /* writer argument errors */
  vg_tensor *two[] = {base, m};
  const char *dup[] = {"w", "w"};
  VG_CHECK(vg_st_save(tpath("x.safetensors"), 2, dup, two, NULL) == VG_ERR_ARG &&
           strstr(vg_last_error(), "duplicate tensor name \"w\""), "save: duplicate names -> %s", vg_last_error());
  const char *meta_name[] = {"__metadata__"};
  VG_CHECK(vg_st_save(tpath("x.safetensors"), 1, meta_name, two, NULL) == VG_ERR_ARG, "save: __metadata__ as a name");
  const char *ok1[] = {"w"};
  VG_CHECK(vg_st_save(tpath("x.safetensors"), 1, ok1, two, "{\"a\": 1}") == VG_ERR_ARG &&
           strstr(vg_last_error(), "not a string"), "save: metadata value not a string -> %s", vg_last_error());
  VG_CHECK(vg_st_save(tpath("x.safetensors"), 1, ok1, two, "[1") != VG_OK && strstr(vg_last_error(), "metadata"),
           "save: metadata bad JSON -> %s", vg_last_error());
  VG_CHECK(vg_st_save(tpath("nodir/x.safetensors"), 1, ok1, two, NULL) == VG_ERR_IO &&
           strstr(vg_last_error(), "nodir/x.safetensors"), "save into a missing directory -> %s", vg_last_error());
  VG_CHECK(access(tpath("x.safetensors"), F_OK) != 0, "failed saves created nothing");
  /* a file with no tensors */
  VG_CHECK(vg_st_save(tpath("none.safetensors"), 0, NULL, NULL, NULL) == VG_OK &&
           vg_st_open(tpath("none.safetensors"), &f) == VG_OK && vg_st_count(f) == 0, "empty file set round trip");
  vg_st_close(f);
  vg_tensor_free(dst);
  vg_tensor_free(dstT);
  vg_tensor_free(wrong);
  vg_tensor *all[] = {base, m, mt, h, bf, i64, i32, u8, bl, sc, em};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) vg_tensor_free(all[i]);
}

/* ------------------------------------------------------------ atomic write */
static void test_atomic(void) {
  const char *p = tpath("ckpt.safetensors");
  vg_tensor *a = vg_randn(1, (int64_t[]){16}, 1);
  vg_tensor *big = vg_randn(1, (int64_t[]){1 << 16}, 2);
  const char *nm[] = {"a"};
  VG_CHECK(vg_st_save(p, 1, nm, &a, NULL) == VG_OK, "first save");
  size_t n0, n1;
  unsigned char *before = read_bytes(p, &n0);
  /* 1: the temp path cannot be created */
  mkdir(tpath("ckpt.safetensors.tmp"), 0755);
  VG_CHECK(vg_st_save(p, 1, nm, &big, NULL) == VG_ERR_IO && strstr(vg_last_error(), "cannot create"),
           "unwritable temp -> %s", vg_last_error());
  rmdir(tpath("ckpt.safetensors.tmp"));
  unsigned char *after = read_bytes(p, &n1);
  VG_CHECK(n0 == n1 && !memcmp(before, after, n0), "old file intact after a failed create");
  free(after);
  /* 2: the write fails half-way (file size limit: EFBIG) */
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 4096;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  setrlimit(RLIMIT_FSIZE, &lim);
  vg_status st = vg_st_save(p, 1, nm, &big, NULL);
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, prev);
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "write failed") && strstr(vg_last_error(), p),
           "write failing half-way -> %s", vg_last_error());
  VG_CHECK(access(tpath("ckpt.safetensors.tmp"), F_OK) != 0, "no .tmp left after a failed write");
  after = read_bytes(p, &n1);
  VG_CHECK(n0 == n1 && !memcmp(before, after, n0), "old file intact after a failed write");
  free(after);
  free(before);
  /* 3: a successful save replaces it */
  VG_CHECK(vg_st_save(p, 1, nm, &big, NULL) == VG_OK, "second save");
  vg_st_file *f = NULL;
  vg_tensor *t = NULL;
  VG_CHECK(vg_st_open(p, &f) == VG_OK && vg_st_get(f, "a", VG_F32, &t) == VG_OK && same_values(t, big),
           "replaced atomically with the new contents");
  vg_tensor_free(t);
  vg_st_close(f);
  vg_tensor_free(a);
  vg_tensor_free(big);
}

/* ------------------------------------------------------------ reference-written files */
static float fv(int i) { return (float)(((i * 37) % 101 - 50) / 8.0); }

static vg_tensor *get(vg_st_file *f, const char *name, vg_dtype dt) {
  vg_tensor *t = NULL;
  if (vg_st_get(f, name, dt, &t) != VG_OK) printf("# %s\n", vg_last_error());
  return t;
}

static void test_reference_files(void) {
  char path[512];
  snprintf(path, sizeof path, "%s", vg_test_fixture("safetensors/torch_mixed.safetensors"));
  vg_st_file *f = NULL;
  vg_status st = vg_st_open(path, &f);
  VG_CHECK(st == VG_OK && vg_st_count(f) == 9, "torch_mixed opens: %s", st ? vg_last_error() : "9 tensors");
  if (!f) return;
  VG_CHECK(!strcmp(vg_st_meta(f, "format"), "pt") && !strcmp(vg_st_meta(f, "note"), "caf\xc3\xa9"), "metadata");
  vg_tensor *t = get(f, "layer1.0.conv1.weight", VG_ST_AS_STORED);
  bool ok = t && t->dtype == VG_F32 && t->ndim == 3 && t->shape[0] == 2 && t->shape[1] == 3 && t->shape[2] == 4;
  for (int i = 0; ok && i < 24; i++) ok = vg_f32(t)[i] == fv(i);
  VG_CHECK(ok, "f32 (2,3,4) exact");
  vg_tensor_free(t);
  t = get(f, "half", VG_F32);
  ok = t && t->shape[0] == 5;
  for (int i = 0; ok && i < 5; i++) ok = vg_f32(t)[i] == fv(i);
  VG_CHECK(ok, "f16 -> f32 exact");
  vg_tensor_free(t);
  t = get(f, "brain", VG_ST_AS_STORED);
  vg_tensor *t32 = t ? vg_cast(t, VG_F32) : NULL;
  ok = t && t->dtype == VG_BF16 && t->shape[0] == 3 && t->shape[1] == 2;
  for (int i = 0; ok && i < 6; i++) ok = vg_f32(t32)[i] == fv(i);
  VG_CHECK(ok, "bf16 (3,2) exact");
  vg_tensor_free(t);
  vg_tensor_free(t32);
  t = get(f, "steps", VG_ST_AS_STORED);
  ok = t && t->dtype == VG_I64;
  for (int i = 0; ok && i < 4; i++) ok = ((int64_t *)vg_data(t))[i] == (i - 3) * 1000000000007LL;
  VG_CHECK(ok, "i64 exact (64-bit values)");
  vg_tensor_free(t);
  t = get(f, "ints", VG_ST_AS_STORED);
  ok = t && t->dtype == VG_I32;
  for (int i = 0; ok && i < 4; i++) ok = ((int32_t *)vg_data(t))[i] == (i - 5) * 100003;
  VG_CHECK(ok, "i32 exact");
  vg_tensor_free(t);
  t = get(f, "bytes", VG_ST_AS_STORED);
  ok = t && t->dtype == VG_U8;
  for (int i = 0; ok && i < 7; i++) ok = ((uint8_t *)vg_data(t))[i] == (i * 7) % 256;
  VG_CHECK(ok, "u8 exact");
  vg_tensor_free(t);
  t = get(f, "mask", VG_ST_AS_STORED);
  ok = t && t->dtype == VG_BOOL;
  for (int i = 0; ok && i < 6; i++) ok = ((uint8_t *)vg_data(t))[i] == (i % 3 == 0);
  VG_CHECK(ok, "bool exact");
  vg_tensor_free(t);
  t = get(f, "scalar", VG_ST_AS_STORED);
  VG_CHECK(t && t->ndim == 0 && vg_item(t) == 2.5f, "0-d scalar");
  vg_tensor_free(t);
  t = get(f, "empty", VG_ST_AS_STORED);
  VG_CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 3, "empty (0,3)");
  vg_tensor_free(t);
  /* re-write what we read: byte-identical to the reference writer's file (same order,
   * same header text, same padding), metadata given in the file's key order */
  int n = vg_st_count(f);
  const char *names[16];
  vg_tensor *ts[16];
  for (int i = 0; i < n; i++) {
    names[i] = vg_st_name(f, i);
    ts[i] = get(f, names[i], VG_ST_AS_STORED);
  }
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  for (int i = 0; i < vg_st_meta_count(f); i++) {
    vg_jw_key(&w, vg_st_meta_key(f, i));
    vg_jw_string(&w, vg_st_meta_value(f, i));
  }
  vg_jw_end_object(&w);
  char *meta = vg_jw_finish(&w, NULL);
  st = vg_st_save(tpath("rewrite.safetensors"), n, names, ts, meta);
  size_t na, nb;
  unsigned char *a = read_bytes(path, &na), *b = read_bytes(tpath("rewrite.safetensors"), &nb);
  VG_CHECK(st == VG_OK && a && b && na == nb && !memcmp(a, b, na), "re-written file is byte-identical to the reference's");
  free(a);
  free(b);
  free(meta);
  for (int i = 0; i < n; i++) vg_tensor_free(ts[i]);
  vg_st_close(f);

  snprintf(path, sizeof path, "%s", vg_test_fixture("safetensors/numpy_f64.safetensors"));
  st = vg_st_open(path, &f);
  VG_CHECK(st == VG_OK && vg_st_count(f) == 2 && vg_st_meta_count(f) == 0, "numpy_f64 opens");
  if (f) {
    t = get(f, "double", VG_ST_AS_STORED);
    ok = t && t->dtype == VG_F32 && t->shape[0] == 3 && t->shape[1] == 4;
    for (int i = 0; ok && i < 12; i++) ok = vg_f32(t)[i] == (float)(0.1 * i);
    VG_CHECK(ok, "f64 -> f32 exact (float(0.1 i))");
    vg_tensor_free(t);
    t = get(f, "double", VG_F16);
    VG_CHECK(t && t->dtype == VG_F16, "f64 -> f16 on request");
    vg_tensor_free(t);
    t = get(f, "one", VG_ST_AS_STORED);
    VG_CHECK(t && vg_item(t) == -1.5f, "f32 scalar-vector");
    vg_tensor_free(t);
    vg_st_close(f);
  }
  snprintf(path, sizeof path, "%s", vg_test_fixture("safetensors/numpy_i16.safetensors"));
  st = vg_st_open(path, &f);
  VG_CHECK(st == VG_OK, "numpy_i16 opens (I16 is a valid format dtype)");
  if (f) {
    vg_st_info in;
    vg_st_info_at(f, vg_st_find(f, "shorts"), &in);
    VG_CHECK(!strcmp(in.dtype, "I16") && in.vg == VG_DTYPE_COUNT && in.numel == 5, "info reports I16");
    t = NULL;
    st = vg_st_get(f, "shorts", VG_F32, &t);
    VG_CHECK(st == VG_ERR_UNSUPPORTED && !t && strstr(vg_last_error(), "dtype I16, which Vigil does not read"),
             "I16 read refused -> %s", vg_last_error());
    t = get(f, "u", VG_I64);
    VG_CHECK(t && ((int64_t *)vg_data(t))[1] == 255, "u8 -> i64 beside it");
    vg_tensor_free(t);
    vg_st_close(f);
  }
}

static void rm_dir(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

/* A sparse 4 TiB file whose one tensor is valid: opening works (nothing but the header
 * is read); reading it is VG_ERR_NOMEM with a message, never an abort. */
static void test_sparse(void) {
  FILE *oc = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = oc ? fgetc(oc) : -1;
  if (oc) fclose(oc);
  if (mode != '0' && mode != '2') {   /* "always overcommit" could hand out 4 TiB and then OOM on the memset */
    printf("SKIP sparse 4 TiB tensor (vm.overcommit_memory is not 0 or 2)\n");
    return;
  }
  uint64_t nb = (uint64_t)1 << 42;
  char hdr[160];
  int hl = snprintf(hdr, sizeof hdr, "{\"big\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
                    (unsigned long long)nb, (unsigned long long)nb);
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  const char *p = tpath("sparse.safetensors");
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int ok = fd >= 0 && write(fd, len8, 8) == 8 && write(fd, hdr, (size_t)hl) == hl &&
           ftruncate(fd, (off_t)(8 + (uint64_t)hl + nb)) == 0;
  if (fd >= 0) close(fd);
  if (!ok) {
    printf("SKIP sparse 4 TiB tensor (this file system cannot hold a 4 TiB sparse file)\n");
    unlink(p);
    return;
  }
  vg_st_file *f = NULL;
  vg_tensor *t = NULL;
  ok = vg_st_open(p, &f) == VG_OK && vg_st_count(f) == 1;
  vg_clear_error();
  vg_status st = ok ? vg_st_get(f, "big", VG_ST_AS_STORED, &t) : VG_OK;
  VG_CHECK(ok && st == VG_ERR_NOMEM && !t && strstr(vg_last_error(), "out of memory for a u8 tensor of 4398046511104 bytes") &&
           strstr(vg_last_error(), "tensor \"big\""),
           "sparse 4 TiB tensor: opens, reading is VG_ERR_NOMEM (no abort) -> %s", vg_last_error());
  vg_st_close(f);
  unlink(p);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/vg_st_XXXXXX");
  if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
  test_corpus();
  test_roundtrip();
  test_atomic();
  test_reference_files();
  test_sparse();
  rm_dir();
  return vg_test_finish();
}
