/* rt.h — the CUDA runtime's internal state, shared by its four files (internal to them):
 *   backend.cu  device init and exit, the cuBLAS handles, the kernel table, device queries
 *   alloc.cu    the caching allocator (with per-graph pools), pinned host memory, statistics
 *   stream.cu   the stream, concurrent branches (fork / branch / join), timers, CUDA graphs
 *   copy.cu     host <-> device copies, contiguous staging, strided iteration setup
 * The shared variables live in namespace vg_rt (C++: the .cu files), so their names stay
 * out of the library's C symbol space. */
#ifndef VG_CUDA_RT_H
#define VG_CUDA_RT_H
#include "tensor/cuda/cuda.h"
#include <pthread.h>

/* ---- capture state ----
 * cap: the graph being captured (NULL when none). While it is set, vg_cuda_alloc takes
 * blocks for cap's pool and vg_cuda_free returns pool blocks to it (see the allocator).
 * Host <-> device copies that would wait for the stream are refused: the first refusal
 * is kept in cap_msg and vg_cuda_graph_end then fails with it. */
typedef struct blk { struct blk *next; void *p; } blk;
#define VG_NBUCKET 48
typedef struct gpool {
  blk *free_lists[VG_NBUCKET];   /* the pool's free blocks (reserved for the graph's replays) */
  size_t bytes_free;
} gpool;
struct vg_cuda_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  gpool pool;
  struct vg_cuda_graph *next_deferred;
  struct vg_cuda_graph *next_all;   /* every graph alive, so exit can release the pools */
};

/* ---- concurrent branches (vg_cuda_fork / vg_cuda_branch / vg_cuda_join) ----
 * Side streams 1..VG_CU_SIDE, each with its own cuBLAS handle and workspace (concurrent
 * GEMMs must not share one), made at init unless VIGIL_CUDA_BRANCHES=0. Between fork and
 * join the current branch picks the stream ops and GEMMs go to, and freed blocks are held
 * back until the join: a block freed on one stream could otherwise be handed to another
 * stream's work while kernels of the first still use it. */
#define VG_CU_SIDE 3
#define VG_CU_BLAS_WS ((size_t)32 << 20)   /* cuBLAS workspace per handle, as torch's on sm_90 */
/* A block freed while forked: br = the branch tag it was allocated with when that was
 * this branch during this fork (branch k may reuse it at once: its own stream orders the
 * reuse), else 0 (any branch might still read it: reusable after the join only). */
typedef struct { void *p; int b; struct gpool *pool; int br; } held_blk;

namespace vg_rt {
/* backend.cu: device state (made by vg_cuda_init) */
extern pthread_mutex_t lock;   /* guards the allocator tables, init and the capture switch */
extern int init_state;                 /* 0 untried, 1 ok, -1 failed */
extern cudaStream_t stream;
extern cublasHandle_t blas;
extern int sync_each;
extern bool tf32_on;   /* f32 GEMMs on TF32 tensor cores (VIGIL_TF32=1 / vg_cuda_set_tf32) */
extern cudaStream_t side[VG_CU_SIDE];
extern cublasHandle_t side_blas[VG_CU_SIDE];
extern void *blas_ws[VG_CU_SIDE + 1];
extern cudaEvent_t fork_ev, join_ev[VG_CU_SIDE];
extern bool side_on;      /* side streams made (VIGIL_CUDA_BRANCHES != 0) */
/* stream.cu: the capture and the branches */
extern vg_cuda_graph *all_graphs;
extern vg_cuda_graph *cap;
extern vg_cuda_graph *deferred_free;   /* vg_cuda_graph_free called during another capture */
extern char cap_msg[512];
extern int cap_refused;
extern int cur_branch;    /* 0: the main stream; k: side[k - 1] */
extern bool forked;
extern unsigned fork_gen;   /* counts forks */
void capture_refuse(const char *fmt, const char *detail);
/* alloc.cu (the allocator functions below take the lock themselves only where noted there) */
void release_cached(void);
void pool_release(gpool *pool);
void release_held(void);
bool is_pinned(const void *p, size_t n);
void alloc_release_all(void);   /* at exit: every block, pinned buffer and table back */
/* copy.cu: the COPY op (host <-> device and device copies) */
void cuda_copy(const vg_opcall *c);
/* the tag of the current branch in the current fork (0 when not forked) */
static inline int branch_tag(void) { return forked ? (int)((fork_gen & 0xffffff) * 8 + (unsigned)cur_branch + 1) : 0; }
}  // namespace vg_rt
using namespace vg_rt;
#endif
