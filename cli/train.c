/* train.c — `vigil train METHOD`: one run directory per training (cli/rundir.h).
 *
 * Order: config.json -> fit_begin (statistics) -> train_step x steps (checkpoint every
 * save_every and at the end; SIGINT/SIGTERM save and stop) -> fit_end on the validation
 * split -> final checkpoint -> `vigil test` on the run (unless --no-test).
 * --resume continues an interrupted run from state.json + checkpoint: same schedule,
 * same loader order (epoch order is a function of (seed, epoch)), same method RNG. */
#include "cli/cli.h"
#include "cli/rundir.h"
#include "datasets/synth.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static void on_signal(int s) { (void)s; g_stop = 1; }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int train_usage(FILE *f) {
  fprintf(f,
    "usage: vigil train METHOD [options]     METHOD: fastflow | cflow | efficientad | meanimage\n"
    "data (default: the synthetic benchmark, generated once into the cache):\n"
    "  --data DIR            dataset root\n"
    "  --dataset KIND        mvtec | loco | visa | btad | folder (default mvtec; folder = DIR/{normal,abnormal[,mask,normal_test]})\n"
    "  --category C          category / object / product (synthetic default: woven)\n"
    "  --val-fraction F      part of train held out for validation (default 0.1; LOCO uses validation/)\n"
    "  --cache DIR           where the synthetic benchmark is cached (default $VIGIL_CACHE or ~/.cache/vigil)\n"
    "model:\n"
    "  --backbone NAME       backbone (method-specific; e.g. resnet18, wide_resnet50_2)\n"
    "  --weights FILE        pretrained backbone weights (.pth/.safetensors); without: random init (loud warning)\n"
    "  --set KEY=VALUE       any method config key (VALUE as JSON, else a string); repeatable\n"
    "  --config FILE.json    a config like a run's config.json; flags override it\n"
    "  --model s|m           method config key \"model\" (EfficientAD: PDN-S or PDN-M)\n"
    "  --teacher FILE        method config key \"teacher\" (EfficientAD: pretrained teacher weights)\n"
    "  --penalty DIR         method config key \"penalty_dir\" (EfficientAD: ImageNet images for the penalty loss)\n"
    "  --paper-setup         method config key \"paper_setup\": true (CFLOW-AD: the official MVTec setup, per-class\n"
    "                        input size from the gudovskiy/cflow-ad README; needs --category)\n"
    "  a method whose config has \"seed\", \"category\" or \"iters_per_epoch\" gets --seed, the data category and\n"
    "  the training loader's batches per epoch there unless the key is set (CFLOW-AD: meta-epoch = one pass)\n"
    "training:\n"
    "  --steps N | --epochs N   number of iterations (default: the method's; on the synthetic default without\n"
    "                        --steps/--epochs/--batch: a short CPU schedule of the method, e.g. fastflow 12 x 8)\n"
    "  --batch N             batch size (default: the method's)\n"
    "  --seed N              seed for shuffling and the method's RNG (default 0)\n"
    "  --workers N           loader threads (default 2)\n"
    "  --threads N           compute threads (default: all cores)\n"
    "  --device cpu|cuda     where training runs (default cpu; cuda: a `make CUDA=1` build and a GPU); f32\n"
    "  --save-every N        checkpoint period in steps (default 500)\n"
    "  --out RUNDIR          run directory (default runs/<method>-<category>)\n"
    "  --resume              continue the run in --out from its last checkpoint\n"
    "  --no-test             do not run `vigil test` after training\n");
  return f == stdout ? 0 : 2;
}

static vg_status write_state(const char *rundir, int64_t step, bool fb, bool fe) {
  char text[160];
  snprintf(text, sizeof text, "{\"step\": %lld, \"fit_begin\": %s, \"fit_end\": %s}\n", (long long)step,
           fb ? "true" : "false", fe ? "true" : "false");
  return vg_run_write_text(vg_run_path(rundir, "state.json"), text);
}

static vg_status read_state(const char *rundir, int64_t *step, bool *fb, bool *fe) {
  char *t;
  vg_status st = vg_run_read_text(vg_run_path(rundir, "state.json"), &t);
  if (st != VG_OK) return st;
  vg_json *j;
  st = vg_json_parse(t, strlen(t), NULL, &j);
  free(t);
  if (st != VG_OK) return vg_fail_prefix("%s", vg_run_path(rundir, "state.json"));
  bool ok = vg_json_as_int64(vg_json_get(j, "step"), step) && vg_json_as_bool(vg_json_get(j, "fit_begin"), fb) &&
            vg_json_as_bool(vg_json_get(j, "fit_end"), fe);
  vg_json_free(j);
  return ok ? VG_OK : vg_fail(VG_ERR_FORMAT, "%s: malformed (step, fit_begin, fit_end)", vg_run_path(rundir, "state.json"));
}

static vg_status checkpoint(const char *rundir, vg_method *m, int64_t step, bool fb, bool fe) {
  vg_status st = m->ops->save(m, vg_run_path(rundir, "checkpoint.safetensors"));
  if (st == VG_OK) st = write_state(rundir, step, fb, fe);
  return st;
}

/* Keeps only the log lines with step < keep (resume rewrites the tail). */
static void truncate_log(const char *path, int64_t keep) {
  char *t;
  if (vg_run_read_text(path, &t) != VG_OK) return;
  size_t cap = strlen(t) + 1, len = 0;
  char *outb = malloc(cap);
  for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
    const char *s = strstr(line, "\"step\":");
    if (s && strtoll(s + 7, NULL, 10) < keep) len += (size_t)sprintf(outb + len, "%s\n", line);
  }
  outb[len] = 0;
  vg_run_write_text(path, outb);
  free(outb); free(t);
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
  if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) return train_usage(argc < 1 ? stderr : stdout);
  const char *method = argv[0];
  const char *data = NULL, *dataset = NULL, *category = NULL, *out = NULL, *config_file = NULL, *cache = NULL;
  const char *device = NULL;
  int64_t steps = -1, epochs = -1, batch = -1, workers = 2, threads = 0, save_every = 500;
  uint64_t seed = 0;
  double val_fraction = 0.1;
  bool resume = false, no_test = false;
  vg_run_overrides ov = {0}, base = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool ok = true;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { vg_run_ov_free(&ov); return train_usage(stdout); }
    if (!strcmp(a, "--resume")) { resume = true; continue; }
    if (!strcmp(a, "--no-test")) { no_test = true; continue; }
    if (!strcmp(a, "--paper-setup")) { vg_run_ov_set(&ov, "paper_setup", "true"); continue; }
    if (!v) { fprintf(stderr, "vigil train: %s needs a value\n", a); vg_run_ov_free(&ov); return train_usage(stderr); }
    i++;
    if (!strcmp(a, "--data")) data = v;
    else if (!strcmp(a, "--dataset")) dataset = v;
    else if (!strcmp(a, "--category")) category = v;
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--config")) config_file = v;
    else if (!strcmp(a, "--cache")) cache = v;
    else if (!strcmp(a, "--steps")) steps = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--epochs")) epochs = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--batch")) batch = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--workers")) workers = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--threads")) threads = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--device")) device = v;
    else if (!strcmp(a, "--dtype") && strcmp(v, "f32")) {
      fprintf(stderr, "vigil train: --dtype %s: training computes in f32 (f16 is for test/predict/bench on CUDA)\n", v);
      vg_run_ov_free(&ov);
      return 2;
    }
    else if (!strcmp(a, "--save-every")) save_every = strtoll(v, NULL, 10);
    else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--val-fraction")) val_fraction = strtod(v, NULL);
    else if (!strcmp(a, "--backbone")) ok = vg_run_ov_set_str(&ov, "backbone", v);
    else if (!strcmp(a, "--weights")) ok = vg_run_ov_set_str(&ov, "weights", v);
    else if (!strcmp(a, "--model")) {
      if (strcmp(v, "s") && strcmp(v, "m")) { fprintf(stderr, "vigil train: --model wants s or m, got '%s'\n", v); vg_run_ov_free(&ov); return 2; }
      ok = vg_run_ov_set_str(&ov, "model", v);
    }
    else if (!strcmp(a, "--teacher")) ok = vg_run_ov_set_str(&ov, "teacher", v);
    else if (!strcmp(a, "--penalty")) ok = vg_run_ov_set_str(&ov, "penalty_dir", v);
    else if (!strcmp(a, "--set")) {
      if (!vg_run_ov_set_arg(&ov, v)) { fprintf(stderr, "vigil train: --set wants KEY=VALUE, got '%s'\n", v); vg_run_ov_free(&ov); return 2; }
    } else { fprintf(stderr, "vigil train: unknown option %s\n", a); vg_run_ov_free(&ov); return train_usage(stderr); }
    if (!ok) { fprintf(stderr, "vigil train: %s: too many method config overrides\n", a); vg_run_ov_free(&ov); return 2; }
  }
  char rundir[1024];
  if (out) snprintf(rundir, sizeof rundir, "%s", out);
  else snprintf(rundir, sizeof rundir, "runs/%s-%s", method, category ? category : (data ? "data" : "woven"));

  vg_run_config cfg = {0};
  vg_method *m = NULL;
  vg_dataset train = {0}, val = {0};
  vg_loader *L = NULL;
  FILE *log = NULL;
  int rc = 1;
  vg_status st = VG_OK;
  int64_t step = 0;
  bool fb_done = false, fe_done = false;

  if (resume) {
    if (vg_run_config_read(rundir, &cfg) != VG_OK || read_state(rundir, &step, &fb_done, &fe_done) != VG_OK) {
      fprintf(stderr, "vigil train --resume: %s\n", vg_last_error());
      goto done;
    }
    if (strcmp(cfg.method, method)) { fprintf(stderr, "vigil train --resume: %s holds a %s run, not %s\n", rundir, cfg.method, method); goto done; }
    st = vg_run_open_method(rundir, &cfg, true, &m);
    if (st != VG_OK) { fprintf(stderr, "vigil train --resume: %s\n", vg_last_error()); goto done; }
    fprintf(stderr, "vigil train: resuming %s at step %lld of %lld\n", rundir, (long long)step, (long long)cfg.train.steps);
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
      if (steps < 0 && t2 && vg_json_as_int64(vg_json_get(t2, "steps"), &x)) steps = x;
      if (batch < 0 && t2 && vg_json_as_int64(vg_json_get(t2, "batch"), &x)) batch = x;
      vg_json_free(file_doc);
    }
    for (int i = 0; i < ov.n; i++) vg_run_ov_set(&base, ov.v[i].key, ov.v[i].json);
    /* data first: the method may want the category and the loader's batches per epoch */
    if ((st = data_config(data, dataset, category, cache, &cfg.data)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
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
    if ((st = create_method(method, &base, &cfg, &m)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
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
      if ((st = create_method(method, &base, &cfg, &m)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
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
  if (cfg.train.threads > 0) vg_set_num_threads(cfg.train.threads);
  if ((st = vg_cli_method_to(m, device, NULL)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
  if (m->random_backbone)
    fprintf(stderr, "\n*** WARNING: no --weights: the backbone is RANDOMLY INITIALISED. Results are NOT comparable to the papers. ***\n\n");
  if (train.n == 0) { fprintf(stderr, "vigil train: the training split is empty\n"); goto done; }
  vg_loader_opts lo = {.batch_size = cfg.train.batch, .workers = cfg.train.workers, .prefetch = 3,
                       .channels = m->train_channels, .height = m->input_h, .width = m->input_w,
                       .shuffle = true, .seed = cfg.train.seed, .drop_last = train.n >= cfg.train.batch,
                       .transform = m->train_transform, .user = m->transform_user};
  if ((st = vg_loader_create(&train, &lo, &L)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
  int64_t nb = vg_loader_batches(L);
  if (!resume) {
    if (cfg.train.steps < 0) cfg.train.steps = epochs >= 0 ? epochs * nb : m->default_steps;
    if ((st = vg_run_mkdirs(rundir)) != VG_OK || (st = vg_run_config_write(rundir, &cfg)) != VG_OK) {
      fprintf(stderr, "vigil train: %s\n", vg_last_error());
      goto done;
    }
    remove(vg_run_path(rundir, "train_log.jsonl"));
    remove(vg_run_path(rundir, "state.json"));
  } else {
    truncate_log(vg_run_path(rundir, "train_log.jsonl"), step);
  }
  m->total_steps = cfg.train.steps;   /* step schedules (EfficientAD's lr x0.1 at 95 %) key on it */
  fprintf(stderr, "vigil train: %s on %s/%s: %lld train + %lld val images, %lld steps of batch %d -> %s\n", method,
          cfg.data.dataset, cfg.data.category, (long long)train.n, (long long)val.n, (long long)cfg.train.steps,
          cfg.train.batch, rundir);
  if (!fb_done) {
    if (m->ops->fit_begin && (st = m->ops->fit_begin(m, &train)) != VG_OK) { fprintf(stderr, "vigil train: fit: %s\n", vg_last_error()); goto done; }
    fb_done = true;
    if ((st = checkpoint(rundir, m, step, fb_done, false)) != VG_OK) { fprintf(stderr, "vigil train: %s\n", vg_last_error()); goto done; }
  }
  log = fopen(vg_run_path(rundir, "train_log.jsonl"), "a");
  if (!log) { fprintf(stderr, "vigil train: cannot append to %s\n", vg_run_path(rundir, "train_log.jsonl")); goto done; }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  bool tty = isatty(2);
  int64_t cur_epoch = -1, total = cfg.train.steps, start_step = step;
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
    fprintf(log, "{\"step\": %lld, \"loss\": %.9g, ", (long long)step, loss);
    if (isfinite(lr)) fprintf(log, "\"lr\": %.9g, ", lr);
    fprintf(log, "\"step_ms\": %.3f, \"images_s\": %.3f}\n", dt * 1e3, bn / dt);
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
      fflush(log);
      fsync(fileno(log));
      if ((st = checkpoint(rundir, m, step, true, false)) != VG_OK) { fprintf(stderr, "\nvigil train: %s\n", vg_last_error()); goto done; }
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
  if (log) fclose(log);
  vg_loader_destroy(L);
  vg_dataset_free(&train);
  vg_dataset_free(&val);
  vg_method_free(m);
  vg_run_config_free(&cfg);
  vg_run_ov_free(&ov);
  vg_run_ov_free(&base);
  if (rc == 0 && !no_test) {
    char *targv[4] = {"--run", rundir, "--device", (char *)(device ? device : "cpu")};
    rc = vg_cli_test(4, targv);
  }
  return rc;
}
