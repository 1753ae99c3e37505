/* fuzz_pth.c — libFuzzer target: PyTorch checkpoints (.pth zip + restricted unpickler) through
 * vg_pth_load_mem. See tests/fuzz/README.md.
 *
 * Mutated zips mostly die at a CRC, so the first input byte picks a mode:
 *   bit 0 clear: the rest is a zip archive, loaded as is;
 *   bit 0 set:   the rest is [u16 LE pickle length][data.pkl][storage bytes], which the
 *                harness wraps into a valid stored zip (archive/data.pkl, archive/data/0 =
 *                the storage bytes, archive/data/1 = their first half, archive/version),
 *                so random pickles reach the unpickler, the flattener and the copier;
 *   bit 1: state_dict_only (lenient placeholders); bit 2: to_f32;
 *   bit 3: a 1 MiB decode budget instead of the default (4 x storage bytes + 64 MiB).
 * Traps when a failure leaves no message or a dict, when a load that succeeds reports more
 * bytes decoded than its budget, or holds a tensor entry without a tensor. Run with
 * -malloc_limit_mb / -rss_limit_mb so an allocation the budget missed shows up. */
#include "nn/pth.h"
#include <stdlib.h>
#include <string.h>
#include "datasets/image/image.h"

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }

/* A stored zip of k entries into out (room: sum of sizes + 128 per entry); its length. */
static size_t mkzip(uint8_t *out, int k, const char *const *names, const uint8_t *const *data, const size_t *n) {
  size_t p = 0, offs[8];
  for (int i = 0; i < k; i++) {
    size_t nl = strlen(names[i]);
    uint32_t crc = vg_crc32(0, data[i], n[i]);
    offs[i] = p;
    memset(out + p, 0, 30);
    put32(out + p, 0x04034b50); put16(out + p + 4, 20);
    put32(out + p + 14, crc); put32(out + p + 18, (uint32_t)n[i]); put32(out + p + 22, (uint32_t)n[i]);
    put16(out + p + 26, (unsigned)nl);
    memcpy(out + p + 30, names[i], nl);
    if (n[i]) memcpy(out + p + 30 + nl, data[i], n[i]);
    p += 30 + nl + n[i];
  }
  size_t cd = p;
  for (int i = 0; i < k; i++) {
    size_t nl = strlen(names[i]);
    memset(out + p, 0, 46);
    put32(out + p, 0x02014b50); put16(out + p + 4, 20); put16(out + p + 6, 20);
    put32(out + p + 16, vg_crc32(0, data[i], n[i])); put32(out + p + 20, (uint32_t)n[i]);
    put32(out + p + 24, (uint32_t)n[i]); put16(out + p + 28, (unsigned)nl);
    put32(out + p + 42, (uint32_t)offs[i]);
    memcpy(out + p + 46, names[i], nl);
    p += 46 + nl;
  }
  memset(out + p, 0, 22);
  put32(out + p, 0x06054b50); put16(out + p + 8, (unsigned)k); put16(out + p + 10, (unsigned)k);
  put32(out + p + 12, (uint32_t)(p - cd)); put32(out + p + 16, (uint32_t)cd);
  return p + 22;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n < 1) return 0;
  uint8_t mode = data[0];
  data++, n--;
  vg_pth_opts o = {.state_dict_only = (mode & 2) != 0, .to_f32 = (mode & 4) != 0,
                   .max_decoded = (mode & 8) ? (uint64_t)1 << 20 : 0};
  uint8_t *zip = NULL;
  size_t zn = n;
  const uint8_t *in = data;
  if (mode & 1) {
    if (n < 2) return 0;
    size_t pl = (size_t)(data[0] | data[1] << 8);
    if (pl > n - 2) pl = n - 2;
    const uint8_t *pkl = data + 2, *sto = data + 2 + pl;
    size_t sn = n - 2 - pl;
    const char *names[4] = {"archive/data.pkl", "archive/data/0", "archive/data/1", "archive/version"};
    const uint8_t *d[4] = {pkl, sto, sto, (const uint8_t *)"3\n"};
    size_t lens[4] = {pl, sn, sn / 2, 2};
    zip = malloc(n + 4 * 128 + sn);
    if (!zip) return 0;
    zn = mkzip(zip, 4, names, d, lens);
    in = zip;
  }
  vg_pth_dict *dict = NULL;
  vg_clear_error();
  vg_status st = vg_pth_load_mem(in, zn, &o, &dict);
  if (st != VG_OK) {
    if (dict || !vg_last_error()[0]) __builtin_trap();
  } else {
    if (!dict || dict->decoded_bytes > dict->budget) __builtin_trap();
    for (size_t i = 0; i < dict->count; i++) {
      const vg_pth_entry *e = &dict->entries[i];
      if (!e->name || (e->kind == VG_PTH_TENSOR && !e->tensor) || vg_pth_get(dict, e->name) != e) __builtin_trap();
    }
    vg_pth_free(dict);
  }
  free(zip);
  return 0;
}
