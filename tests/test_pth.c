/* test_pth.c — PyTorch checkpoint reader: torch 1.13 torch.save files (protocols 2, 4, 5,
 * deflated entries, views sharing a storage, 0-d tensors, Parameters, nested dicts,
 * Lightning checkpoints) compared exactly with values the generator's formulas give;
 * a corpus of malicious and malformed pickles and zips, each refused with its own
 * message (tools/gen_pth_fixtures.py writes tests/fixtures/pth/); state-dict name
 * helpers. */
#include "tests/vgtest.h"
#include "nn/pth.h"
#include "nn/state_dict.h"
#include "nn/zip.h"

static char g_path[1024];
static const char *fx(const char *name) {
  snprintf(g_path, sizeof g_path, "%s", vg_test_fixture("pth/"));
  size_t l = strlen(g_path);
  snprintf(g_path + l, sizeof g_path - l, "%s", name);
  return g_path;
}

static vg_pth_dict *load(const char *name, const vg_pth_opts *o) {
  vg_pth_dict *d = NULL;
  vg_clear_error();
  if (vg_pth_load(fx(name), o, &d) != VG_OK) printf("# %s: %s\n", name, vg_last_error());
  return d;
}

/* tensor entry `name` has this dtype and shape and, as f32 (vg_to_host), these values */
static void check_tensor(const vg_pth_dict *d, const char *name, vg_dtype dt, int ndim,
                         const int64_t *shape, const float *want, const char *file) {
  const vg_pth_entry *e = vg_pth_get(d, name);
  int ok = e && e->kind == VG_PTH_TENSOR && e->tensor && e->tensor->dtype == dt &&
           e->tensor->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = e->tensor->shape[i] == shape[i];
  int64_t n = ok ? vg_numel(e->tensor) : 0;
  float *got = malloc(sizeof(float) * (size_t)(n ? n : 1));
  if (ok && n) ok = vg_to_host(e->tensor, VG_F32, got) == VG_OK;
  for (int64_t i = 0; ok && i < n; i++) ok = got[i] == want[i];
  VG_CHECK(ok, "%s: %s %s exact", file, name, vg_dtype_name(dt));
  free(got);
}

static void check_basic(const char *file, bool to_f32) {
  vg_pth_opts o = {.to_f32 = to_f32};
  vg_pth_dict *d = load(file, &o);
  VG_CHECK(d != NULL, "%s loads%s", file, to_f32 ? " (to_f32)" : "");
  if (!d) return;
  float base[12], bt[12], sub[4], half[5], bf[3], f64[3], par[4];
  for (int i = 0; i < 12; i++) base[i] = 0.5f * (float)i - 2;
  for (int r = 0; r < 4; r++) for (int c = 0; c < 3; c++) bt[r * 3 + c] = base[c * 4 + r];
  for (int r = 0; r < 2; r++) for (int c = 0; c < 2; c++) sub[r * 2 + c] = base[(r + 1) * 4 + c + 2];
  for (int i = 0; i < 5; i++) half[i] = 1 + 0.25f * (float)i;
  for (int i = 0; i < 3; i++) { bf[i] = 2.0f * (float)i - 1; f64[i] = (float)i / 4; }
  for (int i = 0; i < 4; i++) par[i] = (float)i - 1.5f;
  check_tensor(d, "base", VG_F32, 2, (int64_t[]){3, 4}, base, file);
  check_tensor(d, "base_t", VG_F32, 2, (int64_t[]){4, 3}, bt, file);
  check_tensor(d, "base_sub", VG_F32, 2, (int64_t[]){2, 2}, sub, file);
  check_tensor(d, "half", to_f32 ? VG_F32 : VG_F16, 1, (int64_t[]){5}, half, file);
  check_tensor(d, "bf16", to_f32 ? VG_F32 : VG_BF16, 1, (int64_t[]){3}, bf, file);
  check_tensor(d, "f64", VG_F32, 1, (int64_t[]){3}, f64, file);
  check_tensor(d, "i32", VG_I32, 1, (int64_t[]){3}, (float[]){1, -2, 3}, file);
  check_tensor(d, "u8", VG_U8, 1, (int64_t[]){3}, (float[]){0, 255, 7}, file);
  check_tensor(d, "mask", VG_BOOL, 1, (int64_t[]){3}, (float[]){1, 0, 1}, file);
  check_tensor(d, "scalar", VG_F32, 0, NULL, (float[]){3.5f}, file);
  check_tensor(d, "bn.num_batches_tracked", VG_I64, 0, NULL, (float[]){0}, file);
  check_tensor(d, "empty", VG_F32, 2, (int64_t[]){0, 3}, NULL, file);
  check_tensor(d, "param", VG_F32, 1, (int64_t[]){4}, par, file);
  check_tensor(d, "nested.inner.x", VG_F32, 1, (int64_t[]){2}, (float[]){9, 9}, file);
  const vg_pth_entry *e = vg_pth_get(d, "idx");
  int64_t idx[4] = {0};
  VG_CHECK(e && e->tensor && e->tensor->dtype == VG_I64 && vg_numel(e->tensor) == 4 &&
           vg_to_host(e->tensor, VG_I64, idx) == VG_OK && idx[0] == -3 && idx[1] == 0 &&
           idx[2] == 7 && idx[3] == (int64_t)1 << 40, "%s: idx i64 exact (2^40)", file);
  e = vg_pth_get(d, "param");
  VG_CHECK(e && e->parameter && e->requires_grad, "%s: param is a Parameter with requires_grad", file);
  e = vg_pth_get(d, "base");
  VG_CHECK(e && !e->parameter && !e->requires_grad, "%s: base is a plain tensor", file);
  e = vg_pth_get(d, "count");
  VG_CHECK(e && e->kind == VG_PTH_INT && e->i == 7, "%s: count = 7", file);
  e = vg_pth_get(d, "rate");
  VG_CHECK(e && e->kind == VG_PTH_FLOAT && e->f == 0.125, "%s: rate = 0.125", file);
  e = vg_pth_get(d, "flag");
  VG_CHECK(e && e->kind == VG_PTH_INT && e->i == 1, "%s: flag = True", file);
  VG_CHECK(!vg_pth_get(d, "note") && !vg_pth_get(d, "none") && d->skipped == 2 && d->count == 18,
           "%s: str/None skipped (count %zu, skipped %zu)", file, d->count, d->skipped);
  vg_tensor *t = vg_pth_take(d, "base");
  VG_CHECK(t && vg_pth_get(d, "base")->tensor == NULL && vg_is_contiguous(t), "%s: take base", file);
  vg_tensor_free(t);
  vg_pth_free(d);
}

static void test_good(void) {
  check_basic("basic.pth", false);
  check_basic("basic.pth", true);
  check_basic("proto4.pth", false);
  check_basic("deflated.pth", true);
  const char *mins[] = {"good_min.pth", "good_min_deflated.pth", "good_comment.pth", "proto5.pth"};
  for (size_t i = 0; i < 4; i++) {
    vg_pth_dict *d = load(mins[i], NULL);
    const vg_pth_entry *e = d ? vg_pth_get(d, i == 3 ? "a" : "w") : NULL;
    float v[4] = {0};
    int ok = e && e->tensor && vg_to_host(e->tensor, VG_F32, v) == VG_OK;
    if (i < 3) ok = ok && v[0] == 1 && v[1] == 2 && v[2] == 3 && v[3] == 4;
    else ok = ok && v[0] == 1 && v[1] == 1;
    VG_CHECK(ok, "%s loads with exact values", mins[i]);
    vg_pth_free(d);
  }
}

static void test_lightning(void) {
  vg_pth_dict *d = load("lightning.ckpt", NULL);
  VG_CHECK(d && vg_pth_get(d, "state_dict.model.a") && vg_pth_get(d, "epoch") &&
           vg_pth_get(d, "epoch")->i == 3 && vg_pth_get(d, "hyper_parameters.lr") &&
           vg_pth_get(d, "hyper_parameters.lr")->f == 0.1,
           "lightning.ckpt: whole file flattened (state_dict.*, epoch, hyper_parameters.lr)");
  vg_pth_free(d);
  vg_pth_opts o = {.state_dict_only = true};
  d = load("lightning.ckpt", &o);
  float a[2] = {0};
  VG_CHECK(d && d->count == 2 && vg_pth_get(d, "model.a") &&
           vg_to_host(vg_pth_get(d, "model.a")->tensor, VG_F32, a) == VG_OK && a[0] == 3 && a[1] == 3 &&
           vg_pth_get(d, "model.b") && vg_pth_get(d, "model.b")->tensor->dtype == VG_I64 && d->dropped == 4,
           "lightning.ckpt state_dict_only: model.a, model.b; 4 other entries dropped");
  static const char *const strip[] = {"module.", "model.", "backbone.", NULL};
  VG_CHECK(d && vg_pth_strip_prefixes(d, strip) == VG_OK && vg_pth_get(d, "a") && vg_pth_get(d, "b"),
           "strip 'model.' -> a, b");
  vg_pth_free(d);

  vg_clear_error();
  d = NULL;
  vg_status st = vg_pth_load(fx("lightning_ns.ckpt"), NULL, &d);
  VG_CHECK(st != VG_OK && !d && strstr(vg_last_error(), "'argparse.Namespace' is not allowed"),
           "lightning_ns.ckpt refused without state_dict_only -> %s", vg_last_error());
  d = load("lightning_ns.ckpt", &o);
  VG_CHECK(d && d->count == 2 && vg_pth_get(d, "model.a"), "lightning_ns.ckpt loads with state_dict_only");
  vg_pth_free(d);
}

static const struct { const char *file; const char *want; bool sd_only; } bad[] = {
  {"bad_os_system.pth", "GLOBAL 'os.system' is not allowed", false},
  {"bad_builtins_eval.pth", "GLOBAL 'builtins.eval' is not allowed", false},
  {"bad_posix_system.pth", "GLOBAL 'posix.system' is not allowed", false},
  {"bad_stack_global_popen.pth", "STACK_GLOBAL 'subprocess.Popen' is not allowed", false},
  {"bad_numpy_global.pth", "'numpy.core.multiarray._reconstruct' is not allowed", false},
  {"bad_reduce_storage.pth", "calling the storage class torch.FloatStorage", false},
  {"bad_reduce_odict_args.pth", "OrderedDict with arguments", false},
  {"bad_reduce_str.pth", "REDUCE on a str, which is not callable", false},
  {"bad_unknown_opcode.pth", "unknown opcode 0xff", false},
  {"bad_inst.pth", "opcode INST (0x69)", false},
  {"bad_obj.pth", "opcode OBJ (0x6f)", false},
  {"bad_newobj.pth", "opcode NEWOBJ (0x81)", false},
  {"bad_ext1.pth", "opcode EXT1", false},
  {"bad_setitem_list.pth", "SETITEM on a list, not a dict", false},
  {"bad_append_dict.pth", "APPEND on a dict, not a list", false},
  {"bad_memo_range.pth", "BINGET: memo reference 5 out of range", false},
  {"bad_stack_underflow.pth", "TUPLE2: stack underflow", false},
  {"bad_truncated.pth", "truncated inside a 16-byte string", false},
  {"bad_no_stop.pth", "no STOP opcode", false},
  {"bad_tuple_no_mark.pth", "TUPLE without a MARK", false},
  {"bad_leftover.pth", "STOP with 1 values", false},
  {"bad_persid_missing.pth", "archive has no entry 'archive/data/9'", false},
  {"bad_storage_size.pth", "100 elements of torch.FloatStorage need 400 bytes", false},
  {"bad_extent.pth", "last element 5) lies beyond its storage", false},
  {"bad_extent_stride.pth", "last element 4) lies beyond its storage", false},
  {"bad_proto6.pth", "pickle protocol 6", false},
  {"bad_persid_tuple.pth", "persistent id is not", false},
  {"bad_build_list.pth", "BUILD on a list", false},
  {"bad_top_list.pth", "holds a list, not a dict", false},
  {"bad_dup_key.pth", "key 'w' appears twice", false},
  {"bad_hooks.pth", "backward hooks are not supported", false},
  {"bad_long1_huge.pth", "LONG1: 9-byte integer", false},
  {"bad_lightning_sd_global.ckpt", "'os.system' is not allowed", false},
  {"bad_lightning_sd_global.ckpt", "key 'x' holds an object built from a disallowed global", true},
  {"legacy.pth", "legacy (pre-1.6, non-zip) torch.save format", false},
  {"bad_zip_truncated.pth", "end of central directory not found", false},
  {"bad_zip_crc.pth", "CRC-32 mismatch", false},
  {"bad_zip_name_mismatch.pth", "central directory and local header disagree", false},
  {"bad_zip_size_mismatch.pth", "local header sizes/CRC", false},
  {"bad_zip_overlap.pth", "overlap", false},
  {"bad_zip_method.pth", "compression method 12 (bzip2) is not supported", false},
  {"bad_zip_encrypted.pth", "is encrypted", false},
  {"bad_zip_count.pth", "60000 entries cannot fit", false},
  {"bad_zip_cd_range.pth", "central directory [", false},
  {"bad_zip_dup.pth", "appears twice", false},
  {"bad_zip_no_pkl.pth", "no <folder>/data.pkl", false},
  {"bad_zip_bomb.pth", "cannot inflate from", false},
  {"bad_zip_inflate.pth", "more than the expected 999 bytes", false},
  {"bad_zip64_count.pth", "1099511627776 entries, more than the limit", false},
};

static void test_bad(void) {
  int distinct = 1;
  char prev[64][160];
  size_t n = sizeof bad / sizeof *bad;
  for (size_t i = 0; i < n; i++) {
    vg_pth_opts o = {.state_dict_only = bad[i].sd_only};
    vg_pth_dict *d = NULL;
    vg_clear_error();
    vg_status st = vg_pth_load(fx(bad[i].file), &o, &d);
    VG_CHECK(st != VG_OK && !d && strstr(vg_last_error(), bad[i].want), "refuse %-30s -> %s",
             bad[i].file, vg_last_error());
    vg_pth_free(d);
    if (i < 64) {
      snprintf(prev[i], sizeof prev[i], "%s", vg_last_error());
      for (size_t j = 0; j < i; j++) if (strcmp(prev[i], prev[j]) == 0) distinct = 0;
    }
  }
  VG_CHECK(distinct && n >= 20, "%zu refusals, each with its own message", n);
}

static void test_zip_api(void) {
  vg_zip *z = NULL;
  vg_status st = vg_zip_open(fx("deflated.pth"), NULL, &z);
  const vg_zip_entry *e = st == VG_OK ? vg_zip_find(z, "basic/version") : NULL;
  uint8_t *buf = NULL;
  size_t n = 0;
  VG_CHECK(e && e->method == 8 && vg_zip_read(z, e, &buf, &n) == VG_OK && n == 2 && buf[0] == '3',
           "zip: deflated entry 'basic/version' reads \"3\\n\"");
  free(buf);
  const uint8_t *view;
  VG_CHECK(e && vg_zip_view(z, e, &view, &n) == VG_ERR_UNSUPPORTED, "zip: no view of a deflated entry");
  VG_CHECK(z && !vg_zip_find(z, "basic/nope") && vg_zip_count(z) > 10, "zip: find absent, count");
  vg_zip_free(z);
  vg_zip_limits lim = {.max_entries = 3};
  z = NULL;
  st = vg_zip_open(fx("basic.pth"), &lim, &z);
  VG_CHECK(st == VG_ERR_LIMIT && !z && strstr(vg_last_error(), "more than the limit 3"),
           "zip: entry-count limit -> %s", vg_last_error());
  /* every truncation of a good archive is refused without a crash */
  FILE *f = fopen(fx("good_min.pth"), "rb");
  uint8_t all[4096];
  size_t len = f ? fread(all, 1, sizeof all, f) : 0;
  if (f) fclose(f);
  int refused = 0, tried = 0;
  for (size_t cut = 0; cut < len; cut += 7, tried++) {
    vg_pth_dict *d = NULL;
    if (vg_pth_load_mem(all, cut, NULL, &d) != VG_OK) refused++;
    vg_pth_free(d);
  }
  vg_pth_dict *d = NULL;
  VG_CHECK(len > 100 && refused == tried && vg_pth_load_mem(all, len, NULL, &d) == VG_OK,
           "every truncation of good_min.pth refused (%d/%d), whole loads", refused, tried);
  vg_pth_free(d);
  /* flip each byte of the pickle region: must never crash; a load that passes still
   * gives a dict */
  int loaded = 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t save = all[i];
    all[i] ^= 0x5a;
    d = NULL;
    if (vg_pth_load_mem(all, len, NULL, &d) == VG_OK) loaded++;
    vg_pth_free(d);
    all[i] = save;
  }
  VG_CHECK(loaded < (int)len / 2, "byte flips: %d of %zu variants load (CRC catches the rest)", loaded, len);
}

/* ---- a stored-only zip writer, to fuzz the unpickler past the CRC checks ---- */
static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }
static uint32_t crc32_ref(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return ~c;
}
/* two entries: names[i], data[i] (lengths n[i]); returns the archive length in out */
static size_t mkzip2(uint8_t *out, const char *const *names, const uint8_t *const *data, const size_t *n) {
  size_t p = 0, offs[2];
  for (int i = 0; i < 2; i++) {
    size_t nl = strlen(names[i]);
    offs[i] = p;
    memset(out + p, 0, 30);
    put32(out + p, 0x04034b50); put16(out + p + 4, 20);
    put32(out + p + 14, crc32_ref(data[i], n[i])); put32(out + p + 18, (uint32_t)n[i]);
    put32(out + p + 22, (uint32_t)n[i]); put16(out + p + 26, (unsigned)nl);
    memcpy(out + p + 30, names[i], nl);
    memcpy(out + p + 30 + nl, data[i], n[i]);
    p += 30 + nl + n[i];
  }
  size_t cd = p;
  for (int i = 0; i < 2; i++) {
    size_t nl = strlen(names[i]);
    memset(out + p, 0, 46);
    put32(out + p, 0x02014b50); put16(out + p + 4, 20); put16(out + p + 6, 20);
    put32(out + p + 16, crc32_ref(data[i], n[i])); put32(out + p + 20, (uint32_t)n[i]);
    put32(out + p + 24, (uint32_t)n[i]); put16(out + p + 28, (unsigned)nl);
    put32(out + p + 42, (uint32_t)offs[i]);
    memcpy(out + p + 46, names[i], nl);
    p += 46 + nl;
  }
  memset(out + p, 0, 22);
  put32(out + p, 0x06054b50); put16(out + p + 8, 2); put16(out + p + 10, 2);
  put32(out + p + 12, (uint32_t)(p - cd)); put32(out + p + 16, (uint32_t)cd);
  return p + 22;
}

static void test_pickle_fuzz(void) {
  vg_zip *z = NULL;
  uint8_t *pkl = NULL, *sto = NULL;
  size_t np = 0, ns = 0;
  int ok = vg_zip_open(fx("good_min.pth"), NULL, &z) == VG_OK &&
           vg_zip_read(z, vg_zip_find(z, "archive/data.pkl"), &pkl, &np) == VG_OK &&
           vg_zip_read(z, vg_zip_find(z, "archive/data/0"), &sto, &ns) == VG_OK;
  vg_zip_free(z);
  static uint8_t buf[8192];
  const char *names[2] = {"archive/data.pkl", "archive/data/0"};
  const uint8_t *data[2] = {pkl, sto};
  size_t lens[2] = {np, ns};
  vg_pth_dict *d = NULL;
  ok = ok && vg_pth_load_mem(buf, mkzip2(buf, names, data, lens), NULL, &d) == VG_OK &&
       d->count == 1;
  vg_pth_free(d);
  VG_CHECK(ok, "rebuilt good_min archive loads (%zu-byte pickle)", np);
  int loaded = 0, runs = 0;
  static const uint8_t flips[] = {0x01, 0x80, 0xff, 0x20};
  for (size_t i = 2; ok && i < np; i++)
    for (size_t k = 0; k < sizeof flips; k++, runs++) {
      pkl[i] ^= flips[k];
      d = NULL;
      if (vg_pth_load_mem(buf, mkzip2(buf, names, data, lens), NULL, &d) == VG_OK) loaded++;
      vg_pth_free(d);
      pkl[i] ^= flips[k];
    }
  for (size_t cut = 0; ok && cut < np; cut++, runs++) {   /* every truncated pickle */
    lens[0] = cut;
    d = NULL;
    if (vg_pth_load_mem(buf, mkzip2(buf, names, data, lens), NULL, &d) == VG_OK) loaded = 1 << 20;
    vg_pth_free(d);
  }
  VG_CHECK(ok && loaded < runs / 4, "pickle fuzz: %d of %d mutated pickles load, no truncation does",
           loaded, runs);
  free(pkl);
  free(sto);
}

static void test_state_dict(void) {
  static const char *const strip[] = {"module.", "model.", "backbone.", NULL};
  VG_CHECK(strcmp(vg_sd_strip_prefix("module.conv1.weight", strip), "conv1.weight") == 0 &&
           strcmp(vg_sd_strip_prefix("backbone.fc.bias", strip), "fc.bias") == 0 &&
           strcmp(vg_sd_strip_prefix("layer1.0.conv1.weight", strip), "layer1.0.conv1.weight") == 0,
           "strip prefixes");
  const char *want[] = {"a.weight", "a.bias", "b.weight"};
  const char *have[] = {"b.weight", "a.weight", "c.extra"};
  vg_sd_report r;
  vg_status st = vg_sd_match(want, 3, have, 3, false, &r);
  VG_CHECK(st == VG_OK && r.n_missing == 1 && strcmp(r.missing[0], "a.bias") == 0 &&
           r.n_unexpected == 1 && strcmp(r.unexpected[0], "c.extra") == 0,
           "non-strict: 1 missing (a.bias), 1 unexpected (c.extra)");
  vg_sd_report_free(&r);
  st = vg_sd_match(want, 3, have, 3, true, &r);
  VG_CHECK(st == VG_ERR_FORMAT && strstr(vg_last_error(), "1 missing key: a.bias; 1 unexpected key: c.extra"),
           "strict mismatch -> %s", vg_last_error());
  vg_sd_report_free(&r);
  st = vg_sd_match(want, 3, want, 3, true, &r);
  VG_CHECK(st == VG_OK && r.n_missing == 0 && r.n_unexpected == 0, "strict exact match");
  vg_sd_report_free(&r);
}

int main(void) {
  test_good();
  test_lightning();
  test_bad();
  test_zip_api();
  test_pickle_fuzz();
  test_state_dict();
  return vg_test_finish();
}
