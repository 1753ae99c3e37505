/* test_vit — timm DeiT (distilled) and CaiT: parameter counts and names, taps and truncation,
 * pos_embed resampling, loading timm .safetensors / .pth by name (errors named), and golden
 * tokens block by block, features and the full forward vs timm 1.0 (float64 reference, REDUCED
 * configs) with Philox weights made here and in tools/gen_vit_fixtures.py by the same scheme. */
#include "nn/backbones/vit.h"
#include "tests/common/fixture.h"
#include "tests/vgtest.h"
#include "tests/common/vit_tiny.h"
#include "nn/safetensors.h"
#include <unistd.h>
#include <time.h>

#define BASE_SEED 2100
#define LOAD_SEED 4200
#define TOL 1e-5

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static vg_vit_config load_cfg(vg_vit_arch arch) {
  vg_vit_config c = vg_test_vit_tiny(arch);
  c.img_size = 8;
  c.patch = 4;
  c.embed_dim = 8;
  c.depth = 2;
  c.num_heads = 2;
  c.mlp_ratio = 2.0;
  c.num_classes = 3;
  return c;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= e)) e = d;
  }
  return e;
}

/* ---------------------------------------------------------------- architecture */
static void param_counts(void) {
  vg_vit_config d, c;
  VG_CHECK(vg_vit_config_of("deit_base_distilled_patch16_384", &d) && vg_vit_config_of("cait_m48_448", &c),
           "published configs");
  VG_CHECK(!vg_vit_config_of("vit_base_patch16_224", NULL) && strstr(vg_last_error(), "cait_m48_448"),
           "unknown model name refused, known ones listed: %s", vg_last_error());
  int64_t nd = vg_vit_count_params(&d, -1, true), nc = vg_vit_count_params(&c, -1, true);
  VG_CHECK(nd == 87630032, "deit_base_distilled_patch16_384: %lld parameters (timm 87,630,032), not built", (long long)nd);
  VG_CHECK(nc == 356460520, "cait_m48_448: %lld parameters (timm 356,460,520), not built", (long long)nc);
  const vg_backbone_desc *dd = vg_backbone_find("deit_base_distilled_patch16_384");
  const vg_backbone_desc *dc = vg_backbone_find("cait_m48_448");
  VG_CHECK(dd && dc && dd->num_params == nd && dc->num_params == nc && !strcmp(dd->family, "vit") &&
               dd->native_size == 384 && dc->native_size == 448,
           "registry descriptors: counts, family, native sizes");

  /* the full DeiT-B built (350 MB): every parameter where the count says */
  double t0 = now();
  vg_nn_module *m = vg_vit_new_config(&d, 0, NULL, 1);
  int64_t got = m ? vg_nn_num_params(m, false) : -1;
  VG_CHECK(got == 87630032, "full DeiT-B built: %lld parameters (%.1f s)", (long long)got, now() - t0);
  if (m) {
    vg_tensor *q = vg_nn_get(m, "blocks.11.attn.qkv.weight"), *pe = vg_nn_get(m, "pos_embed");
    vg_tensor *hd = vg_nn_get(m, "head_dist.weight"), *dt = vg_nn_get(m, "dist_token");
    VG_CHECK(q && q->shape[0] == 2304 && q->shape[1] == 768 && pe && pe->shape[1] == 578 && hd &&
                 hd->shape[0] == 1000 && dt && vg_nn_num_params(m, true) == 0,
             "DeiT-B names and shapes (qkv (2304,768), pos_embed (1,578,768), head_dist), frozen");
    vg_nn_free(m);
  }
  if (vg_test_long()) {   /* the full CaiT-M48 built (1.4 GB): make test-long only */
    t0 = now();
    m = vg_vit_new_config(&c, 0, NULL, 1);
    got = m ? vg_nn_num_params(m, false) : -1;
    VG_CHECK(got == 356460520 && vg_nn_get(m, "blocks_token_only.1.attn.v.weight") && vg_nn_get(m, "blocks.47.gamma_2"),
             "full CaiT-M48 built: %lld parameters (%.1f s)", (long long)got, now() - t0);
    vg_nn_free(m);
  } else {
    printf("SKIP full CaiT-M48 built (1.4 GB): make test-long (its count without building is checked above)\n");
  }
  /* truncated through the registry, as FastFlow asks */
  m = vg_backbone_new("deit_base_distilled_patch16_384", 1, (const char *[]){"norm.7"}, 3);
  VG_CHECK(m && vg_nn_num_params(m, false) == vg_vit_count_params(&d, 8, true) && vg_vit_num_blocks(m) == 8 &&
               vg_backbone_num_features(m) == 1 && vg_backbone_feature_channels(m, 0) == 768 &&
               vg_backbone_feature_stride(m, 0) == 16 && !strcmp(vg_backbone_feature_name(m, 0), "norm.7") &&
               !vg_nn_get(m, "blocks.8.norm1.weight") && vg_nn_get(m, "norm.weight") && !vg_nn_get(m, "head.weight") &&
               !m->training,
           "registry deit norm.7: blocks 0..7 + norm (%lld params), 768 channels, stride 16, eval",
           m ? (long long)vg_nn_num_params(m, false) : -1LL);
  if (m) {
    /* a small input (4 x 4 grid: pos_embed resampled) runs */
    vg_scope_begin();
    vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){1, 3, 64, 48});
    vg_uniform_(x, -1, 1, 5);
    vg_tensor *f = NULL;
    vg_status st = vg_backbone_features(m, x, &f);
    VG_CHECK(st == VG_OK && f && f->shape[0] == 1 && f->shape[1] == 768 && f->shape[2] == 4 && f->shape[3] == 3,
             "registry deit norm.7 at 64x48: (1, 768, 4, 3)%s%s", st ? ": " : "", st ? vg_last_error() : "");
    vg_scope_end();
    vg_nn_free(m);
  }
  m = vg_backbone_new("cait_m48_448", 2, (const char *[]){"blocks.0", "norm.1"}, 3);
  VG_CHECK(m && vg_nn_num_params(m, false) == vg_vit_count_params(&c, 2, true) && vg_backbone_num_features(m) == 2 &&
               vg_nn_get(m, "blocks.1.attn.proj_l.weight") && vg_nn_get(m, "blocks.0.gamma_1") &&
               fabsf(vg_f32(vg_nn_get(m, "blocks.0.gamma_1"))[0] - 1e-6f) < 1e-12f && !vg_nn_get(m, "blocks.2.gamma_1"),
           "registry cait blocks.0 + norm.1: 2 blocks + norm, gamma = init_values 1e-6");
  vg_nn_free(m);
  /* bad taps are refused by name */
  const char *bad[][2] = {{"blocks.12", NULL}, {"norm.x", NULL}, {"layer3", NULL}, {"norm.3", "blocks.2"},
                          {"norm.3", "norm.3"}, {"blocks.07", NULL}, {"norm.-1", NULL}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int n = bad[i][1] ? 2 : 1;
    vg_nn_module *b = vg_backbone_new("deit_base_distilled_patch16_384", n, bad[i], 1);
    VG_CHECK(!b && strstr(vg_last_error(), bad[i][n - 1]), "taps {%s%s%s} refused: %s", bad[i][0], n > 1 ? ", " : "",
             n > 1 ? bad[i][1] : "", vg_last_error());
    vg_nn_free(b);
  }
  vg_vit_config z = vg_test_vit_tiny(VG_VIT_DEIT);
  z.num_heads = 5;
  VG_CHECK(!vg_vit_new_config(&z, 1, (const char *[]){"blocks.0"}, 1) && strstr(vg_last_error(), "num_heads"),
           "embed_dim not a multiple of num_heads refused: %s", vg_last_error());
  /* bad inputs are refused with the expected shape in the message */
  {
    vg_vit_config t = vg_test_vit_tiny(VG_VIT_DEIT);
    vg_nn_module *b = vg_vit_new_config(&t, 1, (const char *[]){"norm.1"}, 1);
    VG_CHECK(b && vg_nn_num_params(b, false) == vg_vit_count_params(&t, 2, true) &&
                 vg_vit_count_params(&t, 2, false) == vg_vit_count_params(&t, 2, true) - 2 * 48,
             "tiny deit norm.1: built == counted (2 blocks + norm)");
    const int64_t shapes[][4] = {{1, 3, 70, 64}, {1, 1, 64, 64}, {1, 3, 8, 64}, {2, 3, 64, 0}};
    for (int i = 0; b && i < 4; i++) {
      vg_scope_begin();
      vg_tensor *x = vg_zeros(VG_F32, 4, shapes[i]), *f = NULL;
      vg_status st = vg_backbone_features(b, x, &f);
      VG_CHECK(st != VG_OK && !f && strstr(vg_last_error(), "multiples of the patch size 16"),
               "input (%lld, %lld, %lld, %lld) refused: %s", (long long)shapes[i][0], (long long)shapes[i][1],
               (long long)shapes[i][2], (long long)shapes[i][3], vg_last_error());
      vg_scope_end();
    }
    vg_nn_free(b);
  }
  /* the tiny configs: built count == count without building == timm's (fixture) */
  for (int a = 0; a < 2; a++) {
    vg_vit_config t = vg_test_vit_tiny((vg_vit_arch)a);
    vg_nn_module *full = vg_vit_new_config(&t, 0, NULL, 1);
    VG_CHECK(full && vg_nn_num_params(full, false) == vg_vit_count_params(&t, -1, true),
             "%s tiny full: built %lld == counted %lld", a ? "cait" : "deit",
             full ? (long long)vg_nn_num_params(full, false) : -1LL, (long long)vg_vit_count_params(&t, -1, true));
    vg_nn_free(full);
  }
}

/* ---------------------------------------------------------------- golden */
static const vg_fx_tensor *fxget(const vg_fixture *fx, const char *tag, const char *what, const char *field) {
  char key[96];
  snprintf(key, sizeof key, "%s.%s.%s", tag, what, field);
  return vg_fixture_get(fx, key);
}

/* tokens (N, T, C) vs the fixture's stats; returns the error relative to max|want| */
static double cmp_stats(const vg_fixture *fx, const char *tag, const char *what, const vg_tensor *t) {
  const vg_fx_tensor *shp = fxget(fx, tag, what, "shape"), *mx = fxget(fx, tag, what, "maxabs"),
                     *cm = fxget(fx, tag, what, "chmean"), *sd = fxget(fx, tag, what, "stride"),
                     *sub = fxget(fx, tag, what, "sub");
  if (!shp || !mx || !cm || !sd || !sub || !t) return INFINITY;
  if (shp->n != t->ndim) return INFINITY;
  for (int d = 0; d < t->ndim; d++)
    if ((int64_t)shp->data[d] != t->shape[d]) return INFINITY;
  vg_tensor *c = vg_contiguous(t);
  const float *p = vg_f32(c);
  int64_t n = vg_numel(c), C = t->shape[t->ndim - 1], k = (int64_t)sd->data[0];
  double e = 0;
  for (int64_t i = 0, j = 0; i < n; i += k, j++) {
    if (j >= sub->n) return INFINITY;
    double d = fabs((double)p[i] - sub->data[j]);
    if (!(d <= e)) e = d;
  }
  double *mean = calloc((size_t)C, sizeof(double));
  for (int64_t i = 0; i < n; i++) mean[i % C] += p[i];
  for (int64_t ch = 0; ch < C; ch++) {
    double d = fabs(mean[ch] / (double)(n / C) - cm->data[ch]);
    if (!(d <= e)) e = d;
  }
  free(mean);
  return e / mx->data[0];
}

static double cmp_full(const vg_fixture *fx, const char *tag, const char *what, const vg_tensor *t) {
  const vg_fx_tensor *shp = fxget(fx, tag, what, "shape"), *mx = fxget(fx, tag, what, "maxabs"),
                     *data = fxget(fx, tag, what, "data");
  if (!shp || !mx || !data || !t || shp->n != t->ndim) return INFINITY;
  for (int d = 0; d < t->ndim; d++)
    if ((int64_t)shp->data[d] != t->shape[d]) return INFINITY;
  vg_tensor *c = vg_contiguous(t);
  if (vg_numel(c) != data->n) return INFINITY;
  return max_abs_diff(vg_f32(c), data->data, data->n) / mx->data[0];
}

/* copies every state entry of `from` into `to` by name (a truncated model from a full one) */
static bool copy_by_name(vg_nn_module *to, const vg_nn_module *from) {
  vg_nn_list sd = vg_nn_state_dict(to);
  bool ok = true;
  for (int i = 0; i < sd.n && ok; i++) {
    vg_tensor *src = vg_nn_get(from, sd.names[i]);
    ok = src && vg_numel(src) == vg_numel(sd.tensors[i]) && vg_copy_(sd.tensors[i], src) == VG_OK;
  }
  vg_nn_list_free(&sd);
  return ok;
}

static const struct {
  const char *tag;
  int64_t n, h, w;
  uint64_t seed;
} CASES[] = {{"native", 2, 64, 64, 11}, {"up", 1, 96, 80, 12}, {"down", 1, 48, 32, 13}};

static void golden(vg_vit_arch arch) {
  const char *an = arch == VG_VIT_DEIT ? "deit" : "cait";
  char path[64];
  snprintf(path, sizeof path, "vit_%s.vgfx", an);
  vg_fixture *fx = vg_fixture_load(vg_test_fixture(path));
  if (!fx) {
    printf("SKIP %s golden: fixture %s absent (tools/gen_vit_fixtures.py)\n", an, path);
    return;
  }
  const vg_fx_tensor *chk = vg_fixture_get(fx, "philox.check");
  vg_scope_begin();
  vg_tensor *pc = vg_rand(1, (int64_t[]){8}, BASE_SEED);
  VG_CHECK(chk && chk->n == 8 && max_abs_diff(vg_f32(pc), chk->data, 8) == 0, "%s: Philox stream as tools/philox.py", an);
  vg_scope_end();
  vg_vit_config cfg = vg_test_vit_tiny(arch);
  vg_nn_module *full = vg_vit_new_config(&cfg, 0, NULL, 1);
  /* the FastFlow-style truncated model (every block + norm), weights copied by name */
  vg_nn_module *tr = vg_vit_new_config(&cfg, 2, (const char *[]){"blocks.1", "norm.3"}, 2);
  bool built = full && tr && vg_vit_init_philox(full, BASE_SEED) == VG_OK && copy_by_name(tr, full);
  const vg_fx_tensor *np = vg_fixture_get(fx, "num_params");
  VG_CHECK(built && np && (int64_t)np->data[0] == vg_nn_num_params(full, false),
           "%s tiny: built, Philox weights, %lld params (timm %lld)", an, full ? (long long)vg_nn_num_params(full, false) : -1LL,
           np ? (long long)np->data[0] : -1LL);
  for (size_t ci = 0; built && ci < sizeof CASES / sizeof CASES[0]; ci++) {
    const char *tag = CASES[ci].tag;
    int64_t gh = CASES[ci].h / 16, gw = CASES[ci].w / 16;
    vg_scope_begin();
    vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){CASES[ci].n, 3, CASES[ci].h, CASES[ci].w});
    vg_uniform_(x, -2.0f, 2.0f, CASES[ci].seed);
    /* step by step */
    double worst = 0;
    vg_tensor *h = vg_vit_embed(full, x);
    double e = cmp_stats(fx, tag, "embed", h);
    VG_CHECK(e <= TOL, "%s %s embed (patches + pos_embed%s): err %.2e of max|x|", an, tag,
             ci ? ", resampled" : "", e);
    for (int k = 0; k < cfg.depth; k++) {
      h = vg_vit_block(full, k, h);
      char nm[32];
      snprintf(nm, sizeof nm, "blocks.%d", k);
      e = cmp_stats(fx, tag, nm, h);
      if (!(e <= worst)) worst = e;
    }
    VG_CHECK(worst <= TOL, "%s %s tokens after each of %d blocks%s: worst err %.2e of max|x|", an, tag, cfg.depth,
             arch == VG_VIT_CAIT ? " (talking heads, LayerScale)" : "", worst);
    vg_tensor *hn = vg_vit_norm(full, h);
    e = cmp_stats(fx, tag, "norm", hn);
    VG_CHECK(e <= TOL, "%s %s after norm: err %.2e", an, tag, e);
    /* features through the taps (registry) */
    vg_tensor *f[2] = {0};
    vg_status st = vg_backbone_features(tr, x, f);
    e = st == VG_OK ? cmp_full(fx, tag, "features", f[1]) : INFINITY;
    VG_CHECK(e <= TOL, "%s %s features norm.3 (%lld, 48, %lld, %lld) via vg_backbone_features: err %.2e of max|f|%s%s", an,
             tag, (long long)CASES[ci].n, (long long)gh, (long long)gw, e, st ? ": " : "", st ? vg_last_error() : "");
    if (st == VG_OK) {
      /* blocks.1 tap = tokens after block 1 as a grid, prefix dropped */
      vg_tensor *h1 = vg_vit_block(full, 1, vg_vit_block(full, 0, vg_vit_embed(full, x)));
      vg_tensor *g1 = vg_vit_tokens_to_grid(full, h1, gh, gw);
      VG_CHECK(g1 && f[0] && vg_numel(g1) == vg_numel(f[0]) && max_abs_diff(vg_f32(g1), vg_f32(f[0]), vg_numel(g1)) == 0,
               "%s %s blocks.1 tap == step-by-step tokens as grid", an, tag);
    }
    /* the same with autograd recording (parameters requiring grad): no nested scopes */
    vg_nn_requires_grad(tr, true);
    vg_tensor *fr[2] = {0};
    st = vg_vit_features(tr, x, fr);
    vg_nn_requires_grad(tr, false);
    VG_CHECK(st == VG_OK && f[1] && fr[1] && max_abs_diff(vg_f32(vg_contiguous(fr[1])), vg_f32(f[1]), vg_numel(f[1])) == 0,
             "%s %s features recorded by autograd == inference path", an, tag);
    if (ci == 0) {
      vg_tensor *pre = NULL, *logits = NULL;
      st = vg_vit_forward_full(full, x, &pre, &logits);
      double e1 = st == VG_OK ? cmp_full(fx, tag, "pre_logits", pre) : INFINITY;
      double e2 = st == VG_OK ? cmp_full(fx, tag, "logits", logits) : INFINITY;
      VG_CHECK(e1 <= TOL && e2 <= TOL, "%s full forward (%s): pre_logits err %.2e, logits err %.2e", an,
               arch == VG_VIT_CAIT ? "class attention, norm, head" : "head/head_dist average", e1, e2);
      if (arch == VG_VIT_CAIT) {
        vg_tensor *cls = vg_expand(vg_nn_get(full, "cls_token"), 3, (int64_t[]){CASES[ci].n, 1, cfg.embed_dim});
        double ew = 0;
        for (int k = 0; k < cfg.depth_token_only; k++) {
          cls = vg_vit_token_block(full, k, cls, h);
          char nm[32];
          snprintf(nm, sizeof nm, "cls.%d", k);
          e = cmp_stats(fx, tag, nm, cls);
          if (!(e <= ew)) ew = e;
        }
        VG_CHECK(ew <= TOL, "cait class-attention blocks_token_only.0..1 cls token: worst err %.2e", ew);
      }
    }
    if (arch == VG_VIT_DEIT && ci > 0) {
      char key[64];
      snprintf(key, sizeof key, "%s.pos_embed.data", tag);
      const vg_fx_tensor *want = vg_fixture_get(fx, key);
      vg_tensor *r = vg_vit_resample_pos_embed(vg_nn_get(full, "pos_embed"), 2, 4, 4, gh, gw);
      double er = want && r && vg_numel(r) == want->n ? max_abs_diff(vg_f32(r), want->data, want->n) : INFINITY;
      VG_CHECK(er <= 2e-6, "resample_abs_pos_embed 4x4 -> %lldx%lld (bicubic antialias, 2 prefix rows kept): max err %.2e",
               (long long)gh, (long long)gw, er);
    }
    vg_scope_end();
  }
  vg_nn_free(full);
  vg_nn_free(tr);
  vg_fixture_free(fx);
}

/* ---------------------------------------------------------------- resampler properties */
static void resample_props(void) {
  vg_scope_begin();
  /* a constant grid stays constant (taps renormalised), the same size is the identity */
  vg_tensor *pe = vg_full(VG_F32, 3, (int64_t[]){1, 1 + 9, 4}, 0.75);
  vg_tensor *r = vg_vit_resample_pos_embed(pe, 1, 3, 3, 7, 2);
  bool ok = r && r->shape[1] == 1 + 14;
  for (int64_t i = 0; ok && i < vg_numel(r); i++) ok = fabsf(vg_f32(r)[i] - 0.75f) < 1e-6f;
  VG_CHECK(ok, "resampled constant grid 3x3 -> 7x2 stays constant");
  vg_tensor *p2 = vg_empty(VG_F32, 3, (int64_t[]){1, 2 + 12, 5});
  vg_uniform_(p2, -1, 1, 9);
  vg_tensor *same = vg_vit_resample_pos_embed(p2, 2, 3, 4, 3, 4);
  VG_CHECK(same && max_abs_diff(vg_f32(same), vg_f32(p2), vg_numel(p2)) < 1e-7, "same size: identity");
  VG_CHECK(!vg_vit_resample_pos_embed(p2, 2, 4, 4, 3, 3) && strstr(vg_last_error(), "pos_embed"),
           "wrong grid for the token count refused: %s", vg_last_error());
  vg_scope_end();
}

/* ---------------------------------------------------------------- loading timm checkpoints */
static bool same_values(const vg_nn_module *a, const vg_nn_module *b, int *n) {
  vg_nn_list sd = vg_nn_state_dict(a);
  bool ok = sd.n > 0;
  for (int i = 0; i < sd.n && ok; i++) {
    vg_tensor *t = vg_nn_get(b, sd.names[i]);
    ok = t && vg_numel(t) == vg_numel(sd.tensors[i]) &&
         max_abs_diff(vg_f32(t), vg_f32(sd.tensors[i]), vg_numel(t)) == 0;
  }
  *n = sd.n;
  vg_nn_list_free(&sd);
  return ok;
}

static void loading(vg_vit_arch arch) {
  const char *an = arch == VG_VIT_DEIT ? "deit" : "cait";
  const char *ext[2] = {"safetensors", "pth"};
  vg_vit_config cfg = load_cfg(arch);
  vg_nn_module *ref = vg_vit_new_config(&cfg, 0, NULL, 1);
  if (!VG_CHECK(ref && vg_vit_init_philox(ref, LOAD_SEED) == VG_OK, "%s load reference built", an)) return;
  for (int e = 0; e < 2; e++) {
    char name[64];
    snprintf(name, sizeof name, "vit_load_%s.%s", an, ext[e]);
    char path[512];
    snprintf(path, sizeof path, "%s", vg_test_fixture(name));
    FILE *fp = fopen(path, "rb");
    if (!fp) {
      printf("SKIP %s: fixture absent (tools/gen_vit_fixtures.py)\n", name);
      continue;
    }
    fclose(fp);
    int n = 0;
    /* the full model, strict: every key and shape */
    vg_nn_module *m = vg_vit_new_config(&cfg, 0, NULL, 7);
    vg_status st = vg_nn_load_state_file(m, path, true);
    bool same = st == VG_OK && same_values(ref, m, &n);
    VG_CHECK(same, "%s: full timm %s model loaded strictly by name (%d tensors)%s%s", name, an, n, st ? ": " : "",
             st ? vg_last_error() : "");
    vg_nn_free(m);
    /* truncated (block 0 + norm): the unbuilt block, blocks_token_only, head ignored, strict too */
    m = vg_vit_new_config(&cfg, 1, (const char *[]){"norm.0"}, 7);
    st = vg_nn_load_state_file(m, path, true);
    same = st == VG_OK && same_values(m, ref, &n);
    VG_CHECK(same,
             "%s: into a truncated model (blocks.0 + norm, %d tensors), the rest ignored%s%s", name, n, st ? ": " : "",
             st ? vg_last_error() : "");
    vg_nn_free(m);
    m = vg_vit_new_config(&cfg, 1, (const char *[]){"blocks.0"}, 7);
    st = vg_nn_load_state_file(m, path, false);
    VG_CHECK(st == VG_OK && same_values(m, ref, &n) && !vg_nn_get(m, "norm.weight"),
             "%s: non-strict into blocks.0 only (no norm built)", name);
    vg_nn_free(m);
    /* wrong shape: mlp ratio 4 -> fc1 (32, 8) vs the file's (16, 8) */
    vg_vit_config w = cfg;
    w.mlp_ratio = 4.0;
    m = vg_vit_new_config(&w, 1, (const char *[]){"norm.1"}, 7);
    st = vg_nn_load_state_file(m, path, false);
    VG_CHECK(st != VG_OK && strstr(vg_last_error(), "blocks.0.mlp.fc1.weight"), "%s: wrong shape named: %s", name,
             vg_last_error());
    vg_nn_free(m);
    /* wrong native size: pos_embed (1, prefix + 9, 8) vs the file's 2 x 2 grid */
    w = cfg;
    w.img_size = 12;
    m = vg_vit_new_config(&w, 1, (const char *[]){"norm.1"}, 7);
    st = vg_nn_load_state_file(m, path, true);
    VG_CHECK(st != VG_OK && strstr(vg_last_error(), "pos_embed"), "%s: pos_embed of another grid named: %s", name,
             vg_last_error());
    vg_nn_free(m);
    /* missing keys: the other architecture's model, strict */
    w = load_cfg(arch == VG_VIT_DEIT ? VG_VIT_CAIT : VG_VIT_DEIT);
    m = vg_vit_new_config(&w, 1, (const char *[]){"norm.1"}, 7);
    st = vg_nn_load_state_file(m, path, true);
    VG_CHECK(st != VG_OK && (arch == VG_VIT_DEIT ? strstr(vg_last_error(), "gamma_1") != NULL
                                                 : strstr(vg_last_error(), "dist_token") != NULL),
             "%s: strict into the other architecture: missing key named: %s", name, vg_last_error());
    vg_nn_free(m);
  }
  vg_nn_free(ref);
}

/* ---------------------------------------------------------------- full size, by hand
 * tools/check_vit_full.py writes DIR/<model>.safetensors (timm weights), DIR/<model>_x<S>.safetensors
 * ("x": the input) and DIR/<model>_ref<S>.safetensors (timm's features, one tensor per tap) and runs
 * this program with VIGIL_VIT_FULL=DIR: each model is loaded by name (strict), run at each size
 * and compared (error relative to max|ref|). */
static void full_size(void) {
  const char *dir = getenv("VIGIL_VIT_FULL");
  if (!dir || !*dir) {
    printf("SKIP full-size DeiT-B / CaiT-M48 vs timm: set VIGIL_VIT_FULL (tools/check_vit_full.py)\n");
    return;
  }
  static const struct {
    const char *name;
    int ntaps;
    const char *taps[2];
    int sizes[2];
  } M[] = {{"deit_base_distilled_patch16_384", 2, {"norm.7", "norm.11"}, {384, 320}},
           {"cait_m48_448", 2, {"norm.40", "norm.47"}, {448, 0}}};
  for (size_t i = 0; i < sizeof M / sizeof M[0]; i++) {
    char wpath[1024];
    snprintf(wpath, sizeof wpath, "%s/%s.safetensors", dir, M[i].name);
    if (access(wpath, R_OK)) {
      printf("SKIP %s: %s absent\n", M[i].name, wpath);
      continue;
    }
    double t0 = now();
    vg_nn_module *m = vg_backbone_new(M[i].name, M[i].ntaps, M[i].taps, 0);
    double t1 = now();
    vg_status st = m ? vg_nn_load_state_file(m, wpath, true) : VG_ERR_ARG;
    VG_CHECK(st == VG_OK, "%s: built (%.1f s, %lld params) and loaded strictly from timm's safetensors (%.1f s)%s%s",
             M[i].name, t1 - t0, m ? (long long)vg_nn_num_params(m, false) : -1LL, now() - t1, st ? ": " : "",
             st ? vg_last_error() : "");
    for (int k = 0; st == VG_OK && k < 2 && M[i].sizes[k]; k++) {
      char xp[1024], rp[1024];
      snprintf(xp, sizeof xp, "%s/%s_x%d.safetensors", dir, M[i].name, M[i].sizes[k]);
      snprintf(rp, sizeof rp, "%s/%s_ref%d.safetensors", dir, M[i].name, M[i].sizes[k]);
      vg_st_file *fx = NULL, *fr = NULL;
      vg_tensor *x = NULL;
      if (vg_st_open(xp, &fx) != VG_OK || vg_st_get(fx, "x", VG_F32, &x) != VG_OK || vg_st_open(rp, &fr) != VG_OK) {
        VG_CHECK(0, "%s: reading %s / %s: %s", M[i].name, xp, rp, vg_last_error());
        vg_st_close(fx);
        vg_tensor_free(x);
        continue;
      }
      vg_scope_begin();
      vg_tensor *f[2] = {0};
      double ta = now();
      vg_status fs = vg_backbone_features(m, x, f);
      double dt = now() - ta;
      for (int t = 0; t < M[i].ntaps; t++) {
        vg_tensor *ref = NULL;
        double e = INFINITY, mx = 0;
        if (fs == VG_OK && vg_st_get(fr, M[i].taps[t], VG_F32, &ref) == VG_OK && vg_numel(ref) == vg_numel(f[t])) {
          const float *r = vg_f32(ref);
          for (int64_t j = 0; j < vg_numel(ref); j++) mx = fmax(mx, fabs((double)r[j]));
          e = max_abs_diff(vg_f32(f[t]), r, vg_numel(ref)) / mx;
        }
        VG_CHECK(e <= TOL, "%s at %d: %s (%lld, %lld, %lld, %lld) err %.2e of max|f| %.3g (features %.2f s, 2 threads)%s%s",
                 M[i].name, M[i].sizes[k], M[i].taps[t], f[t] ? (long long)f[t]->shape[0] : 0LL,
                 f[t] ? (long long)f[t]->shape[1] : 0LL, f[t] ? (long long)f[t]->shape[2] : 0LL,
                 f[t] ? (long long)f[t]->shape[3] : 0LL, e, mx, dt, fs ? ": " : "", fs ? vg_last_error() : "");
        vg_tensor_free(ref);
      }
      vg_scope_end();
      vg_tensor_free(x);
      vg_st_close(fx);
      vg_st_close(fr);
    }
    vg_nn_free(m);
  }
}

int main(void) {
  vg_set_num_threads(2);
  if (getenv("VIGIL_VIT_FULL_ONLY")) {
    full_size();
    return vg_test_finish();
  }
  param_counts();
  resample_props();
  golden(VG_VIT_DEIT);
  golden(VG_VIT_CAIT);
  loading(VG_VIT_DEIT);
  loading(VG_VIT_CAIT);
  full_size();
  return vg_test_finish();
}
