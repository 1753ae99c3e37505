/* The AVX2 copy of the depthwise-convolution row kernels (tensor/cpu/dwconv_kern.h). */
#include "tensor/cpu/dwconv.h"
#include <string.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
/* Elementwise loops only, no reductions and no contraction (-std=c11 keeps
 * -ffp-contract=off): every copy computes the same values. */
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
#define DK(name) vg_##name##_avx2
#include "tensor/cpu/dwconv_kern.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
