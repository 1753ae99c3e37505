/* test_backbones_more — torchvision resnext101_32x8d and densenet201 through the backbone
 * registry: parameter counts and names of the full models, taps and truncation, golden
 * features vs torchvision (float64 reference, Philox weights from the same scheme here and in
 * tools/gen_cnn_more_fixtures.py, no weights stored; full depth at 64x64, batch 2), loading a
 * torchvision-style .pth with DenseNet's pre-0.4 key names (written here), EfficientAD's
 * distillation targets on both vs nelson's pipeline in torch, and `vigil distill --backbone`
 * with each for a few iterations on synthetic images. */
#include "methods/efficientad/distill.h"
#include "nn/backbones/backbones.h"
#include "nn/backbones/densenet.h"
#include "nn/safetensors.h"
#include "base/inflate.h"
#include "tests/common/fixture.h"
#include "tests/common/images.h"
#include "tests/vgtest.h"
#include "tensor/opstats.h"
#include "autograd/autograd.h"
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BASE_SEED 1000
#define TOL 1e-5

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const RX_TAPS[] = {"layer1", "layer2", "layer3", "layer4"};
static const char *const DN_TAPS[] = {"features.relu0",       "features.pool0",       "features.denseblock1",
                                      "features.transition1", "features.denseblock2", "features.transition2",
                                      "features.denseblock3", "features.transition3", "features.denseblock4",
                                      "features.norm5"};

static double max_abs_diff(const float *a, const float *b, int64_t n) {
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= e)) e = d;   /* NaN propagates */
  }
  return e;
}

/* o vs the fixture's <prefix>{shape,maxabs,chmean,stride,sub}: max errors relative to max|f| */
static void compare(const vg_fixture *fx, const char *prefix, const vg_tensor *o, const char *what) {
  static const char *const K[5] = {"shape", "maxabs", "chmean", "stride", "sub"};
  const vg_fx_tensor *e[5];
  for (int i = 0; i < 5; i++) {
    char key[128];
    snprintf(key, sizeof key, "%s%s", prefix, K[i]);
    e[i] = vg_fixture_get(fx, key);
  }
  if (!VG_CHECK(e[0] && e[1] && e[2] && e[3] && e[4] && o, "%s: fixture entries and output", what)) return;
  bool shape_ok = o->ndim == 4;
  for (int d = 0; d < 4 && shape_ok; d++) shape_ok = o->shape[d] == (int64_t)e[0]->data[d];
  if (!VG_CHECK(shape_ok, "%s: shape [%lld, %lld, %lld, %lld] as torchvision's", what, (long long)o->shape[0],
                (long long)o->shape[1], (long long)o->shape[2], (long long)o->shape[3]))
    return;
  vg_tensor *c = vg_contiguous(o);
  const float *g = vg_f32(c);
  int64_t stride = (int64_t)e[3]->data[0], C = o->shape[1], HW = o->shape[2] * o->shape[3];
  double scale = e[1]->data[0];
  float *gs = malloc(sizeof(float) * (size_t)e[4]->n);
  for (int64_t i = 0; i < e[4]->n; i++) gs[i] = g[i * stride];
  double e_sub = max_abs_diff(gs, e[4]->data, e[4]->n) / scale;
  free(gs);
  float *means = calloc((size_t)C, sizeof(float));
  double gmax = 0;
  for (int64_t ch = 0; ch < C; ch++) {
    double s = 0;
    for (int64_t b = 0; b < o->shape[0]; b++)
      for (int64_t i = 0; i < HW; i++) {
        double v = g[(b * C + ch) * HW + i];
        s += v;
        if (fabs(v) > gmax) gmax = fabs(v);
      }
    means[ch] = (float)(s / (double)(o->shape[0] * HW));
  }
  double e_mean = max_abs_diff(means, e[2]->data, C) / scale, e_max = fabs(gmax - scale) / scale;
  free(means);
  VG_CHECK(e_sub <= TOL && e_mean <= TOL && e_max <= TOL,
           "%s: max err / max|f| (%.4g): subsample %.2e (%lld values), channel means %.2e, max|f| %.2e <= %g", what,
           scale, e_sub, (long long)e[4]->n, e_mean, e_max, TOL);
}

/* ------------------------------------------------------------------ golden features */
/* m: the model with every tap of the fixture (ntaps, taps), its weights set here */
static void golden(vg_nn_module *m, const char *model, int ntaps, const char *const *taps, bool recorded, bool full) {
  char path[128];
  snprintf(path, sizeof path, full ? "cnn2_full_%s.vgfx" : "cnn2_%s.vgfx", model);
  vg_fixture *fx = vg_fixture_load(vg_test_fixture(path));
  if (full && !fx) {
    printf("SKIP %s at 224x224: no %s (tools/gen_cnn_more_fixtures.py --full)\n", model, path);
    return;
  }
  if (!VG_CHECK(fx, "%s: fixture %s loads", model, path)) return;
  const vg_fx_tensor *pc = vg_fixture_get(fx, "philox.check"), *ish = vg_fixture_get(fx, "input.shape"),
                     *isd = vg_fixture_get(fx, "input.seed");
  double tb = now();
  if (!VG_CHECK(pc && ish && isd && m && vg_backbone_init_philox(m, BASE_SEED) == VG_OK,
                "%s: Philox weights in %.2f s", model, now() - tb)) {
    vg_fixture_free(fx);
    return;
  }
  vg_scope_begin();
  vg_tensor *u = vg_rand(1, (int64_t[]){8}, BASE_SEED);
  VG_CHECK(!memcmp(vg_f32(u), pc->data, 8 * sizeof(float)), "%s: tools/philox.py matches vg_rand", model);
  int64_t shp[4];
  for (int d = 0; d < 4; d++) shp[d] = (int64_t)ish->data[d];
  vg_tensor *x = vg_empty(VG_F32, 4, shp);
  vg_uniform_(x, -2.0f, 2.0f, (uint64_t)isd->data[0]);
  for (int pass = 0; pass < (recorded ? 2 : 1); pass++) {
    bool rec = pass == 1;
    vg_tensor *f[16] = {0};
    double t0 = now();
    if (rec) vg_nn_requires_grad(m, true);   /* autograd records; BN runs as its own ops */
    else vg_no_grad_begin();
    vg_status st = vg_backbone_features(m, x, f);
    if (rec) vg_nn_requires_grad(m, false);
    else vg_no_grad_end();
    VG_CHECK(st == VG_OK, "%s%s: features of %lldx3x%lldx%lld in %.2f s (%d threads)%s%s", model,
             rec ? " (recorded)" : "", (long long)shp[0], (long long)shp[2], (long long)shp[3], now() - t0,
             vg_num_threads(), st == VG_OK ? "" : ": ", st == VG_OK ? "" : vg_last_error());
    for (int i = 0; i < ntaps && st == VG_OK; i++) {
      char prefix[96], what[160];
      snprintf(prefix, sizeof prefix, "%s.", taps[i]);
      snprintf(what, sizeof what, "%s%s %s", model, rec ? " (recorded)" : "", taps[i]);
      compare(fx, prefix, f[i], what);
      VG_CHECK(f[i] && f[i]->shape[1] == vg_backbone_feature_channels(m, i) &&
                   f[i]->shape[2] * vg_backbone_feature_stride(m, i) == shp[2] &&
                   !strcmp(vg_backbone_feature_name(m, i), taps[i]),
               "%s: registry channels %lld, stride %d, name as the map", what,
               (long long)vg_backbone_feature_channels(m, i), vg_backbone_feature_stride(m, i));
    }
  }
  vg_scope_end();
  vg_fixture_free(fx);
}

/* ------------------------------------------------------------------ architecture */
static int64_t num_params(const vg_nn_module *m) { return vg_nn_num_params(m, false); }

/* rx, dn: resnext101_32x8d with layer1..4, densenet201 with every tap (the full models
 * without fc / classifier), fresh from vg_backbone_new(..., seed 1) */
static void architecture(vg_nn_module *r, vg_nn_module *d) {
  /* full models: torchvision's parameter counts (resnext101_32x8d 88,791,336 and densenet201
   * 20,013,928 with their fc / classifier, which the extractors never build) */
  const vg_backbone_desc *rx = vg_backbone_find("resnext101_32x8d"), *dn = vg_backbone_find("densenet201");
  VG_CHECK(rx && dn && rx->num_params == 88791336 && dn->num_params == 20013928 && !strcmp(rx->family, "resnet") &&
               !strcmp(dn->family, "densenet"),
           "registry: resnext101_32x8d (resnet family) and densenet201 (densenet) with torchvision's counts");
  if (VG_CHECK(r, "resnext101_32x8d up to layer4 builds")) {
    vg_nn_list sd = vg_nn_state_dict(r);
    int64_t p = num_params(r), fc = 2048 * 1000 + 1000;
    VG_CHECK(sd.n == 624 && p + fc == 88791336, "resnext101_32x8d: %d state-dict entries (624), %lld parameters + fc "
             "%lld = %lld (torchvision 88,791,336)", sd.n, (long long)p, (long long)fc, (long long)(p + fc));
    vg_nn_list_free(&sd);
    struct { const char *k; int64_t s0, s1, s2; } N[] = {
        {"conv1.weight", 64, 3, 7},
        {"layer1.0.conv1.weight", 256, 64, 1},
        {"layer1.0.conv2.weight", 256, 8, 3},   /* groups 32: in / groups = 8 */
        {"layer1.0.conv3.weight", 256, 256, 1},
        {"layer1.0.downsample.0.weight", 256, 64, 1},
        {"layer2.0.conv2.weight", 512, 16, 3},
        {"layer3.22.conv2.weight", 1024, 32, 3},
        {"layer3.22.conv3.weight", 1024, 1024, 1},
        {"layer4.2.conv2.weight", 2048, 64, 3},
        {"layer4.2.bn3.running_var", 2048, 0, 0},
    };
    for (size_t i = 0; i < sizeof N / sizeof N[0]; i++) {
      vg_tensor *t = vg_nn_get(r, N[i].k);
      VG_CHECK(t && t->shape[0] == N[i].s0 && (N[i].s1 == 0 || (t->shape[1] == N[i].s1 && t->shape[2] == N[i].s2)),
               "resnext101_32x8d %s with torchvision's shape", N[i].k);
    }
    vg_nn_module *b = vg_nn_child_get(vg_nn_child_get(r, "layer2"), "0");
    VG_CHECK(b && vg_nn_child_get(b, "conv2")->u.conv.o.groups == 32 && vg_nn_child_get(b, "conv2")->u.conv.o.sh == 2 &&
                 vg_nn_child_get(b, "conv1")->u.conv.o.groups == 1,
             "resnext Bottleneck: 3x3 conv with groups 32 carries the stride");
    VG_CHECK(vg_nn_num_params(r, true) == 0 && !r->training, "resnext: frozen, eval");
  }
  if (VG_CHECK(d, "densenet201 up to norm5 builds")) {
    vg_nn_list sd = vg_nn_state_dict(d);
    int64_t p = num_params(d), cls = 1920 * 1000 + 1000;
    VG_CHECK(sd.n == 1205 && p + cls == 20013928, "densenet201: %d state-dict entries (1205), %lld parameters + "
             "classifier %lld = %lld (torchvision 20,013,928)", sd.n, (long long)p, (long long)cls, (long long)(p + cls));
    VG_CHECK(sd.n > 6 && !strcmp(sd.names[0], "features.conv0.weight") && !strcmp(sd.names[1], "features.norm0.weight") &&
                 !strcmp(sd.names[6], "features.denseblock1.denselayer1.norm1.weight") &&
                 !strcmp(sd.names[sd.n - 1], "features.norm5.num_batches_tracked"),
             "densenet201: state-dict order as torchvision's (conv0, norm0, denseblock1.denselayer1.norm1, ..., norm5)");
    vg_nn_list_free(&sd);
    struct { const char *k; int64_t s0, s1, s2; } N[] = {
        {"features.conv0.weight", 64, 3, 7},
        {"features.denseblock1.denselayer1.conv1.weight", 128, 64, 1},
        {"features.denseblock1.denselayer6.conv2.weight", 32, 128, 3},
        {"features.transition1.conv.weight", 128, 256, 1},
        {"features.denseblock2.denselayer12.norm1.running_mean", 480, 0, 0},
        {"features.denseblock3.denselayer48.conv1.weight", 128, 1760, 1},
        {"features.transition3.conv.weight", 896, 1792, 1},
        {"features.denseblock4.denselayer32.conv2.weight", 32, 128, 3},
        {"features.norm5.weight", 1920, 0, 0},
    };
    for (size_t i = 0; i < sizeof N / sizeof N[0]; i++) {
      vg_tensor *t = vg_nn_get(d, N[i].k);
      VG_CHECK(t && t->shape[0] == N[i].s0 && (N[i].s1 == 0 || (t->shape[1] == N[i].s1 && t->shape[2] == N[i].s2)),
               "densenet201 %s with torchvision's shape", N[i].k);
    }
    VG_CHECK(vg_nn_num_params(d, true) == 0 && !d->training, "densenet: frozen, eval");
    /* torchvision init: kaiming_normal (fan_in, relu gain), BN 1 / 0 */
    vg_tensor *w = vg_nn_get(d, "features.denseblock3.denselayer10.conv1.weight");
    const float *wd = vg_f32(w);
    double s = 0, s2 = 0;
    int64_t n = vg_numel(w);
    for (int64_t i = 0; i < n; i++) s += wd[i], s2 += (double)wd[i] * wd[i];
    double sdv = sqrt(s2 / (double)n - (s / (double)n) * (s / (double)n)), want = sqrt(2.0 / (double)w->shape[1]);
    VG_CHECK(fabs(sdv / want - 1) < 0.03 && vg_f32(vg_nn_get(d, "features.norm5.weight"))[3] == 1.0f &&
                 vg_f32(vg_nn_get(d, "features.norm5.bias"))[3] == 0.0f,
             "densenet init: conv std %.5f ~ kaiming_normal fan_in %.5f, BN 1 / 0", sdv, want);
  }
  /* truncation after the last tap, the registry's view of the maps */
  const char *t2[] = {"features.pool0", "features.denseblock2"};
  vg_nn_module *m = vg_backbone_new("densenet201", 2, t2, 3);
  vg_nn_module *f = m ? vg_nn_child_get(m, "features") : NULL;
  VG_CHECK(f && vg_nn_child_get(f, "denseblock2") && vg_nn_child_get(f, "transition1") &&
               !vg_nn_child_get(f, "transition2") && !vg_nn_child_get(f, "denseblock3") && !vg_nn_child_get(f, "norm5") &&
               vg_backbone_num_features(m) == 2 && vg_backbone_feature_channels(m, 0) == 64 &&
               vg_backbone_feature_channels(m, 1) == 512 && vg_backbone_feature_stride(m, 0) == 4 &&
               vg_backbone_feature_stride(m, 1) == 8 && vg_backbone_of(m) == dn,
           "densenet pool0 + denseblock2: built up to denseblock2, 64 ch /4 and 512 ch /8");
  vg_scope_begin();
  vg_tensor *x = vg_rand(4, (int64_t[]){1, 3, 48, 80}, 5), *fo[2] = {0};
  vg_no_grad_begin();
  VG_CHECK(m && vg_backbone_features(m, x, fo) == VG_OK && fo[0]->shape[2] == 12 && fo[0]->shape[3] == 20 &&
               fo[1]->shape[1] == 512 && fo[1]->shape[2] == 6 && fo[1]->shape[3] == 10,
           "densenet maps of a 48x80 input: 12x20 and 6x10");
  vg_no_grad_end();
  VG_CHECK(vg_backbone_features(m, vg_rand(3, (int64_t[]){3, 32, 32}, 5), fo) == VG_ERR_ARG,
           "3-d input refused: %s", vg_last_error());
  vg_scope_end();
  vg_nn_free(m);
  VG_CHECK(!vg_backbone_new("densenet201", 2, (const char *[]){"features.denseblock2", "features.pool0"}, 0) &&
               strstr(vg_last_error(), "order"),
           "taps out of order refused: %s", vg_last_error());
  VG_CHECK(!vg_backbone_new("densenet201", 1, (const char *[]){"features.denseblock5"}, 0) &&
               strstr(vg_last_error(), "denseblock5") && strstr(vg_last_error(), "norm5"),
           "unknown tap refused, the offered ones listed: %s", vg_last_error());
  VG_CHECK(!vg_backbone_new("resnext101_32x8d", 1, (const char *[]){"features.norm5"}, 0) &&
               strstr(vg_last_error(), "layer4"),
           "resnext: a DenseNet tap refused: %s", vg_last_error());
}

/* ------------------------------------------------------------------ .pth with old keys */
typedef struct { uint8_t *p; size_t n, cap; } buf;
static void bput(buf *b, const void *d, size_t n) {
  if (!n) return;
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
}
static void b1(buf *b, uint8_t c) { bput(b, &c, 1); }
static void bu16(buf *b, unsigned v) { b1(b, (uint8_t)v); b1(b, (uint8_t)(v >> 8)); }
static void bu32(buf *b, uint32_t v) { bu16(b, v & 0xFFFF); bu16(b, v >> 16); }
static void pstr(buf *b, const char *s) { b1(b, 'X'); bu32(b, (uint32_t)strlen(s)); bput(b, s, strlen(s)); }
static void pint(buf *b, int64_t v) { b1(b, 'J'); bu32(b, (uint32_t)(int32_t)v); }
static void pglobal(buf *b, const char *mod, const char *name) {
  b1(b, 'c'); bput(b, mod, strlen(mod)); b1(b, '\n'); bput(b, name, strlen(name)); b1(b, '\n');
}
/* key: _rebuild_tensor_v2(storage(skey, numel floats), 0, size, contiguous stride, False, OrderedDict()) */
static void ptensor(buf *b, const char *skey, const vg_tensor *t) {
  pglobal(b, "torch._utils", "_rebuild_tensor_v2");
  b1(b, '(');
  b1(b, '('); pstr(b, "storage"); pglobal(b, "torch", "FloatStorage"); pstr(b, skey); pstr(b, "cpu");
  pint(b, vg_numel(t)); b1(b, 't'); b1(b, 'Q');
  pint(b, 0);
  b1(b, '('); for (int i = 0; i < t->ndim; i++) pint(b, t->shape[i]); b1(b, 't');
  int64_t st[8], s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) st[i] = s, s *= t->shape[i];
  b1(b, '('); for (int i = 0; i < t->ndim; i++) pint(b, st[i]); b1(b, 't');
  b1(b, 0x89);
  pglobal(b, "collections", "OrderedDict"); b1(b, ')'); b1(b, 'R');
  b1(b, 't'); b1(b, 'R');
}

/* how many of got's f32 state-dict tensors equal the same-named ones of want (*nf: how many) */
static int same_f32(vg_nn_module *got, vg_nn_module *want, int *nf) {
  vg_nn_list sd = vg_nn_state_dict(got);
  int same = 0;
  *nf = 0;
  for (int i = 0; i < sd.n; i++) {
    if (sd.tensors[i]->dtype != VG_F32) continue;
    (*nf)++;
    vg_tensor *t = vg_nn_get(want, sd.names[i]);
    same += t && vg_same_shape(t, sd.tensors[i]) &&
            !memcmp(vg_f32(t), vg_f32(sd.tensors[i]), sizeof(float) * (size_t)vg_numel(t));
  }
  vg_nn_list_free(&sd);
  return same;
}

/* a torch.save-style zip (stored entries): data.pkl = {names[i]: tensors[i]}, one storage each */
static bool write_pth(const char *path, int n, char **names, vg_tensor **ts) {
  buf pkl = {0}, z = {0};
  b1(&pkl, 0x80); b1(&pkl, 2); b1(&pkl, '}'); b1(&pkl, '(');
  for (int i = 0; i < n; i++) {
    char k[16];
    snprintf(k, sizeof k, "%d", i);
    pstr(&pkl, names[i]);
    ptensor(&pkl, k, ts[i]);
  }
  b1(&pkl, 'u'); b1(&pkl, '.');
  int ne = n + 2;
  char **en = calloc((size_t)ne, sizeof *en);
  const uint8_t **ed = calloc((size_t)ne, sizeof *ed);
  size_t *el = calloc((size_t)ne, sizeof *el), *off = calloc((size_t)ne, sizeof *off);
  en[0] = strdup("archive/data.pkl"), ed[0] = pkl.p, el[0] = pkl.n;
  en[1] = strdup("archive/version"), ed[1] = (const uint8_t *)"3\n", el[1] = 2;
  for (int i = 0; i < n; i++) {
    en[i + 2] = malloc(32);
    snprintf(en[i + 2], 32, "archive/data/%d", i);
    ed[i + 2] = (const uint8_t *)vg_f32(ts[i]);
    el[i + 2] = (size_t)vg_numel(ts[i]) * sizeof(float);
  }
  for (int i = 0; i < ne; i++) {
    size_t nl = strlen(en[i]);
    uint32_t crc = vg_crc32(0, ed[i], el[i]);
    off[i] = z.n;
    bu32(&z, 0x04034b50); bu16(&z, 20); bu16(&z, 0); bu16(&z, 0); bu16(&z, 0); bu16(&z, 0);
    bu32(&z, crc); bu32(&z, (uint32_t)el[i]); bu32(&z, (uint32_t)el[i]); bu16(&z, (unsigned)nl); bu16(&z, 0);
    bput(&z, en[i], nl);
    bput(&z, ed[i], el[i]);
  }
  size_t cd = z.n;
  for (int i = 0; i < ne; i++) {
    size_t nl = strlen(en[i]);
    bu32(&z, 0x02014b50); bu16(&z, 20); bu16(&z, 20); bu16(&z, 0); bu16(&z, 0); bu16(&z, 0); bu16(&z, 0);
    bu32(&z, vg_crc32(0, ed[i], el[i])); bu32(&z, (uint32_t)el[i]); bu32(&z, (uint32_t)el[i]);
    bu16(&z, (unsigned)nl); bu16(&z, 0); bu16(&z, 0); bu16(&z, 0); bu16(&z, 0); bu32(&z, 0); bu32(&z, (uint32_t)off[i]);
    bput(&z, en[i], nl);
  }
  size_t cdn = z.n - cd;
  bu32(&z, 0x06054b50); bu16(&z, 0); bu16(&z, 0); bu16(&z, (unsigned)ne); bu16(&z, (unsigned)ne);
  bu32(&z, (uint32_t)cdn); bu32(&z, (uint32_t)cd); bu16(&z, 0);
  FILE *f = fopen(path, "wb");
  bool ok = f && fwrite(z.p, 1, z.n, f) == z.n;
  if (f) ok = fclose(f) == 0 && ok;
  for (int i = 0; i < ne; i++) free(en[i]);
  free(en); free(ed); free(el); free(off); free(pkl.p); free(z.p);
  return ok;
}

/* "features.denseblock1.denselayer3.norm1.weight" -> "...denselayer3.norm.1.weight" (torchvision's
 * published checkpoints); other names as they are */
static char *old_key(const char *k) {
  char *r = malloc(strlen(k) + 2);
  strcpy(r, k);
  if (!strstr(k, "denselayer")) return r;
  static const char *const M[] = {".norm1.", ".norm2.", ".conv1.", ".conv2."};
  for (int i = 0; i < 4; i++) {
    char *p = strstr(r, M[i]);
    if (!p) continue;
    size_t ml = strlen(M[i]);   /* ".norm1." -> ".norm.1." */
    memmove(p + ml, p + ml - 1, strlen(p + ml - 1) + 1);
    p[ml - 2] = '.';
    p[ml - 1] = M[i][ml - 2];
    break;
  }
  return r;
}

static void load_old_keys(void) {
  const char *tap[] = {"features.denseblock1"};
  vg_nn_module *a = vg_backbone_new("densenet201", 1, tap, 0), *b = vg_backbone_new("densenet201", 1, tap, 9);
  if (!VG_CHECK(a && b && vg_backbone_init_philox(a, 55) == VG_OK, "load: two densenet201 up to denseblock1")) {
    vg_nn_free(a);
    vg_nn_free(b);
    return;
  }
  vg_nn_list sd = vg_nn_state_dict(a);
  char **names = calloc((size_t)sd.n + 4, sizeof *names);
  vg_tensor **ts = calloc((size_t)sd.n + 4, sizeof *ts);
  int n = 0, drop = -1;
  for (int i = 0; i < sd.n; i++) {
    if (sd.tensors[i]->dtype != VG_F32) continue;   /* pre-0.4 files have no num_batches_tracked */
    char *o = old_key(sd.names[i]);
    names[n] = malloc(strlen(o) + 8);
    sprintf(names[n], "module.%s", o);
    free(o);
    if (!strcmp(sd.names[i], "features.denseblock1.denselayer3.norm1.weight")) drop = n;
    ts[n++] = sd.tensors[i];
  }
  vg_tensor *cls = vg_tensor_new(VG_F32, 2, (int64_t[]){10, 1920});
  vg_tensor *later = vg_tensor_new(VG_F32, 1, (int64_t[]){128});
  memset(vg_f32(cls), 0, sizeof(float) * 19200);
  memset(vg_f32(later), 0, sizeof(float) * 128);
  names[n] = strdup("module.classifier.weight"), ts[n++] = cls;
  names[n] = strdup("module.features.denseblock2.denselayer1.norm.1.weight"), ts[n++] = later;
  VG_CHECK(drop >= 0 && !strcmp(names[drop], "module.features.denseblock1.denselayer3.norm.1.weight") &&
               !strcmp(names[0], "module.features.conv0.weight"),
           "load: old names as torchvision's files (%s)", drop >= 0 ? names[drop] : "?");
  char path[] = "/tmp/vg_test_backbones_more_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  bool w = write_pth(path, n, names, ts);
  vg_status st = w ? vg_nn_load_state_pth(b, path, true) : VG_ERR_IO;
  VG_CHECK(w && st == VG_OK, "load: strict load of a .pth with old denselayer keys, module. prefix, classifier.*, an "
           "unbuilt stage's key and no num_batches_tracked%s%s", st == VG_OK ? "" : ": ", st == VG_OK ? "" : vg_last_error());
  int nf = 0, same = same_f32(b, a, &nf);
  VG_CHECK(nf > 60 && same == nf, "load: %d of %d f32 tensors equal the written ones", same, nf);
  /* the same file without one tensor: strict loading names the missing (new) key */
  if (drop >= 0) {
    char *dn = names[drop];
    vg_tensor *dt = ts[drop];
    names[drop] = names[n - 1], ts[drop] = ts[n - 1];
    w = write_pth(path, n - 1, names, ts);
    st = w ? vg_nn_load_state_pth(b, path, true) : VG_OK;
    VG_CHECK(w && st != VG_OK && strstr(vg_last_error(), "features.denseblock1.denselayer3.norm1.weight"),
             "load: a missing renamed key refused: %.200s", vg_last_error());
    names[n - 1] = names[drop], ts[n - 1] = ts[drop];
    names[drop] = dn, ts[drop] = dt;
  }
  /* an old key of a layer the block does not have is unexpected */
  free(names[n - 1]);
  names[n - 1] = strdup("features.denseblock1.denselayer7.norm.2.bias");
  w = write_pth(path, n, names, ts);
  st = w ? vg_nn_load_state_pth(b, path, true) : VG_OK;
  VG_CHECK(w && st != VG_OK && strstr(vg_last_error(), "denselayer7.norm2.bias"),
           "load: an old key the model lacks refused (renamed in the message): %.200s", vg_last_error());
  /* a file that has num_batches_tracked for one BN only: the others are missing (strict) */
  free(names[n - 1]);
  names[n - 1] = strdup("module.features.norm0.num_batches_tracked");
  vg_tensor *nbt = vg_tensor_new(VG_F32, 0, NULL);
  if (nbt) vg_f32(nbt)[0] = 3.0f;
  vg_tensor *keep = ts[n - 1];
  ts[n - 1] = nbt;
  w = nbt && write_pth(path, n, names, ts);
  st = w ? vg_nn_load_state_pth(b, path, true) : VG_OK;
  VG_CHECK(w && st != VG_OK && strstr(vg_last_error(), "missing") && strstr(vg_last_error(), "num_batches_tracked"),
           "load: a file with some num_batches_tracked must have them all: %.200s", vg_last_error());
  ts[n - 1] = keep;
  vg_tensor_free(nbt);
  remove(path);
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  free(ts);
  vg_tensor_free(cls);
  vg_tensor_free(later);
  vg_nn_list_free(&sd);
  vg_nn_free(a);
  vg_nn_free(b);
}

/* torchvision's full mobilenet_v3_large checkpoint (features.0..16 + classifier.0/3) into
 * CFLOW-AD's encoder (built up to features.15): strict, as ResNet and DenseNet files load;
 * a key the full model does not have either (features.17, block.9) is still refused */
static void load_mnv3_full(void) {
  const char *cflow_taps[] = {"features.6.proj", "features.12.proj", "features.15.proj"}, *all[] = {"features.16"};
  vg_nn_module *full = vg_backbone_new("mobilenet_v3_large", 1, all, 3);
  vg_nn_module *enc = vg_backbone_new("mobilenet_v3_large", 3, cflow_taps, 4);
  if (!VG_CHECK(full && enc, "mobilenet_v3_large full and CFLOW-tap models build")) { vg_nn_free(full); vg_nn_free(enc); return; }
  vg_nn_list sd = vg_nn_state_dict(full);
  char **names = calloc((size_t)sd.n + 8, sizeof *names);
  vg_tensor **ts = calloc((size_t)sd.n + 8, sizeof *ts), *extra[6];
  int n = 0;
  for (int i = 0; i < sd.n; i++)   /* write_pth stores f32 (no num_batches_tracked, as pre-0.4 files) */
    if (sd.tensors[i]->dtype == VG_F32) names[n] = strdup(sd.names[i]), ts[n++] = sd.tensors[i];
  /* torchvision's head: classifier = Linear(960, 1280), Hardswish, Dropout, Linear(1280, 1000) (shrunk here) */
  static const char *const head[4] = {"classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"};
  static const int64_t hs[4][2] = {{12, 960}, {12, 1}, {10, 12}, {10, 1}};
  for (int k = 0; k < 4; k++) {
    extra[k] = vg_tensor_new(VG_F32, k % 2 ? 1 : 2, hs[k]);
    vg_fill_(extra[k], 0.5f);
    names[n] = strdup(head[k]), ts[n++] = extra[k];
  }
  char path[] = "/tmp/vg_test_mnv3_full_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  bool w = write_pth(path, n, names, ts);
  vg_status st = w ? vg_nn_load_state_pth(enc, path, true) : VG_ERR_IO;
  VG_CHECK(w && st == VG_OK, "mobilenet_v3_large: torchvision's full state dict (features.16, classifier.*) loads strictly "
           "into the CFLOW encoder (features.0..15)%s%s", st == VG_OK ? "" : ": ", st == VG_OK ? "" : vg_last_error());
  int nf = 0, same = same_f32(enc, full, &nf);
  VG_CHECK(st == VG_OK && same == nf && nf > 0, "mobilenet_v3_large: every loaded tensor equals the file's (%d / %d)", same, nf);
  /* keys no torchvision mobilenet_v3_large has are not silently skipped */
  static const char *const bad[2] = {"features.17.0.weight", "features.15.block.9.0.weight"};
  for (int k = 0; k < 2; k++) {
    extra[4 + k] = vg_tensor_new(VG_F32, 1, (int64_t[]){4});
    vg_fill_(extra[4 + k], 0.0f);
    names[n] = strdup(bad[k]), ts[n] = extra[4 + k];
    w = write_pth(path, n + 1, names, ts);
    st = w ? vg_nn_load_state_pth(enc, path, true) : VG_OK;
    VG_CHECK(w && st != VG_OK && strstr(vg_last_error(), bad[k]), "mobilenet_v3_large, strict: unexpected key %s named (%s)",
             bad[k], vg_last_error());
    free(names[n]);
  }
  unlink(path);
  for (int i = 0; i < n; i++) free(names[i]);
  for (int k = 0; k < 6; k++) vg_tensor_free(extra[k]);
  free(names);
  free(ts);
  vg_nn_list_free(&sd);
  vg_nn_free(full);
  vg_nn_free(enc);
}

/* ------------------------------------------------------------------ distillation */
/* models[k]: the golden models (Philox weights, every tap: the targets use two of them) */
static void distill_targets(vg_nn_module *const *mods) {
  const char *tn[2];
  VG_CHECK(vg_effad_distill_taps("resnext101_32x8d", tn) == VG_OK && !strcmp(tn[0], "layer2") &&
               !strcmp(tn[1], "layer3"),
           "distill taps: resnext101_32x8d layer2 + layer3");
  VG_CHECK(vg_effad_distill_taps("densenet201", tn) == VG_OK && !strcmp(tn[0], "features.denseblock2") &&
               !strcmp(tn[1], "features.denseblock3"),
           "distill taps: densenet201 features.denseblock2 + features.denseblock3");
  VG_CHECK(vg_effad_distill_taps("densenet202", tn) != VG_OK && strstr(vg_last_error(), "densenet202"),
           "distill taps: unknown backbone refused: %s", vg_last_error());
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("cnn2_distill_targets.vgfx"));
  if (!VG_CHECK(fx, "cnn2_distill_targets.vgfx loads")) return;
  const vg_fx_tensor *ish = vg_fixture_get(fx, "input.shape"), *isd = vg_fixture_get(fx, "input.seed");
  static const char *const models[2] = {"resnext101_32x8d", "densenet201"};
  static const int64_t chans[2][2] = {{512, 1024}, {512, 1792}};
  for (int k = 0; k < 2 && ish && isd; k++) {
    vg_effad_distill_taps(models[k], tn);
    vg_nn_module *m = mods[k];
    int j2 = -1, j3 = -1;
    for (int i = 0; m && i < vg_backbone_num_features(m); i++) {
      if (!strcmp(vg_backbone_feature_name(m, i), tn[0])) j2 = i;
      if (!strcmp(vg_backbone_feature_name(m, i), tn[1])) j3 = i;
    }
    if (!VG_CHECK(j2 >= 0 && j3 > j2 && vg_backbone_feature_channels(m, j2) == chans[k][0] &&
                      vg_backbone_feature_channels(m, j3) == chans[k][1],
                  "%s: %s (%lld ch) + %s (%lld ch) among its taps", models[k], tn[0], (long long)chans[k][0], tn[1],
                  (long long)chans[k][1]))
      continue;
    vg_scope_begin();
    int64_t shp[4];
    for (int d = 0; d < 4; d++) shp[d] = (int64_t)ish->data[d];
    vg_tensor *x = vg_empty(VG_F32, 4, shp), *t = NULL;
    vg_uniform_(x, -2.0f, 2.0f, (uint64_t)isd->data[0]);
    double t0 = now();
    vg_status st = vg_effad_distill_targets(m, x, 384, &t);
    VG_CHECK(st == VG_OK && t && t->shape[0] == shp[0] && t->shape[1] == 384 && t->shape[2] == shp[2] / 8 &&
                 t->shape[3] == shp[3] / 8,
             "%s: distillation targets (N, 384, H/8, W/8) in %.2f s%s%s", models[k], now() - t0, st == VG_OK ? "" : ": ",
             st == VG_OK ? "" : vg_last_error());
    char prefix[64], what[128];
    snprintf(prefix, sizeof prefix, "%s.", models[k]);
    snprintf(what, sizeof what, "%s targets vs nelson's pipeline in torch", models[k]);
    if (st == VG_OK) compare(fx, prefix, t, what);
    vg_scope_end();
  }
  vg_fixture_free(fx);
  /* a DenseNet without denseblock3 cannot give targets */
  vg_nn_module *m = vg_backbone_new("densenet201", 1, (const char *[]){"features.denseblock2"}, 0);
  vg_scope_begin();
  vg_tensor *x = vg_zeros(VG_F32, 4, (int64_t[]){1, 3, 64, 64}), *t = NULL;
  VG_CHECK(m && vg_effad_distill_targets(m, x, 384, &t) == VG_ERR_ARG && strstr(vg_last_error(), "denseblock3"),
           "densenet without denseblock3 refused: %s", vg_last_error());
  vg_scope_end();
  vg_nn_free(m);
}

static void distill_cli(const char *argv0) {
  char vigil[1024];
  if (!vg_test_find_vigil(argv0, vigil, sizeof vigil)) {
    printf("SKIP vigil distill --backbone: no vigil binary beside the test\n");
    return;
  }
  char dir[] = "/tmp/vg_test_backbones_more_d_XXXXXX";
  if (!VG_CHECK(mkdtemp(dir), "temp dir")) return;
  char imgs[256];
  snprintf(imgs, sizeof imgs, "%s/images", dir);
  if (VG_CHECK(vg_test_write_pngs(imgs, 3), "3 synthetic PNG images")) {
    static const char *const models[2] = {"resnext101_32x8d", "densenet201"};
    for (int k = 0; k < 2; k++) {
      char out[512], cmd[2048];
      snprintf(out, sizeof out, "%s/teacher_%s.safetensors", dir, models[k]);
      snprintf(cmd, sizeof cmd, "'%s' distill --images '%s' --out '%s' --backbone %s --view 32 --iters 2 --batch 2 "
               "--stats-images 2 --save-every 0 --threads 2 --workers 1 --log-every 1 --seed 3", vigil, imgs, out, models[k]);
      int rc = -1;
      double t0 = now();
      char *o = vg_test_run(cmd, &rc);
      vg_st_file *f = NULL;
      bool opened = rc == 0 && vg_st_open(out, &f) == VG_OK;
      const char *bb = opened ? vg_st_meta(f, "backbone") : NULL;
      VG_CHECK(rc == 0 && o && strstr(o, "iter 2/2") && strstr(o, "RANDOMLY INITIALISED") && opened && bb &&
                   !strcmp(bb, models[k]) && vg_st_count(f) == 8,
               "vigil distill --backbone %s: 2 iterations at view 32 (extractor 64x64), teacher with 8 tensors, "
               "backbone in its metadata (%.1f s)%s%.600s", models[k], now() - t0, rc == 0 ? "" : ": ", rc == 0 ? "" : (o ? o : "?"));
      vg_st_close(f);
      free(o);
    }
  }
  vg_test_tmp_done(dir);
}

int main(int argc, char **argv) {
  (void)argc;
  vg_set_num_threads(2);
  /* each model is built once (ResNeXt-101's 87M parameters take seconds to initialise) */
  double t0 = now();
  vg_nn_module *m[2] = {vg_backbone_new("resnext101_32x8d", 4, RX_TAPS, 1), NULL};
  double t1 = now();
  m[1] = vg_backbone_new("densenet201", 10, DN_TAPS, 1);
  VG_CHECK(m[0] && m[1], "built resnext101_32x8d (layer1..4) in %.2f s, densenet201 (every tap) in %.2f s", t1 - t0,
           now() - t1);
  architecture(m[0], m[1]);
  load_old_keys();
  load_mnv3_full();
  if (m[1]) golden(m[1], "densenet201", 10, DN_TAPS, true, false);
  if (m[0]) golden(m[0], "resnext101_32x8d", 4, RX_TAPS, false, false);
  if (vg_test_long()) {   /* full size, fixtures made by hand (not committed) */
    if (m[1]) golden(m[1], "densenet201", 10, DN_TAPS, false, true);
    if (m[0]) golden(m[0], "resnext101_32x8d", 4, RX_TAPS, false, true);
  }
  distill_targets(m);
  vg_nn_free(m[0]);
  vg_nn_free(m[1]);
  distill_cli(argv[0]);
  return vg_test_finish();
}
