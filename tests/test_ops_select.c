/* test_ops_select.c — kthvalue, quantile, sort and topk.
 *   - kthvalue vs a qsort reference (NaN largest, -0 before +0), bit for bit, over
 *     sizes 1, 2, odd, across the kernel's chunk size, heavy ties, +-0, +-inf, NaN,
 *     and non-contiguous layouts (transposed: dense span; strided and expanded: packed);
 *   - quantile vs torch.quantile (tests/fixtures/select/quantile.bin, written by
 *     tools/gen_select_fixtures.py; big inputs regenerated here from a hash) and vs an
 *     exact sort-based reference in C (torch's rank arithmetic and fused lerp);
 *   - sort and topk vs a stable reference (indices and values), along every dim,
 *     ascending and descending, non-contiguous inputs;
 *   - 1 thread vs 2 threads bit-identical; error messages; 16M elements when
 *     VIGIL_TEST_LONG=1. */
#include "tests/vgtest.h"
#include "tensor/tensor.h"
#include "autograd/autograd.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_u64(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545f4914f6cdd1dull;
}
static float frand(void) { return (float)((next_u64() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }

static uint32_t fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static int same_bits(float a, float b) { return (isnan(a) && isnan(b)) || fbits(a) == fbits(b); }
static int same_value(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

/* ---- references ---- */
/* total order: NaN largest, -0 < +0 */
static int cmp_total(const void *pa, const void *pb) {
  float a = *(const float *)pa, b = *(const float *)pb;
  if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
  if (a < b) return -1;
  if (a > b) return 1;
  return (int)(signbit(b) != 0) - (int)(signbit(a) != 0);
}

static float *sorted_copy(const float *x, int64_t n) {
  float *s = malloc((size_t)(n ? n : 1) * sizeof(float));
  memcpy(s, x, (size_t)n * sizeof(float));
  qsort(s, (size_t)n, sizeof(float), cmp_total);
  return s;
}

/* torch.quantile on sorted s: f32 rank arithmetic, lerp with fused multiply-add */
static float ref_quantile(const float *s, int64_t n, double q) {
  for (int64_t i = 0; i < n; i++)
    if (isnan(s[i])) return NAN;
  float rank = (float)q * (float)(n - 1);
  int64_t lo = (int64_t)rank, hi = (int64_t)ceilf(rank);
  float w = rank - (float)lo, a = s[lo], b = s[hi];
  return fabsf(w) < 0.5f ? fmaf(w, b - a, a) : fmaf(-(b - a), 1.0f - w, b);
}

/* stable sort of a row: torch order (NaN largest, -0 == +0), ties by index */
typedef struct { float v; int64_t i; int desc; } item;
static int cmp_item(const void *pa, const void *pb) {
  const item *a = pa, *b = pb;
  int c;
  if (isnan(a->v) || isnan(b->v)) c = isnan(a->v) - isnan(b->v);
  else c = (a->v > b->v) - (a->v < b->v);
  if (a->desc) c = -c;
  return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* ---- data ---- */
typedef enum { D_UNIFORM, D_TIES, D_SPECIAL, D_ZEROS } dist;
static float draw(dist d) {
  switch (d) {
    case D_UNIFORM: return frand() * 100.0f;
    case D_TIES: return (float)(next_u64() % 5) - 2.0f;
    case D_ZEROS: return (next_u64() & 1) ? -0.0f : 0.0f;
    case D_SPECIAL: {
      static const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, 1.0f, -1.0f, 1e-40f, -1e-40f, 3.4e38f};
      uint64_t r = next_u64() % 12;
      return r < 9 ? sp[r] : frand();
    }
  }
  return 0;
}
static float *make(int64_t n, dist d) {
  float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) x[i] = draw(d);
  return x;
}

/* ---- kthvalue ---- */
static int kth_ok(const vg_tensor *t, const float *s, int64_t k) {
  vg_tensor *r = vg_kthvalue_all(t, k);
  return r && r->ndim == 0 && same_bits(vg_item(r), s[k - 1]);
}

static void test_kthvalue(void) {
  static const int64_t sizes[] = {1, 2, 3, 5, 17, 100, 1001, 65536, 65537, 200003};
  static const char *dn[] = {"uniform", "ties", "special", "zeros"};
  for (int d = 0; d < 4; d++)
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
      vg_scope_begin();
      int64_t n = sizes[si];
      float *x = make(n, (dist)d);
      if (d == D_SPECIAL && n > 3) x[n / 2] = NAN, x[n / 3] = -NAN;
      float *s = sorted_copy(x, n);
      vg_tensor *t = vg_from_data(VG_F32, 1, &n, x);
      int ok = 1;
      if (n <= 200) {
        for (int64_t k = 1; k <= n; k++) ok &= kth_ok(t, s, k);
      } else {
        int64_t ks[] = {1, 2, n / 2, n / 2 + 1, n - 1, n, (int64_t)(0.999 * n), 1 + (int64_t)(next_u64() % (uint64_t)n)};
        for (size_t j = 0; j < sizeof ks / sizeof *ks; j++) ok &= kth_ok(t, s, ks[j]);
      }
      VG_CHECK(ok, "kthvalue %s n=%lld vs qsort (bit-exact)", dn[d], (long long)n);
      free(x);
      free(s);
      vg_scope_end();
    }

  /* layouts: 2-D (300, 401) transposed (dense span), column slice with step (packed),
   * expanded (stride 0, packed), 0-d */
  vg_scope_begin();
  int64_t shp[2] = {300, 401}, n = 300 * 401;
  float *x = make(n, D_UNIFORM);
  vg_tensor *t = vg_from_data(VG_F32, 2, shp, x);
  vg_tensor *tt = vg_transpose(t, 0, 1);
  float *s = sorted_copy(x, n);
  VG_CHECK(kth_ok(tt, s, 777) && kth_ok(tt, s, n), "kthvalue transposed view");
  vg_tensor *sl = vg_slice(t, 1, 1, 401, 3);   /* (300, 134) */
  int64_t ns = vg_numel(sl);
  float *xs = malloc((size_t)ns * sizeof(float));
  vg_to_host(sl, VG_F32, xs);
  float *ss = sorted_copy(xs, ns);
  VG_CHECK(kth_ok(sl, ss, 1) && kth_ok(sl, ss, ns / 3) && kth_ok(sl, ss, ns),
           "kthvalue strided slice (%lld elements)", (long long)ns);
  int64_t row = 7, eshape[2] = {5, 7};
  float xr[7] = {3, -1, 4, 1, -5, 9, 2};
  vg_tensor *e = vg_expand(vg_from_data(VG_F32, 2, (int64_t[]){1, 7}, xr), 2, eshape);
  float xe[35];
  for (int i = 0; i < 35; i++) xe[i] = xr[i % row];
  float *se = sorted_copy(xe, 35);
  int ok = 1;
  for (int k = 1; k <= 35; k++) ok &= kth_ok(e, se, k);
  VG_CHECK(ok, "kthvalue expanded (stride 0) input");
  vg_tensor *z = vg_scalar(-2.5f);
  VG_CHECK(vg_item(vg_kthvalue_all(z, 1)) == -2.5f, "kthvalue of a 0-d tensor");
  free(x), free(s), free(xs), free(ss), free(se);
  vg_scope_end();
}

/* ---- quantile vs torch fixtures and vs the C reference ---- */
static uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
/* as hashed() in tools/gen_select_fixtures.py */
static float *hashed(int gen, int64_t n, uint64_t seed) {
  float *x = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    uint64_t h1 = splitmix64((seed << 32) + 2 * (uint64_t)i), h2 = splitmix64((seed << 32) + 2 * (uint64_t)i + 1);
    if (gen == 0) {
      float a = (float)(h1 >> 40) * 0x1p-24f - 0.5f, b = (float)(h2 >> 40) * 0x1p-20f;
      x[i] = a * b;
    } else if (gen == 2) {   /* heavy-tailed: a * 2^e, e in -20..20 (exact) */
      float a = (float)(h1 >> 40) * 0x1p-24f - 0.5f;
      x[i] = ldexpf(a, (int)((h2 >> 40) % 41) - 20);
    } else {
      x[i] = (float)((h1 >> 40) % 17) - 8.0f;
    }
  }
  return x;
}

static void test_quantile_fixtures(void) {
  const char *path = vg_test_fixture("select/quantile.bin");
  FILE *f = fopen(path, "rb");
  char magic[4];
  uint32_t ver = 0, nq = 0, nc = 0;
  double q[16];
  int ok = f && fread(magic, 4, 1, f) == 1 && !memcmp(magic, "VGSQ", 4) && fread(&ver, 4, 1, f) == 1 &&
           ver == 1 && fread(&nq, 4, 1, f) == 1 && nq <= 16 && fread(q, 8, nq, f) == nq &&
           fread(&nc, 4, 1, f) == 1;
  if (!VG_CHECK(ok, "load %s", path)) {
    if (f) fclose(f);
    return;
  }
  for (uint32_t c = 0; c < nc; c++) {
    uint8_t kind, gen;
    uint64_t n, seed;
    float want[16];
    if (!VG_CHECK(fread(&kind, 1, 1, f) == 1 && fread(&gen, 1, 1, f) == 1 && fread(&n, 8, 1, f) == 1 &&
                      fread(&seed, 8, 1, f) == 1 && n > 0 && n < (1u << 30),
                  "fixture case %u header", c))
      break;
    float *x;
    if (kind == 0) {
      x = malloc(n * sizeof(float));
      if (!VG_CHECK(fread(x, 4, n, f) == n, "fixture case %u data", c)) {
        free(x);
        break;
      }
    } else {
      x = hashed(gen, (int64_t)n, seed);
    }
    if (!VG_CHECK(fread(want, 4, nq, f) == nq, "fixture case %u results", c)) {
      free(x);
      break;
    }
    vg_scope_begin();
    int64_t nn = (int64_t)n;
    vg_tensor *t = vg_from_data(VG_F32, 1, &nn, x);
    float *s = sorted_copy(x, nn);
    int okt = 1, okr = 1;
    for (uint32_t j = 0; j < nq; j++) {
      float got = vg_item(vg_quantile_all(t, q[j]));
      okt &= same_value(got, want[j]);
      okr &= same_bits(got, ref_quantile(s, nn, q[j]));
      if (!same_value(got, want[j]))
        printf("  n=%llu q=%g: got %.9g (0x%08x), torch %.9g (0x%08x)\n", (unsigned long long)n, q[j], got,
               fbits(got), want[j], fbits(want[j]));
    }
    VG_CHECK(okt, "quantile == torch.quantile, %s case %u (n=%llu, 7 q)", kind ? "hashed" : "stored", c,
             (unsigned long long)n);
    VG_CHECK(okr, "quantile == C sort reference (bit-exact), case %u", c);
    free(s);
    free(x);
    vg_scope_end();
  }
  fclose(f);
}

static void test_quantile_reference(void) {
  static const double qs[] = {0, 0.001, 0.25, 0.5, 0.75, 0.9, 0.995, 0.999, 1, 1.0 / 3, 0.123456789};
  static const int64_t sizes[] = {1, 2, 3, 10, 999, 1200000};
  for (int d = 0; d < 3; d++)
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
      vg_scope_begin();
      int64_t n = sizes[si];
      float *x = make(n, (dist)d);
      float *s = sorted_copy(x, n);
      vg_tensor *t = vg_from_data(VG_F32, 1, &n, x);
      int ok = 1;
      for (size_t j = 0; j < sizeof qs / sizeof *qs; j++)
        ok &= same_bits(vg_item(vg_quantile_all(t, qs[j])), ref_quantile(s, n, qs[j]));
      VG_CHECK(ok, "quantile vs C reference, dist %d n=%lld (11 q)", d, (long long)n);
      free(x);
      free(s);
      vg_scope_end();
    }
  vg_scope_begin();
  vg_tensor *t = vg_from_data(VG_F32, 1, (int64_t[]){4}, (float[]){1, NAN, 2, 3});
  VG_CHECK(isnan(vg_item(vg_quantile_all(t, 0))) && isnan(vg_item(vg_quantile_all(t, 0.5))),
           "quantile with a NaN element is NaN (torch)");
  VG_CHECK(isnan(vg_item(vg_kthvalue_all(t, 4))) && vg_item(vg_kthvalue_all(t, 3)) == 3.0f,
           "kthvalue: NaN is the largest");
  vg_scope_end();
}

/* ---- sort and topk ---- */
static int check_sort_case(const vg_tensor *t, int dim, int desc, int64_t k, int topk) {
  int nd = t->ndim;
  int d = dim < 0 ? dim + nd : dim;
  vg_tensor *idx = NULL;
  vg_tensor *v = topk ? vg_topk(t, k, dim, desc, &idx) : vg_sort(t, dim, desc, &idx);
  if (!v || !idx || idx->dtype != VG_I64) return 0;
  int64_t len = t->shape[d], keep = topk ? k : len;
  if (v->shape[d] != keep || idx->shape[d] != keep) return 0;
  /* host copies in row-major order */
  int64_t n = vg_numel(t), nv = vg_numel(v);
  float *x = malloc((size_t)n * sizeof(float)), *got = malloc((size_t)(nv ? nv : 1) * sizeof(float));
  int64_t *gi = malloc((size_t)(nv ? nv : 1) * sizeof(int64_t));
  vg_to_host(t, VG_F32, x);
  vg_to_host(v, VG_F32, got);
  vg_to_host(idx, VG_I64, gi);
  int64_t inner = 1, outer = 1;
  for (int i = d + 1; i < nd; i++) inner *= t->shape[i];
  for (int i = 0; i < d; i++) outer *= t->shape[i];
  item *row = malloc((size_t)len * sizeof(item));
  int ok = 1;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      for (int64_t j = 0; j < len; j++) row[j] = (item){x[(o * len + j) * inner + in], j, desc};
      qsort(row, (size_t)len, sizeof(item), cmp_item);
      for (int64_t j = 0; j < keep; j++) {
        int64_t at = (o * keep + j) * inner + in;
        ok &= gi[at] == row[j].i && same_bits(got[at], row[j].v);
      }
    }
  free(x), free(got), free(gi), free(row);
  return ok;
}

static void test_sort(void) {
  static const int64_t lens[] = {1, 2, 3, 47, 48, 49, 300, 5000};
  for (int d = 0; d < 4; d++)
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
      vg_scope_begin();
      int64_t n = lens[li];
      float *x = make(3 * n, (dist)d);
      if (d == D_SPECIAL && n > 5) x[1] = NAN, x[n + 2] = -NAN, x[4] = NAN;
      vg_tensor *t = vg_from_data(VG_F32, 2, (int64_t[]){3, n}, x);
      int ok = 1;
      for (int desc = 0; desc < 2; desc++) {
        ok &= check_sort_case(t, -1, desc, 0, 0);
        ok &= check_sort_case(t, 0, desc, 0, 0);
        ok &= check_sort_case(vg_transpose(t, 0, 1), 0, desc, 0, 0);
        ok &= check_sort_case(t, 1, desc, n < 4 ? n : 4, 1);
        ok &= check_sort_case(t, 1, desc, n, 1);
      }
      VG_CHECK(ok, "sort/topk dist %d rows of %lld: indices and values vs stable reference", d, (long long)n);
      free(x);
      vg_scope_end();
    }
  vg_scope_begin();
  int64_t sh[3] = {4, 6, 70};
  float *x = make(4 * 6 * 70, D_TIES);
  vg_tensor *t = vg_from_data(VG_F32, 3, sh, x);
  vg_tensor *p = vg_slice(vg_permute(t, (int[]){2, 0, 1}), 0, 3, 70, 2);   /* (34, 4, 6) strided */
  int ok = 1;
  for (int dim = 0; dim < 3; dim++)
    for (int desc = 0; desc < 2; desc++) {
      ok &= check_sort_case(t, dim, desc, 0, 0);
      ok &= check_sort_case(p, dim, desc, 0, 0);
      ok &= check_sort_case(p, dim, desc, 2, 1);
    }
  VG_CHECK(ok, "sort/topk 3-D along each dim, contiguous and permuted+strided views");
  vg_tensor *iz = NULL;
  vg_tensor *z = vg_sort(vg_scalar(4.0f), 0, false, &iz);
  VG_CHECK(z && z->ndim == 0 && vg_item(z) == 4.0f && iz && iz->ndim == 0 && *(int64_t *)vg_data(iz) == 0,
           "sort of a 0-d tensor");
  /* torch.topk example: values match torch (tie order: index order here) */
  vg_tensor *ti = NULL;
  vg_tensor *tv = vg_topk(vg_from_data(VG_F32, 1, (int64_t[]){5}, (float[]){1, 3, 3, 2, NAN}), 3, 0, true, &ti);
  float tvh[3];
  vg_to_host(tv, VG_F32, tvh);
  VG_CHECK(isnan(tvh[0]) && tvh[1] == 3 && tvh[2] == 3, "topk largest puts NaN first, as torch");
  free(x);
  vg_scope_end();
}

/* values carry their gradient through GATHER: d sum(w * sort(x)) / dx[i, idx[i, j]] = w[j] */
static void test_sort_grad(void) {
  vg_scope_begin();
  int64_t sh[2] = {3, 9}, wsh[2] = {1, 9};
  float *x = make(27, D_TIES), w[9];
  for (int j = 0; j < 9; j++) w[j] = (float)(j + 1);
  vg_tensor *t = vg_tensor_new(VG_F32, 2, sh);
  memcpy(vg_f32(t), x, sizeof(float) * 27);
  vg_requires_grad_(t, true);
  int ok = 1;
  for (int mode = 0; mode < 2; mode++) {
    vg_zero_grad_(t);
    vg_tensor *idx = NULL;
    vg_tensor *v = mode ? vg_topk(t, 4, 1, true, &idx) : vg_sort(t, 1, true, &idx);
    int64_t keep = mode ? 4 : 9;
    vg_tensor *wt = vg_narrow(vg_from_data(VG_F32, 2, wsh, w), 1, 0, keep);
    ok &= v && v->requires_grad && vg_backward(vg_sum_all(vg_mul(v, wt))) == VG_OK && t->grad;
    if (!ok) break;
    float g[27], want[27] = {0};
    int64_t ih[27];
    vg_to_host(t->grad, VG_F32, g);
    vg_to_host(idx, VG_I64, ih);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < keep; j++) want[i * 9 + ih[i * keep + j]] += w[j];
    for (int i = 0; i < 27; i++) ok &= g[i] == want[i];
  }
  VG_CHECK(ok, "sort/topk values: gradient reaches x at the sorted positions (through gather)");
  vg_tensor_free(t);
  free(x);
  vg_scope_end();
}

/* ---- threads ---- */
static void test_threads(void) {
  vg_scope_begin();
  int64_t n = 1200000;
  float *x = make(n, D_SPECIAL);
  vg_tensor *t = vg_from_data(VG_F32, 1, &n, x);
  vg_tensor *m = vg_from_data(VG_F32, 2, (int64_t[]){240, 5000}, x);
  float r[2][4];
  int64_t *idx[2];
  for (int th = 1; th <= 2; th++) {
    vg_set_num_threads(th);
    r[th - 1][0] = vg_item(vg_kthvalue_all(t, n / 3));
    r[th - 1][1] = vg_item(vg_quantile_all(t, 0.999));
    r[th - 1][2] = vg_item(vg_quantile_all(t, 0.5));
    r[th - 1][3] = vg_item(vg_quantile_all(t, 0.001));
    vg_tensor *ii = NULL;
    vg_sort(m, 1, th == 2, &ii);
    vg_tensor *jj = NULL;
    vg_sort(m, 1, th == 1, &jj);
    idx[th - 1] = malloc(sizeof(int64_t) * 2 * (size_t)n);
    vg_to_host(th == 1 ? ii : jj, VG_I64, idx[th - 1]);
    vg_to_host(th == 1 ? jj : ii, VG_I64, idx[th - 1] + n);
  }
  vg_set_num_threads(0);
  int same = 1;
  for (int i = 0; i < 4; i++) same &= fbits(r[0][i]) == fbits(r[1][i]);
  VG_CHECK(same, "kthvalue/quantile: 1 thread == 2 threads (bit-identical)");
  VG_CHECK(!memcmp(idx[0], idx[1], sizeof(int64_t) * 2 * (size_t)n), "sort (240 x 5000): 1 thread == 2 threads");
  free(idx[0]), free(idx[1]), free(x);
  vg_scope_end();
}

/* ---- errors ---- */
static int err_has(const vg_tensor *r, const char *a, const char *b) {
  const char *e = vg_last_error();
  int ok = r == NULL && e && strstr(e, a) && (!b || strstr(e, b));
  if (!ok) printf("  error text: %s\n", e ? e : "(none)");
  return ok;
}

static void test_errors(void) {
  vg_scope_begin();
  vg_tensor *t = vg_from_data(VG_F32, 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
  VG_CHECK(err_has(vg_kthvalue_all(t, 0), "kthvalue: k = 0 out of range [1, 6]", "[2, 3]"), "kthvalue k = 0");
  VG_CHECK(err_has(vg_kthvalue_all(t, 7), "kthvalue: k = 7", "[2, 3]"), "kthvalue k = 7 > n");
  VG_CHECK(err_has(vg_quantile_all(t, 1.5), "quantile: q = 1.5 outside [0, 1]", "[2, 3]"), "quantile q > 1");
  VG_CHECK(err_has(vg_quantile_all(t, -0.1), "quantile: q = -0.1", NULL), "quantile q < 0");
  VG_CHECK(err_has(vg_quantile_all(t, NAN), "quantile: q = nan", NULL), "quantile q NaN");
  VG_CHECK(err_has(vg_quantile_all(vg_empty(VG_F32, 1, (int64_t[]){0}), 0.5), "quantile: empty input [0]", NULL),
           "quantile of an empty tensor");
  VG_CHECK(err_has(vg_sort(t, 2, false, NULL), "sort: dim 2 out of range for [2, 3]", NULL), "sort bad dim");
  VG_CHECK(err_has(vg_topk(t, 4, 1, true, NULL), "topk: k = 4 out of range [0, 3] along dim 1 of [2, 3]", NULL),
           "topk k > len");
  VG_CHECK(err_has(vg_topk(t, 1, -3, true, NULL), "topk: dim -3 out of range", NULL), "topk bad dim");
  vg_tensor *ti = vg_cast(t, VG_I64);
  VG_CHECK(err_has(vg_sort(ti, 0, false, NULL), "sort: input 0 is i64 [2, 3]", NULL), "sort of i64");
  VG_CHECK(err_has(vg_kthvalue_all(ti, 1), "kthvalue: input 0 is i64", NULL), "kthvalue of i64");
  vg_clear_error();
  VG_CHECK(err_has(vg_quantile_all(NULL, 0.5), "quantile: input 0 is NULL", NULL), "quantile of NULL");
  vg_scope_end();
}

static void test_long(void) {
  if (!vg_test_long()) {
    printf("SKIP 16M-element kthvalue/quantile (VIGIL_TEST_LONG=1 runs it)\n");
    return;
  }
  vg_scope_begin();
  int64_t n = 16 * 1024 * 1024 + 3;
  float *x = make(n, D_UNIFORM);
  for (int64_t i = 0; i < n; i += 1000) x[i] = 0.25f;   /* some ties */
  float *s = sorted_copy(x, n);
  vg_tensor *t = vg_from_data(VG_F32, 1, &n, x);
  int ok = kth_ok(t, s, 1) && kth_ok(t, s, n) && kth_ok(t, s, n / 2) && kth_ok(t, s, n - n / 1000);
  VG_CHECK(ok, "kthvalue 16M vs qsort");
  static const double qs[] = {0, 0.001, 0.5, 0.9, 0.995, 0.999, 1};
  ok = 1;
  for (int j = 0; j < 7; j++) ok &= same_bits(vg_item(vg_quantile_all(t, qs[j])), ref_quantile(s, n, qs[j]));
  VG_CHECK(ok, "quantile 16M vs C reference");
  free(x), free(s);
  vg_scope_end();
}

int main(void) {
  test_kthvalue();
  test_quantile_fixtures();
  test_quantile_reference();
  test_sort();
  test_sort_grad();
  test_threads();
  test_errors();
  test_long();
  return vg_test_finish();
}
