"""Review of the essentials agent: each test pins one bug found (and fixed).

No root needed: the agent's collectors and sealing are replaced by small
fakes where the point is the spool, the work area or the exit code; the
local delivery, the spool, the lock and the CLI are the real ones.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import shutil
import stat
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from essentials import agent, cli, config, sealed
from essentials.errors import EXIT_FAILED, ConfigError
from essentials.runner import Cmd, Runner
from essentials.spool import Spool

NOW = datetime(2026, 11, 22, 1, 2, 3, tzinfo=timezone.utc)
NAME = "web1-20261122T010203Z.amdr.gpg"


def cfg_for(tmp: Path, deliveries, **over) -> dict:
    # the local deliveries' directories are made by the first copy
    deliveries = [dict(d, create=True) if d.get("type") == "local" else d for d in deliveries]
    data = {"host": "web1", "state_dir": str(tmp / "state"), "spool_dir": str(tmp / "spool"),
            "log_file": str(tmp / "log" / "essentials.log"),
            "gpg": {"recipients": ["R"], "signer": "S"}, "deliveries": deliveries}
    data.update(over)
    return config.validate(data, "test.yaml")


@pytest.fixture
def fake_sealing(monkeypatch):
    """Collect one file, 'seal' by copying the staging listing: no gpg, no tools."""
    sealed_names = []

    def collect_all(cfg, runner, staging, **kw):
        (staging / "etc.tar").write_bytes(b"plaintext /etc/shadow")
        return {"etc": {"status": "ok", "duration": 0.0}}

    def seal(runner, staging, dest, home, recipients, signer, passfile=None):
        dest.write_bytes(b"sealed " + dest.name.encode())
        sealed_names.append(dest.name)
        return dest

    monkeypatch.setattr(agent, "collect_all", collect_all)
    monkeypatch.setattr(sealed, "sender_keys", lambda home, r, s: (["R"], "S"))
    monkeypatch.setattr(sealed, "seal", seal)
    return sealed_names


@pytest.fixture
def restore_logging():
    """cli._log_to_file turns the root logger's handlers down and adds a file handler."""
    root = logging.getLogger()
    level, handlers = root.level, {h: h.level for h in root.handlers}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    for h, lvl in handlers.items():
        h.setLevel(lvl)
    root.setLevel(level)


# -- spool: two bundles in the same second ---------------------------------------------

def test_a_second_bundle_in_the_same_second_does_not_take_over_a_spooled_one(
        tmp_path, fake_sealing):
    """A bundle still waiting in the spool (delivered to `a`, not yet to `b`) and a
    new run in the same second: the new bundle must not be sealed over it, nor
    inherit its state and so never go to `a`."""
    a, b = tmp_path / "a", tmp_path / "b"
    cfg = cfg_for(tmp_path, [{"type": "local", "name": "a", "dir": str(a)},
                             {"type": "local", "name": "b", "dir": str(b)}])
    spool = Spool(cfg["spool_dir"])
    spool.ensure()
    old = spool.path_for(NAME)
    old.write_bytes(b"the older bundle")
    spool.record(old, "a", True, f"local:{a / NAME}")
    b.write_text("not a directory: delivery b fails")

    out = agent.run(cfg, Runner(dry_run=True), now=NOW)

    assert out.bundle is not None and out.bundle.name != NAME
    assert old.read_bytes() == b"the older bundle"       # not sealed over
    assert (a / out.bundle.name).is_file()                 # the new one reached a
    assert [d.delivery for d in out.deliveries if d.bundle == out.bundle.name and d.ok] == ["a"]


def test_bundles_waiting_from_before_a_host_rename_still_go_out(tmp_path, fake_sealing):
    """host: changed (or the machine was renamed) while a bundle waited in the spool:
    every delivery refused it as 'not a bundle name of host', so each run said
    PARTIAL, and spool_keep never dropped it (new bundles leave the spool)."""
    a = tmp_path / "a"
    cfg = cfg_for(tmp_path, [{"type": "local", "name": "a", "dir": str(a)}])
    spool = Spool(cfg["spool_dir"])
    spool.ensure()
    old = spool.path_for("web1-old-20261115T010203Z.amdr.gpg")
    old.write_bytes(b"made when the host was web1-old")

    out = agent.run(cfg, Runner(dry_run=True), now=NOW)

    assert out.exit_code == 0, agent.report(out)
    assert (a / old.name).is_file() and (a / NAME).is_file()
    assert out.waiting == []


# -- the work area ---------------------------------------------------------------------

def test_stale_cleanup_removes_only_what_a_run_leaves(tmp_path, fake_sealing):
    """state_dir/work is emptied of what an interrupted run left, but only of that:
    with state_dir: / it is /work, and everything in it went."""
    cfg = cfg_for(tmp_path, [{"type": "local", "dir": str(tmp_path / "out")}])
    work = Path(cfg["state_dir"]) / "work"
    work.mkdir(parents=True)
    (work / "web1-20261101T000000Z").mkdir()
    (work / "web1-20261101T000000Z" / "etc.tar").write_text("plaintext")
    (work / "web1-20261101T000000Z.files").write_text("etc.tar")
    (work / "project").mkdir()
    (work / "project" / "notes.txt").write_text("someone else's")
    (work / "README").write_text("someone else's")

    out = agent.run(cfg, Runner(dry_run=True), now=NOW)

    assert out.exit_code == 0
    assert sorted(p.name for p in work.iterdir()) == ["README", "project"]
    assert (work / "project" / "notes.txt").read_text() == "someone else's"


def test_remember_layout_failing_midway_keeps_the_previous_layout(tmp_path, monkeypatch):
    """`check` compares with last-layout.yaml: a write cut short (disk full, a kill)
    must leave the previous one whole, not half a file."""
    cfg = cfg_for(tmp_path, [{"type": "local", "dir": str(tmp_path / "out")}])
    state = Path(cfg["state_dir"])
    (state / "layouts").mkdir(parents=True)
    (state / "layouts" / (NAME + ".layout.yaml")).write_text("version: 1\n" + "x: 1\n" * 5000)
    (state / "last-layout.yaml").write_text("version: 1\nold: true\n")
    (state / "last-bundle").write_text("web1-20261115T010203Z.amdr.gpg\n")

    def half_then_enospc(src, dst, *a, **kw):
        if hasattr(src, "read"):
            dst.write(src.read(100))
        else:
            Path(dst).write_text(Path(src).read_text()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", half_then_enospc)
    monkeypatch.setattr(shutil, "copyfileobj", half_then_enospc)
    with pytest.raises(OSError):
        agent._remember_layout(cfg, NAME)
    assert (state / "last-layout.yaml").read_text() == "version: 1\nold: true\n"
    assert (state / "last-bundle").read_text().strip() == "web1-20261115T010203Z.amdr.gpg"


# -- the spool after kill -9 ---------------------------------------------------------

def test_spool_drops_half_sealed_files_a_killed_run_left(tmp_path):
    s = Spool(tmp_path / "spool")
    s.ensure()
    part = s.dir / f".{NAME}.part"
    part.write_bytes(b"half a bundle")
    tmp = s.dir / f".{NAME}.state.tmp"
    tmp.write_text("{")
    keep = s.dir / NAME
    keep.write_bytes(b"whole")
    s.record(keep, "a", False, "refused")
    orphan = s.dir / "web1-20261115T010203Z.amdr.gpg.state"  # its bundle was removed
    orphan.write_text(json.dumps({"delivered": {"a": "x"}, "failures": {}}))
    s.ensure()
    assert sorted(p.name for p in s.dir.iterdir()) == [NAME, NAME + ".state"]


# -- the runner: an interrupted pipeline ------------------------------------------------

class _Stop(BaseException):
    pass


def _procs_with(arg: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if arg.encode() in (d / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(d.name))
            except OSError:
                pass
    return found


def test_interrupted_pipeline_leaves_no_stage_running(tmp_path):
    """SIGTERM (now an exception) while `tar | gpg` runs: without this, gpg went on
    writing the spool's .part and tar reading the staging being removed."""
    marker = f"{os.getpid() % 1000 + 3000}.{time.monotonic_ns() % 1000}"  # unique `sleep` arg
    old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(_Stop()))
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(_Stop):
            Runner().pipeline([Cmd(["sleep", marker]), Cmd(["sleep", marker])])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    time.sleep(0.2)
    assert _procs_with(marker) == []


# -- exit codes -----------------------------------------------------------------------

def test_an_unexpected_error_is_failed_not_partial(tmp_path, monkeypatch, capsys,
                                                   restore_logging):
    """Exit 1 means 'partial: delivered somewhere'; a crash (here: the state
    directory full) is exit 3, with the reason on stderr for cron."""
    path = tmp_path / "essentials.yaml"
    path.write_text(yaml.safe_dump({
        "host": "web1", "state_dir": str(tmp_path / "state"),
        "spool_dir": str(tmp_path / "spool"), "log_file": str(tmp_path / "log" / "e.log"),
        "gpg": {"recipients": ["R"], "signer": "S"},
        "deliveries": [{"type": "local", "dir": str(tmp_path / "out")}]}))

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(agent, "run", full)
    rc = cli.main(["run", "-q", "-c", str(path)])
    assert rc == EXIT_FAILED
    assert "No space left on device" in capsys.readouterr().err


def test_rotated_log_files_stay_private(tmp_path, restore_logging):
    """The log is 0600; a rollover opened the new file with the umask (0644)."""
    log_path = tmp_path / "log" / "essentials.log"
    root = logging.getLogger()
    before = set(root.handlers)
    old_umask = os.umask(0o022)
    try:
        cli._log_to_file(str(log_path), verbose=False)
        [h] = [h for h in root.handlers if h not in before]
        logging.getLogger("essentials.test").info("one line")
        h.doRollover()
        logging.getLogger("essentials.test").info("after the rollover")
        h.flush()
    finally:
        os.umask(old_umask)
    for p in (log_path, log_path.with_name(log_path.name + ".1")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


# -- config: what the validator must refuse ----------------------------------------------

def base(**over) -> dict:
    data = {"gpg": {"recipients": ["R"], "signer": "S"}}
    data.update(over)
    return data


@pytest.mark.parametrize("host", ["../etc", "a/b", "/root", "..", "web1 db"])
def test_host_that_is_not_a_name_is_refused(host):
    """host becomes a file name in the spool and a directory on the sftp server."""
    with pytest.raises(ConfigError, match=r"test.yaml: host: expected a host name"):
        config.validate(base(host=host), "test.yaml")


def test_plain_host_names_still_pass():
    for host in ("web1", "web1-db", "db.example.com", "WEB_2"):
        assert config.validate(base(host=host))["host"] == host


def test_local_delivery_into_the_spool_is_refused():
    """The spool removes a bundle once every delivery has it: the copy too."""
    with pytest.raises(ConfigError, match=r"deliveries\[0\]\.dir: /var/spool/amanda-dr/ is "
                                          r"spool_dir"):
        config.validate(base(deliveries=[{"type": "local", "dir": "/var/spool/amanda-dr/"}]),
                        "test.yaml")


def test_local_delivery_into_the_work_area_is_refused():
    with pytest.raises(ConfigError, match=r"deliveries\[0\]\.dir: .* the work area"):
        config.validate(base(state_dir="/srv/amdr", deliveries=[
            {"type": "local", "dir": "/srv/amdr/work/copies"}]), "test.yaml")


def test_spool_inside_the_work_area_is_refused():
    with pytest.raises(ConfigError, match=r"spool_dir: /srv/amdr/work/spool is inside "
                                          r"/srv/amdr/work"):
        config.validate(base(state_dir="/srv/amdr", spool_dir="/srv/amdr/work/spool"),
                        "test.yaml")


def test_smtp_password_in_clear_text_to_another_host_is_refused():
    mail = {"type": "mail", "smtp_host": "mail.example.com", "port": 25, "security": "none",
            "user": "amdr", "password_file": "/etc/amanda-dr/smtp-password",
            "to": ["dr@example.com"]}
    with pytest.raises(ConfigError, match=r"deliveries\[0\]\.security: none would send the "
                                          r"SMTP password"):
        config.validate(base(deliveries=[mail]), "test.yaml")
    # without a login, or to a relay on this host, none stays allowed
    config.validate(base(deliveries=[dict(mail, user=None, password_file=None)]))
    config.validate(base(deliveries=[dict(mail, smtp_host="127.0.0.1")]))


# -- mail: some recipients refused -------------------------------------------------------

def test_partly_refused_mail_is_retried_only_to_the_refused(tmp_path, fake_sealing,
                                                           monkeypatch):
    """smtplib accepted the message for good@ and refused bad@.  Before: the
    delivery counted as failed, the next run mailed the bundle to everyone again
    (every week until the spool dropped it), and a mail-only host said FAILED."""
    from essentials.deliver import mail

    sent = []
    refuse = {"bad@example.com"}

    def send(dest, bundle, host, runner):
        sent.append((bundle.name, list(dest["to"])))
        if refuse & set(dest["to"]):
            accepted = [t for t in dest["to"] if t not in refuse]
            raise mail.PartlyDelivered("refused bad@example.com", accepted)
        return "mail to " + ", ".join(dest["to"])

    monkeypatch.setattr(agent, "deliver", send)
    cfg = cfg_for(tmp_path, [{"type": "mail", "name": "dr", "smtp_host": "127.0.0.1",
                              "to": ["good@example.com", "bad@example.com"]}])
    out = agent.run(cfg, Runner(dry_run=True), now=NOW)
    assert out.exit_code == 1, agent.report(out)  # it left the host: partial, not failed
    assert "PARTLY" in agent.report(out)
    [waiting] = out.waiting

    refuse.clear()
    later = datetime(2026, 11, 29, 1, 2, 3, tzinfo=timezone.utc)
    out = agent.run(cfg, Runner(dry_run=True), now=later)
    assert out.exit_code == 0, agent.report(out)
    assert sent[1:] == [(waiting, ["bad@example.com"]),
                        ("web1-20261129T010203Z.amdr.gpg",
                         ["good@example.com", "bad@example.com"])]
    assert out.waiting == []
