"""An MBR disk with an extended partition (captured from real tools) -> layout.yaml."""

from pathlib import Path

import pytest
import yaml

from essentials.layout import rawdir, schema
from essentials.layout.normalise import normalise

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "layout-mbr-loop"
ROOT = "/var/tmp/amdr-layout-2f1qqdxn/mnt"


@pytest.fixture(scope="module")
def layout():
    return normalise(rawdir.load(FIX), root=ROOT)


def by_dev(layout, dev_id):
    return next(f for f in layout["filesystems"] if f["device"] == dev_id)


def test_dos_table_with_extended_and_logical(layout):
    [d] = layout["disks"]
    assert (d["path"], d["size"], d["sector_size"]) == ("/dev/loop0", 500 << 20, 512)
    pt = d["ptable"]
    assert (pt["label"], pt["id"], pt["first_lba"], pt["last_lba"]) == (
        "dos", "0x5eed1e55", None, None)
    got = [(p["id"], p["number"], p["start"], p["size"], p["type"], p["kind"], p["bootable"],
            p["uuid"]) for p in pt["partitions"]]
    assert got == [
        ("disk0p1", 1, 2048, 122880, "83", "primary", True, "5eed1e55-01"),
        ("disk0p2", 2, 124928, 899072, "5", "extended", None, "5eed1e55-02"),
        ("disk0p5", 5, 126976, 655360, "83", "logical", None, "5eed1e55-05"),
        ("disk0p6", 6, 784384, 81920, "c", "logical", None, "5eed1e55-06"),
        ("disk0p7", 7, 868352, 40960, "82", "logical", None, "5eed1e55-07"),
    ]
    assert all(p["name"] is None and p["attrs"] is None for p in pt["partitions"])


def test_no_filesystem_on_the_extended_partition(layout):
    assert [f["device"] for f in layout["filesystems"]] == [
        "disk0p1", "disk0p5", "disk0p6", "disk0p7"]


def test_ext4_with_its_tuning(layout):
    f = by_dev(layout, "disk0p1")
    assert (f["type"], f["uuid"], f["label"]) == (
        "ext4", "3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b", "mbr-root")
    assert (f["mountpoint"], f["mount_options"]) == ("/", "rw,relatime")
    p = f["params"]
    assert (p["block_size"], p["inode_size"]) == (2048, 512)
    assert p["reserved_percent"] == 3.0  # 921 of 30720 blocks: mkfs -m 3
    assert (p["max_mount_count"], p["check_interval"]) == (25, 14 * 86400)
    assert "inline_data" in p["features"]
    assert "metadata_csum" not in p["features"] and "huge_file" not in p["features"]
    assert p["inode_count"] == 15360
    assert p["default_mount_options"] == ["user_xattr", "acl"]
    assert p["errors_behavior"] == "remount read-only"


def test_logical_xfs(layout):
    f = by_dev(layout, "disk0p5")
    assert (f["type"], f["uuid"], f["label"], f["mountpoint"]) == (
        "xfs", "6e0a7b2c-1d3e-4f5a-9b8c-7d6e5f4a3b2c", "mbr-xfs", "/srv")
    assert f["params"] == {
        "block_size": 4096, "inode_size": 1024, "sector_size": 512, "agcount": 4,
        "naming_version": 2, "ftype": 1, "log_internal": True, "log_blocks": 16384,
        "log_version": 2, "crc": 1, "finobt": 1, "sparse": 1, "rmapbt": 0, "reflink": 1,
        "bigtime": 1, "inobtcount": 1, "nrext64": 0}
    assert "mounts" not in f  # mounted once, at its top


def test_logical_vfat_and_swap(layout):
    v = by_dev(layout, "disk0p6")
    assert (v["type"], v["uuid"], v["label"], v["mountpoint"]) == (
        "vfat", "4A3B-2C1D", "MBRFAT", None)
    assert v["params"] == {"fat_size": 32}
    s = by_dev(layout, "disk0p7")
    assert (s["type"], s["uuid"], s["label"], s["active"], s["params"]) == (
        "swap", "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d", "mbr-swap", False, {})


def test_fstab_lines_resolved(layout):
    got = [(e["spec"], e["file"], e["vfstype"], e["options"], e["freq"], e["passno"],
            e["filesystem"]) for e in layout["fstab"]]
    assert got == [
        ("LABEL=mbr-root", "/", "ext4", "errors=remount-ro", 0, 1, "fs0"),
        ("PARTUUID=5eed1e55-05", "/srv", "xfs", "defaults", 0, 2, "fs1"),
        ("UUID=4A3B-2C1D", "/boot/efi", "vfat", "umask=0077", 0, 1, "fs2"),
        ("UUID=7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d", "none", "swap", "sw", 0, 0, "fs3"),
        ("/dev/sr0", "/media/cdrom0", "udf,iso9660", "user,noauto", 0, 0, None),
    ]


def test_no_stacks_and_bios(layout):
    assert (layout["lvm"], layout["md"], layout["luks"], layout["multipath"],
            layout["crypttab"]) == ([], [], [], [], [])
    assert layout["boot"]["firmware"] == "bios"
    assert layout["boot"]["efi"] is None
    assert layout["boot"]["grub"] == {"package": None, "install_devices": []}
    assert layout["warnings"] == [
        "'multipath' is not installed (Debian package multipath-tools), so multipath maps "
        "cannot be collected (none on the collected disks)"]


def test_validates_and_round_trips(layout):
    again = yaml.safe_load(yaml.safe_dump(layout, sort_keys=False))
    assert again == layout
    assert schema.validate(again) is again
