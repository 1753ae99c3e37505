#!/bin/sh
# Runs each test program, tallies "N passed, N failed" lines, prints one total.
tp=0; tf=0; bad=""
for t in "$@"; do
  out=$($t 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(printf '%s' "$line" | sed -E 's/^([0-9]+) passed.*/\1/'); f=$(printf '%s' "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  [ -n "$p" ] || p=0; [ -n "$f" ] || f=0
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    printf '%s\n' "$out" | grep -v '^OK' | tail -40
    printf 'FAIL %s (exit %d)\n' "$t" $rc; bad="$bad $t"; [ "$f" -gt 0 ] || f=1
  else
    printf '%s\n' "$out" | grep -E '^(NOT OK|SKIP)' | head -20
    printf 'ok   %-40s %s\n' "$(basename $t)" "$line"
  fi
  tp=$((tp+p)); tf=$((tf+f))
done
echo "$tp passed, $tf failed"
[ -z "$bad" ]
