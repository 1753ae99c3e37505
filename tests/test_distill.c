/* test_distill — EfficientAD teacher distillation (methods/efficientad/distill.h):
 * the PatchCore target pipeline vs nelson1425's pretraining.py written in torch
 * (tools/gen_distill_fixtures.py, float64 reference, Philox weights and input, no
 * weights stored), the two sample views vs torchvision's PIL path, a tiny end-to-end
 * distillation (teacher loads strictly into a PDN, finite losses, the loss falls on a
 * fixed batch, interrupted + resumed == uninterrupted bit for bit), and the errors. */
#include "methods/efficientad/distill.h"
#include "nn/backbones/backbones.h"
#include "nn/safetensors.h"
#include "tests/common/fixture.h"
#include "tests/common/images.h"
#include "tests/vgtest.h"
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= e)) e = d;   /* NaN propagates */
  }
  return e;
}

/* ------------------------------------------------------------ targets vs PyTorch */
static void targets_vs_torch(const char *model) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("distill/targets.vgfx"));
  if (!VG_CHECK(fx, "distill/targets.vgfx loads")) return;
  char key[7][96];
  static const char *const what[7] = {"shape", "maxabs", "chmean", "stride", "sub", "rowmean", "colmean"};
  for (int i = 0; i < 7; i++) snprintf(key[i], sizeof key[i], "%s.%s", model, what[i]);
  const vg_fx_tensor *ishape = vg_fixture_get(fx, "input.shape"), *iseed = vg_fixture_get(fx, "input.seed"),
                     *bseed = vg_fixture_get(fx, "base_seed"), *tshape = vg_fixture_get(fx, key[0]),
                     *tmax = vg_fixture_get(fx, key[1]), *tmean = vg_fixture_get(fx, key[2]),
                     *tstride = vg_fixture_get(fx, key[3]), *tsub = vg_fixture_get(fx, key[4]),
                     *trow = vg_fixture_get(fx, key[5]), *tcol = vg_fixture_get(fx, key[6]),
                     *pcheck = vg_fixture_get(fx, "philox.check");
  if (!VG_CHECK(ishape && iseed && bseed && tshape && tmax && tmean && tstride && tsub && trow && tcol && pcheck,
                "%s: fixture entries present", model)) {
    vg_fixture_free(fx);
    return;
  }
  vg_scope_begin();
  vg_tensor *u = vg_rand(1, (int64_t[]){8}, (uint64_t)bseed->data[0]);
  VG_CHECK(!memcmp(vg_f32(u), pcheck->data, 8 * sizeof(float)), "tools/philox.py matches vg_rand");
  vg_scope_end();

  double tb = now();
  vg_nn_module *wrn = vg_resnet_new(model, VG_RESNET_LAYER2 | VG_RESNET_LAYER3, 0);
  if (!VG_CHECK(wrn && vg_resnet_init_philox(wrn, (uint64_t)bseed->data[0]) == VG_OK,
                "%s layer2+3 with Philox weights (built in %.2f s)", model, now() - tb)) {
    vg_nn_free(wrn);
    vg_fixture_free(fx);
    return;
  }
  vg_scope_begin();
  int64_t shp[4];
  for (int d = 0; d < 4; d++) shp[d] = (int64_t)ishape->data[d];
  vg_tensor *x = vg_empty(VG_F32, 4, shp);
  vg_uniform_(x, -2.0f, 2.0f, (uint64_t)iseed->data[0]);
  vg_tensor *t = NULL;
  double t0 = now();
  vg_status st = vg_effad_distill_targets(wrn, x, 384, &t);
  double dt = now() - t0;
  VG_CHECK(st == VG_OK && t, "%s: targets of %lldx3x%lldx%lld in %.2f s (%d threads)%s%s", model, (long long)shp[0],
           (long long)shp[2], (long long)shp[3], dt, vg_num_threads(), st == VG_OK ? "" : ": ",
           st == VG_OK ? "" : vg_last_error());
  bool shape_ok = t && t->ndim == 4;
  for (int d = 0; shape_ok && d < 4; d++) shape_ok = t->shape[d] == (int64_t)tshape->data[d];
  if (VG_CHECK(shape_ok, "%s: targets shape (%lld, %lld, %lld, %lld) as the reference", model, t ? (long long)t->shape[0] : -1,
               t ? (long long)t->shape[1] : -1, t ? (long long)t->shape[2] : -1, t ? (long long)t->shape[3] : -1)) {
    const float *g = vg_f32(t);
    int64_t C = t->shape[1], HW = t->shape[2] * t->shape[3], N = t->shape[0], k = (int64_t)tstride->data[0];
    double scale = tmax->data[0];
    float *gs = malloc(sizeof(float) * (size_t)tsub->n);
    for (int64_t i = 0; i < tsub->n; i++) gs[i] = g[i * k];
    double e_sub = max_abs_diff(gs, tsub->data, tsub->n) / scale;
    free(gs);
    float *means = calloc((size_t)C, sizeof(float));
    double gmax = 0;
    for (int64_t c = 0; c < C; c++) {
      double s = 0;
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < HW; i++) {
          double v = g[(n * C + c) * HW + i];
          s += v;
          if (fabs(v) > gmax) gmax = fabs(v);
        }
      means[c] = (float)(s / (double)(N * HW));
    }
    double e_mean = max_abs_diff(means, tmean->data, C) / scale, e_max = fabs(gmax - scale) / scale;
    free(means);
    double e_rc = trow->n == N * t->shape[2] && tcol->n == N * t->shape[3]
                      ? vg_fixture_rowcol_err(g, t->shape, trow->data, tcol->data) / scale
                      : INFINITY;
    VG_CHECK(e_sub <= 1e-4 && e_mean <= 1e-4 && e_rc <= 1e-4 && e_max <= 1e-4,
             "%s targets vs nelson's pipeline in torch (float64): max rel err (vs max|t| %.4f) every %lldth "
             "value %.2e (%lld values), channel means %.2e, row/column means %.2e, max|t| %.2e <= 1e-4",
             model, scale, (long long)k, e_sub, (long long)tsub->n, e_mean, e_rc, e_max);
  }
  vg_scope_end();
  vg_nn_free(wrn);
  vg_fixture_free(fx);
}

static void targets_errors(void) {
  vg_nn_module *r18 = vg_resnet_new("resnet18", VG_RESNET_LAYER2, 0);
  vg_scope_begin();
  vg_tensor *x2 = vg_zeros(VG_F32, 4, (int64_t[]){1, 3, 64, 64}), *t2 = NULL;
  VG_CHECK(vg_effad_distill_targets(r18, x2, 384, &t2) == VG_ERR_ARG && strstr(vg_last_error(), "layer3"),
           "extractor without layer3 refused: %s", vg_last_error());
  vg_scope_end();
  vg_nn_free(r18);
}

/* ------------------------------------------------------------- views vs torchvision */
static void views_vs_torchvision(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("distill/views.vgfx"));
  vg_image im = {0};
  vg_status st = vg_image_load(vg_test_fixture("distill/views_src.png"), &im, NULL);
  if (!VG_CHECK(fx && st == VG_OK, "distill/views.vgfx and views_src.png load")) {
    vg_fixture_free(fx);
    vg_image_free(&im);
    return;
  }
  int v = (int)vg_fixture_get(fx, "view")->data[0];
  float *big = malloc(sizeof(float) * 12 * (size_t)v * v), *small = malloc(sizeof(float) * 3 * (size_t)v * v);
  for (int grey = 0; grey < 2; grey++) {
    const char *tag = grey ? "grey" : "colour";
    char k1[32], k2[32];
    snprintf(k1, sizeof k1, "%s.big", tag);
    snprintf(k2, sizeof k2, "%s.small", tag);
    const vg_fx_tensor *wb = vg_fixture_get(fx, k1), *ws = vg_fixture_get(fx, k2);
    st = vg_effad_distill_views(&im, v, grey, big, small);
    if (!VG_CHECK(st == VG_OK && wb && ws && wb->n == 12 * v * v && ws->n == 3 * v * v, "%s views made", tag)) continue;
    double eb = max_abs_diff(big, wb->data, wb->n), es = max_abs_diff(small, ws->data, ws->n);
    VG_CHECK(eb <= 1e-6 && es <= 1e-7,
             "%s: %dx%d extractor view (normalised) max err %.2e, %dx%d PDN view max err %.2e vs torchvision", tag,
             2 * v, 2 * v, eb, v, v, es);
  }
  free(big);
  free(small);
  vg_image_free(&im);
  vg_fixture_free(fx);
}

/* ------------------------------------------------------------------ end to end */
static char g_dir[256];

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static bool file_exists(const char *p) {
  struct stat s;
  return stat(p, &s) == 0;
}

static void base_opts(vg_effad_distill_opts *o, const vg_dataset *ds, const char *out) {
  vg_effad_distill_defaults(o);
  o->backbone = "resnet18";
  o->images = ds;
  o->out = out;
  o->view = 32;
  o->iters = 4;
  o->batch = 2;
  o->stats_images = 3;
  o->save_every = 0;
  o->seed = 7;
  o->p_grey = 0.5;     /* both branches of the grey decision within a few rows */
  o->quiet = true;
}

static bool same_teacher(const char *a, const char *b, int *ntensors) {
  vg_st_file *fa = NULL, *fb = NULL;
  bool same = vg_st_open(a, &fa) == VG_OK && vg_st_open(b, &fb) == VG_OK && vg_st_count(fa) == vg_st_count(fb);
  *ntensors = same ? vg_st_count(fa) : 0;
  for (int i = 0; same && i < vg_st_count(fa); i++) {
    vg_tensor *x = NULL, *y = NULL;
    same = vg_st_get(fa, vg_st_name(fa, i), VG_F32, &x) == VG_OK &&
           vg_st_get(fb, vg_st_name(fa, i), VG_F32, &y) == VG_OK && vg_same_shape(x, y) &&
           !memcmp(vg_f32(x), vg_f32(y), sizeof(float) * (size_t)vg_numel(x));
    vg_tensor_free(x);
    vg_tensor_free(y);
  }
  vg_st_close(fa);
  vg_st_close(fb);
  return same;
}

static void end_to_end(void) {
  char imgdir[512], outa[512], outb[512], ckb[600];
  tmp_path(imgdir, sizeof imgdir, "images");
  tmp_path(outa, sizeof outa, "a.safetensors");
  tmp_path(outb, sizeof outb, "b.safetensors");
  snprintf(ckb, sizeof ckb, "%s.ckpt.safetensors", outb);
  if (!VG_CHECK(vg_test_write_pngs(imgdir, 5), "5 PNG images written")) return;
  vg_dataset ds;
  if (!VG_CHECK(vg_ds_image_folder(imgdir, &ds) == VG_OK && ds.n == 5, "image folder lists 5 images")) return;

  /* A: 4 iterations straight */
  vg_effad_distill_opts o;
  double loss_a[4] = {0}, loss_b[4] = {0};
  base_opts(&o, &ds, outa);
  o.loss_log = loss_a;
  double t0 = now();
  vg_status st = vg_effad_distill(&o);
  double dt = now() - t0;
  VG_CHECK(st == VG_OK && file_exists(outa), "4 iterations (resnet18, view 32, batch 2) in %.2f s%s%s", dt,
           st == VG_OK ? "" : ": ", st == VG_OK ? "" : vg_last_error());
  bool finite = true;
  for (int i = 0; i < 4; i++) finite = finite && isfinite(loss_a[i]) && loss_a[i] > 0;
  VG_CHECK(finite && loss_a[0] > 0.2 && loss_a[0] < 5,
           "losses finite, the first ~ the standardised target variance (~1): %.4f %.4f %.4f %.4f", loss_a[0],
           loss_a[1], loss_a[2], loss_a[3]);
  /* the teacher loads strictly into a PDN, with or without padding */
  for (int pad = 0; pad < 2; pad++) {
    vg_nn_module *pdn = vg_effad_pdn_new(VG_EFFAD_S, 384, pad, 99);
    st = vg_nn_load_state_file(pdn, outa, true);
    VG_CHECK(st == VG_OK, "teacher loads strictly into vg_effad_pdn_new(S, 384, padding=%d)%s%s", pad,
             st == VG_OK ? "" : ": ", st == VG_OK ? "" : vg_last_error());
    vg_nn_free(pdn);
  }
  vg_st_file *f = NULL;
  if (VG_CHECK(vg_st_open(outa, &f) == VG_OK, "teacher opens")) {
    const char *fmt = vg_st_meta(f, "format"), *bb = vg_st_meta(f, "backbone"), *it = vg_st_meta(f, "iters"),
               *sd = vg_st_meta(f, "seed"), *w = vg_st_meta(f, "weights");
    VG_CHECK(vg_st_count(f) == 8 && fmt && !strcmp(fmt, "vigil-effad-teacher") && bb && !strcmp(bb, "resnet18") && it &&
                 !strcmp(it, "4") && sd && !strcmp(sd, "7") && w && !strcmp(w, "random-init"),
             "teacher: 8 tensors (PDN-S state dict), metadata format/backbone/iters/seed/weights");
    vg_st_close(f);
  }

  /* B: interrupted after 2 of 4 iterations, then resumed */
  base_opts(&o, &ds, outb);
  o.loss_log = loss_b;
  o.stop_after = 2;
  st = vg_effad_distill(&o);
  VG_CHECK(st == VG_OK && file_exists(ckb) && !file_exists(outb),
           "stopped after 2 iterations: checkpoint written, no teacher yet");
  base_opts(&o, &ds, outb);
  o.loss_log = loss_b;
  o.resume = true;
  st = vg_effad_distill(&o);
  VG_CHECK(st == VG_OK && file_exists(outb), "resumed to 4 iterations%s%s", st == VG_OK ? "" : ": ",
           st == VG_OK ? "" : vg_last_error());
  int nt = 0;
  bool same = same_teacher(outa, outb, &nt);
  VG_CHECK(same && nt == 8 && !memcmp(loss_a, loss_b, sizeof loss_a),
           "2 + resume + 2 iterations == 4 straight: %d teacher tensors and 4 losses bit-identical", nt);

  /* the decoding threads change nothing: 1 and 4 workers (the batch producer is a
   * vg_loader whose sampler walks the streams) give A's teacher and losses */
  for (int w = 1; w <= 4; w += 3) {
    double loss_w[4] = {0};
    base_opts(&o, &ds, outb);
    o.loss_log = loss_w;
    o.workers = w;
    st = vg_effad_distill(&o);
    same = st == VG_OK && same_teacher(outa, outb, &nt);
    VG_CHECK(same && nt == 8 && !memcmp(loss_a, loss_w, sizeof loss_a), "%d decoding worker%s: teacher and losses bit-identical%s%s",
             w, w > 1 ? "s" : "", st == VG_OK ? "" : ": ", st == VG_OK ? "" : vg_last_error());
  }

  /* resuming with another batch size is refused */
  base_opts(&o, &ds, outb);
  o.resume = true;
  o.batch = 3;
  st = vg_effad_distill(&o);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "batch"), "resume with another batch refused: %s", vg_last_error());

  /* the loss falls on a fixed batch (2 images, batch 2, no grey, lr 1e-3) */
  char fixdir[512], outc[512];
  tmp_path(fixdir, sizeof fixdir, "fixed");
  tmp_path(outc, sizeof outc, "c.safetensors");
  vg_dataset ds2;
  if (VG_CHECK(vg_test_write_pngs(fixdir, 2) && vg_ds_image_folder(fixdir, &ds2) == VG_OK, "2-image folder")) {
    double loss_c[6] = {0};
    base_opts(&o, &ds2, outc);
    o.iters = 6;
    o.out_channels = 64;
    o.p_grey = 0;
    o.lr = 1e-3;
    o.loss_log = loss_c;
    st = vg_effad_distill(&o);
    VG_CHECK(st == VG_OK && loss_c[5] < 0.8 * loss_c[0], "loss on a fixed batch falls: %.4f -> %.4f (6 Adam steps)",
             loss_c[0], loss_c[5]);
    /* NaN / Inf loss names the iteration: lr 1e30 blows the PDN up after one step */
    base_opts(&o, &ds2, outc);
    o.out_channels = 64;
    o.lr = 1e30;
    st = vg_effad_distill(&o);
    VG_CHECK(st == VG_ERR_NUMERIC && strstr(vg_last_error(), "iteration 2"), "non-finite loss reported: %s",
             vg_last_error());
    vg_dataset_free(&ds2);
  }

  /* errors */
  base_opts(&o, &ds, outc);
  o.backbone = "resnet19";
  st = vg_effad_distill(&o);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "resnet19"), "bad backbone: %s", vg_last_error());
  char wpath[512];
  tmp_path(wpath, sizeof wpath, "r18.safetensors");
  vg_nn_module *r18 = vg_resnet_new("resnet18", VG_RESNET_LAYER3, 0);
  vg_nn_list sd = vg_nn_state_dict(r18);
  st = vg_st_save(wpath, sd.n, (const char *const *)sd.names, sd.tensors, NULL);
  vg_nn_list_free(&sd);
  vg_nn_free(r18);
  base_opts(&o, &ds, outc);
  o.weights = wpath;
  o.backbone = "resnet50";
  st = st == VG_OK ? vg_effad_distill(&o) : st;
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "resnet50") && strstr(vg_last_error(), "r18.safetensors"),
           "resnet18 weights for resnet50 refused: %.200s", vg_last_error());
  base_opts(&o, &ds, outc);
  o.resume = true;
  unlink(outc);
  char ckc[600];
  snprintf(ckc, sizeof ckc, "%s.ckpt.safetensors", outc);
  unlink(ckc);
  st = vg_effad_distill(&o);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "resume"), "resume without a checkpoint: %s", vg_last_error());
  vg_dataset empty = {0};
  base_opts(&o, &empty, outc);
  st = vg_effad_distill(&o);
  VG_CHECK(st == VG_ERR_ARG && strstr(vg_last_error(), "empty"), "empty dataset: %s", vg_last_error());
  vg_dataset_free(&ds);

  char missing[512], emptydir[512];
  tmp_path(missing, sizeof missing, "no-such-dir");
  tmp_path(emptydir, sizeof emptydir, "empty");
  mkdir(emptydir, 0755);
  vg_dataset d3;
  VG_CHECK(vg_ds_image_folder(missing, &d3) == VG_ERR_IO && strstr(vg_last_error(), "missing"),
           "missing image folder: %s", vg_last_error());
  VG_CHECK(vg_ds_image_folder(emptydir, &d3) == VG_ERR_IO && strstr(vg_last_error(), "no images"),
           "empty image folder: %s", vg_last_error());
}

static void cleanup(void) {
  static const char *const files[] = {"a.safetensors", "a.safetensors.ckpt.safetensors", "b.safetensors",
                                      "b.safetensors.ckpt.safetensors", "c.safetensors",
                                      "c.safetensors.ckpt.safetensors", "r18.safetensors"};
  char p[600];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    tmp_path(p, sizeof p, files[i]);
    unlink(p);
  }
  for (int i = 0; i < 5; i++) {
    snprintf(p, sizeof p, "%s/images/img%02d.png", g_dir, i);
    unlink(p);
    snprintf(p, sizeof p, "%s/fixed/img%02d.png", g_dir, i);
    unlink(p);
  }
  static const char *const dirs[] = {"images", "fixed", "empty"};
  for (size_t i = 0; i < 3; i++) {
    tmp_path(p, sizeof p, dirs[i]);
    rmdir(p);
  }
  rmdir(g_dir);
}

int main(void) {
  vg_set_num_threads(2);
  views_vs_torchvision();
  snprintf(g_dir, sizeof g_dir, "/tmp/vg_test_distill_XXXXXX");
  if (VG_CHECK(mkdtemp(g_dir), "temp dir")) {
    end_to_end();
    cleanup();
  }
  targets_errors();
  targets_vs_torch("resnet18");
  if (vg_test_long()) {   /* 25M / 83M parameters to build: long runs */
    targets_vs_torch("wide_resnet50_2");   /* WRN-101's layer2/layer3 widths: the same pooling bins */
    targets_vs_torch("wide_resnet101_2");
  }
  return vg_test_finish();
}
