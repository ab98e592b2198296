#!/usr/bin/env bash
# Remove what deploy/install-pi.sh installed (run as root; idempotent).
#
#   sudo bash deploy/uninstall-pi.sh [--purge] [--dry-run]
#
# Keeps /var/lib/pedal (models, IRs, presets), /etc/pedal and the user pedal unless --purge.
# Restores /boot/firmware/cmdline.txt from the backup install-pi.sh made for --isolcpus.
# --dry-run prints every action and changes nothing (allowed anywhere, as any user).
set -euo pipefail

PREFIX=/opt/pedal
ETC=/etc/pedal
STATE=/var/lib/pedal
UNIT_DIR=/etc/systemd/system
CMDLINE=/boot/firmware/cmdline.txt
LIMITS=/etc/security/limits.d/pedal.conf
COMPLETION=/etc/bash_completion.d/pedal
UNITS=(pedal.service pedal-cpu-performance.service)

DRY_RUN=0
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall-pi: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "uninstall-pi: $*"; }
run() {
  if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi
}

problem=""
if [ "$(id -u)" -ne 0 ]; then
  problem="must run as root (sudo bash deploy/uninstall-pi.sh)"
elif ! grep -qsE '^(ID|ID_LIKE)=.*debian' /etc/os-release; then
  problem="this is not Debian / Raspberry Pi OS (no ID=debian in /etc/os-release)"
fi
if [ -n "$problem" ]; then
  if [ "$DRY_RUN" = 1 ]; then
    say "note: $problem; --dry-run only prints the actions"
  else
    echo "uninstall-pi: $problem" >&2
    exit 1
  fi
fi

say "stop and disable the services"
if command -v systemctl >/dev/null || [ "$DRY_RUN" = 1 ]; then
  run systemctl disable --now "${UNITS[@]}" || true
fi
for unit in "${UNITS[@]}"; do
  run rm -f "$UNIT_DIR/$unit"
done
if command -v systemctl >/dev/null || [ "$DRY_RUN" = 1 ]; then
  run systemctl daemon-reload || true
fi

say "remove $PREFIX, /usr/local/bin/pedal, $LIMITS and $COMPLETION"
run rm -rf "$PREFIX"
if [ -L /usr/local/bin/pedal ] || [ "$DRY_RUN" = 1 ]; then
  run rm -f /usr/local/bin/pedal
fi
run rm -f "$LIMITS" "$COMPLETION"

if [ -e "$CMDLINE.pedal-backup" ] || [ "$DRY_RUN" = 1 ]; then
  say "restore $CMDLINE from $CMDLINE.pedal-backup (reboot to apply)"
  run mv -f "$CMDLINE.pedal-backup" "$CMDLINE"
fi

if [ "$PURGE" = 1 ]; then
  say "--purge: remove $STATE, $ETC and the user pedal"
  run rm -rf "$STATE" "$ETC"
  if id pedal >/dev/null 2>&1 || [ "$DRY_RUN" = 1 ]; then
    run userdel pedal
  fi
else
  say "kept $STATE (models, IRs, presets), $ETC and the user pedal (--purge removes them)"
fi
say "done"
