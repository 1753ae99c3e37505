#!/usr/bin/python3
"""Writes tests/fixtures/select/quantile.bin: torch.quantile references for
tests/test_ops_select.c (vg_quantile_all == torch.quantile(x.flatten(), q), default
'linear' interpolation, compared bit for bit).

Small inputs are stored. Big inputs are not: both sides generate them from a
counter-based hash (splitmix64, exact float32 arithmetic), see hashed() here and in
the test; only torch's results are stored.

File format (little endian): b"VGSQ", u32 version (1), u32 nq, f64 q[nq], u32 ncases,
then per case: u8 kind (0 stored, 1 hashed), u8 gen, u64 n, u64 seed,
[f32 x[n] when stored], f32 result[nq].

Run: /usr/bin/python3 tools/gen_select_fixtures.py  (torch, numpy)
"""
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "select",
                   "quantile.bin")
QS = [0.0, 0.001, 0.5, 0.9, 0.995, 0.999, 1.0]
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x):
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hashed(gen, n, seed):
    """gen 0: products of two uniforms (spread, many magnitudes); gen 1: 17 tied values."""
    i = np.arange(n, dtype=np.uint64)
    base = np.uint64(seed) << np.uint64(32)
    h1 = splitmix64(base + np.uint64(2) * i)
    h2 = splitmix64(base + np.uint64(2) * i + np.uint64(1))
    if gen == 0:
        a = (h1 >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24) - np.float32(0.5)
        b = (h2 >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -20)
        return (a * b).astype(np.float32)
    return ((h1 >> np.uint64(40)) % np.uint64(17)).astype(np.float32) - np.float32(8)


def quantiles(x):
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return np.array([torch.quantile(t, q).item() for q in QS], dtype=np.float32)


def main():
    rng = np.random.default_rng(20240611)
    inf, nan = np.inf, np.nan
    stored = [
        np.array([3.5], np.float32),
        np.array([2.0, -1.0], np.float32),
        np.array([0.25, -7.0, 1e30], np.float32),
        np.array([-0.0, 0.0, -0.0, 1.0, -1.0, 0.0, -0.0], np.float32),
        np.array([1.0, inf, -inf, 2.0, 3.0, -5.0, inf, 0.5, 7.0, -inf], np.float32),
        np.array([1.0, 2.0, nan, 3.0, 4.0], np.float32),
        np.array([inf, 1.0], np.float32),
        rng.standard_normal(1000).astype(np.float32),
        rng.integers(-3, 4, 4099).astype(np.float32),
        (rng.standard_normal(20011) * np.exp(3 * rng.standard_normal(20011))).astype(np.float32),
    ]
    # many short rows with fractional ranks: the lerp's rounding (fused or not) shows
    for _ in range(60):
        m = int(rng.integers(2, 50))
        stored.append((rng.standard_normal(m) * 10.0 ** rng.uniform(-3, 3, m)).astype(np.float32))
    hashed_cases = [(0, 1200000, 1), (1, 333333, 2), (0, 77777, 3)]
    with open(OUT + ".tmp", "wb") as f:
        f.write(b"VGSQ" + struct.pack("<II", 1, len(QS)) + struct.pack("<%dd" % len(QS), *QS))
        f.write(struct.pack("<I", len(stored) + len(hashed_cases)))
        for x in stored:
            f.write(struct.pack("<BBQQ", 0, 0, x.size, 0))
            f.write(x.astype("<f4").tobytes())
            f.write(quantiles(x).astype("<f4").tobytes())
        for gen, n, seed in hashed_cases:
            x = hashed(gen, n, seed)
            f.write(struct.pack("<BBQQ", 1, gen, n, seed))
            f.write(quantiles(x).astype("<f4").tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(OUT + ".tmp", OUT)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    np.seterr(over="ignore")
    main()
