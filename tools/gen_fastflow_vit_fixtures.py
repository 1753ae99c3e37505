"""Fixtures for tests/test_fastflow_vit.c: anomalib 2.7's FastflowModel (/work/venv, its own
torch_model.py, unmodified) on TINY timm transformers of the same classes.

anomalib picks the transformer path by the backbone NAME ("deit_base_distilled_patch16_384" ->
VisionTransformerDistilled -> _get_vit_features: blocks 0..7, norm, drop 2 prefix tokens;
"cait_m48_448" -> Cait -> _get_cait_features: blocks 0..40, norm) and builds the backbone with
timm.create_model(name, pretrained=False). Here timm.create_model is patched for the
construction to return the SAME timm class with reduced sizes (patch 16 kept: anomalib reshapes
with input_size // 16; depth >= 8 / 41 kept: anomalib indexes the blocks). anomalib hard-codes
channels = [768] for the flow; after construction fast_flow_blocks is rebuilt with anomalib's own
create_fast_flow_block for the tiny width (the one substitution).

Weights (none stored):
  backbone  vg_vit_init_philox's scheme (tools/gen_vit_fixtures.py init_philox), entry i = the
            i-th f32 entry of the TRUNCATED model Vigil builds (blocks 0..K, norm; no
            blocks_token_only / head), in timm's state_dict order, seed BASE_SEED + i
  flows     the sin formula of tools/gen_flow_fixtures.py over anomalib's names
            (tests/common/flow_weights.h); permutations exported as perm.<step> index vectors
Inputs: Philox uniform(-2, 2) (N=2), seed 7; training batches seed 100 + step.
Stored per arch (fastflow_vit_<arch>.bin): feat (the transformer features anomalib feeds the
flow, (N, C, g, g)), z, ld, loss, map (every MAPSTRIDE-th element), score, curve (3 Adam steps,
lr 1e-3, wd 1e-5: loss before each step, the backbone frozen as anomalib's).
fastflow_vit_<arch>.pth: a plain state_dict with anomalib's keys ("model." prefix as Lightning's)
of the same model: the flow and the small feature_extractor entries (cls/dist tokens, pos_embed,
norm, and for DeiT one entry of the unbuilt block 8) — what `vigil predict --from-anomalib`
reads the backbone name and input size from. Deflated.

Run: /work/venv/bin/python tools/gen_fastflow_vit_fixtures.py"""
import collections
import os
import sys
import warnings
import zipfile

import numpy as np
import torch

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures  # noqa: E402
import philox  # noqa: E402
from gen_flow_fixtures import formula  # noqa: E402
from gen_vit_fixtures import init_philox  # noqa: E402

import anomalib.models.image.fastflow.torch_model as tm  # noqa: E402
from anomalib.models.image.fastflow.loss import FastflowLoss  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures")
BASE_SEED = 3100
MAPSTRIDE = 4
STEPS, RATIO = 4, 0.25          # the tiny flow: 3x3 / 1x1 alternating (conv3x3_only False)
TINY = {
    # tag: (published name, timm kwargs, input size, blocks Vigil builds)
    "deit": ("deit_base_distilled_patch16_384",
             dict(img_size=64, embed_dim=32, depth=9, num_heads=2, mlp_ratio=2.0, num_classes=0), 64, 8),
    "cait": ("cait_m48_448",
             dict(img_size=48, embed_dim=32, depth=41, num_heads=2, mlp_ratio=2.0, num_classes=0), 48, 41),
}


def built(name, nblocks):
    """is this timm key in the truncated model Vigil builds (blocks 0..nblocks-1 + norm)?"""
    if name.startswith(("head", "blocks_token_only.", "fc_norm.")):
        return False
    if name.startswith("blocks."):
        return int(name.split(".")[1]) < nblocks
    return True


def init_truncated(model, nblocks, base_seed):
    """init_philox's scheme with the index over the truncated model's entries"""
    sd = model.state_dict()
    keep = [k for k in sd if built(k, nblocks) and sd[k].dtype == torch.float32]

    class View(torch.nn.Module):   # init_philox walks state_dict() in order
        def state_dict(self):
            return collections.OrderedDict((k, sd[k]) for k in keep)
    init_philox(View(), base_seed)


def set_flow_weights(model, d):
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if not name.startswith("fast_flow_blocks.") or not t.dtype.is_floating_point:
                continue
            leaf = name.split(".")[-1]
            if leaf == "w_perm":
                w = t.detach().reshape(t.shape[0], t.shape[1])
                d["perm.%s" % name.split(".")[3]] = w.argmax(dim=1).numpy().astype(np.float32)
                continue
            if leaf == "w_perm_inv":
                continue
            v = formula(name, tuple(t.shape))
            if leaf == "global_scale":
                v = v + t.detach().double().numpy()
            t.copy_(torch.from_numpy(v).float())


def make_model(arch):
    name, kw, size, nblocks = TINY[arch]
    real = tm.timm.create_model
    tm.timm.create_model = lambda n, pretrained=False, **k: real(n, pretrained=False, **kw)
    try:
        torch.manual_seed(0)
        model = tm.FastflowModel(input_size=(size, size), backbone=name, pre_trained=False, flow_steps=1,
                                 conv3x3_only=False, hidden_ratio=RATIO)
    finally:
        tm.timm.create_model = real
    C, g = kw["embed_dim"], size // 16
    model.fast_flow_blocks = torch.nn.ModuleList([tm.create_fast_flow_block(
        input_dimensions=[C, g, g], conv3x3_only=False, hidden_ratio=RATIO, flow_steps=STEPS)])
    init_truncated(model.feature_extractor, nblocks, BASE_SEED)
    return model, size


def case(arch):
    model, size = make_model(arch)
    d = {"philox.check": philox.uniform(BASE_SEED, 4)}
    set_flow_weights(model, d)
    x = torch.from_numpy(philox.uniform_range((2, 3, size, size), -2, 2, 7))
    crit = FastflowLoss()
    with torch.no_grad():
        fe = model.feature_extractor
        feat = model._get_vit_features(x) if arch == "deit" else model._get_cait_features(x)
    d["feat"] = feat[0].numpy()
    model.train()
    z, ld = model(x)
    d["loss"] = np.array([crit(z, ld).item()], np.float32)
    d["z"] = z[0].detach().numpy()
    d["ld"] = ld[0].detach().numpy()
    model.eval()
    with torch.no_grad():
        out = model(x)
    d["map"] = out.anomaly_map.numpy().reshape(-1)[::MAPSTRIDE].copy()
    d["mapstride"] = np.array([MAPSTRIDE], np.float32)
    d["score"] = out.pred_score.numpy().reshape(-1)
    # sd of the untrained model for the anomalib .pth
    sd = collections.OrderedDict()
    small = ("cls_token", "dist_token", "pos_embed", "norm.weight", "norm.bias", "blocks.8.norm1.weight")
    for k, v in model.state_dict().items():
        if k.startswith("feature_extractor."):
            if k[len("feature_extractor."):] not in small:
                continue
        sd["model." + k] = v.clone()
    model.train()
    opt = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-3, weight_decay=1e-5)
    curve = []
    for i in range(3):
        b = torch.from_numpy(philox.uniform_range((2, 3, size, size), -2, 2, 100 + i))
        opt.zero_grad()
        z, ld = model(b)
        loss = crit(z, ld)
        loss.backward()
        opt.step()
        curve.append(loss.item())
    d["curve"] = np.array(curve, np.float32)
    assert all(not p.requires_grad for p in fe.parameters())
    path = os.path.join(OUT, "fastflow_vit_%s.bin" % arch)
    fixtures.write(path, d)
    print(arch, os.path.getsize(path), "bytes; trained params",
          sum(p.numel() for p in model.parameters() if p.requires_grad))
    pth = os.path.join(OUT, "fastflow_vit_%s.pth" % arch)
    tmp = pth + ".tmp"
    torch.save(sd, tmp)
    with zipfile.ZipFile(tmp) as zi, zipfile.ZipFile(pth, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zo:
        for info in zi.infolist():
            zo.writestr(info.filename, zi.read(info.filename))
    os.remove(tmp)
    print(arch, "pth", os.path.getsize(pth), "bytes")


def counts():
    """the flow's trained parameters at full size (anomalib's FastflowModel flow, no backbone)"""
    for ratio in (0.16, 1.0 / 3 + 1e-9):
        f = tm.create_fast_flow_block([768, 24, 24], conv3x3_only=False, hidden_ratio=ratio, flow_steps=20)
        print("flow 768ch 20 steps ratio %.4f: %d trainable, %d with w_perm/w_perm_inv" % (
            ratio, sum(p.numel() for p in f.parameters() if p.requires_grad),
            sum(p.numel() for p in f.parameters())))


def main():
    torch.set_num_threads(2)
    case("deit")
    case("cait")
    if "--counts" in sys.argv:
        counts()


if __name__ == "__main__":
    main()
