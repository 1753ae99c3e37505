/* densenet.h — torchvision DenseNet-201 as a truncated feature extractor (CPU, f32),
 * through the registry (backbones.h: vg_backbone_new("densenet201", ...)).
 *
 *   const char *taps[] = {"features.denseblock2", "features.denseblock3"};
 *   vg_nn_module *m = vg_backbone_new("densenet201", 2, taps, 0);
 *   vg_nn_load_state_file(m, "densenet201-c1103571.pth", true);   // old keys renamed on load
 *
 * Structure and state-dict names are torchvision's (models/densenet.py): features.{conv0
 * (7x7/2, no bias), norm0, relu0, pool0 (max 3x3/2 pad 1)}, features.denseblockK.denselayerN
 * .{norm1, relu1, conv1 (1x1 -> bn_size * growth), norm2, relu2, conv2 (3x3 -> growth)},
 * features.transitionK.{norm, relu, conv (1x1, halves the channels), pool (avg 2x2/2)},
 * features.norm5; BN eps 1e-5; no classifier (a checkpoint's classifier.* and the keys of
 * stages that were not built are ignored on load). A dense block's output is cat(input,
 * new_1, ..., new_N) on channels, before any BN (torchvision's hook on the block module).
 *
 * Taps (forward order, strides for densenet201 at input H):
 *   features.relu0 (64 ch, /2), features.pool0 (64, /4), features.denseblock1 (256, /4),
 *   features.transition1 (128, /8), features.denseblock2 (512, /8), features.transition2 (256,
 *   /16), features.denseblock3 (1792, /16), features.transition3 (896, /32),
 *   features.denseblock4 (1920, /32), features.norm5 (1920, /32: BN output, before the final
 *   ReLU of torchvision's forward).
 * The model is built only up to the last tap. New models: eval mode, frozen; random init as
 * torchvision's constructor (conv kaiming_normal fan_in relu gain, BN 1 / 0) from Philox
 * seeds derived from `seed`. Test weights: vg_resnet_init_philox's scheme (any state dict). */
#ifndef VG_DENSENET_H
#define VG_DENSENET_H
#include "nn/backbones/backbones.h"

/* name: "densenet201"; NULL + message on a bad name or tap (taps distinct, forward order) */
vg_nn_module *vg_densenet_new(const char *name, int ntaps, const char *const *taps, uint64_t seed);
/* Is m a model from vg_densenet_new? Its name (may be NULL). */
bool vg_densenet_info(const vg_nn_module *m, const char **name);
int vg_densenet_num_features(const vg_nn_module *m);
int64_t vg_densenet_feature_channels(const vg_nn_module *m, int i);
int vg_densenet_feature_stride(const vg_nn_module *m, int i);
const char *vg_densenet_feature_name(const vg_nn_module *m, int i);
/* x: (N, 3, H, W) f32; one map per tap into out[] (current scope) */
vg_status vg_densenet_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out);
/* a checkpoint key the truncated model does not hold on purpose (classifier.*, stages not
 * built): the loader skips it */
bool vg_densenet_ignores_key(const vg_nn_module *m, const char *key);
#endif
