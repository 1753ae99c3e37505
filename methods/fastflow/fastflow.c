/* fastflow.c — FastFlow on the method contract (fastflow.h). */
#include "methods/fastflow/fastflow.h"
#include "autograd/autograd.h"
#include "datasets/image/image.h"
#include "flows/flows.h"
#include "nn/backbones/backbones.h"
#include "nn/checkpoint.h"
#include "nn/pth.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vg_method base;
  /* config */
  vg_fastflow_backbone backbone;
  char weights[1024];
  int size, flow_steps, batch;
  bool conv3x3_only;
  bool float_resize;          /* config "resize": "float" (anomalib 2.x) or "pil" */
  double hidden_ratio, lr, weight_decay;
  int64_t steps;
  uint64_t seed;
  /* state */
  vg_nn_module *net;               /* feature_extractor, norms, fast_flow_blocks */
  vg_nn_module *fe, *norms[VG_FASTFLOW_MAX_SCALES], *flows[VG_FASTFLOW_MAX_SCALES];
  int nscales;
  vg_optim *opt;
  vg_tensor *step_buf;             /* "vigil_step": i64 (1) */
} fastflow;

static const char *const BACKBONES[] = {"resnet18", "wide_resnet50_2", "cait_m48_448",
                                        "deit_base_distilled_patch16_384"};

vg_nn_module *vg_fastflow_module(vg_method *m) { return ((fastflow *)m)->net; }
int vg_fastflow_num_scales(const vg_method *m) { return ((const fastflow *)m)->nscales; }

/* Feature-extractor seam: CNN taps layer1..3. Transformer backbones would add a branch. */
static vg_status ff_features(fastflow *m, const vg_tensor *x, vg_tensor **f) {
  switch (m->backbone) {
  case VG_FASTFLOW_RESNET18:
  case VG_FASTFLOW_WIDE_RESNET50_2: {
    vg_no_grad_begin();
    vg_status st = vg_resnet_features(m->fe, x, f);
    vg_no_grad_end();
    if (st != VG_OK) return st;
    for (int s = 0; s < m->nscales; s++) f[s] = vg_nn_forward(m->norms[s], f[s]);
    return VG_OK;
  }
  case VG_FASTFLOW_CAIT_M48_448:
  case VG_FASTFLOW_DEIT_BASE_DISTILLED_384:
    break;
  }
  return vg_fail(VG_ERR_ARG, "fastflow: backbone '%s' is not implemented", BACKBONES[m->backbone]);
}

vg_status vg_fastflow_forward(vg_method *mm, const vg_tensor *x, vg_tensor **z, vg_tensor **logdet) {
  fastflow *m = (fastflow *)mm;
  if (x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != m->size || x->shape[3] != m->size)
  {
    char b[96];
    return vg_fail(VG_ERR_ARG, "fastflow: images must be N x 3 x %d x %d (got %s)", m->size, m->size,
                   vg_shape_str(x, b, sizeof b));
  }
  vg_tensor *f[VG_FASTFLOW_MAX_SCALES];
  x = vg_method_input(mm, x);
  vg_status st = ff_features(m, x, f);
  if (st != VG_OK) return st;
  for (int s = 0; s < m->nscales; s++) {
    z[s] = vg_flow_forward(m->flows[s], f[s], 0, NULL, false, true, &logdet[s]);
    if (!z[s]) return VG_ERR_ARG;
  }
  return VG_OK;
}

vg_tensor *vg_fastflow_loss(int n, vg_tensor *const *z, vg_tensor *const *logdet) {
  vg_tensor *loss = NULL;
  for (int s = 0; s < n; s++) {
    /* mean_batch(0.5 * sum_chw z^2 - logdet) */
    vg_tensor *sq = vg_sum(vg_mul(z[s], z[s]), 3, (int[]){1, 2, 3}, false);
    vg_tensor *l = vg_mean_all(vg_sub(vg_scale(sq, 0.5f), logdet[s]));
    loss = loss ? vg_add(loss, l) : l;
  }
  return loss;
}

vg_tensor *vg_fastflow_anomaly_map(int n, vg_tensor *const *z, int64_t h, int64_t w) {
  vg_tensor *maps[VG_FASTFLOW_MAX_SCALES];
  for (int s = 0; s < n; s++) {
    /* the tail in f32 for an f16 z (as torch autocast runs pow/exp in f32): f16's exp
     * flushes below 6e-8, which turns the small likelihoods of far-out pixels into ties */
    const vg_tensor *zs = z[s] && z[s]->dtype != VG_F32 ? vg_cast(z[s], VG_F32) : z[s];
    vg_tensor *lp = vg_scale(vg_mean(vg_mul(zs, zs), 1, (int[]){1}, true), -0.5f);
    maps[s] = vg_interpolate_bilinear(vg_neg(vg_exp(lp)), h, w, false);
  }
  return vg_mean(vg_stack(n, maps, -1), 1, (int[]){-1}, false);
}

static vg_status ff_train_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  fastflow *m = (fastflow *)mm;
  if (mm->dtype != VG_F32) return vg_fail(VG_ERR_ARG, "fastflow: training computes in f32 (f16 is for inference)");
  vg_scope_begin();
  vg_optim_zero_grad(m->opt);
  vg_tensor *z[VG_FASTFLOW_MAX_SCALES], *ld[VG_FASTFLOW_MAX_SCALES];
  vg_status st = vg_fastflow_forward(mm, images, z, ld);
  if (st == VG_OK) {
    vg_tensor *l = vg_fastflow_loss(m->nscales, z, ld);
    *loss = vg_item(l);
    if (!isfinite(*loss)) st = vg_fail(VG_ERR_NUMERIC, "fastflow: non-finite loss at step %lld", (long long)step);
    else st = vg_backward(l);
    if (st == VG_OK) {
      vg_optim_step(m->opt);
      ((int64_t *)vg_data(m->step_buf))[0]++;
    }
  }
  vg_scope_end();
  return st;
}

/* N x 1 x H x W maps on the method's device, in the current scope (predict and graphs) */
static vg_tensor *ff_forward_maps(vg_method *mm, const vg_tensor *images) {
  fastflow *m = (fastflow *)mm;
  vg_tensor *z[VG_FASTFLOW_MAX_SCALES], *ld[VG_FASTFLOW_MAX_SCALES], *map = NULL;
  vg_no_grad_begin();
  if (vg_fastflow_forward(mm, images, z, ld) == VG_OK) map = vg_fastflow_anomaly_map(m->nscales, z, m->size, m->size);
  vg_no_grad_end();
  return map;
}

static vg_status ff_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  vg_scope_begin();
  vg_status st = vg_method_maps_out(ff_forward_maps(mm, images), maps, scores);
  vg_scope_end();
  return st;
}

static char *ff_config_json(const vg_method *mm) {
  const fastflow *m = (const fastflow *)mm;
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "method"); vg_jw_string(&w, "fastflow");
  vg_jw_key(&w, "backbone"); vg_jw_string(&w, BACKBONES[m->backbone]);
  vg_jw_key(&w, "weights"); vg_jw_string(&w, m->weights);
  vg_jw_key(&w, "input_size"); vg_jw_int64(&w, m->size);
  vg_jw_key(&w, "flow_steps"); vg_jw_int64(&w, m->flow_steps);
  vg_jw_key(&w, "hidden_ratio"); vg_jw_double(&w, m->hidden_ratio);
  vg_jw_key(&w, "conv3x3_only"); vg_jw_bool(&w, m->conv3x3_only);
  vg_jw_key(&w, "resize"); vg_jw_string(&w, m->float_resize ? "float" : "pil");
  vg_jw_key(&w, "lr"); vg_jw_double(&w, m->lr);
  vg_jw_key(&w, "weight_decay"); vg_jw_double(&w, m->weight_decay);
  vg_jw_key(&w, "batch_size"); vg_jw_int64(&w, m->batch);
  vg_jw_key(&w, "steps"); vg_jw_int64(&w, m->steps);
  vg_jw_key(&w, "seed"); vg_jw_int64(&w, (int64_t)m->seed);
  vg_jw_end_object(&w);
  return vg_jw_finish(&w, NULL);
}

static vg_status ff_save(const vg_method *mm, const char *path) {
  const fastflow *m = (const fastflow *)mm;
  return vg_method_checkpoint_save(mm, m->net, m->opt, path);
}

static vg_status ff_load(vg_method *mm, const char *path) {
  fastflow *m = (fastflow *)mm;
  return vg_nn_checkpoint_load(path, m->net, m->opt, NULL);
}

static double ff_current_lr(const vg_method *mm) { return ((const fastflow *)mm)->lr; }

static void ff_free(vg_method *mm) {
  fastflow *m = (fastflow *)mm;
  if (!m) return;
  vg_optim_free(m->opt);
  vg_nn_free(m->net);
  free(m);
}

/* the step counter is host bookkeeping: it stays on the CPU */
static vg_status ff_to(vg_method *mm, vg_device dev, vg_dtype dt) {
  fastflow *m = (fastflow *)mm;
  return vg_method_move(m->net, m->opt, 1, &m->step_buf, dev, dt);
}

static const vg_method_ops ff_ops = {
  .name = "fastflow", .fit_begin = NULL, .train_step = ff_train_step, .fit_end = NULL,
  .predict = ff_predict, .finalize = NULL, .save = ff_save, .load = ff_load,
  .config_json = ff_config_json, .current_lr = ff_current_lr, .module = vg_fastflow_module, .to = ff_to, .forward_maps = ff_forward_maps, .free = ff_free,
};

vg_status vg_fastflow_load_anomalib(vg_method *mm, const char *path) {
  static const char *const strip[] = {"state_dict.", "model.", NULL};
  return vg_nn_load_state_pth_prefixed(((fastflow *)mm)->net, path, strip, "feature_extractor.", "fastflow");
}

static const char *const FF_RANGES[][2] = {
  {"method", "\"fastflow\""}, {"backbone", "a backbone name"}, {"weights", "a file path (< 1024 bytes)"},
  {"input_size", "an integer in [32, 4096], a multiple of 16"}, {"flow_steps", "an integer in [1, 64]"},
  {"hidden_ratio", "a number in (0, 16]"}, {"conv3x3_only", "true or false"}, {"resize", "\"pil\" or \"float\""}, {"lr", "a number > 0"},
  {"weight_decay", "a number >= 0"}, {"batch_size", "an integer in [1, 4096]"},
  {"steps", "an integer in [0, 1000000000]"}, {"seed", "an integer in [0, 9223372036854775807]"}, {NULL, NULL}};

vg_status vg_fastflow_new(const vg_json *cfg, vg_method **out) {
  *out = NULL;
  int64_t size = 256, steps_n = 8, batch = 32, steps = 2000, seed = 0;
  double ratio = 1.0, lr = 1e-3, wd = 1e-5;
  int c3 = -1;
  bool fl = false;
  const char *bb = "resnet18", *weights = "";
  for (int64_t i = 0; cfg && i < vg_json_len(cfg); i++) {
    const char *k = vg_json_key_at(cfg, i);
    const vg_json *v = vg_json_at(cfg, i);
    bool ok, b;
    if (!strcmp(k, "method")) ok = vg_json_as_string(v) && !strcmp(vg_json_as_string(v), "fastflow");
    else if (!strcmp(k, "backbone")) ok = (bb = vg_json_as_string(v)) != NULL;
    else if (!strcmp(k, "weights")) ok = (weights = vg_json_as_string(v)) != NULL && strlen(weights) < 1024;
    else if (!strcmp(k, "input_size")) ok = vg_json_as_int64(v, &size) && size >= 32 && size <= 4096 && size % 16 == 0;
    else if (!strcmp(k, "flow_steps")) ok = vg_json_as_int64(v, &steps_n) && steps_n >= 1 && steps_n <= 64;
    else if (!strcmp(k, "hidden_ratio")) ok = vg_json_as_double(v, &ratio) && ratio > 0 && ratio <= 16;
    else if (!strcmp(k, "conv3x3_only")) { ok = vg_json_as_bool(v, &b); c3 = b; }
    else if (!strcmp(k, "resize")) {
      const char *s = vg_json_as_string(v);
      ok = s && (!strcmp(s, "pil") || !strcmp(s, "float"));
      fl = ok && !strcmp(s, "float");
    }
    else if (!strcmp(k, "lr")) ok = vg_json_as_double(v, &lr) && lr > 0;
    else if (!strcmp(k, "weight_decay")) ok = vg_json_as_double(v, &wd) && wd >= 0;
    else if (!strcmp(k, "batch_size")) ok = vg_json_as_int64(v, &batch) && batch >= 1 && batch <= 4096;
    else if (!strcmp(k, "steps")) ok = vg_json_as_int64(v, &steps) && steps >= 0 && steps <= 1000000000;
    else if (!strcmp(k, "seed")) ok = vg_json_as_int64(v, &seed) && seed >= 0;
    else return vg_fail(VG_ERR_ARG, "fastflow: unknown config key '%s' (known: backbone, weights, input_size, "
                        "flow_steps, hidden_ratio, conv3x3_only, resize, lr, weight_decay, batch_size, steps, seed)", k);
    if (!ok) return vg_method_bad_value("fastflow", k, v, FF_RANGES);
  }
  int bbi = -1;
  for (int i = 0; i < 4; i++) if (!strcmp(bb, BACKBONES[i])) bbi = i;
  if (bbi < 0) return vg_fail(VG_ERR_ARG, "fastflow: unknown backbone '%s' (resnet18, wide_resnet50_2)", bb);
  if (bbi >= 2) return vg_fail(VG_ERR_ARG, "fastflow: backbone '%s' is not implemented yet", bb);
  {  /* memory before any allocation: norms over C x S/sc x S/sc, flow_steps 3x3 subnets per scale */
    static const int ch18[4] = {64, 128, 256, 512}, ch50[4] = {256, 512, 1024, 2048};
    const int *ch = bbi == 0 ? ch18 : ch50;
    if (ratio * (double)(ch[0] / 2) < 1)   /* flows.c: hidden = (int)(ratio * c_in), c_in = C/2 */
      return vg_fail(VG_ERR_ARG, "fastflow: hidden_ratio %g gives the layer1 subnet (%d input channels) no hidden "
                     "channel: want hidden_ratio >= %g with backbone %s", ratio, ch[0] / 2, 1.0 / (ch[0] / 2), bb);
    double S = (double)size, tr = 0;
    for (int s = 0; s < 3; s++) {
      double C = ch[s], side = S / (4 << s), in = (double)(ch[s] / 2), hid = ratio * in;
      if (hid < 1) hid = 1;
      tr += 2 * C * side * side + (double)steps_n * 9 * (in * hid + hid * 2 * (C - in));
    }
    char keys[160];
    snprintf(keys, sizeof keys, "input_size %lld, flow_steps %lld, hidden_ratio %g (backbone %s)", (long long)size,
             (long long)steps_n, ratio, bb);
    vg_status cs = vg_method_check_memory("fastflow", keys, tr, bbi == 0 ? 2.8e6 : 8.9e6,
                                          vg_method_resnet_act(S, ch, 2) * (1 + (double)steps_n / 4));
    if (cs != VG_OK) return cs;
  }
  fastflow *m = calloc(1, sizeof *m);
  if (!m) return vg_fail(VG_ERR_NOMEM, "fastflow: out of memory");
  m->backbone = (vg_fastflow_backbone)bbi;
  snprintf(m->weights, sizeof m->weights, "%s", weights);
  m->size = (int)size; m->flow_steps = (int)steps_n; m->batch = (int)batch; m->steps = steps;
  m->conv3x3_only = c3 < 0 ? m->backbone == VG_FASTFLOW_RESNET18 : c3;
  m->float_resize = fl;
  m->hidden_ratio = ratio; m->lr = lr; m->weight_decay = wd; m->seed = (uint64_t)seed;
  m->base.ops = &ff_ops;

  vg_status st = VG_OK;
  m->net = vg_nn_module_new("FastflowModel", NULL, NULL, NULL);
  m->fe = vg_resnet_new(bb, VG_RESNET_LAYER1 | VG_RESNET_LAYER2 | VG_RESNET_LAYER3, m->seed * 7919 + 1);
  if (!m->net || !m->fe) { vg_nn_free(m->fe); ff_free(&m->base); return VG_ERR_ARG; }
  vg_nn_add_child(m->net, "feature_extractor", m->fe);
  if (m->weights[0]) st = vg_nn_load_state_pth(m->fe, m->weights, false);
  m->base.random_backbone = !m->weights[0];
  vg_nn_train(m->fe, false);
  vg_nn_requires_grad(m->fe, false);
  m->nscales = vg_resnet_num_features(m->fe);
  vg_nn_module *norms = vg_nn_module_new("ModuleList", NULL, NULL, NULL);
  vg_nn_module *blocks = vg_nn_module_new("ModuleList", NULL, NULL, NULL);
  vg_nn_add_child(m->net, "norms", norms);
  vg_nn_add_child(m->net, "fast_flow_blocks", blocks);
  for (int s = 0; s < m->nscales && st == VG_OK; s++) {
    int64_t scale = 4 << s;   /* layer1..3: strides 4, 8, 16 */
    int64_t dims[3] = {vg_resnet_feature_channels(m->fe, s), size / scale, size / scale};
    char name[8];
    snprintf(name, sizeof name, "%d", s);
    m->norms[s] = vg_nn_layernorm_new(3, dims, 1e-5f, true);
    vg_nn_add_child(norms, name, m->norms[s]);
    m->flows[s] = vg_flow_sequence_new(3, dims);
    vg_nn_add_child(blocks, name, m->flows[s]);
    for (int i = 0; i < m->flow_steps; i++) {
      vg_flow_subnet_cfg sc = {.k = (i % 2 == 1 && !m->conv3x3_only) ? 1 : 3, .hidden = 0, .ratio = ratio,
                               .seed = m->seed * 1000003 + (uint64_t)(s * 100 + i) * 2 + 1};
      vg_flow_allinone_opts o = {.affine_clamping = 2.0, .clamp_mode = VG_FLOW_CLAMP_TANH_FREIA02,
                                 .global_affine_type = VG_FLOW_GA_SOFTPLUS, .permute_soft = false,
                                 .seed = m->seed * 1000003 + (uint64_t)(s * 100 + i) * 2};
      if (vg_flow_append_allinone(m->flows[s], -1, 0, (vg_flow_subnet){vg_flow_subnet_conv, &sc}, o) < 0) {
        st = VG_ERR_ARG;
        break;
      }
    }
  }
  if (st == VG_OK) {
    m->step_buf = vg_tensor_new(VG_I64, 1, (int64_t[]){1});
    memset(vg_data(m->step_buf), 0, sizeof(int64_t));
    vg_nn_add_buffer(m->net, "vigil_step", m->step_buf);
    vg_optim_hparams hp = vg_optim_defaults(VG_OPTIM_ADAM, lr);
    hp.weight_decay = wd;
    m->opt = vg_optim_new(VG_OPTIM_ADAM, hp);
    vg_nn_list ps = vg_nn_named_parameters(m->net);
    vg_tensor **tr = malloc(sizeof(vg_tensor *) * (size_t)(ps.n + 1));
    int nt = 0;
    for (int i = 0; i < ps.n; i++) if (ps.tensors[i]->requires_grad) tr[nt++] = ps.tensors[i];
    if (vg_optim_add_group(m->opt, nt, tr, NULL) < 0) st = VG_ERR_ARG;
    free(tr);
    vg_nn_list_free(&ps);
  }
  if (st != VG_OK) { ff_free(&m->base); return st; }
  m->base.input_h = m->base.input_w = m->size;
  m->base.train_channels = 3;
  m->base.train_batch = m->batch;
  m->base.default_steps = m->steps;
  m->base.train_transform = m->base.test_transform = fl ? vg_image_float_imagenet_transform : vg_imagenet_transform;
  *out = &m->base;
  return VG_OK;
}
