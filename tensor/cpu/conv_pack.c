/* conv_pack.c — vg_conv_pack: a conv weight's forms cached for the CPU kernels (the GEMM's
 * packed A, Winograd's 36 transformed and packed filters), bound to the weight they came
 * from (tensor.h, vg_conv2d_opts.pack). */
#include "tensor/internal.h"
#include "tensor/cpu/conv.h"
#include "tensor/parallel.h"
#include <stdlib.h>
#include <string.h>

enum { CP_SAMPLES = 64 };

typedef struct {
  float *buf;
  size_t floats;
  int64_t key[3];
  int isa;
} cp_slot;

struct vg_conv_pack {
  const void *data;              /* the weight it serves: storage data + offset, shape, strides */
  int64_t offset, shape[4], stride[4];
  int64_t sample_at[CP_SAMPLES];
  float sample[CP_SAMPLES];
  int nsamples;
  cp_slot slot[VG_CONV_PACK_KINDS];
};

vg_conv_pack *vg_conv_pack_new(void) {
  vg_conv_pack *pk = calloc(1, sizeof *pk);
  if (!pk) vg_fail(VG_ERR_NOMEM, "vg_conv_pack_new: out of memory");
  return pk;
}

static void drop(vg_conv_pack *pk) {
  for (int k = 0; k < VG_CONV_PACK_KINDS; k++) {
    free(pk->slot[k].buf);
    pk->slot[k] = (cp_slot){0};
  }
}

void vg_conv_pack_free(vg_conv_pack *pk) {
  if (!pk) return;
  drop(pk);
  free(pk);
}

size_t vg_conv_pack_bytes(const vg_conv_pack *pk) {
  size_t n = 0;
  for (int k = 0; pk && k < VG_CONV_PACK_KINDS; k++) n += pk->slot[k].floats * sizeof(float);
  return n;
}

static float at(const vg_tensor *w, int64_t e) {   /* element e of w in row-major order */
  int64_t off = w->offset;
  for (int d = w->ndim - 1; d >= 0; d--) {
    off += (e % w->shape[d]) * w->stride[d];
    e /= w->shape[d];
  }
  return ((const float *)w->storage->data)[off];
}

void vg_conv_pack_bind(vg_conv_pack *pk, const vg_tensor *w) {
  bool same = pk->data == w->storage->data && pk->offset == w->offset && w->ndim == 4;
  for (int d = 0; same && d < 4; d++) same = pk->shape[d] == w->shape[d] && pk->stride[d] == w->stride[d];
  for (int i = 0; same && i < pk->nsamples; i++) {
    float v = at(w, pk->sample_at[i]);
    same = !memcmp(&v, &pk->sample[i], sizeof v);
  }
  if (same) return;
  drop(pk);
  pk->data = w->storage->data;
  pk->offset = w->offset;
  for (int d = 0; d < 4; d++) {
    pk->shape[d] = d < w->ndim ? w->shape[d] : 0;
    pk->stride[d] = d < w->ndim ? w->stride[d] : 0;
  }
  const int64_t n = vg_numel(w);
  pk->nsamples = n < CP_SAMPLES ? (int)n : CP_SAMPLES;
  for (int i = 0; i < pk->nsamples; i++) {   /* spread over the tensor, first and last included */
    pk->sample_at[i] = pk->nsamples > 1 ? (int64_t)((double)i * (double)(n - 1) / (pk->nsamples - 1)) : 0;
    pk->sample[i] = at(w, pk->sample_at[i]);
  }
}

float *vg_conv_pack_get(vg_conv_pack *pk, int kind, int64_t k0, int64_t k1, int64_t k2, size_t floats, int *fresh) {
  cp_slot *s = &pk->slot[kind];
  const int isa = (int)vg_cpu_isa();
  if (s->buf && s->floats == floats && s->key[0] == k0 && s->key[1] == k1 && s->key[2] == k2 && s->isa == isa) {
    *fresh = 0;
    return s->buf;
  }
  free(s->buf);
  size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
  *s = (cp_slot){.buf = aligned_alloc(64, bytes ? bytes : 64), .floats = floats, .key = {k0, k1, k2}, .isa = isa};
  if (!s->buf) VG_ABORT("out of memory: a %zu-byte conv weight cache", bytes);
  *fresh = 1;
  return s->buf;
}
