"""Delivery against real servers and real devices: sshd, aiosmtpd, loop-device vfat."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from essentials import config
from essentials.deliver import DeliveryError, deliver
from essentials.runner import Runner
from tests.integration.servers import (free_port, keygen, silent_port, smtp_server,
                                       sshd_server)

pytestmark = pytest.mark.integration

HOST = "web1"


def dest(**kw) -> dict:
    """One delivery entry exactly as config.validate hands it to deliver()."""
    cfg = config.validate({"gpg": {"recipients": ["X"], "signer": "Y"}, "deliveries": [kw]})
    return cfg["deliveries"][0]


def bundle(tmp: Path, stamp="20261122T010203Z", size=150_000, host=HOST) -> Path:
    spool = tmp / "spool"
    spool.mkdir(exist_ok=True)
    p = spool / f"{host}-{stamp}.amdr.gpg"
    p.write_bytes(os.urandom(size))
    return p


def sha(p: Path | bytes) -> str:
    return hashlib.sha256(p if isinstance(p, bytes) else p.read_bytes()).hexdigest()


def fingerprint(pub: Path) -> str:
    """SHA256:... of a public key file, from ssh-keygen itself."""
    return subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True,
                          check=True).stdout.split()[1]


# -- sftp -----------------------------------------------------------------------
@pytest.fixture
def sshd(tmp_path):
    with sshd_server(tmp_path) as s:
        yield s


def sftp_dest(s, **kw) -> dict:
    base = dict(type="sftp", host=s.host, port=s.port, user=s.user,
                key_file=str(s.client_key), known_hosts=str(s.known_hosts),
                dir=str(s.root_dir / "bundles"), timeout=5)
    return dest(**{**base, **kw})


def test_sftp_upload_lands_under_dir_host(tmp_path, sshd):
    b = bundle(tmp_path)
    where = deliver(sftp_dest(sshd), b, HOST, Runner())
    target = sshd.root_dir / "bundles" / HOST / b.name
    assert sha(target) == sha(b)
    assert sorted(p.name for p in target.parent.iterdir()) == [b.name]  # no .part left
    assert where == f"sftp://root@127.0.0.1:{sshd.port}{target}"
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_sftp_relative_dir_is_under_the_login_dir(tmp_path, sshd):
    b = bundle(tmp_path)
    deliver(sftp_dest(sshd, dir="site/dr"), b, HOST, Runner())
    assert sha(sshd.root_dir / "site" / "dr" / HOST / b.name) == sha(b)


def test_sftp_keep_prunes_only_this_hosts_oldest(tmp_path, sshd):
    d = sftp_dest(sshd, keep=2)
    hostdir = sshd.root_dir / "bundles" / HOST
    hostdir.mkdir(parents=True)
    unrelated = ["notes.txt", "web1-db-20200101T000000Z.amdr.gpg", "web1-old.amdr.gpg"]
    for n in unrelated:
        (hostdir / n).write_text("not ours to delete")
    stamps = ["20261120T010203Z", "20261121T010203Z", "20261122T010203Z"]
    for st in stamps:
        deliver(d, bundle(tmp_path, st, size=1000), HOST, Runner())
    assert sorted(p.name for p in hostdir.iterdir()) == sorted(
        unrelated + [f"{HOST}-{st}.amdr.gpg" for st in stamps[1:]])


def test_sftp_unknown_host_key_is_refused(tmp_path, sshd):
    kh = tmp_path / "kh-other"
    # the right key, but filed for another port: that is not this server
    kh.write_text(sshd.host_key_line().replace(f"]:{sshd.port} ", "]:2222 ") + "\n")
    with pytest.raises(DeliveryError) as e:
        deliver(sftp_dest(sshd, known_hosts=str(kh)), bundle(tmp_path), HOST, Runner())
    msg = str(e.value)
    assert "UNKNOWN" in msg and f"[127.0.0.1]:{sshd.port} is not in {kh}" in msg
    assert fingerprint(sshd.host_key_pub) in msg
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {kh}" in msg
    assert "CHANGED" not in msg
    assert not any(sshd.root_dir.iterdir())


def test_sftp_missing_known_hosts_is_unknown(tmp_path, sshd):
    kh = tmp_path / "nope" / "known_hosts"
    with pytest.raises(DeliveryError, match=f"UNKNOWN \\({kh} does not exist\\)"):
        deliver(sftp_dest(sshd, known_hosts=str(kh)), bundle(tmp_path), HOST, Runner())
    assert not any(sshd.root_dir.iterdir())


def test_sftp_changed_host_key_is_refused(tmp_path, sshd):
    impostor = keygen(tmp_path / "impostor")
    kh = tmp_path / "kh-changed"
    typ, key = Path(f"{impostor}.pub").read_text().split()[:2]
    kh.write_text(f"# our store\n[127.0.0.1]:{sshd.port} {typ} {key}\n")
    with pytest.raises(DeliveryError) as e:
        deliver(sftp_dest(sshd, known_hosts=str(kh)), bundle(tmp_path), HOST, Runner())
    msg = str(e.value)
    assert "CHANGED" in msg and "man-in-the-middle" in msg and "UNKNOWN" not in msg
    assert fingerprint(sshd.host_key_pub) in msg          # what the server offered
    assert fingerprint(Path(f"{impostor}.pub")) in msg    # what we expected
    assert f"line 2 of {kh}" in msg
    assert not any(sshd.root_dir.iterdir())


def test_sftp_unreachable_is_quick_and_clear(tmp_path, sshd):
    port = free_port()  # nobody listens there
    start = time.monotonic()
    with pytest.raises(DeliveryError) as e:
        deliver(sftp_dest(sshd, port=port), bundle(tmp_path), HOST, Runner())
    assert time.monotonic() - start < 5
    assert f"127.0.0.1:{port}: connection refused" in str(e.value)


def test_sftp_silent_server_times_out(tmp_path, sshd):
    with silent_port() as port:
        start = time.monotonic()
        with pytest.raises(DeliveryError) as e:
            deliver(sftp_dest(sshd, port=port, timeout=1), bundle(tmp_path), HOST, Runner())
        assert time.monotonic() - start < 4
    assert f"no ssh answer from 127.0.0.1:{port} within timeout 1s" in str(e.value)


def test_sftp_wrong_client_key_is_refused(tmp_path, sshd):
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(DeliveryError) as e:
        deliver(sftp_dest(sshd, key_file=str(stranger)), bundle(tmp_path), HOST, Runner())
    msg = str(e.value)
    assert "refused key authentication for user root" in msg and str(stranger) in msg
    assert "PRIVATE KEY" not in msg
    assert not any(sshd.root_dir.iterdir())


def test_sftp_missing_key_file(tmp_path, sshd):
    with pytest.raises(DeliveryError, match="key_file .* does not exist; create it"):
        deliver(sftp_dest(sshd, key_file=str(tmp_path / "none")), bundle(tmp_path), HOST,
                Runner())


def test_sftp_key_with_passphrase_is_refused_before_connecting(tmp_path, sshd):
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass phrase", "-f", str(locked)],
                   check=True)
    with pytest.raises(DeliveryError, match="protected by a passphrase, which cron cannot type"):
        deliver(sftp_dest(sshd, key_file=str(locked)), bundle(tmp_path), HOST, Runner())
    assert "Accepted" not in sshd.log.read_text() and not any(sshd.root_dir.iterdir())


# -- mail -----------------------------------------------------------------------
def password_file(tmp: Path, pw: str) -> Path:
    p = tmp / f"smtp-password-{len(list(tmp.glob('smtp-password-*')))}"
    p.write_text(pw + "\n")
    os.chmod(p, 0o600)
    return p


def mail_dest(srv, **kw) -> dict:
    base = dict(type="mail", smtp_host="127.0.0.1", port=srv.port, security=srv.security,
                ca_file=str(srv.ca_file), to=["dr-team@example.com"], timeout=5)
    return dest(**{**base, **kw})


def attachment(msg):
    atts = list(msg.iter_attachments())
    assert len(atts) == 1
    return atts[0]


def test_mail_starttls_with_auth(tmp_path):
    b = bundle(tmp_path)
    with smtp_server(tmp_path, "starttls", auth=("amdr", "s3cret pass")) as srv:
        d = mail_dest(srv, user="amdr", password_file=str(password_file(tmp_path, "s3cret pass")),
                      **{"from": "amdr@web1.example.com"})
        where = deliver(d, b, HOST, Runner())
        [msg] = srv.messages()
        [env] = srv.envelopes()
    assert where == f"mail to dr-team@example.com via 127.0.0.1:{srv.port} (starttls)"
    assert env == {"mail_from": "amdr@web1.example.com", "rcpt_tos": ["dr-team@example.com"],
                   "tls": True, "auth_user": "amdr"}
    assert msg["Subject"] == "amanda-dr bundle web1 2026-11-22"
    att = attachment(msg)
    assert att.get_filename() == b.name
    assert sha(att.get_content()) == sha(b)
    text = msg.get_body(("plain",)).get_content()
    assert sha(b) in text and "amdr-recover" in text and b.name in text


def test_mail_smtps(tmp_path):
    b = bundle(tmp_path)
    with smtp_server(tmp_path, "ssl", auth=("amdr", "pw")) as srv:
        d = mail_dest(srv, user="amdr", password_file=str(password_file(tmp_path, "pw")))
        deliver(d, b, HOST, Runner())
        [msg] = srv.messages()
        [env] = srv.envelopes()
    assert env["tls"] is True and env["auth_user"] == "amdr"
    assert sha(attachment(msg).get_content()) == sha(b)


def test_mail_wrong_password(tmp_path):
    with smtp_server(tmp_path, "starttls", auth=("amdr", "right")) as srv:
        pw = password_file(tmp_path, "wrong-Pa55")
        with pytest.raises(DeliveryError) as e:
            deliver(mail_dest(srv, user="amdr", password_file=str(pw)), bundle(tmp_path), HOST,
                    Runner())
        assert srv.messages() == []
    msg = str(e.value)
    assert f"127.0.0.1:{srv.port} refused the login of user amdr" in msg and str(pw) in msg
    assert "wrong-Pa55" not in msg


def test_mail_without_starttls_on_server_sends_nothing(tmp_path):
    with smtp_server(tmp_path, "none") as srv:
        d = mail_dest(srv, security="starttls")
        with pytest.raises(DeliveryError, match="does not offer STARTTLS.*nothing was sent"):
            deliver(d, bundle(tmp_path), HOST, Runner())
        assert srv.connections() == 1   # it did ask...
        assert srv.messages() == []     # ...but sent nothing


def test_mail_connection_refused_and_silent_server(tmp_path):
    d = dest(type="mail", port=free_port(), to=["a@example.com"], timeout=1)
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{d['port']}: connection refused"):
        deliver(d, bundle(tmp_path), HOST, Runner())
    with silent_port() as port:
        start = time.monotonic()
        with pytest.raises(DeliveryError, match=f"127.0.0.1:{port} did not answer within "
                                                f"timeout 1s"):
            deliver({**d, "port": port}, bundle(tmp_path), HOST, Runner())
        assert time.monotonic() - start < 4


def test_mail_untrusted_certificate(tmp_path):
    with smtp_server(tmp_path, "starttls") as srv:
        d = mail_dest(srv, ca_file=None)  # system CAs do not know our self-signed cert
        with pytest.raises(DeliveryError, match="certificate .* was not accepted.*ca_file"):
            deliver(d, bundle(tmp_path), HOST, Runner())
        assert srv.messages() == []


def test_mail_too_big_is_refused_before_connecting(tmp_path):
    with smtp_server(tmp_path, "starttls") as srv:
        d = mail_dest(srv, max_size_mb=0.1)
        # 90 kB is under 0.1 MB, but 120 kB once base64-encoded: refused
        with pytest.raises(DeliveryError) as e:
            deliver(d, bundle(tmp_path, size=90_000), HOST, Runner())
        assert srv.connections() == 0 and srv.messages() == []
    msg = str(e.value)
    assert msg.startswith("bundle is 0.09 MB (0.12 MB once base64-encoded for mail), "
                          "above max_size_mb 0.1 for mail:dr-team@example.com")
    assert "use an sftp or local delivery" in msg


# -- local ----------------------------------------------------------------------
def sh(argv, check=True):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=check)


def mounted_at(dev) -> list[str]:
    r = sh(["findmnt", "-n", "-r", "-o", "TARGET", "--source", dev], check=False)
    return r.stdout.split()


def stick_fs() -> str:
    """vfat, as on a real stick, when this kernel has it; ext4 otherwise.

    Why: the kernel these tests were written on has no vfat at all (not in
    /proc/filesystems, no modules), and the delivery code does not depend on
    the filesystem type (`mount -o OPTS DEV DIR` lets mount detect it).
    """
    return "vfat" if "vfat" in Path("/proc/filesystems").read_text().split() else "ext4"


@contextlib.contextmanager
def usb_stick(tmp: Path, size_mb=32):
    """A "USB stick": a loop device over a sparse image with a fresh filesystem."""
    img = tmp / "stick.img"
    with open(img, "wb") as f:
        f.truncate(size_mb << 20)
    if stick_fs() == "vfat":
        sh(["mkfs.vfat", "-n", "AMDRTEST", img])
    else:
        sh(["mkfs.ext4", "-q", "-F", "-L", "AMDRTEST", img])
    loop = sh(["losetup", "-f", "--show", img]).stdout.strip()
    try:
        yield loop
    finally:
        for m in reversed(mounted_at(loop)):
            sh(["umount", m], check=False)
        sh(["losetup", "-d", loop], check=False)


@contextlib.contextmanager
def mounted(dev, where: Path, opts="ro"):
    where.mkdir(parents=True, exist_ok=True)
    sh(["mount", "-o", opts, dev, where])
    try:
        yield where
    finally:
        sh(["umount", where], check=False)


def test_local_dir_with_keep(tmp_path):
    target = tmp_path / "dr" / "bundles"
    d = dest(type="local", dir=str(target), keep=2, create=True)
    stamps = ["20261120T010203Z", "20261121T010203Z", "20261122T010203Z"]
    for i, st in enumerate(stamps):
        if i == 1:
            (target / "README").write_text("leave me")
        b = bundle(tmp_path, st)
        assert deliver(d, b, HOST, Runner()) == f"local:{target / b.name}"
    assert oct(target.stat().st_mode & 0o777) == "0o700"
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["README"] + [f"{HOST}-{st}.amdr.gpg" for st in stamps[1:]])
    assert sha(target / b.name) == sha(b)


def on_root_filesystem(path: Path) -> Path:
    """The tests below need their directory on / (as /mnt/usb is on a real host)."""
    assert os.stat(path).st_dev == os.stat("/").st_dev, f"{path} is not on /"
    return path


def test_local_missing_dir_is_refused_not_created(tmp_path):
    """Issue 11, item 7: an unmounted stick's /mnt/usb/dr was made on /, and filled it."""
    target = tmp_path / "usb" / "dr"
    with pytest.raises(DeliveryError) as e:
        deliver(dest(type="local", dir=str(target)), bundle(tmp_path), HOST, Runner())
    assert f"{target} does not exist. If it is on a USB stick or a network filesystem, " \
           f"mount it; else create it (mkdir -m 700 {target}) or set `create: true`" \
        in str(e.value)
    assert "the bundle stays in the spool" in str(e.value)
    assert not (tmp_path / "usb").exists()


def test_local_removable_dir_on_the_root_filesystem_is_refused(tmp_path):
    target = on_root_filesystem(tmp_path) / "usb"
    target.mkdir()
    with pytest.raises(DeliveryError) as e:
        deliver(dest(type="local", dir=str(target), removable=True), bundle(tmp_path), HOST,
                Runner())
    assert f"{target} is on the root filesystem (" in str(e.value)
    assert "`removable: true`: the medium is not mounted there" in str(e.value)
    assert os.listdir(target) == []
    # create: true does not make it on / either
    missing = tmp_path / "usb" / "amanda-dr"
    with pytest.raises(DeliveryError, match=f"{missing} does not exist and {target} is on the "
                                            f"root filesystem"):
        deliver(dest(type="local", dir=str(missing), removable=True, create=True),
                bundle(tmp_path), HOST, Runner())
    assert not missing.exists()


def test_local_removable_dir_on_a_mounted_medium_is_used_and_created(tmp_path):
    media = on_root_filesystem(tmp_path) / "media"
    media.mkdir()
    sh(["mount", "-t", "tmpfs", "-o", "size=4m", "amdr-test", media])
    try:
        target = media / "amanda-dr"
        b = bundle(tmp_path)
        d = dest(type="local", dir=str(target), removable=True, create=True)
        assert deliver(d, b, HOST, Runner()) == f"local:{target / b.name}"
        assert sha(target / b.name) == sha(b)
    finally:
        sh(["umount", media])


def test_local_usb_stick_mounted_for_the_copy(tmp_path):
    b = bundle(tmp_path)
    mnt = tmp_path / "usb"
    with usb_stick(tmp_path) as loop:
        runner = Runner()
        where = deliver(dest(type="local", dir=str(mnt), device=loop), b, HOST, runner)
        assert where == f"local:{mnt / b.name} on {loop} (mounted for the copy, unmounted again)"
        assert mounted_at(loop) == []
        assert not (mnt / b.name).exists()
        with mounted(loop, tmp_path / "check"):
            assert sha(tmp_path / "check" / b.name) == sha(b)
            assert set(os.listdir(tmp_path / "check")) - {"lost+found"} == {b.name}


def test_local_usb_stick_already_mounted_elsewhere_stays_mounted(tmp_path):
    b = bundle(tmp_path)
    with usb_stick(tmp_path) as loop, mounted(loop, tmp_path / "media", "rw") as media:
        where = deliver(dest(type="local", dir=str(tmp_path / "usb"), device=loop), b, HOST,
                        Runner())
        assert where == f"local:{media / b.name} on {loop} (already mounted)"
        assert mounted_at(loop) == [str(media)]
        assert sha(media / b.name) == sha(b)


def test_local_missing_device(tmp_path):
    d = dest(type="local", dir=str(tmp_path / "usb"), device="/dev/disk/by-label/NO-SUCH-AMDR")
    with pytest.raises(DeliveryError, match="does not exist: is the USB stick plugged in"):
        deliver(d, bundle(tmp_path), HOST, Runner())


def test_local_read_only_target(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    sh(["mount", "-t", "tmpfs", "-o", "ro,size=4m", "amdr-test", ro])
    try:
        with pytest.raises(DeliveryError) as e:
            deliver(dest(type="local", dir=str(ro)), bundle(tmp_path), HOST, Runner())
    finally:
        sh(["umount", ro])
    assert f"{ro} is read-only" in str(e.value) and "0.15 MB" in str(e.value)


def test_local_read_only_stick_is_still_unmounted(tmp_path):
    with usb_stick(tmp_path) as loop:
        d = dest(type="local", dir=str(tmp_path / "usb"), device=loop, mount_options="ro")
        with pytest.raises(DeliveryError, match="is read-only"):
            deliver(d, bundle(tmp_path), HOST, Runner())
        assert mounted_at(loop) == []


def test_local_full_target(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    sh(["mount", "-t", "tmpfs", "-o", "size=64k", "amdr-test", full])
    try:
        with pytest.raises(DeliveryError) as e:
            deliver(dest(type="local", dir=str(full)), bundle(tmp_path, size=300_000), HOST,
                    Runner())
        assert os.listdir(full) == []
    finally:
        sh(["umount", full])
    assert f"not enough space in {full}: the bundle needs 0.30 MB" in str(e.value)
