/* fixture.h — reads the VGFX fixtures tools/fixtures.py writes (named f32 arrays; version 3
 * files may hold Philox-generated tensors, expanded here on load). */
#ifndef VG_TEST_FIXTURE_H
#define VG_TEST_FIXTURE_H
#include <stdint.h>

typedef struct {
  char *name;
  int ndim;
  int64_t shape[8];
  int64_t n;
  float *data;
} vg_fx_tensor;

typedef struct {
  int count;
  vg_fx_tensor *t;
} vg_fixture;

/* NULL (with a message on stderr) when the file is missing or malformed. */
vg_fixture *vg_fixture_load(const char *path);
/* The named tensor or NULL. */
const vg_fx_tensor *vg_fixture_get(const vg_fixture *f, const char *name);
void vg_fixture_free(vg_fixture *f);
/* Max abs error of an NCHW map's per-row means over (C, W) (want_row: N x H) and per-column means
 * over (C, H) (want_col: N x W), each mean rounded to f32 as the generator stores it. With the
 * channel means, every element counts in three projections, so a fixture needs only a sparse
 * subsample of the map itself. */
double vg_fixture_rowcol_err(const float *g, const int64_t *shape, const float *want_row, const float *want_col);
#endif
