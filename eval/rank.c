/* rank.c — the two-level bucket sort behind every exact metric (see rank.h). */
#include "eval/rank.h"
#include <stdlib.h>

/* Buckets with more entries than this are ordered with a 65536-bin histogram (cost
 * 65536 + n), smaller ones with a 2-pass radix sort on the low 16 bits (cost ~4n). */
#define SMALL 4096

vg_status vg_rank_init(vg_rank *r, int tagged) {
  memset(r, 0, sizeof *r);
  r->tagged = tagged;
  r->pos_off = calloc(VG_RANK_NB + 1, sizeof(int64_t));
  r->neg_off = calloc(VG_RANK_NB + 1, sizeof(int64_t));
  r->pos_cur = malloc(VG_RANK_NB * sizeof(int64_t));
  r->neg_cur = malloc(VG_RANK_NB * sizeof(int64_t));
  if (!r->pos_off || !r->neg_off || !r->pos_cur || !r->neg_cur) {
    vg_rank_free(r);
    return vg_fail(VG_ERR_NOMEM, "eval: out of memory (rank tables)");
  }
  return VG_OK;
}

void vg_rank_free(vg_rank *r) {
  free(r->pos_off); free(r->neg_off); free(r->pos_cur); free(r->neg_cur);
  free(r->pos_lo); free(r->neg_lo); free(r->pos_tag);
  memset(r, 0, sizeof *r);
}

/* Turns counts into bucket starts (exclusive prefix sums, off[NB] = total). */
static int64_t prefix(int64_t *off, int64_t *cur) {
  int64_t s = 0;
  for (int i = 0; i < VG_RANK_NB; i++) {
    int64_t c = off[i];
    off[i] = cur[i] = s;
    s += c;
  }
  off[VG_RANK_NB] = s;
  return s;
}

vg_status vg_rank_alloc(vg_rank *r) {
  if (r->nan_seen) return vg_fail(VG_ERR_NUMERIC, "eval: NaN anomaly score");
  r->npos = prefix(r->pos_off, r->pos_cur);
  r->nneg = prefix(r->neg_off, r->neg_cur);
  if (r->npos + r->nneg >= ((int64_t)1 << 32))
    return vg_fail(VG_ERR_LIMIT, "eval: %lld scores, at most 2^32 - 1 supported",
                   (long long)(r->npos + r->nneg));
  r->pos_lo = malloc((size_t)(r->npos ? r->npos : 1) * sizeof(uint16_t));
  r->neg_lo = malloc((size_t)(r->nneg ? r->nneg : 1) * sizeof(uint16_t));
  if (r->tagged) r->pos_tag = malloc((size_t)(r->npos ? r->npos : 1) * sizeof(uint32_t));
  if (!r->pos_lo || !r->neg_lo || (r->tagged && !r->pos_tag))
    return vg_fail(VG_ERR_NOMEM, "eval: out of memory sorting %lld scores",
                   (long long)(r->npos + r->nneg));
  return VG_OK;
}

/* Stable LSD radix sort of n entries on a 16-bit key, 2 passes of 8 bits; tags (may be
 * NULL) move along. Result ascending, in a/at. */
static void radix16(uint16_t *a, uint32_t *at, uint16_t *t, uint32_t *tt, int64_t n) {
  if (n < 2) return;
  if (n <= 32) { /* insertion sort */
    for (int64_t i = 1; i < n; i++) {
      uint16_t k = a[i];
      uint32_t g = at ? at[i] : 0;
      int64_t j = i - 1;
      for (; j >= 0 && a[j] > k; j--) {
        a[j + 1] = a[j];
        if (at) at[j + 1] = at[j];
      }
      a[j + 1] = k;
      if (at) at[j + 1] = g;
    }
    return;
  }
  for (int shift = 0; shift < 16; shift += 8) {
    int64_t cnt[257] = {0};
    for (int64_t i = 0; i < n; i++) cnt[((a[i] >> shift) & 255) + 1]++;
    for (int i = 0; i < 256; i++) cnt[i + 1] += cnt[i];
    for (int64_t i = 0; i < n; i++) {
      int64_t d = cnt[(a[i] >> shift) & 255]++;
      t[d] = a[i];
      if (at) tt[d] = at[i];
    }
    memcpy(a, t, (size_t)n * sizeof *a);
    if (at) memcpy(at, tt, (size_t)n * sizeof *at);
  }
}

typedef struct {
  uint16_t *t16;
  uint32_t *t32;
  uint32_t *hp, *hn;  /* histogram counts of positives / negatives per low key */
  double *hw;         /* summed weights per low key (weighted walks) */
} scratch;

vg_status vg_rank_walk(vg_rank *r, const double *weights, vg_rank_visit visit, void *ctx) {
  scratch s;
  s.t16 = malloc(SMALL * sizeof(uint16_t));
  s.t32 = malloc(SMALL * sizeof(uint32_t));
  s.hp = calloc(VG_RANK_NB, sizeof(uint32_t));
  s.hn = calloc(VG_RANK_NB, sizeof(uint32_t));
  s.hw = weights ? calloc(VG_RANK_NB, sizeof(double)) : NULL;
  vg_status st = VG_OK;
  if (!s.t16 || !s.t32 || !s.hp || !s.hn || (weights && !s.hw)) {
    st = vg_fail(VG_ERR_NOMEM, "eval: out of memory (rank walk)");
    goto done;
  }
  const int tagged = r->pos_tag != NULL && weights != NULL;
  for (int64_t hi = VG_RANK_NB - 1; hi >= 0; hi--) {
    int64_t p0 = r->pos_off[hi], cp = r->pos_off[hi + 1] - p0;
    int64_t n0 = r->neg_off[hi], cn = r->neg_off[hi + 1] - n0;
    if (cp + cn == 0) continue;
    uint16_t *pl = r->pos_lo + p0, *nl = r->neg_lo + n0;
    uint32_t *pt = tagged ? r->pos_tag + p0 : NULL;
    const uint32_t base = (uint32_t)hi << 16;
    if (cp + cn > SMALL) {
      /* histogram: one bin per low key, visited from the top; bins are zeroed as they
       * are read so the tables are clean for the next bucket */
      for (int64_t i = 0; i < cp; i++) {
        s.hp[pl[i]]++;
        if (tagged) s.hw[pl[i]] += weights[pt[i]];
      }
      for (int64_t i = 0; i < cn; i++) s.hn[nl[i]]++;
      for (int64_t lo = VG_RANK_NB - 1; lo >= 0; lo--) {
        uint32_t dp = s.hp[lo], dn = s.hn[lo];
        if (!(dp | dn)) continue;
        double dw = (double)dp;
        if (tagged) { dw = s.hw[lo]; s.hw[lo] = 0; }
        s.hp[lo] = s.hn[lo] = 0;
        visit(ctx, vg_rank_unkey(base | (uint32_t)lo), dp, dn, dw);
      }
    } else {
      radix16(pl, pt, s.t16, s.t32, cp); /* cp, cn <= SMALL here */
      radix16(nl, NULL, s.t16, NULL, cn);
      int64_t i = cp - 1, j = cn - 1;
      while (i >= 0 || j >= 0) {
        uint16_t cur = i < 0 ? nl[j] : j < 0 ? pl[i] : (pl[i] > nl[j] ? pl[i] : nl[j]);
        int64_t dp = 0, dn = 0;
        double dw = 0;
        for (; i >= 0 && pl[i] == cur; i--) {
          dp++;
          dw += tagged ? weights[pt[i]] : 1.0;
        }
        for (; j >= 0 && nl[j] == cur; j--) dn++;
        visit(ctx, vg_rank_unkey(base | cur), dp, dn, dw);
      }
    }
  }
done:
  free(s.t16); free(s.t32); free(s.hp); free(s.hn); free(s.hw);
  return st;
}
