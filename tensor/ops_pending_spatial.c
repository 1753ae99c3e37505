/* PLACEHOLDER — being replaced by the spatial/index/select/random op families. */
#include "tensor/internal.h"
#define PENDING(name) return vg_op_error(name, "not implemented yet")
vg_tensor *vg_avg_pool2d(const vg_tensor *x, vg_pool2d_opts o) { (void)x; (void)o; PENDING("avg_pool2d"); }
vg_tensor *vg_max_pool2d(const vg_tensor *x, vg_pool2d_opts o, vg_tensor **i) { (void)x; (void)o; (void)i; PENDING("max_pool2d"); }
vg_tensor *vg_adaptive_avg_pool2d(const vg_tensor *x, int64_t a, int64_t b) { (void)x; (void)a; (void)b; PENDING("adaptive_avg_pool2d"); }
vg_tensor *vg_adaptive_avg_pool1d(const vg_tensor *x, int64_t a) { (void)x; (void)a; PENDING("adaptive_avg_pool1d"); }
vg_tensor *vg_interpolate_bilinear(const vg_tensor *x, int64_t a, int64_t b, bool c) { (void)x; (void)a; (void)b; (void)c; PENDING("interpolate"); }
vg_tensor *vg_unfold(const vg_tensor *x, int a, int b, int c, int d, int e, int f, int g, int h) { (void)x; (void)a; (void)b; (void)c; (void)d; (void)e; (void)f; (void)g; (void)h; PENDING("unfold"); }
vg_tensor *vg_fold(const vg_tensor *x, int64_t oh, int64_t ow, int a, int b, int c, int d, int e, int f, int g, int h) { (void)x; (void)oh; (void)ow; (void)a; (void)b; (void)c; (void)d; (void)e; (void)f; (void)g; (void)h; PENDING("fold"); }
vg_tensor *vg_pad(const vg_tensor *x, int n, const int64_t *p, float v) { (void)x; (void)n; (void)p; (void)v; PENDING("pad"); }
vg_tensor *vg_concat(int n, vg_tensor *const *xs, int dim) { (void)n; (void)xs; (void)dim; PENDING("concat"); }
vg_tensor *vg_stack(int n, vg_tensor *const *xs, int dim) { (void)n; (void)xs; (void)dim; PENDING("stack"); }
vg_tensor *vg_gather(const vg_tensor *x, int d, const vg_tensor *i) { (void)x; (void)d; (void)i; PENDING("gather"); }
vg_tensor *vg_scatter_add(const vg_tensor *b, int d, const vg_tensor *i, const vg_tensor *s) { (void)b; (void)d; (void)i; (void)s; PENDING("scatter_add"); }
vg_tensor *vg_index_select(const vg_tensor *x, int d, const vg_tensor *i) { (void)x; (void)d; (void)i; PENDING("index_select"); }
vg_tensor *vg_index_add(const vg_tensor *b, int d, const vg_tensor *i, const vg_tensor *s) { (void)b; (void)d; (void)i; (void)s; PENDING("index_add"); }
