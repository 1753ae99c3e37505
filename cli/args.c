/* args.c — strict numbers for the `vigil` flags, --set values and config.json (args.h). */
#include "cli/args.h"
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "tensor/parallel.h"
#include "methods/method.h"

static void range_i64(char *b, size_t cap, int64_t lo, int64_t hi) {
  snprintf(b, cap, "an integer in [%" PRId64 ", %" PRId64 "]", lo, hi);
}

static void range_f64(char *b, size_t cap, double lo, bool lo_open, double hi, bool hi_open) {
  snprintf(b, cap, "a number in %c%.9g, %.9g%c", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
}

static bool in_f64(double x, double lo, bool lo_open, double hi, bool hi_open) {
  return isfinite(x) && (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
}

bool vg_arg_i64(const char *cmd, const char *flag, const char *v, int64_t lo, int64_t hi, int64_t *out) {
  int64_t x;
  const char *why = NULL;
  bool ok = vg_parse_i64(v, &x, &why);
  if (ok && (x < lo || x > hi)) { ok = false; why = "out of range"; }
  if (!ok) {
    char r[96];
    range_i64(r, sizeof r, lo, hi);
    fprintf(stderr, "vigil %s: %s: '%s' is %s: want %s\n", cmd, flag, v ? v : "", why, r);
    return false;
  }
  *out = x;
  return true;
}

bool vg_arg_int(const char *cmd, const char *flag, const char *v, int lo, int hi, int *out) {
  int64_t x;
  if (!vg_arg_i64(cmd, flag, v, lo, hi, &x)) return false;
  *out = (int)x;
  return true;
}

bool vg_arg_u64(const char *cmd, const char *flag, const char *v, uint64_t hi, uint64_t *out) {
  uint64_t x;
  const char *why = NULL;
  bool ok = vg_parse_u64(v, &x, &why);
  if (ok && x > hi) { ok = false; why = "out of range"; }
  if (!ok) {
    fprintf(stderr, "vigil %s: %s: '%s' is %s: want an integer in [0, %" PRIu64 "]\n", cmd, flag, v ? v : "", why, hi);
    return false;
  }
  *out = x;
  return true;
}

bool vg_arg_f64(const char *cmd, const char *flag, const char *v, double lo, bool lo_open, double hi, bool hi_open,
                double *out) {
  double x;
  const char *why = NULL;
  bool ok = vg_parse_f64(v, &x, &why);
  if (ok && !in_f64(x, lo, lo_open, hi, hi_open)) { ok = false; why = "out of range"; }
  if (!ok) {
    char r[96];
    range_f64(r, sizeof r, lo, lo_open, hi, hi_open);
    fprintf(stderr, "vigil %s: %s: '%s' is %s: want %s\n", cmd, flag, v ? v : "", why, r);
    return false;
  }
  *out = x;
  return true;
}

/* the cores this process may run on */
static int usable_cores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long c = sysconf(_SC_NPROCESSORS_ONLN);
  return c > 0 ? (int)c : 1;
}

bool vg_arg_threads(const char *cmd, const char *v, int *out) {
  return vg_arg_int(cmd, "--threads", v, 0, (int)VG_LIM_THREADS_MAX, out);
}

void vg_cli_apply_threads(const char *cmd, int threads) {
  if (threads <= 0) return;
  int cores = usable_cores();
  if (threads > cores)
    fprintf(stderr, "vigil %s: warning: --threads %d is more than the %d cores this process may use (allowed; "
                    "usually slower)\n", cmd, threads, cores);
  vg_set_num_threads(threads);
}

bool vg_arg_is_help(const char *a) { return a && (!strcmp(a, "--help") || !strcmp(a, "-h")); }

bool vg_arg_set_value_ok(const char *cmd, const char *kv) {
  const char *eq = strchr(kv, '=');
  if (!eq) return true;   /* the caller reports the missing '=' */
  const char *v = eq + 1;
  char c = v[0];
  if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.')) return true;   /* a string, list, object, bool */
  double x;
  const char *why = NULL;
  if (vg_parse_f64(v, &x, &why)) return true;
  fprintf(stderr, "vigil %s: --set %.*s: '%s' is %s: want a finite decimal number (e.g. 128, 0.5, 1e-4)\n", cmd,
          (int)(eq - kv), kv, v, why ? why : "not a number");
  return false;
}

vg_status vg_check_i64(const char *where, const char *key, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi) return VG_OK;
  char r[96];
  range_i64(r, sizeof r, lo, hi);
  return vg_fail(VG_ERR_ARG, "%s: %s = %" PRId64 " is out of range: want %s", where, key, v, r);
}

vg_status vg_check_f64(const char *where, const char *key, double v, double lo, bool lo_open, double hi, bool hi_open) {
  if (in_f64(v, lo, lo_open, hi, hi_open)) return VG_OK;
  char r[96];
  range_f64(r, sizeof r, lo, lo_open, hi, hi_open);
  return vg_fail(VG_ERR_ARG, "%s: %s = %.9g is out of range: want %s", where, key, v, r);
}

vg_status vg_check_batch_bytes(const char *what, int64_t B, int64_t C, int64_t H, int64_t W) {
  double bytes = (double)B * (double)C * (double)H * (double)W * 4.0;
  const char *mem;
  double lim = (double)VG_LIM_BATCH_BYTES, m = vg_memory_limit(&mem);
  if (m > 0 && m < lim) lim = m;
  else mem = "the most one batch may take";
  if (bytes <= lim) return VG_OK;
  return vg_fail(VG_ERR_LIMIT, "%s: a batch of %" PRId64 " x %" PRId64 " x %" PRId64 " x %" PRId64
                 " f32 images is %.1f GiB, more than the %.1f GiB allowed (%s); "
                 "use a smaller batch or input size", what, B, C, H, W, bytes / 1073741824.0, lim / 1073741824.0, mem);
}
