/* eltwise.cu — copy/cast, fill, arange, the unary and binary elementwise ops,
 * comparisons and where: one thread per output element, any strides, inputs
 * broadcast to the output's shape (vg_cu_iter). Math as tensor/cpu/eltwise_rows.h. */
#include "tensor/cuda/cuda.h"
#include "tensor/cuda/vmath.cuh"
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

__global__ void k_unary(vg_cu_iter it, int op, float *o, const float *x, float f0, float f1) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    o[off[0]] = unary_op(op, x[off[1]], f0, f1);
  }
}

/* ---- binary ---- */
__global__ void k_binary(vg_cu_iter it, int op, void *out, const float *a, const float *b, float alpha) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    float u = a[off[1]], v = b[off[2]];
    float *o = (float *)out;
    uint8_t *ob = (uint8_t *)out;
    switch (op) {
      case VG_OP_ADD: o[off[0]] = alpha == 1.0f ? u + v : u + alpha * v; break;
      case VG_OP_SUB: o[off[0]] = u - v; break;
      case VG_OP_MUL: o[off[0]] = u * v; break;
      case VG_OP_DIV: o[off[0]] = u / v; break;
      case VG_OP_MAXIMUM: o[off[0]] = (u != u || v != v) ? u + v : (u > v ? u : v); break;
      case VG_OP_MINIMUM: o[off[0]] = (u != u || v != v) ? u + v : (u < v ? u : v); break;
      case VG_OP_EQ: ob[off[0]] = u == v; break;
      case VG_OP_NE: ob[off[0]] = u != v; break;
      case VG_OP_LT: ob[off[0]] = u < v; break;
      case VG_OP_LE: ob[off[0]] = u <= v; break;
      case VG_OP_GT: ob[off[0]] = u > v; break;
      case VG_OP_GE: ob[off[0]] = u >= v; break;
    }
  }
}

__global__ void k_where(vg_cu_iter it, float *o, const uint8_t *c, const float *a, const float *b) {
  int64_t off[VG_CU_MAXOP];
  VG_CU_GRID_LOOP(i, it.n) {
    vg_cu_offsets(it, i, off);
    o[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
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
      const vg_tensor *ops[4] = {out, c->in[0], c->in[1], c->in[2]};
      vg_cu_iter_init(&it, 4, ops);
      if (it.n == 0) return;
      VG_CU_LAUNCH(k_where, vg_cu_blocks(it.n, THREADS), THREADS, 0, s)(it, (float *)vg_data(out), (const uint8_t *)vg_data(c->in[0]),
                                                              (const float *)vg_data(c->in[1]), (const float *)vg_data(c->in[2]));
      VG_CUDA_LAUNCHED("where");
      return;
    }
    case VG_OP_ADD: case VG_OP_SUB: case VG_OP_MUL: case VG_OP_DIV: case VG_OP_MAXIMUM: case VG_OP_MINIMUM:
    case VG_OP_EQ: case VG_OP_NE: case VG_OP_LT: case VG_OP_LE: case VG_OP_GT: case VG_OP_GE: {
      const vg_tensor *ops[3] = {out, c->in[0], c->in[1]};
      vg_cu_iter_init(&it, 3, ops);
      if (it.n == 0) return;
      VG_CU_LAUNCH(k_binary, vg_cu_blocks(it.n, THREADS), THREADS, 0, s)(it, (int)c->op, vg_data(out), (const float *)vg_data(c->in[0]),
                                                               (const float *)vg_data(c->in[1]), (float)c->f[1]);
      VG_CUDA_LAUNCHED(vg_op_name(c->op));
      return;
    }
    default: {
      const vg_tensor *ops[2] = {out, c->in[0]};
      vg_cu_iter_init(&it, 2, ops);
      if (it.n == 0) return;
      VG_CU_LAUNCH(k_unary, vg_cu_blocks(it.n, THREADS), THREADS, 0, s)(it, (int)c->op, (float *)vg_data(out),
                                                              (const float *)vg_data(c->in[0]), (float)c->f[0], (float)c->f[1]);
      VG_CUDA_LAUNCHED(vg_op_name(c->op));
      return;
    }
  }
}
