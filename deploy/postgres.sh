#!/usr/bin/env bash
# Install (Debian package) and start PostgreSQL on 127.0.0.1:5432 unless it already answers, then make
# sure the role `klients` and the databases named as arguments exist.
source "$(dirname "$0")/lib.sh"

PGPASSWORD_KLIENTS="${KLIENTS_PG_PASSWORD:-klients}"
if ! port_open 5432; then
  apt_install postgresql
  if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
    as_root pg_createcluster "$ver" main >/dev/null
  fi
  read -r ver name _ < <(pg_lsclusters -h | head -1)
  say "starting PostgreSQL $ver/$name"
  as_root pg_ctlcluster "$ver" "$name" start || true
fi
wait_for 60 "PostgreSQL port 5432" port_open 5432
psql_admin() { as_root su postgres -c "psql -v ON_ERROR_STOP=1 -qtA $*"; }
if [ "$(psql_admin "-c \"select 1 from pg_roles where rolname='klients'\"")" != 1 ]; then
  psql_admin "-c \"create role klients login createdb password '$PGPASSWORD_KLIENTS'\""
fi
for db in "$@"; do
  if [ "$(psql_admin "-c \"select 1 from pg_database where datname='$db'\"")" != 1 ]; then
    psql_admin "-c \"create database $db owner klients\""
  fi
done
