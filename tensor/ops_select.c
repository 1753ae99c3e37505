/* ops_select.c — front-ends of the selection family: kthvalue and quantile over all
 * elements (KTHVALUE, a radix select), sort and topk along a dim (SORT gives i64
 * indices; the values are vg_gather(x, dim, indices), so their gradient flows back
 * through GATHER to x).
 *
 * NaN: kthvalue and sort treat NaN as the largest value (torch.kthvalue, torch.sort);
 * quantile returns NaN when any element is NaN (torch.quantile). */
#include "tensor/internal.h"
#include <math.h>

static bool check_f32(const char *op, const vg_tensor *x) {
  return vg_check_inputs(op, 1, &x, true);
}

/* KTHVALUE: p.kth = {k, k_hi, mode, w} (see tensor/op_params.h, tensor/cpu/select.c) */
static vg_tensor *run_kth(const vg_tensor *x, int64_t k, int64_t mode, int64_t khi, double w) {
  const vg_tensor *in[1] = {x};
  vg_tensor *out = vg_alloc(x->dtype, x->device, 0, NULL);   /* f32, or f16 on CUDA */
  vg_opcall c = {.op = VG_OP_KTHVALUE, .nin = 1, .in = in, .out = {out},
                 .p.kth = {.k = k, .k_hi = khi, .mode = (int)mode, .w = w}};
  return vg_dispatch(&c);
}

vg_tensor *vg_kthvalue_all(const vg_tensor *x, int64_t k) {
  if (!check_f32("kthvalue", x)) return NULL;
  int64_t n = vg_numel(x);
  if (k < 1 || k > n) {
    char b[128];
    return vg_op_error("kthvalue", "k = %lld out of range [1, %lld] for %s", (long long)k, (long long)n,
                       vg_shape_str(x, b, sizeof b));
  }
  return run_kth(x, k, 0, k, 0);
}

/* torch.quantile(x.flatten(), q), 'linear': torch computes in the input's dtype,
 *   rank = float(q) * float(n - 1), lo = (int64)rank, hi = ceil(rank),
 *   w = rank - lo, result = lerp(v[lo], v[hi], w)
 * (v = sorted values, 0-based). hi and lo are clamped to n - 1, which float rounding
 * of n - 1 can exceed past 2^24 elements (torch would fail there). */
vg_tensor *vg_quantile_all(const vg_tensor *x, double q) {
  if (!check_f32("quantile", x)) return NULL;
  int64_t n = vg_numel(x);
  char b[128];
  if (n == 0) return vg_op_error("quantile", "empty input %s", vg_shape_str(x, b, sizeof b));
  if (!(q >= 0.0 && q <= 1.0))
    return vg_op_error("quantile", "q = %g outside [0, 1] for %s", q, vg_shape_str(x, b, sizeof b));
  float qf = (float)q, last = (float)(n - 1);
  float rank = qf * last;
  int64_t lo = (int64_t)rank, hi = (int64_t)ceilf(rank);
  float w = rank - (float)lo;
  if (lo > n - 1) lo = n - 1;
  if (hi > n - 1) hi = n - 1;
  if (hi < lo) hi = lo;
  return run_kth(x, lo + 1, 1, hi + 1, w);
}

/* SORT: p.sort = {dim, descending, keep}; out = i64 indices with `keep` along dim */
static vg_tensor *sort_indices(const vg_tensor *x, int dim, bool desc, int64_t keep) {
  const vg_tensor *in[1] = {x};
  int64_t shape[VG_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) shape[d] = d == dim ? keep : x->shape[d];
  vg_tensor *idx = vg_alloc(VG_I64, x->device, x->ndim, shape);
  vg_opcall c = {.op = VG_OP_SORT, .nin = 1, .in = in, .out = {idx},
                 .p.sort = {.dim = dim, .descending = desc, .keep = keep}};
  return vg_dispatch(&c);
}

static bool norm_dim(const char *op, const vg_tensor *x, int *dim) {
  int d = vg_norm_dim(*dim, x->ndim);
  if (d < 0) {
    char b[128];
    vg_op_error(op, "dim %d out of range for %s", *dim, vg_shape_str(x, b, sizeof b));
    return false;
  }
  *dim = x->ndim ? d : 0;
  return true;
}

/* values = x gathered along dim at the indices (0-d x: x itself, as torch) */
static vg_tensor *gather_values(const vg_tensor *x, int dim, vg_tensor *idx) {
  if (x->ndim == 0) return vg_clone(x);
  return vg_gather(x, dim, idx);
}

vg_tensor *vg_sort(const vg_tensor *x, int dim, bool descending, vg_tensor **indices) {
  if (indices) *indices = NULL;
  if (!check_f32("sort", x) || !norm_dim("sort", x, &dim)) return NULL;
  int64_t len = x->ndim ? x->shape[dim] : 1;
  vg_tensor *idx = sort_indices(x, dim, descending, len);
  vg_tensor *v = gather_values(x, dim, idx);
  if (v && indices) *indices = idx;
  return v;
}

/* torch.topk(x, k, dim, largest, sorted=True); equal values come in index order. */
vg_tensor *vg_topk(const vg_tensor *x, int64_t k, int dim, bool largest, vg_tensor **indices) {
  if (indices) *indices = NULL;
  if (!check_f32("topk", x) || !norm_dim("topk", x, &dim)) return NULL;
  int64_t len = x->ndim ? x->shape[dim] : 1;
  if (k < 0 || k > len) {
    char b[128];
    return vg_op_error("topk", "k = %lld out of range [0, %lld] along dim %d of %s", (long long)k,
                       (long long)len, dim, vg_shape_str(x, b, sizeof b));
  }
  vg_tensor *idx = sort_indices(x, dim, largest, k);
  vg_tensor *v = gather_values(x, dim, idx);
  if (v && indices) *indices = idx;
  return v;
}
