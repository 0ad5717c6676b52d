#!/bin/bash
# Build a small bootable Debian 12 "source system" on a raw disk image,
# on a host without device-mapper and without udev.
#
#   build.sh --layout a --out /work/proto/out/drill-a.img     # BIOS/GPT (SeaBIOS)
#   build.sh --layout b --out /work/proto/out/drill-b.img     # UEFI/GPT (OVMF)
#
# Layout a: p1 BIOS boot (1 MiB, no fs), p2 ext4 /, p3 xfs /srv, p4 swap
# Layout b: p1 ESP vfat /boot/efi, p2 ext4 /, p3 xfs /srv, p4 swap
#
# .debs are cached in $DEBS (default /work/proto/debs), bind-mounted as the
# target's /var/cache/apt/archives for debootstrap and apt-get alike.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
LAYOUT=a
OUT=
SIZE=2G
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DEBS=${DEBS:-$HERE/debs}
POWEROFF=1
ROOT_PW=${ROOT_PW:-drill}
IFNAME=${IFNAME:-ens3}          # first NIC on qemu's default "pc" machine
ADDR=${ADDR:-10.0.2.15/24}       # qemu user-net defaults
GW=${GW:-10.0.2.2}
NO_BYUUID=${NO_BYUUID:-0}        # 1 = leave /dev/disk/by-uuid out (shows the pitfall)
BOOTSTRAP=${BOOTSTRAP:-debootstrap}  # or mmdebstrap (one apt run for all but grub)
PKGS="linux-image-amd64 openssh-server ifupdown iproute2 xfsprogs e2fsprogs dosfstools procps zstd"
UUID_SEED=${UUID_SEED:-}          # set => disk/partition/filesystem UUIDs derived from it (stable)

while [ $# -gt 0 ]; do
  case "$1" in
    --layout) LAYOUT=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    --size) SIZE=$2; shift 2;;
    --no-poweroff) POWEROFF=0; shift;;
    --bootstrap) BOOTSTRAP=$2; shift 2;;
    --uuid-seed) UUID_SEED=$2; shift 2;;
    --inner) shift; INNER=1;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
case "$LAYOUT" in a) HOST=drill-a;; b) HOST=drill-b;; *) echo "layout a|b" >&2; exit 2;; esac
OUT=${OUT:-$HERE/out/$HOST.img}

# uuid_for NAME: a UUID derived from UUID_SEED and NAME, or a random one
uuid_for() {
  python3 -c 'import sys, uuid; s = sys.argv[1]
print(uuid.uuid5(uuid.NAMESPACE_URL, "amdr-drill:" + s + ":" + sys.argv[2]) if s else uuid.uuid4())' "$UUID_SEED" "$1"
}

T0=$(date +%s.%N)
log() { awk -v t0="$T0" -v now="$(date +%s.%N)" -v m="$*" 'BEGIN{printf "[%6.1fs] %s\n", now-t0, m}' >&2; }

########################################################################
# inner part: runs in a private mount namespace (unshare --mount)
########################################################################
inner() {
  : "${LOOP:?}" "${MNT:?}"
  T0=${OUTER_T0:-$T0}
  local M=$MNT p
  local ROOTP=${LOOP}p2 SRVP=${LOOP}p3 SWAPP=${LOOP}p4 EFIP=${LOOP}p1

  # --- A private /dev for this mount namespace (and, bound, for the chroot).
  # Why: (1) the host has no udev, so there is no /dev/disk/by-uuid, and grub's
  #     10_linux writes root=UUID=... only if /dev/disk/by-uuid/<uuid> exists;
  # (2) without udev the host's /dev/loopNpM nodes can be STALE (left over
  #     from earlier partitions or made by hand, with another major:minor):
  #     devtmpfs does not replace an existing node. Using them could mkfs
  #     someone else's partition. So make our own nodes from sysfs.
  mount -t tmpfs -o mode=0755,size=8m amdr-dev /dev
  mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5
  mknod -m 666 /dev/full c 1 7; mknod -m 666 /dev/random c 1 8
  mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0
  mkdir -p /dev/pts /dev/shm
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
  ln -s pts/ptmx /dev/ptmx
  mount -t tmpfs -o mode=1777 shm /dev/shm
  ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin
  ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
  local b=${LOOP#/dev/}
  for p in /sys/class/block/$b /sys/class/block/${b}p*; do
    local n; n=$(basename "$p")
    mknod -m 660 "/dev/$n" b "$(cut -d: -f1 "$p/dev")" "$(cut -d: -f2 "$p/dev")"
  done
  ls -l /dev/${b}* >&2

  [ "$LAYOUT" = b ] && mkfs.vfat -F 32 -n ESP -i "$(uuid_for esp | cut -c1-8)" "$EFIP" >/dev/null
  mkfs.ext4 -q -L root -U "$(uuid_for root)" -E hash_seed="$(uuid_for root-hash)" "$ROOTP"
  mkfs.xfs -q -f -L srv -m uuid="$(uuid_for srv)" "$SRVP"
  mkswap -L swap -U "$(uuid_for swap)" "$SWAPP" >/dev/null
  log "filesystems made"
  mkdir -p /dev/disk/by-uuid /dev/disk/by-partuuid
  for p in /sys/class/block/${b}p*; do
    local n u pu; n=$(basename "$p")
    u=$(blkid -c /dev/null -s UUID -o value "/dev/$n" || true)
    pu=$(blkid -c /dev/null -s PARTUUID -o value "/dev/$n" || true)
    if [ -n "$u" ] && [ "$NO_BYUUID" != 1 ]; then ln -s "../../$n" "/dev/disk/by-uuid/$u"; fi
    if [ -n "$pu" ]; then ln -s "../../$n" "/dev/disk/by-partuuid/$pu"; fi
  done

  # build-time only: no write barriers, dpkg without fsync (the image is
  # thrown away if the build fails; sync + umount at the end make it durable)
  mount -o barrier=0 "$ROOTP" "$M"
  if [ "$BOOTSTRAP" = mmdebstrap ]; then
    # mmdebstrap wants an empty target (lost+found allowed): mount the rest after
    log "mmdebstrap (minbase + packages) start"
    local dpo=() x
    for x in 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
             'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
             'path-exclude=/usr/share/locale/*' 'path-include=/usr/share/locale/locale.alias'; do
      dpo+=(--dpkgopt="$x")
    done
    mmdebstrap --mode=root --variant=minbase \
        --include="systemd-sysv,udev,kmod,initramfs-tools,${PKGS// /,}" \
        --aptopt='APT::Install-Recommends "false"' "${dpo[@]}" \
        --skip=cleanup/apt/lists \
        --setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && echo RESUME=none > "$1/etc/initramfs-tools/conf.d/resume"' \
        --setup-hook="mkdir -p \"\$1/var/cache/apt/archives/\" && cp -a $DEBS/. \"\$1/var/cache/apt/archives/\"" \
        --customize-hook="cp -an \"\$1/var/cache/apt/archives/.\" $DEBS/" \
        "$SUITE" "$M" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
      || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
    log "mmdebstrap done"
    echo force-unsafe-io > "$M/etc/dpkg/dpkg.cfg.d/00-amdr-unsafe-io"
    mkdir -p "$M/srv" "$M/var/cache/apt/archives"
    mount "$SRVP" "$M/srv"
    [ "$LAYOUT" = b ] && mkdir -p "$M/boot/efi"
    mount --bind "$DEBS" "$M/var/cache/apt/archives"
  else
    mkdir -p "$M/etc/dpkg/dpkg.cfg.d"
    echo force-unsafe-io > "$M/etc/dpkg/dpkg.cfg.d/00-amdr-unsafe-io"
    mkdir -p "$M/srv" "$M/var/cache/apt/archives" "$M/dev" "$M/proc" "$M/sys"
    mount "$SRVP" "$M/srv"
    # layout b: this host kernel has no vfat (not in /proc/filesystems, no
    # modules), so the ESP is never mounted here; it is filled with mtools below.
    [ "$LAYOUT" = b ] && mkdir -p "$M/boot/efi"
    mkdir -p "$DEBS/partial"
    mount --bind "$DEBS" "$M/var/cache/apt/archives"

    # debootstrap makes its own few nodes in $M/dev (on the ext4, harmless:
    # devtmpfs covers them at boot); our /dev is bound over it afterwards.
    log "debootstrap (minbase) start"
    debootstrap --variant=minbase --include=systemd-sysv,udev,kmod \
        "$SUITE" "$M" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
      || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
    log "debootstrap done"
  fi

  mount --rbind /dev "$M/dev"
  mount -t proc proc "$M/proc"
  mount -t sysfs sysfs "$M/sys"

  # no daemons started inside the chroot
  printf '#!/bin/sh\nexit 101\n' > "$M/usr/sbin/policy-rc.d"; chmod 755 "$M/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$M/etc/resolv.conf"
  # keep it small: no docs, man pages, locales
  cat > "$M/etc/dpkg/dpkg.cfg.d/01-amdr-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > "$M/etc/apt/apt.conf.d/01-amdr-norecommends"
  # no resume device: initramfs would otherwise look for one (and the host has no swap)
  mkdir -p "$M/etc/initramfs-tools/conf.d"; echo "RESUME=none" > "$M/etc/initramfs-tools/conf.d/resume"

  # --- configuration files, written before the packages so that the
  #     kernel/initramfs/grub hooks see the final fstab
  local URoot USrv USwap UEfi
  URoot=$(blkid -c /dev/null -s UUID -o value "$ROOTP"); USrv=$(blkid -c /dev/null -s UUID -o value "$SRVP")
  USwap=$(blkid -c /dev/null -s UUID -o value "$SWAPP")
  {
    echo "# <file system> <mount point> <type> <options> <dump> <pass>"
    echo "UUID=$URoot /     ext4 errors=remount-ro 0 1"
    if [ "$LAYOUT" = b ]; then
      UEfi=$(blkid -c /dev/null -s UUID -o value "$EFIP")
      echo "UUID=$UEfi /boot/efi vfat umask=0077 0 1"
    fi
    echo "UUID=$USrv /srv  xfs  defaults 0 2"
    echo "UUID=$USwap none swap sw 0 0"
  } > "$M/etc/fstab"
  echo "$HOST" > "$M/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$HOST" > "$M/etc/hosts"

  local grubpkg
  if [ "$LAYOUT" = a ]; then grubpkg=grub-pc; else grubpkg=grub-efi-amd64; fi
  chroot "$M" debconf-set-selections <<'EOF'
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
grub-efi-amd64 grub2/force_efi_extra_removable boolean true
grub-efi-amd64 grub2/update_nvram boolean false
EOF
  # grub defaults: serial console, short timeout
  mkdir -p "$M/etc/default/grub.d"
  cat > "$M/etc/default/grub.d/amdr.cfg" <<'EOF'
GRUB_TIMEOUT=1
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"
GRUB_DISABLE_OS_PROBER=true
EOF

  log "apt-get install start"
  chroot "$M" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 sh -c "
      apt-get update -q &&
      apt-get install -y -q $PKGS $grubpkg" > "$WORK/apt.log" 2>&1 \
    || { tail -40 "$WORK/apt.log" >&2; exit 1; }
  log "apt-get install done"

  # network: static IPv4 on the first NIC (ifupdown)
  cat > "$M/etc/network/interfaces" <<EOF
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug $IFNAME
iface $IFNAME inet static
    address $ADDR
    gateway $GW
EOF
  echo "nameserver 10.0.2.3" > "$M/etc/resolv.conf"

  # marker unit
  install -m 755 "$HERE/files/amdr-boot-marker.sh" "$M/usr/local/sbin/amdr-boot-marker"
  install -m 644 "$HERE/files/amdr-boot-marker.service" "$M/etc/systemd/system/amdr-boot-marker.service"
  chroot "$M" systemctl enable amdr-boot-marker.service >/dev/null 2>&1
  chroot "$M" systemctl set-default multi-user.target >/dev/null 2>&1
  mkdir -p "$M/etc/amdr-drill"
  [ "$POWEROFF" = 1 ] && touch "$M/etc/amdr-drill/poweroff"
  echo "root:$ROOT_PW" | chroot "$M" chpasswd

  log "grub-install start"
  if [ "$LAYOUT" = a ]; then
    chroot "$M" grub-install --target=i386-pc "$LOOP" > "$WORK/grub-install.log" 2>&1 \
      || { cat "$WORK/grub-install.log" >&2; exit 1; }
  else
    # What `grub-install --target=x86_64-efi --removable` would do, without
    # needing the ESP mounted (grub-install insists that --efi-directory is
    # a mounted FAT filesystem): modules into /boot/grub/x86_64-efi, a core
    # image that finds / by UUID, copied to ESP:/EFI/BOOT/BOOTX64.EFI.
    chroot "$M" grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable \
        --no-nvram > "$WORK/grub-install-try.log" 2>&1 \
      && echo "NOTE: plain grub-install worked" >&2 \
      || echo "NOTE: grub-install (ESP unmounted) failed: $(tail -1 "$WORK/grub-install-try.log")" >&2
    export MTOOLS_SKIP_CHECK=1
    mkdir -p "$M/boot/grub/x86_64-efi"
    cp "$M"/usr/lib/grub/x86_64-efi/*.mod "$M"/usr/lib/grub/x86_64-efi/*.lst "$M/boot/grub/x86_64-efi/"
    printf 'search.fs_uuid %s root\nset prefix=($root)/boot/grub\n' "$URoot" > "$WORK/early.cfg"
    cp "$WORK/early.cfg" "$M/tmp/amdr-early.cfg"
    chroot "$M" grub-mkimage -O x86_64-efi -o /tmp/BOOTX64.EFI -c /tmp/amdr-early.cfg \
        -p /boot/grub part_gpt ext2 search_fs_uuid > "$WORK/grub-install.log" 2>&1 \
      || { cat "$WORK/grub-install.log" >&2; exit 1; }
    mmd -i "$EFIP" ::/EFI ::/EFI/BOOT
    mcopy -i "$EFIP" "$M/tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
    rm -f "$M/tmp/BOOTX64.EFI" "$M/tmp/amdr-early.cfg"
    mdir -i "$EFIP" -/ ::/ >&2
  fi
  chroot "$M" update-grub > "$WORK/update-grub.log" 2>&1 || { cat "$WORK/update-grub.log" >&2; exit 1; }
  log "grub done"
  grep -E '^\s*(linux|search)\s' "$M/boot/grub/grub.cfg" | head -2 >&2

  # clean up: apt lists, policy-rc.d; keep the image small and sparse
  rm -f "$M/usr/sbin/policy-rc.d" "$M/etc/dpkg/dpkg.cfg.d/00-amdr-unsafe-io"
  rm -rf "$M/var/lib/apt/lists/"* "$M/var/log/"*.log "$M/var/cache/debconf/"*-old "$M/var/cache/apt/"*.bin
  # what debootstrap unpacked before the dpkg path-excludes existed
  find "$M/usr/share/doc" -type f ! -name copyright -delete
  rm -rf "$M/usr/share/man/"* "$M/usr/share/info/"*
  du -sh --one-file-system "$M" >&2 || true
  df -h "$M" "$M/srv" >&2

  umount "$M/var/cache/apt/archives"
  umount -R "$M/dev"
  umount "$M/sys" "$M/proc"
  fstrim "$M/srv" || true
  umount "$M/srv"
  fstrim "$M" || true
  umount "$M"
  log "unmounted"
}

if [ "${INNER:-0}" = 1 ]; then inner; exit 0; fi

########################################################################
# outer part: image, partitions, loop device, filesystems
########################################################################
[ "$(id -u)" = 0 ] || { echo "must be root" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")" "$DEBS"
WORK=$(mktemp -d /work/proto/tmp.build.XXXXXX)
MNT=$WORK/mnt; mkdir -p "$MNT"
LOOP=
cleanup() {
  local rc=$?
  if [ -n "$LOOP" ]; then
    partx -d "$LOOP" 2>/dev/null || true
    losetup -d "$LOOP" || true
  fi
  if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "build failed; logs in $WORK" >&2; fi
}
trap cleanup EXIT

rm -f "$OUT"
truncate -s "$SIZE" "$OUT"
if [ "$LAYOUT" = a ]; then
  P1='size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name="bios-boot"'
else
  P1='size=100MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"'
fi
sfdisk -q "$OUT" <<EOF
label: gpt
label-id: $(uuid_for disk)
$P1, uuid=$(uuid_for part1)
size=1400MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root", uuid=$(uuid_for part2)
size=320MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="srv", uuid=$(uuid_for part3)
type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap", uuid=$(uuid_for part4)
EOF
LOOP=$(losetup -f --show "$OUT")
partx -a "$LOOP"
log "loop $LOOP: partitions $(cd /sys/class/block && echo ${LOOP#/dev/}p*)"


LOOP=$LOOP MNT=$MNT WORK=$WORK OUTER_T0=$T0 LAYOUT=$LAYOUT HOST=$HOST DEBS=$DEBS BOOTSTRAP=$BOOTSTRAP UUID_SEED=$UUID_SEED \
  unshare --mount --propagation private -- "$0" --layout "$LAYOUT" --out "$OUT" \
    $([ "$POWEROFF" = 1 ] || echo --no-poweroff) --inner

sync
log "done: $OUT apparent=$(du -h --apparent-size "$OUT" | cut -f1) allocated=$(du -h "$OUT" | cut -f1)"
