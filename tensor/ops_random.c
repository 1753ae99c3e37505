/* ops_random.c — random creation: uniform, normal, bernoulli, randperm. */
#include "tensor/internal.h"
#include "tensor/kmath/philox.h"
#include <stdlib.h>

static vg_status fill_random(vg_op op, vg_tensor *t, double a, double b, uint64_t seed) {
  if (!t) return vg_fail(VG_ERR_ARG, "%s: NULL tensor", vg_op_name(op));
  if (t->dtype != VG_F32 && t->dtype != VG_F16 && t->dtype != VG_BF16)
    return vg_fail(VG_ERR_ARG, "%s: wants a floating tensor, got %s", vg_op_name(op), vg_dtype_name(t->dtype));
  vg_opcall c = {.op = op, .nin = 0, .out = {t}, .p.rand = {.seed = seed, .a = a, .b = b}};
  vg_backend_exec(vg_backend_of(t->device), &c);
  return VG_OK;
}

vg_status vg_uniform_(vg_tensor *t, float lo, float hi, uint64_t seed) {
  return fill_random(VG_OP_RAND_UNIFORM, t, lo, hi, seed);
}
vg_status vg_normal_(vg_tensor *t, float mean, float std, uint64_t seed) {
  return fill_random(VG_OP_RAND_NORMAL, t, mean, std, seed);
}

vg_tensor *vg_rand(int ndim, const int64_t *shape, uint64_t seed) {
  vg_tensor *t = vg_empty(VG_F32, ndim, shape);
  if (t) vg_uniform_(t, 0, 1, seed);
  return t;
}

vg_tensor *vg_randn(int ndim, const int64_t *shape, uint64_t seed) {
  vg_tensor *t = vg_empty(VG_F32, ndim, shape);
  if (t) vg_normal_(t, 0, 1, seed);
  return t;
}

vg_tensor *vg_bernoulli(int ndim, const int64_t *shape, float p, uint64_t seed) {
  if (!(p >= 0 && p <= 1)) return vg_op_error("bernoulli", "probability %g not in [0, 1]", p);
  vg_tensor *u = vg_rand(ndim, shape, seed);
  return u ? vg_cast(vg_lt(u, vg_full(VG_F32, 0, NULL, p)), VG_F32) : NULL;
}

typedef struct { uint32_t key; int64_t i; } perm_key;
static int cmp_key(const void *a, const void *b) {
  const perm_key *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->i < y->i ? -1 : (x->i > y->i);
}

/* a permutation by sorting random keys (ties broken by position): seed-determined */
vg_tensor *vg_randperm(int64_t n, uint64_t seed) {
  if (n < 0) return vg_op_error("randperm", "negative n %lld", (long long)n);
  perm_key *k = malloc(sizeof *k * (size_t)(n ? n : 1));
  if (!k) return vg_op_error("randperm", "out of memory for n = %lld", (long long)n);
  for (int64_t i = 0; i < n; i++) k[i] = (perm_key){vg_philox_u32_at(seed, (uint64_t)i), i};
  qsort(k, (size_t)n, sizeof *k, cmp_key);
  vg_tensor *t = vg_empty(VG_I64, 1, &n);
  int64_t *p = (int64_t *)vg_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = k[i].i;
  free(k);
  return t;
}
