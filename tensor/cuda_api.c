/* cuda_api.c — the CUDA runtime API of tensor.h (synchronize, pinned memory, memory
 * statistics, timers, graphs) in a build without CUDA: every function fails with
 * "built without CUDA" in vg_last_error() (NULL / -1 / an error status; the void ones
 * do nothing), and vg_cuda_host_alloc is plain malloc. With VG_WITH_CUDA they live in
 * tensor/cuda/ (alloc.cu, stream.cu, backend.cu). */
#include "tensor/internal.h"
#include <stdio.h>
#include <string.h>

void vg_cuda_arch_message(char *buf, size_t cap, const char *gpu, int cc_major, int cc_minor, const char *built) {
  if (!cap) return;
  int cc = 10 * cc_major + cc_minor;
  snprintf(buf, cap,
           "this vigil has no GPU code for the %s (compute capability %d.%d, sm_%d): it was built with "
           "CUDA_ARCH=\"%s\" (machine code for those and PTX of the last, which runs on newer GPUs only); "
           "rebuild with `make CUDA=1 CUDA_ARCH=%d` (or add %d to the list) using a CUDA Toolkit that supports sm_%d "
           "(`nvcc --list-gpu-code` lists what it supports; CUDA 13 starts at sm_75, CUDA 12 at sm_50)",
           gpu && gpu[0] ? gpu : "GPU", cc_major, cc_minor, cc, built && built[0] ? built : "?", cc, cc, cc);
}

#ifndef VG_WITH_CUDA
#define NO_CUDA "cuda: built without CUDA (rebuild with make CUDA=1)"

vg_status vg_cuda_device_info(vg_cuda_info *out) {
  if (out) memset(out, 0, sizeof *out);
  return vg_fail(VG_ERR_DEVICE, NO_CUDA);
}
const char *vg_cuda_built_archs(void) { return ""; }

void vg_cuda_synchronize(void) {}
vg_status vg_cuda_set_tf32(bool on) {
  (void)on;
  return vg_fail(VG_ERR_DEVICE, NO_CUDA);
}
bool vg_cuda_tf32(void) { return false; }
bool vg_cuda_capturing(void) { return false; }
void vg_cuda_fork(void) {}
void vg_cuda_branch(int k) { (void)k; }
void vg_cuda_join(void) {}
bool vg_cuda_branches(void) { return false; }
const char *vg_cuda_device_name(void) {
  vg_fail(VG_ERR_DEVICE, NO_CUDA);
  return NULL;
}
void *vg_cuda_host_alloc(size_t nbytes) { return malloc(nbytes ? nbytes : 1); }
void vg_cuda_host_free(void *p) { free(p); }

vg_status vg_cuda_mem_stats_get(vg_cuda_mem_stats *s) {
  if (s) memset(s, 0, sizeof *s);
  return vg_fail(VG_ERR_DEVICE, NO_CUDA);
}
void vg_cuda_reset_peak(void) {}
void vg_cuda_empty_cache(void) {}

vg_cuda_timer *vg_cuda_timer_new(void) {
  vg_fail(VG_ERR_DEVICE, NO_CUDA);
  return NULL;
}
void vg_cuda_timer_start(vg_cuda_timer *t) { (void)t; }
void vg_cuda_timer_stop(vg_cuda_timer *t) { (void)t; }
float vg_cuda_timer_elapsed_ms(vg_cuda_timer *t) {
  (void)t;
  vg_fail(VG_ERR_DEVICE, NO_CUDA);
  return -1.0f;
}
void vg_cuda_timer_free(vg_cuda_timer *t) { (void)t; }

vg_status vg_cuda_graph_begin(void) { return vg_fail(VG_ERR_DEVICE, NO_CUDA); }
vg_cuda_graph *vg_cuda_graph_end(void) {
  vg_fail(VG_ERR_DEVICE, NO_CUDA);
  return NULL;
}
vg_status vg_cuda_graph_replay(vg_cuda_graph *g) {
  (void)g;
  return vg_fail(VG_ERR_DEVICE, NO_CUDA);
}
void vg_cuda_graph_free(vg_cuda_graph *g) { (void)g; }
#endif
