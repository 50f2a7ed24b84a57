#!/usr/bin/env bash
# What `make test` needs running before pytest: RabbitMQ (vhost klients_test), PostgreSQL (the test
# databases), Keycloak. The suite starts identity, the services and the SMTP server itself.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/deploy/rabbitmq.sh" klients_test
bash "$ROOT/deploy/postgres.sh" klients_test_identity klients_test_billing klients_test_metering klients_test_notifications
bash "$ROOT/deploy/keycloak.sh"
apt_install chromium  # the browser tests drive Debian's Chromium with Playwright (never a downloaded browser)
