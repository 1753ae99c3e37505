"""Vigil's counter-based Philox4x32-10 (tensor/kmath/philox.h) in numpy, bit for bit.

uniform(seed, n)[i] == vg_philox_uniform_at(seed, i) == (word (i & 3) of
philox(counter = i >> 2, stream 0, key = seed)) >> 8, times 2^-24 (f32).
vg_rand(shape, seed) / vg_uniform_(t, lo, hi, seed) fill element i (row-major) with it
(vg_uniform_: lo + (hi - lo) * u in f32)."""
import numpy as np

M32 = np.uint64(0xFFFFFFFF)


def philox(ctr, stream, key):
    """ctr: uint64 array of counters; returns 4 uint32 words (each an array)."""
    ctr = np.asarray(ctr, dtype=np.uint64)
    c0 = ctr & M32
    c1 = ctr >> np.uint64(32)
    c2 = np.full_like(c0, np.uint64(stream))
    c3 = np.zeros_like(c0)
    k0 = int(key) & 0xFFFFFFFF
    k1 = (int(key) >> 32) & 0xFFFFFFFF
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        n0 = (p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0)
        n2 = (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1)
        c1 = p1 & M32
        c3 = p0 & M32
        c0 = n0
        c2 = n2
        k0 = (k0 + 0x9E3779B9) & 0xFFFFFFFF
        k1 = (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return c0, c1, c2, c3


def uniform(seed, n):
    """n f32 values vg_philox_uniform_at(seed, 0..n-1)."""
    nctr = (n + 3) // 4
    w = philox(np.arange(nctr, dtype=np.uint64), 0, seed)
    u = np.stack(w, axis=1).reshape(-1)[:n]          # word i & 3 of counter i >> 2
    return ((u >> np.uint64(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)).astype(np.float32)


def uniform_range(shape, lo, hi, seed):
    """vg_uniform_(t, lo, hi, seed) for a contiguous f32 tensor of this shape."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(seed, n)
    lo32, hi32 = np.float32(lo), np.float32(hi)
    return (lo32 + (hi32 - lo32) * u).astype(np.float32).reshape(shape)


if __name__ == "__main__":
    for seed in (0, 1, 12345, 0xDEADBEEFCAFE):
        print(seed, " ".join("%.8f" % v for v in uniform(seed, 6)))
