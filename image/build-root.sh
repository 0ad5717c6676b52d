#!/bin/bash
# The live system's root tree, its Debian part: debootstrap minbase, the
# inventory's packages (image profile) and the live ones; then everything a
# build would make differently (logs, caches, keys, machine-id) removed, so
# two builds from the same packages give the same tree.  amanda-dr itself and
# its units come after (live-setup.sh), so a change to the project does not
# build this again.
#
# usage: build-root.sh ROOT SUITE MIRROR DEBCACHE PACKAGES...
# Run by image/build.py under `unshare --mount --propagation private`, with
# SOURCE_DATE_EPOCH set.  This file's text is part of the root's cache key.
set -euo pipefail

root=$1 suite=$2 mirror=$3 debcache=$4
shift 4
packages=("$@")
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
# Python compiles what packages install: hash-checked .pyc (py_compile's
# default under SOURCE_DATE_EPOCH) and a fixed hash seed, so the bytes repeat
export SOURCE_DATE_EPOCH PYTHONHASHSEED=0 LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive

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
path-exclude /usr/share/lintian/*
EOT
# drivers a recovery never needs (sound, video, radio); storage, USB, SCSI
# tape and changers, HBAs, md, dm, NICs stay
cat > "$root/etc/dpkg/dpkg.cfg.d/02-amdr-live-modules" <<'EOT'
path-exclude /lib/modules/*/kernel/sound/*
path-exclude /lib/modules/*/kernel/drivers/gpu/*
path-exclude /lib/modules/*/kernel/drivers/media/*
path-exclude /lib/modules/*/kernel/drivers/net/wireless/*
path-exclude /lib/modules/*/kernel/net/wireless/*
path-exclude /lib/modules/*/kernel/net/mac80211/*
path-exclude /lib/modules/*/kernel/drivers/bluetooth/*
path-exclude /lib/modules/*/kernel/net/bluetooth/*
path-exclude /lib/modules/*/kernel/drivers/staging/*
path-exclude /lib/modules/*/kernel/drivers/iio/*
path-exclude /lib/modules/*/kernel/drivers/comedi/*
path-exclude /lib/modules/*/kernel/drivers/nfc/*
path-exclude /lib/modules/*/kernel/net/nfc/*
path-exclude /lib/modules/*/kernel/drivers/net/wwan/*
path-exclude /lib/modules/*/kernel/drivers/net/ieee802154/*
path-exclude /lib/modules/*/kernel/net/ieee802154/*
path-exclude /lib/modules/*/kernel/drivers/isdn/*
path-exclude /lib/modules/*/kernel/drivers/atm/*
path-exclude /lib/modules/*/kernel/drivers/usb/gadget/*
path-exclude /lib/modules/*/kernel/drivers/mtd/*
EOT
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > "$root/etc/apt/apt.conf.d/01-amdr-norecommends"
mkdir -p "$root/etc/initramfs-tools/conf.d"
# MODULES=most: the live system boots on whatever holds the medium
printf 'MODULES=most\nCOMPRESS=zstd\nRESUME=none\n' > "$root/etc/initramfs-tools/conf.d/amdr-live"
chroot "$root" debconf-set-selections <<'EOT'
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
mdadm mdadm/initrdstart string none
mdadm mdadm/autostart boolean false
mdadm mdadm/autocheck boolean false
mdadm mdadm/start_daemon boolean false
EOT
echo amanda-dr > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tamanda-dr\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    > "$root/etc/hosts"

echo "== apt-get install ${#packages[@]} packages"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t devpts devpts "$root/dev/pts"
mount --bind "$debcache" "$root/var/cache/apt/archives"
chroot "$root" apt-get update -qq
chroot "$root" apt-get install -y -q --no-install-recommends "${packages[@]}"
umount "$root/var/cache/apt/archives"

# no password: the consoles log in by themselves, ssh takes keys only
chroot "$root" passwd -d root >/dev/null
chroot "$root" systemctl disable ssh.service 2>/dev/null || true  # remote assist turns it on
chroot "$root" systemctl set-default multi-user.target

# what the tools stamp with today's date, not SOURCE_DATE_EPOCH: the days of
# the last password change (passwd, adduser) and mdadm's mkconf comment; the
# initramfs is made again after, as it carries mdadm.conf
days=$((SOURCE_DATE_EPOCH / 86400))
sed -i -E "s/^([^:]*:[^:]*:)[0-9]+:/\1${days}:/" "$root/etc/shadow" "$root/etc/shadow-"
sed -i -E 's/^(# This configuration was auto-generated) on .* (by mkconf)$/\1 \2/' \
    "$root/etc/mdadm/mdadm.conf"
chroot "$root" update-initramfs -u -k all

echo "== clean up: what differs from build to build"
umount "$root/dev/pts" "$root/sys" "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/dpkg/dpkg.cfg.d/00-amdr-unsafe-io"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/var/cache/ldconfig/aux-cache "$root"/var/cache/man \
    "$root"/var/lib/systemd/catalog/database "$root"/var/lib/dbus/machine-id \
    "$root"/etc/ssh/ssh_host_* "$root"/var/log/* "$root"/root/.bash_history \
    "$root"/var/lib/amanda/.gnupg "$root"/tmp/* "$root"/var/tmp/*
: > "$root/etc/machine-id"  # systemd makes one at boot
find "$root/usr/share/doc" -type f ! -name copyright -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*

echo "== modules: $(du -sm "$root"/lib/modules | cut -f1) MB, tree: $(du -sxm "$root" | cut -f1) MB"
