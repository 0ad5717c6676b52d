"""`amdr-essentials run` end to end: real gpg, the real Amanda lab, real deliveries.

Every run is checked for what cron cannot see: the exit code, the report,
that the plaintext work area is empty afterwards, and that recovery can open
what was delivered.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from essentials import sealed
from essentials.lock import RunLock
from tests.lab.keys import make_keys
from tests.integration.helpers import amdr
from tests.lab.lab import AmandaLab

pytestmark = pytest.mark.integration

SITE_PASS = "correct horse battery staple"


@pytest.fixture(scope="module")
def keys():
    k = make_keys(SITE_PASS)
    yield k
    k.cleanup()


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=64, data_mb=32, swap_mb=8, slots=4, holding_mb=400) as lab:
        lab.backup(force_full=True)
        yield lab


@pytest.fixture
def passfile(tmp_path):
    p = tmp_path / "site-pass"
    p.write_text(SITE_PASS + "\n")
    p.chmod(0o600)
    return p


def make_config(tmp: Path, keys, lab, deliveries, **over) -> Path:
    # the local deliveries' directories are made by the first copy
    deliveries = [dict(d, create=True) if d.get("type") == "local" else d for d in deliveries]
    cfg = {
        "host": "labhost",
        "state_dir": str(tmp / "state"),
        "spool_dir": str(tmp / "spool"),
        "log_file": str(tmp / "log" / "essentials.log"),
        "gpg": {"home": str(keys.host_home), "recipients": [keys.site_fpr],
                "signer": keys.host_fpr},
        "collect": {"layout": {"disks": [lab.loop]},
                    "amanda": {"configs": [lab.name]}},
        "deliveries": deliveries,
    }
    cfg.update(over)
    path = tmp / "essentials.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(config, *extra, env=None):
    return subprocess.run([str(Path(os.sys.executable).parent / "amdr-essentials"), "run",
                           "-c", str(config), *extra], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env)


def no_plaintext_left(tmp: Path):
    work = tmp / "state" / "work"
    assert not work.exists() or list(work.iterdir()) == []
    for p in (tmp / "spool").glob("*"):
        assert p.name.endswith(".amdr.gpg") or p.name.endswith(".amdr.gpg.state"), p


def bundles_in(d: Path) -> list[Path]:
    return sorted(d.glob("labhost-*.amdr.gpg"))


def test_run_seals_delivers_and_recovery_opens_it(tmp_path, keys, lab, passfile):
    out = tmp_path / "usb"
    config = make_config(tmp_path, keys, lab, [{"type": "local", "dir": str(out)}])
    p = run(config)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "amdr-essentials run on labhost: ok (exit 0)" in p.stdout
    [b] = bundles_in(out)
    assert b.stat().st_mode & 0o777 == 0o600
    assert list((tmp_path / "spool").iterdir()) == []  # delivered everywhere: spool empty
    no_plaintext_left(tmp_path)

    bundle, sig = sealed.unseal(b, keys.recovery_home, SITE_PASS)
    try:
        assert sig.fingerprint == keys.host_fpr
        m = bundle.manifest
        assert m["host"] == "labhost"
        assert {n: s["status"] for n, s in m["collectors"].items()} == {
            "etc": "ok", "layout": "ok", "packages": "ok", "network": "ok",
            "capabilities": "ok", "amanda": "ok"}
        files = set(m["files"])
        assert {"etc.tar", "layout.yaml", "network/network.yaml", "system/capabilities.yaml",
                f"amanda/{lab.name}/amanda.conf",
                f"amanda/{lab.name}/tapelist", f"amanda/{lab.name}/export.txt"} <= files
        layout = bundle.load_yaml("layout.yaml")
        assert [d["path"] for d in layout["disks"]] == [lab.loop]
        # the tar's first member is the manifest
        assert list(bundle.root.iterdir())
    finally:
        import shutil
        shutil.rmtree(bundle.root, ignore_errors=True)

    log = (tmp_path / "log" / "essentials.log")
    assert log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    assert "delivered" in text and SITE_PASS not in text

    # recovery reads the sealed file directly
    r = amdr("amdr-recover", "plan", "--bundle", b, "--gnupghome", keys.recovery_home,
             "--passphrase-file", passfile, "--target", tmp_path / "target")
    assert r.returncode == 0, r.stderr
    assert "labhost" in r.stdout or lab.loop in r.stdout

    # nothing changed on the disks since: check says so with exit 0
    c = amdr("amdr-essentials", "check", "-c", config)
    assert c.returncode == 0, c.stdout + c.stderr
    assert "unchanged" in c.stdout


def test_check_reports_a_changed_label(tmp_path, keys, lab):
    config = make_config(tmp_path, keys, lab, [{"type": "local", "dir": str(tmp_path / "o")}])
    c = amdr("amdr-essentials", "check", "-c", config)
    assert c.returncode == 1 and "no bundle has been delivered" in c.stdout
    assert run(config).returncode == 0
    subprocess.run(["e2label", lab.part(2), "changed-lab"], check=True)
    try:
        c = amdr("amdr-essentials", "check", "-c", config)
        assert c.returncode == 1, c.stdout + c.stderr
        assert "'lab-data' -> 'changed-lab'" in c.stdout
    finally:
        subprocess.run(["e2label", lab.part(2), "lab-data"], check=True)
    assert amdr("amdr-essentials", "check", "-c", config).returncode == 0


def test_failed_delivery_waits_in_spool_and_is_retried(tmp_path, keys, lab):
    good, flaky = tmp_path / "good", tmp_path / "flaky"
    flaky.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=8m", "tmpfs", str(flaky)],
                   check=True)
    try:
        config = make_config(tmp_path, keys, lab, [
            {"type": "local", "name": "good", "dir": str(good)},
            {"type": "local", "name": "flaky", "dir": str(flaky)}])
        p = run(config)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "flaky" in p.stderr and "FAILED" in p.stderr
        assert "waiting in the spool" in p.stderr
        [first] = bundles_in(tmp_path / "spool")
        assert bundles_in(good) == [good / first.name]
        no_plaintext_left(tmp_path)
        subprocess.run(["mount", "-o", "remount,rw", str(flaky)], check=True)
        p = run(config)
        assert p.returncode == 0, p.stdout + p.stderr
        names = [b.name for b in bundles_in(flaky)]
        assert first.name in names and len(names) == 2  # the old one caught up
        assert bundles_in(tmp_path / "spool") == []
        assert len(bundles_in(good)) == 2  # not delivered twice to the good one
    finally:
        subprocess.run(["umount", str(flaky)])


def test_missing_recipient_key_is_a_config_error(tmp_path, keys, lab):
    config = make_config(tmp_path, keys, lab, [{"type": "local", "dir": str(tmp_path / "o")}])
    cfg = yaml.safe_load(config.read_text())
    cfg["gpg"]["recipients"] = ["0000111122223333444455556666777788889999"]
    config.write_text(yaml.safe_dump(cfg))
    p = run(config)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "gpg.recipients: no public key '0000111122223333444455556666777788889999'" in p.stderr
    assert not (tmp_path / "o").exists()
    no_plaintext_left(tmp_path)


def test_config_typo_names_file_and_key(tmp_path, keys, lab):
    config = make_config(tmp_path, keys, lab, [{"type": "local", "dir": str(tmp_path / "o")}])
    config.write_text(config.read_text().replace("recipients:", "recipents:"))
    p = run(config)
    assert p.returncode == 2
    assert f"{config}: gpg.recipents: unknown key (did you mean 'recipients'?)" in p.stderr


def test_unwritable_spool_fails_before_collecting(tmp_path, keys, lab):
    spool = tmp_path / "spool"
    spool.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(spool)],
                   check=True)
    try:
        config = make_config(tmp_path, keys, lab,
                             [{"type": "local", "dir": str(tmp_path / "o")}])
        p = run(config)
        assert p.returncode == 3, p.stdout + p.stderr
        assert f"spool_dir {spool} is not writable" in p.stderr
        no_plaintext_left(tmp_path)
        assert not (tmp_path / "o").exists()
    finally:
        subprocess.run(["umount", str(spool)])


def test_a_second_run_is_refused_while_one_holds_the_lock(tmp_path, keys, lab):
    config = make_config(tmp_path, keys, lab, [{"type": "local", "dir": str(tmp_path / "o")}])
    with RunLock(tmp_path / "state" / "lock"):
        p = run(config)
    assert p.returncode == 3
    assert "another amdr-essentials run holds" in p.stderr and f"pid {os.getpid()}" in p.stderr
    assert not (tmp_path / "o").exists()


def test_missing_tool_fails_one_collector_only(tmp_path, keys, lab):
    """A PATH without dpkg/rpm: packages fails with the package to install, the rest goes."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    hidden = {"dpkg", "dpkg-query", "apt-mark", "rpm"}
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(d) or os.path.islink(d):
            continue
        for name in os.listdir(d):
            if name not in hidden and not (bindir / name).exists():
                (bindir / name).symlink_to(os.path.join(d, name))
    out = tmp_path / "o"
    config = make_config(tmp_path, keys, lab, [{"type": "local", "dir": str(out)}])
    env = dict(os.environ, PATH=str(bindir))
    p = run(config, env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert re.search(r"^  packages +failed", p.stderr, re.M) and "not installed" in p.stderr
    [b] = bundles_in(out)
    bundle, _ = sealed.unseal(b, keys.recovery_home, SITE_PASS)
    st = bundle.manifest["collectors"]
    assert st["packages"]["status"] == "failed" and "not installed" in st["packages"]["error"]
    assert st["layout"]["status"] == "ok" and st["etc"]["status"] == "ok"


def test_sftp_mail_and_usb_each_get_a_bundle_recovery_can_open(tmp_path, keys, lab):
    """The three deliveries at once; every copy decrypts and verifies."""
    from tests.integration.servers import smtp_server, sshd_server
    pw = tmp_path / "smtp-password"
    pw.write_text("mail s3cret\n")
    pw.chmod(0o600)
    with sshd_server(tmp_path / "ssh") as s, \
            smtp_server(tmp_path / "smtp", "starttls", auth=("amdr", "mail s3cret")) as m:
        config = make_config(tmp_path, keys, lab, [
            {"type": "sftp", "name": "store", "host": s.host, "port": s.port, "user": s.user,
             "key_file": str(s.client_key), "known_hosts": str(s.known_hosts),
             "dir": "bundles", "timeout": 5},
            {"type": "mail", "name": "dr-mail", "smtp_host": "127.0.0.1", "port": m.port,
             "security": "starttls", "ca_file": str(m.ca_file), "user": "amdr",
             "password_file": str(pw), "to": ["dr-team@example.com"]},
            {"type": "local", "name": "usb", "dir": str(tmp_path / "usb")}])
        p = run(config, "--quiet")
        assert p.returncode == 0, p.stdout + p.stderr
        assert p.stdout == "" and p.stderr == ""  # --quiet: cron mails nothing
        [on_usb] = bundles_in(tmp_path / "usb")
        [on_sftp] = bundles_in(s.root_dir / "bundles" / "labhost")
        [msg] = m.messages()
        [att] = [part for part in msg.walk() if part.get_filename()]
        assert att.get_filename() == on_usb.name
        from_mail = tmp_path / on_usb.name
        from_mail.write_bytes(att.get_payload(decode=True))
        for copy in (on_usb, on_sftp, from_mail):
            assert copy.read_bytes() == on_usb.read_bytes()
            b, sig = sealed.unseal(copy, keys.recovery_home, SITE_PASS)
            assert sig.fingerprint == keys.host_fpr and b.has("etc.tar")
        log = (tmp_path / "log" / "essentials.log").read_text()
        assert "mail s3cret" not in log
        no_plaintext_left(tmp_path)


def test_unreachable_sftp_server_is_retried_on_the_next_run(tmp_path, keys, lab):
    from tests.integration.servers import free_port, sshd_server
    with sshd_server(tmp_path / "ssh") as s:
        known, key, user = s.known_hosts, s.client_key, s.user
        sftp = {"type": "sftp", "name": "store", "host": "127.0.0.1", "port": free_port(),
                "user": user, "key_file": str(key), "known_hosts": str(known),
                "dir": "bundles", "timeout": 3}
        config = make_config(tmp_path, keys, lab,
                             [sftp, {"type": "local", "name": "usb", "dir": str(tmp_path / "u")}])
        p = run(config)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "store" in p.stderr and "FAILED" in p.stderr and "127.0.0.1" in p.stderr
        [waiting] = bundles_in(tmp_path / "spool")
        # the server is back (the right port this time)
        cfg = yaml.safe_load(config.read_text())
        cfg["deliveries"][0]["port"] = s.port
        cfg["deliveries"][0]["known_hosts"] = str(s.known_hosts)
        config.write_text(yaml.safe_dump(cfg))
        p = run(config)
        assert p.returncode == 0, p.stdout + p.stderr
        names = [b.name for b in bundles_in(s.root_dir / "bundles" / "labhost")]
        assert waiting.name in names and len(names) == 2
        assert bundles_in(tmp_path / "spool") == []


def test_changed_host_key_is_refused_and_nothing_is_uploaded(tmp_path, keys, lab):
    from tests.integration.servers import keygen, sshd_server
    with sshd_server(tmp_path / "ssh") as s:
        other = keygen(tmp_path / "other_host_key")
        pub = Path(str(other) + ".pub").read_text().split()
        bad_known = tmp_path / "known_hosts"
        bad_known.write_text(f"[127.0.0.1]:{s.port} {pub[0]} {pub[1]}\n")
        config = make_config(tmp_path, keys, lab, [
            {"type": "sftp", "name": "store", "host": "127.0.0.1", "port": s.port,
             "user": s.user, "key_file": str(s.client_key), "known_hosts": str(bad_known),
             "dir": "bundles", "timeout": 5}])
        p = run(config)
        assert p.returncode == 3, p.stdout + p.stderr  # delivered nowhere
        assert "changed" in p.stderr.lower() and str(bad_known) in p.stderr
        assert not (s.root_dir / "bundles").exists()
        assert len(bundles_in(tmp_path / "spool")) == 1  # kept for the next run
        no_plaintext_left(tmp_path)


def test_install_cron_and_systemd_timer(tmp_path):
    p = amdr("amdr-essentials", "install-cron", "--sysroot", tmp_path, "--time", "21:15",
             "--weekday", "sat", "--check-daily")
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "etc/cron.d/amanda-dr-essentials").read_text()
    assert "15 21 * * 6 root " in text and " run --quiet --random-delay 1800" in text
    assert " check --quiet || " in text
    d = tmp_path / "etc/systemd/system"
    p = amdr("amdr-essentials", "install-cron", "--systemd", "--sysroot", tmp_path)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "etc/cron.d/amanda-dr-essentials").exists()
    timer = (d / "amanda-dr-essentials.timer").read_text()
    assert "RandomizedDelaySec=1800" in timer and "Persistent=true" in timer
    assert "run --quiet" in (d / "amanda-dr-essentials.service").read_text()


def test_signing_key_with_a_passphrase_file(tmp_path, keys, lab):
    """A host key protected by a passphrase: read from a root-only file; a wrong one
    makes no bundle and says why; a world-readable file is refused before collecting."""
    from tests.lab.keys import kill_agent, make_key, move_public, new_home
    home = new_home("hostpw")
    try:
        fpr = make_key(home, "amdr host2 <root@host2.test>", "host key words")
        move_public(keys.recovery_home, home, keys.site_fpr)
        pf = tmp_path / "signing-pass"
        pf.write_text("host key words\n")
        pf.chmod(0o600)
        out = tmp_path / "o"
        config = make_config(tmp_path, keys, lab, [{"type": "local", "dir": str(out)}],
                             gpg={"home": str(home), "recipients": [keys.site_fpr],
                                  "signer": fpr, "passphrase_file": str(pf)})
        p = run(config)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "host key words" not in (tmp_path / "log" / "essentials.log").read_text()
        pf.write_text("wrong words\n")
        p = run(config)
        assert p.returncode == 3, p.stdout + p.stderr
        assert "bundle: none" in p.stderr
        assert f"the passphrase in {pf} does not unlock the signing key {fpr}" in p.stderr
        no_plaintext_left(tmp_path)
        pf.chmod(0o644)
        p = run(config)
        assert p.returncode == 2 and "readable by others" in p.stderr
        no_plaintext_left(tmp_path)
        assert len(bundles_in(out)) == 1
    finally:
        kill_agent(home)
        import shutil
        shutil.rmtree(home, ignore_errors=True)


def test_the_hosts_secret_signing_key_stays_out_of_etc_tar(tmp_path):
    """Opening a bundle with the recovery key must not give the power to sign as the host."""
    import tarfile
    from essentials import agent, config
    from essentials.runner import Runner
    etc = tmp_path / "etc"
    home = etc / "amanda-dr" / "gnupg"
    (home / "private-keys-v1.d").mkdir(parents=True)
    (home / "private-keys-v1.d" / "ABC.key").write_text("secret key material")
    (home / "pubring.kbx").write_text("public")
    (etc / "hostname").write_text("h\n")
    cfg = config.validate({"gpg": {"home": str(home), "recipients": ["x"], "signer": "y"}})
    staging = tmp_path / "staging"
    staging.mkdir()
    st = agent.collect_all(cfg, Runner(), staging, only=["etc"], etc=etc)
    assert st["etc"]["status"] == "ok", st
    with tarfile.open(staging / "etc.tar") as tf:
        names = tf.getnames()
    assert "etc/hostname" in names and "etc/amanda-dr/gnupg/pubring.kbx" in names
    assert not any("private-keys-v1.d" in n for n in names)
    assert agent.signing_key_excludes(cfg, Path("/srv")) == []


def decrypt(path: Path, keys, out: Path) -> Path:
    p = subprocess.run(["gpg", "--homedir", str(keys.recovery_home), "--batch", "--no-tty",
                        "--pinentry-mode", "loopback", "--passphrase-fd", "0",
                        "--status-fd", "2", "--output", str(out), "--decrypt", str(path)],
                       input=SITE_PASS + "\n", capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert f"VALIDSIG {keys.host_fpr}" in p.stderr  # signed by the host, as its bundle
    return out


def test_the_runbook_travels_beside_the_bundle_to_every_delivery(tmp_path, keys, lab):
    """runbook: format pdf, sealed: each delivery (sftp, mail, USB) gets the
    bundle and, beside it, HOST-TIME.runbook.pdf.gpg; decrypted it is the
    host's runbook with its disk's UUIDs and its volumes; the spool is empty
    after and no plaintext is left."""
    from tests.integration.servers import smtp_server, sshd_server
    from tests.lab.lab import ROOT_UUID
    with sshd_server(tmp_path / "ssh") as s, smtp_server(tmp_path / "smtp", "none") as m:
        config = make_config(tmp_path, keys, lab, [
            {"type": "sftp", "name": "store", "host": s.host, "port": s.port, "user": s.user,
             "key_file": str(s.client_key), "known_hosts": str(s.known_hosts),
             "dir": "bundles", "timeout": 5},
            {"type": "mail", "name": "dr-mail", "smtp_host": "127.0.0.1", "port": m.port,
             "security": "none", "to": ["dr-team@example.com"]},
            {"type": "local", "name": "usb", "dir": str(tmp_path / "usb")}],
            runbook={"format": "pdf"})
        p = run(config)
        assert p.returncode == 0, p.stdout + p.stderr
        [b] = bundles_in(tmp_path / "usb")
        name = b.name.removesuffix(".amdr.gpg") + ".runbook.pdf.gpg"
        assert f"runbook: {name}" in p.stdout
        on_usb = tmp_path / "usb" / name
        on_sftp = s.root_dir / "bundles" / "labhost" / name
        [msg] = m.messages()
        atts = {part.get_filename(): part.get_payload(decode=True) for part in msg.walk()
                if part.get_filename()}
        assert set(atts) == {b.name, name}
        assert f"Its runbook is attached too: {name}" in msg.get_body().get_content()
        for copy in (on_usb, on_sftp):
            assert copy.read_bytes() == atts[name]
        assert on_usb.stat().st_mode & 0o777 == 0o600
        pdf = decrypt(on_usb, keys, tmp_path / "runbook.pdf")
        assert pdf.read_bytes().startswith(b"%PDF")
        text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                                       text=True, check=True).stdout.split())
        assert ROOT_UUID in text and "6. By hand" in text
        assert b.name in text  # the live steps name the bundle as delivered
        for d in lab.dumps_of(lab.runs[-1].datestamp):
            for part in d.parts:
                assert f"-f {part.filenum} -l {part.label}" in text, part
        assert list((tmp_path / "spool").iterdir()) == []
        no_plaintext_left(tmp_path)


def test_a_plain_runbook_is_ready_to_print_and_pruned_with_its_bundle(tmp_path, keys, lab):
    """runbook: html, sealed: false: the USB stick holds it as is (no secret in
    it); with keep 1 the second run removes the first bundle and its runbook."""
    usb = tmp_path / "usb"
    config = make_config(tmp_path, keys, lab, [{"type": "local", "dir": str(usb), "keep": 1}],
                         runbook={"format": "html", "sealed": False})
    first = run(config)
    assert first.returncode == 0, first.stdout + first.stderr
    [b1] = bundles_in(usb)
    html = usb / (b1.name.removesuffix(".amdr.gpg") + ".runbook.html")
    doc = html.read_text()
    assert "6. By hand" in doc and "mkfs.ext4" in doc
    # the bundle's etc.tar holds this machine's /etc/shadow: none of its lines,
    # none of its hashes is here
    shadow = [ln for ln in Path("/etc/shadow").read_text().splitlines() if ln.count(":") >= 8]
    assert shadow
    leaked = [ln for ln in shadow if ln in doc or (len(ln.split(":")[1]) > 3
                                                   and ln.split(":")[1] in doc)]
    assert leaked == []
    import time
    time.sleep(1.1)  # the next bundle's name has a later second
    second = run(config)
    assert second.returncode == 0, second.stdout + second.stderr
    [b2] = bundles_in(usb)
    assert b2 != b1
    assert sorted(p.name for p in usb.iterdir()) == sorted(
        [b2.name, b2.name.removesuffix(".amdr.gpg") + ".runbook.html"])
    no_plaintext_left(tmp_path)
