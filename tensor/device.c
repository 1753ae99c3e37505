/* device.c — the public device API (vg_cuda_available, vg_to_device, vg_tensor_new_on).
 * Compiled in every build: without VG_WITH_CUDA the CUDA paths return false / NULL
 * with "built without CUDA" in vg_last_error(). */
#include "tensor/internal.h"
#include <string.h>
#ifdef VG_WITH_CUDA
#include "tensor/cuda/cuda.h"
#endif

/* makes the backend of dev usable: VG_OK, or an error with a message */
static vg_status device_ready(vg_device dev) {
  if (dev == VG_CPU) return VG_OK;
  if (dev != VG_CUDA) return vg_fail(VG_ERR_ARG, "bad device %d", (int)dev);
#ifdef VG_WITH_CUDA
  return vg_cuda_init();
#else
  return vg_fail(VG_ERR_DEVICE, "cuda: built without CUDA (rebuild with make CUDA=1)");
#endif
}

bool vg_cuda_available(void) { return device_ready(VG_CUDA) == VG_OK; }

vg_tensor *vg_to_device(const vg_tensor *t, vg_device dev) {
  if (!vg_check_inputs("to_device", 1, &t, false)) return NULL;
  if (device_ready(dev) != VG_OK) return NULL;
  vg_tensor *out = vg_alloc(t->dtype, dev, t->ndim, t->shape);
  const vg_tensor *in[1] = {t};
  vg_opcall c = {.op = VG_OP_COPY, .nin = 1, .in = in, .out = {out}};
  /* a device backend's COPY handles a host input or a host output */
  vg_backend_exec(vg_backend_of(dev != VG_CPU ? dev : t->device), &c);
  return out;
}

/* A heap header (header + storage record in one block, as tensor.c's heap tensors) for
 * numel(shape) elements of dt at data (NULL: allocated on dev and owned); NULL + an
 * error naming op for a bad dtype or shape. */
static vg_tensor *heap_tensor(const char *op, vg_device dev, vg_dtype dt, int ndim, const int64_t *shape, void *data) {
  if ((unsigned)dt >= VG_DTYPE_COUNT || ndim < 0 || ndim > VG_MAX_DIMS)
    return vg_op_error(op, "bad dtype %d or ndim %d", (int)dt, ndim);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return vg_op_error(op, "negative size %lld at dim %d", (long long)shape[i], i);
    if (shape[i] && n > INT64_MAX / shape[i]) return vg_op_error(op, "tensor too large");
    n *= shape[i];
  }
  vg_tensor *t = calloc(1, sizeof *t + sizeof(vg_storage));
  if (!t) VG_ABORT("out of memory");
  vg_storage *s = (vg_storage *)(t + 1);
  s->nbytes = (size_t)n * vg_dtype_size(dt);
  s->device = dev;
  s->heap = data == NULL;
  s->data = data ? data : vg_backend_of(dev)->alloc(s->nbytes ? s->nbytes : 1);
  t->flags = VG_TF_HEAP | (data ? 0u : VG_TF_OWNS_STORAGE);
  t->storage = s;
  t->dtype = dt;
  t->device = dev;
  t->ndim = ndim;
  if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);   /* shape may be NULL for 0-d */
  vg_contiguous_strides(ndim, shape, t->stride);
  return t;
}

vg_tensor *vg_tensor_empty_on(vg_device dev, vg_dtype dt, int ndim, const int64_t *shape) {
  if (device_ready(dev) != VG_OK) return NULL;
  return heap_tensor("tensor_empty_on", dev, dt, ndim, shape, NULL);
}

vg_tensor *vg_tensor_new_on(vg_device dev, vg_dtype dt, int ndim, const int64_t *shape) {
  vg_tensor *t = vg_tensor_empty_on(dev, dt, ndim, shape);
  if (!t) return NULL;
  vg_opcall c = {.op = VG_OP_FILL, .nin = 0, .out = {t}, .p.fill = {.value = 0}};
  vg_backend_exec(vg_backend_of(dev), &c);
  return t;
}

vg_tensor *vg_tensor_wrap_host(void *data, vg_dtype dt, int ndim, const int64_t *shape) {
  if (!data) return vg_op_error("tensor_wrap_host", "NULL data");
  return heap_tensor("tensor_wrap_host", VG_CPU, dt, ndim, shape, data);   /* data not owned */
}

vg_status vg_tensor_to_(vg_tensor *t, vg_device dev, vg_dtype dt) {
  if (!t) return vg_fail(VG_ERR_ARG, "tensor_to_: NULL tensor");
  if (!(t->flags & VG_TF_HEAP) || !(t->flags & VG_TF_OWNS_STORAGE) || !vg_is_contiguous(t) || t->offset)
    return vg_fail(VG_ERR_ARG, "tensor_to_: only contiguous heap tensors that own their storage move in place");
  if ((unsigned)dt >= VG_DTYPE_COUNT) return vg_fail(VG_ERR_ARG, "tensor_to_: bad dtype %d", (int)dt);
  if (t->grad) {
    vg_status st = vg_tensor_to_(t->grad, dev, dt);
    if (st != VG_OK) return st;
  }
  if (t->device == dev && t->dtype == dt) return VG_OK;
  vg_status st = device_ready(dev);
  if (st != VG_OK) return st;
  /* a header for the new storage, filled by the COPY of the backend that sees a device */
  vg_storage ns = {.nbytes = (size_t)vg_numel(t) * vg_dtype_size(dt), .device = dev, .heap = 1};
  const vg_backend *be = vg_backend_of(dev);
  ns.data = be->alloc(ns.nbytes ? ns.nbytes : 1);
  vg_tensor nt = *t;
  nt.dtype = dt;
  nt.device = dev;
  nt.storage = &ns;
  nt.grad = NULL;
  nt.node = NULL;
  const vg_tensor *in[1] = {t};
  vg_opcall c = {.op = VG_OP_COPY, .nin = 1, .in = in, .out = {&nt}};
  vg_backend_exec(vg_backend_of(dev != VG_CPU ? dev : t->device), &c);
  vg_backend_of(t->storage->device)->free(t->storage->data);
  *t->storage = ns;
  t->device = dev;
  t->dtype = dt;
  return VG_OK;
}

vg_tensor *vg_full_on(vg_device dev, vg_dtype dt, int ndim, const int64_t *shape, double value) {
  if (ndim < 0 || ndim > VG_MAX_DIMS) return vg_op_error("full_on", "bad ndim %d", ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) return vg_op_error("full_on", "negative size %lld at dim %d", (long long)shape[i], i);
  if (device_ready(dev) != VG_OK) return NULL;
  vg_tensor *t = vg_alloc(dt, dev, ndim, shape);
  vg_opcall c = {.op = VG_OP_FILL, .nin = 0, .out = {t}, .p.fill = {.value = value}};
  vg_backend_exec(vg_backend_of(dev), &c);   /* a fill kernel: no host copy (CUDA graphs capture it) */
  return t;
}
