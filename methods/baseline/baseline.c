/* baseline.c — the "meanimage" method (baseline.h). */
#include "methods/baseline/baseline.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_method base;
  int size, workers;
  double sd_floor;
  float *mu, *sd;          /* 3 x size x size */
  bool fitted;
} meanimage;

static vg_status mi_fit_begin(vg_method *mm, const vg_dataset *train) {
  meanimage *m = (meanimage *)mm;
  if (!train || train->n == 0) return vg_fail(VG_ERR_ARG, "meanimage: empty training set");
  int64_t S = 3 * (int64_t)m->size * m->size;
  double *sum = calloc((size_t)S, sizeof *sum), *sq = calloc((size_t)S, sizeof *sq);
  vg_loader_opts o = {.batch_size = 8, .workers = m->workers, .channels = 3, .height = m->size, .width = m->size,
                      .transform = mm->test_transform};
  vg_loader *L = NULL;
  vg_status st = sum && sq ? vg_loader_create(train, &o, &L) : vg_fail(VG_ERR_NOMEM, "meanimage: out of memory");
  int64_t count = 0;
  if (st == VG_OK) st = vg_loader_start_epoch(L, 0);
  while (st == VG_OK) {
    vg_batch b;
    st = vg_loader_next(L, &b);
    if (st != VG_OK || b.n == 0) break;
    const float *x = vg_f32(b.images);
    for (int r = 0; r < b.n; r++)
      for (int64_t i = 0; i < S; i++) { double v = x[r * S + i]; sum[i] += v; sq[i] += v * v; }
    count += b.n;
    vg_batch_free(&b);
  }
  vg_loader_destroy(L);
  if (st == VG_OK) {
    for (int64_t i = 0; i < S; i++) {
      double mu = sum[i] / count, var = sq[i] / count - mu * mu;
      m->mu[i] = (float)mu;
      m->sd[i] = (float)sqrt(var > 0 ? var : 0);
    }
    m->fitted = true;
  }
  free(sum); free(sq);
  return st;
}

static vg_status mi_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  (void)mm; (void)images; (void)step;
  *loss = 0;
  return VG_OK;
}

static vg_status mi_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  meanimage *m = (meanimage *)mm;
  if (!m->fitted) return vg_fail(VG_ERR_ARG, "meanimage: predict before fit (no statistics)");
  int64_t n = images->shape[0], P = (int64_t)m->size * m->size;
  if (images->ndim != 4 || images->shape[1] != 3 || images->shape[2] != m->size || images->shape[3] != m->size)
    return vg_fail(VG_ERR_ARG, "meanimage: images must be N x 3 x %d x %d", m->size, m->size);
  const float *x = vg_f32(images);
  for (int64_t r = 0; r < n; r++) {
    float mx = -INFINITY;
    for (int64_t p = 0; p < P; p++) {
      double acc = 0;
      for (int c = 0; c < 3; c++) {
        double d = (x[(r * 3 + c) * P + p] - m->mu[c * P + p]) / (m->sd[c * P + p] + m->sd_floor);
        acc += d * d;
      }
      float v = (float)sqrt(acc / 3);
      maps[r * P + p] = v;
      if (v > mx) mx = v;
    }
    scores[r] = mx;
  }
  return VG_OK;
}

static const vg_cfg_field MI_CONFIG[] = {
  {"input_size", VG_CFG_INT, VG_CFG_AT(meanimage, size), .idef = 256, .ilo = 8, .ihi = 4096,
   .help = "side of the square input image the statistics are taken at"},
  {"sd_floor", VG_CFG_NUM, VG_CFG_AT(meanimage, sd_floor), .def = 0.05, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI,
   .help = "added to each pixel's standard deviation before dividing"},
  {"workers", VG_CFG_INT, VG_CFG_AT(meanimage, workers), .idef = 2, .ilo = 1, .ihi = 256,
   .help = "loader threads of the statistics pass"},
  {NULL}};

static char *mi_config_json(const vg_method *mm) { return vg_cfg_json("meanimage", MI_CONFIG, mm); }

static vg_status mi_save(const vg_method *mm, const char *path) {
  const meanimage *m = (const meanimage *)mm;
  int64_t shape[3] = {3, m->size, m->size};
  vg_tensor *mu = vg_tensor_new(VG_F32, 3, shape), *sd = vg_tensor_new(VG_F32, 3, shape);
  if (!mu || !sd) { vg_tensor_free(mu); vg_tensor_free(sd); return vg_fail(VG_ERR_NOMEM, "meanimage: out of memory"); }
  memcpy(vg_f32(mu), m->mu, (size_t)(3 * m->size * m->size) * sizeof(float));
  memcpy(vg_f32(sd), m->sd, (size_t)(3 * m->size * m->size) * sizeof(float));
  char *cfg = mi_config_json(mm);
  /* metadata: {"vigil.config": "<json>"} */
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "vigil.config"); vg_jw_string(&w, cfg ? cfg : "{}");
  if (mm->run_state) { vg_jw_key(&w, VG_CHECKPOINT_RUN_STATE); vg_jw_string(&w, mm->run_state); }
  vg_jw_end_object(&w);
  char *meta = vg_jw_finish(&w, NULL);
  const char *names[2] = {"mean", "std"};
  vg_tensor *ts[2] = {mu, sd};
  vg_status st = vg_st_save(path, 2, names, ts, meta);
  free(meta); free(cfg);
  vg_tensor_free(mu); vg_tensor_free(sd);
  return st;
}

static vg_status mi_load(vg_method *mm, const char *path) {
  meanimage *m = (meanimage *)mm;
  vg_st_file *f;
  vg_status st = vg_st_open(path, &f);
  if (st != VG_OK) return st;
  int64_t shape[3] = {3, m->size, m->size};
  vg_tensor *mu = vg_tensor_new(VG_F32, 3, shape), *sd = vg_tensor_new(VG_F32, 3, shape);
  st = vg_st_get_into(f, "mean", mu);
  if (st == VG_OK) st = vg_st_get_into(f, "std", sd);
  if (st == VG_OK) {
    memcpy(m->mu, vg_f32(mu), (size_t)(3 * m->size * m->size) * sizeof(float));
    memcpy(m->sd, vg_f32(sd), (size_t)(3 * m->size * m->size) * sizeof(float));
    m->fitted = true;
  }
  vg_tensor_free(mu); vg_tensor_free(sd);
  vg_st_close(f);
  return st;
}

static void mi_free(vg_method *mm) {
  meanimage *m = (meanimage *)mm;
  free(m->mu); free(m->sd);
  free(m);
}

static const vg_method_ops mi_ops = {
  .name = "meanimage", .fit_begin = mi_fit_begin, .train_step = mi_train_step, .fit_end = NULL,
  .predict = mi_predict, .finalize = NULL, .save = mi_save, .load = mi_load,
  .config_json = mi_config_json, .free = mi_free,
};

vg_status vg_meanimage_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  meanimage *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "meanimage: out of memory");
  vg_cfg_defaults(MI_CONFIG, m);
  vg_status st = vg_cfg_parse("meanimage", MI_CONFIG, cfg, m);
  if (st != VG_OK) { free(m); return st; }
  int64_t size = m->size;
  m->mu = calloc((size_t)(3 * size * size), sizeof(float));
  m->sd = calloc((size_t)(3 * size * size), sizeof(float));
  if (!m->mu || !m->sd) { mi_free(&m->base); return vg_fail(VG_ERR_NOMEM, "meanimage: out of memory"); }
  m->base.ops = &mi_ops;
  m->base.input_h = m->base.input_w = (int)size;
  m->base.train_channels = 3;
  m->base.train_batch = 8;
  m->base.default_steps = 0;
  m->base.train_transform = m->base.test_transform = vg_default_transform;
  *out = &m->base;
  return VG_OK;
}

const vg_method_def vg_method_meanimage = {
  .name = "meanimage", .summary = "per-pixel mean/std distance to the training images (the pipeline check and floor)",
  .create = vg_meanimage_new, .config = MI_CONFIG,
};
