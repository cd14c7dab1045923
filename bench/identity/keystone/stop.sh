#!/usr/bin/env bash
# stop.sh DIR — stop the Keystone started by start.sh DIR: the uwsgi master and all its workers.
set -euo pipefail
dir=${1:?usage: stop.sh DIR}
pidfile="$dir/uwsgi.pid"
[ -f "$pidfile" ] || { echo "no $pidfile: not running"; exit 0; }
pid=$(cat "$pidfile")
# start.sh runs uwsgi under setsid, so its process group id is the master's pid.
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do pgrep -g "$pid" >/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
fi
rm -f "$pidfile"
echo "keystone stopped"
