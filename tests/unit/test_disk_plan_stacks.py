"""Plans rendered from realistic layouts, compared with the commands they must run.

In the style of curtin's SFDiskPartTable.render() tests: no mocks, the
rendered argv (and sfdisk scripts) against what was written down by hand.
The MBR server and the btrfs workstation are the captured fixtures
(tests/fixtures/layout-*); the LVM, MD and LUKS machines are written
layouts (tests/fixtures/plans/README), since this kernel cannot build them.
"""

from pathlib import Path

import pytest
import yaml

from essentials.errors import AmdrError
from essentials.layout import rawdir, schema
from essentials.layout.normalise import normalise
from essentials.runner import Result, Runner
from recovery.disks.plan import PlanError, plan_disks
from recovery.disks.stack import Passphrase

FIX = Path(__file__).resolve().parent.parent / "fixtures"
PLANS = FIX / "plans"
GIB = 1024 ** 3
MIB = 1024 ** 2


def load_plan_fixture(name: str) -> dict:
    return schema.validate(yaml.safe_load((PLANS / f"{name}.yaml").read_text()), name)


def bundle_file(rel: str) -> str:
    return "/run/amdr/bundle/" + rel


def read_fixture(name: str):
    return lambda rel: (PLANS / name / Path(rel).name).read_text()


def commands(actions) -> dict[str, list[str]]:
    return {a.id: [" ".join(argv) for argv in a.render()] for a in actions}


def asked():
    raise AssertionError("the passphrase must not be asked while planning")


# -- a BIOS/MBR server with an extended partition (captured) -------------------------

@pytest.fixture(scope="module")
def mbr_layout():
    return normalise(rawdir.load(FIX / "layout-mbr-loop"), root="/var/tmp/amdr-layout-2f1qqdxn/mnt")


def test_bios_mbr_server_with_extended_partitions(mbr_layout):
    actions = plan_disks(mbr_layout, {"/dev/loop0": "/dev/sdb"}, {"/dev/sdb": 500 * MIB},
                         "/target")
    assert [a.id for a in actions] == [
        "preflight", "wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1", "format-fs2",
        "format-fs3", "mount-fs0", "mount-fs1", "mount-fs2"]
    table = actions[2]
    assert table.script() == (
        "label: dos\n"
        "label-id: 0x5eed1e55\n"
        "unit: sectors\n"
        "\n"
        "/dev/sdb1 : start=2048, size=122880, type=83, bootable\n"
        "/dev/sdb2 : start=124928, size=899072, type=5\n"
        "/dev/sdb5 : start=126976, size=655360, type=83\n"
        "/dev/sdb6 : start=784384, size=81920, type=c\n"
        "/dev/sdb7 : start=868352, size=40960, type=82\n")
    assert commands(actions[3:]) == {
        "format-fs0": [
            "mkfs.ext4 -F -q -U 3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b -L mbr-root "
            "-O none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,"
            "inline_data,sparse_super,large_file,dir_nlink,extra_isize "
            "-b 2048 -I 512 -N 15360 -m 3.0 -e remount-ro /dev/sdb1",
            "tune2fs -c 25 -i 1209600s -o user_xattr,acl /dev/sdb1"],
        "format-fs1": [
            "mkfs.xfs -f -q -m uuid=6e0a7b2c-1d3e-4f5a-9b8c-7d6e5f4a3b2c,crc=1,finobt=1,rmapbt=0,"
            "reflink=1,bigtime=1,inobtcount=1 -L mbr-xfs -b size=4096 -d agcount=4 "
            "-i size=1024,sparse=1,nrext64=0 -s size=512 -n ftype=1 -l size=16384b /dev/sdb5"],
        "format-fs2": ["mkfs.vfat -F 32 -i 4A3B2C1D -n MBRFAT /dev/sdb6"],
        "format-fs3": ["mkswap -f -U 7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d -L mbr-swap /dev/sdb7"],
        # the vfat was not mounted when collected: fstab says where it goes
        "mount-fs0": ["mkdir -p /target", "mount -t ext4 /dev/sdb1 /target"],
        "mount-fs1": ["mkdir -p /target/srv", "mount -t xfs /dev/sdb5 /target/srv"],
        "mount-fs2": ["mkdir -p /target/boot/efi", "mount -t vfat /dev/sdb6 /target/boot/efi"],
    }


def test_mbr_larger_disk_leaves_swap_and_room_at_the_end(mbr_layout):
    actions = plan_disks(mbr_layout, {"/dev/loop0": "/dev/sdb"}, {"/dev/sdb": GIB}, "/t")
    table = actions[2]
    assert [(p.number, p.start, p.size) for p in table.partitions] == [
        (1, 2048, 122880), (2, 124928, 899072), (5, 126976, 655360), (6, 784384, 81920),
        (7, 868352, 40960)]
    # (the extended partition ends at 500 MiB, past the swap)
    assert table.notes == ["524.0 MiB at the end of /dev/sdb left unallocated: the last "
                           "partition /dev/loop0p7 holds swap, which keeps its size"]


def test_mbr_larger_disk_grows_a_logical_partition_and_its_container(mbr_layout):
    layout = dict(mbr_layout)
    layout["filesystems"] = [f for f in mbr_layout["filesystems"] if f["type"] != "swap"]
    layout["filesystems"].append({"id": "fs9", "device": "disk0p7", "device_path": "/dev/loop0p7",
                                  "type": "ext4", "uuid": "0e0e0e0e-1111-4222-8333-444455556666",
                                  "label": None, "mountpoint": "/var", "params": {}})
    actions = plan_disks(layout, {"/dev/loop0": "/dev/sdb"}, {"/dev/sdb": GIB}, "/t")
    table = actions[2]
    # the disk has 524 MiB (1073152 sectors) more: p7 gains them, and so does the
    # extended partition, which still ends 56 MiB after its last logical one
    assert [(p.number, p.start, p.size) for p in table.partitions] == [
        (1, 2048, 122880), (2, 124928, 899072 + 1073152), (5, 126976, 655360),
        (6, 784384, 81920), (7, 868352, 40960 + 1073152)]
    assert table.notes == ["/dev/loop0p7 (ext4 on /var) grows from 20.0 MiB to 544.0 MiB: "
                           "/dev/sdb is larger"]


# -- UEFI + GPT + LVM with a thin pool (written) ------------------------------------------

def test_uefi_gpt_lvm():
    layout = load_plan_fixture("uefi-gpt-lvm")
    actions = plan_disks(layout, {"/dev/nvme0n1": "/dev/nvme1n1"}, {"/dev/nvme1n1": 64 * GIB},
                         "/target", files=bundle_file, read=read_fixture("uefi-gpt-lvm"),
                         workdir="/target.amdr")
    assert [a.id for a in actions] == [
        "preflight", "wipe-disk0", "ptable-disk0", "pv-disk0p3", "vg-vg0", "format-fs0",
        "format-fs1", "format-fs3", "format-fs4", "format-fs5", "format-fs6",
        "mount-fs3", "mount-fs1", "mount-fs5", "mount-fs0", "mount-fs6"]
    assert actions[2].script() == (
        "label: gpt\n"
        "label-id: 6E9C1D2A-3B4F-4C5D-8E7F-901A2B3C4D5E\n"
        "first-lba: 2048\n"
        "last-lba: 134217694\n"
        "unit: sectors\n"
        "\n"
        "/dev/nvme1n1p1 : start=2048, size=1048576, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, "
        'uuid=1C2D3E4F-5A6B-4C7D-8E9F-0A1B2C3D4E5F, name="EFI System Partition"\n'
        "/dev/nvme1n1p2 : start=1050624, size=2097152, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, "
        'uuid=2D3E4F5A-6B7C-4D8E-9FA0-1B2C3D4E5F60, name="boot"\n'
        "/dev/nvme1n1p3 : start=3147776, size=131067904, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, "
        'uuid=3E4F5A6B-7C8D-4E9F-A0B1-2C3D4E5F6071, name="lvm"\n')
    rf = "/run/amdr/bundle/layout/raw/lvm-vgcfgbackup-vg0.vg"
    got = commands(actions)
    assert got["pv-disk0p3"] == [
        f"pvcreate --yes --uuid Xy7Kq2-Lm3N-4Op5-Qr6S-7Tu8-Vw9X-0Yz1Ab --restorefile {rf} "
        f"/dev/nvme1n1p3"]
    assert got["vg-vg0"] == [
        f"vgcfgrestore --file {rf} --force vg0",
        # the restored metadata LV swapped out, filled, swapped back (its UUID and
        # extents kept, as the VM round trip checks)
        "lvcreate --yes --activate n --zero n --size 4194304b --name amdr_meta_pool vg0",
        "lvconvert --yes --thinpool vg0/pool --poolmetadata vg0/amdr_meta_pool",
        "lvchange --yes --activate y vg0/amdr_meta_pool",
        "thin_restore -i /target.amdr/thin-vg0-pool.xml -o /dev/vg0/amdr_meta_pool",
        "lvchange --yes --activate n vg0/amdr_meta_pool",
        "lvconvert --yes --thinpool vg0/pool --poolmetadata vg0/amdr_meta_pool",
        "lvremove --yes vg0/amdr_meta_pool",
        "vgchange --activate y vg0"]
    vg = actions[4]
    # the LVs something is made on, waited for after activation
    assert vg.lvs == ["/dev/vg0/data", "/dev/vg0/home", "/dev/vg0/root", "/dev/vg0/swap"]
    assert vg.thin_pools[0]["xml"] == (
        '<superblock uuid="" time="0" transaction="3" flags="0" version="2" '
        'data_block_size="128" nr_data_blocks="32768">\n'
        '  <device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" '
        'snap_time="0">\n'
        "  </device>\n"
        '  <device dev_id="3" mapped_blocks="0" transaction="0" creation_time="0" '
        'snap_time="0">\n'
        "  </device>\n"
        "</superblock>\n")
    assert "xml" not in vg.to_dict()["thin_pools"][0]
    ext4 = ("-O none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,"
            "sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum "
            "-b 4096 -I 256")
    assert got["format-fs0"] == ["mkfs.vfat -F 32 -i 7A3B91C4 -n ESP /dev/nvme1n1p1"]
    assert got["format-fs1"] == [
        f"mkfs.ext4 -F -q -U b2c3d4e5-f607-4819-a2b3-c4d5e6f70819 -L boot {ext4} -N 65536 "
        f"-m 5.0 -e continue /dev/nvme1n1p2",
        "tune2fs -c -1 -i 0s -o user_xattr,acl /dev/nvme1n1p2"]
    assert got["format-fs3"][0].endswith("-N 655360 -m 5.0 -e continue /dev/vg0/root")
    assert got["format-fs4"] == ["mkswap -f -U d4e5f607-1829-4a4b-84d5-e6f708192a3b "
                                 "/dev/vg0/swap"]
    assert got["format-fs5"] == [
        "mkfs.xfs -f -q -m uuid=e5f60718-293a-4b5c-95e6-f708192a3b4c,crc=1,finobt=1,rmapbt=0,"
        "reflink=1,bigtime=1,inobtcount=1 -L home -b size=4096 -d agcount=4 "
        "-i size=512,sparse=1,nrext64=0 -s size=512 -n ftype=1 -l size=6144b /dev/vg0/home"]
    assert got["format-fs6"][0].endswith("-L data " + ext4 + " -N 262144 -m 5.0 -e continue "
                                         "/dev/vg0/data")
    assert [(m.mountpoint, m.path) for m in actions[11:]] == [
        ("/", "/dev/vg0/root"), ("/boot", "/dev/nvme1n1p2"), ("/home", "/dev/vg0/home"),
        ("/boot/efi", "/dev/nvme1n1p1"), ("/srv/data", "/dev/vg0/data")]
    assert actions[0].tools == [
        "wipefs", "sfdisk", "partx", "pvcreate", "vgcfgrestore", "lvcreate", "lvconvert",
        "lvchange", "thin_restore", "lvremove", "vgchange", "mkfs.vfat", "mkfs.ext4",
        "tune2fs", "mkswap", "mkfs.xfs", "mkdir", "mount"]


def test_thin_pool_needs_room_in_the_vg():
    layout = load_plan_fixture("uefi-gpt-lvm")
    layout["lvm"][0]["free"] = MIB
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/nvme0n1": "/dev/nvme1n1"}, {}, "/t", files=bundle_file,
                   read=read_fixture("uefi-gpt-lvm"))
    assert ("volume group vg0: remaking a thin pool's metadata needs 4.0 MiB free in the "
            "volume group for a moment, it has 1.0 MiB") in str(e.value)


def test_lvm_pv_on_a_larger_disk_is_resized():
    layout = load_plan_fixture("uefi-gpt-lvm")
    actions = plan_disks(layout, {"/dev/nvme0n1": "/dev/sdb"}, {"/dev/sdb": 128 * GIB}, "/t",
                         files=bundle_file, read=read_fixture("uefi-gpt-lvm"))
    table, vg = actions[2], actions[4]
    assert table.partitions[2].size == 128 * GIB // 512 - 2048 - 3147776
    assert table.last_lba is None  # sfdisk puts the backup GPT at the new end
    assert table.notes == ["/dev/nvme0n1p3 (LVM2_member) grows from 62.5 GiB to 126.5 GiB: "
                           "/dev/sdb is larger"]
    assert vg.render()[1] == ["pvresize", "/dev/sdb3"]
    assert vg.notes == ["/dev/sdb3 grew: the volume group gains the room as free extents "
                        "(lvextend what should use it)"]
    # the LVs keep their sizes: the filesystems on them are made as they were
    fmt = next(a for a in actions if a.id == "format-fs3")
    assert "-N 655360" in " ".join(fmt.render()[0])


# -- MD RAID1 with LVM on top (written) -----------------------------------------------------

def test_md_raid1_with_lvm():
    layout = load_plan_fixture("md-raid1-lvm")
    actions = plan_disks(layout, {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"}, {}, "/target",
                         files=bundle_file)
    assert [a.id for a in actions] == [
        "preflight", "wipe-disk0", "wipe-disk1", "ptable-disk0", "ptable-disk1", "md-array0",
        "pv-array0", "vg-vg0", "format-fs3", "format-fs4", "mount-fs3"]
    assert actions[3].script().splitlines()[6:] == [
        "/dev/sdc1 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, "
        'uuid=A1B2C3D4-0000-4000-8000-000000000001, name="bios"',
        "/dev/sdc2 : start=4096, size=33548288, type=A19D880F-05FC-4D3B-A006-743F0F84911E, "
        'uuid=A1B2C3D4-0000-4000-8000-000000000002, name="raid"']
    rf = "/run/amdr/bundle/layout/raw/lvm-vgcfgbackup-vgsys.vg"
    got = commands(actions)
    assert got["md-array0"] == [
        "mdadm --create /dev/md0 --run --level=raid1 --raid-devices=2 --metadata=1.2 "
        "--uuid=3f1a2b3c:4d5e6f70:8192a3b4:c5d6e7f8 --name=srv01:0 --bitmap=internal "
        "/dev/sdc2 /dev/sdd2"]
    assert got["pv-array0"] == [
        f"pvcreate --yes --uuid Md1Pv2-Aa3B-Bb4C-Cc5D-Dd6E-Ee7F-Ff8G9H --restorefile {rf} "
        f"/dev/md0"]
    assert got["vg-vg0"] == [f"vgcfgrestore --file {rf} vgsys", "vgchange --activate y vgsys"]
    assert got["format-fs4"] == ["mkswap -f -U 1b2c3d4e-5f6a-4b7c-9d8e-9f0a1b2c3d4e "
                                 "/dev/vgsys/swap"]
    assert got["mount-fs3"] == ["mkdir -p /target", "mount -t ext4 /dev/vgsys/root /target"]


def test_md_fixture_raid5_spare_and_degraded_raid1():
    """The captured-format mdadm fixture: a degraded RAID1 and a RAID5 with a spare."""
    layout = normalise(rawdir.load(FIX / "layout-md"))
    mapping = {d["path"]: d["path"].replace("/dev/sd", "/dev/vd") for d in layout["disks"]}
    actions = plan_disks(layout, mapping, {}, "/target")
    got = commands(actions)
    assert got["md-array1"] == [
        "mdadm --create /dev/md1 --run --level=raid1 --raid-devices=2 --metadata=1.2 "
        "--uuid=9e27c4d1:5b3a4f68:a0d26c1e:8b7f4a95 --name=backup01:1 --bitmap=none "
        "/dev/vda2 missing"]
    assert got["md-array2"] == [
        "mdadm --create /dev/md2 --run --level=raid5 --raid-devices=3 --metadata=1.2 "
        "--uuid=3b1f9d2c:7a4e8b6d:c5f0e9a1:28d7b4c3 --name=backup01:2 --chunk=512K "
        "--layout=left-symmetric --bitmap=none --spare-devices=1 /dev/vdc /dev/vdd /dev/vde "
        "/dev/vdf"]
    md1 = next(a for a in actions if a.id == "md-array1")
    assert md1.notes == ["slot 1 had no working member on the original system: the array is "
                         "created degraded (add a disk with mdadm --add later)"]
    # whole-disk members: nothing but a wipe on those disks
    assert [a.id for a in actions if a.type in ("wipe", "partition_table")] == [
        "wipe-disk0", "wipe-disk1", "wipe-disk2", "wipe-disk3", "wipe-disk4", "wipe-disk5",
        "ptable-disk0", "ptable-disk1"]
    assert got["format-fs8"][0].startswith("mkfs.ext4 -F -q -U 0b3c2f2e-8d5a-4f0e-9c1d-"
                                           "5a6b7c8d9e0f -L root /dev/md0")
    assert got["format-fs10"] == ["mkfs.xfs -f -q -m uuid=c4d5e6f7-0819-4a2b-9c3d-4e5f60718293 "
                                  "-L srv /dev/md2"]


# -- LUKS with LVM inside (written) -----------------------------------------------------------

def test_luks_with_lvm_inside_and_a_key_file():
    layout = load_plan_fixture("luks-lvm")
    actions = plan_disks(layout, {"/dev/vda": "/dev/vdb"}, {}, "/target", files=bundle_file,
                         luks_keys={"*": "/root/new.key"}, passphrase=Passphrase(asked))
    assert [a.id for a in actions] == [
        "preflight", "wipe-disk0", "ptable-disk0", "luks-luks0", "open-luks0", "pv-luks0",
        "vg-vg0", "format-fs0", "format-fs1", "format-fs4", "format-fs5", "mount-fs4",
        "mount-fs1", "mount-fs0"]
    rf = "/run/amdr/bundle/layout/raw/lvm-vgcfgbackup-debian-vg.vg"
    got = commands(actions)
    assert got["luks-luks0"] == [
        "cryptsetup luksFormat --batch-mode --type luks2 --uuid 7e8f90a1-b2c3-4d4e-8f5a-"
        "6b7c8d9e0f1a --cipher aes-xts-plain64 --key-size 512 --hash sha256 --pbkdf argon2id "
        "--sector-size 512 --offset 32768 --key-file /root/new.key /dev/vdb3"]
    # the mapping keeps its crypttab name: the restored crypttab and fstab still match
    assert got["open-luks0"] == [
        "cryptsetup open --type luks --key-file /root/new.key /dev/vdb3 vda3_crypt"]
    assert got["pv-luks0"] == [
        f"pvcreate --yes --uuid Lk1Pv2-Aa3B-Bb4C-Cc5D-Dd6E-Ee7F-Ff8G9H --restorefile {rf} "
        f"/dev/mapper/vda3_crypt"]
    assert got["vg-vg0"] == [f"vgcfgrestore --file {rf} debian-vg",
                             "vgchange --activate y debian-vg"]
    assert got["format-fs1"] == [
        "mkfs.ext2 -F -q -U 6d7e8f90-a1b2-4c3d-9e4f-5a6b7c8d9e0f "
        "-O none,ext_attr,resize_inode,dir_index,filetype,sparse_super,large_file "
        "-b 1024 -I 256 -N 124928 -m 5.0 /dev/vdb2",
        "tune2fs -c -1 -i 0s /dev/vdb2"]
    assert got["format-fs4"][0].endswith(" /dev/debian-vg/root")
    assert got["mount-fs4"] == ["mkdir -p /target", "mount -t ext4 /dev/debian-vg/root /target"]
    assert actions[0].passphrase_for == []


def test_luks_passphrase_goes_on_stdin_never_in_argv_or_plan():
    layout = load_plan_fixture("luks-lvm")
    secret = "correct horse battery staple"
    calls = []

    def ask():
        calls.append(1)
        return secret

    actions = plan_disks(layout, {"/dev/vda": "/dev/vdb"}, {}, "/target", files=bundle_file,
                         passphrase=Passphrase(ask))
    fmt, opened = actions[3], actions[4]
    assert fmt.render()[0][-3:] == ["--key-file", "-", "/dev/vdb3"]
    assert opened.render() == [["cryptsetup", "open", "--type", "luks", "--key-file", "-",
                                "/dev/vdb3", "vda3_crypt"]]
    shown = yaml.safe_dump([a.to_dict() for a in actions])
    assert secret not in shown and "passphrase asked when applying" in shown
    assert fmt.to_dict()["commands"][0].endswith("--key-file - /dev/vdb3 <<passphrase")
    assert secret not in fmt.fingerprint() and calls == []
    assert actions[0].passphrase_for == ["luks0"]
    runner = Runner(dry_run=True)
    for a in actions[:5]:
        a.apply(runner)
    assert calls == []  # a dry run asks nothing
    # applied for real, the preflight asks once, and both commands get it on stdin
    actions[0].passphrase()
    data = fmt.steps()[0].secret_stdin()
    assert data == secret.encode() and opened.steps()[0].secret_stdin() == data
    assert calls == [1]


def test_luks_without_key_or_passphrase_is_refused_up_front():
    layout = load_plan_fixture("luks-lvm")
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/vda": "/dev/vdb"}, {}, "/t", files=bundle_file)
    assert "/dev/vda3: LUKS container with no key file and no passphrase" in str(e.value)


def test_luks1_container_from_the_captured_fixture():
    layout = normalise(rawdir.load(FIX / "layout-luks"))
    actions = plan_disks(layout, {"/dev/loop0": "/dev/vdc"}, {}, "/t",
                         luks_keys={"cryptold": "/keys/old.key", "*": "/keys/new.key"})
    got = commands(actions)
    assert got["luks-luks0"] == [
        "cryptsetup luksFormat --batch-mode --type luks2 --uuid 2b5e9d3c-6a1f-4e7b-9c8d-"
        "0f1e2d3c4b5a --cipher aes-xts-plain64 --key-size 512 --hash sha256 --pbkdf argon2id "
        "--sector-size 512 --label cryptroot --offset 32768 --key-file /keys/new.key "
        "/dev/vdc1"]
    assert got["luks-luks1"] == [
        "cryptsetup luksFormat --batch-mode --type luks1 --uuid 4c3b2a19-8d7e-4f6a-b5c4-"
        "d3e2f1a0b9c8 --cipher aes-cbc-essiv:sha256 --key-size 256 --hash sha1 --offset 4096 "
        "--key-file /keys/old.key /dev/vdc2"]
    assert got["open-luks1"] == ["cryptsetup open --type luks --key-file /keys/old.key "
                                 "/dev/vdc2 cryptold"]


# -- btrfs with subvolumes (captured) ----------------------------------------------------------

def test_btrfs_with_subvolumes_and_default():
    raw = rawdir.load(FIX / "layout-btrfs-loop")
    raw.update(rawdir.load(FIX / "layout-boot-uefi"))
    layout = normalise(raw, root="/var/tmp/amdr-layout-38opcikv/mnt")
    actions = plan_disks(layout, {"/dev/loop0": "/dev/vdb"}, {"/dev/vdb": 300 * MIB},
                         "/target", workdir="/target.amdr")
    assert [a.id for a in actions] == ["preflight", "wipe-disk0", "ptable-disk0", "format-fs0",
                                       "format-fs1", "mount-fs1", "mount-fs1-1"]
    got = commands(actions)
    mnt = "/target.amdr/mnt-fs1"
    assert got["format-fs1"] == [
        "mkfs.btrfs -f -q -U 9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d -L gpt-btrfs -n 32768 -s 4096 "
        "--csum crc32c -d single -m dup -O extref,skinny-metadata,no-holes "
        "-R free-space-tree /dev/vdb2",
        f"mkdir -p {mnt}",
        f"mount -t btrfs /dev/vdb2 {mnt}",
        # in the order of their ids (256...260), so each gets its own id back
        f"btrfs subvolume create {mnt}/@",
        f"btrfs subvolume create {mnt}/@home",
        f"btrfs subvolume create {mnt}/@/var-lib",  # inside @: after it
        f"btrfs subvolume create {mnt}/@snapshots",
        f"btrfs subvolume create {mnt}/@snapshots/home-1",
        f"btrfs subvolume set-default {mnt}/@",
        f"umount {mnt}"]
    assert got["format-fs0"] == ["mkfs.vfat -F 32 -i B0CA1E5E -n ESP /dev/vdb1"]
    assert got["mount-fs1"] == ["mkdir -p /target", "mount -t btrfs -o subvol=@ /dev/vdb2 /target"]
    assert got["mount-fs1-1"] == ["mkdir -p /target/home",
                                  "mount -t btrfs -o subvol=@home /dev/vdb2 /target/home"]
    fmt = actions[4]
    assert fmt.notes == ["read-only subvolumes are made writable, for the restore to fill "
                         "them: @snapshots/home-1"]
    assert fmt.to_dict()["subvolumes"] == ["@", "@home", "@/var-lib", "@snapshots",
                                           "@snapshots/home-1"]
    assert fmt.to_dict()["default_subvolume"] == "@"


# -- two original disks of different sizes, on larger disks ---------------------------------------

def two_disks_layout():
    esp, linux = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    return schema.validate({
        "version": 1, "root": "/",
        "disks": [
            {"id": "disk0", "path": "/dev/sda", "size": 20 * GIB, "sector_size": 512,
             "serial": "OLDSYS01", "ptable": {"label": "gpt", "id": "11111111-2222-4333-8444-555555555555",
                                              "first_lba": 2048, "last_lba": 41943006, "partitions": [
                 {"id": "disk0p1", "number": 1, "path": "/dev/sda1", "start": 2048, "size": 1048576,
                  "type": esp, "uuid": "AAAA0001-0000-4000-8000-000000000001", "name": "EFI"},
                 {"id": "disk0p2", "number": 2, "path": "/dev/sda2", "start": 1050624,
                  "size": 40890368, "type": linux, "uuid": "AAAA0002-0000-4000-8000-000000000002",
                  "name": "root"}]}},
            {"id": "disk1", "path": "/dev/sdb", "size": 100 * GIB, "sector_size": 512,
             "serial": "OLDDATA1", "ptable": None}],
        "filesystems": [
            {"id": "fs0", "device": "disk0p1", "device_path": "/dev/sda1", "type": "vfat",
             "uuid": "1234-ABCD", "label": None, "mountpoint": "/boot/efi", "params": {}},
            {"id": "fs1", "device": "disk0p2", "device_path": "/dev/sda2", "type": "ext4",
             "uuid": "0c0c0c0c-1111-4222-8333-444444444444", "label": "root", "mountpoint": "/",
             "used": 6 * GIB, "params": {"block_size": 4096, "inode_count": 1277952}},
            {"id": "fs2", "device": "disk1", "device_path": "/dev/sdb", "type": "xfs",
             "uuid": "0d0d0d0d-1111-4222-8333-444444444444", "label": "srv", "mountpoint": "/srv",
             "used": 40 * GIB, "params": {"agcount": 4, "log_blocks": 51200}}],
    }, "two-disks")


def lsblk_disk(path, size, **kw):
    d = {"path": path, "name": path.rsplit("/", 1)[1], "type": "disk", "size": size,
         "log-sec": 512, "serial": None, "wwn": None, "rm": False, "hotplug": False,
         "ro": False, "fstype": None, "pttype": None, "children": None}
    d.update(kw)
    return d


def test_two_disks_of_different_sizes_on_larger_disks():
    from recovery.disks.mapping import match_disks
    from recovery.disks.plan import needed_disks

    layout = two_disks_layout()
    present = [lsblk_disk("/dev/vda", 16 * GIB, fstype="ext4"),
               lsblk_disk("/dev/vdb", 32 * GIB), lsblk_disk("/dev/vdc", 250 * GIB),
               lsblk_disk("/dev/vdd", 64 * GIB, rm=True)]
    m = match_disks(needed_disks(layout), present, {}, {})
    assert m.mapping == {"/dev/sdb": "/dev/vdc", "/dev/sda": "/dev/vdb"}
    actions = plan_disks(layout, m.mapping, {}, "/target",
                         present={p["path"]: p for p in present}, reasons=m.reasons)
    assert [a.id for a in actions] == ["preflight", "wipe-disk0", "wipe-disk1", "ptable-disk0",
                                       "format-fs0", "format-fs1", "format-fs2", "mount-fs1",
                                       "mount-fs2", "mount-fs0"]
    wipe0, wipe1, table = actions[1], actions[2], actions[3]
    assert (wipe0.device, wipe0.matched) == (
        "/dev/vdb", "size: the smallest free disk larger than 20.0 GiB (32.0 GiB)")
    assert (wipe1.device, wipe1.matched) == (
        "/dev/vdc", "size: the smallest free disk larger than 100.0 GiB (250.0 GiB)")
    # the root partition grows to the end of the 32 GiB disk, aligned to 1 MiB
    end = (32 * GIB // 512 - 33) // 2048 * 2048
    assert [(p.start, p.size) for p in table.partitions] == [(2048, 1048576),
                                                             (1050624, end - 1050624)]
    assert table.notes == ["/dev/sda2 (ext4 on /) grows from 19.5 GiB to 31.5 GiB: /dev/vdb is "
                           "larger"]
    got = commands(actions)
    # geometry that follows the size is scaled (inodes) or left to mkfs (agcount, log)
    inodes = round(1277952 * (end - 1050624) / 40890368)
    assert inodes == 2064463
    assert got["format-fs1"] == ["mkfs.ext4 -F -q -U 0c0c0c0c-1111-4222-8333-444444444444 "
                                 f"-L root -b 4096 -N {inodes} /dev/vdb2"]
    assert got["format-fs2"] == ["mkfs.xfs -f -q -m uuid=0d0d0d0d-1111-4222-8333-444444444444 "
                                 "-L srv /dev/vdc"]
    assert actions[6].scale == 2.5


def test_whole_disk_filesystem_on_a_smaller_disk():
    layout = two_disks_layout()
    ok = plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdc"},
                    {"/dev/vdc": 60 * GIB}, "/t")
    assert ok[3].notes == [] and ok[2].type == "wipe"
    xfs = next(a for a in ok if a.id == "format-fs2")
    assert xfs.scale == 0.6
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdc"},
                   {"/dev/vdc": 40 * GIB}, "/t")
    assert str(e.value).splitlines()[1] == (
        f"  /dev/vdc is too small for /dev/sdb: the whole disk held xfs on /srv, "
        f"{100 * GIB} bytes (100.0 GiB), /dev/vdc has {40 * GIB} (40.0 GiB); it uses 40.0 GiB, "
        f"44.0 GiB needed with the margin; /dev/vdc needs at least 44.0 GiB")


# -- what cannot be recreated, reported per device, up front ------------------------------------

def test_unsupported_stacks_reported_per_device():
    layout = load_plan_fixture("uefi-gpt-lvm")
    vg = layout["lvm"][0]
    vg["logical_volumes"][1]["segtype"] = "raid1"
    vg["logical_volumes"][4]["origin"] = "home"
    vg["logical_volumes"][4]["segtype"] = "linear"
    vg["vgcfgbackup"] = None
    layout["filesystems"][5]["params"]["realtime"] = "external"
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {}, {}, "/t")
    assert str(e.value).splitlines()[1:] == [
        "  /dev/mapper/vg0-home: XFS with an external log or realtime section cannot be "
        "recreated yet",
        "  volume group vg0: the bundle has no vgcfgbackup of it, which vgcfgrestore needs",
        "  /dev/vg0/home: segment type raid1 cannot be recreated from the volume group metadata",
        "  /dev/vg0/root: a snapshot cannot be recreated from the volume group metadata",
        f"  /dev/nvme0n1 ({64 * GIB} bytes, 64.0 GiB): no disk mapped to it; give --map "
        f"/dev/nvme0n1=NEWDISK",
    ]


def test_preflight_refuses_missing_tools_before_anything(only_path):
    """Two tools the plan needs are not on this system's search path: the real
    probes of the inventory say so, with the apt-get line, before any action."""
    import shutil

    layout = load_plan_fixture("md-raid1-lvm")
    actions = plan_disks(layout, {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"}, {}, "/t",
                         files=bundle_file)
    for t in preflight_tools(actions):
        if t not in ("mdadm", "vgcfgrestore"):
            (only_path / t).symlink_to(shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin"))
    with pytest.raises(AmdrError) as e:
        actions[0].apply(Runner(dry_run=True))
    assert str(e.value).splitlines() == [
        "nothing was changed: the disk plan needs tools that are missing or broken here:",
        "  mdadm (mdadm): not installed (Debian package mdadm)",
        "  vgcfgrestore (lvm2): not installed (Debian package lvm2)",
        "  mend it with: apt-get install -y mdadm lvm2"]


def preflight_tools(actions):
    from recovery.disks import preflight
    return preflight.tools_of(actions)


def test_stack_on_a_disk_that_was_not_collected():
    layout = load_plan_fixture("luks-lvm")
    layout["luks"][0]["device"] = None
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/vda": "/dev/vdb"}, {}, "/t", luks_keys={"*": "/k"})
    assert str(e.value).splitlines()[1:] == [
        "  /dev/vda3: a LUKS container the layout has no luksDump of: cannot recreate it",
        "  /dev/vda3: LUKS container on a disk that was not collected"]
    layout = load_plan_fixture("md-raid1-lvm")
    layout["lvm"][0]["physical_volumes"][0]["device"] = None
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"}, {}, "/t")
    assert str(e.value).splitlines()[1:] == [
        "  volume group vgsys: physical volume /dev/md0 is on a disk that was not collected"]


class Found(Runner):
    """blkid -t UUID=...: the devices found, the same for every UUID (a list) or
    per UUID=... (a dict); records what it was asked."""

    def __init__(self, devices):
        super().__init__()
        self.devices, self.calls = devices, []

    def run(self, argv, **kw):
        self.calls.append(argv)
        found = (self.devices.get(argv[-1], []) if isinstance(self.devices, dict)
                 else self.devices)
        return Result(argv, 0 if found else 2, "\n".join(found).encode())


def test_preflight_refuses_a_btrfs_uuid_on_a_disk_that_stays():
    raw = rawdir.load(FIX / "layout-btrfs-loop")
    layout = normalise(raw, root="/var/tmp/amdr-layout-38opcikv/mnt")
    actions = plan_disks(layout, {"/dev/loop0": "/dev/vdb"}, {}, "/t")
    pre = actions[0]
    assert pre.unique_uuids == ["9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"]
    assert pre.wiped == ["/dev/vdb"]

    ok = Found(["/dev/vdb2"])  # on the disk being recreated: it goes with the wipe
    pre.apply(ok)
    # the btrfs UUID first (refused), then the others (warned about)
    assert ok.calls == [["blkid", "-c", "/dev/null", "-o", "device", "-t", f"UUID={u}"]
                        for u in ["9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"]
                        + [u for u, _ in pre.other_uuids]]
    assert len(pre.other_uuids) >= 1
    pre.apply(Found([]))
    with pytest.raises(AmdrError) as e:
        pre.apply(Found(["/dev/vdb2", "/dev/sdc2"]))
    assert str(e.value) == (
        "nothing was changed: /dev/sdc2 carries the btrfs UUID 9c8b7a6d-5e4f-4a3b-9c2d-"
        "1e0f9a8b7c6d the plan recreates, and mkfs.btrfs refuses a UUID it finds on another "
        "device: detach that disk or wipe it (wipefs -a /dev/sdc2)")
    with pytest.raises(AmdrError):  # /dev/vdb10 is a partition of vdb, /dev/vdba is not
        pre.apply(Found(["/dev/vdba1"]))


def test_preflight_refuses_an_lvm_pv_uuid_on_a_disk_that_stays():
    """The original disk still attached (found in the VM round trip): pvcreate
    --uuid refuses a UUID another device carries, after the wipe; the
    preflight says so before anything.  The PV on the new disk's own array
    (a re-run of an interrupted diskinit) goes with the wipe."""
    layout = load_plan_fixture("md-raid1-lvm")
    actions = plan_disks(layout, {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"}, {}, "/t",
                         files=bundle_file,
                         present={"/dev/sdc": {"path": "/dev/sdc", "children": [
                             {"path": "/dev/sdc2", "type": "part", "children": [
                                 {"path": "/dev/md0", "type": "raid1", "name": "md0"}]}]}})
    pre = actions[0]
    assert (pre.unique_uuids, pre.unique_pv_uuids) == (
        [], ["Md1Pv2-Aa3B-Bb4C-Cc5D-Dd6E-Ee7F-Ff8G9H"])
    assert pre.wiped == ["/dev/sdc", "/dev/md0", "/dev/sdd"]

    ok = Found(["/dev/md0"])
    pre.apply(ok)
    assert ok.calls[0] == ["blkid", "-c", "/dev/null", "-o", "device", "-t",
                           "UUID=Md1Pv2-Aa3B-Bb4C-Cc5D-Dd6E-Ee7F-Ff8G9H"]
    # the array's, the filesystem's and the swap's are looked for too (warned about)
    assert [c[-1] for c in ok.calls[1:]] == ["UUID=3f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8",
                                             "UUID=0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
                                             "UUID=1b2c3d4e-5f6a-4b7c-9d8e-9f0a1b2c3d4e"]
    with pytest.raises(AmdrError) as e:
        pre.apply(Found(["/dev/md127"]))
    assert str(e.value) == (
        "nothing was changed: /dev/md127 carries the LVM physical volume UUID "
        "Md1Pv2-Aa3B-Bb4C-Cc5D-Dd6E-Ee7F-Ff8G9H the plan recreates, and pvcreate refuses a "
        "UUID it finds on another device: detach that disk or wipe it (wipefs -a /dev/md127)")


def test_btrfs_subvolumes_keep_their_ids_and_directories_between_them():
    """Found in the VM round trip: made by depth, @home/cache (id 258) came
    back as 259 and @log as 258, so an fstab with subvolid= would mount the
    wrong one; and a subvolume inside a plain directory (systemd's
    @/var/lib/machines) needs the directory first."""
    from recovery.disks.fsactions import Format, creation_order

    subvols = [{"id": 256, "path": "@", "parent_id": 5},
               {"id": 257, "path": "@home", "parent_id": 5},
               {"id": 258, "path": "@home/cache", "parent_id": 257},
               {"id": 259, "path": "@log", "parent_id": 5},
               {"id": 260, "path": "@/var/lib/machines", "parent_id": 256}]
    assert [s["id"] for s in creation_order(subvols[::-1])] == [256, 257, 258, 259, 260]
    # moved into a subvolume made later (mv): the parent still comes first
    moved = [{"id": 256, "path": "@new/old", "parent_id": 257},
             {"id": 257, "path": "@new", "parent_id": 5}]
    assert [s["id"] for s in creation_order(moved)] == [257, 256]
    f = Format("format-fs0", device="disk0p1", path="/dev/vdc1", fstype="btrfs",
               subvolumes=subvols, default_subvolume={"id": 256, "path": "@"},
               workdir="/t.amdr/mnt-fs0")
    assert [" ".join(a) for a in f.render()[1:]] == [
        "mkdir -p /t.amdr/mnt-fs0",
        "mount -t btrfs /dev/vdc1 /t.amdr/mnt-fs0",
        "btrfs subvolume create /t.amdr/mnt-fs0/@",
        "btrfs subvolume create /t.amdr/mnt-fs0/@home",
        "btrfs subvolume create /t.amdr/mnt-fs0/@home/cache",
        "btrfs subvolume create /t.amdr/mnt-fs0/@log",
        "mkdir -p /t.amdr/mnt-fs0/@/var/lib",
        "btrfs subvolume create /t.amdr/mnt-fs0/@/var/lib/machines",
        "btrfs subvolume set-default /t.amdr/mnt-fs0/@",
        "umount /t.amdr/mnt-fs0"]


def test_ext_raid_stride_and_stripe_width_come_back():
    """Found in the VM round trip: ext4 on an MD array made with -E stride=4
    came back without it (the kernel then mounts it without stripe=)."""
    from essentials.layout.fs import parse_tune2fs
    from recovery.disks.fsactions import Format

    text = ("Block count:              87040\nReserved block count:     4352\n"
            "Block size:               1024\nRAID stride:              4\n"
            "RAID stripe width:        8\n")
    p = parse_tune2fs(text)
    assert (p["raid_stride"], p["raid_stripe_width"]) == (4, 8)
    assert "raid_stride" not in parse_tune2fs("Block size:               1024\n")
    f = Format("format-fs0", device="array0", path="/dev/md126", fstype="ext4",
               uuid="0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
               params={"block_size": 1024, "raid_stride": 4, "raid_stripe_width": 8})
    assert f.render()[0] == ["mkfs.ext4", "-F", "-q", "-U",
                             "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d", "-b", "1024",
                             "-E", "stride=4,stripe_width=8", "/dev/md126"]
    f.params = {"raid_stride": 16}
    assert f.render()[0][-3:] == ["-E", "stride=16", "/dev/md126"]


def test_preflight_warns_of_other_uuids_on_a_disk_that_stays(capsys):
    """An ext4 or MD UUID on the old disk, still attached, does not stop the
    recreation, but the restored system could mount or assemble the old one."""
    layout = load_plan_fixture("md-raid1-lvm")
    pre = plan_disks(layout, {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"}, {}, "/t",
                     files=bundle_file)[0]

    pre.apply(Found({"UUID=0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d": ["/dev/sde5"],
                     "UUID=3f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8": ["/dev/sde2", "/dev/sdd2"]}))
    err = capsys.readouterr().err
    assert err == (
        "warning: /dev/sde2, on a disk this plan does not touch, carries the UUID "
        "3f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8 of the MD array /dev/md0, which the plan "
        "recreates: detach that disk before the restored system boots, or it may mount or "
        "assemble the old one\n"
        "warning: /dev/sde5, on a disk this plan does not touch, carries the UUID "
        "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d of the ext4 filesystem labelled root, which the "
        "plan recreates: detach that disk before the restored system boots, or it may mount "
        "or assemble the old one\n")


def test_an_md_uuid_is_looked_for_as_blkid_shows_it():
    from recovery.disks.preflight import blkid_uuid

    assert blkid_uuid("641c6a23:900819e1:2ea9ec2d:7112fb1f") == \
        "641c6a23-9008-19e1-2ea9-ec2d7112fb1f"
    assert blkid_uuid("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d") == \
        "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
