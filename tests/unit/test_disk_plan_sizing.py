"""The sizing policy: an original disk's partitions on a larger or smaller disk."""

import pytest

from recovery.disks.sizing import Content, fit_disk

GIB = 1024 ** 3
MIB = 1024 ** 2
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def gpt_disk(last_type="ext4", size=10 * GIB, sector_size=512):
    ss = sector_size
    mib = MIB // ss
    parts = [
        {"id": "d0p1", "number": 1, "path": "/dev/sda1", "start": mib, "size": 512 * mib,
         "type": LINUX},
        {"id": "d0p2", "number": 2, "path": "/dev/sda2", "start": 513 * mib,
         "size": 4096 * mib, "type": LINUX},
    ]
    return {"id": "d0", "path": "/dev/sda", "size": size, "sector_size": ss,
            "ptable": {"label": "gpt", "id": None, "first_lba": 34, "last_lba": size // ss - 34,
                       "partitions": parts}}, {"d0p2": Content(last_type, None, last_type)}


def test_same_size_keeps_everything_and_last_lba():
    disk, contents = gpt_disk()
    fit = fit_disk(disk, "/dev/vdb", 10 * GIB, 512, contents)
    assert fit.problem is None and fit.notes == [] and fit.resized == {}
    assert [(p["start"], p["size"]) for p in fit.partitions] == [(2048, 1048576),
                                                                 (1050624, 8388608)]
    assert (fit.first_lba, fit.last_lba) == (34, 10 * GIB // 512 - 34)


def test_unknown_size_is_taken_as_the_same():
    disk, contents = gpt_disk()
    fit = fit_disk(disk, "/dev/vdb", None, None, contents)
    assert fit.problem is None and fit.resized == {} and fit.last_lba is not None


@pytest.mark.parametrize("fstype,grows", [
    ("ext4", True), ("xfs", True), ("btrfs", True), ("LVM2_member", True),
    ("linux_raid_member", True), ("crypto_LUKS", True),
    ("swap", False), ("vfat", False), (None, False)])
def test_larger_disk_grows_only_what_can_use_it(fstype, grows):
    disk, contents = gpt_disk(fstype)
    fit = fit_disk(disk, "/dev/vdb", 20 * GIB, 512, contents)
    last = fit.partitions[1]
    assert fit.last_lba is None
    if grows:
        # it gains the 10 GiB the disk has more; the 5.5 GiB the original left
        # free at the end stay free
        assert last["size"] == (4096 + 10240) * 2048
        assert fit.resized == {"d0p2": (4 * GIB, 14 * GIB)}
        assert fit.notes == [f"/dev/sda2 ({fstype}) grows from 4.0 GiB to 14.0 GiB: /dev/vdb "
                             f"is larger"]
    else:
        assert last["size"] == 4096 * 2048 and fit.resized == {}
        assert fit.notes == [f"10.0 GiB at the end of /dev/vdb left unallocated: the last "
                             f"partition /dev/sda2 holds {fstype}, which keeps its size"]


def test_a_full_disk_grows_to_the_new_end():
    disk, contents = gpt_disk()
    disk["ptable"]["partitions"][1]["size"] = (10 * GIB // 512 - 33) // 2048 * 2048 - 1050624
    fit = fit_disk(disk, "/dev/vdb", 20 * GIB, 512, contents)
    end = (20 * GIB // 512 - 33) // 2048 * 2048
    assert fit.partitions[1]["start"] + fit.partitions[1]["size"] == end


def test_less_than_a_mib_more_changes_nothing():
    disk, contents = gpt_disk()
    fit = fit_disk(disk, "/dev/vdb", 10 * GIB + 512 * 1000, 512, contents)
    assert fit.resized == {} and fit.notes == []


def test_smaller_disk_with_used_data_that_fits():
    disk, contents = gpt_disk()
    contents["d0p2"] = Content("ext4", GIB, "ext4 on /")
    fit = fit_disk(disk, "/dev/vdb", 3 * GIB, 512, contents)
    end = (3 * GIB // 512 - 33) // 2048 * 2048
    assert fit.problem is None
    assert fit.partitions[1]["size"] == end - 1050624
    assert fit.notes == ["/dev/sda2 (ext4 on /) shrinks from 4.0 GiB to 2.5 GiB: /dev/vdb is "
                         "smaller, and the 1.0 GiB used still fit"]


def test_smaller_disk_with_too_much_used():
    disk, contents = gpt_disk()
    contents["d0p2"] = Content("ext4", 3 * GIB, "ext4 on /")
    fit = fit_disk(disk, "/dev/vdb", 3 * GIB, 512, contents)
    need = (1050624 + 8388608 + 33) * 512
    assert fit.problem == (
        f"/dev/vdb is too small for /dev/sda: its partitions took {need} bytes (4.5 GiB), "
        f"/dev/vdb has {3 * GIB} (3.0 GiB); the last partition /dev/sda2 (ext4 on /) would "
        f"have to shrink to 2.5 GiB: it uses 3.0 GiB, 3.3 GiB needed with the margin; "
        f"/dev/vdb needs at least 3.8 GiB")


@pytest.mark.parametrize("content,why", [
    (Content("ext4", None, "ext4 on /srv"),
     "the layout does not say how much of it (ext4 on /srv) is used (filesystems[].used)"),
    (Content("LVM2_member", None, "LVM2_member"),
     "it holds an LVM physical volume, which is not shrunk"),
    (Content("crypto_LUKS", None, "a LUKS container"),
     "it holds a LUKS container, which is not shrunk"),
    (Content(None), "it holds nothing the layout knows of, so its size is kept"),
])
def test_smaller_disk_refused_with_the_reason(content, why):
    disk, contents = gpt_disk()
    contents["d0p2"] = content
    fit = fit_disk(disk, "/dev/vdb", 3 * GIB, 512, contents)
    assert fit.problem.endswith(f"; the last partition /dev/sda2 would have to shrink to "
                                f"2.5 GiB, but {why}; /dev/vdb needs at least 4.5 GiB")


def test_smaller_than_the_partitions_before_the_last():
    disk, contents = gpt_disk()
    contents["d0p2"] = Content("swap", None, "swap")
    fit = fit_disk(disk, "/dev/vdb", 400 * MIB, 512, contents)
    assert fit.problem.endswith("; /dev/sda1 ends at 513.0 MiB, past what /dev/vdb can hold, "
                                "and only the last partition can shrink; /dev/vdb needs at "
                                "least 515.0 MiB")
    # the minimum said is the real one
    assert fit_disk(disk, "/dev/vdb", 515 * MIB, 512, contents).problem is None
    assert fit_disk(disk, "/dev/vdb", 514 * MIB, 512, contents).problem is not None
    fit = fit_disk(disk, "/dev/vdb", 600 * MIB, 512, contents)
    assert fit.problem is None and fit.partitions[1]["size"] == (599 - 513) * 2048


def test_xfs_needs_at_least_300_mib():
    disk, contents = gpt_disk()
    contents["d0p2"] = Content("xfs", 10 * MIB, "xfs on /srv")
    assert fit_disk(disk, "/dev/vdb", 900 * MIB, 512, contents).problem is None
    fit = fit_disk(disk, "/dev/vdb", 800 * MIB, 512, contents)
    # the filesystem's own minimum is the reason, not the 10 MiB of data
    assert fit.problem.endswith("shrink to 286.0 MiB: mkfs.xfs needs at least 300.0 MiB; "
                                "/dev/vdb needs at least 814.0 MiB")
    # and that minimum is the real one: it fits, a MiB less does not
    assert fit_disk(disk, "/dev/vdb", 814 * MIB, 512, contents).problem is None
    assert fit_disk(disk, "/dev/vdb", 813 * MIB, 512, contents).problem is not None


def test_4k_sector_disk_converts_positions():
    disk, contents = gpt_disk()
    fit = fit_disk(disk, "/dev/vdb", 10 * GIB, 4096, contents)
    assert [(p["start"], p["size"]) for p in fit.partitions] == [(256, 131072),
                                                                 (131328, 1048576)]
    assert fit.first_lba is None  # 34 sectors of 512 are no whole number of 4K sectors
    assert fit.resized == {} and fit.notes == []


def test_4k_sector_disk_full_disk_keeps_its_backup_gpt_room():
    disk, contents = gpt_disk()
    disk["ptable"]["partitions"][1]["size"] = (10 * GIB // 512 - 33) // 2048 * 2048 - 1050624
    fit = fit_disk(disk, "/dev/vdb", 10 * GIB, 4096, contents)
    # 5 sectors (16 KiB of entries + header) for the backup GPT at the end
    assert fit.partitions[1]["start"] + fit.partitions[1]["size"] <= 10 * GIB // 4096 - 5


def test_unaligned_partition_on_a_4k_disk_refused():
    disk, contents = gpt_disk()
    disk["ptable"]["partitions"][0]["start"] = 63
    fit = fit_disk(disk, "/dev/vdb", 10 * GIB, 4096, contents)
    assert fit.problem == ("/dev/sda1 cannot be placed on /dev/vdb: it has 4096-byte sectors "
                           "and the partition does not start and end on one (original "
                           "sectors: 512 bytes)")


def test_mbr_cannot_grow_past_2_tib():
    disk = {"id": "d0", "path": "/dev/sda", "size": 100 * GIB, "sector_size": 512,
            "ptable": {"label": "dos", "id": "0x1", "partitions": [
                {"id": "d0p1", "number": 1, "path": "/dev/sda1", "start": 2048,
                 "size": 100 * GIB // 512 - 2048, "type": "83", "kind": "primary"}]}}
    fit = fit_disk(disk, "/dev/sdb", 4 * 1024 * GIB, 512,
                   {"d0p1": Content("ext4", None, "ext4 on /")})
    assert fit.partitions[0]["start"] + fit.partitions[0]["size"] == 2 ** 32 // 2048 * 2048


def test_whole_disk_content():
    disk = {"id": "d1", "path": "/dev/sdb", "size": 10 * GIB, "ptable": None}
    fit = fit_disk(disk, "/dev/vdc", 20 * GIB, 512, {"d1": Content("LVM2_member", None,
                                                                   "LVM2_member")})
    assert fit.resized == {"d1": (10 * GIB, 20 * GIB)}
    assert fit.notes == ["LVM2_member on the whole of /dev/vdc gets 20.0 GiB (was 10.0 GiB)"]
    fit = fit_disk(disk, "/dev/vdc", 5 * GIB, 512, {"d1": Content("LVM2_member", None,
                                                                  "LVM2_member")})
    assert fit.problem.endswith("; it holds an LVM physical volume, which is not shrunk")
