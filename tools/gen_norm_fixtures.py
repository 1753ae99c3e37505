#!/usr/bin/env python3
"""Fixtures for tests/test_norm.c from PyTorch (CPU, float32): softmax, log_softmax and
layer_norm forward outputs and the grads of L = sum(out * R) for every input (R stored).
Random inputs (rn) and every R are Philox uniform, stored as seed records
(fixtures.philox_uniform: no data; the C fixture reader regenerates them).
Shapes and dims of several layouts, large magnitudes (stability), -inf entries,
layer_norm with and without weight / bias over 1, 2 and 3 dims. Run from the repo root:
  /work/venv/bin/python tools/gen_norm_fixtures.py          (torch 2.x)
Writes tests/fixtures/ops/norm.vgfx."""
import sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import torch.nn.functional as F
from fixtures import philox_uniform, write

torch.manual_seed(17)
T = {}


def case(name, fn, inputs, grad_mask=None):
    grad_mask = grad_mask or [True] * len(inputs)
    xs = [x.clone().requires_grad_(g) for x, g in zip(inputs, grad_mask)]
    y = fn(*xs)
    for i, x in enumerate(inputs):
        T[f"{name}.in{i}"] = x
    T[f"{name}.out"] = y.detach()
    r = philox_uniform(tuple(y.shape), -1.0, 1.0, next_seed())
    T[f"{name}.r"] = r
    (torch.where(torch.isinf(y), torch.zeros_like(y), y) * r).sum().backward()
    for i, x in enumerate(xs):
        if x.requires_grad:
            T[f"{name}.grad{i}"] = x.grad


_seed = [2000]


def next_seed():
    _seed[0] += 1
    return _seed[0]


def rn(*s, k=1.0):
    """Philox U(-2k, 2k) inputs: stored as their seed and range (fixtures.philox_uniform),
    the test's fixture reader regenerates them"""
    return philox_uniform(s, -2.0 * k, 2.0 * k, next_seed())


# softmax / log_softmax: last dim, middle dim, first dim, long rows, large values, -inf
xi = rn(5, 9, k=2).clone()   # edited below: stored in full
xi[0, 3] = float("-inf")
xi[2, :8] = float("-inf")            # one finite entry left
xi[4, ::2] = float("-inf")
for fn, nm in ((F.softmax, "sm"), (F.log_softmax, "lsm")):
    case(f"{nm}_last", lambda x, fn=fn: fn(x, -1), [rn(4, 37, k=3)])
    case(f"{nm}_dim1", lambda x, fn=fn: fn(x, 1), [rn(3, 5, 7)])
    case(f"{nm}_dim0", lambda x, fn=fn: fn(x, 0), [rn(6, 4, 3, k=2)])
    case(f"{nm}_long", lambda x, fn=fn: fn(x, -1), [rn(2, 300, k=4)])
    case(f"{nm}_big", lambda x, fn=fn: fn(x, -1), [rn(3, 16, k=1e4)])
    case(f"{nm}_big_dim0", lambda x, fn=fn: fn(x, 0), [rn(16, 3) * 1e4 - 5e3])
    case(f"{nm}_neginf", lambda x, fn=fn: fn(x, 1), [xi])
    case(f"{nm}_wide_inner", lambda x, fn=fn: fn(x, 1), [rn(2, 3, 70)])   # inner > one 64-column panel

# layer_norm
case("ln_last", lambda x, w, b: F.layer_norm(x, (33,), w, b, 1e-5), [rn(4, 7, 33), rn(33), rn(33)])
case("ln_two", lambda x, w, b: F.layer_norm(x, (5, 6), w, b, 1e-5), [rn(3, 5, 6), rn(5, 6), rn(5, 6)])
case("ln_chw", lambda x, w, b: F.layer_norm(x, (4, 5, 6), w, b, 1e-5), [rn(2, 4, 5, 6), rn(4, 5, 6), rn(4, 5, 6)])
case("ln_plain", lambda x: F.layer_norm(x, (40,), None, None, 1e-5), [rn(5, 40)])
case("ln_plain2", lambda x: F.layer_norm(x, (3, 8), None, None, 1e-3), [rn(2, 3, 8, k=3)])
case("ln_w", lambda x, w: F.layer_norm(x, (12,), w, None, 1e-5), [rn(6, 12), rn(12)])
case("ln_b", lambda x, b: F.layer_norm(x, (12,), None, b, 1e-5), [rn(6, 12), rn(12)])
case("ln_big", lambda x, w, b: F.layer_norm(x, (64,), w, b, 1e-5), [rn(3, 64) * 100 + 1e4, rn(64), rn(64)])
case("ln_noleading", lambda x, w, b: F.layer_norm(x, (6, 8), w, b, 1e-5), [rn(6, 8), rn(6, 8), rn(6, 8)])
case("ln_long", lambda x, w, b: F.layer_norm(x, (400,), w, b, 1e-5), [rn(2, 400), rn(400), rn(400)])
case("ln_xonly", lambda x, w, b: F.layer_norm(x, (10,), w, b, 1e-5), [rn(70, 10), rn(10), rn(10)], [True, False, False])
write("tests/fixtures/ops/norm.vgfx", T)
print(len(T), "tensors")
