"""The diskinit round trip for the stacks this host's kernel cannot build.

What tests/integration/test_diskinit_roundtrip.py does with loop disks, done
in the qemu guest for LVM (two PVs, ext4 and xfs LVs, a thin pool), MD RAID1
(metadata 1.0 and 1.2, named arrays), LUKS2 with LVM inside, and btrfs with
subvolumes and a default subvolume that is not the top.  One boot per stack,
the whole round trip in one script (the boot is most of a run's time):

 1. the source is built with the real tools on vda (and vdb), a few files put in;
 2. it is collected while mounted (`amdr-essentials collect --disk ... --root`);
 3. it is torn down (umount, vgchange -an, cryptsetup close, mdadm --stop);
 4. `amdr-recover diskinit --map /dev/vda=/dev/vdc ...` recreates it on new
    blank disks of the same size and mounts it under /mnt/t;
 5. that is collected again; both bundles come back through a 9p share;
 6. (LVM, MD, LUKS+LVM) `amdr-recover umount` and `mount` applied for real: a
    marker file is written in each filesystem under /mnt/t, umount takes it
    all down (nothing mounted, no /dev/mapper entry of the VG or LUKS mapping,
    no array in /proc/mdstat), mount brings it back from the source bundle
    (the markers, UUIDs and ext4 creation times unchanged: nothing formatted),
    a second mount changes nothing, and umount twice (the second only says
    there is nothing to do).  Results come back as "== ..." sections on stdout
    and the commands' outputs in the share (umount1.out, mount1.out, ...).

On the host the two layouts must agree on everything (every UUID, name,
label, piece of tuning, partition, extent, subvolume and mountpoint) but
device names, disk serials and bytes in use.

The original disks stay attached where the tools allow it, and their write
counters (/sys/block/DEV/stat) must not move: MD and LUKS recreate beside
them.  An LVM PV UUID or a btrfs UUID that stays on another disk makes
pvcreate and mkfs.btrfs refuse it, so there the originals are detached
(their virtio device unbound) before diskinit, as the preflight's refusal
says to; for LVM the refusal itself, with nothing written, is checked
first.  A disk that is in no mapping (the bystander of the one-disk stacks)
must not be written either.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .guest import DiskSpec, Guest, Result

pytestmark = pytest.mark.vm

PROJECT = Path(__file__).resolve().parent.parent.parent
TIMEOUT = 360  # seconds per guest command; a round trip takes 40-120 here

# Helpers every stack's script starts with.  "== NAME ..." lines are what the
# host reads back; `set -e` stops at the first failure (but diskinit's status
# is caught and printed, its output kept in /out/NAME.out).
PRELUDE = r"""
set -euo pipefail
udevadm settle
T0=$(date +%s%N)
phase() { echo "== time $1 $(( ($(date +%s%N) - T0) / 1000000 ))"; }
# write requests and sectors written since boot, from the kernel's counters
writes() { echo "== writes $1"; shift; for d; do
    read -r _ _ _ _ wio _ wsec _ < "/sys/block/$d/stat"; echo "$d $wio $wsec"; done; }
collect() {  # collect NAME ROOT DISK...: a plain bundle in /tmp/NAME, copied to /out/NAME
    local name=$1 root=$2; shift 2
    local args=(); for d; do args+=(--disk "/dev/$d"); done
    python3 -m essentials.cli collect --out "/tmp/$name" --only layout --root "$root" \
        "${args[@]}" > /dev/null
    cp -r "/tmp/$name" "/out/$name"
}
detach() {  # the original disks are gone: their virtio devices unbound
    for d; do
        v=$(basename "$(readlink -f "/sys/block/$d/device")")
        echo "$v" > /sys/bus/virtio/drivers/virtio_blk/unbind
    done
    udevadm settle
}
diskinit() {  # diskinit NAME ARGS...: amdr-recover diskinit from /tmp/src onto /mnt/t
    local name=$1; shift
    local rc=0
    python3 -m recovery.cli -v diskinit --bundle /tmp/src --target /mnt/t --yes "$@" \
        > "/out/$name.out" 2>&1 || rc=$?
    echo "== rc $name $rc"
}
under_t() { awk '$2 == "/mnt/t" || index($2, "/mnt/t/") == 1 {print $2, $1}' /proc/self/mounts \
    | sort; }
fsstate() {  # fsstate WHEN: per mountpoint under /mnt/t: UUID, ext4 creation time, device
    echo "== fs $1"
    under_t | while read -r mp src; do
        created=$(dumpe2fs -h "$src" 2> /dev/null | sed -n 's/^Filesystem created: *//p' \
            | tr ' ' _) || true  # none for xfs
        echo "$mp $(blkid -p -o value -s UUID "$src") ${created:--} $src"
    done
}
active() {  # what is left: mounts under /mnt/t, device-mapper devices, MD arrays
    echo "== mounts $1"; under_t
    echo "== mapper $1"; ls /dev/mapper
    echo "== mdstat $1"; cat /proc/mdstat 2> /dev/null || true  # no md module: none
}
recover() {  # recover STEP ARGS...: amdr-recover ARGS, output in /out/STEP.out
    local step=$1; shift
    local rc=0
    python3 -m recovery.cli "$@" > "/out/$step.out" 2>&1 || rc=$?
    echo "== rc $step $rc"
}
remount() {  # remount MOUNT-ARGS...: what diskinit mounted, taken down and brought up again
    under_t | while read -r mp _; do echo "$mp" > "$mp/amdr-marker"; done
    fsstate before
    recover umount1 umount --target /mnt/t
    active "after umount"
    recover mount1 mount --bundle /tmp/src --target /mnt/t "$@"
    fsstate mounted
    echo "== markers"
    under_t | while read -r mp _; do echo "$mp $(cat "$mp/amdr-marker" || echo missing)"; done
    recover mount2 mount --bundle /tmp/src --target /mnt/t "$@"
    fsstate "mounted again"
    recover umount2 umount --target /mnt/t
    active "after umount twice"
    recover umount3 umount --target /mnt/t
    active "after umount thrice"
    phase remounted
}
"""

LVM_SCRIPT = r"""
printf 'label: gpt\nsize=32MiB, name=boot\ntype=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=pv\n' \
    | sfdisk -q /dev/vda
udevadm settle
mkfs.ext4 -q -L boot /dev/vda1
pvcreate -q /dev/vda2 /dev/vdb
vgcreate -q -s 4M vgdata /dev/vda2 /dev/vdb
lvcreate -q -y -n root -L 100M vgdata
lvcreate -q -y -n srv -l 50 vgdata /dev/vda2             # 320 MiB across both PVs
lvextend -q -l 80 vgdata/srv /dev/vdb
lvcreate -q -y --type thin-pool -L 40M -n pool vgdata
lvcreate -q -y -V 200M -T vgdata/pool -n thin
mkfs.ext4 -q -L root -m 2 -I 512 -O ^metadata_csum /dev/vgdata/root
tune2fs -c 30 /dev/vgdata/root > /dev/null
mkfs.xfs -q -L srv -i size=1024 /dev/vgdata/srv           # xfs: 300 MiB at least
mkfs.ext4 -q -L thin /dev/vgdata/thin
mkdir -p /mnt/src
mount /dev/vgdata/root /mnt/src
mkdir /mnt/src/boot /mnt/src/srv /mnt/src/data
mount /dev/vda1 /mnt/src/boot
mount /dev/vgdata/srv /mnt/src/srv
mount /dev/vgdata/thin /mnt/src/data
echo kept > /mnt/src/srv/file; echo thin > /mnt/src/data/file
phase built
collect src /mnt/src vda vdb
phase collected
umount -R /mnt/src
vgchange -q -an vgdata
sync
writes before vda vdb
diskinit attached --map /dev/vda=/dev/vdc --map /dev/vdb=/dev/vdd
writes refused vda vdb
phase refused
detach vda vdb
diskinit detached --map /dev/vda=/dev/vdc --map /dev/vdb=/dev/vdd
phase diskinit
collect after /mnt/t vdc vdd
phase recollected
remount --map /dev/vda=/dev/vdc --map /dev/vdb=/dev/vdd
"""

MD_RAID = "A19D880F-05FC-4D3B-A006-743F0F84911E"
MD_SCRIPT = rf"""
for d in vda vdb; do
    printf 'label: gpt\nsize=40MiB, type={MD_RAID}, name=boot\ntype={MD_RAID}, name=data\n' \
        | sfdisk -q /dev/$d
done
udevadm settle
mdadm --create /dev/md/boot --run --level=1 --raid-devices=2 --metadata=1.0 --name=boot \
    --bitmap=none /dev/vda1 /dev/vdb1
mdadm --create /dev/md/data --run --level=1 --raid-devices=2 --metadata=1.2 --name=data \
    --bitmap=internal /dev/vda2 /dev/vdb2
udevadm settle
mkfs.ext4 -q -L mdroot -E stride=4 /dev/md/data
mkfs.ext4 -q -L mdboot /dev/md/boot
mkdir -p /mnt/src
mount /dev/md/data /mnt/src
mkdir /mnt/src/boot
mount /dev/md/boot /mnt/src/boot
echo kept > /mnt/src/file
phase built
collect src /mnt/src vda vdb
phase collected
umount -R /mnt/src
mdadm --stop /dev/md/data /dev/md/boot
sync
writes before vda vdb
diskinit md --map /dev/vda=/dev/vdc --map /dev/vdb=/dev/vdd
writes diskinit vda vdb
phase diskinit
collect after /mnt/t vdc vdd
writes end vda vdb
phase recollected
remount --map /dev/vda=/dev/vdc --map /dev/vdb=/dev/vdd
writes final vda vdb
"""

# the source's key slot is cheap to open (pbkdf2, 1000 iterations); the new
# one cryptsetup benchmarks itself (a few seconds under TCG)
LUKS_SCRIPT = r"""
printf 'label: gpt\nsize=32MiB, name=boot\nname=crypt\n' | sfdisk -q /dev/vda
udevadm settle
mkfs.ext4 -q -L boot /dev/vda1
mkfs.ext4 -q -L bystander /dev/vdb
head -c 64 /dev/urandom > /tmp/key; chmod 600 /tmp/key
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --cipher aes-xts-plain64 --key-size 256 --sector-size 4096 --label cryptlabel \
    --subsystem amdr --key-file /tmp/key /dev/vda2
cryptsetup open --key-file /tmp/key /dev/vda2 cryptdata
pvcreate -q /dev/mapper/cryptdata
vgcreate -q vgcrypt /dev/mapper/cryptdata
lvcreate -q -y -n root -L 64M vgcrypt
lvcreate -q -y -n home -L 32M vgcrypt
mkfs.ext4 -q -L croot /dev/vgcrypt/root
mkfs.ext4 -q -L chome -b 4096 /dev/vgcrypt/home
mkdir -p /mnt/src
mount /dev/vgcrypt/root /mnt/src
mkdir /mnt/src/boot /mnt/src/home
mount /dev/vda1 /mnt/src/boot
mount /dev/vgcrypt/home /mnt/src/home
echo secret > /mnt/src/home/file
phase built
collect src /mnt/src vda
phase collected
umount -R /mnt/src
vgchange -q -an vgcrypt
cryptsetup close cryptdata
sync
writes before vda vdb
LUKS_DISKINIT
writes diskinit vda vdb
phase diskinit
cryptsetup open --test-passphrase --key-file /tmp/key /dev/vdc2 && echo "== key opens it"
collect after /mnt/t vdc
writes end vda vdb
phase recollected
remount --map /dev/vda=/dev/vdc --luks-key-file /tmp/key
writes final vda vdb
"""
# until amdr-recover diskinit takes --luks-key-file: what it will do, through
# the session (Session.load already takes the key file)
LUKS_BY_SESSION = r"""rc=0
python3 - > /out/luks.out 2>&1 <<'EOF' || rc=$?
import logging
from essentials.runner import Runner
from recovery.cli import do_diskinit
from recovery.session import Session
logging.basicConfig(level=logging.INFO)
s = Session.load("/tmp/src", "/mnt/t", {"/dev/vda": "/dev/vdc"}, luks_key_file="/tmp/key")
do_diskinit(s, Runner(), True)
EOF
echo "== rc luks $rc"
"""
LUKS_BY_CLI = "diskinit luks --map /dev/vda=/dev/vdc --luks-key-file /tmp/key\n"

BTRFS_SCRIPT = r"""
printf 'label: gpt\nname=pool\n' | sfdisk -q /dev/vda
udevadm settle
mkfs.ext4 -q -L bystander /dev/vdb
mkfs.btrfs -q -L pool -n 32768 /dev/vda1 2> /dev/null
mkdir -p /mnt/top /mnt/src
mount /dev/vda1 /mnt/top
btrfs -q subvolume create /mnt/top/@
btrfs -q subvolume create /mnt/top/@home
btrfs -q subvolume create /mnt/top/@home/cache
btrfs -q subvolume create /mnt/top/@log
mkdir -p /mnt/top/@/var/lib                             # as systemd makes it
btrfs -q subvolume create /mnt/top/@/var/lib/machines
btrfs subvolume set-default /mnt/top/@
umount /mnt/top
mount /dev/vda1 /mnt/src                                # the default: @
mkdir -p /mnt/src/home /mnt/src/var/log
mount -o subvol=@home /dev/vda1 /mnt/src/home
mount -o subvol=@log /dev/vda1 /mnt/src/var/log
echo kept > /mnt/src/home/file
phase built
collect src /mnt/src vda
phase collected
umount -R /mnt/src
sync
writes before vdb
detach vda
diskinit btrfs --map /dev/vda=/dev/vdc
writes diskinit vdb
phase diskinit
collect after /mnt/t vdc
phase recollected
"""


# -- running one stack ------------------------------------------------------------------------

@dataclass
class RoundTrip:
    name: str
    result: Result
    out: Path  # the share: src/ and after/ (bundles), NAME.out of each diskinit
    wall: float
    sections: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self):
        parts = re.split(r"^== (.*)\n", self.result.stdout, flags=re.M)
        self.sections = list(zip(parts[1::2], parts[2::2]))

    def explain(self) -> str:
        outs = "".join(f"\n--- {p.name} ---\n{p.read_text()[-3000:]}"
                       for p in sorted(self.out.glob("*.out")))
        return (f"\n--- stdout ---\n{self.result.stdout[-3000:]}\n--- stderr ---\n"
                f"{self.result.stderr[-3000:]}{outs}")

    def rc(self, step: str) -> int:
        return next(int(h.split()[2]) for h, _ in self.sections if h.startswith(f"rc {step} "))

    def writes(self, when: str) -> dict[str, tuple[int, int]]:
        text = next(body for h, body in self.sections if h == f"writes {when}")
        return {d: (int(io), int(sec)) for d, io, sec in (ln.split() for ln in text.splitlines())}

    def phases(self) -> dict[str, float]:
        return {h.split()[1]: int(h.split()[2]) / 1000 for h, _ in self.sections
                if h.startswith("time ")}

    def section(self, head: str) -> str:
        return next(body for h, body in self.sections if h == head)

    def output(self, step: str) -> str:
        return (self.out / f"{step}.out").read_text()

    def layout(self, which: str) -> dict:
        return yaml.safe_load((self.out / which / "layout.yaml").read_text())


def round_trip(guest_image, tmp_path_factory, name: str, sizes: list[int],
               script: str) -> RoundTrip:
    """One boot: vda, vdb, ... of the given sizes (MiB, serials NAME-a, NAME-b, ...)."""
    out = tmp_path_factory.mktemp(f"vm-{name}")
    disks = [DiskSpec(mb, serial=f"{name}-{chr(ord('a') + i)}") for i, mb in enumerate(sizes)]
    t0 = time.monotonic()
    r = Guest(guest_image, disks, shares={"/out": out}).run(PRELUDE + script, timeout=TIMEOUT)
    rt = RoundTrip(name, r, out, time.monotonic() - t0)
    print(f"\n{name} round trip: {rt.wall:.1f} s (boot {r.boot_seconds} s; "
          + ", ".join(f"{k} at {v:.1f} s" for k, v in rt.phases().items()) + ")")
    assert r.exit_code == 0, f"{name}: the guest script failed ({r.exit_code})" + rt.explain()
    return rt


# -- comparing the layouts --------------------------------------------------------------------

# what differs by construction: the disks' names and serials, where the layout was
# collected from, and the bytes in use (the files are not restored here)
IGNORED = {"serial", "by_id", "model", "wwn", "root", "used"}
EXTENT = re.compile(r"^(/dev/\S+)\((\d+)\)$")  # a PV and an extent, in lvs' devices


def device_ids(layout: dict) -> dict[str, str]:
    """Device paths of disks and partitions -> their layout ids (disk0, disk0p2...):
    the names that differ; the names of arrays, LVs and mappings come back as they were."""
    ids = {d["path"]: d["id"] for d in layout["disks"]}
    for owner in layout["disks"] + (layout.get("md") or []):
        for p in (owner.get("ptable") or {}).get("partitions", []):
            ids[p["path"]] = p["id"]
    return ids


def canonical(layout: dict) -> dict:
    """The layout with disk and partition paths replaced by their ids, and without
    what differs by construction."""
    ids = device_ids(layout)

    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items() if k not in IGNORED}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, str):
            if x in ids:
                return f"<{ids[x]}>"
            m = EXTENT.match(x)
            if m and m.group(1) in ids:
                return f"<{ids[m.group(1)]}>({m.group(2)})"
        return x

    out = walk(layout)
    for f in out["filesystems"]:
        # reserved blocks = blocks * percent / 100, rounded down: the percent
        # read back from a small filesystem can differ in its second decimal
        if "reserved_percent" in f["params"]:
            f["params"]["reserved_percent"] = round(f["params"]["reserved_percent"], 1)
        for s in f.get("subvolumes") or []:
            s.pop("uuid")  # mkfs.btrfs makes new ones; nothing can set them
    return out


def differences(a, b, path: str = "") -> list[str]:
    if type(a) is not type(b):
        return [f"{path}: {a!r} -> {b!r}"]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}")
            else:
                out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {a!r} -> {b!r}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def assert_same_layout(rt: RoundTrip) -> tuple[dict, dict]:
    before, after = rt.layout("src"), rt.layout("after")
    assert not before["warnings"] and not after["warnings"], (before["warnings"],
                                                              after["warnings"])
    diff = differences(canonical(before), canonical(after))
    assert not diff, f"{rt.name}: the recreated layout differs:\n  " + "\n  ".join(diff)
    return before, after


def by_label(layout: dict) -> dict[str, dict]:
    return {f["label"]: f for f in layout["filesystems"] if f.get("label")}


def mounted(layout: dict) -> dict[str, str]:
    """Mountpoint (relative to the collected root) -> filesystem label."""
    out = {}
    for f in layout["filesystems"]:
        for m in f.get("mounts") or [{"mountpoint": f["mountpoint"]}]:
            if m["mountpoint"]:
                out[m["mountpoint"]] = f["label"]
    return out


# -- amdr-recover umount and mount, applied to what diskinit left mounted ---------------------

def fs_ids(rt: RoundTrip, when: str) -> dict[str, tuple[str, str]]:
    """Mountpoint under /mnt/t -> (filesystem UUID, ext4 creation time or "-")."""
    return {mp: (uuid, created) for mp, uuid, created, _ in
            (ln.split() for ln in rt.section(f"fs {when}").splitlines())}


def assert_nothing_active(rt: RoundTrip, when: str, maps: tuple[str, ...]):
    assert rt.section(f"mounts {when}").strip() == "", rt.explain()
    left = [m for m in rt.section(f"mapper {when}").split() if m.startswith(maps)]
    assert not left, f"{rt.name}: still in /dev/mapper {when}: {left}" + rt.explain()
    mdstat = rt.section(f"mdstat {when}")
    assert not re.search(r"^md\S+ : ", mdstat, re.M), f"{rt.name}: {when}:\n{mdstat}"


def assert_mount_umount_apply(rt: RoundTrip, mountpoints: set[str], maps: tuple[str, ...]):
    """umount takes down everything, mount brings the same filesystems back
    (nothing formatted: UUIDs, creation times and a file written before), and
    both are no-ops when run again."""
    for step in ("umount1", "mount1", "mount2", "umount2", "umount3"):
        assert rt.rc(step) == 0, f"{rt.name}: amdr-recover {step[:-1]} failed" + rt.explain()
    before = fs_ids(rt, "before")
    assert set(before) == {"/mnt/t" + mp.rstrip("/") for mp in mountpoints}, before
    assert all(uuid for uuid, _ in before.values()), before
    assert fs_ids(rt, "mounted") == before == fs_ids(rt, "mounted again")
    assert dict(ln.split() for ln in rt.section("markers").splitlines()) == {
        mp: mp for mp in before}
    assert_nothing_active(rt, "after umount", maps)
    assert_nothing_active(rt, "after umount twice", maps)
    assert_nothing_active(rt, "after umount thrice", maps)
    first, again = rt.output("mount1"), rt.output("mount2")
    for text in (first, again):
        assert not re.search(r"\b(mkfs|wipefs|sgdisk|sfdisk|pvcreate|luksFormat|mdadm --create)",
                             text), text
    assert again.count("already mounted") == len(before), again
    assert "nothing is mounted under /mnt/t" in rt.output("umount3"), rt.output("umount3")
    assert "nothing is mounted under /mnt/t any more" in rt.output("umount2")


# -- LVM ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lvm(guest_image, tmp_path_factory):
    return round_trip(guest_image, tmp_path_factory, "lvm", [400, 400, 400, 400], LVM_SCRIPT)


def test_lvm_original_pvs_attached_are_refused_and_not_written(lvm):
    assert lvm.rc("attached") == 3, lvm.explain()
    before = lvm.layout("src")
    [vg] = before["lvm"]
    msg = lvm.output("attached")
    for pv, dev in zip(vg["physical_volumes"], ("/dev/vda2", "/dev/vdb")):
        assert (f"{dev} carries the LVM physical volume UUID {pv['uuid']} the plan recreates, "
                f"and pvcreate refuses a UUID it finds on another device") in msg
    assert "nothing was changed" in msg and "wipe-disk0" not in msg
    assert lvm.writes("refused") == lvm.writes("before")


def test_lvm_round_trip(lvm):
    assert lvm.rc("detached") == 0, lvm.explain()
    before, after = assert_same_layout(lvm)
    [vg], [vg2] = before["lvm"], after["lvm"]
    # spelled out: the identities the comparison covers
    assert (vg2["name"], vg2["uuid"]) == ("vgdata", vg["uuid"])
    assert [(pv["uuid"], pv["device"]) for pv in vg2["physical_volumes"]] == [
        (pv["uuid"], pv["device"]) for pv in vg["physical_volumes"]] != []
    lvs = {lv["name"]: lv for lv in vg2["logical_volumes"]}
    assert {n: lv["uuid"] for n, lv in lvs.items()} == {
        lv["name"]: lv["uuid"] for lv in vg["logical_volumes"]}
    assert {"root", "srv", "pool", "thin", "[pool_tmeta]", "[pool_tdata]"} <= set(lvs)
    assert lvs["srv"]["devices"] == ["/dev/vdc2(25)", "/dev/vdd(0)"]  # the same extents
    assert (lvs["thin"]["segtype"], lvs["thin"]["pool"]) == ("thin", "pool")
    fss = by_label(after)
    assert {k: fss[k]["uuid"] for k in fss} == {k: f["uuid"] for k, f in by_label(before).items()}
    root = fss["root"]["params"]
    assert (root["inode_size"], root["max_mount_count"], root["reserved_percent"]) == (512, 30, 2.0)
    assert fss["srv"]["type"] == "xfs" and fss["srv"]["params"]["inode_size"] == 1024
    assert mounted(after) == {"/": "root", "/boot": "boot", "/srv": "srv", "/data": "thin"}


def test_lvm_mount_and_umount_apply(lvm):
    assert lvm.rc("detached") == 0, lvm.explain()
    assert_mount_umount_apply(lvm, {"/", "/boot", "/srv", "/data"}, ("vgdata-",))


# -- MD RAID1 -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def md(guest_image, tmp_path_factory):
    return round_trip(guest_image, tmp_path_factory, "md", [128, 128, 128, 128], MD_SCRIPT)


def test_md_round_trip(md):
    assert md.rc("md") == 0, md.explain()
    before, after = assert_same_layout(md)
    arrays = {a["name"]: a for a in after["md"]}
    assert set(arrays) == {"amdr-vm:boot", "amdr-vm:data"}
    keys = ("uuid", "level", "metadata", "raid_devices", "bitmap", "path", "size")
    new = {"/dev/vda": "/dev/vdc", "/dev/vdb": "/dev/vdd"}
    for a in before["md"]:
        got = arrays[a["name"]]
        assert {k: got[k] for k in keys} == {k: a[k] for k in keys}
        assert [(m["role"], m["path"]) for m in got["members"]] == [
            (m["role"], new[m["path"][:-1]] + m["path"][-1]) for m in a["members"]]
    boot, data = arrays["amdr-vm:boot"], arrays["amdr-vm:data"]
    assert (boot["metadata"], boot["bitmap"], data["metadata"], data["bitmap"]) == (
        "1.0", None, "1.2", "internal")
    fss = by_label(after)
    assert {k: fss[k]["uuid"] for k in fss} == {k: f["uuid"] for k, f in by_label(before).items()}
    assert fss["mdroot"]["params"]["raid_stride"] == 4
    assert mounted(after) == {"/": "mdroot", "/boot": "mdboot"}


def test_md_original_members_stay_attached_and_untouched(md):
    assert md.writes("before") == md.writes("diskinit") == md.writes("end") == md.writes("final")


def test_md_mount_and_umount_apply(md):
    assert md.rc("md") == 0, md.explain()
    assert_mount_umount_apply(md, {"/", "/boot"}, ())
    assert md.output("mount2").count("is already assembled") == 2, md.output("mount2")


# -- LUKS2 with LVM inside ------------------------------------------------------------------

def luks_script() -> str:
    cli = (PROJECT / "recovery" / "cli.py").read_text()
    return LUKS_SCRIPT.replace("LUKS_DISKINIT\n",
                               LUKS_BY_CLI if "--luks-key-file" in cli else LUKS_BY_SESSION)


@pytest.fixture(scope="module")
def luks(guest_image, tmp_path_factory):
    # vda: the source, vdb: a disk in no mapping, vdc: the new disk
    return round_trip(guest_image, tmp_path_factory, "luks", [192, 64, 192], luks_script())


def test_luks_lvm_round_trip(luks):
    assert luks.rc("luks") == 0, luks.explain()
    before, after = assert_same_layout(luks)
    [c], [c2] = before["luks"], after["luks"]
    keys = ("uuid", "version", "cipher", "key_size", "label", "subsystem", "sector_size",
            "data_offset", "pbkdf", "name")
    assert {k: c2[k] for k in keys} == {k: c[k] for k in keys}
    assert (c2["cipher"], c2["key_size"], c2["sector_size"], c2["label"], c2["name"]) == (
        "aes-xts-plain64", 256, 4096, "cryptlabel", "cryptdata")
    assert c2["open"] and c2["device_path"] == "/dev/vdc2"
    [vg], [vg2] = before["lvm"], after["lvm"]
    assert (vg2["name"], vg2["uuid"]) == ("vgcrypt", vg["uuid"])
    assert [(pv["path"], pv["device"], pv["uuid"]) for pv in vg2["physical_volumes"]] == [
        ("/dev/mapper/cryptdata", "luks0", vg["physical_volumes"][0]["uuid"])]
    assert mounted(after) == {"/": "croot", "/boot": "boot", "/home": "chome"}
    assert any(h == "key opens it" for h, _ in luks.sections)


def test_luks_original_and_bystander_disks_untouched(luks):
    assert (luks.writes("before") == luks.writes("diskinit") == luks.writes("end")
            == luks.writes("final"))


def test_luks_lvm_mount_and_umount_apply(luks):
    assert luks.rc("luks") == 0, luks.explain()
    assert_mount_umount_apply(luks, {"/", "/boot", "/home"}, ("vgcrypt-", "cryptdata"))


# -- btrfs subvolumes -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def btrfs(guest_image, tmp_path_factory):
    return round_trip(guest_image, tmp_path_factory, "btrfs", [128, 64, 128], BTRFS_SCRIPT)


def test_btrfs_subvolumes_round_trip(btrfs):
    assert btrfs.rc("btrfs") == 0, btrfs.explain()
    before, after = assert_same_layout(btrfs)
    [f] = [f for f in after["filesystems"] if f["type"] == "btrfs"]
    [f0] = [f for f in before["filesystems"] if f["type"] == "btrfs"]
    assert (f["uuid"], f["label"], f["params"]["node_size"]) == (f0["uuid"], "pool", 32768)
    # the same ids too: an fstab may mount one by subvolid=
    assert [(s["id"], s["path"], s["parent_id"]) for s in f["subvolumes"]] == [
        (256, "@", 5), (257, "@home", 5), (258, "@home/cache", 257), (259, "@log", 5),
        (260, "@/var/lib/machines", 256)]
    assert f["default_subvolume"] == {"id": 256, "path": "@"}
    assert [(m["mountpoint"], m["fsroot"]) for m in f["mounts"]] == [
        ("/", "/@"), ("/home", "/@home"), ("/var/log", "/@log")]


def test_btrfs_bystander_untouched(btrfs):
    assert btrfs.writes("before") == btrfs.writes("diskinit")
