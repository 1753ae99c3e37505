#!/usr/bin/env python3
"""Golden fixtures for tests/test_nn.c and tests/test_optim.c, from PyTorch (CPU, f32).

  /usr/bin/python3 tools/gen_nn_fixtures.py        (torch 1.13 was used; modules.vgfx was
  rewritten with the venv's torch 2.x when its inputs became Philox: module inputs x and
  cotangents r are Philox uniform, stored as seed records (fixtures.philox_uniform), so
  only weights, outputs and grads take space. optim.vgfx is the torch-1.13 file: under
  torch 2 a few values move by an ulp, so keep the committed one unless you mean to)

Writes tests/fixtures/nn/modules.vgfx (module forwards and grads with fixture weights,
BatchNorm running stats, state-dict keys) and tests/fixtures/nn/optim.vgfx (10 steps of
SGD/Adam/AdamW on a tiny MLP, clip_grad_norm_, lr schedules, CFLOW-AD's schedule from a
re-implementation of the official code). Learning rates are doubles, stored as f32
pairs (hi, lo) with value = hi + lo. Strings (state-dict keys) are stored as their
UTF-8 byte values, keys separated by '\\n'."""
import math
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from fixtures import philox_uniform, write

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "nn")
os.makedirs(OUT, exist_ok=True)


def split_double(vals):
    v = np.asarray(vals, dtype=np.float64)
    hi = v.astype(np.float32)
    lo = (v - hi.astype(np.float64)).astype(np.float32)
    return np.stack([hi, lo], axis=-1)


def chars(s):
    return np.frombuffer(s.encode(), dtype=np.uint8).astype(np.float32)


# ------------------------------------------------------------------- modules
M = {}
_seed = [3000]


def next_seed():
    _seed[0] += 1
    return _seed[0]


def rn(*s, k=1.0):
    """Philox U(-2k, 2k) inputs: stored as their seed and range (fixtures.philox_uniform),
    the test's fixture reader regenerates them"""
    return philox_uniform(s, -2.0 * k, 2.0 * k, next_seed())


def module_case(name, mod, x, extra_calls=0):
    """forward(x) and grads of sum(y * R) w.r.t. x and every parameter."""
    for k, v in mod.state_dict().items():
        M[f"{name}.p.{k}"] = v.detach().clone().float()
        M[f"{name}.shape.{k}"] = np.array(v.shape, dtype=np.float32)   # fixtures.write makes 0-d 1-d
    for _ in range(extra_calls):
        with torch.no_grad():
            mod(x)
    mod.zero_grad()
    xx = x.clone().requires_grad_(True)
    y = mod(xx)
    r = philox_uniform(tuple(y.shape), -1.0, 1.0, next_seed())
    (y * r).sum().backward()
    M[f"{name}.x"] = x
    M[f"{name}.y"] = y.detach()
    M[f"{name}.r"] = r
    M[f"{name}.gx"] = xx.grad
    for k, p in mod.named_parameters():
        M[f"{name}.g.{k}"] = p.grad.clone()
    for k, b in mod.named_buffers():
        M[f"{name}.after.{k}"] = b.detach().clone().float()


module_case("conv_s2", nn.Conv2d(3, 4, 3, stride=2, padding=1), rn(2, 3, 7, 7))
module_case("conv_gdil", nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2, bias=False),
            rn(2, 4, 8, 9))
module_case("conv_same", nn.Conv2d(2, 3, (4, 3), padding="same"), rn(1, 2, 6, 5))
module_case("linear", nn.Linear(5, 3), rn(4, 5))
bn = nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.uniform_(-0.5, 0.5)
module_case("bn_train", bn, torch.randn(4, 3, 5, 5) * 2 + 1, extra_calls=1)   # 2 training calls
bn.eval()
module_case("bn_eval", bn, rn(2, 3, 4, 4))
bnc = nn.BatchNorm2d(2, momentum=None, affine=False)
module_case("bn_cma", bnc, torch.randn(3, 2, 4, 4) + 0.5, extra_calls=2)     # momentum=None, 3 calls
ln = nn.LayerNorm([3, 4, 5])
with torch.no_grad():
    ln.weight.uniform_(0.5, 1.5)
    ln.bias.uniform_(-0.5, 0.5)
module_case("ln_chw", ln, torch.randn(2, 3, 4, 5) * 3 + 1)
xa = rn(2, 3, 6, 6, k=3)
module_case("softplus", nn.Softplus(beta=2.0, threshold=5.0), xa)
module_case("leaky", nn.LeakyReLU(0.2), xa)
module_case("gelu", nn.GELU(), xa)
module_case("up_size", nn.Upsample(size=(9, 11), mode="bilinear", align_corners=False), xa)
module_case("up_scale_ac", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), xa)
module_case("avgpool", nn.AvgPool2d(3, 2, 1), xa)
module_case("maxpool", nn.MaxPool2d(3, 2, 1), xa)
module_case("adaptive", nn.AdaptiveAvgPool2d((2, 3)), xa)

seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Linear(4, 2))
nested = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)), nn.ReLU(),
                       nn.Sequential(nn.LayerNorm([4, 2, 2]), nn.Dropout(0.1), nn.Linear(2, 2)))
for name, mod in (("seq", seq), ("nested", nested)):
    sd = mod.state_dict()
    M[f"{name}.keys"] = chars("\n".join(sd.keys()))
    for k, v in sd.items():
        M[f"{name}.sd.{k}"] = v.float()
        M[f"{name}.shape.{k}"] = np.array(v.shape, dtype=np.float32)
    M[f"{name}.nparams"] = np.array([sum(p.numel() for p in mod.parameters())], dtype=np.float32)
write(os.path.join(OUT, "modules.vgfx"), M)

# ------------------------------------------------------------------- optimizers
O = {}
torch.manual_seed(1)
mlp = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
init = {k: v.clone() for k, v in mlp.state_dict().items()}
for k, v in init.items():
    O[f"init.{k}"] = v
X = torch.randn(6, 4)
Y = torch.randn(6, 2)
O["X"], O["Y"] = X, Y


def flat(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def run(name, make, steps=10):
    mlp.load_state_dict(init)
    opt = make(mlp)
    traj, grads = [], []
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(mlp(X), Y).backward()
        grads.append(torch.cat([p.grad.flatten() for p in mlp.parameters()]))
        opt.step()
        traj.append(flat(mlp))
    O[f"{name}.traj"] = torch.stack(traj)     # parameters after each step
    O[f"{name}.grads"] = torch.stack(grads)   # the grads each step used
    st = opt.state_dict()["state"]
    for i, s in st.items():
        for k, v in s.items():
            if v is not None:
                O[f"{name}.state.{i}.{k}"] = torch.as_tensor(v).float()


run("sgd_nesterov", lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01))
run("sgd_damp", lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.8, dampening=0.3))
run("sgd_plain", lambda m: torch.optim.SGD(m.parameters(), lr=0.2, weight_decay=0.05))
run("adam", lambda m: torch.optim.Adam(m.parameters(), lr=0.01, weight_decay=0.1))
run("adam_ams", lambda m: torch.optim.Adam(m.parameters(), lr=0.02, betas=(0.8, 0.99), amsgrad=True))
run("adamw", lambda m: torch.optim.AdamW(m.parameters(), lr=0.01, weight_decay=0.1))
run("adam_groups", lambda m: torch.optim.Adam([
    {"params": m[0].parameters()},
    {"params": m[2].parameters(), "lr": 0.03, "weight_decay": 0.05}], lr=0.01))

# clip_grad_norm_
mlp.load_state_dict(init)
for norm_type, max_norm, tag in ((2.0, 0.3, "clip2"), (float("inf"), 0.1, "clipinf"), (2.0, 100.0, "clipbig")):
    mlp.zero_grad()
    F.mse_loss(mlp(X), Y).backward()
    O[f"{tag}.before"] = torch.cat([p.grad.flatten() for p in mlp.parameters()])
    total = torch.nn.utils.clip_grad_norm_(mlp.parameters(), max_norm, norm_type)
    O[f"{tag}.total"] = total.reshape(1)
    O[f"{tag}.after"] = torch.cat([p.grad.flatten() for p in mlp.parameters()])


# schedules: lr of group 0 (and 1) after construction and after each step()
def sched_seq(name, base_lrs, make, steps):
    ps = [torch.nn.Parameter(torch.zeros(1)) for _ in base_lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, base_lrs)], lr=base_lrs[0])
    s = make(opt)
    seqs = [[g["lr"] for g in opt.param_groups]]
    for _ in range(steps):
        opt.step()
        s.step()
        seqs.append([g["lr"] for g in opt.param_groups])
    O[f"sched.{name}"] = split_double(seqs)


L = torch.optim.lr_scheduler
sched_seq("step", [0.1, 0.03], lambda o: L.StepLR(o, step_size=7, gamma=0.5), 30)
sched_seq("multistep", [0.1, 0.03], lambda o: L.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.3), 30)
sched_seq("cosine", [0.05, 0.01], lambda o: L.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 45)
sched_seq("linear", [0.1, 0.03], lambda o: L.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8), 15)
sched_seq("linear_def", [0.1, 0.03], lambda o: L.LinearLR(o), 10)
sched_seq("linear_down", [0.1, 0.03], lambda o: L.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=6), 10)
steps = 200
sched_seq("efficientad", [1e-4, 2e-4], lambda o: L.StepLR(o, step_size=int(0.95 * steps), gamma=0.1), steps)


# CFLOW-AD: the official main.py config + custom_models/utils.py, re-implemented
class C:
    pass


def cflow_seq(lr, meta_epochs, sub_epochs, I, cosine):
    c = C()
    c.lr, c.meta_epochs, c.sub_epochs = lr, meta_epochs, sub_epochs
    c.lr_decay_epochs = [i * c.meta_epochs // 100 for i in [50, 75, 90]]
    c.lr_decay_rate, c.lr_warm_epochs, c.lr_warm, c.lr_cosine = 0.1, 2, True, cosine
    c.lr_warmup_from = c.lr / 10.0
    if c.lr_cosine:
        eta_min = c.lr * (c.lr_decay_rate ** 3)
        c.lr_warmup_to = eta_min + (c.lr - eta_min) * (1 + math.cos(math.pi * c.lr_warm_epochs / c.meta_epochs)) / 2
    else:
        c.lr_warmup_to = c.lr
    group = {"lr": c.lr}
    out = []
    for epoch in range(c.meta_epochs):
        lr = c.lr                                       # adjust_learning_rate
        if c.lr_cosine:
            eta_min = lr * (c.lr_decay_rate ** 3)
            lr = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * epoch / c.meta_epochs)) / 2
        else:
            st = np.sum(epoch >= np.asarray(c.lr_decay_epochs))
            if st > 0:
                lr = lr * (c.lr_decay_rate ** st)
        group["lr"] = lr
        for sub in range(c.sub_epochs):
            for i in range(I):                         # warmup_learning_rate
                batch_id, total = i + sub * I, I * c.sub_epochs
                if c.lr_warm and epoch < c.lr_warm_epochs:
                    p = (batch_id + epoch * total) / (c.lr_warm_epochs * total)
                    group["lr"] = c.lr_warmup_from + p * (c.lr_warmup_to - c.lr_warmup_from)
                out.append(float(group["lr"]))
    return out


O["cflow.cos"] = split_double(cflow_seq(2e-4, 6, 3, 4, True))
O["cflow.step"] = split_double(cflow_seq(2e-4, 10, 2, 3, False))
write(os.path.join(OUT, "optim.vgfx"), O)
print("wrote", len(M), "+", len(O), "tensors")
