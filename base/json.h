/* json.h — a small strict JSON (RFC 8259) parser and writer, for safetensors headers,
 * dataset configs (MVTec LOCO defects_config.json), run configs and reports.
 *
 *   vg_json *doc;
 *   if (vg_json_parse(text, len, NULL, &doc) != VG_OK)
 *     fprintf(stderr, "%s\n", vg_last_error());        // "JSON: ... at byte 17"
 *   const vg_json *lr = vg_json_get(doc, "lr");          // NULL when absent / not an object
 *   double v;
 *   if (lr && vg_json_as_double(lr, &v)) ...
 *   for (int64_t i = 0; i < vg_json_len(arr); i++) vg_json_at(arr, i) ...
 *   vg_json_free(doc);                                   // frees the whole tree (one arena)
 *
 *   vg_json_writer w;  vg_jw_init(&w, 2);                // indent 2 (0 = compact)
 *   vg_jw_begin_object(&w); vg_jw_key(&w, "auroc"); vg_jw_double(&w, 0.987);
 *   vg_jw_end_object(&w);
 *   char *s = vg_jw_finish(&w, &n);                      // malloc'd, NUL-terminated; free()
 *
 * Strict: one value, optional whitespace around it, nothing else (no BOM, comments,
 * trailing commas, NaN, leading zeros, single quotes). Input must be valid UTF-8
 * (overlong forms, UTF-16 surrogates and code points > U+10FFFF refused); control
 * characters must be escaped; \uXXXX escapes are decoded to UTF-8, surrogate pairs
 * combined, lone surrogates refused. Duplicate keys in one object are refused. Numbers
 * must be finite as doubles (1e400 is refused); integers keep their exact text so
 * vg_json_as_int64 is exact (and fails on overflow). Limits (depth, input size) are
 * checked; every error names the problem and its byte offset.
 *
 * The tree: every node, string and array lives in one arena owned by the root. Strings
 * are NUL-terminated UTF-8 with an explicit length (they may contain "\u0000"). Object
 * members keep their file order. */
#ifndef VG_JSON_H
#define VG_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef enum {
  VG_JSON_NULL, VG_JSON_BOOL, VG_JSON_NUMBER, VG_JSON_STRING, VG_JSON_ARRAY, VG_JSON_OBJECT
} vg_json_type;

typedef struct vg_json vg_json;
struct vg_json {
  vg_json_type type;
  bool boolean;             /* BOOL */
  bool is_integer;          /* NUMBER written without fraction or exponent */
  double number;            /* NUMBER */
  const char *str;          /* STRING: decoded UTF-8; NUMBER: the literal's text */
  size_t len;               /* byte length of str */
  int64_t count;            /* ARRAY / OBJECT: number of items / members */
  vg_json **items;          /* ARRAY items; OBJECT member values */
  const char **keys;        /* OBJECT member keys (decoded, NUL-terminated) */
  size_t *key_lens;         /* OBJECT key byte lengths */
  struct vg_json_arena *arena;   /* root only: owner of everything */
};

typedef struct {
  int max_depth;            /* nesting of arrays/objects; 0 = 64 */
  size_t max_bytes;         /* input size; 0 = 256 MiB */
  int64_t max_members;      /* items in one array/object; 0 = 16M */
} vg_json_opts;

/* Parses text[0..len) (need not be NUL-terminated). *out is the root (free with
 * vg_json_free) or NULL on error (VG_ERR_FORMAT, VG_ERR_LIMIT, VG_ERR_NOMEM). */
vg_status vg_json_parse(const char *text, size_t len, const vg_json_opts *opts, vg_json **out);
void vg_json_free(vg_json *root);   /* root from vg_json_parse; NULL ok */

const char *vg_json_type_name(vg_json_type t);
/* Object member by key (exact bytes, NUL-terminated key); NULL if j is not an object or
 * the key is absent. Linear in the member count. */
const vg_json *vg_json_get(const vg_json *j, const char *key);
int64_t vg_json_len(const vg_json *j);                       /* -1 if not array/object */
const vg_json *vg_json_at(const vg_json *j, int64_t i);      /* item / member value or NULL */
const char *vg_json_key_at(const vg_json *j, int64_t i);     /* object key or NULL */
/* Typed reads: false (and *out untouched) when the type does not match. as_int64 wants
 * integer syntax ("3", not "3.0") whose value fits int64; as_double takes any number. */
bool vg_json_as_int64(const vg_json *j, int64_t *out);
bool vg_json_as_double(const vg_json *j, double *out);
bool vg_json_as_bool(const vg_json *j, bool *out);
const char *vg_json_as_string(const vg_json *j);             /* NULL if not a string */
bool vg_json_is_null(const vg_json *j);

/* Checks that s[0..n) is valid UTF-8 (same rules as the parser); on failure returns false
 * and sets *bad to the offset of the first bad byte (bad may be NULL). */
bool vg_utf8_valid(const char *s, size_t n, size_t *bad);

/* ---- writer ---- */
#define VG_JW_MAX_DEPTH 64
typedef struct {
  char *buf;
  size_t len, cap;
  int indent;               /* spaces per level; 0 = compact */
  int depth;
  bool first[VG_JW_MAX_DEPTH + 1];   /* no member written yet at this level */
  bool in_object[VG_JW_MAX_DEPTH + 1];
  bool after_key;
  vg_status err;            /* first error (NOMEM, ARG: misuse, NUMERIC: NaN/Inf) */
} vg_json_writer;

void vg_jw_init(vg_json_writer *w, int indent);
void vg_jw_begin_object(vg_json_writer *w);
void vg_jw_end_object(vg_json_writer *w);
void vg_jw_begin_array(vg_json_writer *w);
void vg_jw_end_array(vg_json_writer *w);
void vg_jw_key(vg_json_writer *w, const char *key);
void vg_jw_string(vg_json_writer *w, const char *s);
void vg_jw_string_n(vg_json_writer *w, const char *s, size_t n);
void vg_jw_int64(vg_json_writer *w, int64_t v);
void vg_jw_double(vg_json_writer *w, double v);   /* shortest text that reads back exactly */
void vg_jw_bool(vg_json_writer *w, bool v);
void vg_jw_null(vg_json_writer *w);
/* Writes an already-parsed tree (e.g. to normalise or copy a config). */
void vg_jw_value(vg_json_writer *w, const vg_json *j);
/* Returns the text (malloc'd, caller frees) and its length, or NULL with the error set
 * (vg_last_error) when any call failed or containers are unclosed. Frees w's buffer. */
char *vg_jw_finish(vg_json_writer *w, size_t *len);
void vg_jw_discard(vg_json_writer *w);     /* frees the buffer without producing text */
#endif
