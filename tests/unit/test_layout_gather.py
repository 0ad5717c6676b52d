"""The collector's commands and its warnings for missing tools (dry-run runner, no root)."""

import json

import pytest
import yaml

from essentials.collectors import layout as layout_collector
from essentials.collectors.base import Context
from essentials.layout import collect, schema
from essentials.runner import Runner, display

DISK = "/dev/sdz"
LSBLK = {"blockdevices": [{
    "name": "sdz", "path": DISK, "type": "disk", "size": 8 << 30, "model": "Disk", "serial": "S1",
    "wwn": None, "log-sec": 512, "phy-sec": 4096, "rota": False, "tran": "nvme",
    "children": [{"name": f"sdz{n}", "path": f"{DISK}{n}", "type": "part", "size": 1 << 30}
                 for n in (1, 2, 3, 4)]}]}
SFDISK = {"partitiontable": {"label": "gpt", "id": "AAAA", "device": DISK, "unit": "sectors",
                             "sectorsize": 512, "partitions": [
                                 {"node": f"{DISK}{n}", "start": 2048 * n, "size": 2048,
                                  "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}
                                 for n in (1, 2, 3, 4)]}}
BLKID = {1: "TYPE=ext4\nUUID=e1\n", 2: "TYPE=LVM2_member\nUUID=pv1\n",
         3: "TYPE=crypto_LUKS\nUUID=c1\n", 4: "TYPE=xfs\nUUID=x1\nLABEL=data\n"}


def responses():
    r = {display(["lsblk", "--json", "-b", "-o", collect.LSBLK_COLS, DISK]): json.dumps(LSBLK),
         display(["sfdisk", "--json", DISK]): json.dumps(SFDISK),
         display(["sfdisk", "--dump", DISK]): "label: gpt\n",
         "findmnt": '{"filesystems": []}',
         "tune2fs": "Block size: 4096\n"}
    for n, text in BLKID.items():
        r[display(["blkid", "-p", "-o", "export", f"{DISK}{n}"])] = text
    return r


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A UEFI machine without lvm2, cryptsetup, mdadm, multipath, xfsprogs, efibootmgr."""
    missing = {"pvs", "cryptsetup", "mdadm", "multipath", "xfs_info", "xfs_admin",
               "efibootmgr"}
    monkeypatch.setattr(collect, "have_tool", lambda t: t not in missing)
    (tmp_path / "efi").mkdir()
    monkeypatch.setattr(collect, "SYS_EFI", tmp_path / "efi")
    (tmp_path / "cmdline").write_text("root=UUID=e1 ro\n")
    monkeypatch.setattr(collect, "PROC_CMDLINE", tmp_path / "cmdline")
    (tmp_path / "swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n")
    monkeypatch.setattr(collect, "PROC_SWAPS", tmp_path / "swaps")
    monkeypatch.setattr(collect, "BY_ID", tmp_path / "no-udev-here")
    out = tmp_path / "bundle"
    out.mkdir()
    runner = Runner(dry_run=True, responses=responses())
    ctx = Context(runner, out, {"disks": [DISK]}, "/", tmp_path / "etc")
    summary = layout_collector.collect(ctx)
    return {"ctx": ctx, "runner": runner, "out": out, "summary": summary,
            "layout": yaml.safe_load((out / "layout.yaml").read_text())}


def ran(machine):
    return [c.argv for r in machine["runner"].recorded for c in r.commands]


def test_missing_tools_do_not_fail_the_layout(machine):
    layout = machine["layout"]
    schema.validate(layout)
    assert [d["path"] for d in layout["disks"]] == [DISK]
    assert [(f["device"], f["type"]) for f in layout["filesystems"]] == [
        ("disk0p1", "ext4"), ("disk0p2", "LVM2_member"), ("disk0p3", "crypto_LUKS"),
        ("disk0p4", "xfs")]
    x = layout["filesystems"][3]
    assert (x["uuid"], x["label"], x["params"]) == ("x1", "data", {})  # blkid still knows
    assert (layout["lvm"], layout["luks"], layout["boot"]["efi"]) == ([], [], None)
    assert layout["boot"]["firmware"] == "uefi"
    assert layout["boot"]["cmdline"] == "root=UUID=e1 ro"
    assert layout["disks"][0]["by_id"] == []  # no /dev/disk/by-id without udev
    assert machine["summary"]["warnings"] == len(layout["warnings"]) == 5


def test_warnings_name_the_device_and_the_package(machine):
    w = machine["ctx"].warnings
    assert w == machine["layout"]["warnings"]
    assert ("/dev/sdz4: XFS parameters cannot be collected without 'xfs_info', which is not "
            "installed; install the Debian package xfsprogs and collect again") in w
    assert ("LVM physical volume /dev/sdz2: LVM volume groups cannot be collected without "
            "'pvs', which is not installed; install the Debian package lvm2 and collect "
            "again") in w
    assert ("LUKS container /dev/sdz3: LUKS headers cannot be collected without "
            "'cryptsetup', which is not installed; install the Debian package cryptsetup-bin "
            "and collect again") in w
    assert ("this UEFI machine: EFI boot entries cannot be collected without 'efibootmgr', "
            "which is not installed; install the Debian package efibootmgr and collect "
            "again") in w
    # not needed by anything here: no warning (it would be in every week's cron mail)
    assert not any("mdadm" in x or "multipath" in x for x in w)
    assert len(w) == 5


def test_commands_are_argv_lists_for_the_named_disk_only(machine):
    cmds = ran(machine)
    assert all(isinstance(a, list) and all(isinstance(x, str) for x in a) for a in cmds)
    tools = [a[0] for a in cmds]
    for absent in ("pvs", "vgs", "lvs", "vgcfgbackup", "cryptsetup", "mdadm", "xfs_info",
                   "efibootmgr", "multipath"):
        assert absent not in tools
    assert ["tune2fs", "-l", "/dev/sdz1"] in cmds
    assert ["lsblk", "--json", "-b", "-o", collect.LSBLK_COLS, DISK] in cmds
    assert not any("/dev/vda" in " ".join(a) for a in cmds)
    assert ["debconf-show", "grub-pc"] in cmds


def test_raw_dir_index(machine):
    raw = machine["out"] / "layout" / "raw"
    index = yaml.safe_load((raw / "index.yaml").read_text())
    assert index["sfdisk"] == {DISK: "sfdisk-dev_sdz.json"}
    assert index["tune2fs"] == {"/dev/sdz1": "tune2fs-dev_sdz1.txt"}
    assert "lvm_pvs" not in index and "luks_dump" not in index
    facts = yaml.safe_load((raw / "facts.yaml").read_text())
    assert facts["firmware"] == "uefi" and len(facts["warnings"]) == 5
    modes = {p.name: p.stat().st_mode & 0o777 for p in raw.iterdir()}
    assert set(modes.values()) == {0o600}
    assert (machine["out"] / "layout.yaml").stat().st_mode & 0o777 == 0o600


def test_lvm_luks_commands_when_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(collect, "have_tool", lambda t: True)
    monkeypatch.setattr(collect, "SYS_EFI", tmp_path / "none")
    monkeypatch.setattr(collect, "BY_ID", tmp_path / "none")
    pvs = {"report": [{"pv": [{"pv_name": "/dev/sdz2", "vg_name": "vg0"}]}]}
    r = responses()
    r[display(["pvs", "--readonly", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
               "pv_name,vg_name", "/dev/sdz2"])] = json.dumps(pvs)
    runner = Runner(dry_run=True, responses=r)
    g = collect.Gatherer(runner, tmp_path / "raw", tmp_path / "etc", luks_header=True)
    g.run([DISK])
    cmds = [c.argv for rec in runner.recorded for c in rec.commands]
    assert ["cryptsetup", "luksDump", "/dev/sdz3"] in cmds
    assert ["cryptsetup", "luksHeaderBackup", "/dev/sdz3", "--header-backup-file",
            str(tmp_path / "raw" / "luks-header-dev_sdz3.img")] in cmds
    assert ["vgcfgbackup", "--readonly", "-f", str(tmp_path / "raw" / "lvm-vgcfgbackup-vg0.vg"),
            "vg0"] in cmds
    # read-only: no backup or archive written into the host's /etc/lvm
    assert all("--readonly" in c for c in cmds if c[0] in ("pvs", "vgs", "lvs"))
    assert any(c[0] == "pvs" and c[-2:] == ["--select", "vg_name=vg0"] for c in cmds)
    assert any(c[0] == "lvs" and c[-1] == "vg0" for c in cmds)
    assert ["xfs_admin", "-l", "-u", "/dev/sdz4"] in cmds
    assert not any(c[0] == "efibootmgr" for c in cmds)  # BIOS: not asked
    lvm_env = [c.env for rec in runner.recorded for c in rec.commands if c.argv[0] == "pvs"]
    assert all(e["LVM_SUPPRESS_FD_WARNINGS"] == "1" for e in lvm_env)


def test_a_partition_named_as_disk_is_left_out_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(collect, "have_tool", lambda t: True)
    monkeypatch.setattr(collect, "SYS_EFI", tmp_path / "none")
    part = {"blockdevices": [{"name": "sdz1", "path": "/dev/sdz1", "type": "part",
                              "size": 1 << 30}]}
    r = {display(["lsblk", "--json", "-b", "-o", collect.LSBLK_COLS, "/dev/sdz1"]):
         json.dumps(part), "findmnt": '{"filesystems": []}'}
    g = collect.Gatherer(Runner(dry_run=True, responses=r), tmp_path / "raw", tmp_path)
    warnings = g.run(["/dev/sdz1"])
    assert "/dev/sdz1 is a part, not a disk: left out (name the disks under it)" in warnings
    assert collect.normalise(collect.rawdir.load(tmp_path / "raw"))["disks"] == []
