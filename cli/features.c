/* features.c — `vigil features`: backbone feature maps of a batch of images.
 *
 *   vigil features --backbone resnet18 [--weights resnet18-f37072fd.pth] --layers 1,2,3
 *                  --input x.safetensors --out feats.safetensors
 *
 * The input file holds one N x 3 x H x W float tensor (its first tensor, or the one named
 * by --input-name); the output holds one tensor per requested layer, named after it
 * ("layer1", ...). Without --weights the backbone has deterministic random init. */
#include "cli/args.h"
#include "cli/opts.h"
#include "cli/cli.h"
#include "nn/backbones/backbones.h"
#include "nn/safetensors.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* `vigil features`'s options (the table drives the parser and --help: cli/opts.h) */
typedef struct {
  const char *backbone, *weights, *layers, *input, *input_name, *out;
  uint64_t seed;
} features_opts;

#define T features_opts
static const vg_opt features_table[] = {
  {.name = "--backbone", .kind = VG_OPT_STR, .arg = "B", .off = VG_OPT_AT(T, backbone),
   .help = "resnet18 | resnet50 | wide_resnet50_2 | wide_resnet101_2 (required)"},
  {.name = "--weights", .kind = VG_OPT_STR, .arg = "FILE", .off = VG_OPT_AT(T, weights),
   .help = "torchvision weights (.pth or .safetensors); without: deterministic random init"},
  {.name = "--layers", .kind = VG_OPT_STR, .arg = "L,L", .off = VG_OPT_AT(T, layers),
   .help = "feature maps to write: stem and 1..4", .def = "1,2,3"},
  {.name = "--input", .kind = VG_OPT_STR, .arg = "X", .off = VG_OPT_AT(T, input),
   .help = "a .safetensors file holding one N x 3 x H x W float tensor (required)"},
  {.name = "--input-name", .kind = VG_OPT_STR, .arg = "NAME", .off = VG_OPT_AT(T, input_name),
   .help = "the input tensor's name (default: the file's first tensor)"},
  {.name = "--out", .kind = VG_OPT_STR, .arg = "Y", .off = VG_OPT_AT(T, out),
   .help = "output .safetensors: one tensor per layer, named after it (\"layer1\", ...) (required)"},
  VG_OPT_SEED(T, seed, UINT64_MAX, "seed of the random init without --weights (default 0)"),
  {0}};
#undef T

const vg_cmd_spec vg_cmd_features = {
  .name = "features", .opts = features_table,
  .usage = "usage: vigil features --backbone resnet18|resnet50|wide_resnet50_2|wide_resnet101_2\n"
           "         [--weights FILE.pth|FILE.safetensors] --layers 1,2,3 (stem and 1..4)\n"
           "         --input X.safetensors [--input-name NAME] --out FEATS.safetensors [--seed N]\n"};

static int usage(FILE *f) { return vg_opts_usage(&vg_cmd_features, f); }

int vg_cli_features(int argc, char **argv) {
  features_opts o = {.layers = "1,2,3"};
  int prc = vg_opts_parse(&vg_cmd_features, argc, argv, &o, NULL, NULL);
  if (prc >= 0) return prc;
  const char *backbone = o.backbone, *weights = o.weights, *layers = o.layers, *input = o.input;
  const char *input_name = o.input_name, *out = o.out;
  uint64_t seed = o.seed;
  if (!backbone || !input || !out) { fprintf(stderr, "vigil features: --backbone, --input and --out are required\n"); return usage(stderr); }
  unsigned mask = 0;
  char buf[64];
  snprintf(buf, sizeof buf, "%s", layers);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    if (!strcmp(tok, "stem") || !strcmp(tok, "0")) mask |= VG_RESNET_STEM;
    else if (tok[0] >= '1' && tok[0] <= '4' && !tok[1]) mask |= 1u << (tok[0] - '0');
    else {
      fprintf(stderr, "vigil features: bad layer '%s' (use stem or 1..4)\n", tok);
      return 2;
    }
  }
  vg_nn_module *net = vg_resnet_new(backbone, mask, seed);
  if (!net) {
    fprintf(stderr, "vigil features: %s\n", vg_last_error());
    return 1;
  }
  int rc = 1;
  vg_st_file *f = NULL;
  vg_tensor *x = NULL;
  if (weights) {
    if (vg_nn_load_state_file(net, weights, true) != VG_OK) {
      fprintf(stderr, "vigil features: %s\n", vg_last_error());
      goto done;
    }
  } else {
    fprintf(stderr, "vigil features: random init (seed %llu; no --weights given)\n", (unsigned long long)seed);
  }
  if (vg_st_open(input, &f) != VG_OK) {
    fprintf(stderr, "vigil features: %s\n", vg_last_error());
    goto done;
  }
  if (!input_name) {
    if (vg_st_count(f) < 1) {
      fprintf(stderr, "vigil features: %s holds no tensor\n", input);
      goto done;
    }
    input_name = vg_st_name(f, 0);
  }
  if (vg_st_get(f, input_name, VG_F32, &x) != VG_OK) {
    fprintf(stderr, "vigil features: %s\n", vg_last_error());
    goto done;
  }
  if (x->ndim != 4 || x->shape[1] != 3) {
    char s[128];
    fprintf(stderr, "vigil features: %s:%s is %s; want N x 3 x H x W\n", input, input_name, vg_shape_str(x, s, sizeof s));
    goto done;
  }
  int n = vg_resnet_num_features(net);
  vg_tensor *feats[8];
  const char *names[8];
  vg_scope_begin();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  vg_status st = vg_resnet_features(net, x, feats);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (st == VG_OK) {
    for (int i = 0; i < n; i++) names[i] = vg_resnet_feature_name(net, i);
    st = vg_st_save(out, n, names, feats, NULL);
  }
  if (st != VG_OK) fprintf(stderr, "vigil features: %s\n", vg_last_error());
  else {
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
    printf("%s: %d feature maps of %lld images in %.1f ms -> %s\n", backbone, n, (long long)x->shape[0], ms, out);
    for (int i = 0; i < n; i++) {
      char s[128];
      printf("  %-7s %s\n", names[i], vg_shape_str(feats[i], s, sizeof s));
    }
    rc = 0;
  }
  vg_scope_end();
done:
  vg_tensor_free(x);
  if (f) vg_st_close(f);
  vg_nn_free(net);
  return rc;
}
