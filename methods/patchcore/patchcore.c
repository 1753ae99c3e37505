/* patchcore.c — PatchCore on the method contract (patchcore.h). */
#include "methods/patchcore/patchcore.h"
#include "autograd/autograd.h"
#include "datasets/image/image.h"
#include "nn/backbones/backbones.h"
#include "nn/blur.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_method base;
  /* config */
  char backbone[32], weights[1024];
  unsigned layers_mask;
  int size, num_neighbors, batch, workers;
  bool float_resize;
  double ratio;
  uint64_t seed;
  /* state */
  vg_nn_module *net, *fe;          /* PatchcoreModel: feature_extractor + buffer memory_bank */
  int64_t dim;                     /* D */
  float *bank_norm;                /* |b|^2 per bank row */
  float *last_patch;               /* the last predict's patch scores (tests) */
  int64_t last_n;
} patchcore;

#define PC_SIGMA 4.0
#define PC_EPS 0.9                 /* SparseRandomProjection(eps=0.9) */

vg_nn_module *vg_patchcore_module(vg_method *m) { return ((patchcore *)m)->net; }
int64_t vg_patchcore_dim(const vg_method *m) { return ((const patchcore *)m)->dim; }
static vg_tensor *bank_of(const patchcore *m) { return vg_nn_buffer(m->net, "memory_bank"); }

const float *vg_patchcore_last_patch_scores(const vg_method *mm, int64_t *n) {
  const patchcore *m = (const patchcore *)mm;
  if (n) *n = m->last_n;
  return m->last_patch;
}

/* |b|^2 of every bank row */
static void bank_norms(patchcore *m) {
  const vg_tensor *t = bank_of(m);
  free(m->bank_norm);
  int64_t n = t->shape[0], d = t->shape[1];
  m->bank_norm = n ? malloc(sizeof(float) * (size_t)n) : NULL;
  const float *b = vg_f32(t);
  for (int64_t i = 0; m->bank_norm && i < n; i++) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)b[i * d + j] * b[i * d + j];
    m->bank_norm[i] = (float)s;
  }
}

/* replaces the memory_bank buffer (owned by net) with t, and the norms */
static void set_bank_tensor(patchcore *m, vg_tensor *t) {
  for (int i = 0; i < m->net->nbuffers; i++)
    if (!strcmp(m->net->buffers[i].name, "memory_bank") && m->net->buffers[i].t != t) {
      vg_tensor_free(m->net->buffers[i].t);
      m->net->buffers[i].t = t;
    }
  bank_norms(m);
}

static vg_status new_bank(patchcore *m, int64_t rows, vg_tensor **out) {
  *out = vg_tensor_new(VG_F32, 2, (int64_t[]){rows, m->dim});
  if (!*out) return vg_fail(VG_ERR_NOMEM, "patchcore: out of memory for a memory bank of %lld x %lld", (long long)rows,
                            (long long)m->dim);
  return VG_OK;
}

vg_tensor *vg_patchcore_embed(vg_method *mm, const vg_tensor *x, int64_t *gh, int64_t *gw) {
  patchcore *m = (patchcore *)mm;
  if (x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != m->size || x->shape[3] != m->size) {
    char b[96];
    vg_fail(VG_ERR_ARG, "patchcore: images must be N x 3 x %d x %d (got %s)", m->size, m->size,
            vg_shape_str(x, b, sizeof b));
    return NULL;
  }
  x = vg_method_input(mm, x);
  vg_tensor *f[5], *rows = NULL;
  vg_no_grad_begin();
  vg_status st = x ? vg_resnet_features(m->fe, x, f) : VG_ERR_NOMEM;
  int nf = vg_resnet_num_features(m->fe);
  for (int l = 0; st == VG_OK && l < nf; l++) {
    /* AvgPool2d(3, 1, 1), count_include_pad; later taps bilinear to the first tap's grid */
    f[l] = vg_avg_pool2d(f[l], (vg_pool2d_opts){.kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
                                                  .count_include_pad = true});
    if (f[l] && l > 0) f[l] = vg_interpolate_bilinear(f[l], f[0]->shape[2], f[0]->shape[3], false);
    if (!f[l]) st = VG_ERR_ARG;
  }
  if (st == VG_OK) {
    int64_t n = f[0]->shape[0], h = f[0]->shape[2], w = f[0]->shape[3];
    vg_tensor *cat = nf > 1 ? vg_concat(nf, f, 1) : f[0];
    vg_tensor *r = cat ? vg_contiguous(vg_permute(cat, (int[]){0, 2, 3, 1})) : NULL;
    rows = r ? vg_view(r, 2, (int64_t[]){n * h * w, m->dim}) : NULL;
    if (gh) *gh = h;
    if (gw) *gw = w;
  }
  vg_no_grad_end();
  if (!rows && vg_last_status() == VG_OK) vg_fail(VG_ERR_ARG, "patchcore: embedding failed");
  return rows;
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

vg_status vg_patchcore_fit_rows(vg_method *mm, const float *rows, int64_t n, const float *proj, int64_t start,
                                int64_t *idx_out) {
  patchcore *m = (patchcore *)mm;
  int64_t mc = (int64_t)((double)n * m->ratio);   /* int(n * sampling_ratio) */
  if (mc <= 0)
    return vg_fail(VG_ERR_ARG, "patchcore: coreset_sampling_ratio %g of %lld patch rows keeps none: more training "
                   "images or a larger ratio", m->ratio, (long long)n);
  int64_t k = vg_patchcore_jl_dim(n, PC_EPS);
  if (k < 1) k = 1;
  float *own = NULL;
  if (!proj) {
    own = vg_patchcore_projection(k, m->dim, m->seed * 0x9E3779B97F4A7C15ull + 17);
    if (!own) return vg_fail(VG_ERR_NOMEM, "patchcore: out of memory for the %lld x %lld projection", (long long)k,
                             (long long)m->dim);
    proj = own;
  }
  if (start < 0) start = (int64_t)(mix64(m->seed * 0xD1B54A32D192ED03ull + 0x8BB84B93962EACC9ull) % (uint64_t)n);
  int64_t *idx = malloc(sizeof *idx * (size_t)mc);
  vg_tensor *bank = NULL;
  vg_status st = idx ? new_bank(m, mc, &bank) : vg_fail(VG_ERR_NOMEM, "patchcore: out of memory");
  if (st == VG_OK) st = vg_patchcore_coreset(rows, n, m->dim, proj, k, start, mc, idx);
  if (st == VG_OK) {
    float *b = vg_f32(bank);
    for (int64_t i = 0; i < mc; i++) memcpy(b + i * m->dim, rows + idx[i] * m->dim, sizeof(float) * (size_t)m->dim);
    set_bank_tensor(m, bank);
    bank = NULL;
    if (idx_out) memcpy(idx_out, idx, sizeof *idx * (size_t)mc);
  }
  vg_tensor_free(bank);
  free(idx);
  free(own);
  return st;
}

static vg_status pc_fit_begin(vg_method *mm, const vg_dataset *train) {
  patchcore *m = (patchcore *)mm;
  if (!train || train->n == 0) return vg_fail(VG_ERR_ARG, "patchcore: empty training set");
  vg_loader_opts o = {.batch_size = m->batch, .workers = m->workers, .channels = 3, .height = m->size,
                      .width = m->size, .transform = mm->test_transform, .user = mm->transform_user};
  vg_loader *L = NULL;
  vg_status st = vg_loader_create(train, &o, &L);
  float *rows = NULL;
  int64_t n = 0, cap = 0;
  const char *what;
  double lim = vg_memory_limit(&what);
  if (st == VG_OK) st = vg_loader_start_epoch(L, 0);
  while (st == VG_OK) {
    vg_batch b;
    st = vg_loader_next(L, &b);
    if (st != VG_OK || b.n == 0) break;
    vg_scope_begin();
    vg_tensor *e = vg_patchcore_embed(mm, b.images, NULL, NULL);
    if (!e) st = vg_last_status() != VG_OK ? vg_last_status() : VG_ERR_ARG;
    int64_t r = e ? e->shape[0] : 0;
    if (st == VG_OK && n + r > cap) {
      /* every training patch row is held, then projected (~0.2 D floats a row) and the bank
       * copied out (0.1): about 1.5 x the rows' bytes at the peak */
      double per = (double)m->dim * 4.0 * 1.5;
      int64_t nc = cap ? cap * 2 : r * 8;
      if (nc < n + r) nc = n + r;
      if (lim > 0 && (double)(n + r) * per > lim)
        st = vg_fail(VG_ERR_NOMEM, "patchcore: %lld training patch rows of %lld floats need about %.1f GiB, more than "
                     "the %.1f GiB of %s: fewer training images or a smaller input_size", (long long)(n + r),
                     (long long)m->dim, (double)(n + r) * per / 1073741824.0, lim / 1073741824.0, what);
      if (lim > 0 && (double)nc * per > lim) nc = n + r;
      float *nr = st == VG_OK ? realloc(rows, sizeof(float) * (size_t)nc * (size_t)m->dim) : NULL;
      if (st == VG_OK && !nr) st = vg_fail(VG_ERR_NOMEM, "patchcore: out of memory for %lld patch rows", (long long)nc);
      if (nr) { rows = nr; cap = nc; }
    }
    if (st == VG_OK) {
      vg_status cs = vg_to_host(e, VG_F32, rows + n * m->dim);
      if (cs != VG_OK) st = cs;
      n += r;
    }
    vg_scope_end();
    vg_batch_free(&b);
  }
  vg_loader_destroy(L);
  if (st == VG_OK) st = vg_patchcore_fit_rows(mm, rows, n, NULL, -1, NULL);
  free(rows);
  return st;
}

static vg_status pc_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  (void)mm; (void)images; (void)step;
  *loss = 0;   /* no gradient steps: fit_begin builds the memory bank */
  return VG_OK;
}

/* the reweighted image score of one image (anomalib's compute_anomaly_score) */
static float image_score(const patchcore *m, const float *emb, const float *dist, const int64_t *loc, int64_t P) {
  int64_t ps = 0;
  for (int64_t p = 1; p < P; p++)
    if (dist[p] > dist[ps]) ps = p;
  float s = dist[ps];
  if (m->num_neighbors == 1) return s;
  const vg_tensor *bt = bank_of(m);
  const float *bank = vg_f32(bt);
  int64_t M = bt->shape[0], D = m->dim, K = m->num_neighbors < M ? m->num_neighbors : M;
  const float *ms = bank + loc[ps] * D, *x = emb + ps * D;
  /* distances of m* to every bank row (the expansion, f32), then the K smallest ascending */
  float *dm = malloc(sizeof(float) * (size_t)M);
  int64_t *sel = malloc(sizeof(int64_t) * (size_t)K);
  if (!dm || !sel) { free(dm); free(sel); return NAN; }
  for (int64_t j = 0; j < M; j++) {
    double dot = 0;
    for (int64_t c = 0; c < D; c++) dot += (double)ms[c] * bank[j * D + c];
    float v = (-2.0f * (float)dot + m->bank_norm[loc[ps]]) + m->bank_norm[j];
    dm[j] = sqrtf(v > 0 ? v : 0);
  }
  /* the K smallest, ascending, equal values in index order (insertion into a sorted list) */
  int64_t nsel = 0;
  for (int64_t j = 0; j < M; j++) {
    if (nsel == K && !(dm[j] < dm[sel[K - 1]])) continue;
    int64_t p = nsel < K ? nsel++ : K - 1;
    while (p > 0 && dm[j] < dm[sel[p - 1]]) { sel[p] = sel[p - 1]; p--; }
    sel[p] = j;
  }
  double xn = 0;
  for (int64_t c = 0; c < D; c++) xn += (double)x[c] * x[c];
  double mx = -INFINITY, e0 = 0, sum = 0;
  float *dj = malloc(sizeof(float) * (size_t)K);
  if (!dj) { free(dm); free(sel); return NAN; }
  for (int64_t t = 0; t < K; t++) {
    const float *b = bank + sel[t] * D;
    double dot = 0;
    for (int64_t c = 0; c < D; c++) dot += (double)x[c] * b[c];
    float v = (-2.0f * (float)dot + (float)xn) + m->bank_norm[sel[t]];
    dj[t] = sqrtf(v > 0 ? v : 0);
    if (dj[t] > mx) mx = dj[t];
  }
  for (int64_t t = 0; t < K; t++) {
    double e = exp((double)dj[t] - mx);
    if (t == 0) e0 = e;
    sum += e;
  }
  free(dm);
  free(sel);
  free(dj);
  float w = 1.0f - (float)(e0 / sum);
  return w * s;
}

static vg_status pc_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  patchcore *m = (patchcore *)mm;
  const vg_tensor *bt = bank_of(m);
  if (!bt || bt->shape[0] == 0 || !m->bank_norm)
    return vg_fail(VG_ERR_ARG, "patchcore: predict before fit (empty memory bank)");
  vg_scope_begin();
  int64_t h = 0, w = 0;
  vg_tensor *e = vg_patchcore_embed(mm, images, &h, &w);
  vg_status st = e ? VG_OK : vg_last_status() != VG_OK ? vg_last_status() : VG_ERR_ARG;
  int64_t N = images->shape[0], P = h * w, S = m->size;
  float *dist = NULL;
  int64_t *loc = NULL;
  if (st == VG_OK) {
    dist = malloc(sizeof(float) * (size_t)(N * P));
    loc = malloc(sizeof(int64_t) * (size_t)(N * P));
    if (!dist || !loc) st = vg_fail(VG_ERR_NOMEM, "patchcore: out of memory");
  }
  const float *emb = st == VG_OK ? vg_f32(e) : NULL;
  if (st == VG_OK) st = vg_patchcore_nearest(emb, N * P, vg_f32(bt), bt->shape[0], m->dim, m->bank_norm, dist, loc);
  for (int64_t i = 0; st == VG_OK && i < N; i++) {
    scores[i] = image_score(m, emb + i * P * m->dim, dist + i * P, loc + i * P, P);
    if (isnan(scores[i]) && !isnan(dist[i * P])) st = vg_fail(VG_ERR_NOMEM, "patchcore: out of memory");
  }
  if (st == VG_OK) {
    /* nearest resize (F.interpolate's default): src = min(floor(dst * (in / out)), in - 1), f32 scale */
    vg_tensor *up = vg_empty(VG_F32, 4, (int64_t[]){N, 1, S, S});
    float *u = up ? vg_f32(up) : NULL;
    float sh = (float)h / (float)S, sw = (float)w / (float)S;
    for (int64_t i = 0; u && i < N; i++)
      for (int64_t y = 0; y < S; y++) {
        int64_t sy = (int64_t)floorf((float)y * sh);
        if (sy > h - 1) sy = h - 1;
        for (int64_t xx = 0; xx < S; xx++) {
          int64_t sx = (int64_t)floorf((float)xx * sw);
          if (sx > w - 1) sx = w - 1;
          u[(i * S + y) * S + xx] = dist[i * P + sy * w + sx];
        }
      }
    vg_tensor *bl = up ? vg_gaussian_blur2d(up, PC_SIGMA, 0) : NULL;
    if (!bl) st = vg_last_status() != VG_OK ? vg_last_status() : vg_fail(VG_ERR_NOMEM, "patchcore: out of memory");
    else st = vg_to_host(bl, VG_F32, maps);
  }
  if (st == VG_OK) {
    float *lp = realloc(m->last_patch, sizeof(float) * (size_t)(N * P));
    if (lp) {
      memcpy(lp, dist, sizeof(float) * (size_t)(N * P));
      m->last_patch = lp;
      m->last_n = N * P;
    }
  }
  free(dist);
  free(loc);
  vg_scope_end();
  return st;
}

static const char *const RESIZE[] = {"pil", "float", NULL};
static const char *const TAPS[] = {"layer1", "layer2", "layer3", "layer4", NULL};

static const vg_cfg_field PC_CONFIG[] = {
  {"backbone", VG_CFG_STR, VG_CFG_AT(patchcore, backbone), .sdef = "wide_resnet50_2", .flags = VG_CFG_IDENT,
   .want = "a backbone name (< 32 bytes)", .help = "resnet18 | resnet50 | wide_resnet50_2 | wide_resnet101_2 (frozen)"},
  {"weights", VG_CFG_STR, VG_CFG_AT(patchcore, weights), .want = "a file path (< 1024 bytes)",
   .help = "torchvision backbone weights (.pth / .safetensors); \"\" = random backbone"},
  {"layers", VG_CFG_SET, VG_CFG_AT(patchcore, layers_mask), .idef = VG_RESNET_LAYER2 | VG_RESNET_LAYER3, .ilo = 1,
   .ihi = 4, .choices = TAPS, .shift = 1, .want = "a list of 1 to 4 of \"layer1\" .. \"layer4\"",
   .help = "backbone taps; the later ones are resized to the first one's grid and concatenated"},
  {"input_size", VG_CFG_INT, VG_CFG_AT(patchcore, size), .idef = 256, .ilo = 32, .ihi = 4096,
   .help = "side of the square input image"},
  {"coreset_sampling_ratio", VG_CFG_NUM, VG_CFG_AT(patchcore, ratio), .def = 0.1, .lo = 0, .hi = 1,
   .flags = VG_CFG_LO_OPEN, .help = "memory bank = int(training patches x ratio) rows, greedy k-center coreset"},
  {"num_neighbors", VG_CFG_INT, VG_CFG_AT(patchcore, num_neighbors), .idef = 9, .ilo = 1, .ihi = 4096,
   .help = "bank neighbours of the image score's reweighting (1 = the plain maximum)"},
  {"resize", VG_CFG_ENUM, VG_CFG_AT(patchcore, float_resize), .idef = 0, .choices = RESIZE,
   .help = "pil: Pillow's 8-bit resize (the official repo); float: anomalib 2.x's float antialiased bilinear"},
  {"batch_size", VG_CFG_INT, VG_CFG_AT(patchcore, batch), .idef = 8, .ilo = 1, .ihi = 4096,
   .help = "images per batch of the memory-bank pass"},
  {"workers", VG_CFG_INT, VG_CFG_AT(patchcore, workers), .idef = 2, .ilo = 1, .ihi = 256,
   .help = "loader threads of the memory-bank pass"},
  {"seed", VG_CFG_INT, VG_CFG_AT(patchcore, seed), .idef = 0, .ilo = 0, .ihi = INT64_MAX,
   .help = "seed of the random backbone, the random projection and the coreset's start row"},
  {NULL}};

static char *pc_config_json(const vg_method *mm) { return vg_cfg_json("patchcore", PC_CONFIG, mm); }

static vg_status pc_save(const vg_method *mm, const char *path) {
  const patchcore *m = (const patchcore *)mm;
  return vg_method_checkpoint_save(mm, m->net, NULL, path);
}

static vg_status pc_load(vg_method *mm, const char *path) {
  patchcore *m = (patchcore *)mm;
  vg_st_file *f;
  vg_status st = vg_st_open(path, &f);
  if (st != VG_OK) return st;
  int i = vg_st_find(f, "model.memory_bank");
  vg_st_info info;
  if (i < 0) st = vg_fail(VG_ERR_FORMAT, "patchcore: %s has no model.memory_bank", path);
  else if ((st = vg_st_info_at(f, i, &info)) == VG_OK && (info.ndim != 2 || info.shape[1] != m->dim))
    st = vg_fail(VG_ERR_FORMAT, "patchcore: %s: model.memory_bank is not (M, %lld) (embedding width of the config)",
                 path, (long long)m->dim);
  vg_st_close(f);
  vg_tensor *bank = NULL, *old = bank_of(m);
  int64_t old_rows = old->shape[0];
  if (st == VG_OK) st = new_bank(m, info.shape[0], &bank);
  if (st != VG_OK) return st;
  set_bank_tensor(m, bank);
  st = vg_nn_checkpoint_load(path, m->net, NULL, NULL);
  if (st != VG_OK) {   /* the bank keeps its size, zeroed: as unfitted as before when it was empty */
    vg_tensor *z = NULL;
    if (new_bank(m, old_rows, &z) == VG_OK) {
      memset(vg_f32(z), 0, sizeof(float) * (size_t)(old_rows * m->dim));
      set_bank_tensor(m, z);
    }
    return st;
  }
  bank_norms(m);   /* of the loaded rows */
  return VG_OK;
}

static void pc_free(vg_method *mm) {
  patchcore *m = (patchcore *)mm;
  if (!m) return;
  vg_nn_free(m->net);
  free(m->bank_norm);
  free(m->last_patch);
  free(m);
}

static const vg_method_ops pc_ops = {
  .name = "patchcore", .fit_begin = pc_fit_begin, .train_step = pc_train_step, .fit_end = NULL,
  .predict = pc_predict, .finalize = NULL, .save = pc_save, .load = pc_load, .config_json = pc_config_json,
  .module = vg_patchcore_module, .free = pc_free,
};

static const char *const BACKBONES[] = {"resnet18", "resnet50", "wide_resnet50_2", "wide_resnet101_2", NULL};

vg_status vg_patchcore_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  patchcore *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "patchcore: out of memory");
  vg_cfg_defaults(PC_CONFIG, m);
  vg_status st = vg_cfg_parse("patchcore", PC_CONFIG, cfg, m);
  if (st != VG_OK) { free(m); return st; }
  int bbi = -1;
  for (int i = 0; BACKBONES[i]; i++) if (!strcmp(m->backbone, BACKBONES[i])) bbi = i;
  if (bbi < 0) {
    st = vg_fail(VG_ERR_ARG, "patchcore: unknown backbone '%s' (resnet18, resnet50, wide_resnet50_2, wide_resnet101_2)",
                 m->backbone);
    free(m);
    return st;
  }
  {  /* memory before any allocation: the frozen ResNet up to its last tap, one image's activations */
    static const int ch18[4] = {64, 128, 256, 512}, ch50[4] = {256, 512, 1024, 2048};
    const int *ch = bbi == 0 ? ch18 : ch50;
    int last = 0;
    for (int l = 0; l < 4; l++) if (m->layers_mask & (VG_RESNET_LAYER1 << l)) last = l;
    static const double frozen[4][4] = {{0.2e6, 0.7e6, 2.8e6, 11.2e6}, {0.2e6, 1.4e6, 8.5e6, 23.5e6},
                                        {0.3e6, 2.5e6, 17.0e6, 66.8e6}, {0.3e6, 2.5e6, 50e6, 124e6}};
    char keys[96];
    snprintf(keys, sizeof keys, "input_size %d (backbone %s)", m->size, m->backbone);
    st = vg_method_check_memory("patchcore", keys, 0, frozen[bbi][last], vg_method_resnet_act(m->size, ch, last) * 1.5);
    if (st != VG_OK) { free(m); return st; }
  }
  m->net = vg_nn_module_new("PatchcoreModel", NULL, NULL, NULL);
  m->fe = vg_resnet_new(m->backbone, m->layers_mask, m->seed * 7919 + 1);
  if (!m->net || !m->fe) {
    vg_nn_free(m->fe);
    pc_free(&m->base);
    return vg_last_status() != VG_OK ? vg_last_status() : VG_ERR_NOMEM;
  }
  vg_nn_add_child(m->net, "feature_extractor", m->fe);
  for (int i = 0; i < vg_resnet_num_features(m->fe); i++) m->dim += vg_resnet_feature_channels(m->fe, i);
  vg_nn_add_buffer(m->net, "memory_bank", vg_tensor_new(VG_F32, 2, (int64_t[]){0, m->dim}));
  if (m->weights[0] && (st = vg_nn_load_state_file(m->fe, m->weights, false)) != VG_OK) {
    pc_free(&m->base);
    return st;
  }
  m->base.random_backbone = !m->weights[0];
  vg_nn_train(m->fe, false);
  vg_nn_requires_grad(m->fe, false);
  m->base.ops = &pc_ops;
  m->base.input_h = m->base.input_w = m->size;
  m->base.train_channels = 3;
  m->base.train_batch = m->batch;
  m->base.default_steps = 0;
  m->base.train_transform = m->base.test_transform =
    m->float_resize ? vg_image_float_imagenet_transform : vg_imagenet_transform;
  *out = &m->base;
  return VG_OK;
}

/* `vigil bench` on an untrained model: a memory bank of the size 200 training images give
 * (int(0.1 x 200 x h x w) rows of Philox normals), so the timed search is the trained one */
static void pc_bench_prepare(vg_method *mm) {
  patchcore *m = (patchcore *)mm;
  int first = 0;
  while (first < 4 && !(m->layers_mask & (VG_RESNET_LAYER1 << first))) first++;
  int64_t side = (m->size + (4 << first) - 1) / (4 << first);
  int64_t rows = (int64_t)(m->ratio * 200.0 * (double)(side * side));
  if (rows < 1) rows = 1;
  vg_tensor *b = NULL;
  if (new_bank(m, rows, &b) != VG_OK) return;
  if (vg_normal_(b, 0.0f, 1.0f, m->seed + 12345) != VG_OK) { vg_tensor_free(b); return; }
  set_bank_tensor(m, b);
}

const vg_method_def vg_method_patchcore = {
  .name = "patchcore", .summary = "PatchCore (Roth et al. 2022) as anomalib's PatchcoreModel (coreset memory bank)",
  .create = vg_patchcore_new, .config = PC_CONFIG, .bench_prepare = pc_bench_prepare,
};
