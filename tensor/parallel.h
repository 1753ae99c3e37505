/* parallel.h — the CPU runtime's public knobs: the thread pool and the SIMD path (part of
 * tensor/; the implementations are tensor/cpu/threadpool.c and tensor/cpu/isa.c).
 *
 *   vg_set_num_threads(4);                       // or VIGIL_THREADS=4
 *   vg_parallel_for(n, 64, fn, ctx);             // fn(ctx, begin, end, tid) over [0, n)
 *   printf("%s\n", vg_isa_name(vg_cpu_isa())); // "avx512"
 *
 * vg_parallel_for(n, grain, fn, ctx) splits [0, n) into chunks of `grain` items
 * ([0,grain), [grain,2*grain), ...) and runs fn(ctx, begin, end, tid) on each chunk,
 * chunks handed out dynamically to the pool's threads; the caller's thread works too.
 * Chunk boundaries depend only on n and grain, never on the thread count, so a kernel
 * that reduces per chunk and combines chunk results in chunk order gives identical
 * results for any thread count. `tid` is in [0, vg_num_threads()) and is stable for
 * the duration of one chunk: use it to index per-thread scratch.
 * Nested calls (from inside fn) run serially on the calling thread.
 *
 * The SIMD path is chosen once at run time from the CPU (AVX-512F -> avx512, AVX2+FMA ->
 * avx2, else scalar); VIGIL_ISA=scalar|avx2|avx512 or vg_cpu_set_isa() overrides it (never
 * above what the CPU has). */
#ifndef VG_PARALLEL_H
#define VG_PARALLEL_H
#include <stdint.h>

typedef void (*vg_range_fn)(void *ctx, int64_t begin, int64_t end, int tid);

void vg_parallel_for(int64_t n, int64_t grain, vg_range_fn fn, void *ctx);
int vg_num_threads(void);           /* VIGIL_THREADS, else the usable core count */
void vg_set_num_threads(int n);     /* n <= 0: back to the default */

typedef enum { VG_ISA_SCALAR = 0, VG_ISA_AVX2 = 1, VG_ISA_AVX512 = 2 } vg_isa;
vg_isa vg_cpu_isa(void);              /* the path in use now */
vg_isa vg_cpu_isa_max(void);          /* the best this CPU supports */
void vg_cpu_set_isa(vg_isa isa);      /* clamped to vg_cpu_isa_max() */
const char *vg_isa_name(vg_isa isa);
#endif
