/* state_dict.c — name-list helpers (see state_dict.h). Matching sorts copies of both
 * lists: O((n + m) log(n + m)). */
#include "nn/state_dict.h"
#include <stdlib.h>
#include <string.h>

const char *vg_sd_strip_prefix(const char *name, const char *const *prefixes) {
  if (!name || !prefixes) return name;
  for (size_t i = 0; prefixes[i]; i++) {
    size_t l = strlen(prefixes[i]);
    if (l && strncmp(name, prefixes[i], l) == 0) return name + l;
  }
  return name;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char **sorted(const char *const *names, size_t n) {
  const char **s = malloc((n ? n : 1) * sizeof *s);
  if (!s) return NULL;
  if (n) memcpy(s, names, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_str);
  return s;
}

static int contains(const char **sorted_names, size_t n, const char *name) {
  return bsearch(&name, sorted_names, n, sizeof *sorted_names, cmp_str) != NULL;
}

void vg_sd_report_free(vg_sd_report *rep) {
  if (!rep) return;
  free(rep->missing);
  free(rep->unexpected);
  memset(rep, 0, sizeof *rep);
}

/* Appends up to 5 names of list to buf. */
static void list_names(char *buf, size_t cap, const char **names, size_t n) {
  for (size_t i = 0; i < n && i < 5; i++) {
    size_t l = strlen(buf);
    snprintf(buf + l, cap - l, "%s%s", i ? ", " : "", names[i]);
  }
  if (n > 5) { size_t l = strlen(buf); snprintf(buf + l, cap - l, ", ..."); }
}

vg_status vg_sd_match(const char *const *expected, size_t n_expected, const char *const *have,
                      size_t n_have, bool strict, vg_sd_report *rep) {
  if (!rep || (n_expected && !expected) || (n_have && !have))
    return vg_fail(VG_ERR_ARG, "vg_sd_match: NULL argument");
  memset(rep, 0, sizeof *rep);
  const char **se = sorted(expected, n_expected), **sh = sorted(have, n_have);
  rep->missing = malloc((n_expected ? n_expected : 1) * sizeof *rep->missing);
  rep->unexpected = malloc((n_have ? n_have : 1) * sizeof *rep->unexpected);
  vg_status st = VG_OK;
  if (!se || !sh || !rep->missing || !rep->unexpected) {
    st = vg_fail(VG_ERR_NOMEM, "state dict: out of memory");
    goto done;
  }
  for (size_t i = 0; i + 1 < n_expected; i++)
    if (strcmp(se[i], se[i + 1]) == 0) { st = vg_fail(VG_ERR_ARG, "state dict: expected key '%s' listed twice", se[i]); goto done; }
  for (size_t i = 0; i + 1 < n_have; i++)
    if (strcmp(sh[i], sh[i + 1]) == 0) { st = vg_fail(VG_ERR_FORMAT, "state dict: key '%s' appears twice", sh[i]); goto done; }
  for (size_t i = 0; i < n_expected; i++)
    if (!contains(sh, n_have, expected[i])) rep->missing[rep->n_missing++] = expected[i];
  for (size_t i = 0; i < n_have; i++)
    if (!contains(se, n_expected, have[i])) rep->unexpected[rep->n_unexpected++] = have[i];
  if (strict && (rep->n_missing || rep->n_unexpected)) {
    char m[600] = "", u[600] = "";
    list_names(m, sizeof m, rep->missing, rep->n_missing);
    list_names(u, sizeof u, rep->unexpected, rep->n_unexpected);
    st = vg_fail(VG_ERR_FORMAT, "state dict mismatch: %zu missing key%s%s%s; %zu unexpected key%s%s%s",
                 rep->n_missing, rep->n_missing == 1 ? "" : "s", rep->n_missing ? ": " : "", m,
                 rep->n_unexpected, rep->n_unexpected == 1 ? "" : "s", rep->n_unexpected ? ": " : "", u);
  }
done:
  free(se);
  free(sh);
  if (st != VG_OK && vg_last_status() == VG_ERR_NOMEM) vg_sd_report_free(rep);
  return st;
}
