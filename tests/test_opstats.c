/* test_opstats: FLOP counting at the op dispatch (tensor/opstats.h) — conv2d, its two
 * backward ops, matmul and elementwise ops against hand-computed counts; off = no count. */
#include "tests/vgtest.h"
#include "tensor/opstats.h"
#include "autograd/autograd.h"

int main(void) {
  vg_scope_begin();
  vg_tensor *x = vg_rand(4, (int64_t[]){2, 3, 10, 9}, 1);
  vg_tensor *w = vg_rand(4, (int64_t[]){8, 3, 4, 3}, 2);
  vg_tensor *b = vg_rand(1, (int64_t[]){8}, 3);
  vg_requires_grad_(w, true);
  vg_opstats s;
  vg_opstats_start();
  vg_tensor *y = vg_conv2d(x, w, b, (vg_conv2d_opts){.sh = 1, .sw = 1, .ph = 1, .pw = 0});   /* 2x8x9x7 */
  vg_opstats_stop(&s);
  double no = 2.0 * 8 * 9 * 7;
  VG_CHECK(y && s.calls[VG_OP_CONV2D] == 1, "one conv2d counted");
  VG_CHECK(s.flops[VG_OP_CONV2D] == 2.0 * no * 3 * 4 * 3 + no, "conv2d: 2 * MACs + bias adds (%g)", s.flops[VG_OP_CONV2D]);
  VG_CHECK(s.mac_flops == s.flops[VG_OP_CONV2D] && s.other_flops == 0, "conv counted as MAC work");
  vg_opstats_start();
  vg_tensor *loss = vg_sum_all(vg_relu(y));
  vg_backward(loss);
  vg_opstats_stop(&s);
  VG_CHECK(s.calls[VG_OP_CONV2D_BWD_WEIGHT] == 1 && s.flops[VG_OP_CONV2D_BWD_WEIGHT] == 2.0 * no * 3 * 4 * 3,
           "conv2d weight gradient: as many MACs as the forward (%g)", s.flops[VG_OP_CONV2D_BWD_WEIGHT]);
  VG_CHECK(s.calls[VG_OP_CONV2D_BWD_DATA] == 0, "no input gradient when x does not require grad");
  VG_CHECK(s.calls[VG_OP_RELU] == 1 && s.flops[VG_OP_RELU] == no, "relu: one op per output (%g)", s.flops[VG_OP_RELU]);
  vg_no_grad_begin();
  vg_opstats_start();
  vg_conv2d(x, w, b, (vg_conv2d_opts){.sh = 1, .sw = 1, .ph = 1, .pw = 0, .act = VG_ACT_RELU});
  vg_opstats_stop(&s);
  vg_no_grad_end();
  VG_CHECK(s.calls[VG_OP_CONV2D] == 1 && s.calls[VG_OP_RELU] == 0 && s.flops[VG_OP_CONV2D] == 2.0 * no * 3 * 4 * 3 + no &&
               s.other_flops == no,
           "conv2d with a fused relu: the conv's MACs + bias, and the relu's one op per output in other (%g)", s.other_flops);
  vg_opstats_start();
  vg_tensor *m = vg_matmul(vg_rand(2, (int64_t[]){5, 7}, 4), vg_rand(2, (int64_t[]){7, 6}, 5));
  vg_opstats_stop(&s);
  VG_CHECK(m && s.flops[VG_OP_MATMUL] == 2.0 * 5 * 6 * 7, "matmul: 2 * M * N * K (%g)", s.flops[VG_OP_MATMUL]);
  VG_CHECK(s.other_flops == 0, "the random inputs count no flops (%g)", s.other_flops);
  vg_matmul(m, vg_rand(2, (int64_t[]){6, 2}, 6));
  vg_opstats s2;
  vg_opstats_stop(&s2);
  VG_CHECK(!vg_opstats_on() && s2.calls[VG_OP_MATMUL] == 1, "nothing counted while off (stop keeps the last window)");
  vg_scope_end();
  return vg_test_finish();
}
