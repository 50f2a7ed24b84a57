# Shared helpers for the deploy scripts (sourced, not run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${KLIENTS_VAR_DIR:-$ROOT/var}"
VENV="${KLIENTS_VENV:-$ROOT/.venv}"
KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.7.3}"
mkdir -p "$VAR/log" "$VAR/run"

say() { printf '\033[1m[klients]\033[0m %s\n' "$*"; }
die() { printf '[klients] error: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=""
apt_install() {
  # apt_install PACKAGE...: install the Debian packages that are missing.
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt)"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$VAR/log/apt.log" 2>&1 \
    || { tail -20 "$VAR/log/apt.log"; die "apt-get install ${missing[*]} failed"; }
}

wait_for() {
  # wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every half second until it succeeds.
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && die "$what did not come up within ${seconds}s"
    sleep 0.5
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
