"""`amdr-recover catalog`, `restore-tar` and `restore-dump` against the real Amanda lab.

The lab's history is levels 0, 1, 2, then a newer 0, 1, 2 for both DLEs
(GNUTAR and DUMP), one volume per run.  Every source (the live server, a
bundle collected on it, a scan of the vtapes) must give the newest level 0
and its incrementals, runs 4-6; a restore must give back the last backup.
"""

import json
import os

import pytest

from recovery.media.volumes import VtapeLibrary
from tests.integration.helpers import amdr, collect
from tests.lab import tree
from tests.lab.lab import AmandaLab

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with AmandaLab() as lab:
        lab.run_history()
        lab.bundle = collect(lab, tmp_path_factory.mktemp("bundle") / "b")
        yield lab


def catalog(*args):
    p = amdr("amdr-recover", "catalog", "--json", *args)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr


def labels_of(lab, run_index):
    """The volume each run wrote (runtapes 1: one per run), from its trace log."""
    return {p.label for d in lab.dumps_of(lab.runs[run_index].datestamp) for p in d.parts}


def test_server_gives_the_newest_level0_and_its_incrementals(lab):
    rc, doc, err = catalog("--server", lab.name)
    assert rc == 0, err
    assert doc["errors"] == []
    newest = [r.datestamp for r in lab.runs[3:]]
    want_labels = [labels_of(lab, i) for i in (3, 4, 5)]
    assert {c["disk"]: c["program"] for c in doc["chains"]} == {
        lab.root_disk: "GNUTAR", lab.data_disk: "DUMP"}
    for c in doc["chains"]:
        assert c["host"] == "localhost"
        assert [d["date"] for d in c["dumps"]] == newest
        assert [d["level"] for d in c["dumps"]] == [0, 1, 2]
        assert [{d["label"]} for d in c["dumps"]] == want_labels
        for d in c["dumps"]:
            assert d["filenum"] >= 1
            assert d["parts"] == [{"part": 1, "label": d["label"], "filenum": d["filenum"]}]


def test_bundle_and_scan_give_identical_chains(lab):
    rc, server, err = catalog("--server", lab.name)
    assert rc == 0, err
    rc, bundled, err = catalog("--bundle", lab.bundle)
    assert rc == 0, err
    assert bundled == server
    rc, scanned, err = catalog("--scan", lab.vtapes)
    assert rc == 0, err
    assert scanned == server
    rc, combined, err = catalog("--server", lab.name, "--bundle", lab.bundle, "--scan",
                                lab.vtapes)
    assert rc == 0, err
    assert combined == server


def test_reports_give_the_same_chains_as_the_server(lab, tmp_path):
    """The fourth source: real amcheckdump output of every run, as mailed by cron.

    amcheckdump runs under a pseudo-terminal (restore reads /dev/tty).  Reports
    do not name the dump program, so only that is left out of the comparison;
    with the lab's disklist the disk names are matched back exactly."""
    from tests.lab.lab import AMANDA_USER, sh
    files = []
    for r in lab.runs:
        out = sh(["script", "-qec", f"amcheckdump {lab.name} --timestamp {r.datestamp} "
                  f"</dev/null", "/dev/null"], user=AMANDA_USER)
        assert "Reading volume" in out, out
        f = tmp_path / f"amcheckdump-{r.datestamp}.txt"
        f.write_text(f"Subject: amcheckdump {lab.name}\n\n{out}")
        files.append(f)
    rc, server, err = catalog("--server", lab.name)
    assert rc == 0, err
    rc, reported, err = catalog("--reports", *files, "--disklist", lab.confdir / "disklist")
    assert rc == 0, err
    assert reported["errors"] == []

    def without_program(doc):
        return [{k: v for k, v in c.items() if k != "program"} for c in doc["chains"]]

    assert without_program(reported) == without_program(server)
    rc, all4, err = catalog("--server", lab.name, "--bundle", lab.bundle, "--scan",
                            lab.vtapes, "--reports", *files)
    assert rc == 0, err
    assert all4 == server


def test_level0_volume_gone_is_an_error_and_exit_1(lab):
    _, doc, _ = catalog("--server", lab.name, "--disk", lab.root_disk)
    label = doc["chains"][0]["dumps"][0]["label"]
    slot = VtapeLibrary(lab.vtapes).slot(label)
    away = lab.base / "removed-slot"
    os.rename(slot, away)
    try:
        for source in (("--server", lab.name), ("--bundle", str(lab.bundle))):
            rc, doc, err = catalog(*source)
            assert rc == 1, err
            gnutar = [e for e in doc["errors"] if e["disk"] == lab.root_disk]
            assert len(gnutar) == 1 and gnutar[0]["host"] == "localhost"
            msg = gnutar[0]["message"]
            assert f"volume {label} (level 0 of {lab.runs[3].datestamp}, file" in msg
            assert "is not available" in msg and "last seen:" in msg
            assert lab.root_disk not in [c["disk"] for c in doc["chains"]]
    finally:
        os.rename(away, slot)
    rc, _, err = catalog("--server", lab.name)
    assert rc == 0, err


def compare(lab, disk, restored, manifest):
    exclude = {"lost+found", "srv"} if disk == lab.root_disk else {"lost+found"}
    actual = tree.snapshot(str(restored), exclude=exclude)
    assert tree.summary(actual)["files"] > 0
    return tree.compare(manifest, actual)


def test_restore_tar_of_the_chain_matches_the_last_backup(lab, tmp_path):
    into = tmp_path / "root"
    p = amdr("amdr-recover", "restore-tar", "--server", lab.name, "--host", "localhost",
             "--disk", lab.root_disk, "--into", into)
    assert p.returncode == 0, p.stderr
    assert "levels 0,1,2" in p.stdout
    assert compare(lab, lab.root_disk, into, lab.runs[-1].manifests[lab.root_disk]) == []


def test_restore_dump_from_a_scan_matches_the_last_backup(lab, tmp_path):
    into = tmp_path / "data"
    p = amdr("amdr-recover", "restore-dump", "--scan", lab.vtapes, "--host", "localhost",
             "--disk", lab.data_disk, "--into", into)
    assert p.returncode == 0, p.stderr
    assert not (into / "restoresymtable").exists()
    assert compare(lab, lab.data_disk, into, lab.runs[-1].manifests[lab.data_disk]) == []


def test_restore_tar_of_one_image_from_its_slot(lab, tmp_path):
    _, doc, _ = catalog("--server", lab.name, "--disk", lab.root_disk)
    level0 = doc["chains"][0]["dumps"][0]
    slot = VtapeLibrary(lab.vtapes).slot(level0["label"])
    into = tmp_path / "one"
    p = amdr("amdr-recover", "restore-tar", "--device", f"file:{slot}", "--label",
             level0["label"], "--filenum", level0["filenum"], "--host", "localhost",
             "--disk", lab.root_disk, "--into", into)
    assert p.returncode == 0, p.stderr
    # the level 0 of run 4 is the state of run 4
    assert compare(lab, lab.root_disk, into, lab.runs[3].manifests[lab.root_disk]) == []
    # and it refuses to go on top of what is there now
    p = amdr("amdr-recover", "restore-tar", "--device", f"file:{slot}", "--label",
             level0["label"], "--filenum", level0["filenum"], "--host", "localhost",
             "--disk", lab.root_disk, "--into", into)
    assert p.returncode == 4 and "is not empty" in p.stderr


def test_restore_tar_of_a_dump_dle_is_refused(lab, tmp_path):
    p = amdr("amdr-recover", "restore-tar", "--server", lab.name, "--host", "localhost",
             "--disk", lab.data_disk, "--into", tmp_path / "x")
    assert p.returncode == 2
    assert "backed up with DUMP; use restore-dump" in p.stderr
    assert not (tmp_path / "x").exists()
