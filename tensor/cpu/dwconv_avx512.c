/* The AVX-512 copy of the depthwise-convolution row kernels (tensor/cpu/dwconv_kern.h). */
#include "tensor/cpu/dwconv.h"
#include <string.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq")
/* Elementwise loops only, no reductions and no contraction (-std=c11 keeps
 * -ffp-contract=off): every copy computes the same values. */
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
#define DK(name) vg_##name##_avx512
#include "tensor/cpu/dwconv_kern.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
