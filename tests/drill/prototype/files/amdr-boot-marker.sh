#!/bin/sh
# Prints the boot-drill marker to the serial console once multi-user.target
# is reached, then (if /etc/amdr-drill/poweroff exists) powers the machine off.
out=/dev/ttyS0
[ -w "$out" ] || out=/dev/console
{
  echo "AMDR-BOOT-OK host=$(hostname) root=$(findmnt -no SOURCE /)"
  # swap state: one line per active swap area (device, size, uuid)
  if [ "$(swapon --noheadings --show=NAME | wc -l)" -gt 0 ]; then
    swapon --noheadings --raw --show=NAME,SIZE | while read -r n s; do
      echo "AMDR-SWAP dev=$n size=$s uuid=$(blkid -s UUID -o value "$n" 2>/dev/null)"
    done
  else
    echo "AMDR-SWAP none"
  fi
  # mount state of the local block-device filesystems
  findmnt -rn -t ext4,xfs,vfat,btrfs -o TARGET,SOURCE,FSTYPE,UUID | while read -r t s f u; do
    echo "AMDR-MOUNT target=$t source=$s fstype=$f uuid=$u"
  done
  ip -4 -o addr show scope global 2>/dev/null | awk '{print "AMDR-NET dev=" $2 " addr=" $4}'
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
