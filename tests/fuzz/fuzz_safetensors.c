/* fuzz_safetensors.c — libFuzzer target: the safetensors reader from memory (vg_st_open_mem),
 * then every tensor read as stored and as f32, every info and metadata entry. Traps when a
 * failure leaves no message, when an open that succeeds describes tensors that do not fit
 * the buffer, or when a tensor read as stored differs from its bytes in the input.
 * See tests/fuzz/README.md. */
#include "nn/safetensors.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  vg_st_file *f = NULL;
  vg_clear_error();
  if (vg_st_open_mem(data, n, "fuzz", &f) != VG_OK) {
    if (f || !vg_last_error()[0]) __builtin_trap();
    return 0;
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
  uint64_t data_len = n - 8 - hlen, covered = 0;
  for (int i = 0; i < vg_st_count(f); i++) {
    vg_st_info info;
    if (vg_st_info_at(f, i, &info) != VG_OK) __builtin_trap();
    if (info.end < info.begin || info.end > data_len || vg_st_find(f, info.name) != i) __builtin_trap();
    covered += info.end - info.begin;
    vg_tensor *t = NULL;
    vg_clear_error();
    vg_status st = vg_st_get(f, info.name, VG_ST_AS_STORED, &t);
    if (st != VG_OK) {
      if (t || !vg_last_error()[0] || info.vg != VG_DTYPE_COUNT) __builtin_trap();
      continue;
    }
    if (vg_numel(t) != info.numel || t->ndim != info.ndim) __builtin_trap();
    if (strcmp(info.dtype, "F64") != 0 && info.numel &&
        memcmp(vg_data(t), data + 8 + hlen + info.begin, (size_t)(info.end - info.begin)) != 0)
      __builtin_trap();
    vg_tensor_free(t);
    t = NULL;
    if (vg_st_get(f, info.name, VG_F32, &t) != VG_OK || vg_numel(t) != info.numel) __builtin_trap();
    vg_tensor_free(t);
  }
  if (covered != data_len) __builtin_trap();   /* the tensors tile the data buffer */
  for (int i = 0; i < vg_st_meta_count(f); i++)
    if (!vg_st_meta_key(f, i) || !vg_st_meta_value(f, i) || vg_st_meta(f, vg_st_meta_key(f, i)) == NULL)
      __builtin_trap();
  vg_st_close(f);
  return 0;
}
