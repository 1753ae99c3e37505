/* method.c — EfficientAD on the method contract (methods/method.h): teacher setup
 * (published weights, a distilled teacher, or distillation on the spot), Algorithm 1
 * training with the ImageNet penalty and the AE augmentation, quantile normalisation on
 * the validation split and Algorithm 2 inference. Laid out as anomalib's
 * EfficientAdModel (teacher/student/ae, mean_std.{mean,std}, quantiles.{qa_st,...}) so
 * its checkpoints load by name.
 *
 * Every random draw of a training step (augmentation kind and factor, penalty image and
 * its greyscale coin, dropout masks) is a function of (seed, step), so `--resume`
 * continues the identical stream.
 *
 * Paper ablations: q_a / q_b (Table 3) are the quantile levels of the map normalisation;
 * map_norm_ablation "without_map_normalization" is Tables 4 / 5's Gaussian baseline (stored
 * in the same four quantile floats, see efficientad.h); p_hard 0 = "without hard feature
 * loss", penalty_dir "" = "without pretraining penalty". */
#include "methods/efficientad/efficientad.h"
#include "methods/efficientad/distill.h"
#include "autograd/autograd.h"
#include "datasets/image/image.h"
#include "nn/backbones/backbones.h"
#include "nn/checkpoint.h"
#include "nn/pth.h"
#include "methods/anomalib_import.h"
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
  double q_a, q_b;            /* map normalisation quantile levels (paper Table 3) */
  int map_norm_ablation;      /* MAP_NORM_ABL: 0 none, 1 without_map_normalization (Gaussian) */
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

static const char *const MODEL[] = {"s", "m", NULL}, *const RESIZE[] = {"pil", "float", NULL};
/* the normalisation rows of the paper's ablations (Table 4 "PDN" / Table 5 "Without map normalization"
 * use the Gaussian baseline); the other rows are p_hard = 0 ("without hard feature loss") and
 * penalty_dir "" ("without pretraining penalty") */
static const char *const MAP_NORM_ABL[] = {"none", "without_map_normalization", NULL};

static const vg_cfg_field EA_CONFIG[] = {
  {"model", VG_CFG_ENUM, VG_CFG_AT(effad, size), .idef = VG_EFFAD_S, .choices = MODEL, .flags = VG_CFG_NOCASE | VG_CFG_IDENT,
   .help = "PDN size: s (small) or m (medium)"},
  {"teacher", VG_CFG_STR, VG_CFG_AT(effad, teacher), .want = "a file path",
   .help = "teacher PDN weights (.pth / .safetensors); \"\" = distil one in fit_begin; \"random\" = keep a random PDN"},
  {"penalty_dir", VG_CFG_STR, VG_CFG_AT(effad, penalty_dir), .want = "a folder path",
   .help = "ImageNet-like images of the student's penalty loss (\"\" = none)"},
  {"penalty_grey_p", VG_CFG_NUM, VG_CFG_AT(effad, penalty_grey_p), .def = 0.3, .lo = 0, .hi = 1,
   .help = "probability of a greyscale penalty image"},
  {"input_size", VG_CFG_INT, VG_CFG_AT(effad, input_size), .idef = 256, .ilo = 256, .ihi = 4096, .imul = 4,
   .help = "side of the square input image (the autoencoder needs >= 256)"},
  {"out_channels", VG_CFG_INT, VG_CFG_AT(effad, out_channels), .idef = 384, .ilo = 1, .ihi = 4096,
   .help = "teacher / student feature channels"},
  {"p_hard", VG_CFG_NUM, VG_CFG_AT(effad, p_hard), .def = 0.999, .lo = 0, .hi = 1, .flags = VG_CFG_HI_OPEN,
   .help = "hard-feature quantile of the student loss"},
  {"pad_maps", VG_CFG_BOOL, VG_CFG_AT(effad, pad_maps), .idef = true, .help = "pad the maps by 4 (unpadded PDN convolutions)"},
  {"resize", VG_CFG_ENUM, VG_CFG_AT(effad, float_resize), .idef = 0, .choices = RESIZE,
   .help = "pil: Pillow's 8-bit resize (the official repos); float: anomalib 2.x's float antialiased bilinear"},
  {"lr", VG_CFG_NUM, VG_CFG_AT(effad, lr), .def = 1e-4, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI,
   .help = "Adam learning rate"},
  {"weight_decay", VG_CFG_NUM, VG_CFG_AT(effad, weight_decay), .def = 1e-5, .lo = 0, .flags = VG_CFG_NO_HI,
   .help = "Adam weight decay"},
  {"lr_step_fraction", VG_CFG_NUM, VG_CFG_AT(effad, lr_step_fraction), .def = 0.95, .lo = 0, .hi = 1e6,
   .flags = VG_CFG_LO_OPEN, .help = "lr x0.1 from step int(lr_step_fraction * steps)"},
  {"batch_size", VG_CFG_INT, VG_CFG_AT(effad, batch), .idef = 1, .ilo = 1, .ihi = 4096, .help = "training batch"},
  {"steps", VG_CFG_INT, VG_CFG_AT(effad, steps), .idef = 70000, .ilo = 0, .ihi = 1000000000, .help = "training steps"},
  {"backbone", VG_CFG_STR, VG_CFG_AT(effad, distill_backbone), .sdef = "wide_resnet101_2", .want = "a backbone name",
   .help = "the distillation's feature extractor"},
  {"weights", VG_CFG_STR, VG_CFG_AT(effad, distill_weights), .want = "a file path",
   .help = "the distillation extractor's weights (\"\" = none: a smoke distillation)"},
  {"distill_images", VG_CFG_STR, VG_CFG_AT(effad, distill_images), .want = "a folder path",
   .help = "distillation images (\"\" = penalty_dir, else the training images)"},
  {"distill_out", VG_CFG_STR, VG_CFG_AT(effad, distill_out), .want = "a file path",
   .help = "where the distilled teacher goes (\"\" = a temp file)"},
  {"distill_iters", VG_CFG_INT, VG_CFG_AT(effad, distill_iters), .idef = -1, .ilo = 0, .ihi = 1000000000,
   .flags = VG_CFG_AUTO, .help = "distillation steps (auto: 60000 with weights, 8 without)"},
  {"distill_batch", VG_CFG_INT, VG_CFG_AT(effad, distill_batch), .idef = -1, .ilo = 1, .ihi = 4096,
   .flags = VG_CFG_AUTO, .help = "distillation batch (auto: 16 with weights, 2 without)"},
  {"distill_stats_images", VG_CFG_INT, VG_CFG_AT(effad, distill_stats_images), .idef = -1, .ilo = 1, .ihi = 1000000000,
   .flags = VG_CFG_AUTO, .help = "images of the extractor statistics (auto: 10000 with weights, 4 without)"},
  {"distill_view", VG_CFG_INT, VG_CFG_AT(effad, distill_view), .idef = -1, .ilo = 32, .ihi = 2048, .imul = 8,
   .flags = VG_CFG_AUTO, .help = "distillation crop size (auto: input_size with weights, 128 without)"},
  {"seed", VG_CFG_INT, VG_CFG_AT(effad, seed), .idef = 42, .ilo = 0, .ihi = INT64_MAX, .help = "initialisation seed"},
  {"q_a", VG_CFG_NUM, VG_CFG_AT(effad, q_a), .def = 0.9, .lo = 0, .hi = 1, .flags = VG_CFG_HI_OPEN,
   .help = "map normalisation: the validation quantile mapped to 0 (paper Table 3's a; < q_b)"},
  {"q_b", VG_CFG_NUM, VG_CFG_AT(effad, q_b), .def = 0.995, .lo = 0, .hi = 1, .flags = VG_CFG_LO_OPEN,
   .help = "map normalisation: the validation quantile mapped to 0.1 (paper Table 3's b; > q_a)"},
  {"map_norm_ablation", VG_CFG_ENUM, VG_CFG_AT(effad, map_norm_ablation), .idef = 0, .choices = MAP_NORM_ABL,
   .help = "none: the quantile normalisation; without_map_normalization: the paper's Tables 4/5 baseline (validation "
           "pixels to mean 0, variance 1). Other ablation rows: p_hard=0 (no hard feature loss), penalty_dir \"\" "
           "(no pretraining penalty)"},
  {NULL}};

static char *ea_config_json(const vg_method *mm) { return vg_cfg_json("efficientad", EA_CONFIG, mm); }

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

vg_status vg_efficientad_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  effad *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "efficientad: out of memory");
  m->base.ops = &ea_ops;
  vg_cfg_defaults(EA_CONFIG, m);
  vg_status pst = vg_cfg_parse("efficientad", EA_CONFIG, cfg, m);
  if (pst != VG_OK) { free(m); return pst; }
  int64_t size = m->input_size, oc = m->out_channels;
  if (!(m->q_a < m->q_b)) {
    double qa = m->q_a, qb = m->q_b;
    free(m);
    return vg_fail(VG_ERR_ARG, "efficientad: q_a %g must be below q_b %g (the quantiles mapped to 0 and 0.1)", qa, qb);
  }
  /* distillation schedule: the paper's (60000 x 16, 10000 statistics images, view =
   * input size) with pretrained extractor weights; without them a short smoke
   * distillation from the random extractor (a pipeline check, not a useful teacher) */
  bool smoke = !m->distill_weights[0];
  if (m->distill_iters < 0) m->distill_iters = smoke ? 8 : 60000;
  if (m->distill_batch < 0) m->distill_batch = smoke ? 2 : 16;
  if (m->distill_stats_images < 0) m->distill_stats_images = smoke ? 4 : 10000;
  if (m->distill_view < 0) m->distill_view = smoke ? 128 : size;
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
  m->model->q_a = m->q_a;
  m->model->q_b = m->q_b;
  m->model->gaussian_norm = m->map_norm_ablation == 1;
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

/* ---------------------------------------------------------------- anomalib import
 * The structural config keys of an anomalib checkpoint, read off its tensors
 * (methods/anomalib_import.h; `vigil predict --from-anomalib`). */
static vg_status ea_anomalib_infer(vg_anomalib_infer *f) {
  const vg_pth_dict *d = f->d;
  const vg_tensor *c1 = vg_anomalib_tensor(d, "teacher.conv1.weight");
  if (!c1) return vg_fail(VG_ERR_FORMAT, "efficientad: teacher.conv1.weight missing: not an anomalib EfficientAd checkpoint");
  bool med = vg_anomalib_tensor(d, "teacher.conv5.weight") != NULL;
  char v[64], why[256];
  snprintf(why, sizeof why, "teacher.conv5.weight is %s", med ? "present" : "absent");
  vg_status st = vg_anomalib_put(f, "model", med ? "\"m\"" : "\"s\"", vg_anomalib_same_ci_string, why);
  if (st != VG_OK) return st;
  const vg_tensor *last = vg_anomalib_tensor(d, med ? "teacher.conv6.weight" : "teacher.conv4.weight");
  if (!last) return vg_fail(VG_ERR_FORMAT, "efficientad: no teacher.%s.weight", med ? "conv6" : "conv4");
  snprintf(v, sizeof v, "%lld", (long long)vg_anomalib_dim(last, 0));
  snprintf(why, sizeof why, "teacher.%s.weight has %lld outputs", med ? "conv6" : "conv4", (long long)vg_anomalib_dim(last, 0));
  return vg_anomalib_put(f, "out_channels", v, vg_anomalib_same_int, why);
}


/* bench (cli/bench.c) on a fresh method: normalisation statistics set, as after training,
 * so the folded multiply-add runs */
static void ea_bench_prepare(vg_method *mm) {
  vg_effad_model *em = vg_effad_method_model(mm);
  vg_uniform_(em->mean, -0.1f, 0.1f, 11);
  vg_uniform_(em->std, 0.5f, 1.5f, 12);
  em->qa_st = 0.01f; em->qb_st = 0.2f; em->qa_ae = 0.02f; em->qb_ae = 0.3f;
}

const vg_method_def vg_method_efficientad = {
  .name = "efficientad", .summary = "EfficientAD (Batzner et al. 2024), PDN-S / PDN-M, as anomalib's EfficientAdModel",
  .create = vg_efficientad_new, .config = EA_CONFIG, .quick = {40, 1, NULL},
  .anomalib_infer = ea_anomalib_infer, .anomalib_load = vg_effad_load_anomalib, .anomalib_backbone = NULL,
  .bench_prepare = ea_bench_prepare,
};
