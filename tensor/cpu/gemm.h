/* gemm.h — single-precision GEMM for the CPU backend (internal to tensor/; the op layer
 * and the conv kernels call it on raw row-major buffers).
 *
 *   // C[M,N] = alpha * op(A) * op(B) + beta * C,  op(X) = trans ? X^T : X
 *   vg_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);   // C = A * B^T
 *
 * A is M x K (K x M when trans_a) with row stride lda; B is K x N (N x K when trans_b)
 * with row stride ldb; C is M x N with row stride ldc. beta == 0 means C is not read
 * (NaN garbage is overwritten); K == 0 or alpha == 0 gives C = beta * C.
 *
 * vg_sgemm is BLIS-style: A is packed once into MC x KC blocks shared by the pool's
 * threads, each task packs a KC x NG panel of B into its thread's scratch and runs the
 * register-blocked micro-kernel (6x16 AVX2+FMA, 12x32 AVX-512, 4x8 scalar; picked from
 * vg_cpu_isa() on every call). Threads split C into tiles only, and the K blocking
 * depends on K and the ISA alone, so each C element is summed in the same order for
 * any thread count: results are bit-identical for 1 or many threads (they differ
 * between ISAs, and from vg_sgemm_ref, by rounding). vg_sgemm_ref is the plain triple
 * loop (double accumulator), the reference the tests compare with.
 *
 * vg_gemm_run is the same driver with caller-supplied packing, for operands that are not
 * strided matrices (conv packs image patches straight into the B panel, no im2col). */
#ifndef VG_GEMM_H
#define VG_GEMM_H
#include <stddef.h>
#include <stdint.h>

void vg_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc);
void vg_sgemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                  float *C, int64_t ldc);

/* A packer fills slivers of a matrix P (rows x0.., columns k0..) in micro-kernel order:
 *   dst[(s*kc + k)*w + t] = P[x0 + s*w + t][k0 + k]   for s < ceil(xn/w), k < kc, t < w
 * with zeros where x0 + s*w + t >= x0 + xn. For the A operand P = op(A) (x = row i of C);
 * for the B operand P = op(B)^T (x = column j of C). */
typedef void (*vg_gemm_pack_fn)(const void *ctx, int64_t x0, int64_t xn, int64_t k0,
                                int64_t kc, int w, float *dst);

/* The strided-matrix packer: P[x][k] = p[x*sx + k*sk]. */
typedef struct { const float *p; int64_t sx, sk; } vg_gemm_strided;
void vg_gemm_pack_strided(const void *ctx, int64_t x0, int64_t xn, int64_t k0, int64_t kc,
                          int w, float *dst);

typedef struct {
  int64_t M, N, K;
  int64_t k_begin;               /* packers see k in [k_begin, k_begin + K) */
  vg_gemm_pack_fn pack_a; const void *a_ctx;
  vg_gemm_pack_fn pack_b; const void *b_ctx;
  float alpha, beta;
  float *C; int64_t ldc;
  const float *row_bias;         /* nullable: C[i][j] += row_bias[i] (once) */
  const float *a_packed;         /* nullable: A prepacked by vg_gemm_pack_a (pack_a unused) */
  int relu;                      /* C = relu(C) at the end, per tile while it is in cache (NaN kept) */
  const float *b_packed;         /* nullable: B prepacked by vg_gemm_pack_b (pack_b unused) */
  /* nullable: called once per finished m x n tile of C (rows i0.., columns j0..; after the
   * last K block, after relu), while the tile is in cache: a fused output step (column
   * bias, activation). Also called (on whole rows) when K == 0 or alpha == 0. */
  void (*epi)(const void *epi_ctx, float *c, int64_t ldc, int64_t i0, int64_t j0, int m, int n);
  const void *epi_ctx;
} vg_gemm_problem;

/* Runs the problem on the pool (or serially when called from inside a pool task). */
void vg_gemm_run(const vg_gemm_problem *p);

/* Prepacked A, for an A operand reused across calls (conv weights over a batch or over
 * pixel chunks):
 *   float *pa = malloc(vg_gemm_packed_a_floats(M, K) * sizeof(float));
 *   vg_gemm_pack_a(&p, pa);              // packs p's A (pack_a, a_ctx, M, K, k_begin), on the pool
 *   p.a_packed = pa; vg_gemm_run(&p);    // any N, B, C, alpha, beta, bias: no A packing
 * Same results as packing inside vg_gemm_run. The layout depends on M, K and the ISA
 * in use (a header in the buffer records it; vg_gemm_run asserts it matches): pack again
 * after vg_cpu_set_isa. */
size_t vg_gemm_packed_a_floats(int64_t M, int64_t K);
void vg_gemm_pack_a(const vg_gemm_problem *p, float *dst);
/* In a prepacked A with one K block (K <= the ISA's block, 512 for AVX-512; asserted): the
 * mr x K sliver of rows i.. (i a multiple of mr), a[k*mr + r]. */
const float *vg_gemm_packed_a_sliver(const float *pa, int64_t i);

/* The order to take `count` tasks that write neighbouring, line-sharing parts of one
 * output in: task t runs as (t * step) % count. 1 when count < 4, else a step coprime
 * with count of about count / 2, so the tasks running together lie far apart. */
int64_t vg_gemm_spread_step(int64_t count);

/* Prepacked B, for a B operand reused across calls (a Linear's weight at inference, K^T
 * of an attention head over its row blocks):
 *   float *pb = aligned_alloc(64, ...vg_gemm_packed_b_floats(N, K) * sizeof(float));  // 64-byte aligned
 *   vg_gemm_pack_b(&p, pb);              // packs p's B (pack_b, b_ctx, N, K, k_begin)
 *   p.b_packed = pb; vg_gemm_run(&p);    // any M, A, C, alpha, beta, epilogue: no B packing
 * Same results as packing inside vg_gemm_run (every C element is summed in the same order).
 * The layout (K blocks of nr-wide slivers over all of N) depends on N, K and the ISA in
 * use, not on the thread count (a header records it; vg_gemm_run asserts it matches):
 * pack again after vg_cpu_set_isa. vg_gemm_pack_b runs serially inside a pool task. */
size_t vg_gemm_packed_b_floats(int64_t N, int64_t K);
void vg_gemm_pack_b(const vg_gemm_problem *p, float *dst);
/* Whether a buffer from vg_gemm_pack_b fits (N, K) and the ISA in use now. */
int vg_gemm_packed_b_fits(const float *pb, int64_t N, int64_t K);

/* Micro-tile of the ISA in use (what the packers' w will be). */
void vg_gemm_tile(int *mr, int *nr);

/* Testing hook: makes the scalar path use an mr x nr tile (mr <= 16, nr <= 32; 0, 0 =
 * the default 4 x 8), so the blocking of other ISAs can be exercised on any CPU. */
void vg_gemm_set_scalar_tile(int mr, int nr);
#endif
