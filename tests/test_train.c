/* test_train.c — a 200-step training loop of a tiny conv net: the loss falls, the
 * scope arena stays flat after the first step, the malloc heap does not keep growing (no
 * per-step malloc that leaks; one-time per-thread scratch growth is allowed), and under
 * `make SAN=1 test` LSan sees no leak. */
#include "tests/vgtest.h"
#include "tensor/tensor.h"
#include "autograd/autograd.h"
#include <malloc.h>

int main(void) {
  int64_t s1[4] = {8, 3, 3, 3}, s2[4] = {4, 8, 3, 3}, sb1[1] = {8}, sb2[1] = {4};
  vg_tensor *w1 = vg_tensor_new(VG_F32, 4, s1), *b1 = vg_tensor_new(VG_F32, 1, sb1);
  vg_tensor *w2 = vg_tensor_new(VG_F32, 4, s2), *b2 = vg_tensor_new(VG_F32, 1, sb2);
  vg_uniform_(w1, -0.19f, 0.19f, 1);
  vg_uniform_(w2, -0.11f, 0.11f, 2);
  vg_tensor *params[4] = {w1, b1, w2, b2};
  for (int i = 0; i < 4; i++) vg_requires_grad_(params[i], true);
  vg_tensor *x = vg_randn(4, (int64_t[]){4, 3, 16, 16}, 3);   /* heap: no scope open */
  /* target: the output of a fixed random teacher with the same architecture */
  vg_tensor *target;
  {
    vg_scope_begin();
    vg_tensor *t1 = vg_scale(vg_randn(4, s1, 11), 0.5f), *t2 = vg_scale(vg_randn(4, s2, 12), 0.3f);
    vg_tensor *h = vg_relu(vg_conv2d(x, t1, NULL, (vg_conv2d_opts){.ph = 1, .pw = 1}));
    h = vg_avg_pool2d(h, (vg_pool2d_opts){.kh = 2, .kw = 2, .count_include_pad = true});
    target = vg_tensor_clone_heap(vg_sigmoid(vg_conv2d(h, t2, NULL, (vg_conv2d_opts){.ph = 1, .pw = 1})));
    vg_scope_end();
  }
  float first = 0, last = 0;
  size_t arena_after1 = 0, heap_warm = 0, heap_mid = 0, heap_end = 0;
  bool arena_flat = true, heap_flat = true;
  for (int step = 0; step < 200; step++) {
    vg_scope_begin();
    vg_tensor *h = vg_relu(vg_conv2d(x, w1, b1, (vg_conv2d_opts){.ph = 1, .pw = 1}));
    h = vg_avg_pool2d(h, (vg_pool2d_opts){.kh = 2, .kw = 2, .count_include_pad = true});
    vg_tensor *y = vg_sigmoid(vg_conv2d(h, w2, b2, (vg_conv2d_opts){.ph = 1, .pw = 1}));
    vg_tensor *loss = vg_mse_loss(y, target);
    for (int i = 0; i < 4; i++) vg_zero_grad_(params[i]);
    vg_backward(loss);
    vg_no_grad_begin();
    for (int i = 0; i < 4; i++) vg_axpy_(params[i], -0.5f, params[i]->grad);
    vg_no_grad_end();
    float l = vg_item(loss);
    if (step == 0) first = l;
    last = l;
    vg_scope_end();
    if (step == 1) arena_after1 = vg_scope_arena_bytes();
    if (step > 1 && vg_scope_arena_bytes() != arena_after1) arena_flat = false;
    struct mallinfo2 mi = mallinfo2();
    /* per-thread kernel scratch grows on demand, once, when a pool thread first gets a
       bigger share of a kernel (on a loaded machine that can happen at any step). A leak
       grows every step: the heap must not grow in both halves of steps 20..200 */
    if (step == 20) heap_warm = mi.uordblks;
    if (step == 110) heap_mid = mi.uordblks;
    if (step == 199) heap_end = mi.uordblks;
  }
  heap_flat = !(heap_mid > heap_warm && heap_end > heap_mid);
  VG_CHECK(last < 0.5f * first, "loss falls over 200 steps: %.5f -> %.5f", first, last);
  VG_CHECK(arena_flat, "scope arena flat after the first step (%zu bytes)", arena_after1);
  VG_CHECK(heap_flat, "malloc heap does not keep growing: %zu, %zu, %zu bytes in use at steps 20, 110, 200", heap_warm,
           heap_mid, heap_end);
  for (int i = 0; i < 4; i++) vg_tensor_free(params[i]);
  vg_tensor_free(x);
  vg_tensor_free(target);
  vg_scope_release();
  return vg_test_finish();
}
