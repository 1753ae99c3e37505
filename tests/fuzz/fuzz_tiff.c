/* fuzz_tiff.c — libFuzzer target: TIFF decode (8/16-bit and float32) under small
 * limits. See tests/fuzz/README.md. */
#include "datasets/image/image.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  vg_image_limits lim = {4096, (size_t)16 << 20, 0};
  vg_image im;
  vg_status st = vg_tiff_decode(data, n, &im, &lim);
  if (st != VG_OK && (im.data || !vg_last_error()[0])) __builtin_trap();
  vg_image_free(&im);
  float *f;
  int w, h;
  if (vg_tiff_decode_f32(data, n, &f, &w, &h, &lim) == VG_OK) free(f);
  return 0;
}
