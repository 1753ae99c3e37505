/* attention.c — inference-only fused CPU kernels for transformer blocks (declared in
 * tensor/tensor.h, "inference-only fused kernels"):
 *
 *   vg_linear_ex      x w^T + b [then GELU] as one GEMM: the column bias and the exact erf
 *                     GELU (the elementwise op's row kernel) run in the GEMM's output step,
 *                     per tile while it is in cache; the weight optionally prepacked once
 *                     (vg_linear_pack: the GEMM's prepacked-B layout).
 *   vg_attention_qkv  softmax((q * scale) k^T) v per (batch, head), q/k/v read from the qkv
 *                     Linear's (N, T, 3, H, D) output by strides and the result written as
 *                     (N, T, H * D): per head K^T and V are packed once, then per block of
 *                     query rows S = Q_blk K^T, softmax of S's rows, O_blk = P V; no
 *                     (N, H, T, T) score tensor, no permute copies.
 *
 * Both give the values of the composites they replace bit for bit (same ISA): the GEMM sums
 * each element in an order that depends on K and the ISA only, the bias add, GELU, scale,
 * row max, exp and the softmax sum are the ops' own (tensor/cpu/norm.c's softmax row:
 * NaN-propagating max, vmath exp, 8 double accumulators). When autograd would record, or
 * the inputs are not CPU f32, they run the composites instead. */
#include "tensor/internal.h"
#include "tensor/eltwise.h"
#include "tensor/op_params.h"
#include "tensor/kmath/norm.h"
#include "tensor/opstats.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/isa.h"
#include "tensor/cpu/eltwise_vec.h"
#include "base/threadpool.h"
#include "base/status.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Loops vectorized as in norm.c (the softmax row's sums keep their explicit accumulators,
 * so vectorizing never reorders them: the values are the scalar loops') */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

void vg_row_unary_scalar(vg_unary_kind, const vg_unary_params *, float *, int64_t, const float *, int64_t, int64_t);
void vg_row_unary_avx2(vg_unary_kind, const vg_unary_params *, float *, int64_t, const float *, int64_t, int64_t);
void vg_row_unary_avx512(vg_unary_kind, const vg_unary_params *, float *, int64_t, const float *, int64_t, int64_t);

static void gelu_row(vg_isa isa, float *c, int64_t n) {
  const vg_unary_params up = {0, 0};
  switch (isa) {
    case VG_ISA_SCALAR: vg_row_unary_scalar(VG_UK_GELU, &up, c, 1, c, 1, n); return;
    case VG_ISA_AVX2: vg_row_unary_avx2(VG_UK_GELU, &up, c, 1, c, 1, n); return;
    case VG_ISA_AVX512: vg_row_unary_avx512(VG_UK_GELU, &up, c, 1, c, 1, n); return;
  }
}

/* `vigil bench` counts FLOPs at the dispatch point (tensor/opstats.h): the fused kernels
 * count what the composites' ops would (a matmul: 2 MACs per output and K; the rest: one per
 * output element) */
void vg_opstats_count(const vg_opcall *c);   /* opstats.c */
static void count_op(vg_op op, int64_t nout, int64_t k) {
  vg_tensor o = {.ndim = 1, .shape = {nout}}, a = {.ndim = 1, .shape = {k}};
  const vg_tensor *in[1] = {&a};
  vg_opcall c = {.op = op, .nin = 1, .in = in, .out = {&o}};
  vg_opstats_count(&c);
}

static void *alloc64(size_t nfloats) {
  size_t bytes = (nfloats * sizeof(float) + 63) & ~(size_t)63;
  return aligned_alloc(64, bytes ? bytes : 64);
}

/* ---------------------------------------------------------------- packed weights */
/* The pack records its weight's identity (vg_weight_sig: pointer, shape, strides, 64
 * sampled values); the contract is still the owner's (see tensor.h). */
struct vg_packed_weight {
  vg_weight_sig sig;
  int64_t N, K;
  float *packed;                 /* vg_gemm_pack_b layout, 64-byte aligned */
};

static bool pw_eligible(const vg_tensor *w) {
  return w && w->device == VG_CPU && w->dtype == VG_F32 && w->ndim == 2 && w->storage && w->storage->data;
}

vg_packed_weight *vg_linear_pack(const vg_tensor *w) {
  if (!pw_eligible(w)) {
    vg_fail(VG_ERR_ARG, "vg_linear_pack: want a 2-D (out, in) CPU f32 weight");
    return NULL;
  }
  vg_packed_weight *pw = calloc(1, sizeof *pw);
  const int64_t N = w->shape[0], K = w->shape[1];
  float *buf = pw ? alloc64(vg_gemm_packed_b_floats(N, K)) : NULL;
  if (!buf) {
    free(pw);
    vg_fail(VG_ERR_NOMEM, "vg_linear_pack: out of memory");
    return NULL;
  }
  pw->N = N;
  pw->K = K;
  pw->packed = buf;
  /* P[j][k] = w[j][k]: B = w^T */
  vg_gemm_strided sb = {(const float *)w->storage->data + w->offset, w->stride[0], w->stride[1]};
  vg_gemm_problem p = {.N = N, .K = K, .pack_b = vg_gemm_pack_strided, .b_ctx = &sb};
  vg_gemm_pack_b(&p, buf);
  vg_weight_sig_take(&pw->sig, w);
  return pw;
}

void vg_packed_weight_free(vg_packed_weight *pw) {
  if (!pw) return;
  free(pw->packed);
  free(pw);
}

bool vg_packed_weight_current(const vg_packed_weight *pw, const vg_tensor *w) {
  return pw && pw_eligible(w) && vg_weight_sig_matches(&pw->sig, w) && vg_gemm_packed_b_fits(pw->packed, pw->N, pw->K);
}

/* ---------------------------------------------------------------- fused Linear */
typedef struct {
  const float *bias;             /* nullable, (N) */
  bool gelu;
  vg_isa isa;
} lin_epi;

static void lin_epilogue(const void *ctx, float *c, int64_t ldc, int64_t i0, int64_t j0, int m, int n) {
  (void)i0;
  const lin_epi *e = ctx;
  for (int r = 0; r < m; r++) {
    float *row = c + r * ldc;
    if (e->bias) {
      const float *b = e->bias + j0;
      for (int j = 0; j < n; j++) row[j] = row[j] + b[j];
    }
    if (e->gelu) gelu_row(e->isa, row, n);
  }
}

static bool records(int n, const vg_tensor *const *ts) {
  if (!vg_rec_grad_enabled()) return false;
  for (int i = 0; i < n; i++)
    if (ts[i] && ts[i]->requires_grad) return true;
  return false;
}

vg_tensor *vg_linear_ex(const vg_tensor *x, const vg_tensor *w, const vg_tensor *b, const vg_packed_weight *pw,
                        bool gelu) {
  const vg_tensor *in[3] = {x, w, b};
  bool fuse = x && w && x->device == VG_CPU && x->dtype == VG_F32 && pw_eligible(w) && x->ndim >= 1 &&
              x->shape[x->ndim - 1] == w->shape[1] &&
              (!b || (b->device == VG_CPU && b->dtype == VG_F32 && b->ndim == 1 && b->shape[0] == w->shape[0])) &&
              !records(3, in);
  if (!fuse) {   /* the composite (autograd, other devices, and its error messages) */
    vg_tensor *y = vg_linear(x, w, b);
    return gelu ? vg_gelu(y) : y;
  }
  const int64_t K = w->shape[1], N = w->shape[0];
  int64_t shape[VG_MAX_DIMS], M = 1;
  for (int d = 0; d < x->ndim - 1; d++) M *= (shape[d] = x->shape[d]);
  shape[x->ndim - 1] = N;
  const vg_tensor *xc = vg_contiguous(x), *bc = b ? vg_contiguous(b) : NULL;
  vg_tensor *out = xc && (!b || bc) ? vg_alloc(VG_F32, VG_CPU, x->ndim, shape) : NULL;
  if (!out) return NULL;
  if (M == 0 || N == 0) return out;
  lin_epi e = {.bias = bc ? vg_f32(bc) : NULL, .gelu = gelu, .isa = vg_cpu_isa()};
  vg_gemm_strided sa = {vg_f32(xc), K, 1};
  vg_gemm_strided sb = {(const float *)w->storage->data + w->offset, w->stride[0], w->stride[1]};
  vg_gemm_problem p = {.M = M, .N = N, .K = K, .pack_a = vg_gemm_pack_strided, .a_ctx = &sa,
                       .pack_b = vg_gemm_pack_strided, .b_ctx = &sb, .alpha = 1.0f, .beta = 0.0f,
                       .C = vg_f32(out), .ldc = N, .epi = (e.bias || gelu) ? lin_epilogue : NULL, .epi_ctx = &e};
  if (pw && vg_packed_weight_current(pw, w)) p.b_packed = pw->packed;
  vg_gemm_run(&p);
  if (vg_opstats_on()) {
    count_op(VG_OP_MATMUL, M * N, K);
    if (b) count_op(VG_OP_ADD, M * N, 1);
    if (gelu) count_op(VG_OP_GELU, M * N, 1);
  }
  return out;
}

/* ---------------------------------------------------------------- fused attention */
/* the strided packer, then q * scale as vg_scale computes it (AFFINE: a * v + 0) */
typedef struct { vg_gemm_strided s; float scale; } scaled_src;
static void pack_scaled(const void *ctx, int64_t x0, int64_t xn, int64_t k0, int64_t kc, int w, float *dst) {
  const scaled_src *q = ctx;
  vg_gemm_pack_strided(&q->s, x0, xn, k0, kc, w, dst);
  const int64_t n = (xn + w - 1) / w * w * kc;
  const float a = q->scale;
  for (int64_t i = 0; i < n; i++) dst[i] = a * dst[i] + 0.0f;
}

typedef struct {
  const float *qkv;
  float *out;
  int64_t T, H, D, C, tb;
  float scale;
  int failed;
} attn_ctx;

static void attn_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  attn_ctx *a = vctx;
  const int64_t T = a->T, D = a->D, C = a->C, ld = 3 * C;
  float *kp = alloc64(vg_gemm_packed_b_floats(T, D)), *vp = alloc64(vg_gemm_packed_b_floats(D, T));
  float *s = alloc64((size_t)(a->tb * T));
  if (!kp || !vp || !s) {
    __atomic_store_n(&a->failed, 1, __ATOMIC_RELAXED);
    free(kp), free(vp), free(s);
    return;
  }
  for (int64_t t = b; t < e; t++) {
    const int64_t n = t / a->H, h = t % a->H;
    const float *base = a->qkv + n * T * ld + h * D;
    /* K^T (B of S = Q K^T: P[j][d] = k[j][d]) and V (B of O = P V: P[d][j] = v[j][d]) */
    vg_gemm_strided ks = {base + C, ld, 1}, vs = {base + 2 * C, 1, ld};
    vg_gemm_problem pk = {.N = T, .K = D, .pack_b = vg_gemm_pack_strided, .b_ctx = &ks};
    vg_gemm_problem pv = {.N = D, .K = T, .pack_b = vg_gemm_pack_strided, .b_ctx = &vs};
    vg_gemm_pack_b(&pk, kp);
    vg_gemm_pack_b(&pv, vp);
    for (int64_t r0 = 0; r0 < T; r0 += a->tb) {
      const int64_t m = T - r0 < a->tb ? T - r0 : a->tb;
      scaled_src qs = {{base + r0 * ld, ld, 1}, a->scale};
      vg_gemm_problem p1 = {.M = m, .N = T, .K = D, .pack_a = pack_scaled, .a_ctx = &qs, .b_packed = kp,
                            .alpha = 1.0f, .beta = 0.0f, .C = s, .ldc = T};
      vg_gemm_run(&p1);
      for (int64_t i = 0; i < m; i++) vg_cpu_softmax_row(s + i * T, s + i * T, T);   /* norm.c's row */
      vg_gemm_strided ps = {s, T, 1};
      vg_gemm_problem p2 = {.M = m, .N = D, .K = T, .pack_a = vg_gemm_pack_strided, .a_ctx = &ps, .b_packed = vp,
                            .alpha = 1.0f, .beta = 0.0f, .C = a->out + (n * T + r0) * C + h * D, .ldc = C};
      vg_gemm_run(&p2);
    }
  }
  free(kp), free(vp), free(s);
}

/* the composite vit.c ran before (and still runs under autograd) */
static vg_tensor *attention_composite(const vg_tensor *qkv, int64_t H, float scale) {
  int64_t N = qkv->shape[0], T = qkv->shape[1], C = qkv->shape[2] / 3, D = C / H;
  vg_tensor *t = vg_permute(vg_reshape(qkv, 5, (int64_t[]){N, T, 3, H, D}), (int[]){2, 0, 3, 1, 4});
  vg_tensor *q = vg_scale(vg_select(t, 0, 0), scale);
  vg_tensor *k = vg_select(t, 0, 1), *v = vg_select(t, 0, 2);
  vg_tensor *att = vg_softmax(vg_matmul(q, vg_transpose(k, 2, 3)), 3);   /* (N, H, T, T) */
  vg_tensor *o = vg_matmul(att, v);                                      /* (N, H, T, D) */
  return vg_reshape(vg_permute(o, (int[]){0, 2, 1, 3}), 3, (int64_t[]){N, T, C});
}

vg_tensor *vg_attention_qkv(const vg_tensor *qkv, int heads, float scale) {
  if (!qkv || qkv->ndim != 3 || heads <= 0 || qkv->shape[2] % (3 * (int64_t)heads)) {
    vg_fail(VG_ERR_ARG, "vg_attention_qkv: want an (N, T, 3 x heads x D) qkv tensor and heads > 0 (heads %d)", heads);
    return NULL;
  }
  if (qkv->device != VG_CPU || qkv->dtype != VG_F32 || records(1, &qkv))
    return attention_composite(qkv, heads, scale);
  const vg_tensor *xc = vg_contiguous(qkv);
  int64_t N = qkv->shape[0], T = qkv->shape[1], C = qkv->shape[2] / 3;
  vg_tensor *out = xc ? vg_alloc(VG_F32, VG_CPU, 3, (int64_t[]){N, T, C}) : NULL;
  if (!out || N * T * C == 0) return out;
  int mr, nr;
  vg_gemm_tile(&mr, &nr);
  attn_ctx a = {.qkv = vg_f32(xc), .out = vg_f32(out), .T = T, .H = heads, .D = C / heads, .C = C,
                .tb = 8 * (int64_t)mr, .scale = scale};
  vg_parallel_for(N * heads, 1, attn_task, &a);
  if (vg_opstats_on()) {
    const int64_t H = heads, D = C / heads;
    count_op(VG_OP_AFFINE, N * H * T * D, 1);     /* q * scale */
    count_op(VG_OP_MATMUL, N * H * T * T, D);     /* q k^T */
    count_op(VG_OP_SOFTMAX, N * H * T * T, 1);
    count_op(VG_OP_MATMUL, N * H * T * D, T);     /* p v */
  }
  if (a.failed) {
    vg_fail(VG_ERR_NOMEM, "vg_attention_qkv: out of memory");
    return NULL;
  }
  return out;
}
