"""Golden tokens and features of timm's DeiT (distilled) and CaiT, REDUCED configs, for
tests/test_vit.c (no weights stored for the golden cases).

Every f32 tensor of the timm model's state dict gets values from Vigil's Philox generator
(tools/philox.py) by the scheme of vg_vit_init_philox (nn/backbones/vit.h): entry i of
state_dict() order uses seed BASE_SEED + i. The inputs are Philox too (vg_uniform_(x, -2, 2, seed)).
The reference runs in float64 (weights cast up); pos_embed resampling (timm's
resample_abs_pos_embed, bicubic antialias) runs in float32 inside timm as always.

Models are made with timm.create_model(<published name>, img_size=..., embed_dim=..., depth=...,
num_heads=..., num_classes=...), so every other default (eps 1e-6, qkv_bias, init_values, mlp
ratio, depth_token_only) is the published model's.

Cases (tag, input shape, input seed):
  native size (N=2, 64x64) and other sizes: DeiT with dynamic_img_size=True at 96x80 (up) and
  48x32 (down); CaiT (no dynamic size in timm) built at img_size 96 / (48, 32) with pos_embed =
  resample_abs_pos_embed(native pos_embed, num_prefix_tokens=0), as a checkpoint loaded at
  another size.
Stored per case: after embed (tokens + pos_embed), after each block, after norm: shape, max|x|,
per-channel mean over (N, T), a strided subsample; the features (patch tokens after norm of the
last block, (N, C, gh, gw)) in full; for the native case also pre_logits and logits of the full
forward (CaiT: class attention; DeiT: head/head_dist average).

Also writes tiny (embed 8) full timm checkpoints to load by name:
  vit_load_deit.safetensors, vit_load_deit.pth (plain state_dict),
  vit_load_cait.safetensors, vit_load_cait.pth ({"model": state_dict}, as the official files).

Run: /work/venv/bin/python tools/gen_vit_fixtures.py"""
import os
import sys

import numpy as np
import torch
import timm
from timm.layers import resample_abs_pos_embed

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import philox  # noqa: E402

BASE_SEED = 2100
SUB = 384
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

TINY = {
    "deit": ("deit_base_distilled_patch16_384", dict(img_size=64, embed_dim=48, depth=4, num_heads=3, num_classes=10)),
    "cait": ("cait_m48_448", dict(img_size=64, embed_dim=48, depth=4, num_heads=4, num_classes=10)),
}
CASES = [("native", (2, 3, 64, 64), 11), ("up", (1, 3, 96, 80), 12), ("down", (1, 3, 48, 32), 13)]
LOAD = {
    "deit": ("deit_base_distilled_patch16_384", dict(img_size=8, patch_size=4, embed_dim=8, depth=2, num_heads=2,
                                                     mlp_ratio=2.0, num_classes=3)),
    "cait": ("cait_m48_448", dict(img_size=8, patch_size=4, embed_dim=8, depth=2, num_heads=2, mlp_ratio=2.0,
                                  mlp_ratio_token_only=2.0, num_classes=3)),
}
LOAD_SEED = 4200


def init_philox(model, base_seed):
    """vg_vit_init_philox's scheme on a timm model (state_dict order)."""
    with torch.no_grad():
        for i, (name, t) in enumerate(model.state_dict().items()):
            if t.dtype != torch.float32:
                continue
            seed = base_seed + i
            shape = tuple(t.shape)
            if name.endswith(("cls_token", "dist_token", "pos_embed")):
                v = philox.uniform_range(shape, -0.5, 0.5, seed)
            elif name.endswith(("gamma_1", "gamma_2")):
                v = philox.uniform_range(shape, 0.5, 1.0, seed)
            elif name.endswith(".weight") and t.ndim in (2, 4):
                b = np.float32(np.sqrt(3.0 / int(np.prod(shape[1:]))))
                v = philox.uniform_range(shape, -b, b, seed)
            elif name.endswith(".weight") and t.ndim == 1:
                v = philox.uniform_range(shape, 0.5, 1.0, seed)
            elif name.endswith(".bias"):
                v = philox.uniform_range(shape, -0.1, 0.1, seed)
            else:
                raise SystemExit("unexpected tensor " + name)
            t.copy_(torch.from_numpy(v))


def stats(tensors, prefix, a, full=False):
    """a: (N, T, C) tokens or (N, C, H, W) features (numpy float64)"""
    flat = a.reshape(-1)
    tensors[prefix + "shape"] = np.array(a.shape, dtype=np.float32)
    tensors[prefix + "maxabs"] = np.array([np.abs(a).max()], dtype=np.float32)
    if full:
        tensors[prefix + "data"] = flat
        return
    k = max(1, -(-flat.size // SUB))
    tensors[prefix + "chmean"] = a.reshape(-1, a.shape[-1]).mean(axis=0)
    tensors[prefix + "stride"] = np.array([k], dtype=np.float32)
    tensors[prefix + "sub"] = flat[::k]


def run_deit(model, x):
    """list of (name, tokens), features, (pre_logits, logits)"""
    out = []
    h = model.patch_embed(x)
    h = model._pos_embed(h)
    out.append(("embed", h))
    for k, blk in enumerate(model.blocks):
        h = blk(h)
        out.append(("blocks.%d" % k, h))
    hn = model.norm(h)
    out.append(("norm", hn))
    return out, hn, model.forward_head(hn, pre_logits=True), model.forward_head(hn)


def run_cait(model, x):
    out = []
    h = model.patch_embed(x) + model.pos_embed
    out.append(("embed", h))
    for k, blk in enumerate(model.blocks):
        h = blk(h)
        out.append(("blocks.%d" % k, h))
    out.append(("norm", model.norm(h)))
    cls = model.cls_token.expand(h.shape[0], -1, -1)
    for k, blk in enumerate(model.blocks_token_only):
        cls = blk(h, cls)
        out.append(("cls.%d" % k, cls))
    full = model.norm(torch.cat((cls, h), dim=1))
    return out, model.norm(h), model.forward_head(full, pre_logits=True), model.forward_head(full)


def golden(arch):
    name, kw = TINY[arch]
    tensors = {"philox.check": philox.uniform(BASE_SEED, 8)}
    base = timm.create_model(name, pretrained=False, **kw)
    init_philox(base, BASE_SEED)
    tensors["num_params"] = np.array([sum(p.numel() for p in base.parameters())], dtype=np.float32)
    np_prefix = 2 if arch == "deit" else 0
    for tag, shape, seed in CASES:
        hw = shape[2:]
        if arch == "deit":
            if tag == "native":
                model = base
            else:
                model = timm.create_model(name, pretrained=False, dynamic_img_size=True, **kw)
                model.load_state_dict(base.state_dict())
        else:
            if tag == "native":
                model = base
            else:
                kw2 = dict(kw, img_size=hw)
                model = timm.create_model(name, pretrained=False, **kw2)
                sd = dict(base.state_dict())
                g = kw["img_size"] // 16
                sd["pos_embed"] = resample_abs_pos_embed(sd["pos_embed"], new_size=[hw[0] // 16, hw[1] // 16],
                                                         old_size=[g, g], num_prefix_tokens=0)
                model.load_state_dict(sd)
        model = model.double().eval()
        x = torch.from_numpy(philox.uniform_range(shape, -2.0, 2.0, seed)).double()
        with torch.no_grad():
            steps, hn, pre, logits = (run_deit if arch == "deit" else run_cait)(model, x)
        for nm, t in steps:
            stats(tensors, "%s.%s." % (tag, nm), t.numpy())
        gh, gw = hw[0] // 16, hw[1] // 16
        feat = hn[:, np_prefix:].transpose(1, 2).reshape(shape[0], -1, gh, gw).numpy()
        stats(tensors, "%s.features." % tag, feat, full=True)
        if tag == "native":
            stats(tensors, "native.pre_logits.", pre.numpy(), full=True)
            stats(tensors, "native.logits.", logits.numpy(), full=True)
        print(arch, tag, shape, "features", feat.shape, "max|f| %.4g" % np.abs(feat).max(),
              "logits max %.4g" % np.abs(logits.numpy()).max())
        if arch == "deit" and tag != "native":
            # the reference resampler (float32) for the C resampler alone
            pe = base.state_dict()["pos_embed"]
            r = resample_abs_pos_embed(pe, new_size=[gh, gw], old_size=[4, 4], num_prefix_tokens=2)
            tensors["%s.pos_embed.data" % tag] = r.numpy().reshape(-1)
    path = os.path.join(OUT, "vit_%s.vgfx" % arch)
    fixtures.write(path, tensors)
    print(path, os.path.getsize(path))


def load_files(arch):
    from safetensors.torch import save_file
    name, kw = LOAD[arch]
    model = timm.create_model(name, pretrained=False, **kw)
    init_philox(model, LOAD_SEED)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    for k, v in sd.items():
        print("  ", k, tuple(v.shape))
    st = os.path.join(OUT, "vit_load_%s.safetensors" % arch)
    save_file(sd, st)
    pth = os.path.join(OUT, "vit_load_%s.pth" % arch)
    torch.save({"model": sd} if arch == "cait" else sd, pth)
    print(st, os.path.getsize(st), pth, os.path.getsize(pth),
          "params", sum(p.numel() for p in model.parameters()))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    for arch in ("deit", "cait"):
        golden(arch)
        load_files(arch)


if __name__ == "__main__":
    main()
