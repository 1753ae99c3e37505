/* test_cli_opts.c — every `vigil` command's option table (cli/opts.h), checked from the tables
 * themselves: `vigil options` prints each command's rows (name, alias, kind, accepted values),
 * and for every command and every row this test runs the real program:
 *   - `vigil CMD --help` (and -h): exit 0, the usage on stdout, naming every option and alias;
 *   - an unknown option: exit 2 naming it; a flag's missing value: exit 2 naming the flag;
 *   - bad numbers (junk, empty, fractions, hex, nan/inf, just outside each end, overflow):
 *     exit 2 naming the flag and its range, as the table states it;
 *   - a bad choice for an enum: exit 2 naming the flag and the value;
 *   - in-range values (each end of a range, each choice, a flag) pass the parser: `... --help`
 *     after them still exits 0.
 * A new option is tested as soon as it has a row; a command missing from `vigil options`
 * fails here. */
#include "tests/vgtest.h"
#include <inttypes.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_vigil[1100];
static char g_tmp[256] = "/tmp/vigil_test_cli_opts_XXXXXX";

/* Runs `vigil ARGS` (a timeout: a regression that accepts a value must not run for long;
 * the synthetic cache in the temp folder); *out / *err: stdout / stderr (malloc'd). */
static int run(const char *args, char **out, char **err) {
  char ef[400], full[4096];
  snprintf(ef, sizeof ef, "%s/stderr.txt", g_tmp);
  snprintf(full, sizeof full, "cd '%s' && VIGIL_CACHE='%s/cache' timeout 60 '%s' %s 2>'%s' </dev/null", g_tmp, g_tmp, g_vigil,
           args, ef);
  FILE *p = popen(full, "r");
  size_t cap = 1 << 16, n = 0, k;
  char *s = calloc(1, cap);
  int rc = -1;
  if (p) {
    while (s && (k = fread(s + n, 1, cap - n - 1, p)) > 0) {
      n += k;
      if (cap - n < 4096) { cap *= 2; s = realloc(s, cap); }
    }
    int st = pclose(p);
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  if (s) s[n] = 0;
  *out = s ? s : calloc(1, 1);
  *err = calloc(1, 1 << 16);
  FILE *f = fopen(ef, "rb");
  if (f) {
    size_t m = fread(*err, 1, (1 << 16) - 1, f);
    (*err)[m] = 0;
    fclose(f);
    for (char *q = *err; *q; q++)
      if (*q == '\n' && q[1]) *q = ' ';
  }
  return rc;
}

typedef struct { char cmd[32], example[64], name[48], alias[48], kind[16], range[160]; } row;

static int split(char *line, char **f, int max) {
  int n = 0;
  f[n++] = line;
  for (char *p = line; *p && n < max; p++)
    if (*p == '\t') { *p = 0; f[n++] = p + 1; }
  return n;
}

/* "CMD EXAMPLE" as the command line's start */
static void head(const row *r, char *b, size_t cap) { snprintf(b, cap, "%s %s", r->cmd, r->example); }

/* one value that must be refused: exit 2, stderr naming the flag and (want_range) the range */
static bool refused(const row *r, const char *value, bool want_range) {
  char h[200], args[800], *o, *e;
  head(r, h, sizeof h);
  snprintf(args, sizeof args, "%s %s '%s'", h, r->name, value);
  int rc = run(args, &o, &e);
  bool ok = rc == 2 && strstr(e, r->name) && (!want_range || strstr(e, r->range)) && !o[0];
  VG_CHECK(ok, "vigil %s %s '%s': exit 2 naming %s%s%s (rc %d: %.200s)", r->cmd, r->name, value, r->name,
           want_range ? " and " : "", want_range ? r->range : "", rc, e);
  free(o); free(e);
  return ok;
}

/* a value the parser takes: the --help after it answers 0 */
static void accepted(const row *r, const char *value) {
  char h[200], args[800], *o, *e;
  head(r, h, sizeof h);
  if (value) snprintf(args, sizeof args, "%s %s '%s' --help", h, r->name, value);
  else snprintf(args, sizeof args, "%s %s --help", h, r->name);
  int rc = run(args, &o, &e);
  VG_CHECK(rc == 0 && strstr(o, "usage") && !e[0], "vigil %s %s %s: accepted (--help after it: rc %d, %.200s)", r->cmd,
           r->name, value ? value : "", rc, e);
  free(o); free(e);
}

/* %.9g without a '+' (the strict parser takes no '+', in the exponent either) */
static void num(char *b, size_t cap, double x) {
  char t[64], *q = b;
  snprintf(t, sizeof t, "%.9g", x);
  for (const char *p = t; *p && q < b + cap - 1; p++)
    if (*p != '+') *q++ = *p;
  *q = 0;
}

static void check_option(const row *r) {
  char b[128];
  if (!strcmp(r->kind, "flag")) { accepted(r, NULL); return; }
  {  /* the value is missing */
    char h[200], args[800], *o, *e;
    head(r, h, sizeof h);
    snprintf(args, sizeof args, "%s %s", h, r->name);
    int rc = run(args, &o, &e);
    VG_CHECK(rc == 2 && strstr(e, r->name) && strstr(e, "needs a value"), "vigil %s %s (no value): exit 2 naming it (rc %d: %.160s)",
             r->cmd, r->name, rc, e);
    free(o); free(e);
  }
  if (!strcmp(r->kind, "int") || !strcmp(r->kind, "i64")) {
    long long lo, hi;
    if (!VG_CHECK(sscanf(r->range, "an integer in [%lld, %lld]", &lo, &hi) == 2 && lo <= hi, "%s %s: range '%s' reads",
                  r->cmd, r->name, r->range)) return;
    static const char *const junk[] = {"abc", "", "1.5", "0x10", "1e3", " 5", "5x", "+5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) refused(r, junk[i], true);
    if (lo > INT64_MIN) { snprintf(b, sizeof b, "%lld", lo - 1); refused(r, b, true); }
    if (hi < INT64_MAX) { snprintf(b, sizeof b, "%lld", hi + 1); refused(r, b, true); }
    snprintf(b, sizeof b, "%lld", lo); accepted(r, b);
    snprintf(b, sizeof b, "%lld", hi); accepted(r, b);
  } else if (!strcmp(r->kind, "u64")) {
    unsigned long long hi;
    if (!VG_CHECK(sscanf(r->range, "an integer in [0, %llu]", &hi) == 1, "%s %s: range '%s' reads", r->cmd, r->name, r->range))
      return;
    static const char *const junk[] = {"abc", "", "-1", "1.5", "0x10", "18446744073709551616"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) refused(r, junk[i], true);
    if (hi < UINT64_MAX) { snprintf(b, sizeof b, "%llu", hi + 1); refused(r, b, true); }
    accepted(r, "0");
    snprintf(b, sizeof b, "%llu", hi); accepted(r, b);
  } else if (!strcmp(r->kind, "f64")) {
    char lb, hb;
    double lo, hi;
    if (!VG_CHECK(sscanf(r->range, "a number in %c%lf, %lf%c", &lb, &lo, &hi, &hb) == 4 && lo <= hi,
                  "%s %s: range '%s' reads", r->cmd, r->name, r->range)) return;
    static const char *const junk[] = {"abc", "", "nan", "inf", "-inf", "0x1p-2", "1e999", "1,5"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) refused(r, junk[i], true);
    num(b, sizeof b, lb == '(' ? lo : lo - (fabs(lo) + 1)); refused(r, b, true);
    num(b, sizeof b, hb == ')' ? hi : hi + (fabs(hi) + 1)); refused(r, b, true);
    if (lb == '[') { num(b, sizeof b, lo); accepted(r, b); }
    if (hb == ']') { num(b, sizeof b, hi); accepted(r, b); }
    num(b, sizeof b, lo / 2 + hi / 2); accepted(r, b);
  } else if (!strcmp(r->kind, "enum")) {
    refused(r, "no-such-value", false);
    char choices[160];
    snprintf(choices, sizeof choices, "%s", r->range);
    for (char *t = strtok(choices, "|"); t; t = strtok(NULL, "|")) accepted(r, t);
  }
}

static void check_command(const row *c, const row *rows, int n) {
  char h[200], args[800], *o, *e;
  head(c, h, sizeof h);
  for (int k = 0; k < 2; k++) {
    snprintf(args, sizeof args, "%s %s", h, k ? "-h" : "--help");
    int rc = run(args, &o, &e);
    bool all = rc == 0 && strstr(o, "usage") && !e[0];
    const char *missing = "";
    for (int i = 0; i < n && all; i++) {
      if (strcmp(rows[i].cmd, c->cmd) || !strcmp(rows[i].kind, "command")) continue;
      if (!strstr(o, rows[i].name)) { all = false; missing = rows[i].name; }
      else if (strcmp(rows[i].alias, "-") && !strstr(o, rows[i].alias)) { all = false; missing = rows[i].alias; }
    }
    VG_CHECK(all, "vigil %s %s: usage on stdout naming every option of its table (rc %d; missing '%s'; %.100s)", h,
             k ? "-h" : "--help", rc, missing, e);
    free(o); free(e);
  }
  snprintf(args, sizeof args, "%s --no-such-option", h);
  int rc = run(args, &o, &e);
  VG_CHECK(rc == 2 && strstr(e, "--no-such-option") && !o[0], "vigil %s --no-such-option: exit 2 naming it (rc %d: %.160s)", h,
           rc, e);
  free(o); free(e);
}

int main(int argc, char **argv) {
  (void)argc;
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  if (!g_vigil[0]) {
    printf("SKIP vigil option tables (no vigil binary next to the test)\n");
    return vg_test_finish();
  }
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  char *o, *e;
  int rc = run("options", &o, &e);
  VG_CHECK(rc == 0 && !e[0], "vigil options: exit 0 (rc %d: %.200s)", rc, e);
  row *rows = calloc(1024, sizeof *rows);
  int n = 0;
  for (char *line = strtok(o, "\n"); line && n < 1024; line = strtok(NULL, "\n")) {
    char *f[8];
    if (split(line, f, 8) != 6) { VG_CHECK(false, "vigil options: 6 fields per line: %s", line); continue; }
    row *r = &rows[n++];
    snprintf(r->cmd, sizeof r->cmd, "%s", f[0]);
    snprintf(r->example, sizeof r->example, "%s", f[1]);
    snprintf(r->name, sizeof r->name, "%s", f[2]);
    snprintf(r->alias, sizeof r->alias, "%s", f[3]);
    snprintf(r->kind, sizeof r->kind, "%s", f[4]);
    snprintf(r->range, sizeof r->range, "%s", f[5]);
  }
  free(o); free(e);
  /* every command is there, with the options a user relies on */
  static const char *const cmds[] = {"train", "test", "predict", "metrics", "convert", "info", "smoke", "features",
                                     "distill", "bench", "synth"};
  int n_opt = 0;
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
    bool found = false;
    for (int k = 0; k < n; k++) found |= !strcmp(rows[k].cmd, cmds[i]) && !strcmp(rows[k].kind, "command");
    VG_CHECK(found, "vigil options lists the command '%s'", cmds[i]);
  }
  for (int k = 0; k < n; k++) n_opt += strcmp(rows[k].kind, "command") != 0;
  VG_CHECK(n_opt >= 80, "vigil options: %d option rows (the commands had 90 options when this test was written)", n_opt);
  static const char *const threads_in[] = {"train", "test", "predict", "distill", "bench", "synth"};
  for (size_t i = 0; i < sizeof threads_in / sizeof *threads_in; i++) {
    bool found = false;
    for (int k = 0; k < n; k++)
      found |= !strcmp(rows[k].cmd, threads_in[i]) && !strcmp(rows[k].name, "--threads") &&
               !strcmp(rows[k].range, "an integer in [0, 256]");
    VG_CHECK(found, "vigil %s --threads: one range for every command, [0, 256]", threads_in[i]);
  }
  for (int k = 0; k < n; k++) {
    if (!strcmp(rows[k].kind, "command")) check_command(&rows[k], rows, n);
    else check_option(&rows[k]);
  }
  free(rows);
  vg_test_tmp_done(g_tmp);
  return vg_test_finish();
}
