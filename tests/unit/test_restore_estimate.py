"""The estimate before the restores (recovery/restore/estimate.py): a real
read of the largest image at hand, through its uncompress program."""

import os
from pathlib import Path
from types import SimpleNamespace

from recovery.catalog.chains import Chain
from recovery.catalog.model import Dump, Part
from recovery.cli import estimate_text
from recovery.restore import estimate


class Slots:
    def __init__(self, files: dict):
        self.files = files

    def image_path(self, label, filenum):
        try:
            return self.files[(label, filenum)]
        except KeyError:
            raise OSError(f"{label} has no file {filenum}") from None


def steps_on(*parts):
    dumps = [Dump("h", "/srv", f"2026010{n}000000", n, [Part(lab, f, 1)], 1)
             for n, (lab, f) in enumerate(parts)]
    return [SimpleNamespace(host="h", disk="/srv", chain=Chain("h", "/srv", dumps, "GNUTAR"))]


def test_the_largest_image_is_read_and_the_rate_is_its_own(tmp_path):
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"\0" * 32768 + os.urandom(1 << 20))
    big.write_bytes(b"\0" * 32768 + os.urandom(6 << 20))
    lib = Slots({("V1", 1): small, ("V2", 3): big})
    m = estimate.measure(lib, steps_on(("V1", 1), ("V2", 3), ("V3", 1)))  # V3: not at hand
    assert m.bytes == 6 << 20 and m.seconds > 0 and m.rate > 0
    assert "V2 file 3" in m.what
    assert estimate.seconds_for(12 << 20, m) == (12 << 20) / m.rate


def test_a_limit_and_nothing_at_hand(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"\0" * 32768 + os.urandom(3 << 20))
    m = estimate.measure(Slots({("V1", 1): big}), steps_on(("V1", 1)), limit=1 << 20)
    assert m.bytes == 1 << 20
    assert estimate.measure(Slots({}), steps_on(("V1", 1))) is None
    assert estimate.measure(object(), steps_on(("V1", 1))) is None  # a tape drive


def test_the_line_people_read():
    assert estimate_text({"bytes": None}).startswith("Estimate: the images' sizes are not")
    assert "could not be measured" in estimate_text({"bytes": 5e8, "rate": None})
    line = estimate_text({"bytes": 6e9, "rate": 5e7, "seconds": 120.0,
                          "measured": "64 MB of LAB-03 file 4 (read and gzip -dc)"})
    assert "6,000 MB on the volumes at 50 MB/s" in line and "about 2 min" in line
    assert "LAB-03 file 4" in line
