/* pth.c — torch.save zip checkpoints through a restricted unpickler (see pth.h).
 *
 * The unpickler is a stack machine over "values" (all allocated into one list owned by
 * the unpickler and freed together); the memo and containers hold plain pointers, so
 * shared objects stay shared as in Python. Nothing is ever called: the only "callables"
 * are tags for the allow-listed globals, interpreted by REDUCE. Tensors are recorded as
 * (storage, offset, size, stride) and copied out of the zip entries after the pickle
 * has been fully and successfully read.
 *
 * Memory: every allocation made on behalf of the file (pickle values, strings, container
 * arrays, stack, memo, flattened names, the result's entries and tensors, inflated
 * storages) is first charged to one counter, which may never pass the budget fixed before
 * data.pkl is read (see pth.h). The counter only grows (inflated storages, which are
 * decoded one at a time, are charged once at the largest one's size), so it bounds the
 * peak. Loading runs in three phases: unpickle; flatten (names built, duplicates refused
 * as met, flattened visits capped); then the whole result is sized and charged before the
 * first tensor is allocated, and storages are decoded one at a time, each once, with all
 * the tensors that view it copied out before the next. */
#include "nn/pth.h"
#include <stdarg.h>
#include <string.h>
#include "base/file.h"
#include "nn/state_dict.h"

typedef enum {
  V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE,
  V_TENSOR, V_OTHER, V_BLOCKED,
} vkind;

typedef enum {
  G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_STORAGE,
} gkind;

/* pickle storage dtypes; D_F64 has no vg_dtype */
typedef enum { D_F32, D_F16, D_BF16, D_F64, D_I64, D_I32, D_U8, D_BOOL } sdtype;
static const struct { const char *name; sdtype dt; size_t size; } storage_classes[] = {
  {"FloatStorage", D_F32, 4}, {"HalfStorage", D_F16, 2}, {"BFloat16Storage", D_BF16, 2},
  {"DoubleStorage", D_F64, 8}, {"LongStorage", D_I64, 8}, {"IntStorage", D_I32, 4},
  {"ByteStorage", D_U8, 1}, {"BoolStorage", D_BOOL, 1},
};

typedef struct value value;
struct value {
  vkind kind;
  int64_t i;                  /* BOOL, INT */
  double f;
  char *s; size_t slen;       /* STR */
  value **items; size_t n, cap;   /* TUPLE, LIST; DICT: keys and values interleaved */
  gkind g; int sclass;        /* GLOBAL */
  /* STORAGE */
  const vg_zip_entry *entry; int64_t numel; char *key; size_t sidx;
  /* TENSOR */
  value *storage; int64_t offset; int ndim;
  int64_t *size, *stride;     /* one block of 2 x VG_MAX_DIMS, tensors only (keeps values small) */
  bool requires_grad, parameter;
};

/* The decode budget: bytes allocated on behalf of the file so far, and the limit. A
 * refused charge records its error (VG_ERR_LIMIT) in `err`, so callers that can only say
 * "failed" (new_value returning NULL) still report the budget, not "out of memory". */
typedef struct {
  uint64_t used, limit, storage_bytes;   /* storage_bytes: S of the budget formula */
  uint64_t storage_read;                 /* storage bytes decoded (viewed or inflated) */
  size_t storages;                       /* distinct storages decoded */
  vg_status err;
} budget;

static vg_status charge(budget *b, uint64_t bytes, const char *what) {
  if (bytes > b->limit - b->used) {
    b->err = vg_fail(VG_ERR_LIMIT, "pth: %s needs %llu more bytes, over the decode budget of %llu bytes "
                     "(%llu already used; budget = 4 x %llu storage bytes + 64 MiB, or max_decoded)",
                     what, (unsigned long long)bytes, (unsigned long long)b->limit,
                     (unsigned long long)b->used, (unsigned long long)b->storage_bytes);
    return b->err;
  }
  b->used += bytes;
  return VG_OK;
}

typedef struct {
  const uint8_t *p; size_t n, pos, op_pos;
  const vg_pth_opts *o;
  const vg_zip *zip;
  const char *prefix; size_t prefix_len;
  value **all; size_t nall, capall;
  value **stack; size_t sp, capstack;
  size_t *marks; size_t nmarks, capmarks;
  value **memo; size_t nmemo, memo_set;
  value **by_entry;         /* storage value per zip entry index (one value per storage) */
  size_t nstorages;
  bool lenient;
  size_t max_values, max_stack;
  budget *b;
} unpickler;

/* Grows *arr to hold `need` elements, charging the added capacity first. */
static int grow(budget *b, void **arr, size_t *cap, size_t need, size_t elt) {
  if (need <= *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 4;
  while (nc < need) nc *= 2;
  if (nc > SIZE_MAX / elt || charge(b, (uint64_t)(nc - *cap) * elt, "a pickle container") != VG_OK) return -1;
  void *p = realloc(*arr, nc * elt);
  if (!p) return -1;
  *arr = p; *cap = nc;
  return 0;
}

/* The budget's error when a charge failed, else out of memory (for `what`). */
static vg_status nomem_b(budget *b, const char *what) {
  if (b && b->err != VG_OK) return b->err;
  return vg_fail(VG_ERR_NOMEM, "pth: out of memory for %s", what);
}
#define nomem() nomem_b(u->b, "a pickle object or container")

static value *new_value(unpickler *u, vkind k) {
  if (u->nall >= u->max_values) {
    u->b->err = vg_fail(VG_ERR_LIMIT, "pth: more than %zu pickle objects (max_values)", u->max_values);
    return NULL;
  }
  if (grow(u->b, (void **)&u->all, &u->capall, u->nall + 1, sizeof *u->all)) return NULL;
  if (charge(u->b, sizeof(value), "a pickle object") != VG_OK) return NULL;
  value *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->kind = k;
  u->all[u->nall++] = v;
  return v;
}

static void free_values(unpickler *u) {
  for (size_t i = 0; i < u->nall; i++) {
    free(u->all[i]->s); free(u->all[i]->items); free(u->all[i]->key); free(u->all[i]->size); free(u->all[i]);
  }
  free(u->all); free(u->stack); free(u->marks); free(u->memo); free(u->by_entry);
}

static const char *kind_name(vkind k) {
  switch (k) {
    case V_NONE: return "None"; case V_BOOL: return "bool"; case V_INT: return "int";
    case V_FLOAT: return "float"; case V_STR: return "str"; case V_TUPLE: return "tuple";
    case V_LIST: return "list"; case V_DICT: return "dict"; case V_GLOBAL: return "global";
    case V_STORAGE: return "storage"; case V_TENSOR: return "tensor"; case V_OTHER: return "object";
    case V_BLOCKED: return "disallowed object";
  }
  return "?";
}

#define FAIL(u, st, ...) fail_at(u, st, __VA_ARGS__)
static vg_status fail_at(unpickler *u, vg_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static vg_status fail_at(unpickler *u, vg_status st, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return vg_fail(st, "data.pkl offset %zu: %s", u->op_pos, msg);
}

static vg_status push(unpickler *u, value *v) {
  if (!v) return nomem();
  if (u->sp >= u->max_stack)
    return FAIL(u, VG_ERR_LIMIT, "pickle stack deeper than %zu values (max_stack)", u->max_stack);
  if (grow(u->b, (void **)&u->stack, &u->capstack, u->sp + 1, sizeof *u->stack)) return nomem();
  u->stack[u->sp++] = v;
  return VG_OK;
}
static size_t floor_of(const unpickler *u) { return u->nmarks ? u->marks[u->nmarks - 1] : 0; }
static vg_status pop(unpickler *u, const char *op, value **v) {
  if (u->sp <= floor_of(u)) return FAIL(u, VG_ERR_FORMAT, "%s: stack underflow", op);
  *v = u->stack[--u->sp];
  return VG_OK;
}
static vg_status top(unpickler *u, const char *op, value **v) {
  if (u->sp <= floor_of(u)) return FAIL(u, VG_ERR_FORMAT, "%s: stack underflow", op);
  *v = u->stack[u->sp - 1];
  return VG_OK;
}
/* items since the last MARK: [*base, sp); removes the mark */
static vg_status pop_mark(unpickler *u, const char *op, size_t *base) {
  if (!u->nmarks) return FAIL(u, VG_ERR_FORMAT, "%s without a MARK", op);
  *base = u->marks[--u->nmarks];
  return VG_OK;
}
static vg_status need(unpickler *u, size_t k, const char *op) {
  if (u->n - u->pos < k)
    return FAIL(u, VG_ERR_FORMAT, "%s: pickle truncated (needs %zu bytes, %zu left)", op, k, u->n - u->pos);
  return VG_OK;
}
static uint64_t le(const uint8_t *p, int k) {
  uint64_t v = 0;
  for (int i = k - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static vg_status append_item(unpickler *u, value *c, value *x) {
  if (grow(u->b, (void **)&c->items, &c->cap, c->n + 1, sizeof *c->items)) return nomem();
  c->items[c->n++] = x;
  return VG_OK;
}
static vg_status make_seq(unpickler *u, vkind k, value **src, size_t n) {
  value *t = new_value(u, k);
  if (!t) return nomem();
  for (size_t i = 0; i < n; i++)
    if (append_item(u, t, src[i])) return nomem();
  return push(u, t);
}
static int str_eq(const value *v, const char *s) {
  return v->kind == V_STR && v->slen == strlen(s) && memcmp(v->s, s, v->slen) == 0;
}
static vg_status set_item(unpickler *u, value *d, value *k, value *v, const char *op) {
  if (d->kind == V_BLOCKED || d->kind == V_OTHER) return VG_OK;   /* lenient placeholders */
  if (d->kind != V_DICT) return FAIL(u, VG_ERR_FORMAT, "%s on a %s, not a dict", op, kind_name(d->kind));
  /* duplicate keys (Python would replace) are refused while flattening, before any
   * tensor is copied */
  if (append_item(u, d, k) || append_item(u, d, v)) return nomem();
  return VG_OK;
}

/* Resolves module.name against the allow-list; disallowed names refuse, or become
 * V_BLOCKED placeholders in lenient mode. */
static vg_status global(unpickler *u, const char *mod, size_t ml, const char *name, size_t nl,
                        const char *op) {
#define IS(a, b) (ml == strlen(a) && memcmp(mod, a, ml) == 0 && nl == strlen(b) && memcmp(name, b, nl) == 0)
  value *v = new_value(u, V_GLOBAL);
  if (!v) return nomem();
  if (IS("collections", "OrderedDict")) v->g = G_ORDERED_DICT;
  else if (IS("torch._utils", "_rebuild_tensor_v2")) v->g = G_REBUILD_TENSOR_V2;
  else if (IS("torch._utils", "_rebuild_parameter")) v->g = G_REBUILD_PARAMETER;
  else {
    int found = 0;
    for (size_t i = 0; i < sizeof storage_classes / sizeof *storage_classes; i++)
      if (IS("torch", storage_classes[i].name)) { v->g = G_STORAGE; v->sclass = (int)i; found = 1; }
    if (!found) {
      if (!u->lenient)
        return FAIL(u, VG_ERR_UNSUPPORTED, "%s '%.*s.%.*s' is not allowed (only state-dict globals "
                    "are; nothing in a checkpoint may run code)", op, (int)(ml > 100 ? 100 : ml), mod,
                    (int)(nl > 100 ? 100 : nl), name);
      v->kind = V_BLOCKED;
    }
  }
#undef IS
  return push(u, v);
}

static vg_status get_int(unpickler *u, const value *v, const char *what, int64_t *out) {
  if (v->kind != V_INT && v->kind != V_BOOL)
    return FAIL(u, VG_ERR_FORMAT, "%s: expected an int, got %s", what, kind_name(v->kind));
  *out = v->i;
  return VG_OK;
}

static vg_status int_tuple(unpickler *u, const value *t, const char *what, int64_t *out, int *n) {
  if (t->kind != V_TUPLE) return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: %s is a %s, not a tuple", what, kind_name(t->kind));
  if (t->n > VG_MAX_DIMS)
    return FAIL(u, VG_ERR_UNSUPPORTED, "_rebuild_tensor_v2: %zu dims (at most %d)", t->n, VG_MAX_DIMS);
  for (size_t i = 0; i < t->n; i++) {
    vg_status st = get_int(u, t->items[i], "_rebuild_tensor_v2 size/stride", &out[i]);
    if (st != VG_OK) return st;
    if (out[i] < 0) return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: negative %s %lld", what, (long long)out[i]);
  }
  *n = (int)t->n;
  return VG_OK;
}

static vg_status rebuild_tensor(unpickler *u, const value *args) {
  if (args->n != 6 && args->n != 7)
    return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", args->n);
  value *s = args->items[0];
  if (s->kind != V_STORAGE)
    return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: first argument is a %s, not a storage", kind_name(s->kind));
  value *t = new_value(u, V_TENSOR);
  if (!t) return nomem();
  if (charge(u->b, 2 * VG_MAX_DIMS * sizeof(int64_t), "a tensor's shape") != VG_OK) return u->b->err;
  t->size = calloc(2 * VG_MAX_DIMS, sizeof *t->size);
  if (!t->size) return nomem();
  t->stride = t->size + VG_MAX_DIMS;
  t->storage = s;
  int ns = 0, nst = 0;
  vg_status st = get_int(u, args->items[1], "_rebuild_tensor_v2 storage_offset", &t->offset);
  if (st == VG_OK) st = int_tuple(u, args->items[2], "size", t->size, &ns);
  if (st == VG_OK) st = int_tuple(u, args->items[3], "stride", t->stride, &nst);
  if (st != VG_OK) return st;
  if (ns != nst) return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: %d sizes but %d strides", ns, nst);
  t->ndim = ns;
  if (args->items[4]->kind != V_BOOL && args->items[4]->kind != V_INT)
    return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: requires_grad is a %s", kind_name(args->items[4]->kind));
  t->requires_grad = args->items[4]->i != 0;
  if (args->items[5]->kind != V_DICT || args->items[5]->n != 0)
    return FAIL(u, VG_ERR_UNSUPPORTED, "_rebuild_tensor_v2: backward hooks are not supported");
  if (t->offset < 0) return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: negative storage offset");
  /* extent: offset + sum (size-1)*stride < numel, unless the tensor is empty */
  int64_t numel = 1, last = t->offset, extent = 8;   /* extent: 8 x product of max(size, 1) */
  for (int d = 0; d < ns; d++) {
    if (__builtin_mul_overflow(numel, t->size[d], &numel))
      return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: element count overflows");
    if (extent >= 0 && __builtin_mul_overflow(extent, t->size[d] > 0 ? t->size[d] : 1, &extent)) extent = -1;
  }
  /* an empty view ([0, 2^62, 8]) has 0 elements, but its contiguous copy's strides would
   * overflow (a non-empty one that large is over the budget, refused later by name) */
  if (numel == 0 && extent < 0)
    return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: the sizes multiply past int64 (strides overflow)");
  if (numel > 0) {
    for (int d = 0; d < ns; d++) {
      int64_t span;
      if (__builtin_mul_overflow(t->size[d] - 1, t->stride[d], &span) ||
          __builtin_add_overflow(last, span, &last))
        return FAIL(u, VG_ERR_FORMAT, "_rebuild_tensor_v2: extent overflows");
    }
    if (last >= s->numel)
      return FAIL(u, VG_ERR_FORMAT, "tensor extent (offset %lld, last element %lld) lies beyond its "
                  "storage '%s' of %lld elements", (long long)t->offset, (long long)last, s->key,
                  (long long)s->numel);
  }
  return push(u, t);
}

static vg_status reduce(unpickler *u) {
  value *args = NULL, *f = NULL;
  vg_status st = pop(u, "REDUCE", &args);
  if (st == VG_OK) st = pop(u, "REDUCE", &f);
  if (st != VG_OK) return st;
  if (f->kind == V_BLOCKED) return push(u, new_value(u, V_BLOCKED));
  if (f->kind != V_GLOBAL)
    return FAIL(u, VG_ERR_FORMAT, "REDUCE on a %s, which is not callable", kind_name(f->kind));
  if (args->kind != V_TUPLE)
    return FAIL(u, VG_ERR_FORMAT, "REDUCE arguments are a %s, not a tuple", kind_name(args->kind));
  switch (f->g) {
    case G_ORDERED_DICT:
      if (args->n != 0) return FAIL(u, VG_ERR_UNSUPPORTED, "REDUCE: OrderedDict with arguments");
      return push(u, new_value(u, V_DICT));
    case G_REBUILD_TENSOR_V2:
      return rebuild_tensor(u, args);
    case G_REBUILD_PARAMETER: {
      if (args->n != 3 || args->items[0]->kind != V_TENSOR)
        return FAIL(u, VG_ERR_FORMAT, "_rebuild_parameter wants (tensor, requires_grad, hooks)");
      if (args->items[2]->kind != V_DICT || args->items[2]->n != 0)
        return FAIL(u, VG_ERR_UNSUPPORTED, "_rebuild_parameter: backward hooks are not supported");
      value *t = args->items[0];
      t->parameter = true;
      t->requires_grad = args->items[1]->i != 0;
      return push(u, t);
    }
    case G_STORAGE:
      return FAIL(u, VG_ERR_UNSUPPORTED, "REDUCE: calling the storage class torch.%s is not allowed",
                  storage_classes[f->sclass].name);
  }
  return FAIL(u, VG_ERR_FORMAT, "REDUCE: bad callable");
}

static vg_status persistent_load(unpickler *u) {
  value *pid = NULL;
  vg_status st = pop(u, "BINPERSID", &pid);
  if (st != VG_OK) return st;
  if (pid->kind != V_TUPLE || pid->n != 5 || !str_eq(pid->items[0], "storage"))
    return FAIL(u, VG_ERR_FORMAT, "BINPERSID: persistent id is not ('storage', class, key, location, numel)");
  value *cls = pid->items[1], *key = pid->items[2], *loc = pid->items[3];
  if (cls->kind != V_GLOBAL || cls->g != G_STORAGE)
    return FAIL(u, VG_ERR_FORMAT, "BINPERSID: storage type is a %s, not a torch storage class", kind_name(cls->kind));
  if (key->kind != V_STR || loc->kind != V_STR || memchr(key->s, '/', key->slen) || key->slen > 256)
    return FAIL(u, VG_ERR_FORMAT, "BINPERSID: storage key/location must be strings (key without '/')");
  int64_t numel = 0;
  if ((st = get_int(u, pid->items[4], "BINPERSID numel", &numel)) != VG_OK) return st;
  size_t es = storage_classes[cls->sclass].size;
  if (numel < 0 || (uint64_t)numel > UINT64_MAX / es)
    return FAIL(u, VG_ERR_FORMAT, "BINPERSID: bad storage size %lld", (long long)numel);
  char path[600];
  snprintf(path, sizeof path, "%.*sdata/%.*s", (int)u->prefix_len, u->prefix, (int)key->slen, key->s);
  const vg_zip_entry *e = vg_zip_find(u->zip, path);
  if (!e) return FAIL(u, VG_ERR_FORMAT, "storage '%.*s': archive has no entry '%s'", (int)key->slen, key->s, path);
  if (e->usize != (uint64_t)numel * es)
    return FAIL(u, VG_ERR_FORMAT, "storage '%.*s': %lld elements of torch.%s need %llu bytes, entry "
                "'%s' holds %llu", (int)key->slen, key->s, (long long)numel,
                storage_classes[cls->sclass].name, (unsigned long long)numel * es, path,
                (unsigned long long)e->usize);
  /* one value per key (so a storage is decoded once, however many tensors view it): a
   * second reference must agree */
  size_t ei = (size_t)(e - vg_zip_entry_at(u->zip, 0));
  if (!u->by_entry) {
    size_t nz = vg_zip_count(u->zip);
    if (charge(u->b, (uint64_t)nz * sizeof *u->by_entry, "the storage index") != VG_OK) return u->b->err;
    u->by_entry = calloc(nz, sizeof *u->by_entry);
    if (!u->by_entry) return nomem();
  }
  value *o = u->by_entry[ei];
  if (o) {
    if (o->sclass != cls->sclass || o->numel != numel)
      return FAIL(u, VG_ERR_FORMAT, "storage '%s' referenced twice with different types/sizes", o->key);
    return push(u, o);
  }
  value *s = new_value(u, V_STORAGE);
  if (!s) return nomem();
  s->entry = e; s->numel = numel; s->sclass = cls->sclass;
  s->sidx = u->nstorages++;
  if (charge(u->b, key->slen + 1, "a storage key") != VG_OK) return u->b->err;
  s->key = strndup(key->s, key->slen);
  if (!s->key) return nomem();
  u->by_entry[ei] = s;
  return push(u, s);
}

static vg_status memo_put(unpickler *u, uint64_t idx, const char *op) {
  value *v = NULL;
  vg_status st = top(u, op, &v);
  if (st != VG_OK) return st;
  size_t max = u->o && u->o->max_memo ? u->o->max_memo : (size_t)1 << 22;
  if (idx >= max) return FAIL(u, VG_ERR_LIMIT, "%s: memo index %llu over the limit %zu", op, (unsigned long long)idx, max);
  /* picklers number memo slots 0, 1, 2, ...: a pickle of n bytes sets fewer than n */
  if (idx >= u->n)
    return FAIL(u, VG_ERR_FORMAT, "%s: memo index %llu, more than a %zu-byte pickle can have set", op,
                (unsigned long long)idx, u->n);
  if (idx >= u->nmemo) {
    size_t nn = u->nmemo ? u->nmemo : 64;
    while (nn <= idx) nn *= 2;
    if (nn > max) nn = max;
    if (charge(u->b, (uint64_t)(nn - u->nmemo) * sizeof *u->memo, "the pickle memo") != VG_OK) return u->b->err;
    value **m = realloc(u->memo, nn * sizeof *m);
    if (!m) return nomem();
    memset(m + u->nmemo, 0, (nn - u->nmemo) * sizeof *m);
    u->memo = m; u->nmemo = nn;
  }
  if (!u->memo[idx]) u->memo_set++;
  u->memo[idx] = v;
  return VG_OK;
}
static vg_status memo_get(unpickler *u, uint64_t idx, const char *op) {
  if (idx >= u->nmemo || !u->memo[idx])
    return FAIL(u, VG_ERR_FORMAT, "%s: memo reference %llu out of range (never stored)", op, (unsigned long long)idx);
  return push(u, u->memo[idx]);
}

static vg_status string(unpickler *u, size_t len, const char *op, vkind k) {
  if (u->n - u->pos < len) return FAIL(u, VG_ERR_FORMAT, "%s: pickle truncated inside a %zu-byte string", op, len);
  value *v = new_value(u, k);
  if (!v) return nomem();
  if (k == V_STR) {
    if (charge(u->b, (uint64_t)len + 1, "a pickle string") != VG_OK) return u->b->err;
    v->s = malloc(len + 1);
    if (!v->s) return nomem();
    memcpy(v->s, u->p + u->pos, len);
    v->s[len] = 0;
    v->slen = len;
  }
  u->pos += len;
  return push(u, v);
}

/* Runs data.pkl to STOP; *result = the returned object. */
static vg_status run(unpickler *u, value **result) {
  vg_status st = VG_OK;
  size_t depth_max = u->o && u->o->max_depth ? u->o->max_depth : 64;
  (void)depth_max;
  if (u->n < 2 || u->p[0] != 0x80)
    return vg_fail(VG_ERR_FORMAT, "data.pkl: not a protocol 2+ pickle (no PROTO opcode)");
  while (st == VG_OK) {
    u->op_pos = u->pos;
    if (u->pos >= u->n) return FAIL(u, VG_ERR_FORMAT, "pickle truncated: no STOP opcode");
    uint8_t op = u->p[u->pos++];
    value *a = NULL, *b = NULL, *c = NULL;
    size_t base = 0;
    switch (op) {
      case 0x80:   /* PROTO */
        if ((st = need(u, 1, "PROTO")) != VG_OK) break;
        if (u->p[u->pos] < 2 || u->p[u->pos] > 5)
          st = FAIL(u, VG_ERR_UNSUPPORTED, "PROTO: pickle protocol %u (2-5 supported)", u->p[u->pos]);
        u->pos++;
        break;
      case 0x95:   /* FRAME: a length hint only */
        if ((st = need(u, 8, "FRAME")) == VG_OK) u->pos += 8;
        break;
      case '}': st = push(u, new_value(u, V_DICT)); break;
      case ']': st = push(u, new_value(u, V_LIST)); break;
      case ')': st = push(u, new_value(u, V_TUPLE)); break;
      case 0x8f: case 'C': case 'B': case 0x8e:   /* EMPTY_SET, SHORT_BINBYTES, BINBYTES, BINBYTES8 */
        if (!u->lenient) goto refuse;
        if (op == 0x8f) { st = push(u, new_value(u, V_OTHER)); break; }
        {
          int k = op == 'C' ? 1 : op == 'B' ? 4 : 8;
          if ((st = need(u, (size_t)k, "BINBYTES")) != VG_OK) break;
          uint64_t len = le(u->p + u->pos, k);
          u->pos += (size_t)k;
          st = len > u->n - u->pos ? FAIL(u, VG_ERR_FORMAT, "BINBYTES: pickle truncated inside "
                                          "%llu bytes", (unsigned long long)len)
                                   : string(u, (size_t)len, "BINBYTES", V_OTHER);
        }
        break;
      case 0x90: case 0x91:   /* ADDITEMS, FROZENSET (lenient only) */
        if (!u->lenient) goto refuse;
        if ((st = pop_mark(u, op == 0x90 ? "ADDITEMS" : "FROZENSET", &base)) != VG_OK) break;
        u->sp = base;
        if (op == 0x91) st = push(u, new_value(u, V_OTHER));
        else if (u->sp <= floor_of(u)) st = FAIL(u, VG_ERR_FORMAT, "ADDITEMS: stack underflow");
        break;
      case '0':   /* POP (lenient only) */
        if (!u->lenient) goto refuse;
        st = pop(u, "POP", &a);
        break;
      case '1':   /* POP_MARK */
        if (!u->lenient) goto refuse;
        if ((st = pop_mark(u, "POP_MARK", &base)) == VG_OK) u->sp = base;
        break;
      case '2':   /* DUP */
        if (!u->lenient) goto refuse;
        if ((st = top(u, "DUP", &a)) == VG_OK) st = push(u, a);
        break;
      case 0x81:   /* NEWOBJ: cls, args -> placeholder (lenient only, never called) */
        if (!u->lenient) goto refuse;
        if ((st = pop(u, "NEWOBJ", &a)) == VG_OK && (st = pop(u, "NEWOBJ", &b)) == VG_OK)
          st = push(u, new_value(u, V_BLOCKED));
        break;
      case 0x92:   /* NEWOBJ_EX */
        if (!u->lenient) goto refuse;
        if ((st = pop(u, "NEWOBJ_EX", &a)) == VG_OK && (st = pop(u, "NEWOBJ_EX", &b)) == VG_OK &&
            (st = pop(u, "NEWOBJ_EX", &c)) == VG_OK)
          st = push(u, new_value(u, V_BLOCKED));
        break;
      case '(':
        if (u->nmarks >= 65536) { st = FAIL(u, VG_ERR_LIMIT, "MARK: more than 65536 open marks"); break; }
        if (grow(u->b, (void **)&u->marks, &u->capmarks, u->nmarks + 1, sizeof *u->marks)) { st = nomem(); break; }
        u->marks[u->nmarks++] = u->sp;
        break;
      case 0x85: case 0x86: case 0x87: {   /* TUPLE1..3 */
        size_t k = (size_t)(op - 0x84);
        if (u->sp < floor_of(u) + k) { st = FAIL(u, VG_ERR_FORMAT, "TUPLE%zu: stack underflow", k); break; }
        u->sp -= k;
        st = make_seq(u, V_TUPLE, u->stack + u->sp, k);
        break;
      }
      case 't':
        if ((st = pop_mark(u, "TUPLE", &base)) != VG_OK) break;
        {   /* (an empty tuple with nothing ever pushed: the stack is still NULL) */
          size_t k = u->sp - base;
          u->sp = base;
          st = make_seq(u, V_TUPLE, k ? u->stack + base : NULL, k);
        }
        break;
      case 's':
        if ((st = pop(u, "SETITEM", &c)) == VG_OK && (st = pop(u, "SETITEM", &b)) == VG_OK &&
            (st = top(u, "SETITEM", &a)) == VG_OK)
          st = set_item(u, a, b, c, "SETITEM");
        break;
      case 'u':
        if ((st = pop_mark(u, "SETITEMS", &base)) != VG_OK) break;
        if ((u->sp - base) % 2) { st = FAIL(u, VG_ERR_FORMAT, "SETITEMS: odd number of items"); break; }
        if (base <= floor_of(u)) { st = FAIL(u, VG_ERR_FORMAT, "SETITEMS: stack underflow (no dict)"); break; }
        a = u->stack[base - 1];
        for (size_t i = base; i < u->sp && st == VG_OK; i += 2)
          st = set_item(u, a, u->stack[i], u->stack[i + 1], "SETITEMS");
        u->sp = base;
        break;
      case 'a':
        if ((st = pop(u, "APPEND", &b)) == VG_OK && (st = top(u, "APPEND", &a)) == VG_OK) {
          if (a->kind == V_BLOCKED || a->kind == V_OTHER) break;
          st = a->kind != V_LIST ? FAIL(u, VG_ERR_FORMAT, "APPEND on a %s, not a list", kind_name(a->kind))
                                 : append_item(u, a, b);
        }
        break;
      case 'e':
        if ((st = pop_mark(u, "APPENDS", &base)) != VG_OK) break;
        if (base <= floor_of(u)) { st = FAIL(u, VG_ERR_FORMAT, "APPENDS: stack underflow (no list)"); break; }
        a = u->stack[base - 1];
        if (a->kind != V_LIST && a->kind != V_BLOCKED && a->kind != V_OTHER) {
          st = FAIL(u, VG_ERR_FORMAT, "APPENDS on a %s, not a list", kind_name(a->kind));
          break;
        }
        for (size_t i = base; i < u->sp && st == VG_OK && a->kind == V_LIST; i++) st = append_item(u, a, u->stack[i]);
        u->sp = base;
        break;
      case 'J': case 'K': case 'M': {
        int k = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        if ((st = need(u, (size_t)k, "BININT")) != VG_OK) break;
        value *v = new_value(u, V_INT);
        if (!v) { st = nomem(); break; }
        uint64_t x = le(u->p + u->pos, k);
        v->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)x : (int64_t)x;
        u->pos += (size_t)k;
        st = push(u, v);
        break;
      }
      case 0x8a: {   /* LONG1: n bytes two's complement */
        if ((st = need(u, 1, "LONG1")) != VG_OK) break;
        size_t k = u->p[u->pos++];
        if (k > 8) { st = FAIL(u, VG_ERR_UNSUPPORTED, "LONG1: %zu-byte integer does not fit int64", k); break; }
        if ((st = need(u, k, "LONG1")) != VG_OK) break;
        value *v = new_value(u, V_INT);
        if (!v) { st = nomem(); break; }
        uint64_t x = le(u->p + u->pos, (int)k);
        if (k > 0 && k < 8 && (u->p[u->pos + k - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * k);
        v->i = (int64_t)x;
        u->pos += k;
        st = push(u, v);
        break;
      }
      case 'G': {
        if ((st = need(u, 8, "BINFLOAT")) != VG_OK) break;
        uint64_t x = 0;
        for (int i = 0; i < 8; i++) x = x << 8 | u->p[u->pos + i];
        value *v = new_value(u, V_FLOAT);
        if (!v) { st = nomem(); break; }
        memcpy(&v->f, &x, 8);
        u->pos += 8;
        st = push(u, v);
        break;
      }
      case 0x88: case 0x89: {
        value *v = new_value(u, V_BOOL);
        if (v) v->i = op == 0x88;
        st = push(u, v);
        break;
      }
      case 'N': st = push(u, new_value(u, V_NONE)); break;
      case 0x8c: case 'X': case 0x8d: {
        int k = op == 0x8c ? 1 : op == 'X' ? 4 : 8;
        if ((st = need(u, (size_t)k, "BINUNICODE")) != VG_OK) break;
        uint64_t len = le(u->p + u->pos, k);
        u->pos += (size_t)k;
        st = len > u->n - u->pos ? FAIL(u, VG_ERR_FORMAT, "BINUNICODE: pickle truncated inside a "
                                        "%llu-byte string", (unsigned long long)len)
                                 : string(u, (size_t)len, "BINUNICODE", V_STR);
        break;
      }
      case 'q': case 'r': {
        int k = op == 'q' ? 1 : 4;
        if ((st = need(u, (size_t)k, "BINPUT")) != VG_OK) break;
        uint64_t idx = le(u->p + u->pos, k);
        u->pos += (size_t)k;
        st = memo_put(u, idx, op == 'q' ? "BINPUT" : "LONG_BINPUT");
        break;
      }
      case 0x94: st = memo_put(u, u->memo_set, "MEMOIZE"); break;
      case 'h': case 'j': {
        int k = op == 'h' ? 1 : 4;
        if ((st = need(u, (size_t)k, "BINGET")) != VG_OK) break;
        uint64_t idx = le(u->p + u->pos, k);
        u->pos += (size_t)k;
        st = memo_get(u, idx, op == 'h' ? "BINGET" : "LONG_BINGET");
        break;
      }
      case 'c': {   /* GLOBAL "module\nname\n" */
        const char *m = (const char *)u->p + u->pos;
        const char *e1 = memchr(m, '\n', u->n - u->pos);
        const char *e2 = e1 ? memchr(e1 + 1, '\n', u->n - u->pos - (size_t)(e1 + 1 - m)) : NULL;
        if (!e2) { st = FAIL(u, VG_ERR_FORMAT, "GLOBAL: pickle truncated inside the name"); break; }
        u->pos += (size_t)(e2 + 1 - m);
        st = global(u, m, (size_t)(e1 - m), e1 + 1, (size_t)(e2 - e1 - 1), "GLOBAL");
        break;
      }
      case 0x93:   /* STACK_GLOBAL */
        if ((st = pop(u, "STACK_GLOBAL", &b)) != VG_OK || (st = pop(u, "STACK_GLOBAL", &a)) != VG_OK) break;
        if (a->kind != V_STR || b->kind != V_STR) {
          st = FAIL(u, VG_ERR_FORMAT, "STACK_GLOBAL: module and name must be strings");
          break;
        }
        st = global(u, a->s, a->slen, b->s, b->slen, "STACK_GLOBAL");
        break;
      case 'R': st = reduce(u); break;
      case 'Q': st = persistent_load(u); break;
      case 'b':   /* BUILD: only OrderedDict's __dict__ (_metadata), ignored */
        if ((st = pop(u, "BUILD", &b)) != VG_OK || (st = top(u, "BUILD", &a)) != VG_OK) break;
        if (a->kind == V_BLOCKED || a->kind == V_OTHER) break;
        if (a->kind != V_DICT || (b->kind != V_DICT && b->kind != V_NONE))
          st = FAIL(u, VG_ERR_UNSUPPORTED, "BUILD on a %s with a %s state (only a dict's attribute "
                    "dict is accepted)", kind_name(a->kind), kind_name(b->kind));
        break;
      case '.':
        if ((st = pop(u, "STOP", &a)) != VG_OK) break;
        if (u->sp != 0 || u->nmarks != 0)
          return FAIL(u, VG_ERR_FORMAT, "STOP with %zu values and %zu marks left over", u->sp, u->nmarks);
        *result = a;
        return VG_OK;
      default:
      refuse: {
        static const struct { uint8_t op; const char *name; } names[] = {
          {'i', "INST"}, {'o', "OBJ"}, {0x81, "NEWOBJ"}, {0x92, "NEWOBJ_EX"}, {0x82, "EXT1"},
          {0x83, "EXT2"}, {0x84, "EXT4"}, {'P', "PERSID"}, {'I', "INT"}, {'L', "LONG"},
          {'F', "FLOAT"}, {'S', "STRING"}, {'V', "UNICODE"}, {'p', "PUT"}, {'g', "GET"},
          {'l', "LIST"}, {'d', "DICT"}, {0x8b, "LONG4"}, {'T', "BINSTRING"}, {'U', "SHORT_BINSTRING"},
          {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {'C', "SHORT_BINBYTES"},
          {'B', "BINBYTES"}, {0x8e, "BINBYTES8"}, {'0', "POP"}, {'1', "POP_MARK"}, {'2', "DUP"},
          {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"},
        };
        const char *nm = NULL;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) if (names[i].op == op) nm = names[i].name;
        if (nm) st = FAIL(u, VG_ERR_UNSUPPORTED, "opcode %s (0x%02x) is not allowed in a state dict", nm, op);
        else st = FAIL(u, VG_ERR_FORMAT, "unknown opcode 0x%02x", op);
        break;
      }
    }
  }
  return st;
}

/* ---- from values to the result dict ---- */

typedef struct { char *name; value *v; } leaf;

typedef struct {
  unpickler *u;
  budget *b;
  leaf *leaves; size_t nleaves, capleaves;
  size_t *hash; size_t hcap;   /* open addressing over leaves: index + 1, 0 = empty */
  size_t visits, max_entries, max_depth, skipped;
  bool to_f32;
  char **nodes; size_t nnodes, capnodes;   /* flattened names of the sub-dicts met (open addressing) */
} builder;

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

/* The leaf named `name`, or NULL. */
static leaf *find_leaf(const builder *bd, const char *name) {
  if (!bd->hcap) return NULL;
  for (size_t i = (size_t)fnv1a(name) & (bd->hcap - 1);; i = (i + 1) & (bd->hcap - 1)) {
    if (!bd->hash[i]) return NULL;
    leaf *l = &bd->leaves[bd->hash[i] - 1];
    if (strcmp(l->name, name) == 0) return l;
  }
}

static bool is_node(const builder *bd, const char *name) {
  if (!bd->capnodes) return false;
  for (size_t i = (size_t)fnv1a(name) & (bd->capnodes - 1);; i = (i + 1) & (bd->capnodes - 1)) {
    if (!bd->nodes[i]) return false;
    if (strcmp(bd->nodes[i], name) == 0) return true;
  }
}

/* Records the flattened name of a sub-dict about to be walked: a second dict (or a leaf)
 * under the same name is a duplicate key one level up ({"sd": {...}, "sd": {...}}), which
 * Python resolves to the last one; refused like a duplicate leaf, never merged. */
static vg_status add_node(builder *bd, const char *name) {
  if (find_leaf(bd, name) || is_node(bd, name)) return vg_fail(VG_ERR_FORMAT, "pth: key '%s' appears twice", name);
  if (2 * (bd->nnodes + 1) > bd->capnodes) {
    size_t nc = bd->capnodes ? bd->capnodes * 2 : 64;
    char **h = NULL;
    if (charge(bd->b, (uint64_t)nc * sizeof *h, "the key index") != VG_OK || !(h = calloc(nc, sizeof *h)))
      return nomem_b(bd->b, "a flattened key");
    for (size_t k = 0; k < bd->capnodes; k++) {
      if (!bd->nodes[k]) continue;
      size_t i = (size_t)fnv1a(bd->nodes[k]) & (nc - 1);
      while (h[i]) i = (i + 1) & (nc - 1);
      h[i] = bd->nodes[k];
    }
    free(bd->nodes);
    bd->nodes = h;
    bd->capnodes = nc;
  }
  size_t len = strlen(name) + 1;
  if (charge(bd->b, len, "a flattened key") != VG_OK) return bd->b->err;
  char *c = malloc(len);
  if (!c) return nomem_b(bd->b, "a flattened key");
  memcpy(c, name, len);
  size_t i = (size_t)fnv1a(name) & (bd->capnodes - 1);
  while (bd->nodes[i]) i = (i + 1) & (bd->capnodes - 1);
  bd->nodes[i] = c;
  bd->nnodes++;
  return VG_OK;
}

/* Adds a leaf (taking `name`); a name met before is refused at once. */
static vg_status add_leaf(builder *bd, char *name, value *v) {
  if (find_leaf(bd, name) || is_node(bd, name)) {
    vg_status st = vg_fail(VG_ERR_FORMAT, "pth: key '%s' appears twice", name);
    free(name);
    return st;
  }
  if (2 * (bd->nleaves + 1) > bd->hcap) {   /* rehash at half load */
    size_t nc = bd->hcap ? bd->hcap * 2 : 64;
    size_t *h = NULL;
    if (charge(bd->b, (uint64_t)nc * sizeof *h, "the key index") != VG_OK || !(h = calloc(nc, sizeof *h))) {
      free(name);
      return nomem_b(bd->b, "a flattened key");
    }
    for (size_t k = 0; k < bd->nleaves; k++) {
      size_t i = (size_t)fnv1a(bd->leaves[k].name) & (nc - 1);
      while (h[i]) i = (i + 1) & (nc - 1);
      h[i] = k + 1;
    }
    free(bd->hash);
    bd->hash = h;
    bd->hcap = nc;
  }
  if (grow(bd->b, (void **)&bd->leaves, &bd->capleaves, bd->nleaves + 1, sizeof *bd->leaves)) {
    free(name);
    return nomem_b(bd->b, "a flattened key");
  }
  size_t i = (size_t)fnv1a(name) & (bd->hcap - 1);
  while (bd->hash[i]) i = (i + 1) & (bd->hcap - 1);
  bd->hash[i] = bd->nleaves + 1;
  bd->leaves[bd->nleaves++] = (leaf){name, v};
  return VG_OK;
}

/* prefix + "." + key (or key alone under an empty prefix), charged to the budget. */
static vg_status make_name(builder *bd, const char *prefix, size_t pl, const value *k, char **out) {
  char num[24];
  const char *ks = num;
  size_t kl;
  if (k->kind == V_STR) {
    if (memchr(k->s, 0, k->slen)) return vg_fail(VG_ERR_FORMAT, "pth: a key contains a NUL byte");
    ks = k->s;
    kl = k->slen;
  } else {
    kl = (size_t)snprintf(num, sizeof num, "%lld", (long long)k->i);
  }
  size_t len = pl + (pl ? 1 : 0) + kl;
  vg_status st = charge(bd->b, (uint64_t)len + 1, "a flattened key");
  if (st != VG_OK) return st;
  char *name = malloc(len + 1);
  if (!name) return nomem_b(bd->b, "a flattened key");
  memcpy(name, prefix, pl);
  if (pl) name[pl] = '.';
  memcpy(name + pl + (pl ? 1 : 0), ks, kl);
  name[len] = 0;
  *out = name;
  return VG_OK;
}

/* Walks dict into leaves (tensors, ints, floats) with dotted names. */
static vg_status flatten(builder *bd, value *dict, const char *prefix, size_t depth) {
  if (depth > bd->max_depth)
    return vg_fail(VG_ERR_LIMIT, "pth: dicts nested deeper than %zu (or a cycle)", bd->max_depth);
  size_t pl = strlen(prefix);
  vg_status st = VG_OK;
  for (size_t i = 0; i + 1 < dict->n && st == VG_OK; i += 2) {
    /* shared sub-dicts (the memo) can make a small pickle flatten to 2^40 entries */
    if (++bd->visits > bd->max_entries)
      return vg_fail(VG_ERR_LIMIT, "pth: the checkpoint flattens to more than %zu dict entries (max_entries; "
                     "a sub-dict shared through the memo many times?)", bd->max_entries);
    value *k = dict->items[i], *v = dict->items[i + 1];
    if (v->kind == V_NONE || v->kind == V_STR || v->kind == V_TUPLE || v->kind == V_LIST ||
        v->kind == V_GLOBAL || v->kind == V_STORAGE || v->kind == V_OTHER) {
      bd->skipped++;
      continue;
    }
    /* a tensor, number or dict under a key that is neither str nor int (None, float,
     * tuple, tensor, ...) has no dotted name: refused, not silently dropped */
    if (k->kind != V_STR && k->kind != V_INT)
      return vg_fail(VG_ERR_FORMAT, "pth: %s%s%s has a %s key holding a %s (only str and int keys are read)",
                     pl ? "dict '" : "the top-level dict", prefix, pl ? "'" : "", kind_name(k->kind),
                     kind_name(v->kind));
    char *name = NULL;
    if ((st = make_name(bd, prefix, pl, k, &name)) != VG_OK) return st;
    switch (v->kind) {
      case V_DICT:
        st = add_node(bd, name);
        if (st == VG_OK) st = flatten(bd, v, name, depth + 1);
        free(name);
        break;
      case V_TENSOR: case V_INT: case V_BOOL: case V_FLOAT:
        st = add_leaf(bd, name, v);
        break;
      case V_BLOCKED:
        st = vg_fail(VG_ERR_UNSUPPORTED, "pth: key '%s' holds an object built from a disallowed global", name);
        free(name);
        break;
      default:
        free(name);
        break;
    }
  }
  return st;
}

static vg_dtype out_dtype(sdtype sdt, bool to_f32) {
  switch (sdt) {
    case D_F32: return VG_F32;
    case D_F16: return to_f32 ? VG_F32 : VG_F16;
    case D_BF16: return to_f32 ? VG_F32 : VG_BF16;
    case D_F64: return VG_F32;
    case D_I64: return VG_I64;
    case D_I32: return VG_I32;
    case D_U8: return VG_U8;
    case D_BOOL: return VG_BOOL;
  }
  return VG_F32;
}

/* Copies the view t out of its storage's bytes src (the whole storage, already checked
 * to hold every element the view reaches). */
static vg_status copy_tensor(const value *t, const uint8_t *src, bool to_f32, vg_tensor **out) {
  const value *s = t->storage;
  sdtype sdt = storage_classes[s->sclass].dt;
  size_t es = storage_classes[s->sclass].size;
  vg_dtype dt = out_dtype(sdt, to_f32);
  vg_tensor *y = vg_tensor_try_new(dt, t->ndim, t->size);   /* size charged already */
  if (!y) return vg_last_status();
  size_t ys = vg_dtype_size(dt);
  uint8_t *dst = vg_data(y);
  int64_t count = vg_numel(y), idx[VG_MAX_DIMS] = {0}, off = t->offset;
  for (int64_t k = 0; k < count; k++) {
    const uint8_t *e = src + (size_t)off * es;
    uint8_t *o = dst + (size_t)k * ys;
    if (sdt == D_F64) { double v; memcpy(&v, e, 8); float f = (float)v; memcpy(o, &f, 4); }
    else if (dt == VG_F32 && sdt == D_F16) { uint16_t h; memcpy(&h, e, 2); float f = vg_half_to_float(h); memcpy(o, &f, 4); }
    else if (dt == VG_F32 && sdt == D_BF16) { uint16_t h; memcpy(&h, e, 2); float f = vg_bf16_to_float(h); memcpy(o, &f, 4); }
    else if (sdt == D_BOOL) *o = *e != 0;
    else memcpy(o, e, es);
    for (int d = t->ndim - 1; d >= 0; d--) {   /* odometer over the logical index */
      if (++idx[d] < t->size[d]) { off += t->stride[d]; break; }
      off -= t->stride[d] * (t->size[d] - 1);   /* no overflow: checked by rebuild_tensor */
      idx[d] = 0;
    }
  }
  *out = y;
  return VG_OK;
}

void vg_pth_free(vg_pth_dict *d) {
  if (!d) return;
  for (size_t i = 0; i < d->count; i++) { free(d->entries[i].name); vg_tensor_free(d->entries[i].tensor); }
  free(d->entries);
  free(d);
}

/* Sizes the whole result and charges it (before any tensor exists), then decodes each
 * storage once and copies every tensor viewing it. Leaf names move into the dict. */
static vg_status build(builder *bd, vg_pth_dict *d) {
  unpickler *u = bd->u;
  vg_status st = VG_OK;
  size_t ns = u->nstorages, *cnt = NULL, *order = NULL;
  if (charge(bd->b, (uint64_t)(ns + 1 + bd->nleaves) * sizeof(size_t) + (uint64_t)bd->nleaves * sizeof(vg_pth_entry),
             "the result's index") != VG_OK)
    return bd->b->err;
  cnt = calloc(ns + 1, sizeof *cnt);
  order = malloc((bd->nleaves ? bd->nleaves : 1) * sizeof *order);
  d->entries = calloc(bd->nleaves ? bd->nleaves : 1, sizeof *d->entries);
  if (!cnt || !order || !d->entries) { free(cnt); free(order); return nomem_b(bd->b, "the result's index"); }
  /* sizes: every tensor, then the largest storage to inflate (storages are inflated one at
   * a time, each freed before the next), charged before anything is made */
  const value *largest = NULL;
  for (size_t i = 0; i < bd->nleaves && st == VG_OK; i++) {
    const value *t = bd->leaves[i].v;
    if (t->kind != V_TENSOR) continue;
    const value *s = t->storage;
    vg_dtype dt = out_dtype(storage_classes[s->sclass].dt, bd->to_f32);
    uint64_t numel = 1, bytes;
    for (int k = 0; k < t->ndim; k++) numel *= (uint64_t)t->size[k];   /* fits int64 (rebuild_tensor) */
    if (__builtin_mul_overflow(numel, (uint64_t)vg_dtype_size(dt), &bytes) ||
        bytes > UINT64_MAX - sizeof(vg_tensor) - sizeof(vg_storage) - 64)
      bytes = UINT64_MAX - sizeof(vg_tensor) - sizeof(vg_storage) - 64;
    bytes += sizeof(vg_tensor) + sizeof(vg_storage) + 64;
    if (bytes > bd->b->limit - bd->b->used) {
      char shape[160];
      size_t p = 0;
      shape[0] = 0;
      for (int k = 0; k < t->ndim && p < sizeof shape - 24; k++)
        p += (size_t)snprintf(shape + p, sizeof shape - p, "%s%lld", k ? "," : "", (long long)t->size[k]);
      st = vg_fail(VG_ERR_LIMIT, "pth: key '%s': a [%s] %s tensor (%llu elements, %llu bytes) viewing storage "
                   "'%s' of %lld elements is over the decode budget of %llu bytes (%llu already used; "
                   "budget = 4 x %llu storage bytes + 64 MiB, or max_decoded)", bd->leaves[i].name, shape,
                   vg_dtype_name(dt), (unsigned long long)numel, (unsigned long long)bytes, s->key,
                   (long long)s->numel, (unsigned long long)bd->b->limit, (unsigned long long)bd->b->used,
                   (unsigned long long)bd->b->storage_bytes);
      break;
    }
    bd->b->used += bytes;
    if (cnt[s->sidx]++ == 0 && s->entry->method != 0 && (!largest || s->entry->usize > largest->entry->usize))
      largest = s;
  }
  if (st == VG_OK && largest) {
    char what[300];
    snprintf(what, sizeof what, "inflating storage '%.200s' (the largest deflated one)", largest->key);
    st = charge(bd->b, largest->entry->usize, what);
  }
  /* leaves grouped by storage, in file order within each */
  size_t at = 0;
  for (size_t k = 0; k < ns; k++) { size_t c = cnt[k]; cnt[k] = at; at += c; }
  cnt[ns] = at;
  for (size_t i = 0; i < bd->nleaves && st == VG_OK; i++)
    if (bd->leaves[i].v->kind == V_TENSOR) order[cnt[bd->leaves[i].v->storage->sidx]++] = i;
  /* cnt[k] is now the end of storage k's run; its start is cnt[k - 1] (0 for k = 0) */
  for (size_t i = 0; i < bd->nleaves && st == VG_OK; i++) {
    const value *v = bd->leaves[i].v;
    vg_pth_entry *e = &d->entries[i];
    e->name = bd->leaves[i].name;
    bd->leaves[i].name = NULL;
    d->count = i + 1;
    if (v->kind == V_TENSOR) {
      e->kind = VG_PTH_TENSOR;
      e->requires_grad = v->requires_grad;
      e->parameter = v->parameter;
    } else if (v->kind == V_FLOAT) {
      e->kind = VG_PTH_FLOAT;
      e->f = v->f;
    } else {
      e->kind = VG_PTH_INT;
      e->i = v->i;
    }
  }
  for (size_t k = 0; k < ns && st == VG_OK; k++) {
    size_t from = k ? cnt[k - 1] : 0;
    if (from == cnt[k]) continue;
    const value *s = bd->leaves[order[from]].v->storage;
    const uint8_t *src = NULL;
    uint8_t *owned = NULL;
    size_t n = 0;
    st = s->entry->method == 0 ? vg_zip_view(u->zip, s->entry, &src, &n)
                               : vg_zip_read(u->zip, s->entry, &owned, &n);   /* charged above */
    if (st != VG_OK) { vg_fail_prefix("storage '%s'", s->key); break; }
    if (owned) src = owned;
    bd->b->storage_read += n;
    bd->b->storages++;
    for (size_t j = from; j < cnt[k] && st == VG_OK; j++) {
      vg_pth_entry *e = &d->entries[order[j]];
      st = copy_tensor(bd->leaves[order[j]].v, src, bd->to_f32, &e->tensor);
      if (st != VG_OK) vg_fail_prefix("key '%s'", e->name);
    }
    free(owned);
  }
  free(cnt);
  free(order);
  return st;
}

const vg_pth_entry *vg_pth_get(const vg_pth_dict *d, const char *name) {
  if (!d || !name) return NULL;
  for (size_t i = 0; i < d->count; i++)
    if (strcmp(d->entries[i].name, name) == 0) return &d->entries[i];
  return NULL;
}

vg_tensor *vg_pth_take(vg_pth_dict *d, const char *name) {
  vg_pth_entry *e = (vg_pth_entry *)vg_pth_get(d, name);
  if (!e) return NULL;
  vg_tensor *t = e->tensor;
  e->tensor = NULL;
  return t;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}
/* The first name that occurs twice in names[0..n) (sorted copy), or NULL. */
static const char *duplicate(const char **names, size_t n, int *oom) {
  const char **s = malloc((n ? n : 1) * sizeof *s);
  *oom = !s;
  if (!s) return NULL;
  memcpy(s, names, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_str);
  const char *dup = NULL;
  for (size_t i = 0; i + 1 < n && !dup; i++) if (strcmp(s[i], s[i + 1]) == 0) dup = s[i];
  free(s);
  return dup;
}

vg_status vg_pth_strip_prefixes(vg_pth_dict *d, const char *const *prefixes) {
  if (!d) return vg_fail(VG_ERR_ARG, "vg_pth_strip_prefixes: NULL dict");
  const char **names = malloc((d->count ? d->count : 1) * sizeof *names);
  if (!names) return vg_fail(VG_ERR_NOMEM, "pth: out of memory");
  for (size_t i = 0; i < d->count; i++) names[i] = vg_sd_strip_prefix(d->entries[i].name, prefixes);
  int oom;
  const char *dup = duplicate(names, d->count, &oom);
  if (oom || dup) {
    free(names);
    return oom ? vg_fail(VG_ERR_NOMEM, "pth: out of memory")
               : vg_fail(VG_ERR_FORMAT, "pth: stripping prefixes maps two keys to '%s'", dup);
  }
  for (size_t i = 0; i < d->count; i++)
    if (names[i] != d->entries[i].name) memmove(d->entries[i].name, names[i], strlen(names[i]) + 1);
  free(names);
  return VG_OK;
}

static vg_status load_zip(const vg_zip *z, const vg_pth_opts *opts, vg_pth_dict **out) {
  static const uint16_t one = 1;
  if (*(const uint8_t *)&one != 1) return vg_fail(VG_ERR_UNSUPPORTED, "pth: big-endian hosts are not supported");
  const vg_zip_entry *pkl = NULL;
  for (size_t i = 0; i < vg_zip_count(z); i++) {
    const vg_zip_entry *e = vg_zip_entry_at(z, i);
    size_t l = strlen(e->name);
    if (l > 9 && strcmp(e->name + l - 9, "/data.pkl") == 0 && !memchr(e->name, '/', l - 9)) {
      if (pkl) return vg_fail(VG_ERR_FORMAT, "pth: two data.pkl entries ('%s', '%s')", pkl->name, e->name);
      pkl = e;
    }
  }
  if (!pkl) return vg_fail(VG_ERR_FORMAT, "pth: no <folder>/data.pkl entry: not a torch.save archive");
  size_t plen = strlen(pkl->name) - 8;
  /* the budget: S = bytes the storages (<prefix>/data/...) occupy in the archive */
  budget b = {0};
  for (size_t i = 0; i < vg_zip_count(z); i++) {
    const vg_zip_entry *e = vg_zip_entry_at(z, i);
    if (strncmp(e->name, pkl->name, plen) == 0 && strncmp(e->name + plen, "data/", 5) == 0)
      b.storage_bytes += e->csize;
  }
  b.limit = opts && opts->max_decoded ? opts->max_decoded
          : b.storage_bytes > (UINT64_MAX - ((uint64_t)64 << 20)) / 4 ? UINT64_MAX
          : 4 * b.storage_bytes + ((uint64_t)64 << 20);
  char bo[600];
  snprintf(bo, sizeof bo, "%.*sbyteorder", (int)plen, pkl->name);
  const vg_zip_entry *boe = vg_zip_find(z, bo);
  if (boe) {
    uint8_t *bb = NULL; size_t n = 0;
    vg_status st = boe->usize == 6 ? vg_zip_read(z, boe, &bb, &n) : VG_OK;   /* 6 bytes: "little" */
    if (st != VG_OK) return st;
    int little = bb && n == 6 && memcmp(bb, "little", 6) == 0;
    free(bb);
    if (!little) return vg_fail(VG_ERR_UNSUPPORTED, "pth: storages are not little-endian (byteorder entry)");
  }
  size_t max_pickle = opts && opts->max_pickle ? opts->max_pickle : (size_t)256 << 20;
  if (pkl->usize > max_pickle)
    return vg_fail(VG_ERR_LIMIT, "pth: data.pkl is %llu bytes, over the limit %zu",
                   (unsigned long long)pkl->usize, max_pickle);
  const uint8_t *p = NULL;
  uint8_t *owned = NULL;
  size_t n = 0;
  vg_status st;
  if (pkl->method == 0) {
    st = vg_zip_view(z, pkl, &p, &n);
  } else {
    st = charge(&b, pkl->usize, "inflating data.pkl");
    if (st == VG_OK) st = vg_zip_read(z, pkl, &owned, &n);
    p = owned;
  }
  if (st != VG_OK) return st;
  unpickler u = {.p = p, .n = n, .o = opts, .zip = z, .prefix = pkl->name, .prefix_len = plen,
                 .lenient = opts && opts->state_dict_only, .b = &b,
                 .max_values = opts && opts->max_values ? opts->max_values : (size_t)1 << 21,
                 .max_stack = opts && opts->max_stack ? opts->max_stack : (size_t)1 << 20};
  value *res = NULL;
  st = run(&u, &res);
  builder bd = {.u = &u, .b = &b, .to_f32 = opts && opts->to_f32,
                .max_depth = opts && opts->max_depth ? opts->max_depth : 64,
                .max_entries = opts && opts->max_entries ? opts->max_entries : (size_t)1 << 20};
  vg_pth_dict *d = NULL;
  if (st == VG_OK && res->kind != V_DICT)
    st = vg_fail(VG_ERR_FORMAT, "pth: the checkpoint holds a %s, not a dict", kind_name(res->kind));
  if (st == VG_OK) {
    d = calloc(1, sizeof *d);
    if (!d) st = vg_fail(VG_ERR_NOMEM, "pth: out of memory");
  }
  if (st == VG_OK && opts && opts->state_dict_only) {
    value *sd = NULL;
    for (size_t i = 0; i + 1 < res->n && st == VG_OK; i += 2) {
      if (!str_eq(res->items[i], "state_dict")) d->dropped++;
      else if (sd) st = vg_fail(VG_ERR_FORMAT, "pth: key 'state_dict' appears twice");   /* not the last silently */
      else sd = res->items[i + 1];
    }
    if (st == VG_OK && !sd) st = vg_fail(VG_ERR_FORMAT, "pth: state_dict_only, but the checkpoint has no 'state_dict' entry");
    else if (st == VG_OK && sd->kind != V_DICT) st = vg_fail(VG_ERR_FORMAT, "pth: 'state_dict' is a %s, not a dict", kind_name(sd->kind));
    else if (st == VG_OK) st = flatten(&bd, sd, "", 0);
  } else if (st == VG_OK) {
    st = flatten(&bd, res, "", 0);
  }
  if (st == VG_OK) st = build(&bd, d);
  if (d) {
    d->skipped = bd.skipped;
    d->decoded_bytes = b.used;
    d->budget = b.limit;
    d->storage_bytes = b.storage_bytes;
    d->storage_bytes_read = b.storage_read;
    d->storages_decoded = b.storages;
  }
  for (size_t i = 0; i < bd.nleaves; i++) free(bd.leaves[i].name);
  for (size_t i = 0; i < bd.capnodes; i++) free(bd.nodes[i]);
  free(bd.nodes);
  free(bd.leaves);
  free(bd.hash);
  free_values(&u);
  free(owned);
  if (st != VG_OK) { vg_pth_free(d); return st; }
  *out = d;
  return VG_OK;
}

static vg_status legacy_check(const uint8_t *b, size_t n) {
  /* pre-1.6 torch.save: a bare pickle (magic number 0x1950a86a20f9469cfc6c first) or tar */
  if (n >= 2 && b[0] == 0x80 && b[1] <= 5)
    return vg_fail(VG_ERR_UNSUPPORTED, "legacy (pre-1.6, non-zip) torch.save format is not supported: "
                   "re-save it with torch>=1.6 (torch.save(torch.load(f), g))");
  if (n >= 262 && memcmp(b + 257, "ustar", 5) == 0)
    return vg_fail(VG_ERR_UNSUPPORTED, "legacy tar torch.save format is not supported");
  return VG_OK;
}

vg_status vg_pth_load_mem(const uint8_t *buf, size_t n, const vg_pth_opts *opts, vg_pth_dict **out) {
  if (!out) return vg_fail(VG_ERR_ARG, "vg_pth_load: out is NULL");
  *out = NULL;
  if (buf && legacy_check(buf, n) != VG_OK) return vg_last_status();
  vg_zip *z;
  vg_status st = vg_zip_open_mem(buf, n, opts ? &opts->zip : NULL, &z);
  if (st != VG_OK) return st;
  st = load_zip(z, opts, out);
  vg_zip_free(z);
  return st;
}

vg_status vg_pth_load(const char *path, const vg_pth_opts *opts, vg_pth_dict **out) {
  if (!out || !path) return vg_fail(VG_ERR_ARG, "vg_pth_load: NULL argument");
  *out = NULL;
  uint8_t *buf = NULL;
  size_t n = 0;
  /* regular files only (a directory, FIFO or device is refused by name, never waited on) */
  vg_status st = vg_file_read_all(path, SIZE_MAX - 1, &buf, &n);
  if (st != VG_OK) return st;
  if (legacy_check(buf, n) != VG_OK) { free(buf); return vg_fail_prefix("%s", path); }
  vg_zip *z;
  st = vg_zip_open_owned(buf, n, opts ? &opts->zip : NULL, &z);
  if (st != VG_OK) return vg_fail_prefix("%s", path);
  st = load_zip(z, opts, out);
  vg_zip_free(z);
  if (st != VG_OK) vg_fail_prefix("%s", path);
  return st;
}
