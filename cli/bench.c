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
#include "cli/opts.h"
#include "cli/cli.h"
#include "cli/rundir.h"
#include "methods/method.h"
#include "tensor/parallel.h"
#include "base/json.h"
#include "tensor/opstats.h"
#include "vigil.h"

/* `vigil bench`'s options (the table drives the parser and --help: cli/opts.h) */
typedef struct {
  vg_run_overrides ov;   /* method config flags */
  const char *run, *device, *dtype, *json_path;
  int batches[8], nb, warmup, runs, threads, graph;
  bool paper, warmup_given, runs_given, dtype_given, train;
} bench_opts;

/* --batch N, repeatable: up to 8 sizes */
static bool bench_batch(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  bench_opts *b = opts;
  if (b->nb == 8) { fprintf(stderr, "vigil %s: %s: at most 8 batch sizes\n", cmd, o->name); return false; }
  int64_t x = 0;
  vg_parse_i64(v, &x, NULL);   /* checked against the row's range already */
  b->batches[b->nb++] = (int)x;
  return true;
}

static bool bench_graph(const char *cmd, const vg_opt *o, const char *v, void *opts) {
  (void)cmd; (void)v;
  ((bench_opts *)opts)->graph = o->lo;   /* --graph 1, --no-graph 0 */
  return true;
}

#define T bench_opts
static const vg_opt bench_table[] = {
  {.name = "--model", .kind = VG_OPT_STR, .arg = "s|m", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_str, .key = "model",
   .help = "EfficientAD size (method config key \"model\")"},
  {.name = "--backbone", .kind = VG_OPT_STR, .arg = "NAME", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_str, .key = "backbone",
   .help = "backbone (method config key \"backbone\": see vigil bench METHOD --help)"},
  {.name = "--input-size", .kind = VG_OPT_INT, .arg = "N", .lo = 1, .hi = VG_LIM_SIZE_MAX, .off = VG_OPT_AT(T, ov),
   .hook = vg_opt_ov_json, .key = "input_size", .help = "input size (default: the method's, 256)"},
  {.name = "--set", .kind = VG_OPT_LIST, .arg = "KEY=VALUE", .off = VG_OPT_AT(T, ov), .hook = vg_opt_ov_set,
   .help = "any method config key; repeatable"},
  {.name = "--run", .kind = VG_OPT_STR, .arg = "RUNDIR", .off = VG_OPT_AT(T, run),
   .help = "bench a trained run instead (its config and checkpoint)"},
  VG_OPT_DEVICE(T, device, "default cpu (cuda: needs a `make CUDA=1` build and a GPU)"),
  {VG_OPT_DTYPE_(T, dtype), .given = VG_OPT_GIVEN(T, dtype_given),
   .help = "default f32 (f16: CUDA only, f32 accumulation; --paper on CUDA: f16)"},
  {.name = "--paper", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, paper),
   .help = "the EfficientAD paper's protocol exactly (Appendix E): 1000 warm-up and 1000 timed runs,\n"
           "batch 1 (latency) and 16 (throughput), f16 on CUDA; the JSON says \"protocol\": \"paper\""},
  {.name = "--graph", .kind = VG_OPT_FLAG, .lo = 1, .hook = bench_graph, .label = "--graph / --no-graph",
   .help = "CUDA: replay the captured device part as a CUDA graph (default when the\n"
           "method's maps need no host post-processing) / plain eager predict"},
  {.name = "--no-graph", .kind = VG_OPT_FLAG, .lo = 0, .hook = bench_graph},
  {.name = "--train", .kind = VG_OPT_FLAG, .off = VG_OPT_AT(T, train),
   .help = "time training steps instead: a run = one train_step (forward, loss, backward, optimizer\n"
           "step) on a random batch (default: the method's training batch); f32; the JSON says\n"
           "\"mode\": \"train\" (inference lines: \"infer\")"},
  {VG_OPT_BATCH_(T, batches), .hook = bench_batch, .help = "batch size; repeatable (default: 1 and 16)"},
  {.name = "--warmup", .kind = VG_OPT_INT, .arg = "N", .lo = 0, .hi = 1000000, .off = VG_OPT_AT(T, warmup),
   .given = VG_OPT_GIVEN(T, warmup_given), .help = "untimed runs first (default 10; --paper: 1000)"},
  {.name = "--runs", .kind = VG_OPT_INT, .arg = "N", .lo = 1, .hi = 1000000, .off = VG_OPT_AT(T, runs),
   .given = VG_OPT_GIVEN(T, runs_given), .help = "timed runs (default 50; --paper: 1000)"},
  VG_OPT_THREADS(T, threads, "compute threads (default: all cores)"),
  {.name = "--json", .kind = VG_OPT_STR, .arg = "FILE", .off = VG_OPT_AT(T, json_path),
   .help = "append the JSON lines to FILE instead of stdout"},
  {0}};
#undef T

/* the registry's methods (methods/method.h) after the usage line, and with METHOD given,
 * its config keys (`vigil bench METHOD --help`) */
static void bench_methods(FILE *f) {
  char b[256];
  fprintf(f, "      METHOD: %s\n", vg_method_list(b, sizeof b, " | ", false));
}
static void bench_method_help(FILE *f, const char *method) {
  fputc('\n', f);
  if (!vg_method_print_config_help(f, method)) fprintf(f, "(no method '%s')\n", method);
}

const vg_cmd_spec vg_cmd_bench = {
  .name = "bench", .lead = "METHOD", .example = "meanimage", .opts = bench_table,
  .usage = "usage: vigil bench METHOD [options]", .more = bench_methods, .lead_help = bench_method_help,
  .footer =
    "Protocol (the EfficientAD paper's): the batch is a random image tensor in host memory; a run = the\n"
    "method's predict, from the host image to the anomaly maps + scores in host memory (on CUDA the\n"
    "timing includes the host-to-device copy from pinned memory); mean of --runs after --warmup. FLOPs are counted at the op\n"
    "dispatch on one batch-1 run (2 per multiply-add of conv/matmul; other ops 1 per element). Random weights:\n"
    "timing does not depend on them.\n"
    "--train: a run = one train_step on a random batch already in host memory (forward, loss, backward,\n"
    "optimizer step; the step number goes on across runs), FLOPs per image counted on the first run.\n"};

#ifndef VG_GIT_COMMIT
#define VG_GIT_COMMIT "unknown"   /* the Makefile passes `git describe` of the tree it built */
#endif

/* "Intel(R) Xeon(R) Platinum 8480+" from /proc/cpuinfo ("" when unknown) */
static void vg_cpu_model_name(char *out, size_t cap) {
  out[0] = 0;
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    const char *c = strchr(line, ':');
    if (!c) break;
    c++;
    while (*c == ' ' || *c == '\t') c++;
    snprintf(out, cap, "%s", c);
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
    break;
  }
  fclose(f);
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
  bool train;                   /* --train: a run = one train_step on x (N x train_channels x H x W) */
  int64_t step;                 /* --train: the next step number */
  double loss;                  /* --train: the last step's loss */
  void *pinned;                 /* x's memory on CUDA runs */
  vg_tensor *x;                 /* host images */
  vg_tensor *in, *map;          /* graph: static device input and output */
  vg_cuda_graph *g;
  float *maps, *scores;
} bench_io;

static vg_status io_new(bench_io *io, vg_method *m, vg_device dev, vg_dtype dt, int B, bool graph, bool train) {
  *io = (bench_io){.B = B, .H = m->input_h, .W = m->input_w, .dev = dev, .dt = dt, .graph = graph, .train = train};
  const int C = train ? m->train_channels : 3;
  int64_t xs[4] = {B, C, io->H, io->W}, ms[4] = {B, 1, io->H, io->W};
  size_t xn = (size_t)B * C * io->H * io->W;
  if (dev != VG_CPU && !train) {
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
  if (io->train) return m->ops->train_step(m, io->x, io->step++, &io->loss);
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
  bench_opts o = {.device = "cpu", .dtype = "f32", .warmup = 10, .runs = 50, .graph = -1};
  const char *pos[1];
  int prc = vg_opts_parse(&vg_cmd_bench, argc, argv, &o, pos, NULL);
  if (prc >= 0) { vg_run_ov_free(&o.ov); return prc; }
  const char *method = pos[0], *run = o.run, *device = o.device, *dtype = o.dtype, *json_path = o.json_path;
  int *batches = o.batches, nb = o.nb, warmup = o.warmup, runs = o.runs, threads = o.threads, graph = o.graph;
  vg_run_overrides ov = o.ov;   /* owned from here */
  int rc = 2;
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
  if (o.paper) {   /* Appendix E: 1000 + 1000 runs, batch 1 and 16, f16 networks on the GPU */
    if (!o.warmup_given) warmup = 1000;
    if (!o.runs_given) runs = 1000;
    if (dev == VG_CUDA && !o.dtype_given) { dtype = "f16"; dt = VG_F16; }
  }
  if (o.train && (o.paper || graph == 1)) {
    fprintf(stderr, "vigil bench: --train times training steps: not with %s\n", o.paper ? "--paper" : "--graph");
    vg_run_ov_free(&ov);
    return 2;
  }
  if (o.train) graph = 0;
  if (nb == 0 && !o.train) { batches[0] = 1; batches[1] = 16; nb = 2; }
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
  if (nb == 0) { batches[0] = m->train_batch > 0 ? m->train_batch : 1; nb = 1; }   /* --train: the method's batch */
  const vg_method_def *def = vg_method_find(m->ops->name);
  /* what training would set (EfficientAD: normalisation statistics), so the trained path is timed */
  if (!run && def && def->bench_prepare) def->bench_prepare(m);
  if ((st = vg_cli_method_to(m, device, dtype)) != VG_OK) { fprintf(stderr, "vigil bench: %s\n", vg_last_error()); goto done; }
  if (graph < 0) graph = dev == VG_CUDA && m->ops->forward_maps;   /* the default on CUDA when the method can */
  if (graph && !m->ops->forward_maps) {
    fprintf(stderr, "vigil bench: --graph: %s's maps need host post-processing; run with --no-graph\n", m->ops->name);
    goto done;
  }
  FILE *out = json_path ? fopen(json_path, "a") : stdout;
  if (!out) { fprintf(stderr, "vigil bench: cannot append to %s\n", json_path); goto done; }
  const int H = m->input_h, W = m->input_w;
  char cpu_model[160];
  vg_cpu_model_name(cpu_model, sizeof cpu_model);
  int64_t params = count_params(m, false), trainable = count_params(m, true);
  /* FLOPs of one image (batch 1, untimed); --train: counted on each batch's first run (a
   * training step, per image) */
  vg_opstats ops = {0};
  if (!o.train) {
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
  if (o.train)
    fprintf(stderr, "vigil bench: %s training steps, %dx%d, %s/%s, %d threads (%s), %lld parameters (%lld trained)\n",
            m->ops->name, H, W, device, dtype, vg_num_threads(), vg_isa_name(vg_cpu_isa()), (long long)params,
            (long long)trainable);
  else
    fprintf(stderr, "vigil bench: %s, %dx%d, %s/%s, %d threads (%s), %lld parameters (%lld trained), %.2f GFLOPs/image "
                    "(conv/matmul) + %.3f G other ops\n", m->ops->name, H, W, device, dtype, vg_num_threads(),
            vg_isa_name(vg_cpu_isa()), (long long)params, (long long)trainable, ops.mac_flops * 1e-9,
            ops.other_flops * 1e-9);
  fprintf(stderr, "%6s %12s %12s %12s %12s\n", "batch", "mean ms", "median ms", "min ms", "images/s");
  for (int bi = 0; bi < nb; bi++) {
    int B = batches[bi];
    bench_io io = {0};
    st = vg_check_batch_bytes("vigil bench: --batch", B, o.train ? m->train_channels : 3, H, W);
    if (st != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); break; }
    st = io_new(&io, m, dev, dt, B, graph != 0, o.train);
    double *t = malloc(sizeof(double) * (size_t)runs);
    if (dev != VG_CPU) vg_cuda_reset_peak();
    for (int r = 0; r < warmup + runs && st == VG_OK; r++) {
      if (dev != VG_CPU) vg_cuda_synchronize();   /* nothing queued when the clock starts */
      if (o.train && r == 0) vg_opstats_start();   /* the training step's FLOPs, untimed when warmup > 0 */
      double t0 = now_s();
      st = io_run(&io, m);
      double el = now_s() - t0;
      if (o.train && r == 0) {
        vg_opstats_stop(&ops);
        ops.mac_flops /= B;
        ops.other_flops /= B;
      }
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
      vg_jw_key(&w, "protocol"); vg_jw_string(&w, o.paper ? "paper" : "short");
      vg_jw_key(&w, "mode"); vg_jw_string(&w, o.train ? "train" : "infer");
      vg_jw_key(&w, "vigil_version"); vg_jw_string(&w, VG_VERSION);
      vg_jw_key(&w, "vigil_commit"); vg_jw_string(&w, VG_GIT_COMMIT);
      vg_jw_key(&w, "method"); vg_jw_string(&w, m->ops->name);
      char *cj = m->ops->config_json(m);
      vg_json *cfgj = NULL;
      if (cj && vg_json_parse(cj, strlen(cj), NULL, &cfgj) == VG_OK) {
        /* the keys that name the model variant (config table rows flagged VG_CFG_IDENT) */
        for (const vg_cfg_field *f = def ? def->config : NULL; f && f->key; f++) {
          if (!(f->flags & VG_CFG_IDENT)) continue;
          const char *s = vg_json_as_string(vg_json_get(cfgj, f->key));
          if (s) { vg_jw_key(&w, f->key); vg_jw_string(&w, s); }
        }
      }
      vg_json_free(cfgj);
      free(cj);
      vg_jw_key(&w, "input"); vg_jw_int64(&w, H);
      vg_jw_key(&w, "device"); vg_jw_string(&w, device);
      vg_jw_key(&w, "dtype"); vg_jw_string(&w, dtype);
      vg_jw_key(&w, "isa"); vg_jw_string(&w, vg_isa_name(vg_cpu_isa()));
      vg_jw_key(&w, "cpu"); vg_jw_string(&w, cpu_model);
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
      if (o.train) {   /* the step count and the last step's loss (random data: a sanity check only) */
        vg_jw_key(&w, "train_steps"); vg_jw_int64(&w, io.step);
        vg_jw_key(&w, "last_loss"); vg_jw_double(&w, io.loss);
      }
      if (dev != VG_CPU) {
        const char *gpu = vg_cuda_device_name();
        vg_jw_key(&w, "gpu"); vg_jw_string(&w, gpu ? gpu : "?");
        vg_cuda_info ci;
        if (vg_cuda_device_info(&ci) == VG_OK) {   /* what the result depends on, for cross-GPU tables */
          char v[32];
          snprintf(v, sizeof v, "%d.%d", ci.cc_major, ci.cc_minor);
          vg_jw_key(&w, "gpu_cc"); vg_jw_string(&w, v);
          vg_jw_key(&w, "gpu_sms"); vg_jw_int64(&w, ci.sm_count);
          vg_jw_key(&w, "gpu_memory_gib"); vg_jw_double(&w, ci.memory_gib);
          snprintf(v, sizeof v, "%d.%d", ci.driver_version / 1000, ci.driver_version % 1000 / 10);
          vg_jw_key(&w, "cuda_driver"); vg_jw_string(&w, v);
          snprintf(v, sizeof v, "%d.%d", ci.runtime_version / 1000, ci.runtime_version % 1000 / 10);
          vg_jw_key(&w, "cuda_runtime"); vg_jw_string(&w, v);
          if (ci.sm_clock_mhz) { vg_jw_key(&w, "gpu_clock_mhz"); vg_jw_int64(&w, ci.sm_clock_mhz); }
          if (ci.mem_clock_mhz) { vg_jw_key(&w, "gpu_mem_clock_mhz"); vg_jw_int64(&w, ci.mem_clock_mhz); }
          vg_jw_key(&w, "cuda_arch_built"); vg_jw_string(&w, vg_cuda_built_archs());
        }
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
