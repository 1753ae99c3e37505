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
 * Model: frozen backbone built through the registry (nn/backbones/backbones.h): resnet18 |
 * wide_resnet50_2 (layer1..3, eval mode) -> trainable LayerNorm([C, H/s, W/s]) per scale; or
 * cait_m48_448 / deit_base_distilled_patch16_384 (one scale, 768 channels, stride 16: the
 * patch tokens after block 40 / 7 and the model's final, frozen norm, as anomalib's
 * _get_cait_features / _get_vit_features; no LayerNorms) -> one SequenceINN(C, H/s, W/s) per scale of
 * flow_steps AllInOneBlocks (clamp 2.0, FrEIA 0.2 tanh(0.1 a) soft clamp as anomalib's
 * vendored block, hard permutation, SOFTPLUS global affine), subnet Conv(k)-ReLU-Conv(k),
 * hidden = int(C/2 * hidden_ratio), k = 3, or 3,1,3,1... unless conv3x3_only.
 *   loss = sum_scales mean_batch(0.5 sum_chw z^2 - logdet)
 *   map  = mean_scales upsample_bilinear(align_corners=False)(-exp(-0.5 mean_c z^2))
 * State-dict names are anomalib's: feature_extractor.*, norms.<i>.{weight,bias},
 * fast_flow_blocks.<i>.module_list.<j>.{global_scale,global_offset,w_perm,w_perm_inv,
 * subnet.0.weight,...} (+ "vigil_step" in Vigil checkpoints).
 *
 * Config keys: the table FF_CONFIG in fastflow.c (key, default, range, help; printed by
 * `vigil train fastflow --help`). weights "" = random backbone (m->random_backbone = true);
 * resize "float" (vg_image_float_imagenet_transform) is the default of `vigil predict --from-anomalib`.
 * Backbone-dependent defaults: input_size 256 / the transformer's native size (448 CaiT, 384
 * DeiT); flow_steps 8 / 20; hidden_ratio 1.0 / 0.16 (the transformers' values are the paper's
 * setting, gathierry/FastFlow configs; anomalib's defaults are 8 and 1.0 for every backbone);
 * conv3x3_only true for resnet18 only. With cait/deit at 20 steps, ratio 0.16 the flow has
 * 7,074,500 trained parameters (hidden 61); the paper's "14.8M" is hidden C/6 = 128
 * (hidden_ratio 0.334 here): 14,794,240 (tests/test_fastflow_vit.c counts both).
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
  VG_FASTFLOW_CAIT_M48_448,
  VG_FASTFLOW_DEIT_BASE_DISTILLED_384,
} vg_fastflow_backbone;

#define VG_FASTFLOW_MAX_SCALES 3

vg_status vg_fastflow_new(const vg_json *cfg, vg_method **out);
/* The same on a prebuilt encoder (taken over; freed on error too): a registry model or a
 * vg_vit_new_config model (tests: tiny ViTs; cfg's "backbone" picks the code path, the
 * encoder gives channels and patch size; input_size auto = its img_size). */
vg_status vg_fastflow_new_encoder(const vg_json *cfg, vg_nn_module *encoder, vg_method **out);
/* One scale's flow exactly as the method builds it (state-dict names below
 * fast_flow_blocks.<scale>, seeds from `seed` and `scale`), e.g. to count parameters
 * without a backbone. NULL + message on error. */
vg_nn_module *vg_fastflow_flow_new(int64_t channels, int64_t h, int64_t w, int flow_steps, double hidden_ratio,
                                   bool conv3x3_only, uint64_t seed, int scale);
/* The whole model (anomalib names) for weight surgery and tests. */
vg_nn_module *vg_fastflow_module(vg_method *m);
int vg_fastflow_num_scales(const vg_method *m);
/* Normalised features -> flows, in the current scope: z[s] (N,C,h,w), logdet[s] (N,). */
vg_status vg_fastflow_forward(vg_method *m, const vg_tensor *x, vg_tensor **z, vg_tensor **logdet);
vg_tensor *vg_fastflow_loss(int nscales, vg_tensor *const *z, vg_tensor *const *logdet);   /* () */
vg_tensor *vg_fastflow_anomaly_map(int nscales, vg_tensor *const *z, int64_t h, int64_t w); /* (N,1,h,w) */
vg_status vg_fastflow_load_anomalib(vg_method *m, const char *path);
#endif
