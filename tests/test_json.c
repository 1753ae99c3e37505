/* test_json.c — the strict JSON parser on a valid/invalid corpus (escapes, surrogates,
 * numbers, depth, duplicates, UTF-8), typed lookups, and writer round trips. */
#include "tests/vgtest.h"
#include "base/json.h"

static vg_json *parse(const char *s) {
  vg_json *j = NULL;
  vg_json_parse(s, strlen(s), NULL, &j);
  return j;
}

/* Expects `text` (len bytes) refused with a message containing `want`. */
static void refuse_n(const char *text, size_t len, const char *want, const char *what) {
  vg_json *j = NULL;
  vg_clear_error();
  vg_status st = vg_json_parse(text, len, NULL, &j);
  VG_CHECK(st != VG_OK && !j && strstr(vg_last_error(), want),
           "refuse %-28s -> %s", what, vg_last_error());
  vg_json_free(j);
}
static void refuse(const char *text, const char *want, const char *what) {
  refuse_n(text, strlen(text), want, what);
}

static void test_valid(void) {
  const char *ok[] = {
    "{}", "[]", " \t\r\n[ ]\n", "0", "-0", "1.5e-3", "1E+2", "\"\"", "true", "false", "null",
    "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}", "[\"\\u00e9\\u20ac\\ud83d\\ude00\"]",
    "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "[1e308, -1e-320, 123456789012345678901234567890]",
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    vg_json *j = parse(ok[i]);
    VG_CHECK(j != NULL, "valid #%zu", i);
    vg_json_free(j);
  }
}

static void test_values(void) {
  vg_json *j = parse("{\"name\": \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"n\": -42, \"x\": 2.5e1,"
                     " \"big\": 9223372036854775807, \"over\": 9223372036854775808,"
                     " \"min\": -9223372036854775808, \"under\": -9223372036854775809,"
                     " \"f\": 3.0, \"t\": true, \"z\": null, \"arr\": [1, [2, 3]], \"u\": \"\\u0041\\u00e9\\ud83d\\ude00\","
                     " \"nul\": \"a\\u0000b\"}");
  VG_CHECK(j && j->type == VG_JSON_OBJECT && vg_json_len(j) == 13, "object with 13 members");
  if (!j) return;
  const char *s = vg_json_as_string(vg_json_get(j, "name"));
  VG_CHECK(s && !strcmp(s, "a\"b\\c/d\b\f\n\r\t"), "simple escapes decoded");
  int64_t v = 0;
  VG_CHECK(vg_json_as_int64(vg_json_get(j, "n"), &v) && v == -42, "int -42");
  VG_CHECK(vg_json_as_int64(vg_json_get(j, "big"), &v) && v == INT64_MAX, "INT64_MAX exact");
  VG_CHECK(vg_json_as_int64(vg_json_get(j, "min"), &v) && v == INT64_MIN, "INT64_MIN exact");
  VG_CHECK(!vg_json_as_int64(vg_json_get(j, "over"), &v), "2^63 overflows int64");
  VG_CHECK(!vg_json_as_int64(vg_json_get(j, "under"), &v), "-2^63-1 overflows int64");
  VG_CHECK(!vg_json_as_int64(vg_json_get(j, "f"), &v), "3.0 is not integer syntax");
  VG_CHECK(!vg_json_as_int64(vg_json_get(j, "x"), &v), "2.5e1 is not integer syntax");
  double d = 0;
  VG_CHECK(vg_json_as_double(vg_json_get(j, "x"), &d) && d == 25.0, "2.5e1 = 25");
  VG_CHECK(vg_json_as_double(vg_json_get(j, "over"), &d) && d == 9223372036854775808.0, "2^63 as double");
  bool b = false;
  VG_CHECK(vg_json_as_bool(vg_json_get(j, "t"), &b) && b, "true");
  VG_CHECK(vg_json_is_null(vg_json_get(j, "z")), "null");
  VG_CHECK(!vg_json_as_string(vg_json_get(j, "n")) && !vg_json_get(j, "missing"), "type mismatch / absent -> NULL");
  const vg_json *arr = vg_json_get(j, "arr");
  VG_CHECK(vg_json_len(arr) == 2 && vg_json_len(vg_json_at(arr, 1)) == 2 &&
           vg_json_as_int64(vg_json_at(vg_json_at(arr, 1), 1), &v) && v == 3 && !vg_json_at(arr, 2) &&
           !vg_json_at(arr, -1), "nested array indexing and bounds");
  const vg_json *u = vg_json_get(j, "u");
  VG_CHECK(u && u->len == 7 && !memcmp(u->str, "A\xc3\xa9\xf0\x9f\x98\x80", 7), "\\u escapes and surrogate pair -> UTF-8");
  const vg_json *nul = vg_json_get(j, "nul");
  VG_CHECK(nul && nul->len == 3 && nul->str[1] == 0 && nul->str[2] == 'b', "\\u0000 kept with explicit length");
  VG_CHECK(!strcmp(vg_json_key_at(j, 0), "name") && !strcmp(vg_json_key_at(j, 12), "nul"), "keys in file order");
  vg_json_free(j);
}

static void test_invalid(void) {
  refuse("", "unexpected end of input", "empty input");
  refuse("   ", "unexpected end of input", "whitespace only");
  refuse("{\"a\":1,}", "trailing comma", "trailing comma object");
  refuse("[1,2,]", "trailing comma", "trailing comma array");
  refuse("{\"a\":1} x", "trailing data", "trailing garbage");
  refuse("{}{}", "trailing data", "two values");
  refuse("{\"a\" 1}", "expected ':'", "missing colon");
  refuse("{a:1}", "expected a string key", "unquoted key");
  refuse("['a']", "unexpected character '''", "single quotes");
  refuse("[1 2]", "expected ',' or ']'", "missing comma");
  refuse("[1,2", "unexpected end of input in array", "unclosed array");
  refuse("{\"a\":1", "unexpected end of input in object", "unclosed object");
  refuse("\"abc", "unterminated string", "unterminated string");
  refuse("\"a\\", "unterminated string", "backslash at end");
  refuse("\"\\x41\"", "bad escape \\x", "bad escape \\x");
  refuse("\"\\u12G4\"", "bad \\u escape", "bad hex in \\u");
  refuse("\"\\u12\"", "bad \\u escape", "short \\u");
  refuse("\"\\ud83d\"", "high surrogate", "lone high surrogate");
  refuse("\"\\ud83dx\"", "high surrogate", "high surrogate + char");
  refuse("\"\\ud83d\\u0041\"", "high surrogate", "high + non-low surrogate");
  refuse("\"\\ude00\"", "lone low surrogate", "lone low surrogate");
  refuse("\"a\tb\"", "unescaped control character 0x09", "raw tab in string");
  refuse("\"a\nb\"", "unescaped control character 0x0a", "raw newline in string");
  refuse("01", "leading zero", "leading zero");
  refuse("-", "no digits", "lone minus");
  refuse("1.", "no digits after '.'", "1.");
  refuse(".5", "unexpected character '.'", ".5");
  refuse("1e", "no digits in exponent", "1e");
  refuse("+1", "unexpected character '+'", "+1");
  refuse("1e400", "out of double range", "1e400");
  refuse("-1e400", "out of double range", "-1e400");
  refuse("NaN", "unexpected character 'N'", "NaN");
  refuse("Infinity", "unexpected character 'I'", "Infinity");
  refuse("tru", "invalid literal", "tru");
  refuse("nul", "invalid literal", "nul");
  refuse("[true false]", "expected ','", "missing comma literals");
  refuse("{\"a\":1,\"b\":2,\"a\":3}", "duplicate key \"a\"", "duplicate key");
  refuse("/* c */ {}", "unexpected character '/'", "comment");
  refuse("\xef\xbb\xbf{}", "unexpected byte 0xef", "UTF-8 BOM");
  refuse("\"\xc0\xaf\"", "invalid UTF-8", "overlong UTF-8");
  refuse("\"\xed\xa0\x80\"", "invalid UTF-8", "UTF-8-encoded surrogate");
  refuse("\"\xf4\x90\x80\x80\"", "invalid UTF-8", "code point > U+10FFFF");
  refuse("\"\xe2\x82\"", "invalid UTF-8", "truncated UTF-8");
  refuse("\"\x80\"", "invalid UTF-8", "stray continuation byte");
  refuse_n("[1,\0]", 5, "unexpected byte 0x00", "NUL byte");
  refuse("{\"a\":1}}", "trailing data", "extra close brace");
  refuse("[}", "unexpected character '}'", "mismatched close");
  /* error messages carry the byte offset */
  refuse("[1,2,x]", "at byte 5", "offset in message");
}

static void test_limits(void) {
  char deep[200];
  int d = 64;
  for (int i = 0; i < d; i++) deep[i] = '[';
  for (int i = 0; i < d; i++) deep[d + i] = ']';
  deep[2 * d] = 0;
  vg_json *j = parse(deep);
  VG_CHECK(j != NULL, "depth 64 accepted");
  vg_json_free(j);
  d = 65;
  for (int i = 0; i < d; i++) deep[i] = '[';
  for (int i = 0; i < d; i++) deep[d + i] = ']';
  deep[2 * d] = 0;
  refuse(deep, "nesting deeper than 64", "depth 65");
  VG_CHECK(vg_last_status() == VG_ERR_LIMIT, "depth error is VG_ERR_LIMIT");
  /* very deep input never recurses past the limit (no stack overflow) */
  size_t n = 1 << 20;
  char *big = malloc(n + 1);
  memset(big, '[', n);
  big[n] = 0;
  refuse(big, "nesting deeper", "1M open brackets");
  free(big);
  vg_json_opts o = {.max_depth = 3, .max_bytes = 10, .max_members = 2};
  vg_clear_error();
  VG_CHECK(vg_json_parse("[[[[1]]]]", 9, &o, &j) == VG_ERR_LIMIT, "custom depth limit 3");
  VG_CHECK(vg_json_parse("[1,2,3,4,5,6]", 13, &o, &j) == VG_ERR_LIMIT && strstr(vg_last_error(), "exceeds the 10-byte limit"),
           "size limit -> %s", vg_last_error());
  VG_CHECK(vg_json_parse("[1,2,3]", 7, &o, &j) == VG_ERR_LIMIT && strstr(vg_last_error(), "more than 2 members"),
           "member limit -> %s", vg_last_error());
  /* a large object: duplicate detection by sorting, both outcomes */
  size_t cap = 40000 * 16;
  char *obj = malloc(cap);
  size_t k = 0;
  obj[k++] = '{';
  for (int i = 0; i < 40000; i++) k += (size_t)snprintf(obj + k, cap - k, "%s\"k%d\":%d", i ? "," : "", i, i);
  obj[k++] = '}';
  obj[k] = 0;
  j = parse(obj);
  int64_t v = 0;
  VG_CHECK(j && vg_json_len(j) == 40000 && vg_json_as_int64(vg_json_get(j, "k39999"), &v) && v == 39999,
           "40000-member object");
  vg_json_free(j);
  strcpy(strrchr(obj, ',') + 1, "\"k7\":1}");   /* last member renamed to an earlier key */
  refuse(obj, "duplicate key \"k7\"", "duplicate in large object");
  free(obj);
}

static void test_writer(void) {
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "s"); vg_jw_string(&w, "q\"\\\n\x01\xc3\xa9");
  vg_jw_key(&w, "i"); vg_jw_int64(&w, INT64_MIN);
  vg_jw_key(&w, "d"); vg_jw_double(&w, 0.1);
  vg_jw_key(&w, "e"); vg_jw_double(&w, 1e-300);
  vg_jw_key(&w, "a"); vg_jw_begin_array(&w); vg_jw_bool(&w, true); vg_jw_null(&w);
  vg_jw_begin_object(&w); vg_jw_end_object(&w); vg_jw_end_array(&w);
  vg_jw_end_object(&w);
  size_t n = 0;
  char *s = vg_jw_finish(&w, &n);
  VG_CHECK(s && !strcmp(s, "{\"s\":\"q\\\"\\\\\\n\\u0001\xc3\xa9\",\"i\":-9223372036854775808,\"d\":0.1,"
                           "\"e\":1e-300,\"a\":[true,null,{}]}"),
           "compact writer output: %s", s ? s : "(null)");
  vg_json *j = s ? parse(s) : NULL;
  int64_t v = 0;
  double d = 0;
  VG_CHECK(j && !strcmp(vg_json_as_string(vg_json_get(j, "s")), "q\"\\\n\x01\xc3\xa9") &&
           vg_json_as_int64(vg_json_get(j, "i"), &v) && v == INT64_MIN &&
           vg_json_as_double(vg_json_get(j, "e"), &d) && d == 1e-300, "writer output parses back exactly");
  /* re-emit a parsed tree with indentation, parse again, compare */
  vg_jw_init(&w, 2);
  vg_jw_value(&w, j);
  char *s2 = vg_jw_finish(&w, NULL);
  vg_json *j2 = s2 ? parse(s2) : NULL;
  VG_CHECK(j2 && strchr(s2, '\n') && vg_json_len(j2) == 5 && vg_json_as_double(vg_json_get(j2, "d"), &d) && d == 0.1,
           "indented re-emit parses back");
  vg_json_free(j);
  vg_json_free(j2);
  free(s);
  free(s2);
  /* misuse and bad values are errors, not bad output */
  vg_jw_init(&w, 0);
  vg_jw_begin_array(&w); vg_jw_double(&w, NAN); vg_jw_end_array(&w);
  VG_CHECK(!vg_jw_finish(&w, NULL) && strstr(vg_last_error(), "NaN"), "NaN refused by writer");
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w); vg_jw_int64(&w, 1); vg_jw_end_object(&w);
  VG_CHECK(!vg_jw_finish(&w, NULL) && strstr(vg_last_error(), "without a key"), "value without key refused");
  vg_jw_init(&w, 0);
  vg_jw_begin_array(&w);
  VG_CHECK(!vg_jw_finish(&w, NULL) && strstr(vg_last_error(), "unclosed"), "unclosed array refused");
  vg_jw_init(&w, 0);
  vg_jw_string(&w, "\xff");
  VG_CHECK(!vg_jw_finish(&w, NULL) && strstr(vg_last_error(), "UTF-8"), "invalid UTF-8 string refused");
}

/* base/status.c (beside the JSON parser in tensor/): a message that quotes the previous one
 * (vg_fail(st, "teacher %s: %s", path, vg_last_error())) keeps it whole: formatting into the
 * buffer it reads from garbled it ("teacher x: teacher x: ), not a regular file") */
static void test_status_chain(void) {
  vg_fail(VG_ERR_IO, "f.safetensors: is a FIFO (named pipe), not a regular file");
  vg_fail(VG_ERR_FORMAT, "efficientad: teacher %s: %s", "f.safetensors", vg_last_error());
  VG_CHECK(!strcmp(vg_last_error(), "efficientad: teacher f.safetensors: f.safetensors: is a FIFO (named pipe), not a "
                                    "regular file") && vg_last_status() == VG_ERR_FORMAT,
           "vg_fail quoting vg_last_error(): %s", vg_last_error());
  vg_fail_prefix("%s", vg_last_error());
  VG_CHECK(!strncmp(vg_last_error(), "efficientad: teacher f.safetensors: f.safetensors: is a FIFO (named pipe), not a "
                                     "regular file: efficientad:", 95),
           "vg_fail_prefix quoting vg_last_error(): %.120s", vg_last_error());
  vg_clear_error();
}

int main(void) {
  test_status_chain();
  test_valid();
  test_values();
  test_invalid();
  test_limits();
  test_writer();
  return vg_test_finish();
}
