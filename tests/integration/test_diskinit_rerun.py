"""A re-run of diskinit checks its journal against the disks, and --restart starts over.

Found by a new user: diskinit, umount, `wipefs -a` of the disk, diskinit
again said "done in an earlier run: wipe-disk0 / ptable-disk0", then failed
in partx (exit 3): the journal was trusted, not the disk.
"""

import os
import subprocess
import time

import pytest

from tests.lab.lab import AmandaLab, sh

from .helpers import BIN, amdr, blank_disk, collect, umount_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        lab.bundle = collect(lab, lab.base / "bundle")
        yield lab


@pytest.fixture
def new_disk(lab, tmp_path):
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image)) as dev:
        yield dev


def diskinit(lab, dev, target, *extra):
    return amdr("amdr-recover", "diskinit", "--bundle", lab.bundle, "--target", target,
                "--map", f"{lab.loop}={dev}", "--yes", *extra)


def umount(target):
    p = umount_target(target)
    assert p.returncode == 0, p.stderr


def wipe_by_hand(dev):
    """`wipefs -a`, as a person would; another process's probe (blkid, partx)
    holding the device for a moment makes it "busy": try again, as they would."""
    for _ in range(20):
        p = subprocess.run(["wipefs", "-a", dev], capture_output=True, text=True)
        if p.returncode == 0:
            return
        assert "busy" in p.stderr, p.stderr
        time.sleep(0.5)
    raise AssertionError(f"wipefs -a {dev} stayed busy: {p.stderr}")


def ptuuid(dev):
    return sh(["blkid", "-p", "-o", "value", "-s", "PTUUID", dev], check=False).strip()


def test_wiped_by_hand_then_diskinit_again(lab, new_disk, tmp_path):
    target = tmp_path / "t"
    p = diskinit(lab, new_disk, target)
    assert p.returncode == 0, p.stdout + p.stderr
    made = ptuuid(new_disk)
    assert made
    umount(target)
    sh(["partx", "-d", new_disk], check=False)
    wipe_by_hand(new_disk)
    assert ptuuid(new_disk) == ""
    p = diskinit(lab, new_disk, target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "done in an earlier run: ptable-disk0" not in p.stdout
    assert ptuuid(new_disk) == made
    assert "lab-root" in sh(["blkid", "-p", "-o", "export", f"{new_disk}p1"])
    assert os.path.ismount(target)
    umount(target)


def test_complete_run_again_says_so_and_restart_recreates(lab, new_disk, tmp_path):
    target = tmp_path / "t"
    assert diskinit(lab, new_disk, target).returncode == 0
    (target / "marker").write_text("made after diskinit\n")
    umount(target)
    p = diskinit(lab, new_disk, target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "nothing was recreated" in p.stdout and "--restart" in p.stdout
    assert (target / "marker").exists()  # nothing was formatted
    umount(target)
    p = diskinit(lab, new_disk, target, "--restart")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "starting over" in p.stdout
    assert not (target / "marker").exists()  # formatted again
    umount(target)


def test_restart_is_in_the_help():
    p = amdr("amdr-recover", "diskinit", "--help")
    assert "--restart" in p.stdout and "start over" in p.stdout


def test_umount_of_a_busy_target_names_who_holds_it(lab, new_disk, tmp_path):
    target = tmp_path / "t"
    assert diskinit(lab, new_disk, target).returncode == 0
    holder = subprocess.Popen(["sleep", "120"], cwd=target)
    try:
        p = subprocess.run([str(BIN / "amdr-recover"), "umount", "--target", str(target)],
                           capture_output=True, text=True)
        assert p.returncode == 3, p.stdout + p.stderr
        assert f"{target} is busy" in p.stderr
        assert f"{holder.pid} (root) sleep" in p.stderr
        assert os.path.ismount(target)
    finally:
        holder.kill()
        holder.wait()
    umount(target)
    assert not os.path.ismount(target)
