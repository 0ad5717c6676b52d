#!/bin/bash
# PID 1 of the test guest (installed as /usr/local/sbin/amdr-vm-init, booted with init=).
#
# Why not systemd: under TCG every second of boot is paid by every test, and
# the tests need only what a normal Debian system gives a root shell: /proc,
# /sys, /dev with udevd running (so /dev/disk/by-id, the udev rules of LVM,
# mdadm and cryptsetup and the udev database lsblk reads behave as on a real
# machine), and the static device nodes (/dev/mapper/control,
# /dev/loop-control, /dev/btrfs-control) whose opening loads their module,
# as systemd-tmpfiles arranges.  Only block devices are coldplugged: the
# platform devices' modules (watchdog, PC speaker, kvm, ...) serve no test.
# Every process costs ~50 ms here, hence the shell builtins.
#
# The host talks to it through one 9p share, tag amdr_vm, mounted at /amdr-vm:
#   in:  command.sh (a bash script), mounts ("TAG GUESTPATH ro|rw" per line)
#   out: stdout, stderr, exit_code, ready (guest uptime when the command started)
# Lines starting "amdr-vm:" on the console say the same, so a run whose share
# failed still says why.  This script must never exit: PID 1 exiting is a
# kernel panic (then, with panic=1 and qemu's -no-reboot, qemu quits).
# "amdr_vm.trace" on the kernel command line times each step on the console.
# This file's text is part of the image's cache key.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
say() { echo "amdr-vm: $*" > /dev/console; }
uptime_s() { local up _; read -r up _ < /proc/uptime; echo "$up"; }
read -r cmdline < /proc/cmdline
trace() { :; }
[[ " $cmdline " == *" amdr_vm.trace "* ]] && trace() { say "$* at $(uptime_s)s"; }
power_off() {
    sync
    echo o > /proc/sysrq-trigger
    sleep 5
    echo b > /proc/sysrq-trigger   # qemu runs with -no-reboot: a reboot ends it too
    while :; do sleep 60; done
}
die() {
    say "init failed: $*"
    power_off
}
trace "init started"

# the initramfs moved /proc, /sys and /run here; /dev only when it has udev
mounted=" "
while read -r _ where _; do mounted+="$where "; done < /proc/self/mounts
[[ $mounted == *" /proc "* ]] || mount -t proc proc /proc
[[ $mounted == *" /sys "* ]] || mount -t sysfs sysfs /sys
[[ $mounted == *" /run "* ]] || mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
[[ $mounted == *" /dev "* ]] || mount -t devtmpfs -o nosuid,mode=755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run/lock /amdr-vm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev tmpfs /tmp
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
echo amdr-vm > /proc/sys/kernel/hostname

kmod static-nodes --format=tmpfiles 2>/dev/null | while read -r type path mode _ _ _ dev; do
    case $path in
        /dev/mapper/control | /dev/loop-control | /dev/btrfs-control) ;;
        *) continue ;;
    esac
    [ -e "$path" ] && continue
    [ -d "${path%/*}" ] || mkdir -p "${path%/*}"
    mknod -m "$mode" "$path" "${type:0:1}" "${dev%%:*}" "${dev##*:}"
done
trace "static nodes made"

# virtio_rng: the host's entropy (qemu's virtio-rng-pci); without it the
# kernel's random pool takes seconds to be ready and getrandom() blocks
modprobe -a 9pnet_virtio 9p virtio_rng || die "no 9p or virtio_rng module"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 amdr_vm /amdr-vm \
    || die "cannot mount the amdr_vm share"
while read -r tag path mode; do
    [ -n "$tag" ] || continue
    cache=none
    [ "$mode" = ro ] && cache=loose   # nothing changes it during the run
    [ -d "$path" ] || mkdir -p "$path"
    mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,cache=$cache,$mode" "$tag" "$path" \
        || die "cannot mount share $tag on $path"
done < /amdr-vm/mounts
trace "shares mounted"

/lib/systemd/systemd-udevd --daemon || die "udevd did not start"
udevadm trigger --action=add --subsystem-match=block --subsystem-match=misc
udevadm settle --timeout=120 || say "udevadm settle timed out"
trace "udev settled"

ready=$(uptime_s)
echo "$ready" > /amdr-vm/ready
say "ready after ${ready}s"

cd /project 2>/dev/null || cd /root
export PYTHONPATH=/project PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
bash /amdr-vm/command.sh < /dev/null > /amdr-vm/stdout 2> /amdr-vm/stderr
rc=$?
echo "$rc" > /amdr-vm/exit_code
say "exit $rc after $(uptime_s)s"
power_off
