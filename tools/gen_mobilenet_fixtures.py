"""Golden features of torchvision's mobilenet_v3_large for tests/test_mobilenet.c (no weights stored
except one tiny truncated state dict, tests/fixtures/mnv3_sd.pth).

Weights: every f32 tensor of the state dict gets Philox values (tools/philox.py) by the scheme of
vg_resnet_init_philox (nn/backbones/backbones.h; mobilenet.c uses it as its init_philox): tensor i of
state_dict() order uses seed BASE_SEED + i. The input is Philox too (vg_uniform_(x, -2, 2, seed)). The
reference runs in float64 (the f32 values cast up), so the test measures Vigil's f32 error alone.
Taps: "features.K" = features[K]'s output; "features.K.proj" = the projection conv's output
(features[K].block[-1][0] in torchvision >= 0.13; block[-1][-3] in the old torchvision the official
CFLOW-AD code ran), hooked with a forward hook as the official code does. Stored per case and tap: the
shape, max |f|, per-channel mean over (N, H, W), and a strided subsample (at most SUB values).

mnv3_sd.pth: torchvision's own random init of features[0:3] (torch.save of a state dict with
torchvision names, features.0 .. features.2) and in mnv3_features.vgfx "sd.in" / "sd.features.2" the
float32 output of that truncated model on a Philox input: the C test loads it by name (strict) and
compares.

Also prints the parameter counts (full model, features only) and, with --time, one 256x256 forward
of the CFLOW taps on 2 threads (float32) for the report.

Full size by hand (not committed): --full /tmp/mnv3_full.vgfx writes a 1x3x256x256 case (CFLOW taps and
features.16); VIGIL_MNV3_FULL=/tmp/mnv3_full.vgfx build/<b>/tests/test_mobilenet checks it (else SKIP).

Run: /work/venv/bin/python tools/gen_mobilenet_fixtures.py [--time] [--full PATH]   (torch 2.x, torchvision 0.2x)"""
import os
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import philox  # noqa: E402

BASE_SEED = 1000
SUB = 512
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
TAPS = ["features.0", "features.1", "features.3", "features.4.proj", "features.6.proj", "features.6",
        "features.10", "features.12.proj", "features.12", "features.15.proj", "features.15", "features.16"]
TAPS_SMALL = ["features.2.proj", "features.6.proj", "features.12.proj", "features.15.proj", "features.16"]
# tag, input shape, input seed, taps
CASES = [("n2_64", (2, 3, 64, 64), 7, TAPS), ("n1_72x56", (1, 3, 72, 56), 9, TAPS_SMALL)]


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
            elif name.startswith("classifier."):
                continue
            elif name.endswith("running_mean") or name.endswith("bias"):
                v = philox.uniform_range(shape, -0.1, 0.1, seed)
            elif name.endswith("running_var"):
                v = philox.uniform_range(shape, 0.5, 1.5, seed)
            elif name.endswith("weight"):
                v = philox.uniform_range(shape, 0.5, 1.0, seed)
            else:
                raise SystemExit("unexpected tensor " + name)
            t.copy_(torch.from_numpy(v))


def proj_conv(block):
    """the projection conv of an InvertedResidual (the official hook point)"""
    last = block.block[-1]
    conv = last[0]
    assert isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == (1, 1) and len(last) == 2
    return conv


def features(model, x, taps):
    feats = {}
    hooks = []
    for t in taps:
        k = int(t.split(".")[1])
        mod = proj_conv(model.features[k]) if t.endswith(".proj") else model.features[k]
        hooks.append(mod.register_forward_hook(lambda m, i, o, t=t: feats.__setitem__(t, o.detach().clone())))
    with torch.no_grad():
        model.features(x)
    for h in hooks:
        h.remove()
    return {t: feats[t] for t in taps}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    nfull = sum(p.numel() for p in model.parameters())
    nfeat = sum(p.numel() for p in model.features.parameters())
    print("parameters: full %d, features %d" % (nfull, nfeat))
    assert nfull == 5483032
    sd = model.state_dict()
    for k in (6, 12, 15):
        print("features.%d proj conv = features.%d.block.%d.0 (%d ch)" %
              (k, k, len(model.features[k].block) - 1, proj_conv(model.features[k]).out_channels))
    if "--time" in sys.argv:
        m32 = model.eval()
        x = torch.randn(1, 3, 256, 256)
        for _ in range(2):
            features(m32, x, ["features.6.proj", "features.12.proj", "features.15.proj"])
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            features(m32, x, ["features.6.proj", "features.12.proj", "features.15.proj"])
            ts.append(time.perf_counter() - t0)
        print("torch %s f32 1x3x256x256 to features.15.proj, 2 threads: best %.4f s, median %.4f s" %
              (torch.__version__, min(ts), sorted(ts)[len(ts) // 2]))

    # the tiny state dict with torchvision's own (random) init and names
    torch.manual_seed(0)
    small = torchvision.models.mobilenet_v3_large(weights=None).eval()
    keep = {k: v for k, v in small.state_dict().items() if k.startswith("features.") and k.split(".")[1] in ("0", "1", "2")}
    torch.save(keep, os.path.join(OUT, "mnv3_sd.pth"))
    xs = torch.from_numpy(philox.uniform_range((1, 3, 32, 32), -2.0, 2.0, 11))
    with torch.no_grad():
        ys = small.features[0:3](xs)
    tensors = {"philox.check": philox.uniform(BASE_SEED, 8), "sd.features.2": ys.numpy().reshape(-1),
               "sd.shape": np.array(ys.shape, dtype=np.float32),
               "nparams": np.array([nfull, nfeat], dtype=np.float64).astype(np.float32)}

    init_philox(model, BASE_SEED)
    model = model.double().eval()
    for tag, shape, seed, taps in CASES:
        x = torch.from_numpy(philox.uniform_range(shape, -2.0, 2.0, seed)).double()
        for t, f in features(model, x, taps).items():
            a = f.numpy()
            flat = a.reshape(-1)
            k = max(1, -(-flat.size // SUB))
            p = "%s.%s." % (tag, t)
            tensors[p + "shape"] = np.array(a.shape, dtype=np.float32)
            tensors[p + "maxabs"] = np.array([np.abs(a).max()], dtype=np.float32)
            tensors[p + "chmean"] = a.mean(axis=(0, 2, 3))
            tensors[p + "stride"] = np.array([k], dtype=np.float32)
            tensors[p + "sub"] = flat[::k]
            print("%s %s %s max|f| %.4g mean %.4g stride %d" % (tag, t, a.shape, np.abs(a).max(), a.mean(), k))
    if "--full" in sys.argv:   # full-size check by hand: NOT a committed fixture
        full = {}
        taps = ["features.6.proj", "features.12.proj", "features.15.proj", "features.16"]
        x = torch.from_numpy(philox.uniform_range((1, 3, 256, 256), -2.0, 2.0, 21)).double()
        for t, f in features(model, x, taps).items():
            a = f.numpy()
            flat = a.reshape(-1)
            k = max(1, -(-flat.size // 8192))
            p = "n1_256.%s." % t
            full[p + "shape"] = np.array(a.shape, dtype=np.float32)
            full[p + "maxabs"] = np.array([np.abs(a).max()], dtype=np.float32)
            full[p + "chmean"] = a.mean(axis=(0, 2, 3))
            full[p + "stride"] = np.array([k], dtype=np.float32)
            full[p + "sub"] = flat[::k]
        fpath = sys.argv[sys.argv.index("--full") + 1]
        fixtures.write(fpath, full)
        print("full-size check (256x256, CFLOW taps + features.16):", fpath,
              "- run: VIGIL_MNV3_FULL=%s <BUILD>/tests/test_mobilenet" % fpath)
    path = os.path.join(OUT, "mnv3_features.vgfx")
    fixtures.write(path, tensors)
    print(path, os.path.getsize(path), os.path.join(OUT, "mnv3_sd.pth"),
          os.path.getsize(os.path.join(OUT, "mnv3_sd.pth")))


if __name__ == "__main__":
    main()
