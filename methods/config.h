/* methods/config.h — a method's config keys, declared once as a table of fields that drives
 * parsing (create()'s JSON overrides: `--set K=V`, a --config file, a run's config.json),
 * the complete config JSON (config.json, checkpoint metadata), the error messages and the
 * help (`vigil train METHOD --help`).
 *
 *   typedef struct { vg_method base; int size; double sd_floor; ... } mine;
 *   static const vg_cfg_field FIELDS[] = {
 *     {"input_size", VG_CFG_INT, VG_CFG_AT(mine, size), .idef = 256, .ilo = 8, .ihi = 4096,
 *      .help = "side of the square input image"},
 *     {"sd_floor", VG_CFG_NUM, VG_CFG_AT(mine, sd_floor), .def = 0.05, .lo = 0, .flags = VG_CFG_LO_OPEN | VG_CFG_NO_HI},
 *     {NULL}};
 *   mine *m = calloc(1, sizeof *m);
 *   vg_cfg_defaults(FIELDS, m);
 *   if (vg_cfg_parse("mine", FIELDS, cfg, m) != VG_OK) { free(m); return vg_last_status(); }
 *   ...
 *   char *json = vg_cfg_json("mine", FIELDS, m);    // {"method": "mine", every field in table order}
 *
 * Kinds and the member each one binds (VG_CFG_AT(type, member): offset and size):
 *   BOOL  bool, or int when VG_CFG_AUTO (idef -1 = "auto": the constructor resolves it)
 *   INT   int or int64_t (uint64_t seeds too): an integer in [ilo, ihi], a multiple of imul (> 1)
 *   NUM   double: a number in [lo, hi] (VG_CFG_LO_OPEN / HI_OPEN: open ends; NO_HI: no upper bound)
 *   STR   char[N]: a string of < N bytes (sdef the default)
 *   ENUM  bool or int: the index of the string in choices (NULL-terminated; VG_CFG_NOCASE:
 *         ASCII case ignored); written back as choices[index]
 *   SET   unsigned: a JSON array of ilo..ihi strings of choices; bit (index + shift) set per
 *         string; written back in choices order
 * VG_CFG_AUTO (INT / BOOL): the default is the sentinel idef (outside the range), resolved by
 * the constructor before anything is written; help shows "auto".
 * VG_CFG_IDENT: the key names the model variant (`vigil bench` records it in its JSON lines).
 * Messages (VG_ERR_ARG):
 *   "METHOD: unknown config key 'K' (known: a, b, ...)"          (table order)
 *   "METHOD: bad value V for config key 'K': want W"              (W = vg_cfg_want)
 * The key "method" is accepted when it names the method (config.json carries it). */
#ifndef VG_METHODS_CONFIG_H
#define VG_METHODS_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/json.h"
#include "base/status.h"

typedef enum { VG_CFG_BOOL, VG_CFG_INT, VG_CFG_NUM, VG_CFG_STR, VG_CFG_ENUM, VG_CFG_SET } vg_cfg_kind;

enum {
  VG_CFG_LO_OPEN = 1u << 0,   /* NUM: lo excluded */
  VG_CFG_HI_OPEN = 1u << 1,   /* NUM: hi excluded */
  VG_CFG_NO_HI = 1u << 2,     /* NUM: no upper bound */
  VG_CFG_AUTO = 1u << 3,      /* INT / BOOL: idef is "auto", resolved by the constructor */
  VG_CFG_NOCASE = 1u << 4,    /* ENUM: ASCII case-insensitive */
  VG_CFG_IDENT = 1u << 5,     /* names the model variant (bench records it) */
};

typedef struct {
  const char *key;             /* NULL ends the table */
  vg_cfg_kind kind;
  size_t off, size;            /* the member in the method's struct: VG_CFG_AT(type, member) */
  int64_t idef;                /* BOOL / INT / ENUM (index) / SET (mask) default */
  double def;                  /* NUM default */
  const char *sdef;            /* STR default (NULL = "") */
  int64_t ilo, ihi, imul;      /* INT range and step; SET: number of strings */
  double lo, hi;               /* NUM range */
  const char *const *choices;  /* ENUM / SET */
  int shift;                   /* SET: bit of choices[i] = 1u << (i + shift) */
  unsigned flags;
  const char *want;            /* what it accepts, for messages and help (NULL: from the range) */
  const char *help;            /* one line (may be NULL) */
} vg_cfg_field;

#define VG_CFG_AT(type, member) offsetof(type, member), sizeof(((type *)0)->member)

/* Every member set to its default. */
void vg_cfg_defaults(const vg_cfg_field *f, void *obj);
/* Applies the overrides in cfg (a JSON object; NULL = none) in their order; the first
 * unknown key or bad value is the error (VG_ERR_ARG, messages above). */
vg_status vg_cfg_parse(const char *method, const vg_cfg_field *f, const vg_json *cfg, void *obj);
/* The complete config (indent 2): "method" then every field in table order. malloc'd; NULL + message on error. */
char *vg_cfg_json(const char *method, const vg_cfg_field *f, const void *obj);
/* What a field accepts ("an integer in [32, 4096], a multiple of 16"), in buf. */
const char *vg_cfg_want(const vg_cfg_field *f, char *buf, size_t cap);
/* Its default as JSON text ("256", "\"pil\"", "auto"), in buf. */
const char *vg_cfg_default_text(const vg_cfg_field *f, char *buf, size_t cap);
const vg_cfg_field *vg_cfg_find(const vg_cfg_field *f, const char *key);   /* NULL when absent */
int vg_cfg_count(const vg_cfg_field *f);
/* One line per key: name, default, what it accepts, help. */
void vg_cfg_print_help(FILE *out, const char *method, const vg_cfg_field *f);
/* The table's own consistency (keys unique and not "method", members sized for their
 * kind, defaults inside their ranges unless AUTO): false + message naming the field. */
bool vg_cfg_table_ok(const char *method, const vg_cfg_field *f);
/* "METHOD: bad value V for config key 'K': want W" (VG_ERR_ARG); want may be NULL. */
vg_status vg_cfg_bad_value(const char *method, const char *key, const vg_json *v, const char *want);
#endif
