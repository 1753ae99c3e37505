#!/bin/sh
# The trivial baseline (meanimage) on every synthetic category: train (statistics only),
# test, and a table of the metrics. Usage: scripts/synth_baseline.sh [METHOD] [RUNS_DIR]
# Extra `vigil train` flags can be passed in VIGIL_TRAIN_FLAGS (e.g. "--steps 200").
set -e
METHOD=${1:-meanimage}
RUNS=${2:-runs/synth-$METHOD}
VIGIL=${VIGIL:-./vigil}
for c in woven grained grid noise shapes screws assembly; do
  $VIGIL train "$METHOD" --category "$c" --out "$RUNS/$c" $VIGIL_TRAIN_FLAGS > "$RUNS.$c.log" 2>&1 || { mkdir -p "$RUNS"; cat "$RUNS.$c.log"; exit 1; }
done
printf "%-10s %11s %11s %11s %8s\n" category image_auroc pixel_auroc au_pro f1_max
for c in woven grained grid noise shapes screws assembly; do
  m="$RUNS/$c/metrics.json"
  get() { sed -n "s/.*\"$1\": \([-0-9.eE]*\).*/\1/p" "$m" | head -1; }
  printf "%-10s %11.4f %11.4f %11.4f %8.4f\n" "$c" "$(get image_auroc)" "$(get pixel_auroc)" "$(get au_pro)" "$(get f1_max)"
done
