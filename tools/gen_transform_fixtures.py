#!/usr/bin/python3
"""Writes tests/fixtures/transforms/: Pillow / torchvision (PIL path) outputs that
tests/test_transforms.c compares datasets/image/transform.c against. Not needed to build
or test: the outputs are committed. Run from the repo root with Debian's python:

    /usr/bin/python3 tools/gen_transform_fixtures.py

Sources (the C test rebuilds each one itself):
  photo   dog.jpg (tests/data/photos) crop box (200, 120, 280, 200): 80x80 RGB
  photo2  eagle.jpg crop box (300, 100, 333, 197) -> 33x97 RGB (odd sizes)
  photo3  eagle.jpg crop box (300, 100, 324, 120) -> 24x20 RGB
  synW_H  synthetic RGB, W x H, pixel (x, y) = (x*3 + y*5) & 255, ((x ^ y) * 2) & 255, 255 * ((x//16 + y//16) % 2)
  maskW_H synthetic 1-channel labels: ((x // 23) + 3 * (y // 17)) % 5 * 40
  any name + "_L": the source converted with Pillow's convert("L")
manifest.txt: one case a line: OP SRC ARGS... FILE. Images are PNG, tensors raw float32 LE
in CHW order.
"""
import os

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "transforms")
PHOTOS = os.path.join(ROOT, "tests", "data", "photos")


def syn(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    r = (x * 3 + y * 5) & 255
    g = ((x ^ y) * 2) & 255
    b = np.where(((x // 16) + (y // 16)) % 2 == 1, 255, 0)
    return Image.fromarray(np.stack([r, g, b], -1).astype(np.uint8), "RGB")


def mask(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    return Image.fromarray((((x // 23) + 3 * (y // 17)) % 5 * 40).astype(np.uint8), "L")


def source(name):
    base = name[:-2] if name.endswith("_L") else name
    if base == "photo":
        im = Image.open(os.path.join(PHOTOS, "dog.jpg")).convert("RGB").crop((200, 120, 280, 200))
    elif base == "photo2":
        im = Image.open(os.path.join(PHOTOS, "eagle.jpg")).convert("RGB").crop((300, 100, 333, 197))
    elif base == "photo3":
        im = Image.open(os.path.join(PHOTOS, "eagle.jpg")).convert("RGB").crop((300, 100, 324, 120))
    elif base.startswith("syn"):
        w, h = map(int, base[3:].split("_"))
        im = syn(w, h)
    elif base.startswith("mask"):
        w, h = map(int, base[4:].split("_"))
        im = mask(w, h)
    else:
        raise ValueError(name)
    return im.convert("L") if name.endswith("_L") else im


FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = []
    n = [0]

    def save_img(im, tag):
        n[0] += 1
        fname = "%03d_%s.png" % (n[0], tag)
        im.save(os.path.join(OUT, fname), optimize=True)
        return fname

    def save_tensor(t, tag):
        n[0] += 1
        fname = "%03d_%s.f32" % (n[0], tag)
        t.detach().numpy().astype("<f4").tofile(os.path.join(OUT, fname))
        return fname

    resize_cases = [
        ("syn128_128", [(112, 112), (32, 32), (140, 60), (101, 57)]),
        ("syn128_128_L", [(112, 112), (45, 45)]),
        ("syn333_197", [(101, 57), (40, 90)]),
        ("photo", [(64, 64), (101, 57), (29, 80)]),
        ("photo_L", [(47, 100)]),
        ("photo2", [(64, 150), (16, 50)]),
    ]
    for src, sizes in resize_cases:
        for (w, h) in sizes:
            for fname_f, f in FILTERS.items():
                if fname_f == "nearest" and src.startswith("photo") and (w, h) != sizes[0]:
                    continue
                out = source(src).resize((w, h), f)
                lines.append("resize %s %d %d %s %s" % (src, w, h, fname_f,
                                                         save_img(out, "%s_%s_%dx%d" % (src, fname_f, w, h))))
    for (w, h) in [(101, 57), (500, 300), (64, 64)]:
        out = mask(333, 197).resize((w, h), Image.NEAREST)
        lines.append("resize mask333_197 %d %d nearest %s" % (w, h, save_img(out, "mask_%dx%d" % (w, h))))
    for src in ["photo2", "syn120_70"]:
        lines.append("gray %s %s" % (src, save_img(source(src).convert("L"), src + "_gray")))
        lines.append("hflip %s %s" % (src, save_img(TF.hflip(source(src)), src + "_hflip")))
        lines.append("vflip %s %s" % (src, save_img(TF.vflip(source(src)), src + "_vflip")))
    for src, (w, h) in [("photo", (64, 64)), ("photo", (57, 31)), ("photo2", (32, 96)), ("syn120_70", (101, 57)),
                        ("syn120_70", (119, 68))]:
        lines.append("ccrop %s %d %d %s" % (src, w, h, save_img(TF.center_crop(source(src), [h, w]), "%s_ccrop" % src)))
    for src in ["photo3"]:
        t = TF.to_tensor(source(src))
        lines.append("tensor %s %s" % (src, save_tensor(t, src + "_tensor")))
        tn = TF.normalize(t, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        lines.append("normalize %s %s" % (src, save_tensor(tn, src + "_norm")))
    for src in ["photo2", "syn120_70"]:
        for op, fn, factors in [("brightness", TF.adjust_brightness, [0.0, 0.6, 1.37]),
                                ("contrast", TF.adjust_contrast, [0.5, 1.6]),
                                ("saturation", TF.adjust_saturation, [0.0, 1.8])]:
            for fac in factors:
                lines.append("%s %s %r %s" % (op, src, fac, save_img(fn(source(src), fac), "%s_%s_%g" % (src, op, fac))))
    for src in ["photo2", "syn96_64"]:
        for ang in [0.0, 5.0, -17.5, 90.0, 180.0, 33.3]:
            out = TF.rotate(source(src), ang, interpolation=InterpolationMode.BILINEAR)
            lines.append("rotate %s %r %s" % (src, ang, save_img(out, "%s_rot%g" % (src, ang))))
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d cases to %s" % (len(lines), OUT))


if __name__ == "__main__":
    main()
