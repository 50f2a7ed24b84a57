#!/usr/bin/env bash
# Install (Debian package) and start RabbitMQ on 127.0.0.1:5672 unless it already answers, with its management
# API on 127.0.0.1:15672 and an administrator `klients-admin` for `klients-bus setup` (password in
# var/rabbitmq-admin, made on first use). The components' own users, permissions and topology are made by
# `klients-bus setup` (see docs/bus.md); no component uses `guest`.
source "$(dirname "$0")/lib.sh"

if ! port_open 5672; then
  apt_install rabbitmq-server
  say "starting RabbitMQ"
  as_root service rabbitmq-server start >/dev/null 2>&1 || as_root rabbitmq-server -detached
  wait_for 120 RabbitMQ as_root rabbitmqctl await_startup
fi
wait_for 60 "RabbitMQ port 5672" port_open 5672
if ! port_open 15672; then
  say "enabling RabbitMQ's management API"
  as_root rabbitmq-plugins enable rabbitmq_management >/dev/null
  wait_for 60 "RabbitMQ management API" port_open 15672
fi

secret="$ROOT/var/rabbitmq-admin"
[ -s "$secret" ] || { (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$secret"); }
if ! curl -fsS -o /dev/null -u "klients-admin:$(cat "$secret")" http://127.0.0.1:15672/api/whoami; then
  say "creating RabbitMQ administrator klients-admin"
  as_root rabbitmqctl -q add_user klients-admin "$(cat "$secret")" 2>/dev/null \
    || as_root rabbitmqctl -q change_password klients-admin "$(cat "$secret")"
  as_root rabbitmqctl -q set_user_tags klients-admin administrator
  wait_for 30 "the RabbitMQ administrator" curl -fsS -o /dev/null -u "klients-admin:$(cat "$secret")" \
    http://127.0.0.1:15672/api/whoami
fi
