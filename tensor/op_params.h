/* op_params.h — the typed parameters of the ops (internal). Each row of tensor/ops.def
 * names one member of vg_op_params in its PARAMS column; the member's type is
 * vg_<PARAMS>_params. The front-end fills it, and the backends' kernels, the backward
 * rules (autograd/backward.c) and opstats read it by field name: a field means one thing
 * everywhere. tensor.c checks at compile time that every row's PARAMS is a member. */
#ifndef VG_TENSOR_OP_PARAMS_H
#define VG_TENSOR_OP_PARAMS_H
#include <stdbool.h>
#include <stdint.h>

typedef struct { char unused; } vg_none_params;

/* views (the header is made by the front-end; the params are what backward needs) */
typedef struct { int64_t perm[8]; } vg_permute_params;                  /* out dim i = in dim perm[i] */
typedef struct { int64_t dim, start, stop, step; } vg_slice_params;

/* copies */
typedef struct { double value; } vg_fill_params;
typedef struct { double start, step; } vg_arange_params;

/* elementwise: a and b are the op's scalar parameters, meaning per op (tensor/ops.def):
 * leaky_relu slope = a; softplus beta = a, threshold = b; pow_scalar exponent = a;
 * clamp [a, b]; affine a x + b. Kernels compute with them as float. */
typedef struct { double a, b; } vg_unary_params;
typedef struct { double alpha; } vg_binary_params;                      /* add: u + alpha v */

/* reductions */
typedef struct { uint64_t mask; bool keepdim; } vg_reduce_params;      /* bit d set: dim d reduced */
typedef struct { int64_t dim; bool keepdim; } vg_argmax_params;

/* convolution (conv2d and its two backward ops; act: vg_act applied in place, conv2d only) */
typedef struct { int64_t sh, sw, ph, pw, dh, dw, groups; int act; void *pack; } vg_conv2d_params;   /* pack: vg_conv_pack (forward, not recorded) */
typedef struct { double eps; } vg_bn_fold_params;

/* pooling and resampling */
typedef struct { int64_t kh, kw, sh, sw, ph, pw; bool ceil_mode, count_include_pad; } vg_pool_params;
typedef struct { bool align_corners; } vg_interp_params;

/* layout: unfold (N,C,H,W) -> (N, C*kh*kw, L); fold is its adjoint into (oh, ow) */
typedef struct { int64_t kh, kw, dh, dw, ph, pw, sh, sw, oh, ow; } vg_unfold_params;
/* pad: npairs (before, after) pairs from the last dim backwards, constant value */
typedef struct { int64_t npairs, pads[16]; double value; } vg_pad_params;
/* one dim: concat, gather, scatter_add, index_select, index_add */
typedef struct { int64_t dim; } vg_dim_params;

/* selection: kthvalue mode 0 = k-th smallest (1-based, NaN largest); mode 1 (quantile):
 * torch's lerp(v_k, v_k_hi, w). sort: stable, i64 indices of the first `keep` along dim */
typedef struct { int64_t k, k_hi; int mode; double w; } vg_kth_params;
typedef struct { int64_t dim; bool descending; int64_t keep; } vg_sort_params;

/* random: Philox stream `seed`; uniform in [a, b), normal with mean a and std b */
typedef struct { uint64_t seed; double a, b; } vg_rand_params;

/* layer_norm over the last nnorm dims (eps used as float); the backward's wanted grads */
typedef struct { int64_t nnorm; double eps; bool grad_x, grad_w, grad_b; } vg_layer_norm_params;

typedef union vg_op_params {
  vg_none_params none;
  vg_permute_params permute;
  vg_slice_params slice;
  vg_fill_params fill;
  vg_arange_params arange;
  vg_unary_params unary;
  vg_binary_params binary;
  vg_reduce_params reduce;
  vg_argmax_params argmax;
  vg_conv2d_params conv2d;
  vg_bn_fold_params bn_fold;
  vg_pool_params pool;
  vg_interp_params interp;
  vg_unfold_params unfold;
  vg_pad_params pad;
  vg_dim_params dim;
  vg_kth_params kth;
  vg_sort_params sort;
  vg_rand_params rand;
  vg_layer_norm_params layer_norm;
} vg_op_params;
#endif
