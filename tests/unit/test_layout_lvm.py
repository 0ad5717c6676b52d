"""LVM reports and vgcfgbackup (captured from LVM 2.03.16) -> layout.yaml."""

import copy
from pathlib import Path

import pytest

from essentials.errors import BundleError
from essentials.layout import rawdir, schema
from essentials.layout.normalise import normalise

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "layout-lvm"


@pytest.fixture(scope="module")
def raw():
    return rawdir.load(FIX)


@pytest.fixture(scope="module")
def layout(raw):
    return normalise(raw)


def test_pvs_are_stack_members_in_filesystems(layout):
    got = [(f["device"], f["type"], f["uuid"]) for f in layout["filesystems"]]
    assert got == [("disk0p1", "LVM2_member", "C8K0Cf-yRvG-E0SY-Mcya-QHMQ-x5CG-rk7nQf"),
                   ("disk1", "LVM2_member", "9pFK2p-WTm1-dApI-gRSz-Ecqd-T1mn-WyxhXo")]


def test_volume_group(layout):
    [vg] = layout["lvm"]
    assert (vg["id"], vg["name"], vg["uuid"]) == (
        "vg0", "vgdata", "klCf3K-OWcg-bUXh-uZa8-aTzd-gffJ-z5aWZS")
    assert (vg["extent_size"], vg["extent_count"], vg["size"], vg["free"]) == (
        4 << 20, 39, 39 * (4 << 20), 18 * (4 << 20))
    assert (vg["attr"], vg["format"]) == ("wz--n-", "lvm2")
    assert vg["vgcfgbackup"] == "layout/raw/lvm-vgcfgbackup-vgdata.vg"
    assert (FIX / "lvm-vgcfgbackup-vgdata.vg").read_text().count('id = "klCf3K-') == 1


def test_physical_volumes(layout):
    pvs = layout["lvm"][0]["physical_volumes"]
    assert [(p["device"], p["path"], p["uuid"], p["size"], p["dev_size"], p["pe_start"])
            for p in pvs] == [
        ("disk0p1", "/dev/loop2p1", "C8K0Cf-yRvG-E0SY-Mcya-QHMQ-x5CG-rk7nQf", 96 << 20,
         100 << 20, 1 << 20),
        ("disk1", "/dev/loop3", "9pFK2p-WTm1-dApI-gRSz-Ecqd-T1mn-WyxhXo", 60 << 20, 64 << 20,
         1 << 20)]


def test_logical_volumes(layout):
    lvs = {lv["name"]: lv for lv in layout["lvm"][0]["logical_volumes"]}
    assert sorted(lvs) == ["home", "root", "striped"]
    assert {n: (lv["id"], lv["size"]) for n, lv in lvs.items()} == {
        "home": ("vg0lv0", 28 << 20), "root": ("vg0lv1", 40 << 20),
        "striped": ("vg0lv2", 16 << 20)}
    root = lvs["root"]
    assert (root["path"], root["dm_path"], root["segtype"], root["stripes"]) == (
        "/dev/vgdata/root", "/dev/mapper/vgdata-root", "linear", 1)
    assert root["uuid"] == "gHhMlS-D4IK-ocg6-yK9t-0ESN-Nqs7-eLnZif"
    # lvs prints a row per segment: home was extended onto the other PV
    assert (lvs["home"]["segments"], lvs["home"]["devices"]) == (
        2, ["/dev/loop3(0)", "/dev/loop2p1(10)"])
    st = lvs["striped"]
    assert (st["segtype"], st["stripes"], st["stripe_size"], st["devices"]) == (
        "striped", 2, 64 << 10, ["/dev/loop2p1(12)", "/dev/loop3(5)"])
    # no device-mapper where this was captured: not active
    assert not any(lv["active"] or lv["hidden"] for lv in lvs.values())


def test_filesystem_on_an_active_lv(raw):
    """On a machine with device-mapper the LV is probed under its dm name."""
    r = copy.deepcopy(raw)
    r["blkid"]["/dev/mapper/vgdata-root"] = {"TYPE": "ext4", "UUID": "aaaa-root",
                                             "LABEL": "root"}
    r["findmnt"] = {"filesystems": [{"source": "/dev/mapper/vgdata-root", "target": "/",
                                     "fstype": "ext4", "options": "rw", "fsroot": "/"}]}
    layout = normalise(r)
    f = layout["filesystems"][-1]
    assert (f["device"], f["device_path"], f["mountpoint"]) == (
        "vg0lv1", "/dev/mapper/vgdata-root", "/")
    assert schema.by_id(layout)["vg0lv1"]["name"] == "root"
    schema.validate(layout)


def test_pv_on_a_disk_not_collected(raw):
    r = copy.deepcopy(raw)
    r["lsblk"]["blockdevices"] = r["lsblk"]["blockdevices"][:1]
    layout = normalise(r)
    pvs = layout["lvm"][0]["physical_volumes"]
    assert [p["device"] for p in pvs] == ["disk0p1", None]
    assert ("LVM volume group vgdata: physical volume /dev/loop3 is on a disk that was not "
            "collected") in layout["warnings"]
    schema.validate(layout)


def test_validate_lvm(layout):
    assert schema.validate(copy.deepcopy(layout))
    bad = copy.deepcopy(layout)
    bad["lvm"][0]["physical_volumes"][0]["device"] = "disk7"
    with pytest.raises(BundleError, match="physical volume /dev/loop2p1 of vgdata refers to "
                                          "'disk7'"):
        schema.validate(bad)
    bad = copy.deepcopy(layout)
    del bad["lvm"][0]["logical_volumes"][1]["size"]
    with pytest.raises(BundleError, match="a logical volume of vgdata has no 'size'"):
        schema.validate(bad)
    bad = copy.deepcopy(layout)
    bad["lvm"][0]["logical_volumes"][1]["id"] = "disk0"
    with pytest.raises(BundleError, match="the id 'disk0' is used twice"):
        schema.validate(bad)
