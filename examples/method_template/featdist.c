/* featdist.c — a complete anomaly-detection method written outside Vigil's tree, on the
 * method contract (methods/method.h). Copy this folder, rename "featdist", change the math.
 *
 * The method ("feature distance"): a frozen ResNet-18 (random, or torchvision weights with
 * --weights) maps each image to a feature map f (C x h x w, one layer). Training is one pass
 * over the good training images that keeps the mean feature of every position,
 *     mu(c, y, x) = mean over the training images of f(c, y, x),
 * and the anomaly map of a test image is the distance to it, upsampled to the input size:
 *     d(y, x) = || f(:, y, x) - mu(:, y, x) ||_2        score = max over (y, x) of the map.
 * (PaDiM without the covariance: small, but a real method that separates the synthetic
 * defects from the good images.)
 *
 * What Vigil does for it, once registered (main.c): `train` builds the loader with the
 * method's transforms and input size, calls fit_begin / train_step / fit_end, writes
 * checkpoints and config.json; `test` / `predict` call load + predict, write maps, scores,
 * metrics.json and the report; `bench` times forward_maps; `--resume`, `--device`,
 * `--set key=value` and `train featdist --help` come from the tables below. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "vigil.h"          /* the whole public API (pkg-config --cflags vigil) */
#include "featdist.h"

/* ---- 1. The method's state: vg_method first (Vigil holds a vg_method *), then the config
 * members (one per config key), then what the method computes. */
typedef struct {
  vg_method base;
  int64_t size;               /* config: input_size */
  char backbone_name[32];     /* config: backbone */
  char weights[1024];         /* config: weights ("" = random backbone) */
  int layer;                  /* config: layer (index into LAYERS) */
  int64_t seed;               /* config: seed of the random backbone */
  int64_t workers;            /* config: loader threads of the statistics pass */
  vg_nn_module *net;          /* "backbone" child + "mean" and "count" buffers: one module, so
                                 checkpoints, device moves and parameter counts are one call */
  vg_nn_module *backbone;     /* borrowed: net's child */
} featdist;

static const char *const LAYERS[] = {"layer1", "layer2", "layer3", NULL};

/* ---- 2. The config table: every key once. It drives --set / --config parsing, the complete
 * config.json, error messages naming the key, and `train featdist --help` (methods/config.h). */
static const vg_cfg_field FD_CONFIG[] = {
  {"input_size", VG_CFG_INT, VG_CFG_AT(featdist, size), .idef = 128, .ilo = 32, .ihi = 1024, .imul = 32,
   .help = "side of the square input image"},
  {"backbone", VG_CFG_STR, VG_CFG_AT(featdist, backbone_name), .sdef = "resnet18", .flags = VG_CFG_IDENT,
   .want = "a ResNet name", .help = "resnet18 | resnet50 | wide_resnet50_2 (frozen)"},
  {"weights", VG_CFG_STR, VG_CFG_AT(featdist, weights), .want = "a file path (< 1024 bytes)",
   .help = "torchvision backbone weights (.pth / .safetensors); \"\" = random backbone"},
  {"layer", VG_CFG_ENUM, VG_CFG_AT(featdist, layer), .idef = 1, .choices = LAYERS,
   .help = "the feature layer the distance is taken on"},
  {"seed", VG_CFG_INT, VG_CFG_AT(featdist, seed), .idef = 0, .ilo = 0, .ihi = INT64_MAX,
   .help = "seed of the random backbone"},
  {"workers", VG_CFG_INT, VG_CFG_AT(featdist, workers), .idef = 2, .ilo = 1, .ihi = 64,
   .help = "loader threads of the statistics pass"},
  {NULL}};

static char *fd_config_json(const vg_method *mm) { return vg_cfg_json("featdist", FD_CONFIG, mm); }

/* ---- 3. The maps, as tensor ops on the method's device (CPU, or CUDA after --device cuda):
 * N x 1 x H x W in the current scope. Used by predict and, unchanged, by `vigil bench`. */
static vg_tensor *fd_forward_maps(vg_method *mm, const vg_tensor *images) {
  featdist *m = (featdist *)mm;
  const vg_tensor *x = vg_method_input(mm, images);   /* host batch -> the method's device/dtype */
  vg_tensor *f = NULL;
  if (!x || vg_resnet_features(m->backbone, x, &f) != VG_OK) return NULL;
  vg_tensor *d = vg_sub(f, vg_nn_buffer(m->net, "mean"));                /* N,C,h,w - C,h,w */
  vg_tensor *dist = vg_sqrt(vg_sum(vg_mul(d, d), 1, (int[]){1}, true));  /* N,1,h,w */
  return vg_interpolate_bilinear(dist, mm->input_h, mm->input_w, false); /* NULL propagates */
}

/* ---- 4. The contract's ops. */

/* Statistics pass over the training split: sum the features per position, divide. Vigil
 * gives the dataset; the method makes its own loader (test_transform: no augmentation). */
static vg_status fd_fit_begin(vg_method *mm, const vg_dataset *train) {
  featdist *m = (featdist *)mm;
  if (!train || train->n == 0) return vg_fail(VG_ERR_ARG, "featdist: empty training set");
  vg_tensor *mean = vg_nn_buffer(m->net, "mean");
  int64_t P = vg_numel(mean), count = 0;
  double *acc = calloc((size_t)P, sizeof *acc);
  float *host = malloc((size_t)P * sizeof *host);
  vg_loader_opts o = {.batch_size = 8, .workers = (int)m->workers, .channels = 3, .height = mm->input_h,
                      .width = mm->input_w, .transform = mm->test_transform, .user = mm->transform_user};
  vg_loader *L = NULL;
  vg_status st = acc && host ? vg_loader_create(train, &o, &L) : vg_fail(VG_ERR_NOMEM, "featdist: out of memory");
  if (st == VG_OK) st = vg_loader_start_epoch(L, 0);
  while (st == VG_OK) {
    vg_batch b;
    if ((st = vg_loader_next(L, &b)) != VG_OK || b.n == 0) break;
    vg_scope_begin();   /* every tensor below is freed by vg_scope_end */
    const vg_tensor *x = vg_method_input(mm, b.images);
    vg_tensor *f = NULL;
    st = x ? vg_resnet_features(m->backbone, x, &f) : vg_last_status();
    vg_tensor *s = st == VG_OK ? vg_sum(f, 1, (int[]){0}, false) : NULL;      /* C,h,w */
    if (st == VG_OK) st = s ? vg_to_host(s, VG_F32, host) : vg_last_status();   /* any device */
    vg_scope_end();
    for (int64_t i = 0; st == VG_OK && i < P; i++) acc[i] += host[i];
    count += b.n;
    vg_batch_free(&b);
  }
  vg_loader_destroy(L);
  if (st == VG_OK) {
    for (int64_t i = 0; i < P; i++) host[i] = (float)(acc[i] / (double)count);
    float c = (float)count;
    st = vg_from_host_(mean, VG_F32, host);                         /* into the buffer, any device */
    if (st == VG_OK) st = vg_from_host_(vg_nn_buffer(m->net, "count"), VG_F32, &c);
  }
  free(acc);
  free(host);
  return st;
}

/* Nothing to train by gradient: the statistics are the model. (A trained method runs its
 * forward, loss, vg_backward and optimizer step here, in its own vg_scope.) */
static vg_status fd_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  (void)mm; (void)images; (void)step;
  *loss = 0;
  return VG_OK;
}

static vg_status fd_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  featdist *m = (featdist *)mm;
  float count = 0;
  vg_status st = vg_to_host(vg_nn_buffer(m->net, "count"), VG_F32, &count);
  if (st == VG_OK && count <= 0) st = vg_fail(VG_ERR_ARG, "featdist: predict before fit (no statistics)");
  if (st != VG_OK) return st;
  vg_scope_begin();
  st = vg_method_maps_out(fd_forward_maps(mm, images), maps, scores);   /* maps, score = max */
  vg_scope_end();
  return st;
}

/* Checkpoint: the module (backbone + mean + count) and the config JSON, one safetensors file
 * written atomically; run_state (the driver's step counters) rides in its metadata. */
static vg_status fd_save(const vg_method *mm, const char *path) {
  return vg_method_checkpoint_save(mm, ((const featdist *)mm)->net, NULL, path);
}
static vg_status fd_load(vg_method *mm, const char *path) {
  return vg_nn_checkpoint_load(path, ((featdist *)mm)->net, NULL, NULL);   /* strict: names, shapes */
}

static vg_nn_module *fd_module(vg_method *mm) { return ((featdist *)mm)->net; }

/* --device cuda [--dtype f16]: the whole module moves; no host-side state to keep. */
static vg_status fd_to(vg_method *mm, vg_device dev, vg_dtype dt) {
  return vg_method_move(((featdist *)mm)->net, NULL, 0, NULL, dev, dt);
}

/* `vigil bench featdist` times an untrained method: mark it fitted (the mean stays zero; the
 * timed path is the trained one). */
static void fd_bench_prepare(vg_method *mm) {
  float one = 1;
  vg_from_host_(vg_nn_buffer(((featdist *)mm)->net, "count"), VG_F32, &one);
}

static void fd_free(vg_method *mm) {
  featdist *m = (featdist *)mm;
  vg_nn_free(m->net);   /* frees the backbone child and the buffers */
  free(m);
}

static const vg_method_ops FD_OPS = {
  .name = "featdist", .fit_begin = fd_fit_begin, .train_step = fd_train_step, .predict = fd_predict,
  .save = fd_save, .load = fd_load, .config_json = fd_config_json, .module = fd_module, .to = fd_to,
  .forward_maps = fd_forward_maps, .free = fd_free,
};

/* ---- 5. The constructor: defaults, the overrides in cfg (NULL = none), then build. Every
 * error is a vg_status with a message naming the key (vg_cfg_parse does that for the table). */
static vg_status fd_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  featdist *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "featdist: out of memory");
  vg_cfg_defaults(FD_CONFIG, m);
  vg_status st = vg_cfg_parse("featdist", FD_CONFIG, cfg, m);
  if (st != VG_OK) { free(m); return st; }
  m->backbone = vg_resnet_new(m->backbone_name, VG_RESNET_LAYER1 << m->layer, (uint64_t)m->seed);
  if (!m->backbone) { free(m); return vg_fail_prefix("featdist"); }   /* "unknown backbone ..." */
  if (m->weights[0] && (st = vg_nn_load_state_file(m->backbone, m->weights, false)) != VG_OK) {
    vg_nn_free(m->backbone);
    free(m);
    return vg_fail_prefix("featdist: --weights");
  }
  int64_t C = vg_resnet_feature_channels(m->backbone, 0), side = m->size / (4 << m->layer);
  m->net = vg_nn_module_new("FeatDist", NULL, NULL, NULL);
  vg_nn_add_child(m->net, "backbone", m->backbone);
  vg_nn_add_buffer(m->net, "mean", vg_tensor_new(VG_F32, 3, (int64_t[]){C, side, side}));
  vg_nn_add_buffer(m->net, "count", vg_tensor_new(VG_F32, 1, (int64_t[]){1}));
  /* what the driver reads off the method */
  m->base.ops = &FD_OPS;
  m->base.input_h = m->base.input_w = (int)m->size;
  m->base.train_channels = 3;
  m->base.train_batch = 8;
  m->base.default_steps = 0;                 /* statistics only: no gradient steps */
  m->base.train_transform = m->base.test_transform = vg_imagenet_transform;   /* resize + ImageNet norm */
  m->base.random_backbone = !m->weights[0];
  *out = &m->base;
  return VG_OK;
}

/* ---- 6. The descriptor main.c registers: name, one-line summary, constructor, config table. */
const vg_method_def featdist_method = {
  .name = "featdist",
  .summary = "per-position mean ResNet feature of the good images; map = feature distance (template)",
  .create = fd_new,
  .config = FD_CONFIG,
  .bench_prepare = fd_bench_prepare,
};
