/* flow_weights.h — the deterministic "sine formula" weights that tools/gen_flow_fixtures.py,
 * gen_fastflow_fixtures.py and gen_cflow_fixtures.py also use, so flow fixtures need not
 * store parameters. For a state-dict entry `name` with n values:
 *   h = (sum of the name's bytes) % 97
 *   s = 0.3 for *.global_scale, 0.2 for *.vk_householder, 1/sqrt(n/shape[0]) for tensors
 *       with >= 2 dims, 0.1 otherwise
 *   w[i] = s * sin(0.7 i + 1.3 h + 0.1), ADDED to the current value for *.global_scale
 *   (which keeps FrEIA's init) and assigned otherwise. */
#ifndef VG_TEST_FLOW_WEIGHTS_H
#define VG_TEST_FLOW_WEIGHTS_H
#include "tensor/tensor.h"
void vg_test_flow_weights(const char *name, vg_tensor *t);
#endif
