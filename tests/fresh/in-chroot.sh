#!/bin/bash
# Run a script as root inside a fresh Debian tree, the way a person would on
# a new machine: /proc, /sys, /dev (loop devices), /dev/pts, a tmpfs /dev/shm
# (Amanda's chunker and taper use POSIX shared memory) and /run.
#
# Run by tests/fresh/machine.py under `unshare --mount --propagation private`:
# every mount made here vanishes with the namespace, so the caller's
# `rm -rf` of the tree can never descend into the host's /dev or /proc.
#
# usage: in-chroot.sh ROOT SOURCE APTCACHE SCRIPT
#   SOURCE   the project's git checkout, bound read-only at /mnt/source
#   APTCACHE bound at /var/cache/apt/archives (downloads kept between runs)
#   SCRIPT   a file run with bash inside the tree, from /root
set -euo pipefail

root=$1 source=$2 aptcache=$3 script=$4

mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
mount -t tmpfs -o mode=755 run "$root/run"
mkdir -p "$root/mnt/source" "$aptcache"
mount --bind "$source" "$root/mnt/source"
mount -o remount,bind,ro "$root/mnt/source"
mount --bind "$aptcache" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf"
install -m 755 "$script" "$root/root/fresh-steps.sh"

exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c 'cd /root && exec /bin/bash /root/fresh-steps.sh'
