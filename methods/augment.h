/* methods/augment.h — training-time geometric augmentations of decoded, normalised samples
 * (N x C x H x W host floats), for methods whose papers augment their training images:
 * FastFlow's Table 8 (random horizontal flip, vertical flip, rotation) and CFLOW-AD's
 * official ±5° RandomRotation.
 *
 * Randomness is keyed on (seed, step, row, draw): a draw depends on nothing else, so a
 * resumed run (same step) makes the same draws and worker counts never matter.
 *
 *   vg_aug_cfg a = {.hflip_p = 0.5, .vflip_p = 0.3, .rotate_p = 0.7, .rotate_deg = 15};
 *   vg_aug_apply(&a, seed, step, x, n, c, h, w, fill);   // in place, rows drawn independently
 *
 * Rotation: torchvision's RandomRotation(deg) on a PIL image: angle ~ U[-deg, deg]
 * (counter-clockwise), PIL Image.rotate(angle, NEAREST, expand=False, centre (w/2, h/2)),
 * pixels from outside filled with fill[c] (the normalised value of black: ImageNet
 * (0 - mean) / std, torchvision's fill 0 before Normalize). Nearest sampling copies sample
 * values, so rotating the normalised floats equals rotating the 8-bit image then
 * normalising. Input coordinates follow Pillow's affine NEAREST exactly (its inverse matrix
 * rounded to 15 digits, 16.16 fixed point stepped from the first pixel centre; transposes
 * for 90/180/270): bit-identical to Pillow on tests/test_augment.c's fixture. */
#ifndef VG_METHODS_AUGMENT_H
#define VG_METHODS_AUGMENT_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
  double hflip_p, vflip_p;     /* probability of each flip (0 = off) */
  double rotate_p;             /* probability of a rotation (0 = off) */
  double rotate_deg;           /* angle ~ U[-rotate_deg, rotate_deg] (0 = off) */
} vg_aug_cfg;

/* U[0,1) for draw k of row `row` at step `step` under seed. */
double vg_aug_uniform(uint64_t seed, int64_t step, int64_t row, int k);
bool vg_aug_active(const vg_aug_cfg *a);
/* One CHW sample, in place. */
void vg_aug_hflip(float *chw, int c, int h, int w);
void vg_aug_vflip(float *chw, int c, int h, int w);
/* dst = src rotated counter-clockwise by angle_deg (see above); dst != src. */
void vg_aug_rotate_nearest(const float *src, float *dst, int c, int h, int w, double angle_deg, const float *fill);
/* Augments the n samples of x in place: per row, hflip (draw 0), vflip (draw 1), then
 * rotation (draw 2: whether, draw 3: the angle). scratch: c*h*w floats. */
void vg_aug_apply(const vg_aug_cfg *a, uint64_t seed, int64_t step, float *x, int64_t n, int c, int h, int w,
                  const float *fill, float *scratch);
/* ImageNet-normalised black: (0 - mean[c]) / std[c] in float, as torchvision's Normalize. */
void vg_aug_imagenet_black(float fill[3]);
#endif
