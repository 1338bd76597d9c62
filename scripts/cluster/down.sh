#!/usr/bin/env bash
# Tears down every cluster the scripts in this folder started, whatever
# state they are in. Always exits 0, so it is safe in a trap.
set -uo pipefail
here=$(dirname "$0")
"$here/galera.sh" down || true
"$here/pg.sh" down || true
rmdir "${TOWNHALL_CLUSTER_DIR:-/tmp/townhall-cluster}" 2>/dev/null || true
exit 0
