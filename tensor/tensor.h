/* tensor.h — Vigil's tensor library: N-d strided tensors, scopes, and every op.
 *
 *   vg_scope_begin();                         // step-local tensors live here
 *   vg_tensor *x = vg_randn(2, (int64_t[]){4, 8}, 0);     // seed 0
 *   vg_tensor *w = ...;                       // long-lived: vg_tensor_new(), owned by you
 *   vg_tensor *y = vg_relu(vg_matmul(x, w));
 *   if (!y) fprintf(stderr, "%s\n", vg_last_error());   // bad shapes: NULL + message
 *   vg_scope_end();                           // frees x, y, intermediates and the tape
 *
 * Tensors: up to VG_MAX_DIMS dims, strides in elements, zero-copy views (reshape of a
 * contiguous tensor, permute, transpose, slice, expand, squeeze/unsqueeze). Compute is
 * f32; f16/bf16 are storage dtypes (vg_cast converts); i32/i64/u8/bool hold data,
 * indices and masks. Every op accepts non-contiguous inputs and returns a new
 * contiguous tensor (views excepted), allocated in the current scope.
 *
 * Ownership: inside vg_scope_begin()/vg_scope_end() every tensor an op makes belongs to
 * the scope. Outside any scope ops return heap tensors that the caller frees with
 * vg_tensor_free(). vg_tensor_new()/vg_tensor_clone_heap() always make heap tensors
 * (parameters, buffers, optimizer state), freed with vg_tensor_free().
 *
 * Errors: ops return NULL on bad input (shapes, dims, dtypes) with a message naming the
 * op and the shapes in vg_last_error(); an op given a NULL input returns NULL, so a
 * chain of ops reports the first failure. */
#ifndef VG_TENSOR_H
#define VG_TENSOR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

#define VG_MAX_DIMS 8

typedef enum { VG_F32, VG_F16, VG_BF16, VG_I32, VG_I64, VG_U8, VG_BOOL, VG_DTYPE_COUNT } vg_dtype;
typedef enum { VG_CPU = 0, VG_CUDA = 1, VG_DEVICE_COUNT } vg_device;

typedef enum {
#define X(name, str, arity, diff, fam, params) VG_OP_##name,
#include "tensor/ops.def"
#undef X
  VG_OP_COUNT
} vg_op;

typedef struct vg_storage {
  void *data;
  size_t nbytes;
  vg_device device;
  int heap;                 /* 1: malloc'd / device-allocated, freed with its owner */
} vg_storage;

struct vg_node;

typedef struct vg_tensor {
  vg_dtype dtype;
  vg_device device;
  int ndim;
  int64_t shape[VG_MAX_DIMS];
  int64_t stride[VG_MAX_DIMS];   /* in elements; 0 for broadcast dims */
  int64_t offset;                /* in elements, into storage */
  vg_storage *storage;
  unsigned flags;                /* VG_TF_* below */
  /* autograd */
  bool requires_grad;            /* leaf that wants a grad, or result of such an op */
  struct vg_tensor *grad;        /* leaves: accumulated gradient (heap, same shape) */
  struct vg_node *node;          /* the op that made it (NULL for leaves) */
} vg_tensor;

enum { VG_TF_HEAP = 1u, VG_TF_OWNS_STORAGE = 2u };

/* ---- dtypes and shapes ---- */
size_t vg_dtype_size(vg_dtype dt);
const char *vg_dtype_name(vg_dtype dt);
const char *vg_op_name(vg_op op);
int vg_op_arity(vg_op op);            /* -1 = variadic */
bool vg_op_differentiable(vg_op op);
int64_t vg_numel(const vg_tensor *t);
bool vg_is_contiguous(const vg_tensor *t);
bool vg_same_shape(const vg_tensor *a, const vg_tensor *b);
/* "[2, 3, 4]" into buf (returns buf) */
char *vg_shape_str(const vg_tensor *t, char *buf, size_t n);
void *vg_data(const vg_tensor *t);    /* pointer to element 0 (CPU tensors) */
float *vg_f32(const vg_tensor *t);    /* vg_data for F32 tensors; aborts on other dtypes */

/* ---- scopes ---- */
void vg_scope_begin(void);
void vg_scope_end(void);              /* frees everything made since the matching begin */
int vg_scope_depth(void);
/* Ends the current scope like vg_scope_end but keeps ts[0..n) (n <= 16; NULL entries
 * skipped): each ts[i] is replaced by an equal tensor in the parent scope (heap when
 * none). For inference memory: a block's intermediates are freed when it returns.
 *   vg_scope_begin(); y = block(x); vg_scope_end_keep(1, &y);
 * Device storages move without a copy; CPU data made in the scope moves down to the
 * scope's start (one memmove; contiguous), older data is referenced (a header on the
 * outer tensor's storage). At depth 1 the results are heap tensors, freed with
 * vg_tensor_free; a kept view of another kept device tensor or of an outer tensor does
 * not own its storage: free it before that tensor. A tensor recorded
 * by autograd (t->node) cannot be kept (abort): the tape of the scope is rewound. */
void vg_scope_end_keep(int n, vg_tensor **ts);
/* The same, but the scope stays open (same mark) holding only ts: a loop replaces its
 * state without piling up its history (each step's intermediates and the previous state
 * are freed):
 *   vg_scope_begin();
 *   for (k...) { h = step(h); vg_scope_reset_keep(1, &h); }
 *   vg_scope_end_keep(1, &h); */
void vg_scope_reset_keep(int n, vg_tensor **ts);
/* Bytes the calling thread's scope arena holds from the system (for memory tests). */
size_t vg_scope_arena_bytes(void);
/* Frees the calling thread's arena chunks (only when no scope is open). */
void vg_scope_release(void);

/* ---- creation ---- */
vg_tensor *vg_empty(vg_dtype dt, int ndim, const int64_t *shape);   /* in scope (or heap) */
vg_tensor *vg_zeros(vg_dtype dt, int ndim, const int64_t *shape);
vg_tensor *vg_full(vg_dtype dt, int ndim, const int64_t *shape, double value);
vg_tensor *vg_scalar(float v);                                       /* 0-d f32 */
vg_tensor *vg_arange(double start, double end, double step, vg_dtype dt);
vg_tensor *vg_from_data(vg_dtype dt, int ndim, const int64_t *shape, const void *src); /* copies */
vg_tensor *vg_empty_like(const vg_tensor *t);
vg_tensor *vg_zeros_like(const vg_tensor *t);
/* Long-lived heap tensors (zeroed), freed with vg_tensor_free. */
vg_tensor *vg_tensor_new(vg_dtype dt, int ndim, const int64_t *shape);
/* Same (zeroed, CPU, freed with vg_tensor_free), but never aborts: a failed allocation
 * (or a byte size past 2^63) returns NULL with VG_ERR_NOMEM and a message naming the size;
 * a bad dtype/ndim/negative dim returns NULL with VG_ERR_ARG. For sizes that come from a
 * file (loaders). */
vg_tensor *vg_tensor_try_new(vg_dtype dt, int ndim, const int64_t *shape);
vg_tensor *vg_tensor_clone_heap(const vg_tensor *t);   /* contiguous heap copy, no grad */
void vg_tensor_free(vg_tensor *t);                     /* heap tensors only; NULL ok */
/* Copies element values out (any layout, converted to dst_dt). */
vg_status vg_to_host(const vg_tensor *t, vg_dtype dst_dt, void *dst);
/* The reverse: fills dst (any device, any layout) from a contiguous host buffer of
 * numel(dst) elements of src_dt, converting. */
vg_status vg_from_host_(vg_tensor *dst, vg_dtype src_dt, const void *src);
float vg_item(const vg_tensor *t);                     /* single-element tensor -> float */

/* ---- views (zero-copy; reshape copies when the layout needs it, like torch.reshape) ---- */
vg_tensor *vg_reshape(const vg_tensor *t, int ndim, const int64_t *shape); /* one dim may be -1 */
vg_tensor *vg_view(const vg_tensor *t, int ndim, const int64_t *shape);    /* never copies */
vg_tensor *vg_flatten(const vg_tensor *t, int start_dim, int end_dim);
vg_tensor *vg_permute(const vg_tensor *t, const int *perm);
vg_tensor *vg_transpose(const vg_tensor *t, int d0, int d1);
vg_tensor *vg_slice(const vg_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
vg_tensor *vg_narrow(const vg_tensor *t, int dim, int64_t start, int64_t len);
vg_tensor *vg_select(const vg_tensor *t, int dim, int64_t index);  /* drops dim */
vg_tensor *vg_expand(const vg_tensor *t, int ndim, const int64_t *shape);  /* -1 keeps */
vg_tensor *vg_squeeze(const vg_tensor *t, int dim);    /* dim = -1... counts from the end */
vg_tensor *vg_unsqueeze(const vg_tensor *t, int dim);
vg_tensor *vg_contiguous(const vg_tensor *t);          /* t itself when already contiguous */
vg_tensor *vg_clone(const vg_tensor *t);               /* always a new contiguous copy */
vg_tensor *vg_cast(const vg_tensor *t, vg_dtype dt);
/* One element between f32 and the f16 / bf16 storage formats (round to nearest even), for
 * code that reads such bytes itself (file loaders). */
float vg_half_to_float(uint16_t h);
uint16_t vg_float_to_half(float f);
float vg_bf16_to_float(uint16_t h);
uint16_t vg_float_to_bf16(float f);
vg_tensor *vg_detach(const vg_tensor *t);              /* same data, no grad history */
/* split into pieces of `size` along dim (last may be smaller); returns count, views in out */
int vg_split(const vg_tensor *t, int64_t size, int dim, vg_tensor **out, int max_out);
int vg_chunk(const vg_tensor *t, int chunks, int dim, vg_tensor **out);

/* ---- in place (no autograd; for optimizers, buffers, init) ---- */
vg_status vg_copy_(vg_tensor *dst, const vg_tensor *src);   /* broadcasting, casting */
vg_status vg_fill_(vg_tensor *dst, double value);
vg_status vg_axpy_(vg_tensor *y, float a, const vg_tensor *x);  /* y += a * x (same shape) */

/* ---- elementwise ---- */
vg_tensor *vg_neg(const vg_tensor *x);
vg_tensor *vg_exp(const vg_tensor *x);
vg_tensor *vg_log(const vg_tensor *x);
vg_tensor *vg_sqrt(const vg_tensor *x);
vg_tensor *vg_rsqrt(const vg_tensor *x);
vg_tensor *vg_abs(const vg_tensor *x);
vg_tensor *vg_sign(const vg_tensor *x);
vg_tensor *vg_relu(const vg_tensor *x);
vg_tensor *vg_leaky_relu(const vg_tensor *x, float slope);
vg_tensor *vg_sigmoid(const vg_tensor *x);
vg_tensor *vg_logsigmoid(const vg_tensor *x);
vg_tensor *vg_tanh(const vg_tensor *x);
vg_tensor *vg_softplus(const vg_tensor *x, float beta, float threshold); /* torch: 1, 20 */
vg_tensor *vg_atan(const vg_tensor *x);
vg_tensor *vg_gelu(const vg_tensor *x);
vg_tensor *vg_sin(const vg_tensor *x);
vg_tensor *vg_cos(const vg_tensor *x);
vg_tensor *vg_erf(const vg_tensor *x);
vg_tensor *vg_hardswish(const vg_tensor *x);    /* x relu6(x + 3) / 6, as torch */
vg_tensor *vg_hardsigmoid(const vg_tensor *x);  /* relu6(x + 3) / 6 */
vg_tensor *vg_silu(const vg_tensor *x);         /* x sigmoid(x) */
vg_tensor *vg_pow_scalar(const vg_tensor *x, float p);
vg_tensor *vg_clamp(const vg_tensor *x, float lo, float hi);  /* +-INFINITY = no bound */
vg_tensor *vg_scale(const vg_tensor *x, float a);             /* a * x */
vg_tensor *vg_add_scalar(const vg_tensor *x, float b);        /* x + b */
vg_tensor *vg_affine(const vg_tensor *x, float a, float b);   /* a * x + b */
vg_tensor *vg_add(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_sub(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_mul(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_div(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_maximum(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_minimum(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_eq(const vg_tensor *a, const vg_tensor *b);     /* -> bool */
vg_tensor *vg_ne(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_lt(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_le(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_gt(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_ge(const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_where(const vg_tensor *cond, const vg_tensor *a, const vg_tensor *b);
vg_tensor *vg_masked_fill(const vg_tensor *x, const vg_tensor *mask, float value);

/* ---- reductions: dims = list of dims (negative ok); ndims = 0 means all dims ---- */
vg_tensor *vg_sum(const vg_tensor *x, int ndims, const int *dims, bool keepdim);
vg_tensor *vg_mean(const vg_tensor *x, int ndims, const int *dims, bool keepdim);
vg_tensor *vg_amax(const vg_tensor *x, int ndims, const int *dims, bool keepdim);
vg_tensor *vg_amin(const vg_tensor *x, int ndims, const int *dims, bool keepdim);
vg_tensor *vg_var(const vg_tensor *x, int ndims, const int *dims, bool unbiased, bool keepdim);
vg_tensor *vg_std(const vg_tensor *x, int ndims, const int *dims, bool unbiased, bool keepdim);
vg_tensor *vg_logsumexp(const vg_tensor *x, int ndims, const int *dims, bool keepdim);
vg_tensor *vg_argmax(const vg_tensor *x, int dim, bool keepdim);   /* -> i64, first maximum */
vg_tensor *vg_argmin(const vg_tensor *x, int dim, bool keepdim);   /* -> i64, first minimum */
/* torch.max(x, dim) / torch.min(x, dim): values (differentiable) and optional i64 indices */
vg_tensor *vg_max_dim(const vg_tensor *x, int dim, bool keepdim, vg_tensor **indices);
vg_tensor *vg_min_dim(const vg_tensor *x, int dim, bool keepdim, vg_tensor **indices);
vg_tensor *vg_sum_all(const vg_tensor *x);
vg_tensor *vg_mean_all(const vg_tensor *x);

/* ---- linear algebra and nn functional ---- */
vg_tensor *vg_matmul(const vg_tensor *a, const vg_tensor *b);  /* 1-D, 2-D, batched */
vg_tensor *vg_linear(const vg_tensor *x, const vg_tensor *w, const vg_tensor *b); /* x w^T + b */

/* ---- inference-only fused kernels (tensor/cpu/attention.c) ----
 * The values of the composites they replace, bit for bit on a given ISA, without their
 * intermediates. When autograd would record (grad mode on and an input requires grad), or
 * an input is not a CPU f32 tensor, they run the composites themselves (same results,
 * autograd as usual).
 *
 * vg_linear_ex(x, w, b, pw, gelu) = gelu ? vg_gelu(vg_linear(x, w, b)) : vg_linear(x, w, b),
 * bias and the exact GELU applied in the GEMM's output step. pw (nullable): w packed once
 * by vg_linear_pack, used only while vg_packed_weight_current(pw, w) holds; otherwise w is
 * packed per call as vg_linear does (a stale pack is never used for a different tensor).
 *
 * vg_packed_weight_current checks w's data pointer, offset, shape, strides, the ISA in use
 * and 64 sampled values against the pack: whole-tensor rewrites (a state-dict / checkpoint
 * load, an optimizer step, a re-init) are caught, a write to a few elements may not be.
 * The pack's owner drops or re-packs it whenever the weight may have changed (nn/backbones/
 * vit.h: vg_vit_prepack). vg_linear_pack: NULL + error unless w is 2-D CPU f32.
 *
 * vg_attention_qkv(qkv, heads, scale): qkv (N, T, 3 C) as a qkv Linear writes it ((N, T,
 * 3, heads, D), C = heads D) -> (N, T, C) = softmax((q scale) k^T) v per (batch, head),
 * heads side by side: timm's Attention between qkv and proj, with no (N, heads, T, T)
 * tensor and no permute copies. */
typedef struct vg_packed_weight vg_packed_weight;
vg_packed_weight *vg_linear_pack(const vg_tensor *w);
void vg_packed_weight_free(vg_packed_weight *pw);
bool vg_packed_weight_current(const vg_packed_weight *pw, const vg_tensor *w);
vg_tensor *vg_linear_ex(const vg_tensor *x, const vg_tensor *w, const vg_tensor *b, const vg_packed_weight *pw,
                        bool gelu);
vg_tensor *vg_attention_qkv(const vg_tensor *qkv, int heads, float scale);

/* Activation fused into an op's output (conv2d's epilogue). */
typedef enum { VG_ACT_NONE = 0, VG_ACT_RELU = 1 } vg_act;
/* Zero fields: stride 1, padding 0, dilation 1, groups 1, no activation. act =
 * VG_ACT_RELU returns relu(conv2d(...)) from one op: the activation runs in the conv's
 * epilogue, in place (CUDA: GEMM, then one bias + ReLU pass instead of a bias pass and a
 * ReLU op). When autograd records the call it is conv2d then vg_relu, as two ops. */
/* pack (nullable): a cache of the weight's forms for the CPU kernels (the Winograd-transformed
 * filters, the GEMM-packed matrix), made on a call that does not record autograd and reused
 * by the later ones instead of being rebuilt per call (conv layers at batch 1 spent up to a
 * third of their time there). It serves one weight: a call with another tensor, or with this
 * one after vg_conv_pack_current-style checks see it changed (data pointer, offset, shape,
 * strides, ISA in use, 64 sampled values), rebuilds it. Whole-tensor rewrites (an optimizer
 * step, a load) are caught; a write to a few elements may not be: its owner (an nn module,
 * vg_nn_conv_cache) drops it whenever the weight may have changed. One thread at a time. */
typedef struct vg_conv_pack vg_conv_pack;
vg_conv_pack *vg_conv_pack_new(void);
void vg_conv_pack_free(vg_conv_pack *pk);
size_t vg_conv_pack_bytes(const vg_conv_pack *pk);   /* held now */
typedef struct { int sh, sw, ph, pw, dh, dw, groups; vg_act act; vg_conv_pack *pack; } vg_conv2d_opts;
vg_tensor *vg_conv2d(const vg_tensor *x, const vg_tensor *w, const vg_tensor *bias,
                     vg_conv2d_opts o);
/* An eval-mode BatchNorm folded into the conv before it, in one op: *w_out = w s[o],
 * *b_out = (bias - mean) s + beta with s = gamma / sqrt(var + eps) (bias, gamma, beta may
 * be NULL: 0, 1, 0). f32 math, results in w's dtype; the vectors are [O], f32 or (CUDA)
 * f16. Not differentiable. conv2d(x, *w_out, *b_out) == bn(conv2d(x, w, bias)). */
vg_status vg_conv_bn_fold(const vg_tensor *w, const vg_tensor *bias, const vg_tensor *gamma, const vg_tensor *beta,
                          const vg_tensor *mean, const vg_tensor *var, float eps, vg_tensor **w_out,
                          vg_tensor **b_out);
/* vg_conv_bn_fold kept in a pack (a frozen backbone's convs at inference: the fold and the
 * folded weight's cached forms are made once, not per call). While all six sources (CPU f32,
 * the [O] ones contiguous; NULL ones stay NULL) are the same tensors (storage, offset, shape,
 * strides), the five [O] vectors hold the same values (all of them, compared each call), the
 * weight passes the pack's check (64 sampled values) and eps is the same, the kept pair is
 * returned; otherwise the pair is folded again and the pack's forms of the old one dropped. The pair then belongs to pk (valid until pk's next fold or vg_conv_pack_free; do not
 * free it), and vg_conv2d with .pack = pk and w = *w_out keeps the folded weight's forms in pk
 * too. pk NULL or a source not CPU f32: plain vg_conv_bn_fold (scope tensors). */
vg_status vg_conv_bn_fold_packed(vg_conv_pack *pk, const vg_tensor *w, const vg_tensor *bias, const vg_tensor *gamma,
                                 const vg_tensor *beta, const vg_tensor *mean, const vg_tensor *var, float eps,
                                 vg_tensor **w_out, vg_tensor **b_out);
/* Whether w is the folded weight pk holds (from vg_conv_bn_fold_packed). */
bool vg_conv_pack_holds(const vg_conv_pack *pk, const vg_tensor *w);

typedef struct { int kh, kw, sh, sw, ph, pw; bool ceil_mode, count_include_pad; } vg_pool2d_opts;
/* stride 0 = kernel size; PyTorch defaults: count_include_pad = true for avg. */
vg_tensor *vg_avg_pool2d(const vg_tensor *x, vg_pool2d_opts o);
vg_tensor *vg_max_pool2d(const vg_tensor *x, vg_pool2d_opts o, vg_tensor **indices);
vg_tensor *vg_adaptive_avg_pool2d(const vg_tensor *x, int64_t oh, int64_t ow);
vg_tensor *vg_adaptive_avg_pool1d(const vg_tensor *x, int64_t ol);
vg_tensor *vg_interpolate_bilinear(const vg_tensor *x, int64_t oh, int64_t ow, bool align_corners);
vg_tensor *vg_unfold(const vg_tensor *x, int kh, int kw, int dh, int dw, int ph, int pw, int sh, int sw);
vg_tensor *vg_fold(const vg_tensor *cols, int64_t oh, int64_t ow, int kh, int kw, int dh, int dw,
                   int ph, int pw, int sh, int sw);
/* pads[2*i], pads[2*i+1] = before/after for dim (ndim-1-i), as torch.nn.functional.pad */
vg_tensor *vg_pad(const vg_tensor *x, int npairs, const int64_t *pads, float value);
vg_tensor *vg_concat(int n, vg_tensor *const *xs, int dim);
vg_tensor *vg_stack(int n, vg_tensor *const *xs, int dim);
vg_tensor *vg_gather(const vg_tensor *x, int dim, const vg_tensor *index);
vg_tensor *vg_scatter_add(const vg_tensor *base, int dim, const vg_tensor *index, const vg_tensor *src);
vg_tensor *vg_index_select(const vg_tensor *x, int dim, const vg_tensor *index);
vg_tensor *vg_index_add(const vg_tensor *base, int dim, const vg_tensor *index, const vg_tensor *src);

vg_tensor *vg_softmax(const vg_tensor *x, int dim);
vg_tensor *vg_log_softmax(const vg_tensor *x, int dim);
/* normalized_shape = the last `nnorm` dims; weight/bias of that shape or NULL */
vg_tensor *vg_layer_norm(const vg_tensor *x, int nnorm, const vg_tensor *weight,
                         const vg_tensor *bias, float eps);
/* x: (N, C, ...). training: batch statistics, and running stats (heap, may be NULL)
 * updated in place with momentum (unbiased var, as torch). eval: running stats. */
vg_tensor *vg_batch_norm(const vg_tensor *x, vg_tensor *running_mean, vg_tensor *running_var,
                         const vg_tensor *weight, const vg_tensor *bias, bool training,
                         float momentum, float eps);
vg_tensor *vg_dropout(const vg_tensor *x, float p, bool training, uint64_t seed);
vg_tensor *vg_mse_loss(const vg_tensor *a, const vg_tensor *b);   /* mean reduction */

/* ---- selection and sorting (f32; NaN counts as the largest value, as torch) ---- */
/* k-th smallest (1-based) of all elements, by radix selection (O(n)), no size limit;
 * 0-d f32, bit for bit one of the elements (-0 orders before +0 here). */
vg_tensor *vg_kthvalue_all(const vg_tensor *x, int64_t k);
/* torch.quantile(x.flatten(), q) with linear interpolation, bit for bit (its f32 rank
 * arithmetic and fused lerp): 0-d f32; NaN if any element is NaN; q in [0, 1]. */
vg_tensor *vg_quantile_all(const vg_tensor *x, double q);
/* stable sort along dim (torch.sort(stable=True)); values (with grad through gather)
 * and optional i64 indices. topk: torch.topk(sorted=True), equal values in index order. */
vg_tensor *vg_sort(const vg_tensor *x, int dim, bool descending, vg_tensor **indices);
vg_tensor *vg_topk(const vg_tensor *x, int64_t k, int dim, bool largest, vg_tensor **indices);

/* ---- random (counter-based Philox: the numbers depend only on seed and position) ---- */
vg_tensor *vg_rand(int ndim, const int64_t *shape, uint64_t seed);     /* U[0,1) */
vg_tensor *vg_randn(int ndim, const int64_t *shape, uint64_t seed);    /* N(0,1) */
vg_tensor *vg_bernoulli(int ndim, const int64_t *shape, float p, uint64_t seed); /* f32 0/1 */
vg_tensor *vg_randperm(int64_t n, uint64_t seed);                       /* i64 */
vg_status vg_uniform_(vg_tensor *t, float lo, float hi, uint64_t seed);
vg_status vg_normal_(vg_tensor *t, float mean, float std, uint64_t seed);

/* ---- devices ----
 * make CUDA=1 adds the CUDA backend (VG_CUDA). Ops run on the device of their inputs
 * (all inputs of one op on one device); vg_to_host and vg_item work for any device.
 *   if (vg_cuda_available()) { vg_tensor *xg = vg_to_device(x, VG_CUDA); ... }
 * A CPU-only build has these functions too: they fail with "built without CUDA". */
bool vg_cuda_available(void);        /* initializes the backend on first call; false + message when none */
/* A contiguous copy of t on dev, in the current scope (heap when none). Not recorded by
 * autograd (the result is a leaf). NULL + message when dev is unavailable. */
vg_tensor *vg_to_device(const vg_tensor *t, vg_device dev);
/* vg_full on any device (current scope, heap when none): constants next to the data
 * they meet, without a host copy. */
vg_tensor *vg_full_on(vg_device dev, vg_dtype dt, int ndim, const int64_t *shape, double value);
/* vg_tensor_new on any device: a zeroed heap tensor, freed with vg_tensor_free. */
vg_tensor *vg_tensor_new_on(vg_device dev, vg_dtype dt, int ndim, const int64_t *shape);
/* Moves a heap tensor (vg_tensor_new / _on / clone_heap) to dev and dt in place: same
 * header, new storage (its grad too), so modules and optimizers that hold the pointer
 * follow it. Floats convert as vg_cast. For modules: vg_nn_to. */
vg_status vg_tensor_to_(vg_tensor *t, vg_device dev, vg_dtype dt);

/* ---- CUDA runtime: synchronize, pinned memory, memory statistics, timers, graphs ----
 * All work runs in order on one stream (or on the side streams of vg_cuda_fork's branches,
 * joined back to it); vg_cuda_synchronize waits for it. In a CPU-only
 * build (or without a device) these fail with "built without CUDA" / "no CUDA device"
 * (NULL, -1 or an error status; the void ones do nothing), except the host allocator.
 *
 * Fixed-shape inference as a CUDA graph (one launch per image, no allocation):
 *   vg_tensor *in = vg_tensor_new_on(VG_CUDA, VG_F32, 4, shape), *out = ...;  // static
 *   vg_cuda_graph_begin();
 *   vg_scope_begin(); vg_copy_(out, forward(in)); vg_scope_end();
 *   vg_cuda_graph *g = vg_cuda_graph_end();            // NULL + message on failure
 *   per image: vg_copy_(in, host_img); vg_cuda_graph_replay(g); vg_copy_(host_map, out);
 *   vg_cuda_graph_free(g);
 * Nothing runs during the capture (values read back then are meaningless). Device
 * memory allocated during the capture comes from a pool owned by the graph: freed (at
 * vg_scope_end) it stays reserved for the graph's replays and is never handed to other
 * tensors; vg_cuda_graph_free returns it to the cache. Tensors made before the capture
 * that the graph uses (in, out, weights) must outlive the graph. Host copies inside a
 * capture must be contiguous, same dtype and into / from pinned memory (then they are
 * graph nodes: read / written at each replay); others (vg_item, vg_to_host, pageable
 * vg_copy_, gather / scatter_add / index_select / index_add, which check indices on the
 * host, and sort / topk, whose values are a gather) make vg_cuda_graph_end fail with a
 * message naming the copy. */
/* "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"; NULL + message without a device */
const char *vg_cuda_device_name(void);
/* The GPU and the software under it, for benchmark records (vigil bench's JSON). Fields
 * that cannot be read are 0 / "". */
typedef struct {
  char name[256];            /* "NVIDIA H100 80GB HBM3" */
  int cc_major, cc_minor;    /* compute capability */
  int sm_count;
  double memory_gib;
  int driver_version;        /* cudaDriverGetVersion: 12040 = 12.4 */
  int runtime_version;       /* the CUDA runtime the binary runs on */
  int sm_clock_mhz, mem_clock_mhz;   /* peak clocks as the driver reports them */
} vg_cuda_info;
vg_status vg_cuda_device_info(vg_cuda_info *out);
/* The GPU architectures this binary carries kernels for, as `make CUDA=1 CUDA_ARCH=...`
 * built it ("75 80 86 89 90 ..."; PTX of the last one too); "" without CUDA. */
const char *vg_cuda_built_archs(void);
/* The message of the start-up check when the binary has no kernel for the GPU (exposed for
 * tests): names the GPU, its compute capability, what the binary has, and the CUDA_ARCH
 * to rebuild with. */
void vg_cuda_arch_message(char *buf, size_t cap, const char *gpu, int cc_major, int cc_minor, const char *built);
void vg_cuda_synchronize(void);      /* waits for all queued work (aborts during a capture) */
/* f32 GEMMs (matmul, conv) on TF32 tensor cores (10-bit mantissa inputs, f32 accumulation):
 * off by default so f32 matches the CPU; VIGIL_TF32=1 in the environment turns it on at
 * start (PyTorch runs f32 convolutions this way by default: cudnn.allow_tf32). */
/* Whether a CUDA graph capture is in progress on this thread's stream (false without CUDA):
 * code that caches device tensors lazily must not make them during a capture. */
bool vg_cuda_capturing(void);
vg_status vg_cuda_set_tf32(bool on);
bool vg_cuda_tf32(void);
/* Concurrent branches of independent GPU work (eager, or captured into a graph as
 * parallel branches):
 *   vg_cuda_fork();                       // the branches start after the work so far
 *   vg_cuda_branch(1); a = f(x);          // work dispatched now goes to side stream 1
 *   vg_cuda_branch(2); b = g(x);          // ... to side stream 2
 *   vg_cuda_branch(0); c = h(x);          // ... to the main stream
 *   vg_cuda_join();                       // later work waits for every branch
 * Branches 0..3. A branch must not use a tensor another branch writes; tensors freed
 * while forked are reused only after the join; host copies and synchronizing calls abort
 * while forked. No-ops without a device, in CPU-only builds, and with
 * VIGIL_CUDA_BRANCHES=0 (everything then runs in order on the main stream);
 * vg_cuda_branches() says whether side streams are in use. */
void vg_cuda_fork(void);
void vg_cuda_branch(int k);
void vg_cuda_join(void);
bool vg_cuda_branches(void);
/* Page-locked host memory (cudaMallocHost; plain malloc without a device), for fast
 * and capturable copies; free with vg_cuda_host_free. */
void *vg_cuda_host_alloc(size_t nbytes);
void vg_cuda_host_free(void *p);
/* A CPU heap tensor over caller memory (contiguous, no copy): vg_tensor_free frees the
 * header only. For pinned buffers: vg_tensor_wrap_host(vg_cuda_host_alloc(n), ...). */
vg_tensor *vg_tensor_wrap_host(void *data, vg_dtype dt, int ndim, const int64_t *shape);
/* The caching allocator's counters (bytes are block sizes: powers of two >= 256). */
typedef struct {
  size_t bytes_live;       /* handed out, not freed */
  size_t bytes_cached;     /* free in the global cache (reused by any allocation) */
  size_t bytes_graph;      /* free in graph pools (reserved for replays) */
  size_t peak_live;        /* max bytes_live since start / vg_cuda_reset_peak */
  size_t peak_reserved;    /* max of live + cached + graph: device memory held from cudaMalloc */
  int64_t n_malloc;        /* cudaMalloc calls so far (a steady-state step makes none) */
  int64_t n_alloc_calls;   /* allocations asked of the allocator so far */
} vg_cuda_mem_stats;
vg_status vg_cuda_mem_stats_get(vg_cuda_mem_stats *s);
void vg_cuda_reset_peak(void);       /* peaks := current values */
void vg_cuda_empty_cache(void);      /* cached blocks back to the driver (not graph pools) */
/* Stream-ordered timing with CUDA events: start, queue work, stop; elapsed_ms waits for
 * stop and returns milliseconds (-1 + message on error). */
typedef struct vg_cuda_timer vg_cuda_timer;
vg_cuda_timer *vg_cuda_timer_new(void);
void vg_cuda_timer_start(vg_cuda_timer *t);
void vg_cuda_timer_stop(vg_cuda_timer *t);
float vg_cuda_timer_elapsed_ms(vg_cuda_timer *t);
void vg_cuda_timer_free(vg_cuda_timer *t);
/* Graphs (see above): begin captures the stream; end instantiates; replay launches it
 * (asynchronous, in stream order); free waits for replays, then releases the pool. */
typedef struct vg_cuda_graph vg_cuda_graph;
vg_status vg_cuda_graph_begin(void);
vg_cuda_graph *vg_cuda_graph_end(void);
vg_status vg_cuda_graph_replay(vg_cuda_graph *g);
void vg_cuda_graph_free(vg_cuda_graph *g);

/* ---- threads ---- */
int vg_num_threads(void);
void vg_set_num_threads(int n);
#endif
