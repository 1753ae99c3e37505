/* test_method_register — methods registered from outside the tree (vg_method_register) and the
 * whole command line inside a program (vg_cli_main):
 *   - every malformed descriptor is refused with a message naming what is wrong, and leaves
 *     the registry as it was; a duplicate name (built in, or registered) is refused;
 *   - a registered method is seen by vg_method_find/defs/names/list/quick_schedule/help/create,
 *     after the built-in ones; a create() that returns a method without a required op or
 *     without its sizes is refused and the method freed;
 *   - registration from several threads at once loses nothing; the 64-entry capacity is
 *     enforced by a message;
 *   - vg_cli_main runs synth, then train + test of the registered method twice in the same
 *     process: a run interrupted by SIGINT (rc 130) does not stop the next one, the caller's
 *     SIGINT handler is back after each call, and the runs give the same scores;
 *   - the vigil program prints its version (--version / version) = VG_VERSION. */
#include "tests/vgtest.h"
#include "vigil.h"
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

/* ---- a small real method: map = per-pixel |x - mean of the training batches seen| summed
 * over channels (the mean kept in a module buffer, so checkpoints are the usual ones) */
typedef struct {
  vg_method base;
  int64_t size;
  bool crash;             /* config: raise SIGINT in train_step 1 (the interrupted run) */
  vg_nn_module *net;      /* buffer "mean" (3 x S x S) and "n" (1) */
} regm;

static const vg_cfg_field REG_CONFIG[] = {
  {"input_size", VG_CFG_INT, VG_CFG_AT(regm, size), .idef = 32, .ilo = 16, .ihi = 256, .help = "input side"},
  {"interrupt", VG_CFG_BOOL, VG_CFG_AT(regm, crash), .idef = 0, .help = "raise SIGINT in step 1 (test)"},
  {NULL}};

static int g_frees;

static vg_status reg_step(vg_method *mm, const vg_tensor *images, int64_t step, double *loss) {
  regm *m = (regm *)mm;
  float *mu = vg_f32(vg_nn_buffer(m->net, "mean")), *n = vg_f32(vg_nn_buffer(m->net, "n"));
  int64_t P = 3 * m->size * m->size, N = images->shape[0];
  const float *x = vg_f32(images);
  for (int64_t r = 0; r < N; r++) {
    n[0] += 1;
    for (int64_t i = 0; i < P; i++) mu[i] += (x[r * P + i] - mu[i]) / n[0];
  }
  if (m->crash && step == 1) raise(SIGINT);
  *loss = 1.0 / (double)(step + 1);
  return VG_OK;
}

static vg_status reg_predict(vg_method *mm, const vg_tensor *images, float *maps, float *scores) {
  regm *m = (regm *)mm;
  const float *mu = vg_f32(vg_nn_buffer(m->net, "mean")), *x = vg_f32(images);
  int64_t S2 = m->size * m->size, N = images->shape[0];
  for (int64_t r = 0; r < N; r++) {
    scores[r] = 0;
    for (int64_t p = 0; p < S2; p++) {
      float d = 0;
      for (int c = 0; c < 3; c++) d += fabsf(x[(r * 3 + c) * S2 + p] - mu[c * S2 + p]);
      maps[r * S2 + p] = d;
      if (d > scores[r]) scores[r] = d;
    }
  }
  return VG_OK;
}

static char *reg_config_json(const vg_method *mm) { return vg_cfg_json("regtest", REG_CONFIG, mm); }
static vg_status reg_save(const vg_method *mm, const char *path) {
  return vg_method_checkpoint_save(mm, ((const regm *)mm)->net, NULL, path);
}
static vg_status reg_load(vg_method *mm, const char *path) { return vg_nn_checkpoint_load(path, ((regm *)mm)->net, NULL, NULL); }
static void reg_free(vg_method *mm) {
  g_frees++;
  vg_nn_free(((regm *)mm)->net);
  free(mm);
}
static const vg_method_ops REG_OPS = {.name = "regtest", .train_step = reg_step, .predict = reg_predict, .save = reg_save,
                                      .load = reg_load, .config_json = reg_config_json, .free = reg_free};
/* the same, without predict (create() must be refused) */
static const vg_method_ops REG_OPS_NOPREDICT = {.name = "regtest", .train_step = reg_step, .save = reg_save, .load = reg_load,
                                                .config_json = reg_config_json, .free = reg_free};

static vg_status reg_make(const vg_json *cfg, vg_method **out, const vg_method_ops *ops, int input) {
  regm *m = calloc(1, sizeof *m);
  vg_cfg_defaults(REG_CONFIG, m);
  vg_status st = vg_cfg_parse("regtest", REG_CONFIG, cfg, m);
  if (st != VG_OK) { free(m); return st; }
  m->net = vg_nn_module_new("RegTest", NULL, NULL, NULL);
  vg_nn_add_buffer(m->net, "mean", vg_tensor_new(VG_F32, 3, (int64_t[]){3, m->size, m->size}));
  vg_nn_add_buffer(m->net, "n", vg_tensor_new(VG_F32, 1, (int64_t[]){1}));
  m->base.ops = ops;
  m->base.input_h = m->base.input_w = input < 0 ? (int)m->size : input;
  m->base.train_channels = 3;
  m->base.train_batch = 2;
  m->base.default_steps = 3;
  m->base.train_transform = m->base.test_transform = vg_default_transform;
  *out = &m->base;
  return VG_OK;
}
static vg_status reg_new(const vg_json *cfg, vg_method **out) { return reg_make(cfg, out, &REG_OPS, -1); }
static vg_status reg_new_nopredict(const vg_json *cfg, vg_method **out) { return reg_make(cfg, out, &REG_OPS_NOPREDICT, -1); }
static vg_status reg_new_nosize(const vg_json *cfg, vg_method **out) { return reg_make(cfg, out, &REG_OPS, 0); }
static vg_status reg_new_null(const vg_json *cfg, vg_method **out) { (void)cfg; *out = NULL; return VG_OK; }
static vg_status reg_infer(struct vg_anomalib_infer *f) { (void)f; return VG_OK; }

static const vg_method_def REG = {.name = "regtest", .summary = "test method (tests/test_method_register.c)",
                                  .create = reg_new, .config = REG_CONFIG, .quick = {.steps = 2, .batch = 2}};

static size_t ndefs(void) {
  size_t n = 0;
  for (const vg_method_def *const *d = vg_method_defs(); *d; d++) n++;
  return n;
}

/* refused with VG_ERR_ARG, a message containing want, and the registry unchanged */
static void refused(const vg_method_def *d, const char *want, const char *what) {
  size_t before = ndefs();
  vg_status st = vg_method_register(d);
  const char *msg = vg_last_error();
  VG_CHECK(st == VG_ERR_ARG && strstr(msg, want) && ndefs() == before, "register refuses %s: \"%s\"", what, msg);
}

/* ---- registration from threads */
#define NTHR 4
#define PER_THR 3
static vg_method_def g_thr_defs[NTHR * PER_THR];
static char g_thr_names[NTHR * PER_THR][16];
static int g_thr_fail;
static void *thr_register(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int k = 0; k < PER_THR; k++)
    if (vg_method_register(&g_thr_defs[t * PER_THR + k]) != VG_OK) __atomic_add_fetch(&g_thr_fail, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static int cli(const char *line) {   /* vg_cli_main on a space-separated command line */
  char buf[2048], *argv[64];
  int argc = 0;
  snprintf(buf, sizeof buf, "vigil %s", line);
  for (char *s = strtok(buf, " "); s && argc < 63; s = strtok(NULL, " ")) argv[argc++] = s;
  argv[argc] = NULL;
  fflush(stdout);
  return vg_cli_main(argc, argv);
}

static int g_caller_sigint;
static void caller_handler(int s) { (void)s; g_caller_sigint++; }
static bool caller_handler_in_place(void) {
  struct sigaction cur;
  sigaction(SIGINT, NULL, &cur);
  return cur.sa_handler == caller_handler;
}

static bool read_scores(const char *path, char *out, size_t cap) {
  uint8_t *buf = NULL;
  size_t n = 0;
  if (vg_file_read_all(path, 1 << 24, &buf, &n) != VG_OK) return false;
  snprintf(out, cap, "%.*s", (int)n, buf);
  free(buf);
  return true;
}

int main(int argc, char **argv) {
  (void)argc;
  /* ---- refusals */
  size_t nb = ndefs();
  VG_CHECK(nb >= 4 && vg_method_find("fastflow") && vg_method_find("meanimage"), "%zu built-in methods before any registration",
           nb);
  refused(NULL, "NULL descriptor", "NULL");
  vg_method_def d = REG;
  d.name = NULL; refused(&d, "no name", "a NULL name");
  d.name = ""; refused(&d, "no name", "an empty name");
  const char *bad_names[] = {"-x", ".x", "a b", "a/b", "a=b", "tab\there", "\xc3\xa9t\xc3\xa9",
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 65 */};
  for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
    d.name = bad_names[i];
    char what[120];
    snprintf(what, sizeof what, "the name '%.20s'", bad_names[i]);
    refused(&d, "bad method name", what);
  }
  d = REG; d.create = NULL; refused(&d, "no constructor", "a descriptor without create");
  d = REG; d.config = NULL; refused(&d, "no config field table", "a descriptor without a config table");
  static const vg_cfg_field DUP[] = {{"input_size", VG_CFG_INT, VG_CFG_AT(regm, size), .idef = 32, .ilo = 16, .ihi = 256},
                                     {"input_size", VG_CFG_INT, VG_CFG_AT(regm, size), .idef = 32, .ilo = 16, .ihi = 256},
                                     {NULL}};
  d = REG; d.config = DUP; refused(&d, "twice", "a config table with a key twice");
  static const vg_cfg_field BADDEF[] = {{"input_size", VG_CFG_INT, VG_CFG_AT(regm, size), .idef = 8, .ilo = 16, .ihi = 256},
                                        {NULL}};
  d = REG; d.config = BADDEF; refused(&d, "default outside", "a config default outside its range");
  d = REG; d.summary = "two\nlines"; refused(&d, "one line", "a two-line summary");
  d = REG; d.quick = (vg_method_quick){.steps = 5, .batch = 0}; refused(&d, "quick schedule", "a quick schedule of batch 0");
  d = REG; d.quick = (vg_method_quick){.steps = -1, .batch = 2}; refused(&d, "quick schedule", "a quick schedule of -1 steps");
  d = REG; d.anomalib_infer = reg_infer; refused(&d, "go together", "anomalib_infer without anomalib_load");
  d = REG; d.name = "fastflow"; refused(&d, "already registered (built in)", "the built-in name fastflow");
  VG_CHECK(vg_method_find("regtest") == NULL, "nothing named regtest after the refusals");

  /* ---- a good one */
  VG_CHECK(vg_method_register(&REG) == VG_OK, "register regtest: %s", vg_last_error());
  const vg_method_def *const *defs = vg_method_defs();
  VG_CHECK(vg_method_find("regtest") == &REG && ndefs() == nb + 1 && defs[nb] == &REG && !defs[nb + 1],
           "vg_method_find / vg_method_defs see it, after the %zu built-in ones", nb);
  const char *const *names = vg_method_names();
  VG_CHECK(names[nb] && !strcmp(names[nb], "regtest") && !names[nb + 1], "vg_method_names ends with regtest");
  char list[1024];
  vg_method_list(list, sizeof list, " | ", false);
  VG_CHECK(strstr(list, "fastflow") && strstr(list, "| regtest"), "vg_method_list: %s", list);
  vg_method_list(list, sizeof list, ", ", true);
  VG_CHECK(!strstr(list, "regtest"), "not among the methods with an anomalib import: %s", list);
  vg_method_quick q = {0};
  VG_CHECK(vg_method_quick_schedule("regtest", &q) && q.steps == 2 && q.batch == 2, "its quick schedule");
  refused(&REG, "already registered (this descriptor, earlier)", "the same descriptor twice");
  d = REG; d.summary = "another"; refused(&d, "already registered (by an earlier call)", "another descriptor named regtest");

  vg_method *m = NULL;
  vg_status st = vg_method_create("regtest", NULL, &m);
  VG_CHECK(st == VG_OK && m && m->input_h == 32 && !strcmp(m->ops->name, "regtest"), "vg_method_create(\"regtest\")");
  char *cj = m ? m->ops->config_json(m) : NULL;
  VG_CHECK(cj && strstr(cj, "\"method\": \"regtest\""), "its config JSON names it");
  free(cj);
  vg_method_free(m);
  vg_json *bad = NULL;
  vg_json_parse("{\"input_size\": 1}", 17, NULL, &bad);
  st = vg_method_create("regtest", bad, &m);
  VG_CHECK(st == VG_ERR_ARG && !m && strstr(vg_last_error(), "input_size"), "its config table checks values: %s",
           vg_last_error());
  vg_json_free(bad);

  /* create() results missing what the drivers need: refused, freed */
  static const vg_method_def NOPRED = {.name = "regtest-nopredict", .create = reg_new_nopredict, .config = REG_CONFIG};
  static const vg_method_def NOSIZE = {.name = "regtest-nosize", .create = reg_new_nosize, .config = REG_CONFIG};
  static const vg_method_def NULLM = {.name = "regtest_null", .create = reg_new_null, .config = REG_CONFIG};
  VG_CHECK(vg_method_register(&NOPRED) == VG_OK && vg_method_register(&NOSIZE) == VG_OK &&
           vg_method_register(&NULLM) == VG_OK, "register three broken methods (their create() is checked later)");
  int f0 = g_frees;
  m = (vg_method *)1;
  st = vg_method_create("regtest-nopredict", NULL, &m);
  VG_CHECK(st == VG_ERR_ARG && !m && strstr(vg_last_error(), "without ops->predict") && g_frees == f0 + 1,
           "a method without predict is refused and freed: %s", vg_last_error());
  st = vg_method_create("regtest-nosize", NULL, &m);
  VG_CHECK(st == VG_ERR_ARG && !m && strstr(vg_last_error(), "input_h") && g_frees == f0 + 2,
           "a method without an input size is refused and freed: %s", vg_last_error());
  st = vg_method_create("regtest_null", NULL, &m);
  VG_CHECK(st == VG_ERR_ARG && !m && strstr(vg_last_error(), "no method"), "create() returning no method: %s", vg_last_error());

  /* ---- threads */
  size_t before = ndefs();
  for (int i = 0; i < NTHR * PER_THR; i++) {
    snprintf(g_thr_names[i], sizeof g_thr_names[i], "thr%d", i);
    g_thr_defs[i] = REG;
    g_thr_defs[i].name = g_thr_names[i];
  }
  pthread_t th[NTHR];
  for (int t = 0; t < NTHR; t++) pthread_create(&th[t], NULL, thr_register, (void *)(intptr_t)t);
  for (int t = 0; t < NTHR; t++) pthread_join(th[t], NULL);
  int found = 0;
  for (int i = 0; i < NTHR * PER_THR; i++) found += vg_method_find(g_thr_names[i]) == &g_thr_defs[i];
  VG_CHECK(g_thr_fail == 0 && found == NTHR * PER_THR && ndefs() == before + NTHR * PER_THR,
           "%d registrations from %d threads at once: all there (%d failed)", NTHR * PER_THR, NTHR, g_thr_fail);

  /* ---- vg_cli_main, twice in one process, one run interrupted */
  char tmp[] = "/tmp/vg_register_XXXXXX";
  VG_CHECK(mkdtemp(tmp) != NULL, "temp dir");
  struct sigaction ch = {.sa_handler = caller_handler}, prev;
  sigemptyset(&ch.sa_mask);
  sigaction(SIGINT, &ch, &prev);
  char line[1024];
  snprintf(line, sizeof line, "synth --out %s/data --categories woven --size 64 --train 6 --test 4", tmp);
  int rc = cli(line);
  VG_CHECK(rc == 0, "vg_cli_main synth -> %d", rc);
  VG_CHECK(cli("train regtest --help") == 0, "vg_cli_main train regtest --help (its config table)");
  snprintf(line, sizeof line, "train regtest --data %s/data --category woven --steps 3 --batch 2 --workers 1 --set interrupt=true "
           "--out %s/r0", tmp, tmp);
  rc = cli(line);
  VG_CHECK(rc == 130 && caller_handler_in_place() && g_caller_sigint == 0,
           "an interrupted train returns 130 and puts the caller's SIGINT handler back (rc %d)", rc);
  char scores[2][4096] = {"", ""};
  for (int k = 0; k < 2; k++) {
    snprintf(line, sizeof line, "train regtest --data %s/data --category woven --steps 3 --batch 2 --workers 1 --out %s/r%d", tmp,
             tmp, k + 1);
    rc = cli(line);
    char p[512];
    snprintf(p, sizeof p, "%s/r%d/train_log.jsonl", tmp, k + 1);
    char log[4096] = "";
    read_scores(p, log, sizeof log);
    int lines = 0;
    for (char *s = log; *s; s++) lines += *s == '\n';
    snprintf(p, sizeof p, "%s/r%d/scores.json", tmp, k + 1);
    VG_CHECK(rc == 0 && lines == 3 && read_scores(p, scores[k], sizeof scores[k]) && caller_handler_in_place(),
             "vg_cli_main train + test of regtest, call %d after the interrupted one: rc %d, %d steps logged, scores.json", k + 1,
             rc, lines);
  }
  VG_CHECK(scores[0][0] && !strcmp(scores[0], scores[1]), "the two in-process runs give identical scores.json");
  snprintf(line, sizeof line, "test --run %s/r1", tmp);
  rc = cli(line);
  snprintf(line, sizeof line, "%s/r1/metrics.json", tmp);
  VG_CHECK(rc == 0 && access(line, F_OK) == 0, "vg_cli_main test --run: metrics.json");
  sigaction(SIGINT, &prev, NULL);
  vg_test_tmp_done(tmp);

  /* ---- capacity */
  static vg_method_def many[VG_METHOD_MAX_REGISTERED];
  static char many_names[VG_METHOD_MAX_REGISTERED][16];
  int added = 0;
  st = VG_OK;
  for (int i = 0; i < VG_METHOD_MAX_REGISTERED && st == VG_OK; i++) {
    snprintf(many_names[i], sizeof many_names[i], "many%d", i);
    many[i] = REG;
    many[i].name = many_names[i];
    st = vg_method_register(&many[i]);
    added += st == VG_OK;
  }
  size_t registered = ndefs() - nb;
  VG_CHECK(st == VG_ERR_ARG && strstr(vg_last_error(), "registry is full") && registered == VG_METHOD_MAX_REGISTERED,
           "the %d-th registration is refused (registry full: %zu registered): %s", VG_METHOD_MAX_REGISTERED + 1, registered,
           vg_last_error());
  VG_CHECK(vg_method_list(list, sizeof list, " | ", false) == list && strlen(list) < sizeof list,
           "vg_method_list of %zu methods fits its buffer (truncated, terminated)", ndefs());

  /* ---- the program's version */
  char vigil[1024];
  if (vg_test_find_vigil(argv[0], vigil, sizeof vigil)) {
    char cmd[1100], want[64];
    snprintf(want, sizeof want, "vigil %s\n", VG_VERSION);
    const char *forms[] = {"--version", "version"};
    for (int i = 0; i < 2; i++) {
      snprintf(cmd, sizeof cmd, "'%s' %s", vigil, forms[i]);
      char *out = vg_test_run(cmd, &rc);
      VG_CHECK(out && rc == 0 && !strcmp(out, want), "vigil %s prints \"vigil %s\" (got \"%.*s\")", forms[i], VG_VERSION,
               out ? (int)strcspn(out, "\n") : 0, out ? out : "");
      free(out);
    }
    snprintf(cmd, sizeof cmd, "'%s' version extra", vigil);
    char *out = vg_test_run(cmd, &rc);
    VG_CHECK(rc == 2, "vigil version with an argument exits 2");
    free(out);
    VG_CHECK(!strcmp(vg_version(), VG_VERSION), "vg_version() = VG_VERSION = %s", VG_VERSION);
  } else {
    printf("SKIP vigil program not built beside the test\n");
  }
  return vg_test_finish();
}
