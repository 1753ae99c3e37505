/* autograd.h — reverse-mode automatic differentiation over the tensor ops.
 *
 *   vg_tensor *w = vg_tensor_new(VG_F32, 2, (int64_t[]){8, 4});   // a parameter
 *   vg_requires_grad_(w, true);
 *   vg_scope_begin();
 *   vg_tensor *loss = vg_mse_loss(vg_matmul(x, w), y);
 *   vg_backward(loss);                  // w->grad += dloss/dw (heap, same shape)
 *   vg_scope_end();                     // frees the tape and every intermediate
 *
 * Define-by-run: every op whose input requires grad records a node (the op call) on
 * the tape of the current scope; vg_backward walks the tape in reverse. Contract:
 * leaf grads ACCUMULATE (+=) across backward calls until vg_zero_grad_ / the
 * optimizer clears them; intermediate grads live only during the backward pass.
 * Recording needs an open scope (ops on grad-requiring tensors outside one abort
 * with a message). Backward rules are written with the same tensor ops (plus the
 * fused *_BWD ops), so a backend with forward kernels gets backward for free. */
#ifndef VG_AUTOGRAD_H
#define VG_AUTOGRAD_H
#include "tensor/tensor.h"

void vg_requires_grad_(vg_tensor *t, bool on);
/* Backward from a single-element tensor (seed 1). Returns VG_ERR_ARG (with a
 * message) when the tensor has no grad history or is not a single element. */
vg_status vg_backward(vg_tensor *loss);
/* Backward with an explicit seed gradient of loss's shape. */
vg_status vg_backward_with(vg_tensor *out, const vg_tensor *grad);
/* vg_backward with a callback: ready(leaf, ctx) runs for every heap tensor that requires
 * grad and is an input of a node on the loss's graph, once the pass has run the last rule
 * that reads it (every node taking it as an input, views of it included): its grad is final
 * for this pass and ready may change its data in place, as an optimizer step fused into the
 * backward pass does while the grad and the data are still in cache (vg_optim_backward_step).
 * The rules that run later do not read the leaf's data, unless a tensor shares its storage
 * outside the graph (a vg_detach view or a raw pointer used in the forward): change no such
 * leaf there. ready runs with grad mode off; loss must have one element (as vg_backward). */
typedef void (*vg_leaf_ready_fn)(vg_tensor *leaf, void *ctx);
vg_status vg_backward_ready(vg_tensor *loss, vg_leaf_ready_fn ready, void *ctx);
void vg_zero_grad_(vg_tensor *t);    /* zeroes t->grad if present */
/* t->grad = None (torch's zero_grad(set_to_none=True)): a heap grad is freed, a scope
 * leaf's stays in its arena until the scope ends; the next backward allocates afresh */
void vg_clear_grad_(vg_tensor *t);

/* no-grad regions nest: ops inside record nothing */
void vg_no_grad_begin(void);
void vg_no_grad_end(void);
bool vg_grad_enabled(void);

/* Forward regions: a recorded forward keeps only what backward will read. Between
 * vg_fwd_region_begin and _end (inside a scope), every intermediate made in the region is
 * freed at _end unless it is one of keep[0..n) (NULL entries skipped; views keep their whole
 * storage) or a tensor that a backward rule of an op recorded in the region reads (conv and
 * matmul inputs, exp and tanh outputs, ... : vg_backward_saves), which live until the
 * scope ends. Every tensor made in the region that the caller uses after _end must be in
 * keep: the others' headers stay valid but their data is gone (ASan reports a read).
 *   vg_fwd_region r = vg_fwd_region_begin();
 *   y = block(x, &logdet);
 *   vg_fwd_region_end(r, 2, (vg_tensor *[]){y, logdet});
 * Values are unchanged (only memory nobody reads again is freed). CPU data only. */
typedef struct {
  uint64_t blocks;
  void *tape;
} vg_fwd_region;
vg_fwd_region vg_fwd_region_begin(void);
void vg_fwd_region_end(vg_fwd_region r, int n, vg_tensor *const *keep);

/* Central-difference gradient check of f at the inputs (f returns a tensor; the
 * check backpropagates a fixed random projection of it). Compares every element of
 * every input that requires grad; accumulates in double. Returns the max relative
 * error |num - ana| / max(1, |num|, |ana|) over all checked elements (or +inf on
 * failure with the error set). */
typedef vg_tensor *(*vg_gradcheck_fn)(vg_tensor *const *inputs, void *ctx);
double vg_gradcheck(vg_gradcheck_fn f, int n, vg_tensor *const *inputs, void *ctx, double eps);
#endif
