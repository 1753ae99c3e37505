/* flow_multiscale — a Glow/RealNVP-style multi-scale normalizing flow built as a FrEIA
 * GraphINN, fitted by maximum likelihood to 32x32 grey images of random soft blobs, then
 * sampled from.
 *
 *   x (1, 32, 32) -> Haar -> (4, 16, 16) -> ActNorm, K x AllInOne -> Split [2, 2] -> z0 (2, 16, 16)
 *                                                                              \-> Haar -> (8, 8, 8)
 *   -> ActNorm, K x AllInOne -> Split [4, 4] -> z1 (4, 8, 8)
 *                                         \-> Haar -> (16, 4, 4) -> ActNorm, K x AllInOne -> z2 (16, 4, 4)
 *
 * Each scale factors out half of its channels as an output (three outputs), so the deeper
 * scales run on fewer values. Sampling draws z0, z1, z2 ~ N(0, T^2) (temperature T) and
 * runs the graph in reverse.
 *   ./flow_multiscale [steps [out.pgm [T]]]   -> NLL per dimension before / after training and a
 *   4x4 grid of samples (128x128 PGM, default flow_multiscale.pgm); exit status 1 when
 *   training did not lower the NLL or the graph's round trip is off. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vigil.h>

enum { K = 2, BATCH = 16, S = 32 };

static vg_nn_module *subnet(int64_t c_in, int64_t c_out, void *user) {
  (void)user;
  static uint64_t seed = 1000;
  return vg_flow_subnet_conv_new(c_in, c_out, 3, 32, seed++);   /* Conv3x3, ReLU, Conv3x3 */
}

/* one node fed by (node, out) and the dims it produces; exits on a build error (example) */
static int add(vg_nn_module *g, const char *name, vg_nn_module *m, vg_flow_port in) {
  int id = vg_flow_graph_node(g, name, m, 1, &in, 0, NULL);
  if (id < 0) { fprintf(stderr, "%s\n", vg_last_error()); exit(2); }
  return id;
}
static vg_flow_dims dims_of(vg_nn_module *g, int node, int out) {
  vg_flow_dims d;
  if (vg_flow_graph_port_dims(g, (vg_flow_port){node, out}, &d) < 0) { fprintf(stderr, "%s\n", vg_last_error()); exit(2); }
  return d;
}

/* Haar downsampling, ActNorm, then K AllInOne blocks; returns the last node */
static int scale(vg_nn_module *g, int level, vg_flow_port in) {
  char name[32];
  vg_flow_dims d = dims_of(g, in.node, in.out);
  snprintf(name, sizeof name, "haar%d", level);
  int h = add(g, name, vg_flow_haar_down_new(d.ndim, d.d, (vg_flow_haar_opts){.order_by_wavelet = true, .rebalance = 0.5}), in);
  d = dims_of(g, h, 0);
  snprintf(name, sizeof name, "actnorm%d", level);
  h = add(g, name, vg_flow_actnorm_new(d.ndim, d.d), (vg_flow_port){h, 0});   /* data-dependent init, as Glow */
  for (int k = 0; k < K; k++) {
    d = dims_of(g, h, 0);
    snprintf(name, sizeof name, "aio%d_%d", level, k);
    h = add(g, name, vg_flow_allinone_new(d.ndim, d.d, 0, (vg_flow_subnet){subnet, NULL},
                                          (vg_flow_allinone_opts){.affine_clamping = 2.0, .seed = (uint64_t)(10 * level + k)}),
            (vg_flow_port){h, 0});
  }
  return h;
}

static vg_nn_module *build(void) {
  vg_nn_module *g = vg_flow_graph_new();
  int x = vg_flow_graph_input(g, "x", 3, (int64_t[]){1, S, S});
  int a = scale(g, 0, (vg_flow_port){x, 0});
  vg_flow_dims d = dims_of(g, a, 0);
  int sa = add(g, "split0", vg_flow_split_new(d.ndim, d.d, 0, NULL, 2, 0), (vg_flow_port){a, 0});
  vg_flow_graph_output(g, "z0", (vg_flow_port){sa, 0});
  int b = scale(g, 1, (vg_flow_port){sa, 1});
  d = dims_of(g, b, 0);
  int sb = add(g, "split1", vg_flow_split_new(d.ndim, d.d, 0, NULL, 2, 0), (vg_flow_port){b, 0});
  vg_flow_graph_output(g, "z1", (vg_flow_port){sb, 0});
  int c = scale(g, 2, (vg_flow_port){sb, 1});
  vg_flow_graph_output(g, "z2", (vg_flow_port){c, 0});
  if (vg_flow_graph_build(g) != VG_OK) { fprintf(stderr, "%s\n", vg_last_error()); exit(2); }
  return g;
}

/* n images of 1-3 soft blobs in [0, 1] plus a little pixel noise, centred: (n, 1, S, S) */
static vg_tensor *blobs(int n, uint64_t seed) {
  float *buf = calloc((size_t)n * S * S, sizeof(float));
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
#define RND() ((s = s * 6364136223846793005ull + 1442695040888963407ull), (double)(s >> 11) / 9007199254740992.0)
  for (int i = 0; i < n; i++) {
    float *im = buf + (size_t)i * S * S;
    int nb = 1 + (int)(RND() * 3);
    for (int b = 0; b < nb; b++) {
      double cx = 6 + RND() * (S - 12), cy = 6 + RND() * (S - 12), sg = 2.5 + RND() * 3.5, amp = 0.5 + 0.5 * RND();
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) im[y * S + x] += (float)(amp * exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2 * sg * sg)));
    }
    for (int p = 0; p < S * S; p++) {   /* + N(0, 0.03^2) pixel noise (Box-Muller) */
      double u1 = RND() + 1e-12, u2 = RND();
      im[p] = (float)(fmin(im[p], 1.0) - 0.5 + 0.03 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
  }
#undef RND
  vg_tensor *t = vg_from_data(VG_F32, 4, (int64_t[]){n, 1, S, S}, buf);
  free(buf);
  return t;
}

/* NLL per dimension (nats) of x; with opt, one Adam step on it */
static double nll_step(vg_nn_module *g, vg_tensor *x, vg_optim *opt) {
  vg_scope_begin();
  vg_tensor *z[3], *ld;
  double v = NAN;
  if (vg_flow_forward_multi(g, 1, &x, 0, NULL, false, true, z, &ld) == 3) {
    vg_tensor *lp = vg_add(vg_add(vg_flow_gaussian_logp(z[0]), vg_flow_gaussian_logp(z[1])), vg_flow_gaussian_logp(z[2]));
    vg_tensor *loss = vg_scale(vg_mean_all(vg_add(lp, ld)), -1.0f / (S * S));
    v = vg_item(loss);
    if (opt) {
      vg_optim_zero_grad(opt);
      vg_backward(loss);
      vg_optim_step(opt);
    }
  } else fprintf(stderr, "%s\n", vg_last_error());
  vg_scope_end();
  return v;
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 100;
  const char *out = argc > 2 ? argv[2] : "flow_multiscale.pgm";
  const float TEMP = argc > 3 ? (float)atof(argv[3]) : 0.7f;
  vg_nn_module *g = build();
  vg_nn_list ps = vg_nn_named_parameters(g);
  int64_t nparam = 0;
  for (int i = 0; i < ps.n; i++) nparam += ps.tensors[i]->requires_grad ? vg_numel(ps.tensors[i]) : 0;
  printf("flow_multiscale: GraphINN of %d modules, %lld parameters, outputs z0 (2,16,16) z1 (4,8,8) z2 (16,4,4)\n",
         vg_nn_child_get(g, "module_list")->nchildren, (long long)nparam);
  vg_optim *opt = vg_optim_new(VG_OPTIM_ADAM, vg_optim_defaults(VG_OPTIM_ADAM, 2e-3));
  vg_optim_add_group(opt, ps.n, ps.tensors, NULL);

  vg_tensor *test = blobs(BATCH, 999), *init = blobs(4 * BATCH, 12345);
  nll_step(g, init, NULL);   /* the first forward initialises the ActNorms from this batch */
  vg_tensor_free(init);
  double before = nll_step(g, test, NULL), last = NAN;
  for (int step = 0; step < steps; step++) {
    vg_tensor *x = blobs(BATCH, (uint64_t)step + 1);
    last = nll_step(g, x, opt);
    if (step % 10 == 0 || step == steps - 1) printf("  step %3d  train NLL %.4f nats/dim\n", step, last);
    vg_tensor_free(x);
  }
  double after = nll_step(g, test, NULL);
  printf("held-out NLL %.4f -> %.4f nats/dim\n", before, after);

  /* round trip on the held-out batch, then 16 samples at temperature 0.7 */
  vg_scope_begin();
  vg_no_grad_begin();
  vg_tensor *z[3], *xr = NULL;
  double rt = INFINITY;
  if (vg_flow_forward_multi(g, 1, &test, 0, NULL, false, false, z, NULL) == 3 &&
      vg_flow_forward_multi(g, 3, z, 0, NULL, true, false, &xr, NULL) == 1) {
    float *a = malloc(sizeof(float) * (size_t)vg_numel(test)), *b = malloc(sizeof(float) * (size_t)vg_numel(test));
    vg_to_host(test, VG_F32, a);
    vg_to_host(xr, VG_F32, b);
    rt = 0;
    for (int64_t i = 0; i < vg_numel(test); i++) rt = fmax(rt, fabs(a[i] - b[i]));
    free(a); free(b);
  }
  printf("reverse(forward(x)) max error %.2e\n", rt);
  vg_tensor *zs[3] = {vg_scale(vg_randn(4, (int64_t[]){16, 2, 16, 16}, 1), TEMP), vg_scale(vg_randn(4, (int64_t[]){16, 4, 8, 8}, 2), TEMP),
                      vg_scale(vg_randn(4, (int64_t[]){16, 16, 4, 4}, 3), TEMP)};
  vg_tensor *smp = NULL;
  int ok = vg_flow_forward_multi(g, 3, zs, 0, NULL, true, false, &smp, NULL) == 1;
  if (ok) {
    float *px = malloc(sizeof(float) * 16 * S * S);
    vg_to_host(smp, VG_F32, px);
    enum { W = 4 * S };
    char hdr[32];
    int hl = snprintf(hdr, sizeof hdr, "P5\n%d %d\n255\n", W, W);
    unsigned char *pgm = malloc((size_t)hl + W * W);
    memcpy(pgm, hdr, (size_t)hl);
    for (int i = 0; i < 16; i++)
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
          double v = (px[(size_t)i * S * S + y * S + x] + 0.5) * 255;
          pgm[hl + ((i / 4) * S + y) * W + (i % 4) * S + x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    ok = vg_file_write_atomic(out, pgm, (size_t)hl + W * W) == VG_OK;
    printf("%s: 4x4 grid of samples (T = %.2f) %s\n", out, TEMP, ok ? "written" : vg_last_error());
    free(px); free(pgm);
  }
  vg_no_grad_end();
  vg_scope_end();
  vg_optim_free(opt);
  vg_nn_list_free(&ps);
  vg_nn_free(g);
  vg_tensor_free(test);
  return ok && after < before && rt < 1e-3 ? 0 : 1;
}
