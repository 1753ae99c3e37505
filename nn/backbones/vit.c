/* vit.c — timm DeiT (VisionTransformerDistilled) and CaiT as frozen feature extractors with
 * timm's state-dict names (see vit.h). */
#include "nn/backbones/vit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TAPS = 15 };

typedef struct {
  vg_vit_config cfg;
  const vg_backbone_desc *desc;   /* the registry descriptor that made it; NULL: vg_vit_new_config */
  int nblocks;                    /* blocks built */
  bool has_norm, full;
  int64_t gh0, gw0;               /* pos_embed's grid */
  int ntaps;
  int tap_block[MAX_TAPS];
  bool tap_norm[MAX_TAPS];
  char tap_name[MAX_TAPS][24];
  /* vg_vit_prepack: slot 4k + {0 qkv, 1 proj, 2 fc1, 3 fc2} of blocks.k */
  bool packing;
  int npw;
  vg_packed_weight **pw;
} vit_ctx;

enum { PW_QKV, PW_PROJ, PW_FC1, PW_FC2, PW_PER_BLOCK };

static void vit_unpack_ctx(vit_ctx *c) {
  for (int i = 0; c->pw && i < c->npw; i++) vg_packed_weight_free(c->pw[i]);
  free(c->pw);
  c->pw = NULL;
  c->npw = 0;
  c->packing = false;
}

static void vit_ctx_free(void *p) {
  if (!p) return;
  vit_unpack_ctx(p);
  free(p);
}

static vg_tensor *vit_forward(vg_nn_module *m, const vg_tensor *x);

static int num_prefix(const vg_vit_config *c) { return c->arch == VG_VIT_DEIT ? 1 + (c->distilled ? 1 : 0) : 0; }
static int64_t mlp_hidden(const vg_vit_config *c) { return (int64_t)((double)c->embed_dim * c->mlp_ratio); }

bool vg_vit_config_of(const char *name, vg_vit_config *out) {
  vg_vit_config c = {.embed_dim = 768, .mlp_ratio = 4.0, .patch = 16, .in_chans = 3, .qkv_bias = true,
                     .num_classes = 1000, .eps = 1e-6f};
  if (name && !strcmp(name, "deit_base_distilled_patch16_384")) {
    c.arch = VG_VIT_DEIT;
    c.depth = 12;
    c.num_heads = 12;
    c.img_size = 384;
    c.distilled = true;
  } else if (name && !strcmp(name, "cait_m48_448")) {
    c.arch = VG_VIT_CAIT;
    c.depth = 48;
    c.num_heads = 16;
    c.img_size = 448;
    c.init_values = 1e-6;
    c.depth_token_only = 2;
  } else {
    vg_fail(VG_ERR_ARG, "vg_vit_config_of: unknown model '%s' (deit_base_distilled_patch16_384, cait_m48_448)",
            name ? name : "(null)");
    return false;
  }
  if (out) *out = c;
  return true;
}

static vg_status check_config(const vg_vit_config *c) {
  if (!c) return vg_fail(VG_ERR_ARG, "NULL config");
  if (c->arch != VG_VIT_DEIT && c->arch != VG_VIT_CAIT) return vg_fail(VG_ERR_ARG, "bad arch %d", (int)c->arch);
  if (c->embed_dim <= 0 || c->num_heads <= 0 || c->embed_dim % c->num_heads)
    return vg_fail(VG_ERR_ARG, "embed_dim %lld must be a positive multiple of num_heads %d",
                   (long long)c->embed_dim, c->num_heads);
  if (c->depth <= 0 || c->patch <= 0 || c->img_size <= 0 || c->img_size % c->patch || c->in_chans <= 0)
    return vg_fail(VG_ERR_ARG, "depth %d, patch %d, img_size %d (a multiple of patch), in_chans %d must be positive",
                   c->depth, c->patch, c->img_size, c->in_chans);
  if (!(c->mlp_ratio > 0) || mlp_hidden(c) <= 0) return vg_fail(VG_ERR_ARG, "mlp_ratio %g", c->mlp_ratio);
  if (c->depth_token_only < 0 || c->num_classes < 0 || !(c->eps > 0))
    return vg_fail(VG_ERR_ARG, "depth_token_only %d, num_classes %d, eps %g", c->depth_token_only,
                   c->num_classes, (double)c->eps);
  if (c->arch == VG_VIT_DEIT && c->depth_token_only)
    return vg_fail(VG_ERR_ARG, "depth_token_only is CaiT's (DeiT has none)");
  return VG_OK;
}

/* ---------------------------------------------------------------- parameter count */
int64_t vg_vit_count_params(const vg_vit_config *c, int nblocks, bool with_norm) {
  if (check_config(c) != VG_OK) return -1;
  int64_t C = c->embed_dim, hid = mlp_hidden(c), H = c->num_heads, g = c->img_size / c->patch;
  int64_t qb = c->qkv_bias ? 1 : 0;
  bool full = nblocks < 0;
  if (full) nblocks = c->depth, with_norm = true;
  int64_t n = C * c->in_chans * c->patch * c->patch + C;                 /* patch_embed.proj */
  n += C * (1 + (c->arch == VG_VIT_DEIT && c->distilled ? 1 : 0));      /* cls, dist */
  n += (num_prefix(c) + g * g) * C;                                      /* pos_embed */
  int64_t mlp = hid * C + hid + C * hid + C;
  int64_t blk = 2 * C + 3 * C * C + 3 * C * qb + C * C + C + 2 * C + mlp;
  if (c->arch == VG_VIT_CAIT) blk += 2 * C + 2 * (H * H + H);
  n += blk * nblocks;
  if (full && c->arch == VG_VIT_CAIT)
    n += (int64_t)c->depth_token_only * (2 * C + 2 * C + 3 * (C * C + C * qb) + C * C + C + 2 * C + mlp);
  if (with_norm) n += 2 * C;
  if (full && c->num_classes)
    n += (int64_t)c->num_classes * (C + 1) * (c->arch == VG_VIT_DEIT && c->distilled ? 2 : 1);
  return n;
}

/* ---------------------------------------------------------------- building */
static vg_tensor *linear_fwd(vg_nn_module *m, const vg_tensor *x) {
  return vg_linear(x, vg_nn_param(m, "weight"), vg_nn_param(m, "bias"));
}

/* nn.Linear with timm's init: trunc_normal_(std=.02) (bounds +-2 never reached at this std), bias 0
 * (one Philox pass: vg_nn_linear_new would draw torch's default first, doubling the build time) */
static vg_nn_module *linear(int64_t in, int64_t out, bool bias, uint64_t seed) {
  vg_nn_module *l = vg_nn_module_new("Linear", linear_fwd, NULL, NULL);
  if (!l) return NULL;
  vg_tensor *w = vg_tensor_new(VG_F32, 2, (int64_t[]){out, in});
  if (w) vg_init_normal(w, 0.0, 0.02, seed);
  vg_nn_add_param(l, "weight", w);
  if (bias) {
    vg_tensor *b = vg_tensor_new(VG_F32, 1, (int64_t[]){out});
    if (b) vg_init_zeros(b);
    vg_nn_add_param(l, "bias", b);
  }
  return l;
}

static vg_nn_module *layernorm(const vg_vit_config *c) {
  return vg_nn_layernorm_new(1, (int64_t[]){c->embed_dim}, c->eps, true);
}

static vg_tensor *vec_param(int64_t n, double value) {
  vg_tensor *t = vg_tensor_new(VG_F32, 1, (int64_t[]){n});
  if (t) vg_init_constant(t, value);
  return t;
}

static vg_tensor *no_forward(vg_nn_module *m, const vg_tensor *x) {
  (void)x;
  vg_fail(VG_ERR_ARG, "%s: call it through vit.c's forward functions", m->kind_name);
  return NULL;
}

static vg_nn_module *mlp_new(const vg_vit_config *c, uint64_t *seed) {
  vg_nn_module *m = vg_nn_module_new("Mlp", no_forward, NULL, NULL);
  if (!m) return NULL;
  vg_nn_add_child(m, "fc1", linear(c->embed_dim, mlp_hidden(c), true, (*seed)++));
  vg_nn_add_child(m, "act", vg_nn_gelu_new());
  vg_nn_add_child(m, "fc2", linear(mlp_hidden(c), c->embed_dim, true, (*seed)++));
  return m;
}

static vg_nn_module *block_new(const vg_vit_config *c, uint64_t *seed) {
  bool cait = c->arch == VG_VIT_CAIT;
  vg_nn_module *b = vg_nn_module_new(cait ? "LayerScaleBlock" : "Block", no_forward, NULL, NULL);
  if (!b) return NULL;
  if (cait) {
    vg_nn_add_param(b, "gamma_1", vec_param(c->embed_dim, c->init_values));
    vg_nn_add_param(b, "gamma_2", vec_param(c->embed_dim, c->init_values));
  }
  vg_nn_add_child(b, "norm1", layernorm(c));
  vg_nn_module *a = vg_nn_module_new(cait ? "TalkingHeadAttn" : "Attention", no_forward, NULL, NULL);
  if (a) {
    vg_nn_add_child(a, "qkv", linear(c->embed_dim, 3 * c->embed_dim, c->qkv_bias, (*seed)++));
    vg_nn_add_child(a, "proj", linear(c->embed_dim, c->embed_dim, true, (*seed)++));
    if (cait) {
      vg_nn_add_child(a, "proj_l", linear(c->num_heads, c->num_heads, true, (*seed)++));
      vg_nn_add_child(a, "proj_w", linear(c->num_heads, c->num_heads, true, (*seed)++));
    }
  }
  vg_nn_add_child(b, "attn", a);
  vg_nn_add_child(b, "norm2", layernorm(c));
  vg_nn_add_child(b, "mlp", mlp_new(c, seed));
  return b;
}

static vg_nn_module *token_block_new(const vg_vit_config *c, uint64_t *seed) {
  vg_nn_module *b = vg_nn_module_new("LayerScaleBlockClassAttn", no_forward, NULL, NULL);
  if (!b) return NULL;
  vg_nn_add_param(b, "gamma_1", vec_param(c->embed_dim, c->init_values));
  vg_nn_add_param(b, "gamma_2", vec_param(c->embed_dim, c->init_values));
  vg_nn_add_child(b, "norm1", layernorm(c));
  vg_nn_module *a = vg_nn_module_new("ClassAttn", no_forward, NULL, NULL);
  if (a) {
    vg_nn_add_child(a, "q", linear(c->embed_dim, c->embed_dim, c->qkv_bias, (*seed)++));
    vg_nn_add_child(a, "k", linear(c->embed_dim, c->embed_dim, c->qkv_bias, (*seed)++));
    vg_nn_add_child(a, "v", linear(c->embed_dim, c->embed_dim, c->qkv_bias, (*seed)++));
    vg_nn_add_child(a, "proj", linear(c->embed_dim, c->embed_dim, true, (*seed)++));
  }
  vg_nn_add_child(b, "attn", a);
  vg_nn_add_child(b, "norm2", layernorm(c));
  vg_nn_add_child(b, "mlp", mlp_new(c, seed));
  return b;
}

static bool tree_ok(const vg_nn_module *m) {
  if (!m) return false;
  for (int i = 0; i < m->nchildren; i++)
    if (!tree_ok(m->children[i].m)) return false;
  for (int i = 0; i < m->nparams; i++)
    if (!m->params[i].t) return false;
  return true;
}

/* "blocks.K" / "norm.K" -> K, *norm; -1 when malformed */
static int parse_tap(const char *s, bool *norm) {
  const char *p;
  if (!strncmp(s, "blocks.", 7)) *norm = false, p = s + 7;
  else if (!strncmp(s, "norm.", 5)) *norm = true, p = s + 5;
  else return -1;
  if (*p < '0' || *p > '9') return -1;
  char *end;
  long k = strtol(p, &end, 10);
  if (*end || k < 0 || k > 100000 || (p[0] == '0' && p[1])) return -1;
  return (int)k;
}

static vg_nn_module *vit_build(const vg_vit_config *cfg, int ntaps, const char *const *taps, uint64_t seed,
                               const vg_backbone_desc *desc) {
  const char *who = desc ? desc->name : "vg_vit_new_config";
  if (check_config(cfg) != VG_OK) {
    vg_fail_prefix("%s", who);
    return NULL;
  }
  if (ntaps < 0 || ntaps > MAX_TAPS || (ntaps > 0 && !taps)) {
    vg_fail(VG_ERR_ARG, "%s: %d taps (0 = the full model, at most %d)", who, ntaps, MAX_TAPS);
    return NULL;
  }
  vit_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    vg_fail(VG_ERR_NOMEM, "%s: out of memory", who);
    return NULL;
  }
  c->cfg = *cfg;
  c->desc = desc;
  c->gh0 = c->gw0 = cfg->img_size / cfg->patch;
  c->ntaps = ntaps;
  c->full = ntaps == 0;
  int prev_block = -1;
  bool prev_norm = false;
  for (int i = 0; i < ntaps; i++) {
    bool norm = false;
    int k = taps[i] ? parse_tap(taps[i], &norm) : -1;
    if (k < 0 || k >= cfg->depth) {
      vg_fail(VG_ERR_ARG, "%s: no tap '%s' (it offers blocks.K and norm.K for K = 0..%d)", who,
              taps[i] ? taps[i] : "(null)", cfg->depth - 1);
      free(c);
      return NULL;
    }
    if (k < prev_block || (k == prev_block && (prev_norm || !norm))) {
      vg_fail(VG_ERR_ARG, "%s: taps must be distinct and in forward order ('%s' after '%s')", who, taps[i],
              c->tap_name[i - 1]);
      free(c);
      return NULL;
    }
    prev_block = k, prev_norm = norm;
    c->tap_block[i] = k;
    c->tap_norm[i] = norm;
    c->has_norm |= norm;
    snprintf(c->tap_name[i], sizeof c->tap_name[i], "%s", taps[i]);
  }
  c->nblocks = c->full ? cfg->depth : prev_block + 1;
  if (c->full) c->has_norm = true;
  bool deit = cfg->arch == VG_VIT_DEIT;
  vg_nn_module *m = vg_nn_module_new(deit ? (cfg->distilled ? "VisionTransformerDistilled" : "VisionTransformer")
                                          : "Cait", vit_forward, c, vit_ctx_free);
  if (!m) {
    free(c);
    return NULL;
  }
  int64_t C = cfg->embed_dim;
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  vg_tensor *cls = vg_tensor_new(VG_F32, 3, (int64_t[]){1, 1, C});
  if (cls) vg_init_normal(cls, 0.0, 0.02, s++);
  vg_nn_add_param(m, "cls_token", cls);
  vg_tensor *pos = vg_tensor_new(VG_F32, 3, (int64_t[]){1, num_prefix(cfg) + c->gh0 * c->gw0, C});
  if (pos) vg_init_normal(pos, 0.0, 0.02, s++);
  vg_nn_add_param(m, "pos_embed", pos);
  if (deit && cfg->distilled) {
    vg_tensor *dist = vg_tensor_new(VG_F32, 3, (int64_t[]){1, 1, C});
    if (dist) vg_init_normal(dist, 0.0, 0.02, s++);
    vg_nn_add_param(m, "dist_token", dist);
  }
  vg_nn_module *pe = vg_nn_module_new("PatchEmbed", no_forward, NULL, NULL);
  if (pe) {
    /* timm keeps nn.Conv2d's default init for the patch projection */
    vg_nn_add_child(pe, "proj", vg_nn_conv2d_new(cfg->in_chans, C, cfg->patch, cfg->patch,
                                                 (vg_nn_conv2d_opts){.sh = cfg->patch, .sw = cfg->patch}, s++));
    vg_nn_add_child(pe, "norm", vg_nn_identity_new());
  }
  vg_nn_add_child(m, "patch_embed", pe);
  vg_nn_module *blocks = vg_nn_sequential_new(0, NULL);
  for (int k = 0; blocks && k < c->nblocks; k++) vg_nn_sequential_append(blocks, block_new(cfg, &s));
  vg_nn_add_child(m, "blocks", blocks);
  if (c->full && !deit) {
    vg_nn_module *tb = vg_nn_sequential_new(0, NULL);
    for (int k = 0; tb && k < cfg->depth_token_only; k++) vg_nn_sequential_append(tb, token_block_new(cfg, &s));
    vg_nn_add_child(m, "blocks_token_only", tb);
  }
  if (c->has_norm) vg_nn_add_child(m, "norm", layernorm(cfg));
  if (c->full && cfg->num_classes) {
    vg_nn_add_child(m, "head", linear(C, cfg->num_classes, true, s++));
    if (deit && cfg->distilled) vg_nn_add_child(m, "head_dist", linear(C, cfg->num_classes, true, s++));
  }
  bool ok = tree_ok(m) && vg_nn_child_get(m, "blocks") && vg_nn_child_get(m, "blocks")->nchildren == c->nblocks;
  if (!ok) {
    vg_fail_prefix("%s: building the model", who);
    vg_nn_free(m);
    return NULL;
  }
  vg_nn_train(m, false);
  vg_nn_requires_grad(m, false);
  return m;
}

vg_nn_module *vg_vit_new_config(const vg_vit_config *cfg, int ntaps, const char *const *taps, uint64_t seed) {
  return vit_build(cfg, ntaps, taps, seed, NULL);
}

static vit_ctx *ctx_of(const vg_nn_module *m) { return m && m->forward == vit_forward ? m->ctx : NULL; }

bool vg_vit_info(const vg_nn_module *m, vg_vit_config *cfg) {
  vit_ctx *c = ctx_of(m);
  if (!c) return false;
  if (cfg) *cfg = c->cfg;
  return true;
}
int vg_vit_num_blocks(const vg_nn_module *m) {
  vit_ctx *c = ctx_of(m);
  return c ? c->nblocks : 0;
}
int vg_vit_num_prefix_tokens(const vg_nn_module *m) {
  vit_ctx *c = ctx_of(m);
  return c ? num_prefix(&c->cfg) : 0;
}

bool vg_vit_key_unbuilt(const vg_nn_module *m, const char *key) {
  vit_ctx *c = ctx_of(m);
  if (!c || !key) return false;
  static const char *const tops[] = {"head.", "head_dist.", "blocks_token_only.", "norm.", "fc_norm.", "head_drop."};
  for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
    size_t n = strlen(tops[i]);
    if (!strncmp(key, tops[i], n)) {
      char child[32];
      snprintf(child, sizeof child, "%.*s", (int)(n - 1), tops[i]);
      return vg_nn_child_get(m, child) == NULL;
    }
  }
  if (!strncmp(key, "blocks.", 7) && key[7] >= '0' && key[7] <= '9') {
    char *end;
    long k = strtol(key + 7, &end, 10);
    return *end == '.' && k >= c->nblocks;
  }
  return false;
}

/* ---------------------------------------------------------------- pos_embed resampling */
/* PyTorch's antialiased bicubic (UpSampleKernel.cpp, aa path): Keys a = -0.5, support 2 x scale when
 * downsampling, taps renormalised to sum 1; align_corners False (scale = in / out). */
static double aa_cubic(double x) {
  const double a = -0.5;
  x = fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

/* weights of output index i: w[0..*n) over input [*lo, *lo + *n) */
static int aa_weights(int64_t in, int64_t out, int64_t i, int64_t *lo, double *w, int cap) {
  double scale = (double)in / (double)out;
  double support = scale >= 1.0 ? 2.0 * scale : 2.0;
  double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  double center = scale * ((double)i + 0.5);
  int64_t xmin = (int64_t)(center - support + 0.5);
  if (xmin < 0) xmin = 0;
  int64_t xmax = (int64_t)(center + support + 0.5);
  if (xmax > in) xmax = in;
  int n = (int)(xmax - xmin);
  if (n > cap) n = cap;
  double total = 0;
  for (int j = 0; j < n; j++) {
    w[j] = aa_cubic(((double)(j + xmin) - center + 0.5) * invscale);
    total += w[j];
  }
  for (int j = 0; j < n; j++) w[j] = total != 0.0 ? w[j] / total : 0.0;
  *lo = xmin;
  return n;
}

vg_tensor *vg_vit_resample_pos_embed(const vg_tensor *pe, int num_prefix_tokens, int64_t gh, int64_t gw,
                                     int64_t nh, int64_t nw) {
  if (!pe || pe->ndim != 3 || pe->shape[0] != 1 || pe->dtype != VG_F32 || num_prefix_tokens < 0 || gh <= 0 ||
      gw <= 0 || nh <= 0 || nw <= 0 || pe->shape[1] != num_prefix_tokens + gh * gw) {
    vg_fail(VG_ERR_ARG, "vg_vit_resample_pos_embed: want a (1, %d + %lld x %lld, C) f32 pos_embed", num_prefix_tokens,
            (long long)gh, (long long)gw);
    return NULL;
  }
  if (pe->device != VG_CPU) {
    vg_fail(VG_ERR_ARG, "vg_vit_resample_pos_embed: CPU tensors only");
    return NULL;
  }
  int64_t C = pe->shape[2];
  vg_tensor *src = vg_contiguous(pe);
  vg_tensor *out = src ? vg_empty(VG_F32, 3, (int64_t[]){1, num_prefix_tokens + nh * nw, C}) : NULL;
  /* the scale can make the support large: cap generously (downsampling by s uses ~4s taps) */
  int cap_h = (int)(4.0 * ((double)gh / (double)nh + 1.0)) + 4, cap_w = (int)(4.0 * ((double)gw / (double)nw + 1.0)) + 4;
  double *wh = malloc(sizeof(double) * (size_t)cap_h), *ww = malloc(sizeof(double) * (size_t)cap_w);
  double *tmp = malloc(sizeof(double) * (size_t)(gh * nw * C));
  if (!out || !wh || !ww || !tmp) {
    free(wh), free(ww), free(tmp);
    if (src && out) vg_fail(VG_ERR_NOMEM, "vg_vit_resample_pos_embed: out of memory");
    return NULL;
  }
  const float *s = vg_f32(src);
  float *o = vg_f32(out);
  memcpy(o, s, sizeof(float) * (size_t)(num_prefix_tokens * C));
  const float *g = s + num_prefix_tokens * C;   /* (gh, gw, C) */
  /* horizontal pass (width) then vertical, as PyTorch's separable kernel; accumulated in double */
  for (int64_t x = 0; x < nw; x++) {
    int64_t lo;
    int n = aa_weights(gw, nw, x, &lo, ww, cap_w);
    for (int64_t y = 0; y < gh; y++) {
      double *t = tmp + (y * nw + x) * C;
      for (int64_t ch = 0; ch < C; ch++) t[ch] = 0;
      for (int j = 0; j < n; j++) {
        const float *r = g + (y * gw + lo + j) * C;
        for (int64_t ch = 0; ch < C; ch++) t[ch] += ww[j] * (double)r[ch];
      }
    }
  }
  float *og = o + num_prefix_tokens * C;
  for (int64_t y = 0; y < nh; y++) {
    int64_t lo;
    int n = aa_weights(gh, nh, y, &lo, wh, cap_h);
    for (int64_t x = 0; x < nw; x++) {
      float *d = og + (y * nw + x) * C;
      for (int64_t ch = 0; ch < C; ch++) {
        double acc = 0;
        for (int j = 0; j < n; j++) acc += wh[j] * tmp[((lo + j) * nw + x) * C + ch];
        d[ch] = (float)acc;
      }
    }
  }
  free(wh), free(ww), free(tmp);
  return out;
}

/* ---------------------------------------------------------------- forward pieces */
static vg_tensor *lin(vg_nn_module *l, const vg_tensor *x) {
  return vg_linear(x, vg_nn_param(l, "weight"), vg_nn_param(l, "bias"));
}
static vg_tensor *ln(vg_nn_module *l, const vg_tensor *x) { return vg_nn_forward(l, x); }

/* Linear l of a block: the fused inference path (vg_linear_ex: bias and GELU in the GEMM's
 * output step; the composite when recording) with slot's packed weight when the model is
 * packed and in eval mode (re-packed here when vg_packed_weight_current says it is stale) */
static vg_tensor *lin_ex(vit_ctx *c, int slot, vg_nn_module *l, const vg_tensor *x, bool gelu) {
  vg_tensor *w = vg_nn_param(l, "weight");
  const vg_packed_weight *pw = NULL;
  if (c && c->packing && slot >= 0 && slot < c->npw && !l->training && x && !x->requires_grad && w &&
      !w->requires_grad && w->device == VG_CPU && w->dtype == VG_F32) {
    if (!vg_packed_weight_current(c->pw[slot], w)) {
      vg_packed_weight_free(c->pw[slot]);
      c->pw[slot] = vg_linear_pack(w);
      if (!c->pw[slot]) vg_clear_error();   /* no pack: vg_linear_ex packs per call */
    }
    pw = c->pw[slot];
  }
  return vg_linear_ex(x, w, vg_nn_param(l, "bias"), pw, gelu);
}

/* slot: the block's first slot (4k), -1 for unpacked Linears */
static vg_tensor *mlp_fwd(vit_ctx *c, int slot, vg_nn_module *mlp, const vg_tensor *x) {
  vg_tensor *h = lin_ex(c, slot < 0 ? -1 : slot + PW_FC1, vg_nn_child_get(mlp, "fc1"), x, true);
  return lin_ex(c, slot < 0 ? -1 : slot + PW_FC2, vg_nn_child_get(mlp, "fc2"), h, false);
}

/* proj_l / proj_w over the head dim of (N, H, T, S): W (H, H) @ a viewed (N, H, T*S), + b */
static vg_tensor *head_mix(vg_nn_module *l, vg_tensor *a) {
  int64_t N = a->shape[0], H = a->shape[1], T = a->shape[2], S = a->shape[3];
  vg_tensor *a3 = vg_reshape(a, 3, (int64_t[]){N, H, T * S});
  vg_tensor *y = vg_matmul(vg_nn_param(l, "weight"), a3);
  y = vg_add(y, vg_reshape(vg_nn_param(l, "bias"), 2, (int64_t[]){H, 1}));
  return vg_reshape(y, 4, (int64_t[]){N, H, T, S});
}

static vg_tensor *attn_fwd(vit_ctx *c, int slot, vg_nn_module *a, const vg_tensor *x) {
  int64_t N = x->shape[0], T = x->shape[1], C = x->shape[2], H = c->cfg.num_heads, D = C / H;
  float scale = (float)(1.0 / sqrt((double)D));
  vg_tensor *qkv = lin_ex(c, slot + PW_QKV, vg_nn_child_get(a, "qkv"), x, false);
  if (c->cfg.arch == VG_VIT_DEIT)   /* timm's Attention, fused when nothing is recorded */
    return lin_ex(c, slot + PW_PROJ, vg_nn_child_get(a, "proj"), vg_attention_qkv(qkv, (int)H, scale), false);
  qkv = vg_permute(vg_reshape(qkv, 5, (int64_t[]){N, T, 3, H, D}), (int[]){2, 0, 3, 1, 4});
  vg_tensor *q = vg_scale(vg_select(qkv, 0, 0), scale);
  vg_tensor *k = vg_select(qkv, 0, 1), *v = vg_select(qkv, 0, 2);
  vg_tensor *att = vg_matmul(q, vg_transpose(k, 2, 3));   /* (N, H, T, T) */
  bool talking = c->cfg.arch == VG_VIT_CAIT;
  if (talking) att = head_mix(vg_nn_child_get(a, "proj_l"), att);
  att = vg_softmax(att, 3);
  if (talking) att = head_mix(vg_nn_child_get(a, "proj_w"), att);
  vg_tensor *o = vg_matmul(att, v);                       /* (N, H, T, D) */
  o = vg_reshape(vg_permute(o, (int[]){0, 2, 1, 3}), 3, (int64_t[]){N, T, C});
  return lin_ex(c, slot + PW_PROJ, vg_nn_child_get(a, "proj"), o, false);
}

static vg_tensor *block_fwd(vit_ctx *c, int k, vg_nn_module *b, const vg_tensor *x) {
  vg_tensor *g1 = vg_nn_param(b, "gamma_1"), *g2 = vg_nn_param(b, "gamma_2");
  vg_tensor *a = attn_fwd(c, k * PW_PER_BLOCK, vg_nn_child_get(b, "attn"), ln(vg_nn_child_get(b, "norm1"), x));
  vg_tensor *h = vg_add(x, g1 ? vg_mul(g1, a) : a);
  vg_tensor *f = mlp_fwd(c, k * PW_PER_BLOCK, vg_nn_child_get(b, "mlp"), ln(vg_nn_child_get(b, "norm2"), h));
  return vg_add(h, g2 ? vg_mul(g2, f) : f);
}

static bool check_tokens(const vit_ctx *c, const vg_tensor *t, const char *who) {
  if (!t || t->ndim != 3 || t->shape[2] != c->cfg.embed_dim) {
    vg_fail(VG_ERR_ARG, "%s: want (N, T, %lld) tokens", who, (long long)c->cfg.embed_dim);
    return false;
  }
  return true;
}

vg_tensor *vg_vit_embed(vg_nn_module *m, const vg_tensor *x) {
  vit_ctx *c = ctx_of(m);
  if (!c) {
    vg_fail(VG_ERR_ARG, "vg_vit_embed: not a ViT from vg_vit_new_config / vg_backbone_new");
    return NULL;
  }
  const vg_vit_config *cf = &c->cfg;
  if (!x || x->ndim != 4 || x->shape[1] != cf->in_chans || x->shape[2] < cf->patch || x->shape[3] < cf->patch ||
      x->shape[2] % cf->patch || x->shape[3] % cf->patch) {
    vg_fail(VG_ERR_ARG, "vg_vit_embed: want an (N, %d, H, W) input with H and W positive multiples of the patch "
            "size %d", cf->in_chans, cf->patch);
    return NULL;
  }
  int64_t N = x->shape[0], C = cf->embed_dim, gh = x->shape[2] / cf->patch, gw = x->shape[3] / cf->patch;
  vg_nn_module *proj = vg_nn_child_get(vg_nn_child_get(m, "patch_embed"), "proj");
  vg_tensor *y = vg_nn_forward(proj, x);   /* (N, C, gh, gw) */
  if (!y) {
    vg_fail_prefix("vg_vit_embed: patch_embed");
    return NULL;
  }
  y = vg_transpose(vg_reshape(y, 3, (int64_t[]){N, C, gh * gw}), 1, 2);   /* (N, gh*gw, C) */
  vg_tensor *pos = vg_nn_param(m, "pos_embed");
  int np = num_prefix(cf);
  if (gh != c->gh0 || gw != c->gw0) {
    /* forward only (the backbone is frozen): on the host in f32, then back to the model's device/dtype */
    vg_device dev = pos->device;
    vg_dtype dt = pos->dtype;
    if (dev != VG_CPU || dt != VG_F32) pos = vg_cast(vg_to_device(pos, VG_CPU), VG_F32);
    pos = vg_vit_resample_pos_embed(pos, np, c->gh0, c->gw0, gh, gw);
    if (pos && (dev != VG_CPU || dt != VG_F32)) pos = vg_cast(vg_to_device(pos, dev), dt);
    if (!pos) {
      vg_fail_prefix("vg_vit_embed");
      return NULL;
    }
  }
  if (np) {
    vg_tensor *parts[3];
    int n = 0;
    parts[n++] = vg_expand(vg_nn_param(m, "cls_token"), 3, (int64_t[]){N, 1, C});
    if (np > 1) parts[n++] = vg_expand(vg_nn_param(m, "dist_token"), 3, (int64_t[]){N, 1, C});
    parts[n++] = y;
    y = vg_concat(n, parts, 1);
  }
  vg_tensor *out = vg_add(y, pos);
  if (!out) vg_fail_prefix("vg_vit_embed");
  return out;
}

vg_tensor *vg_vit_block(vg_nn_module *m, int k, const vg_tensor *tokens) {
  vit_ctx *c = ctx_of(m);
  if (!c || k < 0 || k >= c->nblocks) {
    vg_fail(VG_ERR_ARG, "vg_vit_block: block %d of %d built (or not a ViT)", k, c ? c->nblocks : 0);
    return NULL;
  }
  if (!check_tokens(c, tokens, "vg_vit_block")) return NULL;
  vg_nn_module *b = vg_nn_child_get(m, "blocks")->children[k].m;
  bool nest = !vg_nn_would_record(b, 1, &tokens);
  if (nest) vg_scope_begin();
  vg_tensor *out = block_fwd(c, k, b, tokens);
  if (nest) vg_scope_end_keep(1, &out);
  if (!out) vg_fail_prefix("blocks.%d", k);
  return out;
}

vg_tensor *vg_vit_norm(vg_nn_module *m, const vg_tensor *tokens) {
  vit_ctx *c = ctx_of(m);
  if (!c || !c->has_norm) {
    vg_fail(VG_ERR_ARG, "vg_vit_norm: the model has no final norm built (request a norm.K tap)");
    return NULL;
  }
  if (!check_tokens(c, tokens, "vg_vit_norm")) return NULL;
  return ln(vg_nn_child_get(m, "norm"), tokens);
}

vg_tensor *vg_vit_token_block(vg_nn_module *m, int k, const vg_tensor *cls, const vg_tensor *tokens) {
  vit_ctx *c = ctx_of(m);
  vg_nn_module *tb = c ? vg_nn_child_get(m, "blocks_token_only") : NULL;
  if (!tb || k < 0 || k >= tb->nchildren) {
    vg_fail(VG_ERR_ARG, "vg_vit_token_block: no blocks_token_only.%d (CaiT built full, ntaps 0)", k);
    return NULL;
  }
  if (!check_tokens(c, tokens, "vg_vit_token_block") || !check_tokens(c, cls, "vg_vit_token_block") ||
      cls->shape[1] != 1 || cls->shape[0] != tokens->shape[0])
    return NULL;
  vg_nn_module *b = tb->children[k].m, *a = vg_nn_child_get(b, "attn");
  bool nest = !vg_nn_would_record(b, 2, (const vg_tensor *const[]){cls, tokens});
  if (nest) vg_scope_begin();
  int64_t N = tokens->shape[0], T = tokens->shape[1] + 1, C = c->cfg.embed_dim, H = c->cfg.num_heads, D = C / H;
  vg_tensor *u = vg_concat(2, (vg_tensor *[]){(vg_tensor *)cls, (vg_tensor *)tokens}, 1);
  vg_tensor *nu = ln(vg_nn_child_get(b, "norm1"), u);
  vg_tensor *q = lin(vg_nn_child_get(a, "q"), vg_narrow(nu, 1, 0, 1));          /* (N, 1, C) */
  q = vg_scale(vg_permute(vg_reshape(q, 4, (int64_t[]){N, 1, H, D}), (int[]){0, 2, 1, 3}),
               (float)(1.0 / sqrt((double)D)));
  vg_tensor *kk = vg_permute(vg_reshape(lin(vg_nn_child_get(a, "k"), nu), 4, (int64_t[]){N, T, H, D}),
                             (int[]){0, 2, 1, 3});
  vg_tensor *v = vg_permute(vg_reshape(lin(vg_nn_child_get(a, "v"), nu), 4, (int64_t[]){N, T, H, D}),
                            (int[]){0, 2, 1, 3});
  vg_tensor *att = vg_softmax(vg_matmul(q, vg_transpose(kk, 2, 3)), 3);         /* (N, H, 1, T) */
  vg_tensor *o = vg_reshape(vg_permute(vg_matmul(att, v), (int[]){0, 2, 1, 3}), 3, (int64_t[]){N, 1, C});
  o = lin(vg_nn_child_get(a, "proj"), o);
  vg_tensor *x = vg_add(cls, vg_mul(vg_nn_param(b, "gamma_1"), o));
  vg_tensor *f = mlp_fwd(c, -1, vg_nn_child_get(b, "mlp"), ln(vg_nn_child_get(b, "norm2"), x));
  vg_tensor *out = vg_add(x, vg_mul(vg_nn_param(b, "gamma_2"), f));
  if (nest) vg_scope_end_keep(1, &out);
  if (!out) vg_fail_prefix("blocks_token_only.%d", k);
  return out;
}

vg_tensor *vg_vit_tokens_to_grid(vg_nn_module *m, const vg_tensor *tokens, int64_t gh, int64_t gw) {
  vit_ctx *c = ctx_of(m);
  if (!c) {
    vg_fail(VG_ERR_ARG, "vg_vit_tokens_to_grid: not a ViT");
    return NULL;
  }
  int np = num_prefix(&c->cfg);
  if (!check_tokens(c, tokens, "vg_vit_tokens_to_grid")) return NULL;
  if (tokens->shape[1] != np + gh * gw) {
    vg_fail(VG_ERR_ARG, "vg_vit_tokens_to_grid: %lld tokens, want %d + %lld x %lld", (long long)tokens->shape[1], np,
            (long long)gh, (long long)gw);
    return NULL;
  }
  int64_t N = tokens->shape[0], C = c->cfg.embed_dim;
  vg_tensor *p = np ? vg_narrow(tokens, 1, np, gh * gw) : (vg_tensor *)tokens;
  return vg_contiguous(vg_reshape(vg_transpose(p, 1, 2), 4, (int64_t[]){N, C, gh, gw}));
}

/* ---------------------------------------------------------------- features */
vg_status vg_vit_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out) {
  vit_ctx *c = ctx_of(m);
  if (!c) return vg_fail(VG_ERR_ARG, "vg_vit_features: not a ViT from vg_vit_new_config / vg_backbone_new");
  if (!out) return vg_fail(VG_ERR_ARG, "vg_vit_features: NULL output");
  if (c->full || c->ntaps == 0) return vg_fail(VG_ERR_ARG, "vg_vit_features: a full model (no taps): use vg_vit_forward_full");
  bool rec = vg_nn_would_record(m, 1, &x);
  if (!rec) vg_scope_begin();
  vg_tensor *keep[MAX_TAPS + 1] = {0};
  vg_tensor *h = vg_vit_embed(m, x);
  int64_t gh = h ? x->shape[2] / c->cfg.patch : 0, gw = h ? x->shape[3] / c->cfg.patch : 0;
  int t = 0;
  vg_status st = h ? VG_OK : vg_fail_prefix("vg_vit_features");
  for (int k = 0; st == VG_OK && k < c->nblocks; k++) {
    h = vg_vit_block(m, k, h);
    if (!h) {
      st = vg_fail_prefix("vg_vit_features");
      break;
    }
    for (; t < c->ntaps && c->tap_block[t] == k; t++) {
      vg_tensor *tok = c->tap_norm[t] ? vg_vit_norm(m, h) : h;
      keep[t] = tok ? vg_vit_tokens_to_grid(m, tok, gh, gw) : NULL;
      if (!keep[t]) {
        st = vg_fail_prefix("vg_vit_features: %s", c->tap_name[t]);
        break;
      }
    }
    if (!rec && st == VG_OK && k + 1 < c->nblocks) {
      keep[c->ntaps] = h;
      vg_scope_reset_keep(c->ntaps + 1, keep);
      h = keep[c->ntaps];
    }
  }
  if (!rec) {
    if (st == VG_OK) vg_scope_end_keep(c->ntaps, keep);
    else vg_scope_end();
  }
  if (st == VG_OK)
    for (int i = 0; i < c->ntaps; i++) out[i] = keep[i];
  return st;
}

static vg_tensor *vit_forward(vg_nn_module *m, const vg_tensor *x) {
  vit_ctx *c = m->ctx;
  if (c->full) {
    vg_tensor *logits = NULL;
    return vg_vit_forward_full(m, x, NULL, &logits) == VG_OK ? logits : NULL;
  }
  vg_tensor *outs[MAX_TAPS];
  return vg_vit_features(m, x, outs) == VG_OK ? outs[c->ntaps - 1] : NULL;
}

vg_status vg_vit_forward_full(vg_nn_module *m, const vg_tensor *x, vg_tensor **pre_logits, vg_tensor **logits) {
  vit_ctx *c = ctx_of(m);
  if (!c || !c->full) return vg_fail(VG_ERR_ARG, "vg_vit_forward_full: not a full ViT (build with ntaps 0)");
  vg_tensor *h = vg_vit_embed(m, x);
  for (int k = 0; h && k < c->nblocks; k++) h = vg_vit_block(m, k, h);
  if (!h) return vg_fail_prefix("vg_vit_forward_full");
  int64_t N = h->shape[0], C = c->cfg.embed_dim;
  vg_tensor *pre;
  if (c->cfg.arch == VG_VIT_CAIT) {
    vg_tensor *cls = vg_expand(vg_nn_param(m, "cls_token"), 3, (int64_t[]){N, 1, C});
    vg_nn_module *tb = vg_nn_child_get(m, "blocks_token_only");
    for (int k = 0; cls && k < tb->nchildren; k++) cls = vg_vit_token_block(m, k, cls, h);
    if (!cls) return vg_fail_prefix("vg_vit_forward_full");
    h = vg_vit_norm(m, vg_concat(2, (vg_tensor *[]){cls, h}, 1));
    pre = vg_select(h, 1, 0);
  } else {
    h = vg_vit_norm(m, h);
    pre = vg_select(h, 1, 0);
    if (c->cfg.distilled) pre = vg_scale(vg_add(pre, vg_select(h, 1, 1)), 0.5f);
  }
  if (!pre) return vg_fail_prefix("vg_vit_forward_full");
  if (pre_logits) *pre_logits = pre;
  if (logits) {
    vg_nn_module *head = vg_nn_child_get(m, "head");
    if (!head) return vg_fail(VG_ERR_ARG, "vg_vit_forward_full: the model has no head (num_classes 0)");
    if (c->cfg.arch == VG_VIT_DEIT && c->cfg.distilled) {
      vg_tensor *a = lin(head, vg_select(h, 1, 0));
      vg_tensor *b = lin(vg_nn_child_get(m, "head_dist"), vg_select(h, 1, 1));
      *logits = vg_scale(vg_add(a, b), 0.5f);
    } else {
      *logits = lin(head, pre);
    }
    if (!*logits) return vg_fail_prefix("vg_vit_forward_full: head");
  }
  return VG_OK;
}

/* ---------------------------------------------------------------- test weights */
static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

vg_status vg_vit_init_philox(vg_nn_module *m, uint64_t base_seed) {
  if (!ctx_of(m)) return vg_fail(VG_ERR_ARG, "vg_vit_init_philox: not a ViT");
  vg_nn_list sd = vg_nn_state_dict(m);
  vg_status st = VG_OK;
  for (int i = 0; i < sd.n && st == VG_OK; i++) {
    vg_tensor *t = sd.tensors[i];
    const char *nm = sd.names[i];
    if (t->dtype != VG_F32) continue;
    uint64_t seed = base_seed + (uint64_t)i;
    if (ends_with(nm, "cls_token") || ends_with(nm, "dist_token") || ends_with(nm, "pos_embed")) {
      st = vg_uniform_(t, -0.5f, 0.5f, seed);
    } else if (ends_with(nm, "gamma_1") || ends_with(nm, "gamma_2")) {
      st = vg_uniform_(t, 0.5f, 1.0f, seed);
    } else if (ends_with(nm, ".weight") && (t->ndim == 2 || t->ndim == 4)) {
      int64_t fan_in = 1;
      for (int d = 1; d < t->ndim; d++) fan_in *= t->shape[d];
      float b = (float)sqrt(3.0 / (double)fan_in);
      st = vg_uniform_(t, -b, b, seed);
    } else if (ends_with(nm, ".weight") && t->ndim == 1) {
      st = vg_uniform_(t, 0.5f, 1.0f, seed);
    } else if (ends_with(nm, ".bias")) {
      st = vg_uniform_(t, -0.1f, 0.1f, seed);
    } else {
      st = vg_fail(VG_ERR_ARG, "vg_vit_init_philox: unexpected tensor %s", nm);
    }
  }
  vg_nn_list_free(&sd);
  vit_ctx *c = ctx_of(m);
  if (st == VG_OK && c->packing) st = vg_vit_prepack(m);
  return st;
}

/* ---------------------------------------------------------------- packed weights */
vg_status vg_vit_prepack(vg_nn_module *m) {
  vit_ctx *c = ctx_of(m);
  if (!c) return vg_fail(VG_ERR_ARG, "vg_vit_prepack: not a ViT from vg_vit_new_config / vg_backbone_new");
  vit_unpack_ctx(c);
  int n = c->nblocks * PW_PER_BLOCK;
  c->pw = calloc((size_t)n, sizeof *c->pw);
  if (!c->pw) return vg_fail(VG_ERR_NOMEM, "vg_vit_prepack: out of memory");
  c->npw = n;
  vg_nn_module *blocks = vg_nn_child_get(m, "blocks");
  for (int k = 0; k < c->nblocks; k++) {
    vg_nn_module *b = blocks->children[k].m, *a = vg_nn_child_get(b, "attn"), *mlp = vg_nn_child_get(b, "mlp");
    vg_nn_module *l[PW_PER_BLOCK] = {vg_nn_child_get(a, "qkv"), vg_nn_child_get(a, "proj"),
                                     vg_nn_child_get(mlp, "fc1"), vg_nn_child_get(mlp, "fc2")};
    for (int i = 0; i < PW_PER_BLOCK; i++) {
      vg_tensor *w = vg_nn_param(l[i], "weight");
      /* CPU f32 weights only (a model moved to CUDA runs unpacked) */
      if (w->device != VG_CPU || w->dtype != VG_F32) continue;
      c->pw[k * PW_PER_BLOCK + i] = vg_linear_pack(w);
      if (!c->pw[k * PW_PER_BLOCK + i]) {
        vit_unpack_ctx(c);
        return vg_fail_prefix("vg_vit_prepack: blocks.%d", k);
      }
    }
  }
  c->packing = true;
  return VG_OK;
}

void vg_vit_unpack(vg_nn_module *m) {
  vit_ctx *c = ctx_of(m);
  if (c) vit_unpack_ctx(c);
}

bool vg_vit_is_packed(const vg_nn_module *m) {
  vit_ctx *c = ctx_of(m);
  return c && c->packing;
}

/* ---------------------------------------------------------------- registry descriptors */
static vg_nn_module *vit_create(const vg_backbone_desc *d, int ntaps, const char *const *taps, uint64_t seed) {
  vg_vit_config cfg;
  if (!vg_vit_config_of(d->name, &cfg)) return NULL;
  if (ntaps <= 0) {
    vg_fail(VG_ERR_ARG, "backbone %s: no feature taps requested (it offers %s)", d->name, d->taps_help);
    return NULL;
  }
  return vit_build(&cfg, ntaps, taps, seed, d);
}
/* a published model's descriptor owns the models it made, and tiny vg_vit_new_config models of
 * its architecture (so methods can run them through the registry) */
static bool vit_owns(const vg_backbone_desc *d, const vg_nn_module *m) {
  vit_ctx *c = ctx_of(m);
  if (!c || c->full) return false;
  if (c->desc) return c->desc == d;
  vg_vit_config cfg;
  return vg_vit_config_of(d->name, &cfg) && cfg.arch == c->cfg.arch;
}
static int vit_num_features(const vg_nn_module *m) {
  vit_ctx *c = ctx_of(m);
  return c ? c->ntaps : 0;
}
static int64_t vit_channels(const vg_nn_module *m, int i) {
  vit_ctx *c = ctx_of(m);
  return c && i >= 0 && i < c->ntaps ? c->cfg.embed_dim : 0;
}
static int vit_stride(const vg_nn_module *m, int i) {
  vit_ctx *c = ctx_of(m);
  return c && i >= 0 && i < c->ntaps ? c->cfg.patch : 0;
}
static const char *vit_name(const vg_nn_module *m, int i) {
  vit_ctx *c = ctx_of(m);
  return c && i >= 0 && i < c->ntaps ? c->tap_name[i] : NULL;
}
#define VIT_DESC(ident, size, nparams, help)                                                         \
  const vg_backbone_desc vg_backbone_##ident = {                                                    \
      .name = #ident, .family = "vit", .native_size = size, .num_params = nparams,                \
      .taps_help = help, .create = vit_create, .owns = vit_owns, .features = vg_vit_features,       \
      .num_features = vit_num_features, .feature_channels = vit_channels, .feature_stride = vit_stride, \
      .feature_name = vit_name, .init_philox = vg_vit_init_philox}
VIT_DESC(deit_base_distilled_patch16_384, 384, 87630032, "blocks.0..blocks.11, norm.0..norm.11");
VIT_DESC(cait_m48_448, 448, 356460520, "blocks.0..blocks.47, norm.0..norm.47");
