/* main.c — a program of your own with the whole `vigil` command line for your method:
 *   ./featdist train featdist --steps 0 --out runs/fd     (statistics pass, then test)
 *   ./featdist test --run runs/fd ; ./featdist predict --run runs/fd --out maps img.png
 *   ./featdist bench featdist ; ./featdist train featdist --help ; ./featdist help
 * The built-in methods (fastflow, cflow, ...) stay available next to it. */
#include <stdio.h>
#include <vigil.h>
#include "featdist.h"

int main(int argc, char **argv) {
  if (vg_method_register(&featdist_method) != VG_OK) {   /* a duplicate or incomplete descriptor */
    fprintf(stderr, "%s\n", vg_last_error());
    return 2;
  }
  return vg_cli_main(argc, argv);
}
