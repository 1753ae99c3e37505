"""Acceptance check of issue #16: `vigil predict --from-anomalib` against anomalib 2.x's own
pipeline (anomalib.data.utils.read_image -> the model's pre_processor.transform -> the torch
model in eval mode), not against a tensor Vigil made. Nothing is stored (the checkpoints are
50-600 MB); run by hand with anomalib 2.7's venv:

    /work/venv/bin/python tools/check_anomalib_import.py [--vigil ./build/he/vigil]
        [--photos ../shared/testdata/photos] [--cases ff_r18,ff_wrn50,cflow_wrn50,effad_s,effad_m]
        [--pil]   (also run with --set resize=pil: the 8-bit Pillow input, the old default)

Per case the anomalib Lightning module is built with anomalib's defaults (Fastflow: flow_steps 8,
hidden_ratio 1.0, conv3x3_only False; Cflow: layer2..4, 8 blocks, condition 128; EfficientAd
S / M, padding False, pad_maps True) at anomalib's default input size (256 x 256), with random
weights (pre_trained=False: no downloads; flows and EfficientAD statistics randomised so the
maps are not flat), and saved as Lightning's Trainer lays out a .ckpt (state_dict() with the
"model." prefix, hyper_parameters as an AttributeDict, loops, ...). Vigil is
given only the checkpoint and --model (structural options come from the tensor shapes). The
inputs are the non-square photos; anomalib's map (at 256 x 256) is brought to the photo's size
with F.interpolate(bilinear, align_corners=False), as Vigil writes its TIFF, and the table is
max |vigil - anomalib| / max |anomalib| per case (worst photo). CFLOW: map_norm official = one
anomalib batch of all the photos; map_norm anomalib = each photo its own batch.
Acceptance: <= 1e-4 for every row.

Last run (2026-12-07, anomalib 2.7.0, torch 2.15, CPU; 5 photos: dog, eagle, horses, person, scream):
  case                   resize float (default)   resize pil (old default)
  ff_r18                 9.96e-07                 2.59e-03
  ff_wrn50               1.08e-06                 2.49e-03
  cflow_wrn50 official   2.81e-05                 2.27e-03
  cflow_wrn50 anomalib   3.13e-05                 2.58e-03
  effad_s                4.51e-06                 1.69e-03
  effad_m                4.84e-06                 1.83e-03"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

warnings.filterwarnings("ignore")


def read_tiff_f32(path):
    return np.asarray(Image.open(path), dtype=np.float32)


def randomise(module, seed, scale=0.02):
    """Small random perturbations of every float parameter / buffer named like a flow or norm
    (not BatchNorm running stats), so that the test exercises every weight."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in module.named_parameters():
            if "feature_extractor" in n or "encoder" in n:
                continue
            p.add_(torch.randn(p.shape, generator=g) * scale * (p.abs().mean() + 1e-2))


def build(case):
    from anomalib.models import Cflow, EfficientAd, Fastflow
    torch.manual_seed(0)
    if case == "ff_r18":
        return Fastflow(backbone="resnet18", pre_trained=False)
    if case == "ff_wrn50":
        return Fastflow(backbone="wide_resnet50_2", pre_trained=False)
    if case == "cflow_wrn50":
        return Cflow(backbone="wide_resnet50_2", pre_trained=False)
    if case in ("effad_s", "effad_m"):
        m = EfficientAd(model_size="small" if case == "effad_s" else "medium")
        g = torch.Generator().manual_seed(5)
        with torch.no_grad():
            for net in (m.model.teacher, m.model.student, m.model.ae):
                for n, p in net.named_parameters():   # keep activations O(1) through the PDN
                    if n.endswith("weight"):
                        fan_in = p[0].numel()
                        p.copy_(torch.randn(p.shape, generator=g) * (1.0 / fan_in) ** 0.5)
                    else:
                        p.copy_(torch.randn(p.shape, generator=g) * 0.01)
            c = m.model.mean_std["mean"].shape[1]
            m.model.mean_std["mean"].copy_(torch.rand((1, c, 1, 1), generator=g) * 0.2 - 0.1)
            m.model.mean_std["std"].copy_(torch.rand((1, c, 1, 1), generator=g) + 0.5)
            for i, k in enumerate(("qa_st", "qb_st", "qa_ae", "qb_ae")):
                m.model.quantiles[k].copy_(torch.tensor([0.01, 0.2, 0.02, 0.3][i]))
        return m
    raise ValueError(case)


def anomalib_maps(lm, photos, batch_all):
    """read_image -> pre_processor.transform -> torch model (eval): maps at the input size."""
    from anomalib.data.utils import read_image
    lm.eval()
    lm.model.eval()
    xs = [lm.pre_processor.transform(read_image(p, as_tensor=True)[None]) for p in photos]
    def n1hw(m):
        return m.float().reshape(m.shape[0], 1, m.shape[-2], m.shape[-1])
    with torch.no_grad():
        if batch_all:
            out = n1hw(lm.model(torch.cat(xs)).anomaly_map)
            return [out[i:i + 1] for i in range(len(photos))]
        return [n1hw(lm.model(x).anomaly_map) for x in xs]


def run_vigil(vigil, ckpt, model, photos, out, extra):
    cmd = [vigil, "predict", "--from-anomalib", ckpt, "--model", model, "--out", out, "--no-overlay"] + extra + photos
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
        raise SystemExit("vigil predict failed: " + " ".join(cmd))
    maps = {}
    for line in r.stdout.strip().splitlines():
        j = json.loads(line)
        maps[j["image"]] = read_tiff_f32(j["map"])
    note = [l for l in r.stderr.splitlines() if "tensor shapes" in l]
    return maps, time.time() - t, note[0].split(": ", 2)[-1] if note else ""


def compare(ref_maps, vmaps, photos):
    worst, peak = 0.0, 0.0
    for p, ref in zip(photos, ref_maps):
        w, h = Image.open(p).size
        big = F.interpolate(ref, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
        got = vmaps[p]
        assert got.shape == big.shape, (got.shape, big.shape)
        e = float(np.abs(got - big).max() / np.abs(big).max())
        worst = max(worst, e)
        peak = max(peak, float(np.abs(big).max()))
    return worst, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", default="./build/he/vigil")
    ap.add_argument("--photos", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                                                     "testdata", "photos"))
    ap.add_argument("--cases", default="ff_r18,ff_wrn50,cflow_wrn50,effad_s,effad_m")
    ap.add_argument("--pil", action="store_true")
    ap.add_argument("--keep", default="")
    a = ap.parse_args()
    def size(p):   # files Pillow cannot open (a LICENSE next to the photos) are skipped
        try:
            return Image.open(p).size
        except Exception:
            return (0, 0)
    photos = sorted(p for p in glob.glob(os.path.join(a.photos, "*")) if size(p)[0] != size(p)[1])
    d = a.keep or tempfile.mkdtemp(prefix="vigil_anomalib_")
    os.makedirs(d, exist_ok=True)
    rows = []
    for case in a.cases.split(","):
        lm = build(case)
        if case.startswith("ff") or case.startswith("cflow"):
            randomise(lm.model, 11)
        model = {"ff": "fastflow", "cf": "cflow", "ef": "efficientad"}[case[:2]]
        ckpt = os.path.join(d, case + ".ckpt")
        import lightning   # laid out as Lightning's Trainer writes a .ckpt
        torch.save({"epoch": 0, "global_step": 0, "pytorch-lightning_version": lightning.__version__,
                    "state_dict": lm.state_dict(), "loops": {}, "callbacks": {}, "optimizer_states": [],
                    "lr_schedulers": [], "hparams_name": "kwargs", "hyper_parameters": lm.hparams}, ckpt)
        norms = [("official", True, []), ("anomalib", False, ["--set", "map_norm=anomalib"])] if model == "cflow" \
            else [("", False, [])]
        for name, batch_all, extra in norms:
            ref = anomalib_maps(lm, photos, batch_all)
            label = case + (" " + name if name else "")
            vm, secs, note = run_vigil(a.vigil, ckpt, model, photos, os.path.join(d, "out_" + case + name), extra)
            e, peak = compare(ref, vm, photos)
            row = [label, e, peak, secs, note]
            if a.pil:
                vp, _, _ = run_vigil(a.vigil, ckpt, model, photos, os.path.join(d, "outp_" + case + name),
                                     extra + ["--set", "resize=pil"])
                row.append(compare(ref, vp, photos)[0])
            rows.append(row)
            print("%-22s float: %.3g  (max|map| %.4g, vigil %.1f s)%s   inferred: %s" %
                  (label, e, peak, secs, ("   pil: %.3g" % row[5]) if a.pil else "", note), flush=True)
        if not a.keep:
            os.remove(ckpt)
    print("\n| case | max err / max\\|map\\| (resize float, default) |%s photos |" % (" resize pil |" if a.pil else ""))
    print("|---|---|%s---|" % ("---|" if a.pil else ""))
    for r in rows:
        print("| %s | %.2e |%s %d non-square |" % (r[0], r[1], (" %.2e |" % r[5]) if a.pil else "", len(photos)))
    bad = [r[0] for r in rows if not r[1] <= 1e-4]
    print("FAIL: " + ", ".join(bad) if bad else "all <= 1e-4")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
