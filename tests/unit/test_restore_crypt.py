"""Encrypted and split images: the header's filters, the keys' table, the keys put
in place for a run and taken away (pure or in a temporary directory)."""

import os
import pwd
from pathlib import Path

import pytest

from essentials import amcrypt
from essentials.bundle import open_bundle, write_manifest
from essentials.collectors import amanda
from essentials.collectors.base import Context
from essentials.runner import Runner
from recovery.restore import crypt
from recovery.media.volumes import HEADER_SIZE, parse_header
from recovery.restore.pipe import PipeError, filters

ENC = ("AMANDA: SPLIT_FILE 20261206170828 localhost /var/tmp/x/mnt  part 1/-1  lev 0 comp .gz "
       "program /bin/tar crypt enc server_encrypt /usr/sbin/amcrypt-ossl "
       "server_decrypt_option -d\n")


def header(line: str):
    raw = line.encode()
    return parse_header(raw + b"\0" * (HEADER_SIZE - len(raw)))


def test_header_says_how_the_stream_was_written():
    h = header(ENC)
    assert (h.comp, h.encrypted, h.server_encrypt, h.server_decrypt_option) == (
        ".gz", True, "/usr/sbin/amcrypt-ossl", "-d")
    assert [(f.argv, f.user, f.what) for f in filters(h)] == [
        (["/usr/sbin/amcrypt-ossl", "-d"], "backup", "decrypt"),
        (["gzip", "-dc"], None, "uncompress")]


def test_plain_custom_and_unknown_compression():
    assert filters(header("AMANDA: SPLIT_FILE 1 h /d  part 1/-1  lev 0 comp N program "
                          "/bin/tar\n")) == []
    cust = header("AMANDA: SPLIT_FILE 1 h /d  part 1/-1  lev 0 comp .cust program /bin/tar "
                  "client_custom_compress /usr/bin/zstd\n")
    assert [f.argv for f in filters(cust)] == [["/usr/bin/zstd", "-d"]]
    with pytest.raises(PipeError, match="compressed as '.xz'"):
        filters(header("AMANDA: SPLIT_FILE 1 h /d  part 1/-1  lev 0 comp .xz program x\n"))
    with pytest.raises(PipeError, match="names no encryption program"):
        filters(header("AMANDA: SPLIT_FILE 1 h /d  part 1/-1  lev 0 comp N program x "
                       "crypt enc\n"))


def test_programs_named_by_a_config():
    conf = ('define dumptype a {\n  encrypt server\n  server-encrypt "/usr/sbin/amcrypt-ossl"\n'
            '}\ndefine dumptype b {\n  client_encrypt "/usr/sbin/amgpgcrypt"\n'
            '  server-encrypt "/usr/sbin/amcrypt-ossl"\n}\n')
    assert amcrypt.programs_in(conf) == ["/usr/sbin/amcrypt-ossl", "/usr/sbin/amgpgcrypt"]
    assert amcrypt.files_for("/usr/sbin/amgpgcrypt")[0] == (".am_passphrase", ".gnupg")
    assert amcrypt.files_for("/opt/site/mycrypt") is None


def ctx(tmp_path, sealed=True) -> Context:
    out = tmp_path / "out"
    out.mkdir(parents=True)
    return Context(Runner(), out, {"sealed": sealed}, "/", tmp_path / "etc")


def test_keys_are_collected_into_the_sealed_staging(tmp_path):
    home = tmp_path / "home"
    (home / ".gnupg/private-keys-v1.d").mkdir(parents=True)
    (home / ".am_passphrase").write_text("s3cret\n")
    (home / ".gnupg/private-keys-v1.d/K.key").write_text("key")
    (home / ".gnupg/S.gpg-agent").write_text("")  # a socket's name: left out
    c = ctx(tmp_path)
    got = amanda.collect_keys(c, ["/usr/sbin/amgpgcrypt"], home)
    assert got["keys"] == [".am_passphrase", ".gnupg/private-keys-v1.d/K.key"]
    assert (c.out / "amanda/keys/.am_passphrase").read_text() == "s3cret\n"
    assert (c.out / "amanda/keys/.am_passphrase").stat().st_mode & 0o777 == 0o600
    assert not (c.out / "amanda/keys/.gnupg/S.gpg-agent").exists()


def test_unsealed_collection_leaves_the_keys_out_and_a_missing_key_is_said(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".am_passphrase").write_text("s3cret\n")
    c = ctx(tmp_path, sealed=False)
    got = amanda.collect_keys(c, [], home)  # no program named: the file alone says it
    assert got["left_out"] == [".am_passphrase"] and not (c.out / "amanda").exists()
    assert "left out of an unsealed collection" in c.warnings[0]
    (home / ".am_passphrase").unlink()
    c2 = ctx(tmp_path / "2")
    got = amanda.collect_keys(c2, ["/usr/sbin/amcrypt-ossl"], home)
    assert got["missing"] == [".am_passphrase"]
    assert "could not be decrypted after a loss" in c2.warnings[0]
    assert amanda.collect_keys(ctx(tmp_path / "3"), [], home) is None  # nothing to say


def bundle_with_key(tmp_path, data=b"s3cret\n"):
    root = tmp_path / "bundle"
    (root / "amanda/keys").mkdir(parents=True)
    (root / "amanda/keys/.am_passphrase").write_bytes(data)
    write_manifest(root, {"amanda": {"status": "ok"}}, {"host": "h", "fqdn": "h"})
    return open_bundle(root)


def test_keys_in_place_for_the_run_then_gone_and_what_was_there_back(tmp_path):
    b = bundle_with_key(tmp_path)
    base = tmp_path / "home"
    base.mkdir()
    (base / ".am_passphrase").write_text("the live system's own\n")
    assert crypt.key_problem("/usr/sbin/amcrypt-ossl", crypt.bundle_keys([b]),
                             str(tmp_path / "empty")) is None
    assert "amcrypt-ossl, whose key is neither here nor in the bundles" in \
        crypt.key_problem("/usr/sbin/amcrypt-ossl", (), str(tmp_path / "empty"))
    with crypt.installed([b], base=str(base)) as placed:
        assert placed == [".am_passphrase"]
        st = (base / ".am_passphrase").stat()
        assert (base / ".am_passphrase").read_bytes() == b"s3cret\n"
        assert st.st_mode & 0o777 == 0o600 and st.st_uid == pwd.getpwnam("backup").pw_uid
    assert (base / ".am_passphrase").read_text() == "the live system's own\n"
    assert sorted(os.listdir(base)) == [".am_passphrase"]


def test_keys_are_taken_away_when_the_run_fails(tmp_path):
    b = bundle_with_key(tmp_path)
    base = tmp_path / "home"
    base.mkdir()
    with pytest.raises(RuntimeError):
        with crypt.installed([b], base=str(base)):
            assert Path(base / ".am_passphrase").exists()
            raise RuntimeError("restore failed")
    assert os.listdir(base) == []


def test_progress_as_data():
    from recovery.restore.driver import Progress
    ev = Progress("web1", "/srv", 0, 1, 2, 50_000_000, 200_000_000, 10.0)
    assert ev.rate == 5e6 and ev.eta == 30.0
    assert ev.line() == ("  web1:/srv level 0 (image 1/2): 50/200 MB (25%), 5.0 MB/s, "
                         "about 30 s left")
    unknown = Progress("web1", "/srv", 1, 2, 2, 1_000_000, None, 0.0)
    assert unknown.eta is None and unknown.line().endswith("1 MB, 0.0 MB/s")


def test_client_side_programs_are_not_missed_on_the_server(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    c = ctx(tmp_path)
    assert amanda.collect_keys(c, ["/usr/sbin/amcrypt"], home, ("/usr/sbin/amcrypt",)) is None
    assert c.warnings == []
    assert amcrypt.programs_in('  client_encrypt "/a"\n  server-encrypt "/b"\n',
                               "server") == ["/b"]


def test_a_key_left_by_a_killed_run_is_taken_away_by_the_next(tmp_path):
    b = bundle_with_key(tmp_path)
    base = tmp_path / "home"
    base.mkdir()
    (base / ".am_passphrase").write_bytes(b"s3cret\n")  # a killed run's copy...
    (base / ".am_passphrase.amdr-placed").write_text("")  # ...and its mark
    (base / ".am_passphrase.amdr-saved").write_text("the live system's own\n")
    with crypt.installed([b], base=str(base)):
        assert (base / ".am_passphrase").read_bytes() == b"s3cret\n"
    assert (base / ".am_passphrase").read_text() == "the live system's own\n"
    assert sorted(os.listdir(base)) == [".am_passphrase"]
