/* tensor.c — tensor headers, storage, scopes (arenas) and creation.
 *
 * Scope arena: per thread, a list of 64-byte-aligned chunks used as a bump allocator.
 * vg_scope_begin() pushes a mark (chunk, offset, tape position, deferred-free list);
 * vg_scope_end() rewinds to it. Chunks are kept for the next step, so a training loop
 * that allocates the same sequence each step reaches a steady state with no malloc. */
#include "tensor/internal.h"
#include "tensor/vmath.h"
#include "base/mem.h"
#include <math.h>
#include <stdarg.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define VG_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define VG_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define VG_POISON(p, n) do { (void)(p); (void)(n); } while (0)
#define VG_UNPOISON(p, n) do { (void)(p); (void)(n); } while (0)
#endif

#define VG_ALIGN 64
#define VG_CHUNK_MIN (4u << 20)
#define VG_BLOCK_MIN ((size_t)1 << 20)   /* scope tensors of at least this many bytes: own blocks */
#define VG_MAX_SCOPES 64

/* ---- dtypes ---- */
size_t vg_dtype_size(vg_dtype dt) {
  switch (dt) {
    case VG_F32: return 4;
    case VG_F16: return 2;
    case VG_BF16: return 2;
    case VG_I32: return 4;
    case VG_I64: return 8;
    case VG_U8: return 1;
    case VG_BOOL: return 1;
    case VG_DTYPE_COUNT: break;
  }
  VG_ABORT("bad dtype %d", (int)dt);
}

const char *vg_dtype_name(vg_dtype dt) {
  switch (dt) {
    case VG_F32: return "f32";
    case VG_F16: return "f16";
    case VG_BF16: return "bf16";
    case VG_I32: return "i32";
    case VG_I64: return "i64";
    case VG_U8: return "u8";
    case VG_BOOL: return "bool";
    case VG_DTYPE_COUNT: break;
  }
  return "?";
}

static const char *const op_names[] = {
#define X(name, str, arity, diff, fam, params) str,
#include "tensor/ops.def"
#undef X
};
static const int op_arity[] = {
#define X(name, str, arity, diff, fam, params) arity,
#include "tensor/ops.def"
#undef X
};
static const bool op_diff[] = {
#define X(name, str, arity, diff, fam, params) diff,
#include "tensor/ops.def"
#undef X
};
static const vg_op_family op_family[] = {
#define X(name, str, arity, diff, fam, params) VG_FAM_##fam,
#include "tensor/ops.def"
#undef X
};
_Static_assert(sizeof op_names / sizeof op_names[0] == VG_OP_COUNT, "op table");
_Static_assert(sizeof op_family / sizeof op_family[0] == VG_OP_COUNT, "op table");
/* every row's PARAMS is a member of vg_op_params, of type vg_<PARAMS>_params */
#define X(name, str, arity, diff, fam, params) \
  _Static_assert(sizeof(((vg_op_params *)0)->params) == sizeof(vg_##params##_params), #name " params");
#include "tensor/ops.def"
#undef X

const char *vg_op_name(vg_op op) { return (unsigned)op < VG_OP_COUNT ? op_names[op] : "?"; }
int vg_op_arity(vg_op op) { return op_arity[op]; }
bool vg_op_differentiable(vg_op op) { return op_diff[op]; }
vg_op_family vg_op_family_of(vg_op op) { return op_family[op]; }

const char *vg_op_family_name(vg_op_family f) {
  static const char *const names[VG_FAM_COUNT] = {
      [VG_FAM_VIEW] = "view",     [VG_FAM_COPY] = "copy",         [VG_FAM_UNARY] = "unary",
      [VG_FAM_BINARY] = "binary", [VG_FAM_WHERE] = "where",       [VG_FAM_REDUCE] = "reduce",
      [VG_FAM_MATMUL] = "matmul", [VG_FAM_CONV] = "conv",         [VG_FAM_POOL] = "pool",
      [VG_FAM_RESAMPLE] = "resample", [VG_FAM_LAYOUT] = "layout", [VG_FAM_INDEX] = "index",
      [VG_FAM_SELECT] = "select", [VG_FAM_RANDOM] = "random",
      [VG_FAM_NORM] = "norm"};
  return (unsigned)f < VG_FAM_COUNT && names[f] ? names[f] : "?";
}

/* ---- shapes ---- */
int64_t vg_numel(const vg_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

void vg_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
}

bool vg_is_contiguous(const vg_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != s) return false;
    s *= t->shape[i];
  }
  return true;
}

bool vg_same_shape(const vg_tensor *a, const vg_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

char *vg_shape_str(const vg_tensor *t, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < t->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

void *vg_data(const vg_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)vg_dtype_size(t->dtype);
}

float *vg_f32(const vg_tensor *t) {
  if (t->dtype != VG_F32) VG_ABORT("vg_f32 on a %s tensor", vg_dtype_name(t->dtype));
  if (t->device != VG_CPU) VG_ABORT("vg_f32 on a device tensor (copy it with vg_to_host)");
  return (float *)vg_data(t);
}

/* ---- arena ---- */
typedef struct vg_arena_chunk {
  struct vg_arena_chunk *next;
  size_t cap, used;
  char *mem;
} vg_arena_chunk;

typedef struct vg_deferred {
  struct vg_deferred *next;
  const vg_backend *be;
  void *p;
} vg_deferred;

typedef struct {
  vg_arena_chunk *chunk;
  size_t used;
  void *tape;
  vg_deferred *deferred;
} vg_mark;

static _Thread_local struct {
  vg_arena_chunk *head, *cur;
  int depth;
  vg_mark marks[VG_MAX_SCOPES];
  vg_deferred *deferred;
  size_t bytes;
} A;

bool vg_in_scope(void) { return A.depth > 0; }
int vg_scope_depth(void) { return A.depth; }
size_t vg_scope_arena_bytes(void) { return A.bytes; }

static void *arena_alloc(size_t n) {
  n = (n + VG_ALIGN - 1) & ~(size_t)(VG_ALIGN - 1);
  if (n == 0) n = VG_ALIGN;
  vg_arena_chunk *c = A.cur;
  while (c && c->cap - c->used < n) {
    c = c->next;
    if (c) c->used = 0;
  }
  if (!c) {
    size_t cap = n > VG_CHUNK_MIN ? n : VG_CHUNK_MIN;
    c = malloc(sizeof *c);
    char *mem = c ? vg_mem_alloc(cap) : NULL;
    if (!mem) {
      free(c);
      VG_ABORT("out of memory: scope arena wants %zu more bytes", cap);
    }
    *c = (vg_arena_chunk){.cap = cap, .mem = mem};
    VG_POISON(mem, cap);
    A.bytes += cap;
    /* append at the end of the list so existing chunks keep their order */
    if (!A.head) A.head = c;
    else {
      vg_arena_chunk *t = A.head;
      while (t->next) t = t->next;
      t->next = c;
    }
  }
  A.cur = c;
  void *p = c->mem + c->used;
  c->used += n;
  VG_UNPOISON(p, n);
  return p;
}

/* ---- freeable storage: the backward pass and forward regions ----
 * The arena frees only at scope end. A backward pass run in it would hold every gradient
 * and every temporary of every rule until the step's scope closes (as much again as the
 * forward), and a recorded forward holds every intermediate, also those no backward rule
 * reads. While block mode is on (vg_grad_heap_begin, vg_fwd_blocks_begin), the CPU data
 * of scope tensors comes from malloc'd blocks instead (headers stay in the arena), which
 * can be freed one by one:
 *   - backward: autograd pins the blocks its pending gradients use; vg_grad_heap_collect
 *     frees the unpinned, unheld ones once a rule has run; _end frees the pass's blocks;
 *   - forward regions: vg_fwd_blocks_end frees the region's blocks that are not held
 *     (vg_fwd_blocks_hold: the results, the tensors the tape's rules will read);
 *   - a held block is freed with the scope it was made in (vg_scope_end), or moved to the
 *     parent scope by vg_scope_end_keep when a kept tensor's data is in it. */
typedef struct vg_hblock {
  struct vg_hblock *next;
  uint64_t seq;        /* allocation order */
  int depth;           /* the scope that owns it (freed when that scope ends) */
  int pins;            /* pending backward grads using it */
  bool held;           /* outlives its forward region (freed with its scope) */
  size_t nbytes;
  char *data;
} vg_hblock;

static _Thread_local struct {
  int on;              /* > 0: CPU scope data from blocks (a counter: pauses nest) */
  int bwd_depth;       /* vg_grad_heap_begin nesting */
  uint64_t seq, bwd_seq;
  vg_hblock *live;     /* newest first (seq descending) */
  size_t bytes, peak;  /* block bytes held now / at most since the outermost backward began */
} H;

static void *hblock_alloc(size_t n) {
  n = (n + VG_ALIGN - 1) & ~(size_t)(VG_ALIGN - 1);
  if (n == 0) n = VG_ALIGN;
  vg_hblock *b = malloc(sizeof *b);
  char *mem = b ? vg_mem_alloc(n) : NULL;
  if (!mem) {
    free(b);
    VG_ABORT("out of memory: %zu more bytes", n);
  }
  *b = (vg_hblock){.next = H.live, .seq = H.seq++, .depth = A.depth, .nbytes = n, .data = mem};
  H.live = b;
  H.bytes += n;
  if (H.bytes > H.peak) H.peak = H.bytes;
  return mem;
}

/* frees the blocks made at or after seq `from` that `pred` selects (1 = free) */
enum { HB_UNPINNED, HB_UNHELD, HB_ALL };
static void hblock_free_from(uint64_t from, int what) {
  for (vg_hblock **pb = &H.live; *pb && (*pb)->seq >= from;) {
    vg_hblock *b = *pb;
    bool f = what == HB_ALL || (!b->held && (what == HB_UNHELD || b->pins <= 0));
    if (f) {
      *pb = b->next;
      H.bytes -= b->nbytes;
      vg_mem_free(b->data);
      free(b);
    } else {
      pb = &b->next;
    }
  }
}

/* vg_scope_end: the blocks the ending scope owns (depth > the new depth) */
static void hblock_scope_end(void) {
  for (vg_hblock **pb = &H.live; *pb;) {
    vg_hblock *b = *pb;
    if (b->depth > A.depth) {
      *pb = b->next;
      H.bytes -= b->nbytes;
      vg_mem_free(b->data);
      free(b);
    } else {
      pb = &b->next;
    }
  }
}

static vg_hblock *hblock_of(const void *data) {
  for (vg_hblock *b = H.live; b; b = b->next)
    if (b->data == data) return b;
  return NULL;
}

void vg_grad_heap_begin(void) {
  if (H.bwd_depth++ == 0) {
    H.peak = H.bytes;
    H.bwd_seq = H.seq;
  }
  H.on++;
}

void vg_grad_heap_pause(bool pause) {
  if (pause) H.on--;
  else H.on++;
}

void vg_grad_heap_end(void) {
  VG_ASSERT(H.bwd_depth > 0 && H.on > 0);
  H.on--;
  if (--H.bwd_depth == 0) hblock_free_from(H.bwd_seq, HB_UNHELD);
}

void vg_grad_heap_pin(const vg_tensor *t, int delta) {
  if (!t || t->device != VG_CPU || !t->storage || !H.live) return;
  vg_hblock *b = hblock_of(t->storage->data);
  if (b) b->pins += delta;
}

void vg_grad_heap_collect(void) { hblock_free_from(H.bwd_seq, HB_UNPINNED); }

vg_tensor *vg_grad_heap_adopt(const vg_tensor *g) {
  if (!g || H.bwd_depth == 0 || g->device != VG_CPU || (g->flags & VG_TF_HEAP) || !g->storage || g->offset ||
      !vg_is_contiguous(g) || g->storage->nbytes != (size_t)vg_numel(g) * vg_dtype_size(g->dtype))
    return NULL;
  vg_hblock **pb = &H.live;
  while (*pb && (*pb)->data != g->storage->data) pb = &(*pb)->next;
  vg_hblock *b = *pb;
  /* pinned: a pending gradient (maybe g itself) still reads it; held: saved by the forward */
  if (!b || b->seq < H.bwd_seq || b->pins > 0 || b->held) return NULL;
  vg_tensor *t = vg_tensor_wrap_host(b->data, g->dtype, g->ndim, g->shape);
  if (!t) return NULL;
  t->flags |= VG_TF_OWNS_STORAGE;   /* the block's memory came from vg_mem_alloc, the CPU backend's */
  t->storage->heap = 1;
  *pb = b->next;
  H.bytes -= b->nbytes;
  free(b);
  return t;
}

size_t vg_grad_heap_peak(void) { return H.peak; }
size_t vg_grad_heap_bytes(void) { return H.bytes; }

uint64_t vg_fwd_blocks_begin(void) {
  if (A.depth > 0) H.on++;
  return A.depth > 0 ? H.seq : UINT64_MAX;
}

void vg_fwd_blocks_hold(const vg_tensor *t) {
  if (!t || t->device != VG_CPU || !t->storage || !H.live) return;
  vg_hblock *b = hblock_of(t->storage->data);
  if (b) b->held = true;
}

void vg_fwd_blocks_end(uint64_t mark) {
  if (mark == UINT64_MAX) return;
  VG_ASSERT(H.on > 0);
  H.on--;
  hblock_free_from(mark, HB_UNHELD);
}

void vg_scope_begin(void) {
  if (A.depth >= VG_MAX_SCOPES) VG_ABORT("scopes nested deeper than %d", VG_MAX_SCOPES);
  vg_mark *m = &A.marks[A.depth++];
  m->chunk = A.cur;
  m->used = A.cur ? A.cur->used : 0;
  m->tape = vg_recorder_cur ? vg_recorder_cur->tape_mark() : NULL;
  m->deferred = A.deferred;
}

void vg_scope_end(void) {
  if (A.depth <= 0) VG_ABORT("vg_scope_end without vg_scope_begin");
  vg_mark *m = &A.marks[--A.depth];
  if (vg_recorder_cur) vg_recorder_cur->tape_rewind(m->tape);
  if (H.live) hblock_scope_end();
  while (A.deferred != m->deferred) {
    vg_deferred *d = A.deferred;
    A.deferred = d->next;
    d->be->free(d->p);
  }
  /* rewind: everything after the mark is released (poisoned under ASan) */
  vg_arena_chunk *c = m->chunk ? m->chunk : A.head;
  if (c) {
    size_t from = m->chunk ? m->used : 0;
    VG_POISON(c->mem + from, c->cap - from);
    c->used = from;
    for (vg_arena_chunk *t = c->next; t; t = t->next) {
      VG_POISON(t->mem, t->cap);
      t->used = 0;
    }
  }
  A.cur = m->chunk ? m->chunk : A.head;
}

static vg_tensor *new_header(void);

/* Position of p in allocation order within the current scope's region (from its mark to
 * the top), or -1 when p is not there (older data: an outer scope, the heap). */
static int64_t region_pos(const vg_mark *m, const void *p) {
  const char *q = p;
  int64_t idx = 0;
  for (vg_arena_chunk *c = m->chunk ? m->chunk : A.head; c; c = c->next, idx++) {
    size_t from = c == m->chunk ? m->used : 0;
    if (q >= c->mem + from && q < c->mem + c->used) return (idx << 40) + (int64_t)(q - c->mem);
    if (c == A.cur) break;
  }
  return -1;
}

/* after an in-arena move: everything above the top is free again (poisoned under ASan) */
static void poison_above_top(void) {
  if (!A.cur) return;
  VG_POISON(A.cur->mem + A.cur->used, A.cur->cap - A.cur->used);
  for (vg_arena_chunk *t = A.cur->next; t; t = t->next) VG_POISON(t->mem, t->cap);
}

/* Ends the current scope keeping ts[0..n), then (reopen) begins a new scope at the same
 * mark holding them. Device storages made in the ending scope are taken off its free list
 * and handed on (no copy). CPU data made in the scope is moved down to the mark with
 * memmove, in allocation order (a kept block's new place never lies above its old one, nor
 * on a later kept block's old bytes); older CPU data (outer scopes, heap) is referenced. */
static void scope_keep(int n, vg_tensor **ts, bool reopen) {
  if (A.depth <= 0) VG_ABORT("vg_scope_end_keep without vg_scope_begin");
  enum { MAXK = 16 };
  if (n > MAXK) VG_ABORT("vg_scope_end_keep: at most %d tensors", MAXK);
  vg_mark *m = &A.marks[A.depth - 1];
  struct {
    vg_tensor hdr;
    vg_storage st;
    const vg_backend *be;
    const char *src;   /* CPU data to move */
    size_t nb;
    int64_t pos;
    int kind;          /* 0 none, 1 move (CPU), 2 stolen (device), 3 shared (older storage), 4 view of j,
                          5 a block taken over from this scope */
    int same;
    struct vg_hblock *home;   /* a block taken over by the parent (reopen: back to the new scope) */
    bool blk;          /* kind 1 from a block freed with the scope (depth 1): copied out through the heap */
  } k[MAXK];
  bool overlap = false;
  for (int i = 0; i < n; i++) {
    memset(&k[i], 0, sizeof k[i]);
    k[i].same = -1;
    vg_tensor *t = ts[i];
    if (!t) continue;
    if (t->node) VG_ABORT("vg_scope_end_keep: a tensor recorded by autograd cannot outlive its scope's tape");
    if (t->device == VG_CPU) {
      int64_t pos = region_pos(m, t->storage->data);
      /* data in a block this scope frees (block mode): the parent scope takes the block over;
       * at depth 1 the result is a heap tensor, so the data is copied out like a move */
      vg_hblock *hb = pos < 0 && H.live ? hblock_of(t->storage->data) : NULL;
      if (hb && hb->depth < A.depth) hb = NULL;
      if (hb && !vg_is_contiguous(t)) {   /* a strided view of a block: compacted (a block again, or arena data
                                            * to move) rather than the whole block kept for it */
        t = vg_contiguous(t);
        pos = region_pos(m, t->storage->data);
        hb = pos < 0 && H.live ? hblock_of(t->storage->data) : NULL;
      }
      if (pos >= 0 && !vg_is_contiguous(t)) {   /* a strided view of scope data: compact it first */
        t = vg_contiguous(t);
        pos = region_pos(m, t->storage->data);
      }
      k[i].hdr = *t;
      k[i].st = *t->storage;
      if (hb && A.depth > 1) {
        hb->depth = A.depth - 1;
        k[i].home = hb;
      }
      if (pos < 0 && !(hb && A.depth == 1)) { k[i].kind = hb ? 5 : 3; continue; }
      k[i].blk = hb != NULL;
      k[i].kind = 1;
      k[i].src = vg_data(t);
      k[i].nb = (size_t)vg_numel(t) * vg_dtype_size(t->dtype);
      k[i].pos = region_pos(m, k[i].src);
      for (int j = 0; j < i; j++)
        if (k[j].kind == 1 && k[i].src < k[j].src + k[j].nb && k[j].src < k[i].src + k[i].nb) overlap = true;
      continue;
    }
    k[i].hdr = *t;
    k[i].st = *t->storage;
    for (int j = 0; j < i && k[i].same < 0; j++)   /* another view of a device storage kept here */
      if (ts[j] && ts[j]->device != VG_CPU && ts[j]->storage->data == t->storage->data) k[i].same = j;
    if (k[i].same >= 0) { k[i].kind = 4; continue; }
    k[i].kind = 3;   /* an older storage (outer scope, heap) unless this scope frees it */
    for (vg_deferred **pd = &A.deferred; *pd != m->deferred; pd = &(*pd)->next)
      if ((*pd)->p == t->storage->data) {
        k[i].be = (*pd)->be;
        k[i].kind = 2;
        *pd = (*pd)->next;
        break;
      }
  }
  /* overlapping CPU blocks (views of one storage): copied out through the heap instead */
  void *held[MAXK] = {0};
  for (int i = 0; i < n; i++)
    if (k[i].kind == 1 && (overlap || k[i].blk)) {
      held[i] = malloc(k[i].nb ? k[i].nb : 1);
      if (!held[i]) VG_ABORT("vg_scope_end_keep: out of memory (%zu bytes)", k[i].nb);
      memcpy(held[i], k[i].src, k[i].nb);
    }
  vg_storage *orig[MAXK];
  for (int i = 0; i < n; i++) orig[i] = ts[i] ? ts[i]->storage : NULL;
  vg_scope_end();
  if (reopen) {
    vg_scope_begin();
    for (int i = 0; i < n; i++)
      if (k[i].home) k[i].home->depth = A.depth;
  }
  /* CPU moves in allocation order of their sources */
  int order[MAXK], no = 0;
  for (int i = 0; i < n; i++)
    if (k[i].kind == 1) order[no++] = i;
  for (int a = 1; a < no; a++)
    for (int b = a; b > 0 && k[order[b]].pos < k[order[b - 1]].pos; b--) {
      int t = order[b];
      order[b] = order[b - 1];
      order[b - 1] = t;
    }
  vg_tensor *made[MAXK] = {0};
  for (int oi = 0; oi < no; oi++) {
    int i = order[oi];
    vg_tensor *t = vg_alloc(k[i].hdr.dtype, VG_CPU, k[i].hdr.ndim, k[i].hdr.shape);
    if (held[i]) {
      memcpy(t->storage->data, held[i], k[i].nb);
      free(held[i]);
    } else {
      VG_UNPOISON((void *)k[i].src, k[i].nb);
      memmove(t->storage->data, k[i].src, k[i].nb);
    }
    made[i] = t;
  }
  if (no && !overlap) poison_above_top();
  for (int i = 0; i < n; i++) {
    vg_tensor *t = NULL;
    switch (k[i].kind) {
      case 0: continue;
      case 1: t = made[i]; break;
      case 2:   /* the stolen device storage: a header + storage record here, freed with this scope */
        if (A.depth > 0) {
          t = arena_alloc(sizeof *t + sizeof(vg_storage));
          vg_deferred *d = arena_alloc(sizeof *d);
          *d = (vg_deferred){.next = A.deferred, .be = k[i].be, .p = k[i].st.data};
          A.deferred = d;
          *t = k[i].hdr;
          t->flags = 0;
        } else {
          t = calloc(1, sizeof *t + sizeof(vg_storage));
          if (!t) VG_ABORT("out of memory");
          *t = k[i].hdr;
          t->flags = VG_TF_HEAP | VG_TF_OWNS_STORAGE;
        }
        vg_storage *st = (vg_storage *)(t + 1);
        *st = k[i].st;
        st->heap = A.depth == 0;
        t->storage = st;
        break;
      case 5: {   /* a block taken over: a header + storage record here (the old ones are in the ended scope) */
        t = new_header();
        *t = k[i].hdr;
        t->flags = 0;
        vg_storage *bs = (vg_storage *)(t + 1);
        *bs = k[i].st;
        t->storage = bs;
        break;
      }
      case 3:   /* older storage: a header referring to it */
      case 4:   /* a view of a storage kept above */
        t = new_header();
        *t = k[i].hdr;
        t->flags = A.depth ? 0 : VG_TF_HEAP;
        t->storage = k[i].kind == 3 ? orig[i] : ts[k[i].same]->storage;
        break;
    }
    t->node = NULL;
    t->grad = NULL;
    t->requires_grad = false;
    ts[i] = t;
  }
}

void vg_scope_end_keep(int n, vg_tensor **ts) { scope_keep(n, ts, false); }
void vg_scope_reset_keep(int n, vg_tensor **ts) { scope_keep(n, ts, true); }

void vg_scope_release(void) {
  if (A.depth) VG_ABORT("vg_scope_release with %d scopes open", A.depth);
  vg_arena_chunk *c = A.head;
  while (c) {
    vg_arena_chunk *n = c->next;
    VG_UNPOISON(c->mem, c->cap);
    vg_mem_free(c->mem);
    free(c);
    c = n;
  }
  A.head = A.cur = NULL;
  A.bytes = 0;
}

void *vg_scope_alloc(size_t nbytes) {
  if (A.depth > 0) return arena_alloc(nbytes);
  void *p = aligned_alloc(VG_ALIGN, (nbytes + VG_ALIGN - 1) & ~(size_t)(VG_ALIGN - 1));
  if (!p && nbytes) VG_ABORT("out of memory (%zu bytes)", nbytes);
  return p;
}

/* ---- allocation ---- */
static vg_tensor *new_header(void) {
  vg_tensor *t;
  if (A.depth > 0) {
    t = arena_alloc(sizeof *t + sizeof(vg_storage));
    memset(t, 0, sizeof *t);
  } else {
    t = calloc(1, sizeof *t + sizeof(vg_storage));
    if (!t) VG_ABORT("out of memory");
    t->flags = VG_TF_HEAP;
  }
  return t;
}

/* The header of a fresh contiguous tensor whose storage s (data already set) follows it. */
static void init_contiguous(vg_tensor *t, vg_storage *s, vg_dtype dt, vg_device dev, int ndim, const int64_t *shape,
                            size_t nbytes) {
  s->nbytes = nbytes;
  s->device = dev;
  t->storage = s;
  t->dtype = dt;
  t->device = dev;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  vg_contiguous_strides(ndim, shape, t->stride);
}

/* heap: a heap tensor (else a scope one when in a scope); zero (heap CPU only): zeroed by
 * calloc, whose fresh pages stay untouched until written (an optimizer's moment buffers
 * cost no memory before the first step, as torch's lazily created state) */
static vg_tensor *alloc_tensor_z(vg_dtype dt, vg_device dev, int ndim, const int64_t *shape, bool heap, bool zero) {
  VG_ASSERT(ndim >= 0 && ndim <= VG_MAX_DIMS);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    VG_ASSERT(shape[i] >= 0);
    if (shape[i] && n > INT64_MAX / shape[i]) VG_ABORT("tensor too large");
    n *= shape[i];
  }
  size_t nbytes = (size_t)n * vg_dtype_size(dt);
  vg_tensor *t;
  vg_storage *s;
  const vg_backend *be = vg_backend_of(dev);
  if (heap || A.depth == 0) {
    t = calloc(1, sizeof *t + sizeof(vg_storage));
    if (!t) VG_ABORT("out of memory");
    t->flags = VG_TF_HEAP | VG_TF_OWNS_STORAGE;
    s = (vg_storage *)(t + 1);
    s->data = zero && dev == VG_CPU ? vg_mem_calloc(nbytes) : be->alloc(nbytes ? nbytes : 1);
    if (!s->data) VG_ABORT("out of memory allocating %zu bytes", nbytes);
    s->heap = 1;
  } else {
    t = arena_alloc(sizeof *t + sizeof(vg_storage));
    memset(t, 0, sizeof *t + sizeof(vg_storage));
    s = (vg_storage *)(t + 1);
    if (dev == VG_CPU) {
      /* large data in a block of its own (freed with the scope, taken over by a keep without a
       * copy): in the arena a request that does not fit a chunk's rest opens a new chunk,
       * and the chunks stay at their high-water mark (FastFlow-WRN50 at batch 16: 1144 MB of
       * chunks where the live data peaks far lower) */
      s->data = H.on > 0 || nbytes >= VG_BLOCK_MIN ? hblock_alloc(nbytes) : arena_alloc(nbytes);
    } else {
      s->data = be->alloc(nbytes ? nbytes : 1);
      vg_deferred *d = arena_alloc(sizeof *d);
      *d = (vg_deferred){.next = A.deferred, .be = be, .p = s->data};
      A.deferred = d;
    }
  }
  init_contiguous(t, s, dt, dev, ndim, shape, nbytes);
  return t;
}

static vg_tensor *alloc_tensor(vg_dtype dt, vg_device dev, int ndim, const int64_t *shape, bool heap) {
  return alloc_tensor_z(dt, dev, ndim, shape, heap, false);
}

vg_tensor *vg_alloc(vg_dtype dt, vg_device dev, int ndim, const int64_t *shape) {
  return alloc_tensor(dt, dev, ndim, shape, false);
}

vg_tensor *vg_alloc_view(const vg_tensor *src, int ndim, const int64_t *shape, const int64_t *stride,
                         int64_t offset) {
  vg_tensor *t = new_header();
  t->dtype = src->dtype;
  t->device = src->device;
  t->storage = src->storage;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->stride[i] = stride[i];
  }
  t->offset = offset;
  return t;
}

vg_tensor *vg_tensor_new(vg_dtype dt, int ndim, const int64_t *shape) {
  return alloc_tensor_z(dt, VG_CPU, ndim, shape, true, true);
}

vg_tensor *vg_tensor_try_new(vg_dtype dt, int ndim, const int64_t *shape) {
  if ((int)dt < 0 || dt >= VG_DTYPE_COUNT || ndim < 0 || ndim > VG_MAX_DIMS || (ndim && !shape)) {
    vg_fail(VG_ERR_ARG, "vg_tensor_try_new: bad dtype %d or ndim %d", (int)dt, ndim);
    return NULL;
  }
  size_t nbytes = vg_dtype_size(dt);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      vg_fail(VG_ERR_ARG, "vg_tensor_try_new: negative dimension %lld", (long long)shape[i]);
      return NULL;
    }
    if (__builtin_mul_overflow(nbytes, (uint64_t)shape[i], &nbytes) || nbytes > (size_t)INT64_MAX - VG_ALIGN) {
      vg_fail(VG_ERR_NOMEM, "out of memory: a %s tensor of more than 2^63 bytes", vg_dtype_name(dt));
      return NULL;
    }
  }
  /* an empty shape such as [0, 2^62, 8] holds no bytes, but its strides would overflow */
  for (int64_t i = 0, ext = 1; i < ndim; i++)
    if (__builtin_mul_overflow(ext, shape[i] > 0 ? shape[i] : 1, &ext)) {
      vg_fail(VG_ERR_ARG, "vg_tensor_try_new: the dimensions multiply past 2^63 (strides overflow)");
      return NULL;
    }
  vg_tensor *t = calloc(1, sizeof *t + sizeof(vg_storage));
  void *data = vg_mem_alloc(nbytes);
  if (!t || !data) {
    free(t);
    vg_mem_free(data);
    vg_fail(VG_ERR_NOMEM, "out of memory for a %s tensor of %zu bytes", vg_dtype_name(dt), nbytes);
    return NULL;
  }
  memset(data, 0, nbytes);
  t->flags = VG_TF_HEAP | VG_TF_OWNS_STORAGE;
  vg_storage *s = (vg_storage *)(t + 1);
  s->data = data;   /* freed by the CPU backend's free (plain free), as vg_tensor_new's */
  s->heap = 1;
  init_contiguous(t, s, dt, VG_CPU, ndim, shape, nbytes);
  return t;
}

void vg_tensor_free(vg_tensor *t) {
  if (!t) return;
  if (!(t->flags & VG_TF_HEAP)) VG_ABORT("vg_tensor_free on a scope tensor (freed by vg_scope_end)");
  if (t->grad) vg_tensor_free(t->grad);
  if (t->flags & VG_TF_OWNS_STORAGE) vg_backend_of(t->storage->device)->free(t->storage->data);
  free(t);
}

/* ---- error helpers ---- */
vg_tensor *vg_op_error(const char *op, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  vg_fail(VG_ERR_ARG, "%s: %s", op, msg);
  return NULL;
}

bool vg_check_inputs(const char *op, int n, const vg_tensor *const *ts, bool need_float) {
  for (int i = 0; i < n; i++) {
    if (!ts[i]) {
      if (vg_last_status() == VG_OK) vg_op_error(op, "input %d is NULL", i);
      return false;
    }
    if (need_float && ts[i]->dtype == VG_F16 && ts[i]->device != VG_CUDA) {
      vg_op_error(op, "f16 compute needs a CUDA tensor (cast to f32 with vg_cast)");
      return false;
    }
    if (need_float && ts[i]->dtype != VG_F32 && ts[i]->dtype != VG_F16) {
      char b[128];
      vg_op_error(op, "input %d is %s %s; this op computes in f32 (use vg_cast)", i,
                  vg_dtype_name(ts[i]->dtype), vg_shape_str(ts[i], b, sizeof b));
      return false;
    }
    if (i && ts[i]->device != ts[0]->device) {
      vg_op_error(op, "inputs on different devices");
      return false;
    }
  }
  return true;
}

int vg_norm_dim(int dim, int ndim) {
  if (dim < 0) dim += ndim;
  return (dim < 0 || dim >= (ndim ? ndim : 1)) ? -1 : dim;
}

bool vg_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int64_t da = i < n - na ? 1 : a[i - (n - na)];
    int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
    if (da != db && da != 1 && db != 1) return false;
    out[i] = da == 1 ? db : da;
  }
  *nout = n;
  return true;
}

void vg_broadcast_strides(const vg_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
  int off = ndim - t->ndim;
  for (int i = 0; i < ndim; i++) {
    if (i < off) stride[i] = 0;
    else stride[i] = (t->shape[i - off] == 1 && shape[i] != 1) ? 0 : t->stride[i - off];
  }
}

/* ---- half / bfloat16: the shared host/device conversions (tensor/vmath.h) ---- */
float vg_half_to_float(uint16_t h) { return vg_hd_half_to_float(h); }
uint16_t vg_float_to_half(float f) { return vg_hd_float_to_half(f); } /* round to nearest even, as torch .half() */
float vg_bf16_to_float(uint16_t h) { return vg_hd_bf16_to_float(h); }
uint16_t vg_float_to_bf16(float f) { return vg_hd_float_to_bf16(f); }
