"""Bad input and destructive steps against the real lab: refused, nothing lost."""

import contextlib
import os
import shutil
import subprocess

import pexpect
import pytest

from tests.lab import scenario, tree
from tests.lab.lab import AmandaLab, sh

from .helpers import BIN, amdr, collect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        lab.bundle = collect(lab, lab.base / "bundle")
        yield lab


def intact(lab):
    """The lab disk still holds its filesystems and files."""
    info = sh(["blkid", "-p", "-o", "export", lab.part(1)])
    return "lab-root" in info and (lab.mnt / "etc/hostname").exists()


@contextlib.contextmanager
def unmounted(lab):
    """The lab disk unmounted for the test, then mounted again and checked intact."""
    lab.umount()
    try:
        yield
    finally:
        if not os.path.ismount(lab.mnt):
            lab.mount()
    assert intact(lab)


def boot_disk():
    src = sh(["findmnt", "-n", "-o", "SOURCE", "/"]).strip()
    out = sh(["lsblk", "-s", "-l", "-n", "-p", "-o", "PATH,TYPE", src]).splitlines()
    disks = [ln.split()[0] for ln in out if ln.split()[-1] == "disk"]
    assert disks, f"cannot find the disk under {src}"
    return disks[0]


def test_boot_disk_is_refused(lab, tmp_path):
    disk = boot_disk()
    p = amdr("amdr-recover", "diskinit", "--bundle", lab.bundle, "--target", tmp_path / "t",
             "--map", f"{lab.loop}={disk}", "--yes")
    assert p.returncode == 4, p.stdout + p.stderr
    assert disk in p.stderr and "running system" in p.stderr


def test_mounted_disk_is_refused(lab, tmp_path):
    assert os.path.ismount(lab.mnt)
    p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", tmp_path / "t",
             "--yes")
    assert p.returncode == 4, p.stdout + p.stderr
    assert f"{lab.part(1)} is mounted on {lab.mnt}" in p.stderr
    assert intact(lab)


def test_no_confirmation_without_terminal(lab, tmp_path):
    with unmounted(lab):
        p = amdr("amdr-recover", "diskinit", "--bundle", lab.bundle, "--target", tmp_path / "t")
        assert p.returncode == 4
        assert "without confirmation" in p.stderr


def test_wrong_hostname_typed_changes_nothing(lab, tmp_path):
    with unmounted(lab):
        child = pexpect.spawn(str(BIN / "amdr-recover"),
                              ["diskinit", "--bundle", str(lab.bundle), "--target",
                               str(tmp_path / "t")], encoding="utf-8", timeout=60)
        child.expect("These disks will be WIPED")
        child.expect(r"Type the host name \((\S+)\) to go ahead: ")
        # the summary stands right above the question, the plan before it
        before = child.before.strip().splitlines()
        assert before[0].startswith("and recreated as host"), before
        assert len(before) == 2, before  # one disk: one line
        assert before[1].strip().startswith(f"{lab.loop} (") and "MiB" in before[1]
        assert f"becomes {lab.loop}" in before[1]
        child.sendline("not-" + child.match.group(1))
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 4
        assert "not confirmed" in child.before


def test_corrupt_bundle_is_refused(lab, tmp_path):
    bad = tmp_path / "bundle"
    shutil.copytree(lab.bundle, bad)
    data = bytearray((bad / "layout.yaml").read_bytes())
    data[10] ^= 1
    (bad / "layout.yaml").write_bytes(bytes(data))
    p = amdr("amdr-recover", "plan", "--bundle", bad, "--target", tmp_path / "t")
    assert p.returncode == 3
    assert "checksum mismatch: layout.yaml" in p.stderr
    (bad / "extra.txt").write_text("planted")
    shutil.copy(lab.bundle / "layout.yaml", bad / "layout.yaml")
    p = amdr("amdr-recover", "plan", "--bundle", bad, "--target", tmp_path / "t")
    assert p.returncode == 3 and "not in the manifest: extra.txt" in p.stderr


def test_missing_volume_stops_before_any_wipe(lab, tmp_path):
    vt = tmp_path / "vtapes"
    shutil.copytree(lab.vtapes, vt, ignore=shutil.ignore_patterns("slot1"))
    with unmounted(lab):
        p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", tmp_path / "t",
                 "--vtapes", vt, "--yes")
        assert p.returncode == 3, p.stdout + p.stderr
        label = lab.name.upper() + "-01"
        assert "no disk was touched" in p.stderr and label in p.stderr
        assert "is not available" in p.stderr


def test_disk_too_small(lab, tmp_path):
    img = tmp_path / "small.img"
    with open(img, "wb") as f:
        f.truncate(20 << 20)
    small = sh(["losetup", "-f", "--show", str(img)]).strip()
    try:
        p = amdr("amdr-recover", "diskinit", "--bundle", lab.bundle, "--target",
                 tmp_path / "t", "--map", f"{lab.loop}={small}", "--yes")
        assert p.returncode == 3
        assert f"{small} is too small" in p.stderr and "need" in p.stderr
        assert sh(["blkid", "-p", small], check=False) == ""  # still blank
    finally:
        sh(["losetup", "-d", small])


def test_recover_onto_a_new_disk(lab, tmp_path):
    img = tmp_path / "new.img"
    with open(img, "wb") as f:
        f.truncate(os.path.getsize(lab.image) + (16 << 20))  # a slightly larger disk
    new = sh(["losetup", "-f", "--show", str(img)]).strip()
    target = tmp_path / "target"
    try:
        p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", target,
                 "--map", f"{lab.loop}={new}", "--yes", "--no-finalize")
        assert p.returncode == 0, p.stdout + p.stderr
        expected = lab.runs[-1].manifests
        got_root = tree.snapshot(str(target), exclude={"lost+found", "srv"})
        got_data = tree.snapshot(str(target / "srv"), exclude={"lost+found"})
        assert tree.compare(expected[lab.root_disk], got_root) == []
        assert tree.compare(expected[lab.data_disk], got_data) == []
        assert "lab-root" in sh(["blkid", "-p", "-o", "export", f"{new}p1"])
        assert intact(lab)  # the original disk was not touched
    finally:
        subprocess.run([str(BIN / "amdr-recover"), "umount", "--target", str(target)],
                       capture_output=True)
        sh(["partx", "-d", new], check=False)
        sh(["losetup", "-d", new])


@pytest.mark.parametrize("what", ["boot disk", "mounted disk", "missing device", "plain file"])
def test_plan_says_what_diskinit_will_refuse(lab, tmp_path, what):
    """plan used to print a full wipe plan for these and exit 1 without a word."""
    plain = tmp_path / "disk.img"
    plain.write_bytes(b"\0" * 4096)
    disk = {"boot disk": boot_disk(), "mounted disk": lab.loop,
            "missing device": "/dev/loop-no-such", "plain file": str(plain)}[what]
    expect = {"boot disk": "holds the running system", "mounted disk": "is mounted on",
              "missing device": "does not exist", "plain file": "not a block device"}[what]
    p = amdr("amdr-recover", "plan", "--bundle", lab.bundle, "--target", tmp_path / "t",
             "--map", f"{lab.loop}={disk}")
    out = p.stdout + p.stderr
    assert expect in out, out
    if p.returncode in (0, 1):  # planned, and the refusal shown with it
        assert "DISKINIT WILL REFUSE" in p.stdout and disk in p.stdout
        j = amdr("amdr-recover", "plan", "--json", "--bundle", lab.bundle, "--target",
                 tmp_path / "t", "--map", f"{lab.loop}={disk}")
        import json
        doc = json.loads(j.stdout)
        assert any(expect in r for r in doc["refused"])
    else:  # the disk cannot even be planned for (missing, not a disk): said as such
        assert p.returncode in (2, 3), out
    assert intact(lab)


@pytest.mark.parametrize("tool, args", [("amdr-recover", ["doctor"]),
                                        ("amdr-essentials", ["doctor"]),
                                        ("amdr-recover", ["plan", "--target", "/tmp/t-pipe"])])
def test_output_into_a_closed_pipe_ends_quietly(lab, tool, args):
    """`amdr-recover plan ... | head -3` ended in a BrokenPipeError traceback."""
    if args[0] == "plan":
        args = args + ["--bundle", str(lab.bundle)]
    p = subprocess.Popen([str(BIN / tool), *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    p.stdout.close()  # the reader is gone before the first line is written
    err = p.stderr.read().decode()
    rc = p.wait()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert rc in (0, 1), err
