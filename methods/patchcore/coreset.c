/* coreset.c — PatchCore's hot paths (patchcore.h): the sparse random projection, the greedy
 * k-center coreset and the nearest-neighbour search against the memory bank. */
#include "methods/patchcore/patchcore.h"
#include "base/threadpool.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- projection */
int64_t vg_patchcore_jl_dim(int64_t n, double eps) {
  if (n < 1) return 0;
  double den = eps * eps / 2 - eps * eps * eps / 3;
  return (int64_t)(4 * log((double)n) / den);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Each entry is non-zero with probability density = 1/sqrt(d) (the same law as anomalib's
 * per-row Binomial(d, density) count placed by sampling without replacement), with sign
 * +-1 at probability 1/2, scaled by sqrt(1/density)/sqrt(k) (one f32 value). */
float *vg_patchcore_projection(int64_t k, int64_t d, uint64_t seed) {
  if (k < 1 || d < 1) return NULL;
  float *r = calloc((size_t)(k * d), sizeof *r);
  if (!r) return NULL;
  double density = 1.0 / sqrt((double)d);
  float v = (float)(sqrt(1.0 / density) / sqrt((double)k));
  uint64_t s = seed * 0x2545F4914F6CDD1Dull + 0x5851F42D4C957F2Dull;
  for (int64_t i = 0; i < k * d; i++) {
    uint64_t z = splitmix(&s);
    double u = (double)(z >> 11) * 0x1.0p-53;
    if (density >= 1 || u < density) r[i] = (splitmix(&s) & 1) ? v : -v;
  }
  return r;
}

/* ---------------------------------------------------------------- greedy coreset */
#define CS_LANES 8          /* projected rows padded to a multiple of this */
#define CS_GRAIN 2048       /* rows per pool chunk */
#define CS_MARGIN 1.001f    /* the pruning test's safety factor on 4 d(x, a)^2 */

static float sqdist(const float *a, const float *b, int64_t kp) {
  float s[CS_LANES] = {0};
  for (int64_t j = 0; j < kp; j += CS_LANES)
    for (int l = 0; l < CS_LANES; l++) {
      float t = a[j + l] - b[j + l];
      s[l] += t * t;
    }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

typedef struct {
  /* projection: rows (n x d) -> p (n x kp) through the CSR of proj */
  const float *rows;
  int64_t d, k, kp;
  const int64_t *rp;       /* row pointers (k + 1) */
  const int32_t *col;
  const float *val;
  float *p;
} proj_ctx;

static void proj_rows(void *pc, int64_t b, int64_t e, int tid) {
  (void)tid;
  const proj_ctx *c = pc;
  for (int64_t i = b; i < e; i++) {
    const float *x = c->rows + i * c->d;
    float *o = c->p + i * c->kp;
    for (int64_t j = 0; j < c->k; j++) {
      float s = 0;
      for (int64_t t = c->rp[j]; t < c->rp[j + 1]; t++) s += c->val[t] * x[c->col[t]];
      o[j] = s;
    }
    for (int64_t j = c->k; j < c->kp; j++) o[j] = 0;
  }
}

typedef struct {
  const float *p;
  int64_t n, kp, m;
  float *mind;             /* squared distance to the nearest centre */
  int32_t *asg;            /* which centre (position in idx) gave it */
  const int64_t *idx;
  int64_t t;               /* the new centre is idx[t] */
  float thr;               /* its own squared distance to the earlier centres (t > 0) */
  float *cval;             /* per chunk: largest mind, first row reaching it */
  int64_t *cidx;
  float *memo;             /* per thread: |c - centre a|^2, valid when stamp == t + 1 */
  int32_t *stamp;
} cs_ctx;

static void cs_step(void *pc, int64_t b, int64_t e, int tid) {
  const cs_ctx *c = pc;
  const float *ctr = c->p + c->idx[c->t] * c->kp;
  float *memo = c->memo + (int64_t)tid * c->m;
  int32_t *stamp = c->stamp + (int64_t)tid * c->m;
  float bv = -INFINITY;
  int64_t bi = b;
  for (int64_t i = b; i < e; i++) {
    float md = c->mind[i];
    bool skip = false;
    if (c->t > 0) {
      /* d(x, c) >= d(c, a) - d(x, a) > d(x, a) when d(c, a) > 2 d(x, a): no update */
      float lim = 4.0f * md * CS_MARGIN;
      if (c->thr > lim) skip = true;
      else {
        int32_t a = c->asg[i];
        if (stamp[a] != (int32_t)(c->t + 1)) {
          memo[a] = sqdist(ctr, c->p + c->idx[a] * c->kp, c->kp);
          stamp[a] = (int32_t)(c->t + 1);
        }
        skip = memo[a] > lim;
      }
    }
    if (!skip) {
      float dd = sqdist(c->p + i * c->kp, ctr, c->kp);
      if (c->t == 0 || dd < md) {
        c->mind[i] = md = dd;
        c->asg[i] = (int32_t)c->t;
      }
    }
    if (md > bv) { bv = md; bi = i; }
  }
  c->cval[b / CS_GRAIN] = bv;
  c->cidx[b / CS_GRAIN] = bi;
}

vg_status vg_patchcore_coreset(const float *rows, int64_t n, int64_t d, const float *proj, int64_t k, int64_t start,
                               int64_t m, int64_t *idx) {
  if (n < 1 || d < 1 || k < 1 || m < 1 || m > n || start < 0 || start >= n || m > INT32_MAX - 2)
    return vg_fail(VG_ERR_ARG, "patchcore: coreset of %lld of %lld rows (start %lld, %lld components): bad sizes",
                   (long long)m, (long long)n, (long long)start, (long long)k);
  int64_t kp = (k + CS_LANES - 1) / CS_LANES * CS_LANES, nnz = 0;
  for (int64_t i = 0; i < k * d; i++) nnz += proj[i] != 0;
  int nth = vg_num_threads();
  int64_t nch = (n + CS_GRAIN - 1) / CS_GRAIN;
  int64_t *rp = malloc(sizeof *rp * (size_t)(k + 1));
  int32_t *col = malloc(sizeof *col * (size_t)(nnz + 1)), *asg = malloc(sizeof *asg * (size_t)n);
  float *val = malloc(sizeof *val * (size_t)(nnz + 1)), *p = malloc(sizeof *p * (size_t)(n * kp));
  float *mind = malloc(sizeof *mind * (size_t)n), *cval = malloc(sizeof *cval * (size_t)nch);
  float *memo = malloc(sizeof *memo * (size_t)(nth * m));
  int32_t *stamp = calloc((size_t)(nth * m), sizeof *stamp);
  int64_t *cidx = malloc(sizeof *cidx * (size_t)nch);
  vg_status st = VG_OK;
  if (!rp || !col || !asg || !val || !p || !mind || !cval || !memo || !stamp || !cidx) {
    st = vg_fail(VG_ERR_NOMEM, "patchcore: out of memory for the coreset of %lld x %lld rows (%.1f GiB projected)",
                 (long long)n, (long long)d, (double)n * (double)kp * 4 / 1073741824.0);
    goto out;
  }
  nnz = 0;
  for (int64_t j = 0; j < k; j++) {
    rp[j] = nnz;
    for (int64_t c = 0; c < d; c++)
      if (proj[j * d + c] != 0) { col[nnz] = (int32_t)c; val[nnz++] = proj[j * d + c]; }
  }
  rp[k] = nnz;
  proj_ctx pc = {.rows = rows, .d = d, .k = k, .kp = kp, .rp = rp, .col = col, .val = val, .p = p};
  vg_parallel_for(n, 256, proj_rows, &pc);
  for (int64_t i = 0; i < n; i++) { mind[i] = INFINITY; asg[i] = 0; }
  idx[0] = start;
  cs_ctx c = {.p = p, .n = n, .kp = kp, .m = m, .mind = mind, .asg = asg, .idx = idx, .cval = cval, .cidx = cidx,
              .memo = memo, .stamp = stamp};
  for (int64_t t = 0; t + 1 < m; t++) {
    c.t = t;
    vg_parallel_for(n, CS_GRAIN, cs_step, &c);
    float bv = cval[0];
    int64_t bi = cidx[0];
    for (int64_t q = 1; q < nch; q++)
      if (cval[q] > bv) { bv = cval[q]; bi = cidx[q]; }
    idx[t + 1] = bi;
    c.thr = bv;
    mind[bi] = 0;
    asg[bi] = (int32_t)(t + 1);
  }
out:
  free(rp); free(col); free(asg); free(val); free(p); free(mind); free(cval); free(memo); free(stamp); free(cidx);
  return st;
}

/* ---------------------------------------------------------------- nearest neighbour */
#define NN_QB 1024          /* query rows per GEMM block */
#define NN_BB 2048          /* bank rows per GEMM block */

typedef struct {
  const float *s;          /* qb x bb dot products */
  const float *qn, *bn;    /* |q|^2 of the block's queries, |b|^2 of its bank rows */
  int64_t bb, b0;
  float *best;
  int64_t *bidx;
} nn_ctx;

static void nn_rows(void *pc, int64_t b, int64_t e, int tid) {
  (void)tid;
  const nn_ctx *c = pc;
  for (int64_t r = b; r < e; r++) {
    const float *s = c->s + r * c->bb;
    float best = c->best[r], qn = c->qn[r];
    int64_t bi = c->bidx[r];
    for (int64_t j = 0; j < c->bb; j++) {
      float v = (-2.0f * s[j] + qn) + c->bn[j];
      if (v < 0) v = 0;   /* clamp_min(0) before the comparison, as torch's min over the clamped values */
      if (v < best) { best = v; bi = c->b0 + j; }
    }
    c->best[r] = best;
    c->bidx[r] = bi;
  }
}

static void sq_norms(const float *x, int64_t n, int64_t d, float *out) {
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
    out[i] = (float)s;
  }
}

vg_status vg_patchcore_nearest(const float *q, int64_t nq, const float *bank, int64_t nb, int64_t d,
                               const float *bank_norm, float *dist, int64_t *idx) {
  if (nq < 0 || nb < 1 || d < 1)
    return vg_fail(VG_ERR_ARG, "patchcore: nearest neighbours of %lld rows in a bank of %lld rows of %lld: bad sizes",
                   (long long)nq, (long long)nb, (long long)d);
  float *qn = malloc(sizeof *qn * (size_t)(nq + 1)), *bn = bank_norm ? NULL : malloc(sizeof *bn * (size_t)nb);
  int64_t *bi = malloc(sizeof *bi * (size_t)(nq + 1));
  if (!qn || (!bank_norm && !bn) || !bi) {
    free(qn); free(bn); free(bi);
    return vg_fail(VG_ERR_NOMEM, "patchcore: out of memory (nearest neighbours)");
  }
  if (!bank_norm) { sq_norms(bank, nb, d, bn); bank_norm = bn; }
  sq_norms(q, nq, d, qn);
  vg_status st = VG_OK;
  for (int64_t i = 0; i < nq; i++) { dist[i] = INFINITY; bi[i] = 0; }
  for (int64_t q0 = 0; q0 < nq && st == VG_OK; q0 += NN_QB) {
    int64_t qb = nq - q0 < NN_QB ? nq - q0 : NN_QB;
    vg_tensor *qt = vg_tensor_wrap_host((void *)(q + q0 * d), VG_F32, 2, (int64_t[]){qb, d});
    for (int64_t b0 = 0; b0 < nb && st == VG_OK; b0 += NN_BB) {
      int64_t bb = nb - b0 < NN_BB ? nb - b0 : NN_BB;
      vg_tensor *bt = vg_tensor_wrap_host((void *)(bank + b0 * d), VG_F32, 2, (int64_t[]){bb, d});
      vg_scope_begin();
      vg_tensor *s = qt && bt ? vg_matmul(qt, vg_transpose(bt, 0, 1)) : NULL;
      if (!s) st = vg_last_status() != VG_OK ? vg_last_status() : vg_fail(VG_ERR_NOMEM, "patchcore: matmul");
      else {
        nn_ctx c = {.s = vg_f32(s), .qn = qn + q0, .bn = bank_norm + b0, .bb = bb, .b0 = b0, .best = dist + q0,
                    .bidx = bi + q0};
        vg_parallel_for(qb, 16, nn_rows, &c);
      }
      vg_scope_end();
      vg_tensor_free(bt);
    }
    vg_tensor_free(qt);
  }
  for (int64_t i = 0; i < nq; i++) {
    dist[i] = sqrtf(dist[i]);
    if (idx) idx[i] = bi[i];
  }
  free(qn); free(bn); free(bi);
  return st;
}
