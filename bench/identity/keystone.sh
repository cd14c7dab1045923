#!/usr/bin/env bash
# A real OpenStack Keystone from Debian's packages, for side-by-side benchmarks.
#   keystone.sh start DIR PORT   install if missing, configure under DIR, serve on 127.0.0.1:PORT
#   keystone.sh stop DIR         stop it and every uwsgi worker
# SQLite database and Fernet tokens under DIR; bcrypt at Keystone's default cost (12);
# uwsgi with the process/thread counts of Debian's /etc/keystone/keystone-uwsgi.ini.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?DIR}
admin_password=${ADMIN_PASSWORD:-keystone-anchor}

if [ "$cmd" = stop ]; then
  if [ -f "$dir/uwsgi.pid" ]; then
    pid=$(cat "$dir/uwsgi.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    pkill -KILL -f "uwsgi.*$dir/uwsgi.ini" 2>/dev/null || true
    rm -f "$dir/uwsgi.pid"
  fi
  exit 0
fi

port=${3:?PORT}
need=()
for p in keystone uwsgi-core uwsgi-plugin-python3 python3-bcrypt; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >"$dir.apt.log" 2>&1 || {
    apt-get update -q >>"$dir.apt.log" 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >>"$dir.apt.log" 2>&1; }
fi

mkdir -p "$dir/fernet-keys" "$dir/credential-keys"
cat > "$dir/keystone.conf" <<CONF
[DEFAULT]
log_file = $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
CONF
ks() { keystone-manage --config-file "$dir/keystone.conf" "$@" >>"$dir/manage.log" 2>&1; }
if [ ! -f "$dir/keystone.db" ]; then
  ks db_sync
  ks fernet_setup --keystone-user root --keystone-group root
  ks credential_setup --keystone-user root --keystone-group root
  ks bootstrap --bootstrap-password "$admin_password" --bootstrap-admin-url "http://127.0.0.1:$port/v3" \
    --bootstrap-public-url "http://127.0.0.1:$port/v3" --bootstrap-internal-url "http://127.0.0.1:$port/v3" --bootstrap-region-id RegionOne
fi
cat > "$dir/uwsgi.ini" <<INI
[uwsgi]
# HTTP/1.1 straight into the workers; every response says Connection: close (uwsgi would
# close anyway), so clients that reuse connections open fresh ones instead of failing.
http11-socket = 127.0.0.1:$port
add-header = Connection: close
plugins = python3
master = true
thunder-lock = true
lazy-apps = true
enable-threads = true
die-on-term = true
processes = ${KEYSTONE_PROCESSES:-8}
threads = ${KEYSTONE_THREADS:-32}
listen = 100
buffer-size = 65535
wsgi-file = /usr/bin/keystone-wsgi-public
env = OS_KEYSTONE_CONFIG_FILES=$dir/keystone.conf
pidfile = $dir/uwsgi.pid
logto = $dir/uwsgi.log
disable-logging = true
INI
uwsgi --ini "$dir/uwsgi.ini" --daemonize2 "$dir/uwsgi.log"
for _ in $(seq 120); do
  curl -fsS "http://127.0.0.1:$port/v3" >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "keystone did not answer on port $port; see $dir/uwsgi.log" >&2
exit 1
