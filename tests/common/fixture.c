#include "tests/common/fixture.h"
#include "base/inflate.h"
#include "tensor/kmath/philox.h"
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rd(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n; }

vg_fixture *vg_fixture_load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "fixture %s: cannot open\n", path);
    return NULL;
  }
  char magic[4];
  uint32_t ver, count;
  uint8_t *body = NULL;   /* version 2: the inflated version-1 body, read through fmemopen */
  vg_fixture *fx = calloc(1, sizeof *fx);
  if (!rd(f, magic, 4) || memcmp(magic, "VGFX", 4) || !rd(f, &ver, 4) || ver < 1 || ver > 3) goto bad;
  if (ver >= 2) {
    uint64_t n;
    long at, end;
    if (!rd(f, &n, 8) || n > ((uint64_t)1 << 30) || (at = ftell(f)) < 0 || fseek(f, 0, SEEK_END) || (end = ftell(f)) < at ||
        fseek(f, at, SEEK_SET))
      goto bad;
    uint8_t *z = malloc((size_t)(end - at) + 1);
    body = malloc(n ? n : 1);
    bool ok = z && body && rd(f, z, (size_t)(end - at)) && vg_zlib_inflate(z, (size_t)(end - at), body, n) == VG_OK;
    free(z);
    fclose(f);
    f = ok ? fmemopen(body, n, "rb") : NULL;
    if (!f) {
      fprintf(stderr, "fixture %s: bad compressed body\n", path);
      free(body);
      vg_fixture_free(fx);
      return NULL;
    }
  }
  if (!rd(f, &count, 4) || count > 100000) goto bad;
  fx->t = calloc(count, sizeof *fx->t);
  for (uint32_t i = 0; i < count; i++) {
    vg_fx_tensor *t = &fx->t[i];
    uint32_t nl, nd;
    if (!rd(f, &nl, 4) || nl > 4096) goto bad;
    t->name = calloc(1, nl + 1);
    fx->count = (int)i + 1;
    if (!rd(f, t->name, nl) || !rd(f, &nd, 4)) goto bad;
    bool gen = ver == 3 && (nd & 0x100u);   /* version 3: a generated tensor, no data stored */
    nd &= gen ? ~0x100u : ~0u;
    if (nd > 8) goto bad;
    t->ndim = (int)nd;
    t->n = 1;
    for (uint32_t d = 0; d < nd; d++) {
      if (!rd(f, &t->shape[d], 8) || t->shape[d] < 0 || t->shape[d] > (1 << 28)) goto bad;
      t->n *= t->shape[d];
    }
    t->data = malloc(sizeof(float) * (size_t)(t->n ? t->n : 1));
    if (gen) {
      /* kind 1: Philox uniform, element i = lo + (hi - lo) * vg_philox_uniform_at(seed, i) in
       * f32, two roundings (= tools/philox.py uniform_range = vg_uniform_) */
      uint32_t kind;
      uint64_t seed;
      float lo, hi;
      if (!rd(f, &kind, 4) || kind != 1 || !rd(f, &seed, 8) || !rd(f, &lo, 4) || !rd(f, &hi, 4)) goto bad;
      float d = hi - lo;
      for (int64_t k = 0; k < t->n; k++) {
        float p = d * vg_philox_uniform_at(seed, (uint64_t)k);
        t->data[k] = lo + p;
      }
    } else if (!rd(f, t->data, sizeof(float) * (size_t)t->n)) {
      goto bad;
    }
  }
  fclose(f);
  free(body);
  return fx;
bad:
  fprintf(stderr, "fixture %s: malformed\n", path);
  fclose(f);
  free(body);
  vg_fixture_free(fx);
  return NULL;
}

const vg_fx_tensor *vg_fixture_get(const vg_fixture *f, const char *name) {
  for (int i = 0; f && i < f->count; i++)
    if (!strcmp(f->t[i].name, name)) return &f->t[i];
  return NULL;
}

void vg_fixture_free(vg_fixture *f) {
  if (!f) return;
  for (int i = 0; i < f->count; i++) {
    free(f->t[i].name);
    free(f->t[i].data);
  }
  free(f->t);
  free(f);
}

double vg_fixture_rowcol_err(const float *g, const int64_t *shp, const float *want_row, const float *want_col) {
  int64_t N = shp[0], C = shp[1], H = shp[2], W = shp[3];
  double e = 0;
  for (int64_t b = 0; b < N; b++) {
    for (int64_t y = 0; y < H; y++) {
      double s = 0;
      for (int64_t c = 0; c < C; c++)
        for (int64_t x = 0; x < W; x++) s += g[((b * C + c) * H + y) * W + x];
      double d = fabs((double)(float)(s / (double)(C * W)) - want_row[b * H + y]);
      if (!(d <= e)) e = d;   /* NaN propagates */
    }
    for (int64_t x = 0; x < W; x++) {
      double s = 0;
      for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H; y++) s += g[((b * C + c) * H + y) * W + x];
      double d = fabs((double)(float)(s / (double)(C * H)) - want_col[b * W + x]);
      if (!(d <= e)) e = d;
    }
  }
  return e;
}
