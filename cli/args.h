/* args.h — strict parsing of the numbers the `vigil` commands take, from flags, from
 * `--set KEY=VALUE`, from a run's config.json and from VIGIL_* environment variables.
 *
 * One parser for all of them: a decimal integer (optional leading '-', no '+', no leading
 * whitespace, no trailing junk, no empty string, overflow refused), an unsigned 64-bit seed,
 * or a finite decimal number (no nan/inf, no hex), each checked against a closed range.
 * A refused flag prints, on stderr,
 *   vigil train: --batch: '0' is out of range: an integer in [1, 4096]
 * and the command exits 2. The ranges are the VG_LIM_* below, shared by every command and by
 * the config.json checks (vg_run_config_read), so a flag and a config key agree. */
#ifndef VG_CLI_ARGS_H
#define VG_CLI_ARGS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/parse.h"   /* vg_parse_i64 / u64 / f64: the parsers themselves */
#include "base/status.h"

/* ranges shared by the flags and config.json */
#define VG_LIM_STEPS_MAX    1000000000LL   /* train steps, epochs x batches per epoch */
#define VG_LIM_BATCH_MAX    4096LL         /* images per batch */
#define VG_LIM_WORKERS_MAX  256LL          /* loader threads */
#define VG_LIM_THREADS_MAX  256LL          /* compute threads (the pool's maximum); 0 = all cores */
#define VG_LIM_SIZE_MAX     4096LL         /* input size, image side */
#define VG_LIM_SEED_MAX     INT64_MAX      /* seeds stored in config.json (a JSON int64) */
#define VG_LIM_BATCH_BYTES  ((int64_t)16 << 30)   /* one batch of f32 images at most (before RAM) */

/* Flag parsers: cmd is the command ("train"), flag the flag ("--batch"). On a bad value
 * they print "vigil CMD: FLAG: 'V' ...: an integer in [LO, HI]" on stderr and return false;
 * the caller exits 2. */
bool vg_arg_i64(const char *cmd, const char *flag, const char *v, int64_t lo, int64_t hi, int64_t *out);
bool vg_arg_int(const char *cmd, const char *flag, const char *v, int lo, int hi, int *out);
bool vg_arg_u64(const char *cmd, const char *flag, const char *v, uint64_t hi, uint64_t *out);
/* lo_open / hi_open: the bound itself is excluded ("(0, 1]"). */
bool vg_arg_f64(const char *cmd, const char *flag, const char *v, double lo, bool lo_open, double hi, bool hi_open,
                double *out);
/* --threads N of every command: N in [0, VG_LIM_THREADS_MAX] (0 = all cores); sets the compute
 * pool when N > 0 and warns (stderr) when N exceeds the cores this process may use. */
bool vg_arg_threads(const char *cmd, const char *v, int *out);
void vg_cli_apply_threads(const char *cmd, int threads);
/* The help flags: "--help" or "-h". */
bool vg_arg_is_help(const char *a);

/* `--set KEY=VALUE`: when VALUE looks like a number (a digit, '-', '+' or '.' first) it must
 * be a finite JSON number; prints "vigil CMD: --set KEY: ..." and returns false otherwise. */
bool vg_arg_set_value_ok(const char *cmd, const char *key_eq_value);

/* Range checks for values read from a file (config.json): VG_ERR_ARG naming where ("PATH"),
 * the key ("train.batch") and the range. */
vg_status vg_check_i64(const char *where, const char *key, int64_t v, int64_t lo, int64_t hi);
vg_status vg_check_f64(const char *where, const char *key, double v, double lo, bool lo_open, double hi, bool hi_open);

/* Bytes of one f32 batch B x C x H x W, refused (VG_ERR_LIMIT, naming what) above
 * min(VG_LIM_BATCH_BYTES, physical memory): call before allocating a flag-sized batch. */
vg_status vg_check_batch_bytes(const char *what, int64_t B, int64_t C, int64_t H, int64_t W);
#endif
