"""The live image's site settings (image/site.py): checked before a build."""

import pytest

from recovery.site import SiteError, load_site, validate

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2b3Zlcm9mc2l0ZXNldHRpbmdzdGVzdGtleTE="
FPR = "0123456789ABCDEF0123456789ABCDEF01234567"


def test_a_full_site_is_accepted():
    doc = {"signers": [FPR, "0123 4567 89ab cdef 0123  4567 89AB CDEF 0123 4567"],
           "recovery_keys": ["-----BEGIN PGP PUBLIC KEY BLOCK-----\n...\n"],
           "sftp": {"host": "backup1", "port": 2222, "user": "amdr", "path": "/srv/b",
                    "host_key": KEY},
           "office": {"host": "jump", "user": "live", "host_key": KEY,
                      "keys": [KEY + " alice@office"]}}
    assert validate(doc) == doc
    assert validate(None) == {}


@pytest.mark.parametrize("doc, message", [
    ({"signer": [FPR]}, "signer: unknown setting"),
    ({"signers": ["ABCD"]}, "signers[0]: 'ABCD' is not a 40-hex-digit OpenPGP fingerprint"),
    ({"recovery_keys": ["not a key"]}, "recovery_keys[0]: expected an armored public key"),
    ({"sftp": {"host": "b", "user": "u", "path": "/p"}}, "sftp: host_key is missing"),
    ({"sftp": {"host": "b", "user": "u", "path": "/p", "host_key": "AAAA"}},
     "sftp.host_key: expected an OpenSSH public key line"),
    ({"sftp": {"host": "b", "user": "u", "path": "/p", "host_key": KEY, "port": 70000}},
     "sftp.port: 70000 is not a TCP port"),
    ({"sftp": {"host": "b", "user": "u", "path": "/p", "host_key": KEY, "port": "22"}},
     "sftp.port: expected int"),
    ({"office": {"host": "j", "user": "u", "host_key": KEY, "keys": ["x"]}},
     "office.keys[0]: expected an OpenSSH public key line"),
    (["a"], "expected a mapping"),
])
def test_mistakes_are_named(doc, message):
    with pytest.raises(SiteError) as e:
        validate(doc)
    assert message in str(e.value)


def test_the_file_is_named(tmp_path):
    p = tmp_path / "site.yaml"
    p.write_text("signers: [nope]\n")
    with pytest.raises(SiteError, match=f"{p}: signers\\[0\\]"):
        load_site(p)
    p.write_text("signers: [\n")
    with pytest.raises(SiteError, match="not valid YAML at line"):
        load_site(p)
    with pytest.raises(SiteError, match="missing.yaml: no such file"):
        load_site(tmp_path / "missing.yaml")
