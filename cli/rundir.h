/* rundir.h — what `vigil train`, `vigil test` and `vigil predict` share: the run
 * directory, its config.json, and opening the dataset it names.
 *
 * A run directory holds
 *   config.json              the complete config: {"method", "method_config" (every
 *                            default spelled out), "data", "train"}
 *   checkpoint.safetensors   the method's save() (parameters, optimizer, step, RNG, stats)
 *   state.json               {"step": s, "fit_begin": bool, "fit_end": bool} — a mirror of
 *                            the checkpoint's run state, written after each checkpoint
 *   train_log.jsonl          one line per step: step, loss, lr, step_ms, images_s
 *   metrics.json, maps/, report/   written by `vigil test`
 *   vigil.lock               flock'd by the `vigil train` writing the run (holds its pid)
 * Every file is written to a temp name ("<name>.tmp<pid>", the checkpoint
 * "checkpoint.safetensors.tmp"), fsynced and renamed; the training log is appended one
 * whole line per write() and fsynced before each checkpoint.
 *
 * Crash safety. The checkpoint's metadata holds the run state (step, fit_begin, fit_end;
 * "vigil.run_state", nn/checkpoint.h), so one rename commits the parameters, optimizer,
 * RNG/statistics buffers and the step together; state.json is a readable mirror written
 * after it. `--resume` trusts the checkpoint (and says so when state.json disagrees),
 * drops the training log's lines from the resumed step on (and a partial last line), and
 * so continues exactly as an uninterrupted run: a crash at any point (kill -9, power)
 * loses at most the steps since the last checkpoint. Crash points can be injected with
 * VIGIL_FAULT (base/file.h). */
#ifndef VG_CLI_RUNDIR_H
#define VG_CLI_RUNDIR_H
#include <stdbool.h>
#include <stdint.h>
#include "datasets/datasets.h"
#include "methods/method.h"
#include "base/json.h"

typedef struct {
  char dataset[16];          /* mvtec | loco | visa | btad | folder */
  char root[1024];
  char category[128];
  double val_fraction;       /* part of train held out for fit_end (LOCO: its validation folder) */
  uint64_t split_seed;
  bool synthetic;            /* root is the cached synthetic benchmark */
} vg_run_data;

typedef struct {
  int64_t steps;             /* total train_step calls */
  int batch, workers, threads;
  uint64_t seed;
  int64_t save_every;        /* checkpoint every N steps (and at the end) */
} vg_run_train;

typedef struct {
  char method[32];
  vg_json *method_config;    /* owned; the complete config (from the method's config_json) */
  vg_run_data data;
  vg_run_train train;
} vg_run_config;

/* Joins dir + "/" + name into a static rotating buffer (4 slots). */
const char *vg_run_path(const char *dir, const char *name);
vg_status vg_run_config_write(const char *rundir, const vg_run_config *c);
vg_status vg_run_config_read(const char *rundir, vg_run_config *c);
void vg_run_config_free(vg_run_config *c);
/* The train/data values against the ranges of the flags (cli/args.h): VG_ERR_ARG naming
 * where (config.json's path, or "vigil train"), the key and the range. vg_run_config_read
 * applies it, so --resume, test and predict take only what a new run could have written. */
vg_status vg_run_config_check(const char *where, const vg_run_config *c);
/* The dataset split the config names. TEST only when asked by name. */
vg_status vg_run_open_dataset(const vg_run_data *d, vg_ds_split split, vg_dataset *out);
/* Creates the method from the config and, when the run dir has a checkpoint, loads it. */
vg_status vg_run_open_method(const char *rundir, const vg_run_config *c, bool load, vg_method **out);
/* Writes text atomically (temp, fsync, rename, fsync of the folder: vg_file_write_atomic). */
vg_status vg_run_write_text(const char *path, const char *text);
/* Takes the run directory's lock (flock on <rundir>/vigil.lock, which then holds our pid)
 * so that two trainings never write one run; *fd keeps it until vg_run_unlock (or exit).
 * Another holder: VG_ERR_IO naming its pid. */
#define VG_RUN_LOCK_NAME "vigil.lock"
vg_status vg_run_lock(const char *rundir, int *fd);
void vg_run_unlock(int fd);
/* Removes the temp files a crash left in the run directory: only Vigil's own names,
 * "<run file>.tmp" and "<run file>.tmp<digits>" for the run files above. Returns how many. */
int vg_run_clean_tmp(const char *rundir);
/* Rewrites a training log (atomically) keeping the whole lines whose "step" is < keep, in
 * order: a partial last line (no newline, as a crash mid-append leaves), lines that are no
 * JSON object with an integer step, and lines from step `keep` on are dropped. A missing
 * file is fine (nothing to do); lines may be of any length. *kept: lines kept (may be NULL). */
vg_status vg_run_log_truncate(const char *path, int64_t keep, int64_t *kept);
/* Reads a whole text file (malloc'd, NUL-terminated); a file holding a NUL byte is refused. */
vg_status vg_run_read_text(const char *path, char **out);

/* Method-config overrides gathered from the command line (`--set KEY=VALUE` and the flags
 * that map to config keys), later ones replacing earlier ones, serialised into one JSON
 * object for vg_method_create:
 *   vg_run_overrides ov = {0};
 *   vg_run_ov_set_str(&ov, "backbone", "resnet18");
 *   vg_run_ov_set_arg(&ov, "input_size=128");        // VALUE as JSON when it parses, else a string
 *   vg_json *cfg; vg_run_ov_json(&ov, &cfg); ...; vg_json_free(cfg); vg_run_ov_free(&ov); */
#define VG_RUN_MAX_OVERRIDES 64
typedef struct { char key[64]; char *json; } vg_run_kv;
typedef struct { vg_run_kv v[VG_RUN_MAX_OVERRIDES]; int n; } vg_run_overrides;
/* json: the value as JSON text. false when the key is too long or the list is full. */
bool vg_run_ov_set(vg_run_overrides *l, const char *key, const char *json);
bool vg_run_ov_set_str(vg_run_overrides *l, const char *key, const char *s);
bool vg_run_ov_set_arg(vg_run_overrides *l, const char *key_eq_value);
bool vg_run_ov_has(const vg_run_overrides *l, const char *key);
vg_status vg_run_ov_json(const vg_run_overrides *l, vg_json **out);
void vg_run_ov_free(vg_run_overrides *l);
/* --device / --dtype of train, test, predict, bench (NULL = cpu / f32): parses them and
 * moves the method (vg_method_to); says where it computes when not on the CPU. */
vg_status vg_cli_method_to(vg_method *m, const char *device, const char *dtype);
/* cli/test.c: the metrics of m as it is in memory on ds (predict every image, finalize, the
 * metrics at the GT resolution as `vigil test` computes them; no file written): the
 * per-evaluation numbers of a method with eval_every (CFLOW-AD's best-epoch report). */
vg_status vg_cli_evaluate(vg_method *m, const vg_dataset *ds, const char *category, int workers, bool strict_images,
                          double out[5]);
/* The metrics vg_cli_evaluate writes into out[], in order (metrics.json's names). */
#define VG_CLI_EVAL_NKEYS 5
extern const char *const vg_cli_eval_keys[VG_CLI_EVAL_NKEYS];
#endif
