/* test_cuda_methods.c — each method end to end on CUDA against the CPU (issue #8):
 * two copies of a method built from the same config (same random init), one moved to
 * the GPU with vg_method_to; the same training batches through train_step on both
 * (forward, GPU autograd, the CUDA Adam kernel), then predict on the same test images.
 *
 *   f32: losses within 1e-4 relative per step; maps within 1e-4 of max|cpu map| after
 *        the training steps (the GEMMs sum in another order, so not bit-identical);
 *        scores within the same bound.
 *   f16: the trained GPU copy moved to f16 (weights rounded once): maps within 5e-3 of
 *        max|cpu map| (measured on the host emulator: FastFlow 9.8e-4, CFLOW 5.4e-4) — an
 *        f16 network carries 2^-11 relative rounding per op over ~10-20 layers; the map
 *        tails (squares, means, exp) run in f32 as under torch autocast — and the score
 *        ranking of the test images identical to the CPU's.
 *   graphs: FastFlow's, CFLOW's and EfficientAD's device part (forward_maps) captured as a CUDA
 *        graph and replayed: maps bit-identical to predict's, f32 and f16.
 *   device plumbing: a checkpoint saved from the GPU copy loads into a CPU copy whose
 *        predict matches the GPU's f32 maps (1e-4); f16 training and f16 on the CPU are
 *        refused with a message.
 *
 *   distillation (vigil distill --device cuda): the GPU target pipeline (folded 3x3
 *        convolutions) within 1e-5 of max|cpu| of the CPU's direct kernels; 3 iterations
 *        (statistics, targets, PDN-S, Adam) on both: losses within 1e-4 relative, the
 *        teacher's updates within 1e-2 in relative L2 (Adam's first steps amplify rounding
 *        for gradients ~ its eps); a GPU checkpoint resumed on the CPU gives the same.
 *
 * EfficientAD (input >= 256) costs ~76 GFLOP per image, minutes under the host emulator
 * (make CUDA_EMU=1): there it runs with VIGIL_TEST_LONG=1 only. Without a GPU (or in a
 * CPU-only build) the test prints one SKIP line. */
#include "tests/vgtest.h"
#include "methods/method.h"
#include "base/json.h"
#include "methods/efficientad/distill.h"
#include "nn/backbones/backbones.h"
#include "nn/backbones/vit.h"
#include "nn/safetensors.h"
#include "tests/common/images.h"
#include <unistd.h>

static vg_method *make(const char *name, const char *cfg) {
  vg_json *j = NULL;
  vg_method *m = NULL;
  if (vg_json_parse(cfg, strlen(cfg), NULL, &j) != VG_OK || vg_method_create(name, j, &m) != VG_OK) {
    fprintf(stderr, "%s: %s\n", name, vg_last_error());
    m = NULL;
  }
  vg_json_free(j);
  return m;
}

static vg_tensor *images(int n, int size, uint64_t seed) {
  vg_tensor *x = vg_tensor_new(VG_F32, 4, (int64_t[]){n, 3, size, size});
  vg_uniform_(x, 0.0f, 1.0f, seed);
  return x;
}

static double max_abs(const float *a, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
  return m;
}

/* |a - b| <= tol * max|b| everywhere; prints the worst relative-to-max error */
static int close_to_max(const float *a, const float *b, int64_t n, double tol, const char *what) {
  double mx = max_abs(b, n), worst = 0;
  int finite = 1;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(a[i])) finite = 0;
    worst = fmax(worst, fabs((double)a[i] - b[i]));
  }
  return VG_CHECK(finite && worst <= tol * mx, "%s: max |cuda - cpu| = %.3g of max|cpu| %.3g (%.2e, bound %.0e)", what,
                  worst, mx, mx > 0 ? worst / mx : worst, tol);
}

static bool same_ranking(const float *a, const float *b, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if ((a[i] < a[j]) != (b[i] < b[j])) return false;
  return true;
}

/* The device part (forward_maps) captured as a CUDA graph from a static input to a
 * static map, replayed on x: maps identical to predict's (want) bit for bit. */
static void graph_check(vg_method *m, const vg_tensor *x, const float *want, const char *what) {
  if (!m->ops->forward_maps) return;
  int64_t n = x->shape[0], H = x->shape[2], W = x->shape[3];
  vg_tensor *in = vg_tensor_new_on(VG_CUDA, m->dtype, 4, x->shape);
  vg_tensor *out = vg_tensor_new_on(VG_CUDA, VG_F32, 4, (int64_t[]){n, 1, H, W});   /* maps are f32 */
  vg_status st = vg_cuda_graph_begin();
  vg_cuda_graph *g = NULL;
  if (st == VG_OK) {
    vg_scope_begin();
    vg_tensor *y = m->ops->forward_maps(m, in);
    if (y) vg_copy_(out, y);
    vg_scope_end();
    g = vg_cuda_graph_end();
  }
  float *got = malloc(sizeof(float) * (size_t)(n * H * W)), sc[16];
  bool ok = g && vg_copy_(in, x) == VG_OK && vg_cuda_graph_replay(g) == VG_OK &&
            vg_method_maps_out(out, got, sc) == VG_OK;
  VG_CHECK(ok, "%s: captured as a CUDA graph and replayed %s", what, ok ? "" : vg_last_error());
  if (ok) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n * H * W; i++) bad += got[i] != want[i];
    VG_CHECK(bad == 0, "%s: graph replay maps == predict's (%lld differ)", what, (long long)bad);
  }
  free(got);
  vg_cuda_graph_free(g);
  vg_tensor_free(in);
  vg_tensor_free(out);
}

static void run_method(const char *name, const char *cfg, int size, int batch, int steps, int ntest) {
  vg_method *cpu = make(name, cfg), *gpu = make(name, cfg);
  if (!VG_CHECK(cpu && gpu, "%s: built", name)) { vg_method_free(cpu); vg_method_free(gpu); return; }
  cpu->total_steps = gpu->total_steps = steps;
  vg_status st = vg_method_to(gpu, VG_CUDA, VG_F32);
  VG_CHECK(st == VG_OK, "%s: moved to cuda/f32 %s", name, st == VG_OK ? "" : vg_last_error());
  VG_CHECK(gpu->device == VG_CUDA && gpu->dtype == VG_F32, "%s: device recorded", name);
  /* training: same batches, same steps */
  for (int s = 0; s < steps; s++) {
    vg_tensor *x = images(batch, size, 100 + (uint64_t)s);
    double lc = NAN, lg = NAN;
    vg_status a = cpu->ops->train_step(cpu, x, s, &lc), b = gpu->ops->train_step(gpu, x, s, &lg);
    VG_CHECK(a == VG_OK && b == VG_OK && fabs(lc - lg) <= 1e-4 * fabs(lc) + 1e-6,
             "%s: step %d loss cpu %.9g cuda %.9g (rel %.2e; status %d/%d %s)", name, s, lc, lg,
             fabs(lc - lg) / fabs(lc), (int)a, (int)b, a == VG_OK && b == VG_OK ? "" : vg_last_error());
    vg_tensor_free(x);
  }
  /* predict */
  int64_t P = (int64_t)size * size, n = ntest;
  vg_tensor *xt = images(ntest, size, 7);
  float *mc = malloc(sizeof(float) * (size_t)(n * P)), *mg = malloc(sizeof(float) * (size_t)(n * P));
  float *mh = malloc(sizeof(float) * (size_t)(n * P));
  float sc[16], sg[16], sh[16];
  VG_CHECK(cpu->ops->predict(cpu, xt, mc, sc) == VG_OK, "%s: cpu predict", name);
  st = gpu->ops->predict(gpu, xt, mg, sg);
  VG_CHECK(st == VG_OK, "%s: cuda predict %s", name, st == VG_OK ? "" : vg_last_error());
  char what[96];
  snprintf(what, sizeof what, "%s f32 maps after %d steps", name, steps);
  close_to_max(mg, mc, n * P, 1e-4, what);
  snprintf(what, sizeof what, "%s f32 scores", name);
  close_to_max(sg, sc, n, 1e-4, what);
  snprintf(what, sizeof what, "%s f32", name);
  graph_check(gpu, xt, mg, what);
  /* the GPU copy's checkpoint loads into a fresh CPU copy: same maps */
  char path[64];
  snprintf(path, sizeof path, "/tmp/vg_cuda_methods_%d.safetensors", (int)getpid());
  vg_method *back = make(name, cfg);
  bool saved = back && gpu->ops->save(gpu, path) == VG_OK && back->ops->load(back, path) == VG_OK;
  VG_CHECK(saved, "%s: cuda checkpoint saved and loaded on the cpu %s", name, saved ? "" : vg_last_error());
  if (back && back->ops->predict(back, xt, mh, sh) == VG_OK) {
    snprintf(what, sizeof what, "%s cpu copy of the cuda checkpoint vs cuda maps", name);
    close_to_max(mh, mg, n * P, 1e-4, what);
  }
  remove(path);
  vg_method_free(back);
  /* f16 inference */
  st = vg_method_to(gpu, VG_CUDA, VG_F16);
  VG_CHECK(st == VG_OK, "%s: moved to cuda/f16 %s", name, st == VG_OK ? "" : vg_last_error());
  if (gpu->dtype == VG_F16) {
    st = gpu->ops->predict(gpu, xt, mg, sg);
    VG_CHECK(st == VG_OK, "%s: f16 predict %s", name, st == VG_OK ? "" : vg_last_error());
    if (st == VG_OK) {
      snprintf(what, sizeof what, "%s f16 maps", name);
      close_to_max(mg, mc, n * P, 5e-3, what);
      VG_CHECK(same_ranking(sg, sc, ntest), "%s: f16 score ranking of %d images = cpu's", name, ntest);
      snprintf(what, sizeof what, "%s f16", name);
      graph_check(gpu, xt, mg, what);
    }
    vg_tensor *x = images(batch, size, 100);
    double l;
    VG_CHECK(gpu->ops->train_step(gpu, x, steps, &l) != VG_OK && strstr(vg_last_error(), "f16"),
             "%s: f16 training refused: %s", name, vg_last_error());
    vg_tensor_free(x);
  }
  VG_CHECK(vg_method_to(cpu, VG_CPU, VG_F16) != VG_OK && strstr(vg_last_error(), "GPU"),
           "%s: f16 on the cpu refused: %s", name, vg_last_error());
  free(mc);
  free(mg);
  free(mh);
  vg_tensor_free(xt);
  vg_method_free(cpu);
  vg_method_free(gpu);
}

/* ------------------------------------------------ EfficientAD teacher distillation */
/* The target pipeline: the GPU's folded convolutions vs the CPU's direct kernels
 * (resnet18: layer2 128 and layer3 256 channels, so the pooling bins straddle channels). */
static void distill_targets(void) {
  vg_nn_module *cpu = vg_resnet_new("resnet18", VG_RESNET_LAYER2 | VG_RESNET_LAYER3, 5);
  vg_nn_module *gpu = vg_resnet_new("resnet18", VG_RESNET_LAYER2 | VG_RESNET_LAYER3, 5);
  vg_tensor *x = vg_tensor_new(VG_F32, 4, (int64_t[]){2, 3, 48, 48});
  vg_uniform_(x, -2.0f, 2.0f, 11);
  vg_tensor *tc = NULL, *tg = NULL;
  vg_scope_begin();
  bool ok = vg_nn_to(gpu, VG_CUDA, VG_F32) == VG_OK && vg_effad_distill_targets(cpu, x, 384, &tc) == VG_OK &&
            vg_effad_distill_targets(gpu, vg_to_device(x, VG_CUDA), 384, &tg) == VG_OK;
  if (VG_CHECK(ok && tg->device == VG_CUDA && vg_same_shape(tc, tg) && tc->shape[1] == 384 && tc->shape[2] == 6,
               "distill targets on the GPU: (2, 384, 6, 6) from a 48x48 batch%s%s", ok ? "" : ": ",
               ok ? "" : vg_last_error())) {
    vg_tensor *h = vg_to_device(tg, VG_CPU);
    close_to_max(vg_f32(h), vg_f32(tc), vg_numel(tc), 1e-5, "distill targets (folded 3x3 convs vs patch pooling)");
  }
  vg_status st = vg_effad_distill_targets(gpu, x, 384, &tg);
  VG_CHECK(st == VG_ERR_ARG && strstr(vg_last_error(), "CPU"), "a host batch for a GPU extractor is refused: %s",
           vg_last_error());
  vg_scope_end();
  vg_tensor_free(x);
  vg_nn_free(cpu);
  vg_nn_free(gpu);
}

static void distill_opts(vg_effad_distill_opts *o, const vg_dataset *ds, const char *out, vg_device dev, double *log) {
  vg_effad_distill_defaults(o);
  o->backbone = "resnet18";
  o->images = ds;
  o->out = out;
  o->view = 16;
  o->iters = 3;
  o->batch = 2;
  o->stats_images = 2;
  o->save_every = 0;
  o->seed = 3;
  o->p_grey = 0.5;
  o->quiet = true;
  o->device = dev;
  o->loss_log = log;
}

/* teacher files a and b against the PDN's initial weights w0 (seed 3), per tensor: the
 * updates a - w0 and b - w0 within tol in relative L2 norm. 3 Adam steps of lr 1e-4 move
 * a weight by <= 3e-4, so comparing the weights themselves would not see a wrong update;
 * and Adam's first steps are ~lr * g / (|g| + 1e-8): a weight whose gradient is ~1e-8
 * (tiny images, mostly padding) moves by a rounding-sensitive amount, so single elements
 * may differ by a good part of lr (printed) while the norm agrees. */
static void teachers_close(const char *a, const char *b, double tol, const char *what) {
  vg_nn_module *pdn = vg_effad_pdn_new(VG_EFFAD_S, 384, true, 3);
  vg_st_file *fa = NULL, *fb = NULL;
  bool ok = pdn && vg_st_open(a, &fa) == VG_OK && vg_st_open(b, &fb) == VG_OK && vg_st_count(fa) == vg_st_count(fb);
  double worst = 0, worst_el = 0;
  for (int i = 0; ok && i < vg_st_count(fa); i++) {
    vg_tensor *x = NULL, *y = NULL, *w0 = vg_nn_get(pdn, vg_st_name(fa, i));
    ok = w0 && vg_st_get(fa, vg_st_name(fa, i), VG_F32, &x) == VG_OK &&
         vg_st_get(fb, vg_st_name(fa, i), VG_F32, &y) == VG_OK && vg_same_shape(x, y) && vg_same_shape(x, w0);
    double e2 = 0, n2 = 0;
    for (int64_t k = 0; ok && k < vg_numel(x); k++) {
      double w = vg_f32(w0)[k], d = (double)vg_f32(x)[k] - vg_f32(y)[k], u = (double)vg_f32(y)[k] - w;
      e2 += d * d;
      n2 += u * u;
      worst_el = fmax(worst_el, fabs(d));
    }
    if (ok) worst = fmax(worst, n2 > 0 ? sqrt(e2 / n2) : e2 > 0 ? INFINITY : 0);
    vg_tensor_free(x);
    vg_tensor_free(y);
  }
  VG_CHECK(ok && worst <= tol, "%s: %d teacher tensors, ||update a - update b|| / ||update b|| <= %.2e (bound %.0e; "
           "worst element %.1e, lr 1e-4)", what, ok ? vg_st_count(fa) : 0, worst, tol, worst_el);
  vg_st_close(fa);
  vg_st_close(fb);
  vg_nn_free(pdn);
}

/* 3 iterations (statistics, targets, PDN-S forward/backward, Adam) on the GPU vs the CPU,
 * and a GPU run stopped after 1 iteration, resumed on the CPU */
static void distill_run(void) {
  char dir[] = "/tmp/vg_test_cuda_distill_XXXXXX";
  if (!VG_CHECK(mkdtemp(dir), "temp dir")) return;
  char img[128], oc[128], og[128], om[128];
  snprintf(img, sizeof img, "%s/images", dir);
  snprintf(oc, sizeof oc, "%s/cpu.safetensors", dir);
  snprintf(og, sizeof og, "%s/gpu.safetensors", dir);
  snprintf(om, sizeof om, "%s/mixed.safetensors", dir);
  vg_dataset ds;
  if (VG_CHECK(vg_test_write_pngs(img, 4) && vg_ds_image_folder(img, &ds) == VG_OK, "4-image folder")) {
    double lc[3] = {0}, lg[3] = {0}, lm[3] = {0};
    vg_effad_distill_opts o;
    distill_opts(&o, &ds, oc, VG_CPU, lc);
    vg_status sc = vg_effad_distill(&o);
    distill_opts(&o, &ds, og, VG_CUDA, lg);
    vg_status sg = vg_effad_distill(&o);
    VG_CHECK(sc == VG_OK && sg == VG_OK, "distill 3 iterations on the CPU and on the GPU%s%s",
             sc == VG_OK && sg == VG_OK ? "" : ": ", sc == VG_OK && sg == VG_OK ? "" : vg_last_error());
    double worst = 0;
    for (int i = 0; i < 3; i++) worst = fmax(worst, fabs(lg[i] - lc[i]) / fabs(lc[i]));
    VG_CHECK(sg == VG_OK && worst <= 1e-4, "distill losses GPU vs CPU: %.6f %.6f %.6f vs %.6f %.6f %.6f (worst rel %.1e)",
             lg[0], lg[1], lg[2], lc[0], lc[1], lc[2], worst);
    if (sc == VG_OK && sg == VG_OK) teachers_close(og, oc, 1e-2, "distilled teacher GPU vs CPU");
    /* 1 iteration on the GPU, checkpoint, 2 more on the CPU */
    distill_opts(&o, &ds, om, VG_CUDA, lm);
    o.stop_after = 1;
    vg_status s1 = vg_effad_distill(&o);
    distill_opts(&o, &ds, om, VG_CPU, lm);
    o.resume = true;
    vg_status s2 = vg_effad_distill(&o);
    VG_CHECK(s1 == VG_OK && s2 == VG_OK && fabs(lm[2] - lc[2]) <= 1e-4 * fabs(lc[2]),
             "a GPU checkpoint resumes on the CPU: last loss %.6f vs %.6f%s%s", lm[2], lc[2],
             s1 == VG_OK && s2 == VG_OK ? "" : ": ", s1 == VG_OK && s2 == VG_OK ? "" : vg_last_error());
    if (s2 == VG_OK) teachers_close(om, oc, 1e-2, "GPU 1 + CPU 2 iterations vs CPU 3");
    vg_dataset_free(&ds);
  }
  vg_test_rm_rf(dir);
}

/* ------------------------------------------------ every registry backbone on the GPU
 * Each family's features on CUDA (f32, and f16 storage with f32 accumulation) against the
 * CPU's, same test weights: the ops the new models use (attention's batched matmuls, softmax,
 * layer norm, erf GELU, grouped and depthwise convs, hardswish, concat, avg-pool) through the
 * CUDA op table. The ViTs are tiny models of the published architectures (vit.h). */
static vg_nn_module *bb_make(const char *name, int ntaps, const char *const *taps, const vg_vit_config *tiny) {
  vg_nn_module *m = tiny ? vg_vit_new_config(tiny, ntaps, taps, 1) : vg_backbone_new(name, ntaps, taps, 1);
  if (m && vg_backbone_init_philox(m, 77) != VG_OK) {
    vg_nn_free(m);
    m = NULL;
  }
  return m;
}

static void backbone_gpu(const char *name, int ntaps, const char *const *taps, int size, const vg_vit_config *tiny) {
  vg_nn_module *cpu = bb_make(name, ntaps, taps, tiny), *g32 = bb_make(name, ntaps, taps, tiny),
               *g16 = bb_make(name, ntaps, taps, tiny);
  vg_scope_begin();
  vg_tensor *x = images(2, size, 5), *fc[4] = {0}, *f32[4] = {0}, *f16[4] = {0};
  bool ok = cpu && g32 && g16 && vg_nn_to(g32, VG_CUDA, VG_F32) == VG_OK && vg_nn_to(g16, VG_CUDA, VG_F16) == VG_OK &&
            vg_backbone_features(cpu, x, fc) == VG_OK &&
            vg_backbone_features(g32, vg_to_device(x, VG_CUDA), f32) == VG_OK &&
            vg_backbone_features(g16, vg_cast(vg_to_device(x, VG_CUDA), VG_F16), f16) == VG_OK;
  VG_CHECK(ok, "%s on the GPU (f32 and f16)%s%s", name, ok ? "" : ": ", ok ? "" : vg_last_error());
  for (int i = 0; ok && i < ntaps; i++) {
    vg_tensor *a = vg_to_device(f32[i], VG_CPU), *b = vg_to_device(vg_cast(f16[i], VG_F32), VG_CPU);
    char what[160];
    bool shp = a && b && vg_same_shape(a, fc[i]) && vg_same_shape(b, fc[i]) && f16[i]->dtype == VG_F16;
    VG_CHECK(shp, "%s %s: GPU feature shapes and dtypes", name, taps[i]);
    if (!shp) continue;
    snprintf(what, sizeof what, "%s %s f32", name, taps[i]);
    close_to_max(vg_f32(a), vg_f32(fc[i]), vg_numel(a), 1e-4, what);
    snprintf(what, sizeof what, "%s %s f16", name, taps[i]);
    close_to_max(vg_f32(b), vg_f32(fc[i]), vg_numel(b), 1e-2, what);
  }
  vg_scope_end();
  vg_nn_free(cpu);
  vg_nn_free(g32);
  vg_nn_free(g16);
}

static void backbones_gpu(void) {
  vg_vit_config deit, cait;
  bool have = vg_vit_config_of("deit_base_distilled_patch16_384", &deit) &&
              vg_vit_config_of("cait_m48_448", &cait);
  VG_CHECK(have, "ViT configs by name");
  if (!have) return;
  deit.embed_dim = 48, deit.depth = 3, deit.num_heads = 3, deit.img_size = 64, deit.num_classes = 0;
  cait.embed_dim = 48, cait.depth = 3, cait.num_heads = 4, cait.img_size = 64, cait.num_classes = 0;
  cait.init_values = 0.1;   /* LayerScale large enough that the blocks matter */
  backbone_gpu("deit (tiny)", 2, (const char *[]){"blocks.0", "norm.2"}, 64, &deit);
  backbone_gpu("cait (tiny)", 2, (const char *[]){"blocks.1", "norm.2"}, 64, &cait);
  backbone_gpu("mobilenet_v3_large", 3, (const char *[]){"features.3", "features.6.proj", "features.7"}, 64, NULL);
  backbone_gpu("densenet201", 2, (const char *[]){"features.denseblock1", "features.transition1"}, 64, NULL);
  backbone_gpu("resnext101_32x8d", 1, (const char *[]){"layer1"}, 64, NULL);
}

int main(void) {
  if (!vg_cuda_available()) {
    printf("SKIP cuda methods: %s\n", vg_last_error());
    return vg_test_finish();
  }
  run_method("fastflow", "{\"backbone\": \"resnet18\", \"input_size\": 64, \"flow_steps\": 2}", 64, 2, 2, 3);
  run_method("cflow", "{\"backbone\": \"resnet18\", \"input_size\": 64, \"coupling_blocks\": 2, \"fiber_batch\": 8}",
             64, 2, 1, 3);
#ifdef VG_CUDA_EMU
  bool effad = vg_test_long();
  if (!effad) printf("SKIP efficientad on the host emulator (VIGIL_TEST_LONG=1 runs it)\n");
#else
  bool effad = true;
#endif
  if (effad) run_method("efficientad", "{\"model\": \"s\", \"teacher\": \"random\"}", 256, 1, 2, 2);
  backbones_gpu();
  distill_targets();
  distill_run();
  return vg_test_finish();
}
