/* The AVX2+FMA copy of the elementwise row kernels. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#define VG_ROW(name) vg_row_##name##_avx2
#include "tensor/cpu/eltwise_rows.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
