"""PyTorch CPU reference timings for bench/bench_flowmethods.c: anomalib 2.7's FastflowModel
and CflowModel (imported as in tools/gen_*_fixtures.py; torchvision backbones, random
init), 256x256, batch 4, torch.set_num_threads(2). FastFlow train = one Adam step
(lr 1e-3, wd 1e-5) on the batch; CFLOW train = the official loop (fibres shuffled, chunks
of 256, one Adam step each, hard permutations as the C bench); inference = model.eval()
forward (anomaly map). Best of `reps` after one warm-up; ms per image.

Run: PYTHONPATH=/work/pydeps /usr/bin/python3 tools/bench_flowmethods_torch.py [reps]"""
import os, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_cflow_fixtures as gcf  # noqa: E402


def best(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def fastflow(ns, backbone, B, reps):
    t0 = time.perf_counter()
    m = ns.ff.FastflowModel(input_size=(256, 256), backbone=backbone, pre_trained=False, flow_steps=8,
                            conv3x3_only=backbone == "resnet18", hidden_ratio=1.0)
    tinit = time.perf_counter() - t0
    x = torch.rand(B, 3, 256, 256) * 4 - 2
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-5)
    crit = ns.ff_loss.FastflowLoss()

    def train():
        m.train()
        z, ld = m(x)
        loss = crit(z, ld)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer():
        m.eval()
        with torch.no_grad():
            m(x)
    return tinit, best(train, reps) / B, best(infer, reps) / B


def cflow(ns, backbone, B, reps):
    t0 = time.perf_counter()
    m = ns.tm.CflowModel(backbone=backbone, layers=["layer2", "layer3", "layer4"], pre_trained=False,
                         fiber_batch_size=256, condition_vector=128, coupling_blocks=8, clamp_alpha=1.9,
                         permute_soft=False)
    tinit = time.perf_counter() - t0
    x = torch.rand(B, 3, 256, 256) * 4 - 2
    opt = torch.optim.Adam([p for d in m.decoders for p in d.parameters()], lr=2e-4)

    def train():
        m.decoders.train()
        with torch.no_grad():
            act = m.encoder(x)
        for l, layer in enumerate(m.pool_layers):
            e = act[layer]
            b, C, H, W = e.shape
            E = b * H * W
            pe = ns.utils.positional_encoding_2d(128, H, W).unsqueeze(0).repeat(b, 1, 1, 1)
            c_r = pe.reshape(b, 128, H * W).transpose(1, 2).reshape(E, 128)
            e_r = e.reshape(b, C, H * W).transpose(1, 2).reshape(E, C)
            perm = torch.randperm(E)
            for f in range(E // 256):
                idx = perm[f * 256:(f + 1) * 256]
                z, ljd = m.decoders[l](e_r[idx], [c_r[idx]])
                loss = -F.logsigmoid(ns.utils.get_logp(C, z, ljd) / C)
                opt.zero_grad()
                loss.mean().backward()
                opt.step()

    def infer():
        m(x)
    return tinit, best(train, reps) / B, best(infer, reps) / B


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(2)
    torch.manual_seed(0)
    ns = gcf.load()
    for name, fn in [("fastflow", fastflow), ("cflow", cflow)]:
        for bb in ["resnet18", "wide_resnet50_2"]:
            tinit, tr, inf = fn(ns, bb, 4, reps)
            print("%-9s %-16s batch 4: init %.1f s, train %.1f ms/image, inference %.1f ms/image (torch %s, 2 threads)"
                  % (name, bb, tinit, 1e3 * tr, 1e3 * inf, torch.__version__), flush=True)


if __name__ == "__main__":
    main()
