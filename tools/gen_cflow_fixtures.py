"""Fixtures for tests/test_cflow.c: anomalib 2.7's CflowModel (cflow/torch_model.py,
utils.py: cflow_head, get_logp, positional_encoding_2d; anomaly_map.py) imported with the
stubs of tools/gen_fastflow_fixtures.py (+ einops, torch.compiler for torch 1.13), and the
official gudovskiy/cflow-ad training loop (train.py train_meta_epoch) and score-map
normalisation (whole test set), written here after the official code.

Case r18: resnet18 encoder, layers layer2..4, input 64, batch 2, condition_vector 128,
8 coupling blocks, clamp 1.9, HARD permutations (exported perm.<l>.<j>; the soft SO(C)
rotation is FrEIA/scipy's random draw, checked in tests/test_flows.c, too big to store),
fiber batch N = 8 (E = 128, 32, 8 fibres -> 16 + 4 + 1 optimizer steps).
Weights: backbone vg_resnet_init_philox scheme (base 1000); decoders the sin formula of
gen_flow_fixtures.py over anomalib's names ("decoders.0.module_list.3.subnet.0.weight").
Inputs: Philox uniform(-2, 2): test batches seeds 7 and 8, training batch seed 100.
Stored: pe (positional encoding 128 x 8 x 8), lp.<l> (log p / C per fibre, batch seed 7),
map_b (anomalib per-batch map, seed 7), map_o / score_o (official normalisation over
both test batches, 4 maps), fperm.<l> (training fibre orders), closs (the 21 chunk
losses, Adam lr 2e-4, torch 1.x zero_grad semantics: grads zeroed), lp_t.0 (log_prob of
tap 0 after training); closs_none, lp_t_none.0, lp_t_none.1: the same training from the same
weights with torch 2's zero_grad(set_to_none=True). Also cflow_anomalib.pth (anomalib keys with "model.", deflated) of a tiny
model (layer1 only, condition_vector 4, 1 block) and its lp in cflow_anomalib.bin.
For tests/test_cli.c (`vigil predict --from-anomalib`): the same tiny model as a
Lightning-like checkpoint cflow_anomalib.ckpt ({"state_dict": {"model.*", anomalib 2.x
post_processor buffers}, "epoch", "global_step", "pytorch-lightning_version",
"hyper_parameters", ...}), two 32 x 32 Philox PNGs cflow_cli_{0,1}.png and cflow_cli.bin:
"x" (the loader's tensors), "map" / "score" (anomalib's map of the batch of both images =
the official normalisation over the two), "map_1" (each image as its own batch).

Run: /work/venv/bin/python tools/gen_cflow_fixtures.py   (torch 2.x + anomalib 2.7; the first files came from torch 1.13,
whose values the torch 2 run reproduces within the tests' tolerances)"""
import collections, os, sys, types
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures  # noqa: E402
import philox  # noqa: E402
import gen_fastflow_fixtures as gff  # noqa: E402
from gen_backbone_fixtures import init_philox  # noqa: E402
from gen_flow_fixtures import formula  # noqa: E402

OUT = gff.OUT


def load():
    ns = gff.load_anomalib()
    ein = types.ModuleType("einops")

    def repeat(x, pattern, tile):
        assert pattern.replace(" ", "") == "bchw->(tileb)chw"
        return x.repeat(tile, 1, 1, 1)

    def rearrange(x, pattern):
        assert pattern.replace(" ", "") == "bchw->(bhw)c"
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    ein.repeat, ein.rearrange = repeat, rearrange
    sys.modules["einops"] = ein
    if not hasattr(torch, "compiler"):
        torch.compiler = types.SimpleNamespace(is_compiling=lambda: False)
    ns.utils = gff._load("anomalib.models.image.cflow.utils", gff.ANOMALIB + "/models/image/cflow/utils.py")
    ns.amap = gff._load("anomalib.models.image.cflow.anomaly_map", gff.ANOMALIB + "/models/image/cflow/anomaly_map.py")
    ns.tm = gff._load("anomalib.models.image.cflow.torch_model", gff.ANOMALIB + "/models/image/cflow/torch_model.py")
    return ns


def set_weights(model, d):
    init_philox(model.encoder.feature_extractor, 1000)
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if name.startswith("encoder.") or not t.dtype.is_floating_point:
                continue
            leaf = name.split(".")[-1]
            if leaf == "w_perm":
                p = name.split(".")
                d["perm.%s.%s" % (p[1], p[3])] = gff.perm_index(t)
                continue
            if leaf == "w_perm_inv":
                continue
            v = formula(name, tuple(t.shape))
            if leaf == "global_scale":
                v = v + t.detach().double().numpy()
            t.copy_(torch.from_numpy(v).float())


def log_probs(ns, model, x):
    """official/anomalib: per tap log p / C for every fibre, rows (b, h, w)."""
    with torch.no_grad():
        act = model.encoder(x)
        out = []
        for l, layer in enumerate(model.pool_layers):
            e = act[layer]
            B, C, H, W = e.shape
            pe = ns.utils.positional_encoding_2d(model.condition_vector, H, W).unsqueeze(0).repeat(B, 1, 1, 1)
            c_r = pe.reshape(B, -1, H * W).transpose(1, 2).reshape(B * H * W, -1)
            e_r = e.reshape(B, C, H * W).transpose(1, 2).reshape(B * H * W, C)
            z, ld = model.decoders[l](e_r, [c_r])
            out.append((ns.utils.get_logp(C, z, ld) / C, H, W))
    return out


def official_maps(lps, size):
    """gudovskiy/cflow-ad train.py: normalise by the max over the whole test set (double)."""
    score = None
    for lp, H, W in lps:
        t = torch.tensor(lp, dtype=torch.double)
        t -= torch.max(t)
        m = torch.exp(t).reshape(-1, H, W)
        u = F.interpolate(m.unsqueeze(1), size=size, mode="bilinear", align_corners=True).squeeze(1).numpy()
        score = u if score is None else score + u
    sup = score.max() - score
    return sup.astype(np.float32), sup.max(axis=(1, 2)).astype(np.float32)


def main():
    torch.set_num_threads(2)
    ns = load()
    torch.manual_seed(0)
    S = 64
    model = ns.tm.CflowModel(backbone="resnet18", layers=["layer2", "layer3", "layer4"], pre_trained=False,
                             fiber_batch_size=8, condition_vector=128, coupling_blocks=8, clamp_alpha=1.9,
                             permute_soft=False)
    d = {}
    set_weights(model, d)
    d["pe"] = ns.utils.positional_encoding_2d(128, 8, 8).numpy()
    x7 = torch.from_numpy(philox.uniform_range((2, 3, S, S), -2, 2, 7))
    x8 = torch.from_numpy(philox.uniform_range((2, 3, S, S), -2, 2, 8))
    lp7, lp8 = log_probs(ns, model, x7), log_probs(ns, model, x8)
    for l, (lp, H, W) in enumerate(lp7):
        d["lp.%d" % l] = lp.numpy()
    model.eval()
    d["map_b"] = model(x7).anomaly_map.detach().numpy()
    both = [(torch.cat([a[0], b[0]]).numpy(), a[1], a[2]) for a, b in zip(lp7, lp8)]
    d["map_o"], d["score_o"] = official_maps(both, (S, S))
    # training: train.py train_meta_epoch on one batch, N = 8; once with torch 1.x's
    # zero_grad (grads zeroed: every decoder's Adam state moves at every step), once from the
    # same weights with torch 2's default set_to_none=True (only the stepped decoder moves)
    start = {k: v.clone() for k, v in model.decoders.state_dict().items()}
    for to_none, sfx in ((False, ""), (True, "_none")):
        model.decoders.load_state_dict(start)
        params = [p for dec in model.decoders for p in dec.parameters()]
        for p in params:
            p.grad = None
        opt = torch.optim.Adam(params, lr=2e-4)
        xb = torch.from_numpy(philox.uniform_range((2, 3, S, S), -2, 2, 100))
        model.decoders.train()
        with torch.no_grad():
            act = model.encoder(xb)
        g = torch.Generator().manual_seed(3)
        losses = []
        N = 8
        for l, layer in enumerate(model.pool_layers):
            e = act[layer].detach()
            B, C, H, W = e.shape
            E = B * H * W
            p = ns.utils.positional_encoding_2d(128, H, W).unsqueeze(0).repeat(B, 1, 1, 1)
            c_r = p.reshape(B, 128, H * W).transpose(1, 2).reshape(E, 128)
            e_r = e.reshape(B, C, H * W).transpose(1, 2).reshape(E, C)
            perm = torch.randperm(E, generator=g)
            d["fperm.%d" % l] = perm.numpy().astype(np.float32)
            dec = model.decoders[l]
            for f in range(E // N):
                idx = torch.arange(f * N, (f + 1) * N)
                c_p, e_p = c_r[perm[idx]], e_r[perm[idx]]
                z, ljd = dec(e_p, [c_p])
                lp = ns.utils.get_logp(C, z, ljd) / C
                loss = -F.logsigmoid(lp)
                opt.zero_grad(set_to_none=to_none)
                loss.mean().backward()
                opt.step()
                losses.append(loss.mean().item())
        d["closs" + sfx] = np.array(losses, np.float32)
        # taps 0 and 1 after training: with zeroed grads their decoders went on moving (Adam
        # momentum) while the later taps trained; with None grads they stopped. (The chunk
        # losses agree: torch creates a parameter's Adam state at its first grad.)
        lpt = log_probs(ns, model, x7)
        d["lp_t%s.0" % sfx] = lpt[0][0].numpy()
        if to_none:
            d["lp_t_none.1"] = lpt[1][0].numpy()
    path = os.path.join(OUT, "cflow_r18.bin")
    fixtures.write(path, d)
    print("r18", os.path.getsize(path), "bytes", len(losses), "steps")
    # tiny anomalib checkpoint
    torch.manual_seed(1)
    tiny = ns.tm.CflowModel(backbone="resnet18", layers=["layer1"], pre_trained=False, fiber_batch_size=64,
                            condition_vector=4, coupling_blocks=1, clamp_alpha=1.9, permute_soft=False)
    dt = {}
    set_weights(tiny, dt)
    xt = torch.from_numpy(philox.uniform_range((2, 3, 32, 32), -2, 2, 7))
    dt = {"lp.0": log_probs(ns, tiny, xt)[0][0].numpy()}
    fixtures.write(os.path.join(OUT, "cflow_anomalib.bin"), dt)
    sd = collections.OrderedDict(("model." + k, v) for k, v in tiny.state_dict().items()
                                 if not k.startswith("encoder."))
    path = os.path.join(OUT, "cflow_anomalib.pth")
    gff.write_deflated_pth(sd, path)
    print("pth", os.path.getsize(path), "bytes")
    # vigil predict --from-anomalib: a Lightning-like .ckpt of the tiny model and two images
    lsd = collections.OrderedDict(sd)
    for b in ["_image_threshold", "_pixel_threshold", "image_min", "image_max", "pixel_min", "pixel_max"]:
        lsd["post_processor." + b] = torch.tensor(0.5)
    ckpt = {"epoch": 3, "global_step": 42, "pytorch-lightning_version": "2.5.0", "state_dict": lsd,
            "loops": {}, "callbacks": {}, "optimizer_states": [], "lr_schedulers": [],
            "hyper_parameters": {"backbone": "resnet18", "layers": ["layer1"], "pre_trained": False,
                                 "fiber_batch_size": 64, "decoder": "freia-cflow", "condition_vector": 4,
                                 "coupling_blocks": 1, "clamp_alpha": 1.9, "permute_soft": False, "lr": 1e-4}}
    path = os.path.join(OUT, "cflow_anomalib.ckpt")
    gff.write_deflated_pth(ckpt, path)
    print("ckpt", os.path.getsize(path), "bytes")
    ims = [gff.cli_image(os.path.join(OUT, "cflow_cli_%d.png" % i), 32, 32, 31 + i) for i in range(2)]
    x = torch.cat([gff.loader_tensor(im, 32) for im in ims])
    tiny.eval()
    with torch.no_grad():
        o = tiny(x)
        m1 = torch.cat([tiny(x[i:i + 1]).anomaly_map for i in range(2)])
    path = os.path.join(OUT, "cflow_cli.bin")
    fixtures.write(path, {"x": x.numpy(), "map": o.anomaly_map.numpy(), "score": o.pred_score.numpy().reshape(-1),
                          "map_1": m1.numpy()})
    print("cli", os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
