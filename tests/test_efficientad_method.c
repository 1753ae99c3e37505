/* test_efficientad_method: EfficientAD on the method contract — the AE-branch
 * augmentation against torchvision (tools/gen_efficientad_fixtures.py aug), teacher
 * weights in nelson1425's Sequential layout, config round trip, the lr step at 95 %,
 * fit/train/fit_end/predict on a small image folder with the penalty branch on,
 * checkpoint round trip and bit-identical resume. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "methods/efficientad/efficientad.h"
#include "datasets/image/image.h"
#include "nn/safetensors.h"

static char g_root[] = "/tmp/vigil_effad_XXXXXX";

static void write_png(const char *name, int w, int h, int seed) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_root, name);
  vg_image im = {w, h, 3, 8, malloc((size_t)w * h * 3)};
  uint8_t *p = im.data;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < 3; k++)
        p[((size_t)y * w + x) * 3 + k] = (uint8_t)(seed * 37 + x * 5 + y * 11 + k * 71 + ((x * y + seed) % 7) * 13);
  if (vg_png_save(path, &im) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); abort(); }
  free(im.data);
}

static void test_augment(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("effad_aug.vgfx"));
  if (!VG_CHECK(fx != NULL, "load effad_aug.vgfx")) return;
  const vg_fx_tensor *x = vg_fixture_get(fx, "x");
  float *out = malloc((size_t)x->n * sizeof(float));
  static const float fs[2] = {0.83f, 1.17f};
  for (int kind = 0; kind < 3; kind++)
    for (int j = 0; j < 2; j++) {
      char name[32];
      snprintf(name, sizeof name, "aug_%d_%d", kind, j);
      const vg_fx_tensor *want = vg_fixture_get(fx, name);
      VG_CHECK(vg_effad_augment(x->data, out, x->shape[0], x->shape[2], x->shape[3], kind, fs[j]) == VG_OK,
               "augment %s", name);
      VG_CHECK_CLOSE(out, want->data, want->n, 1e-6, 1e-6, name);
    }
  VG_CHECK(vg_effad_augment(x->data, out, 1, 16, 12, 3, 1.0f) != VG_OK, "augmentation kind 3 is refused");
  free(out);
  vg_fixture_free(fx);
}

/* nelson1425's teacher_small.pth layout (nn.Sequential indices) as a safetensors file */
static void test_teacher_load(void) {
  vg_nn_module *src = vg_effad_pdn_new(VG_EFFAD_S, 384, false, 0);
  vg_effad_init_uniform(src, 77);
  vg_nn_list l = vg_nn_named_parameters(src);
  static const char *const seq[8] = {"0.weight", "0.bias", "3.weight", "3.bias",
                                     "6.weight", "6.bias", "8.weight", "8.bias"};
  char path[1100];
  snprintf(path, sizeof path, "%s/teacher_small.safetensors", g_root);
  VG_CHECK(l.n == 8, "PDN-S has 8 parameters (%d)", l.n);
  VG_CHECK(vg_st_save(path, 8, seq, l.tensors, NULL) == VG_OK, "write %s: %s", path, vg_last_error());
  vg_nn_module *dst = vg_effad_pdn_new(VG_EFFAD_S, 384, true, 0);   /* padding: same weights */
  VG_CHECK(vg_effad_teacher_load(dst, VG_EFFAD_S, path) == VG_OK, "load nelson layout: %s", vg_last_error());
  vg_nn_list d = vg_nn_named_parameters(dst);
  bool same = d.n == l.n;
  for (int i = 0; same && i < d.n; i++)
    same = !memcmp(vg_data(d.tensors[i]), vg_data(l.tensors[i]), (size_t)vg_numel(l.tensors[i]) * sizeof(float));
  VG_CHECK(same, "nelson Sequential keys 0/3/6/8 map to conv1..conv4 exactly");
  /* a PDN-M cannot take it: the error names a tensor */
  vg_nn_module *mm = vg_effad_pdn_new(VG_EFFAD_M, 384, false, 0);
  VG_CHECK(vg_effad_teacher_load(mm, VG_EFFAD_M, path) != VG_OK && strstr(vg_last_error(), "conv"),
           "PDN-M from a PDN-S file fails naming the tensor: %s", vg_last_error());
  VG_CHECK(vg_effad_teacher_load(dst, VG_EFFAD_S, "/nonexistent/teacher.pth") != VG_OK &&
               strstr(vg_last_error(), "/nonexistent/teacher.pth"),
           "a missing file is named: %s", vg_last_error());
  vg_nn_list_free(&d);
  vg_nn_list_free(&l);
  vg_nn_free(src);
  vg_nn_free(dst);
  vg_nn_free(mm);
}

static vg_method *make(const char *extra) {
  char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "{\"teacher\": \"random\", \"input_size\": 256, \"steps\": 3, \"out_channels\": 32, \"penalty_dir\": \"%s\", \"seed\": 5%s}",
           g_root, extra);
  vg_json *j = NULL;
  if (vg_json_parse(cfg, strlen(cfg), NULL, &j) != VG_OK) return NULL;
  vg_method *m = NULL;
  vg_status st = vg_method_create("efficientad", j, &m);
  vg_json_free(j);
  if (st != VG_OK) fprintf(stderr, "create: %s\n", vg_last_error());
  return m;
}

static vg_tensor *batch(int step) { return vg_rand(4, (int64_t[]){1, 3, 256, 256}, 900 + (uint64_t)step); }

static bool train(vg_method *m, int from, int to) {
  for (int s = from; s < to; s++) {
    vg_scope_begin();
    double loss = NAN;
    vg_status st = m->ops->train_step(m, batch(s), s, &loss);
    vg_scope_end();
    if (st != VG_OK || !isfinite(loss)) {
      fprintf(stderr, "step %d: %s (loss %g)\n", s, vg_last_error(), loss);
      return false;
    }
  }
  return true;
}

static bool same_params(vg_method *a, vg_method *b) {
  vg_nn_module *ma[2] = {vg_effad_method_model(a)->student, vg_effad_method_model(a)->ae};
  vg_nn_module *mb[2] = {vg_effad_method_model(b)->student, vg_effad_method_model(b)->ae};
  bool same = true;
  for (int k = 0; k < 2; k++) {
    vg_nn_list x = vg_nn_named_parameters(ma[k]), y = vg_nn_named_parameters(mb[k]);
    same = same && x.n == y.n;
    for (int i = 0; same && i < x.n; i++)
      same = !memcmp(vg_data(x.tensors[i]), vg_data(y.tensors[i]), (size_t)vg_numel(x.tensors[i]) * 4);
    vg_nn_list_free(&x);
    vg_nn_list_free(&y);
  }
  return same;
}

static void test_method(void) {
  for (int i = 0; i < 3; i++) {
    char nm[32];
    snprintf(nm, sizeof nm, "img%d.png", i);
    write_png(nm, 270 + 10 * i, 260 + 7 * i, i);
  }
  vg_dataset ds = {0};
  if (!VG_CHECK(vg_ds_image_folder(g_root, &ds) == VG_OK && ds.n == 3, "image folder: %s", vg_last_error())) return;

  /* config: every default spelled out, round trip, unknown key */
  vg_method *a = make("");
  if (!VG_CHECK(a != NULL, "create efficientad")) { vg_dataset_free(&ds); return; }
  char *cfg = a->ops->config_json(a);
  VG_CHECK(cfg && strstr(cfg, "\"model\": \"s\"") && strstr(cfg, "\"p_hard\": 0.999") &&
               strstr(cfg, "\"distill_iters\": 8") && strstr(cfg, "\"distill_view\": 128") && strstr(cfg, "\"lr_step_fraction\": 0.95"),
           "config spells out the defaults:\n%s", cfg ? cfg : "(null)");
  vg_json *j = NULL;
  vg_method *rt = NULL;
  VG_CHECK(cfg && vg_json_parse(cfg, strlen(cfg), NULL, &j) == VG_OK && vg_method_create("efficientad", j, &rt) == VG_OK,
           "config round trip: %s", vg_last_error());
  char *cfg2 = rt ? rt->ops->config_json(rt) : NULL;
  VG_CHECK(cfg2 && !strcmp(cfg, cfg2), "config -> create -> config is identical");
  free(cfg2);
  vg_method_free(rt);
  vg_json_free(j);
  free(cfg);
  VG_CHECK(make(", \"quantile\": 1") == NULL && strstr(vg_last_error(), "quantile"), "unknown key named: %s",
           vg_last_error());

  /* fit_begin: teacher statistics over the folder */
  VG_CHECK(a->ops->fit_begin(a, &ds) == VG_OK, "fit_begin: %s", vg_last_error());
  vg_effad_model *em = vg_effad_method_model(a);
  const float *sd = vg_f32(em->std);
  bool pos = true;
  for (int c = 0; c < 32; c++) pos = pos && sd[c] > 0 && isfinite(sd[c]);
  VG_CHECK(pos, "teacher channel std set and positive");
  vg_method *b = make("");
  VG_CHECK(b && b->ops->fit_begin(b, &ds) == VG_OK, "fit_begin b");

  /* lr: StepLR at int(0.95 * 3) = 2 */
  a->total_steps = 3;
  VG_CHECK(fabs(a->ops->current_lr(a) - 1e-4) < 1e-12, "lr at step 0 is 1e-4 (%g)", a->ops->current_lr(a));
  VG_CHECK(train(a, 0, 2), "train a 0..1");
  VG_CHECK(fabs(a->ops->current_lr(a) - 1e-5) < 1e-12, "lr at step 2 of 3 is 1e-5 (%g)", a->ops->current_lr(a));
  VG_CHECK(train(a, 2, 3), "train a 2");

  /* resume: b trains 2 steps, saves; c loads and trains the third = a, bit for bit */
  char ck[1100];
  snprintf(ck, sizeof ck, "%s/ckpt.safetensors", g_root);
  b->total_steps = 3;
  VG_CHECK(train(b, 0, 2), "train b 0..1");
  VG_CHECK(b->ops->save(b, ck) == VG_OK, "save b: %s", vg_last_error());
  vg_method *c = make("");
  VG_CHECK(c && c->ops->load(c, ck) == VG_OK, "load into c: %s", vg_last_error());
  c->total_steps = 3;
  VG_CHECK(fabs(c->ops->current_lr(c) - 1e-5) < 1e-12, "resumed lr at step 2 of 3 is 1e-5");
  VG_CHECK(train(c, 2, 3), "train c 2");
  VG_CHECK(same_params(a, c), "2 steps + save/load + 1 step == 3 steps (student and AE bit-identical)");
  VG_CHECK(!same_params(a, b), "and differs from the 2-step model");

  /* fit_end + predict, checkpoint round trip */
  VG_CHECK(a->ops->fit_end(a, &ds) == VG_OK, "fit_end: %s", vg_last_error());
  VG_CHECK(em->qb_st > em->qa_st && em->qb_ae > em->qa_ae, "quantiles ordered (st %g %g, ae %g %g)", em->qa_st,
           em->qb_st, em->qa_ae, em->qb_ae);
  float *maps = malloc(sizeof(float) * 2 * 256 * 256), *maps2 = malloc(sizeof(float) * 2 * 256 * 256);
  float sc[2], sc2[2];
  vg_scope_begin();
  vg_tensor *x = vg_rand(4, (int64_t[]){2, 3, 256, 256}, 4242);
  VG_CHECK(a->ops->predict(a, x, maps, sc) == VG_OK, "predict: %s", vg_last_error());
  float mx = -INFINITY;
  for (int i = 0; i < 256 * 256; i++) mx = fmaxf(mx, maps[i]);
  VG_CHECK(isfinite(sc[0]) && sc[0] == mx, "score = max of the combined map (%g vs %g)", sc[0], mx);
  VG_CHECK(a->ops->save(a, ck) == VG_OK, "save a");
  vg_method *d = make("");
  VG_CHECK(d && d->ops->load(d, ck) == VG_OK, "load into d: %s", vg_last_error());
  VG_CHECK(d && vg_effad_method_model(d)->qb_ae == em->qb_ae, "quantiles restored from the checkpoint");
  VG_CHECK(d && d->ops->predict(d, x, maps2, sc2) == VG_OK && !memcmp(maps, maps2, sizeof(float) * 2 * 256 * 256) &&
               sc[1] == sc2[1],
           "predict after load is bit-identical");
  vg_scope_end();
  /* empty validation split: a clear error */
  vg_dataset empty = {0};
  VG_CHECK(a->ops->fit_end(a, &empty) != VG_OK && strstr(vg_last_error(), "validation"), "empty val named: %s",
           vg_last_error());
  free(maps);
  free(maps2);
  vg_method_free(a);
  vg_method_free(b);
  vg_method_free(c);
  vg_method_free(d);
  vg_dataset_free(&ds);
}

int main(void) {
  if (!mkdtemp(g_root)) { perror("mkdtemp"); return 1; }
  test_augment();
  test_teacher_load();
  test_method();
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_root);
  return vg_test_finish();
}
