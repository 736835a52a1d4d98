# Shared set-up steps for scripts/demo and scripts/test (sourced, not run).
# Creates virtual environments when missing and installs only when the inputs changed,
# so a second run is fast.

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (run it yourself, or install sudo)"; fi
}

apt_install() {  # apt_install PKG... : installs the Debian packages that are missing
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing system packages ${missing[*]} and no apt-get here: install them by hand"
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

is_raspberry_pi() { grep -qs "Raspberry Pi" /proc/device-tree/model; }

check_python() {
  command -v "$PYTHON" >/dev/null || apt_install python3
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PYTHON is $("$PYTHON" -V 2>&1); kiosk needs Python >= 3.11 (Debian 12 / Raspberry Pi OS bookworm have it)"
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
}

# ensure_venv DIR PIP_ARGS... : create DIR (a venv) if missing; pip install PIP_ARGS when they,
# pyproject.toml or this file changed since the last install.
ensure_venv() {
  local dir="$1"; shift
  local venv_flags=()
  if [ ! -x "$dir/bin/python" ]; then
    check_python
    if is_raspberry_pi && [[ "$dir" != *-tflite && "$dir" != *-convert ]]; then
      # picamera2 and libcamera come only from Raspberry Pi OS's apt (see ../shared/docs/pi.md)
      apt_install python3-picamera2
      venv_flags+=(--system-site-packages)
    fi
    say "creating virtual environment $dir"
    "$PYTHON" -m venv "${venv_flags[@]}" "$dir"
  fi
  local stamp="$dir/.kiosk-install-stamp"
  local want
  want="$(cat "$PROJECT_ROOT/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16) $*"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  say "installing into $dir: $*"
  pip_quiet "$dir" install "$@" || die "pip install into $dir failed (see above); fix the cause and run this again"
  echo "$want" > "$stamp"
}

pip_quiet() {  # pip_quiet VENV ARGS... : pip with its noise filtered, keeping its exit status
  local dir="$1"; shift
  local log rc=0
  log="$(mktemp)"
  "$dir/bin/python" -m pip --disable-pip-version-check "$@" -q >"$log" 2>&1 || rc=$?
  grep -v "^WARNING: Location" "$log" >&2 || true
  rm -f "$log"
  return $rc
}

shared_data() {  # prints ../shared/data when it is beside the checkout
  local d="${KIOSK_DATA_DIR:-$PROJECT_ROOT/../shared/data}"
  [ -d "$d" ] && (cd "$d" && pwd)
}
