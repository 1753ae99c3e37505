/* bench_flows.c — forward+backward of a FastFlow-R18 layer-1 flow: 8 AllInOne blocks,
 * C = 64, 64x64, conv3x3 subnet (hidden 64), clamp 2, softplus, hard permutation.
 * Loss = mean(0.5 sum z^2 - logdet) (FastFlow's). Compare with tools/bench_flow_torch.py.
 * Env: VIGIL_BENCH_BATCH (32), VIGIL_BENCH_THREADS (2), VIGIL_BENCH_ITERS (3). */
#include "flows/flows.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int envi(const char *k, int d) { const char *v = getenv(k); return v ? atoi(v) : d; }

int main(void) {
  int B = envi("VIGIL_BENCH_BATCH", 32), T = envi("VIGIL_BENCH_THREADS", 2), iters = envi("VIGIL_BENCH_ITERS", 3);
  vg_set_num_threads(T);
  vg_flow_subnet_cfg cfg = {.k = 3, .hidden = 64, .seed = 1};
  vg_nn_module *inn = vg_flow_sequence_new(3, (int64_t[]){64, 64, 64});
  for (int i = 0; i < 8; i++)
    vg_flow_append_allinone(inn, -1, 0, (vg_flow_subnet){vg_flow_subnet_conv, &cfg},
                            (vg_flow_allinone_opts){.affine_clamping = 2.0, .seed = (uint64_t)i});
  vg_tensor *x = vg_randn(4, (int64_t[]){B, 64, 64, 64}, 3);
  double best = 1e30, tot = 0;
  for (int it = 0; it <= iters; it++) {
    double t0 = now();
    vg_scope_begin();
    vg_tensor *ld;
    vg_tensor *z = vg_flow_forward(inn, x, 0, NULL, false, true, &ld);
    vg_tensor *loss = vg_mean_all(vg_sub(vg_scale(vg_sum(vg_mul(z, z), 3, (int[]){1, 2, 3}, false), 0.5f), ld));
    vg_nn_zero_grad(inn);
    vg_backward(loss);
    vg_scope_end();
    double dt = now() - t0;
    if (it > 0) { best = dt < best ? dt : best; tot += dt; }
    printf("iter %d: %.1f ms%s\n", it, dt * 1e3, it == 0 ? " (warm-up)" : "");
  }
  printf("vigil flows fwd+bwd: batch %d, %d threads: mean %.1f ms, best %.1f ms per fwd+bwd\n", B, T, tot / iters * 1e3, best * 1e3);
  vg_tensor_free(x);
  vg_nn_free(inn);
  return 0;
}
