/* fuzz_loco_config.c — libFuzzer target: MVTec LOCO defects_config.json
 * (vg_loco_config_load, datasets/collections.c), read from a scratch file (on /dev/shm when
 * there is one) as vg_ds_loco reads it. A refusal must leave a message and an empty config;
 * an accepted config must hold only entries the test split can use (a name, a pixel value
 * in [1, 65535], a finite threshold >= 0, in (0, 1] when relative: a fraction of the
 * defect's area), and each entry's saturation (what report/report.c computes from it,
 * eval/spro.c) must be a defined pixel count in [0, area] for any defect area. See
 * tests/fuzz/README.md: links a libvigil.a built with -fsanitize=fuzzer-no-link,address,undefined. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "datasets/datasets.h"
#include "eval/eval.h"

static char g_path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (!g_path[0]) {
    char dir[200];
    snprintf(dir, sizeof dir, "%s/vigil_fuzz_loco_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) abort();
    snprintf(g_path, sizeof g_path, "%s/defects_config.json", dir);
  }
  FILE *f = fopen(g_path, "wb");
  if (!f) abort();
  if (n && fwrite(data, 1, n, f) != n) abort();
  fclose(f);

  vg_loco_config c;
  memset(&c, 0x5a, sizeof c);
  vg_clear_error();
  vg_status st = vg_loco_config_load(g_path, &c);
  if (st != VG_OK) {
    if (!vg_last_error()[0] || c.d || c.n) __builtin_trap();
    return 0;
  }
  if (c.n < 0 || (c.n > 0 && !c.d)) __builtin_trap();
  static const int64_t areas[] = {1, 2, 7, 100, 4096, 1 << 20, (int64_t)1 << 40};
  for (int i = 0; i < c.n; i++) {
    const vg_loco_defect *d = &c.d[i];
    if (!d->defect_name || d->pixel_value < 1 || d->pixel_value > 65535 || !isfinite(d->saturation_threshold) ||
        d->saturation_threshold < 0 || (d->relative_saturation && !(d->saturation_threshold > 0 && d->saturation_threshold <= 1)))
      __builtin_trap();
    for (size_t a = 0; a < sizeof areas / sizeof *areas; a++) {
      int64_t s = vg_eval_spro_saturation(areas[a], d->saturation_threshold, d->relative_saturation);
      if (s < 0 || s > areas[a]) __builtin_trap();
    }
  }
  vg_loco_config_free(&c);
  if (c.d || c.n) __builtin_trap();
  return 0;
}
