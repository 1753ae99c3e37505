/* test_kmath.c — the shared kernel math of tensor/kmath/ (one source for the CPU kernels
 * and the CUDA kernels): each function against its definition, on the edge cases where
 * a hand-synced twin would drift (NaN and -0 keys, padded and clamped windows, dtype
 * wrap-around, broadcast strides). */
#include "tests/vgtest.h"
#include "tensor/kmath/bits.h"
#include "tensor/kmath/conv_geom.h"
#include "tensor/kmath/index.h"
#include "tensor/kmath/interp.h"
#include "tensor/kmath/matmul.h"
#include "tensor/kmath/philox.h"
#include "tensor/kmath/pool_window.h"
#include "tensor/kmath/reduce.h"
#include "tensor/kmath/select.h"
#include "tensor/kmath/window.h"
#include "tensor/tensor.h"

static uint32_t bits(float f) { return vg_f2u(f); }

static void test_philox(void) {
  /* Random123's known answer for Philox4x32-10: counter 0, key 0 */
  vg_philox4 r = vg_philox(0, 0, 0);
  VG_CHECK(r.v[0] == 0x6627e8d5u && r.v[1] == 0xe169c58du && r.v[2] == 0xbc57ac4cu && r.v[3] == 0x9b00dbd8u,
           "philox4x32-10 known answer (ctr 0, key 0): %08x %08x %08x %08x", r.v[0], r.v[1], r.v[2], r.v[3]);
  bool in = true, same = true, words = true;
  for (uint64_t i = 0; i < 4096; i++) {
    float u = vg_philox_uniform_at(77, i);
    in &= u >= 0.0f && u < 1.0f;
    same &= bits(vg_philox_draw(false, 77, i, -2.0f, 3.0f)) == bits(-2.0f + 5.0f * u);
    same &= bits(vg_philox_draw(true, 77, i, 1.0f, 0.5f)) == bits(1.0f + 0.5f * vg_philox_normal_at(77, i));
    words &= vg_philox_u32_at(77, i) == vg_philox(i >> 2, 2, 77).v[i & 3];
  }
  VG_CHECK(in, "uniform draws lie in [0, 1)");
  VG_CHECK(same, "vg_philox_draw is a + (b - a) u (uniform) and a + b n (normal)");
  VG_CHECK(words, "raw u32 stream is stream 2, word i & 3 of block i >> 2");
  VG_CHECK(vg_philox_uniform_at(1, 5) != vg_philox_uniform_at(2, 5), "another seed, another number");
}

static void test_select_keys(void) {
  const float v[] = {-INFINITY, -3e38f, -1.0f, -1e-45f, -0.0f, 0.0f, 1e-45f, 1.0f, 3e38f, INFINITY};
  const int n = (int)(sizeof v / sizeof v[0]);
  bool ordered = true, round = true;
  for (int i = 0; i < n; i++) {
    if (i) ordered &= vg_sel_key(v[i - 1]) < vg_sel_key(v[i]);
    round &= bits(vg_sel_key_to_float(vg_sel_key(v[i]))) == bits(v[i]);
  }
  VG_CHECK(ordered, "key order is the float order, -0 before +0, +inf below NaN");
  VG_CHECK(round, "key -> float gives the element back bit for bit");
  float qn = vg_u2f(0x7fc00000u), nn = vg_u2f(0xffc00001u), sn = vg_u2f(0x7f800001u);
  VG_CHECK(vg_sel_key(qn) == 0xffffffffu && vg_sel_key(nn) == 0xffffffffu && vg_sel_key(sn) == 0xffffffffu,
           "every NaN (quiet, negative, signalling) keys as 0xffffffff, the largest");
  VG_CHECK(vg_sel_key(INFINITY) >> 21 != 0x7ffu && vg_sel_key(qn) >> 21 == 0x7ffu,
           "the top digit-0 bucket holds exactly the NaNs");
  VG_CHECK(bits(vg_sel_key_to_float(0xffffffffu)) == VG_QNAN_BITS, "the NaN key reads back as the quiet NaN");
  bool digits = true;
  for (int i = 0; i < n; i++) {
    uint32_t k = vg_sel_key(v[i]);
    uint32_t d0 = vg_sel_digit(k, 0), d1 = vg_sel_digit(k, 1), d2 = vg_sel_digit(k, 2);
    uint32_t p1 = vg_sel_extend(0, 0, d0), p2 = vg_sel_extend(p1, 1, d1);
    digits &= d0 < 2048 && d1 < 2048 && d2 < 1024 && vg_sel_high(k, 1) == p1 && vg_sel_high(k, 2) == p2 &&
              vg_sel_extend(p2, 2, d2) == k;
  }
  VG_CHECK(digits, "digits [31:21] [20:10] [9:0] recompose the key; high digits match the prefix");
  VG_CHECK(vg_sort_key(-0.0f, false) == vg_sort_key(0.0f, false) && vg_sort_key(-0.0f, true) == vg_sort_key(0.0f, true),
           "sort: -0 and +0 tie (stable order decides)");
  VG_CHECK(vg_sort_key(2.0f, true) < vg_sort_key(1.0f, true) && vg_sort_key(qn, true) < vg_sort_key(5.0f, true),
           "sort descending: larger first, NaN first");
  static const unsigned long long h4[4] = {2, 0, 3, 1};
  int64_t r1 = 1, r3 = 3, r6 = 6, r7 = 7;
  int b1 = vg_sel_pick(h4, 4, &r1), b3 = vg_sel_pick(h4, 4, &r3), b6 = vg_sel_pick(h4, 4, &r6);
  VG_CHECK(b1 == 0 && r1 == 1 && b3 == 2 && r3 == 1 && b6 == 3 && r6 == 1 && vg_sel_pick(h4, 4, &r7) == 4,
           "radix pick: the bucket of the k-th element (empty buckets skipped), rank inside; nb when short");
  static unsigned long long h[1024];
  h[5] = 2;
  h[9] = 1;
  uint32_t nx = 0, pre = 0x155;
  bool same = vg_sel_next_key(h, 5, 1, pre, &nx) && nx == vg_sel_extend(pre, 2, 5);
  bool later = vg_sel_next_key(h, 5, 2, pre, &nx) && nx == vg_sel_extend(pre, 2, 9);
  VG_CHECK(same && later && !vg_sel_next_key(h, 9, 1, pre, &nx),
           "next key: a tie in the bucket, the next non-empty bucket, else a min-above pass");
  uint32_t k1 = vg_sel_key(1.0f), k3 = vg_sel_key(3.0f);
  VG_CHECK(bits(vg_kth_result(0, true, k1, k3, 0.5f)) == bits(1.0f), "kth mode 0: the k-th value, NaN elsewhere ignored");
  VG_CHECK(vg_kth_result(1, true, k1, k3, 0.5f) != vg_kth_result(1, true, k1, k3, 0.5f), "quantile: NaN if any NaN");
  VG_CHECK(vg_kth_result(1, false, k1, k3, 0.25f) == 1.5f && vg_kth_result(1, false, k1, k3, 0.75f) == 2.5f &&
               vg_kth_result(1, false, k1, k1, 0.9f) == 1.0f,
           "quantile: lerp(v_k, v_k_hi, w) on both branches of torch's lerp");
}

static void test_pool_windows(void) {
  bool avg_ok = true, max_ok = true, ad_ok = true;
  for (int64_t H = 1; H <= 9; H++)
    for (int64_t k = 1; k <= 4; k++)
      for (int64_t s = 1; s <= 3; s++)
        for (int64_t p = 0; p <= k / 2; p++)
          for (int inc = 0; inc < 2; inc++) {
            vg_pool_geom g = {.planes = 1, .H = H, .W = 1, .OH = (H + 2 * p - k) / s + 1, .OW = 1, .kh = k, .kw = 1,
                              .sh = s, .sw = 1, .ph = p, .pw = 0, .include_pad = inc};
            for (int64_t o = 0; o < g.OH; o++) {
              int64_t lo = H, hi = -1, padded = 0;   /* brute force over the window's taps */
              for (int64_t t = 0; t < k; t++) {
                int64_t i = o * s - p + t;
                if (i < H + p) padded++;
                if (i >= 0 && i < H) {
                  lo = i < lo ? i : lo;
                  hi = i + 1 > hi ? i + 1 : hi;
                }
              }
              int64_t h0, h1, w0, w1;
              float div = vg_avg_window(&g, o, 0, &h0, &h1, &w0, &w1);
              float want = inc ? (float)padded : (float)(hi - lo);
              avg_ok &= h0 == lo && h1 == hi && w0 == 0 && w1 == 1 && div == want;
              vg_max_window(&g, o, 0, &h0, &h1, &w0, &w1);
              max_ok &= h0 == lo && h1 == hi;
            }
            int64_t prev_end = 0;
            for (int64_t o = 0; o < k + 1; o++) {   /* adaptive: H -> k + 1 outputs */
              int64_t a = vg_adaptive_start(o, H, k + 1), b = vg_adaptive_end(o, H, k + 1);
              ad_ok &= a == (int64_t)floor((double)o * H / (k + 1)) && b == (int64_t)ceil((double)(o + 1) * H / (k + 1)) &&
                       a < b && a <= prev_end;
              prev_end = b;
            }
            ad_ok &= prev_end == H;
          }
  VG_CHECK(avg_ok, "avg windows: clamped bounds and divisor (padded count or clamped count) as brute force");
  VG_CHECK(max_ok, "max windows: the taps inside the input");
  VG_CHECK(ad_ok, "adaptive windows: [floor(o*in/out), ceil((o+1)*in/out)) cover the input in order");
  VG_CHECK(vg_max_takes(NAN, 1.0f) && vg_max_takes(2.0f, 1.0f) && !vg_max_takes(1.0f, 1.0f) && !vg_max_takes(1.0f, NAN),
           "max rule: larger or NaN takes; ties keep the first; nothing beats NaN");
  float bv = 1.0f;
  int64_t best = 0;
  const float row[] = {3.0f, 3.0f, NAN, 9.0f};
  for (int64_t i = 0; i < 4 && bv == bv; i++) vg_argmax_step(row[i], i + 1, &bv, &best);
  VG_CHECK(best == 3 && bv != bv, "argmax: the first maximum, then the first NaN (got %lld)", (long long)best);
  VG_CHECK(vg_adaptive_mean(6.0f, 0, 2, 1, 4) == 1.0f, "adaptive mean divides by the window's rows and columns");
}

static void test_conv_interp(void) {
  bool ok = true;
  for (int64_t n = 1; n <= 12; n++)
    for (int64_t k = 1; k <= 4; k++)
      for (int64_t s = 1; s <= 3; s++)
        for (int64_t p = 0; p <= 2; p++)
          for (int64_t d = 1; d <= 2; d++) {
            if (n + 2 * p < d * (k - 1) + 1) continue;
            int64_t count = 0;   /* outputs whose last tap stays inside the padded input */
            while (VG_CONV_SRC(count, s, p, k - 1, d) <= n - 1 + p) count++;
            ok &= vg_conv_out_size(n, k, s, p, d) == count;
          }
  VG_CHECK(ok, "conv output size counts the windows that fit the padded input");
  VG_CHECK(VG_CONV_SRC(3, 2, 1, 2, 3) == 11, "conv source index o*s - p + t*d");
  float s = vg_bn_fold_scale(2.0f, 3.0f, 1.0f);
  VG_CHECK(s == 1.0f && vg_bn_fold_bias(5.0f, 1.0f, 0.5f, 0.25f) == 2.25f, "bn fold: gamma/sqrt(var+eps), (b-m)s+beta");
  bool taps = true;
  for (int64_t in = 1; in <= 7; in++)
    for (int64_t out = 1; out <= 9; out++)
      for (int al = 0; al < 2; al++)
        for (int64_t o = 0; o < out; o++) {
          lerp_tap t = vg_lerp_tap(o, in, out, al);
          taps &= t.i0 >= 0 && t.i0 < in && t.i1 >= t.i0 && t.i1 < in && t.l0 >= 0 && t.l1 >= 0 &&
                  t.l0 + t.l1 == 1.0f && (in != out || (t.i0 == o && t.l0 == 1.0f));
        }
  VG_CHECK(taps, "bilinear taps: indices in range, weights sum to 1, identity when sizes match");
  lerp_tap h = {0, 1, 0.25f, 0.75f}, w = {0, 1, 0.5f, 0.5f};
  VG_CHECK(vg_bilinear(h, w, 1, 3, 5, 7) == 0.25f * 2 + 0.75f * 6, "bilinear blend of the four neighbours");
}

static void test_misc(void) {
  char a[8], b[8];
  int32_t i32 = INT32_MAX, one = 1;
  memcpy(a, &i32, 4);
  memcpy(b, &one, 4);
  vg_add_elem(a, b, VG_I32);
  memcpy(&i32, a, 4);
  VG_CHECK(i32 == INT32_MIN, "add_elem i32 wraps");
  uint8_t t = 1, f = 0;
  vg_add_elem((char *)&t, (const char *)&t, VG_BOOL);
  vg_add_elem((char *)&f, (const char *)&f, VG_BOOL);
  VG_CHECK(t == 1 && f == 0, "add_elem bool is or");
  uint16_t x = vg_hd_float_to_half(1.0f), y = vg_hd_float_to_half(0.5f);
  vg_add_elem((char *)&x, (const char *)&y, VG_F16);
  VG_CHECK(vg_hd_half_to_float(x) == 1.5f, "add_elem f16 adds through float");
  VG_CHECK(vg_reduce_init(VG_OP_SUM) == 0.0 && vg_reduce_init(VG_OP_AMAX) == -INFINITY && vg_reduce_init(VG_OP_AMIN) == INFINITY,
           "reduce identities");
  double nanv = vg_reduce_combine(VG_OP_AMAX, 1.0, NAN);
  VG_CHECK(nanv != nanv && vg_reduce_combine(VG_OP_AMIN, 1.0, 2.0) == 1.0 && vg_reduce_combine(VG_OP_SUM, 1.0, 2.0) == 3.0,
           "reduce combine: NaN propagates through amax/amin");
  const int64_t shape[3] = {2, 3, 4}, stride[3] = {1, 8, 2};   /* a permuted view */
  bool off = true;
  for (int64_t i = 0; i < 24; i++) off &= vg_unravel_offset(i, 3, shape, stride) == (i / 12) * 1 + (i / 4 % 3) * 8 + (i % 4) * 2;
  VG_CHECK(off, "unravel: row-major logical index to storage offset");
  vg_scope_begin();
  vg_tensor *m = vg_zeros(VG_F32, 3, (int64_t[]){1, 4, 5});
  int tr = -1;
  int64_t ld = 0, bs[2] = {9, 9};
  VG_CHECK(vg_mat_layout(m, &tr, &ld) && tr == 0 && ld == 5, "matmul layout: row-major, ld = row stride");
  vg_tensor *mt = vg_transpose(m, 1, 2);
  VG_CHECK(vg_mat_layout(mt, &tr, &ld) && tr == 1 && ld == 5, "matmul layout: a transposed view is column-major");
  vg_mat_batch_strides(m, 2, bs);
  VG_CHECK(bs[0] == 0 && bs[1] == 0, "matmul batch strides: broadcast dims have stride 0");
  vg_pad_params pp = {.npairs = 2, .pads = {1, 2, 3, 4}};
  int64_t start[3];
  vg_pad_starts(&pp, 3, start);
  VG_CHECK(start[0] == 0 && start[1] == 3 && start[2] == 1, "pad starts: pairs from the last dim backwards");
  vg_tensor *big = vg_zeros(VG_F32, 3, (int64_t[]){3, 6, 7});
  vg_tensor view = vg_window_view(big, start, m);
  VG_CHECK(view.shape[1] == 4 && view.shape[2] == 5 && view.offset == big->offset + 3 * 7 + 1, "window view: src's shape at start");
  vg_scope_end();
}

int main(void) {
  test_philox();
  test_select_keys();
  test_pool_windows();
  test_conv_interp();
  test_misc();
  return vg_test_finish();
}
