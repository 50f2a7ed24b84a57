#!/usr/bin/env bash
# `make stop`: stop what `make run` started (listed in var/run/make-run.started, by pid files in
# var/run). With names, only those. RabbitMQ and PostgreSQL are system services and keep running.
source "$(dirname "$0")/lib.sh"
names=("$@")
if [ ${#names[@]} -eq 0 ] && [ -f "$VAR/run/make-run.started" ]; then
  read -r -a names < "$VAR/run/make-run.started"
  rm -f "$VAR/run/make-run.started"
fi
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
