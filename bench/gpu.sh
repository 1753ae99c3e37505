#!/usr/bin/env bash
# bench/gpu.sh -- the GPU session in one command (issue #8): build with CUDA, run the tests,
# time Vigil and the PyTorch reference by the EfficientAD paper's protocol, print the table.
#
#   bash bench/gpu.sh [STEP...]        run from the repository root on the GPU machine
#
# Steps (in the order given; default: env build test bench torch table):
#   env       nvidia-smi, nvcc, python3/torch versions
#   build     make -j16 CUDA=1 (+ the three CUDA test programs)
#   test      make CUDA=1 test (all tests, log), then test_cuda, test_cuda_graph, test_cuda_methods
#   sanitize  compute-sanitizer memcheck on test_cuda and test_cuda_methods (if installed)
#   paper     build/cuda/vigil bench --paper (the EfficientAD paper's protocol exactly: 1000 warm-up + 1000
#             timed runs, f16, batch 1 and 16): EfficientAD-S/M, FastFlow-WRN50, CFLOW-WRN50
#   bench     build/cuda/vigil bench: EfficientAD-S/M, FastFlow-WRN50, CFLOW-WRN50; f16, f32;
#             batch 1 and 16 (EfficientAD-S f16 with --graph and --no-graph)
#   torch     tools/bench_gpu_torch.py eager, f16 + f32, batch 1 + 16 (when torch sees a GPU)
#   compile   tools/bench_gpu_torch.py torch.compile (default and reduce-overhead), f16, time-boxed
#   distill   vigil distill --device cuda: EfficientAD-S teacher pretraining (WRN-101 targets at 512,
#             PDN-S at 256, batch 16, random weights, synthetic images) for 40 iterations: img/s and
#             the time 60,000 iterations would take (one JSON line)
#   table     markdown table of the JSON lines: Vigil vs torch per model/dtype/batch, + issue #8's bar;
#             then `vigil bench-table` over bench/results/ and this run: every device, the paper's rows beside
#   all       env build test sanitize paper bench torch compile distill table (more than one 10-minute command)
# The build is for this GPU's architecture only (CUDA_ARCH from nvidia-smi's compute_cap; set CUDA_ARCH
# to override): the fat binary for every architecture is `make CUDA=1` without it.
#
# Results: $OUT/bench-<gpu>-<yyyymmdd>.jsonl (./bench/results/ when $OUT is unset), the steps'
# logs next to it in gpu-<gpu>-<yyyymmdd>.log, the table in table-<gpu>-<yyyymmdd>.md (3 files).
# A master copy lives in build/gpubench/ so a later call on the same (warm) machine adds to
# it; each call copies the cumulative file out again. Every step is time-boxed (timeout) and
# the script keeps going after a failed step; the exit status is 1 if any step failed.
# Environment: DEADLINE_S (default 570): the invocation starts nothing new after this many
# seconds and shortens time boxes to fit (the device command limit is 600 s); skipped work says
# SKIPPED -- run those steps again. STEP_TIMEOUT_SCALE (default 1) multiplies every time box;
# RUNS / WARMUP (default 50 / 10) for both benches. The table also reads earlier calls'
# results copied into the tree as bench/results/bench-<gpu>-*.jsonl.
set -u
cd "$(dirname "$0")/.." || exit 2

STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(env build test bench torch table)
[ "${STEPS[0]}" = all ] && STEPS=(env build test sanitize paper bench torch compile distill table)
case " ${STEPS[*]} " in *" -h "*|*" --help "*|*" help "*) awk 'NR > 1 && /^set -u/ {exit} NR > 1' "$0"; exit 0 ;; esac

START=$SECONDS
DEADLINE=${DEADLINE_S:-570}   # the whole invocation stops starting work after this (device limit 600 s)
left() { echo $(( DEADLINE - (SECONDS - START) )); }
SCALE=${STEP_TIMEOUT_SCALE:-1}
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-10}
JOBS=${JOBS:-16}
tb() { echo $(( $1 * SCALE )); }   # a time box in seconds, scaled

# ---- where things go
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin /opt/cuda/bin; do
    [ -x "$d/nvcc" ] && { export PATH="$d:$PATH"; break; }
  done
fi
GPU_NAME=""
command -v nvidia-smi >/dev/null 2>&1 && GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
SLUG=$(printf '%s' "${GPU_NAME:-nogpu}" | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9]+/-/g; s/^-+|-+$//g')
DAY=$(date -u +%Y%m%d)
RES=${OUT:-bench/results}
MASTER=build/gpubench
mkdir -p "$RES" "$MASTER" || exit 2
JSONL="$MASTER/bench-$SLUG-$DAY.jsonl"
touch "$JSONL"
VIGIL=build/cuda/vigil
PY=${PYTHON:-python3}
FAILED=()

say() { printf '\n==== %s [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
need_gpu() {
  if [ -z "$GPU_NAME" ]; then
    echo "bench/gpu.sh: step '$1' needs an NVIDIA GPU, and none was found (nvidia-smi missing or lists no GPU)." >&2
    return 1
  fi
}
need_nvcc() {
  if ! command -v nvcc >/dev/null 2>&1; then
    echo "bench/gpu.sh: step '$1' needs the CUDA Toolkit: no nvcc on PATH or in /usr/local/cuda/bin." >&2
    return 1
  fi
}
torch_gpu() { "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; }
# run CMD under a time box, output to the step log; a time-out is reported as such
boxed() {
  local secs=$1 l; shift
  l=$(( $(left) - 5 ))
  if [ "$l" -lt 10 ]; then echo "bench/gpu.sh: SKIPPED (DEADLINE_S=${DEADLINE}s of this invocation spent): $*"; return 3; fi
  [ "$secs" -gt "$l" ] && secs=$l
  echo "\$ $*  (time box ${secs}s)"
  timeout --kill-after=10 "$secs" "$@"
  local rc=$?
  [ $rc -eq 124 ] && echo "bench/gpu.sh: TIMED OUT after ${secs}s: $*"
  [ $rc -ne 0 ] && echo "bench/gpu.sh: exit $rc: $*"
  return $rc
}
# the python budget (stop starting configs): its own, or what is left of the invocation less 100 s
# (one config, a WRN50 compile, can take that long)
pybudget() { local b l; b=$(tb "$1"); l=$(( $(left) - 100 )); [ "$l" -lt 30 ] && l=30; [ "$b" -gt "$l" ] && b=$l; echo "$b"; }
# this GPU's architecture ("90" for an H100), so the build compiles one target, not the fat binary
if [ -z "${CUDA_ARCH:-}" ] && command -v nvidia-smi >/dev/null 2>&1; then
  CUDA_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
fi
MAKE_ARCH=()
[ -n "${CUDA_ARCH:-}" ] && MAKE_ARCH=("CUDA_ARCH=$CUDA_ARCH")
ensure_built() {
  [ -x "$VIGIL" ] && make -q CUDA=1 ${MAKE_ARCH[@]+"${MAKE_ARCH[@]}"} "$VIGIL" >/dev/null 2>&1 && return 0
  boxed "$(tb 480)" make -j"$JOBS" CUDA=1 ${MAKE_ARCH[@]+"${MAKE_ARCH[@]}"} all
}

# ---- steps (each prints to its log; return status = step status)
step_env() {
  date -u
  echo "gpu: ${GPU_NAME:-none}"
  command -v nvidia-smi >/dev/null && nvidia-smi
  command -v nvcc >/dev/null && nvcc --version || echo "nvcc: not found"
  command -v compute-sanitizer >/dev/null && compute-sanitizer --version | head -2 || echo "compute-sanitizer: not found"
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' \
    || echo "python3/torch: not importable"
  nproc; git log --oneline -1 2>/dev/null; git status --short 2>/dev/null | head -20
  return 0
}

step_build() {
  need_nvcc build || return 1
  echo "build: CUDA_ARCH=${CUDA_ARCH:-(every architecture the Toolkit supports)}"
  boxed "$(tb 480)" make -j"$JOBS" CUDA=1 ${MAKE_ARCH[@]+"${MAKE_ARCH[@]}"} all || return 1
  boxed "$(tb 240)" make -j"$JOBS" CUDA=1 ${MAKE_ARCH[@]+"${MAKE_ARCH[@]}"} build/cuda/tests/test_cuda \
    build/cuda/tests/test_cuda_graph build/cuda/tests/test_cuda_methods build/cuda/tests/test_gpu_build
}

step_test() {
  need_nvcc test && need_gpu test || return 1
  local rc=0
  boxed "$(tb 420)" make -j"$JOBS" CUDA=1 ${MAKE_ARCH[@]+"${MAKE_ARCH[@]}"} test || rc=1
  for t in test_cuda test_cuda_graph test_cuda_methods test_gpu_build; do
    say "$t"
    boxed "$(tb 180)" "build/cuda/tests/$t" || rc=1
  done
  return $rc
}

step_sanitize() {
  need_gpu sanitize || return 1
  if ! command -v compute-sanitizer >/dev/null 2>&1; then echo "compute-sanitizer not installed: skipped"; return 0; fi
  local rc=0
  for t in test_cuda test_cuda_methods; do
    [ -x "build/cuda/tests/$t" ] || { echo "build/cuda/tests/$t missing (run the build step)"; rc=1; continue; }
    say "compute-sanitizer memcheck $t"
    boxed "$(tb 270)" compute-sanitizer --tool memcheck --error-exitcode 99 "build/cuda/tests/$t" || rc=1
  done
  return $rc
}

# the EfficientAD paper's protocol exactly (vigil bench --paper), the rows of its Table 17 / Figure 6
step_paper() {
  need_nvcc paper && need_gpu paper || return 1
  ensure_built || return 1
  local rc=0 t0=$SECONDS budget r
  budget=$(tb 400)
  for r in "efficientad --model s" "efficientad --model m" "fastflow --backbone wide_resnet50_2" \
           "cflow --backbone wide_resnet50_2 --no-graph"; do
    if [ $((SECONDS - t0)) -ge "$budget" ] || [ "$(left)" -lt 60 ]; then
      echo "paper: time budget spent; SKIPPED: $r"; rc=1; continue
    fi
    say "vigil bench $r --paper"
    # shellcheck disable=SC2086
    boxed "$(tb 200)" "$VIGIL" bench $r --device cuda --paper --json "$JSONL" || rc=1
  done
  return $rc
}

step_bench() {
  need_nvcc bench && need_gpu bench || return 1
  ensure_built || return 1
  local rc=0 t0=$SECONDS budget
  budget=$(tb 540)
  # the acceptance-critical runs first; each invocation times batch 1 and 16
  local runs=(
    "efficientad --model s --dtype f16 --graph"
    "efficientad --model s --dtype f16 --no-graph"
    "SERIAL efficientad --model s --dtype f16 --graph"
    "efficientad --model m --dtype f16"
    "fastflow --backbone wide_resnet50_2 --dtype f16"
    "cflow --backbone wide_resnet50_2 --dtype f16"
    "efficientad --model s --dtype f32"
    "efficientad --model m --dtype f32"
    "fastflow --backbone wide_resnet50_2 --dtype f32"
    "cflow --backbone wide_resnet50_2 --dtype f32"
    "TF32 efficientad --model s --dtype f32"
    "TF32 fastflow --backbone wide_resnet50_2 --dtype f32"
  )
  for r in "${runs[@]}"; do
    if [ $((SECONDS - t0)) -ge "$budget" ] || [ "$(left)" -lt 30 ]; then
      echo "bench: time budget spent (step ${budget}s / DEADLINE_S ${DEADLINE}s); SKIPPED: $r"; rc=1; continue
    fi
    say "vigil bench $r"
    # "TF32 ...": f32 GEMMs on TF32 tensor cores (VIGIL_TF32=1), rows labelled tf32 in the table
    local envs=()
    # "SERIAL ...": EfficientAD's three networks on one stream (VIGIL_CUDA_BRANCHES=0), rows
    # labelled <dtype>-serial: what the concurrent branches gain
    case "$r" in TF32\ *) envs=(env VIGIL_TF32=1); r=${r#TF32 } ;; SERIAL\ *) envs=(env VIGIL_CUDA_BRANCHES=0); r=${r#SERIAL } ;; esac
    # shellcheck disable=SC2086
    if ! boxed "$(tb 150)" ${envs[@]+"${envs[@]}"} "$VIGIL" bench $r --device cuda --batch 1 --batch 16 --warmup "$WARMUP" --runs "$RUNS" \
      --json "$JSONL"; then
      rc=1
      case "$r" in
        *graph*) ;;
        *) say "vigil bench $r --no-graph (the default CUDA-graph run failed)"
           # shellcheck disable=SC2086
           boxed "$(tb 150)" ${envs[@]+"${envs[@]}"} "$VIGIL" bench $r --no-graph --device cuda --batch 1 --batch 16 --warmup "$WARMUP" \
             --runs "$RUNS" --json "$JSONL" ;;
      esac
    fi
  done
  return $rc
}

step_torch() {
  need_gpu torch || return 1
  if ! torch_gpu; then echo "torch: '$PY -c import torch; torch.cuda.is_available()' is not true: skipped"; return 1; fi
  boxed "$(tb 420)" "$PY" tools/bench_gpu_torch.py --device cuda --modes eager --dtype f16 f32 --batch 1 16 \
    --warmup "$WARMUP" --runs "$RUNS" --budget-s "$(pybudget 360)" --json "$JSONL" --check || return 1
  # torch's default f32 (TF32 convolutions), against vigil's VIGIL_TF32=1 rows
  boxed "$(tb 120)" "$PY" tools/bench_gpu_torch.py --device cuda --modes eager --dtype f32 --tf32 --batch 1 16 \
    --models effad-s fastflow --warmup "$WARMUP" --runs "$RUNS" --budget-s "$(pybudget 90)" --json "$JSONL"
}

step_compile() {
  need_gpu compile || return 1
  if ! torch_gpu; then echo "torch: no CUDA torch: skipped"; return 1; fi
  # compiles are slow (tens of seconds each): f16 only, the most important models first; the
  # budget stops starting new configs, recorded as "skipped: time budget" lines
  boxed "$(tb 570)" "$PY" tools/bench_gpu_torch.py --device cuda --modes compile-cg compile --dtype f16 --batch 1 16 \
    --models effad-s effad-m fastflow cflow --warmup "$WARMUP" --runs "$RUNS" --budget-s "$(pybudget 450)" --json "$JSONL"
}

step_distill() {
  need_nvcc distill && need_gpu distill || return 1
  ensure_built || return 1
  local img="$MASTER/distill-images" log="$MASTER/distill-run.log" line rate ext pdn
  if [ ! -d "$img/woven/train" ]; then
    boxed "$(tb 60)" "$VIGIL" synth --out "$img" --categories woven --train 96 --test 2 --val 1 --force || return 1
  fi
  # the train images only (the folder is searched recursively: test images and masks stay out)
  boxed "$(tb 240)" "$VIGIL" distill --images "$img/woven/train" --out "$MASTER/teacher-bench.safetensors" --device cuda \
    --backbone wide_resnet101_2 --model s --iters 40 --batch 16 --stats-images 32 --save-every 0 --log-every 10 \
    --workers "$JOBS" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  # the last progress line: "distill: iter 40/40 loss L (mean of 10) R img/s (extractor E ms/img, PDN step P ms/iter) ..."
  line=$(grep -E '^distill: iter [0-9]+/' "$log" | tail -1)
  rate=$(printf '%s' "$line" | sed -nE 's/.* ([0-9.]+) img\/s.*/\1/p')
  ext=$(printf '%s' "$line" | sed -nE 's/.*extractor ([0-9.]+) ms\/img.*/\1/p')
  pdn=$(printf '%s' "$line" | sed -nE 's/.*PDN step ([0-9.]+) ms\/iter.*/\1/p')
  if [ -n "$rate" ]; then
    printf '{"bench":"vigil_distill","gpu":"%s","backbone":"wide_resnet101_2","model":"s","view":256,"batch":16,"images_s":%s,"extractor_ms_per_image":%s,"pdn_step_ms":%s,"hours_for_60000_iters":%s,"unix_time":%s}\n' \
      "${GPU_NAME}" "$rate" "${ext:-null}" "${pdn:-null}" "$(awk -v r="$rate" 'BEGIN { printf "%.2f", 60000 * 16 / r / 3600 }')" \
      "$(date +%s)" >> "$JSONL"
  fi
  return "$rc"
}

# markdown table from JSON lines (awk only: no python needed); the last line of a config wins
step_table() {
  local tbl="$MASTER/table-$SLUG-$DAY.md" f CARRIED=""
  # results of earlier calls copied into the tree (bench/results/bench-<gpu>-*.jsonl) come first
  for f in bench/results/bench-"$SLUG"-*.jsonl; do
    [ -f "$f" ] && [ "$(cd "$(dirname "$f")" && pwd)" != "$(cd "$RES" && pwd)" ] && CARRIED="$CARRIED $f"
  done
  [ -n "$CARRIED" ] && echo "table: also reading$CARRIED"
  awk -v gpu="${GPU_NAME:-unknown GPU}" '
    function get(line, key,   i, s) {
      i = index(line, "\"" key "\":"); if (!i) return "";
      s = substr(line, i + length(key) + 3);
      if (substr(s, 1, 1) == "\"") { s = substr(s, 2); return substr(s, 1, index(s, "\"") - 1) }
      if (match(s, /^[^,}]*/)) return substr(s, RSTART, RLENGTH); return ""
    }
    function fmt(v,   x) { if (v == "") return "-"; x = v + 0; return sprintf(x < 1 ? "%.3f" : x < 100 ? "%.2f" : "%.0f", x) }
    {
      if (get($0, "bench") == "vigil_distill") { dist = $0; next }
      dev = get($0, "device"); if (dev != "cuda") next
      m = get($0, "method"); v = get($0, "model"); if (v == "") v = get($0, "backbone")
      name = (m == "efficientad") ? "EfficientAD-" toupper(v) : m "-" (v == "wide_resnet50_2" ? "WRN50" : v)
      impl = get($0, "impl"); if (impl == "") impl = (get($0, "graph") == "true") ? "vigil-graph" : "vigil"
      dt = get($0, "dtype"); if (get($0, "tf32") == "true") dt = "tf32"
      if (m == "efficientad" && get($0, "cuda_branches") == "false") dt = dt "-serial"
      k = name SUBSEP dt SUBSEP get($0, "batch")
      if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      err = get($0, "error")
      ms[k, impl] = (err != "") ? "" : get($0, "mean_ms"); ips[k, impl] = (err != "") ? "" : get($0, "images_s")
      if (err != "") note[k, impl] = err
    }
    END {
      nimp = split("vigil vigil-graph torch-eager torch-compile torch-compile-cudagraphs", I, " ")
      printf "## Vigil vs PyTorch, %s (mean ms per batch; batch 16 also images/s)\n\n", gpu
      printf "| model | dtype | batch |"; for (j = 1; j <= nimp; j++) printf " %s |", I[j]
      printf " torch-eager / best vigil | best torch / best vigil |\n|---|---|---|"
      for (j = 1; j <= nimp + 2; j++) printf "---|"; printf "\n"
      for (r = 1; r <= n; r++) {
        k = order[r]; split(k, p, SUBSEP)
        printf "| %s | %s | %s |", p[1], p[2], p[3]
        bv = ""; bt = ""
        for (j = 1; j <= nimp; j++) {
          x = ms[k, I[j]]
          if (x == "") { printf " %s |", ((k, I[j]) in note) ? "failed" : "-"; continue }
          if (p[3] + 0 > 1) printf " %s (%s/s) |", fmt(x), fmt(ips[k, I[j]]); else printf " %s |", fmt(x)
          if (I[j] ~ /^vigil/) { if (bv == "" || x + 0 < bv + 0) bv = x }
          else if (bt == "" || x + 0 < bt + 0) bt = x
        }
        te = ms[k, "torch-eager"]
        printf " %s | %s |\n", (te != "" && bv != "") ? sprintf("%.2fx", te / bv) : "-", (bt != "" && bv != "") ? sprintf("%.2fx", bt / bv) : "-"
      }
      printf "\nRatios > 1: Vigil is faster. Protocol: host-to-device copy of a pinned batch -> forward -> anomaly map on the host; mean of the timed runs after warm-up.\n"
      for (r = 1; r <= n; r++) { k = order[r]; for (j = 1; j <= nimp; j++) if ((k, I[j]) in note) { split(k, p, SUBSEP); printf "- %s %s b%s %s: %s\n", p[1], p[2], p[3], I[j], note[k, I[j]] } }
      k1 = "EfficientAD-S" SUBSEP "f16" SUBSEP "1"; k16 = "EfficientAD-S" SUBSEP "f16" SUBSEP "16"
      l = ""; t = ""
      for (j = 1; j <= 2; j++) {
        if (ms[k1, I[j]] != "" && (l == "" || ms[k1, I[j]] + 0 < l + 0)) l = ms[k1, I[j]]
        if (ips[k16, I[j]] != "" && (t == "" || ips[k16, I[j]] + 0 > t + 0)) t = ips[k16, I[j]]
      }
      printf "\nIssue #8 bar (EfficientAD-S, 256x256, f16): batch-1 latency %s ms (<= 0.5: %s), batch-16 throughput %s img/s (>= 2000: %s)\n",
        fmt(l), l == "" ? "not measured" : (l + 0 <= 0.5 ? "PASS" : "FAIL"), fmt(t), t == "" ? "not measured" : (t + 0 >= 2000 ? "PASS" : "FAIL")
      if (dist != "")
        printf "\nTeacher distillation (vigil distill --device cuda, WRN-101 targets at 512, PDN-S at 256, batch 16, f32): %s img/s (extractor %s ms/img, PDN step %s ms/iter): the paper'"'"'s 60,000 iterations in %s h\n",
          fmt(get(dist, "images_s")), get(dist, "extractor_ms_per_image"), get(dist, "pdn_step_ms"), get(dist, "hours_for_60000_iters")
    }' $CARRIED "$JSONL" > "$tbl"
  cat "$tbl"
  # every device's results (committed ones under bench/results/ and this run), the paper's beside
  if [ -x "$VIGIL" ] || [ -x ./vigil ]; then
    local v=$VIGIL; [ -x "$v" ] || v=./vigil
    "$v" bench-table --out "$MASTER/bench-table" bench/results "$JSONL" > /dev/null &&
      cp -f "$MASTER/bench-table/table.md" "$RES/bench-table-$SLUG-$DAY.md" 2>/dev/null &&
      echo "cross-device table: $RES/bench-table-$SLUG-$DAY.md"
  fi
}

# ---- run the steps
for s in "${STEPS[@]}"; do
  case $s in env|build|test|sanitize|paper|bench|torch|compile|distill|table) ;; *) echo "bench/gpu.sh: unknown step '$s' (bash bench/gpu.sh --help)" >&2; exit 2 ;; esac
done
for s in "${STEPS[@]}"; do
  log="$MASTER/gpu-$s-$SLUG-$DAY.log"
  say "step $s (log $log)"
  t0=$SECONDS
  "step_$s" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  echo "==== step $s: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - t0)) s" | tee -a "$log"
  [ $rc -ne 0 ] && FAILED+=("$s")
  cat "$log" >> "$MASTER/gpu-$SLUG-$DAY.log"
  cp -f "$MASTER/gpu-$SLUG-$DAY.log" "$RES/" 2>/dev/null
  cp -f "$JSONL" "$RES/" 2>/dev/null
  [ -f "$MASTER/table-$SLUG-$DAY.md" ] && cp -f "$MASTER/table-$SLUG-$DAY.md" "$RES/" 2>/dev/null
done
echo
echo "results: $RES/$(basename "$JSONL") ($(wc -l < "$JSONL") lines)"
if [ ${#FAILED[@]} -gt 0 ]; then echo "bench/gpu.sh: failed steps: ${FAILED[*]}"; exit 1; fi
echo "bench/gpu.sh: all steps ok"
