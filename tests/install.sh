#!/bin/sh
# install.sh — Vigil installed and used from outside its tree, as a researcher would (make
# test-install; .ci/run). Prints one OK / NOT OK row per check and "N passed, N failed".
#
#   1. make install PREFIX=<temp dir>: the program, libvigil.a, libvigil.so.X.Y.Z with its
#      soname and links, vigil.pc, the headers; `vigil --version` = pkg-config's version;
#      DESTDIR staging puts the same files under DESTDIR with the pc file naming PREFIX.
#   2. every examples/NAME/ is copied to a temp dir and built there by its own Makefile with
#      PKG_CONFIG_PATH only (no path of the source tree may appear in the build), then run with
#      no arguments (each example exits 0, or prints SKIP when it needs an input file).
#   3. the template method (examples/method_template) through its own program: train (the
#      statistics pass; then its automatic test) and test on the synthetic default, metrics.json
#      checked; bench; `help` lists it; the plain vigil refuses its run; a static link
#      (libvigil.a) works too.
#   4. make uninstall leaves the prefix (and the DESTDIR stage) empty.
# Environment: VG_INSTALL_FLAGS (make variables of the build to install, e.g. "BUILD=build/cuda
# CUDA=1"; `make test-install` passes its own), else VG_INSTALL_BUILD (the build folder, default
# build); VIGIL_CACHE (an existing synthetic-benchmark cache to reuse; default: a temp one); MAKE.
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
MAKE=${MAKE:-make}
FLAGS=${VG_INSTALL_FLAGS:-BUILD=${VG_INSTALL_BUILD:-build}}
jobs=$(nproc 2>/dev/null || echo 2)
pass=0; fail=0
ok() { echo "OK $*"; pass=$((pass + 1)); }
bad() { echo "NOT OK $*"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
t0=$(date +%s)

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
prefix=$(mktemp -d "$tmp/prefix.XXXX")
export VIGIL_CACHE=${VIGIL_CACHE:-$tmp/cache}

# ---- 1. install
if $MAKE --no-print-directory -j"$jobs" $FLAGS install PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
  ok "make install PREFIX=$prefix"
else
  bad "make install failed: $(tail -n 5 "$tmp/install.log")"; finish
fi
ver=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion vigil 2>&1)
major=${ver%%.*}
miss=""
for f in bin/vigil lib/libvigil.a "lib/libvigil.so.$ver" lib/pkgconfig/vigil.pc include/vigil/vigil.h \
         include/vigil/tensor/tensor.h include/vigil/methods/method.h include/vigil/cli/cli.h; do
  [ -f "$prefix/$f" ] || miss="$miss $f"
done
[ -L "$prefix/lib/libvigil.so.$major" ] && [ "$(readlink "$prefix/lib/libvigil.so.$major")" = "libvigil.so.$ver" ] || miss="$miss lib/libvigil.so.$major->libvigil.so.$ver"
[ -L "$prefix/lib/libvigil.so" ] && [ "$(readlink "$prefix/lib/libvigil.so")" = "libvigil.so.$major" ] || miss="$miss lib/libvigil.so->libvigil.so.$major"
[ ! -e "$prefix/include/vigil/tensor/internal.h" ] || miss="$miss (tensor/internal.h installed)"
if [ -z "$miss" ]; then ok "installed: bin/vigil, libvigil.a, libvigil.so.$ver + links, vigil.pc, include/vigil/ (version $ver)"
else bad "install layout: missing or wrong:$miss"; fi
soname=$(objdump -p "$prefix/lib/libvigil.so.$ver" 2>/dev/null | awk '$1 == "SONAME" { print $2 }')
if [ "$soname" = "libvigil.so.$major" ]; then ok "libvigil.so.$ver has soname $soname"; else bad "soname '$soname', want libvigil.so.$major"; fi
# the library's exported C names all carry the vg_ prefix (STYLE.md): nothing to clash with a
# user's (C++-mangled _Z names of a CUDA build's .cu files cannot clash with C names)
bad_syms=$(nm -D --defined-only "$prefix/lib/libvigil.so.$ver" 2>/dev/null | awk 'NF == 3 && $3 !~ /^vg_/ && $3 !~ /^_Z/ { print $3 }' | head -n 10)
nsyms=$(nm -D --defined-only "$prefix/lib/libvigil.so.$ver" 2>/dev/null | grep -c ' vg_')
if [ -z "$bad_syms" ] && [ "$nsyms" -gt 100 ]; then ok "libvigil.so exports $nsyms symbols, every one vg_*"
else bad "libvigil.so exports names without the vg_ prefix ($nsyms vg_ ones): $(echo $bad_syms)"; fi
pv=$("$prefix/bin/vigil" --version 2>&1)
if [ "$pv" = "vigil $ver" ] && [ "$("$prefix/bin/vigil" version 2>&1)" = "vigil $ver" ]; then ok "vigil --version / version: $pv (= pkg-config)"
else bad "vigil --version says '$pv', pkg-config '$ver'"; fi
stage="$tmp/stage"
if $MAKE --no-print-directory $FLAGS install DESTDIR="$stage" PREFIX=/opt/vg >"$tmp/stage.log" 2>&1 &&
   [ -f "$stage/opt/vg/lib/libvigil.so.$ver" ] && grep -qx 'prefix=/opt/vg' "$stage/opt/vg/lib/pkgconfig/vigil.pc" &&
   [ "$(cd "$stage/opt/vg" && find . | sort)" = "$(cd "$prefix" && find . | sort)" ]; then
  ok "make install DESTDIR=... PREFIX=/opt/vg stages the same files, vigil.pc says prefix=/opt/vg"
else bad "DESTDIR install: $(tail -n 3 "$tmp/stage.log")"; fi

# ---- 2. every example, built from a copy with pkg-config only
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# the sources only (git's view: no binaries or objects of an in-tree build), else the folder
mkdir -p "$tmp/ex"
if files=$(git ls-files --cached --others --exclude-standard examples 2>/dev/null) && [ -n "$files" ]; then
  for f in $files; do [ -f "$f" ] && mkdir -p "$tmp/ex/$(dirname "${f#examples/}")" && cp -p "$f" "$tmp/ex/${f#examples/}"; done
else cp -R examples/. "$tmp/ex/"; fi
nex=0
for d in "$tmp"/ex/*/; do
  [ -f "$d/Makefile" ] || continue
  name=$(basename "$d")
  nex=$((nex + 1))
  if ! (cd "$d" && env -u VIGIL_ROOT CPATH= C_INCLUDE_PATH= LIBRARY_PATH= $MAKE --no-print-directory) >"$tmp/$name.build" 2>&1; then
    bad "examples/$name: build failed: $(grep -m3 -E 'error|Error' "$tmp/$name.build")"; continue
  fi
  if grep -qF "$root" "$tmp/$name.build"; then bad "examples/$name: the build names the source tree ($root)"; continue; fi
  prog=$(cd "$d" && find . -maxdepth 1 -type f -perm -u+x ! -name '*.sh' | head -n 1)
  if [ -z "$prog" ]; then bad "examples/$name: built no program"; continue; fi
  out=$(cd "$d" && timeout 300 "$prog" 2>&1); rc=$?
  if [ "$name" = method_template ]; then
    [ $rc -eq 2 ] && printf '%s' "$out" | grep -q 'usage: vigil' && ok "examples/$name built ($prog; no arguments: the usage, exit 2)" ||
      bad "examples/$name: $prog without arguments: exit $rc: $(printf '%s' "$out" | tail -n 2)"
  elif [ $rc -eq 0 ]; then ok "examples/$name built and ran: $(printf '%s' "$out" | tail -n 1 | cut -c1-160)"
  else bad "examples/$name: $prog exit $rc: $(printf '%s' "$out" | tail -n 3)"; fi
done
[ "$nex" -ge 4 ] && ok "$nex examples built against the install" || bad "only $nex examples found under examples/ (want >= 4)"

# ---- 3. the template method through its own program
fd="$tmp/ex/method_template/featdist"
if [ -x "$fd" ]; then
  help=$("$fd" help 2>&1)
  printf '%s' "$help" | grep -q 'methods (METHOD):.*fastflow.*featdist' && ok "featdist help lists the registered method after the built-in ones" ||
    bad "featdist help: $(printf '%s' "$help" | tail -n 1)"
  run="$tmp/run"
  if out=$(cd "$tmp" && "$fd" train featdist --set input_size=64 --workers 2 --out "$run" 2>&1) && [ -f "$run/checkpoint.safetensors" ]; then
    ok "featdist train featdist on the synthetic default (statistics pass + automatic test)"
  else bad "featdist train: $(printf '%s' "$out" | tail -n 4)"; fi
  rm -f "$run/metrics.json"
  if out=$(cd "$tmp" && "$fd" test --run "$run" 2>&1) && [ -f "$run/metrics.json" ]; then
    ok "featdist test --run wrote metrics.json"
  else bad "featdist test: $(printf '%s' "$out" | tail -n 4)"; fi
  # the mean image AUROC of the run, well above chance (random ResNet-18 layer2 at 64 px: ~0.8)
  auc=$(sed -n '/"mean"/,$ s/.*"image_auroc": *\([0-9.eE+-]*\).*/\1/p' "$run/metrics.json" 2>/dev/null | head -n 1)
  meth=$(sed -n 's/.*"method": *"\([a-z]*\)".*/\1/p' "$run/config.json" 2>/dev/null | head -n 1)
  if [ -n "$auc" ] && awk -v a="$auc" 'BEGIN { exit !(a > 0.6 && a <= 1) }' && [ "$meth" = featdist ]; then
    ok "metrics.json: image AUROC $auc (> 0.6); config.json names method featdist"
  else bad "metrics.json: image AUROC '$auc', config method '$meth'"; fi
  if out=$(cd "$tmp" && "$fd" bench featdist --runs 2 --warmup 1 --batch 2 --input-size 64 2>&1) &&
     printf '%s' "$out" | grep -q '"method":"featdist"'; then ok "featdist bench featdist (forward_maps timed; JSON line)"
  else bad "featdist bench: $(printf '%s' "$out" | tail -n 3)"; fi
  # the plain vigil program does not know the method: registration is the program's own
  if "$prefix/bin/vigil" test --run "$run" >"$tmp/plain.log" 2>&1; then bad "the installed vigil tested a featdist run (it has no such method)"
  elif grep -q "unknown method 'featdist'" "$tmp/plain.log"; then ok "the installed vigil refuses the featdist run by name (not registered there)"
  else bad "installed vigil on a featdist run: $(tail -n 2 "$tmp/plain.log")"; fi
  if (cd "$tmp/ex/method_template" && $MAKE --no-print-directory clean >/dev/null && $MAKE --no-print-directory STATIC=1) >"$tmp/static.log" 2>&1 &&
     ! objdump -p "$fd" | grep -q 'NEEDED.*libvigil' && [ "$("$fd" --version)" = "vigil $ver" ]; then
    ok "the template links libvigil.a statically (make STATIC=1) and runs"
  else bad "static link of the template: $(tail -n 3 "$tmp/static.log")"; fi
else bad "examples/method_template built no ./featdist"; fi

# ---- 4. uninstall
if $MAKE --no-print-directory $FLAGS uninstall PREFIX="$prefix" >"$tmp/un.log" 2>&1 && [ -z "$(find "$prefix" -mindepth 1)" ]; then
  ok "make uninstall left $prefix empty"
else bad "make uninstall left: $(find "$prefix" -mindepth 1 | head -n 5 | tr '\n' ' ') $(tail -n 2 "$tmp/un.log")"; fi
if $MAKE --no-print-directory $FLAGS uninstall DESTDIR="$stage" PREFIX=/opt/vg >"$tmp/un2.log" 2>&1 &&
   [ -z "$(find "$stage/opt/vg" -mindepth 1 2>/dev/null)" ]; then
  ok "make uninstall DESTDIR=... left the stage's prefix empty"
else bad "DESTDIR uninstall left: $(find "$stage" -mindepth 1 | head -n 5 | tr '\n' ' ')"; fi
echo "install.sh: $(( $(date +%s) - t0 )) s"
finish
