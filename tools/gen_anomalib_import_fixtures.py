"""Writes tests/fixtures/anomalib_import/ for tests/test_anomalib_import.c (issue #16: anomalib
2.x's input path and structural options). Not needed to build or test: the outputs are
committed. Run from the repo root with anomalib 2.7's venv:

    /work/venv/bin/python tools/gen_anomalib_import_fixtures.py

resize.txt + resize_*.f32: anomalib's read_image (PIL convert("RGB") -> to_dtype(float32,
  scale=True)) of a source, then torchvision.transforms.v2.Resize((H, W), antialias=True)
  on the float tensor (= F.interpolate(bilinear, antialias=True, align_corners=False)); raw
  float32 CHW. One case a line: SRC W H FILE. Sources (the C test rebuilds each one):
    synW_H   synthetic RGB (tools/gen_transform_fixtures.py's formula), written as PNG first
    synW_H_L the same through Pillow's convert("L"): one channel (read_image's own
             convert("RGB") would replicate it; here the float path of a grey image)
    photo    dog.jpg crop box (200, 120, 280, 200), 80 x 80; photo2 eagle.jpg (300, 100,
             333, 197), 33 x 97 (float crop of read_image of the whole JPEG)
ff_tiny.ckpt + ff_tiny.bin + ff_tiny.png: an anomalib 2.7 Fastflow (Lightning module,
  resnet18, conv3x3_only=False = anomalib's default, flow_steps 2, hidden_ratio 1/32,
  input 32 x 32 through its own default pre-processor; the permutations kept hard) whose backbone holds the Philox
  weights of vg_resnet_init_philox (base 1000) and whose flows are randomised; the .ckpt is laid
  out as Lightning's Trainer writes it (epoch, global_step, loops, hyper_parameters as an
  AttributeDict, ...) with its state_dict() less the backbone ("model.feature_extractor.*": the
  test writes the same Philox backbone and passes --weights), deflated. ff_tiny.png: a 61 x 45 crop
  of dog.jpg. ff_tiny.bin: "x" = pre_processor.transform(read_image(png)) (1, 3, 32, 32) and
  "map" = the model's anomaly_map (1, 1, 32, 32), "map_pil" = the map on the Pillow-resized
  tensor (the old path), to show the two differ.
modes.txt + mode_*.{png,jpg,tif} + mode_*.f32: image modes through read_image's Pillow
  Image.open(path).convert("RGB") (then to_dtype(float32, scale=True) and Resize((H, W),
  antialias=True) on the float tensor): grey JPEG/PNG, 1-bit, palette with and without tRNS,
  RGBA and LA (alpha dropped, not composited), 16-bit grey PNG/TIFF (Pillow: I;16, clipped to
  255 by convert), 16-bit grey+tRNS, 16-bit RGB/RGBA/LA PNG (Pillow keeps the high byte),
  CMYK JPEG, an EXIF-rotated JPEG (orientation NOT applied), 1x1 / 3x40 / 12x9 sources
  (upscaled). One case a line: FILE W H EXPECTED (raw float32 3 x H x W)."""
import os
import sys
import tempfile
import warnings

import numpy as np
import torch
from PIL import Image

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures  # noqa: E402
from gen_backbone_fixtures import init_philox  # noqa: E402
from gen_fastflow_fixtures import write_deflated_pth  # noqa: E402

ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "fixtures", "anomalib_import")
PHOTOS = os.path.join(ROOT, "..", "shared", "testdata", "photos")


def syn(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    r = (x * 3 + y * 5) & 255
    g = ((x ^ y) * 2) & 255
    b = np.where(((x // 16) + (y // 16)) % 2 == 1, 255, 0)
    return Image.fromarray(np.stack([r, g, b], -1).astype(np.uint8), "RGB")


def to_float(im):
    """read_image's conversion without its convert("RGB") (grey sources stay one channel)."""
    from torchvision.transforms.v2.functional import to_dtype, to_image
    return to_dtype(to_image(im), torch.float32, scale=True)


def source(name, tmp):
    from anomalib.data.utils import read_image
    if name == "photo":
        return read_image(os.path.join(PHOTOS, "dog.jpg"), as_tensor=True)[:, 120:200, 200:280]
    if name == "photo2":
        return read_image(os.path.join(PHOTOS, "eagle.jpg"), as_tensor=True)[:, 100:197, 300:333]
    grey = name.endswith("_L")
    w, h = map(int, name[3:].replace("_L", "").split("_"))
    im = syn(w, h)
    if grey:
        return to_float(im.convert("L"))
    p = os.path.join(tmp, name + ".png")
    im.save(p)
    return read_image(p, as_tensor=True)


def png16(path, arr, trns=None):
    """16-bit PNG (Pillow cannot write 16-bit colour): arr H x W x C uint16, C 1..4."""
    import struct
    import zlib
    h, w, c = arr.shape
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + (chunk(b"tRNS", trns) if trns else b"") +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def mode_cases():
    from anomalib.data.utils import read_image
    from torchvision.transforms.v2 import Resize
    photo = os.path.join(ROOT, "tests", "data", "photos", "dog.jpg")
    if not os.path.exists(photo):
        photo = os.path.join(PHOTOS, "dog.jpg")
    base = Image.open(photo).convert("RGB").resize((40, 30), Image.BILINEAR)
    a = np.asarray(base)
    rng = np.random.default_rng(16)
    alpha = (np.arange(40)[None, :].repeat(30, 0) * 6 + 7).astype(np.uint8)
    g = np.asarray(base.convert("L")).astype(np.uint16)
    g16 = (g * 4 + rng.integers(0, 4, g.shape)).astype(np.uint16)   # 0..1023: straddles 255
    rgb16 = (a.astype(np.uint16) * 257 + rng.integers(0, 257, a.shape)).astype(np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 6
    made = []

    def pil(name, im, **kw):
        im.save(os.path.join(OUT, name), **kw)
        made.append(name)

    def raw16(name, arr, trns=None):
        png16(os.path.join(OUT, name), arr, trns)
        made.append(name)
    pil("mode_grey.jpg", base.convert("L"), quality=90)
    pil("mode_grey.png", base.convert("L"))
    pil("mode_bw1.png", base.convert("1"))
    pil("mode_pal.png", base.quantize(32))
    pil("mode_pal_trns.png", base.quantize(32), transparency=bytes(range(0, 256, 8)))
    pil("mode_rgba.png", Image.fromarray(np.dstack([a, alpha]), "RGBA"))
    pil("mode_la.png", Image.fromarray(np.dstack([np.asarray(base.convert("L")), alpha]), "LA"))
    raw16("mode_grey16.png", g16[:, :, None])
    raw16("mode_grey16_trns.png", g16[:, :, None], int(g16[10, 10]).to_bytes(2, "big"))
    pil("mode_grey16.tif", Image.fromarray(g16))
    raw16("mode_rgb16.png", rgb16)
    raw16("mode_rgba16.png", np.dstack([rgb16, alpha.astype(np.uint16) * 257]))
    raw16("mode_la16.png", np.dstack([g16 * 64, alpha.astype(np.uint16) * 251]))
    pil("mode_cmyk.jpg", base.convert("CMYK"), quality=90)
    pil("mode_exif6.jpg", base, quality=90, exif=exif.tobytes())
    pil("mode_tiny1x1.png", Image.fromarray(a[:1, :1].copy()))
    pil("mode_tiny3x30.png", Image.fromarray(a[:, :3].copy()))
    pil("mode_small12x9.png", base.resize((12, 9), Image.BILINEAR))
    lines = []
    for name in made:
        w, h = (24, 18) if "tiny" in name or "small" in name else (28, 20)
        x = read_image(os.path.join(OUT, name), as_tensor=True)
        y = Resize((h, w), antialias=True)(x[None])[0]
        f = name.rsplit(".", 1)[0] + "_%s.f32" % name.rsplit(".", 1)[1]
        y.numpy().astype("<f4").tofile(os.path.join(OUT, f))
        lines.append("%s %d %d %s\n" % (name, w, h, f))
    with open(os.path.join(OUT, "modes.txt"), "w") as fh:
        fh.writelines(lines)


def resize_cases(tmp):
    from torchvision.transforms.v2 import Resize
    cases = [("syn61_45", 32, 32), ("syn61_45", 70, 50), ("syn333_197", 64, 48), ("syn40_30", 40, 17),
             ("syn40_30", 29, 30), ("syn61_45_L", 29, 31), ("syn75_60", 56, 45), ("photo", 56, 72),
             ("photo2", 24, 40), ("syn1_1", 4, 3), ("syn5_3", 17, 11), ("syn200_7", 3, 1), ("syn97_13", 13, 97),
             ("syn1000_9", 7, 9)]
    lines = []
    for i, (src, w, h) in enumerate(cases):
        x = source(src, tmp)
        y = Resize((h, w), antialias=True)(x[None])[0]
        f = "resize_%02d_%s_%dx%d.f32" % (i, src, w, h)
        y.numpy().astype("<f4").tofile(os.path.join(OUT, f))
        lines.append("%s %d %d %s\n" % (src, w, h, f))
    with open(os.path.join(OUT, "resize.txt"), "w") as fh:
        fh.writelines(lines)


def tiny_fastflow(tmp):
    from anomalib.data.utils import read_image
    from anomalib.models import Fastflow
    torch.manual_seed(3)
    lm = Fastflow(backbone="resnet18", pre_trained=False, flow_steps=2, conv3x3_only=False, hidden_ratio=1.0 / 32,
                  pre_processor=Fastflow.configure_pre_processor(image_size=(32, 32)))
    init_philox(lm.model.feature_extractor, 1000)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for n, p in lm.model.named_parameters():
            if not n.startswith("feature_extractor") and "w_perm" not in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.05 * (p.abs().mean() + 0.1))
    sd = {k: v for k, v in lm.state_dict().items() if not k.startswith("model.feature_extractor.")}
    import lightning
    ckpt = {"epoch": 0, "global_step": 0, "pytorch-lightning_version": lightning.__version__, "state_dict": sd,
            "loops": {}, "callbacks": {}, "optimizer_states": [], "lr_schedulers": [], "hparams_name": "kwargs",
            "hyper_parameters": lm.hparams}   # an AttributeDict: a global Vigil's reader refuses outside state_dict
    write_deflated_pth(ckpt, os.path.join(OUT, "ff_tiny.ckpt"))
    png = os.path.join(OUT, "ff_tiny.png")
    Image.open(os.path.join(PHOTOS, "dog.jpg")).convert("RGB").crop((300, 200, 361, 245)).save(png)
    lm.eval()
    x = lm.pre_processor.transform(read_image(png, as_tensor=True)[None])
    # the old path: Pillow's 8-bit resize, ToTensor, Normalize
    from torchvision.transforms import functional as TF
    pim = Image.open(png).convert("RGB").resize((32, 32), Image.BILINEAR)
    xp = TF.normalize(TF.to_tensor(pim), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))[None]
    with torch.no_grad():
        m = lm.model(x).anomaly_map
        mp = lm.model(xp).anomaly_map
    fixtures.write(os.path.join(OUT, "ff_tiny.bin"), {"x": x.numpy(), "map": m.numpy(), "map_pil": mp.numpy()})
    e = float((m - mp).abs().max() / m.abs().max())
    print("ff_tiny: map max|.| %.4g, float vs pil input rel diff %.3g" % (float(m.abs().max()), e))


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        resize_cases(tmp)
        mode_cases()
        tiny_fastflow(tmp)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
