/* synth.c — `vigil synth`: writes the synthetic MVTec-layout benchmark (datasets/synth.h).
 *
 *   vigil synth --out DIR [--categories woven,assembly] [--seed N] [--size 256]
 *               [--train 60] [--test 40] [--val 10] [--threads N] [--force]
 *
 * Does nothing when DIR already holds a dataset made with the same options. */
#include "cli/cli.h"
#include "datasets/synth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void) {
  fprintf(stderr, "usage: vigil synth --out DIR [--categories a,b,...] [--seed N] [--size 256]\n"
                  "         [--train 60] [--test 40] [--val 10] [--threads N] [--force]\n"
                  "categories: woven grained grid noise (textures), shapes screws (objects),\n"
                  "            assembly (MVTec LOCO layout: logical + structural anomalies)\n");
  return 2;
}

static int parse_int(const char *v, int *out) {
  char *end;
  long x = strtol(v, &end, 10);
  if (!*v || *end || x < 0 || x > 1000000000) return 0;
  *out = (int)x;
  return 1;
}

int vg_cli_synth(int argc, char **argv) {
  vg_synth_opts o = {0};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--force")) { o.force = true; continue; }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
    const char *v = i + 1 < argc ? argv[++i] : NULL;
    int ok = v != NULL;
    if (!ok) return usage();
    if (!strcmp(a, "--out")) o.out = v;
    else if (!strcmp(a, "--categories")) o.categories = v;
    else if (!strcmp(a, "--seed")) { char *e; o.seed = strtoull(v, &e, 10); ok = *v && !*e; }
    else if (!strcmp(a, "--size")) ok = parse_int(v, &o.size) && o.size > 0;
    else if (!strcmp(a, "--train")) ok = parse_int(v, &o.n_train) && o.n_train > 0;
    else if (!strcmp(a, "--test")) ok = parse_int(v, &o.n_test) && o.n_test > 0;
    else if (!strcmp(a, "--val")) ok = parse_int(v, &o.n_val) && o.n_val > 0;
    else if (!strcmp(a, "--threads")) ok = parse_int(v, &o.threads);
    else return usage();
    if (!ok) { fprintf(stderr, "vigil synth: bad value '%s' for %s\n", v, a); return 2; }
  }
  if (!o.out) return usage();
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
