#!/usr/bin/env bash
# start.sh DIR PORT — a real OpenStack Keystone (Debian's package) on 127.0.0.1:PORT for benchmarks.
# Everything lives under DIR: keystone.conf, SQLite keystone.db, Fernet/credential keys,
# uwsgi.ini, uwsgi.pid, keystone.log. Env: ADMIN_PASSWORD (default keystone-anchor),
# KEYSTONE_PROCESSES / KEYSTONE_THREADS (uwsgi workers, see below). Idempotent.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin   # Debian's python3, not a pyenv/venv one
dir=${1:?usage: start.sh DIR PORT}; port=${2:?usage: start.sh DIR PORT}
mkdir -p "$dir"; dir=$(realpath "$dir")
admin_password=${ADMIN_PASSWORD:-keystone-anchor}
url="http://127.0.0.1:$port/v3"

if [ -f "$dir/uwsgi.pid" ] && kill -0 "$(cat "$dir/uwsgi.pid")" 2>/dev/null && curl -fsS "$url" >/dev/null 2>&1; then
  echo "keystone already running on $url (pid $(cat "$dir/uwsgi.pid"))"; exit 0
fi

# Packages. policy-rc.d stops the package's own init script/apache from being started:
# we run our own uwsgi process below, never Debian's keystone service.
need=()
for p in keystone uwsgi-core uwsgi-plugin-python3 curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >"$dir/apt.log" 2>&1 ||
    { echo "apt-get install failed, see $dir/apt.log" >&2; rm -f /usr/sbin/policy-rc.d; exit 1; }
  rm -f /usr/sbin/policy-rc.d
fi

mkdir -p "$dir/fernet-keys" "$dir/credential-keys"
cat > "$dir/keystone.conf" <<CONF
[DEFAULT]
# no log_file: keystone logs to stderr, which uwsgi writes to $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[identity]
# Keystone's defaults, spelled out: bcrypt at cost 12.
password_hash_algorithm = bcrypt
password_hash_rounds = 12
CONF

ks() { keystone-manage --config-file "$dir/keystone.conf" "$@" >>"$dir/manage.log" 2>&1 ||
  { echo "keystone-manage $1 failed, see $dir/manage.log" >&2; exit 1; }; }
ks db_sync   # db_sync and bootstrap are idempotent
# WAL journal: a reader never blocks a writer in another worker process (in SQLite's default
# rollback mode one long read transaction stalls every write and then every read).
python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("pragma journal_mode=wal")' "$dir/keystone.db"
[ -n "$(ls -A "$dir/fernet-keys")" ] || ks fernet_setup --keystone-user root --keystone-group root
[ -n "$(ls -A "$dir/credential-keys")" ] || ks credential_setup --keystone-user root --keystone-group root
ks bootstrap --bootstrap-username admin --bootstrap-password "$admin_password" \
  --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-region-id RegionOne \
  --bootstrap-admin-url "$url" --bootstrap-internal-url "$url" --bootstrap-public-url "$url"

# Workers: Debian's /etc/keystone/keystone-uwsgi.ini uses 8 processes x 32 threads, sized for
# big hosts with MySQL. Here: one thread per process, because Keystone's SQLite back end is not
# thread-safe (connections get reset from the wrong thread and keep the database locked), and
# 2 processes per core so a request waiting on bcrypt or SQLite does not stall a core.
# Default on this 2-core box: 4 processes x 1 thread (KEYSTONE_PROCESSES / KEYSTONE_THREADS).
# Keystone's public WSGI app (what /usr/bin/keystone-wsgi-public builds), with SQLite enforcing
# the schema's foreign keys (ON DELETE CASCADE) as MySQL/PostgreSQL do and as Keystone's own
# tests run it; without them deleted rows leave orphans (e.g. application_credential_role).
cat > "$dir/keystone-wsgi.py" <<'PY'
from keystone.common import sql
sql.enable_sqlite_foreign_key()
from keystone.server.wsgi import initialize_public_application
application = initialize_public_application()
PY
cat > "$dir/uwsgi.ini" <<INI
[uwsgi]
# Plain HTTP straight into the workers (no router process). uwsgi closes the connection after
# each response, so say so: clients (openstackclient, tempest) then never reuse a closed socket.
http-socket = 127.0.0.1:$port
add-header = Connection: close
plugins = python3
wsgi-file = $dir/keystone-wsgi.py
env = OS_KEYSTONE_CONFIG_FILES=$dir/keystone.conf
master = true
processes = ${KEYSTONE_PROCESSES:-$((2 * $(nproc)))}
threads = ${KEYSTONE_THREADS:-1}
enable-threads = true
lazy-apps = true
thunder-lock = true
die-on-term = true
no-orphans = true
# Py_Finalize at worker exit can segfault in greenlet teardown; nothing to clean up anyway.
skip-atexit-teardown = true
listen = 100
buffer-size = 65535
chdir = $dir
pidfile = $dir/uwsgi.pid
INI

rm -f "$dir/uwsgi.pid"
# Own session (setsid): master and workers share one process group that stop.sh kills whole.
setsid uwsgi --ini "$dir/uwsgi.ini" </dev/null >>"$dir/keystone.log" 2>&1 &
for _ in $(seq 120); do
  if curl -fsS "$url" >/dev/null 2>&1; then echo "keystone on $url (pid $(cat "$dir/uwsgi.pid"))"; exit 0; fi
  kill -0 $! 2>/dev/null || break
  sleep 0.5
done
echo "keystone did not answer on $url; see $dir/keystone.log" >&2
exit 1
