/* test.c — `vigil test --run RUNDIR` and `vigil predict --run RUNDIR IMAGES... --out DIR`.
 *
 * test: the method from the run's checkpoint predicts every test image of the run's
 * dataset (test split, loader at the method's input size); finalize() applies set-level
 * normalisation; report/report.h evaluates at the GT resolution (maps bilinear-upsampled,
 * as MVTec's official evaluation reads maps at image size); then
 *   RUNDIR/metrics.json      image AUROC/AUPRC/F1-max, pixel AUROC/AUPRC, AU-PRO@0.3,
 *                            LOCO: AU-sPRO per limit for logical/structural/mean
 *   RUNDIR/report/           report.html, heatmap overlays, ROC/PR/PRO curves (SVG)
 *   RUNDIR/maps/<category>/test/<defect>/<stem>.tiff   float maps at the ORIGINAL image
 *                            size (bilinear), MVTec's official evaluation layout, so
 *                            `vigil metrics` or MVTec's script can re-evaluate them
 *   RUNDIR/scores.json       {"<defect>/<stem>": score}
 * predict: from a run, or from an anomalib FastFlow / CFLOW-AD checkpoint (no run directory:
 * the method is built from flags); per image a float TIFF map (original size), a heatmap
 * overlay PNG, a score, JSON lines on stdout. Images go through predict one at a time, then
 * finalize runs over all of them: CFLOW-AD's default map_norm "official" normalises by the
 * maximum likelihood over the images given (= anomalib's map of one batch of them);
 * map_norm "anomalib" leaves each image normalised on its own. */
#include "cli/args.h"
#include "cli/opts.h"
#include "cli/cli.h"
#include "cli/rundir.h"
#include "base/file.h"
#include "eval/eval.h"
#include "report/report.h"
#include "methods/anomalib_import.h"
#include "nn/backbones/backbones.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* `vigil test`'s options (the table drives the parser and --help: cli/opts.h) */
typedef struct {
  const char *run, *device, *dtype;
  int batch, workers, threads;
  bool no_maps, no_report, strict_images;
} test_opts;

#define T test_opts
static const vg_opt test_table[] = {
  {.name = "--run", .kind = VG_OPT_STR, .arg = "RUNDIR", .off = VG_OPT_AT(T, run), .help = "the run directory (required)"},
  VG_OPT_BATCH(T, batch, "batch size, 1..4096 (default 8)"),
  VG_OPT_WORKERS(T, workers, "loader threads, 1..256 (default 2)"),
  VG_OPT_THREADS(T, threads, "compute threads, 0..256 (default 0: all cores)"),
  VG_OPT_DEVICE(T, device, "where the method computes (default: cpu)"),
  VG_OPT_DTYPE(T, dtype, "compute dtype (default f32; f16: CUDA only)"),
  {.name = "--no-maps", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, no_maps), .help = "do not write maps/"},
  {.name = "--no-report", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, no_report), .help = "do not write report/"},
  {.name = "--strict-images", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, strict_images),
   .help = "refuse truncated images (a JPEG cut before its EOI marker) instead of decoding\n"
           "them with a warning naming the file"},
  {0}};
#undef T

const vg_cmd_spec vg_cmd_test = {
  .name = "test", .opts = test_table,
  .usage = "usage: vigil test --run RUNDIR [--batch N] [--workers N] [--threads N] [--device cpu|cuda] [--dtype f32|f16]\n"
           "                  [--no-maps] [--no-report] [--strict-images]\n"
           "  evaluates the run's checkpoint on the test split of the run's dataset; writes\n"
           "  RUNDIR/metrics.json (at the GT resolution; LOCO: sPRO), RUNDIR/scores.json,\n"
           "  RUNDIR/maps/<category>/test/<defect>/<stem>.tiff and RUNDIR/report/ (report.html, heatmaps, curves)\n",
  .footer = "  the run's config.json is checked against the same ranges as `vigil train`'s flags\n"};

static int test_usage(FILE *f) { return vg_opts_usage(&vg_cmd_test, f); }

/* Original size of a sample: its first mask's size, else the image's. */
static vg_status original_size(const vg_sample *s, int *w, int *h) {
  vg_image im;
  vg_status st = vg_image_load(s->n_masks ? s->masks[0].path : s->image, &im, NULL);
  if (st != VG_OK) return st;
  *w = im.w; *h = im.h;
  vg_image_free(&im);
  return VG_OK;
}

const char *const vg_cli_eval_keys[VG_CLI_EVAL_NKEYS] = {"image_auroc", "pixel_auroc", "au_pro", "au_pro_5",
                                                          "pixel_auroc_5"};

vg_status vg_cli_evaluate(vg_method *m, const vg_dataset *ds, const char *category, int workers, bool strict_images,
                          double out[VG_CLI_EVAL_NKEYS]) {
  int H = m->input_h, W = m->input_w, batch = 8;
  int64_t n = ds->n, P = (int64_t)H * W, done_n = 0;
  if (n == 0) return vg_fail(VG_ERR_ARG, "evaluation: the test split is empty");
  float *maps = malloc((size_t)(n * P) * sizeof *maps), *scores = malloc((size_t)n * sizeof *scores);
  vg_loader *L = NULL;
  vg_status st = maps && scores ? VG_OK : vg_fail(VG_ERR_NOMEM, "evaluation: out of memory for %lld maps", (long long)n);
  vg_loader_opts lo = {.batch_size = batch, .workers = workers > 0 ? workers : 2, .channels = 3, .height = H, .width = W,
                       .transform = m->test_transform, .user = m->transform_user, .strict_images = strict_images};
  if (st == VG_OK) st = vg_loader_create(ds, &lo, &L);
  if (st == VG_OK) st = vg_loader_start_epoch(L, 0);
  while (st == VG_OK) {
    vg_batch b;
    if ((st = vg_loader_next(L, &b)) != VG_OK) break;
    if (b.n == 0) { vg_batch_free(&b); break; }
    for (int i = 0; i < b.n && st == VG_OK; i++)
      if (b.indices[i] != done_n + i) st = vg_fail(VG_ERR_ARG, "evaluation: internal: loader order is not the listing order");
    if (st == VG_OK) st = m->ops->predict(m, b.images, maps + done_n * P, scores + done_n);
    done_n += b.n;
    vg_batch_free(&b);
  }
  vg_loader_destroy(L);
  if (st == VG_OK && m->ops->finalize) st = m->ops->finalize(m, maps, n, H, W, scores);
  vg_report_cat *cat = NULL;
  if (st == VG_OK) {
    vg_report_opts ro = vg_report_defaults();
    ro.dir = NULL;
    ro.overlays = -1;
    vg_report_input in = {.category = category, .ds = ds, .maps = maps, .map_h = H, .map_w = W, .scores = scores};
    st = vg_report_category(&in, &ro, &cat);
  }
  if (st == VG_OK) {
    const vg_eval_metrics *em = &vg_report_cat_metrics(cat)->m;
    const double v[VG_CLI_EVAL_NKEYS] = {em->image_auroc, em->pixel_auroc, em->au_pro, em->au_pro_5, em->pixel_auroc_5};
    memcpy(out, v, sizeof v);
  }
  vg_report_cat_free(cat);
  free(maps);
  free(scores);
  return st;
}

/* metrics.json: the report's JSON, plus (RUNDIR/best_epoch.json from a training with
 * eval_every) the best evaluation's numbers as top-level best_epoch_* keys */
static vg_status write_metrics(const char *run, const char *dataset, vg_report_cat *cat) {
  char *t = vg_report_json(dataset, &cat, 1);
  if (!t) return vg_last_status() != VG_OK ? vg_last_status() : vg_fail(VG_ERR_NOMEM, "report: JSON");
  char *be = NULL;
  vg_json *doc = NULL;
  struct stat sb;
  const char *bp = vg_run_path(run, "best_epoch.json");
  vg_status st = VG_OK;
  if (stat(bp, &sb) == 0 && (st = vg_run_read_text(bp, &be)) == VG_OK &&
      (st = vg_json_parse(be, strlen(be), NULL, &doc)) == VG_OK) {
    const vg_json *best = vg_json_get(doc, "best");
    char *end = strrchr(t, '}');
    size_t cap = strlen(t) + 4096;
    char *u = end && best ? malloc(cap) : NULL;
    if (u) {
      size_t len = (size_t)(end - t);
      while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == ' ')) len--;
      memcpy(u, t, len);
      int64_t nev = vg_json_len(vg_json_get(doc, "evaluations"));
      len += (size_t)snprintf(u + len, cap - len, ",\n  \"best_epoch_note\": \"the best of %lld per-meta-epoch test-set "
                              "evaluations per metric (the official CFLOW-AD report: model selection on the test set); the "
                              "numbers above are the final model's\"", (long long)nev);
      for (int k = 0; k < VG_CLI_EVAL_NKEYS; k++) {
        const vg_json *b = vg_json_get(best, vg_cli_eval_keys[k]);
        double v, e;
        if (!b || !vg_json_as_double(vg_json_get(b, "value"), &v) || !vg_json_as_double(vg_json_get(b, "epoch"), &e)) continue;
        len += (size_t)snprintf(u + len, cap - len, ",\n  \"best_epoch_%s\": %.17g,\n  \"best_epoch_%s_epoch\": %.17g",
                                vg_cli_eval_keys[k], v, vg_cli_eval_keys[k], e);
      }
      snprintf(u + len, cap - len, "\n}");
      free(t);
      t = u;
    }
  }
  vg_json_free(doc);
  free(be);
  if (st != VG_OK) { free(t); return vg_fail_prefix("%s", bp); }
  size_t len = strlen(t);
  char *t2 = realloc(t, len + 2);
  if (!t2) { free(t); return vg_fail(VG_ERR_NOMEM, "report: out of memory"); }
  t2[len] = '\n';
  t2[len + 1] = 0;
  st = vg_run_write_text(vg_run_path(run, "metrics.json"), t2);
  free(t2);
  return st;
}

int vg_cli_test(int argc, char **argv) {
  test_opts o = {.batch = 8, .workers = 2};
  int prc = vg_opts_parse(&vg_cmd_test, argc, argv, &o, NULL, NULL);
  if (prc >= 0) return prc;
  const char *run = o.run, *device = o.device, *dtype = o.dtype;
  int batch = o.batch, workers = o.workers, threads = o.threads;
  bool write_maps = !o.no_maps, write_report = !o.no_report, strict_images = o.strict_images;
  if (!run) { fprintf(stderr, "vigil test: --run is required\n"); return test_usage(stderr); }
  vg_cli_apply_threads("test", threads);
  vg_run_config cfg = {0};
  vg_method *m = NULL;
  vg_dataset ds = {0};
  vg_loader *L = NULL;
  float *maps = NULL, *scores = NULL;
  int rc = 1;
  vg_status cst;
  if ((cst = vg_run_config_read(run, &cfg)) != VG_OK || (cst = vg_run_open_method(run, &cfg, true, &m)) != VG_OK ||
      vg_cli_method_to(m, device, dtype) != VG_OK || vg_run_open_dataset(&cfg.data, VG_SPLIT_TEST, &ds) != VG_OK) {
    fprintf(stderr, "vigil test: %s\n", vg_last_error());
    if (cst == VG_ERR_ARG) rc = 2;   /* config.json out of range: refused like a flag */
    goto done;
  }
  int H = m->input_h, W = m->input_w;
  if (vg_check_batch_bytes("vigil test: --batch", batch, 3, H, W) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); rc = 2; goto done; }
  int64_t n = ds.n, P = (int64_t)H * W;
  if (n == 0) { fprintf(stderr, "vigil test: the test split is empty\n"); goto done; }
  maps = malloc((size_t)(n * P) * sizeof *maps);
  scores = malloc((size_t)n * sizeof *scores);
  int64_t *order = malloc((size_t)n * sizeof *order);
  if (!maps || !scores || !order) { free(order); fprintf(stderr, "vigil test: out of memory for %lld maps\n", (long long)n); goto done; }
  vg_loader_opts lo = {.batch_size = batch, .workers = workers, .channels = 3, .height = H, .width = W,
                       .transform = m->test_transform, .user = m->transform_user, .strict_images = strict_images};
  if (vg_loader_create(&ds, &lo, &L) != VG_OK || vg_loader_start_epoch(L, 0) != VG_OK) { free(order); fprintf(stderr, "vigil test: %s\n", vg_last_error()); goto done; }
  double t0 = now_s();
  int64_t done_n = 0;
  for (;;) {
    vg_batch b;
    if (vg_loader_next(L, &b) != VG_OK) { free(order); fprintf(stderr, "vigil test: %s\n", vg_last_error()); goto done; }
    if (b.n == 0) break;
    vg_status st = m->ops->predict(m, b.images, maps + done_n * P, scores + done_n);
    if (st == VG_OK) memcpy(order + done_n, b.indices, (size_t)b.n * sizeof *order);
    done_n += b.n;
    vg_batch_free(&b);
    if (st != VG_OK) { free(order); fprintf(stderr, "vigil test: predict: %s\n", vg_last_error()); goto done; }
  }
  double t_pred = now_s() - t0;
  if (m->ops->finalize && m->ops->finalize(m, maps, n, H, W, scores) != VG_OK) { free(order); fprintf(stderr, "vigil test: %s\n", vg_last_error()); goto done; }
  for (int64_t i = 0; i < n; i++)
    if (order[i] != i) { free(order); fprintf(stderr, "vigil test: internal: loader order is not the listing order\n"); goto done; }
  /* metrics at the GT resolution, overlays, curves, HTML report, LOCO sPRO (report/report.h) */
  vg_report_opts ro = vg_report_defaults();
  char report_dir[1100];
  snprintf(report_dir, sizeof report_dir, "%s/report", run);
  ro.dir = write_report ? report_dir : NULL;
  if (!write_report) ro.overlays = -1;
  vg_report_input in = {.category = cfg.data.category, .ds = &ds, .maps = maps, .map_h = H, .map_w = W, .scores = scores};
  vg_report_cat *cat = NULL;
  if ((write_report && vg_mkdir_p(report_dir) != VG_OK) || vg_report_category(&in, &ro, &cat) != VG_OK ||
      write_metrics(run, cfg.data.dataset, cat) != VG_OK ||
      (write_report && vg_report_write_html(report_dir, cfg.data.dataset, &cat, 1) != VG_OK)) {
    vg_report_cat_free(cat);
    free(order);
    fprintf(stderr, "vigil test: %s\n", vg_last_error());
    goto done;
  }
  /* copied: rm points into cat, freed right below (its eval size is printed at the end) */
  const vg_report_metrics rm = *vg_report_cat_metrics(cat);
  vg_eval_metrics em = rm.m;
  char *table = vg_report_table(&cat, 1);
  vg_report_cat_free(cat);
  /* scores.json */
  vg_json_writer sw;
  vg_jw_init(&sw, 2);
  vg_jw_begin_object(&sw);
  char rel[1200];
  for (int64_t i = 0; i < n; i++) {
    vg_sample_rel(&ds.samples[order[i]], rel, sizeof rel);
    vg_jw_key(&sw, rel);
    vg_jw_double(&sw, scores[i]);
  }
  vg_jw_end_object(&sw);
  char *stt = vg_jw_finish(&sw, NULL);
  if (!stt || vg_run_write_text(vg_run_path(run, "scores.json"), stt) != VG_OK) {
    free(stt); free(table);
    free(order);
    fprintf(stderr, "vigil test: %s\n", vg_last_error());
    goto done;
  }
  free(stt);
  if (write_maps) {
    for (int64_t i = 0; i < n; i++) {
      const vg_sample *s = &ds.samples[order[i]];
      int ow, oh;
      char path[2000];
      vg_sample_rel(s, rel, sizeof rel);
      snprintf(path, sizeof path, "%s/maps/%s/test/%s.tiff", run, cfg.data.category[0] ? cfg.data.category : "all", rel);
      float *big = NULL;
      vg_status st = original_size(s, &ow, &oh);
      if (st == VG_OK) st = vg_mkdir_parents(path);
      if (st == VG_OK) st = (big = malloc((size_t)ow * oh * sizeof *big)) ? VG_OK : vg_fail(VG_ERR_NOMEM, "out of memory");
      if (st == VG_OK) vg_report_resize_map(maps + i * P, H, W, big, oh, ow);
      if (st == VG_OK) st = vg_tiff_write_f32(path, big, ow, oh);
      free(big);
      if (st != VG_OK) { free(order); fprintf(stderr, "vigil test: map %s: %s\n", path, vg_last_error()); goto done; }
    }
  }
  free(order);
  printf("%s on %s/%s (%lld images, %lld anomalous; evaluated at %dx%d)\n%s", cfg.method, cfg.data.dataset,
         cfg.data.category, (long long)em.n_images, (long long)em.n_anomalous_images, rm.eval_h, rm.eval_w, table ? table : "");
  free(table);
  printf("  inference %.2f ms/image (incl. loading); %s%s\n", t_pred * 1e3 / (double)n, vg_run_path(run, "metrics.json"),
         write_report ? ", report/report.html" : "");
  rc = 0;
done:
  vg_loader_destroy(L);
  vg_dataset_free(&ds);
  vg_method_free(m);
  vg_run_config_free(&cfg);
  free(maps); free(scores);
  return rc;
}

/* `vigil predict`'s options */
typedef struct {
  vg_run_overrides ov;   /* method config flags (with --from-anomalib) */
  const char *run, *out, *from, *model, *weights, *device, *dtype;
  int threads;
  double threshold;
  bool no_overlay;
} predict_opts;

#define T predict_opts
static const vg_opt predict_table[] = {
  {.name = "--run", .kind = VG_OPT_STR, .arg = "RUNDIR", .off = VG_OPT_AT(T, run),
   .help = "a Vigil run directory (config.json + checkpoint.safetensors)"},
  {.name = "--from-anomalib", .kind = VG_OPT_STR, .arg = "FILE", .off = VG_OPT_AT(T, from),
   .help = "an anomalib checkpoint: Lightning .ckpt or state_dict .pth (keys \"model.*\", as\n"
           "anomalib writes them); the method is built from the options below, no run needed.\n"
           "Structural options are read off the checkpoint's tensor shapes (FastFlow: backbone,\n"
           "input_size, flow_steps, hidden_ratio, conv3x3_only; CFLOW-AD: backbone, layers,\n"
           "coupling_blocks, condition_vector; EfficientAD: model s|m, out_channels); an option\n"
           "given that contradicts them is refused, naming the value the checkpoint implies.\n"
           "Input as anomalib 2.x makes it (resize \"float\": the float image resized with torch's\n"
           "antialiased bilinear, never rounded); --set resize=pil: Pillow's 8-bit resize instead.\n"
           "DIR/config.json records the method config used"},
  {.name = "--model", .kind = VG_OPT_STR, .arg = "NAME", .off = VG_OPT_AT(T, model),
   .help = "the method of the checkpoint (with --from-anomalib; METHOD above)"},
  {.name = "--backbone", .kind = VG_OPT_STR, .arg = "NAME", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_str, .key = "backbone",
   .help = "backbone, as the anomalib model was built (default: from the checkpoint)"},
  {.name = "--input-size", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = VG_LIM_SIZE_MAX, .off = VG_OPT_AT(T, ov),
   .hook = vg_opt_ov_json, .key = "input_size",
   .help = "input size the anomalib model was trained at (default: FastFlow from the checkpoint,\n"
           "else 256, anomalib's)"},
  {.name = "--set", .kind = VG_OPT_LIST, .arg = "KEY=VALUE", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_set,
   .help = "any method config key (VALUE as JSON, else a string); repeatable"},
  {.name = "--weights", .kind = VG_OPT_STR, .arg = "FILE", .off = VG_OPT_AT(T, weights),
   .help = "backbone weights (.pth / .safetensors) when the checkpoint does not carry them\n"
           "(anomalib's do); without either: random backbone, loud warning"},
  {.name = "--out", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, out), .help = "output folder (created)"},
  {.name = "--threshold", .kind = VG_OPT_F64, .arg = "T", .flo = -3.0e38, .fhi = 3.0e38, .off = VG_OPT_AT(T, threshold),
   .help = "draw the contour of map >= T on the overlays (default: none)"},
  {.name = "--no-overlay", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, no_overlay), .help = "do not write the PNG overlays"},
  VG_OPT_THREADS(T, threads, "compute threads (default: all cores)"),
  VG_OPT_DEVICE(T, device, "where the method computes (default cpu; cuda: a `make CUDA=1` build and a GPU)"),
  VG_OPT_DTYPE(T, dtype, "compute dtype (default f32; f16: CUDA only, with f32 accumulation)"),
  {0}};
#undef T

/* the methods with an anomalib import (methods/method.h: their registry descriptors) */
static void predict_methods(FILE *f) {
  char b[256];
  fprintf(f, "  METHOD (--from-anomalib): %s\n", vg_method_list(b, sizeof b, " | ", true));
}

const vg_cmd_spec vg_cmd_predict = {
  .name = "predict", .opts = predict_table, .max_pos = -1, .example = "a.png", .more = predict_methods,
  .usage = "usage: vigil predict (--run RUNDIR | --from-anomalib FILE --model METHOD [model options]) --out DIR IMAGE...\n",
  .footer = "per image: DIR/<name>.tiff (float anomaly map, bilinear to the image's size), DIR/<name>_overlay.png\n"
    "(jet heatmap blended 50% on the image, colours scaled by the min..max over all the images given) and a\n"
    "JSON line on stdout {\"image\", \"score\", \"map\", \"overlay\"}. Images go one at a time through predict;\n"
    "set-level normalisation (the method's finalize) then runs over all the images given: CFLOW-AD with\n"
    "map_norm \"official\" (default) divides by the maximum likelihood over these images — the official\n"
    "whole-test-set normalisation, equal to anomalib's per-batch map for one batch of these images;\n"
    "--set map_norm=anomalib normalises each image on its own (anomalib with batch size 1).\n"
    "<name>: the image's path under the deepest folder holding all the images given, without its extension\n"
    "(images of one folder: the stem; cut/000.png and good/000.png: cut/000 and good/000, subfolders created\n"
    "under DIR); a name that two images would share (the same file twice, a.png and a.jpg) gets _2, _3, ...,\n"
    "so no output overwrites another; the JSON lines name the files written.\n"};

static int predict_usage(FILE *f) { return vg_opts_usage(&vg_cmd_predict, f); }

/* Builds model from the overrides, loads backbone weights (optional) then the anomalib
 * checkpoint; warns when neither gave the backbone its weights. */
static vg_status open_anomalib(const char *model, const char *ckpt, const char *weights, const vg_run_overrides *ov,
                               vg_method **out) {
  *out = NULL;
  const vg_method_def *def = vg_method_find(model);   /* the method's anomalib import (methods/method.h) */
  if (!def || !def->anomalib_load) {
    char known[256];
    return vg_fail(VG_ERR_ARG, "--from-anomalib: --model must be %s, got '%s'", vg_method_list(known, sizeof known, ", ", true),
                   model);
  }
  /* structural options from the checkpoint's shapes; resize "float" (anomalib 2.x's input) unless --set resize */
  vg_json *user = NULL, *cfg = NULL;
  char note[512] = "";
  vg_status st = vg_run_ov_json(ov, &user);
  if (st == VG_OK && (st = vg_anomalib_config(model, ckpt, user, &cfg, note, sizeof note)) != VG_OK)
    vg_fail_prefix("%s", ckpt);
  vg_json_free(user);
  if (st == VG_OK && note[0]) fprintf(stderr, "vigil predict: from the checkpoint's tensor shapes: %s\n", note);
  if (st == VG_OK) st = vg_method_create(model, cfg, out);
  vg_json_free(cfg);
  if (st != VG_OK) return st;
  if (!def->anomalib_backbone) {
    /* the whole model is in the checkpoint (EfficientAD: teacher, student, ae, mean_std, quantiles) */
    if ((st = def->anomalib_load(*out, ckpt)) != VG_OK) {
      vg_fail_prefix("%s", ckpt);
      vg_method_free(*out);
      *out = NULL;
    }
    return st;
  }
  vg_nn_module *bb = def->anomalib_backbone(*out);
  if (weights && (st = vg_nn_load_state_file(bb, weights, false)) != VG_OK) { vg_method_free(*out); *out = NULL; return st; }
  /* did the checkpoint carry the backbone? compare its first conv (conv1; ViTs: patch_embed.proj) before and after */
  vg_nn_module *c1 = vg_nn_child_get(bb, "conv1"), *pe = c1 ? NULL : vg_nn_child_get(bb, "patch_embed");
  if (pe) c1 = vg_nn_child_get(pe, "proj");
  vg_tensor *w0 = c1 ? vg_nn_param(c1, "weight") : NULL;
  size_t nb = w0 ? (size_t)vg_numel(w0) * sizeof(float) : 0;
  float *before = nb ? malloc(nb) : NULL;
  if (before) memcpy(before, vg_f32(w0), nb);
  st = def->anomalib_load(*out, ckpt);
  bool from_ckpt = before && memcmp(before, vg_f32(w0), nb) != 0;
  free(before);
  if (st != VG_OK) { vg_fail_prefix("%s", ckpt); vg_method_free(*out); *out = NULL; return st; }
  if (!from_ckpt && !weights)
    fprintf(stderr, "\n*** WARNING: %s has no backbone weights and no --weights was given: the backbone is RANDOMLY "
                    "INITIALISED. The maps are meaningless. ***\n\n", ckpt);
  return VG_OK;
}

/* --from-anomalib: DIR/config.json records how the checkpoint was run, {"method", "method_config"
 * (every key, the inferred structural options and "resize" included), "from_anomalib"}. */
static vg_status write_anomalib_config(const char *dir, const char *model, const char *ckpt, const vg_method *m) {
  char *mc = m->ops->config_json(m);
  vg_json *j = NULL;
  vg_status st = mc ? vg_json_parse(mc, strlen(mc), NULL, &j) : vg_fail(VG_ERR_NOMEM, "config.json: out of memory");
  free(mc);
  if (st != VG_OK) return st;
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "method"); vg_jw_string(&w, model);
  vg_jw_key(&w, "method_config"); vg_jw_value(&w, j);
  vg_jw_key(&w, "from_anomalib"); vg_jw_string(&w, ckpt);
  vg_jw_end_object(&w);
  vg_json_free(j);
  char *text = vg_jw_finish(&w, NULL);
  st = text ? vg_run_write_text(vg_run_path(dir, "config.json"), text) : vg_fail(VG_ERR_NOMEM, "config.json: out of memory");
  free(text);
  return st;
}

/* The output name of each image: its path relative to --out, without the extension. That is
 * the image's path under the deepest folder holding all the images given (cut/000.png and
 * good/000.png -> cut/000 and good/000; images of one folder -> their stems), with _2, _3, ...
 * appended when two images still get one name (the same file given twice, a.png and a.jpg),
 * so no output overwrites another. A name whose map or overlay would be one of the images
 * given (--out their folder, an image named like an output) also moves on to _2, _3, ...:
 * an output never replaces an input. rel: n x VG_PRED_NAME chars. */
#define VG_PRED_NAME 1024

/* 1 when out/<name><suffix> exists and is the same file as one of the n images. */
static int is_an_input(const char *out, const char *name, const char *suffix, const struct stat *in, int n) {
  char p[4200];
  struct stat st;
  if ((size_t)snprintf(p, sizeof p, "%s/%s%s", out, name, suffix) >= sizeof p || stat(p, &st) != 0) return 0;
  for (int i = 0; i < n; i++)
    if (in[i].st_ino && in[i].st_dev == st.st_dev && in[i].st_ino == st.st_ino) return 1;
  return 0;
}

static vg_status output_names(const char *const *images, int n, const char *out, char *rel) {
  char **abs = calloc((size_t)n, sizeof *abs);
  struct stat *in = calloc((size_t)n, sizeof *in);
  if (!abs || !in) { free(abs); free(in); return vg_fail(VG_ERR_NOMEM, "out of memory"); }
  for (int i = 0; i < n; i++)
    if (stat(images[i], &in[i]) != 0) memset(&in[i], 0, sizeof in[i]);
  vg_status st = VG_OK;
  size_t common = 0;   /* length of the common folder (up to, not including, its last '/') */
  for (int i = 0; i < n && st == VG_OK; i++) {
    char *r = realpath(images[i], NULL);
    abs[i] = r ? r : strdup(images[i]);
    if (!abs[i]) { st = vg_fail(VG_ERR_NOMEM, "out of memory"); break; }
    const char *sl = strrchr(abs[i], '/');
    size_t dl = sl ? (size_t)(sl - abs[i]) : 0;   /* its folder: abs[i][0..dl) */
    if (i == 0) { common = dl; continue; }
    size_t k = 0;
    while (k < common && k < dl && abs[0][k] == abs[i][k]) k++;
    bool whole = (k == common || abs[0][k] == '/') && (k == dl || abs[i][k] == '/');
    if (!whole)
      while (k > 0 && abs[0][k] != '/') k--;   /* back to a whole folder name */
    common = k;
  }
  for (int i = 0; i < n && st == VG_OK; i++) {
    const char *r = abs[i] + common;
    while (*r == '/') r++;
    char *dst = rel + (size_t)i * VG_PRED_NAME;
    snprintf(dst, VG_PRED_NAME - 16, "%s", r[0] ? r : "image");
    char *dot = strrchr(dst, '.'), *sl = strrchr(dst, '/');
    if (dot && dot != dst && (!sl || dot > sl + 1)) *dot = 0;
    size_t base_len = strlen(dst);
    for (int k = 2;; k++) {
      bool taken = false;
      for (int j = 0; j < i && !taken; j++) taken = !strcmp(rel + (size_t)j * VG_PRED_NAME, dst);
      taken = taken || is_an_input(out, dst, ".tiff", in, n) || is_an_input(out, dst, "_overlay.png", in, n);
      if (!taken) break;
      snprintf(dst + base_len, 16, "_%d", k);
    }
  }
  for (int i = 0; i < n; i++) free(abs[i]);
  free(abs);
  free(in);
  return st;
}

/* Predicts every image (one at a time), runs finalize over all of them, writes per image the
 * TIFF map at the image's size, the overlay PNG and the JSON line. */
static vg_status predict_images(vg_method *m, const char *const *images, int n, const char *out, bool overlay,
                                float thr) {
  int H = m->input_h, W = m->input_w;
  int64_t P = (int64_t)H * W;
  float *maps = malloc((size_t)(n * P) * sizeof *maps), *scores = malloc((size_t)n * sizeof *scores);
  vg_status st = maps && scores ? VG_OK : vg_fail(VG_ERR_NOMEM, "out of memory for %d maps", n);
  for (int i = 0; i < n && st == VG_OK; i++) {
    vg_image im;
    if ((st = vg_image_load(images[i], &im, NULL)) != VG_OK) break;
    vg_scope_begin();
    vg_tensor *x = vg_zeros(VG_F32, 4, (int64_t[]){1, 3, H, W});
    st = m->test_transform(&im, vg_f32(x), 3, H, W, m->transform_user);
    vg_image_free(&im);
    if (st == VG_OK) st = m->ops->predict(m, x, maps + i * P, scores + i);
    vg_scope_end();
    if (st != VG_OK) vg_fail_prefix("%s", images[i]);
  }
  if (st == VG_OK && m->ops->finalize) st = m->ops->finalize(m, maps, n, H, W, scores);
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; st == VG_OK && i < n * P; i++) {
    lo = maps[i] < lo ? maps[i] : lo;
    hi = maps[i] > hi ? maps[i] : hi;
  }
  char *names = st == VG_OK ? malloc((size_t)n * VG_PRED_NAME) : NULL;
  if (st == VG_OK) st = names ? output_names(images, n, out, names) : vg_fail(VG_ERR_NOMEM, "out of memory");
  for (int i = 0; i < n && st == VG_OK; i++) {
    const char *stem = names + (size_t)i * VG_PRED_NAME;
    char path[2200], opath[2200];
    if ((size_t)snprintf(path, sizeof path, "%s/%s.tiff", out, stem) >= sizeof path ||
        (size_t)snprintf(opath, sizeof opath, "%s/%s_overlay.png", out, stem) >= sizeof opath) {
      st = vg_fail(VG_ERR_ARG, "%s: output path too long (--out %zu bytes + name %zu bytes)", images[i], strlen(out),
                   strlen(stem));
      break;
    }
    if (strchr(stem, '/') && (st = vg_mkdir_parents(path)) != VG_OK) break;   /* mirror the images' subfolders under --out */
    vg_image im = {0}, ov = {0};
    float *big = NULL;
    st = vg_image_load(images[i], &im, NULL);
    if (st == VG_OK) st = (big = malloc((size_t)im.w * im.h * sizeof *big)) ? VG_OK : vg_fail(VG_ERR_NOMEM, "out of memory");
    if (st == VG_OK) {
      vg_report_resize_map(maps + (int64_t)i * P, H, W, big, im.h, im.w);
      st = vg_tiff_write_f32(path, big, im.w, im.h);
    }
    if (st == VG_OK && overlay) {
      st = vg_report_overlay(&im, maps + (int64_t)i * P, H, W, lo, hi, NULL, thr, 0, &ov);
      if (st == VG_OK) st = vg_png_save(opath, &ov);
      vg_image_free(&ov);
    }
    free(big);
    vg_image_free(&im);
    if (st != VG_OK) break;
    vg_json_writer w;
    vg_jw_init(&w, 0);
    vg_jw_begin_object(&w);
    vg_jw_key(&w, "image"); vg_jw_string(&w, images[i]);
    /* a NaN/Inf score (NaN weights in a checkpoint, say) has no JSON form: null and a
     * warning, never a silent "{}" line */
    vg_jw_key(&w, "score");
    if (isfinite(scores[i])) vg_jw_double(&w, scores[i]);
    else {
      vg_jw_null(&w);
      fprintf(stderr, "vigil predict: %s: the score is %g (non-finite: NaN/Inf in the model's weights or input?)\n",
              images[i], scores[i]);
    }
    vg_jw_key(&w, "map"); vg_jw_string(&w, path);
    if (overlay) { vg_jw_key(&w, "overlay"); vg_jw_string(&w, opath); }
    vg_jw_end_object(&w);
    char *line = vg_jw_finish(&w, NULL);
    if (!line) { st = vg_last_status() != VG_OK ? vg_last_status() : VG_ERR_NOMEM; break; }
    printf("%s\n", line);
    free(line);
  }
  free(names);
  free(maps);
  free(scores);
  return st;
}

int vg_cli_predict(int argc, char **argv) {
  predict_opts o = {.threshold = NAN};
  const char **images = calloc((size_t)argc + 1, sizeof *images);
  int n_img = 0;
  int prc = images ? vg_opts_parse(&vg_cmd_predict, argc, argv, &o, images, &n_img) : 1;
  if (prc >= 0) { free(images); vg_run_ov_free(&o.ov); return prc; }
  const char *run = o.run, *out = o.out, *from = o.from, *model = o.model, *weights = o.weights, *device = o.device;
  const char *dtype = o.dtype;
  int threads = o.threads;
  bool overlay = !o.no_overlay;
  float thr = (float)o.threshold;
  vg_run_overrides ov = o.ov;   /* owned from here */
  const char *why = !out ? "--out is required" : n_img == 0 ? "no images given"
                    : (!run == !from) ? "give exactly one of --run and --from-anomalib"
                    : (from && !model) ? "--from-anomalib needs --model METHOD"
                    : (run && (model || weights || ov.n)) ? "--model/--backbone/--input-size/--set/--weights go with --from-anomalib" : NULL;
  if (why) { fprintf(stderr, "vigil predict: %s\n", why); free(images); vg_run_ov_free(&ov); return predict_usage(stderr); }
  vg_cli_apply_threads("predict", threads);
  vg_run_config cfg = {0};
  vg_method *m = NULL;
  vg_status st;
  if (run) {
    st = vg_run_config_read(run, &cfg);
    if (st == VG_OK) st = vg_run_open_method(run, &cfg, true, &m);
  } else {
    st = open_anomalib(model, from, weights, &ov, &m);
  }
  bool refused = st == VG_ERR_ARG;   /* config.json or the method config out of range: exit 2 */
  if (st == VG_OK) st = vg_cli_method_to(m, device, dtype);
  if (st == VG_OK) st = vg_mkdir_p(out);
  if (st == VG_OK) st = predict_images(m, images, n_img, out, overlay, thr);
  if (st == VG_OK && from) st = write_anomalib_config(out, model, from, m);
  if (st != VG_OK) fprintf(stderr, "vigil predict: %s\n", vg_last_error());
  free(images);
  vg_run_ov_free(&ov);
  vg_method_free(m);
  vg_run_config_free(&cfg);
  return st == VG_OK ? 0 : refused ? 2 : 1;
}
