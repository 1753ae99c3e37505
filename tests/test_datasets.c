/* test_datasets.c — dataset listings (MVTec AD, LOCO, VisA, BTAD, folder, image folder)
 * on fake trees built in a temp dir, the split policy, missing/malformed layouts, and
 * the threaded loader: contents vs a direct decode, determinism across worker counts,
 * epochs, drop_last, masks, and a corrupt file in the middle of an epoch. */
#include "tests/vgtest.h"
#include "datasets/datasets.h"
#include "base/file.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_root[256];


/* A w x h image with c channels whose pixels encode (seed, x, y). */
static void write_png(const char *rel, int w, int h, int c, int seed) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_root, rel);
  vg_mkdir_parents(path);
  vg_image im = {w, h, c, 8, malloc((size_t)w * h * c)};
  uint8_t *p = im.data;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++) p[((size_t)y * w + x) * c + k] = (uint8_t)(seed * 37 + x * 5 + y * 11 + k * 71);
  if (vg_png_save(path, &im) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); abort(); }
  free(im.data);
}

/* A grey mask: value v inside [x0,x1)x[y0,y1), 0 elsewhere. */
static void write_mask(const char *rel, int w, int h, int v, int x0, int y0, int x1, int y1) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_root, rel);
  vg_mkdir_parents(path);
  vg_image im = {w, h, 1, 8, calloc((size_t)w * h, 1)};
  uint8_t *p = im.data;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) p[y * w + x] = (uint8_t)v;
  if (vg_png_save(path, &im) != VG_OK) abort();
  free(im.data);
}

static void write_text(const char *rel, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_root, rel);
  vg_mkdir_parents(path);
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  fputs(text, f);
  fclose(f);
}

static const char *P(const char *rel) {   /* root-joined path (rotating buffers) */
  static char buf[4][1024];
  static int k;
  k = (k + 1) & 3;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_root, rel);
  return buf[k];
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* ---- MVTec AD ---- */
static void build_mvtec(void) {
  char rel[256];
  for (int i = 0; i < 10; i++) { snprintf(rel, sizeof rel, "mvtec/widget/train/good/%03d.png", i); write_png(rel, 24, 20, 3, i); }
  for (int i = 0; i < 3; i++) { snprintf(rel, sizeof rel, "mvtec/widget/test/good/%03d.png", i); write_png(rel, 24, 20, 3, 100 + i); }
  for (int i = 0; i < 2; i++) {
    snprintf(rel, sizeof rel, "mvtec/widget/test/crack/%03d.png", i); write_png(rel, 24, 20, 3, 200 + i);
    snprintf(rel, sizeof rel, "mvtec/widget/ground_truth/crack/%03d_mask.png", i); write_mask(rel, 24, 20, 255, 4, 4, 10 + i, 8);
  }
  write_png("mvtec/widget/test/scratch/000.png", 24, 20, 3, 300);
  write_mask("mvtec/widget/ground_truth/scratch/000_mask.png", 24, 20, 255, 0, 0, 3, 3);
  write_text("mvtec/widget/train/good/readme.txt", "not an image");   /* ignored */
}

static void test_mvtec(void) {
  build_mvtec();
  vg_dataset ds;
  VG_CHECK(vg_ds_mvtec(P("mvtec"), "widget", NULL, &ds) == VG_OK, "mvtec: train listing (%s)", vg_last_error());
  VG_CHECK(ds.n == 10, "mvtec: 10 training images (got %lld; non-images ignored)", (long long)ds.n);
  bool sorted = true, lab = true;
  for (int64_t i = 0; i < ds.n; i++) {
    if (i && strcmp(ds.samples[i - 1].image, ds.samples[i].image) >= 0) sorted = false;
    if (ds.samples[i].label != 0 || ds.samples[i].n_masks || strcmp(ds.samples[i].defect, "good") ||
        ds.samples[i].split != VG_SPLIT_TRAIN) lab = false;
  }
  VG_CHECK(sorted && lab, "mvtec: train sorted by path, label 0, defect good, no masks");
  vg_dataset_free(&ds);

  vg_split_opts so = {VG_SPLIT_TEST, 0.2, 1};
  VG_CHECK(vg_ds_mvtec(P("mvtec"), "widget", &so, &ds) == VG_OK, "mvtec: test listing (%s)", vg_last_error());
  int good = 0, bad = 0, masks_ok = 1;
  for (int64_t i = 0; i < ds.n; i++) {
    const vg_sample *s = &ds.samples[i];
    if (s->label) {
      bad++;
      char want[512];
      const char *base = strrchr(s->image, '/') + 1;
      snprintf(want, sizeof want, "ground_truth/%s/%.3s_mask.png", s->defect, base);
      if (s->n_masks != 1 || !ends_with(s->masks[0].path, want) || s->masks[0].has_saturation) masks_ok = 0;
    } else {
      good++;
      if (s->n_masks) masks_ok = 0;
    }
  }
  VG_CHECK(ds.n == 6 && good == 3 && bad == 3, "mvtec: test = 3 good + 3 anomalous (got %d + %d)", good, bad);
  VG_CHECK(masks_ok, "mvtec: each anomalous image has its <stem>_mask.png, good ones none");
  VG_CHECK(!strcmp(ds.samples[0].defect, "crack") && !strcmp(ds.samples[5].defect, "scratch"),
           "mvtec: defects listed in sorted order (crack, good, scratch)");
  vg_dataset_free(&ds);

  /* split policy: TRAIN and VAL disjoint, union = training set, seeded */
  vg_split_opts tr = {VG_SPLIT_TRAIN, 0.3, 7}, va = {VG_SPLIT_VAL, 0.3, 7}, va2 = {VG_SPLIT_VAL, 0.3, 8};
  vg_dataset a, b, c, d;
  VG_CHECK(vg_ds_mvtec(P("mvtec"), "widget", &tr, &a) == VG_OK && vg_ds_mvtec(P("mvtec"), "widget", &va, &b) == VG_OK &&
           vg_ds_mvtec(P("mvtec"), "widget", &va, &c) == VG_OK && vg_ds_mvtec(P("mvtec"), "widget", &va2, &d) == VG_OK,
           "mvtec: seeded splits list");
  VG_CHECK(a.n == 7 && b.n == 3, "split: 30%% of 10 -> 7 train + 3 val (got %lld + %lld)", (long long)a.n, (long long)b.n);
  int overlap = 0, same = 1, differ = 0;
  for (int64_t i = 0; i < a.n; i++)
    for (int64_t j = 0; j < b.n; j++) overlap += !strcmp(a.samples[i].image, b.samples[j].image);
  for (int64_t j = 0; j < b.n && j < c.n; j++) same &= !strcmp(b.samples[j].image, c.samples[j].image);
  for (int64_t j = 0; j < b.n && j < d.n; j++) differ |= strcmp(b.samples[j].image, d.samples[j].image) != 0;
  VG_CHECK(overlap == 0, "split: train and val disjoint");
  VG_CHECK(same && b.n == c.n, "split: same seed -> same val set");
  VG_CHECK(differ, "split: another seed -> another val set");
  VG_CHECK(b.samples[0].split == VG_SPLIT_VAL && a.samples[0].split == VG_SPLIT_TRAIN, "split: samples tagged with their split");
  vg_dataset_free(&a); vg_dataset_free(&b); vg_dataset_free(&c); vg_dataset_free(&d);

  /* errors name what is missing */
  vg_status st = vg_ds_mvtec(P("mvtec"), "nosuch", NULL, &ds);
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "nosuch/train/good") && strstr(vg_last_error(), "MVTec AD layout"),
           "mvtec: missing category -> IO error naming the path and layout (%s)", vg_last_error());
  VG_CHECK(ds.n == 0 && ds.samples == NULL, "mvtec: failed listing leaves an empty dataset");
  write_png("mvtec/widget/test/hole/000.png", 24, 20, 3, 400);     /* no ground_truth/hole */
  st = vg_ds_mvtec(P("mvtec"), "widget", &so, &ds);
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "ground_truth/hole"), "mvtec: missing GT folder named (%s)", vg_last_error());
  vg_test_mkdirs(P("mvtec/widget/ground_truth/hole"));
  st = vg_ds_mvtec(P("mvtec"), "widget", &so, &ds);
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "hole/000_mask.png"), "mvtec: missing mask named (%s)", vg_last_error());
  write_mask("mvtec/widget/ground_truth/hole/000_mask.png", 24, 20, 255, 1, 1, 2, 2);
  VG_CHECK(vg_ds_mvtec(P("mvtec"), "widget", &so, &ds) == VG_OK && ds.n == 7, "mvtec: repaired tree lists 7 test images");
  vg_dataset_free(&ds);
}

/* ---- MVTec LOCO ---- */
static void test_loco(void) {
  char rel[256];
  for (int i = 0; i < 4; i++) { snprintf(rel, sizeof rel, "loco/box/train/good/%03d.png", i); write_png(rel, 16, 16, 3, i); }
  for (int i = 0; i < 2; i++) { snprintf(rel, sizeof rel, "loco/box/validation/good/%03d.png", i); write_png(rel, 16, 16, 3, 50 + i); }
  write_png("loco/box/test/good/000.png", 16, 16, 3, 60);
  write_png("loco/box/test/logical_anomalies/000.png", 16, 16, 3, 61);
  write_mask("loco/box/ground_truth/logical_anomalies/000/000.png", 16, 16, 255, 0, 0, 4, 4);
  write_mask("loco/box/ground_truth/logical_anomalies/000/001.png", 16, 16, 254, 8, 8, 12, 12);
  write_png("loco/box/test/structural_anomalies/000.png", 16, 16, 3, 62);
  write_mask("loco/box/ground_truth/structural_anomalies/000/000.png", 16, 16, 253, 2, 2, 5, 5);
  write_text("loco/box/defects_config.json",
             "[{\"defect_name\": \"missing_part\", \"pixel_value\": 255, \"saturation_threshold\": 1.0, \"relative_saturation\": true},"
             " {\"defect_name\": \"extra_part\", \"pixel_value\": 254, \"saturation_threshold\": 120, \"relative_saturation\": false},"
             " {\"defect_name\": \"scratch\", \"pixel_value\": 253, \"saturation_threshold\": 0.5, \"relative_saturation\": true}]");
  vg_dataset ds;
  vg_split_opts tr = {VG_SPLIT_TRAIN, 0.5, 1}, va = {VG_SPLIT_VAL, 0.5, 1}, te = {VG_SPLIT_TEST, 0, 0};
  VG_CHECK(vg_ds_loco(P("loco"), "box", &tr, &ds) == VG_OK && ds.n == 4, "loco: train = train/good, all 4 (val_fraction ignored)");
  vg_dataset_free(&ds);
  VG_CHECK(vg_ds_loco(P("loco"), "box", &va, &ds) == VG_OK && ds.n == 2 && strstr(ds.samples[0].image, "validation/good"),
           "loco: val = the dataset's validation/good folder");
  vg_dataset_free(&ds);
  VG_CHECK(vg_ds_loco(P("loco"), "box", &te, &ds) == VG_OK && ds.n == 3, "loco: test lists 3 (%s)", vg_last_error());
  const vg_sample *lg = NULL, *sg = NULL;
  for (int64_t i = 0; i < ds.n; i++) {
    if (strstr(ds.samples[i].image, "logical")) lg = &ds.samples[i];
    if (strstr(ds.samples[i].image, "structural")) sg = &ds.samples[i];
  }
  VG_CHECK(lg && lg->label == 1 && lg->n_masks == 2 && strstr(lg->defect, "logical_anomalies"), "loco: logical image with its 2 masks");
  if (lg && lg->n_masks == 2) {
    const vg_mask_ref *m0 = &lg->masks[0], *m1 = &lg->masks[1];
    VG_CHECK(m0->has_saturation && m0->pixel_value == 255 && m0->relative_saturation && m0->saturation_threshold == 1.0,
             "loco: mask 000 -> missing_part (255, relative 1.0)");
    VG_CHECK(m1->pixel_value == 254 && !m1->relative_saturation && m1->saturation_threshold == 120,
             "loco: mask 001 -> extra_part (254, absolute 120)");
  }
  VG_CHECK(sg && sg->n_masks == 1 && sg->masks[0].pixel_value == 253, "loco: structural mask -> scratch (253)");
  vg_dataset_free(&ds);
  write_mask("loco/box/ground_truth/structural_anomalies/000/001.png", 16, 16, 17, 0, 0, 1, 1);
  vg_status st = vg_ds_loco(P("loco"), "box", &te, &ds);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "001.png") && strstr(vg_last_error(), "17"),
           "loco: mask value not in defects_config -> error naming file and value (%s)", vg_last_error());
  write_mask("loco/box/ground_truth/structural_anomalies/000/001.png", 16, 16, 0, 0, 0, 1, 1);
  st = vg_ds_loco(P("loco"), "box", &te, &ds);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "no defect pixel"), "loco: empty mask -> error (%s)", vg_last_error());
  remove(P("loco/box/ground_truth/structural_anomalies/000/001.png"));
  write_text("loco/box/defects_config.json", "{\"oops\": 1}");
  st = vg_ds_loco(P("loco"), "box", &te, &ds);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "defects_config.json"), "loco: malformed config named (%s)", vg_last_error());
  /* fuzz_loco_config finding: a relative saturation_threshold is a fraction of the defect's
   * area; 1e300 reached eval's (int64_t)(t * area), undefined behaviour. (0, 1] only. */
  const char *bad_rel[] = {"1e300", "1.5", "0", "1.0000001"};
  for (int i = 0; i < 4; i++) {
    char cfgtext[512];
    snprintf(cfgtext, sizeof cfgtext,
             "[{\"defect_name\": \"a\", \"pixel_value\": 255, \"saturation_threshold\": 1, \"relative_saturation\": true},"
             " {\"defect_name\": \"b\", \"pixel_value\": 254, \"saturation_threshold\": %s, \"relative_saturation\": true}]",
             bad_rel[i]);
    write_text("loco/box/defects_config.json", cfgtext);
    vg_loco_config lc;
    st = vg_loco_config_load(P("loco/box/defects_config.json"), &lc);
    VG_CHECK(st == VG_ERR_FORMAT && !lc.d && lc.n == 0 && strstr(vg_last_error(), "entry 1") && strstr(vg_last_error(), "(0, 1]"),
             "loco: relative saturation_threshold %s refused (%s)", bad_rel[i], vg_last_error());
  }
  write_text("loco/box/defects_config.json",
             "[{\"defect_name\": \"a\", \"pixel_value\": 255, \"saturation_threshold\": 1e300, \"relative_saturation\": false}]");
  vg_loco_config lc;
  st = vg_loco_config_load(P("loco/box/defects_config.json"), &lc);
  VG_CHECK(st == VG_OK && lc.n == 1 && lc.d[0].saturation_threshold == 1e300, "loco: absolute threshold 1e300 kept (min(t, area))");
  vg_loco_config_free(&lc);
}

/* ---- VisA, BTAD, folder, image folder ---- */
static void test_visa(void) {
  write_png("visa/candle/Data/Images/Normal/0000.JPG.png", 12, 10, 3, 1);
  write_png("visa/candle/Data/Images/Normal/0001.png", 12, 10, 3, 2);
  write_png("visa/candle/Data/Images/Normal/0002.png", 12, 10, 3, 3);
  write_png("visa/candle/Data/Images/Anomaly/0100.png", 12, 10, 3, 4);
  write_mask("visa/candle/Data/Masks/Anomaly/0100.png", 12, 10, 255, 1, 1, 5, 5);
  write_png("visa/pcb1/Data/Images/Normal/0000.png", 12, 10, 3, 5);
  write_text("visa/split_csv/1cls.csv",
             "object,split,label,image,mask\n"
             "candle,train,normal,candle/Data/Images/Normal/0000.JPG.png,\n"
             "candle,train,normal,candle/Data/Images/Normal/0001.png,\n"
             "candle,test,normal,candle/Data/Images/Normal/0002.png,\n"
             "candle,test,anomaly,candle/Data/Images/Anomaly/0100.png,candle/Data/Masks/Anomaly/0100.png\n"
             "pcb1,train,normal,pcb1/Data/Images/Normal/0000.png,\n");
  vg_dataset ds;
  VG_CHECK(vg_ds_visa(P("visa"), "candle", NULL, &ds) == VG_OK && ds.n == 2, "visa: candle train = 2 (%s)", vg_last_error());
  vg_dataset_free(&ds);
  VG_CHECK(vg_ds_visa(P("visa"), NULL, NULL, &ds) == VG_OK && ds.n == 3, "visa: all objects train = 3");
  vg_dataset_free(&ds);
  vg_split_opts te = {VG_SPLIT_TEST, 0, 0};
  VG_CHECK(vg_ds_visa(P("visa"), "candle", &te, &ds) == VG_OK && ds.n == 2, "visa: candle test = 2");
  int an = -1;
  for (int64_t i = 0; i < ds.n; i++) if (ds.samples[i].label) an = (int)i;
  VG_CHECK(an >= 0 && ds.samples[an].n_masks == 1 && ends_with(ds.samples[an].masks[0].path, "Masks/Anomaly/0100.png"),
           "visa: anomaly row carries its mask");
  vg_dataset_free(&ds);
  write_text("visa/split_csv/1cls.csv", "object,split,label,image,mask\ncandle,train,normal\n");
  vg_status st = vg_ds_visa(P("visa"), "candle", NULL, &ds);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "1cls.csv:2"), "visa: short row -> error with line number (%s)", vg_last_error());
  st = vg_ds_visa(P("novisa"), "candle", NULL, &ds);
  VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), "split_csv/1cls.csv"), "visa: missing csv named (%s)", vg_last_error());
}

static void test_btad_folder(void) {
  char path[1024];
  /* BTAD 01 ships .bmp: write one through the BMP encoder */
  vg_image im = {8, 8, 3, 8, calloc(8 * 8 * 3, 1)};
  uint8_t *buf; size_t n;
  VG_CHECK(vg_bmp_encode(&im, &buf, &n) == VG_OK, "btad: bmp encode");
  snprintf(path, sizeof path, "%s/btad/01/train/ok/0000.bmp", g_root); vg_mkdir_parents(path);
  vg_image_write_file(path, buf, n);
  snprintf(path, sizeof path, "%s/btad/01/train/ok/0001.bmp", g_root);
  vg_image_write_file(path, buf, n);
  snprintf(path, sizeof path, "%s/btad/01/test/ok/0000.bmp", g_root); vg_mkdir_parents(path);
  vg_image_write_file(path, buf, n);
  snprintf(path, sizeof path, "%s/btad/01/test/ko/0003.bmp", g_root); vg_mkdir_parents(path);
  vg_image_write_file(path, buf, n);
  free(buf); free(im.data);
  write_mask("btad/01/ground_truth/ko/0003.png", 8, 8, 255, 0, 0, 2, 2);
  vg_dataset ds;
  vg_split_opts te = {VG_SPLIT_TEST, 0, 0};
  VG_CHECK(vg_ds_btad(P("btad"), "01", NULL, &ds) == VG_OK && ds.n == 2, "btad: train/ok = 2 (%s)", vg_last_error());
  vg_dataset_free(&ds);
  VG_CHECK(vg_ds_btad(P("btad"), "01", &te, &ds) == VG_OK && ds.n == 2, "btad: test ok + ko = 2");
  int ok = 0;
  for (int64_t i = 0; i < ds.n; i++)
    if (ds.samples[i].label && ds.samples[i].n_masks == 1 && ends_with(ds.samples[i].masks[0].path, "ko/0003.png")) ok = 1;
  VG_CHECK(ok, "btad: ko image matched to its mask by stem");
  vg_dataset_free(&ds);
  VG_CHECK(vg_ds_btad(P("btad"), "02", NULL, &ds) == VG_ERR_IO && strstr(vg_last_error(), "02/train/ok"), "btad: missing product named");

  write_png("folder/normal/a.png", 8, 8, 3, 1);
  write_png("folder/normal/b.png", 8, 8, 3, 2);
  write_png("folder/bad/x.png", 8, 8, 3, 3);
  write_png("folder/bad/y.png", 8, 8, 3, 4);
  write_mask("folder/masks/x.png", 8, 8, 255, 0, 0, 2, 2);
  write_mask("folder/masks/y_mask.png", 8, 8, 255, 0, 0, 2, 2);
  write_png("folder/normal_test/z.png", 8, 8, 3, 5);
  char nd[1024], ad[1024], md[1024], td[1024];
  snprintf(nd, sizeof nd, "%s/folder/normal", g_root);
  snprintf(ad, sizeof ad, "%s/folder/bad", g_root);
  snprintf(md, sizeof md, "%s/folder/masks", g_root);
  snprintf(td, sizeof td, "%s/folder/normal_test", g_root);
  vg_folder_spec fs = {nd, ad, md, td};
  VG_CHECK(vg_ds_folder(&fs, NULL, &ds) == VG_OK && ds.n == 2, "folder: train = normal dir");
  vg_dataset_free(&ds);
  VG_CHECK(vg_ds_folder(&fs, &te, &ds) == VG_OK && ds.n == 3, "folder: test = 2 abnormal + 1 normal (%s)", vg_last_error());
  int withmask = 0;
  for (int64_t i = 0; i < ds.n; i++) withmask += ds.samples[i].label == 1 && ds.samples[i].n_masks == 1;
  VG_CHECK(withmask == 2, "folder: masks found as <stem>.png and <stem>_mask.png");
  vg_dataset_free(&ds);
  write_png("folder/bad/w.png", 8, 8, 3, 6);
  VG_CHECK(vg_ds_folder(&fs, &te, &ds) == VG_ERR_IO && strstr(vg_last_error(), "no mask for w.png"), "folder: missing mask named (%s)", vg_last_error());

  write_png("inet/n01/a.png", 8, 8, 3, 1);
  write_png("inet/n01/deep/b.png", 8, 8, 3, 2);
  write_png("inet/n02/c.png", 8, 8, 3, 3);
  write_text("inet/n02/labels.txt", "x");
  VG_CHECK(vg_ds_image_folder(P("inet"), &ds) == VG_OK && ds.n == 3, "image folder: 3 images found recursively");
  VG_CHECK(ds.n == 3 && !strcmp(ds.samples[0].defect, "n01") && !strcmp(ds.samples[1].defect, "n01/deep") &&
           !strcmp(ds.samples[2].defect, "n02"), "image folder: class = relative folder, sorted");
  vg_dataset_free(&ds);
  vg_test_mkdirs(P("empty"));
  VG_CHECK(vg_ds_image_folder(P("empty"), &ds) == VG_ERR_IO && strstr(vg_last_error(), "no images"), "image folder: empty folder -> error");
}

/* ---- loader ---- */
static void decode_ref(const char *path, float *out, int h, int w) {
  vg_image im;
  if (vg_image_load(path, &im, NULL) != VG_OK) abort();
  if (vg_default_transform(&im, out, 3, h, w, NULL) != VG_OK) abort();
  vg_image_free(&im);
}

static int run_epoch(const vg_dataset *ds, int workers, int epoch, float *all, int64_t *order) {
  vg_loader_opts o = {.batch_size = 3, .workers = workers, .prefetch = 2, .channels = 3, .height = 12,
                      .width = 14, .shuffle = true, .seed = 5, .load_masks = true};
  vg_loader *L;
  if (vg_loader_create(ds, &o, &L) != VG_OK) return -1;
  vg_loader_start_epoch(L, epoch);
  int rows = 0;
  vg_batch b;
  while (vg_loader_next(L, &b) == VG_OK && b.n > 0) {
    memcpy(all + (int64_t)rows * 3 * 12 * 14, vg_f32(b.images), (size_t)b.n * 3 * 12 * 14 * sizeof(float));
    memcpy(order + rows, b.indices, (size_t)b.n * sizeof(int64_t));
    rows += b.n;
    vg_batch_free(&b);
  }
  vg_loader_destroy(L);
  return rows;
}

/* A custom stream (vg_loader_opts.sampler + sample_fn, as EfficientAD's distillation uses):
 * position pos of epoch e reads sample (7 pos + e) mod n; sample_fn writes the default
 * transform (3 x 6 x 5) and then the tag (pos * 1000 + e) and a marker. */
typedef struct {
  int64_t n, calls, last_pos;
  int last_epoch;
  bool in_order, bad;          /* bad: return an out-of-range index at position 4 */
} stream_ctx;

enum { SF = 3 * 6 * 5 + 2 };

static int64_t stream_sampler(void *u, int epoch, int64_t pos, uint64_t *tag) {
  stream_ctx *c = u;
  if (epoch == c->last_epoch && pos <= c->last_pos) c->in_order = false;
  c->last_epoch = epoch;
  c->last_pos = pos;
  c->calls++;
  *tag = (uint64_t)pos * 1000 + (uint64_t)epoch;
  return c->bad && pos == 4 ? c->n + 3 : (7 * pos + epoch) % c->n;
}

static vg_status stream_fill(const vg_image *img, uint64_t tag, float *out, void *u) {
  (void)u;
  vg_status st = vg_default_transform(img, out, 3, 6, 5, NULL);
  out[SF - 2] = (float)tag;
  out[SF - 1] = 42.f;
  return st;
}

/* Runs epoch `epoch` of npos positions; all rows into out (npos x SF), indices into idx.
 * Returns the rows, -1 on an error. */
static int64_t run_stream(const vg_dataset *ds, stream_ctx *c, int workers, int prefetch, bool drop_last, int epoch,
                          int64_t npos, float *out, int64_t *idx, int *batches) {
  *c = (stream_ctx){.n = ds->n, .last_pos = -1, .last_epoch = -1, .in_order = true, .bad = c->bad};
  vg_loader_opts o = {.batch_size = 3, .workers = workers, .prefetch = prefetch, .channels = 3, .height = 6, .width = 5,
                      .drop_last = drop_last, .sampler = stream_sampler, .sample_fn = stream_fill, .sample_floats = SF,
                      .user = c};
  vg_loader *L;
  if (vg_loader_create(ds, &o, &L) != VG_OK || vg_loader_start_stream(L, epoch, npos) != VG_OK) return -1;
  int64_t rows = 0;
  int n = 0;
  *batches = 0;
  vg_status st;
  while ((st = vg_loader_next_into(L, out + rows * SF, NULL, idx + rows, &n)) == VG_OK && n > 0) {
    rows += n;
    (*batches)++;
  }
  vg_loader_destroy(L);
  return st == VG_OK ? rows : -1;
}

static void test_sample_rel(void) {
  static const char *cases[][3] = {   /* image, defect, "<defect>/<stem>" */
      {"/d/mvtec/w/test/good/000.png", "good", "good/000"},
      {"/d/x.y.png", "broken", "broken/x.y"},
      {"/d/.hidden", "good", "good/.hidden"},
      {"noslash.png", "d", "d/noslash"},
      {"/d/b.dir/file", "crack", "crack/file"},
      {"/d/loco/test/logical_anomalies/007.png", "logical_anomalies", "logical_anomalies/007"},
      {"/d/a.b/c.", "d", "d/c"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    vg_sample smp = {.image = (char *)cases[i][0], .defect = (char *)cases[i][1]};
    char buf[128];
    vg_sample_rel(&smp, buf, sizeof buf);
    VG_CHECK(!strcmp(buf, cases[i][2]), "sample_rel(%s, %s) = %s (want %s)", cases[i][0], cases[i][1], buf, cases[i][2]);
  }
  vg_sample smp = {.image = (char *)"/d/good/000.png", .defect = (char *)"good"};
  char small[6];
  vg_sample_rel(&smp, small, sizeof small);
  VG_CHECK(!strcmp(small, "good/"), "sample_rel: truncated to the buffer (%s)", small);
}

static void test_loader_stream(void) {
  vg_dataset ds;
  vg_split_opts te = {VG_SPLIT_TEST, 0, 0};
  VG_CHECK(vg_ds_mvtec(P("mvtec"), "widget", &te, &ds) == VG_OK, "stream: dataset");
  int64_t n = ds.n, npos = 2 * n + 1;   /* more positions than samples, a short last batch */
  float *a = calloc((size_t)(npos * SF), sizeof(float)), *b = calloc((size_t)(npos * SF), sizeof(float));
  float ref[SF];
  int64_t *ia = calloc((size_t)npos, sizeof *ia), *ib = calloc((size_t)npos, sizeof *ib);
  stream_ctx c = {0};
  int ba, bb;
  int64_t ra = run_stream(&ds, &c, 1, 1, false, 5, npos, a, ia, &ba);
  VG_CHECK(ra == npos && ba == (int)((npos + 2) / 3), "stream: epoch of %lld positions -> %lld rows in %d batches (want %lld)",
           (long long)npos, (long long)ra, ba, (long long)((npos + 2) / 3));
  VG_CHECK(c.calls == npos && c.in_order && c.last_epoch == 5,
           "stream: the sampler is asked once per position, in order, with the epoch (%lld calls)", (long long)c.calls);
  int64_t rb = run_stream(&ds, &c, 3, 2, false, 5, npos, b, ib, &bb);
  VG_CHECK(rb == npos && c.in_order && !memcmp(ia, ib, sizeof *ia * (size_t)npos) &&
               !memcmp(a, b, sizeof(float) * (size_t)(npos * SF)),
           "stream: 1 worker / prefetch 1 and 3 workers / prefetch 2 give identical rows");
  bool idx_ok = true, rows_ok = true;
  for (int64_t p = 0; p < npos && ra == npos; p++) {
    if (ia[p] != (7 * p + 5) % n) idx_ok = false;
    decode_ref(ds.samples[ia[p]].image, ref, 6, 5);
    ref[SF - 2] = (float)(p * 1000 + 5);
    ref[SF - 1] = 42.f;
    if (memcmp(ref, a + p * SF, sizeof ref)) rows_ok = false;
  }
  VG_CHECK(idx_ok, "stream: indices[i] = the sampler's choice for position i");
  VG_CHECK(rows_ok, "stream: row i = sample_fn(sample indices[i], the sampler's tag for i)");
  int64_t rd = run_stream(&ds, &c, 2, 1, true, 0, 7, a, ia, &ba);
  VG_CHECK(rd == 6 && ba == 2, "stream: drop_last drops the short batch (%lld rows, %d batches)", (long long)rd, ba);
  c.bad = true;
  vg_clear_error();
  int64_t re = run_stream(&ds, &c, 2, 1, false, 0, 9, a, ia, &ba);
  VG_CHECK(re < 0 && strstr(vg_last_error(), "sampler chose sample"), "stream: an out-of-range sampler choice is an error: %s",
           vg_last_error());
  /* refusals */
  vg_loader *L = NULL;
  vg_loader_opts o = {.batch_size = 2, .channels = 3, .height = 6, .width = 5, .sample_fn = stream_fill};
  VG_CHECK(vg_loader_create(&ds, &o, &L) != VG_OK && !L, "stream: sample_fn without sample_floats refused: %s", vg_last_error());
  o = (vg_loader_opts){.batch_size = 2, .channels = 3, .height = 6, .width = 5};
  VG_CHECK(vg_loader_create(&ds, &o, &L) == VG_OK, "stream: plain loader");
  VG_CHECK(L && vg_loader_start_stream(L, 0, 4) != VG_OK && strstr(vg_last_error(), "sampler"),
           "stream: a stream without a sampler refused: %s", vg_last_error());
  vg_loader_destroy(L);
  /* vg_loader_next with a sample_fn: (rows, sample_floats) images */
  c = (stream_ctx){.n = n, .last_pos = -1, .in_order = true};
  o = (vg_loader_opts){.batch_size = 2, .channels = 3, .height = 6, .width = 5, .sampler = stream_sampler,
                       .sample_fn = stream_fill, .sample_floats = SF, .user = &c};
  vg_batch bt = {0};
  VG_CHECK(vg_loader_create(&ds, &o, &L) == VG_OK && vg_loader_start_stream(L, 1, 3) == VG_OK &&
               vg_loader_start_stream(L, 1, -1) != VG_OK && vg_loader_start_stream(L, 2, 3) == VG_OK &&
               vg_loader_next(L, &bt) == VG_OK && bt.n == 2 && bt.images->ndim == 2 && bt.images->shape[1] == SF &&
               vg_f32(bt.images)[SF + SF - 2] == 1002.f,
           "stream: vg_loader_next gives (rows, sample_floats) images; a restarted stream starts at position 0");
  vg_batch_free(&bt);
  vg_loader_destroy(L);
  free(a); free(b); free(ia); free(ib);
  vg_dataset_free(&ds);
}

static void test_loader(void) {
  vg_dataset ds;
  vg_split_opts te = {VG_SPLIT_TEST, 0, 0};
  VG_CHECK(vg_ds_mvtec(P("mvtec"), "widget", &te, &ds) == VG_OK, "loader: dataset");
  int64_t n = ds.n, S = 3 * 12 * 14;
  float *a = malloc((size_t)(n * S) * sizeof(float)), *b = malloc((size_t)(n * S) * sizeof(float));
  float *ref = malloc((size_t)S * sizeof(float));
  int64_t *oa = malloc((size_t)n * sizeof *oa), *ob = malloc((size_t)n * sizeof *ob);
  int ra = run_epoch(&ds, 1, 0, a, oa), rb = run_epoch(&ds, 3, 0, b, ob);
  VG_CHECK(ra == n && rb == n, "loader: one epoch yields every sample (%d, %d of %lld)", ra, rb, (long long)n);
  VG_CHECK(!memcmp(oa, ob, (size_t)n * sizeof *oa) && !memcmp(a, b, (size_t)(n * S) * sizeof(float)),
           "loader: 1 worker and 3 workers give identical batches");
  int perm_ok = 1;
  char seen[64] = {0};
  for (int64_t i = 0; i < n; i++) { if (oa[i] < 0 || oa[i] >= n || seen[oa[i]]) perm_ok = 0; else seen[oa[i]] = 1; }
  VG_CHECK(perm_ok, "loader: indices are a permutation of the dataset");
  double maxd = 0;
  for (int64_t i = 0; i < n; i++) {
    decode_ref(ds.samples[oa[i]].image, ref, 12, 14);
    for (int64_t k = 0; k < S; k++) { double d = fabs(ref[k] - a[i * S + k]); if (d > maxd) maxd = d; }
  }
  VG_CHECK(maxd == 0, "loader: row i = default transform of sample indices[i] (max diff %g)", maxd);
  run_epoch(&ds, 2, 1, b, ob);
  VG_CHECK(memcmp(oa, ob, (size_t)n * sizeof *oa) != 0, "loader: epoch 1 order differs from epoch 0");

  /* default transform = Pillow bilinear resize + to_tensor */
  vg_image im, rs;
  VG_CHECK(vg_image_load(ds.samples[0].image, &im, NULL) == VG_OK && vg_image_resize(&im, 14, 12, VG_RESAMPLE_BILINEAR, &rs) == VG_OK,
           "transform: reference resize");
  float *t1 = malloc((size_t)S * sizeof(float));
  vg_image_to_tensor(&rs, t1);
  decode_ref(ds.samples[0].image, ref, 12, 14);
  VG_CHECK(!memcmp(t1, ref, (size_t)S * sizeof(float)), "transform: default = Image.resize(BILINEAR) + ToTensor");
  vg_imagenet_transform(&im, t1, 3, 12, 14, NULL);
  vg_tensor_normalize_imagenet(ref, 12, 14);
  VG_CHECK(!memcmp(t1, ref, (size_t)S * sizeof(float)), "transform: imagenet = default + Normalize");
  vg_image_free(&im); vg_image_free(&rs); free(t1);

  /* masks: no shuffle, batch of everything */
  vg_loader_opts o = {.batch_size = 4, .workers = 2, .channels = 3, .height = 20, .width = 24, .load_masks = true, .drop_last = true};
  vg_loader *L;
  VG_CHECK(vg_loader_create(&ds, &o, &L) == VG_OK && vg_loader_batches(L) == n / 4, "loader: drop_last -> %lld batches", (long long)(n / 4));
  vg_loader_start_epoch(L, 0);
  vg_batch bt;
  int batches = 0;
  double mask_err = 0;
  while (vg_loader_next(L, &bt) == VG_OK && bt.n > 0) {
    batches++;
    const float *m = vg_f32(bt.masks);
    for (int r = 0; r < bt.n; r++) {
      const vg_sample *s = &ds.samples[bt.indices[r]];
      vg_image mk = {0};
      if (s->n_masks) vg_image_load(s->masks[0].path, &mk, NULL);
      for (int k = 0; k < 20 * 24; k++) {
        float want = s->n_masks ? (((uint8_t *)mk.data)[k] > 0) : 0.f;
        mask_err = fmax(mask_err, fabs(want - m[r * 480 + k]));
      }
      vg_image_free(&mk);
    }
    vg_batch_free(&bt);
  }
  VG_CHECK(batches == n / 4, "loader: drop_last yields only full batches");
  VG_CHECK(mask_err == 0, "loader: masks are the GT masks as 0/1 (max err %g)", mask_err);
  vg_loader_destroy(L);

  /* a corrupt file: error names it; the loader stays usable */
  FILE *f = fopen(ds.samples[2].image, "r+b");
  fseek(f, 40, SEEK_SET);
  fputc(0x5A, f); fputc(0xA5, f);
  fclose(f);
  o.drop_last = false; o.batch_size = 2; o.shuffle = false;
  VG_CHECK(vg_loader_create(&ds, &o, &L) == VG_OK, "loader: create");
  int errs = 0, good_batches = 0;
  for (int ep = 0; ep < 2; ep++) {
    vg_loader_start_epoch(L, ep);
    for (;;) {
      vg_status st = vg_loader_next(L, &bt);
      if (st != VG_OK) {
        errs++;
        VG_CHECK(strstr(vg_last_error(), ds.samples[2].image) != NULL, "loader: error names the corrupt file (%s)", vg_last_error());
        continue;
      }
      if (bt.n == 0) break;
      good_batches++;
      vg_batch_free(&bt);
    }
  }
  VG_CHECK(errs == 2 && good_batches == 2 * ((n + 1) / 2 - 1), "loader: the batch with the corrupt file fails, others load, twice (%d errs, %d ok)", errs, good_batches);
  vg_loader_destroy(L);
  /* abandoning an epoch midway and destroying must not hang */
  VG_CHECK(vg_loader_create(&ds, &o, &L) == VG_OK, "loader: create again");
  vg_loader_start_epoch(L, 0);
  vg_loader_start_epoch(L, 1);
  vg_loader_destroy(L);
  VG_CHECK(1, "loader: restart + destroy mid-epoch returns");

  vg_loader_opts bad = {.batch_size = 0, .channels = 3, .height = 8, .width = 8};
  VG_CHECK(vg_loader_create(&ds, &bad, &L) == VG_ERR_ARG && strstr(vg_last_error(), "batch_size"), "loader: bad options rejected");
  free(a); free(b); free(ref); free(oa); free(ob);
  vg_dataset_free(&ds);
}

/* ---- image folder: symbolic links, depth ---- */
static int g_warned;
static char g_warn[1024];
static void count_warning(const char *msg, void *user) {
  (void)user;
  __atomic_add_fetch(&g_warned, 1, __ATOMIC_SEQ_CST);
  snprintf(g_warn, sizeof g_warn, "%s", msg);
}

static void link_to(const char *target, const char *rel) {
  if (symlink(target, P(rel)) != 0) { perror(rel); abort(); }
}

static int has_image(const vg_dataset *ds, const char *suffix) {
  int k = 0;
  for (int64_t i = 0; i < ds->n; i++) k += ends_with(ds->samples[i].image, suffix);
  return k;
}

static void test_folder_links(void) {
  vg_image_set_warning_handler(count_warning, NULL);
  vg_dataset ds;
  /* A loop: a/up -> .. (the root), a/self -> . ; and 40 links in one folder to itself
   * (before: 40^32 paths, each folder listed again through every link). */
  write_png("links/a/img.png", 8, 8, 3, 1);
  link_to("..", "links/a/up");
  link_to(".", "links/a/self");
  vg_test_mkdirs(P("links/d"));
  write_png("links/d/x.png", 8, 8, 3, 2);
  for (int i = 0; i < 40; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, "links/d/l%02d", i);
    link_to(".", rel);
  }
  g_warned = 0;
  vg_status st = vg_ds_image_folder(P("links"), &ds);
  VG_CHECK(st == VG_OK && ds.n == 2 && has_image(&ds, "links/a/img.png") && has_image(&ds, "links/d/x.png"),
           "image folder: a loop of links and 40 self-links: each image once (%lld found: %s)", (long long)ds.n,
           st ? vg_last_error() : "ok");
  VG_CHECK(g_warned == 42 && strstr(g_warn, "symbolic link skipped"),
           "image folder: each skipped link warned about (%d warnings; last \"%s\")", g_warned, g_warn);
  if (st == VG_OK) vg_dataset_free(&ds);
  /* A diamond: b/x -> ../c, b/y -> ../c, and a link sorting before the real folder
   * (0first -> c): c's image is listed once, under its real path. */
  write_png("diamond/c/img2.png", 8, 8, 3, 3);
  vg_test_mkdirs(P("diamond/b"));
  link_to("../c", "diamond/b/x");
  link_to("../c", "diamond/b/y");
  link_to("c", "diamond/0first");
  link_to("nowhere", "diamond/dangling");
  g_warned = 0;
  st = vg_ds_image_folder(P("diamond"), &ds);
  VG_CHECK(st == VG_OK && ds.n == 1 && has_image(&ds, "diamond/c/img2.png") && !strcmp(ds.samples[0].defect, "c"),
           "image folder: a diamond of links: the image once, under the real folder (%lld: %s)", (long long)ds.n,
           ds.n ? ds.samples[0].image : "-");
  VG_CHECK(g_warned == 3, "image folder: the 3 links to an already listed folder warned about (%d)", g_warned);
  if (st == VG_OK) vg_dataset_free(&ds);
  /* A link to a folder not otherwise reachable is followed once. */
  write_png("elsewhere/e.png", 8, 8, 3, 4);
  vg_test_mkdirs(P("linked"));
  link_to("../elsewhere", "linked/e1");
  link_to("../elsewhere", "linked/e2");
  g_warned = 0;
  st = vg_ds_image_folder(P("linked"), &ds);
  VG_CHECK(st == VG_OK && ds.n == 1 && has_image(&ds, "linked/e1/e.png") && g_warned == 1,
           "image folder: two links to one outside folder: followed once (e1), e2 skipped with a warning");
  if (st == VG_OK) vg_dataset_free(&ds);
  /* Depth: 40 nested real folders -> a clear error, no stack exhaustion. */
  char deep[1024] = "deep";
  for (int i = 0; i < 40; i++) strncat(deep, "/d", sizeof deep - strlen(deep) - 1);
  strncat(deep, "/z.png", sizeof deep - strlen(deep) - 1);
  write_png(deep, 8, 8, 3, 5);
  st = vg_ds_image_folder(P("deep"), &ds);
  VG_CHECK(st == VG_ERR_LIMIT && strstr(vg_last_error(), "deeper than 32"), "image folder: 40 nested folders: %s",
           vg_last_error());
  if (st == VG_OK) vg_dataset_free(&ds);
  vg_image_set_warning_handler(NULL, NULL);
}

/* ---- truncated images: a warning once per file by default, an error with strict ---- */
static void test_strict_images(void) {
  FILE *f = fopen(vg_test_shared("jpeg/video-001.jpeg"), "rb");
  if (!f) { printf("SKIP strict images: tests/data/jpeg/video-001.jpeg not found\n"); return; }
  static uint8_t buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  vg_test_mkdirs(P("trunc/good"));
  write_png("trunc/good/a.png", 16, 16, 3, 7);
  FILE *g = fopen(P("trunc/good/b_cut.jpg"), "wb");
  if (!g || fwrite(buf, 1, n / 2, g) != n / 2) abort();
  fclose(g);
  vg_image_set_warning_handler(count_warning, NULL);
  vg_dataset ds;
  if (!VG_CHECK(vg_ds_image_folder(P("trunc"), &ds) == VG_OK && ds.n == 2, "truncated: dataset of 2")) return;
  for (int strict = 0; strict <= 1; strict++) {
    vg_loader_opts o = {.batch_size = 2, .workers = 2, .channels = 3, .height = 16, .width = 16,
                        .strict_images = strict};
    vg_loader *L;
    if (!VG_CHECK(vg_loader_create(&ds, &o, &L) == VG_OK, "loader (strict %d)", strict)) continue;
    g_warned = 0;
    int ok_batches = 0, errs = 0;
    char err[1024] = "";
    for (int epoch = 0; epoch < 3; epoch++) {
      vg_loader_start_epoch(L, epoch);
      vg_batch b;
      vg_status st;
      while ((st = vg_loader_next(L, &b)) == VG_OK && b.n > 0) { ok_batches++; vg_batch_free(&b); }
      if (st != VG_OK) { errs++; snprintf(err, sizeof err, "%s", vg_last_error()); }
    }
    vg_loader_destroy(L);
    if (!strict)
      VG_CHECK(ok_batches == 3 && errs == 0 && g_warned == 1 && strstr(g_warn, "b_cut.jpg") && strstr(g_warn, "truncated"),
               "default: a truncated JPEG decodes, warned about once over 3 epochs (%d warnings: \"%s\")", g_warned, g_warn);
    else
      VG_CHECK(ok_batches == 0 && errs == 3 && strstr(err, "b_cut.jpg") && strstr(err, "truncated") && g_warned == 0,
               "strict_images: the batch fails naming the file (\"%s\")", err);
  }
  vg_dataset_free(&ds);
  vg_image_set_warning_handler(NULL, NULL);
}

/* ---- files that are not regular files: a clear error, never a hang ---- */
static void test_special_files(void) {
  alarm(20);  /* a hang on the FIFO fails the test (SIGALRM) instead of blocking forever */
  vg_test_mkdirs(P("special/dir.png"));
  char fifo[1024];
  snprintf(fifo, sizeof fifo, "%s", P("special/pipe.png"));
  if (mkfifo(fifo, 0644) != 0) { printf("SKIP fifo: mkfifo failed (%s)\n", strerror(errno)); fifo[0] = 0; }
  const char *paths[] = {P("special/dir.png"), fifo, "/dev/zero", "/dev/null"};
  const char *kinds[] = {"directory", "FIFO", "character device", "character device"};
  for (int i = 0; i < 4; i++) {
    if (!paths[i][0]) continue;
    vg_image im;
    vg_status st = vg_image_load(paths[i], &im, NULL);
    VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), kinds[i]) && !strstr(vg_last_error(), "9223372036854775807"),
             "vg_image_load(%s): %s", paths[i], vg_last_error());
    uint8_t *b = NULL;
    size_t n = 0;
    st = vg_image_read_file(paths[i], &b, &n, 1 << 20);
    VG_CHECK(st == VG_ERR_IO && !b && strstr(vg_last_error(), kinds[i]), "vg_image_read_file(%s): %s", paths[i],
             vg_last_error());
    vg_loco_config cfg;
    st = vg_loco_config_load(paths[i], &cfg);
    VG_CHECK(st == VG_ERR_IO && strstr(vg_last_error(), kinds[i]), "vg_loco_config_load(%s): %s", paths[i], vg_last_error());
    if (st == VG_OK) vg_loco_config_free(&cfg);
  }
  alarm(0);
}

static void rm_rf(const char *p) {
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", p);
}

int main(void) {
  snprintf(g_root, sizeof g_root, "%s/vigil_ds_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(g_root)) { perror("mkdtemp"); return 1; }
  test_mvtec();
  test_loco();
  test_visa();
  test_btad_folder();
  test_sample_rel();
  test_loader_stream();
  test_loader();
  test_folder_links();
  test_strict_images();
  test_special_files();
  rm_rf(g_root);
  return vg_test_finish();
}
