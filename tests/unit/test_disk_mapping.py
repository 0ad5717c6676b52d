"""Matching the original disks to the disks present (pure), and what is on them now."""

import json

import pytest

from recovery.disks.mapping import match_disks
from recovery.disks.wipe import WipeDisk, inventory

GIB = 1024 ** 3


def orig(path, size, serial=None, wwn=None, by_id=None, did=None):
    return {"id": did or "disk" + path[-1], "path": path, "size": size, "serial": serial,
            "wwn": wwn, "by_id": by_id or []}


def now(path, size, serial=None, wwn=None, by_id=None, type="disk", **kw):
    d = {"path": path, "name": path.rsplit("/", 1)[1], "type": type, "size": size,
         "serial": serial, "wwn": wwn, "by_id": by_id or [], "rm": False, "hotplug": False,
         "ro": False, "fstype": None, "pttype": None, "children": None}
    d.update(kw)
    return d


def test_identity_beats_size_and_name():
    disks = [orig("/dev/sda", 32 * GIB, serial="QM00001", wwn="0x5000c500a1b2c301"),
             orig("/dev/sdb", 32 * GIB, serial="QM00002")]
    present = [now("/dev/sda", 32 * GIB, serial="QM00002"),
               now("/dev/sdb", 64 * GIB, serial="OTHER", wwn="5000C500A1B2C301"),
               now("/dev/sdc", 32 * GIB)]
    m = match_disks(disks, present)
    # the disks moved: names mean nothing next to a serial or WWN
    assert m.mapping == {"/dev/sda": "/dev/sdb", "/dev/sdb": "/dev/sda"}
    assert m.reasons == {"/dev/sda": "WWN 0x5000c500a1b2c301", "/dev/sdb": "serial QM00002"}


def test_by_id_names():
    disks = [orig("/dev/vda", 10 * GIB, by_id=["virtio-rootdisk"])]
    present = [now("/dev/vdb", 10 * GIB), now("/dev/vdc", 20 * GIB, by_id=["virtio-rootdisk"])]
    m = match_disks(disks, present)
    assert m.mapping == {"/dev/vda": "/dev/vdc"}
    assert m.reasons == {"/dev/vda": "/dev/disk/by-id/virtio-rootdisk"}


def test_explicit_map_overrides_everything():
    disks = [orig("/dev/sda", 32 * GIB, serial="QM00001", did="disk0")]
    present = [now("/dev/sda", 32 * GIB, serial="QM00001"), now("/dev/sdb", 64 * GIB)]
    m = match_disks(disks, present, {"/dev/sda": "/dev/sdb"})
    assert m.mapping == {"/dev/sda": "/dev/sdb"} and m.reasons == {"/dev/sda": "--map"}
    m = match_disks(disks, present, {"disk0": "/dev/sdb"})  # by the layout's id too
    assert m.mapping == {"/dev/sda": "/dev/sdb"}


def test_map_of_a_disk_the_layout_does_not_have():
    m = match_disks([orig("/dev/sda", GIB)], [now("/dev/sdb", GIB)], {"/dev/sdx": "/dev/sdb"})
    assert m.problems == ["--map /dev/sdx=/dev/sdb: the layout has no disk /dev/sdx (its disks: "
                          "/dev/sda)"]


def test_by_size_same_then_smallest_larger_then_largest_smaller():
    disks = [orig("/dev/sda", 20 * GIB), orig("/dev/sdb", 100 * GIB), orig("/dev/sdc", 8 * GIB)]
    present = [now("/dev/vda", 8 * GIB), now("/dev/vdb", 250 * GIB), now("/dev/vdc", 32 * GIB),
               now("/dev/vdd", 64 * GIB)]
    m = match_disks(disks, present)
    assert m.mapping == {"/dev/sdb": "/dev/vdb", "/dev/sda": "/dev/vdc", "/dev/sdc": "/dev/vda"}
    assert m.reasons["/dev/sdc"] == "the same size (8.0 GiB)"
    assert m.reasons["/dev/sda"] == ("size: the smallest free disk larger than 20.0 GiB "
                                     "(32.0 GiB)")
    m = match_disks([orig("/dev/sda", 100 * GIB)], [now("/dev/vda", 40 * GIB),
                                                    now("/dev/vdb", 60 * GIB)])
    assert m.mapping == {"/dev/sda": "/dev/vdb"}
    assert m.reasons["/dev/sda"] == ("size: no free disk of 100.0 GiB or more; the largest is "
                                     "60.0 GiB")


def test_blank_disks_first():
    disks = [orig("/dev/sda", 20 * GIB)]
    present = [now("/dev/vda", 20 * GIB, pttype="gpt", children=[{"path": "/dev/vda1"}]),
               now("/dev/vdb", 20 * GIB)]
    assert match_disks(disks, present).mapping == {"/dev/sda": "/dev/vdb"}
    m = match_disks(disks, present[:1])
    assert m.mapping == {"/dev/sda": "/dev/vda"}
    assert m.reasons["/dev/sda"] == "the same size (20.0 GiB); it is not blank"


def test_size_never_picks_refused_removable_readonly_or_loop_disks():
    disks = [orig("/dev/sda", 20 * GIB, serial="GONE")]
    present = [now("/dev/vda", 40 * GIB), now("/dev/sdb", 32 * GIB, rm=True),
               now("/dev/sdc", 32 * GIB, hotplug=True), now("/dev/sr0", 32 * GIB, ro=True),
               now("/dev/loop3", 32 * GIB, type="loop"), now("/dev/zram0", 32 * GIB)]
    refused = {"/dev/vda": ["/dev/vda1 is mounted on /"]}
    m = match_disks(disks, present, {}, refused)
    assert m.mapping == {}
    assert m.unmatched == {"/dev/sda": (
        "no free disk to put it on; /dev/vda (40.0 GiB) is not used: /dev/vda1 is mounted on /; "
        "/dev/sdb is removable: name it with --map to use it; /dev/sdc is removable: name it "
        "with --map to use it; /dev/sr0 is read-only")}


def test_same_name_and_size_without_identity_even_when_busy():
    """A loop or virtual disk with no serial: its own name and size are the evidence,
    and a match that is in use is left to the guard to refuse, with its reason."""
    disks = [orig("/dev/loop4", 100 * 2 ** 20)]
    present = [now("/dev/loop4", 100 * 2 ** 20, type="loop"), now("/dev/vdb", GIB)]
    m = match_disks(disks, present, {}, {"/dev/loop4": ["/dev/loop4p1 is mounted on /mnt"]})
    assert m.mapping == {"/dev/loop4": "/dev/loop4"}
    assert m.reasons == {"/dev/loop4": "the same name and size (no serial or WWN to go by)"}
    # not for a disk that had a serial: that one is elsewhere, or gone
    disks = [orig("/dev/sda", GIB, serial="QM1")]
    m = match_disks(disks, [now("/dev/sda", GIB, serial="QM9"), now("/dev/sdb", GIB)])
    assert m.mapping == {"/dev/sda": "/dev/sda"} and m.reasons["/dev/sda"].startswith("the same size")
    m = match_disks(disks, [now("/dev/sda", GIB, serial="QM9")], {},
                    {"/dev/sda": ["/dev/sda1 is mounted on /"]})
    assert m.mapping == {}


def test_identity_shared_by_two_disks_is_no_identity():
    """Two paths of one multipath LUN report the same serial: go by size instead."""
    disks = [orig("/dev/sda", 10 * GIB, serial="LUN7")]
    present = [now("/dev/sdb", 10 * GIB, serial="LUN7"), now("/dev/sdc", 10 * GIB, serial="LUN7")]
    m = match_disks(disks, present)
    assert m.mapping == {"/dev/sda": "/dev/sdb"} and m.reasons["/dev/sda"].startswith("the same size")


LSBLK = {"blockdevices": [{
    "path": "/dev/sdb", "name": "sdb", "type": "disk", "fstype": None, "children": [
        {"path": "/dev/sdb1", "name": "sdb1", "type": "part", "fstype": "vfat"},
        {"path": "/dev/sdb2", "name": "sdb2", "type": "part", "fstype": "linux_raid_member",
         "children": [{"path": "/dev/md127", "name": "md127", "type": "raid1",
                       "fstype": "LVM2_member", "children": [
                           {"path": "/dev/mapper/old-root", "name": "old-root", "type": "lvm",
                            "fstype": "crypto_LUKS", "children": [
                                {"path": "/dev/mapper/luks-1", "name": "luks-1",
                                 "type": "crypt", "fstype": "ext4"}]}]}]},
        {"path": "/dev/sdb3", "name": "sdb3", "type": "part", "fstype": "LVM2_member"},
        {"path": "/dev/sdb4", "name": "sdb4", "type": "part", "fstype": None}]}]}


def test_wipe_tears_down_what_the_new_disk_holds():
    node = json.loads(json.dumps(LSBLK))["blockdevices"][0]
    holders, parts = inventory(node)
    assert [h["path"] for h in holders] == ["/dev/mapper/luks-1", "/dev/mapper/old-root",
                                            "/dev/md127"]
    assert parts == [{"path": "/dev/sdb1", "fstype": "vfat"},
                     {"path": "/dev/sdb2", "fstype": "linux_raid_member"},
                     {"path": "/dev/sdb3", "fstype": "LVM2_member"},
                     {"path": "/dev/sdb4", "fstype": None}]
    w = WipeDisk("wipe-disk0", device="/dev/sdb", disk="disk0", holders=holders,
                 old_partitions=parts)
    assert [" ".join(a) for a in w.render()] == [
        "cryptsetup close luks-1",
        "dmsetup remove --retry old-root",
        "mdadm --stop /dev/md127",
        "wipefs --all --force /dev/sdb1",
        "mdadm --zero-superblock --force /dev/sdb2",
        "wipefs --all --force /dev/sdb2",
        "pvremove --force --force --yes /dev/sdb3",
        "wipefs --all --force /dev/sdb3",
        "wipefs --all --force /dev/sdb4",  # lsblk saw nothing: without udev it cannot
        "wipefs --all --force /dev/sdb",
    ]
    # what is on the disk now does not change what the wipe makes
    assert w.fingerprint() == WipeDisk("wipe-disk0", device="/dev/sdb",
                                       disk="disk0").fingerprint()


def test_whole_disk_member_superblock_removed():
    w = WipeDisk("wipe-disk2", device="/dev/sdc", disk="disk2", disk_fstype="linux_raid_member")
    assert w.render() == [["mdadm", "--zero-superblock", "--force", "/dev/sdc"],
                          ["wipefs", "--all", "--force", "/dev/sdc"]]
    assert inventory(None) == ([], [])


@pytest.mark.parametrize("value", ["0x5000C500A1B2C301", "5000c500a1b2c301"])
def test_wwn_compared_without_prefix_or_case(value):
    m = match_disks([orig("/dev/sda", GIB, wwn="0x5000c500a1b2c301")],
                    [now("/dev/sdq", 2 * GIB, wwn=value)])
    assert m.mapping == {"/dev/sda": "/dev/sdq"}
