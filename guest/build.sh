#!/usr/bin/env bash
# Builds Gureum's tiny guest from Debian packages only (apt-get download + dpkg -x; no
# loop mounts, nothing that needs root):
#   guest/build.sh OUTDIR -> OUTDIR/vmlinux         uncompressed kernel, PVH entry (fast form, microvm)
#                            OUTDIR/initramfs.cpio  uncompressed initramfs (both forms)
#                            OUTDIR/disk.qcow2      whole-disk form: MBR + one bootable FAT16 partition
#                                                   with syslinux, vmlinuz and the initramfs (SeaBIOS)
#                            OUTDIR/kernel-version, OUTDIR/stamp (hash of the guest sources)
# Idempotent: an OUTDIR whose stamp matches the sources and that holds every output is
# left as it is unless FORCE=1.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
out=$(realpath -m "${1:?usage: guest/build.sh OUTDIR}")
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The stamp: sha256 of the "<sha256>  <name>" lines of the sources. src/cli/guest-images.ts
# computes the same value (its GUEST_SOURCES must list the same files in the same order).
stamp=$(cd "$here" && sha256sum build.sh init udhcpc.script | sha256sum | awk '{print $1}')
if [ "${FORCE:-0}" != 1 ] && [ "$(cat "$out/stamp" 2>/dev/null || true)" = "$stamp" ] && [ -s "$out/vmlinux" ] \
  && [ -s "$out/initramfs.cpio" ] && [ -s "$out/disk.qcow2" ] && [ -s "$out/kernel-version" ]; then
  echo "guest/build.sh: $out is up to date"
  exit 0
fi
mbr=/usr/lib/syslinux/mbr/mbr.bin
for tool in cpio:cpio xz:xz-utils mkfs.vfat:dosfstools mcopy:mtools syslinux:syslinux qemu-img:qemu-utils; do
  command -v "${tool%%:*}" >/dev/null || { echo "guest/build.sh: needs ${tool%%:*} (apt-get install ${tool##*:})" >&2; exit 1; }
done
[ -r "$mbr" ] || { echo "guest/build.sh: needs $mbr (apt-get install syslinux-common)" >&2; exit 1; }

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
mkdir -p $root/{bin,sbin,etc,proc,sys,dev,run,tmp,root/.ssh,lib/modules,usr/bin,usr/sbin,etc/dropbear,mnt}
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
# evdev + button first: the ACPI power button (QMP system_powerdown) as an input event for
# acpid, which init starts right after them (a press before that is lost); then virtio for
# both transports, virtio-mmio first (microvm's own disks and NIC) and then virtio-pci
# (pc/q35, and microvm's hotplug ports: tap NICs and Cinder volumes), so that virtio_blk
# names the mmio disks vda… and the PCI volumes after them; isofs, vfat and their code
# pages: config drives in either of Nova's formats.
for m in evdev button virtio virtio_ring virtio_mmio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk \
  failover net_failover virtio_net virtio_rng isofs fat vfat nls_cp437 nls_utf8; do
  add_module "$m"
done
printf '%s\n' "${order[@]}" >"$root/lib/modules/order"
# File systems for volumes (mke2fs is busybox's; ext4 mounts ext2/3 too), loaded after the
# guest is ready (they are not needed to boot): crc32c (ext4's and jbd2's checksums, a
# soft dependency modinfo does not list), ext4 with jbd2, mbcache and crc16.
order=()
for m in crc32c_generic ext4; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$root/lib/modules/order.fs"

cp "$here/init" "$root/init"
cp "$here/udhcpc.script" "$root/etc/udhcpc.script"
chmod 755 "$root/init" "$root/etc/udhcpc.script"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:*:1::::::' >"$root/etc/shadow"
echo '/bin/sh' >"$root/etc/shells"
# busybox acpid runs /etc/acpi/<action> for an event; the power button's is PWRF/00000080.
mkdir -p "$root/etc/acpi/PWRF"
printf '#!/bin/sh\n# ACPI power button (QMP system_powerdown): flush and power off now.\nsync\nexec poweroff -f\n' \
  >"$root/etc/acpi/PWRF/00000080"
chmod 755 "$root/etc/acpi/PWRF/00000080"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >initramfs.cpio

# Whole-disk form: a 64 MiB disk, MBR (syslinux's mbr.bin) with one active FAT16 partition
# from 1 MiB to the end holding syslinux, the compressed kernel and the initramfs. The FAT
# image is made on its own (hidden sectors = the partition's start) and written into place.
export MTOOLS_SKIP_CHECK=1
disk_sectors=$((64 * 2048))
part_start=2048
part_sectors=$((disk_sectors - part_start))
cat >syslinux.cfg <<'CFG'
SERIAL 0 115200
DEFAULT gureum
PROMPT 0
TIMEOUT 0
LABEL gureum
  LINUX /vmlinuz
  INITRD /initramfs.cpio
  APPEND console=ttyS0 quiet cryptomgr.notests
CFG
mkfs.vfat -F 16 -n GUREUM -i 47524d31 -h "$part_start" -C fat.img $((part_sectors / 2)) >mkfs.log 2>&1 || { cat mkfs.log >&2; exit 1; }
mcopy -i fat.img "pkg/boot/vmlinuz-$kver" ::/vmlinuz
mcopy -i fat.img initramfs.cpio ::/initramfs.cpio
mcopy -i fat.img syslinux.cfg ::/syslinux.cfg
syslinux --install fat.img
# Partition-table bytes as printf escapes: a CHS triple (255 heads, 63 sectors; BIOSes use LBA) and a little-endian u32.
chs() {
  local c=$(($1 / (255 * 63))) h=$((($1 / 63) % 255)) s=$(($1 % 63 + 1))
  if [ $c -gt 1023 ]; then c=1023 h=254 s=63; fi
  printf '\\x%02x\\x%02x\\x%02x' $h $((s | ((c >> 2) & 0xc0))) $((c & 0xff))
}
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
truncate -s $((disk_sectors * 512)) disk.raw
dd if="$mbr" of=disk.raw bs=440 count=1 conv=notrunc status=none
# From byte 440: disk id, 2 reserved bytes, partition 1 (active, type 0x0e = FAT16 LBA,
# CHS start, CHS end, LBA start, sectors), the three empty entries, the boot signature.
printf "$(le32 0x47524d31)\\x00\\x00\\x80$(chs $part_start)\\x0e$(chs $((disk_sectors - 1)))$(le32 $part_start)$(le32 $part_sectors)" >mbr-tail.bin
head -c 48 /dev/zero >>mbr-tail.bin
printf '\x55\xaa' >>mbr-tail.bin
[ "$(stat -c %s mbr-tail.bin)" = 72 ] || { echo "guest/build.sh: bad partition table" >&2; exit 1; }
dd if=mbr-tail.bin of=disk.raw bs=1 seek=440 conv=notrunc status=none
dd if=fat.img of=disk.raw bs=512 seek=$part_start conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 disk.raw disk.qcow2

mkdir -p "$out"
rm -f "$out/stamp"
for f in vmlinux initramfs.cpio disk.qcow2; do mv "$f" "$out/.$f.tmp.$$"; done
for f in vmlinux initramfs.cpio disk.qcow2; do mv "$out/.$f.tmp.$$" "$out/$f"; done
echo "$kver" >"$out/kernel-version"
echo "$stamp" >"$out/stamp"
echo "guest/build.sh: built $out (kernel $kver) in ${SECONDS} s"
