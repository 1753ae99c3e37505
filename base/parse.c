/* parse.c — strict number parsing (parse.h). */
#include "base/parse.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* the first characters: [-]digit, or for doubles also [-].digit */
static bool first_ok(const char *s, bool allow_minus, bool allow_dot, const char **why) {
  if (!s || !*s) { if (why) *why = "empty"; return false; }
  const char *p = s;
  if (*p == '-' && allow_minus) p++;
  if (is_digit(*p) || (allow_dot && *p == '.' && is_digit(p[1]))) return true;
  if (why) *why = s[0] == '-' && !allow_minus ? "negative" : "not a number";
  return false;
}

bool vg_parse_i64(const char *s, int64_t *out, const char **why) {
  if (!first_ok(s, true, false, why)) return false;
  char *e;
  errno = 0;
  long long x = strtoll(s, &e, 10);
  if (*e) { if (why) *why = "not an integer"; return false; }
  if (errno == ERANGE) { if (why) *why = "too large"; return false; }
  *out = (int64_t)x;
  return true;
}

bool vg_parse_u64(const char *s, uint64_t *out, const char **why) {
  if (!first_ok(s, false, false, why)) return false;
  char *e;
  errno = 0;
  unsigned long long x = strtoull(s, &e, 10);
  if (*e) { if (why) *why = "not an integer"; return false; }
  if (errno == ERANGE) { if (why) *why = "too large"; return false; }
  *out = (uint64_t)x;
  return true;
}

bool vg_parse_f64(const char *s, double *out, const char **why) {
  if (!first_ok(s, true, true, why)) return false;
  for (const char *p = s; *p; p++)   /* decimal only: no hex floats, no nan/inf */
    if (!strchr("0123456789.-eE", *p)) { if (why) *why = "not a number"; return false; }
  char *e;
  errno = 0;
  double x = strtod(s, &e);
  if (*e) { if (why) *why = "not a number"; return false; }
  if (!isfinite(x) || (errno == ERANGE && fabs(x) > 1)) { if (why) *why = "too large"; return false; }
  *out = errno == ERANGE ? 0.0 : x;   /* underflow: a tiny number is 0 */
  return true;
}

int64_t vg_env_i64(const char *name, int64_t lo, int64_t hi, int64_t def, const char *def_desc) {
  const char *e = getenv(name);
  if (!e || !*e) return def;
  int64_t v;
  const char *why = NULL;
  if (vg_parse_i64(e, &v, &why) && v >= lo && v <= hi) return v;
  fprintf(stderr, "vigil: warning: %s='%s' is %s: want an integer in [%lld, %lld]; using %s\n", name, e,
          why ? why : "out of range", (long long)lo, (long long)hi, def_desc ? def_desc : "the default");
  return def;
}

bool vg_env_flag(const char *name, bool def) {
  const char *e = getenv(name);
  if (!e || !*e) return def;
  if (!strcmp(e, "0")) return false;
  if (!strcmp(e, "1")) return true;
  fprintf(stderr, "vigil: warning: %s='%s' is neither 0 nor 1; using %d (the default)\n", name, e, def ? 1 : 0);
  return def;
}
