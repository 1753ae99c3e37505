/* nn.h — modules with PyTorch-compatible parameter names, initializations, optimizers
 * and learning-rate schedules.
 *
 *   vg_nn_module *net = vg_nn_sequential_new(4, (vg_nn_module *[]){
 *       vg_nn_conv2d_new(3, 8, 3, 3, (vg_nn_conv2d_opts){.ph = 1, .pw = 1}, 1),
 *       vg_nn_batchnorm2d_new(8, 1e-5f, 0.1f, true, true),
 *       vg_nn_relu_new(),
 *       vg_nn_adaptive_avgpool2d_new(1, 1)});                 // net takes ownership
 *   vg_nn_list ps = vg_nn_named_parameters(net);              // "0.weight", "1.bias", ...
 *   vg_optim *opt = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 1e-3));
 *   vg_optim_add_group(opt, ps.n, ps.tensors, NULL);          // NULL: the optimizer's defaults
 *   vg_sched *lr = vg_sched_step_new(opt, 30, 0.1);           // torch StepLR
 *   for (int step = 0; step < steps; step++) {
 *     vg_scope_begin();
 *     vg_tensor *loss = vg_mse_loss(vg_nn_forward(net, x), y);
 *     vg_optim_zero_grad(opt);
 *     vg_backward(loss);
 *     vg_optim_step(opt);
 *     vg_scope_end();
 *   }
 *   vg_sched_step(lr);                                        // once per epoch, as torch
 *   vg_sched_free(lr); vg_optim_free(opt); vg_nn_list_free(&ps); vg_nn_free(net);
 *
 * Modules. A module has a kind ("Conv2d"), its own parameters and buffers under local
 * names ("weight", "running_mean"), and named children ("0", "layer1"). Iteration
 * yields dotted names built exactly as torch.nn.Module.state_dict() builds its keys:
 * per module, parameters, then buffers, then each child in order, recursively.
 * BatchNorm's `num_batches_tracked` is an i64 0-d buffer as in torch. A module owns
 * every tensor registered in it and every child added to it; vg_nn_free frees the
 * whole tree. Parameters are heap f32 tensors with requires_grad on; their grads
 * ACCUMULATE (+=) across vg_backward calls until vg_optim_zero_grad / vg_nn_zero_grad.
 * Forward returns tensors in the current scope (activation grads are written, never
 * accumulated). Each parameter is its own heap tensor (optimizer state is blocked, see
 * vg_optim_state); packing module parameters into one block is not done yet.
 *
 * Custom modules (backbones, methods) are built with vg_nn_module_new(kind, forward,
 * ctx), register their tensors with vg_nn_add_param/vg_nn_add_buffer and their
 * sub-modules with vg_nn_add_child, and call vg_nn_forward on the children.
 *
 * Randomness: initializers take a seed and use Vigil's Philox generator (so values
 * differ from torch's for the same seed; the distributions are torch's).
 *
 * Optimizers follow torch.optim (1.13, single-tensor path) to the letter: SGD
 * (momentum, dampening, nesterov, weight decay), Adam (L2 decay added to the gradient,
 * amsgrad), AdamW (decoupled decay), param groups with their own hyper-parameters,
 * parameters with no grad skipped. Their state is exposed as named tensors
 * ("state.<i>.exp_avg", "state.<i>.step", ...) for checkpoints.
 *
 * Schedules mirror torch.optim.lr_scheduler step by step (the recursive get_lr torch
 * uses when step() is called without an epoch), plus CFLOW-AD's warm-up + cosine and
 * EfficientAD's x0.1 at 95 %. */
#ifndef VG_NN_H
#define VG_NN_H
#include "tensor/tensor.h"
#include "autograd/autograd.h"

/* ======================================================================== modules */
typedef enum {
  VG_NN_CUSTOM = 0,
  VG_NN_SEQUENTIAL,
  VG_NN_IDENTITY,
  VG_NN_CONV2D,
  VG_NN_LINEAR,
  VG_NN_BATCHNORM2D,
  VG_NN_LAYERNORM,
  VG_NN_RELU,
  VG_NN_LEAKYRELU,
  VG_NN_GELU,
  VG_NN_SOFTPLUS,
  VG_NN_DROPOUT,
  VG_NN_UPSAMPLE,
  VG_NN_AVGPOOL2D,
  VG_NN_MAXPOOL2D,
  VG_NN_ADAPTIVE_AVGPOOL2D,
  VG_NN_KIND_COUNT
} vg_nn_kind;

typedef struct vg_nn_module vg_nn_module;
typedef vg_tensor *(*vg_nn_forward_fn)(vg_nn_module *m, const vg_tensor *x);

/* Conv2d options; zero fields mean torch's defaults (stride 1, padding 0, dilation 1,
 * groups 1, bias on). same_padding: torch's padding="same" (stride 1; an odd total
 * padding puts the extra pixel at the bottom/right, as torch). */
typedef struct {
  int sh, sw, ph, pw, dh, dw, groups;
  bool no_bias, same_padding;
} vg_nn_conv2d_opts;

typedef struct {
  char *name;
  vg_tensor *t;
} vg_nn_entry;

typedef struct {
  char *name;
  vg_nn_module *m;
} vg_nn_child;

struct vg_nn_module {
  vg_nn_kind kind;
  char *kind_name;                 /* "Conv2d", "BatchNorm2d", ... or the custom kind */
  bool training;                   /* vg_nn_train(); new modules start in training mode */
  int nparams, nbuffers, nchildren;
  vg_nn_entry *params, *buffers;   /* local names; tensors owned by the module */
  vg_nn_child *children;           /* owned */
  vg_nn_forward_fn forward;        /* custom modules (built-ins dispatch on kind) */
  void *ctx;                       /* custom modules' data, freed with free_ctx */
  void (*free_ctx)(void *ctx);
  union {                          /* built-in modules' options */
    struct { vg_conv2d_opts o; bool same; int kh, kw; } conv;
    struct { float eps, momentum; bool affine, track; } bn;   /* momentum < 0: None */
    struct { int nnorm; float eps; } ln;
    struct { float slope; } leaky;
    struct { float beta, threshold; } softplus;
    struct { float p; uint64_t seed, calls; } dropout;
    struct { int64_t oh, ow; double sh, sw; bool align_corners; } up;
    struct { vg_pool2d_opts o; } pool;
    struct { int64_t oh, ow; } adaptive;
  } u;
};

/* ---- building blocks (all return a module in training mode; NULL + error on bad args) */
vg_nn_module *vg_nn_module_new(const char *kind_name, vg_nn_forward_fn forward, void *ctx,
                               void (*free_ctx)(void *ctx));
/* Registers t (a heap tensor; the module takes ownership) under a local name (no dots).
 * Parameters get requires_grad on. Duplicate names abort (programmer error). */
void vg_nn_add_param(vg_nn_module *m, const char *name, vg_tensor *t);
void vg_nn_add_buffer(vg_nn_module *m, const char *name, vg_tensor *t);
void vg_nn_add_child(vg_nn_module *m, const char *name, vg_nn_module *child);
/* Local look-ups (NULL when absent). */
vg_tensor *vg_nn_param(const vg_nn_module *m, const char *name);
vg_tensor *vg_nn_buffer(const vg_nn_module *m, const char *name);
vg_nn_module *vg_nn_child_get(const vg_nn_module *m, const char *name);
/* A parameter or buffer by its dotted state-dict name ("layer1.0.bn1.running_var"). */
vg_tensor *vg_nn_get(const vg_nn_module *m, const char *dotted);

/* Forward of any module (built-in kinds, Sequential chains, custom via m->forward). */
vg_tensor *vg_nn_forward(vg_nn_module *m, const vg_tensor *x);
/* relu(vg_nn_forward(m, x)). A Conv2d runs it as one conv2d op with the ReLU fused into
 * its epilogue (vg_conv2d_opts.act); a Sequential fuses each Conv2d followed by a ReLU
 * child the same way. Autograd sees conv2d then relu either way. */
vg_tensor *vg_nn_forward_relu(vg_nn_module *m, const vg_tensor *x);
/* bn(conv(x)), then the activation. When nothing is recorded for autograd and bn is an
 * eval-mode BatchNorm2d with running statistics, this is one conv2d with folded weights
 * (vg_conv_bn_fold: w s, (b - mean) s + beta, s = gamma / sqrt(var + eps), one op per
 * call, f32 math rounded once to the weight's dtype) and
 * the ReLU fused: no normalisation passes over the activations. A Sequential folds each
 * Conv2d, BatchNorm2d[, ReLU] run of children the same way. */
vg_tensor *vg_nn_conv_bn(vg_nn_module *conv, vg_nn_module *bn, const vg_tensor *x, vg_act act);

void vg_nn_train(vg_nn_module *m, bool on);           /* recursive; eval = train(false) */
void vg_nn_requires_grad(vg_nn_module *m, bool on);   /* freeze / unfreeze all params */
void vg_nn_zero_grad(vg_nn_module *m);                /* zeroes every existing param grad */
/* Moves every parameter and buffer to dev in place (tensor pointers stay valid); float
 * tensors become float_dt (F16 for inference on CUDA), integer buffers keep their dtype. */
vg_status vg_nn_to(vg_nn_module *m, vg_device dev, vg_dtype float_dt);
int64_t vg_nn_num_params(const vg_nn_module *m, bool trainable_only);
/* Whether running m on the nx inputs would record autograd history: grad mode is on and
 * an input or one of m's parameters requires grad. When it would not (inference, a
 * frozen backbone), a block may run in a nested scope and keep only its result
 * (vg_scope_end_keep), so its intermediates are freed when it returns:
 *   bool nest = !vg_nn_would_record(m, 1, &x);
 *   if (nest) vg_scope_begin();
 *   vg_tensor *y = ...;
 *   if (nest) vg_scope_end_keep(1, &y); */
bool vg_nn_would_record(const vg_nn_module *m, int nx, const vg_tensor *const *xs);
void vg_nn_free(vg_nn_module *m);                     /* recursive, frees every tensor */
/* Inference caches of every Conv2d in m's tree (vg_conv2d_opts.pack): on, each keeps its
 * weight's transformed / packed forms from one forward that records no autograd to the next
 * (rebuilt when a check sees the weight changed: a new tensor, a whole-tensor rewrite);
 * off frees them. Whoever changes the weights in place turns them off (or on again after):
 * a method's train_step and load do. _bytes: the memory they hold now. */
void vg_nn_conv_cache(vg_nn_module *m, bool on);
size_t vg_nn_conv_cache_bytes(const vg_nn_module *m);

/* Named tensors in state-dict order. The list owns its names (not the tensors). */
typedef struct {
  int n;
  char **names;
  vg_tensor **tensors;
  bool *is_buffer;
} vg_nn_list;
vg_nn_list vg_nn_named_parameters(const vg_nn_module *m);
vg_nn_list vg_nn_named_buffers(const vg_nn_module *m);
vg_nn_list vg_nn_state_dict(const vg_nn_module *m);    /* parameters and buffers, torch's order */
void vg_nn_list_free(vg_nn_list *l);

/* ---- built-in modules (torch's defaults in the comments) ---- */
vg_nn_module *vg_nn_sequential_new(int n, vg_nn_module *const *mods);   /* children "0".."n-1" */
void vg_nn_sequential_append(vg_nn_module *seq, vg_nn_module *m);
vg_nn_module *vg_nn_identity_new(void);
/* weight (out, in/groups, kh, kw) kaiming_uniform(a=sqrt 5), bias U(+-1/sqrt fan_in) */
vg_nn_module *vg_nn_conv2d_new(int64_t in, int64_t out, int kh, int kw, vg_nn_conv2d_opts o, uint64_t seed);
vg_nn_module *vg_nn_linear_new(int64_t in, int64_t out, bool bias, uint64_t seed);
/* eps 1e-5, momentum 0.1 (negative: None = cumulative average), affine, track_running_stats */
vg_nn_module *vg_nn_batchnorm2d_new(int64_t c, float eps, float momentum, bool affine, bool track);
/* normalized over the last nnorm dims of the given shape; eps 1e-5 */
vg_nn_module *vg_nn_layernorm_new(int nnorm, const int64_t *shape, float eps, bool elementwise_affine);
vg_nn_module *vg_nn_relu_new(void);
vg_nn_module *vg_nn_leakyrelu_new(float slope);                 /* 0.01 */
vg_nn_module *vg_nn_gelu_new(void);                             /* exact (erf) */
vg_nn_module *vg_nn_softplus_new(float beta, float threshold);  /* 1, 20 */
/* Each training-mode forward draws a fresh mask from (seed, call number). */
vg_nn_module *vg_nn_dropout_new(float p, uint64_t seed);        /* 0.5 */
/* Bilinear. Output size (oh, ow) when > 0, else floor(in * scale); the sampling grid
 * uses in/out (torch's when in*scale is an integer or size is given). */
vg_nn_module *vg_nn_upsample_bilinear_new(int64_t oh, int64_t ow, double scale_h, double scale_w,
                                          bool align_corners);
/* note: a zeroed vg_pool2d_opts has count_include_pad = false; torch's default is true */
vg_nn_module *vg_nn_avgpool2d_new(vg_pool2d_opts o);
vg_nn_module *vg_nn_maxpool2d_new(vg_pool2d_opts o);
vg_nn_module *vg_nn_adaptive_avgpool2d_new(int64_t oh, int64_t ow);

/* ===================================================================== init (nn/init.c)
 * torch.nn.init. fan_in = size(1) * receptive field, fan_out = size(0) * receptive field
 * (tensors of >= 2 dims). All in place on heap or scope f32 tensors, seeded. */
typedef enum {
  VG_GAIN_LINEAR, VG_GAIN_CONV, VG_GAIN_SIGMOID, VG_GAIN_TANH, VG_GAIN_RELU,
  VG_GAIN_LEAKY_RELU, VG_GAIN_SELU
} vg_nonlinearity;
double vg_init_gain(vg_nonlinearity nl, double param);    /* torch calculate_gain */
void vg_init_fans(const vg_tensor *t, int64_t *fan_in, int64_t *fan_out);
vg_status vg_init_zeros(vg_tensor *t);
vg_status vg_init_ones(vg_tensor *t);
vg_status vg_init_constant(vg_tensor *t, double v);
vg_status vg_init_uniform(vg_tensor *t, double lo, double hi, uint64_t seed);
vg_status vg_init_normal(vg_tensor *t, double mean, double std, uint64_t seed);
vg_status vg_init_xavier_uniform(vg_tensor *t, double gain, uint64_t seed);
vg_status vg_init_xavier_normal(vg_tensor *t, double gain, uint64_t seed);
/* a: negative slope for leaky_relu; fan_out false = mode "fan_in" */
vg_status vg_init_kaiming_uniform(vg_tensor *t, double a, bool fan_out, vg_nonlinearity nl, uint64_t seed);
vg_status vg_init_kaiming_normal(vg_tensor *t, double a, bool fan_out, vg_nonlinearity nl, uint64_t seed);
/* rows x cols = size(0) x rest; (semi-)orthogonal via Gram-Schmidt in double, signs
 * fixed as torch (Q * sign(diag R)), times gain */
vg_status vg_init_orthogonal(vg_tensor *t, double gain, uint64_t seed);
/* torch's Conv/Linear reset_parameters(): weight kaiming_uniform(a = sqrt 5),
 * bias U(+-1/sqrt(fan_in)) (bias may be NULL). */
vg_status vg_init_torch_default(vg_tensor *weight, vg_tensor *bias, uint64_t seed);

/* =============================================================== optimizers (nn/optim.c) */
typedef enum { VG_OPTIM_SGD, VG_OPTIM_ADAM, VG_OPTIM_ADAMW } vg_optim_kind;
typedef struct {
  double lr, weight_decay;
  double momentum, dampening;      /* SGD */
  bool nesterov;                   /* SGD (needs momentum > 0, dampening 0) */
  double beta1, beta2, eps;        /* Adam/AdamW */
  bool amsgrad, maximize;
} vg_optim_hparams;
typedef struct vg_optim vg_optim;

/* torch's defaults: SGD momentum 0; Adam betas (0.9, 0.999), eps 1e-8, wd 0; AdamW wd 1e-2. */
vg_optim_hparams vg_optim_defaults(vg_optim_kind kind, double lr);
vg_optim *vg_optim_new(vg_optim_kind kind, vg_optim_hparams defaults);
/* A param group over n parameters (not owned; they must outlive the optimizer).
 * hp NULL: the optimizer's defaults. Returns the group index or -1 (+ error) when the
 * hyper-parameters are invalid, as torch's constructor checks them. Parameter indices
 * for state names run over all groups in order. */
int vg_optim_add_group(vg_optim *o, int n, vg_tensor *const *params, const vg_optim_hparams *hp);
int vg_optim_num_groups(const vg_optim *o);
double vg_optim_get_lr(const vg_optim *o, int group);
void vg_optim_set_lr(vg_optim *o, int group, double lr);
vg_optim_hparams *vg_optim_group(vg_optim *o, int group);   /* edit in place */
void vg_optim_zero_grad(vg_optim *o);        /* grads zeroed (kept allocated): torch 1.x's zero_grad() */
/* set_to_none: every grad dropped (None), torch >= 2.0's zero_grad() default; step then
 * skips the parameters that no backward reached since (no update, no state change), which
 * matters when one optimizer spans modules trained in turns (CFLOW's decoders). */
void vg_optim_zero_grad_ex(vg_optim *o, bool set_to_none);
void vg_optim_step(vg_optim *o);
/* vg_backward(loss) then vg_optim_step(o), with each parameter's update run inside the
 * backward pass as soon as its grad is final (vg_backward_ready), while the grad and the
 * parameter are still in cache: the same values, bit for bit, with less memory traffic.
 * Nothing may read or change the grads between the two (no clipping: use the two calls);
 * a parameter's data must not be shared outside the graph (see vg_backward_ready). On an
 * error no parameter has changed. */
vg_status vg_optim_backward_step(vg_optim *o, vg_tensor *loss);
/* Moves the moment buffers to dev (the step counters stay on the host); parameters on a
 * GPU update there with the CPU's arithmetic. add_group does it for device parameters. */
vg_status vg_optim_to(vg_optim *o, vg_device dev);             /* one update; params without a grad skipped */
/* State as named heap tensors owned by the optimizer: for each parameter i (over all
 * groups) "state.<i>.step" (0-d f32, as torch 1.13), "state.<i>.exp_avg",
 * "state.<i>.exp_avg_sq", "state.<i>.max_exp_avg_sq" (amsgrad), or
 * "state.<i>.momentum_buffer" (SGD with momentum; "step" counts its updates, torch's SGD
 * has none). Load a checkpoint by copying into these tensors. The moments of one param
 * group live in one contiguous block per kind (the per-parameter tensors are views).
 * CPU f32 contiguous parameters only (for now). */
vg_nn_list vg_optim_state(vg_optim *o);
void vg_optim_free(vg_optim *o);

/* torch.nn.utils.clip_grad_norm_: total = norm of all grads' norms (norm_type 2 or
 * INFINITY), grads scaled by min(1, max_norm / (total + 1e-6)); returns total. Params
 * without a grad are ignored. */
double vg_clip_grad_norm(int n, vg_tensor *const *params, double max_norm, double norm_type);

/* ============================================================ LR schedules (nn/sched.c)
 * Built on an optimizer: the constructor records each group's lr as its base lr and
 * applies epoch 0, as torch's constructors do; vg_sched_step advances one epoch and
 * writes the new lr into every group. */
typedef struct vg_sched vg_sched;
vg_sched *vg_sched_step_new(vg_optim *o, int step_size, double gamma);            /* StepLR */
vg_sched *vg_sched_multistep_new(vg_optim *o, int n, const int *milestones, double gamma);
vg_sched *vg_sched_cosine_new(vg_optim *o, int t_max, double eta_min);            /* CosineAnnealingLR */
/* LinearLR (torch defaults 1/3, 1.0, 5) */
vg_sched *vg_sched_linear_new(vg_optim *o, double start_factor, double end_factor, int total_iters);
/* EfficientAD: StepLR(step_size = int(0.95 * total_steps), gamma = 0.1), stepped per iteration */
vg_sched *vg_sched_efficientad_new(vg_optim *o, int64_t total_steps);
void vg_sched_step(vg_sched *s);
double vg_sched_get_lr(const vg_sched *s, int group);
int vg_sched_last_epoch(const vg_sched *s);
void vg_sched_free(vg_sched *s);

/* CFLOW-AD (gudovskiy/cflow-ad: main.py, custom_models/utils.py): lr set per meta-epoch
 * by adjust_learning_rate (cosine to eta_min = lr * 0.1^3 over meta_epochs, or x0.1 at
 * 50/75/90 % of them when !cosine), overridden during the first warm_epochs meta-epochs
 * by a linear warm-up per image batch from lr/10 to the cosine value at warm_epochs. */
typedef struct {
  double lr;                 /* 2e-4 */
  int meta_epochs;           /* 25 */
  int warm_epochs;           /* 2 (0 = no warm-up) */
  bool cosine;               /* true */
} vg_cflow_lr;
/* lr for meta-epoch `epoch`, batch `batch_id` of total_batches (= sub_epochs * batches
 * per sub-epoch; batch_id = i + sub_epoch * batches). */
double vg_cflow_lr_at(const vg_cflow_lr *c, int epoch, int64_t batch_id, int64_t total_batches);
void vg_cflow_lr_apply(const vg_cflow_lr *c, vg_optim *o, int epoch, int64_t batch_id, int64_t total_batches);
#endif
