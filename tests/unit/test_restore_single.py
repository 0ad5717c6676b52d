"""restore-tar / restore-dump: the device named, one image or a chain, the guard on --into."""

import pytest

from essentials.errors import CatalogError, ConfigError, RefusedError
from essentials.runner import Cmd, Recorded, Runner
from recovery.catalog import combined
from recovery.catalog.chains import Chain
from recovery.catalog.model import Dump, Part
from recovery.media.positioning import AmtapeChanger, MtxChanger
from recovery.media import devices
from recovery.restore import single
from recovery.media.volumes import HEADER_SIZE, MediaError, VtapeLibrary


def block(text: str) -> bytes:
    raw = text.encode()
    return raw + b"\0" * (HEADER_SIZE - len(raw))


def label_file(slot, label, date="20260101000000"):
    slot.mkdir(parents=True, exist_ok=True)
    (slot / f"00000.{label}").write_bytes(
        block(f"AMANDA: TAPESTART DATE {date} TAPE {label}\n"))


def image_file(slot, filenum, host, disk, date, level, program="/bin/tar", part=1,
               comp="N"):
    (slot / f"{filenum:05d}.{host}.{disk.replace('/', '_')}.{level}").write_bytes(
        block(f"AMANDA: SPLIT_FILE {date} {host} {disk}  part {part}/-1  lev {level} "
              f"comp {comp} program {program}\n") + b"data")


@pytest.fixture
def vtapes(tmp_path):
    root = tmp_path / "vtapes"
    label_file(root / "slot1", "LAB-01")
    image_file(root / "slot1", 1, "web1", "/srv", "20260101000000", 0)
    image_file(root / "slot1", 2, "web1", "/dev/sdb1", "20260101000000", 0, "/sbin/dump")
    label_file(root / "slot2", "LAB-02", "20260102000000")
    image_file(root / "slot2", 1, "web1", "/srv", "20260102000000", 1)
    image_file(root / "slot2", 4, "web1", "/srv", "20260103000000", 2)
    return root


# -- --device ----------------------------------------------------------------------------

def test_device_vtape_directory(vtapes):
    for spec in (str(vtapes), f"chg-disk:{vtapes}"):
        lib = devices.open_device(spec, Runner(dry_run=True))
        assert isinstance(lib, VtapeLibrary)
        assert set(lib.labels) == {"LAB-01", "LAB-02"}


def test_device_one_slot_brings_its_siblings(vtapes):
    lib = devices.open_device(f"file:{vtapes}/slot2", Runner(dry_run=True))
    assert lib.labels == {"LAB-01": vtapes / "slot1", "LAB-02": vtapes / "slot2"}
    assert lib.device("LAB-02") == f"file:{vtapes}/slot2"


def test_device_lone_slot(tmp_path):
    label_file(tmp_path / "usb", "OFF-07")
    lib = devices.open_device(f"file:{tmp_path}/usb", Runner(dry_run=True))
    assert lib.labels == {"OFF-07": tmp_path / "usb"}
    with pytest.raises(MediaError, match="volume LAB-01 is not in"):
        lib.device("LAB-01")


def test_device_errors(tmp_path):
    with pytest.raises(ConfigError, match="No such file"):
        devices.open_device(str(tmp_path / "nothing"), Runner(dry_run=True))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="no volume label"):
        devices.open_device(f"file:{tmp_path}/empty", Runner(dry_run=True))


def test_device_tape_and_changers():
    lib = devices.open_device("tape:/dev/nst0", Runner(dry_run=True),
                              devices.changer_from("amtape:daily"))
    assert isinstance(lib, devices.TapeDrive)
    assert lib.device("ANY") == "tape:/dev/nst0" and lib.available is None
    assert devices.changer_from("amtape:daily") == AmtapeChanger("daily")
    assert devices.changer_from("mtx:/dev/sg1", {"A": 3}) == MtxChanger("/dev/sg1", {"A": 3})
    assert devices.changer_from(None) is None
    with pytest.raises(ConfigError, match="expected amtape:CONFIG or mtx:/dev/sgN"):
        devices.changer_from("robot")


# -- one image, or the chain -----------------------------------------------------------------

def test_single_image_from_its_header(vtapes):
    lib = VtapeLibrary(vtapes)
    c = single.single_image(lib, Runner(dry_run=True), "web1", "/srv", "LAB-02", 1)
    assert (c.host, c.disk, c.program) == ("web1", "/srv", "GNUTAR")
    assert [(d.date, d.level, d.parts) for d in c.dumps] == [
        ("20260102000000", 1, [Part("LAB-02", 1, 1)])]
    assert single.single_image(lib, Runner(dry_run=True), "web1", "/dev/sdb1", "LAB-01",
                               2).program == "DUMP"


def test_single_image_of_another_dle_or_the_label(vtapes):
    lib = VtapeLibrary(vtapes)
    with pytest.raises(MediaError, match="LAB-01 file 1 holds web1:/srv, not web1:/home"):
        single.single_image(lib, Runner(dry_run=True), "web1", "/home", "LAB-01", 1)
    with pytest.raises(MediaError, match="LAB-01 file 0 is not a dump image \\(TAPESTART\\)"):
        single.single_image(lib, Runner(dry_run=True), "web1", "/srv", "LAB-01", 0)


def test_chain_from_catalog_names_the_dles_when_not_found():
    dumps = [Dump("web1", "/srv", "20260101000000", 0, [Part("LAB-01", 1, 1)], 1)]
    cat = combined.build([combined.Source("s", dumps)], libraries=lambda r: {})
    assert single.chain_from(cat, "web1", "/srv", None).levels == [0]
    with pytest.raises(CatalogError, match="no DLE web1:/home in the catalog \\(DLEs of "
                                           "web1: /srv\\)"):
        single.chain_from(cat, "web1", "/home", None)
    with pytest.raises(CatalogError, match="hosts in the catalog: web1"):
        single.chain_from(cat, "db1", "/srv", None)


def test_program_mismatch_is_refused():
    c = Chain("web1", "/srv", [], "DUMP")
    with pytest.raises(ConfigError, match="backed up with DUMP; use restore-dump"):
        single.check_program(c, "GNUTAR")
    single.check_program(c, "DUMP")
    single.check_program(Chain("web1", "/srv", [], "APPLICATION:amgtar"), "GNUTAR")
    single.check_program(Chain("web1", "/srv", [], None), "GNUTAR")


def test_into_must_be_empty(tmp_path):
    into = tmp_path / "into"
    single.guard_into(into, False)  # made
    (into / "lost+found").mkdir()
    single.guard_into(into, False)  # a fresh filesystem's lost+found is fine
    (into / "etc").mkdir()
    with pytest.raises(RefusedError, match="is not empty \\(etc\\)"):
        single.guard_into(into, False)
    single.guard_into(into, True)


# -- the pipeline, recorded ---------------------------------------------------------------------

def chain3(program="GNUTAR"):
    return Chain("web1", "/srv", [
        Dump("web1", "/srv", "20260101000000", 0, [Part("LAB-01", 1, 1)], 1),
        Dump("web1", "/srv", "20260102000000", 1, [Part("LAB-02", 1, 1)], 1),
        Dump("web1", "/srv", "20260103000000", 2, [Part("LAB-02", 4, 1)], 1)], program)


def recorded(runner):
    out = []
    for rec in runner.recorded:
        if rec.kind == "prompt":
            out.append("# " + rec.commands[0].argv[0])
        else:
            out.append(" | ".join(("(as %s) " % c.user if c.user else "") + " ".join(c.argv)
                                  for c in rec.commands))
    return out


def test_chain_on_vtapes_pipes_each_image_in_order(vtapes, tmp_path):
    runner = Runner(dry_run=True)
    r = single.restore(runner, chain3(), "GNUTAR", tmp_path / "t", VtapeLibrary(vtapes))
    assert r.levels == [0, 1, 2]
    tar = f"tar -x -p -G --numeric-owner -f - -C {tmp_path}/t"
    # vtapes: each file read directly, its header (checked before) skipped
    assert recorded(runner) == [
        f"mkdir -p {tmp_path}/t",
        f"dd if={vtapes}/slot1/00001.web1._srv.0 bs=32k skip=1 status=none | {tar}",
        f"dd if={vtapes}/slot2/00001.web1._srv.1 bs=32k skip=1 status=none | {tar}",
        f"dd if={vtapes}/slot2/00004.web1._srv.2 bs=32k skip=1 status=none | {tar}"]


def test_dry_run_on_vtapes_checks_each_header(vtapes, tmp_path):
    """A dry run reads the headers too (it moves nothing): a wrong image is said now."""
    (vtapes / "slot2" / "00004.web1._srv.2").unlink()
    image_file(vtapes / "slot2", 4, "web1", "/srv", "20260109000000", 2)
    with pytest.raises(MediaError, match="LAB-02 file 4 .* holds .*20260109000000.*the "
                                         "catalog says .*20260103000000"):
        single.restore(Runner(dry_run=True), chain3(), "GNUTAR", tmp_path / "t",
                       VtapeLibrary(vtapes))


def test_chain_on_a_tape_drive_asks_for_each_volume_and_positions(tmp_path):
    runner = Runner(dry_run=True)
    drive = devices.TapeDrive("/dev/nst0", runner, ask=lambda text: runner.recorded.append(
        Recorded("prompt", [Cmd([text])])))
    single.restore(runner, chain3("DUMP"), "DUMP", tmp_path / "t", drive)
    restore = "restore -r -y -f -"
    assert recorded(runner) == [
        f"mkdir -p {tmp_path}/t",
        "# Insert volume LAB-01 into /dev/nst0, then press Enter",
        "mt -f /dev/nst0 rewind", "mt -f /dev/nst0 fsf 1",
        f"(as backup) amrestore -p -f 1 -l LAB-01 tape:/dev/nst0 =web1 =/srv | {restore}",
        "mt -f /dev/nst0 offline",
        "# Insert volume LAB-02 into /dev/nst0, then press Enter",
        "mt -f /dev/nst0 rewind", "mt -f /dev/nst0 fsf 1",
        f"(as backup) amrestore -p -f 1 -l LAB-02 tape:/dev/nst0 =web1 =/srv | {restore}",
        "mt -f /dev/nst0 rewind", "mt -f /dev/nst0 fsf 4",
        f"(as backup) amrestore -p -f 4 -l LAB-02 tape:/dev/nst0 =web1 =/srv | {restore}"]


def test_tape_changer_loads_through_amtape(tmp_path):
    runner = Runner(dry_run=True)
    drive = devices.TapeDrive("/dev/nst0", runner, AmtapeChanger("daily"))
    single.restore(runner, chain3(), "GNUTAR", tmp_path / "t", drive)
    loads = [ln for ln in recorded(runner) if "amtape" in ln]
    assert loads == ["(as backup) amtape daily label LAB-01",
                     "(as backup) amtape daily label LAB-02"]


def test_no_terminal_to_ask_on(monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    drive = devices.TapeDrive("/dev/nst0", Runner(dry_run=True))
    with pytest.raises(ConfigError, match="no terminal to ask on; give --changer"):
        single.restore(Runner(dry_run=True), chain3(), "GNUTAR", tmp_path / "t", drive)


def test_split_image_parts_are_read_in_order_into_one_stream(vtapes, tmp_path):
    """Once refused ("split images are not restored by this version"): each part
    is a source of one stream, read in part order, the extract command once;
    compressed: one gzip for the whole stream, never per part."""
    image_file(vtapes / "slot1", 3, "web1", "/big", "20260101000000", 0, part=1, comp=".gz")
    image_file(vtapes / "slot2", 2, "web1", "/big", "20260101000000", 0, part=2, comp=".gz")
    split = Chain("web1", "/big", [Dump("web1", "/big", "20260101000000", 0,
                                        [Part("LAB-02", 2, 2), Part("LAB-01", 3, 1)], 2)],
                  "GNUTAR")
    runner = Runner(dry_run=True)
    single.restore(runner, split, "GNUTAR", tmp_path / "t", VtapeLibrary(vtapes))
    assert [r.kind for r in runner.recorded] == ["run", "stream-part", "stream-part",
                                                 "stream-sink"]
    assert recorded(runner)[1:] == [
        f"dd if={vtapes}/slot1/00003.web1._big.0 bs=32k skip=1 status=none",
        f"dd if={vtapes}/slot2/00002.web1._big.0 bs=32k skip=1 status=none",
        f"gzip -dc | tar -x -p -G --numeric-owner -f - -C {tmp_path / 't'}"]
    # part 2 where the catalog says part 1: refused, also in a dry run
    wrong = Chain("web1", "/big", [Dump("web1", "/big", "20260101000000", 0,
                                        [Part("LAB-02", 2, 1), Part("LAB-01", 3, 2)], 2)],
                  "GNUTAR")
    with pytest.raises(Exception, match="is part 2 of .* the catalog says part 1"):
        single.restore(Runner(dry_run=True), wrong, "GNUTAR", tmp_path / "u",
                       VtapeLibrary(vtapes))
