/* optim.cu — the optimizer updates on the GPU: one thread per element running the
 * element functions of tensor/optim_upd.h (the CPU's code), so CPU and CUDA training steps
 * give the same bits (--fmad=false keeps the unfused products unfused). */
#include "tensor/cuda/cuda.h"
#include "tensor/optim_upd.h"

#define THREADS 256

__global__ void k_sgd(vg_upd u) { VG_CU_GRID_LOOP(i, u.n) vg_sgd_elem(&u, i); }
__global__ void k_adam(vg_upd u) { VG_CU_GRID_LOOP(i, u.n) vg_adam_elem(&u, i); }

void vg_cuda_sgd_update(const vg_upd *u) {
  if (u->n <= 0) return;
  VG_CU_LAUNCH(k_sgd, vg_cu_blocks(u->n, THREADS), THREADS, 0, vg_cuda_stream())(*u);
  VG_CUDA_LAUNCHED("sgd update");
}

void vg_cuda_adam_update(const vg_upd *u) {
  if (u->n <= 0) return;
  VG_CU_LAUNCH(k_adam, vg_cu_blocks(u->n, THREADS), THREADS, 0, vg_cuda_stream())(*u);
  VG_CUDA_LAUNCHED("adam update");
}
