#include "tests/vgtest.h"
#include <stdarg.h>
#include "nn/zip.h"
#include "base/file.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int vg_test_passed, vg_test_failed;

int vg_test_check(int cond, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf(cond ? "OK " : "NOT OK ");
  vprintf(fmt, ap);
  if (!cond) printf("  (%s:%d)", file, line);
  printf("\n");
  va_end(ap);
  if (cond) vg_test_passed++; else vg_test_failed++;
  fflush(stdout);
  return cond;
}

int vg_test_close(const float *got, const float *want, int64_t n, double rtol, double atol,
                  const char *file, int line, const char *what) {
  double maxabs = 0, maxrel = 0;
  int64_t bad = -1;
  for (int64_t i = 0; i < n; i++) {
    double g = got[i], w = want[i], d = fabs(g - w);
    int ok = (d <= atol + rtol * fabs(w)) || (isinf(g) && isinf(w) && (g > 0) == (w > 0));
    if (isnan(g) || isnan(w)) ok = isnan(g) && isnan(w);
    if (!ok && bad < 0) bad = i;
    if (d > maxabs && !isnan(d)) maxabs = d;
    double r = d / (fabs(w) > 1e-30 ? fabs(w) : 1e-30);
    if (fabs(w) > atol && r > maxrel && !isnan(r)) maxrel = r;
  }
  if (bad >= 0)
    return vg_test_check(0, file, line, "%s: n=%lld max_abs=%.3g max_rel=%.3g first bad [%lld] got %.9g want %.9g",
                         what, (long long)n, maxabs, maxrel, (long long)bad, (double)got[bad], (double)want[bad]);
  return vg_test_check(1, file, line, "%s: n=%lld max_abs=%.3g max_rel=%.3g", what, (long long)n, maxabs, maxrel);
}

int vg_test_finish(void) {
  printf("%d passed, %d failed\n", vg_test_passed, vg_test_failed);
  return vg_test_failed ? 1 : 0;
}

int vg_test_long(void) {
  const char *e = getenv("VIGIL_TEST_LONG");
  return e && e[0] == '1';
}

static const char *root_path(const char *prefix, const char *name) {
  static char buf[4096];
  const char *root = getenv("VIGIL_ROOT");
  snprintf(buf, sizeof buf, "%s%s%s%s", root ? root : ".", "/", prefix, name);
  return buf;
}

/* The test data live in the repository, so a clone tests without anything beside it: large
 * files as they are, and the folders of many small files packed into one zip each (a file
 * costs a file-system block; an archive costs its bytes): tests/data/conformance.zip (the
 * PngSuite / JPEG conformance files, see tests/data/README.md) and tests/fixtures-N.zip
 * (every fixture the tools/gen_*.py generators wrote; tools/pack_test_data.py writes both). An archive is extracted once per program into a temp folder removed at exit. */
typedef struct {
  const char *zip;    /* relative to the repository root */
  char dir[64];       /* where it was extracted */
  pid_t pid;
  int state;          /* 0 not tried, 1 extracted, -1 failed */
  char path[4200];    /* the last path returned inside dir */
} packed_dir;

static packed_dir g_conformance = {.zip = "tests/data/conformance.zip"};
static packed_dir g_fixtures = {.zip = "tests/fixtures-%d.zip"};   /* parts 1, 2, ... (each < 1 MiB) */

static void packed_cleanup(packed_dir *d) {
  if (!d->dir[0] || getpid() != d->pid) return;   /* not from a forked child */
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d->dir);
}
static void packed_cleanup_all(void) {
  packed_cleanup(&g_conformance);
  packed_cleanup(&g_fixtures);
}

/* Extracts the archive at zpath into dir; false (and a message) when it cannot. */
static bool packed_extract_one(const char *zpath, const char *dir) {
  vg_zip *z = NULL;
  if (vg_zip_open(zpath, NULL, &z) != VG_OK) {
    fprintf(stderr, "test data: %s\n", vg_last_error());
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < vg_zip_count(z) && ok; i++) {
    const vg_zip_entry *e = vg_zip_entry_at(z, i);
    if (strstr(e->name, "..") || e->name[0] == '/') continue;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, e->name);
    char *sl = strrchr(path, '/');
    *sl = 0;
    vg_test_mkdirs(path);
    *sl = '/';
    if (!sl[1]) continue;   /* a folder entry */
    uint8_t *buf = NULL;
    size_t n = 0;
    FILE *f = NULL;
    ok = vg_zip_read(z, e, &buf, &n) == VG_OK && (f = fopen(path, "wb")) && fwrite(buf, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    free(buf);
    if (!ok) fprintf(stderr, "test data: cannot extract %s: %s\n", e->name, vg_last_error());
  }
  vg_zip_free(z);
  return ok;
}

/* Extracts d's archive (d->zip with a %d: its parts 1, 2, ... up to the first missing one)
 * into a temp folder; false (and a message) when it cannot. */
static bool packed_extract(packed_dir *d) {
  if (d->state) return d->state > 0;
  d->state = -1;
  snprintf(d->dir, sizeof d->dir, "/tmp/vigil_testdata_XXXXXX");
  if (!mkdtemp(d->dir)) { d->dir[0] = 0; return false; }
  d->pid = getpid();
  static bool registered;
  if (!registered) atexit(packed_cleanup_all);
  registered = true;
  bool ok = true, parts = strstr(d->zip, "%d") != NULL;
  int k = 1;
  for (; ok; k++) {
    char rel[256], zpath[4200];
    snprintf(rel, sizeof rel, d->zip, k);
    snprintf(zpath, sizeof zpath, "%s", root_path("", rel));
    if (parts && k > 1 && access(zpath, F_OK) != 0) break;   /* the parts end */
    ok = packed_extract_one(zpath, d->dir);
    if (!parts) break;
  }
  d->state = ok ? 1 : -1;
  return ok;
}

/* prefix/name when it is on disk (e.g. a folder just written by a tools/ generator), else
 * name inside d's extracted archive */
static const char *packed_path(packed_dir *d, const char *prefix, const char *name) {
  const char *p = root_path(prefix, name);
  if (access(p, F_OK) == 0 || !packed_extract(d)) return p;
  snprintf(d->path, sizeof d->path, "%s/%s", d->dir, name);
  return d->path;
}

const char *vg_test_fixture(const char *name) { return packed_path(&g_fixtures, "tests/fixtures/", name); }
const char *vg_test_shared(const char *name) { return packed_path(&g_conformance, "tests/data/", name); }

char *vg_test_run(const char *cmd, int *rc) {
  size_t len = strlen(cmd) + 8;
  char *full = malloc(len);
  if (!full) { *rc = -1; return NULL; }
  snprintf(full, len, "%s 2>&1", cmd);
  FILE *p = popen(full, "r");
  free(full);
  if (!p) { *rc = -1; return NULL; }
  size_t cap = 1 << 16, n = 0, k;
  char *s = malloc(cap);
  while (s && (k = fread(s + n, 1, cap - n - 1, p)) > 0) {
    n += k;
    if (cap - n < 4096) {
      char *t = realloc(s, cap * 2);
      if (!t) break;
      s = t;
      cap *= 2;
    }
  }
  if (s) s[n] = 0;
  int st = pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
  return s;
}

bool vg_test_find_vigil(const char *argv0, char *out, size_t cap) {
  char p[4096];
  snprintf(p, sizeof p, "%s", argv0);
  char *sl = strrchr(p, '/');
  out[0] = 0;
  if (!sl) return false;
  *sl = 0;
  char q[4200];
  snprintf(q, sizeof q, "%s/../vigil", p);
  char *abs = realpath(q, NULL);
  if (abs && access(abs, X_OK) == 0 && strlen(abs) < cap) snprintf(out, cap, "%s", abs);
  free(abs);
  return out[0] != 0;
}

void vg_test_mkdirs(const char *path) { (void)vg_mkdir_p(path); }

void vg_test_tmp_done(const char *dir) {
  const char *keep = getenv("VIGIL_TEST_KEEP");
  if (keep && keep[0] == '1') { printf("kept %s\n", dir); return; }
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}
