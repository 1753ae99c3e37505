/* test_report.c — report/report (metrics at GT resolution, overlays, SVG curves, HTML
 * report), `vigil metrics` and `vigil convert` on a tiny fake MVTec / LOCO tree built in a
 * temp folder. Expected numbers are derived by hand from the synthetic maps (closed
 * forms) and cross-checked with eval/ on the test's own arrays. The rendered report is
 * checked in headless Chromium when /usr/bin/chromium (or $CHROMIUM) exists, else SKIP.
 * VIGIL_TEST_KEEP=1 keeps the temp folder (screenshot: <tmp>/report/screenshot.png). */
#include "tests/vgtest.h"
#include "datasets/datasets.h"
#include "report/report.h"
#include "base/file.h"
#include "base/json.h"
#include "nn/safetensors.h"
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

enum { W = 32, H = 24, NI = 5 };
static char g_tmp[256] = "/tmp/vigil_test_report_XXXXXX";
static char g_vigil[1100];

static void save_png(const char *path, int c, int depth, const void *data) {
  vg_mkdir_parents(path);
  vg_image im = {W, H, c, depth, (void *)data};
  if (vg_png_save(path, &im) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); exit(1); }
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) { perror(path); exit(1); }
  fputs(text, f);
  fclose(f);
}

static bool file_exists(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && sb.st_size > 0;
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

static void rect(uint8_t *m, int x0, int x1, int y0, int y1, uint8_t v) {
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) m[y * W + x] = v;
}

static void make_image(uint8_t *rgb, int seed) {
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      rgb[3 * (y * W + x) + 0] = (uint8_t)(40 + 4 * x + seed * 7);
      rgb[3 * (y * W + x) + 1] = (uint8_t)(60 + 5 * y);
      rgb[3 * (y * W + x) + 2] = (uint8_t)(90 + ((x * y + seed) % 50));
    }
}

/* Test images in the listing's order (crack/000, crack/001, good/000..002). */
static const char *const k_rel[NI] = {"crack/000", "crack/001", "good/000", "good/001", "good/002"};

/* Maps: 0.1 + [0, 0.1) noise; GT regions 0.9; crack/001 also a false-positive blob 0.95. */
static void make_maps(float *maps, uint8_t *masks) {
  memset(masks, 0, (size_t)NI * W * H);
  rect(masks, 8, 15, 6, 13, 1);                    /* crack/000: 8x8 */
  rect(masks + W * H, 20, 27, 4, 9, 1);            /* crack/001: 8x6 */
  uint32_t s = 12345;
  for (int i = 0; i < NI * W * H; i++) {
    s = s * 1664525u + 1013904223u;
    maps[i] = masks[i] ? 0.9f : 0.1f + (float)(s >> 8) / 16777216.0f * 0.1f;
  }
  for (int y = 15; y <= 19; y++)
    for (int x = 2; x <= 5; x++) maps[W * H + y * W + x] = 0.95f;   /* 4x5 = 20 px */
}

static void build_mvtec(const char *root) {
  uint8_t rgb[W * H * 3], m[W * H];
  char p[1024];
  for (int i = 0; i < NI; i++) {
    make_image(rgb, i);
    snprintf(p, sizeof p, "%s/widget/test/%s.png", root, k_rel[i]);
    save_png(p, 3, 8, rgb);
  }
  snprintf(p, sizeof p, "%s/widget/train/good/000.png", root);
  save_png(p, 3, 8, rgb);
  memset(m, 0, sizeof m);
  rect(m, 8, 15, 6, 13, 255);
  snprintf(p, sizeof p, "%s/widget/ground_truth/crack/000_mask.png", root);
  save_png(p, 1, 8, m);
  memset(m, 0, sizeof m);
  rect(m, 20, 27, 4, 9, 255);
  snprintf(p, sizeof p, "%s/widget/ground_truth/crack/001_mask.png", root);
  save_png(p, 1, 8, m);
}

static double json_num(const vg_json *j, const char *a, const char *b, const char *c) {
  const vg_json *v = vg_json_get(vg_json_get(vg_json_get(j, a), b), c);
  double d;
  return v && vg_json_as_double(v, &d) ? d : NAN;
}

static bool px_is(const vg_image *im, int x, int y, int r, int g, int b) {
  const uint8_t *p = (const uint8_t *)im->data + 3 * (y * im->w + x);
  return p[0] == r && p[1] == g && p[2] == b;
}

static void check_svg(const char *path) {
  char *s = read_all(path);
  VG_CHECK(s != NULL, "svg exists: %s", path);
  if (!s) return;
  int opens = 0, closes = 0, poly = 0, texts = 0, etexts = 0;
  for (const char *q = s; (q = strstr(q, "<svg")); q++) opens++;
  for (const char *q = s; (q = strstr(q, "</svg>")); q++) closes++;
  for (const char *q = s; (q = strstr(q, "<polyline")); q++) poly++;
  for (const char *q = s; (q = strstr(q, "<text")); q++) texts++;
  for (const char *q = s; (q = strstr(q, "</text>")); q++) etexts++;
  bool pts_ok = true;   /* every polyline has >= 2 numeric x,y pairs inside the viewBox */
  for (const char *q = s; (q = strstr(q, "points=\"")); ) {
    q += 8;
    int np = 0;
    while (*q != '"') {
      double x, y;
      int k;
      if (sscanf(q, "%lf,%lf%n", &x, &y, &k) != 2 || x < 0 || x > 360 || y < 0 || y > 320) { pts_ok = false; break; }
      np++;
      q += k;
      while (*q == ' ') q++;
    }
    if (np < 2) pts_ok = false;
  }
  const char *end = strstr(s, "</svg>");
  end = end ? end + 6 : s;
  while (*end == '\n' || *end == ' ') end++;
  VG_CHECK(!strncmp(s, "<?xml", 5) && opens == 1 && closes == 1 && texts == etexts && texts > 10 && poly >= 1 &&
               pts_ok && *end == 0,
           "svg well-formed basics: %s (%d polylines, %d texts)", strrchr(path, '/') + 1, poly, texts);
  free(s);
}

/* Runs a command, returns its stdout (malloc'd) and exit status. */
static char *run_cmd(const char *cmd, int *rc) {
  FILE *p = popen(cmd, "r");
  if (!p) { *rc = -1; return NULL; }
  size_t cap = 1 << 16, n = 0;
  char *s = malloc(cap);
  size_t k;
  while ((k = fread(s + n, 1, cap - n - 1, p)) > 0) {
    n += k;
    if (cap - n < 4096) { cap *= 2; s = realloc(s, cap); }
  }
  s[n] = 0;
  int st = pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return s;
}

static void test_mvtec(void) {
  char data[512], mapsd[512], rep[512], js[512], cmd[4096], p[1024];
  snprintf(data, sizeof data, "%s/mvtec", g_tmp);
  snprintf(mapsd, sizeof mapsd, "%s/maps", g_tmp);
  snprintf(rep, sizeof rep, "%s/report", g_tmp);
  snprintf(js, sizeof js, "%s/metrics.json", g_tmp);
  build_mvtec(data);
  static float maps[NI * W * H];
  static uint8_t masks[NI * W * H];
  make_maps(maps, masks);
  for (int i = 0; i < NI; i++) {
    snprintf(p, sizeof p, "%s/widget/test/%s", mapsd, k_rel[i]);
    vg_mkdir_parents(p);
    snprintf(p, sizeof p, "%s/widget/test/%s.tiff", mapsd, k_rel[i]);
    VG_CHECK(vg_tiff_write_f32(p, maps + i * W * H, W, H) == VG_OK, "write map %s", k_rel[i]);
  }
  /* expected, by hand: positives 112 px at 0.9; 3728 negatives of which 20 at 0.95 */
  const double nneg = NI * W * H - 112, fp = 20;
  const double e_pauroc = (nneg - fp) / nneg, e_pauprc = 112.0 / 132.0, e_aupro = 1.0 - (fp / nneg) / 0.3;
  vg_eval_metrics em;
  VG_CHECK(vg_eval_summary(maps, masks, NI, H, W, NULL, NULL, &em) == VG_OK, "eval summary of the test's arrays");
  VG_CHECK(fabs(em.pixel_auroc - e_pauroc) < 1e-9 && fabs(em.pixel_auprc - e_pauprc) < 1e-9 &&
               fabs(em.au_pro - e_aupro) < 1e-6, "eval/ agrees with the closed forms (P-AUROC %.6f AU-PRO %.6f)",
           em.pixel_auroc, em.au_pro);
  if (!g_vigil[0]) { printf("SKIP vigil metrics (no vigil binary next to the test)\n"); return; }
  snprintf(cmd, sizeof cmd, "%s metrics --dataset mvtec --data %s --category widget --maps %s --out %s --report %s 2>&1",
           g_vigil, data, mapsd, js, rep);
  int rc;
  char *out = run_cmd(cmd, &rc);
  VG_CHECK(rc == 0 && out && strstr(out, "I-AUROC") && strstr(out, "widget"), "vigil metrics runs and prints a table");
  if (rc) printf("%s\n", out ? out : "");
  free(out);
  char *text = read_all(js);
  vg_json *j = NULL;
  VG_CHECK(text && vg_json_parse(text, strlen(text), NULL, &j) == VG_OK, "metrics.json parses");
  free(text);
  if (!j) return;
  VG_CHECK(json_num(j, "categories", "widget", "image_auroc") == 1.0 && json_num(j, "categories", "widget", "image_auprc") == 1.0 &&
               json_num(j, "categories", "widget", "f1_max") == 1.0, "perfect image separation: AUROC = AUPRC = F1 = 1");
  VG_CHECK(fabs(json_num(j, "categories", "widget", "f1_threshold") - 0.9) < 1e-6, "image F1 threshold = 0.9 (lowest anomalous max)");
  VG_CHECK(fabs(json_num(j, "categories", "widget", "pixel_auroc") - e_pauroc) < 1e-9, "pixel AUROC = %.6f", e_pauroc);
  VG_CHECK(fabs(json_num(j, "categories", "widget", "pixel_auprc") - e_pauprc) < 1e-9, "pixel AUPRC = 112/132");
  VG_CHECK(fabs(json_num(j, "categories", "widget", "au_pro") - e_aupro) < 1e-6, "AU-PRO@0.3 = 1 - FPR0/0.3 = %.6f", e_aupro);
  VG_CHECK(fabs(json_num(j, "categories", "widget", "pixel_f1_threshold") - 0.9) < 1e-6, "pixel F1 threshold 0.9");
  VG_CHECK(json_num(j, "categories", "widget", "n_regions") == 2 && json_num(j, "categories", "widget", "n_images") == NI,
           "2 regions, 5 images");
  vg_json_free(j);
  /* the same maps as one safetensors file, (1, H, W) tensors named <category>/test/<rel> */
  {
    vg_tensor *ts[NI];
    char names[NI][64];
    const char *np[NI];
    int64_t shp[3] = {1, H, W};
    for (int i = 0; i < NI; i++) {
      ts[i] = vg_tensor_new(VG_F32, 3, shp);
      memcpy(vg_f32(ts[i]), maps + i * W * H, sizeof(float) * W * H);
      snprintf(names[i], sizeof names[i], "widget/test/%s", k_rel[i]);
      np[i] = names[i];
    }
    snprintf(p, sizeof p, "%s/maps.safetensors", g_tmp);
    VG_CHECK(vg_st_save(p, NI, np, ts, NULL) == VG_OK, "maps.safetensors written");
    for (int i = 0; i < NI; i++) vg_tensor_free(ts[i]);
    snprintf(cmd, sizeof cmd, "%s metrics --dataset mvtec --data %s --category widget --maps %s --out %s/m3.json >/dev/null 2>&1",
             g_vigil, data, p, g_tmp);
    VG_CHECK(system(cmd) == 0, "vigil metrics --maps FILE.safetensors");
    snprintf(p, sizeof p, "%s/m3.json", g_tmp);
    text = read_all(p);
    if (text && vg_json_parse(text, strlen(text), NULL, &j) == VG_OK) {
      VG_CHECK(fabs(json_num(j, "categories", "widget", "pixel_auroc") - e_pauroc) < 1e-9 &&
                   fabs(json_num(j, "categories", "widget", "au_pro") - e_aupro) < 1e-6, "safetensors maps: same metrics");
      vg_json_free(j);
    } else VG_CHECK(0, "m3.json parses");
    free(text);
  }
  /* --scores reverses the ranking: image AUROC 0 */
  snprintf(p, sizeof p, "%s/scores.json", g_tmp);
  write_file(p, "{\"crack/000\": 0.1, \"crack/001\": 0.2, \"good/000\": 0.7, \"widget/test/good/001\": 0.8, \"good/002\": 0.9}");
  snprintf(cmd, sizeof cmd, "%s metrics --dataset mvtec --data %s --category widget --maps %s --scores %s/scores.json --out %s/m2.json >/dev/null 2>&1",
           g_vigil, data, mapsd, g_tmp, g_tmp);
  VG_CHECK(system(cmd) == 0, "vigil metrics --scores");
  snprintf(p, sizeof p, "%s/m2.json", g_tmp);
  text = read_all(p);
  if (text && vg_json_parse(text, strlen(text), NULL, &j) == VG_OK) {
    VG_CHECK(json_num(j, "categories", "widget", "image_auroc") == 0.0, "scores file used: image AUROC 0");
    vg_json_free(j);
  } else VG_CHECK(0, "m2.json parses");
  free(text);
  /* missing map: error names the file */
  snprintf(p, sizeof p, "%s/widget/test/good/001.tiff", mapsd);
  char moved[1100];
  snprintf(moved, sizeof moved, "%s.bak", p);
  rename(p, moved);
  snprintf(cmd, sizeof cmd, "%s metrics --dataset mvtec --data %s --category widget --maps %s 2>&1", g_vigil, data, mapsd);
  out = run_cmd(cmd, &rc);
  VG_CHECK(rc != 0 && out && strstr(out, "good/001.tiff") && strstr(out, "missing"), "missing map: error names it (%s)",
           out ? strtok(out, "\n") : "");
  free(out);
  rename(moved, p);

  /* overlays: GT contour white at the mask boundary, prediction contour magenta around the
   * false-positive blob (threshold 0.9 <= 0.95), blended jet inside */
  vg_image ov;
  snprintf(p, sizeof p, "%s/heatmaps/widget/crack/001.png", rep);
  if (VG_CHECK(vg_image_load(p, &ov, NULL) == VG_OK && ov.w == W && ov.h == H && ov.c == 3, "overlay PNG %dx%d RGB", W, H)) {
    VG_CHECK(px_is(&ov, 20, 4, VG_REPORT_GT_RGB) && px_is(&ov, 27, 9, VG_REPORT_GT_RGB) && px_is(&ov, 20, 7, VG_REPORT_GT_RGB),
             "GT contour white on the mask boundary");
    VG_CHECK(!px_is(&ov, 23, 6, VG_REPORT_GT_RGB) && !px_is(&ov, 23, 6, VG_REPORT_PRED_RGB), "mask interior is the blended map");
    VG_CHECK(px_is(&ov, 2, 15, VG_REPORT_PRED_RGB) && px_is(&ov, 5, 19, VG_REPORT_PRED_RGB) && !px_is(&ov, 3, 17, VG_REPORT_PRED_RGB),
             "prediction contour magenta around the blob, not inside");
    int nwhite = 0;
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) nwhite += px_is(&ov, x, y, VG_REPORT_GT_RGB);
    VG_CHECK(nwhite == 2 * 8 + 2 * 4, "contour = the 24 boundary pixels of the 8x6 mask (%d)", nwhite);
    /* jet check on a background pixel: lo..hi normalisation, 50 % blend with the image */
    uint8_t img[W * H * 3], jc[3];
    make_image(img, 1);
    float lo = 1e9f, hi = -1e9f;
    for (int i = 0; i < NI * W * H; i++) { lo = maps[i] < lo ? maps[i] : lo; hi = maps[i] > hi ? maps[i] : hi; }
    int x = 12, y = 18;
    vg_report_jet((maps[W * H + y * W + x] - lo) / (hi - lo), jc);
    const uint8_t *q = (const uint8_t *)ov.data + 3 * (y * W + x);
    bool ok = true;
    for (int k = 0; k < 3; k++) ok &= q[k] == (img[3 * (y * W + x) + k] + jc[k] + 1) / 2;
    VG_CHECK(ok, "background pixel = (image + jet(map)) / 2");
    vg_image_free(&ov);
  }
  snprintf(p, sizeof p, "%s/heatmaps/widget/good/002.png", rep);
  if (VG_CHECK(vg_image_load(p, &ov, NULL) == VG_OK, "good overlay decodes")) {
    int nc = 0;
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) nc += px_is(&ov, x, y, VG_REPORT_GT_RGB) || px_is(&ov, x, y, VG_REPORT_PRED_RGB);
    VG_CHECK(nc == 0, "good image without detections: no contour pixel");
    vg_image_free(&ov);
  }
  const char *kinds[] = {"roc", "pr", "pro"};
  for (int k = 0; k < 3; k++) {
    snprintf(p, sizeof p, "%s/curves/widget_%s.svg", rep, kinds[k]);
    check_svg(p);
  }
  /* report.html: every src= exists */
  snprintf(p, sizeof p, "%s/report.html", rep);
  char *html = read_all(p);
  int nsrc = 0, nmissing = 0;
  for (const char *q = html; q && (q = strstr(q, "src=\"")); ) {
    q += 5;
    const char *e = strchr(q, '"');
    char f[2048];
    snprintf(f, sizeof f, "%s/%.*s", rep, (int)(e - q), q);
    nsrc++;
    if (!file_exists(f)) { nmissing++; printf("  missing: %s\n", f); }
    q = e;
  }
  VG_CHECK(html && nsrc == 3 + NI && nmissing == 0, "report.html references %d files, all present", nsrc);
  VG_CHECK(html && strstr(html, "<table>") && strstr(html, "widget") && strstr(html, "0.9946"), "report.html has the metrics table");
  free(html);

  /* Chromium: images load, screenshot non-uniform */
  const char *chrome = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
  if (access(chrome, X_OK) != 0) { printf("SKIP chromium rendering (%s not found)\n", chrome); return; }
  const char *flags = "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --disable-extensions "
                      "--hide-scrollbars --mute-audio --disable-background-networking";
  snprintf(cmd, sizeof cmd, "timeout 20 %s %s --user-data-dir=%s/chrome --virtual-time-budget=4000 --dump-dom file://%s/report.html 2>/dev/null",
           chrome, flags, g_tmp, rep);
  out = run_cmd(cmd, &rc);
  int ok = -1, total = -1;
  const char *b = out ? strstr(out, "<body") : NULL;
  if (b) {
    const char *a = strstr(b, "data-img-ok=\""), *t = strstr(b, "data-img-total=\"");
    if (a) ok = atoi(a + 13);
    if (t) total = atoi(t + 16);
  }
  VG_CHECK(rc == 0 && total == 3 + NI && ok == total, "chromium: %d of %d images loaded", ok, total);
  free(out);
  snprintf(cmd, sizeof cmd, "timeout 20 %s %s --user-data-dir=%s/chrome --window-size=1280,1600 --screenshot=%s/screenshot.png file://%s/report.html >/dev/null 2>&1",
           chrome, flags, g_tmp, rep, rep);
  rc = system(cmd);
  snprintf(p, sizeof p, "%s/screenshot.png", rep);
  vg_image shot;
  if (VG_CHECK(rc == 0 && vg_image_load(p, &shot, NULL) == VG_OK, "chromium screenshot decodes (%s)", p)) {
    const uint8_t *d = shot.data;
    size_t n = (size_t)shot.w * shot.h * shot.c, diff = 0;
    for (size_t i = shot.c; i < n; i++) diff += d[i] != d[i % shot.c];
    VG_CHECK(shot.w == 1280 && shot.h == 1600 && diff > n / 100, "screenshot 1280x1600, non-uniform (%zu differing samples)", diff);
    vg_image_free(&shot);
  }
}

/* Library call with maps at half resolution: resized to the GT size, perfect image ranking. */
static void test_library_resize(void) {
  char data[512];
  snprintf(data, sizeof data, "%s/mvtec", g_tmp);
  vg_dataset ds;
  vg_split_opts so = {.split = VG_SPLIT_TEST};
  if (!VG_CHECK(vg_ds_mvtec(data, "widget", &so, &ds) == VG_OK && ds.n == NI, "listing of the fake tree")) return;
  static float full[NI * W * H], half[NI * (W / 2) * (H / 2)];
  static uint8_t masks[NI * W * H];
  make_maps(full, masks);
  for (int i = 0; i < NI; i++)    /* 2x2 max pooling keeps the ranking */
    for (int y = 0; y < H / 2; y++)
      for (int x = 0; x < W / 2; x++) {
        const float *f = full + i * W * H;
        float m = fmaxf(fmaxf(f[2 * y * W + 2 * x], f[2 * y * W + 2 * x + 1]), fmaxf(f[(2 * y + 1) * W + 2 * x], f[(2 * y + 1) * W + 2 * x + 1]));
        half[i * (W / 2) * (H / 2) + y * (W / 2) + x] = m;
      }
  vg_report_input in = {.category = "widget", .ds = &ds, .maps = half, .map_h = H / 2, .map_w = W / 2};
  vg_report_cat *c;
  if (VG_CHECK(vg_report_category(&in, NULL, &c) == VG_OK, "vg_report_category (maps 16x12)")) {
    const vg_report_metrics *m = vg_report_cat_metrics(c);
    VG_CHECK(m->eval_h == H && m->eval_w == W && m->maps_resized, "evaluated at the GT size %dx%d", m->eval_w, m->eval_h);
    VG_CHECK(m->m.image_auroc == 1.0 && m->m.n_regions == 2 && m->m.pixel_auroc > 0.95, "I-AUROC 1, P-AUROC %.4f", m->m.pixel_auroc);
    char *t = vg_report_table(&c, 1);
    VG_CHECK(t && strstr(t, "widget") && strstr(t, "1.0000"), "text table");
    free(t);
    vg_report_cat_free(c);
  }
  float o[4], src[4] = {0, 1, 2, 3};   /* 2x2 -> 4x2 (w 4, h 2): x weights 0.25 / 0.75 */
  float big[8];
  vg_report_resize_map(src, 2, 2, big, 2, 4);
  o[0] = big[0]; o[1] = big[1]; o[2] = big[2]; o[3] = big[3];
  float want[4] = {0, 0.25f, 0.75f, 1};
  VG_CHECK_CLOSE(o, want, 4, 0, 1e-7, "bilinear resize = F.interpolate(align_corners=False)");
  vg_dataset_free(&ds);
}

/* LOCO: sPRO for logical / structural / mean equal eval/'s on the test's own subsets. */
static void test_loco(void) {
  char root[512], p[1024];
  snprintf(root, sizeof root, "%s/loco", g_tmp);
  uint8_t rgb[W * H * 3], m[W * H];
  make_image(rgb, 3);
  const char *imgs[] = {"train/good/000", "validation/good/000", "test/good/000", "test/good/001",
                        "test/logical_anomalies/000", "test/structural_anomalies/000"};
  for (int i = 0; i < 6; i++) {
    snprintf(p, sizeof p, "%s/box/%s.png", root, imgs[i]);
    save_png(p, 3, 8, rgb);
  }
  memset(m, 0, sizeof m);
  rect(m, 4, 11, 4, 11, 200);
  snprintf(p, sizeof p, "%s/box/ground_truth/logical_anomalies/000/000.png", root);
  save_png(p, 1, 8, m);
  memset(m, 0, sizeof m);
  rect(m, 16, 23, 10, 17, 100);
  snprintf(p, sizeof p, "%s/box/ground_truth/structural_anomalies/000/000.png", root);
  save_png(p, 1, 8, m);
  snprintf(p, sizeof p, "%s/box/defects_config.json", root);
  write_file(p, "[{\"defect_name\":\"missing\",\"pixel_value\":200,\"saturation_threshold\":0.5,\"relative_saturation\":true},"
                "{\"defect_name\":\"scratch\",\"pixel_value\":100,\"saturation_threshold\":20,\"relative_saturation\":false}]");
  vg_dataset ds;
  vg_split_opts so = {.split = VG_SPLIT_TEST};
  if (!VG_CHECK(vg_ds_loco(root, "box", &so, &ds) == VG_OK && ds.n == 4, "LOCO listing")) { printf("%s\n", vg_last_error()); return; }
  /* listing order: good/000, good/001, logical/000, structural/000 */
  static float maps[4 * W * H];
  uint32_t s = 7;
  for (int i = 0; i < 4 * W * H; i++) { s = s * 1664525u + 1013904223u; maps[i] = (float)(s >> 8) / 16777216.0f * 0.5f; }
  for (int y = 4; y <= 11; y++) for (int x = 4; x <= 7; x++) maps[2 * W * H + y * W + x] = 0.95f;    /* half of logical */
  for (int y = 10; y <= 17; y++) for (int x = 16; x <= 23; x++) maps[3 * W * H + y * W + x] = 0.6f + 0.01f * (x - 16);
  maps[1 * W * H + 5] = 0.9f;   /* a hot pixel in a good image */
  vg_report_input in = {.category = "box", .ds = &ds, .maps = maps, .map_h = H, .map_w = W};
  vg_report_cat *c;
  if (!VG_CHECK(vg_report_category(&in, NULL, &c) == VG_OK, "vg_report_category on LOCO")) { printf("%s\n", vg_last_error()); vg_dataset_free(&ds); return; }
  const vg_report_metrics *rm = vg_report_cat_metrics(c);
  /* expected: subsets built here. logical = good x2 + logical; structural = good x2 + structural */
  static float sub[3 * W * H];
  static uint8_t lm[W * H], sm[W * H];
  memset(lm, 0, sizeof lm); rect(lm, 4, 11, 4, 11, 1);
  memset(sm, 0, sizeof sm); rect(sm, 16, 23, 10, 17, 1);
  double e[3][VG_EVAL_SPRO_NLIMITS];
  for (int t = 0; t < 2; t++) {
    memcpy(sub, maps, 2 * sizeof(float) * W * H);
    memcpy(sub + 2 * W * H, maps + (2 + t) * W * H, sizeof(float) * W * H);
    vg_eval_region r = {2, t ? sm : lm, t ? 20 : 32};   /* structural: min(20, 64); logical: int(0.5 * 64) */
    vg_eval_au_spro(sub, 3, H, W, &r, 1, NULL, VG_EVAL_SPRO_NLIMITS, e[t]);
  }
  bool ok = rm->loco;
  for (int l = 0; l < VG_EVAL_SPRO_NLIMITS; l++) {
    e[2][l] = 0.5 * (e[0][l] + e[1][l]);
    for (int t = 0; t < 3; t++) ok &= fabs(rm->au_spro[t][l] - e[t][l]) < 1e-12;
  }
  VG_CHECK(ok, "AU-sPRO logical/structural/mean at 5 limits (logical@0.05 %.4f, structural@0.05 %.4f)", rm->au_spro[0][1], rm->au_spro[1][1]);
  VG_CHECK(rm->au_spro[0][4] > 0.5 && rm->au_spro[0][4] <= 1.0, "logical saturates at half coverage: sPRO@1 %.4f", rm->au_spro[0][4]);
  VG_CHECK(fabs(rm->loco_image_auroc[0] - 1.0) < 1e-12 && fabs(rm->loco_image_auroc[1] - 0.5) < 1e-12 &&
               fabs(rm->loco_image_auroc[2] - 0.75) < 1e-12,
           "LOCO image AUROC: logical 0.95 beats both goods (1), structural 0.67 one of two (0.5: good/001 has a 0.9 pixel), mean 0.75 (got %g %g %g)",
           rm->loco_image_auroc[0], rm->loco_image_auroc[1], rm->loco_image_auroc[2]);
  char *js = vg_report_json("loco", &c, 1);
  VG_CHECK(js && strstr(js, "\"structural\"") && strstr(js, "\"fpr_limits\""), "JSON has the LOCO block");
  free(js);
  vg_report_cat_free(c);
  vg_dataset_free(&ds);
}

/* vigil convert: 16-bit PNG -> PNG / TIFF keep every sample; RGB -> PGM = Pillow L. */
static void test_convert(void) {
  if (!g_vigil[0]) { printf("SKIP vigil convert (no vigil binary next to the test)\n"); return; }
  const char *srcs[] = {"pngsuite/16bit/basn2c16.png", "pngsuite/16bit/basn0g16.png", "pngsuite/16bit/basn6a16.png"};
  const char *exts[] = {"png", "tiff", "ppm"};
  for (int i = 0; i < 3; i++) {
    char src[1024];
    snprintf(src, sizeof src, "%s", vg_test_shared(srcs[i]));
    vg_image a;
    if (vg_image_load(src, &a, NULL) != VG_OK) { printf("SKIP %s (%s)\n", srcs[i], vg_last_error()); continue; }
    for (int e = 0; e < 3; e++) {
      if (e == 2 && a.c != 3) continue;
      char out[600], cmd[4096];
      snprintf(out, sizeof out, "%s/conv%d.%s", g_tmp, i, exts[e]);
      snprintf(cmd, sizeof cmd, "%s convert %s %s >/dev/null 2>&1", g_vigil, src, out);
      int rc = system(cmd);
      vg_image b;
      bool ok = rc == 0 && vg_image_load(out, &b, NULL) == VG_OK;
      if (ok) {
        ok = b.w == a.w && b.h == a.h && b.c == a.c && b.depth == 16 && !memcmp(a.data, b.data, (size_t)a.w * a.h * a.c * 2);
        vg_image_free(&b);
      }
      VG_CHECK(ok, "convert %s -> .%s: 16-bit, %d channels, identical samples", strrchr(srcs[i], '/') + 1, exts[e], a.c);
    }
    vg_image_free(&a);
  }
  char src[1024], out[600], cmd[4096];
  snprintf(src, sizeof src, "%s", vg_test_shared("pngsuite/primary/basn2c08.png"));
  vg_image a, g, b;
  if (vg_image_load(src, &a, NULL) != VG_OK) { printf("SKIP RGB->PGM (%s)\n", vg_last_error()); return; }
  snprintf(out, sizeof out, "%s/grey.pgm", g_tmp);
  snprintf(cmd, sizeof cmd, "%s convert %s %s >/dev/null 2>&1", g_vigil, src, out);
  bool ok = system(cmd) == 0 && vg_image_to_gray(&a, &g) == VG_OK && vg_image_load(out, &b, NULL) == VG_OK;
  if (ok) {
    ok = b.c == 1 && b.depth == 8 && b.w == a.w && !memcmp(g.data, b.data, (size_t)a.w * a.h);
    vg_image_free(&b); vg_image_free(&g);
  }
  VG_CHECK(ok, "convert RGB -> PGM = Pillow convert(\"L\")");
  /* Pillow weights by hand on one pixel */
  if (vg_image_load(out, &b, NULL) == VG_OK) {
    const uint8_t *p = a.data;
    size_t i = 0;   /* a pixel whose channels differ */
    while (i + 1 < (size_t)a.w * a.h && (p[3 * i] == p[3 * i + 1] || p[3 * i + 1] == p[3 * i + 2])) i++;
    p += 3 * i;
    int want = (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16;
    VG_CHECK(((uint8_t *)b.data)[i] == want, "grey of (%d,%d,%d) = (R*19595 + G*38470 + B*7471 + 2^15) >> 16 = %d",
             p[0], p[1], p[2], want);
    vg_image_free(&b);
  }
  snprintf(out, sizeof out, "%s/small.png", g_tmp);
  snprintf(cmd, sizeof cmd, "%s convert %s %s --resize 20x12 >/dev/null 2>&1", g_vigil, src, out);
  ok = system(cmd) == 0 && vg_image_resize(&a, 20, 12, VG_RESAMPLE_BILINEAR, &g) == VG_OK && vg_image_load(out, &b, NULL) == VG_OK;
  if (ok) {
    ok = b.w == 20 && b.h == 12 && b.c == 3 && !memcmp(g.data, b.data, 20 * 12 * 3);
    vg_image_free(&b); vg_image_free(&g);
  }
  VG_CHECK(ok, "convert --resize 20x12 = Pillow bilinear resize");
  vg_image_free(&a);
}

int main(int argc, char **argv) {
  (void)argc;
  if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
  /* the vigil binary: <BUILD>/tests/test_report -> <BUILD>/vigil */
  vg_test_find_vigil(argv[0], g_vigil, sizeof g_vigil);
  test_mvtec();
  test_library_resize();
  test_loco();
  test_convert();
  vg_test_tmp_done(g_tmp);
  return vg_test_finish();
}
