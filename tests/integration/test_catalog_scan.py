"""The media scan against a real Amanda 3.5 history, checked with its trace logs.

The lab's tapetype gets `part-size 1m`, so the GNUTAR images (a few MB of
random data) are split in parts.  History: level 0, 1, then a forced newer
level 0, then 1 and 2.  Whatever the scan of the vtapes finds must be what
the trace logs say, image for image and part for part, and the restore
chains computed from either must be the same for every DLE at every run.
amcheckdump's real output is checked against the same logs.
"""

from __future__ import annotations

import os

import pytest

from recovery.catalog import amconf, tapelist, tracelog
from recovery.catalog.chains import compute_chain, dles
from recovery.catalog.reports import parse_reports
from recovery.catalog.scan import scan
from tests.lab import scenario
from tests.lab.lab import AMANDA_USER, AmandaLab, sh

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=96, data_mb=32, swap_mb=8, slots=8, holding_mb=600) as lab:
        conf = lab.confdir / "amanda.conf"
        text = conf.read_text()
        assert "  length 16000 mbytes\n" in text
        conf.write_text(text.replace("  length 16000 mbytes\n",
                                     "  length 16000 mbytes\n  part-size 1m\n"))
        scenario.initial(lab.mnt, lab.data_mnt)
        (lab.mnt / "big.bin").write_bytes(os.urandom(3 << 20))
        lab.backup(expect=0)
        scenario.change1(lab.mnt, lab.data_mnt)
        lab.backup(expect=1)
        scenario.change2(lab.mnt, lab.data_mnt)
        (lab.mnt / "big2.bin").write_bytes(os.urandom(2 << 20))
        lab.backup(force_full=True, expect=0)
        scenario.change3(lab.mnt, lab.data_mnt)
        lab.backup(expect=1)
        scenario.change4(lab.mnt, lab.data_mnt)
        lab.backup(bump=True, expect=2)
        yield lab


@pytest.fixture(scope="module")
def logs(lab):
    return tracelog.parse_logdir(lab.state / "log")


@pytest.fixture(scope="module")
def scanned(lab):
    return scan([str(lab.vtapes)])


def rows(dumps):
    return sorted((d.host, d.disk, d.date, d.level, p.label, p.filenum, p.partnum)
                  for d in dumps for p in d.parts)


def test_history_has_a_newer_level0_and_splits(lab, logs):
    assert [r.levels[lab.root_disk] for r in lab.runs] == [0, 1, 0, 1, 2]
    tar0 = [d for d in logs if d.disk == lab.root_disk and d.level == 0]
    assert len(tar0) == 2 and all(d.nparts >= 3 for d in tar0)


def test_scan_equals_trace_logs(scanned, logs):
    assert scanned.errors == []
    assert rows(scanned.dumps) == rows(logs)
    for a in logs:
        [b] = [d for d in scanned.dumps if (d.host, d.disk, d.date, d.level)
               == (a.host, a.disk, a.date, a.level)]
        assert (b.nparts, b.status, b.usable) == (a.nparts, "OK", True)
        assert [p.written for p in b.parts] == [p.written for p in a.parts]


def test_split_parts_in_order(lab, scanned):
    for d in scanned.dumps:
        assert [p.partnum for p in d.parts] == list(range(1, d.nparts + 1))
        filenums = [p.filenum for p in d.parts]
        assert filenums == list(range(filenums[0], filenums[0] + d.nparts))
        assert len({p.label for p in d.parts}) == 1
    assert max(d.nparts for d in scanned.dumps if d.disk == lab.root_disk) >= 3


def test_chains_identical_at_every_run(lab, scanned, logs):
    for run in lab.runs:
        for host, disk in dles(logs):
            a = compute_chain(logs, host, disk, until=run.datestamp).to_dict()
            b = compute_chain(scanned.dumps, host, disk, until=run.datestamp).to_dict()
            a.pop("program"), b.pop("program")
            assert a == b, (run.datestamp, disk)
    newest = compute_chain(scanned.dumps, "localhost", lab.root_disk)
    assert newest.levels == [0, 1, 2]
    assert newest.dumps[0].date == lab.runs[2].datestamp


def test_programs_and_volumes(lab, scanned):
    dl = amconf.parse_disklist((lab.confdir / "disklist").read_text(),
                               amconf.parse_conf((lab.confdir / "amanda.conf").read_text()))
    want = {e.disk: e.program for e in dl}
    assert {d.disk: d.program for d in scanned.dumps} == want == {
        lab.root_disk: "GNUTAR", lab.data_disk: "DUMP"}
    tl = tapelist.parse((lab.confdir / "tapelist").read_text())
    assert {k: v["date"] for k, v in scanned.volumes.items()} == {
        k: v.datestamp for k, v in tl.items()}
    for label, v in scanned.volumes.items():
        assert (lab.vtapes / v["device"].split("/")[-1] / f"00000.{label}").exists()


def test_one_slot_and_one_file(lab, scanned):
    label, vol = sorted(scanned.volumes.items())[2]  # the newer level 0
    slot = vol["device"][len("file:"):]
    res = scan([slot])
    assert rows(res.dumps) == [r for r in rows(scanned.dumps) if r[4] == label]
    part2 = sorted(f for f in os.listdir(slot) if f.startswith("00003."))[0]
    res = scan([os.path.join(slot, part2)])
    [d] = res.dumps
    assert (d.parts[0].label, d.parts[0].filenum) == (label, 3)


def test_amcheckdump_output_matches_trace_logs(lab, logs, tmp_path):
    """Real amcheckdump (under a pseudo-terminal, so restore finds /dev/tty)."""
    ts = lab.runs[2].datestamp
    out = sh(["script", "-qec", f"amcheckdump {lab.name} --timestamp {ts} </dev/null",
              "/dev/null"], user=AMANDA_USER)
    (tmp_path / "checkdump.txt").write_text(out)
    assert "Reading volume" in out
    got = parse_reports([tmp_path / "checkdump.txt"])
    assert rows(got) == rows([d for d in logs if d.date == ts])
    assert all(d.status == "OK" and d.usable for d in got), [d.message for d in got]
