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
 * sequence.c; the rest of FrEIA's zoo: reshape.c, elementwise.c, orthogonal.c, spline.c),
 * each with its own state struct, over the contract in flows/block.h. */
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

/* ---------------------------------------------------------------- FrEIA 0.2's module zoo
 * Single-input modules beyond the coupling blocks (files reshape.c, elementwise.c,
 * orthogonal.c). Same contract and options style as above (zero fields = FrEIA defaults).
 *
 * Reshaping (3-D dims only; Down: (C, H, W) -> (4C, H/2, W/2), H and W even; Up: the
 * inverse map, built for its own input (4C', H', W')). The reverse takes the output shape.
 *   Haar*: channel 4c + k = 0.5 rebalance (a+b+c+d, a-b+c-d, a+b-c-d, a-b-c+d)[k] of the 2x2
 *     patch [[a, b], [c, d]] of channel c; order_by_wavelet: channel k C + c. log-det
 *     n log|rebalance| per sample (n = elements per sample; 0 by default), Up: negated.
 *     State dict: haar_weights (4C, 1, 2, 2) frozen, as FrEIA (Up: C = its output channels).
 *   IRevNet*: channel 4c + k = the patch's k-th pixel (a, b, c, d); legacy_backend: k C + c
 *     (and no parameter). State dict: downsample_kernel (4C, 1, 2, 2) frozen. log-det 0. */
typedef struct {
  bool order_by_wavelet;
  double rebalance;                /* 0 -> 1.0 (FrEIA refuses 0) */
} vg_flow_haar_opts;
vg_nn_module *vg_flow_haar_down_new(int ndim, const int64_t *dims, vg_flow_haar_opts o);
vg_nn_module *vg_flow_haar_up_new(int ndim, const int64_t *dims, vg_flow_haar_opts o);
vg_nn_module *vg_flow_irevnet_down_new(int ndim, const int64_t *dims, bool legacy_backend);
vg_nn_module *vg_flow_irevnet_up_new(int ndim, const int64_t *dims, bool legacy_backend);

/* Elementwise (any dims; log-det summed over every non-batch element, negated in reverse):
 *   InvertibleSigmoid: y = sigmoid(x), reverse log(y / (1 - y)) (NaN outside (0, 1)), no
 *     parameters. (FrEIA 0.2 sums its log-det over dim 1 only: the same for (N, C) inputs,
 *     a per-pixel map instead of (N,) for images.)
 *   LearnedElementwiseScaling: y = x exp(s), s (1, dims...) = log(init_scale) (0 -> 1.0;
 *     FrEIA 0.2 ignores init_scale: s = 0), log-det sum(s). (FrEIA 0.2 does not negate it
 *     in reverse; Vigil keeps the contract.)
 *   InvAutoAct: y = x exp(alpha sign(x)), alpha (1, C[, 1, 1]) = log(slope_init) (0 -> 2.0).
 *   InvAutoActTwoSided: y = x exp(alpha_pos) for x >= 0, x exp(alpha_neg) for x < 0
 *     (FrEIA's form a_pos + (a_neg - a_pos)(1 - sign x)/2, so x = 0 takes the mean slope);
 *     init_pos 0 -> 2.0, init_neg 0 -> 0.5.  fixed: requires_grad off (FrEIA learnable=False). */
vg_nn_module *vg_flow_inv_sigmoid_new(int ndim, const int64_t *dims);
vg_nn_module *vg_flow_elementwise_scaling_new(int ndim, const int64_t *dims, double init_scale);
vg_nn_module *vg_flow_inv_auto_act_new(int ndim, const int64_t *dims, double slope_init, bool fixed);
vg_nn_module *vg_flow_inv_auto_act_two_sided_new(int ndim, const int64_t *dims, double init_pos, double init_neg,
                                                 bool fixed);

/* Orthogonal (1-D dims only):
 *   OrthogonalTransform: y = (x R + bias) exp(l), l = clamp 0.636 atan(scaling / clamp)
 *     (clamp 0 -> 5.0), reverse (x exp(-l) - bias) R^T (exact while R is orthogonal), log-det
 *     sum(l). Parameters weights = R (C, C; a random rotation from seed), bias (1, C)
 *     0.05 N(0,1), scaling (1, C) 0.02 N(0,1). FrEIA re-orthogonalises R (Gram-Schmidt
 *     over its rows) from a backward hook every ~correction_interval passes:
 *     vg_flow_orthogonal_correct does it now; vg_flow_orthogonal_step counts one training
 *     step and corrects when the count passes correction_interval (0 -> 256), restarting
 *     it at a seeded random value in [0, interval/4) as FrEIA (returns whether it did).
 *   HouseholderPerm: y = x W, W = H(v_0) H(v_1) ... H(v_{n-1}), H(v) = I - 2 v v^T / |v|^2,
 *     reverse x W^T, log-det 0. Vs (n_reflections >= 2, C) = eye + 0.1 N(0,1) (fixed:
 *     N(0,1)); fixed: W computed once, stored as W and weight too (FrEIA's three state-dict
 *     entries), nothing trains. FrEIA 0.2's conditional variant (reflections from the
 *     condition) cannot run there (x.mm of a batched W) and is left out. */
vg_nn_module *vg_flow_orthogonal_new(int ndim, const int64_t *dims, int correction_interval, double clamp,
                                     uint64_t seed);
void vg_flow_orthogonal_correct(vg_nn_module *orthogonal);
bool vg_flow_orthogonal_step(vg_nn_module *orthogonal);
vg_nn_module *vg_flow_householder_perm_new(int ndim, const int64_t *dims, int n_reflections, bool fixed,
                                           uint64_t seed);

/* RationalQuadraticSpline (FrEIA master's FrEIA/modules/splines, commit 4212496; not in
 * FrEIA 0.2): a two-sided coupling (x1 from subnet1(x2, c), then x2 from subnet2(y1, c)) whose
 * halves go through monotone rational-quadratic splines of `bins` bins (Durkan et al. 2019)
 * inside the knots and affine tails outside (identity_tails: identity outside a learned
 * symmetric domain). Subnets map (len_other + cond) -> len * (3 bins + 1) channels. State
 * dict: spline_base.{bins, min_bin_sizes, default_domain, identity_tails, default_width}
 * (buffers, read at each call as FrEIA does), subnet1, subnet2. Details in spline.c. */
typedef struct {
  int bins;                        /* 0 -> 10 */
  double min_bin_width, min_bin_height;   /* 0 -> 0.1; negative -> 0 */
  double domain[4];                /* left, right, bottom, top; all 0 -> (-3, 3, -3, 3) */
  bool identity_tails;
  double domain_clamping;          /* 0 -> none; c: widths scaled to c tanh(W / c) */
  int64_t split_len;               /* channels of the first half; 0 -> round(C / 2) */
} vg_flow_rqs_opts;
vg_nn_module *vg_flow_rq_spline_new(int ndim, const int64_t *dims, int64_t cond_channels, vg_flow_subnet subnet,
                                    vg_flow_rqs_opts o);
/* ElementwiseRationalQuadraticSpline (same source): every channel through its own spline;
 * parameters spline_parameters (C P[, H, W], zeros; P = 3 bins + 1, identity_tails 3 bins),
 * or, with cond_channels > 0, subnet(conditions) -> C P channels ("subnet"); the buffers
 * without the spline_base prefix (bins, min_bin_sizes, ...), as FrEIA. No split_len. */
vg_nn_module *vg_flow_elementwise_rq_spline_new(int ndim, const int64_t *dims, int64_t cond_channels,
                                                vg_flow_subnet subnet, vg_flow_rqs_opts o);

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

/* ---------------------------------------------------------------- multi-port flows
 * Split, Concat and GraphINN have several inputs or outputs (FrEIA's list-of-tensors
 * contract). vg_flow_forward_multi runs any flow module on nx tensors: the module's
 * inputs (rev: its outputs), writes its outputs (rev: its inputs) into ys (room for
 * vg_flow_num_outputs / vg_flow_num_inputs tensors) and returns their count, or -1 +
 * error. Single-port blocks take nx = 1 (it calls vg_flow_forward). vg_flow_forward on a
 * multi-port module fails with a message pointing here. */
typedef struct {
  int ndim;          /* without the batch dim, 1..4 */
  int64_t d[4];
} vg_flow_dims;
int vg_flow_num_inputs(const vg_nn_module *m);     /* 1 for single-port blocks, -1 not a flow */
int vg_flow_num_outputs(const vg_nn_module *m);
int vg_flow_forward_multi(vg_nn_module *m, int nx, vg_tensor *const *xs, int ncond, vg_tensor *const *cond,
                          bool rev, bool want_logdet, vg_tensor **ys, vg_tensor **logdet);
/* Shape inference for nin input dims; writes every output's dims, returns their count or -1. */
int vg_flow_output_dims_multi(const vg_nn_module *m, int nin, const vg_flow_dims *in, vg_flow_dims *out);

/* Graph modules (FrEIA.modules.graph_topology / reshapes; log-det 0, no parameters).
 * dim: the dimension without the batch (0 = channels, FrEIA's default).
 * Split: sections (nsec sizes) as torch.split; sizes summing to less than dims[dim] get an
 *   extra section with the rest (FrEIA's intent; its 0.2 code breaks there); sections NULL:
 *   n_sections (>= 2) near-equal parts as numpy.array_split (first dims % n one larger).
 * Concat: nin (>= 2) inputs whose dims agree except at dim; in[i] their dims.
 * Flatten: (dims...) -> (prod dims).  Reshape: (dims...) -> out (same element count). */
vg_nn_module *vg_flow_split_new(int ndim, const int64_t *dims, int nsec, const int64_t *sections, int n_sections, int dim);
vg_nn_module *vg_flow_concat_new(int nin, const vg_flow_dims *in, int dim);
vg_nn_module *vg_flow_flatten_new(int ndim, const int64_t *dims);
vg_nn_module *vg_flow_reshape_new(int ndim, const int64_t *dims, int out_ndim, const int64_t *out_dims);

/* ---------------------------------------------------------------- GraphINN
 * FrEIA's GraphINN: a DAG of nodes, each a flow module fed by (node, output) ports and
 * conditioned on ConditionNodes. Nodes get ids 0, 1, ... in the order they are added;
 * a port may name a node added later (so a cycle can be written, and is refused).
 *
 *   vg_nn_module *g = vg_flow_graph_new();
 *   int in = vg_flow_graph_input(g, "in", 3, (int64_t[]){4, 8, 8});
 *   int c  = vg_flow_graph_condition(g, "c", 3, (int64_t[]){2, 8, 8});
 *   int sp = vg_flow_graph_node(g, "split", vg_flow_split_new(3, (int64_t[]){4, 8, 8}, 0, NULL, 2, 0),
 *                               1, (vg_flow_port[]){{in, 0}}, 0, NULL);
 *   int a  = vg_flow_graph_node(g, "a", vg_flow_glow_new(3, (int64_t[]){2, 8, 8}, 2, sub, o),
 *                               1, (vg_flow_port[]){{sp, 0}}, 1, &c);
 *   int cat = vg_flow_graph_node(g, "cat", vg_flow_concat_new(2, ...), 2, (vg_flow_port[]){{a, 0}, {sp, 1}}, 0, NULL);
 *   vg_flow_graph_output(g, "out", (vg_flow_port){cat, 0});
 *   if (vg_flow_graph_build(g) != VG_OK) ...            // vg_last_error() names the nodes
 *   vg_tensor *z, *ld;
 *   vg_flow_forward_multi(g, 1, &x, 1, &cond, false, true, &z, &ld);   // or vg_flow_forward
 *
 * vg_flow_graph_port_dims gives a port's dims (inferred through the nodes added so far)
 * for building the next module. Build checks: ports name existing nodes and outputs;
 * no output feeds two inputs; conditions are ConditionNodes; no cycle; no unused output
 * (a ConditionNode may be unused, as FrEIA); shapes agree (inferred with
 * vg_flow_output_dims_multi); conditional modules get conditions whose channels sum to
 * what they were built for ("missing condition") and unconditional ones get none. The
 * error names the nodes. Forward: inputs in the order the InputNodes were added,
 * conditions in ConditionNode order, outputs in OutputNode order (rev: the reverse
 * roles); nodes run in topological order (rev: reversed); log-det = sum over nodes.
 * State dict: "module_list.<i>.<module names>" over the module nodes in FrEIA's
 * topological order (Kahn's algorithm from the OutputNodes, reversed), so a FrEIA
 * GraphINN state_dict loads by name. Where FrEIA's order depends on Python set order
 * (a node with two distinct producer nodes) Vigil visits the producers in the order of
 * the node's inputs; vg_flow_graph_module_node maps module_list indices to nodes.
 * A built 1-input 1-output graph is an ordinary flow (vg_flow_forward, SequenceINN
 * blocks, vg_flow_sample). The graph owns every module given to it, also on errors.
 * A failed build can be retried after adding the missing nodes; a NULL name is "node<id>". */
typedef struct {
  int node;
  int out;
} vg_flow_port;
vg_nn_module *vg_flow_graph_new(void);
int vg_flow_graph_input(vg_nn_module *g, const char *name, int ndim, const int64_t *dims);
int vg_flow_graph_condition(vg_nn_module *g, const char *name, int ndim, const int64_t *dims);
int vg_flow_graph_output(vg_nn_module *g, const char *name, vg_flow_port in);
int vg_flow_graph_node(vg_nn_module *g, const char *name, vg_nn_module *module, int nin, const vg_flow_port *in,
                       int ncond, const int *cond_nodes);
int vg_flow_graph_port_dims(const vg_nn_module *g, vg_flow_port p, vg_flow_dims *out);
vg_status vg_flow_graph_build(vg_nn_module *g);
int vg_flow_graph_find(const vg_nn_module *g, const char *name);        /* node id or -1 */
vg_nn_module *vg_flow_graph_module(const vg_nn_module *g, int node);     /* NULL for special nodes */
int vg_flow_graph_module_node(const vg_nn_module *g, int i);             /* module_list.i's node, -1 */

/* Random matrices used by the blocks (exposed for tests): row-major (n, n) doubles.
 * special_ortho: Haar-distributed rotation (det +1) as scipy.stats.special_ortho_group
 * (Householder products of Gaussian vectors), O(n^3) in double, threaded over rows (the
 * same bits for any thread count): n = 2048 in 1.8 s on the 2-core dev machine (11 s
 * before; CFLOW-WRN50 makes 8 of those). */
void vg_flow_special_ortho(int64_t n, uint64_t seed, double *out);
void vg_flow_random_permutation(int64_t n, uint64_t seed, int64_t *perm);  /* perm[i] */
#endif
