"""Writes Vigil's simple fixture format (read by tests/common/fixture.c).

Version 1: b"VGFX" u32 1, then the body: u32 count, then per tensor
  u32 name_len, name bytes (utf-8), u32 ndim, i64 dims[ndim], f32 data (little endian, C order).
Version 2 (what write() makes): b"VGFX" u32 2 u64 len(body), then the body as one zlib stream
(the fixtures stay small in the repository; the test reader inflates with base/inflate).
Every tensor is stored as float32 (indices too: exact below 2^24).
Version 3 (what write() makes when a tensor was made by philox_uniform()): version 2 where
  such a tensor has no data: u32 ndim | 0x100, i64 dims[ndim], then u32 kind (1), u64 seed,
  f32 lo, f32 hi; the reader fills element i with lo + (hi - lo) * u_i in f32 (two roundings),
  u_i = tools/philox.py uniform(seed, n)[i] (= vg_uniform_), so random inputs cost 24 bytes.

  python3 tools/fixtures.py FILE.vgfx ...   rewrites version-1 files as version 2 (same tensors)"""
import os
import struct
import sys
import zlib
import numpy as np

import philox

_GEN = {}   # id(object) -> (object, seed, lo, hi): tensors made by philox_uniform


def anomalib_dir():
    """anomalib's package directory, for generators that load single files of it with stubs:
    $VIGIL_ANOMALIB_SRC, /work/anomalib_src/anomalib, or the installed package (pip install
    anomalib==2.7.0; located without importing it)."""
    import importlib.util
    for d in (os.environ.get("VIGIL_ANOMALIB_SRC"), "/work/anomalib_src/anomalib"):
        if d and os.path.isdir(d):
            return d
    spec = importlib.util.find_spec("anomalib")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("anomalib's source not found: set VIGIL_ANOMALIB_SRC or pip install anomalib==2.7.0")
    return list(spec.submodule_search_locations)[0]


def philox_uniform(shape, lo, hi, seed, torch_tensor=True):
    """vg_uniform_(t, lo, hi, seed) values (a torch tensor, or numpy with torch_tensor=False);
    write() stores such an object (the very object, unchanged) as a version-3 generated record."""
    a = philox.uniform_range(tuple(shape), lo, hi, seed)
    if torch_tensor:
        import torch
        a = torch.from_numpy(a)
    _GEN[id(a)] = (a, int(seed), float(np.float32(lo)), float(np.float32(hi)))
    return a


def _as_f32(arr):
    if hasattr(arr, "detach"):
        arr = arr.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(arr, dtype=np.float32))


def _body(tensors):
    out = [struct.pack("<I", len(tensors))]
    gen_any = False
    for name, arr in tensors.items():
        a = _as_f32(arr)
        nb = name.encode()
        g = _GEN.get(id(arr))
        if g is not None and g[0] is arr:
            _, seed, lo, hi = g
            if not np.array_equal(a.view(np.uint32), philox.uniform_range(a.shape, lo, hi, seed).view(np.uint32)):
                raise SystemExit(name + ": changed after philox_uniform(); store a copy instead")
            out += [struct.pack("<I", len(nb)), nb, struct.pack("<I", a.ndim | 0x100), struct.pack("<%dq" % a.ndim, *a.shape),
                    struct.pack("<IQff", 1, seed, lo, hi)]
            gen_any = True
            continue
        out += [struct.pack("<I", len(nb)), nb, struct.pack("<I", a.ndim), struct.pack("<%dq" % a.ndim, *a.shape),
                a.astype("<f4").tobytes()]
    return b"".join(out), 3 if gen_any else 2


def _write_body(path, body, version=2):
    with open(path + ".tmp", "wb") as f:
        f.write(b"VGFX" + struct.pack("<IQ", version, len(body)) + zlib.compress(body, 9))
    os.replace(path + ".tmp", path)


def write(path, tensors):
    body, version = _body(tensors)
    _write_body(path, body, version)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        b = open(p, "rb").read()
        if b[:4] != b"VGFX":
            sys.exit(p + ": not a VGFX file")
        ver = struct.unpack("<I", b[4:8])[0]
        if ver == 1:
            before = len(b)
            _write_body(p, b[8:])
            print(p, before, "->", os.path.getsize(p))
