/* PLACEHOLDER — being replaced by the spatial/index/select op families. */
#include "tensor/cpu/kernels.h"
void vg_cpu_select(const vg_opcall *c) { VG_ABORT("%s: no CPU kernel yet", vg_op_name(c->op)); }
