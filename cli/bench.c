/* bench.c — `vigil bench METHOD`: inference latency and throughput as the EfficientAD
 * paper measures them (Appendix E / nelson1425 benchmark.py): a random image batch
 * already on the host; each timed run starts with the host-to-device copy (none on the
 * CPU) and stops when the anomaly maps and scores are in host memory (the method's
 * predict: networks, map computation and normalisation, resize to the input size);
 * warm-up runs, then the mean (and median, min) of N timed runs. Latency at batch 1,
 * throughput at batch 16 by default. Also: parameter count, FLOPs per image counted at
 * the op dispatch (tensor/opstats.h: 2 per multiply-add for conv/matmul, plus the other
 * ops), peak resident memory. One JSON object per batch size on stdout (or --json FILE,
 * appended), a table on stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/rundir.h"
#include "methods/method.h"
#include "methods/efficientad/efficientad.h"
#include "tensor/parallel.h"
#include "base/json.h"
#include "tensor/opstats.h"

static int bench_usage(FILE *f) {
  fprintf(f,
    "usage: vigil bench METHOD [options]      METHOD: efficientad | fastflow | cflow | meanimage\n"
    "  --model s|m           EfficientAD size (method config key \"model\")\n"
    "  --backbone NAME       backbone (fastflow/cflow: resnet18, wide_resnet50_2)\n"
    "  --input-size N        input size (default: the method's, 256)\n"
    "  --set KEY=VALUE       any method config key; repeatable\n"
    "  --run RUNDIR          bench a trained run instead (its config and checkpoint)\n"
    "  --device cpu|cuda     default cpu (cuda: needs a `make CUDA=1` build and a GPU)\n"
    "  --dtype f32|f16       default f32 (f16: CUDA only, f32 accumulation)\n"
    "  --graph / --no-graph  CUDA: replay the captured device part as a CUDA graph (default when the\n"
    "                        method has one: efficientad, fastflow, cflow) / plain eager predict\n"
    "  --batch N             batch size; repeatable (default: 1 and 16)\n"
    "  --warmup N            untimed runs first (default 10)\n"
    "  --runs N              timed runs (default 50)\n"
    "  --threads N           compute threads (default: all cores)\n"
    "  --json FILE           append the JSON lines to FILE instead of stdout\n"
    "Protocol (the EfficientAD paper's): the batch is a random image tensor in host memory; a run = the\n"
    "method's predict, from the host image to the anomaly maps + scores in host memory (on CUDA the\n"
    "timing includes the host-to-device copy from pinned memory); mean of --runs after --warmup. FLOPs are counted at the op\n"
    "dispatch on one batch-1 run (2 per multiply-add of conv/matmul; other ops 1 per element). Random weights:\n"
    "timing does not depend on them.\n");
  return f == stdout ? 0 : 2;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* every parameter (frozen backbones and fixed permutations included, as a state dict), or
 * the trained ones only (the papers' "additional parameters") */
static int64_t count_params(vg_method *m, bool trainable_only) {
  vg_nn_module *net = m->ops->module ? m->ops->module(m) : NULL;
  return net ? vg_nn_num_params(net, trainable_only) : 0;
}

/* One batch size's buffers and run. Eager: x (host; pinned on CUDA) -> predict -> maps and
 * scores on the host. Graph (CUDA): the device part of the method (forward_maps) is
 * captured once after the warm-up runs, from a static device input to a static device
 * map; a run = host-to-device copy of x, replay, copy of the map back, scores on the
 * host: the paper's protocol with the launch overhead gone. */
typedef struct {
  int B, H, W;
  vg_device dev;
  vg_dtype dt;
  bool graph;
  void *pinned;                 /* x's memory on CUDA runs */
  vg_tensor *x;                 /* host images */
  vg_tensor *in, *map;          /* graph: static device input and output */
  vg_cuda_graph *g;
  float *maps, *scores;
} bench_io;

static vg_status io_new(bench_io *io, vg_method *m, vg_device dev, vg_dtype dt, int B, bool graph) {
  *io = (bench_io){.B = B, .H = m->input_h, .W = m->input_w, .dev = dev, .dt = dt, .graph = graph};
  int64_t xs[4] = {B, 3, io->H, io->W}, ms[4] = {B, 1, io->H, io->W};
  size_t xn = (size_t)B * 3 * io->H * io->W;
  if (dev != VG_CPU) {
    io->pinned = vg_cuda_host_alloc(xn * sizeof(float));
    io->x = io->pinned ? vg_tensor_wrap_host(io->pinned, VG_F32, 4, xs) : NULL;
  } else {
    io->x = vg_tensor_new(VG_F32, 4, xs);
  }
  io->maps = malloc(sizeof(float) * (size_t)B * io->H * io->W);
  io->scores = malloc(sizeof(float) * (size_t)B);
  if (!io->x || !io->maps || !io->scores) return vg_fail(VG_ERR_NOMEM, "bench: out of memory for batch %d", B);
  vg_uniform_(io->x, 0.0f, 1.0f, 2 + (uint64_t)B);
  if (graph) {
    io->in = vg_tensor_new_on(dev, dt, 4, xs);
    io->map = vg_tensor_new_on(dev, VG_F32, 4, ms);   /* the methods' maps are f32 (f16: an f32 tail) */
    if (!io->in || !io->map) return vg_fail_prefix("bench: graph buffers");
  }
  return VG_OK;
}

/* the static map of the static input, eagerly or as the capture */
static vg_status io_forward(bench_io *io, vg_method *m) {
  vg_scope_begin();
  vg_tensor *y = m->ops->forward_maps(m, io->in);
  vg_status st = y ? vg_copy_(io->map, y) : vg_fail_prefix("bench: %s forward_maps", m->ops->name);
  vg_scope_end();
  return st;
}

static vg_status io_capture(bench_io *io, vg_method *m) {
  vg_status st = vg_cuda_graph_begin();
  if (st == VG_OK) {
    io_forward(io, m);
    io->g = vg_cuda_graph_end();
    if (!io->g) st = vg_fail_prefix("bench: CUDA graph capture of %s", m->ops->name);
  }
  return st;
}

static vg_status io_run(bench_io *io, vg_method *m) {
  if (!io->graph) return m->ops->predict(m, io->x, io->maps, io->scores);
  vg_status st = vg_copy_(io->in, io->x);   /* host to device (and to f16) */
  if (st == VG_OK) st = io->g ? vg_cuda_graph_replay(io->g) : io_forward(io, m);
  if (st == VG_OK) st = vg_method_maps_out(io->map, io->maps, io->scores);
  return st;
}

static void io_free(bench_io *io) {
  vg_cuda_graph_free(io->g);
  vg_tensor_free(io->in);
  vg_tensor_free(io->map);
  vg_tensor_free(io->x);
  if (io->pinned) vg_cuda_host_free(io->pinned);
  free(io->maps);
  free(io->scores);
}

int vg_cli_bench(int argc, char **argv) {
  if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) return bench_usage(argc < 1 ? stderr : stdout);
  const char *method = argv[0], *run = NULL, *device = "cpu", *dtype = "f32", *json_path = NULL;
  int batches[8], nb = 0, warmup = 10, runs = 50, threads = 0, graph = -1;
  vg_run_overrides ov = {0};
  int rc = 2;
  if (method[0] == '-') { fprintf(stderr, "vigil bench: unknown option %s (the METHOD comes first)\n", method); return bench_usage(stderr); }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { vg_run_ov_free(&ov); return bench_usage(stdout); }
    if (!strcmp(a, "--graph")) { graph = 1; continue; }
    if (!strcmp(a, "--no-graph")) { graph = 0; continue; }
    static const char *const known[] = {"--model", "--backbone", "--input-size", "--set", "--run", "--device", "--dtype",
                                        "--batch", "--warmup", "--runs", "--threads", "--json", NULL};
    bool is_known = false;
    for (int k = 0; known[k]; k++) is_known |= !strcmp(a, known[k]);
    if (!is_known) { fprintf(stderr, "vigil bench: unknown option %s\n", a); vg_run_ov_free(&ov); return bench_usage(stderr); }
    if (!v) { fprintf(stderr, "vigil bench: %s needs a value\n", a); vg_run_ov_free(&ov); return bench_usage(stderr); }
    i++;
    bool ok = true;
    if (!strcmp(a, "--model")) ok = vg_run_ov_set_str(&ov, "model", v);
    else if (!strcmp(a, "--backbone")) ok = vg_run_ov_set_str(&ov, "backbone", v);
    else if (!strcmp(a, "--input-size")) {
      int sz;
      if (!vg_arg_int("bench", a, v, 1, (int)VG_LIM_SIZE_MAX, &sz)) { vg_run_ov_free(&ov); return 2; }
      ok = vg_run_ov_set(&ov, "input_size", v);
    }
    else if (!strcmp(a, "--set")) {
      if (!vg_arg_set_value_ok("bench", v)) { vg_run_ov_free(&ov); return 2; }
      ok = vg_run_ov_set_arg(&ov, v);
    }
    else if (!strcmp(a, "--run")) run = v;
    else if (!strcmp(a, "--device")) device = v;
    else if (!strcmp(a, "--dtype")) dtype = v;
    else if (!strcmp(a, "--batch")) {
      if (nb == 8) { fprintf(stderr, "vigil bench: --batch: at most 8 batch sizes\n"); vg_run_ov_free(&ov); return 2; }
      if (!vg_arg_int("bench", a, v, 1, (int)VG_LIM_BATCH_MAX, &batches[nb])) { vg_run_ov_free(&ov); return 2; }
      nb++;
    }
    else if (!strcmp(a, "--warmup")) { if (!vg_arg_int("bench", a, v, 0, 1000000, &warmup)) { vg_run_ov_free(&ov); return 2; } }
    else if (!strcmp(a, "--runs")) { if (!vg_arg_int("bench", a, v, 1, 1000000, &runs)) { vg_run_ov_free(&ov); return 2; } }
    else if (!strcmp(a, "--threads")) { if (!vg_arg_threads("bench", v, &threads)) { vg_run_ov_free(&ov); return 2; } }
    else if (!strcmp(a, "--json")) json_path = v;
    else { fprintf(stderr, "vigil bench: unknown option %s\n", a); vg_run_ov_free(&ov); return bench_usage(stderr); }
    if (!ok) { fprintf(stderr, "vigil bench: bad value for %s: '%s'\n", a, v); vg_run_ov_free(&ov); return 2; }
  }
  vg_device dev;
  vg_dtype dt;
  if (!vg_parse_device(device, &dev) || !vg_parse_dtype(dtype, &dt)) {
    fprintf(stderr, "vigil bench: %s\n", vg_last_error());
    vg_run_ov_free(&ov);
    return 2;
  }
  if (graph == 1 && dev != VG_CUDA) {
    fprintf(stderr, "vigil bench: --graph needs --device cuda (CUDA graphs)\n");
    vg_run_ov_free(&ov);
    return 2;
  }
  if (nb == 0) { batches[0] = 1; batches[1] = 16; nb = 2; }
  vg_cli_apply_threads("bench", threads);

  vg_method *m = NULL;
  vg_run_config cfg = {0};
  vg_status st;
  if (run) {
    st = vg_run_config_read(run, &cfg);
    if (st == VG_OK) st = vg_run_open_method(run, &cfg, true, &m);
  } else {
    vg_json *j = NULL;
    st = vg_run_ov_json(&ov, &j);
    if (st == VG_OK) st = vg_method_create(method, j, &m);
    vg_json_free(j);
  }
  if (st != VG_OK) { fprintf(stderr, "vigil bench: %s\n", vg_last_error()); goto done; }
  if (!run && !strcmp(m->ops->name, "efficientad")) {
    /* normalisation statistics set, as after training: the folded multiply-add runs */
    vg_effad_model *em = vg_effad_method_model(m);
    vg_uniform_(em->mean, -0.1f, 0.1f, 11);
    vg_uniform_(em->std, 0.5f, 1.5f, 12);
    em->qa_st = 0.01f; em->qb_st = 0.2f; em->qa_ae = 0.02f; em->qb_ae = 0.3f;
  }
  if ((st = vg_cli_method_to(m, device, dtype)) != VG_OK) { fprintf(stderr, "vigil bench: %s\n", vg_last_error()); goto done; }
  if (graph < 0) graph = dev == VG_CUDA && m->ops->forward_maps;   /* the default on CUDA when the method can */
  if (graph && !m->ops->forward_maps) {
    fprintf(stderr, "vigil bench: --graph: %s's maps need host post-processing; run with --no-graph\n", m->ops->name);
    goto done;
  }
  FILE *out = json_path ? fopen(json_path, "a") : stdout;
  if (!out) { fprintf(stderr, "vigil bench: cannot append to %s\n", json_path); goto done; }
  const int H = m->input_h, W = m->input_w;
  int64_t params = count_params(m, false), trainable = count_params(m, true);
  /* FLOPs of one image (batch 1, untimed) */
  vg_opstats ops;
  {
    vg_tensor *x = vg_tensor_new(VG_F32, 4, (int64_t[]){1, 3, H, W});
    vg_uniform_(x, 0.0f, 1.0f, 1);
    float *maps = malloc(sizeof(float) * (size_t)H * W), score;
    vg_opstats_start();
    st = m->ops->predict(m, x, maps, &score);
    vg_opstats_stop(&ops);
    free(maps);
    vg_tensor_free(x);
    if (st != VG_OK) { fprintf(stderr, "vigil bench: predict: %s\n", vg_last_error()); if (json_path) fclose(out); goto done; }
  }
  fprintf(stderr, "vigil bench: %s, %dx%d, %s/%s, %d threads (%s), %lld parameters (%lld trained), %.2f GFLOPs/image "
                  "(conv/matmul) + %.3f G other ops\n", m->ops->name, H, W, device, dtype, vg_num_threads(),
          vg_isa_name(vg_cpu_isa()), (long long)params, (long long)trainable, ops.mac_flops * 1e-9, ops.other_flops * 1e-9);
  fprintf(stderr, "%6s %12s %12s %12s %12s\n", "batch", "mean ms", "median ms", "min ms", "images/s");
  for (int bi = 0; bi < nb; bi++) {
    int B = batches[bi];
    bench_io io = {0};
    st = vg_check_batch_bytes("vigil bench: --batch", B, 3, H, W);
    if (st != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); break; }
    st = io_new(&io, m, dev, dt, B, graph != 0);
    double *t = malloc(sizeof(double) * (size_t)runs);
    if (dev != VG_CPU) vg_cuda_reset_peak();
    for (int r = 0; r < warmup + runs && st == VG_OK; r++) {
      if (dev != VG_CPU) vg_cuda_synchronize();   /* nothing queued when the clock starts */
      double t0 = now_s();
      st = io_run(&io, m);
      double el = now_s() - t0;
      if (r >= warmup) t[r - warmup] = el;
      if (st == VG_OK && r + 1 == warmup && io.graph) st = io_capture(&io, m);   /* warm caches, then capture */
      if (st == VG_OK && warmup == 0 && r == 0 && io.graph) st = io_capture(&io, m);
    }
    vg_cuda_mem_stats ms = {0};
    if (dev != VG_CPU) vg_cuda_mem_stats_get(&ms);
    if (st == VG_OK) {
      double mean = 0;
      for (int r = 0; r < runs; r++) mean += t[r];
      mean /= runs;
      qsort(t, (size_t)runs, sizeof *t, cmp_d);
      double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
      struct rusage ru;
      getrusage(RUSAGE_SELF, &ru);
      fprintf(stderr, "%6d %12.3f %12.3f %12.3f %12.2f\n", B, mean * 1e3, med * 1e3, t[0] * 1e3, B / mean);
      vg_json_writer w;
      vg_jw_init(&w, 0);
      vg_jw_begin_object(&w);
      vg_jw_key(&w, "bench"); vg_jw_string(&w, "vigil_bench");
      vg_jw_key(&w, "method"); vg_jw_string(&w, m->ops->name);
      char *cj = m->ops->config_json(m);
      vg_json *cfgj = NULL;
      if (cj && vg_json_parse(cj, strlen(cj), NULL, &cfgj) == VG_OK) {
        const char *keys[] = {"model", "backbone", NULL};
        for (int k = 0; keys[k]; k++) {
          if (k == 1 && !strcmp(m->ops->name, "efficientad")) continue;   /* its backbone is the distiller's */
          const char *s = vg_json_as_string(vg_json_get(cfgj, keys[k]));
          if (s) { vg_jw_key(&w, keys[k]); vg_jw_string(&w, s); }
        }
      }
      vg_json_free(cfgj);
      free(cj);
      vg_jw_key(&w, "input"); vg_jw_int64(&w, H);
      vg_jw_key(&w, "device"); vg_jw_string(&w, device);
      vg_jw_key(&w, "dtype"); vg_jw_string(&w, dtype);
      vg_jw_key(&w, "isa"); vg_jw_string(&w, vg_isa_name(vg_cpu_isa()));
      vg_jw_key(&w, "threads"); vg_jw_int64(&w, vg_num_threads());
      vg_jw_key(&w, "batch"); vg_jw_int64(&w, B);
      vg_jw_key(&w, "warmup"); vg_jw_int64(&w, warmup);
      vg_jw_key(&w, "runs"); vg_jw_int64(&w, runs);
      vg_jw_key(&w, "mean_ms"); vg_jw_double(&w, mean * 1e3);
      vg_jw_key(&w, "median_ms"); vg_jw_double(&w, med * 1e3);
      vg_jw_key(&w, "min_ms"); vg_jw_double(&w, t[0] * 1e3);
      vg_jw_key(&w, "images_s"); vg_jw_double(&w, B / mean);
      vg_jw_key(&w, "params"); vg_jw_int64(&w, params);
      vg_jw_key(&w, "trainable_params"); vg_jw_int64(&w, trainable);
      vg_jw_key(&w, "gflops_per_image"); vg_jw_double(&w, ops.mac_flops * 1e-9);
      vg_jw_key(&w, "other_gops_per_image"); vg_jw_double(&w, ops.other_flops * 1e-9);
      vg_jw_key(&w, "peak_rss_mb"); vg_jw_double(&w, (double)ru.ru_maxrss / 1024.0);
      vg_jw_key(&w, "graph"); vg_jw_bool(&w, io.g != NULL);
      if (dev != VG_CPU) {
        const char *gpu = vg_cuda_device_name();
        vg_jw_key(&w, "gpu"); vg_jw_string(&w, gpu ? gpu : "?");
        vg_jw_key(&w, "tf32"); vg_jw_bool(&w, dt == VG_F32 && vg_cuda_tf32());
        /* side streams for independent branches (EfficientAD's three networks); false with
         * VIGIL_CUDA_BRANCHES=0: all on one stream */
        vg_jw_key(&w, "cuda_branches"); vg_jw_bool(&w, vg_cuda_branches());
        vg_jw_key(&w, "peak_device_live_mb"); vg_jw_double(&w, (double)ms.peak_live / 1048576.0);
        vg_jw_key(&w, "peak_device_reserved_mb"); vg_jw_double(&w, (double)ms.peak_reserved / 1048576.0);
      }
      vg_jw_key(&w, "unix_time"); vg_jw_int64(&w, (int64_t)time(NULL));
      vg_jw_end_object(&w);
      char *line = vg_jw_finish(&w, NULL);
      fprintf(out, "%s\n", line ? line : "{}");
      fflush(out);
      free(line);
    } else {
      fprintf(stderr, "vigil bench: batch %d: %s\n", B, vg_last_error());
    }
    free(t);
    io_free(&io);
  }
  if (json_path) fclose(out);
  if (st == VG_OK) rc = 0;
done:
  vg_method_free(m);
  if (run) vg_run_config_free(&cfg);
  vg_run_ov_free(&ov);
  return rc;
}
