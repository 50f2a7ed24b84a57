#!/usr/bin/env bash
# What `make test` needs running before pytest: RabbitMQ (with its management API and an administrator: the
# suite deletes and recreates its own vhost with `klients-bus setup --fresh`), PostgreSQL (the test
# databases, emptied by the suite), Keycloak. The suite starts identity, the services and the SMTP server itself.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/deploy/rabbitmq.sh"
bash "$ROOT/deploy/postgres.sh" klients_test_identity klients_test_billing klients_test_metering klients_test_notifications klients_test_portal \
  klients_test_cluster_identity klients_test_cluster_billing klients_test_cluster_metering klients_test_cluster_notifications
bash "$ROOT/deploy/keycloak.sh"
apt_install chromium  # the browser tests drive Debian's Chromium with Playwright (never a downloaded browser)
# The portal's accessibility check injects axe-core (npm, pinned) into each page (tests/test_portal_a11y.py).
AXE_VERSION=4.11.0
if [ "$(cat "$VAR/test-node/axe-version" 2>/dev/null)" != "$AXE_VERSION" ]; then
  command -v npm >/dev/null || apt_install npm
  npm install --silent --no-audit --no-fund --prefix "$VAR/test-node" "axe-core@$AXE_VERSION" \
    && echo "$AXE_VERSION" > "$VAR/test-node/axe-version"
fi
