"""Fixtures for tests/test_patchcore.c: anomalib 2.7's PatchcoreModel (the installed package in
/work/venv, its own timm feature extractor, pre_trained=False) on identical random weights.

Weights, identical on the C side without storing them: the truncated timm ResNet
(conv1 .. layer3) gets the Philox scheme of vg_resnet_init_philox (base seed 1000,
tools/gen_backbone_fixtures.py), indexed over its state dict, which lists the same names
in the same order as torchvision's / Vigil's truncated model (checked here).
Inputs: Philox uniform(-2, 2): train images seed 11 (NTRAIN x 3 x S x S), test images seed 7.

Fit: the training-mode forward collects the patch embeddings, then anomalib's own
KCenterGreedy (coreset_sampling_ratio 0.1, SparseRandomProjection eps 0.9, numpy/torch RNGs
seeded) picks the coreset. Stored so the C side can replay the same selection:
  proj    the dense (k, D) sparse random projection matrix anomalib drew
  start   the random start index (the first selected index)
  idx     every selected index, in selection order
  emb     every EMB_STRIDE-th element of the (N, D) training embedding (row-major)
Inference (eval mode, memory bank = the coreset rows): map (B, 1, S, S) after the nearest
resize and the sigma-4 blur, score (pred_score, the reweighted image score), patch
(the nearest-neighbour distances, B x h*w).

Cases: patchcore_r18.bin (resnet18, layer2+layer3, 64 px, 6 train / 2 test images) and
patchcore_wrn50.bin (wide_resnet50_2, layer2+layer3 = 1536 dims, 64 px, 3 train / 1 test).

Run: /work/venv/bin/python tools/gen_patchcore_fixtures.py"""
import os
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures  # noqa: E402
import philox  # noqa: E402
from gen_backbone_fixtures import init_philox  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures")
EMB_STRIDE = 97

CASES = [
    ("patchcore_r18.bin", "resnet18", 64, 6, 2),
    ("patchcore_wrn50.bin", "wide_resnet50_2", 64, 3, 1),
]


def tv_names(backbone):
    import torchvision
    m = getattr(torchvision.models, backbone)(weights=None)
    keep = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.")
    return [k for k in m.state_dict().keys() if k.startswith(keep)]


def run_case(fname, backbone, size, ntrain, ntest):
    from anomalib.models.components import KCenterGreedy
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel
    torch.manual_seed(0)
    np.random.seed(0)
    model = PatchcoreModel(layers=["layer2", "layer3"], backbone=backbone, pre_trained=False, num_neighbors=9)
    fe = model.feature_extractor.feature_extractor
    names = list(fe.state_dict().keys())
    if names != tv_names(backbone):
        raise SystemExit("timm's truncated state dict differs from torchvision's names/order")
    init_philox(fe, 1000)
    xtr = torch.from_numpy(philox.uniform_range((ntrain, 3, size, size), -2.0, 2.0, 11))
    xte = torch.from_numpy(philox.uniform_range((ntest, 3, size, size), -2.0, 2.0, 7))
    model.train()
    with torch.no_grad():
        model(xtr)
    emb = torch.vstack(model.embedding_store)
    model.embedding_store.clear()
    torch.manual_seed(1)
    np.random.seed(1)
    sampler = KCenterGreedy(embedding=emb, sampling_ratio=0.1)
    idx = sampler.select_coreset_idxs()
    proj = sampler.model.sparse_random_matrix
    model.memory_bank = emb[idx].clone()
    model.eval()
    with torch.no_grad():
        out = model(xte)
        # the nearest-neighbour distances (the map before resize and blur)
        feats = model.feature_extractor(xte)
        feats = {k: model.feature_pooler(v) for k, v in feats.items()}
        e = model.reshape_embedding(model.generate_embedding(feats))
        patch, _ = model.nearest_neighbors(e, 1)
    t = {
        "proj": proj.numpy(),
        "start": np.array([idx[0]], np.float32),
        "idx": np.array(idx, np.float32),
        "emb": emb.numpy().reshape(-1)[::EMB_STRIDE],
        "emb_stride": np.array([EMB_STRIDE], np.float32),
        "emb_shape": np.array(emb.shape, np.float32),
        "map": out.anomaly_map.numpy(),
        "score": out.pred_score.numpy(),
        "patch": patch.reshape(ntest, -1).numpy(),
    }
    os.makedirs(OUT, exist_ok=True)
    fixtures.write(os.path.join(OUT, fname), t)
    print(fname, "N", tuple(emb.shape), "k", proj.shape[0], "coreset", len(idx), "score", out.pred_score.numpy(),
          "map max", float(out.anomaly_map.abs().max()))


def main():
    torch.set_num_threads(2)
    for c in CASES:
        run_case(*c)


if __name__ == "__main__":
    main()
