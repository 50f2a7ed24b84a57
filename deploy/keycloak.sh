#!/usr/bin/env bash
# Install Keycloak from its release zip (Maven Central, cached under var/cache) and start it on
# 127.0.0.1:8080 (health and metrics on 127.0.0.1:9000) with a bootstrap admin, unless it already
# answers. Dev mode with its H2 file database: enough for one machine and for tests.
source "$(dirname "$0")/lib.sh"

KC_HOME="$VAR/keycloak/keycloak-$KEYCLOAK_VERSION"
ZIP="$VAR/cache/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip"
ready() { curl -fsS -o /dev/null http://127.0.0.1:9000/health/ready; }

if ready; then exit 0; fi
apt_install curl unzip
if [ ! -x "$KC_HOME/bin/kc.sh" ]; then
  if [ ! -s "$ZIP" ]; then
    command -v mvn >/dev/null || apt_install maven
    say "downloading Keycloak $KEYCLOAK_VERSION from Maven Central"
    mvn -q dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
      -DoutputDirectory="$VAR/cache" -Dmdep.overWriteIfNewer=true >"$VAR/log/keycloak-download.log" 2>&1 \
      || { tail -20 "$VAR/log/keycloak-download.log"; die "Keycloak download failed"; }
  fi
  mkdir -p "$VAR/keycloak"
  unzip -q -o "$ZIP" -d "$VAR/keycloak"
fi

# Keycloak 26 still runs on Java 17 (deprecated); prefer a newer JDK when the machine has one.
if [ -z "${JAVA_HOME:-}" ]; then
  for jdk in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64; do
    [ -x "$jdk/bin/java" ] && { export JAVA_HOME="$jdk"; break; }
  done
fi
if [ -z "${JAVA_HOME:-}" ] && ! command -v java >/dev/null; then apt_install openjdk-17-jre-headless; fi

say "starting Keycloak $KEYCLOAK_VERSION (log: $VAR/log/keycloak.log)"
export KC_BOOTSTRAP_ADMIN_USERNAME="${KEYCLOAK_ADMIN_USER:-admin}"
export KC_BOOTSTRAP_ADMIN_PASSWORD="${KEYCLOAK_ADMIN_PASSWORD:-admin}"
export JAVA_OPTS_KC_HEAP="${JAVA_OPTS_KC_HEAP:--Xms256m -Xmx1g}"
# A session of its own (setsid): Keycloak outlives the shell or job that started it, and stopping that
# shell's process group (an interrupted `make test`, a CI step ending) does not take it down; `make stop`
# stops it by its pid file.
setsid nohup "$KC_HOME/bin/kc.sh" start-dev --http-host=127.0.0.1 --http-port=8080 \
  --health-enabled=true --metrics-enabled=true --http-management-port=9000 \
  >"$VAR/log/keycloak.log" 2>&1 &
echo $! > "$VAR/run/keycloak.pid"
wait_for 240 Keycloak ready
say "Keycloak ready at http://127.0.0.1:8080 (admin console: /admin, user ${KC_BOOTSTRAP_ADMIN_USERNAME})"
