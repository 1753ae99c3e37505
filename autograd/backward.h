/* backward.h — tape nodes and the backward-rule entry (internal to autograd/). */
#ifndef VG_BACKWARD_H
#define VG_BACKWARD_H
#include "tensor/internal.h"

typedef struct vg_node {
  vg_opcall call;            /* copy of the forward call; call.in points to node-owned array */
  vg_tensor *grad;           /* grad of call.out[0], accumulated during backward */
  struct vg_node *prev;      /* tape: the node recorded before this one */
  bool reach;                /* vg_backward_ready: on a path from the pass's output */
} vg_node;

/* Adds g into the grad of `in` (intermediate: its node's grad; leaf: in->grad). */
void vg_ag_accum(const vg_tensor *in, vg_tensor *g);
/* The tensors whose data n's backward rule reads: bit i for c->in[i] (i < VG_OP_MAX_IN),
 * VG_SAVES_OUT0 / VG_SAVES_OUT1 for c->out[0] / c->out[1]; the rest it reads only the
 * metadata of (shape, dtype, device, requires_grad, node). Unknown: all of them. */
enum { VG_SAVES_OUT0 = 1u << VG_OP_MAX_IN, VG_SAVES_OUT1 = 1u << (VG_OP_MAX_IN + 1) };
unsigned vg_backward_saves(const vg_opcall *c);
/* Computes the input grads of node n from its output grad g (grad mode is off). */
void vg_backward_rule(vg_node *n, vg_tensor *g);
#endif
