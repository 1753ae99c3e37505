/* baseline.h — "meanimage": the trivial reference method. fit_begin computes the
 * per-pixel mean and standard deviation of the training images (at the input size, in
 * [0,1]); the anomaly map of an image is the per-pixel standardised distance
 *   map(y,x) = sqrt( mean_c ((x_c - mu_c) / (sd_c + sd_floor))^2 )
 * and the image score its maximum. No training steps. It exists to check the pipeline
 * (loader -> method -> maps -> metrics/report) and as the floor any method must beat.
 *
 *   vg_method *m;
 *   vg_meanimage_new(NULL, &m);          // or vg_method_create("meanimage", cfg, &m)
 *   m->ops->fit_begin(m, &train);
 *   m->ops->predict(m, images, maps, scores);
 *   vg_method_free(m);
 *
 * Config keys: the table MI_CONFIG in baseline.c (`vigil train meanimage --help`). */
#ifndef VG_METHODS_BASELINE_H
#define VG_METHODS_BASELINE_H
#include "methods/method.h"
vg_status vg_meanimage_new(const vg_json *cfg, vg_method **out);
#endif
