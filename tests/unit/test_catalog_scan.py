"""The media scan against vtapes rebuilt from real Amanda 3.5.1 headers.

tests/fixtures/scan holds the headers of two real vtapes (a level 0 whose
GNUTAR image is split in five parts, then a level 1) and the file sizes;
the trace logs of the same runs are in tests/fixtures/reports/amcheckdump/logs.
The tape path cannot run here (no tape drive): its command sequence is
checked with a dry-run runner.
"""

import os
import shutil
from pathlib import Path

import pytest

from essentials.errors import CatalogError, CommandError
from essentials.runner import Result, Runner, display
from recovery.catalog import tracelog
from recovery.catalog.chains import compute_chain, dles
from recovery.catalog.model import Part
from recovery.catalog.scan import scan
from recovery.media.volumes import HEADER_SIZE

FIX = Path(__file__).resolve().parent.parent / "fixtures"
LOGS = FIX / "reports" / "amcheckdump" / "logs"
MNT = "/var/tmp/amdrlabnywnya-d4ptfdza/mnt"
L0, L1 = "20261122021502", "20261122021511"
V1, V2 = "AMDRLABNYWNYA-01", "AMDRLABNYWNYA-02"


def build(root: Path, grow: int = 0) -> Path:
    """The two vtapes as Amanda left them; data sparse (and `grow` bytes longer)."""
    for line in (FIX / "scan" / "sizes.txt").read_text().splitlines():
        size, rel = line.split(" ", 1)
        hdr = (FIX / "scan" / "vtapes" / rel).read_bytes()
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(dst, "wb") as f:
            f.write(hdr + b"\0" * (HEADER_SIZE - len(hdr)))
            f.truncate(int(size) + (grow if int(size) > HEADER_SIZE else 0))
    os.symlink("slot2", root / "data")  # chg-disk's pointer to the current slot
    (root / "state").write_text("$STATE = {};\n")
    (root / "slot3").mkdir()  # an empty slot
    return root


@pytest.fixture
def vtapes(tmp_path):
    return build(tmp_path / "vtapes")


def rows(dumps):
    return sorted((d.host, d.disk, d.date, d.level, p.label, p.filenum, p.partnum)
                  for d in dumps for p in d.parts)


def test_scan_equals_trace_logs(vtapes):
    res = scan([str(vtapes)])
    logs = tracelog.parse_logdir(LOGS)
    assert res.errors == []
    assert rows(res.dumps) == rows(logs)
    assert len(res.dumps) == 4
    for host, disk in dles(logs):
        a = compute_chain(logs, host, disk).to_dict()
        b = compute_chain(res.dumps, host, disk).to_dict()
        assert b.pop("program") in ("DUMP", "GNUTAR")  # the headers say; the logs do not
        a.pop("program")
        assert a == b


def test_split_parts_and_programs(vtapes):
    res = scan([str(vtapes)])
    [split] = [d for d in res.dumps if d.disk == MNT and d.level == 0]
    assert split.parts == [Part(V1, n + 1, n) for n in range(1, 6)]
    assert split.nparts == 5 and split.usable
    assert {d.disk: d.program for d in res.dumps} == {MNT: "GNUTAR", "/dev/loop1p2": "DUMP"}
    assert all(p.written == d.date for d in res.dumps for p in d.parts)


def test_volumes(vtapes):
    res = scan([f"chg-disk:{vtapes}"])
    assert res.volumes == {V1: {"date": L0, "device": f"file:{vtapes}/slot1"},
                           V2: {"date": L1, "device": f"file:{vtapes}/slot2"}}


def test_one_slot_and_single_files(vtapes):
    res = scan([str(vtapes / "slot2")])
    assert rows(res.dumps) == [("localhost", "/dev/loop1p2", L1, 1, V2, 1, 1),
                               ("localhost", MNT, L1, 1, V2, 2, 1)]
    part3 = next((vtapes / "slot1").glob("00003.*"))
    res = scan([str(part3)])
    [d] = res.dumps
    assert (d.level, d.parts, d.nparts) == (0, [Part(V1, 3, 2)], 5)
    assert not d.usable  # part 1 was not given
    assert res.volumes == {V1: {"date": L0, "device": f"file:{vtapes}/slot1"}}


def test_same_slot_given_twice_is_read_once(vtapes):
    res = scan([str(vtapes), str(vtapes / "slot1"), f"file:{vtapes}/slot1",
                str(next((vtapes / "slot1").glob("00002.*")))])
    assert rows(res.dumps) == rows(scan([str(vtapes)]).dumps)
    assert res.errors == []


def test_bad_files_are_errors_and_the_scan_goes_on(vtapes):
    s1 = vtapes / "slot1"
    (s1 / "00007.localhost._junk.0").write_bytes(b"\x7fELF" + b"\0" * 40000)
    label = (s1 / f"00000.{V1}").read_bytes()
    (s1 / "00008.localhost._cut.0").write_bytes(
        (s1 / "00001.localhost._dev_loop1p2.0").read_bytes()[:HEADER_SIZE][:1000])
    (s1 / "00009.empty").write_bytes(b"")
    (s1 / "00010.second-label").write_bytes(label)
    (s1 / "README").write_text("notes")
    res = scan([str(vtapes)])
    assert rows(res.dumps) == rows(tracelog.parse_logdir(LOGS))
    errs = "\n".join(res.errors)
    assert f"{s1}/00007.localhost._junk.0: not an Amanda file" in errs
    assert f"{s1}/00008.localhost._cut.0: truncated header (1000 of 32768 bytes)" in errs
    assert f"{s1}/00009.empty: empty" in errs
    assert "00010.second-label: a volume label in the middle of a volume" in errs
    assert f"{s1}/README: not a vtape file" in errs
    assert len(res.errors) == 5


def test_unlabelled_slot_and_missing_device(tmp_path, vtapes):
    (vtapes / "slot1" / f"00000.{V1}").unlink()
    res = scan([str(vtapes / "slot1"), str(tmp_path / "nothing")])
    assert any("no label file" in e for e in res.errors)
    assert any("nothing: No such file or directory" in e for e in res.errors)
    assert {p.label for d in res.dumps for p in d.parts} == {""}
    assert all("not on a labelled volume" in d.message for d in res.dumps)


def test_lost_last_part_is_seen_from_the_sizes(vtapes):
    next((vtapes / "slot1").glob("00006.*")).unlink()
    res = scan([str(vtapes)])
    [split] = [d for d in res.dumps if d.disk == MNT and d.level == 0]
    assert [p.partnum for p in split.parts] == [1, 2, 3, 4]
    assert split.missing_parts() == [5] and not split.usable
    assert "hold 4194304 of the image's 5201920 bytes" in split.message
    # so the chain stops there rather than restoring half an image
    with pytest.raises(CatalogError, match="unusable: part.*5.* missing"):
        compute_chain(res.dumps, "localhost", MNT)


def test_a_gap_in_the_parts(vtapes):
    next((vtapes / "slot1").glob("00004.*")).unlink()
    [split] = [d for d in scan([str(vtapes)]).dumps if d.disk == MNT and d.level == 0]
    assert split.nparts == 5 and split.missing_parts() == [3]


def test_cut_part_at_the_end_of_a_volume_is_dropped(tmp_path, vtapes):
    # part 5 hit the end of volume 1 and was written again as file 1 of volume 3
    s1, s3 = vtapes / "slot1", vtapes / "slot3"
    last = next(s1.glob("00006.*"))
    shutil.copy(last, s3 / last.name.replace("00006", "00001"))
    (s3 / "00000.AMDRLABNYWNYA-03").write_bytes(
        (s1 / f"00000.{V1}").read_bytes().replace(b"-01", b"-03").replace(L0.encode(),
                                                                          b"20261122021600"))
    os.truncate(last, HEADER_SIZE + 1000)
    res = scan([str(vtapes)])
    [split] = [d for d in res.dumps if d.disk == MNT and d.level == 0]
    assert [(p.label, p.filenum) for p in split.parts][-1] == ("AMDRLABNYWNYA-03", 1)
    assert split.usable
    assert any("cut short at the end of the volume" in e for e in res.errors)


def test_reads_only_the_headers(tmp_path):
    """The data behind the headers (here 64 MiB more per file) is never read."""
    root = build(tmp_path / "v", grow=64 << 20)

    def rchar():
        with open("/proc/self/io") as f:
            return int(next(ln for ln in f if ln.startswith("rchar")).split()[1])

    before = rchar()
    res = scan([str(root)])
    read = rchar() - before
    assert len(res.dumps) == 4
    assert read < 10 * HEADER_SIZE + 64 * 1024, read


# -- tape drives, by their command sequence --------------------------------------------

class Tape(dict):
    """Dry-run responses where a command answers its next canned reply each time."""

    def get(self, key, default=None):
        if key in self and isinstance(dict.__getitem__(self, key), list):
            queue = dict.__getitem__(self, key)
            return queue.pop(0) if queue else b""
        return super().get(key, default)


def headers_of_slot(n: int) -> list[bytes]:
    out = []
    for line in (FIX / "scan" / "sizes.txt").read_text().splitlines():
        rel = line.split(" ", 1)[1]
        if rel.startswith(f"slot{n}/"):
            hdr = (FIX / "scan" / "vtapes" / rel).read_bytes()
            out.append(hdr + b"\0" * (HEADER_SIZE - len(hdr)))
    return out


DD = "dd if=/dev/nst0 bs=32k count=1"


def test_tape_command_sequence():
    runner = Runner(dry_run=True, responses=Tape({DD: headers_of_slot(2)}))
    res = scan(["tape:/dev/nst0"], runner)
    cmds = [display(r.commands[0].argv) for r in runner.recorded]
    skip = "mt -f /dev/nst0 fsf 1"
    assert cmds == ["mt -f /dev/nst0 rewind", DD, skip, DD, skip, DD, skip, DD]
    assert res.volumes == {V2: {"date": L1, "device": "/dev/nst0"}}
    assert rows(res.dumps) == [("localhost", "/dev/loop1p2", L1, 1, V2, 1, 1),
                               ("localhost", MNT, L1, 1, V2, 2, 1)]
    assert res.errors == []
    assert all(d.source == "/dev/nst0" for d in res.dumps)


def test_tape_prefix_and_split_parts():
    runner = Runner(dry_run=True, responses=Tape({DD: headers_of_slot(1)}))
    res = scan(["tape:/dev/nst0"], runner)
    [split] = [d for d in res.dumps if d.disk == MNT]
    assert [(p.filenum, p.partnum) for p in split.parts] == [(n + 1, n) for n in range(1, 6)]
    assert split.nparts == 5  # derived: nothing on a tape tells sizes


def test_tape_without_label_and_junk_file():
    junk = b"\x1f\x8b" + b"\0" * (HEADER_SIZE - 2)
    runner = Runner(dry_run=True, responses=Tape({DD: [junk]}))
    res = scan(["tape:/dev/nst0"], runner)
    assert res.dumps == [] and res.volumes == {}
    assert res.errors == ["/dev/nst0 file 0: not an Amanda file",
                          "/dev/nst0: no Amanda volume label at file 0; not read further"]
    blocks = headers_of_slot(2)
    runner = Runner(dry_run=True, responses=Tape({DD: [blocks[0], junk, blocks[2]]}))
    res = scan(["tape:/dev/nst0"], runner)
    assert res.errors == ["/dev/nst0 file 1: not an Amanda file"]
    assert rows(res.dumps) == [("localhost", MNT, L1, 1, V2, 2, 1)]
    res = scan(["tape:/dev/nst0"], Runner(dry_run=True))
    assert res.errors == ["/dev/nst0: nothing on the tape (blank, or not rewound)"]


class FailingRunner:
    """A drive that cannot rewind, or one whose dd fails (no dry run can)."""

    def __init__(self, fail):
        self.fail, self.calls = fail, []

    def run(self, argv, check=True, **kw):
        self.calls.append(argv)
        if argv[-1] == self.fail == "rewind":
            raise CommandError(display(argv), 1, "mt: /dev/nst0: No medium found")
        if argv[0] == "dd" and self.fail == "dd":
            return Result(argv, 1, b"", b"dd: error reading '/dev/nst0': Cannot allocate memory\n")
        return Result(argv, 0, b"")


def test_tape_errors():
    res = scan(["/dev/nst0x"], FailingRunner("rewind"))
    assert res.errors == ["/dev/nst0x: No such file or directory"]  # no tape: prefix
    res = scan(["tape:/dev/nst0"], FailingRunner("rewind"))
    assert len(res.errors) == 1 and "cannot rewind" in res.errors[0]
    assert "No medium found" in res.errors[0]
    res = scan(["tape:/dev/nst0"], FailingRunner("dd"))
    assert res.errors == ["/dev/nst0 file 0: dd failed (dd: error reading '/dev/nst0': "
                          "Cannot allocate memory); the rest of the tape is not read "
                          "(a block size over 32 KiB?)"]


def test_a_character_device_is_read_as_a_tape():
    # /dev/null stands in for /dev/nst0: no prefix needed for a real drive
    runner = Runner(dry_run=True,
                    responses=Tape({"dd if=/dev/null bs=32k count=1": headers_of_slot(2)}))
    res = scan(["/dev/null"], runner)
    assert display(runner.recorded[0].commands[0].argv) == "mt -f /dev/null rewind"
    assert res.volumes == {V2: {"date": L1, "device": "/dev/null"}}
    assert len(res.dumps) == 2
