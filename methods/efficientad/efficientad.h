/* methods/efficientad/efficientad.h — EfficientAD-S/-M (Batzner et al., WACV 2024) on
 * Vigil's tensors: the patch description networks (PDN-S, PDN-M), the autoencoder of
 * Table 8, the three training losses of Algorithm 1 and the anomaly maps of
 * Algorithm 2, laid out like anomalib's EfficientAdModel so its state dicts map 1:1
 * (teacher.conv1.weight, student.conv4.bias, ae.encoder.enconv1.weight, ...).
 *
 *   vg_effad_model *m = vg_effad_model_new(VG_EFFAD_S, 384, false, 0);   // seed 0
 *   vg_scope_begin();
 *   vg_tensor *t = vg_effad_teacher_forward(m, img);       // img: N x 3 x H x W in [0,1]
 *   vg_effad_losses L;                                      // training step (Algorithm 1)
 *   vg_effad_compute_losses(m, img, aug_img, penalty_img, dropout_seed, &L);
 *   vg_backward(L.total);
 *   vg_tensor *map_st, *map_ae;                             // inference (Algorithm 2)
 *   vg_effad_maps(m, img, true, &map_st, &map_ae);          // N x 1 x H x W each
 *   vg_scope_end();
 *   vg_effad_model_free(m);
 *
 * Ownership: the model owns its modules and statistics; forward results live in the
 * caller's scope. */
#ifndef VG_METHODS_EFFICIENTAD_H
#define VG_METHODS_EFFICIENTAD_H
#include <stdbool.h>
#include <stdint.h>
#include "tensor/tensor.h"
#include "nn/nn.h"

typedef enum { VG_EFFAD_S = 0, VG_EFFAD_M = 1 } vg_effad_size;

/* PDN (Tables 6/7): conv1..conv4 (S) or conv1..conv6 (M) children, ImageNet input
 * normalisation inside forward, like anomalib. padding = true for distillation. */
vg_nn_module *vg_effad_pdn_new(vg_effad_size size, int64_t out_channels, bool padding, uint64_t seed);
/* Autoencoder (Table 8): children encoder.enconv1..6, decoder.deconv1..8; the decoder's
 * upsampling sizes derive from the image size as anomalib's Decoder; dropout p = 0.2
 * when the module is in training mode (mask stream from dropout_seed). */
vg_nn_module *vg_effad_ae_new(int64_t out_channels, bool padding, uint64_t seed);
vg_tensor *vg_effad_ae_forward(vg_nn_module *ae, const vg_tensor *x, int64_t h, int64_t w,
                               uint64_t dropout_seed);

typedef struct {
  vg_effad_size size;
  int64_t out_channels;       /* teacher channels (384); the student has 2x */
  bool padding, pad_maps;     /* false / true: no conv padding, maps padded by 4 */
  vg_nn_module *teacher, *student, *ae;
  vg_tensor *mean, *std;      /* 1 x C x 1 x 1 teacher channel statistics (0 = unset) */
  int stats_flag;             /* on a device: cached "mean/std are set" (-1 unknown; see model.c) */
  float qa_st, qb_st, qa_ae, qb_ae;   /* map quantiles (all 0 = unset) */
  double q_a, q_b;            /* the quantile levels a, b (0.9, 0.995; paper Table 3) */
  /* the paper's "without map normalization" ablation (Tables 4 / 5): the Gaussian baseline
   * (validation pixels to mean 0, variance 1) instead of the quantiles. It is stored in the
   * same four floats, qa = mean, qb = mean + 0.1 std, so 0.1 (map - qa) / (qb - qa) =
   * (map - mean) / std and a checkpoint needs no flag. */
  bool gaussian_norm;
  float p_hard;               /* 0.999 */
  /* accumulators of the statistics passes (vg_effad_stats_*, vg_effad_quantiles_*) */
  int64_t acc_n;
  double *acc_sum, *acc_sumsq;
  float *acc_st, *acc_ae;
  int64_t acc_maps, acc_cap;
} vg_effad_model;

/* Teacher channel mean/std over the training set (anomalib's teacher_channel_mean_std:
 * sums of y and y^2 per channel, std = sqrt(E[y^2] - mean^2)): begin, add each batch
 * (N x 3 x H x W), end sets m->mean / m->std. */
void vg_effad_stats_begin(vg_effad_model *m);
vg_status vg_effad_stats_add(vg_effad_model *m, const vg_tensor *img);
vg_status vg_effad_stats_end(vg_effad_model *m);
/* Map normalisation quantiles over validation images: qa = q(q_a), qb = q(q_b) (0.9 /
 * 0.995 by default) of every unnormalised map pixel (selection-based quantile, no 2^24
 * sampling); gaussian_norm: qa = mean, qb = mean + 0.1 std (population std, in double) of
 * those pixels (a constant map: std taken as 1). */
void vg_effad_quantiles_begin(vg_effad_model *m);
vg_status vg_effad_quantiles_add(vg_effad_model *m, const vg_tensor *img);
vg_status vg_effad_quantiles_end(vg_effad_model *m);

vg_effad_model *vg_effad_model_new(vg_effad_size size, int64_t out_channels, bool padding,
                                   uint64_t seed);
void vg_effad_model_free(vg_effad_model *m);   /* NULL ok */
/* Fills every parameter (state-dict order, i = 0, 1, ...) with U(-b, b), b =
 * 1/sqrt(fan_in), from vg_uniform_(seed + i): torch's default Conv2d bound, and
 * reproducible in numpy (tools/philox.py) for conformance fixtures. */
void vg_effad_init_uniform(vg_nn_module *m, uint64_t seed);

vg_tensor *vg_effad_teacher_forward(vg_effad_model *m, const vg_tensor *img);  /* normalised, no grad */

typedef struct {
  vg_tensor *st, *ae, *stae, *total;   /* 0-d; total = st + ae + stae */
  vg_tensor *hard, *penalty;           /* st = hard + penalty (penalty NULL without images) */
} vg_effad_losses;
/* Algorithm 1 for one batch: img, aug (the augmented copy for the AE branch) and
 * penalty (ImageNet batch, or NULL = no penalty): all N x 3 x H x W in [0,1]. */
vg_status vg_effad_compute_losses(vg_effad_model *m, const vg_tensor *img, const vg_tensor *aug,
                                  const vg_tensor *penalty, uint64_t dropout_seed,
                                  vg_effad_losses *out);
/* Algorithm 2 maps (N x 1 x H x W each, resized bilinearly to the input size; pad of 4
 * when pad_maps and no padding); normalize applies the quantile normalisation. */
vg_status vg_effad_maps(vg_effad_model *m, const vg_tensor *img, bool normalize,
                        vg_tensor **map_st, vg_tensor **map_ae);
/* ---------------------------------------------------------------- the method
 * "efficientad" on the method contract (methods/method.h). Config keys: the table EA_CONFIG
 * in method.c (key, default, range, help; printed by `vigil train efficientad --help`);
 * distill_iters / distill_batch / distill_stats_images / distill_view default to auto: with
 * weights the paper's 60000 / 16 / 10000 / input_size, without a smoke run 8 / 2 / 4 / 128. */
#include "methods/method.h"
vg_status vg_efficientad_new(const vg_json *cfg, vg_method **out);
vg_effad_model *vg_effad_method_model(vg_method *m);
/* Loads an anomalib EfficientAd checkpoint (Lightning .ckpt or state_dict .pth: teacher,
 * student, ae, mean_std, quantiles) into the method. */
vg_status vg_effad_load_anomalib(vg_method *m, const char *path);
/* Teacher PDN weights from nelson1425's teacher_{small,medium}.pth (nn.Sequential keys
 * 0., 3., 6., 8. (S) / 0., 3., 6., 8., 10., 12. (M)), anomalib's pretrained_teacher /
 * pdn_{small,medium}.pth (conv1.weight ...), a full anomalib checkpoint (teacher.*), or a
 * `vigil distill` .safetensors. Checks every tensor before copying. */
vg_status vg_effad_teacher_load(vg_nn_module *pdn, vg_effad_size size, const char *path);
/* The AE branch augmentation, torchvision tensor semantics: kind 0 brightness, 1 contrast,
 * 2 saturation, factor f; src/dst: n x 3 x h x w in [0,1] (dst may not alias src). */
vg_status vg_effad_augment(const float *src, float *dst, int64_t n, int64_t h, int64_t w, int kind, float f);
#endif
