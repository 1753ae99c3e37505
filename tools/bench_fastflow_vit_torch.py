"""PyTorch CPU reference timing for `vigil bench fastflow --backbone cait_m48_448 |
deit_base_distilled_patch16_384`: anomalib 2.7's FastflowModel (/work/venv) with the full timm
backbone (pretrained=False: random weights, timing does not depend on them), the reference
setting (20 flow steps, hidden_ratio 0.16, 3x3/1x1 alternating), the backbone's native input
size, eval mode, torch.no_grad, batch 1, torch.set_num_threads(THREADS). Prints the flow's
trained parameter count, mean / median / min ms of `runs` after `warmup`, and the process CPU
seconds per image (robust to other load on the machine).

Run: /work/venv/bin/python tools/bench_fastflow_vit_torch.py deit|cait [runs] [warmup] [threads]"""
import resource
import sys
import time
import warnings

import torch

warnings.filterwarnings("ignore")
from anomalib.models.image.fastflow.torch_model import FastflowModel  # noqa: E402

NAMES = {"deit": ("deit_base_distilled_patch16_384", 384), "cait": ("cait_m48_448", 448)}


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    arch = sys.argv[1] if len(sys.argv) > 1 else "deit"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    name, size = NAMES[arch]
    t0 = time.perf_counter()
    m = FastflowModel(input_size=(size, size), backbone=name, pre_trained=False, flow_steps=20, conv3x3_only=False,
                      hidden_ratio=0.16)
    m.eval()
    tinit = time.perf_counter() - t0
    trained = sum(p.numel() for p in m.parameters() if p.requires_grad)
    x = torch.rand(1, 3, size, size) * 4 - 2
    with torch.no_grad():
        for _ in range(warmup):
            m(x)
        ts = []
        c0 = cpu_s()
        for _ in range(runs):
            t = time.perf_counter()
            m(x)
            ts.append((time.perf_counter() - t) * 1e3)
        c1 = cpu_s()
    ts.sort()
    print("torch %s fastflow %s %dx%d, %d threads: flow %d trained params; init %.1f s; batch 1: mean %.1f ms, "
          "median %.1f ms, min %.1f ms; %.2f CPU s/image (torch %s)" % (
              torch.__version__, name, size, size, threads, trained, tinit, sum(ts) / len(ts), ts[len(ts) // 2],
              ts[0], (c1 - c0) / runs, torch.__version__))


if __name__ == "__main__":
    main()
