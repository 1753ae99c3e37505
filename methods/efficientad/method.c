/* method.c — EfficientAD on the method contract (methods/method.h): teacher setup
 * (published weights, a distilled teacher, or distillation on the spot), Algorithm 1
 * training with the ImageNet penalty and the AE augmentation, quantile normalisation on
 * the validation split and Algorithm 2 inference. Laid out as anomalib's
 * EfficientAdModel (teacher/student/ae, mean_std.{mean,std}, quantiles.{qa_st,...}) so
 * its checkpoints load by name.
 *
 * Every random draw of a training step (augmentation kind and factor, penalty image and
 * its greyscale coin, dropout masks) is a function of (seed, step), so `--resume`
 * continues the identical stream. */
#include "methods/efficientad/efficientad.h"
#include "methods/efficientad/distill.h"
#include "autograd/autograd.h"
#include "datasets/image/image.h"
#include "nn/backbones/backbones.h"
#include "nn/checkpoint.h"
#include "nn/pth.h"
#include "nn/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  vg_method base;
  /* config */
  vg_effad_size size;
  int64_t out_channels;
  int input_size;
  char teacher[1024], penalty_dir[1024];
  char distill_backbone[64], distill_weights[1024], distill_images[1024], distill_out[1024];
  int64_t distill_iters, distill_batch, distill_stats_images, distill_view;
  double lr, weight_decay, lr_step_fraction, p_hard, penalty_grey_p;
  int64_t batch, steps;
  uint64_t seed;
  bool pad_maps;
  bool float_resize;          /* config "resize": "float" (anomalib 2.x) or "pil" */
  /* state */
  vg_effad_model *model;
  vg_nn_module *net;            /* teacher, student, ae, mean_std, quantiles, vigil_step */
  vg_tensor *q[4];              /* quantiles.qa_st, qb_st, qa_ae, qb_ae (0-d) */
  vg_tensor *step_buf;
  vg_optim *opt;
  vg_dataset penalty;
  bool penalty_open;
  double cur_lr;
} effad;

static const char *const QNAMES[4] = {"qa_st", "qb_st", "qa_ae", "qb_ae"};

vg_effad_model *vg_effad_method_model(vg_method *m) { return ((effad *)m)->model; }

/* ------------------------------------------------------------ per-step random draws */
static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* U[0,1) for draw `k` of step `step`. */
static double draw(const effad *m, int64_t step, int k) {
  uint64_t h = mix64(mix64(m->seed * 0x2545F4914F6CDD1Dull + (uint64_t)step) + (uint64_t)k);
  return (double)(h >> 11) * 0x1.0p-53;
}

/* quantiles <-> the model's floats */
static void q_to_model(effad *m) {
  float *v[4] = {&m->model->qa_st, &m->model->qb_st, &m->model->qa_ae, &m->model->qb_ae};
  for (int i = 0; i < 4; i++) *v[i] = ((float *)vg_data(m->q[i]))[0];
}
static void q_from_model(effad *m) {
  const float v[4] = {m->model->qa_st, m->model->qb_st, m->model->qa_ae, m->model->qb_ae};
  for (int i = 0; i < 4; i++) ((float *)vg_data(m->q[i]))[0] = v[i];
}

/* ------------------------------------------------------------ AE augmentation
 * torchvision's tensor adjust_brightness / adjust_contrast / adjust_saturation, as
 * anomalib's choose_random_aug_image applies them to the whole batch: one kind and one
 * factor U(0.8, 1.2) per step. */
vg_status vg_effad_augment(const float *src, float *dst, int64_t n, int64_t h, int64_t w, int kind, float f) {
  const int64_t P = h * w;
  if (kind < 0 || kind > 2) return vg_fail(VG_ERR_ARG, "efficientad: augmentation kind %d", kind);
  for (int64_t i = 0; i < n; i++) {
    const float *r = src + i * 3 * P, *g = r + P, *b = g + P;
    float *o = dst + i * 3 * P;
    double mean = 0;
    if (kind == 1) {
      for (int64_t p = 0; p < P; p++) mean += 0.2989f * r[p] + 0.587f * g[p] + 0.114f * b[p];
      mean /= (double)P;
    }
    for (int c = 0; c < 3; c++)
      for (int64_t p = 0; p < P; p++) {
        float x = src[i * 3 * P + c * P + p], v;
        if (kind == 0) v = f * x;
        else if (kind == 1) v = f * x + (1.0f - f) * (float)mean;
        else v = f * x + (1.0f - f) * (0.2989f * r[p] + 0.587f * g[p] + 0.114f * b[p]);
        o[c * P + p] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
      }
  }
  return VG_OK;
}

/* ------------------------------------------------------------ penalty images
 * Appendix A.1 / anomalib: Resize(2H, 2W) -> RandomGrayscale(p) -> CenterCrop(H, W) ->
 * ToTensor, on the 8-bit image as Pillow does it. One image per step, drawn uniformly
 * (with replacement) from the folder. */
static vg_status penalty_image(effad *m, int64_t step, float *out) {
  int64_t idx = (int64_t)(draw(m, step, 2) * (double)m->penalty.n);
  if (idx >= m->penalty.n) idx = m->penalty.n - 1;
  const char *path = m->penalty.samples[idx].image;
  bool grey = draw(m, step, 3) < m->penalty_grey_p;
  const int H = m->input_size;
  vg_image im = {0}, rgb = {0}, big = {0}, g = {0}, g3 = {0}, crop = {0};
  vg_status st = vg_image_load(path, &im, NULL);
  if (st == VG_OK) st = vg_image_to_rgb(&im, &rgb);
  if (st == VG_OK) st = vg_image_resize(&rgb, 2 * H, 2 * H, VG_RESAMPLE_BILINEAR, &big);
  const vg_image *cur = &big;
  if (st == VG_OK && grey) {
    st = vg_image_to_gray(&big, &g);
    if (st == VG_OK) st = vg_image_to_rgb(&g, &g3);
    cur = &g3;
  }
  if (st == VG_OK) st = vg_image_center_crop(cur, H, H, &crop);
  if (st == VG_OK) st = vg_image_to_tensor(&crop, out);
  vg_image_free(&im); vg_image_free(&rgb); vg_image_free(&big); vg_image_free(&g); vg_image_free(&g3);
  vg_image_free(&crop);
  if (st != VG_OK) return vg_fail(st, "efficientad: penalty image %s: %s", path, vg_last_error());
  return VG_OK;
}

static vg_status open_penalty(effad *m) {
  if (m->penalty_open || !m->penalty_dir[0]) return VG_OK;
  vg_status st = vg_ds_image_folder(m->penalty_dir, &m->penalty);
  if (st != VG_OK) return vg_fail(st, "efficientad: --penalty %s: %s", m->penalty_dir, vg_last_error());
  if (m->penalty.n == 0) {
    vg_dataset_free(&m->penalty);
    return vg_fail(VG_ERR_ARG, "efficientad: --penalty %s holds no images", m->penalty_dir);
  }
  m->penalty_open = true;
  return VG_OK;
}

/* ------------------------------------------------------------ teacher weights */
/* PDN layer index of nelson1425's nn.Sequential -> our conv name. */
static const char *seq_name(vg_effad_size size, int idx) {
  static const int S[] = {0, 3, 6, 8}, M[] = {0, 3, 6, 8, 10, 12};
  static const char *const names[] = {"conv1", "conv2", "conv3", "conv4", "conv5", "conv6"};
  const int *t = size == VG_EFFAD_S ? S : M;
  int n = size == VG_EFFAD_S ? 4 : 6;
  for (int i = 0; i < n; i++) if (t[i] == idx) return names[i];
  return NULL;
}

/* Name in the file -> "convK.weight|bias", or NULL when the entry is not the teacher's. */
static bool map_teacher_name(vg_effad_size size, const char *in, char *out, size_t cap) {
  static const char *const pre[] = {"state_dict.", "model.", "teacher.", "module.", NULL};
  for (int i = 0; pre[i]; i++)
    if (!strncmp(in, pre[i], strlen(pre[i]))) in += strlen(pre[i]);
  const char *dot = strrchr(in, '.');
  if (!dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias"))) return false;
  if (in[0] >= '0' && in[0] <= '9') {   /* nelson1425's Sequential: "0.weight" */
    char *end;
    long idx = strtol(in, &end, 10);
    const char *nm = end == dot ? seq_name(size, (int)idx) : NULL;
    if (!nm) return false;
    snprintf(out, cap, "%s%s", nm, dot);
    return true;
  }
  if (strncmp(in, "conv", 4) || strchr(in, '.') != dot) return false;
  snprintf(out, cap, "%s", in);
  return true;
}

typedef struct { char name[64]; vg_tensor *t; } named_t;

vg_status vg_effad_teacher_load(vg_nn_module *pdn, vg_effad_size size, const char *path) {
  named_t *ent = NULL;
  int n = 0;
  vg_status st = VG_OK;
  size_t len = strlen(path);
  bool is_st = len > 12 && !strcmp(path + len - 12, ".safetensors");
  vg_pth_dict *d = NULL;
  vg_st_file *f = NULL;
  if (access(path, R_OK) != 0) return vg_fail(VG_ERR_IO, "efficientad: teacher weights %s: cannot read the file", path);
  if (is_st) {
    if ((st = vg_st_open(path, &f)) != VG_OK) return vg_fail(st, "efficientad: teacher %s: %s", path, vg_last_error());
    int cnt = vg_st_count(f);
    ent = calloc((size_t)cnt + 1, sizeof *ent);
    for (int i = 0; i < cnt && ent; i++) {
      vg_st_info inf;
      char nm[64];
      if (vg_st_info_at(f, i, &inf) != VG_OK || !map_teacher_name(size, inf.name, nm, sizeof nm)) continue;
      if ((st = vg_st_get(f, inf.name, VG_F32, &ent[n].t)) != VG_OK) break;
      snprintf(ent[n++].name, sizeof ent[0].name, "%s", nm);
    }
  } else {
    vg_pth_opts o = {.to_f32 = true};
    if ((st = vg_pth_load(path, &o, &d)) != VG_OK) return vg_fail(st, "efficientad: teacher %s: %s", path, vg_last_error());
    ent = calloc(d->count + 1, sizeof *ent);
    for (size_t i = 0; i < d->count && ent; i++) {
      char nm[64];
      if (d->entries[i].kind != VG_PTH_TENSOR || !d->entries[i].tensor) continue;
      if (!map_teacher_name(size, d->entries[i].name, nm, sizeof nm)) continue;
      ent[n].t = d->entries[i].tensor;
      snprintf(ent[n++].name, sizeof ent[0].name, "%s", nm);
    }
  }
  if (!ent && st == VG_OK) st = vg_fail(VG_ERR_NOMEM, "efficientad: out of memory");
  /* check everything, then copy */
  vg_nn_list ps = vg_nn_named_parameters(pdn);
  vg_tensor **src = calloc((size_t)ps.n + 1, sizeof *src);
  for (int i = 0; i < ps.n && st == VG_OK; i++) {
    for (int k = 0; k < n; k++) if (!strcmp(ent[k].name, ps.names[i])) { src[i] = ent[k].t; break; }
    if (!src[i]) {
      st = vg_fail(VG_ERR_FORMAT, "efficientad: teacher %s has no tensor for %s (a PDN-%s state dict "
                   "as teacher_%s.pth / pdn_%s.pth or a vigil distill output was expected)", path, ps.names[i],
                   size == VG_EFFAD_S ? "S" : "M", size == VG_EFFAD_S ? "small" : "medium",
                   size == VG_EFFAD_S ? "small" : "medium");
    } else {
      bool same = src[i]->ndim == ps.tensors[i]->ndim;
      for (int j = 0; same && j < src[i]->ndim; j++) same = src[i]->shape[j] == ps.tensors[i]->shape[j];
      if (!same) {
        char a[96], b[96];
        st = vg_fail(VG_ERR_FORMAT, "efficientad: teacher %s: %s is %s, the PDN-%s wants %s (wrong --model?)", path,
                     ps.names[i], vg_shape_str(src[i], a, sizeof a), size == VG_EFFAD_S ? "S" : "M",
                     vg_shape_str(ps.tensors[i], b, sizeof b));
      }
    }
  }
  for (int i = 0; i < ps.n && st == VG_OK; i++) vg_copy_(ps.tensors[i], src[i]);
  free(src);
  vg_nn_list_free(&ps);
  if (is_st) {
    for (int k = 0; k < n; k++) vg_tensor_free(ent[k].t);
    vg_st_close(f);
  }
  vg_pth_free(d);
  free(ent);
  return st;
}

/* ------------------------------------------------------------ method ops */
static int64_t total_steps(const effad *m) {
  return m->base.total_steps > 0 ? m->base.total_steps : m->steps;
}

static double lr_at(const effad *m, int64_t step) {
  /* torch StepLR(step_size = int(0.95 * steps), gamma = 0.1), stepped once per step */
  int64_t k = (int64_t)(m->lr_step_fraction * (double)total_steps(m));
  if (k < 1) k = 1;
  return m->lr * pow(0.1, (double)(step / k));
}

static vg_status ea_fit_begin(vg_method *mm, const vg_dataset *train) {
  effad *m = (effad *)mm;
  vg_status st = VG_OK;
  if (!strcmp(m->teacher, "random")) {
    fprintf(stderr, "efficientad: teacher = random PDN (no distillation): results are NOT comparable to the paper\n");
  } else if (m->teacher[0]) {
    st = vg_effad_teacher_load(m->model->teacher, m->size, m->teacher);
  } else {
    /* distil a teacher now (Algorithm 3), from distill_images, else the penalty folder,
     * else the training images */
    vg_dataset imgs = {0};
    const char *dir = m->distill_images[0] ? m->distill_images : m->penalty_dir;
    if (dir[0]) st = vg_ds_image_folder(dir, &imgs);
    vg_effad_distill_opts o;
    vg_effad_distill_defaults(&o);
    char tmp[1100];
    if (m->distill_out[0]) snprintf(tmp, sizeof tmp, "%s", m->distill_out);
    else {
      const char *td = getenv("TMPDIR");
      snprintf(tmp, sizeof tmp, "%s/vigil-teacher-%ld.safetensors", td && *td ? td : "/tmp", (long)getpid());
    }
    o.backbone = m->distill_backbone;
    o.weights = m->distill_weights;
    o.images = dir[0] ? &imgs : train;
    o.size = m->size;
    o.out_channels = m->out_channels;
    o.out = tmp;
    o.iters = m->distill_iters;
    o.batch = m->distill_batch;
    o.stats_images = m->distill_stats_images;
    o.view = (int)m->distill_view;
    o.seed = m->seed;
    fprintf(stderr, "efficientad: no --teacher: distilling a PDN-%s teacher from %s%s on %s (%lld iterations)\n",
            m->size == VG_EFFAD_S ? "S" : "M", m->distill_backbone, m->distill_weights[0] ? "" : " (RANDOM weights)",
            dir[0] ? dir : "the training images", (long long)m->distill_iters);
    if (st == VG_OK) st = vg_effad_distill(&o);
    if (st == VG_OK) st = vg_effad_teacher_load(m->model->teacher, m->size, tmp);
    if (!m->distill_out[0]) {   /* the temp teacher and its resume checkpoint */
      char ck[1200];
      snprintf(ck, sizeof ck, "%s.ckpt.safetensors", tmp);
      remove(tmp);
      remove(ck);
    }
    if (dir[0]) vg_dataset_free(&imgs);
  }
  if (st != VG_OK) return st;
  if (m->penalty_dir[0]) {
    if ((st = open_penalty(m)) != VG_OK) return st;
  } else {
    fprintf(stderr, "efficientad: WARNING: no --penalty folder: the ImageNet penalty term of L_ST is disabled\n");
  }
  /* teacher channel statistics over the training split */
  vg_loader_opts o = {.batch_size = 8, .workers = 2, .channels = 3, .height = m->input_size,
                      .width = m->input_size, .transform = m->base.test_transform};
  vg_loader *L = NULL;
  if ((st = vg_loader_create(train, &o, &L)) != VG_OK) return st;
  vg_effad_stats_begin(m->model);
  st = vg_loader_start_epoch(L, 0);
  for (;;) {
    vg_batch b;
    if (st != VG_OK || (st = vg_loader_next(L, &b)) != VG_OK) break;
    if (b.n == 0) { vg_batch_free(&b); break; }
    st = vg_effad_stats_add(m->model, b.images);
    vg_batch_free(&b);
  }
  vg_loader_destroy(L);
  if (st == VG_OK) st = vg_effad_stats_end(m->model);
  return st;
}

static vg_status ea_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  effad *m = (effad *)mm;
  const int64_t n = images->shape[0], H = m->input_size;
  if (mm->dtype != VG_F32) return vg_fail(VG_ERR_ARG, "efficientad: training computes in f32 (f16 is for inference)");
  if (images->ndim != 4 || images->shape[1] != 3 || images->shape[2] != H || images->shape[3] != H) {
    char b[96];
    return vg_fail(VG_ERR_ARG, "efficientad: images must be N x 3 x %d x %d (got %s)", m->input_size, m->input_size,
                   vg_shape_str(images, b, sizeof b));
  }
  vg_status st = open_penalty(m);
  if (st != VG_OK) return st;
  m->cur_lr = lr_at(m, step);
  vg_optim_set_lr(m->opt, 0, m->cur_lr);
  vg_scope_begin();
  vg_tensor *x = vg_contiguous(images);
  vg_tensor *aug = vg_empty_like(x);
  int kind = (int)(draw(m, step, 1) * 3.0);
  float f = (float)(0.8 + 0.4 * draw(m, step, 0));
  st = vg_effad_augment(vg_f32(x), (float *)vg_data(aug), n, H, H, kind > 2 ? 2 : kind, f);
  vg_tensor *pen = NULL;
  if (st == VG_OK && m->penalty_open) {
    pen = vg_full(VG_F32, 4, (int64_t[]){1, 3, H, H}, 0.0);
    st = penalty_image(m, step, (float *)vg_data(pen));
  }
  if (st == VG_OK) {
    vg_optim_zero_grad(m->opt);
    vg_effad_losses L;
    st = vg_effad_compute_losses(m->model, x, aug, pen, m->seed * 1000003 + (uint64_t)step, &L);
    if (st == VG_OK) {
      *loss = vg_item(L.total);
      if (!isfinite(*loss))
        st = vg_fail(VG_ERR_NUMERIC, "efficientad: non-finite loss at step %lld (st %g, ae %g, stae %g)",
                     (long long)step, vg_item(L.st), vg_item(L.ae), vg_item(L.stae));
      else st = vg_backward(L.total);
    }
    if (st == VG_OK) {
      vg_optim_step(m->opt);
      ((int64_t *)vg_data(m->step_buf))[0] = step + 1;
    }
  }
  vg_scope_end();
  return st;
}

static vg_status ea_fit_end(vg_method *mm, const vg_dataset *val) {
  effad *m = (effad *)mm;
  if (val->n == 0)
    return vg_fail(VG_ERR_ARG, "efficientad: the validation split is empty; the map quantiles need normal validation "
                   "images (use --val-fraction > 0, or LOCO's validation folder)");
  vg_loader_opts o = {.batch_size = 8, .workers = 2, .channels = 3, .height = m->input_size,
                      .width = m->input_size, .transform = m->base.test_transform};
  vg_loader *L = NULL;
  vg_status st = vg_loader_create(val, &o, &L);
  if (st != VG_OK) return st;
  vg_effad_quantiles_begin(m->model);
  st = vg_loader_start_epoch(L, 0);
  for (;;) {
    vg_batch b;
    if (st != VG_OK || (st = vg_loader_next(L, &b)) != VG_OK) break;
    if (b.n == 0) { vg_batch_free(&b); break; }
    st = vg_effad_quantiles_add(m->model, b.images);
    vg_batch_free(&b);
  }
  vg_loader_destroy(L);
  if (st == VG_OK) st = vg_effad_quantiles_end(m->model);
  if (st == VG_OK) q_from_model(m);
  return st;
}

/* the combined map 0.5 (st + ae), N x 1 x H x W on the method's device */
static vg_tensor *ea_forward_maps(vg_method *mm, const vg_tensor *images) {
  vg_tensor *a, *b;
  if (vg_effad_maps(((effad *)mm)->model, images, true, &a, &b) != VG_OK) return NULL;
  return vg_scale(vg_add(a, b), 0.5f);
}

static vg_status ea_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  vg_scope_begin();
  vg_status st = vg_method_maps_out(ea_forward_maps(mm, images), maps, scores);
  vg_scope_end();
  return st;
}

static char *ea_config_json(const vg_method *mm) {
  const effad *m = (const effad *)mm;
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "method"); vg_jw_string(&w, "efficientad");
  vg_jw_key(&w, "model"); vg_jw_string(&w, m->size == VG_EFFAD_S ? "s" : "m");
  vg_jw_key(&w, "teacher"); vg_jw_string(&w, m->teacher);
  vg_jw_key(&w, "penalty_dir"); vg_jw_string(&w, m->penalty_dir);
  vg_jw_key(&w, "penalty_grey_p"); vg_jw_double(&w, m->penalty_grey_p);
  vg_jw_key(&w, "input_size"); vg_jw_int64(&w, m->input_size);
  vg_jw_key(&w, "out_channels"); vg_jw_int64(&w, m->out_channels);
  vg_jw_key(&w, "p_hard"); vg_jw_double(&w, m->p_hard);
  vg_jw_key(&w, "pad_maps"); vg_jw_bool(&w, m->pad_maps);
  vg_jw_key(&w, "resize"); vg_jw_string(&w, m->float_resize ? "float" : "pil");
  vg_jw_key(&w, "lr"); vg_jw_double(&w, m->lr);
  vg_jw_key(&w, "weight_decay"); vg_jw_double(&w, m->weight_decay);
  vg_jw_key(&w, "lr_step_fraction"); vg_jw_double(&w, m->lr_step_fraction);
  vg_jw_key(&w, "batch_size"); vg_jw_int64(&w, m->batch);
  vg_jw_key(&w, "steps"); vg_jw_int64(&w, m->steps);
  vg_jw_key(&w, "backbone"); vg_jw_string(&w, m->distill_backbone);
  vg_jw_key(&w, "weights"); vg_jw_string(&w, m->distill_weights);
  vg_jw_key(&w, "distill_images"); vg_jw_string(&w, m->distill_images);
  vg_jw_key(&w, "distill_out"); vg_jw_string(&w, m->distill_out);
  vg_jw_key(&w, "distill_iters"); vg_jw_int64(&w, m->distill_iters);
  vg_jw_key(&w, "distill_batch"); vg_jw_int64(&w, m->distill_batch);
  vg_jw_key(&w, "distill_stats_images"); vg_jw_int64(&w, m->distill_stats_images);
  vg_jw_key(&w, "distill_view"); vg_jw_int64(&w, m->distill_view);
  vg_jw_key(&w, "seed"); vg_jw_int64(&w, (int64_t)m->seed);
  vg_jw_end_object(&w);
  return vg_jw_finish(&w, NULL);
}

static vg_status ea_save(const vg_method *mm, const char *path) {
  const effad *m = (const effad *)mm;
  return vg_method_checkpoint_save(mm, m->net, m->opt, path);
}

static vg_status ea_load(vg_method *mm, const char *path) {
  effad *m = (effad *)mm;
  vg_status st = vg_nn_checkpoint_load(path, m->net, m->opt, NULL);
  m->model->stats_flag = -1;
  if (st == VG_OK) q_to_model(m);
  return st;
}

vg_status vg_effad_load_anomalib(vg_method *mm, const char *path) {
  effad *m = (effad *)mm;
  static const char *const strip[] = {"state_dict.", "model.", NULL};
  vg_status st = vg_nn_load_state_pth_prefixed(m->net, path, strip, NULL, "efficientad");
  m->model->stats_flag = -1;
  if (st == VG_OK) q_to_model(m);
  return st;
}

static double ea_current_lr(const vg_method *mm) {
  const effad *m = (const effad *)mm;
  return lr_at(m, ((const int64_t *)vg_data(m->step_buf))[0]);
}

static void ea_free(vg_method *mm) {
  effad *m = (effad *)mm;
  if (!m) return;
  vg_optim_free(m->opt);
  if (m->model) {   /* the container owns the networks and the statistics */
    if (m->net) m->model->teacher = m->model->student = m->model->ae = NULL, m->model->mean = m->model->std = NULL;
    vg_effad_model_free(m->model);
  }
  vg_nn_free(m->net);
  if (m->penalty_open) vg_dataset_free(&m->penalty);
  free(m);
}

static vg_nn_module *ea_module(vg_method *mm) { return ((effad *)mm)->net; }

/* the quantiles (folded into the model's floats) and the step counter are host
 * bookkeeping: they stay on the CPU */
static vg_status ea_to(vg_method *mm, vg_device dev, vg_dtype dt) {
  effad *m = (effad *)mm;
  vg_tensor *host[5] = {m->q[0], m->q[1], m->q[2], m->q[3], m->step_buf};
  vg_status st = vg_method_move(m->net, m->opt, 5, host, dev, dt);
  m->model->stats_flag = -1;
  return st;
}

static const vg_method_ops ea_ops = {
  .name = "efficientad", .fit_begin = ea_fit_begin, .train_step = ea_train_step, .fit_end = ea_fit_end,
  .predict = ea_predict, .finalize = NULL, .save = ea_save, .load = ea_load,
  .config_json = ea_config_json, .current_lr = ea_current_lr, .module = ea_module, .to = ea_to, .forward_maps = ea_forward_maps, .free = ea_free,
};

static bool str_opt(const vg_json *v, char *dst, size_t cap) {
  const char *s = vg_json_as_string(v);
  if (!s || strlen(s) >= cap) return false;
  snprintf(dst, cap, "%s", s);
  return true;
}

static const char *const EA_RANGES[][2] = {
  {"method", "\"efficientad\""}, {"model", "\"s\" or \"m\""}, {"teacher", "a file path"},
  {"penalty_dir", "a folder path"}, {"penalty_grey_p", "a number in [0, 1]"},
  {"input_size", "an integer in [256, 4096], a multiple of 4"}, {"out_channels", "an integer in [1, 4096]"},
  {"p_hard", "a number in [0, 1)"}, {"pad_maps", "true or false"}, {"resize", "\"pil\" or \"float\""},
  {"lr", "a number > 0"}, {"weight_decay", "a number >= 0"}, {"lr_step_fraction", "a number in (0, 1000000]"},
  {"batch_size", "an integer in [1, 4096]"}, {"steps", "an integer in [0, 1000000000]"},
  {"backbone", "a backbone name"}, {"weights", "a file path"}, {"distill_images", "a folder path"},
  {"distill_out", "a file path"}, {"distill_iters", "an integer in [0, 1000000000]"},
  {"distill_batch", "an integer in [1, 4096]"}, {"distill_stats_images", "an integer in [1, 1000000000]"},
  {"distill_view", "an integer in [32, 2048], a multiple of 8"}, {"seed", "an integer in [0, 9223372036854775807]"},
  {NULL, NULL}};

vg_status vg_efficientad_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  effad *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "efficientad: out of memory");
  m->base.ops = &ea_ops;
  m->size = VG_EFFAD_S;
  m->out_channels = 384;
  m->input_size = 256;
  snprintf(m->distill_backbone, sizeof m->distill_backbone, "wide_resnet101_2");
  m->distill_iters = m->distill_batch = m->distill_stats_images = m->distill_view = -1;   /* auto */
  m->lr = 1e-4;
  m->weight_decay = 1e-5;
  m->lr_step_fraction = 0.95;
  m->p_hard = 0.999;
  m->penalty_grey_p = 0.3;
  m->batch = 1;
  m->steps = 70000;
  m->seed = 42;
  m->pad_maps = true;
  int64_t size = m->input_size, oc = m->out_channels, batch = m->batch, seed = (int64_t)m->seed;
  for (int64_t i = 0; cfg && i < vg_json_len(cfg); i++) {
    const char *k = vg_json_key_at(cfg, i);
    const vg_json *v = vg_json_at(cfg, i);
    bool ok;
    const char *s;
    if (!strcmp(k, "method")) ok = (s = vg_json_as_string(v)) && !strcmp(s, "efficientad");
    else if (!strcmp(k, "model")) {
      s = vg_json_as_string(v);
      ok = s && (!strcmp(s, "s") || !strcmp(s, "m") || !strcmp(s, "S") || !strcmp(s, "M"));
      if (ok) m->size = (s[0] == 's' || s[0] == 'S') ? VG_EFFAD_S : VG_EFFAD_M;
    }
    else if (!strcmp(k, "teacher")) ok = str_opt(v, m->teacher, sizeof m->teacher);
    else if (!strcmp(k, "penalty_dir")) ok = str_opt(v, m->penalty_dir, sizeof m->penalty_dir);
    else if (!strcmp(k, "penalty_grey_p")) ok = vg_json_as_double(v, &m->penalty_grey_p) && m->penalty_grey_p >= 0 && m->penalty_grey_p <= 1;
    else if (!strcmp(k, "input_size")) ok = vg_json_as_int64(v, &size) && size >= 256 && size <= 4096 && size % 4 == 0;   /* the AE encoder needs >= 256 */
    else if (!strcmp(k, "out_channels")) ok = vg_json_as_int64(v, &oc) && oc >= 1 && oc <= 4096;
    else if (!strcmp(k, "p_hard")) ok = vg_json_as_double(v, &m->p_hard) && m->p_hard >= 0 && m->p_hard < 1;
    else if (!strcmp(k, "pad_maps")) ok = vg_json_as_bool(v, &m->pad_maps);
    else if (!strcmp(k, "resize")) {
      s = vg_json_as_string(v);
      ok = s && (!strcmp(s, "pil") || !strcmp(s, "float"));
      m->float_resize = ok && !strcmp(s, "float");
    }
    else if (!strcmp(k, "lr")) ok = vg_json_as_double(v, &m->lr) && m->lr > 0;
    else if (!strcmp(k, "weight_decay")) ok = vg_json_as_double(v, &m->weight_decay) && m->weight_decay >= 0;
    else if (!strcmp(k, "lr_step_fraction")) ok = vg_json_as_double(v, &m->lr_step_fraction) && m->lr_step_fraction > 0 && m->lr_step_fraction <= 1e6;
    else if (!strcmp(k, "batch_size")) ok = vg_json_as_int64(v, &batch) && batch >= 1 && batch <= 4096;
    else if (!strcmp(k, "steps")) ok = vg_json_as_int64(v, &m->steps) && m->steps >= 0 && m->steps <= 1000000000;
    else if (!strcmp(k, "backbone")) ok = str_opt(v, m->distill_backbone, sizeof m->distill_backbone);
    else if (!strcmp(k, "weights")) ok = str_opt(v, m->distill_weights, sizeof m->distill_weights);
    else if (!strcmp(k, "distill_images")) ok = str_opt(v, m->distill_images, sizeof m->distill_images);
    else if (!strcmp(k, "distill_out")) ok = str_opt(v, m->distill_out, sizeof m->distill_out);
    else if (!strcmp(k, "distill_iters")) ok = vg_json_as_int64(v, &m->distill_iters) && m->distill_iters >= 0 && m->distill_iters <= 1000000000;
    else if (!strcmp(k, "distill_batch")) ok = vg_json_as_int64(v, &m->distill_batch) && m->distill_batch >= 1 && m->distill_batch <= 4096;
    else if (!strcmp(k, "distill_stats_images")) ok = vg_json_as_int64(v, &m->distill_stats_images) && m->distill_stats_images >= 1 && m->distill_stats_images <= 1000000000;
    else if (!strcmp(k, "distill_view")) ok = vg_json_as_int64(v, &m->distill_view) && m->distill_view >= 32 && m->distill_view <= 2048 && m->distill_view % 8 == 0;
    else if (!strcmp(k, "seed")) ok = vg_json_as_int64(v, &seed) && seed >= 0;
    else {
      free(m);
      return vg_fail(VG_ERR_ARG, "efficientad: unknown config key '%s' (known: model, teacher, penalty_dir, "
                     "penalty_grey_p, input_size, out_channels, p_hard, pad_maps, resize, lr, weight_decay, lr_step_fraction, "
                     "batch_size, steps, backbone, weights, distill_images, distill_out, distill_iters, distill_batch, "
                     "distill_stats_images, distill_view, seed)", k);
    }
    if (!ok) { free(m); return vg_method_bad_value("efficientad", k, v, EA_RANGES); }
  }
  m->input_size = (int)size;
  m->out_channels = oc;
  /* distillation schedule: the paper's (60000 x 16, 10000 statistics images, view =
   * input size) with pretrained extractor weights; without them a short smoke
   * distillation from the random extractor (a pipeline check, not a useful teacher) */
  bool smoke = !m->distill_weights[0];
  if (m->distill_iters < 0) m->distill_iters = smoke ? 8 : 60000;
  if (m->distill_batch < 0) m->distill_batch = smoke ? 2 : 16;
  if (m->distill_stats_images < 0) m->distill_stats_images = smoke ? 4 : 10000;
  if (m->distill_view < 0) m->distill_view = smoke ? 128 : size;
  m->batch = batch;
  m->seed = (uint64_t)seed;
  {  /* memory before any allocation: teacher (frozen) + student (2 x out_channels) + autoencoder,
      * and their first maps at the input size (PDN-S 128, PDN-M 256 channels at S x S) */
    bool mm = m->size != VG_EFFAD_S;
    double o = (double)oc, S = (double)size, c1 = mm ? 256 : 128;
    double body = mm ? 48 * 256 + 4096 * 512 + 512 * 512 + 4608 * 512 : 48 * 128 + 2048 * 256 + 2304 * 256;
    double last = mm ? 8192 : 4096, teacher = body + last * o + (mm ? o * o : 0);
    double student = body + last * 2 * o + (mm ? 4 * o * o : 0), ae = 1.5e6 + 576 * o;
    double act = 6 * c1 * S * S + 8 * o * (S / 4) * (S / 4);
    char keys[120];
    snprintf(keys, sizeof keys, "input_size %lld, out_channels %lld (model %s)", (long long)size, (long long)oc,
             mm ? "m" : "s");
    vg_status cs = vg_method_check_memory("efficientad", keys, student + ae, teacher, act);
    if (cs != VG_OK) { free(m); return cs; }
  }
  m->model = vg_effad_model_new(m->size, oc, false, m->seed * 7919 + 3);
  if (!m->model) { free(m); return vg_fail(VG_ERR_NOMEM, "efficientad: out of memory"); }
  m->model->pad_maps = m->pad_maps;
  m->model->p_hard = (float)m->p_hard;
  vg_effad_init_uniform(m->model->teacher, m->seed * 7919 + 5);
  vg_effad_init_uniform(m->model->student, m->seed * 7919 + 1005);
  vg_effad_init_uniform(m->model->ae, m->seed * 7919 + 2005);

  m->net = vg_nn_module_new("EfficientAdModel", NULL, NULL, NULL);
  vg_nn_add_child(m->net, "teacher", m->model->teacher);
  vg_nn_add_child(m->net, "student", m->model->student);
  vg_nn_add_child(m->net, "ae", m->model->ae);
  vg_nn_module *ms = vg_nn_module_new("ParameterDict", NULL, NULL, NULL);
  vg_nn_add_buffer(ms, "mean", m->model->mean);
  vg_nn_add_buffer(ms, "std", m->model->std);
  vg_nn_add_child(m->net, "mean_std", ms);
  vg_nn_module *qs = vg_nn_module_new("ParameterDict", NULL, NULL, NULL);
  for (int i = 0; i < 4; i++) {
    m->q[i] = vg_tensor_new(VG_F32, 0, NULL);
    vg_nn_add_buffer(qs, QNAMES[i], m->q[i]);
  }
  vg_nn_add_child(m->net, "quantiles", qs);
  m->step_buf = vg_tensor_new(VG_I64, 1, (int64_t[]){1});
  vg_nn_add_buffer(m->net, "vigil_step", m->step_buf);

  /* Adam over student + autoencoder (anomalib / nelson1425) */
  vg_optim_hparams hp = vg_optim_defaults(VG_OPTIM_ADAM, m->lr);
  hp.weight_decay = m->weight_decay;
  m->opt = vg_optim_new(VG_OPTIM_ADAM, hp);
  vg_nn_list a = vg_nn_named_parameters(m->model->student), b = vg_nn_named_parameters(m->model->ae);
  vg_tensor **ps = malloc(sizeof(vg_tensor *) * (size_t)(a.n + b.n + 1));
  int np = 0;
  for (int i = 0; i < a.n; i++) ps[np++] = a.tensors[i];
  for (int i = 0; i < b.n; i++) ps[np++] = b.tensors[i];
  int g = ps ? vg_optim_add_group(m->opt, np, ps, NULL) : -1;
  free(ps);
  vg_nn_list_free(&a);
  vg_nn_list_free(&b);
  if (g < 0) { ea_free(&m->base); return vg_fail(VG_ERR_NOMEM, "efficientad: optimizer"); }
  m->cur_lr = m->lr;
  m->base.input_h = m->base.input_w = m->input_size;
  m->base.train_channels = 3;
  m->base.train_batch = (int)m->batch;
  m->base.default_steps = m->steps;
  m->base.train_transform = m->base.test_transform = m->float_resize ? vg_image_float_transform : vg_default_transform;
  /* no pretrained weights anywhere = numbers not comparable to the paper */
  m->base.random_backbone = !strcmp(m->teacher, "random") || (!m->teacher[0] && !m->distill_weights[0]);
  *out = &m->base;
  return VG_OK;
}
