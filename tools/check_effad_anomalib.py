"""End-to-end check of `vigil predict --from-anomalib FILE --model efficientad` against
anomalib 2.7's EfficientAdModel (not a fixture: the checkpoint is ~35 MB, so nothing is
stored; run by hand).

Builds the anomalib torch model (S or M) with Philox weights, sets mean_std and the map
quantiles, saves its state_dict with Lightning's "model." prefix, writes a 256 x 256 PNG,
computes anomalib's anomaly map on ToTensor(image), runs vigil predict on the same PNG
and prints the max relative error of the float TIFF map and of the score.

Run: /usr/bin/python3 tools/check_effad_anomalib.py [s|m] [VIGIL]   (torch 1.13)
Last run (2026-11-23): S map 1.5e-7, score 1.2e-7 relative."""
import collections
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import philox  # noqa: E402
from gen_efficientad_fixtures import init_uniform, load_anomalib  # noqa: E402


def read_tiff_f32(path):
    """Vigil's float TIFF (one strip, uncompressed, little endian): the last w*h*4 bytes."""
    im = Image.open(path)
    return np.asarray(im, dtype=np.float32)


def main():
    size = sys.argv[1] if len(sys.argv) > 1 else "s"
    vigil = sys.argv[2] if len(sys.argv) > 2 else "./vigil"
    ta = load_anomalib()
    torch.manual_seed(0)
    m = ta.EfficientAdModel(teacher_out_channels=384,
                            model_size=ta.EfficientAdModelSize.S if size == "s" else ta.EfficientAdModelSize.M,
                            padding=False, pad_maps=True)
    init_uniform(m.teacher, 31)
    init_uniform(m.student, 32)
    init_uniform(m.ae, 33)
    with torch.no_grad():
        m.mean_std["mean"].copy_(torch.from_numpy(philox.uniform_range((1, 384, 1, 1), -0.1, 0.1, 34)))
        m.mean_std["std"].copy_(torch.from_numpy(philox.uniform_range((1, 384, 1, 1), 0.5, 1.5, 35)))
        for i, k in enumerate(("qa_st", "qb_st", "qa_ae", "qb_ae")):
            m.quantiles[k].copy_(torch.tensor([0.01, 0.2, 0.02, 0.3][i]))
    d = tempfile.mkdtemp()
    ckpt = os.path.join(d, "effad.ckpt")
    sd = collections.OrderedDict(("model." + k, v.detach().clone()) for k, v in m.state_dict().items())
    torch.save({"state_dict": sd}, ckpt)
    px = (philox.uniform_range((256, 256, 3), 0, 1, 36) * 255.0 + 0.5).astype(np.uint8)
    img = os.path.join(d, "img.png")
    Image.fromarray(px, "RGB").save(img)
    x = torch.from_numpy(px.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
    m.eval()
    with torch.no_grad():
        out = m(x)
    want = out.anomaly_map[0, 0].numpy()
    score = float(out.pred_score.reshape(-1)[0])
    res = subprocess.run([vigil, "predict", "--from-anomalib", ckpt, "--model", "efficientad", "--set", "model=" + size,
                          "--out", os.path.join(d, "out"), "--no-overlay", img], capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stderr)
        sys.exit(1)
    line = json.loads(res.stdout.strip().splitlines()[-1])
    got = read_tiff_f32(line["map"])
    err = np.abs(got - want).max() / np.abs(want).max()
    print("EfficientAD-%s: map max rel err %.3g (max |map| %.4g), score %.6g vs %.6g (rel %.3g)" %
          (size.upper(), err, np.abs(want).max(), line["score"], score, abs(line["score"] - score) / abs(score)))


if __name__ == "__main__":
    main()
