/* fuzz_inflate.c — libFuzzer target: zlib inflate into a fixed 64 KiB cap, and a
 * deflate -> inflate round trip of the input. See tests/fuzz/README.md. */
#include "datasets/image/image.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static uint8_t out[1 << 16];
  size_t got = 0, used = 0;
  /* First byte picks the expected size, so exact-size checks are exercised too. */
  size_t want = n ? ((size_t)data[0] << 8) % sizeof out : 0;
  vg_zlib_inflate(data, n, out, want);
  vg_inflate_raw(data, n, &used, out, sizeof out, &got);
  if (got > sizeof out || used > n) __builtin_trap();
  uint8_t *z;
  size_t zn;
  if (vg_zlib_deflate(data, n, &z, &zn) == VG_OK) {
    uint8_t *back = malloc(n ? n : 1);
    if (vg_zlib_inflate(z, zn, back, n) != VG_OK || (n && memcmp(back, data, n) != 0)) __builtin_trap();
    free(back);
    free(z);
  }
  return 0;
}
