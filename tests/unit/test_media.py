"""Amanda volume headers and the vtape library (a chg-disk directory built here)."""

import pytest

from recovery.media.volumes import HEADER_SIZE, MediaError, VtapeLibrary, parse_header


def block(text: str) -> bytes:
    raw = text.encode()
    return raw + b"\0" * (HEADER_SIZE - len(raw))


TAPESTART = "AMANDA: TAPESTART DATE 20261122012350 TAPE PROBE-05\n"
SPLIT = (
    "AMANDA: SPLIT_FILE 20261122012304 localhost /tmp/probe/mnt  part 1/-1  lev 0 comp N "
    "program /bin/tar\n"
    "ORIGSIZE=2270\n"
    "DLE=<<ENDDLE\n"
    "<dle>\n"
    "  <program>GNUTAR</program>\n"
    "  <disk>/tmp/probe/mnt</disk>\n"
    "  <level>0</level>\n"
    "</dle>\n"
    "ENDDLE\n"
    "To restore, position tape at start of file and run:\n"
    "\tdd if=<tape> bs=32k skip=1 | /bin/tar -xpGf - ...\n"
    "\014\n"
)
AMGTAR = (
    "AMANDA: FILE 20261122012304 localhost \"/srv/my data\" lev 1 comp N program APPLICATION\n"
    "DLE=<<ENDDLE\n"
    "<dle>\n"
    "  <program>APPLICATION</program>\n"
    "  <backup-program>\n"
    "    <plugin>amgtar</plugin>\n"
    "  </backup-program>\n"
    "</dle>\n"
    "ENDDLE\n"
    "APPLICATION=amgtar\n"
    "To restore, position tape at start of file and run:\n"
    "\tdd if=<tape> bs=32k skip=1 | /usr/lib/amanda/application/amgtar restore [./file-to-restore]+\n"
)


def test_tapestart():
    h = parse_header(block(TAPESTART))
    assert (h.kind, h.date, h.label) == ("TAPESTART", "20261122012350", "PROBE-05")
    assert (h.host, h.disk, h.level) == ("", "", None)


def test_split_file():
    h = parse_header(block(SPLIT))
    assert h.kind == "SPLIT_FILE"
    assert h.date == "20261122012304"
    assert (h.host, h.disk) == ("localhost", "/tmp/probe/mnt")
    assert h.level == 0
    assert h.part == "1/-1"
    assert h.program == "/bin/tar"


def test_amgtar_application_and_quoted_disk():
    h = parse_header(block(AMGTAR))
    assert (h.kind, h.host, h.disk, h.level) == ("FILE", "localhost", "/srv/my data", 1)
    assert h.program == "APPLICATION:amgtar"
    assert h.part == ""


def test_not_amanda():
    assert parse_header(b"\0" * HEADER_SIZE) is None
    assert parse_header(b"\x7fELF\x02\x01\x01" + b"\0" * 100) is None
    assert parse_header(b"ustar  \0root") is None
    assert parse_header(b"") is None


def test_tapeend_date():
    h = parse_header(block("AMANDA: TAPEEND DATE 20261122012350\n"))
    assert (h.kind, h.date) == ("TAPEEND", "20261122012350")


def test_disk_named_like_a_keyword():
    h = parse_header(block("AMANDA: FILE 20260101000000 host lev lev 2 comp N program /bin/tar\n"))
    assert (h.disk, h.level, h.program) == ("lev", 2, "/bin/tar")


@pytest.fixture
def vtapes(tmp_path):
    s1, s2, s3 = tmp_path / "slot1", tmp_path / "slot2", tmp_path / "slot3"
    for s in (s1, s2, s3):
        s.mkdir()
    (s1 / "00000.LAB-01").write_bytes(block("AMANDA: TAPESTART DATE 20260101000000 TAPE LAB-01\n"))
    (s1 / "00001.localhost._x.0").write_bytes(
        block("AMANDA: SPLIT_FILE 20260101000000 localhost /x  part 1/-1  lev 0 comp N "
              "program /bin/tar\n") + b"tar data")
    (s3 / "00000.LAB-03").write_bytes(block("AMANDA: TAPESTART DATE 20260102000000 TAPE LAB-03\n"))
    return tmp_path


def test_labels(vtapes):
    lib = VtapeLibrary(vtapes)
    assert lib.labels == {"LAB-01": vtapes / "slot1", "LAB-03": vtapes / "slot3"}
    assert lib.available == {"LAB-01", "LAB-03"}
    assert lib.device("LAB-01") == f"file:{vtapes / 'slot1'}"
    assert lib.device("LAB-03") == f"file:{vtapes}/slot3"


def test_unknown_label(vtapes):
    lib = VtapeLibrary(vtapes)
    with pytest.raises(MediaError) as e:
        lib.device("LAB-77")
    msg = str(e.value)
    assert f"volume LAB-77 is not in {vtapes}" in msg
    assert "(found: LAB-01, LAB-03)" in msg


def test_no_directory(tmp_path):
    with pytest.raises(MediaError, match="no such vtape directory"):
        VtapeLibrary(tmp_path / "missing")


def test_empty_library(tmp_path):
    lib = VtapeLibrary(tmp_path)
    assert lib.labels == {}
    with pytest.raises(MediaError, match=r"found: no labelled volumes"):
        lib.slot("LAB-01")


def test_image_path(vtapes):
    lib = VtapeLibrary(vtapes)
    assert lib.image_path("LAB-01", 1) == vtapes / "slot1" / "00001.localhost._x.0"
    with pytest.raises(MediaError) as e:
        lib.image_path("LAB-01", 2)
    assert str(e.value) == f"volume LAB-01 ({vtapes / 'slot1'}) has no file 2"
    with pytest.raises(MediaError, match="has no file 1"):
        lib.image_path("LAB-03", 1)


def test_check_image_matches(vtapes):
    lib = VtapeLibrary(vtapes)
    h = lib.check_image("LAB-01", 1, "localhost", "/x", "20260101000000", 0)
    assert (h.kind, h.host, h.disk, h.level) == ("SPLIT_FILE", "localhost", "/x", 0)


@pytest.mark.parametrize("host,disk,date,level", [
    ("localhost", "/x", "20260201000000", 0),  # a newer run wrote there
    ("otherhost", "/x", "20260101000000", 0),
    ("localhost", "/y", "20260101000000", 0),
    ("localhost", "/x", "20260101000000", 1),
])
def test_check_image_mismatch(vtapes, host, disk, date, level):
    lib = VtapeLibrary(vtapes)
    with pytest.raises(MediaError) as e:
        lib.check_image("LAB-01", 1, host, disk, date, level)
    msg = str(e.value)
    assert "LAB-01 file 1" in msg
    assert "('localhost', '/x', '20260101000000', 0)" in msg
    assert f"the catalog says {(host, disk, date, level)!r}" in msg
    assert "overwritten" in msg


def test_check_image_without_header(vtapes):
    (vtapes / "slot1" / "00002.garbage").write_bytes(b"not a header" + b"\0" * 100)
    lib = VtapeLibrary(vtapes)
    with pytest.raises(MediaError, match="holds no Amanda header"):
        lib.check_image("LAB-01", 2, "localhost", "/x", "20260101000000", 0)


# -- what the catalog scan takes from a header ------------------------------------

def test_split_file_parts_size_and_program():
    h = parse_header(block(SPLIT.replace("ORIGSIZE=2270\n",
                                         "ORIGSIZE=2270\nSERVER-CRC=74b62414:5201920\n")))
    assert (h.partnum, h.totalparts, h.server_size) == (1, -1, 5201920)
    assert (h.dle_program, h.restore_program) == ("GNUTAR", "GNUTAR")


def test_restore_program_of_application_and_bare_headers():
    h = parse_header(block(AMGTAR))
    assert (h.dle_program, h.restore_program) == ("APPLICATION:amgtar", "APPLICATION:amgtar")
    assert (h.partnum, h.totalparts, h.server_size) == (None, None, None)
    old = "AMANDA: FILE 20070924 www /var lev 0 comp .gz program /sbin/xfsdump\n"
    assert parse_header(block(old)).restore_program == "DUMP"
    old = "AMANDA: FILE 20070924 www /var lev 0 comp .gz program /usr/local/bin/gtar\n"
    assert parse_header(block(old)).restore_program == "GNUTAR"
