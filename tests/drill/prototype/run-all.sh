#!/bin/bash
# Build layout a (BIOS) and b (UEFI), boot each on several buses, one qemu
# at a time; timings go to results.txt.
#   run-all.sh [a] [b]        (default: both)
set -uo pipefail
cd "$(dirname "$0")"
LAYOUTS=${*:-a b}
RES=results.txt
echo "# $(date -Is) host load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES"
for L in $LAYOUTS; do
  IMG=out/drill-$L.img
  t0=$(date +%s)
  if ./build.sh --layout "$L" --uuid-seed "drill-$L-v1" --out "$IMG" > "out/build-$L.log" 2>&1; then
    echo "build layout=$L ok seconds=$(( $(date +%s) - t0 )) allocated=$(du -h "$IMG" | cut -f1) apparent=$(du -h --apparent-size "$IMG" | cut -f1)" | tee -a "$RES"
  else
    echo "build layout=$L FAILED (out/build-$L.log)" | tee -a "$RES"; continue
  fi
  if [ "$L" = a ]; then BUSES="virtio ide sata nvme"; UEFI=; else BUSES="virtio sata nvme"; UEFI=--uefi; fi
  for B in $BUSES; do
    r=$(./boot.sh "$IMG" --bus "$B" $UEFI --snapshot --timeout 600 2>"out/boot-$L-$B.log" | grep '^RESULT') \
      || r="RESULT bus=$B FAILED (out/boot-$L-$B.log)"
    echo "layout=$L $r $(grep -a -m1 '^AMDR-BOOT-OK' "out/boot-$L-$B.log" | tr -d '\r')" | tee -a "$RES"
  done
done
