/* cflow.c — CFLOW-AD on the method contract (cflow.h). */
#include "methods/cflow/cflow.h"
#include "autograd/autograd.h"
#include "datasets/image/image.h"
#include "flows/flows.h"
#include "nn/backbones/backbones.h"
#include "nn/checkpoint.h"
#include "nn/pth.h"
#include "methods/anomalib_import.h"
#include "methods/augment.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_method base;
  char backbone[32], weights[1024], category[128];
  unsigned layers_mask;
  int size, cond, blocks, fiber, meta_epochs, sub_epochs, warm_epochs, iters, batch;
  bool permute_soft, cosine, official_norm, paper_setup;
  bool conditional;           /* false: UFLOW, the paper's unconditional ablation (no positional condition) */
  bool eval_every_meta_epoch; /* the official per-meta-epoch test evaluation (best-epoch report) */
  double rotate;              /* training RandomRotation(rotate) degrees, 0 = off */
  bool float_resize;          /* config "resize": "float" (anomalib 2.x) or "pil" */
  bool zero_grad_keep;        /* config "zero_grad": "zero" (torch 1.x) or "none" (torch >= 2.0) */
  double clamp, lr;
  uint64_t seed;
  vg_nn_module *net, *enc, *dec[VG_CFLOW_MAX_LAYERS];
  int nl;
  vg_optim *opt;
  vg_tensor *counters;        /* "vigil_state": i64 {step, rng draws} */
  /* official normalisation: log_prob per tap of every predicted image, in predict order */
  float *lp[VG_CFLOW_MAX_LAYERS];
  int64_t lp_n, lp_cap, th[VG_CFLOW_MAX_LAYERS], tw[VG_CFLOW_MAX_LAYERS];
  /* positional encodings on a device (heap), made by an eager forward: a graph capture
   * cannot copy them from the host */
  vg_tensor *pe_dev[VG_CFLOW_MAX_LAYERS];
} cflow;

static const char *const LAYER_NAMES[5] = {"stem", "layer1", "layer2", "layer3", "layer4"};

/* The official reference MVTec runs: gudovskiy/cflow-ad README.md, "Training Models" (the
 * commands reproducing the reference results with the WideResnet-50 extractor:
 * python3 main.py --gpu 0 --pro -inp SIZE --dataset mvtec --class-name CLASS); every other
 * setting is config.py / main.py's default, which are Vigil's cflow defaults. */
static const struct { const char *category; int size; } PAPER_SIZES[] = {
  {"bottle", 512}, {"cable", 256}, {"capsule", 256}, {"carpet", 512}, {"grid", 512},
  {"hazelnut", 256}, {"leather", 512}, {"metal_nut", 256}, {"pill", 256}, {"screw", 512},
  {"tile", 512}, {"toothbrush", 512}, {"transistor", 128}, {"wood", 512}, {"zipper", 512},
};

int vg_cflow_paper_input_size(const char *category) {
  for (size_t i = 0; category && i < sizeof PAPER_SIZES / sizeof PAPER_SIZES[0]; i++)
    if (!strcmp(category, PAPER_SIZES[i].category)) return PAPER_SIZES[i].size;
  return 0;
}

vg_nn_module *vg_cflow_module(vg_method *m) { return ((cflow *)m)->net; }
int vg_cflow_num_layers(const vg_method *m) { return ((const cflow *)m)->nl; }

vg_tensor *vg_cflow_positional_encoding(int64_t D, int64_t H, int64_t W) {
  VG_ASSERT(D % 4 == 0 && "positional encoding wants D % 4 == 0");
  vg_tensor *pe = vg_zeros(VG_F32, 3, (int64_t[]){D, H, W});
  float *p = vg_f32(pe);
  int64_t d = D / 2;
  for (int64_t k = 0; 2 * k < d; k++) {
    /* torch: exp(arange(0, d, 2) * -(ln 1e4 / d)) in f32 */
    float div = expf((float)(2 * k) * -(float)(log(1e4) / (double)d));
    for (int64_t y = 0; y < H; y++)
      for (int64_t x = 0; x < W; x++) {
        float ax = (float)x * div, ay = (float)y * div;
        p[((2 * k) * H + y) * W + x] = sinf(ax);
        p[((2 * k + 1) * H + y) * W + x] = cosf(ax);
        p[((d + 2 * k) * H + y) * W + x] = sinf(ay);
        p[((d + 2 * k + 1) * H + y) * W + x] = cosf(ay);
      }
  }
  return pe;
}

static vg_status cf_features(cflow *m, const vg_tensor *images, vg_tensor **f) {
  if (images->ndim != 4 || images->shape[1] != 3 || images->shape[2] != m->size || images->shape[3] != m->size)
    return vg_fail(VG_ERR_ARG, "cflow: images must be N x 3 x %d x %d", m->size, m->size);
  vg_no_grad_begin();
  vg_status st = vg_backbone_features(m->enc, vg_method_input(&m->base, images), f);
  vg_no_grad_end();
  return st;
}

/* tap l's positional encoding (cond, H, W) on f's device and dtype: made on the host; on a
 * device cached (heap) when made outside a graph capture */
static vg_tensor *pos_enc(cflow *m, int l, const vg_tensor *f, int64_t H, int64_t W) {
  vg_tensor *d = m->pe_dev[l];
  if (f->device == VG_CPU) return vg_cflow_positional_encoding(m->cond, H, W);
  if (d && d->device == f->device && d->dtype == f->dtype && d->shape[1] == H && d->shape[2] == W) return d;
  vg_tensor *pe = vg_cflow_positional_encoding(m->cond, H, W);
  if (vg_cuda_capturing()) {   /* not cached: this pageable copy fails the capture, with the reason */
    pe = vg_to_device(pe, f->device);
    return pe && pe->dtype != f->dtype ? vg_cast(pe, f->dtype) : pe;
  }
  vg_tensor_free(m->pe_dev[l]);
  vg_tensor *h = vg_tensor_clone_heap(pe);
  m->pe_dev[l] = h && vg_tensor_to_(h, f->device, f->dtype) == VG_OK ? h : NULL;
  if (!m->pe_dev[l]) vg_tensor_free(h);
  return m->pe_dev[l];
}

/* feature (N,C,H,W) of tap l -> e (NHW, C), c (NHW, D) */
static void to_fibres(cflow *m, int l, vg_tensor *f, vg_tensor **e, vg_tensor **c) {
  int64_t N = f->shape[0], C = f->shape[1], H = f->shape[2], W = f->shape[3];
  *e = vg_contiguous(vg_reshape(vg_permute(f, (int[]){0, 2, 3, 1}), 2, (int64_t[]){N * H * W, C}));
  if (!m->conditional) { *c = NULL; return; }
  vg_tensor *pe = pos_enc(m, l, f, H, W);
  if (!pe) { *c = NULL; return; }
  pe = vg_reshape(vg_permute(pe, (int[]){1, 2, 0}), 3, (int64_t[]){1, H * W, m->cond});
  *c = vg_contiguous(vg_reshape(vg_expand(pe, 3, (int64_t[]){N, H * W, m->cond}), 2, (int64_t[]){N * H * W, m->cond}));
}

vg_status vg_cflow_fibres(vg_method *mm, const vg_tensor *images, vg_tensor **e, vg_tensor **c, int64_t *h, int64_t *w) {
  cflow *m = (cflow *)mm;
  vg_tensor *f[VG_CFLOW_MAX_LAYERS];
  vg_status st = cf_features(m, images, f);
  if (st != VG_OK) return st;
  for (int l = 0; l < m->nl; l++) {
    to_fibres(m, l, f[l], &e[l], &c[l]);
    if (!c[l] && m->conditional) return vg_fail_prefix("cflow: positional encoding of tap %d", l);
    h[l] = f[l]->shape[2];
    w[l] = f[l]->shape[3];
  }
  return VG_OK;
}

vg_tensor *vg_cflow_log_prob(vg_method *mm, int l, const vg_tensor *e, const vg_tensor *c) {
  cflow *m = (cflow *)mm;
  vg_tensor *ld, *cc = (vg_tensor *)c;
  vg_tensor *z = vg_flow_forward(m->dec[l], e, m->conditional ? 1 : 0, m->conditional ? &cc : NULL, false, true, &ld);
  if (!z) return NULL;
  /* the reduction in f32 for f16 flows (as torch autocast sums in f32): sum z^2 and the
   * C * ln sqrt(2 pi) term are ~1e3, where f16's spacing is 0.5 */
  if (z->dtype != VG_F32) z = vg_cast(z, VG_F32);
  if (ld && ld->dtype != VG_F32) ld = vg_cast(ld, VG_F32);
  float C = (float)e->shape[1];
  /* log p = C * (-ln sqrt(2 pi)) - 0.5 sum z^2 + logdet */
  vg_tensor *logp = vg_add(vg_add_scalar(vg_scale(vg_sum(vg_mul(z, z), 1, (int[]){1}, false), -0.5f),
                                         C * -0.9189385332046727f), ld);
  return vg_scale(logp, 1.0f / C);
}

static void lr_apply(cflow *m, int64_t step) {
  vg_cflow_lr c = {.lr = m->lr, .meta_epochs = m->meta_epochs, .warm_epochs = m->warm_epochs, .cosine = m->cosine};
  int64_t per = (int64_t)m->sub_epochs * m->iters;
  vg_cflow_lr_apply(&c, m->opt, (int)(step / per), step % per, per);
}

/* Small batches keep the frozen encoder's BN-folded conv weights and their packed forms from
 * one call to the next (vg_nn_conv_cache); larger ones spread that work over their images
 * and hold no memory for it. load and to drop them. */
static void cf_encoder_cache(cflow *m, const vg_tensor *images) {
  vg_nn_conv_cache(m->enc, images && images->shape[0] <= 4);
}

vg_status vg_cflow_train_step_ex(vg_method *mm, const vg_tensor *images, int64_t step, const int64_t *const *perms,
                                 float *chunk_losses, int cap, int *nchunks, double *loss) {
  cflow *m = (cflow *)mm;
  if (mm->dtype != VG_F32) return vg_fail(VG_ERR_ARG, "cflow: training computes in f32 (f16 is for inference)");
  cf_encoder_cache(m, images);   /* the encoder is frozen: the step leaves its weights alone */
  int64_t *cnt = (int64_t *)vg_data(m->counters);
  lr_apply(m, step);
  vg_scope_begin();
  /* the official RandomRotation(rotate) of every training image, keyed on (seed, step, row) */
  vg_aug_cfg aug = {.rotate_p = 1, .rotate_deg = m->rotate};
  if (vg_aug_active(&aug) && images->device == VG_CPU && images->dtype == VG_F32 && images->ndim == 4 &&
      images->shape[1] == 3) {
    vg_tensor *x = vg_empty_like(images);
    memcpy(vg_data(x), vg_data(vg_contiguous(images)), (size_t)vg_numel(images) * sizeof(float));
    float fill[3], *scratch = malloc(sizeof(float) * (size_t)(3 * images->shape[2] * images->shape[3]));
    if (!scratch) { vg_scope_end(); return vg_fail(VG_ERR_NOMEM, "cflow: out of memory (augmentation)"); }
    vg_aug_imagenet_black(fill);
    vg_aug_apply(&aug, m->seed, step, vg_f32(x), images->shape[0], 3, (int)images->shape[2], (int)images->shape[3], fill,
                 scratch);
    free(scratch);
    images = x;
  }
  vg_tensor *e[VG_CFLOW_MAX_LAYERS], *c[VG_CFLOW_MAX_LAYERS];
  int64_t h[VG_CFLOW_MAX_LAYERS], w[VG_CFLOW_MAX_LAYERS];
  vg_status st = vg_cflow_fibres(mm, images, e, c, h, w);
  double total = 0;
  int count = 0;
  for (int l = 0; l < m->nl && st == VG_OK; l++) {
    int64_t E = e[l]->shape[0], N = m->fiber, FIB = E / N;
    if (FIB <= 0) { st = vg_fail(VG_ERR_ARG, "cflow: %lld fibres < fiber_batch %d", (long long)E, m->fiber); break; }
    vg_tensor *perm = perms && perms[l] ? vg_from_data(VG_I64, 1, (int64_t[]){E}, perms[l])
                                        : vg_randperm(E, m->seed * 1000003 + 17 + (uint64_t)cnt[1]);
    cnt[1]++;
    if (perm && e[l]->device != VG_CPU) perm = vg_to_device(perm, e[l]->device);
    for (int64_t f = 0; f < FIB && st == VG_OK; f++) {
      vg_scope_begin();
      vg_tensor *idx = vg_narrow(perm, 0, f * N, N);
      vg_tensor *ep = vg_index_select(e[l], 0, idx), *cp = c[l] ? vg_index_select(c[l], 0, idx) : NULL;
      vg_optim_zero_grad_ex(m->opt, !m->zero_grad_keep);
      vg_tensor *lp = vg_cflow_log_prob(mm, l, ep, cp);
      vg_tensor *ls = lp ? vg_mean_all(vg_neg(vg_logsigmoid(lp))) : NULL;
      double v = ls ? vg_item(ls) : NAN;
      if (!isfinite(v)) st = vg_fail(VG_ERR_NUMERIC, "cflow: non-finite loss at step %lld", (long long)step);
      else st = vg_optim_backward_step(m->opt, ls);   /* backward, each decoder weight's Adam step as it is done */
      if (st == VG_OK) {
        if (chunk_losses && count < cap) chunk_losses[count] = (float)v;
        total += v;
        count++;
      }
      vg_scope_end();
    }
  }
  vg_scope_end();
  if (st == VG_OK) cnt[0]++;
  if (nchunks) *nchunks = count;
  if (loss) *loss = count ? total / count : 0;
  return st;
}

static vg_status cf_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  return vg_cflow_train_step_ex(mm, images, step, NULL, NULL, 0, NULL, loss);
}

/* maps from per-tap log-likelihood arrays lp[l] (n x th x tw), normalised by maxima mx[l].
 * dlp: the same log-likelihoods on a GPU (or NULL): there exp, upsampling and the sum run
 * on the device and only the summed map comes to the host (in f32: exp(lp - mx) rounds
 * lp - mx once more than the host's double, ~1e-7 relative). */
static void build_maps(cflow *m, float *const *lp, vg_tensor *const *dlp, const double *mx, int64_t n, float *maps,
                       float *scores) {
  int64_t P = (int64_t)m->size * m->size;
  vg_scope_begin();
  vg_tensor *acc = NULL;
  for (int l = 0; l < m->nl; l++) {
    vg_tensor *t;
    if (dlp) {
      t = vg_exp(vg_add_scalar(vg_reshape(dlp[l], 4, (int64_t[]){n, 1, m->th[l], m->tw[l]}), (float)-mx[l]));
    } else {
      t = vg_empty(VG_F32, 4, (int64_t[]){n, 1, m->th[l], m->tw[l]});
      float *p = vg_f32(t);
      for (int64_t i = 0; i < n * m->th[l] * m->tw[l]; i++) p[i] = (float)exp((double)lp[l][i] - mx[l]);
    }
    vg_tensor *u = vg_interpolate_bilinear(t, m->size, m->size, true);
    acc = acc ? vg_add(acc, u) : u;
  }
  if (dlp) {
    vg_tensor *h = vg_empty(VG_F32, 4, (int64_t[]){n, 1, m->size, m->size});
    vg_to_host(acc, VG_F32, vg_f32(h));
    acc = h;
  }
  acc = vg_contiguous(acc);
  const float *a = vg_f32(acc);
  float gmax = -INFINITY;
  for (int64_t i = 0; i < n * P; i++) gmax = a[i] > gmax ? a[i] : gmax;
  for (int64_t r = 0; r < n; r++) {
    float s = -INFINITY;
    for (int64_t i = 0; i < P; i++) {
      float v = gmax - a[r * P + i];
      maps[r * P + i] = v;
      s = v > s ? v : s;
    }
    scores[r] = s;
  }
  vg_scope_end();
}

/* The device part of predict as one chain of device ops (CUDA graphs capture it): per tap
 * exp(lp - max lp) upsampled (align_corners) and summed, map = max(sum) - sum. The same
 * values as predict's (a batch's own normalisation; the official one over the whole test
 * set is predict's + finalize's). */
static vg_tensor *cf_forward_maps(vg_method *mm, const vg_tensor *images) {
  cflow *m = (cflow *)mm;
  vg_tensor *e[VG_CFLOW_MAX_LAYERS], *c[VG_CFLOW_MAX_LAYERS], *acc = NULL;
  int64_t h[VG_CFLOW_MAX_LAYERS], w[VG_CFLOW_MAX_LAYERS], n = images->shape[0];
  vg_no_grad_begin();
  vg_status st = vg_cflow_fibres(mm, images, e, c, h, w);
  for (int l = 0; l < m->nl && st == VG_OK; l++) {
    vg_tensor *lp = vg_reshape(vg_cflow_log_prob(mm, l, e[l], c[l]), 4, (int64_t[]){n, 1, h[l], w[l]});
    vg_tensor *mx = vg_amax(lp, 4, (int[]){0, 1, 2, 3}, true);
    vg_tensor *u = vg_interpolate_bilinear(vg_exp(vg_sub(lp, mx)), m->size, m->size, true);
    acc = acc ? vg_add(acc, u) : u;
    if (!acc) st = vg_fail_prefix("cflow maps: tap %d", l);
  }
  vg_tensor *map = st == VG_OK ? vg_sub(vg_amax(acc, 4, (int[]){0, 1, 2, 3}, true), acc) : NULL;
  vg_no_grad_end();
  return map;
}

enum { CF_INFER_CHUNK = 4096 };   /* fibres per decoder pass in host inference */

static vg_status cf_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  cflow *m = (cflow *)mm;
  cf_encoder_cache(m, images);
  vg_scope_begin();
  vg_no_grad_begin();
  vg_tensor *e[VG_CFLOW_MAX_LAYERS], *c[VG_CFLOW_MAX_LAYERS];
  int64_t h[VG_CFLOW_MAX_LAYERS], w[VG_CFLOW_MAX_LAYERS], n = images->shape[0];
  vg_status st = vg_cflow_fibres(mm, images, e, c, h, w);
  float *lp[VG_CFLOW_MAX_LAYERS] = {0};
  vg_tensor *dlp[VG_CFLOW_MAX_LAYERS] = {0};   /* on a GPU: the log-likelihoods stay there for the maps */
  double mx[VG_CFLOW_MAX_LAYERS];
  for (int l = 0; l < m->nl && st == VG_OK; l++) {
    m->th[l] = h[l];
    m->tw[l] = w[l];
    int64_t E = e[l]->shape[0];
    lp[l] = vg_f32(vg_empty(VG_F32, 1, (int64_t[]){E}));   /* log-likelihoods on the host */
    if (e[l]->device == VG_CPU && E > CF_INFER_CHUNK) {
      /* on the host in chunks of fibres (rows are independent: the same values), so the
       * decoder's intermediates stay the size of a chunk, not of the batch's E fibres */
      int64_t nch = (E + CF_INFER_CHUNK - 1) / CF_INFER_CHUNK;
      for (int64_t k = 0, off = 0; k < nch && st == VG_OK; k++) {
        int64_t len = E / nch + (k < E % nch);
        vg_scope_begin();
        vg_tensor *t = vg_cflow_log_prob(mm, l, vg_narrow(e[l], 0, off, len), c[l] ? vg_narrow(c[l], 0, off, len) : NULL);
        if (!t || vg_numel(t) != len) st = t ? vg_fail(VG_ERR_ARG, "cflow: layer %d chunk gave %lld log-likelihoods for "
                                                       "%lld fibres", l, (long long)vg_numel(t), (long long)len)
                                             : VG_ERR_ARG;
        else vg_to_host(t, VG_F32, lp[l] + off);
        vg_scope_end();
        off += len;
      }
      if (st != VG_OK) break;
      mx[l] = -INFINITY;
      for (int64_t i = 0; i < E; i++) mx[l] = fmax(mx[l], lp[l][i]);
      continue;
    }
    vg_scope_begin();   /* the decoder's tensors go when the layer's log-likelihoods are read */
    vg_tensor *t = vg_cflow_log_prob(mm, l, e[l], c[l]);
    if (!t) st = VG_ERR_ARG;
    else if (vg_numel(t) != E) st = vg_fail(VG_ERR_ARG, "cflow: layer %d gave %lld log-likelihoods for %lld fibres", l,
                                            (long long)vg_numel(t), (long long)E);
    else vg_to_host(t, VG_F32, lp[l]);
    if (st == VG_OK && t->device != VG_CPU) {
      dlp[l] = t;
      vg_scope_end_keep(1, &dlp[l]);   /* the storage moves out, no copy */
    } else {
      vg_scope_end();
    }
    if (st != VG_OK) break;
    mx[l] = -INFINITY;
    for (int64_t i = 0; i < E; i++) mx[l] = fmax(mx[l], lp[l][i]);
  }
  if (st == VG_OK) build_maps(m, lp, dlp[0] ? dlp : NULL, mx, n, maps, scores);
  if (st == VG_OK && m->official_norm) {
    if (m->lp_n + n > m->lp_cap) {
      int64_t cap = (m->lp_n + n) * 2;
      for (int l = 0; l < m->nl; l++) {
        float *q = realloc(m->lp[l], sizeof(float) * (size_t)(cap * h[l] * w[l]));
        if (!q) { st = vg_fail(VG_ERR_NOMEM, "cflow: out of memory"); break; }
        m->lp[l] = q;
      }
      if (st == VG_OK) m->lp_cap = cap;
    }
    for (int l = 0; l < m->nl && st == VG_OK; l++)
      memcpy(m->lp[l] + m->lp_n * h[l] * w[l], lp[l], sizeof(float) * (size_t)(n * h[l] * w[l]));
    if (st == VG_OK) m->lp_n += n;
  }
  vg_no_grad_end();
  vg_scope_end();
  return st;
}

static vg_status cf_finalize(vg_method *mm, float *maps, int64_t n, int h, int w, float *scores) {
  cflow *m = (cflow *)mm;
  if (!m->official_norm) return VG_OK;
  vg_status st = VG_OK;
  if (n != m->lp_n || h != m->size || w != m->size)
    st = vg_fail(VG_ERR_ARG, "cflow: finalize over %lld maps, predict saw %lld", (long long)n, (long long)m->lp_n);
  if (st == VG_OK) {
    double mx[VG_CFLOW_MAX_LAYERS];
    for (int l = 0; l < m->nl; l++) {
      mx[l] = -INFINITY;
      for (int64_t i = 0; i < n * m->th[l] * m->tw[l]; i++) mx[l] = fmax(mx[l], m->lp[l][i]);
    }
    build_maps(m, m->lp, NULL, mx, n, maps, scores);
  }
  m->lp_n = 0;
  return st;
}

static const char *const RESIZE[] = {"pil", "float", NULL}, *const MAP_NORM[] = {"anomalib", "official", NULL},
                        *const ZERO_GRAD[] = {"none", "zero", NULL};
/* the taps layers may name: bit 1..4 of the mask, as VG_RESNET_LAYER1..4 (LAYER_NAMES[1..4]); bits 5..7
 * mobilenet_v3_large's official CFLOW-AD taps (gudovskiy/cflow-ad model.py: the projection 1x1 conv
 * of features[6], [12], [15] before its BN, nn/backbones/mobilenet.h), the roles of layer2..4 */
static const char *const TAPS[] = {"layer1", "layer2", "layer3", "layer4",
                                   "features.6.proj", "features.12.proj", "features.15.proj", NULL};
#define CF_MNV3_TAPS (7u << 5)

static const vg_cfg_field CF_CONFIG[] = {
  {"backbone", VG_CFG_STR, VG_CFG_AT(cflow, backbone), .sdef = "wide_resnet50_2", .flags = VG_CFG_IDENT,
   .want = "a backbone name (< 32 bytes)", .help = "resnet18 | wide_resnet50_2 | mobilenet_v3_large (frozen encoder)"},
  {"weights", VG_CFG_STR, VG_CFG_AT(cflow, weights), .want = "a file path (< 1024 bytes)",
   .help = "torchvision backbone weights (.pth / .safetensors); \"\" = random backbone"},
  {"input_size", VG_CFG_INT, VG_CFG_AT(cflow, size), .idef = 256, .ilo = 32, .ihi = 4096, .imul = 32,
   .help = "side of the square input image (paper_setup: the official size of the category)"},
  {"paper_setup", VG_CFG_BOOL, VG_CFG_AT(cflow, paper_setup), .idef = false,
   .help = "the official MVTec run of the category: its input size, every other key at its default"},
  {"category", VG_CFG_STR, VG_CFG_AT(cflow, category), .want = "a name (< 128 bytes)",
   .help = "the MVTec category (paper_setup)"},
  {"layers", VG_CFG_SET, VG_CFG_AT(cflow, layers_mask), .idef = VG_RESNET_LAYER2 | VG_RESNET_LAYER3 | VG_RESNET_LAYER4,
   .ilo = 1, .ihi = VG_CFLOW_MAX_LAYERS, .choices = TAPS, .shift = 1,
   .want = "a list of 1 to 4 of \"layer1\" .. \"layer4\" (mobilenet_v3_large: of \"features.6.proj\", "
           "\"features.12.proj\", \"features.15.proj\")",
   .help = "encoder taps, one decoder each (mobilenet_v3_large: features.{6,12,15}.proj, the official taps and default)"},
  {"condition_vector", VG_CFG_INT, VG_CFG_AT(cflow, cond), .idef = 128, .ilo = 4, .ihi = 4096, .imul = 4,
   .help = "positional-encoding channels conditioning the decoders"},
  {"coupling_blocks", VG_CFG_INT, VG_CFG_AT(cflow, blocks), .idef = 8, .ilo = 1, .ihi = 64,
   .help = "AllInOne blocks per decoder"},
  {"clamp_alpha", VG_CFG_NUM, VG_CFG_AT(cflow, clamp), .def = 1.9, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI,
   .help = "affine clamping of the coupling blocks"},
  {"permute_soft", VG_CFG_BOOL, VG_CFG_AT(cflow, permute_soft), .idef = true,
   .help = "random rotations (true) or permutations (false) between blocks"},
  {"fiber_batch", VG_CFG_INT, VG_CFG_AT(cflow, fiber), .idef = 256, .ilo = 1, .ihi = 1 << 20,
   .help = "feature vectors per decoder step"},
  {"lr", VG_CFG_NUM, VG_CFG_AT(cflow, lr), .def = 2e-4, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI,
   .help = "Adam learning rate"},
  {"meta_epochs", VG_CFG_INT, VG_CFG_AT(cflow, meta_epochs), .idef = 25, .ilo = 1, .ihi = 1000000,
   .help = "learning-rate schedule epochs"},
  {"sub_epochs", VG_CFG_INT, VG_CFG_AT(cflow, sub_epochs), .idef = 8, .ilo = 1, .ihi = 1000000,
   .help = "passes per meta epoch"},
  {"warm_epochs", VG_CFG_INT, VG_CFG_AT(cflow, warm_epochs), .idef = 2, .ilo = 0, .ihi = 1000000,
   .help = "warm-up meta epochs"},
  {"cosine", VG_CFG_BOOL, VG_CFG_AT(cflow, cosine), .idef = true, .help = "cosine learning-rate decay"},
  {"iters_per_epoch", VG_CFG_INT, VG_CFG_AT(cflow, iters), .idef = 8, .ilo = 1, .ihi = 1000000000,
   .help = "training steps per sub epoch (steps = meta x sub x iters)"},
  {"batch_size", VG_CFG_INT, VG_CFG_AT(cflow, batch), .idef = 32, .ilo = 1, .ihi = 4096, .help = "training batch"},
  {"map_norm", VG_CFG_ENUM, VG_CFG_AT(cflow, official_norm), .idef = 1, .choices = MAP_NORM,
   .want = "\"official\" or \"anomalib\"",
   .help = "official: normalise by the maximum likelihood over the test set; anomalib: per batch"},
  {"resize", VG_CFG_ENUM, VG_CFG_AT(cflow, float_resize), .idef = 0, .choices = RESIZE,
   .help = "pil: Pillow's 8-bit resize (the official repos); float: anomalib 2.x's float antialiased bilinear"},
  {"seed", VG_CFG_INT, VG_CFG_AT(cflow, seed), .idef = 0, .ilo = 0, .ihi = INT64_MAX,
   .help = "initialisation seed (and the rotation draws)"},
  {"rotate", VG_CFG_NUM, VG_CFG_AT(cflow, rotate), .def = 0, .lo = 0, .hi = 180,
   .help = "training augmentation: every image rotated by U[-rotate, rotate] degrees (torchvision RandomRotation: "
           "nearest, black fill); the official code's 5 (paper_setup sets it); 0 = off"},
  {"zero_grad", VG_CFG_ENUM, VG_CFG_AT(cflow, zero_grad_keep), .idef = 0, .choices = ZERO_GRAD,
   .want = "\"none\" or \"zero\"",
   .help = "before each fibre-batch step: none = grads set to None (torch >= 2.0's zero_grad(), anomalib 2.x and the "
           "official code on torch 2: Adam steps only the decoder trained); zero = grads zeroed (torch 1.x, the paper's "
           "runs; paper_setup sets it): every decoder's Adam moments move at every step"},
  {"conditional", VG_CFG_BOOL, VG_CFG_AT(cflow, conditional), .idef = true,
   .help = "positional condition vector in every decoder (CFLOW); false = the paper's unconditional ablation (UFLOW)"},
  {"eval_every_meta_epoch", VG_CFG_BOOL, VG_CFG_AT(cflow, eval_every_meta_epoch), .idef = false,
   .help = "evaluate on the test split after every meta epoch; metrics.json gains the official code's best-epoch "
           "numbers as best_epoch_* (test-set model selection; the final model's stay the main ones)"},
  {NULL}};

static char *cf_config_json(const vg_method *mm) { return vg_cfg_json("cflow", CF_CONFIG, mm); }

static vg_status cf_save(const vg_method *mm, const char *path) {
  const cflow *m = (const cflow *)mm;
  return vg_method_checkpoint_save(mm, m->net, m->opt, path);
}

static vg_status cf_load(vg_method *mm, const char *path) {
  cflow *m = (cflow *)mm;
  vg_nn_conv_cache(m->enc, false);
  return vg_nn_checkpoint_load(path, m->net, m->opt, NULL);
}

static double cf_current_lr(const vg_method *mm) {
  const cflow *m = (const cflow *)mm;
  vg_cflow_lr c = {.lr = m->lr, .meta_epochs = m->meta_epochs, .warm_epochs = m->warm_epochs, .cosine = m->cosine};
  int64_t per = (int64_t)m->sub_epochs * m->iters, step = ((const int64_t *)vg_data(m->counters))[0];
  return vg_cflow_lr_at(&c, (int)(step / per), step % per, per);
}

static void cf_free(vg_method *mm) {
  cflow *m = (cflow *)mm;
  if (!m) return;
  vg_optim_free(m->opt);
  vg_nn_free(m->net);
  for (int l = 0; l < VG_CFLOW_MAX_LAYERS; l++) {
    free(m->lp[l]);
    vg_tensor_free(m->pe_dev[l]);
  }
  free(m);
}

/* the counters are host bookkeeping: they stay on the CPU */
static vg_status cf_to(vg_method *mm, vg_device dev, vg_dtype dt) {
  cflow *m = (cflow *)mm;
  vg_nn_conv_cache(m->enc, false);
  return vg_method_move(m->net, m->opt, 1, &m->counters, dev, dt);
}

static const vg_method_ops cf_ops = {
  .name = "cflow", .fit_begin = NULL, .train_step = cf_train_step, .fit_end = NULL,
  .predict = cf_predict, .finalize = cf_finalize, .save = cf_save, .load = cf_load,
  .config_json = cf_config_json, .current_lr = cf_current_lr, .module = vg_cflow_module, .to = cf_to,
  .forward_maps = cf_forward_maps, .free = cf_free,
};

vg_status vg_cflow_load_anomalib(vg_method *mm, const char *path) {
  static const char *const strip[] = {"state_dict.", "model.", NULL};
  return vg_nn_load_state_pth_prefixed(((cflow *)mm)->net, path, strip, "encoder.", "cflow");
}

static vg_status cf_drop(cflow *m, vg_status st) {
  free(m);
  return st;
}

vg_status vg_cflow_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  cflow *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "cflow: out of memory");
  vg_cfg_defaults(CF_CONFIG, m);
  vg_status pst = vg_cfg_parse("cflow", CF_CONFIG, cfg, m);
  if (pst != VG_OK) return cf_drop(m, pst);
  int64_t size = m->size, cond = m->cond, blocks = m->blocks, fiber = m->fiber, meta = m->meta_epochs,
          sub = m->sub_epochs, warm = m->warm_epochs, iters = m->iters, batch = m->batch;
  double clamp = m->clamp, lr = m->lr;
  bool soft = m->permute_soft, cosine = m->cosine, official = m->official_norm, paper = m->paper_setup;
  bool size_given = vg_json_get(cfg, "input_size") != NULL, fl = m->float_resize;
  bool rotate_given = vg_json_get(cfg, "rotate") != NULL, condl = m->conditional;
  bool zg_given = vg_json_get(cfg, "zero_grad") != NULL;
  unsigned mask = m->layers_mask;
  const char *bb = m->backbone, *category = m->category;
  if ((double)meta * (double)sub * (double)iters > 1e9)   /* the default schedule: steps = their product */
    return cf_drop(m, vg_fail(VG_ERR_ARG, "cflow: meta_epochs x sub_epochs x iters_per_epoch = %lld x %lld x %lld is more "
                   "than 1000000000 steps", (long long)meta, (long long)sub, (long long)iters));
  bool mnv3 = !strcmp(bb, "mobilenet_v3_large");
  if (strcmp(bb, "resnet18") && strcmp(bb, "wide_resnet50_2") && !mnv3)
    return cf_drop(m, vg_fail(VG_ERR_ARG, "cflow: unknown backbone '%s' (resnet18, wide_resnet50_2, mobilenet_v3_large)", bb));
  if (mnv3 && !vg_json_get(cfg, "layers")) mask = m->layers_mask = CF_MNV3_TAPS;   /* the official taps */
  if (mnv3 ? (mask & ~CF_MNV3_TAPS) != 0 : (mask & CF_MNV3_TAPS) != 0)
    return cf_drop(m, vg_fail(VG_ERR_ARG, "cflow: layers: backbone %s taps %s", bb,
                              mnv3 ? "\"features.6.proj\", \"features.12.proj\", \"features.15.proj\" (not layerK)"
                                   : "\"layer1\" .. \"layer4\""));
  if (paper) {
    /* the official MVTec setup: per-class input size; everything else must stay official */
    int ps = vg_cflow_paper_input_size(category);
    if (!ps)
      return cf_drop(m, vg_fail(VG_ERR_ARG, "cflow: paper_setup needs an MVTec category (config key 'category', "
                     "`vigil train --category`), got '%s'", category));
    if (size_given && size != ps)
      return cf_drop(m, vg_fail(VG_ERR_ARG, "cflow: paper_setup: input_size %lld contradicts the official %d for '%s'",
                                (long long)size, ps, category));
    size = ps;
    if (rotate_given && m->rotate != 5)
      return cf_drop(m, vg_fail(VG_ERR_ARG, "cflow: paper_setup: rotate %g contradicts the official 5 (RandomRotation(5))",
                                m->rotate));
    m->rotate = 5;
    if (zg_given && !m->zero_grad_keep)
      return cf_drop(m, vg_fail(VG_ERR_ARG, "cflow: paper_setup: zero_grad \"none\" contradicts the paper's runs "
                                "(torch 1.x: \"zero\")"));
    m->zero_grad_keep = true;
    const char *bad = !condl ? "conditional (true)" : strcmp(bb, "wide_resnet50_2") ? "backbone (wide_resnet50_2)"
                      : mask != (VG_RESNET_LAYER2 | VG_RESNET_LAYER3 | VG_RESNET_LAYER4) ? "layers (layer2..4)"
                      : cond != 128 ? "condition_vector (128)" : blocks != 8 ? "coupling_blocks (8)"
                      : clamp != 1.9 ? "clamp_alpha (1.9)" : !soft ? "permute_soft (true)"
                      : fiber != 256 ? "fiber_batch (256)" : lr != 2e-4 ? "lr (2e-4)"
                      : meta != 25 ? "meta_epochs (25)" : sub != 8 ? "sub_epochs (8)" : warm != 2 ? "warm_epochs (2)"
                      : !cosine ? "cosine (true)" : batch != 32 ? "batch_size (32)" : !official ? "map_norm (official)" : NULL;
    if (bad) return cf_drop(m, vg_fail(VG_ERR_ARG, "cflow: paper_setup fixes %s; drop the override or paper_setup", bad));
  }
  {  /* memory before any allocation: per layer, coupling_blocks MLPs of (C/2 + cond) -> 2x -> C */
    static const int ch18[4] = {64, 128, 256, 512}, ch50[4] = {256, 512, 1024, 2048};
    static const int chm[7] = {0, 0, 0, 0, 40, 112, 160};   /* bits 5..7: mobilenet taps */
    const int *ch = strcmp(bb, "resnet18") ? ch50 : ch18;
    double tr = 0, fib = 0;
    int last = 0;
    for (int l = 1; l <= 7; l++) {
      if (!(mask & (1u << l))) continue;
      double C = l > 4 ? chm[l - 1] : ch[l - 1], cin = (double)((int)C / 2) + (condl ? (double)cond : 0), hid = 2 * cin;
      tr += (double)blocks * (cin * hid + hid * C);
      fib += 3.0 * (double)fiber * (double)blocks * (cin + hid + 2 * C);
      last = l > 4 ? 0 : l - 1;
    }
    char keys[200];
    snprintf(keys, sizeof keys, "input_size %lld, condition_vector %lld, coupling_blocks %lld, fiber_batch %lld "
             "(backbone %s)", (long long)size, (long long)cond, (long long)blocks, (long long)fiber, bb);
    /* mobilenet_v3_large up to features.15: 4.2 M weights; activations below a resnet18's to layer1 */
    vg_status cs = vg_method_check_memory("cflow", keys, tr, mnv3 ? 4.2e6 : strcmp(bb, "resnet18") ? 6.9e7 : 1.2e7,
                                          vg_method_resnet_act((double)size, mnv3 ? ch18 : ch, last) + fib);
    if (cs != VG_OK) return cf_drop(m, cs);
  }
  m->size = (int)size;   /* paper_setup: the official size */
  m->base.ops = &cf_ops;
  vg_status st = VG_OK;
  m->net = vg_nn_module_new("CflowModel", NULL, NULL, NULL);
  const char *taps[VG_CFLOW_MAX_LAYERS];
  int ntaps = 0;
  for (int l = 1; l <= 7 && ntaps < VG_CFLOW_MAX_LAYERS; l++)
    if (mask & (1u << l)) taps[ntaps++] = TAPS[l - 1];
  m->enc = vg_backbone_new(bb, ntaps, taps, m->seed * 7919 + 1);
  if (!m->net || !m->enc) { vg_nn_free(m->enc); cf_free(&m->base); return VG_ERR_ARG; }
  vg_nn_module *encw = vg_nn_module_new("TimmFeatureExtractor", NULL, NULL, NULL);
  vg_nn_add_child(m->net, "encoder", encw);
  vg_nn_add_child(encw, "feature_extractor", m->enc);
  if (m->weights[0]) st = vg_nn_load_state_pth(m->enc, m->weights, false);
  m->base.random_backbone = !m->weights[0];
  vg_nn_train(m->enc, false);
  vg_nn_requires_grad(m->enc, false);
  m->nl = vg_backbone_num_features(m->enc);
  vg_nn_module *decs = vg_nn_module_new("ModuleList", NULL, NULL, NULL);
  vg_nn_add_child(m->net, "decoders", decs);
  for (int l = 0; l < m->nl && st == VG_OK; l++) {
    int64_t C = vg_backbone_feature_channels(m->enc, l);
    char name[16];
    snprintf(name, sizeof name, "%d", l);
    m->dec[l] = vg_flow_sequence_new(1, (int64_t[]){C});
    vg_nn_add_child(decs, name, m->dec[l]);
    for (int i = 0; i < m->blocks; i++) {
      vg_flow_subnet_cfg sc = {.hidden = 0, .ratio = 0, .seed = m->seed * 1000003 + (uint64_t)(l * 100 + i) * 2 + 1};
      vg_flow_allinone_opts o = {.affine_clamping = clamp, .clamp_mode = VG_FLOW_CLAMP_TANH_FREIA02,
                                 .global_affine_type = VG_FLOW_GA_SOFTPLUS, .permute_soft = soft,
                                 .seed = m->seed * 1000003 + (uint64_t)(l * 100 + i) * 2};
      if (vg_flow_append_allinone(m->dec[l], condl ? 0 : -1, condl ? cond : 0, (vg_flow_subnet){vg_flow_subnet_mlp, &sc}, o) < 0) {
        st = VG_ERR_ARG;
        break;
      }
    }
  }
  if (st == VG_OK) {
    m->counters = vg_tensor_new(VG_I64, 1, (int64_t[]){2});
    memset(vg_data(m->counters), 0, 2 * sizeof(int64_t));
    vg_nn_add_buffer(m->net, "vigil_state", m->counters);
    m->opt = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, lr));
    vg_nn_list ps = vg_nn_named_parameters(decs);
    vg_tensor **tr = malloc(sizeof(vg_tensor *) * (size_t)(ps.n + 1));
    int nt = 0;
    for (int i = 0; i < ps.n; i++) if (ps.tensors[i]->requires_grad) tr[nt++] = ps.tensors[i];
    if (vg_optim_add_group(m->opt, nt, tr, NULL) < 0) st = VG_ERR_ARG;
    free(tr);
    vg_nn_list_free(&ps);
  }
  if (st != VG_OK) { cf_free(&m->base); return st; }
  m->base.input_h = m->base.input_w = m->size;
  m->base.train_channels = 3;
  m->base.train_batch = m->batch;
  m->base.default_steps = (int64_t)meta * sub * iters;
  m->base.eval_every = m->eval_every_meta_epoch ? (int64_t)sub * iters : 0;   /* one meta epoch */
  m->base.train_transform = m->base.test_transform = fl ? vg_image_float_imagenet_transform : vg_imagenet_transform;
  *out = &m->base;
  return VG_OK;
}

/* ---------------------------------------------------------------- anomalib import
 * The structural config keys of an anomalib checkpoint, read off its tensors
 * (methods/anomalib_import.h; `vigil predict --from-anomalib`). */

/* the ResNet tap (1..4) with c channels, 0 if none */
static int tap_of(bool wide, int64_t c) {
  for (int l = 1; l <= 4; l++)
    if (c == (wide ? 128LL << l : 32LL << l)) return l;
  return 0;
}

static vg_status cf_anomalib_infer(vg_anomalib_infer *f) {
  const vg_pth_dict *d = f->d;
  int64_t C[8];
  int L = 0;
  while (L < 8 && vg_anomalib_tensor(d, "decoders.%d.module_list.0.subnet.0.weight", L)) {
    const vg_tensor *p = vg_anomalib_tensor(d, "decoders.%d.module_list.0.w_perm", L);
    const vg_tensor *g = vg_anomalib_tensor(d, "decoders.%d.module_list.0.global_scale", L);
    C[L] = p ? vg_anomalib_dim(p, 0) : vg_anomalib_dim(g, 1);
    if (C[L] < 2) return vg_fail(VG_ERR_FORMAT, "cflow: decoders.%d: no w_perm or global_scale to size it", L);
    L++;
  }
  if (!L) return vg_fail(VG_ERR_FORMAT, "cflow: decoders.0.module_list.0.subnet.0.weight missing: not an anomalib CFLOW checkpoint");
  char v[256], why[256];
  vg_status st;
  /* backbone: the encoder's own weights say it; else the decoders' channels */
  int wide = -1;
  if (vg_anomalib_tensor(d, "encoder.feature_extractor.layer1.0.conv3.weight")) wide = 1;
  else if (vg_anomalib_tensor(d, "encoder.feature_extractor.layer1.0.conv1.weight")) wide = 0;
  for (int l = 0; l < L && wide < 0; l++) {
    if (C[l] == 64 || C[l] == 128) wide = 0;
    if (C[l] == 1024 || C[l] == 2048) wide = 1;
  }
  if (wide < 0) {   /* 256 / 512 only: either backbone; the user's, else CFLOW's default */
    const char *ub = f->user ? vg_json_as_string(vg_json_get(f->user, "backbone")) : NULL;
    wide = !(ub && !strcmp(ub, "resnet18"));
  } else {
    snprintf(v, sizeof v, "\"%s\"", wide ? "wide_resnet50_2" : "resnet18");
    snprintf(why, sizeof why, "%s", vg_anomalib_tensor(d, "encoder.feature_extractor.layer1.0.conv1.weight")
                                        ? "the encoder's weights" : "the decoders' channel counts");
    if ((st = vg_anomalib_put(f, "backbone", v, vg_anomalib_same_ci_string, why)) != VG_OK) return st;
  }
  char *p = v;
  p += sprintf(p, "[");
  int prev = 0;
  for (int l = 0; l < L; l++) {
    int t = tap_of(wide, C[l]);
    if (!t || t <= prev)
      return vg_fail(VG_ERR_UNSUPPORTED, "cflow: decoders.%d has %lld channels: no %s tap after %s gives it", l,
                     (long long)C[l], wide ? "wide_resnet50_2" : "resnet18", prev ? LAYER_NAMES[prev] : "the stem");
    p += sprintf(p, "%s\"%s\"", l ? "," : "", LAYER_NAMES[t]);
    prev = t;
  }
  sprintf(p, "]");
  snprintf(why, sizeof why, "%d decoders of %lld%s channels", L, (long long)C[0], L > 1 ? "..." : "");
  if ((st = vg_anomalib_put(f, "layers", v, NULL, why)) != VG_OK) return st;
  int blocks = 0;
  while (blocks < 1000 && vg_anomalib_tensor(d, "decoders.0.module_list.%d.subnet.0.weight", blocks)) blocks++;
  snprintf(v, sizeof v, "%d", blocks);
  snprintf(why, sizeof why, "decoders.0 has %d blocks", blocks);
  if ((st = vg_anomalib_put(f, "coupling_blocks", v, vg_anomalib_same_int, why)) != VG_OK) return st;
  const vg_tensor *s0 = vg_anomalib_tensor(d, "decoders.0.module_list.0.subnet.0.weight");
  int64_t cond = vg_anomalib_dim(s0, 1) - (C[0] - C[0] / 2);
  if (cond < 1) return vg_fail(VG_ERR_FORMAT, "cflow: decoders.0.module_list.0.subnet.0.weight has no condition inputs");
  snprintf(v, sizeof v, "%lld", (long long)cond);
  snprintf(why, sizeof why, "decoders.0.module_list.0.subnet.0.weight takes %lld inputs for %lld channels",
           (long long)vg_anomalib_dim(s0, 1), (long long)C[0]);
  return vg_anomalib_put(f, "condition_vector", v, vg_anomalib_same_int, why);
}


/* anomalib import (methods/anomalib_import.c) */
static vg_nn_module *cf_anomalib_backbone(vg_method *m) {
  return vg_nn_child_get(vg_nn_child_get(vg_cflow_module(m), "encoder"), "feature_extractor");
}

const vg_method_def vg_method_cflow = {
  .name = "cflow", .summary = "CFLOW-AD (Gudovskiy et al. 2022), official / anomalib",
  /* resnet18: building WRN50's soft permutations (SO(2048) rotations) alone takes minutes */
  .create = vg_cflow_new, .config = CF_CONFIG, .quick = {8, 16, "resnet18"},
  .no_val = true,   /* the official code has no validation split: all of train is trained on */
  .anomalib_infer = cf_anomalib_infer, .anomalib_load = vg_cflow_load_anomalib,
  .anomalib_backbone = cf_anomalib_backbone,
};
