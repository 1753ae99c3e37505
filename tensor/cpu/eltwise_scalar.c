/* The scalar reference copy of the elementwise row kernels (auto-vectorization off). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-vectorize")
#endif
#define VG_ROW(name) vg_row_##name##_scalar
#include "tensor/cpu/eltwise_rows.h"
