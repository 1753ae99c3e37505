/* test_recorder.c — tensor/ reaches autograd only through the recorder hook
 * (tensor/internal.h: vg_recorder, vg_set_recorder) that autograd/tape.c installs.
 *   - linked with autograd, the recorder is in place before main (a constructor);
 *   - vg_dispatch hands every differentiable call with a grad-requiring input to the
 *     installed recorder (and only then), scopes take a tape mark at begin and rewind to
 *     it at end, no-grad regions and a missing recorder record nothing;
 *   - conv2d's fused activation is unfused only when the recorder says grads are on. */
#include "tests/vgtest.h"
#include "tensor/internal.h"
#include "autograd/autograd.h"

/* a counting recorder standing in for autograd */
static int n_record, n_mark, n_rewind, n_enabled;
static void *last_rewind;
static bool fake_on = true;
static bool fake_enabled(void) { n_enabled++; return fake_on; }
static void fake_record(const vg_opcall *c) { (void)c; n_record++; }
static void *fake_mark(void) { n_mark++; return (void *)(intptr_t)(0x1000 + n_mark); }
static void fake_rewind(void *m) { n_rewind++; last_rewind = m; }
static const vg_recorder fake = {fake_enabled, fake_record, fake_mark, fake_rewind};

int main(void) {
  /* 1. installed before main, by the tape's constructor (nothing of autograd ran yet) */
  const vg_recorder *ag = vg_recorder_cur;
  VG_CHECK(ag != NULL, "autograd's recorder is installed before main (constructor in autograd/tape.c)");
  VG_CHECK(ag && ag->grad_enabled && ag->record && ag->tape_mark && ag->tape_rewind, "every recorder entry is set");

  const int64_t sh[1] = {4};
  const float xv[4] = {1, -2, 3, 0.5f};
  vg_tensor *x = vg_tensor_new(VG_F32, 1, sh);
  memcpy(vg_f32(x), xv, sizeof xv);
  vg_requires_grad_(x, true);
  VG_CHECK(vg_recorder_cur == ag, "vg_requires_grad_ keeps the same recorder installed");

  /* 2. autograd's recorder records and backward works through it */
  vg_scope_begin();
  vg_tensor *y = vg_mul(x, x);
  VG_CHECK(y && y->requires_grad && y->node != NULL, "an op on a grad-requiring input is recorded (node set)");
  vg_status st = vg_backward(vg_sum(y, 0, NULL, false));
  VG_CHECK(st == VG_OK && x->grad, "backward through the recorded tape");
  bool ok = x->grad != NULL;
  for (int i = 0; ok && i < 4; i++) ok = vg_f32(x->grad)[i] == 2 * xv[i];
  VG_CHECK(ok, "d(sum x*x)/dx = 2x");
  vg_scope_end();
  vg_zero_grad_(x);

  /* 3. no-grad region: the recorder says off, nothing recorded */
  vg_scope_begin();
  vg_no_grad_begin();
  y = vg_mul(x, x);
  VG_CHECK(y && !y->requires_grad && y->node == NULL, "no-grad region: nothing recorded");
  vg_no_grad_end();
  vg_scope_end();

  /* 4. the hook contract, seen through a counting recorder */
  vg_set_recorder(&fake);
  VG_CHECK(vg_recorder_cur == &fake, "vg_set_recorder installs");
  vg_scope_begin();
  VG_CHECK(n_mark == 1, "scope begin takes one tape mark (got %d)", n_mark);
  y = vg_mul(x, x);
  VG_CHECK(n_record == 1 && y->requires_grad, "a differentiable op with a grad input is recorded once (got %d)", n_record);
  vg_tensor *c = vg_full(VG_F32, 1, sh, 2.0);
  vg_tensor *z = vg_mul(c, c);
  VG_CHECK(n_record == 1 && !z->requires_grad, "an op without grad inputs is not recorded (records %d)", n_record);
  fake_on = false;
  z = vg_mul(x, c);
  VG_CHECK(n_record == 1 && !z->requires_grad, "grad_enabled false: not recorded (records %d)", n_record);
  fake_on = true;
  vg_scope_begin();
  vg_scope_end();
  VG_CHECK(n_mark == 2 && n_rewind == 1 && last_rewind == (void *)(intptr_t)0x1002,
           "inner scope end rewinds to its own mark (marks %d, rewinds %d)", n_mark, n_rewind);
  vg_scope_end();
  VG_CHECK(n_rewind == 2 && last_rewind == (void *)(intptr_t)0x1001, "outer scope end rewinds to the outer mark");

  /* 5. conv2d's fused relu: unfused (a relu op recorded after conv2d) only with grads on */
  const int64_t xs[4] = {1, 1, 3, 3}, ws[4] = {1, 1, 1, 1};
  vg_tensor *img = vg_tensor_new(VG_F32, 4, xs), *w = vg_tensor_new(VG_F32, 4, ws);
  for (int i = 0; i < 9; i++) vg_f32(img)[i] = (float)i - 4;
  vg_f32(w)[0] = 1.5f;
  vg_requires_grad_(w, true);
  vg_set_recorder(&fake);
  vg_conv2d_opts o = {.sh = 1, .sw = 1, .dh = 1, .dw = 1, .groups = 1, .act = VG_ACT_RELU};
  vg_scope_begin();
  n_record = 0;
  vg_tensor *r = vg_conv2d(img, w, NULL, o);
  VG_CHECK(r && n_record == 2, "conv2d+relu with grads on: conv2d and relu recorded separately (records %d)", n_record);
  fake_on = false;
  n_record = 0;
  vg_tensor *r2 = vg_conv2d(img, w, NULL, o);
  VG_CHECK(r2 && n_record == 0, "conv2d+relu with grads off: fused, nothing recorded (records %d)", n_record);
  ok = r && r2;
  for (int i = 0; ok && i < 9; i++) ok = vg_f32(r)[i] == vg_f32(r2)[i] && vg_f32(r2)[i] == (i < 4 ? 0.0f : 1.5f * ((float)i - 4));
  VG_CHECK(ok, "fused and unfused conv2d+relu give the same values");
  fake_on = true;
  vg_scope_end();

  /* 6. no recorder (as in a program without autograd): nothing recorded, scopes still work */
  vg_set_recorder(NULL);
  int before = n_record;
  vg_scope_begin();
  y = vg_mul(x, x);
  VG_CHECK(y && !y->requires_grad && y->node == NULL && n_record == before, "no recorder: nothing recorded");
  r = vg_conv2d(img, w, NULL, o);
  VG_CHECK(r && vg_f32(r)[8] == 6.0f && vg_f32(r)[0] == 0.0f, "no recorder: conv2d+relu runs fused");
  vg_scope_end();

  /* 7. autograd's recorder back: records again */
  vg_set_recorder(ag);
  vg_scope_begin();
  y = vg_mul(x, x);
  VG_CHECK(y && y->node != NULL, "reinstalled: recorded again");
  vg_scope_end();

  vg_tensor_free(x);
  vg_tensor_free(img);
  vg_tensor_free(w);
  return vg_test_finish();
}
