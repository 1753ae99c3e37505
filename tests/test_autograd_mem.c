/* test_autograd_mem.c — training-step memory: what the backward pass and a recorded forward
 * hold (issue #20: a FastFlow step held every forward intermediate and every gradient until
 * the step's scope ended, 3.5x torch's peak).
 *   backward  a node's grad is freed once its rule has run, a rule's temporaries when it
 *             returns: the pass holds a few tensors, not one set per node (arena growth and
 *             block peak vs the chain's length);
 *   region    vg_fwd_region frees the intermediates no backward rule reads (tanh keeps its
 *             output, affine nothing), grads bit-identical to the same forward without it;
 *   flow      an AllInOneBlock sequence trained as FastFlow holds <= 5 activations per block
 *             after its forward (it held ~10 before), grads bit-identical run to run;
 *   keep      vg_scope_end_keep / reset_keep of block data (depth > 1, depth 1) keep values;
 *   adopt     a parameter's first gradient takes over the pass's block when nothing else
 *             reads it (no copy), and is copied when a pending gradient or the saved
 *             forward shares it: the values of the plain sums either way. */
#include "tests/vgtest.h"
#include "tensor/tensor.h"
#include "tensor/internal.h"
#include "autograd/autograd.h"
#include "flows/flows.h"
#include "base/mem.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum { ROWS = 64, COLS = 4096, CHAIN = 30 };
#define TBYTES ((size_t)ROWS * COLS * sizeof(float))

static vg_tensor *chain(vg_tensor *x) {
  vg_tensor *h = x;
  for (int i = 0; i < CHAIN; i++) h = vg_tanh(vg_affine(h, 0.9f, 0.01f));
  return h;
}

static size_t g_pre_bwd;   /* block bytes held when the last step's backward began */

/* one step: the chain (in a region or not), loss, backward; returns the arena bytes used */
static size_t step(vg_tensor *w, bool region, bool backward) {
  vg_scope_release();
  vg_scope_begin();
  vg_tensor *x = vg_mul(vg_rand(2, (int64_t[]){ROWS, COLS}, 7), w);
  vg_fwd_region r = {0};
  /* scope tensors of >= 1 MB live in blocks of their own anyway (x and its rand input here) */
  size_t before = vg_grad_heap_bytes();
  if (region) r = vg_fwd_region_begin();
  vg_tensor *y = chain(x);
  if (region) {
    vg_fwd_region_end(r, 1, &y);
    /* saved: the 30 tanh outputs; the affine outputs are gone */
    size_t held = vg_grad_heap_bytes() - before;
    VG_CHECK(held >= CHAIN * TBYTES && held <= (CHAIN + 1) * TBYTES,
             "region: %d tanh outputs held after the region (%.1f MB, want %.1f..%.1f)", CHAIN, held / 1e6,
             CHAIN * TBYTES / 1e6, (CHAIN + 1) * TBYTES / 1e6);
  }
  g_pre_bwd = vg_grad_heap_bytes();
  if (backward) VG_CHECK(vg_backward(vg_sum_all(y)) == VG_OK, "backward %s", vg_last_error());
  size_t used = vg_scope_arena_bytes();
  vg_scope_end();
  VG_CHECK(vg_grad_heap_bytes() == 0, "every block freed with the scope (%zu bytes left)", vg_grad_heap_bytes());
  return used;
}

static void test_backward(void) {
  vg_tensor *w = vg_tensor_new(VG_F32, 2, (int64_t[]){ROWS, COLS});
  vg_fill_(w, 1.0);
  vg_requires_grad_(w, true);
  size_t fwd = step(w, false, false);
  size_t both = step(w, false, true);
  size_t peak = vg_grad_heap_peak();
  /* before: the backward added ~4 tensors per node to the arena (~240 MB here) */
  VG_CHECK(both - fwd <= (size_t)2 << 20, "backward adds %.2f MB to the arena (headers only; forward %.1f MB)",
           (double)(both - fwd) / 1e6, fwd / 1e6);
  VG_CHECK(peak - g_pre_bwd <= 6 * TBYTES, "backward peak %.1f MB over the forward's blocks <= 6 tensors of %.1f MB "
           "(a chain of %d)", (peak - g_pre_bwd) / 1e6, TBYTES / 1e6, 2 * CHAIN);
  vg_tensor *g0 = vg_tensor_clone_heap(w->grad);
  vg_zero_grad_(w);
  size_t reg = step(w, true, true);
  VG_CHECK(reg <= fwd && fwd < 8 * TBYTES, "the chain's 1 MB tensors are not in the arena, region or not (%.1f MB, %.1f MB)",
           reg / 1e6, fwd / 1e6);
  VG_CHECK(!memcmp(vg_data(g0), vg_data(w->grad), TBYTES), "region: grads bit-identical to the plain forward's");
  vg_tensor_free(g0);
  vg_tensor_free(w);
}

static vg_nn_module *fastflow_like(int64_t C, int64_t H) {
  vg_nn_module *inn = vg_flow_sequence_new(3, (int64_t[]){C, H, H});
  for (int i = 0; i < 4; i++) {
    vg_flow_subnet_cfg sc = {.k = i % 2 ? 1 : 3, .ratio = 1.0, .seed = 11 + (uint64_t)i};
    vg_flow_allinone_opts o = {.affine_clamping = 2.0, .clamp_mode = VG_FLOW_CLAMP_TANH_FREIA02, .seed = (uint64_t)i};
    VG_CHECK(vg_flow_append_allinone(inn, -1, 0, (vg_flow_subnet){vg_flow_subnet_conv, &sc}, o) >= 0,
             "flow block %d: %s", i, vg_last_error());
  }
  return inn;
}

/* forward + backward of the flow; returns the bytes (arena + blocks) held after the forward */
static size_t flow_step(vg_nn_module *inn, const vg_tensor *x, float *grads, size_t ng) {
  vg_scope_release();
  vg_scope_begin();
  vg_tensor *ld;
  vg_tensor *z = vg_flow_forward(inn, x, 0, NULL, false, true, &ld);
  size_t held = vg_scope_arena_bytes() + vg_grad_heap_bytes();
  vg_tensor *loss = vg_mean_all(vg_sub(vg_scale(vg_sum(vg_mul(z, z), 3, (int[]){1, 2, 3}, false), 0.5f), ld));
  VG_CHECK(loss && vg_backward(loss) == VG_OK, "flow backward %s", vg_last_error());
  vg_nn_list ps = vg_nn_named_parameters(inn);
  size_t k = 0;
  for (int i = 0; i < ps.n; i++) {
    vg_tensor *g = ps.tensors[i]->grad;
    for (int64_t j = 0; g && j < vg_numel(g) && k < ng; j++) grads[k++] = vg_f32(g)[j];
    if (g) vg_zero_grad_(ps.tensors[i]);
  }
  vg_nn_list_free(&ps);
  vg_scope_end();
  return held;
}

static void test_flow(void) {
  const int64_t N = 4, C = 64, H = 32;
  vg_nn_module *inn = fastflow_like(C, H);
  vg_tensor *x = vg_tensor_new(VG_F32, 4, (int64_t[]){N, C, H, H});
  vg_uniform_(x, -1, 1, 5);
  size_t act = (size_t)(N * C * H * H) * sizeof(float), ng = 1 << 16;
  float *g1 = calloc(ng, sizeof(float)), *g2 = calloc(ng, sizeof(float));
  size_t held = flow_step(inn, x, g1, ng);
  flow_step(inn, x, g2, ng);
  /* saved per block: its input (conv, mul), the ReLU, tanh, exp outputs (half each), the
   * concat (scale's grad) and the result: ~4.5 activations; all ~10 were kept before */
  VG_CHECK(held <= 4 * 5 * act + ((size_t)8 << 20), "flow: %.1f MB held after the forward of 4 blocks (<= 5 activations "
           "of %.2f MB each, + 8 MB)", held / 1e6, act / 1e6);
  VG_CHECK(!memcmp(g1, g2, ng * sizeof(float)), "flow: parameter grads bit-identical run to run");
  free(g1);
  free(g2);
  vg_tensor_free(x);
  vg_nn_free(inn);
}

/* vg_scope_end_keep of tensors whose data is a block: the parent takes the block over */
static void test_keep(void) {
  vg_tensor *w = vg_tensor_new(VG_F32, 1, (int64_t[]){1000});
  vg_fill_(w, 2.0);
  vg_requires_grad_(w, true);
  vg_scope_begin();
  vg_fwd_region r = vg_fwd_region_begin();
  vg_no_grad_begin();
  vg_scope_begin();                                    /* depth 2: the block moves to depth 1 */
  vg_tensor *a = vg_arange(0, 1000, 1, VG_F32);
  vg_tensor *at = vg_slice(a, 0, 1, 1000, 3);          /* a strided view: referenced, not copied */
  vg_scope_begin();
  vg_tensor *b = vg_affine(a, 1, 1);
  for (int i = 0; i < 3; i++) {                        /* reset_keep: the block stays with the loop's scope */
    b = vg_affine(b, 1, 1);
    vg_scope_reset_keep(1, &b);
  }
  vg_scope_end_keep(1, &b);
  vg_tensor *keep[2] = {at, b};
  vg_scope_end_keep(2, keep);
  vg_no_grad_end();
  vg_tensor *y = vg_mul(keep[1], w);                   /* recorded: reads keep[1] and w */
  vg_fwd_region_end(r, 2, (vg_tensor *[]){y, keep[0]});
  float *pa = vg_f32(vg_contiguous(keep[0])), *pb = vg_f32(keep[1]);
  VG_CHECK(pa[0] == 1 && pa[332] == 997 && pb[0] == 4 && pb[999] == 1003,
           "kept block data intact: %g %g %g %g", pa[0], pa[332], pb[0], pb[999]);
  VG_CHECK(vg_backward(vg_sum_all(y)) == VG_OK && vg_f32(w->grad)[999] == 1003, "grad through kept data");
  vg_scope_end();
  VG_CHECK(vg_grad_heap_bytes() == 0, "blocks freed with the scope");
  /* depth 1: the kept tensor is copied out to the heap */
  vg_scope_begin();
  vg_fwd_region r2 = vg_fwd_region_begin();
  vg_tensor *c = vg_affine(vg_arange(0, 10, 1, VG_F32), 2, 0);
  vg_tensor *cs = vg_slice(c, 0, 1, 10, 4);            /* strided: compacted (outside the region: into the arena) */
  vg_fwd_region_end(r2, 2, (vg_tensor *[]){c, cs});
  vg_tensor *k2[2] = {c, cs};
  vg_scope_end_keep(2, k2);
  VG_CHECK(vg_grad_heap_bytes() == 0 && vg_f32(k2[0])[9] == 18 && vg_f32(k2[1])[1] == 10 && vg_f32(k2[1])[2] == 18,
           "depth 1: heap copies (%g, %g %g), no block left", vg_f32(k2[0])[9], vg_f32(k2[1])[1], vg_f32(k2[1])[2]);
  vg_tensor_free(k2[1]);
  vg_tensor_free(k2[0]);
  vg_tensor_free(w);
}

static long minflt(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

/* base/mem.h: freed tensor-sized blocks (64 MiB, above glibc's default mmap ceiling of 32
 * MiB) come back from the heap on the next allocation instead of from fresh, faulting mmap
 * pages — a training step's grads and backward temporaries. */
static void test_malloc_tune(void) {
  const char *e = getenv("VIGIL_MALLOC_TUNE");
  bool off = e && !strcmp(e, "0");
#if defined(__SANITIZE_ADDRESS__)
  printf("SKIP malloc tuning (ASan's allocator)\n");
  (void)off;
#else
  VG_CHECK(vg_mem_tuned() == !off, "vg_mem_tune: mallopt thresholds %s", off ? "left alone (VIGIL_MALLOC_TUNE=0)" : "raised");
  long faults = 0;
  for (int r = 0; r < 6; r++) {
    long f0 = minflt();
    vg_tensor *t = vg_tensor_new(VG_F32, 1, (int64_t[]){16 << 20});
    vg_fill_(t, 1.0f);
    vg_tensor_free(t);
    if (r > 1) faults += minflt() - f0;   /* two warm-up rounds: the heap grows to fit */
  }
  /* 64 MiB = 16384 pages per round when each allocation is a fresh mapping */
  if (!off) VG_CHECK(faults < 4000, "64 MiB tensor allocated, written, freed 4 more times: %ld page faults (< 4000)", faults);
  else printf("SKIP reuse check (VIGIL_MALLOC_TUNE=0: %ld page faults)\n", faults);
#endif
}

/* the grad of a heap parameter: values, heap ownership, and whether its data is a copy */
static void test_adopt(void) {
  enum { N = 300000 };   /* > VG_BLOCK_MIN: block data in and out of the backward pass */
  vg_tensor *w = vg_tensor_new(VG_F32, 1, (int64_t[]){N}), *u = vg_tensor_new(VG_F32, 1, (int64_t[]){N});
  float *wd = vg_data(w), *ud = vg_data(u);
  for (int i = 0; i < N; i++) { wd[i] = 0.5f + (float)(i % 7); ud[i] = 1.0f - (float)(i % 5) * 0.25f; }
  vg_requires_grad_(w, true);
  vg_requires_grad_(u, true);
  for (int c = 0; c < 4; c++) {
    vg_scope_begin();
    vg_tensor *loss;
    const char *what;
    if (c == 0) { loss = vg_sum_all(vg_mul(w, w)); what = "sum(w*w): 2w, a fresh block"; }
    else if (c == 1) { loss = vg_sum_all(vg_add(vg_mul(w, u), w)); what = "sum(w*u + w): u + 1, two contributions"; }
    else if (c == 2) { loss = vg_sum_all(vg_add(w, w)); what = "sum(w + w): one grad twice to one leaf"; }
    else { loss = vg_sum_all(vg_mul(vg_tanh(w), u)); what = "sum(tanh(w)*u): (1 - tanh^2) u; u's grad tanh(w)"; }
    VG_CHECK(vg_backward(loss) == VG_OK, "adopt %s: backward %s", what, vg_last_error());
    vg_scope_end();
    const float *g = w->grad ? vg_data(w->grad) : NULL, *gu = u->grad ? vg_data(u->grad) : NULL;
    VG_CHECK(g && (w->grad->flags & VG_TF_HEAP), "adopt %s: w's grad is a heap tensor", what);
    int bad = -1;
    for (int i = 0; g && i < N && bad < 0; i++) {
      double want = c == 0 ? 2.0 * wd[i] : c == 1 ? ud[i] + 1.0 : c == 2 ? 2.0
                  : (1.0 - tanh(wd[i]) * tanh(wd[i])) * ud[i];
      if (fabs(g[i] - want) > 1e-5 * (1 + fabs(want))) bad = i;
      if (c == 3 && (!gu || fabs(gu[i] - tanh(wd[i])) > 1e-6)) bad = i;
    }
    VG_CHECK(bad < 0, "adopt %s: grads right (first wrong element %d)", what, bad);
    VG_CHECK(vg_grad_heap_bytes() == 0, "adopt %s: no block left to the pass (%zu bytes)", what, vg_grad_heap_bytes());
    vg_clear_grad_(w);
    vg_clear_grad_(u);
  }
  vg_tensor_free(w);
  vg_tensor_free(u);
}

int main(void) {
  test_malloc_tune();
  test_adopt();
  test_backward();
  test_flow();
  test_keep();
  vg_scope_release();
  return vg_test_finish();
}
