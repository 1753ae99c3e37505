/* isa.h — which SIMD path the CPU kernels take (internal to tensor/).
 * Chosen once at run time from the CPU (AVX-512F → avx512, AVX2+FMA → avx2, else
 * scalar); VIGIL_ISA=scalar|avx2|avx512 or vg_cpu_set_isa() overrides it (never above
 * what the CPU has). Tests force VG_ISA_SCALAR to compare each SIMD kernel with its
 * scalar reference path. Kernels compiled for a newer ISA use
 * __attribute__((target("avx2,fma"))) / target("avx512f,avx512vl,avx512bw,avx512dq")
 * so the library itself builds for baseline x86-64. */
#ifndef VG_ISA_H
#define VG_ISA_H
typedef enum { VG_ISA_SCALAR = 0, VG_ISA_AVX2 = 1, VG_ISA_AVX512 = 2 } vg_isa;
vg_isa vg_cpu_isa(void);              /* the path in use now */
vg_isa vg_cpu_isa_max(void);          /* the best this CPU supports */
void vg_cpu_set_isa(vg_isa isa);      /* clamped to vg_cpu_isa_max() */
const char *vg_isa_name(vg_isa isa);
#endif
