/* test_checkpoint.c — Vigil checkpoints: a run resumed from a checkpoint (model + Adam
 * state) continues bit-identically to the uninterrupted run; strict loading refuses
 * missing/unexpected/mis-shaped tensors and foreign files without touching the model. */
#include "tests/vgtest.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include <unistd.h>

static vg_nn_module *make_net(uint64_t seed) {
  return vg_nn_sequential_new(4, (vg_nn_module *[]){vg_nn_conv2d_new(3, 6, 3, 3, (vg_nn_conv2d_opts){.ph = 1, .pw = 1}, seed),
                                                     vg_nn_batchnorm2d_new(6, 1e-5f, 0.1f, true, true), vg_nn_relu_new(),
                                                     vg_nn_conv2d_new(6, 2, 1, 1, (vg_nn_conv2d_opts){0}, seed + 1)});
}

static vg_optim *make_opt(vg_nn_module *net) {
  vg_nn_list ps = vg_nn_named_parameters(net);
  vg_optim *o = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 1e-2));
  vg_optim_add_group(o, ps.n, ps.tensors, NULL);
  vg_nn_list_free(&ps);
  return o;
}

static void train(vg_nn_module *net, vg_optim *o, const vg_tensor *x, const vg_tensor *y, int steps) {
  for (int s = 0; s < steps; s++) {
    vg_scope_begin();
    vg_tensor *loss = vg_mse_loss(vg_nn_forward(net, x), y);
    vg_optim_zero_grad(o);
    vg_backward(loss);
    vg_optim_step(o);
    vg_scope_end();
  }
}

static bool same_state(const vg_nn_module *a, const vg_nn_module *b) {
  vg_nn_list la = vg_nn_state_dict(a), lb = vg_nn_state_dict(b);
  bool same = la.n == lb.n;
  for (int i = 0; same && i < la.n; i++)
    same = !strcmp(la.names[i], lb.names[i]) && la.tensors[i]->storage->nbytes == lb.tensors[i]->storage->nbytes &&
           !memcmp(vg_data(la.tensors[i]), vg_data(lb.tensors[i]), la.tensors[i]->storage->nbytes);
  vg_nn_list_free(&la);
  vg_nn_list_free(&lb);
  return same;
}

int main(void) {
  char path[] = "/tmp/vigil_ckpt_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  vg_tensor *x = vg_randn(4, (int64_t[]){2, 3, 8, 8}, 1), *y = vg_randn(4, (int64_t[]){2, 2, 8, 8}, 2);
  vg_nn_module *a = make_net(10);
  vg_optim *oa = make_opt(a);
  train(a, oa, x, y, 3);
  VG_CHECK(vg_nn_checkpoint_save(path, a, oa, "{\"lr\": 0.01, \"steps\": 3}") == VG_OK, "save: %s", vg_last_error());
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  VG_CHECK(access(tmp, F_OK) != 0, "no temp file left behind");
  train(a, oa, x, y, 4);

  vg_nn_module *b = make_net(99); /* other init: must be overwritten */
  vg_optim *ob = make_opt(b);
  char *cfg = NULL;
  VG_CHECK(vg_nn_checkpoint_load(path, b, ob, &cfg) == VG_OK, "load: %s", vg_last_error());
  VG_CHECK(cfg && !strcmp(cfg, "{\"lr\": 0.01, \"steps\": 3}"), "config round trip: %s", cfg ? cfg : "(null)");
  free(cfg);
  train(b, ob, x, y, 4);
  VG_CHECK(same_state(a, b), "resumed run (model + Adam moments + BN stats) is bit-identical to the uninterrupted one");

  /* strict refusals, model untouched */
  vg_nn_module *c = vg_nn_sequential_new(1, (vg_nn_module *[]){vg_nn_conv2d_new(3, 6, 3, 3, (vg_nn_conv2d_opts){.ph = 1, .pw = 1}, 5)});
  vg_nn_module *c0 = vg_nn_sequential_new(1, (vg_nn_module *[]){vg_nn_conv2d_new(3, 6, 3, 3, (vg_nn_conv2d_opts){.ph = 1, .pw = 1}, 5)});
  VG_CHECK(vg_nn_checkpoint_load(path, c, NULL, NULL) != VG_OK && strstr(vg_last_error(), "does not"),
           "unexpected tensors refused: %s", vg_last_error());
  VG_CHECK(same_state(c, c0), "a refused load changes nothing");
  vg_nn_module *d = vg_nn_sequential_new(1, (vg_nn_module *[]){vg_nn_conv2d_new(3, 5, 3, 3, (vg_nn_conv2d_opts){.ph = 1, .pw = 1}, 5)});
  VG_CHECK(vg_nn_checkpoint_load(path, d, NULL, NULL) != VG_OK && strstr(vg_last_error(), "shape"),
           "shape mismatch refused: %s", vg_last_error());
  vg_nn_module *e = make_net(7);
  vg_nn_sequential_append(e, vg_nn_linear_new(8, 2, true, 3));
  VG_CHECK(vg_nn_checkpoint_load(path, e, NULL, NULL) != VG_OK && strstr(vg_last_error(), "lacks"),
           "missing tensors refused: %s", vg_last_error());
  vg_tensor *t = vg_tensor_new(VG_F32, 1, (int64_t[]){3});
  VG_CHECK(vg_st_save(path, 1, (const char *[]){"x"}, &t, NULL) == VG_OK &&
               vg_nn_checkpoint_load(path, b, NULL, NULL) != VG_OK && strstr(vg_last_error(), "not a Vigil checkpoint"),
           "foreign safetensors refused: %s", vg_last_error());
  VG_CHECK(vg_nn_checkpoint_save(path, a, NULL, "{bad json") != VG_OK && strstr(vg_last_error(), "config"),
           "invalid config JSON refused: %s", vg_last_error());
  unlink(path);
  vg_tensor_free(t);
  vg_tensor_free(x);
  vg_tensor_free(y);
  vg_optim_free(oa);
  vg_optim_free(ob);
  vg_nn_free(a); vg_nn_free(b); vg_nn_free(c); vg_nn_free(c0); vg_nn_free(d); vg_nn_free(e);
  vg_scope_release();
  return vg_test_finish();
}
