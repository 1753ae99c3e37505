/* test_resume.c — crash safety and exact resume of `vigil train` (cli/train.c, cli/rundir.c),
 * run as a subprocess (<BUILD>/vigil next to <BUILD>/tests/) on a tiny MVTec-like folder:
 *   kill points   the crash-test hook (VIGIL_FAULT=<point>:<n>, base/file.h) _exit(137)s a
 *                 training at a named step of a durable write: before/after the write, the
 *                 fsync, the rename and the folder fsync of config.json,
 *                 checkpoint.safetensors and state.json, before / half-way through a
 *                 train_log.jsonl line, after the log's fsync, and in the log rewrite of a
 *                 resume. After each kill `vigil train --resume` must end with the final
 *                 checkpoint's tensors, its run state and the train_log losses / lr equal,
 *                 bit for bit, to an uninterrupted run's, and no temp file left.
 *                 CFLOW-AD: one kill per point name (at its mid-run pass); CFLOW-AD and
 *                 FastFlow: a chain of kills at every point name, each resume killed again;
 *                 EfficientAD (seconds a step): a chain of kills at the points that matter to
 *                 a method (fit_begin statistics lost / committed without state.json, a
 *                 partial log line, a checkpoint ahead of state.json, fit_end's quantiles).
 *                 VIGIL_TEST_LONG=1: every single pass of every point (CFLOW-AD and FastFlow:
 *                 103 kill runs each), all three methods. VIGIL_TEST_METHODS=cflow,... limits
 *                 the kill tests to some methods.
 *   state         state.json behind the checkpoint: resumed from the checkpoint, the
 *                 message names both steps; a checkpoint whose run state disagrees with
 *                 the method's own step counter, and a state.json past a missing
 *                 checkpoint: errors naming both steps; a checkpoint without a run state
 *                 (an older Vigil) resumes from state.json.
 *   log           a log with a partial last line, no newline at all, empty, a 200 KB line,
 *                 lines past the checkpoint, missing: the resumed log == the uninterrupted
 *                 one (for the lines the damage left).
 *   lock          a run directory whose vigil.lock (or another file in it, or the folder)
 *                 another process holds (flock): train and train --resume refuse, naming
 *                 the holder's pid, and write nothing.
 *   sparse log    a 64 GiB sparse train_log.jsonl: resumed in seconds, == uninterrupted.
 *   config edit   config.json edited before --resume (steps, batch, seed, val_fraction, a
 *                 method config key): refused naming the key, checkpoint untouched; restored,
 *                 the run resumes == uninterrupted.
 *   temp files    Vigil's own "<run file>.tmp[<digits>]" leftovers are removed on the next
 *                 start, nothing else is. */
#include "tests/vgtest.h"
#include "datasets/datasets.h"
#include "datasets/image/image.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "base/json.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[256] = "/tmp/vigil_test_resume_XXXXXX";
static char g_vigil[1100], g_data[512];

typedef struct {
  const char *method;
  char flags[1024];   /* method + schedule flags of a new run */
} mcase;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static bool exists(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

static void write_text(const char *path, const char *text, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(text, 1, n, f);
  fclose(f);
}

static void sh(const char *fmt, const char *a, const char *b) {
  char cmd[3000];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  if (system(cmd) != 0) fprintf(stderr, "failed: %s\n", cmd);
}

/* The training log without the timing fields: "step", "loss", "lr" of each line, which a
 * resumed run must reproduce exactly. */
static char *log_core(const char *run) {
  char p[1024];
  snprintf(p, sizeof p, "%s/train_log.jsonl", run);
  char *t = read_text(p);
  if (!t) return NULL;
  char *out = malloc(strlen(t) + 2), *o = out;
  for (char *line = t; *line;) {
    char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    char *cut = strstr(line, ", \"step_ms\"");
    if (cut && cut < line + len) len = (size_t)(cut - line);
    memcpy(o, line, len);
    o += len;
    *o++ = '\n';
    if (!nl) break;
    line = nl + 1;
  }
  *o = 0;
  free(t);
  return out;
}

/* The lines of a log core from step `from` on. */
static const char *log_from(const char *core, int64_t from) {
  char key[48];
  snprintf(key, sizeof key, "{\"step\": %lld,", (long long)from);
  const char *p = strstr(core, key);
  return p ? p : core + strlen(core);
}

/* Every tensor of two checkpoints bit-identical (names, dtypes, shapes, bytes) and the same
 * run state. why: the first difference. */
static bool ckpt_same(const char *run_a, const char *run_b, char *why, size_t cap) {
  char pa[1024], pb[1024];
  snprintf(pa, sizeof pa, "%s/checkpoint.safetensors", run_a);
  snprintf(pb, sizeof pb, "%s/checkpoint.safetensors", run_b);
  vg_st_file *a = NULL, *b = NULL;
  snprintf(why, cap, "identical");
  bool same = vg_st_open(pa, &a) == VG_OK && vg_st_open(pb, &b) == VG_OK;
  if (!same) { snprintf(why, cap, "cannot open: %s", vg_last_error()); goto out; }
  if (vg_st_count(a) != vg_st_count(b)) {
    snprintf(why, cap, "%d vs %d tensors", vg_st_count(a), vg_st_count(b));
    same = false;
    goto out;
  }
  const char *ra = vg_st_meta(a, VG_CHECKPOINT_RUN_STATE), *rb = vg_st_meta(b, VG_CHECKPOINT_RUN_STATE);
  if (!ra || !rb || strcmp(ra, rb)) {
    snprintf(why, cap, "run state %s vs %s", ra ? ra : "(none)", rb ? rb : "(none)");
    same = false;
    goto out;
  }
  for (int i = 0; same && i < vg_st_count(a); i++) {
    const char *nm = vg_st_name(a, i);
    vg_tensor *x = NULL, *y = NULL;
    if (vg_st_find(b, nm) < 0 || vg_st_get(a, nm, VG_ST_AS_STORED, &x) != VG_OK ||
        vg_st_get(b, nm, VG_ST_AS_STORED, &y) != VG_OK || x->dtype != y->dtype || x->ndim != y->ndim ||
        vg_numel(x) != vg_numel(y) ||
        memcmp(vg_data(x), vg_data(y), (size_t)vg_numel(x) * vg_dtype_size(x->dtype)) != 0) {
      snprintf(why, cap, "tensor %s differs", nm);
      same = false;
    }
    vg_tensor_free(x);
    vg_tensor_free(y);
  }
out:
  vg_st_close(a);
  vg_st_close(b);
  return same;
}

/* How many of Vigil's temp files are in the run directory. */
static int tmp_files(const char *run) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '\\.tmp[0-9]*$'", run);
  FILE *p = popen(cmd, "r");
  int n = 0;
  if (p) {
    if (fscanf(p, "%d", &n) != 1) n = 0;
    pclose(p);
  }
  return n;
}

static void fresh_cmd(char *cmd, size_t cap, const mcase *mc, const char *run, const char *env, bool resume) {
  snprintf(cmd, cap, "%s '%s' train %s --data '%s' --category widget %s --threads 2 --workers 1 --out '%s' --no-test%s",
           env, g_vigil, mc->method, g_data, mc->flags, run, resume ? " --resume" : "");
}

/* --resume: the run's own config when it has one; else (killed before config.json) the
 * command that started it, with --resume (nothing to continue: it starts); a run never
 * started: that command. */
static void resume_cmd(char *cmd, size_t cap, const mcase *mc, const char *run, const char *env) {
  char p[1024], l[1024];
  snprintf(p, sizeof p, "%s/config.json", run);
  snprintf(l, sizeof l, "%s/vigil.lock", run);
  if (exists(p))
    snprintf(cmd, cap, "%s '%s' train %s --resume --out '%s' --threads 2 --workers 1 --no-test", env, g_vigil, mc->method, run);
  else
    fresh_cmd(cmd, cap, mc, run, env, exists(l));
}

/* The uninterrupted run; *trace: the crash-test points it passed, in order (malloc'd text). */
static bool reference(const mcase *mc, const char *ref, char **trace) {
  char cmd[4096], env[1200], tp[1024];
  snprintf(tp, sizeof tp, "%s/%s.trace", g_tmp, mc->method);
  snprintf(env, sizeof env, "VIGIL_FAULT_TRACE='%s'", tp);
  sh("rm -rf '%s' '%s'", ref, tp);
  fresh_cmd(cmd, sizeof cmd, mc, ref, env, false);
  int rc;
  double t0 = now_s();
  char *o = vg_test_run(cmd, &rc);
  *trace = read_text(tp);
  bool ok = rc == 0 && *trace && **trace;
  if (!VG_CHECK(ok, "%s: uninterrupted reference run (%.1f s)", mc->method, now_s() - t0)) printf("%s\n", o ? o : "");
  free(o);
  return ok;
}

/* distinct point names of a trace, in order of first appearance, with their counts */
typedef struct { char name[128]; int count; } point;
static int trace_points(const char *trace, point *pts, int cap) {
  int n = 0;
  for (const char *l = trace; l && *l;) {
    const char *nl = strchr(l, '\n');
    size_t len = nl ? (size_t)(nl - l) : strlen(l);
    char nm[128];
    snprintf(nm, sizeof nm, "%.*s", (int)len, l);
    int k = 0;
    while (k < n && strcmp(pts[k].name, nm)) k++;
    if (k == n && n < cap) { snprintf(pts[n].name, sizeof pts[n].name, "%s", nm); pts[n++].count = 0; }
    if (k < n) pts[k].count++;
    if (!nl) break;
    l = nl + 1;
  }
  return n;
}

static int trace_len(const char *trace) {
  int n = 0;
  for (const char *c = trace; c && *c; c++) n += *c == '\n';
  return n;
}

/* Resumes until the run completes (at most 3 times); true when it did. */
static bool finish(const mcase *mc, const char *run, char **last_out) {
  char cmd[4096];
  int rc = -1;
  for (int t = 0; t < 3 && rc != 0; t++) {
    resume_cmd(cmd, sizeof cmd, mc, run, "");
    free(*last_out);
    *last_out = vg_test_run(cmd, &rc);
  }
  return rc == 0;
}

/* The run equals the reference: checkpoint tensors + run state, log losses/lr, state.json,
 * no temp file. */
static bool matches(const char *ref, const char *run, const char *ref_log, char *why, size_t cap) {
  if (!ckpt_same(ref, run, why, cap)) return false;
  char *lg = log_core(run);
  bool ok = lg && !strcmp(lg, ref_log);
  if (!ok) snprintf(why, cap, "train_log differs:\n%s---- want:\n%s", lg ? lg : "(none)", ref_log);
  free(lg);
  char pa[1100], pb[1100];
  snprintf(pa, sizeof pa, "%s/state.json", ref);
  snprintf(pb, sizeof pb, "%s/state.json", run);
  char *sa = read_text(pa), *sb = read_text(pb);
  if (ok && (!sa || !sb || strcmp(sa, sb))) { ok = false; snprintf(why, cap, "state.json %s vs %s", sb ? sb : "-", sa ? sa : "-"); }
  free(sa);
  free(sb);
  if (ok && tmp_files(run)) { ok = false; snprintf(why, cap, "%d temp files left", tmp_files(run)); }
  return ok;
}

/* Kills a new run at the n-th pass of `point` ("*" = any), resumes it to the end, compares. */
static bool single_kill(const mcase *mc, const char *ref, const char *ref_log, const char *point, int n, int *kills) {
  char run[600], cmd[4096], env[300], why[4096];
  snprintf(run, sizeof run, "%s/%s-kill", g_tmp, mc->method);
  sh("rm -rf '%s'%s", run, "");
  snprintf(env, sizeof env, "VIGIL_FAULT='%s:%d'", point, n);
  fresh_cmd(cmd, sizeof cmd, mc, run, env, false);
  int rc;
  char *o = vg_test_run(cmd, &rc), *o2 = NULL;
  bool done = finish(mc, run, &o2);
  bool ok = rc == 137 && done && matches(ref, run, ref_log, why, sizeof why);
  if (rc == 137) (*kills)++;
  if (!VG_CHECK(ok, "%s: killed at %s:%d (exit %d), resumed: checkpoint tensors, run state and train_log losses "
                "== uninterrupted run", mc->method, point, n, rc))
    printf("kill run:\n%s\nresume:\n%s\n%s\n", o ? o : "", o2 ? o2 : "", rc == 137 && done ? why : "");
  free(o);
  free(o2);
  return ok;
}

/* A chain: each process (a new run, then resumes) is killed at the first pass of the next
 * point of the list; then a clean resume; the result must equal the reference. */
static void chain(const mcase *mc, const char *ref, const char *ref_log, const char *const *points, int npoints) {
  char run[600], cmd[4096], env[300], why[4096];
  snprintf(run, sizeof run, "%s/%s-chain", g_tmp, mc->method);
  sh("rm -rf '%s'%s", run, "");
  int kills = 0;
  char killed[4096] = "", *o = NULL;
  double t0 = now_s();
  for (int i = 0; i < npoints; i++) {
    snprintf(env, sizeof env, "VIGIL_FAULT='%s:1'", points[i]);
    resume_cmd(cmd, sizeof cmd, mc, run, env);
    int rc;
    free(o);
    o = vg_test_run(cmd, &rc);
    if (rc == 137) {
      kills++;
      size_t k = strlen(killed);
      snprintf(killed + k, sizeof killed - k, "%s%s", k ? " " : "", points[i]);
    } else {
      VG_CHECK(0, "%s chain: the run was killed at %s (exit %d)", mc->method, points[i], rc);
      printf("%s\n", o ? o : "");
    }
  }
  bool done = finish(mc, run, &o);
  bool ok = done && matches(ref, run, ref_log, why, sizeof why);
  if (!VG_CHECK(ok && kills == npoints, "%s: a chain of %d kills, each resume killed again (%s), then resumed: == "
                "uninterrupted run, bit for bit (%.1f s)", mc->method, kills, killed, now_s() - t0))
    printf("%s\n%s\n", o ? o : "", done ? why : "(did not finish)");
  free(o);
}

/* ----------------------------------------------------------------- data */
/* widget: 9 train/good, 2 test/good, 1 test/crack (+ mask), 32 x 32 RGB */
static void build_mvtec(const char *root) {
  uint8_t rgb[32 * 32 * 3], m[32 * 32] = {0};
  char p[1024];
  const char *dirs[] = {"train/good", "test/good", "test/crack", "ground_truth/crack"};
  for (int d = 0; d < 4; d++) {
    snprintf(p, sizeof p, "%s/widget/%s", root, dirs[d]);
    vg_test_mkdirs(p);
  }
  for (int i = 0; i < 12; i++) {
    for (int k = 0; k < 32 * 32 * 3; k++) rgb[k] = (uint8_t)((k * 7 + i * 13 + (k / 96) * (i + 1)) % 251);
    const char *d = i < 9 ? "train/good" : i < 11 ? "test/good" : "test/crack";
    snprintf(p, sizeof p, "%s/widget/%s/%03d.png", root, d, i < 9 ? i : i - 9);
    vg_image im = {32, 32, 3, 8, rgb};
    if (vg_png_save(p, &im) != VG_OK) fprintf(stderr, "%s\n", vg_last_error());
  }
  for (int k = 100; k < 200; k++) m[k] = 255;
  snprintf(p, sizeof p, "%s/widget/ground_truth/crack/002_mask.png", root);
  vg_image mk = {32, 32, 1, 8, m};
  if (vg_png_save(p, &mk) != VG_OK) fprintf(stderr, "%s\n", vg_last_error());
}

/* ----------------------------------------------------------------- kill points */
static void test_kill_points(mcase *mc, bool per_point, const char *const *chain_pts, int nchain) {
  char ref[600];
  snprintf(ref, sizeof ref, "%s/%s-ref", g_tmp, mc->method);
  char *trace = NULL;
  if (!reference(mc, ref, &trace)) { free(trace); return; }
  char *ref_log = log_core(ref);
  point pts[64];
  int np = trace_points(trace, pts, 64), kills = 0, cases = 0, passed = 0;
  double t0 = now_s();
  if (vg_test_long()) {   /* every pass of every point */
    int T = trace_len(trace);
    for (int i = 1; i <= T; i++, cases++) passed += single_kill(mc, ref, ref_log, "*", i, &kills);
  } else if (per_point) {   /* each point name once, at its middle pass (mid-run) */
    for (int k = 0; k < np; k++, cases++) passed += single_kill(mc, ref, ref_log, pts[k].name, (pts[k].count + 1) / 2, &kills);
  }
  if (cases)
    printf("  %s: %d kill runs (%d point names, %d passes in a run), %d killed, %d resumed bit-identical (%.1f s)\n",
           mc->method, cases, np, trace_len(trace), kills, passed, now_s() - t0);
  if (nchain) chain(mc, ref, ref_log, chain_pts, nchain);
  free(ref_log);
  free(trace);
}

/* every point, in an order where each kill can happen in a resumed process: the points
 * that commit nothing first, then one commit per kill */
static const char *const FULL_CHAIN[] = {
  "config.json.tmp", "config.json.write", "config.json.fsync", "config.json.rename",
  "checkpoint.safetensors.tmp", "checkpoint.safetensors.write", "checkpoint.safetensors.fsync",
  "checkpoint.safetensors.rename",   /* fit_begin's checkpoint committed, no state.json yet */
  "train_log.jsonl.append", "train_log.jsonl.partial",   /* leaves half a line */
  "train_log.jsonl.tmp", "train_log.jsonl.write", "train_log.jsonl.fsync", "train_log.jsonl.rename",
  "train_log.jsonl.dirsync",   /* the resume's log rewrite */
  "train_log.jsonl.sync", "checkpoint.safetensors.dirsync",   /* checkpoint ahead of state.json */
  "state.json.tmp", "state.json.write", "state.json.fsync", "state.json.rename", "state.json.dirsync",
};
/* EfficientAD (a step costs seconds on a CPU): the points where a method's own state matters */
static const char *const EFFAD_CHAIN[] = {
  "checkpoint.safetensors.fsync",    /* fit_begin's statistics (teacher mean/std) lost: recomputed */
  "checkpoint.safetensors.rename",   /* fit_begin committed, no state.json */
  "train_log.jsonl.partial",         /* step 0 half logged */
  "state.json.dirsync",              /* step 1 committed with its state.json */
  "checkpoint.safetensors.dirsync",  /* step 2 (lr x0.1 from step 1 on) committed, state.json at 1 */
  "state.json.tmp",                  /* fit_end (map quantiles) committed, state.json at 1 */
};

/* ----------------------------------------------------------------- state / log / lock */
/* Rewrites run/checkpoint.safetensors with the same tensors and another run state in its
 * metadata (NULL: none, as an older Vigil wrote it). need_counter: only when the method
 * keeps a step counter. */
static bool resave(const char *run, const char *run_state, bool need_counter) {
  char p[1100], p2[1200];
  snprintf(p, sizeof p, "%s/checkpoint.safetensors", run);
  snprintf(p2, sizeof p2, "%s.new", p);
  vg_st_file *f = NULL;
  if (vg_st_open(p, &f) != VG_OK) return false;
  if (need_counter && vg_st_find(f, "model.vigil_state") < 0) { vg_st_close(f); return false; }
  int n = vg_st_count(f);
  const char **nm = calloc((size_t)n, sizeof *nm);
  vg_tensor **ts = calloc((size_t)n, sizeof *ts);
  bool ok = true;
  for (int i = 0; i < n && ok; i++) {
    nm[i] = vg_st_name(f, i);
    ok = vg_st_get(f, nm[i], VG_ST_AS_STORED, &ts[i]) == VG_OK;
  }
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_begin_object(&w);
  for (int i = 0; i < vg_st_meta_count(f); i++) {
    bool rs = !strcmp(vg_st_meta_key(f, i), VG_CHECKPOINT_RUN_STATE);
    if (rs && !run_state) continue;
    vg_jw_key(&w, vg_st_meta_key(f, i));
    vg_jw_string(&w, rs ? run_state : vg_st_meta_value(f, i));
  }
  vg_jw_end_object(&w);
  char *meta = vg_jw_finish(&w, NULL);
  ok = ok && meta && vg_st_save(p2, n, nm, ts, meta) == VG_OK && rename(p2, p) == 0;
  for (int i = 0; i < n; i++) vg_tensor_free(ts[i]);
  free(ts);
  free(nm);
  free(meta);
  vg_st_close(f);
  return ok;
}

/* A CFLOW run killed right after its step-4 checkpoint committed (state.json still at 2
 * with --save-every 2). */
static bool interrupted_run(const mcase *mc, const char *run) {
  char cmd[4096];
  sh("rm -rf '%s'%s", run, "");
  fresh_cmd(cmd, sizeof cmd, mc, run, "VIGIL_FAULT='checkpoint.safetensors.rename:3'", false);
  int rc;
  char *o = vg_test_run(cmd, &rc);
  bool ok = rc == 137;
  if (!ok) printf("%s\n", o ? o : "");
  free(o);
  return ok;
}

static void test_state_and_log(mcase *mc) {
  char ref[600], run[600], p[1200], cmd[4096];
  snprintf(ref, sizeof ref, "%s/%s-ref", g_tmp, mc->method);
  snprintf(run, sizeof run, "%s/%s-state", g_tmp, mc->method);
  char *ref_log = log_core(ref);
  if (!ref_log || !interrupted_run(mc, run)) {
    VG_CHECK(0, "%s: an interrupted run to resume", mc->method);
    free(ref_log);
    return;
  }
  /* state.json behind the checkpoint: the message names both, the checkpoint wins */
  resume_cmd(cmd, sizeof cmd, mc, run, "");
  int rc;
  char *o = vg_test_run(cmd, &rc), why[4096];
  VG_CHECK(rc == 0 && o && strstr(o, "says step 2") && strstr(o, "holds step 4") && matches(ref, run, ref_log, why, sizeof why),
           "%s: state.json at step 2, checkpoint at 4: resumed from 4, the message names both steps", mc->method);
  free(o);

  /* the training log, damaged: each variant on a copy of the interrupted run */
  char base[600];
  snprintf(base, sizeof base, "%s/%s-base", g_tmp, mc->method);
  if (!interrupted_run(mc, base)) { free(ref_log); return; }
  const char *before = ref_log, *at4 = log_from(ref_log, 4);
  size_t n_before = (size_t)(at4 - before);
  char *big = malloc(300000);
  enum { PARTIAL, NO_NEWLINE, EMPTY, HUGE, PAST, MISSING, NV };
  static const char *names[NV] = {"a partial last line", "no newline at all", "an empty file", "a 200 KB line and a 100 KB partial one",
                                  "lines past the checkpoint and a repeated step", "no file"};
  for (int v = 0; v < NV; v++) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", run, base, run);
    if (system(cmd) != 0) continue;
    snprintf(p, sizeof p, "%s/train_log.jsonl", run);
    char *cur = read_text(p);   /* the log the kill left: steps 0..3, complete lines */
    size_t cn = cur ? strlen(cur) : 0;
    char *t = malloc(cn + 700000);
    size_t tn = 0;
    const char *want = before;   /* the lines the resumed log must keep before step 4 */
    size_t want_n = n_before;
    switch (v) {
      case PARTIAL:
        tn = (size_t)sprintf(t, "%s{\"step\": 4, \"loss\": 1.2", cur ? cur : "");
        break;
      case NO_NEWLINE:
        tn = (size_t)sprintf(t, "{\"step\": 0, \"loss\": 3.5, \"lr\": 0.001");
        want_n = 0;
        break;
      case EMPTY:
        want_n = 0;
        break;
      case HUGE: {
        const char *l2 = log_from(cur ? cur : "", 2);   /* huge line between steps 1 and 2 */
        size_t k = (size_t)(l2 - cur);
        memcpy(t, cur, k);
        tn = k;
        memset(t + tn, 'x', 200000);
        tn += 200000;
        t[tn++] = '\n';
        memcpy(t + tn, l2, strlen(l2));
        tn += strlen(l2);
        memset(t + tn, '{', 100000);   /* and a partial one */
        tn += 100000;
        break;
      }
      case PAST:
        tn = (size_t)sprintf(t, "%s{\"step\": 1, \"loss\": 9}\n{\"step\": 4, \"loss\": 9}\n{\"step\": 5, \"loss\": 9}\nnot json\n",
                             cur ? cur : "");
        break;
      case MISSING:
        want_n = 0;
        break;
    }
    if (v == MISSING) remove(p);
    else write_text(p, t, tn);
    free(cur);
    free(t);
    resume_cmd(cmd, sizeof cmd, mc, run, "");
    o = vg_test_run(cmd, &rc);
    char *lg = log_core(run);
    /* want: the kept lines before step 4, then the resumed steps 4.. */
    snprintf(big, 300000, "%.*s%s", (int)want_n, want, at4);
    bool ok = rc == 0 && lg && !strcmp(lg, big) && ckpt_same(ref, run, why, sizeof why);
    if (!VG_CHECK(ok, "%s: resume with %s in train_log.jsonl: the log holds %s, then steps 4.. as uninterrupted; "
                  "checkpoint identical", mc->method, names[v], want_n ? "steps 0..3 unchanged" : "nothing before step 4"))
      printf("rc %d\n%s\nlog:\n%s\nwant:\n%s\n", rc, o ? o : "", lg ? lg : "(none)", big);
    free(lg);
    free(o);
  }
  free(big);

  /* a checkpoint whose run state disagrees with the method's step counter (CFLOW-AD's
   * "vigil_state"): an error naming both steps */
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", run, base, run);
  if (system(cmd) == 0) {
    if (resave(run, "{\"step\": 6, \"fit_begin\": true, \"fit_end\": false}", true)) {
      resume_cmd(cmd, sizeof cmd, mc, run, "");
      o = vg_test_run(cmd, &rc);
      VG_CHECK(rc != 0 && o && strstr(o, "step 6") && strstr(o, "step 4") && strstr(o, "cannot be reconciled"),
               "%s: run state step 6 vs the method's counter at 4 in one checkpoint: refused naming both (rc %d)",
               mc->method, rc);
      if (rc == 0) printf("%s\n", o ? o : "");
      free(o);
    } else {
      printf("SKIP %s: no step counter in its checkpoint to contradict\n", mc->method);
    }
  }
  /* a checkpoint of an older Vigil (no run state) with a state.json that agrees: resumed
   * from state.json's step, saying so, to the same end */
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", run, base, run);
  snprintf(p, sizeof p, "%s/state.json", run);
  if (system(cmd) == 0 && resave(run, NULL, false)) {
    const char *js = "{\"step\": 4, \"fit_begin\": true, \"fit_end\": false}\n";
    write_text(p, js, strlen(js));
    resume_cmd(cmd, sizeof cmd, mc, run, "");
    o = vg_test_run(cmd, &rc);
    if (!VG_CHECK(rc == 0 && o && strstr(o, "older Vigil") && matches(ref, run, ref_log, why, sizeof why),
                  "%s: a checkpoint without a run state + state.json at its step: resumed from state.json, == uninterrupted "
                  "(rc %d)", mc->method, rc))
      printf("%s\n%s\n", o ? o : "", why);
    free(o);
  }
  /* state.json past a missing checkpoint */
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s' && rm '%s/checkpoint.safetensors'", run, base, run, run);
  if (system(cmd) == 0) {
    resume_cmd(cmd, sizeof cmd, mc, run, "");
    o = vg_test_run(cmd, &rc);
    VG_CHECK(rc != 0 && o && strstr(o, "says step 2") && strstr(o, "no checkpoint"),
             "%s: state.json at step 2 without a checkpoint: refused naming the step (rc %d)", mc->method, rc);
    free(o);
  }
  free(ref_log);
}

/* config.json edited between the interrupted run and --resume (the schedule, the data
 * split, a method config key, a key added): refused naming the key and both values, with
 * the checkpoint untouched; config.json restored, the same run resumes == uninterrupted.
 * (Before: the edit was silently continued, e.g. steps 6 -> 8 or batch 2 -> 3 ran a
 * schedule no uninterrupted run has.) --threads/--workers in config.json may change. */
static void test_config_edit(mcase *mc) {
  char ref[600], run[600], p[1200], cmd[4096], why[4096];
  snprintf(ref, sizeof ref, "%s/%s-ref", g_tmp, mc->method);
  snprintf(run, sizeof run, "%s/%s-cfgedit", g_tmp, mc->method);
  char *ref_log = log_core(ref);
  if (!ref_log || !interrupted_run(mc, run)) {
    VG_CHECK(0, "%s: an interrupted run to resume", mc->method);
    free(ref_log);
    return;
  }
  snprintf(p, sizeof p, "%s/config.json", run);
  char *orig = read_text(p);
  char cmp[2600];   /* the checkpoint must stay byte-identical to the one the kill left */
  snprintf(cmp, sizeof cmp, "cp '%s/checkpoint.safetensors' '%s.ck0' && cmp -s '%s/checkpoint.safetensors' '%s.ck0'", run, run,
           run, run);
  bool ck0 = system(cmp) == 0;
  snprintf(cmp, sizeof cmp, "cmp -s '%s/checkpoint.safetensors' '%s.ck0'", run, run);
  static const struct { const char *from, *to, *key; } edits[] = {
    {"\"steps\": 6", "\"steps\": 8", "'steps' is 8"},
    {"\"batch\": 2", "\"batch\": 3", "'batch' is 3"},
    {"\"seed\": 0", "\"seed\": 7", "'seed' is 7"},
    {"\"val_fraction\": 0.1", "\"val_fraction\": 0.25", "'val_fraction' is 0.25"},
    {"\"condition_vector\": 4", "\"condition_vector\": 8", "'condition_vector' is 8"},
    {"\"fiber_batch\": 16", "\"fiber_batch\": 32", "'fiber_batch' is 32"},
  };
  for (size_t e = 0; orig && e < sizeof edits / sizeof *edits; e++) {
    const char *at = strstr(orig, edits[e].from);
    if (!at) { printf("SKIP %s: config.json has no %s\n", mc->method, edits[e].from); continue; }
    size_t n = strlen(orig), fl = strlen(edits[e].from), tl = strlen(edits[e].to);
    char *t = malloc(n + tl + 1);
    memcpy(t, orig, (size_t)(at - orig));
    memcpy(t + (at - orig), edits[e].to, tl);
    strcpy(t + (at - orig) + tl, at + fl);
    write_text(p, t, strlen(t));
    free(t);
    resume_cmd(cmd, sizeof cmd, mc, run, "");
    int rc;
    char *o = vg_test_run(cmd, &rc);
    bool ok = rc != 0 && o && strstr(o, "edited after the checkpoint") && strstr(o, edits[e].key) && ck0 &&
              system(cmp) == 0;
    if (!VG_CHECK(ok, "%s: config.json edited (%s -> %s) before --resume: refused naming the key, checkpoint "
                  "unchanged (rc %d)", mc->method, edits[e].from, edits[e].to, rc))
      printf("%s\n", o ? o : "");
    free(o);
  }
  if (orig) write_text(p, orig, strlen(orig));
  resume_cmd(cmd, sizeof cmd, mc, run, "");
  int rc;
  char *o = vg_test_run(cmd, &rc);
  if (!VG_CHECK(rc == 0 && matches(ref, run, ref_log, why, sizeof why),
                "%s: config.json restored: the run resumes == uninterrupted (rc %d)", mc->method, rc))
    printf("%s\n%s\n", o ? o : "", why);
  free(o);
  free(orig);
  free(ref_log);
}

/* A hostile train_log.jsonl of 64 GiB (sparse: zeros after the real lines, or zeros only):
 * --resume read all of it (a 20 GiB one took 90 s; 4 TiB, hours). Now the scan stops when
 * every kept step has its line, or after 64 MiB more than those lines can span: the resume
 * takes seconds and ends == uninterrupted (the log: the surviving lines, then steps 4..). */
static void test_log_sparse(mcase *mc) {
  char ref[600], run[600], p[1200], cmd[4096], why[4096];
  snprintf(ref, sizeof ref, "%s/%s-ref", g_tmp, mc->method);
  snprintf(run, sizeof run, "%s/%s-sparselog", g_tmp, mc->method);
  char *ref_log = log_core(ref);
  for (int v = 0; v < 2 && ref_log; v++) {   /* 0: real lines then a 64 GiB tail, 1: zeros only */
    if (!interrupted_run(mc, run)) { VG_CHECK(0, "%s: an interrupted run to resume", mc->method); break; }
    snprintf(p, sizeof p, "%s/train_log.jsonl", run);
    if (v == 1) {
      unlink(p);
      int fd = open(p, O_CREAT | O_WRONLY, 0644);
      if (fd >= 0) close(fd);
    }
    if (truncate(p, (off_t)64 << 30) != 0) {
      printf("SKIP %s: cannot make a 64 GiB sparse log here (%s)\n", mc->method, strerror(errno));
      break;
    }
    resume_cmd(cmd, sizeof cmd, mc, run, "");
    double t0 = now_s();
    int rc;
    char *o = vg_test_run(cmd, &rc);
    double dt = now_s() - t0;
    char *lg = log_core(run);
    bool ok = rc == 0 && dt < 30 && ckpt_same(ref, run, why, sizeof why) && lg &&
              !strcmp(lg, v == 0 ? ref_log : log_from(ref_log, 4));
    if (!VG_CHECK(ok, "%s: --resume with a 64 GiB sparse train_log.jsonl (%s): %.1f s, checkpoint == uninterrupted, log "
                  "%s (rc %d)", mc->method, v == 0 ? "the real lines, then zeros" : "zeros only", dt,
                  v == 0 ? "== uninterrupted" : "steps 4.. only", rc))
      printf("%s\n%s\nlog:\n%s\n", o ? o : "", why, lg ? lg : "(none)");
    free(lg);
    free(o);
    sh("rm -rf '%s'%s", run, "");   /* never leave a 64 GiB file behind */
  }
  free(ref_log);
}

static void test_lock_and_tmp(mcase *mc) {
  char run[600], base[600], p[1200], cmd[4096];
  snprintf(run, sizeof run, "%s/%s-lock", g_tmp, mc->method);
  snprintf(base, sizeof base, "%s/%s-base", g_tmp, mc->method);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", run, base, run);
  if (system(cmd) != 0) { VG_CHECK(0, "copy of an interrupted run"); return; }
  snprintf(p, sizeof p, "%s/vigil.lock", run);
  remove(p);   /* a lock file holding no pid: the holder is found through /proc/locks */
  int fd = open(p, O_RDWR | O_CREAT, 0644);
  bool held = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
  char ck[1200], *before = NULL, *after = NULL;
  snprintf(ck, sizeof ck, "%s/state.json", run);
  before = read_text(ck);
  char pid[32];
  snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
  int rc;
  resume_cmd(cmd, sizeof cmd, mc, run, "");
  char *o = vg_test_run(cmd, &rc);
  VG_CHECK(held && rc != 0 && o && strstr(o, pid) && strstr(o, "in use"),
           "train --resume into a run whose vigil.lock another process holds: refused naming its %s (rc %d)", pid, rc);
  if (rc == 0 || !o || !strstr(o, pid)) printf("%s\n", o ? o : "");
  free(o);
  fresh_cmd(cmd, sizeof cmd, mc, run, "", false);
  o = vg_test_run(cmd, &rc);
  after = read_text(ck);
  VG_CHECK(held && rc != 0 && o && strstr(o, pid) && before && after && !strcmp(before, after) &&
               tmp_files(run) == 0 && exists(ck),
           "a new train --out into the locked run: refused naming the %s, the run's files untouched (rc %d)", pid, rc);
  free(o);
  free(after);
  if (fd >= 0) close(fd);   /* released */
  /* a lock another tool holds on another file of the run, or on the folder itself */
  const char *others[] = {".lock", "."};
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s", run, others[i]);
    int ofd = open(p, i ? O_RDONLY | O_DIRECTORY : O_RDWR | O_CREAT, 0644);
    bool h = ofd >= 0 && flock(ofd, LOCK_EX | LOCK_NB) == 0;
    resume_cmd(cmd, sizeof cmd, mc, run, "");
    o = vg_test_run(cmd, &rc);
    VG_CHECK(h && rc != 0 && o && strstr(o, pid), "train --resume while another process flocks %s: refused naming its %s (rc %d)",
             i ? "the run folder" : "<run>/.lock", pid, rc);
    free(o);
    if (ofd >= 0) close(ofd);
  }
  snprintf(p, sizeof p, "%s/.lock", run);
  remove(p);

  /* leftovers of a crash: Vigil's temp names go, everything else stays */
  static const char *const ours[] = {"checkpoint.safetensors.tmp", "state.json.tmp4242", "config.json.tmp1",
                                     "train_log.jsonl.tmp99", NULL};
  static const char *const theirs[] = {"notes.tmp", "mydata.json.tmp1", "state.json.tmpx", "checkpoint.safetensors.tmp.bak",
                                       "state.json.tmp12.keep", NULL};
  for (int i = 0; ours[i]; i++) { snprintf(p, sizeof p, "%s/%s", run, ours[i]); write_text(p, "junk", 4); }
  for (int i = 0; theirs[i]; i++) { snprintf(p, sizeof p, "%s/%s", run, theirs[i]); write_text(p, "keep", 4); }
  snprintf(p, sizeof p, "%s/metrics.json.tmp7", run);   /* a directory with a temp name: not ours */
  mkdir(p, 0755);
  resume_cmd(cmd, sizeof cmd, mc, run, "");
  o = vg_test_run(cmd, &rc);
  bool gone = true, kept = true;
  for (int i = 0; ours[i]; i++) { snprintf(p, sizeof p, "%s/%s", run, ours[i]); gone &= !exists(p); }
  for (int i = 0; theirs[i]; i++) { snprintf(p, sizeof p, "%s/%s", run, theirs[i]); kept &= exists(p); }
  snprintf(p, sizeof p, "%s/metrics.json.tmp7", run);
  kept &= exists(p);
  VG_CHECK(rc == 0 && gone && kept, "resume removes Vigil's leftover temp files (%s, ...) and keeps other files "
           "(notes.tmp, mydata.json.tmp1, state.json.tmpx, ...) (rc %d)", ours[0], rc);
  if (rc != 0) printf("%s\n", o ? o : "");
  free(o);
  free(before);
}

int main(int argc, char **argv) {
  (void)argc;
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  if (!g_vigil[0]) {
    printf("SKIP crash/resume checks (no vigil binary next to the test)\n");
  } else {
    snprintf(g_data, sizeof g_data, "%s/mvtec", g_tmp);
    build_mvtec(g_data);
    /* tiny configs: 32 x 32 inputs (EfficientAD: its minimum 256), 8 training images, a
     * checkpoint every step or two, crossing an epoch boundary (4 batches an epoch) */
    mcase ff = {"fastflow", "--backbone resnet18 --set input_size=32 --set flow_steps=1 --set hidden_ratio=0.0625 "
                            "--batch 2 --steps 6 --save-every 1"};
    mcase cf = {"cflow", "--backbone resnet18 --set input_size=32 --set 'layers=[\"layer1\"]' --set condition_vector=4 "
                         "--set coupling_blocks=1 --set permute_soft=false --set fiber_batch=16 --batch 2 --steps 6 --save-every 1"};
    mcase ea = {"efficientad", ""};
    snprintf(ea.flags, sizeof ea.flags, "--set teacher=random --set out_channels=8 --penalty '%s/widget/test/good' "
             "--batch 1 --steps 2 --save-every 1", g_data);
    int nfull = (int)(sizeof FULL_CHAIN / sizeof FULL_CHAIN[0]);
    const char *only = getenv("VIGIL_TEST_METHODS");   /* e.g. "cflow,fastflow": a subset, for debugging */
#define WANT(m) (!only || strstr(only, m))
    if (WANT("cflow")) test_kill_points(&cf, true, FULL_CHAIN, nfull);
    if (WANT("fastflow")) test_kill_points(&ff, false, FULL_CHAIN, nfull);
    /* EfficientAD, 2 steps: 4 commits (fit_begin, steps 1 and 2, fit_end); the full chain's
     * last 3 points would find the run complete */
    if (WANT("efficientad") && vg_test_long()) test_kill_points(&ea, false, FULL_CHAIN, nfull - 3);
    else if (WANT("efficientad")) test_kill_points(&ea, false, EFFAD_CHAIN, (int)(sizeof EFFAD_CHAIN / sizeof EFFAD_CHAIN[0]));
    /* the state / log / lock checks on CFLOW-AD (cheapest), --save-every 2 */
    mcase cf2 = cf;
    snprintf(cf2.flags, sizeof cf2.flags, "%s", cf.flags);
    char *se = strstr(cf2.flags, "--save-every 1");
    if (se) se[13] = '2';
    char ref2[600], *tr = NULL;
    snprintf(ref2, sizeof ref2, "%s/cflow-ref", g_tmp);
    if (reference(&cf2, ref2, &tr)) {
      test_state_and_log(&cf2);
      test_config_edit(&cf2);
      test_log_sparse(&cf2);
      test_lock_and_tmp(&cf2);
    }
    free(tr);
  }
  vg_test_tmp_done(g_tmp);
  return vg_test_finish();
}
