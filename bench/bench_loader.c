/* bench_loader.c — can decoding keep up with training? Writes 900x900 RGB PNGs made
 * from the real photos in tests/data/photos (bicubic-resized, flipped variants,
 * so compression behaves like MVTec's photographs), then measures:
 *   - single-thread PNG decode (ms/image, MB/s of pixels)
 *   - the threaded loader (decode + Pillow bilinear resize to 256x256 + ImageNet
 *     normalisation, batch 8) in images/s for 1 and 2 workers.
 * Appends one JSON line per figure to bench/results.jsonl. */
#include "datasets/datasets.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static FILE *jsonl;
static void emit(const char *name, int threads, double value, const char *unit) {
  printf("%-28s threads=%d  %10.2f %s\n", name, threads, value, unit);
  if (jsonl)
    fprintf(jsonl, "{\"bench\":\"loader\",\"name\":\"%s\",\"threads\":%d,\"value\":%.4f,\"unit\":\"%s\",\"unix_time\":%lld}\n",
            name, threads, value, unit, (long long)time(NULL));
}

int main(void) {
  static const char *photos[] = {"dog.jpg", "eagle.jpg", "person.jpg"};
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/vigil_bench_loader_XXXXXX");
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
  int n_img = 0;
  size_t bytes = 0;
  for (int p = 0; p < (int)(sizeof photos / sizeof photos[0]); p++) {
    char src[512];
    snprintf(src, sizeof src, "tests/data/photos/%s", photos[p]);
    vg_image im, rgb, big;
    if (vg_image_load(src, &im, NULL) != VG_OK) { fprintf(stderr, "bench_loader: %s (skipped)\n", vg_last_error()); continue; }
    vg_image_to_rgb(&im, &rgb);
    vg_image_resize(&rgb, 900, 900, VG_RESAMPLE_BICUBIC, &big);
    for (int v = 0; v < 4; v++) {
      vg_image var = {0};
      const vg_image *w = &big;
      if (v == 1) { vg_image_flip(&big, 1, &var); w = &var; }
      if (v == 2) { vg_image_flip(&big, 0, &var); w = &var; }
      if (v == 3) { vg_image_rotate(&big, 7.0, &var); w = &var; }
      char out[512];
      snprintf(out, sizeof out, "%s/%03d.png", dir, n_img++);
      if (vg_png_save(out, w) != VG_OK) { fprintf(stderr, "bench_loader: %s\n", vg_last_error()); return 1; }
      struct stat st;
      if (stat(out, &st) == 0) bytes += (size_t)st.st_size;
      vg_image_free(&var);
    }
    vg_image_free(&im); vg_image_free(&rgb); vg_image_free(&big);
  }
  if (n_img == 0) { fprintf(stderr, "bench_loader: no photos found (run from the repo root)\n"); return 1; }
  jsonl = fopen("bench/results.jsonl", "a");
  printf("bench_loader: %d PNGs 900x900 RGB, %.0f KB each on average\n", n_img, bytes / 1024.0 / n_img);

  vg_dataset ds;
  if (vg_ds_image_folder(dir, &ds) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); return 1; }
  double t0 = now_s();
  int reps = 2;
  for (int r = 0; r < reps; r++)
    for (int64_t i = 0; i < ds.n; i++) {
      vg_image im;
      if (vg_image_load(ds.samples[i].image, &im, NULL) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); return 1; }
      vg_image_free(&im);
    }
  double dt = (now_s() - t0) / (reps * ds.n);
  emit("png_decode_900_ms", 1, dt * 1e3, "ms/image");
  emit("png_decode_900_mpix_s", 1, 0.81 / dt, "Mpixel/s");

  for (int workers = 1; workers <= 2; workers++) {
    vg_loader_opts o = {.batch_size = 8, .workers = workers, .prefetch = 3, .channels = 3, .height = 256, .width = 256,
                        .shuffle = true, .seed = 1, .transform = vg_imagenet_transform};
    vg_loader *L;
    if (vg_loader_create(&ds, &o, &L) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); return 1; }
    int64_t count = 0;
    double t = now_s();
    for (int ep = 0; ep < 2; ep++) {
      vg_loader_start_epoch(L, ep);
      vg_batch b;
      while (vg_loader_next(L, &b) == VG_OK && b.n > 0) { count += b.n; vg_batch_free(&b); }
    }
    double el = now_s() - t;
    vg_loader_destroy(L);
    emit("loader_png900_to_256_img_s", workers, count / el, "images/s");
  }
  vg_dataset_free(&ds);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "bench_loader: could not remove %s\n", dir);
  if (jsonl) fclose(jsonl);
  return 0;
}
