/* test_file.c — base/file.h's folder and path helpers: vg_path_dirname on the POSIX
 * dirname cases, vg_mkdir_p (nested, existing, trailing and doubled slashes, a file or a
 * dangling link in the way, an unwritable parent, long paths) and vg_mkdir_parents. */
#include "tests/vgtest.h"
#include "base/file.h"
#include <sys/stat.h>
#include <unistd.h>

static char g_root[256];

static bool is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static const char *P(const char *rel) {
  static char buf[4][8192];
  static int k;
  k = (k + 1) & 3;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_root, rel);
  return buf[k];
}

static void test_dirname(void) {
  static const char *cases[][2] = {
      {"a/b/c", "a/b"}, {"a/b/", "a"}, {"a//b", "a"}, {"/x", "/"}, {"x", "."}, {"", "."}, {"/", "/"},
      {"//x", "/"}, {"a//", "."}, {"/a/b.txt", "/a"}, {"./f", "."}, {"../f", ".."}, {"a/b//c//", "a/b"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[64];
    bool ok = vg_path_dirname(cases[i][0], buf, sizeof buf);
    VG_CHECK(ok && !strcmp(buf, cases[i][1]), "dirname(\"%s\") = \"%s\" (want \"%s\")", cases[i][0], buf, cases[i][1]);
  }
  char small[4];
  VG_CHECK(!vg_path_dirname("abcd/e", small, sizeof small) && small[0] == 0, "dirname: too small a buffer -> false, \"\"");
  VG_CHECK(vg_path_dirname("abc/e", small, sizeof small) && !strcmp(small, "abc"), "dirname: an exact fit");
}

static void test_mkdir(void) {
  VG_CHECK(vg_mkdir_p(P("a/b/c")) == VG_OK && is_dir(P("a/b/c")), "mkdir_p: three new levels");
  VG_CHECK(vg_mkdir_p(P("a/b/c")) == VG_OK, "mkdir_p: an existing folder is fine");
  VG_CHECK(vg_mkdir_p(P("a/d/")) == VG_OK && is_dir(P("a/d")), "mkdir_p: a trailing slash");
  VG_CHECK(vg_mkdir_p(P("a//e///f")) == VG_OK && is_dir(P("a/e/f")), "mkdir_p: doubled slashes");
  VG_CHECK(vg_mkdir_p("/") == VG_OK, "mkdir_p(\"/\")");
  VG_CHECK(vg_mkdir_p("") != VG_OK, "mkdir_p(\"\") refused: %s", vg_last_error());
  FILE *f = fopen(P("a/file"), "w");
  if (f) fclose(f);
  vg_status st = vg_mkdir_p(P("a/file/sub"));
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "a/file: cannot create folder") &&
               strstr(vg_last_error(), "regular file is in the way"),
           "mkdir_p: a file in the way names it: %s", vg_last_error());
  st = vg_mkdir_p(P("a/file"));
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "in the way"), "mkdir_p: the path itself a file: %s", vg_last_error());
  VG_CHECK(symlink(P("nowhere"), P("a/dangling")) == 0, "a dangling symbolic link");
  st = vg_mkdir_p(P("a/dangling/x"));
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "a/dangling: cannot create folder"),
           "mkdir_p: a dangling link in the way: %s", vg_last_error());
  VG_CHECK(symlink(P("a/b"), P("a/link")) == 0 && vg_mkdir_p(P("a/link/new")) == VG_OK && is_dir(P("a/b/new")),
           "mkdir_p: through a link to a folder");
  if (geteuid() != 0) {   /* root writes anywhere */
    VG_CHECK(mkdir(P("ro"), 0555) == 0, "a read-only folder");
    st = vg_mkdir_p(P("ro/x/y"));
    VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "ro/x: cannot create folder (Permission denied)"),
             "mkdir_p: the first folder that cannot be made is named: %s", vg_last_error());
  }
  st = vg_mkdir_p("/proc/vigil_test_no/such");   /* /proc takes no folders, even from root */
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "/proc/vigil_test_no: cannot create folder ("),
           "mkdir_p: the first folder that cannot be made is named: %s", vg_last_error());
  /* longer than the 2048-byte buffer of an old copy (PATH_MAX is 4096) */
  char rel[4000];
  size_t k = 0;
  k += (size_t)snprintf(rel, sizeof rel, "long");
  while (k + 60 < 3800) k += (size_t)snprintf(rel + k, sizeof rel - k, "/%s", "d123456789d123456789d123456789d123456789");
  st = vg_mkdir_p(P(rel));
  VG_CHECK(st == VG_OK && is_dir(P(rel)), "mkdir_p: a %zu-byte path (%s)", strlen(P(rel)), st == VG_OK ? "made" : vg_last_error());
  /* parents */
  VG_CHECK(vg_mkdir_parents(P("p/q/r.txt")) == VG_OK && is_dir(P("p/q")) && !is_dir(P("p/q/r.txt")),
           "mkdir_parents: the folders of a file path, not the file");
  VG_CHECK(vg_mkdir_parents("relative-name.txt") == VG_OK && vg_mkdir_parents("/top.txt") == VG_OK,
           "mkdir_parents: nothing to make for \"name\" and \"/name\"");
  st = vg_mkdir_parents(P("a/file/x.txt"));
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "in the way"), "mkdir_parents: a file in the way: %s", vg_last_error());
}

int main(void) {
  snprintf(g_root, sizeof g_root, "%s/vigil_file_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(g_root)) { perror("mkdtemp"); return 1; }
  test_dirname();
  test_mkdir();
  vg_test_tmp_done(g_root);
  return vg_test_finish();
}
