/* distill.c — `vigil distill`: EfficientAD teacher pretraining
 * (methods/efficientad/distill.h) on a folder of images (e.g. ImageNet train).
 *
 *   vigil distill --weights wide_resnet101_2-32ee1156.pth --images ILSVRC/train --model s \
 *                 --out teacher_small.safetensors
 *
 * SIGINT/SIGTERM: the current iteration finishes, a checkpoint is written and the
 * program stops; --resume continues bit-identically. */
#include "cli/args.h"
#include "cli/opts.h"
#include "cli/cli.h"
#include "methods/efficientad/distill.h"
#include "methods/method.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `vigil distill`'s options (the table drives the parser and --help: cli/opts.h): the
 * library's options plus the command's own */
typedef struct {
  vg_effad_distill_opts d;
  const char *images, *device;
  int threads;
} distill_opts;

static bool distill_model(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  distill_opts *w = opts;
  if (!strcmp(v, "s") || !strcmp(v, "S") || !strcmp(v, "small")) w->d.size = VG_EFFAD_S;
  else if (!strcmp(v, "m") || !strcmp(v, "M") || !strcmp(v, "medium")) w->d.size = VG_EFFAD_M;
  else { fprintf(stderr, "vigil %s: bad value '%s' for %s: want s or m\n", cmd, v, o->name); return false; }
  return true;
}

static bool distill_view(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  int64_t x = 0;
  vg_parse_i64(v, &x, NULL);   /* in [16, 2048] already */
  if (x % 8) {
    fprintf(stderr, "vigil %s: %s: '%s' is not a multiple of 8: want a multiple of 8 in [%d, %d]\n", cmd, o->name, v,
            (int)o->lo, (int)o->hi);
    return false;
  }
  ((distill_opts *)opts)->d.view = (int)x;
  return true;
}

#define T distill_opts
static const vg_opt distill_table[] = {
  {.name = "--images", .kind = VG_OPT_STR, .arg = "DIR", .off = VG_OPT_AT(T, images),
   .help = "distillation images: every image under DIR, recursively (e.g. ImageNet train)"},
  {.name = "--out", .kind = VG_OPT_STR, .arg = "FILE", .off = VG_OPT_AT(T, d.out),
   .help = "teacher file: the PDN state dict (.safetensors, EfficientAD teacher weights);\n"
           "the checkpoint is FILE.ckpt.safetensors"},
  {.name = "--backbone", .kind = VG_OPT_STR, .arg = "NAME", .off = VG_OPT_AT(T, d.backbone),
   .help = "target extractor (default wide_resnet101_2; also resnet18, resnet50, wide_resnet50_2,\n"
           "resnext101_32x8d (layer2 + layer3), densenet201 (features.denseblock2 + 3))"},
  {.name = "--weights", .kind = VG_OPT_STR, .arg = "FILE", .off = VG_OPT_AT(T, d.weights),
   .help = "torchvision weights of the extractor (.pth or .safetensors), e.g.\n"
           "wide_resnet101_2-32ee1156.pth (IMAGENET1K_V1); without: random init (loud warning,\n"
           "the teacher is then not comparable to the paper's)"},
  {.name = "--model", .kind = VG_OPT_ENUM, .arg = "s|m", .hook = distill_model,
   .help = "PDN size: s = EfficientAD-S, m = EfficientAD-M (default s)"},
  {.name = "--out-channels", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = 4096, .off = VG_OPT_AT(T, d.out_channels),
   .help = "teacher channels (default 384)"},
  {.name = "--iters", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = VG_LIM_STEPS_MAX, .off = VG_OPT_AT(T, d.iters),
   .help = "training iterations (default 60000)"},
  {.name = "--batch", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = VG_LIM_BATCH_MAX, .off = VG_OPT_AT(T, d.batch),
   .help = "images per iteration (default 16)"},
  {.name = "--stats-images", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = VG_LIM_STEPS_MAX,
   .off = VG_OPT_AT(T, d.stats_images), .help = "images for the target mean/std (default 10000, capped at the image count)"},
  {.name = "--save-every", .kind = VG_OPT_I64, .arg = "N", .lo = 0, .hi = VG_LIM_STEPS_MAX, .off = VG_OPT_AT(T, d.save_every),
   .help = "checkpoint every N iterations (default 1000; 0 = only at the end)"},
  {.name = "--view", .kind = VG_OPT_INT, .arg = "N", .lo = 16, .hi = 2048, .hook = distill_view,
   .help = "PDN input size; the extractor sees 2N x 2N (default 256, multiple of 8)"},
  {.name = "--lr", .kind = VG_OPT_F64, .arg = "X", .flo = 0, .lo_open = true, .fhi = 10, .off = VG_OPT_AT(T, d.lr),
   .help = "Adam learning rate (default 1e-4)"},
  {.name = "--weight-decay", .kind = VG_OPT_F64, .arg = "X", .flo = 0, .fhi = 10, .off = VG_OPT_AT(T, d.weight_decay),
   .help = "Adam L2 weight decay (default 1e-5)"},
  {.name = "--p-grey", .kind = VG_OPT_F64, .arg = "X", .flo = 0, .fhi = 1, .off = VG_OPT_AT(T, d.p_grey),
   .help = "RandomGrayscale probability, shared by both views (default 0.1)"},
  VG_OPT_SEED(T, d.seed, UINT64_MAX, "seed of the image order, grey decisions and PDN init (default 42)"),
  VG_OPT_WORKERS(T, d.workers, "image decoding threads (default 2)"),
  VG_OPT_THREADS(T, threads, "compute threads (default: all cores)"),
  VG_OPT_DEVICE(T, device, "where the extractor, PDN and Adam run (default cpu; cuda needs a\n"
                           "make CUDA=1 build and a GPU); checkpoints resume on either"),
  {.name = "--log-every", .kind = VG_OPT_I64, .arg = "N", .lo = 1, .hi = VG_LIM_STEPS_MAX, .off = VG_OPT_AT(T, d.log_every),
   .help = "progress line every N iterations (default 100)"},
  {.name = "--resume", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, d.resume),
   .help = "continue from FILE.ckpt.safetensors (same settings; bit-identical result)"},
  {.name = "--quiet", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, d.quiet), .help = "no progress lines"},
  {0}};
#undef T

const vg_cmd_spec vg_cmd_distill = {
  .name = "distill", .opts = distill_table, .width = 19,
  .usage = "usage: vigil distill --images DIR --out TEACHER.safetensors [options]\n"
           "Pretrains an EfficientAD teacher (PDN) by distilling PatchCore-style features of a\n"
           "pretrained extractor (EfficientAD Algorithm 3, nelson1425 pretraining.py).\n",
  .footer = "Ctrl-C writes a checkpoint and stops; rerun with --resume.\n"};

static int usage(FILE *f) { return vg_opts_usage(&vg_cmd_distill, f); }

static volatile sig_atomic_t g_stop;
static void on_signal(int s) { (void)s; g_stop = 1; }

int vg_cli_distill(int argc, char **argv) {
  distill_opts w = {.device = "cpu"};
  vg_effad_distill_defaults(&w.d);
  int prc = vg_opts_parse(&vg_cmd_distill, argc, argv, &w, NULL, NULL);
  if (prc >= 0) return prc;
  vg_effad_distill_opts o = w.d;
  const char *images = w.images;
  int threads = w.threads;
  vg_parse_device(w.device, &o.device);   /* checked by the parser */
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
  g_stop = 0;   /* vg_cli_main may run distill again in the same process */
  struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);   /* the caller's handlers come back below */
  sigaction(SIGTERM, &sa, &old_term);
  o.interrupt = &g_stop;
  vg_status st = vg_effad_distill(&o);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
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
