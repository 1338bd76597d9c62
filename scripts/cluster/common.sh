# shellcheck shell=bash
# Shared helpers for the cluster scripts; sourced, not run.
# Every node lives under $TOWNHALL_CLUSTER_DIR (default /tmp/townhall-cluster)
# and listens on loopback ports other than the standard 3306 and 5432.

export CLUSTER_DIR=${TOWNHALL_CLUSTER_DIR:-/tmp/townhall-cluster}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# need_pkg installs the Debian packages named when one of them is missing.
need_pkg() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2; }
}

# pid_alive reports whether the pid in file $1 names a live process.
pid_alive() {
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# wait_for runs "$@" every 0.2 s until it succeeds or $WAIT_SECONDS pass;
# it gives up at once when "$@" exits with status 2.
wait_for() {
  local deadline=$((SECONDS + ${WAIT_SECONDS:-60})) rc
  while true; do
    rc=0
    "$@" >/dev/null 2>&1 || rc=$?
    [ $rc -eq 0 ] && return 0
    [ $rc -ne 2 ] && [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# kill_pidfile sends signal $2 to the process in pid file $1 and waits for it
# to exit (up to 60 s, then SIGKILL).
kill_pidfile() {
  local file=$1 sig=$2 pid
  pid_alive "$file" || return 0
  pid=$(cat "$file")
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
