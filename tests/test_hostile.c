/* test_hostile.c — hostile inputs found by the issue-16 review (each check would have caught
 * its hole):
 *   - method configs whose keys are each inside their range but together ask for a multi-GB
 *     model (fastflow flow_steps 64 x hidden_ratio 16, input_size 4096; cflow condition_vector
 *     4096 x coupling_blocks 64, fiber_batch 2^20; efficientad input_size 4096): refused with
 *     VG_ERR_ARG naming the keys (`--set` exits 2), never an abort on a failed allocation;
 *   - the image-folder walk: a link to /, a link to /proc, a link loop, a FIFO named like an
 *     image, a root that is a file or on /proc: bounded, no hang, clear errors;
 *   - `vigil predict --out` the images' own folder: an output never replaces an input image. */
#include "tests/vgtest.h"
#include "datasets/datasets.h"
#include "datasets/image/image.h"
#include "methods/method.h"
#include "base/json.h"
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[256] = "/tmp/vigil_test_hostile_XXXXXX";
/* a cap on the CLI's address space, so a regression fails instead of eating the machine's
 * memory (not under ASan, whose shadow memory needs a large address space) */
#if defined(__SANITIZE_ADDRESS__)
#define ULIMIT ""
#else
#define ULIMIT "ulimit -v 4000000; "
#endif
static char g_vigil[1100];

/* vg_method_create on cfg_text: the status; *msg = the error text (static). */
static vg_status create(const char *name, const char *cfg_text, const char **msg) {
  vg_json *cfg = NULL;
  *msg = "";
  if (vg_json_parse(cfg_text, strlen(cfg_text), NULL, &cfg) != VG_OK) { *msg = "bad JSON"; return VG_ERR_FORMAT; }
  vg_method *m = NULL;
  vg_status st = vg_method_create(name, cfg, &m);
  if (st != VG_OK) *msg = vg_last_error();
  else vg_method_free(m);
  vg_json_free(cfg);
  return st;
}

static void test_method_memory(void) {
  /* each config needs over 100 GiB (the limit is the machine's memory, or ulimit -v) */
  static const struct { const char *method, *cfg, *key; } bad[] = {
    {"fastflow", "{\"input_size\": 4096, \"flow_steps\": 64, \"hidden_ratio\": 16}", "flow_steps"},
    {"fastflow", "{\"input_size\": 4096, \"flow_steps\": 64}", "input_size"},
    {"fastflow", "{\"backbone\": \"wide_resnet50_2\", \"input_size\": 4096, \"flow_steps\": 64, \"hidden_ratio\": 16}", "hidden_ratio"},
    {"cflow", "{\"condition_vector\": 4096, \"coupling_blocks\": 64}", "condition_vector"},
    {"cflow", "{\"fiber_batch\": 1048576}", "fiber_batch"},
    {"cflow", "{\"backbone\": \"resnet18\", \"input_size\": 4096, \"coupling_blocks\": 64, \"condition_vector\": 4096}", "input_size"},
    {"fastflow", "{\"hidden_ratio\": 1e-300}", "hidden_ratio"},   /* hidden 0: was an abort in nn/module.c */
    {"fastflow", "{\"hidden_ratio\": 0.03}", "hidden_ratio"},
    {"efficientad", "{\"input_size\": 4096, \"out_channels\": 4096}", "input_size"},
    {"efficientad", "{\"model\": \"m\", \"input_size\": 4096, \"out_channels\": 4096}", "out_channels"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *msg;
    clock_t t0 = clock();
    vg_status st = create(bad[i].method, bad[i].cfg, &msg);
    double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    VG_CHECK(st == VG_ERR_ARG && strstr(msg, bad[i].key) && s < 2,
             "%s %s: refused before allocating, naming '%s' (%.2f s): %s", bad[i].method, bad[i].cfg, bad[i].key, s, msg);
  }
  /* the defaults and small configs stay accepted */
  static const struct { const char *method, *cfg; } good[] = {
    {"fastflow", "{}"}, {"fastflow", "{\"input_size\": 512, \"hidden_ratio\": 4}"},
    {"cflow", "{\"backbone\": \"resnet18\", \"input_size\": 512}"},
    {"efficientad", "{}"}, {"efficientad", "{\"model\": \"m\", \"input_size\": 512}"},
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    const char *msg;
    vg_status st = create(good[i].method, good[i].cfg, &msg);
    VG_CHECK(st == VG_OK, "%s %s: accepted (%s)", good[i].method, good[i].cfg, msg);
  }
  if (!g_vigil[0]) return;
  char cmd[2400];
  int rc;
  snprintf(cmd, sizeof cmd, ULIMIT "timeout 60 '%s' bench fastflow --set input_size=4096 --set flow_steps=64 --set hidden_ratio=16 "
           "--runs 1 --warmup 0 --batch 1", g_vigil);
  char *out = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 2 && out && strstr(out, "flow_steps") && !strstr(out, "fatal"),
           "vigil bench fastflow --set input_size=4096 --set flow_steps=64 --set hidden_ratio=16: exit 2 naming the key (rc %d): %.300s", rc,
           out ? out : "");
  free(out);
  snprintf(cmd, sizeof cmd, ULIMIT "timeout 60 '%s' bench cflow --set condition_vector=4096 "
           "--set coupling_blocks=64 --runs 1 --warmup 0 --batch 1", g_vigil);
  out = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 2 && out && strstr(out, "coupling_blocks") && !strstr(out, "fatal"),
           "vigil bench cflow --set condition_vector=4096 --set coupling_blocks=64: exit 2 naming the keys (rc %d): "
           "%.300s", rc, out ? out : "");
  free(out);
}

static int g_warns;
static void count_warn(const char *msg, void *user) { (void)msg; (void)user; g_warns++; }

static bool write_png(const char *path, int side) {
  vg_image im = {0};
  im.w = im.h = side; im.c = 1; im.depth = 8;
  im.data = calloc((size_t)side * side, 1);
  bool ok = im.data && vg_png_save(path, &im) == VG_OK;
  vg_image_free(&im);
  return ok;
}

static void test_folder_walk(void) {
  char root[512], p[1024], q[1024];
  snprintf(root, sizeof root, "%s/walk", g_tmp);
  snprintf(p, sizeof p, "%s/cls/sub", root);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
  VG_CHECK(system(cmd) == 0, "walk: folders made");
  snprintf(p, sizeof p, "%s/cls/a.png", root);
  VG_CHECK(write_png(p, 8), "walk: one image");
  snprintf(p, sizeof p, "%s/cls/to_root", root);
  VG_CHECK(symlink("/", p) == 0, "walk: link to /");
  snprintf(p, sizeof p, "%s/proc", root);
  VG_CHECK(symlink("/proc", p) == 0, "walk: link to /proc");
  snprintf(p, sizeof p, "%s/cls/sub/self", root);
  VG_CHECK(symlink("/proc/self", p) == 0, "walk: link to /proc/self");
  snprintf(p, sizeof p, "%s/cls/sub/up", root);
  VG_CHECK(symlink("../..", p) == 0, "walk: link loop");
  snprintf(p, sizeof p, "%s/cls/fifo.png", root);
  VG_CHECK(mkfifo(p, 0644) == 0, "walk: FIFO named like an image");
  vg_image_set_warning_handler(count_warn, NULL);
  g_warns = 0;
  vg_dataset ds;
  time_t t0 = time(NULL);
  vg_status st = vg_ds_image_folder(root, &ds);
  double s = difftime(time(NULL), t0);
  VG_CHECK(st == VG_OK && ds.n == 1 && strstr(ds.samples[0].image, "cls/a.png") && s < 10,
           "walk: links to /, /proc, /proc/self and a loop skipped, the FIFO not opened: %lld image(s), %.0f s (%s)",
           st == VG_OK ? (long long)ds.n : -1LL, s, st == VG_OK ? "ok" : vg_last_error());
  VG_CHECK(g_warns >= 3, "walk: each skipped link warned about (%d warnings)", g_warns);
  if (st == VG_OK) vg_dataset_free(&ds);
  vg_image_set_warning_handler(NULL, NULL);
  /* a root that is a file, a FIFO, /proc */
  snprintf(q, sizeof q, "%s/cls/a.png", root);
  st = vg_ds_image_folder(q, &ds);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "not a folder"), "walk: a file as the root: %s", vg_last_error());
  snprintf(q, sizeof q, "%s/cls/fifo.png", root);
  st = vg_ds_image_folder(q, &ds);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "FIFO"), "walk: a FIFO as the root: %s", vg_last_error());
  st = vg_ds_image_folder("/proc", &ds);
  VG_CHECK(st != VG_OK && strstr(vg_last_error(), "pseudo"), "walk: /proc as the root: %s", vg_last_error());
}

static bool same_file_bytes(const char *a, const char *b) {
  uint8_t *x = NULL, *y = NULL;
  size_t nx = 0, ny = 0;
  bool ok = vg_image_read_file(a, &x, &nx, 1 << 24) == VG_OK && vg_image_read_file(b, &y, &ny, 1 << 24) == VG_OK &&
            nx == ny && !memcmp(x, y, nx);
  free(x);
  free(y);
  return ok;
}

static void test_predict_keeps_inputs(void) {
  if (!g_vigil[0]) return;
  char cmd[4096], d[600];
  int rc;
  snprintf(d, sizeof d, "%s/pd", g_tmp);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s/ds/normal' '%s/ds/abnormal' '%s/q' '%s/keep'", d, d, d, d);
  VG_CHECK(system(cmd) == 0, "predict: folders made");
  char p[900];
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/ds/normal/n%d.png", d, i);
    write_png(p, 16);
    snprintf(p, sizeof p, "%s/ds/abnormal/a%d.png", d, i);
    write_png(p, 16);
  }
  snprintf(cmd, sizeof cmd, "timeout 120 '%s' train meanimage --dataset folder --data '%s/ds' --set input_size=16 "
           "--steps 1 --no-test --out '%s/run'", g_vigil, d, d);
  char *out = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 0, "predict: a meanimage run to predict with (rc %d): %.300s", rc, out ? out : "");
  free(out);
  if (rc != 0) return;
  /* q/x.png, q/x_overlay.png (named like x's overlay) and q/z.tiff (named like its own map),
   * with --out q: no output may land on an input */
  static const char *names[] = {"x.png", "x_overlay.png", "z.tiff"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/q/%s", d, names[i]);
    write_png(p, 8 + 4 * i);   /* z.tiff: PNG bytes under a .tiff name (decoded by magic) */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/keep/%s'", p, d, names[i]);
    VG_CHECK(system(cmd) == 0, "predict: copy of %s kept", names[i]);
  }
  snprintf(cmd, sizeof cmd, "cd '%s' && timeout 120 '%s' predict --run run --out q q/x.png q/x_overlay.png q/z.tiff", d,
           g_vigil);
  out = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 0, "predict --out the images' folder: runs (rc %d): %.400s", rc, out ? out : "");
  for (int i = 0; i < 3; i++) {
    char a[1000], b[1000];
    snprintf(a, sizeof a, "%s/q/%s", d, names[i]);
    snprintf(b, sizeof b, "%s/keep/%s", d, names[i]);
    VG_CHECK(same_file_bytes(a, b), "predict: input %s is not overwritten by an output", names[i]);
  }
  VG_CHECK(out && strstr(out, "\"map\":\"q/x_2.tiff\"") && strstr(out, "\"map\":\"q/z_2.tiff\""),
           "predict: outputs that would hit an input move to _2: %.400s", out ? out : "");
  free(out);
}

/* A small file that decodes to a large constant image (a PNG bomb; a JPEG with huge sides and
 * a few bytes of data decodes the same way): `vigil convert` to PNG stays fast — the encoder
 * no longer tries 5 filters on each of the thousands of identical rows — and the result is the
 * same image. */
static void test_convert_bomb(void) {
  if (!g_vigil[0]) return;
  const int side = 8192;
  vg_image im = {0};
  im.w = im.h = side; im.c = 1; im.depth = 8;
  im.data = malloc((size_t)side * side);
  if (!im.data) return;
  memset(im.data, 0x80, (size_t)side * side);
  ((uint8_t *)im.data)[0] = 7;   /* one different row, then identical ones */
  char in[400], out[400], cmd[2400];
  snprintf(in, sizeof in, "%s/bomb.png", g_tmp);
  snprintf(out, sizeof out, "%s/bomb_out.png", g_tmp);
  VG_CHECK(vg_png_save(in, &im) == VG_OK, "bomb: %dx%d constant PNG written", side, side);
  struct stat sb;
  memset(&sb, 0, sizeof sb);
  int sr = stat(in, &sb);
  VG_CHECK(sr == 0 && sb.st_size < (1 << 20), "bomb: the file is small (%lld bytes)", (long long)sb.st_size);
  snprintf(cmd, sizeof cmd, "timeout 60 '%s' convert '%s' '%s'", g_vigil, in, out);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc;
  char *o = vg_test_run(cmd, &rc);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  VG_CHECK(rc == 0 && s < 20, "bomb: vigil convert to PNG in %.1f s (rc %d): %.200s", s, rc, o ? o : "");
  free(o);
  vg_image back = {0};
  VG_CHECK(vg_image_load(out, &back, NULL) == VG_OK && back.w == side && back.h == side && back.c == 1 &&
               !memcmp(back.data, im.data, (size_t)side * side),
           "bomb: the converted PNG holds the same pixels");
  vg_image_free(&back);
  vg_image_free(&im);
}

/* `vigil convert --resize WxH`: an output past the decoders' own limits (16384 a side, 256 MiB)
 * was accepted (16384x16384 RGB: 1.7 GB and 29 s); now exit 2 before any resize. */
static void test_convert_resize_limit(void) {
  if (!g_vigil[0]) return;
  vg_image im = {0};
  im.w = im.h = 8; im.c = 3; im.depth = 8;
  im.data = calloc(8 * 8 * 3, 1);
  char in[400], out[400], cmd[2400];
  snprintf(in, sizeof in, "%s/rgb8.png", g_tmp);
  snprintf(out, sizeof out, "%s/rgb8_out.png", g_tmp);
  VG_CHECK(im.data && vg_png_save(in, &im) == VG_OK, "resize: an 8x8 RGB input");
  vg_image_free(&im);
  static const char *bad[] = {"16384x16384", "65535x4096", "16385x1", "9460x9460", "1x99999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(cmd, sizeof cmd, "timeout 20 '%s' convert '%s' '%s' --resize %s", g_vigil, in, out, bad[i]);
    int rc;
    char *o = vg_test_run(cmd, &rc);
    VG_CHECK(rc == 2 && o && strstr(o, "--resize"), "convert --resize %s: exit 2 naming --resize (rc %d): %.200s", bad[i],
             rc, o ? o : "");
    free(o);
  }
  snprintf(cmd, sizeof cmd, "timeout 20 '%s' convert '%s' '%s' --resize 64x48", g_vigil, in, out);
  int rc;
  char *o = vg_test_run(cmd, &rc);
  VG_CHECK(rc == 0 && o && strstr(o, "64x48"), "convert --resize 64x48: still fine (rc %d)", rc);
  free(o);
}

/* --help / -h after other arguments still prints the usage and exits 0 (`vigil smoke 5 --help`
 * was an exit 2). */
static void test_help_after_args(void) {
  if (!g_vigil[0]) return;
  static const char *cmds[] = {"train fastflow --steps 5", "test --run /nonexistent", "predict --run /nonexistent a.png",
                               "metrics --dataset mvtec", "convert a.png b.png", "smoke 5", "features --backbone resnet18",
                               "distill --images /nonexistent", "bench fastflow --runs 3", "synth --seed 3"};
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
    for (int h = 0; h < 2; h++) {
      char cmd[1400];
      int rc;
      snprintf(cmd, sizeof cmd, "timeout 20 '%s' %s %s", g_vigil, cmds[i], h ? "-h" : "--help");
      char *out = vg_test_run(cmd, &rc);
      VG_CHECK(rc == 0 && out && strstr(out, "usage"), "vigil %s %s: usage, exit 0 (rc %d)", cmds[i], h ? "-h" : "--help", rc);
      free(out);
    }
}

int main(int argc, char **argv) {
  (void)argc;
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  if (!g_vigil[0]) printf("SKIP vigil CLI checks (no vigil binary next to the test)\n");
  test_method_memory();
  test_folder_walk();
  test_predict_keeps_inputs();
  test_help_after_args();
  test_convert_bomb();
  test_convert_resize_limit();
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
  return vg_test_finish();
}
