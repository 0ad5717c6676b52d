"""Issue 11 ("What a new user hit"), the essentials side, against the real tools.

One loop disk (a GPT with an ext4 partition holding a small system's /etc,
mounted under a temporary root) is shared by the module.  `amdr-essentials`
runs as a subprocess, as root, or as `nobody` (setpriv) where the report's
host could not open its block devices.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from recovery.disks import devnodes
from tests.lab.lab import sh

from .helpers import BIN, amdr

pytestmark = pytest.mark.integration

EXT_UUID = "5d0c6a2e-7f41-4b8e-9c3d-2a1b0c9d8e7f"
AS_NOBODY = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]


@pytest.fixture(scope="module")
def disk():
    base = Path(tempfile.mkdtemp(prefix="amdr-first-use-", dir="/var/tmp"))
    os.chmod(base, 0o755)  # nobody reads the config and writes its bundle under it
    img = base / "disk.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    loop = sh(["losetup", "-f", "--show", str(img)]).strip()
    mnt = base / "mnt"
    try:
        sh(["sfdisk", "-q", "--no-reread", loop], input="label: gpt\nsize=40MiB\n")
        sh(["partx", "-a", loop], check=False)
        sh(["partx", "-u", loop], check=False)
        assert not devnodes.wait_for([f"{loop}p1"])
        sh(["mkfs.ext4", "-q", "-F", "-U", EXT_UUID, f"{loop}p1"])
        mnt.mkdir()
        sh(["mount", f"{loop}p1", str(mnt)])
        (mnt / "etc").mkdir()
        (mnt / "etc" / "fstab").write_text(f"UUID={EXT_UUID} / ext4 errors=remount-ro 0 1\n")
        yield {"base": base, "loop": loop, "part": f"{loop}p1", "mnt": mnt}
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        subprocess.run(["partx", "-d", loop], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def nobody_dir(path: Path) -> Path:
    path.mkdir()
    shutil.chown(path, "nobody", "nogroup")
    return path


def as_nobody(*args):
    return subprocess.run(AS_NOBODY + [str(BIN / "amdr-essentials")] + [str(a) for a in args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


# -- item 5: a probe that failed is not "nothing there" ------------------------------

def test_collect_as_a_user_who_cannot_open_the_disk_fails_the_layout(disk):
    """blkid -p exits 2 with "Permission denied": before, layout was ok with no filesystem."""
    work = nobody_dir(disk["base"] / "nobody-collect")
    p = as_nobody("collect", "--out", work / "bundle", "--only", "layout",
                  "--disk", disk["loop"])
    assert p.returncode == 3, p.stdout + p.stderr
    assert "layout     failed: could not probe" in p.stdout
    assert f"{disk['loop']}: " in p.stdout and "Permission denied" in p.stdout
    assert "run amdr-essentials as root on the host itself" in p.stdout
    assert not (work / "bundle" / "layout.yaml").exists()


def test_check_as_that_user_says_it_cannot_read_the_layout(disk):
    """`check` said "unchanged" on the reporter's host; it cannot know."""
    base = nobody_dir(disk["base"] / "nobody-check")
    state = nobody_dir(base / "state")
    out = disk["base"] / "as-root"
    p = amdr("amdr-essentials", "collect", "--out", out, "--only", "layout",
             "--disk", disk["loop"], "--root", disk["mnt"])
    assert p.returncode == 0, p.stdout + p.stderr
    shutil.copy(out / "layout.yaml", state / "last-layout.yaml")
    os.chmod(state / "last-layout.yaml", 0o644)
    cfg = base / "essentials.yaml"
    cfg.write_text(yaml.safe_dump({
        "state_dir": str(state), "gpg": {"recipients": ["x"], "signer": "y"},
        "collect": {"layout": {"disks": [disk["loop"]], "root": str(disk["mnt"])}}}))
    os.chmod(cfg, 0o644)
    assert amdr("amdr-essentials", "check", "-c", cfg).returncode == 0  # root: unchanged
    p = as_nobody("check", "-c", cfg)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "cannot read the current layout: could not probe" in p.stderr
    assert "Permission denied" in p.stderr and "unchanged" not in p.stdout


# -- item 6: collect --root reads that system's fstab ---------------------------------

def test_collect_root_reads_the_fstab_under_the_root(disk):
    out = disk["base"] / "with-root"
    p = amdr("amdr-essentials", "collect", "--out", out, "--only", "layout",
             "--disk", disk["loop"], "--root", disk["mnt"])
    assert p.returncode == 0, p.stdout + p.stderr
    layout = yaml.safe_load((out / "layout.yaml").read_text())
    assert [(e["spec"], e["file"], e["options"]) for e in layout["fstab"]] == [
        (f"UUID={EXT_UUID}", "/", "errors=remount-ro")]
    [fs] = [f for f in layout["filesystems"] if f["uuid"] == EXT_UUID]
    assert layout["fstab"][0]["filesystem"] == fs["id"] and fs["mountpoint"] == "/"
    assert (out / "layout" / "raw" / "fstab").read_text() == \
        (disk["mnt"] / "etc" / "fstab").read_text()


# -- item 7: a local delivery to a stick that is not mounted --------------------------

@pytest.fixture(scope="module")
def keys():
    from tests.lab.keys import make_keys
    k = make_keys()
    yield k
    k.cleanup()


def run_config(base: Path, disk, keys, delivery: dict) -> Path:
    cfg = base / "essentials.yaml"
    cfg.write_text(yaml.safe_dump({
        "host": "firstuse", "state_dir": str(base / "state"), "spool_dir": str(base / "spool"),
        "log_file": str(base / "essentials.log"),
        "gpg": {"home": str(keys.host_home), "recipients": [keys.site_fpr],
                "signer": keys.host_fpr},
        "collect": {"layout": {"disks": [disk["loop"]], "root": str(disk["mnt"])},
                    **{n: {"enabled": False}
                       for n in ("etc", "packages", "network", "capabilities", "amanda")}},
        "deliveries": [delivery]}))
    return cfg


def spooled(base: Path) -> list[str]:
    return sorted(p.name for p in (base / "spool").glob("firstuse-*.amdr.gpg"))


def test_run_to_a_missing_directory_fails_and_keeps_the_bundle(disk, keys):
    base = disk["base"] / "run-missing"
    base.mkdir()
    target = base / "usb" / "amanda-dr"
    p = amdr("amdr-essentials", "run", "-c",
             run_config(base, disk, keys, {"type": "local", "name": "usb", "dir": str(target)}))
    assert p.returncode == 3, p.stdout + p.stderr
    assert "usb: firstuse-" in p.stderr and f": FAILED: usb: {target} does not exist" in p.stderr
    assert "waiting in the spool, retried next run: firstuse-" in p.stderr
    assert len(spooled(base)) == 1 and not (base / "usb").exists()


def test_run_to_a_removable_stick_waits_until_it_is_mounted(disk, keys):
    base = disk["base"] / "run-removable"
    stick = base / "usb"  # the mountpoint: an empty directory on / until the stick is in
    stick.mkdir(parents=True)
    assert os.stat(stick).st_dev == os.stat("/").st_dev
    target = stick / "amanda-dr"
    cfg = run_config(base, disk, keys, {"type": "local", "name": "usb", "dir": str(target),
                                        "removable": True, "create": True})
    p = amdr("amdr-essentials", "run", "-c", cfg)
    assert p.returncode == 3, p.stdout + p.stderr
    assert f"{target} does not exist and {stick} is on the root filesystem" in p.stderr
    [waiting] = spooled(base)
    assert os.listdir(stick) == []
    sh(["mount", "-t", "tmpfs", "-o", "size=8m", "amdr-stick", str(stick)])
    try:
        p = amdr("amdr-essentials", "run", "-c", cfg)
        assert p.returncode == 0, p.stdout + p.stderr
        delivered = sorted(os.listdir(target))
        assert waiting in delivered and len(delivered) == 2
        assert spooled(base) == []
    finally:
        sh(["umount", str(stick)])


# -- item 8: install-cron on a host without cron ---------------------------------------

def without_cron(tmp_path: Path, command: str) -> subprocess.CompletedProcess:
    """Run `command` in a mount namespace whose /usr/bin has no crontab (a host
    without the cron package): /usr/bin becomes a directory of links to the
    real one, crontab left out."""
    crontab = shutil.which("crontab")
    assert crontab and os.path.dirname(os.path.realpath(crontab)) == "/usr/bin"
    real, links = tmp_path / "realbin", tmp_path / "bin-without-cron"
    real.mkdir()
    links.mkdir()
    script = (f"mount --bind /usr/bin {real} && "
              f"for f in {real}/*; do [ \"${{f##*/}}\" = crontab ] || ln -s \"$f\" {links}/; "
              f"done && mount --bind {links} /usr/bin && exec {command}")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def test_install_cron_on_a_host_without_cron_fails(tmp_path):
    """It wrote /etc/cron.d/... and said so, on a host where nothing reads it."""
    root = tmp_path / "root"
    p = without_cron(tmp_path, f"{BIN / 'amdr-essentials'} install-cron --sysroot {root}")
    assert p.returncode == 3, p.stdout + p.stderr
    assert "crontab (cron): not installed (Debian package cron)" in p.stderr
    assert "mend it with: apt-get install -y cron" in p.stderr
    assert not root.exists() and "wrote" not in p.stdout
    # the same, where cron is installed, works
    p = amdr("amdr-essentials", "install-cron", "--sysroot", root)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (root / "etc" / "cron.d" / "amanda-dr-essentials").is_file()


# -- rough edges: python-gnupg's warning before our message ---------------------------

def test_only_our_message_when_the_recovery_key_is_missing(disk, keys):
    """"WARNING gnupg: gpg returned a non-zero error code: 2" came first."""
    base = disk["base"] / "warning-first"
    base.mkdir()
    out = base / "out"
    p = amdr("amdr-essentials", "run", "-c", run_config(
        base, disk, keys, {"type": "local", "dir": str(out), "create": True}))
    assert p.returncode == 0, p.stdout + p.stderr
    [b] = out.glob("firstuse-*.amdr.gpg")
    # the host's keyring: the site's public key only, not its secret key
    args = ["plan", "--bundle", b, "--gnupghome", keys.host_home, "--target", base / "t"]
    p = amdr("amdr-recover", *args)
    assert p.returncode == 3, p.stdout + p.stderr
    assert p.stderr.startswith(f"amdr-recover: {b}: none of the keys this bundle is "
                               f"encrypted to is in this keyring"), p.stderr
    assert "give --gnupghome with the site's recovery SECRET key" in p.stderr
    assert "WARNING" not in p.stderr
    p = amdr("amdr-recover", *args, "-v")  # asked for: then it is there
    assert "WARNING gnupg: gpg returned a non-zero error code: 2" in p.stderr


# -- rough edges: what the keyring errors suggest -------------------------------------

def test_a_missing_signing_key_points_to_host_key(disk, keys, tmp_path):
    """It suggested `gpg --quick-gen-key ...`; the tool has host-key for that."""
    base = disk["base"] / "no-signer"
    base.mkdir()
    cfg = run_config(base, disk, keys, {"type": "local", "dir": str(base / "o"), "create": True})
    text = cfg.read_text().replace(keys.host_fpr, "0123456789ABCDEF0123456789ABCDEF01234567")
    cfg.write_text(text)
    p = amdr("amdr-essentials", "run", "-c", cfg)
    assert p.returncode == 2, p.stdout + p.stderr
    assert (f"gpg.signer: no secret key '0123456789ABCDEF0123456789ABCDEF01234567' in "
            f"{keys.host_home}; this host needs its own signing key there: run "
            f"`amdr-essentials host-key --gnupghome {keys.host_home}` and put the fingerprint "
            f"it prints in gpg.signer") in p.stderr
    assert "quick-gen-key" not in p.stderr


# -- rough edges: check after a disk came back under another name --------------------

def test_check_names_a_disk_that_came_back_under_another_name(tmp_path):
    """A hundred lines of field differences for "disk0 is now /dev/loopN"."""
    base = Path(tempfile.mkdtemp(prefix="amdr-renamed-", dir="/var/tmp"))
    img, spare = base / "disk.img", base / "spare.img"
    for f in (img, spare):
        with open(f, "wb") as fh:
            fh.truncate(32 << 20)
    loops = []

    def attach(f):
        loops.append(sh(["losetup", "-f", "--show", str(f)]).strip())
        return loops[-1]

    try:
        first = attach(img)
        sh(["sfdisk", "-q", "--no-reread", first],
           input="label: gpt\nlabel-id: 3C2B1A00-1111-4222-8333-444455556666\n"
                 "size=8MiB\nsize=8MiB\n")
        sh(["partx", "-a", first], check=False)
        assert not devnodes.wait_for([f"{first}p1", f"{first}p2"])
        sh(["mkfs.ext4", "-q", "-F", f"{first}p1"])
        sh(["mkswap", f"{first}p2"])
        state = base / "state"
        state.mkdir()
        out = base / "before"
        p = amdr("amdr-essentials", "collect", "--out", out, "--only", "layout",
                 "--disk", first)
        assert p.returncode == 0, p.stdout + p.stderr
        shutil.copy(out / "layout.yaml", state / "last-layout.yaml")
        # detached and attached again after another disk took its name
        sh(["partx", "-d", first], check=False)
        sh(["losetup", "-d", first])
        loops.remove(first)
        attach(spare)
        second = attach(img)
        assert second != first
        sh(["partx", "-a", second], check=False)
        assert not devnodes.wait_for([f"{second}p1", f"{second}p2"])
        cfg = base / "essentials.yaml"
        cfg.write_text(yaml.safe_dump({
            "state_dir": str(state), "gpg": {"recipients": ["x"], "signer": "y"},
            "collect": {"layout": {"disks": [second]}}}))
        p = amdr("amdr-essentials", "check", "-c", cfg)
        assert p.returncode == 1, p.stdout + p.stderr
        assert p.stdout.splitlines()[1:] == [
            f"  ~ disk0 is now {second} (was {first}, same partition table id "
            f"3c2b1a00-1111-4222-8333-444455556666)"], p.stdout
        assert "(1 difference)" in p.stdout
    finally:
        for loop in reversed(loops):
            subprocess.run(["partx", "-d", loop], capture_output=True)
            subprocess.run(["losetup", "-d", loop], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
