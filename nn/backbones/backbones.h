/* backbones.h — torchvision ResNets as feature extractors (CPU, f32).
 *
 *   vg_nn_module *net = vg_resnet_new("wide_resnet50_2",
 *                                     VG_RESNET_LAYER1 | VG_RESNET_LAYER2 | VG_RESNET_LAYER3, 0);
 *   vg_nn_load_state_pth(net, "wide_resnet50_2-95faca4d.pth", true);   // or random init
 *   vg_scope_begin();
 *   vg_tensor *f[3];
 *   if (vg_resnet_features(net, x, f) != VG_OK) puts(vg_last_error());   // f[0] = layer1 ...
 *   vg_scope_end();
 *   vg_nn_free(net);
 *
 * Architecture and state-dict names are torchvision's (0.14) exactly: conv1, bn1, relu,
 * maxpool, layer1..layer4 of BasicBlock (resnet18) or Bottleneck (the others) blocks with
 * downsample.0 (1x1 conv) / downsample.1 (BN), the stride on the 3x3 conv (ResNet v1.5),
 * width_per_group 128 for the wide variants. The model is truncated: only the layers up
 * to the last requested one are built, and avgpool/fc never are (a checkpoint's fc.* keys
 * are ignored on load). New models are in eval mode (BN uses running statistics) with
 * every parameter frozen (requires_grad off); vg_nn_train / vg_nn_requires_grad change it.
 *
 * The "stem" feature is relu(bn1(conv1(x))) (stride 2, before the max-pool, as timm's
 * features_only act1); layerK are the outputs of torchvision's layerK (stride 4..32). */
#ifndef VG_BACKBONES_H
#define VG_BACKBONES_H
#include "nn/nn.h"

enum {
  VG_RESNET_STEM = 1u << 0,
  VG_RESNET_LAYER1 = 1u << 1,
  VG_RESNET_LAYER2 = 1u << 2,
  VG_RESNET_LAYER3 = 1u << 3,
  VG_RESNET_LAYER4 = 1u << 4,
};

/* name: "resnet18" | "resnet50" | "wide_resnet50_2" | "wide_resnet101_2" | "resnext101_32x8d"
 * (Bottleneck 3x3 convs with groups 32, width_per_group 8). layers_mask: a
 * non-empty OR of VG_RESNET_*. Random init as torchvision's constructor: convs
 * kaiming_normal (fan_out, relu), BN weight 1 / bias 0, running mean 0 / var 1, drawn from
 * Vigil's Philox generator with seeds derived from `seed` (values differ from torch's).
 * NULL + message on a bad name or mask. */
vg_nn_module *vg_resnet_new(const char *name, unsigned layers_mask, uint64_t seed);

/* Is m a model made by vg_resnet_new? Its name and mask (either pointer may be NULL). */
bool vg_resnet_info(const vg_nn_module *m, const char **name, unsigned *layers_mask);

/* Number of feature maps vg_resnet_features writes (popcount of the mask) and the channel
 * count of the i-th one. */
int vg_resnet_num_features(const vg_nn_module *m);
int64_t vg_resnet_feature_channels(const vg_nn_module *m, int i);
const char *vg_resnet_feature_name(const vg_nn_module *m, int i);   /* "stem", "layer1", ... */

/* x: (N, 3, H, W) f32. Writes one tensor per requested layer, in order stem, layer1, ...,
 * into out[0..num_features-1] (current scope); stops after the last requested layer. */
vg_status vg_resnet_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out);

/* Test weights: every f32 tensor of the state dict (index i in state-dict order, counting
 * every entry) is set from Philox uniform u = vg_rand(seed = base_seed + i):
 *   conv weight (4-d)  U(-b, b), b = sqrt(3 / fan_in) (f32: lo + (hi - lo) * u)
 *   BN weight          0.5 + 0.5u        BN bias    0.2u - 0.1
 *   running_mean       0.2u - 0.1        running_var 0.5 + u
 * tools/gen_backbone_fixtures.py applies the same scheme to torchvision's models. */
vg_status vg_resnet_init_philox(vg_nn_module *m, uint64_t base_seed);

/* ---------------------------------------------------------------- loading weights
 * Copies named tensors into the module's parameters and buffers (by state-dict name, with
 * the prefixes "module.", "model.", "backbone." stripped). For truncated ResNets the keys
 * of layers that were not built (and fc.*, avgpool) are ignored. strict: any other
 * missing or unexpected key, or a shape mismatch, fails (nothing is partially reported as
 * success); not strict: missing keys keep their values, unexpected ones are ignored
 * (shape mismatches still fail). Integer buffers (num_batches_tracked) are converted; a file
 * with no num_batches_tracked at all (saved before torch 0.4) loads strictly without them, as
 * torch's BatchNorm does. DenseNet's old names "...denselayerN.norm.1.weight" are read as
 * "...denselayerN.norm1.weight" (torchvision's _load_state_dict), for every model. */
vg_status vg_nn_load_state_pth(vg_nn_module *m, const char *path, bool strict);
vg_status vg_nn_load_state_safetensors(vg_nn_module *m, const char *path, bool strict);
/* By extension: ".safetensors" or anything else as a torch zip checkpoint. */
vg_status vg_nn_load_state_file(vg_nn_module *m, const char *path, bool strict);
/* Loads a foreign PyTorch checkpoint (Lightning .ckpt or state_dict .pth) into m: each
 * tensor's name loses the leading prefixes in `strip` (tried in order, each at most once,
 * e.g. {"state_dict.", "model.", NULL}) and must then name one of m's f32 state entries
 * with the same shape (a Lightning .ckpt whose other entries name globals the reader refuses:
 * its "state_dict" entry alone, names without "state_dict."). Every f32 entry of m must be found, except those whose name starts
 * with `optional` (e.g. a frozen backbone's "encoder."; NULL = none); integer buffers are
 * skipped. All checks run before the first copy. Errors start with `who`. */
vg_status vg_nn_load_state_pth_prefixed(vg_nn_module *m, const char *path, const char *const *strip,
                                        const char *optional, const char *who);

/* ---------------------------------------------------------------- published weights
 * The weights the papers' tables use, by their published file names (the manifest
 * scripts/tables/weights.json, compiled in): vg_nn_load_state_pth / _file hash a file whose
 * base name is listed (SHA-256, base/sha256.h) and REFUSE it (VG_ERR_FORMAT, naming both
 * hashes) when it is not the published file: a corrupt or different download under the
 * published name would silently change every result. Weights of another name load unchecked.
 * vg_published_sha256: the manifest's hash of that base name, NULL when not listed;
 * *prefix_only (may be NULL) true when only the file name's hash prefix is known (torchvision's
 * name carries the SHA-256's first 8 hex digits; the full hash was not found in public sources). */
const char *vg_published_sha256(const char *base_name, bool *prefix_only);
/* VG_OK when path is not a listed name or is the published file (see above). */
vg_status vg_check_published_weights(const char *path);
/* ---------------------------------------------------------------- every backbone, one seam
 * Methods pick their feature extractor by name through this registry, never by family:
 *
 *   const char *taps[] = {"layer2", "layer3"};
 *   vg_nn_module *enc = vg_backbone_new("resnext101_32x8d", 2, taps, seed);
 *   vg_tensor *f[2];
 *   vg_backbone_features(enc, x, f);     // f[i]: (N, channels(i), H / stride(i), W / stride(i))
 *
 * A family (resnet.c, vit.c, mobilenet.c, densenet.c, ...) describes each model it builds with a
 * vg_backbone_desc and lists it in registry.c. Tap names are the family's (torchvision module names
 * for CNNs: "layer1", "features.6"; for ViTs "blocks.K" = the patch tokens after block K as an
 * (N, C, H/16, W/16) grid, "norm.K" = the same after the model's final norm, as FastFlow uses it).
 * Taps must be given in forward order; the model is built (and run) only up to the last one. */
typedef struct vg_backbone_desc vg_backbone_desc;
struct vg_backbone_desc {
  const char *name;         /* "resnet18", "deit_base_distilled_patch16_384", ... */
  const char *family;       /* "resnet", "vit", "mobilenet_v3", "densenet" */
  int native_size;          /* the input size the model requires (ViTs), 0 = any */
  int64_t num_params;       /* the full reference model's parameter count (torchvision / timm) */
  const char *taps_help;    /* the tap names it accepts, for messages: "stem, layer1..layer4" */
  vg_nn_module *(*create)(const vg_backbone_desc *d, int ntaps, const char *const *taps, uint64_t seed);
  bool (*owns)(const vg_backbone_desc *d, const vg_nn_module *m);   /* built by create(d, ...)? */
  vg_status (*features)(vg_nn_module *m, const vg_tensor *x, vg_tensor **out);
  int (*num_features)(const vg_nn_module *m);
  int64_t (*feature_channels)(const vg_nn_module *m, int i);
  int (*feature_stride)(const vg_nn_module *m, int i);   /* input pixels per feature pixel */
  const char *(*feature_name)(const vg_nn_module *m, int i);
  vg_status (*init_philox)(vg_nn_module *m, uint64_t base_seed);   /* test weights (tools/ mirror them) */
};

int vg_backbone_count(void);
const vg_backbone_desc *vg_backbone_at(int i);
/* NULL + a message listing the known names when name is not one */
const vg_backbone_desc *vg_backbone_find(const char *name);
/* the descriptor whose create() made m; NULL when none */
const vg_backbone_desc *vg_backbone_of(const vg_nn_module *m);
/* Frozen, eval-mode model truncated after the last tap; NULL + message on a bad name or tap. */
vg_nn_module *vg_backbone_new(const char *name, int ntaps, const char *const *taps, uint64_t seed);
vg_status vg_backbone_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out);
int vg_backbone_num_features(const vg_nn_module *m);
int64_t vg_backbone_feature_channels(const vg_nn_module *m, int i);
int vg_backbone_feature_stride(const vg_nn_module *m, int i);
const char *vg_backbone_feature_name(const vg_nn_module *m, int i);
vg_status vg_backbone_init_philox(vg_nn_module *m, uint64_t base_seed);
#endif
