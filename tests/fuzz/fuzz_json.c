/* fuzz_json.c — libFuzzer target: the strict JSON parser (base/json.c) and the writer
 * round trip. See tests/fuzz/README.md.
 *
 * Every input is parsed with the default limits and with tight ones (depth 4, 8 members);
 * the parse must agree with vg_utf8_valid (a document with invalid UTF-8 never parses) and
 * a failure must leave a message and no tree. Whatever parses is walked with every typed
 * accessor, written compact and indented, and parsed back: the trees must be equal (types,
 * number literals byte for byte, strings and keys with their lengths, member order), and
 * writing the reparsed tree must give the same text again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"

static void walk(const vg_json *j, int depth) {
  if (depth > 200) __builtin_trap();
  int64_t i64;
  double d;
  bool b;
  bool isnum = vg_json_as_double(j, &d);
  if (isnum != (j->type == VG_JSON_NUMBER)) __builtin_trap();
  if (isnum && !(d == d)) __builtin_trap();                                  /* NaN */
  if (vg_json_as_int64(j, &i64) && !j->is_integer) __builtin_trap();
  if (vg_json_as_bool(j, &b) != (j->type == VG_JSON_BOOL)) __builtin_trap();
  const char *s = vg_json_as_string(j);
  if ((s != NULL) != (j->type == VG_JSON_STRING)) __builtin_trap();
  if (s && (s[j->len] != 0 || !vg_utf8_valid(s, j->len, NULL))) __builtin_trap();
  if (vg_json_is_null(j) != (j->type == VG_JSON_NULL)) __builtin_trap();
  if (!vg_json_type_name(j->type)[0] || vg_json_type_name(j->type)[0] == '?') __builtin_trap();
  int64_t n = vg_json_len(j);
  if ((n >= 0) != (j->type == VG_JSON_ARRAY || j->type == VG_JSON_OBJECT)) __builtin_trap();
  if (vg_json_at(j, n) || vg_json_at(j, -1)) __builtin_trap();
  for (int64_t i = 0; i < n; i++) {
    const vg_json *c = vg_json_at(j, i);
    if (!c) __builtin_trap();
    if (j->type == VG_JSON_OBJECT) {
      const char *k = vg_json_key_at(j, i);
      if (!k || k[j->key_lens[i]] != 0 || !vg_utf8_valid(k, j->key_lens[i], NULL)) __builtin_trap();
      /* keys are unique: lookup by a key without an embedded NUL finds this member */
      if (strlen(k) == j->key_lens[i] && vg_json_get(j, k) != c) __builtin_trap();
    }
    walk(c, depth + 1);
  }
}

static bool same(const vg_json *a, const vg_json *b) {
  if (a->type != b->type) return false;
  switch (a->type) {
    case VG_JSON_NULL: return true;
    case VG_JSON_BOOL: return a->boolean == b->boolean;
    case VG_JSON_NUMBER:
      return a->is_integer == b->is_integer && a->len == b->len && !memcmp(a->str, b->str, a->len) &&
             !memcmp(&a->number, &b->number, sizeof a->number);
    case VG_JSON_STRING: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case VG_JSON_ARRAY:
    case VG_JSON_OBJECT:
      if (a->count != b->count) return false;
      for (int64_t i = 0; i < a->count; i++) {
        if (a->type == VG_JSON_OBJECT &&
            (a->key_lens[i] != b->key_lens[i] || memcmp(a->keys[i], b->keys[i], a->key_lens[i])))
          return false;
        if (!same(a->items[i], b->items[i])) return false;
      }
      return true;
  }
  return false;
}

static char *write_tree(const vg_json *j, int indent, size_t *n) {
  vg_json_writer w;
  vg_jw_init(&w, indent);
  vg_jw_value(&w, j);
  char *t = vg_jw_finish(&w, n);
  if (!t) __builtin_trap();          /* a parsed tree (depth <= 64) always writes */
  if (strlen(t) != *n) __builtin_trap();   /* NUL is written as \u0000 */
  return t;
}

static void round_trip(const vg_json *j, int indent) {
  size_t n, n2;
  char *t = write_tree(j, indent, &n);
  vg_json *r = NULL;
  if (vg_json_parse(t, n, NULL, &r) != VG_OK || !r || !same(j, r)) __builtin_trap();
  char *t2 = write_tree(r, indent, &n2);
  if (n != n2 || memcmp(t, t2, n)) __builtin_trap();
  free(t2);
  free(t);
  vg_json_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  const char *text = (const char *)data;
  vg_json *j = (vg_json *)1;
  vg_clear_error();
  vg_status st = vg_json_parse(text, n, NULL, &j);
  if (st != VG_OK) {
    if (j || !vg_last_error()[0]) __builtin_trap();
  } else {
    if (!j) __builtin_trap();
    if (!vg_utf8_valid(text, n, NULL)) __builtin_trap();   /* strict: bad UTF-8 never parses */
    walk(j, 0);
    round_trip(j, 0);
    round_trip(j, 2);
  }

  /* tight limits: must refuse (never crash) what exceeds them, accept a subset of the above */
  vg_json_opts o = {.max_depth = 4, .max_bytes = 4096, .max_members = 8};
  vg_json *k = (vg_json *)1;
  vg_clear_error();
  vg_status st2 = vg_json_parse(text, n, &o, &k);
  if (st2 != VG_OK) {
    if (k || !vg_last_error()[0]) __builtin_trap();
  } else {
    if (st != VG_OK || !k || !same(j, k)) __builtin_trap();
  }
  vg_json_free(k);
  if (st == VG_OK) vg_json_free(j);
  return 0;
}
