"""recover --server HOST --config CONF: the whole host back through the live
Amanda server (seed 002 §3.2), with the real amandad under a real inetd,
bsdtcp auth, on 127.0.0.1; this machine is the server and, for the
recovery, the client that lost its disks.

The server decides who may restore: ~backup/.amandahosts must name the
client (`localhost root amindexd amidxtaped`) and the dumptype's
`recovery-limit` must allow it.  Refusals are found before any wipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab import scenario
from tests.lab.lab import AmandaLab, sh

from .helpers import amdr, blank_disk, collect, differences, umount_target

pytestmark = pytest.mark.integration

AMANDAHOSTS_LINE = "localhost root amindexd amidxtaped\n"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def inetd(base: Path):
    """amandad under openbsd-inetd, as Debian's amanda-server sets it up, on a
    private inetd.conf (port 10080, the `amanda` service)."""
    assert shutil.which("inetd"), "inetd (openbsd-inetd, Amanda's inet-superserver) missing"
    assert not port_open(10080), "port 10080 is taken: another amandad is listening"
    conf = base / "inetd.conf"
    conf.write_text("amanda stream tcp nowait backup /usr/lib/amanda/amandad amandad "
                    "-auth=bsdtcp amindexd amidxtaped\n")
    log = open(base / "inetd.log", "w")
    p = subprocess.Popen(["inetd", "-d", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        for _ in range(50):
            if port_open(10080):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("inetd did not listen on 10080: "
                                 + (base / "inetd.log").read_text())
        yield p
    finally:
        p.terminate()
        p.wait(10)
        log.close()


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        scenario.change1(lab.mnt, lab.data_mnt)
        lab.backup(expect=1)
        lab.bundle = collect(lab, lab.base / "bundle")
        hosts = Path(pwd.getpwnam("backup").pw_dir) / ".amandahosts"
        before = hosts.read_bytes() if hosts.exists() else None
        with open(hosts, "a") as f:
            f.write(AMANDAHOSTS_LINE)
        try:
            yield lab
        finally:
            if before is None:
                hosts.unlink()
            else:
                hosts.write_bytes(before)


def recover(lab, tmp_path, new, *extra):
    return amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--server", "localhost",
                "--config", lab.name, "--target", tmp_path / "target",
                "--map", f"{lab.loop}={new}", "--yes", "--no-finalize", *extra)


def test_recover_through_the_live_server(lab, tmp_path):
    target = tmp_path / "target"
    report = tmp_path / "report.json"
    with inetd(tmp_path), \
            blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        p = amdr("amdr-recover", "plan", "--bundle", lab.bundle, "--server", "localhost",
                 "--config", lab.name, "--target", target, "--map", f"{lab.loop}={new}")
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"amrecover {lab.name} -s localhost -t localhost -h localhost -o auth=bsdtcp" \
            in p.stdout, p.stdout
        assert "amrecover> extract" in p.stdout and "amrestore" not in p.stdout
        try:
            p = recover(lab, tmp_path, new, "--report", report)
            assert p.returncode == 0, p.stdout + p.stderr
            assert "through amrecover from localhost" in p.stdout, p.stdout
            diffs = differences(lab, target)
            # GNU tar: amrecover runs tar -xpG per level: identical, deletions replayed
            assert diffs[lab.root_disk] == []
            # dump: amrecover runs restore -x per level, which cannot replay deletions:
            # exactly that differs, and the run says so
            assert diffs[lab.data_disk] and all(
                "should have been deleted" in x or "mtime differs" in x
                for x in diffs[lab.data_disk]), diffs
            assert f"note localhost:{lab.data_disk}: dump images restored by amrecover" \
                in p.stdout
            doc = json.loads(report.read_text())
            assert sorted(tuple(r["levels"]) for r in doc["restored"]) == [(0, 1), (0, 1)]
            assert all(r["bytes"] > 0 for r in doc["restored"]), doc
            notes = {r["disk"]: r["notes"] for r in doc["restored"]}
            assert notes[lab.root_disk] == [] and len(notes[lab.data_disk]) == 1
        finally:
            umount_target(target)
    # amindexd's log on the server side: the requests came over bsdtcp from localhost
    logs = sorted(Path("/var/log/amanda/server").glob(f"{lab.name}/amindexd.*.debug"))
    assert logs and any("localhost" in x.read_text(errors="replace") for x in logs[-4:])


def test_recovery_limit_refuses_before_any_wipe(lab, tmp_path):
    conf = lab.confdir / "amanda.conf"
    text = conf.read_text()
    assert '  auth "local"\n' in text
    conf.write_text(text.replace('  auth "local"\n',
                                 '  auth "local"\n  recovery-limit "nosuchhost.example"\n'))
    try:
        with inetd(tmp_path), \
                blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
            p = recover(lab, tmp_path, new)
            assert p.returncode != 0, p.stdout + p.stderr
            assert "no disk was touched" in p.stderr, p.stderr
            assert "Can't recover hosts" in p.stderr and "recovery-limit" in p.stderr
            assert sh(["blkid", "-p", new], check=False) == ""
    finally:
        conf.write_text(text)


def test_server_not_answering_is_said_before_any_wipe(lab, tmp_path):
    assert not port_open(10080)
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        p = recover(lab, tmp_path, new)
        assert p.returncode != 0, p.stdout + p.stderr
        assert "no disk was touched" in p.stderr, p.stderr
        assert "amandad listening there under inetd" in p.stderr, p.stderr
        assert sh(["blkid", "-p", new], check=False) == ""
