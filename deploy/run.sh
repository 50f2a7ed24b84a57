#!/usr/bin/env bash
# `make run`: install what is missing, start RabbitMQ, SMTP, Keycloak, migrate and seed, start identity,
# gateway and every nameko service, print what runs where, and stop everything on Ctrl-C.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash deploy/python-env.sh
bash deploy/rabbitmq.sh
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH" KLIENTS_VAR_DIR="$VAR" PYTHONWARNINGS="ignore::DeprecationWarning"

STARTED=()
start() {  # start NAME COMMAND...: run in the background, log to var/log/NAME.log
  local name=$1; shift
  "$@" >"$VAR/log/$name.log" 2>&1 &
  echo $! > "$VAR/run/$name.pid"
  STARTED+=("$name")
  echo "${STARTED[*]}" > "$VAR/run/make-run.started"
}
stop_all() {
  trap - INT TERM EXIT
  say "stopping ${STARTED[*]}"
  bash "$ROOT/deploy/stop.sh" "${STARTED[@]}"
  rm -f "$VAR/run/make-run.started"
}
trap stop_all INT TERM EXIT

if [ "${KLIENTS_KEYCLOAK:-1}" = 1 ]; then
  curl -fsS -o /dev/null http://127.0.0.1:9000/health/ready 2>/dev/null || { rm -f "$VAR/run/keycloak.pid"; STARTED+=(keycloak); echo "${STARTED[*]}" > "$VAR/run/make-run.started"; }
  bash deploy/keycloak.sh
  "$PY" deploy/keycloak/staff_realm.py
fi
# Keycloak-fronted mode (PORTAL_TOKEN_ISSUER=keycloak, docs/keycloak-fronted.md): the portal realm brokers to
# identity and issues the portal's tokens, which the gateway and services must then trust as well.
if [ "${PORTAL_TOKEN_ISSUER:-identity}" = keycloak ]; then
  if [ -z "${TOKEN_ISSUERS:-}" ]; then
    TOKEN_ISSUERS="$("$PY" -c 'import json, os
realm = "http://127.0.0.1:8080/realms/" + os.environ.get("PORTAL_REALM", "klients-portal")
print(json.dumps([{"issuer": os.environ.get("IDENTITY_ISSUER", "http://127.0.0.1:8001"), "audience": "klients-api"},
                  {"issuer": realm, "jwks_uri": realm + "/protocol/openid-connect/certs", "audience": "klients-api",
                   "token_types": ["JWT"], "client_id_claims": ["azp"], "payload_types": ["Bearer"]}]))')"
    export TOKEN_ISSUERS
  fi
fi
if ! port_open 8025; then start smtp "$PY" deploy/devsmtp.py --port 8025 --maildir "$VAR/mail"; fi

# The bus: one broker user per component with only its own permissions, and the whole topology (docs/bus.md).
export BUS_ADMIN_PASSWORD_FILE="$ROOT/var/rabbitmq-admin" BUS_SECRETS_DIR="$VAR/bus"
klients-bus setup
as() { local c=$1; shift; env AMQP_URI="$(klients-bus uri "$c")" "$@"; }  # as COMPONENT COMMAND...: its own user

say "migrating and seeding"
export PAYMENT_RETURN_URL="${PAYMENT_RETURN_URL:-http://127.0.0.1:3000/payment-done}"  # the portal's return page
as identity klients-identity migrate
# The portal realm after identity's migrate: its client for the portal (klients-portal-web) takes the secret
# that migrate wrote to var/portal-client-secret.
if [ "${PORTAL_TOKEN_ISSUER:-identity}" = keycloak ]; then "$PY" deploy/keycloak/portal_realm.py; fi
for svc in billing metering notifications; do as "$svc" "klients-$svc" migrate; done
as billing klients-billing seed-demo
as metering klients-metering seed-demo
klients-portal migrate  # its session table (identity's migrate made its client and var/portal-client-secret;
                        # this one makes var/portal-session-key, which encrypts the tokens in that table)

# Development only: the providers we cannot reach from here, simulated with their real protocols.
export SESSION_COOKIE_SECURE=false SIM_SMARTID_DELAY="${SIM_SMARTID_DELAY:-3}"
set -a; eval "$("$PY" -m klients_simulators.devsetup merchants --dir "$VAR/providers")"; set +a
start payments-simulator klients-simulators payments --bind 127.0.0.1:8090
start smartid-simulator klients-simulators smartid --bind 127.0.0.1:8091
start eparaksts-simulator klients-simulators eparaksts --bind 127.0.0.1:8092
start banks-simulator klients-simulators banks --bind 127.0.0.1:8093
for port in 8091 8092 8093; do wait_for 30 "simulator on $port" port_open $port; done
set -a; eval "$("$PY" -m klients_simulators.devsetup fetch --dir "$VAR/providers")"; set +a
start identity env AMQP_URI="$(klients-bus uri identity)" klients-identity serve --bind 127.0.0.1:8001
start identity-service env AMQP_URI="$(klients-bus uri identity)" klients-identity run
start identity-retention klients-identity purge --every "${PURGE_EVERY:-600}"  # expired rows out (docs/operators.md)
for svc in billing metering notifications; do start "$svc" env AMQP_URI="$(klients-bus uri "$svc")" "klients-$svc" run; done
# The gateway's workers count rate limits together in a database of their own (identity uses its own).
: "${GATEWAY_RATE_LIMIT_STORAGE:=sqlite:///$VAR/gateway-limits.db}"
start gateway env AMQP_URI="$(klients-bus uri gateway)" RATE_LIMIT_STORAGE="$GATEWAY_RATE_LIMIT_STORAGE" \
  klients-gateway serve --bind 127.0.0.1:8000 --internal-bind 127.0.0.1:8010

start portal klients-portal serve --bind 127.0.0.1:3000

wait_for 60 identity curl -fsS http://127.0.0.1:8001/healthz
wait_for 60 portal curl -fsS http://127.0.0.1:3000/healthz
wait_for 60 "the services" curl -fsS http://127.0.0.1:8010/readyz
cat <<INFO

  Klients is running (logs in $VAR/log, Ctrl-C or 'make stop' stops it):
    START HERE: the portal http://127.0.0.1:3000  (log in with Smart-ID 040404-10003, or a bank or eParaksts)
    gateway (public API)   http://127.0.0.1:8000/api/v1     liveness /healthz
    gateway (internal)     http://127.0.0.1:8010/readyz /metrics (loopback only)
    identity (OIDC)        http://127.0.0.1:8001/.well-known/openid-configuration
    Keycloak (staff)       http://127.0.0.1:8080/admin  (admin/admin; realm klients-staff, operator/operator-demo-1)
    RabbitMQ               amqp://127.0.0.1:5672, one user per component (klients-bus uri NAME); API :15672
    SMTP                   127.0.0.1:8025, every mail kept as a file in $VAR/mail
    payment simulator      http://127.0.0.1:8090 (the payer's page opens from a payment's redirect_url)
    eID simulators         Smart-ID :8091 (e.g. 040404-10003), eParaksts :8092, banks :8093
    nameko services        billing, metering, notifications
    databases              $(for s in identity billing metering notifications portal; do v="${s^^}_DATABASE_URL"; printf '%s ' "${!v:-sqlite $VAR/$s.db}"; done)

INFO
wait
