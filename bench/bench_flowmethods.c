/* bench_flowmethods — FastFlow and CFLOW-AD training / inference time per image at
 * 256x256 on VIGIL_THREADS (default 2) threads, R18 and WRN50-2, random backbones.
 * Compare with tools/bench_flowmethods_torch.py (same models in PyTorch CPU).
 * CFLOW uses hard permutations here (soft SO(C) init takes minutes for C = 2048 on 2
 * threads; the per-fibre cost differs only by the C x C rotation vs a gather).
 *   build/bench/bench_flowmethods [reps] */
#include "methods/cflow/cflow.h"
#include "methods/fastflow/fastflow.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run(const char *method, const char *cfg_text, int B, int reps) {
  vg_json *cfg = NULL;
  vg_json_parse(cfg_text, strlen(cfg_text), NULL, &cfg);
  vg_method *m = NULL;
  double t0 = now();
  vg_status st = vg_method_create(method, cfg, &m);
  vg_json_free(cfg);
  if (st != VG_OK) { printf("%s: %s\n", method, vg_last_error()); return; }
  double tinit = now() - t0;
  vg_tensor *x = vg_tensor_new(VG_F32, 4, (int64_t[]){B, 3, 256, 256});
  vg_uniform_(x, -2.0f, 2.0f, 1);
  float *maps = malloc(sizeof(float) * (size_t)B * 256 * 256), scores[64];
  double loss, ttr = 1e30, tin = 1e30;
  for (int r = 0; r <= reps; r++) {   /* r = 0: warm-up */
    t0 = now();
    st = m->ops->train_step(m, x, r, &loss);
    double t = now() - t0;
    if (st != VG_OK) { printf("%s train: %s\n", method, vg_last_error()); break; }
    if (r && t < ttr) ttr = t;
    t0 = now();
    st = m->ops->predict(m, x, maps, scores);
    t = now() - t0;
    if (st != VG_OK) { printf("%s predict: %s\n", method, vg_last_error()); break; }
    if (r && t < tin) tin = t;
  }
  printf("%-9s %-60s batch %d: init %.1f s, train %.1f ms/image, inference %.1f ms/image (best of %d)\n", method,
         cfg_text, B, tinit, 1e3 * ttr / B, 1e3 * tin / B, reps);
  fflush(stdout);
  free(maps);
  vg_tensor_free(x);
  vg_method_free(m);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 2;
  const char *th = getenv("VIGIL_THREADS");
  vg_set_num_threads(th ? atoi(th) : 2);
  run("fastflow", "{\"backbone\":\"resnet18\"}", 4, reps);
  run("cflow", "{\"backbone\":\"resnet18\",\"permute_soft\":false,\"map_norm\":\"anomalib\"}", 4, reps);
  run("fastflow", "{\"backbone\":\"wide_resnet50_2\"}", 4, reps);
  run("cflow", "{\"backbone\":\"wide_resnet50_2\",\"permute_soft\":false,\"map_norm\":\"anomalib\"}", 4, reps);
  return 0;
}
