#!/usr/bin/env python3
"""Golden fixtures for tests/test_golden.c, from PyTorch (CPU, float32).

Each case stores its inputs, the forward output and, where differentiable, the grads
of L = sum(out * R) w.r.t. every input (R stored too). Random inputs (rn) and every R are
Philox uniform, stored as seed records (fixtures.philox_uniform: no data; the C fixture
reader regenerates them). Run from the repo root:
  /work/venv/bin/python tools/gen_op_fixtures.py   (torch 2.x; torch 1.13 made the first version)
Writes tests/fixtures/ops/golden.vgfx."""
import numpy as np
import torch
import torch.nn.functional as F
from fixtures import philox_uniform, write

torch.manual_seed(0)
T = {}


def case(name, fn, inputs, grad=True):
    xs = [x.clone().requires_grad_(grad) for x in inputs]
    y = fn(*xs)
    for i, x in enumerate(inputs):
        T[f"{name}.in{i}"] = x
    T[f"{name}.out"] = y.detach()
    if grad:
        r = philox_uniform(tuple(y.shape), -1.0, 1.0, next_seed())
        T[f"{name}.r"] = r
        (y * r).sum().backward()
        for i, x in enumerate(xs):
            T[f"{name}.grad{i}"] = x.grad


_seed = [1000]


def next_seed():
    _seed[0] += 1
    return _seed[0]


def rn(*s, k=1.0):
    """Philox U(-2k, 2k) inputs: stored as their seed and range (fixtures.philox_uniform),
    the test's fixture reader regenerates them"""
    return philox_uniform(s, -2.0 * k, 2.0 * k, next_seed())


# conv2d: EfficientAD's layer shapes (small spatial sizes) and general configs
conv_cases = [
    ("conv_k4p3", (2, 3, 9, 9), (8, 3, 4, 4), dict(padding=3)),
    ("conv_k3p1", (2, 6, 7, 8), (5, 6, 3, 3), dict(padding=1)),
    ("conv_k4s2p1", (2, 4, 10, 9), (6, 4, 4, 4), dict(stride=2, padding=1)),
    ("conv_k8p0", (1, 5, 12, 12), (4, 5, 8, 8), dict(padding=0)),
    ("conv_groups", (2, 6, 7, 7), (9, 2, 3, 3), dict(padding=1, groups=3)),
    ("conv_dil", (1, 3, 11, 10), (4, 3, 3, 3), dict(padding=2, dilation=2)),
    ("conv_1x1", (2, 7, 5, 6), (3, 7, 1, 1), dict()),
    ("conv_s2_dw", (1, 4, 9, 9), (4, 1, 3, 3), dict(stride=2, padding=1, groups=4)),
]
for name, xs, ws, kw in conv_cases:
    case(name, lambda x, w, b, kw=kw: F.conv2d(x, w, b, **kw), [rn(*xs), rn(*ws, k=0.3), rn(ws[0])])

# pooling
x = rn(2, 3, 9, 8)
case("avgpool_k2s2p1", lambda x: F.avg_pool2d(x, 2, 2, 1), [x])
case("avgpool_k3s2p1_nopad", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [x])
case("avgpool_k3s2_ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), [x])
case("maxpool_k3s2p1", lambda x: F.max_pool2d(x, 3, 2, 1), [x])
case("maxpool_k2_ceil", lambda x: F.max_pool2d(x, 2, 2, 0, ceil_mode=True), [x])
case("adaptive_5x3", lambda x: F.adaptive_avg_pool2d(x, (5, 3)), [x])
case("adaptive1d_4", lambda x: F.adaptive_avg_pool1d(x, 4), [rn(2, 3, 11)])
# interpolate
xi = rn(2, 2, 5, 7)
for ac in (False, True):
    case(f"interp_up_ac{int(ac)}", lambda x, ac=ac: F.interpolate(x, size=(13, 11), mode="bilinear", align_corners=ac), [xi])
    case(f"interp_down_ac{int(ac)}", lambda x, ac=ac: F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=ac), [xi])
# normalization
xl = rn(3, 4, 5, 6)
case("layernorm_chw", lambda x, w, b: F.layer_norm(x, (4, 5, 6), w, b, 1e-5), [xl, rn(4, 5, 6), rn(4, 5, 6)])
case("layernorm_last", lambda x, w, b: F.layer_norm(x, (6,), w, b, 1e-5), [xl, rn(6), rn(6)])
xb = rn(4, 3, 5, 5) * 2 + 1
rm, rv = rn(3, k=0.1), torch.rand(3) + 0.5
T["bn.running_mean0"], T["bn.running_var0"] = rm.clone(), rv.clone()
rm_t, rv_t = rm.clone(), rv.clone()
case("bn_train", lambda x, w, b: F.batch_norm(x, rm_t, rv_t, w, b, True, 0.1, 1e-5), [xb, rn(3), rn(3)])
# the case ran forward once: running stats after one training step
T["bn.running_mean1"], T["bn.running_var1"] = rm_t, rv_t
case("bn_eval", lambda x, w, b: F.batch_norm(x, rm, rv, w, b, False, 0.1, 1e-5), [xb, rn(3), rn(3)])
# softmax family and reductions
xs = rn(3, 7, k=3)
case("softmax1", lambda x: F.softmax(x, 1), [xs])
case("log_softmax0", lambda x: F.log_softmax(x, 0), [xs])
case("logsumexp1", lambda x: torch.logsumexp(x, 1), [xs])
case("var_unb", lambda x: torch.var(x, (0,), unbiased=True), [xs])
case("std_b", lambda x: torch.std(x, (1,), unbiased=False), [xs])
# elementwise functions over a wide range
xe = torch.cat([torch.linspace(-12, 12, 97), torch.tensor([-80.0, -30.0, 30.0, 60.0, 0.0])])
xp = torch.cat([torch.logspace(-6, 6, 61), torch.tensor([0.5, 1.0, 2.0])])
case("exp", torch.exp, [xe.clamp(max=80)])
case("log", torch.log, [xp])
case("sqrt", torch.sqrt, [xp])
case("rsqrt", torch.rsqrt, [xp])
case("tanh", torch.tanh, [xe])
case("sigmoid", torch.sigmoid, [xe])
case("logsigmoid", F.logsigmoid, [xe])
case("softplus", F.softplus, [xe])
case("softplus_b2", lambda x: F.softplus(x, beta=2, threshold=10), [xe])
case("gelu", F.gelu, [xe])
case("atan", torch.atan, [xe])
case("erf", torch.erf, [xe.clamp(-5, 5)])
case("leaky_relu", lambda x: F.leaky_relu(x, 0.2), [xe])
case("pow_1p5", lambda x: x ** 1.5, [xp.clamp(max=1e3)])
# quantiles (no grad)
# the input is rebuilt by test_golden.c, not stored: (((i * 2654435761) mod 2^32) >> 8) / 2^21 - 4
_k = ((np.arange(60013, dtype=np.uint64) * np.uint64(2654435761)) & np.uint64(0xffffffff)) >> np.uint64(8)
xq = torch.from_numpy(_k.astype(np.float32) / np.float32(2 ** 21) - np.float32(4))
for q in (0.0, 0.001, 0.5, 0.9, 0.995, 0.999, 1.0):
    T[f"quantile.q{q}"] = torch.quantile(xq, q).reshape(1)
# the fixture reader's seed records (tools/fixtures.py version 3): one generated tensor and
# the same values stored in full, for test_golden.c to compare bit for bit
T["fx.philox_gen"] = philox_uniform((3, 37), -3.0, 5.0, 424242)
T["fx.philox_data"] = T["fx.philox_gen"].clone()
write("tests/fixtures/ops/golden.vgfx", T)
print(len(T), "tensors")
