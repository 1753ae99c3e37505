/* opts.c — the one option parser and help printer of the `vigil` commands (opts.h). */
#include "cli/opts.h"
#include <inttypes.h>
#include <string.h>
#include "cli/rundir.h"
#include "methods/method.h"

static void *field(void *opts, size_t off) { return (char *)opts + (off - 1); }

void *vg_opt_field(void *opts, const vg_opt *o) { return o->off ? field(opts, o->off) : NULL; }

/* "a" is among "a|b|c" */
static bool in_choices(const char *choices, const char *v) {
  size_t n = strlen(v);
  for (const char *p = choices; p && *p;) {
    const char *e = strchr(p, '|');
    size_t k = e ? (size_t)(e - p) : strlen(p);
    if (k == n && !memcmp(p, v, n)) return true;
    p = e ? e + 1 : NULL;
  }
  return false;
}

/* "want a or b" / "want a, b or c" from "a|b|c" */
static void want_choices(const char *choices, char *b, size_t cap) {
  size_t w = (size_t)snprintf(b, cap, "want ");
  int n = 1;
  for (const char *p = choices; *p; p++) n += *p == '|';
  int i = 0;
  for (const char *p = choices; *p && w < cap;) {
    const char *e = strchr(p, '|');
    int k = e ? (int)(e - p) : (int)strlen(p);
    w += (size_t)snprintf(b + w, cap - w, "%s%.*s", i == 0 ? "" : i == n - 1 ? " or " : ", ", k, p);
    i++;
    p = e ? e + 1 : p + k;
  }
}

bool vg_opt_device(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  vg_device d;
  if (!vg_parse_device(v, &d)) {
    fprintf(stderr, "vigil %s: bad value '%s' for %s: want cpu or cuda\n", cmd, v, o->name);
    return false;
  }
  if (o->off) *(const char **)vg_opt_field(opts, o) = v;
  return true;
}

bool vg_opt_dtype(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  vg_dtype d;
  if (!vg_parse_dtype(v, &d)) {
    fprintf(stderr, "vigil %s: bad value '%s' for %s: want f32 or f16\n", cmd, v, o->name);
    return false;
  }
  if (o->off) *(const char **)vg_opt_field(opts, o) = v;
  return true;
}

static bool ov_full(const char *cmd, const vg_opt *o) {
  fprintf(stderr, "vigil %s: %s: too many method config overrides\n", cmd, o->name);
  return false;
}

bool vg_opt_ov_str(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  return vg_run_ov_set_str(vg_opt_field(opts, o), o->key, v) || ov_full(cmd, o);
}

bool vg_opt_ov_json(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  char b[40] = "true";
  if (v && (o->kind == VG_OPT_INT || o->kind == VG_OPT_I64)) {   /* the number as checked, in JSON form */
    int64_t x = 0;
    vg_parse_i64(v, &x, NULL);
    snprintf(b, sizeof b, "%" PRId64, x);
  } else if (v) {
    snprintf(b, sizeof b, "%s", v);
  }
  return vg_run_ov_set(vg_opt_field(opts, o), o->key, b) || ov_full(cmd, o);
}

bool vg_opt_ov_set(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  if (!vg_arg_set_value_ok(cmd, v)) return false;
  vg_run_overrides *ov = vg_opt_field(opts, o);
  const char *eq = strchr(v, '=');
  if (!eq || eq == v) {
    fprintf(stderr, "vigil %s: --set wants KEY=VALUE, got '%s'\n", cmd, v);
    return false;
  }
  if (vg_run_ov_set_arg(ov, v)) return true;
  if (ov->n >= (int)(sizeof ov->v / sizeof ov->v[0])) return ov_full(cmd, o);
  fprintf(stderr, "vigil %s: --set wants KEY=VALUE with a key of at most %d characters, got '%s'\n", cmd,
          (int)sizeof ov->v[0].key - 1, v);
  return false;
}

static const vg_opt *find(const vg_cmd_spec *c, const char *a) {
  for (const vg_opt *o = c->opts; o && o->kind != VG_OPT_END; o++) {
    if (o->kind == VG_OPT_HEAD || o->kind == VG_OPT_NOTE) continue;
    if ((o->name && !strcmp(a, o->name)) || (o->alias && !strcmp(a, o->alias))) return o;
  }
  return NULL;
}

/* the value of row o: parsed, range-checked, stored; false = refused (message printed) */
static bool take(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  void *dst = o->off && !o->hook ? field(opts, o->off) : NULL;   /* a hook stores for itself */
  switch (o->kind) {
    case VG_OPT_END: case VG_OPT_HEAD: case VG_OPT_NOTE: return false;
    case VG_OPT_FLAG: if (dst) *(bool *)dst = true; break;
    case VG_OPT_INT: {
      int x;
      if (!vg_arg_int(cmd, o->name, v, (int)o->lo, (int)o->hi, &x)) return false;
      if (dst) *(int *)dst = x;
      break;
    }
    case VG_OPT_I64: {
      int64_t x;
      if (!vg_arg_i64(cmd, o->name, v, o->lo, o->hi, &x)) return false;
      if (dst) *(int64_t *)dst = x;
      break;
    }
    case VG_OPT_U64: {
      uint64_t x;
      if (!vg_arg_u64(cmd, o->name, v, o->uhi, &x)) return false;
      if (dst) *(uint64_t *)dst = x;
      break;
    }
    case VG_OPT_F64: {
      double x;
      if (!vg_arg_f64(cmd, o->name, v, o->flo, o->lo_open, o->fhi, o->hi_open, &x)) return false;
      if (dst) *(double *)dst = x;
      break;
    }
    case VG_OPT_ENUM:
      if (o->choices && !in_choices(o->choices, v)) {
        char w[160];
        want_choices(o->choices, w, sizeof w);
        fprintf(stderr, "vigil %s: bad value '%s' for %s: %s\n", cmd, v, o->name, w);
        return false;
      }
      /* fall through */
    case VG_OPT_STR: case VG_OPT_LIST:
      if (dst) *(const char **)dst = v;
      break;
  }
  if (o->given) *(bool *)field(opts, o->given) = true;
  return !o->hook || o->hook(cmd, o, v, opts);
}

static bool is_positional(const vg_cmd_spec *c, const char *a) {
  return a[0] != '-' || !a[1] || (c->dash_number_pos && ((a[1] >= '0' && a[1] <= '9') || a[1] == '.'));
}

int vg_opts_parse(const vg_cmd_spec *c, int argc, char **argv, void *opts, const char **pos, int *npos) {
  int n = 0, first = 0;
  if (npos) *npos = 0;
  if (c->lead) {
    if (argc < 1) return vg_opts_usage(c, stderr);
    if (vg_arg_is_help(argv[0])) return vg_opts_usage(c, stdout);
    if (argv[0][0] == '-') {
      fprintf(stderr, "vigil %s: unknown option '%s' (the %s comes first; see vigil %s --help)\n", c->name, argv[0],
              c->lead, c->name);
      return 2;
    }
    if (pos) pos[n] = argv[0];
    n++;
    first = 1;
  }
  int free_pos = 0;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (vg_arg_is_help(a)) {
      int rc = vg_opts_usage(c, stdout);
      if (first && c->lead_help) c->lead_help(stdout, argv[0]);
      return rc;
    }
    if (is_positional(c, a)) {
      if (c->max_pos == 0) {
        fprintf(stderr, "vigil %s: unknown option '%s' (see vigil %s --help)\n", c->name, a, c->name);
        return 2;
      }
      if (c->max_pos > 0 && free_pos >= c->max_pos) {
        fprintf(stderr, "vigil %s: unexpected argument '%s' (see vigil %s --help)\n", c->name, a, c->name);
        return 2;
      }
      if (pos) pos[n] = a;
      n++;
      free_pos++;
      continue;
    }
    const vg_opt *o = find(c, a);
    if (!o) {
      fprintf(stderr, "vigil %s: unknown option '%s' (see vigil %s --help)\n", c->name, a, c->name);
      return 2;
    }
    const char *v = NULL;
    if (o->kind != VG_OPT_FLAG) {
      if (i + 1 >= argc) {
        fprintf(stderr, "vigil %s: %s needs a value%s%s%s (see vigil %s --help)\n", c->name, a, o->arg ? " (" : "",
                o->arg ? o->arg : "", o->arg ? ")" : "", c->name);
        return 2;
      }
      v = argv[++i];
    }
    if (!take(c->name, o, v, opts)) return 2;
  }
  if (npos) *npos = n;
  return -1;
}

/* the left column of row o: its label, else "name[|alias] arg" */
static void left(const vg_opt *o, char *b, size_t cap) {
  const char *bar = o->alias ? "|" : "", *alias = o->alias ? o->alias : "";
  if (o->label) snprintf(b, cap, "%s", o->label);
  else if (o->kind == VG_OPT_FLAG || !o->arg) snprintf(b, cap, "%s%s%s", o->name, bar, alias);
  else snprintf(b, cap, "%s%s%s %s", o->name, bar, alias, o->arg);
}

int vg_opts_usage(const vg_cmd_spec *c, FILE *f) {
  int w = c->width > 0 ? c->width : 21;
  if (c->usage) fputs(c->usage, f);
  if (c->more) c->more(f);
  for (const vg_opt *o = c->opts; o && o->kind != VG_OPT_END; o++) {
    if (o->kind == VG_OPT_HEAD || o->kind == VG_OPT_NOTE) { fprintf(f, "%s\n", o->help ? o->help : ""); continue; }
    if (!o->help) continue;   /* shown with the row above */
    char l[160];
    left(o, l, sizeof l);
    fprintf(f, "  %-*s ", w, l);
    for (const char *p = o->help; *p;) {
      const char *e = strchr(p, '\n');
      int k = e ? (int)(e - p) : (int)strlen(p);
      fprintf(f, "%.*s", k, p);
      if (!e) break;
      fprintf(f, "\n%*s", w + 3, "");
      p = e + 1;
    }
    if (o->def) fprintf(f, " (default %s)", o->def);
    fputc('\n', f);
  }
  if (c->footer) fputs(c->footer, f);
  return f == stdout ? 0 : 2;
}

void vg_opts_dump(const vg_cmd_spec *c, FILE *f) {
  fprintf(f, "%s\t%s\t-\t-\tcommand\t-\n", c->name, c->example ? c->example : "");
  for (const vg_opt *o = c->opts; o && o->kind != VG_OPT_END; o++) {
    char r[200] = "-";
    const char *kind = "?";
    switch (o->kind) {
      case VG_OPT_END: case VG_OPT_HEAD: case VG_OPT_NOTE: continue;
      case VG_OPT_FLAG: kind = "flag"; break;
      case VG_OPT_INT: case VG_OPT_I64:
        kind = o->kind == VG_OPT_INT ? "int" : "i64";
        snprintf(r, sizeof r, "an integer in [%" PRId64 ", %" PRId64 "]", o->lo, o->hi);
        break;
      case VG_OPT_U64: kind = "u64"; snprintf(r, sizeof r, "an integer in [0, %" PRIu64 "]", o->uhi); break;
      case VG_OPT_F64:
        kind = "f64";
        snprintf(r, sizeof r, "a number in %c%.9g, %.9g%c", o->lo_open ? '(' : '[', o->flo, o->fhi, o->hi_open ? ')' : ']');
        break;
      case VG_OPT_STR: kind = "str"; break;
      case VG_OPT_ENUM: kind = "enum"; snprintf(r, sizeof r, "%s", o->choices ? o->choices : o->arg ? o->arg : "-"); break;
      case VG_OPT_LIST: kind = "list"; break;
    }
    fprintf(f, "%s\t%s\t%s\t%s\t%s\t%s\n", c->name, c->example ? c->example : "", o->name, o->alias ? o->alias : "-", kind, r);
  }
}
