/* stream.cu — the stream and the concurrent branches (fork / branch / join, with their
 * side streams and cuBLAS handles), synchronization, event timers and CUDA graphs (stream
 * capture + replay, each graph with its own allocator pool: see alloc.cu). */
#include "tensor/cuda/rt.h"
#include <string.h>

namespace vg_rt {
vg_cuda_graph *all_graphs;
vg_cuda_graph *cap;
vg_cuda_graph *deferred_free;   /* vg_cuda_graph_free called during another capture */
char cap_msg[512];
int cap_refused;
int cur_branch;    /* 0: the main stream; k: side[k - 1] */
bool forked;
unsigned fork_gen;   /* counts forks */
}  // namespace vg_rt

cudaStream_t vg_cuda_stream(void) { return cur_branch ? side[cur_branch - 1] : stream; }
cublasHandle_t vg_cuda_blas(void) { return cur_branch ? side_blas[cur_branch - 1] : blas; }
/* no per-launch synchronize while capturing (it would invalidate the capture) */
bool vg_cuda_sync_each(void) { return sync_each != 0 && !cap; }
bool vg_cuda_capturing(void) { return cap != NULL; }

void vg_rt::capture_refuse(const char *fmt, const char *detail) {
  if (cap_refused) return;
  cap_refused = 1;
  snprintf(cap_msg, sizeof cap_msg, fmt, detail);
}

void vg_cuda_sync(void) {
  if (forked) VG_ABORT("a synchronizing call between vg_cuda_fork and vg_cuda_join (join first)");
  VG_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void vg_cuda_synchronize(void) {
  if (init_state != 1) return;
  if (cap) VG_ABORT("vg_cuda_synchronize during a graph capture (the captured work has not run; end the capture first)");
  vg_cuda_sync();
}

void vg_cuda_fork(void) {
  if (init_state != 1 || !side_on) return;
  if (forked) VG_ABORT("vg_cuda_fork: already forked (branches do not nest)");
  VG_CUDA_CHECK(cudaEventRecord(fork_ev, stream));
  for (int k = 0; k < VG_CU_SIDE; k++) VG_CUDA_CHECK(cudaStreamWaitEvent(side[k], fork_ev, 0));
  pthread_mutex_lock(&lock);
  fork_gen++;
  forked = true;
  pthread_mutex_unlock(&lock);
  cur_branch = 0;
}

void vg_cuda_branch(int k) {
  if (init_state != 1 || !side_on) return;
  if (!forked) VG_ABORT("vg_cuda_branch(%d) outside vg_cuda_fork / vg_cuda_join", k);
  if (k < 0 || k > VG_CU_SIDE) VG_ABORT("vg_cuda_branch(%d): branches are 0..%d", k, VG_CU_SIDE);
  cur_branch = k;
}

void vg_cuda_join(void) {
  if (init_state != 1 || !side_on || !forked) return;
  for (int k = 0; k < VG_CU_SIDE; k++) {
    VG_CUDA_CHECK(cudaEventRecord(join_ev[k], side[k]));
    VG_CUDA_CHECK(cudaStreamWaitEvent(stream, join_ev[k], 0));
  }
  pthread_mutex_lock(&lock);
  forked = false;
  cur_branch = 0;
  release_held();
  pthread_mutex_unlock(&lock);
}

bool vg_cuda_branches(void) { return vg_cuda_init() == VG_OK && side_on; }

/* ---- timers ---- */
struct vg_cuda_timer { cudaEvent_t a, b; };

vg_cuda_timer *vg_cuda_timer_new(void) {
  if (vg_cuda_init() != VG_OK) return NULL;
  vg_cuda_timer *t = (vg_cuda_timer *)calloc(1, sizeof *t);
  if (!t) VG_ABORT("out of host memory");
  VG_CUDA_CHECK(cudaEventCreate(&t->a));
  VG_CUDA_CHECK(cudaEventCreate(&t->b));
  return t;
}

void vg_cuda_timer_start(vg_cuda_timer *t) { if (t) VG_CUDA_CHECK(cudaEventRecord(t->a, stream)); }
void vg_cuda_timer_stop(vg_cuda_timer *t) { if (t) VG_CUDA_CHECK(cudaEventRecord(t->b, stream)); }

float vg_cuda_timer_elapsed_ms(vg_cuda_timer *t) {
  if (!t) {
    vg_fail(VG_ERR_ARG, "vg_cuda_timer_elapsed_ms: NULL timer");
    return -1.0f;
  }
  float ms = -1.0f;
  cudaError_t e = cudaEventSynchronize(t->b);
  if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, t->a, t->b);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    vg_fail(VG_ERR_DEVICE, "cuda timer: %s (were start and stop both recorded, outside a capture?)",
            cudaGetErrorString(e));
    return -1.0f;
  }
  return ms;
}

void vg_cuda_timer_free(vg_cuda_timer *t) {
  if (!t) return;
  cudaEventDestroy(t->a);
  cudaEventDestroy(t->b);
  free(t);
}

/* ---- graphs ---- */
static void graph_destroy(vg_cuda_graph *g) {   /* stream already synchronized (or nothing ran) */
  if (g->exec) cudaGraphExecDestroy(g->exec);
  if (g->graph) cudaGraphDestroy(g->graph);
  pthread_mutex_lock(&lock);
  pool_release(&g->pool);
  vg_cuda_graph **pp = &all_graphs;
  while (*pp && *pp != g) pp = &(*pp)->next_all;
  if (*pp) *pp = g->next_all;
  pthread_mutex_unlock(&lock);
  free(g);
}

vg_status vg_cuda_graph_begin(void) {
  vg_status st = vg_cuda_init();
  if (st != VG_OK) return st;
  if (cap) return vg_fail(VG_ERR_ARG, "vg_cuda_graph_begin: a capture is already running (graphs do not nest)");
  vg_cuda_graph *g = (vg_cuda_graph *)calloc(1, sizeof *g);
  if (!g) VG_ABORT("out of host memory");
  /* thread-local: this thread may not make unsafe calls (raw_malloc relaxes around
   * cudaMalloc); other threads are not affected */
  cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    free(g);
    return vg_fail(VG_ERR_DEVICE, "vg_cuda_graph_begin: cudaStreamBeginCapture failed: %s", cudaGetErrorString(e));
  }
  pthread_mutex_lock(&lock);
  g->next_all = all_graphs;
  all_graphs = g;
  cap_refused = 0;
  cap_msg[0] = 0;
  cap = g;
  pthread_mutex_unlock(&lock);
  return VG_OK;
}

vg_cuda_graph *vg_cuda_graph_end(void) {
  if (forked) VG_ABORT("vg_cuda_graph_end between vg_cuda_fork and vg_cuda_join (join first)");
  if (!cap) {
    vg_fail(VG_ERR_ARG, "vg_cuda_graph_end: no capture running (vg_cuda_graph_begin first)");
    return NULL;
  }
  vg_cuda_graph *g = cap;
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(stream, &graph);
  pthread_mutex_lock(&lock);
  cap = NULL;
  pthread_mutex_unlock(&lock);
  g->graph = graph;
  /* graphs whose free waited for this capture to end */
  while (deferred_free) {
    vg_cuda_graph *d = deferred_free;
    deferred_free = d->next_deferred;
    VG_CUDA_CHECK(cudaStreamSynchronize(stream));
    graph_destroy(d);
  }
  if (cap_refused || e != cudaSuccess || !graph) {
    if (e != cudaSuccess) (void)cudaGetLastError();
    if (cap_refused) vg_fail(VG_ERR_UNSUPPORTED, "%s", cap_msg);
    else vg_fail(VG_ERR_DEVICE, "vg_cuda_graph_end: the capture was invalidated: %s (something synchronized "
                 "or used another stream during the capture)", cudaGetErrorString(e));
    graph_destroy(g);
    return NULL;
  }
  e = cudaGraphInstantiate(&g->exec, graph, 0);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    g->exec = NULL;
    vg_fail(VG_ERR_DEVICE, "vg_cuda_graph_end: cudaGraphInstantiate failed: %s", cudaGetErrorString(e));
    graph_destroy(g);
    return NULL;
  }
  return g;
}

vg_status vg_cuda_graph_replay(vg_cuda_graph *g) {
  if (!g) return vg_fail(VG_ERR_ARG, "vg_cuda_graph_replay: NULL graph");
  if (cap) return vg_fail(VG_ERR_ARG, "vg_cuda_graph_replay: not during a capture");
  cudaError_t e = cudaGraphLaunch(g->exec, stream);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return vg_fail(VG_ERR_DEVICE, "vg_cuda_graph_replay: cudaGraphLaunch failed: %s", cudaGetErrorString(e));
  }
  if (sync_each) VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  return VG_OK;
}

void vg_cuda_graph_free(vg_cuda_graph *g) {
  if (!g) return;
  if (cap) { /* cannot wait for the stream now: freed when the running capture ends */
    g->next_deferred = deferred_free;
    deferred_free = g;
    return;
  }
  /* replays in flight finish before the pool's blocks go back to the cache */
  VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  graph_destroy(g);
}
