/* conv_op.c — the conv2d op family on the CPU: contiguous operands for the kernels in
 * conv.c (non-contiguous inputs are copied first). */
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/conv.h"
#include "base/threadpool.h"
#include "tensor/kmath/conv_geom.h"
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

/* conv2d and its backward ops share the geometry of p.conv2d (not conv_bn_fold): the input's
 * shape from xs, the weight's from ws (the op's input or output of that shape) */
static vg_conv2d_geom conv_geom(const vg_opcall *c, const vg_tensor *xs, const vg_tensor *ws) {
  const vg_conv2d_params *cp = &c->p.conv2d;
  vg_conv2d_geom g = {.sh = cp->sh, .sw = cp->sw, .ph = cp->ph, .pw = cp->pw, .dh = cp->dh, .dw = cp->dw,
                      .groups = cp->groups};
  g.n = xs->shape[0]; g.c = xs->shape[1]; g.h = xs->shape[2]; g.w = xs->shape[3];
  g.oc = ws->shape[0]; g.kh = ws->shape[2]; g.kw = ws->shape[3];
  vg_conv2d_geom_init(&g);
  return g;
}

void vg_cpu_conv2d_op(const vg_opcall *c) {
  vg_tensor *out = c->out[0], *t0, *t1, *t2 = NULL;
  const vg_tensor *x = c->in[0], *w = c->in[1];
  const vg_tensor *b = c->nin > 2 ? c->in[2] : NULL;
  vg_conv2d_geom g = conv_geom(c, x, w);
  g.relu = c->p.conv2d.act == VG_ACT_RELU;   /* applied by the GEMM per tile, in cache */
  const float *px = contig(x, &t0), *pw = contig(w, &t1), *pb = b ? contig(b, &t2) : NULL;
  if (c->p.conv2d.pack && !t1) {   /* a copied weight is new every call: nothing to reuse */
    g.pack = c->p.conv2d.pack;
    vg_conv_pack_bind(g.pack, w);
  }
  vg_cpu_conv2d_fwd(&g, px, pw, pb, vg_f32(out));
  release(t0);
  release(t1);
  release(t2);
}

void vg_cpu_conv2d_bwd_data_op(const vg_opcall *c) { /* in = {w, gy}; out has x's shape */
  vg_tensor *out = c->out[0], *t0, *t1;
  const vg_tensor *w = c->in[0];
  vg_conv2d_geom g = conv_geom(c, out, w);
  const float *pw = contig(w, &t0), *pg = contig(c->in[1], &t1);
  vg_cpu_conv2d_bwd_data(&g, pw, pg, vg_f32(out));
  release(t0);
  release(t1);
}

void vg_cpu_conv2d_bwd_weight_op(const vg_opcall *c) { /* in = {x, gy}; out has w's shape */
  vg_tensor *out = c->out[0], *t0, *t1;
  const vg_tensor *x = c->in[0];
  vg_conv2d_geom g = conv_geom(c, x, out);
  const float *px = contig(x, &t0), *pg = contig(c->in[1], &t1);
  vg_cpu_conv2d_bwd_weight(&g, px, pg, vg_f32(out), NULL);
  release(t0);
  release(t1);
}

/* in = {w, bias, gamma, beta, mean, var} (contiguous f32; 1-3 may be NULL) */
typedef struct {
  const float *pw, *pb, *pg, *pbeta, *pm, *pv;
  float *wo, *bo, eps;
  int64_t per;
} vg_bn_fold_job;

static void bn_fold_task(void *vctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  const vg_bn_fold_job *j = vctx;
  const int64_t per = j->per;
  for (int64_t o = b; o < e; o++) {   /* tensor/kmath/conv_geom.h, as tensor/cuda/conv.cu's k_bn_fold */
    const float s = vg_bn_fold_scale(j->pg ? j->pg[o] : 1.0f, j->pv[o], j->eps);
    for (int64_t q = 0; q < per; q++) j->wo[o * per + q] = j->pw[o * per + q] * s;
    j->bo[o] = vg_bn_fold_bias(j->pb ? j->pb[o] : 0.0f, j->pm[o], s, j->pbeta ? j->pbeta[o] : 0.0f);
  }
}

void vg_cpu_conv_bn_fold(const vg_opcall *c) {
  const vg_tensor *const *in = c->in;
  vg_bn_fold_job j = {.pw = vg_f32(in[0]), .pb = in[1] ? vg_f32(in[1]) : NULL, .pg = in[2] ? vg_f32(in[2]) : NULL,
                      .pbeta = in[3] ? vg_f32(in[3]) : NULL, .pm = vg_f32(in[4]), .pv = vg_f32(in[5]),
                      .wo = vg_f32(c->out[0]), .bo = vg_f32(c->out[1]), .eps = (float)c->p.bn_fold.eps};
  const int64_t O = in[0]->shape[0];
  j.per = O ? vg_numel(in[0]) / O : 0;
  vg_parallel_for(O, 1 + (1 << 14) / (j.per + 1), bn_fold_task, &j);
}
