/* Per-thread scratch: a pthread key whose destructor frees the thread's buffers, and a
 * global list that keeps every live set reachable (LeakSanitizer scans globals). */
#include "tensor/cpu/scratch.h"
#include "base/status.h"
#include <pthread.h>
#include <stdlib.h>

typedef struct vg_scratch_set {
  float *buf[VG_SCRATCH_COUNT];
  size_t cap[VG_SCRATCH_COUNT];
  struct vg_scratch_set *prev, *next;
} vg_scratch_set;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static vg_scratch_set *list_head;

static void set_free(void *p) {
  vg_scratch_set *s = p;
  if (!s) return;
  pthread_mutex_lock(&list_mu);
  if (s->prev) s->prev->next = s->next; else list_head = s->next;
  if (s->next) s->next->prev = s->prev;
  pthread_mutex_unlock(&list_mu);
  for (int i = 0; i < VG_SCRATCH_COUNT; i++) free(s->buf[i]);
  free(s);
}

static void make_key(void) { VG_ASSERT(pthread_key_create(&key, set_free) == 0); }

float *vg_cpu_scratch(vg_scratch_slot slot, size_t nfloats) {
  VG_ASSERT(slot >= 0 && slot < VG_SCRATCH_COUNT);
  pthread_once(&once, make_key);
  vg_scratch_set *s = pthread_getspecific(key);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) VG_ABORT("out of memory for kernel scratch");
    pthread_mutex_lock(&list_mu);
    s->next = list_head;
    if (list_head) list_head->prev = s;
    list_head = s;
    pthread_mutex_unlock(&list_mu);
    VG_ASSERT(pthread_setspecific(key, s) == 0);
  }
  if (nfloats == 0) nfloats = 1;
  if (s->cap[slot] < nfloats) {
    size_t cap = nfloats + nfloats / 4;          /* some headroom for growing shapes */
    size_t bytes = (cap * sizeof(float) + 63) / 64 * 64;
    free(s->buf[slot]);
    s->buf[slot] = aligned_alloc(64, bytes);
    if (!s->buf[slot]) VG_ABORT("out of memory for kernel scratch (%zu bytes)", bytes);
    s->cap[slot] = cap;
  }
  return s->buf[slot];
}

void vg_cpu_scratch_release(void) {
  pthread_once(&once, make_key);
  vg_scratch_set *s = pthread_getspecific(key);
  if (!s) return;
  pthread_setspecific(key, NULL);
  set_free(s);
}
