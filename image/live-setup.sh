#!/bin/bash
# amanda-dr into a copy of the cached root tree (build-root.sh): the project
# under /usr/lib/amanda-dr with its two commands, the live console's units and
# settings, the site settings when given; then the doctor inside the tree must
# pass, or the build fails.
#
# usage: live-setup.sh ROOT FILES PROJECT [SITE.yaml]
#   PROJECT: a directory holding essentials/, recovery/ and VERSION.
# Run by image/build.py under `unshare --mount --propagation private`, with
# SOURCE_DATE_EPOCH set.  This file's text is part of the image's cache key.
set -euo pipefail

root=$1 files=$2 project=$3 site=${4:-}
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
export SOURCE_DATE_EPOCH PYTHONHASHSEED=0 LC_ALL=C.UTF-8

echo "== amanda-dr $(cat "$project/VERSION")"
mkdir -p "$root/usr/lib/amanda-dr"
cp -r "$project/essentials" "$project/recovery" "$project/VERSION" "$root/usr/lib/amanda-dr/"
find "$root/usr/lib/amanda-dr" -name __pycache__ -prune -exec rm -rf {} +
for tool in amdr-essentials:essentials.cli amdr-recover:recovery.cli; do
    name=${tool%%:*} mod=${tool#*:}
    printf '#!/usr/bin/python3\nimport sys\nsys.path.insert(0, "/usr/lib/amanda-dr")\nfrom %s import main\nsys.exit(main())\n' \
        "$mod" > "$root/usr/local/sbin/$name"
    chmod 755 "$root/usr/local/sbin/$name"
done
chroot "$root" python3 -m compileall -q --invalidation-mode checked-hash /usr/lib/amanda-dr

echo "== the live system's units and settings"
install -m 755 "$files/amdr-live" "$root/usr/local/sbin/amdr-live"
install -m 755 "$files/amdr-live-welcome" "$root/usr/local/sbin/amdr-live-welcome"
install -D -m 644 "$files/tmux.conf" "$root/etc/amanda-dr/tmux.conf"
install -m 755 "$files/amdr-doctor-line" "$root/usr/local/sbin/amdr-doctor-line"
install -m 644 "$files/amdr-doctor-line.service" "$root/etc/systemd/system/"
install -m 644 "$files/amdr-doctor-full.service" "$root/etc/systemd/system/"
install -m 644 "$files/amdr-hostkeys.service" "$root/etc/systemd/system/"
install -m 755 "$files/amdr-media" "$root/usr/local/sbin/amdr-media"
install -m 644 "$files/amdr-media.service" "$root/etc/systemd/system/"
install -m 755 "$files/amdr-net" "$root/usr/local/sbin/amdr-net"
install -m 644 "$files/amdr-net.service" "$root/etc/systemd/system/"
install -m 644 "$files/20-wired-dhcp.network" "$root/etc/systemd/network/"
install -m 644 "$files/amdr-assist.service" "$root/etc/systemd/system/"
install -D -m 644 "$files/sshd-amdr-assist.conf" "$root/etc/ssh/sshd_config.d/amdr-assist.conf"
for unit in getty@tty1 serial-getty@ttyS0; do
    mkdir -p "$root/etc/systemd/system/$unit.service.d"
    install -m 644 "$files/autologin-$unit.conf" \
        "$root/etc/systemd/system/$unit.service.d/amdr-autologin.conf"
done
install -m 644 "$files/profile-amdr-live.sh" "$root/etc/profile.d/amdr-live.sh"
# a mail server the Amanda packages pull in: nothing to deliver here
chroot "$root" systemctl mask exim4.service
chroot "$root" systemctl enable amdr-doctor-line.service amdr-hostkeys.service amdr-net.service \
    amdr-media.service amdr-doctor-full.service \
    systemd-networkd.service systemd-resolved.service serial-getty@ttyS0.service
if [ -n "$site" ]; then
    install -D -m 644 "$site" "$root/etc/amanda-dr/site.yaml"
fi

echo "== the doctor, inside the image's root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t tmpfs tmpfs "$root/tmp"
status=0
chroot "$root" /usr/local/sbin/amdr-recover doctor > "$root/tmp/doctor.txt" || status=$?
cat "$root/tmp/doctor.txt"
umount "$root/tmp" "$root/sys" "$root/proc"
# the probes' own leavings: Amanda's tools write a dated debug log each run
find "$root/var/log/amanda" -type f -delete 2>/dev/null || true
if [ "$status" != 0 ]; then
    echo "the doctor failed inside the image's root: the image would not recover" >&2
    exit 1
fi
