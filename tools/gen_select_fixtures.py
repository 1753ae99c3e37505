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

from fractions import Fraction

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
    """gen 0: products of two uniforms (spread, many magnitudes); gen 1: 17 tied values;
    gen 2: heavy-tailed, a uniform in [-0.5, 0.5) times 2^e, e uniform in -20..20 (exact)."""
    i = np.arange(n, dtype=np.uint64)
    base = np.uint64(seed) << np.uint64(32)
    h1 = splitmix64(base + np.uint64(2) * i)
    h2 = splitmix64(base + np.uint64(2) * i + np.uint64(1))
    if gen == 0:
        a = (h1 >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24) - np.float32(0.5)
        b = (h2 >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -20)
        return (a * b).astype(np.float32)
    if gen == 2:
        a = (h1 >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24) - np.float32(0.5)
        e = ((h2 >> np.uint64(40)) % np.uint64(41)).astype(np.int32) - 20
        return np.ldexp(a, e).astype(np.float32)
    return ((h1 >> np.uint64(40)) % np.uint64(17)).astype(np.float32) - np.float32(8)


# torch 1.13's quantile (the reference Vigil matches bit for bit): rank = float32(q) *
# float32(n - 1) in float32, then lerp(lo, hi, w) in float32 with one rounding (fused).
# torch 2.x computes the ranks differently, so under torch 2 the references come from this
# emulation; it reproduces every torch-1.13 result of the first version of quantile.bin
# (73 cases x 7 q, incl. 1.2M hashed values) bit for bit.
def _f32_nearest(fr):
    f = np.float32(float(fr))
    best = None
    for c in (np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))):
        if not np.isfinite(c): continue
        d = abs(Fraction(float(c)) - fr)
        if best is None or d < best[0] or (d == best[0] and (c.view(np.uint32) & 1) == 0):
            best = (d, c)
    return best[1]
def fmaf(x, y, z):
    x, y, z = np.float32(x), np.float32(y), np.float32(z)
    if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z)):
        r = np.float32(np.float64(x) * np.float64(y) + np.float64(z))
        # an invalid operation (inf - inf, 0 * inf) gives x86's default NaN, 0xffc00000
        return np.array([0xffc00000], np.uint32).view(np.float32)[0] if np.isnan(r) else r
    r = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
    if r == 0:
        return np.float32(np.float64(x) * np.float64(y) + np.float64(z))
    return _f32_nearest(r)
def quantile13(x, q):
    x = np.asarray(x, np.float32)
    if np.isnan(x).any(): return np.float32(np.nan)   # torch's NaN fill: 0x7fc00000
    s = np.sort(x, kind='stable')
    n = len(s)
    rank = np.float32(np.float32(q) * np.float32(n - 1))
    lo = int(rank); hi = int(np.ceil(rank))
    w = np.float32(rank - np.float32(lo)); a = s[lo]; b = s[hi]
    with np.errstate(all='ignore'):
        d = np.float32(b - a)
        return fmaf(w, d, a) if abs(w) < 0.5 else fmaf(-d, np.float32(1) - w, b)


def quantiles(x):
    if torch.__version__.startswith("1."):
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return np.array([torch.quantile(t, q).item() for q in QS], dtype=np.float32)
    return np.array([quantile13(x, q) for q in QS], dtype=np.float32)


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
    ]
    # (a stored heavy-tailed case of 20011 values, 80 KB, is the hashed gen-2 case now; its
    # draws stay, so the short rows below are the same as before)
    rng.standard_normal(20011), rng.standard_normal(20011)
    # many short rows with fractional ranks: the lerp's rounding (fused or not) shows
    for _ in range(60):
        m = int(rng.integers(2, 50))
        stored.append((rng.standard_normal(m) * 10.0 ** rng.uniform(-3, 3, m)).astype(np.float32))
    hashed_cases = [(0, 1200000, 1), (1, 333333, 2), (0, 77777, 3), (2, 20011, 4)]
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
