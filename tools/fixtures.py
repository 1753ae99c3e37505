"""Writes Vigil's simple fixture format (read by tests/common/fixture.c).

File: b"VGFX" u32 version=1 u32 count, then per tensor:
  u32 name_len, name bytes (utf-8), u32 ndim, i64 dims[ndim], f32 data (little endian, C order).
Every tensor is stored as float32 (indices too: exact below 2^24)."""
import struct
import numpy as np


def write(path, tensors):
    with open(path + ".tmp", "wb") as f:
        f.write(b"VGFX")
        f.write(struct.pack("<II", 1, len(tensors)))
        for name, arr in tensors.items():
            a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", a.ndim))
            f.write(struct.pack("<%dq" % a.ndim, *a.shape))
            f.write(a.astype("<f4").tobytes())
    import os
    os.replace(path + ".tmp", path)
