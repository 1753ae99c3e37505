/* test_synth.c — the synthetic benchmark generator: same seed -> byte-identical files,
 * different seed -> different images, listings through vg_ds_mvtec / vg_ds_loco, masks
 * binary (LOCO: the configured pixel values) and pixel-exact (the rendered sample differs
 * from its defect-free twin only inside the mask), manifest idempotence, bad arguments. */
#include "tests/vgtest.h"
#include "datasets/synth.h"
#include "datasets/datasets.h"
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SZ 64
#define NTRAIN 4
#define NTEST 10
#define NVAL 3

static char g_tmp[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb; (void)flag; (void)f;
  return remove(p);
}

static uint8_t *slurp(const char *path, size_t *n) {
  uint8_t *buf = NULL;
  if (vg_image_read_file(path, &buf, n, 64u << 20) != VG_OK) return NULL;
  return buf;
}

/* Byte comparison of every file under a vs b (walks a; b must hold the same names). */
static int g_files, g_same;
static const char *g_a, *g_b;
static int cmp_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb; (void)f;
  if (flag != FTW_F) return 0;
  char q[1024];
  snprintf(q, sizeof q, "%s%s", g_b, p + strlen(g_a));
  size_t n1 = 0, n2 = 0;
  uint8_t *x = slurp(p, &n1), *y = slurp(q, &n2);
  g_files++;
  if (x && y && n1 == n2 && !memcmp(x, y, n1)) g_same++;
  free(x); free(y);
  return 0;
}

static vg_synth_opts small_opts(const char *out, uint64_t seed) {
  vg_synth_opts o = {.out = out, .seed = seed, .size = SZ, .n_train = NTRAIN, .n_test = NTEST, .n_val = NVAL, .threads = 2};
  return o;
}

static void check_category(const char *root, const vg_synth_category *c, uint64_t seed) {
  vg_dataset tr, te;
  vg_split_opts so = {VG_SPLIT_TRAIN, 0, 0}, st = {VG_SPLIT_TEST, 0, 0};
  vg_status s1 = c->loco ? vg_ds_loco(root, c->name, &so, &tr) : vg_ds_mvtec(root, c->name, &so, &tr);
  VG_CHECK(s1 == VG_OK && tr.n == NTRAIN, "%s: train listing (%lld images) %s", c->name, (long long)tr.n, vg_last_error());
  vg_status s2 = c->loco ? vg_ds_loco(root, c->name, &st, &te) : vg_ds_mvtec(root, c->name, &st, &te);
  VG_CHECK(s2 == VG_OK && te.n == NTEST, "%s: test listing (%lld images) %s", c->name, (long long)te.n, vg_last_error());
  if (c->loco) {
    vg_dataset va;
    vg_split_opts sv = {VG_SPLIT_VAL, 0, 0};
    VG_CHECK(vg_ds_loco(root, c->name, &sv, &va) == VG_OK && va.n == NVAL, "%s: validation/good listing", c->name);
    vg_dataset_free(&va);
  }
  int ngood = 0, bad_labels = 0, bad_masks = 0, bad_exact = 0, multi = 0;
  uint8_t *rgb = malloc(SZ * SZ * 3), *clean = malloc(SZ * SZ * 3), *inst = malloc(SZ * SZ);
  for (int64_t i = 0; s2 == VG_OK && i < te.n; i++) {
    const vg_sample *s = &te.samples[i];
    bool good = !strcmp(s->defect, "good");
    ngood += good;
    if (s->label != (good ? 0 : 1) || (good && s->n_masks) || (!good && s->n_masks < 1)) bad_labels++;
    if (s->n_masks > 1) multi++;
    /* which test index is this file? find it by rendering and comparing */
    vg_image im;
    if (vg_image_load(s->image, &im, NULL) != VG_OK || im.w != SZ || im.h != SZ || im.c != 3) { bad_masks++; continue; }
    int found = -1, defect = -1, ninst = 0;
    for (int k = 0; k < NTEST && found < 0; k++) {
      int d, num;
      vg_synth_test_sample(c, NTEST, k, &d, &num);
      if ((d < 0) != good) continue;
      vg_synth_render(c, seed, SZ, VG_SYNTH_TEST, k, d, rgb, inst, &ninst);
      if (!memcmp(rgb, im.data, SZ * SZ * 3)) { found = k; defect = d; }
    }
    if (found < 0) { bad_exact++; vg_image_free(&im); continue; }
    vg_synth_render(c, seed, SZ, VG_SYNTH_TEST, found, -1, clean, NULL, NULL);
    /* union of the mask files */
    uint8_t uni[SZ * SZ];
    memset(uni, 0, sizeof uni);
    int64_t area = 0;
    for (int k = 0; k < s->n_masks; k++) {
      vg_image m;
      if (vg_image_load(s->masks[k].path, &m, NULL) != VG_OK || m.c != 1 || m.w != SZ) { bad_masks++; continue; }
      const uint8_t *p = m.data;
      int want = c->loco ? c->pixel_value[defect] : 255, n = 0;
      for (int j = 0; j < SZ * SZ; j++) {
        if (p[j] && p[j] != want) bad_masks++;
        if (p[j]) { n++; uni[j] = 1; }
        if (p[j] && inst[j] != k + 1) bad_masks++;   /* mask k = instance k+1, pixel-exact */
      }
      if (n == 0) bad_masks++;
      if (c->loco && (s->masks[k].pixel_value != want || !s->masks[k].has_saturation)) bad_masks++;
      vg_image_free(&m);
    }
    int64_t diff = 0, outside = 0;
    for (int j = 0; j < SZ * SZ; j++) {
      bool d = memcmp((uint8_t *)im.data + 3 * j, clean + 3 * j, 3) != 0;
      diff += d;
      if (d && !uni[j]) outside++;
      area += uni[j];
    }
    if (good && diff) bad_exact++;
    if (!good && (outside || diff == 0 || diff * 4 < area)) {
      bad_exact++;
      fprintf(stderr, "  %s %s: diff %lld outside %lld mask %lld\n", c->name, s->image, (long long)diff, (long long)outside, (long long)area);
    }
    vg_image_free(&im);
  }
  VG_CHECK(ngood == (NTEST + 1) / 2, "%s: %d good test images", c->name, ngood);
  VG_CHECK(bad_labels == 0, "%s: labels and mask counts (good: none, anomalous: >= 1)", c->name);
  VG_CHECK(bad_masks == 0, "%s: masks non-empty, binary (LOCO: the configured pixel value), = the rendered instances", c->name);
  VG_CHECK(bad_exact == 0, "%s: pixel-exact: files = render; differ from the defect-free twin only inside the mask", c->name);
  if (c->loco) VG_CHECK(multi > 0 || NTEST < 6, "%s: some image has several masks (%d)", c->name, multi);
  free(rgb); free(clean); free(inst);
  vg_dataset_free(&tr);
  vg_dataset_free(&te);
}

int main(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/vg_test_synth_XXXXXX");
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  char a[512], b[512], c[512];
  snprintf(a, sizeof a, "%s/a", g_tmp);
  snprintf(b, sizeof b, "%s/b", g_tmp);
  snprintf(c, sizeof c, "%s/c", g_tmp);

  vg_synth_opts oa = small_opts(a, 7), ob = small_opts(b, 7), oc = small_opts(c, 8);
  ob.threads = 1;
  bool made = false;
  VG_CHECK(vg_synth_generate(&oa, &made) == VG_OK && made, "generate a (seed 7) %s", vg_last_error());
  VG_CHECK(vg_synth_generate(&ob, &made) == VG_OK && made, "generate b (seed 7, 1 thread)");
  VG_CHECK(vg_synth_generate(&oc, &made) == VG_OK && made, "generate c (seed 8)");
  g_files = g_same = 0; g_a = a; g_b = b;
  nftw(a, cmp_cb, 16, FTW_PHYS);
  VG_CHECK(g_files > 100 && g_same == g_files, "same seed: %d/%d files byte-identical", g_same, g_files);
  g_files = g_same = 0; g_b = c;
  nftw(a, cmp_cb, 16, FTW_PHYS);
  VG_CHECK(g_same < g_files / 10, "different seed: only %d/%d files identical (config files)", g_same, g_files);

  /* normal samples vary */
  const vg_synth_category *wo = vg_synth_category_find("woven");
  uint8_t *x = malloc(SZ * SZ * 3), *y = malloc(SZ * SZ * 3);
  vg_synth_render(wo, 7, SZ, VG_SYNTH_TRAIN, 0, -1, x, NULL, NULL);
  vg_synth_render(wo, 7, SZ, VG_SYNTH_TRAIN, 1, -1, y, NULL, NULL);
  VG_CHECK(memcmp(x, y, SZ * SZ * 3) != 0, "two train samples differ");
  free(x); free(y);

  for (int i = 0; i < vg_synth_category_count(); i++) check_category(a, vg_synth_category_at(i), 7);
  /* an MVTec-style category is not LOCO and vice versa */
  vg_dataset ds;
  vg_split_opts st = {VG_SPLIT_TEST, 0, 0};
  VG_CHECK(vg_ds_loco(a, "woven", &st, &ds) != VG_OK, "woven is MVTec AD style (no LOCO listing)");
  vg_loco_config cfg;
  char cp[600];
  snprintf(cp, sizeof cp, "%s/assembly/defects_config.json", a);
  VG_CHECK(vg_loco_config_load(cp, &cfg) == VG_OK && cfg.n == 6, "assembly defects_config.json: 6 defect types");
  vg_loco_config_free(&cfg);

  /* idempotence: same options -> nothing written; other options -> regenerated */
  char mp[600];
  snprintf(mp, sizeof mp, "%s/synth.json", a);
  struct stat s0, s1;
  stat(mp, &s0);
  VG_CHECK(vg_synth_generate(&oa, &made) == VG_OK && !made, "same options: up to date, nothing regenerated");
  stat(mp, &s1);
  VG_CHECK(s0.st_ino == s1.st_ino, "manifest untouched");
  oa.categories = "woven,assembly";
  VG_CHECK(vg_synth_generate(&oa, &made) == VG_OK && made, "other options: regenerated");
  char wp[600];
  snprintf(wp, sizeof wp, "%s/grid", a);
  VG_CHECK(access(wp, F_OK) != 0, "regenerated dataset replaced the old one (no 'grid' left)");
  oa.force = true;
  VG_CHECK(vg_synth_generate(&oa, &made) == VG_OK && made, "--force regenerates");

  /* bad arguments */
  vg_synth_opts bad = small_opts(c, 1);
  bad.categories = "woven,bogus";
  VG_CHECK(vg_synth_generate(&bad, NULL) == VG_ERR_ARG && strstr(vg_last_error(), "bogus"), "unknown category: %s", vg_last_error());
  bad = small_opts(c, 1);
  bad.size = 16;
  VG_CHECK(vg_synth_generate(&bad, NULL) == VG_ERR_ARG && strstr(vg_last_error(), "size"), "size too small: %s", vg_last_error());
  bad = small_opts("/proc/vg_synth_no/x", 1);
  VG_CHECK(vg_synth_generate(&bad, NULL) == VG_ERR_IO, "unwritable out: %s", vg_last_error());
  char notsynth[600];
  snprintf(notsynth, sizeof notsynth, "%s/user", g_tmp);
  mkdir(notsynth, 0755);
  char f[700];
  snprintf(f, sizeof f, "%s/precious.txt", notsynth);
  FILE *fp = fopen(f, "w");
  if (fp) { fputs("keep", fp); fclose(fp); }
  bad = small_opts(notsynth, 1);
  VG_CHECK(vg_synth_generate(&bad, NULL) == VG_ERR_IO && access(f, F_OK) == 0,
           "non-empty non-synth out dir is refused and kept: %s", vg_last_error());
  VG_CHECK(vg_synth_generate(NULL, NULL) == VG_ERR_ARG, "NULL options refused");

  nftw(g_tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return vg_test_finish();
}
