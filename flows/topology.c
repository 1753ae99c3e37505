/* topology.c — FrEIA's graph modules: Split and Concat (graph_topology.py, multi-port) and
 * Flatten and Reshape (reshapes.py). All are volume preserving (log-det 0) and have no
 * parameters, so they add an empty "module_list.<i>" entry to a GraphINN, as FrEIA.
 *   Split:   (N, ..., D, ...) -> sections (N, ..., s_k, ...) along dim + 1; rev concatenates.
 *   Concat:  the inverse roles.
 *   Flatten: (N, dims...) -> (N, prod dims);  Reshape: (N, dims...) -> (N, out...). */
#include "flows/block.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_flow_block b;      /* Split: the input dims; Concat: input 0's dims */
  int dim;              /* without the batch */
  int n;                /* sections / inputs */
  int64_t *sizes;       /* n: the sizes along dim */
  vg_flow_dims out;     /* Concat: the output dims; Flatten/Reshape: the output dims */
} topo_state;

static void topo_free(void *p) { free(((topo_state *)p)->sizes); }

static void dims_str(char *buf, size_t cap, int ndim, const int64_t *d) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, cap - k, "(");
  for (int i = 0; i < ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)d[i]);
  if (k < cap) snprintf(buf + k, cap - k, ")");
}

/* x is (N, dims...) with exactly the given dims */
static bool has_dims(const char *who, const vg_tensor *x, int ndim, const int64_t *d) {
  bool ok = x && x->ndim == ndim + 1;
  for (int i = 0; ok && i < ndim; i++) ok = x->shape[i + 1] == d[i];
  if (!ok) {
    char want[96], got[96] = "(none)";
    dims_str(want, sizeof want, ndim, d);
    if (x) dims_str(got, sizeof got, x->ndim - 1, x->shape + 1);
    vg_fail(VG_ERR_ARG, "%s: input dims %s, built for %s", who, got, want);
  }
  return ok;
}

static bool same_batch(const char *who, int n, vg_tensor *const *x) {
  for (int i = 0; i < n; i++)
    if (!x[i] || x[i]->shape[0] != x[0]->shape[0]) { vg_fail(VG_ERR_ARG, "%s: inputs differ in batch size", who); return false; }
  return true;
}

static bool dims_ok(const char *who, int ndim, const int64_t *dims) {
  if (ndim < 1 || ndim > 4) { vg_fail(VG_ERR_ARG, "%s: dims must have 1 to 4 entries, got %d", who, ndim); return false; }
  for (int i = 0; i < ndim; i++) if (dims[i] <= 0) { vg_fail(VG_ERR_ARG, "%s: dims must be > 0", who); return false; }
  return true;
}

static vg_tensor *multi_only(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev, bool want,
                             vg_tensor **logdet) {
  (void)x; (void)ncond; (void)cond; (void)rev; (void)want;
  if (logdet) *logdet = NULL;
  vg_fail(VG_ERR_ARG, "%s has several inputs or outputs: run it with vg_flow_forward_multi", m->kind_name);
  return NULL;
}
static int multi_only_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out) {
  (void)ndim; (void)dims; (void)out;
  vg_fail(VG_ERR_ARG, "%s has several inputs or outputs: use vg_flow_output_dims_multi", m->kind_name);
  return -1;
}

/* (the one side) = concat(the many sides) along dim + 1, or the reverse: pieces of it */
static int split_pieces(const topo_state *f, const vg_tensor *x, vg_tensor **y) {
  int64_t off = 0;
  for (int k = 0; k < f->n; k++) {
    y[k] = vg_narrow(x, f->dim + 1, off, f->sizes[k]);
    off += f->sizes[k];
  }
  return f->n;
}

/* the many side's dims: the one side's with dims[dim] = sizes[k] */
static bool check_many(const char *who, const topo_state *f, const vg_flow_dims *one, int n, vg_tensor *const *x) {
  if (!same_batch(who, n, x)) return false;
  for (int k = 0; k < n; k++) {
    int64_t d[4];
    memcpy(d, one->d, sizeof d);
    d[f->dim] = f->sizes[k];
    if (!has_dims(who, x[k], one->ndim, d)) return false;
  }
  return true;
}

/* ------------------------------------------------------------------ Split */
static int split_fwd(vg_nn_module *m, int nx, vg_tensor *const *x, int ncond, vg_tensor *const *cond, bool rev,
                     bool want, vg_tensor **y, vg_tensor **logdet) {
  (void)nx; (void)ncond; (void)cond;
  topo_state *f = m->ctx;
  vg_flow_dims in = {f->b.ndim, {f->b.dims[0], f->b.dims[1], f->b.dims[2], f->b.dims[3]}};
  int n;
  if (!rev) {
    if (!has_dims("Split", x[0], in.ndim, in.d)) return -1;
    n = split_pieces(f, x[0], y);
  } else {
    if (!check_many("Split (rev)", f, &in, f->n, x)) return -1;
    y[0] = vg_concat(f->n, x, f->dim + 1);
    n = 1;
  }
  if (want) *logdet = vg_flow_zeros_n(x[0], x[0]->shape[0]);
  return n;
}

static int split_dims_multi(const vg_nn_module *m, int nin, const vg_flow_dims *in, vg_flow_dims *out) {
  const topo_state *f = m->ctx;
  if (nin != 1) { vg_fail(VG_ERR_ARG, "Split takes 1 input, got %d", nin); return -1; }
  bool ok = in[0].ndim == f->b.ndim;
  for (int i = 0; ok && i < f->b.ndim; i++) ok = in[0].d[i] == f->b.dims[i];
  if (!ok) {
    char a[96], b[96];
    dims_str(a, sizeof a, in[0].ndim, in[0].d);
    dims_str(b, sizeof b, f->b.ndim, f->b.dims);
    vg_fail(VG_ERR_ARG, "Split: input dims %s, built for %s", a, b);
    return -1;
  }
  for (int k = 0; k < f->n; k++) {
    out[k] = in[0];
    out[k].d[f->dim] = f->sizes[k];
  }
  return f->n;
}

static const vg_flow_block_ops split_ops = {.forward = multi_only, .output_dims = multi_only_dims, .free_state = topo_free,
    .composite = true, .forward_multi = split_fwd, .output_dims_multi = split_dims_multi};

vg_nn_module *vg_flow_split_new(int ndim, const int64_t *dims, int nsec, const int64_t *sections, int n_sections, int dim) {
  if (!dims_ok("Split", ndim, dims)) return NULL;
  if (dim < 0 || dim >= ndim) { vg_fail(VG_ERR_ARG, "Split: dim %d out of range for %d dims", dim, ndim); return NULL; }
  int64_t L = dims[dim];
  int64_t *sz;
  int n;
  if (sections) {
    int64_t sum = 0;
    for (int k = 0; k < nsec; k++) {
      if (sections[k] <= 0) { vg_fail(VG_ERR_ARG, "Split: section sizes must be > 0"); return NULL; }
      sum += sections[k];
    }
    if (nsec < 1 || sum > L) { vg_fail(VG_ERR_ARG, "Split: section sizes sum to %lld, more than the %lld to split", (long long)sum, (long long)L); return NULL; }
    n = nsec + (sum < L);
    if (n < 2) { vg_fail(VG_ERR_ARG, "Split: a single section of %lld is no split", (long long)L); return NULL; }
    sz = malloc(sizeof *sz * (size_t)n);
    memcpy(sz, sections, sizeof *sz * (size_t)nsec);
    if (sum < L) sz[nsec] = L - sum;
  } else {
    if (n_sections < 2 || n_sections > L) { vg_fail(VG_ERR_ARG, "Split: n_sections must be in [2, %lld], got %d", (long long)L, n_sections); return NULL; }
    n = n_sections;
    sz = malloc(sizeof *sz * (size_t)n);
    for (int k = 0; k < n; k++) sz[k] = L / n + (k < L % n);
  }
  vg_nn_module *m = vg_flow_block_new("Split", &split_ops, sizeof(topo_state), ndim, dims, 0);
  topo_state *f = m->ctx;
  f->b.nin = 1;
  f->b.nout = n;
  f->dim = dim;
  f->n = n;
  f->sizes = sz;
  return m;
}

/* ------------------------------------------------------------------ Concat */
static int concat_fwd(vg_nn_module *m, int nx, vg_tensor *const *x, int ncond, vg_tensor *const *cond, bool rev,
                      bool want, vg_tensor **y, vg_tensor **logdet) {
  (void)nx; (void)ncond; (void)cond;
  topo_state *f = m->ctx;
  int n;
  if (!rev) {
    if (!check_many("Concat", f, &f->out, f->n, x)) return -1;
    y[0] = vg_concat(f->n, x, f->dim + 1);
    n = 1;
  } else {
    if (!has_dims("Concat (rev)", x[0], f->out.ndim, f->out.d)) return -1;
    n = split_pieces(f, x[0], y);
  }
  if (want) *logdet = vg_flow_zeros_n(x[0], x[0]->shape[0]);
  return n;
}

static int concat_dims_multi(const vg_nn_module *m, int nin, const vg_flow_dims *in, vg_flow_dims *out) {
  const topo_state *f = m->ctx;
  if (nin != f->n) { vg_fail(VG_ERR_ARG, "Concat: built for %d inputs, got %d", f->n, nin); return -1; }
  for (int k = 0; k < nin; k++) {
    int64_t d[4];
    memcpy(d, f->out.d, sizeof d);
    d[f->dim] = f->sizes[k];
    bool ok = in[k].ndim == f->out.ndim;
    for (int i = 0; ok && i < in[k].ndim; i++) ok = in[k].d[i] == d[i];
    if (!ok) {
      char a[96], b[96];
      dims_str(a, sizeof a, in[k].ndim, in[k].d);
      dims_str(b, sizeof b, f->out.ndim, d);
      vg_fail(VG_ERR_ARG, "Concat: input %d has dims %s, built for %s", k, a, b);
      return -1;
    }
  }
  out[0] = f->out;
  return 1;
}

static const vg_flow_block_ops concat_ops = {.forward = multi_only, .output_dims = multi_only_dims, .free_state = topo_free,
    .composite = true, .forward_multi = concat_fwd, .output_dims_multi = concat_dims_multi};

vg_nn_module *vg_flow_concat_new(int nin, const vg_flow_dims *in, int dim) {
  if (nin < 2 || !in) { vg_fail(VG_ERR_ARG, "Concat: needs at least 2 inputs, got %d", nin); return NULL; }
  for (int k = 0; k < nin; k++) if (!dims_ok("Concat", in[k].ndim, in[k].d)) return NULL;
  if (dim < 0 || dim >= in[0].ndim) { vg_fail(VG_ERR_ARG, "Concat: dim %d out of range for %d dims", dim, in[0].ndim); return NULL; }
  vg_flow_dims out = in[0];
  out.d[dim] = 0;
  for (int k = 0; k < nin; k++) {
    bool ok = in[k].ndim == in[0].ndim;
    for (int i = 0; ok && i < in[0].ndim; i++) ok = i == dim || in[k].d[i] == in[0].d[i];
    if (!ok) {
      char a[96], b[96];
      dims_str(a, sizeof a, in[0].ndim, in[0].d);
      dims_str(b, sizeof b, in[k].ndim, in[k].d);
      vg_fail(VG_ERR_ARG, "Concat: input %d has dims %s, input 0 %s: they must agree except at dim %d", k, b, a, dim);
      return NULL;
    }
    out.d[dim] += in[k].d[dim];
  }
  vg_nn_module *m = vg_flow_block_new("Concat", &concat_ops, sizeof(topo_state), in[0].ndim, in[0].d, 0);
  topo_state *f = m->ctx;
  f->b.nin = nin;
  f->b.nout = 1;
  f->dim = dim;
  f->n = nin;
  f->sizes = malloc(sizeof *f->sizes * (size_t)nin);
  for (int k = 0; k < nin; k++) f->sizes[k] = in[k].d[dim];
  f->out = out;
  return m;
}

/* ------------------------------------------------------------------ Flatten / Reshape */
static vg_tensor *reshape_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                              bool want, vg_tensor **logdet) {
  (void)ncond; (void)cond;
  topo_state *f = m->ctx;
  int fnd = rev ? f->out.ndim : f->b.ndim, tnd = rev ? f->b.ndim : f->out.ndim;
  const int64_t *from = rev ? f->out.d : f->b.dims, *to = rev ? f->b.dims : f->out.d;
  if (logdet) *logdet = NULL;
  if (!has_dims(m->kind_name, x, fnd, from)) return NULL;
  int64_t sh[5] = {x->shape[0]};
  for (int i = 0; i < tnd; i++) sh[i + 1] = to[i];
  vg_tensor *y = vg_reshape(x, tnd + 1, sh);
  if (want && logdet) *logdet = vg_flow_zeros_n(x, x->shape[0]);
  return y;
}

static int reshape_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out) {
  const topo_state *f = m->ctx;
  bool ok = ndim == f->b.ndim;
  for (int i = 0; ok && i < ndim; i++) ok = dims[i] == f->b.dims[i];
  if (!ok) {
    char a[96], b[96];
    dims_str(a, sizeof a, ndim, dims);
    dims_str(b, sizeof b, f->b.ndim, f->b.dims);
    vg_fail(VG_ERR_ARG, "%s: input dims %s, built for %s", m->kind_name, a, b);
    return -1;
  }
  for (int i = 0; i < f->out.ndim; i++) out[i] = f->out.d[i];
  return f->out.ndim;
}

static const vg_flow_block_ops reshape_ops = {.forward = reshape_fwd, .output_dims = reshape_dims, .free_state = topo_free,
    .composite = true};

static vg_nn_module *reshape_make(const char *kind, int ndim, const int64_t *dims, int out_ndim, const int64_t *out_dims) {
  if (!dims_ok(kind, ndim, dims) || !dims_ok(kind, out_ndim, out_dims)) return NULL;
  int64_t a = 1, b = 1;
  for (int i = 0; i < ndim; i++) a *= dims[i];
  for (int i = 0; i < out_ndim; i++) b *= out_dims[i];
  if (a != b) {
    char s1[96], s2[96];
    dims_str(s1, sizeof s1, ndim, dims);
    dims_str(s2, sizeof s2, out_ndim, out_dims);
    vg_fail(VG_ERR_ARG, "Reshape: dims %s and output dims %s differ in element count (%lld vs %lld)", s1, s2, (long long)a, (long long)b);
    return NULL;
  }
  vg_nn_module *m = vg_flow_block_new(kind, &reshape_ops, sizeof(topo_state), ndim, dims, 0);
  topo_state *f = m->ctx;
  f->out.ndim = out_ndim;
  for (int i = 0; i < out_ndim; i++) f->out.d[i] = out_dims[i];
  return m;
}

vg_nn_module *vg_flow_flatten_new(int ndim, const int64_t *dims) {
  if (!dims_ok("Flatten", ndim, dims)) return NULL;
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= dims[i];
  return reshape_make("Flatten", ndim, dims, 1, &n);
}

vg_nn_module *vg_flow_reshape_new(int ndim, const int64_t *dims, int out_ndim, const int64_t *out_dims) {
  return reshape_make("Reshape", ndim, dims, out_ndim, out_dims);
}
