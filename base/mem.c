/* mem.c — see mem.h */
#include "base/mem.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool tuned;

static void tune(void) {
  const char *e = getenv("VIGIL_MALLOC_TUNE");
  if (e && !strcmp(e, "0")) return;
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
  /* setting either turns glibc's dynamic thresholds off, so both are set */
  tuned = mallopt(M_MMAP_THRESHOLD, 128 << 20) == 1;
  tuned = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && tuned;
#endif
}

void vg_mem_tune(void) { pthread_once(&once, tune); }

#if defined(__SANITIZE_ADDRESS__)
void *vg_mem_alloc(size_t n) {
  vg_mem_tune();
  return aligned_alloc(64, n ? (n + 63) & ~(size_t)63 : 64);
}
void *vg_mem_calloc(size_t n) {
  void *p = vg_mem_alloc(n);
  if (p) memset(p, 0, n ? (n + 63) & ~(size_t)63 : 64);
  return p;
}
void vg_mem_free(void *p) { free(p); }
#else
static void *mem_get(size_t n, bool zero) {
  vg_mem_tune();
  if (n > SIZE_MAX - 128) return NULL;
  unsigned char *raw = zero ? calloc(1, n + 64) : malloc(n + 64);
  if (!raw) return NULL;
  unsigned char *p = (unsigned char *)(((uintptr_t)raw + 64) & ~(uintptr_t)63);   /* 1..64 bytes up */
  p[-1] = (unsigned char)(p - raw);
  return p;
}
void *vg_mem_alloc(size_t n) { return mem_get(n, false); }
void *vg_mem_calloc(size_t n) { return mem_get(n, true); }
void vg_mem_free(void *p) {
  if (p) free((unsigned char *)p - ((unsigned char *)p)[-1]);
}
#endif

bool vg_mem_tuned(void) {
  vg_mem_tune();
  return tuned;
}
