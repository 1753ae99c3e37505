/* test_conv_pack.c — vg_conv2d's weight caches (vg_conv2d_opts.pack, vg_nn_conv_cache):
 *   same     with a pack, the first call (filling it) and the later ones (reusing it) give
 *            the bits of the call without one, on the Winograd 3x3 / 4x4, GEMM (3x3 stride 2,
 *            1x1, ReLU fused, bias or none) and direct (few input channels: the PDN's first
 *            layer, a ResNet stem; AVX-512) paths; grouped and depthwise convs ignore it;
 *   follows  a whole-tensor rewrite of the weight in place, another weight tensor, another
 *            ISA: the next call rebuilds the pack, its result is the uncached one's;
 *   records  a call that autograd records leaves the pack alone (the backward reads w);
 *   nn       vg_nn_conv_cache on a module tree: the same outputs, bytes held, freed off;
 *   fold     vg_conv_bn_fold_packed: the kept pair is returned while the six sources and eps are
 *            unchanged, folded again (the uncached bits) after a whole rewrite of any source, an
 *            in-place edit of one channel's running mean or variance, another tensor, a bias
 *            that appears, another eps; conv2d through the pack with the folded
 *            weight gives the uncached bits; vg_nn_conv_bn with the conv's cache on the same. */
#include "tests/vgtest.h"
#include "tensor/tensor.h"
#include "tensor/parallel.h"
#include "autograd/autograd.h"
#include "nn/nn.h"
#include <string.h>

typedef struct {
  const char *name;
  int64_t n, c, h, w, oc, k;
  int stride, pad, groups;
  vg_act act;
  bool bias, cached;   /* cached: a path that keeps something in the pack */
} pcase;

static const pcase CASES[] = {
  {"winograd 3x3", 1, 24, 19, 21, 40, 3, 1, 1, 1, VG_ACT_NONE, true, true},
  {"winograd 3x3 relu b2", 2, 16, 16, 16, 16, 3, 1, 1, 1, VG_ACT_RELU, false, true},
  {"winograd 4x4 (PDN)", 1, 8, 23, 23, 32, 4, 1, 3, 1, VG_ACT_RELU, true, true},
  {"gemm 3x3 stride 2", 1, 12, 17, 15, 20, 3, 2, 1, 1, VG_ACT_NONE, true, true},
  {"gemm 1x1", 2, 32, 9, 9, 48, 1, 1, 0, 1, VG_ACT_RELU, true, true},
  {"direct 4x4 (PDN conv1)", 2, 3, 37, 37, 40, 4, 1, 3, 1, VG_ACT_RELU, true, true},
  {"direct 7x7 stride 2 (stem)", 1, 3, 64, 64, 20, 7, 2, 3, 1, VG_ACT_NONE, false, true},
  {"grouped 3x3", 1, 16, 10, 10, 16, 3, 1, 1, 4, VG_ACT_NONE, true, false},
  {"depthwise 3x3", 1, 16, 10, 10, 16, 3, 1, 1, 16, VG_ACT_NONE, true, false},
};

static vg_tensor *conv(const pcase *p, const vg_tensor *x, const vg_tensor *w, const vg_tensor *b, vg_conv_pack *pk) {
  vg_conv2d_opts o = {.sh = p->stride, .sw = p->stride, .ph = p->pad, .pw = p->pad, .groups = p->groups, .act = p->act,
                      .pack = pk};
  return vg_conv2d(x, w, b, o);
}

static bool same_bits(const vg_tensor *a, const vg_tensor *b) {
  return a && b && vg_numel(a) == vg_numel(b) && !memcmp(vg_data(a), vg_data(b), sizeof(float) * (size_t)vg_numel(a));
}

static void fill(vg_tensor *t, uint64_t seed) {
  vg_scope_begin();
  vg_copy_(t, vg_scale(vg_randn(t->ndim, t->shape, seed), 0.2f));
  vg_scope_end();
}

static void check_case(const pcase *p) {
  vg_tensor *w = vg_tensor_new(VG_F32, 4, (int64_t[]){p->oc, p->c / p->groups, p->k, p->k});
  vg_tensor *w2 = vg_tensor_new(VG_F32, 4, w->shape), *b = vg_tensor_new(VG_F32, 1, (int64_t[]){p->oc});
  fill(w, 1);
  fill(w2, 2);
  fill(b, 3);
  const vg_tensor *bias = p->bias ? b : NULL;
  vg_conv_pack *pk = vg_conv_pack_new();
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){p->n, p->c, p->h, p->w}, 4);
  vg_tensor *ref = conv(p, x, w, bias, NULL);
  vg_tensor *y1 = conv(p, x, w, bias, pk), *y2 = conv(p, x, w, bias, pk);
  size_t held = vg_conv_pack_bytes(pk);
  VG_CHECK(same_bits(ref, y1) && same_bits(ref, y2), "%s: filling and reusing the pack, the uncached bits", p->name);
  VG_CHECK(p->cached ? held > 0 : held == 0, "%s: the pack holds %zu bytes (%s)", p->name, held,
           p->cached ? "a cached path" : "a path that ignores it");
  /* an in-place rewrite of the whole weight: rebuilt */
  fill(w, 5);
  VG_CHECK(same_bits(conv(p, x, w, bias, NULL), conv(p, x, w, bias, pk)), "%s: after w is rewritten in place",
           p->name);
  /* another tensor through the same pack, then the first again */
  VG_CHECK(same_bits(conv(p, x, w2, bias, NULL), conv(p, x, w2, bias, pk)), "%s: another weight", p->name);
  VG_CHECK(same_bits(conv(p, x, w, bias, NULL), conv(p, x, w, bias, pk)), "%s: the first weight again", p->name);
  /* every ISA path in turn, the pack kept across the switches */
  const vg_isa best = vg_cpu_isa_max();
  for (int i = (int)VG_ISA_SCALAR; i <= (int)best; i++) {
    vg_cpu_set_isa((vg_isa)i);
    vg_tensor *u = conv(p, x, w, bias, NULL);
    VG_CHECK(same_bits(u, conv(p, x, w, bias, pk)) && same_bits(u, conv(p, x, w, bias, pk)), "%s: ISA %s",
             p->name, vg_isa_name((vg_isa)i));
  }
  vg_cpu_set_isa(best);
  /* a recorded call: the pack is not touched (its bytes stay those of w2's layout) */
  VG_CHECK(same_bits(conv(p, x, w2, bias, NULL), conv(p, x, w2, bias, pk)), "%s: w2 again", p->name);
  size_t before = vg_conv_pack_bytes(pk);
  vg_requires_grad_(w, true);
  vg_tensor *yr = conv(p, x, w, bias, pk);
  VG_CHECK(yr && yr->requires_grad && same_bits(yr, conv(p, x, w, bias, NULL)) && vg_conv_pack_bytes(pk) == before,
           "%s: a recorded call computes from w and leaves the pack alone", p->name);
  vg_requires_grad_(w, false);
  vg_scope_end();
  vg_conv_pack_free(pk);
  vg_tensor_free(w);
  vg_tensor_free(w2);
  vg_tensor_free(b);
}

static void check_nn(void) {
  vg_nn_module *m = vg_nn_sequential_new(3, (vg_nn_module *[]){
      vg_nn_conv2d_new(8, 16, 3, 3, (vg_nn_conv2d_opts){.ph = 1, .pw = 1}, 7), vg_nn_relu_new(),
      vg_nn_conv2d_new(16, 8, 1, 1, (vg_nn_conv2d_opts){0}, 8)});
  vg_nn_train(m, false);
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){1, 8, 12, 12}, 9);
  vg_no_grad_begin();
  vg_tensor *ref = vg_nn_forward(m, x);
  vg_nn_conv_cache(m, true);
  vg_tensor *a = vg_nn_forward(m, x), *b = vg_nn_forward(m, x);
  size_t held = vg_nn_conv_cache_bytes(m);
  vg_nn_conv_cache(m, false);
  vg_no_grad_end();
  VG_CHECK(same_bits(ref, a) && same_bits(ref, b) && held > 0 && vg_nn_conv_cache_bytes(m) == 0,
           "nn: vg_nn_conv_cache on gives the same outputs (%zu bytes held), off frees them", held);
  vg_scope_end();
  vg_nn_conv_cache(m, true);   /* freed with the module (ASan: no leak) */
  vg_nn_free(m);
}


static vg_tensor *vec(int64_t n, uint64_t seed, float lo) {   /* lo + |N(0,1)| * 0.5: positive variances */
  vg_tensor *t = vg_tensor_new(VG_F32, 1, &n);
  vg_scope_begin();
  vg_copy_(t, vg_add_scalar(vg_scale(vg_abs(vg_randn(1, &n, seed)), 0.5f), lo));
  vg_scope_end();
  return t;
}

/* conv2d(x, fold(...)) without any cache: the reference bits */
static vg_tensor *folded_ref(const vg_tensor *x, const vg_tensor *const src[6], float eps) {
  vg_tensor *wf, *bf;
  if (vg_conv_bn_fold(src[0], src[1], src[2], src[3], src[4], src[5], eps, &wf, &bf) != VG_OK) return NULL;
  return vg_conv2d(x, wf, bf, (vg_conv2d_opts){.ph = 1, .pw = 1, .act = VG_ACT_RELU});
}

static vg_tensor *folded_packed(vg_conv_pack *pk, const vg_tensor *x, const vg_tensor *const src[6], float eps,
                                vg_tensor **wf_out) {
  vg_tensor *wf, *bf;
  if (vg_conv_bn_fold_packed(pk, src[0], src[1], src[2], src[3], src[4], src[5], eps, &wf, &bf) != VG_OK) return NULL;
  if (wf_out) *wf_out = wf;
  return vg_conv2d(x, wf, bf, (vg_conv2d_opts){.ph = 1, .pw = 1, .act = VG_ACT_RELU, .pack = pk});
}

static void check_fold(void) {
  const int64_t O = 24, C = 16;
  vg_tensor *w = vg_tensor_new(VG_F32, 4, (int64_t[]){O, C, 3, 3});
  fill(w, 11);
  vg_tensor *bias = vec(O, 12, -0.25f), *gamma = vec(O, 13, 0.5f), *beta = vec(O, 14, -0.3f);
  vg_tensor *mean = vec(O, 15, -0.2f), *var = vec(O, 16, 0.1f), *var2 = vec(O, 17, 0.2f);
  const float eps = 1e-5f;
  vg_conv_pack *pk = vg_conv_pack_new();
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){2, C, 20, 20}, 18);   /* Winograd: the pack holds U too */
  const vg_tensor *src[6] = {w, NULL, gamma, beta, mean, var};
  vg_tensor *wf1, *wf2;
  vg_tensor *ref = folded_ref(x, src, eps);
  vg_tensor *y1 = folded_packed(pk, x, src, eps, &wf1), *y2 = folded_packed(pk, x, src, eps, &wf2);
  VG_CHECK(same_bits(ref, y1) && same_bits(ref, y2) && wf1 == wf2 && vg_conv_pack_holds(pk, wf1),
           "fold: first and second call give the uncached bits, the second returns the kept pair");
  VG_CHECK(vg_conv_pack_bytes(pk) > (size_t)(O * C * 9 + O) * sizeof(float),
           "fold: the pack holds the pair and the folded weight's forms (%zu bytes)", vg_conv_pack_bytes(pk));
  /* whole rewrites of each source in turn: folded again, the uncached result */
  vg_tensor *srcs_rw[5] = {w, gamma, beta, mean, var};
  const int at[5] = {0, 2, 3, 4, 5};
  for (int i = 0; i < 5; i++) {
    vg_scope_begin();
    vg_copy_(srcs_rw[i], vg_scale(srcs_rw[i], 1.25f));
    vg_scope_end();
    vg_tensor *wf;
    vg_tensor *y = folded_packed(pk, x, src, eps, &wf);
    VG_CHECK(same_bits(folded_ref(x, src, eps), y) && !same_bits(y, y1),
             "fold: after source %d is rewritten in place, folded again (the uncached bits)", at[i]);
    (void)wf;
  }
  /* another variance tensor, a bias that appears, another eps */
  const vg_tensor *src2[6] = {w, NULL, gamma, beta, mean, var2};
  VG_CHECK(same_bits(folded_ref(x, src2, eps), folded_packed(pk, x, src2, eps, NULL)), "fold: another variance tensor");
  const vg_tensor *src3[6] = {w, bias, gamma, beta, mean, var2};
  VG_CHECK(same_bits(folded_ref(x, src3, eps), folded_packed(pk, x, src3, eps, NULL)), "fold: with a conv bias");
  VG_CHECK(same_bits(folded_ref(x, src3, 1e-3f), folded_packed(pk, x, src3, 1e-3f, NULL)), "fold: another eps");
  VG_CHECK(same_bits(folded_ref(x, src2, eps), folded_packed(pk, x, src2, eps, NULL)), "fold: the bias gone again");
  /* one channel's statistics edited in place (128 channels: more than the 64 values a weight
   * check samples), then the folded weight's packed forms: folded again, not the old pack */
  {
    const int64_t O2 = 128;
    vg_tensor *w2 = vg_tensor_new(VG_F32, 4, (int64_t[]){O2, C, 3, 3});
    fill(w2, 21);
    vg_tensor *g2 = vec(O2, 22, 0.5f), *b2 = vec(O2, 23, -0.3f), *m2 = vec(O2, 24, -0.2f), *v2 = vec(O2, 25, 0.1f);
    const vg_tensor *s4[6] = {w2, NULL, g2, b2, m2, v2};
    vg_tensor *first = folded_packed(pk, x, s4, eps, NULL);
    bool ok = same_bits(folded_ref(x, s4, eps), first);
    for (int ch = 1; ch < 128; ch += 37) {
      ((float *)vg_data(v2))[ch] *= 9.0f;       /* one channel of running_var */
      vg_tensor *y = folded_packed(pk, x, s4, eps, NULL);
      ok = ok && same_bits(folded_ref(x, s4, eps), y) && !same_bits(y, first);
      ((float *)vg_data(m2))[ch + 1] += 0.5f;   /* one channel of running_mean */
      ok = ok && same_bits(folded_ref(x, s4, eps), folded_packed(pk, x, s4, eps, NULL));
    }
    VG_CHECK(ok, "fold: one channel of running_var / running_mean edited in place (128 channels): folded again, "
                 "the folded weight's packed forms rebuilt (the uncached bits each time)");
    vg_tensor_free(w2); vg_tensor_free(g2); vg_tensor_free(b2); vg_tensor_free(m2); vg_tensor_free(v2);
  }
  /* no pack: plain vg_conv_bn_fold */
  VG_CHECK(same_bits(folded_ref(x, src2, eps), folded_packed(NULL, x, src2, eps, NULL)), "fold: pk NULL");
  vg_scope_end();
  vg_conv_pack_free(pk);   /* frees the kept pair (ASan: no leak) */
  /* nn: vg_nn_conv_bn (eval) with the conv's cache on, across a change of the running stats */
  vg_nn_module *conv = vg_nn_conv2d_new(3, 40, 4, 4, (vg_nn_conv2d_opts){.ph = 3, .pw = 3}, 19);
  vg_nn_module *bn = vg_nn_batchnorm2d_new(40, 1e-5f, 0.1f, true, true);
  vg_nn_train(bn, false);
  vg_scope_begin();
  vg_fill_(vg_nn_buffer(bn, "running_var"), 0.7);
  vg_fill_(vg_nn_buffer(bn, "running_mean"), 0.1);
  vg_tensor *xi = vg_randn(4, (int64_t[]){1, 3, 37, 37}, 20);   /* the PDN-like first layer: direct on AVX-512 */
  vg_no_grad_begin();
  vg_tensor *r0 = vg_nn_conv_bn(conv, bn, xi, VG_ACT_RELU);
  vg_nn_conv_cache(conv, true);
  vg_tensor *c0 = vg_nn_conv_bn(conv, bn, xi, VG_ACT_RELU), *c1 = vg_nn_conv_bn(conv, bn, xi, VG_ACT_RELU);
  const size_t held = vg_nn_conv_cache_bytes(conv);
  vg_fill_(vg_nn_buffer(bn, "running_mean"), -0.4);
  vg_tensor *c2 = vg_nn_conv_bn(conv, bn, xi, VG_ACT_RELU);
  vg_nn_conv_cache(conv, false);
  vg_tensor *r2 = vg_nn_conv_bn(conv, bn, xi, VG_ACT_RELU);
  vg_no_grad_end();
  VG_CHECK(same_bits(r0, c0) && same_bits(r0, c1) && held > 0 && same_bits(r2, c2) && !same_bits(c2, c1),
           "nn: conv + BN with the cache on: the uncached bits (%zu bytes held), and after the running mean "
           "changes, the new uncached bits", held);
  vg_scope_end();
  vg_nn_free(conv);
  vg_nn_free(bn);
  vg_tensor_free(w); vg_tensor_free(bias); vg_tensor_free(gamma); vg_tensor_free(beta);
  vg_tensor_free(mean); vg_tensor_free(var); vg_tensor_free(var2);
}

int main(void) {
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check_case(&CASES[i]);
  check_nn();
  check_fold();
  vg_scope_release();
  return vg_test_finish();
}
