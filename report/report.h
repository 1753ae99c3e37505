/* report.h — Vigil's evaluation front end: from a dataset's test listing and one anomaly
 * map per test image to the metrics (JSON), heatmap overlays (PNG), ROC / PR / PRO curves
 * (SVG) and a self-contained HTML report. `vigil metrics` and `vigil test` call it.
 *
 *   vg_report_opts o = vg_report_defaults();
 *   o.dir = "runs/x/report";                       // NULL: metrics only, nothing written
 *   vg_report_input in = { .category = "bottle", .ds = &test_split,
 *                          .maps = maps, .map_h = 256, .map_w = 256,   // n*256*256 floats
 *                          .scores = NULL };                            // NULL: map max
 *   vg_report_cat *cat;
 *   if (vg_report_category(&in, &o, &cat) != VG_OK) puts(vg_last_error());
 *   const vg_report_metrics *m = vg_report_cat_metrics(cat);    // m->m.image_auroc ...
 *   vg_report_write_json("runs/x/metrics.json", "mvtec", &cat, 1);
 *   vg_report_write_html("runs/x/report", "mvtec", &cat, 1);   // report.html next to
 *   vg_report_cat_free(cat);                                    // heatmaps/ and curves/
 *
 * Evaluation resolution. MVTec's official evaluation reads anomaly maps at the ground-
 * truth resolution, so every map is brought to the size of the category's GT masks (the
 * first mask found in the listing) with a bilinear resize (PyTorch F.interpolate,
 * align_corners=False, no antialias — what methods use to upsample their maps); masks of
 * another size are resized to it with PIL NEAREST. A category with no mask at all is
 * evaluated at the size of its first map. Image scores, when not given, are the max of
 * each map at that resolution (as the official script: max of the TIFF map).
 *
 * Metrics (eval/eval.h): image AUROC / AUPRC / F1-max (+ threshold), pixel AUROC / AUPRC
 * / F1-max (+ threshold), AU-PRO at FPR 0.3 (MVTec official). MVTec LOCO (detected from
 * the listing's saturation info): AU-sPRO at FPR 0.01 / 0.05 / 0.1 / 0.3 / 1 and image
 * AUROC for logical and structural anomalies (each against all good images) and their
 * mean, as LOCO's official evaluator reports them.
 *
 * Written under opts.dir (each file via temp name, fsync, rename):
 *   heatmaps/<category>/<defect>/<stem>.png   overlays: jet map (normalised by the
 *                                  category's min..max map value) blended 50 % on the image,
 *                                  GT contour white, predicted-mask contour (map >= the
 *                                  pixel F1-max threshold) magenta; longer side <= 512 px
 *   curves/<category>_{roc,pr,pro}.svg   image + pixel ROC, image + pixel PR, PRO up to 0.3
 *   report.html                    metrics table per category, curves, the k best and worst
 *                                  test images (by signed margin to the image F1 threshold)
 * The HTML references those files by relative path (inline CSS; a 3-line inline script
 * counts the images that loaded into <body data-img-ok=.. data-img-total=..>). */
#ifndef VG_EVAL_REPORT_H
#define VG_EVAL_REPORT_H
#include <stdbool.h>
#include <stdint.h>
#include "datasets/datasets.h"
#include "eval/eval.h"
#include "base/status.h"

/* LOCO sub-results: index 0 logical, 1 structural, 2 mean of both. */
enum { VG_REPORT_LOGICAL = 0, VG_REPORT_STRUCTURAL = 1, VG_REPORT_MEAN = 2 };

typedef struct {
  vg_eval_metrics m;          /* image / pixel metrics and AU-PRO@0.3 (NaN when undefined) */
  int eval_h, eval_w;         /* evaluation resolution (the GT mask size) */
  bool maps_resized;          /* some map was resized to it */
  bool loco;                  /* the fields below are set */
  double au_spro[3][VG_EVAL_SPRO_NLIMITS];   /* [logical|structural|mean][limit] */
  double loco_image_auroc[3];
} vg_report_metrics;

typedef struct {
  const char *category;       /* name for tables, paths and JSON ("" or NULL: "all") */
  const vg_dataset *ds;       /* the test split: labels, defects, masks (LOCO saturation) */
  /* Maps, either uniform: n * map_h * map_w floats contiguous ... */
  const float *maps;
  int map_h, map_w;
  /* ... or (maps == NULL) one array per image with its own size. */
  const float *const *map_list;
  const int *map_hs, *map_ws;
  const float *scores;        /* ds->n image scores (higher = more anomalous) or NULL */
} vg_report_input;

typedef struct {
  const char *dir;            /* output folder for heatmaps/ and curves/; NULL = none */
  int overlays;               /* -1 none, 0 every test image (default), k > 0: the grid only */
  int grid;                   /* best / worst images shown in the report (default 6 each) */
  int overlay_max_side;       /* overlays are downscaled to this (default 512) */
  float threshold;            /* predicted-mask threshold; NaN = pixel F1-max threshold */
  int curve_bins;             /* bins of the pixel-level / PRO curves (default 2000) */
} vg_report_opts;

vg_report_opts vg_report_defaults(void);

typedef struct vg_report_cat vg_report_cat;   /* one evaluated category (no maps kept) */

/* Evaluates one category (maps and masks at the evaluation resolution), writes its
 * overlays and curves when opts->dir is set, and keeps what the report needs (metrics,
 * curves, per-image scores). Errors name the file (a mask that does not decode, ...). */
vg_status vg_report_category(const vg_report_input *in, const vg_report_opts *opts,
                             vg_report_cat **out);
const vg_report_metrics *vg_report_cat_metrics(const vg_report_cat *c);
const char *vg_report_cat_name(const vg_report_cat *c);
void vg_report_cat_free(vg_report_cat *c);     /* NULL ok */

/* {"dataset", "categories": {name: {image_auroc, image_auprc, f1_max, f1_threshold,
 * pixel_auroc, pixel_auprc, pixel_f1_max, pixel_f1_threshold, au_pro, au_pro_5 (AU-PRO up
 * to FPR 0.05 / 0.05), pixel_auroc_5 (pixel AU-ROC up to FPR 0.05 / 0.05), au_pro_fpr_limit,
 * n_images, n_anomalous_images, n_regions, eval_resolution [h, w], (LOCO) "loco":
 * {"fpr_limits", "au_spro": {"logical", "structural", "mean"}, "image_auroc": {...}}}},
 * "mean": {the same metrics averaged over categories}} — undefined values are null.
 * text: malloc'd; write: temp name, fsync, rename. */
char *vg_report_json(const char *dataset, vg_report_cat *const *cats, int n);
vg_status vg_report_write_json(const char *path, const char *dataset, vg_report_cat *const *cats, int n);
/* A fixed-width text table (one row per category + mean), malloc'd. */
char *vg_report_table(vg_report_cat *const *cats, int n);
/* dir/report.html; the categories must have been evaluated with opts.dir == dir. */
vg_status vg_report_write_html(const char *dir, const char *dataset, vg_report_cat *const *cats, int n);

/* ---- building blocks (report/heatmap.c, report/curves_svg.c) ----------------------- */

/* Bilinear resize of a float map, as F.interpolate(mode="bilinear", align_corners=False). */
void vg_report_resize_map(const float *map, int h, int w, float *out, int oh, int ow);
/* Jet colour map (matplotlib "jet"): v in [0, 1] (clamped) -> rgb. */
void vg_report_jet(float v, uint8_t rgb[3]);
#define VG_REPORT_GT_RGB 255, 255, 255
#define VG_REPORT_PRED_RGB 255, 0, 255
/* Overlay of map (mh x mw, any size) on img (any channels, 8 or 16 bit): out is RGB 8-bit
 * at img's size, or downscaled (Pillow bilinear) so the longer side <= max_side (0 = no
 * limit). Colour = 0.5 image + 0.5 jet((map - lo) / (hi - lo)); then the contour of
 * map >= thr (magenta) and of gt (white; mh x mw u8, NULL = none). A contour pixel is a
 * set pixel with a 4-neighbour outside the set. */
vg_status vg_report_overlay(const vg_image *img, const float *map, int mh, int mw, float lo,
                            float hi, const uint8_t *gt, float thr, int max_side, vg_image *out);

typedef struct {
  const char *label;          /* legend text ("pixel AUROC 0.981"), escaped on output */
  const double *x, *y;        /* n points in data units */
  int64_t n;
} vg_report_series;

/* A line chart as standalone SVG 1.1 (width 360, height 320): axes 0..xmax x 0..1 with
 * ticks, one polyline per series (points closer than 0.5 px to the last kept one are
 * dropped; the first and last are always kept), a legend. Text is XML-escaped. */
char *vg_report_svg_curve(const char *title, const char *xlabel, const char *ylabel, double xmax,
                          const vg_report_series *s, int ns);

/* A horizontal grouped bar chart as standalone SVG: one group of bars per row label
 * (groups[g]), one bar per series (series[s], legend below), values v[g * nseries + s]
 * (NaN = no bar), on a linear axis from 0 or a log axis (log_scale; values <= 0 skipped).
 * hatched[s] (may be NULL) draws series s lighter (reference values beside ours). */
typedef struct {
  const char *title, *xlabel;
  int ngroups, nseries;
  const char *const *groups, *const *series;
  const double *v;
  bool log_scale;
  const bool *hatched;
} vg_report_bars;
char *vg_report_svg_bars(const vg_report_bars *c);   /* malloc'd text; NULL + error */
/* A labelled scatter plot (x log-scaled with log_x): point i at (x[i], y[i]) with text
 * labels[i], coloured by series[i] (NULL: all 0), legend series_names[0..nseries). */
typedef struct {
  const char *title, *xlabel, *ylabel;
  int64_t n;
  const double *x, *y;
  const char *const *labels;
  const int *series;
  int nseries;
  const char *const *series_names;
  bool log_x;
} vg_report_scatter;
char *vg_report_svg_scatter(const vg_report_scatter *c);
#endif
