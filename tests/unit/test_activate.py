"""mount and umount plans rendered from realistic layouts, compared with the
commands they must run (no mocks for the plans: the facts go in as data).

The layouts are the captured fixtures (GPT ext4 + swap, btrfs with
subvolumes, MD RAID1/5) and the written ones (LVM with a thin pool, MD RAID1
under LVM, LUKS with LVM inside: tests/fixtures/plans/README).  `probed` is
what `blkid -p` says of each present device: built from the layout (the
disks diskinit made), then changed to show the refusals.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from essentials.errors import AmdrError, ConfigError, RefusedError
from essentials.layout import rawdir, schema
from essentials.layout.normalise import normalise
from essentials.runner import Result, Runner
from recovery.disks import activate, show
from recovery.disks.plan import PlanError, needed_disks, plan_disks
from recovery.disks.ptable import partition_path
from recovery.disks.stack import Passphrase

FIX = Path(__file__).resolve().parent.parent / "fixtures"
PLANS = FIX / "plans"


def plan_fixture(name: str) -> dict:
    return schema.validate(yaml.safe_load((PLANS / f"{name}.yaml").read_text()), name)


def probed_from(layout: dict, mapping: dict) -> dict:
    """What blkid -p finds on the mapped disks when diskinit made them."""
    paths = {}
    for d in needed_disks(layout):
        new = mapping[d["path"]]
        paths[d["id"]] = new
        for p in (d.get("ptable") or {}).get("partitions") or []:
            paths[p["id"]] = partition_path(new, p["number"])
    out = {}
    for d in needed_disks(layout):
        if d.get("ptable"):
            out[paths[d["id"]]] = {"PTUUID": d["ptable"]["id"].lower(),
                                   "PTTYPE": d["ptable"]["label"]}
    for f in layout["filesystems"]:
        if f["device"] in paths:
            out[paths[f["device"]]] = {"TYPE": f["type"], "UUID": f["uuid"]}
    return out


def commands(actions) -> dict[str, list[str]]:
    return {a.id: [s.shown() for s in a.steps()] for a in actions}


def never_asked():
    raise AssertionError("the passphrase must not be asked while planning")


def plan(layout, mapping, probed=None, **kw):
    kw.setdefault("passphrase", Passphrase(never_asked))
    return activate.plan_mount(layout, mapping, "/target",
                               probed if probed is not None else probed_from(layout, mapping),
                               **kw)


class Recording(Runner):
    """Runs nothing; records argv and answers from canned stdout (by argv[0])."""

    def __init__(self, out=None):
        super().__init__()
        self.calls: list[list[str]] = []
        self.out = out or {}

    def run(self, argv, **kw):
        self.calls.append([str(a) for a in argv])
        return Result(list(argv), 0, self.out.get(argv[0], b""))


# -- plain GPT: ext4 root, ext4 /srv, swap (captured) ----------------------------------

@pytest.fixture(scope="module")
def gpt_layout():
    return normalise(rawdir.load(FIX / "layout-gpt-loop"), root="/tmp/probe/mnt")


def test_plain_gpt_ext4_and_swap(gpt_layout):
    mapping = {"/dev/loop0": "/dev/vdb"}
    actions = plan(gpt_layout, mapping)
    assert [a.id for a in actions] == ["preflight", "mount-fs0", "mount-fs1"]
    assert commands(actions[1:]) == {
        "mount-fs0": ["mkdir -p /target", "mount -t ext4 /dev/vdb1 /target"],
        "mount-fs1": ["mkdir -p /target/srv", "mount -t ext4 /dev/vdb2 /target/srv"],
    }
    # no swapon, no mkfs, no wipe: nothing but mounts
    assert actions[0].tools == ["mkdir", "mount"]
    assert activate.stack_items(actions) == []
    assert show.refs(actions) == {"preflight": [], "mount-fs0": [], "mount-fs1": ["mount-fs0"]}


def test_a_filesystem_not_on_its_disk_is_refused_by_name(gpt_layout):
    mapping = {"/dev/loop0": "/dev/vdb"}
    probed = probed_from(gpt_layout, mapping)
    root = next(f for f in gpt_layout["filesystems"] if f["id"] == "fs0")
    probed["/dev/vdb1"] = {"TYPE": "xfs", "UUID": "0000-other"}
    del probed["/dev/vdb2"]
    with pytest.raises(RefusedError) as e:
        plan(gpt_layout, mapping, probed)
    srv = next(f for f in gpt_layout["filesystems"] if f["id"] == "fs1")
    assert str(e.value) == (
        "refusing to mount, nothing was changed:\n"
        f"  ext4 filesystem fs0 on / (UUID {root['uuid']}, /dev/loop0p1 on the original "
        "system) is not on /dev/vdb1: it carries xfs UUID 0000-other\n"
        f"  ext4 filesystem fs1 on /srv (UUID {srv['uuid']}, /dev/loop0p2 on the original "
        "system) is not on /dev/vdb2: it carries no filesystem or stack signature")


def test_an_unmapped_disk_is_named_with_the_option_to_give(gpt_layout):
    with pytest.raises(PlanError) as e:
        plan(gpt_layout, {}, {}, unmatched={"/dev/loop0": "no disk here carries it"})
    assert str(e.value) == ("cannot mount, nothing was changed:\n  /dev/loop0 (200.0 MiB): no "
                            "disk here is known to hold it; give --map /dev/loop0=DISK (no "
                            "disk here carries it)")


# -- LVM with a thin pool (written) ------------------------------------------------------

def test_uefi_gpt_lvm():
    layout = plan_fixture("uefi-gpt-lvm")
    actions = plan(layout, {"/dev/nvme0n1": "/dev/nvme1n1"})
    assert [a.id for a in actions] == [
        "preflight", "activate-vg0", "check-filesystems", "mount-fs3", "mount-fs1",
        "mount-fs5", "mount-fs0", "mount-fs6"]
    assert commands(actions) == {
        "preflight": [],
        "activate-vg0": ["vgchange --activate y vg0"],
        "check-filesystems": ["blkid -p -o value -s UUID /dev/vg0/root",
                              "blkid -p -o value -s UUID /dev/vg0/home",
                              "blkid -p -o value -s UUID /dev/vg0/data"],
        "mount-fs3": ["mkdir -p /target", "mount -t ext4 /dev/vg0/root /target"],
        "mount-fs1": ["mkdir -p /target/boot", "mount -t ext4 /dev/nvme1n1p2 /target/boot"],
        "mount-fs5": ["mkdir -p /target/home", "mount -t xfs /dev/vg0/home /target/home"],
        "mount-fs0": ["mkdir -p /target/boot/efi",
                      "mount -t vfat /dev/nvme1n1p1 /target/boot/efi"],
        "mount-fs6": ["mkdir -p /target/srv/data",
                      "mount -t ext4 /dev/vg0/data /target/srv/data"],
    }
    vg = actions[1]
    assert vg.pvs == ["/dev/nvme1n1p3"]
    assert vg.lvs == ["/dev/vg0/data", "/dev/vg0/home", "/dev/vg0/root"]  # waited for
    assert show.refs(actions) == {
        "preflight": [], "activate-vg0": [], "check-filesystems": ["activate-vg0"],
        "mount-fs3": ["check-filesystems"], "mount-fs1": ["mount-fs3"],
        "mount-fs5": ["check-filesystems", "mount-fs3"], "mount-fs0": ["mount-fs1"],
        "mount-fs6": ["check-filesystems", "mount-fs3"]}
    assert activate.stack_items(actions) == [{"type": "vg", "name": "vg0"}]


def test_a_pv_that_is_not_there_is_refused_before_activating():
    layout = plan_fixture("uefi-gpt-lvm")
    mapping = {"/dev/nvme0n1": "/dev/nvme1n1"}
    probed = probed_from(layout, mapping)
    probed["/dev/nvme1n1p3"] = {"TYPE": "LVM2_member", "UUID": "another-pv-uuid"}
    with pytest.raises(RefusedError) as e:
        plan(layout, mapping, probed)
    pv = layout["lvm"][0]["physical_volumes"][0]
    assert (f"a physical volume of volume group vg0 (UUID {pv['uuid']}, /dev/nvme0n1p3 on the "
            f"original system) is not on /dev/nvme1n1p3: it carries LVM2_member UUID "
            f"another-pv-uuid") in str(e.value)


def test_check_refuses_a_filesystem_on_an_lv_with_another_uuid():
    layout = plan_fixture("uefi-gpt-lvm")
    check = next(a for a in plan(layout, {"/dev/nvme0n1": "/dev/nvme1n1"})
                 if a.id == "check-filesystems")
    root = next(f for f in layout["filesystems"] if f["id"] == "fs3")
    runner = Recording({"blkid": root["uuid"].encode() + b"\n"})
    with pytest.raises(RefusedError) as e:
        check.apply(runner)
    # root is right; home and data carry root's UUID here
    assert len(runner.calls) == 3
    msg = str(e.value)
    assert msg.startswith("refusing to mount, nothing was mounted:\n  xfs filesystem fs5 on "
                          "/home (UUID e5f60718-293a-4b5c-95e6-f708192a3b4c")
    assert "fs6 on /srv/data" in msg and "fs3" not in msg
    assert f"is not on /dev/vg0/home: it carries something UUID {root['uuid']}" in msg
    # all right: nothing raised
    check.filesystems = [f for f in check.filesystems if f["id"] == "fs3"]
    check.apply(Recording({"blkid": root["uuid"].upper().encode()}))


# -- MD RAID1 under LVM (written), RAID1 degraded and RAID5 with a spare (captured) -----------

def test_md_raid1_with_lvm():
    layout = plan_fixture("md-raid1-lvm")
    actions = plan(layout, {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"})
    assert [a.id for a in actions] == ["preflight", "assemble-array0", "activate-vg0",
                                       "check-filesystems", "mount-fs3"]
    assert commands(actions[1:]) == {
        "assemble-array0": ["mdadm --assemble --run /dev/md0 "
                            "--uuid=3f1a2b3c:4d5e6f70:8192a3b4:c5d6e7f8 /dev/sdc2 /dev/sdd2"],
        "activate-vg0": ["vgchange --activate y vgsys"],
        "check-filesystems": ["blkid -p -o value -s UUID /dev/vgsys/root"],
        "mount-fs3": ["mkdir -p /target", "mount -t ext4 /dev/vgsys/root /target"],
    }
    assert show.refs(actions)["activate-vg0"] == ["assemble-array0"]
    assert activate.stack_items(actions) == [{"type": "md", "path": "/dev/md0"},
                                             {"type": "vg", "name": "vgsys"}]
    assert actions[0].tools == ["mdadm", "vgchange", "blkid", "mkdir", "mount"]


def test_md_member_uuid_in_blkid_form_is_the_same_array():
    layout = plan_fixture("md-raid1-lvm")
    mapping = {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"}
    probed = probed_from(layout, mapping)
    # blkid writes the array UUID 8-4-4-4-12, mdadm --detail 8:8:8:8
    for p in ("/dev/sdc2", "/dev/sdd2"):
        probed[p] = {"TYPE": "linux_raid_member", "UUID": "3f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8"}
    assert plan(layout, mapping, probed)[1].id == "assemble-array0"
    probed["/dev/sdd2"] = {"TYPE": "ext4", "UUID": "3f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8"}
    with pytest.raises(RefusedError) as e:
        plan(layout, mapping, probed)
    assert "a member of MD array /dev/md0 (UUID 3f1a2b3c:4d5e6f70:8192a3b4:c5d6e7f8, " \
           "/dev/sdb2 on the original system) is not on /dev/sdd2: it carries ext4" in str(e.value)


def test_md_fixture_degraded_raid1_and_raid5_with_spare():
    layout = normalise(rawdir.load(FIX / "layout-md"))
    mapping = {d["path"]: d["path"].replace("/dev/sd", "/dev/vd") for d in layout["disks"]}
    got = commands(plan(layout, mapping))
    assert got["assemble-array1"] == [
        "mdadm --assemble --run /dev/md1 --uuid=9e27c4d1:5b3a4f68:a0d26c1e:8b7f4a95 /dev/vda2"]
    assert got["assemble-array2"] == [
        "mdadm --assemble --run /dev/md2 --uuid=3b1f9d2c:7a4e8b6d:c5f0e9a1:28d7b4c3 "
        "/dev/vdc /dev/vdd /dev/vde /dev/vdf"]
    assert got["mount-fs8"] == ["mkdir -p /target", "mount -t ext4 /dev/md0 /target"]
    assert got["mount-fs10"] == ["mkdir -p /target/srv", "mount -t xfs /dev/md2 /target/srv"]


# -- LUKS with LVM inside (written) ------------------------------------------------------------

def test_luks_with_lvm_inside_and_a_key_file():
    layout = plan_fixture("luks-lvm")
    actions = plan(layout, {"/dev/vda": "/dev/vdb"}, luks_keys={"*": "/root/luks.key"})
    assert [a.id for a in actions] == ["preflight", "open-luks0", "activate-vg0",
                                       "check-filesystems", "mount-fs4", "mount-fs1",
                                       "mount-fs0"]
    assert commands(actions[1:4]) == {
        # the crypttab name: the restored crypttab and fstab still match
        "open-luks0": ["cryptsetup open --type luks --key-file /root/luks.key /dev/vdb3 "
                       "vda3_crypt"],
        "activate-vg0": ["vgchange --activate y debian-vg"],
        "check-filesystems": ["blkid -p -o value -s UUID /dev/debian-vg/root"],
    }
    assert commands(actions[4:]) == {
        "mount-fs4": ["mkdir -p /target", "mount -t ext4 /dev/debian-vg/root /target"],
        "mount-fs1": ["mkdir -p /target/boot", "mount -t ext2 /dev/vdb2 /target/boot"],
        "mount-fs0": ["mkdir -p /target/boot/efi", "mount -t vfat /dev/vdb1 /target/boot/efi"],
    }
    assert show.refs(actions)["activate-vg0"] == ["open-luks0"]
    assert activate.stack_items(actions) == [{"type": "luks", "name": "vda3_crypt"},
                                             {"type": "vg", "name": "debian-vg"}]


def test_luks_passphrase_is_asked_on_opening_only_and_never_shown():
    layout = plan_fixture("luks-lvm")
    secret = "correct horse battery staple"
    asked = []
    actions = plan(layout, {"/dev/vda": "/dev/vdb"},
                   passphrase=Passphrase(lambda: asked.append(1) or secret))
    opened = actions[1]
    assert opened.render() == [["cryptsetup", "open", "--type", "luks", "--key-file", "-",
                                "/dev/vdb3", "vda3_crypt"]]
    text = json.dumps(show.doc(actions)) + "\n".join(show.text(actions))
    assert secret not in text and "<passphrase>" in text and "<<passphrase" in text
    assert asked == []
    assert opened.steps()[0].secret_stdin() == secret.encode() and asked == [1]


def test_luks_without_key_or_passphrase_and_luks_header_elsewhere():
    layout = plan_fixture("luks-lvm")
    with pytest.raises(PlanError) as e:
        plan(layout, {"/dev/vda": "/dev/vdb"}, passphrase=None)
    assert "/dev/vda3: LUKS container with no key file and no passphrase to open it" \
        in str(e.value)
    probed = probed_from(layout, {"/dev/vda": "/dev/vdb"})
    probed["/dev/vdb3"] = {}
    with pytest.raises(RefusedError) as e:
        plan(layout, {"/dev/vda": "/dev/vdb"}, probed)
    assert ("LUKS container vda3_crypt (UUID 7e8f90a1-b2c3-4d4e-8f5a-6b7c8d9e0f1a, /dev/vda3 "
            "on the original system) is not on /dev/vdb3: it carries no filesystem or stack "
            "signature") in str(e.value)


# -- btrfs with subvolumes (captured) ------------------------------------------------------------

def test_btrfs_subvolumes_mounted_with_their_options():
    raw = rawdir.load(FIX / "layout-btrfs-loop")
    raw.update(rawdir.load(FIX / "layout-boot-uefi"))
    layout = normalise(raw, root="/var/tmp/amdr-layout-38opcikv/mnt")
    actions = plan(layout, {"/dev/loop0": "/dev/vdb"})
    assert commands(actions) == {
        "preflight": [],
        "mount-fs1": ["mkdir -p /target", "mount -t btrfs -o subvol=@ /dev/vdb2 /target"],
        "mount-fs1-1": ["mkdir -p /target/home",
                        "mount -t btrfs -o subvol=@home /dev/vdb2 /target/home"],
    }
    assert show.refs(actions)["mount-fs1-1"] == ["mount-fs1"]


# -- idempotent applying -----------------------------------------------------------------------

def test_mount_of_a_mounted_filesystem_runs_nothing(gpt_layout, monkeypatch, capsys):
    actions = plan(gpt_layout, {"/dev/loop0": "/dev/vdb"})
    monkeypatch.setattr(activate, "_mounted", lambda src, target: target == "/target")
    runner = Recording()
    for a in actions[1:]:
        a.apply(runner)
    assert runner.calls == [["mkdir", "-p", "/target/srv"],
                            ["mount", "-t", "ext4", "/dev/vdb2", "/target/srv"]]
    assert "(already mounted: /dev/vdb1 on /target)" in capsys.readouterr().out


def test_deactivating_what_is_gone_runs_nothing(monkeypatch):
    actions = activate.plan_umount(["/t/srv", "/t"], [
        {"type": "md", "path": "/dev/md0"}, {"type": "luks", "name": "c"},
        {"type": "vg", "name": "vg0"}])
    monkeypatch.setattr(activate.os.path, "ismount", lambda p: p == "/t")
    monkeypatch.setattr(activate, "vg_active", lambda name: True)
    monkeypatch.setattr(activate, "luks_active", lambda name: False)
    monkeypatch.setattr(activate, "md_active", lambda path: True)
    runner = Recording()
    for a in actions:
        a.apply(runner)
    assert runner.calls == [["umount", "/t"], ["vgchange", "--activate", "n", "vg0"],
                            ["mdadm", "--stop", "/dev/md0"]]


def test_md_assemble_of_an_assembled_array_runs_nothing(monkeypatch):
    layout = plan_fixture("md-raid1-lvm")
    md = plan(layout, {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"})[1]
    monkeypatch.setattr(activate, "md_active", lambda path: True)
    monkeypatch.setattr(activate, "wait_paths", lambda paths, timeout=15: [])
    runner = Recording()
    md.apply(runner)
    assert runner.calls == []


# -- umount --------------------------------------------------------------------------------------

def test_umount_plan_unmounts_deepest_first_then_deactivates_in_reverse():
    recorded = [{"type": "md", "path": "/dev/md0"}, {"type": "luks", "name": "vda3_crypt"},
                {"type": "vg", "name": "debian-vg"}]
    actions = activate.plan_umount(["/t/boot/efi", "/t/boot", "/t/home", "/t"], recorded)
    assert commands(actions) == {
        "umount-1": ["umount /t/boot/efi"], "umount-2": ["umount /t/boot"],
        "umount-3": ["umount /t/home"], "umount-4": ["umount /t"],
        "deactivate-debian-vg": ["vgchange --activate n debian-vg"],
        "close-vda3_crypt": ["cryptsetup close vda3_crypt"],
        "stop-md0": ["mdadm --stop /dev/md0"]}
    assert show.refs(actions) == {
        "umount-1": [], "umount-2": ["umount-1"], "umount-3": [],
        "umount-4": ["umount-1", "umount-2", "umount-3"],
        "deactivate-debian-vg": ["umount-1", "umount-2", "umount-3", "umount-4"],
        "close-vda3_crypt": ["deactivate-debian-vg"], "stop-md0": ["close-vda3_crypt"]}
    assert activate.plan_umount([], []) == []


def test_mounts_under_the_target_in_the_order_to_unmount():
    table = ("/dev/sda1 / ext4 rw 0 0\n"
             "/dev/vdb2 /mnt/my\\040target ext4 rw 0 0\n"
             "/dev/vdb1 /mnt/my\\040target/boot ext2 rw 0 0\n"
             "/dev/vdb3 /mnt/my\\040target/srv/www xfs rw 0 0\n"
             "/dev/vdb4 /mnt/my\\040target/srv xfs rw 0 0\n"
             "tmpfs /mnt/my\\040target2 tmpfs rw 0 0\n"
             "/dev/vdb5 /mnt/my\\040target/boot ext2 rw 0 0\n")
    mounts = activate.parse_mounts(table)
    assert mounts[1] == ("/dev/vdb2", "/mnt/my target")
    assert activate.under("/mnt/my target/", mounts) == [
        "/mnt/my target/srv/www", "/mnt/my target/boot", "/mnt/my target/srv",
        "/mnt/my target/boot", "/mnt/my target"]
    assert activate.under("/elsewhere", mounts) == []


# -- the state file ------------------------------------------------------------------------------

def test_state_is_recorded_merged_and_forgotten(tmp_path):
    path = activate.state_path(tmp_path / "t.amdr")
    assert activate.read_state(path) == []
    md, vg = {"type": "md", "path": "/dev/md0"}, {"type": "vg", "name": "vg0"}
    activate.record(path, [md])
    activate.record(path, [md, vg])
    assert activate.read_state(path) == [md, vg]
    assert json.loads(path.read_text())["version"] == 1
    activate.forget(path, [vg])
    assert activate.read_state(path) == [md]
    activate.forget(path, [md])
    assert not path.exists()
    activate.record(path, [])
    assert not path.exists()


def test_a_state_file_that_is_not_ours_is_an_error(tmp_path):
    path = activate.state_path(tmp_path)
    path.write_text('{"active": [{"type": "vg"}]}')
    with pytest.raises(AmdrError) as e:
        activate.read_state(path)
    assert "not a state file amdr-recover wrote" in str(e.value)
    path.write_text("{")
    with pytest.raises(AmdrError):
        activate.read_state(path)


def test_diskinit_plans_record_what_they_activate():
    layout = plan_fixture("luks-lvm")
    actions = plan_disks(layout, {"/dev/vda": "/dev/vdb"}, {}, "/t",
                         files=lambda rel: "/b/" + rel, luks_keys={"*": "/k"})
    assert activate.stack_items(actions) == [{"type": "luks", "name": "vda3_crypt"},
                                             {"type": "vg", "name": "debian-vg"}]
    md = plan_disks(plan_fixture("md-raid1-lvm"), {"/dev/sda": "/dev/sdc", "/dev/sdb": "/dev/sdd"},
                    {}, "/t", files=lambda rel: "/b/" + rel)
    assert activate.stack_items(md) == [{"type": "md", "path": "/dev/md0"},
                                        {"type": "vg", "name": "vgsys"}]


# -- finding the disks again -----------------------------------------------------------------------

def node(path, size=1 << 30, **kw):
    return dict({"path": path, "type": "disk", "size": size}, **kw)


def test_disks_are_found_by_their_partition_table_id(gpt_layout):
    ptid = gpt_layout["disks"][0]["ptable"]["id"]
    present = [node("/dev/vda"), node("/dev/vdb"), node("/dev/vdc")]
    probes = {"/dev/vda": {"PTUUID": "11111111-2222-3333-4444-555555555555"},
              "/dev/vdc": {"PTUUID": ptid.lower(), "PTTYPE": "gpt"}}
    m = activate.match_present(gpt_layout, present, probes)
    assert m.mapping == {"/dev/loop0": "/dev/vdc"}
    assert m.reasons == {"/dev/loop0": f"partition table id {ptid}"}
    # the original still attached beside its copy: ask, do not pick
    probes["/dev/vda"] = dict(probes["/dev/vdc"])
    m = activate.match_present(gpt_layout, present, probes)
    assert m.mapping == {}
    assert m.problems == [f"/dev/loop0: /dev/vda and /dev/vdc both carry its partition table "
                          f"id {ptid} (the original disk beside its copy?): choose one with "
                          f"--map /dev/loop0=DISK"]
    # --map decides; the running system's disk is never found by content
    m = activate.match_present(gpt_layout, present, probes, {"/dev/loop0": "/dev/vda"})
    assert m.mapping == {"/dev/loop0": "/dev/vda"} and m.reasons["/dev/loop0"] == "--map"
    m = activate.match_present(gpt_layout, present, probes, boot={"/dev/vda"})
    assert m.mapping == {"/dev/loop0": "/dev/vdc"}


def test_mbr_label_id_and_never_size():
    mbr = normalise(rawdir.load(FIX / "layout-mbr-loop"),
                    root="/var/tmp/amdr-layout-2f1qqdxn/mnt")
    size = mbr["disks"][0]["size"]
    present = [node("/dev/sdb", size), node("/dev/sdc", size)]
    m = activate.match_present(mbr, present, {"/dev/sdc": {"PTUUID": "5eed1e55"}})
    assert m.mapping == {"/dev/loop0": "/dev/sdc"}  # label-id 0x5eed1e55
    m = activate.match_present(mbr, present, {})
    assert m.mapping == {} and "/dev/loop0" in m.unmatched  # a disk of the same size: no


def test_whole_disk_members_and_serials():
    md = normalise(rawdir.load(FIX / "layout-md"))
    uuid = "3b1f9d2c-7a4e-8b6d-c5f0-e9a128d7b4c3"  # md2's, on four whole disks
    assert [f["device"] for f in md["filesystems"] if f["uuid"] == uuid] == [
        "disk2", "disk3", "disk4", "disk5"]
    present = [node(f"/dev/vd{c}") for c in "pqrs"] + [node("/dev/vdy", serial="QM00002")]
    probes = {f"/dev/vd{c}": {"TYPE": "linux_raid_member", "UUID": uuid} for c in "pqrs"}
    m = activate.match_present(md, present, probes)
    assert m.problems == []
    # the members share the array's UUID: each gets one of them
    assert m.mapping == {"/dev/sdc": "/dev/vdp", "/dev/sdd": "/dev/vdq", "/dev/sde": "/dev/vdr",
                         "/dev/sdf": "/dev/vds", "/dev/sdb": "/dev/vdy"}
    assert m.reasons["/dev/sdc"] == (f"linux_raid_member UUID {uuid} on the whole disk (a "
                                     f"member of that array)")
    assert m.reasons["/dev/sdb"] == "serial QM00002"
    assert "/dev/sda" in m.unmatched


def test_a_map_naming_no_disk_of_the_layout(gpt_layout):
    m = activate.match_present(gpt_layout, [], {}, {"/dev/sdz": "/dev/vdb"})
    assert m.problems == ["--map /dev/sdz=/dev/vdb: the layout has no disk /dev/sdz (its disks: "
                          "/dev/loop0)"]


def test_a_volume_group_is_active_when_a_mapping_of_its_lvs_is_there():
    mapped = ["control", "vg-root", "debian--vg-swap_1", "vda3_crypt"]
    assert activate.vg_active("vg", mapped) and activate.vg_active("debian-vg", mapped)
    assert not activate.vg_active("debian", mapped)  # debian--vg-...: another VG
    assert not activate.vg_active("vda3_crypt", mapped) and not activate.vg_active("vg", [])


def test_same_uuid():
    assert activate.same_uuid("3f1a2b3c:4d5e6f70:8192a3b4:c5d6e7f8",
                              "3F1A2B3C-4D5E-6F70-8192-A3B4C5D6E7F8")
    assert not activate.same_uuid("", "")
    assert not activate.same_uuid("abc", "abd")


# -- plan --json's disk actions ------------------------------------------------------

def test_plan_doc_of_a_luks_lvm_diskinit_plan():
    layout = plan_fixture("luks-lvm")
    actions = plan_disks(layout, {"/dev/vda": "/dev/vdb"}, {}, "/target",
                         files=lambda rel: "/b/" + rel, passphrase=Passphrase(never_asked))
    doc = show.doc(actions)
    json.dumps(doc)  # serialisable as it is
    by_id = {d["id"]: d for d in doc}
    assert {d["id"]: d["refs"] for d in doc} == {
        "preflight": [], "wipe-disk0": [], "ptable-disk0": ["wipe-disk0"],
        "luks-luks0": ["ptable-disk0"], "open-luks0": ["luks-luks0"],
        "pv-luks0": ["open-luks0"], "vg-vg0": ["pv-luks0"],
        "format-fs0": ["ptable-disk0"], "format-fs1": ["ptable-disk0"],
        "format-fs4": ["vg-vg0"], "format-fs5": ["vg-vg0"],
        "mount-fs4": ["format-fs4"], "mount-fs1": ["format-fs1", "mount-fs4"],
        "mount-fs0": ["format-fs0", "mount-fs1"]}
    table = by_id["ptable-disk0"]
    assert table["commands"][0][:2] == ["sfdisk", "--quiet"]
    assert table["stdin"][0].startswith("label: gpt\n") and table["stdin"][1] is None
    assert by_id["luks-luks0"]["stdin"] == ["<passphrase>"]
    assert by_id["luks-luks0"]["details"]["key"] == "passphrase asked when applying"
    assert by_id["format-fs4"]["does"] == ("ext4 on /dev/debian-vg/root (UUID "
                                           "8f90a1b2-c3d4-4e5f-9a6b-7c8d9e0f1a2b)")
    assert all(d["commands"] for d in doc if d["type"] != "preflight")
    assert set(by_id["mount-fs4"]) == {"id", "type", "does", "refs", "commands", "notes",
                                       "details"}


def test_plan_text_shows_ids_refs_commands_scripts_and_notes():
    layout = normalise(rawdir.load(FIX / "layout-mbr-loop"),
                       root="/var/tmp/amdr-layout-2f1qqdxn/mnt")
    actions = plan_disks(layout, {"/dev/loop0": "/dev/sdb"}, {"/dev/sdb": 1 << 30}, "/target")
    text = show.text(actions)
    i = text.index("  ptable-disk0: DOS partition table on /dev/sdb: /dev/sdb1, /dev/sdb2, "
                   "/dev/sdb5, /dev/sdb6, /dev/sdb7  [after wipe-disk0]")
    assert text[i + 1].startswith("      $ sfdisk --quiet --no-reread") and \
        text[i + 1].endswith("/dev/sdb <<script")
    assert text[i + 2] == "          label: dos"
    assert "      note: 524.0 MiB at the end of /dev/sdb left unallocated: the last partition " \
           "/dev/loop0p7 holds swap, which keeps its size" in text
    assert show.mapping_text(layout, {"/dev/loop0": "/dev/sdb"}, {"/dev/loop0": "--map"}) == [
        "  /dev/loop0 (disk0, 500.0 MiB) -> /dev/sdb  chosen by: --map"]


# -- the session's key file ------------------------------------------------------

def test_luks_key_file_is_checked_and_only_its_path_kept(tmp_path, capsys):
    from recovery.session import check_key_file
    with pytest.raises(ConfigError) as e:
        check_key_file(str(tmp_path / "none"))
    assert "cannot read it" in str(e.value)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError):
        check_key_file(str(empty))
    key = tmp_path / "k"
    key.write_bytes(b"\x00secret\n")
    key.chmod(0o600)
    assert check_key_file(str(key)) == str(key)
    assert capsys.readouterr().err == ""
    key.chmod(0o644)
    check_key_file(str(key))
    assert "can be read by others" in capsys.readouterr().err


def test_cli_options():
    from recovery.cli import build_parser
    p = build_parser()
    a = p.parse_args(["plan", "--bundle", "b", "--target", "/t", "--json",
                      "--luks-key-file", "/k", "--state-dir", "/s"])
    assert (a.json, a.luks_key_file, a.state_dir) == (True, "/k", "/s")
    a = p.parse_args(["mount", "--bundle", "b", "--target", "/t", "--map", "/dev/sda=/dev/vdb",
                      "--luks-key-file", "/k", "--dry-run"])
    assert a.func.__name__ == "cmd_mount" and a.map == ["/dev/sda=/dev/vdb"] and a.dry_run
    a = p.parse_args(["umount", "--target", "/t", "--state-dir", "/s"])
    assert a.func.__name__ == "cmd_umount" and a.state_dir == "/s"
    for cmd in ("diskinit", "recover"):
        assert p.parse_args([cmd, "--bundle", "b", "--target", "/t",
                             "--luks-key-file", "/k"]).luks_key_file == "/k"


def test_copy_of_layout_is_not_changed_by_planning():
    layout = plan_fixture("luks-lvm")
    before = copy.deepcopy(layout)
    plan(layout, {"/dev/vda": "/dev/vdb"}, luks_keys={"*": "/k"})
    assert layout == before
