/* tensor_autograd — the engine in 50 lines: tensors, a module, autograd, an optimizer.
 * A two-layer MLP learns y = sin(3 x) on [-1, 1] by Adam on the mean squared error; each
 * step lives in a scope, so the intermediates and the tape are freed at its end.
 *   ./tensor_autograd    -> the loss before and after; exit status 1 if it did not drop 10x */
#include <math.h>
#include <stdio.h>
#include <vigil.h>

int main(void) {
  enum { N = 64, STEPS = 300 };
  float xs[N], ys[N];
  for (int i = 0; i < N; i++) { xs[i] = -1.0f + 2.0f * i / (N - 1); ys[i] = sinf(3.0f * xs[i]); }
  vg_tensor *x = vg_from_data(VG_F32, 2, (int64_t[]){N, 1}, xs);   /* outside a scope: heap, ours */
  vg_tensor *y = vg_from_data(VG_F32, 2, (int64_t[]){N, 1}, ys);

  vg_nn_module *net = vg_nn_sequential_new(3, (vg_nn_module *[]){
      vg_nn_linear_new(1, 32, true, 1), vg_nn_gelu_new(), vg_nn_linear_new(32, 1, true, 2)});
  vg_nn_list ps = vg_nn_named_parameters(net);                      /* "0.weight", "0.bias", ... */
  vg_optim *opt = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 1e-2));
  vg_optim_add_group(opt, ps.n, ps.tensors, NULL);

  double first = 0, last = 0;
  for (int step = 0; step < STEPS; step++) {
    vg_scope_begin();
    vg_tensor *loss = vg_mse_loss(vg_nn_forward(net, x), y);        /* records the tape */
    if (!loss) { fprintf(stderr, "%s\n", vg_last_error()); return 2; }
    vg_optim_zero_grad(opt);
    vg_backward(loss);                                              /* p->grad += dloss/dp */
    vg_optim_step(opt);
    last = vg_item(loss);
    if (step == 0) first = last;
    vg_scope_end();                                                 /* frees loss, activations, tape */
  }
  printf("tensor_autograd: %d parameters, mse %.5f -> %.5f after %d Adam steps\n",
         (int)vg_nn_num_params(net, true), first, last, STEPS);
  vg_optim_free(opt);
  vg_nn_list_free(&ps);
  vg_nn_free(net);
  vg_tensor_free(x);
  vg_tensor_free(y);
  return last < first / 10 ? 0 : 1;
}
