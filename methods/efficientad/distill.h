/* methods/efficientad/distill.h — EfficientAD teacher pretraining (Algorithm 3 of
 * Batzner et al.; nelson1425/EfficientAD pretraining.py): a PDN (padding on) learns to
 * regress standardised PatchCore-style features of a pretrained extractor
 * (wide_resnet101_2 layer2 + layer3 at 2x the PDN's input size) on generic images. Any
 * registry backbone with distillation taps may be the extractor (vg_effad_distill_taps:
 * ResNets incl. resnext101_32x8d layer2 + layer3, densenet201 features.denseblock2 +
 * features.denseblock3, as PatchCore's ensemble; the paper's Table 9).
 *
 *   vg_dataset ds;
 *   vg_ds_image_folder("/data/imagenet/train", &ds);
 *   vg_effad_distill_opts o;
 *   vg_effad_distill_defaults(&o);
 *   o.weights = "wide_resnet101_2-32ee1156.pth";
 *   o.images = &ds;
 *   o.out = "teacher_small.safetensors";
 *   if (vg_effad_distill(&o) != VG_OK) fprintf(stderr, "%s\n", vg_last_error());
 *   // later: vg_nn_load_state_file(vg_effad_pdn_new(VG_EFFAD_S, 384, false, 0), o.out, true)
 *
 * Per iteration (batch B, view v):
 *   rows r = 0..B-1 take sample position p = it * B + r of an endless stream: epoch
 *     e = p / n visits the dataset in a Fisher-Yates order seeded by (seed, e); row p
 *     is greyed (Pillow convert("L") -> RGB on the 8-bit image, RandomGrayscale) when
 *     its own uniform number < p_grey. Both views come from the same (grey or not)
 *     image, resized separately: 2v x 2v + ImageNet normalisation for the extractor,
 *     v x v in [0, 1] for the PDN (which normalises inside).
 *   y = (targets(extractor view) - mean) / std;  loss = MSE(y, PDN(pdn view));  Adam.
 * mean/std: per target channel, over stats_images images of a second stream (stats
 *   pass 1: positions 0..S-1, mean of per-image means; pass 2: positions S..2S-1, mean
 *   of per-image mean squared deviations; std = sqrt), as nelson's feature_normalization
 *   (which reads 2 x 10000 images from its shuffled, grey-augmented loader). A channel
 *   with std 0 (constant targets, where nelson would divide 0 by 0) gets std 1.
 * Every random choice is a function of (seed, position), so a run resumed from its
 * checkpoint is bit-identical to an uninterrupted one (for the same thread count).
 *
 * Files: the checkpoint "<out>.ckpt.safetensors" (vg_nn_checkpoint format: model.pdn.*,
 * model.target_mean/std, optim.*, config JSON with the iteration) every save_every
 * iterations and at the end; `out` at the end: the PDN state dict (conv1.weight, ...)
 * with metadata {"format": "vigil-effad-teacher", backbone, weights, iters, seed, ...}.
 * Both written to a temp name, fsynced and renamed. A resumed run may ask for more
 * iterations than the first one did (there is no schedule).
 *
 * Cost (2-core CPU, 2 threads, a shared box at load ~7): the WRN-101 targets at 512 take
 * ~13.6 s per image (layer2 + layer3 ~ 216 GFLOP); a PDN-S step (forward, backward, Adam)
 * at 256 takes ~7.3 s per image (116 s for a batch of 16). The paper's 60,000 x 16
 * iterations are a GPU job (device = VG_CUDA); on a CPU use fewer iterations or a smaller
 * view. On a GPU the target pipeline's patch pooling + aggregation run as two 3x3
 * convolutions with fixed folded weights (the same linear map, summed in another order:
 * targets within ~1e-6 relative of the CPU's) and the batch goes through the extractor
 * at once; the image order, grey decisions and statistics are the CPU's. */
#ifndef VG_METHODS_EFFAD_DISTILL_H
#define VG_METHODS_EFFAD_DISTILL_H
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "datasets/datasets.h"
#include "methods/efficientad/efficientad.h"

typedef struct {
  const char *backbone;        /* target extractor, default "wide_resnet101_2" (any name with
                                  vg_effad_distill_taps: the registry's ResNets, densenet201) */
  const char *weights;         /* torchvision .pth/.safetensors for the backbone; NULL/"" = random
                                  init (a loud warning unless quiet: the teacher is not comparable
                                  to the paper's) */
  const vg_dataset *images;    /* distillation images: every sample is used */
  vg_effad_size size;          /* VG_EFFAD_S or VG_EFFAD_M */
  int64_t out_channels;        /* 384 */
  const char *out;             /* teacher file (.safetensors, PDN state dict) */
  int64_t iters, batch;        /* 60000, 16 */
  int64_t stats_images;        /* images for the target channel statistics, 10000 (capped at n) */
  int64_t save_every;          /* checkpoint period in iterations, 1000 (<= 0: only at the end) */
  int view;                    /* PDN input size 256; the extractor sees 2 * view (512) */
  double lr, weight_decay;     /* 1e-4, 1e-5 */
  double p_grey;               /* 0.1 */
  uint64_t seed;               /* 42 */
  int workers;                 /* image decoding threads, 2 */
  bool resume;                 /* continue from the checkpoint next to `out` */
  bool quiet;                  /* no progress lines or warnings on stderr */
  vg_device device;            /* VG_CPU (default) or VG_CUDA: the extractor, PDN and Adam run there;
                                  images are decoded on the host; checkpoints and the teacher are
                                  the same files (a GPU run resumes on the CPU and back) */
  /* added */
  int64_t log_every;           /* progress line period in iterations (stderr), 100 */
  int64_t stop_after;          /* > 0: stop (checkpoint, no `out`) once this many iterations ran
                                  in this call — for interruption tests; 0 = run to iters */
  double *loss_log;            /* NULL, or iters entries: loss_log[i] = the loss of iteration i */
  volatile sig_atomic_t *interrupt;   /* NULL, or a flag (a signal handler's): when set, the current
                                  iteration ends with a checkpoint and the call returns VG_OK
                                  without `out` (during the statistics: an error, nothing saved) */
} vg_effad_distill_opts;

void vg_effad_distill_defaults(vg_effad_distill_opts *o);
vg_status vg_effad_distill(const vg_effad_distill_opts *o);

/* The PatchCore target pipeline on a (N, 3, 2v, 2v) ImageNet-normalised batch:
 * *out = N x out_channels x (2v/8) x (2v/8), unnormalised, in the current scope, on the
 * device of wrn (x must be there too); the grid is the first tap's (2v/8 for the ResNets and
 * densenet201). wrn: a backbone (vg_backbone_new / vg_resnet_new) providing its family's
 * two distillation taps (vg_effad_distill_taps; other taps may be there too). Runs without
 * autograd. On a GPU: see the folded form above. Each tap's C*9 vector is pooled to 1024
 * whatever C is (PatchCore's Preprocessing), so any channel counts work.
 * Per layer, unfold(3x3, pad 1) -> adaptive_avg_pool1d(C*9 -> 1024) is computed as one
 * direct kernel, and layer3's bilinear upsampling is applied after the pooling: both
 * maps are linear on different axes (pooling on the feature axis, upsampling on the
 * grid), so this equals nelson's upsample-then-pool up to rounding without
 * materialising the (C*9) x H x W unfolded maps. */
vg_status vg_effad_distill_targets(vg_nn_module *wrn, const vg_tensor *x, int64_t out_channels, vg_tensor **out);
/* The two feature maps (registry tap names, forward order) whose targets a backbone gives:
 * "layer2", "layer3" for the ResNet family; "features.denseblock2", "features.denseblock3"
 * for DenseNet. An error naming the backbone for an unknown name or another family. */
vg_status vg_effad_distill_taps(const char *backbone, const char *taps[2]);

/* One sample's two views from a decoded image (pretraining.py's train_transform):
 * big = 3 x 2v x 2v ImageNet-normalised, small = 3 x v x v in [0,1]; grey: RandomGrayscale
 * applied (8-bit: Pillow convert("L") -> RGB; 16-bit: 0.299/0.587/0.114 on the floats). */
vg_status vg_effad_distill_views(const vg_image *img, int view, bool grey, float *big, float *small);
#endif
