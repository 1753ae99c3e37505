"""Fixtures for tests/test_padim.c: anomalib 2.7's GaussianBlur2d and PadimModel (the installed
/work/venv package, imported as is).

padim_blur.bin: GaussianBlur2d (kornia kernel, reflect padding, depthwise conv) on Philox
inputs x = uniform(-1, 2) of seed 300 + case (philox.uniform_range, the C side's vg_uniform_):
  blur<i>.y  the blurred map, blur<i>.exact the same in float64 (f32 kernel, exact sums), blur<i>.cfg = [N, C, H, W, sigma, ksize (0 = anomalib's)]
  kernel33   anomalib's sigma 4 kernel (33 x 33, what its buffer holds)

padim.bin / padim_wrn.bin: PadimModel with the backbone's weights set by
gen_backbone_fixtures.init_philox (base seed 1000, what vg_resnet_init_philox does), fitted on
NTRAIN Philox images (uniform(-2, 2), seed 500 + i), then evaluated on NTEST images (seed 600 + i):
  idx        the channel subset (anomalib's torch.randperm under torch.manual_seed(0))
  mean       gaussian.mean (C, HW); inv_cov gaussian.inv_covariance (every 97th element, flattened)
  dist       the Mahalanobis distance map before upsampling (NTEST, 1, h, w)
  map        anomaly_map (NTEST, 1, H, W), score pred_score (NTEST)
timm's features_only ResNet is used as anomalib builds it, with pretrained=False (no download);
its state dict names are torchvision's, so init_philox applies unchanged.

Run: /work/venv/bin/python tools/gen_padim_fixtures.py"""
import os
import sys
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures  # noqa: E402
import philox  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures")

BLUR_CASES = [  # N, C, H, W, sigma, ksize
    (2, 2, 24, 20, 4.0, 0),    # anomalib's map blur: 33 taps
    (1, 1, 17, 17, 4.0, 0),    # the smallest image reflect padding 16 allows
    (1, 3, 9, 13, 1.0, 0),     # 9 taps
    (2, 1, 7, 6, 2.0, 5),      # explicit kernel size
    (1, 1, 5, 4, 0.3, 0),      # 3 taps
    (1, 1, 3, 40, 0.7, 3),     # wide and flat
]


def blur_fixture():
    from anomalib.models.components.filters import GaussianBlur2d
    out = {}
    for i, (n, c, h, w, s, k) in enumerate(BLUR_CASES):
        x = torch.from_numpy(philox.uniform_range((n, c, h, w), -1.0, 2.0, 300 + i))
        b = GaussianBlur2d(sigma=s, channels=c, kernel_size=(k if k else None))
        with torch.no_grad():
            out["blur%d.y" % i] = b(x).numpy()
            # the same blur in float64 (anomalib's f32 kernel, reflect pad, exact sums): torch's own
            # f32 result is ~1e-6 from it on O(1) inputs (its 33 x 33 = 1089-term f32 sums)
            kd = b.kernel.double()
            pad = [kd.shape[-1] // 2] * 2 + [kd.shape[-2] // 2] * 2
            xd = torch.nn.functional.pad(x.double(), pad, mode="reflect")
            out["blur%d.exact" % i] = torch.nn.functional.conv2d(xd, kd, groups=c).numpy()
        out["blur%d.cfg" % i] = np.array([n, c, h, w, s, k], dtype=np.float32)
    out["kernel33"] = GaussianBlur2d(sigma=4.0, channels=1).kernel[0, 0].numpy()
    fixtures.write(os.path.join(OUT, "padim_blur.bin"), out)


CASES = {  # file: backbone, input size, n train, n test, inv_cov stride, mean stride, map stride
    "padim.bin": ("resnet18", 72, 4, 2, 997, 11, 2),
    "padim_wrn.bin": ("wide_resnet50_2", 64, 3, 1, 19997, 61, 3),
}


def padim_fixture(fname):
    from gen_backbone_fixtures import init_philox
    from anomalib.models.image.padim.torch_model import PadimModel
    backbone, size, ntrain, ntest, cstride, mstride, pstride = CASES[fname]
    torch.manual_seed(0)
    model = PadimModel(backbone=backbone, pre_trained=False)
    fe = model.feature_extractor.feature_extractor
    init_philox(fe, 1000)
    model.train()
    model.feature_extractor.eval()
    with torch.no_grad():
        for i in range(ntrain):
            model(torch.from_numpy(philox.uniform_range((1, 3, size, size), -2.0, 2.0, 500 + i)))
        model.fit()
        model.eval()
        xs = torch.cat([torch.from_numpy(philox.uniform_range((1, 3, size, size), -2.0, 2.0, 600 + i))
                        for i in range(ntest)])
        feats = model.feature_extractor(xs)
        emb = model.generate_embedding(feats)
        dist = model.anomaly_map_generator.compute_distance(emb, [model.gaussian.mean, model.gaussian.inv_covariance])
        out = model(xs)
    out = {
        "cfg": np.array([size, ntrain, ntest, cstride, mstride, pstride, model.n_features], dtype=np.float32),
        "idx": model.idx.numpy().astype(np.float32),
        "mean": model.gaussian.mean.numpy().reshape(-1)[::mstride],
        "inv_cov": model.gaussian.inv_covariance.numpy().reshape(-1)[::cstride],
        "inv_cov_shape": np.array(model.gaussian.inv_covariance.shape, dtype=np.float32),
        "dist": dist.numpy(),
        "map": out.anomaly_map.numpy().reshape(-1)[::pstride],
        "score": out.pred_score.numpy().reshape(-1),
    }
    fixtures.write(os.path.join(OUT, fname), out)
    print(fname, {k: v.shape for k, v in out.items()}, "max map", float(out["map"].max()))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    blur_fixture()
    if "--blur-only" not in sys.argv:
        for f in CASES:
            if "--r18-only" in sys.argv and f != "padim.bin":
                continue
            padim_fixture(f)
