/* test_gpu_build.c — the GPU build for every architecture (issue #19), without a GPU:
 *   - the start-up message for a GPU the binary has no code for names the GPU, its compute
 *     capability and the CUDA_ARCH to rebuild with (vg_cuda_arch_message; and, on the CUDA
 *     emulator, vg_cuda_init itself on an emulated sm_70 without a kernel image);
 *   - a fat-binary reader (the layout cuobjdump lists: 0xBA55ED50 headers, one entry per
 *     ELF or PTX image with its sm number) checked on a built blob, then, in a `make CUDA=1`
 *     build, on this very program: machine code for every architecture of CUDA_ARCH and PTX
 *     of the newest, as `cuobjdump --list-elf` would list them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tensor/tensor.h"
#include "base/file.h"
#include "vgtest.h"

/* ---- fat binaries: header {u32 magic, u16 version, u16 header size, u64 body size}, then
 * entries {u16 kind (1 PTX, 2 ELF), u16 version, u32 header size, u64 padded payload size,
 * ..., u32 sm at offset 28}, each followed by its payload */
#define FATBIN_MAGIC 0xBA55ED50u
enum { MAX_IMG = 256 };
typedef struct {
  int n;
  int kind[MAX_IMG], sm[MAX_IMG];
} fat_list;

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* every image of every fat binary in buf (an object, a program); false on a malformed one */
static bool fat_scan(const uint8_t *buf, size_t n, fat_list *out) {
  out->n = 0;
  for (size_t i = 0; i + 16 <= n; i += 8) {   /* fat binaries are 8-aligned */
    if (rd32(buf + i) != FATBIN_MAGIC) continue;
    uint16_t ver = (uint16_t)(buf[i + 4] | buf[i + 5] << 8), hs = (uint16_t)(buf[i + 6] | buf[i + 7] << 8);
    uint64_t body = rd64(buf + i + 8);
    if (ver != 1 || hs != 16 || body > n - i - 16) continue;   /* the magic by chance */
    size_t p = i + hs, end = i + hs + (size_t)body;
    while (p + 32 <= end) {
      uint16_t kind = (uint16_t)(buf[p] | buf[p + 1] << 8);
      uint32_t ehs = rd32(buf + p + 4);
      uint64_t pay = rd64(buf + p + 8);
      if ((kind != 1 && kind != 2) || ehs < 32 || ehs > end - p || pay > end - p - ehs) return false;
      if (out->n < MAX_IMG) {
        out->kind[out->n] = kind;
        out->sm[out->n] = (int)rd32(buf + p + 28);
        out->n++;
      }
      p += ehs + (size_t)pay;
    }
    i = ((end + 7) & ~(size_t)7) - 8;   /* the loop's += 8 lands after this one */
  }
  return true;
}

static bool fat_has(const fat_list *f, int kind, int sm) {
  for (int i = 0; i < f->n; i++)
    if (f->kind[i] == kind && f->sm[i] == sm) return true;
  return false;
}

/* a blob the way nvcc lays one out: ELF sm_75, ELF sm_90, PTX compute_90 */
static size_t make_blob(uint8_t *b) {
  memset(b, 0, 512);
  const int kinds[3] = {2, 2, 1}, sms[3] = {75, 90, 90};
  size_t p = 16;
  for (int k = 0; k < 3; k++) {
    b[p] = (uint8_t)kinds[k];
    b[p + 2] = 1;
    b[p + 4] = 64;                 /* entry header size */
    b[p + 8] = 40;                 /* payload */
    b[p + 28] = (uint8_t)sms[k];
    p += 64 + 40;
  }
  uint32_t magic = FATBIN_MAGIC;
  memcpy(b, &magic, 4);
  b[4] = 1;
  b[6] = 16;
  uint64_t body = p - 16;
  memcpy(b + 8, &body, 8);
  return p;
}

static void test_fat_reader(void) {
  uint8_t b[1024];
  size_t n = make_blob(b + 64);   /* inside other bytes, 8-aligned */
  memset(b, 0x5a, 64);
  fat_list f;
  bool ok = fat_scan(b, 64 + n, &f);
  VG_CHECK(ok && f.n == 3, "fat binary reader: 3 images in a built blob (got %d)", f.n);
  VG_CHECK(fat_has(&f, 2, 75) && fat_has(&f, 2, 90) && fat_has(&f, 1, 90) && !fat_has(&f, 1, 75),
           "fat binary reader: ELF sm_75, ELF sm_90, PTX compute_90");
  /* a truncated body is not taken as a fat binary; a broken entry is refused */
  VG_CHECK(fat_scan(b, 64 + n - 8, &f) && f.n == 0, "fat binary reader: a truncated blob is skipped");
  b[64 + 16 + 4] = 200;   /* entry header size past the body */
  VG_CHECK(!fat_scan(b, 64 + n, &f), "fat binary reader: a malformed entry is an error");
}

/* ---- the start-up message */
static void test_arch_message(void) {
  char m[1024];
  vg_cuda_arch_message(m, sizeof m, "Tesla V100-SXM2-16GB", 7, 0, "75 80 86 89 90 120");
  printf("# %s\n", m);
  VG_CHECK(strstr(m, "Tesla V100-SXM2-16GB") && strstr(m, "compute capability 7.0") && strstr(m, "sm_70"),
           "arch message names the GPU and its compute capability");
  VG_CHECK(strstr(m, "CUDA_ARCH=\"75 80 86 89 90 120\"") && strstr(m, "make CUDA=1 CUDA_ARCH=70"),
           "arch message names what the binary has and the CUDA_ARCH to rebuild with");
  vg_cuda_arch_message(m, 40, "x", 8, 6, "90");
  VG_CHECK(strlen(m) == 39, "arch message is truncated to the buffer");
}

#if defined(VG_WITH_CUDA) && defined(VG_CUDA_EMU)
/* vg_cuda_init on an emulated GPU (VIGIL_EMU_CC) with or without a kernel image, in a child
 * (the backend initialises once per process): exit 0 = available, 1 = refused with the
 * expected message, 2 = anything else */
static int emu_child(const char *cc, bool no_image) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    setenv("VIGIL_EMU_CC", cc, 1);
    if (no_image) setenv("VIGIL_EMU_NO_IMAGE", "1", 1);
    if (vg_cuda_available()) _exit(0);
    const char *e = vg_last_error();
    char want[64];
    snprintf(want, sizeof want, "compute capability %s", cc);
    bool ok = strstr(e, "vigil-emu") && strstr(e, want) && strstr(e, "make CUDA=1 CUDA_ARCH=");
    if (!ok) fprintf(stderr, "unexpected: %s\n", e);
    _exit(ok ? 1 : 2);
  }
  int ws = 0;
  if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws)) return -1;
  return WEXITSTATUS(ws);
}

static void test_emulated_start(void) {
  VG_CHECK(emu_child("7.0", true) == 1, "emulated sm_70 without a kernel image: vg_cuda_init refuses with the arch message");
  VG_CHECK(emu_child("8.6", false) == 0, "emulated sm_86 with an image: the backend starts");
}
#endif

#if defined(VG_WITH_CUDA) && !defined(VG_CUDA_EMU)
/* this program, built by nvcc for CUDA_ARCH: machine code for each, PTX of the newest */
static void test_self_fatbin(void) {
  uint8_t *buf = NULL;
  size_t n = 0;
  if (vg_file_read_all("/proc/self/exe", (size_t)1 << 31, &buf, &n) != VG_OK) {
    printf("SKIP cannot read /proc/self/exe: %s\n", vg_last_error());
    return;
  }
  fat_list f;
  bool ok = fat_scan(buf, n, &f);
  free(buf);
  VG_CHECK(ok && f.n > 0, "this program carries fat binaries (%d images)", f.n);
  const char *archs = vg_cuda_built_archs();
  printf("# built for CUDA_ARCH=\"%s\"\n", archs);
  char list[512] = "";
  for (int i = 0; i < f.n; i++) {
    char one[32];
    snprintf(one, sizeof one, "%s%s_%d", i ? " " : "", f.kind[i] == 2 ? "sm" : "compute", f.sm[i]);
    if (!strstr(list, one + (i ? 1 : 0))) strncat(list, one, sizeof list - strlen(list) - 1);
  }
  printf("# images: %s\n", list);
  int built[64], nbuilt = 0;
  for (const char *p = archs; *p && nbuilt < 64;) {
    char *e;
    long a = strtol(p, &e, 10);
    if (e == p) break;
    built[nbuilt++] = (int)a;
    p = e;
  }
  VG_CHECK(nbuilt > 0, "vg_cuda_built_archs lists the architectures (\"%s\")", archs);
  for (int k = 0; k < nbuilt; k++) VG_CHECK(fat_has(&f, 2, built[k]), "machine code (ELF) for sm_%d", built[k]);
  VG_CHECK(nbuilt > 0 && fat_has(&f, 1, built[nbuilt - 1]), "PTX of the newest architecture (compute_%d) for later GPUs",
           nbuilt ? built[nbuilt - 1] : 0);
  int stray = 0;   /* no image for an architecture outside CUDA_ARCH */
  for (int i = 0; i < f.n; i++) {
    bool in = false;
    for (int k = 0; k < nbuilt; k++) in |= f.sm[i] == built[k];
    if (!in) { printf("# image %s_%d is not in CUDA_ARCH\n", f.kind[i] == 2 ? "sm" : "compute", f.sm[i]); stray++; }
  }
  VG_CHECK(stray == 0, "every image is one of CUDA_ARCH's (%d stray)", stray);
}
#endif

int main(void) {
  test_fat_reader();
  test_arch_message();
#if defined(VG_WITH_CUDA) && defined(VG_CUDA_EMU)
  test_emulated_start();
#endif
#if defined(VG_WITH_CUDA) && !defined(VG_CUDA_EMU)
  test_self_fatbin();
#endif
  return vg_test_finish();
}
