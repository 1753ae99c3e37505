/* internal.h — what tensor/, tensor/cpu/, tensor/cuda/ and autograd/ share; not public.
 *
 * An op call: the front-end (tensor/ops_*.c) validates inputs, computes the output
 * shape, allocates the outputs (contiguous, in the current scope), fills a vg_opcall
 * and hands it to vg_dispatch(), which runs the backend of the inputs' device and,
 * when grad mode is on and an input requires grad, records a tape node
 * (autograd/tape.c) holding a copy of the call. Backward rules (autograd/backward.c)
 * read the same vg_opcall, so an op's parameters are described once. */
#ifndef VG_TENSOR_INTERNAL_H
#define VG_TENSOR_INTERNAL_H
#include "tensor/tensor.h"
#include "tensor/op_params.h"

#define VG_OP_MAX_IN 4

typedef struct vg_opcall {
  vg_op op;
  int nin;                           /* number of inputs (variadic: concat) */
  const vg_tensor *const *in;        /* inputs; in[i] may be NULL for optional ones */
  vg_tensor *out[2];                 /* outputs (out[1]: e.g. max_pool indices) */
  vg_op_params p;                    /* the member named by the op's PARAMS column */
} vg_opcall;

/* The op families of tensor/ops.def's FAMILY column (documentation, opstats grouping, the
 * op-test table); a backend has one kernel per OP (vg_backend.kernel), VIEW ops none. */
typedef enum {
  VG_FAM_VIEW,      /* reshape, permute, slice, expand: header only, no kernel runs */
  VG_FAM_COPY,      /* copy/cast, fill, arange */
  VG_FAM_UNARY,
  VG_FAM_BINARY,
  VG_FAM_WHERE,
  VG_FAM_REDUCE,
  VG_FAM_MATMUL,
  VG_FAM_CONV,
  VG_FAM_POOL,
  VG_FAM_RESAMPLE,
  VG_FAM_LAYOUT,
  VG_FAM_INDEX,
  VG_FAM_SELECT,
  VG_FAM_RANDOM,
  VG_FAM_NORM,      /* softmax, log_softmax, layer_norm and their backward ops */
  VG_FAM_COUNT
} vg_op_family;
vg_op_family vg_op_family_of(vg_op op);
const char *vg_op_family_name(vg_op_family f);

typedef void (*vg_kernel_fn)(const vg_opcall *c);

typedef struct vg_optim_update vg_optim_update;     /* tensor/optim_upd.h */
typedef struct vg_backend {
  const char *name;
  vg_kernel_fn kernel[VG_OP_COUNT];                 /* one per op (VIEW-family ops: NULL) */
  void *(*alloc)(size_t nbytes);                    /* heap storage */
  void (*free)(void *p);
  void (*optim_update)(const vg_optim_update *u);   /* optimizer steps (vg_optim_update_run) */
} vg_backend;

const vg_backend *vg_backend_of(vg_device dev);
/* Registers b for dev after checking that it has a kernel for every non-view op (aborts
 * naming the missing ops: a backend cannot half-exist; the startup self-check). */
void vg_backend_register(vg_device dev, const vg_backend *b);
/* false with "backend B has no kernel for op(s) X Y ..." in err when one is missing (or
 * "backend B has no optimizer update (optim_update)"); a view op's kernel must be NULL */
bool vg_backend_complete(const vg_backend *b, char *err, size_t errsz);
/* Runs c's kernel on b (no autograd, no opstats): what vg_dispatch does after recording. */
void vg_backend_exec(const vg_backend *b, const vg_opcall *c);
extern const vg_backend vg_cpu_backend;

/* Runs c on the backend and records autograd. Returns c->out[0]. */
vg_tensor *vg_dispatch(vg_opcall *c);

/* Output allocation in the current scope (heap when none), contiguous. */
vg_tensor *vg_alloc(vg_dtype dt, vg_device dev, int ndim, const int64_t *shape);
/* A view header sharing t's storage (no copy), same scope rules. */
vg_tensor *vg_alloc_view(const vg_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                         int64_t offset);
void vg_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
/* Whether t's elements fill one block of storage from element 0 in some dim order (a
 * permutation of a contiguous tensor): order-free kernels (selection) read it in place. */
bool vg_dense_span(const vg_tensor *t);

/* A contiguous copy made without recording autograd (for kernels and backward code). */
vg_tensor *vg_copy_raw(const vg_tensor *t);

/* Freeable storage for the backward pass (autograd/tape.c; tensor/tensor.c): between
 * vg_grad_heap_begin and _end, the CPU data of tensors made in a scope comes from malloc'd
 * blocks instead of the arena (headers stay in the arena; heap tensors are unaffected).
 * vg_grad_heap_pin(t, +1/-1) counts the holders of the block t's storage lives in (no-op
 * for any other storage); vg_grad_heap_collect frees every block no one pins; _end frees
 * them all (every tensor whose data is a block is dead after it). _pause(true/false)
 * brackets allocations that must outlive the pass (scope tensors' leaf grads). Peak: the
 * most block bytes held at once since the outermost begin (for memory tests). */
void vg_grad_heap_begin(void);
void vg_grad_heap_end(void);
void vg_grad_heap_pause(bool pause);
void vg_grad_heap_pin(const vg_tensor *t, int delta);
void vg_grad_heap_collect(void);
size_t vg_grad_heap_peak(void);
size_t vg_grad_heap_bytes(void);   /* block bytes held now */
/* A heap tensor that takes over g's block (vg_tensor_free frees it), or NULL (nothing
 * changed) unless g is a contiguous CPU scope tensor spanning the whole of a block made in
 * this backward pass that no pending gradient pins and no forward region holds: a block
 * that vg_grad_heap_collect would free once the running rule returns. Autograd hands such
 * a gradient to a heap leaf (a parameter) without copying it. */
vg_tensor *vg_grad_heap_adopt(const vg_tensor *g);
/* A CPU f32 weight's identity for the caches made from it (vg_packed_weight, vg_conv_pack):
 * storage data and offset, shape, strides, and 64 values spread over it (first and last
 * included). _take records it; _matches says whether w still is that tensor with those
 * values: whole-tensor rewrites (a load, an optimizer step) are caught, a write to a few
 * elements may not be. */
enum { VG_WSIG_SAMPLES = 64 };
typedef struct {
  const void *data;
  int64_t offset;
  int ndim, nsamples;
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  int64_t sample_at[VG_WSIG_SAMPLES];
  float sample[VG_WSIG_SAMPLES];
} vg_weight_sig;
void vg_weight_sig_take(vg_weight_sig *s, const vg_tensor *w);
bool vg_weight_sig_matches(const vg_weight_sig *s, const vg_tensor *w);
/* vg_conv_bn_fold_packed's slot in a pack (tensor/cpu/conv_pack.c): _get returns the kept
 * pair when it came from these six sources (NULL ones included) and eps as they are now;
 * _put hands a new heap pair to the pack, which frees the old one. CPU f32 sources only. */
struct vg_conv_pack;
bool vg_conv_pack_fold_get(struct vg_conv_pack *pk, const vg_tensor *const src[6], float eps, vg_tensor **w_out,
                           vg_tensor **b_out);
void vg_conv_pack_fold_put(struct vg_conv_pack *pk, const vg_tensor *const src[6], float eps, vg_tensor *w,
                           vg_tensor *b);
/* A heap tensor on dev like vg_tensor_new_on, its elements not initialised (for copies). */
vg_tensor *vg_tensor_empty_on(vg_device dev, vg_dtype dt, int ndim, const int64_t *shape);
/* Forward regions (autograd/tape.c, vg_fwd_region_*): from _begin (in a scope; a no-op
 * outside one) the CPU data of scope tensors comes from blocks; _hold(t) keeps the block of
 * t's storage past the region (freed with its scope); _end frees the region's other blocks. */
uint64_t vg_fwd_blocks_begin(void);
void vg_fwd_blocks_hold(const vg_tensor *t);
void vg_fwd_blocks_end(uint64_t mark);

/* Scope-allocated scratch memory (freed at scope end; heap fallback needs free). */
void *vg_scope_alloc(size_t nbytes);
bool vg_in_scope(void);

/* Error helpers for front-ends: set "op: message (shapes)" and return NULL. */
vg_tensor *vg_op_error(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns false (with the error set) if any input is NULL, undefined or of the wrong
 * dtype class: `need_float` requires F32 inputs, or F16 ones on CUDA (f16 compute is
 * GPU-only: a CPU F16 input gets "<op>: f16 compute needs a CUDA tensor ..."). */
bool vg_check_inputs(const char *op, int n, const vg_tensor *const *ts, bool need_float);
int vg_norm_dim(int dim, int ndim);   /* -1 → ndim-1; returns -1 when out of range */
/* Broadcast shapes a and b (PyTorch rules) into out; false when incompatible. */
bool vg_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out);
/* Strides of t seen with shape (ndim, shape) under broadcasting (0 on expanded dims). */
void vg_broadcast_strides(const vg_tensor *t, int ndim, const int64_t *shape, int64_t *stride);

/* ---- the autograd recorder ----
 * tensor/ never calls autograd/: autograd installs its recorder (autograd/tape.c, from a
 * constructor, so any program that links the tape has it before main) and vg_dispatch
 * asks it whether grads are on and hands it each differentiable call with an input that
 * requires grad; scopes take a tape mark at begin and rewind to it at end. With no
 * recorder installed (a program that never links autograd) nothing is recorded. */
typedef struct {
  bool (*grad_enabled)(void);          /* false inside vg_no_grad_begin / _end */
  void (*record)(const vg_opcall *c);  /* c ran; its output gets a tape node */
  void *(*tape_mark)(void);
  void (*tape_rewind)(void *mark);
} vg_recorder;
void vg_set_recorder(const vg_recorder *r);   /* NULL uninstalls (dispatch.c) */
extern const vg_recorder *vg_recorder_cur;
static inline bool vg_rec_grad_enabled(void) { return vg_recorder_cur && vg_recorder_cur->grad_enabled(); }
/* (the f16/bf16 element conversions are public: tensor/tensor.h) */
#endif
