/* The AVX-512 copy of the elementwise row kernels. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq")
/* -O2's very-cheap cost model leaves these loops scalar (the runtime alias check between
 * o and x is "too expensive"); the dynamic model vectorizes them. Elementwise only, no
 * reductions and no contraction (-std=c11 keeps -ffp-contract=off): the same values. */
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
#define VG_VEC_W 16
#define VG_ROW(name) vg_row_##name##_avx512
#include "tensor/cpu/eltwise_rows.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
