/* GEMM kernels: every ISA path (and the scalar path with other ISAs' tile shapes) against
 * the double-accumulating reference over edge shapes, transposes, strides, alpha/beta;
 * bit-identical results for 1, 2 and 3 threads; nested calls from pool tasks.
 * Tolerance: |got - want| <= 1e-5 * sqrt(K + 1) * (1 + |want|), data in [-1, 1]. */
#include "tests/vgtest.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/isa.h"
#include "base/threadpool.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static float *rand_buf(int64_t n) {
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = frand();
  return p;
}

/* max over C of |got - want| / tol; NaN anywhere gives +inf */
static double err_ratio(const float *got, const float *want, int64_t M, int64_t N, int64_t ldc,
                        int64_t K) {
  double worst = 0, tol0 = 1e-5 * sqrt((double)K + 1);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double g = got[i * ldc + j], w = want[i * ldc + j];
      if (isnan(g) || isnan(w)) return INFINITY;
      double r = fabs(g - w) / (tol0 * (1 + fabs(w)));
      if (r > worst) worst = r;
    }
  return worst;
}

typedef struct { int64_t M, N, K; } shape;

/* One shape, one transpose combo, four alpha/beta variants (beta = 0 over NaN garbage),
 * padded leading dimensions. Returns the worst error ratio. */
static double check_case(shape s, int ta, int tb) {
  const int64_t pad = 3;
  const int64_t ar = ta ? s.K : s.M, ac = ta ? s.M : s.K;
  const int64_t br = tb ? s.N : s.K, bc = tb ? s.K : s.N;
  const int64_t lda = ac + pad, ldb = bc + pad, ldc = s.N + pad;
  float *A = rand_buf(ar * lda), *B = rand_buf(br * ldb);
  float *C0 = rand_buf(s.M * ldc);
  float *C = malloc((size_t)(s.M * ldc + 1) * sizeof(float)), *R = malloc((size_t)(s.M * ldc + 1) * sizeof(float));
  static const float ab[4][2] = {{1.0f, 0.0f}, {0.5f, 0.0f}, {1.0f, 1.0f}, {-2.0f, 0.25f}};
  double worst = 0;
  for (int v = 0; v < 4; v++) {
    float alpha = ab[v][0], beta = ab[v][1];
    for (int64_t i = 0; i < s.M * ldc; i++) C[i] = R[i] = beta == 0.0f ? NAN : C0[i];
    /* padding columns of C must survive untouched */
    vg_sgemm(ta, tb, s.M, s.N, s.K, alpha, A, lda, B, ldb, beta, C, ldc);
    vg_sgemm_ref(ta, tb, s.M, s.N, s.K, alpha, A, lda, B, ldb, beta, R, ldc);
    double e = err_ratio(C, R, s.M, s.N, ldc, s.K);
    for (int64_t i = 0; i < s.M; i++)
      for (int64_t j = s.N; j < ldc; j++)
        if (!(isnan(C[i * ldc + j]) ? beta == 0.0f : C[i * ldc + j] == C0[i * ldc + j])) e = INFINITY;
    if (e > worst) worst = e;
  }
  free(A); free(B); free(C0); free(C); free(R);
  return worst;
}

static const shape shapes[] = {
  {1, 1, 1}, {1, 1, 7}, {7, 1, 1}, {1, 13, 5}, {5, 17, 3}, {6, 16, 1}, {6, 16, 4},
  {12, 32, 9}, {7, 17, 5}, {13, 31, 29}, {33, 65, 17}, {100, 50, 300}, {145, 35, 20},
  {20, 600, 10}, {31, 4200, 3}, {289, 3, 2}, {2, 3, 777}, {29, 97, 800},
};

static void run_shapes(const char *label) {
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    for (int t = 0; t < 4; t++) {
      double e = check_case(shapes[i], t >> 1, t & 1);
      VG_CHECK(e <= 1.0, "gemm %s %c%c %lldx%lldx%lld vs ref: worst err/tol %.3g", label,
               (t >> 1) ? 'T' : 'N', (t & 1) ? 'T' : 'N', (long long)shapes[i].M,
               (long long)shapes[i].N, (long long)shapes[i].K, e);
    }
}

static void check_degenerate(void) {
  float A[4] = {1, 2, 3, 4}, B[4] = {1, 2, 3, 4};
  float C[6] = {NAN, NAN, NAN, NAN, 7, 7};
  vg_sgemm(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.0f, C, 2);          /* K = 0, beta = 0 */
  VG_CHECK(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0 && C[4] == 7, "gemm K=0 beta=0 zeroes C (over NaN)");
  float D[4] = {1, 2, 3, 4};
  vg_sgemm(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.5f, D, 2);          /* K = 0: C = beta*C */
  VG_CHECK(D[0] == 0.5f && D[3] == 2.0f, "gemm K=0 scales C by beta");
  float E[4] = {1, 2, 3, 4};
  vg_sgemm(0, 0, 2, 2, 2, 0.0f, A, 2, B, 2, 2.0f, E, 2);          /* alpha = 0 */
  VG_CHECK(E[0] == 2.0f && E[3] == 8.0f, "gemm alpha=0 gives beta*C");
  float F[2] = {5, 6};
  vg_sgemm(0, 0, 0, 2, 2, 1.0f, A, 2, B, 2, 0.0f, F, 2);          /* M = 0 */
  vg_sgemm(0, 0, 2, 0, 2, 1.0f, A, 2, B, 2, 0.0f, F, 2);          /* N = 0 */
  VG_CHECK(F[0] == 5 && F[1] == 6, "gemm M=0 / N=0 touch nothing");
}

/* Same inputs, 1 / 2 / 3 / 5 / 8 threads: bit-identical (the task split follows the
 * thread count; the summation order must not). */
static void check_threads(int64_t M, int64_t N, int64_t K, int ta, int tb) {
  static const int counts[5] = {1, 2, 3, 5, 8};
  float *A = rand_buf(M * K), *B = rand_buf(K * N), *C0 = rand_buf(M * N);
  float *C[5];
  int same = 1;
  for (int t = 0; t < 5; t++) {
    C[t] = malloc((size_t)(M * N) * sizeof(float));
    memcpy(C[t], C0, (size_t)(M * N) * sizeof(float));
    vg_set_num_threads(counts[t]);
    vg_sgemm(ta, tb, M, N, K, 0.75f, A, ta ? M : K, B, tb ? K : N, 0.5f, C[t], N);
    if (t > 0 && memcmp(C[0], C[t], (size_t)(M * N) * sizeof(float))) same = 0;
  }
  vg_set_num_threads(0);
  VG_CHECK(same, "gemm %s %lldx%lldx%lld bit-identical with 1, 2, 3, 5, 8 threads",
           vg_isa_name(vg_cpu_isa()), (long long)M, (long long)N, (long long)K);
  for (int t = 0; t < 5; t++) free(C[t]);
  free(A); free(B); free(C0);
}

/* vg_gemm_pack_strided against its definition, every sliver width the micro-kernels use,
 * unit-stride x, unit-stride k and both strided, full and ragged last slivers, offsets:
 *   dst[(s*kc + k)*w + t] = P[x0 + s*w + t][k0 + k], 0 past xn; nothing past the slivers. */
static void check_pack(void) {
  static const int widths[] = {4, 6, 8, 12, 16, 32};
  static const int64_t xns[] = {1, 5, 8, 12, 16, 31, 32, 67, 96};
  static const int64_t kcs[] = {1, 7, 40};
  const int64_t X = 140, Kt = 60, ld = 71;          /* P is X x Kt, stored with stride ld */
  float *buf = rand_buf(X * ld + ld * Kt);
  int64_t bad = 0, cases = 0;
  for (int lay = 0; lay < 3; lay++) {
    /* P[x][k] = 0: buf[x + k*ld] (B not transposed), 1: buf[x*ld + k] (A not
     * transposed), 2: buf[x*ld + 2k] (neither stride 1) */
    const vg_gemm_strided st = {buf, lay == 0 ? 1 : ld, lay == 0 ? ld : lay == 1 ? 1 : 2};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
      for (size_t xi = 0; xi < sizeof xns / sizeof xns[0]; xi++)
        for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++) {
          const int w = widths[wi];
          const int64_t xn = xns[xi], kc = kcs[ki], x0 = 3, k0 = 5;
          const int64_t sl = (xn + w - 1) / w, n = sl * kc * w;
          float *dst = malloc((size_t)(n + 8) * sizeof(float));
          for (int64_t i = 0; i < n + 8; i++) dst[i] = NAN;
          vg_gemm_pack_strided(&st, x0, xn, k0, kc, w, dst);
          for (int64_t q = 0; q < sl; q++)
            for (int64_t k = 0; k < kc; k++)
              for (int t = 0; t < w; t++) {
                const int64_t x = q * w + t;
                const float want = x < xn ? buf[(x0 + x) * st.sx + (k0 + k) * st.sk] : 0.0f;
                if (memcmp(&dst[(q * kc + k) * w + t], &want, sizeof want)) bad++;
              }
          for (int64_t i = n; i < n + 8; i++) if (!isnan(dst[i])) bad++;
          free(dst);
          cases++;
        }
  }
  VG_CHECK(bad == 0, "gemm strided packer == definition over %lld cases (widths 4..32, three "
           "layouts, ragged slivers): %lld wrong values", (long long)cases, (long long)bad);
  free(buf);
}

/* A packed once by vg_gemm_pack_a, reused for several B operands (other N, other
 * k_begin-free problems, bias, beta): bit-identical to packing inside vg_gemm_run. */
static void check_prepacked(const char *label) {
  static const int64_t mk[][2] = {{1, 1}, {13, 7}, {150, 401}, {300, 800}, {29, 1000}};
  static const int64_t ns[] = {1, 33, 700};
  int same = 1, cases = 0;
  for (size_t c = 0; c < sizeof mk / sizeof mk[0]; c++) {
    const int64_t M = mk[c][0], K = mk[c][1];
    for (int ta = 0; ta < 2; ta++) {
      float *A = rand_buf(M * K), *bias = rand_buf(M);
      vg_gemm_strided sa = {A, ta ? 1 : K, ta ? M : 1};
      vg_gemm_problem base = {.M = M, .K = K, .pack_a = vg_gemm_pack_strided, .a_ctx = &sa};
      /* one float past an allocation: the packed A needs no alignment */
      float *pa0 = malloc((vg_gemm_packed_a_floats(M, K) + 1) * sizeof(float)), *pa = pa0 + 1;
      vg_gemm_pack_a(&base, pa);
      for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        const int64_t N = ns[ni];
        float *B = rand_buf(K * N), *C0 = rand_buf(M * N);
        float *C1 = malloc((size_t)(M * N) * sizeof(float)), *C2 = malloc((size_t)(M * N) * sizeof(float));
        vg_gemm_strided sb = {B, 1, N};
        vg_gemm_problem p = base;
        p.N = N; p.pack_b = vg_gemm_pack_strided; p.b_ctx = &sb; p.alpha = 0.5f;
        p.beta = ni == 1 ? 0.0f : 0.25f; p.row_bias = ni == 2 ? bias : NULL; p.relu = ni == 1;
        p.ldc = N;
        memcpy(C1, C0, (size_t)(M * N) * sizeof(float));
        memcpy(C2, C0, (size_t)(M * N) * sizeof(float));
        p.C = C1; vg_gemm_run(&p);
        p.C = C2; p.a_packed = pa; vg_gemm_run(&p);
        if (memcmp(C1, C2, (size_t)(M * N) * sizeof(float))) same = 0;
        cases++;
        free(B); free(C0); free(C1); free(C2);
      }
      free(pa0); free(A); free(bias);
    }
  }
  VG_CHECK(same, "gemm %s prepacked A == packed inside the run (%d cases, bias/beta/relu)",
           label, cases);
}

/* the epilogue test hook: counts its calls per element (at the tile's (i0, j0): a tile seen
 * twice, a missed tile or a wrong offset show) and adds 1 to C there, so a call before the
 * last K block shows in the values too */
typedef struct { int *count; int64_t M, N; } epi_rec;
static void epi_mark(const void *ctx, float *c, int64_t ldc, int64_t i0, int64_t j0, int m, int n) {
  const epi_rec *e = ctx;
  for (int r = 0; r < m; r++)
    for (int j = 0; j < n; j++) {
      if (i0 + r < e->M && j0 + j < e->N) e->count[(i0 + r) * e->N + j0 + j]++;
      c[r * ldc + j] += 1.0f;
    }
}

/* B packed once by vg_gemm_pack_b (odd M / N / K incl. 1 and non-multiples of the tile and
 * of the K block, both B layouts, k_begin, an unaligned-free 64-byte buffer), reused for
 * several A operands: bit-identical to packing inside vg_gemm_run, within tolerance of
 * vg_sgemm_ref, the same for 1 and 3 threads; the epilogue sees every element once. */
static void check_prepacked_b(const char *label) {
  static const int64_t nk[][2] = {{1, 1}, {1, 7}, {13, 1}, {17, 5}, {33, 29}, {65, 385}, {700, 33}, {31, 800}};
  static const int64_t ms[] = {1, 7, 13, 150};
  int same = 1, threads_same = 1, epi_once = 1, fits = 1, cases = 0;
  double worst = 0;
  for (size_t c = 0; c < sizeof nk / sizeof nk[0]; c++) {
    const int64_t N = nk[c][0], K = nk[c][1], kb = 2;   /* B rows k_begin.. of a taller matrix */
    for (int tb = 0; tb < 2; tb++) {
      float *B = rand_buf((K + kb) * N);
      /* op(B) = B (K x N, ldb N) or B^T (B stored N x K, ldb K): P[j][k] = op(B)[k][j] */
      vg_gemm_strided sb = tb ? (vg_gemm_strided){B, K + kb, 1} : (vg_gemm_strided){B, 1, N};
      vg_gemm_problem base = {.N = N, .K = K, .k_begin = kb, .pack_b = vg_gemm_pack_strided, .b_ctx = &sb};
      size_t nf = vg_gemm_packed_b_floats(N, K);
      float *pb = aligned_alloc(64, (nf * sizeof(float) + 63) / 64 * 64);
      vg_gemm_pack_b(&base, pb);
      fits &= vg_gemm_packed_b_fits(pb, N, K) && !vg_gemm_packed_b_fits(pb, N + 1, K) &&
              !vg_gemm_packed_b_fits(pb, N, K + 1);
      for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
        const int64_t M = ms[mi];
        float *A = rand_buf(M * (K + kb)), *bias = rand_buf(M), *C0 = rand_buf(M * N);
        float *C1 = malloc((size_t)(M * N) * sizeof(float)), *C2 = malloc((size_t)(M * N) * sizeof(float));
        float *C3 = malloc((size_t)(M * N) * sizeof(float)), *R = malloc((size_t)(M * N) * sizeof(float));
        int *cnt = calloc((size_t)(M * N), sizeof(int));
        vg_gemm_strided sa = {A, K + kb, 1};
        vg_gemm_problem p = base;
        epi_rec er = {cnt, M, N};
        p.M = M; p.pack_a = vg_gemm_pack_strided; p.a_ctx = &sa; p.alpha = mi == 1 ? -0.5f : 1.0f;
        p.beta = mi == 2 ? 0.25f : 0.0f; p.row_bias = mi == 3 ? bias : NULL; p.relu = mi == 2;
        p.ldc = N; p.epi = mi == 0 ? NULL : epi_mark; p.epi_ctx = &er;
        memcpy(C1, C0, (size_t)(M * N) * sizeof(float));
        memcpy(C2, C0, (size_t)(M * N) * sizeof(float));
        memcpy(C3, C0, (size_t)(M * N) * sizeof(float));
        p.C = C1; vg_gemm_run(&p);
        memset(cnt, 0, (size_t)(M * N) * sizeof(int));
        p.C = C2; p.b_packed = pb; vg_gemm_run(&p);
        for (int64_t i = 0; i < M * N; i++) epi_once &= cnt[i] == (p.epi ? 1 : 0);
        int nt = vg_num_threads();
        vg_set_num_threads(nt == 1 ? 3 : 1);
        p.C = C3; vg_gemm_run(&p);
        vg_set_num_threads(nt);
        if (memcmp(C1, C2, (size_t)(M * N) * sizeof(float))) same = 0;
        if (memcmp(C2, C3, (size_t)(M * N) * sizeof(float))) threads_same = 0;
        /* the reference: alpha A B + beta C0 (+ row bias, relu, the epilogue's marks) */
        memcpy(R, C0, (size_t)(M * N) * sizeof(float));
        vg_sgemm_ref(0, tb, M, N, K, p.alpha, A + kb, K + kb, tb ? B + kb : B + kb * N, tb ? K + kb : N, p.beta, R, N);
        for (int64_t i = 0; i < M; i++)
          for (int64_t j = 0; j < N; j++) {
            float v = R[i * N + j] + (p.row_bias ? bias[i] : 0.0f);
            if (p.relu) v = v <= 0.0f ? 0.0f : v;
            if (p.epi) v += 1.0f;
            R[i * N + j] = v;
          }
        double e = err_ratio(C2, R, M, N, N, K);
        if (e > worst) worst = e;
        cases++;
        free(A); free(bias); free(C0); free(C1); free(C2); free(C3); free(R); free(cnt);
      }
      free(pb); free(B);
    }
  }
  VG_CHECK(same, "gemm %s prepacked B == packed inside the run (%d cases: alpha/beta/row bias/relu/epilogue)",
           label, cases);
  VG_CHECK(threads_same, "gemm %s prepacked B: 1 and 3 threads bit-identical", label);
  VG_CHECK(worst <= 1.0, "gemm %s prepacked B vs vg_sgemm_ref: worst err/tol %.3g", label, worst);
  VG_CHECK(epi_once, "gemm %s epilogue: every element of C exactly once, after the last K block", label);
  VG_CHECK(fits, "gemm %s vg_gemm_packed_b_fits: its own N, K only", label);
}

/* the epilogue on the K == 0 / alpha == 0 path (C = beta C, then the epilogue per row) */
static void check_epi_degenerate(void) {
  const int64_t M = 5, N = 9;
  float C[45];
  int cnt[45] = {0};
  for (int i = 0; i < 45; i++) C[i] = 2.0f;
  epi_rec er = {cnt, M, N};
  vg_gemm_strided s = {C, 1, 1};
  vg_gemm_problem p = {.M = M, .N = N, .K = 0, .pack_a = vg_gemm_pack_strided, .a_ctx = &s,
                       .pack_b = vg_gemm_pack_strided, .b_ctx = &s, .alpha = 1.0f, .beta = 0.5f, .C = C, .ldc = N,
                       .epi = epi_mark, .epi_ctx = &er};
  vg_gemm_run(&p);
  int ok = 1;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) ok &= cnt[i * N + j] == 1 && C[i * N + j] == 2.0f;
  VG_CHECK(ok, "gemm K == 0: beta C, then the epilogue once per element");
}

/* vg_sgemm called from inside pool tasks (runs serially there, on that thread's scratch). */
typedef struct { const float *A, *B; float *C; int64_t M, N, K; } nested_ctx;
static void nested_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  nested_ctx *c = vctx;
  for (int64_t i = b; i < e; i++)
    vg_sgemm(0, 1, c->M, c->N, c->K, 1.0f, c->A + i * c->M * c->K, c->K, c->B, c->K, 0.0f,
             c->C + i * c->M * c->N, c->N);
}
static void check_nested(void) {
  const int64_t T = 6, M = 40, N = 70, K = 300;
  nested_ctx c = {rand_buf(T * M * K), rand_buf(N * K), malloc((size_t)(T * M * N) * sizeof(float)), M, N, K};
  float *R = malloc((size_t)(T * M * N) * sizeof(float));
  vg_parallel_for(T, 1, nested_task, &c);
  for (int64_t i = 0; i < T; i++)
    vg_sgemm(0, 1, M, N, K, 1.0f, c.A + i * M * K, K, c.B, K, 0.0f, R + i * M * N, N);
  VG_CHECK(!memcmp(c.C, R, (size_t)(T * M * N) * sizeof(float)), "gemm called from pool tasks == top-level calls");
  free((void *)c.A); free((void *)c.B); free(c.C); free(R);
}

int main(void) {
  vg_isa best = vg_cpu_isa_max();
  printf("# best ISA here: %s\n", vg_isa_name(best));
  check_degenerate();
  check_pack();
  for (int isa = best; isa >= 0; isa--) {
    vg_cpu_set_isa((vg_isa)isa);
    run_shapes(vg_isa_name((vg_isa)isa));
    check_prepacked(vg_isa_name((vg_isa)isa));
    check_prepacked_b(vg_isa_name((vg_isa)isa));
  }
  /* the scalar path with the AVX2 and AVX-512 tiles: the driver's edge logic for those
   * geometries runs on any CPU */
  vg_cpu_set_isa(VG_ISA_SCALAR);
  vg_gemm_set_scalar_tile(6, 16);
  run_shapes("scalar-tile6x16");
  vg_gemm_set_scalar_tile(12, 32);
  run_shapes("scalar-tile12x32");
  check_prepacked("scalar-tile12x32");
  check_prepacked_b("scalar-tile12x32");
  check_epi_degenerate();
  vg_gemm_set_scalar_tile(0, 0);
  check_threads(150, 530, 300, 0, 0);
  vg_cpu_set_isa(best);
  check_threads(301, 1100, 520, 0, 0);
  check_threads(77, 333, 1000, 1, 1);
  check_threads(500, 40, 700, 0, 1);     /* N narrower than one group: M ranges */
  check_threads(50, 1500, 400, 1, 0);    /* ragged N groups, two K blocks */
  check_nested();
  if (vg_test_long()) {
    shape big = {1024, 1024, 1024};
    double e = check_case(big, 0, 0);
    VG_CHECK(e <= 1.0, "gemm %s 1024^3 vs ref: worst err/tol %.3g", vg_isa_name(best), e);
    check_threads(1024, 2048, 777, 0, 1);
  }
  return vg_test_finish();
}
