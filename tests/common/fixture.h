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
#endif
