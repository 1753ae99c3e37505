"""Golden values of anomalib's EfficientAD torch model for tests/test_efficientad.c.

The model is anomalib 2.7's efficient_ad/torch_model.py itself, imported with a stub
for its one anomalib import (anomalib.data.InferenceBatch). No weights or images are
stored: every parameter gets Philox values by the scheme of vg_effad_init_uniform
(parameter i of a module's named_parameters(): U(-b, b), b = 1/sqrt(fan_in), seed
BASE + i, tools/philox.py), every image is vg_rand-like U[0,1) from a Philox seed.
Stored: strided channel subsets of the network outputs, the loss terms of one
Algorithm-1 step, teacher channel statistics, map quantiles, normalised maps
(every 8th row and column), a 20-step loss curve (Adam 1e-4, wd 1e-5; the AE in eval mode, so
no dropout: torch's dropout masks cannot be reproduced), and PDN-M / padded PDN-S
outputs on 64x64 inputs.

Run: /usr/bin/python3 tools/gen_efficientad_fixtures.py [aug]   (torch 1.13; `aug`: only
effad_aug.vgfx, the AE-branch augmentation vs torchvision)"""
import collections
import importlib.util
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import philox  # noqa: E402

SRC = os.path.join(fixtures.anomalib_dir(), "models", "image", "efficient_ad", "torch_model.py")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
SEED_T, SEED_S, SEED_AE = 1, 2, 3


def load_anomalib():
    pkg = types.ModuleType("anomalib")
    data = types.ModuleType("anomalib.data")
    data.InferenceBatch = collections.namedtuple("InferenceBatch", ["pred_score", "anomaly_map"])
    pkg.data = data
    sys.modules.setdefault("anomalib", pkg)
    sys.modules.setdefault("anomalib.data", data)
    spec = importlib.util.spec_from_file_location("effad_torch_model", SRC)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def init_uniform(module, seed):
    """vg_effad_init_uniform: parameter i -> U(-b, b) with seed + i."""
    named = dict(module.named_parameters())
    with torch.no_grad():
        for i, (name, p) in enumerate(module.named_parameters()):
            w = named[name.rsplit(".", 1)[0] + ".weight"]
            fan_in = w.shape[1] * w.shape[2] * w.shape[3]
            b = float(np.float32(1.0 / np.sqrt(np.float64(fan_in))))
            p.copy_(torch.from_numpy(philox.uniform_range(tuple(p.shape), -b, b, seed + i)))


def image(seed, n=1, h=256, w=256):
    return torch.from_numpy(philox.uniform(seed, n * 3 * h * w).reshape(n, 3, h, w).copy())


def main():
    ta = load_anomalib()
    torch.manual_seed(0)
    fx = {}
    m = ta.EfficientAdModel(teacher_out_channels=384, model_size=ta.EfficientAdModelSize.S,
                            padding=False, pad_maps=True)
    init_uniform(m.teacher, SEED_T)
    init_uniform(m.student, SEED_S)
    init_uniform(m.ae, SEED_AE)
    C = 384
    img, aug, pen = image(1000), image(1001), image(1002)

    with torch.no_grad():
        # teacher channel statistics (lightning_model.teacher_channel_mean_std) over 2 images
        n, s1, s2 = 0, torch.zeros(C), torch.zeros(C)
        for seed in (2000, 2001):
            y = m.teacher(image(seed))
            n += y[:, 0].numel()
            s1 += y.sum(dim=[0, 2, 3])
            s2 += (y ** 2).sum(dim=[0, 2, 3])
        mean = s1 / n
        std = torch.sqrt(s2 / n - mean ** 2)
        m.mean_std["mean"].copy_(mean[None, :, None, None])
        m.mean_std["std"].copy_(std[None, :, None, None])
        fx["stat_mean"], fx["stat_std"] = mean.numpy(), std.numpy()

        t = m._normalize_teacher(m.teacher(img))
        s = m.student(img)
        m.ae.eval()
        a = m.ae(img, img.shape[-2:])
        fx["teacher_sub"] = t[:, ::192].numpy()
        fx["student_sub"] = s[:, ::384].numpy()  # channel 0 of each half
        fx["ae_sub"] = a[:, ::192].numpy()

    # one Algorithm-1 step (anomalib's compute_losses with a fixed augmented image)
    m.ae.eval()
    m.choose_random_aug_image = lambda batch: aug
    m.train()
    m.ae.eval()
    m.teacher.eval()
    s_out, d_st = m.compute_student_teacher_distance(img)
    d_hard = torch.quantile(d_st.flatten(), 0.999)
    fx["d_hard"] = d_hard.detach().numpy()
    fx["hard_count"] = np.float32((d_st >= d_hard).sum().item())
    loss_hard = torch.mean(d_st[d_st >= d_hard])
    l_st, l_ae, l_stae = m.compute_losses(img, pen, d_st)
    fx["loss_hard"] = loss_hard.detach().numpy()
    fx["loss_st"], fx["loss_ae"], fx["loss_stae"] = (x.detach().numpy() for x in (l_st, l_ae, l_stae))

    # map quantiles over 2 validation images, then normalised maps of the test image
    m.eval()
    with torch.no_grad():
        mst, mae = [], []
        for seed in (3000, 3001):
            a_, b_ = m.get_maps(image(seed), normalize=False)
            mst.append(a_)
            mae.append(b_)
        for key, maps in (("st", mst), ("ae", mae)):
            flat = torch.cat(maps).flatten()
            m.quantiles["qa_" + key].copy_(torch.quantile(flat, 0.9))
            m.quantiles["qb_" + key].copy_(torch.quantile(flat, 0.995))
            fx["qa_" + key] = m.quantiles["qa_" + key].numpy()
            fx["qb_" + key] = m.quantiles["qb_" + key].numpy()
        out = m(img)
        map_st, map_ae = m.get_maps(img, normalize=True)
        fx["map_st_sub"] = map_st[..., ::8, ::8].numpy()
        fx["map_ae_sub"] = map_ae[..., ::8, ::8].numpy()
        fx["map_sub"] = out.anomaly_map[..., ::8, ::8].numpy()
        fx["score"] = out.pred_score.numpy()

    # 20 training steps from the same weights (AE without dropout)
    m2 = ta.EfficientAdModel(teacher_out_channels=384, model_size=ta.EfficientAdModelSize.S)
    init_uniform(m2.teacher, SEED_T)
    init_uniform(m2.student, SEED_S)
    init_uniform(m2.ae, SEED_AE)
    m2.mean_std["mean"].data.copy_(mean[None, :, None, None])
    m2.mean_std["std"].data.copy_(std[None, :, None, None])
    opt = torch.optim.Adam(list(m2.student.parameters()) + list(m2.ae.parameters()), lr=1e-4,
                           weight_decay=1e-5)
    curve = []
    for step in range(20):
        m2.train()
        m2.teacher.eval()
        m2.ae.eval()
        x, xa, xp = image(5000 + step), image(6000 + step), image(7000 + step)
        m2.choose_random_aug_image = lambda batch, xa=xa: xa
        l1, l2, l3 = m2(x, xp)
        loss = l1 + l2 + l3
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append([l1.item(), l2.item(), l3.item(), loss.item()])
        print("step", step, curve[-1])
    fx["curve"] = np.array(curve, dtype=np.float32)

    # PDN-M (no padding) and padded PDN-S on 64x64
    with torch.no_grad():
        x64 = image(1100, 2, 64, 64)
        pm = ta.MediumPatchDescriptionNetwork(out_channels=384, padding=False)
        init_uniform(pm, 11)
        fx["pdn_m_out_sub"] = pm(x64)[:, ::48].numpy()
        ps = ta.SmallPatchDescriptionNetwork(out_channels=384, padding=True)
        init_uniform(ps, 12)
        fx["pdn_s_pad_out_sub"] = ps(x64)[:, ::48].numpy()
        pmp = ta.MediumPatchDescriptionNetwork(out_channels=384, padding=True)
        init_uniform(pmp, 13)
        fx["pdn_m_pad_out_sub"] = pmp(x64)[:, ::96].numpy()

    fixtures.write(os.path.join(OUT, "effad_model.vgfx"), fx)
    for k, v in fx.items():
        print(k, np.asarray(v).shape)


def augment_fixtures():
    """The AE-branch augmentation: torchvision's tensor adjust_brightness / contrast /
    saturation (what anomalib's choose_random_aug_image calls) on a Philox image."""
    import torchvision.transforms.functional as TF
    x = image(4000, 2, 16, 12)
    fx = {"x": x.numpy()}
    for kind, fn in enumerate((TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)):
        for j, f in enumerate((0.83, 1.17)):
            fx["aug_%d_%d" % (kind, j)] = fn(x, f).numpy()
    fixtures.write(os.path.join(OUT, "effad_aug.vgfx"), fx)


if __name__ == "__main__":
    if sys.argv[1:] == ["aug"]:
        augment_fixtures()
    else:
        main()
        augment_fixtures()
