/* images.h — small image folders on disk for tests (distillation, loaders).
 *   vg_test_write_pngs(dir, n): mkdir dir, then n 8-bit RGB PNGs img00.png .. of varied
 *     sizes (40+7i x 36+5i) and contents (gradients + hash noise, deterministic).
 *   vg_test_rm_rf(dir): removes dir and everything under it (no symlinks followed). */
#ifndef VG_TEST_IMAGES_H
#define VG_TEST_IMAGES_H
#include <stdbool.h>
bool vg_test_write_pngs(const char *dir, int n);
void vg_test_rm_rf(const char *dir);
#endif
