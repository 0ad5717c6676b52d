#!/bin/bash
# The root tree (build-root.sh) as one hybrid ISO: El Torito for BIOS and
# UEFI on a CD, an MBR and a GPT with an EFI system partition on a USB stick
# it was dd-ed onto.  GRUB boots both firmwares from one menu that shows on
# the screen and the first serial line (one loader, one menu, serial on both:
# isolinux would need a second menu for BIOS).  The layout is grub-mkrescue's
# (--grub2-mbr, the EFI image appended as partition 2), assembled here so
# every byte is fixed by SOURCE_DATE_EPOCH: mkfs.fat --invariant with a fixed
# serial, mksquashfs's times, xorriso's dates and UUID.
#
# usage: make-iso.sh ROOT WORK OUT.iso VERSION
# This file's text is part of the image's cache key.
set -euo pipefail

root=$1 work=$2 out=$3 version=$4
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
export SOURCE_DATE_EPOCH LC_ALL=C
iso=$work/iso
rm -rf "$iso" && mkdir -p "$iso/live" "$iso/boot/grub" "$work/efi"

kver=$(basename "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)" | sed 's/^vmlinuz-//')
cp "$root/boot/vmlinuz-$kver" "$iso/live/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$iso/live/initrd.img"
# a file only this image has: GRUB finds the ISO's filesystem by it on any firmware
id="amdr-live-$version"
echo "amanda-dr live $version" > "$iso/live/$id"

echo "== squashfs"
# SOURCE_DATE_EPOCH (exported) sets the filesystem time and every file's time
mksquashfs "$root" "$iso/live/filesystem.squashfs" -noappend -comp xz -b 1M \
    -no-progress \
    -wildcards -e 'boot/*' 'proc/*' 'sys/*' 'dev/*' 'run/*' 'tmp/*' >/dev/null
du -m "$iso/live/filesystem.squashfs" | cut -f1 | sed 's/$/ MB squashfs/'

echo "== GRUB for BIOS and UEFI"
params="boot=live quiet console=tty0 console=ttyS0,115200n8"
cat > "$iso/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input console serial
terminal_output console serial
set timeout=5
set default=0
menuentry "amanda-dr live $version" {
    linux /live/vmlinuz $params
    initrd /live/initrd.img
}
menuentry "amanda-dr live $version, copied to memory (the medium can be removed)" {
    linux /live/vmlinuz $params toram
    initrd /live/initrd.img
}
menuentry "amanda-dr live $version, every kernel message" {
    linux /live/vmlinuz boot=live console=tty0 console=ttyS0,115200n8
    initrd /live/initrd.img
}
EOF
cat > "$work/early.cfg" <<EOF
search --no-floppy --set=root --file /live/$id
set prefix=(\$root)/boot/grub
configfile \$prefix/grub.cfg
EOF
mods="normal configfile linux search search_fs_file iso9660 part_msdos part_gpt fat
      serial terminal echo test all_video gzio"
# shellcheck disable=SC2086
grub-mkimage -O i386-pc-eltorito -o "$iso/boot/grub/bios.img" -c "$work/early.cfg" \
    -p /boot/grub biosdisk $mods
# shellcheck disable=SC2086
grub-mkimage -O x86_64-efi -o "$work/efi/BOOTX64.EFI" -c "$work/early.cfg" \
    -p /boot/grub $mods efi_gop
rm -f "$work/efi.img"
mkfs.vfat -C --invariant -i 414d4452 -n AMDR-EFI "$work/efi.img" 4096 >/dev/null
mmd -i "$work/efi.img" ::/EFI ::/EFI/BOOT
touch -d "@$SOURCE_DATE_EPOCH" "$work/efi/BOOTX64.EFI"
mcopy -m -i "$work/efi.img" "$work/efi/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

echo "== ISO"
rm -f "$out"
# the ISO's directory records carry each file's mtime (xorriso sets atime and
# ctime from it under SOURCE_DATE_EPOCH): the copies made above get the epoch
find "$iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
xorriso -as mkisofs -quiet -iso-level 3 -full-iso9660-filenames -rational-rock -joliet \
    -volid AMDR_LIVE -appid "amanda-dr live $version" -publisher amanda-dr \
    -output "$out" \
    --grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img -partition_offset 16 \
    --mbr-force-bootable \
    -append_partition 2 0xef "$work/efi.img" -appended_part_as_gpt \
    -c boot/boot.cat \
    -b boot/grub/bios.img -no-emul-boot -boot-load-size 4 -boot-info-table \
    --grub2-boot-info \
    -eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot \
    "$iso"
du -m "$out" | cut -f1 | sed 's/$/ MB ISO/'
