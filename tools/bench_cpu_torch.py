"""One PyTorch reference measurement for bench/cpu.sh (issue #20): anomalib 2.7's own torch
models (the pip package: `pip install anomalib==2.7.0`, which brings torch 2.x), random
weights, on the CPU, timed by `vigil bench`'s protocol. One model x batch x mode per process
(bench/cpu.sh runs each round in a fresh process and reads its peak RSS with wait4).

  python3 tools/bench_cpu_torch.py --model effad-s --mode infer --batch 1 --warmup 2 --runs 10
  python3 tools/bench_cpu_torch.py --model fastflow-wrn50 --mode train --batch 8 --warmup 1 --runs 3
  python3 tools/bench_cpu_torch.py --check        # imports only: exit 0 when torch + anomalib import

Models (anomalib 2.7 defaults unless said; 256 x 256; pre_trained=False, torch's default init):
  effad-s, effad-m   EfficientAdModel(teacher_out_channels=384, model_size=S|M, padding=False,
                     pad_maps=True); teacher mean/std and map quantiles set to nonzero dummies
                     (what training sets; `vigil bench` sets its own: timing does not depend on them)
  fastflow-r18, fastflow-wrn50
                     FastflowModel(input_size=(256, 256), backbone, flow_steps=8, conv3x3_only=False,
                     hidden_ratio=1.0)
  cflow-wrn50        CflowModel(wide_resnet50_2, layers 2-4, fiber_batch_size=64, condition_vector=128,
                     coupling_blocks=8, clamp_alpha=1.9, permute_soft=False)
  stfpm-r18          STFPMModel(resnet18, layers 1-3)
  padim-r18          PadimModel(resnet18, layers 1-3, n_features=100), Gaussian set to mean 0 and
                     identity inverse covariances (inference only)
  patchcore-wrn50    PatchcoreModel(wide_resnet50_2, layers 2-3, num_neighbors=9), memory bank of
                     --bank rows (default 20480 as `vigil bench`; random; inference only)

Modes:
  infer  model.eval(), torch.inference_mode(): a run = model(x) -> anomaly map and score as
         numpy arrays (host memory), as `vigil bench`'s predict.
  train  a run = one optimizer step exactly as anomalib's lightning module computes it:
         model.train() (as Lightning sets it), optimizer.zero_grad(), forward, the module's loss,
         backward, optimizer.step(). EfficientAD: Adam(student + AE, lr 1e-4, wd 1e-5), loss
         st + ae + stae with one 1 x 3 x 256 x 256 penalty image (anomalib's ImageNette batch;
         random here); FastFlow: Adam(lr 1e-3, wd 1e-5), FastflowLoss; CFLOW: the manual loop of
         Cflow.training_step (random fibre permutation, one Adam(lr 1e-4) step per fibre batch,
         -logsigmoid(log p / C)); STFPM: SGD(lr 0.4, momentum 0.9, wd 1e-3), STFPMLoss.
         Learning-rate schedulers are left out (a scheduler step is free next to the step).

Inputs: uniform [0, 1) images (a fixed seed). Warm-up runs, then --runs timed runs
(time.perf_counter around each run). Output: one JSON line (stdout, or appended to --json)
shaped like `vigil bench`'s: bench "torch_bench", impl "torch", method, model / backbone,
input, device, dtype, mode, threads, batch, warmup, runs, mean_ms, median_ms, min_ms,
times_ms, images_s, params, trainable_params, peak_rss_mb (this process's ru_maxrss),
import_rss_mb (ru_maxrss after the imports, before the model: torch's own footprint),
torch, anomalib, unix_time.
"""
import argparse
import importlib
import json
import resource
import statistics
import sys
import time
import warnings

MODELS = ("effad-s", "effad-m", "fastflow-r18", "fastflow-wrn50", "cflow-wrn50", "stfpm-r18", "padim-r18",
          "patchcore-wrn50")
INFER_ONLY = ("padim-r18", "patchcore-wrn50")


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def imports():
    """torch + anomalib's torch models; exits 3 with a message when they are missing."""
    try:
        import torch  # noqa: F401
        import anomalib  # noqa: F401
    except Exception as e:  # noqa: BLE001 -- any import failure means the same thing here
        sys.stderr.write("bench_cpu_torch: cannot import torch + anomalib with %s (%s: %s).\n"
                         "Make the reference venv: python3 -m venv venv && venv/bin/pip install anomalib==2.7.0,\n"
                         "then VIGIL_TORCH_PYTHON=venv/bin/python (see bench/README.md).\n"
                         % (sys.executable, type(e).__name__, e))
        sys.exit(3)


def no_download(cls_module, attr="TimmFeatureExtractor"):
    """anomalib's feature extractors with pre_trained forced off (random weights, no download)."""
    orig = getattr(cls_module, attr)

    def make(*a, **kw):
        kw["pre_trained"] = False
        return orig(*a, **kw)
    setattr(cls_module, attr, make)


def build(name, bank):
    """(model, meta, train_fn_factory): meta = the JSON keys naming the model."""
    import torch
    if name.startswith("effad"):
        from anomalib.models.image.efficient_ad import torch_model as tm
        size = name[-1]
        m = tm.EfficientAdModel(teacher_out_channels=384, model_size=getattr(tm.EfficientAdModelSize, size.upper()),
                                padding=False, pad_maps=True)
        C = 384
        c = torch.arange(C, dtype=torch.float32)
        with torch.no_grad():
            m.mean_std["mean"].copy_((0.01 * (c % 7)).view(1, C, 1, 1))
            m.mean_std["std"].copy_((0.5 + 0.01 * (c % 5)).view(1, C, 1, 1))
            for k, v in (("qa_st", 0.01), ("qb_st", 0.2), ("qa_ae", 0.02), ("qb_ae", 0.3)):
                m.quantiles[k].fill_(v)

        def trainer(x):
            opt = torch.optim.Adam(list(m.student.parameters()) + list(m.ae.parameters()), lr=1e-4, weight_decay=1e-5)
            pen = torch.rand(1, 3, x.shape[2], x.shape[3], generator=torch.Generator().manual_seed(7))

            def step():
                opt.zero_grad()
                loss_st, loss_ae, loss_stae = m(batch=x, batch_imagenet=pen)
                loss = loss_st + loss_ae + loss_stae
                loss.backward()
                opt.step()
                return float(loss.detach())
            return step
        return m, {"method": "efficientad", "model": size}, trainer
    if name.startswith("fastflow"):
        from anomalib.models.image.fastflow import torch_model as tm
        from anomalib.models.image.fastflow.loss import FastflowLoss
        bb = "resnet18" if name.endswith("r18") else "wide_resnet50_2"
        m = tm.FastflowModel(input_size=(256, 256), backbone=bb, pre_trained=False, flow_steps=8, conv3x3_only=False,
                             hidden_ratio=1.0)
        crit = FastflowLoss()

        def trainer(x):
            opt = torch.optim.Adam(m.parameters(), lr=1e-3, weight_decay=1e-5)

            def step():
                opt.zero_grad()
                hidden, jac = m(x)
                loss = crit(hidden, jac)
                loss.backward()
                opt.step()
                return float(loss.detach())
            return step
        return m, {"method": "fastflow", "backbone": bb}, trainer
    if name == "cflow-wrn50":
        from anomalib.models.image.cflow import torch_model as tm
        from anomalib.models.image.cflow.utils import get_logp, positional_encoding_2d
        import torch.nn.functional as F
        no_download(tm)
        m = tm.CflowModel(backbone="wide_resnet50_2", layers=["layer2", "layer3", "layer4"], pre_trained=False,
                          fiber_batch_size=64, decoder="freia-cflow", condition_vector=128, coupling_blocks=8,
                          clamp_alpha=1.9, permute_soft=False)

        def trainer(x):
            opt = torch.optim.Adam(m.decoders.parameters(), lr=1e-4)

            def step():   # anomalib's Cflow.training_step, with the lightning calls spelt out
                activation = m.encoder(x)
                avg_loss = torch.zeros([1], dtype=torch.float64)
                for layer_idx, layer in enumerate(m.pool_layers):
                    e = activation[layer].detach()
                    b, C, H, W = e.size()
                    E = b * H * W
                    pos = positional_encoding_2d(m.condition_vector, H, W).unsqueeze(0).repeat(b, 1, 1, 1)
                    c_r = pos.permute(0, 2, 3, 1).reshape(E, -1)   # einops "b c h w -> (b h w) c"
                    e_r = e.permute(0, 2, 3, 1).reshape(E, C)
                    perm = torch.randperm(E)
                    decoder = m.decoders[layer_idx]
                    N = m.fiber_batch_size
                    nfib = E // N
                    for f in range(nfib):
                        opt.zero_grad()
                        idx = torch.arange(f * N, (f + 1) * N) if f < nfib - 1 else torch.arange(f * N, E)
                        c_p, e_p = c_r[perm[idx]], e_r[perm[idx]]
                        p_u, log_jac_det = decoder(e_p, [c_p])
                        loss = -F.logsigmoid(get_logp(C, p_u, log_jac_det) / C)
                        loss.mean().backward()
                        opt.step()
                        avg_loss += loss.sum()
                return float(avg_loss.item())
            return step
        return m, {"method": "cflow", "backbone": "wide_resnet50_2"}, trainer
    if name == "stfpm-r18":
        from anomalib.models.image.stfpm import torch_model as tm
        from anomalib.models.image.stfpm.loss import STFPMLoss
        no_download(tm)
        m = tm.STFPMModel(layers=["layer1", "layer2", "layer3"], backbone="resnet18")
        crit = STFPMLoss()

        def trainer(x):
            opt = torch.optim.SGD(m.student_model.parameters(), lr=0.4, momentum=0.9, dampening=0.0, weight_decay=1e-3)

            def step():
                opt.zero_grad()
                t, s = m(x)
                loss = crit(t, s)
                loss.backward()
                opt.step()
                return float(loss.detach())
            return step
        return m, {"method": "stfpm", "backbone": "resnet18"}, trainer
    if name == "padim-r18":
        from anomalib.models.image.padim import torch_model as tm
        no_download(tm)
        m = tm.PadimModel(backbone="resnet18", layers=["layer1", "layer2", "layer3"], pre_trained=False, n_features=100)
        P = 64 * 64   # layer1's grid at 256
        with torch.no_grad():
            m.gaussian.mean = torch.zeros(100, P)
            m.gaussian.inv_covariance = torch.eye(100).unsqueeze(0).repeat(P, 1, 1)
        return m, {"method": "padim", "backbone": "resnet18"}, None
    if name == "patchcore-wrn50":
        from anomalib.models.image.patchcore import torch_model as tm
        no_download(tm)
        m = tm.PatchcoreModel(backbone="wide_resnet50_2", layers=["layer2", "layer3"], pre_trained=False,
                              num_neighbors=9)
        with torch.no_grad():
            m.memory_bank = torch.rand(bank, 1536, generator=torch.Generator().manual_seed(5))
        return m, {"method": "patchcore", "backbone": "wide_resnet50_2", "memory_bank": bank}, None
    raise SystemExit("bench_cpu_torch: unknown model %r (one of %s)" % (name, ", ".join(MODELS)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=MODELS)
    ap.add_argument("--mode", choices=("infer", "train"), default="infer")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bank", type=int, default=20480,
                    help="PatchCore memory-bank rows (default 20480: what `vigil bench patchcore` sets, 0.1 x 200 "
                         "images x 32 x 32)")
    ap.add_argument("--json", help="append the JSON line to FILE instead of stdout")
    ap.add_argument("--check", action="store_true", help="import torch + anomalib and exit (0: they import)")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)   # timm / anomalib deprecation notices
    imports()
    import torch
    import anomalib
    if a.check:
        print("torch %s, anomalib %s (%s)" % (torch.__version__, anomalib.__version__, sys.executable))
        return
    if not a.model:
        ap.error("--model is required")
    if a.mode == "train" and a.model in INFER_ONLY:
        ap.error("%s has no training step (its fit is a statistics pass)" % a.model)
    torch.set_num_threads(a.threads)
    # anomalib's model module is part of the imports (it pulls in lightning etc.): import_rss_mb
    # is the process before any model exists
    pkg = {"effad": "efficient_ad"}.get(a.model.split("-")[0], a.model.split("-")[0])
    importlib.import_module("anomalib.models.image.%s.torch_model" % pkg)
    import_rss = rss_mb()
    torch.manual_seed(0)
    m, meta, trainer = build(a.model, a.bank)
    x = torch.rand(a.batch, 3, 256, 256, generator=torch.Generator().manual_seed(2 + a.batch))
    last = None
    if a.mode == "infer":
        m.eval()

        def run():
            with torch.inference_mode():
                out = m(x)
                amap, score = out.anomaly_map.numpy(), out.pred_score.numpy()
            return float(score.reshape(-1)[0]) if amap.size else None
    else:
        m.train()   # as Lightning's fit loop sets it
        run = trainer(x)
    ts = []
    for r in range(a.warmup + a.runs):
        t0 = time.perf_counter()
        last = run()
        el = time.perf_counter() - t0
        if r >= a.warmup:
            ts.append(el)
    mean = sum(ts) / len(ts)
    rec = {"bench": "torch_bench", "impl": "torch", "mode": a.mode}
    rec.update(meta)
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    rec.update({"input": 256, "device": "cpu", "cpu": cpu, "dtype": "f32", "threads": torch.get_num_threads(), "batch": a.batch,
                "warmup": a.warmup, "runs": a.runs, "mean_ms": 1e3 * mean, "median_ms": 1e3 * statistics.median(ts),
                "min_ms": 1e3 * min(ts), "times_ms": [round(1e3 * t, 3) for t in ts], "images_s": a.batch / mean,
                "params": sum(p.numel() for p in m.parameters()),
                "trainable_params": sum(p.numel() for p in m.parameters() if p.requires_grad),
                "peak_rss_mb": rss_mb(), "import_rss_mb": import_rss, "torch": torch.__version__,
                "anomalib": getattr(anomalib, "__version__", "?"), "unix_time": int(time.time())})
    if a.mode == "train":
        rec["last_loss"] = last
    line = json.dumps(rec, separators=(",", ":"))
    if a.json:
        with open(a.json, "a") as f:
            f.write(line + "\n")
    else:
        print(line, flush=True)


if __name__ == "__main__":
    main()
