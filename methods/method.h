/* methods/method.h — the contract every anomaly-detection method implements, so that
 * the `vigil` program (train / test / predict / bench) drives FastFlow, CFLOW-AD and
 * EfficientAD — and the next method a researcher writes — the same way.
 *
 *   vg_method *m;
 *   if (vg_method_create("fastflow", cfg_json, &m) != VG_OK) puts(vg_last_error());
 *   m->ops->fit_begin(m, &train_ds);                     // statistics passes (may be NULL)
 *   for (step...) m->ops->train_step(m, batch_images, step, &loss);
 *   m->ops->fit_end(m, &val_ds);                         // e.g. map normalisation (may be NULL)
 *   m->ops->predict(m, images, maps, scores);            // N x H x W maps, N scores
 *   m->ops->finalize(m, all_maps, n, h, w, all_scores);  // set-level post-processing (may be NULL)
 *   vg_method_free(m);
 *
 * Data flow. The CLI builds a vg_loader over the dataset with the method's input size
 * and the method's transforms (train_transform for training batches, test_transform for
 * fit_begin/fit_end/predict), so decoding/augmentation runs on loader threads. A method
 * that needs two views of a training sample (EfficientAD: the image and an augmented copy
 * for the autoencoder) either declares train_channels = 6 and writes both views in its
 * train_transform, or (EfficientAD) derives the second view in train_step from a draw
 * keyed on (seed, step), which keeps resumed runs identical.
 *
 * Configuration. Each method declares its config keys once, as a vg_cfg_field table
 * (methods/config.h: key, kind, range, default, help, the struct member it sets) named by its
 * vg_method_def. create() applies a JSON object of overrides with vg_cfg_parse (NULL = all
 * defaults; an unknown key or a value out of range is an error naming it) and config_json()
 * writes the complete config with vg_cfg_json (every field, defaults included) — that is
 * what the run directory stores and what resume/test read back. The same table prints
 * `vigil train METHOD --help`.
 *
 * A new method: its folder methods/NAME/ (the Makefile compiles every methods/{*}/{*}.c)
 * and one line VG_METHOD(NAME) in methods/registry.c; nothing else names it (the CLI's
 * method lists, `train NAME --help`, bench and --from-anomalib read the descriptor):
 *
 *   typedef struct { vg_method base; int size; double lr; } mine;   // config members
 *   static const vg_cfg_field MINE_CONFIG[] = {
 *     {"input_size", VG_CFG_INT, VG_CFG_AT(mine, size), .idef = 256, .ilo = 32, .ihi = 4096, .help = "..."},
 *     {"lr", VG_CFG_NUM, VG_CFG_AT(mine, lr), .def = 1e-3, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI},
 *     {NULL}};
 *   static char *mine_config_json(const vg_method *m) { return vg_cfg_json("mine", MINE_CONFIG, m); }
 *   static vg_status mine_new(const vg_json *cfg, vg_method **out) {
 *     mine *m = calloc(1, sizeof *m);
 *     vg_cfg_defaults(MINE_CONFIG, m);
 *     vg_status st = vg_cfg_parse("mine", MINE_CONFIG, cfg, m);   // unknown key / bad value: named
 *     ...                                                          // build, set m->base.ops etc.
 *   }
 *   const vg_method_def vg_method_mine = {.name = "mine", .summary = "...", .create = mine_new,
 *                                          .config = MINE_CONFIG};
 * (tests/test_method_config.c then checks every key of it: round trip, ranges, help.)
 *
 * Checkpoints. save() writes one safetensors file holding the parameters, the optimizer
 * state, the step counter, the RNG state and every buffer test needs (normalisation
 * statistics, quantiles), with the config JSON in its metadata; load() restores all of
 * it, so `--resume` continues the same schedule and RNG stream, and `test`/`predict`
 * work from the checkpoint alone.
 *
 * Ownership: predict()/finalize() write into caller buffers; tensors passed in are
 * borrowed. train_step/predict run inside a vg_scope the method opens and closes itself
 * (nothing allocated per step survives the call). */
#ifndef VG_METHODS_METHOD_H
#define VG_METHODS_METHOD_H
#include <stdint.h>
#include "base/status.h"
#include "tensor/tensor.h"
#include "base/json.h"
#include "datasets/datasets.h"
#include "nn/nn.h"
#include "methods/config.h"

typedef struct vg_method vg_method;
struct vg_anomalib_infer;   /* methods/anomalib_import.h */

typedef struct {
  const char *name;            /* "fastflow", "cflow", "efficientad" */
  /* Statistics before training over the training split (EfficientAD: teacher channel
   * mean/std). NULL = nothing to do. */
  vg_status (*fit_begin)(vg_method *m, const vg_dataset *train);
  /* One training iteration on a batch (N x train_channels x H x W, from train_transform).
   * `step` is the 0-based global iteration (schedules key on it). Writes the mean loss
   * of the iteration; a non-finite loss is an error (VG_ERR_NUMERIC) naming the step. */
  vg_status (*train_step)(vg_method *m, const vg_tensor *images, int64_t step, double *loss);
  /* After training, over the validation split (EfficientAD: quantile normalisation).
   * NULL = nothing to do. */
  vg_status (*fit_end)(vg_method *m, const vg_dataset *val);
  /* Anomaly maps at the input resolution: maps[N*H*W], scores[N] (score = max of the
   * map unless the method says otherwise). images: N x 3 x H x W from test_transform. */
  vg_status (*predict)(vg_method *m, const vg_tensor *images, float *maps, float *scores);
  /* Set-level post-processing once every test image went through predict (CFLOW-AD's
   * official normalisation by the maximum log-likelihood over the test set); rewrites
   * maps[n*h*w] / scores[n] in place, in predict order. NULL = none. */
  vg_status (*finalize)(vg_method *m, float *maps, int64_t n, int h, int w, float *scores);
  vg_status (*save)(const vg_method *m, const char *path);
  vg_status (*load)(vg_method *m, const char *path);
  /* The complete config as JSON text (malloc'd). */
  char *(*config_json)(const vg_method *m);
  /* The learning rate the next train_step uses (for the training log). NULL = none. */
  double (*current_lr)(const vg_method *m);
  /* The method's network (every parameter and buffer), for parameter counts and
   * inspection. NULL = the method has none. */
  vg_nn_module *(*module)(vg_method *m);
  /* Moves the method's tensors (network, optimizer state, statistics) to dev with float
   * tensors in dt (F16: inference on CUDA). Host-side counters may stay on the host.
   * Called through vg_method_to, which checks the request and records it. NULL = the
   * method runs on the CPU in f32 only. */
  vg_status (*to)(vg_method *m, vg_device dev, vg_dtype dt);
  /* The anomaly maps (N x 1 x H x W, the method's device and dtype, current scope) of
   * images (host or device) with no host round trip, so fixed-shape inference can be
   * captured as a CUDA graph (vigil bench). NULL + message on error. NULL op = the
   * method's maps need host post-processing (CFLOW-AD). */
  vg_tensor *(*forward_maps)(vg_method *m, const vg_tensor *images);
  void (*free)(vg_method *m);
} vg_method_ops;

struct vg_method {
  const vg_method_ops *ops;
  int input_h, input_w;        /* what the transforms produce */
  int train_channels;          /* channels of a training sample (3, or 6 for two views) */
  int train_batch;             /* the method's default batch size */
  int64_t default_steps;       /* default number of train_step calls */
  vg_transform_fn train_transform, test_transform;
  void *transform_user;
  bool random_backbone;        /* true when no pretrained weights were given */
  /* The number of train_step calls the run makes, set by the driver before training
   * (0 = unknown: the method's default_steps). Step schedules (EfficientAD's lr x0.1 at
   * 95 %) key on it. */
  int64_t total_steps;
  /* Where the method computes (vg_method_to; a new method is CPU / F32). train_step and
   * predict take host images and move them (vg_method_input); maps come back as f32. */
  vg_device device;
  vg_dtype dtype;
  /* The training driver's state (JSON text: step, fit_begin, fit_end), set before save():
   * save() stores it in the checkpoint's metadata ("vigil.run_state", nn/checkpoint.h), so
   * the parameters and the step they belong to are committed by one rename. NULL = none. */
  const char *run_state;
  /* > 0: `vigil train` evaluates the model on the test split every eval_every steps (and at
   * the end) and records each evaluation in RUNDIR/best_epoch.json; `vigil test` then adds
   * the best evaluation's numbers to metrics.json as best_epoch_* keys (CFLOW-AD's official
   * "best epoch" report, test-set model selection), the final model's numbers staying the
   * main ones. 0 = none. */
  int64_t eval_every;
};

/* Registry: name -> the method's descriptor (vg_method_def), which its own folder defines
 * (e.g. vg_method_fastflow in methods/fastflow/fastflow.c) and methods/registry.c lists
 * with one VG_METHOD(name) line. cfg may be NULL. */
typedef vg_status (*vg_method_ctor)(const vg_json *cfg, vg_method **out);
/* The short CPU schedule `vigil train` uses on the synthetic default (no --data) when
 * none of --steps/--epochs/--batch is given, so a fresh clone finishes in minutes on 2
 * cores: steps of batch, and (when not NULL) a backbone unless --backbone is given.
 * Not a paper schedule. steps 0 = the method has none (its defaults apply). */
typedef struct { int64_t steps; int batch; const char *backbone; } vg_method_quick;
typedef struct vg_method_def {
  const char *name;                 /* "fastflow": `vigil train fastflow`, config "method" */
  const char *summary;              /* one line for the help lists */
  vg_method_ctor create;            /* cfg: JSON overrides of the config table (NULL = defaults) */
  const vg_cfg_field *config;       /* every config key, once (methods/config.h) */
  vg_method_quick quick;
  /* The paper's schedule in epochs over the training split: `vigil train --data ...` without
   * --steps / --epochs / a --config train.steps trains this many epochs (0 = none: the
   * method's default_steps). */
  int64_t paper_epochs;
  /* true: the method never reads the validation split (no fit_end use): `vigil train` holds
   * nothing out of the training split (val_fraction 0 unless --val-fraction is given; the
   * run's config.json records it). false: the usual hold-out (EfficientAD's quantiles). */
  bool no_val;
  /* `vigil predict --from-anomalib` (NULL = the method has no anomalib import):
   * anomalib_infer: the structural config keys read off the checkpoint's tensors
   * (methods/anomalib_import.h: vg_anomalib_config runs it); anomalib_load: its weights into
   * m; anomalib_backbone: the frozen backbone the checkpoint may lack (NULL = it holds the
   * whole model: no --weights). */
  vg_status (*anomalib_infer)(struct vg_anomalib_infer *f);
  vg_status (*anomalib_load)(vg_method *m, const char *path);
  vg_nn_module *(*anomalib_backbone)(vg_method *m);
  /* `vigil bench` on a fresh (untrained) method: sets what training would (normalisation
   * statistics) so the timed path is the trained one. NULL = nothing to set. */
  void (*bench_prepare)(vg_method *m);
} vg_method_def;
/* Makes the method named name (built in or registered) with cfg's overrides. A method
 * create() returns without one of the ops every driver calls (name, train_step, predict,
 * save, load, config_json, free) or without its input size, train channels, batch and
 * transforms is freed and refused with a message naming what is missing. */
vg_status vg_method_create(const char *name, const vg_json *cfg, vg_method **out);
/* Adds a method from outside the tree (a researcher's program, before vg_cli_main): from then
 * on vg_method_find/defs/names/list/create and every `vigil` command see it, after the
 * built-in ones. d is borrowed for the life of the process (a static const descriptor).
 * Refused with VG_ERR_ARG and a message: NULL d, no name or a name that is not 1-64 of
 * [A-Za-z0-9_.-] starting with a letter, digit or '_', no create, no config table (a method
 * without keys gives {{NULL}}), a config table vg_cfg_table_ok refuses, a summary of more
 * than one line, a quick schedule with steps < 0 or steps > 0 and batch < 1, only one of
 * anomalib_infer / anomalib_load, a name already registered (built in or earlier), more
 * than VG_METHOD_MAX_REGISTERED registrations. Thread-safe; there is no unregister. */
#define VG_METHOD_MAX_REGISTERED 64
vg_status vg_method_register(const vg_method_def *d);
const vg_method_def *vg_method_find(const char *name);     /* NULL when not registered */
const vg_method_def *const *vg_method_defs(void);          /* NULL-terminated, registry order */
const char *const *vg_method_names(void);   /* NULL-terminated */
/* The registered names joined ("fastflow | cflow | ..."), in buf; anomalib_only: those with
 * an anomalib import, last separator " or " when sep is ", ". */
const char *vg_method_list(char *buf, size_t cap, const char *sep, bool anomalib_only);
void vg_method_free(vg_method *m);          /* NULL ok */
bool vg_method_quick_schedule(const char *name, vg_method_quick *out);
/* `vigil train METHOD --help`: the method's config keys (false: no such method). */
bool vg_method_print_config_help(FILE *out, const char *name);
/* Moves the method to dev (VG_CPU / VG_CUDA) computing in dt (VG_F32, or VG_F16 on
 * CUDA for inference: train_step refuses it). Clear errors for a method without
 * device support, a CPU-only build, f16 on the CPU. */
vg_status vg_method_to(vg_method *m, vg_device dev, vg_dtype dt);
/* x (host images) on the method's device in its dtype: x itself when already there,
 * else a copy in the current scope. */
const vg_tensor *vg_method_input(const vg_method *m, const vg_tensor *x);
/* The usual ops->to: net to dev/dt, the nhost host[] tensors (counters, bookkeeping read
 * on the host) kept on the CPU in their dtype, opt's state to dev when dt is f32. */
vg_status vg_method_move(vg_nn_module *net, vg_optim *opt, int nhost, vg_tensor *const *host, vg_device dev,
                         vg_dtype dt);
/* predict's tail: map (N x 1 x H x W, any device / dtype) to maps[N*H*W] as f32 and
 * scores[n] = max of image n's map. map NULL: the error already set. */
vg_status vg_method_maps_out(const vg_tensor *map, float *maps, float *scores);
/* Parses "cpu" / "cuda" and "f32" / "f16" (NULL = the default); false + message else. */
bool vg_parse_device(const char *s, vg_device *dev);
bool vg_parse_dtype(const char *s, vg_dtype *dt);
/* The usual save(): vg_nn_checkpoint_save of net + opt with the method's config JSON. */
vg_status vg_method_checkpoint_save(const vg_method *m, const vg_nn_module *net, vg_optim *opt, const char *path);

/* Memory a config asks for, checked before the constructor allocates anything: 16 bytes per
 * trained parameter (value, gradient, two Adam moments), 4 per frozen one, 4 per activation
 * float of one image. More than this machine can give (its physical memory, or the process's
 * address-space limit when lower) is VG_ERR_ARG naming the keys (`keys`, e.g. "input_size 4096,
 * flow_steps 64"), so a --set value inside each key's own range cannot combine into an
 * allocation that fails (an abort) or swaps for hours. Estimates, generous to real configs. */
vg_status vg_method_check_memory(const char *method, const char *keys, double trained, double frozen,
                                 double act_floats);
/* Bytes this process may use: the machine's physical memory, or the address-space limit
 * (ulimit -v) when lower; *what names which (for messages). 0 when neither is known. */
double vg_memory_limit(const char **what);
/* Activation floats of one S x S image through a ResNet up to its last needed stage: the
 * stem's tensors at S/2 and S/4, about 12 tensors per stage (ch = channels of layer1..4). */
static inline double vg_method_resnet_act(double S, const int ch[4], int last_stage) {
  double a = 3 * 64 * (S / 2) * (S / 2) + 64 * (S / 4) * (S / 4);
  for (int l = 0; l <= last_stage && l < 4; l++) {
    double side = S / (4 << l);
    a += 12.0 * ch[l] * side * side;
  }
  return a;
}
#endif
