/* conv_op.c — the conv2d op family on the CPU: contiguous operands for the kernels in
 * conv.c (non-contiguous inputs are copied first). */
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/conv.h"
#include <math.h>
#include <stdlib.h>

static const float *contig(const vg_tensor *t, vg_tensor **tmp) {
  *tmp = NULL;
  if (vg_is_contiguous(t)) return vg_f32(t);
  *tmp = vg_copy_raw(t);
  return vg_f32(*tmp);
}

static void release(vg_tensor *t) {
  if (t && (t->flags & VG_TF_HEAP)) vg_tensor_free(t);
}

void vg_cpu_conv(const vg_opcall *c) {
  const vg_tensor *x, *w;
  vg_tensor *out = c->out[0];
  vg_conv2d_geom g = {.sh = c->i[0], .sw = c->i[1], .ph = c->i[2], .pw = c->i[3], .dh = c->i[4], .dw = c->i[5],
                      .groups = c->i[6]};
  vg_tensor *t0, *t1, *t2 = NULL;
  switch (c->op) {
    case VG_OP_CONV2D: {
      x = c->in[0];
      w = c->in[1];
      const vg_tensor *b = c->nin > 2 ? c->in[2] : NULL;
      g.n = x->shape[0]; g.c = x->shape[1]; g.h = x->shape[2]; g.w = x->shape[3];
      g.oc = w->shape[0]; g.kh = w->shape[2]; g.kw = w->shape[3];
      g.relu = c->i[7] == VG_ACT_RELU;   /* applied by the GEMM per tile, in cache */
      vg_conv2d_geom_init(&g);
      const float *px = contig(x, &t0), *pw = contig(w, &t1), *pb = b ? contig(b, &t2) : NULL;
      vg_cpu_conv2d_fwd(&g, px, pw, pb, vg_f32(out));
      break;
    }
    case VG_OP_CONV2D_BWD_DATA: { /* in = {w, gy}; out has x's shape */
      w = c->in[0];
      g.n = out->shape[0]; g.c = out->shape[1]; g.h = out->shape[2]; g.w = out->shape[3];
      g.oc = w->shape[0]; g.kh = w->shape[2]; g.kw = w->shape[3];
      vg_conv2d_geom_init(&g);
      const float *pw = contig(w, &t0), *pg = contig(c->in[1], &t1);
      vg_cpu_conv2d_bwd_data(&g, pw, pg, vg_f32(out));
      break;
    }
    case VG_OP_CONV2D_BWD_WEIGHT: { /* in = {x, gy}; out has w's shape */
      x = c->in[0];
      g.n = x->shape[0]; g.c = x->shape[1]; g.h = x->shape[2]; g.w = x->shape[3];
      g.oc = out->shape[0]; g.kh = out->shape[2]; g.kw = out->shape[3];
      vg_conv2d_geom_init(&g);
      const float *px = contig(x, &t0), *pg = contig(c->in[1], &t1);
      vg_cpu_conv2d_bwd_weight(&g, px, pg, vg_f32(out), NULL);
      break;
    }
    case VG_OP_CONV_BN_FOLD: { /* in = {w, bias, gamma, beta, mean, var} (contiguous f32; 1-3 may be NULL) */
      const vg_tensor *const *in = c->in;
      const float *pw = vg_f32(in[0]), *pb = in[1] ? vg_f32(in[1]) : NULL, *pg = in[2] ? vg_f32(in[2]) : NULL;
      const float *pbeta = in[3] ? vg_f32(in[3]) : NULL, *pm = vg_f32(in[4]), *pv = vg_f32(in[5]);
      float *wo = vg_f32(out), *bo = vg_f32(c->out[1]);
      const float eps = (float)c->f[0];
      const int64_t O = in[0]->shape[0], per = O ? vg_numel(in[0]) / O : 0;
      for (int64_t o = 0; o < O; o++) {   /* the expressions of tensor/cuda/conv.cu's k_bn_fold */
        const float s = (pg ? pg[o] : 1.0f) / sqrtf(pv[o] + eps);
        for (int64_t j = 0; j < per; j++) wo[o * per + j] = pw[o * per + j] * s;
        bo[o] = ((pb ? pb[o] : 0.0f) - pm[o]) * s + (pbeta ? pbeta[o] : 0.0f);
      }
      return;
    }
    default:
      VG_ABORT("not a conv op");
  }
  release(t0);
  release(t1);
  release(t2);
}
