#!/bin/sh
# Runs the job on the `drilljob` 9p share (job.sh), when that share exists:
# its output and exit status go back to the share (log, exit_code).
# The project comes read-only on the `drillproject` share when given.
tag_present() {
  for f in /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag; do
    [ -r "$f" ] && [ "$(tr -d '\0' < "$f")" = "$1" ] && return 0
  done
  return 1
}
tag_present drilljob || { echo "amdr-drill-job: no drilljob share, nothing to do"; exit 0; }
job=/run/amdr-drill/job
mkdir -p "$job"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none drilljob "$job" || exit 1
if tag_present drillproject; then
  mkdir -p /run/amdr-drill/project
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro drillproject \
    /run/amdr-drill/project
fi
echo "amdr-drill-job: started $(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
bash "$job/job.sh" > "$job/log" 2>&1
rc=$?
echo "$rc" > "$job/exit_code"
sync
echo "AMDR-JOB exit=$rc" > /dev/ttyS0
exit 0
