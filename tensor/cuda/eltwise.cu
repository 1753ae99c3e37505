/* eltwise.cu — copy/cast, fill, arange, the unary and binary elementwise ops,
 * comparisons and where: one thread per output element, any strides, inputs
 * broadcast to the output's shape (vg_cu_iter). Math as tensor/cpu/eltwise_rows.h.
 * Unary, binary and where run on f32 or f16 (f16.cuh: f32 math, one rounding on the
 * store); a binary op of mixed float inputs converts the other one to its compute
 * dtype first. */
#include "tensor/cuda/cuda.h"
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

/* ---- unary ---- */
__device__ __forceinline__ float unary_op(int op, float v, float f0, float f1) {
  switch (op) {
    case VG_OP_NEG: return -v;
    case VG_OP_EXP: return vg_d_expf(v);
    case VG_OP_LOG: return vg_d_logf(v);
    case VG_OP_SQRT: return sqrtf(v);
    case VG_OP_RSQRT: return 1.0f / sqrtf(v);
    case VG_OP_ABS: return fabsf(v);
    case VG_OP_SIGN: return v > 0 ? 1.0f : (v < 0 ? -1.0f : v * 0.0f);
    case VG_OP_RELU: return v > 0 ? v : (v != v ? v : 0.0f);
    case VG_OP_LEAKY_RELU: return v > 0 ? v : v * f0;
    case VG_OP_SIGMOID: return vg_d_sigmoidf(v);
    case VG_OP_LOGSIGMOID: return vg_d_logsigmoidf(v);
    case VG_OP_TANH: return vg_d_tanhf(v);
    case VG_OP_SOFTPLUS: return vg_d_softplusf(v, f0, f1);
    case VG_OP_ATAN: return atanf(v);
    case VG_OP_GELU:
      return v >= 0 ? 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)) : 0.5f * v * erfcf(-v * 0.70710678118654752f);
    case VG_OP_SIN: return sinf(v);
    case VG_OP_COS: return cosf(v);
    case VG_OP_ERF: return erff(v);
    case VG_OP_POW_SCALAR:
      if (f0 == 2.0f) return v * v;
      if (f0 == 1.0f) return v;
      if (f0 == 0.5f) return sqrtf(v);
      if (f0 == -1.0f) return 1.0f / v;
      return powf(v, f0);
    case VG_OP_CLAMP: return v != v ? v : (v < f0 ? f0 : (v > f1 ? f1 : v));
    case VG_OP_AFFINE: return f0 * v + f1;
  }
  return __int_as_float(0x7fc00000);
}

template <typename T>
__global__ void k_unary(vg_cu_iter it, int op, T *o, const T *x, float f0, float f1) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    vg_st(o + off[0], unary_op(op, vg_ld(x + off[1]), f0, f1));
  }
}

/* ---- binary ---- */
template <typename T>
__global__ void k_binary(vg_cu_iter it, int op, void *out, const T *a, const T *b, float alpha) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    float u = vg_ld(a + off[1]), v = vg_ld(b + off[2]);
    T *o = (T *)out + off[0];
    uint8_t *ob = (uint8_t *)out;
    switch (op) {
      case VG_OP_ADD: vg_st(o, alpha == 1.0f ? u + v : u + alpha * v); break;
      case VG_OP_SUB: vg_st(o, u - v); break;
      case VG_OP_MUL: vg_st(o, u * v); break;
      case VG_OP_DIV: vg_st(o, u / v); break;
      case VG_OP_MAXIMUM: vg_st(o, (u != u || v != v) ? u + v : (u > v ? u : v)); break;
      case VG_OP_MINIMUM: vg_st(o, (u != u || v != v) ? u + v : (u < v ? u : v)); break;
      case VG_OP_EQ: ob[off[0]] = u == v; break;
      case VG_OP_NE: ob[off[0]] = u != v; break;
      case VG_OP_LT: ob[off[0]] = u < v; break;
      case VG_OP_LE: ob[off[0]] = u <= v; break;
      case VG_OP_GT: ob[off[0]] = u > v; break;
      case VG_OP_GE: ob[off[0]] = u >= v; break;
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

/* The dtype a binary op computes in: torch's promotion of two float inputs (f16 with
 * f16 -> f16, with f32 -> f32, except that a 0-d input does not promote a dimensioned
 * one: f16 (n-d) with f32 (0-d) -> f16), as the front-ends in tensor/ops_math.c. */
static vg_dtype compute_dtype(const vg_tensor *a, const vg_tensor *b) {
  if (a->dtype == b->dtype) return a->dtype;
  if ((a->ndim == 0) != (b->ndim == 0)) return a->ndim ? a->dtype : b->dtype;
  return VG_F32;
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
static void launch_binary(const vg_cu_iter &it, int op, void *out, const void *a, const void *b, float alpha) {
  VG_CU_LAUNCH(k_binary<T>, vg_cu_blocks(it.n, THREADS), THREADS, 0, vg_cuda_stream())(it, op, out, (const T *)a,
                                                                                   (const T *)b, alpha);
}

template <typename T>
static void launch_unary(const vg_cu_iter &it, int op, void *o, const void *x, float f0, float f1) {
  VG_CU_LAUNCH(k_unary<T>, vg_cu_blocks(it.n, THREADS), THREADS, 0, vg_cuda_stream())(it, op, (T *)o, (const T *)x, f0, f1);
}

void vg_cu_eltwise(const vg_opcall *c) {
  vg_tensor *out = c->out[0];
  cudaStream_t s = vg_cuda_stream();
  vg_cu_iter it;
  switch (c->op) {
    case VG_OP_COPY:
      vg_cu_copy_dd(out, c->in[0]);
      return;
    case VG_OP_FILL: {
      const vg_tensor *ops[1] = {out};
      vg_cu_iter_init(&it, 1, ops);
      if (it.n == 0) return;
      VG_CU_LAUNCH(k_fill, vg_cu_blocks(it.n, THREADS), THREADS, 0, s)(it, (char *)vg_data(out), (int)out->dtype,
                                                             (int)vg_dtype_size(out->dtype), c->f[0]);
      VG_CUDA_LAUNCHED("fill");
      return;
    }
    case VG_OP_ARANGE: {
      int64_t n = vg_numel(out);
      if (n == 0) return;
      VG_CU_LAUNCH(k_arange, vg_cu_blocks(n, THREADS), THREADS, 0, s)((char *)vg_data(out), (int)out->dtype,
                                                            (int)vg_dtype_size(out->dtype), n, c->f[0], c->f[1]);
      VG_CUDA_LAUNCHED("arange");
      return;
    }
    case VG_OP_WHERE: {
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
      return;
    }
    case VG_OP_ADD: case VG_OP_SUB: case VG_OP_MUL: case VG_OP_DIV: case VG_OP_MAXIMUM: case VG_OP_MINIMUM:
    case VG_OP_EQ: case VG_OP_NE: case VG_OP_LT: case VG_OP_LE: case VG_OP_GT: case VG_OP_GE: {
      /* both inputs in the compute dtype (a mixed pair: the other one converted first) */
      vg_dtype dt = out->dtype == VG_BOOL ? compute_dtype(c->in[0], c->in[1]) : out->dtype;
      vg_tensor ha, hb;
      vg_storage sa, sb;
      void *ta, *tb;
      const vg_tensor *a = in_dtype(c->in[0], dt, &ha, &sa, &ta), *b = in_dtype(c->in[1], dt, &hb, &sb, &tb);
      const vg_tensor *ops[3] = {out, a, b};
      vg_cu_iter_init(&it, 3, ops);
      if (it.n > 0) {
        if (dt == VG_F16) launch_binary<vg_half>(it, (int)c->op, vg_data(out), vg_data(a), vg_data(b), (float)c->f[1]);
        else launch_binary<float>(it, (int)c->op, vg_data(out), vg_data(a), vg_data(b), (float)c->f[1]);
        VG_CUDA_LAUNCHED(vg_op_name(c->op));
      }
      vg_cuda_free(ta);
      vg_cuda_free(tb);
      return;
    }
    default: {
      const vg_tensor *ops[2] = {out, c->in[0]};
      vg_cu_iter_init(&it, 2, ops);
      if (it.n == 0) return;
      VG_ASSERT(out->dtype == c->in[0]->dtype);
      if (out->dtype == VG_F16)
        launch_unary<vg_half>(it, (int)c->op, vg_data(out), vg_data(c->in[0]), (float)c->f[0], (float)c->f[1]);
      else
        launch_unary<float>(it, (int)c->op, vg_data(out), vg_data(c->in[0]), (float)c->f[0], (float)c->f[1]);
      VG_CUDA_LAUNCHED(vg_op_name(c->op));
      return;
    }
  }
}
