/* isa.h — which SIMD path the CPU kernels take (tensor/cpu/isa.c; API in tensor/parallel.h).
 * Tests force VG_ISA_SCALAR to compare each SIMD kernel with its scalar reference path.
 * Kernels compiled for a newer ISA use __attribute__((target("avx2,fma"))) /
 * target("avx512f,avx512vl,avx512bw,avx512dq") so the library itself builds for baseline
 * x86-64. */
#ifndef VG_ISA_H
#define VG_ISA_H
#include "tensor/parallel.h"
#endif
