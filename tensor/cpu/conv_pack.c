/* conv_pack.c — vg_conv_pack: a conv weight's forms cached for the CPU kernels (the GEMM's
 * packed A, Winograd's 36 transformed and packed filters), bound to the weight they came
 * from (tensor.h, vg_conv2d_opts.pack). */
#include "tensor/internal.h"
#include "tensor/cpu/conv.h"
#include "tensor/parallel.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  float *buf;
  size_t floats;
  int64_t key[3];
  int isa;
} cp_slot;

struct vg_conv_pack {
  vg_weight_sig sig;             /* the weight it serves */
  cp_slot slot[VG_CONV_PACK_KINDS];
  /* vg_conv_bn_fold_packed's folded pair and the six sources it came from (absent ones
   * recorded as such) */
  vg_tensor *fw, *fb;
  vg_weight_sig fsig[6];
  bool fhas[6];
  float feps;
  float *fvec;                   /* the [O] sources (bias, gamma, beta, mean, var) value for value */
  int64_t fO;
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

static void fold_drop(vg_conv_pack *pk) {
  vg_tensor_free(pk->fw);
  vg_tensor_free(pk->fb);
  free(pk->fvec);
  pk->fw = pk->fb = NULL;
  pk->fvec = NULL;
}

void vg_conv_pack_free(vg_conv_pack *pk) {
  if (!pk) return;
  drop(pk);
  fold_drop(pk);
  free(pk);
}

size_t vg_conv_pack_bytes(const vg_conv_pack *pk) {
  size_t n = 0;
  for (int k = 0; pk && k < VG_CONV_PACK_KINDS; k++) n += pk->slot[k].floats * sizeof(float);
  if (pk && pk->fw) n += (size_t)(vg_numel(pk->fw) + vg_numel(pk->fb)) * sizeof(float);
  return n;
}

bool vg_conv_pack_holds(const vg_conv_pack *pk, const vg_tensor *w) { return pk && w && pk->fw == w; }

bool vg_conv_pack_fold_get(vg_conv_pack *pk, const vg_tensor *const src[6], float eps, vg_tensor **w_out,
                           vg_tensor **b_out) {
  if (!pk->fw || memcmp(&eps, &pk->feps, sizeof eps)) return false;
  for (int k = 0; k < 6; k++)
    if ((src[k] != NULL) != pk->fhas[k] || (src[k] && !vg_weight_sig_matches(&pk->fsig[k], src[k]))) return false;
  /* the vectors are small: every value, so an edit of one channel's statistics is seen */
  for (int k = 1; k < 6; k++)
    if (src[k] && memcmp(vg_data(src[k]), pk->fvec + (k - 1) * pk->fO, sizeof(float) * (size_t)pk->fO)) return false;
  *w_out = pk->fw;
  *b_out = pk->fb;
  return true;
}

void vg_conv_pack_fold_put(vg_conv_pack *pk, const vg_tensor *const src[6], float eps, vg_tensor *w, vg_tensor *b) {
  fold_drop(pk);
  /* the forms made from the previous folded weight go too: the new one may reuse its
   * address and match its samples where only a few channels changed */
  drop(pk);
  pk->sig = (vg_weight_sig){0};
  const int64_t O = w->shape[0];
  pk->fvec = malloc(sizeof(float) * (size_t)(5 * O > 0 ? 5 * O : 1));
  if (!pk->fvec) VG_ABORT("out of memory: a conv + BN fold cache");
  pk->fw = w;
  pk->fb = b;
  pk->feps = eps;
  pk->fO = O;
  for (int k = 0; k < 6; k++) {
    pk->fhas[k] = src[k] != NULL;
    if (src[k]) vg_weight_sig_take(&pk->fsig[k], src[k]);
    if (k > 0 && src[k]) memcpy(pk->fvec + (k - 1) * O, vg_data(src[k]), sizeof(float) * (size_t)O);
  }
}

void vg_conv_pack_bind(vg_conv_pack *pk, const vg_tensor *w) {
  if (vg_weight_sig_matches(&pk->sig, w)) return;
  drop(pk);
  vg_weight_sig_take(&pk->sig, w);
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
