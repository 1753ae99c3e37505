#!/bin/sh
# layering.sh — checks the include rules between the top-level folders (run by make test;
# prints one OK / NOT OK row per rule and "N passed, N failed" like the test programs).
#
#   base (status, JSON, files, parsing, inflate, thread pool) below everything and on nothing;
#   tensor <- autograd <- nn <- flows <- methods;  datasets, eval on tensor;  report on eval
#   and datasets;  cli, bench (and tests, tools, examples, the umbrella vigil.h) on top of everything.
#   tensor/internal.h, tensor/cpu/*, tensor/cuda/* only from tensor/, autograd/, bench/, tests/.
#   No include cycle between top-level folders.
#   tensor/ calls no autograd function (it reaches autograd only through the recorder that
#   autograd installs: vg_set_recorder), in its sources and, with VG_LAYERING_BUILD=<build
#   dir> (make test sets it), as undefined symbols of its objects (nm).
#   VG_WITH_CUDA / VG_CUDA_EMU appear only in tensor/, tests/ and bench/.
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
    cli|bench|tests|tools|examples|vigil.h) return 0 ;;   # vigil.h: the umbrella header at the top
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
  [ -f "$f" ] || continue   # deleted in the work tree, still in git's index
  sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\/[^"]*\)".*/\1/p' "$f" | while read -r inc; do
    echo "$f $inc"
  done
done > "$edges"

n=0; broken=""
while read -r f inc; do
  from=${f%%/*}; to=${inc%%/*}
  [ -d "$to" ] || continue   # a system or emulator path (cuda_runtime.h lives under tests/cuda_emu)
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

# tensor/ reaches autograd only through the recorder autograd installs (vg_set_recorder):
# no call into autograd from tensor/'s sources (comments and strings left out), the names
# being every function autograd/*.c defines with external linkage, and, when a build
# folder is given (VG_LAYERING_BUILD, set by make test), no undefined reference to an
# autograd symbol in its tensor/ objects.
agfns=$(cat autograd/*.c | perl -0777 -ne '
  s{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g;
  while (/^(?!static\b)[A-Za-z_][\w \t\*]*?\b(vg_\w+)\s*\([^;{]*\)\s*\{/mg) { print "$1\n" }' | sort -u)
tsrc=$(git ls-files --cached --others --exclude-standard 'tensor/*' 2>/dev/null || find tensor -type f)
calls=$(for f in $tsrc; do
  case "$f" in *.c|*.h|*.cu|*.cuh|*.cpp) ;; *) continue ;; esac
  [ -f "$f" ] || continue
  AGFNS="$agfns" perl -0777 -ne '
    BEGIN { %fn = map { $_ => 1 } split /\s+/, $ENV{AGFNS} }
    s{(/\*.*?\*/)|(//[^\n]*)|("(?:\\.|[^"\\\n])*")|(\x27(?:\\.|[^\x27\\\n])*\x27)}{ my $m = $&; $m =~ tr/\n//cd; defined $3 || defined $4 ? "\"\"" : $m }gse;
    my $ln = 1;
    for my $line (split /\n/, $_, -1) {
      while ($line =~ /\b(vg_\w+)\s*\(/g) { print "$ARGV:$ln calls $1\n" if $fn{$1} }
      $ln++;
    }' "$f"
done)
if [ -z "$agfns" ]; then bad "found no autograd function in autograd/*.c (the check would pass vacuously)"
elif [ -z "$calls" ]; then ok "tensor/ sources call no autograd function ($(echo "$agfns" | wc -l | tr -d ' ') names checked)"
else bad "tensor/ calls into autograd (go through the recorder, tensor/internal.h):
$calls"; fi
# the CUDA build switches only in tensor/ (the backend), tests/ and bench/: every other layer
# reaches the GPU through the public API and the backend table (vg_optim_update_run, ...)
cuda_ifs=$(for f in $(git ls-files --cached --others --exclude-standard '*.c' '*.h' '*.cu' '*.cuh' '*.cpp' 2>/dev/null || find . -name '*.[ch]'); do
  f=${f#./}
  case "$f" in tensor/*|tests/*|bench/*) continue ;; esac
  [ -f "$f" ] && grep -n 'VG_WITH_CUDA\|VG_CUDA_EMU' "$f" | sed "s|^|  $f:|"
done)
if [ -z "$cuda_ifs" ]; then ok "VG_WITH_CUDA / VG_CUDA_EMU only in tensor/, tests/, bench/"
else bad "CUDA build switches outside tensor/ (route through the backend table or the public API):
$cuda_ifs"; fi

B=${VG_LAYERING_BUILD:-}
if [ -n "$B" ] && ls "$B"/autograd/*.o >/dev/null 2>&1 && ls "$B"/tensor/*.o >/dev/null 2>&1; then
  nm -g --defined-only "$B"/autograd/*.o 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u > "$edges.ag"
  undef=$(find "$B/tensor" -name '*.o' | sort | while read -r o; do
    nm -u "$o" 2>/dev/null | awk '{ print $NF }' | sort -u | comm -12 - "$edges.ag" | sed "s|^|  $o needs |"
  done)
  if [ ! -s "$edges.ag" ]; then bad "nm found no symbol in $B/autograd/*.o"
  elif [ -z "$undef" ]; then ok "tensor/ objects in $B reference no autograd symbol"
  else bad "tensor/ objects reference autograd symbols:
$undef"; fi
  rm -f "$edges.ag"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
