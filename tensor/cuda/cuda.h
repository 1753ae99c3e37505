/* cuda.h — the CUDA backend's internal API (the tensor/cuda kernel files and tensor/device.c).
 *
 * One device (the current one at init), one stream, one cuBLAS handle. Device memory
 * goes through a caching allocator: blocks are rounded up to a power of two (>= 256
 * bytes) and kept on per-size free lists after vg_cuda_free, so a training loop that
 * allocates the same sizes each step stops calling cudaMalloc after the first step.
 * Everything (cached and live blocks, stream, handle) is released at exit.
 *
 * Every CUDA runtime / cuBLAS call goes through VG_CUDA_CHECK / VG_CUBLAS_CHECK, which
 * abort with file:line, the call and the error text. VIGIL_CUDA_SYNC=1 in the
 * environment synchronizes after every kernel launch (VG_CUDA_LAUNCHED), so a failing
 * kernel is reported at its launch site. */
#ifndef VG_CUDA_H
#define VG_CUDA_H
#ifdef __cplusplus
extern "C" {
#endif
#include "tensor/internal.h"

/* Initializes the device, stream, cuBLAS and registers the backend for VG_CUDA.
 * Idempotent; VG_ERR_DEVICE with a message when no usable device is present. */
vg_status vg_cuda_init(void);

void *vg_cuda_alloc(size_t nbytes);   /* cached device memory; aborts when exhausted */
void vg_cuda_free(void *p);           /* back to the cache (NULL ok) */
void vg_cuda_sync(void);              /* waits for the stream */
/* true while vg_cuda_graph_begin..end captures the stream: kernel host code must not
 * synchronize or copy to / from pageable host memory then (see stream.cu, copy.cu) */
bool vg_cuda_capturing(void);

extern const vg_backend vg_cuda_backend;

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include <cuda_runtime.h>
#include <cublas_v2.h>

cudaStream_t vg_cuda_stream(void);
cublasHandle_t vg_cuda_blas(void);
bool vg_cuda_sync_each(void);
const char *vg_cublas_error_name(cublasStatus_t s);

#define VG_CUDA_CHECK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) \
    VG_ABORT("CUDA error in %s: %s (%s)", #call, cudaGetErrorString(e_), cudaGetErrorName(e_)); } while (0)
#define VG_CUBLAS_CHECK(call) do { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) \
    VG_ABORT("cuBLAS error in %s: %s", #call, vg_cublas_error_name(s_)); } while (0)
/* after every kernel launch: launch errors now, execution errors too with VIGIL_CUDA_SYNC=1 */
#define VG_CUDA_LAUNCHED(what) do { cudaError_t e_ = cudaGetLastError(); if (e_ != cudaSuccess) \
    VG_ABORT("CUDA kernel %s failed to launch: %s", what, cudaGetErrorString(e_)); \
    if (vg_cuda_sync_each()) { e_ = cudaStreamSynchronize(vg_cuda_stream()); if (e_ != cudaSuccess) \
    VG_ABORT("CUDA kernel %s failed: %s", what, cudaGetErrorString(e_)); } } while (0)

/* ---- shared by the kernel files ---- */
/* Every kernel launch is written VG_CU_LAUNCH(kernel, grid, block, shared_bytes, stream)(args),
 * so the host emulator (VG_CUDA_EMU, tests/cuda_emu/) can compile the same sources. */
#ifndef VG_CU_LAUNCH
#define VG_CU_LAUNCH(k, grid, block, shm, st) k<<<(grid), (block), (shm), (st)>>>
#endif
#define VG_CU_MAXOP 4
/* Strided N-operand iteration: operand 0 is the output; inputs broadcast to its shape;
 * dims coalesced where all operands allow. Strides in elements. */
typedef struct {
  int nop, ndim;
  int64_t n;
  int64_t shape[VG_MAX_DIMS];
  int64_t stride[VG_CU_MAXOP][VG_MAX_DIMS];
} vg_cu_iter;

void vg_cu_iter_init(vg_cu_iter *it, int nop, const vg_tensor *const *ops);

/* element offsets of linear index i (row-major over it->shape) for every operand */
__device__ __forceinline__ void vg_cu_offsets(const vg_cu_iter &it, int64_t i, int64_t *off) {
  if (it.ndim == 1) {   /* coalesced to one dim (contiguous operands): no division */
    for (int k = 0; k < VG_CU_MAXOP; k++) off[k] = k < it.nop ? i * it.stride[k][0] : 0;
    return;
  }
  for (int k = 0; k < VG_CU_MAXOP; k++) off[k] = 0;
  for (int d = it.ndim - 1; d >= 0; d--) {
    int64_t s = it.shape[d], q = i / s, r = i - q * s;
    i = q;
    for (int k = 0; k < VG_CU_MAXOP; k++)
      if (k < it.nop) off[k] += r * it.stride[k][d];
  }
}

static inline unsigned vg_cu_blocks(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  return (unsigned)(b > 65535 * 16 ? 65535 * 16 : (b < 1 ? 1 : b));
}
#define VG_CU_GRID_LOOP(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* A contiguous device buffer holding t's elements in t's dtype: t's own data when t
 * is contiguous (*tmp = NULL), else a copy in *tmp (vg_cuda_free it after use). */
const void *vg_cu_contig(const vg_tensor *t, void **tmp);
/* copy/cast kernel: out (device, any strides) <- in (device, any strides, broadcast) */
void vg_cu_copy_dd(const vg_tensor *out, const vg_tensor *in);

/* the op kernels, listed per op in backend.cu's table (copy: rt.h's cuda_copy); one
 * listed for several ops tells them apart with no default: */
void vg_cu_unary(const vg_opcall *c);     /* eltwise.cu: every row of tensor/unary.def */
void vg_cu_binary(const vg_opcall *c);    /* eltwise.cu: every row of tensor/binary.def */
void vg_cu_fill(const vg_opcall *c);
void vg_cu_arange(const vg_opcall *c);
void vg_cu_where(const vg_opcall *c);
void vg_cu_reduce(const vg_opcall *c);    /* sum, amax, amin, argmax */
void vg_cu_matmul(const vg_opcall *c);
void vg_cu_conv2d(const vg_opcall *c);    /* conv.cu */
void vg_cu_conv2d_bwd_data(const vg_opcall *c);
void vg_cu_conv2d_bwd_weight(const vg_opcall *c);
void vg_cu_conv_bn_fold(const vg_opcall *c);
void vg_cu_unfold(const vg_opcall *c);
void vg_cu_fold(const vg_opcall *c);
void vg_cu_pad(const vg_opcall *c);
void vg_cu_concat(const vg_opcall *c);
void vg_cu_pool(const vg_opcall *c);      /* pool.cu: the six pooling ops, bilinear + backward */
void vg_cu_random(const vg_opcall *c);    /* rand_uniform, rand_normal */
void vg_cu_gather(const vg_opcall *c);    /* index.cu */
void vg_cu_index_select(const vg_opcall *c);
void vg_cu_scatter_add(const vg_opcall *c);
void vg_cu_index_add(const vg_opcall *c);
void vg_cu_kthvalue(const vg_opcall *c);  /* select.cu */
void vg_cu_sort(const vg_opcall *c);
void vg_cu_optim_update(const vg_optim_update *u);   /* SGD / Adam(W) steps (optim.cu) */
void vg_cu_softmax(const vg_opcall *c);   /* norm.cu: softmax, log_softmax + backward */
void vg_cu_layer_norm(const vg_opcall *c);   /* norm.cu: layer_norm + backward */
/* Sorts each row of a (nrows x len u64, ascending) using tmp (as large) as scratch;
 * returns a or tmp, whichever holds the result. Stream-ordered, no sync. */
unsigned long long *vg_cu_sort_u64_rows(unsigned long long *a, unsigned long long *tmp, int64_t nrows, int64_t len);
#endif
#endif
