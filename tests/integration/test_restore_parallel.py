"""Two DLEs at once (`--jobs 2`): siblings under / on volumes of their own.

The lab gets a /home filesystem (a GNUTAR DLE beside the DUMP DLE /srv), and
each DLE is dumped by its own amdump run, so each image is on a volume of
its own.  `recover --jobs 2` restores / alone first (a GNU tar -G of / empties
the mountpoints below it), then /srv and /home at the same time; the report's
start and end times show it, and every tree is the original.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.lab import scenario, tree
from tests.lab.lab import AmandaLab

from .helpers import amdr, blank_disk, collect, umount_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=48, data_mb=48, swap_mb=8, home_mb=48, slots=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        for d, mb in ((lab.data_mnt, 12), (lab.mnt / "home", 12)):
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
            expected = lab.runs[-1].manifests
            snaps = {lab.root_disk: tree.snapshot(str(target),
                                                  exclude={"lost+found", "srv", "home"}),
                     lab.data_disk: tree.snapshot(str(target / "srv"), exclude={"lost+found"}),
                     lab.home_disk: tree.snapshot(str(target / "home"),
                                                  exclude={"lost+found"})}
            for disk, got in snaps.items():
                assert tree.compare(expected[disk], got) == [], disk
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
