/* registry.c — every backbone behind one seam (backbones.h, "every backbone, one seam"). */
#include "nn/backbones/backbones.h"
#include <stdio.h>
#include <string.h>

/* the families' descriptors (one per model name); add a model here */
extern const vg_backbone_desc vg_backbone_resnet18, vg_backbone_resnet50, vg_backbone_wide_resnet50_2,
    vg_backbone_wide_resnet101_2;
extern const vg_backbone_desc vg_backbone_resnext101_32x8d, vg_backbone_densenet201;
extern const vg_backbone_desc vg_backbone_mobilenet_v3_large;
extern const vg_backbone_desc vg_backbone_deit_base_distilled_patch16_384, vg_backbone_cait_m48_448;

static const vg_backbone_desc *const ALL[] = {
    &vg_backbone_resnet18,
    &vg_backbone_resnet50,
    &vg_backbone_wide_resnet50_2,
    &vg_backbone_wide_resnet101_2,
    &vg_backbone_resnext101_32x8d,
    &vg_backbone_densenet201,
    &vg_backbone_mobilenet_v3_large,
    &vg_backbone_deit_base_distilled_patch16_384,
    &vg_backbone_cait_m48_448,
};
enum { NALL = (int)(sizeof ALL / sizeof ALL[0]) };

int vg_backbone_count(void) { return NALL; }
const vg_backbone_desc *vg_backbone_at(int i) { return i >= 0 && i < NALL ? ALL[i] : NULL; }

const vg_backbone_desc *vg_backbone_find(const char *name) {
  for (int i = 0; i < NALL; i++)
    if (name && !strcmp(name, ALL[i]->name)) return ALL[i];
  char known[1024];
  size_t o = 0;
  for (int i = 0; i < NALL && o < sizeof known; i++)
    o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", ALL[i]->name);
  vg_fail(VG_ERR_ARG, "unknown backbone '%s' (known: %s)", name ? name : "(null)", known);
  return NULL;
}

const vg_backbone_desc *vg_backbone_of(const vg_nn_module *m) {
  if (!m) return NULL;
  for (int i = 0; i < NALL; i++)
    if (ALL[i]->owns(ALL[i], m)) return ALL[i];
  return NULL;
}

vg_nn_module *vg_backbone_new(const char *name, int ntaps, const char *const *taps, uint64_t seed) {
  const vg_backbone_desc *d = vg_backbone_find(name);
  if (!d) return NULL;
  if (ntaps <= 0 || !taps) {
    vg_fail(VG_ERR_ARG, "backbone %s: no feature taps requested (it offers %s)", d->name, d->taps_help);
    return NULL;
  }
  for (int i = 0; i < ntaps; i++)
    if (!taps[i]) {
      vg_fail(VG_ERR_ARG, "backbone %s: tap %d is NULL", d->name, i);
      return NULL;
    }
  return d->create(d, ntaps, taps, seed);
}

#define OF_OR(m, fail)                                                                              \
  const vg_backbone_desc *d = vg_backbone_of(m);                                                    \
  if (!d) return fail

vg_status vg_backbone_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out) {
  OF_OR(m, vg_fail(VG_ERR_ARG, "vg_backbone_features: not a model from vg_backbone_new"));
  if (!x || !out) return vg_fail(VG_ERR_ARG, "vg_backbone_features(%s): NULL input or output", d->name);
  return d->features(m, x, out);
}
int vg_backbone_num_features(const vg_nn_module *m) {
  OF_OR(m, 0);
  return d->num_features(m);
}
int64_t vg_backbone_feature_channels(const vg_nn_module *m, int i) {
  OF_OR(m, 0);
  return d->feature_channels(m, i);
}
int vg_backbone_feature_stride(const vg_nn_module *m, int i) {
  OF_OR(m, 0);
  return d->feature_stride(m, i);
}
const char *vg_backbone_feature_name(const vg_nn_module *m, int i) {
  OF_OR(m, NULL);
  return d->feature_name(m, i);
}
vg_status vg_backbone_init_philox(vg_nn_module *m, uint64_t base_seed) {
  OF_OR(m, vg_fail(VG_ERR_ARG, "vg_backbone_init_philox: not a model from vg_backbone_new"));
  if (!d->init_philox) return vg_fail(VG_ERR_ARG, "backbone %s has no test-weight initializer", d->name);
  return d->init_philox(m, base_seed);
}
