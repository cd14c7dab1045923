#!/usr/bin/env bash
# Builds Gureum's tiny guest, fast form: an uncompressed kernel (vmlinux, booted through
# its PVH entry on QEMU's microvm machine) plus an uncompressed initramfs, from Debian
# packages only (apt-get download + dpkg -x; no loop mounts).
#   guest/build.sh OUTDIR      -> OUTDIR/vmlinux, OUTDIR/initramfs.cpio, OUTDIR/kernel-version
# Idempotent: an existing OUTDIR with both files is left as it is unless FORCE=1.
set -euo pipefail
out=$(realpath -m "${1:?usage: guest/build.sh OUTDIR}")
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${FORCE:-0}" != 1 ] && [ -s "$out/vmlinux" ] && [ -s "$out/initramfs.cpio" ]; then exit 0; fi
for tool in cpio xz; do command -v "$tool" >/dev/null || { echo "guest/build.sh: needs $tool (apt-get install $tool)" >&2; exit 1; }; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# (No early exits in pipelines: with pipefail a producer killed by SIGPIPE fails the build.)
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ && !k {k=$2} END {print k}')
[ -n "$kpkg" ] || { echo "guest/build.sh: cannot resolve the Debian kernel package (apt-get update?)" >&2; exit 1; }
apt-get download -q "$kpkg" busybox-static dropbear-bin libtomcrypt1 libtommath1 >download.log 2>&1 || { cat download.log >&2; exit 1; }
mkdir pkg
for f in ./*.deb; do dpkg -x "$f" pkg; done
kver=${kpkg#linux-image-}

# vmlinux: the bzImage's payload is XZ; cut from the XZ magic and decompress (trailing data is ignored).
offset=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "pkg/boot/vmlinuz-$kver" | awk -F: 'NR==1 {print $1}')
tail -c +$((offset + 1)) "pkg/boot/vmlinuz-$kver" | xz -dc 2>/dev/null >vmlinux || true
[ "$(head -c 4 vmlinux | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || { echo "guest/build.sh: could not extract vmlinux" >&2; exit 1; }

root=initramfs
mkdir -p $root/{bin,sbin,etc,proc,sys,dev,run,tmp,root/.ssh,lib/modules,usr/sbin,etc/dropbear,mnt}
cp pkg/bin/busybox $root/bin/busybox
cp pkg/usr/sbin/dropbear $root/usr/sbin/dropbear
# dropbear's shared libraries: from the downloaded packages, else from this (Debian) host.
pkglibs=$(find "$PWD/pkg" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
for lib in $(LD_LIBRARY_PATH="$pkglibs" ldd pkg/usr/sbin/dropbear | awk '/=>/{print $1} /ld-linux/{print $1}'); do
  name=$(basename "$lib")
  src=$(find pkg -name "$name" \( -type f -o -type l \) -print -quit)
  [ -n "$src" ] || src=$(ldconfig -p | awk -v n="$name" '$1==n && !f {f=$NF} END {print f}')
  [ -n "$src" ] || src=$lib
  mkdir -p "$root/lib64" "$root/lib/x86_64-linux-gnu"
  case "$name" in ld-linux*) cp -L "$src" "$root/lib64/$name" ;; *) cp -L "$src" "$root/lib/x86_64-linux-gnu/$name" ;; esac
done

# Kernel modules the guest needs, with their dependencies (resolved from each module's
# modinfo, since there is no depmod here), in load order.
moddir=pkg/lib/modules/$kver
declare -A seen=()
order=()
add_module() {
  local name=$1 path dep
  [ -n "${seen[$name]:-}" ] && return
  seen[$name]=1
  path=$(find "$moddir" \( -name "$name.ko" -o -name "${name//_/-}.ko" \) -print -quit)
  [ -n "$path" ] || return 0   # built into the kernel
  for dep in $(tr '\0' '\n' <"$path" | awk -F= '$1=="depends" && !d {d=$2} END {gsub(",", " ", d); print d}'); do add_module "$dep"; done
  cp "$path" "$root/lib/modules/"
  order+=("$(basename "$path")")
}
for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio virtio_blk failover net_failover virtio_net virtio_rng isofs nls_utf8; do
  add_module "$m"
done
printf '%s\n' "${order[@]}" >"$root/lib/modules/order"

cp "$here/init" "$root/init"
cp "$here/udhcpc.script" "$root/etc/udhcpc.script"
chmod 755 "$root/init" "$root/etc/udhcpc.script"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:*:1::::::' >"$root/etc/shadow"
echo '/bin/sh' >"$root/etc/shells"

mkdir -p "$out"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out/initramfs.cpio.tmp"
mv vmlinux "$out/vmlinux.tmp"
mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
mv "$out/vmlinux.tmp" "$out/vmlinux"
echo "$kver" >"$out/kernel-version"
