/* cuda_runtime.h — the host emulator's stand-in for the CUDA Toolkit's header (make
 * CUDA_EMU=1 puts tests/cuda_emu first on the include path). It declares the subset of
 * the runtime API the backend uses, with the Toolkit's names, values and signatures, and
 * makes the kernel language compile as host C++:
 *   __global__/__device__/__host__/__forceinline__  plain (inline) functions
 *   __shared__          thread_local: one instance per block (blocks run one at a time)
 *   extern __shared__   the dynamic shared memory of the launch (array named s; see emu.cpp)
 *   threadIdx, blockIdx, blockDim, gridDim   set by the scheduler before a thread runs
 *   __syncthreads       a real barrier: the threads of a block are cooperative fibers
 *   atomics, __trap, __float_as_uint & co, warp shuffles/votes, min/max
 *   VG_CU_LAUNCH(k, grid, block, shm, stream)(args...)  a kernel launch: the arguments are
 *     converted to the kernel's parameter types and copied (as CUDA does); the kernel
 *     runs on the host when the host next synchronizes, or is recorded when the stream
 *     is capturing a graph. A template kernel needs its template arguments written out
 *     (k<float>): the launch takes the kernel's address.
 * The implementation is tests/cuda_emu/emu.cpp. Nothing here runs in parallel: kernels
 * execute one at a time under one lock, each block's threads interleaved at barriers.
 * Static __shared__ arrays keep their contents from block to block (zero at the start);
 * on a GPU they start undefined, so do not rely on either. */
#ifndef VG_EMU_CUDA_RUNTIME_H
#define VG_EMU_CUDA_RUNTIME_H
#ifndef __cplusplus
#error "the CUDA emulator's cuda_runtime.h is C++ only (compile .cu files with g++ -x c++)"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmath>
#include <tuple>
#include <type_traits>
#include <utility>

#define VG_CUDA_EMU_VERSION 1
#define CUDART_VERSION 13000
#define __CUDART_API_VERSION 13000

/* ---- the kernel language ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __shared__ thread_local
#define __constant__
#define __managed__
#define __restrict__ __restrict
#define __align__(n) alignas(n)
#define __launch_bounds__(...)
#define __grid_constant__
#define __device_builtin__
#define CUDARTAPI

struct uint3 { unsigned int x, y, z; };
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
/* set by the scheduler for the thread running now (fibers switch only at barriers) */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

/* ---- runtime types (values as in the Toolkit's driver_types.h) ---- */
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorCudartUnloading = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidPitchValue = 12,
  cudaErrorInvalidSymbol = 13,
  cudaErrorInvalidHostPointer = 16,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNotYetImplemented = 31,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidKernelImage = 200,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchTimeout = 702,
  cudaErrorAssert = 710,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotPermitted = 800,
  cudaErrorNotSupported = 801,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureMerge = 902,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorStreamCaptureIsolation = 905,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorCapturedEvent = 907,
  cudaErrorStreamCaptureWrongThread = 908,
  cudaErrorGraphExecUpdateFailure = 910,
  cudaErrorUnknown = 999
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrClockRate = 13,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMemoryClockRate = 36,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaEventInterprocess 0x04
#define cudaHostAllocDefault 0x00
#define cudaGraphInstantiateFlagAutoFreeOnLaunch 1

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)

/* the fields of the Toolkit's cudaDeviceProp that code commonly reads (names as there) */
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  size_t memPitch;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  size_t totalConstMem;
  int major;
  int minor;
  size_t textureAlignment;
  int multiProcessorCount;
  int integrated;
  int canMapHostMemory;
  int concurrentKernels;
  int pciBusID, pciDeviceID, pciDomainID;
  int asyncEngineCount;
  int unifiedAddressing;
  int memoryBusWidth;
  int l2CacheSize;
  int maxThreadsPerMultiProcessor;
  size_t sharedMemPerMultiprocessor;
  int regsPerMultiprocessor;
  int managedMemory;
  int isMultiGpuBoard;
  int cooperativeLaunch;
  size_t sharedMemPerBlockOptin;
  int maxBlocksPerMultiProcessor;
  int reservedSharedMemPerBlock;
};

/* the Toolkit's cudaFuncAttributes (the fields code reads) */
struct cudaFuncAttributes {
  size_t sharedSizeBytes, constSizeBytes, localSizeBytes;
  int maxThreadsPerBlock, numRegs, ptxVersion, binaryVersion, cacheModeCA, maxDynamicSharedSizeBytes;
};

/* ---- runtime API (signatures as cuda_runtime_api.h, CUDA 12/13) ----
 * The emulated device is an sm_90 (H100-like) GPU; for tests of the backend's start-up
 * checks, VIGIL_EMU_CC=MAJOR.MINOR makes it report another compute capability and
 * VIGIL_EMU_NO_IMAGE=1 makes cudaFuncGetAttributes (and so the backend's probe) answer as
 * a GPU for which the binary has no kernel image (cudaErrorNoKernelImageForDevice). */
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaDriverGetVersion(int *version);
cudaError_t cudaRuntimeGetVersion(int *version);
cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func);
template <class T> cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, T *entry) {
  return cudaFuncGetAttributes(attr, (const void *)entry);
}
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);
cudaError_t cudaMemGetInfo(size_t *free, size_t *total);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t error);
const char *cudaGetErrorName(cudaError_t error);

cudaError_t cudaMalloc(void **devPtr, size_t size);
cudaError_t cudaFree(void *devPtr);
cudaError_t cudaMallocHost(void **ptr, size_t size);
cudaError_t cudaHostAlloc(void **ptr, size_t size, unsigned int flags);
cudaError_t cudaFreeHost(void *ptr);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream = 0);
cudaError_t cudaMemset(void *devPtr, int value, size_t count);
cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream = 0);

cudaError_t cudaStreamCreate(cudaStream_t *pStream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t *event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *pGraph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *pCaptureStatus);
cudaError_t cudaThreadExchangeStreamCaptureMode(enum cudaStreamCaptureMode *mode);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *pGraphExec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, void **nodes, size_t *numNodes);

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value);
template <class T>
static inline cudaError_t cudaFuncSetAttribute(T *entry, enum cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute((const void *)entry, attr, value);
}

/* ---- device builtins ---- */
[[noreturn]] void __trap(void);
/* The barriers switch fibers inside emu.cpp. Each is wrapped in a compiler memory barrier:
 * a __shared__ array is a function-local static whose address never escapes, so without
 * the clobber the compiler may keep its elements in registers across the call. */
#define VG_EMU_CLOBBER() __asm__ __volatile__("" ::: "memory")
void vg_emu_syncthreads(void);
int vg_emu_syncthreads_reduce(int pred, int how);
void vg_emu_syncwarp(void);
static inline void __syncthreads(void) { VG_EMU_CLOBBER(); vg_emu_syncthreads(); VG_EMU_CLOBBER(); }
static inline int __syncthreads_count(int pred) {
  VG_EMU_CLOBBER(); int r = vg_emu_syncthreads_reduce(pred, 0); VG_EMU_CLOBBER(); return r;
}
static inline int __syncthreads_and(int pred) {
  VG_EMU_CLOBBER(); int r = vg_emu_syncthreads_reduce(pred, 1); VG_EMU_CLOBBER(); return r;
}
static inline int __syncthreads_or(int pred) {
  VG_EMU_CLOBBER(); int r = vg_emu_syncthreads_reduce(pred, 2); VG_EMU_CLOBBER(); return r;
}
static inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; VG_EMU_CLOBBER(); vg_emu_syncwarp(); VG_EMU_CLOBBER(); }
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}
static inline void __nanosleep(unsigned) {}

static inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
static inline int __float_as_int(float f) { int x; memcpy(&x, &f, 4); return x; }
static inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned x; memcpy(&x, &f, 4); return x; }
static inline double __longlong_as_double(long long x) { double d; memcpy(&d, &x, 8); return d; }
static inline long long __double_as_longlong(double d) { long long x; memcpy(&x, &d, 8); return x; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
template <class T> static inline T __ldg(const T *p) { return *p; }
static inline float __saturatef(float x) { return x != x ? 0.0f : (x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x)); }
static inline float __fdividef(float a, float b) { return a / b; }
/* glibc declares __expf & co. itself: the fast intrinsics are the accurate functions here */
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __powf(a, b) powf(a, b)
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
/* IEEE-rounded arithmetic intrinsics (never fused) */
static inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
static inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
static inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
static inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { volatile double r = a + b; return r; }
static inline double __dmul_rn(double a, double b) { volatile double r = a * b; return r; }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float2int_rz(float x) { return (int)x; }
static inline int __float2int_rd(float x) { return (int)floorf(x); }
static inline int __float2int_ru(float x) { return (int)ceilf(x); }
static inline unsigned __float2uint_rn(float x) { return (unsigned)nearbyintf(x); }
static inline long long __float2ll_rn(float x) { return (long long)nearbyintf(x); }
static inline float __int2float_rn(int x) { return (float)x; }
static inline float __uint2float_rn(unsigned x) { return (float)x; }
static inline float __ll2float_rn(long long x) { return (float)x; }
static inline float __double2float_rn(double x) { return (float)x; }
static inline int __double2int_rn(double x) { return (int)nearbyint(x); }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
static inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
long long clock64(void);   /* nanoseconds of CLOCK_MONOTONIC */

/* CUDA's device min/max overloads (global namespace, as in the Toolkit) */
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long min(long a, long b) { return a < b ? a : b; }
static inline long max(long a, long b) { return a > b ? a : b; }
static inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
static inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }

/* atomics: kernels run one thread at a time, so plain read-modify-write is atomic */
template <class T> static inline T vg_emu_atomic_add(T *p, T v) { T o = *p; *p = (T)(o + v); return o; }
static inline int atomicAdd(int *p, int v) { return (int)vg_emu_atomic_add((unsigned *)p, (unsigned)v); }
static inline unsigned atomicAdd(unsigned *p, unsigned v) { return vg_emu_atomic_add(p, v); }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { return vg_emu_atomic_add(p, v); }
static inline float atomicAdd(float *p, float v) { return vg_emu_atomic_add(p, v); }
static inline double atomicAdd(double *p, double v) { return vg_emu_atomic_add(p, v); }
static inline int atomicSub(int *p, int v) { return (int)vg_emu_atomic_add((unsigned *)p, (unsigned)-v); }
static inline unsigned atomicSub(unsigned *p, unsigned v) { return vg_emu_atomic_add(p, (unsigned)-v); }
template <class T> static inline T vg_emu_atomic_min(T *p, T v) { T o = *p; if (v < o) *p = v; return o; }
template <class T> static inline T vg_emu_atomic_max(T *p, T v) { T o = *p; if (v > o) *p = v; return o; }
static inline int atomicMin(int *p, int v) { return vg_emu_atomic_min(p, v); }
static inline unsigned atomicMin(unsigned *p, unsigned v) { return vg_emu_atomic_min(p, v); }
static inline long long atomicMin(long long *p, long long v) { return vg_emu_atomic_min(p, v); }
static inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) { return vg_emu_atomic_min(p, v); }
static inline int atomicMax(int *p, int v) { return vg_emu_atomic_max(p, v); }
static inline unsigned atomicMax(unsigned *p, unsigned v) { return vg_emu_atomic_max(p, v); }
static inline long long atomicMax(long long *p, long long v) { return vg_emu_atomic_max(p, v); }
static inline unsigned long long atomicMax(unsigned long long *p, unsigned long long v) { return vg_emu_atomic_max(p, v); }
template <class T> static inline T vg_emu_atomic_exch(T *p, T v) { T o = *p; *p = v; return o; }
static inline int atomicExch(int *p, int v) { return vg_emu_atomic_exch(p, v); }
static inline unsigned atomicExch(unsigned *p, unsigned v) { return vg_emu_atomic_exch(p, v); }
static inline unsigned long long atomicExch(unsigned long long *p, unsigned long long v) { return vg_emu_atomic_exch(p, v); }
static inline float atomicExch(float *p, float v) { return vg_emu_atomic_exch(p, v); }
template <class T> static inline T vg_emu_atomic_cas(T *p, T c, T v) { T o = *p; if (o == c) *p = v; return o; }
static inline int atomicCAS(int *p, int c, int v) { return vg_emu_atomic_cas(p, c, v); }
static inline unsigned atomicCAS(unsigned *p, unsigned c, unsigned v) { return vg_emu_atomic_cas(p, c, v); }
static inline unsigned long long atomicCAS(unsigned long long *p, unsigned long long c, unsigned long long v) {
  return vg_emu_atomic_cas(p, c, v);
}
static inline unsigned short atomicCAS(unsigned short *p, unsigned short c, unsigned short v) { return vg_emu_atomic_cas(p, c, v); }
static inline int atomicAnd(int *p, int v) { int o = *p; *p = o & v; return o; }
static inline unsigned atomicAnd(unsigned *p, unsigned v) { unsigned o = *p; *p = o & v; return o; }
static inline unsigned long long atomicAnd(unsigned long long *p, unsigned long long v) { unsigned long long o = *p; *p = o & v; return o; }
static inline int atomicOr(int *p, int v) { int o = *p; *p = o | v; return o; }
static inline unsigned atomicOr(unsigned *p, unsigned v) { unsigned o = *p; *p = o | v; return o; }
static inline unsigned long long atomicOr(unsigned long long *p, unsigned long long v) { unsigned long long o = *p; *p = o | v; return o; }
static inline int atomicXor(int *p, int v) { int o = *p; *p = o ^ v; return o; }
static inline unsigned atomicXor(unsigned *p, unsigned v) { unsigned o = *p; *p = o ^ v; return o; }
static inline unsigned atomicInc(unsigned *p, unsigned v) { unsigned o = *p; *p = o >= v ? 0 : o + 1; return o; }
static inline unsigned atomicDec(unsigned *p, unsigned v) { unsigned o = *p; *p = (o == 0 || o > v) ? v : o - 1; return o; }

/* warp collectives: a warp is 32 consecutive threads (linear index) of the block; each
 * call is a barrier of the warp's threads (see emu.cpp) */
unsigned long long vg_emu_warp_exchange(unsigned long long v, int src_lane, int mode, int width);
#define VG_EMU_SHFL_IDX 0
#define VG_EMU_SHFL_UP 1
#define VG_EMU_SHFL_DOWN 2
#define VG_EMU_SHFL_XOR 3
template <class T> static inline T vg_emu_shfl(T v, int lane, int mode, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type over 8 bytes");
  unsigned long long u = 0;
  memcpy(&u, &v, sizeof(T));
  VG_EMU_CLOBBER();
  u = vg_emu_warp_exchange(u, lane, mode, width);
  VG_EMU_CLOBBER();
  T r;
  memcpy(&r, &u, sizeof(T));
  return r;
}
template <class T> static inline T __shfl_sync(unsigned, T v, int src, int width = 32) { return vg_emu_shfl(v, src, VG_EMU_SHFL_IDX, width); }
template <class T> static inline T __shfl_up_sync(unsigned, T v, unsigned d, int width = 32) { return vg_emu_shfl(v, (int)d, VG_EMU_SHFL_UP, width); }
template <class T> static inline T __shfl_down_sync(unsigned, T v, unsigned d, int width = 32) { return vg_emu_shfl(v, (int)d, VG_EMU_SHFL_DOWN, width); }
template <class T> static inline T __shfl_xor_sync(unsigned, T v, int m, int width = 32) { return vg_emu_shfl(v, m, VG_EMU_SHFL_XOR, width); }
unsigned vg_emu_warp_ballot(int pred);
static inline unsigned __ballot_sync(unsigned mask, int pred) {
  VG_EMU_CLOBBER(); unsigned r = vg_emu_warp_ballot(pred) & mask; VG_EMU_CLOBBER(); return r;
}
static inline int __any_sync(unsigned mask, int pred) { return (__ballot_sync(mask, pred)) != 0; }
static inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == __ballot_sync(mask, 1); }
static inline unsigned __activemask(void) { return vg_emu_warp_ballot(1); }
static inline unsigned __lanemask_lt(void) {
  unsigned lane = (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & 31;
  return (1u << lane) - 1;
}

/* ---- kernel launches ---- */
typedef struct {
  const char *name;            /* the kernel expression as written at the launch */
  const void *fn;              /* identity of the kernel (for cudaFuncSetAttribute) */
  dim3 grid, block;
  size_t shm;
  cudaStream_t stream;
  void (*run)(const void *args);   /* runs the current thread of the current block */
  void *args;                  /* the packed arguments (owned: freed with free_args) */
  void (*free_args)(void *args);
  const void *const *ptrs;     /* the pointer arguments, checked against device memory */
  int nptr;
  const int *ptr_pos;          /* their positions in the argument list (for messages) */
} vg_emu_launch_t;
cudaError_t vg_emu_launch(vg_emu_launch_t *l);

namespace vg_emu {
template <class... P> struct packed {
  void (*fn)(P...);
  std::tuple<typename std::decay<P>::type...> args;
};
template <class... P> static void run_packed(const void *p) {
  const packed<P...> *k = (const packed<P...> *)p;
  std::apply(k->fn, k->args);
}
template <class... P> static void free_packed(void *p) { delete (packed<P...> *)p; }

template <class... P> struct launcher {
  void (*fn)(P...);
  const char *name;
  dim3 grid, block;
  size_t shm;
  cudaStream_t stream;
  /* the call converts the arguments to the parameter types, as a kernel call does */
  void operator()(P... a) const {
    packed<P...> *k = new packed<P...>{fn, std::tuple<typename std::decay<P>::type...>(a...)};
    const void *ptrs[sizeof...(P) + 1];
    int pos[sizeof...(P) + 1], np = 0, i = 0;
    (void)i;
    ((std::is_pointer<typename std::decay<P>::type>::value
          ? (void)(ptrs[np] = (const void *)(uintptr_t)vg_ptr_bits(a), pos[np++] = i++)
          : (void)i++),
     ...);
    vg_emu_launch_t l = {name, (const void *)fn, grid, block, shm, stream, &run_packed<P...>, k,
                         &free_packed<P...>, ptrs, np, pos};
    vg_emu_launch(&l);
  }
  template <class T> static uintptr_t vg_ptr_bits(const T &v) {
    if constexpr (std::is_pointer<T>::value) return (uintptr_t)(const void *)v;
    else return 0;
  }
};
template <class... P>
static inline launcher<P...> make_launcher(void (*fn)(P...), const char *name, dim3 grid, dim3 block, size_t shm,
                                           cudaStream_t stream) {
  return launcher<P...>{fn, name, grid, block, shm, stream};
}
}  // namespace vg_emu

#define VG_CU_LAUNCH(k, grid, block, shm, st) \
  ::vg_emu::make_launcher(k, #k, dim3(grid), dim3(block), (size_t)(shm), (cudaStream_t)(st))

#endif
