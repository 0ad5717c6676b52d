"""The layout collector against real loop-device disks made with the real tools.

Three disks are built once for the module:
  mbr: dos table, primary ext4 (tuned), an extended partition holding a
       logical xfs, vfat and swap;
  gpt: btrfs with subvolumes and a non-default default subvolume (mounted
       while collecting), an LVM physical volume, a LUKS2 container;
  pv:  a whole-disk LVM physical volume, so the volume group spans two disks.
There is no device-mapper here, so the logical volumes are created without
activation (`global/activation=0`): the metadata is real, the LVs have no
device nodes.  Only these loop devices are collected, never the machine's
own disk.
"""

from __future__ import annotations

import json
import os
import uuid
import random
import shutil
import string
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from essentials.collectors import layout as layout_collector
from essentials.collectors.base import Context
from essentials.layout import rawdir, schema
from essentials.runner import Runner
from recovery.disks import devnodes
from tests.lab.lab import sh

from .helpers import amdr

pytestmark = pytest.mark.integration

LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
LVM_PART = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
LUKS_PART = "CA7D7CCB-63ED-4C53-861C-1742536059CC"
EXT_UUID = "3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
XFS_UUID = "6e0a7b2c-1d3e-4f5a-9b8c-7d6e5f4a3b2c"
SWAP_UUID = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
BTRFS_UUID = str(uuid.uuid4())  # random per run: the kernel refuses a duplicate btrfs UUID
LUKS_UUID = "2b5e9d3c-6a1f-4e7b-9c8d-0f1e2d3c4b5a"
# no activation (no device-mapper here), no backups in the host's /etc/lvm
LVM_CONFIG = "global { activation = 0 } backup { backup = 0 archive = 0 }"

MBR_SCRIPT = """label: dos
label-id: 0x1a2b3c4d
size=60MiB, type=83, bootable
type=5
size=320MiB, type=83
size=40MiB, type=c
size=20MiB, type=82
"""
GPT_SCRIPT = f"""label: gpt
size=200MiB, type={LINUX}, name="btr"
size=60MiB, type={LVM_PART}, name="pv"
size=40MiB, type={LUKS_PART}, name="luks"
"""


class LoopDisks:
    """Loop disks under one temporary directory; cleanup() undoes everything."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="amdr-layout-", dir="/var/tmp"))
        self.loops: list[str] = []
        self.vgs: list[str] = []

    def attach(self, name: str, mib: int) -> str:
        img = self.base / f"{name}.img"
        with open(img, "wb") as f:
            f.truncate(mib << 20)
        loop = sh(["losetup", "-f", "--show", str(img)]).strip()
        self.loops.append(loop)
        return loop

    def partition(self, loop: str, script: str, numbers: list[int]) -> list[str]:
        sh(["sfdisk", "-q", "--no-reread", loop], input=script)
        sh(["partx", "-a", loop], check=False)  # no udev: tell the kernel ourselves
        sh(["partx", "-u", loop], check=False)
        parts = [f"{loop}p{n}" for n in numbers]
        missing = devnodes.wait_for(parts)
        assert not missing, f"{missing} did not appear"
        return parts

    def lvm(self, *argv):
        env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
        p = subprocess.run(list(argv) + ["--config", LVM_CONFIG], capture_output=True,
                           text=True, env=env)
        assert p.returncode == 0, f"{argv}: {p.stderr}"

    def cleanup(self):
        with open("/proc/self/mounts") as f:
            mps = [ln.split()[1] for ln in f if ln.split()[1].startswith(str(self.base))]
        for m in sorted(mps, key=len, reverse=True):
            if subprocess.run(["umount", m], capture_output=True).returncode:
                subprocess.run(["umount", "-l", m], capture_output=True)
        env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
        for vg in self.vgs:
            subprocess.run(["vgremove", "-ff", "-y", vg, "--config", LVM_CONFIG],
                           capture_output=True, env=env)
            for p in [Path("/etc/lvm/backup") / vg, *Path("/etc/lvm/archive").glob(f"{vg}_*")]:
                p.unlink(missing_ok=True)
        for loop in reversed(self.loops):
            subprocess.run(["partx", "-d", loop], capture_output=True)
            subprocess.run(["losetup", "-d", loop], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def build(ld: LoopDisks) -> dict:
    """Make the three disks; returns their names and what was put on them."""
    suffix = "".join(random.choices(string.ascii_lowercase, k=6))
    mnt = ld.base / "mnt"
    mnt.mkdir()
    mbr = ld.attach("mbr", 500)
    m1, _, m5, m6, m7 = ld.partition(mbr, MBR_SCRIPT, [1, 2, 5, 6, 7])
    sh(["mkfs.ext4", "-q", "-F", "-U", EXT_UUID, "-L", "mbr-root", "-m", "3",
        "-O", "^metadata_csum,^huge_file,inline_data", "-b", "2048", "-I", "512", m1])
    sh(["tune2fs", "-c", "25", "-i", "2w", m1])
    sh(["mkfs.xfs", "-q", "-f", "-m", f"uuid={XFS_UUID}", "-L", "mbr-xfs", m5])
    sh(["mkfs.vfat", "-F", "32", "-i", "4A3B2C1D", "-n", "MBRFAT", m6])
    sh(["mkswap", "-U", SWAP_UUID, "-L", "mbr-swap", m7])

    gpt = ld.attach("gpt", 400)
    g1, g2, g3 = ld.partition(gpt, GPT_SCRIPT, [1, 2, 3])
    sh(["mkfs.btrfs", "-q", "-f", "-U", BTRFS_UUID, "-L", "gpt-btrfs", g1])
    sh(["mount", g1, str(mnt)])
    for sub in ("@", "@home", "@/var-lib"):
        sh(["btrfs", "subvolume", "create", str(mnt / sub)])
    sh(["btrfs", "subvolume", "snapshot", "-r", str(mnt / "@home"), str(mnt / "@home-snap")])
    sh(["btrfs", "subvolume", "set-default", str(mnt / "@")])
    sh(["umount", str(mnt)])
    sh(["mount", g1, str(mnt)])  # the default subvolume, @
    (mnt / "home").mkdir()
    sh(["mount", "-o", "subvol=@home", g1, str(mnt / "home")])
    (mnt / "boot").mkdir()
    sh(["mount", m1, str(mnt / "boot")])
    (mnt / "srv").mkdir()
    sh(["mount", m5, str(mnt / "srv")])
    (mnt / "boot" / "efi").mkdir()  # vfat cannot be mounted on this kernel

    pv = ld.attach("pv", 64)
    vg = f"amdrvg{suffix}"
    ld.lvm("pvcreate", "-ff", "-y", g2)
    ld.lvm("pvcreate", "-ff", "-y", pv)
    ld.lvm("vgcreate", "-s", "4m", vg, g2, pv)
    ld.vgs.append(vg)
    ld.lvm("lvcreate", "-an", "-Zn", "-L", "24m", "-n", "root", vg, g2)
    ld.lvm("lvcreate", "-an", "-Zn", "-L", "16m", "-n", "data", vg, pv)
    ld.lvm("lvcreate", "-an", "-Zn", "-i", "2", "-I", "64k", "-L", "16m", "-n", "striped", vg)

    key = ld.base / "luks.key"
    key.write_text("not-a-secret")
    sh(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
        "--pbkdf-force-iterations", "1000", "--label", "gpt-crypt", "--uuid", LUKS_UUID,
        "--key-file", str(key), g3])

    etc = mnt / "etc"  # the collected system's: read under its root, not the host's
    etc.mkdir()
    (etc / "fstab").write_text(
        f"# test fstab\nUUID={BTRFS_UUID} / btrfs defaults 0 0\n"
        f"UUID={BTRFS_UUID} /home btrfs subvol=@home 0 0\n"
        f"LABEL=mbr-root /boot ext4 defaults 0 2\n"
        f"UUID=4A3B-2C1D /boot/efi vfat umask=0077 0 1\n"
        f"PARTUUID=1a2b3c4d-05 /srv xfs defaults 0 2\n"
        f"/dev/mapper/cryptdata /data ext4 noauto 0 0\n"
        f"UUID={SWAP_UUID} none swap sw 0 0\n")
    (etc / "crypttab").write_text(f"cryptdata UUID={LUKS_UUID} none luks,discard\n")
    return {"mbr": mbr, "gpt": gpt, "pv": pv, "vg": vg, "mnt": mnt, "etc": etc}


@pytest.fixture(scope="module")
def disks():
    ld = LoopDisks()
    try:
        info = build(ld)
        info["base"] = ld.base
        yield info
    finally:
        ld.cleanup()


@pytest.fixture(scope="module")
def collected(disks):
    out = disks["base"] / "bundle"
    out.mkdir(mode=0o700)
    ctx = Context(Runner(), out, {"disks": [disks["mbr"], disks["gpt"], disks["pv"]],
                                  "luks_header": True}, str(disks["mnt"]), disks["etc"])
    summary = layout_collector.collect(ctx)
    layout = yaml.safe_load((out / "layout.yaml").read_text())
    return {"out": out, "ctx": ctx, "summary": summary, "layout": layout}


def fs_by_label(layout, label):
    return next(f for f in layout["filesystems"] if f["label"] == label)


def test_only_the_named_disks(collected, disks):
    layout = collected["layout"]
    assert [d["path"] for d in layout["disks"]] == [disks["mbr"], disks["gpt"], disks["pv"]]
    assert schema.validate(layout) is layout
    assert list(layout) == ["version", "root", "disks", "filesystems", "lvm", "md", "luks",
                            "multipath", "fstab", "crypttab", "boot", "warnings"]
    assert collected["summary"]["disks"] == 3
    assert "/dev/vda" not in (collected["out"] / "layout.yaml").read_text()


def test_mbr_table(collected, disks):
    d = collected["layout"]["disks"][0]
    pt = d["ptable"]
    assert (pt["label"], pt["id"]) == ("dos", "0x1a2b3c4d")
    got = [(p["number"], p["type"], p["kind"], p["bootable"]) for p in pt["partitions"]]
    assert got == [(1, "83", "primary", True), (2, "5", "extended", None),
                   (5, "83", "logical", None), (6, "c", "logical", None),
                   (7, "82", "logical", None)]
    assert [p["uuid"] for p in pt["partitions"]][2] == "1a2b3c4d-05"


def test_ext4_tuning(collected):
    f = fs_by_label(collected["layout"], "mbr-root")
    assert (f["type"], f["uuid"], f["device"]) == ("ext4", EXT_UUID, "disk0p1")
    assert f["mountpoint"] == "/boot"
    p = f["params"]
    assert p["reserved_percent"] == 3.0
    assert p["max_mount_count"] == 25
    assert p["check_interval"] == 14 * 86400
    assert (p["block_size"], p["inode_size"]) == (2048, 512)
    assert "inline_data" in p["features"]
    assert "metadata_csum" not in p["features"] and "huge_file" not in p["features"]
    assert f["used"] > 0  # from the superblock: what a smaller disk must still hold


def test_logical_xfs_vfat_swap(collected):
    layout = collected["layout"]
    x = fs_by_label(layout, "mbr-xfs")
    assert (x["type"], x["uuid"], x["device"], x["mountpoint"]) == (
        "xfs", XFS_UUID, "disk0p5", "/srv")
    assert x["params"]["block_size"] == 4096 and x["params"]["crc"] == 1
    assert x["used"] > 0  # statvfs of its mountpoint (the superblock does not say)
    v = fs_by_label(layout, "MBRFAT")
    assert (v["type"], v["uuid"], v["device"], v["mountpoint"]) == (
        "vfat", "4A3B-2C1D", "disk0p6", None)
    assert v["params"] == {"fat_size": 32}
    s = fs_by_label(layout, "mbr-swap")
    assert (s["type"], s["uuid"], s["device"], s["active"]) == ("swap", SWAP_UUID, "disk0p7",
                                                                False)


def test_btrfs_subvolumes_while_mounted(collected):
    b = fs_by_label(collected["layout"], "gpt-btrfs")
    assert (b["uuid"], b["device"], b["mountpoint"]) == (BTRFS_UUID, "disk1p1", "/")
    assert b["used"] > 0 and "bytes_used" not in b["params"]
    assert [(m["mountpoint"], m["fsroot"]) for m in b["mounts"]] == [("/", "/@"),
                                                                     ("/home", "/@home")]
    subs = {s["path"]: s for s in b["subvolumes"]}
    assert sorted(subs) == ["@", "@/var-lib", "@home", "@home-snap"]
    assert subs["@/var-lib"]["parent_id"] == subs["@"]["id"]
    assert subs["@home-snap"]["readonly"] and not subs["@home"]["readonly"]
    assert subs["@home-snap"]["parent_uuid"] == subs["@home"]["uuid"]
    assert b["default_subvolume"] == {"id": subs["@"]["id"], "path": "@"}
    assert b["params"]["node_size"] == 16384 and b["params"]["metadata_profile"] == "dup"


def test_lvm(collected, disks):
    layout = collected["layout"]
    # the collector wrote nothing into the host's /etc/lvm (reports are --readonly)
    assert not Path(f"/etc/lvm/backup/{disks['vg']}").exists()
    assert not list(Path("/etc/lvm/archive").glob(f"{disks['vg']}_*"))
    [vg] = layout["lvm"]
    assert vg["name"] == disks["vg"]
    assert vg["extent_size"] == 4 << 20
    assert [(pv["device"], pv["path"]) for pv in vg["physical_volumes"]] == [
        ("disk1p2", disks["gpt"] + "p2"), ("disk2", disks["pv"])]
    lvs = {lv["name"]: lv for lv in vg["logical_volumes"]}
    assert {n: lvs[n]["size"] for n in lvs} == {"root": 24 << 20, "data": 16 << 20,
                                                "striped": 16 << 20}
    assert (lvs["striped"]["stripes"], lvs["striped"]["stripe_size"]) == (2, 64 << 10)
    assert lvs["root"]["path"] == f"/dev/{disks['vg']}/root"
    cfg = collected["out"] / vg["vgcfgbackup"]
    assert cfg.is_file() and oct(cfg.stat().st_mode & 0o777) == "0o600"
    assert f"{disks['vg']} {{" in cfg.read_text()
    types = {f["device"]: f["type"] for f in layout["filesystems"]}
    assert types["disk1p2"] == types["disk2"] == "LVM2_member"


def test_luks_and_header(collected, disks):
    layout = collected["layout"]
    [c] = layout["luks"]
    assert (c["device"], c["uuid"], c["version"], c["label"]) == ("disk1p3", LUKS_UUID, 2,
                                                                  "gpt-crypt")
    assert (c["cipher"], c["key_size"], c["pbkdf"]) == ("aes-xts-plain64", 512, "pbkdf2")
    assert (c["name"], c["open"]) == ("cryptdata", False)  # named by crypttab
    hdr = collected["out"] / c["header_backup"]
    assert hdr.stat().st_size == 16 << 20 and oct(hdr.stat().st_mode & 0o777) == "0o600"
    assert layout["crypttab"] == [{"name": "cryptdata", "device": f"UUID={LUKS_UUID}",
                                   "keyfile": None, "options": "luks,discard", "luks": "luks0"}]


def test_fstab_resolved(collected):
    layout = collected["layout"]
    ids = {f["id"]: f["label"] for f in layout["filesystems"]}
    got = {e["file"]: ids.get(e["filesystem"]) for e in layout["fstab"]}
    assert got == {"/": "gpt-btrfs", "/home": "gpt-btrfs", "/boot": "mbr-root",
                   "/boot/efi": "MBRFAT", "/srv": "mbr-xfs", "/data": None,
                   "none": "mbr-swap"}


def test_boot_and_warnings(collected):
    layout = collected["layout"]
    boot = layout["boot"]
    assert boot["firmware"] == ("uefi" if os.path.isdir("/sys/firmware/efi") else "bios")
    assert boot["cmdline"] == Path("/proc/cmdline").read_text().strip()
    assert layout["warnings"] == collected["ctx"].warnings
    for w in layout["warnings"]:  # only tools that are missing and needed by nothing here
        assert "not installed" in w and "none on the collected disks" in w or "BIOS" in w, w


def test_raw_files_kept(collected, disks):
    raw = collected["out"] / "layout" / "raw"
    index = yaml.safe_load((raw / "index.yaml").read_text())
    for name in ("lsblk.json", "blkid.yaml", "findmnt.json", "findmnt-tree.json", "swaps.txt",
                 "fstab", "crypttab", "lvm-pvs.json", "lvm-vgs.json", "lvm-lvs.json",
                 "cmdline.txt", "by-id.yaml",
                 f"sfdisk-{disks['mbr'].strip('/').replace('/', '_')}.dump"):
        assert (raw / name).is_file(), name
    s = disks["gpt"].strip("/").replace("/", "_")
    for name in (f"luksDump-{s}p3.txt", f"btrfs-subvolumes-{s}p1.txt",
                 f"btrfs-default-{s}p1.txt", f"tune2fs-{disks['mbr'][1:].replace('/', '_')}p1.txt"):
        assert (raw / name).is_file(), name
    assert set(index["xfs_info"]) == {disks["mbr"] + "p5"}
    lsblk = json.loads((raw / "lsblk.json").read_text())
    assert [d["path"] for d in lsblk["blockdevices"]] == [disks["mbr"], disks["gpt"],
                                                          disks["pv"]]
    # the directory alone derives the same layout.yaml
    from essentials.layout.normalise import normalise
    again = normalise(rawdir.load(raw), collected["layout"]["root"])
    assert again == collected["layout"]


def test_unmounted_btrfs_is_a_warning_and_cli_limits_disks(disks, tmp_path):
    """The CLI with one --disk: the other disks are left out; an unmounted
    btrfs is described without its subvolumes, with a warning."""
    mnt = disks["mnt"]
    for m in (mnt / "boot", mnt / "srv", mnt / "home", mnt):
        sh(["umount", str(m)])
    try:
        out = tmp_path / "bundle"
        p = amdr("amdr-essentials", "collect", "--out", out, "--only", "layout",
                 "--disk", disks["gpt"])
        assert p.returncode == 0, p.stdout + p.stderr
        layout = yaml.safe_load((out / "layout.yaml").read_text())
        assert [d["path"] for d in layout["disks"]] == [disks["gpt"]]
        b = fs_by_label(layout, "gpt-btrfs")
        assert b["mountpoint"] is None
        assert b["subvolumes"] is None and b["default_subvolume"] is None
        assert any(f"btrfs {disks['gpt']}p1 is not mounted" in w for w in layout["warnings"])
        # the VG spans a disk that was not collected: said so, and the PV has no id
        [vg] = layout["lvm"]
        assert [pv["device"] for pv in vg["physical_volumes"]] == ["disk0p2", None]
        assert any(disks["pv"] in w and "not collected" in w for w in layout["warnings"])
        manifest = yaml.safe_load((out / "manifest.yaml").read_text())
        assert manifest["collectors"]["layout"]["status"] == "ok"
        assert manifest["collectors"]["layout"]["warnings"] == layout["warnings"]
    finally:
        g1 = disks["gpt"] + "p1"
        sh(["mount", g1, str(mnt)])
        sh(["mount", "-o", "subvol=@home", g1, str(mnt / "home")])
        sh(["mount", disks["mbr"] + "p1", str(mnt / "boot")])
        sh(["mount", disks["mbr"] + "p5", str(mnt / "srv")])
