"""Full-size check of Vigil's ViT backbones against timm (by hand; too big for `make test`).

  /work/venv/bin/python tools/check_vit_full.py [BUILD_DIR (default build/vit)] [deit|cait ...]

Builds timm's full deit_base_distilled_patch16_384 and cait_m48_448 with random weights
(torch RNG, the magnitudes of vg_vit_init_philox's scheme so that every block and the LayerScale
gammas matter: Linear/conv U(-sqrt(3/fan_in), +), norm weights U(.5, 1), biases U(-.1, .1), tokens
and pos_embed U(-.5, .5), gammas U(.5, 1)), saves them as .safetensors under /tmp/vit_full, runs
timm (float32, 2 threads) on a random input at the native size (and DeiT at 320 too, pos_embed
resampled: dynamic_img_size=True), saves the inputs and the features at FastFlow's taps, then runs
BUILD_DIR/tests/test_vit with VIGIL_VIT_FULL=/tmp/vit_full VIGIL_VIT_FULL_ONLY=1, which loads each
file by name (strict), runs vg_backbone_features and prints the max error relative to max|f| and
the time. timm's time per image is printed here for comparison."""
import os
import subprocess
import sys
import time

import numpy as np
import torch
import timm
from safetensors.torch import save_file

DIR = "/tmp/vit_full"
MODELS = {
    "deit": ("deit_base_distilled_patch16_384", [384, 320], ["norm.7", "norm.11"], 2),
    "cait": ("cait_m48_448", [448], ["norm.40", "norm.47"], 0),
}


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            def u(lo, hi):
                t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)
            if name.endswith(("cls_token", "dist_token", "pos_embed")):
                u(-0.5, 0.5)
            elif name.endswith(("gamma_1", "gamma_2")):
                u(0.5, 1.0)
            elif name.endswith(".weight") and t.ndim in (2, 4):
                b = float(np.sqrt(3.0 / int(np.prod(t.shape[1:]))))
                u(-b, b)
            elif name.endswith(".weight"):
                u(0.5, 1.0)
            elif name.endswith(".bias"):
                u(-0.1, 0.1)
            else:
                raise SystemExit("unexpected " + name)


def taps_forward(model, x, taps, nprefix, cait):
    want = {int(t.split(".")[1]): t for t in taps}
    out = {}
    if cait:
        h = model.patch_embed(x) + model.pos_embed
    else:
        h = model._pos_embed(model.patch_embed(x))
    gh, gw = x.shape[2] // 16, x.shape[3] // 16
    for k, blk in enumerate(model.blocks):
        if k > max(want):
            break
        h = blk(h)
        if k in want:
            hn = model.norm(h)[:, nprefix:]
            out[want[k]] = hn.transpose(1, 2).reshape(x.shape[0], -1, gh, gw).contiguous()
    return out


def main():
    build = sys.argv[1] if len(sys.argv) > 1 and "/" in sys.argv[1] else "build/vit"
    which = [a for a in sys.argv[1:] if a in MODELS] or list(MODELS)
    os.makedirs(DIR, exist_ok=True)
    torch.set_num_threads(2)
    for key in which:
        name, sizes, taps, nprefix = MODELS[key]
        cait = key == "cait"
        model = timm.create_model(name, pretrained=False)
        randomize(model, 1)
        model.eval()
        print(name, "params", sum(p.numel() for p in model.parameters()))
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(DIR, name + ".safetensors"))
        for s in sizes:
            m = model
            if s != sizes[0]:
                m = timm.create_model(name, pretrained=False, dynamic_img_size=True)
                m.load_state_dict(model.state_dict())
                m.eval()
            x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(s)) * 4 - 2
            with torch.no_grad():
                taps_forward(m, x, taps, nprefix, cait)   # warm-up
                t0 = time.time()
                out = taps_forward(m, x, taps, nprefix, cait)
                dt = time.time() - t0
            print("  timm %s at %d: taps %s in %.2f s (float32, 2 threads)" % (name, s, ",".join(taps), dt))
            save_file({"x": x.contiguous()}, os.path.join(DIR, "%s_x%d.safetensors" % (name, s)))
            save_file(out, os.path.join(DIR, "%s_ref%d.safetensors" % (name, s)))
        del model
    env = dict(os.environ, VIGIL_VIT_FULL=DIR, VIGIL_VIT_FULL_ONLY="1")
    r = subprocess.run([os.path.join(build, "tests", "test_vit")], env=env, capture_output=True, text=True)
    print(r.stdout + r.stderr)
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
