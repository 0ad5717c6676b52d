# The drill source system's one job on its first boot (run by amdr-drill-job
# from the `drilljob` 9p share, as root, on the booted system itself):
#   1. a real Amanda backup of its own filesystems: server and client on this
#      host (auth "local"), chg-disk vtapes on the share, a DLE per mountpoint
#   2. amdr-essentials run (the project read-only on the `drillproject` share),
#      delivering the sealed bundle to the share
# Output: log + exit_code (written by the runner), times, amadmin-find.txt,
# amdump.txt, essentials.txt, bundle/, vtapes/.  Part of the backup's cache key.
set -euo pipefail
J=/run/amdr-drill/job
P=/run/amdr-drill/project
. $J/env   # CONFIG HOST DLES HOST_FPR SITE_FPR
say() { echo "== $* ($(cut -d' ' -f1 /proc/uptime)s)"; }
mark() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> $J/times; }
: > $J/times
mark start
say "the system as booted"
findmnt -rn -o TARGET,SOURCE,FSTYPE | grep -Ev ' (proc|sysfs|cgroup2?|tmpfs|devtmpfs|devpts|mqueue|debugfs|tracefs|9p|securityfs|pstore|bpf|hugetlbfs|configfs|fusectl|efivarfs|autofs|binfmt_misc|ramfs)$' || true
swapon --show || true
ip -br addr || true
systemctl --failed --no-legend || true

say "Amanda: config $CONFIG, DLEs $DLES"
C=/etc/amanda/$CONFIG
S=/var/lib/amanda/$CONFIG
mkdir -p $C $S/log $S/index $S/curinfo $J/holding $J/amanda-out
for i in 1 2 3 4; do mkdir -p $J/vtapes/slot$i; done
cat > $C/amanda.conf <<EOT
org "$CONFIG"
mailto ""
dumpuser "backup"
dumpcycle 7 days
runspercycle 7
tapecycle 4 tapes
runtapes 1
tpchanger "chg-disk:$J/vtapes"
autolabel "DRILL-%%" empty
labelstr "^DRILL-[0-9][0-9]*\$"
tapelist "$C/tapelist"
infofile "$S/curinfo"
logdir "$S/log"
indexdir "$S/index"
etimeout 900
dtimeout 3600

define tapetype DRILL-VTAPE {
  length 16000 mbytes
}
tapetype "DRILL-VTAPE"

# the holding disk is on the share, not on a filesystem being dumped
holdingdisk drill-hold {
  directory "$J/holding"
  use 4000 mbytes
  chunksize 0
}

# amgtar, not the old-style program "GNUTAR": GNU tar's note about each nested
# mountpoint (/proc, /dev, /srv ...: "directory is on a different filesystem;
# not dumped") reaches sendbackup as a "strange" message and Amanda 3.5.1 then
# hangs for good (seen here: the / dump never started to write).  amgtar lets
# those notes be ignored; the dump is GNU tar all the same.
define application-tool drill-amgtar {
  plugin "amgtar"
  property "ONE-FILE-SYSTEM" "yes"
  property "IGNORE" ": directory is on a different filesystem; not dumped\$"
  property append "IGNORE" ": file changed as we read it\$"
  property append "IGNORE" ": socket ignored\$"
  property "EXIT-HANDLING" "1=GOOD 2=BAD"
}

define dumptype drill-gnutar {
  auth "local"
  program "APPLICATION"
  application "drill-amgtar"
  compress none
  index yes
  record yes
  estimate client
  maxpromoteday 0
}
EOT
cat > $C/amanda-client.conf <<EOT
conf "$CONFIG"
index_server "localhost"
tape_server "localhost"
auth "local"
EOT
: > $C/tapelist
: > $C/disklist
for d in $DLES; do
  echo "localhost $d drill-gnutar" >> $C/disklist
done
cat $C/disklist
chown -R backup:backup $C $S $J/vtapes $J/holding $J/amanda-out
as_backup() { runuser -u backup -- "$@"; }
as_backup amcheck -s $CONFIG || true
mark amanda_config
say "amdump $CONFIG"
set +e
timeout 1500 runuser -u backup -- amdump $CONFIG
dump_rc=$?
set -e
mark amdump
echo "amdump exit $dump_rc"
as_backup amreport $CONFIG -f $J/amanda-out/amreport.txt || true
as_backup amadmin $CONFIG find > $J/amadmin-find.txt
cp $J/amanda-out/amreport.txt $J/amreport.txt 2>/dev/null || true
cat $J/amadmin-find.txt
ls -l $J/vtapes/slot*/ || true

say "amdr-essentials run"
mkdir -p /etc/amanda-dr
rm -rf /etc/amanda-dr/gnupg
cp -a $J/gnupg-host /etc/amanda-dr/gnupg
chown -R root:root /etc/amanda-dr/gnupg
chmod 700 /etc/amanda-dr /etc/amanda-dr/gnupg
cat > /etc/amanda-dr/essentials.yaml <<EOT
host: $HOST
gpg:
  home: /etc/amanda-dr/gnupg
  recipients: [$SITE_FPR]
  signer: $HOST_FPR
collect:
  amanda:
    configs: [$CONFIG]
deliveries:
  - type: local
    name: drill
    dir: $J/bundle
    create: true
EOT
chmod 600 /etc/amanda-dr/essentials.yaml
set +e
( cd / && PYTHONPATH=$P PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c \
    'import sys; from essentials.cli import main; sys.exit(main())' \
    run -c /etc/amanda-dr/essentials.yaml ) > $J/essentials.txt 2>&1
ess_rc=$?
set -e
mark essentials
cat $J/essentials.txt
cp /var/log/amanda-dr/essentials.log $J/essentials.log 2>/dev/null || true
echo "essentials exit $ess_rc"
ls -l $J/bundle || true
sync
# 2 = a "strange" dump (tar's warnings about files changing under it): the
# dump is on tape all the same; anything else fails the job
if [ "$dump_rc" -ne 0 ] && [ "$dump_rc" -ne 2 ]; then echo "amdump failed ($dump_rc)"; exit 1; fi
if [ "$ess_rc" -ne 0 ]; then echo "amdr-essentials run failed ($ess_rc)"; exit 1; fi
say "job done"
