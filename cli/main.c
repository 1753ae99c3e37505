/* vigil — command-line entry point. Subcommands are added as modules land. */
#include <stdio.h>
#include <string.h>
#include "tensor/parallel.h"
#include "cli/cli.h"

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    printf("usage: vigil <command> [options]\n"
           "commands:\n"
           "  train     train a method: vigil train fastflow|cflow|efficientad|meanimage [--data DIR ...] (see train --help)\n"
           "  test      evaluate a run: --run RUNDIR -> metrics.json, scores.json, maps/ (see test --help)\n"
           "  predict   anomaly maps + scores of images: --run RUNDIR | --from-anomalib CKPT --model M, --out DIR IMAGE...\n"
           "  metrics   evaluate map TIFFs: --dataset D --data DIR --maps DIR [--report DIR] (see metrics --help)\n"
           "  convert   convert an image: IN OUT [--gray|--rgb] [--resize WxH] (format by OUT's extension)\n"
           "  info      machine facts: SIMD path, threads\n"
           "  smoke [N] train a small conv net for N steps (the engine end to end)\n"
           "  features  backbone feature maps: --backbone B [--weights F] --layers 1,2,3 --input X --out Y\n"
           "  distill   pretrain an EfficientAD teacher: --images DIR --weights WRN101.pth --out T.safetensors (see distill --help)\n"
           "  bench     latency/throughput by the EfficientAD paper's protocol: bench METHOD [--model s|m] (see bench --help)\n"
           "  synth     synthetic MVTec-layout benchmark: --out DIR [--categories a,b] [--seed N] [--size 256]\n"
           "every command: --help / -h prints its usage (exit 0); a bad flag or value exits 2 with the reason.\n"
           "environment: VIGIL_THREADS=N compute threads (default: the usable cores), VIGIL_ISA=scalar|avx2|avx512,\n"
           "             VIGIL_CACHE=DIR (synthetic benchmark cache); a bad value is warned about and ignored.\n");
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "info")) {
    if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
      printf("usage: vigil info\n  prints the SIMD path in use (and the best this CPU has) and the compute thread count\n");
      return 0;
    }
    if (argc > 2) { fprintf(stderr, "vigil info: unknown option %s\n", argv[2]); return 2; }
    printf("isa: %s (max %s)\nthreads: %d\n", vg_isa_name(vg_cpu_isa()), vg_isa_name(vg_cpu_isa_max()),
           vg_num_threads());
    return 0;
  }
  if (!strcmp(argv[1], "features")) return vg_cli_features(argc - 2, argv + 2);
  if (!strcmp(argv[1], "synth")) return vg_cli_synth(argc - 2, argv + 2);
  if (!strcmp(argv[1], "distill")) return vg_cli_distill(argc - 2, argv + 2);
  if (!strcmp(argv[1], "bench")) return vg_cli_bench(argc - 2, argv + 2);
  if (!strcmp(argv[1], "train")) return vg_cli_train(argc - 2, argv + 2);
  if (!strcmp(argv[1], "test")) return vg_cli_test(argc - 2, argv + 2);
  if (!strcmp(argv[1], "predict")) return vg_cli_predict(argc - 2, argv + 2);
  if (!strcmp(argv[1], "metrics")) return vg_cli_metrics(argc - 2, argv + 2);
  if (!strcmp(argv[1], "convert")) return vg_cli_convert(argc - 2, argv + 2);
  if (!strcmp(argv[1], "smoke")) return vg_cli_smoke(argc - 2, argv + 2);
  fprintf(stderr, "vigil: unknown command '%s' (try 'vigil help')\n", argv[1]);
  return 2;
}
