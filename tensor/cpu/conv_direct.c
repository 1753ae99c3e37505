/* Direct convolution for few input channels (see conv_direct.h): the switch, the plan
 * (tap offsets, tiles, lane segments), the padding pass and the parallel driver. */
#include "tensor/cpu/conv_direct.h"
#include "tensor/cpu/dwconv.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/gemm_kernels.h"
#include "tensor/cpu/isa.h"
#include "tensor/cpu/scratch.h"
#include "base/threadpool.h"
#include "base/status.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CD_MAX_K 512              /* one GEMM K block on AVX-512: the GEMM path's sums */
#define CD_MAX_C 16
#define CD_MAX_SW 4               /* the phase split's limit (dwconv.h) */
#define CD_LANES 32
#define CD_GROUP 64               /* tiles per task: 2048 lanes (long runs of each output row) */
#define CD_PAD_BYTES (8u << 20)   /* images padded per pass: at most this much (one at least) */

static vg_cpu_switch cd_switch = VG_CPU_SWITCH_INIT("VIGIL_CONV_DIRECT");

void vg_cpu_set_conv_direct(int on) { vg_cpu_switch_set(&cd_switch, on); }
int vg_cpu_conv_direct(void) { return vg_cpu_switch_on(&cd_switch); }

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

typedef struct {
  int64_t L, plane, R, K;         /* phase length, padded plane, output row pitch in the plane, taps */
  int flat;                       /* lanes through q = oy*R + ox (else along one output row) */
  int64_t tpr, ntiles;            /* tiles per output row (row mode), tiles per image */
  int64_t need;                   /* floats of an image's padded copy a tile may read */
  int64_t off[CD_MAX_K];          /* tap k = (ch, ki, kj): its offset in the padded image */
} cd_plan;

static void plan_of(const vg_conv2d_geom *g, cd_plan *p) {
  p->L = vg_dw_phase_len(g);
  p->plane = (int64_t)vg_dw_plane_floats(g);
  p->R = g->sh * g->sw * p->L;
  p->K = g->c * g->kh * g->kw;
  p->tpr = cdiv(g->ow, CD_LANES);
  const int64_t row_tiles = g->oh * p->tpr, flat_tiles = cdiv((g->oh - 1) * p->R + g->ow, CD_LANES);
  p->flat = flat_tiles < row_tiles;
  p->ntiles = p->flat ? flat_tiles : row_tiles;
  const int64_t last_q0 = p->flat ? (p->ntiles - 1) * CD_LANES : (g->oh - 1) * p->R + (p->tpr - 1) * CD_LANES;
  /* tap k reads plane ch, padded row oy*sh + ki*dh, phase (kj*dw) % sw, index ox + (kj*dw) / sw */
  int64_t off_max = 0;
  if (p->K <= CD_MAX_K)
    for (int64_t ch = 0, k = 0; ch < g->c; ch++)
      for (int64_t ki = 0; ki < g->kh; ki++)
        for (int64_t kj = 0; kj < g->kw; kj++, k++) {
          const int64_t col = kj * g->dw;
          p->off[k] = ch * p->plane + ((ki * g->dh) * g->sw + col % g->sw) * p->L + col / g->sw;
          if (p->off[k] > off_max) off_max = p->off[k];
        }
  p->need = last_q0 + CD_LANES + off_max;
}

int vg_cpu_conv_direct_eligible(const vg_conv2d_geom *g) {
  if (vg_cpu_isa() != VG_ISA_AVX512 || g->groups != 1 || g->n < 1 || g->c > CD_MAX_C ||
      g->c * g->kh * g->kw > CD_MAX_K || g->sw > CD_MAX_SW || g->oc < 1)
    return 0;
  if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0) return 0;
  cd_plan p;
  plan_of(g, &p);
  return 4 * g->oh * g->ow >= 3 * p.ntiles * CD_LANES;   /* at least 3/4 of the lanes kept */
}

int vg_cpu_conv_direct_applies(const vg_conv2d_geom *g) { return vg_cpu_conv_direct_eligible(g) && vg_cpu_conv_direct(); }

typedef struct {
  const vg_conv2d_geom *g;
  cd_plan p;
  const float *x;                 /* the first image of this pass */
  float *buf;                     /* padded copies, image i at i * istride */
  int64_t istride, nimg;
  const float *wpacked, *bias;
  float *y;                       /* output of the first image of this pass */
  int64_t ngroups, msplit, slivers, step, tasks;
} cd_job;

static void pad_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const cd_job *j = vctx;
  const vg_conv2d_geom *g = j->g;
  for (int64_t t = b; t < e; t++) {
    const int64_t i = t / g->c, ch = t % g->c;
    vg_dw_pad_plane(g, j->p.L, j->x + t * g->h * g->w, j->buf + i * j->istride + ch * j->p.plane);
  }
}

/* The output segments of a tile: lanes [0, nl) from q0 = oy*R + ox in the plane's grid. */
static int tile_segs(const vg_conv2d_geom *g, const cd_plan *p, int64_t q0, int nl, vg_cd_seg *seg) {
  int n = 0;
  for (int t = 0; t < nl;) {
    const int64_t q = q0 + t, oy = q / p->R, ox = q % p->R;
    if (oy >= g->oh) break;
    if (ox < g->ow) {
      const int run = (int)min64(nl - t, g->ow - ox);
      seg[n++] = (vg_cd_seg){t, t + run, oy * g->ow + ox};
      t += run;
    } else {
      t += (int)min64(nl - t, p->R - ox);
    }
  }
  return n;
}

static void compute_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const cd_job *j = vctx;
  const vg_conv2d_geom *g = j->g;
  const cd_plan *p = &j->p;
  const int64_t per_img = j->ngroups * j->msplit, P = g->oh * g->ow;
  int64_t q0s[CD_GROUP];
  int first[CD_GROUP + 1];                     /* tile k's segments: pool[first[k] .. first[k+1]) */
  vg_cd_seg pool[CD_GROUP * VG_CD_MAX_SEGS];
  for (int64_t u = b; u < e; u++) {
    const int64_t t = u * j->step % j->tasks;
    const int64_t i = t / per_img, gi = t % per_img / j->msplit, r = t % j->msplit;
    const int64_t t0 = gi * CD_GROUP, nt = min64(CD_GROUP, p->ntiles - t0);
    first[0] = 0;
    for (int64_t k = 0; k < nt; k++) {
      const int64_t tile = t0 + k;
      int nl = CD_LANES;
      if (p->flat) {
        q0s[k] = tile * CD_LANES;
      } else {
        const int64_t oy = tile / p->tpr, ox = tile % p->tpr * CD_LANES;
        q0s[k] = oy * p->R + ox;
        nl = (int)min64(CD_LANES, g->ow - ox);
      }
      first[k + 1] = first[k] + tile_segs(g, p, q0s[k], nl, pool + first[k]);
    }
    const float *xi = j->buf + i * j->istride;
    const int64_t s0 = r * j->slivers / j->msplit, s1 = (r + 1) * j->slivers / j->msplit;
    for (int64_t s = s0; s < s1; s++) {
      const int64_t o0 = s * VG_UKR_AVX512_MR;
      const int m = (int)min64(VG_UKR_AVX512_MR, g->oc - o0);
      const float *a = vg_gemm_packed_a_sliver(j->wpacked, o0);
      float *yo = j->y + (i * g->oc + o0) * P;
      for (int64_t k = 0; k < nt; k++)
        vg_cd_tile_avx512(p->K, a, xi + q0s[k], p->off, m, j->bias ? j->bias + o0 : NULL, g->relu, yo, P,
                          pool + first[k], first[k + 1] - first[k]);
    }
  }
}

void vg_cpu_conv_direct_fwd(const vg_conv2d_geom *g, const float *x, const float *wpacked,
                            const float *bias, float *y) {
  VG_ASSERT(vg_cpu_conv_direct_eligible(g) && "vg_cpu_conv_direct_fwd: geometry not eligible");
  cd_job j = {.g = g, .wpacked = wpacked, .bias = bias};
  plan_of(g, &j.p);
  j.istride = g->c * j.p.plane;
  const int64_t tail = j.p.need > j.istride ? j.p.need - j.istride : 0;   /* zeros the last tiles read */
  const int64_t per_pass = (int64_t)(CD_PAD_BYTES / sizeof(float)) / j.istride;
  const int64_t chunk = per_pass < 1 ? 1 : per_pass;
  j.ngroups = cdiv(j.p.ntiles, CD_GROUP);
  j.slivers = cdiv(g->oc, VG_UKR_AVX512_MR);
  const int64_t want = 2 * (int64_t)vg_num_threads();
  for (int64_t n0 = 0; n0 < g->n; n0 += chunk) {
    j.nimg = min64(chunk, g->n - n0);
    const size_t floats = (size_t)(j.nimg * j.istride + tail);
    j.buf = vg_cpu_scratch(VG_SCRATCH_CONV_PAD, floats);
    if (tail) memset(j.buf + j.nimg * j.istride, 0, (size_t)tail * sizeof(float));
    j.x = x + n0 * g->c * g->h * g->w;
    j.y = y + n0 * g->oc * g->oh * g->ow;
    vg_parallel_for(j.nimg * g->c, 1, pad_task, &j);
    j.msplit = j.nimg * j.ngroups >= want ? 1 : min64(j.slivers, cdiv(want, j.nimg * j.ngroups));
    j.tasks = j.nimg * j.ngroups * j.msplit;
    j.step = vg_gemm_spread_step(j.tasks);
    vg_parallel_for(j.tasks, 1, compute_task, &j);
  }
}
