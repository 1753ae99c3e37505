"""Writes Vigil's simple fixture format (read by tests/common/fixture.c).

Version 1: b"VGFX" u32 1, then the body: u32 count, then per tensor
  u32 name_len, name bytes (utf-8), u32 ndim, i64 dims[ndim], f32 data (little endian, C order).
Version 2 (what write() makes): b"VGFX" u32 2 u64 len(body), then the body as one zlib stream
(the fixtures stay small in the repository; the test reader inflates with base/inflate).
Every tensor is stored as float32 (indices too: exact below 2^24).

  python3 tools/fixtures.py FILE.vgfx ...   rewrites version-1 files as version 2 (same tensors)"""
import os
import struct
import sys
import zlib
import numpy as np


def _body(tensors):
    out = [struct.pack("<I", len(tensors))]
    for name, arr in tensors.items():
        a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
        nb = name.encode()
        out += [struct.pack("<I", len(nb)), nb, struct.pack("<I", a.ndim), struct.pack("<%dq" % a.ndim, *a.shape),
                a.astype("<f4").tobytes()]
    return b"".join(out)


def _write_body(path, body):
    with open(path + ".tmp", "wb") as f:
        f.write(b"VGFX" + struct.pack("<IQ", 2, len(body)) + zlib.compress(body, 9))
    os.replace(path + ".tmp", path)


def write(path, tensors):
    _write_body(path, _body(tensors))


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
