/* Direct depthwise convolution (see dwconv.h): the switch, the padded-plane packers, the
 * parallel drivers and the scalar copy of the row kernels. Per (image, channel) plane:
 *   buf[(r*sw + q)*L + j] = x[r - ph][j*sw + q - pw]  (0 outside x), r < h + 2ph, L = ceil((w + 2pw)/sw)
 * and output (oy, ox) under tap (ki, kj) reads row oy*sh + ki*dh, column ox*sw + kj*dw of the
 * padded plane = phase (kj*dw) % sw, index ox + (kj*dw) / sw. */
#include "tensor/cpu/dwconv.h"
#include "tensor/cpu/isa.h"
#include "base/threadpool.h"
#include "base/status.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define VG_DW_MAX_SW 4

static vg_cpu_switch dw_switch = VG_CPU_SWITCH_INIT("VIGIL_DWCONV");

void vg_cpu_set_dwconv(int on) { vg_cpu_switch_set(&dw_switch, on); }
int vg_cpu_dwconv(void) { return vg_cpu_switch_on(&dw_switch); }

int vg_cpu_dwconv_eligible(const vg_conv2d_geom *g) {
  return g->groups > 1 && g->groups == g->c && g->oc == g->c && g->n >= 1 && g->sw <= VG_DW_MAX_SW;
}

int vg_cpu_dwconv_applies(const vg_conv2d_geom *g) { return vg_cpu_dwconv_eligible(g) && vg_cpu_dwconv(); }



typedef void (*vg_dw_fwd_fn)(const float *, const float *, float, int, const vg_conv2d_geom *, int64_t, float *,
                             float *);
typedef void (*vg_dw_bwd_fn)(const float *, const float *, const vg_conv2d_geom *, int64_t, float *, float *);
typedef void (*vg_dw_wgrad_fn)(const float *, const float *, const vg_conv2d_geom *, int64_t, float *, float *);


static float *plane_alloc(size_t floats) {
  float *b = malloc(floats * sizeof(float));
  if (!b) VG_ABORT("out of memory in depthwise conv2d");
  return b;
}

/* ---- the scalar (baseline x86-64 / any CPU) copy of the row kernels ---- */
#if !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
#define DK(name) vg_##name##_scalar
#include "tensor/cpu/dwconv_kern.h"
#undef DK
#if !defined(__clang__)
#pragma GCC pop_options
#endif

void vg_dw_pad_plane(const vg_conv2d_geom *g, int64_t L, const float *xc, float *buf) {
  vg_dw_pad_scalar(g, L, xc, buf);
}

typedef struct {
  const vg_conv2d_geom *g;
  const float *x, *w, *bias, *gy;
  float *y, *gx, *gw;
  int64_t L;
  vg_isa isa;
} vg_dw_job;

static void fwd_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_dw_job *j = vctx;
  const vg_conv2d_geom *g = j->g;
  const vg_dw_fwd_fn fn = j->isa == VG_ISA_AVX512 ? vg_dw_fwd_plane_avx512
                          : j->isa == VG_ISA_AVX2 ? vg_dw_fwd_plane_avx2
                                                  : vg_dw_fwd_plane_scalar;
  const int64_t khw = g->kh * g->kw, HW = g->h * g->w, P = g->oh * g->ow;
  float *buf = plane_alloc(vg_dw_fwd_scratch_floats(g));
  for (int64_t t = b; t < e; t++) {       /* t = n * c + ch */
    const int64_t ch = t % g->c;
    fn(j->x + t * HW, j->w + ch * khw, j->bias ? j->bias[ch] : 0.0f, g->relu, g, j->L, buf, j->y + t * P);
  }
  free(buf);
}

static void bwd_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_dw_job *j = vctx;
  const vg_conv2d_geom *g = j->g;
  const vg_dw_bwd_fn fn = j->isa == VG_ISA_AVX512 ? vg_dw_bwd_plane_avx512
                          : j->isa == VG_ISA_AVX2 ? vg_dw_bwd_plane_avx2
                                                  : vg_dw_bwd_plane_scalar;
  const int64_t khw = g->kh * g->kw, HW = g->h * g->w, P = g->oh * g->ow;
  float *buf = plane_alloc(vg_dw_plane_floats(g));
  for (int64_t t = b; t < e; t++) {
    const int64_t ch = t % g->c;
    fn(j->gy + t * P, j->w + ch * khw, g, j->L, buf, j->gx + t * HW);
  }
  free(buf);
}

static void wgrad_task(void *vctx, int64_t b, int64_t e, int tid) {   /* over channels */
  (void)tid;
  const vg_dw_job *j = vctx;
  const vg_conv2d_geom *g = j->g;
  const vg_dw_wgrad_fn fn = j->isa == VG_ISA_AVX512 ? vg_dw_wgrad_plane_avx512
                            : j->isa == VG_ISA_AVX2 ? vg_dw_wgrad_plane_avx2
                                                    : vg_dw_wgrad_plane_scalar;
  const int64_t khw = g->kh * g->kw, HW = g->h * g->w, P = g->oh * g->ow;
  float *buf = plane_alloc(vg_dw_plane_floats(g));
  float *lanes = malloc((size_t)(khw * 16) * sizeof(float));
  if (!lanes) VG_ABORT("out of memory in depthwise conv2d");
  for (int64_t ch = b; ch < e; ch++) {
    memset(lanes, 0, (size_t)(khw * 16) * sizeof(float));
    for (int64_t n = 0; n < g->n; n++) {
      const int64_t t = n * g->c + ch;
      fn(j->gy + t * P, j->x + t * HW, g, j->L, buf, lanes);
    }
    for (int64_t k = 0; k < khw; k++) {
      const float *s = lanes + k * 16;
      double a[4];
      for (int q = 0; q < 4; q++) a[q] = ((double)s[q] + s[q + 4]) + ((double)s[q + 8] + s[q + 12]);
      j->gw[ch * khw + k] = (float)((a[0] + a[1]) + (a[2] + a[3]));
    }
  }
  free(lanes);
  free(buf);
}

/* planes per task: about 64K multiply-adds of work each (the results do not depend on it) */
static int64_t plane_grain(const vg_conv2d_geom *g) {
  const int64_t work = g->oh * g->ow * g->kh * g->kw + g->h * g->w;
  const int64_t gr = 65536 / (work > 0 ? work : 1);
  return gr < 1 ? 1 : gr;
}

void vg_cpu_dwconv_fwd(const vg_conv2d_geom *g, const float *x, const float *w, const float *bias, float *y) {
  VG_ASSERT(vg_cpu_dwconv_eligible(g));
  vg_dw_job j = {.g = g, .x = x, .w = w, .bias = bias, .y = y, .L = vg_dw_phase_len(g), .isa = vg_cpu_isa()};
  vg_parallel_for(g->n * g->c, plane_grain(g), fwd_task, &j);
}

void vg_cpu_dwconv_bwd_data(const vg_conv2d_geom *g, const float *w, const float *gy, float *gx) {
  VG_ASSERT(vg_cpu_dwconv_eligible(g));
  vg_dw_job j = {.g = g, .w = w, .gy = gy, .gx = gx, .L = vg_dw_phase_len(g), .isa = vg_cpu_isa()};
  vg_parallel_for(g->n * g->c, plane_grain(g), bwd_task, &j);
}

void vg_cpu_dwconv_bwd_weight(const vg_conv2d_geom *g, const float *x, const float *gy, float *gw) {
  VG_ASSERT(vg_cpu_dwconv_eligible(g));
  vg_dw_job j = {.g = g, .x = x, .gy = gy, .gw = gw, .L = vg_dw_phase_len(g), .isa = vg_cpu_isa()};
  const int64_t gr = plane_grain(g) / g->n;
  vg_parallel_for(g->c, gr < 1 ? 1 : gr, wgrad_task, &j);
}
