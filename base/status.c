#include "base/status.h"
#include <stdarg.h>
#include <string.h>

static _Thread_local char last_msg[1024];
static _Thread_local vg_status last_st;

vg_status vg_fail(vg_status st, const char *fmt, ...) {
  /* formatted aside first: callers pass vg_last_error() itself as an argument
   * (vg_fail(st, "teacher %s: %s", path, vg_last_error())), which must not overlap the output */
  char msg[sizeof last_msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(last_msg, msg, sizeof last_msg);
  last_st = st;
  if (getenv("VIGIL_ABORT_ON_ERROR")) VG_ABORT("%s", last_msg);
  return st;
}

vg_status vg_fail_prefix(const char *fmt, ...) {
  char pre[512], old[sizeof last_msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  memcpy(old, last_msg, sizeof old);
  snprintf(last_msg, sizeof last_msg, "%.400s: %.600s", pre, old); /* both bounded: fits 1024 */
  return last_st;
}

const char *vg_last_error(void) { return last_msg; }
vg_status vg_last_status(void) { return last_st; }
void vg_clear_error(void) { last_msg[0] = 0; last_st = VG_OK; }

const char *vg_status_name(vg_status st) {
  switch (st) {
    case VG_OK: return "ok";
    case VG_ERR_ARG: return "bad argument";
    case VG_ERR_IO: return "i/o error";
    case VG_ERR_FORMAT: return "bad format";
    case VG_ERR_UNSUPPORTED: return "unsupported";
    case VG_ERR_LIMIT: return "limit exceeded";
    case VG_ERR_NOMEM: return "out of memory";
    case VG_ERR_NUMERIC: return "non-finite value";
    case VG_ERR_DEVICE: return "device error";
  }
  return "?";
}
