/* loader.c — threaded batch loader: workers take sample positions of the epoch's order
 * one at a time, decode + transform into a ring of `prefetch` batch slots; the consumer
 * takes batches in order. A worker never starts a position whose batch is more than
 * prefetch-1 batches ahead of the consumer, so memory is bounded. */
#include "datasets/datasets.h"
#include <pthread.h>
#include <string.h>

typedef struct {
  float *img, *mask;
  int64_t *idx;            /* batch_size: the dataset index of each row */
  int64_t done;            /* samples finished for this slot's current batch */
  vg_status err;           /* first error (lowest row) in the batch */
  int err_row;
  char msg[512];
} slot;

struct vg_loader {
  const vg_dataset *ds;
  vg_loader_opts o;
  int64_t sample_floats, mask_floats;
  int64_t epoch_n;         /* samples used this epoch */
  int epoch;               /* the current epoch's number (for the sampler) */
  int64_t *perm;           /* ds->n */
  unsigned char *warned;   /* ds->n: a truncated-image warning was given for the sample */
  slot *slots;
  pthread_t *th;
  int nth;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  int64_t next_pos;        /* next position a worker takes */
  int64_t consumed;        /* batches handed to the caller */
  int in_flight;
  bool epoch_active, stop;
};

static uint64_t sm64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static float px(const vg_image *im, int64_t i) {   /* sample i as [0,1] */
  return im->depth == 16 ? ((const uint16_t *)im->data)[i] / 65535.f : ((const uint8_t *)im->data)[i] / 255.f;
}

/* Nearest-neighbour source index, PIL's NEAREST: source pixel floor((y + 0.5) * sh / h).
 * Used for masks and for 16-bit images (Pillow's antialiased filters are 8-bit only). */
static inline int64_t src_index(const vg_image *im, int y, int x, int h, int w) {
  int sy = (int)(((int64_t)y * 2 + 1) * im->h / (2 * (int64_t)h));
  int sx = (int)(((int64_t)x * 2 + 1) * im->w / (2 * (int64_t)w));
  return ((int64_t)sy * im->w + sx) * im->c;
}

/* 8-bit path: colour conversion as Pillow convert("RGB"/"L"), then Image.resize(BILINEAR)
 * when the size differs, then to_tensor — torchvision's Resize + ToTensor on a PIL image. */
static vg_status transform_u8(const vg_image *im, float *out, int c, int h, int w) {
  vg_image conv = {0}, rs = {0};
  const vg_image *cur = im;
  vg_status st = VG_OK;
  if (c == 3 && im->c != 3) { st = vg_image_to_rgb(im, &conv); cur = &conv; }
  else if (c == 1 && im->c != 1) { st = vg_image_to_gray(im, &conv); cur = &conv; }
  if (st == VG_OK && (cur->w != w || cur->h != h)) {
    st = vg_image_resize(cur, w, h, VG_RESAMPLE_BILINEAR, &rs);
    cur = &rs;
  }
  if (st == VG_OK) st = vg_image_to_tensor(cur, out);
  vg_image_free(&rs);
  vg_image_free(&conv);
  return st;
}

vg_status vg_default_transform(const vg_image *im, float *out, int c, int h, int w, void *user) {
  (void)user;
  if (c != 1 && c != 3) return vg_fail(VG_ERR_ARG, "default transform: channels must be 1 or 3, got %d", c);
  if (im->depth == 8) return transform_u8(im, out, c, h, w);
  bool same = im->w == w && im->h == h;
  int ic = im->c >= 3 ? 3 : 1;    /* colour channels in the source (alpha dropped) */
  int64_t plane = (int64_t)h * w;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int64_t s = same ? ((int64_t)y * w + x) * im->c : src_index(im, y, x, h, w);
      int64_t d = (int64_t)y * w + x;
      if (c == 3) {
        for (int k = 0; k < 3; k++) out[k * plane + d] = px(im, s + (ic == 3 ? k : 0));
      } else if (ic == 1) {
        out[d] = px(im, s);
      } else {
        out[d] = 0.299f * px(im, s) + 0.587f * px(im, s + 1) + 0.114f * px(im, s + 2);
      }
    }
  return VG_OK;
}

vg_status vg_imagenet_transform(const vg_image *im, float *out, int c, int h, int w, void *user) {
  if (c != 3) return vg_fail(VG_ERR_ARG, "ImageNet transform: needs 3 channels, got %d", c);
  vg_status st = vg_default_transform(im, out, c, h, w, user);
  if (st == VG_OK) vg_tensor_normalize_imagenet(out, h, w);
  return st;
}

/* Loads one image: strict_images refuses truncated files; otherwise a truncated file
 * decodes and is warned about once per sample for the loader's life (not every epoch). */
static vg_status load_image(vg_loader *L, int64_t idx, const char *path, vg_image *im) {
  unsigned fl = 0;
  vg_status st = vg_image_load_ex(path, im, NULL, L->o.strict_images, &fl);
  if (st == VG_OK && (fl & VG_IMAGE_TRUNCATED) && !__atomic_exchange_n(&L->warned[idx], 1, __ATOMIC_RELAXED))
    vg_image_warn("%s: truncated image: the data end before the JPEG EOI marker; decoded with the missing part "
                  "filled in (--strict-images refuses such files)", path);
  return st;
}

/* Decodes one sample into img/mask floats (tag: the sampler's, for sample_fn). */
static vg_status load_sample(vg_loader *L, const vg_sample *s, uint64_t tag, float *img, float *mask) {
  vg_image im;
  int64_t idx = s - L->ds->samples;
  vg_status st = load_image(L, idx, s->image, &im);
  if (st != VG_OK) return st;
  vg_transform_fn tf = L->o.transform ? L->o.transform : vg_default_transform;
  st = L->o.sample_fn ? L->o.sample_fn(&im, tag, img, L->o.user)
                      : tf(&im, img, L->o.channels, L->o.height, L->o.width, L->o.user);
  vg_image_free(&im);
  if (st != VG_OK) return vg_fail_prefix("%s", s->image);
  if (!mask) return VG_OK;
  int h = L->o.height, w = L->o.width;
  memset(mask, 0, (size_t)h * w * sizeof *mask);
  for (int k = 0; k < s->n_masks; k++) {
    vg_image m;
    st = load_image(L, idx, s->masks[k].path, &m);
    if (st != VG_OK) return st;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        int64_t i = src_index(&m, y, x, h, w);
        if (px(&m, i) > 0) mask[(int64_t)y * w + x] = 1.f;
      }
    vg_image_free(&m);
  }
  return VG_OK;
}

static void *worker(void *arg) {
  vg_loader *L = arg;
  int64_t B = L->o.batch_size, P = L->o.prefetch;
  pthread_mutex_lock(&L->mu);
  for (;;) {
    while (!L->stop && !(L->epoch_active && L->next_pos < L->epoch_n && L->next_pos / B < L->consumed + P))
      pthread_cond_wait(&L->cv_work, &L->mu);
    if (L->stop) break;
    int64_t pos = L->next_pos++;
    uint64_t tag = 0;
    int64_t idx = L->o.sampler ? L->o.sampler(L->o.user, L->epoch, pos, &tag) : L->perm[pos];
    L->in_flight++;
    pthread_mutex_unlock(&L->mu);

    slot *sl = &L->slots[(pos / B) % P];
    int row = (int)(pos % B);
    sl->idx[row] = idx;
    vg_status st = idx >= 0 && idx < L->ds->n
                       ? load_sample(L, &L->ds->samples[idx], tag, sl->img + row * L->sample_floats,
                                     sl->mask ? sl->mask + row * L->mask_floats : NULL)
                       : vg_fail(VG_ERR_ARG, "loader: the sampler chose sample %lld of %lld", (long long)idx,
                                 (long long)L->ds->n);
    pthread_mutex_lock(&L->mu);
    if (st != VG_OK && (sl->err == VG_OK || row < sl->err_row)) {
      sl->err = st;
      sl->err_row = row;
      snprintf(sl->msg, sizeof sl->msg, "%s", vg_last_error());
    }
    sl->done++;
    L->in_flight--;
    pthread_cond_broadcast(&L->cv_done);
  }
  pthread_mutex_unlock(&L->mu);
  return NULL;
}

vg_status vg_loader_create(const vg_dataset *ds, const vg_loader_opts *o, vg_loader **out) {
  *out = NULL;
  if (!ds || !o) return vg_fail(VG_ERR_ARG, "loader: dataset and options are required");
  if (o->batch_size < 1 || o->channels < 1 || o->channels > 4 || o->height < 1 || o->width < 1 ||
      o->height > 16384 || o->width > 16384)
    return vg_fail(VG_ERR_ARG, "loader: need batch_size >= 1, channels 1..4 and 1..16384 for height/width (got %d, %d, %dx%d)",
                   o->batch_size, o->channels, o->height, o->width);
  if (o->sample_fn && (o->sample_floats < 1 || o->sample_floats > ((int64_t)1 << 40) / o->batch_size))
    return vg_fail(VG_ERR_ARG, "loader: sample_fn needs 1 <= sample_floats <= 2^40 / batch_size (got %lld)",
                   (long long)o->sample_floats);
  vg_loader *L = calloc(1, sizeof *L);
  if (!L) return vg_fail(VG_ERR_NOMEM, "loader: out of memory");
  L->ds = ds;
  L->o = *o;
  if (L->o.workers < 1) L->o.workers = 1;
  if (L->o.workers > 256) L->o.workers = 256;
  if (L->o.prefetch < 1) L->o.prefetch = 2;
  L->sample_floats = o->sample_fn ? o->sample_floats : (int64_t)o->channels * o->height * o->width;
  L->mask_floats = (int64_t)o->height * o->width;
  L->perm = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *L->perm);
  L->warned = calloc((size_t)(ds->n ? ds->n : 1), 1);
  L->slots = calloc((size_t)L->o.prefetch, sizeof *L->slots);
  L->th = calloc((size_t)L->o.workers, sizeof *L->th);
  bool ok = L->perm && L->warned && L->slots && L->th;
  for (int i = 0; ok && i < L->o.prefetch; i++) {
    L->slots[i].img = malloc((size_t)(o->batch_size * L->sample_floats) * sizeof(float));
    if (o->load_masks) L->slots[i].mask = malloc((size_t)(o->batch_size * L->mask_floats) * sizeof(float));
    L->slots[i].idx = malloc((size_t)o->batch_size * sizeof *L->slots[i].idx);
    ok = L->slots[i].img && (!o->load_masks || L->slots[i].mask) && L->slots[i].idx;
  }
  pthread_mutex_init(&L->mu, NULL);
  pthread_cond_init(&L->cv_work, NULL);
  pthread_cond_init(&L->cv_done, NULL);
  for (int i = 0; ok && i < L->o.workers; i++) {
    if (pthread_create(&L->th[i], NULL, worker, L) != 0) ok = false;
    else L->nth++;
  }
  if (!ok) {
    vg_loader_destroy(L);
    return vg_fail(VG_ERR_NOMEM, "loader: out of memory or threads");
  }
  *out = L;
  return VG_OK;
}

int64_t vg_loader_batches(const vg_loader *L) {
  int64_t n = L->ds->n, B = L->o.batch_size;
  return L->o.drop_last ? n / B : (n + B - 1) / B;
}

/* Stops handing out positions and waits for the workers' current samples. Lock held. */
static void quiesce(vg_loader *L) {
  L->epoch_active = false;
  while (L->in_flight > 0) pthread_cond_wait(&L->cv_done, &L->mu);
}

/* Starts epoch `epoch` of n positions (n < 0: the dataset's epoch). */
static vg_status start(vg_loader *L, int epoch, int64_t n_stream) {
  pthread_mutex_lock(&L->mu);
  quiesce(L);
  int64_t n = L->ds->n;
  for (int64_t i = 0; i < n; i++) L->perm[i] = i;
  if (L->o.shuffle && !L->o.sampler) {
    uint64_t st = L->o.seed * 0x9E3779B97F4A7C15ull + (uint64_t)(uint32_t)epoch;
    sm64(&st);
    for (int64_t i = n - 1; i > 0; i--) {
      int64_t j = (int64_t)(sm64(&st) % (uint64_t)(i + 1));
      int64_t t = L->perm[i]; L->perm[i] = L->perm[j]; L->perm[j] = t;
    }
  }
  L->epoch_n = vg_loader_batches(L) * L->o.batch_size;
  if (L->epoch_n > n) L->epoch_n = n;
  if (n_stream >= 0) L->epoch_n = L->o.drop_last ? n_stream / L->o.batch_size * L->o.batch_size : n_stream;
  L->epoch = epoch;
  for (int i = 0; i < L->o.prefetch; i++) { L->slots[i].done = 0; L->slots[i].err = VG_OK; }
  L->next_pos = 0;
  L->consumed = 0;
  L->epoch_active = true;
  pthread_cond_broadcast(&L->cv_work);
  pthread_mutex_unlock(&L->mu);
  return VG_OK;
}

vg_status vg_loader_start_epoch(vg_loader *L, int epoch) { return start(L, epoch, -1); }

vg_status vg_loader_start_stream(vg_loader *L, int epoch, int64_t n) {
  if (!L->o.sampler) return vg_fail(VG_ERR_ARG, "loader: a stream needs a sampler (vg_loader_opts.sampler)");
  if (n < 0) return vg_fail(VG_ERR_ARG, "loader: a stream of %lld positions", (long long)n);
  return start(L, epoch, n);
}

vg_status vg_loader_next_into(vg_loader *L, float *images, float *masks, int64_t *indices, int *n) {
  *n = 0;
  int64_t B = L->o.batch_size, P = L->o.prefetch;
  pthread_mutex_lock(&L->mu);
  if (!L->epoch_active) {
    pthread_mutex_unlock(&L->mu);
    return vg_fail(VG_ERR_ARG, "loader: no epoch started (call vg_loader_start_epoch)");
  }
  int64_t k = L->consumed;
  int64_t first = k * B;
  if (first >= L->epoch_n) { pthread_mutex_unlock(&L->mu); return VG_OK; }
  int64_t rows = L->epoch_n - first < B ? L->epoch_n - first : B;
  slot *sl = &L->slots[k % P];
  while (sl->done < rows) pthread_cond_wait(&L->cv_done, &L->mu);
  vg_status st = sl->err;
  if (st == VG_OK) {
    memcpy(images, sl->img, (size_t)(rows * L->sample_floats) * sizeof(float));
    if (masks && sl->mask) memcpy(masks, sl->mask, (size_t)(rows * L->mask_floats) * sizeof(float));
    if (masks && !sl->mask) memset(masks, 0, (size_t)(rows * L->mask_floats) * sizeof(float));
    if (indices) memcpy(indices, sl->idx, (size_t)rows * sizeof *indices);
    *n = (int)rows;
  } else {
    vg_fail(st, "%s", sl->msg);
  }
  sl->done = 0;
  sl->err = VG_OK;
  L->consumed++;
  pthread_cond_broadcast(&L->cv_work);
  pthread_mutex_unlock(&L->mu);
  return st;
}

vg_status vg_loader_next(vg_loader *L, vg_batch *b) {
  memset(b, 0, sizeof *b);
  int64_t B = L->o.batch_size;
  int64_t sh[4] = {B, L->o.channels, L->o.height, L->o.width};
  int nd = 4;
  if (L->o.sample_fn) { sh[1] = L->sample_floats; nd = 2; }   /* (n, sample_floats) */
  float *img = malloc((size_t)(B * L->sample_floats) * sizeof(float));
  float *msk = L->o.load_masks ? malloc((size_t)(B * L->mask_floats) * sizeof(float)) : NULL;
  int64_t *idx = malloc((size_t)B * sizeof *idx);
  if (!img || !idx || (L->o.load_masks && !msk)) {
    free(img); free(msk); free(idx);
    return vg_fail(VG_ERR_NOMEM, "loader: out of memory");
  }
  int n = 0;
  vg_status st = vg_loader_next_into(L, img, msk, idx, &n);
  if (st == VG_OK && n > 0) {
    sh[0] = n;
    b->images = vg_tensor_new(VG_F32, nd, sh);
    if (msk) { sh[1] = 1; b->masks = vg_tensor_new(VG_F32, 4, sh); }
    if (!b->images || (msk && !b->masks)) {
      vg_tensor_free(b->images); vg_tensor_free(b->masks);
      b->images = b->masks = NULL;
      st = vg_fail(VG_ERR_NOMEM, "loader: out of memory");
    } else {
      memcpy(vg_f32(b->images), img, (size_t)(n * L->sample_floats) * sizeof(float));
      if (msk) memcpy(vg_f32(b->masks), msk, (size_t)(n * L->mask_floats) * sizeof(float));
      b->n = n;
      b->indices = idx;
      idx = NULL;
    }
  }
  free(img); free(msk); free(idx);
  return st;
}

void vg_batch_free(vg_batch *b) {
  if (!b) return;
  vg_tensor_free(b->images);
  vg_tensor_free(b->masks);
  free(b->indices);
  memset(b, 0, sizeof *b);
}

void vg_loader_destroy(vg_loader *L) {
  if (!L) return;
  if (L->th) {
    pthread_mutex_lock(&L->mu);
    L->stop = true;
    pthread_cond_broadcast(&L->cv_work);
    pthread_mutex_unlock(&L->mu);
    for (int i = 0; i < L->nth; i++) pthread_join(L->th[i], NULL);
  }
  pthread_mutex_destroy(&L->mu);
  pthread_cond_destroy(&L->cv_work);
  pthread_cond_destroy(&L->cv_done);
  if (L->slots)
    for (int i = 0; i < L->o.prefetch; i++) { free(L->slots[i].img); free(L->slots[i].mask); free(L->slots[i].idx); }
  free(L->slots);
  free(L->perm);
  free(L->warned);
  free(L->th);
  free(L);
}
