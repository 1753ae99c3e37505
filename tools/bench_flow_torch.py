"""PyTorch + FrEIA reference for bench/bench_flows.c: FastFlow-R18 layer-1 flow (8 AllInOne
blocks, C=64, 64x64, conv3x3 subnet hidden 64, clamp 2, softplus), fwd+bwd, 2 threads.
Run: PYTHONPATH=/work/pydeps /usr/bin/python3 tools/bench_flow_torch.py [batch] [iters]"""
import sys, time
import torch
import torch.nn as nn
import FrEIA.framework as Ff
import FrEIA.modules as Fm

B = int(sys.argv[1]) if len(sys.argv) > 1 else 32
iters = int(sys.argv[2]) if len(sys.argv) > 2 else 3
torch.set_num_threads(2)
sub = lambda cin, cout: nn.Sequential(nn.Conv2d(cin, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, cout, 3, padding=1))
inn = Ff.SequenceINN(64, 64, 64)
for _ in range(8):
    inn.append(Fm.AllInOneBlock, subnet_constructor=sub, affine_clamping=2.0, permute_soft=False)
x = torch.randn(B, 64, 64, 64)
ts = []
for it in range(iters + 1):
    t0 = time.perf_counter()
    z, ld = inn(x)
    loss = (0.5 * torch.sum(z ** 2, dim=(1, 2, 3)) - ld).mean()
    inn.zero_grad()
    loss.backward()
    dt = time.perf_counter() - t0
    print("iter %d: %.1f ms" % (it, dt * 1e3), flush=True)
    if it:
        ts.append(dt)
print("torch %s FrEIA fwd+bwd: batch %d, 2 threads: mean %.1f ms, best %.1f ms" % (torch.__version__, B, 1e3 * sum(ts) / len(ts), 1e3 * min(ts)))
