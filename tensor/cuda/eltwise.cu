/* eltwise.cu — copy/cast, fill, arange, the unary and binary elementwise ops,
 * comparisons and where: one thread per output element, any strides, inputs
 * broadcast to the output's shape (vg_cu_iter). The unary and binary math is the FWD
 * column of tensor/unary.def / tensor/binary.def, the text the CPU row kernels compile
 * too (tensor/cpu/eltwise_rows.h), over tensor/vmath.h's host/device functions.
 * Unary, binary and where run on f32 or f16 (f16.cuh: f32 math, one rounding on the
 * store); a binary op of mixed float inputs converts the other one to its compute
 * dtype first. */
#include "tensor/cuda/cuda.h"
#include "tensor/eltwise.h"
#include "tensor/cuda/vmath.cuh"
#include "tensor/cuda/f16.cuh"
#include <math.h>

#define THREADS 256

/* ---- copy / cast ---- */
template <typename T>
__global__ void k_copy_same(vg_cu_iter it, T *o, const T *x) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    o[off[0]] = x[off[1]];
  }
}

__global__ void k_copy_cast(vg_cu_iter it, char *o, int odt, int oes, const char *x, int xdt, int xes) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    vg_d_store(o + off[0] * oes, odt, vg_d_load(x + off[1] * xes, xdt));
  }
}

void vg_cu_copy_dd(const vg_tensor *out, const vg_tensor *in) {
  const vg_tensor *ops[2] = {out, in};
  vg_cu_iter it;
  vg_cu_iter_init(&it, 2, ops);
  if (it.n == 0) return;
  unsigned nb = vg_cu_blocks(it.n, THREADS);
  cudaStream_t s = vg_cuda_stream();
  if (out->dtype == in->dtype) {
    if (it.ndim == 1 && it.stride[0][0] == 1 && it.stride[1][0] == 1) {
      VG_CUDA_CHECK(cudaMemcpyAsync(vg_data(out), vg_data(in), (size_t)it.n * vg_dtype_size(out->dtype),
                                    cudaMemcpyDeviceToDevice, s));
      return;
    }
    switch (vg_dtype_size(out->dtype)) {
      case 1: VG_CU_LAUNCH(k_copy_same<uint8_t>, nb, THREADS, 0, s)(it, (uint8_t *)vg_data(out), (const uint8_t *)vg_data(in)); break;
      case 2: VG_CU_LAUNCH(k_copy_same<uint16_t>, nb, THREADS, 0, s)(it, (uint16_t *)vg_data(out), (const uint16_t *)vg_data(in)); break;
      case 4: VG_CU_LAUNCH(k_copy_same<uint32_t>, nb, THREADS, 0, s)(it, (uint32_t *)vg_data(out), (const uint32_t *)vg_data(in)); break;
      default: VG_CU_LAUNCH(k_copy_same<uint64_t>, nb, THREADS, 0, s)(it, (uint64_t *)vg_data(out), (const uint64_t *)vg_data(in)); break;
    }
  } else {
    VG_CU_LAUNCH(k_copy_cast, nb, THREADS, 0, s)(it, (char *)vg_data(out), (int)out->dtype, (int)vg_dtype_size(out->dtype),
                                       (const char *)vg_data(in), (int)in->dtype, (int)vg_dtype_size(in->dtype));
  }
  VG_CUDA_LAUNCHED("copy");
}

__global__ void k_fill(vg_cu_iter it, char *o, int odt, int oes, double v) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    vg_d_store(o + off[0] * oes, odt, v);
  }
}

__global__ void k_arange(char *o, int odt, int oes, int64_t n, double start, double step) {
  VG_CU_GRID_LOOP(i, n) vg_d_store(o + i * oes, odt, start + (double)i * step);
}

/* ---- unary: one case per row of tensor/unary.def (a typed switch, no default:) ---- */
__device__ __forceinline__ float unary_op(vg_unary_kind k, float v, float a, float b) {
  switch (k) {
#define VG_UOP(NAME, name, DIFF, FE, HOIST, FWD, GRAD) case VG_UK_##NAME: return (FWD);
#include "tensor/unary.def"
#undef VG_UOP
  }
  __builtin_unreachable();
}

template <typename T>
__global__ void k_unary(vg_cu_iter it, vg_unary_kind k, T *o, const T *x, float a, float b) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    vg_st(o + off[0], unary_op(k, vg_ld(x + off[1]), a, b));
  }
}

/* ---- binary: one case per row of tensor/binary.def; bool rows store u8 ---- */
#define VG_CU_BSTORE_float(E) vg_st(o, (E))
#define VG_CU_BSTORE_bool(E) ob[off[0]] = (E)
template <typename T>
__global__ void k_binary(vg_cu_iter it, vg_binary_kind k, void *out, const T *a, const T *b, float alpha) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    float u = vg_ld(a + off[1]), v = vg_ld(b + off[2]);
    T *o = (T *)out + off[0];
    uint8_t *ob = (uint8_t *)out;
    (void)o, (void)ob;
    switch (k) {
#define VG_BOP(NAME, name, DIFF, OUT, HOIST, FWD, GRADX, GRADY) case VG_BK_##NAME: VG_CU_BSTORE_##OUT(FWD); break;
#include "tensor/binary.def"
#undef VG_BOP
    }
  }
}

template <typename T>
__global__ void k_where(vg_cu_iter it, T *o, const uint8_t *c, const T *a, const T *b) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    o[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
}

/* t in dtype dt: t itself, or a copy of t's elements in dt (contiguous, t's shape) in
 * *hdr / *st on the device buffer *tmp (vg_cuda_free it after the launch) */
static const vg_tensor *in_dtype(const vg_tensor *t, vg_dtype dt, vg_tensor *hdr, vg_storage *st, void **tmp) {
  *tmp = NULL;
  if (t->dtype == dt) return t;
  int64_t n = vg_numel(t);
  *hdr = *t;
  *st = *t->storage;
  st->nbytes = (size_t)(n ? n : 1) * vg_dtype_size(dt);
  st->data = *tmp = vg_cuda_alloc(st->nbytes);
  hdr->storage = st;
  hdr->dtype = dt;
  hdr->offset = 0;
  vg_contiguous_strides(t->ndim, t->shape, hdr->stride);
  vg_cu_copy_dd(hdr, t);
  return hdr;
}

template <typename T>
static void launch_binary(const vg_cu_iter &it, vg_binary_kind k, void *out, const void *a, const void *b, float alpha) {
  VG_CU_LAUNCH(k_binary<T>, vg_cu_blocks(it.n, THREADS), THREADS, 0, vg_cuda_stream())(it, k, out, (const T *)a,
                                                                                   (const T *)b, alpha);
}

template <typename T>
static void launch_unary(const vg_cu_iter &it, vg_unary_kind k, void *o, const void *x, float a, float b) {
  VG_CU_LAUNCH(k_unary<T>, vg_cu_blocks(it.n, THREADS), THREADS, 0, vg_cuda_stream())(it, k, (T *)o, (const T *)x, a, b);
}

/* the elementwise kernels of the table in backend.c (copy: copy.cu's cuda_copy) */
void vg_cu_unary(const vg_opcall *c) {   /* every row of tensor/unary.def */
  vg_tensor *out = c->out[0];
  vg_cu_iter it;
  const vg_tensor *ops[2] = {out, c->in[0]};
  vg_cu_iter_init(&it, 2, ops);
  if (it.n == 0) return;
  VG_ASSERT(out->dtype == c->in[0]->dtype);
  vg_unary_kind k = (vg_unary_kind)c->op;
  float a = (float)c->p.unary.a, b = (float)c->p.unary.b;
  if (out->dtype == VG_F16) launch_unary<vg_half>(it, k, vg_data(out), vg_data(c->in[0]), a, b);
  else launch_unary<float>(it, k, vg_data(out), vg_data(c->in[0]), a, b);
  VG_CUDA_LAUNCHED(vg_op_name(c->op));
}

void vg_cu_binary(const vg_opcall *c) {   /* every row of tensor/binary.def */
  vg_tensor *out = c->out[0];
  vg_cu_iter it;
  /* both inputs in the compute dtype (a mixed pair: the other one converted first) */
  vg_dtype dt = out->dtype == VG_BOOL ? vg_promote_float(c->in[0], c->in[1]) : out->dtype;
  vg_tensor ha, hb;
  vg_storage sa, sb;
  void *ta, *tb;
  const vg_tensor *a = in_dtype(c->in[0], dt, &ha, &sa, &ta), *b = in_dtype(c->in[1], dt, &hb, &sb, &tb);
  const vg_tensor *ops[3] = {out, a, b};
  vg_cu_iter_init(&it, 3, ops);
  if (it.n > 0) {
    vg_binary_kind k = (vg_binary_kind)c->op;
    float alpha = (float)c->p.binary.alpha;
    if (dt == VG_F16) launch_binary<vg_half>(it, k, vg_data(out), vg_data(a), vg_data(b), alpha);
    else launch_binary<float>(it, k, vg_data(out), vg_data(a), vg_data(b), alpha);
    VG_CUDA_LAUNCHED(vg_op_name(c->op));
  }
  vg_cuda_free(ta);
  vg_cuda_free(tb);
}

void vg_cu_fill(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  vg_cu_iter it;
  const vg_tensor *ops[1] = {out};
  vg_cu_iter_init(&it, 1, ops);
  if (it.n == 0) return;
  VG_CU_LAUNCH(k_fill, vg_cu_blocks(it.n, THREADS), THREADS, 0, vg_cuda_stream())(it, (char *)vg_data(out), (int)out->dtype,
                                                                        (int)vg_dtype_size(out->dtype), c->p.fill.value);
  VG_CUDA_LAUNCHED("fill");
}

void vg_cu_arange(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  int64_t n = vg_numel(out);
  if (n == 0) return;
  VG_CU_LAUNCH(k_arange, vg_cu_blocks(n, THREADS), THREADS, 0, vg_cuda_stream())((char *)vg_data(out), (int)out->dtype,
                                                                       (int)vg_dtype_size(out->dtype), n, c->p.arange.start,
                                                                       c->p.arange.step);
  VG_CUDA_LAUNCHED("arange");
}

void vg_cu_where(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  cudaStream_t s = vg_cuda_stream();
  vg_cu_iter it;
  /* a and b in out's dtype (the front-end promoted them); elements are copied as is */
  vg_tensor ha, hb;
  vg_storage sa, sb;
  void *ta, *tb;
  const vg_tensor *a = in_dtype(c->in[1], out->dtype, &ha, &sa, &ta), *b = in_dtype(c->in[2], out->dtype, &hb, &sb, &tb);
  const vg_tensor *ops[4] = {out, c->in[0], a, b};
  vg_cu_iter_init(&it, 4, ops);
  if (it.n > 0) {
    unsigned nb = vg_cu_blocks(it.n, THREADS);
    const uint8_t *pc = (const uint8_t *)vg_data(c->in[0]);
    if (vg_dtype_size(out->dtype) == 2)
      VG_CU_LAUNCH(k_where<uint16_t>, nb, THREADS, 0, s)(it, (uint16_t *)vg_data(out), pc, (const uint16_t *)vg_data(a),
                                                         (const uint16_t *)vg_data(b));
    else
      VG_CU_LAUNCH(k_where<float>, nb, THREADS, 0, s)(it, (float *)vg_data(out), pc, (const float *)vg_data(a),
                                                      (const float *)vg_data(b));
    VG_CUDA_LAUNCHED("where");
  }
  vg_cuda_free(ta);
  vg_cuda_free(tb);
}

