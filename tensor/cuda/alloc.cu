/* alloc.cu — the caching allocator of device memory (with per-graph pools and the blocks
 * held back between fork and join), pinned host memory, and the allocator statistics of
 * tensor.h's device section. */
#include "tensor/cuda/rt.h"
#include <string.h>

/* the blocks freed between fork and join (held_blk, rt.h): back to the free lists at the join */
static held_blk *held;
static size_t held_n, held_cap;

/* ---- caching allocator ----
 * Blocks of 2^b bytes (b >= 8). free_lists[b] holds cached blocks; live blocks are in
 * an open-addressing table (pointer -> bucket, owning graph pool) so vg_cuda_free knows
 * the size and where the block goes back to.
 *
 * Graph pools: while a graph is captured, an allocation takes a block from that graph's
 * pool (else from the global cache, else cudaMalloc) and the block belongs to the pool
 * from then on: freed (during or after the capture) it goes back to the pool's free
 * lists, never to the global cache, so the addresses baked into the graph are never
 * handed to another tensor while the graph exists. Inside one capture, blocks are
 * reused in stream order exactly as eagerly. vg_cuda_graph_free moves the pool's free
 * blocks to the global cache (still-live ones go there when freed). */
static blk *free_lists[VG_NBUCKET];
static blk *spare_nodes;
typedef struct { void *p; int bucket; gpool *pool; int br; } live_ent;   /* br: see held_blk */
static live_ent *live;
static size_t live_cap, live_n;
static size_t bytes_cached, bytes_live, bytes_graph, peak_live, peak_reserved;
static int64_t n_malloc, n_alloc_calls;

/* pinned host blocks (vg_cuda_host_alloc): the copies check a host pointer against them */
typedef struct { char *p; size_t n; } pinned_ent;
static pinned_ent *pinned;
static size_t pinned_n, pinned_cap;

static size_t hash_ptr(void *p) { return (size_t)(((uintptr_t)p >> 8) * 0x9E3779B97F4A7C15ull); }

static void live_put(void *p, int b, gpool *pool, int br);
static void live_grow(void) {
  live_ent *old = live;
  size_t oc = live_cap;
  live_cap = oc ? oc * 2 : 1024;
  live = (live_ent *)calloc(live_cap, sizeof *live);
  if (!live) VG_ABORT("out of host memory (CUDA allocator table)");
  live_n = 0;
  for (size_t i = 0; i < oc; i++)
    if (old[i].p) live_put(old[i].p, old[i].bucket, old[i].pool, old[i].br);
  free(old);
}

static void live_put(void *p, int b, gpool *pool, int br) {
  if ((live_n + 1) * 2 > live_cap) live_grow();
  size_t m = live_cap - 1, i = hash_ptr(p) & m;
  while (live[i].p) i = (i + 1) & m;
  live[i].p = p;
  live[i].bucket = b;
  live[i].pool = pool;
  live[i].br = br;
  live_n++;
}

static int live_take(void *p, gpool **pool, int *br) {
  if (!live_cap) return -1;
  size_t m = live_cap - 1, i = hash_ptr(p) & m;
  while (live[i].p && live[i].p != p) i = (i + 1) & m;
  if (!live[i].p) return -1;
  int b = live[i].bucket;
  *pool = live[i].pool;
  *br = live[i].br;
  live[i].p = NULL;
  live_n--;
  /* re-insert the rest of the cluster (backward-shift deletion done simply) */
  for (size_t j = (i + 1) & m; live[j].p; j = (j + 1) & m) {
    live_ent e = live[j];
    live[j].p = NULL;
    live_n--;
    live_put(e.p, e.bucket, e.pool, e.br);
  }
  return b;
}

static blk *node_new(void) {
  blk *k = spare_nodes;
  if (k) spare_nodes = k->next;
  else if (!(k = (blk *)malloc(sizeof *k))) VG_ABORT("out of host memory");
  return k;
}

/* pops a block of bucket b from lists (NULL when empty) */
static void *pop_block(blk **lists, int b) {
  blk *k = lists[b];
  if (!k) return NULL;
  lists[b] = k->next;
  void *p = k->p;
  k->next = spare_nodes;
  spare_nodes = k;
  return p;
}

static void push_block(blk **lists, int b, void *p) {
  blk *k = node_new();
  k->p = p;
  k->next = lists[b];
  lists[b] = k;
}

void vg_rt::release_cached(void) {
  for (int b = 0; b < VG_NBUCKET; b++) {
    void *p;
    while ((p = pop_block(free_lists, b))) cudaFree(p);
  }
  bytes_cached = 0;
}

static void note_reserved(void) {
  size_t r = bytes_live + bytes_cached + bytes_graph;
  if (r > peak_reserved) peak_reserved = r;
}

/* cudaMalloc, allowed during a capture: cudaMalloc is not stream-ordered, so capture
 * treats it as "potentially unsafe"; this thread's mode is relaxed around the call */
static cudaError_t raw_malloc(void **p, size_t n) {
  if (!cap) return cudaMalloc(p, n);
  enum cudaStreamCaptureMode m = cudaStreamCaptureModeRelaxed;
  cudaThreadExchangeStreamCaptureMode(&m);
  cudaError_t e = cudaMalloc(p, n);
  cudaThreadExchangeStreamCaptureMode(&m);
  return e;
}

void *vg_cuda_alloc(size_t n) {
  int b = 8;
  while (b < VG_NBUCKET - 1 && ((size_t)1 << b) < n) b++;
  if (((size_t)1 << b) < n) VG_ABORT("CUDA allocation of %zu bytes is too large", n);
  size_t sz = (size_t)1 << b;
  pthread_mutex_lock(&lock);
  n_alloc_calls++;
  gpool *pool = cap ? &cap->pool : NULL;
  void *p = NULL;
  const int br = branch_tag();
  for (size_t i = 0; forked && i < held_n; i++)   /* this branch's own freed blocks first */
    if (held[i].br == br && held[i].b == b && held[i].pool == pool) {
      p = held[i].p;
      held[i] = held[--held_n];
      bytes_live -= sz;   /* counted live again below */
      break;
    }
  if (p) {
  } else if (pool && (p = pop_block(pool->free_lists, b))) {
    pool->bytes_free -= sz;
    bytes_graph -= sz;
  } else if ((p = pop_block(free_lists, b))) {
    bytes_cached -= sz;
  } else {
    cudaError_t e = raw_malloc(&p, sz);
    if (e != cudaSuccess && !cap) { /* give the cache back to the driver and retry once */
      (void)cudaGetLastError();
      cudaStreamSynchronize(stream);
      release_cached();
      e = cudaMalloc(&p, sz);
    }
    if (e != cudaSuccess) {
      pthread_mutex_unlock(&lock);
      VG_ABORT("%s: cudaMalloc(%zu) failed%s: %s (%zu bytes live, %zu cached)",
               e == cudaErrorMemoryAllocation ? "CUDA out of memory" : "CUDA allocation failed", sz,
               cap ? " during graph capture" : "", cudaGetErrorString(e), bytes_live, bytes_cached);
    }
    n_malloc++;
  }
  live_put(p, b, pool, br);
  bytes_live += sz;
  if (bytes_live > peak_live) peak_live = bytes_live;
  note_reserved();
  pthread_mutex_unlock(&lock);
  return p;
}

void vg_cuda_free(void *p) {
  if (!p) return;
  pthread_mutex_lock(&lock);
  gpool *pool = NULL;
  int br = 0;
  int b = live_take(p, &pool, &br);
  if (b < 0) {
    pthread_mutex_unlock(&lock);
    VG_ABORT("vg_cuda_free of %p: not a block of the CUDA allocator", p);
  }
  /* the stream is in order: work queued before this free finishes before any later
   * kernel that reuses the block (while forked, the join orders it: held until then) */
  size_t sz = (size_t)1 << b;
  if (forked) {
    if (held_n == held_cap) {
      held_cap = held_cap ? 2 * held_cap : 256;
      held = (held_blk *)realloc(held, held_cap * sizeof *held);
      if (!held) VG_ABORT("out of host memory (CUDA allocator)");
    }
    held[held_n++] = (held_blk){p, b, pool, br == branch_tag() ? br : 0};
    pthread_mutex_unlock(&lock);
    return;
  }
  if (pool) {
    push_block(pool->free_lists, b, p);
    pool->bytes_free += sz;
    bytes_graph += sz;
  } else {
    push_block(free_lists, b, p);
    bytes_cached += sz;
  }
  bytes_live -= sz;
  pthread_mutex_unlock(&lock);
}

/* the pool's free blocks to the global cache; live blocks of the pool become global ones
 * (called with the lock held) */
void vg_rt::pool_release(gpool *pool) {
  for (int b = 0; b < VG_NBUCKET; b++) {
    void *p;
    while ((p = pop_block(pool->free_lists, b))) push_block(free_lists, b, p);
  }
  bytes_graph -= pool->bytes_free;
  bytes_cached += pool->bytes_free;
  pool->bytes_free = 0;
  for (size_t i = 0; i < live_cap; i++)
    if (live[i].p && live[i].pool == pool) live[i].pool = NULL;
}

/* the held blocks back to their free lists (called with the lock held, after the join) */
void vg_rt::release_held(void) {
  for (size_t i = 0; i < held_n; i++) {
    size_t sz = (size_t)1 << held[i].b;
    if (held[i].pool) {
      push_block(held[i].pool->free_lists, held[i].b, held[i].p);
      held[i].pool->bytes_free += sz;
      bytes_graph += sz;
    } else {
      push_block(free_lists, held[i].b, held[i].p);
      bytes_cached += sz;
    }
    bytes_live -= sz;
  }
  held_n = 0;
}

/* is [p, p + n) inside one vg_cuda_host_alloc block? */
bool vg_rt::is_pinned(const void *p, size_t n) {
  pthread_mutex_lock(&lock);
  bool ok = false;
  for (size_t i = 0; i < pinned_n && !ok; i++)
    ok = (const char *)p >= pinned[i].p && (const char *)p + n <= pinned[i].p + pinned[i].n;
  pthread_mutex_unlock(&lock);
  return ok;
}

void *vg_cuda_host_alloc(size_t nbytes) {
  if (!nbytes) nbytes = 1;
  if (vg_cuda_init() != VG_OK) { /* no device: plain host memory does the same job */
    vg_clear_error();
    return malloc(nbytes);
  }
  void *p = NULL;
  cudaError_t e = cudaMallocHost(&p, nbytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    vg_fail(VG_ERR_NOMEM, "cuda: cudaMallocHost(%zu) failed: %s", nbytes, cudaGetErrorString(e));
    return NULL;
  }
  pthread_mutex_lock(&lock);
  if (pinned_n == pinned_cap) {
    size_t nc = pinned_cap ? pinned_cap * 2 : 16;
    pinned_ent *np = (pinned_ent *)realloc(pinned, nc * sizeof *np);
    if (!np) VG_ABORT("out of host memory");
    pinned = np;
    pinned_cap = nc;
  }
  pinned[pinned_n].p = (char *)p;
  pinned[pinned_n].n = nbytes;
  pinned_n++;
  pthread_mutex_unlock(&lock);
  return p;
}

void vg_cuda_host_free(void *p) {
  if (!p) return;
  pthread_mutex_lock(&lock);
  size_t i = 0;
  while (i < pinned_n && pinned[i].p != p) i++;
  bool was_pinned = i < pinned_n;
  if (was_pinned) pinned[i] = pinned[--pinned_n];
  pthread_mutex_unlock(&lock);
  if (was_pinned) VG_CUDA_CHECK(cudaFreeHost(p));
  else free(p);
}

vg_status vg_cuda_mem_stats_get(vg_cuda_mem_stats *s) {
  if (!s) return vg_fail(VG_ERR_ARG, "vg_cuda_mem_stats_get: NULL argument");
  vg_status st = vg_cuda_init();
  if (st != VG_OK) return st;
  pthread_mutex_lock(&lock);
  s->bytes_live = bytes_live;
  s->bytes_cached = bytes_cached;
  s->bytes_graph = bytes_graph;
  s->peak_live = peak_live;
  s->peak_reserved = peak_reserved;
  s->n_malloc = n_malloc;
  s->n_alloc_calls = n_alloc_calls;
  pthread_mutex_unlock(&lock);
  return VG_OK;
}

void vg_cuda_reset_peak(void) {
  pthread_mutex_lock(&lock);
  peak_live = bytes_live;
  peak_reserved = bytes_live + bytes_cached + bytes_graph;
  pthread_mutex_unlock(&lock);
}

void vg_cuda_empty_cache(void) {
  if (init_state != 1 || cap) return;   /* cudaFree would break a capture */
  VG_CUDA_CHECK(cudaStreamSynchronize(stream));
  pthread_mutex_lock(&lock);
  release_cached();
  pthread_mutex_unlock(&lock);
}

/* at exit (backend.cu, stream synchronized): graph pools, the cache, live blocks, pinned
 * buffers and the tables back */
void vg_rt::alloc_release_all(void) {
  for (vg_cuda_graph *g = all_graphs; g; g = g->next_all) pool_release(&g->pool);
  release_cached();
  for (size_t i = 0; i < live_cap; i++)
    if (live[i].p) cudaFree(live[i].p);
  free(live);
  live = NULL;
  live_cap = live_n = 0;
  for (size_t i = 0; i < pinned_n; i++) cudaFreeHost(pinned[i].p);
  free(pinned);
  pinned = NULL;
  pinned_n = pinned_cap = 0;
  while (spare_nodes) {
    blk *k = spare_nodes;
    spare_nodes = k->next;
    free(k);
  }
  free(held);
  held = NULL;
  held_n = held_cap = 0;
}
