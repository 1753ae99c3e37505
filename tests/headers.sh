#!/bin/sh
# headers.sh — the public headers stand on their own once installed (run by make test; prints
# one OK / NOT OK row per check and "N passed, N failed" like the test programs).
#
# `make install-headers` into a temporary DESTDIR, then:
#   - the internal headers are not there (tensor/internal.h, tensor/cpu|cuda|kmath/, flows/block.h,
#     autograd/backward.h, the cli's parser headers, *internal.h);
#   - every `#include "..."` of an installed header names an installed file;
#   - each installed header compiles alone, twice in a row (its include guard), in C11 with
#     -Wall -Wextra -Werror, against the installed tree only (no path of the source tree);
#   - vigil.h includes every installed header outside methods/NAME/ (the umbrella is whole),
#     and its VG_VERSION is MAJOR.MINOR.PATCH.
cd "$(dirname "$0")/.." || exit 1
MAKE=${MAKE:-make}
CC=${CC:-cc}
pass=0; fail=0
ok() { echo "OK $*"; pass=$((pass + 1)); }
bad() { echo "NOT OK $*"; fail=$((fail + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! $MAKE --no-print-directory -s install-headers DESTDIR="$tmp/d" PREFIX=/p >"$tmp/log" 2>&1; then
  bad "make install-headers failed: $(tail -n 3 "$tmp/log")"
  echo "$pass passed, $fail failed"; exit 1
fi
inc="$tmp/d/p/include/vigil"
hdrs=$(cd "$inc" && find . -type f | sed 's|^\./||' | sort)
nh=$(printf '%s\n' "$hdrs" | grep -c '\.h$')
if [ "$nh" -ge 30 ] && [ -f "$inc/vigil.h" ] && [ -f "$inc/tensor/tensor.h" ] && [ -f "$inc/tensor/ops.def" ]; then
  ok "install-headers put $nh headers (+ the op .def files tensor.h reads) under include/vigil/"
else bad "install-headers put $nh headers, vigil.h / tensor/tensor.h / tensor/ops.def missing or too few"; fi

# internal headers: named ones and whole folders
leaked=""
for h in tensor/internal.h tensor/op_params.h tensor/eltwise.h tensor/vmath.h tensor/hd.h autograd/backward.h \
         flows/block.h cli/opts.h cli/args.h cli/rundir.h eval/rank.h; do
  [ -e "$inc/$h" ] && leaked="$leaked $h"
done
for d in tensor/cpu tensor/cuda tensor/kmath; do [ -e "$inc/$d" ] && leaked="$leaked $d/"; done
leaked="$leaked$(printf '%s\n' "$hdrs" | grep 'internal\.h$' | sed 's/^/ /' | tr -d '\n')"
if [ -z "$leaked" ]; then ok "no internal header installed"; else bad "internal headers installed:$leaked"; fi

# every quoted include names an installed file (relative to include/vigil or to the header's folder)
missing=""
for h in $hdrs; do
  for i in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$inc/$h"); do
    [ -f "$inc/$i" ] || [ -f "$inc/$(dirname "$h")/$i" ] || missing="$missing
  $h includes \"$i\", which is not installed"
  done
done
if [ -z "$missing" ]; then ok "every include of an installed header is installed"; else bad "installed headers need internal ones:$missing"; fi

# each header alone, against the installed tree only (compiled in $tmp, not in the source tree)
cfail=""; nc=0
for h in $(printf '%s\n' "$hdrs" | grep '\.h$'); do
  printf '#include "%s"\n#include "%s"\nint vg_header_check_%s;\n' "$h" "$h" "$nc" > "$tmp/one.c"
  if ! (cd "$tmp" && $CC -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$inc" one.c) >"$tmp/cc.log" 2>&1; then
    cfail="$cfail
  $h: $(grep -m1 -E 'error|warning' "$tmp/cc.log")"
  fi
  nc=$((nc + 1))
done
if [ "$nc" -gt 0 ] && [ -z "$cfail" ]; then ok "each of the $nc installed headers compiles alone (twice) with -std=c11 -Wall -Wextra -Werror"
else bad "installed headers that do not compile alone:$cfail"; fi

# the umbrella includes every installed header outside methods/NAME/
umb=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$inc/vigil.h")
notin=""
for h in $(printf '%s\n' "$hdrs" | grep '\.h$' | grep -v '^vigil\.h$' | grep -v '^methods/[^/]*/'); do
  printf '%s\n' "$umb" | grep -qxF "$h" || notin="$notin $h"
done
if [ -z "$notin" ]; then ok "vigil.h includes every installed header outside methods/NAME/"
else bad "vigil.h misses public headers:$notin"; fi

# vigil.h alone gives the version and the library entry points
cat > "$tmp/ver.c" <<'EOF'
#include <vigil.h>
#include <string.h>
_Static_assert(VG_VERSION_MAJOR >= 0 && VG_VERSION_MINOR >= 0 && VG_VERSION_PATCH >= 0, "version numbers");
int (*vg_check_main)(int, char **) = vg_cli_main;
vg_status (*vg_check_register)(const vg_method_def *) = vg_method_register;
const char *(*vg_check_version)(void) = vg_version;
size_t vg_check_len(void) { return strlen(VG_VERSION); }
EOF
ver=$(printf '#include <vigil.h>\nVG_VERSION\n' | (cd "$tmp" && $CC -E -P -I"$inc" -x c - 2>/dev/null) | tail -n 1 | tr -d '" ')
if (cd "$tmp" && $CC -std=c11 -Wall -Wextra -Werror -c -I"$inc" ver.c -o ver.o) >"$tmp/cc.log" 2>&1 &&
   printf '%s\n' "$ver" | grep -qE '^[0-9]+\.[0-9]+\.[0-9]+$'; then
  ok "#include <vigil.h> declares vg_cli_main, vg_method_register, vg_version; VG_VERSION is $ver"
else bad "vigil.h: version or entry points ($ver): $(head -n 3 "$tmp/cc.log")"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
