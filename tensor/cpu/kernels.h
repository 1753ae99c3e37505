/* kernels.h — the CPU backend's op families (internal). Each takes the op call as
 * the front-end filled it (see the parameter comments in tensor/ops.def and in the
 * front-end that builds the call). */
#ifndef VG_CPU_KERNELS_H
#define VG_CPU_KERNELS_H
#include "tensor/internal.h"

void vg_cpu_eltwise(const vg_opcall *c);   /* unary, binary, where, copy, fill, arange */
void vg_cpu_reduce(const vg_opcall *c);    /* sum, amax, amin, argmax */
void vg_cpu_matmul(const vg_opcall *c);
void vg_cpu_conv(const vg_opcall *c);      /* conv2d and its two backward ops */
void vg_cpu_pool(const vg_opcall *c);      /* avg/max/adaptive pooling and backward */
void vg_cpu_resample(const vg_opcall *c);  /* bilinear interpolation and backward */
void vg_cpu_layout(const vg_opcall *c);    /* unfold, fold, pad, concat */
void vg_cpu_index(const vg_opcall *c);     /* gather, scatter_add, index_select, index_add */
void vg_cpu_select(const vg_opcall *c);    /* kthvalue, sort */
void vg_cpu_random(const vg_opcall *c);    /* rand_uniform, rand_normal */

/* element load/store in any dtype (for copies and casts) */
double vg_load_elem(const void *p, vg_dtype dt);
void vg_store_elem(void *p, vg_dtype dt, double v);
#endif
