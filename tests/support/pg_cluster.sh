#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster for the suite's PostgreSQL run, from
# Debian's postgresql-15 package: initdb in a temporary directory, listening
# only on a Unix socket there (no TCP port to collide with anything), trust
# authentication for that socket alone. ctest starts it before the first
# PostgreSQL test and stops it after the last (tests/CMakeLists.txt).
#
#   pg_cluster.sh start DIR    # then: host=DIR port=5432 dbname=postgres user=postgres
#   pg_cluster.sh stop DIR
#
# initdb refuses to run as root (CI runs as root): the server then runs as
# the postgres user the package created.
set -euo pipefail
cmd="$1" dir="$2"
bin=/usr/lib/postgresql/15/bin
[[ -x "$bin/initdb" ]] || { echo "pg_cluster: $bin/initdb missing (apt install postgresql-15; deploy/install-deps.sh)" >&2; exit 1; }

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "$cmd" in
  start)
    stop  # a cluster a killed run left behind
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$dir"
    chmod 0700 "$dir"
    t0=$(date +%s%N)
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # fsync stays on: the durability the store acknowledges is the server's.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -c listen_addresses= -p 5432 -c max_connections=400 -c shared_buffers=64MB" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "pg_cluster: PostgreSQL 15 at $dir ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    ;;
  stop)
    stop
    echo "pg_cluster: stopped and removed $dir"
    ;;
  *) echo "usage: pg_cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
