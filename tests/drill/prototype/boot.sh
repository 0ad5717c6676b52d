#!/bin/bash
# Boot a drill image under qemu TCG and wait for the AMDR-BOOT-OK marker on
# the serial console.
#   boot.sh IMAGE [--bus virtio|ide|sata|nvme|scsi] [--uefi] [--snapshot] [--timeout S] [--grace S] [--log FILE]
# Exit 0 when the marker (AMDR-BOOT-OK) was seen (and the guest powered itself off or was
# killed after --grace seconds), 1 on timeout.
set -euo pipefail
IMG=$1; shift
BUS=virtio; UEFI=0; SNAP=(); TIMEOUT=900; GRACE=60; LOG=
while [ $# -gt 0 ]; do
  case "$1" in
    --bus) BUS=$2; shift 2;;
    --uefi) UEFI=1; shift;;
    --timeout) TIMEOUT=$2; shift 2;;
    --grace) GRACE=$2; shift 2;;
    --log) LOG=$2; shift 2;;
    --snapshot) SNAP=(-snapshot); shift;;   # leave the image untouched
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
LOG=${LOG:-${IMG%.img}.$BUS.console.log}
: > "$LOG"

case "$BUS" in
  virtio) DISK=(-drive "file=$IMG,format=raw,if=virtio");;
  ide)    DISK=(-drive "file=$IMG,format=raw,if=ide");;
  sata)   DISK=(-device ahci,id=ahci0 -drive "file=$IMG,format=raw,if=none,id=d0"
                -device ide-hd,drive=d0,bus=ahci0.0);;
  nvme)   DISK=(-drive "file=$IMG,format=raw,if=none,id=d0" -device nvme,drive=d0,serial=amdr0);;
  scsi)   DISK=(-device virtio-scsi-pci,id=scsi0 -drive "file=$IMG,format=raw,if=none,id=d0"
                -device scsi-hd,drive=d0,bus=scsi0.0);;
  *) echo "bus?" >&2; exit 2;;
esac
FW=()
if [ "$UEFI" = 1 ]; then
  VARS=${IMG%.img}.OVMF_VARS.fd
  cp /usr/share/OVMF/OVMF_VARS.fd "$VARS"     # fresh NVRAM each boot: exercises the removable path
  FW=(-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd
      -drive "if=pflash,format=raw,unit=1,file=$VARS")
fi

T0=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -m 1024 -smp 2 "${SNAP[@]}" "${FW[@]}" \
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0,addr=0x3 "${DISK[@]}" \
  -display none -monitor none -serial "file:$LOG" -no-reboot &
QPID=$!
el() { awk -v t0="$T0" -v now="$(date +%s.%N)" 'BEGIN{printf "%.1f", now-t0}'; }
seen=
while kill -0 $QPID 2>/dev/null; do
  if [ -z "$seen" ] && grep -aq 'AMDR-BOOT-OK' "$LOG"; then
    seen=$(el); echo "marker after ${seen}s" >&2
    DEADLINE=$(( $(date +%s) + GRACE ))
  fi
  if [ -n "$seen" ] && [ "$(date +%s)" -ge "$DEADLINE" ]; then
    echo "guest did not power off within ${GRACE}s; killing qemu" >&2; kill $QPID; break
  fi
  if [ -z "$seen" ] && [ "$(el | cut -d. -f1)" -ge "$TIMEOUT" ]; then
    echo "TIMEOUT after ${TIMEOUT}s; killing qemu" >&2; kill $QPID; break
  fi
  sleep 0.5
done
wait $QPID 2>/dev/null || true
echo "qemu exited after $(el)s" >&2
tr -d '\r' < "$LOG" | grep -ao 'AMDR-.*' >&2 || true
grep -aq 'AMDR-BOOT-END' "$LOG" || echo "WARNING: marker block incomplete (no AMDR-BOOT-END)" >&2
[ -n "$seen" ] && echo "RESULT bus=$BUS uefi=$UEFI marker_s=$seen total_s=$(el) complete=$(grep -aq AMDR-BOOT-END "$LOG" && echo yes || echo no)"
[ -n "$seen" ]
