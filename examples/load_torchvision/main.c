/* load_torchvision — torchvision's ResNet-18 weights (a .pth file, read by Vigil's own
 * restricted unpickler: no Python) into Vigil's ResNet-18, then its feature maps.
 *   ./load_torchvision resnet18-f37072fd.pth [IMAGE]
 * Without a weights file it says SKIP and exits 0. IMAGE (PNG/JPEG/BMP/TIFF/PNM): its
 * features at 224 x 224 with ImageNet normalisation; default: a fixed random image. */
#include <stdio.h>
#include <vigil.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    printf("SKIP load_torchvision: no weights file given (usage: %s resnet18-f37072fd.pth [IMAGE])\n", argv[0]);
    return 0;
  }
  unsigned mask = VG_RESNET_LAYER1 | VG_RESNET_LAYER2 | VG_RESNET_LAYER3 | VG_RESNET_LAYER4;
  vg_nn_module *net = vg_resnet_new("resnet18", mask, 0);
  if (vg_nn_load_state_pth(net, argv[1], true) != VG_OK) {   /* strict: every name and shape */
    fprintf(stderr, "load_torchvision: %s\n", vg_last_error());
    vg_nn_free(net);
    return 1;
  }
  printf("loaded %s: %lld parameters\n", argv[1], (long long)vg_nn_num_params(net, false));
  vg_scope_begin();
  vg_tensor *x = vg_randn(4, (int64_t[]){1, 3, 224, 224}, 0);
  if (argc > 2) {
    vg_image img;
    if (vg_image_load(argv[2], &img, NULL) != VG_OK) { fprintf(stderr, "load_torchvision: %s\n", vg_last_error()); return 1; }
    vg_imagenet_transform(&img, vg_f32(x), 3, 224, 224, NULL);   /* resize + ImageNet normalisation */
    vg_image_free(&img);
  }
  vg_tensor *f[4];
  if (vg_resnet_features(net, x, f) != VG_OK) { fprintf(stderr, "load_torchvision: %s\n", vg_last_error()); return 1; }
  for (int i = 0; i < 4; i++)
    printf("  %s: %lld x %lld x %lld, mean %.5f\n", vg_resnet_feature_name(net, i), (long long)f[i]->shape[1],
           (long long)f[i]->shape[2], (long long)f[i]->shape[3], vg_item(vg_mean_all(f[i])));
  vg_scope_end();
  vg_nn_free(net);
  return 0;
}
