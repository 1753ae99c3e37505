/* flows.h — normalizing flows: FrEIA-compatible invertible blocks and SequenceINN.
 *
 *   static vg_nn_module *sub(int64_t cin, int64_t cout, void *u) {   // or vg_flow_subnet_conv
 *     return vg_flow_subnet_conv_new(cin, cout, 3, 64, 1234);
 *   }
 *   vg_nn_module *inn = vg_flow_sequence_new(3, (int64_t[]){64, 32, 32});
 *   for (int i = 0; i < 8; i++)
 *     vg_flow_append_allinone(inn, 0, NULL, (vg_flow_subnet){sub, NULL},
 *                             (vg_flow_allinone_opts){.affine_clamping = 2.0, .seed = i});
 *   vg_scope_begin();
 *   vg_tensor *logdet;
 *   vg_tensor *z = vg_flow_forward(inn, x, 0, NULL, false, true, &logdet);   // (N,C,H,W), (N)
 *   vg_tensor *loss = ...;  vg_backward(loss);
 *   vg_tensor *xr = vg_flow_forward(inn, z, 0, NULL, true, true, &logdet);   // reverse
 *   vg_scope_end();
 *
 * Every block and the sequence ARE vg_nn_modules (custom kinds "AllInOneBlock",
 * "GLOWCouplingBlock", ..., "SequenceINN"), so vg_nn_named_parameters / vg_nn_state_dict
 * / vg_nn_free / vg_nn_train work on them. State-dict names follow FrEIA 0.2:
 *   SequenceINN: "module_list.<i>.<block names>"
 *   AllInOneBlock: global_scale, global_offset, w_perm, w_perm_inv (both
 *     requires_grad off, as FrEIA) or vk_householder, w_0; then "subnet.<...>"
 *   GLOW/GIN: subnet1, subnet2;  RNVP: subnet_s1, subnet_t1, subnet_s2, subnet_t2;
 *   NICE: F, G;  AffineCouplingOneSided / ConditionalAffineTransform: subnet;
 *   PermuteRandom: perm, perm_inv (i64);  ActNorm: scale, bias;
 *   Fixed1x1Conv: M, M_inv, logDetM.
 *
 * Contract of an invertible module (vg_flow_forward):
 *   x: (N, C) or (N, C, H, W) f32.  cond: ncond tensors (N, Cc_i[, H, W]), concatenated
 *   along channels (spatial dims must match x's); may be 0/NULL for unconditional blocks.
 *   rev = false: y = f(x), logdet = log|det df/dx| per sample (N,).
 *   rev = true:  y = f^-1(x), logdet = -log|det df/dy| at the input (the negated log-det).
 *   want_logdet false: *logdet may be NULL on return (cheaper). logdet may be NULL.
 * All math is done with differentiable tensor ops in the current scope, so a loss on
 * (y, logdet) trains the parameters with vg_backward. Returns NULL + error on bad shapes.
 *
 * Data-dependent ActNorm initialises on its first forward (rev = false) call, as FrEIA;
 * loading a state dict into it should be followed by vg_flow_actnorm_mark_initialized.
 *
 * Randomness (permutations, SO(C) rotations, Householder vectors) comes from Vigil's
 * seeded Philox generator: the same seed gives the same flow, but not FrEIA's numbers.
 * Conformance tests overwrite the permutation matrices from fixtures.
 *
 * Sources: one file per block family (allinone.c, coupling.c, permute.c, actnorm.c,
 * sequence.c), each with its own state struct, over the contract in flows/block.h. */
#ifndef VG_FLOWS_H
#define VG_FLOWS_H
#include "nn/nn.h"

/* ---------------------------------------------------------------- subnets */
/* A subnet constructor, called as fn(c_in, c_out, user) once per subnet the block needs
 * (FrEIA's subnet_constructor). The block takes ownership of the returned module. The
 * module maps (N, c_in[, H, W]) -> (N, c_out[, H, W]). NULL aborts construction. */
typedef vg_nn_module *(*vg_flow_subnet_fn)(int64_t c_in, int64_t c_out, void *user);
typedef struct {
  vg_flow_subnet_fn fn;
  void *user;
} vg_flow_subnet;

/* Ready-made subnets (torch default init with the given seed):
 * conv: Sequential(Conv2d(c_in, hidden, k, pad k/2), ReLU, Conv2d(hidden, c_out, k, pad k/2))
 *   -> names "0.weight", "0.bias", "2.weight", "2.bias" (as FastFlow's subnet_conv_func).
 * mlp: Sequential(Linear(c_in, hidden), ReLU, Linear(hidden, c_out)) (CFLOW's subnet_fc). */
vg_nn_module *vg_flow_subnet_conv_new(int64_t c_in, int64_t c_out, int k, int64_t hidden, uint64_t seed);
vg_nn_module *vg_flow_subnet_mlp_new(int64_t c_in, int64_t c_out, int64_t hidden, uint64_t seed);
/* Parameter blocks for vg_flow_subnet.user of the two callbacks below. hidden <= 0:
 * hidden = ratio * c_in when ratio > 0, else hidden = 2 * c_in (CFLOW: Linear(d, 2d)).
 * seed is advanced on every call so successive subnets differ. */
typedef struct {
  int k;              /* kernel size (3 for FastFlow; 1 alternates in FastFlow) */
  int64_t hidden;     /* hidden channels; <= 0: ratio * c_in */
  double ratio;
  uint64_t seed;      /* advanced per call */
} vg_flow_subnet_cfg;
vg_nn_module *vg_flow_subnet_conv(int64_t c_in, int64_t c_out, void *cfg /* vg_flow_subnet_cfg* */);
vg_nn_module *vg_flow_subnet_mlp(int64_t c_in, int64_t c_out, void *cfg /* vg_flow_subnet_cfg* */);

/* ---------------------------------------------------------------- block options */
typedef enum {
  VG_FLOW_GA_SOFTPLUS = 0,   /* 0.1 * softplus(a, beta 0.5)  (FrEIA default) */
  VG_FLOW_GA_SIGMOID,        /* 10 * sigmoid(a - 2) */
  VG_FLOW_GA_EXP,            /* exp(a) */
} vg_flow_global_affine;

typedef enum {
  VG_FLOW_CLAMP_TANH_FREIA02 = 0,  /* s = clamp * tanh(0.1 a)          (FrEIA 0.2, default) */
  VG_FLOW_CLAMP_TANH_SCALED,       /* s = clamp * tanh(0.1 a / clamp)  (current FrEIA) */
} vg_flow_clamp_mode;

/* AllInOneBlock options; zero fields are FrEIA's defaults. */
typedef struct {
  double affine_clamping;          /* 0 -> 2.0 */
  vg_flow_clamp_mode clamp_mode;
  bool gin_block;
  double global_affine_init;       /* 0 -> 1.0 */
  vg_flow_global_affine global_affine_type;
  bool permute_soft;               /* random rotation in SO(C) (scipy special_ortho_group law) */
  int learned_householder_permutation;  /* number of reflections; 0 = off */
  bool reverse_permutation;
  uint64_t seed;                   /* permutation / rotation / householder init */
} vg_flow_allinone_opts;

typedef enum {
  VG_FLOW_CLAMP_ATAN = 0,          /* 0.636 * atan(u)  (FrEIA default) */
  VG_FLOW_CLAMP_TANH,
  VG_FLOW_CLAMP_SIGMOID,           /* 2 * (sigmoid(u) - 0.5) */
} vg_flow_clamp_act;

/* Options of the _BaseCouplingBlock family (GLOW, RNVP, NICE, GIN, AffineCouplingOneSided,
 * ConditionalAffineTransform). */
typedef struct {
  double clamp;                    /* 0 -> 2.0 (ignored by NICE) */
  vg_flow_clamp_act clamp_activation;
  int64_t split_len;               /* channels of the first half; 0 -> round(0.5 C) (Python
                                      round, half to even, as FrEIA's float split_len) */
} vg_flow_coupling_opts;

/* ---------------------------------------------------------------- blocks
 * ndim/dims: the input's shape WITHOUT the batch dim ({C} or {C, H, W}), as FrEIA's
 * dims_in. cond_channels: total condition channels (0 = unconditional); conditions have
 * the input's spatial dims. Each returns a module in training mode, or NULL + error. */
vg_nn_module *vg_flow_allinone_new(int ndim, const int64_t *dims, int64_t cond_channels,
                                   vg_flow_subnet subnet, vg_flow_allinone_opts o);
vg_nn_module *vg_flow_glow_new(int ndim, const int64_t *dims, int64_t cond_channels,
                               vg_flow_subnet subnet, vg_flow_coupling_opts o);
vg_nn_module *vg_flow_rnvp_new(int ndim, const int64_t *dims, int64_t cond_channels,
                               vg_flow_subnet subnet, vg_flow_coupling_opts o);
vg_nn_module *vg_flow_nice_new(int ndim, const int64_t *dims, int64_t cond_channels,
                               vg_flow_subnet subnet, vg_flow_coupling_opts o);
vg_nn_module *vg_flow_gin_new(int ndim, const int64_t *dims, int64_t cond_channels,
                              vg_flow_subnet subnet, vg_flow_coupling_opts o);
vg_nn_module *vg_flow_affine_onesided_new(int ndim, const int64_t *dims, int64_t cond_channels,
                                          vg_flow_subnet subnet, vg_flow_coupling_opts o);
/* cond_channels > 0 required */
vg_nn_module *vg_flow_cond_affine_new(int ndim, const int64_t *dims, int64_t cond_channels,
                                      vg_flow_subnet subnet, vg_flow_coupling_opts o);
vg_nn_module *vg_flow_permute_random_new(int ndim, const int64_t *dims, uint64_t seed);
vg_nn_module *vg_flow_actnorm_new(int ndim, const int64_t *dims);
void vg_flow_actnorm_mark_initialized(vg_nn_module *actnorm);
/* FixedLinearTransform (1-D: y = M x, FrEIA's x.mm(M.t())) / Fixed1x1Conv (2-D: FrEIA
 * convolves with M.t() as the weight, i.e. y = M^T x per position), M (C, C) row-major,
 * invertible; NULL M: a random rotation from seed (orthogonal transform). Parameters
 * M = M^T, M_inv = (M^T)^-1, logDetM = log|det M| (all requires_grad off, as FrEIA);
 * log-det = logDetM * H * W per sample. */
vg_nn_module *vg_flow_fixed_linear_new(int ndim, const int64_t *dims, const float *M, uint64_t seed);

/* ---------------------------------------------------------------- contract */
bool vg_flow_is_flow(const vg_nn_module *m);
/* Runs block or sequence m (see the contract above). */
vg_tensor *vg_flow_forward(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                           bool rev, bool want_logdet, vg_tensor **logdet);
/* Shape inference without running: out_dims (no batch dim) for in dims; returns out ndim
 * or -1 + error. */
int vg_flow_output_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out_dims);

/* ---------------------------------------------------------------- SequenceINN */
/* dims without the batch dim, as SequenceINN(*dims). */
vg_nn_module *vg_flow_sequence_new(int ndim, const int64_t *dims);
/* Appends a block built for the current output dims. cond: index into the cond[] array
 * given to vg_flow_forward (-1 = unconditional). The sequence takes ownership.
 * Returns the block's index or -1 + error (block freed). */
int vg_flow_sequence_append(vg_nn_module *seq, vg_nn_module *block, int cond);
/* Convenience: build + append with the sequence's current dims. cond_index -1 = none;
 * cond_channels: channels of that condition. */
int vg_flow_append_allinone(vg_nn_module *seq, int cond_index, int64_t cond_channels,
                            vg_flow_subnet subnet, vg_flow_allinone_opts o);
int vg_flow_sequence_len(const vg_nn_module *seq);
vg_nn_module *vg_flow_sequence_get(const vg_nn_module *seq, int i);
/* The dims (no batch) after block i-1 (i = 0: the input dims); returns ndim. */
int vg_flow_sequence_dims(const vg_nn_module *seq, int i, int64_t *dims);
/* Runs blocks [a, b) (forward in order; rev: b-1 down to a). */
vg_tensor *vg_flow_sequence_forward_range(vg_nn_module *seq, int a, int b, const vg_tensor *x,
                                          int ncond, vg_tensor *const *cond, bool rev,
                                          bool want_logdet, vg_tensor **logdet);

/* Sampling: z ~ N(0, I) of shape (n, dims...) from seed, then reverse. */
vg_tensor *vg_flow_sample(vg_nn_module *m, int64_t n, int ncond, vg_tensor *const *cond, uint64_t seed);

/* Log-likelihood helpers: log N(z; 0, I) summed per sample = -0.5 sum z^2 - D/2 log(2 pi). */
vg_tensor *vg_flow_gaussian_logp(const vg_tensor *z);      /* (N,) */

/* Random matrices used by the blocks (exposed for tests): row-major (n, n) doubles.
 * special_ortho: Haar-distributed rotation (det +1) as scipy.stats.special_ortho_group
 * (Householder products of Gaussian vectors), O(n^3) in double, threaded over rows (the
 * same bits for any thread count): n = 2048 in 1.8 s on the 2-core dev machine (11 s
 * before; CFLOW-WRN50 makes 8 of those). */
void vg_flow_special_ortho(int64_t n, uint64_t seed, double *out);
void vg_flow_random_permutation(int64_t n, uint64_t seed, int64_t *perm);  /* perm[i] */
#endif
