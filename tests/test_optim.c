/* test_optim.c — optimizers, clip_grad_norm and LR schedules against torch 1.13
 * (tests/fixtures/nn/optim.vgfx, written by tools/gen_nn_fixtures.py).
 *
 * Optimizers: Linear(4,3)-ReLU-Linear(3,2) with the fixture's initial weights, MSE on a
 * fixed batch, 10 steps; every parameter after every step within 1e-6 relative of
 * torch's (atol 1e-7 for values near 0), and the optimizer state after 10 steps.
 * Schedules: the lr of two param groups after construction and each step(), as
 * doubles, within 1e-9 relative (torch computes them in double too). */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "nn/nn.h"
#include "tensor/internal.h"
#include "tensor/optim_upd.h"
#include <string.h>

static vg_fixture *FX;

static const vg_fx_tensor *need(const char *name) {
  const vg_fx_tensor *t = vg_fixture_get(FX, name);
  if (!t) {
    printf("NOT OK missing fixture tensor %s\n", name);
    exit(1);
  }
  return t;
}

static void copy_in(vg_tensor *dst, const char *name) {
  const vg_fx_tensor *f = need(name);
  VG_ASSERT(f->n == vg_numel(dst));
  memcpy(vg_f32(dst), f->data, sizeof(float) * (size_t)f->n);
}

static vg_nn_module *make_mlp(void) {
  vg_nn_module *m = vg_nn_sequential_new(3, (vg_nn_module *[]){vg_nn_linear_new(4, 3, true, 1), vg_nn_relu_new(),
                                                              vg_nn_linear_new(3, 2, true, 2)});
  const char *keys[4] = {"0.weight", "0.bias", "2.weight", "2.bias"};
  char buf[64];
  for (int i = 0; i < 4; i++) {
    snprintf(buf, sizeof buf, "init.%s", keys[i]);
    copy_in(vg_nn_get(m, keys[i]), buf);
  }
  return m;
}

static vg_tensor *fx_tensor(const char *name) {
  const vg_fx_tensor *f = need(name);
  return vg_from_data(VG_F32, f->ndim, f->shape, f->data);
}

/* flat copy of all parameters (torch's parameters() order) */
static int flat_params(const vg_nn_list *ps, float *out) {
  int k = 0;
  for (int i = 0; i < ps->n; i++) {
    int64_t n = vg_numel(ps->tensors[i]);
    memcpy(out + k, vg_f32(ps->tensors[i]), sizeof(float) * (size_t)n);
    k += (int)n;
  }
  return k;
}

static void loss_backward(vg_nn_module *m, const vg_tensor *X, const vg_tensor *Y) {
  vg_scope_begin();
  vg_tensor *loss = vg_mse_loss(vg_nn_forward(m, X), Y);
  vg_backward(loss);
  vg_scope_end();
}

typedef enum { CFG_SGD_NESTEROV, CFG_SGD_DAMP, CFG_SGD_PLAIN, CFG_ADAM, CFG_ADAM_AMS, CFG_ADAMW, CFG_ADAM_GROUPS } cfg;

static vg_optim *make_opt(const char *name, cfg c, vg_nn_list ps) {
  vg_optim *o = NULL;
  vg_optim_hparams h;
  switch (c) {
    case CFG_SGD_NESTEROV:
      h = vg_optim_defaults(VG_OPTIM_SGD, 0.1);
      h.momentum = 0.9, h.nesterov = true, h.weight_decay = 0.01;
      o = vg_optim_new(VG_OPTIM_SGD, h);
      break;
    case CFG_SGD_DAMP:
      h = vg_optim_defaults(VG_OPTIM_SGD, 0.05);
      h.momentum = 0.8, h.dampening = 0.3;
      o = vg_optim_new(VG_OPTIM_SGD, h);
      break;
    case CFG_SGD_PLAIN:
      h = vg_optim_defaults(VG_OPTIM_SGD, 0.2);
      h.weight_decay = 0.05;
      o = vg_optim_new(VG_OPTIM_SGD, h);
      break;
    case CFG_ADAM:
      h = vg_optim_defaults(VG_OPTIM_ADAM, 0.01);
      h.weight_decay = 0.1;
      o = vg_optim_new(VG_OPTIM_ADAM, h);
      break;
    case CFG_ADAM_AMS:
      h = vg_optim_defaults(VG_OPTIM_ADAM, 0.02);
      h.beta1 = 0.8, h.beta2 = 0.99, h.amsgrad = true;
      o = vg_optim_new(VG_OPTIM_ADAM, h);
      break;
    case CFG_ADAMW:
      h = vg_optim_defaults(VG_OPTIM_ADAMW, 0.01);
      h.weight_decay = 0.1;
      o = vg_optim_new(VG_OPTIM_ADAMW, h);
      break;
    case CFG_ADAM_GROUPS:
      h = vg_optim_defaults(VG_OPTIM_ADAM, 0.01);
      o = vg_optim_new(VG_OPTIM_ADAM, h);
      break;
  }
  if (c == CFG_ADAM_GROUPS) {
    vg_optim_hparams h2 = h;
    h2.lr = 0.03, h2.weight_decay = 0.05;
    VG_CHECK(vg_optim_add_group(o, 2, ps.tensors, NULL) == 0 && vg_optim_add_group(o, 2, ps.tensors + 2, &h2) == 1,
             "%s: two param groups", name);
  } else {
    VG_CHECK(vg_optim_add_group(o, ps.n, ps.tensors, NULL) == 0, "%s: one param group", name);
  }
  return o;
}

static void run_optim(const char *name, cfg c, const vg_tensor *X, const vg_tensor *Y, bool feed) {
  vg_nn_module *m = make_mlp();
  vg_nn_list ps = vg_nn_named_parameters(m);
  vg_optim *o = make_opt(name, c, ps);
  char key[96], what[128];
  snprintf(key, sizeof key, "%s.traj", name);
  const vg_fx_tensor *traj = need(key);
  int np = (int)traj->shape[1];
  float got[64];
  double worst = 0;
  int bad_step = -1;
  snprintf(key, sizeof key, "%s.grads", name);
  const vg_fx_tensor *tg = need(key);
  double scale = 0;
  for (int64_t i = 0; i < traj->n; i++) scale = fmax(scale, fabs(traj->data[i]));
  for (int s = 0; s < 10; s++) {
    vg_optim_zero_grad(o);
    if (feed) {
      for (int i = 0, k = 0; i < ps.n; i++) {
        vg_tensor *p = ps.tensors[i];
        if (!p->grad) p->grad = vg_tensor_new(VG_F32, p->ndim, p->shape);
        memcpy(vg_f32(p->grad), tg->data + (size_t)s * np + k, sizeof(float) * (size_t)vg_numel(p));
        k += (int)vg_numel(p);
      }
    } else {
      loss_backward(m, X, Y);
    }
    vg_optim_step(o);
    VG_ASSERT(flat_params(&ps, got) == np);
    const float *want = traj->data + (size_t)s * np;
    for (int i = 0; i < np; i++) {
      /* fed torch's grads: elementwise 1e-6 relative; own grads: 1e-6 of the
         parameters' scale (the grads themselves differ from torch's by float rounding) */
      double d = fabs((double)got[i] - want[i]), ref = feed ? fabs(want[i]) : scale;
      if (d > 1e-6 * ref && bad_step < 0) bad_step = s;
      double r = d / fmax(ref, 1e-30);
      if (r > worst) worst = r;
    }
  }
  VG_CHECK(bad_step < 0, "%s (%s): parameters after each of 10 steps within 1e-6 rel of torch (max rel %.3g%s)",
           name, feed ? "torch's grads fed in, elementwise" : "own grads, rel to max|p|", worst,
           bad_step < 0 ? "" : ", first bad step below");
  if (bad_step >= 0) {
    snprintf(what, sizeof what, "%s step %d", name, bad_step);
    VG_CHECK_CLOSE(got, traj->data + 9 * np, np, 1e-6, 1e-6 * scale, what);
  }
  /* state after 10 steps, under torch's names */
  vg_nn_list st = vg_optim_state(o);
  int checked = 0;
  for (int i = 0; i < st.n; i++) {
    snprintf(key, sizeof key, "%s.%s", name, st.names[i]);
    const vg_fx_tensor *w = vg_fixture_get(FX, key);
    if (!w) {
      /* Vigil keeps a step count for SGD; torch has none */
      VG_CHECK(c <= CFG_SGD_PLAIN && strstr(st.names[i], ".step"), "%s: state %s exists in torch", name, st.names[i]);
      continue;
    }
    float buf[64];
    VG_ASSERT(w->n == vg_numel(st.tensors[i]) && w->n <= 64);
    vg_to_host(st.tensors[i], VG_F32, buf);
    snprintf(what, sizeof what, "%s (%s grads) %s", name, feed ? "torch" : "own", st.names[i]);
    double ws = 0;
    for (int64_t j = 0; j < w->n; j++) ws = fmax(ws, fabs(w->data[j]));
    double tol = feed ? 1e-6 : 1e-5;
    VG_CHECK_CLOSE(buf, w->data, w->n, tol, tol * ws, what);
    checked++;
  }
  /* every torch state entry has a Vigil counterpart */
  int torch_n = 0;
  snprintf(key, sizeof key, "%s.state.", name);
  for (int i = 0; i < FX->count; i++) torch_n += !strncmp(FX->t[i].name, key, strlen(key));
  VG_CHECK(checked == torch_n, "%s: %d state tensors named as torch's (%d)", name, checked, torch_n);
  vg_nn_list_free(&st);
  vg_optim_free(o);
  vg_nn_list_free(&ps);
  vg_nn_free(m);
}

static void test_clip(const vg_tensor *X, const vg_tensor *Y) {
  struct { const char *tag; double norm_type, max_norm; } cases[3] = {
      {"clip2", 2.0, 0.3}, {"clipinf", INFINITY, 0.1}, {"clipbig", 2.0, 100.0}};
  for (int k = 0; k < 3; k++) {
    vg_nn_module *m = make_mlp();
    vg_nn_list ps = vg_nn_named_parameters(m);
    loss_backward(m, X, Y);
    float g[64];
    char key[64], what[96];
    int n = 0;
    for (int i = 0; i < ps.n; i++) {
      memcpy(g + n, vg_f32(ps.tensors[i]->grad), sizeof(float) * (size_t)vg_numel(ps.tensors[i]));
      n += (int)vg_numel(ps.tensors[i]);
    }
    snprintf(key, sizeof key, "%s.before", cases[k].tag);
    snprintf(what, sizeof what, "%s: grads before clipping", cases[k].tag);
    VG_CHECK_CLOSE(g, need(key)->data, n, 1e-5, 1e-7, what);
    double total = vg_clip_grad_norm(ps.n, ps.tensors, cases[k].max_norm, cases[k].norm_type);
    snprintf(key, sizeof key, "%s.total", cases[k].tag);
    float tw = need(key)->data[0];
    VG_CHECK(fabs(total - tw) <= 1e-6 * tw, "%s: total norm %.9g vs torch %.9g", cases[k].tag, total, (double)tw);
    n = 0;
    for (int i = 0; i < ps.n; i++) {
      memcpy(g + n, vg_f32(ps.tensors[i]->grad), sizeof(float) * (size_t)vg_numel(ps.tensors[i]));
      n += (int)vg_numel(ps.tensors[i]);
    }
    snprintf(key, sizeof key, "%s.after", cases[k].tag);
    snprintf(what, sizeof what, "%s: grads after clipping", cases[k].tag);
    VG_CHECK_CLOSE(g, need(key)->data, n, 1e-5, 1e-8, what);
    vg_nn_list_free(&ps);
    vg_nn_free(m);
  }
}

/* ---- schedules ---- */
static double fx_double(const vg_fx_tensor *t, int64_t i) { return (double)t->data[2 * i] + (double)t->data[2 * i + 1]; }

typedef vg_sched *(*make_sched_fn)(vg_optim *o);
static vg_sched *mk_step(vg_optim *o) { return vg_sched_step_new(o, 7, 0.5); }
static vg_sched *mk_multistep(vg_optim *o) { return vg_sched_multistep_new(o, 4, (int[]){5, 12, 12, 20}, 0.3); }
static vg_sched *mk_cosine(vg_optim *o) { return vg_sched_cosine_new(o, 10, 0.001); }
static vg_sched *mk_linear(vg_optim *o) { return vg_sched_linear_new(o, 0.25, 1.0, 8); }
static vg_sched *mk_linear_def(vg_optim *o) { return vg_sched_linear_new(o, 1.0 / 3.0, 1.0, 5); }
static vg_sched *mk_linear_down(vg_optim *o) { return vg_sched_linear_new(o, 1.0, 0.1, 6); }
static vg_sched *mk_effad(vg_optim *o) { return vg_sched_efficientad_new(o, 200); }

static void test_sched(const char *name, make_sched_fn mk, const double base[2]) {
  char key[64];
  snprintf(key, sizeof key, "sched.%s", name);
  const vg_fx_tensor *w = need(key);   /* (steps + 1, groups, 2) */
  int64_t steps = w->shape[0], ng = w->shape[1];
  vg_tensor *p[2] = {vg_tensor_new(VG_F32, 1, (int64_t[]){1}), vg_tensor_new(VG_F32, 1, (int64_t[]){1})};
  vg_optim *o = vg_optim_new(VG_OPTIM_SGD, vg_optim_defaults(VG_OPTIM_SGD, base[0]));
  for (int g = 0; g < ng; g++) {
    vg_optim_hparams h = vg_optim_defaults(VG_OPTIM_SGD, base[g]);   /* the generator's group lrs */
    vg_optim_add_group(o, 1, &p[g], &h);
  }
  vg_sched *s = mk(o);
  double worst = 0;
  int bad = -1;
  for (int64_t e = 0; e < steps; e++) {
    if (e > 0) vg_sched_step(s);
    for (int g = 0; g < ng; g++) {
      double want = fx_double(w, e * ng + g), got = vg_sched_get_lr(s, g);
      double r = fabs(got - want) / fmax(fabs(want), 1e-300);
      if (r > worst) worst = r;
      if (r > 1e-9 && bad < 0) bad = (int)e;
    }
  }
  VG_CHECK(bad < 0, "%s: lr of 2 groups over %lld steps matches torch (max rel %.3g%s)", name, (long long)steps - 1,
           worst, bad < 0 ? "" : ", first mismatch below");
  if (bad >= 0) printf("   step %d: got %.17g want %.17g\n", bad, vg_optim_get_lr(o, 0), fx_double(w, bad * ng));
  vg_sched_free(s);
  vg_optim_free(o);
  vg_tensor_free(p[0]);
  vg_tensor_free(p[1]);
}

static void test_cflow(const char *key, int meta, int sub, int I, bool cosine) {
  const vg_fx_tensor *w = need(key);
  vg_cflow_lr c = {.lr = 2e-4, .meta_epochs = meta, .warm_epochs = 2, .cosine = cosine};
  vg_tensor *p = vg_tensor_new(VG_F32, 1, (int64_t[]){1});
  vg_optim *o = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, c.lr));
  vg_optim_add_group(o, 1, &p, NULL);
  int64_t k = 0;
  double worst = 0;
  for (int e = 0; e < meta; e++)
    for (int s = 0; s < sub; s++)
      for (int i = 0; i < I; i++, k++) {
        vg_cflow_lr_apply(&c, o, e, i + (int64_t)s * I, (int64_t)I * sub);
        double want = fx_double(w, k), got = vg_optim_get_lr(o, 0);
        worst = fmax(worst, fabs(got - want) / want);
      }
  VG_CHECK(k == w->shape[0] && worst <= 1e-12, "%s: %lld lrs (warm-up per batch, then %s per meta-epoch) match the "
           "official code, max rel %.3g", key, (long long)k, cosine ? "cosine" : "x0.1 steps", worst);
  vg_optim_free(o);
  vg_tensor_free(p);
}

static void test_errors(void) {
  vg_optim_hparams h = vg_optim_defaults(VG_OPTIM_SGD, 0.1);
  h.nesterov = true;
  vg_optim *o = vg_optim_new(VG_OPTIM_SGD, h);
  vg_tensor *p = vg_tensor_new(VG_F32, 1, (int64_t[]){3});
  VG_CHECK(vg_optim_add_group(o, 1, &p, NULL) == -1 && strstr(vg_last_error(), "nesterov"),
           "SGD nesterov without momentum refused: %s", vg_last_error());
  h = vg_optim_defaults(VG_OPTIM_ADAM, -1);
  VG_CHECK(vg_optim_add_group(o, 1, &p, &h) == -1, "negative lr refused: %s", vg_last_error());
  h = vg_optim_defaults(VG_OPTIM_SGD, 0.1);
  VG_CHECK(vg_optim_add_group(o, 1, &p, &h) == 0 && vg_optim_add_group(o, 1, &p, &h) == -1,
           "a parameter in two groups refused: %s", vg_last_error());
  VG_CHECK(!vg_sched_efficientad_new(o, 1), "EfficientAD schedule with int(0.95*1) = 0 refused: %s", vg_last_error());
  /* a parameter without a grad is skipped (torch: p.grad is None) */
  vg_fill_(p, 2.0);
  vg_optim_step(o);
  VG_CHECK(vg_f32(p)[0] == 2.0f, "step skips a parameter without a grad");
  vg_optim_free(o);
  vg_tensor_free(p);
}

/* Optimizer updates go through the backend table (vg_backend.optim_update): a backend
 * without one is refused, vg_optim_update_run runs a list of parameters exactly as the
 * element functions do, and vg_optim_step reaches the kernels only through the table. */
static int n_table_updates, n_table_params;
static void counting_update(const vg_optim_update *u) {
  n_table_updates++;
  n_table_params += u->n;
  vg_cpu_backend.optim_update(u);
}

static void test_backend_update(void) {
  char err[512];
  vg_backend partial = vg_cpu_backend;
  partial.name = "noopt";
  partial.optim_update = NULL;
  VG_CHECK(!vg_backend_complete(&partial, err, sizeof err) && strstr(err, "noopt") && strstr(err, "optim_update"),
           "a backend without an optimizer update is refused: %s", err);
  /* a list of two parameters per kind against the element functions, bit for bit */
  enum { N0 = 37, N1 = 5 };
  float p[2][N0], m[2][N0], v[2][N0], g[N0], rp[2][N0], rm[2][N0], rv[2][N0];
  for (int i = 0; i < N0; i++) {
    g[i] = sinf(0.7f * (float)i) - 0.2f;
    for (int k = 0; k < 2; k++) p[k][i] = rp[k][i] = cosf(0.3f * (float)(i + 11 * k)), m[k][i] = rm[k][i] = 0.01f * (float)i,
                                v[k][i] = rv[k][i] = 0.001f * (float)(i + k);
  }
  for (int kind = 0; kind < 2; kind++) {
    vg_upd u[2], r[2];
    for (int k = 0; k < 2; k++) {
      u[k] = (vg_upd){.n = k ? N1 : N0, .p = p[k], .g = g, .m = m[k], .v = v[k], .l2 = true, .wd = 0.01f,
                      .decay = kind ? 0.999f : 1.0f, .b1 = 0.9f, .omb1 = 0.1f, .b2 = 0.999f, .omb2 = 0.001f,
                      .nss = -0.001f, .bc2s = 0.03f, .eps = 1e-8f, .mom = 0.9f, .omd = 1.0f, .nlr = -0.1f, .nesterov = k == 1};
      r[k] = u[k];
      r[k].p = rp[k], r[k].m = rm[k], r[k].v = rv[k];
    }
    vg_optim_update_run(VG_CPU, &(vg_optim_update){.kind = kind ? VG_UPD_ADAM : VG_UPD_SGD, .n = 2, .ups = u});
    for (int k = 0; k < 2; k++)
      for (int64_t i = 0; i < r[k].n; i++) kind ? vg_adam_elem(&r[k], i) : vg_sgd_elem(&r[k], i);
    VG_CHECK(!memcmp(p, rp, sizeof p) && !memcmp(m, rm, sizeof m) && !memcmp(v, rv, sizeof v),
             "vg_optim_update_run(%s, 2 params) = the element functions, bit for bit", kind ? "adam" : "sgd");
  }
  /* vg_optim_step through the table: one update per parameter with a grad */
  vg_backend counted = vg_cpu_backend;
  counted.optim_update = counting_update;
  vg_backend_register(VG_CPU, &counted);
  vg_optim *o = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 0.1));
  vg_tensor *ps[3] = {vg_tensor_new(VG_F32, 1, (int64_t[]){3}), vg_tensor_new(VG_F32, 1, (int64_t[]){2}),
                      vg_tensor_new(VG_F32, 1, (int64_t[]){4})};
  VG_CHECK(vg_optim_add_group(o, 3, ps, NULL) == 0, "adam group");
  ps[0]->grad = vg_full(VG_F32, 1, (int64_t[]){3}, 1.0);
  ps[2]->grad = vg_full(VG_F32, 1, (int64_t[]){4}, -1.0);
  vg_optim_step(o);
  vg_backend_register(VG_CPU, &vg_cpu_backend);
  VG_CHECK(n_table_updates == 2 && n_table_params == 2, "vg_optim_step runs through the backend table (%d calls, %d params)",
           n_table_updates, n_table_params);
  VG_CHECK(fabsf(vg_f32(ps[0])[0] + 0.1f) < 1e-6f && fabsf(vg_f32(ps[2])[3] - 0.1f) < 1e-6f && vg_f32(ps[1])[0] == 0.0f,
           "adam's first step moves by lr against the grad sign (%g, %g)", vg_f32(ps[0])[0], vg_f32(ps[2])[3]);
  for (int k = 0; k < 3; k++) {
    vg_tensor_free(ps[k]->grad);
    ps[k]->grad = NULL;
    vg_tensor_free(ps[k]);
  }
  vg_optim_free(o);
}

/* The same optimizers on the device (the CUDA backend's optim_update) give the CPU's bits:
 * parameters, grads and a few steps of SGD with momentum, Adam (amsgrad) and AdamW. */
static void test_device_update(void) {
  if (!vg_cuda_available()) {
    printf("SKIP device optimizer updates: %s\n", vg_last_error());
    vg_clear_error();
    return;
  }
  const vg_optim_kind kinds[3] = {VG_OPTIM_SGD, VG_OPTIM_ADAM, VG_OPTIM_ADAMW};
  for (int k = 0; k < 3; k++) {
    vg_optim_hparams h = vg_optim_defaults(kinds[k], 0.05);
    h.momentum = kinds[k] == VG_OPTIM_SGD ? 0.9 : 0;
    h.amsgrad = kinds[k] == VG_OPTIM_ADAM;
    h.weight_decay = 0.01;
    vg_tensor *p[2][2], *g[2][2];
    vg_optim *o[2];
    for (int d = 0; d < 2; d++) {
      for (int j = 0; j < 2; j++) {
        int64_t n = j ? 7 : 300;
        p[d][j] = vg_tensor_new(VG_F32, 1, &n);
        g[d][j] = vg_tensor_new(VG_F32, 1, &n);
        for (int64_t i = 0; i < n; i++) {
          vg_f32(p[d][j])[i] = sinf(0.37f * (float)(i + 3 * j));
          vg_f32(g[d][j])[i] = cosf(0.11f * (float)i * (float)(j + 1)) - 0.3f;
        }
        if (d) {
          VG_CHECK(vg_tensor_to_(p[d][j], VG_CUDA, VG_F32) == VG_OK && vg_tensor_to_(g[d][j], VG_CUDA, VG_F32) == VG_OK,
                   "param / grad to the device");
        }
        p[d][j]->grad = g[d][j];
      }
      o[d] = vg_optim_new(kinds[k], h);
      vg_optim_add_group(o[d], 2, p[d], NULL);
      for (int s = 0; s < 4; s++) vg_optim_step(o[d]);
    }
    bool same = true;
    for (int j = 0; j < 2; j++) {
      int64_t n = vg_numel(p[0][j]);
      float *back = malloc((size_t)n * sizeof *back);
      same = same && back && vg_to_host(p[1][j], VG_F32, back) == VG_OK && !memcmp(back, vg_f32(p[0][j]), (size_t)n * sizeof *back);
      free(back);
    }
    VG_CHECK(same, "%s: 4 steps on the device = the CPU's, bit for bit",
             kinds[k] == VG_OPTIM_SGD ? "sgd momentum" : kinds[k] == VG_OPTIM_ADAM ? "adam amsgrad" : "adamw");
    for (int d = 0; d < 2; d++) {
      vg_optim_free(o[d]);
      for (int j = 0; j < 2; j++) {
        p[d][j]->grad = NULL;
        vg_tensor_free(p[d][j]);
        vg_tensor_free(g[d][j]);
      }
    }
  }
}

/* zero_grad set_to_none (torch >= 2.0) vs zeroed grads (torch 1.x): two parameters, a
 * step on both, then a backward that reaches only the first. With None grads the second
 * keeps its value and step count; with zeroed grads Adam moves it on its momentum. */
static void test_set_to_none(void) {
  for (int none = 0; none < 2; none++) {
    vg_tensor *a = vg_tensor_new(VG_F32, 1, (int64_t[]){3}), *b = vg_tensor_new(VG_F32, 1, (int64_t[]){3});
    vg_fill_(a, 1.0f);
    vg_fill_(b, 2.0f);
    vg_requires_grad_(a, true);
    vg_requires_grad_(b, true);
    vg_optim *o = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 0.1));
    vg_optim_add_group(o, 2, (vg_tensor *[]){a, b}, NULL);
    vg_scope_begin();
    vg_backward(vg_sum_all(vg_mul(vg_add(a, a), b)));
    vg_scope_end();
    vg_optim_step(o);
    float b1 = vg_f32(b)[0];
    vg_optim_zero_grad_ex(o, none);
    VG_CHECK(none ? (a->grad == NULL && b->grad == NULL) : (a->grad && b->grad && vg_f32(b->grad)[0] == 0),
             "zero_grad(set_to_none=%s): grads %s", none ? "true" : "false", none ? "dropped" : "zeroed, kept");
    vg_scope_begin();
    vg_backward(vg_sum_all(vg_mul(a, a)));
    vg_scope_end();
    vg_optim_step(o);
    vg_nn_list st = vg_optim_state(o);
    float steps_b = NAN;
    for (int i = 0; i < st.n; i++)
      if (!strcmp(st.names[i], "state.1.step")) steps_b = vg_f32(st.tensors[i])[0];
    /* zeroed: grad 2a = 2 at step 1 (m1 = 0.2, v1 = 0.004), 0 at step 2 (m = 0.18, v = 0.003996):
     * b moves by lr m^ / (sqrt(v^) + eps) with m^ = m / (1 - 0.9^2), v^ = v / (1 - 0.999^2) */
    double want = none ? b1 : b1 - 0.1 * (0.18 / 0.19) / (sqrt(0.003996 / (1 - 0.999 * 0.999)) + 1e-8);
    VG_CHECK(fabs(vg_f32(b)[0] - want) < 1e-5 && steps_b == (none ? 1 : 2),
             "set_to_none=%d: untouched parameter %.7g (want %.7g), its step %g", none, vg_f32(b)[0], want, steps_b);
    vg_nn_list_free(&st);
    vg_optim_free(o);
    vg_tensor_free(a);
    vg_tensor_free(b);
  }
}

/* vg_optim_backward_step against vg_backward + vg_optim_step, bit for bit: a net where W2 is
 * read by two matmuls (its update must wait for the earlier one's rule, which reads W2 for
 * the input grad), a parameter used through a broadcast, one off the graph (a zeroed grad
 * in the keep mode, none in the set-to-none mode), over Adam, AdamW and SGD with momentum */
enum { BS_PARAMS = 6 };
static vg_tensor *bs_loss(vg_tensor *const *w, const vg_tensor *x) {
  vg_tensor *h1 = vg_relu(vg_linear(x, w[0], w[1]));
  vg_tensor *h2 = vg_tanh(vg_mul(vg_linear(h1, w[2], NULL), w[4]));
  return vg_mean_all(vg_mul(vg_linear(h2, w[2], w[3]), vg_linear(h2, w[2], w[3])));
}

static void test_backward_step(void) {
  const int64_t shp[BS_PARAMS][2] = {{16, 8}, {16, 1}, {16, 16}, {16, 1}, {1, 16}, {5, 3}};
  const int nd[BS_PARAMS] = {2, 1, 2, 1, 2, 2};
  const vg_optim_kind kinds[3] = {VG_OPTIM_ADAM, VG_OPTIM_ADAMW, VG_OPTIM_SGD};
  for (int kind = 0; kind < 3; kind++)
    for (int none = 0; none < 2; none++) {
      vg_tensor *w[2][BS_PARAMS];
      vg_optim *o[2];
      for (int c = 0; c < 2; c++) {
        for (int i = 0; i < BS_PARAMS; i++) {
          w[c][i] = vg_tensor_new(VG_F32, nd[i], shp[i]);
          vg_scope_begin();
          vg_copy_(w[c][i], vg_add_scalar(vg_scale(vg_randn(nd[i], shp[i], 11 + (uint64_t)i), 0.3f), 0.05f));
          vg_scope_end();
          vg_requires_grad_(w[c][i], true);
        }
        vg_optim_hparams h = vg_optim_defaults(kinds[kind], 0.05);
        if (kinds[kind] == VG_OPTIM_SGD) h.momentum = 0.9;
        o[c] = vg_optim_new(kinds[kind], h);
        vg_optim_add_group(o[c], BS_PARAMS, w[c], NULL);
      }
      int diff = -1;
      for (int it = 0; it < 4; it++) {
        for (int c = 0; c < 2; c++) {
          vg_optim_zero_grad_ex(o[c], none);
          if (!none && it == 0) {   /* the keep mode: every parameter has a (zeroed) grad */
            vg_scope_begin();
            vg_backward(vg_sum_all(vg_mul(w[c][5], w[c][5])));
            vg_scope_end();
            vg_optim_zero_grad_ex(o[c], false);
          }
          vg_scope_begin();
          vg_tensor *x = vg_randn(2, (int64_t[]){12, 8}, 100 + (uint64_t)it);
          vg_tensor *loss = bs_loss(w[c], x);
          if (c == 0) {
            VG_CHECK(vg_backward(loss) == VG_OK, "backward");
            vg_optim_step(o[0]);
          } else {
            VG_CHECK(vg_optim_backward_step(o[1], loss) == VG_OK, "backward_step %s", vg_last_error());
          }
          vg_scope_end();
        }
        for (int i = 0; i < BS_PARAMS && diff < 0; i++) {
          size_t nb = sizeof(float) * (size_t)vg_numel(w[0][i]);
          bool g0 = w[0][i]->grad != NULL, g1 = w[1][i]->grad != NULL;
          if (memcmp(vg_data(w[0][i]), vg_data(w[1][i]), nb) || g0 != g1 ||
              (g0 && memcmp(vg_data(w[0][i]->grad), vg_data(w[1][i]->grad), nb)))
            diff = it * 100 + i;
        }
      }
      VG_CHECK(diff < 0, "backward_step (%s, set_to_none %d): params and grads bit-identical to backward + step "
               "over 4 steps (first difference: step %d param %d)", kind == 0 ? "adam" : kind == 1 ? "adamw" : "sgd",
               none, diff < 0 ? -1 : diff / 100, diff < 0 ? -1 : diff % 100);
      for (int c = 0; c < 2; c++) {
        vg_optim_free(o[c]);
        for (int i = 0; i < BS_PARAMS; i++) vg_tensor_free(w[c][i]);
      }
    }
  vg_optim *o = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 0.1));
  VG_CHECK(vg_optim_backward_step(o, NULL) == VG_ERR_ARG, "backward_step: a NULL loss is an error");
  vg_optim_free(o);
}

int main(void) {
  test_backward_step();
  test_set_to_none();
  FX = vg_fixture_load(vg_test_fixture("nn/optim.vgfx"));
  if (!VG_CHECK(FX, "load tests/fixtures/nn/optim.vgfx")) return vg_test_finish();
  vg_tensor *X = fx_tensor("X"), *Y = fx_tensor("Y");
  run_optim("sgd_nesterov", CFG_SGD_NESTEROV, X, Y, true);
  run_optim("sgd_nesterov", CFG_SGD_NESTEROV, X, Y, false);
  run_optim("sgd_damp", CFG_SGD_DAMP, X, Y, true);
  run_optim("sgd_damp", CFG_SGD_DAMP, X, Y, false);
  run_optim("sgd_plain", CFG_SGD_PLAIN, X, Y, true);
  run_optim("sgd_plain", CFG_SGD_PLAIN, X, Y, false);
  run_optim("adam", CFG_ADAM, X, Y, true);
  run_optim("adam", CFG_ADAM, X, Y, false);
  run_optim("adam_ams", CFG_ADAM_AMS, X, Y, true);
  run_optim("adam_ams", CFG_ADAM_AMS, X, Y, false);
  run_optim("adamw", CFG_ADAMW, X, Y, true);
  run_optim("adamw", CFG_ADAMW, X, Y, false);
  run_optim("adam_groups", CFG_ADAM_GROUPS, X, Y, true);
  run_optim("adam_groups", CFG_ADAM_GROUPS, X, Y, false);
  test_clip(X, Y);
  test_sched("step", mk_step, (double[]){0.1, 0.03});
  test_sched("multistep", mk_multistep, (double[]){0.1, 0.03});
  test_sched("cosine", mk_cosine, (double[]){0.05, 0.01});
  test_sched("linear", mk_linear, (double[]){0.1, 0.03});
  test_sched("linear_def", mk_linear_def, (double[]){0.1, 0.03});
  test_sched("linear_down", mk_linear_down, (double[]){0.1, 0.03});
  test_sched("efficientad", mk_effad, (double[]){1e-4, 2e-4});
  test_cflow("cflow.cos", 6, 3, 4, true);
  test_cflow("cflow.step", 10, 2, 3, false);
  test_errors();
  test_backend_update();
  test_device_update();
  vg_tensor_free(X);
  vg_tensor_free(Y);
  vg_fixture_free(FX);
  vg_scope_release();
  return vg_test_finish();
}
