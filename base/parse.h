/* parse.h — strict number parsing, shared by the `vigil` flags (cli/args.h), config files
 * and the VIGIL_* environment variables.
 *
 * Accepted: an optional '-' then decimal digits (integers); for doubles also a fraction and
 * an exponent ("0.1", "1e-4"). Refused: empty strings, leading whitespace, '+', trailing
 * junk ("12abc", "3 "), hex, nan/inf, and values that overflow the type (errno ERANGE). */
#ifndef VG_TENSOR_PARSE_H
#define VG_TENSOR_PARSE_H
#include <stdbool.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* true and *out set; false with a short reason in *why (may be NULL) */
bool vg_parse_i64(const char *s, int64_t *out, const char **why);
bool vg_parse_u64(const char *s, uint64_t *out, const char **why);
bool vg_parse_f64(const char *s, double *out, const char **why);

/* An integer environment variable in [lo, hi]: unset or empty -> def (no message); a bad or
 * out-of-range value -> a warning on stderr naming the variable, the value and what is used
 * instead (def), then def. */
int64_t vg_env_i64(const char *name, int64_t lo, int64_t hi, int64_t def, const char *def_desc);
/* A 0/1 environment variable (VIGIL_TF32, VIGIL_CUDA_SYNC, VIGIL_CUDA_BRANCHES): unset or empty
 * -> def; "0" / "1" -> false / true; anything else -> a warning naming it, then def. */
bool vg_env_flag(const char *name, bool def);
#ifdef __cplusplus
}
#endif
#endif
