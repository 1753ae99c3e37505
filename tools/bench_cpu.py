"""bench/cpu.sh's driver (issue #20): Vigil (`vigil bench`) vs anomalib's PyTorch models
(tools/bench_cpu_torch.py) on the CPU, side by side, by one protocol, interleaved.

Standard library only: `--help` and `--list` work without torch. The torch side runs under
$VIGIL_TORCH_PYTHON (else `python3`); when that cannot import torch + anomalib the run stops
with a message saying how to make the venv (bench/README.md).

Protocol, per (model, batch, mode): ROUNDS rounds of each side, alternating (V T, T V, V T,
...: drift in the machine's speed falls on both sides alike); every round is a fresh process
(`vigil bench ... --threads T` / `bench_cpu_torch.py ... --threads T`, OMP/MKL/OpenBLAS
threads = T too) that makes its model, runs WARMUP untimed runs, then RUNS timed runs and
reports their median. A side's number = the median of its round medians. Peak RSS = the
round process's ru_maxrss from wait4 (the same measure for both sides; the largest over
rounds). Inference: a run = the method's predict (vigil) / model(x) under
torch.inference_mode() in eval() (torch), a random image batch in host memory -> maps and
scores in host memory. Training: a run = one optimizer step (vigil bench --train /
anomalib's training_step with its loss, backward, optimizer.step()).

Output: one JSON line per round and side (the side's own line plus harness keys) and one
"cpu_side_by_side" summary line per configuration, appended to
OUT/cpu-<cpu-slug>-<yyyymmdd>.jsonl; the markdown ratio table on stdout and in
OUT/cpu-<cpu-slug>-<yyyymmdd>.md (this run's table; OUT defaults to bench/results).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# model id -> (label, vigil bench arguments: anomalib 2.7's defaults on both sides)
MODELS = {
    "effad-s": ("EfficientAD-S", ["efficientad", "--model", "s"]),
    "effad-m": ("EfficientAD-M", ["efficientad", "--model", "m"]),
    # anomalib's FastflowModel default conv3x3_only=False (Vigil's own default for R18 is True, the paper's)
    "fastflow-r18": ("FastFlow-R18", ["fastflow", "--backbone", "resnet18", "--set", "conv3x3_only=false"]),
    "fastflow-wrn50": ("FastFlow-WRN50", ["fastflow", "--backbone", "wide_resnet50_2", "--set", "conv3x3_only=false"]),
    # anomalib's Cflow: fiber_batch_size 64, hard permutations, lr 1e-4 (Vigil's defaults: the official 256, soft, 2e-4)
    "cflow-wrn50": ("CFLOW-WRN50", ["cflow", "--backbone", "wide_resnet50_2", "--set", "fiber_batch=64",
                                    "--set", "permute_soft=false", "--set", "lr=1e-4"]),
    "stfpm-r18": ("STFPM-R18", ["stfpm", "--backbone", "resnet18"]),
    "padim-r18": ("PaDiM-R18", ["padim", "--backbone", "resnet18"]),
    "patchcore-wrn50": ("PatchCore-WRN50", ["patchcore", "--backbone", "wide_resnet50_2"]),
}
CORE = ["effad-s", "effad-m", "fastflow-r18", "fastflow-wrn50", "cflow-wrn50"]
EXTRA = ["stfpm-r18", "padim-r18", "patchcore-wrn50"]
INFER_ONLY = {"padim-r18", "patchcore-wrn50"}
# training steps: model -> batch (the issue's: FastFlow-WRN50 b8, CFLOW-WRN50, EfficientAD-S b1)
TRAIN = {"effad-s": 1, "fastflow-wrn50": 8, "cflow-wrn50": 1, "fastflow-r18": 8, "stfpm-r18": 8, "effad-m": 1}
TRAIN_DEFAULT = ["effad-s", "fastflow-wrn50", "cflow-wrn50"]
# rough seconds per image and run on 2 cores of a 2020s x86 server (plan estimates and time boxes only)
EST_INFER = {"effad-s": 0.5, "effad-m": 1.3, "fastflow-r18": 0.1, "fastflow-wrn50": 0.65, "cflow-wrn50": 0.8,
             "stfpm-r18": 0.07, "padim-r18": 0.06, "patchcore-wrn50": 0.5}
EST_TRAIN = {"effad-s": 6.0, "effad-m": 15.0, "fastflow-r18": 0.5, "fastflow-wrn50": 2.5, "cflow-wrn50": 3.0,
             "stfpm-r18": 0.3}
START_S = {"vigil": 2.0, "torch": 9.0}   # process start + model construction

# (rounds per side, warmup, runs) per kind of configuration: batch-1 inference, larger
# inference batches, training steps, training steps estimated >= 20 s, >= 45 s
PROTO = {
    "full": {"b1": (3, 2, 5), "bN": (2, 1, 1), "train": (3, 1, 2), "train_slow": (2, 1, 1), "train_slowest": (1, 1, 2)},
    "quick": {"b1": (1, 1, 2), "bN": (1, 0, 1), "train": (1, 1, 1), "train_slow": (1, 0, 1), "train_slowest": (1, 0, 1)},
}
# --part N: the full run in three pieces of <= 15 min each on 2 cores
PARTS = {1: ("infer", "1"), 2: ("infer", "16"), 3: ("train", "1,16")}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown-cpu"


def slug(s):
    s = re.sub(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$", " ", s.lower())
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-") or "cpu"


def plan_configs(a):
    models = []
    for tok in a.models.split(","):
        tok = tok.strip()
        if not tok:
            continue
        if tok == "core":
            models += CORE
        elif tok == "extra":
            models += EXTRA
        elif tok == "all":
            models += CORE + EXTRA
        elif tok in MODELS:
            models.append(tok)
        else:
            raise SystemExit("bench/cpu.sh: unknown model %r (one of %s, or core / extra / all)"
                             % (tok, ", ".join(MODELS)))
    models = list(dict.fromkeys(models))
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("infer", "train"):
            raise SystemExit("bench/cpu.sh: --modes takes infer and/or train (got %r)" % m)
    batches = [int(b) for b in a.batches.split(",") if b.strip()]
    P = PROTO["quick" if a.quick else "full"]
    cfgs = []
    if "infer" in modes:
        for b in batches:
            for m in models:
                n, w, r = P["b1"] if b == 1 else P["bN"]
                cfgs.append({"model": m, "mode": "infer", "batch": b, "rounds": n, "warmup": w, "runs": r})
    if "train" in modes:
        explicit = a.models not in ("core", "all", "extra")
        for m in models:
            if m in INFER_ONLY or m not in TRAIN or (not explicit and m not in TRAIN_DEFAULT):
                continue
            b = a.train_batch.get(m, TRAIN[m])
            e = EST_TRAIN[m] * b
            n, w, r = P["train_slowest"] if e >= 45 else P["train_slow"] if e >= 20 else P["train"]
            cfgs.append({"model": m, "mode": "train", "batch": b, "rounds": n, "warmup": w, "runs": r})
    for c in cfgs:
        if a.rounds:
            c["rounds"] = a.rounds
        if a.warmup is not None:
            c["warmup"] = a.warmup
        if a.runs is not None:
            c["runs"] = a.runs
        per = (EST_INFER if c["mode"] == "infer" else EST_TRAIN)[c["model"]] * c["batch"]
        c["est_run_s"] = per
        c["est_s"] = c["rounds"] * (START_S["vigil"] + START_S["torch"] + 2 * (c["warmup"] + c["runs"]) * per)
    return cfgs


def run_proc(cmd, env, timeout_s, log):
    """Runs cmd; (rc, stdout, wall_s, maxrss_mb, last stderr line) with ru_maxrss from wait4 (the
    process's own peak resident set). Killed after timeout_s (rc 124), or when this driver is
    interrupted (the exception goes on)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        rc, ru = None, None
        try:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid == p.pid:
                    rc = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() - t0 > timeout_s:
                    os.kill(p.pid, signal.SIGKILL)
                    _, status, ru = os.wait4(p.pid, 0)
                    rc = 124
                    break
                time.sleep(0.05)
        except BaseException:   # Ctrl-C, SIGTERM: take the round's process down too
            if rc is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                    os.wait4(p.pid, 0)
                except OSError:
                    pass
                p.returncode = -9
            raise
        p.returncode = rc   # reaped here (wait4), not by Popen
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        so, se = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if log:
        log.write("$ %s\n%s%s[exit %d, %.1f s, maxrss %.1f MiB]\n" % (" ".join(cmd), so, se, rc, wall,
                                                                     ru.ru_maxrss / 1024.0))
        log.flush()
    tail = (se.strip().splitlines() or [""])[-1]
    return rc, so, wall, ru.ru_maxrss / 1024.0, tail


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def side_cmd(side, c, a, extra):
    if side == "vigil":
        cmd = [a.vigil, "bench"] + MODELS[c["model"]][1]
        if c["mode"] == "train":
            cmd.append("--train")
            if c["model"].startswith("effad") and extra.get("penalty"):
                cmd += ["--set", "penalty_dir=" + extra["penalty"]]
        return cmd + ["--batch", str(c["batch"]), "--warmup", str(c["warmup"]), "--runs", str(c["runs"]),
                      "--threads", str(a.threads)]
    return [a.python, os.path.join(HERE, "bench_cpu_torch.py"), "--model", c["model"], "--mode", c["mode"],
            "--batch", str(c["batch"]), "--warmup", str(c["warmup"]), "--runs", str(c["runs"]),
            "--threads", str(a.threads)]


def fmt(x, nd=1):
    if x is None:
        return "-"
    return ("%%.%df" % nd) % x


def table(rows, meta):
    L = []
    L.append("## Vigil vs PyTorch %s (anomalib %s) on the CPU: %s, %d threads" %
             (meta.get("torch") or "?", meta.get("anomalib") or "?", meta["cpu"], meta["threads"]))
    L.append("")
    L.append("%s, %s protocol (the day's runs of it; the last run of a configuration counts): per configuration "
             "R rounds per side (R x (warm-up + timed runs) below), interleaved, each a fresh process; median of the "
             "rounds' medians; peak RSS = the round process's ru_maxrss (wait4), largest over rounds. Vigil %s. "
             "Random weights, 256 x 256, f32. The last run took %.0f s." %
             (meta["date"], meta["protocol"], meta.get("vigil_commit") or "?", meta["elapsed_s"]))
    L.append("")
    L.append("| model | batch | mode | rounds x (warm-up + runs) | vigil ms | torch ms | speed-up | vigil RSS MiB "
             "| torch RSS MiB (import) | RSS ratio | >= 1.5x and RSS <= torch |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        def ms(v, b):
            if v is None:
                return "-"
            return "%s (%s img/s)" % (fmt(v), fmt(1e3 * b / v, 2)) if b > 1 else fmt(v)
        sp = r.get("speedup")
        rr = r.get("rss_ratio")
        verdict = r.get("verdict", "-")
        L.append("| %s | %d | %s | %d x (%d + %d) | %s | %s | %s | %s | %s | %s | %s |" % (
            MODELS[r["model_id"]][0], r["batch"], r["mode"], r["rounds"], r["warmup"], r["runs"],
            ms(r.get("vigil_ms"), r["batch"]),
            ms(r.get("torch_ms"), r["batch"]), ("%.2fx" % sp) if sp else "-", fmt(r.get("vigil_rss_mb"), 0),
            ("%s (%s)" % (fmt(r.get("torch_rss_mb"), 0), fmt(r.get("torch_import_rss_mb"), 0)))
            if r.get("torch_rss_mb") else "-", ("%.2f" % rr) if rr else "-", verdict))
    L.append("")
    L.append("speed-up = torch ms / vigil ms (> 1: Vigil faster); RSS ratio = vigil / torch (< 1: Vigil smaller); "
             "torch's import column = its process after `import torch` + anomalib's model module, before any "
             "model exists. Issue #20's bar: PASS when speed-up >= 1.5 and vigil RSS <= torch RSS.")
    notes = [r for r in rows if r.get("note")]
    for r in notes:
        L.append("- %s b%d %s: %s" % (MODELS[r["model_id"]][0], r["batch"], r["mode"], r["note"]))
    return "\n".join(L) + "\n"


def merged_rows(jsonl_path, protocol, rows):
    """The day's summary lines of this protocol (earlier runs, e.g. the other --part pieces, then
    this run's; the last line of a model x batch x mode wins), in table order."""
    best = {}
    try:
        with open(jsonl_path) as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if d.get("bench") == "cpu_side_by_side" and d.get("harness_protocol") == protocol and \
                        d.get("model_id") in MODELS:
                    best[(d["model_id"], d["batch"], d["mode"])] = d
    except OSError:
        pass
    for r in rows:
        best[(r["model_id"], r["batch"], r["mode"])] = r
    order = list(MODELS)
    return sorted(best.values(), key=lambda r: (r["mode"] != "infer", r["batch"], order.index(r["model_id"])))


def main():
    ap = argparse.ArgumentParser(
        prog="bash bench/cpu.sh", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Vigil vs anomalib 2.7's PyTorch models on the CPU, side by side (issue #20).",
        epilog=__doc__.split("\n\n", 1)[1] + """
Models: %s (core, the default), %s (extra: --models extra or all).
Training steps (with --modes train): %s; also fastflow-r18, stfpm-r18, effad-m when named.
Protocols (rounds per side, warmup, runs) for batch-1 inference (b1), larger batches (bN),
training steps (train), and training steps estimated >= 20 s (train_slow) or >= 45 s (train_slowest):
  full (default) %s
  --quick        %s
The full run is about 30 min on 2 cores; --part 1, 2, 3 are its three pieces of <= 15 min.

Examples:
  bash bench/cpu.sh                                  # everything (see --list for the time estimate)
  bash bench/cpu.sh --part 1; bash bench/cpu.sh --part 2; bash bench/cpu.sh --part 3   # the same in pieces
  bash bench/cpu.sh --quick --models effad-s --batches 1
  bash bench/cpu.sh --models fastflow-wrn50,cflow-wrn50 --modes train
  VIGIL_TORCH_PYTHON=venv/bin/python bash bench/cpu.sh --list
""" % (", ".join(CORE), ", ".join(EXTRA), ", ".join("%s b%d" % (m, TRAIN[m]) for m in TRAIN_DEFAULT),
       PROTO["full"], PROTO["quick"]))
    ap.add_argument("--quick", action="store_true", help="1 round, few runs (a smoke test of the harness)")
    ap.add_argument("--models", default="core", help="comma list of model ids, or core / extra / all (default core)")
    ap.add_argument("--modes", default="infer,train", help="infer and/or train (default both)")
    ap.add_argument("--batches", default="1,16", help="inference batch sizes (default 1,16)")
    ap.add_argument("--train-batch", action="append", default=[], metavar="MODEL=B",
                    help="training batch of a model (default: effad-s=1 fastflow-wrn50=8 cflow-wrn50=1)")
    ap.add_argument("--part", type=int, choices=sorted(PARTS),
                    help="one of the full run's three pieces (each <= 15 min on 2 cores): 1 = inference at "
                         "batch 1, 2 = inference at batch 16, 3 = training steps (sets --modes / --batches)")
    ap.add_argument("--rounds", type=int, default=0,
                    help="rounds per side for every configuration (default: 3 for batch-1 inference and short "
                         "training steps, 2 for the rest; --quick 1)")
    ap.add_argument("--warmup", type=int, default=None, help="override every configuration's warm-up runs")
    ap.add_argument("--runs", type=int, default=None, help="override every configuration's timed runs")
    ap.add_argument("--threads", type=int, default=2, help="compute threads of both sides (default 2)")
    ap.add_argument("--vigil", default=os.environ.get("VIGIL", "./vigil"),
                    help="the vigil binary (default $VIGIL, else ./vigil: build it with make)")
    ap.add_argument("--python", default=os.environ.get("VIGIL_TORCH_PYTHON") or "python3",
                    help="python with torch + anomalib 2.7 (default $VIGIL_TORCH_PYTHON, else python3)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                    help="where the .jsonl (appended) and .md go (default bench/results)")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="start no new round after this many seconds (0 = none); what is left says SKIPPED")
    ap.add_argument("--list", action="store_true", help="print the plan and its time estimate; run nothing")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # a time box's SIGTERM stops the round's process too
    tb = {}
    for s in a.train_batch:
        k, _, v = s.partition("=")
        if k not in TRAIN or not v.isdigit() or int(v) < 1:
            raise SystemExit("bench/cpu.sh: --train-batch MODEL=B with MODEL one of %s" % ", ".join(TRAIN))
        tb[k] = int(v)
    a.train_batch = tb
    if a.part:
        a.modes, a.batches = PARTS[a.part]
    cfgs = plan_configs(a)
    if not cfgs:
        raise SystemExit("bench/cpu.sh: nothing to run (check --models / --modes)")
    est = sum(c["est_s"] for c in cfgs)
    if a.list:
        print("%d configurations; estimated %.0f min on 2 cores:" % (len(cfgs), est / 60))
        for c in cfgs:
            print("  %-16s %-5s b%-3d %d rounds per side x (warmup %d + runs %d)  ~%.0f s"
                  % (c["model"], c["mode"], c["batch"], c["rounds"], c["warmup"], c["runs"], c["est_s"]))
        return 0
    # ---- the two sides exist?
    vig = a.vigil if os.path.isabs(a.vigil) else os.path.join(ROOT, a.vigil)
    if not (os.path.isfile(vig) and os.access(vig, os.X_OK)):
        sys.stderr.write("bench/cpu.sh: no vigil binary at %s (build it: make; or --vigil PATH / $VIGIL)\n" % a.vigil)
        return 2
    a.vigil = vig
    h = subprocess.run([vig, "bench", "--help"], capture_output=True, text=True, cwd=ROOT)
    if "--train" not in h.stdout + h.stderr and any(c["mode"] == "train" for c in cfgs):
        sys.stderr.write("bench/cpu.sh: %s has no `vigil bench --train` (an older build: rebuild it)\n" % a.vigil)
        return 2
    if shutil.which(a.python) is None and not os.path.isfile(a.python):
        sys.stderr.write("bench/cpu.sh: the torch python %r is not found. Set VIGIL_TORCH_PYTHON to a python with "
                         "torch + anomalib 2.7 (bench/README.md: python3 -m venv venv && venv/bin/pip install "
                         "anomalib==2.7.0)\n" % a.python)
        return 2
    chk = subprocess.run([a.python, os.path.join(HERE, "bench_cpu_torch.py"), "--check"], capture_output=True,
                         text=True, cwd=ROOT)
    if chk.returncode != 0:
        sys.stderr.write(chk.stderr or chk.stdout)
        sys.stderr.write("bench/cpu.sh: the PyTorch reference is missing (%s cannot import torch + anomalib); "
                         "set VIGIL_TORCH_PYTHON (bench/README.md)\n" % a.python)
        return 2
    versions = chk.stdout.strip()
    m_t = re.search(r"torch (\S+), anomalib (\S+)", versions)
    # ---- output files
    cpu = cpu_model()
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, "cpu-%s-%s" % (slug(cpu), day))
    jsonl_path, md_path, log_path = stem + ".jsonl", stem + ".md", stem + ".log"
    run_id = int(time.time())
    protocol = "quick" if a.quick else "full"
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(a.threads)
    env.pop("VIGIL_THREADS", None)
    work = tempfile.mkdtemp(prefix="vigil-cpubench-")
    extra = {}
    if any(c["mode"] == "train" and c["model"].startswith("effad") for c in cfgs):
        # EfficientAD's penalty images (anomalib: one ImageNette image per step): a few synthetic ones
        rc, _, _, _, tail = run_proc([vig, "synth", "--out", os.path.join(work, "pen"), "--categories", "woven",
                                      "--train", "4", "--test", "2", "--val", "2", "--threads", str(a.threads)],
                                     env, 300, None)
        if rc == 0:
            extra["penalty"] = os.path.join(work, "pen", "woven", "train")
        else:
            sys.stderr.write("bench/cpu.sh: vigil synth failed (%s): EfficientAD trains without its penalty term\n"
                             % tail)
    print("bench/cpu.sh: %s, %d threads; %s; vigil %s; %d configurations (%s protocol), "
          "estimated %.0f min; results %s" % (cpu, a.threads, versions, a.vigil, len(cfgs), protocol, est / 60,
                                             jsonl_path), flush=True)
    t_start = time.monotonic()
    rows = []
    meta = {"cpu": cpu, "threads": a.threads, "date": day, "protocol": protocol,
            "torch": m_t.group(1) if m_t else None, "anomalib": m_t.group(2) if m_t else None}
    with open(jsonl_path, "a") as jf, open(log_path, "a") as log:
        for c in cfgs:
            res = {"vigil": [], "torch": []}
            errs = []
            skipped = False
            # a time box against hangs only: generous (a busy machine is several times slower)
            box = max(900.0, 12 * (c["warmup"] + c["runs"]) * c["est_run_s"] + 300)
            for r in range(c["rounds"]):
                if a.budget_s and time.monotonic() - t_start > a.budget_s:
                    skipped = True
                    break
                for side in (("vigil", "torch") if r % 2 == 0 else ("torch", "vigil")):
                    cmd = side_cmd(side, c, a, extra)
                    rc, so, wall, rss, tail = run_proc(cmd, env, box, log)
                    d = last_json(so) if rc == 0 else None
                    if d is None:
                        errs.append("%s round %d: %s" % (side, r + 1, "timed out after %.0f s" % box if rc == 124
                                                         else "exit %d: %s" % (rc, tail)))
                        print("  %-16s %-5s b%-3d round %d %-5s FAILED (%s)" % (c["model"], c["mode"], c["batch"],
                                                                              r + 1, side, errs[-1]), flush=True)
                        continue
                    d.update({"harness": "bench/cpu.sh", "run_id": run_id, "harness_protocol": protocol,
                              "model_id": c["model"], "round": r + 1, "impl": side, "proc_peak_rss_mb": rss,
                              "proc_wall_s": wall})
                    d.setdefault("mode", c["mode"])
                    jf.write(json.dumps(d, separators=(",", ":")) + "\n")
                    jf.flush()
                    res[side].append(d)
                    if side == "vigil":
                        meta["vigil_commit"] = d.get("vigil_commit")
                    print("  %-16s %-5s b%-3d round %d %-5s median %10.1f ms  peak RSS %7.0f MiB  (%.0f s)"
                          % (c["model"], c["mode"], c["batch"], r + 1, side, d["median_ms"], rss, wall), flush=True)
            row = {"bench": "cpu_side_by_side", "run_id": run_id, "harness_protocol": protocol, "model_id": c["model"],
                   "model": MODELS[c["model"]][0], "mode": c["mode"], "batch": c["batch"], "warmup": c["warmup"],
                   "runs": c["runs"], "rounds": c["rounds"], "threads": a.threads, "cpu": cpu, "torch": meta["torch"],
                   "anomalib": meta["anomalib"], "unix_time": int(time.time())}
            for side in ("vigil", "torch"):
                if res[side]:
                    row[side + "_ms"] = statistics.median(x["median_ms"] for x in res[side])
                    row[side + "_round_medians_ms"] = [round(x["median_ms"], 3) for x in res[side]]
                    row[side + "_rss_mb"] = max(x["proc_peak_rss_mb"] for x in res[side])
            if res["torch"]:
                row["torch_import_rss_mb"] = max(x.get("import_rss_mb", 0) for x in res["torch"])
            if row.get("vigil_ms") and row.get("torch_ms"):
                row["speedup"] = row["torch_ms"] / row["vigil_ms"]
                row["rss_ratio"] = row["vigil_rss_mb"] / row["torch_rss_mb"]
                row["pass"] = row["speedup"] >= 1.5 and row["vigil_rss_mb"] <= row["torch_rss_mb"]
                row["verdict"] = "PASS" if row["pass"] else "FAIL (%s)" % " and ".join(
                    w for w, bad in (("speed", row["speedup"] < 1.5), ("RSS", row["rss_ratio"] > 1)) if bad)
            else:
                row["verdict"] = "SKIPPED" if skipped and not errs else "no result"
            if skipped:
                row["note"] = "SKIPPED after round %d: --budget-s %.0f spent" % (len(res["vigil"]), a.budget_s)
            if errs:
                row["note"] = "; ".join(errs)[:400]
            jf.write(json.dumps(row, separators=(",", ":")) + "\n")
            jf.flush()
            rows.append(row)
    meta["elapsed_s"] = time.monotonic() - t_start
    shutil.rmtree(work, ignore_errors=True)
    md = table(merged_rows(jsonl_path, protocol, rows), meta)
    tmp = md_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(md)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, md_path)
    print()
    print(md)
    print("bench/cpu.sh: %.0f s; %s (+ .md, .log)" % (meta["elapsed_s"], jsonl_path))
    return 0 if all(r.get("vigil_ms") and r.get("torch_ms") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
