"""finalize on real loop disks: references rewritten, refused, run twice; plan-time refusals.

The boot loader and the initramfs run in the qemu drill (tests/drill), where
a real Debian system is restored and booted; here the restored root has no
grub-install, so these tests cover what finalize does around them, for real:
the chroot binds go up and come down, fstab's renamed device is rewritten
with the original kept, a line naming a device that is not here refuses
everything, a second run changes nothing, and the report is written.
"""

import os
import shutil

import pytest
import yaml

from tests.lab.lab import ROOT_UUID, AmandaLab, sh

from .helpers import amdr, blank_disk, collect, umount_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        (lab.mnt / "etc").mkdir(exist_ok=True)
        (lab.mnt / "etc/fstab").write_text(f"UUID={ROOT_UUID} / ext4 defaults 0 1\n"
                                           f"{lab.part(2)} /srv ext4 defaults 0 2\n")
        lab.bundle = collect(lab, lab.base / "bundle")
        yield lab


@pytest.fixture
def target(lab, tmp_path):
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image)) as dev:
        t = tmp_path / "t"
        p = amdr("amdr-recover", "diskinit", "--bundle", lab.bundle, "--target", t,
                 "--map", f"{lab.loop}={dev}", "--yes")
        assert p.returncode == 0, p.stdout + p.stderr
        (t / "etc").mkdir(exist_ok=True)
        shutil.copy(lab.mnt / "etc/fstab", t / "etc/fstab")
        (t / "proc/1").mkdir(parents=True)  # what a careless backup brought back
        (t / "proc/1/status").write_text("stale\n")
        yield t, dev
        umount_target(t)


def finalize(lab, t, dev, *extra):
    return amdr("amdr-recover", "finalize", "--bundle", lab.bundle, "--target", t,
                "--map", f"{lab.loop}={dev}", *extra)


def mounts_under(path):
    with open("/proc/self/mounts") as f:
        return [ln.split()[1] for ln in f if ln.split()[1].startswith(str(path) + "/")]


def test_finalize_rewrites_the_renamed_device_and_a_second_run_changes_nothing(lab, target):
    t, dev = target
    before = mounts_under(t)
    p = finalize(lab, t, dev)
    assert p.returncode == 0, p.stdout + p.stderr
    fstab = (t / "etc/fstab").read_text()
    assert f"{dev}p2 /srv ext4" in fstab and lab.part(2) not in fstab
    assert f"UUID={ROOT_UUID} / ext4" in fstab
    assert (t / "etc/fstab.amdr-orig").read_text().count(lab.part(2)) == 1
    assert "/etc/fstab: line 2" in p.stdout
    # the pseudo-filesystems are emptied and the binds are down again
    assert not (t / "proc/1").exists()
    assert oct((t / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert mounts_under(t) == before
    # the report, in the restored system and beside the state
    logs = sorted((t / "var/log/amanda-dr").glob("finalize-*.txt"))
    assert logs, p.stdout
    text = logs[-1].read_text()
    assert "mount --bind /dev" in text and "exit 0" in text and f"+{dev}p2" in text
    assert "no grub-install" in text  # the lab's root is no system: said, not hidden
    assert (t.parent / "t.amdr/finalize-report.json").exists()
    again = finalize(lab, t, dev)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "finalize changed nothing" in again.stdout
    assert (t / "etc/fstab").read_text() == fstab


def test_a_device_that_is_not_here_refuses_finalize_and_nothing_changes(lab, target):
    t, dev = target
    bad = "UUID=0badc0de-0000-4000-8000-000000000000 /data ext4 defaults 0 2\n"
    with open(t / "etc/fstab", "a") as f:
        f.write(bad)
    fstab = (t / "etc/fstab").read_text()
    before = mounts_under(t)
    p = finalize(lab, t, dev)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "/etc/fstab line 3" in p.stderr and "UUID=0badc0de" in p.stderr
    assert "nothing was changed or installed" in p.stderr
    assert (t / "etc/fstab").read_text() == fstab
    assert not (t / "etc/fstab.amdr-orig").exists()
    assert (t / "proc/1/status").exists()
    assert mounts_under(t) == before
    # with the line marked nofail it is a note, not a refusal
    (t / "etc/fstab").write_text(fstab.replace("defaults 0 2\n", "defaults,nofail 0 2\n"))
    p = finalize(lab, t, dev)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "not fatal" in p.stdout


def test_finalize_without_a_mounted_target_says_what_to_do(lab, tmp_path):
    p = amdr("amdr-recover", "finalize", "--bundle", lab.bundle, "--target", tmp_path / "none")
    assert p.returncode == 3
    assert "nothing is mounted at" in p.stderr and "amdr-recover mount" in p.stderr


def edited_bundle(lab, tmp_path, edit):
    out = tmp_path / "bundle"
    shutil.copytree(lab.bundle, out)
    lay = yaml.safe_load((out / "layout.yaml").read_text())
    edit(lay)
    (out / "layout.yaml").write_text(yaml.safe_dump(lay))
    return out


def test_plan_shows_finalize_and_its_refusal_before_anything_is_wiped(lab, tmp_path):
    def bad_fstab(lay):
        lay["fstab"].append({"spec": "LABEL=nosuch", "file": "/data", "vfstype": "ext4",
                             "options": "defaults", "freq": 0, "passno": 2})
    b = edited_bundle(lab, tmp_path, bad_fstab)
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image)) as dev:
        p = amdr("amdr-recover", "plan", "--bundle", b, "--no-verify", "--target",
                 tmp_path / "t", "--map", f"{lab.loop}={dev}")
        assert "Finalize plan" in p.stdout, p.stdout + p.stderr
        assert "FINALIZE WILL REFUSE" in p.stdout and "LABEL=nosuch" in p.stdout
        assert f"/etc/fstab line 2: fstab device {lab.part(2)} -> {dev}p2" in p.stdout
        j = amdr("amdr-recover", "plan", "--json", "--bundle", b, "--no-verify", "--target",
                 tmp_path / "t", "--map", f"{lab.loop}={dev}")
        doc = yaml.safe_load(j.stdout)
        assert any("LABEL=nosuch" in r for r in doc["finalize"]["refused"])
        assert [a["type"] for a in doc["finalize"]["actions"]][:2] == ["scrub", "chroot"]


def test_bios_gpt_without_a_bios_boot_partition_is_refused_at_plan_time(lab, tmp_path):
    def grub_on_disk0(lay):
        lay["boot"] = {"firmware": "bios", "cmdline": None, "efi": None,
                       "grub": {"package": "grub-pc", "install_devices": [
                           {"device": lab.loop, "path": lab.loop, "disk": "disk0"}]}}
    b = edited_bundle(lab, tmp_path, grub_on_disk0)
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image)) as dev:
        p = amdr("amdr-recover", "plan", "--bundle", b, "--no-verify", "--target",
                 tmp_path / "t", "--map", f"{lab.loop}={dev}")
        assert p.returncode == 3, p.stdout + p.stderr
        assert "without a BIOS boot partition" in p.stderr and dev in p.stderr
        p = amdr("amdr-recover", "diskinit", "--bundle", b, "--no-verify", "--target",
                 tmp_path / "t", "--map", f"{lab.loop}={dev}", "--yes")
        assert p.returncode == 3, p.stdout + p.stderr
        assert sh(["blkid", "-p", "-o", "export", dev], check=False).strip() == ""
