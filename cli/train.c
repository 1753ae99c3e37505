/* train.c — `vigil train METHOD`: one run directory per training (cli/rundir.h).
 *
 * Order: config.json -> fit_begin (statistics) -> train_step x steps (checkpoint every
 * save_every and at the end; SIGINT/SIGTERM save and stop) -> fit_end on the validation
 * split -> final checkpoint -> `vigil test` on the run (unless --no-test).
 * --resume continues an interrupted run from its checkpoint, whose metadata holds the
 * step (state.json is a mirror): same schedule, same loader order (epoch order is a
 * function of (seed, epoch)), same method RNG, so a run killed at any point and resumed
 * ends bit-identical to an uninterrupted one (tests/test_resume.c). One training per run
 * directory (vigil.lock); see cli/rundir.h for the crash-safety rules. */
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/rundir.h"
#include "datasets/synth.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "base/file.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static void on_signal(int s) { (void)s; g_stop = 1; }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* `vigil train`'s options (the table drives the parser and --help: cli/opts.h) */
typedef struct {
  vg_run_overrides ov;   /* method config flags, in order */
  const char *data, *dataset, *category, *out, *config_file, *cache, *device;
  int64_t steps, epochs, save_every;
  int batch, workers, threads;
  uint64_t seed;
  double val_fraction;
  bool resume, no_test, strict_images;
  bool workers_given, threads_given, save_every_given, seed_given, val_given;
} train_opts;

static bool train_dtype(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  (void)o; (void)opts;
  if (!strcmp(v, "f32")) return true;
  fprintf(stderr, "vigil %s: --dtype %s: training computes in f32 (f16 is for test/predict/bench on CUDA)\n", cmd, v);
  return false;
}

#define T train_opts
static const vg_opt train_table[] = {
  {.kind = VG_OPT_HEAD, .help = "data (default: the synthetic benchmark, generated once into the cache):"},
  {.name = "--data", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, data), .help = "dataset root"},
  {.name = "--dataset", .kind = VG_OPT_STR, .arg = "KIND", .off = VG_OPT_AT(T, dataset),
   .help = "mvtec | loco | visa | btad | folder (default mvtec; folder = DIR/{normal,abnormal[,mask,normal_test]})"},
  {.name = "--category", .kind = VG_OPT_STR, .arg = "C", .off = VG_OPT_AT(T, category),
   .help = "category / object / product (synthetic default: woven)"},
  {.name = "--val-fraction", .kind = VG_OPT_F64, .arg = "F", .flo = 0, .fhi = 1, .hi_open = true,
   .off = VG_OPT_AT(T, val_fraction), .given = VG_OPT_GIVEN(T, val_given),
   .help = "part of train held out for validation, in [0, 1) (default 0.1; 0 for methods that read no validation "
           "split: fastflow, cflow; LOCO uses validation/)"},
  {.name = "--cache", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, cache),
   .help = "where the synthetic benchmark is cached (default $VIGIL_CACHE or ~/.cache/vigil)"},
  {.kind = VG_OPT_HEAD, .help = "model:"},
  {.name = "--backbone", .kind = VG_OPT_STR, .arg = "NAME", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_str, .key = "backbone",
   .help = "backbone (method-specific; e.g. resnet18, wide_resnet50_2)"},
  {.name = "--weights", .kind = VG_OPT_STR, .arg = "FILE", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_str, .key = "weights",
   .help = "pretrained backbone weights (.pth/.safetensors); without: random init (loud warning)"},
  {.name = "--set", .kind = VG_OPT_LIST, .arg = "KEY=VALUE", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_set,
   .help = "any method config key (VALUE as JSON, else a string); repeatable"},
  {.name = "--config", .kind = VG_OPT_STR, .arg = "FILE.json", .off = VG_OPT_AT(T, config_file),
   .help = "a config like a run's config.json; flags override it"},
  {.name = "--model", .kind = VG_OPT_ENUM, .arg = "s|m", .choices = "s|m", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_str,
   .key = "model", .help = "method config key \"model\" (EfficientAD: PDN-S or PDN-M)"},
  {.name = "--teacher", .kind = VG_OPT_STR, .arg = "FILE", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_str, .key = "teacher",
   .help = "method config key \"teacher\" (EfficientAD: pretrained teacher weights)"},
  {.name = "--penalty", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_str, .key = "penalty_dir",
   .help = "method config key \"penalty_dir\" (EfficientAD: ImageNet images for the penalty loss)"},
  {.name = "--paper-setup", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_json, .key = "paper_setup",
   .help = "method config key \"paper_setup\": true (CFLOW-AD: the official MVTec setup, per-class\n"
           "input size from the gudovskiy/cflow-ad README; needs --category)"},
  {.kind = VG_OPT_NOTE, .help = "  a method whose config has \"seed\", \"category\" or \"iters_per_epoch\" gets --seed, the data category and\n"
                                "  the training loader's batches per epoch there unless the key is set (CFLOW-AD: meta-epoch = one pass)"},
  {.kind = VG_OPT_HEAD, .help = "training:"},
  {.name = "--steps", .kind = VG_OPT_I64, .arg = "N", .lo = 0, .hi = VG_LIM_STEPS_MAX, .off = VG_OPT_AT(T, steps),
   .label = "--steps N | --epochs N  ",
   .help = "number of iterations (default: the method's; on the synthetic default without\n"
           "--steps/--epochs/--batch: a short CPU schedule of the method, e.g. fastflow 12 x 8);\n"
           "steps 0..1000000000, epochs >= 1 with epochs x batches per epoch <= 1000000000"},
  {.name = "--epochs", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = VG_LIM_STEPS_MAX, .off = VG_OPT_AT(T, epochs)},
  VG_OPT_BATCH(T, batch, "batch size, 1..4096 (default: the method's)"),
  {VG_OPT_SEED_(T, seed, (uint64_t)VG_LIM_SEED_MAX), .given = VG_OPT_GIVEN(T, seed_given),
   .help = "seed for shuffling and the method's RNG, 0..2^63-1 (default 0)"},
  {VG_OPT_WORKERS_(T, workers), .given = VG_OPT_GIVEN(T, workers_given), .help = "loader threads, 1..256 (default 2)"},
  {.name = "--strict-images", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, strict_images),
   .help = "refuse truncated images (a JPEG cut before its EOI marker; default: decode them\n"
           "as libjpeg does, missing part grey, with a warning naming the file); also for the test"},
  {VG_OPT_THREADS_(T, threads), .given = VG_OPT_GIVEN(T, threads_given),
   .help = "compute threads, 0..256 (default 0: all cores; more than the cores: warned)"},
  VG_OPT_DEVICE(T, device, "where training runs (default cpu; cuda: a `make CUDA=1` build and a GPU); f32"),
  {.name = "--dtype", .kind = VG_OPT_ENUM, .arg = "f32", .hook = train_dtype,
   .help = "compute dtype: f32 only (f16 is for test/predict/bench on CUDA)"},
  {.name = "--save-every", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = VG_LIM_STEPS_MAX, .off = VG_OPT_AT(T, save_every),
   .given = VG_OPT_GIVEN(T, save_every_given), .help = "checkpoint period in steps, >= 1 (default 500)"},
  {.name = "--out", .kind = VG_OPT_STR, .arg = "RUNDIR", .off = VG_OPT_AT(T, out),
   .help = "run directory (default runs/<method>-<category>)"},
  {.name = "--resume", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, resume),
   .help = "continue the run in --out from its last checkpoint; its config.json fixes the\n"
           "schedule, data and method config (checked like the flags): --steps/--batch/--seed/\n"
           "--save-every/--val-fraction equal to the stored value are accepted, others refused;\n"
           "--epochs, data and method config flags are refused; --threads/--workers/--device apply"},
  {.name = "--no-test", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, no_test), .help = "do not run `vigil test` after training"},
  {0}};
#undef T

/* the registry's methods (methods/method.h) after the usage line, and with METHOD given,
 * its config keys (`vigil train METHOD --help`) */
static void train_methods(FILE *f) {
  char b[256];
  fprintf(f, "     METHOD: %s\n", vg_method_list(b, sizeof b, " | ", false));
}
static void train_method_help(FILE *f, const char *method) {
  fputc('\n', f);
  if (!vg_method_print_config_help(f, method)) fprintf(f, "(no method '%s')\n", method);
}

const vg_cmd_spec vg_cmd_train = {
  .name = "train", .lead = "METHOD", .example = "meanimage", .opts = train_table,
  .usage = "usage: vigil train METHOD [options]", .more = train_methods, .lead_help = train_method_help};

/* The run state {"step", "fit_begin", "fit_end"}: committed inside the checkpoint (its
 * metadata "vigil.run_state", by the same rename as the tensors) and mirrored to
 * state.json after it for people and scripts. */
static void state_json(char *text, size_t cap, int64_t step, bool fb, bool fe) {
  snprintf(text, cap, "{\"step\": %lld, \"fit_begin\": %s, \"fit_end\": %s}", (long long)step, fb ? "true" : "false",
           fe ? "true" : "false");
}

static vg_status write_state(const char *rundir, int64_t step, bool fb, bool fe) {
  char text[160];
  state_json(text, sizeof text - 1, step, fb, fe);
  strcat(text, "\n");
  return vg_run_write_text(vg_run_path(rundir, "state.json"), text);
}

static bool parse_state(const char *text, int64_t *step, bool *fb, bool *fe) {
  vg_json *j;
  if (vg_json_parse(text, strlen(text), NULL, &j) != VG_OK) return false;
  bool ok = vg_json_as_int64(vg_json_get(j, "step"), step) && *step >= 0 && vg_json_as_bool(vg_json_get(j, "fit_begin"), fb) &&
            vg_json_as_bool(vg_json_get(j, "fit_end"), fe);
  vg_json_free(j);
  return ok;
}

/* state.json: 1 read, 0 absent, -1 unreadable or malformed (message set) */
static int read_state_json(const char *rundir, int64_t *step, bool *fb, bool *fe) {
  const char *p = vg_run_path(rundir, "state.json");
  struct stat sb;
  if (lstat(p, &sb) != 0 && errno == ENOENT) return 0;
  char *t;
  if (vg_run_read_text(p, &t) != VG_OK) return -1;
  bool ok = parse_state(t, step, fb, fe);
  free(t);
  if (!ok) vg_fail(VG_ERR_FORMAT, "%s: malformed (want {\"step\": N, \"fit_begin\": bool, \"fit_end\": bool})", p);
  return ok ? 1 : -1;
}

/* The step counter a method keeps among its own tensors (EfficientAD "vigil_step", CFLOW-AD
 * "vigil_state"[0]: train_step calls done), -1 when it has none. */
static int64_t method_counter(vg_st_file *f) {
  static const char *const names[] = {"model.vigil_step", "model.vigil_state", NULL};
  for (int i = 0; names[i]; i++) {
    vg_tensor *t = NULL;
    if (vg_st_find(f, names[i]) < 0 || vg_st_get(f, names[i], VG_I64, &t) != VG_OK) continue;
    int64_t v = vg_numel(t) >= 1 ? ((const int64_t *)vg_data(t))[0] : -1;
    vg_tensor_free(t);
    return v;
  }
  return -1;
}

/* Where a resumed run continues. The checkpoint is authoritative: its metadata holds the
 * step its tensors belong to (state.json, written after it, may lag by one checkpoint
 * when a crash fell between the two; a disagreement is reported and the checkpoint
 * wins). A checkpoint without a run state (older Vigil) falls back to state.json. What
 * cannot be reconciled is an error naming both steps: a method step counter in the
 * checkpoint that differs from its run state, a state.json past a missing checkpoint.
 * *have_ckpt: false = nothing committed yet (start at step 0). */
static vg_status resume_state(const char *rundir, int64_t *step, bool *fb, bool *fe, bool *have_ckpt) {
  char cp[1100];
  snprintf(cp, sizeof cp, "%s", vg_run_path(rundir, "checkpoint.safetensors"));
  int64_t js = 0;
  bool jfb = false, jfe = false;
  int have_json = read_state_json(rundir, &js, &jfb, &jfe);
  *step = 0;
  *fb = *fe = *have_ckpt = false;
  struct stat sb;
  if (lstat(cp, &sb) != 0 && errno == ENOENT) {
    if (have_json == 1 && (js > 0 || jfb))
      return vg_fail(VG_ERR_FORMAT, "%s says step %lld, but the run has no checkpoint (%s is missing): cannot resume "
                     "step %lld without its state", vg_run_path(rundir, "state.json"), (long long)js, cp, (long long)js);
    if (have_json == 1) fprintf(stderr, "vigil train: no checkpoint yet in %s: starting the run at step 0\n", rundir);
    return VG_OK;
  }
  vg_st_file *f;
  vg_status st = vg_st_open(cp, &f);
  if (st != VG_OK) return st;
  const char *rs = vg_st_meta(f, VG_CHECKPOINT_RUN_STATE);
  int64_t counter = method_counter(f);
  if (rs) {
    if (!parse_state(rs, step, fb, fe)) st = vg_fail(VG_ERR_FORMAT, "%s: malformed run state in its metadata: %s", cp, rs);
    else if (have_json == 1 && (js != *step || jfb != *fb || jfe != *fe))
      fprintf(stderr, "vigil train: %s says step %lld (fit_begin %s, fit_end %s) but the checkpoint holds step %lld "
                      "(fit_begin %s, fit_end %s), an interrupted checkpoint write: resuming from the checkpoint, step %lld\n",
              vg_run_path(rundir, "state.json"), (long long)js, jfb ? "true" : "false", jfe ? "true" : "false",
              (long long)*step, *fb ? "true" : "false", *fe ? "true" : "false", (long long)*step);
    else if (have_json == -1)
      fprintf(stderr, "vigil train: ignoring %s (%s): the checkpoint holds step %lld\n", vg_run_path(rundir, "state.json"),
              vg_last_error(), (long long)*step);
    /* the mirror follows the checkpoint again (a run resumed when already complete writes nothing else) */
    if (st == VG_OK && (counter < 0 || counter == *step) && (have_json != 1 || js != *step || jfb != *fb || jfe != *fe))
      st = write_state(rundir, *step, *fb, *fe);
  } else if (have_json == 1) {
    *step = js; *fb = jfb; *fe = jfe;
    fprintf(stderr, "vigil train: %s has no run state (an older Vigil wrote it): trusting %s, step %lld\n", cp,
            vg_run_path(rundir, "state.json"), (long long)js);
  } else {
    st = have_json == -1 ? vg_fail_prefix("%s has no run state in its metadata, and state.json", cp)
                         : vg_fail(VG_ERR_FORMAT, "%s has no run state in its metadata and there is no state.json: "
                                   "cannot tell which step it belongs to", cp);
  }
  if (st == VG_OK && counter >= 0 && counter != *step)
    st = vg_fail(VG_ERR_FORMAT, "%s: its run state says step %lld but the method's own step counter says step %lld: "
                 "cannot be reconciled (the checkpoint is damaged or from another run)", cp, (long long)*step,
                 (long long)counter);
  vg_st_close(f);
  if (st == VG_OK) *have_ckpt = true;
  return st;
}

/* The schedule and data a run's checkpoints belong to (config.json's train/data values that
 * decide the result), committed in each checkpoint's run state as "run": {...} (state.json
 * keeps the three fields). --resume compares it, and the checkpoint's method config
 * ("vigil.config"), with config.json: an edit made after the checkpoint (steps, batch,
 * seed, a method config key, ...) is refused by name rather than continued into a run no
 * uninterrupted training would produce. Empty until the config is known. */
static char g_run_sched[1024];

static void schedule_json(const vg_run_config *c, char *out, size_t cap) {
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "steps"); vg_jw_int64(&w, c->train.steps);
  vg_jw_key(&w, "batch"); vg_jw_int64(&w, c->train.batch);
  vg_jw_key(&w, "seed"); vg_jw_int64(&w, (int64_t)c->train.seed);
  vg_jw_key(&w, "save_every"); vg_jw_int64(&w, c->train.save_every);
  vg_jw_key(&w, "dataset"); vg_jw_string(&w, c->data.dataset);
  vg_jw_key(&w, "category"); vg_jw_string(&w, c->data.category);
  vg_jw_key(&w, "val_fraction"); vg_jw_double(&w, c->data.val_fraction);
  vg_jw_key(&w, "split_seed"); vg_jw_int64(&w, (int64_t)c->data.split_seed);
  vg_jw_end_object(&w);
  char *t = vg_jw_finish(&w, NULL);
  snprintf(out, cap, "%s", t && strlen(t) < cap ? t : "");
  free(t);
}

/* j as compact JSON text (malloc'd; NULL for NULL). */
static char *json_text(const vg_json *j) {
  if (!j) return NULL;
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_value(&w, j);
  return vg_jw_finish(&w, NULL);
}

/* The first key of object a whose value differs in object b, or of b missing from a;
 * *va / *vb: the two values as text (malloc'd, "(absent)" when missing). */
static const char *json_diff(const vg_json *a, const vg_json *b, char **va, char **vb) {
  *va = *vb = NULL;
  for (int pass = 0; pass < 2; pass++) {
    const vg_json *x = pass ? b : a, *y = pass ? a : b;
    for (int64_t i = 0; i < vg_json_len(x); i++) {
      const char *k = vg_json_key_at(x, i);
      char *tx = json_text(vg_json_at(x, i)), *ty = json_text(vg_json_get(y, k));
      if (!ty || !tx || strcmp(tx, ty)) {
        *va = pass ? ty : tx;
        *vb = pass ? tx : ty;
        return k;
      }
      free(tx);
      free(ty);
    }
  }
  return NULL;
}

/* --resume: config.json against what the checkpoint was written with (see g_run_sched). A
 * checkpoint without that record (an older Vigil) is not checked. */
static vg_status check_config_unchanged(const char *rundir, const vg_run_config *c) {
  char cp[1100];
  snprintf(cp, sizeof cp, "%s", vg_run_path(rundir, "checkpoint.safetensors"));
  vg_st_file *f = NULL;
  vg_status st = vg_st_open(cp, &f);
  if (st != VG_OK) return st;
  const char *rs = vg_st_meta(f, VG_CHECKPOINT_RUN_STATE), *mc = vg_st_meta(f, "vigil.config");
  vg_json *rj = NULL, *mj = NULL, *now = NULL;
  char sched[1024], *va = NULL, *vb = NULL;
  const char *key = NULL, *part = NULL;
  schedule_json(c, sched, sizeof sched);
  if (rs && vg_json_parse(rs, strlen(rs), NULL, &rj) == VG_OK && vg_json_get(rj, "run") &&
      vg_json_parse(sched, strlen(sched), NULL, &now) == VG_OK &&
      (key = json_diff(vg_json_get(rj, "run"), now, &va, &vb)))
    part = "train/data";
  if (!key && mc && *mc && c->method_config && vg_json_parse(mc, strlen(mc), NULL, &mj) == VG_OK &&
      vg_json_len(mj) >= 0 && (key = json_diff(mj, c->method_config, &va, &vb)))
    part = "method_config";
  if (key)
    st = vg_fail(VG_ERR_FORMAT, "%s was edited after the checkpoint was written: %s key '%s' is %s there, the checkpoint "
                 "%s was written with %s; cannot be reconciled (restore config.json, or train a new run with another --out)",
                 vg_run_path(rundir, "config.json"), part, key, vb ? vb : "(absent)", cp, va ? va : "(absent)");
  free(va);
  free(vb);
  vg_json_free(rj);
  vg_json_free(mj);
  vg_json_free(now);
  vg_st_close(f);
  return st;
}

static vg_status checkpoint(const char *rundir, vg_method *m, int64_t step, bool fb, bool fe) {
  char rs[1200];
  state_json(rs, sizeof rs, step, fb, fe);
  if (g_run_sched[0]) {   /* {"step": .., "fit_begin": .., "fit_end": .., "run": {...}} */
    size_t n = strlen(rs);
    snprintf(rs + n - 1, sizeof rs - n + 1, ", \"run\": %s}", g_run_sched);
  }
  m->run_state = rs;   /* committed with the tensors by the checkpoint's rename */
  vg_status st = m->ops->save(m, vg_run_path(rundir, "checkpoint.safetensors"));
  m->run_state = NULL;
  if (st == VG_OK) st = write_state(rundir, step, fb, fe);   /* the readable mirror */
  return st;
}

/* One training log line, appended with one write() (O_APPEND): a crash leaves at most a
 * partial last line, which --resume drops (vg_run_log_truncate). Crash-test points
 * train_log.jsonl.append / .partial (base/file.h). */
static vg_status log_line(int fd, const char *path, const char *line) {
  size_t n = strlen(line);
  vg_fault_point(path, "append");
  if (vg_fault_fires(path, "partial")) {
    if (write(fd, line, n / 2) < 0) { /* dying anyway */ }
    vg_fault_exit();
  }
  const char *p = line;
  while (n) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return vg_fail(VG_ERR_IO, "%s: append failed: %s", path, strerror(errno));
    p += r;
    n -= (size_t)r;
  }
  return VG_OK;
}

/* Starting a new run in rundir: what an earlier run left there goes first (config.json
 * first, so a crash in between leaves nothing to resume rather than a mix). */
/* Per-step-interval evaluation on the test split (vg_method.eval_every: CFLOW-AD's
 * per-meta-epoch evaluation and "best epoch" report): every evaluation and the best value of
 * each metric go to RUNDIR/best_epoch.json (rewritten after each one); `vigil test` copies the
 * bests into metrics.json as best_epoch_* keys. A resumed run keeps the evaluations up to its
 * checkpoint's step (the ones after it are redone identically). */
typedef struct { int64_t step; double v[VG_CLI_EVAL_NKEYS]; } eval_rec;
typedef struct { eval_rec *r; int n, cap; int64_t every; } eval_log;

static vg_status eval_log_add(eval_log *e, int64_t step, const double *v) {
  while (e->n > 0 && e->r[e->n - 1].step >= step) e->n--;   /* redone after a resume */
  if (e->n == e->cap) {
    int cap = e->cap ? 2 * e->cap : 16;
    eval_rec *r = realloc(e->r, sizeof *r * (size_t)cap);
    if (!r) return vg_fail(VG_ERR_NOMEM, "out of memory (evaluations)");
    e->r = r;
    e->cap = cap;
  }
  e->r[e->n].step = step;
  memcpy(e->r[e->n].v, v, sizeof e->r[e->n].v);
  e->n++;
  return VG_OK;
}

static void eval_log_load(const char *rundir, int64_t upto, eval_log *e) {
  char *t = NULL;
  vg_json *doc = NULL;
  struct stat sb;
  const char *p = vg_run_path(rundir, "best_epoch.json");
  if (stat(p, &sb) != 0 || vg_run_read_text(p, &t) != VG_OK || vg_json_parse(t, strlen(t), NULL, &doc) != VG_OK) {
    free(t);
    return;
  }
  const vg_json *ev = vg_json_get(doc, "evaluations");
  for (int64_t i = 0; i < vg_json_len(ev); i++) {
    const vg_json *o = vg_json_at(ev, i);
    int64_t step;
    double v[VG_CLI_EVAL_NKEYS];
    if (!vg_json_as_int64(vg_json_get(o, "step"), &step) || step > upto) continue;
    for (int k = 0; k < VG_CLI_EVAL_NKEYS; k++)
      if (!vg_json_as_double(vg_json_get(o, vg_cli_eval_keys[k]), &v[k])) v[k] = NAN;
    eval_log_add(e, step, v);
  }
  vg_json_free(doc);
  free(t);
}

static vg_status eval_log_write(const char *rundir, const eval_log *e) {
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "eval_every_steps"); vg_jw_int64(&w, e->every);
  vg_jw_key(&w, "note");
  vg_jw_string(&w, "test-split evaluations during training (epoch = step / eval_every_steps, rounded up); best: the "
                   "maximum of each metric over them, as the official CFLOW-AD code reports (test-set model selection)");
  vg_jw_key(&w, "evaluations");
  vg_jw_begin_array(&w);
  for (int i = 0; i < e->n; i++) {
    vg_jw_begin_object(&w);
    vg_jw_key(&w, "step"); vg_jw_int64(&w, e->r[i].step);
    vg_jw_key(&w, "epoch"); vg_jw_int64(&w, (e->r[i].step + e->every - 1) / e->every);
    for (int k = 0; k < VG_CLI_EVAL_NKEYS; k++) {
      vg_jw_key(&w, vg_cli_eval_keys[k]);
      if (isfinite(e->r[i].v[k])) vg_jw_double(&w, e->r[i].v[k]); else vg_jw_null(&w);
    }
    vg_jw_end_object(&w);
  }
  vg_jw_end_array(&w);
  vg_jw_key(&w, "best");
  vg_jw_begin_object(&w);
  for (int k = 0; k < VG_CLI_EVAL_NKEYS; k++) {
    int b = -1;
    for (int i = 0; i < e->n; i++)   /* the first evaluation reaching the maximum, as Score_Observer's ">" */
      if (isfinite(e->r[i].v[k]) && (b < 0 || e->r[i].v[k] > e->r[b].v[k])) b = i;
    if (b < 0) continue;
    vg_jw_key(&w, vg_cli_eval_keys[k]);
    vg_jw_begin_object(&w);
    vg_jw_key(&w, "value"); vg_jw_double(&w, e->r[b].v[k]);
    vg_jw_key(&w, "epoch"); vg_jw_int64(&w, (e->r[b].step + e->every - 1) / e->every);
    vg_jw_key(&w, "step"); vg_jw_int64(&w, e->r[b].step);
    vg_jw_end_object(&w);
  }
  vg_jw_end_object(&w);
  vg_jw_end_object(&w);
  char *t = vg_jw_finish(&w, NULL);
  if (!t) return vg_fail(VG_ERR_NOMEM, "out of memory (best_epoch.json)");
  vg_status st = vg_run_write_text(vg_run_path(rundir, "best_epoch.json"), t);
  free(t);
  return st;
}

static vg_status clear_run(const char *rundir) {
  static const char *const files[] = {"config.json", "checkpoint.safetensors", "state.json", "train_log.jsonl",
                                      "best_epoch.json", NULL};
  for (int i = 0; files[i]; i++) {
    const char *p = vg_run_path(rundir, files[i]);
    if (unlink(p) != 0 && errno != ENOENT) return vg_fail(VG_ERR_IO, "%s: cannot remove it: %s", p, strerror(errno));
  }
  return vg_file_fsync_dir(vg_run_path(rundir, "config.json"));
}

const char *vg_cli_default_cache(char *buf, size_t cap) {
  const char *c = getenv("VIGIL_CACHE"), *home = getenv("HOME");
  if (c && *c) snprintf(buf, cap, "%s", c);
  else if (home && *home) snprintf(buf, cap, "%s/.cache/vigil", home);
  else snprintf(buf, cap, ".vigil-cache");
  return buf;
}

/* Creates the method from the overrides; on success cfg->method_config holds its complete config. */
static vg_status create_method(const char *method, const vg_run_overrides *ov, vg_run_config *cfg, vg_method **m) {
  vg_json *j = NULL;
  vg_status st = vg_run_ov_json(ov, &j);
  if (st == VG_OK) st = vg_method_create(method, j, m);
  vg_json_free(j);
  if (st != VG_OK) return st;
  char *full = (*m)->ops->config_json(*m);
  vg_json_free(cfg->method_config);
  cfg->method_config = NULL;
  st = full ? vg_json_parse(full, strlen(full), NULL, &cfg->method_config) : vg_fail(VG_ERR_NOMEM, "out of memory");
  free(full);
  if (st != VG_OK) { vg_fail_prefix("method config"); vg_method_free(*m); *m = NULL; }
  return st;
}

/* The data part of a new run's config; generates the synthetic benchmark when no --data. */
static vg_status data_config(const char *data, const char *dataset, const char *category, const char *cache,
                             vg_run_data *d) {
  if (data) {
    snprintf(d->root, sizeof d->root, "%s", data);
    snprintf(d->dataset, sizeof d->dataset, "%s", dataset ? dataset : "mvtec");
    snprintf(d->category, sizeof d->category, "%s", category ? category : "");
    return VG_OK;
  }
  char cb[1024];
  const char *cat = category ? category : "woven";
  const vg_synth_category *sc = vg_synth_category_find(cat);
  if (!sc) return vg_fail(VG_ERR_ARG, "'%s' is not a synthetic category (give --data for a real dataset)", cat);
  snprintf(d->root, sizeof d->root, "%s/synth-v%d-256", cache ? cache : vg_cli_default_cache(cb, sizeof cb), VG_SYNTH_VERSION);
  vg_synth_opts so = {.out = d->root};
  bool made = false;
  fprintf(stderr, "vigil train: no --data: using the synthetic benchmark in %s\n", d->root);
  vg_status st = vg_synth_generate(&so, &made);
  if (st != VG_OK) return st;
  snprintf(d->dataset, sizeof d->dataset, "%s", sc->loco ? "loco" : "mvtec");
  snprintf(d->category, sizeof d->category, "%s", cat);
  d->synthetic = true;
  return VG_OK;
}

int vg_cli_train(int argc, char **argv) {
  train_opts o = {.steps = -1, .epochs = -1, .batch = -1, .workers = 2, .save_every = 500, .val_fraction = 0.1};
  const char *pos[1];
  g_stop = 0;            /* vg_cli_main may run train again in the same process: nothing carries over */
  g_run_sched[0] = 0;
  struct sigaction old_int, old_term;
  bool handlers = false;
  int prc = vg_opts_parse(&vg_cmd_train, argc, argv, &o, pos, NULL);
  if (prc >= 0) { vg_run_ov_free(&o.ov); return prc; }
  const char *method = pos[0];
  const char *data = o.data, *dataset = o.dataset, *category = o.category, *out = o.out, *config_file = o.config_file;
  const char *cache = o.cache, *device = o.device;
  int64_t steps = o.steps, epochs = o.epochs, batch = o.batch, workers = o.workers, threads = o.threads;
  int64_t save_every = o.save_every;
  uint64_t seed = o.seed;
  double val_fraction = o.val_fraction;
  bool resume = o.resume, no_test = o.no_test, strict_images = o.strict_images;
  vg_run_overrides ov = o.ov, base = {0};   /* ov: the flags' method config, owned from here */
  bool workers_given = o.workers_given, threads_given = o.threads_given, save_every_given = o.save_every_given;
  bool seed_given = o.seed_given, val_given = o.val_given;
  char rundir[1024];
  if (out) snprintf(rundir, sizeof rundir, "%s", out);
  else snprintf(rundir, sizeof rundir, "runs/%s-%s", method, category ? category : (data ? "data" : "woven"));

  vg_run_config cfg = {0};
  vg_method *m = NULL;
  vg_dataset train = {0}, val = {0}, test_ds = {0};
  eval_log evl = {0};
  vg_loader *L = NULL;
  int log_fd = -1, lock_fd = -1;
  int rc = 1;
  vg_status st = VG_OK;
  int64_t step = 0;
  bool fb_done = false, fe_done = false, have_ckpt = false;

  if (resume) {
    struct stat sb;
    if (lstat(vg_run_path(rundir, "config.json"), &sb) != 0 && errno == ENOENT &&
        lstat(vg_run_path(rundir, VG_RUN_LOCK_NAME), &sb) == 0) {
      /* a training took the folder and was interrupted before its config.json was written:
       * nothing to continue, the run starts (from these flags) */
      fprintf(stderr, "vigil train --resume: %s holds no run yet (interrupted before its config.json): starting it\n", rundir);
      resume = false;
    }
  }
  if (resume) {
    struct stat sb;
    if (lstat(vg_run_path(rundir, "config.json"), &sb) != 0) {
      fprintf(stderr, "vigil train --resume: %s holds no run to resume (%s: %s)\n", rundir,
              vg_run_path(rundir, "config.json"), strerror(errno));
      goto done;
    }
    /* one training per run directory (vigil.lock), then what a crash left: temp files */
    if ((st = vg_run_lock(rundir, &lock_fd)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
    vg_run_clean_tmp(rundir);
    if ((st = vg_run_config_read(rundir, &cfg)) != VG_OK || resume_state(rundir, &step, &fb_done, &fe_done, &have_ckpt) != VG_OK) {
      fprintf(stderr, "vigil train --resume: %s\n", vg_last_error());
      if (st == VG_ERR_ARG) rc = 2;   /* config.json out of range: refused like a flag */
      goto done;
    }
    if (strcmp(cfg.method, method)) { fprintf(stderr, "vigil train --resume: %s holds a %s run, not %s\n", rundir, cfg.method, method); goto done; }
    if (step > cfg.train.steps) {
      fprintf(stderr, "vigil train --resume: %s/checkpoint.safetensors holds step %lld but config.json's schedule has %lld steps: "
                      "cannot be reconciled\n", rundir, (long long)step, (long long)cfg.train.steps);
      goto done;
    }
    if (have_ckpt && (st = check_config_unchanged(rundir, &cfg)) != VG_OK) {
      /* an edited value that no run could have (out of its range) is refused as such, exit 2 */
      char edited[2048];
      snprintf(edited, sizeof edited, "%s", vg_last_error());
      vg_method *probe = NULL;
      vg_status pst = vg_run_open_method(rundir, &cfg, false, &probe);
      vg_method_free(probe);
      fprintf(stderr, "vigil train --resume: %s\n", pst == VG_ERR_ARG ? vg_last_error() : edited);
      if (pst == VG_ERR_ARG) rc = 2;
      goto done;
    }
    /* the schedule, data and method config are the run's (config.json): a flag that would
     * change them is refused, never silently ignored; --threads / --workers / --device apply */
    {
      const char *clash = NULL;
      char want[64] = "";
      if (steps >= 0 && steps != cfg.train.steps) { clash = "--steps"; snprintf(want, sizeof want, "%lld", (long long)cfg.train.steps); }
      else if (epochs >= 0) clash = "--epochs";
      else if (batch >= 0 && batch != cfg.train.batch) { clash = "--batch"; snprintf(want, sizeof want, "%d", cfg.train.batch); }
      else if (seed_given && seed != cfg.train.seed) { clash = "--seed"; snprintf(want, sizeof want, "%llu", (unsigned long long)cfg.train.seed); }
      else if (save_every_given && save_every != cfg.train.save_every) { clash = "--save-every"; snprintf(want, sizeof want, "%lld", (long long)cfg.train.save_every); }
      else if (val_given && val_fraction != cfg.data.val_fraction) { clash = "--val-fraction"; snprintf(want, sizeof want, "%g", cfg.data.val_fraction); }
      else if (ov.n > 0) clash = "a method config flag (--set, --backbone, --weights, --model, ...)";
      else if (data || dataset || category || config_file || cache) clash = "a data flag (--data, --dataset, --category, --config, --cache)";
      if (clash) {
        fprintf(stderr, "vigil train --resume: %s cannot change a run being resumed: %s's config.json fixes it%s%s "
                        "(resume without it, or train a new run with another --out)\n", clash, rundir,
                want[0] ? " at " : "", want);
        rc = 2;
        goto done;
      }
      if (threads_given) cfg.train.threads = (int)threads;
      if (workers_given) cfg.train.workers = (int)workers;
    }
    st = vg_run_open_method(rundir, &cfg, have_ckpt, &m);
    if (st != VG_OK) { fprintf(stderr, "vigil train --resume: %s\n", vg_last_error()); rc = st == VG_ERR_ARG ? 2 : 1; goto done; }
    fprintf(stderr, "vigil train: resuming %s at step %lld of %lld%s\n", rundir, (long long)step, (long long)cfg.train.steps,
            have_ckpt ? " (the checkpoint's step)" : " (no checkpoint yet)");
    if ((st = vg_run_open_dataset(&cfg.data, VG_SPLIT_TRAIN, &train)) != VG_OK ||
        (st = vg_run_open_dataset(&cfg.data, VG_SPLIT_VAL, &val)) != VG_OK) {
      fprintf(stderr, "vigil train: %s\n", vg_last_error());
      goto done;
    }
  } else {
    /* method config: --config file's method_config, then flags */
    if (config_file) {
      char *t;
      vg_json *file_doc = NULL;
      if (vg_run_read_text(config_file, &t) != VG_OK) { fprintf(stderr, "vigil train: --config: %s\n", vg_last_error()); goto done; }
      st = vg_json_parse(t, strlen(t), NULL, &file_doc);
      free(t);
      if (st != VG_OK) { fprintf(stderr, "vigil train: --config %s: %s\n", config_file, vg_last_error()); goto done; }
      const vg_json *mc = vg_json_get(file_doc, "method_config");
      for (int64_t i = 0; mc && i < vg_json_len(mc); i++) {
        vg_json_writer w;
        vg_jw_init(&w, 0);
        vg_jw_value(&w, vg_json_at(mc, i));
        char *vt = vg_jw_finish(&w, NULL);
        if (vt) vg_run_ov_set(&base, vg_json_key_at(mc, i), vt);
        free(vt);
      }
      const vg_json *t2 = vg_json_get(file_doc, "train");
      int64_t x;
      if (steps < 0 && t2 && vg_json_as_int64(vg_json_get(t2, "steps"), &x)) {
        if ((st = vg_check_i64(config_file, "train.steps", x, 0, VG_LIM_STEPS_MAX)) == VG_OK) steps = x;
      }
      if (st == VG_OK && batch < 0 && t2 && vg_json_as_int64(vg_json_get(t2, "batch"), &x)) {
        if ((st = vg_check_i64(config_file, "train.batch", x, 1, VG_LIM_BATCH_MAX)) == VG_OK) batch = x;
      }
      vg_json_free(file_doc);
      if (st != VG_OK) { fprintf(stderr, "vigil train: --config: %s\n", vg_last_error()); rc = 2; goto done; }
    }
    for (int i = 0; i < ov.n; i++) vg_run_ov_set(&base, ov.v[i].key, ov.v[i].json);
    /* data first: the method may want the category and the loader's batches per epoch */
    if ((st = data_config(data, dataset, category, cache, &cfg.data)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
    {  /* a method that never reads a validation split trains on all of train (its def's no_val) */
      const vg_method_def *def = vg_method_find(method);
      if (def && def->no_val && !val_given) {
        val_fraction = 0;
        fprintf(stderr, "vigil train: %s reads no validation split: training on the whole train split "
                        "(val_fraction 0; --val-fraction F holds F out anyway)\n", method);
      }
    }
    cfg.data.val_fraction = val_fraction;
    cfg.data.split_seed = seed;
    if ((st = vg_run_open_dataset(&cfg.data, VG_SPLIT_TRAIN, &train)) != VG_OK ||
        (st = vg_run_open_dataset(&cfg.data, VG_SPLIT_VAL, &val)) != VG_OK) {
      fprintf(stderr, "vigil train: %s\n", vg_last_error());
      goto done;
    }
    /* keys the CLI fills in when the method has them and they were not given: seed, the
     * data category, and the training loader's batches per epoch (drop_last when the
     * split holds a batch); the method is rebuilt only when one of them changes */
    vg_method_quick q;
    if (!data && steps < 0 && epochs < 0 && batch < 0 && vg_method_quick_schedule(method, &q)) {
      steps = q.steps;
      batch = q.batch;
      bool bb = q.backbone && !vg_run_ov_has(&base, "backbone");
      if (bb) vg_run_ov_set_str(&base, "backbone", q.backbone);
      fprintf(stderr, "vigil train: synthetic default: the short CPU schedule, %lld steps of batch %lld%s%s (a smoke run, "
                      "not the paper's; give --steps/--epochs/--batch for more)\n", (long long)steps, (long long)batch,
              bb ? ", backbone " : "", bb ? q.backbone : "");
    }
    {  /* real data, no schedule given: the paper's epochs when the method declares them */
      const vg_method_def *def = vg_method_find(method);
      if (data && steps < 0 && epochs < 0 && def && def->paper_epochs > 0) {
        epochs = def->paper_epochs;
        fprintf(stderr, "vigil train: the paper's schedule: %lld epochs (give --steps/--epochs for another)\n",
                (long long)epochs);
      }
    }
    if ((st = create_method(method, &base, &cfg, &m)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); rc = st == VG_ERR_ARG ? 2 : 1; goto done; }
    cfg.train.batch = (int)(batch > 0 ? batch : m->train_batch);
    const vg_json *mc = cfg.method_config;
    int64_t have_i;
    const char *have_s;
    int64_t B = cfg.train.batch, nb = train.n >= B ? train.n / B : 1;
    bool rebuild = false, set_iters = false;
    if (vg_json_get(mc, "seed") && !vg_run_ov_has(&base, "seed") &&
        !(vg_json_as_int64(vg_json_get(mc, "seed"), &have_i) && (uint64_t)have_i == seed)) {
      char sb[32];
      snprintf(sb, sizeof sb, "%llu", (unsigned long long)seed);
      rebuild |= vg_run_ov_set(&base, "seed", sb);
    }
    if (vg_json_get(mc, "category") && !vg_run_ov_has(&base, "category") &&
        !((have_s = vg_json_as_string(vg_json_get(mc, "category"))) && !strcmp(have_s, cfg.data.category)))
      rebuild |= vg_run_ov_set_str(&base, "category", cfg.data.category);
    if (vg_json_get(mc, "iters_per_epoch") && !vg_run_ov_has(&base, "iters_per_epoch") && train.n > 0) {
      set_iters = true;
      if (!(vg_json_as_int64(vg_json_get(mc, "iters_per_epoch"), &have_i) && have_i == nb)) {
        char nbs[32];
        snprintf(nbs, sizeof nbs, "%lld", (long long)nb);
        rebuild |= vg_run_ov_set(&base, "iters_per_epoch", nbs);
      }
    }
    if (rebuild) {
      vg_method_free(m);
      m = NULL;
      if ((st = create_method(method, &base, &cfg, &m)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); rc = st == VG_ERR_ARG ? 2 : 1; goto done; }
      cfg.train.batch = (int)(batch > 0 ? batch : m->train_batch);
    }
    if (set_iters)
      fprintf(stderr, "vigil train: iters_per_epoch = %lld (batches of %lld per pass over %lld training images)\n",
              (long long)nb, (long long)B, (long long)train.n);
    snprintf(cfg.method, sizeof cfg.method, "%s", method);
    cfg.train.workers = (int)(workers > 0 ? workers : 2);
    cfg.train.threads = (int)threads;
    cfg.train.seed = seed;
    cfg.train.save_every = save_every > 0 ? save_every : 500;
    cfg.train.steps = steps >= 0 ? steps : -1;   /* epochs resolved below */
  }
  vg_cli_apply_threads("train", cfg.train.threads);
  /* the first batch is sized by --batch and the input size: refuse what cannot be allocated */
  if ((st = vg_check_batch_bytes("vigil train: --batch", cfg.train.batch, m->train_channels, m->input_h, m->input_w)) != VG_OK) {
    fprintf(stderr, "%s\n", vg_last_error());
    rc = 2;
    goto done;
  }
  if ((st = vg_cli_method_to(m, device, NULL)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
  if (m->random_backbone)
    fprintf(stderr, "\n*** WARNING: no --weights: the backbone is RANDOMLY INITIALISED. Results are NOT comparable to the papers. ***\n\n");
  if (train.n == 0) { fprintf(stderr, "vigil train: the training split is empty\n"); goto done; }
  vg_loader_opts lo = {.batch_size = cfg.train.batch, .workers = cfg.train.workers, .prefetch = 3,
                       .channels = m->train_channels, .height = m->input_h, .width = m->input_w,
                       .shuffle = true, .seed = cfg.train.seed, .drop_last = train.n >= cfg.train.batch,
                       .transform = m->train_transform, .user = m->transform_user, .strict_images = strict_images};
  if ((st = vg_loader_create(&train, &lo, &L)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
  int64_t nb = vg_loader_batches(L);
  if (!resume) {
    if (cfg.train.steps < 0 && epochs >= 0 && nb > 0 && epochs > VG_LIM_STEPS_MAX / nb) {
      fprintf(stderr, "vigil train: --epochs: %lld epochs x %lld batches per epoch is more than %lld steps: want an integer "
                      "in [1, %lld]\n", (long long)epochs, (long long)nb, (long long)VG_LIM_STEPS_MAX,
              (long long)(VG_LIM_STEPS_MAX / nb));
      rc = 2;
      goto done;
    }
    if (cfg.train.steps < 0) cfg.train.steps = epochs >= 0 ? epochs * nb : m->default_steps;
    if ((st = vg_run_config_check("vigil train", &cfg)) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); rc = 2; goto done; }
    /* the folder, its lock (one training per run), temp files a crash left, an earlier
     * run's files, then config.json */
    if ((st = vg_mkdir_p(rundir)) != VG_OK || (lock_fd < 0 && (st = vg_run_lock(rundir, &lock_fd)) != VG_OK)) {
      fprintf(stderr, "vigil train: %s\n", vg_last_error());
      goto done;
    }
    vg_run_clean_tmp(rundir);
    if ((st = clear_run(rundir)) != VG_OK || (st = vg_run_config_write(rundir, &cfg)) != VG_OK) {
      fprintf(stderr, "vigil train: %s\n", vg_last_error());
      goto done;
    }
  } else if ((st = vg_run_log_truncate(vg_run_path(rundir, "train_log.jsonl"), step, NULL)) != VG_OK) {
    /* the log keeps the lines of the steps before the checkpoint; a partial line goes */
    fprintf(stderr, "vigil train --resume: %s\n", vg_last_error());
    goto done;
  }
  schedule_json(&cfg, g_run_sched, sizeof g_run_sched);   /* committed with every checkpoint from here on */
  m->total_steps = cfg.train.steps;   /* step schedules (EfficientAD's lr x0.1 at 95 %) key on it */
  fprintf(stderr, "vigil train: %s on %s/%s: %lld train + %lld val images, %lld steps of batch %d -> %s\n", method,
          cfg.data.dataset, cfg.data.category, (long long)train.n, (long long)val.n, (long long)cfg.train.steps,
          cfg.train.batch, rundir);
  if (!fb_done) {
    if (m->ops->fit_begin && (st = m->ops->fit_begin(m, &train)) != VG_OK) { fprintf(stderr, "vigil train: fit: %s\n", vg_last_error()); goto done; }
    fb_done = true;
    if ((st = checkpoint(rundir, m, step, fb_done, false)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
  }
  const char *log_path = vg_run_path(rundir, "train_log.jsonl");
  char log_path_buf[1100];
  snprintf(log_path_buf, sizeof log_path_buf, "%s", log_path);
  log_path = log_path_buf;
  log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) { fprintf(stderr, "vigil train: cannot append to %s: %s\n", log_path, strerror(errno)); goto done; }
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);   /* the caller's handlers come back when train returns */
  sigaction(SIGTERM, &sa, &old_term);
  handlers = true;
  bool tty = isatty(2);
  int64_t cur_epoch = -1, total = cfg.train.steps, start_step = step;
  if (m->eval_every > 0) {   /* the test split for the per-interval evaluations (best_epoch.json) */
    evl.every = m->eval_every;
    eval_log_load(rundir, step, &evl);
    if ((st = vg_run_open_dataset(&cfg.data, VG_SPLIT_TEST, &test_ds)) != VG_OK) {
      fprintf(stderr, "vigil train: evaluation every %lld steps: %s\n", (long long)m->eval_every, vg_last_error());
      goto done;
    }
  }
  double t_start = now_s(), t_last_print = 0;
  while (step < total && !fe_done) {
    int64_t epoch = step / nb, pos = step % nb;
    if (epoch != cur_epoch) {
      vg_loader_start_epoch(L, (int)epoch);
      cur_epoch = epoch;
      for (int64_t k = 0; k < pos; k++) {   /* resume inside an epoch: skip what was used */
        vg_batch b;
        if (vg_loader_next(L, &b) == VG_OK) vg_batch_free(&b);
      }
    }
    vg_batch b;
    if ((st = vg_loader_next(L, &b)) != VG_OK) { fprintf(stderr, "\nvigil train: step %lld: %s\n", (long long)step, vg_last_error()); goto done; }
    if (b.n == 0) { vg_batch_free(&b); cur_epoch = -1; continue; }
    double lr = m->ops->current_lr ? m->ops->current_lr(m) : NAN;
    double t0 = now_s(), loss = 0;
    st = m->ops->train_step(m, b.images, step, &loss);
    double dt = now_s() - t0;
    int bn = b.n;
    vg_batch_free(&b);
    if (st == VG_OK && !isfinite(loss)) st = vg_fail(VG_ERR_NUMERIC, "loss is %g", loss);
    if (st != VG_OK) {
      fprintf(stderr, "\nvigil train: step %lld: %s\n  the last good checkpoint is kept in %s (resume with --resume --out %s)\n",
              (long long)step, vg_last_error(), rundir, rundir);
      goto done;
    }
    char line[256], lrs[48] = "";
    if (isfinite(lr)) snprintf(lrs, sizeof lrs, "\"lr\": %.9g, ", lr);
    snprintf(line, sizeof line, "{\"step\": %lld, \"loss\": %.9g, %s\"step_ms\": %.3f, \"images_s\": %.3f}\n", (long long)step,
             loss, lrs, dt * 1e3, bn / dt);
    if ((st = log_line(log_fd, log_path, line)) != VG_OK) { fprintf(stderr, "\nvigil train: %s\n", vg_last_error()); goto done; }
    step++;
    double el = now_s() - t_start;
    double ips = (double)(step - start_step) * cfg.train.batch / (el > 0 ? el : 1);
    double eta = (double)(total - step) * el / (double)(step - start_step);
    if (tty && (now_s() - t_last_print > 0.2 || step == total)) {
      fprintf(stderr, "\r  step %lld/%lld  loss %.5g  %.3g img/s  ETA %dm%02ds   ", (long long)step, (long long)total, loss, ips,
              (int)eta / 60, (int)eta % 60);
      t_last_print = now_s();
    } else if (!tty && (step % (total / 20 > 0 ? total / 20 : 1) == 0 || step == total)) {
      fprintf(stderr, "  step %lld/%lld loss %.5g %.3g img/s ETA %.0fs\n", (long long)step, (long long)total, loss, ips, eta);
    }
    if (step % cfg.train.save_every == 0 || step == total || g_stop) {
      /* the log lines of the steps the checkpoint covers are on disk before it */
      if (fsync(log_fd) != 0 && errno != EINVAL) {
        st = vg_fail(VG_ERR_IO, "%s: fsync failed: %s", log_path, strerror(errno));
        fprintf(stderr, "\nvigil train: %s\n", vg_last_error());
        goto done;
      }
      vg_fault_point(log_path, "sync");
      if ((st = checkpoint(rundir, m, step, true, false)) != VG_OK) { fprintf(stderr, "\nvigil train: %s\n", vg_last_error()); goto done; }
    }
    if (m->eval_every > 0 && !g_stop && (step % m->eval_every == 0 || step == total)) {
      double v[VG_CLI_EVAL_NKEYS];
      if ((st = vg_cli_evaluate(m, &test_ds, cfg.data.category, cfg.train.workers, strict_images, v)) != VG_OK ||
          (st = eval_log_add(&evl, step, v)) != VG_OK || (st = eval_log_write(rundir, &evl)) != VG_OK) {
        fprintf(stderr, "\nvigil train: evaluation at step %lld: %s\n", (long long)step, vg_last_error());
        goto done;
      }
      fprintf(stderr, "%s  evaluation at step %lld (epoch %lld): image AUROC %.4f pixel AUROC %.4f AU-PRO %.4f\n",
              tty ? "\n" : "", (long long)step, (long long)((step + m->eval_every - 1) / m->eval_every), v[0], v[1], v[2]);
    }
    if (g_stop) {
      fprintf(stderr, "\nvigil train: interrupted at step %lld; checkpoint saved. Continue with: vigil train %s --resume --out %s\n",
              (long long)step, method, rundir);
      rc = 130;
      goto done;
    }
  }
  if (tty && total > start_step) fprintf(stderr, "\n");
  if (!fe_done) {
    if (m->ops->fit_end && (st = m->ops->fit_end(m, &val)) != VG_OK) { fprintf(stderr, "vigil train: fit_end: %s\n", vg_last_error()); goto done; }
    if ((st = checkpoint(rundir, m, step, true, true)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
  }
  fprintf(stderr, "vigil train: done (%s/checkpoint.safetensors)\n", rundir);
  rc = 0;
done:
  if (handlers) { sigaction(SIGINT, &old_int, NULL); sigaction(SIGTERM, &old_term, NULL); }
  if (log_fd >= 0) close(log_fd);
  vg_loader_destroy(L);
  vg_dataset_free(&train);
  vg_dataset_free(&val);
  vg_dataset_free(&test_ds);
  free(evl.r);
  vg_method_free(m);
  vg_run_config_free(&cfg);
  vg_run_ov_free(&ov);
  vg_run_ov_free(&base);
  if (rc == 0 && !no_test) {
    char *targv[5] = {"--run", rundir, "--device", (char *)(device ? device : "cpu"), "--strict-images"};
    rc = vg_cli_test(strict_images ? 5 : 4, targv);
  }
  vg_run_unlock(lock_fd);   /* held through `vigil test`, which writes into the run too */
  return rc;
}
