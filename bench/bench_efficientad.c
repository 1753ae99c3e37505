/* bench_efficientad — EfficientAD-S and -M inference (Algorithm 2) on the CPU, timed as
 * the paper's Appendix E times it: teacher (normalised by its channel mean/std) +
 * student + autoencoder, both maps padded by 4 and resized to 256x256, the quantile
 * normalisation folded into one multiply-add per map, combined map 0.5 (st + ae),
 * image score = max of the combined map; no padding in the PDNs. Random weights and a
 * random 256x256 input; statistics and quantiles are nonzero dummies so that both
 * normalisations run. Latency = batch 1 (mean and median of the timed runs after the
 * warm-up), throughput = batch 16 (16 * runs / summed time). VIGIL_THREADS threads
 * (default 2). Compare with tools/bench_efficientad_torch.py (anomalib's torch model,
 * same protocol, same JSON keys with "impl":"torch").
 *   build/bench/bench_efficientad [reps] [warmup] [b16_reps] [sizes]
 * defaults 3 1 1 SM (about a minute on 2 threads); sizes "S", "M" or "SM"; b16_reps 0
 * skips the throughput (quick latency checks, profiling).
 * Appends one JSON line per figure to bench/results.jsonl. */
#include "methods/efficientad/efficientad.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static FILE *jsonl;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void emit(const char *name, int threads, double value, const char *unit) {
  if (jsonl)
    fprintf(jsonl, "{\"bench\":\"efficientad\",\"impl\":\"vigil\",\"name\":\"%s\",\"threads\":%d,\"value\":%.4f,"
            "\"unit\":\"%s\",\"unix_time\":%lld}\n", name, threads, value, unit, (long long)time(NULL));
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One Algorithm-2 pass on x (N x 3 x 256 x 256): maps on the host in map (N x 256 x 256),
 * image scores in score (N). Returns false with the library's message on failure. */
static bool infer(vg_effad_model *m, const vg_tensor *x, float *map, float *score) {
  vg_scope_begin();
  vg_tensor *st = NULL, *ae = NULL;
  vg_status s = vg_effad_maps(m, x, true, &st, &ae);
  vg_tensor *comb = s == VG_OK ? vg_scale(vg_add(st, ae), 0.5f) : NULL;
  vg_tensor *mx = comb ? vg_amax(comb, 2, (int[]){2, 3}, false) : NULL;
  bool ok = mx && vg_to_host(comb, VG_F32, map) == VG_OK && vg_to_host(mx, VG_F32, score) == VG_OK;
  vg_scope_end();
  return ok;
}

/* Times runs passes of batch B after warmup passes; t[] gets each pass in seconds. */
static bool time_batch(vg_effad_model *m, int B, int warmup, int runs, double *t) {
  vg_tensor *x = vg_rand(4, (int64_t[]){B, 3, 256, 256}, 7);
  float *map = malloc(sizeof(float) * (size_t)B * 256 * 256), *score = malloc(sizeof(float) * (size_t)B);
  bool ok = x && map && score;
  for (int r = 0; ok && r < warmup + runs; r++) {
    double t0 = now_s();
    ok = infer(m, x, map, score);
    if (r >= warmup) t[r - warmup] = now_s() - t0;
  }
  if (!ok) fprintf(stderr, "bench_efficientad: %s\n", vg_last_error());
  free(map);
  free(score);
  vg_tensor_free(x);
  return ok;
}

static void set_dummy_statistics(vg_effad_model *m) {
  float *mean = (float *)m->mean->storage->data, *sd = (float *)m->std->storage->data;
  for (int64_t c = 0; c < m->out_channels; c++) {
    mean[c] = 0.01f * (float)(c % 7);
    sd[c] = 0.5f + 0.01f * (float)(c % 5);
  }
  m->qa_st = 0.1f; m->qb_st = 0.9f;
  m->qa_ae = 0.2f; m->qb_ae = 1.1f;
}

typedef struct { double b1_mean, b1_median, b16_img_s; int64_t params; } result;

static bool run(vg_effad_size size, int threads, int reps, int warmup, int reps16, result *res) {
  const char *tag = size == VG_EFFAD_S ? "s" : "m";
  vg_effad_model *m = vg_effad_model_new(size, 384, false, 0);
  if (!m) { fprintf(stderr, "bench_efficientad: out of memory\n"); return false; }
  set_dummy_statistics(m);
  res->params = vg_nn_num_params(m->teacher, false) + vg_nn_num_params(m->student, false) +
                vg_nn_num_params(m->ae, false);
  double *t = malloc(sizeof(double) * (size_t)(reps > reps16 ? reps : reps16));   /* seconds */
  bool ok = t && time_batch(m, 1, warmup, reps, t);
  if (ok) {
    double sum = 0;
    for (int i = 0; i < reps; i++) sum += t[i];
    res->b1_mean = 1e3 * sum / reps;
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    res->b1_median = 1e3 * (reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]));
    /* the batch-1 runs warm the kernels up; batch 16 gets its own warm-up passes only when
     * asked for more than one run, to keep the default run short */
    res->b16_img_s = 0;
    if (reps16 > 0) ok = time_batch(m, 16, reps16 > 1 ? warmup : 0, reps16, t);
  }
  if (ok && reps16 > 0) {
    double sum = 0;
    for (int i = 0; i < reps16; i++) sum += t[i];
    res->b16_img_s = 16.0 * reps16 / sum;
  }
  if (ok) {
    char name[64];
    snprintf(name, sizeof name, "effad_%s_b1_latency_mean_ms", tag);
    emit(name, threads, res->b1_mean, "ms");
    snprintf(name, sizeof name, "effad_%s_b1_latency_median_ms", tag);
    emit(name, threads, res->b1_median, "ms");
    snprintf(name, sizeof name, "effad_%s_b16_throughput_img_s", tag);
    if (reps16 > 0) emit(name, threads, res->b16_img_s, "images/s");
    snprintf(name, sizeof name, "effad_%s_params", tag);
    emit(name, threads, (double)res->params, "parameters");
    if (jsonl) fflush(jsonl);
  }
  free(t);
  vg_effad_model_free(m);
  return ok;
}

int main(int argc, char **argv) {
  const int reps = argc > 1 ? atoi(argv[1]) : 3;
  const int warmup = argc > 2 ? atoi(argv[2]) : 1;
  const int reps16 = argc > 3 ? atoi(argv[3]) : 1;
  const char *sizes = argc > 4 ? argv[4] : "SM";
  if (reps < 1 || warmup < 0 || reps16 < 0) {
    fprintf(stderr, "usage: bench_efficientad [reps >= 1] [warmup >= 0] [b16_reps >= 0] [S|M|SM]\n");
    return 1;
  }
  const char *th = getenv("VIGIL_THREADS");
  const int threads = th ? atoi(th) : 2;
  vg_set_num_threads(threads);
  jsonl = fopen("bench/results.jsonl", "a");
  if (!jsonl) fprintf(stderr, "bench_efficientad: cannot append to bench/results.jsonl; table only\n");
  printf("bench_efficientad: %d threads, 256x256, batch 1: %d warm-up + %d timed, batch 16: %d timed\n",
         threads, warmup, reps, reps16);
  printf("%-12s %12s %12s %10s %14s\n", "model", "params", "b1 mean ms", "b1 med ms", "b16 img/s");
  int rc = 0;
  for (int i = 0; i < 2; i++) {
    vg_effad_size size = i == 0 ? VG_EFFAD_S : VG_EFFAD_M;
    if (!strchr(sizes, "SM"[i]) && !strchr(sizes, "sm"[i])) continue;
    result r;
    if (!run(size, threads, reps, warmup, reps16, &r)) { rc = 1; continue; }
    printf("%-12s %12lld %12.1f %10.1f %14.3f\n", i == 0 ? "EfficientAD-S" : "EfficientAD-M",
           (long long)r.params, r.b1_mean, r.b1_median, r.b16_img_s);
    fflush(stdout);
  }
  if (jsonl) fclose(jsonl);
  return rc;
}
