/* opts.h — the `vigil` commands' options as tables: one row per option, one strict parser
 * that also prints `--help`.
 *
 * A command declares its options struct and one static table of vg_opt rows (name, alias,
 * kind, range, default, help, where it is stored: offsetof into the struct), then
 *
 *   typedef struct { int64_t batch; int threads; const char *out; } my_opts;
 *   static const vg_opt my_table[] = {
 *     {.name = "--batch", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = VG_LIM_BATCH_MAX,
 *      .off = offsetof(my_opts, batch), .help = "batch size", .def = "8"},
 *     VG_OPT_THREADS(my_opts, threads, "compute threads (default: all cores)"),
 *     {0}};
 *   const vg_cmd_spec vg_cmd_my = {.name = "my", .usage = "usage: vigil my [options]\n", .opts = my_table};
 *   ...
 *   my_opts o = {.batch = 8};
 *   int rc = vg_opts_parse(&vg_cmd_my, argc, argv, &o, NULL, NULL);
 *   if (rc >= 0) return rc;        // 0: --help printed, 2: a refused flag (message printed)
 *
 * The parser, for every command alike:
 *   --help / -h where an option may stand: the usage (generated from the table) on stdout, 0;
 *   an unknown option:  "vigil CMD: unknown option '--x' (see vigil CMD --help)", 2;
 *   a missing value:    "vigil CMD: --x needs a value (see vigil CMD --help)", 2;
 *   a bad number:       "vigil CMD: --x: 'V' is out of range: want an integer in [LO, HI]", 2
 *                       (the strict parsers of cli/args.h);
 *   a bad choice:       "vigil CMD: bad value 'V' for --x: want a|b", 2.
 * The next argument is always the value (`--steps -1` is a bad --steps, not two flags). A
 * flag given twice: the last value wins; VG_OPT_LIST rows (--set, bench's --batch) call
 * their hook once per occurrence. Positional arguments go to the caller's array.
 *
 * `vigil options` prints every command's table (vg_opts_dump), one option a line: tests
 * derive their checks from it (tests/test_cli_opts.c), so a new option is tested as soon
 * as it has a row. */
#ifndef VG_CLI_OPTS_H
#define VG_CLI_OPTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cli/args.h"

typedef enum {
  VG_OPT_END = 0,   /* the table's last row: {0} */
  VG_OPT_HEAD,      /* a heading line of the help (help = its text, printed as is) */
  VG_OPT_NOTE,      /* a free help line under the options (printed as is) */
  VG_OPT_FLAG,      /* no value: stores true in a bool */
  VG_OPT_INT,       /* int in [lo, hi] */
  VG_OPT_I64,       /* int64_t in [lo, hi] */
  VG_OPT_U64,       /* uint64_t in [0, uhi] */
  VG_OPT_F64,       /* double in flo..fhi, each end open or closed */
  VG_OPT_STR,       /* const char *: a string or a path, any value */
  VG_OPT_ENUM,      /* const char *: one of choices ("cpu|cuda"), or what the hook accepts */
  VG_OPT_LIST,      /* repeatable string (--set): the hook is called once per occurrence */
} vg_opt_kind;

typedef struct vg_opt vg_opt;
/* Called after the row's own check (range, choices) passed (v: the value; NULL for a flag).
 * A row with a hook leaves storing to the hook (its .off is the hook's: vg_opt_field).
 * Returns false to refuse it (exit 2) after printing "vigil CMD: ..." on stderr. */
typedef bool (*vg_opt_hook)(const char *cmd, const vg_opt *o, const char *v, void *opts);

#define VG_OPT_NOSTORE ((size_t)-1)

struct vg_opt {
  const char *name;       /* "--batch" */
  const char *alias;      /* another spelling ("--grey"), or NULL */
  vg_opt_kind kind;
  const char *arg;        /* the value's name in the help ("N", "DIR", "cpu|cuda") */
  int64_t lo, hi;         /* VG_OPT_INT / I64 range */
  uint64_t uhi;           /* VG_OPT_U64: [0, uhi] */
  double flo, fhi;        /* VG_OPT_F64 range */
  bool lo_open, hi_open;  /* VG_OPT_F64: the bound itself excluded */
  const char *choices;    /* VG_OPT_ENUM: "a|b|c"; NULL = the hook decides */
  size_t off;             /* offsetof(the options struct, field) + 1 (VG_OPT_AT); 0 = not stored */
  size_t given;           /* offsetof of a bool set when the option is given, + 1 (VG_OPT_GIVEN); 0 = none */
  vg_opt_hook hook;       /* extra check or action (it stores), or NULL */
  const char *key;        /* the hook's argument: the method config key a flag sets (vg_opt_ov_*) */
  const char *label;      /* the help's left column instead of "name arg" (e.g. "--graph / --no-graph") */
  const char *def;        /* the default, appended to the help as " (default DEF)" */
  const char *help;       /* the help text; '\n' continues under the text column; NULL: documented
                             by the row above (its label names this option too) */
};

#define VG_OPT_AT(T, f) (offsetof(T, f) + 1)
#define VG_OPT_GIVEN(T, f) (offsetof(T, f) + 1)

/* The flags several commands share, declared once: VG_OPT_X_(T, f) are the row's fields (name,
 * kind, range, storage) for a row that adds its own (.given, .def, ...); VG_OPT_X(T, f, help)
 * the whole row (help: the command's own wording). */
#define VG_OPT_THREADS_(T, f) \
  .name = "--threads", .kind = VG_OPT_INT, .arg = "N", .lo = 0, .hi = VG_LIM_THREADS_MAX, .off = VG_OPT_AT(T, f)
#define VG_OPT_WORKERS_(T, f) \
  .name = "--workers", .kind = VG_OPT_INT, .arg = "N", .lo = 1, .hi = VG_LIM_WORKERS_MAX, .off = VG_OPT_AT(T, f)
#define VG_OPT_BATCH_(T, f) \
  .name = "--batch", .kind = VG_OPT_INT, .arg = "N", .lo = 1, .hi = VG_LIM_BATCH_MAX, .off = VG_OPT_AT(T, f)
#define VG_OPT_SEED_(T, f, max) .name = "--seed", .kind = VG_OPT_U64, .arg = "N", .uhi = (max), .off = VG_OPT_AT(T, f)
/* --device cpu|cuda (also "gpu", as vg_parse_device takes) / --dtype f32|f16 (and their spellings) */
#define VG_OPT_DEVICE_(T, f) .name = "--device", .kind = VG_OPT_ENUM, .arg = "cpu|cuda", .off = VG_OPT_AT(T, f), .hook = vg_opt_device
#define VG_OPT_DTYPE_(T, f) .name = "--dtype", .kind = VG_OPT_ENUM, .arg = "f32|f16", .off = VG_OPT_AT(T, f), .hook = vg_opt_dtype
#define VG_OPT_THREADS(T, f, h) {VG_OPT_THREADS_(T, f), .help = h}
#define VG_OPT_WORKERS(T, f, h) {VG_OPT_WORKERS_(T, f), .help = h}
#define VG_OPT_BATCH(T, f, h) {VG_OPT_BATCH_(T, f), .help = h}
#define VG_OPT_SEED(T, f, max, h) {VG_OPT_SEED_(T, f, max), .help = h}
#define VG_OPT_DEVICE(T, f, h) {VG_OPT_DEVICE_(T, f), .help = h}
#define VG_OPT_DTYPE(T, f, h) {VG_OPT_DTYPE_(T, f), .help = h}
bool vg_opt_device(const char *cmd, const vg_opt *o, const char *v, void *opts);
bool vg_opt_dtype(const char *cmd, const vg_opt *o, const char *v, void *opts);
/* Method config overrides (.off: the command's vg_run_overrides, cli/rundir.h):
 * vg_opt_ov_str: .key = VALUE as a JSON string (--backbone NAME);
 * vg_opt_ov_json: .key = the value as JSON: true for a flag, the number for a numeric row;
 * vg_opt_ov_set: --set KEY=VALUE (VALUE as JSON when it parses, else a string). */
bool vg_opt_ov_str(const char *cmd, const vg_opt *o, const char *v, void *opts);
bool vg_opt_ov_json(const char *cmd, const vg_opt *o, const char *v, void *opts);
bool vg_opt_ov_set(const char *cmd, const vg_opt *o, const char *v, void *opts);
/* where row o stores in opts (NULL when .off is 0) */
void *vg_opt_field(void *opts, const vg_opt *o);

/* A command: its name, the help around the table, the table, its positional arguments. */
typedef struct {
  const char *name;       /* "train" */
  const char *usage;      /* help text before the options ("usage: vigil train METHOD [options] ...\n") */
  void (*more)(FILE *f);  /* prints more help after usage (e.g. lists from the method registry), or NULL */
  /* prints more help after the options when --help follows the lead (`vigil train fastflow --help`:
   * the method's config keys), or NULL */
  void (*lead_help)(FILE *f, const char *lead);
  const char *footer;     /* help text after them, or NULL */
  int width;              /* the help's left column (default 21) */
  const vg_opt *opts;     /* ends with {0} */
  const char *lead;       /* a positional that must come first ("METHOD"), or NULL */
  int max_pos;            /* positional arguments after the lead: 0 none, -1 any number */
  bool dash_number_pos;   /* "-5" is a positional (a number), not an option */
  const char *example;    /* positionals that let a test reach the flags ("meanimage", "a.png b.png") */
} vg_cmd_spec;

/* Parses argv (the arguments after the command's name) into opts. pos (capacity argc, may
 * be NULL when the command takes none) receives the positionals (the lead first), *npos
 * their count. Returns -1 to go on, else the exit status: 0 after --help, 2 after a
 * refused argument (its message printed). */
int vg_opts_parse(const vg_cmd_spec *c, int argc, char **argv, void *opts, const char **pos, int *npos);
/* The help generated from c; returns 0 for stdout, 2 otherwise (usage to stderr = an error). */
int vg_opts_usage(const vg_cmd_spec *c, FILE *f);
/* One line per option of c: "CMD\tEXAMPLE\tNAME\tALIAS\tKIND\tRANGE" (RANGE: the text the
 * refusal prints, e.g. "an integer in [1, 4096]"; choices for an enum; "-" otherwise), after
 * a line "CMD\tEXAMPLE\t-\t-\tcommand\t-" for the command itself. */
void vg_opts_dump(const vg_cmd_spec *c, FILE *f);

/* every command's spec (cli/<command>.c); vg_cmd_specs: all of them, NULL-terminated (main.c) */
extern const vg_cmd_spec vg_cmd_train, vg_cmd_test, vg_cmd_predict, vg_cmd_metrics, vg_cmd_convert, vg_cmd_info,
    vg_cmd_smoke, vg_cmd_features, vg_cmd_distill, vg_cmd_bench, vg_cmd_synth, vg_cmd_bench_table;
extern const vg_cmd_spec *const vg_cmd_specs[];
#endif
