/* dispatch.c — backend registry and the single path every op takes to run. */
#include "tensor/internal.h"
#include "tensor/opstats.h"

void vg_opstats_count(const vg_opcall *c);   /* opstats.c */

static const vg_backend *backends[VG_DEVICE_COUNT] = {[VG_CPU] = &vg_cpu_backend};

const vg_backend *vg_backend_of(vg_device dev) {
  if ((unsigned)dev >= VG_DEVICE_COUNT || !backends[dev])
    VG_ABORT("no backend for device %d (built without it?)", (int)dev);
  return backends[dev];
}

void vg_backend_register(vg_device dev, const vg_backend *b) { backends[dev] = b; }

static bool is_view_op(vg_op op) {
  return op == VG_OP_RESHAPE || op == VG_OP_PERMUTE || op == VG_OP_SLICE || op == VG_OP_EXPAND;
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
  if (vg_op_differentiable(c->op) && vg_grad_enabled())
    for (int i = 0; i < c->nin; i++)
      if (c->in[i] && c->in[i]->requires_grad) record = true;
  if (record && f16_in_call(c))
    return vg_op_error(vg_op_name(c->op), "f16 tensors are inference-only (no autograd): an input requires grad; "
                       "run under vg_no_grad_begin()/vg_no_grad_end(), detach, or compute in f32");
  if (!is_view_op(c->op)) vg_backend_of(out->device)->exec(c);
  if (vg_opstats_on()) vg_opstats_count(c);
  if (record) {
    out->requires_grad = true;
    vg_ag_record(c);
  }
  return out;
}
