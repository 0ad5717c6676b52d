"""Two DLEs at once (`--jobs 2`), and a restore killed mid-image that continues.

Parallel: siblings under / on volumes of their own.

The lab gets a /home filesystem (a GNUTAR DLE beside the DUMP DLE /srv), and
each DLE is dumped by its own amdump run, so each image is on a volume of
its own.  `recover --jobs 2` restores / alone first (a GNU tar -G of / empties
the mountpoints below it), then /srv and /home at the same time; the report's
start and end times show it, and every tree is the original.

Resume: `recover` killed (SIGKILL, the whole process group) while the DUMP
DLE's image streams, then again while the GNU tar DLE's does; each re-run
continues: disks kept, images done skipped, the dump DLE's filesystem made
again (restore -r cannot continue), the tar image extracted again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.lab import scenario
from tests.lab.lab import AmandaLab

from .helpers import BIN, amdr, blank_disk, collect, differences, umount_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=48, data_mb=48, swap_mb=8, home_mb=48, slots=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        for d, mb in ((lab.data_mnt, 36), (lab.mnt / "home", 36)):
            (d / "big.bin").write_bytes(os.urandom(mb << 20))
        for disk in (lab.root_disk, lab.data_disk, lab.home_disk):
            lab.backup(expect=0, only=[disk])
        lab.bundle = collect(lab, lab.base / "bundle")
        yield lab


def test_each_dle_is_on_its_own_volume(lab):
    labels = {}
    for line in lab.amadmin("find").splitlines()[1:]:
        f = line.split()
        if len(f) >= 10 and f[2] == "localhost":
            labels.setdefault(f[3], set()).add(f[7])
    assert len(labels) == 3 and len(set().union(*labels.values())) == 3, labels


def test_siblings_restore_at_the_same_time_after_their_parent(lab, tmp_path):
    target = tmp_path / "target"
    report = tmp_path / "report.json"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", target,
                     "--vtapes", lab.vtapes, "--map", f"{lab.loop}={new}", "--yes",
                     "--no-finalize", "--jobs", "2", "--report", report)
            assert p.returncode == 0, p.stdout + p.stderr
            assert "restoring up to 2 DLEs at once" in p.stdout
            assert differences(lab, target) == {d: [] for d in lab.dle_dirs()}
            runs = {r["disk"]: r for r in json.loads(report.read_text())["restored"]}
            root, srv, home = (runs[d] for d in (lab.root_disk, lab.data_disk,
                                                 lab.home_disk))
            assert root["ended"] <= min(srv["started"], home["started"])  # parent first
            assert srv["started"] < home["ended"] and home["started"] < srv["ended"]  # overlap
        finally:
            umount_target(target)


def test_one_job_restores_one_after_another(lab, tmp_path):
    target = tmp_path / "target"
    report = tmp_path / "report.json"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", target,
                     "--vtapes", lab.vtapes, "--map", f"{lab.loop}={new}", "--yes",
                     "--no-finalize", "--jobs", "1", "--report", report)
            assert p.returncode == 0, p.stdout + p.stderr
            runs = sorted(json.loads(report.read_text())["restored"],
                          key=lambda r: r["started"])
            assert all(a["ended"] <= b["started"] for a, b in zip(runs, runs[1:]))
        finally:
            umount_target(target)


def killed_when_started(argv, journal, dle: str, timeout=300):
    """Run argv; SIGKILL its process group as soon as the journal says DLE's image
    started.  Returns the journal's last event for that DLE at the kill."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    last = None
    try:
        while time.monotonic() < deadline and p.poll() is None:
            if journal.exists():
                mine = [json.loads(ln) for ln in journal.read_text().splitlines()
                        if ln.strip() and json.loads(ln).get("dle") == dle]
                if mine and mine[-1]["event"] == "start":
                    os.killpg(p.pid, signal.SIGKILL)
                    last = mine[-1]
                    break
            time.sleep(0.005)
    finally:
        if p.poll() is None and last is None:
            os.killpg(p.pid, signal.SIGKILL)
        out = p.communicate()[0].decode(errors="replace")
    assert last is not None, f"the restore of {dle} never started:\n{out[-3000:]}"
    return last, out


def test_a_killed_restore_continues_where_it_stopped(lab, tmp_path):
    """One stream, in order /, /home (GNU tar), /srv (dump)."""
    target = tmp_path / "target"
    journal = tmp_path / "target.amdr" / "restore.journal"
    args = [str(BIN / "amdr-recover"), "recover", "--bundle", str(lab.bundle), "--target",
            str(target), "--vtapes", str(lab.vtapes), "--yes", "--no-finalize", "--jobs", "1"]
    home, srv = f"localhost:{lab.home_disk}", f"localhost:{lab.data_disk}"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        args += ["--map", f"{lab.loop}={new}"]
        try:
            # killed while /home's image streams (/ is done)
            last, out = killed_when_started(args, journal, home)
            assert last["event"] == "start", out
            # what it left mounted is taken down first, as the refusal says
            # (after a power cut nothing is mounted)
            p = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            assert p.returncode == 4 and "amdr-recover umount --target" in p.stderr
            umount_target(target)
            # the re-run: / skipped, /home extracted again; killed while /srv streams
            last, out = killed_when_started(args, journal, srv)
            umount_target(target)
            assert "nothing was recreated" in out, out
            assert f"localhost:{lab.root_disk}: every image was restored by an earlier run" \
                in out, out
            # the last re-run: /srv's filesystem made again, its chain restarts
            p = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            assert p.returncode == 0, p.stdout + p.stderr
            assert f"{home}: every image was restored by an earlier run" in p.stdout
            assert f"{srv}: its dump restore was interrupted, and restore -r needs a fresh " \
                   f"filesystem" in p.stdout, p.stdout
            assert differences(lab, target) == {d: [] for d in lab.dle_dirs()}
        finally:
            umount_target(target)
