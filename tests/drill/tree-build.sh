#!/bin/bash
# Build one drill source tree (no disks): debootstrap minbase, then apt inside
# the chroot.  Run by tests/drill/systems.py under
# `unshare --mount --propagation private`, so every mount made here vanishes
# with the namespace.  The tree is tarred by the caller and later unpacked onto
# real disks inside the VM-tier guest (tests/drill/install.sh).
#
# usage: tree-build.sh ROOT SUITE MIRROR DEBCACHE FILES PACKAGES...
# This file's text is part of the tree's cache key.
set -euo pipefail

root=$1 suite=$2 mirror=$3 debcache=$4 files=$5
shift 5
packages=("$@")

mkdir -p "$debcache/partial"
echo "== debootstrap $suite (minbase) from $mirror"
debootstrap --variant=minbase --include=systemd-sysv,udev,kmod --cache-dir="$debcache" \
    "$suite" "$root" "$mirror"

echo "== configuration written before the packages are installed"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/00-amdr-unsafe-io"
cat > "$root/etc/dpkg/dpkg.cfg.d/01-amdr-nodoc" <<'EOT'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOT
# kernel modules a drill never loads: the systems and their backups stay small
# (storage: virtio, ahci, nvme, scsi, md, dm and net: virtio_net, e1000/e1000e stay)
cat > "$root/etc/dpkg/dpkg.cfg.d/02-amdr-drill-modules" <<'EOT'
path-exclude /lib/modules/*/kernel/sound/*
path-exclude /lib/modules/*/kernel/drivers/gpu/*
path-exclude /lib/modules/*/kernel/drivers/media/*
path-exclude /lib/modules/*/kernel/drivers/net/wireless/*
path-exclude /lib/modules/*/kernel/net/wireless/*
path-exclude /lib/modules/*/kernel/net/mac80211/*
path-exclude /lib/modules/*/kernel/drivers/bluetooth/*
path-exclude /lib/modules/*/kernel/net/bluetooth/*
path-exclude /lib/modules/*/kernel/drivers/infiniband/*
path-exclude /lib/modules/*/kernel/drivers/isdn/*
path-exclude /lib/modules/*/kernel/drivers/staging/*
path-exclude /lib/modules/*/kernel/drivers/net/can/*
path-exclude /lib/modules/*/kernel/drivers/net/usb/*
path-exclude /lib/modules/*/kernel/drivers/net/ethernet/*
path-include /lib/modules/*/kernel/drivers/net/ethernet/intel/e1000/*
path-include /lib/modules/*/kernel/drivers/net/ethernet/intel/e1000e/*
path-exclude /lib/modules/*/kernel/drivers/iio/*
path-exclude /lib/modules/*/kernel/drivers/hwmon/*
path-exclude /lib/modules/*/kernel/drivers/video/fbdev/*
path-exclude /lib/modules/*/kernel/drivers/mtd/*
path-exclude /lib/modules/*/kernel/drivers/comedi/*
path-exclude /lib/modules/*/kernel/drivers/thunderbolt/*
path-exclude /lib/modules/*/kernel/drivers/usb/gadget/*
path-exclude /lib/modules/*/kernel/drivers/usb/serial/*
path-exclude /lib/modules/*/kernel/drivers/usb/misc/*
path-exclude /lib/modules/*/kernel/drivers/mmc/*
path-exclude /lib/modules/*/kernel/drivers/nfc/*
path-exclude /lib/modules/*/kernel/net/nfc/*
path-exclude /lib/modules/*/kernel/drivers/atm/*
path-exclude /lib/modules/*/kernel/net/atm/*
path-exclude /lib/modules/*/kernel/drivers/net/wwan/*
path-exclude /lib/modules/*/kernel/drivers/net/ieee802154/*
path-exclude /lib/modules/*/kernel/net/ieee802154/*
EOT
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > "$root/etc/apt/apt.conf.d/01-amdr-norecommends"
mkdir -p "$root/etc/initramfs-tools/conf.d"
# MODULES=most: one initrd finds root on virtio, SATA and NVMe alike (the drill moves buses)
printf 'MODULES=most\nCOMPRESS=zstd\nRESUME=none\n' > "$root/etc/initramfs-tools/conf.d/amdr-drill"
mkdir -p "$root/etc/default/grub.d"
cat > "$root/etc/default/grub.d/amdr.cfg" <<'EOT'
GRUB_TIMEOUT=1
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"
GRUB_DISABLE_OS_PROBER=true
EOT
# no /dev/loopN or guest disk in debconf from the package's postinst; the
# install step (in the guest) names the real disks
chroot "$root" debconf-set-selections <<'EOT'
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
grub-efi-amd64 grub2/force_efi_extra_removable boolean true
grub-efi-amd64 grub2/update_nvram boolean false
mdadm mdadm/initrdstart string all
mdadm mdadm/autostart boolean true
mdadm mdadm/autocheck boolean false
mdadm mdadm/start_daemon boolean false
EOT

echo "== apt-get install ${#packages[@]} packages"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t devpts devpts "$root/dev/pts"
mount --bind "$debcache" "$root/var/cache/apt/archives"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
chroot "$root" apt-get update -qq
chroot "$root" apt-get install -y -q --no-install-recommends "${packages[@]}"
umount "$root/var/cache/apt/archives"

echo "== drill units and settings"
install -m 755 "$files/amdr-boot-marker.sh" "$root/usr/local/sbin/amdr-boot-marker"
install -m 644 "$files/amdr-boot-marker.service" "$root/etc/systemd/system/"
install -m 755 "$files/amdr-drill-job.sh" "$root/usr/local/sbin/amdr-drill-job"
install -m 644 "$files/amdr-drill-job.service" "$root/etc/systemd/system/"
chroot "$root" systemctl enable amdr-boot-marker.service amdr-drill-job.service
chroot "$root" systemctl set-default multi-user.target
# No login on the serial line: agetty's start hangs up ttyS0 (vhangup) and
# flushes it, and a marker script still writing there lost every line after
# the first (CI, layout a: AMDR-BOOT-OK and nothing else, yet powered off).
chroot "$root" systemctl mask serial-getty@ttyS0.service
mkdir -p "$root/etc/amdr-drill"
touch "$root/etc/amdr-drill/poweroff"
echo "root:drill" | chroot "$root" chpasswd
echo "nameserver 10.0.2.3" > "$root/etc/resolv.conf"

echo "== clean up"
umount "$root/dev/pts" "$root/sys" "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/dpkg/dpkg.cfg.d/00-amdr-unsafe-io"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
    "$root"/var/cache/debconf/*-old
find "$root/usr/share/doc" -type f ! -name copyright -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
echo "== modules: $(du -sm "$root"/lib/modules | cut -f1) MB, tree: $(du -sxm "$root" | cut -f1) MB"
