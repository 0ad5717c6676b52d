"""amdr-recover mount, umount and plan --json on real loop disks.

A source disk (GPT: ext4 root, btrfs with subvolumes mounted on /data and
/logs, swap; random identities) is collected into a bundle and blanked;
amdr-recover diskinit recreates it on a new loop disk.  Then: umount; mount
again, without --map (the disk is found by the partition table id diskinit
gave back), and what was written before is there and nothing was made
again (the ext4 creation time); mount once more (nothing to do); umount
twice (the second has nothing to do).  plan --json is parsed and checked,
and must leave the disk exactly as it was.  LVM, MD and LUKS activation is
the qemu tier's (this kernel has no device-mapper or md).

Only loop devices made here are touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from essentials.bundle import sha256_file, write_manifest
from recovery.disks import activate
from tests.lab.lab import sh

from .helpers import amdr
from .test_diskinit_roundtrip import Loops, collect

pytestmark = pytest.mark.integration

MIB = 1 << 20
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
SWAPT = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
DISK_MIB = 1 + 120 + 160 + 16 + 1
# random per run: another run's disk (or the kernel's btrfs registry) must not match
PTUUID = str(uuid.uuid4()).upper()
ROOT_UUID = str(uuid.uuid4())
BTRFS_UUID = str(uuid.uuid4())
SCRIPT = f"""label: gpt
label-id: {PTUUID}
size=120MiB, type={LINUX}, name="root"
size=160MiB, type={LINUX}, name="data"
size=16MiB, type={SWAPT}, name="swap"
"""


def created(part: str) -> str:
    return next(ln for ln in sh(["tune2fs", "-l", part]).splitlines()
                if ln.startswith("Filesystem created:"))


def mount_table(under: Path) -> list[tuple[str, str, str]]:
    """(source, mountpoint, options) of the mounts at or below a directory."""
    out = []
    with open("/proc/self/mounts") as f:
        for ln in f:
            src, mp, _, opts = ln.split()[:4]
            if mp == str(under) or mp.startswith(f"{under}/"):
                out.append((src, mp, opts))
    return out


def blkid_all(disk: str) -> dict[str, str]:
    return {p: sh(["blkid", "-p", "-o", "export", p], check=False)
            for p in [disk] + [f"{disk}p{n}" for n in (1, 2, 3)]}




@pytest.fixture(scope="module")
def system():
    """The bundle of a lost disk, and that disk recreated by amdr-recover diskinit
    and mounted under ld.target."""
    ld = Loops()
    try:
        src = ld.attach("mount-src", DISK_MIB)
        root, data, swap = ld.partition(src, SCRIPT, [1, 2, 3])
        sh(["mkfs.ext4", "-q", "-F", "-U", ROOT_UUID, "-L", "mroot", root])
        sh(["mkfs.btrfs", "-q", "-f", "-U", BTRFS_UUID, "-L", "mdata", data])
        sh(["mkswap", "-L", "mswap", swap])
        top = ld.base / "btrfs-top"
        top.mkdir()
        sh(["mount", data, str(top)])
        for sv in ("@data", "@logs"):
            sh(["btrfs", "subvolume", "create", str(top / sv)])
        sh(["umount", str(top)])
        mnt = ld.base / "src"
        mnt.mkdir()
        sh(["mount", root, str(mnt)])
        (mnt / "etc").mkdir()
        (mnt / "etc" / "hostname").write_text("mountable\n")
        for sub in ("data", "logs"):
            (mnt / sub).mkdir()
            sh(["mount", "-o", f"subvol=@{sub}", data, str(mnt / sub)])
        ld.bundle = collect(ld, src, mnt, "bundle")
        ld.umount_all()
        ld.blank(src)  # lost: only the bundle remains
        ld.src = src
        ld.new = ld.attach("mount-new", DISK_MIB)
        ld.target = ld.base / "target"
        p = amdr("amdr-recover", "diskinit", "--bundle", ld.bundle, "--target", ld.target,
                 "--map", f"{src}={ld.new}", "--yes")
        assert p.returncode == 0, p.stdout + p.stderr
        yield ld
    finally:
        ld.cleanup()


def test_umount_then_mount_again_formats_nothing(system):
    ld, target = system, system.target
    root, data = f"{ld.new}p1", f"{ld.new}p2"
    assert [m[1] for m in mount_table(target)] == [str(target), f"{target}/data",
                                                    f"{target}/logs"]
    (target / "written-before").write_text("root\n")
    (target / "data" / "kept").write_text("in @data\n")
    (target / "logs" / "kept").write_text("in @logs\n")
    stamp = created(root)

    p = amdr("amdr-recover", "umount", "--target", target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert mount_table(target) == []
    assert f"umount-1: unmount {target}/logs" in p.stdout
    assert not activate.state_path(f"{target}.amdr").exists()  # nothing stacked here

    # no --map: the disk is found by what diskinit put on it
    p = amdr("amdr-recover", "mount", "--bundle", ld.bundle, "--target", target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{ld.src} (disk0, {DISK_MIB}.0 MiB) -> {ld.new}  chosen by: partition table id " \
           f"{PTUUID}" in p.stdout
    assert "mount-fs1-1: mount" in p.stdout and "$ mount -t btrfs -o subvol=@logs" in p.stdout
    table = mount_table(target)
    assert [(src, mp) for src, mp, _ in table] == [
        (root, str(target)), (data, f"{target}/data"), (data, f"{target}/logs")]
    assert "subvol=/@data" in table[1][2] and "subvol=/@logs" in table[2][2]
    assert (target / "written-before").read_text() == "root\n"
    assert (target / "data" / "kept").read_text() == "in @data\n"
    assert (target / "logs" / "kept").read_text() == "in @logs\n"
    assert created(root) == stamp  # not formatted again

    # again: every filesystem is mounted already, nothing changes
    p = amdr("amdr-recover", "mount", "--bundle", ld.bundle, "--target", target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("(already mounted: ") == 3
    assert mount_table(target) == table

    p = amdr("amdr-recover", "umount", "--target", target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert mount_table(target) == []
    p = amdr("amdr-recover", "umount", "--target", target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == f"nothing is mounted under {target}"
    assert created(root) == stamp


def test_mount_refuses_a_disk_that_does_not_hold_the_filesystems(system, tmp_path):
    ld = system
    other = ld.attach("mount-other", DISK_MIB)
    try:
        ld.partition(other, SCRIPT.replace(PTUUID, str(uuid.uuid4())), [1, 2, 3])
        sh(["mkfs.ext4", "-q", "-F", "-L", "someone-else", f"{other}p1"])
        target = tmp_path / "t"
        p = amdr("amdr-recover", "mount", "--bundle", ld.bundle, "--target", target,
                 "--map", f"{ld.src}={other}")
        assert p.returncode == 4, p.stdout + p.stderr
        assert "refusing to mount, nothing was changed" in p.stderr
        assert (f"ext4 filesystem fs0 on / (UUID {ROOT_UUID}, {ld.src}p1 on the original "
                f"system) is not on {other}p1: it carries ext4 UUID") in p.stderr
        assert f"btrfs filesystem fs1 on /data (UUID {BTRFS_UUID}" in p.stderr
        assert mount_table(target) == [] and not target.exists()
        assert not (tmp_path / "t.amdr").exists()
    finally:
        ld.blank(other)


def test_plan_json_touches_nothing(system, tmp_path):
    ld = system
    assert amdr("amdr-recover", "umount", "--target", ld.target).returncode == 0
    before = (blkid_all(ld.new), sha256_file(ld.base / "mount-new.img"))
    target = tmp_path / "t"
    p = amdr("amdr-recover", "plan", "--json", "--bundle", ld.bundle, "--target", target,
             "--map", f"{ld.src}={ld.new}")
    # a layout-only bundle: the disk plan, and why no restore can be planned
    assert p.returncode == 1, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert (blkid_all(ld.new), sha256_file(ld.base / "mount-new.img")) == before
    assert not target.exists() and not (tmp_path / "t.amdr").exists()

    assert doc["target"] == str(target) and doc["state_dir"] == f"{target}.amdr"
    assert doc["mapping"] == [{"disk": "disk0", "original": ld.src, "size": DISK_MIB * MIB,
                               "present": ld.new, "reason": "--map"}]
    assert doc["restores"] == []
    assert [e["disk"] for e in doc["errors"]] == [None]
    assert "no Amanda catalog" in doc["errors"][0]["message"]
    actions = doc["disks"]
    ids = [a["id"] for a in actions]
    assert ids == ["preflight", "wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1",
                   "format-fs2", "mount-fs0", "mount-fs1", "mount-fs1-1"]
    for i, a in enumerate(actions):
        assert set(a) >= {"id", "type", "does", "refs", "commands", "notes"}
        assert all(r in ids[:i] for r in a["refs"]), a  # earlier actions only
        if a["type"] != "preflight":
            assert a["commands"] and all(c and all(isinstance(x, str) for x in c)
                                         for c in a["commands"])
    by_id = {a["id"]: a for a in actions}
    assert by_id["ptable-disk0"]["refs"] == ["wipe-disk0"]
    assert by_id["format-fs1"]["refs"] == ["ptable-disk0"]
    assert by_id["mount-fs1-1"]["refs"] == ["format-fs1", "mount-fs0"]
    assert by_id["mount-fs1-1"]["commands"][-1] == [
        "mount", "-t", "btrfs", "-o", "subvol=@logs", f"{ld.new}p2", f"{target}/logs"]
    assert f"label-id: {PTUUID}" in by_id["ptable-disk0"]["stdin"][0]
    assert by_id["format-fs0"]["commands"][0][:6] == ["mkfs.ext4", "-F", "-q", "-U",
                                                      ROOT_UUID, "-L"]

    # the same plan for people: ids, what each does, commands, the mapping's reason
    p = amdr("amdr-recover", "plan", "--bundle", ld.bundle, "--target", target,
             "--map", f"{ld.src}={ld.new}")
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"  {ld.src} (disk0, {DISK_MIB}.0 MiB) -> {ld.new}  chosen by: --map" in p.stdout
    assert (f"  format-fs0: ext4 on {ld.new}p1 (UUID {ROOT_UUID}, label mroot)  "
            f"[after ptable-disk0]") in p.stdout
    assert f"      $ mount -t ext4 {ld.new}p1 {target}" in p.stdout
    assert "NOT RESTORABLE" in p.stdout
    assert (blkid_all(ld.new), sha256_file(ld.base / "mount-new.img")) == before


def test_plan_that_cannot_be_made_is_reported_per_device_first(system, tmp_path):
    ld = system
    small = ld.attach("mount-small", 64)
    try:
        p = amdr("amdr-recover", "plan", "--json", "--bundle", ld.bundle, "--target",
                 tmp_path / "t", "--map", f"{ld.src}={small}")
        assert p.returncode == 3, p.stdout + p.stderr
        assert p.stdout == ""
        assert "the layout cannot be recreated, nothing was changed" in p.stderr
        assert f"{small} is too small for {ld.src}" in p.stderr
        p = amdr("amdr-recover", "plan", "--bundle", ld.bundle, "--target", tmp_path / "t",
                 "--map", f"/dev/nonesuch={small}")
        assert p.returncode == 2 and "the layout has no disk /dev/nonesuch" in p.stderr
    finally:
        ld.blank(small)


def test_plan_json_with_a_luks_key_file_shows_its_path_only(tmp_path):
    """The written LUKS+LVM layout as a bundle, planned onto a sparse loop disk."""
    fix = Path(__file__).resolve().parent.parent / "fixtures" / "plans" / "luks-lvm.yaml"
    layout = yaml.safe_load(fix.read_text())
    bundle = tmp_path / "bundle"
    (bundle / "layout" / "raw").mkdir(parents=True)
    (bundle / "layout.yaml").write_text(yaml.safe_dump(layout))
    (bundle / layout["lvm"][0]["vgcfgbackup"]).write_text("# the vgcfgbackup\n")
    write_manifest(bundle, {"layout": {"status": "ok"}})
    key = tmp_path / "luks.key"
    secret = os.urandom(16).hex()
    key.write_text(secret)
    key.chmod(0o600)
    ld = Loops()
    try:
        disk = ld.attach("luks-plan", layout["disks"][0]["size"] // MIB)
        p = amdr("amdr-recover", "plan", "--json", "--bundle", bundle, "--target",
                 tmp_path / "t", "--map", f"/dev/vda={disk}", "--luks-key-file", key)
        assert p.returncode == 1, p.stdout + p.stderr  # (no catalog in this bundle)
        assert secret not in p.stdout + p.stderr
        by_id = {a["id"]: a for a in json.loads(p.stdout)["disks"]}
        assert by_id["luks-luks0"]["commands"][0][-3:] == ["--key-file", str(key), f"{disk}p3"]
        assert by_id["open-luks0"]["commands"] == [
            ["cryptsetup", "open", "--type", "luks", "--key-file", str(key), f"{disk}p3",
             "vda3_crypt"]]
        assert "stdin" not in by_id["luks-luks0"]
        assert by_id["open-luks0"]["refs"] == ["luks-luks0"]
        assert by_id["pv-luks0"]["refs"] == ["open-luks0"]
        assert by_id["vg-vg0"]["refs"] == ["pv-luks0"]
        # without a key file the passphrase would be asked when applying, never now
        p = amdr("amdr-recover", "plan", "--json", "--bundle", bundle, "--target",
                 tmp_path / "t", "--map", f"/dev/vda={disk}")
        assert p.returncode == 1, p.stdout + p.stderr
        by_id = {a["id"]: a for a in json.loads(p.stdout)["disks"]}
        assert by_id["luks-luks0"]["stdin"] == ["<passphrase>"]
        p = amdr("amdr-recover", "plan", "--bundle", bundle, "--target", tmp_path / "t",
                 "--map", f"/dev/vda={disk}", "--luks-key-file", tmp_path / "missing.key")
        assert p.returncode == 2 and "--luks-key-file" in p.stderr
        assert sh(["blkid", "-p", disk], check=False) == ""
    finally:
        ld.cleanup()


def test_umount_deactivates_only_what_is_still_active(tmp_path):
    """A state file naming a VG, a LUKS mapping and an array that are not
    active here (none can be on this kernel): nothing to run, exit 0, the
    stale record is dropped."""
    target = tmp_path / "t"
    target.mkdir()
    state = activate.state_path(f"{target}.amdr")
    activate.record(state, [{"type": "md", "path": "/dev/md/amdr-none"},
                            {"type": "luks", "name": "amdr-none-crypt"},
                            {"type": "vg", "name": "amdr-none-vg"}])
    p = amdr("amdr-recover", "umount", "--target", target, "--dry-run")
    assert p.returncode == 0 and "nothing is mounted under" in p.stdout
    assert state.exists()  # a dry run changes nothing
    p = amdr("amdr-recover", "umount", "--target", target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == (f"nothing is mounted under {target}, and nothing it recorded "
                                f"is still active")
    assert not state.exists()
    # something mounted, and the dry run shows what would run
    sh(["mount", "-t", "tmpfs", "tmpfs", str(target)])
    try:
        (target / "sub").mkdir()
        sh(["mount", "-t", "tmpfs", "tmpfs", str(target / "sub")])
        p = amdr("amdr-recover", "umount", "--target", target, "--dry-run")
        assert p.returncode == 0
        assert p.stdout.splitlines() == [
            f"  umount-1: unmount {target}/sub", f"      $ umount {target}/sub",
            f"  umount-2: unmount {target}  [after umount-1]", f"      $ umount {target}"]
        assert len(mount_table(target)) == 2
        p = amdr("amdr-recover", "umount", "--target", target)
        assert p.returncode == 0 and mount_table(target) == []
    finally:
        for m in reversed(mount_table(target)):
            subprocess.run(["umount", m[1]], capture_output=True)


def test_plan_of_a_bundle_with_a_catalog_shows_both_plans(tmp_path):
    """The Amanda lab's bundle: the disk plan and a restore chain per DLE."""
    from tests.lab import scenario
    from tests.lab.lab import AmandaLab

    from .helpers import collect as collect_lab

    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        bundle = collect_lab(lab, lab.base / "bundle")
        new = lab.base / "new.img"
        with open(new, "wb") as f:
            f.truncate(os.path.getsize(lab.image))
        disk = sh(["losetup", "-f", "--show", str(new)]).strip()
        try:
            target = tmp_path / "t"
            args = ["--bundle", bundle, "--target", target, "--map", f"{lab.loop}={disk}"]
            p = amdr("amdr-recover", "plan", "--json", *args)
            assert p.returncode == 0, p.stdout + p.stderr
            doc = json.loads(p.stdout)
            assert doc["errors"] == [] and doc["amanda_host"] == "localhost"
            restores = {r["disk"]: r for r in doc["restores"]}
            assert set(restores) == {lab.root_disk, lab.data_disk}
            assert restores[lab.data_disk]["directory"] == f"{target}/srv"
            # the vtape files read directly (a dump DLE's line starts with its cd)
            assert all(r["commands"] and "dd if=" in r["commands"][0]
                       and "amrestore" not in r["commands"][0] for r in restores.values())
            mounts = [a for a in doc["disks"] if a["type"] == "mount"]
            assert [m["commands"][-1][-1] for m in mounts] == [str(target), f"{target}/srv"]
            p = amdr("amdr-recover", "plan", *args)
            assert p.returncode == 0, p.stdout + p.stderr
            assert "Restore plan (Amanda host localhost):" in p.stdout
            assert f"  localhost:{lab.data_disk} (DUMP) levels 0 into {target}/srv" in p.stdout
            assert "NOT RESTORABLE" not in p.stdout
            assert sh(["blkid", "-p", disk], check=False) == ""
        finally:
            sh(["losetup", "-d", disk])
