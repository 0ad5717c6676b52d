"""finalize's planner, reference checks and NIC matching, without running anything."""

from pathlib import Path

from essentials.runner import Runner
from recovery.finalize import nics, refs, run
from recovery.finalize.facts import Facts, expected_ids
from recovery.finalize.plan import BIOS_BOOT, boot_refusals, plan_finalize, renames

ESP_T = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
LINUX_T = "0fc63daf-8483-4772-8e79-3d69c72d4d8e"


def part(pid, n, ptype, uuid, path):
    return {"id": pid, "number": n, "start": 2048 * n, "size": 2048, "type": ptype,
            "uuid": uuid, "path": path}


def layout_a(bios_boot=True):
    """BIOS, GPT (BIOS boot, ext4 /, xfs /srv, swap) on a virtio disk."""
    parts = [part("disk0p2", 2, LINUX_T, "p2-uuid", "/dev/vda2"),
             part("disk0p3", 3, LINUX_T, "p3-uuid", "/dev/vda3")]
    if bios_boot:
        parts.insert(0, part("disk0p1", 1, BIOS_BOOT, "p1-uuid", "/dev/vda1"))
    return {"version": 1, "disks": [{"id": "disk0", "path": "/dev/vda", "size": 3 << 30,
                                     "sector_size": 512, "by_id": ["virtio-old0"],
                                     "ptable": {"label": "gpt", "id": "t",
                                                "partitions": parts}}],
            "filesystems": [{"id": "fs0", "device": "disk0p2", "type": "ext4", "uuid": "root-u",
                             "mountpoint": "/"},
                            {"id": "fs1", "device": "disk0p3", "type": "xfs", "uuid": "srv-u",
                             "mountpoint": "/srv"}],
            "boot": {"firmware": "bios", "grub": {"package": "grub-pc", "install_devices": [
                {"device": "/dev/vda", "path": "/dev/vda", "disk": "disk0"}]}}}


def layout_b():
    """UEFI, GPT: ESP + an LVM PV with root and home."""
    return {"version": 1,
            "disks": [{"id": "disk0", "path": "/dev/vda", "size": 3 << 30, "sector_size": 512,
                       "ptable": {"label": "gpt", "id": "t", "partitions": [
                           part("disk0p1", 1, ESP_T, "ESP-PARTUUID", "/dev/vda1"),
                           part("disk0p2", 2, LINUX_T, "pv-partuuid", "/dev/vda2")]}}],
            "lvm": [{"id": "vg0", "name": "vg0", "physical_volumes": [{"device": "disk0p2"}],
                     "logical_volumes": [{"id": "vg0lv0", "name": "root", "path": "/dev/vg0/root",
                                          "dm_path": "/dev/mapper/vg0-root"}]}],
            "filesystems": [{"id": "fs0", "device": "disk0p1", "type": "vfat", "uuid": "AB12-CD34",
                             "mountpoint": "/boot/efi"},
                            {"id": "fs1", "device": "vg0lv0", "type": "ext4", "uuid": "root-u",
                             "mountpoint": "/"}],
            "boot": {"firmware": "uefi", "efi": {"current": "0004", "order": ["0004"], "entries": [
                {"number": "0004", "label": "debian", "loader": "\\EFI\\debian\\grubx64.efi",
                 "partuuid": "esp-partuuid"}]}}}


def layout_c():
    """BIOS, MD RAID1 over a partition of each of two disks, ext4 / on it."""
    disks = []
    for i in (0, 1):
        disks.append({"id": f"disk{i}", "path": f"/dev/vd{'ab'[i]}", "size": 2 << 30,
                      "sector_size": 512, "ptable": {"label": "dos", "id": f"id{i}", "partitions": [
                          part(f"disk{i}p1", 1, "fd", None, f"/dev/vd{'ab'[i]}1")]}})
    return {"version": 1, "disks": disks,
            "md": [{"id": "array0", "path": "/dev/md0", "uuid": "aa:bb:cc:dd",
                    "members": [{"device": "disk0p1"}, {"device": "disk1p1"}]}],
            "filesystems": [{"id": "fs0", "device": "array0", "type": "ext4", "uuid": "root-u",
                             "mountpoint": "/"}],
            "boot": {"firmware": "bios", "grub": {"install_devices": []}}}


DEBIAN_TOOLS = {"update-initramfs", "grub-install", "update-grub", "debconf-set-selections"}


def facts_for(layout, new_paths, files=None, **kw):
    f = Facts("/t", dict(files or {}), expected_ids(layout, new_paths), tools=set(DEBIAN_TOOLS))
    f.files.setdefault("/etc/debian_version", "12.8\n")
    for k, v in kw.items():
        setattr(f, k, v)
    return f


A_PATHS = {"disk0": "/dev/sda", "disk0p1": "/dev/sda1", "disk0p2": "/dev/sda2",
           "disk0p3": "/dev/sda3"}


# -- references --------------------------------------------------------------------

def test_classify_kinds():
    assert refs.classify("UUID=abc") == ("UUID", "abc")
    assert refs.classify('LABEL="my disk"') == ("LABEL", "my disk")
    assert refs.classify("/dev/disk/by-label/my\\x20disk") == ("LABEL", "my disk")
    assert refs.classify("/dev/disk/by-partuuid/1234-01") == ("PARTUUID", "1234-01")
    assert refs.classify("/dev/sda1") == ("path", "/dev/sda1")
    for none in ("tmpfs", "proc", "/swapfile", "server:/export", "/dev/shm"):
        assert refs.classify(none) is None


def test_fstab_refs_skip_comments_binds_and_mark_nofail():
    text = ("# /dev/sdz1 old\nUUID=r / ext4 defaults 0 1\n/dev/sdb1 /usb ext4 noauto 0 0\n"
            "/srv /export none bind 0 0\ntmpfs /tmp tmpfs defaults 0 0\n")
    found = refs.in_fstab(text)
    assert [(r.line, r.token, r.optional) for r in found] == [(2, "UUID=r", False),
                                                              (3, "/dev/sdb1", True)]


def test_grub_cmdline_and_resume_refs():
    g = refs.in_default_grub('GRUB_CMDLINE_LINUX="root=/dev/vda2 resume=UUID=sw quiet"\n', "/g")
    assert [(r.token, r.where) for r in g] == [("/dev/vda2", "kernel root="),
                                              ("UUID=sw", "kernel resume=")]
    assert [r.token for r in refs.in_resume("RESUME=UUID=sw\n", "/r")] == ["UUID=sw"]
    assert refs.in_resume("RESUME=none\n", "/r") == []


def test_rewrite_only_the_whole_token_on_its_line():
    text = "/dev/vda1 /a ext4 d 0 2\n/dev/vda10 /b ext4 d 0 2\n"
    found = [refs.check(r, refs.Identities(), refs.Renames({"/dev/vda1": "/dev/sda1",
                                                           "/dev/vda10": "/dev/sda10"}))
             for r in refs.in_fstab(text)]
    assert [f.status for f in found] == ["rewrite", "rewrite"]
    assert refs.rewrite(text, found) == "/dev/sda1 /a ext4 d 0 2\n/dev/sda10 /b ext4 d 0 2\n"


def test_identity_references_resolve_without_rewrite():
    ids = expected_ids(layout_a(), A_PATHS)
    r = refs.in_fstab("UUID=root-u / ext4 defaults 0 1\nPARTUUID=P3-UUID /srv xfs d 0 2\n")
    found = [refs.check(x, ids, refs.Renames()) for x in r]
    assert [(f.status, f.device) for f in found] == [("ok", "/dev/sda2"), ("ok", "/dev/sda3")]


# -- NICs ----------------------------------------------------------------------------

ORIG = [{"name": "ens3", "mac": "52:54:00:12:34:56", "type": "ether", "driver": "virtio_net",
         "addresses": [{"address": "10.0.2.15", "prefix": 24}]},
        {"name": "br0", "mac": "52:54:00:aa:aa:aa", "type": "ether"}]


def test_nic_gone_is_matched_by_driver_before_order():
    here = [{"name": "eno1", "mac": "00:11:22:33:44:55", "driver": "e1000e", "physical": True},
            {"name": "enp0s5", "mac": "52:54:00:00:00:99", "driver": "virtio_net",
             "physical": True}]
    m, warn = nics.match(ORIG, here)
    assert warn == []
    assert [(x.name, x.new_name, x.new_mac) for x in m] == [("ens3", "enp0s5",
                                                            "52:54:00:00:00:99")]
    link = m[0].link_file()
    assert "MACAddress=52:54:00:00:00:99" in link and "Name=ens3" in link


def test_nic_still_here_needs_nothing_and_a_pin_wins():
    same = [{"name": "ens3", "mac": "52:54:00:12:34:56", "physical": True}]
    assert nics.match(ORIG, same) == ([], [])
    here = [{"name": "a", "mac": "00:00:00:00:00:01", "driver": "virtio_net", "physical": True},
            {"name": "b", "mac": "00:00:00:00:00:02", "driver": "e1000", "physical": True}]
    m, _ = nics.match(ORIG, here, {"ens3": "00:00:00:00:00:02"})
    assert m[0].new_name == "b" and m[0].reason == "chosen by --nic"
    m, warn = nics.match(ORIG, here, {"ens3": "nosuch"})
    assert m == [] and "no free NIC" in warn[0]


def test_the_same_nic_under_another_name_keeps_its_name():
    """The same card (same MAC) on another slot or machine type: the kernel
    names it enp0s2, the configuration says ens3 (seen in the live drill)."""
    moved = [{"name": "enp0s2", "mac": "52:54:00:12:34:56", "driver": "virtio_net",
              "physical": True}]
    m, warn = nics.match(ORIG, moved)
    assert warn == []
    assert [(x.name, x.new_name, x.new_mac, x.old_mac) for x in m] == [
        ("ens3", "enp0s2", "52:54:00:12:34:56", "52:54:00:12:34:56")]
    link = m[0].link_file()
    assert "MACAddress=52:54:00:12:34:56" in link and "Name=ens3" in link
    assert "is here under another name (enp0s2)" in link
    assert nics.rewrite_macs({"/etc/systemd/network/a.network":
                              "[Match]\nMACAddress=52:54:00:12:34:56\n"}, m) == {}


def test_mac_rewritten_in_networkd_netplan_and_nm_but_not_elsewhere():
    m = nics.NicMatch("ens3", "52:54:00:12:34:56", "enp0s5", "52:54:00:00:00:99", "x")
    files = {"/etc/systemd/network/10-a.network": "[Match]\nMACAddress=52:54:00:12:34:56\n",
             "/etc/netplan/01.yaml": "  macaddress: 52:54:00:12:34:56\n",
             "/etc/NetworkManager/system-connections/w": "mac-address=52:54:00:12:34:56\n",
             "/etc/hosts": "52:54:00:12:34:56\n"}
    out = nics.rewrite_macs(files, [m])
    assert sorted(out) == sorted(p for p in files if p != "/etc/hosts")
    assert all("52:54:00:00:00:99" in t for t in out.values())


# -- plans -----------------------------------------------------------------------------

def types(fp):
    return [a.type for a in fp.actions]


def test_bios_plan_installs_grub_on_the_mapped_disk_and_rewrites_paths():
    lay = layout_a()
    f = facts_for(lay, A_PATHS, {"/etc/fstab": "UUID=root-u / ext4 d 0 1\n/dev/vda3 /srv xfs d 0 2\n"})
    f.ids.alias("/dev/disk/by-id/ata-NEW", "/dev/sda")
    fp = plan_finalize(lay, f, A_PATHS)
    assert fp.problems == []
    assert types(fp) == ["scrub", "chroot", "write", "initramfs", "grub-bios", "grub-config",
                         "unbind"]
    w = fp.actions[2]
    assert w.path == "/etc/fstab" and "/dev/sda3 /srv" in w.content and "-/dev/vda3" in w.diff
    g = next(a for a in fp.actions if a.type == "grub-bios")
    assert g.render()[0] == ["chroot", "/t", "grub-install", "--target=i386-pc", "/dev/sda"]
    assert g.debconf == ["/dev/disk/by-id/ata-NEW"]
    assert fp.actions[1].render() == [
        ["mount", "--bind", "/dev", "/t/dev"], ["mount", "--bind", "/dev/pts", "/t/dev/pts"],
        ["mount", "-t", "proc", "proc", "/t/proc"], ["mount", "-t", "sysfs", "sysfs", "/t/sys"],
        ["mount", "--bind", "/run", "/t/run"]]


def test_old_by_id_names_become_the_new_disks():
    lay = layout_a()
    ids = expected_ids(lay, A_PATHS)
    ids.alias("/dev/disk/by-id/ata-NEW", "/dev/sda")
    r = renames(lay, A_PATHS, ids)
    assert r.get("/dev/disk/by-id/virtio-old0") == "/dev/disk/by-id/ata-NEW"
    assert r.get("/dev/disk/by-id/virtio-old0-part2") == "/dev/disk/by-id/ata-NEW-part2"


def test_missing_device_refuses_with_file_and_line():
    lay = layout_a()
    f = facts_for(lay, A_PATHS, {"/etc/fstab": "UUID=root-u / ext4 d 0 1\n"
                                               "UUID=gone /data ext4 defaults 0 2\n"
                                               "UUID=usb /usb ext4 nofail 0 2\n"})
    fp = plan_finalize(lay, f, A_PATHS)
    assert len(fp.problems) == 1
    assert "/etc/fstab line 2" in fp.problems[0] and "UUID=gone" in fp.problems[0]
    assert any("line 3" in n and "nofail" in n for n in fp.notes)


def test_uefi_plan_dedupes_entries_and_keeps_the_label():
    lay = layout_b()
    paths = {"disk0": "/dev/nvme0n1", "disk0p1": "/dev/nvme0n1p1", "disk0p2": "/dev/nvme0n1p2"}
    entries = {"order": ["0001", "0000"], "entries": [
        {"number": "0000", "label": "UEFI QEMU HARDDISK", "loader": None, "partuuid": None},
        {"number": "0001", "label": "debian", "loader": "\\EFI\\debian\\grubx64.efi",
         "partuuid": "old"},
        {"number": "0002", "label": "debian", "loader": "\\EFI\\debian\\grubx64.efi",
         "partuuid": "esp-partuuid"}]}
    f = facts_for(lay, paths, efi=True, efivars=True, efi_entries=entries)
    fp = plan_finalize(lay, f, paths)
    assert types(fp) == ["scrub", "chroot", "initramfs", "grub-efi", "efi-entry", "grub-config",
                         "unbind"]
    assert fp.actions[1].efivars
    g = fp.actions[3]
    assert g.render() == [
        ["chroot", "/t", "grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi",
         "--no-nvram", "--bootloader-id=debian"],
        ["chroot", "/t", "grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi",
         "--no-nvram", "--removable"]]
    e = fp.actions[4]
    assert e.delete == ["0001", "0002"]
    assert e.render()[-1] == ["efibootmgr", "-q", "-c", "-d", "/dev/nvme0n1", "-p", "1", "-L",
                              "debian", "-l", "\\EFI\\debian\\grubx64.efi"]


def test_uefi_entry_already_right_is_left_alone():
    lay = layout_b()
    paths = {"disk0": "/dev/sda", "disk0p1": "/dev/sda1", "disk0p2": "/dev/sda2"}
    entries = {"order": ["0003"], "entries": [
        {"number": "0003", "label": "debian", "loader": "\\EFI\\debian\\grubx64.efi",
         "partuuid": "esp-partuuid"}]}
    fp = plan_finalize(lay, facts_for(lay, paths, efi=True, efivars=True, efi_entries=entries),
                       paths)
    assert "efi-entry" not in types(fp)
    assert any("is there and first" in n for n in fp.notes)


def test_uefi_without_efi_variables_installs_the_fallback_and_says_so():
    lay = layout_b()
    paths = {"disk0": "/dev/sda", "disk0p1": "/dev/sda1", "disk0p2": "/dev/sda2"}
    fp = plan_finalize(lay, facts_for(lay, paths, efi=False), paths)
    assert "grub-efi" in types(fp) and "efi-entry" not in types(fp)
    assert any("no firmware entry could be made" in n and "BOOTX64.EFI" in n for n in fp.notes)
    assert not fp.actions[1].efivars


def test_raid1_boot_gets_grub_on_both_disks_and_a_new_mdadm_conf():
    lay = layout_c()
    paths = {"disk0": "/dev/sda", "disk0p1": "/dev/sda1", "disk1": "/dev/sdb",
             "disk1p1": "/dev/sdb1"}
    conf = "HOMEHOST <system>\nARRAY /dev/md/old metadata=1.2 UUID=aa:bb:cc:dd\n   name=x:0\n"
    f = facts_for(lay, paths, {"/etc/mdadm/mdadm.conf": conf},
                  md_scan="ARRAY /dev/md127 metadata=1.2 name=x:0 UUID=aa:bb:cc:dd\n")
    fp = plan_finalize(lay, f, paths)
    g = next(a for a in fp.actions if a.type == "grub-bios")
    assert g.devices == ["/dev/sda", "/dev/sdb"]
    w = next(a for a in fp.actions if a.id == "mdadm-conf")
    assert w.content.splitlines()[0] == "HOMEHOST <system>"
    assert "ARRAY /dev/md0 metadata=1.2 name=x:0 UUID=aa:bb:cc:dd" in w.content
    assert "/dev/md/old" not in w.content and "name=x:0\n" not in w.content.split("#")[0]
    assert types(fp).index("write") < types(fp).index("initramfs")


def test_plan_again_after_the_rewrite_plans_no_rewrite():
    lay = layout_a()
    f = facts_for(lay, A_PATHS, {"/etc/fstab": "/dev/vda3 /srv xfs d 0 2\n"})
    first = plan_finalize(lay, f, A_PATHS)
    f.files["/etc/fstab"] = first.actions[2].content
    assert "write" not in types(plan_finalize(lay, f, A_PATHS))


def test_bios_gpt_without_bios_boot_partition_is_refused():
    from recovery.disks.ptable import Partition, PartitionTable
    lay = layout_a(bios_boot=False)
    table = PartitionTable("ptable-disk0", device="/dev/sda", disk="disk0", label="gpt",
                           partitions=[Partition(2, "/dev/sda2", 4096, 2048, LINUX_T)])
    out = boot_refusals(lay, {"/dev/vda": "/dev/sda"}, [table])
    assert len(out) == 1 and "/dev/sda" in out[0] and "BIOS boot partition" in out[0]
    table.partitions.append(Partition(1, "/dev/sda1", 2048, 2048, BIOS_BOOT.upper()))
    assert boot_refusals(lay, {"/dev/vda": "/dev/sda"}, [table]) == []
    lay["boot"]["firmware"] = "uefi"
    table.partitions.pop()
    assert boot_refusals(lay, {"/dev/vda": "/dev/sda"}, [table]) == []


# -- apply: the journal and the report -------------------------------------------------------

def test_a_second_apply_changes_nothing_and_the_report_says_what_changed(tmp_path):
    from recovery.finalize.actions import WriteFile
    target = tmp_path / "t"
    (target / "etc").mkdir(parents=True)
    (target / "etc/fstab").write_text("/dev/vda3 /srv xfs d 0 2\n")
    from recovery.finalize.plan import FinalizePlan
    fp = FinalizePlan(actions=[WriteFile("refs-etc-fstab", target=str(target), path="/etc/fstab",
                                         content="/dev/sda3 /srv xfs d 0 2\n", why="line 1",
                                         diff="-x\n+y\n")])
    state = tmp_path / "state"
    rep = run.apply(fp, Runner(), str(state), host="h")
    assert rep["changes"] == ["/etc/fstab: line 1 (the original kept as /etc/fstab.amdr-orig)"]
    assert (target / "etc/fstab").read_text() == "/dev/sda3 /srv xfs d 0 2\n"
    assert (target / "etc/fstab.amdr-orig").read_text() == "/dev/vda3 /srv xfs d 0 2\n"
    again = run.apply(fp, Runner(), str(state), host="h")
    assert again["changes"] == [] and again["steps"][0]["status"] == "skipped"
    text = Path(again["saved"][0]).read_text()
    assert "Changed: nothing" in text and "skipped" in text
    first = run.render(rep)
    assert "exit 0" in first and "tee" in first and "Diff of /etc/fstab" in first
