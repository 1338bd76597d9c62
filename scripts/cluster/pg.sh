#!/usr/bin/env bash
# A PostgreSQL 15 primary with a synchronous hot standby on loopback, for
# townhall's failover tests.
#
#   pg.sh up        start the primary (127.0.0.1:54331) and the standby
#                   (127.0.0.1:54332), synchronous_commit on and the standby
#                   named in synchronous_standby_names, and print the DSN
#   pg.sh kill      SIGKILL the primary (the server on 54331)
#   pg.sh promote   promote the standby; it takes writes without a standby
#   pg.sh stop      stop both servers cleanly
#   pg.sh status    each server's state
#   pg.sh dsn       print the multi-host DSN (target_session_attrs=read-write)
#   pg.sh down      stop both servers and remove the data directories
#
# Files live under $TOWNHALL_CLUSTER_DIR/pg. PostgreSQL refuses to run as
# root, so the servers run as the postgres user. Idempotent: "up" leaves
# running servers alone; after "down", "up" makes a fresh pair.
set -euo pipefail
# shellcheck source=scripts/cluster/common.sh
. "$(dirname "$0")/common.sh"

DIR=$CLUSTER_DIR/pg
BIN=/usr/lib/postgresql/15/bin
PRIMARY=54331
STANDBY=54332

as_pg() { runuser -u postgres -- "$@"; }
ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$1"; }
psql_p() { "$BIN/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 "${@:2}"; }
pidfile() { echo "$DIR/$1/postmaster.pid"; }
running() { [ -f "$(pidfile "$1")" ] && kill -0 "$(head -n1 "$(pidfile "$1")")" 2>/dev/null; }

dsn() {
  echo "host=127.0.0.1,127.0.0.1 port=$PRIMARY,$STANDBY user=postgres dbname=postgres sslmode=disable target_session_attrs=read-write connect_timeout=2"
}

# start_server starts the cluster in $DIR/$1 on port $2 with extra -c settings $3.
start_server() {
  local name=$1 port=$2 extra=$3
  running "$name" && return 0
  as_pg "$BIN/pg_ctl" -D "$DIR/$name" -l "$DIR/$name.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR $extra" start >&2 ||
    { tail -n 30 "$DIR/$name.log" >&2; die "$name did not start"; }
}

cmd_up() {
  need_pkg postgresql-15
  mkdir -p "$DIR"
  chown postgres: "$DIR"
  chmod 755 "$CLUSTER_DIR" "$DIR"
  if [ ! -f "$DIR/primary/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$DIR/primary" -U postgres -A trust --no-sync >"$DIR/initdb.log" 2>&1 ||
      { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$DIR/primary/postgresql.conf" <<CONF
wal_level = replica
max_wal_senders = 5
wal_keep_size = 256MB
hot_standby = on
max_connections = 200
shared_buffers = 64MB
synchronous_commit = on
CONF
    echo "host replication all 127.0.0.1/32 trust" >>"$DIR/primary/pg_hba.conf"
  fi
  # Only the primary waits for its standby: a promoted standby must not.
  start_server primary $PRIMARY "-c synchronous_standby_names=*"
  if [ ! -f "$DIR/standby/PG_VERSION" ]; then
    as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p $PRIMARY -U postgres -D "$DIR/standby" -R -X stream \
      -d "application_name=standby" >&2 || die "pg_basebackup failed"
  fi
  start_server standby $STANDBY ""
  WAIT_SECONDS=60 wait_for sync_standby || die "the standby never became synchronous"
  log "primary on 127.0.0.1:$PRIMARY, synchronous standby on 127.0.0.1:$STANDBY"
  dsn
}

sync_standby() {
  [ "$(psql_p $PRIMARY -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")" -ge 1 ]
}

# kill_server SIGKILLs the postmaster of $1 and its backends at once, as
# when the machine dies (a postmaster killed alone leaves backends that
# finish their work before they notice).
kill_server() {
  local pid
  running "$1" || return 0
  pid=$(head -n1 "$(pidfile "$1")")
  # shellcheck disable=SC2046
  kill -KILL "$pid" $(ps -o pid= --ppid "$pid") 2>/dev/null || true
  while running "$1"; do sleep 0.05; done
}

cmd_kill() {
  running primary || { log "the primary is not running"; return 0; }
  kill_server primary
  log "primary killed"
}

cmd_promote() {
  running standby || die "the standby is not running"
  if [ "$(psql_p $STANDBY -c 'SELECT pg_is_in_recovery()')" = t ]; then
    as_pg "$BIN/pg_ctl" -D "$DIR/standby" -w -t 60 promote >&2
  fi
  log "standby promoted on 127.0.0.1:$STANDBY"
}

cmd_stop() {
  local s
  for s in standby primary; do
    running "$s" && as_pg "$BIN/pg_ctl" -D "$DIR/$s" -m fast -w stop >&2
  done
  return 0
}

cmd_status() {
  local s port
  for s in primary standby; do
    port=$PRIMARY
    [ $s = standby ] && port=$STANDBY
    if running "$s" && ready "$port"; then
      printf '%s running port=%s in_recovery=%s\n' "$s" "$port" "$(psql_p "$port" -c 'SELECT pg_is_in_recovery()')"
    else
      printf '%s down\n' "$s"
    fi
  done
}

cmd_down() {
  local s
  for s in standby primary; do
    kill_server "$s"
  done
  rm -rf "$DIR"
  log "postgres pair removed"
}

case "${1:-}" in
  up) cmd_up ;;
  kill) cmd_kill ;;
  promote) cmd_promote ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  dsn) dsn ;;
  down) cmd_down ;;
  *) die "usage: $0 up|kill|promote|stop|status|dsn|down" ;;
esac
