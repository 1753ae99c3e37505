/* synth.c — `vigil synth`: writes the synthetic MVTec-layout benchmark (datasets/synth.h).
 *
 *   vigil synth --out DIR [--categories woven,assembly] [--seed N] [--size 256]
 *               [--train 60] [--test 40] [--val 10] [--threads N] [--force]
 *
 * Does nothing when DIR already holds a dataset made with the same options. */
#include "cli/args.h"
#include "cli/cli.h"
#include "datasets/synth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(FILE *f) {
  fprintf(f, "usage: vigil synth --out DIR [--categories a,b,...] [--seed N] [--size 256]\n"
                  "         [--train 60] [--test 40] [--val 10] [--threads N] [--force]\n"
                  "categories: woven grained grid noise (textures), shapes screws (objects),\n"
                  "            assembly (MVTec LOCO layout: logical + structural anomalies)\n");
  return f == stdout ? 0 : 2;
}

int vg_cli_synth(int argc, char **argv) {
  vg_synth_opts o = {0};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--force")) { o.force = true; continue; }
    if (vg_arg_is_help(a)) return usage(stdout);
    if (strcmp(a, "--out") && strcmp(a, "--categories") && strcmp(a, "--seed") && strcmp(a, "--size") &&
        strcmp(a, "--train") && strcmp(a, "--test") && strcmp(a, "--val") && strcmp(a, "--threads")) {
      fprintf(stderr, "vigil synth: unknown option %s\n", a);
      return usage(stderr);
    }
    const char *v = i + 1 < argc ? argv[++i] : NULL;
    if (!v) { fprintf(stderr, "vigil synth: %s needs a value\n", a); return usage(stderr); }
    bool ok = true;
    if (!strcmp(a, "--out")) o.out = v;
    else if (!strcmp(a, "--categories")) o.categories = v;
    else if (!strcmp(a, "--seed")) ok = vg_arg_u64("synth", a, v, UINT64_MAX, &o.seed);
    else if (!strcmp(a, "--size")) ok = vg_arg_int("synth", a, v, VG_SYNTH_MIN_SIZE, VG_SYNTH_MAX_SIZE, &o.size);
    else if (!strcmp(a, "--train")) ok = vg_arg_int("synth", a, v, 1, 100000, &o.n_train);
    else if (!strcmp(a, "--test")) ok = vg_arg_int("synth", a, v, 2, 100000, &o.n_test);
    else if (!strcmp(a, "--val")) ok = vg_arg_int("synth", a, v, 1, 100000, &o.n_val);
    else if (!strcmp(a, "--threads")) ok = vg_arg_threads("synth", v, &o.threads);
    if (!ok) return 2;
  }
  if (!o.out) { fprintf(stderr, "vigil synth: --out is required\n"); return usage(stderr); }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  bool made = false;
  if (vg_synth_generate(&o, &made) != VG_OK) {
    fprintf(stderr, "vigil synth: %s\n", vg_last_error());
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  if (made) printf("synth: wrote %s in %.2f s\n", o.out, s);
  else printf("synth: %s is up to date (same options; --force regenerates)\n", o.out);
  return 0;
}
