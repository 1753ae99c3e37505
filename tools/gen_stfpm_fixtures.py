"""Fixtures for tests/test_stfpm.c: anomalib 2.7's STFPMModel + STFPMLoss + the SGD of its
Lightning module (lr 0.4, momentum 0.9, dampening 0, weight_decay 1e-3), run from the
installed package (/work/venv) with timm's resnet18 (features_only, layer1..3). The
teacher's TimmFeatureExtractor is built with pre_trained=False (no download) and then
overwritten, as is the student:

Weights, identical on the C side without storing them (vg_resnet_init_philox's scheme,
tools/gen_backbone_fixtures.py, over timm's state dict = torchvision's names):
  teacher  base seed 1000       student  base seed 2000
Input x: Philox uniform(-2, 2) seed 7, 2 x 3 x SIZE x SIZE (32); training batch i: seed BSEED + i
(BSEED 300: the first base of 100, 200, 300.. whose steps 0-1 have no ReLU input within 2e-6 of 0:
an input within float rounding of 0 flips that ReLU's mask between two correct implementations,
and the gradient of everything below it by O(1) relative; at 64 px such ties are near certain).

Stored:
  map, score     eval-mode anomaly map (every MSTRIDE-th element) and scores on x
  lmap.<l>       the per-layer map 0.5 |t^ - s^|^2 at feature resolution (eval)
  sf.<l>         student eval features, every FSTRIDE-th element
  curve          the loss before each of NSTEPS SGD steps (model.train(): student BN on batch statistics)
  p1, p2         the student's parameters (concatenated in named_parameters order, every
                 PSTRIDE-th element) after step 1 and step 2 (momentum buffer in use)
  b1             the student's running_mean/var (concatenated, every 7th) after step 1
  map_t          eval-mode map on x after NSTEPS steps (every MSTRIDE-th element)
  zero_init      1 when timm's student init has every BasicBlock bn2.weight = 0 (checked here)

Run: /work/venv/bin/python tools/gen_stfpm_fixtures.py"""
import os, sys
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures  # noqa: E402
import philox  # noqa: E402
from gen_backbone_fixtures import init_philox  # noqa: E402

import anomalib.models.image.stfpm.torch_model as tm  # noqa: E402
from anomalib.models.image.stfpm.loss import STFPMLoss  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures")
SIZE, NSTEPS = int(os.environ.get("SIZE", "32")), 8
MSTRIDE, FSTRIDE, PSTRIDE = 5, 23, 997
BSEED = int(os.environ.get("BSEED", "300"))
_TFE = tm.TimmFeatureExtractor


def _no_download(*a, **kw):
    kw["pre_trained"] = False
    return _TFE(*a, **kw)


def student_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.student_model.parameters()])


def student_bn_stats(model):
    return torch.cat([b.detach().reshape(-1) for n, b in model.student_model.named_buffers()
                      if n.endswith("running_mean") or n.endswith("running_var")])


def relu_margin(model):
    """pre-hooks on the student's ReLUs: the smallest |input| seen (a value within float
    rounding of 0 flips the ReLU's mask between implementations and its gradient with it)"""
    seen = [float("inf")]

    def hook(mod, inp):
        seen[0] = min(seen[0], float(inp[0].detach().abs().min()))
    hs = [m.register_forward_pre_hook(hook) for m in model.student_model.modules() if isinstance(m, torch.nn.ReLU)]
    return seen, hs


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    tm.TimmFeatureExtractor = _no_download
    model = tm.STFPMModel(layers=["layer1", "layer2", "layer3"], backbone="resnet18")
    d = {}
    # timm's student init: every BasicBlock's bn2.weight is 0 (zero_init_last)
    zi = all(float(m.bn2.weight.abs().max()) == 0 for n, m in model.student_model.feature_extractor.named_modules()
             if n.count(".") == 1 and n.startswith("layer"))
    d["zero_init"] = np.array([1.0 if zi else 0.0], np.float32)
    init_philox(model.teacher_model.feature_extractor, 1000)
    init_philox(model.student_model.feature_extractor, 2000)
    x = torch.from_numpy(philox.uniform_range((2, 3, SIZE, SIZE), -2, 2, 7))
    model.eval()
    with torch.no_grad():
        out = model(x)
        tf = model.teacher_model(x)
        sf = model.student_model(x)
        for i, k in enumerate(tf):
            lm = 0.5 * torch.norm(torch.nn.functional.normalize(tf[k]) - torch.nn.functional.normalize(sf[k]),
                                  p=2, dim=-3, keepdim=True) ** 2
            d["lmap.%d" % i] = lm.numpy()
            d["sf.%d" % i] = sf[k].numpy().reshape(-1)[::FSTRIDE].copy()
    d["map"] = out.anomaly_map.numpy().reshape(-1)[::MSTRIDE].copy()
    d["score"] = out.pred_score.numpy().reshape(-1)
    crit = STFPMLoss()
    opt = torch.optim.SGD(model.student_model.parameters(), lr=0.4, momentum=0.9, dampening=0.0, weight_decay=0.001)
    model.train()
    seen, hooks = relu_margin(model)
    curve = []
    for i in range(NSTEPS):
        b = torch.from_numpy(philox.uniform_range((2, 3, SIZE, SIZE), -2, 2, BSEED + i))
        opt.zero_grad()
        t, s = model(b)
        loss = crit(t, s)
        loss.backward()
        opt.step()
        curve.append(loss.item())
        if i == 0:
            d["p1"] = student_params(model).numpy()[::PSTRIDE].copy()
            d["b1"] = student_bn_stats(model).numpy()[::7].copy()
        if i == 1:
            d["p2"] = student_params(model).numpy()[::PSTRIDE].copy()
            # the two steps whose parameters are compared at 1e-5 must not sit on a ReLU tie
            print("smallest |ReLU input| in steps 0-1: %.3g" % seen[0])
            if seen[0] < 2e-6:
                raise SystemExit("a ReLU input within 2e-6 of 0 in steps 0-1: pick another BSEED")
            for h in hooks:
                h.remove()
    d["curve"] = np.array(curve, np.float32)
    model.eval()
    with torch.no_grad():
        d["map_t"] = model(x).anomaly_map.numpy().reshape(-1)[::MSTRIDE].copy()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "stfpm_r18.bin")
    fixtures.write(path, d)
    print("stfpm_r18.bin", os.path.getsize(path), "bytes; zero_init", zi, "curve", curve,
          "score", d["score"], "n params", student_params(model).numel())


if __name__ == "__main__":
    main()
