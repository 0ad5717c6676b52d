# Install a drill source system onto blank disks, inside the VM-tier guest
# (tests.vm.guest: a Debian kernel with md, dm and vfat, udev running).
# tests/drill/systems.py prepends `set -- LAYOUT HOST MAC NETWORK` and runs it
# as the guest's command; the tree is /drill/tree.tar.zst (read-only share),
# facts go to /out (read-write share).  The disks are virtio with the serials
# HOST-0, HOST-1.  This file's text is part of the disks' cache key.
set -euo pipefail
L=$1 HOST=$2 MAC=$3 NET=$4
M=/mnt/target
say() { echo "== $* ($(cut -d' ' -f1 /proc/uptime)s)"; }
mark() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> /out/times; }
disk() { readlink -f "/dev/disk/by-id/virtio-$HOST-$1"; }
uuid() { blkid -c /dev/null -s UUID -o value "$1"; }
BIOSBOOT=21686148-6449-6E6F-744E-656564454649
ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
LINUX=0FC63DAF-8483-4772-8E79-3D69D8477DE4
SWAP=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F
LVMPV=E6D6D379-F507-44C2-A23C-238F2A3DF928
RAID=A19D880F-05FC-4D3B-A006-743F0F84911E
: > /out/times
mark start
D0=$(disk 0)
mkdir -p $M

say "partitions and filesystems (layout $L on $D0)"
case $L in
a)
  sfdisk -q "$D0" <<EOT
label: gpt
size=1MiB, type=$BIOSBOOT, name="bios-boot"
size=2200MiB, type=$LINUX, name="root"
size=320MiB, type=$LINUX, name="srv"
type=$SWAP, name="swap"
EOT
  udevadm settle
  ROOTDEV=${D0}2; SWAPDEV=${D0}4
  mkfs.ext4 -q -L root "$ROOTDEV"
  mkfs.xfs -q -f -L srv "${D0}3"
  mkswap -L swap "$SWAPDEV" >/dev/null
  ;;
b)
  sfdisk -q "$D0" <<EOT
label: gpt
size=100MiB, type=$ESP, name="esp"
type=$LVMPV, name="lvm"
EOT
  udevadm settle
  mkfs.vfat -F 32 -n ESP "${D0}1" >/dev/null
  pvcreate -q "${D0}2"
  vgcreate -q vg0 "${D0}2"
  lvcreate -q -y -L 2000M -n root vg0
  lvcreate -q -y -L 256M -n home vg0
  lvcreate -q -y -L 256M -n swap vg0
  udevadm settle
  ROOTDEV=/dev/vg0/root; SWAPDEV=/dev/vg0/swap
  mkfs.ext4 -q -L root "$ROOTDEV"
  mkfs.ext4 -q -L home /dev/vg0/home
  mkswap -L swap "$SWAPDEV" >/dev/null
  ;;
c)
  D1=$(disk 1)
  for d in "$D0" "$D1"; do
    sfdisk -q "$d" <<EOT
label: gpt
size=1MiB, type=$BIOSBOOT, name="bios-boot"
size=2400MiB, type=$RAID, name="root"
type=$RAID, name="swap"
EOT
  done
  udevadm settle
  # --assume-clean: no resync (it would write every block of the second disk:
  # slow under TCG and the images would lose their sparseness)
  mdadm --create /dev/md/root --run --level=1 --raid-devices=2 --metadata=1.2 \
      --assume-clean --homehost="$HOST" --name=root "${D0}2" "${D1}2"
  mdadm --create /dev/md/swap --run --level=1 --raid-devices=2 --metadata=1.2 \
      --assume-clean --homehost="$HOST" --name=swap "${D0}3" "${D1}3"
  udevadm settle
  ROOTDEV=/dev/md/root; SWAPDEV=/dev/md/swap
  mkfs.ext4 -q -L root "$ROOTDEV"
  mkswap -L swap "$SWAPDEV" >/dev/null
  ;;
esac
udevadm settle
mark filesystems

say "unpack the tree"
mount "$ROOTDEV" $M
zstd -dc /drill/tree.tar.zst | tar --numeric-owner --xattrs --xattrs-include='*' -xpf - -C $M
case $L in
a) mount "${D0}3" $M/srv ;;
b) mkdir -p $M/boot/efi $M/home; mount "${D0}1" $M/boot/efi; mount /dev/vg0/home $M/home ;;
esac
mark unpacked

say "configuration"
{
  echo "# <file system> <mount point> <type> <options> <dump> <pass>"
  echo "UUID=$(uuid "$ROOTDEV") / ext4 errors=remount-ro 0 1"
  case $L in
  a) echo "UUID=$(uuid "${D0}3") /srv xfs defaults 0 2" ;;
  b) echo "UUID=$(uuid "${D0}1") /boot/efi vfat umask=0077 0 1"
     echo "UUID=$(uuid /dev/vg0/home) /home ext4 defaults 0 2" ;;
  esac
  echo "UUID=$(uuid "$SWAPDEV") none swap sw 0 0"
} > $M/etc/fstab
echo "$HOST" > $M/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$HOST" \
  > $M/etc/hosts
if [ "$NET" = networkd ]; then
  printf 'auto lo\niface lo inet loopback\n' > $M/etc/network/interfaces
  mkdir -p $M/etc/systemd/network
  cat > $M/etc/systemd/network/10-drill.network <<EOT
[Match]
MACAddress=$MAC

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
EOT
  ln -sf /lib/systemd/system/systemd-networkd.service \
    $M/etc/systemd/system/multi-user.target.wants/systemd-networkd.service
else
  cat > $M/etc/network/interfaces <<EOT
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug ens3
iface ens3 inet static
    address 10.0.2.15/24
    gateway 10.0.2.2
EOT
fi

say "chroot: mdadm.conf, grub"
mount --rbind /dev $M/dev
mount -t proc proc $M/proc
if [ -d /sys/firmware/efi ] && ! mountpoint -q /sys/firmware/efi/efivars; then
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars
fi
mount --rbind /sys $M/sys
mount --bind /run $M/run
printf '#!/bin/sh\nexit 101\n' > $M/usr/sbin/policy-rc.d; chmod 755 $M/usr/sbin/policy-rc.d
ch() { chroot $M env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
case $L in
a)
  echo "grub-pc grub-pc/install_devices multiselect /dev/disk/by-id/virtio-$HOST-0" | ch debconf-set-selections
  echo "grub-pc grub-pc/install_devices_empty boolean false" | ch debconf-set-selections
  ch grub-install --target=i386-pc "$D0"
  ;;
b)
  ch debconf-set-selections <<EOT
grub-efi-amd64 grub2/force_efi_extra_removable boolean true
grub-efi-amd64 grub2/update_nvram boolean true
EOT
  # the NVRAM entry `debian` (efibootmgr, into the OVMF vars file) and the
  # removable path EFI/BOOT/BOOTX64.EFI
  ch grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=debian \
      --force-extra-removable
  ch efibootmgr -v | tee /out/efibootmgr.txt
  find $M/boot/efi -type f | sed "s|^$M||" | tee /out/esp-files.txt
  ;;
c)
  ch /usr/share/mdadm/mkconf > /tmp/mdadm.conf
  cp /tmp/mdadm.conf $M/etc/mdadm/mdadm.conf
  echo "grub-pc grub-pc/install_devices multiselect /dev/disk/by-id/virtio-$HOST-0, /dev/disk/by-id/virtio-$HOST-1" | ch debconf-set-selections
  echo "grub-pc grub-pc/install_devices_empty boolean false" | ch debconf-set-selections
  ch grub-install --target=i386-pc "$D0"
  ch grub-install --target=i386-pc "$D1"
  ;;
esac
mark grub_install
# The installed system makes its initrd with MODULES=dep: only the drivers of
# the hardware it runs on (virtio here), as a small site would.  So on SATA or
# NVMe the restored initrd cannot find root: finalize must make a new one on
# the new hardware, and the drill proves it did.  (MODULES=most, the tree's
# native initrd, took over 6 minutes to make under TCG: thousands of forks.)
sed -i 's/^MODULES=.*/MODULES=dep/' $M/etc/initramfs-tools/conf.d/amdr-drill
ch update-initramfs -u -k all
mark initramfs_dep
ch update-grub
mark update_grub
rm -f $M/usr/sbin/policy-rc.d

say "facts"
grep -E '^\s*(linux|search)\s' $M/boot/grub/grub.cfg | head -3 | tee /out/grub-linux.txt
{
  echo "kernel=$(ls $M/boot | sed -n 's/^vmlinuz-//p')"
  echo "initrd_bytes=$(stat -c %s $M/boot/initrd.img-*)"
  echo "root_uuid=$(uuid "$ROOTDEV")"
  echo "swap_uuid=$(uuid "$SWAPDEV")"
  lsblk -rno NAME,TYPE,FSTYPE,UUID,SIZE,MOUNTPOINT
} > /out/facts.txt
cp $M/etc/fstab /out/fstab
df -m $M $M/* 2>/dev/null | sort -u > /out/df.txt || true
ch dpkg-query -W -f '${Package}\t${Version}\n' > /out/installed.txt

say "unmount"
umount -R $M/dev $M/sys $M/run $M/proc 2>/dev/null || umount -lR $M/dev $M/sys $M/run $M/proc
case $L in
a) umount $M/srv ;;
b) umount $M/boot/efi $M/home ;;
esac
umount $M
case $L in
b) vgchange -q -an vg0 ;;
c) mdadm --stop /dev/md/root /dev/md/swap ;;
esac
sync
mark done
say "done"
