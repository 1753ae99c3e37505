/* ops_spatial.c — front-ends of pooling, bilinear interpolation, unfold/fold, pad,
 * concat and stack: validate like torch.nn.functional, infer the output shape,
 * allocate, dispatch. Kernels: tensor/cpu/pool.c, resample.c, layout.c.
 *
 * Pooling and interpolation take (N, C, H, W) (pooling also (C, H, W)); every leading
 * dim is a batch of independent H*W planes. */
#include "tensor/internal.h"
#include "tensor/kmath/conv_geom.h"
#include <stdlib.h>
#include <string.h>

/* frees a heap intermediate (made outside any scope); scope tensors go at scope end */
static void drop(vg_tensor *t) {
  if (t && (t->flags & VG_TF_HEAP)) vg_tensor_free(t);
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/* torch's pooling_output_shape: floor or ceil of the window count; in ceil mode the
 * last window must start inside the input or the left padding. */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * p - (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) out--;
  return out;
}

/* Checks x and the options (stride 0 -> kernel size) and gives the output H, W. */
static bool pool_check(const char *op, const vg_tensor *x, vg_pool2d_opts *o, int64_t *oh, int64_t *ow) {
  if (!vg_check_inputs(op, 1, &x, true)) return false;
  char a[128];
  if (x->ndim != 3 && x->ndim != 4) {
    vg_op_error(op, "wants (N, C, H, W) or (C, H, W) input, got %s", vg_shape_str(x, a, sizeof a));
    return false;
  }
  int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
  if (H < 1 || W < 1 || (x->ndim == 4 && x->shape[1] < 1)) {
    vg_op_error(op, "input %s has an empty non-batch dim", vg_shape_str(x, a, sizeof a));
    return false;
  }
  if (o->kh < 1 || o->kw < 1) {
    vg_op_error(op, "kernel size must be positive, got %dx%d", o->kh, o->kw);
    return false;
  }
  if (o->sh == 0) o->sh = o->kh;
  if (o->sw == 0) o->sw = o->kw;
  if (o->sh < 0 || o->sw < 0 || o->ph < 0 || o->pw < 0) {
    vg_op_error(op, "negative stride (%d, %d) or padding (%d, %d)", o->sh, o->sw, o->ph, o->pw);
    return false;
  }
  if (o->ph > o->kh / 2 || o->pw > o->kw / 2) {
    vg_op_error(op, "pad should be at most half of kernel size, but got pad=(%d, %d) and kernel_size=(%d, %d)", o->ph,
                o->pw, o->kh, o->kw);
    return false;
  }
  *oh = pool_out_size(H, o->kh, o->sh, o->ph, o->ceil_mode);
  *ow = pool_out_size(W, o->kw, o->sw, o->pw, o->ceil_mode);
  if (*oh < 1 || *ow < 1) {
    vg_op_error(op, "kernel %dx%d (padding %d, %d) larger than the padded input %s: output size %lldx%lld is too small",
                o->kh, o->kw, o->ph, o->pw, vg_shape_str(x, a, sizeof a), (long long)*oh, (long long)*ow);
    return false;
  }
  return true;
}

static vg_tensor *pool_out(const vg_tensor *x, int64_t oh, int64_t ow, vg_dtype dt) {
  int64_t shape[4];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  shape[x->ndim - 2] = oh;
  shape[x->ndim - 1] = ow;
  return vg_alloc(dt, x->device, x->ndim, shape);
}

static vg_tensor *pool_run(vg_op op, const vg_tensor *x, const vg_pool2d_opts *o, int64_t oh, int64_t ow,
                           vg_tensor **indices) {
  const vg_tensor *in[1] = {x};
  vg_tensor *idx = indices ? pool_out(x, oh, ow, VG_I64) : NULL;
  vg_opcall c = {.op = op, .nin = 1, .in = in, .out = {pool_out(x, oh, ow, x->dtype), idx},
                 .p.pool = {.kh = o->kh, .kw = o->kw, .sh = o->sh, .sw = o->sw, .ph = o->ph, .pw = o->pw,
                            .ceil_mode = o->ceil_mode, .count_include_pad = o->count_include_pad}};
  vg_tensor *y = vg_dispatch(&c);
  if (indices) *indices = idx;
  return y;
}

vg_tensor *vg_avg_pool2d(const vg_tensor *x, vg_pool2d_opts o) {
  int64_t oh, ow;
  if (!pool_check("avg_pool2d", x, &o, &oh, &ow)) return NULL;
  return pool_run(VG_OP_AVG_POOL2D, x, &o, oh, ow, NULL);
}

vg_tensor *vg_max_pool2d(const vg_tensor *x, vg_pool2d_opts o, vg_tensor **indices) {
  int64_t oh, ow;
  if (indices) *indices = NULL;
  if (!pool_check("max_pool2d", x, &o, &oh, &ow)) return NULL;
  vg_tensor *idx = NULL;
  vg_tensor *y = pool_run(VG_OP_MAX_POOL2D, x, &o, oh, ow, &idx);   /* indices always: backward needs them */
  if (indices) *indices = idx;
  return y;
}

vg_tensor *vg_adaptive_avg_pool2d(const vg_tensor *x, int64_t oh, int64_t ow) {
  const char *op = "adaptive_avg_pool2d";
  if (!vg_check_inputs(op, 1, &x, true)) return NULL;
  char a[128];
  if (x->ndim != 3 && x->ndim != 4) return vg_op_error(op, "wants (N, C, H, W) or (C, H, W) input, got %s", vg_shape_str(x, a, sizeof a));
  for (int d = x->ndim == 4 ? 1 : 0; d < x->ndim; d++)
    if (x->shape[d] < 1) return vg_op_error(op, "input %s has an empty non-batch dim", vg_shape_str(x, a, sizeof a));
  if (oh < 0 || ow < 0) return vg_op_error(op, "negative output size %lldx%lld", (long long)oh, (long long)ow);
  vg_pool2d_opts o = {0};
  return pool_run(VG_OP_ADAPTIVE_AVG_POOL2D, x, &o, oh, ow, NULL);
}

/* (N, C, L) or (C, L) -> (.., 1, L), 2-D adaptive pooling to (1, ol), back */
vg_tensor *vg_adaptive_avg_pool1d(const vg_tensor *x, int64_t ol) {
  if (!vg_check_inputs("adaptive_avg_pool1d", 1, &x, true)) return NULL;
  char a[128];
  if (x->ndim != 2 && x->ndim != 3)
    return vg_op_error("adaptive_avg_pool1d", "wants (N, C, L) or (C, L) input, got %s", vg_shape_str(x, a, sizeof a));
  for (int d = x->ndim == 3 ? 1 : 0; d < x->ndim; d++)
    if (x->shape[d] < 1)
      return vg_op_error("adaptive_avg_pool1d", "input %s has an empty non-batch dim", vg_shape_str(x, a, sizeof a));
  if (ol < 0) return vg_op_error("adaptive_avg_pool1d", "negative output size %lld", (long long)ol);
  vg_tensor *u = vg_unsqueeze(x, -2), *y4 = vg_adaptive_avg_pool2d(u, 1, ol), *y = y4 ? vg_squeeze(y4, -2) : NULL;
  if (vg_in_scope()) return y;
  vg_tensor *r = y ? vg_tensor_clone_heap(y) : NULL;   /* outside a scope: an owning result */
  drop(y);
  drop(y4);
  drop(u);
  return r;
}

vg_tensor *vg_interpolate_bilinear(const vg_tensor *x, int64_t oh, int64_t ow, bool align_corners) {
  const char *op = "interpolate_bilinear";
  if (!vg_check_inputs(op, 1, &x, true)) return NULL;
  char a[128];
  if (x->ndim != 4) return vg_op_error(op, "wants (N, C, H, W) input, got %s", vg_shape_str(x, a, sizeof a));
  if (x->shape[2] < 1 || x->shape[3] < 1 || oh < 1 || ow < 1)
    return vg_op_error(op, "input and output sizes should be greater than 0, but got input %s and output %lldx%lld",
                       vg_shape_str(x, a, sizeof a), (long long)oh, (long long)ow);
  const vg_tensor *in[1] = {x};
  int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
  vg_opcall c = {.op = VG_OP_INTERP_BILINEAR, .nin = 1, .in = in, .out = {vg_alloc(x->dtype, x->device, 4, shape)},
                 .p.interp = {.align_corners = align_corners}};
  return vg_dispatch(&c);
}

/* ---- unfold / fold ---- */
typedef struct {
  int64_t kh, kw, dh, dw, ph, pw, sh, sw;
} im2col_geom;

/* Resolves defaults (dilation, stride 0 -> 1), checks, and counts the blocks of an
 * H x W image. */
static bool im2col_check(const char *op, im2col_geom *g, int64_t H, int64_t W, int64_t *bh, int64_t *bw) {
  if (g->dh == 0) g->dh = 1;
  if (g->dw == 0) g->dw = 1;
  if (g->sh == 0) g->sh = 1;
  if (g->sw == 0) g->sw = 1;
  if (g->kh < 1 || g->kw < 1 || g->dh < 0 || g->dw < 0 || g->sh < 0 || g->sw < 0 || g->ph < 0 || g->pw < 0) {
    vg_op_error(op, "kernel (%lld, %lld) must be positive and dilation (%lld, %lld), padding (%lld, %lld), stride "
                "(%lld, %lld) non-negative", (long long)g->kh, (long long)g->kw, (long long)g->dh, (long long)g->dw,
                (long long)g->ph, (long long)g->pw, (long long)g->sh, (long long)g->sw);
    return false;
  }
  int64_t eh = g->dh * (g->kh - 1) + 1, ew = g->dw * (g->kw - 1) + 1;
  *bh = H + 2 * g->ph < eh ? 0 : vg_conv_out_size(H, g->kh, g->sh, g->ph, g->dh);
  *bw = W + 2 * g->pw < ew ? 0 : vg_conv_out_size(W, g->kw, g->sw, g->pw, g->dw);
  if (*bh < 1 || *bw < 1) {
    vg_op_error(op, "spatial size (%lld, %lld) with kernel (%lld, %lld), dilation (%lld, %lld), padding (%lld, %lld) "
                "and stride (%lld, %lld) gives (%lld, %lld) sliding blocks; each must be at least one",
                (long long)H, (long long)W, (long long)g->kh, (long long)g->kw, (long long)g->dh, (long long)g->dw,
                (long long)g->ph, (long long)g->pw, (long long)g->sh, (long long)g->sw, (long long)*bh, (long long)*bw);
    return false;
  }
  return true;
}

vg_tensor *vg_unfold(const vg_tensor *x, int kh, int kw, int dh, int dw, int ph, int pw, int sh, int sw) {
  if (!vg_check_inputs("unfold", 1, &x, true)) return NULL;
  char a[128];
  if (x->ndim != 4) return vg_op_error("unfold", "wants (N, C, H, W) input, got %s", vg_shape_str(x, a, sizeof a));
  im2col_geom g = {kh, kw, dh, dw, ph, pw, sh, sw};
  int64_t bh, bw;
  if (!im2col_check("unfold", &g, x->shape[2], x->shape[3], &bh, &bw)) return NULL;
  int64_t shape[3] = {x->shape[0], x->shape[1] * g.kh * g.kw, bh * bw};
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = VG_OP_UNFOLD, .nin = 1, .in = in, .out = {vg_alloc(x->dtype, x->device, 3, shape)},
                 .p.unfold = {.kh = g.kh, .kw = g.kw, .dh = g.dh, .dw = g.dw, .ph = g.ph, .pw = g.pw, .sh = g.sh,
                              .sw = g.sw}};
  return vg_dispatch(&c);
}

vg_tensor *vg_fold(const vg_tensor *cols, int64_t oh, int64_t ow, int kh, int kw, int dh, int dw, int ph, int pw,
                   int sh, int sw) {
  if (!vg_check_inputs("fold", 1, &cols, true)) return NULL;
  char a[128];
  if (cols->ndim != 3)
    return vg_op_error("fold", "wants (N, C*kh*kw, L) input, got %s", vg_shape_str(cols, a, sizeof a));
  if (oh < 1 || ow < 1) return vg_op_error("fold", "output size (%lld, %lld) must be positive", (long long)oh, (long long)ow);
  im2col_geom g = {kh, kw, dh, dw, ph, pw, sh, sw};
  int64_t bh, bw;
  if (!im2col_check("fold", &g, oh, ow, &bh, &bw)) return NULL;
  if (cols->shape[1] % (g.kh * g.kw))
    return vg_op_error("fold", "input %s: dim 1 must be divisible by the kernel area %lld",
                       vg_shape_str(cols, a, sizeof a), (long long)(g.kh * g.kw));
  if (cols->shape[2] != bh * bw)
    return vg_op_error("fold", "input %s has %lld blocks in dim 2, but output (%lld, %lld) with this kernel, "
                       "dilation, padding and stride has %lld x %lld = %lld",
                       vg_shape_str(cols, a, sizeof a), (long long)cols->shape[2], (long long)oh, (long long)ow,
                       (long long)bh, (long long)bw, (long long)(bh * bw));
  int64_t shape[4] = {cols->shape[0], cols->shape[1] / (g.kh * g.kw), oh, ow};
  const vg_tensor *in[1] = {cols};
  vg_opcall c = {.op = VG_OP_FOLD, .nin = 1, .in = in, .out = {vg_alloc(cols->dtype, cols->device, 4, shape)},
                 .p.unfold = {.kh = g.kh, .kw = g.kw, .dh = g.dh, .dw = g.dw, .ph = g.ph, .pw = g.pw, .sh = g.sh,
                              .sw = g.sw, .oh = oh, .ow = ow}};
  return vg_dispatch(&c);
}

/* ---- pad, concat, stack ---- */
vg_tensor *vg_pad(const vg_tensor *x, int npairs, const int64_t *pads, float value) {
  if (!vg_check_inputs("pad", 1, &x, false)) return NULL;
  char a[128];
  if (npairs < 0 || npairs > x->ndim || (npairs && !pads))
    return vg_op_error("pad", "%d (before, after) pairs for a %d-d input %s (at most one per dim)", npairs, x->ndim,
                       vg_shape_str(x, a, sizeof a));
  int64_t shape[VG_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  vg_opcall c = {.op = VG_OP_PAD, .nin = 1, .p.pad = {.npairs = npairs, .value = value}};
  for (int p = 0; p < npairs; p++) {
    if (pads[2 * p] < 0 || pads[2 * p + 1] < 0)
      return vg_op_error("pad", "negative padding (%lld, %lld) for dim %d of %s is not supported (slice instead)",
                         (long long)pads[2 * p], (long long)pads[2 * p + 1], x->ndim - 1 - p,
                         vg_shape_str(x, a, sizeof a));
    shape[x->ndim - 1 - p] += pads[2 * p] + pads[2 * p + 1];
    c.p.pad.pads[2 * p] = pads[2 * p];          /* before, after of dim ndim-1-p */
    c.p.pad.pads[2 * p + 1] = pads[2 * p + 1];
  }
  const vg_tensor *in[1] = {x};
  c.in = in;
  c.out[0] = vg_alloc(x->dtype, x->device, x->ndim, shape);
  return vg_dispatch(&c);
}

/* torch.cat skips 1-d tensors of size 0 (legacy empties) when shapes are compared */
static bool legacy_empty(const vg_tensor *t) { return t->ndim == 1 && t->shape[0] == 0; }

vg_tensor *vg_concat(int n, vg_tensor *const *xs, int dim) {
  if (n < 1 || !xs) return vg_op_error("concat", "needs at least one tensor, got %d", n);
  const vg_tensor *const *ts = (const vg_tensor *const *)xs;
  if (!vg_check_inputs("concat", n, ts, false)) return NULL;
  int ref = 0, kept = 0;
  while (ref < n && legacy_empty(ts[ref])) ref++;
  if (ref == n) ref = 0;   /* all empty: concatenate them as they are */
  const vg_tensor *r = ts[ref];
  char a[128], b[128];
  if (r->ndim == 0) return vg_op_error("concat", "tensor %d is 0-d; zero-dimensional tensors cannot be concatenated", ref);
  int d = vg_norm_dim(dim, r->ndim);
  if (d < 0)
    return vg_op_error("concat", "dim %d out of range for tensor %d of shape %s", dim, ref, vg_shape_str(r, a, sizeof a));
  int64_t shape[VG_MAX_DIMS];
  memcpy(shape, r->shape, sizeof shape);
  shape[d] = 0;
  for (int k = 0; k < n; k++) {
    const vg_tensor *t = ts[k];
    if (t->dtype != r->dtype)
      return vg_op_error("concat", "tensor %d is %s but tensor %d is %s (cast first)", k, vg_dtype_name(t->dtype), ref,
                         vg_dtype_name(r->dtype));
    if (legacy_empty(t) && !legacy_empty(r)) continue;
    bool ok = t->ndim == r->ndim;
    for (int i = 0; ok && i < r->ndim; i++) ok = i == d || t->shape[i] == r->shape[i];
    if (!ok)
      return vg_op_error("concat", "sizes must match except in dim %d: tensor %d is %s, tensor %d is %s", d, ref,
                         vg_shape_str(r, a, sizeof a), k, vg_shape_str(t, b, sizeof b));
    shape[d] += t->shape[d];
    kept++;
  }
  const vg_tensor **in = (const vg_tensor **)malloc(sizeof(*in) * (size_t)kept);
  if (!in) VG_ABORT("out of memory");
  kept = 0;
  for (int k = 0; k < n; k++)
    if (!(legacy_empty(ts[k]) && !legacy_empty(r))) in[kept++] = ts[k];
  vg_opcall c = {.op = VG_OP_CONCAT, .nin = kept, .in = in, .out = {vg_alloc(r->dtype, r->device, r->ndim, shape)},
                 .p.dim = {.dim = d}};
  vg_tensor *y = vg_dispatch(&c);   /* the tape copies the input list */
  free(in);
  return y;
}

vg_tensor *vg_stack(int n, vg_tensor *const *xs, int dim) {
  if (n < 1 || !xs) return vg_op_error("stack", "needs at least one tensor, got %d", n);
  if (!vg_check_inputs("stack", n, (const vg_tensor *const *)xs, false)) return NULL;
  char a[128], b[128];
  int d = vg_norm_dim(dim, xs[0]->ndim + 1);
  if (d < 0 || xs[0]->ndim >= VG_MAX_DIMS)
    return vg_op_error("stack", "dim %d out of range for %d-d tensors", dim, xs[0]->ndim);
  for (int k = 1; k < n; k++)
    if (!vg_same_shape(xs[k], xs[0]))
      return vg_op_error("stack", "expects each tensor to be equal size, but got %s at entry 0 and %s at entry %d",
                         vg_shape_str(xs[0], a, sizeof a), vg_shape_str(xs[k], b, sizeof b), k);
  vg_tensor **u = malloc(sizeof(*u) * (size_t)n);
  if (!u) VG_ABORT("out of memory");
  for (int k = 0; k < n; k++) u[k] = vg_unsqueeze(xs[k], d);
  vg_tensor *y = vg_concat(n, u, d);
  for (int k = 0; k < n; k++) drop(u[k]);
  free(u);
  return y;
}
