/* mobilenet.h — torchvision mobilenet_v3_large as a truncated feature extractor (CPU, f32).
 * Made through the registry (backbones.h): vg_backbone_new("mobilenet_v3_large", n, taps, seed).
 *
 * Architecture and state-dict names are torchvision's (0.13+) exactly: features.0 =
 * Conv 3->16 s2 + BN + Hardswish ("features.0.0.weight", "features.0.1.*"); features.1..15 =
 * InvertedResidual with `block` = [expand 1x1 Conv+BN+act] - depthwise kxk Conv+BN+act -
 * [SqueezeExcitation: avgpool, fc1 (1x1 conv, bias), ReLU, fc2, Hardsigmoid, times the input]
 * - project 1x1 Conv+BN (no activation), plus the input when stride 1 and in == out
 * ("features.K.block.J.0.weight", ".J.1.*", ".J.fc1.weight" ...); features.16 = Conv 160->960
 * + BN + Hardswish. BatchNorm eps 1e-3 (momentum 0.01). The model is built up to the block of
 * the last tap (avgpool/classifier never; the full torchvision model has 5,483,032
 * parameters, features.0..16 2,971,952 of them). Eval mode, every parameter frozen.
 *
 * Taps (forward order: "features.K.proj" comes before "features.K"):
 *   "features.K"       K = 0..16: the output of features[K] (after the residual add)
 *   "features.K.proj"  K = 1..15: the projection 1x1 conv's output, BEFORE its BatchNorm and
 *                      before the residual add: the tensor the official CFLOW-AD code hooks
 *                      (gudovskiy/cflow-ad model.py: encoder[b].block[-1][-3] on an old
 *                      torchvision whose ConvBNActivation had 3 children Conv, BN, Identity).
 *                      The torchvision module path of that conv, "features.K.block.J.0" (J the
 *                      block's last index), is accepted as the same tap.
 * Channels 16 (f0-1, /2), 24 (f2-3, /4), 40 (f4-6, /8), 80 (f7-10, /16), 112 (f11-12, /16),
 * 160 (f13-15, /32), 960 (f16, /32).
 * CFLOW-AD's official mobilenet_v3_large taps: features.6.proj, features.12.proj,
 * features.15.proj (40, 112, 160 channels at /8, /16, /32) in that order.
 *
 * Random init as torchvision's constructor: convs kaiming_normal (fan_out), conv biases 0,
 * BN weight 1 / bias 0 (Vigil's Philox draws; values differ from torch's). Test weights
 * (init_philox): the scheme of vg_resnet_init_philox (backbones.h), mirrored in
 * tools/gen_mobilenet_fixtures.py. */
#ifndef VG_MOBILENET_H
#define VG_MOBILENET_H
#include "nn/backbones/backbones.h"

/* Is m a model made by the mobilenet_v3_large descriptor? *last_stage (may be NULL): the index
 * K of the last features[K] built. */
bool vg_mobilenet_v3_info(const vg_nn_module *m, int *last_stage);
/* Keys of torchvision's full mobilenet_v3_large that the truncated model m never has:
 * classifier.*, avgpool.* and features.K.* for K past the last stage built (so the full
 * torchvision checkpoint loads strictly into CFLOW-AD's encoder, as ResNets and DenseNets do). */
bool vg_mobilenet_v3_ignores_key(const vg_nn_module *m, const char *key);
#endif
