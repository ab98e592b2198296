#!/usr/bin/env bash
# Install the pedal as a service on Raspberry Pi OS bookworm 64-bit (run as root from the
# checkout; idempotent: run it again after `git pull` to upgrade).
#
#   sudo bash deploy/install-pi.sh [--isolcpus N] [--push-user USER] [--dry-run]
#
# What it does:
#   - apt: python3-venv python3-dev build-essential libasound2-dev (builds pyalsaaudio),
#     libsndfile1 (soundfile), alsa-utils (aplay -l, alsamixer). No python3-lgpio: the
#     venv does not see system packages, so gpiozero's pin factory comes from pip (`lgpio`,
#     aarch64 wheels with liblgpio inside). No system BLAS: the numpy and scipy wheels
#     bundle OpenBLAS.
#   - a `pedal` system user in the groups audio, gpio, spi (created if missing);
#     USER (--push-user, default $SUDO_USER or pi) joins group `pedal` so `pedal-push` and
#     `pedal ctl` over SSH can write /var/lib/pedal and talk to /run/pedal/control.sock.
#   - /opt/pedal/venv with this checkout installed as `.[device]` (no torch), and bash
#     completion for `pedal` in /etc/bash_completion.d/pedal. The kernels
#     need Cython 3 (Debian's cython3 is 0.29): pip's build isolation installs the build
#     requirements of pyproject.toml (cython>=3, numpy, scipy) itself.
#   - /etc/pedal/pedal.toml from deploy/pedal.toml (every key, commented out) if absent
#     (never overwritten).
#   - /var/lib/pedal/{models,irs,presets}, group-writable, setgid group pedal.
#   - deploy/pedal.service -> /etc/systemd/system, enabled and (re)started.
#   - the `performance` CPU governor at every boot: a oneshot unit pedal-cpu-performance
#     .service writing scaling_governor (no cpufrequtils: one unit, nothing to configure,
#     removed cleanly by uninstall-pi.sh).
#   - /etc/security/limits.d/pedal.conf: rtprio 95 and unlimited memlock for group audio,
#     for `pedal run` from a login shell (the service sets its own limits).
#   - --isolcpus N: appends isolcpus=N to /boot/firmware/cmdline.txt (bookworm's location;
#     backup cmdline.txt.pedal-backup) to keep the kernel's other work off core N; reboot.
#   - --dry-run: print every action, change nothing (allowed anywhere, as any user).
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/pedal
VENV="$PREFIX/venv"
ETC=/etc/pedal
STATE=/var/lib/pedal
UNIT_DIR=/etc/systemd/system
CMDLINE=/boot/firmware/cmdline.txt
LIMITS=/etc/security/limits.d/pedal.conf
COMPLETION=/etc/bash_completion.d/pedal
APT_PACKAGES=(python3-venv python3-dev build-essential libasound2-dev libsndfile1
              alsa-utils)

DRY_RUN=0
ISOLCPUS=""
PUSH_USER="${SUDO_USER:-pi}"

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --isolcpus) ISOLCPUS="${2:?--isolcpus needs a CPU number or list, e.g. 3}"; shift ;;
    --isolcpus=*) ISOLCPUS="${1#*=}" ;;
    --push-user) PUSH_USER="${2:?--push-user needs a user name}"; shift ;;
    --push-user=*) PUSH_USER="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-pi: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$ISOLCPUS" ] && ! [[ "$ISOLCPUS" =~ ^[0-9]+([,-][0-9]+)*$ ]]; then
  echo "install-pi: --isolcpus $ISOLCPUS: expected a CPU number or list such as 3 or 2-3" >&2
  exit 2
fi

say() { echo "install-pi: $*"; }
# run CMD...: do it, or with --dry-run print it.
run() {
  if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi
}
# put_file PATH MODE OWNER: stdin to PATH (atomically), or with --dry-run print what.
put_file() {
  local path=$1 mode=$2 owner=$3 tmp
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ write $path (mode $mode, owner $owner):"
    sed 's/^/|   /'
    return
  fi
  tmp="$(mktemp "$path.XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  mv -f "$tmp" "$path"
}

preflight() {
  local problem=""
  if [ "$(id -u)" -ne 0 ]; then
    problem="must run as root (sudo bash deploy/install-pi.sh)"
  elif ! grep -qsE '^(ID|ID_LIKE)=.*debian' /etc/os-release; then
    problem="this is not Debian / Raspberry Pi OS (no ID=debian in /etc/os-release)"
  elif ! command -v apt-get >/dev/null; then
    problem="apt-get not found"
  fi
  if [ -n "$problem" ]; then
    if [ "$DRY_RUN" = 1 ]; then
      say "note: $problem; --dry-run only prints the actions"
    else
      echo "install-pi: $problem" >&2
      exit 1
    fi
  fi
  if ! grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
    say "note: written for bookworm; this is $(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release 2>/dev/null)"
  fi
}

install_packages() {
  say "step 1/8: system packages"
  run apt-get -o DPkg::Lock::Timeout=300 update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${APT_PACKAGES[@]}"
}

create_user() {
  say "step 2/8: user pedal (groups audio gpio spi)"
  local g
  for g in audio gpio spi; do
    getent group "$g" >/dev/null || run groupadd --system "$g"
  done
  if id pedal >/dev/null 2>&1; then
    run usermod -a -G audio,gpio,spi pedal
  else
    run useradd --system --user-group --home-dir "$STATE" --no-create-home \
      --shell /usr/sbin/nologin --groups audio,gpio,spi pedal
  fi
  if id "$PUSH_USER" >/dev/null 2>&1; then
    run usermod -a -G pedal "$PUSH_USER"
  else
    say "no user $PUSH_USER: pedal-push needs an SSH user in group pedal (--push-user)"
  fi
}

install_venv() {
  say "step 3/8: venv $VENV with pedal[device] from $SRC (no torch)"
  run mkdir -p "$PREFIX"
  [ -x "$VENV/bin/python" ] || run python3 -m venv "$VENV"
  run "$VENV/bin/python" -m pip install -q --upgrade pip
  # Build isolation installs cython>=3, numpy, scipy from pyproject.toml for the kernels.
  run "$VENV/bin/python" -m pip install -q --upgrade "${SRC}[device]" lgpio
  run install -m 0644 "$SRC/README.md" "$PREFIX/README.md"
  run ln -sfn "$VENV/bin/pedal" /usr/local/bin/pedal
  # bash completion, generated from the installed commands' own parsers
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ write $COMPLETION (from $VENV/bin/python -m pedal.cli.completion)"
  else
    "$VENV/bin/python" -m pedal.cli.completion | put_file "$COMPLETION" 0644 root:root
  fi
}

install_config() {
  say "step 4/8: $ETC/pedal.toml and $STATE"
  run install -d -m 0750 -o root -g pedal "$ETC"
  if [ -e "$ETC/pedal.toml" ]; then
    say "$ETC/pedal.toml exists: kept"
  else
    # deploy/pedal.toml, every key, each setting commented out (table headers kept)
    sed -E '/^\[[a-z]+\]/! s/^([^#[:space:]])/# \1/' "$SRC/deploy/pedal.toml" |
      put_file "$ETC/pedal.toml" 0640 root:pedal
  fi
  run install -d -m 0770 -o pedal -g pedal "$STATE"
  local d
  for d in models irs presets; do
    run install -d -m 2770 -o pedal -g pedal "$STATE/$d"
  done
}

install_unit() {
  say "step 5/8: $UNIT_DIR/pedal.service"
  run install -m 0644 "$SRC/deploy/pedal.service" "$UNIT_DIR/pedal.service"
}

install_governor() {
  say "step 6/8: performance CPU governor at boot (pedal-cpu-performance.service)"
  put_file "$UNIT_DIR/pedal-cpu-performance.service" 0644 root:root <<'EOF'
[Unit]
Description=CPU frequency governor 'performance' for the pedal (no frequency ramps mid-period)
Before=pedal.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for g in /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor; do [ -w "$g" ] && echo performance > "$g"; done; true'

[Install]
WantedBy=multi-user.target
EOF
}

install_limits() {
  say "step 7/8: $LIMITS (rtprio, memlock for group audio)"
  put_file "$LIMITS" 0644 root:root <<'EOF'
# Installed by the pedal: real-time priority and locked memory for `pedal run` from a
# login shell (pedal.service sets LimitRTPRIO/LimitMEMLOCK itself).
@audio   -  rtprio   95
@audio   -  memlock  unlimited
EOF
}

install_isolcpus() {
  [ -n "$ISOLCPUS" ] || return 0
  say "step 7b: isolcpus=$ISOLCPUS in $CMDLINE (reboot to apply)"
  if [ "$DRY_RUN" != 1 ] && [ ! -f "$CMDLINE" ]; then
    echo "install-pi: $CMDLINE not found (not Raspberry Pi OS bookworm?)" >&2
    exit 1
  fi
  if grep -qsE '(^| )isolcpus=' "$CMDLINE"; then
    say "$CMDLINE already has isolcpus=: left as is"
    return 0
  fi
  [ -e "$CMDLINE.pedal-backup" ] || run cp -p "$CMDLINE" "$CMDLINE.pedal-backup"
  # cmdline.txt is one line: append to it.
  run sed -i "1 s/\$/ isolcpus=$ISOLCPUS/" "$CMDLINE"
}

enable_services() {
  say "step 8/8: enable and (re)start the services"
  run systemctl daemon-reload
  run systemctl enable pedal-cpu-performance.service pedal.service
  run systemctl restart pedal-cpu-performance.service
  run systemctl restart pedal.service
  say "done: systemctl status pedal; journalctl -u pedal -f"
}

preflight
install_packages
create_user
install_venv
install_config
install_unit
install_governor
install_limits
install_isolcpus
enable_services
