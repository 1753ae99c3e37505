/* conv.cu — conv2d and its backward ops by im2col / col2im + cuBLAS GEMM, and the
 * layout ops unfold (im2col), fold (col2im), pad and concat.
 *
 * cols (per image): (C*kh*kw, L), row (c*kh + ki)*kw + kj, column oh*OW + ow holds
 * x[c, oh*sh - ph + ki*dh, ow*sw - pw + kj*dw] (0 outside) — tensor/cpu/layout.c's
 * layout. col2im gathers: each image pixel sums its (ki, kj) taps in order, so no
 * atomics and a fixed order. Images are processed in chunks whose cols fit in
 * VG_CU_COLS_BYTES. With groups G, group g owns cols rows [g*Cg*kk, (g+1)*Cg*kk) and
 * weight rows [g*Og, (g+1)*Og).
 *   forward:     out_g (Og, L)  = W_g (Og, Cg*kk) @ cols_g         (+ bias)
 *   bwd data:    cols_g         = W_g^T @ gy_g, then col2im
 *   bwd weight:  gw_g (Og, Cg*kk) = sum_n gy_g (Og, L) @ cols_g^T   (beta = 1 after n = 0)
 * conv2d, unfold and fold also run on f16 (f16.cuh): cols in f16, the GEMMs through
 * cublasGemmStridedBatchedEx with f32 accumulation; the bias is written into the output
 * first and the GEMM adds to it (beta = 1), so each f16 output is rounded once, unless
 * a ReLU is fused (p.conv2d.act): then, as for f32, one epilogue pass after the GEMM adds the
 * bias and applies the ReLU. The backward ops are f32 only. */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/f16.cuh"
#include "tensor/kmath/conv_geom.h"
#include "tensor/kmath/window.h"
#include <string.h>

#define THREADS 256
#define VG_CU_COLS_BYTES ((int64_t)256 << 20)

typedef struct {
  int64_t C, H, W, OH, OW, kh, kw, dh, dw, ph, pw, sh, sw;
} cu_geom;

/* x: nimg contiguous (C, H, W) images -> cols: nimg (C*kh*kw, L). Index math in I:
 * int32 when every index fits (the usual case: 64-bit division costs several times
 * more on a GPU), int64 otherwise. */
template <typename T, typename I>
__global__ void k_im2col(cu_geom g, int64_t nimg, const T *x, T *cols) {
  const I L = (I)(g.OH * g.OW), OW = (I)g.OW, kw = (I)g.kw, kk = (I)(g.kh * g.kw), CK = (I)(g.C * g.kh * g.kw);
  const I C = (I)g.C, H = (I)g.H, W = (I)g.W, sh = (I)g.sh, sw = (I)g.sw, ph = (I)g.ph, pw = (I)g.pw;
  const I dh = (I)g.dh, dw = (I)g.dw;
  int64_t n = nimg * g.C * g.kh * g.kw * g.OH * g.OW;
  VG_CU_GRID_LOOP(i64, n) {
    const I i = (I)i64, l = i % L, q = i / L, r = q % CK, img = q / CK;
    const I c = r / kk, rk = r % kk, ki = rk / kw, kj = rk % kw, oh = l / OW, ow = l % OW;
    const I ih = VG_CONV_SRC(oh, sh, ph, ki, dh), iw = VG_CONV_SRC(ow, sw, pw, kj, dw);
    if (ih >= 0 && ih < H && iw >= 0 && iw < W) cols[i] = x[((img * C + c) * H + ih) * W + iw];
    else vg_st(cols + i, 0.0f);
  }
}

/* cols -> images: every pixel sums the cols entries that read it (order ki, kj) */
template <typename T, typename I>
__global__ void k_col2im(cu_geom g, int64_t nimg, const T *cols, T *x) {
  const I L = (I)(g.OH * g.OW), kk = (I)(g.kh * g.kw), C = (I)g.C, H = (I)g.H, W = (I)g.W;
  const I OH = (I)g.OH, OW = (I)g.OW, kh = (I)g.kh, kw = (I)g.kw, sh = (I)g.sh, sw = (I)g.sw;
  const I ph = (I)g.ph, pw = (I)g.pw, dh = (I)g.dh, dw = (I)g.dw;
  int64_t n = nimg * g.C * g.H * g.W;
  VG_CU_GRID_LOOP(i64, n) {
    const I i = (I)i64, w = i % W, h = (i / W) % H, c = (i / (W * H)) % C, img = i / (W * H * C);
    const T *cp = cols + (img * C + c) * kk * L;
    float s = 0.0f;
    for (I ki = 0; ki < kh; ki++) {
      I th = h + ph - ki * dh;
      if (th < 0 || th % sh) continue;
      I oh = th / sh;
      if (oh >= OH) continue;
      for (I kj = 0; kj < kw; kj++) {
        I tw = w + pw - kj * dw;
        if (tw < 0 || tw % sw) continue;
        I ow = tw / sw;
        if (ow >= OW) continue;
        s += vg_ld(cp + (ki * kw + kj) * L + oh * OW + ow);
      }
    }
    vg_st(x + i, s);
  }
}

/* The forward's epilogue: out = act(src + bias) over (N, O, L) (bias optional; src is
 * out itself, or the f32 GEMM result of an f16 conv with a fused ReLU, so that its
 * output is rounded once). I: int32 index math when n fits. */
template <typename T, typename S, typename I>
__global__ void k_epilogue(T *out, const S *src, const T *b, I O, I L, I n, int relu) {
  VG_CU_GRID_LOOP(i64, n) {
    const I i = (I)i64;
    float v = vg_ld(src + i);
    if (b) v += vg_ld(b + (i / L) % O);
    if (relu) v = v > 0 ? v : (v != v ? v : 0.0f);
    vg_st(out + i, v);
  }
}

template <typename T, typename S>
static void epilogue_t(void *out, const void *src, const void *b, int64_t O, int64_t L, int64_t n, int relu) {
  if (n <= 0x7fffffff) {
    void (*k)(T *, const S *, const T *, int32_t, int32_t, int32_t, int) = k_epilogue<T, S, int32_t>;
    VG_CU_LAUNCH(k, vg_cu_blocks(n, THREADS), THREADS, 0, vg_cuda_stream())(
        (T *)out, (const S *)src, (const T *)b, (int32_t)O, (int32_t)L, (int32_t)n, relu);
  } else {
    void (*k)(T *, const S *, const T *, int64_t, int64_t, int64_t, int) = k_epilogue<T, S, int64_t>;
    VG_CU_LAUNCH(k, vg_cu_blocks(n, THREADS), THREADS, 0, vg_cuda_stream())((T *)out, (const S *)src, (const T *)b, O, L,
                                                                             n, relu);
  }
  VG_CUDA_LAUNCHED("conv2d epilogue");
}

/* out (dt) = act(src + b); src: out itself (in place), or an f32 buffer when src32 */
static void launch_epilogue(vg_dtype dt, void *out, const void *src, bool src32, const void *b, int64_t O, int64_t L,
                            int64_t n, int relu) {
  if (n == 0) return;
  if (dt == VG_F16 && src32) epilogue_t<vg_half, float>(out, src, b, O, L, n, relu);
  else if (dt == VG_F16) epilogue_t<vg_half, vg_half>(out, src, b, O, L, n, relu);
  else epilogue_t<float, float>(out, src, b, O, L, n, relu);
}

/* out (N, O, L) = bias broadcast (the f16 conv's GEMM then adds with beta = 1) */
template <typename T>
__global__ void k_bias_fill(T *out, const T *b, int64_t O, int64_t L, int64_t n) {
  VG_CU_GRID_LOOP(i, n) out[i] = b[(i / L) % O];
}

/* whether every element index of the images and their cols fits in int32 */
static bool fits32(const cu_geom &g, int64_t nimg) {
  int64_t img = nimg * g.C * g.H * g.W, cols = nimg * g.C * g.kh * g.kw * g.OH * g.OW;
  return img <= 0x7fffffff && cols <= 0x7fffffff;
}

template <typename T>
static void im2col_t(const cu_geom &g, int64_t nimg, const void *x, void *cols) {
  int64_t n = nimg * g.C * g.kh * g.kw * g.OH * g.OW;
  if (n == 0) return;
  void (*k)(cu_geom, int64_t, const T *, T *) = fits32(g, nimg) ? k_im2col<T, int32_t> : k_im2col<T, int64_t>;
  VG_CU_LAUNCH(k, vg_cu_blocks(n, THREADS), THREADS, 0, vg_cuda_stream())(g, nimg, (const T *)x, (T *)cols);
  VG_CUDA_LAUNCHED("im2col");
}

template <typename T>
static void col2im_t(const cu_geom &g, int64_t nimg, const void *cols, void *x) {
  int64_t n = nimg * g.C * g.H * g.W;
  if (n == 0) return;
  void (*k)(cu_geom, int64_t, const T *, T *) = fits32(g, nimg) ? k_col2im<T, int32_t> : k_col2im<T, int64_t>;
  VG_CU_LAUNCH(k, vg_cu_blocks(n, THREADS), THREADS, 0, vg_cuda_stream())(g, nimg, (const T *)cols, (T *)x);
  VG_CUDA_LAUNCHED("col2im");
}

/* x, cols: device buffers of elements of dt (f32 or f16) */
static void launch_im2col(const cu_geom &g, int64_t nimg, vg_dtype dt, const void *x, void *cols) {
  if (dt == VG_F16) im2col_t<vg_half>(g, nimg, x, cols);
  else im2col_t<float>(g, nimg, x, cols);
}

static void launch_col2im(const cu_geom &g, int64_t nimg, vg_dtype dt, const void *cols, void *x) {
  if (dt == VG_F16) col2im_t<vg_half>(g, nimg, cols, x);
  else col2im_t<float>(g, nimg, cols, x);
}

/* conv2d and its two backward ops (one kernel each, vg_cu_conv2d* below) */
typedef enum { CV_FWD, CV_BWD_DATA, CV_BWD_WEIGHT } cv_kind;

static void conv_op(const vg_opcall *c, cv_kind k) {
  vg_tensor *out = c->out[0];
  const vg_tensor *x = k == CV_BWD_DATA ? out : c->in[0];
  const vg_tensor *w = k == CV_BWD_WEIGHT ? out : (k == CV_FWD ? c->in[1] : c->in[0]);
  const vg_conv2d_params &cp = c->p.conv2d;   /* conv2d and its backward ops */
  cu_geom g = {x->shape[1], x->shape[2], x->shape[3], 0, 0, w->shape[2], w->shape[3], cp.dh, cp.dw,
               cp.ph, cp.pw, cp.sh, cp.sw};
  g.OH = vg_conv_out_size(g.H, g.kh, g.sh, g.ph, g.dh);
  g.OW = vg_conv_out_size(g.W, g.kw, g.sw, g.pw, g.dw);
  int64_t N = x->shape[0], O = w->shape[0], G = cp.groups, Cg = g.C / G, Og = O / G, kk = g.kh * g.kw;
  int64_t L = g.OH * g.OW, Kc = Cg * kk, rows = g.C * kk;
  cudaStream_t s = vg_cuda_stream();
  if (vg_numel(out) == 0) return;
  const vg_dtype dt = out->dtype;
  const int64_t es = (int64_t)vg_dtype_size(dt);
  const vg_tensor *bias = k == CV_FWD && c->nin > 2 ? c->in[2] : NULL;
  if (k == CV_FWD) {
    VG_ASSERT(c->in[0]->dtype == dt && c->in[1]->dtype == dt && (!bias || bias->dtype == dt));
    VG_ASSERT(dt == VG_F32 || dt == VG_F16);
  } else {
    VG_CU_NEED_F32(c->in[0], vg_op_name(c->op));
    VG_CU_NEED_F32(c->in[1], vg_op_name(c->op));
    VG_CU_NEED_F32(out, vg_op_name(c->op));
  }
  /* f16 with a bias and no activation: out = bias, then the GEMMs add (beta = 1), so
   * each output is rounded once. Otherwise the epilogue adds the bias and applies the
   * activation in one pass after the GEMMs. */
  const int relu = k == CV_FWD && cp.act == VG_ACT_RELU;
  void *tb = NULL;
  bool prefill = dt == VG_F16 && bias && N && L && !relu;
  if (prefill) {
    const void *pb = vg_cu_contig(bias, &tb);
    int64_t n = vg_numel(out);
    VG_CU_LAUNCH(k_bias_fill<vg_half>, vg_cu_blocks(n, THREADS), THREADS, 0, s)((vg_half *)vg_data(out),
                                                                               (const vg_half *)pb, O, L, n);
    VG_CUDA_LAUNCHED("conv2d bias");
  }
  if (N == 0 || L == 0 || Kc == 0) { /* empty sums */
    if (!prefill) {
      VG_CUDA_CHECK(cudaMemsetAsync(vg_data(out), 0, (size_t)es * (size_t)vg_numel(out), s));
      if ((bias || relu) && N && L)
        launch_epilogue(dt, vg_data(out), vg_data(out), false, bias ? vg_cu_contig(bias, &tb) : NULL, O, L,
                        vg_numel(out), relu);
    }
    vg_cuda_free(tb);
    return;
  }
  VG_ASSERT(L <= 0x7fffffff && Kc <= 0x7fffffff && Og <= 0x7fffffff);
  /* 1x1, stride 1, no padding: an image is its own cols (C rows of L = H*W) */
  const bool direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  int64_t per_img = rows * L * es;
  int64_t chunk = direct ? N : VG_CU_COLS_BYTES / (per_img ? per_img : 1);
  /* f16 with a fused ReLU: the GEMMs write f32 (acc), the epilogue adds the bias, applies
   * the ReLU and rounds to f16 once, per chunk of images */
  const bool acc32 = k == CV_FWD && dt == VG_F16 && relu;
  if (acc32 && chunk > VG_CU_COLS_BYTES / (O * L * 4)) chunk = VG_CU_COLS_BYTES / (O * L * 4);
  if (chunk < 1) chunk = 1;
  if (chunk > N) chunk = N;
  char *cols = direct ? NULL : (char *)vg_cuda_alloc((size_t)(chunk * per_img));
  float *acc = acc32 ? (float *)vg_cuda_alloc((size_t)(chunk * O * L * 4)) : NULL;
  cublasHandle_t h = vg_cuda_blas();
  const float one = 1.0f, zero = 0.0f;
  void *t0, *t1, *t2 = NULL;
  switch (k) {
    case CV_FWD: {
      const char *px = (const char *)vg_cu_contig(c->in[0], &t0), *pw = (const char *)vg_cu_contig(c->in[1], &t1);
      char *py = (char *)vg_data(out);
      for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        int64_t nc = N - n0 < chunk ? N - n0 : chunk;
        const char *cx = px + n0 * g.C * g.H * g.W * es;
        if (!direct) launch_im2col(g, nc, dt, cx, cols);
        const char *cs = direct ? cx : cols;
        for (int64_t gi = 0; gi < G; gi++) {
          if (acc32)
            vg_cu_gemm_sb_h2f(CUBLAS_OP_N, CUBLAS_OP_N, (int)L, (int)Og, (int)Kc, cs + gi * Kc * L * es, (int)L, rows * L,
                              pw + gi * Og * Kc * es, (int)Kc, 0, acc + gi * Og * L, (int)L, O * L, (int)nc);
          else
            vg_cu_gemm_sb(dt, CUBLAS_OP_N, CUBLAS_OP_N, (int)L, (int)Og, (int)Kc, cs + gi * Kc * L * es, (int)L, rows * L,
                          pw + gi * Og * Kc * es, (int)Kc, 0, prefill ? 1.0f : 0.0f, py + (n0 * O + gi * Og) * L * es,
                          (int)L, O * L, (int)nc);
        }
        VG_CUDA_LAUNCHED("conv2d gemm");
        if (acc32)
          launch_epilogue(dt, py + n0 * O * L * es, acc, true, bias ? vg_cu_contig(bias, &t2) : NULL, O, L, nc * O * L,
                          relu);
      }
      if (!acc32 && ((bias && !prefill) || relu))
        launch_epilogue(dt, py, py, false, bias && !prefill ? vg_cu_contig(bias, &t2) : NULL, O, L, N * O * L, relu);
      break;
    }
    case CV_BWD_DATA: { /* in = {w, gy} */
      const float *pw = (const float *)vg_cu_contig(c->in[0], &t0), *pg = (const float *)vg_cu_contig(c->in[1], &t1);
      float *px = (float *)vg_data(out);
      for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        int64_t nc = N - n0 < chunk ? N - n0 : chunk;
        float *fcols = direct ? px + n0 * g.C * g.H * g.W : (float *)cols;   /* direct: straight into dx */
        for (int64_t gi = 0; gi < G; gi++)
          VG_CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)L, (int)Kc, (int)Og, &one,
                                                    pg + (n0 * O + gi * Og) * L, (int)L, O * L, pw + gi * Og * Kc, (int)Kc,
                                                    0, &zero, fcols + gi * Kc * L, (int)L, rows * L, (int)nc));
        VG_CUDA_LAUNCHED("conv2d_bwd_data gemm");
        if (!direct) launch_col2im(g, nc, VG_F32, fcols, px + n0 * g.C * g.H * g.W);
      }
      break;
    }
    case CV_BWD_WEIGHT: { /* in = {x, gy} */
      const float *px = (const float *)vg_cu_contig(c->in[0], &t0), *pg = (const float *)vg_cu_contig(c->in[1], &t1);
      float *pgw = (float *)vg_data(out);
      for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        int64_t nc = N - n0 < chunk ? N - n0 : chunk;
        const float *fcols = direct ? px + n0 * g.C * g.H * g.W : (const float *)cols;
        if (!direct) launch_im2col(g, nc, VG_F32, px + n0 * g.C * g.H * g.W, (float *)cols);
        for (int64_t k = 0; k < nc; k++)
          for (int64_t gi = 0; gi < G; gi++)
            VG_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)Kc, (int)Og, (int)L, &one,
                                        fcols + k * rows * L + gi * Kc * L, (int)L, pg + ((n0 + k) * O + gi * Og) * L,
                                        (int)L, n0 + k == 0 ? &zero : &one, pgw + gi * Og * Kc, (int)Kc));
        VG_CUDA_LAUNCHED("conv2d_bwd_weight gemm");
      }
      break;
    }
  }
  vg_cuda_free(cols);
  vg_cuda_free(acc);
  vg_cuda_free(t0);
  vg_cuda_free(t1);
  vg_cuda_free(t2);
  vg_cuda_free(tb);
}

static void im2col_op(const vg_opcall *c, bool fold) {
  const vg_tensor *in = c->in[0], *img = fold ? c->out[0] : in;
  const vg_unfold_params &u = c->p.unfold;
  cu_geom g = {img->shape[1], img->shape[2], img->shape[3], 0, 0, u.kh, u.kw, u.dh, u.dw, u.ph, u.pw, u.sh, u.sw};
  g.OH = vg_conv_out_size(g.H, g.kh, g.sh, g.ph, g.dh);
  g.OW = vg_conv_out_size(g.W, g.kw, g.sw, g.pw, g.dw);
  vg_dtype dt = c->out[0]->dtype;
  VG_ASSERT(in->dtype == dt && (dt == VG_F32 || dt == VG_F16));
  void *tmp;
  const void *p = vg_cu_contig(in, &tmp);
  if (fold) launch_col2im(g, img->shape[0], dt, p, vg_data(c->out[0]));
  else launch_im2col(g, img->shape[0], dt, p, vg_data(c->out[0]));
  vg_cuda_free(tmp);
}

/* copies src into the window of out starting at `start` (per dim), as layout.c */
static void copy_into(vg_tensor *out, const int64_t *start, const vg_tensor *src) {
  vg_tensor view = vg_window_view(out, start, src);
  if (vg_numel(&view) == 0) return;
  vg_cu_copy_dd(&view, src);
}

/* conv_bn_fold: one thread per weight element; the first of each output channel also
 * writes the bias. Inputs f32 or f16 each (bit k of half: input k is f16). */
__device__ static float ld_any(const void *p, int64_t i, bool half) {
  return half ? vg_ld((const vg_half *)p + i) : ((const float *)p)[i];
}
template <typename T>
__global__ void k_bn_fold(const void *w, const void *b, const void *g, const void *beta, const void *m, const void *v,
                          unsigned half, float eps, int64_t per, int64_t n, T *wo, T *bo) {
  VG_CU_GRID_LOOP(i, n) {
    const int64_t o = i / per;
    const float s = vg_bn_fold_scale(g ? ld_any(g, o, half & 4) : 1.0f, ld_any(v, o, half & 32), eps);
    vg_st(wo + i, ld_any(w, i, half & 1) * s);
    if (i % per == 0)
      vg_st(bo + o, vg_bn_fold_bias(b ? ld_any(b, o, half & 2) : 0.0f, ld_any(m, o, half & 16), s,
                                    beta ? ld_any(beta, o, half & 8) : 0.0f));
  }
}

static void bn_fold_op(const vg_opcall *c) {
  const vg_tensor *w = c->in[0];
  const int64_t O = w->shape[0], n = vg_numel(w), per = O ? n / O : 0;
  if (n == 0) return;
  const void *p[6];
  unsigned half = 0;
  for (int k = 0; k < 6; k++) {   /* contiguous (the front-end's vg_contiguous) */
    p[k] = c->in[k] ? vg_data(c->in[k]) : NULL;
    if (c->in[k] && c->in[k]->dtype == VG_F16) half |= 1u << k;
  }
  const float eps = (float)c->p.bn_fold.eps;
  if (w->dtype == VG_F16)
    VG_CU_LAUNCH(k_bn_fold<vg_half>, vg_cu_blocks(n, THREADS), THREADS, 0, vg_cuda_stream())(
        p[0], p[1], p[2], p[3], p[4], p[5], half, eps, per, n, (vg_half *)vg_data(c->out[0]), (vg_half *)vg_data(c->out[1]));
  else
    VG_CU_LAUNCH(k_bn_fold<float>, vg_cu_blocks(n, THREADS), THREADS, 0, vg_cuda_stream())(
        p[0], p[1], p[2], p[3], p[4], p[5], half, eps, per, n, (float *)vg_data(c->out[0]), (float *)vg_data(c->out[1]));
  VG_CUDA_LAUNCHED("conv_bn_fold");
}

void vg_cu_conv2d(const vg_opcall *c) { conv_op(c, CV_FWD); }
void vg_cu_conv2d_bwd_data(const vg_opcall *c) { conv_op(c, CV_BWD_DATA); }
void vg_cu_conv2d_bwd_weight(const vg_opcall *c) { conv_op(c, CV_BWD_WEIGHT); }
void vg_cu_conv_bn_fold(const vg_opcall *c) { bn_fold_op(c); }
void vg_cu_unfold(const vg_opcall *c) { im2col_op(c, false); }
void vg_cu_fold(const vg_opcall *c) { im2col_op(c, true); }

void vg_cu_pad(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  const vg_tensor *x = c->in[0];
  if (vg_numel(out) == 0) return;
  vg_opcall fill;
  memset(&fill, 0, sizeof fill);
  fill.op = VG_OP_FILL;
  fill.out[0] = out;
  fill.p.fill.value = c->p.pad.value;
  vg_cu_fill(&fill);
  int64_t start[VG_MAX_DIMS];
  vg_pad_starts(&c->p.pad, x->ndim, start);
  copy_into(out, start, x);
}

void vg_cu_concat(const vg_opcall *c) {
  int d = (int)c->p.dim.dim;
  int64_t start[VG_MAX_DIMS] = {0};
  for (int k = 0; k < c->nin; k++) {
    copy_into(c->out[0], start, c->in[k]);
    start[d] += c->in[k]->shape[d];
  }
}
