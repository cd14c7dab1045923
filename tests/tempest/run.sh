#!/usr/bin/env bash
# run.sh OUTDIR — Tempest's identity API tests (tempest.api.identity) against any Keystone-v3
# endpoint. Installs Debian's python3-tempest if missing, makes a tempest workspace in
# OUTDIR/workspace, writes its etc/tempest.conf for identity only, runs with concurrency 2,
# prints "tempest: N passed, N failed, N skipped" and the failed test ids, and writes
# OUTDIR/summary.json {passed, failed, skipped, failures:[ids]}.
# Exits 0 when the run completed, failures or not (the caller decides thresholds).
#
# Env: OS_AUTH_URL (http://HOST:PORT/v3), OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
#   OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME (both default Default), OS_REGION_NAME
#   (default RegionOne); TEMPEST_EXCLUDE_FILE: regexes to skip, one a line (# comments ok);
#   TEMPEST_CONCURRENCY (default 2); feature flags, defaults = a stock Keystone Zed:
#   TEMPEST_TRUST=true TEMPEST_APPLICATION_CREDENTIALS=true TEMPEST_ACCESS_RULES=true
#   TEMPEST_PROJECT_TAGS=true TEMPEST_SECURITY_COMPLIANCE=false TEMPEST_DOMAIN_SPECIFIC_DRIVERS=false
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin PYTHON=/usr/bin/python3   # Debian's python, where tempest lives
out=${1:?usage: run.sh OUTDIR}
: "${OS_AUTH_URL:?}" "${OS_USERNAME:?}" "${OS_PASSWORD:?}" "${OS_PROJECT_NAME:?}"
mkdir -p "$out"; out=$(realpath "$out"); ws=$out/workspace

if ! dpkg-query -W -f='${Status}' python3-tempest 2>/dev/null | grep -q 'install ok installed'; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-tempest >"$out/apt.log" 2>&1 ||
    { echo "apt-get install python3-tempest failed, see $out/apt.log" >&2; exit 1; }
fi
# The workspace registry stays in OUTDIR rather than ~/.tempest/workspace.yaml.
[ -d "$ws/.stestr" ] || tempest init --workspace-path "$out/workspaces.yaml" --name "ws-$$" "$ws" >/dev/null

b() { case "${1,,}" in 1|true|yes|on) echo true ;; *) echo false ;; esac; }
cat > "$ws/etc/tempest.conf" <<CONF
[DEFAULT]
log_dir = $ws/logs
log_file = tempest.log
[oslo_concurrency]
lock_path = $ws/tempest_lock

[auth]
admin_username = $OS_USERNAME
admin_password = $OS_PASSWORD
admin_project_name = $OS_PROJECT_NAME
admin_user_domain_name = ${OS_USER_DOMAIN_NAME:-Default}
admin_project_domain_name = ${OS_PROJECT_DOMAIN_NAME:-Default}
admin_domain_name = ${OS_USER_DOMAIN_NAME:-Default}
use_dynamic_credentials = true
create_isolated_networks = false

[identity]
uri_v3 = $OS_AUTH_URL
auth_version = v3
region = ${OS_REGION_NAME:-RegionOne}
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = false
api_v2_admin = false
api_v3 = true
trust = $(b "${TEMPEST_TRUST:-true}")
application_credentials = $(b "${TEMPEST_APPLICATION_CREDENTIALS:-true}")
access_rules = $(b "${TEMPEST_ACCESS_RULES:-true}")
project_tags = $(b "${TEMPEST_PROJECT_TAGS:-true}")
# Needs lockout/password-history options set in keystone.conf; off in a stock deployment.
security_compliance = $(b "${TEMPEST_SECURITY_COMPLIANCE:-false}")
# Needs [identity] domain_specific_drivers_enabled in keystone.conf.
domain_specific_drivers = $(b "${TEMPEST_DOMAIN_SPECIFIC_DRIVERS:-false}")

[service_available]
nova = false
neutron = false
glance = false
cinder = false
swift = false
heat = false
horizon = false
placement = false
octavia = false
designate = false
barbican = false
manila = false
ironic = false
aodh = false
gnocchi = false
CONF

args=(--regex '^tempest\.api\.identity' --concurrency "${TEMPEST_CONCURRENCY:-2}")
[ -z "${TEMPEST_EXCLUDE_FILE:-}" ] || args+=(--exclude-list "$(realpath "$TEMPEST_EXCLUDE_FILE")")
cd "$ws"
tempest run "${args[@]}" >"$out/tempest-run.log" 2>&1 || true   # non-zero on any failure
stestr last --subunit 2>/dev/null | subunit2csv --no-passthrough >"$out/results.csv" || true
if [ ! -s "$out/results.csv" ] || [ "$(wc -l <"$out/results.csv")" -le 1 ]; then
  tail -20 "$out/tempest-run.log" >&2
  echo "tempest: the run did not complete, see $out/tempest-run.log" >&2; exit 1
fi

# results.csv: test,status,start_time,stop_time. A failed setUpClass counts as one failure.
python3 - "$out" <<'PY'
import csv, json, re, sys
out = sys.argv[1]
passed, failed, skipped = 0, [], 0
for row in csv.DictReader(open(f"{out}/results.csv")):
    name, status = re.sub(r"\[.*\]$", "", row["test"]), row["status"]
    if status in ("success", "xfail"): passed += 1
    elif status == "skip": skipped += 1
    elif status in ("fail", "failure", "uxsuccess"): failed.append(name)
failed.sort()
json.dump({"passed": passed, "failed": len(failed), "skipped": skipped, "failures": failed},
          open(f"{out}/summary.json", "w"), indent=1)
print(f"tempest: {passed} passed, {len(failed)} failed, {skipped} skipped")
for name in failed: print(f"FAILED {name}")
PY
echo "details: $out/tempest-run.log, $ws/logs/tempest.log, $out/summary.json" >&2
