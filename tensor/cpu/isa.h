/* isa.h — which SIMD path the CPU kernels take (tensor/cpu/isa.c; API in tensor/parallel.h).
 * Tests force VG_ISA_SCALAR to compare each SIMD kernel with its scalar reference path.
 * Kernels compiled for a newer ISA use __attribute__((target("avx2,fma"))) /
 * target("avx512f,avx512vl,avx512bw,avx512dq") so the library itself builds for baseline
 * x86-64. */
#ifndef VG_ISA_H
#define VG_ISA_H
#include "tensor/parallel.h"

/* An on/off switch of a CPU kernel path (Winograd, direct depthwise, direct few-channel
 * conv): the API's setting when there is one, else its environment variable's (off for 0,
 * off, false or no; read once), else on.
 *   static vg_cpu_switch sw = VG_CPU_SWITCH_INIT("VIGIL_WINOGRAD");
 *   if (vg_cpu_switch_on(&sw)) ...;   vg_cpu_switch_set(&sw, 0);   // -1: the environment's again */
typedef struct {
  _Atomic int set, env;   /* -1: not set / not read yet */
  const char *var;
} vg_cpu_switch;
#define VG_CPU_SWITCH_INIT(VAR) {-1, -1, VAR}
void vg_cpu_switch_set(vg_cpu_switch *s, int on);
int vg_cpu_switch_on(vg_cpu_switch *s);
#endif
