/* cli.h — the `vigil` program's subcommands (each takes the arguments after its name). */
#ifndef VG_CLI_H
#define VG_CLI_H
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
