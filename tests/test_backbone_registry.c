/* test_backbone_registry — the one seam every method builds its encoder through
 * (nn/backbones/backbones.h, "every backbone, one seam"): names, taps, errors, and that a model
 * made through the registry is the family's own model (same weights, same features). */
#include "nn/backbones/backbones.h"
#include "vgtest.h"

static bool same_tensor(const vg_tensor *a, const vg_tensor *b) {
  if (!a || !b || a->ndim != b->ndim || vg_numel(a) != vg_numel(b)) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return false;
  return !memcmp(vg_data(a), vg_data(b), (size_t)vg_numel(a) * vg_dtype_size(a->dtype));
}

int main(void) {
  /* every listed model: findable by name, distinct names, complete descriptor */
  int n = vg_backbone_count();
  VG_CHECK(n >= 4, "registry lists %d backbones", n);
  bool complete = true, unique = true, found = true;
  for (int i = 0; i < n; i++) {
    const vg_backbone_desc *d = vg_backbone_at(i);
    complete = complete && d && d->name && d->family && d->taps_help && d->create && d->owns && d->features &&
               d->num_features && d->feature_channels && d->feature_stride && d->feature_name && d->num_params > 0;
    found = found && d && vg_backbone_find(d->name) == d;
    for (int j = 0; j < i; j++) unique = unique && d && strcmp(d->name, vg_backbone_at(j)->name);
  }
  VG_CHECK(complete, "every descriptor names its family, taps, hooks and parameter count");
  VG_CHECK(found && unique, "every name is found and unique");
  VG_CHECK(!vg_backbone_at(-1) && !vg_backbone_at(n), "out-of-range index gives NULL");

  /* errors name the problem */
  VG_CHECK(!vg_backbone_find("resnet19") && strstr(vg_last_error(), "resnet19") &&
               strstr(vg_last_error(), "wide_resnet50_2"),
           "unknown name: the error names it and lists the known ones (%s)", vg_last_error());
  VG_CHECK(!vg_backbone_find(NULL), "NULL name refused");
  const char *bad[] = {"layer9"};
  VG_CHECK(!vg_backbone_new("resnet18", 1, bad, 0) && strstr(vg_last_error(), "layer9"),
           "unknown tap named (%s)", vg_last_error());
  const char *rev[] = {"layer3", "layer1"};
  VG_CHECK(!vg_backbone_new("resnet18", 2, rev, 0) && strstr(vg_last_error(), "order"),
           "taps out of forward order refused (%s)", vg_last_error());
  const char *dup[] = {"layer2", "layer2"};
  VG_CHECK(!vg_backbone_new("resnet18", 2, dup, 0), "a tap twice refused");
  VG_CHECK(!vg_backbone_new("resnet18", 0, bad, 0) && strstr(vg_last_error(), "layer1"),
           "no taps refused, the offered ones listed (%s)", vg_last_error());
  const char *nul[] = {NULL};
  VG_CHECK(!vg_backbone_new("resnet18", 1, nul, 0), "a NULL tap refused");

  /* through the registry == the family's own constructor */
  const char *taps[] = {"stem", "layer2", "layer3"};
  vg_nn_module *a = vg_backbone_new("resnet18", 3, taps, 5);
  vg_nn_module *b = vg_resnet_new("resnet18", VG_RESNET_STEM | VG_RESNET_LAYER2 | VG_RESNET_LAYER3, 5);
  VG_CHECK(a && b && vg_backbone_of(a) == vg_backbone_find("resnet18") && vg_backbone_of(b) == vg_backbone_of(a),
           "vg_backbone_of finds the descriptor of both");
  vg_nn_module *w = vg_backbone_new("wide_resnet50_2", 1, (const char *[]){"layer1"}, 5);
  VG_CHECK(w && vg_backbone_of(w) == vg_backbone_find("wide_resnet50_2"), "each model keeps its own descriptor");
  VG_CHECK(!vg_backbone_of(NULL) && vg_backbone_num_features(NULL) == 0, "NULL model: no descriptor");
  VG_CHECK(vg_backbone_num_features(a) == 3 && vg_backbone_feature_channels(a, 0) == 64 &&
               vg_backbone_feature_channels(a, 2) == 256 && vg_backbone_feature_stride(a, 0) == 2 &&
               vg_backbone_feature_stride(a, 1) == 8 && vg_backbone_feature_stride(a, 2) == 16 &&
               !strcmp(vg_backbone_feature_name(a, 1), "layer2"),
           "taps: count, channels, strides, names");
  VG_CHECK(vg_backbone_init_philox(a, 11) == VG_OK && vg_resnet_init_philox(b, 11) == VG_OK, "test weights");
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){1, 3, 32, 48}, 3);
  vg_tensor *fa[3] = {0}, *fb[3] = {0};
  VG_CHECK(vg_backbone_features(a, x, fa) == VG_OK && vg_resnet_features(b, x, fb) == VG_OK, "features run");
  bool same = true, shapes = true;
  for (int i = 0; i < 3; i++) {
    same = same && same_tensor(fa[i], fb[i]);
    int s = vg_backbone_feature_stride(a, i);
    shapes = shapes && fa[i] && fa[i]->shape[1] == vg_backbone_feature_channels(a, i) &&
             fa[i]->shape[2] == 32 / s && fa[i]->shape[3] == 48 / s;
  }
  VG_CHECK(same, "registry model's features are bit-identical to vg_resnet_new's");
  VG_CHECK(shapes, "feature shapes follow the declared channels and strides");
  VG_CHECK(vg_backbone_features(a, x, NULL) != VG_OK, "NULL output array refused");
  vg_nn_module *lin = vg_nn_linear_new(3, 3, true, 0);
  VG_CHECK(lin && !vg_backbone_of(lin) && vg_backbone_features(lin, x, fa) != VG_OK,
           "a module not made by the registry is refused");
  vg_scope_end();
  vg_nn_free(lin);
  vg_nn_free(a);
  vg_nn_free(b);
  vg_nn_free(w);
  return vg_test_finish();
}
