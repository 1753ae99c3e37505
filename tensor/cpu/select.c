/* select.c — CPU kernels of the selection family: KTHVALUE (radix select over all
 * elements, optionally torch.quantile's lerp between two order statistics) and SORT
 * (stable argsort along one dim, optionally keeping the first k: topk).
 *
 * Keys, digits, the quantile's lerp and the sort keys: tensor/kmath/select.h (shared
 * with tensor/cuda/select.cu). Unsigned key order is -inf < ... < +inf < NaN.
 *
 * KTHVALUE: three histogram passes over bits [31:21], [20:10], [9:0]; pass d counts
 * only the elements whose higher digits match the bucket chosen so far, so the k-th
 * key is known after reading the data three times, O(n) worst case and no copy of the
 * data (non-dense layouts are copied once). Histograms are per thread and are integer
 * counts, so their sum, and the result, does not depend on the thread count.
 * -0 orders before +0 here (the result is always one of the input elements, bit for
 * bit); NaN is the largest value, as torch.kthvalue.
 *
 * SORT: per row, an LSD radix sort (4 x 8 bits, passes whose digit is constant are
 * skipped) of (key, index) pairs, insertion sort for short rows; both stable. Here
 * -0 and +0 get the same key (they compare equal, as in torch.sort(stable=True)), and
 * descending order sorts ~key, so equal values keep their index order both ways.
 * Rows are split across threads; each row is sorted by one thread. */
#include "tensor/cpu/kernels.h"
#include "tensor/kmath/select.h"
#include "base/threadpool.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) VG_ABORT("select: out of memory allocating %zu bytes", n);
  return p;
}

/* ---- element access: a dense span of storage, or a packed copy ---- */

/* x's elements in row-major order into a new buffer (caller frees). */
static float *pack(const vg_tensor *x, int64_t n) {
  float *buf = xmalloc((size_t)n * sizeof(float));
  const float *p = vg_f32(x);
  int64_t idx[VG_MAX_DIMS] = {0};
  int nd = x->ndim;
  int64_t inner = nd ? x->shape[nd - 1] : 1, is = nd ? x->stride[nd - 1] : 0;
  for (int64_t o = 0; o < n; o += inner) {
    int64_t off = 0;
    for (int d = 0; d < nd - 1; d++) off += idx[d] * x->stride[d];
    for (int64_t j = 0; j < inner; j++) buf[o + j] = p[off + j * is];
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < x->shape[d]) break;
      idx[d] = 0;
    }
  }
  return buf;
}

/* ---- KTHVALUE: radix select ---- */

#define SEL_GRAIN 65536
#define SEL_STAGE 1024

typedef struct {
  const float *x;
  int level;              /* 0..2: histogram of digit `level`; 3: min key above `prefix` */
  uint32_t prefix;        /* the higher digits chosen so far (level 1, 2); the key (3) */
  int64_t *hist;          /* [nthreads][VG_SEL_BINS] */
  uint32_t *minabove;     /* [nthreads] */
  float *cand;            /* collect: elements of top bucket `prefix`, in any order */
  _Atomic int64_t ncand;
} sel_ctx;

/* level 0: four interleaved sub-histograms, so runs of equal digits do not wait on
 * one counter; chunk-local uint32 counts (a chunk is < 2^32 elements) */
static void hist_top(const float *x, int64_t b, int64_t e, int64_t *h) {
  uint32_t sub[4][VG_SEL_BINS];
  memset(sub, 0, sizeof sub);
  int64_t i = b;
  for (; i + 4 <= e; i += 4) {
    sub[0][vg_sel_digit(vg_sel_key(x[i]), 0)]++;
    sub[1][vg_sel_digit(vg_sel_key(x[i + 1]), 0)]++;
    sub[2][vg_sel_digit(vg_sel_key(x[i + 2]), 0)]++;
    sub[3][vg_sel_digit(vg_sel_key(x[i + 3]), 0)]++;
  }
  for (; i < e; i++) sub[0][vg_sel_digit(vg_sel_key(x[i]), 0)]++;
  for (int j = 0; j < VG_SEL_BINS; j++) h[j] += (int64_t)sub[0][j] + sub[1][j] + sub[2][j] + sub[3][j];
}

static void sel_pass(void *p, int64_t b, int64_t e, int tid) {
  sel_ctx *s = p;
  const float *x = s->x;
  int64_t *h = s->hist + (size_t)tid * VG_SEL_BINS;
  const uint32_t pre = s->prefix;
  switch (s->level) {
    case 0:
      hist_top(x, b, e, h);
      return;
    case 1:
      for (int64_t i = b; i < e; i++) {
        uint32_t k = vg_sel_key(x[i]);
        if (vg_sel_high(k, 1) == pre) h[vg_sel_digit(k, 1)]++;
      }
      return;
    case 2:
      for (int64_t i = b; i < e; i++) {
        uint32_t k = vg_sel_key(x[i]);
        if (vg_sel_high(k, 2) == pre) h[vg_sel_digit(k, 2)]++;
      }
      return;
    case 3: {
      uint32_t m = s->minabove[tid];
      for (int64_t i = b; i < e; i++) {
        uint32_t k = vg_sel_key(x[i]);
        if (k > pre && k < m) m = k;
      }
      s->minabove[tid] = m;
      return;
    }
    default: {   /* collect */
      float stage[SEL_STAGE];
      int ns = 0;
      for (int64_t i = b; i < e; i++) {
        stage[ns] = x[i];
        ns += vg_sel_digit(vg_sel_key(x[i]), 0) == pre;
        if (ns == SEL_STAGE || (i == e - 1 && ns)) {
          int64_t at = atomic_fetch_add(&s->ncand, ns);
          memcpy(s->cand + at, stage, sizeof(float) * (size_t)ns);
          ns = 0;
        }
      }
      return;
    }
  }
}

/* Runs one histogram pass over x[0, n); sums the per-thread histograms into tot. */
static void sel_hist(sel_ctx *s, const float *x, int64_t n, int nt, int level, uint32_t prefix,
                     unsigned long long *tot, int nbins) {
  memset(s->hist, 0, sizeof(int64_t) * VG_SEL_BINS * (size_t)nt);
  s->x = x;
  s->level = level;
  s->prefix = prefix;
  vg_parallel_for(n, SEL_GRAIN, sel_pass, s);
  for (int b = 0; b < nbins; b++) {
    int64_t t = 0;
    for (int i = 0; i < nt; i++) t += s->hist[(size_t)i * VG_SEL_BINS + b];
    tot[b] = (unsigned long long)t;
  }
}

/* smallest key above `key` in x[0, n) (0xffffffff when none) */
static uint32_t min_above(sel_ctx *s, const float *x, int64_t n, int nt, uint32_t key) {
  for (int i = 0; i < nt; i++) s->minabove[i] = 0xffffffffu;
  s->x = x;
  s->level = 3;
  s->prefix = key;
  vg_parallel_for(n, SEL_GRAIN, sel_pass, s);
  uint32_t m = 0xffffffffu;
  for (int i = 0; i < nt; i++) m = s->minabove[i] < m ? s->minabove[i] : m;
  return m;
}

/* bucket holding the k-th (1-based) counted element; k becomes its rank inside */
static int pick(const unsigned long long *h, int nbins, int64_t *k) {
  int b = vg_sel_pick(h, nbins, k);   /* tensor/kmath/select.h */
  if (b == nbins) VG_ABORT("kthvalue: histogram lost elements");
  return b;
}

typedef struct {
  uint32_t key;          /* the k-th smallest key */
  bool has_nan;
  uint32_t next;         /* the (k+1)-th smallest key (when asked and k < n) */
} sel_result;

/* Pass 1 histograms the top digit of all n elements. When the chosen bucket holds at
 * most n/8 of them (any data but heavy ties), its elements are copied out in one more
 * pass (in any order: the result depends only on their multiset) and the last two
 * digits are found in that copy; otherwise passes 2 and 3 filter the whole input. */
static sel_result radix_select(const float *x, int64_t n, int64_t k, bool want_next) {
  int nt = vg_num_threads();
  if (nt < 1) nt = 1;
  sel_ctx s = {.hist = xmalloc(sizeof(int64_t) * VG_SEL_BINS * (size_t)nt),
               .minabove = xmalloc(sizeof(uint32_t) * (size_t)nt)};
  unsigned long long h[VG_SEL_BINS];
  sel_result r = {0};
  int64_t kk = k;
  sel_hist(&s, x, n, nt, 0, 0, h, VG_SEL_BINS);
  r.has_nan = h[VG_SEL_BINS - 1] > 0;
  uint32_t b1 = (uint32_t)pick(h, VG_SEL_BINS, &kk);
  int64_t k1 = kk, c1 = (int64_t)h[b1];
  const float *src = x;
  int64_t nsrc = n;
  if (n >= 4 * SEL_GRAIN && c1 <= n / 8) {
    s.cand = xmalloc(sizeof(float) * (size_t)c1);
    atomic_init(&s.ncand, 0);
    s.x = x;
    s.level = 4;
    s.prefix = b1;
    vg_parallel_for(n, SEL_GRAIN, sel_pass, &s);
    if (atomic_load(&s.ncand) != c1) VG_ABORT("kthvalue: collected %lld of %lld", (long long)atomic_load(&s.ncand), (long long)c1);
    src = s.cand;
    nsrc = c1;
  }
  sel_hist(&s, src, nsrc, nt, 1, b1, h, VG_SEL_BINS);
  uint32_t b2 = (uint32_t)pick(h, VG_SEL_BINS, &kk);
  uint32_t pre = vg_sel_extend(b1, 1, b2);
  sel_hist(&s, src, nsrc, nt, 2, pre, h, 1024);
  uint32_t b3 = (uint32_t)pick(h, 1024, &kk);
  r.key = vg_sel_extend(pre, 2, b3);
  if (want_next) {
    /* same value again, the next bucket of the last digit, or a min pass (over the
     * top bucket's elements when the next one is among them) */
    if (!vg_sel_next_key(h, (int)b3, kk, pre, &r.next))
      r.next = k1 < c1 ? min_above(&s, src, nsrc, nt, r.key) : min_above(&s, x, n, nt, r.key);
  }
  free(s.cand);
  free(s.hist);
  free(s.minabove);
  return r;
}

/* p.kth: k (1-based). mode 0: out = k-th smallest (NaN largest).
 * mode 1 (quantile): k_hi (k or k+1), w = weight; out = NaN if any
 * element is NaN, else torch's lerp(v_k, v_khi, weight) (vg_kth_result). */
static void kthvalue(const vg_opcall *c) {
  const vg_tensor *x = c->in[0];
  int64_t n = vg_numel(x), k = c->p.kth.k;
  bool want_next = vg_kth_want_next(&c->p.kth, n);
  const float *p = vg_dense_span(x) ? vg_f32(x) : NULL;   /* any dim order: a multiset */
  float *packed = p ? NULL : pack(x, n);
  if (!p) p = packed;
  float *out = vg_f32(c->out[0]);
  sel_result r = radix_select(p, n, k, want_next);
  *out = vg_kth_result(c->p.kth.mode != 0, r.has_nan, r.key, want_next ? r.next : r.key, (float)c->p.kth.w);
  free(packed);
}

/* ---- SORT: stable argsort of each row ---- */

#define SORT_SMALL 48

typedef struct {
  const vg_tensor *x;
  vg_tensor *out;
  int dim;
  bool desc;
  int64_t len, keep;        /* row length, indices kept per row (topk) */
  int nouter;               /* the other dims, in order */
  int64_t oshape[VG_MAX_DIMS], xstride[VG_MAX_DIMS], ostride[VG_MAX_DIMS];
} sort_ctx;

/* stable sort of (key[i], idx[i]), i < n; tk/ti scratch of n; result in key/idx */
static void radix_sort_pairs(uint32_t *key, int64_t *idx, uint32_t *tk, int64_t *ti, int64_t n) {
  if (n <= SORT_SMALL) {
    for (int64_t i = 1; i < n; i++) {
      uint32_t k = key[i];
      int64_t v = idx[i], j = i;
      for (; j > 0 && key[j - 1] > k; j--) {
        key[j] = key[j - 1];
        idx[j] = idx[j - 1];
      }
      key[j] = k;
      idx[j] = v;
    }
    return;
  }
  int64_t cnt[4][256];
  memset(cnt, 0, sizeof cnt);
  for (int64_t i = 0; i < n; i++) {
    uint32_t k = key[i];
    cnt[0][k & 255]++;
    cnt[1][k >> 8 & 255]++;
    cnt[2][k >> 16 & 255]++;
    cnt[3][k >> 24]++;
  }
  uint32_t *sk = key, *dk = tk;
  int64_t *si = idx, *di = ti;
  for (int d = 0; d < 4; d++) {
    int64_t *cd = cnt[d];
    if (cd[(sk[0] >> (8 * d)) & 255] == n) continue;   /* one digit value: order unchanged */
    int64_t sum = 0;
    for (int b = 0; b < 256; b++) {
      int64_t t = cd[b];
      cd[b] = sum;
      sum += t;
    }
    for (int64_t i = 0; i < n; i++) {
      uint32_t k = sk[i];
      int64_t at = cd[(k >> (8 * d)) & 255]++;
      dk[at] = k;
      di[at] = si[i];
    }
    uint32_t *t1 = sk; sk = dk; dk = t1;
    int64_t *t2 = si; si = di; di = t2;
  }
  if (sk != key) {
    memcpy(key, sk, sizeof(uint32_t) * (size_t)n);
    memcpy(idx, si, sizeof(int64_t) * (size_t)n);
  }
}

static void sort_rows(void *p, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  const sort_ctx *s = p;
  int64_t n = s->len;
  uint32_t *key = xmalloc(sizeof(uint32_t) * 2 * (size_t)n);
  int64_t *idx = xmalloc(sizeof(int64_t) * 2 * (size_t)n);
  const float *x = vg_f32(s->x);
  int64_t *o = vg_data(s->out);
  int64_t xs = s->xstride[s->nouter], os = s->ostride[s->nouter];
  for (int64_t r = r0; r < r1; r++) {
    int64_t xoff, ooff;
    vg_sort_row_offsets(s->nouter, s->oshape, s->xstride, s->ostride, r, &xoff, &ooff);
    for (int64_t j = 0; j < n; j++) {
      key[j] = vg_sort_key(x[xoff + j * xs], s->desc);
      idx[j] = j;
    }
    radix_sort_pairs(key, idx, key + n, idx + n, n);
    for (int64_t j = 0; j < s->keep; j++) o[ooff + j * os] = idx[j];
  }
  free(key);
  free(idx);
}

/* in[0] = x (f32, any layout); out[0] = i64 indices, x's shape with `keep` along dim;
 * p.sort = {dim, descending, keep}. */
static void sort_op(const vg_opcall *c) {
  const vg_tensor *x = c->in[0];
  vg_tensor *out = c->out[0];
  sort_ctx s = {.x = x, .out = out, .desc = c->p.sort.descending, .keep = c->p.sort.keep};
  if (x->ndim == 0) {
    if (s.keep) *(int64_t *)vg_data(out) = 0;
    return;
  }
  s.dim = (int)c->p.sort.dim;
  s.len = x->shape[s.dim];
  if (s.keep > s.len || out->dtype != VG_I64) VG_ABORT("sort: bad output");
  int64_t nrows = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (d == s.dim) continue;
    s.oshape[s.nouter] = x->shape[d];
    s.xstride[s.nouter] = x->stride[d];
    s.ostride[s.nouter++] = out->stride[d];
    nrows *= x->shape[d];
  }
  s.xstride[s.nouter] = x->stride[s.dim];
  s.ostride[s.nouter] = out->stride[s.dim];
  if (nrows == 0 || s.len == 0 || s.keep == 0) return;
  int64_t grain = 65536 / s.len;
  vg_parallel_for(nrows, grain > 0 ? grain : 1, sort_rows, &s);
}

void vg_cpu_kthvalue(const vg_opcall *c) { kthvalue(c); }
void vg_cpu_sort(const vg_opcall *c) { sort_op(c); }
