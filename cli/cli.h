/* cli.h — the `vigil` command line as library functions (libvigil holds cli/; cli/vigil.c is
 * only `main`). vg_cli_main takes the whole argv of a program (argv[0] its name, argv[1] the
 * command) and returns the exit status, like the `vigil` program:
 *
 *   #include <vigil.h>
 *   extern const vg_method_def my_method;       // methods/method.h
 *   int main(int argc, char **argv) {
 *     if (vg_method_register(&my_method) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); return 2; }
 *     return vg_cli_main(argc, argv);           // train / test / predict / bench / metrics / ... for it
 *   }
 *
 * It may be called more than once in a process, one call at a time (not from two threads at
 * once): no command state carries over from one call to the next (an interrupted train does
 * not stop the next one). `train` and `distill` catch SIGINT/SIGTERM while they run
 * (checkpoint, then stop) and put the previous handlers back when they return. Process-wide
 * settings stay: `--threads N` sets the compute threads (vg_set_num_threads) for what follows.
 * The vg_cli_COMMAND functions take the arguments after the command's name. */
#ifndef VG_CLI_H
#define VG_CLI_H
int vg_cli_main(int argc, char **argv);
int vg_cli_bench_table(int argc, char **argv);
int vg_cli_smoke(int argc, char **argv);
int vg_cli_features(int argc, char **argv);
int vg_cli_synth(int argc, char **argv);
int vg_cli_distill(int argc, char **argv);
int vg_cli_bench(int argc, char **argv);      /* cli/bench.c */
int vg_cli_train(int argc, char **argv);
int vg_cli_test(int argc, char **argv);
int vg_cli_predict(int argc, char **argv);
int vg_cli_metrics(int argc, char **argv);
int vg_cli_convert(int argc, char **argv);
#endif
