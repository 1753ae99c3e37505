/* test_op_table.c — runs every row of tests/op_table.def (one row per op of tensor/ops.def;
 * the row format is documented there) in every mode:
 *   cpu    scalar path vs each SIMD path the CPU has (vg_cpu_set_isa): forward + input grads;
 *          non-contiguous inputs vs contiguous ones ("stride"); and the row executes its op
 *          (opstats calls > 0; fill and random run their kernels directly, uncounted);
 *   torch  forward + grads of sum(out * R) vs tests/fixtures/ops/op_table.vgfx (written by
 *          tools/gen_op_table_fixtures.py from the same table; inputs stored in it, and a
 *          CRC of each row's torch expression, so an edited row with a stale fixture fails);
 *   grad   vg_gradcheck of every OT_GRAD row (bound 2e-2, OT_GRAD_WIDE 5e-2, eps 1e-2);
 *   cuda   CUDA (device or CUDA_EMU) vs CPU, forward + grads, contiguous and non-contiguous
 *          ("cudanc") inputs, and f16 forwards of OT_F16 rows ("cuda16"); one SKIP line for
 *          the whole mode when there is no CUDA backend;
 *   time   VIGIL_OPTEST_TIME=1: ns per forward call of each row (printed, never checked).
 * T_VIA rows: in the cpu and cuda modes, running the row of the covering op with grads
 * must execute the op (opstats calls > 0); its results are compared there.
 * Coverage is checked at compile time: every ops.def row names op_row_<NAME>, which only
 * its T / T_VIA row in op_table.def defines. At run time: every T row of a differentiable
 * op checks grads (OT_GRAD). */
#include "tests/vgtest.h"
#include "tests/common/fixture.h"
#include "tensor/tensor.h"
#include "tensor/parallel.h"
#include "tensor/opstats.h"
#include "autograd/autograd.h"
#include "base/inflate.h"
#include <time.h>

/* ---- the helpers rows use (op_table.def's header lists them) ---- */
#define S(...) ((const int64_t[]){__VA_ARGS__})
#define D(...) ((const int[]){__VA_ARGS__})
#define OT_IDX(t) vg_cast((t), VG_I64)
#define OT_DEV ot_dev
#define OT_AUX ot_aux
#define OT_GRAD 1u
#define OT_GRAD_WIDE 2u
#define OT_F16 4u
#define OT_NOGRAD(i) (1u << (8 + (i)))
#define OT_MAX_IN 6

static vg_device ot_dev = VG_CPU;
static vg_tensor *ot_aux;

/* conv_bn_fold's two outputs side by side: [w_out.flatten(), b_out] */
static vg_tensor *ot_conv_bn_fold(vg_tensor **in, float eps) {
  vg_tensor *w = NULL, *b = NULL;
  if (vg_conv_bn_fold(in[0], in[1], in[2], in[3], in[4], in[5], eps, &w, &b) != VG_OK) return NULL;
  vg_tensor *parts[2] = {vg_reshape(w, 1, S(-1)), b};
  return vg_concat(2, parts, 0);
}
static vg_tensor *ot_uniform(vg_tensor *t, float lo, float hi, uint64_t seed) {
  return t && vg_uniform_(t, lo, hi, seed) == VG_OK ? t : NULL;
}
static vg_tensor *ot_normal(vg_tensor *t, float mean, float std, uint64_t seed) {
  return t && vg_normal_(t, mean, std, seed) == VG_OK ? t : NULL;
}

/* ---- the table, expanded twice: row functions (and the op_row_ symbols), then rows ---- */
#define OT_BR(...) {__VA_ARGS__}
#define IN(shape, lo, hi) {(int)(sizeof((int64_t[])OT_BR shape) / sizeof(int64_t)), OT_BR shape, lo, hi}
#define INS(...) {__VA_ARGS__}
#define NOIN {{0}}

#define T(NAME, INPUTS, EXPR, TORCH, TOL, FLAGS)                      \
  static vg_tensor *ot_fn_##NAME(vg_tensor **in) { (void)in; return EXPR; } \
  enum { op_row_##NAME = 1 };
#define T_MORE(NAME, TAG, INPUTS, EXPR, TORCH, TOL, FLAGS) \
  static vg_tensor *ot_fn_##NAME##_##TAG(vg_tensor **in) { (void)in; return EXPR; }
#define T_VIA(NAME, BY, HOW) enum { op_row_##NAME = op_row_##BY };
#include "tests/op_table.def"
#undef T
#undef T_MORE
#undef T_VIA

typedef struct {
  int ndim;
  int64_t shape[VG_MAX_DIMS];
  double lo, hi;
} ot_in;

enum { OT_ROW, OT_MORE, OT_VIA };
typedef struct {
  vg_op op;
  const char *key;     /* "NAME" or "NAME.tag": fixture keys and output rows */
  int kind;
  vg_op via;           /* T_VIA: the op whose row covers this one */
  const char *how;
  ot_in in[OT_MAX_IN];
  vg_tensor *(*fn)(vg_tensor **in);
  const char *torch;
  double tol;
  unsigned flags;
} ot_row;

#define T(NAME, INPUTS, EXPR, TORCH, TOL, FLAGS) \
  {VG_OP_##NAME, #NAME, OT_ROW, VG_OP_COUNT, NULL, INPUTS, ot_fn_##NAME, TORCH, TOL, FLAGS},
#define T_MORE(NAME, TAG, INPUTS, EXPR, TORCH, TOL, FLAGS) \
  {VG_OP_##NAME, #NAME "." #TAG, OT_MORE, VG_OP_COUNT, NULL, INPUTS, ot_fn_##NAME##_##TAG, TORCH, TOL, FLAGS},
#define T_VIA(NAME, BY, HOW) {VG_OP_##NAME, #NAME, OT_VIA, VG_OP_##BY, HOW, NOIN, NULL, NULL, 0, 0},
static const ot_row ROWS[] = {
#include "tests/op_table.def"
};
#undef T
#undef T_MORE
#undef T_VIA
#define NROWS ((int)(sizeof ROWS / sizeof ROWS[0]))

/* compile-time coverage: an op without a row is "'op_row_NAME' undeclared" */
static int ot_rows_per_op[VG_OP_COUNT] = {
#define X(NAME, str, arity, diff, fam, params) [VG_OP_##NAME] = op_row_##NAME,
#include "tensor/ops.def"
#undef X
};

/* ---- evaluation ---- */
typedef struct {
  bool ok;
  int ndim;
  int64_t shape[VG_MAX_DIMS];
  int64_t n;
  float *v;
} ot_val;

static int row_nin(const ot_row *r) {
  int n = 0;
  while (n < OT_MAX_IN && r->in[n].ndim > 0) n++;
  return n;
}
static bool wants_grad(const ot_row *r, int i) { return (r->flags & OT_GRAD) && !(r->flags & OT_NOGRAD(i)); }

static void val_free(ot_val *v) {
  free(v->v);
  memset(v, 0, sizeof *v);
}
static void val_of(ot_val *v, const vg_tensor *t) {
  memset(v, 0, sizeof *v);
  if (!t) return;
  v->ndim = t->ndim;
  memcpy(v->shape, t->shape, sizeof v->shape);
  v->n = vg_numel(t);
  v->v = malloc(sizeof(float) * (size_t)(v->n ? v->n : 1));
  v->ok = vg_to_host(t, VG_F32, v->v) == VG_OK;
}
static float half_round(float x) { return vg_half_to_float(vg_float_to_half(x)); }

/* Inputs of row r as heap CPU f32 tensors, uniform in the row's ranges (Philox, seeded by the
 * row's key and the input: a row's inputs do not change when rows are added). f16 rounds
 * them to f16. */
static void make_inputs(const ot_row *r, vg_tensor **in, bool f16) {
  uint64_t seed = (uint64_t)vg_crc32(0, (const uint8_t *)r->key, strlen(r->key)) * 16;   /* per row, stable */
  for (int i = 0; i < row_nin(r); i++) {
    in[i] = vg_tensor_new(VG_F32, r->in[i].ndim, r->in[i].shape);
    vg_uniform_(in[i], (float)r->in[i].lo, (float)r->in[i].hi, seed + (uint64_t)i);
    if (f16) {
      float *p = vg_f32(in[i]);
      for (int64_t k = 0; k < vg_numel(in[i]); k++) p[k] = half_round(p[k]);
    }
  }
}
static void free_inputs(const ot_row *r, vg_tensor **in) {
  for (int i = 0; i < row_nin(r); i++) vg_tensor_free(in[i]);
}

/* region mode: the row's forward runs in a vg_fwd_region (autograd.h) that frees what no
 * backward rule reads; freed memory is then reused and scribbled on (NaN bytes) before the
 * backward, so a rule reading a tensor vg_backward_saves does not list sees garbage (and
 * ASan a use after free) */
static int ot_region;   /* 1: inputs and output through exact copies (the reference), 2: and in a region */
enum { OT_CLOBBER = 40 };
static void *ot_clobber[OT_CLOBBER];
static void clobber_freed(void) {
  for (int i = 0; i < OT_CLOBBER; i++) {
    size_t n = (size_t)64 << (i / 2);   /* 64 B .. 32 MB, two of each */
    if (n > ((size_t)32 << 20)) n = (size_t)32 << 20;
    ot_clobber[i] = malloc(n);
    if (ot_clobber[i]) memset(ot_clobber[i], 0xff, n);
  }
}
static void clobber_release(void) {
  for (int i = 0; i < OT_CLOBBER; i++) {
    free(ot_clobber[i]);
    ot_clobber[i] = NULL;
  }
}

/* Runs r on dev from host inputs src: the forward into out, and with grads the input grads
 * of sum(out * R) into g[i] (R: a fixture tensor of out's size, or Philox when NULL). f16: inputs
 * cast to f16 on dev. strided: each input is a non-contiguous view (every other element of
 * a leaf with a trailing dim of 2: the same values, doubled strides), grads read through it.
 * stats: opstats of the run (forward + backward) when not NULL. */
static void eval_row(const ot_row *r, vg_device dev, vg_tensor *const *src, const vg_fx_tensor *R, bool grads, bool f16,
                     bool strided, ot_val *out, ot_val *g, vg_opstats *stats) {
  int nin = row_nin(r);
  memset(out, 0, sizeof *out);
  for (int i = 0; i < nin; i++) memset(&g[i], 0, sizeof g[i]);
  vg_scope_begin();
  vg_tensor *in[OT_MAX_IN] = {0}, *leaf[OT_MAX_IN] = {0};
  for (int i = 0; i < nin; i++) {
    vg_tensor *x = dev == VG_CPU ? vg_clone(src[i]) : vg_to_device(src[i], dev);   /* a leaf of this scope */
    if (f16 && x) x = vg_cast(x, VG_F16);
    if (strided && x) {
      int64_t shape2[VG_MAX_DIMS];
      memcpy(shape2, x->shape, sizeof(int64_t) * (size_t)x->ndim);
      shape2[x->ndim] = 2;
      x = vg_clone(vg_expand(vg_unsqueeze(x, x->ndim), x->ndim + 1, shape2));
    }
    leaf[i] = x;
    if (grads && wants_grad(r, i) && x) vg_requires_grad_(x, true);
    in[i] = strided && x ? vg_select(x, x->ndim - 1, 0) : x;
  }
  ot_dev = dev;
  ot_aux = NULL;
  if (stats) vg_opstats_start();
  vg_fwd_region reg = {0};
  if (ot_region) {   /* inputs and output intermediates of the region: exact copies (1 x + -0) */
    if (ot_region == 2) reg = vg_fwd_region_begin();
    for (int i = 0; i < nin; i++)
      if (in[i] && in[i]->dtype == VG_F32) in[i] = vg_affine(in[i], 1.0f, -0.0f);
  }
  vg_tensor *y = r->fn(in);
  if (ot_region) {
    if (y && y->dtype == VG_F32) y = vg_affine(y, 1.0f, -0.0f);
    if (ot_region == 2) {
      vg_fwd_region_end(reg, 2, (vg_tensor *[]){y, ot_aux});
      clobber_freed();
    }
  }
  val_of(out, y);
  if (y && grads && (!R || R->n == vg_numel(y))) {   /* (a wrong output size fails the forward check) */
    vg_tensor *rt;
    if (R) rt = vg_from_data(VG_F32, y->ndim, y->shape, R->data);
    else rt = vg_affine(vg_rand(y->ndim, y->shape, 4242), 2, -1);
    vg_tensor *L = vg_sum_all(vg_mul(y, vg_to_device(rt, dev)));
    if (L && vg_backward(L) == VG_OK) {
      for (int i = 0; i < nin; i++) {
        if (!wants_grad(r, i) || !leaf[i]->grad) continue;
        vg_tensor *gl = leaf[i]->grad;
        val_of(&g[i], strided ? vg_select(gl, gl->ndim - 1, 0) : gl);
      }
    }
  }
  if (stats) vg_opstats_stop(stats);
  if (ot_region == 2) clobber_release();
  for (int i = 0; i < nin; i++)
    if (leaf[i] && leaf[i]->grad) vg_zero_grad_(leaf[i]);
  vg_scope_end();
  ot_aux = NULL;
  ot_dev = VG_CPU;
}

/* Compares got with want: same shape, |got - want| <= tol (|want| + max|want|) + extra_rel
 * |want| + atol per element. Returns true when close; sets msg on failure. */
static bool close_vals(const ot_val *got, const ot_val *want, double tol, double extra_rel, double atol, char *msg,
                       size_t cap, const char *what) {
  if (!want->v || !want->ok) {
    snprintf(msg, cap, "%s: no reference", what);
    return false;
  }
  if (!got->v || !got->ok) {
    snprintf(msg, cap, "%s: no result (%s)", what, vg_last_error());
    return false;
  }
  bool shape = got->ndim == want->ndim;
  for (int d = 0; shape && d < want->ndim; d++) shape = got->shape[d] == want->shape[d];
  if (!shape || got->n != want->n) {
    snprintf(msg, cap, "%s: shape differs (%d dims, %lld elements; want %d dims, %lld elements)", what, got->ndim,
             (long long)got->n, want->ndim, (long long)want->n);
    return false;
  }
  double scale = 0;
  for (int64_t i = 0; i < want->n; i++) scale = fmax(scale, fabs(want->v[i]));
  for (int64_t i = 0; i < want->n; i++) {
    double a = got->v[i], b = want->v[i];
    double bound = tol * (fabs(b) + scale) + extra_rel * fabs(b) + atol;
    bool same = a == b || (isnan(a) && isnan(b));
    if (!same && !(fabs(a - b) <= bound)) {
      snprintf(msg, cap, "%s: element %lld: %.9g vs %.9g (bound %.3g)", what, (long long)i, a, b, bound);
      return false;
    }
  }
  return true;
}

/* forward + grads of two runs; one check line */
static void compare_runs(const ot_row *r, const char *mode, const ot_val *y, const ot_val *g, const ot_val *y0,
                         const ot_val *g0, bool grads, double extra_rel, double atol) {
  char msg[256] = "", what[48];
  bool ok = close_vals(y, y0, r->tol, extra_rel, atol, msg, sizeof msg, "forward");
  int ngrad = 0;
  for (int i = 0; ok && grads && i < row_nin(r); i++) {
    if (!wants_grad(r, i)) continue;
    snprintf(what, sizeof what, "grad of input %d", i);
    ok = close_vals(&g[i], &g0[i], r->tol, extra_rel, atol, msg, sizeof msg, what);
    ngrad++;
  }
  VG_CHECK(ok, "%-6s %-28s forward%s%s%s", mode, r->key, grads ? " + input grads" : "", ok ? "" : ": ", msg);
}

static void free_vals(int n, ot_val *y, ot_val *g) {
  val_free(y);
  for (int i = 0; i < n; i++) val_free(&g[i]);
}

/* ---- modes ---- */
static const ot_row *row_of(vg_op op) {
  for (int k = 0; k < NROWS; k++)
    if (ROWS[k].op == op && ROWS[k].kind == OT_ROW) return &ROWS[k];
  return NULL;
}

/* T_VIA: running the covering row with grads on dev executes the op */
static void check_via(const ot_row *v, vg_device dev, const char *mode) {
  const ot_row *by = row_of(v->via);
  bool ok = by && (by->flags & OT_GRAD);
  int64_t calls = 0;
  if (ok) {
    vg_tensor *in[OT_MAX_IN];
    make_inputs(by, in, false);
    ot_val y, g[OT_MAX_IN];
    vg_opstats st;
    eval_row(by, dev, in, NULL, true, false, false, &y, g, &st);
    calls = st.calls[v->op];
    free_vals(row_nin(by), &y, g);
    free_inputs(by, in);
  }
  VG_CHECK(ok && calls > 0, "%-6s %-28s via %s (%s): %lld calls", mode, v->key, vg_op_name(v->via), v->how,
           (long long)calls);
}

/* ops whose front-ends run the backend kernel directly (vg_backend_exec: fill, random) or
 * make headers only (views without autograd): opstats does not see them */
static bool ot_undispatched(vg_op op) {
  return op == VG_OP_FILL || op == VG_OP_RAND_UNIFORM || op == VG_OP_RAND_NORMAL;
}

static void mode_cpu(void) {
  vg_isa max = vg_cpu_isa_max(), keep = vg_cpu_isa();
  if (max == VG_ISA_SCALAR) {
    printf("SKIP cpu mode: this CPU has no SIMD path (scalar only)\n");
    return;
  }
  for (int k = 0; k < NROWS; k++) {
    const ot_row *r = &ROWS[k];
    if (r->kind == OT_VIA) {
      check_via(r, VG_CPU, "cpu");
      continue;
    }
    int nin = row_nin(r);
    bool grads = r->flags & OT_GRAD;
    vg_tensor *in[OT_MAX_IN];
    make_inputs(r, in, false);
    ot_val y0, g0[OT_MAX_IN];
    vg_cpu_set_isa(VG_ISA_SCALAR);
    eval_row(r, VG_CPU, in, NULL, grads, false, false, &y0, g0, NULL);
    for (int isa = VG_ISA_AVX2; isa <= (int)max; isa++) {
      vg_cpu_set_isa((vg_isa)isa);
      ot_val y, g[OT_MAX_IN];
      eval_row(r, VG_CPU, in, NULL, grads, false, false, &y, g, NULL);
      char mode[16];
      snprintf(mode, sizeof mode, "%s", vg_isa_name((vg_isa)isa));
      compare_runs(r, mode, &y, g, &y0, g0, grads, 0, 0);
      free_vals(nin, &y, g);
    }
    vg_cpu_set_isa(keep);
    /* non-contiguous inputs (the best path) vs contiguous ones (scalar), and the row runs its op */
    if (nin > 0) {
      ot_val y, g[OT_MAX_IN];
      eval_row(r, VG_CPU, in, NULL, grads, false, true, &y, g, NULL);
      compare_runs(r, "stride", &y, g, &y0, g0, grads, 0, 0);
      free_vals(nin, &y, g);
    }
    {
      ot_val y, g[OT_MAX_IN];
      vg_opstats st;
      eval_row(r, VG_CPU, in, NULL, grads, false, false, &y, g, &st);
      bool direct = ot_undispatched(r->op);   /* kernels run without vg_dispatch: not counted */
      VG_CHECK(direct || st.calls[r->op] > 0, "%-6s %-28s executes op %s (%lld calls%s)", "cpu", r->key,
               vg_op_name(r->op), (long long)st.calls[r->op], direct ? ", not counted: runs its kernel directly" : "");
      free_vals(nin, &y, g);
    }
    free_vals(nin, &y0, g0);
    free_inputs(r, in);
  }
  vg_cpu_set_isa(keep);
}

static vg_fixture *FX;
static const vg_fx_tensor *fx_get(const char *key, const char *suffix) {
  char name[160];
  snprintf(name, sizeof name, "%s.%s", key, suffix);
  return vg_fixture_get(FX, name);
}
static void fx_val(ot_val *v, const vg_fx_tensor *t) {
  memset(v, 0, sizeof *v);
  if (!t) return;
  v->ok = true;
  v->ndim = t->ndim;
  memcpy(v->shape, t->shape, sizeof v->shape);
  v->n = t->n;
  v->v = malloc(sizeof(float) * (size_t)(t->n ? t->n : 1));
  memcpy(v->v, t->data, sizeof(float) * (size_t)t->n);
}

static void mode_torch(void) {
  FX = vg_fixture_load(vg_test_fixture("ops/op_table.vgfx"));
  if (!VG_CHECK(FX != NULL, "torch  load tests/fixtures/ops/op_table.vgfx")) return;
  for (int k = 0; k < NROWS; k++) {
    const ot_row *r = &ROWS[k];
    if (r->kind == OT_VIA) continue;   /* compared through the covering row's grads */
    int nin = row_nin(r);
    bool grads = r->flags & OT_GRAD;
    /* the fixture is of this row: the CRC of its torch expression and its input shapes */
    uint32_t crc = vg_crc32(0, (const uint8_t *)r->torch, strlen(r->torch));
    const vg_fx_tensor *sig = fx_get(r->key, "sig");
    bool fresh = sig && sig->n == 2 && (uint32_t)sig->data[0] == crc >> 16 && (uint32_t)sig->data[1] == (crc & 0xffff);
    vg_tensor *in[OT_MAX_IN] = {0};
    for (int i = 0; fresh && i < nin; i++) {
      char sfx[8];
      snprintf(sfx, sizeof sfx, "in%d", i);
      const vg_fx_tensor *t = fx_get(r->key, sfx);
      fresh = t && t->ndim == r->in[i].ndim;
      for (int d = 0; fresh && d < t->ndim; d++) fresh = t->shape[d] == r->in[i].shape[d];
      if (fresh) {
        in[i] = vg_tensor_new(VG_F32, t->ndim, t->shape);
        memcpy(vg_f32(in[i]), t->data, sizeof(float) * (size_t)t->n);
      }
    }
    const vg_fx_tensor *want = fx_get(r->key, "out"), *R = fx_get(r->key, "r");
    fresh = fresh && want && (!grads || R);
    if (!VG_CHECK(fresh, "torch  %-28s fixture is of this row%s", r->key,
                  fresh ? "" : ": missing or stale: run /work/venv/bin/python tools/gen_op_table_fixtures.py")) {
      for (int i = 0; i < nin; i++) vg_tensor_free(in[i]);
      continue;
    }
    ot_val y, g[OT_MAX_IN], y0, g0[OT_MAX_IN];
    eval_row(r, VG_CPU, in, grads ? R : NULL, grads, false, false, &y, g, NULL);
    fx_val(&y0, want);
    if (y.ok && y.ndim == 0 && y0.ndim == 1 && y0.n == 1) y0.ndim = 0;   /* tools/fixtures.py stores 0-d as (1,) */
    for (int i = 0; i < nin; i++) {
      char sfx[8];
      snprintf(sfx, sizeof sfx, "grad%d", i);
      fx_val(&g0[i], wants_grad(r, i) ? fx_get(r->key, sfx) : NULL);
    }
    /* torch may be a float rounding off where Vigil is exact (tol 0 rows are exact) */
    compare_runs(r, "torch", &y, g, &y0, g0, grads, 0, 0);
    free_vals(nin, &y, g);
    free_vals(nin, &y0, g0);
    for (int i = 0; i < nin; i++) vg_tensor_free(in[i]);
  }
  vg_fixture_free(FX);
}

static vg_tensor *gc_fn(vg_tensor *const *in, void *ctx) {
  const ot_row *r = ctx;
  ot_aux = NULL;
  return r->fn((vg_tensor **)in);
}

static void mode_grad(void) {
  for (int k = 0; k < NROWS; k++) {
    const ot_row *r = &ROWS[k];
    if (r->kind == OT_VIA) continue;
    if (r->kind == OT_ROW && vg_op_differentiable(r->op))
      VG_CHECK(r->flags & OT_GRAD, "grad   %-28s the row of a differentiable op checks grads (OT_GRAD)", r->key);
    if (!(r->flags & OT_GRAD)) continue;
    vg_tensor *in[OT_MAX_IN];
    make_inputs(r, in, false);
    for (int i = 0; i < row_nin(r); i++) vg_requires_grad_(in[i], wants_grad(r, i));
    double bound = r->flags & OT_GRAD_WIDE ? 5e-2 : 2e-2;
    double err = vg_gradcheck(gc_fn, row_nin(r), in, (void *)r, 1e-2);
    VG_CHECK(err <= bound, "grad   %-28s gradcheck max rel err %.2e (bound %.0e)%s%s", r->key, err, bound,
             err <= bound ? "" : ": ", err <= bound ? "" : vg_last_error());
    free_inputs(r, in);
  }
}

static bool same_vals(const ot_val *a, const ot_val *b, const char *what, char *msg, size_t cap) {
  if (a->ok != b->ok || a->n != b->n || (a->n && (!a->v || !b->v))) {
    snprintf(msg, cap, "%s: %s", what, a->ok ? "size differs" : "no result");
    return false;
  }
  for (int64_t i = 0; i < a->n; i++)
    if (memcmp(&a->v[i], &b->v[i], sizeof(float)) != 0 && !(isnan(a->v[i]) && isnan(b->v[i]))) {
      snprintf(msg, cap, "%s: element %lld: %.9g vs %.9g", what, (long long)i, a->v[i], b->v[i]);
      return false;
    }
  return true;
}

/* region: every row with grads, its forward in a vg_fwd_region (the forward's intermediates
 * that no backward rule reads are freed): forward and input grads bit-identical */
static void mode_region(void) {
  for (int k = 0; k < NROWS; k++) {
    const ot_row *r = &ROWS[k];
    if (r->kind == OT_VIA || !(r->flags & OT_GRAD)) continue;
    int nin = row_nin(r);
    vg_tensor *in[OT_MAX_IN];
    make_inputs(r, in, false);
    ot_val y0, g0[OT_MAX_IN], y, g[OT_MAX_IN];
    ot_region = 1;
    eval_row(r, VG_CPU, in, NULL, true, false, false, &y0, g0, NULL);
    ot_region = 2;
    eval_row(r, VG_CPU, in, NULL, true, false, false, &y, g, NULL);
    ot_region = 0;
    char msg[160] = "";
    bool same = same_vals(&y, &y0, "forward", msg, sizeof msg);
    for (int i = 0; same && i < nin; i++) {
      char what[24];
      snprintf(what, sizeof what, "grad of input %d", i);
      if (wants_grad(r, i)) same = same_vals(&g[i], &g0[i], what, msg, sizeof msg);
    }
    VG_CHECK(same, "region %-28s forward and grads bit-identical with the unread intermediates freed%s%s", r->key,
             same ? "" : ": ", msg);
    free_vals(nin, &y, g);
    free_vals(nin, &y0, g0);
    free_inputs(r, in);
  }
}

static void mode_cuda(void) {
  if (!vg_cuda_available()) {
    printf("SKIP cuda mode (%d rows): %s\n", NROWS, vg_last_error());
    return;
  }
  for (int k = 0; k < NROWS; k++) {
    const ot_row *r = &ROWS[k];
    if (r->kind == OT_VIA) {
      check_via(r, VG_CUDA, "cuda");
      continue;
    }
    int nin = row_nin(r);
    bool grads = r->flags & OT_GRAD;
    for (int half = 0; half < 2; half++) {
      if (half && !(r->flags & OT_F16)) break;
      vg_tensor *in[OT_MAX_IN];
      make_inputs(r, in, half);
      ot_val y0, g0[OT_MAX_IN], y, g[OT_MAX_IN];
      eval_row(r, VG_CPU, in, NULL, grads && !half, false, false, &y0, g0, NULL);
      eval_row(r, VG_CUDA, in, NULL, grads && !half, half, false, &y, g, NULL);
      /* f16: one f16 rounding of the result (2^-10 relative) and the f16 subnormal spacing */
      compare_runs(r, half ? "cuda16" : "cuda", &y, g, &y0, g0, grads && !half, half ? 1.0 / 1024 : 0,
                   half ? 1.0 / 16777216 : 0);
      free_vals(nin, &y, g);
      if (!half && nin > 0) {   /* non-contiguous inputs on the device */
        eval_row(r, VG_CUDA, in, NULL, grads, false, true, &y, g, NULL);
        compare_runs(r, "cudanc", &y, g, &y0, g0, grads, 0, 0);
        free_vals(nin, &y, g);
      }
      free_vals(nin, &y0, g0);
      free_inputs(r, in);
    }
  }
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static void time_dev(vg_device dev) {
  for (int k = 0; k < NROWS; k++) {
    const ot_row *r = &ROWS[k];
    if (r->kind == OT_VIA) continue;
    vg_tensor *in[OT_MAX_IN];
    make_inputs(r, in, false);
    vg_scope_begin();
    vg_tensor *din[OT_MAX_IN] = {0};
    for (int i = 0; i < row_nin(r); i++) din[i] = vg_to_device(in[i], dev);
    ot_dev = dev;
    long calls = 0;
    double t0 = now_ns(), t;
    do {
      vg_scope_begin();
      ot_aux = NULL;
      r->fn(din);
      if (dev == VG_CUDA) vg_cuda_synchronize();
      vg_scope_end();
      calls++;
      t = now_ns();
    } while (t - t0 < 2e7 && calls < 100000);
    ot_dev = VG_CPU;
    vg_scope_end();
    printf("TIME %-4s %-28s %10.0f ns/call (%ld calls)\n", dev == VG_CUDA ? "cuda" : "cpu", r->key, (t - t0) / calls,
           calls);
    free_inputs(r, in);
  }
}

int main(void) {
  /* the per-op rows: T rows once, T_VIA rows pointing at a T row of another op */
  int per_op[VG_OP_COUNT] = {0};
  for (int k = 0; k < NROWS; k++)
    if (ROWS[k].kind != OT_MORE) per_op[ROWS[k].op]++;
  for (int op = 0; op < VG_OP_COUNT; op++)
    VG_CHECK(per_op[op] == 1 && ot_rows_per_op[op] == 1, "table  %-28s has one row", vg_op_name((vg_op)op));

  mode_cpu();
  mode_torch();
  mode_grad();
  mode_region();
  mode_cuda();
  const char *tm = getenv("VIGIL_OPTEST_TIME");
  if (tm && *tm && strcmp(tm, "0") != 0) {
    time_dev(VG_CPU);
    if (vg_cuda_available()) time_dev(VG_CUDA);
  }
  vg_scope_release();
  return vg_test_finish();
}
