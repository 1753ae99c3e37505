#!/usr/bin/env bash
# tests/slurm.sh — `vigil reproduce --slurm --submit` end to end on a REAL one-node Slurm cluster
# on this host (issue #24):
#   1. Debian's slurm-wlm + munge (installed with apt-get when missing: as root, or with
#      passwordless sudo); when that cannot be done: "SKIP <reason>" and exit 0.
#   2. A private cluster in a temp folder: its own munge key and socket, slurm.conf (one node =
#      this host, its memory, at most 2 of its CPUs, select/cons_tres), munged + slurmctld + slurmd started in
#      the foreground by this script (and stopped by the trap, by their pids), the node idle.
#   3. A --smoke table (fastflow-t5, 4 cells) through --slurm --submit; two array tasks are
#      cancelled on purpose: the last one while pending (scancel JOB_3 right after the
#      submission) and task 0 while RUNNING (held by this script holding its cell lock); the
#      array and the dependent aggregate job end; the table then has those cells missing.
#   4. Resubmission: the array holds only those two cells, the other cells' metrics.json stay as
#      they were; the aggregate job's table.json equals the one of a plain local run.
# Timeouts everywhere; the whole script takes well under 8 minutes on 2 cores. Uses $VIGIL, else
# build/vigil (run make first). Exit 0 = passed or SKIP, 1 = failed.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
VIGIL=${VIGIL:-$repo/build/vigil}
case "$VIGIL" in /*) ;; *) VIGIL=$repo/$VIGIL ;; esac
TABLE=${SLURM_TEST_TABLE:-fastflow-t5}
t_start=$(date +%s)
say() { echo "slurm.sh: $*"; }
skip() { echo "SKIP tests/slurm.sh: $*"; exit 0; }
fail() { echo "FAIL tests/slurm.sh: $*"; dump_logs; exit 1; }
dump_logs() {
  [ -n "${D:-}" ] || return 0
  for f in "$D"/log/*.log; do [ -f "$f" ] && { echo "--- $f (tail)"; tail -n 15 "$f"; }; done
  for f in "$D"/out/smoke/slurm/"$TABLE"/logs/*.out; do [ -f "$f" ] && { echo "--- $f (tail)"; tail -n 5 "$f"; }; done
}

[ -x "$VIGIL" ] || { echo "FAIL tests/slurm.sh: no vigil program at $VIGIL (run make, or set VIGIL=path)"; exit 1; }

# ---- 1. packages (root, or passwordless sudo for the whole script: the daemons need root)
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n env VIGIL="$VIGIL" SLURM_TEST_TABLE="$TABLE" PATH="$PATH" bash "$0" "$@"
  fi
  skip "not root and no passwordless sudo (the Slurm and munge daemons need root)"
fi
need_pkgs() { ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
              ! command -v munged >/dev/null; }
if need_pkgs; then
  command -v apt-get >/dev/null 2>&1 || skip "slurm-wlm/munge are not installed and there is no apt-get"
  aptlog=$(mktemp)
  if ! { timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         timeout 400 env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } >"$aptlog" 2>&1; then
    why=$(tail -n 1 "$aptlog"); rm -f "$aptlog"
    skip "apt-get install slurm-wlm munge failed: $why"
  fi
  rm -f "$aptlog"
  need_pkgs && skip "apt-get installed slurm-wlm/munge but slurmctld, slurmd, sbatch or munged is missing"
fi
say "$(slurmctld -V 2>/dev/null), $(munged -V 2>/dev/null | head -n 1)"

# ---- 2. the private cluster
D=$(mktemp -d /tmp/vigil-slurm.XXXXXX) || fail "mktemp"
chmod 755 "$D"
mkdir -p "$D"/munge "$D"/state "$D"/spool "$D"/log "$D"/tables
chmod 700 "$D"/munge
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then echo "slurm.sh: kept $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

host=$(hostname -s 2>/dev/null || hostname)
cpus=$(nproc)
cpus=$((cpus > 2 ? 2 : cpus))   # two tasks at a time: the cancelled last task is still pending
mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
mem=$((mem > 2048 ? mem - 1024 : mem))
base=$((20000 + ($$ % 5000) * 2))
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$D/munge/munge.key"
export SLURM_CONF="$D/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=vigiltest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MaxArraySize=1001
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=vigil Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
munged -F -f --key-file="$D/munge/munge.key" --socket="$D/munge/munge.sock" --pid-file="$D/munge/munged.pid" \
  --log-file="$D/log/munged.log" --seed-file="$D/munge/munged.seed" >"$D/log/munged.out.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do [ -S "$D/munge/munge.sock" ] && break; sleep 0.2; done
[ -S "$D/munge/munge.sock" ] || fail "munged did not start"
slurmctld -D -i -f "$SLURM_CONF" >"$D/log/slurmctld.out.log" 2>&1 &
PIDS+=($!)
slurmd -D -N "$host" -f "$SLURM_CONF" >"$D/log/slurmd.out.log" 2>&1 &
PIDS+=($!)
state=""
for _ in $(seq 1 120); do
  state=$(timeout 5 sinfo -h -N -n "$host" -o %t 2>/dev/null | head -n 1)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || fail "the node did not become idle within 60 s (state '$state')"
say "one-node cluster up: $host, $cpus CPUs, ${mem} MB, node $state ($(( $(date +%s) - t_start )) s)"

# jobs and the local run compute alike: one thread per process
export VIGIL_THREADS=1
OUT="$D/out"
repro() { timeout 300 "$VIGIL" reproduce "$TABLE" --tables "$repo/scripts/tables" --smoke "$@"; }

# wait until none of the given job ids is queued or running (timeout s)
wait_jobs() {
  local limit=$1; shift
  local t0; t0=$(date +%s)
  while :; do
    local left; left=$(timeout 5 squeue -h -j "$(IFS=,; echo "$*")" -o %i 2>/dev/null | wc -l)
    [ "$left" = 0 ] && return 0
    [ $(( $(date +%s) - t0 )) -ge "$limit" ] && return 1
    sleep 1
  done
}
ids() { sed -n 's/^array_job=\([0-9]*\) aggregate_job=\([0-9]*\)$/\1 \2/p' "$1"; }

# ---- 3. submit, cancel one task on purpose
ncells=$(repro --out "$OUT" --cells | grep -c '^[0-9]')
[ "$ncells" -ge 3 ] || fail "$TABLE --smoke has $ncells cells (want >= 3)"
last=$((ncells - 1))
# task 0 is held RUNNING: this script holds its cell lock (<run dir>.lock), which the task waits for
dir0=$(repro --out "$OUT" --cells | awk '$1 == 0 {print $5}')
mkdir -p "$(dirname "$dir0")"
exec 9>"$dir0.lock"
flock 9 || fail "cannot take the lock of cell 0"
repro --out "$OUT" --slurm --submit >"$D/log/submit1.log" 2>&1 || { cat "$D/log/submit1.log"; fail "--slurm --submit failed"; }
read -r jid aid < <(ids "$D/log/submit1.log")
[ -n "${jid:-}" ] && [ -n "${aid:-}" ] || { cat "$D/log/submit1.log"; fail "no job ids in the --submit output"; }
# right away: the last task cannot have started (the node runs 2 tasks at a time, task 0 waits)
timeout 10 scancel "${jid}_${last}" || fail "scancel ${jid}_${last} failed"
st0=""
for _ in $(seq 1 120); do
  st0=$(timeout 5 squeue -h -j "${jid}_0" -o %T 2>/dev/null | head -n 1)
  [ "$st0" = RUNNING ] && break
  sleep 0.5
done
[ "$st0" = RUNNING ] || fail "array task ${jid}_0 did not start (state '$st0')"
sleep 1
timeout 10 scancel "${jid}_0" || fail "scancel ${jid}_0 failed"
for _ in $(seq 1 60); do [ -z "$(timeout 5 squeue -h -j "${jid}_0" -o %T 2>/dev/null)" ] && break; sleep 0.5; done
exec 9>&-
say "submitted array job $jid ($ncells cells) and aggregate job $aid; cancelled task ${jid}_${last} (pending) and ${jid}_0 (running)"
wait_jobs 240 "$jid" "$aid" || fail "the array / aggregate job did not end within 240 s"
cells1=$(repro --out "$OUT" --cells)
grep -q '^'"$last"' todo ' <<<"$cells1" || fail "the cancelled cell $last is done (it should not have run)"
grep -q '^0 todo ' <<<"$cells1" || fail "the killed cell 0 is done (it should not have finished)"
done1=$(grep -c '^[0-9]* done ' <<<"$cells1")
[ "$done1" = $((ncells - 2)) ] || fail "after the first array $done1 of $ncells cells are done (want $((ncells - 2)))"
[ -f "$OUT/smoke/$TABLE/table.json" ] || fail "the aggregate job wrote no table.json"
grep -q '"cells_done"' "$OUT/smoke/$TABLE/table.json" || fail "table.json unreadable"
say "first array done: $done1 of $ncells cells; the aggregate job wrote the partial table ($(( $(date +%s) - t_start )) s)"

# ---- 4. resubmit: only the cancelled cell
stamp() { repro --out "$OUT" --cells | awk '$2 == "done" {print $5}' | while read -r d; do stat -c '%n %Y %i' "$d/metrics.json"; done; }
before=$(stamp)
repro --out "$OUT" --slurm --submit >"$D/log/submit2.log" 2>&1 || { cat "$D/log/submit2.log"; fail "the resubmission failed"; }
grep -q "^#SBATCH --array=0,$last\$" "$OUT/smoke/slurm/$TABLE/job.sbatch" || fail "the resubmitted array is not just cells 0 and $last: $(grep array= "$OUT/smoke/slurm/$TABLE/job.sbatch")"
grep -q "(2 tasks)" "$D/log/submit2.log" || { cat "$D/log/submit2.log"; fail "the resubmission is not two tasks"; }
read -r jid2 aid2 < <(ids "$D/log/submit2.log")
say "resubmitted: array job $jid2 (cells 0 and $last only), aggregate job $aid2"
wait_jobs 240 "$jid2" "$aid2" || fail "the resubmitted jobs did not end within 240 s"
after=$(stamp | grep -v -e "/$(basename "$dir0")/" -e "/$(repro --out "$OUT" --cells | awk -v c="$last" '$1 == c {print $5}' | xargs basename)/")
[ "$before" = "$after" ] || fail "cells other than 0 and $last were rerun: before:
$before
after:
$after"
done2=$(repro --out "$OUT" --cells | grep -c '^[0-9]* done ')
[ "$done2" = "$ncells" ] || fail "after the resubmission $done2 of $ncells cells are done"

# ---- the plain local run: the same table
repro --out "$D/local" >"$D/log/local.log" 2>&1 || { tail "$D/log/local.log"; fail "the local run failed"; }
if ! cmp -s "$OUT/smoke/$TABLE/table.json" "$D/local/smoke/$TABLE/table.json"; then
  diff "$OUT/smoke/$TABLE/table.json" "$D/local/smoke/$TABLE/table.json" | head -20
  fail "the Slurm table.json differs from the local run's"
fi
n=$(grep -c '"ours_mean": [-0-9]' "$OUT/smoke/$TABLE/table.json")
[ "$n" -ge 1 ] || fail "table.json has no value"
say "PASS: Slurm array + a pending and a running task cancelled + resubmission of only those + aggregate = the local table ($n values) in $(( $(date +%s) - t_start )) s"
exit 0
