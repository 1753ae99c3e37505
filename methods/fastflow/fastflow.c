/* fastflow.c — FastFlow on the method contract (fastflow.h). */
#include "methods/fastflow/fastflow.h"
#include "autograd/autograd.h"
#include "datasets/image/image.h"
#include "flows/flows.h"
#include "nn/backbones/backbones.h"
#include "nn/backbones/vit.h"
#include "nn/checkpoint.h"
#include "nn/pth.h"
#include "methods/anomalib_import.h"
#include "methods/augment.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_method base;
  /* config */
  vg_fastflow_backbone backbone;
  char backbone_name[64], weights[1024];
  int size, flow_steps, batch;
  int conv3x3_only;           /* -1 (auto) until the constructor resolves it */
  bool float_resize;          /* config "resize": "float" (anomalib 2.x) or "pil" */
  double hidden_ratio, lr, weight_decay;
  int64_t steps;
  uint64_t seed;
  bool hflip, vflip;               /* Table 8's augmentations (train only) */
  double rotate;                   /* degrees, 0 = off */
  /* state */
  vg_nn_module *net;               /* feature_extractor, norms, fast_flow_blocks */
  vg_nn_module *fe, *norms[VG_FASTFLOW_MAX_SCALES], *flows[VG_FASTFLOW_MAX_SCALES];
  int nscales;
  vg_optim *opt;
  vg_tensor *step_buf;             /* "vigil_step": i64 (1) */
} fastflow;

static const char *const BACKBONES[] = {"resnet18", "wide_resnet50_2", "cait_m48_448",
                                        "deit_base_distilled_patch16_384"};
/* the registry's taps: ResNets layer1..3 (strides 4, 8, 16; a LayerNorm each), the ViTs one
 * scale after the final norm at anomalib's block index (paper Table 6): CaiT 40, DeiT 7 */
static const char *const CNN_TAPS[] = {"layer1", "layer2", "layer3"};
static const char *const VIT_TAP[] = {NULL, NULL, "norm.40", "norm.7"};
static bool is_vit(vg_fastflow_backbone b) { return b == VG_FASTFLOW_CAIT_M48_448 || b == VG_FASTFLOW_DEIT_BASE_DISTILLED_384; }

vg_nn_module *vg_fastflow_module(vg_method *m) { return ((fastflow *)m)->net; }
int vg_fastflow_num_scales(const vg_method *m) { return ((const fastflow *)m)->nscales; }

/* Feature-extractor seam: the frozen encoder (registry) without gradients, then the ResNets'
 * trainable LayerNorms (anomalib has none for the transformers: their final norm is frozen) */
static vg_status ff_features(fastflow *m, const vg_tensor *x, vg_tensor **f) {
  vg_no_grad_begin();
  vg_status st = vg_backbone_features(m->fe, x, f);
  vg_no_grad_end();
  if (st != VG_OK) return st;
  if (!is_vit(m->backbone))
    for (int s = 0; s < m->nscales; s++) f[s] = vg_nn_forward(m->norms[s], f[s]);
  return VG_OK;
}

vg_status vg_fastflow_forward(vg_method *mm, const vg_tensor *x, vg_tensor **z, vg_tensor **logdet) {
  fastflow *m = (fastflow *)mm;
  if (x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != m->size || x->shape[3] != m->size)
  {
    char b[96];
    return vg_fail(VG_ERR_ARG, "fastflow: images must be N x 3 x %d x %d (got %s)", m->size, m->size,
                   vg_shape_str(x, b, sizeof b));
  }
  vg_tensor *f[VG_FASTFLOW_MAX_SCALES];
  x = vg_method_input(mm, x);
  vg_status st = ff_features(m, x, f);
  if (st != VG_OK) return st;
  for (int s = 0; s < m->nscales; s++) {
    z[s] = vg_flow_forward(m->flows[s], f[s], 0, NULL, false, true, &logdet[s]);
    if (!z[s]) return VG_ERR_ARG;
  }
  return VG_OK;
}

vg_tensor *vg_fastflow_loss(int n, vg_tensor *const *z, vg_tensor *const *logdet) {
  vg_tensor *loss = NULL;
  for (int s = 0; s < n; s++) {
    /* mean_batch(0.5 * sum_chw z^2 - logdet) */
    vg_tensor *sq = vg_sum(vg_mul(z[s], z[s]), 3, (int[]){1, 2, 3}, false);
    vg_tensor *l = vg_mean_all(vg_sub(vg_scale(sq, 0.5f), logdet[s]));
    loss = loss ? vg_add(loss, l) : l;
  }
  return loss;
}

vg_tensor *vg_fastflow_anomaly_map(int n, vg_tensor *const *z, int64_t h, int64_t w) {
  vg_tensor *maps[VG_FASTFLOW_MAX_SCALES];
  for (int s = 0; s < n; s++) {
    /* the tail in f32 for an f16 z (as torch autocast runs pow/exp in f32): f16's exp
     * flushes below 6e-8, which turns the small likelihoods of far-out pixels into ties */
    const vg_tensor *zs = z[s] && z[s]->dtype != VG_F32 ? vg_cast(z[s], VG_F32) : z[s];
    vg_tensor *lp = vg_scale(vg_mean(vg_mul(zs, zs), 1, (int[]){1}, true), -0.5f);
    maps[s] = vg_interpolate_bilinear(vg_neg(vg_exp(lp)), h, w, false);
  }
  return vg_mean(vg_stack(n, maps, -1), 1, (int[]){-1}, false);
}

static vg_status ff_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  fastflow *m = (fastflow *)mm;
  if (mm->dtype != VG_F32) return vg_fail(VG_ERR_ARG, "fastflow: training computes in f32 (f16 is for inference)");
  vg_scope_begin();
  vg_optim_zero_grad(m->opt);
  vg_nn_conv_cache(m->net, false);   /* the step changes the weights predict's caches were made from */
  vg_tensor *z[VG_FASTFLOW_MAX_SCALES], *ld[VG_FASTFLOW_MAX_SCALES];
  /* Table 8's augmentations: per sample, keyed on (seed, step, row) (methods/augment.h) */
  vg_aug_cfg aug = {.hflip_p = m->hflip ? 0.5 : 0, .vflip_p = m->vflip ? 0.3 : 0, .rotate_p = 0.7, .rotate_deg = m->rotate};
  if (vg_aug_active(&aug) && images->device == VG_CPU && images->dtype == VG_F32 && images->ndim == 4 &&
      images->shape[1] == 3) {
    vg_tensor *x = vg_empty_like(images);
    memcpy(vg_data(x), vg_data(vg_contiguous(images)), (size_t)vg_numel(images) * sizeof(float));
    float fill[3], *scratch = malloc(sizeof(float) * (size_t)(3 * images->shape[2] * images->shape[3]));
    if (!scratch) { vg_scope_end(); return vg_fail(VG_ERR_NOMEM, "fastflow: out of memory (augmentation)"); }
    vg_aug_imagenet_black(fill);
    vg_aug_apply(&aug, m->seed, step, vg_f32(x), images->shape[0], 3, (int)images->shape[2], (int)images->shape[3], fill,
                 scratch);
    free(scratch);
    images = x;
  }
  vg_status st = vg_fastflow_forward(mm, images, z, ld);
  if (st == VG_OK) {
    vg_tensor *l = vg_fastflow_loss(m->nscales, z, ld);
    *loss = vg_item(l);
    if (!isfinite(*loss)) st = vg_fail(VG_ERR_NUMERIC, "fastflow: non-finite loss at step %lld", (long long)step);
    else st = vg_backward(l);
    if (st == VG_OK) {
      vg_optim_step(m->opt);
      ((int64_t *)vg_data(m->step_buf))[0]++;
    }
  }
  vg_scope_end();
  return st;
}

/* N x 1 x H x W maps on the method's device, in the current scope (predict and graphs) */
static vg_tensor *ff_forward_maps(vg_method *mm, const vg_tensor *images) {
  fastflow *m = (fastflow *)mm;
  vg_tensor *z[VG_FASTFLOW_MAX_SCALES], *ld[VG_FASTFLOW_MAX_SCALES], *map = NULL;
  vg_no_grad_begin();
  if (vg_fastflow_forward(mm, images, z, ld) == VG_OK) map = vg_fastflow_anomaly_map(m->nscales, z, m->size, m->size);
  vg_no_grad_end();
  return map;
}

static vg_status ff_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  /* small batches: the conv weights stay transformed / packed from one predict to the next,
   * the backbone's BN-folded ones too (a tenth of FastFlow-WRN50 at batch 1 for the flow
   * subnets, a few percent more for the backbone). Larger ones spread that work over their
   * images: no cache, no memory for it (FastFlow-WRN50's packs take about 400 MiB) */
  vg_nn_conv_cache(((fastflow *)mm)->net, images && images->shape[0] <= 4);
  vg_scope_begin();
  vg_status st = vg_method_maps_out(ff_forward_maps(mm, images), maps, scores);
  vg_scope_end();
  return st;
}

static const char *const RESIZE[] = {"pil", "float", NULL};

static const vg_cfg_field FF_CONFIG[] = {
  {"backbone", VG_CFG_STR, VG_CFG_AT(fastflow, backbone_name), .sdef = "resnet18", .flags = VG_CFG_IDENT,
   .want = "a backbone name", .help = "resnet18 | wide_resnet50_2 (layer1..3 + LayerNorms) | cait_m48_448 (block 40) | "
                                       "deit_base_distilled_patch16_384 (block 7): frozen, as anomalib's FastflowModel"},
  {"weights", VG_CFG_STR, VG_CFG_AT(fastflow, weights), .want = "a file path (< 1024 bytes)",
   .help = "backbone weights by state-dict name (.pth / .safetensors): torchvision's for the ResNets, timm's for "
           "cait/deit (full checkpoints: the blocks past the tap and the heads are ignored); \"\" = random backbone"},
  {"input_size", VG_CFG_INT, VG_CFG_AT(fastflow, size), .idef = -1, .ilo = 32, .ihi = 4096, .imul = 16, .flags = VG_CFG_AUTO,
   .help = "side of the square input image (auto: 256 with the ResNets, the backbone's native size with the "
           "transformers: 448 cait_m48_448, 384 deit; other multiples of 16 resample their pos_embed as timm's "
           "dynamic_img_size, which anomalib's FastFlow does not do)"},
  {"flow_steps", VG_CFG_INT, VG_CFG_AT(fastflow, flow_steps), .idef = -1, .ilo = 1, .ihi = 64, .flags = VG_CFG_AUTO,
   .help = "AllInOne blocks per scale (auto: 8 with the ResNets = anomalib's default; 20 with cait/deit = the "
           "paper's setting, gathierry/FastFlow configs/cait.yaml, deit.yaml; anomalib's default would be 8)"},
  {"hidden_ratio", VG_CFG_NUM, VG_CFG_AT(fastflow, hidden_ratio), .def = 1.0, .lo = 0, .hi = 16, .flags = VG_CFG_LO_OPEN,
   .help = "subnet hidden channels = int(C/2 * hidden_ratio); with cait/deit 0.16 unless given (the paper's setting, "
           "gathierry/FastFlow configs; anomalib's default would be 1.0); 1.0 = anomalib's default elsewhere"},
  {"conv3x3_only", VG_CFG_BOOL, VG_CFG_AT(fastflow, conv3x3_only), .idef = -1, .flags = VG_CFG_AUTO,
   .help = "3x3 kernels in every subnet (auto: true with resnet18, false (3x3 / 1x1 alternating) with "
           "wide_resnet50_2, cait, deit: gathierry/FastFlow's configs)"},
  {"resize", VG_CFG_ENUM, VG_CFG_AT(fastflow, float_resize), .idef = 0, .choices = RESIZE,
   .help = "pil: Pillow's 8-bit resize (the official repos); float: anomalib 2.x's float antialiased bilinear"},
  {"lr", VG_CFG_NUM, VG_CFG_AT(fastflow, lr), .def = 1e-3, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI,
   .help = "Adam learning rate"},
  {"weight_decay", VG_CFG_NUM, VG_CFG_AT(fastflow, weight_decay), .def = 1e-5, .lo = 0, .flags = VG_CFG_NO_HI,
   .help = "Adam weight decay"},
  {"batch_size", VG_CFG_INT, VG_CFG_AT(fastflow, batch), .idef = 32, .ilo = 1, .ihi = 4096, .help = "training batch"},
  {"steps", VG_CFG_INT, VG_CFG_AT(fastflow, steps), .idef = 2000, .ilo = 0, .ihi = 1000000000,
   .help = "training steps"},
  {"seed", VG_CFG_INT, VG_CFG_AT(fastflow, seed), .idef = 0, .ilo = 0, .ihi = INT64_MAX,
   .help = "initialisation seed (and the augmentation draws)"},
  {"hflip", VG_CFG_BOOL, VG_CFG_AT(fastflow, hflip), .idef = false,
   .help = "training augmentation (paper Table 8): random horizontal flip, probability 0.5"},
  {"vflip", VG_CFG_BOOL, VG_CFG_AT(fastflow, vflip), .idef = false,
   .help = "training augmentation (paper Table 8): random vertical flip, probability 0.3"},
  {"rotate", VG_CFG_NUM, VG_CFG_AT(fastflow, rotate), .def = 0, .lo = 0, .hi = 180,
   .help = "training augmentation (paper Table 8): with probability 0.7 a rotation by U[-rotate, rotate] degrees "
           "(torchvision RandomRotation: nearest, black fill); 0 = off"},
  {NULL}};

static char *ff_config_json(const vg_method *mm) { return vg_cfg_json("fastflow", FF_CONFIG, mm); }

static vg_status ff_save(const vg_method *mm, const char *path) {
  const fastflow *m = (const fastflow *)mm;
  return vg_method_checkpoint_save(mm, m->net, m->opt, path);
}

static vg_status ff_load(vg_method *mm, const char *path) {
  fastflow *m = (fastflow *)mm;
  vg_nn_conv_cache(m->net, false);
  return vg_nn_checkpoint_load(path, m->net, m->opt, NULL);
}

static double ff_current_lr(const vg_method *mm) { return ((const fastflow *)mm)->lr; }

static void ff_free(vg_method *mm) {
  fastflow *m = (fastflow *)mm;
  if (!m) return;
  vg_optim_free(m->opt);
  vg_nn_free(m->net);
  free(m);
}

/* the step counter is host bookkeeping: it stays on the CPU */
static vg_status ff_to(vg_method *mm, vg_device dev, vg_dtype dt) {
  fastflow *m = (fastflow *)mm;
  vg_nn_conv_cache(m->net, false);
  return vg_method_move(m->net, m->opt, 1, &m->step_buf, dev, dt);
}

static const vg_method_ops ff_ops = {
  .name = "fastflow", .fit_begin = NULL, .train_step = ff_train_step, .fit_end = NULL,
  .predict = ff_predict, .finalize = NULL, .save = ff_save, .load = ff_load,
  .config_json = ff_config_json, .current_lr = ff_current_lr, .module = vg_fastflow_module, .to = ff_to, .forward_maps = ff_forward_maps, .free = ff_free,
};

vg_status vg_fastflow_load_anomalib(vg_method *mm, const char *path) {
  static const char *const strip[] = {"state_dict.", "model.", NULL};
  return vg_nn_load_state_pth_prefixed(((fastflow *)mm)->net, path, strip, "feature_extractor.", "fastflow");
}

vg_nn_module *vg_fastflow_flow_new(int64_t channels, int64_t h, int64_t w, int flow_steps, double hidden_ratio,
                                   bool conv3x3_only, uint64_t seed, int scale) {
  int64_t dims[3] = {channels, h, w};
  vg_nn_module *flow = vg_flow_sequence_new(3, dims);
  if (!flow) return NULL;
  for (int i = 0; i < flow_steps; i++) {
    uint64_t s0 = seed * 1000003 + (uint64_t)(scale * 100 + i) * 2;
    vg_flow_subnet_cfg sc = {.k = (i % 2 == 1 && !conv3x3_only) ? 1 : 3, .hidden = 0, .ratio = hidden_ratio, .seed = s0 + 1};
    vg_flow_allinone_opts o = {.affine_clamping = 2.0, .clamp_mode = VG_FLOW_CLAMP_TANH_FREIA02,
                               .global_affine_type = VG_FLOW_GA_SOFTPLUS, .permute_soft = false, .seed = s0};
    if (vg_flow_append_allinone(flow, -1, 0, (vg_flow_subnet){vg_flow_subnet_conv, &sc}, o) < 0) {
      vg_nn_free(flow);
      return NULL;
    }
  }
  return flow;
}

/* Memory before any allocation (vg_method_check_memory). ResNets: LayerNorms over C x S/sc x S/sc,
 * flow_steps 3x3 subnets per scale. Transformers: the truncated encoder (exact count, vit.h),
 * the frozen permutation matrices, the attention of two blocks and the flow's activations. */
static vg_status ff_check_memory(int bbi, const char *bb, int64_t size, int64_t steps_n, double ratio) {
  char keys[160];
  snprintf(keys, sizeof keys, "input_size %lld, flow_steps %lld, hidden_ratio %g (backbone %s)", (long long)size,
           (long long)steps_n, ratio, bb);
  double S = (double)size, tr = 0;
  if (bbi < 2) {
    static const int ch18[4] = {64, 128, 256, 512}, ch50[4] = {256, 512, 1024, 2048};
    const int *ch = bbi == 0 ? ch18 : ch50;
    if (ratio * (double)(ch[0] / 2) < 1)   /* flows/subnet.c: hidden = (int)(ratio * c_in), c_in = C/2 */
      return vg_fail(VG_ERR_ARG, "fastflow: hidden_ratio %g gives the layer1 subnet (%d input channels) no hidden "
                     "channel: want hidden_ratio >= %g with backbone %s", ratio, ch[0] / 2, 1.0 / (ch[0] / 2), bb);
    for (int s = 0; s < 3; s++) {
      double C = ch[s], side = S / (4 << s), in = (double)(ch[s] / 2), hid = ratio * in;
      if (hid < 1) hid = 1;
      tr += 2 * C * side * side + (double)steps_n * 9 * (in * hid + hid * 2 * (C - in));
    }
    return vg_method_check_memory("fastflow", keys, tr, bbi == 0 ? 2.8e6 : 8.9e6,
                                  vg_method_resnet_act(S, ch, 2) * (1 + (double)steps_n / 4));
  }
  vg_vit_config vc;
  if (!vg_vit_config_of(bb, &vc)) return VG_ERR_ARG;
  double C = (double)vc.embed_dim, in = (double)(vc.embed_dim - vc.embed_dim / 2), hid = ratio * in;
  if (hid < 1)
    return vg_fail(VG_ERR_ARG, "fastflow: hidden_ratio %g gives the subnets (%g input channels) no hidden channel: "
                   "want hidden_ratio >= %g with backbone %s", ratio, in, 1.0 / in, bb);
  double g = S / vc.patch, T = g * g + (vc.arch == VG_VIT_DEIT ? 1 + vc.distilled : 0);
  int nb = vc.arch == VG_VIT_CAIT ? 41 : 8;
  tr = (double)steps_n * 9 * (in * hid + hid * 2 * (C - in));
  double frozen = (double)vg_vit_count_params(&vc, nb, true) + 2 * C * C * (double)steps_n;
  double act = 2 * (T * C * 12 + vc.num_heads * T * T * 3) + (double)nb * T * C * 2 +
               C * g * g * 12 * (1 + (double)steps_n / 4);
  return vg_method_check_memory("fastflow", keys, tr, frozen, act);
}

/* the constructor; enc (owned, freed on error): a prebuilt encoder (tests: tiny ViTs) or NULL */
static vg_status ff_new(const vg_json *cfg, vg_nn_module *enc, vg_method **out) {
  *out = NULL;
  fastflow *m = calloc(1, sizeof *m);
  if (!m) { vg_nn_free(enc); return vg_fail(VG_ERR_NOMEM, "fastflow: out of memory"); }
  vg_cfg_defaults(FF_CONFIG, m);
  vg_status pst = vg_cfg_parse("fastflow", FF_CONFIG, cfg, m);
  if (pst != VG_OK) { free(m); vg_nn_free(enc); return pst; }
  char bb[sizeof m->backbone_name];   /* a copy: the error paths below free m before naming it */
  snprintf(bb, sizeof bb, "%s", m->backbone_name);
  int bbi = -1;
  for (int i = 0; i < 4; i++) if (!strcmp(bb, BACKBONES[i])) bbi = i;
  if (bbi < 0) {
    free(m);
    vg_nn_free(enc);
    return vg_fail(VG_ERR_ARG, "fastflow: unknown backbone '%s' (resnet18, wide_resnet50_2, cait_m48_448, "
                   "deit_base_distilled_patch16_384: anomalib's FastflowModel's)", bb);
  }
  m->backbone = (vg_fastflow_backbone)bbi;
  const bool vit = is_vit(m->backbone);
  vg_vit_config vc = {0};
  if (vit && !(enc ? vg_vit_info(enc, &vc) : vg_vit_config_of(bb, &vc))) {
    free(m);
    vg_nn_free(enc);
    return enc ? vg_fail(VG_ERR_ARG, "fastflow: backbone %s wants a ViT encoder", bb) : VG_ERR_ARG;
  }
  /* backbone-dependent defaults ("auto"; hidden_ratio: not given) */
  if (m->size < 0) m->size = vit ? vc.img_size : 256;
  if (m->flow_steps < 0) m->flow_steps = vit ? 20 : 8;
  if (vit && !vg_json_get(cfg, "hidden_ratio")) m->hidden_ratio = 0.16;
  if (m->conv3x3_only < 0) m->conv3x3_only = m->backbone == VG_FASTFLOW_RESNET18;
  int64_t size = m->size, steps_n = m->flow_steps;
  double ratio = m->hidden_ratio, lr = m->lr, wd = m->weight_decay;
  bool fl = m->float_resize;
  if (vit && size % vc.patch) {
    free(m);
    vg_nn_free(enc);
    return vg_fail(VG_ERR_ARG, "fastflow: input_size %lld: backbone %s takes multiples of its patch size %d (native "
                   "size %d, the one anomalib's FastFlow takes)", (long long)size, bb, vc.patch, vc.img_size);
  }
  if (!enc) {
    vg_status cs = ff_check_memory(bbi, bb, size, steps_n, ratio);
    if (cs != VG_OK) { free(m); return cs; }
  }
  m->base.ops = &ff_ops;

  vg_status st = VG_OK;
  m->net = vg_nn_module_new("FastflowModel", NULL, NULL, NULL);
  m->fe = enc ? enc : vit ? vg_backbone_new(bb, 1, &VIT_TAP[bbi], m->seed * 7919 + 1)
                          : vg_backbone_new(bb, 3, CNN_TAPS, m->seed * 7919 + 1);
  if (!m->net || !m->fe) { vg_nn_free(m->fe); ff_free(&m->base); return VG_ERR_ARG; }
  vg_nn_add_child(m->net, "feature_extractor", m->fe);
  /* the registry's features (it also owns tiny vg_vit_new_config test models built with taps) */
  m->nscales = vg_backbone_num_features(m->fe);
  if (m->nscales < 1 || m->nscales > VG_FASTFLOW_MAX_SCALES) {
    ff_free(&m->base);
    return vg_fail(VG_ERR_ARG, "fastflow: the encoder is not a backbone model (nn/backbones/backbones.h)");
  }
  if (m->weights[0]) st = vg_nn_load_state_pth(m->fe, m->weights, false);
  m->base.random_backbone = !m->weights[0];
  vg_nn_train(m->fe, false);
  vg_nn_requires_grad(m->fe, false);
  /* the frozen DeiT's block Linears packed once for the GEMM (vit.h: vg_vit_prepack; a later
   * load into them is detected and re-packed; same values). CaiT (41 blocks) stays unpacked:
   * the packs would cost another ~1.2 GB. */
  if (st == VG_OK && vit && vc.arch == VG_VIT_DEIT) st = vg_vit_prepack(m->fe);
  vg_nn_module *norms = vit ? NULL : vg_nn_module_new("ModuleList", NULL, NULL, NULL);
  vg_nn_module *blocks = vg_nn_module_new("ModuleList", NULL, NULL, NULL);
  if (norms) vg_nn_add_child(m->net, "norms", norms);
  vg_nn_add_child(m->net, "fast_flow_blocks", blocks);
  for (int s = 0; s < m->nscales && st == VG_OK; s++) {
    int64_t scale = vg_backbone_feature_stride(m->fe, s);   /* ResNets 4, 8, 16; ViTs 16 */
    int64_t C = vg_backbone_feature_channels(m->fe, s);
    int64_t dims[3] = {C, size / scale, size / scale};
    char name[16];
    snprintf(name, sizeof name, "%d", s);
    if (norms) {
      m->norms[s] = vg_nn_layernorm_new(3, dims, 1e-5f, true);
      vg_nn_add_child(norms, name, m->norms[s]);
    }
    m->flows[s] = vg_fastflow_flow_new(C, dims[1], dims[2], m->flow_steps, ratio, m->conv3x3_only, m->seed, s);
    if (!m->flows[s]) { st = VG_ERR_ARG; break; }
    vg_nn_add_child(blocks, name, m->flows[s]);
  }
  if (st == VG_OK) {
    m->step_buf = vg_tensor_new(VG_I64, 1, (int64_t[]){1});
    memset(vg_data(m->step_buf), 0, sizeof(int64_t));
    vg_nn_add_buffer(m->net, "vigil_step", m->step_buf);
    vg_optim_hparams hp = vg_optim_defaults(VG_OPTIM_ADAM, lr);
    hp.weight_decay = wd;
    m->opt = vg_optim_new(VG_OPTIM_ADAM, hp);
    vg_nn_list ps = vg_nn_named_parameters(m->net);
    vg_tensor **tr = malloc(sizeof(vg_tensor *) * (size_t)(ps.n + 1));
    int nt = 0;
    for (int i = 0; i < ps.n; i++) if (ps.tensors[i]->requires_grad) tr[nt++] = ps.tensors[i];
    if (vg_optim_add_group(m->opt, nt, tr, NULL) < 0) st = VG_ERR_ARG;
    free(tr);
    vg_nn_list_free(&ps);
  }
  if (st != VG_OK) { ff_free(&m->base); return st; }
  m->base.input_h = m->base.input_w = m->size;
  m->base.train_channels = 3;
  m->base.train_batch = m->batch;
  m->base.default_steps = m->steps;
  m->base.train_transform = m->base.test_transform = fl ? vg_image_float_imagenet_transform : vg_imagenet_transform;
  *out = &m->base;
  return VG_OK;
}

vg_status vg_fastflow_new(const vg_json *cfg, vg_method **out) { return ff_new(cfg, NULL, out); }

vg_status vg_fastflow_new_encoder(const vg_json *cfg, vg_nn_module *encoder, vg_method **out) {
  if (!encoder) { *out = NULL; return vg_fail(VG_ERR_ARG, "vg_fastflow_new_encoder: NULL encoder"); }
  return ff_new(cfg, encoder, out);
}

/* ---------------------------------------------------------------- anomalib import
 * The structural config keys of an anomalib checkpoint, read off its tensors
 * (methods/anomalib_import.h; `vigil predict --from-anomalib`). */
/* hidden_ratio: the user's ratio must give every scale's hidden width (int(ratio * c_in)) */
static bool same_ratio(const vg_anomalib_infer *f, const vg_json *u, const char *json) {
  (void)json;
  double r;
  if (!vg_json_as_double(u, &r)) return false;
  for (int i = 0; i < f->nr; i++)
    if ((int64_t)(r * (double)f->in[i]) != f->hid[i]) return false;
  return true;
}

/* the transformer checkpoints (no norms): backbone and input size from the feature extractor's
 * timm tensors (dist_token: DeiT; pos_embed (1, prefix + g^2, C): input = patch * g) */
static vg_status ff_anomalib_infer_vit(vg_anomalib_infer *f) {
  const vg_pth_dict *d = f->d;
  const vg_tensor *pe = vg_anomalib_tensor(d, "feature_extractor.pos_embed");
  const vg_tensor *pw = vg_anomalib_tensor(d, "feature_extractor.patch_embed.proj.weight");
  bool deit = vg_anomalib_tensor(d, "feature_extractor.dist_token") != NULL;
  char v[256], why[256];
  vg_status st;
  if (!pe) {
    /* a checkpoint saved without its backbone: the user's --set backbone says which */
    const vg_json *u = vg_json_get(f->user, "backbone");
    const char *ub = u && u->type == VG_JSON_STRING ? u->str : "";
    if (strcmp(ub, BACKBONES[VG_FASTFLOW_CAIT_M48_448]) && strcmp(ub, BACKBONES[VG_FASTFLOW_DEIT_BASE_DISTILLED_384]))
      return vg_fail(VG_ERR_FORMAT, "fastflow: no norms.0.weight (a transformer backbone's checkpoint) and no "
                     "feature_extractor.pos_embed to tell cait_m48_448 from deit_base_distilled_patch16_384: give "
                     "--set backbone=NAME");
    return VG_OK;
  }
  const char *bb = BACKBONES[deit ? VG_FASTFLOW_DEIT_BASE_DISTILLED_384 : VG_FASTFLOW_CAIT_M48_448];
  snprintf(v, sizeof v, "\"%s\"", bb);
  snprintf(why, sizeof why, "%s", deit ? "feature_extractor.dist_token is present (distilled DeiT)"
                                       : "feature_extractor.pos_embed without dist_token or norms (CaiT)");
  if ((st = vg_anomalib_put(f, "backbone", v, vg_anomalib_same_ci_string, why)) != VG_OK) return st;
  int64_t T = vg_anomalib_dim(pe, 1) - (deit ? 2 : 0), g = 0, patch = pw && pw->ndim == 4 ? pw->shape[2] : 16;
  while ((g + 1) * (g + 1) <= T) g++;
  if (pe->ndim != 3 || g < 1 || g * g != T)
    return vg_fail(VG_ERR_FORMAT, "fastflow: feature_extractor.pos_embed has %lld tokens: not %s%s square grid",
                   (long long)vg_anomalib_dim(pe, 1), deit ? "2 prefix tokens + " : "a ", deit ? "a" : "");
  /* anomalib adds pos_embed as it is: the input is the grid the checkpoint's pos_embed covers */
  snprintf(v, sizeof v, "%lld", (long long)(patch * g));
  snprintf(why, sizeof why, "feature_extractor.pos_embed covers %lldx%lld patches of %lld pixels", (long long)g,
           (long long)g, (long long)patch);
  return vg_anomalib_put(f, "input_size", v, vg_anomalib_same_int, why);
}

static vg_status ff_anomalib_infer(vg_anomalib_infer *f) {
  const vg_pth_dict *d = f->d;
  const vg_tensor *n0 = vg_anomalib_tensor(d, "norms.0.weight");
  const vg_tensor *g0 = vg_anomalib_tensor(d, "fast_flow_blocks.0.module_list.0.global_scale");
  char v[256], why[256];
  vg_status st = VG_OK;
  if (!n0 && g0 && g0->ndim == 4) {   /* cait / deit: anomalib builds no LayerNorms for them */
    if ((st = ff_anomalib_infer_vit(f)) != VG_OK) return st;
  } else {
    if (!n0 || n0->ndim != 3)
      return vg_fail(VG_ERR_FORMAT, "fastflow: norms.0.weight (C, H, W) missing: not an anomalib FastFlow checkpoint");
    int64_t c0 = vg_anomalib_dim(n0, 0), h = vg_anomalib_dim(n0, 1), w = vg_anomalib_dim(n0, 2);
    const char *bb = c0 == 64 ? "resnet18" : c0 == 256 ? "wide_resnet50_2" : NULL;
    if (!bb)
      return vg_fail(VG_ERR_UNSUPPORTED, "fastflow: norms.0.weight has %lld channels: not resnet18 (64) or "
                     "wide_resnet50_2 (256), the backbones Vigil builds", (long long)c0);
    snprintf(v, sizeof v, "\"%s\"", bb);
    snprintf(why, sizeof why, "norms.0.weight has %lld channels", (long long)c0);
    if ((st = vg_anomalib_put(f, "backbone", v, vg_anomalib_same_ci_string, why)) != VG_OK) return st;
    if (h != w)
      return vg_fail(VG_ERR_UNSUPPORTED, "fastflow: norms.0.weight is %lldx%lld: a non-square input size (%lldx%lld), "
                     "Vigil's input is square", (long long)h, (long long)w, (long long)(4 * h), (long long)(4 * w));
    snprintf(v, sizeof v, "%lld", (long long)(4 * h));
    snprintf(why, sizeof why, "norms.0.weight is %lldx%lld at stride 4", (long long)h, (long long)w);
    if ((st = vg_anomalib_put(f, "input_size", v, vg_anomalib_same_int, why)) != VG_OK) return st;
  }
  int steps = 0;
  while (steps < 1000 && vg_anomalib_tensor(d, "fast_flow_blocks.0.module_list.%d.subnet.0.weight", steps)) steps++;
  if (!steps) return vg_fail(VG_ERR_FORMAT, "fastflow: no fast_flow_blocks.0.module_list.0.subnet.0.weight");
  snprintf(v, sizeof v, "%d", steps);
  snprintf(why, sizeof why, "fast_flow_blocks.0 has %d steps", steps);
  if ((st = vg_anomalib_put(f, "flow_steps", v, vg_anomalib_same_int, why)) != VG_OK) return st;
  /* hidden widths per scale: [ratio_lo, ratio_hi) intersected over the scales */
  double lo = 0, hi = INFINITY;
  f->nr = 0;
  for (int s = 0; s < 8; s++) {
    /* the scale's channels: its LayerNorm (ResNets) or its first global affine (1, C, 1, 1) */
    const vg_tensor *ns = vg_anomalib_tensor(d, "norms.%d.weight", s);
    const vg_tensor *gs = vg_anomalib_tensor(d, "fast_flow_blocks.%d.module_list.0.global_scale", s);
    const vg_tensor *sw = vg_anomalib_tensor(d, "fast_flow_blocks.%d.module_list.0.subnet.0.weight", s);
    if ((!ns && !(n0 == NULL && gs)) || !sw) break;
    int64_t c = ns ? vg_anomalib_dim(ns, 0) : vg_anomalib_dim(gs, 1), cin = c - c / 2, hid = vg_anomalib_dim(sw, 0);
    if (vg_anomalib_dim(sw, 1) != cin || hid < 1)
      return vg_fail(VG_ERR_FORMAT, "fastflow: fast_flow_blocks.%d.module_list.0.subnet.0.weight has %lld input "
                     "channels, %lld expected", s, (long long)vg_anomalib_dim(sw, 1), (long long)cin);
    f->in[f->nr] = cin;
    f->hid[f->nr++] = hid;
    lo = fmax(lo, (double)hid / (double)cin);
    hi = fmin(hi, (double)(hid + 1) / (double)cin);
  }
  if (!(lo < hi))
    return vg_fail(VG_ERR_FORMAT, "fastflow: the subnets' hidden widths follow no single hidden_ratio");
  double r = lo;
  for (int i = 0; i < f->nr; i++)   /* float rounding: the smallest double that gives every width */
    while ((int64_t)(r * (double)f->in[i]) < f->hid[i]) r = nextafter(r, INFINITY);
  snprintf(v, sizeof v, "%.17g", r);
  snprintf(why, sizeof why, "fast_flow_blocks.0.module_list.0.subnet.0.weight has %lld hidden channels for %lld inputs",
           (long long)f->hid[0], (long long)f->in[0]);
  if ((st = vg_anomalib_put(f, "hidden_ratio", v, same_ratio, why)) != VG_OK) return st;
  if (steps >= 2) {
    const vg_tensor *k1 = vg_anomalib_tensor(d, "fast_flow_blocks.0.module_list.1.subnet.0.weight");
    int64_t k = vg_anomalib_dim(k1, 2);
    if (k != 1 && k != 3)
      return vg_fail(VG_ERR_FORMAT, "fastflow: fast_flow_blocks.0.module_list.1.subnet.0.weight has a %lldx%lld kernel "
                     "(1x1 or 3x3 expected)", (long long)k, (long long)vg_anomalib_dim(k1, 3));
    snprintf(why, sizeof why, "fast_flow_blocks.0.module_list.1.subnet.0.weight is %lldx%lld", (long long)k, (long long)k);
    if ((st = vg_anomalib_put(f, "conv3x3_only", k == 3 ? "true" : "false", vg_anomalib_same_bool, why)) != VG_OK) return st;
  }
  return VG_OK;
}


/* anomalib import (methods/anomalib_import.c) */
static vg_nn_module *ff_anomalib_backbone(vg_method *m) {
  return vg_nn_child_get(vg_fastflow_module(m), "feature_extractor");
}

const vg_method_def vg_method_fastflow = {
  .name = "fastflow", .summary = "FastFlow (Yu et al. 2021) as anomalib's FastflowModel",
  .create = vg_fastflow_new, .config = FF_CONFIG, .quick = {12, 8, NULL},
  .paper_epochs = 500, .no_val = true,   /* paper Sec. 4.2: 500 epochs; nothing reads a validation split */
  .anomalib_infer = ff_anomalib_infer, .anomalib_load = vg_fastflow_load_anomalib,
  .anomalib_backbone = ff_anomalib_backbone,
};
