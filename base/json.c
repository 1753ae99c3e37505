/* json.c — strict RFC 8259 parser into an arena-allocated tree, and a small writer.
 * Recursive descent; depth is bounded by opts.max_depth, so the C stack is too. */
#include "base/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena: a list of chunks; everything of one document is freed at once ---- */
typedef struct vg_json_chunk {
  struct vg_json_chunk *next;
  size_t used, cap;
  _Alignas(max_align_t) unsigned char data[];
} vg_json_chunk;

struct vg_json_arena {
  vg_json_chunk *head;
};

static void *arena_alloc(struct vg_json_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!n) n = 16;
  vg_json_chunk *c = a->head;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->cap = cap;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

static void arena_free(struct vg_json_arena *a) {
  if (!a) return;
  vg_json_chunk *c = a->head;
  while (c) {
    vg_json_chunk *n = c->next;
    free(c);
    c = n;
  }
  free(a);
}

/* ---- UTF-8 ---- */
/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned cp, min;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool vg_utf8_valid(const char *s, size_t n, size_t *bad) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t k = utf8_seq(u + i, n - i);
    if (!k) {
      if (bad) *bad = i;
      return false;
    }
    i += k;
  }
  return true;
}

static size_t utf8_put(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* ---- parser ---- */
typedef struct {
  const unsigned char *s;
  size_t n, pos;
  int depth, max_depth;
  int64_t max_members;
  struct vg_json_arena *arena;
  /* scratch stack of children shared by all open containers */
  vg_json **stack;
  const char **kstack;
  size_t *lstack;
  size_t sp, scap;
} parser;

static vg_status perr(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static vg_status perr(parser *p, size_t at, const char *fmt, ...) {
  (void)p;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return vg_fail(VG_ERR_FORMAT, "JSON: %s at byte %zu", msg, at);
}

static vg_status nomem(void) { return vg_fail(VG_ERR_NOMEM, "JSON: out of memory"); }

static void skip_ws(parser *p) {
  while (p->pos < p->n) {
    unsigned char c = p->s[p->pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') p->pos++;
    else break;
  }
}

static vg_json *new_node(parser *p, vg_json_type t) {
  vg_json *j = arena_alloc(p->arena, sizeof *j);
  if (j) {
    memset(j, 0, sizeof *j);
    j->type = t;
  }
  return j;
}

static int hex4(const unsigned char *s) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int c = s[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/* At the opening quote. Decodes into the arena (decoded length <= raw length). */
static vg_status parse_string(parser *p, const char **out, size_t *out_len) {
  size_t start = p->pos++;
  size_t end = p->pos;       /* find the closing quote to size the buffer */
  while (end < p->n && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
  if (end >= p->n) return perr(p, start, "unterminated string");
  char *o = arena_alloc(p->arena, end - p->pos + 1);
  if (!o) return nomem();
  size_t k = 0;
  for (;;) {
    if (p->pos >= p->n) return perr(p, start, "unterminated string");
    unsigned char c = p->s[p->pos];
    if (c == '"') { p->pos++; break; }
    if (c < 0x20) return perr(p, p->pos, "unescaped control character 0x%02x in string", c);
    if (c == '\\') {
      if (p->pos + 1 >= p->n) return perr(p, start, "unterminated string");
      unsigned char e = p->s[p->pos + 1];
      switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
          int hi = p->pos + 6 <= p->n ? hex4(p->s + p->pos + 2) : -1;
          if (hi < 0) return perr(p, p->pos, "bad \\u escape (want 4 hex digits)");
          unsigned cp = (unsigned)hi;
          if (cp >= 0xDC00 && cp <= 0xDFFF)
            return perr(p, p->pos, "lone low surrogate \\u%04X", cp);
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            size_t q = p->pos + 6;
            int lo = (q + 6 <= p->n && p->s[q] == '\\' && p->s[q + 1] == 'u') ? hex4(p->s + q + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
              return perr(p, p->pos, "high surrogate \\u%04X not followed by a low surrogate", cp);
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
            p->pos += 6;
          }
          k += utf8_put(o + k, cp);
          p->pos += 6;
          continue;
        }
        default:
          if (e < 0x20 || e >= 0x7F) return perr(p, p->pos, "bad escape \\ followed by byte 0x%02x", e);
          return perr(p, p->pos, "bad escape \\%c", e);
      }
      p->pos += 2;
      continue;
    }
    size_t len = utf8_seq(p->s + p->pos, p->n - p->pos);
    if (!len) return perr(p, p->pos, "invalid UTF-8 byte 0x%02x in string", c);
    memcpy(o + k, p->s + p->pos, len);
    k += len;
    p->pos += len;
  }
  o[k] = 0;
  *out = o;
  *out_len = k;
  return VG_OK;
}

static bool isdig(unsigned char c) { return c >= '0' && c <= '9'; }

static vg_status parse_number(parser *p, vg_json *j) {
  size_t start = p->pos, i = p->pos;
  bool integer = true;
  if (i < p->n && p->s[i] == '-') i++;
  if (i >= p->n || !isdig(p->s[i])) return perr(p, start, "bad number (no digits)");
  if (p->s[i] == '0') {
    i++;
    if (i < p->n && isdig(p->s[i])) return perr(p, start, "bad number (leading zero)");
  } else {
    while (i < p->n && isdig(p->s[i])) i++;
  }
  if (i < p->n && p->s[i] == '.') {
    integer = false;
    i++;
    if (i >= p->n || !isdig(p->s[i])) return perr(p, start, "bad number (no digits after '.')");
    while (i < p->n && isdig(p->s[i])) i++;
  }
  if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
    integer = false;
    i++;
    if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
    if (i >= p->n || !isdig(p->s[i])) return perr(p, start, "bad number (no digits in exponent)");
    while (i < p->n && isdig(p->s[i])) i++;
  }
  size_t len = i - start;
  char *t = arena_alloc(p->arena, len + 1);
  if (!t) return nomem();
  memcpy(t, p->s + start, len);
  t[len] = 0;
  double v = strtod(t, NULL);   /* the grammar above is a subset of strtod's */
  if (!isfinite(v)) return perr(p, start, "number %.40s out of double range", t);
  j->number = v;
  j->is_integer = integer;
  j->str = t;
  j->len = len;
  p->pos = i;
  return VG_OK;
}

static vg_status push(parser *p, vg_json *v, const char *k, size_t kl) {
  if (p->sp == p->scap) {
    size_t nc = p->scap ? p->scap * 2 : 64;
    vg_json **a = realloc(p->stack, nc * sizeof *a);
    if (!a) return nomem();
    p->stack = a;
    const char **b = realloc(p->kstack, nc * sizeof *b);
    if (!b) return nomem();
    p->kstack = b;
    size_t *c = realloc(p->lstack, nc * sizeof *c);
    if (!c) return nomem();
    p->lstack = c;
    p->scap = nc;
  }
  p->stack[p->sp] = v;
  p->kstack[p->sp] = k;
  p->lstack[p->sp] = kl;
  p->sp++;
  return VG_OK;
}

typedef struct { const char *k; size_t len; size_t idx; } key_ref;
static int key_cmp(const void *a, const void *b) {
  const key_ref *x = a, *y = b;
  size_t m = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->k, y->k, m);
  if (c) return c;
  return (x->len > y->len) - (x->len < y->len);
}

/* Moves the children pushed since `base` into arena arrays of node j. */
static vg_status close_container(parser *p, vg_json *j, size_t base, bool object, size_t open_pos) {
  size_t n = p->sp - base;
  j->count = (int64_t)n;
  if (n) {
    j->items = arena_alloc(p->arena, n * sizeof *j->items);
    if (!j->items) return nomem();
    memcpy(j->items, p->stack + base, n * sizeof *j->items);
    if (object) {
      j->keys = arena_alloc(p->arena, n * sizeof *j->keys);
      j->key_lens = arena_alloc(p->arena, n * sizeof *j->key_lens);
      if (!j->keys || !j->key_lens) return nomem();
      memcpy(j->keys, p->kstack + base, n * sizeof *j->keys);
      memcpy(j->key_lens, p->lstack + base, n * sizeof *j->key_lens);
      /* duplicate keys: pairwise for small objects, sorted copy for large ones */
      const char *dup = NULL;
      if (n <= 16) {
        for (size_t a = 0; a < n && !dup; a++)
          for (size_t b = a + 1; b < n; b++)
            if (j->key_lens[a] == j->key_lens[b] && !memcmp(j->keys[a], j->keys[b], j->key_lens[a])) {
              dup = j->keys[a];
              break;
            }
      } else {
        key_ref *r = malloc(n * sizeof *r);
        if (!r) return nomem();
        for (size_t a = 0; a < n; a++) r[a] = (key_ref){j->keys[a], j->key_lens[a], a};
        qsort(r, n, sizeof *r, key_cmp);
        for (size_t a = 1; a < n && !dup; a++)
          if (!key_cmp(&r[a - 1], &r[a])) dup = r[a].k;
        free(r);
      }
      if (dup) return perr(p, open_pos, "duplicate key \"%.200s\" in object", dup);
    }
  }
  p->sp = base;
  return VG_OK;
}

static vg_status parse_value(parser *p, vg_json **out);

static vg_status parse_container(parser *p, vg_json **out, bool object) {
  size_t open_pos = p->pos;
  if (++p->depth > p->max_depth)
    return vg_fail(VG_ERR_LIMIT, "JSON: nesting deeper than %d at byte %zu", p->max_depth, p->pos);
  vg_json *j = new_node(p, object ? VG_JSON_OBJECT : VG_JSON_ARRAY);
  if (!j) return nomem();
  p->pos++;
  size_t base = p->sp;
  skip_ws(p);
  char close = object ? '}' : ']';
  if (p->pos < p->n && p->s[p->pos] == close) {
    p->pos++;
  } else {
    for (;;) {
      const char *key = NULL;
      size_t klen = 0;
      skip_ws(p);
      if (object) {
        if (p->pos >= p->n) return perr(p, p->pos, "unexpected end of input in object");
        if (p->s[p->pos] != '"')
          return perr(p, p->pos, "expected a string key in object, got '%c'", p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x7F ? p->s[p->pos] : '?');
        vg_status st = parse_string(p, &key, &klen);
        if (st) return st;
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != ':') return perr(p, p->pos, "expected ':' after object key");
        p->pos++;
      }
      vg_json *v;
      vg_status st = parse_value(p, &v);
      if (st) return st;
      if ((int64_t)(p->sp - base) >= p->max_members)
        return vg_fail(VG_ERR_LIMIT, "JSON: more than %lld members in one %s at byte %zu",
                       (long long)p->max_members, object ? "object" : "array", open_pos);
      if ((st = push(p, v, key, klen))) return st;
      skip_ws(p);
      if (p->pos >= p->n)
        return perr(p, p->pos, "unexpected end of input in %s", object ? "object" : "array");
      unsigned char c = p->s[p->pos];
      if (c == ',') {
        p->pos++;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == (unsigned char)close) return perr(p, p->pos, "trailing comma");
        continue;
      }
      if (c == (unsigned char)close) { p->pos++; break; }
      return perr(p, p->pos, "expected ',' or '%c' in %s", close, object ? "object" : "array");
    }
  }
  vg_status st = close_container(p, j, base, object, open_pos);
  if (st) return st;
  p->depth--;
  *out = j;
  return VG_OK;
}

static bool lit(parser *p, const char *w) {
  size_t n = strlen(w);
  if (p->n - p->pos < n || memcmp(p->s + p->pos, w, n)) return false;
  p->pos += n;
  return true;
}

static vg_status parse_value(parser *p, vg_json **out) {
  skip_ws(p);
  if (p->pos >= p->n) return perr(p, p->pos, "unexpected end of input (expected a value)");
  unsigned char c = p->s[p->pos];
  vg_json *j;
  switch (c) {
    case '{': return parse_container(p, out, true);
    case '[': return parse_container(p, out, false);
    case '"': {
      if (!(j = new_node(p, VG_JSON_STRING))) return nomem();
      vg_status st = parse_string(p, &j->str, &j->len);
      if (st) return st;
      break;
    }
    case 't': case 'f': case 'n': {
      size_t at = p->pos;
      if (!(j = new_node(p, VG_JSON_NULL))) return nomem();
      if (lit(p, "true")) { j->type = VG_JSON_BOOL; j->boolean = true; }
      else if (lit(p, "false")) { j->type = VG_JSON_BOOL; }
      else if (!lit(p, "null")) return perr(p, at, "invalid literal");
      break;
    }
    default:
      if (c == '-' || isdig(c)) {
        if (!(j = new_node(p, VG_JSON_NUMBER))) return nomem();
        vg_status st = parse_number(p, j);
        if (st) return st;
        break;
      }
      if (c >= 0x20 && c < 0x7F) return perr(p, p->pos, "unexpected character '%c'", c);
      return perr(p, p->pos, "unexpected byte 0x%02x", c);
  }
  *out = j;
  return VG_OK;
}

vg_status vg_json_parse(const char *text, size_t len, const vg_json_opts *opts, vg_json **out) {
  if (!out) return vg_fail(VG_ERR_ARG, "JSON: NULL output");
  *out = NULL;
  if (!text && len) return vg_fail(VG_ERR_ARG, "JSON: NULL text");
  vg_json_opts o = opts ? *opts : (vg_json_opts){0};
  if (o.max_depth <= 0) o.max_depth = 64;
  if (!o.max_bytes) o.max_bytes = (size_t)256 << 20;
  if (o.max_members <= 0) o.max_members = (int64_t)16 << 20;
  if (len > o.max_bytes)
    return vg_fail(VG_ERR_LIMIT, "JSON: input of %zu bytes exceeds the %zu-byte limit", len, o.max_bytes);
  parser p = {.s = (const unsigned char *)text, .n = len, .max_depth = o.max_depth,
              .max_members = o.max_members};
  p.arena = calloc(1, sizeof *p.arena);
  if (!p.arena) return nomem();
  vg_json *root = NULL;
  vg_status st = parse_value(&p, &root);
  if (!st) {
    skip_ws(&p);
    if (p.pos != p.n) st = perr(&p, p.pos, "trailing data after the value");
  }
  free(p.stack);
  free(p.kstack);
  free(p.lstack);
  if (st) {
    arena_free(p.arena);
    return st;
  }
  root->arena = p.arena;
  *out = root;
  return VG_OK;
}

void vg_json_free(vg_json *root) {
  if (root) arena_free(root->arena);
}

/* ---- lookup ---- */
const char *vg_json_type_name(vg_json_type t) {
  switch (t) {
    case VG_JSON_NULL: return "null";
    case VG_JSON_BOOL: return "bool";
    case VG_JSON_NUMBER: return "number";
    case VG_JSON_STRING: return "string";
    case VG_JSON_ARRAY: return "array";
    case VG_JSON_OBJECT: return "object";
  }
  return "?";
}

const vg_json *vg_json_get(const vg_json *j, const char *key) {
  if (!j || j->type != VG_JSON_OBJECT || !key) return NULL;
  size_t n = strlen(key);
  for (int64_t i = 0; i < j->count; i++)
    if (j->key_lens[i] == n && !memcmp(j->keys[i], key, n)) return j->items[i];
  return NULL;
}

int64_t vg_json_len(const vg_json *j) {
  return (j && (j->type == VG_JSON_ARRAY || j->type == VG_JSON_OBJECT)) ? j->count : -1;
}

const vg_json *vg_json_at(const vg_json *j, int64_t i) {
  if (!j || (j->type != VG_JSON_ARRAY && j->type != VG_JSON_OBJECT) || i < 0 || i >= j->count) return NULL;
  return j->items[i];
}

const char *vg_json_key_at(const vg_json *j, int64_t i) {
  if (!j || j->type != VG_JSON_OBJECT || i < 0 || i >= j->count) return NULL;
  return j->keys[i];
}

bool vg_json_as_int64(const vg_json *j, int64_t *out) {
  if (!j || j->type != VG_JSON_NUMBER || !j->is_integer) return false;
  const char *s = j->str;
  bool neg = *s == '-';
  if (neg) s++;
  uint64_t v = 0;
  for (; *s; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (!neg && v > (uint64_t)INT64_MAX) return false;
  if (neg && v > (uint64_t)INT64_MAX + 1) return false;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

bool vg_json_as_double(const vg_json *j, double *out) {
  if (!j || j->type != VG_JSON_NUMBER) return false;
  *out = j->number;
  return true;
}

bool vg_json_as_bool(const vg_json *j, bool *out) {
  if (!j || j->type != VG_JSON_BOOL) return false;
  *out = j->boolean;
  return true;
}

const char *vg_json_as_string(const vg_json *j) {
  return (j && j->type == VG_JSON_STRING) ? j->str : NULL;
}

bool vg_json_is_null(const vg_json *j) { return j && j->type == VG_JSON_NULL; }

/* ---- writer ---- */
static void wput(vg_json_writer *w, const char *s, size_t n) {
  if (w->err) return;
  if (w->len + n + 1 > w->cap) {
    size_t nc = w->cap ? w->cap : 256;
    while (nc < w->len + n + 1) nc *= 2;
    char *b = realloc(w->buf, nc);
    if (!b) {
      w->err = vg_fail(VG_ERR_NOMEM, "JSON writer: out of memory");
      return;
    }
    w->buf = b;
    w->cap = nc;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len] = 0;
}

static void wfail(vg_json_writer *w, vg_status st, const char *what) {
  if (!w->err) w->err = vg_fail(st, "JSON writer: %s", what);
}

static void wnewline(vg_json_writer *w) {
  if (!w->indent) return;
  wput(w, "\n", 1);
  for (int i = 0; i < w->depth * w->indent; i++) wput(w, " ", 1);
}

/* Called before every value: separators, and the key check inside objects. */
static void wvalue_start(vg_json_writer *w) {
  if (w->err) return;
  if (w->depth == 0) {
    if (w->len) wfail(w, VG_ERR_ARG, "more than one top-level value");
    return;
  }
  if (w->in_object[w->depth]) {
    if (!w->after_key) wfail(w, VG_ERR_ARG, "value in an object without a key");
    w->after_key = false;
    return;
  }
  if (!w->first[w->depth]) wput(w, ",", 1);
  w->first[w->depth] = false;
  wnewline(w);
}

void vg_jw_init(vg_json_writer *w, int indent) {
  memset(w, 0, sizeof *w);
  w->indent = indent < 0 ? 0 : indent;
}

static void wopen(vg_json_writer *w, bool object) {
  wvalue_start(w);
  if (w->err) return;
  if (w->depth >= VG_JW_MAX_DEPTH) { wfail(w, VG_ERR_LIMIT, "nesting too deep"); return; }
  wput(w, object ? "{" : "[", 1);
  w->depth++;
  w->first[w->depth] = true;
  w->in_object[w->depth] = object;
}

static void wclose(vg_json_writer *w, bool object) {
  if (w->err) return;
  if (w->depth == 0 || w->in_object[w->depth] != object || w->after_key) {
    wfail(w, VG_ERR_ARG, "unbalanced end_object/end_array");
    return;
  }
  bool empty = w->first[w->depth];
  w->depth--;
  if (!empty) wnewline(w);
  wput(w, object ? "}" : "]", 1);
}

void vg_jw_begin_object(vg_json_writer *w) { wopen(w, true); }
void vg_jw_end_object(vg_json_writer *w) { wclose(w, true); }
void vg_jw_begin_array(vg_json_writer *w) { wopen(w, false); }
void vg_jw_end_array(vg_json_writer *w) { wclose(w, false); }

static void wstring(vg_json_writer *w, const char *s, size_t n) {
  size_t bad;
  if (!vg_utf8_valid(s, n, &bad)) { wfail(w, VG_ERR_ARG, "string is not valid UTF-8"); return; }
  wput(w, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char ubuf[8];
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    else if (c == '\b') esc = "\\b";
    else if (c == '\f') esc = "\\f";
    else if (c < 0x20 || c == 0x7F) {
      snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
      esc = ubuf;
    }
    if (esc) {
      wput(w, s + i - run, run);
      run = 0;
      wput(w, esc, strlen(esc));
    } else {
      run++;
    }
  }
  wput(w, s + n - run, run);
  wput(w, "\"", 1);
}

void vg_jw_key(vg_json_writer *w, const char *key) {
  if (w->err) return;
  if (w->depth == 0 || !w->in_object[w->depth] || w->after_key) {
    wfail(w, VG_ERR_ARG, "key outside an object or twice in a row");
    return;
  }
  if (!w->first[w->depth]) wput(w, ",", 1);
  w->first[w->depth] = false;
  wnewline(w);
  wstring(w, key, strlen(key));
  wput(w, w->indent ? ": " : ":", w->indent ? 2 : 1);
  w->after_key = true;
}

void vg_jw_string_n(vg_json_writer *w, const char *s, size_t n) {
  wvalue_start(w);
  if (!w->err) wstring(w, s, n);
}
void vg_jw_string(vg_json_writer *w, const char *s) { vg_jw_string_n(w, s, strlen(s)); }

void vg_jw_int64(vg_json_writer *w, int64_t v) {
  char b[32];
  wvalue_start(w);
  int n = snprintf(b, sizeof b, "%lld", (long long)v);
  wput(w, b, (size_t)n);
}

void vg_jw_double(vg_json_writer *w, double v) {
  wvalue_start(w);
  if (w->err) return;
  if (!isfinite(v)) { wfail(w, VG_ERR_NUMERIC, "NaN or Inf has no JSON form"); return; }
  char b[40];
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(b, sizeof b, "%.*g", prec, v);
    if (strtod(b, NULL) == v) break;
  }
  /* keep it a JSON number that reads back as non-integer when it has no '.', 'e' */
  wput(w, b, (size_t)n);
}

void vg_jw_bool(vg_json_writer *w, bool v) {
  wvalue_start(w);
  wput(w, v ? "true" : "false", v ? 4 : 5);
}

void vg_jw_null(vg_json_writer *w) {
  wvalue_start(w);
  wput(w, "null", 4);
}

void vg_jw_value(vg_json_writer *w, const vg_json *j) {
  if (!j) { wfail(w, VG_ERR_ARG, "NULL value"); return; }
  switch (j->type) {
    case VG_JSON_NULL: vg_jw_null(w); return;
    case VG_JSON_BOOL: vg_jw_bool(w, j->boolean); return;
    case VG_JSON_NUMBER:
      wvalue_start(w);
      wput(w, j->str, j->len);   /* the literal as parsed: exact */
      return;
    case VG_JSON_STRING: vg_jw_string_n(w, j->str, j->len); return;
    case VG_JSON_ARRAY:
      vg_jw_begin_array(w);
      for (int64_t i = 0; i < j->count && !w->err; i++) vg_jw_value(w, j->items[i]);
      vg_jw_end_array(w);
      return;
    case VG_JSON_OBJECT:
      vg_jw_begin_object(w);
      for (int64_t i = 0; i < j->count && !w->err; i++) {
        if (w->depth == 0 || !w->in_object[w->depth] || w->after_key) { wfail(w, VG_ERR_ARG, "bad state"); return; }
        if (!w->first[w->depth]) wput(w, ",", 1);
        w->first[w->depth] = false;
        wnewline(w);
        wstring(w, j->keys[i], j->key_lens[i]);
        wput(w, w->indent ? ": " : ":", w->indent ? 2 : 1);
        w->after_key = true;
        vg_jw_value(w, j->items[i]);
      }
      vg_jw_end_object(w);
      return;
  }
}

char *vg_jw_finish(vg_json_writer *w, size_t *len) {
  if (!w->err && (w->depth != 0 || w->after_key)) wfail(w, VG_ERR_ARG, "unclosed object or array");
  if (!w->err && !w->len) wfail(w, VG_ERR_ARG, "no value written");
  if (w->err) {   /* the message of the first failing call is in vg_last_error() */
    vg_jw_discard(w);
    return NULL;
  }
  char *b = w->buf;
  if (len) *len = w->len;
  w->buf = NULL;
  w->len = w->cap = 0;
  return b;
}

void vg_jw_discard(vg_json_writer *w) {
  free(w->buf);
  w->buf = NULL;
  w->len = w->cap = 0;
}
