/* test_padim — the shared Gaussian blur (nn/blur.h) vs anomalib 2.7's GaussianBlur2d, and
 * PaDiM (methods/padim) vs anomalib's PadimModel on identical weights and inputs
 * (tools/gen_padim_fixtures.py). Inputs are Philox draws both sides make; the backbone uses
 * vg_resnet_init_philox (base seed 1000). */
#include "nn/blur.h"
#include "autograd/autograd.h"
#include "base/threadpool.h"
#include "methods/padim/padim.h"
#include "nn/backbones/backbones.h"
#include "tests/common/fixture.h"
#include "tests/vgtest.h"
#include <unistd.h>

static char g_vigil[1024];

/* ------------------------------------------------------------------ blur */
static double max_abs_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= m)) m = d;   /* NaN sticks */
  }
  return m;
}

static void test_blur_fixture(void) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture("padim_blur.bin"));
  if (!fx) {
    printf("SKIP blur fixture (tools/gen_padim_fixtures.py not run)\n");
    return;
  }
  /* the 2-D kernel: outer product of our 1-D taps vs anomalib's buffer */
  const vg_fx_tensor *k33 = vg_fixture_get(fx, "kernel33");
  float taps[33], k2[33 * 33];
  VG_CHECK(vg_gaussian_ksize(4.0) == 33 && vg_gaussian_ksize(1.0) == 9 && vg_gaussian_ksize(0.3) == 3,
           "blur: anomalib's kernel sizes (sigma 4 -> 33, 1 -> 9, 0.3 -> 3)");
  VG_CHECK(vg_gaussian_kernel1d(4.0, 33, taps), "blur: sigma 4 taps");
  for (int i = 0; i < 33; i++)
    for (int j = 0; j < 33; j++) k2[i * 33 + j] = taps[i] * taps[j];
  VG_CHECK(k33 && k33->n == 33 * 33, "blur: fixture kernel33 present");
  if (k33 && k33->n == 33 * 33) {
    double e = max_abs_diff(k2, k33->data, 33 * 33);
    VG_CHECK(e <= 3e-9 && fabs(k2[16 * 33 + 16] - 0.0099479f) < 1e-7,
             "blur: 33x33 kernel = anomalib's (max err %.3g, centre %.7f)", e, k2[16 * 33 + 16]);
  }
  for (int i = 0;; i++) {
    char name[32];
    snprintf(name, sizeof name, "blur%d.cfg", i);
    const vg_fx_tensor *cfg = vg_fixture_get(fx, name);
    if (!cfg) {
      VG_CHECK(i >= 6, "blur: %d fixture cases", i);
      break;
    }
    snprintf(name, sizeof name, "blur%d.y", i);
    const vg_fx_tensor *want = vg_fixture_get(fx, name);
    snprintf(name, sizeof name, "blur%d.exact", i);
    const vg_fx_tensor *exact = vg_fixture_get(fx, name);
    const float *c = cfg->data;
    int64_t shape[4] = {(int64_t)c[0], (int64_t)c[1], (int64_t)c[2], (int64_t)c[3]};
    vg_scope_begin();
    vg_tensor *x = vg_empty(VG_F32, 4, shape);
    vg_uniform_(x, -1.0f, 2.0f, 300 + (uint64_t)i);
    vg_tensor *y = vg_gaussian_blur2d(x, c[4], (int)c[5]);
    bool shape_ok = y && want && exact && vg_same_shape(y, x) && vg_numel(y) == want->n && exact->n == want->n;
    double e = shape_ok ? max_abs_diff(vg_f32(y), want->data, want->n) : INFINITY;
    double ex = shape_ok ? max_abs_diff(vg_f32(y), exact->data, want->n) : INFINITY;
    double et = shape_ok ? max_abs_diff(want->data, exact->data, want->n) : INFINITY;
    /* torch's own f32 result is up to ~1.4e-6 from the float64 blur on these O(1) inputs (its
     * 1089-term sums), so: ours within 1e-6 of the exact blur, and within 2e-6 of torch's */
    VG_CHECK(shape_ok && ex <= 1e-6 && e <= 2e-6,
             "blur: case %d [%lld,%lld,%lld,%lld] sigma %g ksize %d: max err vs float64 %.3g, vs anomalib %.3g "
             "(anomalib vs float64 %.3g)",
             i, (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)shape[3], c[4], (int)c[5],
             ex, e, et);
    vg_scope_end();
  }
  vg_fixture_free(fx);
}

static bool fails_with(const vg_tensor *y, const char *needle) {
  return !y && strstr(vg_last_error(), needle) != NULL;
}

static void test_blur_edges(void) {
  vg_scope_begin();
  /* torch refuses reflect padding >= the side: "Padding size should be less than ..." */
  vg_tensor *x16 = vg_full(VG_F32, 4, (int64_t[]){1, 1, 16, 16}, 1.0);
  VG_CHECK(fails_with(vg_gaussian_blur2d(x16, 4.0, 0), "reflect padding 16"), "blur: 16x16 with sigma 4 refused as torch does: %s",
           vg_last_error());
  vg_tensor *xw = vg_full(VG_F32, 4, (int64_t[]){1, 1, 40, 16}, 1.0);
  VG_CHECK(fails_with(vg_gaussian_blur2d(xw, 4.0, 0), "H and W > 16"), "blur: W 16 < 17 refused");
  vg_tensor *xh = vg_full(VG_F32, 4, (int64_t[]){1, 1, 1, 40}, 1.0);
  VG_CHECK(fails_with(vg_gaussian_blur2d(xh, 1.0, 3), "H and W > 1"), "blur: 1-row image with 3 taps refused");
  VG_CHECK(vg_gaussian_blur2d(xh, 1.0, 1) != NULL, "blur: ksize 1 on a 1-row image is the identity");
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){2, 3, 20, 18});
  vg_uniform_(x, -1, 1, 9);
  VG_CHECK(fails_with(vg_gaussian_blur2d(x, 4.0, 4), "odd"), "blur: even kernel size refused (kornia too)");
  VG_CHECK(fails_with(vg_gaussian_blur2d(x, 4.0, -3), "odd"), "blur: negative kernel size refused");
  VG_CHECK(fails_with(vg_gaussian_blur2d(x, 0.0, 0), "sigma"), "blur: sigma 0 refused");
  VG_CHECK(fails_with(vg_gaussian_blur2d(x, -1.0, 5), "sigma"), "blur: negative sigma refused");
  VG_CHECK(fails_with(vg_gaussian_blur2d(x, NAN, 5), "sigma"), "blur: NaN sigma refused");
  VG_CHECK(fails_with(vg_gaussian_blur2d(x, INFINITY, 0), "sigma"), "blur: infinite sigma refused");
  VG_CHECK(fails_with(vg_gaussian_blur2d(vg_reshape(x, 3, (int64_t[]){6, 20, 18}), 4.0, 0), "4-D"),
           "blur: 3-D input refused");
  VG_CHECK(fails_with(vg_gaussian_blur2d(vg_cast(x, VG_I32), 1.0, 0), "float"), "blur: integer input refused");
  VG_CHECK(vg_gaussian_blur2d(NULL, 4.0, 0) == NULL, "blur: NULL in, NULL out");
  /* ksize 1: identity; a constant image stays constant (normalised kernel, reflect) */
  vg_tensor *id = vg_gaussian_blur2d(x, 2.0, 1);
  VG_CHECK(id && max_abs_diff(vg_f32(vg_contiguous(id)), vg_f32(x), vg_numel(x)) == 0, "blur: ksize 1 is the identity");
  vg_tensor *k = vg_full(VG_F32, 4, (int64_t[]){1, 2, 17, 30}, 3.5);
  vg_tensor *ky = vg_gaussian_blur2d(k, 4.0, 0);
  float cmax = 0;
  for (int64_t i = 0; ky && i < vg_numel(ky); i++) cmax = fmaxf(cmax, fabsf(vg_f32(ky)[i] - 3.5f));
  VG_CHECK(ky && cmax < 2e-6f, "blur: constant image stays constant (max dev %.3g)", cmax);
  /* non-contiguous input = its contiguous copy */
  vg_tensor *xt = vg_transpose(x, 2, 3);  /* 2,3,18,20 view */
  vg_tensor *a = vg_gaussian_blur2d(xt, 1.5, 0), *b = vg_gaussian_blur2d(vg_contiguous(xt), 1.5, 0);
  VG_CHECK(a && b && max_abs_diff(vg_f32(a), vg_f32(b), vg_numel(a)) == 0, "blur: non-contiguous input");
  /* planes are independent: channel 1 of a 3-channel blur = blur of channel 1 alone */
  vg_tensor *c1 = vg_contiguous(vg_slice(x, 1, 1, 2, 1));
  vg_tensor *y3 = vg_gaussian_blur2d(x, 1.0, 0), *y1 = vg_gaussian_blur2d(c1, 1.0, 0);
  VG_CHECK(y3 && y1 && max_abs_diff(vg_f32(vg_contiguous(vg_slice(y3, 1, 1, 2, 1))), vg_f32(y1), vg_numel(y1)) == 0,
           "blur: channels blurred independently");
  /* differentiable: every output pixel's weights sum to 1, so d sum(y) / dx sums to numel */
  vg_tensor *xg = vg_clone(x);
  vg_requires_grad_(xg, true);
  vg_tensor *s = vg_sum(vg_gaussian_blur2d(xg, 2.0, 0), 0, NULL, false);
  bool okg = s && vg_backward(s) == VG_OK && xg->grad;
  double gs = 0, gmin = 1e9;
  for (int64_t i = 0; okg && i < vg_numel(xg); i++) gs += vg_f32(xg->grad)[i], gmin = fmin(gmin, vg_f32(xg->grad)[i]);
  VG_CHECK(okg && fabs(gs - (double)vg_numel(x)) < 1e-2 && gmin > 0.2,
           "blur: gradient flows (sum %.4f of %lld, min %.3f)", gs, (long long)vg_numel(x), gmin);
  vg_scope_end();
  /* outside any scope: a heap result, nothing else left behind */
  vg_tensor *hx = vg_tensor_new(VG_F32, 4, (int64_t[]){1, 1, 20, 20});
  vg_uniform_(hx, 0, 1, 3);
  vg_tensor *hy = vg_gaussian_blur2d(hx, 4.0, 0);
  VG_CHECK(hy && (hy->flags & VG_TF_HEAP) && hy->shape[3] == 20, "blur: outside a scope, heap result");
  vg_tensor_free(hy);
  vg_tensor_free(hx);
}

/* ------------------------------------------------------------------ PaDiM */
static vg_method *make(const char *cfg_text) {
  vg_json *cfg = NULL;
  if (vg_json_parse(cfg_text, strlen(cfg_text), NULL, &cfg) != VG_OK) return NULL;
  vg_method *m = NULL;
  vg_status st = vg_method_create("padim", cfg, &m);
  vg_json_free(cfg);
  if (st != VG_OK) fprintf(stderr, "padim: %s\n", vg_last_error());
  return m;
}

static const vg_tensor *find_buf(vg_method *m, const char *name) {
  vg_nn_list sd = vg_nn_state_dict(vg_padim_module(m));
  const vg_tensor *t = NULL;
  for (int i = 0; i < sd.n; i++) if (!strcmp(sd.names[i], name)) t = sd.tensors[i];
  vg_nn_list_free(&sd);
  return t;
}

/* Philox images uniform(-2, 2) of seeds seed0 .. seed0 + n - 1 (one image per seed, as the generator) */
static vg_tensor *images(int n, int size, uint64_t seed0) {
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){n, 3, size, size});
  for (int i = 0; i < n; i++) {
    vg_tensor *xi = vg_empty(VG_F32, 4, (int64_t[]){1, 3, size, size});
    vg_uniform_(xi, -2.0f, 2.0f, seed0 + (uint64_t)i);
    memcpy(vg_f32(x) + (int64_t)i * 3 * size * size, vg_f32(xi), sizeof(float) * 3 * (size_t)size * size);
  }
  return x;
}

static double max_abs(const float *a, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
  return m;
}

/* relative error max|got - want| / max|want| over a strided subset (stride 1 = all) */
static double rel_err(const float *got, int64_t ngot, const vg_fx_tensor *want, int64_t stride) {
  if (!want || (ngot + stride - 1) / stride != want->n) return INFINITY;
  double e = 0;
  for (int64_t i = 0; i < want->n; i++) {
    double d = fabs((double)got[i * stride] - want->data[i]);
    if (!(d <= e)) e = d;
  }
  return e / max_abs(want->data, want->n);
}

/* fits m as the generator did (NTRAIN images of seeds 500..), in batches of `split` then the rest */
static vg_status fit(vg_method *m, int ntrain, int size, int split) {
  vg_scope_begin();
  vg_padim_fit_reset(m);
  vg_status st = VG_OK;
  for (int i = 0; i < ntrain && st == VG_OK; i += split) {
    int n = ntrain - i < split ? ntrain - i : split;
    st = vg_padim_fit_batch(m, images(n, size, 500 + (uint64_t)i));
  }
  if (st == VG_OK) st = vg_padim_fit_finish(m);
  vg_scope_end();
  return st;
}

static void conformance(const char *file, const char *backbone) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture(file));
  if (!fx) {
    printf("SKIP %s (tools/gen_padim_fixtures.py not run)\n", file);
    return;
  }
  const vg_fx_tensor *cfg = vg_fixture_get(fx, "cfg"), *fidx = vg_fixture_get(fx, "idx");
  int size = (int)cfg->data[0], ntrain = (int)cfg->data[1], ntest = (int)cfg->data[2];
  int64_t cstride = (int64_t)cfg->data[3], mstride = (int64_t)cfg->data[4], pstride = (int64_t)cfg->data[5];
  char text[256];
  snprintf(text, sizeof text, "{\"backbone\": \"%s\", \"input_size\": %d}", backbone, size);
  vg_method *m = make(text);
  VG_CHECK(m != NULL, "%s: padim %s at %d created", file, backbone, size);
  if (!m) { vg_fixture_free(fx); return; }
  vg_nn_module *net = vg_padim_module(m);
  VG_CHECK(vg_resnet_init_philox(vg_nn_child_get(net, "feature_extractor"), 1000) == VG_OK, "%s: backbone weights", file);
  vg_tensor *idx = (vg_tensor *)find_buf(m, "idx");
  VG_CHECK(idx && fidx && vg_numel(idx) == fidx->n && fidx->n == (int64_t)cfg->data[6],
           "%s: n_features %lld (anomalib's default for %s)", file, (long long)(idx ? vg_numel(idx) : -1), backbone);
  if (idx && fidx && vg_numel(idx) == fidx->n)
    for (int64_t i = 0; i < fidx->n; i++) ((int64_t *)vg_data(idx))[i] = (int64_t)fidx->data[i];
  /* fit in two batches (Chan's merge) */
  int split = ntrain > 2 ? ntrain - 1 : 1;
  vg_status st = fit(m, ntrain, size, split);
  VG_CHECK(st == VG_OK, "%s: fit on %d images (batches of %d + rest) (%s)", file, ntrain, split, st ? vg_last_error() : "ok");
  const vg_tensor *mean = find_buf(m, "gaussian.mean"), *ic = find_buf(m, "gaussian.inv_covariance");
  const vg_fx_tensor *icshape = vg_fixture_get(fx, "inv_cov_shape");
  VG_CHECK(ic && icshape && ic->shape[0] == (int64_t)icshape->data[0] && ic->shape[1] == (int64_t)icshape->data[1] &&
               ic->shape[2] == (int64_t)icshape->data[2],
           "%s: inv_covariance shape (HW, C, C) = anomalib's", file);
  double em = mean ? rel_err(vg_f32(mean), vg_numel(mean), vg_fixture_get(fx, "mean"), mstride) : INFINITY;
  double ei = ic ? rel_err(vg_f32(ic), vg_numel(ic), vg_fixture_get(fx, "inv_cov"), cstride) : INFINITY;
  VG_CHECK(em <= 1e-5, "%s: gaussian.mean vs anomalib (max err / max|mean| %.3g)", file, em);
  VG_CHECK(ei <= 1e-4, "%s: gaussian.inv_covariance vs anomalib (max err / max|inv_cov| %.3g)", file, ei);
  vg_scope_begin();
  vg_tensor *x = images(ntest, size, 600);
  vg_tensor *d = vg_padim_distance(m, vg_padim_embedding(m, x));
  double ed = d ? rel_err(vg_f32(d), vg_numel(d), vg_fixture_get(fx, "dist"), 1) : INFINITY;
  VG_CHECK(ed <= 1e-4, "%s: Mahalanobis distances vs anomalib (max err / max|d| %.3g)", file, ed);
  int64_t P = (int64_t)size * size;
  float *maps = malloc(sizeof(float) * (size_t)(ntest * P)), scores[8], maps_score[8];
  st = m->ops->predict(m, x, maps, scores);
  double ep = st == VG_OK ? rel_err(maps, ntest * P, vg_fixture_get(fx, "map"), pstride) : INFINITY;
  double es = st == VG_OK ? rel_err(scores, ntest, vg_fixture_get(fx, "score"), 1) : INFINITY;
  VG_CHECK(ep <= 1e-4, "%s: anomaly map vs anomalib (max err / max|map| %.3g)", file, ep);
  VG_CHECK(es <= 1e-4, "%s: scores vs anomalib (max err / max|score| %.3g)", file, es);
  for (int i = 0; i < ntest && st == VG_OK; i++) maps_score[i] = (float)max_abs(maps + i * P, P);
  VG_CHECK(st == VG_OK && !memcmp(maps_score, scores, sizeof(float) * (size_t)ntest), "%s: score = max of the map", file);

  /* one batch gives the same statistics up to rounding */
  float *maps1 = malloc(sizeof(float) * (size_t)(ntest * P)), scores1[8];
  vg_method *m1 = make(text);
  if (m1) {
    vg_resnet_init_philox(vg_nn_child_get(vg_padim_module(m1), "feature_extractor"), 1000);
    memcpy(vg_data((vg_tensor *)find_buf(m1, "idx")), vg_data(idx), sizeof(int64_t) * (size_t)vg_numel(idx));
  }
  st = m1 ? fit(m1, ntrain, size, ntrain) : VG_ERR_ARG;
  if (st == VG_OK) st = m1->ops->predict(m1, x, maps1, scores1);
  double e1 = 0;
  for (int64_t i = 0; st == VG_OK && i < ntest * P; i++) e1 = fmax(e1, fabs(maps1[i] - maps[i]));
  VG_CHECK(st == VG_OK && e1 <= 1e-5 * max_abs(maps, ntest * P), "%s: one batch vs two batches: same map (max err %.3g)",
           file, e1);
  vg_method_free(m1);

  /* checkpoint round trip: the loaded model predicts identically */
  char path[] = "/tmp/vg_padim_ckpt_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  st = fd >= 0 ? m->ops->save(m, path) : VG_ERR_IO;
  VG_CHECK(st == VG_OK, "%s: save (%s)", file, st ? vg_last_error() : "ok");
  vg_method *r = make(text);
  st = r && st == VG_OK ? r->ops->load(r, path) : VG_ERR_ARG;
  VG_CHECK(st == VG_OK, "%s: load (%s)", file, st ? vg_last_error() : "ok");
  if (st == VG_OK) st = r->ops->predict(r, x, maps1, scores1);
  VG_CHECK(st == VG_OK && !memcmp(maps1, maps, sizeof(float) * (size_t)(ntest * P)) &&
               !memcmp(scores1, scores, sizeof(float) * (size_t)ntest),
           "%s: loaded checkpoint predicts bit-identically", file);
  vg_method_free(r);
  /* a checkpoint of another shape (n_features 50) is refused; so is an idx out of [0, n_orig) */
  snprintf(text, sizeof text, "{\"backbone\": \"%s\", \"input_size\": %d, \"n_features\": 50}", backbone, size);
  r = make(text);
  st = r ? r->ops->load(r, path) : VG_OK;
  VG_CHECK(r && st != VG_OK, "%s: checkpoint into an n_features 50 model refused (%s)", file, st ? vg_last_error() : "loaded");
  vg_method_free(r);
  int64_t keep = ((int64_t *)vg_data(idx))[3];
  ((int64_t *)vg_data(idx))[3] = 100000;
  st = m->ops->save(m, path);
  ((int64_t *)vg_data(idx))[3] = keep;
  snprintf(text, sizeof text, "{\"backbone\": \"%s\", \"input_size\": %d}", backbone, size);
  r = make(text);
  st = r && st == VG_OK ? r->ops->load(r, path) : VG_OK;
  VG_CHECK(r && st != VG_OK && strstr(vg_last_error(), "idx[3]"), "%s: checkpoint with idx[3] = 100000 refused (%s)", file,
           st ? vg_last_error() : "loaded");
  VG_CHECK(r && r->ops->predict(r, x, maps1, scores1) != VG_OK, "%s: ... and the model stays unfitted", file);
  vg_method_free(r);
  unlink(path);
  vg_scope_end();
  free(maps);
  free(maps1);
  vg_method_free(m);
  vg_fixture_free(fx);
}

static void test_nearest_and_errors(void) {
  vg_scope_begin();
  /* a fresh model refuses to predict; a fit on one image is refused (N - 1 = 0, anomalib divides 0 / 0) */
  vg_method *m = make("{\"input_size\": 40, \"n_features\": 20, \"seed\": 3}");
  VG_CHECK(m != NULL, "padim: small model (input 40, 20 features)");
  if (!m) { vg_scope_end(); return; }
  float maps[2 * 40 * 40], scores[2];
  vg_tensor *x = images(2, 40, 77);
  vg_status st = m->ops->predict(m, x, maps, scores);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "before fit"), "padim: predict before fit refused (%s)", vg_last_error());
  vg_padim_fit_reset(m);
  st = vg_padim_fit_batch(m, images(1, 40, 5));
  if (st == VG_OK) st = vg_padim_fit_finish(m);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "at least 2"), "padim: fit on 1 image refused (%s)", vg_last_error());
  st = vg_padim_fit_finish(m);
  VG_CHECK(st != VG_OK, "padim: finish without batches refused");
  vg_tensor *bad = vg_empty(VG_F32, 4, (int64_t[]){1, 3, 32, 40});
  VG_CHECK(vg_padim_fit_batch(m, bad) != VG_OK && strstr(vg_last_error(), "N x 3 x 40 x 40"),
           "padim: wrong image size refused (%s)", vg_last_error());
  /* idx: n_features distinct channels in [0, 448) */
  const vg_tensor *idx = find_buf(m, "idx");
  bool seen[448] = {0}, okidx = idx && vg_numel(idx) == 20;
  for (int64_t i = 0; okidx && i < 20; i++) {
    int64_t v = ((const int64_t *)vg_data(idx))[i];
    okidx = v >= 0 && v < 448 && !seen[v];
    if (okidx) seen[v] = true;
  }
  VG_CHECK(okidx, "padim: idx holds 20 distinct channels of 448");
  /* embedding at 40: layer1 10x10, layer2 5x5, layer3 3x3 -> nearest to 10x10 (3 -> 10: floor(i * 0.3)) */
  vg_resnet_init_philox(vg_nn_child_get(vg_padim_module(m), "feature_extractor"), 1000);
  vg_tensor *e = vg_padim_embedding(m, x);
  VG_CHECK(e && e->shape[1] == 20 && e->shape[2] == 10 && e->shape[3] == 10, "padim: embedding 2 x 20 x 10 x 10");
  vg_tensor *f[3];
  bool okn = e && vg_resnet_features(vg_nn_child_get(vg_padim_module(m), "feature_extractor"), x, f) == VG_OK;
  int checked = 0;
  for (int64_t k = 0; okn && k < 20; k++) {
    int64_t ch = ((const int64_t *)vg_data(idx))[k];
    int l = ch < 64 ? 0 : ch < 192 ? 1 : 2;
    int64_t c = ch - (l == 0 ? 0 : l == 1 ? 64 : 192), H = f[l]->shape[2];
    for (int64_t i = 0; okn && i < 10; i++)
      for (int64_t j = 0; okn && j < 10; j++) {
        int64_t si = H == 10 ? i : H == 5 ? i >> 1 : (int64_t)floorf((float)i * (3.0f / 10.0f));
        int64_t sj = H == 10 ? j : H == 5 ? j >> 1 : (int64_t)floorf((float)j * (3.0f / 10.0f));
        float want = vg_f32(f[l])[((1 * f[l]->shape[1] + c) * H + si) * H + sj];
        okn = vg_f32(e)[((1 * 20 + k) * 10 + i) * 10 + j] == want;
        checked++;
      }
  }
  VG_CHECK(okn && checked == 2000, "padim: embedding = nearest-resized layer channels picked by idx (%d values)", checked);
  /* batches of one image each (every merge is a rank-1 update) = one batch of all */
  float maps_a[2 * 40 * 40], maps_b[2 * 40 * 40], sa[2], sb[2];
  st = fit(m, 5, 40, 1);
  if (st == VG_OK) st = m->ops->predict(m, x, maps_a, sa);
  if (st == VG_OK) st = fit(m, 5, 40, 5);
  if (st == VG_OK) st = m->ops->predict(m, x, maps_b, sb);
  double eb = 0;
  for (int i = 0; st == VG_OK && i < 2 * 40 * 40; i++) eb = fmax(eb, fabs(maps_a[i] - maps_b[i]));
  VG_CHECK(st == VG_OK && eb <= 1e-5 * max_abs(maps_b, 2 * 40 * 40), "padim: 5 batches of 1 = 1 batch of 5 (max err %.3g of %.3g)",
           eb, max_abs(maps_b, 2 * 40 * 40));
  /* identical training images: zero scatter, covariance 0.01001 I -> inv 1/0.01001 on the diagonal */
  vg_padim_fit_reset(m);
  st = vg_padim_fit_batch(m, images(1, 40, 9));
  if (st == VG_OK) st = vg_padim_fit_batch(m, images(1, 40, 9));
  if (st == VG_OK) st = vg_padim_fit_finish(m);
  const vg_tensor *ic = find_buf(m, "gaussian.inv_covariance");
  double dev = 0;
  for (int64_t p = 0; st == VG_OK && p < 100; p++)
    for (int64_t i = 0; i < 20; i++)
      for (int64_t j = 0; j < 20; j++) {
        double want = i == j ? 1.0 / (double)((0.0f + 0.01f) + 1e-5f) : 0.0;
        dev = fmax(dev, fabs(vg_f32(ic)[(p * 20 + i) * 20 + j] - want) / 99.9);
      }
  VG_CHECK(st == VG_OK && dev < 1e-6, "padim: constant data: inverse covariance = I / 0.01001 (rel dev %.3g)", dev);
  /* ... and the map of a training image is 0 */
  st = st == VG_OK ? m->ops->predict(m, images(1, 40, 9), maps, scores) : st;
  VG_CHECK(st == VG_OK && scores[0] < 1e-3f, "padim: a training image (the mean) scores 0 (%g)", st == VG_OK ? scores[0] : -1);
  vg_method_free(m);
  /* config errors */
  VG_CHECK(!make("{\"n_features\": 449}") && strstr(vg_last_error(), "n_features"), "padim: n_features 449 > 448 refused (%s)",
           vg_last_error());
  VG_CHECK(!make("{\"backbone\": \"vgg16\"}") && strstr(vg_last_error(), "vgg16"), "padim: unknown backbone refused (%s)",
           vg_last_error());
  VG_CHECK(!make("{\"input_size\": 32, \"sigma\": 8}") && strstr(vg_last_error(), "65-tap"),
           "padim: sigma 8 (65 taps) at input 32 refused: reflect padding 32 needs a side > 32 (%s)", vg_last_error());
  VG_CHECK(!make("{\"backbone\": \"wide_resnet50_2\", \"input_size\": 4096}") && strstr(vg_last_error(), "input_size 4096"),
           "padim: wide_resnet50_2 at 4096 (1.2 TB of inverse covariances) refused before allocating (%s)", vg_last_error());
  vg_method *s7 = make("{\"input_size\": 32, \"sigma\": 7.8, \"n_features\": 4}");
  VG_CHECK(s7 != NULL, "padim: sigma 7.8 (63 taps) at input 32 accepted");
  vg_method_free(s7);
  vg_method *w = make("{\"backbone\": \"wide_resnet50_2\", \"input_size\": 32}");
  VG_CHECK(w && vg_numel(find_buf(w, "idx")) == 550, "padim: wide_resnet50_2 defaults to 550 features");
  vg_method_free(w);
  vg_scope_end();
}

/* `vigil train padim` on the synthetic default (the statistics pass, no steps), then `vigil test --run` */
static void test_cli(void) {
  if (!g_vigil[0]) { printf("SKIP cli: no vigil binary beside the test\n"); return; }
  char dir[] = "/tmp/vg_padim_cli_XXXXXX";
  if (!mkdtemp(dir)) { VG_CHECK(0, "mkdtemp"); return; }
  char cmd[4096];
  int rc;
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' train padim --set input_size=64 --no-test --threads 2 --out run --cache '%s/cache'",
           dir, g_vigil, dir);
  char *o = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 0, "vigil train padim (synthetic default) (%.400s)", rc ? (o ? o : "") : "ok");
  free(o);
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' test --run run --no-report --no-maps --threads 2", dir, g_vigil);
  o = vg_test_run(cmd, &rc);
  char mpath[1200];
  snprintf(mpath, sizeof mpath, "%s/run/metrics.json", dir);
  VG_CHECK(rc == 0 && access(mpath, F_OK) == 0, "vigil test --run writes metrics.json (%.400s)", rc ? (o ? o : "") : "ok");
  free(o);
  vg_test_tmp_done(dir);
}

int main(int argc, char **argv) {
  vg_set_num_threads(2);
  (void)argc;
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  test_blur_fixture();
  test_blur_edges();
  conformance("padim.bin", "resnet18");
  test_nearest_and_errors();
  if (vg_test_long() || getenv("VIGIL_TEST_PADIM_WRN")) conformance("padim_wrn.bin", "wide_resnet50_2");
  else printf("SKIP padim_wrn.bin (wide_resnet50_2; VIGIL_TEST_LONG=1)\n");
  test_cli();
  return vg_test_finish();
}
