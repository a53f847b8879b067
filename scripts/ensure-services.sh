#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis the suite needs are up: start them if they are installed
# but stopped, else fail with a clear message. The suite never silently skips them.
set -euo pipefail

db_url="${DATABASE_URL:?DATABASE_URL is not set}"
broker_url="${CELERY_BROKER_URL:?CELERY_BROKER_URL is not set}"

hostport() {  # scheme://[user@]host:port/… → "host port"
  local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"
  echo "${rest%%:*} ${rest##*:}"
}

listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {
  local name=$1 host=$2 port=$3
  for _ in $(seq 1 40); do listening "$host" "$port" && return 0; sleep 0.5; done
  echo "ERROR: $name is not answering on $host:$port." >&2
  return 1
}

if [[ "$db_url" == postgres* ]]; then
  read -r host port <<<"$(hostport "$db_url")"
  if ! listening "$host" "$port"; then
    echo "PostgreSQL is not answering on $host:$port; trying to start it..." >&2
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    else
      echo "ERROR: PostgreSQL is not installed here. Install it or set DATABASE_URL." >&2
      exit 1
    fi
    wait_for PostgreSQL "$host" "$port"
  fi
fi

if [[ "$broker_url" == redis* ]]; then
  read -r host port <<<"$(hostport "$broker_url")"
  if ! listening "$host" "$port"; then
    echo "Redis is not answering on $host:$port; trying to start it..." >&2
    if command -v redis-server >/dev/null; then
      mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
      redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir /tmp --logfile /tmp/comeback-redis.log
    else
      echo "ERROR: Redis is not installed here. Install it or set CELERY_BROKER_URL." >&2
      exit 1
    fi
    wait_for Redis "$host" "$port"
  fi
fi
# Debian packages the suite drives: Chromium for the browser tests (never a browser that a tool
# downloads) and wrk for the benchmark's HTTP figures.
need() {  # need <command> <debian package> <what for>
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's $2 for $3..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$2" >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
  else
    echo "ERROR: $1 is missing for $3: sudo apt-get install $2" >&2
    exit 1
  fi
}
need chromium chromium "the browser tests"
need wrk wrk "the benchmark's HTTP figures"
# /usr/sbin is not on every PATH: the PgBouncer test runs that binary.
need /usr/sbin/pgbouncer pgbouncer "the PgBouncer test"
echo "PostgreSQL, Redis, Chromium, wrk and PgBouncer are ready."
