/* synth.h — a deterministic synthetic anomaly benchmark in the MVTec AD / MVTec LOCO
 * layouts (procedurally drawn RGB images + pixel-exact ground-truth masks).
 *
 *   vg_synth_opts o = { .out = "/tmp/vigil-synth" };        // everything else: defaults
 *   bool made;
 *   if (vg_synth_generate(&o, &made) != VG_OK) puts(vg_last_error());
 *   vg_ds_mvtec("/tmp/vigil-synth", "woven", NULL, &ds);     // MVTec AD style categories
 *   vg_ds_loco("/tmp/vigil-synth", "assembly", NULL, &ds);   // the LOCO style one
 *
 * Categories (vg_synth_categories):
 *   textures  woven, grained, grid, noise           MVTec AD layout
 *   objects   shapes, screws                        MVTec AD layout
 *   assembly  a tray with a fixed set of parts      MVTec LOCO layout
 * MVTec AD layout: <out>/<cat>/{train/good/NNN.png, test/good/NNN.png,
 *   test/<defect>/NNN.png, ground_truth/<defect>/NNN_mask.png (grey, 0/255)}.
 * MVTec LOCO layout: <out>/<cat>/{train/good, validation/good, test/good,
 *   test/logical_anomalies, test/structural_anomalies, ground_truth/<type>/NNN/KKK.png
 *   (one grey mask per defect instance, defect pixels = the defect's pixel_value),
 *   defects_config.json (pixel values and sPRO saturation thresholds)}.
 * Test split: the first (n_test + 1) / 2 test samples are good, the rest take the
 * category's defect types round-robin (vg_synth_test_sample).
 *
 * Determinism: every pixel comes from integer arithmetic seeded by (seed, category,
 * split, index), so the same options give byte-identical files on every machine. The
 * normal content of a sample and its defect are drawn from separate streams: rendering
 * sample i with and without its defect differs exactly inside the defect's mask.
 *
 * Idempotence: <out>/synth.json records the options and VG_SYNTH_VERSION. When it
 * matches, vg_synth_generate does nothing. Otherwise everything is generated into
 * <out>.tmp-XXXXXX (files fsynced) and renamed into place; an existing <out> is replaced
 * only when it is empty or itself a synth dataset (holds synth.json). */
#ifndef VG_SYNTH_H
#define VG_SYNTH_H
#include <stdbool.h>
#include <stdint.h>
#include "base/status.h"

#define VG_SYNTH_VERSION 1
#define VG_SYNTH_MIN_SIZE 32
#define VG_SYNTH_MAX_SIZE 1024

typedef struct {
  const char *out;          /* required: dataset root */
  const char *categories;   /* comma-separated names; NULL or "" = all */
  uint64_t seed;            /* default 0 */
  int size;                 /* image side; 0 = 256; VG_SYNTH_MIN_SIZE..VG_SYNTH_MAX_SIZE */
  int n_train;              /* 0 = 60 */
  int n_test;               /* 0 = 40 (about half good) */
  int n_val;                /* LOCO-style validation/good; 0 = 10 */
  int threads;              /* 0 = online CPUs (at most 8) */
  bool force;               /* regenerate even when the manifest matches */
} vg_synth_opts;

/* Generates the dataset (see above). *generated (may be NULL) = false when an up-to-date
 * dataset was already there. Errors: VG_ERR_ARG (unknown category, bad size/count),
 * VG_ERR_IO (out dir not writable, out exists and is not a synth dataset). */
vg_status vg_synth_generate(const vg_synth_opts *o, bool *generated);

typedef enum { VG_SYNTH_TRAIN = 0, VG_SYNTH_VAL = 1, VG_SYNTH_TEST = 2 } vg_synth_set;

typedef struct {
  const char *name;
  bool loco;                      /* MVTec LOCO layout */
  int n_defects;
  const char *const *defects;     /* defect type names */
  const bool *logical;            /* LOCO: logical (true) or structural; NULL otherwise */
  const int *pixel_value;         /* LOCO: mask value per defect type; NULL otherwise */
} vg_synth_category;

int vg_synth_category_count(void);
const vg_synth_category *vg_synth_category_at(int i);
const vg_synth_category *vg_synth_category_find(const char *name);   /* NULL if unknown */

/* Test sample i of n_test: *defect = -1 (good) or a defect index; *number = the file
 * number NNN inside its folder (test/good, test/<defect> or, for LOCO,
 * test/{logical,structural}_anomalies). */
void vg_synth_test_sample(const vg_synth_category *c, int n_test, int i, int *defect, int *number);

/* Renders one sample: rgb = size*size*3 bytes (HWC); inst (may be NULL) = size*size
 * instance labels, 0 = no defect, k = defect instance k (1..*n_inst). defect = -1 draws
 * the normal sample. Same arguments -> same bytes. */
vg_status vg_synth_render(const vg_synth_category *c, uint64_t seed, int size, vg_synth_set set, int index,
                          int defect, uint8_t *rgb, uint8_t *inst, int *n_inst);
#endif
