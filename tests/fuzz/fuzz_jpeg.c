/* fuzz_jpeg.c — libFuzzer target: JPEG decode under small limits, with both upsampling
 * modes; a failed decode must leave a message and no buffer, a decoded image must have
 * the frame's size and c = 1 or 3. See tests/fuzz/README.md. */
#include "datasets/image/jpeg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  vg_image_limits lim = {4096, (size_t)16 << 20, (size_t)1 << 20};
  vg_jpeg_options o = vg_jpeg_options_default();
  for (int fancy = 1; fancy >= 0; fancy--) {
    vg_image im;
    o.fancy_upsampling = fancy;
    if (vg_jpeg_decode_ex(data, n, &im, &lim, &o) != VG_OK) {
      if (im.data || !vg_last_error()[0]) __builtin_trap();
      return 0;
    }
    if (im.w < 1 || im.h < 1 || im.w > 4096 || im.h > 4096 || (im.c != 1 && im.c != 3) || im.depth != 8)
      __builtin_trap();
    vg_image_free(&im);
  }
  return 0;
}
