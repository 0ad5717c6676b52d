"""Parsers of layout/ against variants the fixtures do not cover; rawdir; schema sections."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from essentials.errors import BundleError
from essentials.layout import boot, fs, mounts, rawdir, schema
from essentials.layout.normalise import normalise

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_rawdir_load_of_the_first_fixture_matches_what_its_test_builds():
    from tests.unit.test_layout_normalise import raw_from_fixture

    raw = rawdir.load(FIXTURES / "layout-gpt-loop")
    want = raw_from_fixture()
    assert {k: raw[k] for k in want} == {**want, "lsblk": raw["lsblk"]}
    assert normalise(raw, "/tmp/probe/mnt")["filesystems"] == normalise(
        want, "/tmp/probe/mnt")["filesystems"]


def test_rawdir_writer_round_trip(tmp_path):
    w = rawdir.RawWriter(tmp_path / "raw")
    w.put("lsblk", "lsblk.json", '{"blockdevices": []}')
    w.put("tune2fs", "tune2fs-dev_sda1.txt", "Block size: 1024\n", "/dev/sda1")
    w.put("blkid", "blkid.yaml", yaml.safe_dump({"/dev/sda1": {"TYPE": "ext4"}}))
    w.record("vgcfgbackup", "lvm-vgcfgbackup-vg0.vg", "vg0")
    w.facts.update(firmware="bios", warnings=["w"])
    w.finish()
    raw = rawdir.load(tmp_path / "raw")
    assert raw == {"lsblk": {"blockdevices": []}, "tune2fs": {"/dev/sda1": "Block size: 1024\n"},
                   "blkid": {"/dev/sda1": {"TYPE": "ext4"}},
                   "vgcfgbackup": {"vg0": "lvm-vgcfgbackup-vg0.vg"},
                   "firmware": "bios", "warnings": ["w"]}
    assert rawdir.safe_name("/dev/mapper/vg-root") == "dev_mapper_vg-root"


def test_xfs_info_external_log_and_stripes():
    text = (
        "meta-data=/dev/md2               isize=512    agcount=16, agsize=1048448 blks\n"
        "         =                       sectsz=4096  attr=2, projid32bit=1\n"
        "         =                       crc=1        finobt=1, sparse=1, rmapbt=0\n"
        "         =                       reflink=1    bigtime=0 inobtcount=0\n"
        "data     =                       bsize=4096   blocks=16775168, imaxpct=25\n"
        "         =                       sunit=128    swidth=256 blks\n"
        "naming   =version 2              bsize=4096   ascii-ci=0, ftype=1\n"
        "log      =external               bsize=4096   blocks=25600, version=2\n"
        "         =                       sectsz=4096  sunit=1 blks, lazy-count=1\n"
        "realtime =none                   extsz=4096   blocks=0, rtextents=0\n")
    p = fs.parse_xfs_info(text)
    assert (p["block_size"], p["inode_size"], p["sector_size"], p["agcount"]) == (
        4096, 512, 4096, 16)
    assert (p["stripe_unit"], p["stripe_width"]) == (128, 256)
    assert (p["log_internal"], p["log_blocks"], p["bigtime"]) == (False, 25600, 0)
    assert "nrext64" not in p and "realtime" not in p


def test_xfs_admin():
    assert fs.parse_xfs_admin('label = "data"\nUUID = 6e0a7b2c\n') == {"label": "data",
                                                                      "uuid": "6e0a7b2c"}
    assert fs.parse_xfs_admin('label = ""\nUUID = u\n') == {"label": None, "uuid": "u"}


def test_btrfs_default_top_level_and_plain_list():
    assert fs.parse_get_default("ID 5 (FS_TREE)\n") == {"id": 5, "path": None}
    assert fs.parse_get_default("") is None
    subs = fs.parse_subvolume_list(
        "ID 256 gen 9 parent 5 top level 5 parent_uuid - uuid u1 path root fs\n"
        "ID 257 gen 9 parent 5 top level 5 parent_uuid u1 uuid u2 path <FS_TREE>/snap\n",
        "ID 257 gen 9 top level 5 path <FS_TREE>/snap\n")
    assert [(s["id"], s["path"], s["parent_uuid"], s["readonly"]) for s in subs] == [
        (256, "root fs", None, False), (257, "snap", "u1", True)]


def test_fstab_escapes_and_short_lines():
    e = mounts.parse_fstab("LABEL=my\\040disk /mnt/my\\040disk ext4\n# c\n\n/dev/x /y\n")
    assert e[0]["spec"] == "LABEL=my disk" and e[0]["file"] == "/mnt/my disk"
    assert (e[0]["options"], e[0]["passno"]) == ("defaults", 0)
    assert e[1] == {"spec": "/dev/x", "file": "/y", "vfstype": None, "options": "defaults",
                    "freq": 0, "passno": 0}


def test_findmnt_bind_and_subvolume_sources():
    m = mounts.mounts_by_source({"filesystems": [
        {"source": "/dev/sda2[/@]", "target": "/", "options": "rw"},
        {"source": "/dev/sda2[/srv/www]", "target": "/var/www", "options": "rw", "fsroot": None},
        {"source": "/dev/sda1", "target": "/boot", "options": "ro", "fsroot": "/"}]})
    assert [(x["target"], x["fsroot"]) for x in m["/dev/sda2"]] == [("/", "/@"),
                                                                    ("/var/www", "/srv/www")]
    assert m["/dev/sda1"][0]["fsroot"] == "/"


def test_efibootmgr_older_spaced_format():
    e = boot.parse_efibootmgr(
        "BootCurrent: 0001\nBootNext: 0003\nBootOrder: 0001,0000\n"
        "Boot0000* Windows Boot Manager  HD(2,GPT,948ff571-d613-4398-ba60-195740bc1695,"
        "0xa00800,0x82000)/File(\\EFI\\Microsoft\\Boot\\bootmgfw.efi)WINDOWS...\n"
        "Boot0001* ubuntu        HD(1,GPT,3195D314-CE88-42AC-BEAC-D9F80289AC11,0x800,0xf9dcd)"
        "/File(\\EFI\\UBUNTU\\SHIMX64.EFI)\n"
        "Boot2001* EFI USB Device\tRC\n")
    assert (e["current"], e["timeout"], e["order"]) == ("0001", None, ["0001", "0000"])
    w, u, usb = e["entries"]
    assert (w["label"], w["partition_number"], w["loader"]) == (
        "Windows Boot Manager", 2, "\\EFI\\Microsoft\\Boot\\bootmgfw.efi")
    assert u["partuuid"] == "3195d314-ce88-42ac-beac-d9f80289ac11"
    assert (usb["label"], usb["device_path"], usb["partuuid"]) == ("EFI USB Device", "RC", None)


def test_debconf_and_install_devices():
    conf = boot.parse_debconf("* grub-pc/install_devices: /dev/sda\n  grub-pc/timeout: 5\n"
                              "  grub2/linux_cmdline:\n")
    assert conf == {"grub-pc/install_devices": "/dev/sda", "grub-pc/timeout": "5",
                    "grub2/linux_cmdline": ""}
    assert boot.grub_install_devices(conf) == ["/dev/sda"]
    b = boot.normalise_boot({"firmware": "bios", "grub_debconf": "* grub-pc/install_devices: "
                             "/dev/disk/by-id/ata-gone\n"}, {"/dev/sda": "disk0"}, {})
    assert b["grub"]["install_devices"] == [{"device": "/dev/disk/by-id/ata-gone",
                                            "path": None, "disk": None}]
    assert b["cmdline"] is None and b["efi"] is None


def test_multipath_from_lsblk_and_multipath_ll():
    """Written from multipath-tools' documented `multipath -ll` output (no dm here)."""
    mp = {"name": "mpatha", "path": "/dev/mapper/mpatha", "type": "mpath", "size": 1 << 30}
    raw = {
        "lsblk": {"blockdevices": [
            {"name": "sda", "path": "/dev/sda", "type": "disk", "size": 1 << 30,
             "children": [dict(mp)]},
            {"name": "sdb", "path": "/dev/sdb", "type": "disk", "size": 1 << 30,
             "children": [dict(mp)]}]},
        "blkid": {"/dev/sda": {"TYPE": "xfs", "UUID": "x"}, "/dev/sdb": {"TYPE": "xfs", "UUID": "x"},
                  "/dev/mapper/mpatha": {"TYPE": "xfs", "UUID": "x"}},
        "multipath": (
            "mpatha (36001405a1b2c3d4e5f60718293a4b5c6) dm-0 LIO-ORG,disk01\n"
            "size=1.0G features='0' hwhandler='1 alua' wp=rw\n"
            "|-+- policy='service-time 0' prio=50 status=active\n"
            "| `- 2:0:0:0 sda 8:0  active ready running\n"
            "`-+- policy='service-time 0' prio=50 status=enabled\n"
            "  `- 3:0:0:0 sdb 8:16 active ready running\n"),
    }
    layout = normalise(raw)
    assert layout["multipath"] == [{
        "id": "mpath0", "name": "mpatha", "path": "/dev/mapper/mpatha", "size": 1 << 30,
        "wwid": "36001405a1b2c3d4e5f60718293a4b5c6", "vendor_product": "LIO-ORG,disk01",
        "paths": ["disk0", "disk1"]}]
    assert any("mpatha" in w and "separate disks" in w for w in layout["warnings"])
    schema.validate(layout)
    assert mounts.parse_multipath(raw["multipath"])["mpatha"]["paths"] == ["/dev/sda",
                                                                          "/dev/sdb"]


def test_older_layouts_without_the_new_sections_still_validate():
    old = {"version": 1, "root": "/", "disks": [{"id": "disk0", "path": "/dev/sda",
                                                 "size": 1}], "filesystems": []}
    assert schema.validate(old) is old
    assert schema.by_id(old) == {"disk0": old["disks"][0]}


@pytest.mark.parametrize("key,value,msg", [
    ("lvm", {}, "'lvm' must be a list, not dict"),
    ("boot", {"firmware": "coreboot"}, "boot.firmware must be uefi or bios"),
    ("fstab", [{"spec": "UUID=x"}], "an fstab entry has no 'file'"),
    ("fstab", [{"spec": "UUID=x", "file": "/", "filesystem": "fs9"}],
     "fstab entry / refers to filesystem 'fs9'"),
    ("luks", [{"id": "luks0", "device_path": "/dev/sda2", "uuid": "u", "device": "disk5"}],
     "LUKS container /dev/sda2 refers to 'disk5'"),
    ("multipath", [{"id": "mpath0", "name": "m", "path": "/dev/mapper/m", "paths": ["x"]}],
     "multipath map m refers to 'x'"),
])
def test_validate_new_sections(key, value, msg):
    layout = {"version": 1, "disks": [{"id": "disk0", "path": "/dev/sda", "size": 1}],
              "filesystems": [], key: value}
    with pytest.raises(BundleError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        schema.validate(copy.deepcopy(layout))


def test_json_fixture_files_are_valid():
    for p in FIXTURES.glob("layout-*/*.json"):
        json.loads(p.read_text())


def test_kernel_args_drop_the_boot_image_version():
    from essentials.layout.boot import kernel_args
    assert kernel_args("BOOT_IMAGE=/boot/vmlinuz-6.1.0-27-amd64 root=UUID=abc ro quiet\n") \
        == "root=UUID=abc ro quiet"
    assert kernel_args("BOOT_IMAGE=/vmlinuz") is None
    assert kernel_args(None) is None


def test_used_bytes_from_tune2fs_and_btrfs_super():
    from essentials.layout.fs import ext_used, parse_btrfs_super
    t = "Block count:              61440\nFree blocks:              51200\nBlock size:               1024\n"
    assert ext_used(t) == (61440 - 51200) * 1024
    assert ext_used("Block count: 10\n") is None
    assert parse_btrfs_super("bytes_used\t\t147456\nnodesize\t\t16384\n")["bytes_used"] == 147456


def test_check_ignores_used_bytes():
    from essentials.layout.diff import diff
    a = {"filesystems": [{"uuid": "u1", "used": 100, "label": "x"}]}
    b = {"filesystems": [{"uuid": "u1", "used": 999, "label": "x"}]}
    assert diff(a, b) == []
