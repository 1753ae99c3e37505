/* smoke.c — `vigil smoke`: the main job until the methods land: trains a small conv
 * net on random data for a few steps and prints the loss curve and step time, so a
 * newcomer sees the engine (ops, autograd, threads, scopes) work end to end. */
#include "cli/args.h"
#include "cli/opts.h"
#include "cli/cli.h"
#include "tensor/tensor.h"
#include "autograd/autograd.h"
#include "tensor/parallel.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <math.h>
#include <string.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

const vg_cmd_spec vg_cmd_smoke = {
  .name = "smoke", .opts = (const vg_opt[]){{0}}, .max_pos = 1, .dash_number_pos = true,
  .usage = "usage: vigil smoke [N]\n"
           "trains a small PDN-like conv net (batch 8, 64x64, random data) for N steps (default 60) and prints\n"
           "the loss curve and step time: the engine (ops, autograd, threads, scopes) end to end.\n"};

int vg_cli_smoke(int argc, char **argv) {
  int steps = 60;
  const char *pos[1] = {NULL};
  int prc = vg_opts_parse(&vg_cmd_smoke, argc, argv, NULL, pos, NULL);
  if (prc >= 0) return prc;
  if (pos[0] && !vg_arg_int("smoke", "N", pos[0], 1, 1000000, &steps)) return 2;
  printf("vigil smoke: isa %s, %d threads, %d steps of a PDN-like conv net (batch 8, 64x64)\n",
         vg_isa_name(vg_cpu_isa()), vg_num_threads(), steps);
  int64_t s1[4] = {32, 3, 4, 4}, s2[4] = {64, 32, 3, 3}, s3[4] = {16, 64, 3, 3};
  vg_tensor *w[3] = {vg_tensor_new(VG_F32, 4, s1), vg_tensor_new(VG_F32, 4, s2), vg_tensor_new(VG_F32, 4, s3)};
  for (int i = 0; i < 3; i++) {
    float fan = (float)(w[i]->shape[1] * w[i]->shape[2] * w[i]->shape[3]);
    vg_uniform_(w[i], -1.0f / sqrtf(fan), 1.0f / sqrtf(fan), (uint64_t)i + 1);
    vg_requires_grad_(w[i], true);
  }
  vg_tensor *x = vg_randn(4, (int64_t[]){8, 3, 64, 64}, 7);
  double t0 = now_s(), tfirst = 0;
  float first = 0, last = 0;
  for (int step = 0; step < steps; step++) {
    vg_scope_begin();
    vg_tensor *h = vg_relu(vg_conv2d(x, w[0], NULL, (vg_conv2d_opts){.ph = 3, .pw = 3}));
    h = vg_avg_pool2d(h, (vg_pool2d_opts){.kh = 2, .kw = 2, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .count_include_pad = true});
    h = vg_relu(vg_conv2d(h, w[1], NULL, (vg_conv2d_opts){.ph = 1, .pw = 1}));
    vg_tensor *y = vg_conv2d(h, w[2], NULL, (vg_conv2d_opts){.ph = 1, .pw = 1});
    /* a self-supervised target: the input's channel mean, resized to the output */
    vg_tensor *tgt = vg_interpolate_bilinear(vg_mean(x, 1, (int[]){1}, true), y->shape[2], y->shape[3], false);
    vg_tensor *loss = vg_mse_loss(y, vg_expand(tgt, 4, y->shape));
    for (int i = 0; i < 3; i++) vg_zero_grad_(w[i]);
    if (vg_backward(loss) != VG_OK) {
      fprintf(stderr, "vigil smoke: %s\n", vg_last_error());
      return 1;
    }
    for (int i = 0; i < 3; i++) vg_axpy_(w[i], -0.05f, w[i]->grad);
    float l = vg_item(loss);
    if (step == 0) {
      first = l;
      tfirst = now_s();
    }
    last = l;
    if (step % 10 == 0 || step == steps - 1) printf("  step %3d  loss %.5f\n", step, l);
    vg_scope_end();
  }
  double per = steps > 1 ? (now_s() - tfirst) / (steps - 1) : now_s() - t0;
  printf("loss %.5f -> %.5f, %.1f ms/step (after the first), arena %.1f MiB\n", first, last, per * 1e3,
         vg_scope_arena_bytes() / 1048576.0);
  for (int i = 0; i < 3; i++) vg_tensor_free(w[i]);
  vg_tensor_free(x);
  return last < first ? 0 : 1;
}
