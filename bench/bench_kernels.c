/* bench_kernels — the CPU kernels against the machine's measured fp32 FMA peak.
 *
 *   make bench            (or build/bench/bench_kernels [--quick] [--only SUBSTR] [--rounds N])
 *
 * 1. FMA peak: independent FMA chains (12 ymm / 24 zmm accumulators) on the best ISA,
 *    1 thread and all threads.
 * 2. GEMM 1024^3 and 2048^3 (NN, alpha 1, beta 0).
 * 3. The EfficientAD-S PDN conv layers forward at 256x256 input, batch 1 and 16.
 * Each case runs with 1 thread and with all threads; best-of-N wall time
 * (CLOCK_MONOTONIC). A case's buffers are allocated once and reused by all its runs (the
 * first run takes the page faults of the output: it is a best-of candidate only, so the
 * kernel is timed, not the allocator). --only SUBSTR runs the cases whose name contains it.
 * --rounds N (default 3) runs the whole sweep, peak included, N times one after another (a
 * round takes about 20 s here),
 * and ends with the median over the rounds of each case's fraction of its own round's peak
 * (with the range): a shared host's busy spells, which last seconds and slow every run
 * inside them, then move one round, not the figure. Prints a table per round and the
 * summary, and appends one JSON object per case and round to bench/results.jsonl (name,
 * threads, isa, round, ms, gflops, peak_gflops, peak_fraction), then one per case with
 * "bench":"kernels_summary" (rounds, peak_fraction median, min, max).
 * On a shared machine the wall time also counts other processes' turns; the "cpu"
 * columns (cpu_ms, cpu_peak_fraction) use the best process CPU time per thread instead,
 * for the peak as for the cases, so they measure the kernel itself under load (they
 * count the pool's brief spin-waits as work, so they never flatter a kernel). */
#include "tensor/cpu/conv.h"
#include "tensor/cpu/gemm.h"
#include "tensor/cpu/isa.h"
#include "base/threadpool.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double cpu_now(void) {   /* this process's CPU time, all threads */
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- FMA peak ---- */

#define PEAK_ITERS 4000000L   /* per chunk: ~25 ms at 38 GFLOP/s per core (AVX2) */

#if defined(__x86_64__)
#define ACC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
__attribute__((target("avx2,fma"))) static double fma_avx2(long iters) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
#define D(i) __m256 a##i = _mm256_set1_ps(1.0f + 0.01f * (i));
  ACC12(D)
#undef D
  for (long it = 0; it < iters; it++) {
#define F(i) a##i = _mm256_fmadd_ps(a##i, m, c);
    ACC12(F)
#undef F
    /* keep every chain alive and distinct */
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  __m256 s = _mm256_setzero_ps();
#define S(i) s = _mm256_add_ps(s, a##i);
  ACC12(S)
#undef S
  float o[8];
  _mm256_storeu_ps(o, s);
  return (double)o[0] + o[7];
}

#define ACC24(X) ACC12(X) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"))) static double fma_avx512(long iters) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#define D(i) __m512 a##i = _mm512_set1_ps(1.0f + 0.01f * (i));
  ACC24(D)
#undef D
  for (long it = 0; it < iters; it++) {
#define F(i) a##i = _mm512_fmadd_ps(a##i, m, c);
    ACC24(F)
#undef F
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    __asm__ volatile("" : "+v"(a12), "+v"(a13), "+v"(a14), "+v"(a15), "+v"(a16), "+v"(a17));
    __asm__ volatile("" : "+v"(a18), "+v"(a19), "+v"(a20), "+v"(a21), "+v"(a22), "+v"(a23));
  }
  __m512 s = _mm512_setzero_ps();
#define S(i) s = _mm512_add_ps(s, a##i);
  ACC24(S)
#undef S
  float o[16];
  _mm512_storeu_ps(o, s);
  return (double)o[0] + o[15];
}
#endif

static double fma_scalar(long iters) {
  volatile float m = 0.999999f, c = 1e-7f;
  float a[8];
  for (int i = 0; i < 8; i++) a[i] = 1.0f + 0.01f * (float)i;
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 8; i++) a[i] = a[i] * m + c;
  return (double)a[0] + a[7];
}

/* flops done by one fma_*(iters) call */
static double fma_flops(vg_isa isa, long iters) {
  switch (isa) {
    case VG_ISA_AVX512: return 2.0 * 16 * 24 * (double)iters;
    case VG_ISA_AVX2: return 2.0 * 8 * 12 * (double)iters;
    case VG_ISA_SCALAR: return 2.0 * 8 * (double)iters;
  }
  return 0;
}

static volatile double sink;

static void peak_task(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  vg_isa isa = *(const vg_isa *)ctx;
  for (int64_t i = b; i < e; i++) {
    switch (isa) {
#if defined(__x86_64__)
      case VG_ISA_AVX512: sink += fma_avx512(PEAK_ITERS / 2); break;
      case VG_ISA_AVX2: sink += fma_avx2(PEAK_ITERS); break;
#else
      case VG_ISA_AVX512: case VG_ISA_AVX2:
#endif
      case VG_ISA_SCALAR: sink += fma_scalar(PEAK_ITERS / 4); break;
    }
  }
}

/* GFLOP/s by wall time; *cpu_gf by CPU time per thread */
static double measure_peak(vg_isa isa, int threads, double *cpu_gf) {
  vg_set_num_threads(threads);
  const long iters = isa == VG_ISA_AVX512 ? PEAK_ITERS / 2 : isa == VG_ISA_AVX2 ? PEAK_ITERS : PEAK_ITERS / 4;
  const int64_t chunks = 4 * (int64_t)threads;
  double best = 1e30, best_cpu = 1e30;
  for (int r = 0; r < 10; r++) {        /* best of 10: other load only ever slows it */
    double t = now(), c = cpu_now();
    vg_parallel_for(chunks, 1, peak_task, &isa);
    t = now() - t;
    c = (cpu_now() - c) / threads;
    if (t < best) best = t;
    if (c < best_cpu) best_cpu = c;
  }
  *cpu_gf = fma_flops(isa, iters) * (double)chunks / best_cpu * 1e-9;
  return fma_flops(isa, iters) * (double)chunks / best * 1e-9;
}

/* ---- cases ---- */

static FILE *jsonl;
static const char *isa_name;
static double peak[2];   /* [0]: 1 thread, [1]: all threads */
static double cpu_peak[2];
static int all_threads;
static const char *only;   /* --only: run the cases whose name contains this */
static int selected(const char *name) { return !only || strstr(name, only); }

/* every case's fraction of its round's peak, per round (the summary's input) */
#define MAX_CASES 64
#define MAX_ROUNDS 16
static struct { char name[48]; int threads; double frac[MAX_ROUNDS]; int n; } results[MAX_CASES];
static int nresults, round_no;

static void record(const char *name, int threads, double frac) {
  int i = 0;
  while (i < nresults && (strcmp(results[i].name, name) || results[i].threads != threads)) i++;
  if (i == nresults) {
    if (nresults == MAX_CASES) return;
    snprintf(results[i].name, sizeof results[i].name, "%s", name);
    results[i].threads = threads;
    nresults++;
  }
  if (results[i].n < MAX_ROUNDS) results[i].frac[results[i].n++] = frac;
}

static void report(const char *name, int threads, double ms, double cpu_ms, double flops) {
  const double gf = flops / (ms * 1e-3) * 1e-9, pk = peak[threads == 1 ? 0 : 1];
  const double cgf = flops / (cpu_ms * 1e-3) * 1e-9, cpk = cpu_peak[threads == 1 ? 0 : 1];
  printf("%-34s %3d %-7s %10.2f %9.1f %7.1f%% %10.2f %7.1f%%\n", name, threads, isa_name, ms, gf,
         100.0 * gf / pk, cpu_ms, 100.0 * cgf / cpk);
  fflush(stdout);
  record(name, threads, gf / pk);
  if (jsonl) {
    fprintf(jsonl,
            "{\"bench\":\"kernels\",\"name\":\"%s\",\"threads\":%d,\"isa\":\"%s\",\"round\":%d,\"ms\":%.3f,"
            "\"gflops\":%.2f,\"peak_gflops\":%.2f,\"peak_fraction\":%.4f,\"cpu_ms\":%.3f,"
            "\"cpu_peak_gflops\":%.2f,\"cpu_peak_fraction\":%.4f,\"flops\":%.0f,\"unix_time\":%lld}\n",
            name, threads, isa_name, round_no, ms, gf, pk, gf / pk, cpu_ms, cpk, cgf / cpk, flops,
            (long long)time(NULL));
    fflush(jsonl);
  }
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void summary(int rounds) {
  printf("\nsummary over %d round%s: median (min - max) of each case's fraction of its round's peak\n", rounds,
         rounds == 1 ? "" : "s");
  printf("%-34s %3s %-7s %8s %18s\n", "case", "thr", "isa", "median", "range");
  for (int i = 0; i < nresults; i++) {
    double v[MAX_ROUNDS];
    const int n = results[i].n;
    memcpy(v, results[i].frac, sizeof(double) * (size_t)n);
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    const double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    printf("%-34s %3d %-7s %7.1f%% %8.1f%% - %5.1f%%\n", results[i].name, results[i].threads, isa_name, 100.0 * med,
           100.0 * v[0], 100.0 * v[n - 1]);
    if (jsonl)
      fprintf(jsonl,
              "{\"bench\":\"kernels_summary\",\"name\":\"%s\",\"threads\":%d,\"isa\":\"%s\",\"rounds\":%d,"
              "\"peak_fraction\":%.4f,\"peak_fraction_min\":%.4f,\"peak_fraction_max\":%.4f,\"unix_time\":%lld}\n",
              results[i].name, results[i].threads, isa_name, n, med, v[0], v[n - 1], (long long)time(NULL));
  }
  fflush(stdout);
}

static float *rand_buf(size_t n, uint64_t seed) {
  float *p = malloc(n * sizeof(float));
  if (!p) { fprintf(stderr, "bench_kernels: out of memory (%zu floats)\n", n); exit(1); }
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = (float)((seed >> 40) & 0xffff) / 65536.0f - 0.5f;
  }
  return p;
}

/* best-of wall time in ms of fn, and in *cpu_ms the best CPU time per thread (threads
 * = the pool size in use); reps from the first run's cost */
typedef void (*case_fn)(void *ctx);
static double time_case(case_fn fn, void *ctx, double budget_s, int threads, double *cpu_ms) {
  double t = now(), c = cpu_now();
  fn(ctx);
  double best = now() - t, best_cpu = (cpu_now() - c) / threads;
  int reps = best > budget_s ? 1 : best * 3 > budget_s ? 2 : 4;
  for (int r = 0; r < reps; r++) {
    t = now(); c = cpu_now();
    fn(ctx);
    t = now() - t;
    c = (cpu_now() - c) / threads;
    if (t < best) best = t;
    if (c < best_cpu) best_cpu = c;
  }
  *cpu_ms = best_cpu * 1e3;
  return best * 1e3;
}

typedef struct { int64_t n; float *A, *B, *C; } gemm_case;
static void run_gemm(void *ctx) {
  gemm_case *g = ctx;
  vg_sgemm(0, 0, g->n, g->n, g->n, 1.0f, g->A, g->n, g->B, g->n, 0.0f, g->C, g->n);
}

typedef struct { vg_conv2d_geom g; float *x, *w, *b, *y; } conv_case;
static void run_conv(void *ctx) {
  conv_case *c = ctx;
  vg_cpu_conv2d_fwd(&c->g, c->x, c->w, c->b, c->y);
}

static void run_round(int quick) {
  const vg_isa isa = vg_cpu_isa();
  printf("\n== round %d\n", round_no);
  peak[0] = measure_peak(isa, 1, &cpu_peak[0]);
  if (all_threads > 1) peak[1] = measure_peak(isa, all_threads, &cpu_peak[1]);
  else { peak[1] = peak[0]; cpu_peak[1] = cpu_peak[0]; }
  printf("bench_kernels: isa %s, %d threads; fp32 FMA peak %.1f GFLOP/s (1 thread), %.1f GFLOP/s (%d threads)\n",
         isa_name, all_threads, peak[0], peak[1], all_threads);
  printf("fp32 FMA peak by CPU time: %.1f GFLOP/s (1 thread), %.1f GFLOP/s (%d threads)\n\n",
         cpu_peak[0], cpu_peak[1], all_threads);
  printf("%-34s %3s %-7s %10s %9s %8s %10s %8s\n", "case", "thr", "isa", "ms", "GFLOP/s", "of peak",
         "cpu ms/thr", "cpu pk");
  const int tcount = all_threads > 1 ? 2 : 1;
  const int tlist[2] = {1, all_threads};
  for (int ti = 0; ti < tcount; ti++) {
    vg_set_num_threads(tlist[ti]);
    report("fma_peak", tlist[ti], 1.0, 1.0 * peak[ti] / cpu_peak[ti], peak[ti] * 1e6);
  }

  static const int64_t gemm_n[] = {1024, 2048};
  for (int gi = 0; gi < 2; gi++) {
    const int64_t n = gemm_n[gi];
    char name[64];
    snprintf(name, sizeof name, "gemm_%lld", (long long)n);
    if ((quick && n > 1024) || !selected(name)) continue;
    gemm_case g = {n, rand_buf((size_t)(n * n), 1), rand_buf((size_t)(n * n), 2), rand_buf((size_t)(n * n), 3)};
    for (int ti = 0; ti < tcount; ti++) {
      vg_set_num_threads(tlist[ti]);
      double cpu_ms, ms = time_case(run_gemm, &g, 1.5, tlist[ti], &cpu_ms);
      report(name, tlist[ti], ms, cpu_ms, 2.0 * (double)n * n * n);
    }
    free(g.A); free(g.B); free(g.C);
  }

  /* EfficientAD-S PDN (Table 6): conv1 3->128 k4 p3 on 256x256, avgpool 2x2 s2 p1,
   * conv2 128->256 k4 p3, avgpool, conv3 256->256 k3 p1, conv4 256->384 k4 p0. */
  static const struct { const char *name; int64_t c, hw, oc, k, p; } layers[] = {
    {"pdn_s_conv1", 3, 256, 128, 4, 3},
    {"pdn_s_conv2", 128, 130, 256, 4, 3},
    {"pdn_s_conv3", 256, 67, 256, 3, 1},
    {"pdn_s_conv4", 256, 67, 384, 4, 0},
  };
  static const int64_t batches[] = {1, 16};
  for (int bi = 0; bi < 2; bi++) {
    if (quick && batches[bi] > 1) continue;
    for (int li = 0; li < 4; li++) {
      char name[64];
      snprintf(name, sizeof name, "%s_b%lld", layers[li].name, (long long)batches[bi]);
      if (!selected(name)) continue;
      conv_case c = {.g = {.n = batches[bi], .c = layers[li].c, .h = layers[li].hw, .w = layers[li].hw,
                           .oc = layers[li].oc, .kh = layers[li].k, .kw = layers[li].k, .sh = 1,
                           .sw = 1, .ph = layers[li].p, .pw = layers[li].p, .dh = 1, .dw = 1,
                           .groups = 1}};
      vg_conv2d_geom_init(&c.g);
      const vg_conv2d_geom *g = &c.g;
      c.x = rand_buf((size_t)(g->n * g->c * g->h * g->w), 4);
      c.w = rand_buf((size_t)(g->oc * g->c * g->kh * g->kw), 5);
      c.b = rand_buf((size_t)g->oc, 6);
      c.y = malloc((size_t)(g->n * g->oc * g->oh * g->ow) * sizeof(float));
      const double flops = 2.0 * g->n * g->oc * g->oh * g->ow * g->c * g->kh * g->kw;
      for (int ti = 0; ti < tcount; ti++) {
        vg_set_num_threads(tlist[ti]);
        double cpu_ms, ms = time_case(run_conv, &c, 1.5, tlist[ti], &cpu_ms);
        report(name, tlist[ti], ms, cpu_ms, flops);
      }
      free(c.x); free(c.w); free(c.b); free(c.y);
    }
  }
  vg_set_num_threads(0);
}

int main(int argc, char **argv) {
  int quick = 0, rounds = 3;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc && atoi(argv[i + 1]) >= 1 && atoi(argv[i + 1]) <= MAX_ROUNDS)
      rounds = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_kernels [--quick] [--only SUBSTR] [--rounds N (1..%d, default 3)]\n", MAX_ROUNDS);
      return 2;
    }
  }
  isa_name = vg_isa_name(vg_cpu_isa());
  all_threads = vg_num_threads();
  jsonl = fopen("bench/results.jsonl", "a");
  if (!jsonl) fprintf(stderr, "bench_kernels: cannot append to bench/results.jsonl; table only\n");
  for (round_no = 1; round_no <= rounds; round_no++) run_round(quick);
  summary(rounds);
  if (jsonl) fclose(jsonl);
  return 0;
}
