#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests.
#
#   scripts/pg-temp.sh start DIR [--owner-pid PID]
#       initdb + pg_ctl start in DIR (which must not exist or be empty), listening on a
#       free TCP port on 127.0.0.1 and on a unix socket in DIR/sock; creates database
#       "possum" owned by user "possum" (trust authentication, fsync off: tests only).
#       Prints one line, the libpq conninfo, and writes it to DIR/conninfo.
#       With --owner-pid, a watchdog stops and removes the cluster once PID has exited,
#       so a test killed by a timeout leaves nothing running.
#   scripts/pg-temp.sh stop DIR
#       Stops the cluster and removes DIR (only a DIR this script made).
#
# Run as root, initdb and the server run as an unprivileged user ($PG_TEMP_USER, default
# "postgres", which the postgresql package creates) and DIR is handed to that user; every
# parent of DIR must let that user through (mktemp -d under /tmp does).
# PostgreSQL binaries: $PGBIN, else the newest /usr/lib/postgresql/*/bin.
# $PG_TEMP_OPTIONS adds server options, e.g. "-c fsync=on" for a durable benchmark.
set -euo pipefail

MARK=.possum-pg-temp

die() { echo "pg-temp: $*" >&2; exit 1; }

pgbin() {
  if [ -n "${PGBIN:-}" ]; then echo "$PGBIN"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] || die "no PostgreSQL server binaries (apt-get install postgresql, or set PGBIN)"
  echo "$d"
}

# as_user CMD...: run CMD as the cluster's owner (root cannot run initdb or postgres).
as_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$RUNAS" -- "$@"
  else
    "$@"
  fi
}

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local dir=$1 owner=${2:-} bin port p try
  bin=$(pgbin)
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then die "$dir: exists and is not empty"; fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  touch "$dir/$MARK"
  mkdir -p "$dir/sock"
  if [ "$(id -u)" -eq 0 ]; then
    RUNAS=${PG_TEMP_USER:-postgres}
    id -u "$RUNAS" >/dev/null 2>&1 || die "user $RUNAS does not exist (set PG_TEMP_USER)"
    chown -R "$RUNAS" "$dir"
    as_user test -w "$dir" || die "$RUNAS cannot reach $dir (a parent directory is closed to it)"
  fi
  as_user "$bin/initdb" -D "$dir/data" -U possum --auth=trust -E UTF8 --locale=C -N \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # Another test may take the port between the check and the start: try a few.
  port=""
  for try in 1 2 3 4 5 6 7 8; do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    port_is_free "$p" || continue
    if as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o \
        "-c listen_addresses=127.0.0.1 -p $p -k $dir/sock -c fsync=off -c full_page_writes=off -c max_connections=50 ${PG_TEMP_OPTIONS:-}" \
        start >/dev/null 2>&1; then
      port=$p
      break
    fi
  done
  [ -n "$port" ] || { tail -n 20 "$dir/server.log" >&2 || true; die "server did not start"; }
  as_user "$bin/createdb" -h 127.0.0.1 -p "$port" -U possum possum \
    || die "createdb failed"
  echo "host=127.0.0.1 port=$port user=possum dbname=possum" > "$dir/conninfo"
  if [ -n "$owner" ]; then
    # Watchdog: outlives this script, not the owner.
    nohup setsid bash "$0" watch "$dir" "$owner" </dev/null >/dev/null 2>&1 &
  fi
  cat "$dir/conninfo"
}

stop() {
  local dir=$1 bin
  [ -d "$dir" ] || return 0
  [ -f "$dir/$MARK" ] || die "$dir: not a pg-temp directory; not removing it"
  bin=$(pgbin)
  if [ -f "$dir/data/postmaster.pid" ]; then
    RUNAS=$(stat -c %U "$dir/data")
    as_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

watch() {
  local dir=$1 owner=$2
  while [ -d "$dir" ] && kill -0 "$owner" 2>/dev/null; do sleep 1; done
  [ -d "$dir" ] && stop "$dir"
  return 0
}

case "${1:-}" in
  start)
    [ $# -eq 2 ] || { [ $# -eq 4 ] && [ "$3" = --owner-pid ]; } || die "usage: $0 start DIR [--owner-pid PID]"
    start "$2" "${4:-}" ;;
  stop)
    [ $# -eq 2 ] || die "usage: $0 stop DIR"
    stop "$2" ;;
  watch)
    watch "$2" "$3" ;;
  *)
    die "usage: $0 start DIR [--owner-pid PID] | stop DIR" ;;
esac
