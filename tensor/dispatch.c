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

vg_tensor *vg_dispatch(vg_opcall *c) {
  vg_tensor *out = c->out[0];
  if (!is_view_op(c->op)) vg_backend_of(out->device)->exec(c);
  if (vg_opstats_on()) vg_opstats_count(c);
  if (vg_op_differentiable(c->op) && vg_grad_enabled()) {
    bool any = false;
    for (int i = 0; i < c->nin; i++)
      if (c->in[i] && c->in[i]->requires_grad) any = true;
    if (any) {
      out->requires_grad = true;
      vg_ag_record(c);
    }
  }
  return out;
}
