/* distill.c — `vigil distill`: EfficientAD teacher pretraining
 * (methods/efficientad/distill.h) on a folder of images (e.g. ImageNet train).
 *
 *   vigil distill --weights wide_resnet101_2-32ee1156.pth --images ILSVRC/train --model s \
 *                 --out teacher_small.safetensors
 *
 * SIGINT/SIGTERM: the current iteration finishes, a checkpoint is written and the
 * program stops; --resume continues bit-identically. */
#include "cli/args.h"
#include "cli/cli.h"
#include "methods/efficientad/distill.h"
#include "methods/method.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f) {
  fprintf(f,
    "usage: vigil distill --images DIR --out TEACHER.safetensors [options]\n"
    "Pretrains an EfficientAD teacher (PDN) by distilling PatchCore-style features of a\n"
    "pretrained extractor (EfficientAD Algorithm 3, nelson1425 pretraining.py).\n"
    "  --images DIR        distillation images: every image under DIR, recursively (e.g. ImageNet train)\n"
    "  --out FILE          teacher file: the PDN state dict (.safetensors, EfficientAD teacher weights);\n"
    "                      the checkpoint is FILE.ckpt.safetensors\n"
    "  --backbone NAME     target extractor (default wide_resnet101_2; also resnet18, resnet50, wide_resnet50_2)\n"
    "  --weights FILE      torchvision weights of the extractor (.pth or .safetensors), e.g.\n"
    "                      wide_resnet101_2-32ee1156.pth (IMAGENET1K_V1); without: random init (loud warning,\n"
    "                      the teacher is then not comparable to the paper's)\n"
    "  --model s|m         PDN size: s = EfficientAD-S, m = EfficientAD-M (default s)\n"
    "  --out-channels N    teacher channels (default 384)\n"
    "  --iters N           training iterations (default 60000)\n"
    "  --batch N           images per iteration (default 16)\n"
    "  --stats-images N    images for the target mean/std (default 10000, capped at the image count)\n"
    "  --save-every N      checkpoint every N iterations (default 1000; 0 = only at the end)\n"
    "  --view N            PDN input size; the extractor sees 2N x 2N (default 256, multiple of 8)\n"
    "  --lr X              Adam learning rate (default 1e-4)\n"
    "  --weight-decay X    Adam L2 weight decay (default 1e-5)\n"
    "  --p-grey X          RandomGrayscale probability, shared by both views (default 0.1)\n"
    "  --seed N            seed of the image order, grey decisions and PDN init (default 42)\n"
    "  --workers N         image decoding threads (default 2)\n"
    "  --threads N         compute threads (default: all cores)\n"
    "  --device cpu|cuda   where the extractor, PDN and Adam run (default cpu; cuda needs a\n"
    "                      make CUDA=1 build and a GPU); checkpoints resume on either\n"
    "  --log-every N       progress line every N iterations (default 100)\n"
    "  --resume            continue from FILE.ckpt.safetensors (same settings; bit-identical result)\n"
    "  --quiet             no progress lines\n"
    "Ctrl-C writes a checkpoint and stops; rerun with --resume.\n");
  return f == stdout ? 0 : 2;
}

static volatile sig_atomic_t g_stop;
static void on_signal(int s) { (void)s; g_stop = 1; }

int vg_cli_distill(int argc, char **argv) {
  vg_effad_distill_opts o;
  vg_effad_distill_defaults(&o);
  const char *images = NULL;
  int threads = 0, iv = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout);
    if (!strcmp(a, "--resume")) { o.resume = true; continue; }
    if (!strcmp(a, "--quiet")) { o.quiet = true; continue; }
    static const char *const known[] = {"--images", "--out", "--backbone", "--weights", "--model", "--out-channels",
                                        "--iters", "--batch", "--stats-images", "--save-every", "--log-every", "--view",
                                        "--workers", "--threads", "--seed", "--lr", "--weight-decay", "--p-grey",
                                        "--device", NULL};
    bool is_known = false;
    for (int k = 0; known[k]; k++) is_known |= !strcmp(a, known[k]);
    if (!is_known) {
      fprintf(stderr, "vigil distill: unknown option %s\n", a);
      return usage(stderr);
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "vigil distill: %s needs a value\n", a);
      return usage(stderr);
    }
    const char *v = argv[++i];
    bool ok = true;
    if (!strcmp(a, "--images")) images = v;
    else if (!strcmp(a, "--out")) o.out = v;
    else if (!strcmp(a, "--backbone")) o.backbone = v;
    else if (!strcmp(a, "--weights")) o.weights = v;
    else if (!strcmp(a, "--model")) {
      if (!strcmp(v, "s") || !strcmp(v, "S") || !strcmp(v, "small")) o.size = VG_EFFAD_S;
      else if (!strcmp(v, "m") || !strcmp(v, "M") || !strcmp(v, "medium")) o.size = VG_EFFAD_M;
      else ok = false;
    }
    else if (!strcmp(a, "--out-channels")) { if (!vg_arg_i64("distill", a, v, 1, 4096, &o.out_channels)) return 2; }
    else if (!strcmp(a, "--iters")) { if (!vg_arg_i64("distill", a, v, 1, VG_LIM_STEPS_MAX, &o.iters)) return 2; }
    else if (!strcmp(a, "--batch")) { if (!vg_arg_i64("distill", a, v, 1, VG_LIM_BATCH_MAX, &o.batch)) return 2; }
    else if (!strcmp(a, "--stats-images")) { if (!vg_arg_i64("distill", a, v, 1, VG_LIM_STEPS_MAX, &o.stats_images)) return 2; }
    else if (!strcmp(a, "--save-every")) { if (!vg_arg_i64("distill", a, v, 0, VG_LIM_STEPS_MAX, &o.save_every)) return 2; }
    else if (!strcmp(a, "--log-every")) { if (!vg_arg_i64("distill", a, v, 1, VG_LIM_STEPS_MAX, &o.log_every)) return 2; }
    else if (!strcmp(a, "--view")) { if (!vg_arg_int("distill", a, v, 16, 2048, &iv)) return 2;
      if (iv % 8) { fprintf(stderr, "vigil distill: --view: '%s' is not a multiple of 8: want a multiple of 8 in [16, 2048]\n", v); return 2; }
      o.view = iv;
    }
    else if (!strcmp(a, "--workers")) { if (!vg_arg_int("distill", a, v, 1, (int)VG_LIM_WORKERS_MAX, &iv)) return 2; o.workers = iv; }
    else if (!strcmp(a, "--threads")) { if (!vg_arg_threads("distill", v, &threads)) return 2; }
    else if (!strcmp(a, "--seed")) { if (!vg_arg_u64("distill", a, v, UINT64_MAX, &o.seed)) return 2; }
    else if (!strcmp(a, "--lr")) { if (!vg_arg_f64("distill", a, v, 0, true, 10, false, &o.lr)) return 2; }
    else if (!strcmp(a, "--weight-decay")) { if (!vg_arg_f64("distill", a, v, 0, false, 10, false, &o.weight_decay)) return 2; }
    else if (!strcmp(a, "--p-grey")) { if (!vg_arg_f64("distill", a, v, 0, false, 1, false, &o.p_grey)) return 2; }
    else if (!strcmp(a, "--device")) ok = vg_parse_device(v, &o.device);
    if (!ok) {
      fprintf(stderr, "vigil distill: bad value '%s' for %s\n", v, a);
      return 2;
    }
  }
  if (!images || !o.out) {
    fprintf(stderr, "vigil distill: --images and --out are required\n");
    return usage(stderr);
  }
  vg_cli_apply_threads("distill", threads);
  if (vg_check_batch_bytes("vigil distill: --batch", o.batch, 3, 2 * (int64_t)o.view, 2 * (int64_t)o.view) != VG_OK) {
    fprintf(stderr, "%s\n", vg_last_error());
    return 2;
  }
  if (o.device == VG_CUDA && !vg_cuda_available()) {
    fprintf(stderr, "vigil distill: --device cuda: %s\n", vg_last_error());
    return 1;
  }
  vg_dataset ds;
  if (vg_ds_image_folder(images, &ds) != VG_OK) {
    fprintf(stderr, "vigil distill: %s\n", vg_last_error());
    return 1;
  }
  char dev_desc[160];
  if (o.device == VG_CPU) snprintf(dev_desc, sizeof dev_desc, "%d compute threads", vg_num_threads());
  else snprintf(dev_desc, sizeof dev_desc, "on %s", vg_cuda_device_name() ? vg_cuda_device_name() : "the GPU");
  if (!o.quiet)
    fprintf(stderr, "distill: %lld images under %s; %s -> PDN-%s, %lld iterations of %lld, view %d (extractor %d), "
                    "%s\n",
            (long long)ds.n, images, o.backbone, o.size == VG_EFFAD_S ? "S" : "M", (long long)o.iters,
            (long long)o.batch, o.view, 2 * o.view, dev_desc);
  o.images = &ds;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  o.interrupt = &g_stop;
  vg_status st = vg_effad_distill(&o);
  vg_dataset_free(&ds);
  if (st != VG_OK) {
    fprintf(stderr, "vigil %s\n", vg_last_error());   /* messages start with "distill:" */
    return 1;
  }
  if (g_stop) {
    fprintf(stderr, "vigil distill: interrupted; checkpoint %s.ckpt.safetensors (rerun with --resume)\n", o.out);
    return 130;
  }
  printf("distill: wrote %s\n", o.out);
  return 0;
}
