"""Golden features of torchvision's ResNets for tests/test_backbones.c (no weights stored).

Every f32 tensor of each model's state dict gets values from Vigil's Philox generator
(tools/philox.py) by the scheme of vg_resnet_init_philox (nn/backbones/backbones.h):
tensor i of state_dict() order uses seed BASE_SEED + i. The input is also Philox
(vg_uniform_(x, -2, 2, seed)). The reference runs in float64 (the f32 values cast up), so
the test measures Vigil's f32 error alone. Stored per case and layer: the shape, the max
|value|, the per-channel mean over (N, H, W), the per-row mean over (C, W) and the
per-column mean over (C, H) of each image (each covers every element), and a strided
subsample (every k-th element of the flattened map, at most SUB values; k coprime with
the element count, so the samples sweep every row, column and channel), to keep the
fixtures small.

Run: /usr/bin/python3 tools/gen_backbone_fixtures.py   (torch 1.13, torchvision 0.14)"""
import math
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import philox  # noqa: E402

BASE_SEED = 1000
SUB = 1024
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "backbones")
LEVELS = ["stem", "layer1", "layer2", "layer3", "layer4"]

# model, cases: (tag, input shape, input seed, levels)
CASES = {
    "resnet18": [("n2_64", (2, 3, 64, 64), 7, ["stem", "layer1", "layer2", "layer3", "layer4"]),
                 ("n1_256", (1, 3, 256, 256), 8, ["layer1", "layer2", "layer3"])],
    "resnet50": [("n2_64", (2, 3, 64, 64), 7, ["layer1", "layer2", "layer3"])],
    "wide_resnet50_2": [("n2_64", (2, 3, 64, 64), 7, ["layer1", "layer2", "layer3"])],
    "wide_resnet101_2": [("n2_64", (2, 3, 64, 64), 7, ["layer1", "layer2", "layer3"])],
}


def init_philox(model, base_seed):
    with torch.no_grad():
        for i, (name, t) in enumerate(model.state_dict().items()):
            if t.dtype != torch.float32:
                continue
            seed = base_seed + i
            shape = tuple(t.shape)
            if t.ndim == 4:
                fan_in = shape[1] * shape[2] * shape[3]
                b = np.float32(np.sqrt(3.0 / fan_in))
                v = philox.uniform_range(shape, -b, b, seed)
            elif name.endswith("running_mean") or name.endswith("bias"):
                v = philox.uniform_range(shape, -0.1, 0.1, seed)
            elif name.endswith("running_var"):
                v = philox.uniform_range(shape, 0.5, 1.5, seed)
            elif name.endswith("weight"):
                v = philox.uniform_range(shape, 0.5, 1.0, seed)
            elif name.startswith("fc."):
                continue
            else:
                raise SystemExit("unexpected tensor " + name)
            t.copy_(torch.from_numpy(v))


def sub_stride(total, sub):
    """Smallest k >= ceil(total / sub) coprime with total (a power-of-two k would sample
    one column only)."""
    k = max(1, -(-total // sub))
    while math.gcd(k, total) != 1:
        k += 1
    return k


def features(model, x, levels):
    out = {}
    h = model.relu(model.bn1(model.conv1(x)))
    out["stem"] = h
    last = max(LEVELS.index(l) for l in levels)
    h = model.maxpool(h)
    for k in range(1, last + 1):
        h = getattr(model, "layer%d" % k)(h)
        out["layer%d" % k] = h
    return {l: out[l] for l in levels}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name, cases in CASES.items():
        model = getattr(torchvision.models, name)(weights=None)
        init_philox(model, BASE_SEED)
        model = model.double().eval()
        tensors = {"philox.check": philox.uniform(BASE_SEED, 8)}
        for tag, shape, seed, levels in cases:
            x = torch.from_numpy(philox.uniform_range(shape, -2.0, 2.0, seed)).double()
            with torch.no_grad():
                feats = features(model, x, levels)
            for l, f in feats.items():
                a = f.numpy()
                flat = a.reshape(-1)
                k = sub_stride(flat.size, SUB)
                p = "%s.%s." % (tag, l)
                tensors[p + "shape"] = np.array(a.shape, dtype=np.float32)
                tensors[p + "maxabs"] = np.array([np.abs(a).max()], dtype=np.float32)
                tensors[p + "chmean"] = a.mean(axis=(0, 2, 3))
                tensors[p + "rowmean"] = a.mean(axis=(1, 3))   # (N, H)
                tensors[p + "colmean"] = a.mean(axis=(1, 2))   # (N, W)
                tensors[p + "stride"] = np.array([k], dtype=np.float32)
                tensors[p + "sub"] = flat[::k]
                print("%s %s %s %s max|f| %.4g mean %.4g stride %d" %
                      (name, tag, l, a.shape, np.abs(a).max(), a.mean(), k))
        path = os.path.join(OUT, name + ".vgfx")
        fixtures.write(path, tensors)
        print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
