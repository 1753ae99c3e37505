/* file.c — whole-file reads that refuse non-regular files, atomic writes (see file.h). */
#include "base/file.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- fault injection */
static pthread_once_t g_fault_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_fault_mu = PTHREAD_MUTEX_INITIALIZER;
static bool g_fault_on;              /* VIGIL_FAULT or VIGIL_FAULT_TRACE set */
static char g_fault_name[256];       /* the point to fail at ("*" = any) */
static long g_fault_n, g_fault_hits; /* fail at the n-th pass; passes so far */
static const char *g_fault_trace;

static void fault_init(void) {
  const char *f = getenv("VIGIL_FAULT"), *t = getenv("VIGIL_FAULT_TRACE");
  if (t && *t) { g_fault_trace = t; g_fault_on = true; }
  const char *colon = f ? strrchr(f, ':') : NULL;
  if (colon && colon > f && (size_t)(colon - f) < sizeof g_fault_name) {
    char *end;
    long n = strtol(colon + 1, &end, 10);
    if (n >= 1 && !*end) {
      memcpy(g_fault_name, f, (size_t)(colon - f));
      g_fault_name[colon - f] = 0;
      g_fault_n = n;
      g_fault_on = true;
    }
  }
}

_Noreturn void vg_fault_exit(void) { _exit(137); }

bool vg_fault_fires(const char *path, const char *phase) {
  pthread_once(&g_fault_once, fault_init);
  if (!g_fault_on) return false;
  const char *base = path ? strrchr(path, '/') : NULL;
  base = base ? base + 1 : (path ? path : "");
  char point[512];
  snprintf(point, sizeof point, "%s.%s", base, phase);
  bool fire = false;
  pthread_mutex_lock(&g_fault_mu);
  if (g_fault_trace) {
    int fd = open(g_fault_trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      char line[520];
      int k = snprintf(line, sizeof line, "%s\n", point);
      if (write(fd, line, (size_t)k) < 0) { /* a trace is best effort */ }
      close(fd);
    }
  }
  if (g_fault_n > 0 && (!strcmp(g_fault_name, "*") || !strcmp(g_fault_name, point)))
    fire = ++g_fault_hits == g_fault_n;
  pthread_mutex_unlock(&g_fault_mu);
  return fire;
}

void vg_fault_point(const char *path, const char *phase) {
  if (vg_fault_fires(path, phase)) vg_fault_exit();
}

const char *vg_file_kind(unsigned mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISREG(mode)) return "a regular file";
  return "not a regular file";
}

vg_status vg_file_open_read(const char *path, int *fd, uint64_t *size) {
  *fd = -1;
  *size = 0;
  if (!path || !*path) return vg_fail(VG_ERR_ARG, "empty file name");
  /* O_NONBLOCK: opening a FIFO with no writer must not hang; cleared again below */
  int f = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (f < 0) return vg_fail(VG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(f, &sb) != 0) {
    vg_status st = vg_fail(VG_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    close(f);
    return st;
  }
  if (!S_ISREG(sb.st_mode)) {
    close(f);
    return vg_fail(VG_ERR_IO, "%s: is %s, not a regular file", path, vg_file_kind(sb.st_mode));
  }
  int fl = fcntl(f, F_GETFL);
  if (fl >= 0) fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
  *fd = f;
  *size = sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
  return VG_OK;
}

vg_status vg_file_read_all(const char *path, size_t max_n, uint8_t **buf, size_t *n) {
  *buf = NULL;
  *n = 0;
  int fd;
  uint64_t size;
  vg_status st = vg_file_open_read(path, &fd, &size);
  if (st) return st;
  if (size > max_n) {
    close(fd);
    return vg_fail(VG_ERR_LIMIT, "%s: file is %llu bytes, over the limit of %zu", path, (unsigned long long)size,
                   max_n);
  }
  uint8_t *data = malloc((size_t)size + 1);
  if (!data) {
    close(fd);
    return vg_fail(VG_ERR_NOMEM, "%s: out of memory reading %llu bytes", path, (unsigned long long)size);
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, data + got, (size_t)size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { st = vg_fail(VG_ERR_IO, "%s: read failed: %s", path, strerror(errno)); break; }
    if (r == 0) { st = vg_fail(VG_ERR_IO, "%s: read failed (file shrank to %zu bytes)", path, got); break; }
    got += (size_t)r;
  }
  close(fd);
  if (st) { free(data); return st; }
  data[got] = 0;
  *buf = data;
  *n = got;
  return VG_OK;
}

vg_status vg_file_fsync_dir(const char *path) {
  char *dir = strdup(path);
  if (!dir) return vg_fail(VG_ERR_NOMEM, "out of memory");
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  vg_status st = VG_OK;
  if (fd < 0) st = vg_fail(VG_ERR_IO, "cannot open directory %s to fsync it: %s", dir, strerror(errno));
  else {
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
      st = vg_fail(VG_ERR_IO, "fsync of directory %s failed: %s", dir, strerror(errno));
    close(fd);
  }
  free(dir);
  return st;
}

vg_status vg_file_write_atomic(const char *path, const void *buf, size_t n) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) return vg_fail(VG_ERR_NOMEM, "%s: out of memory", path);
  snprintf(tmp, plen + 32, "%s.tmp%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    vg_status st = vg_fail(VG_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    free(tmp);
    return st;
  }
  vg_fault_point(path, "tmp");
  vg_status st = VG_OK;
  const uint8_t *p = buf;
  size_t left = n;
  while (left) {
    ssize_t r = write(fd, p, left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { st = vg_fail(VG_ERR_IO, "%s: write failed: %s", path, strerror(errno)); break; }
    p += r;
    left -= (size_t)r;
  }
  if (!st) vg_fault_point(path, "write");
  if (!st && fsync(fd) != 0) st = vg_fail(VG_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
  if (close(fd) != 0 && !st) st = vg_fail(VG_ERR_IO, "%s: close failed: %s", path, strerror(errno));
  if (!st) vg_fault_point(path, "fsync");
  if (!st && rename(tmp, path) != 0) st = vg_fail(VG_ERR_IO, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
  if (st) unlink(tmp);
  free(tmp);
  if (st) return st;
  vg_fault_point(path, "rename");
  st = vg_file_fsync_dir(path);
  if (!st) vg_fault_point(path, "dirsync");
  return st;
}

/* ---------------------------------------------------------------- folders and paths */
bool vg_path_dirname(const char *path, char *buf, size_t cap) {
  if (cap) buf[0] = 0;
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;          /* the name's trailing slashes */
  while (n > 0 && path[n - 1] != '/') n--;          /* the name */
  const char *dir = path;
  if (n == 0) dir = ".", n = 1;                     /* "x" */
  else {
    while (n > 1 && path[n - 1] == '/') n--;        /* the separator ("a//b") */
  }
  if (n + 1 > cap) return false;
  memcpy(buf, dir, n);
  buf[n] = 0;
  return true;
}

vg_status vg_mkdir_p(const char *path) {
  if (!path || !*path) return vg_fail(VG_ERR_ARG, "empty folder name");
  char *buf = strdup(path);
  if (!buf) return vg_fail(VG_ERR_NOMEM, "out of memory");
  vg_status st = VG_OK;
  for (char *p = buf + 1; st == VG_OK; p++) {
    if (*p != '/' && *p) continue;
    char c = *p;
    *p = 0;
    if (mkdir(buf, 0755) != 0) {
      int e = errno;
      struct stat sb;
      if (e != EEXIST) st = vg_fail(VG_ERR_IO, "%s: cannot create folder (%s)", buf, strerror(e));
      else if (stat(buf, &sb) != 0)   /* a dangling symbolic link */
        st = vg_fail(VG_ERR_IO, "%s: cannot create folder (%s)", buf, strerror(errno));
      else if (!S_ISDIR(sb.st_mode))
        st = vg_fail(VG_ERR_IO, "%s: cannot create folder (%s is in the way)", buf, vg_file_kind(sb.st_mode));
    }
    *p = c;
    if (!c) break;
  }
  free(buf);
  return st;
}

vg_status vg_mkdir_parents(const char *path) {
  if (!path) return vg_fail(VG_ERR_ARG, "empty file name");
  char *dir = malloc(strlen(path) + 2);
  if (!dir) return vg_fail(VG_ERR_NOMEM, "out of memory");
  vg_path_dirname(path, dir, strlen(path) + 2);
  vg_status st = !strcmp(dir, ".") || !strcmp(dir, "/") ? VG_OK : vg_mkdir_p(dir);
  free(dir);
  return st;
}
