/* vigil.h — Vigil's whole public API in one include, and the library's version.
 *
 *   // cc mine.c $(pkg-config --cflags --libs vigil)
 *   #include <vigil.h>
 *   int main(int argc, char **argv) {
 *     if (vg_method_register(&my_method) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); return 2; }
 *     return vg_cli_main(argc, argv);      // vigil train/test/predict/bench/... for it too
 *   }
 *
 * Include paths. Installed, the headers live under PREFIX/include/vigil/ with their source
 * folders kept (vigil/tensor/tensor.h, vigil/nn/nn.h, ...), and vigil.pc's Cflags is
 * -I${includedir}/vigil: `#include <vigil.h>` and `#include "tensor/tensor.h"` both work,
 * exactly as inside the source tree (where -I. does the same).
 *
 * What is public: every header this file includes, and the per-method headers under
 * methods/NAME/ (vg_fastflow_new, vg_effad_distill, ...), which are installed but included
 * one by one (a method is reached by name through methods/method.h: vg_method_create).
 * Internal headers (tensor/internal.h, tensor/cpu|cuda|kmath/, flows/block.h, the cli's
 * option parser, ...) are not installed; tests/headers.sh checks that no installed header
 * needs one and that each compiles alone.
 *
 * Versioning: MAJOR.MINOR.PATCH (the Makefile reads them here); the shared library is
 * libvigil.so.MAJOR.MINOR.PATCH with soname libvigil.so.MAJOR. While MAJOR is 0 the ABI may
 * change in any minor release: rebuild programs against the new headers.
 * VG_VERSION is what this header was written for; vg_version() what the linked library is. */
#ifndef VG_VIGIL_H
#define VG_VIGIL_H

#define VG_VERSION_MAJOR 0
#define VG_VERSION_MINOR 1
#define VG_VERSION_PATCH 0
#define VG_VERSION_STR_(x) #x
#define VG_VERSION_STR(x) VG_VERSION_STR_(x)
#define VG_VERSION \
  VG_VERSION_STR(VG_VERSION_MAJOR) "." VG_VERSION_STR(VG_VERSION_MINOR) "." VG_VERSION_STR(VG_VERSION_PATCH)

/* base: status and errors, JSON, files, number parsing, inflate/CRC, the thread pool */
#include "base/status.h"
#include "base/json.h"
#include "base/file.h"
#include "base/parse.h"
#include "base/inflate.h"
#include "base/threadpool.h"
#include "base/sha256.h"
#include "base/mem.h"
/* tensor: tensors, scopes, every op; threads and SIMD path; op counting */
#include "tensor/tensor.h"
#include "tensor/parallel.h"
#include "tensor/opstats.h"
/* autograd: tape, backward, no-grad, gradcheck */
#include "autograd/autograd.h"
/* nn: modules, init, optimizers, schedules, checkpoints, safetensors, .pth, backbones */
#include "nn/nn.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "nn/pth.h"
#include "nn/zip.h"
#include "nn/state_dict.h"
#include "nn/backbones/backbones.h"
#include "nn/backbones/vit.h"
#include "nn/backbones/mobilenet.h"
#include "nn/backbones/densenet.h"
#include "nn/blur.h"
/* flows: invertible blocks, SequenceINN / GraphINN */
#include "flows/flows.h"
/* datasets: image codecs, transforms, datasets, loader, synthetic benchmark */
#include "datasets/image/image.h"
#include "datasets/image/jpeg.h"
#include "datasets/datasets.h"
#include "datasets/synth.h"
/* eval and report: metrics, heatmaps, HTML report */
#include "eval/eval.h"
#include "report/report.h"
/* methods: the method contract, config tables, registry, anomalib checkpoint import */
#include "methods/config.h"
#include "methods/method.h"
#include "methods/anomalib_import.h"
#include "methods/augment.h"
/* cli: vg_cli_main (the whole `vigil` command line inside your own program) */
#include "cli/cli.h"

/* The version of the linked library ("0.1.0"): compare with VG_VERSION to catch a header /
 * library mismatch. */
const char *vg_version(void);
#endif
