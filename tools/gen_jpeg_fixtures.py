#!/usr/bin/python3
"""Writes tests/fixtures/jpeg/: what Pillow (libjpeg-turbo, default settings) decodes from
each test JPEG (tests/data/conformance.zip's jpeg/ and tests/data/photos), for
tests/test_jpeg.c. Not needed to build or test.

    unzip -qo tests/data/conformance.zip -d tests/data   # jpeg/ beside photos/ (not committed)
    /usr/bin/python3 tools/gen_jpeg_fixtures.py          # from the repository root

pillow.txt, one line per file:
    <path under tests/data> <w> <h> <c> <crc32 of the pixels> <stride> <cx> <cy> <cw> <ch>
  pixels: Pillow's decode, interleaved, row-major (CMYK files after .convert("RGB"));
  <name>.sub.png: every <stride>-th row and column of it (starting at 0);
  <name>.crop.png: the full-resolution crop at (cx, cy) of size cw x ch.
The C test checks the CRC (bit-exact) and both PNGs within 1/255 per channel.

damaged.txt, one line per damaged variant of a file (damage done in memory by the test):
    <path> <op> <a> <b> <w> <h> <c> <crc32 of Pillow's pixels>
  op rst K A:    add A (mod 8) to the number of the K-th RSTn marker after the first SOS
  op rstdel K 0: delete the K-th RSTn marker
  op trunc N 0:  keep the first N bytes (Pillow with LOAD_TRUNCATED_IMAGES, which appends EOI)
  op flip P 0:   XOR byte P with 0x5A (0xFF results become 0xFE)
Progressive files cut inside a scan other than the last refinement scans are left out: there
libjpeg-turbo 2.1.5's block smoothing of the rows after the cut differs from ours (see
jpeg_pixels.c).
"""
import glob
import io
import os
import zlib

import numpy as np
import PIL
from PIL import Image, ImageFile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "tests", "fixtures", "jpeg")


def damage(d, op, a, b):
    d = bytearray(d)
    if op in ("rst", "rstdel"):
        sos = d.find(b"\xff\xda")
        r = [i for i in range(sos, len(d) - 1) if d[i] == 0xFF and 0xD0 <= d[i + 1] <= 0xD7]
        i = r[a]
        if op == "rst":
            d[i + 1] = 0xD0 + ((d[i + 1] - 0xD0 + b) & 7)
        else:
            del d[i:i + 2]
    elif op == "trunc":
        d = d[:a]
    elif op == "flip":
        d[a] ^= 0x5A
        if d[a] == 0xFF:
            d[a] = 0xFE
    return bytes(d)


def damaged_lines():
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    lines = []
    plan = {
        "photos/person.jpg": [("rst", 5, 1), ("rst", 5, 3), ("rst", 6, 6), ("rst", 7, 2), ("rstdel", 5, 0)],
        "photos/dog.jpg": [("rst", 2, 4), ("rstdel", 3, 0)],
    }
    for rel, fr in (("photos/person.jpg", (0.3, 0.5, 0.77)), ("photos/dog.jpg", (0.41,)),
                    ("jpeg/video-001.q50.420.jpeg", (0.3, 0.5, 0.77)),
                    ("jpeg/video-001.rgb.jpeg", (0.6,)),
                    ("jpeg/video-001.cmyk.jpeg", (0.6,)),
                    ("jpeg/video-005.gray.jpeg", (0.5,)),
                    ("jpeg/video-001.progressive.jpeg", (0.77, 0.9)),
                    ("jpeg/video-001.q50.422.progressive.jpeg", ())):
        n = os.path.getsize(os.path.join(SHARED, rel))
        sos = open(os.path.join(SHARED, rel), "rb").read().find(b"\xff\xda")
        plan.setdefault(rel, [])
        plan[rel] += [("trunc", int(n * f), 0) for f in fr]
        plan[rel] += [("flip", sos + 20 + int((n - sos - 20) * f), 0) for f in (0.4, 0.6, 0.85)]
    for rel, ops in plan.items():
        d = open(os.path.join(SHARED, rel), "rb").read()
        for op, a, b in ops:
            im = Image.open(io.BytesIO(damage(d, op, a, b)))
            if im.mode == "CMYK":
                im = im.convert("RGB")
            px = np.asarray(im)
            c = 1 if px.ndim == 2 else px.shape[2]
            crc = zlib.crc32(np.ascontiguousarray(px).tobytes()) & 0xFFFFFFFF
            lines.append("%s %s %d %d %d %d %d %08x" % (rel, op, a, b, px.shape[1], px.shape[0], c, crc))
    return lines


def main():
    os.makedirs(OUT, exist_ok=True)
    files = sorted(glob.glob(os.path.join(SHARED, "jpeg", "*.jpeg")))
    files += sorted(glob.glob(os.path.join(SHARED, "photos", "*.jpg")))
    lines = ["# Pillow %s decodes (libjpeg-turbo); written by tools/gen_jpeg_fixtures.py" % PIL.__version__]
    for path in files:
        rel = os.path.relpath(path, SHARED)
        im = Image.open(path)
        if im.mode == "CMYK":
            im = im.convert("RGB")
        a = np.asarray(im)
        h, w = a.shape[:2]
        c = 1 if a.ndim == 2 else a.shape[2]
        crc = zlib.crc32(np.ascontiguousarray(a).tobytes()) & 0xFFFFFFFF
        # (the CRC checks every pixel bit for bit; the PNGs locate a difference: a sparse
        # grid and one 24x24 crop over MCU boundaries are enough, and keep the fixtures small)
        stride = 6 if max(w, h) <= 200 else 16
        cw, ch = min(w, 24), min(h, 24)
        cx, cy = (w - cw) // 2, (h - ch) // 2
        name = rel.replace("/", "_")
        Image.fromarray(np.ascontiguousarray(a[::stride, ::stride])).save(
            os.path.join(OUT, name + ".sub.png"), optimize=True)
        Image.fromarray(np.ascontiguousarray(a[cy:cy + ch, cx:cx + cw])).save(
            os.path.join(OUT, name + ".crop.png"), optimize=True)
        lines.append("%s %d %d %d %08x %d %d %d %d %d" % (rel, w, h, c, crc, stride, cx, cy, cw, ch))
    with open(os.path.join(OUT, "pillow.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(OUT, "damaged.txt"), "w") as f:
        f.write("\n".join(["# Pillow %s decodes of damaged files; tools/gen_jpeg_fixtures.py" % PIL.__version__]
                          + damaged_lines()) + "\n")
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(OUT, "*")))
    print("wrote %d entries to %s (%d bytes)" % (len(files), OUT, total))


if __name__ == "__main__":
    main()
