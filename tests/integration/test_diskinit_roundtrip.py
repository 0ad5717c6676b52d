"""diskinit on real loop disks: build, collect, recreate, collect again, compare.

A source disk is built with the real tools and collected (amdr-essentials
collect); diskinit recreates it on a blank disk of the same size (through
amdr-recover, with --map), a larger one and a smaller one (through the
planner and the session's steps); the new disk is collected again and the
two layouts must agree on every identity and every piece of tuning,
device names and the sizes that follow the disk's size aside.

Also: the refusals (a mounted disk, active swap, a disk not in the
mapping is never touched), an interrupted diskinit continuing from its
journal, and LUKS containers formatted by the real cryptsetup (no
device-mapper is needed to format, only to open).

Only loop devices made here are touched (other runs on this machine have
loop devices of their own).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

from essentials.errors import CommandError, RefusedError
from essentials.runner import Runner
from recovery.disks import devnodes, guard, journal, present
from recovery.disks.plan import PlanError, plan_disks
from recovery.disks.stack import LuksFormat, Passphrase
from tests.lab.lab import sh

from .helpers import amdr

pytestmark = pytest.mark.integration

MIB = 1 << 20
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
SWAPT = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
ROOT_UUID = "5d1a7c3e-2b4f-4e6a-9c8d-7e6f5a4b3c2d"
XFS_UUID = "6e2b8d4f-3c5a-4f7b-8d9e-8f7a6b5c4d3e"
# random per run: the kernel refuses a btrfs UUID another (test) device already has
BTRFS_UUID = str(uuid.uuid4())
SWAP_UUID = "8a4d0f6b-5e7c-4b9d-8f1a-0b9c8d7e6f5a"
MBR_UUID = "9b5e1a7c-6f8d-4c0e-9a2b-1c0d9e8f7a6b"
EXT3_UUID = "0c6f2b8d-7a9e-4d1f-8b3c-2d1e0f9a8b7c"

GPT_SCRIPT = f"""label: gpt
label-id: 4D3C2B1A-0F9E-4D8C-9B7A-6F5E4D3C2B1A
size=40MiB, type={ESP}, name="EFI System", uuid=11111111-2222-4333-8444-000000000001
size=300MiB, type={LINUX}, name="srv", uuid=11111111-2222-4333-8444-000000000002, attrs="RequiredPartition GUID:60"
size=128MiB, type={LINUX}, name="data", uuid=11111111-2222-4333-8444-000000000003
size=16MiB, type={SWAPT}, name="swap", uuid=11111111-2222-4333-8444-000000000004
type={LINUX}, name="root", uuid=11111111-2222-4333-8444-000000000005
"""
GPT_MIB = 1 + 40 + 300 + 128 + 16 + 200 + 1
MBR_SCRIPT = """label: dos
label-id: 0x7a6b5c4d
size=100MiB, type=83, bootable
type=5
size=60MiB, type=83
type=82
"""
MBR_MIB = 200


class Loops:
    """Loop disks under one temporary directory; cleanup() undoes everything."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="amdr-diskinit-", dir="/var/tmp"))
        self.loops: list[str] = []
        self.swaps: list[str] = []

    def attach(self, name: str, mib: int) -> str:
        img = self.base / f"{name}.img"
        with open(img, "wb") as f:
            f.truncate(mib * MIB)
        loop = sh(["losetup", "-f", "--show", str(img)]).strip()
        self.loops.append(loop)
        return loop

    def partition(self, loop: str, script: str, numbers: list[int]) -> list[str]:
        sh(["sfdisk", "-q", "--no-reread", loop], input=script)
        sh(["partx", "-d", loop], check=False)  # stale ones of an earlier loop device
        parts = [f"{loop}p{n}" for n in numbers]
        for _ in range(3):
            sh(["partx", "-a", loop], check=False)
            sh(["partx", "-u", loop], check=False)
            if not devnodes.wait_for(parts, timeout=5):
                return parts
        raise AssertionError(f"{parts} did not appear")

    def blank(self, loop: str):
        """Signatures off every partition and the disk, then detached: a btrfs
        UUID left behind would make the next mkfs.btrfs refuse it."""
        for line in sh(["lsblk", "-ln", "-o", "PATH", loop]).split():
            subprocess.run(["wipefs", "-a", "-q", line], capture_output=True)
        subprocess.run(["partx", "-d", loop], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)
        if loop in self.loops:
            self.loops.remove(loop)

    def umount_all(self, under: Path | None = None):
        under = str(under or self.base)
        with open("/proc/self/mounts") as f:
            mps = [ln.split()[1] for ln in f if ln.split()[1].startswith(under)]
        for m in sorted(mps, key=len, reverse=True):
            if subprocess.run(["umount", m], capture_output=True).returncode:
                subprocess.run(["umount", "-l", m], capture_output=True)

    def cleanup(self):
        for s in self.swaps:
            subprocess.run(["swapoff", s], capture_output=True)
        self.umount_all()
        # targets live under each test's tmp_path: unmount whatever our loops hold
        with open("/proc/self/mounts") as f:
            mps = [ln.split()[1] for ln in f
                   if any(ln.split()[0].startswith(lp + "p") for lp in self.loops)]
        for m in sorted(mps, key=len, reverse=True):
            if subprocess.run(["umount", m], capture_output=True).returncode:
                subprocess.run(["umount", "-l", m], capture_output=True)
        for loop in reversed(self.loops):
            subprocess.run(["partx", "-d", loop], capture_output=True)
            subprocess.run(["losetup", "-d", loop], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def build_gpt(ld: Loops) -> tuple[str, Path]:
    """The source: ESP (vfat), xfs on /srv, btrfs with subvolumes on /data and
    /logs, swap, and a tuned ext4 root as the last partition."""
    loop = ld.attach("gpt-source", GPT_MIB)
    esp, srv, data, swap, root = ld.partition(loop, GPT_SCRIPT, [1, 2, 3, 4, 5])
    sh(["mkfs.vfat", "-F", "32", "-i", "B0CA1E5E", "-n", "ESP", esp])
    sh(["mkfs.xfs", "-q", "-f", "-m", f"uuid={XFS_UUID}", "-L", "srv", "-i", "size=1024", srv])
    sh(["mkfs.btrfs", "-q", "-f", "-U", BTRFS_UUID, "-L", "data", "-n", "32768", data])
    sh(["mkswap", "-U", SWAP_UUID, "-L", "swap", swap])
    sh(["mkfs.ext4", "-q", "-F", "-U", ROOT_UUID, "-L", "root", "-m", "3", "-b", "2048",
        "-I", "512", "-O", "^metadata_csum,^huge_file,inline_data", root])
    sh(["tune2fs", "-c", "25", "-i", "2w", "-e", "remount-ro", "-o", "^acl", root])
    mnt = ld.base / "src"
    mnt.mkdir()
    scratch = ld.base / "btrfs-top"
    scratch.mkdir()
    sh(["mount", data, str(scratch)])
    for sv in ("@data", "@logs", "@data/cache"):
        sh(["btrfs", "subvolume", "create", str(scratch / sv)])
    sh(["btrfs", "subvolume", "set-default", str(scratch / "@data")])
    sh(["umount", str(scratch)])
    sh(["mount", root, str(mnt)])
    (mnt / "etc").mkdir()
    (mnt / "etc" / "hostname").write_text("roundtrip\n")
    for sub, dev, opts in (("srv", srv, None), ("data", data, None),
                           ("logs", data, "subvol=@logs")):
        (mnt / sub).mkdir()
        sh(["mount"] + (["-o", opts] if opts else []) + [dev, str(mnt / sub)])
    return loop, mnt


def build_mbr(ld: Loops) -> tuple[str, Path]:
    loop = ld.attach("mbr-source", MBR_MIB)
    # the extended partition's node too: a stale one would be probed by blkid
    root, _, home, swap = ld.partition(loop, MBR_SCRIPT, [1, 2, 5, 6])
    sh(["mkfs.ext4", "-q", "-F", "-U", MBR_UUID, "-L", "mbr-root", root])
    sh(["mkfs.ext3", "-q", "-F", "-U", EXT3_UUID, "-L", "home", "-b", "1024", home])
    sh(["mkswap", "-U", SWAP_UUID, swap])
    mnt = ld.base / "mbr-src"
    mnt.mkdir()
    sh(["mount", root, str(mnt)])
    (mnt / "home").mkdir()
    sh(["mount", home, str(mnt / "home")])
    return loop, mnt


def collect(ld: Loops, loop: str, mnt: Path, name: str) -> Path:
    out = ld.base / name
    p = amdr("amdr-essentials", "collect", "--out", out, "--only", "layout", "--disk", loop,
             "--root", mnt)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def layout_of(bundle: Path) -> dict:
    return yaml.safe_load((bundle / "layout.yaml").read_text())


@pytest.fixture
def disk(lab):
    """New blank loop disks for one test, wiped and detached after it."""
    made = []

    def attach(name: str, mib: int) -> str:
        loop = lab.attach(name, mib)
        made.append(loop)
        return loop

    yield attach
    lab.umount_all(lab.base)
    with open("/proc/self/mounts") as f:  # a failed test's target, under its tmp_path
        mps = [ln.split()[1] for ln in f if any(ln.split()[0].startswith(lp + "p")
                                               for lp in made)]
    for m in sorted(mps, key=len, reverse=True):
        if subprocess.run(["umount", m], capture_output=True).returncode:
            subprocess.run(["umount", "-l", m], capture_output=True)
    for loop in made:
        lab.blank(loop)


@pytest.fixture(scope="module")
def lab():
    ld = Loops()
    try:
        gpt, gmnt = build_gpt(ld)
        mbr, mmnt = build_mbr(ld)
        ld.gpt, ld.mbr = gpt, mbr
        ld.gpt_bundle = collect(ld, gpt, gmnt, "gpt-bundle")
        ld.mbr_bundle = collect(ld, mbr, mmnt, "mbr-bundle")
        ld.umount_all()
        # the original disks are lost: only the bundles remain
        ld.blank(gpt)
        ld.blank(mbr)
        yield ld
    finally:
        ld.cleanup()


# -- comparing two layouts ------------------------------------------------------------------

SIZE_KEYS = {"inode_count", "agcount", "log_blocks"}  # follow the size of the fs


def identities(layout: dict, resized: bool = False) -> dict:
    """Everything that must come back, keyed by what does not depend on device
    names; sizes only where the disk's size does not decide them."""
    [disk] = layout["disks"]
    pt = disk["ptable"]
    parts = {}
    for p in pt["partitions"]:
        parts[p["number"]] = {k: p[k] for k in ("start", "type", "uuid", "name", "attrs",
                                               "bootable", "kind")}
        if not resized:
            parts[p["number"]]["size"] = p["size"]
    number = {p["id"]: p["number"] for p in pt["partitions"]}
    fss = {}
    for f in layout["filesystems"]:
        params = dict(f["params"])
        if resized:
            for k in SIZE_KEYS:
                params.pop(k, None)
        if "reserved_percent" in params:  # blocks * pct / 100, rounded to a block
            params["reserved_percent"] = round(params["reserved_percent"], 1)
        entry = {"partition": number[f["device"]], "type": f["type"], "label": f["label"],
                 "mountpoint": f["mountpoint"], "params": params}
        if f["type"] == "btrfs":
            entry["subvolumes"] = sorted(s["path"] for s in f["subvolumes"])
            entry["default"] = f["default_subvolume"]["path"]
            entry["mounts"] = sorted((m["mountpoint"], m["fsroot"]) for m in f["mounts"])
        fss[f["uuid"]] = entry
    return {"label": pt["label"], "label_id": pt["id"], "first_lba": pt["first_lba"],
            "partitions": parts, "filesystems": fss}


def assert_same(before: dict, after: dict, resized: bool = False):
    a, b = identities(before, resized), identities(after, resized)
    assert a == b


# -- running the plan as diskinit does ------------------------------------------------------

def node_of(disk: str) -> dict:
    return json.loads(sh(["lsblk", "--json", "-b", "-O", disk]))["blockdevices"][0]


def diskinit(layout: dict, old: str, new: str, target: Path, **kw) -> list:
    """What amdr-recover diskinit does after the session made the plan: guard,
    then apply every action in order (with the journal beside the target)."""
    runner = Runner()
    actions = plan_disks(layout, {old: new}, {}, str(target), present={new: node_of(new)},
                         workdir=f"{target}.amdr", **kw)
    journal.attach(actions, Path(f"{target}.amdr") / "diskinit.journal")
    guard.check_disks(runner, sorted({a.device for a in actions if a.type == "wipe"}))
    for a in actions:
        a.apply(runner)
    return actions


def recollect(ld: Loops, new: str, target: Path, name: str) -> dict:
    bundle = collect(ld, new, target, name)
    return layout_of(bundle)


def umount_target(ld: Loops, target: Path):
    ld.umount_all(target)


# -- same size, larger, smaller -----------------------------------------------------------

def test_same_size_through_amdr_recover(lab, disk, tmp_path):
    new = disk("same", GPT_MIB)
    target = tmp_path / "target"
    p = amdr("amdr-recover", "diskinit", "--bundle", lab.gpt_bundle, "--target", target,
             "--map", f"{lab.gpt}={new}", "--yes")
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        assert (tmp_path / "target.amdr" / "diskinit.journal").is_file()
        assert os.path.ismount(target / "data") and os.path.ismount(target / "logs")
        after = recollect(lab, new, target, "same-after")
    finally:
        umount_target(lab, target)
    before = layout_of(lab.gpt_bundle)
    assert_same(before, after)
    # the tuning, spelled out for the reader (and so this test cannot agree with
    # itself by accident)
    root = next(f for f in after["filesystems"] if f["uuid"] == ROOT_UUID)
    assert root["params"]["block_size"] == 2048 and root["params"]["inode_size"] == 512
    assert "inline_data" in root["params"]["features"]
    assert "metadata_csum" not in root["params"]["features"]
    assert (root["params"]["max_mount_count"], root["params"]["check_interval"]) == (25, 1209600)
    assert root["params"]["default_mount_options"] == ["user_xattr"]
    assert root["params"]["errors_behavior"] == "remount read-only"
    btr = next(f for f in after["filesystems"] if f["type"] == "btrfs")
    assert btr["default_subvolume"]["path"] == "@data" and btr["params"]["node_size"] == 32768
    xfs = next(f for f in after["filesystems"] if f["type"] == "xfs")
    assert xfs["params"]["inode_size"] == 1024 and xfs["uuid"] == XFS_UUID
    esp = next(f for f in after["filesystems"] if f["type"] == "vfat")
    assert (esp["uuid"], esp["label"]) == ("B0CA-1E5E", "ESP")
    swap = next(f for f in after["filesystems"] if f["type"] == "swap")
    assert (swap["uuid"], swap["label"]) == (SWAP_UUID, "swap")
    parts = after["disks"][0]["ptable"]["partitions"]
    assert parts[1]["attrs"] == "RequiredPartition GUID:60" and parts[0]["name"] == "EFI System"
    assert after["disks"][0]["ptable"]["id"] == "4D3C2B1A-0F9E-4D8C-9B7A-6F5E4D3C2B1A"


def test_larger_disk_grows_the_last_partition(lab, disk, tmp_path):
    before = layout_of(lab.gpt_bundle)
    new = disk("larger", GPT_MIB + 100)
    target = tmp_path / "target"
    try:
        actions = diskinit(before, lab.gpt, new, target)
        after = recollect(lab, new, target, "larger-after")
        df = os.statvfs(target)
    finally:
        umount_target(lab, target)
    table = next(a for a in actions if a.type == "partition_table")
    assert table.notes == [f"{lab.gpt}p5 (ext4 on /) grows from 200.0 MiB to 300.0 MiB: "
                           f"{new} is larger"]
    assert_same(before, after, resized=True)
    old5 = before["disks"][0]["ptable"]["partitions"][4]
    new5 = after["disks"][0]["ptable"]["partitions"][4]
    assert (new5["start"], new5["size"]) == (old5["start"], old5["size"] + 100 * 2048)
    assert df.f_blocks * df.f_frsize > 250 * MIB  # the filesystem has the room


def test_smaller_disk_when_the_used_data_fits(lab, disk, tmp_path):
    before = layout_of(lab.gpt_bundle)
    root = next(f for f in before["filesystems"] if f["uuid"] == ROOT_UUID)
    assert 0 < root["used"] < 80 * MIB  # the collector records the bytes in use
    new = disk("smaller", GPT_MIB - 120)
    target = tmp_path / "target"
    # without the used size the planner cannot know: a clear error, nothing touched
    unknown = copy.deepcopy(before)
    del next(f for f in unknown["filesystems"] if f["uuid"] == ROOT_UUID)["used"]
    try:
        with pytest.raises(PlanError) as e:
            diskinit(unknown, lab.gpt, new, target)
    finally:
        umount_target(lab, target)
    assert f"{new} is too small for {lab.gpt}" in str(e.value)
    assert "does not say how much of it (ext4 on /) is used (filesystems[].used)" in str(e.value)
    assert sh(["blkid", "-p", new], check=False) == ""
    assert not (tmp_path / "target.amdr").exists()
    # with the collected size, the root shrinks
    try:
        actions = diskinit(before, lab.gpt, new, target)
        assert (target / "lost+found").is_dir()
        after = recollect(lab, new, target, "smaller-after")
    finally:
        umount_target(lab, target)
    table = next(a for a in actions if a.type == "partition_table")
    assert table.notes == [f"{lab.gpt}p5 (ext4 on /) shrinks from 200.0 MiB to 80.0 MiB: "
                           f"{new} is smaller, and the {root['used'] / MIB:.1f} MiB used "
                           f"still fit"]
    assert_same(before, after, resized=True)


def test_mbr_with_logical_partitions_same_size_and_larger(lab, disk, tmp_path):
    before = layout_of(lab.mbr_bundle)
    for name, mib in (("mbr-same", MBR_MIB), ("mbr-larger", MBR_MIB + 50)):
        new = disk(name, mib)
        target = tmp_path / name
        try:
            actions = diskinit(before, lab.mbr, new, target)
            assert os.path.ismount(target / "home")
            after = recollect(lab, new, target, f"{name}-after")
        finally:
            umount_target(lab, target)
        assert_same(before, after)  # the swap at the end keeps its size: nothing resized
        table = next(a for a in actions if a.type == "partition_table")
        assert table.notes == ([] if mib == MBR_MIB else [
            f"50.0 MiB at the end of {new} left unallocated: the last partition {lab.mbr}p6 "
            f"holds swap, which keeps its size"])
        kinds = [p["kind"] for p in after["disks"][0]["ptable"]["partitions"]]
        assert kinds == ["primary", "extended", "logical", "logical"]


# -- refusals -----------------------------------------------------------------------------

def test_mounted_disk_is_refused_and_untouched(lab, disk, tmp_path):
    before = layout_of(lab.mbr_bundle)
    new = disk("busy", MBR_MIB)
    ld_parts = lab.partition(new, "label: gpt\nsize=50MiB\n", [1])
    sh(["mkfs.ext4", "-q", "-F", "-L", "keepme", ld_parts[0]])
    mnt = lab.base / "busy-mnt"
    mnt.mkdir()
    sh(["mount", ld_parts[0], str(mnt)])
    try:
        with pytest.raises(RefusedError) as e:
            diskinit(before, lab.mbr, new, tmp_path / "t")
        assert f"{ld_parts[0]} is mounted on {mnt}" in str(e.value)
        # the present-disk collector marks it too, so matching by size never picks it
        _, refused = present.collect(Runner())
        assert f"{ld_parts[0]} is mounted on {mnt}" in refused[new]
    finally:
        sh(["umount", str(mnt)])
    assert "keepme" in sh(["blkid", "-p", "-o", "export", ld_parts[0]])


def test_disk_with_active_swap_is_refused(lab, disk, tmp_path):
    before = layout_of(lab.mbr_bundle)
    new = disk("swapping", MBR_MIB)
    [part] = lab.partition(new, f"label: gpt\nsize=20MiB, type={SWAPT}\n", [1])
    sh(["mkswap", "-L", "inuse", part])
    sh(["swapon", part])
    lab.swaps.append(part)
    try:
        with pytest.raises(RefusedError) as e:
            diskinit(before, lab.mbr, new, tmp_path / "t")
        assert f"{part} is in use as swap" in str(e.value)
    finally:
        sh(["swapoff", part])
        lab.swaps.remove(part)
    assert "inuse" in sh(["blkid", "-p", "-o", "export", part])


def test_disks_not_in_the_mapping_are_never_touched(lab, disk, tmp_path):
    """A disk with signatures that is not mapped keeps them; the mapped disk's old
    contents (a table, a filesystem) are wiped."""
    before = layout_of(lab.mbr_bundle)
    bystander = disk("bystander", MBR_MIB)
    [bpart] = lab.partition(bystander, "label: gpt\nsize=50MiB\n", [1])
    sh(["mkfs.ext4", "-q", "-F", "-L", "bystander", bpart])
    new = disk("reused", MBR_MIB)
    old1, old2 = lab.partition(new, "label: gpt\nsize=120MiB\nsize=60MiB\n", [1, 2])
    sh(["mkfs.ext4", "-q", "-F", "-L", "oldfs", old1])
    sh(["mkswap", "-L", "oldswap", old2])
    target = tmp_path / "t"
    try:
        actions = diskinit(before, lab.mbr, new, target)
    finally:
        umount_target(lab, target)
    wipes = [a for a in actions if a.type == "wipe"]
    assert [w.device for w in wipes] == [new]
    # (no udev here: lsblk does not know what is on them, they are wiped all the same)
    assert [p["path"] for p in wipes[0].old_partitions] == [old1, old2]
    assert wipes[0].render()[:2] == [["wipefs", "--all", "--force", old1],
                                     ["wipefs", "--all", "--force", old2]]
    assert "bystander" in sh(["blkid", "-p", "-o", "export", bpart])
    assert "oldfs" not in sh(["blkid", "-p", "-o", "export", f"{new}p1"], check=False)


# -- interrupted and continued ------------------------------------------------------------

class Interrupted(Exception):
    pass


def created(part: str) -> str:
    out = sh(["tune2fs", "-l", part])
    return next(ln for ln in out.splitlines() if ln.startswith("Filesystem created:"))


def test_interrupted_diskinit_continues_without_formatting_again(lab, disk, tmp_path):
    before = layout_of(lab.mbr_bundle)
    new = disk("interrupted", MBR_MIB)
    target = tmp_path / "t"
    runner = Runner()
    actions = plan_disks(before, {lab.mbr: new}, {}, str(target), present={new: node_of(new)},
                         workdir=f"{target}.amdr")
    j = journal.attach(actions, Path(f"{target}.amdr") / "diskinit.journal")
    assert [a.id for a in actions] == ["preflight", "wipe-disk0", "ptable-disk0", "format-fs0",
                                       "format-fs1", "format-fs2", "mount-fs0", "mount-fs1"]
    # the process dies after the first mkfs (4 actions done)
    with pytest.raises(Interrupted):
        for i, a in enumerate(actions):
            if i == 4:
                raise Interrupted()
            a.apply(runner)
    assert j.completed == ["wipe-disk0", "ptable-disk0", "format-fs0"]
    root = f"{new}p1"
    stamp = created(root)
    mnt = lab.base / "peek"
    mnt.mkdir(exist_ok=True)
    sh(["mount", root, str(mnt)])
    (mnt / "marker").write_text("made by the first run\n")
    sh(["umount", str(mnt)])
    probe = sh(["blkid", "-p", "-o", "export", f"{new}p5"], check=False).splitlines()
    assert not any(ln.startswith("TYPE=") for ln in probe)  # not made yet

    # run again: a new plan and journal, as a new amdr-recover process would make
    actions = plan_disks(before, {lab.mbr: new}, {}, str(target), present={new: node_of(new)},
                         workdir=f"{target}.amdr")
    j = journal.attach(actions, Path(f"{target}.amdr") / "diskinit.journal")
    try:
        for a in actions:
            a.apply(runner)
        assert (target / "marker").read_text() == "made by the first run\n"
    finally:
        umount_target(lab, target)
    assert created(root) == stamp
    assert j.completed == ["wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1",
                           "format-fs2"]
    assert "home" in sh(["blkid", "-p", "-o", "export", f"{new}p5"])


def test_failing_mkfs_is_not_journaled_and_runs_again(lab, disk, tmp_path):
    before = layout_of(lab.mbr_bundle)
    new = disk("failing", MBR_MIB)
    target = tmp_path / "t"

    class FailSwap(Runner):
        def run(self, argv, **kw):
            if argv[0] == "mkswap":
                raise CommandError(" ".join(map(str, argv)), 1, "simulated failure")
            return super().run(argv, **kw)

    actions = plan_disks(before, {lab.mbr: new}, {}, str(target), workdir=f"{target}.amdr")
    j = journal.attach(actions, Path(f"{target}.amdr") / "diskinit.journal")
    with pytest.raises(CommandError):
        for a in actions:
            a.apply(FailSwap())
    assert j.completed == ["wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1"]
    stamps = (created(f"{new}p1"), created(f"{new}p5"))
    try:
        diskinit(before, lab.mbr, new, target)
    finally:
        umount_target(lab, target)
    assert (created(f"{new}p1"), created(f"{new}p5")) == stamps
    assert SWAP_UUID in sh(["blkid", "-p", "-o", "export", f"{new}p6"])


# -- LUKS, formatted by the real cryptsetup --------------------------------------------------

def test_luks_format_recreates_the_header_identity(lab, disk, caplog):
    """luksFormat needs no device-mapper: the rendered options are checked against
    the real cryptsetup; opening the containers is left to the qemu tier."""
    from essentials.layout import rawdir
    from essentials.layout.normalise import normalise

    fix = Path(__file__).resolve().parent.parent / "fixtures" / "layout-luks"
    layout = normalise(rawdir.load(fix))
    new = disk("luks", 100)
    secret = "a passphrase nobody logs"
    keyfile = lab.base / "old.key"
    keyfile.write_bytes(os.urandom(64))
    keyfile.chmod(0o600)
    actions = plan_disks(layout, {"/dev/loop0": new}, {}, str(lab.base / "luks-target"),
                         present={new: node_of(new)},
                         luks_keys={"cryptold": str(keyfile)}, passphrase=Passphrase(lambda: secret))
    runner = Runner()
    caplog.set_level(logging.DEBUG)
    for a in actions:
        if a.type in ("preflight", "wipe", "partition_table", "luks_format"):
            a.apply(runner)
    assert secret not in caplog.text
    for c in layout["luks"]:
        dev = f"{new}p{c['device'][-1]}"
        dump = sh(["cryptsetup", "luksDump", dev])
        from essentials.layout.luks import parse_luks_dump
        got = parse_luks_dump(dump)
        for k in ("version", "uuid", "label", "cipher", "key_size", "hash", "data_offset",
                  "sector_size", "pbkdf"):
            assert got[k] == c[k], (k, got[k], c[k])
    # each key opens its own container (checked without opening: --test-passphrase)
    luks0 = next(a for a in actions if isinstance(a, LuksFormat) and a.luks == "luks0")
    subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file", "-", luks0.path],
                   input=secret.encode(), check=True)
    subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file", str(keyfile),
                    f"{new}p2"], check=True)


def test_btrfs_uuid_on_a_disk_that_stays_is_refused_before_anything(lab, disk, tmp_path):
    """The original disk still attached beside its replacement: mkfs.btrfs would
    refuse the UUID halfway through; the preflight says so before the first wipe."""
    old = disk("still-here", 200)
    sh(["mkfs.btrfs", "-q", "-f", "-U", BTRFS_UUID, old])
    new = disk("replacement", GPT_MIB)
    sh(["mkfs.ext4", "-q", "-F", "-L", "untouched", new])
    with pytest.raises(Exception) as e:
        diskinit(layout_of(lab.gpt_bundle), lab.gpt, new, tmp_path / "t")
    assert str(e.value) == (
        f"nothing was changed: {old} carries the btrfs UUID {BTRFS_UUID} the plan recreates, "
        f"and mkfs.btrfs refuses a UUID it finds on another device: detach that disk or wipe "
        f"it (wipefs -a {old})")
    assert "untouched" in sh(["blkid", "-p", "-o", "export", new])


def test_ext4_uuid_on_a_disk_that_stays_is_warned_about(lab, disk, tmp_path, capfd):
    """The original root filesystem still attached: the recreation goes on (mkfs.ext4
    does not mind), and the person is told the restored system may mount the old one."""
    old = disk("old-root", 64)
    sh(["mkfs.ext4", "-q", "-F", "-U", ROOT_UUID, "-L", "old-root", old])
    new = disk("replacement", GPT_MIB)
    target = tmp_path / "t"
    try:
        diskinit(layout_of(lab.gpt_bundle), lab.gpt, new, target)
        err = capfd.readouterr().err
        assert (f"warning: {old}, on a disk this plan does not touch, carries the UUID "
                f"{ROOT_UUID} of the ext4 filesystem labelled root, which the plan recreates: "
                f"detach that disk before the restored system boots") in err
        assert err.count("warning: ") == 1
        assert ROOT_UUID in sh(["blkid", "-p", "-o", "export", f"{new}p5"])
        assert "old-root" in sh(["blkid", "-p", "-o", "export", old])  # left as it was
    finally:
        lab.umount_all(target)


# -- LVM: pvcreate and vgcfgrestore from the captured vgcfgbackup ------------------------------

def test_lvm_volume_group_restored_with_its_uuids(lab, disk, monkeypatch, tmp_path):
    """No device-mapper here: LVM runs with activation off (as the fixture was
    captured), which pvcreate --restorefile and vgcfgrestore do not need;
    activating and making filesystems on the LVs is the qemu tier's."""
    from essentials.layout import rawdir
    from essentials.layout.normalise import normalise

    fix = Path(__file__).resolve().parent.parent / "fixtures" / "layout-lvm"
    layout = normalise(rawdir.load(fix))
    a, b = disk("lvm-a", 128), disk("lvm-b", 64)
    conf = tmp_path / "lvm"
    conf.mkdir()
    (conf / "lvm.conf").write_text(
        "global { activation = 0 }\nbackup { backup = 0 archive = 0 }\n"
        f'devices {{ filter = [ "a|^{a}|", "a|^{b}$|", "r|.*|" ] }}\n')
    monkeypatch.setenv("LVM_SYSTEM_DIR", str(conf))
    monkeypatch.setenv("LVM_SUPPRESS_FD_WARNINGS", "1")
    actions = plan_disks(layout, {"/dev/loop2": a, "/dev/loop3": b}, {}, str(tmp_path / "t"),
                         files=lambda rel: str(fix / Path(rel).name))
    assert [x.id for x in actions] == ["preflight", "wipe-disk0", "wipe-disk1", "ptable-disk0",
                                       "pv-disk0p1", "pv-disk1", "vg-vg0"]
    runner = Runner()
    try:
        for x in actions:
            x.apply(runner)
        pvs = json.loads(sh(["pvs", "--reportformat", "json", "-o", "pv_name,pv_uuid,vg_name"]))
        lvs = json.loads(sh(["lvs", "--reportformat", "json", "-o",
                             "lv_name,lv_uuid,lv_size,devices", "--units", "b", "vgdata"]))
    finally:
        subprocess.run(["vgremove", "-ff", "-y", "vgdata"], capture_output=True)
    got_pvs = {r["pv_name"]: r["pv_uuid"] for r in pvs["report"][0]["pv"]}
    assert got_pvs == {f"{a}p1": "C8K0Cf-yRvG-E0SY-Mcya-QHMQ-x5CG-rk7nQf",
                       b: "9pFK2p-WTm1-dApI-gRSz-Ecqd-T1mn-WyxhXo"}
    got_lvs = {}
    for r in lvs["report"][0]["lv"]:
        got_lvs.setdefault(r["lv_name"], (r["lv_uuid"], r["lv_size"], []))[2].append(r["devices"])
    want = {lv["name"]: (lv["uuid"], f"{lv['size']}B") for lv in layout["lvm"][0]["logical_volumes"]}
    assert {k: v[:2] for k, v in got_lvs.items()} == want
    # every LV on the same extents of the same PVs as before
    assert got_lvs["home"][2] == [f"{b}(0)", f"{a}p1(10)"]
    assert got_lvs["striped"][2] == [f"{a}p1(12),{b}(5)"]
