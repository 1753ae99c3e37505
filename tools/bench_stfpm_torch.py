"""PyTorch CPU reference timings for STFPM (methods/stfpm): anomalib 2.7's STFPMModel
(installed package, timm resnet18 features_only layer1..3, random weights: pre_trained off)
at 256 x 256, torch.set_num_threads(threads). Inference = model.eval() forward (anomaly map
+ score) at batch 1; train = one step as anomalib's training_step + SGD(lr 0.4, momentum 0.9,
wd 1e-3) at batch `train_batch` (model.train(): student BN on batch statistics). Input
uniform(-2, 2). Mean of `runs` after `warmup` untimed runs; ms per call.

Compare with `vigil bench stfpm --batch 1 --threads T` (predict) and Vigil's train_step.
Run: /work/venv/bin/python tools/bench_stfpm_torch.py [runs] [threads] [train_batch]"""
import sys, time
import torch
import anomalib.models.image.stfpm.torch_model as tm
from anomalib.models.image.stfpm.loss import STFPMLoss

_TFE = tm.TimmFeatureExtractor


def _no_download(*a, **kw):
    kw["pre_trained"] = False
    return _TFE(*a, **kw)


def mean_ms(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - t0) / runs * 1e3


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    tb = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    torch.set_num_threads(threads)
    tm.TimmFeatureExtractor = _no_download
    model = tm.STFPMModel(layers=["layer1", "layer2", "layer3"], backbone="resnet18")
    x1 = torch.rand(1, 3, 256, 256) * 4 - 2
    xb = torch.rand(tb, 3, 256, 256) * 4 - 2
    crit = STFPMLoss()
    opt = torch.optim.SGD(model.student_model.parameters(), lr=0.4, momentum=0.9, dampening=0.0, weight_decay=1e-3)

    def infer():
        with torch.no_grad():
            model(x1)

    def train():
        opt.zero_grad()
        t, s = model(xb)
        crit(t, s).backward()
        opt.step()
    model.eval()
    inf = mean_ms(infer, runs, 3)
    model.train()
    tr = mean_ms(train, max(3, runs // 4), 1)
    print("torch %s threads %d: inference b1 %.2f ms/image; train step b%d %.1f ms (%.2f ms/image)"
          % (torch.__version__, threads, inf, tb, tr, tr / tb))


if __name__ == "__main__":
    main()
