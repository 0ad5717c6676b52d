"""The catalog of a configuration on this machine: the same object a bundle gives."""

import shutil
from pathlib import Path

import pytest

from essentials.bundle import open_bundle, write_manifest
from essentials.errors import CatalogError, ConfigError
from essentials.runner import Runner
from recovery.catalog.server import from_server
from recovery.catalog.source import from_bundle

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "amanda35"


@pytest.fixture
def server(tmp_path):
    """/etc/amanda/probe with amanda.conf; disklist, tapelist and logs where amgetconf says."""
    etc = tmp_path / "etc"
    (etc / "probe").mkdir(parents=True)
    shutil.copy(FIX / "amanda.conf", etc / "probe" / "amanda.conf")
    shutil.copy(FIX / "disklist", etc / "probe" / "disklist")  # relative: config dir
    state = tmp_path / "state"
    (state / "log").mkdir(parents=True)
    shutil.copy(FIX / "tapelist", state / "tapelist")
    for p in FIX.glob("log.*"):
        shutil.copy(p, state / "log" / p.name)
    (state / "log" / "amdump.1").write_text("not a trace log")
    runner = Runner(dry_run=True, responses={
        "amgetconf probe diskfile": "disklist\n",
        "amgetconf probe tapelist": f"{state}/tapelist\n",
        "amgetconf probe logdir": f"{state}/log\n",
        "amadmin probe find": (FIX / "find.txt").read_text(),
    })
    return etc, state, runner


def summary(cat):
    return (cat.name, cat.conf.params, [e.__dict__ for e in cat.disklist],
            sorted((d.host, d.disk, d.date, d.level, tuple(d.parts), d.nparts, d.status)
                   for d in cat.dumps),
            cat.tapelist, cat.vtape_root())


def test_runs_amanda_tools_as_backup(server):
    etc, _, runner = server
    from_server("probe", runner, etc)
    assert [(r.commands[0].argv, r.commands[0].user) for r in runner.recorded] == [
        (["amgetconf", "probe", "diskfile"], "backup"),
        (["amgetconf", "probe", "tapelist"], "backup"),
        (["amgetconf", "probe", "logdir"], "backup"),
        (["amadmin", "probe", "find"], "backup")]


def test_same_catalog_as_from_a_bundle(server, tmp_path):
    etc, state, runner = server
    live = from_server("probe", runner, etc)
    root = tmp_path / "bundle"
    base = root / "amanda" / "probe"
    (base / "logs").mkdir(parents=True)
    for name in ("amanda.conf", "disklist", "tapelist", "find.txt"):
        shutil.copy(FIX / name, base / name)
    for p in FIX.glob("log.*"):
        shutil.copy(p, base / "logs" / p.name)
    write_manifest(root, {})
    (bundled,) = from_bundle(open_bundle(root))
    assert summary(live) == summary(bundled)
    assert len(live.dumps) == 12
    assert {d.source for d in live.dumps} == {str(p) for p in (state / "log").glob("log.*")}
    assert [e.program for e in live.disklist] == ["GNUTAR", "DUMP"]


def test_find_output_stands_in_without_trace_logs(server):
    etc, state, runner = server
    for p in (state / "log").glob("log.*"):
        p.unlink()
    cat = from_server("probe", runner, etc)
    assert len(cat.dumps) == 12
    assert {(d.disk, d.level) for d in cat.dumps if d.date == "20261122012400"} == {
        ("/tmp/probe/mnt", 2), ("/dev/loop0p2", 1)}


def test_unknown_configuration(tmp_path):
    (tmp_path / "daily").mkdir()
    (tmp_path / "daily" / "amanda.conf").write_text("")
    with pytest.raises(ConfigError, match=r"no Amanda configuration weekly .*here: daily"):
        from_server("weekly", Runner(dry_run=True), tmp_path)


def test_amanda_tool_failure_is_a_catalog_error(server):
    etc, _, _ = server

    class Failing(Runner):
        def run(self, argv, **kw):
            from essentials.errors import CommandError
            raise CommandError(" ".join(argv), 1, "amgetconf: no such config")

    with pytest.raises(CatalogError, match="cannot read the catalog of Amanda configuration "
                                           "probe(.|\n)*no such config"):
        from_server("probe", Failing(), etc)
