/* subnet.c — the ready-made subnet constructors of flows.h (FastFlow's conv subnet,
 * CFLOW's MLP) and their vg_flow_subnet_cfg callbacks. */
#include "flows/flows.h"

vg_nn_module *vg_flow_subnet_conv_new(int64_t c_in, int64_t c_out, int k, int64_t hidden, uint64_t seed) {
  vg_nn_conv2d_opts o = {.ph = k / 2, .pw = k / 2};
  return vg_nn_sequential_new(3, (vg_nn_module *[]){
      vg_nn_conv2d_new(c_in, hidden, k, k, o, seed), vg_nn_relu_new(),
      vg_nn_conv2d_new(hidden, c_out, k, k, o, seed + 1)});
}
vg_nn_module *vg_flow_subnet_mlp_new(int64_t c_in, int64_t c_out, int64_t hidden, uint64_t seed) {
  return vg_nn_sequential_new(3, (vg_nn_module *[]){
      vg_nn_linear_new(c_in, hidden, true, seed), vg_nn_relu_new(),
      vg_nn_linear_new(hidden, c_out, true, seed + 1)});
}
static int64_t cfg_hidden(const vg_flow_subnet_cfg *c, int64_t c_in) {
  if (c->hidden > 0) return c->hidden;
  if (c->ratio > 0) return (int64_t)(c->ratio * (double)c_in);
  return 2 * c_in;
}
vg_nn_module *vg_flow_subnet_conv(int64_t c_in, int64_t c_out, void *cfg) {
  vg_flow_subnet_cfg *c = cfg;
  vg_nn_module *m = vg_flow_subnet_conv_new(c_in, c_out, c->k > 0 ? c->k : 3, cfg_hidden(c, c_in), c->seed);
  c->seed += 2;
  return m;
}
vg_nn_module *vg_flow_subnet_mlp(int64_t c_in, int64_t c_out, void *cfg) {
  vg_flow_subnet_cfg *c = cfg;
  vg_nn_module *m = vg_flow_subnet_mlp_new(c_in, c_out, cfg_hidden(c, c_in), c->seed);
  c->seed += 2;
  return m;
}
