#!/usr/bin/env bash
# Install (Debian package) and start RabbitMQ on 127.0.0.1:5672 unless it already answers.
# With a vhost argument, also create that vhost for the guest user (the test suite uses its own).
source "$(dirname "$0")/lib.sh"

vhost="${1:-}"
if ! port_open 5672; then
  apt_install rabbitmq-server
  say "starting RabbitMQ"
  as_root service rabbitmq-server start >/dev/null 2>&1 || as_root rabbitmq-server -detached
  wait_for 120 RabbitMQ as_root rabbitmqctl await_startup
fi
wait_for 60 "RabbitMQ port 5672" port_open 5672
if [ -n "$vhost" ] && ! as_root rabbitmqctl -q list_vhosts | grep -qx "$vhost"; then
  as_root rabbitmqctl -q add_vhost "$vhost"
  as_root rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
fi
