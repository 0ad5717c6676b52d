"""Remote assist (recovery/assist.py) with real OpenSSH on 127.0.0.1: one sshd
plays the office's jump host (its authorized_keys line for the live system
is the one the admin's recipe gives), another is the live system's sshd
(its keys are the assist's); the office is a real ssh client in a tmux
terminal of its own, the field engineer's screen a tmux session.  The live
side only ever connects out."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .helpers import BIN, Tmux
from .servers import free_port, keygen, sshd_server

pytestmark = pytest.mark.integration
ARTIFACTS = Path(os.environ.get("AMDR_ARTIFACTS", "/var/tmp/amdr-artifacts")) / "assist"


def jump_line(pub: Path, listen: int, extra: str = "") -> str:
    """The admin's recipe: the live system's key may only listen on its port."""
    return (f'restrict,port-forwarding,permitlisten="localhost:{listen}"{extra} '
            f"{pub.read_text().strip()}\n")


class Site:
    """The jump host, the live system's sshd, the keys, the settings file."""

    def __init__(self, tmp: Path, jump, live, listen: int):
        self.tmp, self.jump, self.live, self.listen = tmp, jump, live, listen
        self.state = tmp / "assist"
        self.live_key = keygen(tmp / "live_jump_key", "amdr-live")
        self.office_key = keygen(tmp / "alice_key", "alice@office")
        self.stranger_key = keygen(tmp / "mallory_key", "mallory@elsewhere")
        jump.authorized_keys.write_text(jump_line(Path(f"{self.live_key}.pub"), listen))
        pub = jump.host_key_pub.read_text().split()
        self.settings = tmp / "site.yaml"
        self.write_settings(f"{pub[0]} {pub[1]}")
        live_pub = live.host_key_pub.read_text().split()
        self.office_known = tmp / "office_known_hosts"
        self.office_known.write_text(f"[127.0.0.1]:{listen} {live_pub[0]} {live_pub[1]}\n")

    def write_settings(self, host_key: str) -> None:
        import yaml
        self.settings.write_text(yaml.safe_dump({"office": {
            "host": "127.0.0.1", "port": self.jump.port, "user": "root",
            "host_key": host_key, "listen": self.listen, "key": str(self.live_key),
            "keys": [Path(f"{self.office_key}.pub").read_text().strip()]}}))

    def call(self, session: str) -> subprocess.Popen:
        log = open(self.tmp / "call.log", "ab")
        return subprocess.Popen(
            [BIN / "amdr-recover", "assist", "call", "--state", self.state, "--settings",
             self.settings, "--sshd-port", str(self.live.port), "--session", session,
             "--host-key-pub", self.live.host_key_pub],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def office_ssh(self, key: Path) -> str:
        return (f"ssh -tt -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes "
                f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={self.office_known} "
                f"-p {self.listen} root@127.0.0.1")

    def status(self) -> str:
        try:
            return (self.state / "status").read_text().strip()
        except OSError:
            return ""

    def wait_status(self, text: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = self.status()
            if text in s:
                return s
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not in the status in {timeout} s: {self.status()}\n"
                             f"{(self.tmp / 'call.log').read_text(errors='replace')[-3000:]}")

    def events(self) -> list[dict]:
        p = self.state / "events.jsonl"
        return [json.loads(ln) for ln in p.read_text().splitlines()] if p.exists() else []


@contextlib.contextmanager
def site(tmp_path):
    listen = free_port()
    state = tmp_path / "assist"
    with sshd_server(tmp_path, "jump") as jump, \
            sshd_server(tmp_path, "live", authorized_keys_file=state / "authorized_keys") as live:
        yield Site(tmp_path, jump, live, listen)


def stop_calls(state: Path) -> None:
    """A call the UI started (its own process): ended, as the engineer would."""
    subprocess.run([BIN / "amdr-recover", "assist", "end", "--state", state],
                   capture_output=True, timeout=30)


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_the_office_watches_then_types_after_approval_and_is_dropped(tmp_path):
    """The engineer's screen (a shell in tmux); the office attaches read-only
    (its keys ignored), types after approval, is dropped by `end`, and its
    key no longer gets in.  The seconds from the call to the office seeing
    the screen are printed (goal: under 10 s on loopback)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with site(tmp_path) as s:
        eng = Tmux("amdr-assist-eng", "bash --norc -i")
        office = None
        call = None
        try:
            eng.keys("PS1='engineer$ '; clear; echo THE-RECOVERY-SCREEN", "Enter")
            eng.wait("THE-RECOVERY-SCREEN")
            t0 = time.monotonic()
            call = s.call("amdr-assist-eng")
            s.wait_status("connected")
            office = Tmux("amdr-assist-office", s.office_ssh(s.office_key) + "; sleep 600")
            office.wait("THE-RECOVERY-SCREEN", timeout=30)
            seen = time.monotonic() - t0
            print(f"assist: call to the office seeing the screen: {seen:.1f} s")
            (ARTIFACTS / "figure.txt").write_text(f"{seen:.2f}\n")
            st = s.wait_status("alice@office (watching)")
            assert "code " in st
            # the session's status line, seen by both: who, how, the code
            code = json.loads((s.state / "config.json").read_text())["code"]
            line = office.wait("alice@office watching", timeout=15).splitlines()[-1]
            assert "office connected" in line and code in line, line
            # read-only: the office's keys do nothing
            office.keys("echo OFFICE-TYPED", "Enter")
            time.sleep(2)
            assert "OFFICE-TYPED" not in eng.screen()
            p = subprocess.run([BIN / "amdr-recover", "assist", "approve", "--state", s.state],
                               capture_output=True, text=True)
            assert "may type now: alice@office" in p.stdout, p.stdout + p.stderr
            s.wait_status("alice@office (may type)")
            office.keys("echo OFFICE-TYPED-$((6*7))", "Enter")
            eng.wait("OFFICE-TYPED-42")
            (ARTIFACTS / "office-screen.txt").write_text(office.screen())
            # the engineer drops the office: detached, the tunnel closed, the keys gone
            p = subprocess.run([BIN / "amdr-recover", "assist", "end", "--state", s.state],
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            call.wait(timeout=20)
            office.wait("closed", timeout=20)
            assert not (s.state / "authorized_keys").exists()
            r = subprocess.run(s.office_ssh(s.office_key).split() + ["true"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode != 0  # no tunnel, no keys: nothing to connect to
        finally:
            for t in (eng, office):
                if t:
                    t.close()
            if call:
                stop(call)
        # the fingerprint to read out on the phone is the live sshd's own
        fp = subprocess.run(["ssh-keygen", "-lf", s.live.host_key_pub], capture_output=True,
                            text=True).stdout.split()[1]
        assert f"this system's host key {fp}" in (tmp_path / "call.log").read_text()
        kinds = [e["event"] for e in s.events()]
        for k in ("call", "tunnel up", "connect", "approved", "dropped", "end"):
            assert k in kinds, kinds
        # nothing secret in the log or the events: not the live side's private key
        secret = s.live_key.read_text().splitlines()[1]
        for f in [tmp_path / "call.log", s.state / "events.jsonl", s.jump.log, s.live.log]:
            assert secret not in f.read_text(errors="replace"), f


def test_a_key_not_among_the_offices_is_refused(tmp_path):
    with site(tmp_path) as s:
        eng = Tmux("amdr-assist-eng2", "bash --norc -i")
        call = s.call("amdr-assist-eng2")
        try:
            s.wait_status("connected")
            r = subprocess.run(s.office_ssh(s.stranger_key).split() + ["true"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 255 and "Permission denied" in r.stderr, r.stderr
            assert s.events() and not [e for e in s.events() if e["event"] == "connect"]
        finally:
            eng.close()
            stop(call)


def test_another_host_key_at_the_jump_host_means_no_tunnel(tmp_path):
    with site(tmp_path) as s:
        keygen(tmp_path / "other_host_key", "impostor")
        other = Path(f"{tmp_path / 'other_host_key'}.pub").read_text().split()
        s.write_settings(f"{other[0]} {other[1]}")
        call = s.call("amdr-assist-none")
        try:
            st = s.wait_status("refused: the jump host's host key is not the pinned one")
            assert "retrying in" in st
            assert not any(e["event"] == "tunnel up" for e in s.events())
        finally:
            stop(call)


def test_an_expired_key_at_the_jump_host_is_refused(tmp_path):
    with site(tmp_path) as s:
        s.jump.authorized_keys.write_text(jump_line(Path(f"{s.live_key}.pub"), s.listen,
                                                    ',expiry-time="20200101"'))
        call = s.call("amdr-assist-none")
        try:
            s.wait_status("refused: the jump host does not accept this system's key")
        finally:
            stop(call)


def test_a_port_already_taken_at_the_jump_host_is_refused(tmp_path):
    with site(tmp_path) as s:
        first = subprocess.Popen(
            ["ssh", "-N", "-F", "/dev/null", "-i", str(s.live_key), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={s.jump.known_hosts}", "-o", "ExitOnForwardFailure=yes",
             "-p", str(s.jump.port), "-R", f"localhost:{s.listen}:localhost:{s.live.port}",
             "root@127.0.0.1"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the other live system holds the port
                if subprocess.run(["ss", "-Hltn", f"sport = :{s.listen}"],
                                  capture_output=True, text=True).stdout.strip():
                    break
                time.sleep(0.2)
            call = s.call("amdr-assist-none")
            try:
                s.wait_status(f"refused: the port {s.listen} on the jump host is taken")
            finally:
                stop(call)
        finally:
            stop(first)


def test_the_link_killed_comes_back_and_the_office_reattaches(tmp_path):
    with site(tmp_path) as s:
        eng = Tmux("amdr-assist-eng3", "bash --norc -i")
        office = None
        call = s.call("amdr-assist-eng3")
        try:
            eng.keys("clear; echo SAME-SESSION-SCREEN", "Enter")
            s.wait_status("connected")
            pid = int((s.state / "tunnel.pid").read_text())
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            s.wait_status("retrying in", timeout=10)
            s.wait_status("connected", timeout=30)
            back = time.monotonic() - t0
            print(f"assist: the tunnel back {back:.1f} s after kill -9")
            assert back < 30
            office = Tmux("amdr-assist-office3", s.office_ssh(s.office_key) + "; sleep 600")
            office.wait("SAME-SESSION-SCREEN", timeout=30)
        finally:
            for t in (eng, office):
                if t:
                    t.close()
            stop(call)
