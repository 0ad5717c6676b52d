"""MD RAID in mdadm 4.2's `--detail` format (written, see the fixture's README) -> layout."""

import copy
from pathlib import Path

import pytest

from essentials.errors import BundleError
from essentials.layout import rawdir, schema
from essentials.layout.md import parse_detail
from essentials.layout.normalise import normalise

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "layout-md"


@pytest.fixture(scope="module")
def raw():
    return rawdir.load(FIX)


@pytest.fixture(scope="module")
def layout(raw):
    return normalise(raw)


def test_disks_with_model_serial_wwn_by_id(layout):
    d = layout["disks"]
    assert [x["path"] for x in d] == ["/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd",
                                      "/dev/sde", "/dev/sdf"]
    sda = d[0]
    assert (sda["model"], sda["serial"], sda["wwn"], sda["transport"]) == (
        "QEMU HARDDISK", "QM00001", "0x5000c500a1b2c301", "sata")
    assert sda["by_id"] == ["ata-QEMU_HARDDISK_QM00001", "wwn-0x5000c500a1b2c301"]
    assert d[5]["by_id"] == ["ata-QEMU_HARDDISK_QM00006"] and d[5]["ptable"] is None


def test_raid1_with_bitmap(layout):
    a = layout["md"][0]
    assert (a["id"], a["path"], a["name"], a["uuid"]) == (
        "array0", "/dev/md0", "backup01:0", "641c6a23:900819e1:2ea9ec2d:7112fb1f")
    assert (a["level"], a["metadata"], a["raid_devices"], a["size"]) == (
        "raid1", "1.2", 2, 20969472 * 1024)
    assert (a["bitmap"], a["chunk_size"], a["layout"], a["degraded"]) == (
        "internal", None, None, False)
    assert a["members"] == [
        {"device": "disk0p1", "path": "/dev/sda1", "role": 0, "state": "active sync"},
        {"device": "disk1p1", "path": "/dev/sdb1", "role": 1, "state": "active sync"}]


def test_degraded_raid1_with_a_removed_slot(layout):
    a = layout["md"][1]
    assert (a["degraded"], a["bitmap"]) == (True, None)
    assert a["members"] == [
        {"device": "disk0p2", "path": "/dev/sda2", "role": 0, "state": "active sync"},
        {"device": None, "path": None, "role": 1, "state": "removed"}]


def test_raid5_with_spare(layout):
    a = layout["md"][2]
    assert (a["level"], a["raid_devices"], a["chunk_size"], a["layout"]) == (
        "raid5", 3, 512 << 10, "left-symmetric")
    assert a["size"] == 2093056 * 1024
    assert [(m["device"], m["role"], m["state"]) for m in a["members"]] == [
        ("disk2", 0, "active sync"), ("disk3", 1, "active sync"), ("disk4", 2, "active sync"),
        ("disk5", "spare", "spare")]


def test_filesystems_on_arrays(layout):
    on = {f["device"]: f for f in layout["filesystems"]}
    assert (on["array0"]["type"], on["array0"]["label"], on["array0"]["mountpoint"]) == (
        "ext4", "root", "/")
    assert (on["array1"]["type"], on["array1"]["active"]) == ("swap", True)
    assert (on["array2"]["type"], on["array2"]["mountpoint"]) == ("xfs", "/srv")
    members = [f["device"] for f in layout["filesystems"] if f["type"] == "linux_raid_member"]
    assert members == ["disk0p1", "disk0p2", "disk1p1", "disk1p2", "disk2", "disk3", "disk4",
                       "disk5"]
    assert [e["filesystem"] for e in layout["fstab"]] == [on["array0"]["id"],
                                                          on["array2"]["id"],
                                                          on["array1"]["id"]]


def test_bios_grub_on_both_disks(layout):
    boot = layout["boot"]
    assert boot["firmware"] == "bios" and boot["efi"] is None
    assert boot["cmdline"].startswith("root=UUID=0b3c")  # BOOT_IMAGE= dropped: a kernel update is no layout change
    assert boot["grub"] == {"package": "grub-pc", "install_devices": [
        {"device": "/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001", "path": "/dev/sda",
         "disk": "disk0"},
        {"device": "/dev/disk/by-id/ata-QEMU_HARDDISK_QM00002", "path": "/dev/sdb",
         "disk": "disk1"}]}


def test_validates_and_ids(layout):
    schema.validate(layout)
    ids = schema.by_id(layout)
    assert ids["array2"]["level"] == "raid5"
    bad = copy.deepcopy(layout)
    bad["md"][0]["members"][0]["device"] = "disk9p1"
    with pytest.raises(BundleError, match="member /dev/sda1 of /dev/md0 refers to 'disk9p1'"):
        schema.validate(bad)
    bad = copy.deepcopy(layout)
    del bad["md"][0]["uuid"]
    with pytest.raises(BundleError, match="MD array #0 has no 'uuid'"):
        schema.validate(bad)


def test_partitioned_array(raw):
    r = copy.deepcopy(raw)
    r["sfdisk"]["/dev/md2"] = {"partitiontable": {
        "label": "gpt", "id": "11111111-2222-4333-8444-555555555555", "sectorsize": 512,
        "partitions": [{"node": "/dev/md2p1", "start": 2048, "size": 4000000,
                        "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}]}}
    r["blkid"]["/dev/md2p1"] = {"TYPE": "ext4", "UUID": "feed-0001"}
    del r["blkid"]["/dev/md2"]
    layout = normalise(r)
    a = layout["md"][2]
    assert [p["id"] for p in a["ptable"]["partitions"]] == ["array2p1"]
    assert layout["filesystems"][-1]["device"] == "array2p1"
    schema.validate(layout)


def test_detail_of_a_0_90_array():
    text = ("/dev/md0:\n           Version : 0.90\n        Raid Level : raid1\n"
            "        Array Size : 78148096 (74.53 GiB 80.02 GB)\n      Raid Devices : 2\n"
            "             State : active, resyncing \n"
            "              UUID : a1c15a2b:6ba03c3e:448de4d4:07e4e535\n"
            "            Events : 0.28526134\n\n"
            "    Number   Major   Minor   RaidDevice State\n"
            "       0       8        1        0      active sync   /dev/sda1\n"
            "       1       8       17        1      spare rebuilding   /dev/sdb1\n")
    d = parse_detail(text)
    assert (d["path"], d["metadata"], d["name"], d["state"]) == (
        "/dev/md0", "0.90", None, "active, resyncing")
    assert d["members"][1] == {"number": 1, "major": 8, "minor": 17, "role": 1,
                               "state": "spare rebuilding", "path": "/dev/sdb1"}
