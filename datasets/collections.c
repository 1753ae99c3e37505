/* collections.c — dataset listings: MVTec AD, MVTec LOCO, VisA, BTAD, generic folders,
 * ImageNet-style folders. No image is decoded here except LOCO masks (to match each mask
 * to its defects_config.json entry by pixel value). */
#include "datasets/datasets.h"
#include "base/json.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdlib.h>
#ifdef __linux__
#include <sys/vfs.h>
#endif

const char *vg_split_name(vg_ds_split s) {
  switch (s) {
    case VG_SPLIT_TRAIN: return "train";
    case VG_SPLIT_VAL: return "val";
    case VG_SPLIT_TEST: return "test";
  }
  return "?";
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static char *pjoin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pjoin(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *p = malloc((size_t)n + 1);
  if (!p) return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static bool is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool vg_is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot || dot == name) return false;
  static const char *ext[] = {"png", "jpg", "jpeg", "bmp", "ppm", "pgm", "pnm", "tif", "tiff"};
  for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
    if (strcasecmp(dot + 1, ext[i]) == 0) return true;
  return false;
}

void vg_sample_rel(const vg_sample *s, char *buf, size_t cap) {
  const char *base = strrchr(s->image, '/');
  base = base ? base + 1 : s->image;
  const char *dot = strrchr(base, '.');
  int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
  snprintf(buf, cap, "%s/%.*s", s->defect, stem, base);
}

/* ---- string lists ---- */
typedef struct { char **v; int64_t n, cap; } strlist;
static void sl_free(strlist *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}
static vg_status sl_push(strlist *l, char *s) {  /* takes s */
  if (!s) return vg_fail(VG_ERR_NOMEM, "datasets: out of memory");
  if (l->n == l->cap) {
    int64_t c = l->cap ? l->cap * 2 : 16;
    char **v = realloc(l->v, (size_t)c * sizeof *v);
    if (!v) { free(s); return vg_fail(VG_ERR_NOMEM, "datasets: out of memory"); }
    l->v = v; l->cap = c;
  }
  l->v[l->n++] = s;
  return VG_OK;
}
static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}
static void sl_sort(strlist *l) { if (l->n > 1) qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_str); }

/* Entries of dir (names only), sorted. want_dirs: subfolders, else image files. */
static vg_status list_dir(const char *dir, bool want_dirs, strlist *out) {
  DIR *d = opendir(dir);
  if (!d) return vg_fail(VG_ERR_IO, "%s: cannot open folder (%s)", dir, strerror(errno));
  struct dirent *e;
  vg_status st = VG_OK;
  while (st == VG_OK && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char *full = pjoin("%s/%s", dir, e->d_name);
    if (!full) { st = vg_fail(VG_ERR_NOMEM, "datasets: out of memory"); break; }
    bool ok = want_dirs ? is_dir(full) : (is_file(full) && vg_is_image_name(e->d_name));
    free(full);
    if (ok) st = sl_push(out, xstrdup(e->d_name));
  }
  closedir(d);
  if (st != VG_OK) { sl_free(out); return st; }
  sl_sort(out);
  return VG_OK;
}

/* ---- dataset building ---- */
void vg_dataset_free(vg_dataset *ds) {
  if (!ds) return;
  for (int64_t i = 0; i < ds->n; i++) {
    vg_sample *s = &ds->samples[i];
    free(s->image);
    free(s->defect);
    for (int k = 0; k < s->n_masks; k++) free(s->masks[k].path);
    free(s->masks);
  }
  free(ds->samples);
  memset(ds, 0, sizeof *ds);
}

/* Appends a sample; takes ownership of image (and mask when non-NULL). */
static vg_status ds_add(vg_dataset *ds, char *image, int label, const char *defect, vg_ds_split split,
                        char *mask) {
  if (!image) { free(mask); return vg_fail(VG_ERR_NOMEM, "datasets: out of memory"); }
  if (ds->n == ds->cap) {
    int64_t c = ds->cap ? ds->cap * 2 : 64;
    vg_sample *v = realloc(ds->samples, (size_t)c * sizeof *v);
    if (!v) { free(image); free(mask); return vg_fail(VG_ERR_NOMEM, "datasets: out of memory"); }
    ds->samples = v; ds->cap = c;
  }
  vg_sample *s = &ds->samples[ds->n];
  memset(s, 0, sizeof *s);
  s->image = image;
  s->label = label;
  s->split = split;
  s->defect = xstrdup(defect);
  if (!s->defect) { free(image); free(mask); return vg_fail(VG_ERR_NOMEM, "datasets: out of memory"); }
  ds->n++;
  if (mask) {
    s->masks = calloc(1, sizeof *s->masks);
    if (!s->masks) { free(mask); return vg_fail(VG_ERR_NOMEM, "datasets: out of memory"); }
    s->masks[0].path = mask;
    s->n_masks = 1;
  }
  return VG_OK;
}

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Marks the training samples [first, ds->n): a seeded fraction become VAL; then keeps
 * only those of the requested split (TRAIN or VAL). */
static void apply_train_split(vg_dataset *ds, int64_t first, const vg_split_opts *o) {
  int64_t n = ds->n - first;
  if (n <= 0) return;
  double f = o->val_fraction < 0 ? 0 : o->val_fraction > 1 ? 1 : o->val_fraction;
  int64_t nval = (int64_t)(f * (double)n + 0.5);
  if (nval > 0) {
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    VG_ASSERT(perm);
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t st = o->seed ^ 0x56494C4947ull;
    for (int64_t i = n - 1; i > 0; i--) {
      int64_t j = (int64_t)(splitmix64(&st) % (uint64_t)(i + 1));
      int64_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    for (int64_t i = 0; i < nval; i++) ds->samples[first + perm[i]].split = VG_SPLIT_VAL;
    free(perm);
  }
  /* compact, keeping order */
  int64_t w = first;
  for (int64_t i = first; i < ds->n; i++) {
    vg_sample *s = &ds->samples[i];
    if (s->split == o->split) { ds->samples[w++] = *s; continue; }
    free(s->image); free(s->defect);
    for (int k = 0; k < s->n_masks; k++) free(s->masks[k].path);
    free(s->masks);
  }
  ds->n = w;
}

static const vg_split_opts k_default_split = {VG_SPLIT_TRAIN, 0, 0};

/* Adds every image of dir with one label/defect/split. */
static vg_status add_folder(vg_dataset *ds, const char *dir, int label, const char *defect,
                            vg_ds_split split) {
  strlist l = {0};
  vg_status st = list_dir(dir, false, &l);
  for (int64_t i = 0; st == VG_OK && i < l.n; i++)
    st = ds_add(ds, pjoin("%s/%s", dir, l.v[i]), label, defect, split, NULL);
  sl_free(&l);
  return st;
}

static void stem_of(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", name);
  char *dot = strrchr(buf, '.');
  if (dot && dot != buf) *dot = 0;
}

/* Finds in dir a mask for image stem: <stem><suffix>.<png|bmp|...>; NULL if none. */
static char *find_mask(const char *dir, const strlist *names, const char *stem, const char *suffix) {
  char want[1024], s[1024];
  snprintf(want, sizeof want, "%s%s", stem, suffix);
  for (int64_t i = 0; i < names->n; i++) {
    stem_of(names->v[i], s, sizeof s);
    if (strcmp(s, want) == 0) return pjoin("%s/%s", dir, names->v[i]);
  }
  return NULL;
}

static vg_status ds_finish(vg_status st, vg_dataset *ds) {
  if (st != VG_OK) vg_dataset_free(ds);
  return st;
}

/* ---- MVTec AD ---- */
vg_status vg_ds_mvtec(const char *root, const char *category, const vg_split_opts *o, vg_dataset *out) {
  if (!o) o = &k_default_split;
  memset(out, 0, sizeof *out);
  if (!root || !category) return vg_fail(VG_ERR_ARG, "mvtec: root and category are required");
  const char *layout = "expected MVTec AD layout <root>/<category>/train/good";
  char *base = pjoin("%s/%s", root, category);
  char *train = pjoin("%s/train/good", base);
  vg_status st = VG_OK;
  if (!base || !train) st = vg_fail(VG_ERR_NOMEM, "mvtec: out of memory");
  else if (!is_dir(train)) st = vg_fail(VG_ERR_IO, "mvtec: %s: missing (%s)", train, layout);
  if (st == VG_OK && o->split != VG_SPLIT_TEST) {
    st = add_folder(out, train, 0, "good", VG_SPLIT_TRAIN);
    if (st == VG_OK) apply_train_split(out, 0, o);
  } else if (st == VG_OK) {
    char *test = pjoin("%s/test", base), *gt = pjoin("%s/ground_truth", base);
    strlist defects = {0};
    if (!is_dir(test))
      st = vg_fail(VG_ERR_IO, "mvtec: %s: missing (expected MVTec AD layout <root>/<category>/test/<defect>)", test);
    else
      st = list_dir(test, true, &defects);
    for (int64_t d = 0; st == VG_OK && d < defects.n; d++) {
      const char *def = defects.v[d];
      char *dir = pjoin("%s/%s", test, def);
      bool good = strcmp(def, "good") == 0;
      strlist imgs = {0}, masks = {0};
      char *mdir = pjoin("%s/%s", gt, def);
      st = list_dir(dir, false, &imgs);
      if (st == VG_OK && !good) {
        if (!is_dir(mdir))
          st = vg_fail(VG_ERR_IO, "mvtec: %s: missing (expected MVTec AD layout <root>/<category>/ground_truth/<defect>/<name>_mask.png)", mdir);
        else
          st = list_dir(mdir, false, &masks);
      }
      for (int64_t i = 0; st == VG_OK && i < imgs.n; i++) {
        char *m = NULL;
        if (!good) {
          char stem[1024];
          stem_of(imgs.v[i], stem, sizeof stem);
          m = find_mask(mdir, &masks, stem, "_mask");
          if (!m) { st = vg_fail(VG_ERR_IO, "mvtec: %s/%s_mask.png: missing (every anomalous test image needs a ground-truth mask)", mdir, stem); break; }
        }
        st = ds_add(out, pjoin("%s/%s", dir, imgs.v[i]), good ? 0 : 1, def, VG_SPLIT_TEST, m);
      }
      sl_free(&imgs); sl_free(&masks);
      free(dir); free(mdir);
    }
    sl_free(&defects);
    free(test); free(gt);
  }
  free(base); free(train);
  return ds_finish(st, out);
}

/* ---- MVTec LOCO ---- */
void vg_loco_config_free(vg_loco_config *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++) free(c->d[i].defect_name);
  free(c->d);
  c->d = NULL; c->n = 0;
}

vg_status vg_loco_config_load(const char *path, vg_loco_config *out) {
  memset(out, 0, sizeof *out);
  uint8_t *buf = NULL; size_t n = 0;
  vg_status st = vg_image_read_file(path, &buf, &n, 16u << 20);
  if (st != VG_OK) return vg_fail_prefix("loco: defects_config.json");
  vg_json *doc = NULL;
  st = vg_json_parse((const char *)buf, n, NULL, &doc);
  free(buf);
  if (st != VG_OK) return vg_fail_prefix("loco: %s", path);
  /* a relative saturation_threshold is a fraction of the defect's area, in (0, 1] */
  const char *exp = "expected an array of {defect_name, pixel_value in [1, 65535], saturation_threshold >= 0 "
                    "(in (0, 1] when relative_saturation), relative_saturation}";
  if (doc->type != VG_JSON_ARRAY) { vg_json_free(doc); return vg_fail(VG_ERR_FORMAT, "loco: %s: not an array (%s)", path, exp); }
  out->d = calloc((size_t)(doc->count ? doc->count : 1), sizeof *out->d);
  if (!out->d) { vg_json_free(doc); return vg_fail(VG_ERR_NOMEM, "loco: out of memory"); }
  for (int64_t i = 0; i < doc->count; i++) {
    const vg_json *e = vg_json_at(doc, i);
    const char *name = vg_json_as_string(vg_json_get(e, "defect_name"));
    int64_t pv; double thr; bool rel;
    if (!name || !vg_json_as_int64(vg_json_get(e, "pixel_value"), &pv) || pv < 1 || pv > 65535 ||
        !vg_json_as_double(vg_json_get(e, "saturation_threshold"), &thr) || thr < 0 ||
        !vg_json_as_bool(vg_json_get(e, "relative_saturation"), &rel) || (rel && !(thr > 0 && thr <= 1))) {
      vg_json_free(doc);
      vg_loco_config_free(out);
      return vg_fail(VG_ERR_FORMAT, "loco: %s: entry %lld malformed (%s)", path, (long long)i, exp);
    }
    vg_loco_defect *d = &out->d[out->n++];
    d->defect_name = xstrdup(name);
    d->pixel_value = (int)pv;
    d->saturation_threshold = thr;
    d->relative_saturation = rel;
    if (!d->defect_name) { vg_json_free(doc); vg_loco_config_free(out); return vg_fail(VG_ERR_NOMEM, "loco: out of memory"); }
  }
  vg_json_free(doc);
  return VG_OK;
}

/* Decodes a LOCO mask and returns its (single) nonzero pixel value in *pv. */
static vg_status mask_value(const char *path, int *pv) {
  vg_image im;
  vg_status st = vg_image_load(path, &im, NULL);
  if (st != VG_OK) return st;
  int64_t n = (int64_t)im.w * im.h;
  int v = 0;
  for (int64_t i = 0; i < n && !v; i++)
    v = im.depth == 16 ? ((uint16_t *)im.data)[i * im.c] : ((uint8_t *)im.data)[i * im.c];
  vg_image_free(&im);
  if (!v) return vg_fail(VG_ERR_FORMAT, "loco: %s: mask has no defect pixel", path);
  *pv = v;
  return VG_OK;
}

vg_status vg_ds_loco(const char *root, const char *category, const vg_split_opts *o, vg_dataset *out) {
  if (!o) o = &k_default_split;
  memset(out, 0, sizeof *out);
  if (!root || !category) return vg_fail(VG_ERR_ARG, "loco: root and category are required");
  char *base = pjoin("%s/%s", root, category);
  if (!base) return vg_fail(VG_ERR_NOMEM, "loco: out of memory");
  vg_status st = VG_OK;
  if (o->split == VG_SPLIT_TRAIN || o->split == VG_SPLIT_VAL) {
    const char *sub = o->split == VG_SPLIT_TRAIN ? "train/good" : "validation/good";
    char *dir = pjoin("%s/%s", base, sub);
    if (!is_dir(dir))
      st = vg_fail(VG_ERR_IO, "loco: %s: missing (expected MVTec LOCO layout <root>/<category>/%s)", dir, sub);
    else
      st = add_folder(out, dir, 0, "good", o->split);
    free(dir);
    free(base);
    return ds_finish(st, out);
  }
  vg_loco_config cfg = {0};
  char *cpath = pjoin("%s/defects_config.json", base);
  if (!is_file(cpath))
    st = vg_fail(VG_ERR_IO, "loco: %s: missing (expected MVTec LOCO layout <root>/<category>/defects_config.json)", cpath);
  else
    st = vg_loco_config_load(cpath, &cfg);
  static const char *types[] = {"good", "logical_anomalies", "structural_anomalies"};
  for (int t = 0; st == VG_OK && t < 3; t++) {
    char *dir = pjoin("%s/test/%s", base, types[t]);
    strlist imgs = {0};
    if (!is_dir(dir))
      st = vg_fail(VG_ERR_IO, "loco: %s: missing (expected MVTec LOCO layout <root>/<category>/test/{good,logical_anomalies,structural_anomalies})", dir);
    else
      st = list_dir(dir, false, &imgs);
    for (int64_t i = 0; st == VG_OK && i < imgs.n; i++) {
      st = ds_add(out, pjoin("%s/%s", dir, imgs.v[i]), t ? 1 : 0, types[t], VG_SPLIT_TEST, NULL);
      if (st != VG_OK || t == 0) continue;
      char stem[1024];
      stem_of(imgs.v[i], stem, sizeof stem);
      char *gdir = pjoin("%s/ground_truth/%s/%s", base, types[t], stem);
      strlist masks = {0};
      if (!gdir) st = vg_fail(VG_ERR_NOMEM, "loco: out of memory");
      else if (!is_dir(gdir))
        st = vg_fail(VG_ERR_IO, "loco: %s: missing (expected MVTec LOCO layout <root>/<category>/ground_truth/<type>/<image stem>/<n>.png)", gdir);
      else
        st = list_dir(gdir, false, &masks);
      if (st == VG_OK && masks.n == 0)
        st = vg_fail(VG_ERR_IO, "loco: %s: no mask images (expected one .png per defect)", gdir);
      vg_sample *s = &out->samples[out->n - 1];
      if (st == VG_OK) {
        s->masks = calloc((size_t)masks.n, sizeof *s->masks);
        if (!s->masks) st = vg_fail(VG_ERR_NOMEM, "loco: out of memory");
      }
      for (int64_t k = 0; st == VG_OK && k < masks.n; k++) {
        vg_mask_ref *m = &s->masks[k];
        m->path = pjoin("%s/%s", gdir, masks.v[k]);
        if (!m->path) { st = vg_fail(VG_ERR_NOMEM, "loco: out of memory"); break; }
        s->n_masks++;
        int pv = 0;
        st = mask_value(m->path, &pv);
        if (st != VG_OK) break;
        int found = -1;
        for (int c = 0; c < cfg.n; c++) if (cfg.d[c].pixel_value == pv) found = c;
        if (found < 0) { st = vg_fail(VG_ERR_FORMAT, "loco: %s: pixel value %d not in %s", m->path, pv, cpath); break; }
        m->has_saturation = true;
        m->pixel_value = pv;
        m->saturation_threshold = cfg.d[found].saturation_threshold;
        m->relative_saturation = cfg.d[found].relative_saturation;
      }
      sl_free(&masks);
      free(gdir);
    }
    sl_free(&imgs);
    free(dir);
  }
  vg_loco_config_free(&cfg);
  free(cpath);
  free(base);
  return ds_finish(st, out);
}

/* ---- VisA ---- */
/* Splits one CSV line (no quoting in 1cls.csv; quotes are refused) into up to 8 fields. */
static int csv_fields(char *line, char **f, int max) {
  int n = 0;
  char *p = line;
  for (;;) {
    if (n == max) return -1;
    f[n++] = p;
    char *c = strchr(p, ',');
    if (!c) break;
    *c = 0;
    p = c + 1;
  }
  for (int i = 0; i < n; i++) {
    size_t l = strlen(f[i]);
    while (l && (f[i][l - 1] == '\r' || f[i][l - 1] == '\n' || f[i][l - 1] == ' ')) f[i][--l] = 0;
    if (strchr(f[i], '"')) return -1;
  }
  return n;
}

vg_status vg_ds_visa(const char *root, const char *category, const vg_split_opts *o, vg_dataset *out) {
  if (!o) o = &k_default_split;
  memset(out, 0, sizeof *out);
  if (!root) return vg_fail(VG_ERR_ARG, "visa: root is required");
  char *csv = pjoin("%s/split_csv/1cls.csv", root);
  if (!csv) return vg_fail(VG_ERR_NOMEM, "visa: out of memory");
  if (!is_file(csv)) {
    vg_status st = vg_fail(VG_ERR_IO, "visa: %s: missing (expected VisA layout <root>/split_csv/1cls.csv)", csv);
    free(csv);
    return st;
  }
  uint8_t *buf = NULL; size_t n = 0;
  vg_status st = vg_image_read_file(csv, &buf, &n, 256u << 20);
  if (st != VG_OK) { free(csv); return st; }
  char *text = realloc(buf, n + 1);
  if (!text) { free(buf); free(csv); return vg_fail(VG_ERR_NOMEM, "visa: out of memory"); }
  text[n] = 0;
  const char *hdr = "object,split,label,image,mask";
  int lineno = 0;
  char *save = NULL;
  bool header = false;
  for (char *line = strtok_r(text, "\n", &save); st == VG_OK && line; line = strtok_r(NULL, "\n", &save)) {
    lineno++;
    char *f[8];
    int nf = csv_fields(line, f, 8);
    if (nf == 1 && f[0][0] == 0) continue;  /* blank line */
    if (!header) {
      if (nf != 5 || strcmp(f[0], "object") || strcmp(f[1], "split") || strcmp(f[2], "label") ||
          strcmp(f[3], "image") || strcmp(f[4], "mask"))
        st = vg_fail(VG_ERR_FORMAT, "visa: %s:%d: bad header (expected \"%s\")", csv, lineno, hdr);
      header = true;
      continue;
    }
    if (nf != 5) { st = vg_fail(VG_ERR_FORMAT, "visa: %s:%d: expected 5 fields (%s), got %d", csv, lineno, hdr, nf); break; }
    bool train = strcmp(f[1], "train") == 0, test = strcmp(f[1], "test") == 0;
    bool normal = strcmp(f[2], "normal") == 0, anom = strcmp(f[2], "anomaly") == 0;
    if ((!train && !test) || (!normal && !anom) || !f[3][0] || (anom && !f[4][0])) {
      st = vg_fail(VG_ERR_FORMAT, "visa: %s:%d: malformed row (split train|test, label normal|anomaly, image path, mask path for anomalies)", csv, lineno);
      break;
    }
    if (category && strcmp(category, f[0])) continue;
    if (train != (o->split != VG_SPLIT_TEST)) continue;
    char *m = f[4][0] ? pjoin("%s/%s", root, f[4]) : NULL;
    st = ds_add(out, pjoin("%s/%s", root, f[3]), anom ? 1 : 0, anom ? "anomaly" : "good",
                train ? VG_SPLIT_TRAIN : VG_SPLIT_TEST, m);
  }
  if (st == VG_OK && !header) st = vg_fail(VG_ERR_FORMAT, "visa: %s: empty (expected header \"%s\")", csv, hdr);
  if (st == VG_OK && out->n == 0 && category)
    st = vg_fail(VG_ERR_ARG, "visa: %s: no rows for object '%s' in split %s", csv, category, vg_split_name(o->split));
  if (st == VG_OK && o->split != VG_SPLIT_TEST) apply_train_split(out, 0, o);
  free(text);
  free(csv);
  return ds_finish(st, out);
}

/* ---- BTAD ---- */
vg_status vg_ds_btad(const char *root, const char *category, const vg_split_opts *o, vg_dataset *out) {
  if (!o) o = &k_default_split;
  memset(out, 0, sizeof *out);
  if (!root || !category) return vg_fail(VG_ERR_ARG, "btad: root and category (01, 02 or 03) are required");
  char *base = pjoin("%s/%s", root, category);
  char *train = pjoin("%s/train/ok", base);
  vg_status st = VG_OK;
  if (!base || !train) st = vg_fail(VG_ERR_NOMEM, "btad: out of memory");
  else if (!is_dir(train)) st = vg_fail(VG_ERR_IO, "btad: %s: missing (expected BTAD layout <root>/<01|02|03>/train/ok)", train);
  if (st == VG_OK && o->split != VG_SPLIT_TEST) {
    st = add_folder(out, train, 0, "ok", VG_SPLIT_TRAIN);
    if (st == VG_OK) apply_train_split(out, 0, o);
  } else if (st == VG_OK) {
    char *ok = pjoin("%s/test/ok", base), *ko = pjoin("%s/test/ko", base), *gt = pjoin("%s/ground_truth/ko", base);
    strlist imgs = {0}, masks = {0};
    if (!is_dir(ok)) st = vg_fail(VG_ERR_IO, "btad: %s: missing (expected BTAD layout <root>/<01|02|03>/test/ok)", ok);
    else if (!is_dir(ko)) st = vg_fail(VG_ERR_IO, "btad: %s: missing (expected BTAD layout <root>/<01|02|03>/test/ko)", ko);
    else if (!is_dir(gt)) st = vg_fail(VG_ERR_IO, "btad: %s: missing (expected BTAD layout <root>/<01|02|03>/ground_truth/ko)", gt);
    if (st == VG_OK) st = add_folder(out, ok, 0, "ok", VG_SPLIT_TEST);
    if (st == VG_OK) st = list_dir(ko, false, &imgs);
    if (st == VG_OK) st = list_dir(gt, false, &masks);
    for (int64_t i = 0; st == VG_OK && i < imgs.n; i++) {
      char stem[1024];
      stem_of(imgs.v[i], stem, sizeof stem);
      char *m = find_mask(gt, &masks, stem, "");
      if (!m) { st = vg_fail(VG_ERR_IO, "btad: %s/%s.png: missing (every ko image needs a mask with the same stem, .png or .bmp)", gt, stem); break; }
      st = ds_add(out, pjoin("%s/%s", ko, imgs.v[i]), 1, "ko", VG_SPLIT_TEST, m);
    }
    sl_free(&imgs); sl_free(&masks);
    free(ok); free(ko); free(gt);
  }
  free(base); free(train);
  return ds_finish(st, out);
}

/* ---- generic folders ---- */
vg_status vg_ds_folder(const vg_folder_spec *f, const vg_split_opts *o, vg_dataset *out) {
  if (!o) o = &k_default_split;
  memset(out, 0, sizeof *out);
  if (!f || !f->normal_dir) return vg_fail(VG_ERR_ARG, "folder: normal_dir is required");
  vg_status st = VG_OK;
  if (!is_dir(f->normal_dir)) return vg_fail(VG_ERR_IO, "folder: %s: missing (expected the folder of normal training images)", f->normal_dir);
  if (o->split != VG_SPLIT_TEST) {
    st = add_folder(out, f->normal_dir, 0, "good", VG_SPLIT_TRAIN);
    if (st == VG_OK) apply_train_split(out, 0, o);
    return ds_finish(st, out);
  }
  if (!f->abnormal_dir || !is_dir(f->abnormal_dir))
    return vg_fail(VG_ERR_IO, "folder: %s: missing (expected the folder of anomalous test images)", f->abnormal_dir ? f->abnormal_dir : "(abnormal_dir not set)");
  if (f->mask_dir && !is_dir(f->mask_dir))
    return vg_fail(VG_ERR_IO, "folder: %s: missing (expected the mask folder, masks named like the abnormal images)", f->mask_dir);
  if (f->normal_test_dir && !is_dir(f->normal_test_dir))
    return vg_fail(VG_ERR_IO, "folder: %s: missing (expected the folder of normal test images)", f->normal_test_dir);
  if (f->normal_test_dir) st = add_folder(out, f->normal_test_dir, 0, "good", VG_SPLIT_TEST);
  strlist imgs = {0}, masks = {0};
  if (st == VG_OK) st = list_dir(f->abnormal_dir, false, &imgs);
  if (st == VG_OK && f->mask_dir) st = list_dir(f->mask_dir, false, &masks);
  for (int64_t i = 0; st == VG_OK && i < imgs.n; i++) {
    char *m = NULL;
    if (f->mask_dir) {
      char stem[1024];
      stem_of(imgs.v[i], stem, sizeof stem);
      m = find_mask(f->mask_dir, &masks, stem, "");
      if (!m) m = find_mask(f->mask_dir, &masks, stem, "_mask");
      if (!m) { st = vg_fail(VG_ERR_IO, "folder: %s: no mask for %s (expected %s/%s.<ext> or %s_mask.<ext>)", f->mask_dir, imgs.v[i], f->mask_dir, stem, stem); break; }
    }
    st = ds_add(out, pjoin("%s/%s", f->abnormal_dir, imgs.v[i]), 1, "anomaly", VG_SPLIT_TEST, m);
  }
  sl_free(&imgs); sl_free(&masks);
  return ds_finish(st, out);
}

/* ---- ImageNet-style ----
 * The walk visits each directory (device, inode) once. Real subfolders are walked first;
 * symbolic links to folders are queued and followed afterwards, in sorted order, unless
 * their target was already visited (a loop, a diamond of links, a link to a real
 * folder): then the link is skipped with a warning naming it. So a link never hides the
 * real folder, a loop of links ends, and N links to one folder list its images once.
 * Nesting deeper than VG_WALK_MAX_DEPTH folders is an error, and so are more than
 * VG_WALK_MAX_ENTRIES names in all the folders together (the walk's time and memory stay
 * bounded). A link to a folder that holds the image folder (a link to / or to an
 * ancestor) is skipped with a warning: following it would list the whole tree above.
 * Kernel pseudo file systems (/proc, /sys, /dev/pts, cgroups, ...) are never walked: a
 * subfolder on one (a link to /proc) is skipped with a warning, a root on one is an error. */
#define VG_WALK_MAX_DEPTH 32
#define VG_WALK_MAX_ENTRIES ((int64_t)1 << 24)

/* 1 when path is on a kernel pseudo file system (procfs, sysfs, devpts, cgroup, debugfs,
 * tracefs, securityfs, bpf, configfs, pstore, fusectl, mqueue, binfmt_misc). */
static int on_pseudo_fs(const char *path) {
#ifdef __linux__
  struct statfs fs;
  if (statfs(path, &fs) != 0) return 0;
  static const unsigned long magic[] = {0x9fa0, 0x62656572, 0x1cd1, 0x27e0eb, 0x63677270, 0x64626720, 0x74726163,
                                        0x73636673, 0xcafe4a11, 0x62656570, 0x6165676c, 0x65735543, 0x19800202,
                                        0x42494e4d};
  for (size_t i = 0; i < sizeof magic / sizeof *magic; i++)
    if ((unsigned long)fs.f_type == magic[i]) return 1;
#else
  (void)path;
#endif
  return 0;
}

/* 1 when the folder `target` is `root` itself or one of its ancestors (both resolved). */
static int holds_root(const char *root_real, const char *target) {
  char *t = realpath(target, NULL);
  if (!t || !root_real) { free(t); return 0; }
  size_t n = strlen(t);
  int r = !strcmp(t, "/") || (!strncmp(root_real, t, n) && (root_real[n] == 0 || root_real[n] == '/'));
  free(t);
  return r;
}

typedef struct { dev_t dev; ino_t ino; } dir_id;
typedef struct { dir_id *v; size_t cap, n; unsigned char *used; } dir_set;

static size_t dir_hash(dir_id d, size_t cap) {
  uint64_t x = (uint64_t)d.dev * 0x9E3779B97F4A7C15ull ^ (uint64_t)d.ino;
  x ^= x >> 31; x *= 0xBF58476D1CE4E5B9ull; x ^= x >> 29;
  return (size_t)x & (cap - 1);
}
/* 1 when added, 0 when already present, -1 out of memory. */
static int dir_set_add(dir_set *s, dir_id d) {
  if (2 * (s->n + 1) > s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    dir_id *nv = calloc(nc, sizeof *nv);
    unsigned char *nu = calloc(nc, 1);
    if (!nv || !nu) { free(nv); free(nu); return -1; }
    for (size_t i = 0; i < s->cap; i++)
      if (s->used[i]) {
        size_t h = dir_hash(s->v[i], nc);
        while (nu[h]) h = (h + 1) & (nc - 1);
        nu[h] = 1; nv[h] = s->v[i];
      }
    free(s->v); free(s->used);
    s->v = nv; s->used = nu; s->cap = nc;
  }
  size_t h = dir_hash(d, s->cap);
  while (s->used[h]) {
    if (s->v[h].dev == d.dev && s->v[h].ino == d.ino) return 0;
    h = (h + 1) & (s->cap - 1);
  }
  s->used[h] = 1; s->v[h] = d; s->n++;
  return 1;
}

typedef struct { const char *root; strlist *files, links; dir_set seen; int64_t entries; } walker;

static int rel_depth(const char *rel) {
  int d = rel[0] != 0;
  for (const char *p = rel; *p; p++) d += *p == '/';
  return d;
}

/* Lists the folder root/rel (already marked seen): images into w->files, real subfolders
 * walked at once, links to folders queued in w->links. */
static vg_status walk_dir(walker *w, const char *rel) {
  if (rel_depth(rel) > VG_WALK_MAX_DEPTH)
    return vg_fail(VG_ERR_LIMIT, "image folder: %s/%s: nested deeper than %d levels", w->root, rel, VG_WALK_MAX_DEPTH);
  char *dir = rel[0] ? pjoin("%s/%s", w->root, rel) : xstrdup(w->root);
  if (!dir) return vg_fail(VG_ERR_NOMEM, "image folder: out of memory");
  DIR *d = opendir(dir);
  if (!d) {
    vg_status st = vg_fail(VG_ERR_IO, "%s: cannot open folder (%s)", dir, strerror(errno));
    free(dir);
    return st;
  }
  strlist names = {0};
  vg_status st = VG_OK;
  struct dirent *e;
  while (st == VG_OK && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (++w->entries > VG_WALK_MAX_ENTRIES)
      st = vg_fail(VG_ERR_LIMIT, "image folder: %s: more than %lld names in its folders (the walk's limit)", w->root,
                   (long long)VG_WALK_MAX_ENTRIES);
    else st = sl_push(&names, xstrdup(e->d_name));
  }
  closedir(d);
  sl_sort(&names);
  for (int64_t i = 0; st == VG_OK && i < names.n; i++) {
    char *full = pjoin("%s/%s", dir, names.v[i]);
    char *r = rel[0] ? pjoin("%s/%s", rel, names.v[i]) : xstrdup(names.v[i]);
    struct stat ls, ts;
    if (!full || !r) st = vg_fail(VG_ERR_NOMEM, "image folder: out of memory");
    else if (lstat(full, &ls) != 0 || stat(full, &ts) != 0) {
      /* vanished, or a dangling link: not an image, not a folder */
    } else if (S_ISDIR(ts.st_mode)) {
      if (on_pseudo_fs(full)) vg_image_warn("image folder: %s: skipped, a kernel pseudo file system (/proc, /sys, ...)", full);
      else if (S_ISLNK(ls.st_mode)) { st = sl_push(&w->links, r); r = NULL; }
      else {
        int added = dir_set_add(&w->seen, (dir_id){ts.st_dev, ts.st_ino});
        if (added < 0) st = vg_fail(VG_ERR_NOMEM, "image folder: out of memory");
        else if (added == 0) vg_image_warn("image folder: %s: skipped, the same folder as one already listed", full);
        else st = walk_dir(w, r);
      }
    } else if (S_ISREG(ts.st_mode) && vg_is_image_name(names.v[i])) {
      st = sl_push(w->files, r);
      r = NULL;
    }
    free(full);
    free(r);
  }
  sl_free(&names);
  free(dir);
  return st;
}

static vg_status walk(const char *root, strlist *files) {
  walker w = {root, files, {0}, {0}, 0};
  struct stat ts;
  vg_status st = VG_OK;
  char *root_real = realpath(root, NULL);
  if (stat(root, &ts) != 0 || dir_set_add(&w.seen, (dir_id){ts.st_dev, ts.st_ino}) < 0)
    st = vg_fail(VG_ERR_IO, "image folder: %s: cannot stat (%s)", root, strerror(errno));
  else if (on_pseudo_fs(root))
    st = vg_fail(VG_ERR_IO, "image folder: %s: a kernel pseudo file system (/proc, /sys, ...), not a folder of images", root);
  if (st == VG_OK) st = walk_dir(&w, "");
  for (int64_t i = 0; st == VG_OK && i < w.links.n; i++) {  /* grows while links are followed */
    char *full = pjoin("%s/%s", root, w.links.v[i]);
    if (!full) { st = vg_fail(VG_ERR_NOMEM, "image folder: out of memory"); break; }
    if (holds_root(root_real, full)) {
      vg_image_warn("image folder: %s: symbolic link skipped, it leads to a folder that holds the image folder "
                    "(following it would list the whole tree above)", full);
      free(full);
      continue;
    }
    int added = stat(full, &ts) == 0 && S_ISDIR(ts.st_mode) ? dir_set_add(&w.seen, (dir_id){ts.st_dev, ts.st_ino}) : 0;
    if (added < 0) st = vg_fail(VG_ERR_NOMEM, "image folder: out of memory");
    else if (added == 0)
      vg_image_warn("image folder: %s: symbolic link skipped, its folder is already listed (a link loop or a "
                    "second link to one folder)", full);
    else st = walk_dir(&w, w.links.v[i]);
    free(full);
  }
  sl_free(&w.links);
  free(root_real);
  free(w.seen.v);
  free(w.seen.used);
  return st;
}

vg_status vg_ds_image_folder(const char *root, vg_dataset *out) {
  memset(out, 0, sizeof *out);
  if (!root) return vg_fail(VG_ERR_ARG, "image folder: root is required");
  struct stat rs;
  if (stat(root, &rs) == 0 && !S_ISDIR(rs.st_mode))
    return vg_fail(VG_ERR_IO, "image folder: %s: not a folder (%s; expected a folder of images, searched recursively)",
                   root, S_ISREG(rs.st_mode) ? "a file" : S_ISFIFO(rs.st_mode) ? "a FIFO" : "not a regular folder");
  if (!is_dir(root)) return vg_fail(VG_ERR_IO, "image folder: %s: missing (expected a folder of images, searched recursively)", root);
  strlist files = {0};
  vg_status st = walk(root, &files);
  if (st == VG_OK) sl_sort(&files);
  if (st == VG_OK && files.n == 0) st = vg_fail(VG_ERR_IO, "image folder: %s: no images (expected .png/.jpg/.jpeg/.bmp/.ppm/.pgm/.tif files)", root);
  for (int64_t i = 0; st == VG_OK && i < files.n; i++) {
    char cls[1024];
    snprintf(cls, sizeof cls, "%s", files.v[i]);
    char *sl = strrchr(cls, '/');
    if (sl) *sl = 0; else cls[0] = 0;
    st = ds_add(out, pjoin("%s/%s", root, files.v[i]), 0, cls, VG_SPLIT_TRAIN, NULL);
  }
  sl_free(&files);
  return ds_finish(st, out);
}
