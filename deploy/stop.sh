#!/usr/bin/env bash
# `make stop`: stop what `make run` started (by pid files in var/run). With names, only those.
source "$(dirname "$0")/lib.sh"
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(gateway identity billing metering notifications smtp keycloak)
for name in "${names[@]}"; do
  pidfile="$VAR/run/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
