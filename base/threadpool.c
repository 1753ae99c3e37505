/* A fixed pool of worker threads fed one job at a time (the caller waits for it).
 * Workers spin on the job generation for up to VG_SPIN_NS after a job before sleeping on
 * a condvar, so the jobs of a model's forward, which come with gaps of serial work
 * between them (tens to hundreds of microseconds), don't pay a futex wake each time
 * (a fixed 20000 loads, about 11 us here, slept between most of them: FastFlow-R18 at
 * batch 1 spent 3-4 % more). An idle pool goes to sleep a millisecond after its last job. */
#include "base/threadpool.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include "base/parse.h"
#include <time.h>
#include <unistd.h>

#define VG_MAX_THREADS 256
#define VG_SPIN_NS 1000000        /* a worker's spin after a job before it sleeps */

typedef struct {
  vg_range_fn fn;
  void *ctx;
  int64_t n, grain, nchunks;
  atomic_llong next;      /* next chunk to hand out */
  atomic_int active;      /* workers still inside this job */
} vg_job;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pthread_t threads[VG_MAX_THREADS];
  int nworkers;           /* threads besides the caller */
  int want;               /* configured total thread count (0 = not set yet) */
  atomic_uint gen;        /* bumped for every job */
  vg_job job;
  int shutdown;
  pthread_mutex_t submit; /* one job at a time from any caller thread */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER, .submit = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int in_pool_job;

static int usable_cores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int c = CPU_COUNT(&set);
    if (c > 0) return c > VG_MAX_THREADS ? VG_MAX_THREADS : c;
  }
  long c = sysconf(_SC_NPROCESSORS_ONLN);
  return c > 0 ? (c > VG_MAX_THREADS ? VG_MAX_THREADS : (int)c) : 1;
}

/* VIGIL_THREADS (strict: an integer in [1, VG_MAX_THREADS]; anything else is warned about by
 * name and the usable core count is used), else the usable core count. Read once. */
static int default_threads(void) {
  static int cached;
  if (cached) return cached;
  int cores = usable_cores();
  char desc[64];
  snprintf(desc, sizeof desc, "%d (the usable cores)", cores);
  int n = (int)vg_env_i64("VIGIL_THREADS", 1, VG_MAX_THREADS, cores, desc);
  if (n > cores)
    fprintf(stderr, "vigil: warning: VIGIL_THREADS=%d is more than the %d usable cores (allowed; usually slower)\n", n,
            cores);
  return cached = n;
}

static void run_chunks(vg_job *j, int tid) {
  for (;;) {
    int64_t c = atomic_fetch_add(&j->next, 1);
    if (c >= j->nchunks) break;
    int64_t b = c * j->grain, e = b + j->grain;
    if (e > j->n) e = j->n;
    j->fn(j->ctx, b, e, tid);
  }
}

static void *worker(void *arg) {
  int tid = (int)(intptr_t)arg;
  unsigned seen = 0;
  in_pool_job = 1;
  for (;;) {
    unsigned g;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int spins = 1; (g = atomic_load(&pool.gen)) == seen; spins++) {
      if (spins % 256) continue;   /* the clock every 256 loads (a fraction of a microsecond) */
      clock_gettime(CLOCK_MONOTONIC, &t);
      if ((t.tv_sec - t0.tv_sec) * 1000000000ll + (t.tv_nsec - t0.tv_nsec) >= VG_SPIN_NS) break;
    }
    if (g == seen) {
      pthread_mutex_lock(&pool.mu);
      while ((g = atomic_load(&pool.gen)) == seen && !pool.shutdown) pthread_cond_wait(&pool.wake, &pool.mu);
      pthread_mutex_unlock(&pool.mu);
    }
    if (pool.shutdown) return NULL;
    seen = g;
    run_chunks(&pool.job, tid);
    if (atomic_fetch_sub(&pool.job.active, 1) == 1) {
      pthread_mutex_lock(&pool.mu);
      pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.mu);
    }
  }
}

static void stop_workers(void) {
  pthread_mutex_lock(&pool.mu);
  pool.shutdown = 1;
  atomic_fetch_add(&pool.gen, 1);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  for (int i = 0; i < pool.nworkers; i++) pthread_join(pool.threads[i], NULL);
  pool.nworkers = 0;
  pool.shutdown = 0;
}

static void atexit_stop(void) { stop_workers(); }

static void ensure_pool(void) {
  if (pool.want == 0) {
    pool.want = default_threads();
    atexit(atexit_stop);
  }
  while (pool.nworkers < pool.want - 1) {
    int tid = pool.nworkers + 1;
    if (pthread_create(&pool.threads[pool.nworkers], NULL, worker, (void *)(intptr_t)tid) != 0) {
      pool.want = pool.nworkers + 1; /* run with what we have */
      break;
    }
    pool.nworkers++;
  }
}

int vg_num_threads(void) {
  if (pool.want == 0) {
    pthread_mutex_lock(&pool.submit);
    ensure_pool();
    pthread_mutex_unlock(&pool.submit);
  }
  return pool.want;
}

void vg_set_num_threads(int n) {
  pthread_mutex_lock(&pool.submit);
  if (pool.want == 0) atexit(atexit_stop);
  stop_workers();
  pool.want = n > 0 ? (n > VG_MAX_THREADS ? VG_MAX_THREADS : n) : default_threads();
  ensure_pool();
  pthread_mutex_unlock(&pool.submit);
}

void vg_parallel_for(int64_t n, int64_t grain, vg_range_fn fn, void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t nchunks = (n + grain - 1) / grain;
  if (in_pool_job || nchunks == 1 || vg_num_threads() == 1) {
    for (int64_t b = 0; b < n; b += grain) fn(ctx, b, b + grain < n ? b + grain : n, 0);
    return;
  }
  pthread_mutex_lock(&pool.submit);
  ensure_pool();
  vg_job *j = &pool.job;
  j->fn = fn; j->ctx = ctx; j->n = n; j->grain = grain; j->nchunks = nchunks;
  atomic_store(&j->next, 0);
  atomic_store(&j->active, pool.nworkers);
  pthread_mutex_lock(&pool.mu);
  atomic_fetch_add(&pool.gen, 1);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  in_pool_job = 1;
  run_chunks(j, 0);
  in_pool_job = 0;
  if (atomic_load(&j->active) > 0) {
    int spins = 0;
    while (atomic_load(&j->active) > 0 && spins < 200000) spins++;
    pthread_mutex_lock(&pool.mu);
    while (atomic_load(&j->active) > 0) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
  }
  pthread_mutex_unlock(&pool.submit);
}
