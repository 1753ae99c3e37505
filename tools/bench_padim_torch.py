"""PyTorch CPU reference timings for PaDiM: anomalib 2.7's PadimModel (the installed /work/venv
package, timm backbone with pre_trained=False: random weights, timing does not depend on them),
256x256, torch.set_num_threads(THREADS).

fit: NFIT random images through the model in training mode (batches of 16) + model.fit() (the
per-position covariance loop and torch.linalg.inv); inference: model.eval() forward (anomaly
map + score) at batch 1 and 16, ms per image, best of `reps` after one warm-up.
Compare with `vigil bench padim --threads THREADS --batch 1 --batch 16` in the same session.

Run: /work/venv/bin/python tools/bench_padim_torch.py [backbone] [reps] [nfit] [threads]"""
import sys
import time
import torch

from anomalib.models.image.padim.torch_model import PadimModel


def best(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main():
    backbone = sys.argv[1] if len(sys.argv) > 1 else "resnet18"
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    nfit = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = PadimModel(backbone=backbone, pre_trained=False)
    g = torch.Generator().manual_seed(1)
    t0 = time.perf_counter()
    m.train()
    with torch.no_grad():
        for i in range(0, nfit, 16):
            m(torch.rand(min(16, nfit - i), 3, 256, 256, generator=g) * 4 - 2)
    t1 = time.perf_counter()
    m.fit()
    t2 = time.perf_counter()
    print("anomalib padim %s fit %d images: %.2f s (embeddings %.2f s, gaussian fit %.2f s), threads %d"
          % (backbone, nfit, t2 - t0, t1 - t0, t2 - t1, threads))
    m.eval()
    for b in (1, 16):
        x = torch.rand(b, 3, 256, 256, generator=g) * 4 - 2

        def infer():
            with torch.no_grad():
                m(x)
        print("anomalib padim %s inference batch %d: %.2f ms/image" % (backbone, b, 1000 * best(infer, reps) / b))


if __name__ == "__main__":
    main()
