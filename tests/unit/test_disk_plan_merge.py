"""Several original disks on one new disk: plans rendered and compared with
what was worked out by hand (in the style of curtin's SFDiskPartTable tests).

The issue's case first: two disks of different sizes (a 20 GiB GPT system
disk and a 100 GiB data disk with XFS on the whole of it) mapped to one
250 GiB disk.  Then two partitioned disks, MBR with MBR, MBR into GPT, the
refusals, a smaller disk, what a merge asks of the restored system, and
`mount` finding a merged disk again.
"""

from __future__ import annotations

import copy

import pytest

from essentials.layout import schema
from recovery.disks import activate, merge
from recovery.disks.mapping import match_disks
from recovery.disks.plan import PlanError, contents, needed_disks, plan_disks
from recovery.disks.stack import LvmPv, Passphrase

from .test_disk_plan import ESP, LINUX, efi_layout
from .test_disk_plan_stacks import lsblk_disk, two_disks_layout

GIB = 1024 ** 3
LVM = "E6D6D379-F507-44C2-A23C-238F2A3DF928"


def by_id(actions):
    return {a.id: a for a in actions}


def shown(actions):
    return {a.id: [s.shown() for s in a.steps()] for a in actions}


# -- the case: 20 GiB GPT + 100 GiB whole-disk XFS -> one 250 GiB disk ---------------

def test_two_disks_of_different_sizes_on_one_larger_disk():
    actions = plan_disks(two_disks_layout(), {"/dev/sda": "/dev/vdc", "/dev/sdb": "/dev/vdc"},
                         {"/dev/vdc": 250 * GIB}, "/t", reasons={"/dev/sda": "--map",
                                                                 "/dev/sdb": "--map"})
    assert [a.id for a in actions] == [
        "preflight", "wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1", "format-fs2",
        "mount-fs1", "mount-fs2", "mount-fs0"]
    a = by_id(actions)
    # one wipe for the one disk, naming both originals
    assert a["wipe-disk0"].device == "/dev/vdc" and a["wipe-disk0"].also == ["disk1"]
    assert a["wipe-disk0"].matched == "--map"
    # sda's partitions where they were; sdb's XFS as partition 3 from 20 GiB (41940992
    # is on a 1 MiB boundary already), grown to the 1 MiB boundary below the backup GPT
    end = (250 * GIB // 512 - 33) // 2048 * 2048
    assert end - 41940992 == 482344960
    assert a["ptable-disk0"].script() == (
        "label: gpt\n"
        "label-id: 11111111-2222-4333-8444-555555555555\n"
        "first-lba: 2048\n"
        "unit: sectors\n"
        "\n"
        f"/dev/vdc1 : start=2048, size=1048576, type={ESP}, "
        'uuid=AAAA0001-0000-4000-8000-000000000001, name="EFI"\n'
        f"/dev/vdc2 : start=1050624, size=40890368, type={LINUX}, "
        'uuid=AAAA0002-0000-4000-8000-000000000002, name="root"\n'
        f"/dev/vdc3 : start=41940992, size=482344960, type={LINUX}\n")
    assert a["ptable-disk0"].notes == [
        "/dev/sdb (100.0 GiB) held xfs on /srv on the whole disk: on /dev/vdc it is "
        "partition /dev/vdc3, from 20.0 GiB",
        "/dev/sdb (xfs on /srv) grows from 100.0 GiB to 230.0 GiB: /dev/vdc is larger"]
    got = shown(actions)
    assert got["format-fs0"] == ["mkfs.vfat -i 1234ABCD /dev/vdc1"]
    assert got["format-fs1"] == ["mkfs.ext4 -F -q -U 0c0c0c0c-1111-4222-8333-444444444444 "
                                 "-L root -b 4096 -N 1277952 /dev/vdc2"]
    # the XFS grew 2.3 times: agcount and the log are left to mkfs.xfs
    assert got["format-fs2"] == ["mkfs.xfs -f -q -m uuid=0d0d0d0d-1111-4222-8333-444444444444 "
                                 "-L srv /dev/vdc3"]
    assert a["format-fs2"].scale == 482344960 * 512 / (100 * GIB)
    assert got["mount-fs2"] == ["mkdir -p /t/srv", "mount -t xfs /dev/vdc3 /t/srv"]
    assert got["wipe-disk0"] == ["wipefs --all --force /dev/vdc"]


def test_exactly_the_size_both_need_is_not_resized():
    layout = two_disks_layout()
    need = (41940992 + 100 * GIB // 512 + 33) * 512
    a = by_id(plan_disks(layout, {"/dev/sda": "/dev/vdc", "/dev/sdb": "/dev/vdc"},
                         {"/dev/vdc": need}, "/t"))
    assert [(p.start, p.size) for p in a["ptable-disk0"].partitions] == [
        (2048, 1048576), (1050624, 40890368), (41940992, 100 * GIB // 512)]
    assert a["format-fs2"].scale == 1.0


# -- two partitioned GPT disks of different sizes --------------------------------------------

def data_disk(path="/dev/sdb", size=50 * GIB, label="gpt", ss=512):
    d = "disk1"
    if label == "gpt":
        parts = [
            dict(id=f"{d}p1", number=1, path=f"{path}1", start=2048, size=83886080, type=LVM,
                 uuid="BBBB0001-0000-4000-8000-000000000001", name="pv", attrs=None),
            dict(id=f"{d}p2", number=2, path=f"{path}2", start=83888128, size=20969472,
                 type=LINUX, uuid="BBBB0002-0000-4000-8000-000000000002", name="var",
                 attrs="LegacyBIOSBootable")]
        pt = {"label": "gpt", "id": "22222222-3333-4444-8555-666666666666",
              "first_lba": 34, "last_lba": size // 512 - 34, "partitions": parts}
    else:
        parts = [
            dict(id=f"{d}p1", number=1, path=f"{path}1", start=2048, size=8388608, type="83",
                 kind="primary", bootable=True),
            dict(id=f"{d}p2", number=2, path=f"{path}2", start=8390656, size=8386560,
                 type="5", kind="extended"),
            dict(id=f"{d}p5", number=5, path=f"{path}5", start=8392704, size=8384512,
                 type="8e", kind="logical")]
        pt = {"label": "dos", "id": "0x0badcafe", "partitions": parts}
    if ss != 512:
        for p in parts:
            p["start"], p["size"] = p["start"] * 512 // ss, p["size"] * 512 // ss
    return {"id": d, "path": path, "size": size, "sector_size": ss, "ptable": pt}


def fs(fid, device, path, fstype, uuid, mountpoint=None, **kw):
    return dict(id=fid, device=device, device_path=path, type=fstype, uuid=uuid, label=None,
                mountpoint=mountpoint, mount_options=None, params={}, **kw)


def system_and_data(label="gpt", ss=512):
    layout = efi_layout()
    layout["disks"].append(data_disk(label=label, ss=ss))
    pv = "disk1p1" if label == "gpt" else "disk1p5"
    var = "disk1p2" if label == "gpt" else "disk1p1"
    layout["filesystems"] += [
        fs("fs3", pv, f"/dev/sdb{pv[-1]}", "LVM2_member", "pvpvpv-aaaa-bbbb-cccc-dddd-eeee-ffffff"),
        fs("fs4", var, f"/dev/sdb{var[-1]}", "ext4", "4e4e4e4e-0000-4000-8000-000000000004",
           "/var", used=2 * GIB)]
    layout["fstab"] = [
        {"spec": "UUID=0b3c2f2e-8d5a-4f0e-9c1d-111111111111", "file": "/", "vfstype": "ext4",
         "options": "defaults", "freq": 0, "passno": 1, "filesystem": "fs1"},
        {"spec": f"/dev/sdb{var[-1]}", "file": "/var", "vfstype": "ext4",
         "options": "defaults", "freq": 0, "passno": 2, "filesystem": "fs4"}]
    return schema.validate(layout, "system-and-data")


def test_two_gpt_disks_numbered_on_and_the_last_partition_grows():
    layout = system_and_data()
    actions = plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                         {"/dev/vdb": 100 * GIB}, "/t")
    a = by_id(actions)
    # sda ends at 19924992, a 1 MiB boundary; sdb's partitions keep their offsets
    # from it (2048 -> 19924992, 83888128 -> 103811072), and the last one (ext4
    # /var) grows to the 1 MiB boundary below the backup GPT of 100 GiB
    grown = (100 * GIB // 512 - 33) // 2048 * 2048 - 103811072
    assert grown == 105902080
    assert a["ptable-disk0"].script().splitlines()[-2:] == [
        f"/dev/vdb4 : start=19924992, size=83886080, type={LVM}, "
        'uuid=BBBB0001-0000-4000-8000-000000000001, name="pv"',
        f"/dev/vdb5 : start=103811072, size={grown}, type={LINUX}, "
        'uuid=BBBB0002-0000-4000-8000-000000000002, name="var", attrs="LegacyBIOSBootable"']
    assert a["ptable-disk0"].notes == [
        "/dev/sdb (50.0 GiB) follows on /dev/vdb from 9.5 GiB: /dev/sdb1 -> /dev/vdb4, "
        "/dev/sdb2 -> /dev/vdb5",
        "the partition table id 22222222-3333-4444-8555-666666666666 of /dev/sdb is not kept: "
        "/dev/vdb has one table, with the id 5198BEB5-1763-4043-AF7A-D26C981673C3",
        "/etc/fstab names /dev/sdb2 (for /var): on this disk it is /dev/vdb5; change that "
        "line after the restore, or name it by UUID",
        "/dev/sdb2 (ext4 on /var) grows from 10.0 GiB to 50.5 GiB: /dev/vdb is larger"]
    pv = next(x for x in actions if isinstance(x, LvmPv))
    assert (pv.path, pv.uuid) == ("/dev/vdb4", "pvpvpv-aaaa-bbbb-cccc-dddd-eeee-ffffff")
    assert shown(actions)["mount-fs4"] == ["mkdir -p /t/var", "mount -t ext4 /dev/vdb5 /t/var"]
    assert a["format-fs2"].path == "/dev/vdb3"  # the system disk's swap is where it was


def test_a_4k_sector_disk_joins_a_512_byte_one():
    layout = system_and_data(ss=4096)
    a = by_id(plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                         {"/dev/vdb": 100 * GIB}, "/t"))
    parts = a["ptable-disk0"].partitions
    assert [(p.number, p.start) for p in parts[3:]] == [(4, 19924992), (5, 103811072)]


def test_the_other_order_keeps_the_first_disk_in_the_layout_as_anchor():
    """--map order does not matter: the layout's order decides."""
    layout = system_and_data()
    m1 = plan_disks(layout, {"/dev/sdb": "/dev/vdb", "/dev/sda": "/dev/vdb"},
                    {"/dev/vdb": 100 * GIB}, "/t")
    m2 = plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                    {"/dev/vdb": 100 * GIB}, "/t")
    assert by_id(m1)["ptable-disk0"].script() == by_id(m2)["ptable-disk0"].script()


# -- MBR ----------------------------------------------------------------------------------------

def mbr_system(extended=True):
    parts = [dict(id="disk0p1", number=1, path="/dev/sda1", start=2048, size=2097152,
                  type="83", kind="primary", bootable=True)]
    if extended:
        parts += [dict(id="disk0p2", number=2, path="/dev/sda2", start=2099200,
                       size=18872320, type="5", kind="extended"),
                  dict(id="disk0p5", number=5, path="/dev/sda5", start=2101248,
                       size=16775168, type="83", kind="logical"),
                  dict(id="disk0p6", number=6, path="/dev/sda6", start=18878464,
                       size=2093056, type="82", kind="logical")]
    disk = {"id": "disk0", "path": "/dev/sda", "size": 10 * GIB, "sector_size": 512,
            "ptable": {"label": "dos", "id": "0x1a2b3c4d", "partitions": parts}}
    fss = [fs("fs0", "disk0p1", "/dev/sda1", "ext4", "10101010-0000-4000-8000-000000000001",
              "/boot")]
    if extended:
        fss += [fs("fs1", "disk0p5", "/dev/sda5", "ext4",
                   "10101010-0000-4000-8000-000000000005", "/"),
                fs("fs2", "disk0p6", "/dev/sda6", "swap", "10101010-0000-4000-8000-000000000006")]
    return {"version": 1, "root": "/", "disks": [disk], "filesystems": fss}


def test_mbr_disk_with_primaries_joins_an_mbr_disk_with_logicals():
    layout = mbr_system()
    second = {"id": "disk1", "path": "/dev/sdb", "size": 8 * GIB, "sector_size": 512,
              "ptable": {"label": "dos", "id": "0x0badcafe", "partitions": [
                  dict(id="disk1p1", number=1, path="/dev/sdb1", start=2048, size=8388608,
                       type="83", kind="primary", bootable=True),
                  dict(id="disk1p2", number=2, path="/dev/sdb2", start=8390656, size=2097152,
                       type="82", kind="primary")]}}
    layout["disks"].append(second)
    layout["filesystems"] += [
        fs("fs3", "disk1p1", "/dev/sdb1", "ext4", "20202020-0000-4000-8000-000000000001",
           "/srv", used=GIB),
        fs("fs4", "disk1p2", "/dev/sdb2", "swap", "20202020-0000-4000-8000-000000000002")]
    layout["boot"] = {"firmware": "bios", "cmdline": None, "efi": None, "grub": {
        "package": "grub-pc", "install_devices": [
            {"device": "/dev/disk/by-id/ata-A", "path": "/dev/sda", "disk": "disk0"},
            {"device": "/dev/disk/by-id/ata-B", "path": "/dev/sdb", "disk": "disk1"}]}}
    layout = schema.validate(layout, "mbr-two")
    a = by_id(plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                         {"/dev/vdb": 16 * GIB}, "/t"))
    # sda ends at its extended partition's end, 20971520 (10 GiB); sdb's primaries take
    # the free numbers 3 and 4, shifted by 10 GiB - 1 MiB; its active flag is dropped
    assert a["ptable-disk0"].script() == (
        "label: dos\n"
        "label-id: 0x1a2b3c4d\n"
        "unit: sectors\n"
        "\n"
        "/dev/vdb1 : start=2048, size=2097152, type=83, bootable\n"
        "/dev/vdb2 : start=2099200, size=18872320, type=5\n"
        "/dev/vdb3 : start=20971520, size=8388608, type=83\n"
        "/dev/vdb4 : start=29360128, size=2097152, type=82\n"
        "/dev/vdb5 : start=2101248, size=16775168, type=83\n"
        "/dev/vdb6 : start=18878464, size=2093056, type=82\n")
    assert a["ptable-disk0"].notes == [
        "/dev/sdb1 was marked active (bootable) on /dev/sdb; one partition of a table can "
        "be: it is not marked on /dev/vdb",
        "/dev/sdb (8.0 GiB) follows on /dev/vdb from 10.0 GiB: /dev/sdb1 -> /dev/vdb3, "
        "/dev/sdb2 -> /dev/vdb4",
        "the partition table id 0x0badcafe of /dev/sdb is not kept: /dev/vdb has one table, "
        "with the id 0x1a2b3c4d",
        "the PARTUUIDs of /dev/sdb's partitions change (an MBR PARTUUID is the disk id and "
        "the partition number)",
        "GRUB was installed on /dev/sda and /dev/sdb: they are all /dev/vdb now; install it "
        "there once",
        "1.0 GiB at the end of /dev/vdb left unallocated: the last partition /dev/sdb2 holds "
        "swap, which keeps its size"]
    assert a["format-fs3"].path == "/dev/vdb3" and a["format-fs4"].path == "/dev/vdb4"


def test_an_extended_partition_joins_an_mbr_table_without_one():
    layout = mbr_system(extended=False)
    layout["disks"].append(data_disk(label="dos"))
    layout["filesystems"] += [
        fs("fs3", "disk1p1", "/dev/sdb1", "ext4", "20202020-0000-4000-8000-000000000001"),
        fs("fs4", "disk1p5", "/dev/sdb5", "ext4", "20202020-0000-4000-8000-000000000005")]
    a = by_id(plan_disks(schema.validate(layout, "x"),
                         {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                         {"/dev/vdb": 20 * GIB}, "/t"))
    lines = a["ptable-disk0"].script().splitlines()[4:]
    # sda ends at 2099200 (a 1 MiB boundary); in the order they lie, sdb's primary
    # takes number 2, its extended partition 3, its logical one stays 5; the logical
    # one is last and holds a PV: it grows to the end of 20 GiB, its extended with it
    end = 20 * GIB // 512
    assert lines == ["/dev/vdb1 : start=2048, size=2097152, type=83, bootable",
                     "/dev/vdb2 : start=2099200, size=8388608, type=83",
                     f"/dev/vdb3 : start=10487808, size={end - 10487808}, type=5",
                     f"/dev/vdb5 : start=10489856, size={end - 10489856}, type=8e"]
    assert a["format-fs4"].path == "/dev/vdb5"


def test_a_second_extended_partition_is_refused():
    layout = mbr_system()
    layout["disks"].append(data_disk(label="dos"))
    layout["filesystems"].append(
        fs("fs3", "disk1p5", "/dev/sdb5", "ext4", "20202020-0000-4000-8000-000000000005"))
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                   {"/dev/vdb": 40 * GIB}, "/t")
    assert ("/dev/sda and /dev/sdb cannot share /dev/vdb: /dev/sdb2 is an extended partition, "
            "and the MBR table on /dev/vdb has one already (MBR allows one)") in str(e.value)


def test_an_mbr_disk_joins_a_gpt_disk_with_gpt_types():
    layout = system_and_data(label="dos")
    a = by_id(plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                         {"/dev/vdb": 40 * GIB}, "/t"))
    table = a["ptable-disk0"]
    # the extended partition is not carried: GPT needs none; 83 -> Linux, 8e -> LVM
    assert [(p.number, p.path, p.start, p.type, p.uuid) for p in table.partitions[3:]] == [
        (4, "/dev/vdb4", 19924992, LINUX, None),
        (5, "/dev/vdb5", 19924992 + 8390656, LVM, None)]
    assert ("/dev/sdb's partitions get new PARTUUIDs (MBR had none of their own)"
            in table.notes)
    assert a["format-fs4"].path == "/dev/vdb4"


def test_a_type_mbr_has_no_code_for_is_refused():
    layout = mbr_system()
    d = data_disk()
    d["ptable"]["partitions"][0]["type"] = "6A898CC3-1DD2-11B2-99A6-080020736631"  # ZFS
    layout["disks"].append(d)
    layout["filesystems"].append(
        fs("fs3", "disk1p2", "/dev/sdb2", "ext4", "20202020-0000-4000-8000-000000000002"))
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                   {"/dev/vdb": 80 * GIB}, "/t")
    assert ("/dev/sdb1 has type 6A898CC3-1DD2-11B2-99A6-080020736631, which has no equivalent "
            "in an MBR partition table") in str(e.value)


# -- sizes -----------------------------------------------------------------------------------

def test_smaller_than_both_need_shrinks_the_last_filesystem_when_its_data_fits():
    a = by_id(plan_disks(two_disks_layout(), {"/dev/sda": "/dev/vdc", "/dev/sdb": "/dev/vdc"},
                         {"/dev/vdc": 100 * GIB}, "/t"))
    last = a["ptable-disk0"].partitions[-1]
    assert (last.start, last.start + last.size) == (
        41940992, (100 * GIB // 512 - 33) // 2048 * 2048)
    assert a["ptable-disk0"].notes[-1].startswith(
        "/dev/sdb (xfs on /srv) shrinks from 100.0 GiB to 80.0 GiB: /dev/vdc is smaller, and "
        "the 40.0 GiB used still fit")


def test_too_small_for_both_says_what_is_needed_and_what_is_there():
    with pytest.raises(PlanError) as e:
        plan_disks(two_disks_layout(), {"/dev/sda": "/dev/vdc", "/dev/sdb": "/dev/vdc"},
                   {"/dev/vdc": 60 * GIB}, "/t")
    need = (41940992 + 100 * GIB // 512 + 33) * 512
    assert (f"/dev/vdc is too small for /dev/sda + /dev/sdb: its partitions took {need} bytes "
            f"(120.0 GiB), /dev/vdc has {60 * GIB} (60.0 GiB); the last partition /dev/sdb "
            f"(xfs on /srv) would have to shrink to 40.0 GiB: it uses 40.0 GiB, 44.0 GiB "
            f"needed with the margin") in str(e.value)


# -- what a merge asks of the system ----------------------------------------------------------

def test_raid1_members_on_one_disk_lose_their_redundancy():
    layout = system_and_data()
    layout["md"] = [{"id": "array0", "path": "/dev/md0", "name": "h:0",
                     "uuid": "641c6a23:900819e1:2ea9ec2d:7112fb1f", "level": "raid1",
                     "metadata": "1.2", "raid_devices": 2, "size": 10 * GIB,
                     "chunk_size": None, "layout": None, "bitmap": None, "degraded": False,
                     "members": [{"device": "disk0p3", "path": "/dev/sda3", "role": 0},
                                 {"device": "disk1p2", "path": "/dev/sdb2", "role": 1}]}]
    for f in layout["filesystems"]:
        if f["device"] in ("disk0p3", "disk1p2"):
            f.update(type="linux_raid_member", uuid="641c6a23-9008-19e1-2ea9-ec2d7112fb1f",
                     mountpoint=None, used=None)
    layout["filesystems"].append(fs("fs9", "array0", "/dev/md0", "ext4",
                                    "99999999-0000-4000-8000-000000000009", "/var"))
    a = by_id(plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                         {"/dev/vdb": 100 * GIB}, "/t"))
    assert ("/dev/md0 (raid1): its members /dev/sda3, /dev/sdb2 are all on /dev/vdb now, so "
            "it has no redundancy: add a second disk later") in a["ptable-disk0"].notes
    assert a["md-array0"].members == ["/dev/vdb3", "/dev/vdb5"]


# -- mapping: merging is asked for, never guessed -----------------------------------------

def test_matching_never_puts_two_disks_on_one():
    layout = two_disks_layout()
    present = [lsblk_disk("/dev/vdc", 250 * GIB)]
    m = match_disks(needed_disks(layout), present)
    assert m.mapping == {"/dev/sdb": "/dev/vdc"}  # the larger first: it is the harder fit
    assert m.unmatched["/dev/sda"].startswith("no free disk to put it on")
    with pytest.raises(PlanError) as e:
        plan_disks(layout, m.mapping, {"/dev/vdc": 250 * GIB}, "/t", unmatched=m.unmatched)
    assert "give --map /dev/sda=NEWDISK" in str(e.value)
    assert "several original disks can share one: --map each of them to it" in str(e.value)


# -- mount finds a merged disk again ----------------------------------------------------------

def merged_probes(layout, mapping):
    """What blkid -p finds on the disk diskinit made of the two."""
    paths = merge.partition_paths(needed_disks(layout), mapping, contents(layout))
    out = {"/dev/vdb": {"PTUUID": "5198beb5-1763-4043-af7a-d26c981673c3", "PTTYPE": "gpt"}}
    for d in needed_disks(layout):
        for p in d["ptable"]["partitions"]:
            out[paths[p["id"]]] = {"PART_ENTRY_UUID": (p.get("uuid") or "").lower()}
    for f in layout["filesystems"]:
        out[paths[f["device"]]].update(TYPE=f["type"], UUID=f["uuid"])
    return out


def test_mount_finds_the_merged_disk_by_its_partuuids_and_numbers_it_as_diskinit_did():
    layout = system_and_data()
    mapping = {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"}
    probes = merged_probes(layout, mapping)
    kids = [{"path": f"/dev/vdb{n}", "type": "part"} for n in range(1, 6)]
    present = [lsblk_disk("/dev/vdb", 100 * GIB, children=kids),
               lsblk_disk("/dev/vdc", 100 * GIB)]
    m = activate.match_present(layout, present, probes)
    assert m.mapping == mapping and not m.unmatched
    assert m.reasons["/dev/sdb"] == ("the PARTUUIDs of its partitions (merged with another "
                                     "disk's)")
    actions = activate.plan_mount(layout, m.mapping, "/target", probes,
                                  passphrase=Passphrase(lambda: "x"))
    mounts = {a.mountpoint: a.path for a in actions if a.type == "mount"}
    assert mounts == {"/": "/dev/vdb2", "/boot/efi": "/dev/vdb1", "/var": "/dev/vdb5"}
    # the other disk's partitions moved: nothing is found without them
    wrong = copy.deepcopy(probes)
    wrong["/dev/vdb5"]["UUID"] = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(Exception) as e:
        activate.plan_mount(layout, m.mapping, "/target", wrong,
                            passphrase=Passphrase(lambda: "x"))
    assert "4e4e4e4e-0000-4000-8000-000000000004" in str(e.value)
