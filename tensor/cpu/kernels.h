/* kernels.h — the CPU backend's op kernels (internal). Each takes the op call as
 * the front-end filled it (see the parameter comments in tensor/ops.def and in the
 * front-end that builds the call). */
#ifndef VG_CPU_KERNELS_H
#define VG_CPU_KERNELS_H
#include "tensor/internal.h"

/* One kernel per op of tensor/ops.def (vg_cpu_backend.kernel in backend.c lists each op
 * by name, checked complete when registered); a kernel listed for several ops handles
 * each of them with no default: branch. */
void vg_cpu_copy(const vg_opcall *c);      /* copy/cast */
void vg_cpu_fill(const vg_opcall *c);
void vg_cpu_arange(const vg_opcall *c);
void vg_cpu_unary(const vg_opcall *c);     /* tensor/unary.def (a typed switch over vg_unary_kind) */
void vg_cpu_binary(const vg_opcall *c);    /* tensor/binary.def (a typed switch over vg_binary_kind) */
void vg_cpu_where(const vg_opcall *c);
void vg_cpu_eltwise(const vg_opcall *c);   /* any of the ops above, through the table */
void vg_cpu_reduce(const vg_opcall *c);    /* sum, amax, amin, argmax */
void vg_cpu_matmul(const vg_opcall *c);
void vg_cpu_conv2d_op(const vg_opcall *c); /* conv_op.c (conv.c holds the GEMM-level conv) */
void vg_cpu_conv2d_bwd_data_op(const vg_opcall *c);
void vg_cpu_conv2d_bwd_weight_op(const vg_opcall *c);
void vg_cpu_conv_bn_fold(const vg_opcall *c);
void vg_cpu_avg_pool2d(const vg_opcall *c);   /* pool.c */
void vg_cpu_avg_pool2d_bwd(const vg_opcall *c);
void vg_cpu_max_pool2d(const vg_opcall *c);
void vg_cpu_max_pool2d_bwd(const vg_opcall *c);
void vg_cpu_adaptive_avg_pool2d(const vg_opcall *c);
void vg_cpu_adaptive_avg_pool2d_bwd(const vg_opcall *c);
void vg_cpu_interp_bilinear(const vg_opcall *c);   /* resample.c */
void vg_cpu_interp_bilinear_bwd(const vg_opcall *c);
void vg_cpu_unfold(const vg_opcall *c);    /* layout.c */
void vg_cpu_fold(const vg_opcall *c);
void vg_cpu_pad(const vg_opcall *c);
void vg_cpu_concat(const vg_opcall *c);
void vg_cpu_gather(const vg_opcall *c);    /* index.c */
void vg_cpu_scatter_add(const vg_opcall *c);
void vg_cpu_index_select(const vg_opcall *c);
void vg_cpu_index_add(const vg_opcall *c);
void vg_cpu_kthvalue(const vg_opcall *c);  /* select.c */
void vg_cpu_sort(const vg_opcall *c);
void vg_cpu_random(const vg_opcall *c);    /* rand_uniform, rand_normal */
void vg_cpu_softmax(const vg_opcall *c);   /* norm.c */
/* the softmax op's computation of one contiguous row of n (o may be x): the fused attention's rows */
void vg_cpu_softmax_row(float *o, const float *x, int64_t n);
void vg_cpu_log_softmax(const vg_opcall *c);
void vg_cpu_softmax_bwd(const vg_opcall *c);
void vg_cpu_log_softmax_bwd(const vg_opcall *c);
void vg_cpu_layer_norm(const vg_opcall *c);
void vg_cpu_layer_norm_bwd(const vg_opcall *c);
void vg_cpu_optim_update(const vg_optim_update *u);   /* SGD / Adam(W) steps (optim.c) */

/* element load/store in any dtype (for copies and casts) */
double vg_load_elem(const void *p, vg_dtype dt);
void vg_store_elem(void *p, vg_dtype dt, double v);
#endif
