/* test_patchcore — PatchCore (methods/patchcore) vs anomalib 2.7's PatchcoreModel on identical
 * random weights and inputs (tools/gen_patchcore_fixtures.py): the patch embedding, the coreset
 * indices (anomalib's projection matrix and start row fed in), nearest-neighbour patch scores,
 * anomaly maps and reweighted image scores (resnet18 and wide_resnet50_2 at 64 px); the
 * kernels against brute-force references (greedy coreset with the full update, nearest
 * neighbours in double); the projection law; checkpoint round trip; `vigil train patchcore`
 * end to end on a small synthetic run.
 * VG_PATCHCORE_BENCH=N: also times the coreset of N x 1536 rows and the search (no check). */
#include "methods/patchcore/patchcore.h"
#include "base/threadpool.h"
#include "nn/backbones/backbones.h"
#include "tests/common/fixture.h"
#include "tests/vgtest.h"
#include <time.h>
#include <unistd.h>

static char g_vigil[1024];

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static vg_method *make(const char *cfg_text) {
  vg_json *cfg = NULL;
  if (vg_json_parse(cfg_text, strlen(cfg_text), NULL, &cfg) != VG_OK) return NULL;
  vg_method *m = NULL;
  vg_status st = vg_patchcore_new(cfg, &m);
  vg_json_free(cfg);
  if (st != VG_OK) fprintf(stderr, "patchcore_new: %s\n", vg_last_error());
  return m;
}

static double maxabs(const vg_fx_tensor *t) {
  double m = 0;
  for (int64_t i = 0; i < t->n; i++) m = fmax(m, fabs(t->data[i]));
  return m;
}

static void close_rel(const float *got, const vg_fx_tensor *want, double rel, const char *what) {
  if (!VG_CHECK(want != NULL, "%s: fixture entry", what)) return;
  VG_CHECK_CLOSE(got, want->data, want->n, rel, rel * maxabs(want), what);
}

static vg_tensor *philox_input(int64_t n, int64_t hw, uint64_t seed) {
  vg_tensor *x = vg_empty(VG_F32, 4, (int64_t[]){n, 3, hw, hw});
  vg_uniform_(x, -2.0f, 2.0f, seed);
  return x;
}

/* ---------------------------------------------------------------- references */
/* the greedy k-center selection with the full update every step (anomalib's loop) */
static void coreset_ref(const float *rows, int64_t n, int64_t d, const float *proj, int64_t k, int64_t start, int64_t m,
                        int64_t *idx) {
  float *p = malloc(sizeof(float) * (size_t)(n * k)), *md = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < k; j++) {
      double s = 0;
      for (int64_t c = 0; c < d; c++) s += (double)proj[j * d + c] * rows[i * d + c];
      p[i * k + j] = (float)s;
    }
  idx[0] = start;
  for (int64_t t = 0; t + 1 < m; t++) {
    const float *c = p + idx[t] * k;
    for (int64_t i = 0; i < n; i++) {
      double s = 0;
      for (int64_t j = 0; j < k; j++) s += ((double)p[i * k + j] - c[j]) * ((double)p[i * k + j] - c[j]);
      if (t == 0 || s < md[i]) md[i] = (float)s;
    }
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
      if (md[i] > md[b]) b = i;
    idx[t + 1] = b;
    md[b] = 0;
  }
  free(p);
  free(md);
}

/* clustered rows: centres + small noise (the structure real patch features have) */
static float *clustered(int64_t n, int64_t d, int64_t nc, uint64_t seed) {
  vg_tensor *c = vg_tensor_new(VG_F32, 2, (int64_t[]){nc, d}), *z = vg_tensor_new(VG_F32, 2, (int64_t[]){n, d});
  vg_tensor *u = vg_tensor_new(VG_F32, 1, (int64_t[]){n});
  vg_normal_(c, 0, 1, seed);
  vg_normal_(z, 0, 0.3f, seed + 1);
  vg_uniform_(u, 0, 1, seed + 2);
  float *r = malloc(sizeof(float) * (size_t)(n * d));
  for (int64_t i = 0; i < n; i++) {
    int64_t a = (int64_t)(vg_f32(u)[i] * (float)nc) % nc;
    for (int64_t j = 0; j < d; j++) r[i * d + j] = vg_f32(c)[a * d + j] + vg_f32(z)[i * d + j];
  }
  vg_tensor_free(c);
  vg_tensor_free(z);
  vg_tensor_free(u);
  return r;
}

static void test_kernels(void) {
  VG_CHECK(vg_patchcore_jl_dim(214016, 0.9) == 303 && vg_patchcore_jl_dim(384, 0.9) == 146 &&
           vg_patchcore_jl_dim(192, 0.9) == 129 && vg_patchcore_jl_dim(1, 0.9) == 0,
           "Johnson-Lindenstrauss dimension (eps 0.9): 214016 -> 303, 384 -> 146, 192 -> 129, 1 -> 0");
  /* projection law */
  int64_t k = 300, d = 1536;
  float *r = vg_patchcore_projection(k, d, 3), *r2 = vg_patchcore_projection(k, d, 3), *r3 = vg_patchcore_projection(k, d, 4);
  if (VG_CHECK(r && r2 && r3, "projection matrices")) {
    float v = (float)(sqrt(sqrt(1536.0)) / sqrt(300.0));
    int64_t nz = 0, pos = 0, bad = 0, diff = 0, emptyrows = 0;
    for (int64_t i = 0; i < k * d; i++) {
      if (r[i] != 0) { nz++; pos += r[i] > 0; bad += fabsf(r[i]) != v; }
      diff += r[i] != r3[i];
    }
    for (int64_t j = 0; j < k; j++) {
      int64_t c = 0;
      for (int64_t i = 0; i < d; i++) c += r[j * d + i] != 0;
      emptyrows += c == 0;
    }
    double dens = (double)nz / (double)(k * d), want = 1 / sqrt(1536.0);
    /* Binomial(460800, 0.0255): sd of the fraction 2.3e-4 */
    VG_CHECK(fabs(dens - want) < 1.2e-3 && bad == 0 && llabs(2 * pos - nz) < 4 * (int64_t)sqrt((double)nz) &&
             !memcmp(r, r2, sizeof(float) * (size_t)(k * d)) && diff > 0 && emptyrows == 0,
             "projection: density %.5f (1/sqrt(1536) = %.5f), values +-%.5f (%lld off), %lld of %lld positive, "
             "seeded (same seed same matrix, another differs)", dens, want, v, (long long)bad, (long long)pos,
             (long long)nz);
  }
  free(r); free(r2); free(r3);
  /* coreset vs the full-update reference, clustered and uniform data, threads 1 and 2 */
  for (int c = 0; c < 2; c++) {
    int64_t n = 3000, dd = 48, kk = vg_patchcore_jl_dim(n, 0.9), m = 300;
    float *rows = c == 0 ? clustered(n, dd, 40, 77) : NULL;
    if (c == 1) {
      vg_tensor *u = vg_tensor_new(VG_F32, 2, (int64_t[]){n, dd});
      vg_uniform_(u, -1, 1, 5);
      rows = malloc(sizeof(float) * (size_t)(n * dd));
      memcpy(rows, vg_f32(u), sizeof(float) * (size_t)(n * dd));
      vg_tensor_free(u);
    }
    float *pr = vg_patchcore_projection(kk, dd, 9);
    int64_t *a = malloc(sizeof(int64_t) * (size_t)m), *b = malloc(sizeof(int64_t) * (size_t)m),
            *e = malloc(sizeof(int64_t) * (size_t)m);
    coreset_ref(rows, n, dd, pr, kk, 17, m, a);
    vg_set_num_threads(1);
    vg_status st = vg_patchcore_coreset(rows, n, dd, pr, kk, 17, m, b);
    vg_set_num_threads(2);
    st |= vg_patchcore_coreset(rows, n, dd, pr, kk, 17, m, e);
    int64_t same = 0, same_t = 0;
    for (int64_t i = 0; i < m; i++) { same += a[i] == b[i]; same_t += b[i] == e[i]; }
    VG_CHECK(st == VG_OK && same == m && same_t == m,
             "coreset (%s, %lld rows x %lld, %lld components): %lld of %lld indices as the full-update reference, "
             "%lld equal for 1 and 2 threads", c ? "uniform" : "clustered", (long long)n, (long long)dd, (long long)kk,
             (long long)same, (long long)m, (long long)same_t);
    free(rows); free(pr); free(a); free(b); free(e);
  }
  {  /* duplicates: fewer distinct rows than centres (argmax of all zeros = row 0, as torch) */
    int64_t n = 50, dd = 8, m = 20, idx[20];
    float rows[50 * 8];
    for (int64_t i = 0; i < n * dd; i++) rows[i] = (float)(((i / dd) % 5) * ((i / dd) % 5));   /* no distance ties */
    float *pr = vg_patchcore_projection(vg_patchcore_jl_dim(n, 0.9), dd, 1);
    int64_t ref[20];
    coreset_ref(rows, n, dd, pr, vg_patchcore_jl_dim(n, 0.9), 3, m, ref);
    vg_status st = vg_patchcore_coreset(rows, n, dd, pr, vg_patchcore_jl_dim(n, 0.9), 3, m, idx);
    VG_CHECK(st == VG_OK && !memcmp(idx, ref, sizeof idx) && idx[5] == 0,
             "coreset of 5 distinct rows x 10, 20 centres: as the reference (%lld %lld %lld %lld %lld, then row 0 repeated: %lld)",
             (long long)idx[0], (long long)idx[1], (long long)idx[2], (long long)idx[3], (long long)idx[4], (long long)idx[5]);
    free(pr);
    VG_CHECK(vg_patchcore_coreset(rows, n, dd, rows, 4, 50, m, idx) != VG_OK && vg_patchcore_coreset(rows, n, dd, rows, 4, 0, 51, idx) != VG_OK,
             "coreset: start out of range, more centres than rows refused (%s)", vg_last_error());
  }
  {  /* nearest neighbours vs double brute force (rows far from each other: no cancellation) */
    int64_t nq = 1500, nb = 2500, dd = 40;
    float *q = clustered(nq, dd, 30, 11), *bk = clustered(nb, dd, 30, 21);
    float *dist = malloc(sizeof(float) * (size_t)nq);
    int64_t *ix = malloc(sizeof(int64_t) * (size_t)nq), sameix = 0;
    double maxerr = 0;
    vg_status st = vg_patchcore_nearest(q, nq, bk, nb, dd, NULL, dist, ix);
    for (int64_t i = 0; i < nq && st == VG_OK; i++) {
      double best = INFINITY;
      int64_t bi = -1;
      for (int64_t j = 0; j < nb; j++) {
        double s = 0;
        for (int64_t c = 0; c < dd; c++) s += ((double)q[i * dd + c] - bk[j * dd + c]) * ((double)q[i * dd + c] - bk[j * dd + c]);
        if (s < best) { best = s; bi = j; }
      }
      maxerr = fmax(maxerr, fabs(dist[i] - sqrt(best)) / sqrt(best));
      sameix += ix[i] == bi;
    }
    VG_CHECK(st == VG_OK && maxerr < 1e-3 && sameix >= nq - 2,
             "nearest (%lld queries, bank %lld, blocks of 1024 x 2048): max rel error %.2e vs double, %lld of %lld "
             "indices equal", (long long)nq, (long long)nb, maxerr, (long long)sameix, (long long)nq);
    free(q); free(bk); free(dist); free(ix);
  }
}

/* ---------------------------------------------------------------- conformance */
static void conformance(const char *fixture, const char *backbone, int ntrain, int ntest) {
  vg_fixture *fx = vg_fixture_load(vg_test_fixture(fixture));
  if (!VG_CHECK(fx != NULL, "%s", fixture)) return;
  char cfg[256];
  snprintf(cfg, sizeof cfg, "{\"backbone\":\"%s\",\"input_size\":64,\"layers\":[\"layer2\",\"layer3\"]}", backbone);
  vg_method *m = make(cfg);
  if (!VG_CHECK(m && vg_resnet_init_philox(vg_nn_child_get(vg_patchcore_module(m), "feature_extractor"), 1000) == VG_OK,
                "%s: model + Philox backbone", backbone)) {
    vg_method_free(m);
    vg_fixture_free(fx);
    return;
  }
  const vg_fx_tensor *proj = vg_fixture_get(fx, "proj"), *start = vg_fixture_get(fx, "start"),
                     *idx = vg_fixture_get(fx, "idx"), *emb = vg_fixture_get(fx, "emb"),
                     *stride = vg_fixture_get(fx, "emb_stride"), *shape = vg_fixture_get(fx, "emb_shape");
  if (!VG_CHECK(proj && start && idx && emb && stride && shape, "%s: fixture entries", backbone)) {
    vg_method_free(m);
    vg_fixture_free(fx);
    return;
  }
  char what[160];
  vg_scope_begin();
  vg_tensor *rows = vg_patchcore_embed(m, philox_input(ntrain, 64, 11), NULL, NULL);
  if (VG_CHECK(rows && rows->shape[0] == (int64_t)shape->data[0] && rows->shape[1] == (int64_t)shape->data[1] &&
               vg_patchcore_dim(m) == (int64_t)shape->data[1],
               "%s: embedding %lld x %lld rows (anomalib %g x %g)", backbone, rows ? (long long)rows->shape[0] : -1LL,
               rows ? (long long)rows->shape[1] : -1LL, shape->data[0], shape->data[1])) {
    int64_t n = rows->shape[0], s = (int64_t)stride->data[0], k = 0;
    float *sub = malloc(sizeof(float) * (size_t)emb->n);
    for (int64_t i = 0; i < vg_numel(rows) && k < emb->n; i += s) sub[k++] = vg_f32(rows)[i];
    snprintf(what, sizeof what, "%s: patch embedding (AvgPool 3x3, layer3 bilinear to layer2's grid; every %lldth)",
             backbone, (long long)s);
    if (VG_CHECK(k == emb->n, "%s: embedding sample size", backbone)) close_rel(sub, emb, 1e-5, what);
    free(sub);
    int64_t kk = vg_patchcore_jl_dim(n, 0.9), mc = (int64_t)((double)n * 0.1);
    float *pr = malloc(sizeof(float) * (size_t)proj->n);
    for (int64_t i = 0; i < proj->n; i++) pr[i] = proj->data[i];
    int64_t *got = malloc(sizeof(int64_t) * (size_t)(mc + 1));
    vg_status st = proj->shape[0] == kk && proj->shape[1] == vg_patchcore_dim(m) && idx->n == mc
                   ? vg_patchcore_fit_rows(m, vg_f32(rows), n, pr, (int64_t)start->data[0], got) : VG_ERR_ARG;
    int64_t same = 0;
    for (int64_t i = 0; st == VG_OK && i < mc; i++) same += got[i] == (int64_t)idx->data[i];
    VG_CHECK(st == VG_OK && same == mc, "%s: coreset of %lld of %lld rows (%lld components, anomalib's projection "
             "and start %g): %lld of %lld indices identical", backbone, (long long)mc, (long long)n, (long long)kk,
             start->data[0], (long long)same, (long long)mc);
    free(pr);
    free(got);
  }
  vg_scope_end();
  vg_scope_begin();
  float *maps = malloc(sizeof(float) * (size_t)(ntest * 64 * 64)), scores[4];
  vg_status st = m->ops->predict(m, philox_input(ntest, 64, 7), maps, scores);
  if (VG_CHECK(st == VG_OK, "%s: predict%s%s", backbone, st ? ": " : "", st ? vg_last_error() : "")) {
    int64_t np;
    const float *ps = vg_patchcore_last_patch_scores(m, &np);
    snprintf(what, sizeof what, "%s: nearest-neighbour patch scores", backbone);
    const vg_fx_tensor *fp = vg_fixture_get(fx, "patch");
    if (VG_CHECK(fp && ps && np == fp->n, "%s: patch score count", backbone)) close_rel(ps, fp, 1e-4, what);
    snprintf(what, sizeof what, "%s: anomaly map (nearest resize + blur sigma 4)", backbone);
    close_rel(maps, vg_fixture_get(fx, "map"), 1e-4, what);
    snprintf(what, sizeof what, "%s: image scores (reweighted by 9 bank neighbours)", backbone);
    close_rel(scores, vg_fixture_get(fx, "score"), 1e-4, what);
  }
  vg_scope_end();
  /* checkpoint round trip: a model of another seed (another random backbone) loads it */
  if (st == VG_OK) {
    char path[] = "/tmp/vg_patchcore_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    st = m->ops->save(m, path);
    VG_CHECK(st == VG_OK, "%s: save%s%s", backbone, st ? ": " : "", st ? vg_last_error() : "");
    snprintf(cfg, sizeof cfg, "{\"backbone\":\"%s\",\"input_size\":64,\"seed\":5}", backbone);
    vg_method *r = make(cfg);
    vg_scope_begin();
    float *maps2 = malloc(sizeof(float) * (size_t)(ntest * 64 * 64)), scores2[4];
    vg_tensor *x = philox_input(ntest, 64, 7);
    VG_CHECK(r && r->ops->predict(r, x, maps2, scores2) != VG_OK, "%s: predict before fit refused (%s)", backbone,
             vg_last_error());
    st = r ? r->ops->load(r, path) : VG_ERR_ARG;
    if (VG_CHECK(st == VG_OK, "%s: load%s%s", backbone, st ? ": " : "", st ? vg_last_error() : "") &&
        VG_CHECK(r->ops->predict(r, x, maps2, scores2) == VG_OK, "%s: predict after load", backbone)) {
      VG_CHECK(!memcmp(maps, maps2, sizeof(float) * (size_t)(ntest * 64 * 64)) &&
               !memcmp(scores, scores2, sizeof(float) * (size_t)ntest),
               "%s: the loaded checkpoint (backbone + memory bank) predicts bit for bit the same", backbone);
    }
    vg_scope_end();
    vg_method_free(r);
    /* num_neighbors 1: the image score is the largest patch score (anomalib's amax branch) */
    snprintf(cfg, sizeof cfg, "{\"backbone\":\"%s\",\"input_size\":64,\"num_neighbors\":1}", backbone);
    r = make(cfg);
    vg_scope_begin();
    if (VG_CHECK(r && r->ops->load(r, path) == VG_OK && r->ops->predict(r, philox_input(ntest, 64, 7), maps2, scores2) == VG_OK,
                 "%s: num_neighbors 1: load + predict", backbone)) {
      int64_t np;
      const float *ps = vg_patchcore_last_patch_scores(r, &np);
      int ok = np == (int64_t)ntest * (np / ntest);
      for (int i = 0; ok && i < ntest; i++) {
        float mx = -INFINITY;
        for (int64_t p = 0; p < np / ntest; p++) mx = fmaxf(mx, ps[i * (np / ntest) + p]);
        ok &= scores2[i] == mx && scores2[i] >= scores[i];
      }
      VG_CHECK(ok, "%s: num_neighbors 1: image score = the largest patch score (%.6f; reweighted %.6f)", backbone,
               scores2[0], scores[0]);
    }
    vg_scope_end();
    vg_method_free(r);
    free(maps2);
    /* a checkpoint of another embedding width is refused, the model stays unfitted */
    r = make("{\"backbone\":\"resnet18\",\"input_size\":64,\"layers\":[\"layer1\",\"layer2\"]}");
    vg_status ls = r ? r->ops->load(r, path) : VG_OK;
    char why[256];
    snprintf(why, sizeof why, "%s", ls ? vg_last_error() : "loaded");
    vg_scope_begin();
    VG_CHECK(r && ls != VG_OK && r->ops->predict(r, philox_input(1, 64, 7), maps, scores) != VG_OK,
             "%s: checkpoint into a model of another width refused, the model stays unfitted (%s)", backbone, why);
    vg_scope_end();
    vg_method_free(r);
    unlink(path);
  }
  free(maps);
  vg_method_free(m);
  vg_fixture_free(fx);
}

static void test_config(void) {
  vg_method *m = make("{}");
  char *j = m ? m->ops->config_json(m) : NULL;
  VG_CHECK(m && j && strstr(j, "\"backbone\": \"wide_resnet50_2\"") && strstr(j, "\"coreset_sampling_ratio\": 0.1") &&
           strstr(j, "\"num_neighbors\": 9") && vg_patchcore_dim(m) == 1536 && m->input_h == 256 &&
           m->default_steps == 0,
           "defaults: wide_resnet50_2 layer2+layer3 (1536 dims), 256 px, ratio 0.1, 9 neighbours, no training steps");
  free(j);
  vg_method_free(m);
  m = make("{\"backbone\":\"resnet18\",\"layers\":[\"layer1\",\"layer2\",\"layer3\"],\"input_size\":64}");
  VG_CHECK(m && vg_patchcore_dim(m) == 64 + 128 + 256, "resnet18 layer1..3: %lld dims", m ? (long long)vg_patchcore_dim(m) : -1LL);
  if (m) {
    vg_scope_begin();
    int64_t h = 0, w = 0;
    vg_tensor *e = vg_patchcore_embed(m, philox_input(2, 64, 1), &h, &w);
    VG_CHECK(e && h == 16 && w == 16 && e->shape[0] == 2 * 16 * 16, "layer1 first: the 16 x 16 grid of layer1");
    VG_CHECK(!vg_patchcore_embed(m, philox_input(1, 32, 1), NULL, NULL), "wrong image size refused (%s)", vg_last_error());
    vg_scope_end();
  }
  vg_method_free(m);
  const char *bad[] = {"{\"nope\":1}", "{\"backbone\":\"vgg\"}", "{\"coreset_sampling_ratio\":0}",
                       "{\"coreset_sampling_ratio\":1.5}", "{\"num_neighbors\":0}", "{\"layers\":[]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    vg_json *cfg = NULL;
    vg_json_parse(bad[i], strlen(bad[i]), NULL, &cfg);
    m = NULL;
    VG_CHECK(vg_patchcore_new(cfg, &m) != VG_OK && !m, "%s refused (%s)", bad[i], vg_last_error());
    vg_json_free(cfg);
  }
  m = make("{\"backbone\":\"resnet18\",\"input_size\":64,\"coreset_sampling_ratio\":0.01}");
  float rows[5 * 384] = {0};
  VG_CHECK(m && vg_patchcore_fit_rows(m, rows, 5, NULL, -1, NULL) != VG_OK,
           "5 rows x ratio 0.01 keeps none: refused (%s)", vg_last_error());
  vg_method_free(m);
}

/* `vigil train patchcore` on a small synthetic category: fit pass, checkpoint, test metrics */
static void test_cli(void) {
  if (!g_vigil[0]) { printf("SKIP vigil train patchcore (no vigil binary beside the test)\n"); return; }
  char dir[] = "/tmp/vg_pc_cli_XXXXXX";
  if (!VG_CHECK(mkdtemp(dir) != NULL, "temp dir")) return;
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s train patchcore --category shapes --out %s/run --set backbone=\\\"resnet18\\\" "
           "--set input_size=64 --threads 2 2>&1", g_vigil, dir);
  int rc = -1;
  char *out = vg_test_run(cmd, &rc);
  char p[1200];
  snprintf(p, sizeof p, "%s/run/metrics.json", dir);
  VG_CHECK(rc == 0 && access(p, F_OK) == 0, "vigil train patchcore (synthetic, resnet18, 64 px): exit %d, metrics.json%s%s",
           rc, rc ? "\n" : "", rc && out ? out : "");
  free(out);
  vg_test_tmp_done(dir);
}

/* VG_PATCHCORE_BENCH=N: the coreset of N x 1536 rows and 8192 queries against its bank. With
 * /tmp/pc_bench_rows.f32 (N rows, tools/bench_patchcore_torch.py coreset N 0) the rows are
 * anomalib's bench rows, and with /tmp/pc_bench_proj.f32 + pc_bench_idx.i64 its projection and
 * start row, the indices compared; else Gaussian clusters and Vigil's own projection. */
static float *read_raw(const char *path, size_t bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  float *p = malloc(bytes);
  if (p && fread(p, 1, bytes, f) != bytes) { free(p); p = NULL; }
  fclose(f);
  return p;
}

static void bench(int64_t n) {
  int64_t d = 1536, k = vg_patchcore_jl_dim(n, 0.9), m = (int64_t)((double)n * 0.1);
  float *rows = read_raw("/tmp/pc_bench_rows.f32", sizeof(float) * (size_t)(n * d));
  bool theirs = rows != NULL;
  if (!rows) rows = clustered(n, d, 2000, 99);
  float *pr = theirs ? read_raw("/tmp/pc_bench_proj.f32", sizeof(float) * (size_t)(k * d)) : NULL;
  int64_t *want = pr ? (int64_t *)read_raw("/tmp/pc_bench_idx.i64", sizeof(int64_t) * (size_t)m) : NULL;
  if (!pr) pr = vg_patchcore_projection(k, d, 1);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)m), same = 0;
  double t0 = now_s(), c0 = (double)clock() / CLOCKS_PER_SEC;
  vg_status st = vg_patchcore_coreset(rows, n, d, pr, k, want ? want[0] : 0, m, idx);
  double t1 = now_s(), c1 = (double)clock() / CLOCKS_PER_SEC;
  int64_t first_diff = -1;
  for (int64_t i = 0; want && i < m; i++) {
    same += idx[i] == want[i];
    if (idx[i] != want[i] && first_diff < 0) first_diff = i;
  }
  float *dist = malloc(sizeof(float) * 1024 * 8);
  float *bank = malloc(sizeof(float) * (size_t)(m * d));
  for (int64_t i = 0; i < m; i++) memcpy(bank + i * d, rows + idx[i] * d, sizeof(float) * (size_t)d);
  double t2 = now_s(), c2 = (double)clock() / CLOCKS_PER_SEC;
  st |= vg_patchcore_nearest(rows, 1024 * 8, bank, m, d, NULL, dist, NULL);
  double t3 = now_s(), c3 = (double)clock() / CLOCKS_PER_SEC;
  printf("BENCH coreset %lld x %lld -> %lld (k %lld, %s rows): %.2f s wall, %.2f s CPU", (long long)n, (long long)d,
         (long long)m, (long long)k, theirs ? "anomalib's" : "own", t1 - t0, c1 - c0);
  if (want) printf(", %lld of %lld indices as anomalib's (first difference at step %lld)", (long long)same, (long long)m,
                  (long long)first_diff);
  printf("; nearest 8192 queries vs %lld rows: %.3f s wall, %.3f s CPU (%d threads)%s\n", (long long)m, t3 - t2,
         c3 - c2, vg_num_threads(), st ? " FAILED" : "");
  free(rows); free(pr); free(want); free(idx); free(dist); free(bank);
}

int main(int argc, char **argv) {
  vg_set_num_threads(2);
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  if (argc > 0 && getenv("VG_PATCHCORE_BENCH")) {
    bench(atoll(getenv("VG_PATCHCORE_BENCH")));
    return 0;
  }
  test_config();
  test_kernels();
  conformance("patchcore_r18.bin", "resnet18", 6, 2);
  conformance("patchcore_wrn50.bin", "wide_resnet50_2", 3, 1);
  test_cli();
  return vg_test_finish();
}
