"""PyTorch CPU reference timings for PatchCore (anomalib 2.7's PatchcoreModel / KCenterGreedy from
/work/venv), torch.set_num_threads(2), to compare with tests/test_patchcore.c's bench mode and
`vigil bench patchcore`.

  coreset N STEPS  rows: N x 1536 Gaussian clusters (2000 centres N(0,1), noise N(0, 0.3^2),
                   numpy seed 0), written raw (f32, row-major) to /tmp/pc_bench_rows.f32 with
                   anomalib's drawn projection (/tmp/pc_bench_proj.f32, k x 1536) and its start
                   and selected indices (/tmp/pc_bench_idx.i64) so the C side replays the same
                   selection and compares the indices. anomalib's loop costs the same every step
                   (a full distance pass): STEPS > 0 times only the projection + the first
                   STEPS steps and extrapolates to int(0.1 N) (the indices are then not written).
  predict S M      PatchcoreModel(wide_resnet50_2, layer2+layer3, random weights) eval forward of
                   one S x S image against a bank of M random rows: best of 5 after a warm-up.

Run: /work/venv/bin/python tools/bench_patchcore_torch.py coreset 39200 0
     /work/venv/bin/python tools/bench_patchcore_torch.py predict 224 15680"""
import sys
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")


def clustered(n, d, nc=2000, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((nc, d), dtype=np.float32)
    a = rng.integers(0, nc, n)
    return c[a] + np.float32(0.3) * rng.standard_normal((n, d), dtype=np.float32)


def coreset(n, steps):
    from anomalib.models.components import KCenterGreedy
    rows = clustered(n, 1536)
    rows.tofile("/tmp/pc_bench_rows.f32")
    emb = torch.from_numpy(rows)
    torch.manual_seed(0)
    np.random.seed(0)
    s = KCenterGreedy(embedding=emb, sampling_ratio=0.1)
    if steps > 0:
        s.coreset_size = steps + 1
    t0, c0 = time.perf_counter(), time.process_time()
    idx = s.select_coreset_idxs()
    t, c = time.perf_counter() - t0, time.process_time() - c0
    m = int(n * 0.1)
    if steps > 0:
        print("anomalib coreset %d x 1536 -> %d (k %d): %d steps %.2f s wall, %.2f s CPU -> extrapolated %.1f s "
              "wall, %.1f s CPU" % (n, m, s.model.n_components, steps, t, c, t * (m - 1) / steps, c * (m - 1) / steps))
        return
    s.model.sparse_random_matrix.numpy().astype(np.float32).tofile("/tmp/pc_bench_proj.f32")
    np.array(idx, np.int64).tofile("/tmp/pc_bench_idx.i64")
    print("anomalib coreset %d x 1536 -> %d (k %d): %.2f s wall, %.2f s CPU" % (n, m, s.model.n_components, t, c))


def predict(size, m):
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel
    model = PatchcoreModel(layers=["layer2", "layer3"], backbone="wide_resnet50_2", pre_trained=False).eval()
    model.memory_bank = torch.randn(m, 1536)
    x = torch.rand(1, 3, size, size) * 4 - 2
    with torch.no_grad():
        model(x)
        ts, cs = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            model(x)
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
        fe = []
        for _ in range(5):
            t0 = time.perf_counter()
            model.feature_extractor(x)
            fe.append(time.perf_counter() - t0)
    print("anomalib predict %dx%d, bank %d x 1536: %.1f ms wall, %.1f ms CPU (backbone alone %.1f ms wall)" %
          (size, size, m, min(ts) * 1e3, min(cs) * 1e3, min(fe) * 1e3))


if __name__ == "__main__":
    torch.set_num_threads(2)
    if sys.argv[1] == "coreset":
        coreset(int(sys.argv[2]), int(sys.argv[3]))
    else:
        predict(int(sys.argv[2]), int(sys.argv[3]))
