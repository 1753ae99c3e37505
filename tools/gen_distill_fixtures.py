"""Golden fixtures for tests/test_distill.c (EfficientAD teacher distillation).

1. targets.vgfx — the distillation target pipeline of nelson1425/EfficientAD
   pretraining.py (FeatureExtractor.embed), written here in torch from his code:
   <backbone> layer2 + layer3 -> per layer Unfold(3, stride 1, pad 1) -> layer3's
   unfolded C*9 maps bilinearly upsampled (align_corners=False) to layer2's grid ->
   per layer adaptive_avg_pool1d of each C*9 vector to 1024 -> stack (P, 2, 1024) ->
   adaptive_avg_pool1d to 384 -> (N, 384, h2, w2). His reshape to 64 x 64 is written as
   layer2's grid so a small input works. Weights: every f32 state-dict tensor from
   Vigil's Philox generator by the scheme of vg_resnet_init_philox (reused from
   gen_backbone_fixtures.py), base seed BASE_SEED; the input is Philox too
   (vg_uniform_(x, -2, 2, IN_SEED)), so no weights or inputs are stored. The reference
   runs in float64 (f32 values cast up). Stored: shape, max |target|, the per-channel
   mean over (N, H, W), the per-row mean over (C, W) and per-column mean over (C, H) of
   each image (each covers every element), and every STRIDE-th element (STRIDE prime, so
   the samples sweep every channel, row and column), per backbone
   (prefix "<backbone>."): wide_resnet101_2 (the paper's extractor; long test runs),
   wide_resnet50_2 (same layer2/layer3 widths, 512/1024, so the same pooling bins) and
   resnet18 (128/256 channels: bins of 1-3 values).

2. views.vgfx — the two views of one distillation sample (torchvision's PIL path as
   pretraining.py builds it): RandomGrayscale's convert("L") -> RGB applied to the
   original 8-bit image, then Resize((2v, 2v)) + ToTensor + Normalize(ImageNet) for
   the extractor and Resize((v, v)) + ToTensor for the PDN (Vigil's PDN normalises
   inside). The source image (views_src.png, an RGB PNG with Pillow) is stored.

Run: /usr/bin/python3 tools/gen_distill_fixtures.py [targets]   (torch 1.13, torchvision 0.14;
`targets`: only targets.vgfx)"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import philox  # noqa: E402
from gen_backbone_fixtures import init_philox  # noqa: E402

BASE_SEED = 1000
IN_SEED = 77
SHAPE = (2, 3, 128, 128)
OUT_CHANNELS = 384
STRIDE = 193
BACKBONES = ["resnet18", "wide_resnet50_2", "wide_resnet101_2"]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "distill")


def patchify(x):
    """PatchMaker(3, stride=1).patchify: (B, C, H, W) -> (B, H*W, C, 3, 3), grid (H, W)."""
    u = F.unfold(x, kernel_size=3, stride=1, padding=1, dilation=1)
    u = u.reshape(*x.shape[:2], 3, 3, -1).permute(0, 4, 1, 2, 3)
    return u, (x.shape[-2], x.shape[-1])


def embed(model, x, out_channels):
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    l2 = model.layer2(model.layer1(h))
    l3 = model.layer3(l2)
    feats = [patchify(l2), patchify(l3)]
    shapes = [f[1] for f in feats]
    feats = [f[0] for f in feats]
    ref = shapes[0]
    for i in range(1, len(feats)):
        f, (ph, pw) = feats[i], shapes[i]
        f = f.reshape(f.shape[0], ph, pw, *f.shape[2:])
        f = f.permute(0, -3, -2, -1, 1, 2)
        base = f.shape
        f = f.reshape(-1, *f.shape[-2:])
        f = F.interpolate(f.unsqueeze(1), size=(ref[0], ref[1]), mode="bilinear", align_corners=False)
        f = f.squeeze(1).reshape(*base[:-2], ref[0], ref[1])
        f = f.permute(0, -2, -1, 1, 2, 3)
        f = f.reshape(len(f), -1, *f.shape[-3:])
        feats[i] = f
    feats = [f.reshape(-1, *f.shape[-3:]) for f in feats]
    # Preprocessing: MeanMapper(1024) per layer, stacked on dim 1
    feats = torch.stack([F.adaptive_avg_pool1d(f.reshape(len(f), 1, -1), 1024).squeeze(1) for f in feats], dim=1)
    # Aggregator(out_channels)
    feats = F.adaptive_avg_pool1d(feats.reshape(len(feats), 1, -1), out_channels).reshape(len(feats), -1)
    feats = feats.reshape(-1, ref[0], ref[1], out_channels)
    return feats.permute(0, 3, 1, 2)


def gen_targets():
    tensors = {
        "philox.check": philox.uniform(BASE_SEED, 8),
        "input.shape": np.array(SHAPE, dtype=np.float32),
        "input.seed": np.array([IN_SEED], dtype=np.float32),
        "base_seed": np.array([BASE_SEED], dtype=np.float32),
    }
    x = torch.from_numpy(philox.uniform_range(SHAPE, -2.0, 2.0, IN_SEED)).double()
    for name in BACKBONES:
        model = getattr(torchvision.models, name)(weights=None)
        init_philox(model, BASE_SEED)
        model = model.double().eval()
        with torch.no_grad():
            t = embed(model, x, OUT_CHANNELS).numpy()
        flat = t.reshape(-1)
        p = name + "."
        tensors[p + "shape"] = np.array(t.shape, dtype=np.float32)
        tensors[p + "maxabs"] = np.array([np.abs(t).max()], dtype=np.float32)
        tensors[p + "chmean"] = t.mean(axis=(0, 2, 3))
        tensors[p + "rowmean"] = t.mean(axis=(1, 3))   # (N, H)
        tensors[p + "colmean"] = t.mean(axis=(1, 2))   # (N, W)
        tensors[p + "stride"] = np.array([STRIDE], dtype=np.float32)
        tensors[p + "sub"] = flat[::STRIDE]
        print(name, "targets", t.shape, "max|t| %.5g mean %.5g" % (np.abs(t).max(), t.mean()))
        del model
    path = os.path.join(OUT, "targets.vgfx")
    fixtures.write(path, tensors)
    print(path, os.path.getsize(path))


def gen_views():
    rng = np.random.RandomState(5)
    h, w, v = 37, 53, 16
    # smooth-ish content so the resize is not all noise
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 // (w - 1)), (yy * 255 // (h - 1)), ((xx + yy) * 7) % 256], axis=2)
    img = np.clip(img + rng.randint(-30, 31, size=img.shape), 0, 255).astype(np.uint8)
    src = Image.fromarray(img, "RGB")
    path_png = os.path.join(OUT, "views_src.png")
    src.save(path_png)
    src = Image.open(path_png).convert("RGB")
    extractor = torchvision.transforms.Compose([
        torchvision.transforms.Resize((2 * v, 2 * v)),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    pdn = torchvision.transforms.Compose([torchvision.transforms.Resize((v, v)), torchvision.transforms.ToTensor()])
    tensors = {"view": np.array([v], dtype=np.float32)}
    for tag, grey in (("colour", False), ("grey", True)):
        im = torchvision.transforms.RandomGrayscale(1.0)(src) if grey else src
        tensors[tag + ".big"] = extractor(im).numpy()
        tensors[tag + ".small"] = pdn(im).numpy()
    path = os.path.join(OUT, "views.vgfx")
    fixtures.write(path, tensors)
    print(path, os.path.getsize(path), path_png, os.path.getsize(path_png))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    if sys.argv[1:] != ["targets"]:
        gen_views()
    gen_targets()


if __name__ == "__main__":
    main()
