/* test_bench_train.c — `vigil bench METHOD --train` (issue #20's training-step timing, used by
 * bench/cpu.sh) run as a subprocess (<BUILD>/vigil next to <BUILD>/tests/), on tiny configs:
 *   - a training line per batch size: "mode":"train", the batch asked for (default: the
 *     method's training batch), warmup + runs train_step calls (train_steps), a finite last
 *     loss, positive timings and FLOPs per image, the stable keys of an inference line;
 *   - inference lines say "mode":"infer" and are otherwise what they were;
 *   - refusals: --train with --paper or --graph; f16 training; a bad method config;
 *   - `vigil bench-table` leaves training lines out of its inference tables.
 * Every method with a train_step over 3-channel images is stepped once (EfficientAD with its
 * penalty folder, CFLOW, FastFlow, STFPM), so a method whose train_step cannot run from
 * `vigil bench` fails here. */
#include "tests/vgtest.h"
#include "base/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_tmp[256] = "/tmp/vigil_test_bench_train_XXXXXX";
static char g_vigil[1100];

/* runs `vigil ARGS` (stdout kept, stderr to a file, both malloc'd); the exit status */
static int run(const char *args, char **out, char **err) {
  char ef[400], full[8192];
  snprintf(ef, sizeof ef, "%s/stderr.txt", g_tmp);
  snprintf(full, sizeof full, "timeout 300 '%s' %s 2>'%s'", g_vigil, args, ef);
  int rc = -1;
  FILE *p = popen(full, "r");
  size_t cap = 1 << 16, n = 0, k;
  char *s = calloc(1, cap);
  if (p) {
    while ((k = fread(s + n, 1, cap - n - 1, p)) > 0) {
      n += k;
      if (cap - n < 4096) { cap *= 2; s = realloc(s, cap); }
    }
    s[n] = 0;
    int st = pclose(p);
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  *out = s;
  *err = calloc(1, 1 << 16);
  FILE *f = fopen(ef, "rb");
  if (f) {
    size_t m = fread(*err, 1, (1 << 16) - 1, f);
    (*err)[m] = 0;
    fclose(f);
    for (char *q = *err; *q; q++)
      if (*q == '\n' && q[1]) *q = ' ';
  }
  return rc;
}

/* the JSON lines of out, in order (up to cap) */
static int lines(const char *out, vg_json **js, int cap) {
  int n = 0;
  for (const char *l = out; l && *l && n < cap; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    const char *e = strchr(l, '\n');
    size_t len = e ? (size_t)(e - l) : strlen(l);
    if (len && l[0] == '{' && vg_json_parse(l, len, NULL, &js[n]) == VG_OK) n++;
  }
  return n;
}

static double num(const vg_json *j, const char *key) {
  double v = NAN;
  if (!vg_json_as_double(vg_json_get(j, key), &v)) return NAN;
  return v;
}
static const char *str(const vg_json *j, const char *key) {
  const char *s = vg_json_as_string(vg_json_get(j, key));
  return s ? s : "";
}

/* one training line: mode, batch, steps = warmup + runs, finite loss, timings, the stable keys */
static void check_train_line(const vg_json *j, const char *what, const char *method, int batch, int warmup, int runs) {
  VG_CHECK(!strcmp(str(j, "mode"), "train"), "%s: \"mode\" is \"train\" (got \"%s\")", what, str(j, "mode"));
  VG_CHECK(!strcmp(str(j, "method"), method), "%s: method %s", what, str(j, "method"));
  VG_CHECK(num(j, "batch") == batch, "%s: batch %g (want %d)", what, num(j, "batch"), batch);
  VG_CHECK(num(j, "warmup") == warmup && num(j, "runs") == runs, "%s: warmup %g runs %g", what, num(j, "warmup"),
           num(j, "runs"));
  VG_CHECK(num(j, "train_steps") == warmup + runs, "%s: %g train_step calls (want %d)", what, num(j, "train_steps"),
           warmup + runs);
  double loss = num(j, "last_loss");
  VG_CHECK(isfinite(loss), "%s: last_loss %g is finite", what, loss);
  double mean = num(j, "mean_ms"), med = num(j, "median_ms"), mn = num(j, "min_ms"), ips = num(j, "images_s");
  VG_CHECK(mean > 0 && med > 0 && mn > 0 && mn <= med && mn <= mean, "%s: mean %g median %g min %g ms", what, mean, med,
           mn);
  VG_CHECK(ips > 0 && fabs(ips - batch / (mean * 1e-3)) <= 1e-6 * ips, "%s: images/s %g = batch / mean", what, ips);
  VG_CHECK(num(j, "gflops_per_image") > 0, "%s: FLOPs of a training step counted (%g GFLOPs/image)", what,
           num(j, "gflops_per_image"));
  VG_CHECK(num(j, "peak_rss_mb") > 0 && num(j, "params") > 0 && num(j, "trainable_params") > 0,
           "%s: peak_rss_mb, params, trainable_params", what);
  VG_CHECK(!strcmp(str(j, "bench"), "vigil_bench") && !strcmp(str(j, "protocol"), "short") &&
           !strcmp(str(j, "device"), "cpu") && !strcmp(str(j, "dtype"), "f32") && num(j, "input") > 0,
           "%s: the inference line's keys (bench, protocol, device, dtype, input)", what);
}

static const char *FF = "fastflow --backbone resnet18 --input-size 32 --set flow_steps=2 --set hidden_ratio=0.25 "
                        "--threads 1";

static void test_fastflow(void) {
  char *out, *err;
  vg_json *js[8] = {0};
  /* two batch sizes in one invocation: one line each, steps counted per batch size */
  char a[2048];
  snprintf(a, sizeof a, "bench %s --train --batch 2 --batch 3 --warmup 1 --runs 2", FF);
  int rc = run(a, &out, &err);
  int n = lines(out, js, 8);
  if (VG_CHECK(rc == 0 && n == 2, "fastflow --train --batch 2 --batch 3: exit %d, %d JSON lines (%s)", rc, n, err)) {
    check_train_line(js[0], "fastflow b2", "fastflow", 2, 1, 2);
    check_train_line(js[1], "fastflow b3", "fastflow", 3, 1, 2);
    VG_CHECK(!strcmp(str(js[0], "backbone"), "resnet18"), "fastflow: the variant key (backbone) is kept");
  }
  for (int i = 0; i < n; i++) vg_json_free(js[i]);
  free(out);
  free(err);
  /* no --batch: the method's training batch (batch_size) */
  snprintf(a, sizeof a, "bench %s --set batch_size=3 --train --warmup 0 --runs 1", FF);
  rc = run(a, &out, &err);
  n = lines(out, js, 8);
  if (VG_CHECK(rc == 0 && n == 1, "fastflow --train without --batch: exit %d, %d lines (%s)", rc, n, err))
    check_train_line(js[0], "fastflow default batch", "fastflow", 3, 0, 1);
  for (int i = 0; i < n; i++) vg_json_free(js[i]);
  free(out);
  free(err);
  /* inference lines: "mode":"infer", batch 1 and 16 by default, no training keys */
  snprintf(a, sizeof a, "bench %s --warmup 0 --runs 1", FF);
  rc = run(a, &out, &err);
  n = lines(out, js, 8);
  if (VG_CHECK(rc == 0 && n == 2, "fastflow inference: exit %d, %d lines (%s)", rc, n, err)) {
    for (int i = 0; i < 2; i++) {
      VG_CHECK(!strcmp(str(js[i], "mode"), "infer"), "inference line %d: \"mode\" is \"infer\"", i);
      VG_CHECK(num(js[i], "batch") == (i ? 16 : 1), "inference line %d: default batch %g", i, num(js[i], "batch"));
      VG_CHECK(!vg_json_get(js[i], "train_steps") && !vg_json_get(js[i], "last_loss"),
               "inference line %d: no training keys", i);
      VG_CHECK(num(js[i], "gflops_per_image") > 0 && num(js[i], "mean_ms") > 0, "inference line %d: FLOPs and time", i);
    }
  }
  for (int i = 0; i < n; i++) vg_json_free(js[i]);
  free(out);
  free(err);
}

/* each method that trains on 3-channel images, one step from `vigil bench` */
static void test_methods(void) {
  char pen[512], a[4096];
  snprintf(pen, sizeof pen, "%s/pen", g_tmp);
  char *out, *err;
  snprintf(a, sizeof a, "synth --out '%s' --categories woven --size 64 --train 2 --test 2 --val 2 --threads 1", pen);
  int rc = run(a, &out, &err);
  VG_CHECK(rc == 0, "synth penalty images: exit %d (%s)", rc, err);
  free(out);
  free(err);
  struct { const char *method, *args; int batch, warmup; } C[] = {
    /* EfficientAD's smallest input is 256: one step, with the penalty images bench/cpu.sh gives it */
    {"efficientad", "efficientad --model s --set penalty_dir=%s/woven/train", 1, 0},
    {"cflow", "cflow --backbone resnet18 --input-size 64 --set 'layers=[\"layer1\"]' --set condition_vector=4 "
              "--set coupling_blocks=1 --set permute_soft=false --set fiber_batch=64", 2, 1},
    {"stfpm", "stfpm --backbone resnet18 --input-size 64", 2, 1},
  };
  for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
    char args[1024];
    snprintf(args, sizeof args, C[i].args, pen);
    snprintf(a, sizeof a, "bench %s --train --batch %d --warmup %d --runs 1 --threads 2", args, C[i].batch,
             C[i].warmup);
    rc = run(a, &out, &err);
    vg_json *js[4] = {0};
    int n = lines(out, js, 4);
    if (VG_CHECK(rc == 0 && n == 1, "%s --train (%s): exit %d, %d lines (%s)", C[i].method, args, rc, n, err))
      check_train_line(js[0], args, C[i].method, C[i].batch, C[i].warmup, 1);
    for (int k = 0; k < n; k++) vg_json_free(js[k]);
    free(out);
    free(err);
  }
}

static void test_refusals(void) {
  struct { const char *args, *want; } R[] = {
    {"--train --paper", "--paper"},
    {"--train --graph", "--graph"},
    {"--train --dtype f16", "f16"},
    {"--train --set flow_steps=0", "flow_steps"},
  };
  for (size_t i = 0; i < sizeof R / sizeof R[0]; i++) {
    char a[2048], *out, *err;
    snprintf(a, sizeof a, "bench %s %s --warmup 0 --runs 1", FF, R[i].args);
    int rc = run(a, &out, &err);
    VG_CHECK(rc != 0 && strstr(err, R[i].want) && !strchr(out, '{'),
             "bench fastflow %s: refused (exit %d) naming %s, no JSON line: %s", R[i].args, rc, R[i].want, err);
    free(out);
    free(err);
  }
}

/* `vigil bench-table` merges inference lines only: a training line of the same method and batch
 * is neither a record nor a column */
static void test_bench_table(void) {
  char f[400], g[400], a[4096], *out, *err;
  snprintf(f, sizeof f, "%s/mixed.jsonl", g_tmp);
  snprintf(g, sizeof g, "%s/train.jsonl", g_tmp);
  snprintf(a, sizeof a, "bench %s --batch 1 --warmup 0 --runs 1 --json '%s'", FF, f);
  int rc1 = run(a, &out, &err);
  free(out);
  free(err);
  snprintf(a, sizeof a, "bench %s --train --batch 1 --warmup 0 --runs 1 --json '%s'", FF, f);
  int rc2 = run(a, &out, &err);
  free(out);
  free(err);
  snprintf(a, sizeof a, "bench %s --train --batch 1 --warmup 0 --runs 1 --json '%s'", FF, g);
  int rc3 = run(a, &out, &err);
  free(out);
  free(err);
  if (!VG_CHECK(rc1 == 0 && rc2 == 0 && rc3 == 0, "bench lines for bench-table (exit %d %d %d)", rc1, rc2, rc3)) return;
  snprintf(a, sizeof a, "bench-table --no-paper --out '%s/t1' '%s'", g_tmp, f);
  int rc = run(a, &out, &err);
  VG_CHECK(rc == 0 && strstr(out, "\n1 records, 1 device column"),
           "bench-table over an inference and a training line: 1 record, 1 column (exit %d): %.300s", rc, out);
  free(out);
  free(err);
  snprintf(a, sizeof a, "bench-table --no-paper --out '%s/t2' '%s'", g_tmp, g);
  rc = run(a, &out, &err);
  VG_CHECK(rc != 0 && strstr(err, "no benchmark records"), "bench-table over training lines only: no records (exit %d): %s",
           rc, err);
  free(out);
  free(err);
}

int main(int argc, char **argv) {
  (void)argc;
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  if (!g_vigil[0]) printf("SKIP vigil bench --train checks (no vigil binary next to the test)\n");
  else {
    test_fastflow();
    test_methods();
    test_refusals();
    test_bench_table();
  }
  vg_test_tmp_done(g_tmp);
  return vg_test_finish();
}
