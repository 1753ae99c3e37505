/* backend.cu — the CUDA backend: device init (stream, cuBLAS handles, side streams) and
 * the release of everything at exit, the kernel table (one kernel per op, as
 * tensor/cpu/backend.c's: every non-view op listed, no default) and the device queries of
 * tensor.h's device section (TF32, device name). The other runtime files: see rt.h. */
#include "tensor/cuda/rt.h"
#include "base/parse.h"
#include <string.h>

/* ---- state ---- */
namespace vg_rt {
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
int init_state;                 /* 0 untried, 1 ok, -1 failed */
static char init_msg[1024];
cudaStream_t stream;
cublasHandle_t blas;
int sync_each;
bool tf32_on;   /* f32 GEMMs on TF32 tensor cores (VIGIL_TF32=1 / vg_cuda_set_tf32) */
cudaStream_t side[VG_CU_SIDE];
cublasHandle_t side_blas[VG_CU_SIDE];
void *blas_ws[VG_CU_SIDE + 1];
cudaEvent_t fork_ev, join_ev[VG_CU_SIDE];
bool side_on;      /* side streams made (VIGIL_CUDA_BRANCHES != 0) */
}  // namespace vg_rt

const char *vg_cublas_error_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "alloc failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "arch mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
  }
  return "unknown cuBLAS status";
}

/* a handle on stream st with its own workspace (set before any capture: cuBLAS must
 * not allocate one while a graph is captured) */
static cublasStatus_t blas_make(cublasHandle_t *h, cudaStream_t st, void **ws) {
  cublasStatus_t e = cublasCreate(h);
  if (e != CUBLAS_STATUS_SUCCESS) return e;
  if (cudaMalloc(ws, VG_CU_BLAS_WS) != cudaSuccess) {
    (void)cudaGetLastError();
    return CUBLAS_STATUS_ALLOC_FAILED;
  }
  if ((e = cublasSetWorkspace(*h, *ws, VG_CU_BLAS_WS)) != CUBLAS_STATUS_SUCCESS) return e;
  if ((e = cublasSetMathMode(*h, tf32_on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS)
    return e;
  return cublasSetStream(*h, st);
}

/* side streams, their handles and the fork/join events; false (all on the main stream)
 * when VIGIL_CUDA_BRANCHES=0 or one of them cannot be made */
static bool side_make(void) {
  if (!vg_env_flag("VIGIL_CUDA_BRANCHES", true)) return false;
  if (cudaEventCreateWithFlags(&fork_ev, cudaEventDisableTiming) != cudaSuccess) return false;
  for (int k = 0; k < VG_CU_SIDE; k++)
    if (cudaStreamCreateWithFlags(&side[k], cudaStreamNonBlocking) != cudaSuccess ||
        cudaEventCreateWithFlags(&join_ev[k], cudaEventDisableTiming) != cudaSuccess ||
        blas_make(&side_blas[k], side[k], &blas_ws[k + 1]) != CUBLAS_STATUS_SUCCESS) {
      (void)cudaGetLastError();
      return false;
    }
  return true;
}

/* at exit: everything back to the driver (live blocks too: heap tensors never freed) */
static void cuda_atexit(void) {
  if (init_state != 1) return;
  if (cap) { /* exiting in the middle of a capture */
    cudaGraph_t g = NULL;
    if (cudaStreamEndCapture(stream, &g) == cudaSuccess && g) cudaGraphDestroy(g);
    (void)cudaGetLastError();
    cap = NULL;
  }
  cudaStreamSynchronize(stream);
  alloc_release_all();
  cublasDestroy(blas);
  if (side_on)
    for (int k = 0; k < VG_CU_SIDE; k++) {
      cublasDestroy(side_blas[k]);
      cudaStreamDestroy(side[k]);
      cudaEventDestroy(join_ev[k]);
    }
  if (side_on) cudaEventDestroy(fork_ev);
  for (int k = 0; k <= VG_CU_SIDE; k++)
    if (blas_ws[k]) cudaFree(blas_ws[k]);
  cudaStreamDestroy(stream);
  init_state = 0;
}
#ifndef VG_CUDA_ARCHS
#define VG_CUDA_ARCHS ""   /* the emulator build: no fat binary */
#endif
const char *vg_cuda_built_archs(void) { return VG_CUDA_ARCHS; }

/* A kernel that is never launched: asking for its attributes tells whether this binary
 * holds code the GPU can run (machine code for its architecture, or PTX it can JIT). */
__global__ void vg_cu_probe_kernel(int *p) {
  if (p) *p = 1;
}

/* false + init_msg when the binary has no kernel image for the current GPU */
static bool arch_check(void) {
  struct cudaFuncAttributes fa;
  cudaError_t e = cudaFuncGetAttributes(&fa, vg_cu_probe_kernel);
  if (e == cudaSuccess) return true;
  (void)cudaGetLastError();
  int dev = 0;
  struct cudaDeviceProp p;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    snprintf(init_msg, sizeof init_msg, "cannot run kernels (%s) and cannot read the device's properties",
             cudaGetErrorString(e));
    return false;
  }
  if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction || e == cudaErrorInvalidKernelImage)
    vg_cuda_arch_message(init_msg, sizeof init_msg, p.name, p.major, p.minor, VG_CUDA_ARCHS);
  else
    snprintf(init_msg, sizeof init_msg, "cannot run kernels on the %s (compute capability %d.%d): %s", p.name, p.major,
             p.minor, cudaGetErrorString(e));
  return false;
}

vg_status vg_cuda_init(void) {
  pthread_mutex_lock(&lock);
  if (init_state == 0) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      snprintf(init_msg, sizeof init_msg, "no CUDA device: %s",
               e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found 0 devices");
      (void)cudaGetLastError();
      init_state = -1;
    } else if (!arch_check()) {
      init_state = -1;
    } else if ((e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)) != cudaSuccess) {
      snprintf(init_msg, sizeof init_msg, "CUDA stream creation failed: %s", cudaGetErrorString(e));
      init_state = -1;
    } else {
      cublasStatus_t s = cublasCreate(&blas);
      if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(init_msg, sizeof init_msg, "cublasCreate failed: %s", vg_cublas_error_name(s));
        init_state = -1;
      } else {
        /* fp32 GEMMs in fp32 (no TF32), so results match the CPU backend; VIGIL_TF32=1
         * (or vg_cuda_set_tf32) opts into TF32 tensor cores, torch's cuDNN default */
        tf32_on = vg_env_flag("VIGIL_TF32", false);
        VG_CUBLAS_CHECK(cublasSetMathMode(blas, tf32_on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        VG_CUBLAS_CHECK(cublasSetStream(blas, stream));
        /* a workspace of our own, so cuBLAS allocates none during a graph capture; when
         * that fails, cuBLAS keeps its default one */
        if (cudaMalloc(&blas_ws[0], VG_CU_BLAS_WS) != cudaSuccess) {
          (void)cudaGetLastError();
          blas_ws[0] = NULL;
        } else if (cublasSetWorkspace(blas, blas_ws[0], VG_CU_BLAS_WS) != CUBLAS_STATUS_SUCCESS) {
          cudaFree(blas_ws[0]);
          blas_ws[0] = NULL;
        }
        side_on = side_make();
        sync_each = vg_env_flag("VIGIL_CUDA_SYNC", false);
        vg_backend_register(VG_CUDA, &vg_cuda_backend);
        atexit(cuda_atexit);
        init_state = 1;
      }
    }
  }
  int st = init_state;
  pthread_mutex_unlock(&lock);
  if (st != 1) return vg_fail(VG_ERR_DEVICE, "cuda: %s", init_msg);
  return VG_OK;
}

/* ---- the kernel table: one kernel per op, by name (checked complete when registered:
 * vg_backend_register names any op without one). C++ has no array designators, so the
 * table is filled by assignments, once, before main. ---- */
static vg_backend cuda_backend_table(void) {
  vg_backend b;
  memset(&b, 0, sizeof b);
  b.name = "cuda";
  vg_kernel_fn *k = b.kernel;
  k[VG_OP_COPY] = cuda_copy;
  k[VG_OP_FILL] = vg_cu_fill;
  k[VG_OP_ARANGE] = vg_cu_arange;
#define VG_UOP(NAME, ...) k[VG_OP_##NAME] = vg_cu_unary;
#include "tensor/unary.def"
#undef VG_UOP
#define VG_BOP(NAME, ...) k[VG_OP_##NAME] = vg_cu_binary;
#include "tensor/binary.def"
#undef VG_BOP
  k[VG_OP_WHERE] = vg_cu_where;
  k[VG_OP_SUM] = k[VG_OP_AMAX] = k[VG_OP_AMIN] = k[VG_OP_ARGMAX] = vg_cu_reduce;
  k[VG_OP_MATMUL] = vg_cu_matmul;
  k[VG_OP_CONV2D] = vg_cu_conv2d;
  k[VG_OP_CONV2D_BWD_DATA] = vg_cu_conv2d_bwd_data;
  k[VG_OP_CONV2D_BWD_WEIGHT] = vg_cu_conv2d_bwd_weight;
  k[VG_OP_CONV_BN_FOLD] = vg_cu_conv_bn_fold;
  k[VG_OP_AVG_POOL2D] = k[VG_OP_AVG_POOL2D_BWD] = k[VG_OP_MAX_POOL2D] = k[VG_OP_MAX_POOL2D_BWD] = vg_cu_pool;
  k[VG_OP_ADAPTIVE_AVG_POOL2D] = k[VG_OP_ADAPTIVE_AVG_POOL2D_BWD] = vg_cu_pool;
  k[VG_OP_INTERP_BILINEAR] = k[VG_OP_INTERP_BILINEAR_BWD] = vg_cu_pool;
  k[VG_OP_UNFOLD] = vg_cu_unfold;
  k[VG_OP_FOLD] = vg_cu_fold;
  k[VG_OP_PAD] = vg_cu_pad;
  k[VG_OP_CONCAT] = vg_cu_concat;
  k[VG_OP_GATHER] = vg_cu_gather;
  k[VG_OP_SCATTER_ADD] = vg_cu_scatter_add;
  k[VG_OP_INDEX_SELECT] = vg_cu_index_select;
  k[VG_OP_INDEX_ADD] = vg_cu_index_add;
  k[VG_OP_KTHVALUE] = vg_cu_kthvalue;
  k[VG_OP_SORT] = vg_cu_sort;
  k[VG_OP_RAND_UNIFORM] = k[VG_OP_RAND_NORMAL] = vg_cu_random;
  k[VG_OP_SOFTMAX] = k[VG_OP_LOG_SOFTMAX] = k[VG_OP_SOFTMAX_BWD] = k[VG_OP_LOG_SOFTMAX_BWD] = vg_cu_softmax;
  k[VG_OP_LAYER_NORM] = k[VG_OP_LAYER_NORM_BWD] = vg_cu_layer_norm;
  b.alloc = vg_cuda_alloc;
  b.free = vg_cuda_free;
  b.optim_update = vg_cu_optim_update;
  return b;
}
const vg_backend vg_cuda_backend = cuda_backend_table();

/* ---- public runtime API (tensor.h, device section) ---- */
vg_status vg_cuda_set_tf32(bool on) {
  vg_status st = vg_cuda_init();
  if (st != VG_OK) return st;
  pthread_mutex_lock(&lock);
  cublasStatus_t e = cublasSetMathMode(blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  for (int k = 0; side_on && k < VG_CU_SIDE && e == CUBLAS_STATUS_SUCCESS; k++)
    e = cublasSetMathMode(side_blas[k], on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  if (e == CUBLAS_STATUS_SUCCESS) tf32_on = on;
  pthread_mutex_unlock(&lock);
  return e == CUBLAS_STATUS_SUCCESS ? VG_OK : vg_fail(VG_ERR_DEVICE, "cuda: cublasSetMathMode: %s", vg_cublas_error_name(e));
}

bool vg_cuda_tf32(void) { return vg_cuda_init() == VG_OK && tf32_on; }

vg_status vg_cuda_device_info(vg_cuda_info *out) {
  memset(out, 0, sizeof *out);
  vg_status st = vg_cuda_init();
  if (st != VG_OK) return st;
  int dev = 0, v = 0;
  struct cudaDeviceProp p;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return vg_fail(VG_ERR_DEVICE, "cuda: cannot read the device's properties");
  }
  snprintf(out->name, sizeof out->name, "%s", p.name);
  out->cc_major = p.major;
  out->cc_minor = p.minor;
  out->sm_count = p.multiProcessorCount;
  out->memory_gib = (double)p.totalGlobalMem / 1073741824.0;
  if (cudaDriverGetVersion(&v) == cudaSuccess) out->driver_version = v;
  if (cudaRuntimeGetVersion(&v) == cudaSuccess) out->runtime_version = v;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrClockRate, dev) == cudaSuccess) out->sm_clock_mhz = v / 1000;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryClockRate, dev) == cudaSuccess) out->mem_clock_mhz = v / 1000;
  (void)cudaGetLastError();
  return VG_OK;
}

const char *vg_cuda_device_name(void) {
  static char name[320];   /* cudaDeviceProp.name is 256 */
  if (vg_cuda_init() != VG_OK) return NULL;
  pthread_mutex_lock(&lock);
  if (!name[0]) {
    int dev = 0;
    struct cudaDeviceProp p;
    if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&p, dev) == cudaSuccess)
      snprintf(name, sizeof name, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
               (double)p.totalGlobalMem / 1073741824.0);
    else
      snprintf(name, sizeof name, "unknown CUDA device");
  }
  pthread_mutex_unlock(&lock);
  return name;
}
