/* images.c — see images.h */
#define _XOPEN_SOURCE 700
#include "tests/common/images.h"
#include "datasets/datasets.h"
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

bool vg_test_write_pngs(const char *dir, int n) {
  mkdir(dir, 0755);
  uint64_t h = 0x1234567;
  for (int i = 0; i < n; i++) {
    vg_image im = {.w = 40 + 7 * i, .h = 36 + 5 * i, .c = 3, .depth = 8};
    uint8_t *d = malloc((size_t)im.w * im.h * 3);
    if (!d) return false;
    for (int y = 0; y < im.h; y++)
      for (int x = 0; x < im.w; x++)
        for (int c = 0; c < 3; c++) {
          h = h * 6364136223846793005ull + 1442695040888963407ull;
          int v = (c == 0 ? x * 255 / im.w : c == 1 ? y * 255 / im.h : 128) + (int)((h >> 40) % 61) - 30;
          d[((size_t)y * im.w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    im.data = d;
    char p[4096];
    snprintf(p, sizeof p, "%s/img%02d.png", dir, i);
    vg_status st = vg_png_save(p, &im);
    free(d);
    if (st != VG_OK) return false;
  }
  return true;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)flag; (void)ftw;
  remove(p);
  return 0;
}

void vg_test_rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }
