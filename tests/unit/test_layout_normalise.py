"""Raw tool outputs captured on a real GPT loop disk turned into layout.yaml."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from essentials.errors import BundleError
from essentials.layout import schema
from essentials.layout.normalise import normalise, parse_tune2fs, relative_mountpoint

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "layout-gpt-loop"
ROOT = "/tmp/probe/mnt"


def raw_from_fixture() -> dict:
    """The dict collect.gather() returns, rebuilt from the files it wrote."""
    lsblk = json.loads((FIX / "lsblk.json").read_text())
    lsblk["blockdevices"] = [d for d in lsblk["blockdevices"] if d.get("type") in ("disk", "loop")]
    return {
        "lsblk": lsblk,
        "sfdisk": {"/dev/loop0": json.loads((FIX / "sfdisk-dev_loop0.json").read_text())},
        "blkid": yaml.safe_load((FIX / "blkid.yaml").read_text()),
        "tune2fs": {
            "/dev/loop0p1": (FIX / "tune2fs-dev_loop0p1.txt").read_text(),
            "/dev/loop0p2": (FIX / "tune2fs-dev_loop0p2.txt").read_text(),
        },
        "findmnt": json.loads((FIX / "findmnt.json").read_text()),
        "swaps": (FIX / "swaps.txt").read_text(),
    }


@pytest.fixture
def layout():
    return normalise(raw_from_fixture(), root=ROOT)


def test_top_level(layout):
    assert layout["version"] == schema.VERSION == 1
    assert layout["root"] == ROOT
    assert [d["path"] for d in layout["disks"]] == ["/dev/loop0"]
    assert [f["id"] for f in layout["filesystems"]] == ["fs0", "fs1", "fs2"]


def test_disk(layout):
    d = layout["disks"][0]
    assert d["id"] == "disk0"
    assert d["size"] == 209715200
    assert d["sector_size"] == 512
    assert (d["model"], d["serial"], d["wwn"]) == (None, None, None)
    pt = d["ptable"]
    assert pt["label"] == "gpt"
    assert pt["id"] == "5198BEB5-1763-4043-AF7A-D26C981673C3"


def test_partitions(layout):
    parts = layout["disks"][0]["ptable"]["partitions"]
    linux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    swap = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
    got = [(p["id"], p["number"], p["path"], p["start"], p["size"], p["type"], p["uuid"], p["name"])
           for p in parts]
    assert got == [
        ("disk0p1", 1, "/dev/loop0p1", 2048, 204800, linux,
         "6390E3EC-7434-C84F-B2C2-5E078920D222", "root"),
        ("disk0p2", 2, "/dev/loop0p2", 206848, 122880, linux,
         "2827883E-2575-164F-8A3E-9FF870817865", "data"),
        ("disk0p3", 3, "/dev/loop0p3", 329728, 77824, swap,
         "888412B2-C76C-5140-9F3B-5B3A4A8AB304", "swap"),
    ]
    assert all(p["attrs"] is None and p["bootable"] is None for p in parts)


def test_root_filesystem(layout):
    fs0 = layout["filesystems"][0]
    assert fs0["id"] == "fs0"
    assert fs0["device"] == "disk0p1"
    assert fs0["device_path"] == "/dev/loop0p1"
    assert fs0["type"] == "ext4"
    assert fs0["uuid"] == "11111111-2222-3333-4444-555555555555"
    assert fs0["label"] == "labroot"
    assert fs0["mountpoint"] == "/"
    assert fs0["mount_options"] == "rw,relatime"


def test_data_filesystem(layout):
    fs1 = layout["filesystems"][1]
    assert (fs1["device"], fs1["type"], fs1["label"]) == ("disk0p2", "ext4", "labdata")
    assert fs1["uuid"] == "79abe2f6-5279-4177-ad09-3282c586e72a"
    assert fs1["mountpoint"] == "/srv"


def test_swap(layout):
    fs2 = layout["filesystems"][2]
    assert fs2["device"] == "disk0p3"
    assert fs2["type"] == "swap"
    assert fs2["uuid"] == "83680958-5218-4f11-b335-53622c28384b"
    assert fs2["mountpoint"] is None
    assert fs2["active"] is False  # /proc/swaps listed nothing
    assert fs2["params"] == {}


def test_tune2fs_params(layout):
    p0, p1 = layout["filesystems"][0]["params"], layout["filesystems"][1]["params"]
    assert p0["block_size"] == 1024
    assert p0["inode_size"] == 256
    assert p0["reserved_percent"] == 5.0  # 5120 of 102400
    assert p0["max_mount_count"] == -1
    assert p0["check_interval"] == 0
    assert "metadata_csum" in p0["features"] and "has_journal" in p0["features"]
    assert (p1["block_size"], p1["inode_size"], p1["reserved_percent"]) == (1024, 256, 5.0)


def test_mountpoints_relative_to_slash_root():
    layout = normalise(raw_from_fixture(), root="/")
    assert [f["mountpoint"] for f in layout["filesystems"]] == [
        "/tmp/probe/mnt", "/tmp/probe/mnt/srv", None]


def test_yaml_round_trip_validates(layout):
    again = yaml.safe_load(yaml.safe_dump(layout, sort_keys=False))
    assert again == layout
    assert schema.validate(again) is again


def test_by_id(layout):
    ids = schema.by_id(layout)
    assert sorted(ids) == ["disk0", "disk0p1", "disk0p2", "disk0p3", "fs0", "fs1", "fs2"]
    assert ids["disk0p2"]["start"] == 206848


def test_validate_rejects_unknown_device(layout):
    bad = copy.deepcopy(layout)
    bad["filesystems"][1]["device"] = "disk9p1"
    with pytest.raises(BundleError) as e:
        schema.validate(bad, where="bundle/layout.yaml")
    msg = str(e.value)
    assert msg.startswith("bundle/layout.yaml: ")
    assert "fs1" in msg and "disk9p1" in msg


def test_validate_rejects_wrong_version(layout):
    bad = dict(layout, version=2)
    with pytest.raises(BundleError, match=r"layout\.yaml: layout version 2 is not supported "
                                          r"\(expected 1\)"):
        schema.validate(bad)


def test_validate_rejects_missing_keys(layout):
    bad = copy.deepcopy(layout)
    del bad["disks"][0]["ptable"]["partitions"][0]["start"]
    with pytest.raises(BundleError, match="partition of disk0 has no 'start'"):
        schema.validate(bad)
    with pytest.raises(BundleError, match="the layout has no 'filesystems'"):
        schema.validate({"version": 1, "disks": []})


def test_whole_disk_filesystem_without_table():
    raw = {
        "lsblk": {"blockdevices": [{"name": "vdc", "path": "/dev/vdc", "type": "disk",
                                    "size": 1073741824, "model": "  QEMU HARDDISK  ",
                                    "serial": "", "wwn": None}]},
        "blkid": {"/dev/vdc": {"TYPE": "xfs", "UUID": "aaaa-bbbb", "LABEL": "bulk"}},
        "findmnt": {"filesystems": [{"source": "/dev/vdc", "target": "/data",
                                     "fstype": "xfs", "options": "rw"}]},
        "swaps": "Filename\tType\tSize\tUsed\tPriority\n",
    }
    layout = normalise(raw)
    d = layout["disks"][0]
    assert d["ptable"] is None
    assert d["model"] == "QEMU HARDDISK" and d["serial"] is None
    assert layout["filesystems"] == [{
        "id": "fs0", "device": "disk0", "device_path": "/dev/vdc", "type": "xfs",
        "uuid": "aaaa-bbbb", "label": "bulk", "mountpoint": "/data",
        "mount_options": "rw", "params": {}}]
    schema.validate(layout)


def test_active_swap():
    raw = raw_from_fixture()
    raw["swaps"] = ("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                    "/dev/loop0p3                            partition\t38908\t\t0\t\t-2\n")
    layout = normalise(raw, root=ROOT)
    assert layout["filesystems"][2]["active"] is True


@pytest.mark.parametrize("target,root,expected", [
    ("/tmp/probe/mnt", "/tmp/probe/mnt", "/"),
    ("/tmp/probe/mnt/", "/tmp/probe/mnt", "/"),
    ("/tmp/probe/mnt/srv", "/tmp/probe/mnt", "/srv"),
    ("/tmp/probe/mnt/srv/www", "/tmp/probe/mnt/", "/srv/www"),
    ("/tmp/probe/mntx", "/tmp/probe/mnt", None),
    ("/tmp/probe", "/tmp/probe/mnt", None),
    ("/", "/tmp/probe/mnt", None),
    ("/", "/", "/"),
    ("/var/lib", "/", "/var/lib"),
])
def test_relative_mountpoint(target, root, expected):
    assert relative_mountpoint(target, root) == expected


def test_parse_tune2fs_fixture():
    p = parse_tune2fs((FIX / "tune2fs-dev_loop0p2.txt").read_text())
    assert p["block_size"] == 1024
    assert p["inode_size"] == 256  # "Inode size:\t   256": a tab before the value
    assert p["reserved_percent"] == 5.0  # 3072 of 61440
    assert p["max_mount_count"] == -1
    assert p["check_interval"] == 0
    assert p["features"][:3] == ["has_journal", "ext_attr", "resize_inode"]
    assert len(p["features"]) == 14 and "needs_recovery" not in p["features"]  # transient


def test_parse_tune2fs_other_values():
    text = ("Block count:              262144\n"
            "Reserved block count:     3276\n"
            "Block size:               4096\n"
            "Inode size:               128\n"
            "Maximum mount count:      30\n"
            "Check interval:           15552000 (6 months)\n")
    assert parse_tune2fs(text) == {"block_size": 4096, "inode_size": 128,
                                   "reserved_percent": 1.25, "max_mount_count": 30,
                                   "check_interval": 15552000}


def test_parse_tune2fs_empty():
    assert parse_tune2fs("tune2fs 1.47.0 (5-Feb-2023)\n") == {}
