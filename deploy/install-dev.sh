#!/usr/bin/env bash
# Desktop / CI set-up on Debian bookworm: system packages, CPU torch, the package with its
# desktop, device and test extras, kernels built in place. Idempotent; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null; then
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  # libasound2-dev builds pyalsaaudio; jackd2 and the ALSA jack plugin give the tests a
  # real-time paced device on machines without a sound card; systemd (not running) brings
  # systemd-analyze to check the unit, shellcheck the scripts; lv2apply and guitarix's LV2
  # plugins are gear to capture; libportaudio2 lets pedal-abx play its clips (sounddevice).
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends gcc libsndfile1 libasound2-dev alsa-utils jackd2 \
    libasound2-plugins systemd shellcheck lilv-utils guitarix-lv2 libportaudio2 >/dev/null
fi
PY=${PYTHON:-python3}
# CPU torch first: any other torch spec pulls several GB of CUDA packages.
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q "setuptools>=70" wheel "cython>=3.0" numpy scipy
$PY -m pip install -q --no-build-isolation -e ".[train,test,device]"
# bash completion for every command, generated from their parsers
if [ -d /etc/bash_completion.d ] && [ -w /etc/bash_completion.d ]; then
  $PY -m pedal.cli.completion > /etc/bash_completion.d/pedal
fi
echo "install-dev: pedal $($PY -c 'import pedal; print(pedal.__version__)') installed with kernels"
