"""PyTorch CPU reference timings for bench/bench_efficientad.c: anomalib 2.7's
EfficientAdModel (efficient_ad/torch_model.py, imported as in
tools/gen_efficientad_fixtures.py) with torch's default random init, eval mode,
padding=False, pad_maps=True, teacher mean/std and map quantiles set to the same nonzero
dummies as the C bench, torch.set_num_threads(2), torch.inference_mode (which implies
no_grad). One pass = model(x): teacher + student + autoencoder, both maps padded by 4 and
resized to 256x256, normalised, combined 0.5 (st + ae), score = amax (Algorithm 2).
Latency: batch 1, mean and median of `reps` runs after `warmup` runs; throughput: batch
16, 16 * runs / summed time (its own warm-up only when b16_reps > 1, as the C bench;
b16_reps 0 skips it).
Prints a table and the C bench's JSON lines with "impl":"torch" (appended to
bench/results.jsonl when run from the repo root).

Run: /usr/bin/python3 tools/bench_efficientad_torch.py [reps] [warmup] [b16_reps] [S|M|SM]"""
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_efficientad_fixtures as gef  # noqa: E402


def set_dummy_statistics(m, C=384):
    """The C bench's dummies: mean 0.01 (c % 7), std 0.5 + 0.01 (c % 5), quantiles."""
    c = torch.arange(C, dtype=torch.float32)
    with torch.no_grad():
        m.mean_std["mean"].copy_((0.01 * (c % 7)).view(1, C, 1, 1))
        m.mean_std["std"].copy_((0.5 + 0.01 * (c % 5)).view(1, C, 1, 1))
        for k, v in (("qa_st", 0.1), ("qb_st", 0.9), ("qa_ae", 0.2), ("qb_ae", 1.1)):
            m.quantiles[k].fill_(v)


def time_batch(m, B, warmup, runs):
    x = torch.rand(B, 3, 256, 256)
    ts = []
    with torch.inference_mode():
        for r in range(warmup + runs):
            t0 = time.perf_counter()
            out = m(x)
            out.anomaly_map.numpy()
            out.pred_score.numpy()
            if r >= warmup:
                ts.append(time.perf_counter() - t0)
    return ts


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    reps16 = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    sizes = sys.argv[4].upper() if len(sys.argv) > 4 else "SM"
    threads = 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ta = gef.load_anomalib()
    path = "bench/results.jsonl"
    jsonl = open(path, "a") if os.path.isfile(path) else None
    print("bench_efficientad_torch: torch %s, %d threads, 256x256, batch 1: %d warm-up + %d timed, "
          "batch 16: %d timed" % (torch.__version__, threads, warmup, reps, reps16))
    print("%-12s %12s %12s %10s %14s" % ("model", "params", "b1 mean ms", "b1 med ms", "b16 img/s"))
    for tag, size in (("s", ta.EfficientAdModelSize.S), ("m", ta.EfficientAdModelSize.M)):
        if tag.upper() not in sizes:
            continue
        m = ta.EfficientAdModel(teacher_out_channels=384, model_size=size, padding=False, pad_maps=True)
        set_dummy_statistics(m)
        m.eval()
        params = sum(p.numel() for mod in (m.teacher, m.student, m.ae) for p in mod.parameters())
        t1 = time_batch(m, 1, warmup, reps)
        t16 = time_batch(m, 16, warmup if reps16 > 1 else 0, reps16) if reps16 > 0 else []
        b1_mean, b1_med = 1e3 * sum(t1) / len(t1), 1e3 * statistics.median(t1)
        b16 = 16.0 * len(t16) / sum(t16) if t16 else 0.0
        print("%-12s %12d %12.1f %10.1f %14.3f" % ("EfficientAD-" + tag.upper(), params, b1_mean, b1_med, b16),
              flush=True)
        for name, value, unit in (("b1_latency_mean_ms", b1_mean, "ms"), ("b1_latency_median_ms", b1_med, "ms"),
                                  ("b16_throughput_img_s", b16, "images/s"), ("params", params, "parameters")):
            if name.startswith("b16") and not t16:
                continue
            line = {"bench": "efficientad", "impl": "torch", "name": "effad_%s_%s" % (tag, name), "threads": threads,
                    "value": round(float(value), 4), "unit": unit, "unix_time": int(time.time())}
            if jsonl:
                jsonl.write(json.dumps(line, separators=(",", ":")) + "\n")
                jsonl.flush()
    if jsonl:
        jsonl.close()


if __name__ == "__main__":
    main()
