/* flow_weights.c — see flow_weights.h. */
#include "tests/common/flow_weights.h"
#include <math.h>
#include <string.h>

void vg_test_flow_weights(const char *name, vg_tensor *t) {
  const char *leaf = strrchr(name, '.');
  leaf = leaf ? leaf + 1 : name;
  int h = 0;
  for (const char *p = name; *p; p++) h += (unsigned char)*p;
  h %= 97;
  int64_t n = vg_numel(t);
  bool add = !strcmp(leaf, "global_scale");
  double s;
  if (add) s = 0.3;
  else if (!strcmp(leaf, "vk_householder")) s = 0.2;
  else if (t->ndim >= 2) s = 1.0 / sqrt((double)n / (double)t->shape[0]);
  else s = 0.1;
  float *p = vg_f32(t);
  for (int64_t i = 0; i < n; i++) {
    double v = s * sin(0.7 * (double)i + 1.3 * h + 0.1);
    p[i] = (float)(add ? (double)p[i] + v : v);
  }
}
