"""Fixtures for tests/test_flow_zoo.c: FrEIA 0.2's single-input modules beyond the coupling
blocks (reshapes, elementwise, orthogonal) with identical weights, and FrEIA master's
RationalQuadraticSpline / ElementwiseRationalQuadraticSpline (--rqs).

Run: /work/venv/bin/python tools/gen_flow_zoo_fixtures.py             -> tests/fixtures/flow_zoo.bin
     /work/venv/bin/python tools/gen_flow_zoo_fixtures.py --rqs DIR   -> tests/fixtures/flow_zoo_rqs.bin

The first uses FrEIA 0.2 (the pip package in the venv). FrEIA 0.2 has no spline module; the
spline reference is FrEIA master (vislearn/FrEIA, commit 4212496, FrEIA/modules/splines/),
imported from DIR (the directory holding its FrEIA package) in place of the pip one:
  git clone https://github.com/vislearn/FrEIA /tmp/FrEIA-master && git -C /tmp/FrEIA-master checkout 4212496
  /work/venv/bin/python tools/gen_flow_zoo_fixtures.py --rqs /tmp/FrEIA-master

Per case <k> (all float32):
  <k>.p.<name>   every state-dict entry (random weights, FrEIA's own init for the frozen
                 kernels and OrthogonalTransform's R), so names and values are checked
  <k>.x, <k>.y, <k>.ld    forward input, output, log-det (N,)
  <k>.gy                  a random tensor shaped as y; L = sum(y * gy) - sum(ld)
  <k>.gx, <k>.g.<name>    grads of L wrt x and each trainable parameter the output uses
  <k>.c, <k>.gc           the condition (conditional cases) and the grad of L wrt it
  <k>.z, <k>.xr, <k>.ldr  a reverse-pass input, FrEIA's reverse output and log-det
Where FrEIA 0.2's log-det departs from the module contract, the value stored is the
contract's, computed from FrEIA's tensors (asserted here):
  InvertibleSigmoid on images: FrEIA sums over dim 1 only -> stored summed over all dims.
  LearnedElementwiseScaling reverse: FrEIA returns +sum(s) -> stored -sum(s).
FrEIA 0.2's HaarDownsampling reverse scales its input in place: inputs are cloned."""
import argparse
import os
import sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(__file__))
import fixtures

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
torch.set_default_dtype(torch.float32)
FROZEN = {"haar_weights", "downsample_kernel", "W", "weight"}


def as_ld(j, n):
    if isinstance(j, torch.Tensor):
        j = j.reshape(-1) if j.numel() == n else j.reshape(-1).expand(n) if j.numel() == 1 else j
        return j
    return torch.full((n,), float(j))


def call(m, x, rev, cond=None):
    kw = {"rev": rev, "jac": True}
    if cond is not None:
        kw["c"] = [cond]
    out, j = m([x.clone()], **kw)
    return out[0], j


def run(out, key, m, x, z, fix_ld=None, fix_ldr=None, cond=None, perturb=True):
    g = torch.Generator().manual_seed(sum(key.encode()))
    with torch.no_grad():
        for name, t in m.named_parameters():   # parameters only: buffers (the spline's domain) keep their values
            leaf = name.split(".")[-1]
            if perturb and leaf not in FROZEN and not (key.startswith("orth") and leaf == "weights"):
                t.copy_(0.3 * torch.randn(t.shape, generator=g))
    for name, t in m.state_dict().items():
        out[f"{key}.p.{name}"] = t.detach().numpy().astype(np.float32)
    n = x.shape[0]
    x = x.clone().requires_grad_(True)
    c = cond.clone().requires_grad_(True) if cond is not None else None
    y, j = call(m, x, False, c)
    ld = as_ld(j, n)
    if fix_ld:
        ld = fix_ld(j, n)
    assert ld.shape == (n,), (key, ld.shape)
    gy = torch.randn(y.shape, generator=g)   # dL/dy: sum(y^2)/2 would give orthogonal maps 0 grads
    loss = (y * gy).sum() - ld.sum()
    params = [(k, p) for k, p in m.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [x] + [p for _, p in params] + ([c] if c is not None else []), allow_unused=True)
    if c is not None:
        gc, grads = grads[-1], grads[:-1]
    out[f"{key}.x"] = x.detach().numpy()
    out[f"{key}.y"] = y.detach().numpy()
    out[f"{key}.ld"] = ld.detach().numpy()
    out[f"{key}.gy"] = gy.numpy()
    out[f"{key}.gx"] = grads[0].numpy()
    for (k, p), gr in zip(params, grads[1:]):
        if gr is not None:   # a parameter the output does not use (fixed HouseholderPerm's Vs) has none
            out[f"{key}.g.{k}"] = gr.numpy()
    if c is not None:
        out[f"{key}.c"] = c.detach().numpy()
        out[f"{key}.gc"] = gc.numpy()
    with torch.no_grad():
        xr, jr = call(m, z, True, c)
        ldr = as_ld(jr, n)
        if fix_ldr:
            ldr = fix_ldr(jr, n)
    out[f"{key}.z"] = z.numpy()
    out[f"{key}.xr"] = xr.numpy()
    out[f"{key}.ldr"] = ldr.numpy()
    print(f"{key}: y {tuple(y.shape)} ld {ld.detach().numpy()[:2]} ldr {ldr.numpy()[:2]} params {[k for k in m.state_dict()]}")


def sig_ld(j, n):   # FrEIA sums over dim 1 only; the contract sums over every non-batch dim
    return j.reshape(n, -1).sum(1)


def main():
    import FrEIA.modules as Fm
    torch.manual_seed(1234)
    out = {}
    rn = lambda *s: torch.randn(*s)
    # reshapes (FrEIA's own frozen kernels)
    run(out, "haar_down", Fm.HaarDownsampling([(3, 4, 6)]), rn(2, 3, 4, 6), rn(2, 12, 2, 3))
    run(out, "haar_down_wav", Fm.HaarDownsampling([(2, 4, 4)], order_by_wavelet=True, rebalance=0.5), rn(2, 2, 4, 4), rn(2, 8, 2, 2))
    run(out, "haar_up", Fm.HaarUpsampling([(8, 2, 3)], rebalance=2.0), rn(2, 8, 2, 3), rn(2, 2, 4, 6))
    run(out, "haar_up_wav", Fm.HaarUpsampling([(8, 3, 2)], order_by_wavelet=True), rn(2, 8, 3, 2), rn(2, 2, 6, 4))
    run(out, "irev_down", Fm.IRevNetDownsampling([(3, 4, 2)]), rn(2, 3, 4, 2), rn(2, 12, 2, 1))
    run(out, "irev_down_legacy", Fm.IRevNetDownsampling([(2, 4, 6)], legacy_backend=True), rn(2, 2, 4, 6), rn(2, 8, 2, 3))
    run(out, "irev_up", Fm.IRevNetUpsampling([(8, 2, 2)]), rn(2, 8, 2, 2), rn(2, 2, 4, 4))
    run(out, "irev_up_legacy", Fm.IRevNetUpsampling([(12, 2, 3)], legacy_backend=True), rn(2, 12, 2, 3), rn(2, 3, 4, 6))
    # elementwise
    run(out, "sigmoid_1d", Fm.InvertibleSigmoid([(5,)]), 2 * rn(2, 5), torch.rand(2, 5) * 0.9 + 0.05)
    j = Fm.InvertibleSigmoid([(3, 2, 2)])([rn(2, 3, 2, 2)])[1]
    assert j.shape == (2, 2, 2), j.shape   # the FrEIA 0.2 per-pixel log-det the contract replaces
    run(out, "sigmoid_2d", Fm.InvertibleSigmoid([(3, 2, 2)]), 2 * rn(2, 3, 2, 2), torch.rand(2, 3, 2, 2) * 0.9 + 0.05,
        fix_ld=sig_ld, fix_ldr=sig_ld)
    for key, dims in (("scaling_2d", (3, 2, 2)), ("scaling_1d", (4,))):
        m = Fm.LearnedElementwiseScaling([dims])
        def neg(j, n, m=m):
            assert torch.allclose(j, m.s.sum().reshape(1))   # FrEIA 0.2: not negated in reverse
            return -j.reshape(-1).expand(n)
        run(out, key, m, rn(2, *dims), rn(2, *dims), fix_ldr=neg)
    x = rn(2, 3, 2, 2); x[0, 0, 0, 0] = 0.0
    run(out, "act_2d", Fm.InvAutoAct([(3, 2, 2)]), x, rn(2, 3, 2, 2))
    run(out, "act_1d", Fm.InvAutoAct([(5,)], slope_init=1.5, learnable=False), rn(2, 5), rn(2, 5))
    x = rn(2, 2, 3, 2); x[1, 1, 0, 1] = 0.0
    run(out, "act2_2d", Fm.InvAutoActTwoSided([(2, 3, 2)]), x, rn(2, 2, 3, 2))
    run(out, "act2_1d", Fm.InvAutoActTwoSided([(5,)], init_pos=3.0, init_neg=0.25), rn(2, 5), rn(2, 5))
    # orthogonal
    run(out, "orth_1d", Fm.OrthogonalTransform([(6,)], clamp=2.0), rn(3, 6), rn(3, 6))
    run(out, "hh_1d", Fm.HouseholderPerm([(5,)], n_reflections=3), rn(2, 5), rn(2, 5))
    run(out, "hh_fixed_1d", Fm.HouseholderPerm([(6,)], n_reflections=4, fixed=True), rn(2, 6), rn(2, 6), perturb=False)
    # OrthogonalTransform's Gram-Schmidt (orth_correction) on a non-orthogonal matrix
    from FrEIA.modules.orthogonal import orth_correction
    R = torch.eye(5) + 0.3 * rn(5, 5)
    out["orth_correction.in"] = R.numpy().copy()
    orth_correction(R)
    out["orth_correction.out"] = R.numpy()
    os.makedirs(OUT, exist_ok=True)
    fixtures.write(os.path.join(OUT, "flow_zoo.bin"), out)
    print("wrote flow_zoo.bin:", len(out), "tensors")


def gen_rqs():
    """FrEIA master's RationalQuadraticSpline (FrEIA imported from the --rqs checkout)."""
    import torch.nn as nn
    import FrEIA
    import FrEIA.modules as Fm
    assert hasattr(Fm, "RationalQuadraticSpline"), f"{FrEIA.__file__}: no RationalQuadraticSpline (not FrEIA master)"
    print("reference:", FrEIA.__file__)
    torch.manual_seed(4321)
    out = {}
    rn = lambda *s: torch.randn(*s)

    def mlp(hidden):
        return lambda cin, cout: nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(), nn.Linear(hidden, cout))

    def conv(hidden):
        return lambda cin, cout: nn.Sequential(nn.Conv2d(cin, hidden, 3, padding=1), nn.ReLU(),
                                               nn.Conv2d(hidden, cout, 3, padding=1))
    # inputs at scale 2 so that some fall outside the spline domain (affine tails)
    run(out, "rqs_1d", Fm.RationalQuadraticSpline([(5,)], subnet_constructor=mlp(8)), 2 * rn(3, 5), 2 * rn(3, 5))
    run(out, "rqs_2d_cond", Fm.RationalQuadraticSpline([(4, 3, 3)], dims_c=[(2, 3, 3)], subnet_constructor=conv(3), bins=3,
                                                       default_domain=(-2.0, 2.0, -2.5, 2.5), min_bin_sizes=(0.05, 0.2)),
        2 * rn(2, 4, 3, 3), 2 * rn(2, 4, 3, 3), cond=rn(2, 2, 3, 3))
    run(out, "rqs_1d_identity", Fm.RationalQuadraticSpline([(4,)], subnet_constructor=mlp(6), bins=4, identity_tails=True,
                                                           domain_clamping=2.0), 2 * rn(3, 4), 2 * rn(3, 4))
    run(out, "rqs_1d_clamp", Fm.RationalQuadraticSpline([(3,)], dims_c=[(2,)], subnet_constructor=mlp(6), bins=3,
                                                        domain_clamping=2.5), 2 * rn(3, 3), 2 * rn(3, 3), cond=rn(3, 2))
    run(out, "rqs_1d_bins1", Fm.RationalQuadraticSpline([(2,)], subnet_constructor=mlp(4), bins=1), 2 * rn(3, 2), 2 * rn(3, 2))
    run(out, "erqs_2d", Fm.ElementwiseRationalQuadraticSpline([(3, 2, 2)], bins=4), 2 * rn(2, 3, 2, 2), 2 * rn(2, 3, 2, 2))
    run(out, "erqs_1d_cond", Fm.ElementwiseRationalQuadraticSpline([(4,)], dims_c=[(3,)], subnet_constructor=mlp(6), bins=3,
                                                                   identity_tails=True), 2 * rn(3, 4), 2 * rn(3, 4), cond=rn(3, 3))
    os.makedirs(OUT, exist_ok=True)
    fixtures.write(os.path.join(OUT, "flow_zoo_rqs.bin"), out)
    print("wrote flow_zoo_rqs.bin:", len(out), "tensors")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rqs", help="FrEIA master checkout (commit 4212496): writes the spline fixture only")
    a = ap.parse_args()
    if a.rqs:
        sys.path.insert(0, a.rqs)   # FrEIA master instead of the pip FrEIA 0.2
        gen_rqs()
    else:
        main()
