"""Fixtures for tests/test_flows.c: FrEIA 0.2 blocks (PYTHONPATH=/work/pydeps) with
deterministic weights, their outputs, log-dets and gradients.

Run: PYTHONPATH=/work/pydeps /usr/bin/python3 tools/gen_flow_fixtures.py

Weights: every float state-dict entry that is NOT exported as "p.<name>" is set by a
formula both sides compute in double:  v[i] = s * sin(0.7 i + 1.3 h + 0.1), h = sum of
the name's bytes mod 97, s = 1/sqrt(fan_in) for >= 2-d tensors (fan_in = numel/shape[0]),
0.1 for 1-d, 0.3 for global_scale (added to FrEIA's init value), and vk_householder 0.2.
Permutation / rotation matrices (w_perm, w_perm_inv, w_0, perm, perm_inv, M, M_inv,
logDetM) come from FrEIA's own sampling and are exported as p.<name>.
Tensors: x, c (condition, optional), y, ld (forward log-det), gx (grad of
loss = sum(y^2)/2 - sum(ld) wrt x), g.<name> (first <= 256 elements of each trainable
parameter's grad, flattened).

The tanh(a/clamp) AllInOne variant (current FrEIA) does not exist in FrEIA 0.2: it is
emulated by monkeypatching AllInOneBlock._affine (see affine_scaled below)."""
import math, os, sys
import numpy as np
import torch
import torch.nn as nn
sys.path.insert(0, os.path.dirname(__file__))
import fixtures
import FrEIA.framework as Ff
import FrEIA.modules as Fm

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
EXPORT = {"w_perm", "w_perm_inv", "w_0", "perm", "perm_inv", "M", "M_inv", "logDetM"}
torch.set_default_dtype(torch.float32)


def conv_sub(hidden):
    def f(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, cout, 3, padding=1))
    return f


def mlp_sub(hidden):
    def f(cin, cout):
        h = hidden if hidden > 0 else 2 * cin
        return nn.Sequential(nn.Linear(cin, h), nn.ReLU(), nn.Linear(h, cout))
    return f


def formula(name, shape):
    leaf = name.split(".")[-1]
    h = sum(name.encode()) % 97
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(n, dtype=np.float64)
    if leaf == "global_scale":
        s = 0.3
    elif leaf == "vk_householder":
        s = 0.2
    elif len(shape) >= 2:
        s = 1.0 / math.sqrt(n / shape[0])
    else:
        s = 0.1
    return (s * np.sin(0.7 * i + 1.3 * h + 0.1)).reshape(shape)


def set_params(net):
    exported = {}
    with torch.no_grad():
        for name, t in net.state_dict(keep_vars=True).items():
            leaf = name.split(".")[-1]
            if leaf in EXPORT:
                exported["p." + name] = t.detach().numpy().astype(np.float32)
                continue
            if not t.dtype.is_floating_point:
                continue
            v = formula(name, tuple(t.shape))
            if leaf == "global_scale":
                v = v + t.detach().double().numpy()
            t.copy_(torch.from_numpy(v).float())
    return exported


def affine_scaled(self, x, a, rev=False):
    a *= 0.1
    ch = x.shape[1]
    sub_jac = self.clamp * torch.tanh(a[:, :ch] / self.clamp)
    if self.GIN:
        sub_jac -= torch.mean(sub_jac, dim=self.sum_dims, keepdim=True)
    if not rev:
        return (x * torch.exp(sub_jac) + a[:, ch:], torch.sum(sub_jac, dim=self.sum_dims))
    return ((x - a[:, ch:]) * torch.exp(-sub_jac), -torch.sum(sub_jac, dim=self.sum_dims))


def run(name, net, xshape, cshape=None, scale_x=1.0):
    np.random.seed(1234)
    exported = set_params(net)
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(*xshape, generator=g) * scale_x).requires_grad_(True)
    c = [torch.randn(*cshape, generator=g)] if cshape else []
    if isinstance(net, Ff.SequenceINN):
        y, ld = net(x, c=c if c else None)
    else:
        y, ld = net((x,), c=c) if c else net((x,))
        y = y[0]
    if not torch.is_tensor(ld):
        ld = torch.full((xshape[0],), float(ld))
    loss = (y ** 2).sum() / 2 - ld.sum()
    try:
        loss.backward()
        grads = True
    except RuntimeError as e:   # FrEIA 0.2 AllInOne GIN mode: in-place `sub_jac -=` breaks autograd
        print(name, "no grads:", str(e)[:60])
        grads = False
    d = dict(exported)
    d["x"] = x.detach().numpy()
    if c:
        d["c"] = c[0].numpy()
    d["y"] = y.detach().numpy()
    d["ld"] = ld.detach().numpy()
    if grads:
        d["gx"] = x.grad.numpy()
    for pn, p in net.named_parameters() if grads else []:
        if p.requires_grad and p.grad is not None:
            d["g." + pn] = p.grad.detach().numpy().reshape(-1)[:256]
    path = os.path.join(OUT, "flow_%s.bin" % name)
    fixtures.write(path, d)
    print(name, os.path.getsize(path), "bytes")


def main():
    torch.manual_seed(0)
    np.random.seed(0)
    A = Fm.AllInOneBlock
    # AllInOne, 2-D, hard permutation, softplus, FrEIA 0.2 clamp
    run("aio_hard_2d", A([(5, 4, 4)], subnet_constructor=conv_sub(6), affine_clamping=2.0), (2, 5, 4, 4))
    # AllInOne, 1-D, soft rotation, sigmoid
    run("aio_soft_1d", A([(7,)], subnet_constructor=mlp_sub(10), affine_clamping=1.5,
                         global_affine_type="SIGMOID", permute_soft=True), (3, 7))
    # AllInOne, tanh(a/clamp) variant (monkeypatched), EXP, reverse_permutation, 2-D soft
    orig = A._affine
    A._affine = affine_scaled
    run("aio_scaled_2d", A([(4, 3, 3)], subnet_constructor=conv_sub(5), affine_clamping=0.5,
                           global_affine_type="EXP", permute_soft=True, reverse_permutation=True), (2, 4, 3, 3), scale_x=3.0)
    run("aio_scaled_1d", A([(6,)], subnet_constructor=mlp_sub(8), affine_clamping=0.3), (3, 6), scale_x=4.0)
    A._affine = orig
    # GIN mode and householder
    run("aio_gin_1d", A([(6,)], subnet_constructor=mlp_sub(8), gin_block=True), (3, 6))
    run("aio_hh_1d", A([(5,)], subnet_constructor=mlp_sub(8), learned_householder_permutation=2), (3, 5))
    # conditional AllInOne 2-D
    run("aio_cond_2d", A([(4, 3, 3)], dims_c=[(3, 3, 3)], subnet_constructor=conv_sub(6)), (2, 4, 3, 3), (2, 3, 3, 3))
    # CFLOW-like: C=64 + 128-d condition, Linear(d,2d)-ReLU-Linear, clamp 1.9, softplus, soft perm
    inn = Ff.SequenceINN(64)
    for _ in range(2):
        inn.append(A, cond=0, cond_shape=(128,), subnet_constructor=mlp_sub(0), affine_clamping=1.9,
                   global_affine_type="SOFTPLUS", permute_soft=True)
    run("cflow_1d", inn, (4, 64), (4, 128))
    # FastFlow-like: conv3x3 subnet, clamp 2.0, hard permutation, softplus
    inn = Ff.SequenceINN(8, 5, 5)
    for _ in range(2):
        inn.append(A, subnet_constructor=conv_sub(8), affine_clamping=2.0, permute_soft=False)
    run("fastflow_2d", inn, (2, 8, 5, 5))
    # coupling family
    run("glow_2d", Fm.GLOWCouplingBlock([(5, 3, 3)], subnet_constructor=conv_sub(4), clamp=2.0), (2, 5, 3, 3))
    run("glow_1d_cond", Fm.GLOWCouplingBlock([(5,)], dims_c=[(3,)], subnet_constructor=mlp_sub(6), clamp=1.0,
                                             clamp_activation="TANH"), (3, 5), (3, 3))
    run("rnvp_1d", Fm.RNVPCouplingBlock([(6,)], subnet_constructor=mlp_sub(6), clamp=1.5, clamp_activation="SIGMOID"), (3, 6))
    run("rnvp_2d_cond", Fm.RNVPCouplingBlock([(4, 3, 3)], dims_c=[(2, 3, 3)], subnet_constructor=conv_sub(4)), (2, 4, 3, 3), (2, 2, 3, 3))
    run("nice_1d", Fm.NICECouplingBlock([(7,)], subnet_constructor=mlp_sub(6)), (3, 7))
    run("gin_2d", Fm.GINCouplingBlock([(4, 3, 3)], subnet_constructor=conv_sub(4)), (2, 4, 3, 3))
    run("onesided_1d", Fm.AffineCouplingOneSided([(5,)], dims_c=[(2,)], subnet_constructor=mlp_sub(6)), (3, 5), (3, 2))
    run("condaff_2d", Fm.ConditionalAffineTransform([(3, 3, 3)], dims_c=[(2, 3, 3)], subnet_constructor=conv_sub(4)),
        (2, 3, 3, 3), (2, 2, 3, 3))
    run("actnorm_2d", Fm.ActNorm([(3, 4, 4)]), (4, 3, 4, 4), scale_x=2.0)
    run("actnorm_1d", Fm.ActNorm([(5,)]), (6, 5), scale_x=2.0)
    run("permute_2d", Fm.PermuteRandom([(5, 2, 2)], seed=3), (2, 5, 2, 2))
    M = torch.tensor(np.random.RandomState(5).randn(4, 4) + 2 * np.eye(4), dtype=torch.float32)
    run("fixed1x1_2d", Fm.Fixed1x1Conv([(4, 3, 3)], M=M), (2, 4, 3, 3))
    run("fixedlin_1d", Fm.FixedLinearTransform([(4,)], M=M), (3, 4))


if __name__ == "__main__":
    main()
