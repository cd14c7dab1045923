#!/usr/bin/env bash
# Installs what Gureum needs on a fresh Debian machine, idempotently:
#   - Debian packages: nats-server (the bus), QEMU, socat (the metadata service's guestfwd), the guest-image tools,
#     and the network data plane's iproute2, nftables, dnsmasq-base (+ dnsmasq-utils) and haproxy; with --test also the real clients and
#     servers the test suite drives (python3-openstackclient, postgresql, tempest) and the fake-VM tools of the
#     network tests (busybox-static's udhcpc, curl, ping, iperf3).
#   - npm packages from package-lock.json.
# Quick when everything is present: it checks before it installs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_test=0
for a in "$@"; do [ "$a" = "--test" ] && want_test=1; done

pkgs=(nats-server qemu-system-x86 qemu-utils socat genisoimage cpio xz-utils mtools dosfstools syslinux syslinux-common
      iproute2 nftables dnsmasq-base dnsmasq-utils haproxy)
[ "$want_test" = 1 ] && pkgs+=(python3-openstackclient postgresql tempest openssh-client busybox-static curl iputils-ping iperf3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: need root to install: ${missing[*]}" >&2; exit 1; fi
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists once if they look empty or stale.
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/gureum-apt.log 2>&1; then
    apt-get update -q >>/tmp/gureum-apt.log 2>&1
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/gureum-apt.log 2>&1 || { tail -20 /tmp/gureum-apt.log >&2; exit 1; }
  fi
fi

cd "$here"
stamp=node_modules/.gureum-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch "$stamp"
fi
