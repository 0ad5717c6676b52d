"""Two original disks recreated on ONE larger new disk (--map A=N --map B=N).

The sources, built with the real tools on loop disks and collected into one
bundle per pair (amdr-essentials collect --disk X --disk Y), then blanked:

  GPT pair:  A: GPT, a tuned ext4 root (/) and swap;
             B: GPT, xfs on /srv starting 512 sectors into its MiB (start
             2560), a gap, then a tuned ext4 on /home filling the disk.
  MBR pair:  D: ext4 on the whole disk (/srv), collected FIRST;
             C: dos, a primary ext4 root, an extended partition holding an
             ext3 /home and swap.

What must hold (each compared on the new disk collected again): the first
partitioned disk is the anchor and keeps its table (label, id, first-lba)
and every partition; the next disk's partitions follow after the anchor's
end shifted by whole MiBs (gaps and in-MiB alignment kept), numbered on,
with their GPT identities; a whole-disk filesystem becomes a partition of
its disk's size (MBR: in a free primary slot); the usual size policy then
grows the last partition; every filesystem keeps its UUID, label and
tuning and is mounted where the layout says.  A disk too small for both is
refused before anything is touched, plan --json shows the merged table and
touches nothing, and mount finds both originals on the merged disk again
(without --map, and with it).

Only loop devices made here are touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from essentials.bundle import sha256_file
from tests.lab.lab import sh

from .helpers import amdr
from .test_diskinit_roundtrip import SIZE_KEYS, Loops, layout_of
from .test_mount_umount import created, mount_table

pytestmark = pytest.mark.integration

MIB = 1 << 20
GRAIN = 2048  # sectors in a MiB
GPT_TAIL = 33  # the backup GPT: 32 sectors of entries and its header (512-byte sectors)
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
SWAPT = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"


def rnd() -> str:
    return str(uuid.uuid4())


# random per run: mount finds disks by these, and the kernel refuses a second
# mounted xfs with a UUID another (test) disk has
A_PTUUID, B_PTUUID = rnd().upper(), rnd().upper()
A_P1, A_P2, B_P1, B_P2 = (rnd().upper() for _ in range(4))
ROOT_UUID, ASWAP_UUID, XFS_UUID, HOME_UUID = rnd(), rnd(), rnd(), rnd()
C_ROOT_UUID, C_HOME_UUID, C_SWAP_UUID, WHOLE_UUID = rnd(), rnd(), rnd(), rnd()
C_LABEL_ID = f"0x{uuid.uuid4().int & 0xFFFFFFFF | 0x10000000:08x}"

A_SCRIPT = f"""label: gpt
label-id: {A_PTUUID}
size=100MiB, type={LINUX}, name="root", uuid={A_P1}, attrs="LegacyBIOSBootable"
size=16MiB, type={SWAPT}, name="swap", uuid={A_P2}
"""
A_MIB = 1 + 100 + 16 + 1
# xfs 512 sectors into its MiB, a gap of 1000 sectors, then ext4 to the end
B_SCRIPT = f"""label: gpt
label-id: {B_PTUUID}
start=2560, size=320MiB, type={LINUX}, name="srv", uuid={B_P1}, attrs="GUID:63"
start=658920, type={LINUX}, name="home", uuid={B_P2}
"""
B_MIB = 388
MERGED_MIB = A_MIB + B_MIB + 64  # larger than both together
SMALL_MIB = 400  # holds A, holds B, not both (and B's xfs would end past it)

C_SCRIPT = f"""label: dos
label-id: {C_LABEL_ID}
size=60MiB, type=83, bootable
type=5
size=30MiB, type=83
size=8MiB, type=82
"""
C_MIB = 128
D_MIB = 40


# -- the sources, one bundle per pair ---------------------------------------------------------

def collect_disks(ld: Loops, disks: list[str], mnt: Path, name: str) -> Path:
    out = ld.base / name
    args = ["collect", "--out", out, "--only", "layout"]
    for d in disks:
        args += ["--disk", d]
    p = amdr("amdr-essentials", *args, "--root", mnt)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def build_gpt_pair(ld: Loops):
    a = ld.attach("merge-a", A_MIB)
    b = ld.attach("merge-b", B_MIB)
    root, swap = ld.partition(a, A_SCRIPT, [1, 2])
    srv, home = ld.partition(b, B_SCRIPT, [1, 2])
    sh(["mkfs.ext4", "-q", "-F", "-U", ROOT_UUID, "-L", "root", "-m", "3", "-b", "2048",
        "-I", "512", "-O", "^metadata_csum,^huge_file,inline_data", root])
    sh(["tune2fs", "-c", "25", "-i", "2w", "-e", "remount-ro", "-o", "^acl", root])
    sh(["mkswap", "-U", ASWAP_UUID, "-L", "aswap", swap])
    sh(["mkfs.xfs", "-q", "-f", "-m", f"uuid={XFS_UUID}", "-L", "srv", "-i", "size=1024", srv])
    sh(["mkfs.ext4", "-q", "-F", "-U", HOME_UUID, "-L", "home", "-m", "2", "-b", "1024",
        "-I", "256", "-E", "stride=4,stripe_width=8", home])
    sh(["tune2fs", "-c", "30", "-o", "^user_xattr", home])
    mnt = ld.base / "gpt-src"
    mnt.mkdir()
    sh(["mount", root, str(mnt)])
    for sub, dev in (("srv", srv), ("home", home)):
        (mnt / sub).mkdir()
        sh(["mount", dev, str(mnt / sub)])
    bundle = collect_disks(ld, [a, b], mnt, "gpt-bundle")
    ld.umount_all(mnt)
    return a, b, bundle


def build_mbr_pair(ld: Loops):
    c = ld.attach("merge-c", C_MIB)
    d = ld.attach("merge-d", D_MIB)
    # the extended partition's node too: a stale one would be probed by blkid
    root, _, home, swap = ld.partition(c, C_SCRIPT, [1, 2, 5, 6])
    sh(["mkfs.ext4", "-q", "-F", "-U", C_ROOT_UUID, "-L", "croot", "-m", "4", root])
    sh(["mkfs.ext3", "-q", "-F", "-U", C_HOME_UUID, "-L", "chome", "-b", "1024", home])
    sh(["mkswap", "-U", C_SWAP_UUID, "-L", "cswap", swap])
    sh(["mkfs.ext4", "-q", "-F", "-U", WHOLE_UUID, "-L", "wdata", "-b", "4096", "-m", "0",
        "-I", "256", "-O", "^metadata_csum", "-E", "stride=16,stripe_width=32", d])
    sh(["tune2fs", "-c", "7", "-e", "continue", d])
    mnt = ld.base / "mbr-src"
    mnt.mkdir()
    sh(["mount", root, str(mnt)])
    for sub, dev in (("home", home), ("srv", d)):
        (mnt / sub).mkdir()
        sh(["mount", dev, str(mnt / sub)])
    # the whole-disk one named first: the partitioned disk must still be the anchor
    bundle = collect_disks(ld, [d, c], mnt, "mbr-bundle")
    ld.umount_all(mnt)
    return c, d, bundle


@pytest.fixture(scope="module")
def src():
    ld = Loops()
    try:
        ld.a, ld.b, ld.gpt_bundle = build_gpt_pair(ld)
        ld.c, ld.d, ld.mbr_bundle = build_mbr_pair(ld)
        assert [d["path"] for d in layout_of(ld.gpt_bundle)["disks"]] == [ld.a, ld.b]
        assert [d["path"] for d in layout_of(ld.mbr_bundle)["disks"]] == [ld.d, ld.c]
        # the original disks are lost: only the bundles remain
        for loop in (ld.a, ld.b, ld.c, ld.d):
            ld.blank(loop)
        yield ld
    finally:
        ld.cleanup()


def release(ld: Loops, loop: str, target: Path | None = None):
    if target is not None:
        ld.umount_all(target)
    with open("/proc/self/mounts") as f:  # whatever else holds its partitions
        mps = [ln.split()[1] for ln in f if ln.split()[0].startswith(loop + "p")]
    for m in sorted(mps, key=len, reverse=True):
        if subprocess.run(["umount", m], capture_output=True).returncode:
            subprocess.run(["umount", "-l", m], capture_output=True)
    ld.blank(loop)


@pytest.fixture
def disk(src):
    """New blank loop disks for one test, wiped and detached after it."""
    made = []

    def attach(name: str, mib: int) -> str:
        loop = src.attach(name, mib)
        made.append(loop)
        return loop

    yield attach
    for loop in made:
        release(src, loop)


@pytest.fixture(scope="module")
def merged(src):
    """The GPT pair recreated on one new disk by amdr-recover diskinit, mounted."""
    new = src.attach("merged", MERGED_MIB)
    target = src.base / "merged-target"
    p = amdr("amdr-recover", "diskinit", "--bundle", src.gpt_bundle, "--target", target,
             "--map", f"{src.a}={new}", "--map", f"{src.b}={new}", "--yes")
    try:
        yield SimpleNamespace(new=new, target=target, run=p)
    finally:
        release(src, new, target)


# -- comparing ------------------------------------------------------------------------------

def norm(p: dict) -> dict:
    """A partition's identity (GUIDs compared without regard to case)."""
    out = {}
    for k in ("type", "uuid", "name", "attrs"):
        v = p.get(k)
        out[k] = v.upper() if isinstance(v, str) and k in ("type", "uuid") else v
    return out


def end(p: dict) -> int:
    return p["start"] + p["size"]


def check_gpt_merge(parts: list[dict], a_pt: dict, b_pt: dict, new_sectors: int):
    """parts (number, start, size, type, uuid, name, attrs: collected again or as
    planned) are A's followed by B's, B shifted by whole MiBs, the last grown."""
    by_num = {p["number"]: p for p in parts}
    a_parts = sorted(a_pt["partitions"], key=lambda p: p["number"])
    b_parts = sorted(b_pt["partitions"], key=lambda p: p["start"])
    assert len(by_num) == len(parts) == len(a_parts) + len(b_parts)
    for p in a_parts:  # the anchor's, as they were (A's last is swap: not resized)
        q = by_num[p["number"]]
        assert (q["start"], q["size"], norm(q)) == (p["start"], p["size"], norm(p))
    top = max(p["number"] for p in a_parts)
    assert sorted(by_num) == [p["number"] for p in a_parts] + list(
        range(top + 1, top + 1 + len(b_parts)))
    appended = [by_num[top + 1 + i] for i in range(len(b_parts))]
    for q, p in zip(appended, b_parts):
        assert norm(q) == norm(p)
    offsets = {q["start"] - p["start"] for q, p in zip(appended, b_parts)}
    assert len(offsets) == 1, offsets  # gaps kept
    [offset] = offsets
    assert offset % GRAIN == 0, offset  # in-MiB alignment kept
    boundary = -(-max(end(p) for p in a_parts) // GRAIN) * GRAIN
    assert boundary <= appended[0]["start"] < boundary + GRAIN, (boundary, appended[0])
    for q, p in zip(appended[:-1], b_parts[:-1]):
        assert q["size"] == p["size"]
    # the last grows to the end of the new disk (its end aligned down to 1 MiB)
    assert end(appended[-1]) == (new_sectors - GPT_TAIL) // GRAIN * GRAIN
    assert appended[-1]["size"] > b_parts[-1]["size"]


def filesystems(layout: dict, resized: set = frozenset()) -> dict:
    """uuid -> what must come back, and where it is: (disk path, partition
    number or None for the whole disk)."""
    where = {}
    for d in layout["disks"]:
        where[d["id"]] = (d["path"], None)
        for p in (d.get("ptable") or {}).get("partitions") or []:
            where[p["id"]] = (d["path"], p["number"])
    out = {}
    for f in layout["filesystems"]:
        params = dict(f["params"])
        if f["uuid"] in resized:
            for k in SIZE_KEYS:
                params.pop(k, None)
        if "reserved_percent" in params:  # blocks * pct / 100, rounded to a block
            params["reserved_percent"] = round(params["reserved_percent"], 1)
        out[f["uuid"]] = {"type": f["type"], "label": f["label"],
                          "mountpoint": f["mountpoint"], "params": params,
                          "at": where[f["device"]]}
    return out


def assert_filesystems(before: dict, after: dict, new: str, numbers: dict[str, int],
                       resized: set = frozenset()):
    b, a = filesystems(before, resized), filesystems(after, resized)
    assert set(a) == set(b) == set(numbers)
    for u, want in b.items():
        got = a[u]
        assert got["at"] == (new, numbers[u]), (u, got["at"])
        assert {k: v for k, v in got.items() if k != "at"} == \
            {k: v for k, v in want.items() if k != "at"}, u


def tune2fs(part: str, key: str) -> str:
    return next(ln.split(":", 1)[1].strip() for ln in sh(["tune2fs", "-l", part]).splitlines()
                if ln.startswith(key + ":"))




def sectors(loop: str) -> int:
    return int(sh(["blockdev", "--getsize64", loop])) // 512


def recollect(ld: Loops, new: str, target: Path, name: str) -> dict:
    p = amdr("amdr-essentials", "collect", "--out", ld.base / name, "--only", "layout",
             "--disk", new, "--root", target)
    assert p.returncode == 0, p.stdout + p.stderr
    return layout_of(ld.base / name)


def mapping_line(stdout: str, original: str) -> str:
    return next((ln for ln in stdout.splitlines() if ln.strip().startswith(f"{original} (")),
                f"(no mapping line for {original})")


# -- 1: GPT + GPT onto one larger disk --------------------------------------------------------

def test_two_gpt_disks_onto_one_larger_disk(src, merged):
    new, target = merged.new, merged.target
    assert merged.run.returncode == 0, merged.run.stdout + merged.run.stderr
    assert sorted((s, mp) for s, mp, _ in mount_table(target)) == sorted([
        (f"{new}p1", str(target)), (f"{new}p3", f"{target}/srv"),
        (f"{new}p4", f"{target}/home")])
    for part, u in ((f"{new}p1", ROOT_UUID), (f"{new}p2", ASWAP_UUID), (f"{new}p3", XFS_UUID),
                    (f"{new}p4", HOME_UUID)):
        assert f"UUID={u}" in sh(["blkid", "-p", "-o", "export", part]), part
    after = recollect(src, new, target, "merged-after")
    before = layout_of(src.gpt_bundle)
    a_disk, b_disk = before["disks"]
    [disk] = after["disks"]
    assert disk["path"] == new
    pt = disk["ptable"]
    # the anchor's table
    assert (pt["label"], pt["id"].upper(), pt["first_lba"]) == (
        "gpt", A_PTUUID, a_disk["ptable"]["first_lba"])
    check_gpt_merge(pt["partitions"], a_disk["ptable"], b_disk["ptable"], sectors(new))
    # B's partitions numbered on after A's, with their names and PARTUUIDs
    names = {p["number"]: (p["name"], p["uuid"].upper()) for p in pt["partitions"]}
    assert names == {1: ("root", A_P1), 2: ("swap", A_P2), 3: ("srv", B_P1), 4: ("home", B_P2)}
    assert_filesystems(before, after, new,
                       {ROOT_UUID: 1, ASWAP_UUID: 2, XFS_UUID: 3, HOME_UUID: 4},
                       resized={HOME_UUID})
    # the tuning, spelled out (so the comparison cannot agree with itself by accident)
    fs = {f["uuid"]: f for f in after["filesystems"]}
    root = fs[ROOT_UUID]["params"]
    assert (root["block_size"], root["inode_size"], root["max_mount_count"]) == (2048, 512, 25)
    assert "inline_data" in root["features"] and "metadata_csum" not in root["features"]
    home = fs[HOME_UUID]["params"]
    assert (home["block_size"], home["raid_stride"], home["raid_stripe_width"]) == (1024, 4, 8)
    assert home["max_mount_count"] == 30 and home["default_mount_options"] == ["acl"]
    assert fs[XFS_UUID]["params"]["inode_size"] == 1024 and fs[XFS_UUID]["label"] == "srv"
    assert fs[ASWAP_UUID]["label"] == "aswap"
    # the ext4 that grew was made at its new size
    old_home = next(p for p in b_disk["ptable"]["partitions"] if p["number"] == 2)
    fs_bytes = int(tune2fs(f"{new}p4", "Block count")) * 1024
    assert fs_bytes >= old_home["size"] * 512 + 50 * MIB
    assert fs_bytes > int(sh(["blockdev", "--getsize64", f"{new}p4"])) - 8 * MIB


# -- 2: MBR with logical partitions + a whole-disk ext4 ---------------------------------------

def test_mbr_anchor_and_a_whole_disk_filesystem(src, disk, tmp_path):
    before = layout_of(src.mbr_bundle)
    d_disk, c_disk = before["disks"]
    assert d_disk["ptable"] is None and c_disk["ptable"]["label"] == "dos"
    c_parts = c_disk["ptable"]["partitions"]
    boundary = -(-max(end(p) for p in c_parts) // GRAIN) * GRAIN
    whole = d_disk["size"] // 512
    # exactly what the merge needs: nothing grows, nothing shrinks
    need = (boundary + whole) * 512
    assert need % MIB == 0
    new = disk("mbr-merged", need // MIB)
    target = tmp_path / "target"
    p = amdr("amdr-recover", "diskinit", "--bundle", src.mbr_bundle, "--target", target,
             "--map", f"{src.d}={new}", "--map", f"{src.c}={new}", "--yes")
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        assert sorted((s, mp) for s, mp, _ in mount_table(target)) == sorted([
            (f"{new}p1", str(target)), (f"{new}p5", f"{target}/home"),
            (f"{new}p3", f"{target}/srv")])
        after = recollect(src, new, target, "mbr-merged-after")
    finally:
        src.umount_all(target)
    [got] = after["disks"]
    pt = got["ptable"]
    assert (pt["label"], pt["id"].lower()) == ("dos", C_LABEL_ID)
    by_num = {q["number"]: q for q in pt["partitions"]}
    assert sorted(by_num) == [1, 2, 3, 5, 6]
    keys = ("start", "size", "type", "bootable", "kind")
    for q in c_parts:  # the anchor's, where and as they were
        assert {k: by_num[q["number"]].get(k) for k in keys} == {k: q.get(k) for k in keys}
    # the whole-disk ext4: a new primary in the first free slot, after the extended one
    p3 = by_num[3]
    assert (p3["start"], p3["size"], p3["type"], p3.get("kind")) == (
        boundary, whole, "83", "primary")
    assert not p3.get("bootable")
    assert_filesystems(before, after, new,
                       {C_ROOT_UUID: 1, C_HOME_UUID: 5, C_SWAP_UUID: 6, WHOLE_UUID: 3})
    w = next(f for f in after["filesystems"] if f["uuid"] == WHOLE_UUID)
    assert (w["label"], w["mountpoint"]) == ("wdata", "/srv")
    assert (w["params"]["block_size"], w["params"]["raid_stride"],
            w["params"]["raid_stripe_width"], w["params"]["max_mount_count"]) == (4096, 16, 32, 7)
    assert w["params"]["errors_behavior"] == "continue"


# -- 3: a disk too small for both ------------------------------------------------------------

MARKER = (b"amdr-merge-test: must survive a refused diskinit\n" * 11)[:512]


def test_disk_too_small_for_both_is_refused_untouched(src, disk, tmp_path):
    new = disk("merge-small", SMALL_MIB)
    size = SMALL_MIB * MIB
    with open(new, "r+b") as f:  # where a wipe or a partition table would write
        for off in (0, 512, 1024, MIB, size - 512):
            f.seek(off)
            f.write(MARKER)
        f.flush()
        os.fsync(f.fileno())
    before = (sha256_file(new), sh(["blkid", "-p", "-o", "export", new], check=False))
    target = tmp_path / "target"
    p = amdr("amdr-recover", "diskinit", "--bundle", src.gpt_bundle, "--target", target,
             "--map", f"{src.a}={new}", "--map", f"{src.b}={new}", "--yes")
    assert p.returncode == 3, p.stdout + p.stderr
    err = p.stderr
    assert "nothing was changed" in err
    assert f"{new} is too small" in err, err
    assert f"{new} has {size} bytes" in err or f"{new} has {size} " in err, err  # what it has
    # and what is needed: B's partitions after A's (shifted by whole MiBs), the backup GPT
    a_disk, b_disk = layout_of(src.gpt_bundle)["disks"]
    a_end = max(end(q) for q in a_disk["ptable"]["partitions"])
    first = min(q["start"] for q in b_disk["ptable"]["partitions"])
    offset = -(-a_end // GRAIN) * GRAIN + first % GRAIN - first
    need = (max(end(q) for q in b_disk["ptable"]["partitions"]) + offset + GPT_TAIL) * 512
    assert f"its partitions took {need} bytes" in err, (need, err)
    assert (sha256_file(new), sh(["blkid", "-p", "-o", "export", new], check=False)) == before
    with open(new, "rb") as f:
        assert f.read(512) == MARKER
    assert mount_table(target) == []
    assert not target.exists() and not (tmp_path / "target.amdr").exists()


# -- 4: plan --json -----------------------------------------------------------------------------

def test_plan_json_shows_the_merged_table_and_touches_nothing(src, disk, tmp_path):
    new = disk("merge-plan", MERGED_MIB)
    before = (sha256_file(new), sh(["blkid", "-p", "-o", "export", new], check=False))
    target = tmp_path / "t"
    p = amdr("amdr-recover", "plan", "--json", "--bundle", src.gpt_bundle, "--target", target,
             "--map", f"{src.a}={new}", "--map", f"{src.b}={new}")
    # a layout-only bundle: the disk plan, and why no restore can be planned (exit 1)
    assert p.returncode == 1, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert (sha256_file(new), sh(["blkid", "-p", "-o", "export", new], check=False)) == before
    assert not target.exists() and not (tmp_path / "t.amdr").exists()
    assert [e["disk"] for e in doc["errors"]] == [None]
    assert "no Amanda catalog" in doc["errors"][0]["message"]

    assert doc["mapping"] == [
        {"disk": "disk0", "original": src.a, "size": A_MIB * MIB, "present": new,
         "reason": "--map"},
        {"disk": "disk1", "original": src.b, "size": B_MIB * MIB, "present": new,
         "reason": "--map"}]
    actions = doc["disks"]
    ids = [a["id"] for a in actions]
    assert len(set(ids)) == len(ids)
    assert {a["details"]["device"] for a in actions if a["type"] == "wipe"} == {new}
    [table] = [a for a in actions if a["type"] == "partition_table"]
    det = table["details"]
    assert det["device"] == new and det["label"] == "gpt"
    assert det["label_id"].upper() == A_PTUUID
    layout = layout_of(src.gpt_bundle)
    a_disk, b_disk = layout["disks"]
    parts = det["partitions"]
    assert [q["path"] for q in parts] == [f"{new}p{n}" for n in (1, 2, 3, 4)]
    assert [q["number"] for q in parts] == [1, 2, 3, 4]
    check_gpt_merge(parts, a_disk["ptable"], b_disk["ptable"], MERGED_MIB * MIB // 512)
    assert all(f"{new}p{n}" in table["does"] for n in (1, 2, 3, 4))
    assert any("grows" in n for n in table["notes"]), table["notes"]
    # the script sfdisk would read: A's table id, every PARTUUID
    script = table["stdin"][0]
    assert f"LABEL-ID: {A_PTUUID}" in script.upper()
    for u in (A_P1, A_P2, B_P1, B_P2):
        assert u in script.upper()
    formats = {a["details"]["uuid"]: a["details"]["path"] for a in actions
               if a["type"] == "format"}
    assert formats == {ROOT_UUID: f"{new}p1", ASWAP_UUID: f"{new}p2", XFS_UUID: f"{new}p3",
                       HOME_UUID: f"{new}p4"}
    mounts = {a["details"]["path"]: a["details"]["target"] for a in actions
              if a["type"] == "mount"}
    assert mounts == {f"{new}p1": str(target), f"{new}p3": f"{target}/srv",
                      f"{new}p4": f"{target}/home"}
    for i, a in enumerate(actions):
        assert all(r in ids[:i] for r in a["refs"]), a  # earlier actions only


# -- 5: umount, then mount again (without --map, and with it) ----------------------------------

def test_mount_finds_both_originals_on_the_merged_disk(src, merged):
    new, target = merged.new, merged.target
    assert merged.run.returncode == 0, merged.run.stdout + merged.run.stderr
    mounted = sorted((s, mp) for s, mp, _ in mount_table(target))
    assert mounted == sorted([(f"{new}p1", str(target)), (f"{new}p3", f"{target}/srv"),
                              (f"{new}p4", f"{target}/home")])
    (target / "on-root").write_text("A\n")
    (target / "srv" / "on-xfs").write_text("B's xfs\n")
    (target / "home" / "on-ext4").write_text("B's ext4\n")
    stamps = (created(f"{new}p1"), created(f"{new}p4"))

    def same_again(p):
        assert p.returncode == 0, p.stdout + p.stderr
        assert "mkfs" not in p.stdout and "sfdisk" not in p.stdout and "wipefs" not in p.stdout
        assert sorted((s, mp) for s, mp, _ in mount_table(target)) == mounted
        assert (target / "on-root").read_text() == "A\n"
        assert (target / "srv" / "on-xfs").read_text() == "B's xfs\n"
        assert (target / "home" / "on-ext4").read_text() == "B's ext4\n"
        assert (created(f"{new}p1"), created(f"{new}p4")) == stamps

    def umount():
        p = amdr("amdr-recover", "umount", "--target", target)
        assert p.returncode == 0, p.stdout + p.stderr
        assert mount_table(target) == []

    umount()
    # no --map: A by its partition table id, B by its partitions' PARTUUIDs
    p = amdr("amdr-recover", "mount", "--bundle", src.gpt_bundle, "--target", target)
    for orig, why in ((src.a, f"partition table id {A_PTUUID}"), (src.b, "PARTUUID")):
        line = mapping_line(p.stdout, orig)
        assert f") -> {new}  chosen by: " in line and why in line, p.stdout + p.stderr
    assert "chosen by: --map" not in p.stdout
    same_again(p)
    umount()
    # both named onto the one disk
    p = amdr("amdr-recover", "mount", "--bundle", src.gpt_bundle, "--target", target,
             "--map", f"{src.a}={new}", "--map", f"{src.b}={new}")
    for orig in (src.a, src.b):
        assert mapping_line(p.stdout, orig).endswith(f") -> {new}  chosen by: --map"), \
            p.stdout + p.stderr
    same_again(p)
    umount()
