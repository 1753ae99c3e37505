/* vigil.c — the `vigil` program: the whole command line is vg_cli_main in libvigil (cli/main.c),
 * so a researcher's program that registers its own methods gets the same commands. */
#include "cli/cli.h"

int main(int argc, char **argv) { return vg_cli_main(argc, argv); }
