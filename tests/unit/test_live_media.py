"""Which attached filesystems the live system takes for media (recovery/live.py):
never its own boot medium, never a disk in use, never a RAID/LVM/LUKS member."""

from pathlib import Path

from recovery import live


def lsblk():
    return {"blockdevices": [
        {"name": "/dev/sr0", "type": "rom", "fstype": "iso9660", "label": "AMDR_LIVE",
         "rm": True, "tran": "sata", "mountpoint": "/run/live/medium"},
        {"name": "/dev/sr1", "type": "rom", "fstype": "iso9660", "label": "BUNDLES",
         "rm": True, "tran": "sata"},
        {"name": "/dev/sda", "type": "disk", "rm": False, "tran": "sata", "children": [
            {"name": "/dev/sda1", "type": "part", "fstype": "ext4", "label": "root"},
            {"name": "/dev/sda2", "type": "part", "fstype": "linux_raid_member"}]},
        {"name": "/dev/vdb", "type": "disk", "rm": False, "children": [
            {"name": "/dev/vdb1", "type": "part", "fstype": "ext4", "label": "AMDR"}]},
        {"name": "/dev/sdb", "type": "disk", "rm": True, "tran": "usb", "children": [
            {"name": "/dev/sdb1", "type": "part", "fstype": "vfat", "label": "STICK"},
            {"name": "/dev/sdb2", "type": "part", "fstype": "crypto_LUKS"},
            {"name": "/dev/sdb3", "type": "part", "fstype": "swap"}]},
        {"name": "/dev/sdc", "type": "disk", "rm": False, "tran": "usb", "children": [
            {"name": "/dev/sdc1", "type": "part", "fstype": "ext4", "mountpoint": "/srv"},
            {"name": "/dev/sdc2", "type": "part", "fstype": "ext4"}]},
        {"name": "/dev/nvme0n1", "type": "disk", "rm": False, "tran": "nvme",
         "fstype": "xfs"},
    ]}


def test_the_media_are_the_amdr_label_then_removable_usb_and_cds():
    got = [d.path for d in live.candidates(live.devices(lsblk()), "/dev/sr0")]
    # AMDR first (a plain virtio disk: the label alone makes it a medium); the
    # dead machine's SATA and NVMe disks are not media; /dev/sdc is in use
    assert got == ["/dev/vdb1", "/dev/sdb1", "/dev/sr1"]


def test_the_boot_medium_is_never_a_medium_even_unmounted():
    doc = lsblk()
    doc["blockdevices"][0].pop("mountpoint")
    got = [d.path for d in live.candidates(live.devices(doc), "/dev/sr0")]
    assert "/dev/sr0" not in got


def test_mount_names_are_unique():
    taken = {"AMDR"}
    d = live.devices(lsblk())
    amdr = next(x for x in d if x.path == "/dev/vdb1")
    assert live.mount_name(amdr, taken) == "AMDR-2"
    nolabel = next(x for x in d if x.path == "/dev/sdc2")
    assert live.mount_name(nolabel, taken) == "sdc2"


def test_answers_file_on_a_medium_or_named(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (b / "amdr-answers.yaml").write_text("host: x\n")
    (a / "drill.yaml").write_text("host: y\n")
    assert live.find_answers([a, b], "quiet") == b / "amdr-answers.yaml"
    assert live.find_answers([a, b], "amdr.answers=drill.yaml") == a / "drill.yaml"
    assert live.find_answers([a, b], f"amdr.answers={a}/drill.yaml") == a / "drill.yaml"
    assert live.find_answers([a, b], "amdr.answers=none") is None
    assert live.find_answers([a, b], "amdr.answers=/nope.yaml") is None
    assert live.find_answers([Path("/nonexistent")], "") is None
