/* scratch.h — per-thread scratch buffers for the CPU kernels (internal to tensor/).
 *
 *   float *bp = vg_cpu_scratch(VG_SCRATCH_GEMM_B, kc * nc);   // 64-byte aligned
 *
 * Each thread owns one buffer per slot, grown on demand (contents are not kept when
 * it grows) and reused by later calls, so kernels don't malloc in steady state. A
 * buffer belongs to the calling thread: a kernel that shares one with the pool's
 * workers (a packed GEMM panel) gets it on the caller and hands the pointer down.
 * Buffers are freed when their thread exits, stay reachable from a global list until
 * then (no LSan reports), and vg_cpu_scratch_release() frees the caller's now.
 * Out of memory aborts: the sizes asked for are bounded by the kernels' blocking. */
#ifndef VG_SCRATCH_H
#define VG_SCRATCH_H
#include <stddef.h>

typedef enum {
  VG_SCRATCH_GEMM_A,     /* packed A block (per thread) */
  VG_SCRATCH_GEMM_B,     /* packed B panel (caller's, shared with workers) */
  VG_SCRATCH_GEMM_PART,  /* K-split partial products */
  VG_SCRATCH_GEMM_BP,    /* B packed whole for M-split tasks (caller's, shared with workers) */
  VG_SCRATCH_CONV_COL,   /* im2col chunk (bwd_data) */
  VG_SCRATCH_CONV_W,     /* rearranged weights */
  VG_SCRATCH_CONV_WP,    /* rearranged weights, GEMM-packed (Winograd's 36 A operands) */
  VG_SCRATCH_CONV_PAD,   /* padded input planes (direct conv; caller's, shared with workers) */
  VG_SCRATCH_COUNT
} vg_scratch_slot;

float *vg_cpu_scratch(vg_scratch_slot slot, size_t nfloats);
void vg_cpu_scratch_release(void);
#endif
