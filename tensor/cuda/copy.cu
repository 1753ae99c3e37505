/* copy.cu — copies: the COPY family's host <-> device copies (pageable, pinned, during a
 * capture), contiguous device staging (vg_cu_contig) and the strided iteration setup of
 * the kernel files (vg_cu_iter_init). */
#include "tensor/cuda/rt.h"
#include "tensor/kmath/iter.h"
#include <string.h>

/* ---- strided iteration setup (as tensor/cpu/iter.c) ---- */
void vg_cu_iter_init(vg_cu_iter *it, int nop, const vg_tensor *const *ops) {
  VG_ASSERT(nop >= 1 && nop <= VG_CU_MAXOP);
  const vg_tensor *o = ops[0];
  memset(it, 0, sizeof *it);
  it->nop = nop;
  it->n = vg_numel(o);
  int nd = vg_iter_coalesce(nop, ops, it->shape, it->stride);   /* tensor/kmath/iter.h, as tensor/cpu/iter.c */
  if (nd == 0) {
    it->shape[0] = 1;
    nd = 1;
  }
  it->ndim = nd;
}

const void *vg_cu_contig(const vg_tensor *t, void **tmp) {
  *tmp = NULL;
  if (vg_is_contiguous(t)) return vg_data(t);
  vg_tensor h = *t;
  h.offset = 0;
  vg_contiguous_strides(t->ndim, t->shape, h.stride);
  vg_storage s = *t->storage;
  *tmp = s.data = vg_cuda_alloc((size_t)vg_numel(t) * vg_dtype_size(t->dtype) + 1);
  h.storage = &s;
  vg_cu_copy_dd(&h, t);
  return *tmp;
}

/* ---- host <-> device copies (COPY with one side on the host) ---- */
static vg_tensor host_header(const vg_tensor *like, vg_dtype dt, vg_storage *s, void *data, vg_device dev) {
  vg_tensor h = *like;
  h.dtype = dt;
  h.device = dev;
  h.offset = 0;
  h.flags = 0;
  h.requires_grad = false;
  h.grad = NULL;
  h.node = NULL;
  vg_contiguous_strides(like->ndim, like->shape, h.stride);
  memset(s, 0, sizeof *s);
  s->data = data;
  s->nbytes = (size_t)vg_numel(like) * vg_dtype_size(dt);
  s->device = dev;
  h.storage = s;
  return h;
}

static void cpu_copy(const vg_tensor *out, const vg_tensor *in) {
  const vg_tensor *ins[1] = {in};
  vg_opcall c;
  memset(&c, 0, sizeof c);
  c.op = VG_OP_COPY;
  c.nin = 1;
  c.in = ins;
  c.out[0] = (vg_tensor *)out;
  vg_backend_exec(&vg_cpu_backend, &c);
}

/* During a capture a host copy is one graph node (a cudaMemcpyAsync, no wait) when it
 * is a plain contiguous copy, same dtype and shape, from / into pinned memory; anything
 * else is refused (graph_end reports it) and a host destination is zeroed, so code that
 * reads it during the capture sees defined values. */
static const char *const refuse_fmt =
    "vg_cuda_graph: COPY %s cannot be captured: only a contiguous same-dtype copy from / into pinned "
    "memory (vg_cuda_host_alloc + vg_tensor_wrap_host) becomes a graph node; other host copies wait "
    "for the stream (vg_to_device / vg_copy_ / vg_from_host_ with a pageable or strided host tensor, "
    "vg_to_host / vg_item, and the front-ends that read device values on the host: gather, "
    "scatter_add, index_select and index_add check their indices that way, and sort / topk make their "
    "values with gather)";

static void copy_h2d(const vg_tensor *out, const vg_tensor *in) {
  if (forked) VG_ABORT("a host <-> device copy between vg_cuda_fork and vg_cuda_join (copy before or after)");
  int64_t n = vg_numel(out);
  if (n == 0) return;
  size_t es = vg_dtype_size(in->dtype);
  if (cap) {
    if (vg_is_contiguous(in) && vg_same_shape(in, out) && vg_is_contiguous(out) && out->dtype == in->dtype &&
        is_pinned(vg_data(in), (size_t)n * es))
      VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), vg_data(in), (size_t)n * es, cudaMemcpyHostToDevice, stream));
    else capture_refuse(refuse_fmt, "host->device");
    return;
  }
  /* 1. the source as a contiguous host buffer (in's dtype) */
  void *htmp = NULL;
  const void *src;
  vg_storage hs;
  if (vg_is_contiguous(in) && vg_same_shape(in, out)) src = vg_data(in);
  else {
    htmp = malloc((size_t)n * es);
    if (!htmp) VG_ABORT("out of host memory staging a copy to the GPU");
    vg_tensor h = host_header(out, in->dtype, &hs, htmp, VG_CPU);
    cpu_copy(&h, in);
    src = htmp;
  }
  /* 2. upload: straight into out when the layout and dtype match, else via staging */
  if (vg_is_contiguous(out) && out->dtype == in->dtype) {
    VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), src, (size_t)n * es, cudaMemcpyHostToDevice, stream));
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  } else {
    void *d = vg_cuda_alloc((size_t)n * es);
    VG_CUDA_CHECK(cudaMemcpyAsync(d, src, (size_t)n * es, cudaMemcpyHostToDevice, stream));
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
    vg_storage ds;
    vg_tensor dt = host_header(out, in->dtype, &ds, d, VG_CUDA);
    vg_cu_copy_dd(out, &dt);
    vg_cuda_free(d);
  }
  free(htmp);
}

static void copy_d2h(const vg_tensor *out, const vg_tensor *in) {
  if (forked) VG_ABORT("a host <-> device copy between vg_cuda_fork and vg_cuda_join (copy before or after)");
  int64_t n = vg_numel(out);
  if (n == 0) return;
  size_t es = vg_dtype_size(out->dtype);
  if (cap) {
    if (vg_is_contiguous(in) && vg_same_shape(in, out) && vg_is_contiguous(out) && out->dtype == in->dtype &&
        is_pinned(vg_data(out), (size_t)n * es)) {
      VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), vg_data(in), (size_t)n * es, cudaMemcpyDeviceToHost, stream));
    } else {
      capture_refuse(refuse_fmt, "device->host");
      if (vg_is_contiguous(out)) memset(vg_data(out), 0, (size_t)n * es);
    }
    return;
  }
  /* 1. a contiguous device buffer in out's dtype */
  void *dtmp = NULL;
  const void *src;
  if (vg_is_contiguous(in) && vg_same_shape(in, out) && in->dtype == out->dtype) src = vg_data(in);
  else {
    dtmp = vg_cuda_alloc((size_t)n * es);
    vg_storage ds;
    vg_tensor dt = host_header(out, out->dtype, &ds, dtmp, VG_CUDA);
    vg_cu_copy_dd(&dt, in);
    src = dtmp;
  }
  /* 2. download, straight into out when it is contiguous */
  if (vg_is_contiguous(out)) {
    VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), src, (size_t)n * es, cudaMemcpyDeviceToHost, stream));
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  } else {
    void *h = malloc((size_t)n * es);
    if (!h) VG_ABORT("out of host memory staging a copy from the GPU");
    VG_CUDA_CHECK(cudaMemcpyAsync(h, src, (size_t)n * es, cudaMemcpyDeviceToHost, stream));
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
    vg_storage hs;
    vg_tensor ht = host_header(out, out->dtype, &hs, h, VG_CPU);
    cpu_copy(out, &ht);
    free(h);
  }
  vg_cuda_free(dtmp);
}

/* the COPY op (in the kernel table of backend.cu): any pair of devices */
void vg_rt::cuda_copy(const vg_opcall *c) {
  const vg_tensor *in = c->in[0], *out = c->out[0];
  if (in->device == VG_CPU && out->device == VG_CPU) cpu_copy(out, in);
  else if (in->device == VG_CPU) copy_h2d(out, in);
  else if (out->device == VG_CPU) copy_d2h(out, in);
  else vg_cu_copy_dd(out, in);
}
