#!/usr/bin/env bash
# Create or update the project's virtualenv (.venv): pinned packages from requirements.lock, then every
# Klients package in editable mode. Quick when nothing changed (a stamp of the inputs' checksums).
source "$(dirname "$0")/lib.sh"

PACKAGES=(libs/klients_common services/identity services/billing services/metering services/notifications gateway portal simulators)
stamp_inputs() { cd "$ROOT" && cat requirements.lock "${PACKAGES[@]/%//pyproject.toml}" | sha256sum | cut -d' ' -f1; }

want=$(stamp_inputs)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.klients-stamp" 2>/dev/null)" = "$want" ]; then exit 0; fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is needed"
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip' >/dev/null 2>&1; then apt_install python3-venv; fi
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
say "installing pinned Python packages"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements.lock"
args=(); for p in "${PACKAGES[@]}"; do args+=(-e "$ROOT/$p"); done
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "${args[@]}"
echo "$want" > "$VENV/.klients-stamp"
