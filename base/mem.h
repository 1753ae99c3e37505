/* mem.h — the process's malloc settings for tensor-sized blocks (base/mem.c).
 *
 * glibc serves blocks above its mmap threshold (dynamic, at most 32 MiB) with a fresh mmap
 * each time and returns freed heap tops above its trim threshold to the kernel, so a
 * training step that frees and re-allocates the same large gradients and backward
 * temporaries every step pays page faults (and the kernel's zeroing) for all of them each
 * time: measured on FastFlow-WRN50 batch-8 training steps, 7 s of system time in 50 s of
 * CPU time. vg_mem_tune() (idempotent, thread-safe; the tensor allocators call it before
 * their first allocation) raises the mmap threshold to 128 MiB and the trim threshold to
 * 1 GiB with mallopt, so such blocks are reused from the heap (peak RSS does not grow:
 * what is freed is reused, not added). VIGIL_MALLOC_TUNE=0 in the environment leaves
 * malloc as it is (for programs embedding the library that tune malloc themselves). A
 * no-op without glibc's mallopt. */
#ifndef VG_BASE_MEM_H
#define VG_BASE_MEM_H
#include <stdbool.h>
#include <stddef.h>

void vg_mem_tune(void);
/* 64-byte aligned blocks for tensor data, from plain malloc (the pointer moved up to the
 * next 64-byte boundary, the shift kept in the byte before it): glibc reuses freed plain
 * blocks of the heap, where its aligned_alloc path keeps growing the heap and faulting
 * new pages for blocks of the same size (measured: 64 MiB blocks fault every other round
 * with aligned_alloc, never after the first with malloc). Never NULL for n = 0; NULL when
 * out of memory. Free with vg_mem_free only. Under ASan: aligned_alloc / free (exact
 * bounds for its overflow checks). */
void *vg_mem_alloc(size_t n);
/* vg_mem_alloc's block zeroed by calloc: large fresh blocks are mapped zero pages that cost
 * no memory until written */
void *vg_mem_calloc(size_t n);
void vg_mem_free(void *p);
bool vg_mem_tuned(void);   /* whether vg_mem_tune changed the settings */
#endif
