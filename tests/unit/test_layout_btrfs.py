"""btrfs with subvolumes (captured, mounted) and UEFI boot entries (written) -> layout."""

from pathlib import Path

import pytest

from essentials.layout import rawdir, schema
from essentials.layout.normalise import normalise

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROOT = "/var/tmp/amdr-layout-38opcikv/mnt"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


@pytest.fixture(scope="module")
def raw():
    return rawdir.load(FIXTURES / "layout-btrfs-loop")


@pytest.fixture(scope="module")
def layout(raw):
    return normalise(raw, root=ROOT)


@pytest.fixture(scope="module")
def uefi(raw):
    both = dict(raw)
    both.update(rawdir.load(FIXTURES / "layout-boot-uefi"))
    return normalise(both, root=ROOT)


def btrfs(layout):
    return next(f for f in layout["filesystems"] if f["type"] == "btrfs")


def test_gpt_with_esp(layout):
    [d] = layout["disks"]
    pt = d["ptable"]
    assert (pt["label"], pt["first_lba"], pt["last_lba"]) == ("gpt", 2048, 614366)
    assert [(p["id"], p["type"], p["name"], p["kind"]) for p in pt["partitions"]] == [
        ("disk0p1", ESP, "EFI System", None),
        ("disk0p2", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "root", None)]
    esp = layout["filesystems"][0]
    assert (esp["type"], esp["uuid"], esp["label"], esp["params"]) == (
        "vfat", "B0CA-1E5E", "ESP", {"fat_size": 32})


def test_btrfs_identity_and_mounts(layout):
    b = btrfs(layout)
    assert (b["device"], b["uuid"], b["label"]) == (
        "disk0p2", "9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "gpt-btrfs")
    # findmnt writes "DEV[/@]": still the device's mount, the first one is the mountpoint
    assert b["mountpoint"] == "/"
    assert "subvol=/@" in b["mount_options"]
    assert [(m["mountpoint"], m["fsroot"]) for m in b["mounts"]] == [("/", "/@"),
                                                                     ("/home", "/@home")]


def test_btrfs_subvolumes(layout):
    subs = btrfs(layout)["subvolumes"]
    assert [(s["id"], s["path"], s["parent_id"], s["readonly"]) for s in subs] == [
        (256, "@", 5, False),
        (257, "@home", 5, False),
        (258, "@/var-lib", 256, False),
        (259, "@snapshots", 5, False),
        (260, "@snapshots/home-1", 259, True),
    ]
    home = subs[1]
    assert subs[4]["parent_uuid"] == home["uuid"] == "08cffbf6-4e12-ac40-bb2b-5613d8520897"
    assert subs[0]["parent_uuid"] is None


def test_btrfs_default_subvolume_is_not_the_top(layout):
    assert btrfs(layout)["default_subvolume"] == {"id": 256, "path": "@"}


def test_btrfs_params(layout):
    p = btrfs(layout)["params"]
    assert (p["node_size"], p["sector_size"], p["num_devices"], p["csum_type"]) == (
        32768, 4096, 1, "crc32c")
    assert "default_subvol" in p["features"] and "no_holes" in p["features"]
    assert p["ro_features"] == ["free_space_tree", "free_space_tree_valid"]
    assert (p["data_profile"], p["metadata_profile"], p["system_profile"]) == (
        "single", "dup", "dup")


def test_unmounted_btrfs_has_unknown_subvolumes(raw):
    cut = {k: v for k, v in raw.items() if not k.startswith("btrfs_") or k == "btrfs_super"}
    cut["findmnt"] = {"filesystems": []}
    b = btrfs(normalise(cut, root=ROOT))
    assert b["mountpoint"] is None and "mounts" not in b
    assert b["subvolumes"] is None and b["default_subvolume"] is None
    assert b["params"]["node_size"] == 32768  # dump-super needs no mount


def test_uefi_boot_entries(uefi):
    boot = uefi["boot"]
    assert boot["firmware"] == "uefi"
    assert boot["grub"] == {"package": None, "install_devices": []}
    assert "rootflags=subvol=@" in boot["cmdline"]
    efi = boot["efi"]
    assert (efi["current"], efi["timeout"], efi["order"]) == (
        "0004", 1, ["0004", "0001", "0000", "0002"])
    e = {x["number"]: x for x in efi["entries"]}
    assert sorted(e) == ["0000", "0001", "0002", "0003", "0004"]
    deb = e["0004"]
    assert (deb["label"], deb["active"], deb["loader"], deb["partition_number"]) == (
        "debian", True, "\\EFI\\debian\\shimx64.efi", 1)
    assert deb["partuuid"] == "4a0e1a93-ab44-564a-8bfa-32ea6c397968"
    assert deb["partition"] == "disk0p1"  # found again by the ESP's PARTUUID
    old = e["0003"]
    assert (old["label"], old["active"], old["partition"]) == ("debian-old", False, None)
    assert (e["0001"]["label"], e["0001"]["partuuid"], e["0001"]["loader"]) == (
        "UEFI QEMU DVD-ROM QM00003", None, None)
    schema.validate(uefi)
