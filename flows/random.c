/* random.c — the random matrices the blocks start from (flows.h): permutations and
 * Haar-distributed rotations in SO(n) (scipy's special_ortho_group law). */
#include "flows/flows.h"
#include "base/threadpool.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void vg_flow_random_permutation(int64_t n, uint64_t seed, int64_t *perm) {
  vg_tensor *p = vg_randperm(n, seed);
  vg_to_host(p, VG_I64, perm);
  if (vg_scope_depth() == 0) vg_tensor_free(p);
}

/* Row r of H evolves on its own: H starts as I and reflector n (from the Gaussian draws
 * alone) maps every row by row[n:] = -D[n] * (row[n:] - (row[n:] . x) x). So the
 * reflectors are made first and the rows are independent items (threaded, ORTHO_RB rows
 * per sweep of a reflector; each row's arithmetic is the same for any thread count). */
#define ORTHO_RB 16   /* rows per sweep of the reflectors (16 rows of 2048 doubles: 256 KB, in L2) */
typedef struct {
  int64_t dim;
  const double *X, *D;   /* X: reflector n at X + n * dim (dim - n entries) */
  double *H;
} ortho_ctx;

typedef double ortho_v4 __attribute__((vector_size(32)));   /* 4 lanes, IEEE per lane */
#define V4_LOAD(v, p) memcpy(&(v), (p), sizeof(ortho_v4))

static inline __attribute__((always_inline)) void ortho_rows_body(const ortho_ctx *c, int64_t b, int64_t e) {
  int64_t dim = c->dim;
  for (int64_t r0 = b; r0 < e; r0 += ORTHO_RB) {
    int nr = e - r0 < ORTHO_RB ? (int)(e - r0) : ORTHO_RB;
    for (int64_t n = 0; n < dim - 1; n++) {
      int64_t m = dim - n;
      const double *restrict x = c->X + n * dim;
      double hx[ORTHO_RB];
      for (int k = 0; k < nr; k++) {
        /* 4 chains (lane j sums i = j mod 4), then (a0 + a1) + (a2 + a3) */
        ortho_v4 a = {0, 0, 0, 0};
        const double *row = c->H + (r0 + k) * dim + n;
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
          ortho_v4 rv, xv;
          V4_LOAD(rv, row + i);
          V4_LOAD(xv, x + i);
          a += rv * xv;
        }
        for (; i < m; i++) a[0] += row[i] * x[i];
        hx[k] = (a[0] + a[1]) + (a[2] + a[3]);
      }
      double d = c->D[n];
      ortho_v4 nd = {-d, -d, -d, -d};
      for (int k = 0; k < nr; k++) {
        double *restrict row = c->H + (r0 + k) * dim + n, h = hx[k];
        ortho_v4 hv = {h, h, h, h};
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
          ortho_v4 rv, xv;
          V4_LOAD(rv, row + i);
          V4_LOAD(xv, x + i);
          rv = nd * (rv - hv * xv);
          memcpy(row + i, &rv, sizeof rv);
        }
        for (; i < m; i++) row[i] = -d * (row[i] - h * x[i]);
      }
    }
  }
}

/* the same code compiled for AVX2 (plain vector mul/add, no FMA contraction in C11 mode:
 * the same bits as the generic build) where the CPU has it */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void ortho_rows_avx2(const ortho_ctx *c, int64_t b, int64_t e) {
  ortho_rows_body(c, b, e);
}
#endif

static void ortho_rows(void *vc, int64_t b, int64_t e, int tid) {
  (void)tid;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (__builtin_cpu_supports("avx2")) { ortho_rows_avx2(vc, b, e); return; }
#endif
  ortho_rows_body(vc, b, e);
}

void vg_flow_special_ortho(int64_t dim, uint64_t seed, double *H) {
  int64_t nn = dim * dim;
  vg_tensor *g = vg_randn(1, &nn, seed);
  float *gv = malloc(sizeof(float) * (size_t)nn);
  double *X = malloc(sizeof(double) * (size_t)nn), *D = malloc(sizeof(double) * (size_t)dim);
  if (!gv || !X || !D) VG_ABORT("special_ortho(%lld): out of memory", (long long)dim);
  vg_to_host(g, VG_F32, gv);
  if (vg_scope_depth() == 0) vg_tensor_free(g);
  for (int64_t n = 0; n < dim - 1; n++) {
    int64_t m = dim - n;
    double norm2 = 0, *x = X + n * dim;
    for (int64_t i = 0; i < m; i++) { x[i] = gv[n * dim + i]; norm2 += x[i] * x[i]; }
    double x0 = x[0];
    D[n] = x[0] != 0 ? (x[0] > 0 ? 1.0 : -1.0) : 1.0;
    x[0] += D[n] * sqrt(norm2);
    double s = sqrt((norm2 - x0 * x0 + x[0] * x[0]) / 2.0);
    for (int64_t i = 0; i < m; i++) x[i] /= s;
  }
  for (int64_t i = 0; i < nn; i++) H[i] = 0;
  for (int64_t i = 0; i < dim; i++) H[i * dim + i] = 1;
  ortho_ctx c = {dim, X, D, H};
  vg_parallel_for(dim, 16, ortho_rows, &c);
  double prod = 1;
  for (int64_t i = 0; i < dim - 1; i++) prod *= D[i];
  D[dim - 1] = ((dim - 1) % 2 ? -1.0 : 1.0) * prod;
  /* H = (D * H.T).T : row i scaled by D[i] */
  for (int64_t r = 0; r < dim; r++)
    for (int64_t c2 = 0; c2 < dim; c2++) H[r * dim + c2] *= D[r];
  free(D); free(X); free(gv);
}
