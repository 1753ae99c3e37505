/* test_ops_spatial.c — pooling (avg, max with indices, adaptive 2-d/1-d), bilinear
 * interpolation (both align_corners), unfold/fold, pad, concat/stack and gather,
 * scatter_add, index_select, index_add against straightforward references written
 * here (small and odd shapes, 1x1, non-contiguous inputs made with vg_permute /
 * vg_slice), a few values printed by PyTorch 1.13, bit-identical results for 1 and 5
 * threads, backward through non-contiguous output grads, error messages, and one
 * gradcheck row per differentiable op (GRAD_ROWS, to be merged into test_gradcheck).
 *
 * Tolerances: forward values |got - want| <= 1e-5 + 1e-5*|want| (references in
 * double; kernels in f32). Gradcheck: eps = 1e-3 on f32 inputs in [-1, 1], max
 * relative error (vg_gradcheck's measure) <= 1e-2. */
#include "tests/vgtest.h"
#include "tensor/tensor.h"
#include "autograd/autograd.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static int64_t irand(int64_t n) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (int64_t)((rng >> 33) % (uint64_t)n);
}

static int64_t numel_of(int nd, const int64_t *s) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= s[i];
  return n;
}

/* random f32 tensor in the current scope */
static vg_tensor *randt(int nd, const int64_t *shape) {
  vg_tensor *t = vg_empty(VG_F32, nd, shape);
  float *p = vg_f32(t);
  for (int64_t i = 0; i < vg_numel(t); i++) p[i] = frand();
  return t;
}

/* random heap f32 tensor that requires grad (for gradcheck) */
static vg_tensor *leaf(int nd, const int64_t *shape) {
  vg_tensor *t = vg_tensor_new(VG_F32, nd, shape);
  float *p = vg_f32(t);
  for (int64_t i = 0; i < vg_numel(t); i++) p[i] = frand();
  vg_requires_grad_(t, true);
  return t;
}

static float *host(const vg_tensor *t) {
  int64_t n = vg_numel(t);
  float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
  vg_to_host(t, VG_F32, p);
  return p;
}

/* a non-contiguous tensor with the values of a fresh random (d0, d1, d2, d3) tensor:
 * made as (d0, d1, d3, d2) and transposed */
static vg_tensor *randt_nc4(const int64_t *s) {
  int64_t t[4] = {s[0], s[1], s[3], s[2]};
  return vg_transpose(randt(4, t), 2, 3);
}

static int check_vals(const vg_tensor *got, const float *want, int64_t n, double tol, const char *what) {
  if (!got) return VG_CHECK(0, "%s: NULL (%s)", what, vg_last_error());
  if (vg_numel(got) != n) return VG_CHECK(0, "%s: %lld elements, want %lld", what, (long long)vg_numel(got), (long long)n);
  float *g = host(got);
  int ok = VG_CHECK_CLOSE(g, want, n, tol, tol, what);
  free(g);
  return ok;
}

static int check_shape(const vg_tensor *t, int nd, const int64_t *s, const char *what) {
  bool ok = t && t->ndim == nd;
  for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == s[i];
  char b[128];
  return VG_CHECK(ok, "%s: shape %s", what, t ? vg_shape_str(t, b, sizeof b) : "NULL");
}

/* ============================== pooling ============================== */
typedef struct {
  int64_t n, c, h, w;
  int kh, kw, sh, sw, ph, pw;
  bool ceil_mode, include_pad, noncontig;
} pool_case;

static const pool_case POOL_CASES[] = {
  {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, false, true, false},   /* 1x1 */
  {2, 3, 5, 5, 2, 2, 2, 2, 1, 1, true, true, false},
  {2, 3, 5, 5, 2, 2, 2, 2, 1, 1, true, false, true},
  {1, 2, 6, 6, 3, 3, 2, 2, 1, 1, true, true, false},    /* ceil window beyond the padded input */
  {1, 2, 6, 6, 3, 3, 2, 2, 1, 1, true, false, false},
  {2, 2, 7, 6, 3, 2, 2, 1, 1, 1, false, false, true},
  {1, 3, 5, 7, 3, 3, 3, 3, 0, 0, true, true, false},    /* partial last window */
  {1, 1, 4, 9, 4, 3, 1, 4, 2, 1, false, true, true},
  {3, 1, 2, 3, 2, 3, 0, 0, 0, 1, true, false, false},   /* window = input */
  {1, 2, 9, 8, 5, 4, 3, 2, 2, 2, true, true, true},
  /* long rows (the row-run interior path, runs of 256 columns + a rest): the ResNet stem's
   * max pool, the PDN's avg pool, a stride-1 window */
  {1, 2, 5, 530, 3, 3, 2, 2, 1, 1, false, true, false},
  {2, 1, 6, 301, 2, 2, 2, 2, 1, 1, false, true, false},
  {1, 1, 4, 300, 2, 2, 2, 2, 1, 1, false, false, true},
  {1, 1, 3, 270, 3, 2, 1, 1, 1, 0, true, false, false},
};

static int64_t ref_pool_out(int64_t in, int k, int s, int p, bool ceil_mode) {
  double v = (double)(in + 2 * p - k) / s;
  int64_t o = (int64_t)(ceil_mode ? ceil(v) : floor(v)) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) o--;   /* last window must start in input or left pad */
  return o;
}

/* avg (divisor: window positions inside the padded input, or inside the input) and
 * max (first maximum, flat index h*W + w) over every plane */
static void ref_pool(const float *x, int64_t planes, int64_t H, int64_t W, const pool_case *pc, int sh, int sw,
                     int64_t OH, int64_t OW, float *avg, float *mx, int64_t *arg) {
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        double sum = 0, best = -INFINITY;
        int64_t cnt = 0, bi = -1;
        for (int64_t h = oh * sh - pc->ph; h < oh * sh - pc->ph + pc->kh; h++)
          for (int64_t w = ow * sw - pc->pw; w < ow * sw - pc->pw + pc->kw; w++) {
            bool inside = h >= 0 && h < H && w >= 0 && w < W;
            bool inpad = h >= -pc->ph && h < H + pc->ph && w >= -pc->pw && w < W + pc->pw;
            if (pc->include_pad ? inpad : inside) cnt++;
            if (!inside) continue;
            double v = x[(p * H + h) * W + w];
            sum += v;
            if (v > best) {
              best = v;
              bi = h * W + w;
            }
          }
        int64_t o = (p * OH + oh) * OW + ow;
        avg[o] = cnt ? (float)(sum / (double)cnt) : 0.0f;
        mx[o] = (float)best;
        arg[o] = bi;
      }
}

static void test_pool(void) {
  char what[160];
  for (size_t k = 0; k < sizeof POOL_CASES / sizeof *POOL_CASES; k++) {
    const pool_case *pc = &POOL_CASES[k];
    vg_scope_begin();
    int64_t s4[4] = {pc->n, pc->c, pc->h, pc->w};
    vg_tensor *x = pc->noncontig ? randt_nc4(s4) : randt(4, s4);
    int sh = pc->sh ? pc->sh : pc->kh, sw = pc->sw ? pc->sw : pc->kw;
    int64_t OH = ref_pool_out(pc->h, pc->kh, sh, pc->ph, pc->ceil_mode);
    int64_t OW = ref_pool_out(pc->w, pc->kw, sw, pc->pw, pc->ceil_mode);
    int64_t planes = pc->n * pc->c, no = planes * OH * OW;
    float *xv = host(x), *avg = malloc(sizeof(float) * (size_t)no), *mx = malloc(sizeof(float) * (size_t)no);
    int64_t *arg = malloc(sizeof(int64_t) * (size_t)no), *garg = malloc(sizeof(int64_t) * (size_t)no);
    ref_pool(xv, planes, pc->h, pc->w, pc, sh, sw, OH, OW, avg, mx, arg);
    vg_pool2d_opts o = {pc->kh, pc->kw, pc->sh, pc->sw, pc->ph, pc->pw, pc->ceil_mode, pc->include_pad};
    snprintf(what, sizeof what, "pool case %zu: (%lld,%lld,%lld,%lld) k%dx%d s%dx%d p%dx%d ceil=%d cip=%d nc=%d", k,
             (long long)pc->n, (long long)pc->c, (long long)pc->h, (long long)pc->w, pc->kh, pc->kw, sh, sw, pc->ph,
             pc->pw, pc->ceil_mode, pc->include_pad, pc->noncontig);
    vg_tensor *ya = vg_avg_pool2d(x, o);
    int64_t want_shape[4] = {pc->n, pc->c, OH, OW};
    check_shape(ya, 4, want_shape, what);
    char w2[200];
    snprintf(w2, sizeof w2, "avg_pool2d %s", what);
    check_vals(ya, avg, no, 1e-5, w2);
    vg_tensor *idx = NULL, *ym = vg_max_pool2d(x, o, &idx);
    snprintf(w2, sizeof w2, "max_pool2d %s", what);
    check_vals(ym, mx, no, 1e-6, w2);
    bool iok = idx && idx->dtype == VG_I64 && vg_numel(idx) == no;
    if (iok) {
      vg_to_host(idx, VG_I64, garg);
      for (int64_t i = 0; i < no; i++) iok = iok && garg[i] == arg[i];
    }
    VG_CHECK(iok, "max_pool2d indices %s", what);
    /* (C, H, W) input: the same planes */
    if (pc->n == 1) {
      vg_tensor *y3 = vg_avg_pool2d(vg_squeeze(x, 0), o);
      snprintf(w2, sizeof w2, "avg_pool2d 3-d input %s", what);
      check_shape(y3, 3, want_shape + 1, w2);
      check_vals(y3, avg, no, 1e-5, w2);
    }
    free(xv);
    free(avg);
    free(mx);
    free(arg);
    free(garg);
    vg_scope_end();
  }

  /* values printed by torch 1.13 (x = arange) */
  vg_scope_begin();
  vg_tensor *x25 = vg_reshape(vg_arange(0, 25, 1, VG_F32), 4, (int64_t[]){1, 1, 5, 5});
  static const float t25[] = {0, 0.75f, 1.75f, 3.75f, 9, 11, 8.75f, 19, 21};
  check_vals(vg_avg_pool2d(x25, (vg_pool2d_opts){2, 2, 2, 2, 1, 1, true, true}), t25, 9, 1e-6,
             "avg_pool2d 5x5 k2 s2 p1 ceil cip vs torch");
  vg_tensor *x36 = vg_reshape(vg_arange(0, 36, 1, VG_F32), 4, (int64_t[]){1, 1, 6, 6});
  static const float t36a[] = {1.5555555820465088f, 3.3333332538604736f, 4.666666507720947f, 2.6666667461395264f,
                               8.333333015441895f, 14.0f, 16.0f, 8.5f, 16.33333396911621f, 26.0f, 28.0f, 14.5f,
                               10.166666984558105f, 16.0f, 17.0f, 8.75f};
  static const float t36b[] = {3.5f, 5.0f, 7.0f, 8.0f, 12.5f, 14.0f, 16.0f, 17.0f, 24.5f, 26.0f, 28.0f, 29.0f,
                               30.5f, 32.0f, 34.0f, 35.0f};
  check_vals(vg_avg_pool2d(x36, (vg_pool2d_opts){3, 3, 2, 2, 1, 1, true, true}), t36a, 16, 1e-6,
             "avg_pool2d 6x6 k3 s2 p1 ceil cip vs torch");
  check_vals(vg_avg_pool2d(x36, (vg_pool2d_opts){3, 3, 2, 2, 1, 1, true, false}), t36b, 16, 1e-6,
             "avg_pool2d 6x6 k3 s2 p1 ceil no-cip vs torch");
  vg_scope_end();
}

static void ref_adaptive(const float *x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, float *y) {
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t h0 = (int64_t)floor((double)oh * H / OH), h1 = (int64_t)ceil((double)(oh + 1) * H / OH);
        int64_t w0 = (int64_t)floor((double)ow * W / OW), w1 = (int64_t)ceil((double)(ow + 1) * W / OW);
        double s = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) s += x[(p * H + h) * W + w];
        y[(p * OH + oh) * OW + ow] = (float)(s / (double)((h1 - h0) * (w1 - w0)));
      }
}

static void test_adaptive(void) {
  static const int64_t cases[][6] = {
    /* n, c, h, w, oh, ow */
    {1, 1, 1, 1, 1, 1}, {2, 3, 5, 7, 3, 2}, {1, 2, 4, 4, 4, 4}, {2, 1, 3, 3, 5, 4},
    {1, 1, 1, 1, 2, 3}, {2, 2, 6, 6, 1, 1}, {1, 3, 10, 7, 3, 5},
  };
  char what[128];
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    const int64_t *cs = cases[k];
    vg_scope_begin();
    vg_tensor *x = (k & 1) ? randt_nc4(cs) : randt(4, cs);
    int64_t planes = cs[0] * cs[1], no = planes * cs[4] * cs[5];
    float *xv = host(x), *want = malloc(sizeof(float) * (size_t)no);
    ref_adaptive(xv, planes, cs[2], cs[3], cs[4], cs[5], want);
    snprintf(what, sizeof what, "adaptive_avg_pool2d (%lld,%lld,%lld,%lld) -> %lldx%lld%s", (long long)cs[0],
             (long long)cs[1], (long long)cs[2], (long long)cs[3], (long long)cs[4], (long long)cs[5],
             (k & 1) ? " non-contiguous" : "");
    vg_tensor *y = vg_adaptive_avg_pool2d(x, cs[4], cs[5]);
    check_shape(y, 4, (int64_t[]){cs[0], cs[1], cs[4], cs[5]}, what);
    check_vals(y, want, no, 1e-5, what);
    free(xv);
    free(want);
    vg_scope_end();
  }
  vg_scope_begin();
  vg_tensor *x35 = vg_reshape(vg_arange(0, 35, 1, VG_F32), 4, (int64_t[]){1, 1, 5, 7});
  static const float t35[] = {5, 8, 15.5f, 18.5f, 26, 29};
  check_vals(vg_adaptive_avg_pool2d(x35, 3, 2), t35, 6, 1e-6, "adaptive_avg_pool2d 5x7 -> 3x2 vs torch");

  /* 1-d: (N, C, L) and (C, L); a sliced (non-contiguous) input */
  vg_tensor *x = vg_slice(randt(3, (int64_t[]){2, 3, 15}), 2, 1, 15, 2);   /* (2, 3, 7) */
  float *xv = host(x), want[2 * 3 * 3];
  ref_adaptive(xv, 6, 1, 7, 1, 3, want);
  vg_tensor *y = vg_adaptive_avg_pool1d(x, 3);
  check_shape(y, 3, (int64_t[]){2, 3, 3}, "adaptive_avg_pool1d (2,3,7)->3 shape");
  check_vals(y, want, 18, 1e-5, "adaptive_avg_pool1d (2,3,7)->3 sliced input");
  free(xv);
  vg_tensor *x2 = randt(2, (int64_t[]){3, 5});
  xv = host(x2);
  ref_adaptive(xv, 3, 1, 5, 1, 2, want);
  y = vg_adaptive_avg_pool1d(x2, 2);
  check_shape(y, 2, (int64_t[]){3, 2}, "adaptive_avg_pool1d (3,5)->2 shape");
  check_vals(y, want, 6, 1e-5, "adaptive_avg_pool1d (3,5)->2");
  free(xv);
  vg_scope_end();

  /* outside any scope: a heap result the caller frees (ASan checks the intermediates) */
  vg_tensor *h = vg_tensor_new(VG_F32, 2, (int64_t[]){1, 4});
  for (int i = 0; i < 4; i++) vg_f32(h)[i] = (float)i;
  vg_tensor *r = vg_adaptive_avg_pool1d(h, 2);
  float wr[2] = {0.5f, 2.5f};
  check_vals(r, wr, 2, 1e-6, "adaptive_avg_pool1d outside a scope");
  VG_CHECK(r && (r->flags & VG_TF_HEAP) && vg_is_contiguous(r), "adaptive_avg_pool1d outside a scope: heap result");
  vg_tensor_free(r);
  vg_tensor_free(h);
}

/* ============================== interpolation ============================== */
static double ref_src(int64_t o, int64_t in, int64_t out, bool align) {
  if (align) return out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0.0;
  double s = ((double)o + 0.5) * (double)in / (double)out - 0.5;
  return s < 0 ? 0 : s;
}

static void ref_bilinear(const float *x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, bool align,
                         float *y) {
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        double sh = ref_src(oh, H, OH, align), sw = ref_src(ow, W, OW, align);
        int64_t h0 = (int64_t)floor(sh), w0 = (int64_t)floor(sw);
        if (h0 > H - 1) h0 = H - 1;
        if (w0 > W - 1) w0 = W - 1;
        int64_t h1 = h0 + 1 < H ? h0 + 1 : H - 1, w1 = w0 + 1 < W ? w0 + 1 : W - 1;
        double lh = sh - (double)h0, lw = sw - (double)w0;
        const float *q = x + p * H * W;
        y[(p * OH + oh) * OW + ow] =
            (float)((1 - lh) * ((1 - lw) * q[h0 * W + w0] + lw * q[h0 * W + w1]) +
                    lh * ((1 - lw) * q[h1 * W + w0] + lw * q[h1 * W + w1]));
      }
}

static void test_interp(void) {
  static const int64_t cases[][6] = {
    {1, 1, 3, 4, 5, 7}, {2, 2, 4, 4, 2, 3}, {1, 1, 1, 1, 3, 3}, {1, 2, 5, 5, 1, 1},
    {2, 1, 2, 3, 2, 3}, {1, 3, 3, 5, 6, 10}, {1, 1, 7, 3, 4, 8}, {2, 2, 1, 5, 3, 1},
  };
  char what[160];
  for (int align = 0; align < 2; align++)
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
      const int64_t *cs = cases[k];
      vg_scope_begin();
      bool nc = (k + align) & 1;
      vg_tensor *x = nc ? randt_nc4(cs) : randt(4, cs);
      int64_t planes = cs[0] * cs[1], no = planes * cs[4] * cs[5];
      float *xv = host(x), *want = malloc(sizeof(float) * (size_t)no);
      ref_bilinear(xv, planes, cs[2], cs[3], cs[4], cs[5], align, want);
      snprintf(what, sizeof what, "interpolate_bilinear (%lld,%lld,%lld,%lld) -> %lldx%lld align_corners=%d%s",
               (long long)cs[0], (long long)cs[1], (long long)cs[2], (long long)cs[3], (long long)cs[4],
               (long long)cs[5], align, nc ? " non-contiguous" : "");
      vg_tensor *y = vg_interpolate_bilinear(x, cs[4], cs[5], align);
      check_shape(y, 4, (int64_t[]){cs[0], cs[1], cs[4], cs[5]}, what);
      check_vals(y, want, no, 1e-5, what);
      free(xv);
      free(want);
      vg_scope_end();
    }
  vg_scope_begin();
  vg_tensor *x = vg_from_data(VG_F32, 4, (int64_t[]){1, 1, 2, 2}, (float[]){1, 2, 3, 5});
  static const float ta[] = {1.0f, 1.5f, 2.0f, 2.0f, 2.75f, 3.5f, 3.0f, 4.0f, 4.999999523162842f};
  static const float tb[] = {1.0f, 1.3333332538604736f, 1.6666667461395264f, 2.0f, 2.0f, 2.5f,
                             3.0f, 3.5f, 3.0f, 3.6666665077209473f, 4.333333492279053f, 5.0f};
  check_vals(vg_interpolate_bilinear(x, 3, 3, false), ta, 9, 1e-6, "interpolate 2x2 -> 3x3 vs torch");
  check_vals(vg_interpolate_bilinear(x, 3, 4, true), tb, 12, 1e-6, "interpolate 2x2 -> 3x4 align_corners vs torch");
  vg_scope_end();
}

/* ============================== unfold / fold ============================== */
typedef struct {
  int64_t n, c, h, w;
  int kh, kw, dh, dw, ph, pw, sh, sw;
} im2col_case;

static const im2col_case IM2COL_CASES[] = {
  {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},
  {2, 3, 5, 6, 2, 3, 1, 2, 1, 0, 2, 1},
  {1, 2, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1},
  {2, 1, 7, 5, 3, 2, 2, 1, 2, 1, 3, 2},
  {1, 3, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1},
};

static int64_t blocks(int64_t in, int k, int d, int p, int s) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

static void test_unfold_fold(void) {
  char what[160];
  for (size_t k = 0; k < sizeof IM2COL_CASES / sizeof *IM2COL_CASES; k++) {
    const im2col_case *g = &IM2COL_CASES[k];
    vg_scope_begin();
    int64_t s4[4] = {g->n, g->c, g->h, g->w};
    vg_tensor *x = (k & 1) ? randt_nc4(s4) : randt(4, s4);
    int64_t bh = blocks(g->h, g->kh, g->dh, g->ph, g->sh), bw = blocks(g->w, g->kw, g->dw, g->pw, g->sw);
    int64_t L = bh * bw, R = g->c * g->kh * g->kw, no = g->n * R * L, ni = g->n * g->c * g->h * g->w;
    float *xv = host(x), *want = calloc((size_t)no, sizeof(float));
    /* unfold: cols[n, (c*kh + i)*kw + j, oh*bw + ow] = x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] */
    for (int64_t n = 0; n < g->n; n++)
      for (int64_t c = 0; c < g->c; c++)
        for (int i = 0; i < g->kh; i++)
          for (int j = 0; j < g->kw; j++)
            for (int64_t oh = 0; oh < bh; oh++)
              for (int64_t ow = 0; ow < bw; ow++) {
                int64_t h = oh * g->sh - g->ph + i * g->dh, w = ow * g->sw - g->pw + j * g->dw;
                if (h >= 0 && h < g->h && w >= 0 && w < g->w)
                  want[(n * R + (c * g->kh + i) * g->kw + j) * L + oh * bw + ow] = xv[((n * g->c + c) * g->h + h) * g->w + w];
              }
    snprintf(what, sizeof what, "unfold case %zu (%lld,%lld,%lld,%lld) k%dx%d d%dx%d p%dx%d s%dx%d%s", k,
             (long long)g->n, (long long)g->c, (long long)g->h, (long long)g->w, g->kh, g->kw, g->dh, g->dw, g->ph,
             g->pw, g->sh, g->sw, (k & 1) ? " non-contiguous" : "");
    vg_tensor *cols = vg_unfold(x, g->kh, g->kw, g->dh, g->dw, g->ph, g->pw, g->sh, g->sw);
    check_shape(cols, 3, (int64_t[]){g->n, R, L}, what);
    check_vals(cols, want, no, 0, what);
    /* fold of random cols (transposed: non-contiguous) */
    vg_tensor *cr = vg_transpose(randt(3, (int64_t[]){g->n, L, R}), 1, 2);
    float *cv = host(cr), *img = calloc((size_t)ni, sizeof(float));
    for (int64_t n = 0; n < g->n; n++)
      for (int64_t c = 0; c < g->c; c++)
        for (int i = 0; i < g->kh; i++)
          for (int j = 0; j < g->kw; j++)
            for (int64_t oh = 0; oh < bh; oh++)
              for (int64_t ow = 0; ow < bw; ow++) {
                int64_t h = oh * g->sh - g->ph + i * g->dh, w = ow * g->sw - g->pw + j * g->dw;
                if (h >= 0 && h < g->h && w >= 0 && w < g->w)
                  img[((n * g->c + c) * g->h + h) * g->w + w] += cv[(n * R + (c * g->kh + i) * g->kw + j) * L + oh * bw + ow];
              }
    snprintf(what, sizeof what, "fold case %zu -> (%lld,%lld,%lld,%lld), transposed input", k, (long long)g->n,
             (long long)g->c, (long long)g->h, (long long)g->w);
    vg_tensor *f = vg_fold(cr, g->h, g->w, g->kh, g->kw, g->dh, g->dw, g->ph, g->pw, g->sh, g->sw);
    check_shape(f, 4, s4, what);
    check_vals(f, img, ni, 1e-5, what);
    free(xv);
    free(want);
    free(cv);
    free(img);
    vg_scope_end();
  }
}

/* ============================== pad, concat, stack ============================== */
static void test_pad(void) {
  vg_scope_begin();
  /* (2, 3, 4) transposed from (2, 4, 3); pads: last dim (1, 2), dim 1 (0, 2), dim 0 (1, 1) */
  vg_tensor *x = vg_transpose(randt(3, (int64_t[]){2, 4, 3}), 1, 2);
  float *xv = host(x);
  const int64_t pads[6] = {1, 2, 0, 2, 1, 1};
  for (int np = 1; np <= 3; np++) {
    int64_t s[3] = {2, 3, 4}, lo[3] = {0, 0, 0};
    for (int p = 0; p < np; p++) {
      s[2 - p] += pads[2 * p] + pads[2 * p + 1];
      lo[2 - p] = pads[2 * p];
    }
    int64_t n = s[0] * s[1] * s[2];
    float *want = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < s[0]; i++)
      for (int64_t j = 0; j < s[1]; j++)
        for (int64_t k = 0; k < s[2]; k++) {
          int64_t a = i - lo[0], b = j - lo[1], c = k - lo[2];
          bool in = a >= 0 && a < 2 && b >= 0 && b < 3 && c >= 0 && c < 4;
          want[(i * s[1] + j) * s[2] + k] = in ? xv[(a * 3 + b) * 4 + c] : 0.5f;
        }
    char what[96];
    snprintf(what, sizeof what, "pad %d pairs of a transposed (2,3,4) with 0.5", np);
    vg_tensor *y = vg_pad(x, np, pads, 0.5f);
    check_shape(y, 3, s, what);
    check_vals(y, want, n, 0, what);
    free(want);
  }
  free(xv);
  /* i64 data, and the zero pad */
  vg_tensor *xi = vg_from_data(VG_I64, 1, (int64_t[]){3}, (int64_t[]){7, -8, 9});
  vg_tensor *yi = vg_pad(xi, 1, (int64_t[]){2, 1}, 3);
  int64_t gi[6] = {0}, wi[6] = {3, 3, 7, -8, 9, 3};
  if (yi) vg_to_host(yi, VG_I64, gi);
  VG_CHECK(yi && yi->dtype == VG_I64 && !memcmp(gi, wi, sizeof gi), "pad i64 (3,) by (2, 1) with 3");
  vg_tensor *z = vg_pad(x, 0, NULL, 1);
  float *zv = z ? host(z) : NULL, *xv2 = host(x);
  VG_CHECK(z && zv && !memcmp(zv, xv2, sizeof(float) * 24), "pad with no pairs copies");
  free(zv);
  free(xv2);
  vg_scope_end();
}

static void test_concat_stack(void) {
  vg_scope_begin();
  vg_tensor *a = randt(3, (int64_t[]){2, 3, 4});
  vg_tensor *b = vg_slice(randt(3, (int64_t[]){2, 3, 4}), 1, 1, 3, 2);       /* (2, 1, 4) strided */
  vg_tensor *c = vg_transpose(randt(3, (int64_t[]){2, 4, 2}), 1, 2);        /* (2, 2, 4) transposed */
  float *av = host(a), *bv = host(b), *cv = host(c);
  vg_tensor *xs[3] = {a, b, c};
  for (int dimsel = 0; dimsel < 2; dimsel++) {
    int dim = dimsel ? -2 : 1;
    vg_tensor *y = vg_concat(3, xs, dim);
    float want[2 * 6 * 4];
    for (int64_t i = 0; i < 2; i++)
      for (int64_t j = 0; j < 6; j++)
        for (int64_t k = 0; k < 4; k++)
          want[(i * 6 + j) * 4 + k] = j < 3 ? av[(i * 3 + j) * 4 + k] : j < 4 ? bv[i * 4 + k] : cv[(i * 2 + j - 4) * 4 + k];
    check_shape(y, 3, (int64_t[]){2, 6, 4}, "concat dim 1 shape");
    check_vals(y, want, 48, 0, dimsel ? "concat dim -2 (strided, transposed inputs)" : "concat dim 1 (strided, transposed inputs)");
  }
  /* along the last dim and dim 0 */
  vg_tensor *d = randt(3, (int64_t[]){2, 3, 1});
  float *dv = host(d);
  vg_tensor *y = vg_concat(2, (vg_tensor *[]){a, d}, 2);
  float want[2 * 3 * 5];
  for (int64_t i = 0; i < 6; i++)
    for (int64_t k = 0; k < 5; k++) want[i * 5 + k] = k < 4 ? av[i * 4 + k] : dv[i];
  check_vals(y, want, 30, 0, "concat dim 2");
  y = vg_concat(2, (vg_tensor *[]){a, a}, 0);
  float w0[48];
  memcpy(w0, av, sizeof(float) * 24);
  memcpy(w0 + 24, av, sizeof(float) * 24);
  check_vals(y, w0, 48, 0, "concat dim 0");
  y = vg_concat(1, (vg_tensor *[]){b}, 0);
  check_vals(y, bv, 8, 0, "concat of one strided tensor");
  /* legacy empty (0,) tensors are skipped, as torch.cat */
  vg_tensor *e = vg_empty(VG_F32, 1, (int64_t[]){0});
  y = vg_concat(3, (vg_tensor *[]){e, a, e}, 1);
  check_shape(y, 3, (int64_t[]){2, 3, 4}, "concat skips (0,) tensors");
  check_vals(y, av, 24, 0, "concat skips (0,) tensors: values");
  /* i64 and bool data */
  vg_tensor *i1 = vg_from_data(VG_I64, 2, (int64_t[]){1, 2}, (int64_t[]){1, -2});
  vg_tensor *i2 = vg_from_data(VG_I64, 2, (int64_t[]){1, 2}, (int64_t[]){(int64_t)1 << 40, 4});
  vg_tensor *yi = vg_concat(2, (vg_tensor *[]){i1, vg_transpose(vg_reshape(i2, 2, (int64_t[]){2, 1}), 0, 1)}, 0);
  int64_t gi[4] = {0}, wi[4] = {1, -2, (int64_t)1 << 40, 4};
  if (yi) vg_to_host(yi, VG_I64, gi);
  VG_CHECK(yi && yi->dtype == VG_I64 && !memcmp(gi, wi, sizeof gi), "concat i64 exactly");
  vg_tensor *b1 = vg_from_data(VG_BOOL, 1, (int64_t[]){2}, (uint8_t[]){1, 0});
  vg_tensor *b2 = vg_from_data(VG_BOOL, 1, (int64_t[]){1}, (uint8_t[]){1});
  vg_tensor *yb = vg_concat(2, (vg_tensor *[]){b1, b2}, 0);
  uint8_t gb[3] = {9, 9, 9}, wb[3] = {1, 0, 1};
  if (yb) vg_to_host(yb, VG_BOOL, gb);
  VG_CHECK(yb && yb->dtype == VG_BOOL && !memcmp(gb, wb, 3), "concat bool");

  /* stack = unsqueeze + concat */
  vg_tensor *p = randt(2, (int64_t[]){3, 4}), *q = vg_transpose(randt(2, (int64_t[]){4, 3}), 0, 1);
  float *pv = host(p), *qv = host(q);
  for (int dim = -3; dim < 3; dim++) {
    int nd = dim < 0 ? dim + 3 : dim;
    vg_tensor *s = vg_stack(2, (vg_tensor *[]){p, q}, dim);
    int64_t shape[3] = {3, 4, 4};
    shape[nd] = 2;
    for (int i = 0, k = 0; i < 3; i++)
      if (i != nd) shape[i] = k++ ? 4 : 3;
    float sw[24];
    for (int64_t t = 0; t < 2; t++)
      for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 4; j++) {
          int64_t co[3];
          for (int u = 0, k = 0; u < 3; u++) co[u] = u == nd ? t : (k++ ? j : i);
          int64_t r = (co[0] * shape[1] + co[1]) * shape[2] + co[2];
          sw[r] = t ? qv[i * 4 + j] : pv[i * 4 + j];
        }
    char what[64];
    snprintf(what, sizeof what, "stack of (3,4) x2 at dim %d", dim);
    check_shape(s, 3, shape, what);
    check_vals(s, sw, 24, 0, what);
  }
  free(av);
  free(bv);
  free(cv);
  free(dv);
  free(pv);
  free(qv);
  vg_scope_end();

  /* outside any scope: intermediates freed, result owned by the caller (ASan) */
  vg_tensor *h1 = vg_tensor_new(VG_F32, 1, (int64_t[]){2}), *h2 = vg_tensor_new(VG_F32, 1, (int64_t[]){2});
  vg_f32(h1)[0] = 1;
  vg_f32(h2)[1] = 2;
  vg_tensor *st = vg_stack(2, (vg_tensor *[]){h1, h2}, 1);
  float sw2[4] = {1, 0, 0, 2};
  check_vals(st, sw2, 4, 0, "stack outside a scope");
  vg_tensor_free(st);
  vg_tensor_free(h1);
  vg_tensor_free(h2);
}

/* ============================== indexing ============================== */
static vg_tensor *rand_index(int nd, const int64_t *shape, int64_t hi) {
  vg_tensor *t = vg_empty(VG_I64, nd, shape);
  int64_t *p = vg_data(t);
  for (int64_t i = 0; i < vg_numel(t); i++) p[i] = irand(hi);
  return t;
}

/* flat offset of (i, j, k) in a contiguous (., s1, s2) */
#define AT3(i, j, k, s) (((i) * (s)[1] + (j)) * (s)[2] + (k))

static void test_gather_scatter(void) {
  vg_scope_begin();
  const int64_t xs[3] = {3, 4, 5};
  vg_tensor *x = vg_permute(randt(3, (int64_t[]){5, 3, 4}), (int[]){1, 2, 0});   /* (3, 4, 5) permuted */
  float *xv = host(x);
  static const int64_t ishapes[3][3] = {{6, 3, 4}, {2, 6, 3}, {3, 2, 7}};   /* index shape per dim */
  for (int dim = 0; dim < 3; dim++) {
    const int64_t *is = ishapes[dim];
    vg_tensor *ix = rand_index(3, is, xs[dim]);
    int64_t *iv = vg_data(ix), n = numel_of(3, is);
    float *want = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < is[0]; i++)
      for (int64_t j = 0; j < is[1]; j++)
        for (int64_t k = 0; k < is[2]; k++) {
          int64_t v = iv[AT3(i, j, k, is)], c[3] = {i, j, k};
          c[dim] = v;
          want[AT3(i, j, k, is)] = xv[AT3(c[0], c[1], c[2], xs)];
        }
    char what[96];
    snprintf(what, sizeof what, "gather dim %d of a permuted (3,4,5), index (%lld,%lld,%lld)", dim,
             (long long)is[0], (long long)is[1], (long long)is[2]);
    vg_tensor *y = vg_gather(x, dim, ix);
    check_shape(y, 3, is, what);
    check_vals(y, want, n, 0, what);
    free(want);

    /* scatter_add: base (3,4,5) transposed, src larger than index */
    vg_tensor *base = vg_transpose(randt(3, (int64_t[]){3, 5, 4}), 1, 2);
    int64_t ss[3] = {is[0] + 1, is[1] + 2, is[2]};
    vg_tensor *src = randt(3, ss);
    float *bv = host(base), *sv = host(src);
    for (int64_t i = 0; i < is[0]; i++)
      for (int64_t j = 0; j < is[1]; j++)
        for (int64_t k = 0; k < is[2]; k++) {
          int64_t c[3] = {i, j, k};
          c[dim] = iv[AT3(i, j, k, is)];
          bv[AT3(c[0], c[1], c[2], xs)] += sv[AT3(i, j, k, ss)];
        }
    snprintf(what, sizeof what, "scatter_add dim %d into a transposed (3,4,5), src larger than index", dim);
    y = vg_scatter_add(base, dim, ix, src);
    check_shape(y, 3, xs, what);
    check_vals(y, bv, 60, 1e-6, what);
    free(bv);
    free(sv);
  }
  /* i64 data through gather, and index via a slice (non-contiguous index) */
  vg_tensor *xi = vg_from_data(VG_I64, 2, (int64_t[]){2, 3}, (int64_t[]){10, 11, 12, 13, 14, 15});
  vg_tensor *ix = vg_slice(vg_from_data(VG_I64, 2, (int64_t[]){2, 4}, (int64_t[]){2, 9, 0, 9, 1, 9, 1, 9}), 1, 0, 4, 2);
  vg_tensor *yi = vg_gather(xi, 1, ix);
  int64_t gi[4] = {0}, wi[4] = {12, 10, 14, 14};
  if (yi) vg_to_host(yi, VG_I64, gi);
  VG_CHECK(yi && yi->dtype == VG_I64 && !memcmp(gi, wi, sizeof gi), "gather i64 data with a strided index");
  /* 0-d */
  vg_tensor *y0 = vg_gather(vg_scalar(4.5f), 0, vg_from_data(VG_I64, 0, NULL, (int64_t[]){0}));
  VG_CHECK(y0 && y0->ndim == 0 && vg_item(y0) == 4.5f, "gather of 0-d tensors");
  free(xv);
  vg_scope_end();
}

static void test_index_select_add(void) {
  vg_scope_begin();
  const int64_t xs[3] = {3, 4, 5};
  vg_tensor *x = vg_permute(randt(3, (int64_t[]){4, 5, 3}), (int[]){2, 0, 1});
  float *xv = host(x);
  static const int64_t idx_vals[] = {3, 0, 0, 2, 1, 2};
  for (int dim = -1; dim < 3; dim++) {
    int d = dim < 0 ? 2 : dim;
    int64_t K = d == 1 ? 6 : d == 0 ? 4 : 5;
    int64_t ivals[6];
    for (int k = 0; k < K; k++) ivals[k] = idx_vals[k] % xs[d];
    vg_tensor *ix = vg_from_data(VG_I64, 1, &K, ivals);
    int64_t ys[3] = {xs[0], xs[1], xs[2]};
    ys[d] = K;
    int64_t n = numel_of(3, ys);
    float *want = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < ys[0]; i++)
      for (int64_t j = 0; j < ys[1]; j++)
        for (int64_t k = 0; k < ys[2]; k++) {
          int64_t c[3] = {i, j, k};
          c[d] = ivals[c[d]];
          want[AT3(i, j, k, ys)] = xv[AT3(c[0], c[1], c[2], xs)];
        }
    char what[96];
    snprintf(what, sizeof what, "index_select dim %d of a permuted (3,4,5), %lld indices", dim, (long long)K);
    vg_tensor *y = vg_index_select(x, dim, ix);
    check_shape(y, 3, ys, what);
    check_vals(y, want, n, 0, what);

    /* index_add: transposed src of y's shape into base (repeated indices add up) */
    vg_tensor *src = vg_transpose(randt(3, (int64_t[]){ys[0], ys[2], ys[1]}), 1, 2);
    vg_tensor *base = randt(3, xs);
    float *bv = host(base), *sv = host(src);
    for (int64_t i = 0; i < ys[0]; i++)
      for (int64_t j = 0; j < ys[1]; j++)
        for (int64_t k = 0; k < ys[2]; k++) {
          int64_t c[3] = {i, j, k};
          c[d] = ivals[c[d]];
          bv[AT3(c[0], c[1], c[2], xs)] += sv[AT3(i, j, k, ys)];
        }
    snprintf(what, sizeof what, "index_add dim %d, transposed src, repeated indices", dim);
    y = vg_index_add(base, dim, ix, src);
    check_shape(y, 3, xs, what);
    check_vals(y, bv, 60, 1e-6, what);
    free(want);
    free(bv);
    free(sv);
  }
  /* 0-d index keeps the dim (size 1), bool data */
  vg_tensor *y = vg_index_select(x, 1, vg_from_data(VG_I64, 0, NULL, (int64_t[]){2}));
  check_shape(y, 3, (int64_t[]){3, 1, 5}, "index_select with a 0-d index");
  vg_tensor *bx = vg_from_data(VG_BOOL, 2, (int64_t[]){2, 2}, (uint8_t[]){1, 0, 0, 1});
  vg_tensor *by = vg_index_select(bx, 0, vg_from_data(VG_I64, 1, (int64_t[]){3}, (int64_t[]){1, 1, 0}));
  uint8_t gb[6] = {9}, wb[6] = {0, 1, 0, 1, 1, 0};
  if (by) vg_to_host(by, VG_BOOL, gb);
  VG_CHECK(by && by->dtype == VG_BOOL && !memcmp(gb, wb, 6), "index_select bool rows");
  free(xv);
  vg_scope_end();
}

/* ============================== threads, backward layouts ============================== */
typedef vg_tensor *(*unary_fn)(vg_tensor *x, const void *ctx);

static vg_tensor *f_avg(vg_tensor *x, const void *ctx) {
  (void)ctx;
  return vg_avg_pool2d(x, (vg_pool2d_opts){3, 3, 2, 2, 1, 1, true, false});
}
static vg_tensor *f_max(vg_tensor *x, const void *ctx) {
  (void)ctx;
  return vg_max_pool2d(x, (vg_pool2d_opts){3, 2, 2, 1, 1, 1, true, false}, NULL);
}
static vg_tensor *f_adapt(vg_tensor *x, const void *ctx) {
  (void)ctx;
  return vg_adaptive_avg_pool2d(x, 5, 3);
}
static vg_tensor *f_interp0(vg_tensor *x, const void *ctx) {
  (void)ctx;
  return vg_interpolate_bilinear(x, 13, 7, false);
}
static vg_tensor *f_interp1(vg_tensor *x, const void *ctx) {
  (void)ctx;
  return vg_interpolate_bilinear(x, 5, 20, true);
}
static vg_tensor *f_unfold(vg_tensor *x, const void *ctx) {
  (void)ctx;
  return vg_unfold(x, 3, 2, 1, 2, 1, 1, 2, 1);
}
static vg_tensor *f_gather(vg_tensor *x, const void *ctx) { return vg_gather(x, 2, ctx); }
static vg_tensor *f_isel(vg_tensor *x, const void *ctx) { return vg_index_select(x, 3, ctx); }

/* grad of x for seed G, output grads contiguous (perm = NULL) or routed through a
 * permute so that the op's backward sees a non-contiguous gy */
static float *grad_of(unary_fn f, const void *ctx, vg_tensor *x, const float *seed, bool permuted) {
  vg_scope_begin();
  vg_tensor *y = f(x, ctx);
  vg_tensor *G = vg_from_data(VG_F32, y->ndim, y->shape, seed);
  if (permuted) {
    int perm[VG_MAX_DIMS];
    for (int i = 0; i < y->ndim; i++) perm[i] = y->ndim - 1 - i;
    vg_backward_with(vg_permute(y, perm), vg_contiguous(vg_permute(G, perm)));
  } else {
    vg_backward_with(y, G);
  }
  vg_scope_end();
  float *g = malloc(sizeof(float) * (size_t)vg_numel(x));
  vg_to_host(x->grad, VG_F32, g);
  vg_tensor_free(x->grad);
  x->grad = NULL;
  return g;
}

static void test_threads_and_layouts(void) {
  static const struct {
    const char *name;
    unary_fn f;
  } ops[] = {{"avg_pool2d", f_avg}, {"max_pool2d", f_max}, {"adaptive_avg_pool2d", f_adapt},
             {"interpolate (align_corners=0)", f_interp0}, {"interpolate (align_corners=1)", f_interp1},
             {"unfold", f_unfold}, {"gather", f_gather}, {"index_select", f_isel}};
  int64_t s[4] = {4, 64, 11, 9};   /* several chunks per op at 5 threads */
  vg_tensor *x = leaf(4, s);
  /* gather index (3,5,11,9) along dim 2 with repeats; index_select with repeats */
  vg_tensor *gix = vg_tensor_new(VG_I64, 4, s), *six = vg_tensor_new(VG_I64, 1, (int64_t[]){14});
  for (int64_t i = 0; i < vg_numel(gix); i++) ((int64_t *)vg_data(gix))[i] = irand(11);
  for (int64_t i = 0; i < 14; i++) ((int64_t *)vg_data(six))[i] = irand(9);
  int nthreads = vg_num_threads();
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
    const void *ctx = ops[k].f == f_gather ? (const void *)gix : ops[k].f == f_isel ? (const void *)six : NULL;
    vg_scope_begin();
    vg_no_grad_begin();
    vg_tensor *y = ops[k].f(x, ctx);
    vg_no_grad_end();
    int64_t ny = vg_numel(y);
    float *seed = malloc(sizeof(float) * (size_t)ny), *y1 = host(y);
    for (int64_t i = 0; i < ny; i++) seed[i] = frand();
    vg_scope_end();
    vg_set_num_threads(1);
    float *g1 = grad_of(ops[k].f, ctx, x, seed, false);
    vg_set_num_threads(5);
    vg_scope_begin();
    float *y5 = host(ops[k].f(x, ctx));
    vg_scope_end();
    float *g5 = grad_of(ops[k].f, ctx, x, seed, false);
    float *gp = grad_of(ops[k].f, ctx, x, seed, true);
    vg_set_num_threads(nthreads);
    int64_t nx = vg_numel(x);
    VG_CHECK(!memcmp(y1, y5, sizeof(float) * (size_t)ny), "%s forward: 1 and 5 threads bit-identical", ops[k].name);
    VG_CHECK(!memcmp(g1, g5, sizeof(float) * (size_t)nx), "%s backward: 1 and 5 threads bit-identical", ops[k].name);
    VG_CHECK(!memcmp(g1, gp, sizeof(float) * (size_t)nx), "%s backward: non-contiguous output grad, same result",
             ops[k].name);
    free(seed);
    free(y1);
    free(y5);
    free(g1);
    free(g5);
    free(gp);
  }
  vg_tensor_free(x);
  vg_tensor_free(gix);
  vg_tensor_free(six);

  /* fold, scatter_add and index_add forward: many adds into one element */
  vg_scope_begin();
  vg_tensor *cols = randt(3, (int64_t[]){4, 16 * 9, 100});
  vg_tensor *base = randt(2, (int64_t[]){7, 3000});
  vg_tensor *src = randt(2, (int64_t[]){50, 3000});
  vg_tensor *six2 = rand_index(1, (int64_t[]){50}, 7);
  vg_tensor *gix2 = rand_index(2, (int64_t[]){50, 3000}, 7);
  float *r[2][3];
  for (int t = 0; t < 2; t++) {
    vg_set_num_threads(t ? 5 : 1);
    r[t][0] = host(vg_fold(cols, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1));
    r[t][1] = host(vg_scatter_add(base, 0, gix2, src));
    r[t][2] = host(vg_index_add(base, 0, six2, src));
  }
  vg_set_num_threads(nthreads);
  VG_CHECK(!memcmp(r[0][0], r[1][0], sizeof(float) * 4 * 16 * 100), "fold: 1 and 5 threads bit-identical");
  VG_CHECK(!memcmp(r[0][1], r[1][1], sizeof(float) * 21000), "scatter_add: 1 and 5 threads bit-identical");
  VG_CHECK(!memcmp(r[0][2], r[1][2], sizeof(float) * 21000), "index_add: 1 and 5 threads bit-identical");
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < 3; k++) free(r[t][k]);
  vg_scope_end();
}

/* ============================== errors ============================== */
static void expect_err(vg_tensor *y, const char *s1, const char *s2, const char *what) {
  const char *e = vg_last_error();
  VG_CHECK(!y && strstr(e, s1) && (!s2 || strstr(e, s2)), "%s -> NULL with \"%s\"%s%s (got: %s)", what, s1,
           s2 ? " and " : "", s2 ? s2 : "", e);
  vg_clear_error();
}

static void test_errors(void) {
  vg_scope_begin();
  vg_clear_error();
  vg_tensor *x4 = randt(4, (int64_t[]){1, 2, 3, 3}), *x2 = randt(2, (int64_t[]){3, 3});
  vg_pool2d_opts k2 = {2, 2, 0, 0, 0, 0, false, true};
  expect_err(vg_avg_pool2d(x2, k2), "avg_pool2d: wants (N, C, H, W)", "[3, 3]", "avg_pool2d of a 2-d input");
  expect_err(vg_max_pool2d(x4, (vg_pool2d_opts){4, 4, 0, 0, 0, 0, false, false}, NULL),
             "max_pool2d: kernel 4x4", "larger than the padded input [1, 2, 3, 3]", "max_pool2d kernel > input");
  expect_err(vg_avg_pool2d(x4, (vg_pool2d_opts){2, 2, 1, 1, 2, 0, false, true}),
             "avg_pool2d: pad should be at most half of kernel size", "pad=(2, 0)", "avg_pool2d pad > k/2");
  expect_err(vg_avg_pool2d(x4, (vg_pool2d_opts){0, 2, 1, 1, 0, 0, false, true}), "avg_pool2d: kernel size must be positive",
             NULL, "avg_pool2d kernel 0");
  expect_err(vg_avg_pool2d(vg_cast(x4, VG_I64), k2), "avg_pool2d: input 0 is i64", NULL, "avg_pool2d of i64");
  expect_err(vg_avg_pool2d(NULL, k2), "avg_pool2d: input 0 is NULL", NULL, "avg_pool2d of NULL");
  expect_err(vg_adaptive_avg_pool2d(x2, 2, 2), "adaptive_avg_pool2d: wants", "[3, 3]", "adaptive of 2-d");
  expect_err(vg_adaptive_avg_pool2d(randt(4, (int64_t[]){1, 2, 0, 3}), 2, 2), "adaptive_avg_pool2d", "empty",
             "adaptive of an empty plane");
  expect_err(vg_adaptive_avg_pool1d(x4, 2), "adaptive_avg_pool1d: wants (N, C, L)", "[1, 2, 3, 3]", "pool1d of 4-d");
  expect_err(vg_interpolate_bilinear(x4, 0, 3, false), "interpolate_bilinear: input and output sizes should be greater than 0",
             "0x3", "interpolate to 0 rows");
  expect_err(vg_interpolate_bilinear(x2, 3, 3, true), "interpolate_bilinear: wants (N, C, H, W)", NULL, "interpolate 2-d");
  expect_err(vg_unfold(x2, 2, 2, 1, 1, 0, 0, 1, 1), "unfold: wants (N, C, H, W)", "[3, 3]", "unfold 2-d");
  expect_err(vg_unfold(x4, 5, 2, 1, 1, 0, 0, 1, 1), "unfold: spatial size (3, 3)", "sliding blocks", "unfold kernel > input");
  vg_tensor *cols = randt(3, (int64_t[]){1, 8, 4});
  expect_err(vg_fold(cols, 4, 4, 3, 3, 1, 1, 0, 0, 1, 1), "fold: input [1, 8, 4]", "divisible by the kernel area 9",
             "fold channels not divisible");
  expect_err(vg_fold(cols, 3, 3, 2, 2, 1, 1, 0, 0, 2, 2), "fold: input [1, 8, 4] has 4 blocks", "1 x 1 = 1",
             "fold block count mismatch");
  expect_err(vg_pad(x2, 1, (int64_t[]){-1, 0}, 0), "pad: negative padding (-1, 0)", "not supported", "negative pad");
  expect_err(vg_pad(x2, 3, (int64_t[]){1, 1, 1, 1, 1, 1}, 0), "pad: 3 (before, after) pairs for a 2-d input", NULL,
             "too many pad pairs");
  vg_tensor *c1 = randt(3, (int64_t[]){2, 3, 4}), *c2 = randt(3, (int64_t[]){2, 3, 5});
  expect_err(vg_concat(2, (vg_tensor *[]){c1, c2}, 1), "concat: sizes must match except in dim 1",
             "tensor 0 is [2, 3, 4], tensor 1 is [2, 3, 5]", "concat mismatched shapes");
  expect_err(vg_concat(2, (vg_tensor *[]){c1, vg_cast(c1, VG_I64)}, 0), "concat: tensor 1 is i64", "cast", "concat dtypes");
  expect_err(vg_concat(2, (vg_tensor *[]){c1, x2}, 0), "concat: sizes must match", "[3, 3]", "concat ndim");
  expect_err(vg_concat(1, (vg_tensor *[]){c1}, 3), "concat: dim 3 out of range", NULL, "concat dim");
  expect_err(vg_concat(2, (vg_tensor *[]){vg_scalar(1), vg_scalar(2)}, 0), "concat: tensor 0 is 0-d", NULL, "concat 0-d");
  expect_err(vg_concat(0, NULL, 0), "concat: needs at least one tensor", NULL, "concat of nothing");
  expect_err(vg_stack(2, (vg_tensor *[]){c1, c2}, 0), "stack: expects each tensor to be equal size",
             "[2, 3, 5] at entry 1", "stack mismatched");
  vg_tensor *i32 = vg_zeros(VG_I32, 2, (int64_t[]){2, 2}), *bad = vg_full(VG_I64, 2, (int64_t[]){2, 2}, 3);
  expect_err(vg_gather(x2, 1, i32), "gather: index must be i64, got i32", NULL, "gather i32 index");
  expect_err(vg_gather(x2, 1, bad), "gather: index 3", "out of range for dim 1 of size 3", "gather out of range");
  vg_tensor *neg = vg_full(VG_I64, 2, (int64_t[]){1, 1}, -1);
  expect_err(vg_gather(x2, 0, neg), "gather: index -1", "out of range", "gather negative index");
  expect_err(vg_gather(x2, 0, vg_zeros(VG_I64, 1, (int64_t[]){2})), "gather: index [2] must have the same number of dims",
             NULL, "gather ndim");
  expect_err(vg_gather(x2, 0, vg_zeros(VG_I64, 2, (int64_t[]){1, 4})), "gather: index [1, 4] is larger than input [3, 3] at dim 1",
             NULL, "gather index too wide");
  expect_err(vg_scatter_add(x2, 1, bad, x2), "scatter_add: index 3", "out of range", "scatter_add out of range");
  expect_err(vg_scatter_add(x2, 1, vg_zeros(VG_I64, 2, (int64_t[]){3, 4}), x2), "scatter_add: index [3, 4] must be no larger",
             NULL, "scatter_add index larger than src");
  expect_err(vg_scatter_add(x2, 1, vg_zeros(VG_I64, 2, (int64_t[]){1, 1}), vg_cast(x2, VG_I64)),
             "scatter_add: src is i64 but input is f32", NULL, "scatter_add dtypes");
  expect_err(vg_index_select(x2, 0, bad), "index_select: index [2, 2] must be a vector", NULL, "index_select 2-d index");
  expect_err(vg_index_select(x2, 0, vg_full(VG_I64, 1, (int64_t[]){2}, 4)), "index_select: index 4", "size 3",
             "index_select out of range");
  expect_err(vg_index_select(x2, 2, vg_zeros(VG_I64, 1, (int64_t[]){2})), "index_select: dim 2 out of range", NULL,
             "index_select dim");
  expect_err(vg_index_add(x2, 0, vg_zeros(VG_I64, 1, (int64_t[]){2}), x2), "index_add: src [3, 3] must match input [3, 3]",
             "the 2 indices", "index_add src rows");
  expect_err(vg_index_add(x2, 1, vg_full(VG_I64, 1, (int64_t[]){3}, 7), x2), "index_add: index 7", "out of range",
             "index_add out of range");
  vg_scope_end();
}

/* ============================== gradcheck rows ============================== */
#define GC_EPS 1e-3
#define GC_TOL 1e-2

typedef struct {
  vg_op op;
  double (*run)(void);   /* max relative error over its configurations */
} spatial_grad_row;

typedef struct {
  vg_pool2d_opts o;
  const vg_tensor *index;
  int dim;
  int mode;
} gc_ctx;

static double gc1(vg_gradcheck_fn f, int nd, const int64_t *shape, void *ctx) {
  vg_tensor *x = leaf(nd, shape);
  double e = vg_gradcheck(f, 1, &x, ctx, GC_EPS);
  vg_tensor_free(x);
  return e;
}

static vg_tensor *gf_avg(vg_tensor *const *in, void *ctx) { return vg_avg_pool2d(in[0], ((gc_ctx *)ctx)->o); }
static double gr_avg(void) {
  gc_ctx a = {.o = {3, 2, 2, 1, 1, 1, true, true}}, b = {.o = {3, 3, 2, 2, 1, 1, true, false}};
  double e1 = gc1(gf_avg, 4, (int64_t[]){2, 2, 5, 6}, &a), e2 = gc1(gf_avg, 4, (int64_t[]){1, 2, 6, 6}, &b);
  return fmax(e1, e2);
}

static vg_tensor *gf_max(vg_tensor *const *in, void *ctx) {
  /* a transposed view: backward sees non-contiguous indices / grads */
  return vg_max_pool2d(vg_transpose(in[0], 2, 3), ((gc_ctx *)ctx)->o, NULL);
}
static double gr_max(void) {
  /* distinct values 0.02 apart (no ties within 2*eps) */
  int64_t s[4] = {2, 2, 6, 5}, n = 120;
  vg_tensor *x = vg_tensor_new(VG_F32, 4, s);
  float *p = vg_f32(x);
  for (int64_t i = 0; i < n; i++) p[i] = (float)((i * 37) % n) * 0.02f - 1.2f;
  vg_requires_grad_(x, true);
  gc_ctx c = {.o = {3, 2, 2, 1, 1, 1, true, false}};
  double e = vg_gradcheck(gf_max, 1, &x, &c, GC_EPS);
  vg_tensor_free(x);
  return e;
}

static vg_tensor *gf_adapt(vg_tensor *const *in, void *ctx) {
  (void)ctx;
  return vg_add(vg_adaptive_avg_pool2d(in[0], 3, 4), vg_mean(vg_adaptive_avg_pool1d(vg_reshape(in[0], 3, (int64_t[]){2, 7, 5}), 2), 0, NULL, false));
}
static double gr_adapt(void) { return gc1(gf_adapt, 4, (int64_t[]){2, 1, 7, 5}, NULL); }

static vg_tensor *gf_interp(vg_tensor *const *in, void *ctx) {
  return vg_interpolate_bilinear(in[0], 7, 3, ((gc_ctx *)ctx)->mode != 0);
}
static double gr_interp(void) {
  gc_ctx a = {.mode = 0}, b = {.mode = 1};
  return fmax(gc1(gf_interp, 4, (int64_t[]){2, 1, 4, 5}, &a), gc1(gf_interp, 4, (int64_t[]){1, 2, 4, 5}, &b));
}

static vg_tensor *gf_unfold(vg_tensor *const *in, void *ctx) {
  (void)ctx;
  return vg_unfold(in[0], 3, 2, 1, 2, 1, 1, 2, 1);
}
static double gr_unfold(void) { return gc1(gf_unfold, 4, (int64_t[]){2, 2, 5, 6}, NULL); }

static vg_tensor *gf_fold(vg_tensor *const *in, void *ctx) {
  (void)ctx;
  return vg_fold(in[0], 5, 6, 3, 2, 1, 2, 1, 1, 2, 1);
}
static double gr_fold(void) { return gc1(gf_fold, 3, (int64_t[]){2, 12, 18}, NULL); }

static vg_tensor *gf_pad(vg_tensor *const *in, void *ctx) {
  (void)ctx;
  return vg_pad(vg_transpose(in[0], 0, 2), 3, (int64_t[]){1, 2, 0, 1, 2, 0}, 0.25f);
}
static double gr_pad(void) { return gc1(gf_pad, 3, (int64_t[]){3, 2, 4}, NULL); }

static vg_tensor *gf_concat(vg_tensor *const *in, void *ctx) {
  (void)ctx;
  return vg_concat(3, (vg_tensor *[]){in[0], vg_transpose(in[1], 0, 1), in[2]}, 1);
}
static double gr_concat(void) {
  vg_tensor *x[3] = {leaf(2, (int64_t[]){3, 2}), leaf(2, (int64_t[]){4, 3}), leaf(2, (int64_t[]){3, 1})};
  double e = vg_gradcheck(gf_concat, 3, x, NULL, GC_EPS);
  for (int k = 0; k < 3; k++) vg_tensor_free(x[k]);
  return e;
}

static vg_tensor *gf_gather(vg_tensor *const *in, void *ctx) {
  gc_ctx *c = ctx;
  return vg_gather(in[0], c->dim, c->index);
}
static double gr_gather(void) {
  vg_tensor *ix = vg_tensor_new(VG_I64, 3, (int64_t[]){2, 6, 3});
  for (int64_t i = 0; i < 36; i++) ((int64_t *)vg_data(ix))[i] = irand(4);
  gc_ctx c = {.index = ix, .dim = 1};
  double e = gc1(gf_gather, 3, (int64_t[]){3, 4, 5}, &c);
  vg_tensor_free(ix);
  return e;
}

static vg_tensor *gf_scatter(vg_tensor *const *in, void *ctx) {
  gc_ctx *c = ctx;
  return vg_scatter_add(in[0], c->dim, c->index, in[1]);
}
static double gr_scatter(void) {
  vg_tensor *ix = vg_tensor_new(VG_I64, 3, (int64_t[]){2, 6, 3});
  for (int64_t i = 0; i < 36; i++) ((int64_t *)vg_data(ix))[i] = irand(4);
  gc_ctx c = {.index = ix, .dim = 1};
  vg_tensor *x[2] = {leaf(3, (int64_t[]){3, 4, 5}), leaf(3, (int64_t[]){3, 7, 4})};   /* src larger than index */
  double e = vg_gradcheck(gf_scatter, 2, x, &c, GC_EPS);
  vg_tensor_free(x[0]);
  vg_tensor_free(x[1]);
  vg_tensor_free(ix);
  return e;
}

static vg_tensor *gf_isel(vg_tensor *const *in, void *ctx) {
  gc_ctx *c = ctx;
  return vg_index_select(in[0], c->dim, c->index);
}
static double gr_isel(void) {
  vg_tensor *ix = vg_tensor_new(VG_I64, 1, (int64_t[]){6});
  static const int64_t v[6] = {2, 0, 2, 3, 1, 2};
  memcpy(vg_data(ix), v, sizeof v);
  gc_ctx c = {.index = ix, .dim = -2};
  double e = gc1(gf_isel, 3, (int64_t[]){2, 4, 3}, &c);
  vg_tensor_free(ix);
  return e;
}

static vg_tensor *gf_iadd(vg_tensor *const *in, void *ctx) {
  gc_ctx *c = ctx;
  return vg_index_add(in[0], c->dim, c->index, vg_transpose(in[1], 0, 2));
}
static double gr_iadd(void) {
  vg_tensor *ix = vg_tensor_new(VG_I64, 1, (int64_t[]){5});
  static const int64_t v[5] = {3, 0, 3, 1, 3};
  memcpy(vg_data(ix), v, sizeof v);
  gc_ctx c = {.index = ix, .dim = 1};
  vg_tensor *x[2] = {leaf(3, (int64_t[]){2, 4, 3}), leaf(3, (int64_t[]){3, 5, 2})};
  double e = vg_gradcheck(gf_iadd, 2, x, &c, GC_EPS);
  vg_tensor_free(x[0]);
  vg_tensor_free(x[1]);
  vg_tensor_free(ix);
  return e;
}

static const spatial_grad_row GRAD_ROWS[] = {
  {VG_OP_AVG_POOL2D, gr_avg},
  {VG_OP_MAX_POOL2D, gr_max},
  {VG_OP_ADAPTIVE_AVG_POOL2D, gr_adapt},
  {VG_OP_INTERP_BILINEAR, gr_interp},
  {VG_OP_UNFOLD, gr_unfold},
  {VG_OP_FOLD, gr_fold},
  {VG_OP_PAD, gr_pad},
  {VG_OP_CONCAT, gr_concat},
  {VG_OP_GATHER, gr_gather},
  {VG_OP_SCATTER_ADD, gr_scatter},
  {VG_OP_INDEX_SELECT, gr_isel},
  {VG_OP_INDEX_ADD, gr_iadd},
};

static void test_gradcheck_rows(void) {
  for (size_t k = 0; k < sizeof GRAD_ROWS / sizeof *GRAD_ROWS; k++) {
    vg_clear_error();
    double e = GRAD_ROWS[k].run();
    VG_CHECK(vg_op_differentiable(GRAD_ROWS[k].op) && e <= GC_TOL, "gradcheck %s: max rel err %.2e <= %.0e %s",
             vg_op_name(GRAD_ROWS[k].op), e, GC_TOL, vg_last_error());
  }
}

int main(void) {
  test_pool();
  test_adaptive();
  test_interp();
  test_unfold_fold();
  test_pad();
  test_concat_stack();
  test_gather_scatter();
  test_index_select_add();
  test_threads_and_layouts();
  test_errors();
  test_gradcheck_rows();
  return vg_test_finish();
}
