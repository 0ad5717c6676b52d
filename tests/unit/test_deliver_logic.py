"""The pure parts of delivery: names, pruning, known_hosts lookup, sizes, mounts."""

import base64
import email
import email.policy
import hashlib
import json

import pytest
from paramiko.hostkeys import HostKeys

from essentials import config
from essentials.deliver import (DeliveryError, bundle_date, bundle_stamp, deliver, mb,
                                part_name, to_prune)
from essentials.deliver.local import choose_mountpoint, mountpoints, space_complaint
from essentials.deliver.mail import build_message, encoded_size, size_complaint, subject
from essentials.deliver.sftp import _rename, host_key_name, known_hosts_lines
from essentials.runner import Runner


def b(host, stamp):
    return f"{host}-{stamp}.amdr.gpg"


# -- names and pruning ------------------------------------------------------------
def test_bundle_stamp_is_strict_about_the_host():
    assert bundle_stamp(b("web1", "20261122T010203Z"), "web1") == "20261122T010203Z"
    assert bundle_stamp(b("web1-db", "20261122T010203Z"), "web1") is None
    assert bundle_stamp(b("web1-db", "20261122T010203Z"), "web1-db") == "20261122T010203Z"
    assert bundle_stamp("web1-20261122T010203Z.amdr.gpg.part", "web1") is None
    assert bundle_stamp(part_name(b("web1", "20261122T010203Z")), "web1") is None
    assert bundle_stamp("web1-latest.amdr.gpg", "web1") is None
    assert bundle_stamp("a.b-20261122T010203Z.amdr.gpg", "a.b") == "20261122T010203Z"
    assert bundle_stamp("axb-20261122T010203Z.amdr.gpg", "a.b") is None  # dot is literal


def test_bundle_date_and_subject():
    assert bundle_date(b("web1", "20261122T010203Z"), "web1") == "2026-11-22"
    assert subject("web1", b("web1", "20261122T235959Z")) == "amanda-dr bundle web1 2026-11-22"
    with pytest.raises(DeliveryError, match="not a bundle name of host web1"):
        subject("web1", "web1.tar")


def test_to_prune_keeps_the_newest_and_ignores_others():
    names = [b("web1", s) for s in ("20261120T000000Z", "20261122T000000Z",
                                    "20261121T000000Z", "20251231T235959Z")]
    others = ["notes.txt", b("web1-db", "20200101T000000Z"), ".web1-20200101T000000Z.amdr.gpg.part",
              "web1-x.amdr.gpg"]
    assert to_prune(names + others, "web1", 2) == [b("web1", "20251231T235959Z"),
                                                   b("web1", "20261120T000000Z")]
    assert to_prune(names + others, "web1", 4) == []
    assert to_prune(names + others, "web1", 10) == []
    assert to_prune(others, "web1", 1) == []
    assert to_prune(names, "web1", 1) == [b("web1", s) for s in (
        "20251231T235959Z", "20261120T000000Z", "20261121T000000Z")]


def test_to_prune_never_removes_the_bundle_just_delivered():
    # the clock went backwards: the new bundle looks oldest, but it stays
    new = b("web1", "20200101T000000Z")
    names = [new, b("web1", "20261121T000000Z"), b("web1", "20261122T000000Z")]
    assert to_prune(names, "web1", 2, protect=new) == [b("web1", "20261121T000000Z")]
    assert to_prune(names, "web1", 1, protect=new) == [b("web1", "20261121T000000Z"),
                                                       b("web1", "20261122T000000Z")]


def test_mb_unit():
    assert mb(1_500_000) == "1.50 MB"


# -- known_hosts ----------------------------------------------------------------------
KEY_A = "AAAAC3NzaC1lZDI1NTE5AAAAIA" + "a" * 42
KEY_B = "AAAAC3NzaC1lZDI1NTE5AAAAIB" + "b" * 42


def test_host_key_name_brackets_other_ports_only():
    assert host_key_name("store.example.com", 22) == "store.example.com"
    assert host_key_name("10.0.0.5", 2222) == "[10.0.0.5]:2222"


def test_known_hosts_lines_with_ports_lists_and_hashes():
    hashed = HostKeys.hash_host("[store]:2222")
    text = "\n".join([
        "# comment line",
        f"store ssh-ed25519 {KEY_A}",                         # 2: port 22 only
        f"[store]:2222 ssh-ed25519 {KEY_B}",                  # 3
        f"other,[store]:2222 ecdsa-sha2-nistp256 {KEY_A}",    # 4: in a list
        f"[store]:22222 ssh-ed25519 {KEY_A}",                 # 5: another port
        f"{hashed} ssh-rsa {KEY_B}",                          # 6: hashed
        f"@cert-authority [store]:2222 ssh-ed25519 {KEY_A}",  # 7: marker, not a host key
        "",
        "[store]:2222",                                       # 9: broken line
    ])
    assert known_hosts_lines(text, "store", 2222) == [
        (3, "ssh-ed25519", KEY_B), (4, "ecdsa-sha2-nistp256", KEY_A), (6, "ssh-rsa", KEY_B)]
    assert known_hosts_lines(text, "store", 22) == [(2, "ssh-ed25519", KEY_A)]
    assert known_hosts_lines(text, "elsewhere", 2222) == []


class FakeSftp:
    """Just enough of paramiko's SFTPClient to follow the rename decisions."""

    def __init__(self, files, posix=True):
        self.files, self.posix, self.calls = set(files), posix, []

    def posix_rename(self, a, b):
        self.calls.append(("posix_rename", a, b))
        if not self.posix:
            raise OSError("Operation unsupported")
        self.files.discard(a)
        self.files.add(b)

    def remove(self, p):
        self.calls.append(("remove", p))
        if p not in self.files:
            raise FileNotFoundError(2, "No such file")
        self.files.discard(p)

    def rename(self, a, b):
        self.calls.append(("rename", a, b))
        if b in self.files:
            raise OSError("Failure")  # plain SFTP rename refuses to overwrite
        self.files.discard(a)
        self.files.add(b)


def test_rename_uses_posix_rename_when_the_server_has_it():
    f = FakeSftp({"d/.x.part", "d/x"})
    _rename(f, "d/.x.part", "d/x", "here")
    assert f.calls == [("posix_rename", "d/.x.part", "d/x")] and f.files == {"d/x"}


def test_rename_without_posix_rename_removes_a_stale_target_first():
    f = FakeSftp({"d/.x.part", "d/x"}, posix=False)
    _rename(f, "d/.x.part", "d/x", "here")
    assert [c[0] for c in f.calls] == ["posix_rename", "remove", "rename"]
    assert f.files == {"d/x"}
    f = FakeSftp({"d/.x.part"}, posix=False)  # no stale target: fine too
    _rename(f, "d/.x.part", "d/x", "here")
    assert f.files == {"d/x"}


# -- mail -------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 2, 3, 56, 57, 58, 1000, 123_457])
def test_encoded_size_matches_mime_base64(n):
    data = bytes(range(256)) * (n // 256 + 1)
    assert encoded_size(n) == len(base64.encodebytes(data[:n]).replace(b"\n", b"\r\n"))


def test_size_limit_is_on_the_encoded_size():
    assert size_complaint(700_000, 1, "mail:a@b") is None
    msg = size_complaint(800_000, 1, "mail:a@b")  # under 1 MB, but not once encoded
    assert msg.startswith("bundle is 0.80 MB (1.09 MB once base64-encoded for mail), above "
                          "max_size_mb 1 for mail:a@b; use an sftp or local delivery")
    assert size_complaint(30_000_000, 20.5, "mail:a@b").startswith("bundle is 30.00 MB")


def mail_dest(**kw):
    cfg = config.validate({"gpg": {"recipients": ["X"], "signer": "Y"},
                           "deliveries": [{"type": "mail", "to": ["dr@example.com"], **kw}]})
    return cfg["deliveries"][0]


def test_build_message():
    data = bytes(range(256)) * 40
    name = b("web1", "20261122T010203Z")
    msg = build_message(mail_dest(**{"from": "amdr@web1.example.com"}), "web1", name, data)
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "amanda-dr bundle web1 2026-11-22"
    assert parsed["From"] == "amdr@web1.example.com" and parsed["To"] == "dr@example.com"
    [att] = parsed.iter_attachments()
    assert att.get_filename() == name and att.get_content_type() == "application/octet-stream"
    assert att.get_content() == data
    text = parsed.get_body(("plain",)).get_content()
    assert hashlib.sha256(data).hexdigest() in text and "amdr-recover" in text
    assert "10240 bytes" in text and "host:    web1" in text


def test_default_sender_is_root_at_fqdn(monkeypatch):
    monkeypatch.setattr("socket.getfqdn", lambda: "web1.example.com")
    msg = build_message(mail_dest(), "web1", b("web1", "20261122T010203Z"), b"x")
    assert msg["From"] == "root@web1.example.com"


# -- local ------------------------------------------------------------------------
def test_mountpoints_from_findmnt():
    out = json.dumps({"filesystems": [{"target": "/media/usb"}, {"target": "/mnt/x y"}]})
    assert mountpoints(out) == ["/media/usb", "/mnt/x y"]
    assert mountpoints("") == []  # findmnt prints nothing (exit 1) when not mounted


def test_choose_mountpoint():
    assert choose_mountpoint("/mnt/usb", []) == ("/mnt/usb", True)
    assert choose_mountpoint("/mnt/usb/", ["/media/a", "/mnt/usb"]) == ("/mnt/usb", False)
    assert choose_mountpoint("/mnt/usb", ["/media/a"]) == ("/media/a", False)


def test_space_complaint():
    assert space_complaint("/mnt/usb", 1000, 1000) is None
    assert space_complaint("/mnt/usb", 2_000_000, 500_000) == (
        "not enough space in /mnt/usb: the bundle needs 2.00 MB, only 0.50 MB free; "
        "remove old files there, lower `keep`, or use a bigger medium")


# -- dispatch -----------------------------------------------------------------------
def test_deliver_refuses_a_missing_or_misnamed_bundle(tmp_path):
    d = config.validate({"gpg": {"recipients": ["X"], "signer": "Y"},
                         "deliveries": [{"type": "local", "dir": str(tmp_path / "out")}]}
                        )["deliveries"][0]
    with pytest.raises(DeliveryError, match="does not exist"):
        deliver(d, tmp_path / b("web1", "20261122T010203Z"), "web1", Runner(dry_run=True))
    other = tmp_path / b("web2", "20261122T010203Z")
    other.write_bytes(b"x")
    with pytest.raises(DeliveryError, match="not a bundle name of host web1"):
        deliver(d, other, "web1", Runner(dry_run=True))
    with pytest.raises(DeliveryError, match="unknown type 'ftp'"):
        deliver({**d, "type": "ftp"}, other, "web2", Runner(dry_run=True))
    assert not (tmp_path / "out").exists()


def test_delivery_error_exit_code():
    from essentials.errors import EXIT_FAILED, AmdrError
    assert issubclass(DeliveryError, AmdrError) and DeliveryError.exit_code == EXIT_FAILED


# -- the runbook beside its bundle -------------------------------------------------
def test_runbook_names_belong_to_their_bundle_only():
    from essentials.sealed import companion_of, parse_name, runbook_name
    bundle = b("web1", "20261122T010203Z")
    assert runbook_name(bundle, "pdf", True) == "web1-20261122T010203Z.runbook.pdf.gpg"
    assert runbook_name(bundle, "html", False) == "web1-20261122T010203Z.runbook.html"
    for n in (runbook_name(bundle, "pdf", True), runbook_name(bundle, "html", False)):
        assert companion_of(n) == bundle
        assert parse_name(n) is None and bundle_stamp(n, "web1") is None  # never a bundle
    assert companion_of("web1-20261122T010203Z.runbook.") is None
    assert companion_of("web1-latest.runbook.pdf") is None
    assert companion_of("notes.runbook.txt") is None
    assert companion_of("web1-20261122T010203Z.runbook.notes.txt") is None  # a person's
    assert companion_of("web1-20261122T010203Z.runbook.pdf.gpg.part") is None
    assert companion_of(bundle) is None


def test_to_prune_takes_a_pruned_bundles_runbook_with_it_and_no_other():
    from essentials.sealed import runbook_name
    old, new = b("web1", "20261120T000000Z"), b("web1", "20261122T000000Z")
    other = b("web1-db", "20261101T000000Z")
    names = [new, old, runbook_name(old, "pdf", True), runbook_name(new, "pdf", True),
             runbook_name(old, "html", False), other, runbook_name(other, "pdf", True)]
    assert to_prune(names, "web1", 1) == [old, runbook_name(old, "html", False),
                                          runbook_name(old, "pdf", True)]
    assert to_prune(names, "web1", 2) == []


def test_mail_carries_the_runbook_as_a_second_attachment():
    cfg = config.validate({"gpg": {"recipients": ["A"], "signer": "B"},
                           "deliveries": [{"type": "mail", "to": ["dr@example.com"]}]})
    dest = cfg["deliveries"][0]
    bundle = b("web1", "20261122T010203Z")
    rb = "web1-20261122T010203Z.runbook.pdf"
    msg = build_message(dest, "web1", bundle, b"sealed", [(rb, b"%PDF-1.7 runbook")])
    atts = {p.get_filename(): (p.get_content_type(), p.get_payload(decode=True))
            for p in msg.walk() if p.get_filename()}
    assert atts == {bundle: ("application/octet-stream", b"sealed"),
                    rb: ("application/pdf", b"%PDF-1.7 runbook")}
    body = msg.get_body(("plain",)).get_content()
    assert f"Its runbook is attached too: {rb}" in body and "print it" in body


def test_runbook_config_is_checked():
    base = {"gpg": {"recipients": ["A"], "signer": "B"},
            "deliveries": [{"type": "local", "dir": "/media/usb"}]}
    assert config.validate(base)["runbook"] == {"format": "none", "sealed": True}
    cfg = config.validate(dict(base, runbook={"format": "pdf", "sealed": False}))
    assert cfg["runbook"] == {"format": "pdf", "sealed": False}
    with pytest.raises(config.ConfigError, match="runbook.format.*pdf"):
        config.validate(dict(base, runbook={"format": "docx"}))


def test_a_runbook_too_large_for_the_mail_stays_out_and_the_bundle_goes(tmp_path, monkeypatch):
    from essentials.deliver import mail
    cfg = config.validate({"gpg": {"recipients": ["A"], "signer": "B"},
                           "deliveries": [{"type": "mail", "to": ["dr@example.com"],
                                           "max_size_mb": 1}]})
    dest = cfg["deliveries"][0]
    bundle = tmp_path / b("web1", "20261122T010203Z")
    bundle.write_bytes(b"s" * 300_000)
    rb = tmp_path / "web1-20261122T010203Z.runbook.pdf"
    rb.write_bytes(b"%PDF" + b"r" * 600_000)  # with the bundle: above 1 MB once encoded
    sent = []

    class SMTP:
        def quit(self):
            pass
    monkeypatch.setattr(mail, "_open", lambda d: SMTP())
    monkeypatch.setattr(mail, "_login", lambda smtp, d: None)
    monkeypatch.setattr(mail, "_send", lambda smtp, d, msg: sent.append(msg))
    where = mail.deliver(dest, bundle, "web1", Runner(), [rb])
    [msg] = sent
    assert [p.get_filename() for p in msg.walk() if p.get_filename()] == [bundle.name]
    assert f"{rb.name} NOT delivered" in where and "max_size_mb 1" in where


def test_a_runbook_that_cannot_be_copied_is_said_and_never_stops_the_bundle(tmp_path):
    from essentials.deliver import local
    rb = tmp_path / "web1-20261122T010203Z.runbook.pdf"
    rb.write_bytes(b"%PDF")
    gone = tmp_path / "unplugged"  # the stick went away between the two copies
    note = local._companions("usb", [rb], gone)
    assert note.startswith(f"; {rb.name} NOT delivered: usb: ")
    ok = tmp_path / "stick"
    ok.mkdir()
    assert local._companions("usb", [rb], ok) == "" and (ok / rb.name).read_bytes() == b"%PDF"
