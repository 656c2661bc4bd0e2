#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for demos and tests: never the system's
# default cluster.  Runs the server as the postgres user (PostgreSQL refuses
# root), on a private port and socket directory.
#
#   scripts/cluster.sh start DIR PORT [extra postgresql.conf lines...]
#   scripts/cluster.sh stop DIR
#
# Connect with: psql -h DIR/socket -p PORT -U postgres
set -euo pipefail
PGBIN=${PGBIN:-$(pg_config --bindir)}
cmd=${1:?start|stop}
dir=${2:?directory}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  port=${3:?port}
  shift 3
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_postgres "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync >"$dir/initdb.log" 2>&1
  as_postgres mkdir -p "$dir/socket"
  {
    echo "port = $port"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$dir/socket'"
    echo "fsync = off"
    echo "synchronous_commit = off"
    echo "full_page_writes = off"
    echo "shared_buffers = 512MB"
    echo "maintenance_work_mem = 512MB"
    echo "max_wal_size = 8GB"
    echo "log_min_messages = warning"
    echo "lc_messages = 'C'"
    for line in "$@"; do echo "$line"; done
  } | as_postgres tee -a "$dir/data/postgresql.conf" >/dev/null
  as_postgres "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_postgres "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  ;;
*)
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
  ;;
esac
