/* test_vit_fused — the inference-only fused kernels (tensor.h: vg_linear_ex, vg_linear_pack,
 * vg_attention_qkv) against the composites they replace, on every ISA: the fused attention
 * (T = 1, T not a multiple of the row block, several heads, large logits), the Linear with its
 * bias / GELU in the GEMM's output step and a prepacked weight (contiguous or transposed
 * views); a packed weight is never used once its tensor changed (rewritten, re-loaded, one
 * sampled element); ViT models with vg_vit_prepack give the unpacked model's features bit for
 * bit, also after vg_vit_init_philox, a state-dict copy, an in-place rewrite, in train mode and
 * under autograd (gradients flow). Tolerance 1e-6 relative (the kernels are meant to be
 * bit-identical; the rows print the max error and whether the bits match). */
#include "tests/vgtest.h"
#include "tests/common/vit_tiny.h"
#include "tensor/cpu/isa.h"
#include "tensor/tensor.h"
#include "autograd/autograd.h"
#include "nn/nn.h"
#include "nn/backbones/vit.h"
#include "tensor/opstats.h"

#define RTOL 1e-6

static vg_tensor *rnd(int nd, const int64_t *shape, float lo, float hi, uint64_t seed) {
  vg_tensor *t = vg_tensor_new(VG_F32, nd, shape);
  vg_uniform_(t, lo, hi, seed);
  return t;
}
/* the same in the current scope */
static vg_tensor *rnd_s(int nd, const int64_t *shape, float lo, float hi, uint64_t seed) {
  vg_tensor *t = vg_empty(VG_F32, nd, shape);
  vg_uniform_(t, lo, hi, seed);
  return t;
}

/* max |a - b| / (1e-30 + |b|) over elements (inf on a shape mismatch or NaN); *same: bits equal */
static double rel_err(const vg_tensor *a, const vg_tensor *b, bool *same) {
  *same = false;
  if (!a || !b || vg_numel(a) != vg_numel(b)) return INFINITY;
  vg_tensor *ac = vg_contiguous(a), *bc = vg_contiguous(b);
  const float *x = vg_f32(ac), *y = vg_f32(bc);
  int64_t n = vg_numel(a);
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(x[i]) || isnan(y[i])) return INFINITY;
    double d = fabs((double)x[i] - y[i]) / (fabs((double)y[i]) + 1e-30);
    if (x[i] == y[i]) d = 0;
    if (d > worst) worst = d;
  }
  *same = !memcmp(x, y, (size_t)n * sizeof(float));
  return worst;
}

/* timm's Attention between qkv and proj, as vit.c ran it before the fused kernel */
static vg_tensor *attention_ref(const vg_tensor *qkv, int64_t H, float scale) {
  int64_t N = qkv->shape[0], T = qkv->shape[1], C = qkv->shape[2] / 3, D = C / H;
  vg_tensor *t = vg_permute(vg_reshape(qkv, 5, (int64_t[]){N, T, 3, H, D}), (int[]){2, 0, 3, 1, 4});
  vg_tensor *q = vg_scale(vg_select(t, 0, 0), scale);
  vg_tensor *att = vg_softmax(vg_matmul(q, vg_transpose(vg_select(t, 0, 1), 2, 3)), 3);
  vg_tensor *o = vg_matmul(att, vg_select(t, 0, 2));
  return vg_reshape(vg_permute(o, (int[]){0, 2, 1, 3}), 3, (int64_t[]){N, T, C});
}

static void check_attention(const char *isa) {
  static const int64_t cases[][4] = {   /* N, T, H, D */
      {1, 1, 1, 4}, {2, 5, 3, 8}, {1, 97, 2, 16}, {1, 49, 1, 64}, {2, 200, 3, 20}, {1, 13, 4, 1}};
  double worst = 0;
  bool all_same = true;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t N = cases[c][0], T = cases[c][1], H = cases[c][2], D = cases[c][3];
    for (int big = 0; big < 2; big++) {
      vg_scope_begin();
      vg_tensor *qkv = rnd(3, (int64_t[]){N, T, 3 * H * D}, big ? -6.0f : -1.0f, big ? 6.0f : 1.0f, 100 + c);
      float scale = (float)(1.0 / sqrt((double)D));
      vg_tensor *got = vg_attention_qkv(qkv, (int)H, scale), *want = attention_ref(qkv, H, scale);
      bool same;
      double e = rel_err(got, want, &same);
      if (!got || got->ndim != 3 || got->shape[0] != N || got->shape[1] != T || got->shape[2] != H * D) e = INFINITY;
      if (e > worst) worst = e;
      all_same &= same;
      vg_scope_end();
      vg_tensor_free(qkv);
    }
  }
  VG_CHECK(worst <= RTOL, "%s fused attention vs the composite (T = 1, 5, 13, 49, 97, 200; 1-4 heads; |logit| "
           "up to ~150): max rel %.3g, bit-identical %s", isa, worst, all_same ? "yes" : "no");
}

static void check_linear(const char *isa) {
  static const int64_t cases[][3] = {{1, 1, 1}, {7, 33, 13}, {20, 100, 385}, {3, 5, 1}, {130, 40, 64}};   /* M, N, K */
  double worst = 0;
  bool all_same = true;
  int n = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t M = cases[c][0], N = cases[c][1], K = cases[c][2];
    for (int v = 0; v < 8; v++) {
      bool gelu = v & 1, bias = v & 2, tw = v & 4;
      vg_scope_begin();
      vg_tensor *x = rnd_s(3, (int64_t[]){1, M, K}, -2.0f, 2.0f, 7 + c);
      /* tw: the weight a transposed view of a (K, N) tensor */
      vg_tensor *w = tw ? vg_transpose(rnd_s(2, (int64_t[]){K, N}, -1.0f, 1.0f, 9 + c), 0, 1)
                        : rnd_s(2, (int64_t[]){N, K}, -1.0f, 1.0f, 9 + c);
      vg_tensor *b = bias ? rnd_s(1, (int64_t[]){N}, -0.5f, 0.5f, 11 + c) : NULL;
      vg_packed_weight *pw = vg_linear_pack(w);
      vg_tensor *want = vg_linear(x, w, b);
      if (gelu) want = vg_gelu(want);
      vg_tensor *g1 = vg_linear_ex(x, w, b, NULL, gelu), *g2 = vg_linear_ex(x, w, b, pw, gelu);
      /* a non-contiguous input (every other row of a taller one) */
      vg_tensor *xs = vg_narrow(vg_reshape(vg_concat(2, (vg_tensor *[]){x, x}, 2), 3, (int64_t[]){1, 2 * M, K}), 1, 0, M);
      vg_tensor *want3 = vg_linear(xs, w, b);
      if (gelu) want3 = vg_gelu(want3);
      bool s1, s2, s3;
      double e = fmax(fmax(rel_err(g1, want, &s1), rel_err(g2, want, &s2)),
                      rel_err(vg_linear_ex(xs, w, b, pw, gelu), want3, &s3));
      if (!pw || !g1 || g1->ndim != 3 || g1->shape[2] != N) e = INFINITY;
      if (e > worst) worst = e;
      all_same &= s1 && s2 && s3;
      vg_packed_weight_free(pw);
      vg_scope_end();
      n++;
    }
  }
  VG_CHECK(worst <= RTOL, "%s vg_linear_ex (bias, GELU in the GEMM output step; packed / unpacked; transposed "
           "weight views; strided inputs; %d cases) vs vg_linear [+ vg_gelu]: max rel %.3g, bit-identical %s", isa, n,
           worst, all_same ? "yes" : "no");
}

/* a packed weight whose tensor changed is never used */
static void check_invalidation(void) {
  vg_tensor *w = rnd(2, (int64_t[]){40, 30}, -1.0f, 1.0f, 1), *x = rnd(2, (int64_t[]){9, 30}, -1.0f, 1.0f, 2);
  vg_tensor *b = rnd(1, (int64_t[]){40}, -1.0f, 1.0f, 3);
  vg_packed_weight *pw = vg_linear_pack(w);
  VG_CHECK(pw && vg_packed_weight_current(pw, w), "a fresh pack is current for its weight");
  vg_scope_begin();
  bool same;
  /* 1: the whole tensor rewritten in place (an optimizer step, a load, a re-init) */
  vg_uniform_(w, -1.0f, 1.0f, 77);
  VG_CHECK(!vg_packed_weight_current(pw, w), "whole rewrite in place: the pack is stale");
  double e = rel_err(vg_linear_ex(x, w, b, pw, true), vg_gelu(vg_linear(x, w, b)), &same);
  VG_CHECK(e == 0 && same, "whole rewrite: vg_linear_ex uses the new values (max rel %.3g)", e);
  vg_packed_weight_free(pw);
  /* 2: one element (the first, a sampled one) changed */
  pw = vg_linear_pack(w);
  vg_f32(w)[0] += 1.0f;
  VG_CHECK(!vg_packed_weight_current(pw, w), "one sampled element changed: the pack is stale");
  e = rel_err(vg_linear_ex(x, w, b, pw, false), vg_linear(x, w, b), &same);
  VG_CHECK(e == 0 && same, "one element changed: vg_linear_ex uses the new values (max rel %.3g)", e);
  /* 3: a copy from another tensor (vg_copy_, as the state-dict loaders write) */
  vg_tensor *w2 = rnd(2, (int64_t[]){40, 30}, -1.0f, 1.0f, 5);
  vg_packed_weight_free(pw);
  pw = vg_linear_pack(w);
  vg_copy_(w, w2);
  e = rel_err(vg_linear_ex(x, w, b, pw, false), vg_linear(x, w2, b), &same);
  VG_CHECK(!vg_packed_weight_current(pw, w) && e == 0 && same, "vg_copy_ into the weight: stale, new values used");
  /* 4: another tensor of the same shape, and a view of a different layout */
  vg_packed_weight_free(pw);
  pw = vg_linear_pack(w);
  VG_CHECK(!vg_packed_weight_current(pw, w2) && vg_packed_weight_current(pw, vg_transpose(vg_transpose(w, 0, 1), 0, 1)) &&
           !vg_packed_weight_current(pw, vg_transpose(w, 0, 1)),
           "the pack belongs to its tensor's storage and layout only (same-layout views share it)");
  VG_CHECK(!vg_packed_weight_current(pw, vg_narrow(w, 0, 1, 39)), "a narrowed view (other offset / shape) is not current");
  VG_CHECK(!vg_linear_pack(vg_empty(VG_F32, 1, (int64_t[]){4})) && strstr(vg_last_error(), "vg_linear_pack"),
           "vg_linear_pack refuses a 1-D tensor: %s", vg_last_error());
  vg_scope_end();
  vg_packed_weight_free(pw);
  vg_tensor_free(w), vg_tensor_free(w2), vg_tensor_free(x), vg_tensor_free(b);
}

/* empty and degenerate shapes: K = 0 (bias / GELU of zeros), M = 0, N = 0, T = 0 */
static void check_degenerate(void) {
  vg_scope_begin();
  bool s1, s2, s3;
  vg_tensor *x0 = vg_empty(VG_F32, 2, (int64_t[]){3, 0}), *w0 = vg_empty(VG_F32, 2, (int64_t[]){4, 0});
  vg_tensor *b = rnd_s(1, (int64_t[]){4}, -1.0f, 1.0f, 61);
  double e1 = rel_err(vg_linear_ex(x0, w0, b, NULL, true), vg_gelu(vg_linear(x0, w0, b)), &s1);
  vg_tensor *xm = vg_empty(VG_F32, 3, (int64_t[]){2, 0, 5}), *w = rnd_s(2, (int64_t[]){4, 5}, -1.0f, 1.0f, 62);
  vg_tensor *ym = vg_linear_ex(xm, w, b, NULL, false);
  vg_tensor *q0 = vg_empty(VG_F32, 3, (int64_t[]){2, 0, 12});
  vg_tensor *a0 = vg_attention_qkv(q0, 2, 1.0f);
  vg_tensor *bad = vg_attention_qkv(rnd_s(3, (int64_t[]){1, 3, 10}, -1.0f, 1.0f, 63), 2, 1.0f);
  VG_CHECK(e1 == 0 && s1, "vg_linear_ex K = 0: bias + GELU of zeros, as the composite");
  VG_CHECK(ym && ym->ndim == 3 && ym->shape[1] == 0 && ym->shape[2] == 4, "vg_linear_ex M = 0: an empty (2, 0, 4)");
  VG_CHECK(a0 && a0->ndim == 3 && a0->shape[1] == 0 && a0->shape[2] == 4, "vg_attention_qkv T = 0: an empty (2, 0, 4)");
  VG_CHECK(!bad && strstr(vg_last_error(), "vg_attention_qkv"), "qkv width not 3 x heads x D refused: %s", vg_last_error());
  (void)s2, (void)s3;
  vg_scope_end();
}

/* under autograd the fused entry points run the composites: same values, gradients flow */
static void check_autograd(void) {
  vg_tensor *qkv = rnd(3, (int64_t[]){1, 6, 3 * 2 * 4}, -1.0f, 1.0f, 21);
  vg_tensor *w = rnd(2, (int64_t[]){5, 8}, -1.0f, 1.0f, 22);
  qkv->requires_grad = true;
  w->requires_grad = true;
  vg_scope_begin();
  vg_tensor *a = vg_attention_qkv(qkv, 2, 0.5f);
  vg_tensor *y = vg_linear_ex(a, w, NULL, NULL, true);
  bool same;
  vg_no_grad_begin();
  double e = rel_err(y, vg_linear_ex(vg_attention_qkv(qkv, 2, 0.5f), w, NULL, NULL, true), &same);
  vg_no_grad_end();
  VG_CHECK(y && y->requires_grad && e == 0 && same, "recorded forward: the composite's values (max rel %.3g)", e);
  vg_status st = vg_backward(vg_sum_all(y));
  float gq = 0, gw = 0;
  for (int64_t i = 0; qkv->grad && i < vg_numel(qkv); i++) gq += fabsf(vg_f32(qkv->grad)[i]);
  for (int64_t i = 0; w->grad && i < vg_numel(w); i++) gw += fabsf(vg_f32(w->grad)[i]);
  VG_CHECK(st == VG_OK && gq > 0 && gw > 0, "gradients reach qkv (%g) and the weight (%g)", (double)gq, (double)gw);
  vg_scope_end();
  vg_tensor_free(qkv), vg_tensor_free(w);
}


/* features at two taps into heap copies (out[0..1]) */
static bool feats(vg_nn_module *m, const vg_tensor *x, vg_tensor **out) {
  vg_scope_begin();
  vg_tensor *f[2] = {0};
  vg_status st = vg_vit_features(m, x, f);
  for (int i = 0; i < 2; i++) out[i] = st == VG_OK ? vg_tensor_clone_heap(f[i]) : NULL;
  vg_scope_end();
  return st == VG_OK;
}

static double feats_err(vg_tensor **a, vg_tensor **b, bool *same) {
  bool s0, s1;
  double e = fmax(rel_err(a[0], b[0], &s0), rel_err(a[1], b[1], &s1));
  *same = s0 && s1;
  return e;
}
static void free2(vg_tensor **t) { vg_tensor_free(t[0]), vg_tensor_free(t[1]); }

static void check_vit(vg_vit_arch arch) {
  const char *name = arch == VG_VIT_DEIT ? "deit" : "cait";
  vg_vit_config c = vg_test_vit_tiny(arch);
  const char *taps[2] = {"blocks.1", "norm.3"};
  vg_nn_module *m = vg_vit_new_config(&c, 2, taps, 1), *ref = vg_vit_new_config(&c, 2, taps, 1);
  vg_vit_init_philox(m, 500);
  vg_vit_init_philox(ref, 500);
  vg_tensor *x = rnd(4, (int64_t[]){2, 3, 64, 48}, -1.0f, 1.0f, 31);   /* 16 x 12 patches: T not square */
  vg_tensor *a[2], *b[2];
  bool same;
  /* the recording forward (the composites, as before) vs the fused unpacked one vs packed;
   * `vigil bench`'s FLOP counts (tensor/opstats.h) the same either way */
  vg_opstats s0, s1;
  x->requires_grad = true;
  vg_nn_requires_grad(ref, true);
  vg_opstats_start();
  feats(ref, x, b);
  vg_opstats_stop(&s0);
  vg_nn_requires_grad(ref, false);
  x->requires_grad = false;
  vg_opstats_start();
  feats(m, x, a);
  vg_opstats_stop(&s1);
  VG_CHECK(s0.mac_flops > 0 && s0.mac_flops == s1.mac_flops && s0.other_flops == s1.other_flops,
           "%s opstats: fused forward counts the composite's FLOPs (%.6g / %.6g MAC, %.6g / %.6g other)", name,
           s1.mac_flops, s0.mac_flops, s1.other_flops, s0.other_flops);
  double e = feats_err(a, b, &same);
  VG_CHECK(e <= RTOL, "%s features: fused inference forward vs the recorded (composite) forward: max rel %.3g, "
           "bit-identical %s", name, e, same ? "yes" : "no");
  free2(a);
  VG_CHECK(vg_vit_prepack(m) == VG_OK && vg_vit_is_packed(m), "%s vg_vit_prepack", name);
  feats(m, x, a);
  e = feats_err(a, b, &same);
  VG_CHECK(e <= RTOL, "%s features packed vs the recorded forward: max rel %.3g, bit-identical %s", name, e,
           same ? "yes" : "no");
  free2(a), free2(b);
  /* re-init after packing: the packs follow */
  vg_vit_init_philox(m, 900);
  vg_vit_init_philox(ref, 900);
  feats(m, x, a), feats(ref, x, b);
  e = feats_err(a, b, &same);
  VG_CHECK(vg_vit_is_packed(m) && e == 0 && same, "%s packed, then vg_vit_init_philox: new weights used (max rel %.3g)",
           name, e);
  free2(a), free2(b);
  /* a state-dict copy into the packed model's tensors (what the loaders do) */
  vg_nn_module *src = vg_vit_new_config(&c, 2, taps, 1);
  vg_vit_init_philox(src, 1300);
  vg_nn_list sd = vg_nn_state_dict(m), ss = vg_nn_state_dict(src);
  for (int i = 0; i < sd.n && i < ss.n; i++) vg_copy_(sd.tensors[i], ss.tensors[i]);
  vg_nn_list_free(&sd), vg_nn_list_free(&ss);
  feats(m, x, a), feats(src, x, b);
  e = feats_err(a, b, &same);
  VG_CHECK(e == 0 && same, "%s packed, then every tensor copied from another model: its features (max rel %.3g)", name, e);
  free2(a), free2(b);
  /* an in-place rewrite of one Linear weight (an optimizer step) */
  vg_tensor *w = vg_nn_get(m, "blocks.0.mlp.fc1.weight"), *ws = vg_nn_get(src, "blocks.0.mlp.fc1.weight");
  vg_uniform_(w, -0.2f, 0.2f, 4242);
  vg_uniform_(ws, -0.2f, 0.2f, 4242);
  feats(m, x, a), feats(src, x, b);
  e = feats_err(a, b, &same);
  VG_CHECK(e == 0 && same, "%s packed, then fc1 rewritten in place: new weights used (max rel %.3g)", name, e);
  free2(a), free2(b);
  /* train mode bypasses the packs (same values) */
  vg_nn_train(m, true);
  feats(m, x, a), feats(src, x, b);
  e = feats_err(a, b, &same);
  VG_CHECK(e == 0 && same, "%s packed model in train mode: same features (max rel %.3g)", name, e);
  free2(a), free2(b);
  vg_nn_train(m, false);
  vg_vit_unpack(m);
  VG_CHECK(!vg_vit_is_packed(m) && !vg_vit_is_packed(NULL), "%s vg_vit_unpack", name);
  vg_nn_module *id = vg_nn_identity_new();
  VG_CHECK(vg_vit_prepack(id) != VG_OK && strstr(vg_last_error(), "vg_vit_prepack"), "vg_vit_prepack of a non-ViT refused: %s",
           vg_last_error());
  vg_nn_free(id);
  vg_nn_free(m), vg_nn_free(ref), vg_nn_free(src);
  vg_tensor_free(x);
}

int main(void) {
  vg_isa best = vg_cpu_isa_max();
  for (int isa = best; isa >= 0; isa--) {
    vg_cpu_set_isa((vg_isa)isa);
    check_attention(vg_isa_name((vg_isa)isa));
    check_linear(vg_isa_name((vg_isa)isa));
  }
  vg_cpu_set_isa(best);
  int nt = vg_num_threads();
  vg_set_num_threads(nt == 1 ? 2 : 1);
  check_attention("threads-swapped");
  vg_set_num_threads(nt);
  check_invalidation();
  check_degenerate();
  check_autograd();
  check_vit(VG_VIT_DEIT);
  check_vit(VG_VIT_CAIT);
  return vg_test_finish();
}
