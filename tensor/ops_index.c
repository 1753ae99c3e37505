/* ops_index.c — front-ends of gather, scatter_add, index_select, index_add (torch
 * semantics, i64 indices): shape checks as torch, and every index value checked on
 * the host (no negative wrap-around, as torch's gather/index_select). Data may be of
 * any dtype (these ops also move index and mask tensors); the result has the data's
 * dtype. Kernels: tensor/cpu/index.c. */
#include "tensor/internal.h"
#include <stdlib.h>

static int64_t size_at(const vg_tensor *t, int d) { return t->ndim ? t->shape[d] : 1; }

/* Checks index dtype and that every value is in [0, size); the message names the op. */
static bool check_index(const char *op, const vg_tensor *index, int64_t size, int dim, const vg_tensor *x) {
  char a[128], b[128];
  if (index->dtype != VG_I64) {
    vg_op_error(op, "index must be i64, got %s %s", vg_dtype_name(index->dtype), vg_shape_str(index, a, sizeof a));
    return false;
  }
  int64_t n = vg_numel(index);
  if (n == 0) return true;
  int64_t *v = malloc(sizeof(int64_t) * (size_t)n);
  if (!v) VG_ABORT("out of memory");
  vg_to_host(index, VG_I64, v);
  for (int64_t k = 0; k < n; k++)
    if (v[k] < 0 || v[k] >= size) {
      vg_op_error(op, "index %lld (element %lld of index %s) is out of range for dim %d of size %lld (input %s)",
                  (long long)v[k], (long long)k, vg_shape_str(index, a, sizeof a), dim, (long long)size,
                  vg_shape_str(x, b, sizeof b));
      free(v);
      return false;
    }
  free(v);
  return true;
}

static vg_tensor *run(vg_op op, int nin, const vg_tensor *const *in, vg_tensor *out, int dim) {
  vg_opcall c = {.op = op, .nin = nin, .in = in, .out = {out}, .p.dim = {.dim = dim}};
  return vg_dispatch(&c);
}

vg_tensor *vg_gather(const vg_tensor *x, int dim, const vg_tensor *index) {
  const vg_tensor *in[2] = {x, index};
  if (!vg_check_inputs("gather", 2, in, false)) return NULL;
  char a[128], b[128];
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0) return vg_op_error("gather", "dim %d out of range for input %s", dim, vg_shape_str(x, a, sizeof a));
  if (index->ndim != x->ndim)
    return vg_op_error("gather", "index %s must have the same number of dims as input %s",
                       vg_shape_str(index, b, sizeof b), vg_shape_str(x, a, sizeof a));
  for (int i = 0; i < x->ndim; i++)
    if (i != d && index->shape[i] > x->shape[i])
      return vg_op_error("gather", "index %s is larger than input %s at dim %d (only dim %d may differ)",
                         vg_shape_str(index, b, sizeof b), vg_shape_str(x, a, sizeof a), i, d);
  if (!check_index("gather", index, size_at(x, d), d, x)) return NULL;
  return run(VG_OP_GATHER, 2, in, vg_alloc(x->dtype, x->device, index->ndim, index->shape), d);
}

vg_tensor *vg_scatter_add(const vg_tensor *base, int dim, const vg_tensor *index, const vg_tensor *src) {
  const vg_tensor *in[3] = {base, index, src};
  if (!vg_check_inputs("scatter_add", 3, in, false)) return NULL;
  char a[128], b[128], s[128];
  int d = vg_norm_dim(dim, base->ndim);
  if (d < 0) return vg_op_error("scatter_add", "dim %d out of range for input %s", dim, vg_shape_str(base, a, sizeof a));
  if (src->dtype != base->dtype)
    return vg_op_error("scatter_add", "src is %s but input is %s", vg_dtype_name(src->dtype), vg_dtype_name(base->dtype));
  if (index->ndim != base->ndim || src->ndim != base->ndim)
    return vg_op_error("scatter_add", "input %s, index %s and src %s must have the same number of dims",
                       vg_shape_str(base, a, sizeof a), vg_shape_str(index, b, sizeof b), vg_shape_str(src, s, sizeof s));
  for (int i = 0; i < base->ndim; i++)
    if (index->shape[i] > src->shape[i] || (i != d && index->shape[i] > base->shape[i]))
      return vg_op_error("scatter_add", "index %s must be no larger than src %s in every dim and than input %s "
                         "in every dim but %d (dim %d differs)", vg_shape_str(index, b, sizeof b),
                         vg_shape_str(src, s, sizeof s), vg_shape_str(base, a, sizeof a), d, i);
  if (!check_index("scatter_add", index, size_at(base, d), d, base)) return NULL;
  return run(VG_OP_SCATTER_ADD, 3, in, vg_alloc(base->dtype, base->device, base->ndim, base->shape), d);
}

/* index_select / index_add: index is 1-d (or 0-d, one index) */
static bool check_vector(const char *op, const vg_tensor *x, int dim, const vg_tensor *index, int *d) {
  char a[128], b[128];
  if (x->ndim == 0) {
    vg_op_error(op, "input is 0-d; use a tensor with at least one dim");
    return false;
  }
  *d = vg_norm_dim(dim, x->ndim);
  if (*d < 0) {
    vg_op_error(op, "dim %d out of range for input %s", dim, vg_shape_str(x, a, sizeof a));
    return false;
  }
  if (index->ndim > 1) {
    vg_op_error(op, "index %s must be a vector (1-d) for input %s", vg_shape_str(index, b, sizeof b),
                vg_shape_str(x, a, sizeof a));
    return false;
  }
  return check_index(op, index, x->shape[*d], *d, x);
}

vg_tensor *vg_index_select(const vg_tensor *x, int dim, const vg_tensor *index) {
  const vg_tensor *in[2] = {x, index};
  if (!vg_check_inputs("index_select", 2, in, false)) return NULL;
  int d;
  if (!check_vector("index_select", x, dim, index, &d)) return NULL;
  int64_t shape[VG_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[d] = vg_numel(index);
  return run(VG_OP_INDEX_SELECT, 2, in, vg_alloc(x->dtype, x->device, x->ndim, shape), d);
}

vg_tensor *vg_index_add(const vg_tensor *base, int dim, const vg_tensor *index, const vg_tensor *src) {
  const vg_tensor *in[3] = {base, index, src};
  if (!vg_check_inputs("index_add", 3, in, false)) return NULL;
  int d;
  if (!check_vector("index_add", base, dim, index, &d)) return NULL;
  char a[128], s[128];
  if (src->dtype != base->dtype)
    return vg_op_error("index_add", "src is %s but input is %s", vg_dtype_name(src->dtype), vg_dtype_name(base->dtype));
  bool ok = src->ndim == base->ndim;
  for (int i = 0; ok && i < base->ndim; i++) ok = i == d ? src->shape[i] == vg_numel(index) : src->shape[i] == base->shape[i];
  if (!ok)
    return vg_op_error("index_add", "src %s must match input %s except in dim %d, where it must equal the %lld indices",
                       vg_shape_str(src, s, sizeof s), vg_shape_str(base, a, sizeof a), d, (long long)vg_numel(index));
  return run(VG_OP_INDEX_ADD, 3, in, vg_alloc(base->dtype, base->device, base->ndim, base->shape), d);
}
