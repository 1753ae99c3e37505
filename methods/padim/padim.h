/* padim.h — PaDiM (Defard et al. 2020) as anomalib 2.7's PadimModel, on the method contract
 * (methods/method.h).
 *
 * Embedding: a frozen ResNet's layer1..3 (resnet18: 64+128+256 = 448 channels; wide_resnet50_2:
 * 256+512+1024 = 1792), layer2/3 resized with `nearest` (torch's F.interpolate default) to
 * layer1's grid (stride 4) and concatenated, then n_features channels picked by `idx` (a random
 * permutation's first n_features, unsorted: anomalib's torch.randperm; here vg_randperm(seed)).
 * Fit (fit_begin over the training split, no gradient steps): per position the mean and the
 * unbiased covariance (N - 1) + 0.01 I + 1e-5 I (anomalib adds both, in f32), inverted
 * (Cholesky in double, positions in parallel). The covariance is accumulated batch by batch
 * (Chan's pairwise update: each batch's centred scatter matrix as one batched GEMM), so the
 * training set is never held in memory. Buffers as anomalib names them: "idx" (i64, C),
 * "gaussian.mean" (C, HW), "gaussian.inv_covariance" (HW, C, C), plus "vigil_n_train" (images
 * fitted, 0 = not fitted).
 * Map: d = sqrt(clamp0(delta^T inv_cov delta)) per position (a batched matmul over positions),
 * bilinear (align_corners false) to the input size, Gaussian blur sigma 4 (nn/blur.h); score =
 * max of the map. */
#ifndef VG_METHODS_PADIM_H
#define VG_METHODS_PADIM_H
#include "methods/method.h"

vg_status vg_padim_new(const vg_json *cfg, vg_method **out);
vg_nn_module *vg_padim_module(vg_method *m);          /* feature_extractor, idx, gaussian.* */
/* The fit in pieces (fit_begin runs them over a loader): reset, batches of N x 3 x S x S
 * images (any number, any batch sizes), finish (>= 2 images: the unbiased covariance). */
void vg_padim_fit_reset(vg_method *m);
vg_status vg_padim_fit_batch(vg_method *m, const vg_tensor *images);
vg_status vg_padim_fit_finish(vg_method *m);
/* The embedding (N, n_features, h, w) of images, current scope. NULL + message on error. */
vg_tensor *vg_padim_embedding(vg_method *m, const vg_tensor *images);
/* The Mahalanobis distance map (N, 1, h, w) of an embedding, before upsampling. */
vg_tensor *vg_padim_distance(vg_method *m, const vg_tensor *emb);
#endif
