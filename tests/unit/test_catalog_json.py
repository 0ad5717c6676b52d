"""One catalog from several sources, and `amdr-recover catalog --json`'s exact shape."""

import json
import shutil
from pathlib import Path

import pytest

from essentials.bundle import write_manifest
from recovery import cli
from recovery.catalog import combined, tracelog
from recovery.restore import listing as show
from recovery.catalog.amconf import DiskEntry
from recovery.catalog.chains import compute_chains
from recovery.catalog.model import FAILED, PARTIAL, Dump, Part
from recovery.catalog.tapelist import Volume

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "amanda35"
GT, DU = "/tmp/probe/mnt", "/dev/loop0p2"


def dumpdict(date, level, label, filenum):
    return {"date": date, "level": level, "label": label, "filenum": filenum,
            "parts": [{"part": 1, "label": label, "filenum": filenum}]}


FIXTURE_DOC = {
    "chains": [
        {"host": "localhost", "disk": DU, "program": "DUMP",
         "dumps": [dumpdict("20261122012350", 0, "PROBE-05", 1),
                   dumpdict("20261122012400", 1, "PROBE-06", 1)]},
        {"host": "localhost", "disk": GT, "program": "GNUTAR",
         "dumps": [dumpdict("20261122012342", 0, "PROBE-04", 1),
                   dumpdict("20261122012350", 1, "PROBE-05", 2),
                   dumpdict("20261122012400", 2, "PROBE-06", 2)]},
    ],
    "errors": [],
}


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "bundle"
    base = root / "amanda" / "probe"
    (base / "logs").mkdir(parents=True)
    for name in ("amanda.conf", "disklist", "tapelist", "find.txt"):
        shutil.copy(FIX / name, base / name)
    for p in FIX.glob("log.*"):
        shutil.copy(p, base / "logs" / p.name)
    write_manifest(root, {"amanda": {"status": "ok"}})
    return root


def run_cli(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_shape_exactly(bundle, capsys):
    rc, out, err = run_cli(capsys, "catalog", "--bundle", str(bundle), "--json")
    assert rc == 0, err
    assert json.loads(out) == FIXTURE_DOC


def test_json_filters_and_until(bundle, capsys):
    rc, out, _ = run_cli(capsys, "catalog", "--bundle", str(bundle), "--json",
                         "--disk", GT, "--until", "20261122012334")
    assert rc == 0
    doc = json.loads(out)
    assert [c["disk"] for c in doc["chains"]] == [GT]
    assert [(d["label"], d["filenum"]) for d in doc["chains"][0]["dumps"]] == [
        ("PROBE-01", 2), ("PROBE-02", 2), ("PROBE-03", 2)]
    rc, out, _ = run_cli(capsys, "catalog", "--bundle", str(bundle), "--json",
                         "--host", "nosuchhost")
    assert rc == 0 and json.loads(out) == {"chains": [], "errors": []}


def test_missing_volume_is_an_error_entry_and_exit_1(bundle, capsys):
    # the volumes at hand named: PROBE-04, the GNUTAR level 0, is not among them
    rc, out, _ = run_cli(capsys, "catalog", "--bundle", str(bundle), "--json",
                         "--volume", "PROBE-05", "--volume", "PROBE-06")
    assert rc == 1
    doc = json.loads(out)
    assert [c["disk"] for c in doc["chains"]] == [DU]
    assert [(e["host"], e["disk"]) for e in doc["errors"]] == [("localhost", GT)]
    msg = doc["errors"][0]["message"]
    assert "volume PROBE-04 (level 0 of 20261122012342, file 1) is not available" in msg
    assert "last seen: written 20261122012342 per the tapelist of bundle" in msg
    assert "amanda/probe/logs/log.20261122012342.0" in msg


def test_human_output(bundle, capsys):
    rc, out, _ = run_cli(capsys, "catalog", "--bundle", str(bundle), "--disk", GT)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("Catalog from: bundle bundle (probe); 12 dump records, 2 DLEs")
    assert "Volumes at hand: not known" in lines[1]
    assert f"localhost:{GT}  program GNUTAR  levels 0 1 2" in lines
    assert "  level 0  20261122012342  PROBE-04 file 1" in lines
    assert "  volumes, in order: PROBE-04, PROBE-05, PROBE-06" in lines
    assert ("  ( cd / && runuser -u backup -- amrestore -p -f 2 -l PROBE-06 '<device holding "
            f"PROBE-06>' =localhost ={GT} ) | tar -x -p -G --numeric-owner -f - -C DIR") in lines


def test_no_source_is_a_usage_error(capsys):
    rc, out, err = run_cli(capsys, "catalog", "--json")
    assert rc == 2 and out == ""
    assert "no catalog source" in err


def test_doc_error_entries():
    assert show.doc([], [("h", "/d", "h:/d: no dump of this DLE in the catalog")]) == {
        "chains": [], "errors": [{"host": "h", "disk": "/d",
                                  "message": "h:/d: no dump of this DLE in the catalog"}]}


# -- merging sources ----------------------------------------------------------------

def D(date, level, *parts, status="OK", nparts=None, program="", source=""):
    return Dump("h", "/d", date, level, [Part(*p) for p in parts],
                nparts if nparts is not None else len(parts), status, program=program,
                source=source)


def test_same_copy_in_two_sources_is_one_record():
    a = [D("20260101010000", 0, ("V-01", 1, 1, "20260101010000"), source="log.1")]
    b = [D("20260101010000", 0, ("V-01", 1, 1), program="GNUTAR", source="scan")]
    out = combined.merge_dumps([a, b])
    assert len(out) == 1
    d = out[0]
    assert d.parts == [Part("V-01", 1, 1)] and d.parts[0].written == "20260101010000"
    assert (d.program, d.source) == ("GNUTAR", "log.1; scan")
    assert a[0].program == "" and a[0].source == "log.1"  # the sources' records untouched


def test_copies_on_other_volumes_stay_apart():
    a = [D("20260101010000", 0, ("V-01", 1, 1))]
    b = [D("20260101010000", 0, ("COPY-01", 3, 1))]
    out = combined.merge_dumps([a, b])
    assert sorted(p.label for d in out for p in d.parts) == ["COPY-01", "V-01"]
    chains, _ = compute_chains(out, available={"COPY-01"})
    assert chains[0].volumes() == ["COPY-01"]


def test_parts_seen_by_different_sources_are_joined():
    a = [D("20260101010000", 0, ("V-01", 1, 1), nparts=None)]
    b = [D("20260101010000", 0, ("V-01", 1, 1), ("V-02", 1, 2), nparts=2)]
    (d,) = combined.merge_dumps([a, b])
    assert [(p.label, p.partnum) for p in d.parts] == [("V-01", 1), ("V-02", 2)]
    assert d.nparts == 2 and d.usable


def test_the_worse_verdict_wins():
    a = [D("20260101010000", 0, ("V-01", 1, 1))]
    b = [D("20260101010000", 0, ("V-01", 1, 1), status=PARTIAL)]
    b[0].message = "the taper wrote it only partially"
    (d,) = combined.merge_dumps([a, b])
    assert d.status == PARTIAL and d.message == "the taper wrote it only partially"
    (d,) = combined.merge_dumps([b, a])
    assert d.status == PARTIAL


def test_failures_seen_twice_are_one():
    f1 = D("20260101010000", 0, status=FAILED, nparts=0)
    f2 = D("20260101010000", 0, status=FAILED, nparts=0)
    assert len(combined.merge_dumps([[f1], [f2]])) == 1


def test_one_source_is_taken_as_it_is():
    a = [D("20260101010000", 0, ("V-01", 1, 1))]
    assert combined.merge_dumps([a, []])[0] is a[0]


def test_build_available_volumes_devices_and_whereabouts():
    server = combined.Source("server daily", [D("20260101010000", 0, ("V-01", 1, 1))],
                             tapelist={"V-01": Volume("V-01", "20260101010000", True),
                                       "V-02": Volume("V-02", "20260102010000", True)},
                             vtape_root="/vt")
    scan = combined.Source("scan of /dev/nst0", [], volumes={
        "V-07": {"device": "/dev/nst0", "date": "20260107010000"}})
    libs = {"/vt": {"V-01": "file:/vt/slot1"}, "/more": {"V-03": "file:/more/slot3"}}
    cat = combined.build([server, scan], vtapes=["/more"], volumes=["V-09"],
                         libraries=lambda r: libs.get(r, {}))
    assert cat.available == {"V-01", "V-03", "V-07", "V-09"}
    assert cat.devices == {"V-01": "file:/vt/slot1", "V-03": "file:/more/slot3",
                           "V-07": "/dev/nst0"}
    assert cat.whereabouts["V-01"] == "in /vt/slot1"
    assert cat.whereabouts["V-02"] == "written 20260102010000 per the tapelist of server daily"
    assert cat.whereabouts["V-07"] == "on /dev/nst0 (scan of /dev/nst0)"
    assert cat.vtape_roots == ["/vt", "/more"]
    assert cat.sources == ["server daily", "scan of /dev/nst0"]


def test_build_without_any_volume_information():
    cat = combined.build([combined.Source("reports", [D("20260101010000", 0, ("V-01", 1, 1))])],
                         libraries=lambda r: {})
    assert cat.available is None
    chains, errors = cat.chains()
    assert errors == [] and chains[0].volumes() == ["V-01"]


def test_program_from_the_header_before_the_disklist():
    dl = [DiskEntry("h", "/d", "/d", "gt", "GNUTAR"), DiskEntry("h", "/e", "/e", "x", "DUMP"),
          DiskEntry("h", "/f", "/f", "?", "")]
    dumps = [D("20260101010000", 0, ("V-01", 1, 1), program="APPLICATION:amgtar"),
             Dump("h", "/e", "20260101010000", 0, [Part("V-01", 2, 1)], 1),
             Dump("h", "/f", "20260101010000", 0, [Part("V-01", 3, 1)], 1)]
    cat = combined.build([combined.Source("s", dumps, dl)], libraries=lambda r: {})
    chains, errors = cat.chains()
    assert errors == []
    assert {c.disk: c.program for c in chains} == {"/d": "APPLICATION:amgtar", "/e": "DUMP",
                                                   "/f": None}


def test_disklist_dle_without_dumps_is_an_error():
    dl = [DiskEntry("h", "/never", "/never", "gt", "GNUTAR")]
    cat = combined.build([combined.Source("s", [D("20260101010000", 0, ("V-01", 1, 1))], dl)],
                         libraries=lambda r: {})
    chains, errors = cat.chains()
    assert [c.disk for c in chains] == ["/d"]
    assert errors == [("h", "/never", "h:/never: no dump of this DLE in the catalog")]
    assert cat.chains(disks=["/d"])[1] == []


def test_trace_log_records_say_where_they_came_from():
    path = FIX / "log.20261122012342.0"
    ds = tracelog.parse_lines(path.read_text().splitlines(), str(path))
    assert ds and all(d.source == str(path) for d in ds)


REPORTS = FIX.parent / "reports"


def test_reports_with_a_disklist(capsys):
    rc, out, err = run_cli(capsys, "catalog", "--json", "--reports", str(REPORTS / "mail"),
                           "--disklist", str(REPORTS / "disklist"), "--host", "www.example.com",
                           "--host", "mail.example.com")
    assert rc == 1, err
    doc = json.loads(out)
    chains = {c["disk"]: c for c in doc["chains"]}
    assert [(d["date"], d["level"], d["label"], d["filenum"])
            for d in chains["/"]["dumps"]] == [("20070924", 0, "DailySet1-05", 1),
                                               ("20070928", 1, "DailySet1-09", 1),
                                               ("20070930", 2, "DailySet1-11", 2)]
    # a split level 0: every part listed, the first one's place in label/filenum
    home0 = chains["/home"]["dumps"][0]
    assert (home0["label"], home0["filenum"]) == ("DailySet1-05", 4)
    assert [p["filenum"] for p in home0["parts"]] == [4, 5, 6]
    # dumptypes no amanda.conf defines: the program is not guessed
    assert {c["program"] for c in doc["chains"]} == {None}
    assert [(e["host"], e["disk"]) for e in doc["errors"]] == [
        ("mail.example.com", "/var/spool/mail")]
    assert "no usable level 0 before the level 1 dump of 20070930" in \
        doc["errors"][0]["message"]
