/* selftest.cu — checks of the CUDA host emulator itself (make CUDA_EMU=1 builds it as
 * build/cuemu/tests/test_cuda_emu, run by make CUDA_EMU=1 test). Plain CUDA: it builds
 * with nvcc too (nvcc -arch=sm_90 -I. tests/cuda_emu/selftest.cu -lcublas), so on a GPU
 * the same expectations can be checked against the hardware; the few emulator-only
 * checks (host pointers refused, guard pages) are under VG_CUDA_EMU.
 * Covers: thread/block indexing in 3-d, __syncthreads as a barrier (shared-memory
 * reversal, tree reduction), dynamic shared memory, __syncthreads_count, warp shuffles
 * and ballots, atomics, early-returning threads, launch configuration errors, cuBLAS
 * GEMMs (every transpose pair, alpha/beta, beta = 0 ignoring NaN in C, strided batches,
 * f16 GemmEx, FAST_16F) against a double reference, stream capture / graph replay (with a
 * second stream forked into the capture and joined back, or left unjoined) and
 * the errors of unsafe calls during capture, events, and __trap's sticky error. Prints
 * one line per check and "N passed, N failed". */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
#include <fcntl.h>
#include <unistd.h>

/* the emulator's messages for the errors provoked on purpose go to /dev/null */
static int saved_stderr = -1;
static void quiet(bool on) {
  fflush(stderr);
  if (on) {
    saved_stderr = dup(2);
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) { dup2(fd, 2); close(fd); }
  } else if (saved_stderr >= 0) {
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
  }
}

#ifndef VG_CU_LAUNCH
#define VG_CU_LAUNCH(k, grid, block, shm, st) k<<<(grid), (block), (shm), (st)>>>
#endif

static int npass, nfail;
static void check(bool ok, const char *what, const char *fmt = "", ...) {
  printf("%s emu %s", ok ? "OK" : "NOT OK", what);
  if (fmt[0]) {
    va_list ap;
    va_start(ap, fmt);
    printf(": ");
    vprintf(fmt, ap);
    va_end(ap);
  }
  printf("\n");
  if (ok) npass++;
  else nfail++;
}
#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("NOT OK emu %s: %s\n", #call, cudaGetErrorName(e_)); nfail++; } } while (0)

/* ---- kernels ---- */
__global__ void k_index(unsigned *out) {
  unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned nt = blockDim.x * blockDim.y * blockDim.z;
  out[b * nt + t] = b * 1000 + t;
}

__global__ void k_reverse(const int *in, int *out) {
  __shared__ int sh[256];
  int t = threadIdx.x, base = blockIdx.x * blockDim.x;
  sh[t] = in[base + t];
  __syncthreads();
  out[base + t] = sh[blockDim.x - 1 - t];
}

__global__ void k_tree_sum(const float *x, float *out, int n) {
  extern __shared__ float s[];
  float acc = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

__global__ void k_count(const int *flags, int *out) {
  int c = __syncthreads_count(flags[threadIdx.x]);
  int a = __syncthreads_and(flags[threadIdx.x] >= 0);
  int o = __syncthreads_or(flags[threadIdx.x] > 5);
  if (threadIdx.x == 0) {
    out[0] = c;
    out[1] = a;
    out[2] = o;
  }
}

__global__ void k_warp(const int *x, int *sums, unsigned *ballots, int *bcast) {
  int v = x[blockIdx.x * blockDim.x + threadIdx.x];
  int s = v;
  for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(0xffffffffu, s, d);
  unsigned b = __ballot_sync(0xffffffffu, v & 1);
  int first = __shfl_sync(0xffffffffu, v, 0);
  int x3 = __shfl_xor_sync(0xffffffffu, v, 3);
  int lane = threadIdx.x & 31, w = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  if (lane == 0) {
    sums[w] = s;
    ballots[w] = b;
  }
  bcast[blockIdx.x * blockDim.x + threadIdx.x] = first * 1000 + x3;
}

__global__ void k_atomic(unsigned *ctr, unsigned *mn, float *fs, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  atomicAdd(ctr, 1u);
  atomicMin(mn, (unsigned)(1000 + (i * 7919) % n));
  atomicAdd(fs, 0.5f);
}

__global__ void k_first_only(int *out) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  out[0] = 42;
}

__global__ void k_add(float *x, float v, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += v;
}

__global__ void k_trap(int *x) {
  if (threadIdx.x == 3) __trap();
  x[threadIdx.x] = 1;
}

/* ---- helpers ---- */
static uint64_t rng = 88172645463325252ull;
static float frand() {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static uint16_t to_half(float f) {   /* round to nearest even (normal range) */
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
  if (ax < 0x38800000u) return (uint16_t)sign;   /* tests use normal values */
  uint32_t h = (((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3ff), rest = ax & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}
static float from_half(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  uint32_t bits = e ? sign | ((e + 112) << 23) | (m << 13) : sign;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* column-major reference: C = alpha op(A) op(B) + beta C, in double */
static void ref_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                     int ldb, float beta, float *C, int ldc) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      double s = 0;
      for (int p = 0; p < k; p++) {
        double a = ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];
        double b = tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];
        s += a * b;
      }
      float *c = &C[i + (size_t)j * ldc];
      *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
    }
}

static double max_rel_err(const std::vector<float> &got, const std::vector<float> &want) {
  double mx = 0, err = 0;
  for (size_t i = 0; i < want.size(); i++) mx = fmax(mx, fabs(want[i]));
  for (size_t i = 0; i < want.size(); i++) {
    double d = fabs((double)got[i] - want[i]);
    if (d != d) return INFINITY;
    err = fmax(err, d);
  }
  return err / (mx > 0 ? mx : 1);
}

template <class T> static T *dev_upload(const std::vector<T> &h) {
  T *d = nullptr;
  CK(cudaMalloc((void **)&d, h.size() * sizeof(T) + 1));
  CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <class T> static std::vector<T> dev_download(const T *d, size_t n) {
  std::vector<T> h(n);
  CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

static void test_device() {
  int n = 0;
  CK(cudaGetDeviceCount(&n));
  cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  check(n >= 1 && p.major >= 7 && p.totalGlobalMem > 0, "device", "%d device(s), %s, sm_%d%d", n, p.name, p.major,
        p.minor);
}

static void test_index() {
  dim3 grid(3, 2, 2), block(8, 4, 2);
  int nb = 12, nt = 64;
  unsigned *d;
  CK(cudaMalloc((void **)&d, sizeof(unsigned) * nb * nt));
  VG_CU_LAUNCH(k_index, grid, block, 0, 0)(d);
  CK(cudaGetLastError());
  std::vector<unsigned> h = dev_download(d, (size_t)nb * nt);
  bool ok = true;
  for (int b = 0; b < nb; b++)
    for (int t = 0; t < nt; t++) ok &= h[(size_t)b * nt + t] == (unsigned)(b * 1000 + t);
  check(ok, "3-d grid and block indices");
  CK(cudaFree(d));
}

static void test_barriers() {
  int nb = 5, T = 256;
  std::vector<int> in((size_t)nb * T);
  for (size_t i = 0; i < in.size(); i++) in[i] = (int)(i * 37 % 1001);
  int *din = dev_upload(in), *dout;
  CK(cudaMalloc((void **)&dout, sizeof(int) * in.size()));
  VG_CU_LAUNCH(k_reverse, nb, T, 0, 0)(din, dout);
  CK(cudaGetLastError());
  std::vector<int> out = dev_download(dout, in.size());
  bool ok = true;
  for (int b = 0; b < nb; b++)
    for (int t = 0; t < T; t++) ok &= out[(size_t)b * T + t] == in[(size_t)b * T + T - 1 - t];
  check(ok, "__syncthreads: shared-memory reversal across a barrier");

  int n = 10007;
  std::vector<float> x(n);
  double want = 0;
  for (int i = 0; i < n; i++) {
    x[i] = (float)(i % 13) - 6.0f;
    want += x[i];
  }
  float *dx = dev_upload(x), *ds;
  CK(cudaMalloc((void **)&ds, sizeof(float) * 2));
  VG_CU_LAUNCH(k_tree_sum, 2, 512, 512 * sizeof(float), 0)(dx, ds, n);
  CK(cudaGetLastError());
  std::vector<float> s = dev_download(ds, 2);
  check(s[0] == (float)want && s[1] == (float)want, "__syncthreads + dynamic shared memory: tree sum", "%g %g (want %g)",
        s[0], s[1], want);

  std::vector<int> flags(128);
  int cnt = 0;
  for (int i = 0; i < 128; i++) cnt += (flags[i] = (i % 3 == 0) ? 7 : 0) != 0;
  int *df = dev_upload(flags), *dc;
  CK(cudaMalloc((void **)&dc, sizeof(int) * 3));
  VG_CU_LAUNCH(k_count, 1, 128, 0, 0)(df, dc);
  std::vector<int> c = dev_download(dc, 3);
  check(c[0] == cnt && c[1] == 1 && c[2] == 1, "__syncthreads_count/and/or", "%d %d %d", c[0], c[1], c[2]);

  int *d1;
  CK(cudaMalloc((void **)&d1, sizeof(int)));
  VG_CU_LAUNCH(k_first_only, 4, 256, 0, 0)(d1);
  check(dev_download(d1, 1)[0] == 42, "kernel whose threads but one return at once");
  CK(cudaFree(din));
  CK(cudaFree(dout));
  CK(cudaFree(dx));
  CK(cudaFree(ds));
  CK(cudaFree(df));
  CK(cudaFree(dc));
  CK(cudaFree(d1));
}

static void test_warp() {
  int nb = 2, T = 96, nw = nb * T / 32;
  std::vector<int> x((size_t)nb * T);
  for (size_t i = 0; i < x.size(); i++) x[i] = (int)((i * 2654435761u) % 97);
  int *dx = dev_upload(x), *dsum, *dbc;
  unsigned *dbal;
  CK(cudaMalloc((void **)&dsum, sizeof(int) * nw));
  CK(cudaMalloc((void **)&dbal, sizeof(unsigned) * nw));
  CK(cudaMalloc((void **)&dbc, sizeof(int) * x.size()));
  VG_CU_LAUNCH(k_warp, nb, T, 0, 0)(dx, dsum, dbal, dbc);
  CK(cudaGetLastError());
  std::vector<int> sums = dev_download(dsum, nw), bc = dev_download(dbc, x.size());
  std::vector<unsigned> bal = dev_download(dbal, nw);
  bool ok = true;
  for (int w = 0; w < nw; w++) {
    int s = 0;
    unsigned b = 0;
    for (int l = 0; l < 32; l++) {
      s += x[(size_t)w * 32 + l];
      if (x[(size_t)w * 32 + l] & 1) b |= 1u << l;
    }
    ok &= sums[w] == s && bal[w] == b;
    for (int l = 0; l < 32; l++) ok &= bc[(size_t)w * 32 + l] == x[(size_t)w * 32] * 1000 + x[(size_t)w * 32 + (l ^ 3)];
  }
  check(ok, "warp shuffles (down, idx, xor) and ballot");
  CK(cudaFree(dx));
  CK(cudaFree(dsum));
  CK(cudaFree(dbal));
  CK(cudaFree(dbc));
}

static void test_atomics() {
  int n = 1000;
  unsigned init[2] = {5, 0xffffffffu};
  float f0 = 0;
  unsigned *d;
  float *df;
  CK(cudaMalloc((void **)&d, sizeof init));
  CK(cudaMalloc((void **)&df, sizeof f0));
  CK(cudaMemcpy(d, init, sizeof init, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(df, &f0, sizeof f0, cudaMemcpyHostToDevice));
  VG_CU_LAUNCH(k_atomic, (n + 127) / 128, 128, 0, 0)(d, d + 1, df, n);
  unsigned h[2];
  float hf;
  CK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(&hf, df, sizeof hf, cudaMemcpyDeviceToHost));
  check(h[0] == 5u + n && h[1] == 1000 && hf == 0.5f * n, "atomicAdd / atomicMin", "%u %u %g", h[0], h[1], hf);
  CK(cudaFree(d));
  CK(cudaFree(df));
}

static void test_config_errors() {
  float *d;
  CK(cudaMalloc((void **)&d, 64 * sizeof(float)));
  (void)cudaGetLastError();
  VG_CU_LAUNCH(k_add, 1, 1025, 0, 0)(d, 1.0f, 64);
  cudaError_t e = cudaGetLastError();
  check(e == cudaErrorInvalidConfiguration, "1025 threads per block fail to launch", "%s", cudaGetErrorName(e));
  VG_CU_LAUNCH(k_add, 0, 64, 0, 0)(d, 1.0f, 64);
  e = cudaGetLastError();
  check(e == cudaErrorInvalidConfiguration, "an empty grid fails to launch", "%s", cudaGetErrorName(e));
  VG_CU_LAUNCH(k_tree_sum, 1, 64, 64 * 1024, 0)(d, d, 64);
  e = cudaGetLastError();
  check(e != cudaSuccess, "64 KiB of dynamic shared memory without the attribute fails", "%s", cudaGetErrorName(e));
  CK(cudaFuncSetAttribute(k_tree_sum, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
  VG_CU_LAUNCH(k_tree_sum, 1, 64, 64 * 1024, 0)(d, d + 1, 64);
  e = cudaGetLastError();
  check(e == cudaSuccess, "... and launches once raised by cudaFuncSetAttribute", "%s", cudaGetErrorName(e));
  CK(cudaFree(d));
}

static void test_gemm() {
  cublasHandle_t h;
  cublasStatus_t st = cublasCreate(&h);
  check(st == CUBLAS_STATUS_SUCCESS, "cublasCreate");
  int m = 37, n = 23, k = 41, batch = 3;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 2, ldc = m + 1;
      long long sa = (long long)lda * (ta ? m : k) + 5, sb = (long long)ldb * (tb ? k : n) + 7,
                sc = (long long)ldc * n + 3;
      std::vector<float> A(sa * batch), B(sb * batch), C(sc * batch), W;
      for (auto &v : A) v = frand();
      for (auto &v : B) v = frand();
      for (auto &v : C) v = frand();
      W = C;
      float alpha = 0.75f, beta = -0.5f;
      for (int b = 0; b < batch; b++)
        ref_gemm(ta, tb, m, n, k, alpha, &A[sa * b], lda, &B[sb * b], ldb, beta, &W[sc * b], ldc);
      float *dA = dev_upload(A), *dB = dev_upload(B), *dC = dev_upload(C);
      st = cublasSgemmStridedBatched(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
                                     dA, lda, sa, dB, ldb, sb, &beta, dC, ldc, sc, batch);
      std::vector<float> got = dev_download(dC, C.size());
      double err = max_rel_err(got, W);
      char what[96];
      snprintf(what, sizeof what, "cublasSgemmStridedBatched op(A)=%s op(B)=%s, alpha/beta", ta ? "T" : "N",
               tb ? "T" : "N");
      check(st == CUBLAS_STATUS_SUCCESS && err < 1e-5, what, "max err %.2e", err);
      /* beta = 0: C is not read (NaN there must not leak) */
      std::vector<float> nanC(C.size(), NAN), W0(C.size(), NAN);
      CK(cudaMemcpy(dC, nanC.data(), nanC.size() * 4, cudaMemcpyHostToDevice));
      float zero = 0.0f;
      st = cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, dA, lda, dB,
                       ldb, &zero, dC, ldc);
      ref_gemm(ta, tb, m, n, k, alpha, A.data(), lda, B.data(), ldb, 0.0f, W0.data(), ldc);
      got = dev_download(dC, C.size());
      bool ok = st == CUBLAS_STATUS_SUCCESS;
      double e2 = 0;
      for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
          size_t at = (size_t)i + (size_t)j * ldc;
          double d = fabs(got[at] - W0[at]);
          if (!(d <= 1e-4)) ok = false;
          e2 = fmax(e2, d);
        }
      snprintf(what, sizeof what, "cublasSgemm op(A)=%s op(B)=%s, beta = 0 over NaN", ta ? "T" : "N", tb ? "T" : "N");
      check(ok, what, "max abs err %.2e", e2);
      CK(cudaFree(dA));
      CK(cudaFree(dB));
      CK(cudaFree(dC));
    }
  /* k = 0: C = beta C; alpha = 0: A and B are not read */
  {
    std::vector<float> C(12, 2.0f);
    float *dC = dev_upload(C), half = 0.5f, zero0 = 0.0f;
    st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 0, &half, dC, 3, dC, 1, &half, dC, 3);
    bool ok = st == CUBLAS_STATUS_SUCCESS && dev_download(dC, 12)[5] == 1.0f;
    st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 5, &zero0, (const float *)nullptr, 3, (const float *)nullptr, 5,
                     &half, dC, 3);
    ok &= st == CUBLAS_STATUS_SUCCESS && dev_download(dC, 12)[11] == 0.5f;
    check(ok, "cublasSgemm with k = 0 scales C by beta; alpha = 0 reads neither A nor B");
    CK(cudaFree(dC));
  }
  /* bad leading dimension */
  float one = 1, zero = 0;
  st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, (const float *)nullptr, 4, (const float *)nullptr, 8,
                   &zero, (float *)nullptr, 8);
  check(st == CUBLAS_STATUS_INVALID_VALUE, "lda < m is CUBLAS_STATUS_INVALID_VALUE");

  /* f16 in, f32 accumulation, f16 and f32 out */
  {
    int mm = 19, nn = 11, kk = 64;
    std::vector<uint16_t> A((size_t)mm * kk), B((size_t)kk * nn);
    std::vector<float> Af(A.size()), Bf(B.size());
    for (size_t i = 0; i < A.size(); i++) Af[i] = from_half(A[i] = to_half(frand()));
    for (size_t i = 0; i < B.size(); i++) Bf[i] = from_half(B[i] = to_half(frand()));
    std::vector<float> W((size_t)mm * nn, 0.0f);
    ref_gemm(false, true, mm, nn, kk, 1.0f, Af.data(), mm, Bf.data(), nn, 0.0f, W.data(), mm);
    uint16_t *dA = dev_upload(A), *dB = dev_upload(B), *dC16;
    float *dC32;
    CK(cudaMalloc((void **)&dC16, W.size() * 2));
    CK(cudaMalloc((void **)&dC32, W.size() * 4));
    st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, mm, nn, kk, &one, dA, CUDA_R_16F, mm, dB, CUDA_R_16F, nn, &zero, dC32,
                      CUDA_R_32F, mm, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    double err = max_rel_err(dev_download(dC32, W.size()), W);
    check(st == CUBLAS_STATUS_SUCCESS && err < 1e-5, "cublasGemmEx f16 x f16 -> f32", "max err %.2e", err);
    st = cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_T, mm, nn, kk, &one, dA, CUDA_R_16F, mm, 0, dB,
                                    CUDA_R_16F, nn, 0, &zero, dC16, CUDA_R_16F, mm, 0, 1, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT);
    std::vector<uint16_t> c16 = dev_download(dC16, W.size());
    std::vector<float> c(W.size());
    bool exact = true;
    for (size_t i = 0; i < c.size(); i++) {
      c[i] = from_half(c16[i]);
      exact &= fabs(c[i] - W[i]) <= fabs(W[i]) * (1.0 / 1024) + 1e-6;
    }
    check(st == CUBLAS_STATUS_SUCCESS && exact, "cublasGemmStridedBatchedEx f16 x f16 -> f16 (one rounding)");
    /* f32 data with FAST_16F: within f16 input rounding of the f32 result */
    std::vector<float> A32(Af), B32(Bf);
    for (auto &v : A32) v += frand() * 1e-4f;
    float *dA32 = dev_upload(A32), *dB32 = dev_upload(B32);
    std::vector<float> W32(W.size(), 0.0f);
    ref_gemm(false, true, mm, nn, kk, 1.0f, A32.data(), mm, B32.data(), nn, 0.0f, W32.data(), mm);
    st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, mm, nn, kk, &one, dA32, CUDA_R_32F, mm, dB32, CUDA_R_32F, nn, &zero,
                      dC32, CUDA_R_32F, mm, CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_GEMM_DEFAULT);
    err = max_rel_err(dev_download(dC32, W.size()), W32);
    check(st == CUBLAS_STATUS_SUCCESS && err < 3e-3, "cublasGemmEx f32 with CUBLAS_COMPUTE_32F_FAST_16F", "max err %.2e",
          err);
    st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, mm, nn, kk, &one, dA32, CUDA_R_32F, mm, dB32, CUDA_R_32F, nn, &zero,
                      dC16, CUDA_R_16F, mm, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    check(st == CUBLAS_STATUS_NOT_SUPPORTED, "cublasGemmEx f32 x f32 -> f16 is not supported");
    CK(cudaFree(dA));
    CK(cudaFree(dB));
    CK(cudaFree(dC16));
    CK(cudaFree(dC32));
    CK(cudaFree(dA32));
    CK(cudaFree(dB32));
  }
  cublasDestroy(h);
}

static void test_capture() {
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t h;
  cublasCreate(&h);
  cublasSetStream(h, s);
  int n = 300;
  std::vector<float> x(n, 1.0f);
  float *dx = dev_upload(x), *dy, *pin;
  CK(cudaMalloc((void **)&dy, sizeof(float) * n));
  CK(cudaMallocHost((void **)&pin, sizeof(float) * n));
  for (int i = 0; i < n; i++) pin[i] = (float)i;

  cudaStreamCaptureStatus cs;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  CK(cudaStreamIsCapturing(s, &cs));
  check(cs == cudaStreamCaptureStatusActive, "cudaStreamIsCapturing: active");
  CK(cudaMemcpyAsync(dy, pin, sizeof(float) * n, cudaMemcpyHostToDevice, s));   /* y = 0..n-1 */
  VG_CU_LAUNCH(k_add, (n + 127) / 128, 128, 0, s)(dx, 2.0f, n);                 /* x += 2 */
  CK(cudaGetLastError());
  float one = 1.0f;
  cublasStatus_t st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, dx, 1, dx, 1, &one, dy, 1);   /* y0 += x0^2 */
  CK(cudaMemsetAsync(dx + n - 1, 0, sizeof(float), s));
  cudaGraph_t g = nullptr;
  CK(cudaStreamEndCapture(s, &g));
  std::vector<float> mid = dev_download(dx, n);
  check(mid[0] == 1.0f && mid[n - 1] == 1.0f && st == CUBLAS_STATUS_SUCCESS, "work on a capturing stream is recorded, not run");
  CK(cudaStreamIsCapturing(s, &cs));
  check(cs == cudaStreamCaptureStatusNone && g, "cudaStreamEndCapture gives a graph");
  cudaGraphExec_t ge = nullptr;
  CK(cudaGraphInstantiate(&ge, g, 0));
  for (int i = 0; i < n; i++) pin[i] = 100.0f + (float)i;   /* the copy reads the host buffer at replay */
  CK(cudaGraphLaunch(ge, s));
  CK(cudaGraphLaunch(ge, s));
  CK(cudaStreamSynchronize(s));
  std::vector<float> hx = dev_download(dx, n), hy = dev_download(dy, n);
  /* replay 1: x = 3, y0 = 100 + 9; replay 2: x = 5 (last: 0 + 2 then memset 0), y0 = 100 + 25 */
  check(hx[0] == 5.0f && hx[n - 2] == 5.0f && hx[n - 1] == 0.0f && hy[0] == 125.0f && hy[7] == 107.0f,
        "graph replayed twice: copy, kernel, cuBLAS, memset in order", "x0 %g x[n-1] %g y0 %g y7 %g", hx[0], hx[n - 1],
        hy[0], hy[7]);
  CK(cudaGraphExecDestroy(ge));
  CK(cudaGraphDestroy(g));

  /* unsafe calls during a global-mode capture */
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  void *p = nullptr;
  cudaError_t e = cudaMalloc(&p, 256);
  check(e == cudaErrorStreamCaptureUnsupported, "cudaMalloc during a global capture", "%s", cudaGetErrorName(e));
  (void)cudaGetLastError();
  CK(cudaStreamIsCapturing(s, &cs));
  check(cs == cudaStreamCaptureStatusInvalidated, "... invalidates the capture");
  g = nullptr;
  e = cudaStreamEndCapture(s, &g);
  check(e == cudaErrorStreamCaptureInvalidated && !g, "... and cudaStreamEndCapture fails", "%s", cudaGetErrorName(e));
  (void)cudaGetLastError();

  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  e = cudaStreamSynchronize(s);
  check(e == cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize of a capturing stream", "%s", cudaGetErrorName(e));
  e = cudaStreamEndCapture(s, &g);
  check(e == cudaErrorStreamCaptureInvalidated, "... invalidates the capture", "%s", cudaGetErrorName(e));
  (void)cudaGetLastError();

  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  float tmp;
  e = cudaMemcpy(&tmp, dx, sizeof tmp, cudaMemcpyDeviceToHost);
  check(e == cudaErrorStreamCaptureUnsupported, "a synchronous cudaMemcpy during a global capture", "%s",
        cudaGetErrorName(e));
  e = cudaStreamEndCapture(s, &g);
  check(e == cudaErrorStreamCaptureInvalidated, "... invalidates the capture", "%s", cudaGetErrorName(e));
  (void)cudaGetLastError();

  /* relaxed: cudaMalloc is allowed (the graph does not own the block) */
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
  e = cudaMalloc(&p, 256);
  check(e == cudaSuccess, "cudaMalloc during a relaxed capture", "%s", cudaGetErrorName(e));
  CK(cudaStreamEndCapture(s, &g));
  CK(cudaGraphDestroy(g));
  CK(cudaFree(p));
  /* thread-local capture, this thread switched to relaxed */
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  CK(cudaThreadExchangeStreamCaptureMode(&mode));
  e = cudaMalloc(&p, 256);
  CK(cudaThreadExchangeStreamCaptureMode(&mode));
  check(e == cudaSuccess && mode == cudaStreamCaptureModeRelaxed,
        "cudaMalloc under cudaThreadExchangeStreamCaptureMode(relaxed)", "%s", cudaGetErrorName(e));
  CK(cudaStreamEndCapture(s, &g));
  CK(cudaGraphDestroy(g));
  CK(cudaFree(p));

  e = cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal);
  check(e != cudaSuccess, "capturing the legacy stream is refused", "%s", cudaGetErrorName(e));
  (void)cudaGetLastError();
  e = cudaStreamEndCapture(s, &g);
  check(e != cudaSuccess, "cudaStreamEndCapture of a stream not capturing fails", "%s", cudaGetErrorName(e));
  (void)cudaGetLastError();

  /* events */
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a, s));
  VG_CU_LAUNCH(k_add, (n + 127) / 128, 128, 0, s)(dx, 1.0f, n);
  CK(cudaEventRecord(b, s));
  CK(cudaEventSynchronize(b));
  float ms = -1;
  CK(cudaEventElapsedTime(&ms, a, b));
  check(ms >= 0 && ms < 10000, "cudaEventElapsedTime", "%.3f ms", ms);
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));

  /* fork / join: a second stream joins the capture through an event, its work lands in
   * the graph; ending the capture with the side stream's work not waited for fails */
  cudaStream_t s2;
  CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  cudaEvent_t fk, jn;
  CK(cudaEventCreateWithFlags(&fk, cudaEventDisableTiming));
  CK(cudaEventCreateWithFlags(&jn, cudaEventDisableTiming));
  std::vector<float> ones(n, 1.0f);
  CK(cudaMemcpy(dx, ones.data(), sizeof(float) * n, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dy, ones.data(), sizeof(float) * n, cudaMemcpyHostToDevice));
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  CK(cudaEventRecord(fk, s));
  CK(cudaStreamWaitEvent(s2, fk, 0));
  CK(cudaStreamIsCapturing(s2, &cs));
  check(cs == cudaStreamCaptureStatusActive, "a stream waiting on a captured event joins the capture");
  VG_CU_LAUNCH(k_add, (n + 127) / 128, 128, 0, s)(dx, 2.0f, n);    /* branch 0: x += 2 */
  VG_CU_LAUNCH(k_add, (n + 127) / 128, 128, 0, s2)(dy, 5.0f, n);   /* branch 1: y += 5 */
  CK(cudaEventRecord(jn, s2));
  CK(cudaStreamWaitEvent(s, jn, 0));
  VG_CU_LAUNCH(k_add, (n + 127) / 128, 128, 0, s)(dy, 1.0f, n);    /* after the join: y += 1 */
  e = cudaStreamEndCapture(s, &g);
  check(e == cudaSuccess && g, "fork/join capture ends", "%s", cudaGetErrorName(e));
  CK(cudaStreamIsCapturing(s2, &cs));
  check(cs == cudaStreamCaptureStatusNone, "... and the joined stream leaves it");
  CK(cudaGraphInstantiate(&ge, g, 0));
  CK(cudaGraphLaunch(ge, s));
  CK(cudaStreamSynchronize(s));
  hx = dev_download(dx, n);
  hy = dev_download(dy, n);
  check(hx[0] == 3.0f && hy[n - 1] == 7.0f, "fork/join graph replays both branches, then the joined work", "x %g y %g",
        hx[0], hy[n - 1]);
  CK(cudaGraphExecDestroy(ge));
  CK(cudaGraphDestroy(g));
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  CK(cudaEventRecord(fk, s));
  CK(cudaStreamWaitEvent(s2, fk, 0));
  VG_CU_LAUNCH(k_add, (n + 127) / 128, 128, 0, s2)(dy, 5.0f, n);   /* never joined back */
  quiet(true);
  e = cudaStreamEndCapture(s, &g);
  quiet(false);
  check(e == cudaErrorStreamCaptureUnjoined, "ending a capture with unjoined side-stream work fails", "%s",
        cudaGetErrorName(e));
  (void)cudaGetLastError();
  CK(cudaEventDestroy(fk));
  CK(cudaEventDestroy(jn));
  CK(cudaStreamDestroy(s2));

  CK(cudaFreeHost(pin));
  CK(cudaFree(dx));
  CK(cudaFree(dy));
  cublasDestroy(h);
  CK(cudaStreamDestroy(s));
}

#ifdef VG_CUDA_EMU
static void test_emu_only() {
  /* copies must name the right sides; ranges must stay inside the allocation */
  float h[4] = {0}, *d;
  CK(cudaMalloc((void **)&d, sizeof h));
  quiet(true);
  cudaError_t e = cudaMemcpy(h, h + 1, sizeof(float), cudaMemcpyHostToDevice);
  check(e == cudaErrorInvalidValue, "cudaMemcpy HostToDevice to a host pointer is refused", "%s", cudaGetErrorName(e));
  e = cudaMemcpy(d, h, 512, cudaMemcpyHostToDevice);
  quiet(false);
  check(e == cudaErrorInvalidValue, "cudaMemcpy past the end of an allocation is refused", "%s", cudaGetErrorName(e));
  (void)cudaGetLastError();
  /* fresh device memory is poisoned (not zero) */
  unsigned u;
  CK(cudaMemcpy(&u, d, 4, cudaMemcpyDeviceToHost));
  check(u == 0xffffffffu, "fresh cudaMalloc memory is filled with 0xff");
  /* work waits for a synchronization: a pinned buffer read too early holds old data */
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  float *pin;
  CK(cudaMallocHost((void **)&pin, 4 * sizeof(float)));
  pin[0] = -1.0f;
  CK(cudaMemsetAsync(d, 0, 4 * sizeof(float), st));
  CK(cudaMemcpyAsync(pin, d, 4 * sizeof(float), cudaMemcpyDeviceToHost, st));
  float before = pin[0];
  CK(cudaStreamSynchronize(st));
  check(before == -1.0f && pin[0] == 0.0f, "async work into pinned memory lands at the synchronization");
  CK(cudaFreeHost(pin));
  CK(cudaStreamDestroy(st));
  CK(cudaFree(d));
}
#endif

static void test_trap() {
  int *d;
  CK(cudaMalloc((void **)&d, 64 * sizeof(int)));
  quiet(true);
  VG_CU_LAUNCH(k_trap, 1, 32, 0, 0)(d);
  cudaError_t e = cudaDeviceSynchronize();
  quiet(false);
  cudaError_t e2 = cudaMemset(d, 0, 4);
  check((e == cudaErrorLaunchFailure || e == cudaErrorIllegalInstruction) && e2 == e,
        "__trap(): a sticky launch failure", "%s, then %s", cudaGetErrorName(e), cudaGetErrorName(e2));
}

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    printf("SKIP emu: no CUDA device\n0 passed, 0 failed\n");
    return 0;
  }
  test_device();
  test_index();
  test_barriers();
  test_warp();
  test_atomics();
  test_config_errors();
  test_gemm();
  test_capture();
#ifdef VG_CUDA_EMU
  test_emu_only();
#endif
  test_trap();   /* last: the error is sticky */
  printf("%d passed, %d failed\n", npass, nfail);
  return nfail != 0;
}
