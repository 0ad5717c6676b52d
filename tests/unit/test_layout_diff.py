"""`amdr-essentials check`: what changed between two layout.yaml documents."""

import copy

import pytest

from essentials.layout.diff import diff, flatten

ROOT_UUID = "0b8e4b8a-5a4e-4d3b-9a55-1f0c2d3e4f50"
BOOT_UUID = "7C3A-1F2B"
SWAP_UUID = "e2c1d0f9-1111-4222-8333-944455556666"


def part(n, start, size, uuid, ptype="0FC63DAF-8483-4772-8E79-3D69D8477DE4"):
    return {"id": f"disk0p{n}", "number": n, "path": f"/dev/sda{n}", "start": start,
            "size": size, "type": ptype, "uuid": uuid, "name": None, "attrs": None}


@pytest.fixture
def layout():
    return {
        "version": 1,
        "root": "/",
        "disks": [{
            "id": "disk0", "path": "/dev/sda", "size": 21474836480, "sector_size": 512,
            "model": "QEMU HARDDISK", "serial": None, "wwn": None,
            "ptable": {
                "label": "gpt", "id": "5E3A8F0C-6B1D-4C2E-9F7A-0B1C2D3E4F5A",
                "partitions": [
                    part(1, 2048, 1048576, "aaaaaaaa-0000-4000-8000-000000000001",
                         "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
                    part(2, 1050624, 4194304, "aaaaaaaa-0000-4000-8000-000000000002",
                         "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"),
                    part(3, 5244928, 20000000, "aaaaaaaa-0000-4000-8000-000000000003"),
                ],
            },
        }],
        "filesystems": [
            {"id": "fs0", "device": "disk0p1", "device_path": "/dev/sda1", "type": "vfat",
             "uuid": BOOT_UUID, "label": None, "mountpoint": "/boot/efi",
             "mount_options": "umask=0077", "params": {}},
            {"id": "fs1", "device": "disk0p2", "device_path": "/dev/sda2", "type": "swap",
             "uuid": SWAP_UUID, "label": None, "mountpoint": None, "mount_options": None,
             "params": {}},
            {"id": "fs2", "device": "disk0p3", "device_path": "/dev/sda3", "type": "ext4",
             "uuid": ROOT_UUID, "label": "root", "mountpoint": "/",
             "mount_options": "errors=remount-ro", "params": {"block_size": 4096}},
        ],
    }


def test_identical_layouts(layout):
    assert diff(layout, copy.deepcopy(layout)) == []


def test_changed_label_is_one_line_naming_the_filesystem_by_uuid(layout):
    new = copy.deepcopy(layout)
    new["filesystems"][2]["label"] = "system"
    assert diff(layout, new) == [f"~ filesystems[uuid={ROOT_UUID}].label: 'root' -> 'system'"]


def test_changed_nested_param(layout):
    new = copy.deepcopy(layout)
    new["filesystems"][2]["params"]["block_size"] = 1024
    assert diff(layout, new) == [
        f"~ filesystems[uuid={ROOT_UUID}].params.block_size: 4096 -> 1024"]


def test_new_partition_adds_only_its_own_lines(layout):
    new = copy.deepcopy(layout)
    parts = new["disks"][0]["ptable"]["partitions"]
    # a new partition inserted before the last one: positions shift, natural keys do not
    parts.insert(2, part(4, 25244928, 2048000, "aaaaaaaa-0000-4000-8000-000000000004"))
    lines = diff(layout, new)
    prefix = "disks[path=/dev/sda].ptable.partitions[uuid=aaaaaaaa-0000-4000-8000-000000000004]"
    assert lines == [
        f"+ {prefix}.attrs: None (new)",
        f"+ {prefix}.id: 'disk0p4' (new)",
        f"+ {prefix}.name: None (new)",
        f"+ {prefix}.number: 4 (new)",
        f"+ {prefix}.path: '/dev/sda4' (new)",
        f"+ {prefix}.size: 2048000 (new)",
        f"+ {prefix}.start: 25244928 (new)",
        f"+ {prefix}.type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' (new)",
        f"+ {prefix}.uuid: 'aaaaaaaa-0000-4000-8000-000000000004' (new)",
    ]


def test_removed_filesystem_gives_minus_lines_only(layout):
    new = copy.deepcopy(layout)
    del new["filesystems"][1]  # swap gone
    lines = diff(layout, new)
    assert lines, "a removed filesystem must show"
    assert all(ln.startswith(f"- filesystems[uuid={SWAP_UUID}].") for ln in lines), lines
    assert all(ln.endswith("(gone)") for ln in lines)
    assert f"- filesystems[uuid={SWAP_UUID}].type: 'swap' (gone)" in lines
    assert f"- filesystems[uuid={SWAP_UUID}].device_path: '/dev/sda2' (gone)" in lines
    # one line per scalar key of the filesystem (params is an empty mapping: no leaf;
    # mount_options is volatile)
    assert len(lines) == 7


def test_top_level_root_is_ignored(layout):
    new = copy.deepcopy(layout)
    new["root"] = "/tmp/probe/mnt"
    assert diff(layout, new) == []
    assert "root" not in flatten(layout)


def test_nested_root_key_is_not_ignored():
    assert diff({"a": {"root": "/"}}, {"a": {"root": "/mnt"}}) == ["~ a.root: '/' -> '/mnt'"]


def test_reordered_filesystems_give_no_difference(layout):
    new = copy.deepcopy(layout)
    new["filesystems"].reverse()
    assert diff(layout, new) == []


def test_reordered_partitions_give_no_difference(layout):
    new = copy.deepcopy(layout)
    new["disks"][0]["ptable"]["partitions"].reverse()
    assert diff(layout, new) == []


def test_disks_are_matched_by_path(layout):
    new = copy.deepcopy(layout)
    new["disks"][0]["size"] = 32212254720
    assert diff(layout, new) == ["~ disks[path=/dev/sda].size: 21474836480 -> 32212254720"]


def test_items_without_uuid_fall_back_to_the_next_key():
    old = {"items": [{"uuid": "", "path": "/dev/sdb1", "x": 1}]}
    new = {"items": [{"uuid": "", "path": "/dev/sdb1", "x": 2}]}
    assert diff(old, new) == ["~ items[path=/dev/sdb1].x: 1 -> 2"]


def test_items_without_any_natural_key_use_position():
    assert flatten({"l": [{"a": 1}, {"a": 2}]}) == {"l[#0].a": 1, "l[#1].a": 2}


def test_lists_of_scalars_compare_whole():
    assert diff({"opts": ["a", "b"]}, {"opts": ["a", "c"]}) == [
        "~ opts: ['a', 'b'] -> ['a', 'c']"]


def test_lines_are_sorted_by_path(layout):
    new = copy.deepcopy(layout)
    new["filesystems"][2]["label"] = "system"
    new["disks"][0]["model"] = "Samsung SSD"
    new["version"] = 2
    lines = diff(layout, new)
    assert [ln.split(":")[0] for ln in lines] == [
        "~ disks[path=/dev/sda].model",
        f"~ filesystems[uuid={ROOT_UUID}].label",
        "~ version",
    ]


def test_members_sharing_a_uuid_are_not_merged():
    # blkid gives every member of one MD array (and of one multi-device btrfs) the
    # same UUID; losing one member must still show as a difference
    md = "3f1c9a2e-5b4d-4e6f-8a7b-9c0d1e2f3a4b"
    old = {"filesystems": [
        {"id": "fs0", "device": "disk0p1", "device_path": "/dev/sda1",
         "type": "linux_raid_member", "uuid": md},
        {"id": "fs1", "device": "disk1p1", "device_path": "/dev/sdb1",
         "type": "linux_raid_member", "uuid": md},
    ]}
    new = copy.deepcopy(old)
    del new["filesystems"][0]  # /dev/sda1 left the array
    new["filesystems"][0]["id"] = "fs0"
    lines = diff(old, new)
    assert any("/dev/sda1" in ln for ln in lines), lines


def test_an_automounted_esp_mounted_or_not_is_no_change(layout):
    """systemd's automount: /boot/efi is mounted only once something reads it."""
    layout["fstab"] = [{"spec": f"UUID={BOOT_UUID}", "file": "/boot/efi", "vfstype": "vfat",
                        "options": "umask=0077,x-systemd.automount", "freq": 0, "passno": 1,
                        "filesystem": "fs0"}]
    unmounted = copy.deepcopy(layout)
    unmounted["filesystems"][0].update(mountpoint=None, mount_options=None)
    assert diff(layout, unmounted) == [] and diff(unmounted, layout) == []
    # fstab's own options are still compared, and so is a filesystem fstab does not name
    changed = copy.deepcopy(unmounted)
    changed["fstab"][0]["options"] = "umask=0022"
    changed["filesystems"][2]["mountpoint"] = None
    assert diff(layout, changed) == [
        f"~ filesystems[uuid={ROOT_UUID}].mountpoint: '/' -> None",
        "~ fstab[#0].options: 'umask=0077,x-systemd.automount' -> "
        "'umask=0022'"]


# -- a disk that came back under another name (issue 11) ---------------------------

def renamed(layout, old="/dev/sda", new="/dev/sdb"):
    """The same layout with the disk's name changed everywhere it appears."""
    import yaml
    return yaml.safe_load(yaml.safe_dump(layout).replace(old, new))


PTID = "5E3A8F0C-6B1D-4C2E-9F7A-0B1C2D3E4F5A"


def test_a_renamed_disk_is_one_line(layout):
    layout["fstab"] = [{"spec": "/dev/sda3", "file": "/", "vfstype": "ext4",
                        "options": "defaults", "freq": 0, "passno": 1, "filesystem": "fs2"}]
    layout["lvm"] = [{"id": "vg0", "name": "vg0", "physical_volumes": [
        {"device": "disk0p2", "path": "/dev/sda2"}], "logical_volumes": [
        {"id": "vg0lv0", "name": "root", "devices": ["/dev/sda2(0)"]}]}]
    new = renamed(layout)
    assert len(flatten(layout).keys() - flatten(new).keys()) > 10  # path by path: many
    assert diff(layout, new) == [
        f"~ disk0 is now /dev/sdb (was /dev/sda, same partition table id {PTID.lower()})"]


def test_a_renamed_disk_with_a_real_change_shows_both(layout):
    new = renamed(layout)
    new["filesystems"][2]["label"] = "system"
    assert diff(layout, new) == [
        f"~ disk0 is now /dev/sdb (was /dev/sda, same partition table id {PTID.lower()})",
        f"~ filesystems[uuid={ROOT_UUID}].label: 'root' -> 'system'"]


def test_serial_is_stronger_than_the_table_id(layout):
    layout["disks"][0]["serial"] = "WD-WCC4N1234567"
    new = renamed(layout, "/dev/sda", "/dev/nvme0n1")
    assert diff(layout, new) == [
        "~ disk0 is now /dev/nvme0n1 (was /dev/sda, same serial wd-wcc4n1234567)"]


def test_two_disks_that_swapped_names(layout):
    second = copy.deepcopy(layout["disks"][0])
    second.update(id="disk1", path="/dev/sdb", serial=None,
                  ptable={"label": "dos", "id": "0x1a2b3c4d", "partitions": [
                      dict(part(1, 2048, 4096, None), id="disk1p1", path="/dev/sdb1")]})
    layout["disks"].append(second)
    layout["filesystems"].append({"id": "fs3", "device": "disk1p1", "device_path": "/dev/sdb1",
                                  "type": "xfs", "uuid": "x-uuid", "label": None,
                                  "mountpoint": "/srv", "params": {}})
    new = renamed(renamed(renamed(layout, "/dev/sda", "/dev/TMP"), "/dev/sdb", "/dev/sda"),
                  "/dev/TMP", "/dev/sdb")
    # lsblk lists in kernel order: ids follow the names
    new["disks"].reverse()
    for d, i in zip(new["disks"], (0, 1)):
        d["id"] = f"disk{i}"
        for p in d["ptable"]["partitions"]:
            p["id"] = f"disk{i}p{p['number']}"
    for f in new["filesystems"]:
        f["device"] = {"disk0p1": "disk1p1", "disk0p2": "disk1p2", "disk0p3": "disk1p3",
                       "disk1p1": "disk0p1"}[f["device"]]
    assert diff(layout, new) == [
        f"~ disk0 is now /dev/sdb (was /dev/sda, same partition table id {PTID.lower()}; "
        f"disk1 in the new layout)",
        "~ disk1 is now /dev/sda (was /dev/sdb, same partition table id 1a2b3c4d; "
        "disk0 in the new layout)"]


def test_a_disk_without_identity_is_still_compared_by_path(layout):
    layout["disks"][0]["ptable"]["id"] = None
    lines = diff(layout, renamed(layout))
    assert "- disks[path=/dev/sda].size: 21474836480 (gone)" in lines
    assert not any(" is now " in ln for ln in lines)


def test_two_disks_with_its_table_id_are_no_rename(layout):
    """The disk gone, two with its table id (a clone and its original): no guess."""
    new = copy.deepcopy(layout)
    new["disks"] = [renamed({"disks": layout["disks"]}, "/dev/sda", dev)["disks"][0]
                    for dev in ("/dev/sdb", "/dev/sdc")]
    new["disks"][1]["id"] = "disk1"
    lines = diff(layout, new)
    assert not any(" is now " in ln for ln in lines)
    assert "- disks[path=/dev/sda].size: 21474836480 (gone)" in lines
