/* rundir.c — run directory, config.json, dataset opening (rundir.h). */
#include "cli/rundir.h"
#include "cli/args.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "datasets/image/image.h"
#include "base/file.h"
#include "tensor/tensor.h"

const char *vg_run_path(const char *dir, const char *name) {
  static _Thread_local char buf[4][2048];
  static _Thread_local int k;
  k = (k + 1) & 3;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

vg_status vg_run_write_text(const char *path, const char *text) {
  return vg_file_write_atomic(path, text, strlen(text));
}

/* The locks /proc/locks lists (flock, POSIX and OFD; holders, not waiters). */
typedef struct { long pid; unsigned maj, min; unsigned long long ino; } lock_entry;
static int proc_locks(lock_entry *e, int cap) {
  FILE *f = fopen("/proc/locks", "re");
  if (!f) return 0;
  char line[512];
  int n = 0;
  while (n < cap && fgets(line, sizeof line, f)) {
    if (strstr(line, "->")) continue;   /* a waiter, not a holder */
    char type[32], adv[32], mode[32];
    if (sscanf(line, "%*[^:]: %31s %31s %31s %ld %x:%x:%llu", type, adv, mode, &e[n].pid, &e[n].maj, &e[n].min,
               &e[n].ino) == 7 && e[n].pid > 0)
      n++;
  }
  fclose(f);
  return n;
}

/* Another process's lock on the run directory or a file directly in it (vigil.lock, or a
 * lock file of another tool): its pid, *which = the name; 0 when none. */
static long other_holder(const char *rundir, const lock_entry *e, int n, char *which, size_t cap) {
  if (!n) return 0;
  DIR *d = opendir(rundir);
  if (!d) return 0;
  long pid = 0, self = (long)getpid();
  struct dirent *de;
  while (!pid && (de = readdir(d))) {
    if (!strcmp(de->d_name, "..")) continue;
    struct stat sb;
    if (lstat(vg_run_path(rundir, de->d_name), &sb) != 0) continue;
    for (int i = 0; i < n && !pid; i++)
      if (e[i].ino == (unsigned long long)sb.st_ino && e[i].maj == major(sb.st_dev) && e[i].min == minor(sb.st_dev) &&
          e[i].pid != self) {
        pid = e[i].pid;
        snprintf(which, cap, "%s", strcmp(de->d_name, ".") ? vg_run_path(rundir, de->d_name) : rundir);
      }
  }
  closedir(d);
  return pid;
}

vg_status vg_run_lock(const char *rundir, int *fd) {
  *fd = -1;
  char path[2100];
  snprintf(path, sizeof path, "%s", vg_run_path(rundir, VG_RUN_LOCK_NAME));
  int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (f < 0) return vg_fail(VG_ERR_IO, "%s: cannot open the run lock: %s", path, strerror(errno));
  bool got = flock(f, LOCK_EX | LOCK_NB) == 0;
  int e = errno;
  if (!got && e != EWOULDBLOCK && e != EAGAIN) {
    close(f);
    return vg_fail(VG_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
  }
  /* who holds it (or, with ours taken, holds another lock in the folder) */
  enum { CAP = 4096 };
  lock_entry *le = malloc(CAP * sizeof *le);
  char which[2100];
  snprintf(which, sizeof which, "%s", path);
  long pid = le ? other_holder(rundir, le, proc_locks(le, CAP), which, sizeof which) : 0;
  free(le);
  if (!got && !pid) {   /* else the pid the holder wrote into the file */
    char b[32] = {0};
    if (pread(f, b, sizeof b - 1, 0) > 0) pid = strtol(b, NULL, 10);
  }
  if (!got || pid) {
    close(f);
    if (pid > 0)
      return vg_fail(VG_ERR_IO, "%s is in use by another training (pid %ld holds %s); wait for it to end or use another --out",
                     rundir, pid, which);
    return vg_fail(VG_ERR_IO, "%s is in use by another training (a process of unknown pid holds %s); wait for it to end "
                   "or use another --out", rundir, path);
  }
  char b[32];
  int n = snprintf(b, sizeof b, "%ld\n", (long)getpid());
  if (ftruncate(f, 0) != 0 || pwrite(f, b, (size_t)n, 0) != n) { /* the pid is for messages only */ }
  *fd = f;
  return VG_OK;
}

void vg_run_unlock(int fd) {
  if (fd >= 0) close(fd);   /* closing the descriptor releases the flock */
}

int vg_run_clean_tmp(const char *rundir) {
  static const char *const names[] = {"config.json", "state.json", "checkpoint.safetensors", "train_log.jsonl",
                                      "metrics.json", "scores.json", NULL};
  DIR *d = opendir(rundir);
  if (!d) return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *nm = e->d_name;
    bool ours = false;
    for (int i = 0; names[i] && !ours; i++) {
      size_t k = strlen(names[i]);
      if (strncmp(nm, names[i], k) || strncmp(nm + k, ".tmp", 4)) continue;
      const char *q = nm + k + 4;
      while (*q >= '0' && *q <= '9') q++;
      ours = !*q;
    }
    struct stat sb;
    const char *p = vg_run_path(rundir, nm);
    if (ours && lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && unlink(p) == 0) {
      fprintf(stderr, "vigil: removed %s (a temp file of an interrupted write)\n", p);
      removed++;
    }
  }
  closedir(d);
  return removed;
}

/* one line of a training log (no newline): its integer "step", or -1 when it has none */
static int64_t log_line_step(const char *line, size_t n) {
  vg_json *j;
  if (vg_json_parse(line, n, NULL, &j) != VG_OK) return -1;
  int64_t s = -1;
  if (j->type != VG_JSON_OBJECT || !vg_json_as_int64(vg_json_get(j, "step"), &s) || s < 0) s = -1;
  vg_json_free(j);
  return s;
}

vg_status vg_run_log_truncate(const char *path, int64_t keep, int64_t *kept) {
  enum { LINE_CAP = 1 << 16, CHUNK = 1 << 16 };   /* our lines are ~100 bytes; a longer one is garbage */
  if (kept) *kept = 0;
  struct stat sb;
  if (lstat(path, &sb) != 0 && errno == ENOENT) return VG_OK;
  int fd;
  uint64_t size;
  vg_status st = vg_file_open_read(path, &fd, &size);
  if (st != VG_OK) return st;
  char *line = malloc(LINE_CAP), *chunk = malloc(CHUNK), *out = NULL;
  size_t len = 0, out_n = 0, out_cap = 0;
  bool too_long = false;
  int64_t last = -1, nkept = 0;
  /* bounded time on a hostile log (a sparse 4 TiB file of zeros, gigabytes of garbage): the
   * scan stops once every step before `keep` has its line (the rest is dropped anyway), or
   * after keep whole-line capacities + 64 MiB of bytes, far more than the keep lines we
   * want can span with the garbage a crash leaves (what follows is dropped, with a warning) */
  uint64_t scanned = 0, scan_cap = keep >= 0 && (uint64_t)keep < (UINT64_MAX >> 20) / (LINE_CAP + 1)
                                       ? (uint64_t)keep * (LINE_CAP + 1) + ((uint64_t)64 << 20) : UINT64_MAX;
  if (!line || !chunk) st = vg_fail(VG_ERR_NOMEM, "%s: out of memory", path);
  while (st == VG_OK && nkept < keep) {
    if (scanned >= scan_cap) {
      fprintf(stderr, "vigil: %s: %llu bytes read without the lines of steps 0..%lld: the rest (%llu bytes) is "
                      "dropped as garbage\n", path, (unsigned long long)scanned, (long long)(keep - 1),
              (unsigned long long)(size > scanned ? size - scanned : 0));
      break;
    }
    ssize_t r = read(fd, chunk, CHUNK);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { st = vg_fail(VG_ERR_IO, "%s: read failed: %s", path, strerror(errno)); break; }
    if (r == 0) break;   /* what is left in line[] had no newline: a partial line, dropped */
    scanned += (uint64_t)r;
    for (ssize_t i = 0; i < r && st == VG_OK && nkept < keep; i++) {
      char c = chunk[i];
      if (c != '\n') {
        if (len < LINE_CAP) line[len++] = c;
        else too_long = true;
        continue;
      }
      int64_t s = too_long ? -1 : log_line_step(line, len);
      if (s >= 0 && s < keep && s > last) {   /* steps in order, each once */
        if (out_n + len + 1 > out_cap) {
          size_t nc = out_cap ? out_cap : 4096;
          while (nc < out_n + len + 1) nc *= 2;
          char *o = realloc(out, nc);
          if (!o) { st = vg_fail(VG_ERR_NOMEM, "%s: out of memory", path); break; }
          out = o;
          out_cap = nc;
        }
        memcpy(out + out_n, line, len);
        out_n += len;
        out[out_n++] = '\n';
        last = s;
        nkept++;
      }
      len = 0;
      too_long = false;
    }
  }
  close(fd);
  free(line);
  free(chunk);
  if (st == VG_OK) st = vg_file_write_atomic(path, out ? out : "", out_n);
  free(out);
  if (st == VG_OK && kept) *kept = nkept;
  return st;
}

vg_status vg_run_read_text(const char *path, char **out) {
  uint8_t *buf;
  size_t n;
  vg_status st = vg_image_read_file(path, &buf, &n, (size_t)64 << 20);
  if (st != VG_OK) return st;
  /* the callers see a C string: a NUL inside would silently cut the text (and hide what follows) */
  const uint8_t *z = memchr(buf, 0, n);
  if (z) {
    size_t off = (size_t)(z - buf);
    free(buf);
    return vg_fail(VG_ERR_FORMAT, "%s: not a text file (NUL byte at offset %zu)", path, off);
  }
  char *s = realloc(buf, n + 1);
  if (!s) { free(buf); return vg_fail(VG_ERR_NOMEM, "out of memory"); }
  s[n] = 0;
  *out = s;
  return VG_OK;
}

vg_status vg_run_config_write(const char *rundir, const vg_run_config *c) {
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "method"); vg_jw_string(&w, c->method);
  vg_jw_key(&w, "method_config"); vg_jw_value(&w, c->method_config);
  vg_jw_key(&w, "data"); vg_jw_begin_object(&w);
  vg_jw_key(&w, "dataset"); vg_jw_string(&w, c->data.dataset);
  vg_jw_key(&w, "root"); vg_jw_string(&w, c->data.root);
  vg_jw_key(&w, "category"); vg_jw_string(&w, c->data.category);
  vg_jw_key(&w, "val_fraction"); vg_jw_double(&w, c->data.val_fraction);
  vg_jw_key(&w, "split_seed"); vg_jw_int64(&w, (int64_t)c->data.split_seed);
  vg_jw_key(&w, "synthetic"); vg_jw_bool(&w, c->data.synthetic);
  vg_jw_end_object(&w);
  vg_jw_key(&w, "train"); vg_jw_begin_object(&w);
  vg_jw_key(&w, "steps"); vg_jw_int64(&w, c->train.steps);
  vg_jw_key(&w, "batch"); vg_jw_int64(&w, c->train.batch);
  vg_jw_key(&w, "workers"); vg_jw_int64(&w, c->train.workers);
  vg_jw_key(&w, "threads"); vg_jw_int64(&w, c->train.threads);
  vg_jw_key(&w, "seed"); vg_jw_int64(&w, (int64_t)c->train.seed);
  vg_jw_key(&w, "save_every"); vg_jw_int64(&w, c->train.save_every);
  vg_jw_end_object(&w);
  vg_jw_end_object(&w);
  size_t n;
  char *text = vg_jw_finish(&w, &n);
  if (!text) return vg_fail(VG_ERR_NOMEM, "config.json: cannot serialise");
  vg_status st = vg_run_write_text(vg_run_path(rundir, "config.json"), text);
  free(text);
  return st;
}

/* A string member into a fixed-size field: refused (message set, *refused = true) when it
 * does not fit or holds a NUL ("\u0000"), never silently cut to another name or path. */
static bool get_str(const vg_json *o, const char *k, char *dst, size_t cap, bool *refused) {
  const vg_json *v = vg_json_get(o, k);
  const char *s = vg_json_as_string(v);
  if (!s) return false;
  if (v->len >= cap || strlen(s) != v->len) {
    *refused = true;
    if (v->len >= cap) vg_fail(VG_ERR_FORMAT, "\"%s\" is too long (%zu bytes; at most %zu)", k, v->len, cap - 1);
    else vg_fail(VG_ERR_FORMAT, "\"%s\" holds a NUL character", k);
    return false;
  }
  memcpy(dst, s, v->len + 1);
  return true;
}

static bool get_i64(const vg_json *o, const char *k, int64_t *v) { return vg_json_as_int64(vg_json_get(o, k), v); }

vg_status vg_run_config_read(const char *rundir, vg_run_config *c) {
  memset(c, 0, sizeof *c);
  const char *path = vg_run_path(rundir, "config.json");
  char *text;
  vg_status st = vg_run_read_text(path, &text);
  if (st != VG_OK) return vg_fail_prefix("run directory %s", rundir);
  vg_json *doc;
  st = vg_json_parse(text, strlen(text), NULL, &doc);
  free(text);
  if (st != VG_OK) return vg_fail_prefix("%s", path);
  const vg_json *d = vg_json_get(doc, "data"), *t = vg_json_get(doc, "train"), *mc = vg_json_get(doc, "method_config");
  int64_t steps, batch, workers, threads, seed, save_every, split_seed;
  bool refused = false;
  bool ok = get_str(doc, "method", c->method, sizeof c->method, &refused) && d && t && mc &&
            get_str(d, "dataset", c->data.dataset, sizeof c->data.dataset, &refused) &&
            get_str(d, "root", c->data.root, sizeof c->data.root, &refused) &&
            get_str(d, "category", c->data.category, sizeof c->data.category, &refused) &&
            vg_json_as_double(vg_json_get(d, "val_fraction"), &c->data.val_fraction) &&
            get_i64(d, "split_seed", &split_seed) && vg_json_as_bool(vg_json_get(d, "synthetic"), &c->data.synthetic) &&
            get_i64(t, "steps", &steps) && get_i64(t, "batch", &batch) && get_i64(t, "workers", &workers) &&
            get_i64(t, "threads", &threads) && get_i64(t, "seed", &seed) && get_i64(t, "save_every", &save_every);
  if (!ok) {
    vg_json_free(doc);
    if (refused) return vg_fail_prefix("%s", path);
    return vg_fail(VG_ERR_FORMAT, "%s: malformed (expected method, method_config, data{dataset,root,category,val_fraction,split_seed,synthetic}, train{steps,batch,workers,threads,seed,save_every})", path);
  }
  /* the same ranges as the flags of a new run (cli/args.h), before any narrowing to int */
  if ((st = vg_check_i64(path, "data.split_seed", split_seed, 0, VG_LIM_SEED_MAX)) != VG_OK ||
      (st = vg_check_i64(path, "train.batch", batch, 1, VG_LIM_BATCH_MAX)) != VG_OK ||
      (st = vg_check_i64(path, "train.workers", workers, 1, VG_LIM_WORKERS_MAX)) != VG_OK ||
      (st = vg_check_i64(path, "train.threads", threads, 0, VG_LIM_THREADS_MAX)) != VG_OK ||
      (st = vg_check_i64(path, "train.seed", seed, 0, VG_LIM_SEED_MAX)) != VG_OK) {
    vg_json_free(doc);
    return st;
  }
  c->data.split_seed = (uint64_t)split_seed;
  c->train = (vg_run_train){steps, (int)batch, (int)workers, (int)threads, (uint64_t)seed, save_every};
  if ((st = vg_run_config_check(path, c)) != VG_OK) {
    vg_json_free(doc);
    return st;
  }
  /* keep method_config: re-serialise it into a standalone document */
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_value(&w, mc);
  size_t n;
  char *mtext = vg_jw_finish(&w, &n);
  vg_json_free(doc);
  if (!mtext) return vg_fail(VG_ERR_NOMEM, "out of memory");
  st = vg_json_parse(mtext, n, NULL, &c->method_config);
  free(mtext);
  return st;
}

vg_status vg_run_config_check(const char *where, const vg_run_config *c) {
  vg_status st;
  if ((st = vg_check_i64(where, "train.steps", c->train.steps, 0, VG_LIM_STEPS_MAX)) != VG_OK ||
      (st = vg_check_i64(where, "train.batch", c->train.batch, 1, VG_LIM_BATCH_MAX)) != VG_OK ||
      (st = vg_check_i64(where, "train.workers", c->train.workers, 1, VG_LIM_WORKERS_MAX)) != VG_OK ||
      (st = vg_check_i64(where, "train.threads", c->train.threads, 0, VG_LIM_THREADS_MAX)) != VG_OK ||
      (st = vg_check_i64(where, "train.seed", c->train.seed > (uint64_t)INT64_MAX ? -1 : (int64_t)c->train.seed, 0,
                         VG_LIM_SEED_MAX)) != VG_OK ||
      (st = vg_check_i64(where, "train.save_every", c->train.save_every, 1, VG_LIM_STEPS_MAX)) != VG_OK ||
      (st = vg_check_f64(where, "data.val_fraction", c->data.val_fraction, 0, false, 1, true)) != VG_OK)
    return st;
  return VG_OK;
}

void vg_run_config_free(vg_run_config *c) {
  vg_json_free(c->method_config);
  c->method_config = NULL;
}

vg_status vg_run_open_dataset(const vg_run_data *d, vg_ds_split split, vg_dataset *out) {
  vg_split_opts so = {split, d->val_fraction, d->split_seed};
  const char *cat = d->category[0] ? d->category : NULL;
  if (!strcmp(d->dataset, "mvtec")) return vg_ds_mvtec(d->root, cat, &so, out);
  if (!strcmp(d->dataset, "loco")) return vg_ds_loco(d->root, cat, &so, out);
  if (!strcmp(d->dataset, "visa")) return vg_ds_visa(d->root, cat, &so, out);
  if (!strcmp(d->dataset, "btad")) return vg_ds_btad(d->root, cat, &so, out);
  if (!strcmp(d->dataset, "folder")) {
    char nd[1100], ad[1100], md[1100], td[1100];
    snprintf(nd, sizeof nd, "%s/normal", d->root);
    snprintf(ad, sizeof ad, "%s/abnormal", d->root);
    snprintf(md, sizeof md, "%s/mask", d->root);
    snprintf(td, sizeof td, "%s/normal_test", d->root);
    struct stat sb;
    vg_folder_spec fs = {nd, ad, stat(md, &sb) == 0 ? md : NULL, stat(td, &sb) == 0 ? td : NULL};
    return vg_ds_folder(&fs, &so, out);
  }
  return vg_fail(VG_ERR_ARG, "unknown dataset kind '%s' (mvtec, loco, visa, btad, folder)", d->dataset);
}

vg_status vg_run_open_method(const char *rundir, const vg_run_config *c, bool load, vg_method **out) {
  vg_status st = vg_method_create(c->method, c->method_config, out);
  if (st != VG_OK) return vg_fail_prefix("%s: method_config", vg_run_path(rundir, "config.json"));
  if (!load) return st;
  st = (*out)->ops->load(*out, vg_run_path(rundir, "checkpoint.safetensors"));
  if (st != VG_OK) { vg_method_free(*out); *out = NULL; }
  return st;
}


bool vg_run_ov_set(vg_run_overrides *l, const char *key, const char *json) {
  if (strlen(key) >= sizeof l->v[0].key) return false;
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->v[i].key, key)) {
      char *d = strdup(json);
      if (!d) return false;
      free(l->v[i].json);
      l->v[i].json = d;
      return true;
    }
  if (l->n == VG_RUN_MAX_OVERRIDES || !(l->v[l->n].json = strdup(json))) return false;
  snprintf(l->v[l->n++].key, sizeof l->v[0].key, "%s", key);
  return true;
}

static char *json_quote(const char *s) {
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_string(&w, s);
  return vg_jw_finish(&w, NULL);
}

bool vg_run_ov_set_str(vg_run_overrides *l, const char *key, const char *s) {
  char *q = json_quote(s);
  bool ok = q && vg_run_ov_set(l, key, q);
  free(q);
  return ok;
}

bool vg_run_ov_set_arg(vg_run_overrides *l, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || eq - arg >= (ptrdiff_t)sizeof l->v[0].key) return false;
  char key[sizeof l->v[0].key];
  snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
  vg_json *j;
  if (vg_json_parse(eq + 1, strlen(eq + 1), NULL, &j) == VG_OK) {
    vg_json_free(j);
    return vg_run_ov_set(l, key, eq + 1);
  }
  return vg_run_ov_set_str(l, key, eq + 1);
}

bool vg_run_ov_has(const vg_run_overrides *l, const char *key) {
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->v[i].key, key)) return true;
  return false;
}

vg_status vg_run_ov_json(const vg_run_overrides *l, vg_json **out) {
  size_t cap = 16;
  char *qk[VG_RUN_MAX_OVERRIDES] = {0};
  vg_status st = VG_OK;
  for (int i = 0; i < l->n && st == VG_OK; i++) {
    if (!(qk[i] = json_quote(l->v[i].key))) st = vg_fail(VG_ERR_NOMEM, "out of memory");
    else cap += strlen(qk[i]) + strlen(l->v[i].json) + 8;
  }
  char *buf = st == VG_OK ? malloc(cap) : NULL;
  if (st == VG_OK && !buf) st = vg_fail(VG_ERR_NOMEM, "out of memory");
  if (st == VG_OK) {
    char *p = buf;
    p += sprintf(p, "{");
    for (int i = 0; i < l->n; i++) p += sprintf(p, "%s%s: %s", i ? ", " : "", qk[i], l->v[i].json);
    sprintf(p, "}");
    st = vg_json_parse(buf, strlen(buf), NULL, out);
    if (st != VG_OK) vg_fail_prefix("method config overrides");
  }
  free(buf);
  for (int i = 0; i < l->n; i++) free(qk[i]);
  return st;
}

void vg_run_ov_free(vg_run_overrides *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i].json);
  l->n = 0;
}

vg_status vg_cli_method_to(vg_method *m, const char *device, const char *dtype) {
  vg_device dev;
  vg_dtype dt;
  if (!vg_parse_device(device, &dev) || !vg_parse_dtype(dtype, &dt)) return vg_last_status();
  vg_status st = vg_method_to(m, dev, dt);
  if (st == VG_OK && (dev != VG_CPU || dt != VG_F32))
    fprintf(stderr, "vigil: %s computes on %s in %s\n", m->ops->name, dev == VG_CPU ? "cpu" : "cuda", vg_dtype_name(dt));
  return st;
}
