#!/usr/bin/env bash
# Desktop / CI set-up on Debian bookworm: system packages, CPU torch, the package with its
# desktop and test extras, kernels built in place. Idempotent; run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null; then
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends gcc libsndfile1 >/dev/null
fi
PY=${PYTHON:-python3}
# CPU torch first: any other torch spec pulls several GB of CUDA packages.
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q "setuptools>=70" wheel "cython>=3.0" numpy scipy
$PY -m pip install -q --no-build-isolation -e ".[train,test]"
echo "install-dev: pedal $($PY -c 'import pedal; print(pedal.__version__)') installed with kernels"
