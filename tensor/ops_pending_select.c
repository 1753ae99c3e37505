/* PLACEHOLDER — being replaced by the spatial/index/select/random op families. */
#include "tensor/internal.h"
#define PENDING(name) return vg_op_error(name, "not implemented yet")
vg_tensor *vg_kthvalue_all(const vg_tensor *x, int64_t k) { (void)x; (void)k; PENDING("kthvalue"); }
vg_tensor *vg_quantile_all(const vg_tensor *x, double q) { (void)x; (void)q; PENDING("quantile"); }
vg_tensor *vg_sort(const vg_tensor *x, int d, bool desc, vg_tensor **i) { (void)x; (void)d; (void)desc; (void)i; PENDING("sort"); }
vg_tensor *vg_topk(const vg_tensor *x, int64_t k, int d, bool l, vg_tensor **i) { (void)x; (void)k; (void)d; (void)l; (void)i; PENDING("topk"); }
