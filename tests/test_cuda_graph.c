/* test_cuda_graph.c — the CUDA runtime API of tensor.h: graphs, pinned memory, the
 * allocator's statistics and event timers.
 *
 * With a device: a conv -> relu -> avg_pool -> bilinear -> matmul chain captured as a
 * graph and replayed with new inputs gives the eager results bit for bit; tensors
 * allocated and filled between replays are not touched by the replays (the graph's
 * intermediates stay in its pool); a whole per-image pipeline (pinned H2D, forward,
 * pinned D2H) captured as one graph; quantile captured; a steady-state eager
 * step makes no cudaMalloc; live / cached / peak bytes move by the block sizes; the
 * timer measures a positive time; a pinned round trip; TF32 on and off; copies that cannot be captured
 * (a pageable device->host or host->device copy, index_select's host-side index check,
 * sort, whose values are a gather) make vg_cuda_graph_end fail with the message, and
 * eager work still runs afterwards.
 *
 * Without a device (or in a CPU-only build): the API fails with "built without CUDA"
 * (CPU-only build) / "cuda: ..." (no device), the host allocator falls back to malloc;
 * then one SKIP line for the device checks. */
#include "tests/vgtest.h"
#include "tensor/tensor.h"

#define S(...) (const int64_t[]){__VA_ARGS__}

static uint64_t rng = 12345;
static float frand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static void fill_rand(float *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) p[i] = frand();
}

/* ---- the model: conv -> relu -> avg_pool -> bilinear -> matmul ---- */
#define NX (2 * 3 * 16 * 16)
#define NY (2 * 4 * 12 * 5)
static vg_tensor *w, *bias, *m;   /* device heap tensors */

static vg_tensor *forward(const vg_tensor *x) {
  vg_tensor *h = vg_relu(vg_conv2d(x, w, bias, (vg_conv2d_opts){.ph = 1, .pw = 1}));
  h = vg_avg_pool2d(h, (vg_pool2d_opts){.kh = 2, .kw = 2, .count_include_pad = true});
  h = vg_interpolate_bilinear(h, 12, 12, false);
  return vg_matmul(h, m);   /* (2, 4, 12, 12) x (12, 5) */
}

static vg_tensor *dev_from(const float *p, int nd, const int64_t *shape) {
  vg_scope_begin();
  vg_tensor *h = vg_from_data(VG_F32, nd, shape, p);
  vg_tensor *d = vg_tensor_new_on(VG_CUDA, VG_F32, nd, shape);
  vg_copy_(d, h);
  vg_scope_end();
  return d;
}

/* eager: host image -> device -> forward -> host */
static void eager(const float *img, float *y) {
  vg_scope_begin();
  vg_tensor *x = vg_to_device(vg_from_data(VG_F32, 4, S(2, 3, 16, 16), img), VG_CUDA);
  vg_to_host(forward(x), VG_F32, y);
  vg_scope_end();
}

static bool all_equal(const vg_tensor *t, float v) {
  int64_t n = vg_numel(t);
  float *h = malloc(sizeof(float) * (size_t)n);
  vg_to_host(t, VG_F32, h);
  bool ok = true;
  for (int64_t i = 0; i < n; i++) ok = ok && h[i] == v;
  free(h);
  return ok;
}

static void no_device_checks(void) {
#ifdef VG_WITH_CUDA
  const char *want = "cuda:";
#else
  const char *want = "built without CUDA";
#endif
  vg_status st = vg_cuda_graph_begin();
  VG_CHECK(st == VG_ERR_DEVICE && strstr(vg_last_error(), want), "no device: graph_begin fails: %s", vg_last_error());
  vg_clear_error();
  VG_CHECK(!vg_cuda_graph_end() && strstr(vg_last_error(), "cuda") , "no device: graph_end NULL: %s", vg_last_error());
  VG_CHECK(vg_cuda_graph_replay(NULL) != VG_OK, "no device: replay fails");
  vg_cuda_graph_free(NULL);
  vg_cuda_mem_stats ms;
  vg_clear_error();
  st = vg_cuda_mem_stats_get(&ms);
  VG_CHECK(st == VG_ERR_DEVICE && strstr(vg_last_error(), want), "no device: mem_stats fails: %s", vg_last_error());
  vg_clear_error();
  vg_cuda_timer *t = vg_cuda_timer_new();
  VG_CHECK(!t && strstr(vg_last_error(), want), "no device: timer_new NULL: %s", vg_last_error());
  VG_CHECK(vg_cuda_timer_elapsed_ms(t) < 0, "no device: elapsed_ms -1");
  vg_cuda_timer_free(t);
  vg_cuda_synchronize();
  vg_cuda_reset_peak();
  vg_cuda_empty_cache();
  vg_clear_error();
  st = vg_cuda_set_tf32(true);
  VG_CHECK(st == VG_ERR_DEVICE && strstr(vg_last_error(), want) && !vg_cuda_tf32(), "no device: set_tf32 fails: %s",
           vg_last_error());
  /* host allocator: malloc fallback, usable through a wrapped tensor */
  float *p = vg_cuda_host_alloc(sizeof(float) * 6);
  VG_CHECK(p != NULL, "no device: host_alloc falls back to malloc");
  for (int i = 0; i < 6; i++) p[i] = (float)i * 1.5f;
  vg_tensor *ht = vg_tensor_wrap_host(p, VG_F32, 2, S(2, 3));
  vg_scope_begin();
  vg_tensor *s = vg_sum_all(ht);
  VG_CHECK(ht && vg_f32(ht) == p && s && vg_item(s) == 22.5f, "no device: wrapped host tensor reads the buffer");
  vg_scope_end();
  vg_tensor_free(ht);   /* the header only */
  VG_CHECK(p[5] == 7.5f, "no device: buffer intact after freeing the wrapper");
  vg_cuda_host_free(p);
  VG_CHECK(!vg_tensor_wrap_host(NULL, VG_F32, 1, S(3)) && strstr(vg_last_error(), "NULL"), "wrap_host(NULL) fails");
}

/* vg_scope_end_keep on the device: the kept storage moves to the parent scope without a
 * copy (live bytes: one 4 MB tensor after the inner scope's three), a view of it stays a
 * view, and the parent's end frees it */
static void keep_checks(void) {
  vg_cuda_mem_stats a, b, c;
  vg_scope_begin();
  vg_cuda_mem_stats_get(&a);
  vg_scope_begin();
  vg_tensor *t1 = vg_full_on(VG_CUDA, VG_F32, 1, S(1 << 20), 1.0);
  vg_tensor *t3 = vg_mul(vg_add(t1, t1), vg_add(t1, t1));
  vg_tensor *keep[2] = {t3, vg_narrow(t3, 0, 10, 5)};
  void *data = t3->storage->data;
  vg_scope_end_keep(2, keep);
  vg_cuda_mem_stats_get(&b);
  float v[5] = {0}, v0 = 0;
  vg_to_host(keep[1], VG_F32, v);
  vg_to_host(vg_narrow(keep[0], 0, 0, 1), VG_F32, &v0);
  VG_CHECK(keep[0]->storage->data == data && keep[1]->storage == keep[0]->storage && keep[1]->offset == 10 &&
               v0 == 4 && v[4] == 4 && b.bytes_live - a.bytes_live >= (4u << 20) && b.bytes_live - a.bytes_live < (8u << 20),
           "scope_end_keep on the device: storage moved, not copied (%.1f MB live after the inner scope)",
           (double)(b.bytes_live - a.bytes_live) / 1048576.0);
  vg_scope_end();
  vg_cuda_mem_stats_get(&c);
  VG_CHECK(c.bytes_live == a.bytes_live, "the parent scope's end frees the kept storage");
}

/* TF32 (vg_cuda_set_tf32 / VIGIL_TF32=1): off at start, a 64 x 512 x 64 f32 matmul matches
 * the CPU to f32 rounding; on, its inputs are rounded to 10-bit mantissas (error ~2^-11
 * relative per product); off again gives the first result bit for bit */
static void tf32_checks(void) {
  enum { M = 64, K = 512, N = 64 };
  static float a[M * K], b[K * N], ref[M * N], r0[M * N], r1[M * N], r2[M * N];
  fill_rand(a, M * K);
  fill_rand(b, K * N);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double acc = 0;
      for (int k = 0; k < K; k++) acc += (double)a[i * K + k] * b[k * N + j];
      ref[i * N + j] = (float)acc;
    }
  bool was = vg_cuda_tf32();
  float *res[3] = {r0, r1, r2};
  for (int pass = 0; pass < 3; pass++) {
    vg_cuda_set_tf32(pass == 1);
    vg_scope_begin();
    vg_tensor *da = vg_to_device(vg_from_data(VG_F32, 2, S(M, K), a), VG_CUDA);
    vg_tensor *db = vg_to_device(vg_from_data(VG_F32, 2, S(K, N), b), VG_CUDA);
    vg_to_host(vg_matmul(da, db), VG_F32, res[pass]);
    vg_scope_end();
  }
  double e0 = 0, e1 = 0, mx = 0;
  for (int i = 0; i < M * N; i++) {
    mx = fmax(mx, fabs(ref[i]));
    e0 = fmax(e0, fabs(r0[i] - ref[i]));
    e1 = fmax(e1, fabs(r1[i] - ref[i]));
  }
  VG_CHECK(!was && e0 <= 1e-5 * mx, "TF32 off by default: f32 matmul within %.1e of max (bound 1e-5)", e0 / mx);
  VG_CHECK(e1 > e0 && e1 <= 5e-3 * mx, "TF32 on: matmul within %.1e of max (coarser than f32, bound 5e-3)", e1 / mx);
  VG_CHECK(!memcmp(r0, r2, sizeof r0) && !vg_cuda_tf32(), "TF32 off again: the f32 result bit for bit");
}

/* vg_cuda_fork / branch / join: three branches computing from one input, eager and
 * captured as a graph with parallel branches (replays == the serial results bit for bit);
 * the allocator: a block freed on branch 1 while forked is reused by branch 1 but not
 * handed to branch 2 before the join, and is back in the cache after it */
static vg_tensor *branch_work(const vg_tensor *x, int k) {
  vg_scope_begin();
  vg_tensor *h = forward(x);   /* conv, relu, pool, bilinear, matmul: kernels and GEMMs */
  if (k == 1) h = vg_exp(vg_scale(h, 0.1f));
  if (k == 2) h = vg_sigmoid(h);
  vg_scope_end_keep(1, &h);
  return h;
}

static void branch_checks(const float *img) {
  if (!VG_CHECK(vg_cuda_branches(), "side streams in use (VIGIL_CUDA_BRANCHES unset)")) return;
  enum { NOUT = 2 * 4 * 12 * 5 };
  static float want[3][NOUT], got[3][NOUT];
  vg_scope_begin();
  vg_tensor *x = dev_from(img, 4, S(2, 3, 16, 16));
  for (int k = 0; k < 3; k++) vg_to_host(branch_work(x, k), VG_F32, want[k]);
  /* eager branches */
  vg_tensor *y[3];
  vg_cuda_fork();
  for (int k = 1; k <= 3; k++) {
    vg_cuda_branch(k % 3);
    y[k % 3] = branch_work(x, k % 3);
  }
  vg_cuda_join();
  for (int k = 0; k < 3; k++) vg_to_host(y[k], VG_F32, got[k]);
  VG_CHECK(!memcmp(want, got, sizeof want), "eager fork/join: three branches == serial results bit for bit");
  /* allocator while forked */
  vg_cuda_fork();
  vg_cuda_branch(1);
  vg_tensor *t1 = vg_tensor_new_on(VG_CUDA, VG_F32, 1, S(1 << 16));
  void *p1 = vg_data(t1);
  vg_tensor_free(t1);
  vg_cuda_branch(2);
  vg_tensor *t2 = vg_tensor_new_on(VG_CUDA, VG_F32, 1, S(1 << 16));
  bool other = vg_data(t2) != p1;
  vg_cuda_branch(1);
  vg_tensor *t3 = vg_tensor_new_on(VG_CUDA, VG_F32, 1, S(1 << 16));
  bool same = vg_data(t3) == p1;
  vg_cuda_join();
  vg_tensor_free(t2);
  vg_tensor_free(t3);
  vg_tensor *t4 = vg_tensor_new_on(VG_CUDA, VG_F32, 1, S(1 << 16));
  vg_tensor_free(t4);
  VG_CHECK(other && same, "forked: a block freed on branch 1 is reused by branch 1 (%d), not by branch 2 (%d)", same,
           other);
  /* a block made on branch 1 in an earlier fork may be read by any stream since: freed in
   * a later fork, it waits for that fork's join even on branch 1 */
  vg_cuda_fork();
  vg_cuda_branch(1);
  vg_tensor *t5 = vg_tensor_new_on(VG_CUDA, VG_F32, 1, S(1 << 17));
  void *p5 = vg_data(t5);
  vg_cuda_join();
  vg_cuda_fork();
  vg_cuda_branch(1);
  vg_tensor_free(t5);
  vg_tensor *t6 = vg_tensor_new_on(VG_CUDA, VG_F32, 1, S(1 << 17));
  bool held_back = vg_data(t6) != p5;
  vg_cuda_join();
  vg_tensor_free(t6);
  VG_CHECK(held_back, "a block from an earlier fork, freed on branch 1, is not reused before the join");
  /* captured: parallel branches in one graph */
  vg_tensor *out[3];
  for (int k = 0; k < 3; k++) out[k] = vg_tensor_new_on(VG_CUDA, VG_F32, 4, S(2, 4, 12, 5));
  vg_tensor *xin = vg_tensor_new_on(VG_CUDA, VG_F32, 4, S(2, 3, 16, 16));
  vg_copy_(xin, x);
  VG_CHECK(vg_cuda_graph_begin() == VG_OK, "graph begin");
  vg_scope_begin();
  vg_cuda_fork();
  for (int k = 0; k < 3; k++) {
    vg_cuda_branch(k);
    vg_copy_(out[k], branch_work(xin, k));
  }
  vg_cuda_join();
  vg_scope_end();
  vg_cuda_graph *g = vg_cuda_graph_end();
  bool ok = VG_CHECK(g, "fork/join captured as one graph (%s)", g ? "ok" : vg_last_error());
  for (int r = 0; ok && r < 2; r++) {
    for (int k = 0; k < 3; k++) vg_fill_(out[k], -1.0);
    VG_CHECK(vg_cuda_graph_replay(g) == VG_OK, "replay %d", r);
    for (int k = 0; k < 3; k++) vg_to_host(out[k], VG_F32, got[k]);
    VG_CHECK(!memcmp(want, got, sizeof want), "graph with parallel branches, replay %d: == serial results bit for bit", r);
  }
  vg_cuda_graph_free(g);
  for (int k = 0; k < 3; k++) vg_tensor_free(out[k]);
  vg_tensor_free(xin);
  vg_tensor_free(x);
  vg_scope_end();
}

int main(void) {
  if (!vg_cuda_available()) {
    char why[256];
    snprintf(why, sizeof why, "%s", vg_last_error());
    no_device_checks();
    printf("SKIP device checks: %s\n", why);
    return vg_test_finish();
  }
  /* weights */
  float hw[4 * 3 * 3 * 3], hb[4], hm[12 * 5];
  fill_rand(hw, 108);
  fill_rand(hb, 4);
  fill_rand(hm, 60);
  w = dev_from(hw, 4, S(4, 3, 3, 3));
  bias = dev_from(hb, 1, S(4));
  m = dev_from(hm, 2, S(12, 5));
  enum { NIMG = 3 };
  static float img[NIMG][NX], ref[NIMG][NY], got[NY];
  for (int i = 0; i < NIMG; i++) fill_rand(img[i], NX);
  for (int i = 0; i < NIMG; i++) eager(img[i], ref[i]);
  branch_checks(img[0]);

  /* ---- allocator: a steady-state eager step makes no cudaMalloc ---- */
  {
    vg_cuda_mem_stats a, b;
    eager(img[0], got);
    vg_cuda_mem_stats_get(&a);
    eager(img[1], got);
    vg_cuda_mem_stats_get(&b);
    VG_CHECK(b.n_malloc == a.n_malloc && b.n_alloc_calls > a.n_alloc_calls,
             "steady-state eager step: %lld allocations, %lld cudaMalloc", (long long)(b.n_alloc_calls - a.n_alloc_calls),
             (long long)(b.n_malloc - a.n_malloc));
    VG_CHECK(!memcmp(got, ref[1], sizeof got), "eager step repeatable bit for bit");
  }
  /* ---- statistics: live, cached, peak ---- */
  {
    vg_cuda_mem_stats a, b, c, d;
    vg_cuda_reset_peak();
    vg_cuda_mem_stats_get(&a);
    VG_CHECK(a.peak_live == a.bytes_live && a.peak_reserved == a.bytes_live + a.bytes_cached + a.bytes_graph,
             "reset_peak: peaks = current (live %zu, reserved %zu)", a.peak_live, a.peak_reserved);
    vg_tensor *big = vg_tensor_new_on(VG_CUDA, VG_F32, 1, S(1 << 18));   /* 1 MiB */
    vg_cuda_mem_stats_get(&b);
    VG_CHECK(b.bytes_live == a.bytes_live + (1u << 20) && b.peak_live >= b.bytes_live,
             "1 MiB tensor: live +%zu, peak %zu", b.bytes_live - a.bytes_live, b.peak_live);
    vg_tensor_free(big);
    vg_cuda_mem_stats_get(&c);
    VG_CHECK(c.bytes_live == a.bytes_live && c.bytes_cached == b.bytes_cached + (1u << 20) &&
                 c.peak_live == b.peak_live && c.peak_reserved >= a.bytes_live + (1u << 20),
             "freed: live back, cached +1 MiB, peak kept");
    vg_cuda_reset_peak();
    vg_cuda_mem_stats_get(&d);
    VG_CHECK(d.peak_live == d.bytes_live, "reset_peak after the free: peak_live = live");
    vg_cuda_empty_cache();
    vg_cuda_mem_stats_get(&d);
    VG_CHECK(d.bytes_cached == 0, "empty_cache: nothing cached");
  }

  /* ---- graph: capture once, replay with new inputs ---- */
  vg_tensor *in = vg_tensor_new_on(VG_CUDA, VG_F32, 4, S(2, 3, 16, 16));
  vg_tensor *out = vg_tensor_new_on(VG_CUDA, VG_F32, 4, S(2, 4, 12, 5));
  vg_cuda_mem_stats s0, s1, s2;
  vg_cuda_empty_cache();   /* so the capture has to cudaMalloc (legal only in relaxed mode) */
  vg_cuda_mem_stats_get(&s0);
  VG_CHECK(vg_cuda_graph_begin() == VG_OK, "graph_begin");
  VG_CHECK(vg_cuda_graph_begin() != VG_OK && strstr(vg_last_error(), "already"), "nested graph_begin refused: %s",
           vg_last_error());
  vg_scope_begin();
  vg_copy_(out, forward(in));
  vg_scope_end();
  vg_cuda_graph *g = vg_cuda_graph_end();
  VG_CHECK(g != NULL, "graph_end: %s", g ? "a graph" : vg_last_error());
  vg_cuda_mem_stats_get(&s1);
  VG_CHECK(s1.bytes_graph > 0 && s1.bytes_live == s0.bytes_live,
           "after the capture the intermediates are free in the graph's pool (%zu bytes), live unchanged",
           s1.bytes_graph);
  VG_CHECK(s1.n_malloc > s0.n_malloc, "the capture made %lld cudaMalloc calls (from an empty cache)",
           (long long)(s1.n_malloc - s0.n_malloc));
  if (!g) return vg_test_finish();
  for (int i = 0; i < NIMG; i++) {
    vg_scope_begin();
    vg_copy_(in, vg_from_data(VG_F32, 4, S(2, 3, 16, 16), img[i]));
    VG_CHECK(vg_cuda_graph_replay(g) == VG_OK, "replay %d", i);
    vg_to_host(out, VG_F32, got);
    VG_CHECK(!memcmp(got, ref[i], sizeof got), "replay %d == eager bit for bit", i);
    vg_scope_end();
  }
  /* tensors made between replays: the replays must not write into them */
  {
    enum { NJ = 24 };
    vg_tensor *junk[NJ];
    int64_t sizes[] = {64, 256, 512, 1024, 1536, 2048, 4096, 96, 600, 2400, 8192, 32};
    vg_cuda_mem_stats a, b;
    vg_cuda_mem_stats_get(&a);
    for (int j = 0; j < NJ; j++) {
      junk[j] = vg_tensor_new_on(VG_CUDA, VG_F32, 1, S(sizes[j % 12]));
      vg_fill_(junk[j], 1000.0 + j);
    }
    vg_cuda_mem_stats_get(&b);
    VG_CHECK(b.bytes_graph == a.bytes_graph, "allocations after the capture leave the graph's pool alone");
    for (int r = 0; r < 2; r++) {
      int i = (r + 1) % NIMG;
      vg_scope_begin();
      vg_copy_(in, vg_from_data(VG_F32, 4, S(2, 3, 16, 16), img[i]));
      vg_tensor *t = vg_affine(junk[0], 1, 0);   /* scope temporaries too */
      vg_cuda_graph_replay(g);
      vg_to_host(out, VG_F32, got);
      VG_CHECK(!memcmp(got, ref[i], sizeof got) && all_equal(t, 1000.0f), "replay %d after other allocations == eager", r);
      vg_scope_end();
    }
    bool ok = true;
    for (int j = 0; j < NJ; j++) ok = ok && all_equal(junk[j], (float)(1000 + j));
    VG_CHECK(ok, "%d tensors filled between replays are intact", NJ);
    for (int j = 0; j < NJ; j++) vg_tensor_free(junk[j]);
  }
  /* paper protocol timing: from the H2D copy of the image to the map on the host */
  {
    vg_cuda_timer *t = vg_cuda_timer_new();
    vg_tensor *hx = vg_tensor_wrap_host(vg_cuda_host_alloc(sizeof(float) * NX), VG_F32, 4, S(2, 3, 16, 16));
    vg_tensor *hy = vg_tensor_wrap_host(vg_cuda_host_alloc(sizeof(float) * NY), VG_F32, 4, S(2, 4, 12, 5));
    memcpy(vg_data(hx), img[2], sizeof img[2]);
    vg_cuda_timer_start(t);
    vg_copy_(in, hx);
    vg_cuda_graph_replay(g);
    vg_copy_(hy, out);
    vg_cuda_timer_stop(t);
    float ms = vg_cuda_timer_elapsed_ms(t);
    VG_CHECK(ms > 0 && !memcmp(vg_data(hy), ref[2], sizeof got), "timer: H2D + replay + D2H took %.4f ms", ms);
    vg_cuda_host_free(vg_data(hx));
    vg_cuda_host_free(vg_data(hy));
    vg_tensor_free(hx);
    vg_tensor_free(hy);
    vg_cuda_timer_free(t);
  }
  vg_cuda_mem_stats_get(&s1);
  vg_cuda_graph_free(g);
  vg_cuda_mem_stats_get(&s2);
  VG_CHECK(s2.bytes_graph == 0 && s2.bytes_cached == s1.bytes_cached + s1.bytes_graph,
           "graph_free: the pool (%zu bytes) back to the cache", s1.bytes_graph);

  /* ---- pinned memory: round trip, and a whole pipeline captured (pinned copies are graph nodes) ---- */
  {
    float *px = vg_cuda_host_alloc(sizeof(float) * NX), *py = vg_cuda_host_alloc(sizeof(float) * NY);
    vg_tensor *hx = vg_tensor_wrap_host(px, VG_F32, 4, S(2, 3, 16, 16));
    vg_tensor *hy = vg_tensor_wrap_host(py, VG_F32, 4, S(2, 4, 12, 5));
    float *back = vg_cuda_host_alloc(sizeof(float) * NX);
    vg_tensor *hb2 = vg_tensor_wrap_host(back, VG_F32, 4, S(2, 3, 16, 16));
    memcpy(px, img[1], sizeof img[1]);
    vg_copy_(in, hx);
    vg_copy_(hb2, in);
    VG_CHECK(!memcmp(back, img[1], sizeof img[1]), "pinned H2D + D2H round trip");
    VG_CHECK(vg_cuda_graph_begin() == VG_OK, "pipeline graph_begin");
    vg_scope_begin();
    vg_copy_(in, hx);
    vg_copy_(out, forward(in));
    vg_copy_(hy, out);
    vg_scope_end();
    vg_cuda_graph *gp = vg_cuda_graph_end();
    VG_CHECK(gp != NULL, "pipeline graph (pinned H2D, forward, pinned D2H): %s", gp ? "captured" : vg_last_error());
    for (int i = 0; gp && i < NIMG; i++) {
      memcpy(px, img[i], sizeof img[i]);
      memset(py, 0, sizeof(float) * NY);
      vg_cuda_graph_replay(gp);
      vg_cuda_synchronize();
      VG_CHECK(!memcmp(py, ref[i], sizeof got), "pipeline replay %d == eager bit for bit", i);
    }
    vg_cuda_graph_free(gp);
    vg_tensor_free(hx);
    vg_tensor_free(hy);
    vg_tensor_free(hb2);
    vg_cuda_host_free(px);
    vg_cuda_host_free(py);
    vg_cuda_host_free(back);
  }

  /* ---- selection: quantile captures (no host waits); sort does not (values via gather) ---- */
  {
    vg_tensor *q = vg_tensor_new_on(VG_CUDA, VG_F32, 0, S(1));   /* 0-d (a non-NULL shape: device.c memcpys it) */
    float qe, qg;
    vg_scope_begin();
    vg_copy_(in, vg_from_data(VG_F32, 4, S(2, 3, 16, 16), img[0]));
    vg_to_host(vg_quantile_all(in, 0.9), VG_F32, &qe);
    vg_scope_end();
    VG_CHECK(vg_cuda_graph_begin() == VG_OK, "quantile graph_begin");
    vg_scope_begin();
    vg_copy_(q, vg_quantile_all(in, 0.9));
    vg_scope_end();
    vg_cuda_graph *gs = vg_cuda_graph_end();
    VG_CHECK(gs != NULL, "quantile captured: %s", gs ? "yes" : vg_last_error());
    if (gs) {
      vg_fill_(q, 0);
      vg_cuda_graph_replay(gs);
      vg_to_host(q, VG_F32, &qg);
      VG_CHECK(qg == qe, "quantile replay == eager bit for bit (%g)", qe);
    }
    vg_cuda_graph_free(gs);
    vg_cuda_graph_begin();
    vg_scope_begin();
    vg_sort(vg_reshape(in, 2, S(12, 128)), 1, true, NULL);
    vg_scope_end();
    gs = vg_cuda_graph_end();
    VG_CHECK(!gs && strstr(vg_last_error(), "device->host"),
             "sort refused (its values are a gather, which checks indices on the host)");
    vg_tensor_free(q);
  }

  /* ---- what cannot be captured: the capture fails with a message, eager work goes on ---- */
  {
    float tmp[NY];
    vg_cuda_mem_stats a, b;
    vg_cuda_mem_stats_get(&a);
    vg_cuda_graph_begin();
    vg_scope_begin();
    vg_to_host(forward(in), VG_F32, tmp);   /* pageable D2H: would wait for the stream */
    vg_scope_end();
    vg_cuda_graph *bad = vg_cuda_graph_end();
    VG_CHECK(!bad && vg_last_status() == VG_ERR_UNSUPPORTED && strstr(vg_last_error(), "cannot be captured") &&
                 strstr(vg_last_error(), "device->host"),
             "pageable device->host copy refused: %.90s...", vg_last_error());
    vg_cuda_mem_stats_get(&b);
    VG_CHECK(b.bytes_graph == a.bytes_graph && b.bytes_live == a.bytes_live, "failed capture: its pool went back");
    vg_cuda_graph_begin();
    vg_scope_begin();
    vg_copy_(in, vg_from_data(VG_F32, 4, S(2, 3, 16, 16), img[0]));   /* pageable H2D */
    vg_scope_end();
    bad = vg_cuda_graph_end();
    VG_CHECK(!bad && strstr(vg_last_error(), "host->device"), "pageable host->device copy refused");
    vg_tensor *idx = vg_tensor_new_on(VG_CUDA, VG_I64, 1, S(2));
    vg_cuda_graph_begin();
    vg_scope_begin();
    vg_index_select(in, 1, idx);
    vg_scope_end();
    bad = vg_cuda_graph_end();
    VG_CHECK(!bad && strstr(vg_last_error(), "index_select"), "index_select refused (its front-end reads the indices on the host)");
    vg_tensor_free(idx);
    VG_CHECK(!vg_cuda_graph_end() && strstr(vg_last_error(), "no capture"), "graph_end without a capture fails");
    eager(img[2], got);
    VG_CHECK(!memcmp(got, ref[2], sizeof got), "eager after failed captures == reference");
  }
  tf32_checks();
  keep_checks();
  vg_tensor_free(in);
  vg_tensor_free(out);
  vg_tensor_free(w);
  vg_tensor_free(bias);
  vg_tensor_free(m);
  return vg_test_finish();
}
