/* block.c — the flow block contract (block.h): module plumbing, the checked dispatch of
 * vg_flow_forward / vg_flow_output_dims, sampling, and the helpers the families share. */
#include "flows/block.h"
#include "autograd/autograd.h"
#include <math.h>
#include <stdlib.h>

static vg_tensor *flow_module_forward(vg_nn_module *m, const vg_tensor *x) {
  return vg_flow_forward(m, x, 0, NULL, false, false, NULL);
}

static void block_free(void *p) {
  vg_flow_block *b = p;
  if (!b) return;
  if (b->ops->free_state) b->ops->free_state(b);
  free(b);
}

vg_nn_module *vg_flow_block_new(const char *kind, const vg_flow_block_ops *ops, size_t state_size, int ndim,
                                const int64_t *dims, int64_t cond_ch) {
  vg_flow_block *b = calloc(1, state_size);
  b->ops = ops;
  b->ndim = ndim;
  b->cond_ch = cond_ch;
  for (int i = 0; i < ndim; i++) b->dims[i] = dims[i];
  return vg_nn_module_new(kind, flow_module_forward, b, block_free);
}

bool vg_flow_is_flow(const vg_nn_module *m) { return m && m->forward == flow_module_forward; }
vg_flow_block *vg_flow_block_of(const vg_nn_module *m) { return (vg_flow_block *)m->ctx; }
void *vg_flow_block_state(const vg_nn_module *m, const vg_flow_block_ops *ops) {
  return vg_flow_is_flow(m) && vg_flow_block_of(m)->ops == ops ? m->ctx : NULL;
}

/* ------------------------------------------------------------------ shared helpers */
bool vg_flow_check_dims(int ndim, const int64_t *dims) {
  if (ndim != 1 && ndim != 3) { vg_fail(VG_ERR_ARG, "flows: dims must be (C) or (C,H,W), got %d dims", ndim); return false; }
  for (int i = 0; i < ndim; i++) if (dims[i] <= 0) { vg_fail(VG_ERR_ARG, "flows: bad dims"); return false; }
  return true;
}

vg_nn_module *vg_flow_call_subnet(vg_flow_subnet s, int64_t cin, int64_t cout) {
  if (!s.fn) { vg_fail(VG_ERR_ARG, "flows: subnet constructor is NULL"); return NULL; }
  vg_nn_module *m = s.fn(cin, cout, s.user);
  if (!m) vg_fail(VG_ERR_ARG, "flows: subnet constructor returned NULL");
  return m;
}

vg_tensor *vg_flow_param_shape_like(int ndim, int64_t C, int64_t *shape) {
  int nd = ndim + 1;
  shape[0] = 1; shape[1] = C;
  for (int i = 2; i < nd; i++) shape[i] = 1;
  return vg_tensor_new(VG_F32, nd, shape);
}

vg_tensor *vg_flow_sum_nonbatch(const vg_tensor *t) {
  int dims[VG_MAX_DIMS], nd = 0;
  for (int d = 1; d < t->ndim; d++) dims[nd++] = d;
  return vg_sum(t, nd, dims, false);
}

vg_tensor *vg_flow_cat_cond(const vg_tensor *x, int ncond, vg_tensor *const *cond) {
  if (ncond == 0) return (vg_tensor *)x;
  vg_tensor *xs[17];
  xs[0] = (vg_tensor *)x;
  for (int i = 0; i < ncond && i < 16; i++) xs[i + 1] = cond[i];
  return vg_concat(ncond + 1, xs, 1);
}

vg_tensor *vg_flow_zeros_n(const vg_tensor *x, int64_t n) { return vg_full_on(x->device, VG_F32, 1, &n, 0.0); }

vg_tensor *vg_flow_add_ld(vg_tensor *a, vg_tensor *b) {
  if (!a) return b;
  if (!b) return a;
  return vg_add(a, b);
}

int64_t vg_flow_npix(const vg_tensor *x) {
  int64_t npix = 1;
  for (int d = 2; d < x->ndim; d++) npix *= x->shape[d];
  return npix;
}

/* ------------------------------------------------------------------ dispatch */
int vg_flow_output_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out) {
  if (!vg_flow_is_flow(m)) { vg_fail(VG_ERR_ARG, "not a flow module"); return -1; }
  const vg_flow_block *b = vg_flow_block_of(m);
  if (b->ops->output_dims) return b->ops->output_dims(m, ndim, dims, out);
  if (ndim != b->ndim) { vg_fail(VG_ERR_ARG, "%s: built for %d dims, got %d", m->kind_name, b->ndim, ndim); return -1; }
  for (int i = 0; i < ndim; i++) {
    if (dims[i] != b->dims[i]) { vg_fail(VG_ERR_ARG, "%s: dims mismatch at %d", m->kind_name, i); return -1; }
    out[i] = dims[i];
  }
  return ndim;
}

vg_tensor *vg_flow_forward(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond,
                           bool rev, bool want, vg_tensor **logdet) {
  if (logdet) *logdet = NULL;
  if (!x) return NULL;
  if (!vg_flow_is_flow(m)) { vg_fail(VG_ERR_ARG, "vg_flow_forward: not a flow module"); return NULL; }
  const vg_flow_block *b = vg_flow_block_of(m);
  if (b->ops->composite) return b->ops->forward(m, x, ncond, cond, rev, want, logdet);
  if (x->ndim != b->ndim + 1) { vg_fail(VG_ERR_ARG, "%s: input must have %d dims", m->kind_name, b->ndim + 1); return NULL; }
  for (int i = 0; i < b->ndim; i++)
    if (x->shape[i + 1] != b->dims[i]) { vg_fail(VG_ERR_ARG, "%s: input shape mismatch", m->kind_name); return NULL; }
  int64_t cc = 0;
  for (int i = 0; i < ncond; i++) {
    if (!cond[i] || cond[i]->ndim != x->ndim || cond[i]->shape[0] != x->shape[0]) { vg_fail(VG_ERR_ARG, "%s: bad condition", m->kind_name); return NULL; }
    for (int d = 2; d < x->ndim; d++) if (cond[i]->shape[d] != x->shape[d]) { vg_fail(VG_ERR_ARG, "%s: condition spatial dims differ", m->kind_name); return NULL; }
    cc += cond[i]->shape[1];
  }
  if (b->ops->uses_cond && cc != b->cond_ch) {
    vg_fail(VG_ERR_ARG, "%s: built for %lld condition channels, got %lld", m->kind_name, (long long)b->cond_ch, (long long)cc);
    return NULL;
  }
  vg_tensor *ld = NULL;
  /* recording (training): the block's intermediates that no backward rule reads are freed
   * when it returns (autograd.h, vg_fwd_region), as torch keeps only saved tensors */
  bool region = vg_scope_depth() > 0 && vg_nn_would_record(m, 1, &x);
  for (int i = 0; i < ncond && !region; i++) region = vg_scope_depth() > 0 && vg_nn_would_record(m, 1, (const vg_tensor *const *)&cond[i]);
  vg_fwd_region r = {0};
  if (region) r = vg_fwd_region_begin();
  vg_tensor *y = b->ops->forward(m, x, ncond, cond, rev, want, &ld);
  if (region) vg_fwd_region_end(r, 2, (vg_tensor *[]){y, ld});
  if (logdet) *logdet = want ? ld : NULL;
  return y;
}

vg_tensor *vg_flow_sample(vg_nn_module *m, int64_t n, int ncond, vg_tensor *const *cond, uint64_t seed) {
  int64_t dims[4], sh[5];
  if (!vg_flow_is_flow(m)) { vg_fail(VG_ERR_ARG, "not a flow"); return NULL; }
  const vg_flow_block *b = vg_flow_block_of(m);
  int nd = vg_flow_output_dims(m, b->ndim, b->dims, dims);   /* what the module produces */
  if (nd < 0) return NULL;
  sh[0] = n;
  for (int i = 0; i < nd; i++) sh[i + 1] = dims[i];
  vg_tensor *z = vg_randn(nd + 1, sh, seed);
  return vg_flow_forward(m, z, ncond, cond, true, false, NULL);
}

vg_tensor *vg_flow_gaussian_logp(const vg_tensor *z) {
  if (!z) return NULL;
  double D = (double)(vg_numel(z) / z->shape[0]);
  return vg_add_scalar(vg_scale(vg_flow_sum_nonbatch(vg_mul(z, z)), -0.5f), (float)(-0.5 * D * log(2 * M_PI)));
}
