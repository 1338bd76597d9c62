#!/usr/bin/env bash
# A three-node MariaDB Galera cluster on loopback, for townhall's cluster tests.
#
#   galera.sh up           start all three nodes (bootstrapping a new cluster
#                          when none runs) and print the DSNs, one a line
#   galera.sh start N      start node N (1-3); it joins the running cluster (IST/SST)
#   galera.sh stop N       stop node N cleanly
#   galera.sh kill N       SIGKILL node N
#   galera.sh status       each node's state and cluster size
#   galera.sh dsns         print the DSNs (space separated, for TOWNHALL_TEST_GALERA_DSNS)
#   galera.sh down         stop every node and remove the data directories
#
# Node N listens on 127.0.0.1:3306N (SQL), 4567N (group), 4568N (IST) and
# 4569N (SST), with its files under $TOWNHALL_CLUSTER_DIR/galera/nodeN.
# Idempotent: "up" and "start" leave running nodes alone. Runs as root
# (SST with mariabackup needs it), so mariadbd runs with --user=root.
set -euo pipefail
# shellcheck source=scripts/cluster/common.sh
. "$(dirname "$0")/common.sh"

DIR=$CLUSTER_DIR/galera
NODES=(1 2 3)
GCOMM="gcomm://127.0.0.1:45671,127.0.0.1:45672,127.0.0.1:45673"

node_dir() { echo "$DIR/node$1"; }
dsn() { echo "root@tcp(127.0.0.1:3306$1)/test?parseTime=true&loc=UTC"; }
mysql_n() { mysql --protocol=socket -S "$DIR/node$1.sock" -uroot "${@:2}"; }
running() { pid_alive "$DIR/node$1.pid"; }
synced() {
  [ "$(mysql_n "$1" -N -e "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | awk '{print $2}')" = Synced ]
}

# up_and_synced succeeds once node $1 is Synced and fails at once (exit 2,
# which stops wait_for) when its process died.
up_and_synced() {
  running "$1" || return 2
  synced "$1"
}

check_node() {
  case "${1:-}" in 1 | 2 | 3) ;; *) die "node must be 1, 2 or 3, got '${1:-}'" ;; esac
}

write_cnf() {
  local n=$1
  cat >"$DIR/node$n.cnf" <<CNF
[mysqld]
user=root
datadir=$(node_dir "$n")
socket=$DIR/node$n.sock
pid-file=$DIR/node$n.server.pid
log-error=$DIR/node$n.err
port=3306$n
bind-address=127.0.0.1
skip-name-resolve
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
innodb_flush_log_at_trx_commit=2
max_connections=300
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_name=townhall_test
wsrep_cluster_address=$GCOMM
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:4567$n
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:4567$n;ist.recv_addr=127.0.0.1:4568$n;gcache.size=256M"
wsrep_sst_method=mariabackup
wsrep_sst_receive_address=127.0.0.1:4569$n
wsrep_sst_auth=root:
wsrep_slave_threads=2

[sst]
sst-syslog=-1
CNF
}

# launch starts node $1 with extra server arguments $2...
launch() {
  local n=$1
  shift
  mkdir -p "$(node_dir "$n")"
  write_cnf "$n"
  setsid /usr/sbin/mariadbd --defaults-file="$DIR/node$n.cnf" "$@" </dev/null >>"$DIR/node$n.out" 2>&1 &
  echo $! >"$DIR/node$n.pid"
  if ! WAIT_SECONDS=180 wait_for up_and_synced "$n"; then
    tail -n 40 "$DIR/node$n.err" >&2 || true
    die "node $n did not reach Synced"
  fi
  log "node $n synced on 127.0.0.1:3306$n"
}

any_running() {
  local n
  for n in "${NODES[@]}"; do running "$n" && return 0; done
  return 1
}

start_node() {
  local n=$1
  check_node "$n"
  running "$n" && { log "node $n already running"; return 0; }
  if ! any_running; then
    bootstrap "$n"
    return
  fi
  launch "$n"
}

# bootstrap starts node $1 as the first node of a new cluster, creating its
# data directory when there is none.
bootstrap() {
  local n=$1 d
  d=$(node_dir "$n")
  if [ ! -d "$d/mysql" ]; then
    rm -rf "$d"
    mkdir -p "$d"
    mariadb-install-db --no-defaults --user=root --datadir="$d" \
      --auth-root-authentication-method=socket --skip-test-db >"$DIR/node$n.install.log" 2>&1 ||
      { cat "$DIR/node$n.install.log" >&2; die "mariadb-install-db failed"; }
  else
    # Restarting a cluster from a stopped node: it may bootstrap.
    sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$d/grastate.dat" 2>/dev/null || true
  fi
  launch "$n" --wsrep-new-cluster
  mysql_n "$n" -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    CREATE DATABASE IF NOT EXISTS test;"
}

cmd_up() {
  need_pkg galera-4 mariadb-server mariadb-backup socat
  mkdir -p "$DIR"
  local n
  for n in "${NODES[@]}"; do start_node "$n"; done
  cmd_dsns_lines
}

cmd_dsns_lines() {
  local n
  for n in "${NODES[@]}"; do dsn "$n"; done
}

cmd_dsns() {
  local out=() n
  for n in "${NODES[@]}"; do out+=("$(dsn "$n")"); done
  echo "${out[*]}"
}

cmd_stop() {
  check_node "$1"
  kill_pidfile "$DIR/node$1.pid" TERM
  log "node $1 stopped"
}

cmd_kill() {
  check_node "$1"
  running "$1" || { log "node $1 is not running"; return 0; }
  # mariadbd leads its own process group (setsid): the group includes any
  # SST helpers it forked.
  kill -KILL -- "-$(cat "$DIR/node$1.pid")" 2>/dev/null || true
  while running "$1"; do sleep 0.05; done
  log "node $1 killed"
}

cmd_status() {
  local n
  for n in "${NODES[@]}"; do
    if running "$n"; then
      printf 'node%s running %s\n' "$n" "$(mysql_n "$n" -N -e "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state_comment','wsrep_cluster_size')" 2>/dev/null | awk '{printf "%s=%s ", $1, $2}')"
    else
      printf 'node%s down\n' "$n"
    fi
  done
}

cmd_down() {
  local n
  for n in "${NODES[@]}"; do
    if [ -f "$DIR/node$n.pid" ]; then
      kill -KILL -- "-$(cat "$DIR/node$n.pid")" 2>/dev/null || true
      kill_pidfile "$DIR/node$n.pid" KILL
    fi
  done
  rm -rf "$DIR"
  log "galera cluster removed"
}

case "${1:-}" in
  up) cmd_up ;;
  start) check_node "${2:-}"; start_node "$2" ;;
  stop) cmd_stop "${2:-}" ;;
  kill) cmd_kill "${2:-}" ;;
  status) cmd_status ;;
  dsns) cmd_dsns ;;
  down) cmd_down ;;
  *) die "usage: $0 up|start N|stop N|kill N|status|dsns|down" ;;
esac
