/* opstats.c — per-op call and FLOP counters (opstats.h). */
#include <string.h>
#include "tensor/internal.h"
#include "tensor/opstats.h"

static vg_opstats g_stats;
static bool g_on;

void vg_opstats_start(void) {
  memset(&g_stats, 0, sizeof g_stats);
  g_on = true;
}

void vg_opstats_stop(vg_opstats *out) {
  g_on = false;
  if (out) *out = g_stats;
}

bool vg_opstats_on(void) { return g_on; }

static bool is_mac_op(vg_op op) {
  return op == VG_OP_CONV2D || op == VG_OP_CONV2D_BWD_DATA || op == VG_OP_CONV2D_BWD_WEIGHT || op == VG_OP_MATMUL;
}

static double opcall_flops(const vg_opcall *c) {
  const vg_tensor *o = c->out[0], *a = c->nin > 0 ? c->in[0] : NULL, *b = c->nin > 1 ? c->in[1] : NULL;
  double no = o ? (double)vg_numel(o) : 0;
  switch (c->op) {
  case VG_OP_RESHAPE: case VG_OP_PERMUTE: case VG_OP_SLICE: case VG_OP_EXPAND: case VG_OP_COPY:
  case VG_OP_FILL: case VG_OP_ARANGE: case VG_OP_RAND_UNIFORM: case VG_OP_RAND_NORMAL: case VG_OP_PAD:
  case VG_OP_CONCAT: case VG_OP_GATHER: case VG_OP_INDEX_SELECT: case VG_OP_UNFOLD:
    return 0;
  case VG_OP_CONV2D: {   /* x, w [O, C/g, kh, kw], bias */
    double k = (double)(b->shape[1] * b->shape[2] * b->shape[3]);
    return 2.0 * no * k + (c->nin > 2 && c->in[2] ? no : 0);
  }
  case VG_OP_CONV2D_BWD_DATA: {   /* w, gy -> gx: one MAC per (gy element, C/g*kh*kw) */
    double k = (double)(a->shape[1] * a->shape[2] * a->shape[3]);
    return 2.0 * (double)vg_numel(b) * k;
  }
  case VG_OP_CONV2D_BWD_WEIGHT: {   /* x, gy -> gw [O, C/g, kh, kw] */
    double k = (double)(o->shape[1] * o->shape[2] * o->shape[3]);
    return 2.0 * (double)vg_numel(b) * k;
  }
  case VG_OP_MATMUL:
    return 2.0 * no * (double)a->shape[a->ndim - 1];
  case VG_OP_SUM: case VG_OP_AMAX: case VG_OP_AMIN: case VG_OP_ARGMAX: case VG_OP_KTHVALUE:
    return a ? (double)vg_numel(a) : 0;
  case VG_OP_SORT: {
    double n = a ? (double)vg_numel(a) : 0, len = a && a->ndim ? (double)a->shape[a->ndim - 1] : 1;
    double lg = 1;
    while (len > 2) { len /= 2; lg += 1; }
    return n * lg;
  }
  case VG_OP_AVG_POOL2D: case VG_OP_MAX_POOL2D: case VG_OP_ADAPTIVE_AVG_POOL2D:
  case VG_OP_AVG_POOL2D_BWD: case VG_OP_MAX_POOL2D_BWD: case VG_OP_ADAPTIVE_AVG_POOL2D_BWD: case VG_OP_FOLD:
  case VG_OP_SCATTER_ADD: case VG_OP_INDEX_ADD:
    return a ? (double)vg_numel(a) : no;   /* each input element read and accumulated once */
  case VG_OP_INTERP_BILINEAR: case VG_OP_INTERP_BILINEAR_BWD:
    return 4.0 * no;
  case VG_OP_LAYER_NORM_BWD:   /* in = {g, x, ...}: out[0] is empty when only gw / gb are wanted */
    return a ? (double)vg_numel(a) : 0;
  default:
    return no;   /* elementwise */
  }
}

void vg_opstats_count(const vg_opcall *c) {
  if ((unsigned)c->op >= VG_OP_COUNT) return;
  double f = opcall_flops(c);
  g_stats.calls[c->op]++;
  g_stats.flops[c->op] += f;
  if (is_mac_op(c->op)) g_stats.mac_flops += f;
  else g_stats.other_flops += f;
  if (c->op == VG_OP_CONV2D && c->p.conv2d.act && c->out[0])   /* a fused ReLU: as the relu op would count */
    g_stats.other_flops += (double)vg_numel(c->out[0]);
}
