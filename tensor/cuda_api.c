/* cuda_api.c — the CUDA runtime API of tensor.h (synchronize, pinned memory, memory
 * statistics, timers, graphs) in a build without CUDA: every function fails with
 * "built without CUDA" in vg_last_error() (NULL / -1 / an error status; the void ones
 * do nothing), and vg_cuda_host_alloc is plain malloc. With VG_WITH_CUDA they live in
 * tensor/cuda/runtime.cu. vg_tensor_wrap_host (any build) is here too. */
#include "tensor/internal.h"
#include <string.h>

vg_tensor *vg_tensor_wrap_host(void *data, vg_dtype dt, int ndim, const int64_t *shape) {
  if (!data) return vg_op_error("tensor_wrap_host", "NULL data");
  if ((unsigned)dt >= VG_DTYPE_COUNT || ndim < 0 || ndim > VG_MAX_DIMS)
    return vg_op_error("tensor_wrap_host", "bad dtype %d or ndim %d", (int)dt, ndim);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return vg_op_error("tensor_wrap_host", "negative size %lld at dim %d", (long long)shape[i], i);
    if (shape[i] && n > INT64_MAX / shape[i]) return vg_op_error("tensor_wrap_host", "tensor too large");
    n *= shape[i];
  }
  /* header + storage in one block, as tensor.c's heap tensors; the data is not owned */
  vg_tensor *t = calloc(1, sizeof *t + sizeof(vg_storage));
  if (!t) VG_ABORT("out of memory");
  vg_storage *s = (vg_storage *)(t + 1);
  s->data = data;
  s->nbytes = (size_t)n * vg_dtype_size(dt);
  s->device = VG_CPU;
  t->flags = VG_TF_HEAP;
  t->storage = s;
  t->dtype = dt;
  t->device = VG_CPU;
  t->ndim = ndim;
  if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);   /* shape may be NULL for 0-d */
  vg_contiguous_strides(ndim, shape, t->stride);
  return t;
}

#ifndef VG_WITH_CUDA
#define NO_CUDA "cuda: built without CUDA (rebuild with make CUDA=1)"

void vg_cuda_synchronize(void) {}
const char *vg_cuda_device_name(void) {
  vg_fail(VG_ERR_DEVICE, NO_CUDA);
  return NULL;
}
void *vg_cuda_host_alloc(size_t nbytes) { return malloc(nbytes ? nbytes : 1); }
void vg_cuda_host_free(void *p) { free(p); }

vg_status vg_cuda_mem_stats_get(vg_cuda_mem_stats *s) {
  if (s) memset(s, 0, sizeof *s);
  return vg_fail(VG_ERR_DEVICE, NO_CUDA);
}
void vg_cuda_reset_peak(void) {}
void vg_cuda_empty_cache(void) {}

vg_cuda_timer *vg_cuda_timer_new(void) {
  vg_fail(VG_ERR_DEVICE, NO_CUDA);
  return NULL;
}
void vg_cuda_timer_start(vg_cuda_timer *t) { (void)t; }
void vg_cuda_timer_stop(vg_cuda_timer *t) { (void)t; }
float vg_cuda_timer_elapsed_ms(vg_cuda_timer *t) {
  (void)t;
  vg_fail(VG_ERR_DEVICE, NO_CUDA);
  return -1.0f;
}
void vg_cuda_timer_free(vg_cuda_timer *t) { (void)t; }

vg_status vg_cuda_graph_begin(void) { return vg_fail(VG_ERR_DEVICE, NO_CUDA); }
vg_cuda_graph *vg_cuda_graph_end(void) {
  vg_fail(VG_ERR_DEVICE, NO_CUDA);
  return NULL;
}
vg_status vg_cuda_graph_replay(vg_cuda_graph *g) {
  (void)g;
  return vg_fail(VG_ERR_DEVICE, NO_CUDA);
}
void vg_cuda_graph_free(vg_cuda_graph *g) { (void)g; }
#endif
