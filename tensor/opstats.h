/* opstats.h — op counting at the single dispatch point (tensor/dispatch.c): calls and
 * floating-point operations per op of the op table, for `vigil bench` (FLOPs per image)
 * and profiling. Off by default; when off the cost is one predictable branch per op.
 *
 *   vg_opstats_start();                    // reset + on
 *   m->ops->predict(m, x, maps, scores);
 *   vg_opstats s;
 *   vg_opstats_stop(&s);                   // off, copy out
 *   printf("%.2f GFLOPs (conv/matmul), %.2f G other\n", s.mac_flops * 1e-9, s.other_flops * 1e-9);
 *
 * Convention (fvcore / the EfficientAD paper count multiply-adds; we report 2 per MAC):
 *   conv2d and its two backward ops, matmul: 2 * MACs (+ one add per output for a bias;
 *   a fused ReLU adds one per output to other_flops, as a relu op would);
 *   everything else: one op per output element (per input element for reductions,
 *   window size per output for pooling, 4 per output for bilinear interpolation);
 *   views, copies, fills and random fills count 0.
 * Counting happens on the thread that dispatches; ops dispatched from several threads
 * at once (not done by Vigil's methods) would race on the counters. */
#ifndef VG_TENSOR_OPSTATS_H
#define VG_TENSOR_OPSTATS_H
#include <stdbool.h>
#include <stdint.h>
#include "tensor/tensor.h"

typedef struct {
  int64_t calls[VG_OP_COUNT];
  double flops[VG_OP_COUNT];
  double mac_flops;      /* conv2d (+ backward) and matmul */
  double other_flops;    /* the rest */
} vg_opstats;

void vg_opstats_start(void);
void vg_opstats_stop(vg_opstats *out);   /* out may be NULL */
bool vg_opstats_on(void);
#endif
