/* fuzz_bmp.c — libFuzzer target: BMP and PGM/PPM decode (by the first byte's parity,
 * so one corpus serves both) under small limits. See tests/fuzz/README.md. */
#include "datasets/image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  vg_image_limits lim = {4096, (size_t)16 << 20, 0};
  vg_image im;
  vg_status st = vg_bmp_decode(data, n, &im, &lim);
  if (st != VG_OK && (im.data || !vg_last_error()[0])) __builtin_trap();
  vg_image_free(&im);
  st = vg_pnm_decode(data, n, &im, &lim);
  if (st != VG_OK && (im.data || !vg_last_error()[0])) __builtin_trap();
  vg_image_free(&im);
  return 0;
}
