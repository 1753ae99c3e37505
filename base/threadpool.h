/* threadpool.h — the thread pool every layer shares (base/threadpool.c).
 *
 *   vg_set_num_threads(4);                       // or VIGIL_THREADS=4
 *   vg_parallel_for(n, 64, fn, ctx);             // fn(ctx, begin, end, tid) over [0, n)
 *
 * vg_parallel_for(n, grain, fn, ctx) splits [0, n) into chunks of `grain` items
 * ([0,grain), [grain,2*grain), ...) and runs fn(ctx, begin, end, tid) on each chunk,
 * chunks handed out dynamically to the pool's threads; the caller's thread works too.
 * Chunk boundaries depend only on n and grain, never on the thread count, so a kernel
 * that reduces per chunk and combines chunk results in chunk order gives identical
 * results for any thread count. `tid` is in [0, vg_num_threads()) and is stable for
 * the duration of one chunk: use it to index per-thread scratch.
 * Nested calls (from inside fn) run serially on the calling thread.
 * A fixed pool of workers fed one job at a time (the caller waits for it); workers spin
 * briefly on the job generation before sleeping on a condvar. */
#ifndef VG_THREADPOOL_H
#define VG_THREADPOOL_H
#include <stdint.h>

typedef void (*vg_range_fn)(void *ctx, int64_t begin, int64_t end, int tid);

void vg_parallel_for(int64_t n, int64_t grain, vg_range_fn fn, void *ctx);
int vg_num_threads(void);           /* VIGIL_THREADS, else the usable core count */
void vg_set_num_threads(int n);     /* n <= 0: back to the default */
#endif
