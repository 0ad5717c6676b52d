"""The catalog parsers against real Amanda 3.5.1 output and synthetic lines.

The fixtures in tests/fixtures/amanda35 come from six amdump runs of a
probe configuration with two DLEs:
  localhost /tmp/probe/mnt  GNUTAR  levels 0 1 2 0 1 2
  localhost /dev/loop0p2    DUMP    levels 0 0 1 0 0 1
one new vtape per run, PROBE-01 .. PROBE-06.
"""

from pathlib import Path

import pytest

from recovery.catalog import amconf, findout, tapelist, tracelog
from recovery.catalog.model import FAILED, OK, PARTIAL, Part

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "amanda35"
MNT = ("localhost", "/tmp/probe/mnt")
LOOP = ("localhost", "/dev/loop0p2")
RUNS = ["20261122012318", "20261122012325", "20261122012334",
        "20261122012342", "20261122012350", "20261122012400"]


def tuples(dumps):
    return {(d.host, d.disk, d.date, d.level, p.label, p.filenum)
            for d in dumps for p in d.parts}


def of(dumps, dle):
    return sorted((d for d in dumps if d.dle == dle), key=lambda d: d.date)


@pytest.fixture(scope="module")
def logs():
    return tracelog.parse_logdir(FIX)


@pytest.fixture(scope="module")
def found():
    return findout.parse((FIX / "find.txt").read_text())


# -- the fixture history, from the trace logs ---------------------------------

def test_logfiles_in_date_order(tmp_path):
    names = [p.name for p in tracelog.logfiles(FIX)]
    assert names == [f"log.{r}.0" for r in RUNS]
    # amreport's log.YYYYMMDD.N (old style) sorts by date, then N; others ignored
    for n in ("log.20261122.1", "log.20261122.0", "log.20261121120000.0",
              "log.error", "amdump.1", "log.20261122.0.tmp"):
        (tmp_path / n).write_text("")
    assert [p.name for p in tracelog.logfiles(tmp_path)] == [
        "log.20261121120000.0", "log.20261122.0", "log.20261122.1"]


def test_trace_logs_levels_and_labels(logs):
    assert len(logs) == 12
    mnt, loop = of(logs, MNT), of(logs, LOOP)
    assert [d.level for d in mnt] == [0, 1, 2, 0, 1, 2]
    assert [d.level for d in loop] == [0, 0, 1, 0, 0, 1]
    assert [d.date for d in mnt] == RUNS
    assert [d.parts[0].label for d in mnt] == [f"PROBE-0{i}" for i in range(1, 7)]


def test_trace_logs_every_dump_ok_with_one_part(logs):
    for d in logs:
        assert (d.status, d.nparts, len(d.parts)) == (OK, 1, 1), d
        assert d.usable
        assert d.parts[0].partnum == 1


def test_trace_logs_count_per_dle(logs):
    assert len(of(logs, MNT)) == 6
    assert len(of(logs, LOOP)) == 6


def test_newest_level0_of_mnt(logs):
    newest = max((d for d in of(logs, MNT) if d.level == 0), key=lambda d: d.date)
    assert newest.date == "20261122012342"
    assert (newest.parts[0].label, newest.parts[0].filenum) == ("PROBE-04", 1)
    # and the loop device was taped first that night, as file 2
    loop0 = [d for d in of(logs, LOOP) if d.date == "20261122012342"][0]
    assert (loop0.parts[0].label, loop0.parts[0].filenum) == ("PROBE-04", 2)


def test_written_comes_from_start_taper(logs):
    for d in logs:
        assert d.parts[0].written == d.date


# -- the same history from amadmin find ---------------------------------------

def test_find_output(found):
    assert len(found) == 12
    assert [d.level for d in of(found, MNT)] == [0, 1, 2, 0, 1, 2]
    assert [d.level for d in of(found, LOOP)] == [0, 0, 1, 0, 0, 1]
    for d in found:
        assert (d.status, d.nparts, len(d.parts)) == (OK, 1, 1)
    first = of(found, LOOP)[0]
    assert (first.date, first.parts[0].label, first.parts[0].filenum) == (
        "20261122012318", "PROBE-01", 1)


def test_find_and_trace_logs_agree(logs, found):
    a, b = tuples(logs), tuples(found)
    assert len(a) == 12
    assert a == b


def test_find_output_without_storage_columns():
    text = (
        "\n"
        "date                host      disk           lv tape or file file part status\n"
        "2012-01-01 01:00:00 client1   /home           0 Daily-03        4  1/1 OK\n"
        "2012-01-02          client1   \"/srv/my data\"  1 Daily-04        2  1/2 OK\n"
        "2012-01-02          client1   \"/srv/my data\"  1 Daily-05        1  2/2 OK\n"
    )
    dumps = {d.disk: d for d in findout.parse(text)}
    assert dumps["/home"].date == "20120101010000"
    assert dumps["/home"].parts == [Part("Daily-03", 4, 1)]
    d = dumps["/srv/my data"]
    assert (d.date, d.level, d.nparts) == ("20120102", 1, 2)
    assert sorted((p.label, p.filenum, p.partnum) for p in d.parts) == [
        ("Daily-04", 2, 1), ("Daily-05", 1, 2)]
    assert d.usable


def test_find_missing_part_makes_dump_unusable():
    text = (
        "date                host      disk lv storage pool tape or file file part status\n"
        "2026-01-01 00:00:00 h         /x    0 s       p    V-01            1  1/3 OK\n"
        "2026-01-01 00:00:00 h         /x    0 s       p    V-02            1  3/3 OK\n"
    )
    [d] = findout.parse(text)
    assert d.missing_parts() == [2]
    assert not d.usable


# Amanda 3.5.1 find.c prints the status column as "<part status> <dump status>"
# whenever either is not OK, and lists failed dumps with an empty label column.
FIND_HEAD = "date                host      disk lv storage pool  tape or file file part status\n"


def test_find_part_ok_but_dump_failed():
    text = FIND_HEAD + (
        '2026-01-01 00:00:00 h         /x    0 probe   probe V-01            1  1/-1 '
        'OK FAIL "No space left on device"\n')
    [d] = findout.parse(text)
    assert d.status == FAILED
    assert not d.usable


def test_find_retried_split_part_is_ok():
    text = FIND_HEAD + (
        "2026-01-01 00:00:00 h         /x    0 probe   probe V-01            1  1/3 OK\n"
        "2026-01-01 00:00:00 h         /x    0 probe   probe V-01            2  2/3 PARTIAL OK\n"
        "2026-01-01 00:00:00 h         /x    0 probe   probe V-02            1  2/3 OK\n"
        "2026-01-01 00:00:00 h         /x    0 probe   probe V-02            2  3/3 OK\n")
    [d] = findout.parse(text)
    assert d.status == OK
    assert sorted((p.label, p.filenum, p.partnum) for p in d.parts) == [
        ("V-01", 1, 1), ("V-02", 1, 2), ("V-02", 2, 3)]
    assert d.usable


def test_find_failed_dump_row():
    text = FIND_HEAD + (
        "2026-01-01 00:00:00 h         /x    1 probe   probe                 0 -1/-1 "
        "FAILED (dumper) [data read: recv error: Connection reset by peer] \n")
    [d] = findout.parse(text)
    assert (d.level, d.status) == (1, FAILED)
    assert not d.usable


# -- synthetic trace lines ------------------------------------------------------

def parse(text):
    dumps = tracelog.parse_lines(text.splitlines(keepends=True), "test")
    return {(d.disk, d.level): d for d in dumps}


def test_33_style_lines_without_storage_tokens():
    ds = parse(
        "START taper datestamp 20130505 label DailySet1-07 tape 1\n"
        "PART taper DailySet1-07 1 client /home 20130505 1/-1 0 [sec 1.0 kb 100 kps 100.0]\n"
        "DONE taper client /home 20130505 1 0 [sec 1.0 kb 100 kps 100.0]\n")
    d = ds[("/home", 0)]
    assert (d.host, d.date, d.status, d.nparts) == ("client", "20130505", OK, 1)
    assert d.parts == [Part("DailySet1-07", 1, 1)]
    assert d.parts[0].written == "20130505"
    assert d.usable


def test_split_dump_over_two_labels():
    ds = parse(
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-01 tape 1\n'
        'PART taper "ST:s" "POOL:p" V-01 3 h /big 20260101000000 1/-1 0 [sec 1 bytes 10 kps 1]\n'
        'PART taper "ST:s" "POOL:p" V-01 4 h /big 20260101000000 2/-1 0 [sec 1 bytes 10 kps 1]\n'
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-02 tape 2\n'
        'PART taper "ST:s" "POOL:p" V-02 1 h /big 20260101000000 3/-1 0 [sec 1 bytes 5 kps 1]\n'
        'DONE taper "ST:s" "POOL:p" h /big 20260101000000 3 0 a:1 a:1 a:1 [sec 3 bytes 25 kps 1]\n')
    d = ds[("/big", 0)]
    assert d.status == OK and d.nparts == 3
    assert [(p.label, p.filenum, p.partnum) for p in d.parts] == [
        ("V-01", 3, 1), ("V-01", 4, 2), ("V-02", 1, 3)]
    assert d.missing_parts() == []
    assert d.usable
    assert d.to_dict()["label"] == "V-01" and d.to_dict()["filenum"] == 3


def test_part_sizes_from_the_taper_stats():
    """bytes (3.x) or kb (older) of each part: what a site plan times its reads by."""
    ds = parse(
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-01 tape 1\n'
        'PART taper "ST:s" "POOL:p" V-01 3 h /big 20260101000000 1/-1 0 [sec 1 bytes 10 kps 1]\n'
        'PART taper "ST:s" "POOL:p" V-01 4 h /big 20260101000000 2/-1 0 [sec 1 bytes 7 kps 1]\n'
        'DONE taper "ST:s" "POOL:p" h /big 20260101000000 2 0 a:1 a:1 a:1 [sec 3 bytes 17 kps 1]\n'
        "START taper datestamp 20130505 label DailySet1-07 tape 1\n"
        "PART taper DailySet1-07 1 client /home 20130505 1/-1 0 [sec 1.0 kb 100 kps 100.0]\n"
        "DONE taper client /home 20130505 1 0 [sec 1.0 kb 100 kps 100.0]\n"
        "PART taper DailySet1-07 2 client /etc 20130505 1/-1 0\n"
        "DONE taper client /etc 20130505 1 0\n")
    assert [p.size for p in ds[("/big", 0)].parts] == [10, 7]
    assert [p.size for p in ds[("/home", 0)].parts] == [100 * 1024]
    assert ds[("/etc", 0)].parts[0].size is None
    # the size is what the source says, not part of the part's identity
    assert ds[("/big", 0)].parts[0] == Part("V-01", 3, 1)


def test_done_with_a_part_missing_from_the_log():
    ds = parse(
        'PART taper "ST:s" "POOL:p" V-01 3 h /big 20260101000000 1/-1 0 [sec 1 bytes 10 kps 1]\n'
        'DONE taper "ST:s" "POOL:p" h /big 20260101000000 2 0 a:1 a:1 a:1 [sec 3 bytes 25 kps 1]\n')
    d = ds[("/big", 0)]
    assert d.missing_parts() == [2]
    assert not d.usable


def test_partpartial_and_partial_give_partial():
    ds = parse(
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-01 tape 1\n'
        'PART taper "ST:s" "POOL:p" V-01 1 h /x 20260101000000 1/-1 1 [sec 1 bytes 10 kps 1]\n'
        'PARTPARTIAL taper "ST:s" "POOL:p" V-01 2 h /x 20260101000000 2/-1 1 '
        '[sec 1 bytes 7 kps 1] "No space left on device"\n'
        'PARTIAL taper "ST:s" "POOL:p" h /x 20260101000000 2 1 a:1 a:1 a:1 '
        '[sec 2 bytes 17 kps 1] "No space left on device, splitting not enabled"\n')
    d = ds[("/x", 1)]
    assert d.status == PARTIAL
    assert "V-01 file 2" in d.message
    assert not d.usable


def test_partial_line_alone_gives_partial():
    ds = parse(
        'PART taper "ST:s" "POOL:p" V-01 1 h /x 20260101000000 1/-1 1 [sec 1 bytes 10 kps 1]\n'
        'PARTIAL taper "ST:s" "POOL:p" h /x 20260101000000 1 1 a:1 a:1 a:1 [sec 2 bytes 10 kps 1]\n')
    d = ds[("/x", 1)]
    assert (d.status, d.nparts) == (PARTIAL, 1)
    assert "only partially" in d.message
    assert not d.usable


def test_fail_dumper_gives_failed():
    ds = parse("FAIL dumper h /x 20260101000000 1 [error msg]\n"
               "  sendbackup: info end\n")
    d = ds[("/x", 1)]
    assert d.status == FAILED
    assert d.message == "dumper: [error msg]"
    assert d.parts == [] and not d.usable


def test_fail_taper_with_storage_tokens():
    ds = parse(
        'PART taper "ST:s" "POOL:p" V-01 1 h /x 20260101000000 1/-1 0 [sec 1 bytes 10 kps 1]\n'
        'FAIL taper "ST:s" "POOL:p" h /x 20260101000000 0 error "No space left on device"\n')
    d = ds[("/x", 0)]
    assert d.status == FAILED
    assert d.message == "taper: error No space left on device"
    assert not d.usable


def test_parts_without_done_are_partial():
    # the run died while taping: no DONE, PARTIAL or FAIL line ever came
    ds = parse(
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-01 tape 1\n'
        'PART taper "ST:s" "POOL:p" V-01 1 h /x 20260101000000 1/-1 0 [sec 1 bytes 10 kps 1]\n'
        'PART taper "ST:s" "POOL:p" V-01 2 h /x 20260101000000 2/-1 0 [sec 1 bytes 10 kps 1]\n')
    d = ds[("/x", 0)]
    assert d.status == PARTIAL
    assert "interrupted" in d.message
    assert d.nparts is None
    assert not d.usable


def test_quoted_disk_name_with_space():
    ds = parse(
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-01 tape 1\n'
        'PART taper "ST:s" "POOL:p" V-01 1 h "/srv/my data" 20260101000000 1/-1 0 '
        '[sec 1 bytes 10 kps 1]\n'
        'DONE taper "ST:s" "POOL:p" h "/srv/my data" 20260101000000 1 0 a:1 a:1 a:1 '
        '[sec 1 bytes 10 kps 1]\n')
    d = ds[("/srv/my data", 0)]
    assert d.status == OK and d.usable
    assert d.parts == [Part("V-01", 1, 1)]


BAD_FILENUM = (
    'PART taper "ST:s" "POOL:p" V-01 one h /x 20260101000000 1/-1 0 [sec 1]\n'
    'PART taper "ST:s" "POOL:p" V-01 2 h /y 20260101000000 1/-1 0 [sec 1]\n'
    'DONE taper "ST:s" "POOL:p" h /y 20260101000000 1 0 [sec 1]\n')


def test_unreadable_line_is_skipped_with_a_warning(caplog):
    ds = parse(BAD_FILENUM)
    assert ds[("/y", 0)].usable
    assert ds[("/y", 0)].parts == [Part("V-01", 2, 1)]
    assert not any(d.usable for k, d in ds.items() if k[0] == "/x")
    assert "test:1: unreadable trace line" in caplog.text


def test_unreadable_line_leaves_no_phantom_dump():
    assert list(parse(BAD_FILENUM)) == [("/y", 0)]


def test_dump_retried_after_dumper_failure_is_ok():
    ds = parse(
        "FAIL dumper h /x 20260101000000 0 [data read: recv error: Connection reset]\n"
        "  sendbackup: start [h:/x level 0]\n"
        "SUCCESS dumper h /x 20260101000000 0 a:1 a:1 [sec 1 kb 10 kps 10 orig-kb 10]\n"
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-01 tape 1\n'
        'PART taper "ST:s" "POOL:p" V-01 1 h /x 20260101000000 1/-1 0 [sec 1 bytes 10 kps 1]\n'
        'DONE taper "ST:s" "POOL:p" h /x 20260101000000 1 0 a:1 a:1 a:1 [sec 1 bytes 10 kps 1]\n')
    d = ds[("/x", 0)]
    assert d.status == OK
    assert d.usable


def test_split_part_retried_on_next_volume_is_ok():
    ds = parse(
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-01 tape 1\n'
        'PART taper "ST:s" "POOL:p" V-01 1 h /x 20260101000000 1/-1 0 [sec 1 bytes 10 kps 1]\n'
        'PARTPARTIAL taper "ST:s" "POOL:p" V-01 2 h /x 20260101000000 2/-1 0 '
        '[sec 1 bytes 7 kps 1] "No space left on device"\n'
        "INFO taper Will request retry of failed split part.\n"
        'START taper datestamp 20260101000000 "ST:s" "POOL:p" label V-02 tape 2\n'
        'PART taper "ST:s" "POOL:p" V-02 1 h /x 20260101000000 2/-1 0 [sec 1 bytes 10 kps 1]\n'
        'PART taper "ST:s" "POOL:p" V-02 2 h /x 20260101000000 3/-1 0 [sec 1 bytes 4 kps 1]\n'
        'DONE taper "ST:s" "POOL:p" h /x 20260101000000 3 0 a:1 a:1 a:1 [sec 3 bytes 24 kps 1]\n')
    d = ds[("/x", 0)]
    assert d.status == OK
    assert [(p.label, p.filenum, p.partnum) for p in d.parts] == [
        ("V-01", 1, 1), ("V-02", 1, 2), ("V-02", 2, 3)]
    assert d.usable


# -- tapelist ------------------------------------------------------------------

def test_tapelist_fixture():
    vols = tapelist.parse((FIX / "tapelist").read_text())
    assert sorted(vols) == [f"PROBE-0{i}" for i in range(1, 7)]
    v = vols["PROBE-04"]
    assert (v.label, v.datestamp, v.reuse, v.pool) == (
        "PROBE-04", "20261122012342", True, "probe")


def test_tapelist_old_style():
    vols = tapelist.parse(
        "20100103 DailySet1-03 reuse\n"
        "20100102 DailySet1-02 no-reuse\n"
        "0 DailySet1-01 reuse\n"
        "# a comment line\n"
        "\n"
        "20100104 DailySet1-04\n")
    assert sorted(vols) == ["DailySet1-01", "DailySet1-02", "DailySet1-03", "DailySet1-04"]
    assert vols["DailySet1-03"].pool is None
    assert vols["DailySet1-03"].datestamp == "20100103"
    assert vols["DailySet1-02"].reuse is False
    assert vols["DailySet1-04"].reuse is True
    assert vols["DailySet1-01"].datestamp == "0"  # labelled, never written


# -- amanda.conf and disklist ------------------------------------------------------

@pytest.fixture(scope="module")
def conf():
    return amconf.parse_conf((FIX / "amanda.conf").read_text())


def test_conf_fixture(conf):
    assert sorted(conf.dumptypes) == ["du", "gt", "gta"]
    assert conf.program("gt") == "GNUTAR"
    assert conf.program("du") == "DUMP"
    assert conf.program("gta") == "APPLICATION:amgtar"
    assert conf.changer == "chg-disk:/tmp/probe/vtapes"
    assert conf.params["labelstr"] == "^PROBE-[0-9][0-9]*$"
    assert conf.params["tapetype"] == "VT"
    # blocks that are not dumptypes do not leak into the top level
    assert "directory" not in conf.params and "plugin" not in conf.params
    assert conf.dumptypes["gt"].params["exclude"] == "./srv"


def test_conf_inheritance():
    c = amconf.parse_conf(
        'define dumptype global {\n'
        '    index yes\n'
        '    program "GNUTAR"   # the site default\n'
        '}\n'
        'define dumptype "user-tar" {\n'
        '    global\n'
        '    comment "inherits program"\n'
        '}\n'
        'define dumptype root-dump {\n'
        '    global\n'
        '    program "DUMP"\n'
        '}\n'
        'define dumptype grandchild {\n'
        '    user-tar\n'
        '}\n')
    assert c.dumptypes["user-tar"].parents == ["global"]
    assert c.program("user-tar") == "GNUTAR"
    assert c.program("root-dump") == "DUMP"
    assert c.program("grandchild") == "GNUTAR"
    assert c.resolve("grandchild", "index") == "yes"
    assert c.resolve("grandchild", "comment") == "inherits program"


def test_conf_default_program_is_dump():
    c = amconf.parse_conf("define dumptype plain {\n  compress none\n}\n")
    assert c.program("plain") == "DUMP"
    assert c.program("not-defined-anywhere") == "DUMP"


def test_conf_application_dumptype_via_parent():
    c = amconf.parse_conf(
        'define application-tool app_amgtar {\n  plugin "amgtar"\n}\n'
        'define dumptype app-base {\n  program "APPLICATION"\n  application "app_amgtar"\n}\n'
        'define dumptype mine {\n  app-base\n  compress client fast\n}\n'
        'define dumptype noapp {\n  program "application"\n}\n')
    assert c.program("mine") == "APPLICATION:amgtar"  # the plugin it runs
    assert c.program("noapp") == "APPLICATION"


def test_conf_application_by_its_plugin_not_its_name():
    """`application "site_tar"` used to be "cannot be restored yet" (no "gtar" in
    the name) after the wipe; an application-tool inherits its plugin too."""
    c = amconf.parse_conf(
        'define application-tool base_app {\n  plugin "amgtar"\n  property "ATIME-PRESERVE" '
        '"no"\n}\n'
        'define application-tool site_tar {\n  base_app\n  property "ONE-FILE-SYSTEM" '
        '"yes"\n}\n'
        'define application-tool smb {\n  plugin "amsamba"\n}\n'
        'define dumptype t {\n  program "APPLICATION"\n  application "site_tar"\n}\n'
        'define dumptype s {\n  program "APPLICATION"\n  application "smb"\n}\n'
        'define dumptype u {\n  program "APPLICATION"\n  application "undefined_one"\n}\n')
    assert c.program("t") == "APPLICATION:amgtar"
    assert c.program("s") == "APPLICATION:amsamba"
    assert c.program("u") == "APPLICATION:undefined_one"


def test_conf_underscores_and_comments():
    c = amconf.parse_conf(
        'tpchanger "chg-robot:/dev/sg1"  # the library\n'
        'tape_splitsize 1 gbytes\n'
        'org "has # inside"\n')
    assert c.changer == "chg-robot:/dev/sg1"
    assert c.params["tape-splitsize"] == "1 gbytes"
    assert c.params["org"] == "has # inside"


def test_conf_parent_named_after_a_setting_overrides_it():
    c = amconf.parse_conf(
        'define dumptype dump-base {\n  program "DUMP"\n}\n'
        'define dumptype odd {\n  program "GNUTAR"\n  dump-base\n}\n')
    assert c.program("odd") == "DUMP"


def test_disklist_fixture(conf):
    entries = amconf.parse_disklist((FIX / "disklist").read_text(), conf)
    assert [(e.host, e.disk, e.device, e.dumptype, e.program) for e in entries] == [
        ("localhost", "/tmp/probe/mnt", "/tmp/probe/mnt", "gt", "GNUTAR"),
        ("localhost", "/dev/loop0p2", "/dev/loop0p2", "du", "DUMP"),
    ]


def test_disklist_forms():
    conf = amconf.parse_conf((FIX / "amanda.conf").read_text())  # inline types are added
    text = (
        "# host  disk  [device]  dumptype  [spindle [interface]]\n"
        "client1 /home gt\n"
        "client1 root / gt\n"
        "client1 /var gt 1\n"
        "client1 /opt du -1 local\n"
        "client1 data /srv/data gt 2 local\n"
        'client1 "/srv/my data" gta   # trailing comment\n'
        "client1 /etc {\n"
        "    gt\n"
        '    exclude "./tmp"\n'
        "} 1\n"
        "client1 boot /boot {\n"
        '    program "DUMP"\n'
        "}\n"
        "client1 /last du\n"
    )
    entries = amconf.parse_disklist(text, conf)
    got = [(e.disk, e.device, e.program) for e in entries]
    assert got == [
        ("/home", "/home", "GNUTAR"),
        ("root", "/", "GNUTAR"),
        ("/var", "/var", "GNUTAR"),
        ("/opt", "/opt", "DUMP"),
        ("data", "/srv/data", "GNUTAR"),
        ("/srv/my data", "/srv/my data", "APPLICATION:amgtar"),
        ("/etc", "/etc", "GNUTAR"),
        ("boot", "/boot", "DUMP"),
        ("/last", "/last", "DUMP"),
    ]
    assert [e.dumptype for e in entries][:2] == ["gt", "gt"]
    inline = entries[6]
    assert inline.dumptype == "_inline_client1:/etc"
    assert conf.dumptypes[inline.dumptype].parents == ["gt"]
    assert conf.dumptypes[inline.dumptype].params["exclude"] == "./tmp"


def test_disklist_without_conf_defaults_to_dump():
    [e] = amconf.parse_disklist("h /x unknown-type\n")
    assert (e.dumptype, e.program) == ("unknown-type", "DUMP")
