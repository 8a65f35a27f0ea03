#!/usr/bin/env bash
# Makes a local PostgreSQL available for the store tests and prints its URL on stdout:
# installs Debian's postgresql package when missing, starts the cluster, and creates a
# `stratum` role that may create databases (each test makes its own and drops it).
set -euo pipefail
log() { echo "postgres.sh: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  log "installing postgresql (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q .; then
  log "creating cluster $version/main"
  as_root pg_createcluster "$version" main >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  log "starting cluster $version/main on port $port"
  # After an unclean stop, recovery first syncs the data directory, which can outlast
  # pg_ctl's 60 s on a busy disk: keep waiting below instead of failing here.
  as_root pg_ctlcluster "$version" main start >&2 || log "still starting (recovery?); waiting up to 5 minutes"
fi
ready=no
for _ in $(seq 1 300); do
  if as_root su postgres -c "pg_isready -q -p $port"; then ready=yes; break; fi
  sleep 1
done
if [ "$ready" != yes ]; then
  log "PostgreSQL on port $port did not become ready; see /var/log/postgresql/"
  exit 1
fi
as_root su postgres -c "psql -q -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'stratum'\"" | grep -q 1 \
  || as_root su postgres -c "psql -q -p $port -c \"CREATE ROLE stratum LOGIN CREATEDB PASSWORD 'stratum'\"" >&2
as_root su postgres -c "psql -q -p $port -tAc \"SELECT 1 FROM pg_database WHERE datname = 'stratum'\"" | grep -q 1 \
  || as_root su postgres -c "createdb -p $port -O stratum stratum" >&2
echo "postgres://stratum:stratum@127.0.0.1:$port/stratum"
