/* norm.c — the CPU kernels of the norm family: softmax, log_softmax, layer_norm and their
 * fused backward ops (tensor/ops.def). Element math in tensor/kmath/norm.h (shared with
 * tensor/cuda/norm.cu); rows split across threads with vg_parallel_for, each row computed
 * by one thread in a fixed order, so results do not depend on the thread count.
 *
 * softmax family: along dim d of a contiguous tensor seen as (outer, n, inner). inner == 1:
 * one contiguous row per work item, sums with 8 double accumulators; inner > 1: panels of
 * up to 64 neighbouring columns walked row by row (contiguous inner loops), one double sum
 * per column.
 *
 * layer_norm: every sum is taken exactly as vg_sum takes it (tensor/cpu/reduce.c: 8
 * double accumulators, and its split of runs longer than 64K when there are fewer than 64
 * outputs), so with tensor/kmath/norm.h the results are bit for bit those of the composite the op
 * replaced, forward and backward. */
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/isa.h"
#include "tensor/kmath/norm.h"
#include "tensor/cpu/eltwise_vec.h"
#include "base/threadpool.h"
#include <math.h>
#include <string.h>

/* Loops vectorized with -O2's dynamic cost model (as eltwise_avx2.c): vectorizing never
 * reorders floating-point sums (no -ffast-math; the double sums below keep their explicit
 * accumulators), so the values are those of the scalar loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

/* o[k] = vg_nm_exp_shifted(x[k], m) = exp(x[k] - m) (m = 0: exp(x[k])), vmath.h's vg_expf
 * (the elementwise exp); AVX2 / AVX-512: tensor/cpu/eltwise_vec.h's SIMD copy, built in the
 * elementwise ISA files (GCC leaves the scalar loop unvectorized); the same values on every
 * path. o may be x. */
static void exp_row_base(float *o, const float *x, float m, int64_t n) {
  for (int64_t k = 0; k < n; k++) o[k] = vg_nm_exp_shifted(x[k], m);
}
static void exp_row(float *o, const float *x, float m, int64_t n) {
  switch (vg_cpu_isa()) {
    case VG_ISA_SCALAR: exp_row_base(o, x, m, n); return;
    case VG_ISA_AVX2: vg_row_exp_shifted_avx2(o, x, m, n); return;
    case VG_ISA_AVX512: vg_row_exp_shifted_avx512(o, x, m, n); return;
  }
}

/* NaN-propagating max of a row (vg_nm_max's value); AVX2 / AVX-512: eltwise_vec.h's copy */
static float row_max_base(const float *a, int64_t n) {
  float m = -INFINITY;
  int nan = 0;
  for (int64_t k = 0; k < n; k++) {
    m = a[k] > m ? a[k] : m;
    nan |= a[k] != a[k];
  }
  return nan ? NAN : m;
}
static float row_max(const float *a, int64_t n) {
  switch (vg_cpu_isa()) {
    case VG_ISA_SCALAR: break;
    case VG_ISA_AVX2: return vg_row_row_max_avx2(a, n);
    case VG_ISA_AVX512: return vg_row_row_max_avx512(a, n);
  }
  return row_max_base(a, n);
}

/* T = the sum of EXPR over k in [K0, K0 + N), as reduce.c's reduce_run: 8 double
 * accumulators over blocks of 8, combined as a tree, then the tail in order */
#define VG_RUN8(T, K0, N, EXPR)                                                                              \
  do {                                                                                                        \
    double acc_[8] = {0};                                                                                     \
    int64_t i_ = 0, n_ = (N), k0_ = (K0);                                                                     \
    for (; i_ + 8 <= n_; i_ += 8)                                                                             \
      for (int j_ = 0; j_ < 8; j_++) {                                                                        \
        int64_t k = k0_ + i_ + j_;                                                                            \
        acc_[j_] += (double)(EXPR);                                                                           \
      }                                                                                                       \
    T = ((acc_[0] + acc_[1]) + (acc_[2] + acc_[3])) + ((acc_[4] + acc_[5]) + (acc_[6] + acc_[7]));           \
    for (; i_ < n_; i_++) {                                                                                   \
      int64_t k = k0_ + i_;                                                                                   \
      T += (double)(EXPR);                                                                                    \
    }                                                                                                         \
  } while (0)

/* T = vg_sum of EXPR over k in [0, N) when that sum is one coalesced run and the sum has
 * NOUT outputs (reduce.c's reduce_mask: runs > 64K split into power-of-two pieces when
 * NOUT < 64, the pieces' sums added in order) */
#define VG_RED1(T, N, NOUT, EXPR)                                                                            \
  do {                                                                                                        \
    int64_t piece_ = 1, nn_ = (N);                                                                            \
    if ((NOUT) < 64 && nn_ > (1 << 16))                                                                       \
      for (piece_ = 1 << 16; nn_ % piece_; piece_ >>= 1) {}                                                   \
    if (piece_ > 1) {                                                                                         \
      T = 0.0;                                                                                                \
      for (int64_t p_ = 0; p_ < nn_ / piece_; p_++) {                                                         \
        double s_;                                                                                            \
        VG_RUN8(s_, p_ * piece_, piece_, EXPR);                                                               \
        T += 0.0 + s_;                                                                                        \
      }                                                                                                       \
    } else {                                                                                                  \
      double s_;                                                                                              \
      VG_RUN8(s_, 0, nn_, EXPR);                                                                              \
      T = 0.0 + s_;                                                                                           \
    }                                                                                                         \
  } while (0)

/* ---- softmax, log_softmax and their backward ---- */
#define SM_W 64

/* the four softmax ops (one kernel each, at the end of this section) */
typedef enum { SM_SOFTMAX, SM_LOG_SOFTMAX, SM_SOFTMAX_BWD, SM_LOG_SOFTMAX_BWD } sm_kind;

typedef struct {
  sm_kind op;
  const float *a, *b;   /* forward: a = x; backward: a = g, b = y */
  float *o;
  int64_t outer, n, inner, nblk;
} sm_ctx;

/* one contiguous row of n */
static void sm_row(const sm_ctx *s, const float *a, const float *b, float *o) {
  int64_t n = s->n;
  double t;
  switch (s->op) {
    case SM_SOFTMAX: case SM_LOG_SOFTMAX: {   /* o = exp(x - m) (vg_nm_exp_shifted), summed */
      float m = row_max(a, n);
      exp_row(o, a, m, n);
      VG_RUN8(t, 0, n, o[k]);
      if (s->op == SM_SOFTMAX) {
        float sum = (float)t;
        for (int64_t k = 0; k < n; k++) o[k] = vg_nm_softmax(o[k], sum);
      } else {
        float ls = vg_nm_logsum(t);
        for (int64_t k = 0; k < n; k++) o[k] = vg_nm_log_softmax(a[k], m, ls);
      }
      return;
    }
    case SM_SOFTMAX_BWD: {
      VG_RUN8(t, 0, n, a[k] * b[k]);
      float dot = (float)t;
      for (int64_t k = 0; k < n; k++) o[k] = vg_nm_softmax_bwd(a[k], b[k], dot);
      return;
    }
    case SM_LOG_SOFTMAX_BWD: {   /* o = exp(y), then vg_nm_log_softmax_bwd's g - exp(y) sum(g) */
      VG_RUN8(t, 0, n, a[k]);
      float gs = (float)t;
      exp_row(o, b, 0.0f, n);
      for (int64_t k = 0; k < n; k++) o[k] = vg_nm_log_softmax_bwd_e(a[k], o[k], gs);
      return;
    }
  }
}

void vg_cpu_softmax_row(float *o, const float *x, int64_t n) {
  const sm_ctx s = {.op = SM_SOFTMAX, .n = n};
  sm_row(&s, x, NULL, o);
}

/* w neighbouring columns (stride inner between rows) of n rows */
static void sm_panel(const sm_ctx *s, const float *a, const float *b, float *o, int64_t w) {
  int64_t n = s->n, st = s->inner;
  float m[SM_W], f[SM_W];
  double t[SM_W];
  for (int64_t c = 0; c < w; c++) {
    m[c] = -INFINITY;
    t[c] = 0;
  }
  switch (s->op) {
    case SM_SOFTMAX: case SM_LOG_SOFTMAX:
      for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < w; c++) m[c] = vg_nm_max(m[c], a[i * st + c]);
      for (int64_t i = 0; i < n; i++) {   /* o = exp(x - m) (vg_nm_exp_shifted), summed per column */
        for (int64_t c = 0; c < w; c++) o[i * st + c] = vg_nm_shift(a[i * st + c], m[c]);
        exp_row(o + i * st, o + i * st, 0.0f, w);
        for (int64_t c = 0; c < w; c++) t[c] += o[i * st + c];
      }
      break;
    case SM_SOFTMAX_BWD:
      for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < w; c++) t[c] += (double)(a[i * st + c] * b[i * st + c]);
      break;
    case SM_LOG_SOFTMAX_BWD:   /* and o = exp(y) */
      for (int64_t i = 0; i < n; i++) {
        for (int64_t c = 0; c < w; c++) t[c] += a[i * st + c];
        exp_row(o + i * st, b + i * st, 0.0f, w);
      }
      break;
  }
  for (int64_t c = 0; c < w; c++) f[c] = s->op == SM_LOG_SOFTMAX ? vg_nm_logsum(t[c]) : (float)t[c];
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < w; c++) {
      int64_t k = i * st + c;
      switch (s->op) {
        case SM_SOFTMAX: o[k] = vg_nm_softmax(o[k], f[c]); break;
        case SM_LOG_SOFTMAX: o[k] = vg_nm_log_softmax(a[k], m[c], f[c]); break;
        case SM_SOFTMAX_BWD: o[k] = vg_nm_softmax_bwd(a[k], b[k], f[c]); break;
        case SM_LOG_SOFTMAX_BWD: o[k] = vg_nm_log_softmax_bwd_e(a[k], o[k], f[c]); break;
      }
    }
}

static void sm_range(void *p, int64_t u0, int64_t u1, int tid) {
  (void)tid;
  const sm_ctx *s = p;
  for (int64_t u = u0; u < u1; u++) {
    int64_t o = u / s->nblk, j0 = (u % s->nblk) * SM_W;
    int64_t off = o * s->n * s->inner + j0;
    const float *b = s->b ? s->b + off : NULL;
    if (s->inner == 1) sm_row(s, s->a + off, b, s->o + off);
    else sm_panel(s, s->a + off, b, s->o + off, s->inner - j0 < SM_W ? s->inner - j0 : SM_W);
  }
}

static void softmax_family(const vg_opcall *c, sm_kind kind) {
  const vg_tensor *x = c->in[0];
  int d = (int)c->p.dim.dim;
  sm_ctx s = {.op = kind, .a = vg_f32(x), .b = c->nin > 1 ? vg_f32(c->in[1]) : NULL, .o = vg_f32(c->out[0])};
  s.outer = 1;
  s.inner = 1;
  for (int i = 0; i < d; i++) s.outer *= x->shape[i];
  for (int i = d + 1; i < x->ndim; i++) s.inner *= x->shape[i];
  s.n = x->ndim ? x->shape[d] : 1;
  if (s.outer * s.n * s.inner == 0) return;
  s.nblk = (s.inner + SM_W - 1) / SM_W;
  int64_t units = s.outer * s.nblk, per = s.n * (s.inner < SM_W ? s.inner : SM_W);
  int64_t grain = (1 << 14) / (per ? per : 1);
  vg_parallel_for(units, grain < 1 ? 1 : grain, sm_range, &s);
}

void vg_cpu_softmax(const vg_opcall *c) { softmax_family(c, SM_SOFTMAX); }
void vg_cpu_log_softmax(const vg_opcall *c) { softmax_family(c, SM_LOG_SOFTMAX); }
void vg_cpu_softmax_bwd(const vg_opcall *c) { softmax_family(c, SM_SOFTMAX_BWD); }
void vg_cpu_log_softmax_bwd(const vg_opcall *c) { softmax_family(c, SM_LOG_SOFTMAX_BWD); }

/* ---- layer_norm ---- */
typedef struct {
  const float *x, *g, *w, *b;
  float *y, *mean, *rstd, *gx, *gw, *gb;
  int64_t R, N;
  float eps, inv;
} ln_ctx;

static void ln_fwd_rows(void *p, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  const ln_ctx *l = p;
  int64_t N = l->N;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = l->x + r * N;
    float *y = l->y + r * N;
    double s1, s2;
    VG_RED1(s1, N, l->R, x[k]);
    float mean = vg_nm_mean(s1, l->inv);
    VG_RED1(s2, N, l->R, vg_nm_sq_dev(x[k], mean));
    float rstd = vg_nm_rstd(vg_nm_mean(s2, l->inv), l->eps);
    for (int64_t k = 0; k < N; k++) y[k] = vg_nm_ln_y(x[k], mean, rstd, l->w, l->b, k);
    l->mean[r] = mean;
    l->rstd[r] = rstd;
  }
}

static void ln_bwd_rows(void *p, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  const ln_ctx *l = p;
  int64_t N = l->N;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = l->x + r * N, *g = l->g + r * N;
    float *gx = l->gx + r * N, mean = l->mean[r], rstd = l->rstd[r];
    double t;
    float gr, gm;
    if (N > 1) {
      VG_RED1(t, N, l->R, vg_nm_ln_gr_term(g[k], l->w, k, x[k], mean));
      gr = (float)t;
    } else gr = vg_nm_ln_gr_term(g[0], l->w, 0, x[0], mean);
    float gs2 = vg_nm_ln_gs2(gr, rstd, l->inv);
    for (int64_t k = 0; k < N; k++) gx[k] = vg_nm_ln_gd(vg_nm_ln_gyh(g[k], l->w, k), x[k] - mean, rstd, gs2);
    if (N > 1) {
      VG_RED1(t, N, l->R, -gx[k]);
      gm = (float)t;
    } else gm = -gx[0];
    float gs1 = vg_nm_mean((double)gm, l->inv);
    for (int64_t k = 0; k < N; k++) gx[k] = gx[k] + gs1;
  }
}

/* gw, gb: sums over the rows of g yh and of g, as vg_sum over the leading dims */
#define LN_CB 64
static void ln_bwd_cols(void *p, int64_t b0, int64_t b1, int tid) {
  (void)tid;
  const ln_ctx *l = p;
  int64_t R = l->R, N = l->N;
  for (int64_t blk = b0; blk < b1; blk++) {
    int64_t c0 = blk * LN_CB, w = N - c0 < LN_CB ? N - c0 : LN_CB;
    for (int which = 0; which < 2; which++) {
      float *out = which ? l->gb : l->gw;
      if (!out) continue;
#define LN_V(i, c) (which ? l->g[(i) * N + (c)] : vg_nm_ln_gw_term(l->g[(i) * N + (c)], l->x[(i) * N + (c)], l->mean[i], l->rstd[i]))
      if (N < 64 && R > (1 << 16)) {   /* reduce.c splits these runs: its order, column by column */
        for (int64_t c = c0; c < c0 + w; c++) {
          double t;
          VG_RED1(t, R, N, LN_V(k, c));
          out[c] = (float)t;
        }
        continue;
      }
      double acc[8][LN_CB], t[LN_CB];
      memset(acc, 0, sizeof acc);
      int64_t i = 0;
      for (; i + 8 <= R; i += 8)
        for (int j = 0; j < 8; j++)
          for (int64_t c = 0; c < w; c++) acc[j][c] += (double)LN_V(i + j, c0 + c);
      for (int64_t c = 0; c < w; c++)
        t[c] = ((acc[0][c] + acc[1][c]) + (acc[2][c] + acc[3][c])) + ((acc[4][c] + acc[5][c]) + (acc[6][c] + acc[7][c]));
      for (; i < R; i++)
        for (int64_t c = 0; c < w; c++) t[c] += (double)LN_V(i, c0 + c);
      for (int64_t c = 0; c < w; c++) out[c0 + c] = (float)(0.0 + t[c]);
#undef LN_V
    }
  }
}

/* layer_norm (bwd false) and layer_norm_bwd (true) */
static void layer_norm(const vg_opcall *c, bool bwd) {
  const vg_layer_norm_params *p = &c->p.layer_norm;
  const vg_tensor *x = c->in[bwd ? 1 : 0], *w = c->in[bwd ? 3 : 1], *b = bwd ? NULL : c->in[2];
  ln_ctx l = {.x = vg_f32(x), .w = w ? vg_f32(w) : NULL, .b = b ? vg_f32(b) : NULL, .eps = (float)p->eps};
  l.N = 1;
  for (int i = x->ndim - (int)p->nnorm; i < x->ndim; i++) l.N *= x->shape[i];
  l.R = l.N ? vg_numel(x) / l.N : 0;
  l.inv = l.N ? 1.0f / (float)l.N : NAN;
  const vg_tensor *stats = bwd ? c->in[2] : c->out[1];
  l.mean = vg_f32(stats);
  l.rstd = l.mean + l.R;
  int64_t grain = (1 << 15) / (l.N ? l.N : 1);
  if (grain < 1) grain = 1;
  if (!bwd) {
    l.y = vg_f32(c->out[0]);
    if (l.N == 0)
      for (int64_t r = 0; r < l.R; r++) l.mean[r] = l.rstd[r] = NAN;
    else vg_parallel_for(l.R, grain, ln_fwd_rows, &l);
    return;
  }
  l.g = vg_f32(c->in[0]);
  if (l.N == 0 || l.R == 0) {
    if (c->out[1]) memset(vg_f32(c->out[1]), 0, sizeof(float) * 2 * (size_t)l.N);
    return;
  }
  if (p->grad_x) {
    l.gx = vg_f32(c->out[0]);
    vg_parallel_for(l.R, grain, ln_bwd_rows, &l);
  }
  if (!p->grad_w && !p->grad_b) return;
  l.gw = p->grad_w ? vg_f32(c->out[1]) : NULL;
  l.gb = p->grad_b ? vg_f32(c->out[1]) + l.N : NULL;
  if (x->ndim == p->nnorm) {   /* no leading dims: the composite's grads were g yh and g, unsummed */
    for (int64_t k = 0; k < l.N; k++) {
      if (l.gw) l.gw[k] = vg_nm_ln_gw_term(l.g[k], l.x[k], l.mean[0], l.rstd[0]);
      if (l.gb) l.gb[k] = l.g[k];
    }
    return;
  }
  int64_t nb = (l.N + LN_CB - 1) / LN_CB, cg = (1 << 15) / (LN_CB * l.R);
  vg_parallel_for(nb, cg < 1 ? 1 : cg, ln_bwd_cols, &l);
}

void vg_cpu_layer_norm(const vg_opcall *c) { layer_norm(c, false); }
void vg_cpu_layer_norm_bwd(const vg_opcall *c) { layer_norm(c, true); }
