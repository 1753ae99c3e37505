/* views.c — zero-copy views (reshape/view, permute, slice, expand, ...), copies, casts. */
#include "tensor/internal.h"
#include <string.h>

static vg_tensor *view_op(vg_op op, const vg_tensor *x, int ndim, const int64_t *shape,
                          const int64_t *stride, int64_t offset, const vg_op_params *params) {
  vg_tensor *out = vg_alloc_view(x, ndim, shape, stride, offset);
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = op, .nin = 1, .in = in, .out = {out}};
  if (params) c.p = *params;
  return vg_dispatch(&c);
}

/* Strides for viewing x as `shape` without copying, or false (torch's computeStride). */
static bool view_strides(const vg_tensor *x, int ndim, const int64_t *shape, int64_t *stride) {
  int64_t numel = vg_numel(x);
  if (numel == 0 || vg_is_contiguous(x)) {
    vg_contiguous_strides(ndim, shape, stride);
    return true;
  }
  int view_d = ndim - 1;
  int64_t chunk_base_stride = x->ndim ? x->stride[x->ndim - 1] : 1;
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = x->ndim - 1; d >= 0; d--) {
    tensor_numel *= x->shape[d];
    if (d == 0 || (x->shape[d - 1] != 1 && x->stride[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        stride[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = x->stride[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

static bool infer_shape(const char *op, const vg_tensor *x, int ndim, const int64_t *in, int64_t *shape) {
  char b[128];
  if (ndim < 0 || ndim > VG_MAX_DIMS) {
    vg_op_error(op, "bad ndim %d", ndim);
    return false;
  }
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < ndim; i++) {
    shape[i] = in[i];
    if (in[i] == -1) {
      if (infer >= 0) {
        vg_op_error(op, "only one dimension can be -1");
        return false;
      }
      infer = i;
    } else if (in[i] < 0) {
      vg_op_error(op, "negative size %lld", (long long)in[i]);
      return false;
    } else known *= in[i];
  }
  int64_t n = vg_numel(x);
  if (infer >= 0) {
    if (known == 0 || n % known) {
      vg_op_error(op, "cannot infer -1 for %lld elements of %s", (long long)n, vg_shape_str(x, b, sizeof b));
      return false;
    }
    shape[infer] = n / known;
    known = n;
  }
  if (known != n) {
    char s[160];
    size_t k = 0;
    for (int i = 0; i < ndim; i++) k += (size_t)snprintf(s + k, sizeof s - k, i ? ", %lld" : "%lld", (long long)in[i]);
    vg_op_error(op, "shape [%s] is invalid for input of size %lld %s", s, (long long)n, vg_shape_str(x, b, sizeof b));
    return false;
  }
  return true;
}

vg_tensor *vg_view(const vg_tensor *x, int ndim, const int64_t *shape_in) {
  if (!vg_check_inputs("view", 1, &x, false)) return NULL;
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  if (!infer_shape("view", x, ndim, shape_in, shape)) return NULL;
  if (!view_strides(x, ndim, shape, stride))
    return vg_op_error("view", "size is not compatible with the input's strides; use vg_reshape");
  return view_op(VG_OP_RESHAPE, x, ndim, shape, stride, x->offset, NULL);
}

vg_tensor *vg_reshape(const vg_tensor *x, int ndim, const int64_t *shape_in) {
  if (!vg_check_inputs("reshape", 1, &x, false)) return NULL;
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  if (!infer_shape("reshape", x, ndim, shape_in, shape)) return NULL;
  if (view_strides(x, ndim, shape, stride)) return view_op(VG_OP_RESHAPE, x, ndim, shape, stride, x->offset, NULL);
  vg_tensor *c = vg_contiguous(x);
  if (!c) return NULL;
  vg_contiguous_strides(ndim, shape, stride);
  return view_op(VG_OP_RESHAPE, c, ndim, shape, stride, c->offset, NULL);
}

vg_tensor *vg_flatten(const vg_tensor *x, int start, int end) {
  if (!vg_check_inputs("flatten", 1, &x, false)) return NULL;
  int nd = x->ndim ? x->ndim : 1;
  int s = vg_norm_dim(start, nd), e = vg_norm_dim(end, nd);
  if (s < 0 || e < 0 || s > e) return vg_op_error("flatten", "bad dims %d..%d for %d-d input", start, end, x->ndim);
  if (x->ndim == 0) return vg_reshape(x, 1, (int64_t[]){1});
  int64_t shape[VG_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < s; i++) shape[n++] = x->shape[i];
  int64_t m = 1;
  for (int i = s; i <= e; i++) m *= x->shape[i];
  shape[n++] = m;
  for (int i = e + 1; i < x->ndim; i++) shape[n++] = x->shape[i];
  return vg_reshape(x, n, shape);
}

vg_tensor *vg_permute(const vg_tensor *x, const int *perm) {
  if (!vg_check_inputs("permute", 1, &x, false)) return NULL;
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  vg_op_params p = {.permute = {{0}}};
  unsigned seen = 0;
  for (int i = 0; i < x->ndim; i++) {
    int d = vg_norm_dim(perm[i], x->ndim);
    if (d < 0 || (seen >> d & 1)) return vg_op_error("permute", "perm is not a permutation of %d dims", x->ndim);
    seen |= 1u << d;
    p.permute.perm[i] = d;
    shape[i] = x->shape[d];
    stride[i] = x->stride[d];
  }
  return view_op(VG_OP_PERMUTE, x, x->ndim, shape, stride, x->offset, &p);
}

vg_tensor *vg_transpose(const vg_tensor *x, int d0, int d1) {
  if (!vg_check_inputs("transpose", 1, &x, false)) return NULL;
  int a = vg_norm_dim(d0, x->ndim), b = vg_norm_dim(d1, x->ndim);
  if (a < 0 || b < 0) return vg_op_error("transpose", "dims %d, %d out of range for %d-d input", d0, d1, x->ndim);
  int perm[VG_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  return vg_permute(x, perm);
}

vg_tensor *vg_slice(const vg_tensor *x, int dim, int64_t start, int64_t end, int64_t step) {
  if (!vg_check_inputs("slice", 1, &x, false)) return NULL;
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0 || x->ndim == 0) return vg_op_error("slice", "dim %d out of range for %d-d input", dim, x->ndim);
  if (step <= 0) return vg_op_error("slice", "step must be positive, got %lld", (long long)step);
  int64_t n = x->shape[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (start < 0) start = 0;
  if (end > n) end = n;
  if (start > n) start = n;
  if (end < start) end = start;
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  memcpy(stride, x->stride, sizeof stride);
  shape[d] = (end - start + step - 1) / step;
  stride[d] = x->stride[d] * step;
  vg_op_params p = {.slice = {.dim = d, .start = start, .stop = end, .step = step}};
  return view_op(VG_OP_SLICE, x, x->ndim, shape, stride, x->offset + start * x->stride[d], &p);
}

vg_tensor *vg_narrow(const vg_tensor *x, int dim, int64_t start, int64_t len) {
  if (!vg_check_inputs("narrow", 1, &x, false)) return NULL;
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0) return vg_op_error("narrow", "dim %d out of range for %d-d input", dim, x->ndim);
  if (start < 0) start += x->shape[d];
  if (start < 0 || len < 0 || start + len > x->shape[d])
    return vg_op_error("narrow", "range [%lld, %lld) outside dim %d of size %lld", (long long)start,
                       (long long)(start + len), d, (long long)x->shape[d]);
  return vg_slice(x, d, start, start + len, 1);
}

vg_tensor *vg_select(const vg_tensor *x, int dim, int64_t index) {
  if (!vg_check_inputs("select", 1, &x, false)) return NULL;
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0) return vg_op_error("select", "dim %d out of range for %d-d input", dim, x->ndim);
  if (index < 0) index += x->shape[d];
  if (index < 0 || index >= x->shape[d])
    return vg_op_error("select", "index %lld out of range for dim %d of size %lld", (long long)index, d,
                       (long long)x->shape[d]);
  return vg_squeeze(vg_slice(x, d, index, index + 1, 1), d);
}

vg_tensor *vg_expand(const vg_tensor *x, int ndim, const int64_t *shape_in) {
  if (!vg_check_inputs("expand", 1, &x, false)) return NULL;
  char b[128];
  if (ndim < x->ndim || ndim > VG_MAX_DIMS)
    return vg_op_error("expand", "cannot expand %s to %d dims", vg_shape_str(x, b, sizeof b), ndim);
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  int off = ndim - x->ndim;
  for (int i = 0; i < ndim; i++) {
    int64_t want = shape_in[i];
    int64_t have = i < off ? 1 : x->shape[i - off];
    if (want == -1) {
      if (i < off) return vg_op_error("expand", "-1 not allowed in new leading dim %d", i);
      want = have;
    }
    if (have != want && have != 1)
      return vg_op_error("expand", "size %lld of %s cannot expand to %lld at dim %d", (long long)have,
                         vg_shape_str(x, b, sizeof b), (long long)want, i);
    shape[i] = want;
    stride[i] = (i < off || (have == 1 && want != 1)) ? 0 : x->stride[i - off];
  }
  return view_op(VG_OP_EXPAND, x, ndim, shape, stride, x->offset, NULL);
}

vg_tensor *vg_squeeze(const vg_tensor *x, int dim) {
  if (!vg_check_inputs("squeeze", 1, &x, false)) return NULL;
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0) return vg_op_error("squeeze", "dim %d out of range for %d-d input", dim, x->ndim);
  if (x->shape[d] != 1) return (vg_tensor *)x;
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != d) {
      shape[n] = x->shape[i];
      stride[n++] = x->stride[i];
    }
  return view_op(VG_OP_RESHAPE, x, n, shape, stride, x->offset, NULL);
}

vg_tensor *vg_unsqueeze(const vg_tensor *x, int dim) {
  if (!vg_check_inputs("unsqueeze", 1, &x, false)) return NULL;
  if (x->ndim >= VG_MAX_DIMS) return vg_op_error("unsqueeze", "already %d dims", x->ndim);
  int d = vg_norm_dim(dim, x->ndim + 1);
  if (d < 0) return vg_op_error("unsqueeze", "dim %d out of range for %d-d input", dim, x->ndim);
  int64_t shape[VG_MAX_DIMS], stride[VG_MAX_DIMS];
  int n = 0;
  for (int i = 0; i <= x->ndim; i++) {
    if (i == d) {
      shape[n] = 1;
      stride[n++] = (i < x->ndim) ? x->stride[i] * x->shape[i] : 1;
    }
    if (i < x->ndim) {
      shape[n] = x->shape[i];
      stride[n++] = x->stride[i];
    }
  }
  return view_op(VG_OP_RESHAPE, x, n, shape, stride, x->offset, NULL);
}

int vg_split(const vg_tensor *x, int64_t size, int dim, vg_tensor **out, int max_out) {
  if (!vg_check_inputs("split", 1, &x, false)) return -1;
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0 || size <= 0) {
    vg_op_error("split", "bad dim %d or size %lld", dim, (long long)size);
    return -1;
  }
  int n = 0;
  for (int64_t s = 0; s < x->shape[d]; s += size) {
    if (n >= max_out) {
      vg_op_error("split", "more than %d pieces", max_out);
      return -1;
    }
    out[n++] = vg_slice(x, d, s, s + size, 1);
  }
  return n;
}

int vg_chunk(const vg_tensor *x, int chunks, int dim, vg_tensor **out) {
  if (!vg_check_inputs("chunk", 1, &x, false)) return -1;
  int d = vg_norm_dim(dim, x->ndim);
  if (d < 0 || chunks <= 0) {
    vg_op_error("chunk", "bad dim %d or chunk count %d", dim, chunks);
    return -1;
  }
  int64_t size = (x->shape[d] + chunks - 1) / chunks;
  return vg_split(x, size ? size : 1, d, out, chunks);
}

/* ---- copies ---- */
static vg_tensor *copy_to(const vg_tensor *x, vg_dtype dt) {
  vg_tensor *out = vg_alloc(dt, x->device, x->ndim, x->shape);
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = VG_OP_COPY, .nin = 1, .in = in, .out = {out}};
  return vg_dispatch(&c);
}

vg_tensor *vg_copy_raw(const vg_tensor *x) {
  vg_tensor *out = vg_alloc(x->dtype, x->device, x->ndim, x->shape);
  const vg_tensor *in[1] = {x};
  vg_opcall c = {.op = VG_OP_COPY, .nin = 1, .in = in, .out = {out}};
  vg_backend_exec(vg_backend_of(x->device), &c);
  return out;
}

vg_tensor *vg_contiguous(const vg_tensor *x) {
  if (!vg_check_inputs("contiguous", 1, &x, false)) return NULL;
  if (vg_is_contiguous(x)) return (vg_tensor *)x;
  return copy_to(x, x->dtype);
}

vg_tensor *vg_clone(const vg_tensor *x) {
  if (!vg_check_inputs("clone", 1, &x, false)) return NULL;
  return copy_to(x, x->dtype);
}

vg_tensor *vg_cast(const vg_tensor *x, vg_dtype dt) {
  if (!vg_check_inputs("cast", 1, &x, false)) return NULL;
  if ((unsigned)dt >= VG_DTYPE_COUNT) return vg_op_error("cast", "bad dtype %d", (int)dt);
  if (x->dtype == dt) return (vg_tensor *)x;
  return copy_to(x, dt);
}

vg_tensor *vg_detach(const vg_tensor *x) {
  if (!vg_check_inputs("detach", 1, &x, false)) return NULL;
  return vg_alloc_view(x, x->ndim, x->shape, x->stride, x->offset);
}

static float sig_at(const vg_tensor *w, int64_t e) {   /* element e of w in row-major order */
  int64_t off = w->offset;
  for (int d = w->ndim - 1; d >= 0; d--) {
    off += (e % w->shape[d]) * w->stride[d];
    e /= w->shape[d];
  }
  return ((const float *)w->storage->data)[off];
}

void vg_weight_sig_take(vg_weight_sig *s, const vg_tensor *w) {
  *s = (vg_weight_sig){.data = w->storage->data, .offset = w->offset, .ndim = w->ndim};
  memcpy(s->shape, w->shape, sizeof(int64_t) * (size_t)w->ndim);
  memcpy(s->stride, w->stride, sizeof(int64_t) * (size_t)w->ndim);
  const int64_t n = vg_numel(w);
  s->nsamples = n < VG_WSIG_SAMPLES ? (int)n : VG_WSIG_SAMPLES;
  for (int i = 0; i < s->nsamples; i++) {
    s->sample_at[i] = s->nsamples > 1 ? (int64_t)((double)i * (double)(n - 1) / (s->nsamples - 1)) : 0;
    s->sample[i] = sig_at(w, s->sample_at[i]);
  }
}

bool vg_weight_sig_matches(const vg_weight_sig *s, const vg_tensor *w) {
  if (!w->storage || w->storage->data != s->data || w->offset != s->offset || w->ndim != s->ndim) return false;
  for (int d = 0; d < s->ndim; d++)
    if (w->shape[d] != s->shape[d] || w->stride[d] != s->stride[d]) return false;
  for (int i = 0; i < s->nsamples; i++) {
    float v = sig_at(w, s->sample_at[i]);
    if (memcmp(&v, &s->sample[i], sizeof v)) return false;
  }
  return true;
}

vg_tensor *vg_tensor_clone_heap(const vg_tensor *x) {
  if (!vg_check_inputs("clone_heap", 1, &x, false)) return NULL;
  vg_tensor *t = vg_tensor_empty_on(x->device, x->dtype, x->ndim, x->shape);   /* the copy writes every element */
  if (!t) return NULL;
  if (vg_copy_(t, x) != VG_OK) {
    vg_tensor_free(t);
    return NULL;
  }
  return t;
}

bool vg_dense_span(const vg_tensor *t) {
  int64_t sh[VG_MAX_DIMS], st[VG_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {   /* the non-unit dims, sorted by stride (insertion) */
    if (t->shape[d] == 1) continue;
    if (t->stride[d] <= 0) return false;
    int j = n++;
    while (j > 0 && st[j - 1] > t->stride[d]) {
      sh[j] = sh[j - 1];
      st[j] = st[j - 1];
      j--;
    }
    sh[j] = t->shape[d];
    st[j] = t->stride[d];
  }
  int64_t want = 1;
  for (int i = 0; i < n; i++) {
    if (st[i] != want) return false;
    want *= sh[i];
  }
  return true;
}
