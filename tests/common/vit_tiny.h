/* vit_tiny.h — the REDUCED ViT configs of tools/gen_vit_fixtures.py (timm.create_model(<published>,
 * **overrides)): 64 px, width 48, depth 4, 3 (DeiT) / 4 (CaiT) heads, 10 classes. */
#ifndef VG_TEST_VIT_TINY_H
#define VG_TEST_VIT_TINY_H
#include "nn/backbones/vit.h"

static inline vg_vit_config vg_test_vit_tiny(vg_vit_arch arch) {
  vg_vit_config c;
  vg_vit_config_of(arch == VG_VIT_DEIT ? "deit_base_distilled_patch16_384" : "cait_m48_448", &c);
  c.img_size = 64;
  c.embed_dim = 48;
  c.depth = 4;
  c.num_heads = arch == VG_VIT_DEIT ? 3 : 4;
  c.num_classes = 10;
  return c;
}
#endif
