/* parallel.h — the CPU runtime's public knobs: the thread pool (base/threadpool.h, included
 * here) and the SIMD path (tensor/cpu/isa.c).
 *
 *   vg_set_num_threads(4);                       // or VIGIL_THREADS=4
 *   printf("%s\n", vg_isa_name(vg_cpu_isa())); // "avx512"
 *
 * The SIMD path is chosen once at run time from the CPU (AVX-512F -> avx512, AVX2+FMA ->
 * avx2, else scalar); VIGIL_ISA=scalar|avx2|avx512 or vg_cpu_set_isa() overrides it (never
 * above what the CPU has). */
#ifndef VG_PARALLEL_H
#define VG_PARALLEL_H
#include "base/threadpool.h"

typedef enum { VG_ISA_SCALAR = 0, VG_ISA_AVX2 = 1, VG_ISA_AVX512 = 2 } vg_isa;
vg_isa vg_cpu_isa(void);              /* the path in use now */
vg_isa vg_cpu_isa_max(void);          /* the best this CPU supports */
void vg_cpu_set_isa(vg_isa isa);      /* clamped to vg_cpu_isa_max() */
const char *vg_isa_name(vg_isa isa);
/* Winograd F(4x4,3x3) for 3x3 and F(3x3,4x4) for 4x4 stride-1 convolutions
 * (tensor/cpu/winograd.c): on by default;
 * VIGIL_WINOGRAD=0 or vg_cpu_set_winograd(0) turns it off (the GEMM path: bit-identical to
 * builds without it), vg_cpu_set_winograd(-1) goes back to the environment's choice. */
void vg_cpu_set_winograd(int on);
int vg_cpu_winograd(void);           /* 1 when on */
#endif
