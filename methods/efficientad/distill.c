/* distill.c — EfficientAD teacher pretraining (nelson1425/EfficientAD pretraining.py;
 * distill.h has the algorithm). Sections: target pipeline, sample views, sample order,
 * the batch producer (a vg_loader), statistics, checkpoints, the training loop. */
#include "methods/efficientad/distill.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include "autograd/autograd.h"
#include "nn/backbones/backbones.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "base/file.h"
#include "base/json.h"
#include "base/threadpool.h"

#define PATCH_DIM 1024      /* nelson's Preprocessing(…, 1024): each layer's C*9 vector -> 1024 */

/* ================================================================ target pipeline */
/* adaptive_avg_pool1d's bin d of D over K items: [s, e) */
static void bin_of(int64_t d, int64_t K, int64_t D, int64_t *s, int64_t *e) {
  *s = d * K / D;
  *e = ((d + 1) * K + D - 1) / D;
}

/* Patch pooling of one layer: x (N, C, H, W) -> y (N, D, H, W) where, at each location,
 * y[:, d] = adaptive_avg_pool1d(unfold3x3(x)[C*9 vector])[d]. The unfolded vector is in
 * torch's Unfold order (k = c*9 + ky*3 + kx, source pixel (y + ky - 1, x + kx - 1), zero
 * outside); bin d covers k in [floor(d*K/D), ceil((d+1)*K/D)), K = C*9. One item = one
 * output plane (n, d): the shifted source planes of its bin summed in k order. */
typedef struct {
  const float *x;
  float *y;
  int64_t C, H, W, D;
} patch_ctx;

static void patch_item(const patch_ctx *c, int64_t i) {
  int64_t n = i / c->D, d = i % c->D, K = c->C * 9, H = c->H, W = c->W, HW = H * W, s, e;
  bin_of(d, K, c->D, &s, &e);
  float *y = c->y + i * HW;
  memset(y, 0, sizeof(float) * (size_t)HW);
  const float *xn = c->x + n * c->C * HW;
  for (int64_t k = s; k < e; k++) {
    int64_t ch = k / 9, t = k % 9, dy = t / 3 - 1, dx = t % 3 - 1;
    const float *xp = xn + ch * HW;
    int64_t x0 = dx < 0 ? 1 : 0, x1 = dx > 0 ? W - 1 : W;
    for (int64_t r = 0; r < H; r++) {
      int64_t sr = r + dy;
      if (sr < 0 || sr >= H) continue;
      float *yr = y + r * W;
      const float *xr = xp + sr * W + dx;
      for (int64_t q = x0; q < x1; q++) yr[q] += xr[q];
    }
  }
  float cnt = (float)(e - s);
  for (int64_t j = 0; j < HW; j++) y[j] /= cnt;
}

/* vg_parallel_for body: every item is computed by one thread alone, so the results never
 * depend on the thread count */
static void patch_items(void *c, int64_t b, int64_t e, int tid) {
  (void)tid;
  for (int64_t i = b; i < e; i++) patch_item(c, i);
}

/* Aggregator: the (2 * PATCH_DIM) vector [a; b] at each location -> adaptive_avg_pool1d
 * to D. a, b: (PATCH_DIM, HW) planes of one image; y: (D, HW); one item = one plane. */
typedef struct {
  const float *a, *b;
  float *y;
  int64_t HW, D;
} agg_ctx;

static void agg_item(const agg_ctx *c, int64_t d) {
  int64_t HW = c->HW, s, e;
  bin_of(d, 2 * PATCH_DIM, c->D, &s, &e);
  float *y = c->y + d * HW;
  memset(y, 0, sizeof(float) * (size_t)HW);
  for (int64_t k = s; k < e; k++) {
    const float *src = k < PATCH_DIM ? c->a + k * HW : c->b + (k - PATCH_DIM) * HW;
    for (int64_t j = 0; j < HW; j++) y[j] += src[j];
  }
  float cnt = (float)(e - s);
  for (int64_t j = 0; j < HW; j++) y[j] /= cnt;
}

static void agg_items(void *c, int64_t b, int64_t e, int tid) {
  (void)tid;
  for (int64_t d = b; d < e; d++) agg_item(c, d);
}

/* The two feature maps a backbone family gives the targets: nelson's layer2 + layer3 for
 * ResNets (WRN-101 in the paper; ResNeXt-101 as PatchCore's ensemble), PatchCore's
 * features.denseblock2 + features.denseblock3 for DenseNet (hooked on the block: the
 * concatenation before any BN). */
vg_status vg_effad_distill_taps(const char *backbone, const char *taps[2]) {
  const vg_backbone_desc *d = vg_backbone_find(backbone);
  if (!d) return vg_fail_prefix("distill");
  if (!strcmp(d->family, "resnet")) {
    taps[0] = "layer2";
    taps[1] = "layer3";
  } else if (!strcmp(d->family, "densenet")) {
    taps[0] = "features.denseblock2";
    taps[1] = "features.denseblock3";
  } else {
    return vg_fail(VG_ERR_ARG, "distill: backbone %s (%s family) has no distillation feature maps (ResNets: "
                   "layer2 + layer3; DenseNets: features.denseblock2 + features.denseblock3)", d->name, d->family);
  }
  return VG_OK;
}

static vg_tensor *patch_pool(const vg_tensor *f) {
  vg_tensor *x = vg_contiguous(f);
  if (!x) return NULL;
  vg_tensor *y = vg_empty(VG_F32, 4, (int64_t[]){x->shape[0], PATCH_DIM, x->shape[2], x->shape[3]});
  if (!y) return NULL;
  patch_ctx c = {vg_f32(x), vg_f32(y), x->shape[1], x->shape[2], x->shape[3], PATCH_DIM};
  vg_parallel_for(x->shape[0] * PATCH_DIM, 8, patch_items, &c);
  return y;
}

/* Device form of the same linear maps. Patch pooling P_l (PATCH_DIM x C_l*9, per layer)
 * followed by the aggregator A (out x 2*PATCH_DIM, acting on [pool2; upsample(pool3)])
 * is one channel map per layer, W_l = A_l P_l (out x C_l*9), i.e. a 3x3 convolution
 * (pad 1) with a fixed weight; A acts on channels and the bilinear upsampling on the
 * grid, so layer3's part is convolved on its own grid and upsampled after. The CPU keeps
 * the direct kernels above (sparse: ~6 taps per output); on a GPU two dense GEMM-backed
 * convolutions (+10% of WRN-101's layer2+3 FLOPs) beat six custom passes. Weights are
 * made on the host in double, rounded once, cached per (device, C2, C3, out). */
typedef struct {
  vg_device dev;
  int64_t c2, c3, out;
  vg_tensor *w2, *w3;   /* (out, C, 3, 3) heap tensors on dev */
} folded_w;

static void folded_free(folded_w *f) {
  vg_tensor_free(f->w2);
  vg_tensor_free(f->w3);
  memset(f, 0, sizeof *f);
}

/* W_l for layer l (0: layer2, its aggregator items [0, PATCH_DIM); 1: layer3, the rest) */
static vg_tensor *folded_layer(int l, int64_t C, int64_t out, vg_device dev) {
  int64_t K = C * 9;
  double *w = calloc((size_t)(out * K), sizeof *w);
  float *wf = malloc(sizeof(float) * (size_t)(out * K));
  vg_tensor *t = NULL;
  if (w && wf) {
    for (int64_t o = 0; o < out; o++) {
      int64_t as, ae;
      bin_of(o, 2 * PATCH_DIM, out, &as, &ae);
      for (int64_t j = as; j < ae; j++) {
        int64_t d = j - l * PATCH_DIM;
        if (d < 0 || d >= PATCH_DIM) continue;
        int64_t ps, pe;
        bin_of(d, K, PATCH_DIM, &ps, &pe);
        double a = 1.0 / (double)(ae - as) / (double)(pe - ps);
        for (int64_t k = ps; k < pe; k++) w[o * K + k] += a;
      }
    }
    for (int64_t i = 0; i < out * K; i++) wf[i] = (float)w[i];
    t = vg_tensor_new(VG_F32, 4, (int64_t[]){out, C, 3, 3});
    if (t) memcpy(vg_f32(t), wf, sizeof(float) * (size_t)(out * K));
    if (t && vg_tensor_to_(t, dev, VG_F32) != VG_OK) { vg_tensor_free(t); t = NULL; }
  } else {
    vg_fail(VG_ERR_NOMEM, "distill targets: out of memory for the folded weights");
  }
  free(w);
  free(wf);
  return t;
}

static vg_status folded_get(folded_w *f, vg_device dev, int64_t c2, int64_t c3, int64_t out) {
  if (f->w2 && f->dev == dev && f->c2 == c2 && f->c3 == c3 && f->out == out) return VG_OK;
  folded_free(f);
  f->w2 = folded_layer(0, c2, out, dev);
  f->w3 = f->w2 ? folded_layer(1, c3, out, dev) : NULL;
  if (!f->w3) { folded_free(f); return vg_fail_prefix("distill targets"); }
  *f = (folded_w){dev, c2, c3, out, f->w2, f->w3};
  return VG_OK;
}

static vg_device module_device(vg_nn_module *m) {
  vg_nn_list p = vg_nn_named_parameters(m);
  vg_device d = p.n ? p.tensors[0]->device : VG_CPU;
  vg_nn_list_free(&p);
  return d;
}

/* the targets of x (on wrn's device) into *out; fw: the device weights' cache (NULL: made
 * for this call) */
static vg_status targets_impl(vg_nn_module *wrn, const vg_tensor *x, int64_t out_channels, folded_w *fw,
                              vg_tensor **out) {
  *out = NULL;
  const vg_backbone_desc *bd = vg_backbone_of(wrn);
  const char *tn[2];
  if (!bd) return vg_fail(VG_ERR_ARG, "distill targets: the extractor is not a backbone from vg_backbone_new");
  if (vg_effad_distill_taps(bd->name, tn) != VG_OK) return vg_fail_prefix("distill targets");
  int i2 = -1, i3 = -1, nf = vg_backbone_num_features(wrn);
  for (int i = 0; i < nf; i++) {
    const char *nm = vg_backbone_feature_name(wrn, i);
    if (!strcmp(nm, tn[0])) i2 = i;
    if (!strcmp(nm, tn[1])) i3 = i;
  }
  if (i2 < 0 || i3 < 0)
    return vg_fail(VG_ERR_ARG, "distill targets: the extractor must provide %s and %s", tn[0], tn[1]);
  if (!x || x->ndim != 4 || x->shape[1] != 3 || x->dtype != VG_F32)
    return vg_fail(VG_ERR_ARG, "distill targets: want an (N, 3, H, W) f32 input");
  vg_device dev = module_device(wrn);
  if (x->device != dev)
    return vg_fail(VG_ERR_ARG, "distill targets: the input is on the %s, the extractor on the %s",
                   x->device == VG_CPU ? "CPU" : "GPU", dev == VG_CPU ? "CPU" : "GPU");
  if (out_channels < 1) return vg_fail(VG_ERR_ARG, "distill targets: out_channels must be >= 1");
  if (x->shape[0] < 1) return vg_fail(VG_ERR_ARG, "distill targets: empty batch");
  int64_t N = x->shape[0], h2 = 0, w2 = 0;   /* the first tap's grid, from the first chunk */
  vg_tensor *y = NULL;                       /* made in the first chunk's scope, kept */
  folded_w local = {0};
  if (!fw) fw = &local;
  vg_status st = VG_OK;
  vg_no_grad_begin();
  /* the CPU goes one image at a time (the backbone keeps its intermediates until the scope
   * ends); a GPU takes the batch at once */
  int64_t chunk = dev == VG_CPU ? 1 : N;
  for (int64_t n = 0; n < N && st == VG_OK; n += chunk) {
    vg_scope_begin();
    vg_tensor *f[16] = {0};
    bool made = false;
    st = nf <= 16 ? vg_backbone_features(wrn, vg_narrow(x, 0, n, chunk), f)
                  : vg_fail(VG_ERR_ARG, "distill targets: %d feature maps (at most 16)", nf);
    if (st == VG_OK && !y) {
      h2 = f[i2]->shape[2];
      w2 = f[i2]->shape[3];
      int64_t oshape[4] = {N, out_channels, h2, w2};
      y = dev == VG_CPU ? vg_empty(VG_F32, 4, oshape) : vg_full_on(dev, VG_F32, 4, oshape, 0);
      made = y != NULL;
      if (!y) st = vg_fail_prefix("distill targets");
    }
    if (st == VG_OK && (f[i2]->shape[2] != h2 || f[i2]->shape[3] != w2))
      st = vg_fail(VG_ERR_ARG, "distill targets: %s grid %lldx%lld, expected %lldx%lld", tn[0],
                   (long long)f[i2]->shape[2], (long long)f[i2]->shape[3], (long long)h2, (long long)w2);
    if (st == VG_OK && dev != VG_CPU) {
      st = folded_get(fw, dev, f[i2]->shape[1], f[i3]->shape[1], out_channels);
      vg_conv2d_opts co = {.ph = 1, .pw = 1};
      vg_tensor *t = st == VG_OK ? vg_add(vg_conv2d(f[i2], fw->w2, NULL, co),
                                          vg_interpolate_bilinear(vg_conv2d(f[i3], fw->w3, NULL, co), h2, w2, false))
                                 : NULL;
      if (st == VG_OK && (!t || vg_copy_(vg_narrow(y, 0, n, chunk), t) != VG_OK)) st = vg_fail_prefix("distill targets");
    } else if (st == VG_OK) {
      vg_tensor *p2 = patch_pool(f[i2]);
      /* nelson upsamples layer3's unfolded maps, then pools their C*9 axis; the pooling
       * acts on the feature axis and the upsampling on the grid, so pooling first is the
       * same linear map (up to rounding) on 9x less data */
      vg_tensor *p3 = vg_interpolate_bilinear(patch_pool(f[i3]), h2, w2, false);
      if (!p2 || !p3) st = vg_fail_prefix("distill targets");
      if (st == VG_OK) {
        agg_ctx c = {vg_f32(p2), vg_f32(p3), vg_f32(y) + n * out_channels * h2 * w2, h2 * w2, out_channels};
        vg_parallel_for(out_channels, 4, agg_items, &c);
      }
    }
    if (made) vg_scope_end_keep(1, &y);
    else vg_scope_end();
  }
  vg_no_grad_end();
  folded_free(&local);
  if (st == VG_OK) *out = y;
  return st;
}

vg_status vg_effad_distill_targets(vg_nn_module *wrn, const vg_tensor *x, int64_t out_channels, vg_tensor **out) {
  return targets_impl(wrn, x, out_channels, NULL, out);
}

/* ===================================================================== sample views */
vg_status vg_effad_distill_views(const vg_image *img, int view, bool grey, float *big, float *small) {
  if (!img || !big || !small || view < 1) return vg_fail(VG_ERR_ARG, "distill views: bad arguments");
  int v2 = 2 * view;
  vg_status st = VG_OK;
  if (img->depth == 8) {
    /* ImageFolder's convert("RGB"), then RandomGrayscale (convert("L") -> RGB), then the
     * two Resize + ToTensor pipelines on that same image */
    vg_image rgb = {0}, g = {0}, g3 = {0};
    const vg_image *cur = img;
    if (img->c != 3) { st = vg_image_to_rgb(img, &rgb); cur = &rgb; }
    if (st == VG_OK && grey) {
      st = vg_image_to_gray(cur, &g);
      if (st == VG_OK) st = vg_image_to_rgb(&g, &g3);
      cur = &g3;
    }
    if (st == VG_OK) st = vg_default_transform(cur, big, 3, v2, v2, NULL);
    if (st == VG_OK) st = vg_default_transform(cur, small, 3, view, view, NULL);
    vg_image_free(&g3);
    vg_image_free(&g);
    vg_image_free(&rgb);
  } else {
    st = vg_default_transform(img, big, 3, v2, v2, NULL);
    if (st == VG_OK) st = vg_default_transform(img, small, 3, view, view, NULL);
    for (int k = 0; grey && st == VG_OK && k < 2; k++) {
      float *p = k ? small : big;
      int64_t hw = k ? (int64_t)view * view : (int64_t)v2 * v2;
      for (int64_t i = 0; i < hw; i++) {
        float l = 0.299f * p[i] + 0.587f * p[hw + i] + 0.114f * p[2 * hw + i];
        p[i] = p[hw + i] = p[2 * hw + i] = l;
      }
    }
  }
  if (st == VG_OK) vg_tensor_normalize_imagenet(big, v2, v2);
  return st;
}

/* ===================================================================== sample order
 * Position p of a stream: epoch e = p / n in a Fisher-Yates order seeded by (seed, tag, e);
 * its grey decision from (seed, tag, p). Pure functions of their arguments. */
enum { STREAM_TRAIN = 1, STREAM_STATS = 2 };

static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t hash3(uint64_t a, uint64_t b, uint64_t c) { return mix64(mix64(mix64(a) ^ b) ^ c); }

typedef struct {
  int64_t n, epoch;
  int64_t *perm;
  uint64_t seed, tag;
} order;

static int64_t order_index(order *o, int64_t p) {
  int64_t e = p / o->n;
  if (e != o->epoch) {
    uint64_t s = hash3(o->seed, o->tag, (uint64_t)e);
    for (int64_t i = 0; i < o->n; i++) o->perm[i] = i;
    for (int64_t i = o->n - 1; i > 0; i--) {
      s = mix64(s);
      int64_t j = (int64_t)(((unsigned __int128)s * (uint64_t)(i + 1)) >> 64);
      int64_t t = o->perm[i];
      o->perm[i] = o->perm[j];
      o->perm[j] = t;
    }
    o->epoch = e;
  }
  return o->perm[p % o->n];
}

static bool grey_at(uint64_t seed, uint64_t tag, int64_t p, double p_grey) {
  double u = (double)(hash3(seed, tag ^ 0x6772657900000000ull, (uint64_t)p) >> 11) * 0x1p-53;
  return u < p_grey;
}

/* ===================================================== batch producer (a vg_loader)
 * The loader decodes each sample on its `workers` threads into [big | small] (the two
 * views, 3 x 2v x 2v then 3 x v x v floats), one batch ahead of the compute. Its sampler
 * maps the loader's epochs onto the streams: epochs 0 and 1 are the statistics passes
 * (STATS positions [0, S) and [S, 2S)), epoch 2 the training run from position p0; the
 * tag it hands with a position is that position's grey decision. */
enum { EPOCH_MEAN = 0, EPOCH_STD = 1, EPOCH_TRAIN = 2 };

typedef struct {
  int view;
  double p_grey;
  int64_t S, p0;         /* images per statistics pass; the first training position */
  order stats, train;    /* touched by the sampler only (the loader serialises its calls) */
} streams;

static int64_t stream_sample(void *u, int epoch, int64_t pos, uint64_t *grey) {
  streams *s = u;
  order *o = epoch == EPOCH_TRAIN ? &s->train : &s->stats;
  int64_t p = epoch == EPOCH_TRAIN ? s->p0 + pos : epoch * s->S + pos;
  *grey = grey_at(o->seed, o->tag, p, s->p_grey);
  return order_index(o, p);
}

static vg_status stream_views(const vg_image *img, uint64_t grey, float *out, void *u) {
  const streams *s = u;
  return vg_effad_distill_views(img, s->view, grey != 0, out, out + 12 * (int64_t)s->view * s->view);
}

/* ============================================================================ helpers */
static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fmt_duration(double s, char *buf, size_t n) {
  if (!(s >= 0) || s > 1e9) { snprintf(buf, n, "?"); return; }
  long long t = (long long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else if (t >= 60) snprintf(buf, n, "%lldm%02llds", t / 60, t % 60);
  else snprintf(buf, n, "%llds", t);
}

void vg_effad_distill_defaults(vg_effad_distill_opts *o) {
  memset(o, 0, sizeof *o);
  o->backbone = "wide_resnet101_2";
  o->size = VG_EFFAD_S;
  o->out_channels = 384;
  o->iters = 60000;
  o->batch = 16;
  o->stats_images = 10000;
  o->save_every = 1000;
  o->view = 256;
  o->lr = 1e-4;
  o->weight_decay = 1e-5;
  o->p_grey = 0.1;
  o->seed = 42;
  o->workers = 2;
  o->log_every = 100;
}

/* Everything one run holds. */
typedef struct {
  const vg_effad_distill_opts *o;
  vg_nn_module *wrn, *state, *pdn;   /* state owns pdn + target_mean / target_std buffers */
  vg_tensor *mean, *std;
  vg_optim *opt;
  vg_nn_list params;
  streams str;
  vg_loader *loader;
  float *batch;                      /* the current batch: rows x [big | small] */
  int rows;
  folded_w fw;                       /* the target pipeline's weights on a GPU */
  char ckpt[4096];
} run;

static vg_tensor *no_forward(vg_nn_module *m, const vg_tensor *x) {
  (void)m; (void)x;
  vg_fail(VG_ERR_ARG, "distill state: not callable");
  return NULL;
}

static const char *size_name(vg_effad_size s) { return s == VG_EFFAD_S ? "s" : "m"; }

/* the next batch of the loader's epoch into R->batch / R->rows */
static vg_status next_batch(run *R) {
  vg_status st = vg_loader_next_into(R->loader, R->batch, NULL, NULL, &R->rows);
  if (st == VG_OK && R->rows < 1) st = vg_fail(VG_ERR_ARG, "distill: the sample stream ended early");
  return st;
}

/* the batch's big (the extractor's) or small (the PDN's) views as an (rows, 3, v, v)
 * tensor on the run's device, in the current scope */
static vg_tensor *batch_input(run *R, bool big) {
  int64_t v = R->o->view, nb = 12 * v * v, ns = 3 * v * v, n = big ? nb : ns;
  if (big) v *= 2;
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){R->rows, 3, v, v});
  for (int64_t r = 0; x && r < R->rows; r++)
    memcpy(vg_f32(x) + r * n, R->batch + r * (nb + ns) + (big ? 0 : nb), sizeof(float) * (size_t)n);
  if (x && R->o->device != VG_CPU) x = vg_to_device(x, R->o->device);
  if (!x) vg_fail_prefix("distill: the batch to the %s", R->o->device == VG_CPU ? "CPU" : "GPU");
  return x;
}

/* the extractor targets of the batch's big views, in the current scope */
static vg_status batch_targets(run *R, vg_tensor **t) {
  vg_tensor *x = batch_input(R, true);
  if (!x) return vg_last_status();
  return targets_impl(R->wrn, x, R->o->out_channels, &R->fw, t);
}

/* ======================================================================= statistics
 * Pass 1 (stream positions 0..S-1): mean_c = mean over images of the per-image channel
 * mean. Pass 2 (positions S..2S-1): var_c = mean over images of the per-image mean of
 * (t - mean_c)^2. std = sqrt(var). Sums in double. */
static vg_status compute_stats(run *R) {
  const vg_effad_distill_opts *o = R->o;
  int64_t S = R->str.S, C = o->out_channels;
  double *acc = calloc((size_t)C, sizeof *acc), *mean = calloc((size_t)C, sizeof *mean);
  float *res[2] = {malloc(sizeof(float) * (size_t)C), malloc(sizeof(float) * (size_t)C)};   /* mean, std */
  if (!acc || !mean || !res[0] || !res[1]) {
    free(acc); free(mean); free(res[0]); free(res[1]);
    return vg_fail(VG_ERR_NOMEM, "distill: out of memory");
  }
  vg_status st = VG_OK;
  double t0 = now_s();
  int64_t nbat = (S + o->batch - 1) / o->batch, total = 2 * nbat;
  for (int pass = 0; pass < 2 && st == VG_OK; pass++) {
    memset(acc, 0, sizeof *acc * (size_t)C);
    st = vg_loader_start_stream(R->loader, pass == 0 ? EPOCH_MEAN : EPOCH_STD, S);
    for (int64_t b = 0; b < nbat && st == VG_OK; b++) {
      if (o->interrupt && *o->interrupt) {
        st = vg_fail(VG_ERR_ARG, "distill: interrupted during the target statistics (nothing saved)");
        break;
      }
      st = next_batch(R);
      if (st != VG_OK) break;
      int rows = R->rows;
      vg_scope_begin();
      vg_tensor *t = NULL;
      st = batch_targets(R, &t);
      if (st == VG_OK && t->device != VG_CPU && !(t = vg_to_device(t, VG_CPU)))
        st = vg_fail_prefix("distill: targets to the host");
      if (st == VG_OK) {
        const float *d = vg_f32(t);
        int64_t HW = t->shape[2] * t->shape[3];
        for (int64_t n = 0; n < rows; n++)
          for (int64_t c = 0; c < C; c++) {
            const float *p = d + (n * C + c) * HW;
            double s = 0;
            if (pass == 0) for (int64_t i = 0; i < HW; i++) s += p[i];
            else for (int64_t i = 0; i < HW; i++) s += ((double)p[i] - mean[c]) * ((double)p[i] - mean[c]);
            acc[c] += s / (double)HW;
          }
      }
      vg_scope_end();
      int64_t done = pass * nbat + b + 1;
      if (st == VG_OK && !o->quiet && (done == total || done % 10 == 0 || done == 1)) {
        double el = now_s() - t0;
        char eta[32];
        fmt_duration(el / (double)done * (double)(total - done), eta, sizeof eta);
        fprintf(stderr, "distill: target statistics (%s) %lld/%lld images, %.2f img/s, ETA %s\n",
                pass == 0 ? "mean" : "std", (long long)(b * o->batch + rows), (long long)S,
                (double)(done * o->batch) / el, eta);
      }
    }
    if (st != VG_OK) break;
    float *dst = res[pass];
    for (int64_t c = 0; c < C; c++) {
      double m = acc[c] / (double)S;
      if (pass == 0) { mean[c] = m; dst[c] = (float)m; }
      else dst[c] = (float)sqrt(m);
    }
  }
  /* a channel whose targets never vary (a dead ReLU bin; random extractors) would give
   * 0/0 in nelson's standardisation: it gets std 1 (its standardised target is 0) */
  int64_t dead = 0;
  for (int64_t c = 0; st == VG_OK && c < C; c++) {
    float *s = res[1] + c, m = res[0][c];
    if (!isfinite(*s) || !isfinite(m))
      st = vg_fail(VG_ERR_NUMERIC, "distill: target channel %lld has mean %g, std %g (non-finite targets)",
                   (long long)c, (double)m, (double)*s);
    else if (!(*s > 0)) { *s = 1.0f; dead++; }
  }
  if (st == VG_OK && dead && !o->quiet)
    fprintf(stderr, "distill: warning: %lld of %lld target channels are constant over the statistics images "
                    "(std 0): their std is set to 1\n", (long long)dead, (long long)C);
  if (st == VG_OK && (vg_from_host_(R->mean, VG_F32, res[0]) != VG_OK || vg_from_host_(R->std, VG_F32, res[1]) != VG_OK))
    st = vg_fail_prefix("distill: target statistics");
  free(acc);
  free(mean);
  free(res[0]);
  free(res[1]);
  return st;
}

/* ====================================================================== checkpoints */
static char *config_json(run *R, int64_t iteration) {
  const vg_effad_distill_opts *o = R->o;
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "iteration"); vg_jw_int64(&w, iteration);
  vg_jw_key(&w, "iters"); vg_jw_int64(&w, o->iters);
  vg_jw_key(&w, "backbone"); vg_jw_string(&w, o->backbone);
  vg_jw_key(&w, "weights"); vg_jw_string(&w, o->weights ? o->weights : "");
  vg_jw_key(&w, "size"); vg_jw_string(&w, size_name(o->size));
  vg_jw_key(&w, "out_channels"); vg_jw_int64(&w, o->out_channels);
  vg_jw_key(&w, "view"); vg_jw_int64(&w, o->view);
  vg_jw_key(&w, "batch"); vg_jw_int64(&w, o->batch);
  vg_jw_key(&w, "seed"); vg_jw_int64(&w, (int64_t)o->seed);
  vg_jw_key(&w, "n_images"); vg_jw_int64(&w, R->str.train.n);
  vg_jw_key(&w, "stats_images"); vg_jw_int64(&w, o->stats_images);
  vg_jw_key(&w, "p_grey"); vg_jw_double(&w, o->p_grey);
  vg_jw_key(&w, "lr"); vg_jw_double(&w, o->lr);
  vg_jw_key(&w, "weight_decay"); vg_jw_double(&w, o->weight_decay);
  vg_jw_end_object(&w);
  return vg_jw_finish(&w, NULL);
}

static vg_status save_ckpt(run *R, int64_t iteration) {
  char *cfg = config_json(R, iteration);
  if (!cfg) return vg_fail_prefix("distill: checkpoint config");
  vg_status st = vg_nn_checkpoint_save(R->ckpt, R->state, R->opt, cfg);
  free(cfg);
  return st == VG_OK ? VG_OK : vg_fail_prefix("distill: checkpoint");
}

/* the settings a resumed run must share with the checkpoint for the same result */
static vg_status check_resume(run *R, const vg_json *j) {
  const vg_effad_distill_opts *o = R->o;
  struct { const char *key; int64_t want; } ints[] = {
      {"out_channels", o->out_channels}, {"view", o->view}, {"batch", o->batch},
      {"seed", (int64_t)o->seed}, {"n_images", R->str.train.n}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    int64_t v;
    if (!vg_json_as_int64(vg_json_get(j, ints[i].key), &v))
      return vg_fail(VG_ERR_FORMAT, "distill: %s: config lacks %s", R->ckpt, ints[i].key);
    if (v != ints[i].want)
      return vg_fail(VG_ERR_ARG, "distill: cannot resume: %s is %lld in %s but %lld now", ints[i].key,
                     (long long)v, R->ckpt, (long long)ints[i].want);
  }
  const char *strs[2][2] = {{"backbone", o->backbone}, {"size", size_name(o->size)}};
  for (int i = 0; i < 2; i++) {
    const char *v = vg_json_as_string(vg_json_get(j, strs[i][0]));
    if (!v) return vg_fail(VG_ERR_FORMAT, "distill: %s: config lacks %s", R->ckpt, strs[i][0]);
    if (strcmp(v, strs[i][1]))
      return vg_fail(VG_ERR_ARG, "distill: cannot resume: %s is '%s' in %s but '%s' now", strs[i][0], v, R->ckpt,
                     strs[i][1]);
  }
  return VG_OK;
}

static vg_status load_ckpt(run *R, int64_t *iteration) {
  char *cfg = NULL;
  vg_status st = vg_nn_checkpoint_load(R->ckpt, R->state, R->opt, &cfg);
  if (st != VG_OK) { free(cfg); return vg_fail_prefix("distill: resume"); }
  vg_json *j = NULL;
  st = vg_json_parse(cfg, strlen(cfg), NULL, &j);
  free(cfg);
  if (st != VG_OK) return vg_fail_prefix("distill: %s: config", R->ckpt);
  st = check_resume(R, j);
  if (st == VG_OK && !vg_json_as_int64(vg_json_get(j, "iteration"), iteration))
    st = vg_fail(VG_ERR_FORMAT, "distill: %s: config lacks the iteration", R->ckpt);
  vg_json_free(j);
  return st;
}

static vg_status save_teacher(run *R, int64_t iteration) {
  const vg_effad_distill_opts *o = R->o;
  char num[64];
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "format"); vg_jw_string(&w, "vigil-effad-teacher");
  vg_jw_key(&w, "version"); vg_jw_string(&w, "1");
  vg_jw_key(&w, "backbone"); vg_jw_string(&w, o->backbone);
  vg_jw_key(&w, "weights"); vg_jw_string(&w, o->weights && *o->weights ? o->weights : "random-init");
  vg_jw_key(&w, "size"); vg_jw_string(&w, size_name(o->size));
  snprintf(num, sizeof num, "%lld", (long long)o->out_channels);
  vg_jw_key(&w, "out_channels"); vg_jw_string(&w, num);
  snprintf(num, sizeof num, "%lld", (long long)iteration);
  vg_jw_key(&w, "iters"); vg_jw_string(&w, num);
  snprintf(num, sizeof num, "%llu", (unsigned long long)o->seed);
  vg_jw_key(&w, "seed"); vg_jw_string(&w, num);
  snprintf(num, sizeof num, "%lld", (long long)o->batch);
  vg_jw_key(&w, "batch"); vg_jw_string(&w, num);
  snprintf(num, sizeof num, "%d", o->view);
  vg_jw_key(&w, "view"); vg_jw_string(&w, num);
  snprintf(num, sizeof num, "%lld", (long long)R->str.train.n);
  vg_jw_key(&w, "images"); vg_jw_string(&w, num);
  vg_jw_end_object(&w);
  char *meta = vg_jw_finish(&w, NULL);
  if (!meta) return vg_fail_prefix("distill: teacher metadata");
  vg_nn_list sd = vg_nn_state_dict(R->pdn);
  vg_status st = vg_st_save(o->out, sd.n, (const char *const *)sd.names, sd.tensors, meta);
  vg_nn_list_free(&sd);
  free(meta);
  return st == VG_OK ? VG_OK : vg_fail_prefix("distill: writing the teacher");
}

/* ==================================================================== training loop */
static vg_status check_opts(const vg_effad_distill_opts *o) {
  if (!o) return vg_fail(VG_ERR_ARG, "distill: NULL options");
  if (!o->images) return vg_fail(VG_ERR_ARG, "distill: no image dataset given");
  if (o->images->n < 1) return vg_fail(VG_ERR_ARG, "distill: the image dataset is empty");
  if (!o->out || !*o->out) return vg_fail(VG_ERR_ARG, "distill: no output file (out)");
  char dir[4096];
  struct stat sb;
  if (!vg_path_dirname(o->out, dir, sizeof dir)) return vg_fail(VG_ERR_ARG, "distill: the output path is too long");
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return vg_fail(VG_ERR_IO, "distill: the output folder %s does not exist", dir);
  if (!o->backbone || !*o->backbone) return vg_fail(VG_ERR_ARG, "distill: no backbone name");
  if (o->size != VG_EFFAD_S && o->size != VG_EFFAD_M) return vg_fail(VG_ERR_ARG, "distill: size must be S or M");
  if (o->iters < 1 || o->batch < 1 || o->stats_images < 1 || o->out_channels < 1)
    return vg_fail(VG_ERR_ARG, "distill: iters, batch, stats_images and out_channels must be >= 1");
  if (o->batch > INT_MAX) return vg_fail(VG_ERR_ARG, "distill: batch %lld is too large", (long long)o->batch);
  if (o->view < 16 || o->view % 8)
    return vg_fail(VG_ERR_ARG, "distill: view %d: must be a multiple of 8, at least 16", o->view);
  if (!(o->lr > 0) || !(o->weight_decay >= 0) || !(o->p_grey >= 0 && o->p_grey <= 1))
    return vg_fail(VG_ERR_ARG, "distill: need lr > 0, weight_decay >= 0, 0 <= p_grey <= 1");
  if (o->device != VG_CPU && o->device != VG_CUDA) return vg_fail(VG_ERR_ARG, "distill: bad device %d", (int)o->device);
  if (o->device == VG_CUDA && !vg_cuda_available()) return vg_fail_prefix("distill: --device cuda");
  return VG_OK;
}

static void run_free(run *R) {
  vg_loader_destroy(R->loader);
  free(R->batch);
  free(R->str.stats.perm);
  free(R->str.train.perm);
  vg_nn_list_free(&R->params);
  vg_optim_free(R->opt);
  vg_nn_free(R->state);
  vg_nn_free(R->wrn);
  folded_free(&R->fw);
}

/* the extractor, the PDN with its target statistics and Adam's moments to the device
 * (after a resume has loaded them on the host) */
static vg_status run_to_device(run *R) {
  vg_device d = R->o->device;
  if (d == VG_CPU) return VG_OK;
  if (vg_nn_to(R->wrn, d, VG_F32) != VG_OK || vg_nn_to(R->state, d, VG_F32) != VG_OK || vg_optim_to(R->opt, d) != VG_OK)
    return vg_fail_prefix("distill: moving the models to the GPU");
  return VG_OK;
}

static vg_status run_setup(run *R) {
  const vg_effad_distill_opts *o = R->o;
  vg_status st = VG_OK;
  if ((size_t)snprintf(R->ckpt, sizeof R->ckpt, "%s.ckpt.safetensors", o->out) >= sizeof R->ckpt)
    return vg_fail(VG_ERR_ARG, "distill: output path too long");
  int64_t n = o->images->n, v = o->view;
  R->str = (streams){.view = o->view, .p_grey = o->p_grey, .S = o->stats_images < n ? o->stats_images : n,
                     .stats = {.n = n, .epoch = -1, .seed = o->seed, .tag = STREAM_STATS},
                     .train = {.n = n, .epoch = -1, .seed = o->seed, .tag = STREAM_TRAIN}};
  R->str.stats.perm = malloc(sizeof(int64_t) * (size_t)n);
  R->str.train.perm = malloc(sizeof(int64_t) * (size_t)n);
  R->batch = malloc(sizeof(float) * (size_t)(o->batch * 15 * v * v));
  if (!R->str.stats.perm || !R->str.train.perm || !R->batch)
    return vg_fail(VG_ERR_NOMEM, "distill: out of memory for batch buffers");
  vg_loader_opts lo = {.batch_size = (int)o->batch, .workers = o->workers, .prefetch = 1, .channels = 3,
                       .height = o->view, .width = o->view, .sampler = stream_sample, .sample_fn = stream_views,
                       .sample_floats = 15 * v * v, .user = &R->str};
  st = vg_loader_create(o->images, &lo, &R->loader);
  if (st != VG_OK) return vg_fail_prefix("distill: the image loader");
  const char *taps[2];
  if (vg_effad_distill_taps(o->backbone, taps) != VG_OK) return vg_fail_prefix("distill: backbone '%s'", o->backbone);
  R->wrn = vg_backbone_new(o->backbone, 2, taps, o->seed);
  if (!R->wrn) return vg_fail_prefix("distill: backbone '%s'", o->backbone);
  if (o->weights && *o->weights) {
    st = vg_nn_load_state_file(R->wrn, o->weights, true);
    if (st != VG_OK) return vg_fail_prefix("distill: backbone weights %s do not fit %s", o->weights, o->backbone);
  } else if (!o->quiet) {
    fprintf(stderr,
            "distill: WARNING: no --weights: the %s target extractor is RANDOMLY INITIALISED.\n"
            "distill: WARNING: the teacher will NOT be comparable to the paper's (ImageNet-pretrained targets).\n",
            o->backbone);
  }
  R->pdn = vg_effad_pdn_new(o->size, o->out_channels, true, o->seed);
  if (!R->pdn) return vg_fail(VG_ERR_NOMEM, "distill: out of memory (PDN)");
  R->state = vg_nn_module_new("EffadDistill", no_forward, NULL, NULL);
  vg_nn_add_child(R->state, "pdn", R->pdn);
  int64_t cs[4] = {1, o->out_channels, 1, 1};
  R->mean = vg_tensor_new(VG_F32, 4, cs);
  R->std = vg_tensor_new(VG_F32, 4, cs);
  if (!R->mean || !R->std) return vg_fail(VG_ERR_NOMEM, "distill: out of memory");
  vg_nn_add_buffer(R->state, "target_mean", R->mean);
  vg_nn_add_buffer(R->state, "target_std", R->std);
  vg_nn_train(R->pdn, true);
  R->params = vg_nn_named_parameters(R->pdn);
  vg_optim_hparams hp = vg_optim_defaults(VG_OPTIM_ADAM, o->lr);
  hp.weight_decay = o->weight_decay;
  R->opt = vg_optim_new(VG_OPTIM_ADAM, hp);
  if (!R->opt || vg_optim_add_group(R->opt, R->params.n, R->params.tensors, NULL) < 0)
    return vg_fail_prefix("distill: optimizer");
  return VG_OK;
}

/* one iteration on the batch's rows: targets (no grad), standardise, PDN, MSE, Adam */
static vg_status train_step(run *R, int64_t it, double *loss_out, double *t_extract) {
  const vg_effad_distill_opts *o = R->o;
  vg_status st = VG_OK;
  vg_scope_begin();
  double t0 = now_s();
  vg_tensor *t = NULL;
  st = batch_targets(R, &t);
  if (o->device != VG_CPU) vg_cuda_synchronize();   /* the split of the progress line */
  *t_extract = now_s() - t0;
  if (st == VG_OK) {
    vg_tensor *y = vg_div(vg_sub(t, R->mean), R->std);
    vg_tensor *x = batch_input(R, false);
    vg_tensor *p = x ? vg_nn_forward(R->pdn, x) : NULL;
    if (p && y && !vg_same_shape(p, y)) {
      char a[64], b[64];
      st = vg_fail(VG_ERR_ARG, "distill: the PDN maps %s do not match the targets %s (view %d)",
                   vg_shape_str(p, a, sizeof a), vg_shape_str(y, b, sizeof b), o->view);
    }
    vg_tensor *loss = st == VG_OK ? vg_mse_loss(y, p) : NULL;
    if (st == VG_OK && !loss) st = vg_fail_prefix("distill: iteration %lld", (long long)it + 1);
    if (st == VG_OK) {
      double l = vg_item(loss);
      *loss_out = l;
      if (!isfinite(l))
        st = vg_fail(VG_ERR_NUMERIC, "distill: the loss is %s at iteration %lld", isnan(l) ? "NaN" : "infinite",
                     (long long)it + 1);
    }
    if (st == VG_OK) {
      vg_optim_zero_grad(R->opt);
      st = vg_backward(loss);
      if (st == VG_OK) vg_optim_step(R->opt);
    }
  }
  vg_scope_end();
  return st;
}

vg_status vg_effad_distill(const vg_effad_distill_opts *o) {
  vg_status st = check_opts(o);
  if (st != VG_OK) return st;
  run R;
  memset(&R, 0, sizeof R);
  R.o = o;
  st = run_setup(&R);
  int64_t it0 = 0;
  if (st == VG_OK && o->resume) {
    st = load_ckpt(&R, &it0);
    if (st == VG_OK && !o->quiet)
      fprintf(stderr, "distill: resumed from %s at iteration %lld/%lld\n", R.ckpt, (long long)it0, (long long)o->iters);
  }
  R.str.p0 = it0 * o->batch;
  if (st == VG_OK) st = run_to_device(&R);
  if (st == VG_OK && !o->resume) st = compute_stats(&R);
  double t_start = now_s(), t_win = t_start, ext_win = 0, loss_win = 0;
  int64_t n_win = 0, ran = 0;
  bool stopped = false;
  if (st == VG_OK && it0 < o->iters) {   /* the iterations this call may run, as one loader epoch */
    int64_t its = o->stop_after > 0 && o->stop_after < o->iters - it0 ? o->stop_after : o->iters - it0;
    st = its > INT64_MAX / o->batch ? vg_fail(VG_ERR_ARG, "distill: %lld iterations of %lld images are too many",
                                              (long long)its, (long long)o->batch)
                                    : vg_loader_start_stream(R.loader, EPOCH_TRAIN, its * o->batch);
  }
  for (int64_t it = it0; st == VG_OK && it < o->iters; it++) {
    st = next_batch(&R);
    if (st != VG_OK) break;
    bool last = it + 1 == o->iters || (o->stop_after > 0 && ran + 1 >= o->stop_after) ||
                (o->interrupt && *o->interrupt);
    double loss = 0, t_ext = 0;
    st = train_step(&R, it, &loss, &t_ext);
    if (st != VG_OK) break;
    ran++;
    if (o->loss_log) o->loss_log[it] = loss;
    n_win++;
    ext_win += t_ext;
    loss_win += loss;
    int64_t done = it + 1;
    if (!o->quiet && (done % (o->log_every > 0 ? o->log_every : 100) == 0 || done == o->iters || it == it0)) {
      double now = now_s(), el = now - t_win, rate = (double)(n_win * o->batch) / el;
      char eta[32];
      fmt_duration((now - t_start) / (double)ran * (double)(o->iters - done), eta, sizeof eta);
      fprintf(stderr, "distill: iter %lld/%lld loss %.5f (mean of %lld) %.2f img/s (extractor %.1f ms/img, "
                      "PDN step %.1f ms/iter) ETA %s\n",
              (long long)done, (long long)o->iters, loss_win / (double)n_win, (long long)n_win, rate,
              1e3 * ext_win / (double)(n_win * o->batch), 1e3 * (el - ext_win) / (double)n_win, eta);
      t_win = now;
      n_win = 0;
      ext_win = loss_win = 0;
    }
    if (o->save_every > 0 && done % o->save_every == 0 && done != o->iters) st = save_ckpt(&R, done);
    if (st == VG_OK && !last && !(o->interrupt && *o->interrupt)) continue;
    if (st == VG_OK && done < o->iters) {   /* stop_after reached or interrupted */
      st = save_ckpt(&R, done);
      stopped = true;
      if (st == VG_OK && !o->quiet)
        fprintf(stderr, "distill: stopped at iteration %lld; checkpoint %s (resume to continue)\n", (long long)done,
                R.ckpt);
      break;
    }
  }
  if (st == VG_OK && !stopped) {
    int64_t done = it0 > o->iters ? it0 : o->iters;
    st = save_ckpt(&R, done);
    if (st == VG_OK) st = save_teacher(&R, done);
    if (st == VG_OK && !o->quiet) fprintf(stderr, "distill: wrote %s (checkpoint %s)\n", o->out, R.ckpt);
  }
  /* keep the first error's message across the cleanup */
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", vg_last_error());
  run_free(&R);
  return st == VG_OK ? VG_OK : vg_fail(st, "%s", msg);
}
