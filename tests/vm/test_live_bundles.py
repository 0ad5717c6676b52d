"""Bundles found by themselves when the live ISO boots: on a USB stick (FAT,
as a person brings one), in an mbox file on it (the mail amdr-essentials
sent), from an sftp server (a real sshd on the host side of qemu's user
network, its host key pinned in the answers file on the stick), and a bundle
signed by a key that is not accepted, listed as refused with the reason.

The answers file on the stick names no host: the live system lists what it
found, checked with the key on the stick, and waits for a person (nothing is
wiped).  Judged by the console lines amdr-media prints before anyone logs in.
"""

from __future__ import annotations

import mailbox
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from essentials.deliver.mail import build_message
from image import build as image_build
from tests.integration.helpers import seal_one
from tests.integration.servers import _accepts, free_port, keygen, sshd_server
from tests.integration.helpers import Tmux
from tests.lab.keys import make_keys

from .qemu import Machine, Nic, qemu_argv

pytestmark = pytest.mark.vm
LIMIT_S = 420


@pytest.fixture(scope="module")
def iso():
    return image_build.build(say=lambda line: print(line, flush=True))


@pytest.fixture(scope="module")
def keys():
    k = make_keys("")
    yield k
    k.cleanup()


def stick(tmp_path: Path, files: Path) -> Path:
    """A FAT image labelled STICK holding `files` (no mount: mtools)."""
    img = tmp_path / "stick.img"
    subprocess.run(["mkfs.vfat", "-n", "STICK", "-C", str(img), str(64 * 1024)], check=True,
                   capture_output=True)
    subprocess.run(["mcopy", "-i", str(img), "-s", "-m"] + [str(p) for p in files.iterdir()]
                   + ["::/"], check=True, capture_output=True,
                   env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
    return img


def office_cmd(key: Path, tmp: Path, listen: int) -> str:
    """The office's ssh to the live system, through the jump host's port (the
    host key checked by its fingerprint read out on the phone: here, new)."""
    return (f"ssh -tt -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={tmp / 'office_known'} "
            f"-p {listen} root@127.0.0.1; sleep 600")


def test_bundles_on_a_stick_in_a_mailbox_and_from_sftp(iso, keys, tmp_path):
    made = tmp_path / "made"
    web1 = seal_one(made, keys, "web1", "20261201T010000Z")
    db1 = seal_one(made, keys, "db1", "20261202T020000Z")
    app1 = seal_one(made, keys, "app1", "20261203T030000Z")
    rogue = seal_one(made, keys, "mail1", "20261204T040000Z", keys.rogue_home, keys.rogue_fpr)
    files = tmp_path / "files"
    (files / "amdr").mkdir(parents=True)
    shutil.copy(web1, files / "amdr")
    shutil.copy(rogue, files / "amdr")
    box = mailbox.mbox(str(files / "amdr" / "backup-mail.mbox"))
    box.add(build_message({"to": ["dr@site.test"], "from": "root@db1.test"}, "db1", db1.name,
                          db1.read_bytes()))
    box.close()
    shutil.copytree(keys.recovery_home, files / "keys", ignore=shutil.ignore_patterns("S.*"))
    listen = free_port()
    with sshd_server(tmp_path) as srv, sshd_server(tmp_path, "jump") as jump:
        d = srv.root_dir / "bundles"
        d.mkdir()
        shutil.copy(app1, d)
        shutil.copy(srv.client_key, files / "sftp_key")
        # remote assist: the jump host (10.0.2.2 from the guest) lets the live
        # system's key only listen on its port; the office's key is alice's
        live_key = keygen(tmp_path / "live_jump_key", "amdr-live")
        office_key = keygen(tmp_path / "alice_key", "alice@office")
        jump.authorized_keys.write_text(
            f'restrict,port-forwarding,permitlisten="localhost:{listen}" '
            f"{Path(f'{live_key}.pub').read_text()}")
        shutil.copy(live_key, files / "jump_key")
        (files / "office.yaml").write_text(yaml.safe_dump({"office": {
            "host": "10.0.2.2", "port": jump.port, "user": "root",
            "host_key": jump.host_key_pub.read_text().strip(), "listen": listen,
            "key": "jump_key", "keys": [Path(f"{office_key}.pub").read_text().strip()]}}))
        answers = {"welcome": {"assist": "office.yaml"},
                   "bundles": {"sftp": {"host": "10.0.2.2", "port": srv.port, "user": srv.user,
                                        "path": str(d), "host_key":
                                        srv.host_key_pub.read_text().strip(),
                                        "ssh_key": "sftp_key"}},
                   "unlock": {"gnupghome": "keys"}}
        (files / "amdr-answers.yaml").write_text(yaml.safe_dump(answers))
        img = stick(tmp_path, files)
        console = tmp_path / "console.txt"
        usb = ["-boot", "order=d",  # the CD first: SeaBIOS would try the stick (a disk) first
               "-device", "qemu-xhci,id=xhci",
               "-drive", f"if=none,id=stick,format=raw,file={img}",
               "-device", "usb-storage,bus=xhci.0,drive=stick,removable=on"]
        argv = qemu_argv(disks=[], console=console, mem_mb=2048, cdrom=Path(iso["path"]),
                         nic=Nic(), extra=usb)
        listed_at = office_at = None
        office_screen = ""
        with Machine(argv, console, tmp_path / "qemu.err") as m:
            while m.seconds < LIMIT_S and m.poll() is None:
                text = m.console_text()
                if re.search(r"^mail1 .*refused", text, re.M):
                    listed_at = m.seconds
                    time.sleep(3)
                    break
                time.sleep(1)
            text = m.console_text()
            # the office, through the jump host's port: the live system's screen
            while m.seconds < LIMIT_S + 240 and m.poll() is None and not _accepts(listen):
                time.sleep(1)
            office = Tmux("amdr-live-office", office_cmd(office_key, tmp_path, listen))
            try:
                end = time.monotonic() + 120
                while time.monotonic() < end:
                    office_screen = office.screen()
                    if "alice@office watching" in office_screen and \
                            "amanda-dr" in office_screen:
                        office_at = m.seconds
                        break
                    time.sleep(1)
            finally:
                office.close()
    assert listed_at is not None, text[-5000:]
    assert office_at is not None, office_screen
    print(f"the office saw the live system's screen {office_at:.0f} s after power-on")
    print(f"bundles listed {listed_at:.0f} s after power-on")
    lines = {ln.split()[0]: ln.rstrip() for ln in text.splitlines()
             if re.match(r"^(web1|db1|app1|mail1) ", ln)}
    assert "amanda-dr media: /dev/sd" in text and "(vfat, STICK) on /media/STICK" in text, text
    assert "medium /media/STICK/amdr" in lines["web1"] and lines["web1"].endswith("usable")
    assert "mailbox /media/STICK/" in lines["db1"] and lines["db1"].endswith("usable")
    assert "sftp 10.0.2.2" in lines["app1"] and lines["app1"].endswith("usable")
    assert "refused: " in lines["mail1"] and "signed by key" in text
    # the answers file named no host: nothing ran by itself past the listing
    assert "its disks may be wiped" not in text


def test_on_the_lan_the_office_logs_in_with_the_password_shown(iso, tmp_path):
    """welcome.assist: lan (the field engineer's choice, made in advance): sshd
    takes a password made for this boot on port 2200, shown on the status
    line; the office logs in with it and sees the recovery's screens, read-
    only; a wrong password is refused."""
    import paramiko
    files = tmp_path / "files"
    files.mkdir()
    (files / "amdr-answers.yaml").write_text(yaml.safe_dump({"welcome": {"assist": "lan"}}))
    img = stick(tmp_path, files)
    port = free_port()
    console = tmp_path / "console.txt"
    usb = ["-boot", "order=d", "-device", "qemu-xhci,id=xhci",
           "-drive", f"if=none,id=stick,format=raw,file={img}",
           "-device", "usb-storage,bus=xhci.0,drive=stick,removable=on"]
    argv = qemu_argv(disks=[], console=console, mem_mb=2048, cdrom=Path(iso["path"]),
                     nic=Nic(hostfwd=(f"tcp:127.0.0.1:{port}-:2200",)), extra=usb)
    pw = screen = None
    ansi = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")
    with Machine(argv, console, tmp_path / "qemu.err") as m:
        while m.seconds < LIMIT_S and m.poll() is None:
            found = re.findall(r"LAN pw ([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})",
                               ansi.sub("", m.console_text()))
            if found and _accepts(port):
                pw = found[-1]
                break
            time.sleep(1)
        assert pw, m.console_text()[-4000:]
        bad = paramiko.SSHClient()
        bad.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        with pytest.raises(paramiko.AuthenticationException):
            bad.connect("127.0.0.1", port=port, username="root", password="not-the-password",
                        look_for_keys=False, allow_agent=False, timeout=30)
        bad.close()
        c = paramiko.SSHClient()
        c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        c.connect("127.0.0.1", port=port, username="root", password=pw, look_for_keys=False,
                  allow_agent=False, timeout=30)
        try:
            ch = c.invoke_shell(term="xterm", width=80, height=24)
            got, end = "", time.monotonic() + 60
            # the screens, then the status line: who is here (tmux reads it every 2 s)
            while time.monotonic() < end and not ("amanda-dr" in got and
                                                  "lan watching" in got):
                if ch.recv_ready():
                    got += ch.recv(65536).decode(errors="replace")
                else:
                    time.sleep(0.3)
            screen = ansi.sub("", got)
        finally:
            c.close()
    assert "amanda-dr" in screen, screen[-3000:]
    assert "lan watching" in screen and f"LAN pw {pw}" in screen, screen[-3000:]
