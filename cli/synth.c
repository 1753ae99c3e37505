/* synth.c — `vigil synth`: writes the synthetic MVTec-layout benchmark (datasets/synth.h).
 *
 *   vigil synth --out DIR [--categories woven,assembly] [--seed N] [--size 256]
 *               [--train 60] [--test 40] [--val 10] [--threads N] [--force]
 *
 * Does nothing when DIR already holds a dataset made with the same options. */
#include "cli/args.h"
#include "cli/opts.h"
#include "cli/cli.h"
#include "datasets/synth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* `vigil synth`'s options: vg_synth_opts itself (the table drives the parser and --help: cli/opts.h) */
#define T vg_synth_opts
static const vg_opt synth_table[] = {
  {.name = "--out", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, out), .help = "where to write it (required)"},
  {.name = "--categories", .kind = VG_OPT_STR, .arg = "a,b,...", .off = VG_OPT_AT(T, categories),
   .help = "which categories (default: all)"},
  VG_OPT_SEED(T, seed, UINT64_MAX, "generator seed (default 0)"),
  {.name = "--size", .kind = VG_OPT_INT, .arg = "N", .lo = VG_SYNTH_MIN_SIZE, .hi = VG_SYNTH_MAX_SIZE, .off = VG_OPT_AT(T, size),
   .help = "image side", .def = "256"},
  {.name = "--train", .kind = VG_OPT_INT, .arg = "N", .lo = 1, .hi = 100000, .off = VG_OPT_AT(T, n_train),
   .help = "train images per category", .def = "60"},
  {.name = "--test", .kind = VG_OPT_INT, .arg = "N", .lo = 2, .hi = 100000, .off = VG_OPT_AT(T, n_test),
   .help = "test images per category", .def = "40"},
  {.name = "--val", .kind = VG_OPT_INT, .arg = "N", .lo = 1, .hi = 100000, .off = VG_OPT_AT(T, n_val),
   .help = "validation images per category", .def = "10"},
  VG_OPT_THREADS(T, threads, "generator threads (default 0: the online cores, at most 8)"),
  {.name = "--force", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, force),
   .help = "regenerate even when DIR holds a dataset made with the same options"},
  {0}};
#undef T

const vg_cmd_spec vg_cmd_synth = {
  .name = "synth", .opts = synth_table,
  .usage = "usage: vigil synth --out DIR [--categories a,b,...] [--seed N] [--size 256]\n"
           "         [--train 60] [--test 40] [--val 10] [--threads N] [--force]\n"
           "categories: woven grained grid noise (textures), shapes screws (objects),\n"
           "            assembly (MVTec LOCO layout: logical + structural anomalies)\n"};

static int usage(FILE *f) { return vg_opts_usage(&vg_cmd_synth, f); }

int vg_cli_synth(int argc, char **argv) {
  vg_synth_opts o = {0};
  int prc = vg_opts_parse(&vg_cmd_synth, argc, argv, &o, NULL, NULL);
  if (prc >= 0) return prc;
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
