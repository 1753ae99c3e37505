/* vigil — the command line as a library function: vg_cli_main (cli/cli.h). The `vigil` program
 * is cli/vigil.c's main() calling it; a researcher's program registers its methods
 * (vg_method_register) and calls it the same way. */
#include <stdio.h>
#include <string.h>
#include "vigil.h"
#include "tensor/parallel.h"
#include "methods/method.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/reproduce.h"

const vg_cmd_spec vg_cmd_info = {
  .name = "info", .opts = (const vg_opt[]){{0}},
  .usage = "usage: vigil info\n  prints the SIMD path in use (and the best this CPU has) and the compute thread count\n"};

static const vg_cmd_spec vg_cmd_options = {
  .name = "options", .opts = (const vg_opt[]){{0}}, .max_pos = 1,
  .usage = "usage: vigil options [COMMAND]\n"
           "  every command's options, one a line: COMMAND, example positionals, NAME, ALIAS, KIND, the accepted\n"
           "  values (for tests and shell completion)\n"};

const vg_cmd_spec *const vg_cmd_specs[] = {&vg_cmd_train, &vg_cmd_test, &vg_cmd_predict, &vg_cmd_metrics, &vg_cmd_convert,
                                           &vg_cmd_info, &vg_cmd_smoke, &vg_cmd_features, &vg_cmd_distill, &vg_cmd_bench,
                                           &vg_cmd_synth, &vg_cmd_reproduce, &vg_cmd_bench_table, NULL};

static int cli_options(int argc, char **argv) {
  const char *pos[1] = {NULL};
  int rc = vg_opts_parse(&vg_cmd_options, argc, argv, NULL, pos, NULL);
  if (rc >= 0) return rc;
  bool found = false;
  for (int i = 0; vg_cmd_specs[i]; i++)
    if (!pos[0] || !strcmp(pos[0], vg_cmd_specs[i]->name)) { vg_opts_dump(vg_cmd_specs[i], stdout); found = true; }
  if (!found) { fprintf(stderr, "vigil options: unknown command '%s'\n", pos[0]); return 2; }
  return 0;
}

const char *vg_version(void) { return VG_VERSION; }

int vg_cli_main(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
    if (argc > 2) { fprintf(stderr, "vigil %s: takes no arguments\n", argv[1]); return 2; }
    printf("vigil %s\n", vg_version());
    return 0;
  }
  if (argc < 2 || vg_arg_is_help(argv[1]) || !strcmp(argv[1], "help")) {
    printf("usage: vigil <command> [options]\n"
           "commands:\n"
           "  train     train a method: vigil train METHOD [--data DIR ...] (see train --help, train METHOD --help)\n"
           "  test      evaluate a run: --run RUNDIR -> metrics.json, scores.json, maps/ (see test --help)\n"
           "  predict   anomaly maps + scores of images: --run RUNDIR | --from-anomalib CKPT --model M, --out DIR IMAGE...\n"
           "  metrics   evaluate map TIFFs: --dataset D --data DIR --maps DIR [--report DIR] (see metrics --help)\n"
           "  convert   convert an image: IN OUT [--gray|--rgb] [--resize WxH] (format by OUT's extension)\n"
           "  info      machine facts: SIMD path, threads\n"
           "  smoke [N] train a small conv net for N steps (the engine end to end)\n"
           "  features  backbone feature maps: --backbone B [--weights F] --layers 1,2,3 --input X --out Y\n"
           "  distill   pretrain an EfficientAD teacher: --images DIR --weights WRN101.pth --out T.safetensors (see distill --help)\n"
           "  bench     latency/throughput by the EfficientAD paper's protocol: bench METHOD [--model s|m] (see bench --help)\n"
           "  bench-table  merge bench JSON of many machines into one table (+ the EfficientAD paper's): FILES|DIRS\n"
           "  synth     synthetic MVTec-layout benchmark: --out DIR [--categories a,b] [--seed N] [--size 256]\n"
           "  reproduce a paper table: TABLE [--data ROOT] [--weights DIR] [--runs N] [--smoke] [--dry-run] | --list\n"
           "  options   every command's options, one a line (for tests and shell completion)\n"
           "  version   the Vigil version (also --version)\n"
           "every command: --help / -h prints its usage (exit 0); a bad flag or value exits 2 with the reason.\n"
           "environment: VIGIL_THREADS=N compute threads (default: the usable cores), VIGIL_ISA=scalar|avx2|avx512,\n"
           "             VIGIL_CACHE=DIR (synthetic benchmark cache); a bad value is warned about and ignored.\n");
    char ml[1024];
    printf("methods (METHOD): %s\n", vg_method_list(ml, sizeof ml, " | ", false));
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "info")) {
    int rc = vg_opts_parse(&vg_cmd_info, argc - 2, argv + 2, NULL, NULL, NULL);
    if (rc >= 0) return rc;
    printf("isa: %s (max %s)\nthreads: %d\n", vg_isa_name(vg_cpu_isa()), vg_isa_name(vg_cpu_isa_max()),
           vg_num_threads());
    const char *archs = vg_cuda_built_archs();   /* "" in a CPU-only build */
    if (archs[0]) {
      const char *last = strrchr(archs, ' ');
      printf("cuda: built for CUDA_ARCH=\"%s\" (machine code for each; PTX compute_%s for newer GPUs)\n", archs,
             last ? last + 1 : archs);
    }
    return 0;
  }
  if (!strcmp(argv[1], "features")) return vg_cli_features(argc - 2, argv + 2);
  if (!strcmp(argv[1], "synth")) return vg_cli_synth(argc - 2, argv + 2);
  if (!strcmp(argv[1], "distill")) return vg_cli_distill(argc - 2, argv + 2);
  if (!strcmp(argv[1], "bench")) return vg_cli_bench(argc - 2, argv + 2);
  if (!strcmp(argv[1], "bench-table")) return vg_cli_bench_table(argc - 2, argv + 2);
  if (!strcmp(argv[1], "train")) return vg_cli_train(argc - 2, argv + 2);
  if (!strcmp(argv[1], "test")) return vg_cli_test(argc - 2, argv + 2);
  if (!strcmp(argv[1], "predict")) return vg_cli_predict(argc - 2, argv + 2);
  if (!strcmp(argv[1], "metrics")) return vg_cli_metrics(argc - 2, argv + 2);
  if (!strcmp(argv[1], "convert")) return vg_cli_convert(argc - 2, argv + 2);
  if (!strcmp(argv[1], "smoke")) return vg_cli_smoke(argc - 2, argv + 2);
  if (!strcmp(argv[1], "reproduce")) return vg_cli_reproduce(argc - 2, argv + 2);
  if (!strcmp(argv[1], "options")) return cli_options(argc - 2, argv + 2);
  fprintf(stderr, "vigil: unknown command '%s' (try 'vigil help')\n", argv[1]);
  return 2;
}
