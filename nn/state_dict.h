/* state_dict.h — plain name-list helpers for loading foreign weights: prefix stripping
 * and a load_state_dict-style report of missing and unexpected keys. Works on names only
 * (module state dicts live in nn/nn.h; checkpoint readers in nn/pth.h, nn/safetensors.h).
 *
 *   static const char *const strip[] = {"module.", "model.", "backbone.", NULL};
 *   const char *k = vg_sd_strip_prefix("module.conv1.weight", strip);  // "conv1.weight"
 *   vg_sd_report r;
 *   if (vg_sd_match(want, n_want, have, n_have, true, &r) != VG_OK)
 *     puts(vg_last_error());   // "2 missing keys: fc.weight, fc.bias; 1 unexpected: ..."
 *   vg_sd_report_free(&r);
 */
#ifndef VG_STATE_DICT_H
#define VG_STATE_DICT_H
#include <stdbool.h>
#include <stddef.h>
#include "base/status.h"

/* name without the first prefix of the NULL-terminated list it starts with (one prefix
 * only, the first match; a pointer into name), or name itself. */
const char *vg_sd_strip_prefix(const char *name, const char *const *prefixes);

typedef struct {
  const char **missing;      /* expected but absent (pointers into the caller's lists) */
  size_t n_missing;
  const char **unexpected;   /* present but not expected */
  size_t n_unexpected;
} vg_sd_report;

/* Compares the names a checkpoint has with those a model expects (each list in any
 * order, duplicates in either refused). Fills *rep (both lists in their input order).
 * strict: any missing or unexpected key fails with VG_ERR_FORMAT and a message listing
 * the first few of each; otherwise returns VG_OK and the report. */
vg_status vg_sd_match(const char *const *expected, size_t n_expected, const char *const *have,
                      size_t n_have, bool strict, vg_sd_report *rep);
void vg_sd_report_free(vg_sd_report *rep);
#endif
