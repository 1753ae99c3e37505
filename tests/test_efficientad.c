/* test_efficientad: EfficientAD networks, losses, statistics and maps against anomalib's
 * torch model on identical Philox weights and images (tools/gen_efficientad_fixtures.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "methods/efficientad/efficientad.h"
#include "autograd/autograd.h"

#define SEED_T 1
#define SEED_S 2
#define SEED_AE 3

static vg_tensor *image(uint64_t seed, int64_t n, int64_t h, int64_t w) {
  return vg_rand(4, (int64_t[]){n, 3, h, w}, seed);
}

static double max_abs(const vg_fx_tensor *t) {
  double m = 0;
  for (int64_t i = 0; i < t->n; i++) m = fmax(m, fabs(t->data[i]));
  return m;
}

/* compares t[:, ::step] (all other dims whole) with the fixture tensor `name` */
static void check_sub(const vg_tensor *t, int64_t step, const vg_fixture *fx, const char *name,
                      double rtol) {
  const vg_fx_tensor *want = vg_fixture_get(fx, name);
  if (!VG_CHECK(want != NULL, "fixture has %s", name)) return;
  vg_tensor *s = vg_contiguous(vg_slice(t, 1, 0, t->shape[1], step));
  if (!VG_CHECK(s && vg_numel(s) == want->n, "%s: shape", name)) return;
  float *got = malloc((size_t)want->n * sizeof(float));
  vg_to_host(s, VG_F32, got);
  VG_CHECK_CLOSE(got, want->data, want->n, rtol, rtol * max_abs(want), name);
  free(got);
}

static void check_scalar(float got, const vg_fixture *fx, const char *name, double rtol) {
  const vg_fx_tensor *want = vg_fixture_get(fx, name);
  if (!VG_CHECK(want != NULL, "fixture has %s", name)) return;
  VG_CHECK_CLOSE(&got, want->data, 1, rtol, 0.0, name);
}

static vg_effad_model *make_model(void) {
  vg_effad_model *m = vg_effad_model_new(VG_EFFAD_S, 384, false, 0);
  vg_effad_init_uniform(m->teacher, SEED_T);
  vg_effad_init_uniform(m->student, SEED_S);
  vg_effad_init_uniform(m->ae, SEED_AE);
  vg_nn_train(m->ae, false);   /* the reference runs the AE without dropout */
  return m;
}

static void test_model(const vg_fixture *fx) {
  vg_effad_model *m = make_model();
  /* teacher channel statistics over two images */
  vg_effad_stats_begin(m);
  for (uint64_t seed = 2000; seed <= 2001; seed++) {
    vg_scope_begin();
    VG_CHECK(vg_effad_stats_add(m, image(seed, 1, 256, 256)) == VG_OK, "stats_add %s", vg_last_error());
    vg_scope_end();
  }
  VG_CHECK(vg_effad_stats_end(m) == VG_OK, "stats_end");
  VG_CHECK_CLOSE((float *)m->mean->storage->data, vg_fixture_get(fx, "stat_mean")->data, 384, 1e-4,
                 1e-4 * max_abs(vg_fixture_get(fx, "stat_mean")), "teacher channel mean");
  VG_CHECK_CLOSE((float *)m->std->storage->data, vg_fixture_get(fx, "stat_std")->data, 384, 1e-4, 0,
                 "teacher channel std");

  vg_scope_begin();
  vg_tensor *img = image(1000, 1, 256, 256), *aug = image(1001, 1, 256, 256), *pen = image(1002, 1, 256, 256);
  check_sub(vg_effad_teacher_forward(m, img), 192, fx, "teacher_sub", 1e-4);
  check_sub(vg_nn_forward(m->student, img), 384, fx, "student_sub", 1e-4);
  check_sub(vg_effad_ae_forward(m->ae, img, 256, 256, 0), 192, fx, "ae_sub", 1e-4);

  vg_effad_losses L;
  VG_CHECK(vg_effad_compute_losses(m, img, aug, pen, 0, &L) == VG_OK, "losses %s", vg_last_error());
  check_scalar(vg_item(L.hard), fx, "loss_hard", 1e-4);
  check_scalar(vg_item(L.st), fx, "loss_st", 1e-4);
  check_scalar(vg_item(L.ae), fx, "loss_ae", 1e-4);
  check_scalar(vg_item(L.stae), fx, "loss_stae", 1e-4);
  {
    /* the hard-loss mask: its quantile and its size */
    vg_tensor *t = vg_effad_teacher_forward(m, img);
    vg_tensor *d = vg_pow_scalar(vg_sub(t, vg_narrow(vg_nn_forward(m->student, img), 1, 0, 384)), 2.0f);
    vg_tensor *q = vg_quantile_all(d, 0.999);
    check_scalar(vg_item(q), fx, "d_hard", 1e-4);
    float cnt = vg_item(vg_sum_all(vg_cast(vg_ge(d, q), VG_F32)));
    VG_CHECK(cnt == vg_fixture_get(fx, "hard_count")->data[0], "hard mask count %g (want %g)", cnt,
             vg_fixture_get(fx, "hard_count")->data[0]);
  }
  vg_scope_end();

  /* map quantiles over two validation images, then normalised maps and the score */
  vg_effad_quantiles_begin(m);
  for (uint64_t seed = 3000; seed <= 3001; seed++) {
    vg_scope_begin();
    VG_CHECK(vg_effad_quantiles_add(m, image(seed, 1, 256, 256)) == VG_OK, "quantiles_add");
    vg_scope_end();
  }
  VG_CHECK(vg_effad_quantiles_end(m) == VG_OK, "quantiles_end");
  check_scalar(m->qa_st, fx, "qa_st", 1e-4);
  check_scalar(m->qb_st, fx, "qb_st", 1e-4);
  check_scalar(m->qa_ae, fx, "qa_ae", 1e-4);
  check_scalar(m->qb_ae, fx, "qb_ae", 1e-4);

  vg_scope_begin();
  img = image(1000, 1, 256, 256);
  vg_tensor *mst, *mae;
  VG_CHECK(vg_effad_maps(m, img, true, &mst, &mae) == VG_OK, "maps");
  vg_tensor *map = vg_affine(vg_add(mst, mae), 0.5f, 0.0f);
  vg_tensor *sub_st = vg_slice(vg_slice(mst, 2, 0, 256, 8), 3, 0, 256, 8);
  vg_tensor *sub_ae = vg_slice(vg_slice(mae, 2, 0, 256, 8), 3, 0, 256, 8);
  vg_tensor *sub = vg_slice(vg_slice(map, 2, 0, 256, 8), 3, 0, 256, 8);
  check_sub(sub_st, 1, fx, "map_st_sub", 1e-4);
  check_sub(sub_ae, 1, fx, "map_ae_sub", 1e-4);
  check_sub(sub, 1, fx, "map_sub", 1e-4);
  check_scalar(vg_item(vg_amax(map, 0, NULL, false)), fx, "score", 1e-4);
  vg_scope_end();
  vg_effad_model_free(m);
}

static void test_pdn_variants(const vg_fixture *fx) {
  vg_scope_begin();
  vg_tensor *x = image(1100, 2, 64, 64);
  vg_nn_module *pm = vg_effad_pdn_new(VG_EFFAD_M, 384, false, 0);
  vg_effad_init_uniform(pm, 11);
  check_sub(vg_nn_forward(pm, x), 48, fx, "pdn_m_out_sub", 1e-4);
  vg_nn_module *ps = vg_effad_pdn_new(VG_EFFAD_S, 384, true, 0);
  vg_effad_init_uniform(ps, 12);
  check_sub(vg_nn_forward(ps, x), 48, fx, "pdn_s_pad_out_sub", 1e-4);
  vg_nn_module *pmp = vg_effad_pdn_new(VG_EFFAD_M, 384, true, 0);
  vg_effad_init_uniform(pmp, 13);
  check_sub(vg_nn_forward(pmp, x), 96, fx, "pdn_m_pad_out_sub", 1e-4);
  vg_scope_end();
  vg_nn_free(pm);
  vg_nn_free(ps);
  vg_nn_free(pmp);
}

static void test_curve(const vg_fixture *fx) {
  vg_effad_model *m = make_model();
  const vg_fx_tensor *mean = vg_fixture_get(fx, "stat_mean"), *sd = vg_fixture_get(fx, "stat_std");
  for (int c = 0; c < 384; c++) {
    ((float *)m->mean->storage->data)[c] = mean->data[c];
    ((float *)m->std->storage->data)[c] = sd->data[c];
  }
  vg_nn_list ps = vg_nn_named_parameters(m->student), pa = vg_nn_named_parameters(m->ae);
  vg_optim_hparams hp = vg_optim_defaults(VG_OPTIM_ADAM, 1e-4);
  hp.weight_decay = 1e-5;
  vg_optim *opt = vg_optim_new(VG_OPTIM_ADAM, hp);
  vg_optim_add_group(opt, ps.n, ps.tensors, NULL);
  vg_optim_add_group(opt, pa.n, pa.tensors, NULL);
  float got[20 * 4];
  for (int step = 0; step < 20; step++) {
    vg_scope_begin();
    vg_effad_losses L;
    vg_effad_compute_losses(m, image(5000 + (uint64_t)step, 1, 256, 256),
                            image(6000 + (uint64_t)step, 1, 256, 256),
                            image(7000 + (uint64_t)step, 1, 256, 256), 0, &L);
    vg_optim_zero_grad(opt);
    vg_backward(L.total);
    vg_optim_step(opt);
    got[step * 4 + 0] = vg_item(L.st);
    got[step * 4 + 1] = vg_item(L.ae);
    got[step * 4 + 2] = vg_item(L.stae);
    got[step * 4 + 3] = vg_item(L.total);
    vg_scope_end();
  }
  /* total and each term within 1e-3 relative of the total loss scale; L_STAE (~1e-4 of
   * the total) differs by up to ~5% relative: Adam's first steps are sign-like, so f32
   * noise in near-zero gradients moves weights by +-lr on either side */
  const float *want = vg_fixture_get(fx, "curve")->data;
  float gt[20], wt[20];
  for (int s = 0; s < 20; s++) { gt[s] = got[s * 4 + 3]; wt[s] = want[s * 4 + 3]; }
  VG_CHECK_CLOSE(gt, wt, 20, 1e-3, 0, "20-step total loss curve");
  VG_CHECK_CLOSE(got, want, 80, 1e-3, 1e-3 * wt[0], "20-step loss terms (st, ae, stae, total)");
  vg_optim_free(opt);
  vg_nn_list_free(&ps);
  vg_nn_list_free(&pa);
  vg_effad_model_free(m);
}

int main(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("effad_model.vgfx"));
  if (!VG_CHECK(fx != NULL, "load effad_model.vgfx")) return vg_test_finish();
  test_pdn_variants(fx);
  test_model(fx);
  if (vg_test_long()) test_curve(fx);
  vg_fixture_free(fx);
  return vg_test_finish();
}
