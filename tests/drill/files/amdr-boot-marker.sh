#!/bin/sh
# Prints the boot-drill marker to the serial console once multi-user.target
# is reached, then (if /etc/amdr-drill/poweroff exists) powers the machine off.
# tests/drill/boot.py parses these lines (parse_markers).
out=/dev/ttyS0
[ -w "$out" ] || out=/dev/console
{
  echo "AMDR-BOOT-OK host=$(hostname) root=$(findmnt -no SOURCE /)"
  if [ "$(swapon --noheadings --show=NAME | wc -l)" -gt 0 ]; then
    swapon --noheadings --raw --show=NAME,SIZE | while read -r n s; do
      echo "AMDR-SWAP dev=$n size=$s uuid=$(blkid -s UUID -o value "$n" 2>/dev/null)"
    done
  else
    echo "AMDR-SWAP none"
  fi
  findmnt -rn -t ext4,ext3,ext2,xfs,vfat,btrfs -o TARGET,SOURCE,FSTYPE,UUID | while read -r t s f u; do
    echo "AMDR-MOUNT target=$t source=$s fstype=$f uuid=$u"
  done
  ip -4 -o addr show scope global 2>/dev/null | while read -r _ dev _ addr _; do
    echo "AMDR-NET dev=$dev addr=$addr mac=$(cat /sys/class/net/$dev/address 2>/dev/null)"
  done
  for d in /sys/class/net/*; do
    n=${d##*/}
    [ "$n" = lo ] && continue
    echo "AMDR-LINK dev=$n mac=$(cat "$d/address") state=$(cat "$d/operstate")"
  done
  echo "AMDR-STATE system=$(systemctl is-system-running 2>/dev/null) failed=$(systemctl --failed --no-legend --plain 2>/dev/null | awk '{printf "%s,", $1}')"
  echo "AMDR-UPTIME $(cut -d' ' -f1 /proc/uptime)"
  echo "AMDR-KERNEL $(uname -r) cmdline=$(cat /proc/cmdline)"
  echo "AMDR-BOOT-END"
} > "$out" 2>&1
# Wait until the UART has sent it all: stty sets the (same) modes with
# tcsetattr(TCSADRAIN). Without this, powering off right away lost the last
# lines (the serial getty's hangup at shutdown flushes unsent output).
stty -F "$out" "$(stty -F "$out" -g)" 2>/dev/null || true
sleep 1
if [ -e /etc/amdr-drill/poweroff ]; then
  systemctl --no-block poweroff
fi
exit 0
