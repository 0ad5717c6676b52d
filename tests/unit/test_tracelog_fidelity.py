"""Trace logs Amanda 3.5.1 reads (find.c, Amanda::DB::Catalog) and we must read alike.

Each log below is written to the shape Amanda's own writers give it:
3.5's taper (perl/Amanda/Taper/Worker.pm) tags its lines "ST:storage"
"POOL:pool"; 2.5's taper (server-src/taper.c) wrote SUCCESS, PARTIAL and
CHUNK lines with no file number and no part count.
"""

import logging
import shutil
from pathlib import Path

import pytest

from essentials.collectors import amanda as collector
from essentials.runner import Runner
from recovery.catalog import tracelog
from recovery.catalog.chains import compute_chains
from recovery.catalog.model import OK, PARTIAL, Part
from recovery.catalog.server import from_server
from recovery.catalog.source import build_config

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "amanda35"
STATS = "[sec 0.100000 bytes 20480 kps 200.000000 orig-kb 21]"
CRCS = "f2e215b8:20480 f2e215b8:20480 f2e215b8:20480"


def parse(text, **kw):
    return tracelog.parse_lines(text.splitlines(keepends=True), "test", **kw)


def by_disk(dumps):
    return {d.disk: d for d in dumps}


def places(d):
    return [(p.label, p.filenum, p.partnum) for p in sorted(d.parts, key=lambda p: p.partnum)]


def unreadable(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- 1. lines without a storage tag belong to the configuration's storage ----------

UNTAGGED_PARTS = (
    'START taper datestamp 20260301010000 "ST:daily" "POOL:daily" label DAILY-01 tape 1\n'
    f"PART taper DAILY-01 1 web /srv 20260301010000 1/-1 0 {STATS}\n"
    f"PART taper DAILY-01 2 web /srv 20260301010000 2/-1 0 {STATS}\n"
    f'DONE taper "ST:daily" "POOL:daily" web /srv 20260301010000 2 0 {CRCS} {STATS}\n')


def test_untagged_parts_join_the_done_tagged_with_the_config_name():
    [d] = parse(UNTAGGED_PARTS, config="daily")
    assert (d.status, d.storage, d.nparts) == (OK, "daily", 2)
    assert places(d) == [("DAILY-01", 1, 1), ("DAILY-01", 2, 2)]
    assert d.usable


def test_another_storage_stays_another_copy():
    # a DONE of storage "offsite" is not the end of the untagged (daily) parts
    text = UNTAGGED_PARTS.replace('DONE taper "ST:daily" "POOL:daily"',
                                  'DONE taper "ST:offsite" "POOL:offsite"')
    ds = {d.storage: d for d in parse(text, config="daily")}
    assert set(ds) == {"daily", "offsite"}
    assert not ds["daily"].usable and not ds["offsite"].usable


def test_a_configuration_catalog_names_the_storage_and_restores():
    cat = build_config("daily", "", "", None, [("log.20260301010000.0", UNTAGGED_PARTS)])
    [d] = cat.dumps
    assert d.usable and d.storage == "daily"
    chains, errors = compute_chains(cat.dumps)
    assert errors == []
    assert [(c.host, c.disk, c.levels, c.volumes()) for c in chains] == [
        ("web", "/srv", [0], ["DAILY-01"])]


# -- 2. before 3.0: SUCCESS lines, each image the next file on the volume -----------

PRE30 = (
    "START planner date 20050101\n"
    "START driver date 20050101\n"
    "START taper datestamp 20050101 label DAILY-03 tape 1\n"
    "SUCCESS dumper client /home 20050101 0 [sec 10.0 kb 1000 kps 100.0 orig-kb 1000]\n"
    "SUCCESS taper client /home 20050101 0 [sec 2.0 kb 1024 kps 512.0 "
    "{wr: writers 32 rdwait 0.000 wrwait 1.000 filemark 0.500}]\n"
    "FAIL dumper client /var 20050101 1 [could not connect to client]\n"
    "  sendbackup: error [could not connect]\n"
    "SUCCESS dumper client /var 20050101 1 [sec 1.0 kb 64 kps 64.0 orig-kb 64]\n"
    "SUCCESS taper client /var 20050101 1 [sec 0.5 kb 96 kps 192.0]\n"
    "START taper datestamp 20050101 label DAILY-04 tape 2\n"
    "SUCCESS taper client /etc 20050101 0 [sec 0.5 kb 96 kps 192.0]\n"
    "FINISH driver date 20050101 time 120.000\n")


def test_pre30_success_is_the_next_file_of_the_volume(caplog):
    ds = by_disk(parse(PRE30))
    assert {k: places(d) for k, d in ds.items()} == {
        "/home": [("DAILY-03", 1, 1)],
        "/var": [("DAILY-03", 2, 1)],  # the retry after the dumper's failure
        "/etc": [("DAILY-04", 1, 1)]}  # a new volume starts again at file 1
    for d in ds.values():
        assert (d.status, d.nparts, d.date) == (OK, 1, "20050101")
        assert d.usable
    assert ds["/var"].level == 1 and ds["/var"].parts[0].written == "20050101"
    assert unreadable(caplog) == []


def test_pre30_log_gives_a_chain_to_restore():
    cat = build_config("daily", "", "", None, [("log.20050101.0", PRE30)])
    chains, errors = compute_chains(cat.dumps)
    # /var has only a level 1 in this one log: no chain, as it should be
    assert [disk for _, disk, _ in errors] == ["/var"]
    assert sorted(c.disk for c in chains) == ["/etc", "/home"]
    home = next(c for c in chains if c.disk == "/home")
    assert [(d.level, p.label, p.filenum) for d, p in home.parts()] == [(0, "DAILY-03", 1)]


def test_oldest_success_line_without_datestamp_takes_the_runs():
    [d] = parse("START taper datestamp 19990402 label T-7 tape 1\n"
                "SUCCESS taper alpha sd0a 0 [sec 60.0 kb 2048 kps 34.1]\n")
    assert (d.host, d.disk, d.date, d.level, places(d)) == (
        "alpha", "sd0a", "19990402", 0, [("T-7", 1, 1)])
    assert d.usable


def test_pre25_split_image_in_chunks():
    ds = by_disk(parse(
        "START taper datestamp 20060101 label D-01 tape 1\n"
        "SUCCESS taper h /small 20060101 1 [sec 1.0 kb 10 kps 10.0]\n"
        "CHUNK taper h /big 20060101 1 0 [sec 9.0 kb 900 kps 100.0]\n"
        "CHUNK taper h /big 20060101 2 0 [sec 9.0 kb 900 kps 100.0]\n"
        "INFO taper continuing h:/big.0 on new tape from 1800kb mark: [short write]\n"
        "START taper datestamp 20060101 label D-02 tape 2\n"
        "CHUNK taper h /big 20060101 3 0 [sec 1.0 kb 100 kps 100.0]\n"
        "CHUNKSUCCESS taper h /big 20060101 0 [sec 19.0 kb 1900 kps 100.0]\n"))
    assert places(ds["/small"]) == [("D-01", 1, 1)]
    big = ds["/big"]
    assert places(big) == [("D-01", 2, 1), ("D-01", 3, 2), ("D-02", 1, 3)]
    assert (big.status, big.nparts) == (OK, 3) and big.usable


def test_success_before_any_start_taper_is_skipped_with_a_reason(caplog):
    assert parse("SUCCESS taper h /x 20050101 0 [sec 1.0 kb 1 kps 1.0]\n") == []
    assert any("volume is unknown" in m for m in unreadable(caplog))


# -- 3. the --server path reads every trace log Amanda reads ------------------------

LOGNAMES = ["log.20050101", "log.20050102.amflush", "log.20050102.1", "log.20050102.0",
            "log.20260301010000.0"]
JUNK = ["log.20050102.0.tmp", "log.error", "amdump.1", "log.20050102.amflush.1"]


def _done(i):
    date = f"2026030{i}"
    return (f"START taper datestamp {date} label V-0{i} tape 1\n"
            f"PART taper V-0{i} 1 h /d{i} {date} 1/-1 0 {STATS}\n"
            f"DONE taper h /d{i} {date} 1 0 {STATS}\n")


@pytest.fixture
def server(tmp_path):
    etc = tmp_path / "etc"
    (etc / "probe").mkdir(parents=True)
    shutil.copy(FIX / "amanda.conf", etc / "probe" / "amanda.conf")
    shutil.copy(FIX / "disklist", etc / "probe" / "disklist")
    logdir = tmp_path / "state" / "log"
    logdir.mkdir(parents=True)
    for i, name in enumerate(LOGNAMES + JUNK, 1):
        (logdir / name).write_text(_done(i))
    runner = Runner(dry_run=True, responses={
        "amgetconf probe diskfile": "disklist\n",
        "amgetconf probe tapelist": f"{tmp_path}/state/tapelist\n",
        "amgetconf probe logdir": f"{logdir}\n",
        "amadmin probe find": (FIX / "find.txt").read_text(),
    })
    return etc, logdir, runner


def test_server_reads_old_style_and_amflush_logs(server):
    etc, logdir, runner = server
    cat = from_server("probe", runner, etc)
    assert {Path(d.source).name for d in cat.dumps} == set(LOGNAMES)
    assert all(d.usable for d in cat.dumps)


def test_logfiles_in_the_order_amanda_reads_them(server):
    _, logdir, _ = server
    assert [p.name for p in tracelog.logfiles(logdir)] == [
        "log.20050101", "log.20050102.0", "log.20050102.1", "log.20050102.amflush",
        "log.20260301010000.0"]


def test_collector_and_server_agree_on_the_trace_logs(server, tmp_path):
    etc, logdir, runner = server
    out = tmp_path / "out"
    out.mkdir()
    summary = collector.collect_config(runner, "probe", out, etc)
    collected = sorted(p.name for p in (out / "amanda" / "probe" / "logs").iterdir())
    assert collected == sorted(p.name for p in tracelog.logfiles(logdir))
    assert summary["trace_logs"] == len(LOGNAMES)


# -- 4. PARTIAL without a part count ---------------------------------------------

def test_pre30_partial_without_count_is_a_partial_image_in_its_file(caplog):
    ds = by_disk(parse(
        "START taper datestamp 20050101 label DAILY-03 tape 1\n"
        "SUCCESS taper client /home 20050101 0 [sec 2.0 kb 1024 kps 512.0]\n"
        "PARTIAL taper client /data 20050101 1 [sec 9.0 kb 4096 kps 455.1]\n"
        "SUCCESS taper client /etc 20050101 0 [sec 0.5 kb 96 kps 192.0]\n"))
    assert unreadable(caplog) == []
    data = ds["/data"]
    assert (data.level, data.status, places(data)) == (1, PARTIAL, [("DAILY-03", 2, 1)])
    assert "partial" in data.message and "DAILY-03 file 2" in data.message
    assert not data.usable
    # the partial image took its file, as find.c counts it
    assert places(ds["/etc"]) == [("DAILY-03", 3, 1)]


def test_tagged_partial_without_count_after_its_parts(caplog):
    [d] = parse(
        'START taper datestamp 20260301010000 "ST:s" "POOL:p" label V-01 tape 1\n'
        f'PART taper "ST:s" "POOL:p" V-01 1 h /x 20260301010000 1/-1 2 {STATS}\n'
        f'PARTIAL taper "ST:s" "POOL:p" h /x 20260301010000 2 {STATS} "dumper: strange"\n')
    assert unreadable(caplog) == []
    assert (d.level, d.status, d.parts) == (2, PARTIAL, [Part("V-01", 1, 1)])
    assert "no DONE line" not in d.message
    assert not d.usable
