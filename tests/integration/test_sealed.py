"""Sealed bundles with real gpg: what recovery accepts and what it refuses.

Each refusal must say what is wrong and leave no plaintext behind.
"""

from __future__ import annotations

import glob
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from essentials import bundle, sealed
from essentials.errors import BundleError
from essentials.runner import Runner
from recovery.bundles import open_any
from tests.integration.helpers import amdr
from tests.lab.keys import gpg, make_keys, move_public

pytestmark = pytest.mark.integration
PASS = "site secret words"


@pytest.fixture(scope="module")
def keys():
    k = make_keys(PASS)
    yield k
    k.cleanup()


def plaintext_dirs() -> set:
    return set(glob.glob("/run/amdr-bundle-*")) | set(glob.glob("/tmp/amdr-bundle-*"))


@pytest.fixture
def sealed_bundle(tmp_path, keys) -> Path:
    st = tmp_path / "staging"
    (st / "etc").mkdir(parents=True)
    (st / "etc" / "shadow").write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    (st / "layout.yaml").write_text("version: 1\n")
    bundle.write_manifest(st, {"etc": {"status": "ok"}}, {"host": "web1"})
    out = tmp_path / "web1-20261122T010203Z.amdr.gpg"
    sealed.seal(Runner(), st, out, keys.host_home, [keys.site_fpr], keys.host_fpr)
    return out


def reseal(src: Path, dst: Path, keys, signer_home, signer_fpr, add: bool = True):
    """Decrypt a good bundle, add a member, encrypt it again (signed or not)."""
    plain = subprocess.run(["gpg", "--homedir", str(keys.recovery_home), "--batch",
                            "--pinentry-mode", "loopback", "--passphrase", PASS,
                            "--decrypt", str(src)], capture_output=True, check=True).stdout
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(plain)) as tin, tarfile.open(fileobj=buf,
                                                                      mode="w") as tout:
        for m in tin.getmembers():
            tout.addfile(m, tin.extractfile(m) if m.isfile() else None)
        if add:
            data = b"planted\n"
            info = tarfile.TarInfo("planted.sh")
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    argv = ["gpg", "--homedir", str(signer_home), "--batch", "--yes", "--trust-model",
            "always", "--encrypt", "--recipient", keys.site_fpr, "--output", str(dst)]
    if signer_fpr:
        argv[argv.index("--encrypt")] = "--encrypt"
        argv += ["--sign", "--local-user", signer_fpr]
    subprocess.run(argv, input=buf.getvalue(), check=True, capture_output=True)
    return dst


def test_good_bundle_opens_with_signature_and_checksums(sealed_bundle, keys):
    b, sig = sealed.unseal(sealed_bundle, keys.recovery_home, PASS)
    assert sig.fingerprint == keys.host_fpr
    assert set(b.manifest["files"]) == {"etc/shadow", "layout.yaml"}
    assert b.read_text("etc/shadow").startswith("root:$6$")
    assert (b.root.stat().st_mode & 0o777) == 0o700
    assert str(b.root).startswith("/run/")
    # the sealed file holds no plaintext
    assert b"secret-hash" not in sealed_bundle.read_bytes()


def test_one_byte_changed_is_refused(sealed_bundle, keys, tmp_path):
    data = bytearray(sealed_bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "web1-20261122T010204Z.amdr.gpg"
    bad.write_bytes(bytes(data))
    before = plaintext_dirs()
    with pytest.raises(BundleError, match="damaged or was altered"):
        sealed.unseal(bad, keys.recovery_home, PASS)
    assert plaintext_dirs() == before


def test_member_added_and_signed_by_a_stranger_is_refused(sealed_bundle, keys, tmp_path):
    bad = reseal(sealed_bundle, tmp_path / "web1-20261122T010205Z.amdr.gpg", keys,
                 keys.rogue_home, keys.rogue_fpr)
    with pytest.raises(BundleError, match="whose public key is not in this keyring"):
        sealed.unseal(bad, keys.recovery_home, PASS)


def test_known_but_untrusted_signer_is_refused(sealed_bundle, keys, tmp_path):
    rec2 = tmp_path / "rec2"
    rec2.mkdir(mode=0o700)
    subprocess.run(["cp", "-a", f"{keys.recovery_home}/.", str(rec2)], check=True)
    move_public(keys.rogue_home, rec2, keys.rogue_fpr)  # imported, never trusted
    bad = reseal(sealed_bundle, tmp_path / "web1-20261122T010206Z.amdr.gpg", keys,
                 keys.rogue_home, keys.rogue_fpr)
    with pytest.raises(BundleError, match=f"{keys.rogue_fpr}.*not trusted"):
        sealed.unseal(bad, rec2, PASS)
    subprocess.run(["gpgconf", "--homedir", str(rec2), "--kill", "all"])


def test_unsigned_bundle_is_refused_unless_told_otherwise(sealed_bundle, keys, tmp_path):
    bad = reseal(sealed_bundle, tmp_path / "web1-20261122T010207Z.amdr.gpg", keys,
                 keys.rogue_home, None, add=False)
    with pytest.raises(BundleError, match="not signed"):
        sealed.unseal(bad, keys.recovery_home, PASS)
    b, sig = sealed.unseal(bad, keys.recovery_home, PASS, verify=False)
    assert sig is None and b.has("layout.yaml")


def test_member_added_under_the_hosts_own_signature_fails_the_manifest(sealed_bundle, keys,
                                                                        tmp_path):
    """Even a stolen host key cannot add a file the manifest does not list."""
    bad = reseal(sealed_bundle, tmp_path / "web1-20261122T010208Z.amdr.gpg", keys,
                 keys.host_home, keys.host_fpr)
    with pytest.raises(BundleError, match="not in the manifest: planted.sh"):
        sealed.unseal(bad, keys.recovery_home, PASS)


def test_signer_not_in_the_given_list_is_refused(sealed_bundle, keys):
    with pytest.raises(BundleError, match="not one of the signers given"):
        sealed.unseal(sealed_bundle, keys.recovery_home, PASS, signers=[keys.rogue_fpr])
    b, sig = sealed.unseal(sealed_bundle, keys.recovery_home, PASS, signers=[keys.host_fpr])
    assert sig.fingerprint == keys.host_fpr


def test_wrong_or_missing_passphrase(sealed_bundle, keys):
    before = plaintext_dirs()
    with pytest.raises(BundleError, match="wrong passphrase"):
        sealed.unseal(sealed_bundle, keys.recovery_home, "not it")
    with pytest.raises(BundleError, match="protected by a passphrase"):
        open_any(sealed_bundle, home=str(keys.recovery_home), interactive=False)
    assert plaintext_dirs() == before


def test_no_recovery_key_in_the_keyring(sealed_bundle, keys):
    with pytest.raises(BundleError, match="none of the keys this bundle is encrypted to"):
        sealed.unseal(sealed_bundle, keys.host_home, PASS)


def test_not_a_bundle_at_all(keys, tmp_path):
    junk = tmp_path / "web1-20261122T010209Z.amdr.gpg"
    junk.write_bytes(b"this is not OpenPGP data\n" * 40)
    with pytest.raises(BundleError, match="not an encrypted amanda-dr bundle|damaged"):
        sealed.unseal(junk, keys.recovery_home, PASS)


def test_recover_cli_refuses_a_tampered_bundle_with_exit_3(sealed_bundle, keys, tmp_path):
    data = bytearray(sealed_bundle.read_bytes())
    data[-40] ^= 0xFF
    bad = tmp_path / "web1-20261122T010210Z.amdr.gpg"
    bad.write_bytes(bytes(data))
    pf = tmp_path / "pass"
    pf.write_text(PASS)
    pf.chmod(0o600)
    r = amdr("amdr-recover", "plan", "--bundle", bad, "--gnupghome", keys.recovery_home,
             "--passphrase-file", pf, "--target", tmp_path / "t")
    assert r.returncode == 3, r.stdout + r.stderr
    assert str(bad) in r.stderr and ("damaged" in r.stderr or "altered" in r.stderr)
    pf.chmod(0o644)
    r = amdr("amdr-recover", "plan", "--bundle", sealed_bundle, "--gnupghome",
             keys.recovery_home, "--passphrase-file", pf, "--target", tmp_path / "t")
    assert r.returncode == 2 and "readable by others" in r.stderr


def test_seal_refuses_a_missing_signing_key(tmp_path, keys):
    from essentials.errors import ConfigError
    with pytest.raises(ConfigError, match="gpg.signer: no secret key"):
        sealed.sender_keys(keys.host_home, [keys.site_fpr], keys.rogue_fpr)
    gpg(keys.host_home, "--list-keys")  # the keyring is still usable
