/* padim.c — PaDiM on the method contract (padim.h). */
#include "methods/padim/padim.h"
#include "autograd/autograd.h"
#include "base/threadpool.h"
#include "datasets/image/image.h"
#include "nn/backbones/backbones.h"
#include "nn/blur.h"
#include "nn/checkpoint.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_method base;
  /* config */
  char backbone_name[64], weights[1024];
  int size, n_features, batch, workers;
  bool float_resize;
  double sigma;
  uint64_t seed;
  /* state */
  vg_nn_module *net, *fe;
  vg_tensor *idx;          /* "idx" i64 (C) */
  vg_tensor *mean;         /* "gaussian.mean" (C, HW) */
  vg_tensor *inv_cov;      /* "gaussian.inv_covariance" (HW, C, C); the scatter sums while fitting */
  vg_tensor *nfit;         /* "vigil_n_train" i64 (1): images fitted, 0 = not fitted */
  int64_t C, h1, w1, HW, n_orig;
  /* fit accumulators (host) */
  double *acc_mean;        /* (HW, C) running mean */
  float *acc_m2;           /* (HW, C, C) scatter sums: inv_cov's data on the CPU, else a host copy */
  int64_t acc_n;
} padim;

static const char *const BACKBONES[] = {"resnet18", "wide_resnet50_2"};
static const int DEF_FEATURES[] = {100, 550};
static const int CH18[4] = {64, 128, 256, 512}, CH50[4] = {256, 512, 1024, 2048};

vg_nn_module *vg_padim_module(vg_method *m) { return ((padim *)m)->net; }

static int64_t conv_out(int64_t n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

/* torch's F.interpolate(mode="nearest") source index along one dim (aten UpSample.h:
 * nearest_idx: identity for equal sizes, dst >> 1 for x2, else floor(dst * (float)in / out)). */
static int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
  if (in == out) return dst;
  if (out == 2 * in) return dst >> 1;
  float scale = (float)in / (float)out;
  int64_t s = (int64_t)floorf((float)dst * scale);
  return s < in - 1 ? s : in - 1;
}

static vg_tensor *index_on(const int64_t *v, int64_t n, vg_device dev) {
  vg_tensor *t = vg_from_data(VG_I64, 1, (int64_t[]){n}, v);
  return t && dev != VG_CPU ? vg_to_device(t, dev) : t;
}

/* x (N, C, h, w) resized with `nearest` to (N, C, oh, ow) */
static vg_tensor *nearest(const vg_tensor *x, int64_t oh, int64_t ow) {
  if (!x) return NULL;
  int64_t h = x->shape[2], w = x->shape[3];
  if (h == oh && w == ow) return (vg_tensor *)x;
  int64_t *ih = malloc(sizeof(int64_t) * (size_t)(oh + ow)), *iw = ih + oh;
  if (!ih) {
    vg_fail(VG_ERR_NOMEM, "padim: out of memory");
    return NULL;
  }
  for (int64_t i = 0; i < oh; i++) ih[i] = nearest_src(i, h, oh);
  for (int64_t i = 0; i < ow; i++) iw[i] = nearest_src(i, w, ow);
  vg_tensor *th = index_on(ih, oh, x->device), *tw = index_on(iw, ow, x->device);
  free(ih);
  return vg_index_select(vg_index_select(x, 2, th), 3, tw);
}

static vg_status check_images(const padim *m, const vg_tensor *x) {
  if (!x) return vg_fail(VG_ERR_ARG, "padim: images is NULL");
  if (x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != m->size || x->shape[3] != m->size || x->shape[0] < 1) {
    char b[96];
    return vg_fail(VG_ERR_ARG, "padim: images must be N x 3 x %d x %d (got %s)", m->size, m->size,
                   vg_shape_str(x, b, sizeof b));
  }
  return VG_OK;
}

vg_tensor *vg_padim_embedding(vg_method *mm, const vg_tensor *images) {
  padim *m = (padim *)mm;
  if (check_images(m, images) != VG_OK) return NULL;
  const vg_tensor *x = vg_method_input(mm, images);
  vg_tensor *f[3], *emb = NULL;
  vg_no_grad_begin();
  if (x && vg_resnet_features(m->fe, x, f) == VG_OK) {
    vg_tensor *parts[3] = {f[0], nearest(f[1], m->h1, m->w1), nearest(f[2], m->h1, m->w1)};
    if (parts[1] && parts[2]) emb = vg_index_select(vg_concat(3, parts, 1), 1, m->idx);
  }
  vg_no_grad_end();
  return emb;
}

vg_tensor *vg_padim_distance(vg_method *mm, const vg_tensor *emb) {
  padim *m = (padim *)mm;
  if (!emb) return NULL;
  if (emb->ndim != 4 || emb->shape[1] != m->C || emb->shape[2] != m->h1 || emb->shape[3] != m->w1) {
    char b[96];
    vg_fail(VG_ERR_ARG, "padim: embedding must be N x %lld x %lld x %lld (got %s)", (long long)m->C,
            (long long)m->h1, (long long)m->w1, vg_shape_str(emb, b, sizeof b));
    return NULL;
  }
  int64_t n = emb->shape[0];
  /* delta (HW, N, C); d_p = rowwise (delta_p inv_cov_p) . delta_p: one batched matmul over positions */
  vg_tensor *delta = vg_sub(vg_reshape(vg_contiguous(emb), 3, (int64_t[]){n, m->C, m->HW}), m->mean);
  delta = vg_contiguous(vg_permute(delta, (int[]){2, 0, 1}));
  vg_tensor *q = vg_sum(vg_mul(vg_matmul(delta, m->inv_cov), delta), 1, (int[]){2}, false);   /* (HW, N) */
  q = vg_reshape(vg_contiguous(vg_transpose(q, 0, 1)), 4, (int64_t[]){n, 1, m->h1, m->w1});
  return vg_sqrt(vg_clamp(q, 0.0f, INFINITY));
}

/* N x 1 x H x W maps on the method's device, in the current scope */
static vg_tensor *pd_forward_maps(vg_method *mm, const vg_tensor *images) {
  padim *m = (padim *)mm;
  if (((const int64_t *)vg_data(m->nfit))[0] < 1) {
    vg_fail(VG_ERR_ARG, "padim: predict before fit (no Gaussian statistics: run fit_begin over the training images)");
    return NULL;
  }
  vg_no_grad_begin();
  vg_tensor *d = vg_padim_distance(mm, vg_padim_embedding(mm, images));
  vg_tensor *map = d ? vg_gaussian_blur2d(vg_interpolate_bilinear(d, m->size, m->size, false), m->sigma, 0) : NULL;
  vg_no_grad_end();
  return map;
}

static vg_status pd_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  vg_scope_begin();
  vg_status st = vg_method_maps_out(pd_forward_maps(mm, images), maps, scores);
  vg_scope_end();
  return st;
}

/* ---------------------------------------------------------------- fit */
/* drops the accumulators (the statistics stay as they are) */
static void fit_drop(padim *m) {
  free(m->acc_mean);
  if (m->acc_m2 && !(m->inv_cov && m->inv_cov->device == VG_CPU && m->acc_m2 == vg_f32(m->inv_cov))) free(m->acc_m2);
  m->acc_mean = NULL;
  m->acc_m2 = NULL;
  m->acc_n = 0;
}

void vg_padim_fit_reset(vg_method *mm) {
  padim *m = (padim *)mm;
  fit_drop(m);
  ((int64_t *)vg_data(m->nfit))[0] = 0;
}

typedef struct {
  padim *m;
  const float *emb;        /* (N, C, HW) host */
  int64_t n;
  double *bmean;           /* (HW, C) batch mean */
} mean_job;

static void batch_mean_fn(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  mean_job *j = ctx;
  int64_t C = j->m->C, HW = j->m->HW;
  for (int64_t p = b; p < e; p++)
    for (int64_t c = 0; c < C; c++) {
      double s = 0;
      for (int64_t r = 0; r < j->n; r++) s += j->emb[(r * C + c) * HW + p];
      j->bmean[p * C + c] = s / (double)j->n;
    }
}

/* Chan et al.'s pairwise update with a batch of n: M2 += Xc^T Xc + (n_old n / n_new) d d^T, d = batch
 * mean - running mean, as one GEMM per position: [Xc; sqrt(n_old n / n_new) d]^T [Xc; ...]. */
vg_status vg_padim_fit_batch(vg_method *mm, const vg_tensor *images) {
  padim *m = (padim *)mm;
  int64_t C = m->C, HW = m->HW;
  if (!m->acc_mean) {
    vg_padim_fit_reset(mm);
    m->acc_mean = calloc((size_t)(HW * C), sizeof(double));
    if (m->inv_cov->device == VG_CPU) {
      m->acc_m2 = vg_f32(m->inv_cov);
      memset(m->acc_m2, 0, sizeof(float) * (size_t)(HW * C * C));
    } else {
      m->acc_m2 = calloc((size_t)(HW * C * C), sizeof(float));
    }
    if (!m->acc_mean || !m->acc_m2) {
      vg_padim_fit_reset(mm);
      return vg_fail(VG_ERR_NOMEM, "padim: out of memory for the fit accumulators (%lld positions x %lld^2)",
                     (long long)HW, (long long)C);
    }
  }
  vg_status st = VG_OK;
  vg_scope_begin();
  vg_tensor *emb = vg_padim_embedding(mm, images);
  int64_t n = emb ? emb->shape[0] : 0;
  float *host = emb ? malloc(sizeof(float) * (size_t)(n * C * HW)) : NULL;
  double *bmean = emb ? malloc(sizeof(double) * (size_t)(HW * C)) : NULL;
  if (!emb) st = vg_last_status();
  else if (!host || !bmean) st = vg_fail(VG_ERR_NOMEM, "padim: out of memory");
  else st = vg_to_host(emb, VG_F32, host);
  if (st == VG_OK) {
    mean_job mj = {m, host, n, bmean};
    vg_parallel_for(HW, 16, batch_mean_fn, &mj);
    int64_t n_old = m->acc_n, n_new = n_old + n;
    double coef = sqrt((double)n_old * (double)n / (double)n_new);
    /* positions in chunks: the (P, n+1, C) stack and its (P, C, C) product stay ~16M floats */
    int64_t rows = n + 1, P = (int64_t)(16e6 / ((double)C * (double)(C > rows ? C : rows)));
    if (P < 1) P = 1;
    if (P > HW) P = HW;
    float *xa = malloc(sizeof(float) * (size_t)(P * rows * C));
    if (!xa) st = vg_fail(VG_ERR_NOMEM, "padim: out of memory");
    for (int64_t p0 = 0; p0 < HW && st == VG_OK; p0 += P) {
      int64_t np = HW - p0 < P ? HW - p0 : P;
      for (int64_t p = 0; p < np; p++) {
        const double *bm = bmean + (p0 + p) * C, *rm = m->acc_mean + (p0 + p) * C;
        for (int64_t r = 0; r < n; r++)
          for (int64_t c = 0; c < C; c++)
            xa[(p * rows + r) * C + c] = (float)(host[(r * C + c) * HW + p0 + p] - bm[c]);
        for (int64_t c = 0; c < C; c++) xa[(p * rows + n) * C + c] = (float)(coef * (bm[c] - rm[c]));
      }
      vg_scope_begin();
      vg_tensor *X = vg_from_data(VG_F32, 3, (int64_t[]){np, rows, C}, xa);
      vg_tensor *G = vg_matmul(vg_transpose(X, 1, 2), X);   /* (np, C, C) */
      if (!G) st = vg_last_status();
      else {
        const float *g = vg_f32(G);
        float *acc = m->acc_m2 + p0 * C * C;
        for (int64_t i = 0; i < np * C * C; i++) acc[i] += g[i];
      }
      vg_scope_end();
    }
    free(xa);
    if (st == VG_OK) {
      for (int64_t i = 0; i < HW * C; i++) m->acc_mean[i] += (bmean[i] - m->acc_mean[i]) * (double)n / (double)n_new;
      m->acc_n = n_new;
    }
  }
  free(host);
  free(bmean);
  vg_scope_end();
  return st;
}

/* In place: a (C x C, row-major, symmetric) -> its inverse via Cholesky (double); false when
 * a is not positive definite. w: 2 C^2 doubles. */
static double dot(const double *a, const double *b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) s0 += a[k] * b[k], s1 += a[k + 1] * b[k + 1], s2 += a[k + 2] * b[k + 2], s3 += a[k + 3] * b[k + 3];
  for (; k < n; k++) s0 += a[k] * b[k];
  return (s0 + s1) + (s2 + s3);
}

static bool spd_inverse(float *a, int64_t C, double *w) {
  double *L = w, *X = w + C * C;   /* L lower (row-major); X[j][k] = (L^-1)[k][j], k >= j */
  for (int64_t i = 0; i < C; i++) {
    for (int64_t j = 0; j <= i; j++) {
      double s = (double)a[i * C + j] - dot(L + i * C, L + j * C, j);
      if (i == j) {
        if (!(s > 0) || !isfinite(s)) return false;
        L[i * C + i] = sqrt(s);
      } else {
        L[i * C + j] = s / L[j * C + j];
      }
    }
  }
  /* column j of L^-1: X[j][j] = 1 / L[j][j]; X[j][i] = -(sum_{k=j}^{i-1} L[i][k] X[j][k]) / L[i][i] */
  for (int64_t j = 0; j < C; j++) {
    double *xj = X + j * C;
    xj[j] = 1.0 / L[j * C + j];
    for (int64_t i = j + 1; i < C; i++) xj[i] = -dot(L + i * C + j, xj + j, i - j) / L[i * C + i];
  }
  /* A^-1[i][j] = sum_{k >= max(i,j)} (L^-1)[k][i] (L^-1)[k][j] = X[i][k] . X[j][k] */
  for (int64_t i = 0; i < C; i++)
    for (int64_t j = i; j < C; j++) {
      float v = (float)dot(X + i * C + j, X + j * C + j, C - j);
      a[i * C + j] = v;
      a[j * C + i] = v;
    }
  return true;
}

typedef struct {
  padim *m;
  float denom;
  int64_t bad;             /* first position that failed, -1 = none */
} inv_job;

static void inverse_fn(void *ctx, int64_t b, int64_t e, int tid) {
  (void)tid;
  inv_job *j = ctx;
  int64_t C = j->m->C;
  double *w = malloc(sizeof(double) * (size_t)(2 * C * C));
  for (int64_t p = b; p < e; p++) {
    float *a = j->m->acc_m2 + p * C * C;
    /* anomalib in f32: cov = scatter / (N - 1) + 0.01 I, then + 1e-5 I */
    for (int64_t i = 0; i < C * C; i++) a[i] = a[i] / j->denom;
    for (int64_t i = 0; i < C; i++) a[i * C + i] = (a[i * C + i] + 0.01f) + 1e-5f;
    if (!w || !spd_inverse(a, C, w)) {
      __atomic_store_n(&j->bad, p, __ATOMIC_RELAXED);
      break;
    }
  }
  free(w);
}

vg_status vg_padim_fit_finish(vg_method *mm) {
  padim *m = (padim *)mm;
  int64_t C = m->C, HW = m->HW, n = m->acc_n;
  if (!m->acc_mean || n < 2) {
    fit_drop(m);
    return vg_fail(VG_ERR_ARG, "padim: the covariance needs at least 2 training images, got %lld", (long long)n);
  }
  inv_job j = {m, (float)(n - 1), -1};
  vg_parallel_for(HW, 8, inverse_fn, &j);
  vg_status st = VG_OK;
  if (j.bad >= 0)
    st = vg_fail(VG_ERR_NUMERIC, "padim: the covariance at position %lld is not positive definite (non-finite "
                 "features?) or memory ran out", (long long)j.bad);
  float *mean = st == VG_OK ? malloc(sizeof(float) * (size_t)(C * HW)) : NULL;
  if (st == VG_OK && !mean) st = vg_fail(VG_ERR_NOMEM, "padim: out of memory");
  if (st == VG_OK) {
    for (int64_t p = 0; p < HW; p++)
      for (int64_t c = 0; c < C; c++) mean[c * HW + p] = (float)m->acc_mean[p * C + c];
    vg_scope_begin();
    st = vg_copy_(m->mean, vg_from_data(VG_F32, 2, (int64_t[]){C, HW}, mean));
    if (st == VG_OK && m->acc_m2 != (float *)vg_data(m->inv_cov))
      st = vg_copy_(m->inv_cov, vg_from_data(VG_F32, 3, (int64_t[]){HW, C, C}, m->acc_m2));
    vg_scope_end();
  }
  free(mean);
  fit_drop(m);
  ((int64_t *)vg_data(m->nfit))[0] = st == VG_OK ? n : 0;
  return st;
}

static vg_status pd_fit_begin(vg_method *mm, const vg_dataset *train) {
  padim *m = (padim *)mm;
  if (!train || train->n < 2)
    return vg_fail(VG_ERR_ARG, "padim: the covariance needs at least 2 training images, got %lld",
                   (long long)(train ? train->n : 0));
  vg_loader_opts o = {.batch_size = m->batch, .workers = m->workers, .channels = 3, .height = m->size,
                      .width = m->size, .transform = mm->test_transform, .user = mm->transform_user};
  vg_loader *L = NULL;
  vg_padim_fit_reset(mm);
  vg_status st = vg_loader_create(train, &o, &L);
  if (st == VG_OK) st = vg_loader_start_epoch(L, 0);
  while (st == VG_OK) {
    vg_batch b;
    st = vg_loader_next(L, &b);
    if (st != VG_OK || b.n == 0) break;
    st = vg_padim_fit_batch(mm, b.images);
    vg_batch_free(&b);
  }
  vg_loader_destroy(L);
  if (st == VG_OK) st = vg_padim_fit_finish(mm);
  else vg_padim_fit_reset(mm);
  return st;
}

static vg_status pd_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  (void)mm, (void)images, (void)step;
  *loss = 0;   /* PaDiM has no gradient steps: fit_begin computes everything */
  return VG_OK;
}

/* ---------------------------------------------------------------- config, checkpoint */
static const char *const RESIZE[] = {"pil", "float", NULL};

static const vg_cfg_field PD_CONFIG[] = {
  {"backbone", VG_CFG_STR, VG_CFG_AT(padim, backbone_name), .sdef = "resnet18", .flags = VG_CFG_IDENT,
   .want = "a backbone name", .help = "resnet18 | wide_resnet50_2 (layer1..3, frozen)"},
  {"weights", VG_CFG_STR, VG_CFG_AT(padim, weights), .want = "a file path (< 1024 bytes)",
   .help = "torchvision backbone weights (.pth / .safetensors); \"\" = random backbone"},
  {"input_size", VG_CFG_INT, VG_CFG_AT(padim, size), .idef = 256, .ilo = 32, .ihi = 4096,
   .help = "side of the square input image"},
  {"n_features", VG_CFG_INT, VG_CFG_AT(padim, n_features), .idef = -1, .ilo = 1, .ihi = 1792, .flags = VG_CFG_AUTO,
   .help = "embedding channels kept (a random subset; auto: 100 with resnet18, 550 with wide_resnet50_2)"},
  {"sigma", VG_CFG_NUM, VG_CFG_AT(padim, sigma), .def = 4.0, .lo = 0, .hi = 64, .flags = VG_CFG_LO_OPEN,
   .help = "Gaussian blur of the map (kernel 2*int(4 sigma + 0.5) + 1, reflect borders)"},
  {"resize", VG_CFG_ENUM, VG_CFG_AT(padim, float_resize), .idef = 0, .choices = RESIZE,
   .help = "pil: Pillow's 8-bit resize (the official repos); float: anomalib 2.x's float antialiased bilinear"},
  {"batch_size", VG_CFG_INT, VG_CFG_AT(padim, batch), .idef = 32, .ilo = 1, .ihi = 4096,
   .help = "images per batch of the statistics pass"},
  {"workers", VG_CFG_INT, VG_CFG_AT(padim, workers), .idef = 2, .ilo = 1, .ihi = 256,
   .help = "loader threads of the statistics pass"},
  {"seed", VG_CFG_INT, VG_CFG_AT(padim, seed), .idef = 0, .ilo = 0, .ihi = INT64_MAX,
   .help = "seed of the channel subset and of the random backbone"},
  {NULL}};

static char *pd_config_json(const vg_method *mm) { return vg_cfg_json("padim", PD_CONFIG, mm); }

static vg_status pd_save(const vg_method *mm, const char *path) {
  return vg_method_checkpoint_save(mm, ((const padim *)mm)->net, NULL, path);
}

static vg_status pd_load(vg_method *mm, const char *path) {
  padim *m = (padim *)mm;
  fit_drop(m);
  vg_status st = vg_nn_checkpoint_load(path, m->net, NULL, NULL);
  if (st != VG_OK) return st;
  /* idx must be a valid channel index set (a hand-edited file must not read out of bounds) */
  int64_t *ix = malloc(sizeof(int64_t) * (size_t)m->C);
  if (!ix) return vg_fail(VG_ERR_NOMEM, "padim: out of memory");
  st = vg_to_host(m->idx, VG_I64, ix);
  for (int64_t i = 0; st == VG_OK && i < m->C; i++)
    if (ix[i] < 0 || ix[i] >= m->n_orig)
      st = vg_fail(VG_ERR_FORMAT, "%s: idx[%lld] = %lld is not a channel in [0, %lld)", path, (long long)i,
                   (long long)ix[i], (long long)m->n_orig);
  free(ix);
  if (st != VG_OK) ((int64_t *)vg_data(m->nfit))[0] = 0;
  return st;
}

static void pd_free(vg_method *mm) {
  padim *m = (padim *)mm;
  if (!m) return;
  fit_drop(m);
  vg_nn_free(m->net);
  free(m);
}

/* the fit counter is host bookkeeping: it stays on the CPU; f32 only (squared Mahalanobis
 * distances and the inverse covariances do not fit f16's range and precision) */
static vg_status pd_to(vg_method *mm, vg_device dev, vg_dtype dt) {
  padim *m = (padim *)mm;
  if (dt != VG_F32) return vg_fail(VG_ERR_ARG, "padim: computes in f32 only (the inverse covariances need it)");
  fit_drop(m);
  return vg_method_move(m->net, NULL, 1, &m->nfit, dev, dt);
}

static vg_nn_module *pd_module(vg_method *mm) { return ((padim *)mm)->net; }

static const vg_method_ops pd_ops = {
  .name = "padim", .fit_begin = pd_fit_begin, .train_step = pd_train_step, .fit_end = NULL,
  .predict = pd_predict, .finalize = NULL, .save = pd_save, .load = pd_load,
  .config_json = pd_config_json, .module = pd_module, .to = pd_to, .forward_maps = pd_forward_maps, .free = pd_free,
};

vg_status vg_padim_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  padim *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "padim: out of memory");
  vg_cfg_defaults(PD_CONFIG, m);
  vg_status st = vg_cfg_parse("padim", PD_CONFIG, cfg, m);
  if (st != VG_OK) { free(m); return st; }
  int bbi = -1;
  for (int i = 0; i < 2; i++) if (!strcmp(m->backbone_name, BACKBONES[i])) bbi = i;
  if (bbi < 0) {
    st = vg_fail(VG_ERR_ARG, "padim: unknown backbone '%s' (resnet18, wide_resnet50_2)", m->backbone_name);
    free(m);
    return st;
  }
  const int *ch = bbi == 0 ? CH18 : CH50;
  m->n_orig = ch[0] + ch[1] + ch[2];
  if (m->n_features < 0) m->n_features = DEF_FEATURES[bbi];
  if (m->n_features > m->n_orig) {
    st = vg_fail(VG_ERR_ARG, "padim: bad value %d for config key 'n_features': want 1..%lld with backbone %s",
                 m->n_features, (long long)m->n_orig, m->backbone_name);
    free(m);
    return st;
  }
  if (vg_gaussian_ksize(m->sigma) / 2 >= m->size) {   /* reflect padding needs pad < side */
    st = vg_fail(VG_ERR_ARG, "padim: sigma %g blurs with a %d-tap kernel, wider than input_size %d allows: want "
                 "2*int(4 sigma + 0.5) + 1 <= 2 input_size - 1", m->sigma, vg_gaussian_ksize(m->sigma), m->size);
    free(m);
    return st;
  }
  /* layer1's grid: conv1 (7, stride 2, pad 3), max-pool (3, stride 2, pad 1) */
  m->h1 = m->w1 = conv_out(conv_out(m->size, 7, 2, 3), 3, 2, 1);
  m->HW = m->h1 * m->w1;
  m->C = m->n_features;
  {  /* memory before allocating: the (HW, C, C) inverse covariances, the backbone, activations */
    char keys[160];
    snprintf(keys, sizeof keys, "input_size %d, n_features %d (backbone %s)", m->size, m->n_features, m->backbone_name);
    double S = m->size, cov = (double)m->HW * (double)m->C * (double)m->C;
    double act = vg_method_resnet_act(S, ch, 2) + 2.0 * (double)m->n_orig * (double)m->HW + 16e6;
    st = vg_method_check_memory("padim", keys, 0, cov + (bbi == 0 ? 2.8e6 : 8.9e6), act * 2);
    if (st != VG_OK) { free(m); return st; }
  }
  m->base.ops = &pd_ops;
  m->net = vg_nn_module_new("PadimModel", NULL, NULL, NULL);
  m->fe = vg_resnet_new(m->backbone_name, VG_RESNET_LAYER1 | VG_RESNET_LAYER2 | VG_RESNET_LAYER3,
                        m->seed * 7919 + 1);
  vg_nn_module *g = vg_nn_module_new("MultiVariateGaussian", NULL, NULL, NULL);
  if (!m->net || !m->fe || !g) {
    vg_nn_free(m->fe);
    vg_nn_free(g);
    vg_nn_free(m->net);
    free(m);
    return vg_last_status() != VG_OK ? vg_last_status() : vg_fail(VG_ERR_NOMEM, "padim: out of memory");
  }
  vg_nn_add_child(m->net, "feature_extractor", m->fe);
  vg_nn_train(m->fe, false);
  vg_nn_requires_grad(m->fe, false);
  if (m->weights[0]) st = vg_nn_load_state_pth(m->fe, m->weights, false);
  m->base.random_backbone = !m->weights[0];
  /* idx: the first n_features of a random permutation of the n_orig channels (unsorted) */
  m->idx = vg_tensor_new(VG_I64, 1, (int64_t[]){m->C});
  m->mean = vg_tensor_new(VG_F32, 2, (int64_t[]){m->C, m->HW});
  m->inv_cov = vg_tensor_new(VG_F32, 3, (int64_t[]){m->HW, m->C, m->C});
  m->nfit = vg_tensor_new(VG_I64, 1, (int64_t[]){1});
  vg_scope_begin();
  vg_tensor *perm = vg_randperm(m->n_orig, m->seed);
  bool have_perm = perm != NULL;
  if (perm && m->idx) memcpy(vg_data(m->idx), vg_data(perm), sizeof(int64_t) * (size_t)m->C);
  vg_scope_end();
  if (m->idx) vg_nn_add_buffer(m->net, "idx", m->idx);
  if (m->nfit) vg_nn_add_buffer(m->net, "vigil_n_train", m->nfit);
  vg_nn_add_child(m->net, "gaussian", g);
  if (m->mean) vg_nn_add_buffer(g, "mean", m->mean);
  if (m->inv_cov) vg_nn_add_buffer(g, "inv_covariance", m->inv_cov);
  if (st == VG_OK && (!have_perm || !m->idx || !m->mean || !m->inv_cov || !m->nfit))
    st = vg_fail(VG_ERR_NOMEM, "padim: out of memory for the statistics (%lld x %lld x %lld)", (long long)m->HW,
                 (long long)m->C, (long long)m->C);
  if (st != VG_OK) {
    pd_free(&m->base);
    return st;
  }
  m->base.input_h = m->base.input_w = m->size;
  m->base.train_channels = 3;
  m->base.train_batch = m->batch;
  m->base.default_steps = 0;
  m->base.train_transform = m->base.test_transform =
      m->float_resize ? vg_image_float_imagenet_transform : vg_imagenet_transform;
  *out = &m->base;
  return VG_OK;
}

/* `vigil bench` on a fresh model: identity statistics so the timed path is the fitted one */
static void pd_bench_prepare(vg_method *mm) {
  padim *m = (padim *)mm;
  if (m->inv_cov->device != VG_CPU) return;
  float *a = vg_f32(m->inv_cov);
  memset(a, 0, sizeof(float) * (size_t)(m->HW * m->C * m->C));
  for (int64_t p = 0; p < m->HW; p++)
    for (int64_t c = 0; c < m->C; c++) a[(p * m->C + c) * m->C + c] = 1.0f;
  ((int64_t *)vg_data(m->nfit))[0] = 2;
}

const vg_method_def vg_method_padim = {
  .name = "padim", .summary = "PaDiM (Defard et al. 2020) as anomalib's PadimModel: per-position Gaussians",
  .create = vg_padim_new, .config = PD_CONFIG, .bench_prepare = pd_bench_prepare,
};
