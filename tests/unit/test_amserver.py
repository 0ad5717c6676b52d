"""The lost-server path without a server: names, index format, synthesized
catalog, rewritten amanda.conf, the rebuild plan and what it would run."""

import gzip
from pathlib import Path

import pytest

from essentials.bundle import open_bundle, write_manifest
from essentials.errors import CatalogError
from essentials.runner import Runner
from recovery.amserver import amrecover, conf, fetchdump, indexfmt, names, rebuild, synth
from recovery.catalog import amconf, tracelog
from recovery.catalog.model import FAILED, Dump, Part

FIX = Path(__file__).parent.parent / "fixtures" / "amanda35"

# captured from the lab: amfetchdump -p ... | restore -tvf - (level 0 of the DUMP DLE)
RESTORE_T = """\
Verify tape and initialize maps
Input is from a local file/pipe
Input block size is 32
Dump   date: Sun Nov 22 02:13:53 2026
Dumped from: the epoch
Level 0 dump of /var/tmp/lab/mnt/srv on vm:/dev/loop0p2
Label: lab-data
Extract directories from tape
Initialize symbol table.
dir          2\t.
dir         11\t./lost+found
dir         12\t./www
leaf        13\t./www/index.html
dir       2049\t./db
leaf        14\t./db/data.bin
leaf        16\t./share/my file
"""
# ... and the index Amanda 3.5.1 wrote for it (with the same members)
RESTORE_INDEX = ["/", "/lost+found/", "/www/", "/www/index.html", "/db/", "/db/data.bin",
                 "/share/my file"]
TAR_T = "./\n./etc/\n./home/alice/\n./etc/hostname\n./home/alice/notes.txt\n"
TAR_INDEX = ["/", "/etc/", "/home/alice/", "/etc/hostname", "/home/alice/notes.txt"]


def fixture_dumps():
    out = []
    for p in sorted(FIX.glob("log.*")):
        out += tracelog.parse_lines(p.read_text().splitlines(), p.name)
    return out


def target(tmp_path, name="rebuilt"):
    return conf.Target(name, tmp_path / "state", "chg-disk:/srv/vtapes", tmp_path / "etc")


# -- names ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw,quoted", [
    ("localhost", "localhost"), ("/dev/sda1", "/dev/sda1"), ("ST:probe", '"ST:probe"'),
    ("/srv/my data", '"/srv/my data"'), ("", '""'), ('a"b', '"a\\"b"'),
    ("tab\there", '"tab\\there"'), ("back\\slash", '"back\\\\slash"')])
def test_quote_like_amanda(raw, quoted):
    assert names.quote(raw) == quoted


def test_sanitise_filename_for_index_dirs():
    assert names.sanitise_filename("/var/tmp/a_b/mnt") == "_var_tmp_a_b_mnt"
    assert names.sanitise_filename("C:\\data") == "C__data"


def test_nice_date():
    assert names.nice_date("20261122021428") == "2026-11-22-02-14-28"
    assert names.nice_date("20261122") == "2026-11-22"
    with pytest.raises(ValueError):
        names.nice_date("2026")


# -- index format ------------------------------------------------------------------------

def test_restore_listing_becomes_amanda_index():
    assert indexfmt.index_lines("DUMP", RESTORE_T) == RESTORE_INDEX


def test_tar_listing_becomes_amanda_index():
    assert indexfmt.index_lines("GNUTAR", TAR_T) == TAR_INDEX
    assert indexfmt.index_lines("APPLICATION:amgtar", TAR_T) == TAR_INDEX


def test_index_file_name_is_what_3_5_writes():
    p = indexfmt.index_file("/st/index", "localhost", "/var/tmp/x/mnt", "20261122021418", 0)
    assert str(p) == "/st/index/localhost/_var_tmp_x_mnt/20261122021418_0-unsorted.gz"
    assert "20261122021418_0.gz" in indexfmt.existing_names("20261122021418", 0)


def test_lister_refuses_programs_it_cannot_read():
    assert indexfmt.lister_argv("DUMP")[0] == "restore"
    assert indexfmt.lister_argv("GNUTAR")[0] == "tar"
    with pytest.raises(ValueError):
        indexfmt.lister_argv("APPLICATION:amstar")


# -- synthesized catalog -------------------------------------------------------------------

def _key(d):
    return (d.host, d.disk, d.date, d.level,
            tuple(sorted((p.label, p.filenum, p.partnum) for p in d.parts)))


def test_synthesized_logs_read_back_as_the_same_catalog():
    dumps = fixture_dumps()
    syn = synth.trace_logs(dumps, None, storage="new")
    back = []
    for name, text in syn.logs.items():
        back += tracelog.parse_lines(text.splitlines(), name)
    assert sorted(map(_key, back)) == sorted(_key(d) for d in dumps if d.status == "OK")
    assert all(d.status == "OK" and d.storage == "new" for d in back)
    # one log per volume's write date, named as find_dump() looks for it
    assert sorted(syn.logs) == sorted(f"log.{p.name.split('.')[1]}.0" for p in FIX.glob("log.*"))


def test_synthesized_lines_have_amanda_35_tokens():
    syn = synth.trace_logs(fixture_dumps(), None, storage="new")
    text = syn.logs["log.20261122012318.0"]
    real = (FIX / "log.20261122012318.0").read_text()
    start = next(ln for ln in text.splitlines() if ln.startswith("START taper"))
    assert start == 'START taper datestamp 20261122012318 "ST:new" "POOL:new" label PROBE-01 tape 1'
    part = next(ln for ln in text.splitlines() if ln.startswith("PART"))
    real_part = next(ln for ln in real.splitlines() if ln.startswith("PART"))
    assert part.split("[")[0].replace("new", "probe") == real_part.split("[")[0]
    # Amanda::DB::Catalog dies on a DONE line without its [sec ... bytes ...] block
    done = next(ln for ln in text.splitlines() if ln.startswith("DONE"))
    assert done.endswith("[sec 0.000000 bytes 0 kps 0.000000 orig-kb 0]")


def test_split_dump_over_two_volumes_done_after_last_part():
    d = Dump("h", "/d", "20260101000000", 0, [Part("V2", 1, 2), Part("V1", 3, 1)], nparts=2)
    syn = synth.trace_logs([d], {"V1": {"date": "20260101000000"},
                                  "V2": {"datestamp": "20260101000000"}}, storage="s")
    lines = syn.logs["log.20260101000000.0"].splitlines()
    kinds = [f"START taper {ln.split()[-1]}" if ln.startswith("START taper") else ln.split()[0]
             for ln in lines if ln.startswith(("START taper", "PART", "DONE"))]
    assert kinds == ["START taper 1", "PART", "START taper 2", "PART", "DONE"]
    back = tracelog.parse_lines(lines)
    assert back[0].status == "OK" and back[0].nparts == 2 and not back[0].missing_parts()


def test_write_dates_prefer_the_volume_label_then_guess_with_a_note():
    dumps = [Dump("h", "/d", "20260101", 0, [Part("A", 1)]),
             Dump("h", "/d", "20260102", 1, [Part("B", 1, written="20260103")]),
             Dump("h", "/d", "20260104", 1, [Part("C", 1)]),
             Dump("h", "/d", "20260105", 1, [Part("C", 2)])]
    dates, notes = synth.write_dates(dumps, {"A": {"date": "20260109"}})
    assert dates == {"A": "20260109", "B": "20260103", "C": "20260105"}
    assert len(notes) == 1 and "volume C" in notes[0]


def test_failed_and_incomplete_dumps_stay_out_of_the_catalog():
    ok = Dump("h", "/d", "20260101", 0, [Part("A", 1)], nparts=1)
    bad = Dump("h", "/d", "20260102", 1, [Part("A", 2)], nparts=1, status=FAILED)
    cut = Dump("h", "/d", "20260103", 1, [Part("A", 3)], nparts=2)
    syn = synth.trace_logs([ok, bad, cut], {"A": {"date": "20260103"}}, storage="s")
    back = tracelog.parse_lines(syn.logs["log.20260103.0"].splitlines())
    assert [d.date for d in back] == ["20260101"]
    assert any("2 dump(s) not written" in n for n in syn.notes)


def test_tapelist_newest_first_with_pool_and_storage():
    text = synth.tapelist_text({"A": "20260101", "B": "20260102"}, "s", "p", "c")
    assert text == ("20260102 B reuse POOL:p STORAGE:s CONFIG:c\n"
                    "20260101 A reuse POOL:p STORAGE:s CONFIG:c\n")


def test_disklist_and_dumptypes_from_programs():
    dumps = [Dump("h", "/srv/my data", "1", 0, program="GNUTAR"),
             Dump("h", "/dev/sdb1", "1", 0, program="DUMP"),
             Dump("h", "/opt", "1", 0, program="APPLICATION:amgtar"),
             Dump("h", "/x", "1", 0)]
    progs, notes = synth.programs(dumps)
    text = synth.disklist_text(progs)
    assert 'h "/srv/my data" amdr-gnutar\n' in text
    assert "h /dev/sdb1 amdr-dump\n" in text and "h /opt amdr-app-amgtar\n" in text
    assert "h /x amdr-gnutar\n" in text and any("/x: program unknown" in n for n in notes)
    defs = synth.dumptype_defs(set(progs.values()))
    parsed = amconf.parse_conf(defs)
    entries = amconf.parse_disklist(text, parsed)
    assert {e.disk: e.program for e in entries} == {
        "/srv/my data": "GNUTAR", "/dev/sdb1": "DUMP", "/opt": "APPLICATION:amgtar",
        "/x": "GNUTAR"}
    assert 'plugin "amgtar"' in defs and 'auth "local"' in defs


@pytest.mark.parametrize("raw,prog", [("/bin/tar", "GNUTAR"), ("/sbin/dump", "DUMP"),
                                      ("GNUTAR", "GNUTAR"), ("APPLICATION amgtar",
                                                             "APPLICATION:amgtar"),
                                      ("APPLICATION:amgtar", "APPLICATION:amgtar"),
                                      ("/usr/sbin/xfsdump", "DUMP")])
def test_normalise_program(raw, prog):
    assert synth.normalise_program(raw) == prog


# -- amanda.conf ------------------------------------------------------------------------

def test_rewritten_conf_points_at_this_machine(tmp_path):
    t = target(tmp_path)
    old = (FIX / "amanda.conf").read_text() + 'includefile "/etc/amanda/site.conf"\n' \
        + 'define storage probe {\n  tpchanger "robot"\n}\nstorage "probe"\n' \
        + 'amrecover_changer "/dev/nst0"\n'
    rw = conf.rewrite_conf(old, t, ["probe"], exists=lambda p: False)
    text = rw.text
    live = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for key, value in (("infofile", t.infofile), ("logdir", t.logdir),
                       ("indexdir", t.indexdir), ("tapelist", t.tapelist),
                       ("diskfile", t.disklist)):
        assert [ln for ln in live if ln.split()[0] == key] == [f'{key} "{value}"']
    assert [ln for ln in live if ln.startswith("tpchanger")] == ['tpchanger "chg-disk:/srv/vtapes"']
    assert [ln for ln in live if ln.startswith("dumpuser")] == ['dumpuser "backup"']
    assert "define storage probe {" in live and 'storage "probe"' in live
    assert not any("robot" in ln or "amrecover_changer" in ln or "/tmp/probe/holding" in ln
                   or "includefile" in ln for ln in live)
    assert any("holding disk hd dropped" in n for n in rw.notes)
    assert any("includefile" in n for n in rw.notes)
    # the dumptypes the disklist names are still there and still resolve
    parsed = amconf.parse_conf(text)
    assert parsed.program("gt") == "GNUTAR" and parsed.program("du") == "DUMP"
    assert parsed.program("gta") == "APPLICATION:amgtar"
    assert rw.dumptypes == {"gt", "du", "gta"}


def test_holding_disk_kept_when_its_directory_is_here(tmp_path):
    rw = conf.rewrite_conf((FIX / "amanda.conf").read_text(), target(tmp_path), [],
                           exists=lambda p: True)
    assert 'holdingdisk hd {' in rw.text and not rw.notes


def test_storage_names_are_unquoted_identifiers(tmp_path):
    # 3.5.1 rejects `define storage "x" {` in some configurations
    text = conf.state_section(target(tmp_path), ["probe", "my store"])
    assert "define storage probe {" in text and 'define storage "my store" {' in text
    assert 'storage "probe"' in text.splitlines()


def test_fresh_conf_loads_with_the_generated_dumptypes(tmp_path):
    text = conf.fresh_conf(target(tmp_path), ["rebuilt"], synth.dumptype_defs({"DUMP"}), 3)
    parsed = amconf.parse_conf(text)
    assert parsed.program("amdr-dump") == "DUMP"
    assert parsed.params["tpchanger"] == "chg-disk:/srv/vtapes"
    assert "define tapetype" in text and "tapecycle 3 tapes" in text


def test_client_conf_is_local():
    t = conf.Target("x", Path("/s"), "chg-disk:/v")
    assert conf.client_conf(t) == ('conf "x"\nindex_server "localhost"\n'
                                   'tape_server "localhost"\nauth "local"\n')


def test_storages_in_logs():
    assert conf.storages_in_logs([(FIX / "log.20261122012318.0").read_text()]) == ["probe"]
    assert conf.storages_in_logs(["PART taper V 1 h /d 2026 1/1 0 [sec 1 kb 1 kps 1]"]) == []


def test_changer_for():
    assert conf.changer_for(vtapes="/srv/vt") == "chg-disk:/srv/vt"
    assert conf.changer_for(tape_device="/dev/nst0") == "chg-single:tape:/dev/nst0"
    assert conf.changer_for(tape_device="file:/v/slot1") == "chg-single:file:/v/slot1"
    assert conf.changer_for(changer="chg-robot:/dev/sg1") == "chg-robot:/dev/sg1"
    with pytest.raises(ValueError):
        conf.changer_for(vtapes="/a", tape_device="/dev/nst0")


# -- the plan ------------------------------------------------------------------------------

def make_bundle(tmp_path, disklist=None, extra=()):
    root = tmp_path / "bundle"
    base = root / "amanda" / "probe"
    (base / "logs").mkdir(parents=True)
    for name in ("amanda.conf", "tapelist", "find.txt"):
        (base / name).write_text((FIX / name).read_text())
    (base / "disklist").write_text(disklist if disklist is not None
                                   else (FIX / "disklist").read_text())
    for p in FIX.glob("log.*"):
        (base / "logs" / p.name).write_text(p.read_text())
    for name, text in extra:
        (base / name).write_text(text)
    write_manifest(root, {})
    return open_bundle(root)


def test_plan_from_bundle_writes_the_server_files(tmp_path):
    t = target(tmp_path)
    plan = rebuild.plan_from_bundle(make_bundle(tmp_path), t)
    paths = {str(f.path.relative_to(tmp_path)) for f in plan.files}
    assert {"etc/rebuilt/amanda.conf", "etc/rebuilt/amanda-client.conf",
            "etc/rebuilt/disklist", "etc/rebuilt/tapelist"} <= paths
    assert sum(p.startswith("state/log/log.") for p in paths) == 6
    assert len(plan.expect) == 12
    assert plan.programs == {("localhost", "/tmp/probe/mnt"): "GNUTAR",
                             ("localhost", "/dev/loop0p2"): "DUMP"}
    assert plan.curinfo is None and any("curinfo not imported" in n for n in plan.notes)
    assert "define storage probe {" in plan.files[0].text
    shown = "\n".join(plan.render())
    assert "amfetchdump -p -a rebuilt =localhost =/dev/loop0p2 20261122012318 0 | " \
           "restore -t -v -f -" in shown
    assert "must list 12 dumps" in shown


def test_plan_from_bundle_overwritten_volumes_are_not_expected(tmp_path):
    b = make_bundle(tmp_path)
    tl = (FIX / "tapelist").read_text().replace("20261122012318 PROBE-01",
                                                "20261130000000 PROBE-01")
    (b.root / "amanda/probe/tapelist").write_text(tl)
    write_manifest(b.root, {})
    plan = rebuild.plan_from_bundle(open_bundle(b.root), target(tmp_path))
    assert len(plan.expect) == 10
    assert not any(p.label == "PROBE-01" for d in plan.expect for p in d.parts)


def test_plan_from_bundle_undefined_dumptype_regenerates_the_disklist(tmp_path):
    b = make_bundle(tmp_path, disklist="localhost /tmp/probe/mnt site-gtar\n")
    plan = rebuild.plan_from_bundle(b, target(tmp_path))
    dl = next(f.text for f in plan.files if f.path.name == "disklist")
    assert "localhost /tmp/probe/mnt amdr-gnutar" in dl
    assert "localhost /dev/loop0p2 amdr-gnutar" in dl  # program unknown: index tries both
    assert "define dumptype amdr-gnutar" in plan.files[0].text
    assert any("site-gtar" in n for n in plan.notes)


def test_plan_from_bundle_without_tapelist_writes_one(tmp_path):
    b = make_bundle(tmp_path)
    (b.root / "amanda/probe/tapelist").unlink()
    write_manifest(b.root, {})
    plan = rebuild.plan_from_bundle(open_bundle(b.root), target(tmp_path))
    tl = next(f.text for f in plan.files if f.path.name == "tapelist")
    assert tl.splitlines()[0] == \
        "20261122012400 PROBE-06 reuse POOL:probe STORAGE:probe CONFIG:rebuilt"
    assert len(plan.expect) == 12 and any("no tapelist" in n for n in plan.notes)


def test_plan_from_bundle_refusals(tmp_path):
    root = tmp_path / "empty"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("x\n")
    write_manifest(root, {})
    with pytest.raises(CatalogError, match="no Amanda server database"):
        rebuild.plan_from_bundle(open_bundle(root), target(tmp_path))
    with pytest.raises(CatalogError, match="no Amanda configuration nope"):
        rebuild.plan_from_bundle(make_bundle(tmp_path), target(tmp_path), "nope")


def test_plan_from_dumps_protects_the_volumes(tmp_path):
    dumps = fixture_dumps()
    for d in dumps:
        d.program = "GNUTAR" if d.disk.startswith("/tmp") else "DUMP"
    plan = rebuild.plan_from_dumps(dumps, None, target(tmp_path))
    tl = next(f.text for f in plan.files if f.path.name == "tapelist")
    assert tl.splitlines()[0] == \
        "20261122012400 PROBE-06 no-reuse POOL:rebuilt STORAGE:rebuilt CONFIG:rebuilt"
    assert all(" no-reuse " in ln for ln in tl.splitlines())
    text = plan.files[0].text
    assert "define storage rebuilt {" in text and "define dumptype amdr-dump" in text
    assert len(plan.expect) == 12 and plan.index_archive is None
    with pytest.raises(CatalogError):
        rebuild.plan_from_dumps([], None, target(tmp_path))


def test_apply_dry_run_records_the_commands(tmp_path):
    t = target(tmp_path)
    plan = rebuild.plan_from_bundle(make_bundle(
        tmp_path, extra=[("export.txt", "CURINFO Version 3.5.1 CONF probe\n")]), t)
    runner = Runner(dry_run=True)
    res = rebuild.apply(plan, runner, index="media")
    cmds = [(r.kind, [(c.argv, c.user) for c in r.commands]) for r in runner.recorded]
    argvs = [c[1][0][0] for c in cmds]
    assert argvs[0][:2] == ["chown", "-R"]
    # backup must reach the state, the configuration and the vtapes
    assert [(a[1], a[2]) for a in argvs if a[0] == "test"] == [
        ("-w", str(t.logdir)), ("-r", str(t.confdir / "amanda.conf")), ("-w", "/srv/vtapes")]
    imp = next(r for r in runner.recorded if r.commands[0].argv[:2] == ["amadmin", "rebuilt"]
               and r.commands[0].argv[2] == "import")
    assert imp.commands[0].user == "backup" and imp.input.startswith(b"CURINFO")
    assert (["amadmin", "rebuilt", "find"], "backup") in [c[1][0] for c in cmds]
    pipes = [c for c in cmds if c[0] == "pipeline"]
    assert len(pipes) == 12
    assert pipes[0][1][0] == (["amfetchdump", "-p", "-a", "rebuilt", "=localhost",
                               "=/dev/loop0p2", "20261122012318", "0"], "backup")
    assert pipes[0][1][1][0][0] == "restore" and pipes[0][1][2][0][0] == "tee"
    assert not (tmp_path / "etc").exists()  # a dry run writes nothing
    assert res.index_source == "media"


def test_index_archive_mode_needs_an_archive(tmp_path):
    plan = rebuild.plan_from_bundle(make_bundle(tmp_path), target(tmp_path))
    with pytest.raises(CatalogError, match="no index archive"):
        rebuild.apply(plan, Runner(dry_run=True), index="archive")
    assert rebuild.index_source(plan, "auto") == "media"


def test_apply_refuses_an_existing_configuration(tmp_path):
    t = target(tmp_path)
    t.confdir.mkdir(parents=True)
    (t.confdir / "amanda.conf").write_text("org \"x\"\n")
    plan = rebuild.plan_from_bundle(make_bundle(tmp_path), t)
    from essentials.errors import RefusedError
    with pytest.raises(RefusedError, match="already on this machine"):
        rebuild.apply(plan, Runner())


# -- drivers, rendered --------------------------------------------------------------------

def test_amrecover_dialogue_lines():
    req = amrecover.RecoverRequest("c", "localhost", "/srv/my data", "/mnt/out",
                                   date="20261122021428", paths=[".", "etc/x y"])
    assert amrecover.argv(req) == ["amrecover", "c", "-s", "localhost", "-t", "localhost",
                                   "-h", "localhost", "-o", "auth=local"]
    assert amrecover.commands(req) == ["sethost localhost", 'setdisk "/srv/my data"',
                                       "setdate 2026-11-22-02-14-28", "add .",
                                       'add "etc/x y"', "lcd /mnt/out"]


def test_amrecover_error_carries_the_tail():
    e = amrecover.AmrecoverError("refused", "a\r\n\r\nb\nc\n")
    assert str(e).endswith("amrecover said last:\n    a\n    b\n    c")


def test_fetchdump_argv():
    assert fetchdump.fetch_argv("c", "h", "/d", "20260101", 1) == \
        ["amfetchdump", "-a", "-p", "c", "=h", "=/d", "20260101", "1"]
    assert fetchdump.fetch_argv("c", "h", "/d", "20260101", 0, pipe=False, outdir="/o") == \
        ["amfetchdump", "-a", "-O", "/o", "c", "=h", "=/d", "20260101", "0"]


def test_cli_dry_run_prints_the_plan(tmp_path, capsys):
    from recovery import cli
    b = make_bundle(tmp_path)
    rc = cli.main(["rebuild-server", "--bundle", str(b.root), "--config", "x",
                   "--vtapes", str(tmp_path), "--state-dir", str(tmp_path / "st"),
                   "--etc", str(tmp_path / "etc"), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"write {tmp_path}/etc/x/amanda.conf" in out
    assert "amadmin x find" in out and "note: no amadmin export" in out
    assert not (tmp_path / "etc").exists()


def test_cli_needs_one_device(tmp_path, capsys):
    from recovery import cli
    b = make_bundle(tmp_path)
    rc = cli.main(["rebuild-server", "--bundle", str(b.root), "--dry-run"])
    assert rc == 2
    assert "exactly one of --vtapes" in capsys.readouterr().err


def test_gzip_index_is_deterministic():
    # the index written is plain gzip of the lines, readable by amindexd's gzip -dc
    data = ("\n".join(TAR_INDEX) + "\n").encode()
    assert gzip.decompress(gzip.compress(data, mtime=0)) == data
