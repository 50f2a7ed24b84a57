#!/usr/bin/env bash
# The bench's own tools: wrk (Debian package; the HTTP load generator) and py-spy (PyPI, pinned in
# requirements.lock; the sampling profiler of `BENCH_PROFILE=1 make bench`, which needs ptrace: run as root).
source "$(dirname "$0")/../deploy/lib.sh"
apt_install wrk
if ! "$VENV/bin/python" -c 'import importlib.metadata as m; m.version("py-spy")' 2>/dev/null; then
  say "installing py-spy (pip, version from requirements.lock)"
  "$VENV/bin/pip" install -q "$(grep -i '^py-spy==' "$ROOT/requirements.lock")"
fi
