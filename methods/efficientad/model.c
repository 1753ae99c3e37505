/* EfficientAD networks (PDN-S/M, autoencoder), losses (Algorithm 1) and maps
 * (Algorithm 2), following anomalib's efficient_ad/torch_model.py op for op. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "methods/efficientad/efficientad.h"
#include "autograd/autograd.h"

/* ------------------------------------------------------------------ PDN */
typedef struct {
  vg_effad_size size;
  bool padding;
} pdn_ctx;

static vg_tensor *imagenet_norm(const vg_tensor *x) {
  /* x: N x 3 x H x W in [0,1]; (x - mean) / std per channel */
  static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  if (!x) return NULL;
  /* the constants made on x's device with fills (no host copy: CUDA graphs capture it) */
  vg_tensor *m = vg_full_on(x->device, x->dtype, 4, (int64_t[]){1, 3, 1, 1}, 0.0);
  vg_tensor *s = vg_full_on(x->device, x->dtype, 4, (int64_t[]){1, 3, 1, 1}, 0.0);
  for (int c = 0; c < 3 && m && s; c++) {
    vg_fill_(vg_narrow(m, 1, c, 1), mean[c]);
    vg_fill_(vg_narrow(s, 1, c, 1), stdv[c]);
  }
  return vg_div(vg_sub(x, m), s);
}

static vg_tensor *conv(vg_nn_module *m, const char *name, const vg_tensor *x) {
  return vg_nn_forward(vg_nn_child_get(m, name), x);
}

static vg_tensor *pool(const vg_tensor *x, bool padding) {
  return vg_avg_pool2d(x, (vg_pool2d_opts){.kh = 2, .kw = 2, .sh = 2, .sw = 2,
                                           .ph = padding, .pw = padding, .count_include_pad = true});
}

/* The networks on an ImageNet-normalised input: the model's passes normalise an image
 * once for the teacher, student and autoencoder (anomalib normalises inside each). */
/* One conv stage (conv, then ReLU and the 2x2 average pool when asked); when nothing is
 * recorded for autograd its intermediates are freed as it returns (vg_scope_end_keep). */
static vg_tensor *stage(vg_nn_module *m, const char *name, const vg_tensor *x, bool relu, int pool_pad) {
  bool nest = !vg_nn_would_record(m, 1, &x);
  if (nest) vg_scope_begin();
  vg_nn_module *cm = vg_nn_child_get(m, name);
  vg_tensor *h = relu ? vg_nn_forward_relu(cm, x) : vg_nn_forward(cm, x);
  if (pool_pad >= 0) h = pool(h, pool_pad != 0);
  if (nest) vg_scope_end_keep(1, &h);
  return h;
}

static vg_tensor *pdn_body(vg_nn_module *m, const vg_tensor *h0) {
  const pdn_ctx *c = m->ctx;
  vg_tensor *h = stage(m, "conv1", h0, true, c->padding);
  h = stage(m, "conv2", h, true, c->padding);
  h = stage(m, "conv3", h, true, -1);
  if (c->size == VG_EFFAD_S) return conv(m, "conv4", h);
  h = stage(m, "conv4", h, true, -1);
  h = stage(m, "conv5", h, true, -1);
  return conv(m, "conv6", h);
}

static vg_tensor *pdn_forward(vg_nn_module *m, const vg_tensor *x) { return pdn_body(m, imagenet_norm(x)); }

static void add_conv(vg_nn_module *m, const char *name, int64_t in, int64_t out, int k, int stride,
                     int pad, uint64_t seed) {
  vg_nn_add_child(m, name, vg_nn_conv2d_new(in, out, k, k,
                                            (vg_nn_conv2d_opts){.sh = stride, .sw = stride,
                                                                .ph = pad, .pw = pad}, seed));
}

vg_nn_module *vg_effad_pdn_new(vg_effad_size size, int64_t out, bool padding, uint64_t seed) {
  pdn_ctx *c = malloc(sizeof *c);
  if (!c) return NULL;
  c->size = size;
  c->padding = padding;
  vg_nn_module *m = vg_nn_module_new(size == VG_EFFAD_S ? "SmallPDN" : "MediumPDN", pdn_forward, c, free);
  int p = padding ? 1 : 0;
  if (size == VG_EFFAD_S) {
    add_conv(m, "conv1", 3, 128, 4, 1, 3 * p, seed + 1);
    add_conv(m, "conv2", 128, 256, 4, 1, 3 * p, seed + 2);
    add_conv(m, "conv3", 256, 256, 3, 1, 1 * p, seed + 3);
    add_conv(m, "conv4", 256, out, 4, 1, 0, seed + 4);
  } else {
    add_conv(m, "conv1", 3, 256, 4, 1, 3 * p, seed + 1);
    add_conv(m, "conv2", 256, 512, 4, 1, 3 * p, seed + 2);
    add_conv(m, "conv3", 512, 512, 1, 1, 0, seed + 3);
    add_conv(m, "conv4", 512, 512, 3, 1, 1 * p, seed + 4);
    add_conv(m, "conv5", 512, out, 4, 1, 0, seed + 5);
    add_conv(m, "conv6", out, out, 1, 1, 0, seed + 6);
  }
  return m;
}

/* ------------------------------------------------------------------ autoencoder */
typedef struct { bool padding; } ae_ctx;

static vg_tensor *encoder_forward(vg_nn_module *m, const vg_tensor *x) {
  vg_tensor *h = (vg_tensor *)x;
  static const char *const names[6] = {"enconv1", "enconv2", "enconv3", "enconv4", "enconv5", "enconv6"};
  for (int i = 0; i < 5; i++) h = vg_nn_forward_relu(vg_nn_child_get(m, names[i]), h);
  return conv(m, names[5], h);
}

static vg_tensor *no_forward(vg_nn_module *m, const vg_tensor *x) {
  (void)m; (void)x;
  vg_fail(VG_ERR_ARG, "efficientad: the decoder needs the image size: use vg_effad_ae_forward");
  return NULL;
}

vg_nn_module *vg_effad_ae_new(int64_t out, bool padding, uint64_t seed) {
  ae_ctx *c = malloc(sizeof *c);
  if (!c) return NULL;
  c->padding = padding;
  vg_nn_module *ae = vg_nn_module_new("AutoEncoder", no_forward, c, free);
  vg_nn_module *enc = vg_nn_module_new("Encoder", encoder_forward, NULL, NULL);
  vg_nn_module *dec = vg_nn_module_new("Decoder", no_forward, NULL, NULL);
  add_conv(enc, "enconv1", 3, 32, 4, 2, 1, seed + 11);
  add_conv(enc, "enconv2", 32, 32, 4, 2, 1, seed + 12);
  add_conv(enc, "enconv3", 32, 64, 4, 2, 1, seed + 13);
  add_conv(enc, "enconv4", 64, 64, 4, 2, 1, seed + 14);
  add_conv(enc, "enconv5", 64, 64, 4, 2, 1, seed + 15);
  add_conv(enc, "enconv6", 64, 64, 8, 1, 0, seed + 16);
  static const char *const dn[8] = {"deconv1", "deconv2", "deconv3", "deconv4",
                                    "deconv5", "deconv6", "deconv7", "deconv8"};
  for (int i = 0; i < 6; i++) add_conv(dec, dn[i], 64, 64, 4, 1, 2, seed + 21 + (uint64_t)i);
  add_conv(dec, dn[6], 64, 64, 3, 1, 1, seed + 27);
  add_conv(dec, dn[7], 64, out, 3, 1, 1, seed + 28);
  vg_nn_add_child(ae, "encoder", enc);
  vg_nn_add_child(ae, "decoder", dec);
  return ae;
}

static int64_t ceil_div4(int64_t v) { return (v + 3) / 4; }

static vg_tensor *ae_body(vg_nn_module *ae, const vg_tensor *xn, int64_t H, int64_t W, uint64_t dropout_seed) {
  const ae_ctx *c = ae->ctx;
  vg_nn_module *dec = vg_nn_child_get(ae, "decoder");
  vg_tensor *h = vg_nn_forward(vg_nn_child_get(ae, "encoder"), xn);
  /* decoder: anomaly's upsampling sizes (floor divisions, "- 1" where it has them) */
  const int64_t sz[7][2] = {
      {H / 64 - 1, W / 64 - 1}, {H / 32, W / 32}, {H / 16 - 1, W / 16 - 1}, {H / 8, W / 8},
      {H / 4 - 1, W / 4 - 1},   {H / 2 - 1, W / 2 - 1},
      {c->padding ? ceil_div4(H) : ceil_div4(H) - 8, c->padding ? ceil_div4(W) : ceil_div4(W) - 8}};
  static const char *const dn[8] = {"deconv1", "deconv2", "deconv3", "deconv4",
                                    "deconv5", "deconv6", "deconv7", "deconv8"};
  for (int i = 0; i < 7; i++) {
    if (h && (sz[i][0] < 1 || sz[i][1] < 1)) {
      vg_fail(VG_ERR_ARG, "efficientad: image %lldx%lld too small for the autoencoder",
              (long long)H, (long long)W);
      return NULL;
    }
    bool nest = !vg_nn_would_record(dec, 1, (const vg_tensor *const *)&h);
    if (nest) vg_scope_begin();
    h = vg_interpolate_bilinear(h, sz[i][0], sz[i][1], false);
    h = vg_nn_forward_relu(vg_nn_child_get(dec, dn[i]), h);
    if (i < 6) h = vg_dropout(h, 0.2f, ae->training, dropout_seed * 8 + (uint64_t)i);
    if (nest) vg_scope_end_keep(1, &h);
  }
  return conv(dec, dn[7], h);
}

vg_tensor *vg_effad_ae_forward(vg_nn_module *ae, const vg_tensor *x, int64_t H, int64_t W,
                               uint64_t dropout_seed) {
  return ae_body(ae, imagenet_norm(x), H, W, dropout_seed);
}

/* ------------------------------------------------------------------ model */
void vg_effad_init_uniform(vg_nn_module *m, uint64_t seed) {
  vg_nn_list l = vg_nn_named_parameters(m);
  for (int i = 0; i < l.n; i++) {
    /* fan_in of the conv owning this tensor: weight = out x in x kh x kw */
    size_t len = strlen(l.names[i]);
    char wname[256];
    snprintf(wname, sizeof wname, "%.*sweight", (int)(len - (strstr(l.names[i] + len - 4, "bias") ? 4 : 6)),
             l.names[i]);
    vg_tensor *w = vg_nn_get(m, wname);
    double fan_in = (double)(w->shape[1] * w->shape[2] * w->shape[3]);
    float b = (float)(1.0 / sqrt(fan_in));
    vg_uniform_(l.tensors[i], -b, b, seed + (uint64_t)i);
  }
  vg_nn_list_free(&l);
}

vg_effad_model *vg_effad_model_new(vg_effad_size size, int64_t out, bool padding, uint64_t seed) {
  vg_effad_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->size = size;
  m->out_channels = out;
  m->padding = padding;
  m->pad_maps = true;
  m->p_hard = 0.999f;
  m->q_a = 0.9;
  m->q_b = 0.995;
  m->teacher = vg_effad_pdn_new(size, out, padding, seed);
  m->student = vg_effad_pdn_new(size, 2 * out, padding, seed + 100);
  m->ae = vg_effad_ae_new(out, padding, seed + 200);
  vg_nn_train(m->teacher, false);
  vg_nn_requires_grad(m->teacher, false);
  m->mean = vg_tensor_new(VG_F32, 4, (int64_t[]){1, out, 1, 1});
  m->std = vg_tensor_new(VG_F32, 4, (int64_t[]){1, out, 1, 1});
  m->stats_flag = -1;
  return m;
}

void vg_effad_model_free(vg_effad_model *m) {
  if (!m) return;
  vg_nn_free(m->teacher);
  vg_nn_free(m->student);
  vg_nn_free(m->ae);
  vg_tensor_free(m->mean);
  vg_tensor_free(m->std);
  free(m->acc_sum);
  free(m->acc_sumsq);
  free(m->acc_st);
  free(m->acc_ae);
  free(m);
}

/* images on the model's device in its float dtype (m->mean moves with the networks) */
static const vg_tensor *on_model(const vg_effad_model *m, const vg_tensor *x) {
  if (x && x->device != m->mean->device) x = vg_to_device(x, m->mean->device);
  if (x && x->dtype != m->mean->dtype) x = vg_cast(x, m->mean->dtype);
  return x;
}

/* Whether the teacher statistics are set (not all 0). On a device the answer is cached
 * (m->stats_flag, -1 = unknown; reset whenever mean/std are rewritten) so a forward
 * makes no host round trip (CUDA graphs capture it). */
static bool stats_set(const vg_effad_model *m) {
  if (m->mean->device != VG_CPU && m->stats_flag >= 0) return m->stats_flag;
  int64_t C = m->out_channels;
  float *ab = malloc(sizeof(float) * (size_t)(2 * C));
  if (!ab) VG_ABORT("out of memory");
  vg_to_host(m->mean, VG_F32, ab);
  vg_to_host(m->std, VG_F32, ab + C);
  bool set = false;
  for (int64_t i = 0; i < 2 * C && !set; i++) set = ab[i] != 0.0f;
  free(ab);
  ((vg_effad_model *)m)->stats_flag = set;
  return set;
}

/* the teacher on a normalised image, standardised by its channel statistics once set */
static vg_tensor *teacher_body(vg_effad_model *m, const vg_tensor *xn) {
  vg_no_grad_begin();
  vg_tensor *t = pdn_body(m->teacher, xn);
  if (stats_set(m)) t = vg_div(vg_sub(t, m->mean), m->std);
  vg_no_grad_end();
  return t;
}

vg_tensor *vg_effad_teacher_forward(vg_effad_model *m, const vg_tensor *img) {
  return teacher_body(m, imagenet_norm(on_model(m, img)));
}

vg_status vg_effad_compute_losses(vg_effad_model *m, const vg_tensor *img, const vg_tensor *aug,
                                  const vg_tensor *penalty, uint64_t dropout_seed,
                                  vg_effad_losses *L) {
  memset(L, 0, sizeof *L);
  const int64_t C = m->out_channels;
  img = on_model(m, img);
  if (!img || img->ndim != 4) return vg_fail_prefix("efficientad losses: images");
  const int64_t H = img->shape[2], W = img->shape[3];
  /* each image normalised once for the networks that see it */
  img = imagenet_norm(img);
  aug = imagenet_norm(on_model(m, aug));
  penalty = penalty ? imagenet_norm(on_model(m, penalty)) : NULL;
  vg_tensor *t = teacher_body(m, img);
  vg_tensor *s = pdn_body(m->student, img);
  vg_tensor *d = vg_pow_scalar(vg_sub(t, vg_narrow(s, 1, 0, C)), 2.0f);
  if (!d) return vg_fail_prefix("efficientad losses");
  /* hard feature loss: mean of the distances >= their p_hard quantile */
  vg_tensor *dd = vg_detach(d);
  vg_tensor *q = vg_quantile_all(dd, m->p_hard);
  vg_tensor *mask = vg_cast(vg_ge(dd, q), VG_F32);
  float cnt = vg_item(vg_sum_all(mask));
  L->hard = vg_scale(vg_sum_all(vg_mul(d, mask)), 1.0f / cnt);
  L->st = L->hard;
  if (penalty) {
    vg_tensor *sp = vg_narrow(pdn_body(m->student, penalty), 1, 0, C);
    L->penalty = vg_mean_all(vg_pow_scalar(sp, 2.0f));
    L->st = vg_add(L->hard, L->penalty);
  }
  vg_tensor *a = ae_body(m->ae, aug, H, W, dropout_seed);
  vg_tensor *ta = teacher_body(m, aug);
  vg_tensor *sa = vg_narrow(pdn_body(m->student, aug), 1, C, C);
  L->ae = vg_mean_all(vg_pow_scalar(vg_sub(ta, a), 2.0f));
  L->stae = vg_mean_all(vg_pow_scalar(vg_sub(a, sa), 2.0f));
  L->total = vg_add(vg_add(L->st, L->ae), L->stae);
  if (!L->total) return vg_fail_prefix("efficientad losses");
  return VG_OK;
}

static vg_tensor *finish_map(const vg_effad_model *m, vg_tensor *map, int64_t H, int64_t W) {
  if (m->pad_maps && !m->padding) map = vg_pad(map, 2, (int64_t[]){4, 4, 4, 4}, 0.0f);
  return vg_interpolate_bilinear(map, H, W, false);
}

vg_status vg_effad_maps(vg_effad_model *m, const vg_tensor *img, bool normalize,
                        vg_tensor **map_st, vg_tensor **map_ae) {
  const int64_t C = m->out_channels, H = img->shape[2], W = img->shape[3];
  img = on_model(m, img);
  vg_no_grad_begin();
  bool tr = m->ae->training;
  vg_nn_train(m->ae, false);
  bool str = m->student->training;
  vg_nn_train(m->student, false);
  vg_tensor *xn = imagenet_norm(img);   /* once for the three networks */
  /* On a GPU the three networks are independent branches (vg_cuda_fork): the
   * autoencoder's many small kernels run beside the teacher's and student's GEMMs */
  const bool branch = xn && xn->device == VG_CUDA;
  vg_tensor *t, *s, *a;
  if (branch) {
    (void)stats_set(m);   /* may read the statistics on the host: before the fork */
    vg_cuda_fork();
    vg_cuda_branch(1);
    a = ae_body(m->ae, xn, H, W, 0);   /* issued first: its kernels are the latency-bound ones */
    vg_cuda_branch(2);
    s = pdn_body(m->student, xn);
    vg_cuda_branch(0);
    t = teacher_body(m, xn);
    vg_cuda_join();
  } else {
    t = teacher_body(m, xn);
    s = pdn_body(m->student, xn);
    a = ae_body(m->ae, xn, H, W, 0);
  }
  /* the map computation in f32 for f16 networks (as torch autocast runs pow in f32) */
  if (t && t->dtype != VG_F32) t = vg_cast(t, VG_F32);
  if (s && s->dtype != VG_F32) s = vg_cast(s, VG_F32);
  if (a && a->dtype != VG_F32) a = vg_cast(a, VG_F32);
  vg_tensor *mst = vg_mean(vg_pow_scalar(vg_sub(t, vg_narrow(s, 1, 0, C)), 2.0f), 1, (int[]){1}, true);
  vg_tensor *mae = vg_mean(vg_pow_scalar(vg_sub(a, vg_narrow(s, 1, C, C)), 2.0f), 1, (int[]){1}, true);
  mst = finish_map(m, mst, H, W);
  mae = finish_map(m, mae, H, W);
  bool qset = m->qa_st != 0 || m->qb_st != 0 || m->qa_ae != 0 || m->qb_ae != 0;
  if (normalize && qset && mst && mae) {
    /* 0.1 (map - qa) / (qb - qa), folded into one multiply-add per map */
    float sst = 0.1f / (m->qb_st - m->qa_st), sae = 0.1f / (m->qb_ae - m->qa_ae);
    mst = vg_affine(mst, sst, -m->qa_st * sst);
    mae = vg_affine(mae, sae, -m->qa_ae * sae);
  }
  vg_nn_train(m->ae, tr);
  vg_nn_train(m->student, str);
  vg_no_grad_end();
  *map_st = mst;
  *map_ae = mae;
  if (!mst || !mae) return vg_fail_prefix("efficientad maps");
  return VG_OK;
}

/* ------------------------------------------------------------------ statistics passes */
void vg_effad_stats_begin(vg_effad_model *m) {
  free(m->acc_sum);
  free(m->acc_sumsq);
  m->acc_sum = calloc((size_t)m->out_channels, sizeof(double));
  m->acc_sumsq = calloc((size_t)m->out_channels, sizeof(double));
  m->acc_n = 0;
}

vg_status vg_effad_stats_add(vg_effad_model *m, const vg_tensor *img) {
  if (!m->acc_sum || !m->acc_sumsq) return vg_fail(VG_ERR_NOMEM, "efficientad: statistics");
  vg_scope_begin();
  vg_no_grad_begin();
  vg_tensor *y = vg_nn_forward(m->teacher, on_model(m, img));
  vg_tensor *s1 = vg_sum(y, 3, (int[]){0, 2, 3}, false);
  vg_tensor *s2 = vg_sum(vg_mul(y, y), 3, (int[]){0, 2, 3}, false);
  vg_no_grad_end();
  vg_status st = VG_OK;
  if (!s1 || !s2) {
    st = vg_fail_prefix("efficientad teacher statistics");
  } else {
    float *a = vg_f32(vg_empty(VG_F32, 1, (int64_t[]){m->out_channels}));
    float *b = vg_f32(vg_empty(VG_F32, 1, (int64_t[]){m->out_channels}));
    vg_to_host(s1, VG_F32, a);   /* any device */
    vg_to_host(s2, VG_F32, b);
    for (int64_t c = 0; c < m->out_channels; c++) {
      m->acc_sum[c] += a[c];
      m->acc_sumsq[c] += b[c];
    }
    m->acc_n += y->shape[0] * y->shape[2] * y->shape[3];
  }
  vg_scope_end();
  return st;
}

vg_status vg_effad_stats_end(vg_effad_model *m) {
  if (m->acc_n == 0) return vg_fail(VG_ERR_ARG, "efficientad: no training images for the teacher statistics");
  float *mean = malloc(sizeof(float) * (size_t)(2 * m->out_channels)), *sd = mean + m->out_channels;
  if (!mean) return vg_fail(VG_ERR_NOMEM, "efficientad: statistics");
  for (int64_t c = 0; c < m->out_channels; c++) {
    double mu = m->acc_sum[c] / (double)m->acc_n;
    double v = m->acc_sumsq[c] / (double)m->acc_n - mu * mu;
    mean[c] = (float)mu;
    sd[c] = (float)sqrt(v > 0 ? v : 0);
  }
  vg_from_host_(m->mean, VG_F32, mean);   /* any device / dtype */
  vg_from_host_(m->std, VG_F32, sd);
  free(mean);
  m->stats_flag = -1;
  free(m->acc_sum);
  free(m->acc_sumsq);
  m->acc_sum = m->acc_sumsq = NULL;
  return VG_OK;
}

void vg_effad_quantiles_begin(vg_effad_model *m) {
  free(m->acc_st);
  free(m->acc_ae);
  m->acc_st = m->acc_ae = NULL;
  m->acc_maps = m->acc_cap = 0;
}

vg_status vg_effad_quantiles_add(vg_effad_model *m, const vg_tensor *img) {
  vg_scope_begin();
  vg_tensor *a, *b;
  vg_status st = vg_effad_maps(m, img, false, &a, &b);
  if (st == VG_OK) {
    int64_t n = a->shape[0] * a->shape[2] * a->shape[3];
    if (m->acc_maps + n > m->acc_cap) {
      int64_t cap = (m->acc_maps + n) * 2;
      float *x = realloc(m->acc_st, (size_t)cap * sizeof(float));
      if (x) m->acc_st = x;
      float *y = realloc(m->acc_ae, (size_t)cap * sizeof(float));
      if (y) m->acc_ae = y;
      if (!x || !y) st = vg_fail(VG_ERR_NOMEM, "efficientad: map quantiles");
      else m->acc_cap = cap;
    }
    if (st == VG_OK) {
      vg_to_host(a, VG_F32, m->acc_st + m->acc_maps);
      vg_to_host(b, VG_F32, m->acc_ae + m->acc_maps);
      m->acc_maps += n;
    }
  }
  vg_scope_end();
  return st;
}

static vg_status quantile_pair(const vg_effad_model *m, const float *v, int64_t n, float *qa, float *qb) {
  if (m->gaussian_norm) {   /* the paper's baseline: mean 0, variance 1 on the validation pixels */
    double s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    double mu = s / (double)n;
    for (int64_t i = 0; i < n; i++) ss += ((double)v[i] - mu) * ((double)v[i] - mu);
    double sd = sqrt(ss / (double)n);
    if (!(sd > 0) || !isfinite(sd)) sd = 1;
    *qa = (float)mu;
    *qb = (float)(mu + 0.1 * sd);
    return VG_OK;
  }
  vg_tensor *t = vg_full(VG_F32, 1, (int64_t[]){n}, 0.0);
  if (!t) return vg_fail_prefix("efficientad quantiles");
  memcpy((float *)t->storage->data + t->offset, v, (size_t)n * sizeof(float));
  *qa = vg_item(vg_quantile_all(t, m->q_a));
  *qb = vg_item(vg_quantile_all(t, m->q_b));
  return VG_OK;
}

vg_status vg_effad_quantiles_end(vg_effad_model *m) {
  if (m->acc_maps == 0) return vg_fail(VG_ERR_ARG, "efficientad: no validation images for the map quantiles");
  vg_scope_begin();
  vg_status st = quantile_pair(m, m->acc_st, m->acc_maps, &m->qa_st, &m->qb_st);
  if (st == VG_OK) st = quantile_pair(m, m->acc_ae, m->acc_maps, &m->qa_ae, &m->qb_ae);
  vg_scope_end();
  vg_effad_quantiles_begin(m);
  return st;
}
