"""Disk plans: layout + mapping -> actions; render() compared with expected commands.

The basics on a small GPT layout: order, ids, partition naming, sizes,
refusals, dry runs.  The realistic stacks are in test_disk_plan_stacks.py,
sizing in test_disk_plan_sizing.py, the journal in test_disk_plan_journal.py.
"""

import pytest

from essentials.runner import Runner
from recovery.disks.fsactions import Format, Mount
from recovery.disks.plan import PlanError, partition_path, plan_disks, required_bytes
from recovery.disks.preflight import Preflight
from recovery.disks.ptable import PartitionTable
from recovery.disks.wipe import WipeDisk

GIB = 1024 ** 3
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
SWAP = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
ROOT_UUID = "0b3c2f2e-8d5a-4f0e-9c1d-111111111111"
SWAP_UUID = "5e1f0c7a-3b2d-4c4e-8f9a-222222222222"


def part(disk_id, n, start, size, ptype, uuid=None, name=None, **kw):
    return dict(id=f"{disk_id}p{n}", number=n, path=f"/dev/{disk_id}{n}", start=start,
                size=size, type=ptype, uuid=uuid, name=name, **kw)


def fs(fid, device, path, fstype, uuid, label=None, mountpoint=None, params=None):
    return dict(id=fid, device=device, device_path=path, type=fstype, uuid=uuid, label=label,
                mountpoint=mountpoint, mount_options=None, params=params or {})


def efi_layout(path="/dev/sda"):
    parts = [
        dict(id="disk0p1", number=1, path=path + "1", start=2048, size=1048576, type=ESP,
             uuid="AAAAAAAA-0000-4000-8000-000000000001", name="EFI System", attrs=None),
        dict(id="disk0p2", number=2, path=path + "2", start=1050624, size=16777216, type=LINUX,
             uuid="AAAAAAAA-0000-4000-8000-000000000002", name="root", attrs=None),
        dict(id="disk0p3", number=3, path=path + "3", start=17827840, size=2097152, type=SWAP,
             uuid="AAAAAAAA-0000-4000-8000-000000000003", name=None, attrs=None),
    ]
    return {
        "version": 1, "root": "/",
        "disks": [{"id": "disk0", "path": path, "size": 20 * GIB, "sector_size": 512,
                   "ptable": {"label": "gpt", "id": "5198BEB5-1763-4043-AF7A-D26C981673C3",
                              "partitions": parts}}],
        "filesystems": [
            fs("fs0", "disk0p1", path + "1", "vfat", "1A2B-3C4D", "EFI", "/boot/efi"),
            fs("fs1", "disk0p2", path + "2", "ext4", ROOT_UUID, "root", "/"),
            fs("fs2", "disk0p3", path + "3", "swap", SWAP_UUID),
        ],
    }


EFI_SCRIPT = (
    "label: gpt\n"
    "label-id: 5198BEB5-1763-4043-AF7A-D26C981673C3\n"
    "unit: sectors\n"
    "\n"
    f"/dev/vdb1 : start=2048, size=1048576, type={ESP}, "
    'uuid=AAAAAAAA-0000-4000-8000-000000000001, name="EFI System"\n'
    f"/dev/vdb2 : start=1050624, size=16777216, type={LINUX}, "
    'uuid=AAAAAAAA-0000-4000-8000-000000000002, name="root"\n'
    f"/dev/vdb3 : start=17827840, size=2097152, type={SWAP}, "
    "uuid=AAAAAAAA-0000-4000-8000-000000000003\n"
)


def rendered(actions):
    return [argv for a in actions for argv in a.render()]


def plan(layout, mapping, sizes=None, target="/t", **kw):
    """The plan without its preflight (checked in test_preflight_lists_tools)."""
    actions = plan_disks(layout, mapping, sizes or {}, target, **kw)
    assert isinstance(actions[0], Preflight)
    return actions[1:]


def test_efi_gpt_full_plan():
    actions = plan(efi_layout(), {"/dev/sda": "/dev/vdb"}, {"/dev/vdb": 20 * GIB}, "/target")
    assert [a.id for a in actions] == [
        "wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1", "format-fs2",
        "mount-fs1", "mount-fs0"]
    assert [type(a) for a in actions] == [WipeDisk, PartitionTable, Format, Format, Format,
                                          Mount, Mount]
    assert rendered(actions) == [
        ["wipefs", "--all", "--force", "/dev/vdb"],
        ["sfdisk", "--quiet", "--no-reread", "--wipe", "always", "--wipe-partitions", "always",
         "/dev/vdb"],
        ["partx", "-u", "/dev/vdb"],
        ["mkfs.vfat", "-i", "1A2B3C4D", "-n", "EFI", "/dev/vdb1"],
        ["mkfs.ext4", "-F", "-q", "-U", ROOT_UUID, "-L", "root", "/dev/vdb2"],
        ["mkswap", "-f", "-U", SWAP_UUID, "/dev/vdb3"],
        ["mkdir", "-p", "/target"],
        ["mount", "-t", "ext4", "/dev/vdb2", "/target"],
        ["mkdir", "-p", "/target/boot/efi"],
        ["mount", "-t", "vfat", "/dev/vdb1", "/target/boot/efi"],
    ]
    assert actions[1].script() == EFI_SCRIPT
    assert actions[1].steps()[0].stdin == EFI_SCRIPT
    assert actions[1].steps()[1].stdin is None


@pytest.mark.parametrize("disk,first,third", [
    ("/dev/vdb", "/dev/vdb1", "/dev/vdb3"),
    ("/dev/sdc", "/dev/sdc1", "/dev/sdc3"),
    ("/dev/nvme0n1", "/dev/nvme0n1p1", "/dev/nvme0n1p3"),
    ("/dev/loop3", "/dev/loop3p1", "/dev/loop3p3"),
    ("/dev/mmcblk0", "/dev/mmcblk0p1", "/dev/mmcblk0p3"),
])
def test_partition_names_on_new_disk(disk, first, third):
    actions = plan(efi_layout(), {"/dev/sda": disk})
    pt = actions[1]
    assert [p.path for p in pt.partitions] == [first, first[:-1] + "2", third]
    lines = pt.script().splitlines()
    assert lines[4].startswith(first + " : start=2048, ")
    assert lines[6].startswith(third + " : start=17827840, ")
    assert actions[2].render() == [["mkfs.vfat", "-i", "1A2B3C4D", "-n", "EFI", first]]


def test_partition_path():
    assert partition_path("/dev/sda", 1) == "/dev/sda1"
    assert partition_path("/dev/nvme0n1", 2) == "/dev/nvme0n1p2"
    assert partition_path("/dev/loop3", 1) == "/dev/loop3p1"


def test_original_nvme_disk_maps_to_plain_names():
    layout = efi_layout("/dev/nvme0n1p")  # partitions /dev/nvme0n1p1..
    layout["disks"][0]["path"] = "/dev/nvme0n1"
    actions = plan(layout, {"/dev/nvme0n1": "/dev/vdb"})
    assert actions[1].script() == EFI_SCRIPT


def dos_layout():
    return {
        "version": 1, "root": "/",
        "disks": [{"id": "disk0", "path": "/dev/sda", "size": 8 * GIB, "sector_size": 512,
                   "ptable": {"label": "dos", "id": "0x1a2b3c4d", "partitions": [
                       dict(id="disk0p1", number=1, path="/dev/sda1", start=2048,
                            size=2097152, type="83", uuid="1a2b3c4d-01", name=None,
                            attrs=None, bootable=True),
                       dict(id="disk0p2", number=2, path="/dev/sda2", start=2099200,
                            size=1048576, type="82", uuid="1a2b3c4d-02", name=None,
                            attrs=None, bootable=None),
                   ]}}],
        "filesystems": [fs("fs0", "disk0p1", "/dev/sda1", "ext4", ROOT_UUID, None, "/")],
    }


def test_dos_script():
    actions = plan(dos_layout(), {"/dev/sda": "/dev/sdb"}, {"/dev/sdb": 8 * GIB})
    script = actions[1].script()
    assert script == (
        "label: dos\n"
        "label-id: 0x1a2b3c4d\n"
        "unit: sectors\n"
        "\n"
        "/dev/sdb1 : start=2048, size=2097152, type=83, bootable\n"
        "/dev/sdb2 : start=2099200, size=1048576, type=82\n"
    )
    assert "uuid=" not in script and "name=" not in script
    # no label: no -L
    assert actions[2].render() == [["mkfs.ext4", "-F", "-q", "-U", ROOT_UUID, "/dev/sdb1"]]


def test_required_bytes():
    assert required_bytes(efi_layout()["disks"][0]) == (17827840 + 2097152 + 33) * 512
    assert required_bytes(dos_layout()["disks"][0]) == (2099200 + 1048576) * 512
    assert required_bytes({"size": 12345, "ptable": None}) == 12345


def test_nested_mounts_parents_first():
    mps = ["/var/lib/db", "/home", "/", "/var"]
    parts, fss = [], []
    for i, mp in enumerate(mps, start=1):
        parts.append(dict(id=f"disk0p{i}", number=i, path=f"/dev/sda{i}", start=2048 * i,
                          size=2048, type=LINUX))
        fss.append(fs(f"fs{i}", f"disk0p{i}", f"/dev/sda{i}", "ext4", None, None, mp))
    layout = {"version": 1, "root": "/",
              "disks": [{"id": "disk0", "path": "/dev/sda", "size": GIB,
                         "ptable": {"label": "gpt", "id": None, "partitions": parts}}],
              "filesystems": fss}
    actions = plan(layout, {"/dev/sda": "/dev/sda"}, {}, "/target")
    mounts = [a for a in actions if isinstance(a, Mount)]
    assert [m.mountpoint for m in mounts] == ["/", "/home", "/var", "/var/lib/db"]
    assert [m.target for m in mounts] == ["/target", "/target/home", "/target/var",
                                          "/target/var/lib/db"]
    # every mount after every format, formats in layout order
    kinds = [a.type for a in actions]
    assert kinds == ["wipe", "partition_table"] + ["format"] * 4 + ["mount"] * 4
    assert actions[2].render() == [["mkfs.ext4", "-F", "-q", "/dev/sda1"]]


def test_disk_too_small():
    need = (17827840 + 2097152 + 33) * 512
    with pytest.raises(PlanError) as e:
        plan_disks(efi_layout(), {"/dev/sda": "/dev/vdb"}, {"/dev/vdb": 8 * GIB}, "/t")
    msg = str(e.value)
    assert "/dev/vdb is too small for /dev/sda" in msg
    assert f"its partitions took {need} bytes" in msg
    assert f"/dev/vdb has {8 * GIB}" in msg


def test_exactly_big_enough():
    need = (17827840 + 2097152 + 33) * 512
    actions = plan(efi_layout(), {"/dev/sda": "/dev/vdb"}, {"/dev/vdb": need})
    assert actions[1].partitions[2].size == 2097152 and actions[1].notes == []


def test_one_sector_short_shrinks_the_swap_at_the_end():
    need = (17827840 + 2097152 + 33) * 512
    actions = plan(efi_layout(), {"/dev/sda": "/dev/vdb"}, {"/dev/vdb": need - 512})
    # the end is aligned down to 1 MiB: the swap gives up 2048 sectors
    assert actions[1].partitions[2].size == 2097152 - 2048
    assert actions[1].notes == ["/dev/sda3 (swap) shrinks from 1.0 GiB to 1023.0 MiB: "
                                "/dev/vdb is smaller, and the swap is remade at that size"]


def test_one_sector_short_refused_when_the_last_partition_cannot_shrink():
    layout = efi_layout()
    layout["filesystems"][2].update(type="ext4", mountpoint="/srv")
    need = (17827840 + 2097152 + 33) * 512
    with pytest.raises(PlanError) as e:
        plan(layout, {"/dev/sda": "/dev/vdb"}, {"/dev/vdb": need - 512})
    assert (f"/dev/vdb is too small for /dev/sda: its partitions took {need} bytes"
            in str(e.value))
    assert ("the last partition /dev/sda3 would have to shrink to 1023.0 MiB, but the layout "
            "does not say how much of it (ext4 on /srv) is used (filesystems[].used)"
            in str(e.value))


def test_unmapped_disk():
    with pytest.raises(PlanError) as e:
        plan_disks(efi_layout(), {"/dev/sdx": "/dev/vdb"}, {}, "/t")
    msg = str(e.value)
    assert f"/dev/sda ({20 * GIB} bytes, 20.0 GiB): no disk mapped to it" in msg
    assert "--map /dev/sda=NEWDISK" in msg


def test_unsupported_filesystem():
    layout = efi_layout()
    layout["filesystems"][1]["type"] = "zfs_member"
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/sda": "/dev/vdb"}, {}, "/t")
    assert "/dev/sda2: filesystem type zfs_member cannot be recreated yet" in str(e.value)


def test_all_problems_reported_together():
    layout = efi_layout()
    layout["filesystems"][0]["type"] = "linux_raid_member"
    layout["filesystems"][1]["type"] = "zfs_member"
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {}, {}, "/t")
    msg = str(e.value)
    assert msg.splitlines() == [
        "the layout cannot be recreated, nothing was changed:",
        "  /dev/sda1: an MD RAID member of an array that was not assembled when the layout "
        "was collected (no mdadm --detail): cannot recreate it",
        "  /dev/sda2: filesystem type zfs_member cannot be recreated yet",
        f"  /dev/sda ({20 * GIB} bytes, 20.0 GiB): no disk mapped to it; give --map "
        f"/dev/sda=NEWDISK"]


def test_two_disks_on_one_mbr_disk_without_a_free_primary_number_refused():
    """Merging is planned in test_disk_plan_merge.py; an MBR table with its
    four primary numbers taken has no room for another disk's partition."""
    layout = efi_layout()
    pt = layout["disks"][0]["ptable"]
    pt["label"], pt["id"] = "dos", "0x1a2b3c4d"
    for p, t in zip(pt["partitions"], ("ef", "83", "82")):
        p["type"], p["uuid"], p["name"] = t, None, None
    pt["partitions"].append(dict(id="disk0p4", number=4, path="/dev/sda4", start=19924992,
                                 size=2048, type="83"))
    second = {"id": "disk1", "path": "/dev/sdb", "size": GIB, "sector_size": 512,
              "ptable": {"label": "gpt", "id": None, "partitions": [
                  dict(id="disk1p1", number=1, path="/dev/sdb1", start=2048, size=4096,
                       type=LINUX)]}}
    layout["disks"].append(second)
    with pytest.raises(PlanError) as e:
        plan_disks(layout, {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdb"},
                   {"/dev/vdb": 40 * GIB}, "/t")
    assert ("/dev/sda and /dev/sdb cannot share /dev/vdb: /dev/sdb1 needs a primary "
            "partition, and the MBR table on /dev/vdb has its four numbers taken: map "
            "/dev/sdb to a disk of its own") in str(e.value)


def test_xfs_and_btrfs_format():
    x = Format("format-fs5", device="disk0p5", path="/dev/vdb5", fstype="xfs",
               uuid="6f1e2d3c-0000-4000-8000-000000000005", label="data")
    assert x.render() == [["mkfs.xfs", "-f", "-q", "-m",
                           "uuid=6f1e2d3c-0000-4000-8000-000000000005", "-L", "data",
                           "/dev/vdb5"]]
    b = Format("format-fs6", device="disk0p6", path="/dev/vdb6", fstype="btrfs",
               uuid="6f1e2d3c-0000-4000-8000-000000000006", label="pool")
    assert b.render() == [["mkfs.btrfs", "-f", "-q", "-U",
                           "6f1e2d3c-0000-4000-8000-000000000006", "-L", "pool", "/dev/vdb6"]]
    assert Format("f", path="/dev/vdb7", fstype="xfs").render() == [
        ["mkfs.xfs", "-f", "-q", "/dev/vdb7"]]


def test_ext4_params_and_tune2fs():
    f = Format("format-fs0", device="disk0p1", path="/dev/vdb1", fstype="ext4",
               uuid=ROOT_UUID, label="labroot",
               params={"block_size": 1024, "inode_size": 256, "reserved_percent": 5.0,
                       "max_mount_count": -1, "check_interval": 0})
    assert f.render() == [
        ["mkfs.ext4", "-F", "-q", "-U", ROOT_UUID, "-L", "labroot", "-b", "1024", "-I", "256",
         "-m", "5.0", "/dev/vdb1"],
        ["tune2fs", "-c", "-1", "-i", "0s", "/dev/vdb1"],
    ]


def test_features_passed_to_mkfs_exactly():
    layout = efi_layout()
    layout["filesystems"][1]["params"] = {"block_size": 4096,
                                          "features": ["has_journal", "needs_recovery"]}
    actions = plan(layout, {"/dev/sda": "/dev/vdb"})
    # none first: this mke2fs.conf's defaults do not creep in; transient states left out
    assert actions[3].render() == [["mkfs.ext4", "-F", "-q", "-U", ROOT_UUID, "-L", "root",
                                    "-O", "none,has_journal", "-b", "4096", "/dev/vdb2"]]
    assert layout["filesystems"][1]["params"] == {"block_size": 4096,
                                                  "features": ["has_journal", "needs_recovery"]}


def test_preflight_lists_tools():
    actions = plan_disks(efi_layout(), {"/dev/sda": "/dev/vdb"}, {}, "/t")
    assert actions[0].id == "preflight" and actions[0].type == "preflight"
    assert actions[0].tools == ["wipefs", "sfdisk", "partx", "mkfs.vfat", "mkfs.ext4",
                                "mkswap", "mkdir", "mount"]
    assert actions[0].render() == [] and not actions[0].journaled


def test_dry_run_records_rendered_argv():
    actions = plan(efi_layout(), {"/dev/sda": "/dev/vdb"}, {}, "/target")
    runner = Runner(dry_run=True)
    wipe, table, fmt_vfat = actions[0], actions[1], actions[2]
    wipe.apply(runner)
    table.apply(runner)
    fmt_vfat.apply(runner)
    rec = runner.recorded
    assert [r.kind for r in rec] == ["run"] * 4
    assert [r.commands[0].argv for r in rec] == (
        wipe.render() + table.render() + fmt_vfat.render())
    assert rec[0].commands[0].argv == ["wipefs", "--all", "--force", "/dev/vdb"]
    assert rec[1].input == EFI_SCRIPT.encode()
    assert rec[0].input is None and rec[2].input is None
    assert rec[3].commands[0].argv == ["mkfs.vfat", "-i", "1A2B3C4D", "-n", "EFI", "/dev/vdb1"]


def test_dry_run_whole_plan():
    actions = plan_disks(efi_layout(), {"/dev/sda": "/dev/vdb"}, {}, "/nonexistent/target")
    assert actions[0].render() == []
    runner = Runner(dry_run=True)
    for a in actions:
        a.apply(runner)
    assert [r.commands[0].argv for r in runner.recorded] == rendered(actions)
    assert len(runner.recorded) == 10


def test_to_dict():
    actions = plan(efi_layout(), {"/dev/sda": "/dev/vdb"}, {}, "/target",
                   reasons={"/dev/sda": "--map"})
    d = actions[0].to_dict()
    assert d == {"id": "wipe-disk0", "type": "wipe", "device": "/dev/vdb", "disk": "disk0",
                 "matched": "--map", "commands": ["wipefs --all --force /dev/vdb"]}
    t = actions[1].to_dict()
    assert (t["id"], t["type"], t["device"], t["disk"], t["label"]) == (
        "ptable-disk0", "partition_table", "/dev/vdb", "disk0", "gpt")
    assert t["commands"] == [
        "sfdisk --quiet --no-reread --wipe always --wipe-partitions always /dev/vdb <<script",
        "partx -u /dev/vdb"]
    assert t["partitions"][0]["path"] == "/dev/vdb1"
    m = actions[-1].to_dict()
    assert m["type"] == "mount" and m["target"] == "/target/boot/efi"
    assert m["commands"] == ["mkdir -p /target/boot/efi", "mount -t vfat /dev/vdb1 /target/boot/efi"]
    s = actions[4].to_dict()
    assert s["type"] == "format" and s["fstype"] == "swap" and "params" not in s
