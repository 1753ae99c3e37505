/* optim.cu — the optimizer updates on the GPU (the backend table's optim_update): one
 * thread per element running the element functions of tensor/optim_upd.h (the CPU's code),
 * so CPU and CUDA training steps give the same bits (--fmad=false keeps the unfused
 * products unfused). One stream-ordered launch per parameter, in order. */
#include "tensor/cuda/cuda.h"
#include "tensor/optim_upd.h"

#define THREADS 256

__global__ void k_sgd(vg_upd u) { VG_CU_GRID_LOOP(i, u.n) vg_sgd_elem(&u, i); }
__global__ void k_adam(vg_upd u) { VG_CU_GRID_LOOP(i, u.n) vg_adam_elem(&u, i); }

static void sgd_update(const vg_upd *u) {
  if (u->n <= 0) return;
  VG_CU_LAUNCH(k_sgd, vg_cu_blocks(u->n, THREADS), THREADS, 0, vg_cuda_stream())(*u);
  VG_CUDA_LAUNCHED("sgd update");
}

static void adam_update(const vg_upd *u) {
  if (u->n <= 0) return;
  VG_CU_LAUNCH(k_adam, vg_cu_blocks(u->n, THREADS), THREADS, 0, vg_cuda_stream())(*u);
  VG_CUDA_LAUNCHED("adam update");
}

void vg_cu_optim_update(const vg_optim_update *u) {
  for (int k = 0; k < u->n; k++) {
    switch (u->kind) {
      case VG_UPD_SGD: sgd_update(&u->ups[k]); break;
      case VG_UPD_ADAM: adam_update(&u->ups[k]); break;
    }
  }
}
