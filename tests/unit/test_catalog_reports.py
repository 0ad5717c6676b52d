"""The catalog from report mails: amverify reports and amcheckdump output.

tests/fixtures/reports/README.md says where each fixture comes from: the
amverify mails are written for these tests after Amanda 2.5's amverify.sh,
the amcheckdump outputs are real (Amanda 3.5.1, captured from a lab whose
trace logs sit beside them).
"""

from pathlib import Path

import pytest

from essentials.errors import CatalogError
from recovery.catalog import amconf, tracelog
from recovery.catalog.amcheckdump import parse_checkdump
from recovery.catalog.amverify import match_name, parse_verify, sanitised_forms
from recovery.catalog.chains import compute_chain
from recovery.catalog.model import FAILED, OK, Part
from recovery.catalog.reports import parse_reports, split_mbox, texts_of

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
MAIL = FIX / "mail"
CHECK = FIX / "amcheckdump"
WWW, DB = "www.example.com", "db.example.com"
LAB_L0, LAB_L1 = "20261122021502", "20261122021511"
LAB_MNT = "/var/tmp/amdrlabnywnya-d4ptfdza/mnt"


@pytest.fixture(scope="module")
def disklist():
    return amconf.parse_disklist((FIX / "disklist").read_text())


@pytest.fixture(scope="module")
def everything(disklist):
    return parse_reports([MAIL], disklist)


def one(dumps, host, disk, date, level=None):
    found = [d for d in dumps if (d.host, d.disk, d.date) == (host, disk, date)
             and (level is None or d.level == level)]
    assert len(found) == 1, found
    return found[0]


def places(d):
    return [(p.label, p.filenum, p.partnum) for p in d.parts]


# -- one plain mail ---------------------------------------------------------------

def test_plain_mail_file_positions(disklist):
    dumps = parse_reports([MAIL / "verify-plain.eml"], disklist)
    assert len(dumps) == 5
    assert places(one(dumps, WWW, "/", "20070924")) == [("DailySet1-05", 1, 1)]
    assert places(one(dumps, WWW, "/var/lib", "20070924")) == [("DailySet1-05", 2, 1)]
    pg = one(dumps, DB, "/var/lib/pgsql", "20070924")
    assert (pg.level, places(pg), pg.status, pg.message) == (
        0, [("DailySet1-05", 3, 1)], OK, "")
    assert pg.parts[0].written == "20070924"
    assert pg.source == str(MAIL / "verify-plain.eml")


def test_plain_mail_split_dump(disklist):
    dumps = parse_reports([MAIL / "verify-plain.eml"], disklist)
    home = one(dumps, WWW, "/home", "20070924")
    assert places(home) == [("DailySet1-05", 4, 1), ("DailySet1-05", 5, 2),
                            ("DailySet1-05", 6, 3)]
    assert home.nparts == 3
    assert home.usable


def test_skipped_file_counts_and_ambiguous_name(disklist):
    dumps = parse_reports([MAIL / "verify-plain.eml"], disklist)
    [x] = [d for d in dumps if d.parts[0].filenum == 7]
    assert (x.host, x.disk, x.level) == (DB, "_srv_data_files", 0)
    assert "did not check it (** Cannot do /sbin/xfsdump dumps)" in x.message
    assert "several disklist entries" in x.message
    assert "db.example.com:/srv/data/files" in x.message
    assert "db.example.com:/srv/data_files" in x.message


def test_without_disklist_names_stay_sanitised():
    dumps = parse_reports([MAIL / "verify-plain.eml"])
    disks = {(d.host, d.disk) for d in dumps}
    assert disks == {(WWW, "_"), (WWW, "_var_lib"), (WWW, "_home"),
                     (DB, "_var_lib_pgsql"), (DB, "_srv_data_files")}
    for d in dumps:
        assert "could not be matched without a disklist" in d.message
    home = one(dumps, WWW, "_home", "20070924")
    assert home.message.count("could not be matched") == 1  # once, not per part


# -- an mbox of two reports, one quoted-printable ---------------------------------

def test_mbox_is_split_on_from_lines():
    msgs = split_mbox((MAIL / "verify.mbox").read_bytes())
    assert len(msgs) == 2
    assert all(m.startswith(b"Return-Path: ") for m in msgs)


def test_mbox_reports(disklist):
    dumps = parse_reports([MAIL / "verify.mbox"], disklist)
    first = [d for d in dumps if d.parts[0].label == "DailySet1-06"]
    second = [d for d in dumps if d.parts[0].label == "DailySet1-07"]
    assert len(first) == 4 and len(second) == 4
    assert all(d.source.endswith("verify.mbox message 1") for d in first)
    assert all(d.source.endswith("verify.mbox message 2") for d in second)
    assert places(one(dumps, WWW, "/home", "20070925")) == [("DailySet1-06", 3, 1)]


def test_quoted_printable_body_is_decoded(disklist):
    texts = [t for _, t in texts_of(MAIL / "verify.mbox")]
    assert "Prüfbericht" in texts[1]
    dumps = parse_reports([MAIL / "verify.mbox"], disklist)
    # the longest line was soft-broken by the encoding: it is whole again
    fs = one(dumps, "fileserver01.storage.muenchen.example.com",
             "/export/projects/2007/engineering", "20070926")
    assert (fs.level, places(fs), fs.message) == (0, [("DailySet1-07", 3, 1)], "")
    assert places(one(dumps, DB, "/var/lib/pgsql", "20070926")) == [("DailySet1-07", 4, 1)]


# -- an error line ------------------------------------------------------------------

def test_error_line_makes_the_dump_unusable(disklist):
    dumps = parse_reports([MAIL / "verify-error.eml"], disklist)
    bad = one(dumps, WWW, "/var/lib", "20070927")
    assert (bad.level, bad.status, places(bad)) == (2, FAILED, [("DailySet1-08", 2, 1)])
    assert not bad.usable and not bad.dump_failed  # the image exists, the volume is bad
    assert bad.message.startswith("amverify: error reading DailySet1-08 file 2: "
                                  "amrestore: read error: Input/output error")
    assert "/bin/tar: Unexpected EOF in archive" in bad.message
    assert "restoring" not in bad.message
    # the files after it keep their positions
    assert places(one(dumps, WWW, "/home", "20070927")) == [("DailySet1-08", 3, 1)]
    assert places(one(dumps, DB, "/var/lib/pgsql", "20070927")) == [("DailySet1-08", 4, 1)]
    assert [d.status for d in dumps].count(FAILED) == 1


def test_chain_skips_the_unreadable_image(everything):
    chain = compute_chain(everything, WWW, "/var/lib")
    assert [(d.date, d.level) for d in chain.dumps] == [
        ("20070924", 0), ("20070925", 1), ("20070926", 2)]


# -- the same DLE at the same level on two volumes ------------------------------------

def test_same_dle_same_level_on_two_volumes(disklist):
    dumps = parse_reports([MAIL / "verify-two-volumes.eml"], disklist)
    pg = sorted((d for d in dumps if d.disk == "/var/lib/pgsql"), key=lambda d: d.date)
    assert [(d.date, d.level, places(d)) for d in pg] == [
        ("20070928", 1, [("DailySet1-09", 2, 1)]),
        ("20070929", 1, [("DailySet1-10", 1, 1)])]
    assert places(one(dumps, WWW, "/", "20070929")) == [("DailySet1-10", 2, 1)]


def test_chain_prefers_the_newer_copy(disklist):
    dumps = parse_reports([MAIL / "verify-plain.eml", MAIL / "verify-two-volumes.eml"],
                          disklist)
    chain = compute_chain(dumps, DB, "/var/lib/pgsql")
    assert [(d.date, d.level, d.parts[0].label) for d in chain.dumps] == [
        ("20070924", 0, "DailySet1-05"), ("20070929", 1, "DailySet1-10")]


# -- a DLE with no level 0 -------------------------------------------------------------

def test_dle_without_level0(everything):
    mail = [d for d in everything if d.host == "mail.example.com"]
    assert [(d.disk, d.level) for d in mail] == [("/var/spool/mail", 1)]
    with pytest.raises(CatalogError, match="no usable level 0 before the level 1 dump"):
        compute_chain(everything, "mail.example.com", "/var/spool/mail")


# -- all of them -------------------------------------------------------------------------

def test_directory_is_read_recursively(everything, disklist, tmp_path):
    singles = []
    for p in sorted(MAIL.iterdir()):
        singles += parse_reports([p], disklist)
    key = lambda d: (d.host, d.disk, d.date, d.level, tuple(places(d)), d.status)
    assert sorted(map(key, everything)) == sorted(map(key, singles))
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "saved").write_bytes((MAIL / "verify-error.eml").read_bytes())
    assert len(parse_reports([tmp_path], disklist)) == 4


def test_every_verify_chain(everything):
    chains = {(d.host, d.disk): [(x.date, x.level) for x in compute_chain(
        everything, d.host, d.disk).dumps]
        for d in everything if d.host.endswith("example.com") and d.disk.startswith("/")
        and d.host != "mail.example.com"}
    assert chains[(WWW, "/")] == [("20070924", 0), ("20070928", 1), ("20070930", 2)]
    assert chains[(WWW, "/home")] == [("20070924", 0), ("20070928", 1)]
    assert chains[(DB, "/var/lib/pgsql")] == [("20070924", 0), ("20070930", 1)]


def test_same_report_twice_is_one_record(disklist):
    once = parse_reports([MAIL / "verify-plain.eml"], disklist)
    twice = parse_reports([MAIL / "verify-plain.eml", MAIL / "verify-plain.eml"], disklist)
    assert [places(d) for d in once] == [places(d) for d in twice]


def test_pasted_report_without_mail_headers(tmp_path, disklist):
    body = (MAIL / "verify-error.eml").read_text().split("\n\n", 1)[1]
    (tmp_path / "report.txt").write_text(body)
    dumps = parse_reports([tmp_path / "report.txt"], disklist)
    assert one(dumps, WWW, "/var/lib", "20070927").status == FAILED
    assert len(dumps) == 4


# -- sanitised names ------------------------------------------------------------------------

def entries(*pairs):
    return [amconf.DiskEntry(h, d, d, "x", "DUMP") for h, d in pairs]


def test_sanitised_forms_of_every_version():
    assert sanitised_forms("/srv/a_b:c") == {"_srv_a_b:c", "_srv_a_b_c", "_srv_a__b:c"}


@pytest.mark.parametrize("name,want", [
    ("www.example.com._var_lib", ("www.example.com", "/var/lib", "")),
    ("www.example.com._", ("www.example.com", "/", "")),
    ("win.example.com.C_", ("win.example.com", "C:", "")),  # 2.6+: ':' became '_'
    ("db._srv_data__files", ("db", "/srv/data_files", "")),  # old_sanitise doubled '_'
])
def test_match_name(name, want):
    dl = entries(("www.example.com", "/var/lib"), ("www.example.com", "/"),
                 ("win.example.com", "C:"), ("db", "/srv/data_files"))
    assert match_name(name, dl) == want


def test_match_name_unknown_disk_keeps_known_host():
    host, disk, msg = match_name("nas.example.com.sda1", entries(("nas.example.com", "/")))
    assert (host, disk) == ("nas.example.com", "sda1")
    assert "matches no disklist entry" in msg


def test_header_summary_form_of_amrestore_2_5_2():
    text = ("Volume V-01, Date 20071001\n"
            "Checked dumpfile: date 20071001 host h.example.com disk \"/srv/my data\" lev 0 "
            "comp .gz program /bin/tar\n"
            "Skipped /bin/tar check on partial dump split dumpfile: date 20071001 host h "
            "disk /x part 2/UNKNOWN lev 1 comp N program /bin/tar\n"
            "End-of-Tape detected.\n")
    a, b = parse_verify(text)
    assert (a.host, a.disk, a.level, a.part) == ("h.example.com", "/srv/my data", 0,
                                                 Part("V-01", 1, 1))
    assert (b.host, b.disk, b.level, b.part) == ("h", "/x", 1, Part("V-01", 2, 2))
    assert a.message == b.message == ""


def test_fresh_tape_and_too_many_errors_end_a_volume():
    text = ("Volume V-01, Date X\nFresh tape. Skipping...\nChecked h._x.20071001.0\n"
            "Volume V-02, Date 20071002\n** Error detected (h._x.20071002.1)\nboom\n"
            "Too many errors.\nChecked h._y.20071002.0\n")
    [s] = parse_verify(text)
    assert (s.part, s.status, s.message) == (
        Part("V-02", 1, 1), FAILED,
        "amverify: error reading V-02 file 1: boom; disk name '_x' is a file-name form "
        "('/' became '_'); it could not be matched without a disklist")


# -- amcheckdump, real output -------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab_logs():
    return tracelog.parse_logdir(CHECK / "logs")


def parts_of(dumps):
    return sorted((d.host, d.disk, d.date, d.level, p.label, p.filenum, p.partnum)
                  for d in dumps for p in d.parts)


@pytest.mark.parametrize("name,run", [("l0-tty.txt", LAB_L0), ("l0-notty.txt", LAB_L0),
                                      ("l0-crc-error.txt", LAB_L0), ("l1-notty.txt", LAB_L1)])
def test_amcheckdump_places_agree_with_trace_logs(name, run, lab_logs):
    dumps = parse_reports([CHECK / name])
    assert parts_of(dumps) == parts_of([d for d in lab_logs if d.date == run])


def test_amcheckdump_on_a_tty_all_ok():
    dumps = parse_reports([CHECK / "l0-tty.txt"])
    assert [(d.disk, d.status, d.nparts) for d in dumps] == [
        ("/dev/loop1p2", OK, 1), (LAB_MNT, OK, 5)]
    assert all(d.usable for d in dumps)


def test_amcheckdump_failed_images():
    notty = {d.disk: d for d in parse_reports([CHECK / "l1-notty.txt"])}
    assert notty["/dev/loop1p2"].status == FAILED
    assert notty["/dev/loop1p2"].message == (
        "amcheckdump: application stderr: /sbin/restore: cannot open /dev/tty: "
        "No such device or address")
    assert notty[LAB_MNT].status == OK
    crc = {d.disk: d for d in parse_reports([CHECK / "l0-crc-error.txt"])}
    assert crc[LAB_MNT].status == FAILED
    assert "server-crc (74b62414:5201920) and source_crc (38b09fb9:5201920) differ" in \
        crc[LAB_MNT].message
    assert "READ SIZE" not in crc[LAB_MNT].message


def test_cron_mail_in_base64_reads_like_the_output():
    mailed = parse_reports([MAIL / "cron-amcheckdump.eml"])
    plain = parse_reports([CHECK / "l0-crc-error.txt"])
    assert [(d.disk, places(d), d.status, d.message) for d in mailed] == \
        [(d.disk, places(d), d.status, d.message) for d in plain]


def test_amcheckdump_3_0_form_one_line_per_part():
    text = (
        "You will need the following tape: V-01\nPress enter when ready\n"
        "Validating image h:/x datestamp 20090101 level 0 part 1/2 on tape V-01 file #3\n"
        "Validating image h:/x datestamp 20090101 level 0 part 2/2 on tape V-01 file #4\n"
        "Validating image h:/y datestamp 20090101 level 1 part 1/1 on tape V-01 file #5\n"
        "Dump was not successfully validated: Validation process returned 2 (full status 512)\n"
        "Dump was successfully validated.\n"
        "Some images failed to be correclty validated.\n")
    x1, x2, y = parse_checkdump(text)
    assert (x1.part, x2.part, y.part) == (Part("V-01", 3, 1), Part("V-01", 4, 2),
                                          Part("V-01", 5, 1))
    assert x1.nparts == x2.nparts == 2
    # the verdict on /x came when /y started
    assert x1.status == x2.status == FAILED and y.status == OK
    assert "Validation process returned 2" in x1.message


def test_split_summary_with_a_known_total_finds_a_missing_part(tmp_path):
    (tmp_path / "report").write_text(
        "Volume V-01, Date 20071001\n"
        "Skipped /bin/tar check on partial dump backup._home.20071001.0.1\n"
        "Skipped /bin/tar check on partial dump backup._home.20071001.0.2\n"
        "End-of-Tape detected.\n\n"
        "Split dump backup._home.20071001.0 should have 3 total pieces\n"
        "Spanning chunk part 3 is missing!\n")
    [d] = parse_reports([tmp_path / "report"])
    assert (d.nparts, d.missing_parts(), d.usable) == (3, [3], False)
