"""Golden fixtures for tests/test_backbones_more.c: torchvision resnext101_32x8d and
densenet201 (full depth, reduced input) and EfficientAD's distillation targets on them.

No weights are stored. Every f32 tensor of each model's state dict gets values from Vigil's
Philox generator (tools/philox.py) by the scheme of vg_resnet_init_philox (reused from
gen_backbone_fixtures.py: tensor i of state_dict() order, counting every entry, uses seed
BASE_SEED + i; conv U(+-sqrt(3/fan_in)), BN weight U(0.5,1), bias/running_mean U(-0.1,0.1),
running_var U(0.5,1.5)); the input is Philox too (vg_uniform_(x, -2, 2, seed)). The
reference runs in float64 (the f32 values cast up), so the test measures Vigil's f32 error.

Per model and tap, stored: shape, max |f|, the per-channel mean over (N, H, W) (covers every
element) and every k-th element of the flattened map (at most SUB values).
  cnn2_resnext101_32x8d.vgfx: input (2, 3, 64, 64) seed 7, taps layer1..layer4.
  cnn2_densenet201.vgfx: input (2, 3, 64, 64) seed 7, taps features.relu0, pool0,
    denseblock1..4, transition1..3, norm5 (the module outputs, as forward hooks see them;
    a dense block's output is the concatenation before any BN).
  cnn2_distill_targets.vgfx: nelson1425/EfficientAD pretraining.py's target pipeline
    (gen_distill_fixtures.embed, generalised to any two feature maps) on resnext101_32x8d
    layer2 + layer3 and densenet201 features.denseblock2 + features.denseblock3 (PatchCore's
    ensemble taps), input (1, 3, 64, 64) seed 77, 384 channels.

Full-size check (by hand, not committed: ~1 MB): --full writes cnn2_full_<model>.vgfx, input
(1, 3, 224, 224) seed 9, the same taps (SUB 16384); VIGIL_TEST_LONG=1 test_backbones_more
compares them when present (SKIP otherwise).

Run: /work/venv/bin/python tools/gen_cnn_more_fixtures.py [--full]   (torch 2.x, torchvision 0.2x)"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import philox  # noqa: E402
from gen_backbone_fixtures import init_philox  # noqa: E402
from gen_distill_fixtures import patchify  # noqa: E402

BASE_SEED = 1000
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
DENSE_TAPS = ["features.relu0", "features.pool0", "features.denseblock1", "features.transition1",
              "features.denseblock2", "features.transition2", "features.denseblock3", "features.transition3",
              "features.denseblock4", "features.norm5"]
RESNET_TAPS = ["layer1", "layer2", "layer3", "layer4"]
# model, taps, input shape, input seed, SUB
CASES = [("resnext101_32x8d", RESNET_TAPS, (2, 3, 64, 64), 7, 1536),
         ("densenet201", DENSE_TAPS, (2, 3, 64, 64), 7, 512)]
DISTILL = [("resnext101_32x8d", ["layer2", "layer3"]),
           ("densenet201", ["features.denseblock2", "features.denseblock3"])]
DISTILL_SHAPE, DISTILL_SEED, DISTILL_SUB, OUT_CHANNELS = (1, 3, 64, 64), 77, 1024, 384


def build(name):
    model = getattr(torchvision.models, name)(weights=None)
    init_philox(model, BASE_SEED)   # classifier.* / fc.* come last in the state dict: unused
    return model.double().eval()


def hooked(model, taps, x):
    """the outputs of the named modules (forward hooks; cloned: DenseNet's forward applies an
    in-place ReLU to norm5's output), in tap order"""
    got = {}
    hs = [model.get_submodule(t).register_forward_hook(lambda m, i, o, t=t: got.__setitem__(t, o.clone())) for t in taps]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return [got[t] for t in taps]


def summary(tensors, prefix, a, sub):
    flat = a.reshape(-1)
    k = max(1, -(-flat.size // sub))
    tensors[prefix + "shape"] = np.array(a.shape, dtype=np.float32)
    tensors[prefix + "maxabs"] = np.array([np.abs(a).max()], dtype=np.float32)
    tensors[prefix + "chmean"] = a.mean(axis=(0, 2, 3))
    tensors[prefix + "stride"] = np.array([k], dtype=np.float32)
    tensors[prefix + "sub"] = flat[::k]


def embed_feats(l2, l3, out_channels):
    """gen_distill_fixtures.embed after its backbone: two maps -> (N, out, h2, w2)"""
    feats = [patchify(l2), patchify(l3)]
    ref = feats[0][1]
    f, (ph, pw) = feats[1]
    f = f.reshape(f.shape[0], ph, pw, *f.shape[2:]).permute(0, -3, -2, -1, 1, 2)
    base = f.shape
    f = f.reshape(-1, *f.shape[-2:])
    f = F.interpolate(f.unsqueeze(1), size=(ref[0], ref[1]), mode="bilinear", align_corners=False)
    f = f.squeeze(1).reshape(*base[:-2], ref[0], ref[1]).permute(0, -2, -1, 1, 2, 3)
    f = f.reshape(len(f), -1, *f.shape[-3:])
    fs = [feats[0][0].reshape(-1, *feats[0][0].shape[-3:]), f.reshape(-1, *f.shape[-3:])]
    fs = torch.stack([F.adaptive_avg_pool1d(t.reshape(len(t), 1, -1), 1024).squeeze(1) for t in fs], dim=1)
    fs = F.adaptive_avg_pool1d(fs.reshape(len(fs), 1, -1), out_channels).reshape(len(fs), -1)
    return fs.reshape(-1, ref[0], ref[1], out_channels).permute(0, 3, 1, 2)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    full = "--full" in sys.argv[1:]
    models = {}
    cases = [(n, t, (1, 3, 224, 224), 9, 16384) for n, t, _, _, _ in CASES] if full else CASES
    for name, taps, shape, seed, sub in cases:
        model = build(name)
        models[name] = model
        n_all = sum(p.numel() for p in model.parameters())
        tensors = {"philox.check": philox.uniform(BASE_SEED, 8),
                   "input.shape": np.array(shape, dtype=np.float32), "input.seed": np.array([seed], dtype=np.float32)}
        x = torch.from_numpy(philox.uniform_range(shape, -2.0, 2.0, seed)).double()
        for t, f in zip(taps, hooked(model, taps, x)):
            a = f.numpy()
            summary(tensors, t + ".", a, sub)
            print("%s %s %s max|f| %.4g mean %.4g" % (name, t, a.shape, np.abs(a).max(), a.mean()))
        path = os.path.join(OUT, ("cnn2_full_%s.vgfx" if full else "cnn2_%s.vgfx") % name)
        fixtures.write(path, tensors)
        print(path, os.path.getsize(path), "params", n_all)
    if full:
        return
    tensors = {"input.shape": np.array(DISTILL_SHAPE, dtype=np.float32),
               "input.seed": np.array([DISTILL_SEED], dtype=np.float32)}
    x = torch.from_numpy(philox.uniform_range(DISTILL_SHAPE, -2.0, 2.0, DISTILL_SEED)).double()
    for name, taps in DISTILL:
        l2, l3 = hooked(models[name], taps, x)
        with torch.no_grad():
            t = embed_feats(l2, l3, OUT_CHANNELS).numpy()
        summary(tensors, name + ".", t, DISTILL_SUB)
        print(name, "targets", t.shape, "max|t| %.5g mean %.5g" % (np.abs(t).max(), t.mean()))
    path = os.path.join(OUT, "cnn2_distill_targets.vgfx")
    fixtures.write(path, tensors)
    print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
