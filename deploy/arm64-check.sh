#!/usr/bin/env bash
# Off-device arm64 check, on an x86-64 Debian bookworm desktop: build the Cython kernels for
# the Raspberry Pi (aarch64, Debian bookworm's python3 3.11, python3-numpy, python3-scipy) with a
# cross compiler, and check their numbers under qemu-user against references computed here.
#
#   deploy/arm64-check.sh          (as root or with sudo; from anywhere)
#
# Steps:
#  1. apt-get: qemu-user-static, debootstrap, gcc-aarch64-linux-gnu (only those missing).
#  2. An arm64 bookworm tree, made once and kept in $ARM64_ROOT (default
#     /var/tmp/pedal-arm64-root): debootstrap's first stage (downloads only), every .deb
#     unpacked, the BLAS/LAPACK alternatives links made as update-alternatives would.
#     Delete the folder to rebuild it.
#  3. kernels/*.pyx cythonized here (the same directives as setup.py), each C file compiled with
#     aarch64-linux-gnu-gcc against the tree's Python 3.11 and numpy headers, with the tree's
#     sysconfig flags and setup.py's, into a staging copy of the package in a temporary folder
#     (nothing is written into the checkout).
#  4. Here: models, input signal and expected outputs (deploy/arm64_numerics.py prepare: NAM's
#     own code and torch, so this needs the desktop install, deploy/install-dev.sh). Under
#     qemu-aarch64-static with the tree's python3: arm64_numerics.py check streams every model
#     at block lengths 1, 7, 64 and random, max abs error <= 1e-5; then tests/test_blocks.py
#     (the building blocks of kernels/_gemm.pxd against numpy) with the tree's pytest.
#
# Environment: ARM64_ROOT (the tree), PEDAL_SHARED (the shared folder; default ../shared beside
# the checkout), ARM64_SAMPLES (signal length, default 10000), ARM64_MIRROR (Debian mirror),
# PYTHON (the desktop python, default python3), ARM64_KEEP=1 (keep the staging folder).
# Exit status: 0 all passed, 1 a numerical failure, 2 the set-up failed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${ARM64_ROOT:-/var/tmp/pedal-arm64-root}
# Longer than the A1 WaveNet's receptive field (4093 samples), as in tests/test_nam_reference.py.
SAMPLES=${ARM64_SAMPLES:-10000}
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
HOST_PY=${PYTHON:-python3}
SUITE=bookworm
TREE_PACKAGES=python3,python3-numpy,python3-scipy,python3-pytest,python3-dev,libpython3.11-dev,cython3
HOST_PACKAGES=(qemu-user-static debootstrap gcc-aarch64-linux-gnu)
CROSS_CC=aarch64-linux-gnu-gcc
# setup.py: extra_compile_args (with the Pi 4 CPU for -mcpu=native, which a cross build
# cannot ask; the Pi 5 runs it too), define_macros and the cythonize compiler_directives.
SETUP_CFLAGS=(-O3 -fno-math-errno -fno-trapping-math -fno-signed-zeros -ffinite-math-only -mcpu=cortex-a72)
SETUP_DEFINES=(-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION)
CYTHON_DIRECTIVES=boundscheck=False,wraparound=False,cdivision=True,initializedcheck=False
MARKER=.pedal-arm64-tree

T0=$SECONDS
say() { printf 'arm64-check: [%4ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { printf 'arm64-check: error: %s\n' "$*" >&2; exit 2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (apt-get, debootstrap)"
  SUDO=(sudo)
fi

if [ -n "${PEDAL_SHARED:-}" ]; then
  SHARED=$PEDAL_SHARED
else
  SHARED=$(cd "$REPO/.." && pwd)/shared
fi
[ -d "$SHARED/reference/nam" ] || die "no $SHARED/reference/nam (set PEDAL_SHARED)"

# -- 1. host packages ------------------------------------------------------------------------------
missing=()
for pkg in "${HOST_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# binfmt-support is not needed: qemu-aarch64-static is always named explicitly below.
QEMU=(qemu-aarch64-static -L "$ROOT")

"$HOST_PY" -c 'import torch, nam, pedal.tools.reference' 2>/dev/null \
  || die "$HOST_PY lacks torch, nam or pedal.tools: run deploy/install-dev.sh first"
host_pedal=$("$HOST_PY" -c 'import os, pedal; print(os.path.dirname(os.path.dirname(pedal.__file__)))')
[ "$host_pedal" = "$REPO" ] \
  || say "note: $HOST_PY imports pedal from $host_pedal, not $REPO (references come from there)"

# -- 2. the arm64 tree -----------------------------------------------------------------------------
make_tree() {
  local tree=$1 deb
  "${SUDO[@]}" rm -rf "$tree"
  say "debootstrap (first stage) of $SUITE arm64 into $tree"
  "${SUDO[@]}" debootstrap --foreign --arch=arm64 --variant=minbase \
    --include="$TREE_PACKAGES" "$SUITE" "$tree" "$MIRROR" > "$tree.log" 2>&1 \
    || { tail -20 "$tree.log" >&2; die "debootstrap failed (log: $tree.log)"; }
  say "unpacking $(find "$tree/var/cache/apt/archives" -name '*.deb' | wc -l) packages"
  # dpkg-deb -x would replace the merged-/usr links (bin -> usr/bin, lib -> usr/lib) with
  # directories; tar --keep-directory-symlink unpacks through them, as dpkg does.
  for deb in "$tree"/var/cache/apt/archives/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | "${SUDO[@]}" tar -x -C "$tree" --keep-directory-symlink \
      || die "cannot unpack $deb"
  done
  # The alternatives links (libblas.so.3, liblapack.so.3, ...) are made by the packages'
  # postinst scripts, which never ran: make them as update-alternatives would in auto mode
  # (highest priority wins; OpenBLAS 100 over the reference BLAS 10), as relative links so
  # that they resolve inside the tree under qemu -L.
  "${SUDO[@]}" "$HOST_PY" - "$tree" <<'EOF' || die "cannot make the alternatives links"
import glob, os, re, subprocess, sys
root = sys.argv[1]
best = {}
for deb in sorted(glob.glob(os.path.join(root, "var/cache/apt/archives/*.deb"))):
    r = subprocess.run(["dpkg-deb", "-I", deb, "postinst"], capture_output=True, text=True)
    if r.returncode:
        continue
    text = r.stdout.replace("\\\n", " ")
    for m in re.finditer(r"update-alternatives\s+--install\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)", text):
        link, _, target, prio = m.groups()
        if "$" in link + target or not re.search(r"/lib[^/]*\.so[.0-9]*$", link):
            continue
        if os.path.lexists(root + target) and (link not in best or int(prio) > best[link][1]):
            best[link] = (target, int(prio))
for link, (target, prio) in sorted(best.items()):
    dst = root + link
    if os.path.lexists(dst):
        os.remove(dst)
    os.symlink(os.path.relpath(target, os.path.dirname(link)), dst)
    print(f"arm64-check:   {link} -> {target} (priority {prio})")
for need in ("libblas.so.3", "liblapack.so.3"):
    if not any(link.endswith("/" + need) for link in best):
        sys.exit(f"no alternative for {need}")
EOF
  "${SUDO[@]}" rm -f "$tree"/var/cache/apt/archives/*.deb
  qemu-aarch64-static -L "$tree" "$tree/usr/bin/python3" -c \
    'import numpy, scipy.linalg.cython_blas, platform; print("arm64-check:   tree python", platform.machine(), platform.python_version(), "numpy", numpy.__version__)' \
    || die "the tree's python3 does not run under qemu"
  "${SUDO[@]}" touch "$tree/$MARKER"
}

if [ ! -f "$ROOT/$MARKER" ]; then
  [ ! -e "$ROOT" ] || die "$ROOT exists but is not a finished tree from this script: remove it"
  make_tree "$ROOT.partial"
  "${SUDO[@]}" mv "$ROOT.partial" "$ROOT"
  "${SUDO[@]}" rm -f "$ROOT.partial.log"
  say "arm64 tree ready in $ROOT"
else
  say "using the arm64 tree in $ROOT"
fi

# -- 3. staging copy of the package and the cross-built kernels -----------------------------------
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/pedal-arm64.XXXXXX")
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ "${ARM64_KEEP:-0}" = 1 ]; then say "kept $STAGE"; else rm -rf "$STAGE"; fi
}
trap cleanup EXIT
PKG=$STAGE/pkg
mkdir -p "$PKG" "$STAGE/build" "$STAGE/data"
tar -C "$REPO" --exclude=__pycache__ --exclude='*.so' -cf - pedal | tar -C "$PKG" -xf -
tar -C "$REPO" --exclude=__pycache__ -cf - models | tar -C "$PKG/pedal" -xf -
mkdir -p "$PKG/pedal/kernels"
cp "$REPO/kernels/__init__.py" "$PKG/pedal/kernels/"
cp "$REPO/deploy/arm64_numerics.py" "$STAGE/"

# The tree's own build configuration, as setuptools would read it on the Pi.
mapfile -t SYSCONFIG < <("$HOST_PY" - "$ROOT" <<'EOF'
import glob, runpy, shlex, sys
root = sys.argv[1]
path = glob.glob(root + "/usr/lib/python3.11/_sysconfigdata__linux_aarch64-linux-gnu.py")[0]
v = runpy.run_path(path)["build_time_vars"]
print(v["CFLAGS"] + " " + v["CCSHARED"])
print(" ".join(shlex.split(v["LDSHARED"])[1:]))
print(v["EXT_SUFFIX"])
print(root + v["INCLUDEPY"])
EOF
)
[ "${#SYSCONFIG[@]}" -eq 4 ] || die "cannot read the tree's sysconfig"
read -r -a TREE_CFLAGS <<< "${SYSCONFIG[0]}"
read -r -a TREE_LDFLAGS <<< "${SYSCONFIG[1]}"
EXT_SUFFIX=${SYSCONFIG[2]}
PY_INC=${SYSCONFIG[3]}
PYCONFIG=$(find "$ROOT/usr/include" -path '*aarch64-linux-gnu/python3.11/pyconfig.h' | head -1)
NP_INC=$(find "$ROOT/usr/lib/python3/dist-packages/numpy" -type d -path '*core/include' | head -1)
if [ ! -f "$PY_INC/Python.h" ] || [ -z "$PYCONFIG" ] || [ -z "$NP_INC" ]; then
  die "Python or numpy headers missing in $ROOT"
fi
# The tree is the sysroot: its C library headers and crt files (libc6-dev), the multiarch
# include dir that Debian's Python.h needs for pyconfig.h; libc6-dev-arm64-cross is not needed.
SYSROOT=(--sysroot="$ROOT")
INCLUDES=(-I"$NP_INC" -I"$REPO/kernels" -I"$PY_INC")
# The kernels cimport their base class as pedal.kernels._processor: Cython finds its .pxd
# under pedal/kernels/ in an include folder (setup.py makes the same link).
mkdir -p "$STAGE/include/pedal"
ln -s "$REPO/kernels" "$STAGE/include/pedal/kernels"
CYTHON_INCLUDES=(-I "$REPO/kernels" -I "$STAGE/include")

cythonize_host() {  # pyx -> c with the desktop's Cython (cimports scipy's pxd from here)
  "$HOST_PY" -m cython -3 "${CYTHON_INCLUDES[@]}" -X "$CYTHON_DIRECTIVES" \
    --module-name "pedal.kernels.$1" -o "$STAGE/build/$1.c" "$REPO/kernels/$1.pyx"
}
# The tree's cython3 under qemu (with its scipy's pxd). Bookworm's is 0.29.32, older than
# pyproject's cython>=3.0: it cannot compile the kernels (no fabsf in its libc.math).
cythonize_tree() {
  "${QEMU[@]}" "$ROOT/usr/bin/python3" -m cython -3 "${CYTHON_INCLUDES[@]}" \
    -X "$CYTHON_DIRECTIVES" \
    --module-name "pedal.kernels.$1" -o "$STAGE/build/$1.c" "$REPO/kernels/$1.pyx" \
    > "$STAGE/build/$1.cython3.log" 2>&1 \
    || { grep -m 3 -E '\.p(yx|xd):[0-9]+:[0-9]+:' "$STAGE/build/$1.cython3.log" >&2; return 1; }
}
cross_compile() {
  "$CROSS_CC" "${SYSROOT[@]}" "${TREE_CFLAGS[@]}" "${SETUP_DEFINES[@]}" "${INCLUDES[@]}" \
    -c "$STAGE/build/$1.c" -o "$STAGE/build/$1.o" "${SETUP_CFLAGS[@]}" \
    2> "$STAGE/build/$1.log" \
  && "$CROSS_CC" "${SYSROOT[@]}" "${TREE_LDFLAGS[@]}" "$STAGE/build/$1.o" \
    -o "$PKG/pedal/kernels/$1$EXT_SUFFIX" 2>> "$STAGE/build/$1.log"
}

cython_version=$("$HOST_PY" -m cython --version 2>&1)
say "kernels: $cython_version here, $CROSS_CC $("$CROSS_CC" -dumpversion)"
for pyx in "$REPO"/kernels/*.pyx; do
  name=$(basename "$pyx" .pyx)
  cythonize_host "$name" || die "cython failed on $pyx"
  if ! cross_compile "$name"; then
    say "$name: $cython_version output does not compile for the tree; trying its cython3"
    grep -m 5 'error' "$STAGE/build/$name.log" >&2 || true
    cythonize_tree "$name" || die "the tree's cython3 failed on $pyx"
    cross_compile "$name" || { cat "$STAGE/build/$name.log" >&2; die "$name does not compile"; }
  fi
  warnings=$(grep -c 'warning:' "$STAGE/build/$name.log" || true)
  say "  pedal/kernels/$name$EXT_SUFFIX ($(stat -c %s "$PKG/pedal/kernels/$name$EXT_SUFFIX") bytes, $warnings compiler warnings)"
done

# -- 4. expected outputs here, then the numbers under qemu ----------------------------------------
say "references on the desktop ($SAMPLES samples)"
PYTHONDONTWRITEBYTECODE=1 "$HOST_PY" "$REPO/deploy/arm64_numerics.py" prepare "$STAGE/data" \
  --samples "$SAMPLES" --shared "$SHARED" > "$STAGE/prepare.log" 2>&1 \
  || { cat "$STAGE/prepare.log" >&2; die "preparing the references failed"; }
grep '^prepare:' "$STAGE/prepare.log" || true

say "streaming under qemu-aarch64-static with the tree's python3"
status=0
env -i PATH=/usr/bin:/bin HOME="$STAGE" LANG=C.UTF-8 PYTHONPATH="$PKG" \
  PYTHONDONTWRITEBYTECODE=1 PYTHONNOUSERSITE=1 \
  "${QEMU[@]}" "$ROOT/usr/bin/python3" "$STAGE/arm64_numerics.py" check \
  "$STAGE/data/manifest.json" || status=1

# The small-matrix building blocks that no shipped kernel uses yet, against numpy run there
# (-P: not the checkout's pedal/ from the current directory).
say "building blocks under qemu: tests/test_blocks.py with the tree's pytest"
mkdir -p "$STAGE/tests"
cp "$REPO/tests/conftest.py" "$REPO/tests/test_blocks.py" "$STAGE/tests/"
env -i PATH=/usr/bin:/bin HOME="$STAGE" LANG=C.UTF-8 PYTHONPATH="$PKG" \
  PYTHONDONTWRITEBYTECODE=1 PYTHONNOUSERSITE=1 \
  "${QEMU[@]}" "$ROOT/usr/bin/python3" -P -m pytest -q -p no:cacheprovider "$STAGE/tests" \
  || status=1
say "done in $((SECONDS - T0)) s: $([ "$status" -eq 0 ] && echo 'all passed' || echo FAILED)"
exit "$status"
