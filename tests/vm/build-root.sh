#!/bin/bash
# Build the guest's root tree: debootstrap, then apt inside the chroot.
#
# Run by tests/vm/image.py under `unshare --mount --propagation private`, so
# every mount made here (and any that debootstrap leaves behind when it fails)
# vanishes with the namespace and can never leak into the host or make the
# clean-up `rm -rf` descend into the host's /proc or /dev.
#
# usage: build-root.sh ROOT SUITE MIRROR DEBCACHE INITRD_MODULES PACKAGES...
# This file's text is part of the image's cache key: edit it and the image is rebuilt.
set -euo pipefail

root=$1 suite=$2 mirror=$3 debcache=$4 initrd_modules=$5
shift 5
packages=("$@")

mkdir -p "$debcache"
echo "== debootstrap $suite (minbase) from $mirror"
debootstrap --variant=minbase --cache-dir="$debcache" "$suite" "$root" "$mirror"

echo "== configuration written before the packages are installed"
# no daemons started in the chroot (openssh-server, mdadm, lvm2 try to)
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# no docs, man pages or translations: a smaller image, a faster mkfs
cat > "$root/etc/dpkg/dpkg.cfg.d/01-amdr-vm-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
# the initrd only has to mount an ext4 root on virtio-blk (root=/dev/vdX,
# rootfstype=ext4): without the hooks of udev and the storage packages it is
# half the size, and it neither coldplugs udev, loads every md personality
# nor runs the raid6 benchmark (btrfs) at each boot, seconds under TCG.
# The real root keeps every tool, rule and module.
cat > "$root/etc/dpkg/dpkg.cfg.d/02-amdr-vm-small-initrd" <<'EOF'
path-exclude /usr/share/initramfs-tools/hooks/btrfs
path-exclude /usr/share/initramfs-tools/hooks/xfs
path-exclude /usr/share/initramfs-tools/hooks/lvm2
path-exclude /usr/share/initramfs-tools/hooks/dmsetup
path-exclude /usr/share/initramfs-tools/hooks/mdadm
path-exclude /usr/share/initramfs-tools/scripts/*/btrfs
path-exclude /usr/share/initramfs-tools/scripts/*/mdadm
path-exclude /usr/share/initramfs-tools/scripts/*/lvm2
path-exclude /usr/share/initramfs-tools/hooks/udev
path-exclude /usr/share/initramfs-tools/scripts/*/udev
EOF
# a small initrd: only what mounts the root disk (virtio-blk, ext4); the
# real root has every module of the Debian kernel under /lib/modules
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
printf 'MODULES=list\nCOMPRESS=zstd\nRESUME=none\n' > "$root/etc/initramfs-tools/conf.d/amdr-vm"
tr ',' '\n' <<<"$initrd_modules" > "$root/usr/share/initramfs-tools/modules.d/amdr-vm"
echo amdr-vm > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 amdr-vm\n' > "$root/etc/hosts"
: > "$root/etc/fstab"

echo "== apt-get install ${#packages[@]} packages"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t devpts devpts "$root/dev/pts"
mount --bind "$debcache" "$root/var/cache/apt/archives"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
chroot "$root" apt-get update -qq
chroot "$root" apt-get install -y -q --no-install-recommends "${packages[@]}"
umount "$root/var/cache/apt/archives"

echo "== clean up"
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
