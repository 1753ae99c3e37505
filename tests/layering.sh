#!/bin/sh
# layering.sh — checks the include rules between the top-level folders (run by make test;
# prints one OK / NOT OK row per rule and "N passed, N failed" like the test programs).
#
#   base (status, JSON, files, parsing, inflate, thread pool) below everything and on nothing;
#   tensor <- autograd <- nn <- flows <- methods;  datasets, eval on tensor;  report on eval
#   and datasets;  cli, bench (and tests, tools) on top of everything.
#   tensor/internal.h, tensor/cpu/*, tensor/cuda/* only from tensor/, autograd/, bench/, tests/.
#   No include cycle between top-level folders.
#
# KNOWN lists, one "FILE INCLUDED" per line, edges allowed to break these rules for now (none
# today: issue #17 removed the last ones). A new breaking include fails; so does a KNOWN line
# that no longer occurs (delete it: the rule then holds for good).
cd "$(dirname "$0")/.." || exit 1

KNOWN=''

allowed() {   # $1 = folder of the including file, $2 = folder of the included one
  [ "$1" = "$2" ] && return 0
  [ "$2" = base ] && return 0
  case "$1" in
    cli|bench|tests|tools) return 0 ;;
    autograd) case "$2" in tensor) return 0 ;; esac ;;
    nn) case "$2" in tensor|autograd) return 0 ;; esac ;;
    flows) case "$2" in tensor|autograd|nn) return 0 ;; esac ;;
    methods) case "$2" in tensor|autograd|nn|flows|datasets|eval) return 0 ;; esac ;;
    datasets|eval) case "$2" in tensor) return 0 ;; esac ;;
    report) case "$2" in tensor|eval|datasets) return 0 ;; esac ;;
  esac
  return 1
}

pass=0; fail=0
ok() { echo "OK $*"; pass=$((pass + 1)); }
bad() { echo "NOT OK $*"; fail=$((fail + 1)); }

edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
# every "a/b.h"-style include of the library's sources: FILE INCLUDED
for f in $(git ls-files --cached --others --exclude-standard '*.c' '*.h' '*.cu' '*.cpp' 2>/dev/null || find . -name '*.[ch]' -o -name '*.cu' -o -name '*.cpp'); do
  f=${f#./}
  sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\/[^"]*\)".*/\1/p' "$f" | while read -r inc; do
    echo "$f $inc"
  done
done > "$edges"

n=0; broken=""
while read -r f inc; do
  from=${f%%/*}; to=${inc%%/*}
  [ -d "$to" ] || continue   # a system or emulator path (cuda_runtime.h lives under tensor/cuda/emu)
  why=""
  if ! allowed "$from" "$to"; then why="$from may not include $to"; fi
  case "$inc" in
    tensor/internal.h|tensor/cpu/*|tensor/cuda/*)
      case "$from" in tensor|autograd|bench|tests) ;; *) why="only tensor/, autograd/, bench/ and tests/ include $inc" ;; esac ;;
  esac
  [ -n "$why" ] || continue
  if printf '%s\n' "$KNOWN" | grep -qxF "$f $inc"; then n=$((n + 1)); continue; fi
  broken="$broken
  $f includes $inc: $why"
done < "$edges"
if [ -z "$broken" ]; then ok "include rules hold ($n known exceptions)"; else bad "include rules broken:$broken"; fi

printf '%s\n' "$KNOWN" | while read -r f inc; do
  [ -n "$f" ] || continue
  grep -qxF "$f $inc" "$edges" || echo "NOT OK known edge '$f -> $inc' no longer occurs: delete it from KNOWN in tests/layering.sh"
done > "$edges.stale"
if [ -s "$edges.stale" ]; then cat "$edges.stale"; fail=$((fail + 1)); else ok "every known edge still occurs"; fi
rm -f "$edges.stale"

# cycles between top-level folders, the known edges left out (they are the cycles #17 breaks)
graph=$(while read -r f inc; do
  from=${f%%/*}; to=${inc%%/*}
  [ -d "$to" ] && [ "$from" != "$to" ] || continue
  printf '%s\n' "$KNOWN" | grep -qxF "$f $inc" && continue
  echo "$from $to"
done < "$edges" | sort -u)
cyc=$(printf '%s\n' "$graph" | awk '
  NF == 2 { adj[$1] = adj[$1] " " $2; nodes[$1]; nodes[$2] }
  function reach(a, b,    seen, queue, head, tail, x, n, i, nb) {
    head = 0; tail = 0; queue[tail++] = a
    while (head < tail) {
      x = queue[head++]; n = split(adj[x], nb, " ")
      for (i = 1; i <= n; i++) { if (nb[i] == b) return 1; if (!(nb[i] in seen)) { seen[nb[i]]; queue[tail++] = nb[i] } }
    }
    return 0
  }
  END { for (a in nodes) for (b in nodes) if (a < b && reach(a, b) && reach(b, a)) print a " <-> " b }')
if [ -z "$cyc" ]; then ok "no include cycle between top-level folders"; else bad "include cycles: $cyc"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
