/* fastflow.h — FastFlow (Yu et al. 2021) as anomalib's FastflowModel, on the method
 * contract (methods/method.h).
 *
 *   vg_method *m;
 *   vg_fastflow_new(cfg_json, &m);                  // or vg_method_create("fastflow", cfg, &m)
 *   m->ops->train_step(m, images, step, &loss);     // one Adam step on the batch
 *   m->ops->predict(m, images, maps, scores);       // maps in [-1, 0], score = max
 *   vg_fastflow_load_anomalib(m, "fastflow.ckpt");  // anomalib Lightning .ckpt or state_dict .pth
 *   vg_method_free(m);
 *
 * Model: frozen backbone (resnet18 | wide_resnet50_2, layer1..3, eval mode) -> trainable
 * LayerNorm([C, H/s, W/s]) per scale -> one SequenceINN(C, H/s, W/s) per scale of
 * flow_steps AllInOneBlocks (clamp 2.0, FrEIA 0.2 tanh(0.1 a) soft clamp as anomalib's
 * vendored block, hard permutation, SOFTPLUS global affine), subnet Conv(k)-ReLU-Conv(k),
 * hidden = int(C * hidden_ratio), k = 3, or 3,1,3,1... unless conv3x3_only.
 *   loss = sum_scales mean_batch(0.5 sum_chw z^2 - logdet)
 *   map  = mean_scales upsample_bilinear(align_corners=False)(-exp(-0.5 mean_c z^2))
 * State-dict names are anomalib's: feature_extractor.*, norms.<i>.{weight,bias},
 * fast_flow_blocks.<i>.module_list.<j>.{global_scale,global_offset,w_perm,w_perm_inv,
 * subnet.0.weight,...} (+ "vigil_step" in Vigil checkpoints).
 *
 * Config keys: the table FF_CONFIG in fastflow.c (key, default, range, help; printed by
 * `vigil train fastflow --help`). weights "" = random backbone (m->random_backbone = true);
 * resize "float" (vg_image_float_imagenet_transform) is the default of `vigil predict --from-anomalib`.
 * Transformer backbones (cait_m48_448, deit_base_distilled_patch16_384) have an enum value
 * (vg_fastflow_backbone) and a feature-extractor seam, but are not implemented.
 * Augmentation (paper Table 8 / Sec. 6.2, off by default): hflip (p 0.5), vflip (p 0.3),
 * rotate R (p 0.7, angle U[-R, R], torchvision RandomRotation's nearest + black fill), applied
 * in train_step to each sample of the batch with draws keyed on (seed, step, row)
 * (methods/augment.h), so a resumed run makes the same draws. The descriptor declares the
 * paper's 500 epochs (vigil train --data without a schedule) and no validation hold-out. */
#ifndef VG_METHODS_FASTFLOW_H
#define VG_METHODS_FASTFLOW_H
#include "methods/method.h"
#include "nn/nn.h"

typedef enum {
  VG_FASTFLOW_RESNET18 = 0,
  VG_FASTFLOW_WIDE_RESNET50_2,
  VG_FASTFLOW_CAIT_M48_448,            /* not implemented */
  VG_FASTFLOW_DEIT_BASE_DISTILLED_384, /* not implemented */
} vg_fastflow_backbone;

#define VG_FASTFLOW_MAX_SCALES 3

vg_status vg_fastflow_new(const vg_json *cfg, vg_method **out);
/* The whole model (anomalib names) for weight surgery and tests. */
vg_nn_module *vg_fastflow_module(vg_method *m);
int vg_fastflow_num_scales(const vg_method *m);
/* Normalised features -> flows, in the current scope: z[s] (N,C,h,w), logdet[s] (N,). */
vg_status vg_fastflow_forward(vg_method *m, const vg_tensor *x, vg_tensor **z, vg_tensor **logdet);
vg_tensor *vg_fastflow_loss(int nscales, vg_tensor *const *z, vg_tensor *const *logdet);   /* () */
vg_tensor *vg_fastflow_anomaly_map(int nscales, vg_tensor *const *z, int64_t h, int64_t w); /* (N,1,h,w) */
vg_status vg_fastflow_load_anomalib(vg_method *m, const char *path);
#endif
