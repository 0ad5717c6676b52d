"""The recovery key's passphrase typed on a terminal, with a real-size sealed bundle.

A field engineer has no passphrase file: amdr-recover asks on the terminal.
With the 800 kB bundle a real host makes, the first decryption attempt
(without a passphrase) ended with gpg gone while the bundle was still being
written to it, and a BrokenPipeError traceback (exit 3) however right the
passphrase typed.  Each test runs the real CLI on a pty (pexpect).
"""

import os
import subprocess

import pexpect
import pytest

from essentials import bundle, sealed
from essentials.runner import Runner
from tests.lab import scenario
from tests.lab.keys import make_keys
from tests.lab.lab import AmandaLab

from .helpers import BIN, collect

pytestmark = pytest.mark.integration
PASS = "words the engineer types"


@pytest.fixture(scope="module")
def sealed_bundle():
    keys = make_keys(PASS)
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        plain = collect(lab, lab.base / "bundle")
        # a real host's /etc: 800 kB that do not compress (the lab's /etc is tiny)
        (plain / "etc-padding.bin").write_bytes(os.urandom(800_000))
        m = bundle.load_yaml_text((plain / "manifest.yaml").read_text())
        bundle.write_manifest(plain, m["collectors"], {"host": m["host"], "fqdn": m["fqdn"]})
        out = lab.base / "labhost-20261206T010203Z.amdr.gpg"
        sealed.seal(Runner(), plain, out, keys.host_home, [keys.site_fpr], keys.host_fpr)
        lab.sealed, lab.keys = out, keys
        yield lab
    keys.cleanup()


def spawn(lab, *args):
    return pexpect.spawn(str(BIN / "amdr-recover"),
                         [*args, "--bundle", str(lab.sealed), "--gnupghome",
                          str(lab.keys.recovery_home), "--signer", lab.keys.host_fpr],
                         encoding="utf-8", timeout=120, dimensions=(24, 80))


def test_the_bundle_is_real_size(sealed_bundle):
    assert sealed_bundle.sealed.stat().st_size > 700_000


def test_plan_asks_once_and_opens_the_bundle(sealed_bundle, tmp_path):
    child = spawn(sealed_bundle, "plan", "--target", str(tmp_path / "t"))
    child.expect("Passphrase for the recovery key")
    child.sendline(PASS)
    child.expect(pexpect.EOF)
    child.close()
    out = child.before
    assert "Traceback" not in out and "BrokenPipe" not in out, out
    assert "gnupg" not in out, out  # python-gnupg's own log lines stay out
    assert child.exitstatus == 0, out
    assert "Restore plan" in out and "Passphrase" not in out.split("Restore plan")[0][-200:]


def test_a_wrong_passphrase_is_named_and_asked_again(sealed_bundle, tmp_path):
    child = spawn(sealed_bundle, "plan", "--target", str(tmp_path / "t"))
    child.expect("Passphrase for the recovery key")
    child.sendline("not it")
    child.expect("wrong passphrase")
    child.expect("Passphrase for the recovery key")
    child.sendline(PASS)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Traceback" not in child.before


def test_no_terminal_and_no_file_says_what_to_do(sealed_bundle, tmp_path):
    p = subprocess.run([str(BIN / "amdr-recover"), "plan", "--target", str(tmp_path / "t"),
                        "--bundle", str(sealed_bundle.sealed), "--gnupghome",
                        str(sealed_bundle.keys.recovery_home)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert p.returncode == 3
    assert "--passphrase-file" in p.stderr and "Traceback" not in p.stderr
    assert p.stderr.startswith("amdr-recover: ")  # ours is the only message


def test_one_recovery_opens_the_bundle_once(sealed_bundle, tmp_path):
    """plan, then the next command of the same recovery (same target): no second
    prompt; the plaintext is root's alone under /run; umount removes it."""
    from recovery.bundles import opened_dir
    target = tmp_path / "t"
    child = spawn(sealed_bundle, "plan", "--target", str(target))
    child.expect("Passphrase for the recovery key")
    child.sendline(PASS)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    kept = opened_dir(str(tmp_path / "t.amdr"))
    assert kept.is_dir() and (kept.stat().st_mode & 0o777) == 0o700
    assert (kept.parent.stat().st_mode & 0o077) == 0
    (opened,) = [d for d in kept.iterdir() if d.is_dir()]
    assert (opened / "etc-padding.bin").is_file()

    def again():  # no terminal, no passphrase file: only the opened copy can serve
        return subprocess.run([str(BIN / "amdr-recover"), "plan", "--target", str(target),
                               "--bundle", str(sealed_bundle.sealed), "--gnupghome",
                               str(sealed_bundle.keys.recovery_home), "--signer",
                               sealed_bundle.keys.host_fpr],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
    p = again()
    assert p.returncode == 0, p.stderr
    assert "Restore plan" in p.stdout

    # a copy altered on /run is not trusted: the bundle is opened again (and,
    # with no terminal here, that needs the passphrase)
    (opened / "etc-padding.bin").write_bytes(b"changed")
    p = again()
    assert p.returncode == 3 and "--passphrase-file" in p.stderr
    assert not opened.exists()

    child = spawn(sealed_bundle, "plan", "--target", str(target))
    child.expect("Passphrase for the recovery key")
    child.sendline(PASS)
    child.expect(pexpect.EOF)
    child.close()
    p = subprocess.run([str(BIN / "amdr-recover"), "umount", "--target", str(target)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "removed from /run" in p.stdout
    assert not kept.exists()
    p = again()
    assert p.returncode == 3 and "--passphrase-file" in p.stderr
