/* dispatch.c — backend registry and the single path every op takes to run. */
#include "tensor/internal.h"
#include "tensor/opstats.h"
#include "tensor/optim_upd.h"

void vg_opstats_count(const vg_opcall *c);   /* opstats.c */

static const vg_backend *backends[VG_DEVICE_COUNT] = {[VG_CPU] = &vg_cpu_backend};

const vg_backend *vg_backend_of(vg_device dev) {
  if ((unsigned)dev >= VG_DEVICE_COUNT || !backends[dev])
    VG_ABORT("no backend for device %d (built without it?)", (int)dev);
  return backends[dev];
}

bool vg_backend_complete(const vg_backend *b, char *err, size_t errsz) {
  int n = 0, missing = 0;
  for (int op = 0; op < VG_OP_COUNT; op++) {   /* view ops run no kernel; every other op has one */
    if (b->kernel[op] || vg_op_family_of((vg_op)op) == VG_FAM_VIEW) continue;
    if (missing++ == 0) n = snprintf(err, errsz, "backend %s has no kernel for op(s)", b->name);
    if (n > 0 && (size_t)n < errsz) n += snprintf(err + n, errsz - (size_t)n, " %s", vg_op_name((vg_op)op));
  }
  if (missing) return false;
  if (!b->optim_update) {
    snprintf(err, errsz, "backend %s has no optimizer update (optim_update)", b->name);
    return false;
  }
  return true;
}

void vg_backend_register(vg_device dev, const vg_backend *b) {
  char err[512];
  if (!vg_backend_complete(b, err, sizeof err)) VG_ABORT("%s", err);
  backends[dev] = b;
}

void vg_optim_update_run(vg_device dev, const vg_optim_update *u) {
  if (u->n > 0) vg_backend_of(dev)->optim_update(u);
}

const vg_recorder *vg_recorder_cur;
void vg_set_recorder(const vg_recorder *r) { vg_recorder_cur = r; }

void vg_backend_exec(const vg_backend *b, const vg_opcall *c) {
  vg_kernel_fn k = b->kernel[c->op];
  if (k) k(c);   /* NULL only for a view op (checked at registration): the front-end made the header */
}

/* f16 is inference-only: the backward ops compute in f32, so no tape node may hold an
 * f16 input or output. Checked before the op runs: the op fails with the reason. */
static bool f16_in_call(const vg_opcall *c) {
  if (c->out[0]->dtype == VG_F16) return true;
  for (int i = 0; i < c->nin; i++)
    if (c->in[i] && c->in[i]->dtype == VG_F16) return true;
  return false;
}

vg_tensor *vg_dispatch(vg_opcall *c) {
  vg_tensor *out = c->out[0];
  bool record = false;
  if (vg_op_differentiable(c->op) && vg_rec_grad_enabled())
    for (int i = 0; i < c->nin; i++)
      if (c->in[i] && c->in[i]->requires_grad) record = true;
  if (record && f16_in_call(c))
    return vg_op_error(vg_op_name(c->op), "f16 tensors are inference-only (no autograd): an input requires grad; "
                       "run under vg_no_grad_begin()/vg_no_grad_end(), detach, or compute in f32");
  vg_backend_exec(vg_backend_of(out->device), c);
  if (vg_opstats_on()) vg_opstats_count(c);
  if (record) {
    out->requires_grad = true;
    vg_recorder_cur->record(c);
  }
  return out;
}
