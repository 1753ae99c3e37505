/* patchcore.h — PatchCore (Roth et al. 2022) as anomalib 2.7's PatchcoreModel, on the method
 * contract (methods/method.h). No gradient steps: fit_begin is the whole training.
 *
 *   vg_method *m;
 *   vg_patchcore_new(cfg_json, &m);            // or vg_method_create("patchcore", cfg, &m)
 *   m->ops->fit_begin(m, &train);              // one pass: patch embeddings -> coreset memory bank
 *   m->ops->predict(m, images, maps, scores);  // nearest-neighbour maps, reweighted image scores
 *   m->ops->save(m, "ckpt.safetensors");       // backbone + memory bank: test needs nothing else
 *   vg_method_free(m);
 *
 * Model (anomalib names):
 *   embedding  frozen ResNet (backbone, eval mode) taps `layers` (default layer2 + layer3);
 *              each tap AvgPool2d(3, stride 1, pad 1, count_include_pad); the later taps
 *              resized bilinearly (align_corners False) to the first tap's grid h x w and
 *              concatenated after it along channels: D = 512 + 1024 = 1536 for
 *              wide_resnet50_2; rows (b, y, x) row-major -> (N h w, D).
 *   fit        every training patch row, then greedy k-center coreset of
 *              int(rows * coreset_sampling_ratio) rows (anomalib's KCenterGreedy): the rows are
 *              projected by a sparse random matrix (SparseRandomProjection eps 0.9:
 *              k = int(4 ln N / (eps^2/2 - eps^3/3)) components, each entry non-zero with
 *              probability 1/sqrt(D), then +-sqrt(sqrt(D)/k) with probability 1/2 each; drawn
 *              from Vigil's own seeded generator, not numpy's), the start index is uniform,
 *              each step updates every row's distance to its nearest chosen centre and
 *              takes the first row of largest distance. memory_bank = the chosen rows in
 *              selection order (M, D), buffer "memory_bank" (key model.memory_bank in the
 *              checkpoint, as anomalib's Lightning state dict).
 *   predict    patch score = distance to the nearest bank row, computed as anomalib does:
 *              sqrt(max(0, (-2 q.b + |q|^2) + |b|^2)) in f32; map = patch scores (B,1,h,w)
 *              resized to the input with `nearest` (F.interpolate's default), then Gaussian
 *              blur sigma 4 (33 x 33, reflect; nn/blur.h). Image score: num_neighbors == 1:
 *              the largest patch score s*; else for the patch of s* (first maximum) with
 *              nearest bank row m*: the k = min(num_neighbors, M) bank rows nearest to m*
 *              (ascending), D_j = |patch - bank_j| (the same expansion),
 *              score = (1 - softmax(D)_0) s*.
 * Hot paths: the greedy selection runs on the projected rows with one fused pass per step
 * (distance to the new centre, running minimum, first argmax per chunk on the thread
 * pool), skipping rows the triangle inequality proves unchanged (d(c, a) > 2 d(x, a),
 * with a 1e-3 margin, so the result is that of the full update); the nearest-neighbour
 * search is blocked GEMM (vg_matmul) against the bank with a running minimum per row.
 *
 * Config keys: the table PC_CONFIG in patchcore.c (`vigil train patchcore --help`). */
#ifndef VG_METHODS_PATCHCORE_H
#define VG_METHODS_PATCHCORE_H
#include "methods/method.h"
#include "nn/nn.h"

vg_status vg_patchcore_new(const vg_json *cfg, vg_method **out);
/* The whole model: child "feature_extractor" (the ResNet) and buffer "memory_bank" (M, D). */
vg_nn_module *vg_patchcore_module(vg_method *m);
/* Embedding width D (sum of the taps' channels). */
int64_t vg_patchcore_dim(const vg_method *m);
/* Patch embedding rows of images (N, 3, S, S): an (N h w, D) f32 tensor in the current
 * scope, (b, y, x) row-major; *gh / *gw (may be NULL) get the grid. NULL + message on error. */
vg_tensor *vg_patchcore_embed(vg_method *m, const vg_tensor *images, int64_t *gh, int64_t *gw);
/* Fit from embedding rows (n, D): the coreset of int(n * ratio) rows becomes the memory
 * bank. proj: a (k, D) dense projection matrix (k = vg_patchcore_jl_dim(n, 0.9)) and start:
 * the first centre, or NULL / -1 for the method's own seeded draws. idx (may be NULL) gets
 * the selected row indices (int(n * ratio) of them). */
vg_status vg_patchcore_fit_rows(vg_method *m, const float *rows, int64_t n, const float *proj, int64_t start,
                                int64_t *idx);
/* Per-patch nearest distances of the last predict (n_images * h * w), for tests; NULL before. */
const float *vg_patchcore_last_patch_scores(const vg_method *m, int64_t *n);

/* ---- the kernels (methods/patchcore/coreset.c) ---- */
/* Johnson-Lindenstrauss dimension of sklearn / anomalib: int64(4 ln n / (eps^2/2 - eps^3/3)). */
int64_t vg_patchcore_jl_dim(int64_t n, double eps);
/* A (k, d) dense sparse-random-projection matrix drawn from seed (malloc'd; NULL on OOM). */
float *vg_patchcore_projection(int64_t k, int64_t d, uint64_t seed);
/* Greedy k-center selection of m of the n rows (n x d) after projecting them with proj
 * (k x d), starting from row `start`: idx[0] = start, idx[t] = the first row of largest
 * distance to its nearest centre among idx[0..t-1]. Threads: vg_parallel_for. */
vg_status vg_patchcore_coreset(const float *rows, int64_t n, int64_t d, const float *proj, int64_t k, int64_t start,
                               int64_t m, int64_t *idx);
/* Nearest bank row of each query row: dist[i] = sqrt(max(0, (-2 q.b + |q|^2) + |b|^2)) of
 * the first bank row reaching the minimum, idx[i] its index (may be NULL). q: nq x d,
 * bank: nb x d (nb >= 1), bank_norm: |b|^2 per bank row (NULL: computed). */
vg_status vg_patchcore_nearest(const float *q, int64_t nq, const float *bank, int64_t nb, int64_t d,
                               const float *bank_norm, float *dist, int64_t *idx);
#endif
