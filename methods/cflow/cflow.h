/* cflow.h — CFLOW-AD (Gudovskiy et al., WACV 2022) as the official gudovskiy/cflow-ad
 * code trains and scores it (anomalib's variants as options), on the method contract.
 *
 *   vg_method *m;
 *   vg_cflow_new(cfg_json, &m);                         // or vg_method_create("cflow", ...)
 *   m->ops->train_step(m, images, step, &loss);         // fibres -> chunks of N, 1 Adam step each
 *   for (batches) m->ops->predict(m, x, maps + off, scores + off);
 *   m->ops->finalize(m, maps, n, h, w, scores);         // official whole-test-set normalisation
 *   vg_method_free(m);
 *
 * Model: frozen encoder (resnet18 | wide_resnet50_2, taps layer2..4 by default; mobilenet_v3_large,
 * taps features.6.proj, features.12.proj, features.15.proj = the official code's projection-conv
 * hooks before BN, the roles of layer2..4, nn/backbones/mobilenet.h; built through the backbone
 * registry, vg_backbone_new) and one
 * conditional decoder per tap: SequenceINN(C) of coupling_blocks AllInOneBlocks, condition
 * = 2-D sin/cos positional encoding (condition_vector dims), clamp 1.9 (FrEIA 0.2
 * clamp * tanh(0.1 a)), SOFTPLUS, soft (SO(C)) or hard permutation, subnet
 * Linear(d, 2d) - ReLU - Linear(2d, 2 floor(C/2)), d = ceil(C/2) + condition_vector.
 *   log p = C (-ln sqrt(2 pi)) - 0.5 |z|^2 + log|det J|;  log_prob = log p / C
 *   loss  = mean(-logsigmoid(log_prob)) over a chunk of fiber_batch fibres
 * train_step: per tap, E = N H W fibres in a random order (Philox randperm), E / N full
 * chunks (remainder dropped, as the official code), one optimizer step per chunk (one
 * Adam over every decoder). zero_grad "none" (default): grads dropped before each chunk, as
 * torch >= 2.0's zero_grad() (anomalib 2.x, or the official code on torch 2): only the
 * decoder of the chunk's tap moves; "zero" (paper_setup): grads zeroed, kept, as torch 1.x
 * (the paper's runs): every decoder already trained moves on its Adam momentum; lr by the official
 * warm-up + cosine per meta-epoch (vg_cflow_lr_apply), with meta-epoch = step /
 * (sub_epochs * iters_per_epoch). The reported loss is the mean over all chunks.
 * Maps: per tap exp(log_prob - max) upsampled bilinearly (align_corners=True) to the
 * input size, summed over taps; map = max(map) - map; score = max of the map. predict
 * normalises by the batch maxima (anomalib); with map_norm "official" finalize recomputes
 * every map with the maxima over the whole test set (predict keeps the log-likelihoods).
 * State-dict names are anomalib's: encoder.feature_extractor.*, decoders.<l>.module_list.<j>.*.
 *
 * Config keys: the table CF_CONFIG in cflow.c (key, default, range, help; printed by
 * `vigil train cflow --help`). iters_per_epoch: `vigil train` sets it to the training
 * loader's batches per epoch unless given, as the official meta-epoch is one pass over the
 * data; category: the data category (`vigil train` fills it in). paper_setup true = the
 * official MVTec reference runs — input_size from the category (vg_cflow_paper_input_size,
 * gudovskiy/cflow-ad README), rotate 5 (the official RandomRotation(5) of the training images),
 * zero_grad "zero" (torch 1.x) and every other key at its official value (= the defaults); a contradicting key is an error.
 * rotate R: every training image rotated by U[-R, R] degrees in train_step (nearest, black
 * fill, draws keyed on (seed, step, row): methods/augment.h). conditional false: the paper's
 * unconditional ablation (UFLOW: no positional condition, subnet input ceil(C/2)).
 * eval_every_meta_epoch: m->eval_every = sub_epochs x iters_per_epoch, so `vigil train`
 * evaluates on the test split after every meta epoch and metrics.json gets the official
 * code's best-epoch numbers as best_epoch_* (the final model's stay the main ones).
 * The descriptor declares no validation hold-out (the official code has none). */
#ifndef VG_METHODS_CFLOW_H
#define VG_METHODS_CFLOW_H
#include "methods/method.h"
#include "nn/nn.h"

#define VG_CFLOW_MAX_LAYERS 4

vg_status vg_cflow_new(const vg_json *cfg, vg_method **out);
vg_nn_module *vg_cflow_module(vg_method *m);
int vg_cflow_num_layers(const vg_method *m);
/* Positional encoding (D, H, W) as a new tensor in the current scope (D % 4 == 0). */
vg_tensor *vg_cflow_positional_encoding(int64_t D, int64_t H, int64_t W);
/* Encoder features of images -> fibres of tap l: e (N*H*W, C), c (N*H*W, D) in the current
 * scope, rows in (n, h, w) order; h[l], w[l] the tap's size. */
vg_status vg_cflow_fibres(vg_method *m, const vg_tensor *images, vg_tensor **e, vg_tensor **c, int64_t *h,
                          int64_t *w);
/* log_prob = log p / C per fibre (E,) through decoder l. */
vg_tensor *vg_cflow_log_prob(vg_method *m, int l, const vg_tensor *e, const vg_tensor *c);
/* One train_step with given fibre orders (perms[l]: E_l i64 values, NULL = Philox); writes
 * the loss of every optimizer step into chunk_losses (capacity cap; *nchunks = count). */
vg_status vg_cflow_train_step_ex(vg_method *m, const vg_tensor *images, int64_t step, const int64_t *const *perms,
                                 float *chunk_losses, int cap, int *nchunks, double *loss);
vg_status vg_cflow_load_anomalib(vg_method *m, const char *path);
/* The official input size of an MVTec category (gudovskiy/cflow-ad README: 128, 256 or
 * 512), 0 for anything else. */
int vg_cflow_paper_input_size(const char *category);
#endif
