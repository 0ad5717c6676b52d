"""The bundle store (recovery/store.py): bundles found on media, in the mail
amdr-essentials sent (mbox and Maildir), on an sftp server with a pinned
host key (a real sshd), and checked with real gpg once the key is unlocked:
a bundle signed by a key that is not accepted is refused with the reason."""

from __future__ import annotations

import mailbox
from datetime import datetime, timezone
from pathlib import Path

import pytest

from essentials.deliver.mail import build_message
from recovery import store
from tests.lab.keys import make_keys

from .helpers import amdr, seal_one
from .servers import keygen, sshd_server

pytestmark = pytest.mark.integration
PASS = "store check words"


@pytest.fixture(scope="module")
def keys():
    k = make_keys(PASS)
    yield k
    k.cleanup()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keys):
    d = tmp_path_factory.mktemp("bundles")
    return {"web1-old": seal_one(d, keys, "web1", "20261120T010000Z"),
            "web1": seal_one(d, keys, "web1", "20261122T010000Z"),
            "db1": seal_one(d, keys, "db1", "20261121T020000Z"),
            "rogue": seal_one(d, keys, "mail1", "20261122T030000Z", keys.rogue_home,
                              keys.rogue_fpr)}


def test_media_mailboxes_and_the_newest_per_host(tmp_path, bundles):
    usb = tmp_path / "usb" / "amdr" / "2026"
    usb.mkdir(parents=True)
    for k in ("web1-old", "db1"):
        (usb / bundles[k].name).write_bytes(bundles[k].read_bytes())
    (usb / "notes.txt").write_text("not a bundle")
    deep = tmp_path / "usb" / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / bundles["web1"].name).write_bytes(b"too deep to be looked for")
    found = store.on_media([tmp_path / "usb"])
    assert sorted(p.name for p in found) == sorted([bundles["web1-old"].name,
                                                    bundles["db1"].name])
    # the mail essentials sends: one mbox, one Maildir
    dest = {"to": ["dr@site.test"], "from": "root@web1.test"}
    mbox = mailbox.mbox(str(tmp_path / "mbox"))
    mbox.add(build_message(dest, "web1", bundles["web1"].name, bundles["web1"].read_bytes()))
    mbox.close()
    md = mailbox.Maildir(str(tmp_path / "Maildir"))
    md.add(build_message(dest, "db1", bundles["db1"].name, bundles["db1"].read_bytes()))
    md.close()
    s = store.Store(tmp_path / "store")
    for p in found:
        s.add_file(p, f"USB {p.parent}")
    for src in (tmp_path / "mbox", tmp_path / "Maildir"):
        for name, data in store.in_mailbox(src):
            s.add_bytes(name, data, f"mailbox {src.name}")
    assert [e.path.name for e in s.entries()] == sorted(
        b.name for k, b in bundles.items() if k != "rogue")
    newest = s.newest()
    assert [(e.host, e.path.name, e.source) for e in newest] == [
        ("db1", bundles["db1"].name, f"USB {usb}"),  # the first source kept, same bytes
        ("web1", bundles["web1"].name, "mailbox mbox")]
    assert newest[1].path.read_bytes() == bundles["web1"].read_bytes()
    assert (newest[1].path.stat().st_mode & 0o777) == 0o600
    # another file under a name already taken is refused, not swapped in
    with pytest.raises(store.StoreError, match="differs from the one already taken"):
        s.add_bytes(bundles["web1"].name, b"something else", "sftp")
    lines = store.table(newest, now=datetime(2026, 11, 22, 3, 0, tzinfo=timezone.utc))
    assert lines[2].split()[:5] == ["web1", "2026-11-22", "01:00", "2", "h"]


def test_a_mailbox_that_is_not_one(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(store.StoreError, match="not a Maildir"):
        store.in_mailbox(tmp_path / "dir")
    with pytest.raises(store.StoreError, match="no such mailbox"):
        store.in_mailbox(tmp_path / "missing")


def test_sftp_with_the_pinned_host_key(tmp_path, bundles):
    with sshd_server(tmp_path) as srv:
        d = srv.root_dir / "bundles"
        d.mkdir()
        for b in bundles.values():
            (d / b.name).write_bytes(b.read_bytes())
        pin = srv.host_key_pub.read_text()
        got = store.from_sftp(srv.host, str(d), srv.user, pin, port=srv.port,
                              key_file=str(srv.client_key))
        # the newest of each host only: web1's older bundle is not fetched
        assert sorted(n for n, _ in got) == sorted(b.name for k, b in bundles.items()
                                                   if k != "web1-old")
        assert dict(got)[bundles["db1"].name] == bundles["db1"].read_bytes()
        # another host key (a wrong server): refused, nothing fetched
        other = keygen(tmp_path / "other_key", "someone else")
        with pytest.raises(store.StoreError, match="not the pinned one: refused"):
            store.from_sftp(srv.host, str(d), srv.user, Path(f"{other}.pub").read_text(),
                            port=srv.port, key_file=str(srv.client_key))
        with pytest.raises(store.StoreError, match="is not a public key line"):
            store.from_sftp(srv.host, str(d), srv.user, "ssh-ed25519 not-base64!",
                            port=srv.port, key_file=str(srv.client_key))
        with pytest.raises(store.StoreError, match="the key was not accepted"):
            store.from_sftp(srv.host, str(d), srv.user, pin, port=srv.port,
                            key_file=str(other))


def test_check_lists_usable_and_refused_with_the_reason(tmp_path, keys, bundles):
    s = store.Store(tmp_path / "store")
    for b in bundles.values():
        s.add_file(b, "test")
    pw = tmp_path / "pw"
    pw.write_text(PASS + "\n")
    pw.chmod(0o600)
    newest = s.newest()
    store.check(newest, home=str(keys.recovery_home), passphrase_file=str(pw),
                signers=[keys.host_fpr])
    status = {e.host: e.status for e in newest}
    assert status["web1"] == status["db1"] == "usable"
    assert status["mail1"].startswith("refused: ") and keys.rogue_fpr[-16:] in status["mail1"]
    # no plaintext left behind by the check
    assert not list(Path("/run").glob("amdr-check-*")) + list(Path("/tmp").glob("amdr-check-*"))
    # the command a person runs on the live system
    p = amdr("amdr-recover", "bundles", "--media", str(tmp_path / "store"), "--store",
             str(tmp_path / "store2"), "--check", "--gnupghome", str(keys.recovery_home),
             "--passphrase-file", str(pw), "--signer", keys.host_fpr)
    assert p.returncode == 1, p.stdout + p.stderr  # one refused
    out = p.stdout.splitlines()
    assert out[0].split()[:2] == ["host", "bundle"]
    assert [ln.split()[0] for ln in out[1:4]] == ["db1", "mail1", "web1"]
    assert "usable" in out[1] and "refused" in out[2] and "usable" in out[3]
