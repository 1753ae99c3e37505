#!/usr/bin/python3
"""Writes the Pillow-made fixtures under tests/fixtures/image/ that the image-codec tests
(tests/test_png.c, tests/test_image_formats.c) compare against. Not needed to build or
test: the outputs are committed. Run from the repo root with Debian's python (has PIL):

    /usr/bin/python3 tools/gen_image_fixtures.py

pngsuite16_pillow.bin: Pillow's decode of each PngSuite 16bit/ file. Records of
    name (32 bytes, NUL-padded) | mode (4 bytes: "I", "RGB", "RGBA", NUL-padded) |
    w, h, nbytes (uint32 LE) | data
  with mode "I" stored as uint16 LE per pixel (Pillow keeps all 16 bits of grey) and
  "RGB"/"RGBA" as 8-bit samples (Pillow reduces 16-bit colour to 8 bits).
bmp_*.bmp + bmp_*.png: a BMP written by Pillow and the same pixels as PNG (RGB/RGBA).
tiff_*.tif: TIFFs written by Pillow: float32 ("F"), 8-bit grey, 16-bit grey, RGB, RGBA;
  pixel values follow the formulas in pattern() so the C test recomputes them.
"""
import os
import struct
import sys

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "image")
SUITE = os.path.join(os.path.dirname(ROOT), "shared", "testdata", "pngsuite", "16bit")


def pngsuite16():
    recs = []
    for name in sorted(os.listdir(SUITE)):
        im = Image.open(os.path.join(SUITE, name))
        im.load()
        if im.mode == "I":
            data = b"".join(struct.pack("<H", v) for v in im.getdata())
        elif im.mode in ("RGB", "RGBA"):
            data = im.tobytes()
        else:
            sys.exit(f"{name}: unexpected Pillow mode {im.mode}")
        recs.append(name.encode().ljust(32, b"\0") + im.mode.encode().ljust(4, b"\0")
                    + struct.pack("<III", im.width, im.height, len(data)) + data)
    with open(os.path.join(OUT, "pngsuite16_pillow.bin"), "wb") as f:
        f.write(b"".join(recs))


def pattern(w, h, c, x, y):
    """Sample values (0..255) of the synthetic test image; same formula in the C test."""
    return tuple((x * 7 + y * 13 + k * 61 + (x * y) % 11) % 256 for k in range(c))


def synth(mode, w, h):
    c = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    im = Image.new(mode, (w, h))
    im.putdata([pattern(w, h, c, x, y) if c > 1 else pattern(w, h, 1, x, y)[0]
                for y in range(h) for x in range(w)])
    return im


def bmps():
    w, h = 37, 19
    rgb = synth("RGB", w, h)
    rgb.save(os.path.join(OUT, "bmp_rgb24.bmp"))
    rgb.save(os.path.join(OUT, "bmp_rgb24.png"))
    pal = rgb.quantize(colors=200)                 # 8-bit palette BMP
    pal.save(os.path.join(OUT, "bmp_pal8.bmp"))
    pal.convert("RGB").save(os.path.join(OUT, "bmp_pal8.png"))
    bw = synth("L", w, h).point(lambda v: 255 if v > 127 else 0).convert("1")
    bw.save(os.path.join(OUT, "bmp_bw1.bmp"))
    bw.convert("RGB").save(os.path.join(OUT, "bmp_bw1.png"))
    rgba = synth("RGBA", w, h)
    rgba.save(os.path.join(OUT, "bmp_rgba32.bmp"))
    rgba.save(os.path.join(OUT, "bmp_rgba32.png"))


def tiffs():
    w, h = 13, 7
    f = Image.new("F", (w, h))
    f.putdata([x * 0.5 - y * 0.25 + (1e6 if (x, y) == (12, 6) else 0.0) for y in range(h) for x in range(w)])
    f.save(os.path.join(OUT, "tiff_f32.tif"))
    synth("L", w, h).save(os.path.join(OUT, "tiff_grey8.tif"))
    synth("RGB", w, h).save(os.path.join(OUT, "tiff_rgb8.tif"))
    synth("RGBA", w, h).save(os.path.join(OUT, "tiff_rgba8.tif"))
    g16 = Image.new("I;16", (w, h))
    g16.putdata([(x * 5003 + y * 977) % 65536 for y in range(h) for x in range(w)])
    g16.save(os.path.join(OUT, "tiff_grey16.tif"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    pngsuite16()
    bmps()
    tiffs()
