/* conv2d kernels: the references checked against the definition (adjoint identities in
 * double, a central difference), then fwd / bwd_data / bwd_weight on every ISA path
 * against the references for the EfficientAD PDN layers at small spatial sizes and for
 * stride, dilation, groups, depthwise, 1x1, asymmetric and wide-row geometries;
 * bit-identical results for 1, 2 and 3 threads.
 * Tolerance: |got - want| <= 1e-5 * sqrt(K) * (1 + |want|), data in [-1, 1], where K is
 * the reduction length (c/groups*kh*kw for fwd, oc/groups*kh*kw for bwd_data, n*oh*ow
 * for bwd_weight). */
#include "tests/vgtest.h"
#include "tensor/cpu/conv.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/isa.h"
#include "tensor/cpu/winograd.h"
#include "tensor/cpu/dwconv.h"
#include "base/threadpool.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static float *rand_buf(int64_t n) {
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = frand();
  return p;
}
static float *nan_buf(int64_t n) {
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = NAN;
  return p;
}
static double dot(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}
static double absdot(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
  return s;
}

typedef struct {
  const char *name;
  int64_t n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  int bias;
} conv_case;

static const conv_case cases[] = {
  /* EfficientAD-S PDN layers (Table 6) at small spatial sizes */
  {"pdn-conv1 3->128 k4 p3", 2, 3, 12, 11, 128, 4, 4, 1, 1, 3, 3, 1, 1, 1, 1},
  {"pdn-conv2 128->64 k4 p3", 2, 128, 7, 6, 64, 4, 4, 1, 1, 3, 3, 1, 1, 1, 1},
  {"pdn-conv3 256->256 k3 p1", 1, 256, 5, 5, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
  {"pdn-conv4 256->384 k4 p0", 2, 256, 6, 6, 384, 4, 4, 1, 1, 0, 0, 1, 1, 1, 0},
  {"stride2 k3 p1", 2, 5, 11, 10, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
  {"dilation2 k3 p2", 2, 4, 9, 9, 6, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0},
  {"groups2 k3 p1", 2, 6, 8, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1},
  {"depthwise k3 p1", 2, 8, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8, 1},
  {"depthwise x2 k5 p2 s2", 1, 4, 11, 9, 8, 5, 5, 2, 2, 2, 2, 1, 1, 4, 0},
  {"1x1", 3, 16, 7, 7, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},
  {"1x1 groups3", 2, 12, 5, 6, 9, 1, 1, 1, 1, 0, 0, 1, 1, 3, 0},
  {"1x1 stride2", 2, 8, 9, 9, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1},
  {"asymmetric 3x2 s(2,1) p(0,1) d(1,2)", 2, 3, 10, 9, 5, 3, 2, 2, 1, 0, 1, 1, 2, 1, 1},
  {"wide rows 3->16 k4 p3 w70", 1, 3, 5, 70, 16, 4, 4, 1, 1, 3, 3, 1, 1, 1, 1},
  {"stride3 dil3 pad>k", 1, 3, 13, 12, 5, 2, 3, 3, 2, 4, 3, 3, 1, 1, 1},
  {"batch-K split 3->8 k3 p1 64x64", 5, 3, 64, 64, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static vg_conv2d_geom geom_of(const conv_case *c) {
  vg_conv2d_geom g = {.n = c->n, .c = c->c, .h = c->h, .w = c->w, .oc = c->oc, .kh = c->kh,
                      .kw = c->kw, .sh = c->sh, .sw = c->sw, .ph = c->ph, .pw = c->pw,
                      .dh = c->dh, .dw = c->dw, .groups = c->groups};
  vg_conv2d_geom_init(&g);
  return g;
}

typedef struct {
  vg_conv2d_geom g;
  int64_t nx, nw, ny;
  float *x, *w, *b, *gy;
} conv_data;

static conv_data make_data(const conv_case *c) {
  conv_data d = {.g = geom_of(c)};
  d.nx = d.g.n * d.g.c * d.g.h * d.g.w;
  d.nw = d.g.oc * (d.g.c / d.g.groups) * d.g.kh * d.g.kw;
  d.ny = d.g.n * d.g.oc * d.g.oh * d.g.ow;
  d.x = rand_buf(d.nx); d.w = rand_buf(d.nw); d.b = c->bias ? rand_buf(d.g.oc) : NULL;
  d.gy = rand_buf(d.ny);
  return d;
}
static void free_data(conv_data *d) { free(d->x); free(d->w); free(d->b); free(d->gy); }

/* The references against the definition: fwd is linear in x and in w, so
 *   <gy, fwd(x, w)> = <bwd_data(gy), x> = <bwd_weight(x, gy), w>,  <gy, 1*b> = <gb, b>. */
static void check_reference(const conv_case *c) {
  conv_data d = make_data(c);
  float *y = nan_buf(d.ny), *gx = nan_buf(d.nx), *gw = nan_buf(d.nw), *gb = nan_buf(d.g.oc);
  vg_cpu_conv2d_fwd_ref(&d.g, d.x, d.w, NULL, y);
  vg_cpu_conv2d_bwd_data_ref(&d.g, d.w, d.gy, gx);
  vg_cpu_conv2d_bwd_weight_ref(&d.g, d.x, d.gy, gw, gb);
  double l = dot(d.gy, y, d.ny), lx = dot(gx, d.x, d.nx), lw = dot(gw, d.w, d.nw);
  double scale = absdot(d.gy, y, d.ny) + 1e-3;
  VG_CHECK(fabs(l - lx) <= 1e-6 * scale && fabs(l - lw) <= 1e-6 * scale,
           "conv ref adjoint %s: <gy,y>=%.9g <gx,x>=%.9g <gw,w>=%.9g", c->name, l, lx, lw);
  if (d.b) {
    float *yb = nan_buf(d.ny);
    vg_cpu_conv2d_fwd_ref(&d.g, d.x, d.w, d.b, yb);
    double lb = dot(d.gy, yb, d.ny) - l, lg = dot(gb, d.b, d.g.oc);
    VG_CHECK(fabs(lb - lg) <= 1e-5 * (scale + absdot(gb, d.b, d.g.oc)),
             "conv ref bias grad %s: <gy,y(b)-y(0)>=%.9g <gb,b>=%.9g", c->name, lb, lg);
    free(yb);
  }
  free(y); free(gx); free(gw); free(gb); free_data(&d);
}

/* Central difference of L = <gy, fwd_ref(x, w)> at a few entries of x and w. */
static void check_fd(const conv_case *c) {
  conv_data d = make_data(c);
  float *y = malloc((size_t)d.ny * sizeof(float)), *gx = malloc((size_t)d.nx * sizeof(float));
  float *gw = malloc((size_t)d.nw * sizeof(float));
  vg_cpu_conv2d_bwd_data_ref(&d.g, d.w, d.gy, gx);
  vg_cpu_conv2d_bwd_weight_ref(&d.g, d.x, d.gy, gw, NULL);
  const float h = 0.25f;   /* L is linear: the difference is exact up to rounding of y */
  double worst = 0;
  for (int t = 0; t < 6; t++) {
    float *v = t < 3 ? d.x : d.w, *gv = t < 3 ? gx : gw;
    int64_t i = (t < 3 ? d.nx : d.nw) * (2 * (t % 3) + 1) / 7;
    float keep = v[i];
    v[i] = keep + h; vg_cpu_conv2d_fwd_ref(&d.g, d.x, d.w, d.b, y); double lp = dot(d.gy, y, d.ny);
    v[i] = keep - h; vg_cpu_conv2d_fwd_ref(&d.g, d.x, d.w, d.b, y); double lm = dot(d.gy, y, d.ny);
    v[i] = keep;
    double fd = (lp - lm) / (2 * h), e = fabs(fd - gv[i]) / (1e-4 * (1 + fabs(gv[i])));
    if (e > worst) worst = e;
  }
  VG_CHECK(worst <= 1.0, "conv ref central difference %s: worst err/tol %.3g", c->name, worst);
  free(y); free(gx); free(gw); free_data(&d);
}

/* The ISA paths compared with the reference: every ISA this CPU has, then the scalar
 * path with the AVX-512 tile (12 x 32), so that geometry runs through the packers here. */
typedef struct { vg_isa isa; int mr, nr; const char *name; } isa_variant;
static int variants(isa_variant *v) {
  int n = 0;
  for (int isa = vg_cpu_isa_max(); isa >= 0; isa--)
    v[n++] = (isa_variant){(vg_isa)isa, 0, 0, vg_isa_name((vg_isa)isa)};
  v[n++] = (isa_variant){VG_ISA_SCALAR, 12, 32, "scalar-tile12x32"};
  return n;
}

static void check_fast(const conv_case *c) {
  conv_data d = make_data(c);
  const vg_conv2d_geom *g = &d.g;
  const double sf = sqrt((double)(g->c / g->groups * g->kh * g->kw));
  const double sd = sqrt((double)(g->oc / g->groups * g->kh * g->kw));
  const double sw = sqrt((double)(g->n * g->oh * g->ow) + 1);
  float *yr = nan_buf(d.ny), *gxr = nan_buf(d.nx), *gwr = nan_buf(d.nw), *gbr = nan_buf(g->oc);
  vg_cpu_conv2d_fwd_ref(g, d.x, d.w, d.b, yr);
  vg_cpu_conv2d_bwd_data_ref(g, d.w, d.gy, gxr);
  vg_cpu_conv2d_bwd_weight_ref(g, d.x, d.gy, gwr, d.b ? gbr : NULL);
  isa_variant v[4];
  const int nv = variants(v);
  for (int i = 0; i < nv; i++) {
    vg_cpu_set_isa(v[i].isa);
    vg_gemm_set_scalar_tile(v[i].mr, v[i].nr);
    const char *isa = v[i].name;
    char what[160];
    float *y = nan_buf(d.ny), *gx = nan_buf(d.nx), *gw = nan_buf(d.nw), *gb = nan_buf(g->oc);
    vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, y);
    snprintf(what, sizeof what, "conv fwd %s %s%s", isa, c->name, d.b ? " +bias" : "");
    VG_CHECK_CLOSE(y, yr, d.ny, 1e-5 * sf, 1e-5 * sf, what);
    vg_cpu_conv2d_bwd_data(g, d.w, d.gy, gx);
    snprintf(what, sizeof what, "conv bwd_data %s %s", isa, c->name);
    VG_CHECK_CLOSE(gx, gxr, d.nx, 1e-5 * sd, 1e-5 * sd, what);
    vg_cpu_conv2d_bwd_weight(g, d.x, d.gy, gw, d.b ? gb : NULL);
    snprintf(what, sizeof what, "conv bwd_weight %s %s", isa, c->name);
    VG_CHECK_CLOSE(gw, gwr, d.nw, 1e-5 * sw, 1e-5 * sw, what);
    if (d.b) {
      snprintf(what, sizeof what, "conv bwd_bias %s %s", isa, c->name);
      VG_CHECK_CLOSE(gb, gbr, g->oc, 1e-5 * sw, 1e-5 * sw, what);
    }
    free(y); free(gx); free(gw); free(gb);
  }
  vg_gemm_set_scalar_tile(0, 0);
  vg_cpu_set_isa(vg_cpu_isa_max());
  free(yr); free(gxr); free(gwr); free(gbr);
  free_data(&d);
}

static void check_threads(const conv_case *c) {
  conv_data d = make_data(c);
  const vg_conv2d_geom *g = &d.g;
  float *out[3][4];
  for (int t = 0; t < 3; t++) {
    vg_set_num_threads(t + 1);
    out[t][0] = malloc((size_t)d.ny * sizeof(float));
    out[t][1] = malloc((size_t)d.nx * sizeof(float));
    out[t][2] = malloc((size_t)d.nw * sizeof(float));
    out[t][3] = malloc((size_t)g->oc * sizeof(float));
    vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, out[t][0]);
    vg_cpu_conv2d_bwd_data(g, d.w, d.gy, out[t][1]);
    vg_cpu_conv2d_bwd_weight(g, d.x, d.gy, out[t][2], out[t][3]);
  }
  vg_set_num_threads(0);
  int same = 1;
  const int64_t sz[4] = {d.ny, d.nx, d.nw, g->oc};
  for (int t = 1; t < 3; t++)
    for (int k = 0; k < 4; k++) same &= !memcmp(out[0][k], out[t][k], (size_t)sz[k] * sizeof(float));
  VG_CHECK(same, "conv %s %s fwd/bwd_data/bwd_weight/bias bit-identical with 1, 2, 3 threads",
           vg_isa_name(vg_cpu_isa()), c->name);
  for (int t = 0; t < 3; t++)
    for (int k = 0; k < 4; k++) free(out[t][k]);
  free_data(&d);
}

static void check_empty_batch(void) {
  vg_conv2d_geom g = {.n = 0, .c = 2, .h = 5, .w = 5, .oc = 3, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                      .ph = 1, .pw = 1, .dh = 1, .dw = 1, .groups = 1};
  vg_conv2d_geom_init(&g);
  float x[1], w[54], gw[54], gb[3] = {NAN, NAN, NAN}, y[1] = {42};
  for (int i = 0; i < 54; i++) { w[i] = 1; gw[i] = NAN; }
  vg_cpu_conv2d_fwd(&g, x, w, NULL, y);
  vg_cpu_conv2d_bwd_weight(&g, x, y, gw, gb);
  int zero = gb[0] == 0 && gb[2] == 0;
  for (int i = 0; i < 54; i++) zero &= gw[i] == 0;
  VG_CHECK(y[0] == 42 && zero, "conv batch 0: fwd writes nothing, weight grads are zero");
  VG_CHECK(g.oh == 5 && g.ow == 5, "conv geom 5x5 k3 p1 -> 5x5");
  vg_conv2d_geom p = {.n = 1, .c = 3, .h = 256, .w = 256, .oc = 128, .kh = 4, .kw = 4, .sh = 1,
                      .sw = 1, .ph = 3, .pw = 3, .dh = 1, .dw = 1, .groups = 1};
  vg_conv2d_geom_init(&p);
  VG_CHECK(p.oh == 259 && p.ow == 259, "conv geom PDN conv1 256 -> 259");
}

/* Winograd F(4x4,3x3) and F(3x3,4x4) (tensor/cpu/winograd.c): 3x3 stride-1 layers of
 * ResNet18, WRN50, the PDN and the FastFlow subnets, and 4x4 stride-1 layers of the PDN
 * (EfficientAD-S/M) and the EfficientAD autoencoder's decoder (real channel counts, reduced
 * spatial sizes), odd sizes, other paddings, fused ReLU. Bound: max|y - y_ref| <= WINO_TOL * max|y_ref| on every ISA path;
 * measured on these rows <= 1.31e-5 (the GEMM path: ~5e-7; random data in [-1, 1]). */
#define WINO_TOL 3e-5
#define WINO_WTOL 3e-5   /* bwd_weight too (it sums over every tile of the batch): measured <= 9e-6 */
static const conv_case wino_cases[] = {
  {"wino r18-layer1 64->64 32x32", 1, 64, 32, 32, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
  {"wino r18-layer3 256->64 12x12 b8", 8, 256, 12, 12, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
  {"wino wrn50-layer3 512->32 8x8 b16", 16, 512, 8, 8, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
  {"wino pdn-conv3 256->64 k3 p1 17x17 b3", 3, 256, 17, 17, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
  {"wino fastflow-r18 subnet 32->64 30x29", 1, 32, 30, 29, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
  {"wino fastflow-wrn subnet 128->256 12x12 b8", 8, 128, 12, 12, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
  {"wino 16->24 p0 35x34 b2", 2, 16, 35, 34, 24, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1},
  {"wino 20->17 p2 p(2,0) 21x26 b3", 3, 20, 21, 26, 17, 3, 3, 1, 1, 2, 0, 1, 1, 1, 0},
  {"wino4 pdn-s conv2 128->48 k4 30x30", 1, 128, 30, 30, 48, 4, 4, 1, 1, 0, 0, 1, 1, 1, 1},
  {"wino4 pdn-s conv4 256->32 k4 19x19 b2", 2, 256, 19, 19, 32, 4, 4, 1, 1, 0, 0, 1, 1, 1, 1},
  {"wino4 pdn-m conv2 256->24 k4 p3 12x12 b4", 4, 256, 12, 12, 24, 4, 4, 1, 1, 3, 3, 1, 1, 1, 1},
  {"wino4 pdn-m conv5 512->16 k4 22x22 b2", 2, 512, 22, 22, 16, 4, 4, 1, 1, 0, 0, 1, 1, 1, 0},
  {"wino4 ae-dec 64->64 k4 p2 33x33", 1, 64, 33, 33, 64, 4, 4, 1, 1, 2, 2, 1, 1, 1, 1},
  {"wino4 16->24 p1 p(1,3) 29x31 b2", 2, 16, 29, 31, 24, 4, 4, 1, 1, 1, 3, 1, 1, 1, 1},
  {"wino4 20->17 p(2,0) 22x26 b3", 3, 20, 22, 26, 17, 4, 4, 1, 1, 2, 0, 1, 1, 1, 0},
};
#define NWINO (int)(sizeof wino_cases / sizeof wino_cases[0])

static double rel_err(const float *y, const float *yr, int64_t n) {
  double mx = 0, e = 0;
  for (int64_t i = 0; i < n; i++) {
    const double a = fabs((double)yr[i]), d = fabs((double)y[i] - yr[i]);
    if (a > mx) mx = a;
    if (!(d <= e)) e = d;          /* NaN counts as the worst */
  }
  return mx > 0 ? e / mx : e;
}

static void check_winograd(const conv_case *c, double *worst, double *worst_w) {
  conv_data d = make_data(c);
  vg_conv2d_geom *g = &d.g;
  vg_cpu_set_winograd(1);
  VG_CHECK(vg_cpu_winograd_applies(g), "winograd takes %s", c->name);
  float *yr = nan_buf(d.ny), *yg = nan_buf(d.ny), *relu_r = nan_buf(d.ny), *gxr = nan_buf(d.nx);
  vg_cpu_conv2d_fwd_ref(g, d.x, d.w, d.b, yr);
  vg_cpu_conv2d_bwd_data_ref(g, d.w, d.gy, gxr);
  float *gwr = nan_buf(d.nw);
  vg_cpu_conv2d_bwd_weight_ref(g, d.x, d.gy, gwr, NULL);
  for (int64_t i = 0; i < d.ny; i++) relu_r[i] = yr[i] < 0 ? 0.0f : yr[i];
  isa_variant v[4];
  const int nv = variants(v);
  for (int i = 0; i < nv; i++) {
    vg_cpu_set_isa(v[i].isa);
    vg_gemm_set_scalar_tile(v[i].mr, v[i].nr);
    float *y = nan_buf(d.ny);
    g->relu = 0;
    vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, y);
    const double e = rel_err(y, yr, d.ny);
    if (e > *worst) *worst = e;
    VG_CHECK(e <= WINO_TOL, "winograd fwd %s %s: max|y - ref| / max|ref| = %.3g <= %g", v[i].name, c->name, e,
             WINO_TOL);
    g->relu = 1;
    vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, y);
    int relu_ok = 1;
    for (int64_t k = 0; k < d.ny; k++) relu_ok &= y[k] >= 0.0f;
    const double er = rel_err(y, relu_r, d.ny);
    VG_CHECK(relu_ok && er <= WINO_TOL, "winograd fwd+relu %s %s: all >= 0, err %.3g", v[i].name, c->name, er);
    g->relu = 0;
    free(y);
    /* bwd_data: the forward Winograd conv of gy with the flipped, transposed kernel */
    float *gx = nan_buf(d.nx);
    vg_cpu_conv2d_bwd_data(g, d.w, d.gy, gx);
    const double eg = rel_err(gx, gxr, d.nx);
    if (eg > *worst) *worst = eg;
    VG_CHECK(eg <= WINO_TOL, "winograd bwd_data %s %s: max|gx - ref| / max|ref| = %.3g <= %g", v[i].name, c->name,
             eg, WINO_TOL);
    free(gx);
    /* bwd_weight: dU = sum_t V Gm^T in the Winograd domain, gw = G^T dU G */
    float *gw = nan_buf(d.nw);
    vg_cpu_conv2d_bwd_weight(g, d.x, d.gy, gw, NULL);
    const double ew = rel_err(gw, gwr, d.nw);
    if (ew > *worst_w) *worst_w = ew;
    VG_CHECK(ew <= WINO_WTOL, "winograd bwd_weight %s %s: max|gw - ref| / max|ref| = %.3g <= %g", v[i].name,
             c->name, ew, WINO_WTOL);
    free(gw);
  }
  vg_gemm_set_scalar_tile(0, 0);
  vg_cpu_set_isa(vg_cpu_isa_max());
  /* off: the GEMM path exactly (what VIGIL_WINOGRAD=0 gives) */
  float *y0 = nan_buf(d.ny), *y1 = nan_buf(d.ny);
  vg_cpu_set_winograd(0);
  VG_CHECK(!vg_cpu_winograd_applies(g), "winograd off: %s not taken", c->name);
  vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, y0);
  vg_cpu_set_winograd(1);
  vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, y1);
  VG_CHECK(memcmp(y0, y1, (size_t)d.ny * sizeof(float)) != 0 && rel_err(y0, yr, d.ny) < 1e-6,
           "winograd on/off differ (it ran) and off is the GEMM path (err %.3g) %s", rel_err(y0, yr, d.ny), c->name);
  float *gx0 = nan_buf(d.nx), *gx1 = nan_buf(d.nx);
  vg_cpu_set_winograd(0);
  vg_cpu_conv2d_bwd_data(g, d.w, d.gy, gx0);
  vg_cpu_set_winograd(1);
  vg_cpu_conv2d_bwd_data(g, d.w, d.gy, gx1);
  VG_CHECK(memcmp(gx0, gx1, (size_t)d.nx * sizeof(float)) != 0 && rel_err(gx0, gxr, d.nx) < 1e-6,
           "winograd bwd_data on/off differ (it ran) and off is the GEMM path (err %.3g) %s", rel_err(gx0, gxr, d.nx),
           c->name);
  float *gw0 = nan_buf(d.nw), *gw1 = nan_buf(d.nw);
  vg_cpu_set_winograd(0);
  vg_cpu_conv2d_bwd_weight(g, d.x, d.gy, gw0, NULL);
  vg_cpu_set_winograd(1);
  vg_cpu_conv2d_bwd_weight(g, d.x, d.gy, gw1, NULL);
  VG_CHECK(memcmp(gw0, gw1, (size_t)d.nw * sizeof(float)) != 0 && rel_err(gw0, gwr, d.nw) < 1e-6,
           "winograd bwd_weight on/off differ (it ran) and off is the GEMM path (err %.3g) %s", rel_err(gw0, gwr, d.nw),
           c->name);
  free(gw0); free(gw1); free(gwr);
  free(gx0); free(gx1); free(gxr);
  free(y0); free(y1); free(yr); free(yg); free(relu_r);
  free_data(&d);
}

/* what Winograd must not take: strides, dilation, groups, other kernels, tiny layers */
static void check_winograd_eligibility(void) {
  const conv_case no[] = {
    {"stride2", 1, 64, 64, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0},
    {"dilation2", 1, 64, 64, 64, 64, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0},
    {"groups2", 1, 64, 64, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0},
    {"k5", 1, 64, 64, 64, 64, 5, 5, 1, 1, 1, 1, 1, 1, 1, 0},
    {"k4x3", 1, 64, 64, 64, 64, 4, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"k4 stride2", 1, 64, 64, 64, 64, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0},
    {"k4 12x12 b1 (16 tiles)", 1, 256, 15, 15, 256, 4, 4, 1, 1, 0, 0, 1, 1, 1, 0},
    {"3 channels", 1, 3, 64, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"16x16 b1 (16 tiles)", 1, 256, 16, 16, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
  };
  vg_cpu_set_winograd(1);
  for (int i = 0; i < (int)(sizeof no / sizeof no[0]); i++) {
    vg_conv2d_geom g = geom_of(&no[i]);
    VG_CHECK(!vg_cpu_winograd_eligible(&g), "winograd does not take %s", no[i].name);
  }
  vg_conv2d_geom g = geom_of(&wino_cases[0]);
  VG_CHECK(vg_cpu_winograd_eligible(&g), "winograd takes r18 layer1 at 32x32");
  vg_cpu_set_winograd(-1);
}

/* Direct depthwise path (tensor/cpu/dwconv.c): groups == c == oc, MobileNetV3 layer shapes at
 * reduced sizes plus odd sizes, paddings 0..3, strides 1..3, dilation, asymmetric kernels, rows
 * wider than the 16 weight-gradient lanes, batch > 1, fused ReLU. Against the double reference
 * on every ISA path (fwd/bwd_data: max|got - ref| / max|ref| <= DW_TOL; bwd_weight as check_fast),
 * all ISA paths bit-identical, and against the GEMM path (switched off): the worst relative
 * difference is printed. */
#define DW_TOL 2e-6
static const conv_case dw_cases[] = {
  {"dw mnv3 f1 16ch k3 s1 p1 33x31 b2", 2, 16, 33, 31, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16, 1},
  {"dw mnv3 f2 64ch k3 s2 p1 32x32", 1, 64, 32, 32, 64, 3, 3, 2, 2, 1, 1, 1, 1, 64, 1},
  {"dw mnv3 f4 72ch k5 s2 p2 17x18 b2", 2, 72, 17, 18, 72, 5, 5, 2, 2, 2, 2, 1, 1, 72, 1},
  {"dw mnv3 f5 120ch k5 s1 p2 9x9", 1, 120, 9, 9, 120, 5, 5, 1, 1, 2, 2, 1, 1, 120, 0},
  {"dw mnv3 f14 96ch k5 s1 p2 8x8 b3", 3, 96, 8, 8, 96, 5, 5, 1, 1, 2, 2, 1, 1, 96, 1},
  {"dw k3 s1 p0 odd 7x11", 2, 5, 7, 11, 5, 3, 3, 1, 1, 0, 0, 1, 1, 5, 1},
  {"dw k3 s2 p0 odd 9x13", 2, 6, 9, 13, 6, 3, 3, 2, 2, 0, 0, 1, 1, 6, 0},
  {"dw k3 s2 p2 odd 11x7", 1, 4, 11, 7, 4, 3, 3, 2, 2, 2, 2, 1, 1, 4, 1},
  {"dw k5 s2 p1 odd 13x10", 2, 3, 13, 10, 3, 5, 5, 2, 2, 1, 1, 1, 1, 3, 1},
  {"dw k5 s1 p0 wide 6x53", 1, 4, 6, 53, 4, 5, 5, 1, 1, 0, 0, 1, 1, 4, 1},
  {"dw k3 s1 p1 wide 5x70 b2", 2, 3, 5, 70, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 0},
  {"dw k3 s3 p(1,2) 10x14", 2, 4, 10, 14, 4, 3, 3, 3, 3, 1, 2, 1, 1, 4, 1},
  {"dw k3 d2 p2 12x12", 1, 6, 12, 12, 6, 3, 3, 1, 1, 2, 2, 2, 2, 6, 1},
  {"dw k3x5 s(2,1) p(1,3) d(1,2) 9x15", 2, 5, 9, 15, 5, 3, 5, 2, 1, 1, 3, 1, 2, 5, 1},
  {"dw k7 s1 p3 10x10", 1, 3, 10, 10, 3, 7, 7, 1, 1, 3, 3, 1, 1, 3, 1},
  {"dw k1 s2 p0 7x7", 2, 8, 7, 7, 8, 1, 1, 2, 2, 0, 0, 1, 1, 8, 1},
  {"dw k3 s1 p1 1x1 input", 2, 4, 1, 1, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 1},
};
#define NDW (int)(sizeof dw_cases / sizeof dw_cases[0])

static void check_dw(const conv_case *c, double *worst_ref, double *worst_gemm) {
  conv_data d = make_data(c);
  vg_conv2d_geom *g = &d.g;
  const double sw = sqrt((double)(g->n * g->oh * g->ow) + 1);
  vg_cpu_set_dwconv(1);
  VG_CHECK(vg_cpu_dwconv_applies(g), "dwconv takes %s", c->name);
  float *yr = nan_buf(d.ny), *relu_r = nan_buf(d.ny), *gxr = nan_buf(d.nx), *gwr = nan_buf(d.nw);
  float *gbr = nan_buf(g->oc);
  vg_cpu_conv2d_fwd_ref(g, d.x, d.w, d.b, yr);
  vg_cpu_conv2d_bwd_data_ref(g, d.w, d.gy, gxr);
  vg_cpu_conv2d_bwd_weight_ref(g, d.x, d.gy, gwr, gbr);
  for (int64_t i = 0; i < d.ny; i++) relu_r[i] = yr[i] < 0 ? 0.0f : yr[i];
  isa_variant v[4];
  const int nv = variants(v);
  float *first[3] = {NULL, NULL, NULL};
  int same_isa = 1;
  char what[200];
  for (int i = 0; i < nv; i++) {
    vg_cpu_set_isa(v[i].isa);
    vg_gemm_set_scalar_tile(v[i].mr, v[i].nr);
    float *y = nan_buf(d.ny), *gx = nan_buf(d.nx), *gw = nan_buf(d.nw), *gb = nan_buf(g->oc);
    g->relu = 0;
    vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, y);
    double e = rel_err(y, yr, d.ny);
    if (e > *worst_ref) *worst_ref = e;
    VG_CHECK(e <= DW_TOL, "dwconv fwd %s %s%s: max|y - ref| / max|ref| = %.3g <= %g", v[i].name, c->name,
             d.b ? " +bias" : "", e, DW_TOL);
    g->relu = 1;
    float *yrl = nan_buf(d.ny);
    vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, yrl);
    g->relu = 0;
    int relu_ok = 1;
    for (int64_t k = 0; k < d.ny; k++) relu_ok &= yrl[k] >= 0.0f && (yrl[k] == y[k] || (yrl[k] == 0.0f && y[k] <= 0.0f));
    const double er = rel_err(yrl, relu_r, d.ny);
    VG_CHECK(relu_ok && er <= DW_TOL, "dwconv fwd+relu %s %s: relu(fwd) exactly, err %.3g", v[i].name, c->name, er);
    vg_cpu_conv2d_bwd_data(g, d.w, d.gy, gx);
    e = rel_err(gx, gxr, d.nx);
    if (e > *worst_ref) *worst_ref = e;
    VG_CHECK(e <= DW_TOL, "dwconv bwd_data %s %s: max|gx - ref| / max|ref| = %.3g <= %g", v[i].name, c->name, e,
             DW_TOL);
    vg_cpu_conv2d_bwd_weight(g, d.x, d.gy, gw, gb);
    snprintf(what, sizeof what, "dwconv bwd_weight %s %s", v[i].name, c->name);
    VG_CHECK_CLOSE(gw, gwr, d.nw, 1e-5 * sw, 1e-5 * sw, what);
    snprintf(what, sizeof what, "dwconv bwd_bias %s %s", v[i].name, c->name);
    VG_CHECK_CLOSE(gb, gbr, g->oc, 1e-5 * sw, 1e-5 * sw, what);
    if (i == 0) {
      first[0] = y; first[1] = gx; first[2] = gw;
    } else {
      same_isa &= !memcmp(first[0], y, (size_t)d.ny * sizeof(float)) && !memcmp(first[1], gx, (size_t)d.nx * sizeof(float)) &&
                  !memcmp(first[2], gw, (size_t)d.nw * sizeof(float));
      free(y); free(gx); free(gw);
    }
    free(yrl); free(gb);
  }
  VG_CHECK(same_isa, "dwconv %s: fwd/bwd_data/bwd_weight bit-identical on all %d ISA paths", c->name, nv);
  vg_gemm_set_scalar_tile(0, 0);
  vg_cpu_set_isa(vg_cpu_isa_max());
  /* off: the GEMM path (what VIGIL_DWCONV=0 gives); both close to each other */
  float *y0 = nan_buf(d.ny), *gx0 = nan_buf(d.nx), *gw0 = nan_buf(d.nw);
  vg_cpu_set_dwconv(0);
  VG_CHECK(!vg_cpu_dwconv_applies(g), "dwconv off: %s not taken", c->name);
  vg_cpu_conv2d_fwd(g, d.x, d.w, d.b, y0);
  vg_cpu_conv2d_bwd_data(g, d.w, d.gy, gx0);
  vg_cpu_conv2d_bwd_weight(g, d.x, d.gy, gw0, NULL);
  vg_cpu_set_dwconv(1);
  const double ey = rel_err(first[0], y0, d.ny), ex = rel_err(first[1], gx0, d.nx), ew = rel_err(first[2], gw0, d.nw);
  const double em = fmax(ey, fmax(ex, ew));
  if (em > *worst_gemm) *worst_gemm = em;
  VG_CHECK(ey <= DW_TOL && ex <= DW_TOL && ew <= 1e-5 * sw && rel_err(y0, yr, d.ny) <= DW_TOL,
           "dwconv vs GEMM path %s: fwd %.3g bwd_data %.3g bwd_weight %.3g (max rel)", c->name, ey, ex, ew);
  free(y0); free(gx0); free(gw0);
  for (int k = 0; k < 3; k++) free(first[k]);
  free(yr); free(relu_r); free(gxr); free(gwr); free(gbr);
  free_data(&d);
  vg_cpu_set_dwconv(-1);
}

/* what the direct depthwise path must not take */
static void check_dw_eligibility(void) {
  const conv_case no[] = {
    {"multiplier 2", 1, 4, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0},
    {"groups 2 of 4", 1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0},
    {"groups 1", 1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"1 channel, groups 1", 1, 1, 8, 8, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"stride 5 along w", 1, 4, 12, 12, 4, 3, 3, 1, 5, 1, 1, 1, 1, 4, 0},
    {"batch 0", 0, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0},
  };
  vg_cpu_set_dwconv(1);
  for (int i = 0; i < (int)(sizeof no / sizeof no[0]); i++) {
    vg_conv2d_geom g = geom_of(&no[i]);
    VG_CHECK(!vg_cpu_dwconv_eligible(&g), "dwconv does not take %s", no[i].name);
  }
  vg_conv2d_geom g = geom_of(&dw_cases[0]);
  VG_CHECK(vg_cpu_dwconv_eligible(&g), "dwconv takes %s", dw_cases[0].name);
  vg_cpu_set_dwconv(-1);
}

int main(void) {
  vg_isa best = vg_cpu_isa_max();
  printf("# best ISA here: %s\n", vg_isa_name(best));
  check_empty_batch();
  for (int i = 0; i < NCASES; i++) check_reference(&cases[i]);
  check_fd(&cases[4]);
  check_fd(&cases[6]);
  check_fd(&cases[12]);
  for (int i = 0; i < NCASES; i++) check_fast(&cases[i]);
  vg_cpu_set_isa(best);
  check_threads(&cases[0]);
  check_threads(&cases[6]);
  check_threads(&cases[7]);
  check_threads(&cases[15]);
  check_winograd_eligibility();
  double worst = 0;
  double worst_w = 0;
  for (int i = 0; i < NWINO; i++) check_winograd(&wino_cases[i], &worst, &worst_w);
  printf("# winograd: worst max|y - ref| / max|ref| over %d layer shapes and all ISA paths: %.3g (fwd, bwd_data), "
         "%.3g (bwd_weight)\n", NWINO, worst, worst_w);
  vg_cpu_set_winograd(1);
  check_threads(&wino_cases[0]);
  check_threads(&wino_cases[1]);
  vg_cpu_set_winograd(-1);
  check_dw_eligibility();
  double dw_ref = 0, dw_gemm = 0;
  for (int i = 0; i < NDW; i++) check_dw(&dw_cases[i], &dw_ref, &dw_gemm);
  printf("# dwconv: worst max|got - ref| / max|ref| (fwd, bwd_data) %.3g; worst vs the GEMM path %.3g (%d shapes)\n",
         dw_ref, dw_gemm, NDW);
  vg_cpu_set_dwconv(1);
  check_threads(&dw_cases[0]);
  check_threads(&dw_cases[2]);
  check_threads(&dw_cases[13]);
  vg_cpu_set_dwconv(-1);
  if (vg_test_long()) {
    conv_case big = {"pdn-conv2 128->256 k4 p3 20x20", 2, 128, 20, 20, 256, 4, 4, 1, 1, 3, 3, 1, 1, 1, 1};
    check_fast(&big);
    check_threads(&big);
  }
  return vg_test_finish();
}
