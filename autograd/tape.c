/* tape.c — recording nodes, the backward walk, grad accumulation, no-grad regions. */
#include "autograd/autograd.h"
#include "autograd/backward.h"
#include <string.h>

static _Thread_local vg_node *tape;
static _Thread_local int no_grad_depth;

static void *vg_ag_tape_mark(void) { return tape; }
static void vg_ag_tape_rewind(void *mark) { tape = mark; }
static void vg_ag_record(const vg_opcall *c);

bool vg_grad_enabled(void) { return no_grad_depth == 0; }

/* the recorder tensor/ calls (tensor/internal.h): installed before main by the constructor,
 * so every program that links the tape records (the tape is linked by any use of autograd:
 * vg_requires_grad_, vg_backward, no-grad regions, ...); vg_requires_grad_ installs it
 * again, for a loader that skips constructors */
static const vg_recorder recorder = {vg_grad_enabled, vg_ag_record, vg_ag_tape_mark, vg_ag_tape_rewind};
__attribute__((constructor)) static void install_recorder(void) { vg_set_recorder(&recorder); }

void vg_no_grad_begin(void) { no_grad_depth++; }
void vg_no_grad_end(void) {
  VG_ASSERT(no_grad_depth > 0);
  no_grad_depth--;
}

void vg_requires_grad_(vg_tensor *t, bool on) {
  if (vg_recorder_cur != &recorder) install_recorder();
  if (!t) return;
  if (on && t->dtype != VG_F32 && t->dtype != VG_F16 && t->dtype != VG_BF16)
    VG_ABORT("requires_grad on a %s tensor: only floating tensors have gradients", vg_dtype_name(t->dtype));
  t->requires_grad = on;
}

static void vg_ag_record(const vg_opcall *c) {
  if (!vg_in_scope())
    VG_ABORT("op %s on a tensor that requires grad outside any vg_scope: autograd records into the "
             "current scope (wrap the step in vg_scope_begin()/vg_scope_end(), or use vg_no_grad_begin())",
             vg_op_name(c->op));
  vg_node *n = vg_scope_alloc(sizeof *n);
  memset(n, 0, sizeof *n);
  n->call = *c;
  const vg_tensor **ins = vg_scope_alloc(sizeof(*ins) * (size_t)(c->nin ? c->nin : 1));
  for (int i = 0; i < c->nin; i++) ins[i] = c->in[i];
  n->call.in = ins;
  n->prev = tape;
  tape = n;
  c->out[0]->node = n;
}

void vg_ag_accum(const vg_tensor *in, vg_tensor *g) {
  if (!in || !g || !in->requires_grad) return;
  vg_tensor *t = (vg_tensor *)in;
  if (!vg_same_shape(t, g)) {
    char a[128], b[128];
    VG_ABORT("backward: grad shape %s differs from input shape %s", vg_shape_str(g, a, 128), vg_shape_str(t, b, 128));
  }
  if (t->node) {   /* pending until t's node runs: its storage is pinned, the replaced sum's released */
    vg_tensor *old = t->node->grad;
    t->node->grad = old ? vg_add(old, g) : g;
    vg_grad_heap_pin(t->node->grad, 1);
    if (old) vg_grad_heap_pin(old, -1);
    return;
  }
  if (!t->grad) {
    if (t->flags & VG_TF_HEAP) {   /* a parameter: g's block when the pass would free it next, else a copy */
      t->grad = vg_grad_heap_adopt(g);
      if (!t->grad) t->grad = vg_tensor_clone_heap(g);
    }
    else {   /* a scope leaf's grad lives in the arena, past the backward pass */
      vg_grad_heap_pause(true);
      t->grad = vg_clone(g);
      vg_grad_heap_pause(false);
    }
    if (t->grad->dtype != t->dtype) VG_ABORT("grad dtype mismatch");
  } else {
    vg_axpy_(t->grad, 1.0f, g);
  }
}

vg_fwd_region vg_fwd_region_begin(void) {
  vg_fwd_region r = {.tape = tape};
  r.blocks = vg_fwd_blocks_begin();
  return r;
}

void vg_fwd_region_end(vg_fwd_region r, int n, vg_tensor *const *keep) {
  for (int i = 0; i < n; i++) vg_fwd_blocks_hold(keep[i]);
  for (vg_node *nd = tape; nd && nd != (vg_node *)r.tape; nd = nd->prev) {
    const vg_opcall *c = &nd->call;
    unsigned s = vg_backward_saves(c);
    for (int i = 0; i < c->nin; i++)
      if (i >= VG_OP_MAX_IN ? s == ~0u : (s >> i & 1u)) vg_fwd_blocks_hold(c->in[i]);
    if (s & VG_SAVES_OUT0) vg_fwd_blocks_hold(c->out[0]);
    if (s & VG_SAVES_OUT1) vg_fwd_blocks_hold(c->out[1]);
  }
  vg_fwd_blocks_end(r.blocks);
}

void vg_zero_grad_(vg_tensor *t) {
  if (t && t->grad) vg_fill_(t->grad, 0);
}

void vg_clear_grad_(vg_tensor *t) {
  if (!t || !t->grad) return;
  if (t->grad->flags & VG_TF_HEAP) vg_tensor_free(t->grad);
  t->grad = NULL;
}

/* the heap leaves a vg_backward_ready pass watches, each with its number of uses by
 * reachable nodes not yet run */
typedef struct {
  vg_tensor **leaf;
  int *uses;
  int n, cap;
} leaf_uses;

static bool watched(const vg_tensor *t) {
  return t && !t->node && t->requires_grad && (t->flags & VG_TF_HEAP);
}

static int leaf_find(const leaf_uses *L, const vg_tensor *t) {
  for (int i = L->n - 1; i >= 0; i--)
    if (L->leaf[i] == t) return i;
  return -1;
}

/* marks the nodes on a path from out (a node runs only if one of them gives it a grad; a
 * rule that gives none to a marked input just delays its leaves' callbacks to the node's
 * turn) and counts every watched input of a marked node */
static void leaf_count(vg_node *top, leaf_uses *L) {
  for (vg_node *n = top; n; n = n->prev) n->reach = n == top;
  for (vg_node *n = top; n; n = n->prev) {
    if (!n->reach) continue;
    for (int i = 0; i < n->call.nin; i++) {
      const vg_tensor *in = n->call.in[i];
      if (in && in->requires_grad && in->node) in->node->reach = true;
      if (!watched(in)) continue;
      int k = leaf_find(L, in);
      if (k < 0) {
        if (L->n == L->cap) {
          L->cap = L->cap ? 2 * L->cap : 64;
          L->leaf = realloc(L->leaf, sizeof *L->leaf * (size_t)L->cap);
          L->uses = realloc(L->uses, sizeof *L->uses * (size_t)L->cap);
          if (!L->leaf || !L->uses) VG_ABORT("out of memory");
        }
        k = L->n++;
        L->leaf[k] = (vg_tensor *)in;
        L->uses[k] = 0;
      }
      L->uses[k]++;
    }
  }
}

static vg_status backward_run(vg_tensor *out, const vg_tensor *seed, vg_leaf_ready_fn ready, void *ctx) {
  if (!out) return vg_fail(VG_ERR_ARG, "backward: NULL tensor");
  if (!out->requires_grad) return vg_fail(VG_ERR_ARG, "backward: tensor does not require grad (no history)");
  if (!seed || !vg_same_shape(out, seed)) return vg_fail(VG_ERR_ARG, "backward: seed grad missing or of the wrong shape");
  if (!out->node) { /* a leaf: its grad is the seed */
    vg_ag_accum(out, (vg_tensor *)seed);
    if (ready && watched(out)) ready(out, ctx);
    return VG_OK;
  }
  leaf_uses L = {0};
  if (ready) leaf_count(out->node, &L);
  for (vg_node *n = out->node; n; n = n->prev) n->grad = NULL;
  vg_no_grad_begin();
  out->node->grad = (vg_tensor *)seed;
  /* grads and the rules' temporaries in freeable blocks: a node's grad is freed once its
   * rule has run, a rule's temporaries as soon as it returns (only the pending grads stay) */
  vg_grad_heap_begin();
  for (vg_node *n = out->node; n; n = n->prev) {
    if (n->grad) {
      vg_backward_rule(n, n->grad);
      vg_grad_heap_pin(n->grad, -1);
      n->grad = NULL;
      vg_grad_heap_collect();
    }
    if (!ready || !n->reach) continue;
    for (int i = 0; i < n->call.nin; i++) {
      int k = watched(n->call.in[i]) ? leaf_find(&L, n->call.in[i]) : -1;
      if (k >= 0 && --L.uses[k] == 0) ready(L.leaf[k], ctx);
    }
  }
  vg_grad_heap_end();
  vg_no_grad_end();
  free(L.leaf);
  free(L.uses);
  return VG_OK;
}

vg_status vg_backward_with(vg_tensor *out, const vg_tensor *seed) { return backward_run(out, seed, NULL, NULL); }

static vg_status check_loss(vg_tensor *loss) {
  if (!loss) return vg_fail(VG_ERR_ARG, "backward: NULL loss");
  if (vg_numel(loss) != 1) {
    char b[128];
    return vg_fail(VG_ERR_ARG, "backward: loss must have one element, got %s (use vg_backward_with)",
                   vg_shape_str(loss, b, sizeof b));
  }
  return VG_OK;
}

vg_status vg_backward_ready(vg_tensor *loss, vg_leaf_ready_fn ready, void *ctx) {
  vg_status st = check_loss(loss);
  if (st != VG_OK) return st;
  return backward_run(loss, vg_full_on(loss->device, VG_F32, loss->ndim, loss->shape, 1.0), ready, ctx);
}

vg_status vg_backward(vg_tensor *loss) { return vg_backward_ready(loss, NULL, NULL); }
