#!/usr/bin/python3
"""Writes tests/fixtures/augment/rotate.bin: Pillow's Image.rotate(angle, NEAREST, expand=False,
fillcolor=0) — what torchvision's RandomRotation(deg) does to a PIL image — of small 8-bit RGB
images, for tests/test_augment.c (methods/augment.c rotates normalised floats the same way).

Format (little endian): b"VGAR", i32 count, then per case: i32 w, i32 h, f64 angle,
w*h*3 u8 source (HWC), w*h*3 u8 rotated (HWC).

Run: /work/venv/bin/python tools/gen_augment_fixtures.py  (numpy, Pillow)
"""
import os
import struct

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "augment", "rotate.bin")


def main():
    rng = np.random.default_rng(7)
    cases = [(23, 17, 5.0), (23, 17, -5.0), (20, 20, 3.3), (20, 20, -4.99), (24, 14, 15.0), (24, 14, -12.7),
             (17, 17, 45.0), (18, 12, 90.0), (12, 12, 90.0), (19, 11, 180.0), (40, 40, 1.234567), (40, 40, -0.2),
             (21, 15, 137.5), (16, 16, 359.0), (18, 12, 270.0), (12, 12, -90.0), (10, 14, -370.25), (9, 13, 720.5)]
    out = bytearray(b"VGAR" + struct.pack("<i", len(cases)))
    for w, h, ang in cases:
        src = rng.integers(1, 256, size=(h, w, 3), dtype=np.uint8)   # 1..255: the fill 0 is told apart
        rot = np.asarray(Image.fromarray(src).rotate(ang, Image.NEAREST, expand=False, fillcolor=(0, 0, 0)))
        out += struct.pack("<iid", w, h, ang) + src.tobytes() + rot.tobytes()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".tmp", "wb") as f:
        f.write(out)
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT}: {len(out)} bytes, {len(cases)} cases")


if __name__ == "__main__":
    main()
