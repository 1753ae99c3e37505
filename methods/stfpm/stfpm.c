/* stfpm.c — STFPM on the method contract (stfpm.h). */
#include "methods/stfpm/stfpm.h"
#include "autograd/autograd.h"
#include "datasets/image/image.h"
#include "nn/backbones/backbones.h"
#include "nn/checkpoint.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_method base;
  /* config */
  char backbone_name[64], weights[1024];
  int size, batch;
  bool float_resize;
  double lr, momentum, weight_decay;
  int64_t steps;
  uint64_t seed;
  /* state */
  vg_nn_module *net;            /* teacher_model.feature_extractor, student_model.feature_extractor */
  vg_nn_module *teacher, *student;
  vg_optim *opt;
  vg_tensor *step_buf;          /* "vigil_step": i64 (1) */
} stfpm;

static const char *const BACKBONES[] = {"resnet18", "wide_resnet50_2", NULL};

vg_nn_module *vg_stfpm_module(vg_method *m) { return ((stfpm *)m)->net; }
vg_nn_module *vg_stfpm_teacher(vg_method *m) { return ((stfpm *)m)->teacher; }
vg_nn_module *vg_stfpm_student(vg_method *m) { return ((stfpm *)m)->student; }

static vg_status check_input(const stfpm *m, const vg_tensor *x) {
  if (x && x->ndim == 4 && x->shape[1] == 3 && x->shape[2] == m->size && x->shape[3] == m->size) return VG_OK;
  char b[96];
  return vg_fail(VG_ERR_ARG, "stfpm: images must be N x 3 x %d x %d (got %s)", m->size, m->size,
                 x ? vg_shape_str(x, b, sizeof b) : "NULL");
}

vg_status vg_stfpm_features(vg_method *mm, const vg_tensor *x, vg_tensor **t, vg_tensor **s) {
  stfpm *m = (stfpm *)mm;
  vg_status st = check_input(m, x);
  if (st != VG_OK) return st;
  x = vg_method_input(mm, x);
  if (!x) return vg_fail_prefix("stfpm: input");
  vg_no_grad_begin();   /* the teacher: frozen, eval mode (anomalib runs it under no_grad) */
  st = vg_resnet_features(m->teacher, x, t);
  vg_no_grad_end();
  if (st == VG_OK) st = vg_resnet_features(m->student, x, s);
  return st;
}

/* F.normalize over channels: x / max(|x|_2, 1e-12), written as x / sqrt(max(sum x^2, 1e-24))
 * (the same values; the clamp's gradient is 0 where it binds, so an all-zero feature vector
 * gets a zero gradient instead of sqrt's infinite one) */
static vg_tensor *l2_normalize(const vg_tensor *x) {
  vg_tensor *n2 = vg_sum(vg_mul(x, x), 1, (int[]){1}, true);
  return vg_div(x, vg_sqrt(vg_clamp(n2, 1e-24f, INFINITY)));
}

static vg_tensor *sq_diff(const vg_tensor *t, const vg_tensor *s) {
  const vg_tensor *tf = t && t->dtype != VG_F32 ? vg_cast(t, VG_F32) : t;   /* f16 inference: tail in f32 */
  const vg_tensor *sf = s && s->dtype != VG_F32 ? vg_cast(s, VG_F32) : s;
  vg_tensor *d = vg_sub(l2_normalize(tf), l2_normalize(sf));
  return vg_mul(d, d);
}

vg_tensor *vg_stfpm_layer_map(const vg_tensor *t, const vg_tensor *s) {
  return vg_scale(vg_sum(sq_diff(t, s), 1, (int[]){1}, true), 0.5f);
}

vg_tensor *vg_stfpm_loss(int n, vg_tensor *const *t, vg_tensor *const *s) {
  vg_tensor *loss = NULL;
  for (int l = 0; l < n; l++) {
    if (!t[l] || !s[l] || t[l]->ndim != 4) return NULL;
    double hw = (double)t[l]->shape[2] * (double)t[l]->shape[3];
    vg_tensor *ll = vg_scale(vg_sum_all(sq_diff(t[l], s[l])), (float)(0.5 / hw));
    loss = loss ? vg_add(loss, ll) : ll;
  }
  return loss;
}

vg_tensor *vg_stfpm_anomaly_map(int n, vg_tensor *const *t, vg_tensor *const *s, int64_t h, int64_t w) {
  vg_tensor *map = NULL;
  for (int l = 0; l < n; l++) {
    vg_tensor *up = vg_interpolate_bilinear(vg_stfpm_layer_map(t[l], s[l]), h, w, false);
    map = map ? vg_mul(map, up) : up;
  }
  return map;
}

static vg_status st_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  stfpm *m = (stfpm *)mm;
  if (mm->dtype != VG_F32) return vg_fail(VG_ERR_ARG, "stfpm: training computes in f32 (f16 is for inference)");
  vg_scope_begin();
  vg_nn_train(m->student, true);   /* batch statistics; the teacher stays in eval mode */
  vg_optim_zero_grad(m->opt);
  vg_tensor *t[VG_STFPM_LAYERS], *s[VG_STFPM_LAYERS];
  vg_status st = vg_stfpm_features(mm, images, t, s);
  if (st == VG_OK) {
    vg_tensor *l = vg_stfpm_loss(VG_STFPM_LAYERS, t, s);
    if (!l) st = vg_fail_prefix("stfpm: loss");
    else {
      *loss = vg_item(l);
      if (!isfinite(*loss)) st = vg_fail(VG_ERR_NUMERIC, "stfpm: non-finite loss at step %lld", (long long)step);
      else st = vg_backward(l);
    }
    if (st == VG_OK) {
      vg_optim_step(m->opt);
      ((int64_t *)vg_data(m->step_buf))[0]++;
    }
  }
  vg_nn_train(m->student, false);
  vg_scope_end();
  return st;
}

/* N x 1 x H x W maps on the method's device, in the current scope (predict and graphs) */
static vg_tensor *st_forward_maps(vg_method *mm, const vg_tensor *images) {
  stfpm *m = (stfpm *)mm;
  vg_tensor *t[VG_STFPM_LAYERS], *s[VG_STFPM_LAYERS], *map = NULL;
  vg_nn_train(m->student, false);
  vg_no_grad_begin();
  if (vg_stfpm_features(mm, images, t, s) == VG_OK)
    map = vg_stfpm_anomaly_map(VG_STFPM_LAYERS, t, s, m->size, m->size);
  vg_no_grad_end();
  return map;
}

static vg_status st_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  vg_scope_begin();
  vg_status st = vg_method_maps_out(st_forward_maps(mm, images), maps, scores);
  vg_scope_end();
  return st;
}

static const char *const RESIZE[] = {"pil", "float", NULL};

static const vg_cfg_field STFPM_CONFIG[] = {
  {"backbone", VG_CFG_STR, VG_CFG_AT(stfpm, backbone_name), .sdef = "resnet18", .flags = VG_CFG_IDENT,
   .want = "a backbone name", .help = "resnet18 | wide_resnet50_2 (teacher and student, layer1..3)"},
  {"weights", VG_CFG_STR, VG_CFG_AT(stfpm, weights), .want = "a file path (< 1024 bytes)",
   .help = "torchvision weights of the teacher (.pth / .safetensors); \"\" = random teacher"},
  {"input_size", VG_CFG_INT, VG_CFG_AT(stfpm, size), .idef = 256, .ilo = 32, .ihi = 4096, .imul = 16,
   .help = "side of the square input image"},
  {"resize", VG_CFG_ENUM, VG_CFG_AT(stfpm, float_resize), .idef = 1, .choices = RESIZE,
   .help = "float: anomalib 2.x's float antialiased bilinear; pil: Pillow's 8-bit resize"},
  {"lr", VG_CFG_NUM, VG_CFG_AT(stfpm, lr), .def = 0.4, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI,
   .help = "SGD learning rate (anomalib: 0.4)"},
  {"momentum", VG_CFG_NUM, VG_CFG_AT(stfpm, momentum), .def = 0.9, .lo = 0, .hi = 1, .flags = VG_CFG_HI_OPEN,
   .help = "SGD momentum (dampening 0)"},
  {"weight_decay", VG_CFG_NUM, VG_CFG_AT(stfpm, weight_decay), .def = 1e-3, .lo = 0, .flags = VG_CFG_NO_HI,
   .help = "SGD weight decay (L2 added to the gradient, as torch.optim.SGD)"},
  {"batch_size", VG_CFG_INT, VG_CFG_AT(stfpm, batch), .idef = 32, .ilo = 1, .ihi = 4096, .help = "training batch"},
  {"steps", VG_CFG_INT, VG_CFG_AT(stfpm, steps), .idef = 1000, .ilo = 0, .ihi = 1000000000,
   .help = "training steps (anomalib: up to 100 epochs with early stopping)"},
  {"seed", VG_CFG_INT, VG_CFG_AT(stfpm, seed), .idef = 0, .ilo = 0, .ihi = INT64_MAX,
   .help = "initialisation seed (random teacher, student)"},
  {NULL}};

static char *st_config_json(const vg_method *mm) { return vg_cfg_json("stfpm", STFPM_CONFIG, mm); }

static vg_status st_save(const vg_method *mm, const char *path) {
  const stfpm *m = (const stfpm *)mm;
  return vg_method_checkpoint_save(mm, m->net, m->opt, path);
}

static vg_status st_load(vg_method *mm, const char *path) {
  stfpm *m = (stfpm *)mm;
  return vg_nn_checkpoint_load(path, m->net, m->opt, NULL);
}

static double st_current_lr(const vg_method *mm) { return vg_optim_get_lr(((const stfpm *)mm)->opt, 0); }

static vg_nn_module *st_module(vg_method *mm) { return ((stfpm *)mm)->net; }

static void st_free(vg_method *mm) {
  stfpm *m = (stfpm *)mm;
  if (!m) return;
  vg_optim_free(m->opt);
  vg_nn_free(m->net);
  free(m);
}

/* the step counter is host bookkeeping: it stays on the CPU */
static vg_status st_to(vg_method *mm, vg_device dev, vg_dtype dt) {
  stfpm *m = (stfpm *)mm;
  return vg_method_move(m->net, m->opt, 1, &m->step_buf, dev, dt);
}

static const vg_method_ops st_ops = {
  .name = "stfpm", .fit_begin = NULL, .train_step = st_train_step, .fit_end = NULL,
  .predict = st_predict, .finalize = NULL, .save = st_save, .load = st_load,
  .config_json = st_config_json, .current_lr = st_current_lr, .module = st_module, .to = st_to,
  .forward_maps = st_forward_maps, .free = st_free,
};

/* timm's ResNet init_weights(zero_init_last=True): the last BN of every residual block
 * (BasicBlock bn2, Bottleneck bn3) starts with weight 0 */
static void zero_init_last(vg_nn_module *net, bool bottleneck) {
  vg_nn_list ps = vg_nn_named_parameters(net);
  const char *want = bottleneck ? ".bn3.weight" : ".bn2.weight";
  size_t wl = strlen(want);
  for (int i = 0; i < ps.n; i++) {
    size_t n = strlen(ps.names[i]);
    if (!strncmp(ps.names[i], "layer", 5) && n > wl && !strcmp(ps.names[i] + n - wl, want)) vg_fill_(ps.tensors[i], 0.0);
  }
  vg_nn_list_free(&ps);
}

/* wraps a ResNet as anomalib's TimmFeatureExtractor ("<name>.feature_extractor.*") */
static vg_nn_module *add_extractor(vg_nn_module *net, const char *name, vg_nn_module *resnet) {
  vg_nn_module *w = vg_nn_module_new("TimmFeatureExtractor", NULL, NULL, NULL);
  if (!w) { vg_nn_free(resnet); return NULL; }
  vg_nn_add_child(w, "feature_extractor", resnet);
  vg_nn_add_child(net, name, w);
  return resnet;
}

vg_status vg_stfpm_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  stfpm *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "stfpm: out of memory");
  vg_cfg_defaults(STFPM_CONFIG, m);
  vg_status st = vg_cfg_parse("stfpm", STFPM_CONFIG, cfg, m);
  if (st != VG_OK) { free(m); return st; }
  char bb[sizeof m->backbone_name];   /* a copy: the error paths below free m before naming it */
  snprintf(bb, sizeof bb, "%s", m->backbone_name);
  int bbi = -1;
  for (int i = 0; BACKBONES[i]; i++) if (!strcmp(bb, BACKBONES[i])) bbi = i;
  if (bbi < 0) { free(m); return vg_fail(VG_ERR_ARG, "stfpm: unknown backbone '%s' (resnet18, wide_resnet50_2)", bb); }
  {  /* memory before any allocation: teacher frozen, student trained (up to layer3) */
    static const int ch18[4] = {64, 128, 256, 512}, ch50[4] = {256, 512, 1024, 2048};
    double params = bbi == 0 ? 2.78e6 : 22.4e6, S = (double)m->size;
    char keys[128];
    snprintf(keys, sizeof keys, "input_size %d (backbone %s)", m->size, bb);
    st = vg_method_check_memory("stfpm", keys, params, params, vg_method_resnet_act(S, bbi == 0 ? ch18 : ch50, 2) * 3);
    if (st != VG_OK) { free(m); return st; }
  }
  m->base.ops = &st_ops;
  unsigned mask = VG_RESNET_LAYER1 | VG_RESNET_LAYER2 | VG_RESNET_LAYER3;
  m->net = vg_nn_module_new("STFPMModel", NULL, NULL, NULL);
  if (!m->net) { free(m); return vg_fail(VG_ERR_NOMEM, "stfpm: out of memory"); }
  m->teacher = add_extractor(m->net, "teacher_model", vg_resnet_new(bb, mask, m->seed * 7919 + 1));
  m->student = m->teacher ? add_extractor(m->net, "student_model", vg_resnet_new(bb, mask, m->seed * 7919 + 2)) : NULL;
  if (!m->teacher || !m->student) { st_free(&m->base); return vg_last_status() != VG_OK ? vg_last_status() : VG_ERR_ARG; }
  if (m->weights[0]) {
    st = vg_nn_load_state_file(m->teacher, m->weights, false);
    if (st != VG_OK) { st = vg_fail_prefix("stfpm: teacher weights"); st_free(&m->base); return st; }
  }
  m->base.random_backbone = !m->weights[0];
  vg_nn_train(m->teacher, false);
  vg_nn_requires_grad(m->teacher, false);
  zero_init_last(m->student, bbi != 0);
  vg_nn_requires_grad(m->student, true);
  vg_nn_train(m->student, false);   /* train_step switches it on for its own forward */

  m->step_buf = vg_tensor_new(VG_I64, 1, (int64_t[]){1});
  memset(vg_data(m->step_buf), 0, sizeof(int64_t));
  vg_nn_add_buffer(m->net, "vigil_step", m->step_buf);
  vg_optim_hparams hp = vg_optim_defaults(VG_OPTIM_SGD, m->lr);
  hp.momentum = m->momentum;
  hp.dampening = 0;
  hp.weight_decay = m->weight_decay;
  m->opt = vg_optim_new(VG_OPTIM_SGD, hp);
  vg_nn_list ps = vg_nn_named_parameters(m->student);
  if (!m->opt || vg_optim_add_group(m->opt, ps.n, ps.tensors, NULL) < 0) st = vg_fail_prefix("stfpm: optimizer");
  vg_nn_list_free(&ps);
  if (st != VG_OK) { st_free(&m->base); return st; }
  m->base.input_h = m->base.input_w = m->size;
  m->base.train_channels = 3;
  m->base.train_batch = m->batch;
  m->base.default_steps = m->steps;
  m->base.train_transform = m->base.test_transform =
    m->float_resize ? vg_image_float_imagenet_transform : vg_imagenet_transform;
  *out = &m->base;
  return VG_OK;
}

const vg_method_def vg_method_stfpm = {
  .name = "stfpm", .summary = "STFPM (Wang et al. 2021) as anomalib's STFPMModel: student-teacher feature pyramid matching",
  .create = vg_stfpm_new, .config = STFPM_CONFIG, .quick = {16, 8, NULL},
};
