"""Fixtures for tests/test_flow_graph.c: a FrEIA 0.2 GraphINN (multi-scale, two inputs, two
outputs, conditions on three nodes) with deterministic weights, saved as FrEIA's own
state_dict (torch.save) and its outputs, log-det, gradients and reverse pass.

Run: /work/venv/bin/python tools/gen_flow_graph_fixtures.py

The graph (node names as in the C test; dims without the batch):
  x  InputNode (2, 8, 8)          x2 InputNode (2, 4, 4)
  c1 ConditionNode (3, 4, 4)      c2 ConditionNode (2, 4, 4)
  haar   HaarDownsampling(x, order_by_wavelet, rebalance 0.5)      -> (8, 4, 4)
  glow   GLOWCouplingBlock(haar, cond c1, clamp 1.5)                -> (8, 4, 4)
  split  Split(glow, section_sizes [3, 5])                          -> (3,4,4), (5,4,4)
  aio    AllInOneBlock(split.0, cond c2)                            -> (3, 4, 4)
  rnvp   RNVPCouplingBlock(split.1, conds [c1, c2])                 -> (5, 4, 4)
  split2 Split(rnvp) (n_sections 2: [3, 2])                         -> (3,4,4), (2,4,4)
  cat    Concat(aio, split2.0)                                      -> (6, 4, 4)
  resh   Reshape(cat, (24, 2, 2));  flat Flatten(resh)             -> (96,)
  cat2   Concat(split2.1, x2);  nice NICECouplingBlock(cat2)        -> (4, 4, 4)
  z0 OutputNode(flat)             z1 OutputNode(nice)
Weights: tools/gen_flow_fixtures.py's sine formula (w_perm / haar_weights: FrEIA's own).

FrEIA orders module_list by Kahn's algorithm over Python sets of nodes, so with a node
fed by two different nodes (cat, cat2) its order depends on object addresses. Vigil
visits the producers in the order of the node's inputs; this script rebuilds the graph
until FrEIA's order is that one (the state_dict names then agree; every attempt reseeds, so
the files do not depend on how many it took).

Files: tests/fixtures/flow_graph_sd.pth (FrEIA's state_dict), flow_graph.bin:
  x, x2, c1, c2; z0, z1, ld (forward); gx, gx2 and g.<param> (grads of
  L = sum(z0^2)/2 + sum(z1^2)/2 - sum(ld)); r_z0, r_z1 (random z), r_x, r_x2, r_ld (reverse)."""
import math, os, sys
import numpy as np
import torch
import torch.nn as nn
sys.path.insert(0, os.path.dirname(__file__))
import fixtures
import gen_flow_fixtures as gf
import FrEIA.framework as Ff
import FrEIA.modules as Fm

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
torch.set_default_dtype(torch.float32)


def build():
    sub = gf.conv_sub(4)
    x = Ff.InputNode(2, 8, 8, name="x")
    x2 = Ff.InputNode(2, 4, 4, name="x2")
    c1 = Ff.ConditionNode(3, 4, 4, name="c1")
    c2 = Ff.ConditionNode(2, 4, 4, name="c2")
    haar = Ff.Node(x, Fm.HaarDownsampling, {"order_by_wavelet": True, "rebalance": 0.5}, name="haar")
    glow = Ff.Node(haar, Fm.GLOWCouplingBlock, {"subnet_constructor": sub, "clamp": 1.5}, conditions=c1, name="glow")
    split = Ff.Node(glow, Fm.Split, {"section_sizes": [3, 5]}, name="split")
    aio = Ff.Node(split.out0, Fm.AllInOneBlock, {"subnet_constructor": sub}, conditions=c2, name="aio")
    rnvp = Ff.Node(split.out1, Fm.RNVPCouplingBlock, {"subnet_constructor": sub}, conditions=[c1, c2], name="rnvp")
    split2 = Ff.Node(rnvp, Fm.Split, {}, name="split2")
    cat = Ff.Node([aio.out0, split2.out0], Fm.Concat, {}, name="cat")
    resh = Ff.Node(cat, Fm.Reshape, {"output_dims": (24, 2, 2)}, name="resh")
    flat = Ff.Node(resh, Fm.Flatten, {}, name="flat")
    cat2 = Ff.Node([split2.out1, x2.out0], Fm.Concat, {}, name="cat2")
    nice = Ff.Node(cat2, Fm.NICECouplingBlock, {"subnet_constructor": sub}, name="nice")
    z0 = Ff.OutputNode(flat, name="z0")
    z1 = Ff.OutputNode(nice, name="z1")
    nodes = [x, x2, c1, c2, haar, glow, split, aio, rnvp, split2, cat, resh, flat, cat2, nice, z0, z1]
    return nodes, Ff.GraphINN(nodes)


def vigil_order(nodes):
    """Kahn from the OutputNodes, producers in input order (graph.c's rule), reversed."""
    outs = [n for n in nodes if isinstance(n, Ff.OutputNode)]
    pending = {}
    for n in nodes:
        for p in dict.fromkeys(a for a, _ in n.inputs):
            pending[p] = pending.get(p, 0) + 1
    q = list(outs)
    for n in q:
        for p in dict.fromkeys(a for a, _ in n.inputs):
            pending[p] -= 1
            if pending[p] == 0:
                q.append(p)
    return [n.name for n in q[::-1]]


def main():
    torch.manual_seed(0)
    np.random.seed(0)
    keep = []
    for attempt in range(200):
        torch.manual_seed(0)           # the same weights whichever attempt is kept
        np.random.seed(0)
        nodes, net = build()
        keep.append(net)               # keep addresses distinct between attempts
        if [n.name for n in net.node_list] == vigil_order(nodes):
            break
    else:
        sys.exit("FrEIA's node order never matched Vigil's rule")
    print("attempts:", attempt + 1, "order:", [n.name for n in net.node_list])
    gf.EXPORT.add("haar_weights")
    gf.set_params(net)
    sd = net.state_dict()
    torch.save(sd, os.path.join(OUT, "flow_graph_sd.pth"))
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 2, 8, 8, generator=g).requires_grad_(True)
    x2 = torch.randn(2, 2, 4, 4, generator=g).requires_grad_(True)
    c1 = torch.randn(2, 3, 4, 4, generator=g)
    c2 = torch.randn(2, 2, 4, 4, generator=g)
    (z0, z1), ld = net([x, x2], c=[c1, c2])
    loss = (z0 ** 2).sum() / 2 + (z1 ** 2).sum() / 2 - ld.sum()
    loss.backward()
    d = {"x": x.detach().numpy(), "x2": x2.detach().numpy(), "c1": c1.numpy(), "c2": c2.numpy(),
         "z0": z0.detach().numpy(), "z1": z1.detach().numpy(), "ld": ld.detach().numpy(),
         "gx": x.grad.numpy(), "gx2": x2.grad.numpy()}
    for pn, p in net.named_parameters():
        if p.requires_grad and p.grad is not None:
            d["g." + pn] = p.grad.detach().numpy().reshape(-1)
    with torch.no_grad():
        rz0 = torch.randn(2, 96, generator=g)
        rz1 = torch.randn(2, 4, 4, 4, generator=g)
        (rx, rx2), rld = net([rz0, rz1], c=[c1, c2], rev=True)
        # FrEIA's own round trip, for the record
        (bz0, bz1), _ = net([rx, rx2], c=[c1, c2])
        print("FrEIA round trip err", float((bz0 - rz0).abs().max()), float((bz1 - rz1).abs().max()))
    d.update({"r_z0": rz0.numpy(), "r_z1": rz1.numpy(), "r_x": rx.numpy(), "r_x2": rx2.numpy(), "r_ld": rld.numpy()})
    path = os.path.join(OUT, "flow_graph.bin")
    fixtures.write(path, d)
    print(path, os.path.getsize(path), "bytes;", "sd", os.path.getsize(os.path.join(OUT, "flow_graph_sd.pth")), "bytes")
    print("state dict:", [(k, tuple(v.shape)) for k, v in sd.items()])


if __name__ == "__main__":
    main()
