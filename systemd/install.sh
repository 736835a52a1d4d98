#!/usr/bin/env bash
# Install kiosk as a systemd service on a Debian / Raspberry Pi OS machine (run as root, or with sudo).
#
#   sudo systemd/install.sh            # install or upgrade; enables the unit, starts it with --start
#   systemd/install.sh --render-unit PREFIX   # print the unit for PREFIX (used by the tests)
#
# What it does: copies the project to $PREFIX/app (default /opt/kiosk), makes $PREFIX/venv
# (with the system's picamera2 on a Pi), fetches and verifies the models, creates the system
# user "kiosk" (in group video), puts an example config in /etc/kiosk/kiosk.yaml when there is
# none, installs /etc/systemd/system/kiosk.service, checks it with systemd-analyze, enables it.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${PREFIX:-/opt/kiosk}"

render_unit() { sed "s#@PREFIX@#$1#g" "$HERE/kiosk.service.in"; }

if [ "${1:-}" = "--render-unit" ]; then
  render_unit "${2:?usage: install.sh --render-unit PREFIX}"
  exit 0
fi
start=0
[ "${1:-}" = "--start" ] && start=1

. "$HERE/../scripts/lib.sh"
[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 $*"
command -v systemctl >/dev/null && [ -d /run/systemd/system ] || die "systemd is not running here; kiosk's service needs it"

say "copying the project to $PREFIX/app"
mkdir -p "$PREFIX/app"
tar -C "$PROJECT_ROOT" --exclude='./.venv*' --exclude=./.git --exclude=./.cache --exclude='*/__pycache__' -cf - . |
  tar -C "$PREFIX/app" -xf -

PROJECT_ROOT="$PREFIX/app" ensure_venv "$PREFIX/venv" -e "$PREFIX/app"
say "models: fetching the pinned files into $PREFIX/app/models and checking every hash"
"$PREFIX/venv/bin/kiosk" models install --models-dir "$PREFIX/app/models"
"$PREFIX/venv/bin/kiosk" models verify --models-dir "$PREFIX/app/models" --runs 1 >/dev/null

if ! id kiosk >/dev/null 2>&1; then
  say "creating the system user kiosk"
  useradd --system --user-group --home-dir /var/lib/kiosk --no-create-home --shell /usr/sbin/nologin kiosk
fi
getent group video >/dev/null && usermod -a -G video kiosk

install -d -m 0750 -o root -g kiosk /etc/kiosk
if [ ! -f /etc/kiosk/kiosk.yaml ]; then
  say "writing /etc/kiosk/kiosk.yaml from config/kiosk.example.yaml: edit camera, zones and mqtt, then"
  say "check it with: $PREFIX/venv/bin/kiosk check-config /etc/kiosk/kiosk.yaml"
  install -m 0640 -o root -g kiosk "$PREFIX/app/config/kiosk.example.yaml" /etc/kiosk/kiosk.yaml
fi

unit=/etc/systemd/system/kiosk.service
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
render_unit "$PREFIX" > "$staging/kiosk.service"
systemd-analyze verify "$staging/kiosk.service" || die "the rendered unit does not verify (see above); nothing was changed"
install -m 0644 "$staging/kiosk.service" "$unit"
systemctl daemon-reload
systemctl enable kiosk.service
say "exposure (systemd-analyze security): $(systemd-analyze security kiosk.service 2>/dev/null | tail -1)"
if [ "$start" = 1 ]; then
  systemctl restart kiosk.service
  say "started: journalctl -u kiosk -f"
else
  say "enabled; start it with: systemctl start kiosk   (logs: journalctl -u kiosk -f)"
fi
