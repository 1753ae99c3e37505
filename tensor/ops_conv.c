/* ops_conv.c — conv2d front-end: checks shapes like torch.nn.functional.conv2d. */
#include "tensor/internal.h"
#include "tensor/kmath/conv_geom.h"

vg_tensor *vg_conv2d(const vg_tensor *x, const vg_tensor *w, const vg_tensor *bias, vg_conv2d_opts o) {
  const vg_tensor *in[3] = {x, w, bias};
  if (!vg_check_inputs("conv2d", 2, in, true)) return NULL;
  if (o.act != VG_ACT_NONE && o.act != VG_ACT_RELU)
    return vg_op_error("conv2d", "unknown fused activation %d (VG_ACT_NONE or VG_ACT_RELU)", (int)o.act);
  const bool records = vg_rec_grad_enabled() && (x->requires_grad || w->requires_grad || (bias && bias->requires_grad));
  if (o.act && records) {
    /* autograd records the unfused pair (conv2d's backward knows no activation) */
    vg_conv2d_opts plain = o;
    plain.act = VG_ACT_NONE;
    return vg_relu(vg_conv2d(x, w, bias, plain));
  }
  if (bias && !vg_check_inputs("conv2d", 1, &in[2], true)) return NULL;
  /* f32 or (on CUDA) f16, all of one dtype: no mixed-precision conv */
  if (w->dtype != x->dtype || (bias && bias->dtype != x->dtype))
    return vg_op_error("conv2d", "mixed float dtypes: input is %s, weight is %s%s%s (cast with vg_cast)",
                       vg_dtype_name(x->dtype), vg_dtype_name(w->dtype), bias ? ", bias is " : "",
                       bias ? vg_dtype_name(bias->dtype) : "");
  char a[128], b[128];
  if (x->ndim != 4 || w->ndim != 4)
    return vg_op_error("conv2d", "wants input (N,C,H,W) and weight (O,C/groups,kh,kw); got %s and %s",
                       vg_shape_str(x, a, 128), vg_shape_str(w, b, 128));
  int sh = o.sh ? o.sh : 1, sw = o.sw ? o.sw : 1, dh = o.dh ? o.dh : 1, dw = o.dw ? o.dw : 1;
  int g = o.groups ? o.groups : 1;
  if (sh < 0 || sw < 0 || dh < 0 || dw < 0 || o.ph < 0 || o.pw < 0 || g < 0)
    return vg_op_error("conv2d", "negative stride, dilation, padding or groups");
  int64_t C = x->shape[1], O = w->shape[0];
  if (C % g || O % g || w->shape[1] * g != C)
    return vg_op_error("conv2d", "input %s and weight %s do not match with groups=%d (need C = weight[1]*groups)",
                       vg_shape_str(x, a, 128), vg_shape_str(w, b, 128), g);
  if (bias && (bias->ndim != 1 || bias->shape[0] != O))
    return vg_op_error("conv2d", "bias %s should be [%lld]", vg_shape_str(bias, a, 128), (long long)O);
  int64_t oh = vg_conv_out_size(x->shape[2], w->shape[2], sh, o.ph, dh);
  int64_t ow = vg_conv_out_size(x->shape[3], w->shape[3], sw, o.pw, dw);
  if (x->shape[2] + 2 * o.ph < dh * (w->shape[2] - 1) + 1 || x->shape[3] + 2 * o.pw < dw * (w->shape[3] - 1) + 1)
    return vg_op_error("conv2d", "kernel %s (dilated) larger than padded input %s", vg_shape_str(w, b, 128),
                       vg_shape_str(x, a, 128));
  int64_t shape[4] = {x->shape[0], O, oh, ow};
  vg_tensor *out = vg_alloc(x->dtype, x->device, 4, shape);
  vg_opcall c = {.op = VG_OP_CONV2D, .nin = bias ? 3 : 2, .in = in, .out = {out},
                 .p.conv2d = {.sh = sh, .sw = sw, .ph = o.ph, .pw = o.pw, .dh = dh, .dw = dw, .groups = g,
                              .act = o.act}};
  /* the weight's cached forms serve a call that records nothing (a recorded one's backward
   * reads w itself, and training changes it) */
  if (!records) c.p.conv2d.pack = o.pack;
  return vg_dispatch(&c);
}

/* heap: the outputs are heap tensors (vg_tensor_free), else scope tensors (vg_alloc) */
static vg_status bn_fold(const vg_tensor *w, const vg_tensor *bias, const vg_tensor *gamma, const vg_tensor *beta,
                         const vg_tensor *mean, const vg_tensor *var, float eps, bool heap, vg_tensor **w_out,
                         vg_tensor **b_out) {
  *w_out = *b_out = NULL;
  const vg_tensor *in[6] = {w, bias, gamma, beta, mean, var};
  static const char *const names[6] = {"weight", "bias", "gamma", "beta", "running_mean", "running_var"};
  if (!w || !mean || !var) {
    vg_op_error("conv_bn_fold", "needs the weight and the running mean and variance");
    return vg_last_status();
  }
  char a[128];
  if (w->ndim < 1 || (w->dtype != VG_F32 && w->dtype != VG_F16)) {
    vg_op_error("conv_bn_fold", "weight %s %s: want a float (O, ...) tensor", vg_dtype_name(w->dtype),
                vg_shape_str(w, a, 128));
    return vg_last_status();
  }
  const int64_t O = w->shape[0];
  vg_tensor *cin[6];
  for (int k = 0; k < 6; k++) {
    cin[k] = NULL;
    if (!in[k]) continue;
    if (in[k]->device != w->device || (in[k]->dtype != VG_F32 && in[k]->dtype != VG_F16) ||
        (k > 0 && (in[k]->ndim != 1 || in[k]->shape[0] != O))) {
      vg_op_error("conv_bn_fold", "%s %s %s%s: want [%lld], f32 or f16, on the weight's device", names[k],
                  vg_dtype_name(in[k]->dtype), vg_shape_str(in[k], a, 128),
                  in[k]->device != w->device ? " on another device" : "", (long long)O);
      return vg_last_status();
    }
    cin[k] = vg_contiguous(in[k]);
    if (!cin[k]) return vg_last_status();
  }
  vg_tensor *wo = heap ? vg_tensor_empty_on(w->device, w->dtype, w->ndim, w->shape)
                      : vg_alloc(w->dtype, w->device, w->ndim, w->shape);
  vg_tensor *bo = heap ? vg_tensor_empty_on(w->device, w->dtype, 1, &O) : vg_alloc(w->dtype, w->device, 1, &O);
  vg_opcall c = {.op = VG_OP_CONV_BN_FOLD, .nin = 6, .in = (const vg_tensor *const *)cin, .out = {wo, bo},
                 .p.bn_fold = {.eps = eps}};
  if (!wo || !bo || !vg_dispatch(&c)) {
    if (heap) { vg_tensor_free(wo); vg_tensor_free(bo); }
    return vg_last_status();
  }
  *w_out = wo;
  *b_out = bo;
  return VG_OK;
}

vg_status vg_conv_bn_fold(const vg_tensor *w, const vg_tensor *bias, const vg_tensor *gamma, const vg_tensor *beta,
                          const vg_tensor *mean, const vg_tensor *var, float eps, vg_tensor **w_out,
                          vg_tensor **b_out) {
  return bn_fold(w, bias, gamma, beta, mean, var, eps, false, w_out, b_out);
}

vg_status vg_conv_bn_fold_packed(vg_conv_pack *pk, const vg_tensor *w, const vg_tensor *bias, const vg_tensor *gamma,
                                 const vg_tensor *beta, const vg_tensor *mean, const vg_tensor *var, float eps,
                                 vg_tensor **w_out, vg_tensor **b_out) {
  const vg_tensor *src[6] = {w, bias, gamma, beta, mean, var};
  bool cpu32 = pk != NULL && w != NULL;
  for (int k = 0; k < 6 && cpu32; k++)   /* the [O] vectors contiguous: the pack keeps their values */
    cpu32 = !src[k] || (src[k]->device == VG_CPU && src[k]->dtype == VG_F32 && src[k]->storage &&
                        (k == 0 || (vg_is_contiguous(src[k]) && src[k]->ndim == 1 && src[k]->shape[0] == w->shape[0])));
  if (!cpu32) return bn_fold(w, bias, gamma, beta, mean, var, eps, false, w_out, b_out);
  if (vg_conv_pack_fold_get(pk, src, eps, w_out, b_out)) return VG_OK;
  vg_tensor *wo, *bo;
  vg_status st = bn_fold(w, bias, gamma, beta, mean, var, eps, true, &wo, &bo);
  if (st != VG_OK) { *w_out = *b_out = NULL; return st; }
  vg_conv_pack_fold_put(pk, src, eps, wo, bo);   /* the pack owns them now */
  *w_out = wo;
  *b_out = bo;
  return VG_OK;
}
