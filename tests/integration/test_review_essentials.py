"""Review of the essentials agent, as root with the real tools: each test pins one bug.

Runs use only the fast collectors (etc, packages, network) so they take a few
seconds; the point is what a run leaves behind, not what it collects.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from essentials import bundle, sealed
from essentials.errors import BundleError, ConfigError
from essentials.runner import Runner
from tests.integration.servers import smtp_server
from tests.lab.keys import make_keys

pytestmark = pytest.mark.integration

SITE_PASS = "review pass words"
EXE = str(Path(os.sys.executable).parent / "amdr-essentials")


@pytest.fixture(scope="module")
def keys():
    k = make_keys(SITE_PASS)
    yield k
    k.cleanup()


def make_config(tmp: Path, keys, deliveries, **collect) -> Path:
    # the local deliveries' directories are made by the first copy
    deliveries = [dict(d, create=True) if d.get("type") == "local" else d for d in deliveries]
    cfg = {
        "host": "revhost",
        "state_dir": str(tmp / "state"),
        "spool_dir": str(tmp / "spool"),
        "log_file": str(tmp / "log" / "essentials.log"),
        "gpg": {"home": str(keys.host_home), "recipients": [keys.site_fpr],
                "signer": keys.host_fpr},
        "collect": {"layout": {"enabled": False}, "amanda": {"enabled": False},
                    "packages": {"enabled": False}, "network": {"enabled": False},
                    "capabilities": {"enabled": False},
                    **collect},
        "deliveries": deliveries,
    }
    path = tmp / "essentials.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def slow_tool(bindir: Path, tool: str, only_if: str | None = None) -> str:
    """A `tool` on PATH that first sleeps (when its arguments contain only_if)."""
    bindir.mkdir(exist_ok=True)
    real = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                          text=True).stdout.strip()
    marker = f"{os.getpid()}{time.monotonic_ns() % 100000}"
    cond = f'case " $* " in *" {only_if} "*) sleep {marker};; esac' if only_if \
        else f"sleep {marker}"
    (bindir / tool).write_text(f'#!/bin/sh\n{cond}\nexec {real} "$@"\n')
    (bindir / tool).chmod(0o755)
    return marker


def running(marker: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:
                pass
    return found


def start(config: Path, env: dict, *args) -> subprocess.Popen:
    return subprocess.Popen([EXE, *args, "-c", str(config)], env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_for(cond, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def kill_leftovers(marker: str):
    for pid in running(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- SIGTERM mid-run ------------------------------------------------------------------

def test_sigterm_while_collecting_removes_the_plaintext(tmp_path, keys):
    """systemd stopping the unit (or a cron timeout) sends SIGTERM; Python's default
    ends the process on the spot and left state/work/HOST-STAMP/etc.tar (with
    /etc/shadow) behind until next week's run."""
    # the etc collector's tar only: `run` probes `tar --version` before collecting
    marker = slow_tool(tmp_path / "bin", "tar", only_if="--format=posix")
    config = make_config(tmp_path, keys, [{"type": "local", "dir": str(tmp_path / "out")}])
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    work = tmp_path / "state" / "work"
    p = start(config, env, "run")
    try:
        wait_for(lambda: running(marker), "tar started")
        assert list(work.iterdir())  # the staging with etc.tar exists now
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
        kill_leftovers(marker)
    assert p.returncode == 3, (out, err)
    assert "SIGTERM" in err
    assert list(work.iterdir()) == []
    assert not (tmp_path / "out").exists()


def test_sigterm_while_sealing_leaves_no_part_file_and_no_gpg(tmp_path, keys):
    """SIGTERM during `tar | gpg`: the stages went on running after the agent
    was gone (gpg writing the spool's .part, tar reading the removed staging)."""
    marker = slow_tool(tmp_path / "bin", "gpg", only_if="--encrypt")
    config = make_config(tmp_path, keys, [{"type": "local", "dir": str(tmp_path / "out")}])
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    work = tmp_path / "state" / "work"
    p = start(config, env, "run")
    try:
        wait_for(lambda: running(marker), "gpg --encrypt started")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        time.sleep(0.3)
        # the wrapper shell is the pipeline's gpg stage (its `sleep` child may linger)
        assert running(str(tmp_path / "bin" / "gpg")) == [], "the gpg stage outlived the run"
    finally:
        p.kill()
        kill_leftovers(marker)
        kill_leftovers(str(tmp_path / "bin" / "gpg"))
    assert p.returncode == 3, (out, err)
    assert list(work.iterdir()) == []
    assert list((tmp_path / "spool").iterdir()) == []


def test_sigterm_during_check_removes_its_temporary_layout(tmp_path, keys):
    """`check` collects the layout into a temporary directory; SIGTERM left it."""
    marker = slow_tool(tmp_path / "bin", "lsblk")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    config = make_config(tmp_path, keys, [{"type": "local", "dir": str(tmp_path / "out")}],
                         layout={"enabled": True})
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
               TMPDIR=str(tmpdir))
    p = start(config, env, "check")
    try:
        wait_for(lambda: running(marker), "lsblk started")
        assert list(tmpdir.iterdir())
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
        kill_leftovers(marker)
    assert p.returncode == 3, (out, err)
    assert list(tmpdir.iterdir()) == []


# -- unseal: the plaintext on the recovery side ------------------------------------------

@pytest.fixture
def sealed_bundle(tmp_path, keys):
    def make(tamper: bool = False) -> Path:
        st = tmp_path / "staging"
        st.mkdir()
        (st / "etc.tar").write_bytes(b"root:$y$j9T$secret-hash:19000:0:99999:7:::\n")
        bundle.write_manifest(st, {"etc": {"status": "ok"}})
        if tamper:  # signed and encrypted as made, but its checksums do not match
            (st / "etc.tar").write_bytes(b"something else")
        dest = tmp_path / "revhost-20261122T010203Z.amdr.gpg"
        sealed.seal(Runner(), st, dest, keys.host_home, [keys.site_fpr], keys.host_fpr)
        return dest
    return make


def test_decrypted_tar_is_never_readable_by_others(tmp_path, keys, sealed_bundle,
                                                   monkeypatch):
    """gpg wrote the whole plaintext tar (the /etc with shadow) with the umask, 0644,
    next to the private directory in /run, for as long as decrypting took."""
    modes = []
    real = sealed.extract_tar

    def spy(tar_path, into, where):
        modes.append(stat.S_IMODE(tar_path.stat().st_mode))
        return real(tar_path, into, where)

    monkeypatch.setattr(sealed, "extract_tar", spy)
    old = os.umask(0o022)
    try:
        b, _ = sealed.unseal(sealed_bundle(), keys.recovery_home, SITE_PASS,
                             into=tmp_path / "into")
    finally:
        os.umask(old)
    assert modes == [0o600]
    assert b.has("etc.tar")


def test_a_refused_bundle_leaves_no_plaintext(tmp_path, keys, sealed_bundle):
    """Checksums that do not verify: unseal refused the bundle but left the whole
    decrypted tree behind (in /run when no `into` was given: nobody removed it)."""
    into = tmp_path / "into"
    with pytest.raises(BundleError, match="does not verify"):
        sealed.unseal(sealed_bundle(tamper=True), keys.recovery_home, SITE_PASS, into=into)
    assert not into.exists()


# -- keys: which key a name means ---------------------------------------------------------

def test_a_recipient_naming_several_keys_is_refused(keys):
    """'amdr' is in the host key's user id and in the site key's; the first match
    (the host's own key) was taken, so bundles were encrypted to a key that dies
    with the host and recovery could not open them."""
    with pytest.raises(ConfigError, match=r"gpg.recipients: 'amdr' names 2 keys"):
        sealed.sender_keys(keys.host_home, ["amdr"], keys.host_fpr)
    with pytest.raises(ConfigError, match=r"gpg.recipients: no public key ''"):
        sealed.sender_keys(keys.host_home, [""], keys.host_fpr)
    with pytest.raises(ConfigError, match=r"gpg.signer: no secret key ''"):
        sealed.sender_keys(keys.host_home, [keys.site_fpr], "")
    # an e-mail, a user id part or a fingerprint naming one key still works
    assert sealed.sender_keys(keys.host_home, ["dr@site.test"], "root@host.test") == \
        ([keys.site_fpr], keys.host_fpr)
    assert sealed.sender_keys(keys.host_home, ["recovery"], keys.host_fpr[-16:]) == \
        ([keys.site_fpr], keys.host_fpr)


# -- mail: one of several recipients refused -------------------------------------------------

def test_partly_refused_mail_retries_only_the_refused_recipient(tmp_path, keys):
    """The server took the message for good@ and refused bad@ (550).  Before: the
    run said FAILED (exit 3) though the bundle had left the host, and every later
    run mailed it to good@ again."""
    refuse = tmp_path / "refuse"
    refuse.write_text("bad@example.com\n")
    with smtp_server(tmp_path / "smtp", "starttls", refuse_file=refuse) as m:
        config = make_config(tmp_path, keys, [
            {"type": "mail", "name": "dr", "smtp_host": "127.0.0.1", "port": m.port,
             "security": "starttls", "ca_file": str(m.ca_file),
             "to": ["good@example.com", "bad@example.com"]}])
        p = subprocess.run([EXE, "run", "-c", str(config)], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "PARTLY" in p.stderr and "bad@example.com (550" in p.stderr
        [first] = [e["rcpt_tos"] for e in m.envelopes()]
        assert first == ["good@example.com"]
        [waiting] = sorted((tmp_path / "spool").glob("*.amdr.gpg"))

        refuse.write_text("")  # the mailbox exists now
        time.sleep(1.1)  # a new second, a new bundle name
        p = subprocess.run([EXE, "run", "-c", str(config)], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stdout + p.stderr
        msgs = m.messages()
        envs = [e["rcpt_tos"] for e in m.envelopes()]
    names = [next(part.get_filename() for part in msg.walk() if part.get_filename())
             for msg in msgs]
    assert list(zip(names, envs))[1:] == [
        (waiting.name, ["bad@example.com"]),  # the old bundle: only to the one without it
        (names[2], ["good@example.com", "bad@example.com"])]
    assert names[2] != waiting.name
    assert list((tmp_path / "spool").iterdir()) == []
