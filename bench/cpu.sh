#!/usr/bin/env bash
# bench/cpu.sh -- Vigil vs anomalib 2.7's PyTorch models on the CPU, side by side (issue #20).
#
#   bash bench/cpu.sh [--quick] [--models LIST] [--modes infer,train] [--batches 1,16] [--list] ...
#
# Times every method through `vigil bench` (inference; `vigil bench --train` for training steps)
# and anomalib's torch model (tools/bench_cpu_torch.py) by the same protocol, interleaved, each
# round in a fresh process, 2 threads, with each process's peak RSS; prints the ratio table and
# appends bench/results/cpu-<cpu>-<yyyymmdd>.jsonl (+ .md, .log). `bash bench/cpu.sh --help` for
# every option (works without torch). The driver is tools/bench_cpu.py (standard library only).
#
# Environment: VIGIL (default ./vigil: `make` builds it), VIGIL_TORCH_PYTHON (a python with
# torch + anomalib 2.7, default python3; see bench/README.md), PYTHON (the python that runs the
# driver, default python3).
set -u
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "bench/cpu.sh: needs python3 (the driver tools/bench_cpu.py uses its standard library only); set PYTHON" >&2
  exit 2
fi
exec "$PY" tools/bench_cpu.py "$@"
