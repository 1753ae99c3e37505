/* block.h — the contract every flow block family implements (private to flows/; callers
 * use flows/flows.h).
 *
 * A flow module is a vg_nn_module made by vg_flow_block_new: its ctx is the family's own
 * state struct, whose first member is a vg_flow_block header (kind table, built dims,
 * condition channels). The families, one file each:
 *   allinone.c  AllInOneBlock                     (vg_flow_allinone_state)
 *   coupling.c  GLOW, RNVP, NICE, GIN, AffineCouplingOneSided, ConditionalAffineTransform
 *   permute.c   PermuteRandom, FixedLinearTransform / Fixed1x1Conv (no state beyond the header)
 *   actnorm.c   ActNorm (data-dependent init flag)
 *   reshape.c   Haar / IRevNet Down- and Upsampling (composite: the shape changes)
 *   elementwise.c  InvertibleSigmoid, LearnedElementwiseScaling, InvAutoAct(TwoSided)
 *   orthogonal.c   OrthogonalTransform, HouseholderPerm
 *   spline.c    RationalQuadraticSpline, ElementwiseRationalQuadraticSpline (FrEIA master)
 *   sequence.c  SequenceINN (its blocks, their conditions and dims)
 * and block.c holds what they share: vg_flow_forward / vg_flow_output_dims / vg_flow_sample
 * dispatch through the kind table, the input checks, and the small tensor helpers below.
 *
 *   static const vg_flow_block_ops my_ops = {.forward = my_fwd, .uses_cond = true};
 *   vg_nn_module *m = vg_flow_block_new("MyBlock", &my_ops, sizeof(my_state), ndim, dims, cc);
 *   my_state *s = vg_flow_block_state(m, &my_ops);      // NULL for any other module
 *
 * forward(m, x, ncond, cond, rev, want_logdet, &logdet) is flows.h's contract for one block:
 * y = f(x) (rev: f^-1(x)) and, when want_logdet, the per-sample log-det (N,) in *logdet
 * (never NULL here). vg_flow_forward calls it after the shared checks: x is (N, dims...) of
 * the built dims; every condition has x's batch and spatial dims; and, for families with
 * uses_cond, their channels sum to the built cond_ch. A composite family (SequenceINN)
 * gets the call unchecked and sets the caller's logdet pointer itself (it may be NULL).
 * output_dims: NULL for a block whose output has its (checked) input dims.
 * free_state: releases what the state points to (NULL: nothing); the state itself is freed
 * by block.c. State-dict names are the params/buffers/children the family registers
 * (FrEIA 0.2's, listed in flows.h). */
#ifndef VG_FLOWS_BLOCK_H
#define VG_FLOWS_BLOCK_H
#include "flows/flows.h"
#include <stddef.h>

typedef struct vg_flow_block_ops {
  vg_tensor *(*forward)(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                        bool want_logdet, vg_tensor **logdet);
  int (*output_dims)(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out_dims);
  void (*free_state)(void *state);
  bool uses_cond;   /* the conditions' channels must sum to cond_ch */
  bool composite;   /* forward checks x itself (SequenceINN) */
  /* Multi-port families (Split, Concat, GraphINN: graph.c, topology.c); NULL for the
   * others. forward_multi gets nx tensors (the inputs, rev: the outputs; vg_flow_forward_multi
   * checked the count), writes the other side into y, returns that count or -1 + error, and
   * sets *logdet when want_logdet (may leave it NULL for a zero log-det). output_dims_multi:
   * every output's dims for the nin input dims, returns nout or -1 + error. */
  int (*forward_multi)(vg_nn_module *m, int nx, vg_tensor *const *x, int ncond, vg_tensor *const *cond, bool rev,
                       bool want_logdet, vg_tensor **y, vg_tensor **logdet);
  int (*output_dims_multi)(const vg_nn_module *m, int nin, const vg_flow_dims *in, vg_flow_dims *out);
} vg_flow_block_ops;

/* The first member of every family's state struct. */
typedef struct {
  const vg_flow_block_ops *ops;
  int ndim;          /* without batch: 1 (C) or 3 (C, H, W) */
  int64_t dims[4];
  int64_t cond_ch;   /* total condition channels, 0 = unconditional */
  int nin, nout;     /* ports of a multi-port family (0: one, as every single-port block) */
} vg_flow_block;

/* A flow module: a zeroed state of state_size bytes (>= sizeof(vg_flow_block)) whose
 * header is filled from the arguments; dims already checked (vg_flow_check_dims). */
vg_nn_module *vg_flow_block_new(const char *kind, const vg_flow_block_ops *ops, size_t state_size, int ndim,
                                const int64_t *dims, int64_t cond_ch);
/* The header of a flow module (m must be one: vg_flow_is_flow). */
vg_flow_block *vg_flow_block_of(const vg_nn_module *m);
/* m's state when m is a flow module of the family ops, else NULL. */
void *vg_flow_block_state(const vg_nn_module *m, const vg_flow_block_ops *ops);

/* ---- helpers the families share */
/* dims must be (C) or (C, H, W), all > 0; false + error otherwise. */
bool vg_flow_check_dims(int ndim, const int64_t *dims);
/* s.fn(cin, cout, s.user), NULL + error when the constructor is missing or fails. */
vg_nn_module *vg_flow_call_subnet(vg_flow_subnet s, int64_t cin, int64_t cout);
/* A heap f32 parameter shaped (1, C[, 1, 1]) for ndim 1 or 3 (shape: scratch of ndim + 1). */
vg_tensor *vg_flow_param_shape_like(int ndim, int64_t C, int64_t *shape);
/* t summed over every dim but the batch: (N,). */
vg_tensor *vg_flow_sum_nonbatch(const vg_tensor *t);
/* x with the ncond conditions concatenated along channels (x itself when ncond is 0). */
vg_tensor *vg_flow_cat_cond(const vg_tensor *x, int ncond, vg_tensor *const *cond);
/* (n,) zeros on x's device: a log-det of a volume-preserving map. */
vg_tensor *vg_flow_zeros_n(const vg_tensor *x, int64_t n);
/* a + b, where a missing (NULL) term is 0. */
vg_tensor *vg_flow_add_ld(vg_tensor *a, vg_tensor *b);
/* Pixels per sample (the product of x's dims after the channels; 1 for (N, C)). */
int64_t vg_flow_npix(const vg_tensor *x);
#endif
