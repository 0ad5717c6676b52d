"""Server-side encryption (`encrypt server`, amcrypt-ossl): the lost server's key
travels in the sealed bundle, and nowhere else.

The lab encrypts and compresses on the server and splits the images in 1 MB
parts (the hardest case: one encrypted gzip stream cut in pieces).  Then the
server is "lost": ~backup/.am_passphrase is removed.  `recover` from the
sealed bundle alone restores every DLE; from a bundle without the key (an
unsealed `collect` leaves it out) it refuses before any disk is touched.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
import yaml

from essentials import sealed
from tests.lab import scenario
from tests.lab.keys import make_keys
from tests.lab.lab import AmandaLab, sh

from .helpers import amdr, blank_disk, collect, differences, seal, umount_target

pytestmark = pytest.mark.integration

HOME = Path(os.path.expanduser("~backup"))
KEY = HOME / ".am_passphrase"


@pytest.fixture(scope="module")
def keys():
    k = make_keys("")
    yield k
    k.cleanup()


@pytest.fixture(scope="module")
def lab(keys):
    assert not KEY.exists(), f"{KEY} exists on this machine: the test would overwrite it"
    phrase = secrets.token_urlsafe(48)
    KEY.write_text(phrase + "\n")
    os.chown(KEY, *(lambda p: (p.pw_uid, p.pw_gid))(__import__("pwd").getpwnam("backup")))
    KEY.chmod(0o600)
    try:
        with AmandaLab(root_mb=64, data_mb=32, swap_mb=8, slots=6, holding_mb=600) as lab:
            lab.ok_exit = (0, 2)  # amcrypt-ossl's OpenSSL 3 warning makes each dump "strange"
            conf = lab.confdir / "amanda.conf"
            text = conf.read_text()
            for old, new in (("  length 16000 mbytes\n", "  length 16000 mbytes\n"
                                                         "  part-size 1m\n"),
                             ("  compress none\n",
                              '  compress server fast\n  encrypt server\n'
                              '  server-encrypt "/usr/sbin/amcrypt-ossl"\n'
                              '  server-decrypt-option "-d"\n')):
                assert old in text
                text = text.replace(old, new)
            conf.write_text(text)
            scenario.initial(lab.mnt, lab.data_mnt)
            (lab.mnt / "big.bin").write_bytes(os.urandom(3 << 20))
            lab.backup(expect=0)
            scenario.change1(lab.mnt, lab.data_mnt)
            lab.backup(expect=1)
            lab.phrase = phrase
            lab.sealed = seal(lab, keys)
            lab.plain = collect(lab, lab.base / "plain")
            yield lab
    finally:
        KEY.unlink(missing_ok=True)


def test_the_images_are_split_compressed_and_encrypted(lab):
    first = sorted((lab.vtapes / "slot1").glob("00002.*"))[0]
    head = first.read_bytes()[:32768].split(b"\0", 1)[0].decode()
    assert "comp .gz" in head and "crypt enc server_encrypt /usr/sbin/amcrypt-ossl" in head
    assert "part 1/-1" in head


def test_the_key_is_in_the_sealed_bundle_only(lab, keys):
    bundle, _ = sealed.unseal(lab.sealed, keys.recovery_home, None)
    try:
        assert (bundle.root / "amanda/keys/.am_passphrase").read_text().strip() == lab.phrase
        detail = bundle.manifest["collectors"]["amanda"]["detail"]["encryption"]
        assert detail["programs"] == ["/usr/sbin/amcrypt-ossl"]
        assert detail["keys"] == [".am_passphrase"]
    finally:
        import shutil
        shutil.rmtree(bundle.root, ignore_errors=True)
    # nowhere in plain text: not in the log, the state, the unsealed collection
    for root in (lab.run_dir, lab.plain):
        for p in root.rglob("*"):
            if p.is_file():
                assert lab.phrase.encode() not in p.read_bytes(), p
    assert not (lab.plain / "amanda/keys").exists()
    warn = yaml.safe_load((lab.plain / "manifest.yaml").read_text())
    assert any("left out of an unsealed collection" in w
               for w in warn["collectors"]["amanda"].get("warnings", []))


def test_without_the_key_recover_refuses_before_any_wipe(lab, tmp_path):
    KEY.unlink(missing_ok=True)  # the server is lost, and its key with it
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        p = amdr("amdr-recover", "recover", "--bundle", lab.plain, "--target", tmp_path / "t",
                 "--vtapes", lab.vtapes, "--map", f"{lab.loop}={new}", "--yes", "--no-finalize")
        assert p.returncode == 3, p.stdout + p.stderr
        assert "no disk was touched" in p.stderr
        assert "encrypted with amcrypt-ossl" in p.stderr and ".am_passphrase" in p.stderr
        assert sh(["blkid", "-p", new], check=False) == ""  # still blank


def test_recover_from_the_sealed_bundle_alone(lab, keys, tmp_path):
    KEY.unlink(missing_ok=True)
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.sealed, "--gnupghome",
                     keys.recovery_home, "--target", target, "--vtapes", lab.vtapes,
                     "--map", f"{lab.loop}={new}", "--yes", "--no-finalize")
            assert p.returncode == 0, p.stdout + p.stderr
            assert "encryption keys from the bundle in ~backup" in p.stdout
            assert differences(lab, target) == {d: [] for d in lab.dle_dirs()}
            assert not KEY.exists()  # in place for the run only
            assert lab.phrase not in p.stdout + p.stderr
        finally:
            umount_target(target)
