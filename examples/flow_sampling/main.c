/* flow_sampling — a normalizing flow (FrEIA-style SequenceINN of AllInOne blocks with MLP
 * subnets) fitted by maximum likelihood to a 2-D Gaussian with mean (2, -1) and standard
 * deviations (0.5, 1.5), then sampled: z ~ N(0, I) run through the flow in reverse.
 *   ./flow_sampling   -> data and sample statistics; exit status 1 if they are far apart */
#include <math.h>
#include <stdio.h>
#include <vigil.h>

static vg_nn_module *subnet(int64_t c_in, int64_t c_out, void *user) {
  (void)user;
  static uint64_t seed = 100;
  return vg_flow_subnet_mlp_new(c_in, c_out, 32, seed++);   /* Linear, ReLU, Linear */
}

static void stats(const vg_tensor *t, double mean[2], double sd[2]) {
  int64_t n = t->shape[0];
  float buf[2 * 512];
  vg_to_host(t, VG_F32, buf);
  for (int c = 0; c < 2; c++) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) { s += buf[2 * i + c]; q += (double)buf[2 * i + c] * buf[2 * i + c]; }
    mean[c] = s / n;
    sd[c] = sqrt(q / n - mean[c] * mean[c]);
  }
}

int main(void) {
  enum { N = 512, STEPS = 200 };
  vg_nn_module *inn = vg_flow_sequence_new(1, (int64_t[]){2});
  for (int i = 0; i < 4; i++)
    vg_flow_append_allinone(inn, -1, 0, (vg_flow_subnet){subnet, NULL}, (vg_flow_allinone_opts){.seed = (uint64_t)i});
  vg_nn_list ps = vg_nn_named_parameters(inn);
  vg_optim *opt = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 1e-2));
  vg_optim_add_group(opt, ps.n, ps.tensors, NULL);

  /* data: x = (2, -1) + (0.5, 1.5) * e, e ~ N(0, I), a fixed set of N points */
  vg_tensor *e = vg_randn(2, (int64_t[]){N, 2}, 7);
  vg_tensor *sc = vg_from_data(VG_F32, 1, (int64_t[]){2}, (float[]){0.5f, 1.5f});
  vg_tensor *mu = vg_from_data(VG_F32, 1, (int64_t[]){2}, (float[]){2.0f, -1.0f});
  vg_tensor *x = vg_add(vg_mul(e, sc), mu);                           /* heap: no scope open */
  double nll = 0;
  for (int step = 0; step < STEPS; step++) {
    vg_scope_begin();
    vg_tensor *logdet;
    vg_tensor *z = vg_flow_forward(inn, x, 0, NULL, false, true, &logdet);
    /* negative log-likelihood per sample: -(log N(z) + log|det J|), averaged */
    vg_tensor *loss = vg_scale(vg_mean_all(vg_add(vg_flow_gaussian_logp(z), logdet)), -1.0f);
    if (!loss) { fprintf(stderr, "%s\n", vg_last_error()); return 2; }
    vg_optim_zero_grad(opt);
    vg_backward(loss);
    vg_optim_step(opt);
    nll = vg_item(loss);
    vg_scope_end();
  }
  vg_scope_begin();
  vg_tensor *z = vg_randn(2, (int64_t[]){N, 2}, 99);
  vg_tensor *s = vg_flow_forward(inn, z, 0, NULL, true, false, NULL);  /* reverse: samples */
  double dm[2], dsd[2], sm[2], ssd[2];
  stats(x, dm, dsd);
  stats(s, sm, ssd);
  vg_scope_end();
  printf("flow_sampling: nll %.3f after %d steps; data mean (%.2f, %.2f) sd (%.2f, %.2f); "
         "samples mean (%.2f, %.2f) sd (%.2f, %.2f)\n", nll, STEPS, dm[0], dm[1], dsd[0], dsd[1], sm[0], sm[1], ssd[0], ssd[1]);
  int ok = 1;
  for (int c = 0; c < 2; c++) ok &= fabs(sm[c] - dm[c]) < 0.3 && fabs(ssd[c] / dsd[c] - 1) < 0.3;
  vg_optim_free(opt);
  vg_nn_list_free(&ps);
  vg_nn_free(inn);
  vg_tensor_free(e); vg_tensor_free(sc); vg_tensor_free(mu); vg_tensor_free(x);
  return ok ? 0 : 1;
}
