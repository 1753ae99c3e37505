/* config.c — method config field tables (config.h). */
#include "methods/config.h"
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void *member(void *obj, const vg_cfg_field *f) { return (char *)obj + f->off; }
static const void *cmember(const void *obj, const vg_cfg_field *f) { return (const char *)obj + f->off; }

/* integer members: bool (1 byte), int (4), int64_t / uint64_t (8) */
static int64_t get_int(const void *obj, const vg_cfg_field *f) {
  const void *p = cmember(obj, f);
  if (f->size == sizeof(bool)) return *(const bool *)p;
  if (f->size == sizeof(int32_t)) { int32_t v; memcpy(&v, p, sizeof v); return v; }
  int64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static void set_int(void *obj, const vg_cfg_field *f, int64_t v) {
  void *p = member(obj, f);
  if (f->size == sizeof(bool)) *(bool *)p = v != 0;
  else if (f->size == sizeof(int32_t)) { int32_t x = (int32_t)v; memcpy(p, &x, sizeof x); }
  else memcpy(p, &v, sizeof v);
}

static int nchoices(const vg_cfg_field *f) {
  int n = 0;
  while (f->choices && f->choices[n]) n++;
  return n;
}

static int choice_of(const vg_cfg_field *f, const char *s) {
  for (int i = 0; s && f->choices && f->choices[i]; i++)
    if ((f->flags & VG_CFG_NOCASE) ? !strcasecmp(s, f->choices[i]) : !strcmp(s, f->choices[i])) return i;
  return -1;
}

int vg_cfg_count(const vg_cfg_field *f) {
  int n = 0;
  while (f && f[n].key) n++;
  return n;
}

const vg_cfg_field *vg_cfg_find(const vg_cfg_field *f, const char *key) {
  for (; f && f->key && key; f++)
    if (!strcmp(f->key, key)) return f;
  return NULL;
}

void vg_cfg_defaults(const vg_cfg_field *f, void *obj) {
  for (; f->key; f++) {
    switch (f->kind) {
    case VG_CFG_BOOL: case VG_CFG_INT: case VG_CFG_ENUM: set_int(obj, f, f->idef); break;
    case VG_CFG_SET: { unsigned v = (unsigned)f->idef; memcpy(member(obj, f), &v, sizeof v); break; }
    case VG_CFG_NUM: memcpy(member(obj, f), &f->def, sizeof(double)); break;
    case VG_CFG_STR: snprintf((char *)member(obj, f), f->size, "%s", f->sdef ? f->sdef : ""); break;
    }
  }
}

static void cat(char *buf, size_t cap, const char *fmt, const char *s) {
  size_t n = strlen(buf);
  if (n < cap) snprintf(buf + n, cap - n, fmt, s);
}

const char *vg_cfg_want(const vg_cfg_field *f, char *buf, size_t cap) {
  if (!cap) return buf;
  buf[0] = 0;
  if (f->want) { snprintf(buf, cap, "%s", f->want); return buf; }
  switch (f->kind) {
  case VG_CFG_BOOL: snprintf(buf, cap, "true or false"); break;
  case VG_CFG_INT:
    snprintf(buf, cap, "an integer in [%lld, %lld]", (long long)f->ilo, (long long)f->ihi);
    if (f->imul > 1) {
      char m[48];
      snprintf(m, sizeof m, ", a multiple of %lld", (long long)f->imul);
      cat(buf, cap, "%s", m);
    }
    break;
  case VG_CFG_NUM:
    if (f->flags & VG_CFG_NO_HI) snprintf(buf, cap, "a number %s %.15g", (f->flags & VG_CFG_LO_OPEN) ? ">" : ">=", f->lo);
    else snprintf(buf, cap, "a number in %c%.15g, %.15g%c", (f->flags & VG_CFG_LO_OPEN) ? '(' : '[', f->lo, f->hi,
                  (f->flags & VG_CFG_HI_OPEN) ? ')' : ']');
    break;
  case VG_CFG_STR: snprintf(buf, cap, "a string (< %zu bytes)", f->size); break;
  case VG_CFG_ENUM: case VG_CFG_SET: {
    int n = nchoices(f);
    if (f->kind == VG_CFG_SET) {
      char h[64];
      snprintf(h, sizeof h, "a list of %lld to %lld of ", (long long)f->ilo, (long long)f->ihi);
      cat(buf, cap, "%s", h);
    }
    for (int i = 0; i < n; i++) {
      if (i) cat(buf, cap, "%s", i == n - 1 ? " or " : ", ");
      cat(buf, cap, "\"%s\"", f->choices[i]);
    }
    break;
  }
  }
  return buf;
}

const char *vg_cfg_default_text(const vg_cfg_field *f, char *buf, size_t cap) {
  if (!cap) return buf;
  buf[0] = 0;
  if ((f->flags & VG_CFG_AUTO) && (f->kind == VG_CFG_INT || f->kind == VG_CFG_BOOL)) {
    snprintf(buf, cap, "auto");
    return buf;
  }
  switch (f->kind) {
  case VG_CFG_BOOL: snprintf(buf, cap, "%s", f->idef ? "true" : "false"); break;
  case VG_CFG_INT: snprintf(buf, cap, "%lld", (long long)f->idef); break;
  case VG_CFG_NUM: snprintf(buf, cap, "%.15g", f->def); break;
  case VG_CFG_STR: snprintf(buf, cap, "\"%s\"", f->sdef ? f->sdef : ""); break;
  case VG_CFG_ENUM: snprintf(buf, cap, "\"%s\"", f->idef >= 0 && f->idef < nchoices(f) ? f->choices[f->idef] : "?"); break;
  case VG_CFG_SET: {
    cat(buf, cap, "%s", "[");
    bool first = true;
    for (int i = 0; f->choices && f->choices[i]; i++)
      if (((unsigned)f->idef >> (i + f->shift)) & 1u) {
        cat(buf, cap, first ? "\"%s\"" : ", \"%s\"", f->choices[i]);
        first = false;
      }
    cat(buf, cap, "%s", "]");
    break;
  }
  }
  return buf;
}

vg_status vg_cfg_bad_value(const char *method, const char *key, const vg_json *v, const char *want) {
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_value(&w, v);
  char *text = vg_jw_finish(&w, NULL);
  vg_status st = vg_fail(VG_ERR_ARG, "%s: bad value %.200s for config key '%s'%s%s", method, text ? text : "?", key,
                         want ? ": want " : "", want ? want : "");
  free(text);
  return st;
}

/* one value into the member; false = refused */
static bool parse_value(const vg_cfg_field *f, const vg_json *v, void *obj) {
  switch (f->kind) {
  case VG_CFG_BOOL: {
    bool b;
    if (!vg_json_as_bool(v, &b)) return false;
    set_int(obj, f, b);
    return true;
  }
  case VG_CFG_INT: {
    int64_t x;
    if (!vg_json_as_int64(v, &x) || x < f->ilo || x > f->ihi || (f->imul > 1 && x % f->imul != 0)) return false;
    set_int(obj, f, x);
    return true;
  }
  case VG_CFG_NUM: {
    double x;
    if (!vg_json_as_double(v, &x)) return false;
    bool lo_ok = (f->flags & VG_CFG_LO_OPEN) ? x > f->lo : x >= f->lo;
    bool hi_ok = (f->flags & VG_CFG_NO_HI) || ((f->flags & VG_CFG_HI_OPEN) ? x < f->hi : x <= f->hi);
    if (!lo_ok || !hi_ok) return false;
    memcpy(member(obj, f), &x, sizeof x);
    return true;
  }
  case VG_CFG_STR: {
    const char *s = vg_json_as_string(v);
    if (!s || strlen(s) >= f->size) return false;
    snprintf((char *)member(obj, f), f->size, "%s", s);
    return true;
  }
  case VG_CFG_ENUM: {
    int i = choice_of(f, vg_json_as_string(v));
    if (i < 0) return false;
    set_int(obj, f, i);
    return true;
  }
  case VG_CFG_SET: {
    if (!v || v->type != VG_JSON_ARRAY || vg_json_len(v) < f->ilo || vg_json_len(v) > f->ihi) return false;
    unsigned mask = 0;
    for (int64_t a = 0; a < vg_json_len(v); a++) {
      int i = choice_of(f, vg_json_as_string(vg_json_at(v, a)));
      if (i < 0) return false;
      mask |= 1u << (i + f->shift);
    }
    memcpy(member(obj, f), &mask, sizeof mask);
    return true;
  }
  }
  return false;
}

static char *known_list(const vg_cfg_field *f) {
  size_t cap = 1;
  for (const vg_cfg_field *g = f; g->key; g++) cap += strlen(g->key) + 2;
  char *s = malloc(cap);
  if (!s) return NULL;
  s[0] = 0;
  for (const vg_cfg_field *g = f; g->key; g++) {
    if (g != f) strcat(s, ", ");
    strcat(s, g->key);
  }
  return s;
}

vg_status vg_cfg_parse(const char *method, const vg_cfg_field *f, const vg_json *cfg, void *obj) {
  if (!cfg) return VG_OK;
  if (cfg->type != VG_JSON_OBJECT)
    return vg_fail(VG_ERR_ARG, "%s: the config must be a JSON object, got %s", method, vg_json_type_name(cfg->type));
  for (int64_t i = 0; i < vg_json_len(cfg); i++) {
    const char *k = vg_json_key_at(cfg, i);
    const vg_json *v = vg_json_at(cfg, i);
    if (!strcmp(k, "method")) {
      const char *s = vg_json_as_string(v);
      if (s && !strcmp(s, method)) continue;
      char want[96];
      snprintf(want, sizeof want, "\"%s\"", method);
      return vg_cfg_bad_value(method, k, v, want);
    }
    const vg_cfg_field *fk = vg_cfg_find(f, k);
    if (!fk) {
      char *known = known_list(f);
      vg_status st = vg_fail(VG_ERR_ARG, "%s: unknown config key '%s' (known: %s)", method, k, known ? known : "?");
      free(known);
      return st;
    }
    if (!parse_value(fk, v, obj)) {
      char want[256];
      return vg_cfg_bad_value(method, k, v, vg_cfg_want(fk, want, sizeof want));
    }
  }
  return VG_OK;
}

char *vg_cfg_json(const char *method, const vg_cfg_field *f, const void *obj) {
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "method"); vg_jw_string(&w, method);
  for (; f->key; f++) {
    vg_jw_key(&w, f->key);
    switch (f->kind) {
    case VG_CFG_BOOL: vg_jw_bool(&w, get_int(obj, f) != 0); break;
    case VG_CFG_INT: vg_jw_int64(&w, get_int(obj, f)); break;
    case VG_CFG_NUM: { double x; memcpy(&x, cmember(obj, f), sizeof x); vg_jw_double(&w, x); break; }
    case VG_CFG_STR: vg_jw_string(&w, (const char *)cmember(obj, f)); break;
    case VG_CFG_ENUM: {
      int64_t i = get_int(obj, f);
      vg_jw_string(&w, i >= 0 && i < nchoices(f) ? f->choices[i] : "?");
      break;
    }
    case VG_CFG_SET: {
      unsigned mask;
      memcpy(&mask, cmember(obj, f), sizeof mask);
      vg_jw_begin_array(&w);
      for (int i = 0; f->choices && f->choices[i]; i++)
        if ((mask >> (i + f->shift)) & 1u) vg_jw_string(&w, f->choices[i]);
      vg_jw_end_array(&w);
      break;
    }
    }
  }
  vg_jw_end_object(&w);
  return vg_jw_finish(&w, NULL);
}

static const char *kind_name(const vg_cfg_field *f) {
  switch (f->kind) {
  case VG_CFG_BOOL: return "bool";
  case VG_CFG_INT: return "int";
  case VG_CFG_NUM: return "number";
  case VG_CFG_STR: return "string";
  case VG_CFG_ENUM: return "choice";
  case VG_CFG_SET: return "list";
  }
  return "?";
}

void vg_cfg_print_help(FILE *out, const char *method, const vg_cfg_field *f) {
  fprintf(out, "config keys of %s (--set KEY=VALUE, VALUE as JSON; defaults in config.json of a run):\n", method);
  for (; f->key; f++) {
    char def[160], want[256];
    fprintf(out, "  %-22s %-7s default %s; %s\n", f->key, kind_name(f), vg_cfg_default_text(f, def, sizeof def),
            vg_cfg_want(f, want, sizeof want));
    if (f->help && f->help[0]) fprintf(out, "  %-22s %s\n", "", f->help);
  }
}

bool vg_cfg_table_ok(const char *method, const vg_cfg_field *f) {
  for (const vg_cfg_field *g = f; g->key; g++) {
    const char *why = NULL;
    if (!strcmp(g->key, "method")) why = "\"method\" is reserved";
    for (const vg_cfg_field *h = f; h < g && !why; h++)
      if (!strcmp(h->key, g->key)) why = "the key appears twice";
    bool autodef = (g->flags & VG_CFG_AUTO) != 0;
    if (!why) switch (g->kind) {
    case VG_CFG_BOOL:
      if (autodef ? g->size != sizeof(int32_t) : g->size != sizeof(bool)) why = "wants a bool member (an int with VG_CFG_AUTO)";
      break;
    case VG_CFG_INT:
      if (g->size != sizeof(int32_t) && g->size != sizeof(int64_t)) why = "wants an int or int64_t member";
      else if (g->ilo > g->ihi) why = "an empty range";
      else if (g->size == sizeof(int32_t) && (g->ilo < INT32_MIN || g->ihi > INT32_MAX)) why = "a range beyond its int member";
      else if (!autodef && (g->idef < g->ilo || g->idef > g->ihi || (g->imul > 1 && g->idef % g->imul)))
        why = "a default outside its range";
      break;
    case VG_CFG_NUM: {
      bool lo_ok = (g->flags & VG_CFG_LO_OPEN) ? g->def > g->lo : g->def >= g->lo;
      bool hi_ok = (g->flags & VG_CFG_NO_HI) || ((g->flags & VG_CFG_HI_OPEN) ? g->def < g->hi : g->def <= g->hi);
      if (g->size != sizeof(double)) why = "wants a double member";
      else if (!lo_ok || !hi_ok) why = "a default outside its range";
      break;
    }
    case VG_CFG_STR:
      if (g->size < 2) why = "wants a char array member";
      else if (g->sdef && strlen(g->sdef) >= g->size) why = "a default longer than the member";
      break;
    case VG_CFG_ENUM:
      if (g->size != sizeof(bool) && g->size != sizeof(int32_t)) why = "wants a bool or int member";
      else if (nchoices(g) < 1 || (g->size == sizeof(bool) && nchoices(g) > 2)) why = "too few choices, or more than its bool member holds";
      else if (g->idef < 0 || g->idef >= nchoices(g)) why = "a default outside its choices";
      break;
    case VG_CFG_SET: {
      int n = nchoices(g);
      if (g->size != sizeof(unsigned)) why = "wants an unsigned member";
      else if (n < 1 || n + g->shift > 32 || g->shift < 0) why = "choices beyond the 32-bit mask";
      else if (g->ilo < 1 || g->ilo > g->ihi) why = "a bad count range";
      else if ((unsigned)g->idef & ~(((n + g->shift >= 32) ? ~0u : ((1u << (n + g->shift)) - 1u)) & ~((1u << g->shift) - 1u)))
        why = "a default outside its choices";
      break;
    }
    }
    if (why) {
      vg_fail(VG_ERR_ARG, "%s: config table: field '%s': %s", method, g->key, why);
      return false;
    }
  }
  return true;
}
